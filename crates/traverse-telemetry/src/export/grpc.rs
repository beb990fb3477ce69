//! OTLP/gRPC through tonic's generic unary client and the prost codec.
//!
//! The generated per-service clients differ only in the method path and the
//! message types, so one generic client over one channel serves the trace,
//! metrics and logs services alike.

use std::sync::OnceLock;
use std::time::Duration;

use ::http::uri::PathAndQuery;
use ::http::{HeaderName, HeaderValue, Uri};
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use super::tls::TlsMaterial;
use super::{error_chain, Accepted, Compression, ConfigError, ExportError, OtlpRequest};

pub(super) struct GrpcExporter {
    endpoint: Endpoint,
    /// Created on first use: a tonic channel spawns its worker task on the
    /// current Tokio runtime, which does not exist at construction time.
    client: OnceLock<Grpc<Channel>>,
    metadata: MetadataMap,
    timeout: Duration,
    gzip: bool,
}

impl GrpcExporter {
    /// `tls` must be given for `https` endpoints.
    pub(super) fn new(
        uri: Uri,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
        compression: Compression,
        tls: Option<&TlsMaterial>,
    ) -> Result<Self, ConfigError> {
        let transport_error = |e: tonic::transport::Error| ConfigError::Tls(error_chain(&e));
        let mut endpoint = Endpoint::from(uri)
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .user_agent(super::USER_AGENT)
            .map_err(transport_error)?;
        if let Some(tls) = tls {
            endpoint = match tls.tonic_config() {
                (config, None) => endpoint.tls_config(config),
                (config, Some(verifier)) => endpoint.tls_config_with_verifier(config, verifier),
            }
            .map_err(transport_error)?;
        }
        Ok(Self {
            endpoint,
            client: OnceLock::new(),
            metadata: metadata(headers)?,
            timeout,
            gzip: compression == Compression::Gzip,
        })
    }

    pub(super) async fn send<R: OtlpRequest>(&self, request: &R) -> Result<Accepted, ExportError> {
        // Clones share the channel; each call needs its own handle to poll.
        let mut client = self
            .client
            .get_or_init(|| {
                let client = Grpc::new(self.endpoint.connect_lazy());
                if self.gzip {
                    client.send_compressed(CompressionEncoding::Gzip)
                } else {
                    client
                }
            })
            .clone();
        let mut grpc_request = tonic::Request::new(request.clone());
        *grpc_request.metadata_mut() = self.metadata.clone();
        // Tells the collector our deadline too (grpc-timeout).
        grpc_request.set_timeout(self.timeout);

        let call = async {
            // A channel only refuses requests once its worker is gone; the
            // generated clients report that as UNKNOWN, and so do we.
            client
                .ready()
                .await
                .map_err(|e| Status::unknown(format!("channel not ready: {}", error_chain(&e))))?;
            let path = PathAndQuery::from_static(R::GRPC_PATH);
            client
                .unary(grpc_request, path, ProstCodec::<R, R::Response>::default())
                .await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(Accepted::from_response::<R>(response.into_inner())),
            Ok(Err(status)) => Err(classify_status(&status)),
            Err(_) => Err(ExportError::retryable(format!(
                "no response within {:?}",
                self.timeout
            ))),
        }
    }
}

fn metadata(headers: &[(HeaderName, HeaderValue)]) -> Result<MetadataMap, ConfigError> {
    let mut metadata = MetadataMap::new();
    for (name, value) in headers {
        let key = AsciiMetadataKey::from_bytes(name.as_str().as_bytes()).map_err(|_| {
            ConfigError::InvalidHeaderName {
                name: name.to_string(),
                reason: "binary (`-bin`) gRPC metadata is not supported".to_owned(),
            }
        })?;
        let value = value
            .to_str()
            .ok()
            .and_then(|text| AsciiMetadataValue::try_from(text).ok())
            .ok_or_else(|| ConfigError::InvalidHeaderValue {
                name: name.to_string(),
                reason: "gRPC metadata values must be printable ASCII".to_owned(),
            })?;
        metadata.append(key, value);
    }
    Ok(metadata)
}

