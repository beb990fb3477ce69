//! W3C Trace Context (`traceparent`, `tracestate`) and Baggage handling at the
//! gateway edge.
//!
//! Everything here is pure: headers in, values out. Parsing follows the W3C
//! Trace Context Level 1/2 grammar strictly and never panics on hostile input;
//! what is invalid is dropped (with the reason kept for debug logs), never
//! echoed back to the client.

use std::borrow::Cow;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

#[cfg(test)]
mod tests;

/// The `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_TEXT);
/// The `traceparent` header name as text: what Pingora's `insert_header` takes
/// without copying it.
pub const TRACEPARENT_TEXT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static(TRACESTATE_TEXT);
/// The `tracestate` header name as text.
pub const TRACESTATE_TEXT: &str = "tracestate";
/// The `baggage` header name.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// The `random` trace-flag of Trace Context Level 2: the trace id's rightmost 7 bytes
/// are random.
pub const RANDOM: TraceFlags = TraceFlags::new(0x02);
/// The trace-flags this gateway understands, keeps and forwards.
const KNOWN_FLAGS: TraceFlags = TraceFlags::new(0x03);

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
/// are read and anything after a `-` that follows the flags is ignored. Any flags
/// byte is accepted (Level 2); the `sampled` and `random` flags are kept, the other
/// bits dropped. The returned context is marked remote.
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
    let flags = TraceFlags::new(flags as u8) & KNOWN_FLAGS;
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
/// Only the `sampled` and `random` flags are written: the other bits are undefined
/// and the spec says to send them as zero. The context is not validated;
/// [`outbound`] is the caller that refuses invalid ones.
pub fn format_traceparent(ctx: &SpanContext) -> String {
    String::from_utf8(traceparent_bytes(ctx).to_vec()).expect("hex digits and dashes")
}

/// The bytes of [`format_traceparent`], written on the stack: every traced or
/// unsampled request injects one, and `format!` cost ten times as much.
fn traceparent_bytes(ctx: &SpanContext) -> [u8; 55] {
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    let flags = ctx.trace_flags() & KNOWN_FLAGS;
    // The slices are exactly twice the inputs' lengths, so encoding cannot fail.
    let encoded = hex::encode_to_slice(ctx.trace_id().to_bytes(), &mut out[3..35])
        .and(hex::encode_to_slice(
            ctx.span_id().to_bytes(),
            &mut out[36..52],
        ))
        .and(hex::encode_to_slice([flags.to_u8()], &mut out[53..55]));
    debug_assert!(encoded.is_ok());
    out
}

/// Why an inbound `tracestate` was discarded as a whole.
///
/// Meant for debug logs; never put it in a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTraceState {
    /// A header line is not UTF-8 (and so not the printable ASCII the grammar allows).
    #[error("tracestate is not valid UTF-8")]
    NotUtf8,
    /// The list-member at this 1-based position breaks the key or value grammar.
    #[error("tracestate list-member {0} is malformed")]
    Member(usize),
    /// More than the 32 list-members the specification allows.
    #[error("tracestate has more than 32 list-members")]
    TooManyMembers,
}

/// Validates `tracestate` header lines, combined in order as one list, and returns
/// the value to forward (`None` when the list holds no member).
///
/// The specification's rule is about the list as a whole: one malformed list-member
/// (key or value grammar), or more than 32 of them, and the whole tracestate is
/// discarded. Empty list-members and optional whitespace around commas are allowed.
/// A valid list is forwarded as received (header lines joined with commas); it is
/// only rewritten when it has to be: a repeated key keeps its first occurrence, and a
/// list over 512 characters loses the members longer than 128 characters first (from
/// the end), then members from the end, until it fits.
pub fn parse_tracestate<'a>(values: &[&'a str]) -> Result<Option<Cow<'a, str>>, InvalidTraceState> {
    let mut count = 0;
    let mut duplicates = false;
    for (i, member) in tracestate_members(values).enumerate() {
        count += 1;
        if count > TRACESTATE_MAX_MEMBERS {
            return Err(InvalidTraceState::TooManyMembers);
        }
        let key = match member.split_once('=') {
            Some((key, value)) if tracestate_key_ok(key) && tracestate_value_ok(value) => key,
            _ => return Err(InvalidTraceState::Member(count)),
        };
        // At most 32 members: comparing with the earlier ones beats allocating a set.
        duplicates = duplicates
            || tracestate_members(values)
                .take(i)
                .any(|earlier| earlier.split_once('=').map(|(k, _)| k) == Some(key));
    }
    if count == 0 {
        return Ok(None);
    }
    let mut lines = values.iter().filter(|v| !trim_ows(v).is_empty());
    let raw_len = lines.clone().map(|v| v.len() + 1).sum::<usize>() - 1;
    if !duplicates && raw_len <= TRACESTATE_MAX_LEN {
        return Ok(match (lines.next(), lines.next()) {
            (Some(only), None) => Some(Cow::Borrowed(*only)),
            _ => Some(Cow::Owned(
                values
                    .iter()
                    .filter(|v| !trim_ows(v).is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(","),
            )),
        });
    }
    let mut members: Vec<&str> = Vec::with_capacity(count);
    for member in tracestate_members(values) {
        let key = member.split_once('=').map(|(k, _)| k);
        if !members
            .iter()
            .any(|m| m.split_once('=').map(|(k, _)| k) == key)
        {
            members.push(member);
        }
    }
    truncate_tracestate(&mut members);
    Ok(Some(Cow::Owned(members.join(","))))
}

