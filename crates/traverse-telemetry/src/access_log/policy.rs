//! What is logged: the request filters, the field selection and the header modes,
//! resolved once from the configuration.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use traverse_config::{
    parse_status_range, AccessLog, AccessLogFormat, FieldMode, FieldSelection, HeaderMode,
};

use super::CapturedValue;

/// The general fields, in output order. The discriminant is the field's bit in
/// [`AccessLogPolicy`]'s selection mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    StartUtc,
    Duration,
    OriginDuration,
    ClientAddr,
    ClientHost,
    ClientPort,
    ClientUsername,
    RequestMethod,
    RequestPath,
    RequestProtocol,
    RequestHost,
    RequestScheme,
    TlsVersion,
    TlsServerName,
    RequestContentSize,
    EntryPointName,
    RouterName,
    HttpRoute,
    Middleware,
    ServiceName,
    ServiceAddr,
    ServiceUrl,
    OriginStatus,
    OriginContentSize,
    DownstreamStatus,
    DownstreamContentSize,
    RetryAttempts,
    RequestCount,
    TraceId,
    SpanId,
}

impl Field {
    pub(crate) const ALL: [Field; 30] = [
        Field::StartUtc,
        Field::Duration,
        Field::OriginDuration,
        Field::ClientAddr,
        Field::ClientHost,
        Field::ClientPort,
        Field::ClientUsername,
        Field::RequestMethod,
        Field::RequestPath,
        Field::RequestProtocol,
        Field::RequestHost,
        Field::RequestScheme,
        Field::TlsVersion,
        Field::TlsServerName,
        Field::RequestContentSize,
        Field::EntryPointName,
        Field::RouterName,
        Field::HttpRoute,
        Field::Middleware,
        Field::ServiceName,
        Field::ServiceAddr,
        Field::ServiceUrl,
        Field::OriginStatus,
        Field::OriginContentSize,
        Field::DownstreamStatus,
        Field::DownstreamContentSize,
        Field::RetryAttempts,
        Field::RequestCount,
        Field::TraceId,
        Field::SpanId,
    ];

    /// The JSON key, as Traefik spells it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Field::StartUtc => "StartUTC",
            Field::Duration => "Duration",
            Field::OriginDuration => "OriginDuration",
            Field::ClientAddr => "ClientAddr",
            Field::ClientHost => "ClientHost",
            Field::ClientPort => "ClientPort",
            Field::ClientUsername => "ClientUsername",
            Field::RequestMethod => "RequestMethod",
            Field::RequestPath => "RequestPath",
            Field::RequestProtocol => "RequestProtocol",
            Field::RequestHost => "RequestHost",
            Field::RequestScheme => "RequestScheme",
            Field::TlsVersion => "TLSVersion",
            Field::TlsServerName => "TLSServerName",
            Field::RequestContentSize => "RequestContentSize",
            Field::EntryPointName => "entryPointName",
            Field::RouterName => "RouterName",
            Field::HttpRoute => "http.route",
            Field::Middleware => "traverse.middleware",
            Field::ServiceName => "ServiceName",
            Field::ServiceAddr => "ServiceAddr",
            Field::ServiceUrl => "ServiceURL",
            Field::OriginStatus => "OriginStatus",
            Field::OriginContentSize => "OriginContentSize",
            Field::DownstreamStatus => "DownstreamStatus",
            Field::DownstreamContentSize => "DownstreamContentSize",
            Field::RetryAttempts => "RetryAttempts",
            Field::RequestCount => "RequestCount",
            Field::TraceId => "trace_id",
            Field::SpanId => "span_id",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Filters, field selection and header modes, built once from the configuration
/// and consulted per request.
#[derive(Debug, Clone)]
pub struct AccessLogPolicy {
    format: AccessLogFormat,
    add_internals: bool,
    status_ranges: Vec<(u16, u16)>,
    keep_retried: bool,
    min_duration: Option<Duration>,
    /// One bit per [`Field`]; set when the field is logged.
    fields: u32,
    header_default: HeaderMode,
    /// Per-name overrides, names lowercased by `HeaderName`.
    header_names: Vec<(HeaderName, HeaderMode)>,
}

impl AccessLogPolicy {
    pub fn new(config: &AccessLog) -> Self {
        // Invalid ranges and header names are rejected by config validation; any
        // that get here are skipped rather than failing the whole log.
        let status_ranges = config
            .filters
            .status_codes
            .iter()
            .filter_map(|range| parse_status_range(range))
            .collect();
        let headers = &config.fields.headers;
        let mut header_names: Vec<(HeaderName, HeaderMode)> = Vec::new();
        for (name, mode) in &headers.names {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                tracing::warn!(header = %name, "access log: ignoring invalid header name");
                continue;
            };
            // `X-Id` and `x-id` are the same header: the later entry wins.
            match header_names.iter_mut().find(|(known, _)| *known == name) {
                Some(entry) => entry.1 = *mode,
                None => header_names.push((name, *mode)),
            }
        }
        AccessLogPolicy {
            format: config.format,
            add_internals: config.add_internals,
            status_ranges,
            keep_retried: config.filters.retry_attempts,
            min_duration: config.filters.min_duration,
            fields: field_mask(&config.fields.general),
            header_default: headers.default_mode,
            header_names,
        }
    }

