//! Every span is accounted for: once nothing is queued, `exported + dropped + failed +
//! rejected == ended` on `/api/telemetry`, whatever the collector does, and the gateway
//! keeps serving. Retries happen for retryable answers only, after the delay asked for.
//!
//! The collector is the real one; a sink that answers 429, 5xx or 400 is a few lines of
//! HTTP/1.1 below, since no collector can be told to refuse, and so is a front that passes
//! exports to the real collector or, on demand, answers 503 or 429, is slow, or is down,
//! while the gateway is under load.

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

/// An OTLP/HTTP endpoint that answers the first exports with `refusals`, in order, and
/// every later one with 200.
struct Sink {
    addr: SocketAddr,
    log: Arc<Mutex<SinkLog>>,
}

impl Sink {
    /// Answers the first `times` exports with `refusal`.
    async fn start(refusal: &'static str, times: usize) -> Sink {
        Sink::answering(move |seen| (seen <= times).then_some(refusal)).await
    }

    /// Answers export number `seen` (from 1) with `refusal(seen)`, or 200 when it is `None`.
    async fn answering(
        refusal: impl Fn(usize) -> Option<&'static str> + Send + Sync + 'static,
    ) -> Sink {
        let refusal = Arc::new(refusal);
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
                let refusal = Arc::clone(&refusal);
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
                        let answer =
                            refusal(seen).unwrap_or("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
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

    // As above: the last requests may still be ending when the client has its answers.
    let requests = eventually("the gateway counted every request", WAIT, async || {
        let counted = counted_requests(&gateway).await;
        (counted == 10_000).then_some(counted)
    })
    .await;
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

#[tokio::test]
async fn answers_502_503_and_504_are_retried_and_every_span_is_delivered() {
    const REFUSALS: [&str; 3] = [
        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 0\r\n\r\n",
    ];
    let sink = Sink::answering(|seen| REFUSALS.get(seen - 1).copied()).await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink_tracing(&sink), 1, &upstream).await;

    let requests = load(gateway.addr("web"), 4, 200).await as u64;

    let spans = settled(&gateway, 2 * requests).await;
    assert_eq!(
        (spans.exported, spans.dropped, spans.failed, spans.rejected),
        (2 * requests, 0, 0, 0),
        "{spans:?}"
    );
    assert!(spans.retries >= REFUSALS.len() as u64, "{spans:?}");
    let seen = sink.requests();
    let accepted: usize = seen[REFUSALS.len()..].iter().map(|(_, n)| n).sum();
    assert_eq!(accepted as u64, spans.exported);
}

/// What the collector in front of rotel does with each export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Passes the export to the real collector and its answer back.
    Forward,
    /// Waits this long, then forwards.
    Slow(Duration),
    /// Answers with this response, without forwarding.
    Refuse(&'static str),
    /// Refuses connections and closes the open ones without an answer.
    Down,
}

/// How an export was answered, with the spans it carried.
#[derive(Debug, Clone, Copy)]
struct Answered {
    at: Instant,
    spans: usize,
    /// The status sent back; `None` when the connection was closed instead.
    status: Option<u16>,
}

/// An OTLP/HTTP collector that misbehaves on demand: a real HTTP/1.1 server in front of
/// the real collector, which it forwards to while [`Behaviour::Forward`] or `Slow`.
struct Front {
    addr: SocketAddr,
    behaviour: tokio::sync::watch::Sender<Behaviour>,
    answered: Arc<Mutex<Vec<Answered>>>,
}

impl Front {
    async fn start(collector: SocketAddr) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (behaviour, watch) = tokio::sync::watch::channel(Behaviour::Forward);
        let answered = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&answered);
        tokio::spawn(async move {
            let mut listener = Some(listener);
            let mut changes = watch.clone();
            loop {
                match &listener {
                    Some(open) => {
                        tokio::select! {
                            accepted = open.accept() => {
                                let Ok((stream, _)) = accepted else { return };
                                tokio::spawn(serve(stream, collector, watch.clone(), Arc::clone(&log)));
                            }
                            _ = changes.changed() => {
                                if *changes.borrow() == Behaviour::Down {
                                    listener = None; // refused from now on
                                }
                            }
                        }
                    }
                    None => {
                        if changes.changed().await.is_err() {
                            return;
                        }
                        if *changes.borrow() != Behaviour::Down {
                            listener = Some(TcpListener::bind(addr).await.expect("bind again"));
                        }
                    }
                }
            }
        });
        Front {
            addr,
            behaviour,
            answered,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn set(&self, behaviour: Behaviour) {
        self.behaviour.send_replace(behaviour);
    }

    fn answered(&self) -> Vec<Answered> {
        self.answered.lock().expect("front log").clone()
    }
}

/// One connection of the [`Front`]: each export is handled as the behaviour of the moment
/// says.
async fn serve(
    stream: tokio::net::TcpStream,
    collector: SocketAddr,
    behaviour: tokio::sync::watch::Receiver<Behaviour>,
    log: Arc<Mutex<Vec<Answered>>>,
) {
    let mut stream = BufReader::new(stream);
    let mut upstream: Option<Connection> = None;
    while let Ok(Some(head)) = read_head(&mut stream).await {
        let framing = request_framing(&head).expect("framing");
        let body = read_body(&mut stream, framing).await.expect("body");
        let spans = ExportTraceServiceRequest::decode(body.as_slice())
            .expect("an OTLP trace export")
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let now = *behaviour.borrow();
        let answer = match now {
            Behaviour::Down => None,
            Behaviour::Refuse(response) => Some(response.as_bytes().to_vec()),
            Behaviour::Forward | Behaviour::Slow(_) => {
                if let Behaviour::Slow(delay) = now {
                    tokio::time::sleep(delay).await;
                }
                let connection = match &mut upstream {
                    Some(connection) => connection,
                    None => upstream.insert(Connection::open(collector).await),
                };
                let response = connection
                    .request(
                        "POST",
                        "/v1/traces",
                        &[("content-type", "application/x-protobuf")],
                        &body,
                    )
                    .await
                    .expect("the real collector answers");
                let mut bytes = format!(
                    "HTTP/1.1 {} Forwarded\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
                    response.status,
                    response.body.len()
                )
                .into_bytes();
                bytes.extend_from_slice(&response.body);
                Some(bytes)
            }
        };
        let status = answer.as_ref().map(|bytes| {
            let line = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
            line[9..12].parse().expect("a status code")
        });
        log.lock().expect("front log").push(Answered {
            at: Instant::now(),
            spans,
            status,
        });
        let Some(answer) = answer else { return };
        if stream.get_mut().write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Requests over `connections` keep-alive connections for `duration`; every one must
/// succeed. Returns how many were sent.
async fn load_for(addr: SocketAddr, connections: usize, duration: Duration) -> u64 {
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await;
            let mut sent = 0;
            while Instant::now() < until {
                let response = connection
                    .request("GET", "/load", &[], b"")
                    .await
                    .expect("the gateway answers while the collector misbehaves");
                assert_eq!(response.status, 200, "{}", response.text());
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await.expect("load task");
    }
    sent
}

/// The resident set size of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// The largest RSS of `pid` seen while `work` runs, sampled every 20 ms.
async fn peak_rss<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, u64) {
    let mut peak = rss(pid);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return (done, peak.max(rss(pid))),
            _ = tick.tick() => peak = peak.max(rss(pid)),
        }
    }
}

#[tokio::test]
async fn a_misbehaving_collector_under_load_costs_counted_spans_only_and_bounded_memory() {
    const QUEUE: u64 = 2048;
    const BATCH: u64 = 256;
    const THREADS: u64 = 2;
    /// Each phase under load; long enough to fill the queue many times over.
    const PHASE: Duration = Duration::from_secs(3);
    /// Longer: nothing leaves the gateway while the collector is down.
    const DOWN: Duration = Duration::from_secs(8);
    const TOO_MANY: &str =
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";
    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";

    let collector = Collector::start().await;
    let front = Front::start(collector.http_addr()).await;
    let upstream = Upstream::start("app");
    let tracing = format!(
        "  sampleRate: 1.0\n  otlp: {{http: {{endpoint: \"{}\", timeout: 2s}}}}\n  queue: {{maxSize: {QUEUE}, maxBatchSize: {BATCH}, scheduleDelay: 50ms}}\n",
        front.url()
    );
    let gateway = start(&tracing, THREADS as usize, &upstream).await;
    let web = gateway.addr("web");
    let pid = gateway.pid();

    // Healthy: the memory the gateway needs under this load with an empty queue.
    let (mut requests, healthy_rss) = peak_rss(pid, load_for(web, 8, PHASE)).await;

    let mut misbehaving_rss = 0;
    for (behaviour, duration) in [
        (Behaviour::Refuse(UNAVAILABLE), PHASE),
        (Behaviour::Refuse(TOO_MANY), PHASE),
        (Behaviour::Slow(Duration::from_millis(600)), PHASE),
        (Behaviour::Down, DOWN),
    ] {
        front.set(behaviour);
        let (sent, peak) = peak_rss(pid, load_for(web, 8, duration)).await;
        requests += sent;
        misbehaving_rss = misbehaving_rss.max(peak);
    }
    front.set(Behaviour::Forward);
    requests += load_for(web, 8, PHASE).await;

    // What a full queue may hold: the queued spans, a batch being filled on each worker
    // and one being sent, each span at most 1 KiB (a request span is a few hundred
    // bytes), plus 6 MiB for what moves by itself under load. Keeping the spans of the
    // misbehaving phases (tens of thousands) would go past it.
    let bound = healthy_rss + 1024 * (QUEUE + (THREADS + 2) * BATCH) + 6 * 1024 * 1024;
    assert!(
        misbehaving_rss <= bound,
        "RSS {misbehaving_rss} while the collector misbehaved, healthy {healthy_rss}, bound {bound}; {requests} requests"
    );

    eventually("the gateway counted every request", WAIT, async || {
        (counted_requests(&gateway).await == requests).then_some(())
    })
    .await;
    let spans = settled(&gateway, 2 * requests).await;
    let answered = front.answered();
    let delivered: usize = answered
        .iter()
        .filter(|a| a.status == Some(200))
        .map(|a| a.spans)
        .sum();
    assert_eq!(
        (spans.exported, spans.rejected),
        (delivered as u64, 0),
        "exported is what the collector took: {spans:?}"
    );
    assert!(
        spans.dropped + spans.failed > 0 && spans.retries > 0,
        "{spans:?}"
    );
    let status_seen = |status: Option<u16>| answered.iter().filter(|a| a.status == status).count();
    assert!(
        status_seen(Some(503)) > 0 && status_seen(Some(429)) > 0 && status_seen(None) > 0,
        "every misbehaviour was met: {answered:?}"
    );
    // Retry-After holds for every export, not only for the retries of one batch.
    for pair in answered.windows(2) {
        if pair[0].status == Some(429) {
            let waited = pair[1].at.duration_since(pair[0].at);
            assert!(
                waited >= Duration::from_millis(900),
                "an export {waited:?} after a 429 asking for 1 s"
            );
        }
    }
    eventually(
        "the collector printed every exported span",
        WAIT,
        async || (collector_spans(&collector) == spans.exported).then_some(()),
    )
    .await;
}
