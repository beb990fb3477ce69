//! Metrics and access logs end to end: the real gateway, the real rotel collector, and
//! `/metrics` read with the Python Prometheus client's parsers. The three signals must
//! agree: counts equal the requests sent, and every access log record carries the ids
//! of its request's SERVER span.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use traverse_e2e::collector::{DataPoint, SpanKind, Telemetry};
use traverse_e2e::prometheus::{self, Format};
use traverse_e2e::{route, service, Collector, Gateway, Upstream};

const WAIT: Duration = Duration::from_secs(15);
/// Requests of the first test; 3 of them carry a valid inbound trace context.
const REQUESTS: usize = 7;
const WITH_CONTEXT: usize = 3;

fn manifests(upstream: &Upstream) -> Vec<(&'static str, String)> {
    vec![
        ("app", service("app", &[upstream.addr()])),
        (
            "route",
            route("app", "PathPrefix(`/app`) || PathPrefix(`/delay`)", "app"),
        ),
    ]
}

async fn start(config: &str, upstream: &Upstream) -> Gateway {
    let manifests = manifests(upstream);
    let manifests: Vec<(&str, &str)> = manifests.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Gateway::start(config, &manifests).await
}

/// `/metrics` in `format`, parsed by the reference parser (which fails on bad syntax).
async fn scrape(gateway: &Gateway, format: Format) -> Vec<prometheus::Family> {
    let response = gateway
        .get("admin", "/metrics", &[("accept", format.accept())])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    prometheus::parse(&text, format).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The access log file's records, once `n` have been written.
async fn access_records(gateway: &Gateway, n: usize) -> Vec<Value> {
    let path = gateway.dir().join("access.log");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= n || tokio::time::Instant::now() > deadline {
            return lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The latest cumulative value of each series of `metric` pushed so far, keyed by
/// attributes; for histograms the value is the count.
fn latest(telemetry: &Telemetry, metric: &str) -> BTreeMap<String, f64> {
    let mut latest = BTreeMap::new();
    for point in telemetry.data_points.iter().filter(|p| p.metric == metric) {
        let value = point
            .value
            .or(point.count.map(|c| c as f64))
            .unwrap_or_default();
        latest.insert(format!("{:?}", point.attributes), value);
    }
    latest
}

fn total(telemetry: &Telemetry, metric: &str) -> f64 {
    latest(telemetry, metric).values().sum()
}

/// The trace id request `i` sends in its traceparent.
fn inbound_trace_id(i: usize) -> String {
    format!("{:032x}", 0xabc0 + i)
}

fn str_field<'a>(record: &'a Value, name: &str) -> &'a str {
    record[name].as_str().unwrap_or_default()
}

#[tokio::test]
async fn counters_histograms_access_logs_and_spans_agree() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let config = format!(
        "cluster: {{name: metrics-cluster}}
entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
tracing:
  serviceName: gw-e2e
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{traces}\"}}}}
metrics:
  prometheus: {{addRoutersLabels: true}}
  otlp:
    grpc: {{endpoint: \"{grpc}\"}}
    pushInterval: 1s
    addRoutersLabels: true
logs:
  access:
    enabled: true
    format: json
    filePath: access.log
    otlp: {{http: {{endpoint: \"{logs}\"}}}}
",
        traces = collector.traces_http_url(),
        grpc = collector.grpc_endpoint(),
        logs = collector.logs_http_url(),
    );
    // Both a file and OTLP: the file is set, so text lines are written as well.
    let gateway = start(&config, &upstream).await;

    for i in 0..REQUESTS {
        let traceparent = format!("00-{}-{:016x}-01", inbound_trace_id(i), 0x1230 + i);
        let headers: Vec<(&str, &str)> = if i < WITH_CONTEXT {
            vec![("traceparent", traceparent.as_str())]
        } else {
            vec![]
        };
        let response = gateway.get("web", "/app/item?id=1", &headers).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    // Spans: one SERVER span per request; its ids are what the other signals name.
    let spans = collector
        .wait_until("the SERVER spans", WAIT, |t| {
            let servers: Vec<_> = t
                .spans
                .iter()
                .filter(|s| s.kind == SpanKind::Server)
                .cloned()
                .collect();
            (servers.len() >= REQUESTS).then_some(servers)
        })
        .await;
    assert_eq!(spans.len(), REQUESTS);
    // `PathPrefix(`/app`) || PathPrefix(`/delay`)`: the alternatives share only `/`.
    let route = "/*";
    for span in &spans {
        assert_eq!(span.name, format!("GET {route}"), "{span:#?}");
        assert_eq!(span.attr("http.route"), Some(route), "{span:#?}");
    }
    let server_span: BTreeMap<String, String> = spans
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();

    // Prometheus text: counts equal N; trace-context health counts exactly the
    // requests sent without context.
    let families = scrape(&gateway, Format::Text).await;
    let web = [("entrypoint", "web")];
    assert_eq!(
        prometheus::sum(&families, "traverse_entrypoint_requests_total", &web),
        REQUESTS as f64
    );
    let ok = [("code", "200"), ("router", "default/app#0")];
    assert_eq!(
        prometheus::sum(&families, "traverse_router_requests_total", &ok),
        REQUESTS as f64
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "traverse_service_requests_total",
            &[("code", "200")]
        ),
        REQUESTS as f64
    );
    assert_eq!(
        prometheus::sum(&families, "http_server_request_duration_seconds_count", &[]),
        REQUESTS as f64
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "http_server_request_duration_seconds_count",
            &[("http_route", route), ("url_scheme", "http")]
        ),
        REQUESTS as f64,
        "http.route labels the server duration"
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "http_server_request_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        REQUESTS as f64
    );
    assert_eq!(
        prometheus::sum(&families, "http_client_request_duration_seconds_count", &[]),
        REQUESTS as f64
    );
    let context = |state| {
        prometheus::sum(
            &families,
            "traverse_trace_context_requests_total",
            &[("entrypoint", "web"), ("context", state)],
        )
    };
    assert_eq!(context("missing"), (REQUESTS - WITH_CONTEXT) as f64);
    assert_eq!(context("valid"), WITH_CONTEXT as f64);
    assert_eq!(
        prometheus::sum(&families, "http_server_active_requests", &web),
        0.0
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "traverse_service_server_up",
            &[("url", &format!("http://{}", upstream.addr()))]
        ),
        1.0
    );
    assert!(
        prometheus::sum(
            &families,
            "traverse_config_reloads_total",
            &[("result", "success")]
        ) >= 1.0
    );

    // OpenMetrics: the same counts, and exemplars that name SERVER spans.
    let families = scrape(&gateway, Format::OpenMetrics).await;
    assert_eq!(
        prometheus::sum(&families, "traverse_entrypoint_requests_total", &web),
        REQUESTS as f64
    );
    let exemplars: Vec<_> = prometheus::exemplars(&families).collect();
    assert!(!exemplars.is_empty(), "no exemplars");
    for (family, sample, exemplar) in exemplars {
        let trace_id = &exemplar.labels["trace_id"];
        assert_eq!(
            server_span.get(trace_id),
            exemplar.labels.get("span_id"),
            "{} {:?}: exemplar of an unknown span",
            family.name,
            sample.labels
        );
    }

    // OTLP metrics over gRPC: the pushed cumulative values reach N.
    let pushed = collector
        .wait_until("pushed request counts of N", WAIT, |t| {
            (total(t, "traverse.entrypoint.requests") == REQUESTS as f64
                && total(t, "http.server.request.duration") == REQUESTS as f64)
                .then(|| t.clone())
        })
        .await;
    let point: &DataPoint = pushed
        .data_points
        .iter()
        .find(|p| p.metric == "http.server.request.duration")
        .expect("histogram pushed");
    assert_eq!(point.data_type, "Histogram");
    assert_eq!(point.unit, "s");
    assert_eq!(point.explicit_bounds.first(), Some(&0.005));
    assert_eq!(point.explicit_bounds.last(), Some(&10.0));
    assert_eq!(
        point.resource.get("k8s.cluster.name").map(String::as_str),
        Some("metrics-cluster")
    );
    assert_eq!(total(&pushed, "traverse.router.requests"), REQUESTS as f64);

    // Access log file: N records, each naming its SERVER span.
    let records = access_records(&gateway, REQUESTS).await;
    assert_eq!(records.len(), REQUESTS);
    for record in &records {
        let trace_id = str_field(record, "trace_id");
        assert_eq!(
            server_span.get(trace_id).map(String::as_str),
            Some(str_field(record, "span_id")),
            "{record}"
        );
        assert_eq!(str_field(record, "RequestPath"), "/app/item?id=1");
        assert_eq!(str_field(record, "RouterName"), "default/app#0");
        assert_eq!(str_field(record, "http.route"), route);
        assert_eq!(record["DownstreamStatus"], 200);
        assert_eq!(record["OriginStatus"], 200);
        assert!(
            record["Duration"].as_u64().is_some_and(|d| d > 0),
            "{record}"
        );
    }
    for i in 0..WITH_CONTEXT {
        let inbound = inbound_trace_id(i);
        assert!(
            records.iter().any(|r| str_field(r, "trace_id") == inbound),
            "the continued trace {inbound} keeps the caller's id"
        );
    }

    // OTLP access log records: trace and span id fields set (not only in the body).
    let logs = collector.wait_for_logs(REQUESTS, WAIT).await;
    assert_eq!(logs.len(), REQUESTS);
    for log in &logs {
        let trace_id = log.trace_id.as_deref().expect("trace id field set");
        assert_eq!(
            server_span.get(trace_id).map(String::as_str),
            log.span_id.as_deref(),
            "{log:?}"
        );
        assert_eq!(log.severity_text, "INFO");
        assert_eq!(log.severity_number, 9);
        assert_eq!(
            log.resource.get("service.name").map(String::as_str),
            Some("gw-e2e")
        );
        assert_eq!(log.attr("RouterName"), Some("default/app#0"));
        assert_eq!(log.attr("http.route"), Some(route));
    }
}

#[tokio::test]
async fn access_log_header_modes_field_drops_and_filters() {
    let upstream = Upstream::start("app");
    let config = "entryPoints:
  web: {address: \"{web}\"}
admin: {address: \"{admin}\"}
providers: {file: {directory: manifests}}
logs:
  access:
    enabled: true
    format: json
    filePath: access.log
    filters: {statusCodes: [\"400-499\"], minDuration: 300ms}
    fields:
      general: {defaultMode: keep, names: {ClientHost: drop, ClientPort: drop}}
      headers:
        defaultMode: drop
        names: {User-Agent: keep, Authorization: redact, Content-Type: keep}
";
    let gateway = start(config, &upstream).await;
    let headers = [
        ("user-agent", "e2e/2"),
        ("authorization", "Bearer secret-token"),
        ("x-secret", "hidden"),
    ];
    // Kept: a 404 (status filter) and a slow 200 (duration filter). Not kept: fast 200s.
    assert_eq!(gateway.get("web", "/app/fast", &headers).await.status, 200);
    assert_eq!(gateway.get("web", "/missing", &headers).await.status, 404);
    assert_eq!(gateway.get("web", "/delay/400", &headers).await.status, 200);
    assert_eq!(gateway.get("web", "/app/fast2", &headers).await.status, 200);

    let records = access_records(&gateway, 2).await;
    // The writer flushes as soon as its queue is empty: a third line would be there too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records_after = access_records(&gateway, 2).await;
    assert_eq!(records_after.len(), records.len());
    let paths: Vec<&str> = records
        .iter()
        .map(|r| str_field(r, "RequestPath"))
        .collect();
    assert_eq!(paths, ["/missing", "/delay/400"], "{records:#?}");

    for record in &records {
        let object = record.as_object().expect("object");
        assert_eq!(str_field(record, "request_User-Agent"), "e2e/2");
        assert_eq!(str_field(record, "request_Authorization"), "REDACTED");
        assert!(!record.to_string().contains("secret-token"), "{record}");
        assert!(!object.contains_key("request_X-Secret"), "{record}");
        assert!(!object.contains_key("ClientHost"), "{record}");
        assert!(!object.contains_key("ClientPort"), "{record}");
        assert!(object.contains_key("ClientAddr"), "{record}");
        // No tracing configured: no ids.
        assert!(!object.contains_key("trace_id"), "{record}");
    }
    assert_eq!(records[0]["DownstreamStatus"], 404);
    assert!(records[0].get("RouterName").is_none());
    assert!(
        records[0]
            .get("downstream_Content-Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("text/plain")),
        "response headers are captured too: {}",
        records[0]
    );
    assert!(records[1]["Duration"]
        .as_u64()
        .is_some_and(|d| d >= 400_000_000));
}

#[tokio::test]
async fn gateway_logs_and_http_metrics_push_reach_the_collector() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let config = format!(
        "cluster: {{name: logs-cluster}}
entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
tracing:
  serviceName: gw-logs
metrics:
  prometheus: {{enabled: false}}
  otlp:
    http: {{endpoint: \"{metrics}\"}}
    pushInterval: 1s
    serviceName: gw-metrics
    addServicesLabels: false
logs:
  general:
    otlp: {{http: {{endpoint: \"{logs}\"}}}}
",
        metrics = collector.metrics_http_url(),
        logs = collector.logs_http_url(),
    );
    let gateway = start(&config, &upstream).await;
    for _ in 0..2 {
        assert_eq!(gateway.get("web", "/app", &[]).await.status, 200);
    }

    // The gateway's own start-up line, as an OTLP log record with the shared resource.
    let started = collector
        .wait_until("the start-up log record", WAIT, |t| {
            t.logs
                .iter()
                .find(|l| l.body.contains("traverse started"))
                .cloned()
        })
        .await;
    assert_eq!(started.severity_text, "INFO");
    assert_eq!(started.trace_id, None, "gateway logs carry no request ids");
    assert_eq!(
        started.resource.get("service.name").map(String::as_str),
        Some("gw-logs")
    );
    assert_eq!(
        started.resource.get("k8s.cluster.name").map(String::as_str),
        Some("logs-cluster")
    );

    // Metrics over HTTP: the push's own service name, only the families it asked for.
    let pushed = collector
        .wait_until("two pushed requests", WAIT, |t| {
            (total(t, "traverse.entrypoint.requests") == 2.0).then(|| t.clone())
        })
        .await;
    let point = pushed
        .data_points
        .iter()
        .find(|p| p.metric == "traverse.entrypoint.requests")
        .expect("pushed");
    assert_eq!(
        point.resource.get("service.name").map(String::as_str),
        Some("gw-metrics")
    );
    assert!(
        !pushed
            .data_points
            .iter()
            .any(|p| p.metric.starts_with("traverse.service.")),
        "addServicesLabels: false"
    );
    // Prometheus is off: no /metrics.
    assert_eq!(gateway.get("admin", "/metrics", &[]).await.status, 404);
}

#[tokio::test]
async fn common_format_and_admin_requests_with_add_internals() {
    let upstream = Upstream::start("app");
    let config = "entryPoints:
  web: {address: \"{web}\"}
admin: {address: \"{admin}\"}
providers: {file: {directory: manifests}}
logs:
  access:
    enabled: true
    filePath: access.log
    addInternals: true
    fields: {headers: {names: {User-Agent: keep}}}
";
    let gateway = start(config, &upstream).await;
    let response = gateway
        .get("web", "/app/page?q=1", &[("user-agent", "e2e/3")])
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(gateway.get("admin", "/livez", &[]).await.status, 200);

    let path = gateway.dir().join("access.log");
    let lines = traverse_e2e::eventually("the access log lines", WAIT, async || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        (text.contains("/app/page") && text.contains("/livez")).then_some(text)
    })
    .await;
    let app = lines
        .lines()
        .find(|l| l.contains("/app/page"))
        .expect("app line");
    // Traefik's common format: client - user [time] "request" status size "referer"
    // "agent" count "router" "service URL" duration.
    let expected_start = "127.0.0.1 - - [";
    assert!(app.starts_with(expected_start), "{app}");
    let request_line = "] \"GET /app/page?q=1 HTTP/1.1\" 200 ";
    assert!(app.contains(request_line), "{app}");
    assert!(app.contains(" \"-\" \"e2e/3\" "), "{app}");
    let service = format!(" \"default/app#0\" \"http://{}\" ", upstream.addr());
    assert!(app.contains(&service), "{app}");
    assert!(app.ends_with("ms"), "{app}");
    let admin = lines
        .lines()
        .find(|l| l.contains("/livez"))
        .expect("admin line");
    assert!(admin.contains("\"GET /livez HTTP/1.1\" 200 "), "{admin}");
}
