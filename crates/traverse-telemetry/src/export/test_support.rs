//! Fixtures shared by the transport tests and the pipeline tests: exporters,
//! sample requests of each signal and a scripted OTLP/HTTP collector.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::export::{
    Compression, ExporterOptions, OtlpExporter, Protocol, RetryPolicy, TlsOptions,
};

/// Options for `endpoint` sending an `Authorization` header, 2 s per attempt.
pub(crate) fn options(protocol: Protocol, endpoint: &str) -> ExporterOptions {
    ExporterOptions {
        protocol,
        endpoint: endpoint.to_owned(),
        headers: vec![("Authorization".to_owned(), "Bearer token".to_owned())],
        timeout: Duration::from_secs(2),
        compression: Compression::None,
        tls: TlsOptions::default(),
    }
}

/// An exporter for [`options`].
pub(crate) fn exporter(protocol: Protocol, endpoint: &str) -> OtlpExporter {
    OtlpExporter::new(options(protocol, endpoint)).expect("exporter")
}

/// Five attempts with millisecond backoffs, so retry tests stay fast.
pub(crate) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// One span in one scope in one resource.
pub(crate) fn sample_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "GET /".to_owned(),
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// One log record in one scope in one resource.
pub(crate) fn sample_logs_request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    severity_text: "INFO".to_owned(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("GET / 200".to_owned())),
                    }),
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// One gauge data point in one scope in one resource.
pub(crate) fn sample_metrics_request() -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "traverse.connections".to_owned(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            value: Some(number_data_point::Value::AsInt(3)),
                            ..NumberDataPoint::default()
                        }],
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

pub(crate) fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// A canned HTTP/1.1 response.
pub(crate) struct Reply {
    pub(crate) status: &'static str,
    pub(crate) headers: &'static str,
    pub(crate) body: Vec<u8>,
}

/// A reply with an empty body; `headers` are full lines ending in CRLF.
pub(crate) fn reply(status: &'static str, headers: &'static str) -> Reply {
    Reply {
        status,
        headers,
        body: Vec::new(),
    }
}

/// What a test collector saw.
#[derive(Default)]
pub(crate) struct HttpCollector {
    pub(crate) connections: usize,
    /// Request bodies, in arrival order.
    pub(crate) bodies: Vec<Vec<u8>>,
    /// The matching request lines and headers, lowercased.
    pub(crate) headers: Vec<String>,
}

/// A collector that answers every request with `status` and an empty body.
/// Returns the URL of `path` on it.
pub(crate) async fn serve_http(
    path: &str,
    status: &'static str,
) -> (String, Arc<Mutex<HttpCollector>>) {
    serve_replies(path, std::iter::repeat_with(move || reply(status, ""))).await
}

/// A collector that answers with `replies` in order, then closes connections.
/// Returns the URL of `path` on it.
pub(crate) async fn serve_scripted_http(
    path: &str,
    replies: Vec<Reply>,
) -> (String, Arc<Mutex<HttpCollector>>) {
    serve_replies(path, replies.into_iter()).await
}

/// Serves one reply per request, in order, on keep-alive connections.
async fn serve_replies<I>(path: &str, replies: I) -> (String, Arc<Mutex<HttpCollector>>)
where
    I: Iterator<Item = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(HttpCollector::default()));
    let replies = Arc::new(Mutex::new(replies));
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            server_seen.lock().expect("lock").connections += 1;
            let seen = server_seen.clone();
            let replies = replies.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut head = String::new();
                    let mut content_length = 0;
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            content_length = value.trim().parse().expect("content-length");
                        }
                        head.push_str(&lower);
                    }
                    let mut body = vec![0; content_length];
                    stream.read_exact(&mut body).await.expect("body");
                    {
                        let mut seen = seen.lock().expect("lock");
                        seen.bodies.push(body);
                        seen.headers.push(head);
                    }
                    let Some(reply) = replies.lock().expect("lock").next() else {
                        return;
                    };
                    let response = format!(
                        "HTTP/1.1 {}\r\ncontent-length: {}\r\n{}\r\n",
                        reply.status,
                        reply.body.len(),
                        reply.headers
                    );
                    let stream = stream.get_mut();
                    stream.write_all(response.as_bytes()).await.expect("write");
                    stream.write_all(&reply.body).await.expect("write");
                }
            });
        }
    });
    (url, seen)
}
