use std::net::SocketAddr;
use std::sync::Arc;

use http::Method;
use pingora::http::RequestHeader;
use pingora::{ErrorSource, ErrorType};
use traverse_config::MetricFamilies;
use traverse_model::{
    Backend, Balancer, Endpoint, Node, PassiveHealth, Router, Scheme, Target, Weighted,
};
use traverse_telemetry::metrics::prometheus::{render, Format};
use traverse_telemetry::metrics::{Metrics, MetricsOptions};
use traverse_telemetry::propagation::TrustPolicy;

use super::*;
use crate::select;

const ALL: MetricFamilies = MetricFamilies {
    add_entry_points_labels: true,
    add_routers_labels: true,
    add_services_labels: true,
};

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn site(scheme: &'static str) -> Site {
    Site {
        entry_point: "websecure".into(),
        scheme,
        trust: TrustPolicy::Continue,
    }
}

/// A Service with endpoints on `ports`, each with its own health state.
fn backend(ports: &[u16]) -> Arc<Backend> {
    let servers: Vec<_> = ports
        .iter()
        .map(|p| {
            let endpoint = Endpoint::new(address(*p));
            endpoint.attach_health(Arc::new(PassiveHealth::default()));
            (endpoint, 1)
        })
        .collect();
    Arc::new(Backend {
        name: "apps/web:80".into(),
        scheme: Scheme::Http,
        pass_host_header: true,
        servers: Weighted::new(servers),
        transport: None,
        sticky: None,
        health_check: None,
        strategy: Default::default(),
    })
}

fn router(backend: &Arc<Backend>) -> Arc<Router> {
    Arc::new(Router {
        name: "apps/web#0".into(),
        rule: "PathPrefix(`/`)".into(),
        route: "/*".into(),
        priority: 1,
        entry_points: vec![],
        middlewares: vec![],
        middleware_names: vec![],
        target: Target::Services(Arc::new(Balancer::new(
            "apps/web#0".into(),
            vec![(Node::Backend(Arc::clone(backend)), 1)],
            None,
        ))),
    })
}

fn metrics_only() -> Telemetry {
    Telemetry {
        metrics: Some(Metrics::new(MetricsOptions {
            resource: opentelemetry_sdk::Resource::builder_empty().build(),
            families: ALL,
            telemetry: vec![],
        })),
        ..Telemetry::default()
    }
}

fn routed(backend: &Arc<Backend>) -> Exchange {
    let mut exchange = Exchange::new(None);
    exchange.route(
        Some(router(backend)),
        Some(Destination::Service(Arc::clone(backend))),
    );
    exchange
}

fn get() -> RequestHeader {
    let mut request = RequestHeader::build("GET", b"/orders?id=7", None).expect("request");
    request
        .insert_header("host", "shop.example:8443")
        .expect("host");
    request
}

/// The sum over every sample line of `name` whose labels contain all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn attempts_remember_what_was_tried() {
    let backend = backend(&[1, 2]);
    let mut exchange = routed(&backend);
    let (site, telemetry) = (site("http"), Telemetry::default());
    assert!(exchange.tried().is_empty());
    assert!(exchange.may_attempt_again());

    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        address(1),
        Peer::Endpoint(0),
    );
    assert_eq!(exchange.tried(), [address(1)]);
    assert_eq!(exchange.attempts(), 1);
    assert!(exchange.may_attempt_again());

    // A replay on the same endpoint counts as an attempt but is not a new address.
    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        address(1),
        Peer::Endpoint(0),
    );
    assert_eq!(exchange.tried(), [address(1)]);
    assert_eq!(exchange.attempts(), 2);
    assert!(!exchange.may_attempt_again(), "the retry budget is spent");

    exchange.forgive_current();
    assert!(
        exchange.tried().is_empty(),
        "a stale pooled connection is not the endpoint's fault"
    );
}

