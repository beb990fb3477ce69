//! The gateway's own logs and the access log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::tracing::Otlp;

/// The gateway's own logs and the access log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Logs {
    pub general: GeneralLogs,
    pub access: AccessLog,
}

/// The gateway's own log lines (always on stderr; optionally also over OTLP).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneralLogs {
    /// Exported with the same resource as the traces; off unless `http` or `grpc` is
    /// given (the `OTEL_*` endpoint variables do not turn it on).
    pub otlp: Otlp,
}

/// One record per request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLog {
    pub enabled: bool,
    pub format: AccessLogFormat,
    /// Append text lines to this file. Unset: text lines go to stdout, unless `otlp`
    /// is enabled (then records go only to the collector).
    pub file_path: Option<PathBuf>,
    /// Also log the admin listener's requests.
    pub add_internals: bool,
    pub filters: AccessLogFilters,
    pub fields: AccessLogFields,
    /// Send records as OTLP log records, with the request's trace and span ids.
    pub otlp: Otlp,
    /// Records waiting to be written; when full, new records are dropped and counted.
    pub buffer_size: usize,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: false,
            format: AccessLogFormat::default(),
            file_path: None,
            add_internals: false,
            filters: AccessLogFilters::default(),
            fields: AccessLogFields::default(),
            otlp: Otlp::default(),
            buffer_size: 4096,
        }
    }
}

/// Text encoding of access log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// Common Log Format, extended like Traefik's (router, service, duration).
    #[default]
    Common,
    /// One JSON object per line with Traefik's field names.
    Json,
}

/// Which requests are logged: a request is kept when it matches any filter that is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogFilters {
    /// Status codes and ranges, e.g. `["400-599", "302"]`.
    pub status_codes: Vec<String>,
    /// Keep requests that were retried.
    pub retry_attempts: bool,
    /// Keep requests that took longer than this.
    #[serde(with = "humantime_serde")]
    pub min_duration: Option<Duration>,
}

/// Field and header selection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogFields {
    pub general: FieldSelection,
    pub headers: HeaderSelection,
}

/// Keep or drop each field (names as in the JSON output, e.g. `ClientAddr`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSelection {
    // `defaultmode` is the spelling of Traefik's Helm values, accepted so they carry over.
    #[serde(alias = "defaultmode")]
    pub default_mode: FieldMode,
    pub names: BTreeMap<String, FieldMode>,
}

/// Keep, drop or redact each request and response header.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderSelection {
    #[serde(alias = "defaultmode")]
    pub default_mode: HeaderMode,
    /// By header name, case-insensitive.
    pub names: BTreeMap<String, HeaderMode>,
}

impl Default for HeaderSelection {
    fn default() -> Self {
        HeaderSelection {
            default_mode: HeaderMode::Drop,
            names: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldMode {
    #[default]
    Keep,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMode {
    Keep,
    Drop,
    /// Logged as `REDACTED`: the header was present, its value is not recorded.
    Redact,
}

/// Parses one `statusCodes` entry: `404` or `500-599`.
pub fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let status = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (status(low)?, status(high)?),
        None => (status(text)?, status(text)?),
    };
    (low <= high).then_some((low, high))
}
