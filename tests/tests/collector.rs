//! The collector harness against the real collector: known OTLP data sent over HTTP
//! (protobuf) and gRPC must come back parsed exactly as sent. This also pins the output
//! format of the installed collector.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use traverse_e2e::collector::{self, Collector};

const WAIT: Duration = Duration::from_secs(10);

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn s(text: &str) -> Value {
    Value::StringValue(text.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Resource::default()
    })
}

fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: version.to_owned(),
        ..InstrumentationScope::default()
    })
}

/// Two resources; a server span with a parent, every scalar attribute type, an array, a
/// multi-line string, an event, a link and an error status; its client parent with status
/// OK; spans of every other kind, one without a status.
fn trace_request(trace: [u8; 16]) -> ExportTraceServiceRequest {
    let span = |id: u8, name: &str, kind: SpanKind| Span {
        trace_id: trace.to_vec(),
        span_id: vec![0xa0, 0, 0, 0, 0, 0, 0, id],
        name: name.to_owned(),
        kind: kind as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(id),
        end_time_unix_nano: 1_700_000_000_500_000_000 + u64::from(id),
        ..Span::default()
    };
    let server = Span {
        parent_span_id: vec![0xa0, 0, 0, 0, 0, 0, 0, 2],
        trace_state: "vendor=x".to_owned(),
        flags: 0x101,
        attributes: vec![
            kv("http.request.method", s("GET")),
            kv("http.response.status_code", Value::IntValue(502)),
            kv("negative", Value::IntValue(-7)),
            kv("retried", Value::BoolValue(true)),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("whole", Value::DoubleValue(2.0)),
            kv("empty", s("")),
            kv("with.parens", s("a (b) c)")),
            kv("multi.line", s("first\nsecond: line\n")),
            kv(
                "list",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(s("a")),
                        },
                        AnyValue {
                            value: Some(Value::IntValue(1)),
                        },
                    ],
                }),
            ),
        ],
        events: vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".to_owned(),
            attributes: vec![kv("exception.message", s("boom"))],
            ..Event::default()
        }],
        links: vec![Link {
            trace_id: vec![0x11; 16],
            span_id: vec![0x22; 8],
            attributes: vec![kv("link.kind", s("follows"))],
            ..Link::default()
        }],
        status: Some(Status {
            message: "upstream failed".to_owned(),
            code: StatusCode::Error as i32,
        }),
        ..span(1, "GET /api/{id}", SpanKind::Server)
    };
    let client = Span {
        status: Some(Status {
            message: String::new(),
            code: StatusCode::Ok as i32,
        }),
        ..span(2, "root", SpanKind::Client)
    };
    let unset = Span {
        status: Some(Status::default()),
        ..span(3, "internal", SpanKind::Internal)
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(vec![
                    kv("service.name", s("traverse")),
                    kv("service.instance.id", s("i-1")),
                    kv("process.pid", Value::IntValue(42)),
                ]),
                scope_spans: vec![ScopeSpans {
                    scope: scope("traverse", "0.1.0"),
                    spans: vec![server, client],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            },
            ResourceSpans {
                resource: resource(vec![kv("service.name", s("other"))]),
                scope_spans: vec![ScopeSpans {
                    scope: scope("other-scope", ""),
                    spans: vec![
                        unset,
                        span(4, "unspecified", SpanKind::Unspecified),
                        span(5, "produce", SpanKind::Producer),
                        span(6, "consume", SpanKind::Consumer),
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            },
        ],
    }
}

/// An attribute value as the collector prints it (`raw`) and as text (`plain`).
fn rendered(value: &Value) -> (String, String) {
    let raw = raw_value(value);
    (collector::plain_value(&raw), raw)
}

fn raw_value(value: &Value) -> String {
    match value {
        Value::StringValue(text) => format!("Str({text})"),
        Value::BoolValue(b) => format!("Bool({b})"),
        Value::IntValue(i) => format!("Int({i})"),
        Value::DoubleValue(d) => format!("Double({d})"),
        Value::ArrayValue(array) => {
            let items: Vec<String> = array
                .values
                .iter()
                .filter_map(|v| v.value.as_ref())
                .map(raw_value)
                .collect();
            format!("Slice({})", items.join(", "))
        }
        other => panic!("no rendering for {other:?} in this test"),
    }
}

fn attributes(list: &[KeyValue]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut plain = BTreeMap::new();
    let mut raw = BTreeMap::new();
    for attribute in list {
        let value = attribute
            .value
            .as_ref()
            .and_then(|v| v.value.as_ref())
            .expect("a value");
        let (p, r) = rendered(value);
        plain.insert(attribute.key.clone(), p);
        raw.insert(attribute.key.clone(), r);
    }
    (plain, raw)
}

/// The spans of `request` as the harness should parse them.
fn expected_spans(request: &ExportTraceServiceRequest) -> Vec<collector::Span> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = attributes(
            &resource_spans
                .resource
                .as_ref()
                .expect("a resource")
                .attributes,
        )
        .0;
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().expect("a scope");
            for span in &scope_spans.spans {
                let (plain, raw) = attributes(&span.attributes);
                let status = span.status.clone().unwrap_or_default();
                spans.push(collector::Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
                    name: span.name.clone(),
                    kind: match SpanKind::try_from(span.kind).expect("a kind") {
                        SpanKind::Unspecified => collector::SpanKind::Unspecified,
                        SpanKind::Internal => collector::SpanKind::Internal,
                        SpanKind::Server => collector::SpanKind::Server,
                        SpanKind::Client => collector::SpanKind::Client,
                        SpanKind::Producer => collector::SpanKind::Producer,
                        SpanKind::Consumer => collector::SpanKind::Consumer,
                    },
                    trace_state: span.trace_state.clone(),
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: span.end_time_unix_nano,
                    status_code: match StatusCode::try_from(status.code).expect("a code") {
                        StatusCode::Unset => collector::StatusCode::Unset,
                        StatusCode::Ok => collector::StatusCode::Ok,
                        StatusCode::Error => collector::StatusCode::Error,
                    },
                    status_message: status.message,
                    attributes: plain,
                    raw_attributes: raw,
                    events: span
                        .events
                        .iter()
                        .map(|e| {
                            let (attributes, raw_attributes) = attributes(&e.attributes);
                            collector::Event {
                                name: e.name.clone(),
                                time_unix_nano: e.time_unix_nano,
                                attributes,
                                raw_attributes,
                            }
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| {
                            let (attributes, raw_attributes) = attributes(&l.attributes);
                            collector::Link {
                                trace_id: hex(&l.trace_id),
                                span_id: hex(&l.span_id),
                                trace_state: l.trace_state.clone(),
                                attributes,
                                raw_attributes,
                            }
                        })
                        .collect(),
                    resource: resource.clone(),
                    scope_name: scope.name.clone(),
                    scope_version: scope.version.clone(),
                });
            }
        }
    }
    spans
}

