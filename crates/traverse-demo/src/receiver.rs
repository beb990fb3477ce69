//! An in-process OTLP/HTTP receiver, so the demo needs no collector: it accepts the
//! protobuf bodies the gateways export and keeps their spans by trace id, each with
//! its resource's `service.name` and `k8s.cluster.name`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as OtlpStatus};
use prost::Message;

use super::waterfall::{Kind, Span, Status};
use crate::http::{bind, respond, serve};

/// Largest export body accepted; the gateways send batches far below this.
const MAX_BODY: usize = 32 << 20;

const PROTOBUF: &str = "application/x-protobuf";

/// The spans of one trace and when the last of them arrived.
struct Trace {
    spans: Vec<Span>,
    updated: Instant,
}

#[derive(Default)]
struct Store {
    traces: Mutex<HashMap<String, Trace>>,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Trace>> {
        self.traces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, spans: Vec<Span>) {
        let now = Instant::now();
        let mut traces = self.lock();
        for span in spans {
            let trace = traces.entry(span.trace_id.clone()).or_insert(Trace {
                spans: Vec::new(),
                updated: now,
            });
            trace.updated = now;
            trace.spans.push(span);
        }
    }
}

/// A running receiver; it serves until the runtime stops.
#[derive(Clone)]
pub struct Receiver {
    store: Arc<Store>,
}

impl Receiver {
    /// Listens on `address` (POST `/v1/traces`; `/v1/metrics` and `/v1/logs` are
    /// accepted and discarded); returns the receiver and its bound address.
    pub async fn start(address: SocketAddr) -> anyhow::Result<(Receiver, SocketAddr)> {
        let listener = bind(address, "the OTLP receiver").await?;
        let address = listener.local_addr().unwrap_or(address);
        let store = Arc::new(Store::default());
        let handler_store = Arc::clone(&store);
        serve(listener, move |request| {
            let store = Arc::clone(&handler_store);
            async move { handle(&store, request).await }
        });
        Ok((Receiver { store }, address))
    }

    /// The spans received so far for `trace_id` (lowercase hex).
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.store
            .lock()
            .get(trace_id)
            .map(|t| t.spans.clone())
            .unwrap_or_default()
    }

    /// Every trace id received so far.
    pub fn trace_ids(&self) -> Vec<String> {
        self.store.lock().keys().cloned().collect()
    }

    /// Traces to which nothing was added for `quiet`, probably complete, except `seen`.
    pub fn settled(
        &self,
        quiet: Duration,
        seen: &std::collections::HashSet<String>,
    ) -> Vec<(String, Vec<Span>)> {
        let mut settled: Vec<(Instant, String, Vec<Span>)> = self
            .store
            .lock()
            .iter()
            .filter(|(id, trace)| !seen.contains(*id) && trace.updated.elapsed() >= quiet)
            .map(|(id, trace)| (trace.updated, id.clone(), trace.spans.clone()))
            .collect();
        settled.sort_by_key(|(updated, _, _)| *updated);
        settled
            .into_iter()
            .map(|(_, id, spans)| (id, spans))
            .collect()
    }

    /// Waits until `complete` holds for the spans of `trace_id`, or `deadline` passes;
    /// returns the spans and whether they were complete.
    pub async fn wait_for(
        &self,
        trace_id: &str,
        deadline: Instant,
        complete: impl Fn(&[Span]) -> bool,
    ) -> (Vec<Span>, bool) {
        loop {
            let spans = self.trace(trace_id);
            if complete(&spans) {
                return (spans, true);
            }
            if Instant::now() >= deadline {
                return (spans, false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(store: &Store, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status, message: String| respond(status, "text/plain", Bytes::from(message));
    let path = request.uri().path().to_owned();
    if request.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST OTLP/HTTP here\n".into(),
        );
    }
    match path.as_str() {
        "/v1/traces" => {}
        // Accepted so a gateway configured to push metrics or logs here does not retry.
        "/v1/metrics" | "/v1/logs" => return respond(StatusCode::OK, PROTOBUF, Bytes::new()),
        _ => return text(StatusCode::NOT_FOUND, format!("no OTLP signal at {path}\n")),
    }
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(PROTOBUF) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("this receiver accepts {PROTOBUF}, not {content_type:?}\n"),
        );
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {error}\n"),
            )
        }
    };
    match decode(&body) {
        Ok(spans) => {
            store.add(spans);
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            respond(StatusCode::OK, PROTOBUF, Bytes::from(reply))
        }
        Err(error) => text(
            StatusCode::BAD_REQUEST,
            format!("not an ExportTraceServiceRequest: {error}\n"),
        ),
    }
}

/// The spans of an `ExportTraceServiceRequest` body, each with its resource's names.
pub fn decode(body: &[u8]) -> Result<Vec<Span>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let resource_attr = |key: &str| {
            resource
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| value_text(kv.value.as_ref()))
                .unwrap_or_default()
        };
        let service = resource_attr("service.name");
        let cluster = resource_attr("k8s.cluster.name");
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            let kind = match span.kind() {
                SpanKind::Unspecified => Kind::Unspecified,
                SpanKind::Internal => Kind::Internal,
                SpanKind::Server => Kind::Server,
                SpanKind::Client => Kind::Client,
                SpanKind::Producer => Kind::Producer,
                SpanKind::Consumer => Kind::Consumer,
            };
            let status = match &span.status {
                Some(status) => match status.code() {
                    OtlpStatus::Unset => Status::Unset,
                    OtlpStatus::Ok => Status::Ok,
                    OtlpStatus::Error => Status::Error(status.message.clone()),
                },
                None => Status::Unset,
            };
            spans.push(Span {
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                name: span.name,
                kind,
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                status,
                service: service.clone(),
                cluster: cluster.clone(),
                attributes: attributes(&span.attributes),
            });
        }
    }
    Ok(spans)
}

