//! OTLP export transport for traces, metrics and logs: one attempt
//! ([`OtlpExporter::send`]) and a bounded retry loop around it
//! ([`send_with_retry`]).
//!
//! The transport is generic over the signal: any [`OtlpRequest`] (the three
//! `Export*ServiceRequest` messages) goes through the same exporter, which
//! knows where each one goes and how to read its partial success.
//!
//! Both OTLP/HTTP (protobuf body) and OTLP/gRPC are supported. Everything that
//! can be checked from the configuration (URL, headers, TLS files) is checked
//! by [`OtlpExporter::new`], so a bad configuration fails at startup rather
//! than on the first export. Errors of an attempt are classified following the
//! OTLP specification into [`ExportError::Retryable`] and
//! [`ExportError::Permanent`].
//!
//! TLS uses rustls with the `ring` provider. Server certificates are checked
//! against the bundled Mozilla roots (`webpki-roots`) plus an optional
//! `ca_file`: the bundled set behaves the same on every host, including
//! minimal container images that ship no system trust store, and private CAs
//! are added explicitly through `ca_file`.

mod grpc;
mod http;
mod retry;
#[cfg(test)]
pub(crate) mod test_support;
pub mod tls;
#[cfg(test)]
mod tls_tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ::http::uri::Scheme;
use ::http::{HeaderName, HeaderValue, Uri};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use traverse_config::CertificateFiles;
pub use traverse_config::Compression;

pub use retry::{send_with_retry, RetryPolicy};

/// Identifies the exporter to collectors, as the OTLP specification asks.
const USER_AGENT: &str = concat!("traverse/", env!("CARGO_PKG_VERSION"));

/// Wire protocol used to reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with a binary protobuf body.
    HttpProtobuf,
    /// OTLP/gRPC.
    Grpc,
}

/// TLS settings; only used with `https` endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `ca`: CA certificates trusted in addition to the bundled roots; `cert` and `key`:
    /// the client certificate chain and its key, for mutual TLS (both or neither).
    pub files: CertificateFiles,
    /// Accept any server certificate. Only for testing against collectors
    /// with throwaway certificates: it removes all protection against
    /// interception.
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    fn is_set(&self) -> bool {
        self != &Self::default()
    }
}

/// Everything needed to build an [`OtlpExporter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterOptions {
    pub protocol: Protocol,
    /// HTTP: the full URL including the signal path (for example
    /// `http://collector:4318/v1/traces` or `.../v1/logs`), used as is, so an
    /// HTTP exporter serves the one signal its URL names.
    /// gRPC: the collector's base URL (`http://collector:4317` for plaintext
    /// HTTP/2, `https://...` for TLS); any path is ignored.
    pub endpoint: String,
    /// Sent with every export, as HTTP headers or gRPC metadata.
    pub headers: Vec<(String, String)>,
    /// Limit for one attempt, connection set-up included.
    pub timeout: Duration,
    /// gzip costs the export thread CPU and saves the network bytes.
    pub compression: Compression,
    pub tls: TlsOptions,
}

/// An OTLP export request: what [`OtlpExporter::send`] can carry.
///
/// Implemented for the trace, metrics and logs requests, and a trace request already
/// encoded, only (the trait is sealed): each signal differs in its gRPC method, its response type and the
/// name of its partial-success counter, and nothing else.
pub trait OtlpRequest: prost::Message + Default + Clone + Send + Sync + 'static + Sealed {
    /// The collector's answer to a successful export.
    type Response: prost::Message + Default + Send + Sync + 'static;
    /// Full gRPC method path, `/package.Service/Export`.
    const GRPC_PATH: &'static str;
    /// The signal, as it reads in messages: "trace", "metric" or "log".
    const SIGNAL: &'static str;
    /// What the request carries, in the plural: "spans", "data points" or
    /// "log records".
    const ITEMS: &'static str;

    /// The rejected item count and the collector's message from the
    /// response's `partial_success` (zero and empty when it is absent).
    fn partial_success(response: Self::Response) -> (i64, String);

    /// The encoded request, as an OTLP/HTTP body.
    fn body(&self) -> bytes::Bytes {
        bytes::Bytes::from(self.encode_to_vec())
    }
}

mod sealed {
    /// Keeps [`super::OtlpRequest`] to the three OTLP signals: the transport
    /// relies on their wire contracts.
    pub trait Sealed {}
    impl Sealed for super::ExportTraceServiceRequest {}
    impl Sealed for super::ExportMetricsServiceRequest {}
    impl Sealed for super::ExportLogsServiceRequest {}
    impl Sealed for crate::span_wire::EncodedTraceRequest {}
}
use sealed::Sealed;

