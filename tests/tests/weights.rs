//! Load balancing end to end: weighted round robin across a route's services, round
//! robin across a service's endpoints, and the retry of a failed connect.

use std::net::{Ipv4Addr, SocketAddr};

use traverse_e2e::{config, service, Gateway, Upstream};

#[tokio::test]
async fn services_share_traffic_exactly_by_weight() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let c = Upstream::start("c");
    let backends = [
        service("a", &[a.addr()]),
        service("b", &[b.addr()]),
        service("c", &[c.addr()]),
    ]
    .join("---\n");
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: weighted
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - {name: a, port: 80, weight: 3}
        - {name: b, port: 80, weight: 1}
        - {name: c, port: 80, weight: 0}
";
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;

    let json = gateway.routes_json().await;
    let weights: Vec<_> = json["routes"][0]["services"]
        .as_array()
        .expect("services of the route")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["weight"].clone(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        [
            ("default/a:http".to_owned(), 3.into()),
            ("default/b:http".to_owned(), 1.into()),
            ("default/c:http".to_owned(), 0.into()),
        ]
    );

    for i in 0..400 {
        let response = gateway.get("web", &format!("/req/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
    }
    // Smooth weighted round robin is deterministic: over whole cycles the split is exact.
    assert_eq!((a.count(), b.count(), c.count()), (300, 100, 0));
}

#[tokio::test]
async fn endpoints_of_one_service_alternate() {
    let (first, second) = Upstream::start_pair("first", "second");
    let backends = service("pair", &[first.addr(), second.addr()]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            (
                "routes",
                &traverse_e2e::route("pair", "PathPrefix(`/`)", "pair"),
            ),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    let servers = &json["routes"][0]["services"][0]["servers"];
    assert_eq!(
        servers.as_array().map(Vec::len),
        Some(2),
        "both endpoints listed: {json}"
    );

    for i in 0..100 {
        let response = gateway.get("web", &format!("/req/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
    }
    assert_eq!((first.count(), second.count()), (50, 50));
}

#[tokio::test]
async fn refused_connect_is_retried_on_the_other_endpoint() {
    let live = Upstream::start("live");
    // Same port on 127.0.0.2, where nothing listens: every connect there is refused.
    let dead = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), live.port()));
    let backends = service("flaky", &[live.addr(), dead]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            (
                "routes",
                &traverse_e2e::route("flaky", "PathPrefix(`/`)", "flaky"),
            ),
        ],
    )
    .await;
    for i in 0..20 {
        let response = gateway.get("web", &format!("/retry/{i}"), &[]).await;
        assert_eq!(
            response.status,
            200,
            "request {i} should be retried on the live endpoint: {}",
            response.text()
        );
        assert_eq!(response.server().as_deref(), Some("live"));
    }
    assert_eq!(live.count(), 20);
    // Every request that first went to the dead endpoint shows two attempts, never more.
    // (Which requests those are depends on the shared round-robin position: each retry
    // advances it too, so with one dead endpoint of two it is typically all of them.)
    let last = gateway
        .wait_for_log(
            "the access event of the last request",
            std::time::Duration::from_secs(5),
            |l| l.contains("traverse::access") && l.contains("path=\"/retry/19\""),
        )
        .await;
    assert!(last.contains("status=200"), "{last}");
    let events: Vec<String> = gateway
        .access_events()
        .into_iter()
        .filter(|l| l.contains("path=\"/retry/"))
        .collect();
    assert_eq!(events.len(), 20, "{}", events.join("\n"));
    let retried = events.iter().filter(|l| l.contains("attempts=2")).count();
    let direct = events.iter().filter(|l| l.contains("attempts=1")).count();
    assert!(
        retried >= 1 && retried + direct == 20,
        "expected 1 or 2 attempts each, some retried:\n{}",
        events.join("\n")
    );
}
