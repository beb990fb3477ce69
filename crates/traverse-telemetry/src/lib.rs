//! Trace context propagation and telemetry for Traverse.
//!
//! [`propagation`] is the pure core: W3C Trace Context and Baggage parsing,
//! the per-entrypoint trust decision and outbound injection. It does no I/O so
//! the data plane can call it on the hot path and hand the resulting
//! [`opentelemetry::trace::SpanContext`]s to the SDK.

pub mod propagation;
