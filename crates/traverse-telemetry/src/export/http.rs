//! OTLP/HTTP with protobuf bodies over HTTP/1.1, with keep-alive connections
//! pooled across exports.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ::http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use ::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression as GzLevel;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prost::Message;
use rustls::ClientConfig;

use super::{error_chain, Accepted, Compression, ConfigError, ExportError, OtlpRequest};

const PROTOBUF: HeaderValue = HeaderValue::from_static("application/x-protobuf");
/// Success bodies only carry `partial_success`; anything larger is not ours.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// How much of an error body goes into the error reason.
const MAX_REASON_BODY: usize = 256;
/// Collectors close idle connections on their own schedule; dropping ours
/// earlier avoids sending an export into a connection being closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct HttpExporter {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
    gzip: bool,
}

impl HttpExporter {
    /// `tls` is required for `https` endpoints; plaintext ones never use it.
    pub(super) fn new(
        uri: Uri,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
        compression: Compression,
        tls: Option<ClientConfig>,
    ) -> Result<Self, ConfigError> {
        let tls = match tls {
            Some(config) => config,
            None => unused_tls_config()?,
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);

        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            header_map.append(name.clone(), value.clone());
        }
        if !header_map.contains_key(USER_AGENT) {
            header_map.insert(USER_AGENT, HeaderValue::from_static(super::USER_AGENT));
        }
        header_map.insert(CONTENT_TYPE, PROTOBUF);
        let gzip = compression == Compression::Gzip;
        if gzip {
            header_map.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }

