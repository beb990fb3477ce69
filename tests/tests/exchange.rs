//! One record per request, end to end: what the span, the metric and the access log say
//! about a request agrees (here: the scheme, TLS version and SNI of a TLS entrypoint), and upstream selection
//! never retries onto an endpoint a request already tried, while failing endpoints are
//! passively ejected.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use traverse_e2e::client::send_tls_versions;
use traverse_e2e::collector::SpanKind;
use traverse_e2e::pki::{TestCa, Usage};
use traverse_e2e::prometheus::{self, Format};
use traverse_e2e::{route, service, Collector, Gateway, Upstream};

const WAIT: Duration = Duration::from_secs(15);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_entrypoint_reports_https_on_span_metric_and_access_log() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let ca = TestCa::new();
    let leaf = ca.issue("gw.test", &[Usage::ServerAuth]);
    let pki = tempfile::tempdir().expect("temp dir");
    let cert = pki.path().join("gw.pem");
    let key = pki.path().join("gw.key");
    std::fs::write(&cert, &leaf.cert).expect("write cert");
    std::fs::write(&key, &leaf.key).expect("write key");
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
  websecure:
    address: \"{{websecure}}\"
    tls: {{cert: \"{cert}\", key: \"{key}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{traces}\"}}}}
metrics:
  prometheus: {{}}
logs:
  access:
    enabled: true
    format: json
    filePath: access.log
",
        cert = cert.display(),
        key = key.display(),
        traces = collector.traces_http_url(),
    );
    let manifests = [
        ("app", service("app", &[upstream.addr()])),
        ("route", route("app", "PathPrefix(`/`)", "app")),
    ];
    let manifests: Vec<(&str, &str)> = manifests.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let gateway = Gateway::start(&config, &manifests).await;

    // The first request offers TLS 1.2 only; each names gw.test in the handshake (SNI)
    // and alias.test in its Host header.
    const SECURE: usize = 3;
    for i in 0..SECURE {
        let versions: &[_] = if i == 0 {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let response = send_tls_versions(
            gateway.addr("websecure"),
            "gw.test",
            &ca.pem,
            versions,
            "GET",
            &format!("/secure/{i}"),
            &[("host", "alias.test")],
        )
        .await
        .unwrap_or_else(|e| panic!("request {i} over TLS: {e}"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.upstream_header("x-forwarded-proto").as_deref(),
            Some("https")
        );
    }
    let plain = gateway.get("web", "/plain", &[]).await;
    assert_eq!(plain.status, 200, "{}", plain.text());

    // The spans.
    let spans = collector.wait_for_spans(2 * (SECURE + 1), WAIT).await;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), SECURE + 1, "{servers:#?}");
    for span in &servers {
        let expected = if span.attr("url.path") == Some("/plain") {
            "http"
        } else {
            "https"
        };
        assert_eq!(span.attr("url.scheme"), Some(expected), "{span:#?}");
        // On TLS, server.address is the handshake's name (SNI); else the Host's.
        let (address, tls_version) = match span.attr("url.path") {
            Some("/plain") => ("127.0.0.1", None),
            Some("/secure/0") => ("gw.test", Some("1.2")),
            _ => ("gw.test", Some("1.3")),
        };
        assert_eq!(span.attr("server.address"), Some(address), "{span:#?}");
        assert_eq!(span.attr("tls.protocol.version"), tls_version, "{span:#?}");
        assert_eq!(
            span.attr("tls.protocol.name"),
            tls_version.map(|_| "tls"),
            "{span:#?}"
        );
    }

    // The metric.
    let response = gateway.get("admin", "/metrics", &[]).await;
    let text = response.text();
    let families = prometheus::parse(&text, Format::Text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let count = |scheme| {
        prometheus::sum(
            &families,
            "http_server_request_duration_seconds_count",
            &[("url_scheme", scheme)],
        )
    };
    assert_eq!(
        (count("https"), count("http")),
        (SECURE as f64, 1.0),
        "{text}"
    );

    // The access log.
    let records = access_records(&gateway, SECURE + 1).await;
    assert_eq!(records.len(), SECURE + 1, "{records:#?}");
    for record in &records {
        let path = record["RequestPath"].as_str().unwrap_or_default();
        let expected = if path == "/plain" { "http" } else { "https" };
        assert_eq!(record["RequestScheme"], expected, "{record:#}");
        let (host, server_name, tls_version) = match path {
            "/plain" => ("127.0.0.1", None, None),
            "/secure/0" => ("alias.test", Some("gw.test"), Some("1.2")),
            _ => ("alias.test", Some("gw.test"), Some("1.3")),
        };
        assert_eq!(record["RequestHost"], host, "{record:#}");
        assert_eq!(record["TLSServerName"].as_str(), server_name, "{record:#}");
        assert_eq!(record["TLSVersion"].as_str(), tls_version, "{record:#}");
        assert_eq!(
            record["ServiceURL"],
            format!("http://{}", upstream.addr()),
            "the upstream's own scheme: {record:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_ejected_and_never_tried_twice_by_one_request() {
    const REQUESTS: usize = 200;
    const CONCURRENCY: usize = 8;
    const FAILURES: usize = 2;
    let live = Upstream::start("live");
    // Same port on 127.0.0.2, where nothing listens: every connect there is refused.
    let dead = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), live.port()));
    let config = traverse_e2e::config(&format!(
        "upstream:\n  passiveHealthCheck: {{failures: {FAILURES}, ejectionTime: 10m}}\n"
    ));
    let backends = service("flaky", &[live.addr(), dead]);
    let gateway = Gateway::start(
        &config,
        &[
            ("backends", &backends),
            ("routes", &route("flaky", "PathPrefix(`/`)", "flaky")),
        ],
    )
    .await;

    let gateway = std::sync::Arc::new(gateway);
    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let gateway = std::sync::Arc::clone(&gateway);
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in (worker..REQUESTS).step_by(CONCURRENCY) {
                let response = gateway.get("web", &format!("/load/{i}"), &[]).await;
                statuses.push((i, response.status, response.server()));
            }
            statuses
        }));
    }
    for worker in workers {
        for (i, status, server) in worker.await.expect("worker") {
            // Two endpoints, at most two attempts: a retry onto the endpoint that just
            // refused would end in 502.
            assert_eq!(status, 200, "request {i}");
            assert_eq!(server.as_deref(), Some("live"), "request {i}");
        }
    }
    assert_eq!(live.count(), REQUESTS);

    let load_events = || -> Vec<String> {
        gateway
            .access_events()
            .into_iter()
            .filter(|l| l.contains("path=\"/load/"))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while load_events().len() < REQUESTS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = load_events();
    let retried = events.iter().filter(|l| l.contains("attempts=2")).count();
    let direct = events.iter().filter(|l| l.contains("attempts=1")).count();
    assert_eq!(retried + direct, REQUESTS, "{}", events.join("\n"));
    eprintln!("{retried} of {REQUESTS} requests met the dead endpoint first");
    // The dead endpoint is ejected after FAILURES refusals; requests that had already
    // picked it concurrently may still find it refusing, one each at most.
    assert!(
        (FAILURES..=FAILURES + CONCURRENCY).contains(&retried),
        "{retried} requests met the dead endpoint:\n{}",
        events.join("\n")
    );

    let json = gateway.routes_json().await;
    let service = &json["routes"][0]["services"][0];
    assert_eq!(
        service["ejected"],
        serde_json::json!([dead.to_string()]),
        "{json:#}"
    );
    let response = gateway.get("admin", "/metrics", &[]).await;
    let text = response.text();
    let families = prometheus::parse(&text, Format::Text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = |address: SocketAddr| {
        prometheus::sum(
            &families,
            "traverse_service_server_up",
            &[("url", &format!("http://{address}"))],
        )
    };
    assert_eq!((up(live.addr()), up(dead)), (1.0, 0.0), "{text}");
}
