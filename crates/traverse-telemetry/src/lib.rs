//! Telemetry for Traverse: W3C context propagation, request spans, metrics, access
//! logs and OTLP export.
//!
//! - [`propagation`] is the pure core: trace context and baggage parsing, the
//!   per-entrypoint trust decision and the outbound headers.
//! - [`settings`] resolves the configuration of every signal against the `OTEL_*`
//!   variables.
//! - [`Tracer`] creates and ends spans on the request path without blocking.
//! - [`metrics`] holds the instruments, `/metrics` rendering and the OTLP push.
//! - [`record`] is what one request did: the single value spans, metrics and access
//!   log records are derived from.
//! - [`access_log`] encodes and writes one record per request off the request path.
//! - [`logs`] and [`log_bridge`] send log records (access and the gateway's own) over OTLP.
//! - [`TracePipeline`] and [`LogPipeline`] batch on dedicated threads and export with
//!   [`export`], retrying only what OTLP calls retryable.

pub mod access_log;
pub mod export;
pub mod log_bridge;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod propagation;
pub mod record;
pub mod settings;
mod span_wire;
mod trace_queue;
mod tracer;

pub use logs::{LogPipeline, LogSettings, LogSink};
pub use pipeline::{ExportStats, StartError, StatsSnapshot};
pub use settings::{TelemetrySettings, TraceSettings};
pub use tracer::{Span, TracePipeline, Tracer};

/// Re-exported so the data plane names span kinds, statuses and attributes
/// from the same crate versions.
pub use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
pub use opentelemetry::KeyValue;
pub use opentelemetry_semantic_conventions::attribute as semconv;
