use std::net::SocketAddr;

use super::*;
use crate::model::{Endpoint, Scheme};

fn backend(name: &str, ports: &[u16], sticky: Option<StickyCookie>) -> Arc<Backend> {
    let addresses: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let urls: Vec<String> = addresses.iter().map(|a| server_url("http", *a)).collect();
    Arc::new(Backend {
        name: name.into(),
        scheme: Scheme::Http,
        pass_host_header: true,
        servers: Weighted::new(addresses.iter().map(|a| (Endpoint::new(*a), 1)).collect()),
        transport: None,
        sticky: sticky.map(|c| Sticky::new(c, urls.iter().map(String::as_str))),
        health_check: None,
        strategy: Default::default(),
    })
}

fn cookie(name: &str) -> StickyCookie {
    StickyCookie {
        name: name.into(),
        secure: false,
        http_only: false,
        same_site: None,
        max_age: 0,
        path: "/".into(),
        domain: None,
    }
}

fn headers(cookie: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, cookie.parse().expect("header"));
    headers
}

#[test]
fn keys_are_traefiks_truncated_sha256() {
    assert_eq!(&*sticky_key("test"), "9f86d081884c7d65");
    assert_eq!(
        &*sticky_key(&server_url(
            "http",
            SocketAddr::from(([127, 0, 0, 1], 8080))
        )),
        "d30a576c03187167"
    );
}

#[test]
fn default_cookie_name_is_traefiks_hashed_name() {
    assert_eq!(default_cookie_name("default/whoami:80"), "_70a19");
    assert_eq!(sanitize_cookie_name("my cookie;x"), "my_cookie_x");
    assert_eq!(sanitize_cookie_name("a.b-c~"), "a.b-c~");
}

#[test]
fn set_cookie_is_laid_out_as_go_writes_it() {
    let full = StickyCookie {
        name: "lb".into(),
        secure: true,
        http_only: true,
        same_site: Some("Strict"),
        max_age: 60,
        path: "/app".into(),
        domain: Some("example.com".into()),
    };
    assert_eq!(
        full.header("v"),
        "lb=v; Path=/app; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
    );
    let expired = StickyCookie {
        max_age: -1,
        ..cookie("lb")
    };
    assert_eq!(expired.header("v"), "lb=v; Path=/; Max-Age=0");
}

#[test]
fn cookie_values_are_found_among_others() {
    let h = headers("a=1; lb=\"xyz\"; b=2");
    assert_eq!(cookie_value(&h, "lb"), Some("xyz"));
    assert_eq!(cookie_value(&h, "b"), Some("2"));
    assert_eq!(cookie_value(&h, "l"), None);
}

#[test]
fn sticky_balancer_follows_its_cookie_and_sets_one_otherwise() {
    let a = backend("ns/a:80", &[1], None);
    let b = backend("ns/b:80", &[2], None);
    let balancer = Balancer::new(
        "ns/wrr".into(),
        vec![(Node::Backend(a), 1), (Node::Backend(b), 1)],
        Some(Sticky::new(cookie("lb"), ["ns-a-80", "ns-b-80"])),
    );
    let mut set = Vec::new();
    let first = balancer
        .pick(&http::HeaderMap::new(), 0, &mut set)
        .expect("pick");
    assert_eq!(set.len(), 1, "a chosen child gets a cookie");
    let value = set[0]
        .strip_prefix("lb=")
        .and_then(|v| v.split(';').next())
        .expect("value")
        .to_owned();
    for _ in 0..10 {
        let mut again = Vec::new();
        let picked = balancer
            .pick(&headers(&format!("lb={value}")), 0, &mut again)
            .expect("pick");
        assert_eq!(picked.name, first.name, "the cookie wins over round robin");
        assert!(again.is_empty(), "a followed cookie is not set again");
    }
    let mut unknown = Vec::new();
    balancer
        .pick(&headers("lb=nonsense"), 0, &mut unknown)
        .expect("pick");
    assert_eq!(unknown.len(), 1, "an unknown value is replaced");
}