/// Classifies a failed call following OTLP/gRPC. RESOURCE_EXHAUSTED is only
/// retried when the collector says when to come back (`RetryInfo`); without
/// it the limit may never lift.
fn classify_status(status: &Status) -> ExportError {
    let retry_delay = retry_delay(status.details());
    let mut reason = format!("gRPC status {:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        reason.push_str(": ");
        reason.push_str(&error_chain(source));
    }
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_delay.is_some(),
        _ => false,
    };
    if retryable {
        ExportError::Retryable {
            reason,
            retry_after: retry_delay,
        }
    } else {
        ExportError::Permanent { reason }
    }
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

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "google.rpc.RetryInfo";

/// The `RetryInfo.retry_delay` in encoded status details, if any; negative
/// delays count as zero.
fn retry_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|any| any.type_url.rsplit('/').next() == Some(RETRY_INFO_TYPE))?;
    let delay = RetryInfo::decode(any.value.as_slice())
        .ok()?
        .retry_delay
        .unwrap_or_default();
    let Ok(seconds) = u64::try_from(delay.seconds) else {
        return Some(Duration::ZERO);
    };
    let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
    Some(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use hyper::body::Incoming;
    use hyper::service::Service as _;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use tokio::net::TcpListener;

    use super::*;
    use crate::export::test_support::{
        self, deadline, fast_policy, sample_logs_request, sample_metrics_request, sample_request,
    };
    use crate::export::{send_with_retry, OtlpExporter, Protocol};

    fn details_with_retry_info(delay: ProtoDuration) -> Bytes {
        let retry_info = RetryInfo {
            retry_delay: Some(delay),
        };
        RpcStatus {
            code: Code::ResourceExhausted as i32,
            message: "slow down".to_owned(),
            details: vec![ProtoAny {
                type_url: format!("type.googleapis.com/{RETRY_INFO_TYPE}"),
                value: retry_info.encode_to_vec(),
            }],
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn retryable_codes() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(
                classify_status(&Status::new(code, "x")).is_retryable(),
                "{code:?}"
            );
        }
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
            Code::Unauthenticated,
        ] {
            assert!(
                !classify_status(&Status::new(code, "x")).is_retryable(),
                "{code:?}"
            );
        }
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retryable() {
        let details = details_with_retry_info(ProtoDuration {
            seconds: 2,
            nanos: 500_000_000,
        });
        let status = Status::with_details(Code::ResourceExhausted, "slow down", details);
        assert_eq!(
            classify_status(&status),
            ExportError::Retryable {
                reason: "gRPC status ResourceExhausted: slow down".to_owned(),
                retry_after: Some(Duration::from_millis(2_500)),
            }
        );
    }

    #[test]
    fn retry_info_edge_cases() {
        let negative = details_with_retry_info(ProtoDuration {
            seconds: -3,
            nanos: 0,
        });
        assert_eq!(retry_delay(&negative), Some(Duration::ZERO));
        assert_eq!(retry_delay(b""), None);
        assert_eq!(retry_delay(b"\xff\xff garbage"), None);
        let other_detail = RpcStatus {
            code: 8,
            message: String::new(),
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.QuotaFailure".to_owned(),
                value: Vec::new(),
            }],
        }
        .encode_to_vec();
        assert_eq!(retry_delay(&other_detail), None);
    }

    #[test]
    fn binary_metadata_is_rejected() {
        let headers = [(
            HeaderName::from_static("trace-bin"),
            HeaderValue::from_static("x"),
        )];
        let error = metadata(&headers).expect_err("binary key");
        assert!(error.to_string().contains("`trace-bin`"), "{error}");
    }

    /// A collector serving the three OTLP services with scripted replies.
    #[derive(Default)]
    struct Scripted {
        replies: Mutex<VecDeque<Result<ExportTraceServiceResponse, Status>>>,
        received: Mutex<Vec<(ExportTraceServiceRequest, Option<String>)>>,
        log_replies: Mutex<VecDeque<Result<ExportLogsServiceResponse, Status>>>,
        logs: Mutex<Vec<ExportLogsServiceRequest>>,
        metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
        connections: AtomicUsize,
    }

    #[tonic::async_trait]
    impl TraceService for Scripted {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
            let authorization = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            self.received
                .lock()
                .expect("lock")
                .push((request.into_inner(), authorization));
            let reply = self.replies.lock().expect("lock").pop_front();
            reply
                .unwrap_or_else(|| Err(Status::internal("no reply scripted")))
                .map(tonic::Response::new)
        }
    }

    #[tonic::async_trait]
    impl LogsService for Scripted {
        async fn export(
            &self,
            request: tonic::Request<ExportLogsServiceRequest>,
        ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
            self.logs.lock().expect("lock").push(request.into_inner());
            let reply = self.log_replies.lock().expect("lock").pop_front();
            reply
                .unwrap_or_else(|| Ok(ExportLogsServiceResponse::default()))
                .map(tonic::Response::new)
        }
    }

    #[tonic::async_trait]
    impl MetricsService for Scripted {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
            self.metrics
                .lock()
                .expect("lock")
                .push(request.into_inner());
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        }
    }

    type ResponseFuture = Pin<
        Box<dyn Future<Output = Result<::http::Response<tonic::body::Body>, Infallible>> + Send>,
    >;

    /// Serves `scripted` over plaintext HTTP/2 and returns the base URL. Requests
    /// are routed by service name, as a real collector does, so a call only
    /// reaches a service when it names that service's method.
    async fn serve_scripted(scripted: Scripted) -> (String, Arc<Scripted>) {
        let scripted = Arc::new(scripted);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let traces = TowerToHyperService::new(TraceServiceServer::from_arc(scripted.clone()));
        let logs = TowerToHyperService::new(LogsServiceServer::from_arc(scripted.clone()));
        let metrics = TowerToHyperService::new(MetricsServiceServer::from_arc(scripted.clone()));
        let server_scripted = scripted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                server_scripted.connections.fetch_add(1, Ordering::Relaxed);
                let (traces, logs, metrics) = (traces.clone(), logs.clone(), metrics.clone());
                let router = hyper::service::service_fn(
                    move |request: ::http::Request<Incoming>| -> ResponseFuture {
                        let path = request.uri().path();
                        if path.starts_with("/opentelemetry.proto.collector.logs.v1.LogsService/") {
                            Box::pin(logs.call(request))
                        } else if path.starts_with(
                            "/opentelemetry.proto.collector.metrics.v1.MetricsService/",
                        ) {
                            Box::pin(metrics.call(request))
                        } else {
                            // Anything else is the trace service's to accept or refuse.
                            Box::pin(traces.call(request))
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), router)
                        .await;
                });
            }
        });
        (url, scripted)
    }

    /// Serves the scripted trace replies and returns the base URL.
    async fn serve(
        replies: Vec<Result<ExportTraceServiceResponse, Status>>,
    ) -> (String, Arc<Scripted>) {
        serve_scripted(Scripted {
            replies: Mutex::new(replies.into()),
            ..Scripted::default()
        })
        .await
    }

    fn exporter(endpoint: &str) -> OtlpExporter {
        test_support::exporter(Protocol::Grpc, endpoint)
    }

    #[tokio::test]
    async fn unavailable_is_retried() {
        let (url, scripted) = serve(vec![
            Err(Status::unavailable("restarting")),
            Ok(ExportTraceServiceResponse::default()),
        ])
        .await;
        let request = sample_request();

        let (attempts, result) =
            send_with_retry(&exporter(&url), &request, &fast_policy(), deadline()).await;

        assert_eq!(attempts, 2);
        assert_eq!(result, Ok(Accepted::default()));
        let received = scripted.received.lock().expect("lock");
        assert_eq!(received.len(), 2);
        for (got, authorization) in received.iter() {
            assert_eq!(got, &request);
            assert_eq!(authorization.as_deref(), Some("Bearer token"));
        }
    }

    #[tokio::test]
    async fn invalid_argument_is_not_retried() {
        let (url, scripted) = serve(vec![
            Err(Status::invalid_argument("bad span")),
            Ok(ExportTraceServiceResponse::default()),
        ])
        .await;

        let (attempts, result) = send_with_retry(
            &exporter(&url),
            &sample_request(),
            &fast_policy(),
            deadline(),
        )
        .await;

        assert_eq!(attempts, 1);
        assert_eq!(
            result,
            Err(ExportError::Permanent {
                reason: "gRPC status InvalidArgument: bad span".to_owned()
            })
        );
        assert_eq!(scripted.received.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn resource_exhausted_follows_retry_info() {
        let throttled = Status::with_details(
            Code::ResourceExhausted,
            "slow down",
            details_with_retry_info(ProtoDuration {
                seconds: 0,
                nanos: 10_000_000,
            }),
        );
        let (url, scripted) = serve(vec![
            Err(throttled),
            Err(Status::resource_exhausted("quota gone")),
            Ok(ExportTraceServiceResponse::default()),
        ])
        .await;

        let (attempts, result) = send_with_retry(
            &exporter(&url),
            &sample_request(),
            &fast_policy(),
            deadline(),
        )
        .await;

        assert_eq!(attempts, 2);
        assert!(
            matches!(result, Err(ExportError::Permanent { .. })),
            "{result:?}"
        );
        assert_eq!(scripted.received.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn partial_success_is_surfaced() {
        let (url, _) = serve(vec![Ok(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "dropped".to_owned(),
            }),
        })])
        .await;

        let accepted = exporter(&url)
            .send(&sample_request())
            .await
            .expect("accepted");

        assert_eq!(
            accepted,
            Accepted {
                rejected: 2,
                message: "dropped".to_owned()
            }
        );
    }

    #[tokio::test]
    async fn one_channel_reaches_each_signals_service() {
        let (url, scripted) = serve(vec![Ok(ExportTraceServiceResponse::default())]).await;
        let exporter = exporter(&url);

        exporter.send(&sample_request()).await.expect("traces");
        exporter.send(&sample_logs_request()).await.expect("logs");
        exporter
            .send(&sample_metrics_request())
            .await
            .expect("metrics");

        assert_eq!(
            scripted.received.lock().expect("lock")[0].0,
            sample_request()
        );
        assert_eq!(
            *scripted.logs.lock().expect("lock"),
            vec![sample_logs_request()]
        );
        assert_eq!(
            *scripted.metrics.lock().expect("lock"),
            vec![sample_metrics_request()]
        );
        assert_eq!(scripted.connections.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn logs_are_retried_and_their_partial_success_surfaced() {
        let (url, scripted) = serve_scripted(Scripted {
            log_replies: Mutex::new(
                vec![
                    Err(Status::unavailable("restarting")),
                    Ok(ExportLogsServiceResponse {
                        partial_success: Some(ExportLogsPartialSuccess {
                            rejected_log_records: 5,
                            error_message: "records too old".to_owned(),
                        }),
                    }),
                ]
                .into(),
            ),
            ..Scripted::default()
        })
        .await;

        let (attempts, result) = send_with_retry(
            &exporter(&url),
            &sample_logs_request(),
            &fast_policy(),
            deadline(),
        )
        .await;

        assert_eq!(attempts, 2);
        assert_eq!(
            result,
            Ok(Accepted {
                rejected: 5,
                message: "records too old".to_owned()
            })
        );
        assert_eq!(scripted.logs.lock().expect("lock").len(), 2);
        assert!(scripted.received.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn connection_refused_is_retryable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);

        let result = exporter(&url).send(&sample_request()).await;

        match result {
            Err(ExportError::Retryable {
                reason,
                retry_after: None,
            }) => {
                assert!(reason.contains("Unavailable"), "{reason}")
            }
            other => panic!("expected a retryable error, got {other:?}"),
        }
    }
}