async fn post(collector: &Collector, path: &str, body: Vec<u8>) {
    let response = traverse_e2e::send(
        collector.http_addr(),
        "POST",
        path,
        &[("content-type", "application/x-protobuf")],
        &body,
        WAIT,
    )
    .await
    .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    assert_eq!(response.status, 200, "POST {path}: {}", response.text());
}

#[tokio::test]
async fn spans_over_http_protobuf_parse_as_sent() {
    let collector = Collector::start().await;
    assert_eq!(
        collector.traces_http_url(),
        format!("http://127.0.0.1:{}/v1/traces", collector.http_port())
    );
    let request = trace_request([0x0a; 16]);
    post(&collector, "/v1/traces", request.encode_to_vec()).await;
    let expected = expected_spans(&request);
    let spans = collector.wait_for_spans(expected.len(), WAIT).await;
    assert_eq!(spans, expected);

    // The details that matter most, spelled out.
    let server = &spans[0];
    assert_eq!(server.trace_id, "0a".repeat(16));
    assert_eq!(server.span_id, "a000000000000001");
    assert_eq!(server.parent_id.as_deref(), Some("a000000000000002"));
    assert_eq!(server.kind, collector::SpanKind::Server);
    assert_eq!(server.status_code, collector::StatusCode::Error);
    assert_eq!(server.status_message, "upstream failed");
    assert_eq!(server.attr("http.response.status_code"), Some("502"));
    assert_eq!(
        server.raw_attributes["http.response.status_code"],
        "Int(502)"
    );
    assert_eq!(server.attr("ratio"), Some("0.25"));
    assert_eq!(server.attr("whole"), Some("2"));
    assert_eq!(server.attr("retried"), Some("true"));
    assert_eq!(server.attr("multi.line"), Some("first\nsecond: line\n"));
    assert_eq!(server.resource_attr("service.name"), Some("traverse"));
    assert_eq!(server.links[0].trace_id, "11".repeat(16));
    assert_eq!(server.links[0].span_id, "22".repeat(8));
    assert_eq!(spans[1].parent_id, None);
    assert_eq!(spans[1].status_code, collector::StatusCode::Ok);
    assert_eq!(spans[2].resource_attr("service.name"), Some("other"));
    assert_eq!(spans[2].resource.len(), 1);
}