impl OtlpRequest for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const SIGNAL: &'static str = "trace";
    const ITEMS: &'static str = "spans";

    fn partial_success(response: Self::Response) -> (i64, String) {
        let partial = response.partial_success.unwrap_or_default();
        (partial.rejected_spans, partial.error_message)
    }
}

impl OtlpRequest for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const SIGNAL: &'static str = "metric";
    const ITEMS: &'static str = "data points";

    fn partial_success(response: Self::Response) -> (i64, String) {
        let partial = response.partial_success.unwrap_or_default();
        (partial.rejected_data_points, partial.error_message)
    }
}

impl OtlpRequest for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const SIGNAL: &'static str = "log";
    const ITEMS: &'static str = "log records";

    fn partial_success(response: Self::Response) -> (i64, String) {
        let partial = response.partial_success.unwrap_or_default();
        (partial.rejected_log_records, partial.error_message)
    }
}

/// What the collector accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items (spans, data points or log records) the collector reported as
    /// rejected in `partial_success`; zero when everything was accepted.
    pub rejected: i64,
    /// The collector's explanation for a partial success, possibly empty.
    pub message: String,
}

impl Accepted {
    fn from_response<R: OtlpRequest>(response: R::Response) -> Self {
        let (rejected, message) = R::partial_success(response);
        Self { rejected, message }
    }
}

/// Failure of one export attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Transient: the same request may succeed later.
    #[error("retryable export failure: {reason}")]
    Retryable {
        reason: String,
        /// How long the collector asked us to wait before retrying.
        retry_after: Option<Duration>,
    },
    /// The collector will not accept this request; retrying is pointless.
    #[error("permanent export failure: {reason}")]
    Permanent { reason: String },
}

