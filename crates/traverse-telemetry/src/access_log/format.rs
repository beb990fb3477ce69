//! The encodings of a record: Traefik's JSON and common log format, and OTLP.
//!
//! These run on the access log thread, never on the request path.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderName, Version};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::policy::{AccessLogPolicy, Field};
use super::{AccessRecord, CapturedValue};
use crate::logs::LogRecord;
use crate::record::IpText;

const REQUEST_PREFIX: &str = "request_";
const RESPONSE_PREFIX: &str = "downstream_";

/// A field's value, typed as it is logged (Traefik logs sizes, statuses and
/// durations as numbers, everything else as strings, `ClientPort` included).
enum FieldValue<'a> {
    Int(u64),
    Str(Cow<'a, str>),
}

fn field_value(record: &AccessRecord, field: Field) -> Option<FieldValue<'_>> {
    use FieldValue::Int;
    fn borrowed(text: &str) -> FieldValue<'_> {
        FieldValue::Str(Cow::Borrowed(text))
    }
    fn owned(text: String) -> FieldValue<'static> {
        FieldValue::Str(Cow::Owned(text))
    }
    Some(match field {
        Field::StartUtc => owned(rfc3339(record.start)),
        Field::Duration => Int(nanos(record.duration)),
        Field::OriginDuration => Int(nanos(record.origin_duration?)),
        Field::ClientAddr => owned(record.client_addr?.to_string()),
        Field::ClientHost => owned(IpText::new(record.client_addr?.ip()).as_str().to_owned()),
        Field::ClientPort => owned(
            itoa::Buffer::new()
                .format(record.client_addr?.port())
                .to_owned(),
        ),
        Field::ClientUsername => borrowed(record.client_username.as_deref()?),
        Field::RequestMethod => borrowed(record.method.as_str()),
        Field::RequestPath => borrowed(&record.path),
        Field::RequestProtocol => borrowed(protocol(record.protocol)),
        Field::RequestHost => borrowed(&record.host),
        Field::RequestScheme => borrowed(record.scheme),
        Field::TlsVersion => borrowed(record.tls_version?),
        Field::TlsServerName => borrowed(record.tls_server_name.as_deref()?),
        Field::RequestContentSize => Int(record.request_content_size),
        Field::EntryPointName => borrowed(record.entry_point.as_deref()?),
        Field::RouterName => borrowed(record.router.as_deref()?),
        Field::HttpRoute => borrowed(record.route.as_deref()?),
        Field::Middleware => borrowed(record.middleware.as_deref()?),
        Field::ServiceName => borrowed(record.service.as_deref()?),
        Field::ServiceAddr => borrowed(record.service_addr.as_deref()?),
        Field::ServiceUrl => borrowed(record.service_url.as_deref()?),
        Field::OriginStatus => Int(record.origin_status?.into()),
        Field::OriginContentSize => Int(record.origin_content_size?),
        Field::DownstreamStatus => Int(record.downstream_status.into()),
        Field::DownstreamContentSize => Int(record.downstream_content_size),
        Field::RetryAttempts => Int(record.retry_attempts.into()),
        Field::RequestCount => Int(record.request_count?),
        Field::TraceId => owned(trace_id(record)?.to_string()),
        Field::SpanId => owned(span_id(record)?.to_string()),
    })
}

impl AccessLogPolicy {
    /// One JSON object with the kept fields and captured headers, without a newline.
    pub fn json(&self, record: &AccessRecord) -> String {
        // Only strings and integers are serialized: this cannot fail.
        serde_json::to_string(&JsonView {
            policy: self,
            record,
        })
        .unwrap_or_default()
    }

    /// Appends the JSON object to `out` (the writer reuses one buffer).
    pub(crate) fn write_json(&self, record: &AccessRecord, out: &mut Vec<u8>) {
        let view = JsonView {
            policy: self,
            record,
        };
        // Writing strings and integers into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &view);
    }

    /// One line in Traefik's common log format, without a newline:
    ///
    /// `<ClientHost> - <ClientUsername> [<StartUTC>] "<RequestMethod> <RequestPath>
    /// <RequestProtocol>" <DownstreamStatus> <DownstreamContentSize> "<Referer>"
    /// "<User-Agent>" <RequestCount> "<RouterName>" "<ServiceURL>" <Duration>ms`
    ///
    /// The time is UTC; Referer and User-Agent are the captured request headers;
    /// absent or dropped fields are `-`.
    pub fn common(&self, record: &AccessRecord) -> String {
        let mut line = String::with_capacity(256);
        self.write_common(record, &mut line);
        line
    }

