//! `mirroring` TraefikServices end to end: the client gets the main service's answer,
//! copies reach each mirror in its `percent` share (exactly, as Traefik counts), with or
//! without the body as `mirrorBody` and `maxBodySize` say, a mirror that fails or never
//! answers changes nothing for the client, what became of the copies is counted on
//! `/metrics`, and each copy is a CLIENT span of the request's trace, context injected.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use traverse_e2e::collector::SpanKind;
use traverse_e2e::prometheus::{self, Format};
use traverse_e2e::{
    config, diagnostics, eventually, http_request, service, Collector, Gateway, Upstream,
};

const WAIT: Duration = Duration::from_secs(10);

fn mirroring(name: &str, settings: &str, mirrors: &[(&str, u8)]) -> String {
    let mirrors: String = mirrors
        .iter()
        .map(|(service, percent)| {
            format!("      - name: {service}\n        port: 80\n        percent: {percent}\n")
        })
        .collect();
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: {name}
  namespace: default
spec:
  mirroring:
    name: main
    port: 80
{settings}    mirrors:
{mirrors}"
    )
}

fn route(prefix: &str, traefik_service: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: {traefik_service}
  namespace: default
spec:
  routes:
    - match: PathPrefix(`{prefix}`)
      services:
        - name: {traefik_service}
          kind: TraefikService
"
    )
}