fn attributes(list: &[KeyValue]) -> std::collections::BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
        .collect()
}

/// A value as text: strings as they are, numbers and booleans printed.
fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| value_text(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::send;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{self as proto, ResourceSpans, ScopeSpans};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn export(service: &str, cluster: &str, spans: Vec<proto::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv(
                            "service.name",
                            any_value::Value::StringValue(service.into()),
                        ),
                        kv(
                            "k8s.cluster.name",
                            any_value::Value::StringValue(cluster.into()),
                        ),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn proto_span(
        span_id: u8,
        parent: Option<u8>,
        kind: SpanKind,
        status: Option<proto::Status>,
    ) -> proto::Span {
        proto::Span {
            trace_id: vec![0x4b; 16],
            span_id: vec![span_id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: "GET apps/whoami#0".into(),
            kind: kind as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_000,
            attributes: vec![kv(
                "http.response.status_code",
                any_value::Value::IntValue(502),
            )],
            status,
            ..Default::default()
        }
    }

    async fn post(
        address: SocketAddr,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> crate::http::Reply {
        send(
            address,
            Method::POST,
            path,
            &[("content-type", content_type)],
            Bytes::from(body),
            Duration::from_secs(5),
        )
        .await
        .expect("the receiver answers")
    }

    #[tokio::test]
    async fn stores_posted_spans_by_trace_with_their_resource() {
        let (receiver, address) = Receiver::start("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("receiver starts");
        let parent = export(
            "traverse-parent",
            "edge",
            vec![
                proto_span(
                    1,
                    None,
                    SpanKind::Server,
                    Some(proto::Status {
                        code: OtlpStatus::Ok as i32,
                        message: String::new(),
                    }),
                ),
                proto_span(
                    2,
                    Some(1),
                    SpanKind::Client,
                    Some(proto::Status {
                        code: OtlpStatus::Error as i32,
                        message: "connection refused".into(),
                    }),
                ),
            ],
        );
        let child = export(
            "traverse-child",
            "eu-west",
            vec![proto_span(3, Some(2), SpanKind::Server, None)],
        );
        for request in [parent, child] {
            let reply = post(address, "/v1/traces", PROTOBUF, request.encode_to_vec()).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(
                reply
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some(PROTOBUF)
            );
            ExportTraceServiceResponse::decode(reply.body).expect("an ExportTraceServiceResponse");
        }

        let trace_id = "4b".repeat(16);
        assert_eq!(receiver.trace_ids(), vec![trace_id.clone()]);
        let spans = receiver.trace(&trace_id);
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].span_id, "0101010101010101");
        assert_eq!(spans[0].parent_span_id, "");
        assert_eq!(
            (spans[0].service.as_str(), spans[0].cluster.as_str()),
            ("traverse-parent", "edge")
        );
        assert_eq!(spans[0].status, Status::Ok);
        assert_eq!(spans[1].kind, Kind::Client);
        assert_eq!(spans[1].status, Status::Error("connection refused".into()));
        assert_eq!(spans[1].parent_span_id, "0101010101010101");
        assert_eq!(
            (spans[2].service.as_str(), spans[2].cluster.as_str()),
            ("traverse-child", "eu-west")
        );
        assert_eq!(spans[2].status, Status::Unset);
        assert_eq!(
            spans[2]
                .attributes
                .get("http.response.status_code")
                .map(String::as_str),
            Some("502")
        );
        assert_eq!(spans[2].duration_ns(), 2_000);

        let (spans, complete) = receiver
            .wait_for(&trace_id, Instant::now(), |spans| spans.len() == 3)
            .await;
        assert!(complete);
        assert_eq!(spans.len(), 3);
        let seen = std::collections::HashSet::new();
        assert_eq!(receiver.settled(Duration::ZERO, &seen).len(), 1);
        assert!(receiver.settled(Duration::from_secs(60), &seen).is_empty());
    }

    #[tokio::test]
    async fn other_signals_are_accepted_and_bad_bodies_refused() {
        let (receiver, address) = Receiver::start("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("receiver starts");
        for path in ["/v1/metrics", "/v1/logs"] {
            assert_eq!(
                post(address, path, PROTOBUF, vec![]).await.status,
                StatusCode::OK
            );
        }
        let garbage = post(address, "/v1/traces", PROTOBUF, vec![0xff, 0xff, 0xff]).await;
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
        let json = post(address, "/v1/traces", "application/json", b"{}".to_vec()).await;
        assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            post(address, "/v2/traces", PROTOBUF, vec![]).await.status,
            StatusCode::NOT_FOUND
        );
        assert!(receiver.trace_ids().is_empty());
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let (_first, taken) = Receiver::start("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("receiver starts");
        let error = Receiver::start(taken)
            .await
            .err()
            .expect("the port is taken");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!("port {}", taken.port()))
                && message.contains("OTLP receiver"),
            "{message}"
        );
    }
}
