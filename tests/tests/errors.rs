//! Error statuses end to end: what a client gets, and what the access event records,
//! when there is no route, no service, no listening endpoint, a slow upstream, or a
//! client that leaves early.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use traverse_e2e::{config, connect, diagnostics, field, route, service, Gateway, Upstream};

/// The access events logged for `path` (exact match of the `path` field).
fn events_for(gateway: &Gateway, path: &str) -> Vec<String> {
    let needle = format!("path=\"{path}\"");
    gateway
        .access_events()
        .into_iter()
        .filter(|l| l.contains(&needle))
        .collect()
}

#[tokio::test]
async fn no_route_is_404() {
    let app = Upstream::start("app");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/app`)", "app")),
        ],
    )
    .await;
    let response = gateway.get("web", "/nothing/here", &[]).await;
    assert_eq!(response.status, 404, "{}", response.text());
    assert_eq!(app.count(), 0);
    let event = gateway
        .wait_for_log("access event of the 404", Duration::from_secs(5), |l| {
            l.contains("traverse::access") && l.contains("path=\"/nothing/here\"")
        })
        .await;
    assert!(event.contains("status=404"), "{event}");
    assert!(!event.contains("router="), "no router matched: {event}");
}

#[tokio::test]
async fn missing_service_is_503_with_a_diagnostic_while_other_routes_serve() {
    let app = Upstream::start("app");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: mixed
spec:
  routes:
    - match: PathPrefix(`/ghost`)
      services: [{name: ghost, port: 80}]
    - match: PathPrefix(`/app`)
      services: [{name: app, port: 80}]
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("routes", manifests),
        ],
    )
    .await;

    let response = gateway.get("web", "/ghost/x", &[]).await;
    assert_eq!(
        response.status,
        503,
        "a route whose Service is missing answers 503, not 404: {}",
        response.text()
    );
    let response = gateway.get("web", "/app/x", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("app"));

    let json = gateway.routes_json().await;
    let diagnostic = diagnostics(&json)
        .into_iter()
        .find(|d| field(d, "reason") == "ServiceNotFound")
        .unwrap_or_else(|| panic!("no ServiceNotFound diagnostic: {json}"));
    assert_eq!(field(&diagnostic["object"], "name"), "mixed");
    assert_eq!(
        field(&diagnostic, "field"),
        "spec.routes[0].services[0].name"
    );
    assert!(
        field(&diagnostic, "source").contains("routes.yaml"),
        "{diagnostic}"
    );
    assert!(
        field(&diagnostic, "message").contains("ghost"),
        "{diagnostic}"
    );
    let ghost = traverse_e2e::routes(&json)
        .into_iter()
        .find(|r| field(r, "rule") == "PathPrefix(`/ghost`)")
        .expect("the route is listed");
    assert_eq!(ghost["unavailable"]["status"], 503, "{ghost}");
}

#[tokio::test]
async fn unusable_references_fail_closed_with_503() {
    let app = Upstream::start("app");
    let not_ready = "apiVersion: v1
kind: Service
metadata:
  name: starting
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: starting-1
  labels:
    kubernetes.io/service-name: starting
addressType: IPv4
ports: [{name: http, port: 1}]
endpoints:
  - addresses: [\"127.0.0.1\"]
    conditions: {ready: false}
";
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: refs
spec:
  routes:
    - match: PathPrefix(`/no-middleware`)
      services: [{name: app, port: 80}]
      middlewares: [{name: auth}]
    - match: PathPrefix(`/not-ready`)
      services: [{name: starting, port: 80}]
    - match: PathPrefix(`/no-port`)
      services: [{name: app, port: 8080}]
    - match: PathPrefix(`/unsupported-middleware`)
      services: [{name: app, port: 80}]
      middlewares: [{name: geoblock}]
    - match: PathPrefix(`/ok`)
      services: [{name: app, port: http}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: geoblock
spec:
  # A middleware type Traverse does not run (a plugin): the route must not be served without it.
  plugin:
    geoblock:
      countries: [FR]
";
    let backends = [service("app", &[app.addr()]), not_ready.to_owned()].join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("routes", manifests)],
    )
    .await;

    // A missing middleware (say, authentication) must not be skipped: the route answers 503.
    for (path, reason) in [
        ("/no-middleware", "MiddlewareNotFound"),
        ("/not-ready", "NoReadyEndpoints"),
        ("/no-port", "PortNotFound"),
        ("/unsupported-middleware", "InvalidMiddleware"),
    ] {
        let response = gateway.get("web", path, &[]).await;
        assert_eq!(response.status, 503, "{path}: {}", response.text());
        let json = gateway.routes_json().await;
        assert!(
            diagnostics(&json)
                .iter()
                .any(|d| field(d, "reason") == reason && field(&d["object"], "name") == "refs"),
            "{path}: no {reason} diagnostic: {json}"
        );
    }
    assert_eq!(
        app.count(),
        0,
        "nothing reached the upstream through an unusable route"
    );
    // A named port resolves.
    let response = gateway.get("web", "/ok", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn endpoint_with_nothing_listening_is_502() {
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("down", &[closed])),
            ("route", &route("down", "PathPrefix(`/`)", "down")),
        ],
    )
    .await;
    let response = gateway.get("web", "/down", &[]).await;
    assert_eq!(response.status, 502, "{}", response.text());
    let event = gateway
        .wait_for_log("access event of the 502", Duration::from_secs(5), |l| {
            l.contains("traverse::access") && l.contains("path=\"/down\"")
        })
        .await;
    assert!(event.contains("status=502"), "{event}");
    assert!(
        event.contains("attempts=1"),
        "one endpoint, no retry: {event}"
    );
}

#[tokio::test]
async fn upstream_slower_than_read_timeout_is_504() {
    let slow = Upstream::start("slow");
    let gateway = Gateway::start(
        &config("upstream:\n  readTimeout: 1s\n"),
        &[
            ("backends", &service("slow", &[slow.addr()])),
            ("route", &route("slow", "PathPrefix(`/`)", "slow")),
        ],
    )
    .await;
    // Fast answers are unaffected by the timeout.
    assert_eq!(gateway.get("web", "/delay/100", &[]).await.status, 200);

    let started = Instant::now();
    let response = gateway.get("web", "/delay/3000", &[]).await;
    let took = started.elapsed();
    assert_eq!(response.status, 504, "{}", response.text());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2900),
        "504 after about the 1s read timeout, not after the upstream answered: {took:?}"
    );
    assert_eq!(
        slow.count_path("/delay/3000"),
        1,
        "a read timeout is not retried"
    );
    let event = gateway
        .wait_for_log("access event of the 504", Duration::from_secs(5), |l| {
            l.contains("traverse::access") && l.contains("path=\"/delay/3000\"")
        })
        .await;
    assert!(event.contains("status=504"), "{event}");
}

#[tokio::test]
async fn upstream_error_statuses_pass_through() {
    let app = Upstream::start("app");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    for code in [201u16, 404, 500, 503] {
        let response = gateway.get("web", &format!("/status/{code}"), &[]).await;
        assert_eq!(response.status, code, "{}", response.text());
        assert_eq!(
            response.server().as_deref(),
            Some("app"),
            "the upstream's own body"
        );
    }
    let response = gateway.get("web", "/status/204", &[]).await;
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn client_leaving_before_the_answer_is_logged_as_499() {
    let slow = Upstream::start("slow");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("slow", &[slow.addr()])),
            ("route", &route("slow", "PathPrefix(`/`)", "slow")),
        ],
    )
    .await;
    let mut stream = connect(gateway.addr("web")).await;
    stream
        .write_all(b"GET /delay/2000 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("writing the request");
    // Leave once the request is at the upstream, long before it answers.
    traverse_e2e::eventually(
        "the request reaches the upstream",
        Duration::from_secs(5),
        async || (slow.count_path("/delay/2000") == 1).then_some(()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);

    let event = gateway
        .wait_for_log(
            "access event of the abandoned request",
            Duration::from_secs(8),
            |l| l.contains("traverse::access") && l.contains("path=\"/delay/2000\""),
        )
        .await;
    assert!(
        event.contains("status=499"),
        "a client that left before the answer is recorded as 499: {event}"
    );
    assert_eq!(events_for(&gateway, "/delay/2000").len(), 1);
}
