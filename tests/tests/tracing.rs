//! Tracing end to end: the real gateway exports to the real rotel collector, and a test
//! upstream records the trace context it received.

use std::time::Duration;

use traverse_e2e::collector::{Span, SpanKind, StatusCode};
use traverse_e2e::{eventually, http_get, route, service, Collector, Gateway, Response, Upstream};

const WAIT: Duration = Duration::from_secs(10);
const INBOUND_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const INBOUND_SPAN: &str = "b7ad6b7169203331";

/// Entrypoints `web` (policy `continue`), `edge` (`new-and-link`) and `strict` (`ignore`);
/// `tracing` is appended under the `tracing:` key.
fn config(tracing: &str) -> String {
    format!(
        "cluster: {{name: test-cluster}}
entryPoints:
  web: {{address: \"{{web}}\"}}
  edge: {{address: \"{{edge}}\", traceContext: new-and-link}}
  strict: {{address: \"{{strict}}\", traceContext: ignore}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
tracing:
  queue: {{scheduleDelay: 50ms}}
{tracing}"
    )
}

fn http_export(collector: &Collector) -> String {
    format!(
        "  otlp: {{http: {{endpoint: \"{}\"}}}}\n",
        collector.traces_http_url()
    )
}

/// A gateway routing everything to one recording upstream, exporting to `collector`.
async fn start(tracing: &str, upstream: &Upstream) -> Gateway {
    Gateway::start(
        &config(tracing),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

async fn get(gateway: &Gateway, entry_point: &str, headers: &[(&str, &str)]) -> Response {
    let response = gateway.get(entry_point, "/hello?x=1", headers).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

/// The one traceparent the upstream received, split into (trace id, parent id, flags).
fn upstream_context(response: &Response) -> (String, String, String) {
    let values = response.upstream_headers("traceparent");
    assert_eq!(
        values.len(),
        1,
        "exactly one traceparent upstream: {values:?}"
    );
    let parts: Vec<&str> = values[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{values:?}");
    assert_eq!(parts[0], "00");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

/// The SERVER and CLIENT spans of trace `trace_id`, once both have arrived.
async fn request_spans(collector: &Collector, trace_id: &str) -> (Span, Span) {
    let spans = collector
        .wait_until(
            &format!("server and client spans of {trace_id}"),
            WAIT,
            |t| {
                let of_trace: Vec<Span> = t
                    .spans
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect();
                (of_trace.len() >= 2).then_some(of_trace)
            },
        )
        .await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server);
    let client = spans.iter().find(|s| s.kind == SpanKind::Client);
    match (server, client) {
        (Some(server), Some(client)) => (server.clone(), client.clone()),
        _ => panic!("expected a SERVER and a CLIENT span: {spans:#?}"),
    }
}

#[tokio::test]
async fn a_request_is_one_trace_of_server_and_client_spans() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let gateway = start(&http_export(&collector), &upstream).await;

    let response = get(&gateway, "web", &[("user-agent", "e2e/1")]).await;
    let (trace_id, parent_id, flags) = upstream_context(&response);
    assert_eq!(flags, "03", "a trace started here is sampled and random");
    let (server, client) = request_spans(&collector, &trace_id).await;

    assert_eq!(server.parent_id, None, "no inbound context: a root span");
    assert_eq!(client.parent_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(
        parent_id, client.span_id,
        "upstream's parent is the CLIENT span"
    );
    assert_eq!(server.name, "GET /*", "{{method}} {{http.route}}");
    assert_eq!(client.name, "GET /*");
    assert_eq!(server.status_code, StatusCode::Unset);

    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/hello"),
        ("url.scheme", "http"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "e2e/1"),
        ("http.response.status_code", "200"),
        ("http.route", "/*"),
        ("traverse.role", "standalone"),
        ("traverse.entrypoint", "web"),
        ("traverse.router", "default/app#0"),
        ("traverse.service", "default/app:http"),
    ] {
        assert_eq!(server.attr(key), Some(value), "SERVER {key}: {server:#?}");
    }
    assert_eq!(
        server
            .raw_attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("Int(200)")
    );
    assert_eq!(
        server.attr("server.port"),
        Some(gateway.port("web").to_string().as_str())
    );
    assert_eq!(server.attr("error.type"), None);

    for (key, value) in [
        ("http.request.method", "GET"),
        ("server.address", "127.0.0.1"),
        ("network.peer.address", "127.0.0.1"),
        ("http.response.status_code", "200"),
        ("traverse.attempt", "1"),
        ("traverse.service", "default/app:http"),
    ] {
        assert_eq!(client.attr(key), Some(value), "CLIENT {key}: {client:#?}");
    }
    assert_eq!(
        client.attr("server.port"),
        Some(upstream.port().to_string().as_str())
    );

    for span in [&server, &client] {
        assert_eq!(span.resource_attr("service.name"), Some("traverse"));
        assert_eq!(span.resource_attr("k8s.cluster.name"), Some("test-cluster"));
        assert_eq!(span.resource_attr("traverse.role"), Some("standalone"));
        assert!(span.resource_attr("service.instance.id").is_some());
        assert_eq!(span.scope_name, "traverse");
        assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
    }
    assert!(server.start_time_unix_nano <= client.start_time_unix_nano);
    assert!(client.end_time_unix_nano <= server.end_time_unix_nano);
    // The harness polls /readyz while starting: internal traffic is not traced by default.
    assert!(
        collector.spans().iter().all(|s| !s.name.contains("readyz")),
        "admin traffic traced without addInternals"
    );
}

#[tokio::test]
async fn spans_are_named_by_the_route_template_of_every_rule_kind() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let gateway = Gateway::start(
        &config(&http_export(&collector)),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("exact", &route("exact", "Path(`/exact`)", "app")),
            ("prefix", &route("prefix", "PathPrefix(`/api`)", "app")),
            (
                "regexp",
                &route("regexp", "PathRegexp(`^/users/[0-9]+$`)", "app"),
            ),
            ("host", &route("host", "Host(`host.example`)", "app")),
        ],
    )
    .await;
    // (path, Host header, http.route, router): the name never carries the raw path.
    let cases = [
        ("/exact", None, "/exact", "default/exact#0"),
        ("/api/items/42", None, "/api/*", "default/prefix#0"),
        ("/users/17", None, "/users/*", "default/regexp#0"),
        ("/any/where", Some("host.example"), "/*", "default/host#0"),
    ];
    for (path, host, template, router) in cases {
        let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
        let response = gateway.get("web", path, &headers).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let (trace_id, _, _) = upstream_context(&response);
        let (server, client) = request_spans(&collector, &trace_id).await;
        assert_eq!(server.name, format!("GET {template}"), "{path}");
        assert_eq!(client.name, format!("GET {template}"), "{path}");
        assert_eq!(server.attr("http.route"), Some(template), "{path}");
        assert_eq!(server.attr("traverse.router"), Some(router), "{path}");
        assert_eq!(client.attr("traverse.router"), Some(router), "{path}");
        assert_eq!(server.attr("url.path"), Some(path), "{path}");
        assert_eq!(server.attr("url.scheme"), Some("http"), "{path}");
    }
}

#[tokio::test]
async fn grpc_export_delivers_the_same_spans() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let tracing = format!(
        "  serviceName: edge-gateway\n  otlp: {{grpc: {{endpoint: \"{}\", insecure: true}}}}\n",
        collector.grpc_addr()
    );
    let gateway = start(&tracing, &upstream).await;
    let response = get(&gateway, "web", &[]).await;
    let (trace_id, parent_id, _) = upstream_context(&response);
    let (server, client) = request_spans(&collector, &trace_id).await;
    assert_eq!(client.span_id, parent_id);
    assert_eq!(client.parent_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(server.resource_attr("service.name"), Some("edge-gateway"));
}

#[tokio::test]
async fn inbound_context_is_continued_on_a_continue_entrypoint() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let gateway = start(&http_export(&collector), &upstream).await;

    let inbound = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-01");
    let response = get(
        &gateway,
        "web",
        &[
            ("traceparent", &inbound),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ],
    )
    .await;
    let (trace_id, parent_id, flags) = upstream_context(&response);
    assert_eq!(trace_id, INBOUND_TRACE);
    assert_eq!(flags, "01", "the caller's flags as received: not random");
    assert_eq!(
        response.upstream_headers("tracestate"),
        ["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"],
        "tracestate passes through"
    );
    let (server, client) = request_spans(&collector, INBOUND_TRACE).await;
    assert_eq!(server.parent_id.as_deref(), Some(INBOUND_SPAN));
    assert_eq!(client.span_id, parent_id);
    assert!(server.links.is_empty());

    // The caller's random flag is kept as received, sampled or not.
    for flags in ["03", "02"] {
        let inbound = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-{flags}");
        let response = get(&gateway, "web", &[("traceparent", &inbound)]).await;
        assert_eq!(upstream_context(&response).2, flags);
    }
}

#[tokio::test]
async fn new_and_link_and_ignore_start_new_traces() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let gateway = start(&http_export(&collector), &upstream).await;
    let inbound = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-01");

    let linked = get(&gateway, "edge", &[("traceparent", &inbound)]).await;
    let (linked_trace, _, _) = upstream_context(&linked);
    assert_ne!(linked_trace, INBOUND_TRACE);
    let (server, _) = request_spans(&collector, &linked_trace).await;
    assert_eq!(server.parent_id, None);
    assert_eq!(server.links.len(), 1, "{server:#?}");
    assert_eq!(server.links[0].trace_id, INBOUND_TRACE);
    assert_eq!(server.links[0].span_id, INBOUND_SPAN);
    assert_eq!(server.attr("traverse.entrypoint"), Some("edge"));

    let ignored = get(
        &gateway,
        "strict",
        &[("traceparent", &inbound), ("tracestate", "spoofed=1")],
    )
    .await;
    let (ignored_trace, _, _) = upstream_context(&ignored);
    assert_ne!(ignored_trace, INBOUND_TRACE);
    assert!(
        ignored.upstream_headers("tracestate").is_empty(),
        "caller's tracestate dropped"
    );
    let (server, _) = request_spans(&collector, &ignored_trace).await;
    assert_eq!(server.parent_id, None);
    assert!(server.links.is_empty());
}

#[tokio::test]
async fn malformed_trace_context_starts_a_new_trace_and_the_request_succeeds() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let gateway = start(&http_export(&collector), &upstream).await;
    let valid = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-01");
    let long_state = format!("a={}", "x".repeat(300));

    let malformed: &[&[(&str, &str)]] = &[
        &[("traceparent", "garbage")],
        &[("traceparent", "")],
        &[("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01")],
        &[("traceparent", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")],
        &[("traceparent", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
        &[("traceparent", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01")],
        &[("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1")],
        &[("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")],
        &[("traceparent", "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01")],
        &[("traceparent", &valid), ("traceparent", &valid)],
        &[("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01,00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
    ];
    for headers in malformed {
        let response = get(&gateway, "web", headers).await;
        let (trace_id, _, flags) = upstream_context(&response);
        assert_ne!(trace_id, INBOUND_TRACE, "{headers:?} must not be continued");
        assert_eq!(
            flags, "03",
            "a new trace follows our sampler (100 %), random"
        );
        let (server, _) = request_spans(&collector, &trace_id).await;
        assert_eq!(server.parent_id, None, "{headers:?}");
    }

    // A valid traceparent with a broken tracestate: the trace continues, and the
    // tracestate is discarded as a whole; a valid one is forwarded unchanged.
    let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let (first_32, the_33rd) = (many[..32].join(","), many[32].clone());
    let states: &[(&[&str], &[&str])] = &[
        (&["not a list member"], &[]),
        (&[&long_state], &[]),
        (&["ok=1,BAD KEY=2"], &[]),
        (&["ok=1", "@foo=1"], &[]),
        (&["foo="], &[]),
        (&["foo=bar=baz"], &[]),
        (&[&first_32, &the_33rd], &[]),
        (&[&first_32], &[&first_32]),
        (&["ok=1,,other=2"], &["ok=1,,other=2"]),
        (
            &["foo@@bar=1, t@abcdefghijklmnop=2", "z=3"],
            &["foo@@bar=1, t@abcdefghijklmnop=2,z=3"],
        ),
    ];
    for (lines, expected) in states {
        let mut headers = vec![("traceparent", valid.as_str())];
        headers.extend(lines.iter().map(|line| ("tracestate", *line)));
        let state = lines;
        let response = get(&gateway, "web", &headers).await;
        let (trace_id, _, _) = upstream_context(&response);
        assert_eq!(
            trace_id, INBOUND_TRACE,
            "tracestate {state:?} must not break the trace"
        );
        assert_eq!(
            response.upstream_headers("tracestate"),
            *expected,
            "tracestate {state:?}"
        );
    }
}

#[tokio::test]
async fn sample_rate_zero_exports_nothing_but_still_propagates() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let tracing = format!("  sampleRate: 0\n{}", http_export(&collector));
    let gateway = start(&tracing, &upstream).await;

    for _ in 0..5 {
        let response = get(&gateway, "web", &[]).await;
        let (trace_id, parent_id, flags) = upstream_context(&response);
        assert_eq!(flags, "02", "unsampled (and random) flags propagated");
        assert_ne!(trace_id, "0".repeat(32));
        assert_ne!(parent_id, "0".repeat(16));
    }
    // An unsampled caller stays unsampled through the gateway.
    let unsampled = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-00");
    let response = get(&gateway, "web", &[("traceparent", &unsampled)]).await;
    let (trace_id, parent_id, flags) = upstream_context(&response);
    assert_eq!((trace_id.as_str(), flags.as_str()), (INBOUND_TRACE, "00"));
    assert_ne!(
        parent_id, INBOUND_SPAN,
        "a new span id even when not recording"
    );
    collector
        .assert_no_spans_for(Duration::from_millis(500))
        .await;
    assert!(collector.spans().is_empty());

    // Parent-based: a sampled caller is recorded even at rate 0.
    let sampled = format!("00-{INBOUND_TRACE}-{INBOUND_SPAN}-01");
    let response = get(&gateway, "web", &[("traceparent", &sampled)]).await;
    let (_, _, flags) = upstream_context(&response);
    assert_eq!(flags, "01");
    request_spans(&collector, INBOUND_TRACE).await;
}

#[tokio::test]
async fn errors_are_marked_on_the_spans_and_the_trace_id_is_returned() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let tracing = format!(
        "  traceIdResponseHeader: X-Trace-Id\n{}",
        http_export(&collector)
    );
    let gateway = Gateway::start(
        &config(&tracing),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("down", &service("down", &[closed])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
            ("broken", &route("broken", "PathPrefix(`/broken`)", "down")),
        ],
    )
    .await;

    let ok = get(&gateway, "web", &[]).await;
    let (trace_id, _, _) = upstream_context(&ok);
    assert_eq!(ok.header("x-trace-id"), Some(trace_id.as_str()));

    let not_found = gateway
        .get("web", "/nowhere", &[("host", "unknown.example")])
        .await;
    let down = gateway.get("web", "/broken", &[]).await;
    assert_eq!(down.status, 502);
    let down_trace = down
        .header("x-trace-id")
        .expect("trace id on a 502")
        .to_owned();
    let (server, client) = request_spans(&collector, &down_trace).await;
    assert_eq!(server.status_code, StatusCode::Error);
    assert_eq!(server.attr("http.response.status_code"), Some("502"));
    assert!(server.attr("error.type").is_some(), "{server:#?}");
    assert_eq!(client.status_code, StatusCode::Error);
    assert!(client.attr("error.type").is_some(), "{client:#?}");
    assert_eq!(client.attr("traverse.attempt"), Some("1"));

    // `/nowhere` matched the catch-all route; a 404 from routing has no route at all.
    let _ = not_found;
    let unrouted = Gateway::start(&config(&tracing), &[]).await;
    let response = unrouted.get("web", "/", &[]).await;
    assert_eq!(response.status, 404);
    let trace = response
        .header("x-trace-id")
        .expect("trace id on a 404")
        .to_owned();
    let server = collector
        .wait_for_span("the 404's SERVER span", WAIT, |s| s.trace_id == trace)
        .await;
    assert_eq!(server.name, "GET", "no route: the method alone");
    assert_eq!(
        server.status_code,
        StatusCode::Unset,
        "a 404 is not a server error"
    );
    assert_eq!(server.attr("http.response.status_code"), Some("404"));
}

#[tokio::test]
async fn a_retried_connect_failure_is_a_second_client_span() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    // Same port, another loopback address where nothing listens.
    let refused = std::net::SocketAddr::from(([127, 0, 0, 2], upstream.port()));
    let gateway = Gateway::start(
        &config(&http_export(&collector)),
        &[
            ("app", &service("app", &[refused, upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    // Round robin over the two endpoints: one of two requests tries the closed one first.
    let mut traces = Vec::new();
    for _ in 0..2 {
        let (trace_id, _, _) = upstream_context(&get(&gateway, "web", &[]).await);
        traces.push(trace_id);
    }
    let spans = collector
        .wait_until("a trace with two CLIENT spans", WAIT, |t| {
            traces.iter().find_map(|trace| {
                let clients: Vec<Span> = t
                    .spans
                    .iter()
                    .filter(|s| &s.trace_id == trace && s.kind == SpanKind::Client)
                    .cloned()
                    .collect();
                (clients.len() == 2).then_some(clients)
            })
        })
        .await;
    let first = spans
        .iter()
        .find(|s| s.attr("traverse.attempt") == Some("1"));
    let second = spans
        .iter()
        .find(|s| s.attr("traverse.attempt") == Some("2"));
    let (Some(first), Some(second)) = (first, second) else {
        panic!("attempts 1 and 2 expected: {spans:#?}");
    };
    assert_eq!(first.status_code, StatusCode::Error);
    assert_eq!(
        first.attr("error.type"),
        Some("ConnectRefused"),
        "{first:#?}"
    );
    assert_eq!(second.status_code, StatusCode::Unset);
    assert_eq!(second.attr("http.request.resend_count"), Some("1"));
    assert_eq!(second.attr("http.response.status_code"), Some("200"));
    assert_eq!(
        first.parent_id, second.parent_id,
        "both attempts hang off the SERVER span"
    );
}

#[tokio::test]
async fn standard_variables_configure_what_the_file_leaves_unset() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let endpoint = collector.http_endpoint();
    let gateway = Gateway::start_with_env(
        &config("  addInternals: true\n"),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "from-env"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=e2e,k8s.cluster.name=ignored",
            ),
        ],
    )
    .await;
    let response = get(&gateway, "web", &[]).await;
    let (trace_id, _, _) = upstream_context(&response);
    let (server, _) = request_spans(&collector, &trace_id).await;
    assert_eq!(server.resource_attr("service.name"), Some("from-env"));
    assert_eq!(server.resource_attr("deployment.environment"), Some("e2e"));
    assert_eq!(
        server.resource_attr("k8s.cluster.name"),
        Some("test-cluster"),
        "the configured cluster name wins"
    );
    // addInternals: the admin API's own requests are traced too.
    collector
        .wait_for_span("an internal /readyz span", WAIT, |s| {
            s.name == "GET /readyz" && s.attr("traverse.internal") == Some("true")
        })
        .await;
}

#[tokio::test]
async fn an_unreachable_collector_never_fails_requests_and_shutdown_is_bounded() {
    let upstream = Upstream::start("app");
    let tracing = format!(
        "  otlp: {{http: {{endpoint: \"http://127.0.0.1:{}/v1/traces\", timeout: 1s}}}}\n  queue: {{maxSize: 8, maxBatchSize: 4, scheduleDelay: 50ms}}\n",
        Upstream::closed_port()
    );
    let mut gateway = Gateway::start(
        &config(&tracing).replace("  queue: {scheduleDelay: 50ms}\n", ""),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    for _ in 0..50 {
        let response = get(&gateway, "web", &[]).await;
        upstream_context(&response);
    }
    let admin = gateway.addr("admin");
    let telemetry = eventually(
        "spans dropped while the collector is down",
        WAIT,
        async || {
            let response = http_get(admin, "/api/telemetry", &[]).await;
            let spans = response.json()["traces"]["spans"].clone();
            (spans["dropped"].as_u64() > Some(0)).then_some(spans)
        },
    )
    .await;
    assert_eq!(telemetry["exported"], 0, "{telemetry}");

    gateway.sigterm();
    let started = std::time::Instant::now();
    let status = gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits within the flush bound");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown waited {:?}, more than the 5 s flush bound allows",
        started.elapsed()
    );
}
