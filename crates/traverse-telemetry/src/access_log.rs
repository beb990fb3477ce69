//! The access log: one record per request, in Traefik's shape.
//!
//! The proxy fills an [`AccessRecord`] in its logging phase, asks the
//! [`AccessLogPolicy`] whether to keep it (filters) and which headers to capture,
//! then hands it to [`AccessLogger::log`], which only pushes it into a bounded
//! lock-free queue. Encoding (Traefik's common log format or JSON, and OTLP log
//! records) and I/O happen on the `traverse-access-log` thread, so a slow disk or
//! a full pipe never stalls a request; what does not fit in the queue is dropped
//! and counted.
//!
//! Field names are Traefik's (`ClientAddr`, `DownstreamStatus`, `request_User-Agent`,
//! ...) in the JSON lines and in the OTLP attributes alike, so dashboards and
//! queries written for Traefik keep working and a JSON line and its OTLP record can
//! be correlated field by field.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, Method, Version};
use opentelemetry::trace::{SpanId, TraceId};

use crate::record::RequestRecord;

mod format;
mod policy;
mod writer;

#[cfg(test)]
mod tests;

pub use policy::AccessLogPolicy;
pub use writer::{AccessLogStats, AccessLogWriter, AccessLogger};

/// What a redacted header is logged as.
pub const REDACTED: &str = "REDACTED";

/// One request, as the access log sees it. Built once per request by the proxy;
/// names shared with the routing table are `Arc<str>` so building it copies none.
///
/// `Option` fields are left out of the JSON (and the OTLP attributes) when `None`,
/// and shown as `-` in the common format.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// When the request arrived (`StartUTC`).
    pub start: SystemTime,
    /// Until the response was sent (`Duration`, nanoseconds).
    pub duration: Duration,
    /// Time spent waiting on the upstream (`OriginDuration`); `None` when none was reached.
    pub origin_duration: Option<Duration>,
    /// The TCP peer (`ClientAddr`, `ClientHost`, `ClientPort`).
    pub client_addr: Option<SocketAddr>,
    /// `ClientUsername`, when an authentication step identified the client.
    pub client_username: Option<String>,
    /// `RequestMethod`.
    pub method: Method,
    /// Path and query as received (`RequestPath`).
    pub path: String,
    /// `RequestProtocol`, e.g. `HTTP/1.1`.
    pub protocol: Version,
    /// `RequestHost`: the host the client asked for, without the port (as Traefik).
    pub host: String,
    /// `RequestScheme`: `http` or `https`.
    pub scheme: &'static str,
    /// `TLSVersion` (as Traefik): `1.2` or `1.3`; `None` on cleartext.
    pub tls_version: Option<&'static str>,
    /// `TLSServerName`: the name the client asked for in the TLS handshake (SNI), the
    /// SERVER span's `server.address` on TLS.
    pub tls_server_name: Option<String>,
    /// `RequestContentSize`: request body bytes.
    pub request_content_size: u64,
    /// `entryPointName`.
    pub entry_point: Option<Arc<str>>,
    /// `RouterName`; `None` when no route matched.
    pub router: Option<Arc<str>>,
    /// `http.route`: the matched rule's path template, as spans and metrics report it.
    pub route: Option<Arc<str>>,
    /// `traverse.middleware`: the Middleware (`namespace/name`) that answered the request
    /// itself (a redirect, 401/403, 429), as the SERVER span names it.
    pub middleware: Option<String>,
    /// `ServiceName`.
    pub service: Option<Arc<str>>,
    /// `ServiceAddr`: `host:port` of the upstream that served the request.
    pub service_addr: Option<Arc<str>>,
    /// `ServiceURL`, e.g. `http://10.0.0.5:8080`.
    pub service_url: Option<Arc<str>>,
    /// `OriginStatus`; `None` when no upstream response arrived.
    pub origin_status: Option<u16>,
    /// `OriginContentSize`: upstream response body bytes.
    pub origin_content_size: Option<u64>,
    /// `DownstreamStatus`: the status sent to the client.
    pub downstream_status: u16,
    /// `DownstreamContentSize`: response body bytes sent to the client.
    pub downstream_content_size: u64,
    /// `RetryAttempts`: upstream attempts beyond the first.
    pub retry_attempts: u32,
    /// `RequestCount`: the record's ordinal among those this process wrote. Set by
    /// the logger's thread (a value filled in by the caller is replaced), so it costs
    /// the request path nothing; unlike Traefik's it does not count filtered requests.
    pub request_count: Option<u64>,
    /// `trace_id` of the request's SERVER span; `None` when tracing is off.
    pub trace_id: Option<TraceId>,
    /// `span_id` of the request's SERVER span.
    pub span_id: Option<SpanId>,
    /// Whether the trace is sampled (the OTLP record's flags).
    pub sampled: bool,
    /// Captured with [`AccessLogPolicy::capture_headers`]; logged as `request_<Name>`.
    pub request_headers: Vec<(HeaderName, CapturedValue)>,
    /// Captured with [`AccessLogPolicy::capture_headers`]; logged as `downstream_<Name>`.
    pub response_headers: Vec<(HeaderName, CapturedValue)>,
}

