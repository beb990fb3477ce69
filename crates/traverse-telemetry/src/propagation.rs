//! W3C Trace Context (`traceparent`, `tracestate`) and Baggage handling at the
//! gateway edge.
//!
//! Everything here is pure: headers in, values out. Parsing follows the W3C
//! Trace Context Level 1/2 grammar strictly and never panics on hostile input;
//! what is invalid is dropped (with the reason kept for debug logs), never
//! echoed back to the client.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

#[cfg(test)]
mod tests;

/// The `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The `baggage` header name.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// A version `00` traceparent is exactly this long; every version is at least this long.
const TRACEPARENT_LEN: usize = 55;
// Byte offsets of the fields inside a traceparent.
const TRACE_ID_AT: usize = 3;
const PARENT_ID_AT: usize = 36;
const FLAGS_AT: usize = 53;

/// The spec's maximum number of tracestate list-members.
const TRACESTATE_MAX_MEMBERS: usize = 32;
/// We propagate at most the 512 characters the spec asks every vendor to carry.
const TRACESTATE_MAX_LEN: usize = 512;
/// Entries longer than this go first when tracestate must be truncated.
const TRACESTATE_LARGE_ENTRY: usize = 128;

/// The baggage spec's propagation limits, used here as our maximum.
const BAGGAGE_MAX_MEMBERS: usize = 64;
const BAGGAGE_MAX_BYTES: usize = 8192;

/// Why an inbound trace context was rejected.
///
/// Meant for debug logs and metrics labels; never put it in a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidContext {
    /// The header is present but empty.
    #[error("traceparent is empty")]
    Empty,
    /// The header bytes are not UTF-8.
    #[error("traceparent is not valid UTF-8")]
    NotUtf8,
    /// Several `traceparent` headers, or one holding a comma-separated list.
    #[error("several traceparent values (repeated header or comma-separated list)")]
    Multiple,
    /// Shorter than the 55 characters every version needs.
    #[error("traceparent is {0} characters long, at least 55 are needed")]
    TooShort(usize),
    /// Version `00` is exactly 55 characters; this one is longer.
    #[error("version 00 traceparent must be exactly 55 characters, got {0}")]
    Version00Length(usize),
    /// Version `ff` is forbidden by the spec.
    #[error("traceparent version ff is forbidden")]
    ForbiddenVersion,
    /// A field is not lowercase hex (uppercase and other characters are rejected).
    #[error("traceparent {0} is not lowercase hex")]
    NotLowercaseHex(&'static str),
    /// A field is not followed by the `-` delimiter.
    #[error("traceparent {0} is not followed by '-'")]
    MissingDelimiter(&'static str),
    /// The trace-id is all zeros.
    #[error("traceparent trace-id is all zeros")]
    ZeroTraceId,
    /// The parent-id is all zeros.
    #[error("traceparent parent-id is all zeros")]
    ZeroParentId,
}

/// Parses one `traceparent` value (W3C Trace Context level 1/2).
///
/// The value must be exact: surrounding whitespace is not part of the grammar,
/// so it is rejected here ([`extract`] trims HTTP's optional whitespace first).
/// Versions above `00` are parsed forward-compatibly: their first four fields
/// are read and anything after a `-` that follows the flags is ignored. Only the
/// sampled flag is kept. The returned context is marked remote.
pub fn parse_traceparent(value: &str) -> Result<SpanContext, InvalidContext> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(InvalidContext::Empty);
    }
    let version = hex_field(bytes, 0, 2, "version")?;
    delimiter(bytes, 2, "version")?;
    if version == 0xff {
        return Err(InvalidContext::ForbiddenVersion);
    }
    if bytes.len() < TRACEPARENT_LEN {
        return Err(InvalidContext::TooShort(bytes.len()));
    }
    if version == 0 && bytes.len() != TRACEPARENT_LEN {
        return Err(InvalidContext::Version00Length(bytes.len()));
    }
    delimiter(bytes, PARENT_ID_AT - 1, "trace-id")?;
    delimiter(bytes, FLAGS_AT - 1, "parent-id")?;
    // Higher versions may append fields, but only after another '-'.
    if bytes.len() > TRACEPARENT_LEN {
        delimiter(bytes, TRACEPARENT_LEN, "trace-flags")?;
    }

    let trace_id = hex_field(bytes, TRACE_ID_AT, 32, "trace-id")?;
    let parent_id = hex_field(bytes, PARENT_ID_AT, 16, "parent-id")?;
    let flags = hex_field(bytes, FLAGS_AT, 2, "trace-flags")?;
    if trace_id == 0 {
        return Err(InvalidContext::ZeroTraceId);
    }
    if parent_id == 0 {
        return Err(InvalidContext::ZeroParentId);
    }

    // The casts cannot truncate: hex_field read exactly 16 and 2 hex digits.
    let flags = TraceFlags::new(flags as u8) & TraceFlags::SAMPLED;
    Ok(SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(parent_id as u64),
        flags,
        true,
        TraceState::NONE,
    ))
}

