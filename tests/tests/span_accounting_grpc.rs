//! Every span is accounted for over OTLP/gRPC too: a collector answering UNAVAILABLE is
//! retried, RESOURCE_EXHAUSTED only when it says when to come back (`RetryInfo`, after
//! that delay), and a permanent error is not retried and its spans count as failed.
//!
//! No collector can be told to refuse, so the sink is an HTTP/2 server (the `h2` crate)
//! that answers the OTLP `Export` call with the gRPC status each test asks for; the
//! gateway's side is its real gRPC exporter.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::net::TcpListener;
use traverse_e2e::{eventually, http_get, route, service, Connection, Gateway, Upstream};

const WAIT: Duration = Duration::from_secs(30);
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the sink answers to one export call.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    /// A gRPC status code, with a `RetryInfo` delay in its details when given.
    Status(i32, Option<Duration>),
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo` with its `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// An OTLP/gRPC trace endpoint answering export number `seen` (from 1) with `answer(seen)`;
/// it logs when each export arrived and how many spans it carried.
struct GrpcSink {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<(Instant, usize)>>>,
}

impl GrpcSink {
    async fn start(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> GrpcSink {
        let answer = Arc::new(answer);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&shared);
                let answer = Arc::clone(&answer);
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(stream).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        let log = Arc::clone(&log);
                        let answer = Arc::clone(&answer);
                        tokio::spawn(serve_export(request, respond, log, answer));
                    }
                });
            }
        });
        GrpcSink { addr, log }
    }

    fn tracing(&self) -> String {
        format!(
            "  sampleRate: 1.0\n  otlp: {{grpc: {{endpoint: \"http://{}\", insecure: true, timeout: 2s}}}}\n  queue: {{scheduleDelay: 50ms}}\n",
            self.addr
        )
    }

    fn requests(&self) -> Vec<(Instant, usize)> {
        self.log.lock().expect("sink log").clone()
    }
}

async fn serve_export(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    log: Arc<Mutex<Vec<(Instant, usize)>>>,
    answer: Arc<dyn Fn(usize) -> Answer + Send + Sync>,
) {
    assert_eq!(request.uri().path(), EXPORT_PATH);
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("request body");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    // One length-prefixed message, uncompressed (the gateway is not told to compress).
    assert!(bytes.len() >= 5, "a gRPC frame");
    assert_eq!(bytes[0], 0, "uncompressed");
    let export = ExportTraceServiceRequest::decode(&bytes[5..]).expect("an OTLP trace export");
    let carried = export
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let seen = {
        let mut log = log.lock().expect("sink log");
        log.push((Instant::now(), carried));
        log.len()
    };
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("response head");
    let Ok(mut stream) = respond.send_response(head, false) else {
        return;
    };
    let mut trailers = http::HeaderMap::new();
    match answer(seen) {
        Answer::Ok => {
            // An empty ExportTraceServiceResponse: flag 0, length 0.
            let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
            trailers.insert("grpc-status", "0".parse().expect("value"));
        }
        Answer::Status(code, delay) => {
            trailers.insert("grpc-status", code.to_string().parse().expect("value"));
            trailers.insert("grpc-message", "refused".parse().expect("value"));
            if let Some(delay) = delay {
                let retry = RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: delay.as_secs() as i64,
                        nanos: delay.subsec_nanos() as i32,
                    }),
                };
                let status = RpcStatus {
                    code,
                    message: "refused".to_owned(),
                    details: vec![ProtoAny {
                        type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
                        value: retry.encode_to_vec(),
                    }],
                };
                let details =
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
                trailers.insert("grpc-status-details-bin", details.parse().expect("value"));
            }
        }
    }
    let _ = stream.send_trailers(trailers);
}

/// gRPC status codes used here.
const RESOURCE_EXHAUSTED: i32 = 8;
const INVALID_ARGUMENT: i32 = 3;
const UNAVAILABLE: i32 = 14;