impl Default for AccessRecord {
    /// An empty `GET` at the Unix epoch; the proxy overrides what it knows.
    fn default() -> Self {
        AccessRecord {
            start: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            origin_duration: None,
            client_addr: None,
            client_username: None,
            method: Method::GET,
            path: String::new(),
            protocol: Version::HTTP_11,
            host: String::new(),
            scheme: "http",
            tls_version: None,
            tls_server_name: None,
            request_content_size: 0,
            entry_point: None,
            router: None,
            route: None,
            middleware: None,
            service: None,
            service_addr: None,
            service_url: None,
            origin_status: None,
            origin_content_size: None,
            downstream_status: 0,
            downstream_content_size: 0,
            retry_attempts: 0,
            request_count: None,
            trace_id: None,
            span_id: None,
            sampled: false,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }
}

impl AccessRecord {
    /// The record of `request`, with the headers `policy` captures.
    pub fn new(request: &RequestRecord, policy: &AccessLogPolicy) -> AccessRecord {
        let upstream = request.upstream;
        let service_addr: Option<Arc<str>> = upstream.map(|u| u.address.to_string().into());
        AccessRecord {
            start: request.start,
            duration: request.duration,
            origin_duration: upstream.and_then(|u| u.duration),
            client_addr: request.client,
            client_username: request.client_username.map(str::to_owned),
            method: request.method.clone(),
            path: request.path_and_query().to_owned(),
            protocol: request.version,
            host: request.host.unwrap_or("").to_owned(),
            scheme: request.scheme,
            tls_version: request.tls.map(|tls| tls.version),
            tls_server_name: request
                .tls
                .and_then(|tls| tls.server_name)
                .map(str::to_owned),
            request_content_size: request.request_bytes,
            entry_point: Some(Arc::clone(request.entry_point)),
            router: request.router.cloned(),
            route: request.route.cloned(),
            middleware: request.middleware.map(str::to_owned),
            service: request.service.cloned(),
            service_url: upstream.map(|u| format!("{}://{}", u.scheme, u.address).into()),
            service_addr,
            origin_status: upstream.and_then(|u| u.status),
            origin_content_size: None,
            downstream_status: request.status,
            downstream_content_size: request.response_bytes,
            retry_attempts: request.attempts.saturating_sub(1),
            request_count: None,
            trace_id: request.span.map(|s| s.trace_id),
            span_id: request.span.map(|s| s.span_id),
            sampled: request.span.is_some_and(|s| s.sampled),
            request_headers: policy.capture_headers(request.request_headers),
            response_headers: request
                .response_headers
                .map(|h| policy.capture_headers(h))
                .unwrap_or_default(),
        }
    }
}

/// A header value as it will be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturedValue {
    /// Kept as sent (cloning a `HeaderValue` shares its bytes).
    Value(HeaderValue),
    /// Present, but logged as [`REDACTED`].
    Redacted,
}

impl CapturedValue {
    /// The logged text; bytes that are not UTF-8 are replaced.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            CapturedValue::Value(value) => String::from_utf8_lossy(value.as_bytes()),
            CapturedValue::Redacted => Cow::Borrowed(REDACTED),
        }
    }
}
