//! Spans written straight into OTLP protobuf, without `SpanData` or the
//! `opentelemetry-proto` structs in between.
//!
//! [`crate::Tracer::end`] encodes each sampled span on the worker that finished it
//! ([`encode_span`]) straight into that worker's [`SpanBatch`]: the bytes of one
//! `ExportTraceServiceRequest` being written, with room kept in front for the resource
//! and scope, which [`TraceRequestEncoder::close`] writes there once the batch is full.
//! The request is then sent as it is: no allocation per span, and no copy of the spans
//! between the worker and the socket. Converting a span to the `opentelemetry-proto`
//! structs allocated a string or vector per id, key and value and then walked them again
//! to encode. The output decodes to what `opentelemetry-proto`'s conversion gives for
//! the same span (tested below).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ProtoScope;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{encode_varint, encoded_len_varint, WireType};
use prost::Message;

use crate::export::OtlpRequest;

/// Flags bits of `opentelemetry.proto.trace.v1.SpanFlags`: whether the parent (or the
/// linked span) is known to be local or remote, and which.
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// A finished span, borrowed from the tracer's `Span`.
pub(crate) struct SpanView<'a> {
    pub context: &'a SpanContext,
    /// The `tracestate` header to export, already reduced to what OpenTelemetry keeps.
    pub trace_state: &'a str,
    pub parent_span_id: SpanId,
    pub parent_is_remote: bool,
    pub kind: &'a SpanKind,
    pub name: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: &'a [KeyValue],
    pub links: &'a [Link],
    pub status: &'a Status,
}

/// Appends the fields of one `Span` message (without a tag or length) to `buf`.
pub(crate) fn encode_span(span: &SpanView<'_>, buf: &mut Vec<u8>) {
    let context = span.context;
    bytes_field(1, &context.trace_id().to_bytes(), buf);
    bytes_field(2, &context.span_id().to_bytes(), buf);
    string_field(3, span.trace_state, buf);
    if span.parent_span_id != SpanId::INVALID {
        bytes_field(4, &span.parent_span_id.to_bytes(), buf);
    }
    string_field(5, span.name, buf);
    varint_field(6, kind_number(span.kind), buf);
    fixed64_field(7, nanos(span.start), buf);
    fixed64_field(8, nanos(span.end), buf);
    for attribute in span.attributes {
        key_value_field(9, attribute, buf);
    }
    for link in span.links {
        message_field(13, link_len(link), buf, |buf| encode_link(link, buf));
    }
    let (code, message) = status_parts(span.status);
    let status_len = string_len(message) + varint_len(code);
    message_field(15, status_len, buf, |buf| {
        string_field(2, message, buf);
        varint_field(3, code, buf);
    });
    fixed32_field(
        16,
        flags(context.trace_flags().to_u8(), span.parent_is_remote),
        buf,
    );
}

/// What a request span takes, encoded (a dozen attributes, names and addresses): the
/// room a batch starts with per span.
const SPAN_CAPACITY: usize = 512;

/// Longest varint: room for any length.
const MAX_VARINT: usize = 10;

/// The spans of one export request, encoded one after the other as the `spans` fields of
/// its `ScopeSpans`, behind room for what goes in front of them.
#[derive(Debug)]
pub(crate) struct SpanBatch {
    buf: Vec<u8>,
    spans: usize,
}

impl SpanBatch {
    /// Spans in the batch.
    pub(crate) fn len(&self) -> usize {
        self.spans
    }

    /// Appends `span`.
    pub(crate) fn push(&mut self, span: &SpanView<'_>) {
        key(2, WireType::LengthDelimited, &mut self.buf);
        // The span's length is known once it is written: two bytes are kept for it,
        // which hold 128 to 16 383, what a request span takes. Other lengths move the
        // span by a byte or more.
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        encode_span(span, &mut self.buf);
        let end = self.buf.len();
        let len = end - at - 2;
        let prefix = encoded_len_varint(len as u64);
        if prefix > 2 {
            self.buf.resize(end + prefix - 2, 0);
            self.buf.copy_within(at + 2..end, at + prefix);
        } else if prefix < 2 {
            self.buf.copy_within(at + 2..end, at + prefix);
            self.buf.truncate(end - (2 - prefix));
        }
        encode_varint(len as u64, &mut &mut self.buf[at..at + prefix]);
        self.spans += 1;
    }
}

/// Writes export requests around [`SpanBatch`]es: the resource and scope are encoded once
/// and every batch reuses them.
#[derive(Debug)]
pub(crate) struct TraceRequestEncoder {
    /// Field 1 of `ResourceSpans` (the resource), key and length included.
    resource_field: Vec<u8>,
    resource_schema_url: String,
    /// Field 1 of `ScopeSpans` (the scope), key and length included.
    scope_field: Vec<u8>,
}