async fn start(tracing: &str, upstream: &Upstream) -> Gateway {
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
server: {{threads: 1}}
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

/// The span counters of `/api/telemetry`:
/// (ended, exported, dropped, failed, rejected, retries, exportErrors).
async fn spans(gateway: &Gateway) -> [u64; 7] {
    let json = http_get(gateway.addr("admin"), "/api/telemetry", &[])
        .await
        .json();
    let spans = &json["traces"]["spans"];
    [
        "ended",
        "exported",
        "dropped",
        "failed",
        "rejected",
        "retries",
        "exportErrors",
    ]
    .map(|name| {
        spans[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {json}"))
    })
}

/// The counters once all `ended` spans have an outcome.
async fn settled(gateway: &Gateway, ended: u64) -> [u64; 7] {
    eventually(
        &format!("{ended} spans ended, each exported, dropped, failed or rejected"),
        WAIT,
        async || {
            let s = spans(gateway).await;
            (s[0] == ended && s[1] + s[2] + s[3] + s[4] == ended).then_some(s)
        },
    )
    .await
}

/// `requests` GETs over `connections` keep-alive connections; every one must succeed.
async fn load(addr: SocketAddr, connections: usize, requests: usize) -> u64 {
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
                    .expect("the gateway answers");
                assert_eq!(response.status, 200, "{}", response.text());
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    requests as u64
}

#[tokio::test]
async fn unavailable_is_retried_and_every_span_is_delivered() {
    const REFUSALS: usize = 3;
    let sink = GrpcSink::start(|seen| {
        if seen <= REFUSALS {
            Answer::Status(UNAVAILABLE, None)
        } else {
            Answer::Ok
        }
    })
    .await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink.tracing(), &upstream).await;

    let requests = load(gateway.addr("web"), 4, 200).await;

    let [_, exported, dropped, failed, rejected, retries, _] =
        settled(&gateway, 2 * requests).await;
    assert_eq!(
        (exported, dropped, failed, rejected),
        (2 * requests, 0, 0, 0)
    );
    assert!(retries >= REFUSALS as u64, "{retries} retries");
    let seen = sink.requests();
    let accepted: usize = seen[REFUSALS..].iter().map(|(_, n)| n).sum();
    assert_eq!(accepted as u64, exported, "the sink got what was counted");
}

#[tokio::test]
async fn resource_exhausted_is_retried_after_its_retry_info_delay() {
    const REFUSALS: usize = 2;
    let sink = GrpcSink::start(|seen| {
        if seen <= REFUSALS {
            Answer::Status(RESOURCE_EXHAUSTED, Some(Duration::from_secs(1)))
        } else {
            Answer::Ok
        }
    })
    .await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink.tracing(), &upstream).await;

    let requests = load(gateway.addr("web"), 2, 100).await;

    let [_, exported, _, failed, _, retries, _] = settled(&gateway, 2 * requests).await;
    assert_eq!((exported, failed), (2 * requests, 0));
    assert!(retries >= REFUSALS as u64, "{retries} retries");
    let seen = sink.requests();
    for pair in seen[..=REFUSALS].windows(2) {
        let waited = pair[1].0.duration_since(pair[0].0);
        assert!(
            waited >= Duration::from_millis(900),
            "retried after {waited:?}, before the second RetryInfo asked for"
        );
    }
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_and_invalid_argument_are_not_retried() {
    // The first export is refused as exhausted with no delay, every later one as invalid.
    let sink = GrpcSink::start(|seen| {
        if seen == 1 {
            Answer::Status(RESOURCE_EXHAUSTED, None)
        } else {
            Answer::Status(INVALID_ARGUMENT, None)
        }
    })
    .await;
    let upstream = Upstream::start("app");
    let gateway = start(&sink.tracing(), &upstream).await;

    let requests = load(gateway.addr("web"), 2, 50).await;

    let [_, exported, _, failed, _, retries, export_errors] = settled(&gateway, 2 * requests).await;
    assert_eq!((exported, failed, retries), (0, 2 * requests, 0));
    let seen = sink.requests();
    assert_eq!(seen.len() as u64, export_errors, "one attempt per batch");
    let carried: usize = seen.iter().map(|(_, n)| n).sum();
    assert_eq!(carried as u64, failed);
}
