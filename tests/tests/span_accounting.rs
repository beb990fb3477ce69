//! Every span is accounted for: once nothing is queued, `exported + dropped + failed +
//! rejected == ended` on `/api/telemetry`, whatever the collector does, and the gateway
//! keeps serving. Retries happen for retryable answers only, after the delay asked for.
//!
//! The collector is the real one; a sink that answers 429 or 400 is a few lines of HTTP/1.1
//! below, since no collector can be told to refuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use traverse_e2e::http1::{read_body, read_head, request_framing};
use traverse_e2e::prometheus::{self, Format};
use traverse_e2e::{
    eventually, http_get, route, service, Collector, Connection, Gateway, Upstream,
};

const WAIT: Duration = Duration::from_secs(30);

/// A gateway with `threads` worker threads routing everything to `upstream`; `tracing` is
/// the body of the `tracing:` key.
async fn start(tracing: &str, threads: usize, upstream: &Upstream) -> Gateway {
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
server: {{threads: {threads}}}
providers: {{file: {{directory: manifests}}}}
tracing:
{tracing}"
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

/// The span counters of `/api/telemetry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spans {
    ended: u64,
    exported: u64,
    dropped: u64,
    failed: u64,
    rejected: u64,
    retries: u64,
    export_errors: u64,
}

async fn spans(gateway: &Gateway) -> Spans {
    let json = http_get(gateway.addr("admin"), "/api/telemetry", &[])
        .await
        .json();
    let spans = &json["traces"]["spans"];
    let get = |name: &str| {
        spans[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {json}"))
    };
    Spans {
        ended: get("ended"),
        exported: get("exported"),
        dropped: get("dropped"),
        failed: get("failed"),
        rejected: get("rejected"),
        retries: get("retries"),
        export_errors: get("exportErrors"),
    }
}

/// The counters once every ended span has an outcome (nothing queued or in flight).
async fn settled(gateway: &Gateway, ended: u64) -> Spans {
    eventually(
        &format!("{ended} spans ended, each exported, dropped, failed or rejected"),
        WAIT,
        async || {
            let s = spans(gateway).await;
            let outcomes = s.exported + s.dropped + s.failed + s.rejected;
            (s.ended == ended && outcomes == s.ended).then_some(s)
        },
    )
    .await
}

/// Requests the gateway counted on its `web` entrypoint.
async fn counted_requests(gateway: &Gateway) -> u64 {
    let response = http_get(
        gateway.addr("admin"),
        "/metrics",
        &[("accept", Format::Text.accept())],
    )
    .await;
    let families = prometheus::parse(&response.text(), Format::Text).expect("exposition");
    let total = prometheus::sum(
        &families,
        "traverse_entrypoint_requests_total",
        &[("entrypoint", "web")],
    );
    total as u64
}

/// `requests` GETs over `connections` keep-alive connections at once; every one must
/// succeed. Returns how many were sent.
async fn load(addr: SocketAddr, connections: usize, requests: usize) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await;
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let response = connection
                    .request("GET", "/load", &[], b"")
                    .await
                    .expect("the gateway answers under load");
                assert_eq!(response.status, 200, "{}", response.text());
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    requests
}

/// What a [`Sink`] saw: per request, when it arrived and the spans it carried.
#[derive(Debug, Default)]
struct SinkLog {
    requests: Vec<(Instant, usize)>,
}

/// An OTLP/HTTP endpoint that answers the first `refusals` exports with `refusal` and
/// every later one with 200.
struct Sink {
    addr: SocketAddr,
    log: Arc<Mutex<SinkLog>>,
}