#[test]
fn selection_never_returns_a_tried_endpoint() {
    let backend = backend(&[1, 2, 3]);
    let (site, telemetry) = (site("http"), Telemetry::default());
    for _ in 0..30 {
        let mut exchange = routed(&backend);
        let mut seen = Vec::new();
        while let Some(selected) = select::next(&mut exchange, None) {
            assert!(
                !seen.contains(&selected.address),
                "{seen:?} then {}",
                selected.address
            );
            seen.push(selected.address);
            exchange.begin_attempt(
                &site,
                &telemetry,
                &Method::GET,
                selected.address,
                selected.peer,
            );
        }
        assert_eq!(seen.len(), 3, "every endpoint once, then nothing");
    }
}

#[test]
fn consecutive_failures_eject_an_endpoint_and_retries_go_elsewhere() {
    let backend = backend(&[1, 2]);
    let policy = traverse_model::EjectionPolicy {
        failures: 2,
        ejection_time: std::time::Duration::from_secs(60),
    };
    let (site, telemetry) = (site("http"), Telemetry::default());
    let mut first_attempts = Vec::new();
    for _ in 0..20 {
        let mut exchange = routed(&backend);
        let selected = select::next(&mut exchange, None).expect("an endpoint");
        first_attempts.push(selected.address);
        exchange.begin_attempt(
            &site,
            &telemetry,
            &Method::GET,
            selected.address,
            selected.peer,
        );
        if selected.address == address(1) {
            // Port 1 is the dead one: count the failure; the retry must go to port 2.
            exchange.fail_attempt(&site, &telemetry, &Method::GET, "ConnectRefused");
            select::failed(&exchange, None, policy);
            assert!(select::another_available(&exchange));
            let retry = select::next(&mut exchange, None).expect("the other endpoint");
            assert_eq!(retry.address, address(2));
        } else {
            select::succeeded(&exchange, None);
        }
    }
    let dead = first_attempts.iter().filter(|a| **a == address(1)).count();
    assert_eq!(
        dead, 2,
        "two failures eject it; no request starts there after: {first_attempts:?}"
    );
}

#[test]
fn all_ejected_still_gets_a_first_attempt_but_no_retry() {
    let backend = backend(&[1]);
    let policy = traverse_model::EjectionPolicy {
        failures: 1,
        ejection_time: std::time::Duration::from_secs(60),
    };
    let (site, telemetry) = (site("http"), Telemetry::default());
    let mut exchange = routed(&backend);
    let selected = select::next(&mut exchange, None).expect("endpoint");
    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        selected.address,
        selected.peer,
    );
    select::failed(&exchange, None, policy);
    assert!(!select::another_available(&exchange));
    assert!(
        select::next(&mut exchange, None).is_none(),
        "never the tried one again"
    );

    let mut fresh = routed(&backend);
    assert!(
        select::next(&mut fresh, None).is_some(),
        "a request to a Service whose every endpoint is ejected still gets one try"
    );
}

#[test]
fn endpoints_failing_their_check_are_never_tried() {
    let backend = backend(&[1, 2]);
    let checks: Vec<_> = backend
        .servers
        .items()
        .iter()
        .map(|(endpoint, _)| {
            let check = Arc::new(traverse_model::CheckHealth::default());
            endpoint.attach_check(Arc::clone(&check));
            check
        })
        .collect();
    checks[0].set_failing(true);
    for _ in 0..4 {
        let mut exchange = routed(&backend);
        let selected = select::next(&mut exchange, None).map(|s| s.address);
        assert_eq!(selected, Some(address(2)));
    }
    checks[1].set_failing(true);
    let mut exchange = routed(&backend);
    assert!(
        select::next(&mut exchange, None).is_none(),
        "every endpoint fails its check: no attempt, as Traefik answers 503"
    );
}