#[test]
fn nested_balancers_pick_by_weight_and_skip_children_without_endpoints() {
    let a = backend("ns/a:80", &[1], None);
    let b = backend("ns/b:80", &[2], None);
    let empty = backend("ns/empty:80", &[], None);
    let inner = Arc::new(Balancer::new(
        "ns/inner".into(),
        vec![
            (Node::Backend(b), 1),
            (Node::Backend(Arc::clone(&empty)), 5),
        ],
        None,
    ));
    assert!(inner.available());
    let outer = Balancer::new(
        "ns/outer".into(),
        vec![(Node::Backend(a), 3), (Node::Balancer(inner), 1)],
        None,
    );
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..400 {
        let picked = outer
            .pick(&http::HeaderMap::new(), 0, &mut Vec::new())
            .expect("pick");
        *counts.entry(picked.name.to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts.get("ns/a:80"), Some(&300));
    assert_eq!(counts.get("ns/b:80"), Some(&100));
    assert_eq!(counts.get("ns/empty:80"), None);
    assert_eq!(outer.backends().len(), 3);
    let nothing = Balancer::new("x".into(), vec![(Node::Backend(empty), 1)], None);
    assert!(!nothing.available());
    assert!(nothing
        .pick(&http::HeaderMap::new(), 0, &mut Vec::new())
        .is_none());
}

#[test]
fn a_backend_finds_the_endpoint_its_cookie_names() {
    let backend = backend("ns/a:80", &[1, 2], Some(cookie("srv")));
    let key = sticky_key(&server_url("http", SocketAddr::from(([127, 0, 0, 1], 2))));
    assert_eq!(
        backend.sticky_endpoint(&headers(&format!("srv={key}"))),
        Some(SocketAddr::from(([127, 0, 0, 1], 2)))
    );
    assert_eq!(backend.sticky_endpoint(&headers("srv=zzz")), None);
}

#[test]
fn children_out_of_rotation_are_skipped_until_none_is_left() {
    let attach = |backend: &Arc<Backend>| {
        let check = Arc::new(crate::CheckHealth::default());
        for (endpoint, _) in backend.servers.items() {
            endpoint.attach_check(Arc::clone(&check));
        }
        check
    };
    let a = backend("ns/a:80", &[1], Some(cookie("srv")));
    let b = backend("ns/b:80", &[2], None);
    let (a_health, b_health) = (attach(&a), attach(&b));
    let balancer = Balancer::new(
        "ns/wrr".into(),
        vec![(Node::Backend(a), 1), (Node::Backend(b), 1)],
        Some(Sticky::new(cookie("lb"), ["ns-a-80", "ns-b-80"])),
    );
    let picks = |cookie: &str| -> Vec<String> {
        (0..4)
            .map(|_| {
                let picked = balancer.pick(&headers(cookie), 0, &mut Vec::new());
                picked.expect("pick").name.to_string()
            })
            .collect()
    };
    let to_a = format!("lb={}", sticky_key("ns-a-80"));
    assert_eq!(picks(&to_a), ["ns/a:80"; 4]);
    a_health.set_failing(true);
    assert!(!balancer.children.items()[0].0.healthy(0));
    assert!(balancer.healthy(0));
    assert_eq!(
        picks(&to_a),
        ["ns/b:80"; 4],
        "a cookie to a child out of rotation is not followed"
    );
    b_health.set_failing(true);
    assert!(!balancer.healthy(0));
    assert_eq!(
        picks("").len(),
        4,
        "with every child out, one is still tried"
    );
    a_health.set_failing(false);
    assert_eq!(picks(""), ["ns/a:80"; 4]);
}

#[test]
fn a_failover_serves_from_its_service_while_it_has_an_endpoint_in_rotation() {
    let main = backend("ns/main:80", &[1], None);
    let spare = backend("ns/spare:80", &[2], None);
    let health = Arc::new(crate::CheckHealth::default());
    main.servers.items()[0].0.attach_check(Arc::clone(&health));
    let failover = Balancer::failover(
        "ns/fo".into(),
        Node::Backend(main),
        Some(Node::Backend(spare)),
    );
    let pick = || {
        let picked = failover.pick(&http::HeaderMap::new(), 0, &mut Vec::new());
        picked.expect("pick").name.to_string()
    };
    assert_eq!([pick(), pick(), pick()], ["ns/main:80"; 3]);
    health.set_failing(true);
    assert_eq!([pick(), pick(), pick()], ["ns/spare:80"; 3]);
    health.set_failing(false);
    assert_eq!(pick(), "ns/main:80");
    assert_eq!(failover.backends().len(), 2);
}

fn mirroring(percents: &[u8]) -> Mirroring {
    let mirrors = percents
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("apps/mirror{i}:80");
            Mirror::new(Node::Backend(backend(&name, &[9000 + i as u16], None)), *p)
        })
        .collect();
    Mirroring::new(mirrors, true, None)
}

