//! Distributed tracing, and the OTLP transport every signal shares.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::tls::Tls;

/// Distributed tracing. Unset fields fall back to the standard `OTEL_*` environment
/// variables, then to defaults: explicit configuration wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracing {
    /// `service.name` of every span (default `OTEL_SERVICE_NAME`, else `traverse`).
    pub service_name: Option<String>,
    /// Fraction of new traces recorded, 0.0 to 1.0; a request that arrives with trace
    /// context follows the caller's sampling decision.
    pub sample_rate: Option<f64>,
    /// Also trace the admin listener's own traffic (probes, API).
    pub add_internals: bool,
    /// Extra resource attributes, e.g. `deployment.environment: prod`; they win over
    /// `OTEL_RESOURCE_ATTRIBUTES` and the defaults.
    pub resource_attributes: BTreeMap<String, String>,
    /// Response header that returns the trace id to the client, e.g. `X-Trace-Id`.
    pub trace_id_response_header: Option<String>,
    pub otlp: Otlp,
    pub queue: ExportQueue,
}

/// The bounded buffer between the request path and the exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportQueue {
    /// Spans waiting for export; when full, new spans are dropped (and counted).
    pub max_size: usize,
    /// Spans per export request.
    pub max_batch_size: usize,
    /// Longest time a span waits before its batch is sent.
    #[serde(with = "humantime_serde")]
    pub schedule_delay: Duration,
}

impl Default for ExportQueue {
    fn default() -> Self {
        ExportQueue {
            max_size: 2048,
            max_batch_size: 512,
            schedule_delay: Duration::from_secs(1),
        }
    }
}

/// Where a signal is exported over OTLP: one of `http` or `grpc`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Otlp {
    /// Unset: enabled when `http` or `grpc` is given or an `OTEL_EXPORTER_OTLP_*ENDPOINT`
    /// variable is set.
    pub enabled: Option<bool>,
    pub http: Option<OtlpHttp>,
    pub grpc: Option<OtlpGrpc>,
}

impl Otlp {
    /// The transport chosen by configuration, if one is enabled.
    pub fn http_enabled(&self) -> Option<&OtlpHttp> {
        self.http.as_ref().filter(|h| h.enabled)
    }

    pub fn grpc_enabled(&self) -> Option<&OtlpGrpc> {
        self.grpc.as_ref().filter(|g| g.enabled)
    }
}

/// OTLP over HTTP with protobuf bodies.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OtlpHttp {
    pub enabled: bool,
    /// The full URL including the signal's path, e.g. `http://collector:4318/v1/traces`.
    pub endpoint: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// Per export attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Unset: `OTEL_EXPORTER_OTLP_*COMPRESSION`, else none.
    pub compression: Option<Compression>,
    pub tls: Option<Tls>,
}

impl Default for OtlpHttp {
    fn default() -> Self {
        OtlpHttp {
            enabled: true,
            endpoint: None,
            headers: BTreeMap::new(),
            timeout: None,
            compression: None,
            tls: None,
        }
    }
}

/// How export requests are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    /// What every OTLP receiver must accept.
    Gzip,
}

/// OTLP over gRPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OtlpGrpc {
    pub enabled: bool,
    /// `host:port` or a URL, e.g. `collector:4317` or `https://collector:4317`.
    pub endpoint: Option<String>,
    /// Plaintext (no TLS) when the endpoint has no scheme.
    pub insecure: bool,
    pub headers: BTreeMap<String, String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Unset: `OTEL_EXPORTER_OTLP_*COMPRESSION`, else none.
    pub compression: Option<Compression>,
    pub tls: Option<Tls>,
}

impl Default for OtlpGrpc {
    fn default() -> Self {
        OtlpGrpc {
            enabled: true,
            endpoint: None,
            insecure: false,
            headers: BTreeMap::new(),
            timeout: None,
            compression: None,
            tls: None,
        }
    }
}
