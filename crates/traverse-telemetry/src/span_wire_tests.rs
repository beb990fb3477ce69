use std::time::Duration;

use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use super::*;

fn context(trace: u128, span: u64, flags: u8, remote: bool, state: &str) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::new(flags),
        remote,
        TraceState::from_key_value(
            state
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .collect::<Vec<_>>(),
        )
        .expect("trace state"),
    )
}

/// A span with every kind of value this module writes: each attribute type (negative and
/// zero numbers, false, an empty string, arrays of each type), links with attributes,
/// a trace state and an error status.
fn rich_span(kind: SpanKind, status: Status, parent: SpanId, remote: bool) -> SpanData {
    let attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("empty", ""),
        KeyValue::new("http.response.status_code", 502_i64),
        KeyValue::new("negative", -7_i64),
        KeyValue::new("zero", 0_i64),
        KeyValue::new("ratio", 0.25_f64),
        KeyValue::new("minus.zero", -0.0_f64),
        KeyValue::new("flag", false),
        KeyValue::new("on", true),
        KeyValue::new(
            "strings",
            Value::Array(Array::String(vec!["a".into(), "".into(), "ü".into()])),
        ),
        KeyValue::new("ints", Value::Array(Array::I64(vec![1, -1, 0]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, 0.0]))),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("none", Value::Array(Array::I64(Vec::new()))),
        KeyValue::new("long", "x".repeat(300)),
    ];
    let mut links = SpanLinks::default();
    links.links = vec![
        Link::new(
            context(0xabc, 0xdef, 0x01, true, "vendor=1"),
            vec![
                KeyValue::new("link.kind", "caller"),
                KeyValue::new("n", 3_i64),
            ],
            2,
        ),
        Link::with_context(context(0x1, 0x2, 0x00, false, "")),
    ];
    SpanData {
        span_context: context(
            0x0af7651916cd43dd8448eb211c80319c,
            0xb7ad6b7169203331,
            0x03,
            false,
            "vendor=x,other=y",
        ),
        parent_span_id: parent,
        parent_span_is_remote: remote,
        span_kind: kind,
        name: "GET /users/{id}".into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_523_456_789),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links,
        status,
        instrumentation_scope: scope(),
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("traverse")
        .with_version("1.2.3")
        .build()
}

fn view<'a>(span: &'a SpanData, trace_state: &'a str) -> SpanView<'a> {
    SpanView {
        context: &span.span_context,
        trace_state,
        parent_span_id: span.parent_span_id,
        parent_is_remote: span.parent_span_is_remote,
        kind: &span.span_kind,
        name: &span.name,
        start: span.start_time,
        end: span.end_time,
        attributes: &span.attributes,
        links: &span.links.links,
        status: &span.status,
    }
}

fn encode(span: &SpanData) -> Vec<u8> {
    let trace_state = span.span_context.trace_state().header();
    let mut buf = Vec::new();
    encode_span(&view(span, &trace_state), &mut buf);
    buf
}

/// One export request carrying `spans`, written as the tracer writes it.
fn request(encoder: &TraceRequestEncoder, spans: &[SpanData]) -> EncodedTraceRequest {
    let mut batch = encoder.open(spans.len());
    for span in spans {
        let trace_state = span.span_context.trace_state().header();
        batch.push(&view(span, &trace_state));
    }
    assert_eq!(batch.len(), spans.len());
    encoder.close(batch)
}

fn spans() -> Vec<SpanData> {
    vec![
        rich_span(
            SpanKind::Server,
            Status::error("upstream refused"),
            SpanId::from(0x1234),
            true,
        ),
        rich_span(SpanKind::Client, Status::Ok, SpanId::from(0x99), false),
        rich_span(SpanKind::Internal, Status::Unset, SpanId::INVALID, false),
        rich_span(SpanKind::Producer, Status::error(""), SpanId::INVALID, true),
        rich_span(SpanKind::Consumer, Status::Unset, SpanId::from(1), false),
    ]
}

#[test]
fn a_span_decodes_to_what_opentelemetry_proto_converts_it_to() {
    for span in spans() {
        let bytes = encode(&span);
        let decoded = ProtoSpan::decode(bytes.as_slice()).expect("a Span message");
        let expected = ProtoSpan::from(span);
        assert_eq!(decoded, expected);
        // Byte for byte too: prost writes fields in tag order, and so does this module
        // except for `flags` (16), which prost writes last as well.
        assert_eq!(bytes, expected.encode_to_vec());
    }
}

#[test]
fn a_batch_decodes_to_the_grouped_request() {
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "traverse"),
            KeyValue::new("k8s.cluster.name", "c1"),
        ])
        .build();
    let resource = ResourceAttributesWithSchema::from(&resource);
    let encoder = TraceRequestEncoder::new(&resource, (&scope(), None).into());

    let request = request(&encoder, &spans());

    let decoded =
        ExportTraceServiceRequest::decode(request.encode_to_vec().as_slice()).expect("a request");
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans(), &resource),
    };
    assert_eq!(decoded, expected);
    assert_eq!(request.encoded_len(), request.encode_to_vec().len());
}

#[test]
fn an_empty_batch_is_a_valid_request() {
    let resource = ResourceAttributesWithSchema::from(&Resource::builder_empty().build());
    let encoder = TraceRequestEncoder::new(&resource, (&scope(), None).into());
    let request = request(&encoder, &[]);
    let decoded =
        ExportTraceServiceRequest::decode(request.encode_to_vec().as_slice()).expect("a request");
    assert_eq!(decoded.resource_spans.len(), 1);
    assert!(decoded.resource_spans[0].scope_spans[0].spans.is_empty());
}

#[test]
fn spans_of_any_length_are_framed() {
    // Under 128 bytes (a one-byte length), the usual size (two bytes), and over 16 KiB
    // (three bytes): the span is moved to fit its length in front of it.
    let mut tiny = rich_span(SpanKind::Internal, Status::Unset, SpanId::INVALID, false);
    tiny.attributes.clear();
    tiny.links = SpanLinks::default();
    tiny.span_context = context(1, 2, 1, false, "");
    let mut huge = rich_span(SpanKind::Server, Status::Ok, SpanId::from(3), true);
    huge.attributes
        .push(KeyValue::new("huge", "y".repeat(20_000)));
    let usual = rich_span(SpanKind::Client, Status::Unset, SpanId::from(4), false);
    let spans = vec![tiny, huge.clone(), usual, huge];
    let lengths: Vec<usize> = spans.iter().map(|s| encode(s).len()).collect();
    assert!(lengths[0] < 128 && (128..16_384).contains(&lengths[2]) && lengths[1] >= 16_384);

    let resource = ResourceAttributesWithSchema::from(&Resource::builder_empty().build());
    let encoder = TraceRequestEncoder::new(&resource, (&scope(), None).into());
    let decoded =
        ExportTraceServiceRequest::decode(request(&encoder, &spans).body()).expect("a request");
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans, &resource),
    };
    assert_eq!(decoded, expected);
}

#[test]
fn times_before_the_epoch_are_zero() {
    assert_eq!(nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    assert_eq!(nanos(UNIX_EPOCH + Duration::from_nanos(5)), 5);
}