impl ExportError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    fn retryable(reason: impl Into<String>) -> Self {
        Self::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// A configuration the exporter cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid OTLP endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("invalid OTLP header name `{name}`: {reason}")]
    InvalidHeaderName { name: String, reason: String },
    // The value is left out on purpose: headers usually carry credentials.
    #[error("invalid value for OTLP header `{name}`: {reason}")]
    InvalidHeaderValue { name: String, reason: String },
    #[error("OTLP export timeout must be greater than zero")]
    ZeroTimeout,
    #[error("TLS options are set but endpoint `{endpoint}` is plaintext http; use an https URL")]
    TlsOnPlaintext { endpoint: String },
    #[error("cannot read TLS {what} `{}` ({key}): {source}", path.display())]
    ReadFile {
        what: &'static str,
        /// The configuration key that names the file.
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid TLS {what} `{}` ({key}): {reason}", path.display())]
    InvalidPem {
        what: &'static str,
        /// The configuration key that names the file.
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS key_file `{}` is set without cert_file", .0.display())]
    KeyWithoutCert(PathBuf),
    #[error("TLS cert_file `{}` is set without key_file", .0.display())]
    CertWithoutKey(PathBuf),
    #[error("TLS ca_file has no effect with insecure_skip_verify; set only one of them")]
    CaWithInsecure,
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
}

/// Sends OTLP export requests to one collector.
///
/// Over gRPC one exporter (and its one HTTP/2 channel) carries any signal, the
/// method being chosen per request; over HTTP it posts to its configured URL,
/// which names one signal.
///
/// Building it needs no async runtime, so it can be built (and its
/// configuration rejected) before the export thread starts. It must then be
/// used from a single Tokio runtime: pooled connections, and for gRPC the
/// channel created on the first [`send`](Self::send), live on the runtime that
/// made them.
pub struct OtlpExporter {
    inner: Inner,
    endpoint: String,
}

// A few exporters per process: the size difference between variants is irrelevant.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Http(http::HttpExporter),
    Grpc(grpc::GrpcExporter),
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.inner {
            Inner::Http(_) => Protocol::HttpProtobuf,
            Inner::Grpc(_) => Protocol::Grpc,
        };
        f.debug_struct("OtlpExporter")
            .field("protocol", &protocol)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    pub fn new(options: ExporterOptions) -> Result<Self, ConfigError> {
        if options.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let uri = parse_endpoint(&options.endpoint)?;
        let tls = if uri.scheme() == Some(&Scheme::HTTPS) {
            Some(tls::TlsMaterial::load(&options.tls)?)
        } else if options.tls.is_set() {
            return Err(ConfigError::TlsOnPlaintext {
                endpoint: options.endpoint,
            });
        } else {
            None
        };
        let headers = validate_headers(&options.headers)?;
        let inner = match options.protocol {
            Protocol::HttpProtobuf => {
                let tls_config = tls
                    .as_ref()
                    .map(tls::TlsMaterial::rustls_config)
                    .transpose()?;
                Inner::Http(http::HttpExporter::new(
                    uri,
                    &headers,
                    options.timeout,
                    options.compression,
                    tls_config,
                )?)
            }
            Protocol::Grpc => Inner::Grpc(grpc::GrpcExporter::new(
                uri,
                &headers,
                options.timeout,
                options.compression,
                tls.as_ref(),
            )?),
        };
        Ok(Self {
            inner,
            endpoint: options.endpoint,
        })
    }

    /// Makes one export attempt, bounded by the configured timeout.
    pub async fn send<R: OtlpRequest>(&self, request: &R) -> Result<Accepted, ExportError> {
        match &self.inner {
            Inner::Http(exporter) => exporter.send(request).await,
            Inner::Grpc(exporter) => exporter.send(request).await,
        }
    }
}

fn parse_endpoint(endpoint: &str) -> Result<Uri, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: Uri = endpoint.parse().map_err(|e| invalid(format!("{e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(invalid(format!(
                "unsupported scheme `{other}`, expected http or https"
            )))
        }
        None => {
            return Err(invalid(
                "missing scheme, expected http:// or https://".to_owned(),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host".to_owned()));
    }
    Ok(uri)
}

/// Validated header names (lowercased) and values, in configuration order.
fn validate_headers(
    headers: &[(String, String)],
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    headers
        .iter()
        .map(|(name, value)| {
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                ConfigError::InvalidHeaderName {
                    name: name.clone(),
                    reason: e.to_string(),
                }
            })?;
            let header_value =
                HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidHeaderValue {
                    name: name.clone(),
                    reason: "values may only contain visible ASCII characters, spaces and tabs"
                        .to_owned(),
                })?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// Renders an error with its sources: transport errors keep the useful part
/// (for example "connection refused") in their source chain.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(protocol: Protocol, endpoint: &str) -> ExporterOptions {
        ExporterOptions {
            protocol,
            endpoint: endpoint.to_owned(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            compression: Compression::None,
            tls: TlsOptions::default(),
        }
    }

    fn config_error(options: ExporterOptions) -> String {
        match OtlpExporter::new(options) {
            Ok(_) => panic!("configuration was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builds_outside_a_runtime() {
        for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
            OtlpExporter::new(options(protocol, "http://127.0.0.1:4318/v1/traces"))
                .expect("plaintext");
            OtlpExporter::new(options(
                protocol,
                "https://collector.example:4318/v1/traces",
            ))
            .expect("tls");
        }
    }

    #[test]
    fn rejects_bad_endpoints() {
        for (endpoint, expected) in [
            ("collector:4318", "scheme"),
            ("ftp://collector/v1/traces", "unsupported scheme `ftp`"),
            ("http://", "invalid OTLP endpoint `http://`"),
            ("not a url", "invalid OTLP endpoint"),
        ] {
            let message = config_error(options(Protocol::HttpProtobuf, endpoint));
            assert!(message.contains(expected), "{endpoint}: {message}");
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let mut bad_name = options(Protocol::HttpProtobuf, "http://localhost:4318/v1/traces");
        bad_name.headers = vec![("bad name".to_owned(), "v".to_owned())];
        assert!(config_error(bad_name).contains("invalid OTLP header name `bad name`"));

        let mut bad_value = options(Protocol::Grpc, "http://localhost:4317");
        bad_value.headers = vec![("authorization".to_owned(), "secret\nvalue".to_owned())];
        let message = config_error(bad_value);
        assert!(
            message.contains("invalid value for OTLP header `authorization`"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn rejects_zero_timeout_and_tls_on_plaintext() {
        let mut zero = options(Protocol::HttpProtobuf, "http://localhost:4318/v1/traces");
        zero.timeout = Duration::ZERO;
        assert!(config_error(zero).contains("timeout"));

        let mut plaintext = options(Protocol::Grpc, "http://localhost:4317");
        plaintext.tls.insecure_skip_verify = true;
        assert!(config_error(plaintext).contains("plaintext http"));
    }

    #[test]
    fn error_chain_includes_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);

        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(
            error_chain(&Outer(refused)),
            "client error (Connect): connection refused"
        );
    }
}