#[test]
fn one_record_feeds_metrics_and_says_what_happened() {
    let backend = backend(&[1, 2]);
    let telemetry = metrics_only();
    let site = site("https");
    let request = get();
    let mut exchange = routed(&backend);
    exchange.begin(
        &site,
        &telemetry,
        &request,
        Some(address(40000)),
        Some(8443),
        None,
    );
    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        address(1),
        Peer::Endpoint(0),
    );
    exchange.fail_attempt(&site, &telemetry, &Method::GET, "ConnectRefused");
    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        address(2),
        Peer::Endpoint(1),
    );
    exchange.upstream_responded(200);

    let ending = Ending {
        request: &request,
        response: None,
        request_bytes: 3,
        response_bytes: 11,
        status: 200,
        error: None,
    };
    let record = exchange.record(&site, &ending);
    assert_eq!(record.scheme, "https");
    assert_eq!(record.host, Some("shop.example"));
    assert_eq!(record.port, Some(8443));
    assert_eq!(record.attempts, 2);
    assert_eq!(record.router.map(|r| r.as_ref()), Some("apps/web#0"));
    assert_eq!(record.service.map(|s| s.as_ref()), Some("apps/web:80"));
    let upstream = record.upstream.expect("the last attempt's upstream");
    assert_eq!(
        (upstream.address, upstream.scheme, upstream.status),
        (address(2), "http", Some(200))
    );
    assert_eq!(record.path_and_query(), "/orders?id=7");

    exchange.finish(&site, &telemetry, &ending);
    // A second finish (Pingora calls logging once; this guards the bookkeeping) records nothing more.
    exchange.finish(&site, &telemetry, &ending);
    let metrics = telemetry.metrics.as_ref().expect("metrics");
    let text = render(metrics, &ALL, Format::Text);
    let requests = sample(
        &text,
        "traverse_entrypoint_requests_total",
        &["entrypoint=\"websecure\""],
    );
    assert_eq!(requests, 1.0, "one request counted once:\n{text}");
    let server = sample(
        &text,
        "http_server_request_duration_seconds_count",
        &["url_scheme=\"https\""],
    );
    assert_eq!(
        server, 1.0,
        "the metric carries the entrypoint's scheme:\n{text}"
    );
    let refused = sample(
        &text,
        "http_client_request_duration_seconds_count",
        &["error_type=\"ConnectRefused\""],
    );
    let answered = sample(
        &text,
        "http_client_request_duration_seconds_count",
        &["http_response_status_code=\"200\""],
    );
    assert_eq!(
        (refused, answered),
        (1.0, 1.0),
        "each attempt recorded once:\n{text}"
    );
    assert_eq!(
        sample(&text, "http_server_active_requests", &[]),
        0.0,
        "the active request was uncounted:\n{text}"
    );
}

#[test]
fn a_failure_that_ends_the_request_ends_the_attempt_with_it() {
    let backend = backend(&[1]);
    let telemetry = metrics_only();
    let site = site("http");
    let request = get();
    let mut exchange = routed(&backend);
    exchange.begin(&site, &telemetry, &request, None, None, None);
    exchange.begin_attempt(
        &site,
        &telemetry,
        &Method::GET,
        address(1),
        Peer::Endpoint(0),
    );
    let error = pingora::Error::create(ErrorType::ReadTimedout, ErrorSource::Upstream, None, None);
    let ending = Ending {
        request: &request,
        response: None,
        request_bytes: 0,
        response_bytes: 0,
        status: 504,
        error: Some(&error),
    };
    exchange.finish(&site, &telemetry, &ending);
    let text = render(
        telemetry.metrics.as_ref().expect("metrics"),
        &ALL,
        Format::Text,
    );
    let timed_out = sample(
        &text,
        "http_client_request_duration_seconds_count",
        &["error_type=\"ReadTimedout\""],
    );
    assert_eq!(timed_out, 1.0, "{text}");
    let failed = sample(&text, "traverse_service_requests_total", &["code=\"504\""]);
    assert_eq!(failed, 1.0, "{text}");
}

#[test]
fn internal_requests_record_nothing() {
    let backend = backend(&[1]);
    let telemetry = metrics_only();
    let site = site("http");
    let request = get();
    let mut exchange = routed(&backend);
    exchange.mark_internal();
    let ending = Ending {
        request: &request,
        response: None,
        request_bytes: 0,
        response_bytes: 0,
        status: 200,
        error: None,
    };
    exchange.finish(&site, &telemetry, &ending);
    let text = render(
        telemetry.metrics.as_ref().expect("metrics"),
        &ALL,
        Format::Text,
    );
    assert_eq!(
        sample(&text, "traverse_entrypoint_requests_total", &[]),
        0.0,
        "{text}"
    );
}