    pub(crate) fn write_common(&self, record: &AccessRecord, out: &mut String) {
        let value = |field| {
            self.keeps_field(field)
                .then(|| field_value(record, field))
                .flatten()
        };
        let request_header = |name: &HeaderName| {
            record
                .request_headers
                .iter()
                .find(|(captured, _)| captured == name)
                .map(|(_, value)| FieldValue::Str(value.as_text()))
        };

        push_plain(out, value(Field::ClientHost));
        out.push_str(" - ");
        push_plain(out, value(Field::ClientUsername));
        out.push_str(" [");
        if self.keeps_field(Field::StartUtc) {
            let t = Civil::from(record.start);
            let _ = write!(
                out,
                "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
                t.day,
                MONTHS[(t.month - 1) as usize],
                t.year,
                t.hour,
                t.minute,
                t.second
            );
        } else {
            out.push('-');
        }
        out.push_str("] \"");
        push_plain(out, value(Field::RequestMethod));
        out.push(' ');
        push_plain(out, value(Field::RequestPath));
        out.push(' ');
        push_plain(out, value(Field::RequestProtocol));
        out.push_str("\" ");
        push_plain(out, value(Field::DownstreamStatus));
        out.push(' ');
        push_plain(out, value(Field::DownstreamContentSize));
        out.push(' ');
        push_quoted(out, request_header(&header::REFERER));
        out.push(' ');
        push_quoted(out, request_header(&header::USER_AGENT));
        out.push(' ');
        push_plain(out, value(Field::RequestCount));
        out.push(' ');
        push_quoted(out, value(Field::RouterName));
        out.push(' ');
        push_quoted(out, value(Field::ServiceUrl));
        out.push(' ');
        if self.keeps_field(Field::Duration) {
            let _ = write!(out, "{}ms", record.duration.as_millis());
        } else {
            out.push('-');
        }
    }

    /// The record as an OTLP log record: the JSON line as body, the same kept fields
    /// and headers as typed attributes under the same (Traefik) names, severity by
    /// downstream status (INFO below 400, WARN for 4xx, ERROR from 500).
    ///
    /// `StartUTC`, `trace_id` and `span_id` go to the record's own `time_unix_nano`,
    /// `trace_id` and `span_id` fields instead of attributes; dropping them in the
    /// field selection leaves those fields empty.
    pub fn otlp(&self, record: &AccessRecord) -> LogRecord {
        self.otlp_with_body(record, self.json(record))
    }

    /// [`Self::otlp`] with the JSON body already encoded.
    pub(crate) fn otlp_with_body(&self, record: &AccessRecord, body: String) -> LogRecord {
        let mut attributes = Vec::with_capacity(
            Field::ALL.len() + record.request_headers.len() + record.response_headers.len(),
        );
        for field in Field::ALL {
            if matches!(field, Field::StartUtc | Field::TraceId | Field::SpanId)
                || !self.keeps_field(field)
            {
                continue;
            }
            let value = match field_value(record, field) {
                Some(FieldValue::Int(n)) => any_value::Value::IntValue(saturating_i64(n)),
                Some(FieldValue::Str(text)) => any_value::Value::StringValue(text.into_owned()),
                None => continue,
            };
            attributes.push(attribute(field.name().to_owned(), value));
        }
        for (prefix, headers) in header_lists(record) {
            for (name, text) in header_groups(headers) {
                let value = any_value::Value::StringValue(text.into_owned());
                attributes.push(attribute(header_key(prefix, name), value));
            }
        }

        let (severity, severity_text) = match record.downstream_status {
            500.. => (SeverityNumber::Error, "ERROR"),
            400..=499 => (SeverityNumber::Warn, "WARN"),
            _ => (SeverityNumber::Info, "INFO"),
        };
        let trace_id = trace_id(record).filter(|_| self.keeps_field(Field::TraceId));
        let span_id = span_id(record).filter(|_| self.keeps_field(Field::SpanId));
        LogRecord {
            time_unix_nano: if self.keeps_field(Field::StartUtc) {
                unix_nanos(record.start)
            } else {
                0
            },
            observed_time_unix_nano: unix_nanos(SystemTime::now()),
            severity_number: severity as i32,
            severity_text: severity_text.to_owned(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes,
            // The low byte is the W3C trace flags: 1 = sampled.
            flags: u32::from(record.sampled && trace_id.is_some()),
            trace_id: trace_id.map_or_else(Vec::new, |id| id.to_bytes().to_vec()),
            span_id: span_id.map_or_else(Vec::new, |id| id.to_bytes().to_vec()),
            ..LogRecord::default()
        }
    }
}

/// Serializes straight from the record, without an intermediate `Value` tree.
struct JsonView<'a> {
    policy: &'a AccessLogPolicy,
    record: &'a AccessRecord,
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for field in Field::ALL {
            if !self.policy.keeps_field(field) {
                continue;
            }
            match field_value(self.record, field) {
                Some(FieldValue::Int(n)) => map.serialize_entry(field.name(), &n)?,
                Some(FieldValue::Str(text)) => map.serialize_entry(field.name(), &*text)?,
                None => {}
            }
        }
        for (prefix, headers) in header_lists(self.record) {
            for (name, text) in header_groups(headers) {
                map.serialize_entry(&header_key(prefix, name), &*text)?;
            }
        }
        map.end()
    }
}