impl TraceRequestEncoder {
    pub(crate) fn new(resource: &ResourceAttributesWithSchema, scope: ProtoScope) -> Self {
        let resource_message = opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: resource.attributes.0.clone(),
            ..Default::default()
        };
        let mut resource_field = Vec::new();
        bytes_field_always(1, &resource_message.encode_to_vec(), &mut resource_field);
        let mut scope_field = Vec::new();
        bytes_field_always(1, &scope.encode_to_vec(), &mut scope_field);
        TraceRequestEncoder {
            resource_field,
            resource_schema_url: resource.schema_url.clone().unwrap_or_default(),
            scope_field,
        }
    }

    /// Room for what precedes the spans: the keys and lengths of `ResourceSpans` and
    /// `ScopeSpans`, the resource and the scope.
    fn room(&self) -> usize {
        2 * (1 + MAX_VARINT) + self.resource_field.len() + self.scope_field.len()
    }

    /// An empty batch, with room for `spans` request spans.
    pub(crate) fn open(&self, spans: usize) -> SpanBatch {
        let room = self.room();
        let mut buf = Vec::with_capacity(room + spans * SPAN_CAPACITY);
        buf.resize(room, 0);
        SpanBatch { buf, spans: 0 }
    }

    /// The `ExportTraceServiceRequest` carrying `batch`'s spans: what precedes them is
    /// written into the room kept for it, and the request starts where that begins.
    pub(crate) fn close(&self, batch: SpanBatch) -> EncodedTraceRequest {
        let room = self.room();
        let mut buf = batch.buf;
        let scope_spans_len = self.scope_field.len() + (buf.len() - room);
        string_field(3, &self.resource_schema_url, &mut buf);
        let resource_spans_len = self.resource_field.len()
            + len_delimited_len(scope_spans_len)
            + string_len(&self.resource_schema_url);
        let mut head = Vec::with_capacity(room);
        length_prefix(1, resource_spans_len, &mut head);
        head.extend_from_slice(&self.resource_field);
        length_prefix(2, scope_spans_len, &mut head);
        head.extend_from_slice(&self.scope_field);
        let start = room - head.len();
        buf[start..room].copy_from_slice(&head);
        EncodedTraceRequest {
            bytes: Bytes::from(buf).slice(start..),
        }
    }
}

/// An `ExportTraceServiceRequest` already encoded: the transport writes its bytes as
/// they are, over OTLP/HTTP or gRPC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedTraceRequest {
    bytes: Bytes,
}

impl Message for EncodedTraceRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent, never received: nothing to keep.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes = Bytes::new();
    }
}

impl OtlpRequest for EncodedTraceRequest {
    type Response = ExportTraceServiceResponse;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const SIGNAL: &'static str = "trace";
    const ITEMS: &'static str = "spans";

    fn partial_success(response: Self::Response) -> (i64, String) {
        let partial = response.partial_success.unwrap_or_default();
        (partial.rejected_spans, partial.error_message)
    }

    /// The bytes as they are: a clone of a `Bytes` shares them.
    fn body(&self) -> Bytes {
        self.bytes.clone()
    }
}

fn nanos(time: SystemTime) -> u64 {
    // As opentelemetry-proto does: a time before the epoch is 0, and u64 nanoseconds
    // last until 2554.
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn status_parts(status: &Status) -> (u64, &str) {
    match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description),
    }
}