        Ok(Self {
            client,
            uri,
            headers: header_map,
            timeout,
            gzip,
        })
    }

    pub(super) async fn send<R: OtlpRequest>(&self, request: &R) -> Result<Accepted, ExportError> {
        let mut body = request.body();
        if self.gzip {
            body = gzip(&body)
                .map_err(|e| ExportError::Permanent {
                    reason: format!("gzip: {e}"),
                })?
                .into();
        }
        let mut http_request = Request::new(Full::new(body));
        *http_request.method_mut() = Method::POST;
        *http_request.uri_mut() = self.uri.clone();
        *http_request.headers_mut() = self.headers.clone();

        match tokio::time::timeout(self.timeout, self.round_trip::<R>(http_request)).await {
            Ok(result) => result,
            Err(_) => Err(ExportError::retryable(format!(
                "no response within {:?}",
                self.timeout
            ))),
        }
    }

    async fn round_trip<R: OtlpRequest>(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Accepted, ExportError> {
        let response = self.client.request(request).await.map_err(|e| {
            ExportError::retryable(format!("HTTP request failed: {}", error_chain(&e)))
        })?;
        let (parts, body) = response.into_parts();
        // A body that cannot be read is treated as empty: the status alone
        // decides the outcome.
        let body = match Limited::new(body, MAX_RESPONSE_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        if parts.status.is_success() {
            // The data was accepted whatever the body says; an undecodable
            // body only loses the partial-success details.
            return Ok(R::Response::decode(body)
                .map(Accepted::from_response::<R>)
                .unwrap_or_default());
        }
        Err(classify_status(
            parts.status,
            parts.headers.get(RETRY_AFTER),
            &body,
            SystemTime::now(),
        ))
    }
}

/// `body` compressed with gzip at the fastest level: batches of spans and log records
/// repeat their keys and names, so even that level shrinks them several times, for the
/// least CPU on the export thread.
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), GzLevel::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// A client configuration for plaintext endpoints, where the HTTPS connector
/// wants one although it is never used.
fn unused_tls_config() -> Result<ClientConfig, ConfigError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// Classifies a non-2xx response following OTLP/HTTP: only 429, 502, 503 and
/// 504 are worth retrying.
fn classify_status(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    body: &[u8],
    now: SystemTime,
) -> ExportError {
    let mut reason = format!("collector answered {status}");
    let snippet = String::from_utf8_lossy(&body[..body.len().min(MAX_REASON_BODY)]);
    let snippet = snippet.trim();
    if !snippet.is_empty() {
        reason.push_str(": ");
        reason.push_str(snippet);
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => ExportError::Retryable {
            reason,
            retry_after: retry_after
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, now)),
        },
        _ => ExportError::Permanent { reason },
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP-date; a date in the past
/// means "now".
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use tokio::net::TcpListener;
    use tokio::time::Instant;

    use super::*;
    use crate::export::test_support::{
        self, deadline, fast_policy, reply, sample_logs_request, sample_metrics_request,
        sample_request, serve_scripted_http, HttpCollector, Reply,
    };
    use crate::export::{send_with_retry, ExporterOptions, OtlpExporter, Protocol, RetryPolicy};

    #[test]
    fn only_throttling_and_gateway_errors_are_retryable() {
        let now = SystemTime::now();
        for code in [429, 502, 503, 504] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(
                classify_status(status, None, b"", now).is_retryable(),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 405, 413, 500, 501, 505] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(
                !classify_status(status, None, b"", now).is_retryable(),
                "{code}"
            );
        }
    }

    #[test]
    fn permanent_reason_has_status_and_bounded_body() {
        let body = "x".repeat(10_000);
        let ExportError::Permanent { reason } = classify_status(
            StatusCode::BAD_REQUEST,
            None,
            body.as_bytes(),
            SystemTime::now(),
        ) else {
            panic!("400 must be permanent");
        };
        assert!(
            reason.starts_with("collector answered 400 Bad Request: xxx"),
            "{reason}"
        );
        assert!(reason.len() < 400, "{}", reason.len());
    }

    #[test]
    fn retry_after_is_attached_to_retryable_statuses() {
        let value = HeaderValue::from_static("7");
        let error = classify_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&value),
            b"",
            SystemTime::now(),
        );
        assert!(
            matches!(error, ExportError::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    /// Serves `replies` in order on the traces path.
    async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<HttpCollector>>) {
        serve_scripted_http("/v1/traces", replies).await
    }

    fn exporter(endpoint: &str) -> OtlpExporter {
        test_support::exporter(Protocol::HttpProtobuf, endpoint)
    }

    #[tokio::test]
    async fn retries_503_then_succeeds_on_the_same_payload() {
        let (url, seen) = serve(vec![
            reply("503 Service Unavailable", "retry-after: 0\r\n"),
            reply("200 OK", ""),
        ])
        .await;
        let request = sample_request();

        let (attempts, result) =
            send_with_retry(&exporter(&url), &request, &fast_policy(), deadline()).await;

        assert_eq!(attempts, 2);
        assert_eq!(result, Ok(Accepted::default()));
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.bodies.len(), 2);
        for (body, head) in seen.bodies.iter().zip(&seen.headers) {
            assert_eq!(
                ExportTraceServiceRequest::decode(body.as_slice()).expect("protobuf"),
                request
            );
            assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
            assert!(
                head.contains("content-type: application/x-protobuf\r\n"),
                "{head}"
            );
            assert!(head.contains("authorization: bearer token\r\n"), "{head}");
        }
    }

    #[tokio::test]
    async fn gzip_compresses_the_body_and_says_so() {
        let (url, seen) = serve(vec![reply("200 OK", "")]).await;
        let exporter = OtlpExporter::new(ExporterOptions {
            compression: Compression::Gzip,
            ..test_support::options(Protocol::HttpProtobuf, &url)
        })
        .expect("exporter");
        let request = sample_request();

        let result = exporter.send(&request).await;

        assert_eq!(result, Ok(Accepted::default()));
        let seen = seen.lock().expect("lock");
        assert!(
            seen.headers[0].contains("content-encoding: gzip\r\n"),
            "{}",
            seen.headers[0]
        );
        let mut body = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(seen.bodies[0].as_slice()),
            &mut body,
        )
        .expect("a gzip body");
        assert_eq!(
            ExportTraceServiceRequest::decode(body.as_slice()).expect("protobuf"),
            request
        );
    }

    #[tokio::test]
    async fn bad_request_is_not_retried() {
        let mut bad = reply("400 Bad Request", "");
        bad.body = b"malformed spans".to_vec();
        let (url, seen) = serve(vec![bad, reply("200 OK", "")]).await;

        let (attempts, result) = send_with_retry(
            &exporter(&url),
            &sample_request(),
            &fast_policy(),
            deadline(),
        )
        .await;

        assert_eq!(attempts, 1);
        match result {
            Err(ExportError::Permanent { reason }) => {
                assert!(
                    reason.contains("400") && reason.contains("malformed spans"),
                    "{reason}"
                )
            }
            other => panic!("expected a permanent error, got {other:?}"),
        }
        assert_eq!(seen.lock().expect("lock").bodies.len(), 1);
    }

    #[tokio::test]
    async fn partial_success_is_surfaced() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "spans too old".to_owned(),
            }),
        };
        let mut ok = reply("200 OK", "content-type: application/x-protobuf\r\n");
        ok.body = response.encode_to_vec();
        let (url, _) = serve(vec![ok]).await;

        let accepted = exporter(&url)
            .send(&sample_request())
            .await
            .expect("accepted");

        assert_eq!(accepted.rejected, 3);
        assert_eq!(accepted.message, "spans too old");
    }

    #[tokio::test]
    async fn logs_are_posted_and_their_partial_success_read() {
        let response = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 4,
                error_message: "records too large".to_owned(),
            }),
        };
        let mut ok = reply("200 OK", "content-type: application/x-protobuf\r\n");
        ok.body = response.encode_to_vec();
        let (url, seen) = serve_scripted_http("/v1/logs", vec![ok]).await;
        let request = sample_logs_request();

        let (attempts, result) =
            send_with_retry(&exporter(&url), &request, &fast_policy(), deadline()).await;

        assert_eq!(attempts, 1);
        assert_eq!(
            result,
            Ok(Accepted {
                rejected: 4,
                message: "records too large".to_owned()
            })
        );
        let seen = seen.lock().expect("lock");
        let head = &seen.headers[0];
        assert!(head.starts_with("post /v1/logs http/1.1"), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf\r\n"),
            "{head}"
        );
        assert_eq!(
            ExportLogsServiceRequest::decode(seen.bodies[0].as_slice()).expect("protobuf"),
            request
        );
    }

    #[tokio::test]
    async fn metrics_are_posted_and_their_partial_success_read() {
        let response = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 1,
                error_message: "unknown unit".to_owned(),
            }),
        };
        let mut ok = reply("200 OK", "");
        ok.body = response.encode_to_vec();
        let (url, seen) = serve_scripted_http("/v1/metrics", vec![ok]).await;
        let request = sample_metrics_request();

        let accepted = exporter(&url).send(&request).await.expect("accepted");

        assert_eq!(accepted.rejected, 1);
        assert_eq!(accepted.message, "unknown unit");
        let seen = seen.lock().expect("lock");
        assert!(seen.headers[0].starts_with("post /v1/metrics http/1.1"));
        assert_eq!(
            ExportMetricsServiceRequest::decode(seen.bodies[0].as_slice()).expect("protobuf"),
            request
        );
    }

    #[tokio::test]
    async fn undecodable_success_body_is_still_success() {
        let mut ok = reply("200 OK", "");
        ok.body = b"\xff\xff\xff not protobuf".to_vec();
        let (url, _) = serve(vec![ok]).await;

        assert_eq!(
            exporter(&url).send(&sample_request()).await,
            Ok(Accepted::default())
        );
    }

    #[tokio::test]
    async fn connections_are_reused() {
        let (url, seen) = serve(vec![reply("200 OK", ""), reply("200 OK", "")]).await;
        let exporter = exporter(&url);
        exporter.send(&sample_request()).await.expect("first");
        exporter.send(&sample_request()).await.expect("second");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.bodies.len(), 2);
        assert_eq!(seen.connections, 1);
    }

    #[tokio::test]
    async fn retry_after_beyond_the_deadline_stops_early() {
        let (url, seen) = serve(vec![reply("429 Too Many Requests", "retry-after: 60\r\n")]).await;
        let started = Instant::now();

        let (attempts, result) = send_with_retry(
            &exporter(&url),
            &sample_request(),
            &fast_policy(),
            started + Duration::from_secs(2),
        )
        .await;

        assert_eq!(attempts, 1);
        assert!(
            matches!(result, Err(ExportError::Retryable { retry_after: Some(d), .. }) if d == Duration::from_secs(60))
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(seen.lock().expect("lock").bodies.len(), 1);
    }

    #[tokio::test]
    async fn connection_refused_is_retried_until_the_deadline() {
        // Bind then drop to get a local port with nothing listening.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
        drop(listener);
        let policy = RetryPolicy {
            max_attempts: 1_000,
            ..fast_policy()
        };
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);

        let (attempts, result) =
            send_with_retry(&exporter(&url), &sample_request(), &policy, deadline).await;

        assert!(attempts > 1, "{attempts}");
        match result {
            Err(ExportError::Retryable {
                reason,
                retry_after: None,
            }) => {
                assert!(reason.to_lowercase().contains("refused"), "{reason}")
            }
            other => panic!("expected a retryable error, got {other:?}"),
        }
        // The deadline, not the attempt budget, ended the retries: all 1,000 attempts at
        // up to 20 ms of backoff would take about 20 s. (A tight bound on the elapsed time
        // failed on a loaded machine; what is tested is that the deadline stops it.)
        assert!(attempts < policy.max_attempts, "{attempts}");
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}