fn header_lists(record: &AccessRecord) -> [(&'static str, &[(HeaderName, CapturedValue)]); 2] {
    [
        (REQUEST_PREFIX, &record.request_headers),
        (RESPONSE_PREFIX, &record.response_headers),
    ]
}

/// One entry per header name; the values of a repeated header are joined with
/// `, ` (its meaning in HTTP), so a key never appears twice.
fn header_groups(
    headers: &[(HeaderName, CapturedValue)],
) -> impl Iterator<Item = (&HeaderName, Cow<'_, str>)> {
    headers
        .iter()
        .enumerate()
        .filter_map(move |(index, (name, value))| {
            if headers[..index].iter().any(|(seen, _)| seen == name) {
                return None;
            }
            let mut text = value.as_text();
            for (_, more) in headers[index + 1..]
                .iter()
                .filter(|(other, _)| other == name)
            {
                let joined = text.to_mut();
                joined.push_str(", ");
                joined.push_str(&more.as_text());
            }
            Some((name, text))
        })
}

/// `request_User-Agent`: Traefik writes header names in Go's canonical form.
fn header_key(prefix: &str, name: &HeaderName) -> String {
    let mut key = String::with_capacity(prefix.len() + name.as_str().len());
    key.push_str(prefix);
    let mut upper = true;
    for c in name.as_str().chars() {
        key.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    key
}

fn attribute(key: String, value: any_value::Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// An unquoted common-format field: `-` when absent or empty.
fn push_plain(out: &mut String, value: Option<FieldValue<'_>>) {
    match value {
        Some(FieldValue::Int(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(FieldValue::Str(text)) if !text.is_empty() => push_escaped(out, &text),
        _ => out.push('-'),
    }
}

/// A quoted common-format field: `"-"` when absent or empty.
fn push_quoted(out: &mut String, value: Option<FieldValue<'_>>) {
    out.push('"');
    push_plain(out, value);
    out.push('"');
}

/// Escapes quotes, backslashes and control characters so a client cannot break a
/// line's fields apart or forge lines.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn trace_id(record: &AccessRecord) -> Option<TraceId> {
    record.trace_id.filter(|id| *id != TraceId::INVALID)
}

fn span_id(record: &AccessRecord) -> Option<SpanId> {
    record.span_id.filter(|id| *id != SpanId::INVALID)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn unix_nanos(time: SystemTime) -> u64 {
    nanos(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2023-11-14T22:13:20.123456789Z`: always nine fractional digits, so lines sort
/// as text (Traefik trims trailing zeros; both are RFC 3339).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let t = Civil::from(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.nanos
    )
}

/// A UTC calendar date and time. Times before 1970 are clamped to the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: u64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) nanos: u32,
}

impl From<SystemTime> for Civil {
    fn from(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, of_day) = (secs / 86_400, secs % 86_400);
        // Howard Hinnant's civil_from_days, restricted to days >= 0: years are
        // counted from March so the leap day ends a year, in 400-year eras.
        let z = days + 719_468;
        let era = z / 146_097;
        let day_of_era = z % 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_era + era * 400 + u64::from(month <= 2);
        Civil {
            year,
            month: month as u32,
            day: day as u32,
            hour: (of_day / 3600) as u32,
            minute: (of_day / 60 % 60) as u32,
            second: (of_day % 60) as u32,
            nanos: since.subsec_nanos(),
        }
    }
}
