//! Fixtures shared by the HTTP and gRPC transport tests.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::time::Instant;

use crate::export::{ExporterOptions, Protocol, RetryPolicy, TlsOptions, TraceExporter};

/// An exporter to `endpoint` sending an `Authorization` header, 2 s per attempt.
pub(super) fn exporter(protocol: Protocol, endpoint: &str) -> TraceExporter {
    TraceExporter::new(ExporterOptions {
        protocol,
        endpoint: endpoint.to_owned(),
        headers: vec![("Authorization".to_owned(), "Bearer token".to_owned())],
        timeout: Duration::from_secs(2),
        tls: TlsOptions::default(),
    })
    .expect("exporter")
}

/// Five attempts with millisecond backoffs, so retry tests stay fast.
pub(super) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// One span in one scope in one resource.
pub(super) fn sample_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "GET /".to_owned(),
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

pub(super) fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}