fn flags(trace_flags: u8, remote: bool) -> u32 {
    let mut flags = u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

fn encode_link(link: &Link, buf: &mut Vec<u8>) {
    let context = &link.span_context;
    bytes_field(1, &context.trace_id().to_bytes(), buf);
    bytes_field(2, &context.span_id().to_bytes(), buf);
    string_field(3, &context.trace_state().header(), buf);
    for attribute in &link.attributes {
        key_value_field(4, attribute, buf);
    }
    varint_field(5, u64::from(link.dropped_attributes_count), buf);
    fixed32_field(
        6,
        flags(context.trace_flags().to_u8(), context.is_remote()),
        buf,
    );
}

fn link_len(link: &Link) -> usize {
    let context = &link.span_context;
    len_delimited_len(16)
        + len_delimited_len(8)
        + string_len(&context.trace_state().header())
        + link
            .attributes
            .iter()
            .map(|a| len_delimited_len(key_value_len(a)))
            .sum::<usize>()
        + varint_len(u64::from(link.dropped_attributes_count))
        + 5
}

/// A `KeyValue` message as field `tag`; the value's length is computed once, for both
/// lengths that need it (a span has a dozen attributes: this is most of its encoding).
fn key_value_field(tag: u32, attribute: &KeyValue, buf: &mut Vec<u8>) {
    let key = attribute.key.as_str();
    let value_len = any_value_len(&attribute.value);
    let len = string_len(key) + len_delimited_len(value_len);
    message_field(tag, len, buf, |buf| {
        string_field(1, key, buf);
        message_field(2, value_len, buf, |buf| {
            encode_any_value(&attribute.value, buf)
        });
    });
}

fn key_value_len(attribute: &KeyValue) -> usize {
    string_len(attribute.key.as_str()) + len_delimited_len(any_value_len(&attribute.value))
}

/// The one field of an `AnyValue`. Fields of a `oneof` are written even when they hold
/// the default value: that is how a set `false` or `0` differs from no value.
fn encode_any_value(value: &Value, buf: &mut Vec<u8>) {
    match value {
        Value::Bool(v) => varint_always(2, u64::from(*v), buf),
        // Negative int64 are ten-byte varints of their two's complement, as protobuf says.
        Value::I64(v) => varint_always(3, *v as u64, buf),
        Value::F64(v) => fixed64_always(4, v.to_bits(), buf),
        Value::String(v) => bytes_field_always(1, v.as_str().as_bytes(), buf),
        Value::Array(array) => {
            message_field(5, array_len(array), buf, |buf| encode_array(array, buf))
        }
        // `Value` is non-exhaustive: a kind added later is sent as an empty value.
        _ => {}
    }
}

fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(v) => 1 + encoded_len_varint(*v as u64),
        Value::F64(_) => 9,
        Value::String(v) => len_delimited_len(v.as_str().len()),
        Value::Array(array) => len_delimited_len(array_len(array)),
        _ => 0,
    }
}

/// Every element of `array` as a `Value`; arrays are rare (none of the gateway's own
/// attributes is one), so the copies do not matter.
fn array_values(array: &Array) -> Vec<Value> {
    match array {
        Array::Bool(v) => v.iter().map(|x| Value::Bool(*x)).collect(),
        Array::I64(v) => v.iter().map(|x| Value::I64(*x)).collect(),
        Array::F64(v) => v.iter().map(|x| Value::F64(*x)).collect(),
        Array::String(v) => v
            .iter()
            .map(|x: &StringValue| Value::String(x.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

fn encode_array(array: &Array, buf: &mut Vec<u8>) {
    for value in array_values(array) {
        message_field(1, any_value_len(&value), buf, |buf| {
            encode_any_value(&value, buf)
        });
    }
}

fn array_len(array: &Array) -> usize {
    array_values(array)
        .iter()
        .map(|v| len_delimited_len(any_value_len(v)))
        .sum()
}

// Field writers. Proto3 leaves out a scalar holding its default value; the `_always`
// variants are for oneof members and framing, which are written regardless.

fn length_prefix(tag: u32, len: usize, buf: &mut Vec<u8>) {
    key(tag, WireType::LengthDelimited, buf);
    varint(len as u64, buf);
}

/// A field's key. Every tag here but one is below 16, so the key is one byte.
fn key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    varint(u64::from((tag << 3) | wire_type as u32), buf);
}

/// Most varints here (keys, lengths of names and values) are below 128: one byte,
/// pushed without prost's general loop.
fn varint(value: u64, buf: &mut Vec<u8>) {
    if value < 0x80 {
        buf.push(value as u8);
    } else {
        encode_varint(value, buf);
    }
}

fn message_field(tag: u32, len: usize, buf: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    length_prefix(tag, len, buf);
    let start = buf.len();
    body(buf);
    debug_assert_eq!(buf.len() - start, len, "computed length of field {tag}");
}

fn bytes_field_always(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    length_prefix(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

fn bytes_field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    if !bytes.is_empty() {
        bytes_field_always(tag, bytes, buf);
    }
}

fn string_field(tag: u32, text: &str, buf: &mut Vec<u8>) {
    bytes_field(tag, text.as_bytes(), buf);
}

fn varint_always(tag: u32, value: u64, buf: &mut Vec<u8>) {
    key(tag, WireType::Varint, buf);
    varint(value, buf);
}

fn varint_field(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        varint_always(tag, value, buf);
    }
}

fn fixed64_always(tag: u32, value: u64, buf: &mut Vec<u8>) {
    key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn fixed64_field(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        fixed64_always(tag, value, buf);
    }
}

fn fixed32_field(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// Length of a length-delimited field holding `len` bytes, for tags below 16 (one key
/// byte), which are all this module sizes.
fn len_delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn string_len(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        len_delimited_len(text.len())
    }
}

fn varint_len(value: u64) -> usize {
    if value == 0 {
        0
    } else {
        1 + encoded_len_varint(value)
    }
}

#[cfg(test)]
#[path = "span_wire_tests.rs"]
mod tests;