/// Decodes `len` lowercase hex digits at `at`; too few bytes means the value is too short.
fn hex_field(
    bytes: &[u8],
    at: usize,
    len: usize,
    field: &'static str,
) -> Result<u128, InvalidContext> {
    let digits = bytes
        .get(at..at + len)
        .ok_or(InvalidContext::TooShort(bytes.len()))?;
    digits.iter().try_fold(0u128, |acc, &b| {
        let nibble = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err(InvalidContext::NotLowercaseHex(field)),
        };
        Ok(acc << 4 | u128::from(nibble))
    })
}

fn delimiter(bytes: &[u8], at: usize, after: &'static str) -> Result<(), InvalidContext> {
    match bytes.get(at) {
        Some(b'-') => Ok(()),
        Some(_) => Err(InvalidContext::MissingDelimiter(after)),
        None => Err(InvalidContext::TooShort(bytes.len())),
    }
}

/// Formats `ctx` as a version `00` traceparent.
///
/// Only the sampled flag is written: the other bits are undefined in version
/// `00` and the spec says to send them as zero. The context is not validated;
/// [`outbound`] is the caller that refuses invalid ones.
pub fn format_traceparent(ctx: &SpanContext) -> String {
    let flags = ctx.trace_flags() & TraceFlags::SAMPLED;
    format!(
        "00-{}-{}-{:02x}",
        ctx.trace_id(),
        ctx.span_id(),
        flags.to_u8()
    )
}

/// Combines `tracestate` header values (comma-joined, in order) into a [`TraceState`].
///
/// Lenient per member, strict per grammar: empty and malformed list-members are
/// dropped one by one, a repeated key keeps its first occurrence, at most 32
/// members are kept, and if the result is over 512 characters the entries
/// longer than 128 characters go first (from the end), then entries from the end.
pub fn parse_tracestate(values: &[&str]) -> TraceState {
    let mut members: Vec<(&str, &str)> = Vec::new();
    'values: for value in values {
        for raw in value.split(',') {
            let Some((key, val)) = trim_ows(raw).split_once('=') else {
                continue; // empty (allowed by the spec) or malformed
            };
            if !tracestate_key_ok(key) || !tracestate_value_ok(val) {
                continue;
            }
            if members.iter().any(|(k, _)| *k == key) {
                continue;
            }
            members.push((key, val));
            // Later members would be dropped anyway: stop scanning hostile input early.
            if members.len() == TRACESTATE_MAX_MEMBERS {
                break 'values;
            }
        }
    }
    truncate_tracestate(&mut members);
    build_trace_state(&members)
}

/// Applies the spec's truncation advice until the serialized list fits.
fn truncate_tracestate(members: &mut Vec<(&str, &str)>) {
    let entry_len = |(k, v): &(&str, &str)| k.len() + 1 + v.len();
    let mut len = members.iter().map(entry_len).sum::<usize>() + members.len().saturating_sub(1);
    while len > TRACESTATE_MAX_LEN {
        let large = members
            .iter()
            .rposition(|m| entry_len(m) > TRACESTATE_LARGE_ENTRY);
        let Some(at) = large.or(members.len().checked_sub(1)) else {
            break;
        };
        let removed = members.remove(at);
        len -= entry_len(&removed) + usize::from(!members.is_empty());
    }
}