#[test]
fn mirror_percent_is_exact_over_any_run_of_requests() {
    let mirroring = mirroring(&[100, 0, 50, 10, 33]);
    let mut counts = [0u64; 5];
    for n in 1..=1000u64 {
        let chosen = mirroring.choose();
        for (i, count) in counts.iter_mut().enumerate() {
            if chosen & (1 << i) != 0 {
                *count += 1;
            }
        }
        // After n requests each mirror had ceil(n * percent / 100) of them.
        for (count, percent) in counts.iter().zip([100u64, 0, 50, 10, 33]) {
            assert_eq!(*count, (n * percent).div_ceil(100), "after {n} requests");
        }
    }
    assert_eq!(counts, [1000, 0, 500, 100, 330]);
}

#[test]
fn a_mirroring_service_sends_to_its_service_and_owes_the_chosen_copies() {
    let main = backend("apps/main:80", &[8000], None);
    let service = Balancer::mirroring(
        "apps/mirrored".into(),
        Node::Backend(Arc::clone(&main)),
        mirroring(&[100, 0, 50]),
    );
    let outer = Balancer::new(
        "route".into(),
        vec![(Node::Balancer(Arc::new(service)), 1)],
        None,
    );
    // The admin API lists the mirroring services a request may pass, by name.
    let names: Vec<&str> = outer.mirrorings().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["apps/mirrored"]);
    let pick = || {
        let mut mirrored = Vec::new();
        let picked =
            outer.pick_mirrored(&http::HeaderMap::new(), 0, &mut Vec::new(), &mut mirrored);
        assert_eq!(picked.map(|b| &*b.name), Some("apps/main:80"));
        mirrored
    };
    // Requests a middleware refuses go through the pick but never reach the service:
    // they do not move the shares.
    for _ in 0..3 {
        assert_eq!(pick().len(), 1);
    }
    let mut owed = Vec::new();
    for n in 0..4 {
        let mirrored = pick();
        assert_eq!(mirrored.len(), 1, "request {n}");
        let copies = mirrored[0].owed().expect("mirror0 takes every request");
        let names: Vec<String> = copies
            .targets()
            .map(|m| match &m.node {
                Node::Backend(b) => b.name.to_string(),
                Node::Balancer(b) => b.name.to_string(),
            })
            .collect();
        owed.push(names.join(","));
    }
    assert_eq!(
        owed,
        [
            "apps/mirror0:80,apps/mirror2:80",
            "apps/mirror0:80",
            "apps/mirror0:80,apps/mirror2:80",
            "apps/mirror0:80"
        ]
    );
}

#[test]
fn a_mirroring_service_without_a_server_owes_no_copy() {
    let empty = backend("apps/empty:80", &[], None);
    let service = Balancer::mirroring("apps/m".into(), Node::Backend(empty), mirroring(&[100]));
    let mut mirrored = Vec::new();
    assert!(service
        .pick_mirrored(&http::HeaderMap::new(), 0, &mut Vec::new(), &mut mirrored)
        .is_none());
    assert!(mirrored.is_empty());
}

#[test]
fn a_failing_check_takes_an_address_out_of_its_own_services_only() {
    let checked = backend("ns/checked:80", &[1], None);
    let unchecked = backend("ns/unchecked:80", &[1], None);
    let (passive, check) = (
        Arc::new(crate::PassiveHealth::default()),
        Arc::new(crate::CheckHealth::default()),
    );
    for service in [&checked, &unchecked] {
        service.servers.items()[0]
            .0
            .attach_health(Arc::clone(&passive));
    }
    checked.servers.items()[0]
        .0
        .attach_check(Arc::clone(&check));
    let healthy = |service: &Arc<Backend>| Node::Backend(Arc::clone(service)).healthy(0);
    check.set_failing(true);
    assert!(!healthy(&checked));
    assert!(
        healthy(&unchecked),
        "another Service's check says nothing here"
    );
    check.set_failing(false);
    // Passive ejection stays per address: every Service to it is affected.
    let once = crate::EjectionPolicy {
        failures: 1,
        ejection_time: std::time::Duration::from_secs(10),
    };
    assert!(passive.failed(0, once));
    assert!(!healthy(&checked) && !healthy(&unchecked));
}