impl Sink {
    async fn start(refusal: &'static str, refusals: usize) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(SinkLog::default()));
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while let Ok(Some(head)) = read_head(&mut stream).await {
                        let framing = request_framing(&head).expect("framing");
                        let body = read_body(&mut stream, framing).await.expect("body");
                        let request = ExportTraceServiceRequest::decode(body.as_slice())
                            .expect("an OTLP trace export");
                        let carried = request
                            .resource_spans
                            .iter()
                            .flat_map(|r| &r.scope_spans)
                            .map(|s| s.spans.len())
                            .sum();
                        let seen = {
                            let mut log = log.lock().expect("sink log");
                            log.requests.push((Instant::now(), carried));
                            log.requests.len()
                        };
                        let answer = if seen <= refusals {
                            refusal
                        } else {
                            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Sink { addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn requests(&self) -> Vec<(Instant, usize)> {
        self.log.lock().expect("sink log").requests.clone()
    }
}

fn sink_tracing(sink: &Sink) -> String {
    format!(
        "  sampleRate: 1.0\n  otlp: {{http: {{endpoint: \"{}\", timeout: 2s}}}}\n  queue: {{scheduleDelay: 50ms}}\n",
        sink.url()
    )
}

#[tokio::test]
async fn answers_429_are_retried_after_retry_after_and_every_span_is_delivered() {
    const REFUSALS: usize = 3;
    let sink = Sink::start(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n",
        REFUSALS,
    )
    .await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink_tracing(&sink), 1, &upstream).await;

    let requests = load(gateway.addr("web"), 4, 200).await as u64;

    let spans = settled(&gateway, 2 * requests).await;
    assert_eq!(
        (spans.exported, spans.dropped, spans.failed, spans.rejected),
        (2 * requests, 0, 0, 0),
        "{spans:?}"
    );
    assert!(spans.retries >= REFUSALS as u64, "{spans:?}");
    let seen = sink.requests();
    let accepted: usize = seen[REFUSALS..].iter().map(|(_, n)| n).sum();
    assert_eq!(
        accepted as u64, spans.exported,
        "the sink got what was counted"
    );
    // The exporter sends one request at a time, so each retry follows a refusal after the
    // second the collector asked for.
    for pair in seen[..=REFUSALS].windows(2) {
        let waited = pair[1].0.duration_since(pair[0].0);
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_and_its_spans_count_as_failed() {
    let sink = Sink::start(
        "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        usize::MAX,
    )
    .await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink_tracing(&sink), 1, &upstream).await;

    let requests = load(gateway.addr("web"), 2, 50).await as u64;

    let spans = settled(&gateway, 2 * requests).await;
    assert_eq!(
        (spans.exported, spans.failed, spans.retries),
        (0, 2 * requests, 0),
        "{spans:?}"
    );
    let seen = sink.requests();
    assert_eq!(
        seen.len() as u64,
        spans.export_errors,
        "one attempt per batch"
    );
    let carried: usize = seen.iter().map(|(_, n)| n).sum();
    assert_eq!(carried as u64, spans.failed);
}

#[tokio::test]
async fn a_collector_down_under_load_loses_counted_spans_only_and_requests_keep_succeeding() {
    let mut collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let tracing = format!(
        "  sampleRate: 1.0\n  otlp: {{http: {{endpoint: \"{}\", timeout: 1s}}}}\n  queue: {{maxSize: 256, maxBatchSize: 64, scheduleDelay: 50ms}}\n",
        collector.traces_http_url()
    );
    let gateway = start(&tracing, 2, &upstream).await;
    let web = gateway.addr("web");

    let mut requests = load(web, 8, 500).await as u64;
    collector.stop();
    requests += load(web, 8, 2_000).await as u64;
    collector.restart().await;
    requests += load(web, 8, 500).await as u64;

    eventually("the gateway counted every request", WAIT, async || {
        (counted_requests(&gateway).await == requests).then_some(())
    })
    .await;
    let spans = settled(&gateway, 2 * requests).await;
    assert!(
        spans.dropped + spans.failed > 0,
        "the collector was down while 4,000 spans ended: {spans:?}"
    );
    assert!(
        spans.exported > 0,
        "spans before and after are delivered: {spans:?}"
    );
}

/// Spans the collector printed so far (one `Span #n` line each).
fn collector_spans(collector: &Collector) -> u64 {
    collector
        .output()
        .lines()
        .filter(|line| line.starts_with("Span #"))
        .count() as u64
}

#[tokio::test]
async fn at_saturation_with_two_threads_no_span_is_lost() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    // The default queue: what a gateway gets unless told otherwise.
    let tracing = format!(
        "  sampleRate: 1.0\n  otlp: {{http: {{endpoint: \"{}\"}}}}\n",
        collector.traces_http_url()
    );
    let gateway = start(&tracing, 2, &upstream).await;

    // More connections than cores keep both worker threads busy.
    load(gateway.addr("web"), 16, 10_000).await;

    // A request is counted when it ends, just after its response went out: the last
    // few may still be ending when the client has read every response.
    let requests = eventually("the gateway counted every request", WAIT, async || {
        let counted = counted_requests(&gateway).await;
        (counted == 10_000).then_some(counted)
    })
    .await;
    let spans = settled(&gateway, 2 * requests).await;
    assert_eq!(
        (spans.exported, spans.dropped, spans.failed, spans.rejected),
        (2 * requests, 0, 0, 0),
        "a SERVER and a CLIENT span per request, none lost: {spans:?}"
    );
    eventually("the collector printed every span", WAIT, async || {
        (collector_spans(&collector) == spans.exported).then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_percent_sampling_exports_about_two_spans_per_hundred_requests() {
    let collector = Collector::start().await;
    let upstream = Upstream::start("app");
    let tracing = format!(
        "  sampleRate: 0.01\n  otlp: {{http: {{endpoint: \"{}\"}}}}\n  queue: {{scheduleDelay: 50ms}}\n",
        collector.traces_http_url()
    );
    let gateway = start(&tracing, 2, &upstream).await;

    load(gateway.addr("web"), 16, 10_000).await;

    let requests = counted_requests(&gateway).await;
    assert_eq!(requests, 10_000);
    let ended = eventually("sampled spans ended", WAIT, async || {
        let s = spans(&gateway).await;
        (s.ended > 0 && s.exported == s.ended).then_some(s.ended)
    })
    .await;
    let spans = settled(&gateway, ended).await;
    // Sampled traces are Binomial(10,000, 1 %): mean 100, standard deviation about 10.
    // Between 50 and 200 traces is more than 4 deviations either way, yet far from both
    // 0 % and 100 %.
    let traces = spans.exported / 2;
    assert_eq!(spans.exported % 2, 0, "whole traces only: {spans:?}");
    assert!(
        (50..=200).contains(&traces),
        "{traces} traces sampled of {requests}"
    );
    assert_eq!((spans.dropped, spans.failed), (0, 0), "{spans:?}");
    eventually("the collector printed every span", WAIT, async || {
        (collector_spans(&collector) == spans.exported).then_some(())
    })
    .await;
}