/// Builds the OpenTelemetry value. Its own key check differs slightly from the
/// W3C grammar (it refuses a 14-character system-id), so a member it refuses is
/// dropped rather than losing the whole list.
fn build_trace_state(members: &[(&str, &str)]) -> TraceState {
    TraceState::from_key_value(members.iter().copied()).unwrap_or_else(|_| {
        let accepted = members
            .iter()
            .copied()
            .filter(|member| TraceState::from_key_value([*member]).is_ok());
        TraceState::from_key_value(accepted).unwrap_or_default()
    })
}

/// `key = simple-key / multi-tenant-key` (Trace Context level 1/2).
fn tracestate_key_ok(key: &str) -> bool {
    // Chars allowed after the first one of every key part.
    fn tail_ok(rest: &[u8]) -> bool {
        rest.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
        })
    }
    fn part_ok(part: &str, max_len: usize, digit_first: bool) -> bool {
        match part.as_bytes().split_first() {
            Some((&first, rest)) => {
                part.len() <= max_len
                    && (first.is_ascii_lowercase() || (digit_first && first.is_ascii_digit()))
                    && tail_ok(rest)
            }
            None => false,
        }
    }
    match key.split_once('@') {
        // simple-key = lcalpha 0*255(...)
        None => part_ok(key, 256, false),
        // tenant-id = (lcalpha / DIGIT) 0*240(...); system-id = lcalpha 0*13(...)
        Some((tenant, system)) => part_ok(tenant, 241, true) && part_ok(system, 14, false),
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII except `,` and `=`, not ending in a space.
fn tracestate_value_ok(value: &str) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x7e) && b != b',' && b != b'=';
    match value.as_bytes().split_last() {
        Some((&last, rest)) => {
            value.len() <= 256 && nblk(last) && rest.iter().all(|&b| b == b' ' || nblk(b))
        }
        None => false,
    }
}

/// HTTP optional whitespace: spaces and horizontal tabs.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// What [`extract`] found in a request's headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// The inbound context, only when it is valid; marked remote, with its tracestate.
    pub context: Option<SpanContext>,
    /// Why a present `traceparent` was rejected; `None` when valid or absent.
    pub invalid: Option<InvalidContext>,
    /// Several `traceparent` values were sent (a client or proxy bug worth counting).
    pub duplicates: bool,
}

/// Reads the inbound trace context from request headers.
///
/// Several `traceparent` headers, or one containing a comma, are ambiguous and
/// rejected. Leading and trailing spaces/tabs around the header value are HTTP
/// framing, not part of the value, and are trimmed. `tracestate` is only read
/// when `traceparent` is valid, as the spec requires; values that are not
/// UTF-8 are skipped.
pub fn extract(headers: &HeaderMap) -> Extracted {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let Some(first) = values.next() else {
        return Extracted::default();
    };
    let rejected = |reason, duplicates| Extracted {
        context: None,
        invalid: Some(reason),
        duplicates,
    };
    if values.next().is_some() {
        return rejected(InvalidContext::Multiple, true);
    }
    let Ok(text) = std::str::from_utf8(first.as_bytes()) else {
        return rejected(InvalidContext::NotUtf8, false);
    };
    let text = trim_ows(text);
    if text.contains(',') {
        return rejected(InvalidContext::Multiple, true);
    }
    match parse_traceparent(text) {
        Ok(parent) => {
            let states: Vec<&str> = headers
                .get_all(TRACESTATE)
                .iter()
                .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
                .collect();
            let context = SpanContext::new(
                parent.trace_id(),
                parent.span_id(),
                parent.trace_flags(),
                true,
                parse_tracestate(&states),
            );
            Extracted {
                context: Some(context),
                invalid: None,
                duplicates: false,
            }
        }
        Err(reason) => rejected(reason, false),
    }
}

pub use traverse_config::TrustPolicy;