async fn mirror_total(gateway: &Gateway, result: &str) -> f64 {
    let text = gateway.get("admin", "/metrics", &[]).await.text();
    let families = prometheus::parse(&text, Format::Text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    prometheus::sum(
        &families,
        "traverse_service_mirror_requests_total",
        &[("result", result)],
    )
}

#[tokio::test]
async fn copies_reach_each_mirror_in_its_share_and_the_client_gets_the_main_answer() {
    let (main, all, half, none) = (
        Upstream::start("main"),
        Upstream::start("all"),
        Upstream::start("half"),
        Upstream::start("none"),
    );
    let backends = [
        service("main", &[main.addr()]),
        service("all", &[all.addr()]),
        service("half", &[half.addr()]),
        service("none", &[none.addr()]),
    ]
    .join("---\n");
    let mirrored = mirroring("mirrored", "", &[("all", 100), ("half", 50), ("none", 0)]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("mirrored", &mirrored),
            ("route", &route("/", "mirrored")),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "loads unchanged: {json}");

    for i in 0..40 {
        let response = gateway.get("web", &format!("/copied/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
        assert_eq!(response.server().as_deref(), Some("main"), "request {i}");
    }
    eventually("every copy", WAIT, async || {
        (all.count() == 40 && half.count() == 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (main.count(), all.count(), half.count(), none.count()),
        (40, 40, 20, 0),
        "percent 100, 50 and 0 are exact"
    );
    // A copy is the request as the main service got it: path, forwarding headers, Host.
    let original = &main.requests()[7];
    let copy = all
        .requests()
        .into_iter()
        .find(|r| r.path == "/copied/7")
        .expect("the copy of request 7");
    assert_eq!(copy.method, "GET");
    for header in ["host", "x-forwarded-for", "x-forwarded-host", "user-agent"] {
        assert_eq!(copy.header(header), original.header(header), "{header}");
    }
    eventually("the counters", WAIT, async || {
        (mirror_total(&gateway, "answered").await == 60.0).then_some(())
    })
    .await;
    for result in ["failed", "dropped", "skipped"] {
        assert_eq!(mirror_total(&gateway, result).await, 0.0, "{result}");
    }
}

#[tokio::test]
async fn bodies_are_copied_up_to_max_body_size_or_left_out_as_mirror_body_says() {
    let (main, limited, bodiless) = (
        Upstream::start("main"),
        Upstream::start("limited"),
        Upstream::start("bodiless"),
    );
    let backends = [
        service("main", &[main.addr()]),
        service("limited", &[limited.addr()]),
        service("bodiless", &[bodiless.addr()]),
    ]
    .join("---\n");
    let manifests = [
        mirroring("limited", "    maxBodySize: 10\n", &[("limited", 100)]),
        route("/limited", "limited"),
        mirroring("bodiless", "    mirrorBody: false\n", &[("bodiless", 100)]),
        route("/bodiless", "bodiless"),
    ]
    .join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("mirroring", &manifests)],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");
    let web = gateway.addr("web");

    let small = http_request(web, "POST", "/limited/small", &[], b"0123456789").await;
    assert_eq!(small.status, 200, "{}", small.text());
    let large = http_request(web, "POST", "/limited/large", &[], b"0123456789A").await;
    assert_eq!(large.status, 200, "{}", large.text());
    let stripped = http_request(web, "POST", "/bodiless/x", &[], b"payload").await;
    assert_eq!(stripped.status, 200, "{}", stripped.text());

    eventually("the copies", WAIT, async || {
        (limited.count() == 1 && bodiless.count() == 1).then_some(())
    })
    .await;
    eventually("the skipped copy counted", WAIT, async || {
        (mirror_total(&gateway, "skipped").await == 1.0).then_some(())
    })
    .await;
    // The main service always gets the whole body.
    let bodies: Vec<_> = main.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [
            b"0123456789".to_vec(),
            b"0123456789A".to_vec(),
            b"payload".to_vec()
        ]
    );
    // At maxBodySize: copied with its body; one byte over it: not copied at all.
    let copies = limited.requests();
    assert_eq!(copies[0].path, "/limited/small");
    assert_eq!(copies[0].body, b"0123456789");
    assert_eq!(copies[0].header("content-length"), Some("10"));
    // mirrorBody: false copies the request without its body.
    let copy = &bodiless.requests()[0];
    assert_eq!(
        (copy.method.as_str(), copy.path.as_str()),
        ("POST", "/bodiless/x")
    );
    assert!(copy.body.is_empty(), "{copy:?}");
    assert_eq!(copy.header("content-length").unwrap_or("0"), "0");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(limited.count(), 1, "the large body was not mirrored");
}

#[tokio::test]
async fn a_mirror_that_fails_or_never_answers_changes_nothing_for_the_client() {
    let main = Upstream::start("main");
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            connections.push(stream);
        }
    });
    let closed = SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let backends = [
        service("main", &[main.addr()]),
        service("silent", &[silent_addr]),
        service("closed", &[closed]),
    ]
    .join("---\n");
    let mirrored = mirroring("mirrored", "", &[("closed", 100), ("silent", 100)]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("mirrored", &mirrored),
            ("route", &route("/", "mirrored")),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");

    let started = Instant::now();
    for i in 0..20 {
        let response = gateway.get("web", &format!("/r/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
        assert_eq!(response.server().as_deref(), Some("main"));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "20 requests took {elapsed:?} beside a mirror that never answers"
    );
    assert_eq!(main.count(), 20);
    // Each request's copies go in turn: the closed port's fail at once, the silent
    // mirror's wait for their deadline. Nothing answered, nothing dropped.
    eventually("the failed copies counted", WAIT, async || {
        (mirror_total(&gateway, "failed").await == 20.0).then_some(())
    })
    .await;
    assert_eq!(mirror_total(&gateway, "answered").await, 0.0);
    assert_eq!(mirror_total(&gateway, "dropped").await, 0.0);
    held.abort();
}

#[tokio::test]
async fn copies_reach_an_h2c_mirror() {
    let (main, h2c) = (Upstream::start("main"), Upstream::start_h2c("h2c"));
    let backends = [
        service("main", &[main.addr()]),
        service("h2c", &[h2c.addr()]),
    ]
    .join("---\n");
    let mirrored = format!(
        "{}        scheme: h2c\n",
        mirroring("mirrored", "", &[("h2c", 100)])
    );
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("mirrored", &mirrored),
            ("route", &route("/", "mirrored")),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");
    let response = http_request(gateway.addr("web"), "PUT", "/over/h2c?x=1", &[], b"data").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let copy = eventually("the copy", WAIT, async || h2c.requests().pop()).await;
    assert_eq!(
        (copy.method.as_str(), copy.path.as_str()),
        ("PUT", "/over/h2c?x=1")
    );
    assert_eq!(copy.body, b"data");
    assert!(copy.raw_head.is_empty(), "received over HTTP/2");
    // Counted once its answer has been read.
    eventually("the answered copy counted", WAIT, async || {
        (mirror_total(&gateway, "answered").await == 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn each_copy_is_a_client_span_of_the_request_trace_with_its_context_injected() {
    let collector = Collector::start().await;
    let extra = format!(
        "tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{}\"}}}}
",
        collector.traces_http_url()
    );
    let (main, copy) = (Upstream::start("main"), Upstream::start("copy"));
    let backends = [
        service("main", &[main.addr()]),
        service("copy", &[copy.addr()]),
    ]
    .join("---\n");
    let mirrored = mirroring("mirrored", "", &[("copy", 100)]);
    let gateway = Gateway::start(
        &config(&extra),
        &[
            ("backends", &backends),
            ("mirrored", &mirrored),
            ("route", &route("/", "mirrored")),
        ],
    )
    .await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = gateway
        .get("web", "/traced", &[("traceparent", parent)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let spans = eventually("the SERVER span and both CLIENT spans", WAIT, async || {
        let spans: Vec<_> = collector
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect();
        (spans.len() >= 3).then_some(spans)
    })
    .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server)
        .expect("a SERVER span");
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 2, "{spans:#?}");
    let mirror = clients
        .iter()
        .find(|s| s.attr("traverse.mirror") == Some("true"))
        .unwrap_or_else(|| panic!("a mirror CLIENT span: {clients:#?}"));
    assert_eq!(mirror.parent_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(mirror.attr("traverse.service"), Some("default/copy:http"));
    assert_eq!(mirror.attr("http.request.method"), Some("GET"));
    assert_eq!(mirror.attr("http.response.status_code"), Some("200"));
    assert_eq!(
        mirror.attr("server.port"),
        Some(copy.port().to_string().as_str())
    );
    // The copy carries the mirror span's context; the main request its own attempt's.
    let received = eventually("the copy", WAIT, async || copy.requests().pop()).await;
    assert_eq!(
        received.header("traceparent"),
        Some(format!("00-{trace_id}-{}-01", mirror.span_id).as_str())
    );
    let main_request = &main.requests()[0];
    let attempt = clients
        .iter()
        .find(|s| s.attr("traverse.mirror").is_none())
        .expect("the attempt's CLIENT span");
    assert_eq!(
        main_request.header("traceparent"),
        Some(format!("00-{trace_id}-{}-01", attempt.span_id).as_str())
    );
}

/// The shares count the requests that reach the mirroring service: one a middleware
/// answers (here 403 from `ipAllowList`) is neither copied nor counted, as Traefik
/// mirrors in the service handler, after the route's middlewares.
#[tokio::test]
async fn requests_a_middleware_answers_do_not_count_towards_the_shares() {
    let (main, half) = (Upstream::start("main"), Upstream::start("half"));
    let backends = [
        service("main", &[main.addr()]),
        service("half", &[half.addr()]),
    ]
    .join("---\n");
    let mirrored = mirroring("mirrored", "", &[("half", 50)]);
    let routes = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: elsewhere
  namespace: default
spec:
  ipAllowList:
    sourceRange: [10.0.0.0/8]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: both
  namespace: default
spec:
  routes:
    - match: PathPrefix(`/open`)
      services:
        - name: mirrored
          kind: TraefikService
    - match: PathPrefix(`/guarded`)
      middlewares:
        - name: elsewhere
      services:
        - name: mirrored
          kind: TraefikService
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("mirrored", &mirrored),
            ("routes", routes),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");

    // Refused and served requests in turn: were the refused ones counted, every served
    // one would fall on a mirrored turn.
    for i in 0..8 {
        let refused = gateway.get("web", &format!("/guarded/{i}"), &[]).await;
        assert_eq!(refused.status, 403, "request {i}");
        let served = gateway.get("web", &format!("/open/{i}"), &[]).await;
        assert_eq!(served.status, 200, "request {i}");
        assert_eq!(served.server().as_deref(), Some("main"), "request {i}");
    }
    eventually("the copies", WAIT, async || {
        (mirror_total(&gateway, "answered").await >= 4.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(main.count(), 8);
    assert_eq!(
        half.count(),
        4,
        "50 % of the 8 requests that reached the service"
    );
    assert_eq!(
        half.count_path("/guarded"),
        0,
        "a refused request is never copied"
    );
    assert_eq!(mirror_total(&gateway, "answered").await, 4.0);
}

/// A mirroring whose main service is a `weighted` or a `failover` TraefikService: the
/// requests are balanced (or fail over, here on a failing health check) as without the
/// mirroring, every one is copied, and `/api/routes` lists each route's mirrors.
#[tokio::test]
async fn a_mirroring_of_a_weighted_or_failover_service_balances_and_copies() {
    let (a, b, primary, spare, copy) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("primary"),
        Upstream::start("spare"),
        Upstream::start("copy"),
    );
    let backends = [
        service("a", &[a.addr()]),
        service("b", &[b.addr()]),
        service("primary", &[primary.addr()]),
        service("spare", &[spare.addr()]),
        service("copy", &[copy.addr()]),
    ]
    .join("---\n");
    let wrap = |name: &str, service: &str, extra: &str| {
        format!(
            "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: {name}
  namespace: default
spec:
  weighted:
    services:
      - name: {service}
        port: 80
{extra}"
        )
    };
    let mirror_of = |name: &str, main: &str| {
        format!(
            "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: {name}
  namespace: default
spec:
  mirroring:
    name: {main}
    kind: TraefikService
    mirrors:
      - name: copy
        port: 80
        percent: 100
"
        )
    };
    let services = [
        "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: split
  namespace: default
spec:
  weighted:
    services:
      - {name: a, port: 80}
      - {name: b, port: 80}
"
        .to_owned(),
        // The primary's check path answers 503: it is never in rotation.
        wrap(
            "primary-wrr",
            "primary",
            "        healthCheck: {path: /status/503, interval: 100ms}\n",
        ),
        wrap("spare-wrr", "spare", ""),
        "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: fo
  namespace: default
spec:
  failover:
    service: primary-wrr
    fallback: spare-wrr
"
        .to_owned(),
        mirror_of("mirrored-split", "split"),
        mirror_of("mirrored-fo", "fo"),
    ]
    .join("---\n");
    let routes = [
        route("/split", "mirrored-split"),
        route("/fo", "mirrored-fo"),
    ]
    .join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("services", &services),
            ("routes", &routes),
        ],
    )
    .await;
    let json = gateway
        .wait_for("the primary out of rotation", WAIT, |json| {
            json["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["services"].as_array().into_iter().flatten())
                .any(|s| s["unhealthy"] == serde_json::json!([primary.addr().to_string()]))
        })
        .await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");
    for route in json["routes"].as_array().expect("routes") {
        let rule = route["rule"].as_str().unwrap_or("");
        let mirroring = if rule.contains("/split") {
            "default/mirrored-split"
        } else {
            "default/mirrored-fo"
        };
        assert_eq!(
            route["mirrors"],
            serde_json::json!([{
                "mirroring": mirroring,
                "name": "default/copy:http",
                "percent": 100,
                "servers": [copy.addr().to_string()],
            }]),
            "{json:#}"
        );
    }

    let mut split = Vec::new();
    for i in 0..4 {
        let response = gateway.get("web", &format!("/split/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}");
        split.push(response.server().unwrap_or_default());
    }
    split.sort();
    assert_eq!(split, ["a", "a", "b", "b"], "weighted round robin");
    for i in 0..4 {
        let response = gateway.get("web", &format!("/fo/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.server().as_deref(), Some("spare"), "request {i}");
    }
    eventually("every copy", WAIT, async || {
        (copy.count_path("/split") == 4 && copy.count_path("/fo") == 4).then_some(())
    })
    .await;
    assert_eq!(primary.count_path("/fo"), 0);
}
