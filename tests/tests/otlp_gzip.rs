//! gzip-compressed OTLP requests, over HTTP and gRPC, are read by the real collector.

use std::time::Duration;

use traverse_e2e::collector::SpanKind;
use traverse_e2e::{route, service, Collector, Gateway, Upstream};

const WAIT: Duration = Duration::from_secs(10);

async fn gateway(otlp: &str, upstream: &Upstream) -> Gateway {
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {otlp}
"
    );
    Gateway::start(
        &config,
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

/// One request through a gateway exporting with `otlp`, then its two spans at the collector.
async fn spans_arrive(collector: &Collector, otlp: &str) {
    let upstream = Upstream::start("app");
    let gateway = gateway(otlp, &upstream).await;
    let response = gateway.get("web", "/gz", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let trace_id = response.upstream_headers("traceparent")[0]
        .split('-')
        .nth(1)
        .expect("a trace id")
        .to_owned();
    let spans = collector
        .wait_until("both spans of the request", WAIT, |t| {
            let of_trace: Vec<_> = t.spans.iter().filter(|s| s.trace_id == trace_id).collect();
            (of_trace.len() == 2)
                .then(|| of_trace.iter().map(|s| s.kind.clone()).collect::<Vec<_>>())
        })
        .await;
    assert!(spans.contains(&SpanKind::Server) && spans.contains(&SpanKind::Client));
}

#[tokio::test]
async fn gzip_over_http() {
    let collector = Collector::start().await;
    let otlp = format!(
        "{{http: {{endpoint: \"{}\", compression: gzip}}}}",
        collector.traces_http_url()
    );
    spans_arrive(&collector, &otlp).await;
}

#[tokio::test]
async fn gzip_over_grpc() {
    let collector = Collector::start().await;
    let otlp = format!(
        "{{grpc: {{endpoint: \"{}\", insecure: true, compression: gzip}}}}",
        collector.grpc_addr()
    );
    spans_arrive(&collector, &otlp).await;
}