/// The non-empty list-members of the combined lines, without their optional whitespace.
fn tracestate_members<'a, 'b>(values: &'b [&'a str]) -> impl Iterator<Item = &'a str> + 'b
where
    'a: 'b,
{
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

/// Applies the spec's truncation rule until the serialized list fits.
fn truncate_tracestate(members: &mut Vec<&str>) {
    let mut len = members.iter().map(|m| m.len()).sum::<usize>() + members.len().saturating_sub(1);
    while len > TRACESTATE_MAX_LEN {
        let large = members
            .iter()
            .rposition(|m| m.len() > TRACESTATE_LARGE_ENTRY);
        let Some(at) = large.or(members.len().checked_sub(1)) else {
            break;
        };
        let removed = members.remove(at);
        len -= removed.len() + usize::from(!members.is_empty());
    }
}

/// The OpenTelemetry form of a validated tracestate, for exported spans only.
///
/// `TraceState` refuses some keys Level 2 allows (a second `@`, more than 14
/// characters after `@`), so what it refuses is left out of the exported span; the
/// header sent upstream is the validated list itself, never this.
pub fn export_trace_state(tracestate: &HeaderValue) -> TraceState {
    let Ok(text) = tracestate.to_str() else {
        return TraceState::NONE;
    };
    let mut members: Vec<(&str, &str)> = Vec::new();
    for (key, value) in tracestate_members(&[text]).filter_map(|m| m.split_once('=')) {
        if !members.iter().any(|(k, _)| *k == key)
            && TraceState::from_key_value([(key, value)]).is_ok()
        {
            members.push((key, value));
        }
    }
    TraceState::from_key_value(members).unwrap_or_default()
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )` with `keychar = lcalpha / DIGIT / "_" /
/// "-" / "*" / "/" / "@"` (Trace Context Level 2, which folds Level 1's
/// `tenant@system` form into one grammar).
fn tracestate_key_ok(key: &str) -> bool {
    match key.as_bytes().split_first() {
        Some((&first, rest)) => {
            key.len() <= 256
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(|&b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
                })
        }
        None => false,
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
    /// The inbound context, only when it is valid; marked remote.
    pub context: Option<SpanContext>,
    /// The inbound `tracestate`, validated and ready to forward; only with a valid
    /// `context`.
    pub tracestate: Option<HeaderValue>,
    /// Why a present `tracestate` was discarded.
    pub tracestate_invalid: Option<InvalidTraceState>,
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
/// when `traceparent` is valid, as the spec requires, and kept or discarded as a
/// whole ([`parse_tracestate`]).
pub fn extract(headers: &HeaderMap) -> Extracted {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let Some(first) = values.next() else {
        return Extracted::default();
    };
    let rejected = |reason, duplicates| Extracted {
        invalid: Some(reason),
        duplicates,
        ..Extracted::default()
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
        Ok(context) => {
            let (tracestate, tracestate_invalid) = match extract_tracestate(headers) {
                Ok(tracestate) => (tracestate, None),
                Err(reason) => (None, Some(reason)),
            };
            Extracted {
                context: Some(context),
                tracestate,
                tracestate_invalid,
                ..Extracted::default()
            }
        }
        Err(reason) => rejected(reason, false),
    }
}

/// The `tracestate` to forward: the very header value when one valid line came (the
/// common case, which copies nothing), else the combined list.
fn extract_tracestate(headers: &HeaderMap) -> Result<Option<HeaderValue>, InvalidTraceState> {
    let lines = headers.get_all(TRACESTATE);
    fn text(v: &HeaderValue) -> Result<&str, InvalidTraceState> {
        v.to_str().map_err(|_| InvalidTraceState::NotUtf8)
    }
    let mut iter = lines.iter();
    let (Some(first), None) = (iter.next(), iter.next()) else {
        let values = lines.iter().map(text).collect::<Result<Vec<_>, _>>()?;
        return Ok(parse_tracestate(&values)?
            .and_then(|list| HeaderValue::try_from(list.into_owned()).ok()));
    };
    Ok(match parse_tracestate(&[text(first)?])? {
        Some(Cow::Borrowed(_)) => Some(first.clone()),
        Some(Cow::Owned(list)) => HeaderValue::try_from(list).ok(),
        None => None,
    })
}

pub use traverse_config::TrustPolicy;

/// What the gateway's server span should hang off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The remote parent; `None` starts a new root trace.
    pub parent: Option<SpanContext>,
    /// The parent's validated `tracestate`, forwarded unchanged; only with `parent`.
    pub tracestate: Option<HeaderValue>,
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
    let tracestate = parent.as_ref().and_then(|_| extracted.tracestate.clone());
    Decision {
        parent,
        tracestate,
        link,
        inbound_missing_or_invalid,
    }
}

/// The trace context headers to send upstream for `ctx`.
///
/// Callers remove every inbound `traceparent` and `tracestate` first and then
/// write these, so exactly one `traceparent` goes upstream whatever the client
/// sent. The tracestate is the one [`extract`] validated, sent unchanged. An
/// invalid `ctx` (all-zero ids) yields nothing: upstream would reject it anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    pub traceparent: Option<HeaderValue>,
    pub tracestate: Option<HeaderValue>,
}

/// Computes the [`Outbound`] headers for `ctx` and the trace's validated `tracestate`.
pub fn outbound(ctx: &SpanContext, tracestate: Option<&HeaderValue>) -> Outbound {
    if !ctx.is_valid() {
        return Outbound::default();
    }
    Outbound {
        traceparent: HeaderValue::from_bytes(&traceparent_bytes(ctx)).ok(),
        tracestate: tracestate.cloned(),
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