#[tokio::test]
async fn spans_over_grpc_parse_as_sent() {
    let collector = Collector::start().await;
    let mut client = TraceServiceClient::connect(collector.grpc_endpoint())
        .await
        .expect("connecting to the collector over gRPC");
    let first = trace_request([0x0b; 16]);
    let second = trace_request([0x0c; 16]);
    client
        .export(first.clone())
        .await
        .expect("exporting over gRPC");
    // Batches accumulate, interleaved with whatever else the collector prints.
    post(&collector, "/v1/traces", second.encode_to_vec()).await;
    let mut expected = expected_spans(&first);
    expected.extend(expected_spans(&second));
    let spans = collector.wait_for_spans(expected.len(), WAIT).await;
    assert_eq!(spans, expected);

    let found = collector
        .wait_for_span("the gRPC server span", WAIT, |s| {
            s.trace_id == "0b".repeat(16) && s.kind == collector::SpanKind::Server
        })
        .await;
    assert_eq!(found.name, "GET /api/{id}");
}

#[tokio::test]
async fn logs_and_metrics_over_http_protobuf_parse() {
    let collector = Collector::start().await;
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(vec![kv("service.name", s("traverse"))]),
            scope_logs: vec![ScopeLogs {
                scope: scope("traverse", "0.1.0"),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        observed_time_unix_nano: 1_700_000_000_000_000_001,
                        severity_number: SeverityNumber::Error as i32,
                        severity_text: "ERROR".to_owned(),
                        body: Some(AnyValue {
                            value: Some(s("upstream\nfailed")),
                        }),
                        attributes: vec![kv("route", s("r1")), kv("attempt", Value::IntValue(2))],
                        flags: 1,
                        trace_id: vec![0x0d; 16],
                        span_id: vec![0x0e; 8],
                        event_name: "access".to_owned(),
                        ..LogRecord::default()
                    },
                    LogRecord {
                        severity_number: SeverityNumber::Info as i32,
                        body: Some(AnyValue {
                            value: Some(s("started")),
                        }),
                        ..LogRecord::default()
                    },
                ],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    post(&collector, "/v1/logs", logs.encode_to_vec()).await;
    let records = collector.wait_for_logs(2, WAIT).await;
    assert_eq!(records.len(), 2, "{records:#?}");
    let error = &records[0];
    assert_eq!(error.body, "upstream\nfailed");
    assert_eq!(error.raw_body, "Str(upstream\nfailed)");
    assert_eq!(error.severity_text, "ERROR");
    assert_eq!(error.severity_number, SeverityNumber::Error as i32);
    assert_eq!(error.event_name, "access");
    assert_eq!(error.attr("route"), Some("r1"));
    assert_eq!(error.raw_attributes["attempt"], "Int(2)");
    assert_eq!(error.trace_id, Some("0d".repeat(16)));
    assert_eq!(error.span_id, Some("0e".repeat(8)));
    assert_eq!(error.flags, 1);
    assert_eq!(error.time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(error.observed_time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(error.resource["service.name"], "traverse");
    assert_eq!(error.scope_name, "traverse");
    assert_eq!(records[1].body, "started");
    assert_eq!(records[1].severity_number, SeverityNumber::Info as i32);
    assert_eq!(records[1].trace_id, None);

    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(vec![kv("service.name", s("traverse"))]),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("traverse", ""),
                metrics: vec![
                    Metric {
                        name: "requests".to_owned(),
                        description: "Requests handled".to_owned(),
                        unit: "{request}".to_owned(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv("code", Value::IntValue(200))],
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                value: Some(number_data_point::Value::AsInt(5)),
                                ..NumberDataPoint::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Metric::default()
                    },
                    Metric {
                        name: "duration".to_owned(),
                        unit: "s".to_owned(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![kv("route", s("r1"))],
                                time_unix_nano: 2,
                                count: 3,
                                sum: Some(0.5),
                                bucket_counts: vec![1, 2, 0],
                                explicit_bounds: vec![0.1, 1.0],
                                min: Some(0.05),
                                max: Some(0.25),
                                ..HistogramDataPoint::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                        })),
                        ..Metric::default()
                    },
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    post(&collector, "/v1/metrics", metrics.encode_to_vec()).await;
    let requests = collector.wait_for_metric("requests", WAIT).await;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let point = &requests[0];
    assert_eq!(point.data_type, "Sum");
    assert_eq!(point.description, "Requests handled");
    assert_eq!(point.unit, "{request}");
    assert_eq!(point.is_monotonic, Some(true));
    assert_eq!(
        point.temporality.as_deref(),
        Some("AGGREGATION_TEMPORALITY_CUMULATIVE")
    );
    assert_eq!(point.value, Some(5.0));
    assert_eq!(point.attr("code"), Some("200"));
    assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (1, 2));
    assert_eq!(point.resource["service.name"], "traverse");
    let duration = collector.wait_for_metric("duration", WAIT).await;
    let point = &duration[0];
    assert_eq!(point.data_type, "Histogram");
    assert_eq!(
        point.temporality.as_deref(),
        Some("AGGREGATION_TEMPORALITY_DELTA")
    );
    assert_eq!(point.count, Some(3));
    assert_eq!(point.sum, Some(0.5));
    assert_eq!((point.min, point.max), (Some(0.05), Some(0.25)));
    assert_eq!(point.explicit_bounds, vec![0.1, 1.0]);
    assert_eq!(point.bucket_counts, vec![1, 2, 0]);
    assert_eq!(point.attr("route"), Some("r1"));
    assert!(collector.spans().is_empty());
}