/// What the gateway's server span should hang off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The remote parent; `None` starts a new root trace.
    pub parent: Option<SpanContext>,
    /// A context to attach as a span link (only for [`TrustPolicy::NewAndLink`]).
    pub link: Option<SpanContext>,
    /// No valid inbound context was received, whatever the policy (feeds the
    /// propagation-health counter).
    pub inbound_missing_or_invalid: bool,
}

/// Applies an entrypoint's [`TrustPolicy`] to what [`extract`] found.
pub fn decide(policy: TrustPolicy, extracted: &Extracted) -> Decision {
    let inbound = extracted.context.clone();
    let inbound_missing_or_invalid = inbound.is_none();
    let (parent, link) = match policy {
        TrustPolicy::Continue => (inbound, None),
        TrustPolicy::NewAndLink => (None, inbound),
        TrustPolicy::Ignore => (None, None),
    };
    Decision {
        parent,
        link,
        inbound_missing_or_invalid,
    }
}

/// The trace context headers to send upstream for `ctx`.
///
/// Callers remove every inbound `traceparent` and `tracestate` first and then
/// write these, so exactly one `traceparent` goes upstream whatever the client
/// sent. The tracestate is re-checked with [`parse_tracestate`]'s rules (an SDK
/// may have added entries) and only sent when non-empty. An invalid `ctx`
/// (all-zero ids) yields nothing: upstream would reject it anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    pub traceparent: Option<HeaderValue>,
    pub tracestate: Option<HeaderValue>,
}

/// Computes the [`Outbound`] headers for `ctx`.
pub fn outbound(ctx: &SpanContext) -> Outbound {
    if !ctx.is_valid() {
        return Outbound::default();
    }
    let traceparent = HeaderValue::try_from(format_traceparent(ctx)).ok();
    let raw = ctx.trace_state().header();
    let tracestate = if raw.is_empty() {
        None
    } else {
        let state = parse_tracestate(&[&raw]).header();
        (!state.is_empty())
            .then(|| HeaderValue::try_from(state).ok())
            .flatten()
    };
    Outbound {
        traceparent,
        tracestate,
    }
}

/// Whether the `baggage` headers are well-formed and within the spec's limits;
/// when not, the caller removes every `baggage` header (valid ones pass untouched).
///
/// The values are checked as one combined list (comma-joined, as HTTP combines
/// repeated headers): at most 64 list-members and 8192 bytes.
pub fn baggage_is_valid(headers: &HeaderMap) -> bool {
    baggage_ok(headers.get_all(BAGGAGE).iter())
}

fn baggage_ok<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> bool {
    let mut bytes = 0usize;
    let mut members = 0usize;
    for (i, value) in values.enumerate() {
        // Size of the combined header: the values plus the joining commas.
        bytes += value.len() + usize::from(i > 0);
        if bytes > BAGGAGE_MAX_BYTES {
            return false;
        }
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            return false;
        };
        for member in text.split(',') {
            let member = trim_ows(member);
            // RFC 9110 lists: empty elements are ignored, not an error.
            if member.is_empty() {
                continue;
            }
            members += 1;
            if members > BAGGAGE_MAX_MEMBERS || !baggage_member_ok(member) {
                return false;
            }
        }
    }
    true
}

/// `key OWS "=" OWS value *( OWS ";" OWS property )`.
fn baggage_member_ok(member: &str) -> bool {
    let mut parts = member.split(';');
    let entry_ok = parts
        .next()
        .and_then(|entry| entry.split_once('='))
        .is_some_and(|(key, value)| baggage_pair_ok(key, value));
    // property = key OWS "=" OWS value / key OWS
    entry_ok
        && parts.all(|property| match property.split_once('=') {
            Some((key, value)) => baggage_pair_ok(key, value),
            None => is_token(trim_ows(property)),
        })
}

fn baggage_pair_ok(key: &str, value: &str) -> bool {
    // The value may itself contain '=': only the first one separates.
    is_token(trim_ows(key))
        && trim_ows(value)
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e))
}

/// RFC 9110 `token`: one or more tchar.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}