    /// The text encoding of the lines.
    pub fn format(&self) -> AccessLogFormat {
        self.format
    }

    /// Whether the admin listener's requests are logged too.
    pub fn add_internals(&self) -> bool {
        self.add_internals
    }

    /// Whether a finished request is logged: always when no filter is set,
    /// otherwise when it matches any of them.
    pub fn keeps(&self, status: u16, duration: Duration, retry_attempts: u32) -> bool {
        if self.status_ranges.is_empty() && !self.keep_retried && self.min_duration.is_none() {
            return true;
        }
        self.status_ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
            || (self.keep_retried && retry_attempts > 0)
            || self.min_duration.is_some_and(|min| duration >= min)
    }

    /// The headers to log, in the order met: kept ones with their value, redacted
    /// ones as [`CapturedValue::Redacted`]; dropped ones are left out. A header with
    /// several values yields one entry per value.
    ///
    /// When the default mode is drop only the named headers are looked up, so the
    /// common configuration (no headers) costs nothing and allocates nothing.
    pub fn capture_headers(&self, headers: &HeaderMap) -> Vec<(HeaderName, CapturedValue)> {
        let mut captured = Vec::new();
        if self.header_default == HeaderMode::Drop {
            for (name, mode) in &self.header_names {
                for value in headers.get_all(name) {
                    if let Some(value) = capture(*mode, value) {
                        captured.push((name.clone(), value));
                    }
                }
            }
        } else {
            for (name, value) in headers {
                let mode = self
                    .header_names
                    .iter()
                    .find(|(known, _)| known == name)
                    .map_or(self.header_default, |(_, mode)| *mode);
                if let Some(value) = capture(mode, value) {
                    captured.push((name.clone(), value));
                }
            }
        }
        captured
    }

    pub(crate) fn keeps_field(&self, field: Field) -> bool {
        self.fields & field.bit() != 0
    }
}

fn capture(mode: HeaderMode, value: &HeaderValue) -> Option<CapturedValue> {
    match mode {
        HeaderMode::Keep => Some(CapturedValue::Value(value.clone())),
        HeaderMode::Redact => Some(CapturedValue::Redacted),
        HeaderMode::Drop => None,
    }
}

/// The selection as a bit mask. Names match case-insensitively (Helm values are
/// often lowercased); unknown names are warned about and ignored.
fn field_mask(selection: &FieldSelection) -> u32 {
    let mut mask = match selection.default_mode {
        FieldMode::Keep => Field::ALL.iter().fold(0, |mask, field| mask | field.bit()),
        FieldMode::Drop => 0,
    };
    for (name, mode) in &selection.names {
        let Some(field) = Field::ALL
            .iter()
            .find(|field| field.name().eq_ignore_ascii_case(name))
        else {
            tracing::warn!(field = %name, "access log: ignoring unknown field name");
            continue;
        };
        match mode {
            FieldMode::Keep => mask |= field.bit(),
            FieldMode::Drop => mask &= !field.bit(),
        }
    }
    mask
}