#[tokio::test]
async fn stops_and_comes_back_on_the_same_ports() {
    let mut collector = Collector::start().await;
    assert!(collector.is_running());
    collector
        .assert_no_spans_for(Duration::from_millis(300))
        .await;
    post(
        &collector,
        "/v1/traces",
        trace_request([0x01; 16]).encode_to_vec(),
    )
    .await;
    let before = collector.wait_for_spans(6, WAIT).await.len();

    collector.stop();
    assert!(!collector.is_running());
    let refused = traverse_e2e::send(
        collector.http_addr(),
        "POST",
        "/v1/traces",
        &[("content-type", "application/x-protobuf")],
        &trace_request([0x02; 16]).encode_to_vec(),
        WAIT,
    )
    .await;
    assert!(
        refused.is_err(),
        "a stopped collector answered: {refused:?}"
    );
    assert_eq!(collector.spans().len(), before, "received before the stop");

    // A new collector on the same ports (as a test would bring one back later).
    let again = Collector::start_on(collector.grpc_port(), collector.http_port()).await;
    post(
        &again,
        "/v1/traces",
        trace_request([0x03; 16]).encode_to_vec(),
    )
    .await;
    let spans = again.wait_for_spans(6, WAIT).await;
    assert!(spans.iter().all(|s| s.trace_id == "03".repeat(16)));
    drop(again);

    // Or the same one again: what it received before stays.
    collector.restart().await;
    post(
        &collector,
        "/v1/traces",
        trace_request([0x04; 16]).encode_to_vec(),
    )
    .await;
    let spans = collector.wait_for_spans(before + 6, WAIT).await;
    assert_eq!(spans.len(), before + 6);
    assert!(spans[before..]
        .iter()
        .all(|s| s.trace_id == "04".repeat(16)));
}
