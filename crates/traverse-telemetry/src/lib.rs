//! Tracing for Traverse: W3C context propagation, request spans and OTLP export.
//!
//! - [`propagation`] is the pure core: trace context and baggage parsing, the
//!   per-entrypoint trust decision and the outbound headers.
//! - [`settings`] resolves the configuration against the `OTEL_*` variables.
//! - [`Tracer`] creates and ends spans on the request path without blocking.
//! - [`TracePipeline`] batches them on a dedicated thread and exports them with
//!   [`export`], retrying only what OTLP calls retryable.

pub mod access_log;
pub mod export;
pub mod log_bridge;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod propagation;
pub mod settings;
mod tracer;

pub use logs::{LogPipeline, LogSettings, LogSink};
pub use pipeline::{ExportStats, StartError, StatsSnapshot, TracePipeline};
pub use settings::{TelemetrySettings, TraceSettings};
pub use tracer::{Span, Tracer};

/// Re-exported so the data plane names span kinds, statuses and attributes
/// from the same crate versions.
pub use opentelemetry::trace::{SpanKind, Status};
pub use opentelemetry::KeyValue;
pub use opentelemetry_semantic_conventions::attribute as semconv;
