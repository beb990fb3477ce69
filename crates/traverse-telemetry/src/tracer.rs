//! Spans on the request path.
//!
//! The data plane knows a request's whole story by Pingora's `logging` phase, so a
//! span here is a plain value: ids and start time when the request arrives,
//! attributes as phases learn them, and one [`Tracer::end`] that encodes it into
//! OTLP protobuf on the worker ([`crate::span_wire`]), into that worker's batch
//! ([`crate::trace_queue`]), without waiting. There is no span
//! stack, no lock and no context object to carry across phases.
//!
//! [`TracePipeline`] starts the export thread that sends the tracer's batches; the
//! thread is [`crate::pipeline`]'s, which knows nothing of any signal.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::pipeline::{ExportStats, ExportThread, StartError};
use crate::propagation::{export_trace_state, Decision, RANDOM};
use crate::settings::TraceSettings;
use crate::span_wire::{SpanView, TraceRequestEncoder};
use crate::trace_queue::TraceQueue;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ProtoScope;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};

/// Room for a request span's attributes, so recording them allocates once.
const ATTRIBUTE_CAPACITY: usize = 16;

/// Creates and ends the gateway's spans; shared by every worker.
#[derive(Debug)]
pub struct Tracer {
    sampler: Sampler,
    ids: RandomIdGenerator,
    /// Encoded spans waiting for the export thread.
    queue: Arc<TraceQueue>,
    role: &'static str,
    add_internals: bool,
    trace_id_response_header: Option<http::HeaderName>,
}

/// A span in progress. Attributes are only kept when the span is sampled.
#[derive(Debug)]
pub struct Span {
    context: SpanContext,
    /// The trace's validated `tracestate`, forwarded as received.
    tracestate: Option<http::HeaderValue>,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
}

impl Tracer {
    pub(crate) fn new(
        sampler: Sampler,
        queue: Arc<TraceQueue>,
        role: &'static str,
        add_internals: bool,
        trace_id_response_header: Option<http::HeaderName>,
    ) -> Self {
        Tracer {
            sampler,
            ids: RandomIdGenerator::default(),
            queue,
            role,
            add_internals,
            trace_id_response_header,
        }
    }

    /// Starts the SERVER span of a request, under the parent the trust policy chose.
    /// The sampling decision is made here, once, and inherited by every child.
    pub fn start_server(&self, decision: &Decision) -> Span {
        let parent = decision.parent.as_ref().filter(|p| p.is_valid());
        let trace_id = parent.map_or_else(|| self.ids.new_trace_id(), |p| p.trace_id());
        let parent_context = parent.map(|p| Context::new().with_remote_span_context(p.clone()));
        let links: Vec<Link> = decision
            .link
            .iter()
            .map(|ctx| Link::with_context(ctx.clone()))
            .collect();
        let result = self.sampler.should_sample(
            parent_context.as_ref(),
            trace_id,
            "",
            &SpanKind::Server,
            &[],
            &links,
        );
        let sampled = result.decision == SamplingDecision::RecordAndSample;
        let sampled_flag = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::NOT_SAMPLED
        };
        // Our trace ids are random, so a trace started here says so (Level 2); a
        // continued trace keeps the caller's `random` flag as received. Sampling never
        // looks at it.
        let random = parent.map_or(RANDOM, |p| p.trace_flags() & RANDOM);
        Span {
            // The tracestate is kept as the validated header and only turned into
            // OpenTelemetry's form when a recorded span is exported.
            context: SpanContext::new(
                trace_id,
                self.ids.new_span_id(),
                sampled_flag | random,
                false,
                TraceState::NONE,
            ),
            tracestate: parent.and(decision.tracestate.clone()),
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id()),
            parent_is_remote: parent.is_some(),
            kind: SpanKind::Server,
            start: SystemTime::now(),
            attributes: if sampled {
                Vec::with_capacity(ATTRIBUTE_CAPACITY)
            } else {
                Vec::new()
            },
            links: if sampled { links } else { Vec::new() },
        }
    }

    /// Starts a child of `parent` (a CLIENT span per upstream attempt).
    pub fn start_child(&self, parent: &Span, kind: SpanKind) -> Span {
        let p = &parent.context;
        Span {
            context: SpanContext::new(
                p.trace_id(),
                self.ids.new_span_id(),
                p.trace_flags(),
                false,
                TraceState::NONE,
            ),
            tracestate: parent.tracestate.clone(),
            parent_span_id: p.span_id(),
            parent_is_remote: false,
            kind,
            start: SystemTime::now(),
            attributes: if p.is_sampled() {
                Vec::with_capacity(ATTRIBUTE_CAPACITY)
            } else {
                Vec::new()
            },
            links: Vec::new(),
        }
    }

    /// Ends `span` now and queues it for export if sampled. Never waits: a full queue
    /// drops the span and counts it.
    pub fn end(&self, span: Span, name: impl Into<Cow<'static, str>>, status: Status) {
        self.end_at(span, name, status, SystemTime::now());
    }

    /// Ends `span` at `end`, a moment already past (e.g. when its last byte went by).
    pub fn end_at(
        &self,
        span: Span,
        name: impl Into<Cow<'static, str>>,
        status: Status,
        end: SystemTime,
    ) {
        if !span.is_recording() {
            return;
        }
        // Only a continued trace has a tracestate; OpenTelemetry's form of it is what
        // the span carries.
        let trace_state = span
            .tracestate
            .as_ref()
            .map(|header| export_trace_state(header).header());
        let name = name.into();
        let view = SpanView {
            context: &span.context,
            trace_state: trace_state.as_deref().unwrap_or(""),
            parent_span_id: span.parent_span_id,
            parent_is_remote: span.parent_is_remote,
            kind: &span.kind,
            name: &name,
            start: span.start,
            // A clock read before the start (a step of the wall clock) never makes a
            // negative span.
            end: end.max(span.start),
            attributes: &span.attributes,
            links: &span.links,
            status: &status,
        };
        self.queue.push(&view);
    }

    /// The gateway's role, for the `traverse.role` attribute.
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Whether admin and health traffic is traced too.
    pub fn add_internals(&self) -> bool {
        self.add_internals
    }

    /// The response header that returns the trace id to the client, if configured.
    pub fn trace_id_response_header(&self) -> Option<&http::HeaderName> {
        self.trace_id_response_header.as_ref()
    }

    /// Export counters, for the admin API and metrics.
    pub fn stats(&self) -> &ExportStats {
        &self.queue.stats
    }
}

impl Span {
    /// The context propagated downstream of this span.
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// The trace's validated `tracestate`, to forward unchanged.
    pub fn tracestate(&self) -> Option<&http::HeaderValue> {
        self.tracestate.as_ref()
    }

    pub fn trace_id(&self) -> TraceId {
        self.context.trace_id()
    }

    /// Sampled spans are recorded and exported; the others only propagate context.
    pub fn is_recording(&self) -> bool {
        self.context.is_sampled()
    }

    /// Sets an attribute (kept only when recording, so unsampled requests cost nothing).
    pub fn set(&mut self, attribute: impl FnOnce() -> KeyValue) {
        if self.is_recording() {
            self.attributes.push(attribute());
        }
    }
}

/// Owns the export thread; [`TracePipeline::shutdown`] flushes what is queued.
#[derive(Debug)]
pub struct TracePipeline {
    thread: ExportThread,
}

impl TracePipeline {
    /// Starts the export thread and returns the tracer the data plane uses.
    pub fn start(settings: TraceSettings) -> Result<(Arc<Tracer>, TracePipeline), StartError> {
        // Encoded once: every batch carries the same resource and scope.
        let encoder = TraceRequestEncoder::new(
            &ResourceAttributesWithSchema::from(&settings.resource),
            ProtoScope {
                name: "traverse".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..ProtoScope::default()
            },
        );
        let queue = Arc::new(TraceQueue::new(
            encoder,
            settings.queue.max_size,
            settings.queue.max_batch_size,
        ));
        let thread = ExportThread::spawn_source(
            "traverse-otlp",
            Arc::clone(&queue),
            settings.exporter.clone(),
            settings.queue.schedule_delay,
        )?;

        let tracer = Tracer::new(
            settings.sampler,
            queue,
            settings.role,
            settings.add_internals,
            settings.trace_id_response_header,
        );
        Ok((Arc::new(tracer), TracePipeline { thread }))
    }

    /// Exports what is queued and stops, within `bound` even when the collector is
    /// unreachable. Returns false when spans had to be abandoned at the bound.
    pub fn shutdown(self, bound: Duration) -> bool {
        self.thread.shutdown(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::OtlpRequest;
    use crate::pipeline::Source;
    use crate::propagation::TrustPolicy;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
    use prost::Message;

    /// The spans a tracer queued, read back decoded from its export requests.
    struct Queued(Arc<TraceQueue>, std::cell::RefCell<Vec<ProtoSpan>>);

    impl Queued {
        fn pop(&self) -> Option<ProtoSpan> {
            let mut spans = self.1.borrow_mut();
            if spans.is_empty() {
                self.0.flush();
                while let Some(batch) = self.0.next_batch(true) {
                    let request = ExportTraceServiceRequest::decode(batch.request.body())
                        .expect("an export request");
                    let decoded: Vec<ProtoSpan> = request
                        .resource_spans
                        .into_iter()
                        .flat_map(|r| r.scope_spans)
                        .flat_map(|s| s.spans)
                        .collect();
                    assert_eq!(decoded.len() as u64, batch.items);
                    spans.extend(decoded);
                }
            }
            (!spans.is_empty()).then(|| spans.remove(0))
        }
    }

    /// A tracer and its queue (four spans, in batches of two), read back with `pop`.
    fn tracer(sampler: Sampler) -> (Tracer, Queued) {
        let queue = Arc::new(TraceQueue::new(
            TraceRequestEncoder::new(
                &ResourceAttributesWithSchema::from(
                    &opentelemetry_sdk::Resource::builder_empty().build(),
                ),
                ProtoScope::default(),
            ),
            4,
            2,
        ));
        let tracer = Tracer::new(sampler, Arc::clone(&queue), "standalone", false, None);
        (tracer, Queued(queue, Default::default()))
    }

    fn id(bytes: &[u8]) -> SpanId {
        SpanId::from_bytes(bytes.try_into().expect("8 bytes"))
    }

    fn remote(flags: TraceFlags) -> SpanContext {
        SpanContext::new(
            TraceId::from(0xabc),
            SpanId::from(0xdef),
            flags,
            true,
            TraceState::NONE,
        )
    }

    fn decision(policy: TrustPolicy, inbound: Option<SpanContext>) -> Decision {
        let extracted = crate::propagation::Extracted {
            tracestate: inbound
                .as_ref()
                .map(|_| http::HeaderValue::from_static("vendor=1,t@long-system-id=2")),
            context: inbound,
            ..Default::default()
        };
        crate::propagation::decide(policy, &extracted)
    }

    #[test]
    fn continued_trace_keeps_trace_id_parent_and_tracestate() {
        let (tracer, rx) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        let server = tracer.start_server(&decision(
            TrustPolicy::Continue,
            Some(remote(TraceFlags::SAMPLED)),
        ));
        assert_eq!(server.trace_id(), TraceId::from(0xabc));
        assert!(server.is_recording(), "the caller's sampled flag wins");
        let forwarded = Some(&http::HeaderValue::from_static(
            "vendor=1,t@long-system-id=2",
        ));
        assert_eq!(server.tracestate(), forwarded);
        let client = tracer.start_child(&server, SpanKind::Client);
        assert_eq!(client.tracestate(), forwarded, "forwarded unchanged");
        assert_eq!(client.trace_id(), server.trace_id());
        assert_ne!(client.context().span_id(), server.context().span_id());
        let server_id = server.context().span_id();
        tracer.end(client, "GET r", Status::Unset);
        tracer.end(server, "GET r", Status::Unset);
        let client = rx.pop().expect("client span");
        let server = rx.pop().expect("server span");
        assert_eq!(id(&client.parent_span_id), server_id);
        // Sampled, the parent's locality known (0x100), remote (0x200) or not.
        assert_eq!(client.flags, 0x101);
        assert_eq!(id(&server.parent_span_id), SpanId::from(0xdef));
        assert_eq!(server.flags, 0x301);
        // The exported form keeps what OpenTelemetry can represent.
        assert_eq!(server.trace_state, "vendor=1");
        assert_eq!(client.trace_state, "vendor=1");
    }

    #[test]
    fn random_flag_set_on_new_traces_and_kept_as_received() {
        let (tracer, _rx) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let flags = |span: &Span| span.context().trace_flags().to_u8();
        // (inbound flags, policy, flags of the SERVER span)
        let cases = [
            (None, TrustPolicy::Continue, 0x03),
            (Some(0x01), TrustPolicy::Continue, 0x01),
            (Some(0x03), TrustPolicy::Continue, 0x03),
            (Some(0x02), TrustPolicy::Continue, 0x02),
            (Some(0x00), TrustPolicy::Continue, 0x00),
            (Some(0x00), TrustPolicy::NewAndLink, 0x03),
            (Some(0x01), TrustPolicy::Ignore, 0x03),
        ];
        for (inbound, policy, expected) in cases {
            let context = inbound.map(|f| remote(TraceFlags::new(f)));
            let server = tracer.start_server(&decision(policy, context));
            assert_eq!(flags(&server), expected, "{inbound:?} {policy:?}");
            let client = tracer.start_child(&server, SpanKind::Client);
            assert_eq!(flags(&client), expected, "children inherit the flags");
        }
        // Unsampled by our sampler: random without sampled.
        let (never, _rx) = self::tracer(Sampler::AlwaysOff);
        assert_eq!(flags(&never.start_server(&Decision::default())), 0x02);
    }

    #[test]
    fn end_at_uses_the_moment_given() {
        let (tracer, rx) = tracer(Sampler::AlwaysOn);
        let span = tracer.start_server(&Decision::default());
        let end = SystemTime::now();
        std::thread::sleep(Duration::from_millis(5));
        tracer.end_at(span, "GET", Status::Unset, end);
        let nanos = end
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos();
        assert_eq!(
            u128::from(rx.pop().expect("span").end_time_unix_nano),
            nanos
        );
    }

    #[test]
    fn unsampled_caller_is_not_recorded_but_keeps_propagating() {
        let (tracer, rx) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let server = tracer.start_server(&decision(
            TrustPolicy::Continue,
            Some(remote(TraceFlags::NOT_SAMPLED)),
        ));
        assert!(!server.is_recording());
        let client = tracer.start_child(&server, SpanKind::Client);
        assert!(client.context().is_valid());
        assert!(!client.context().is_sampled());
        tracer.end(client, "GET", Status::Unset);
        tracer.end(server, "GET", Status::Unset);
        assert!(rx.pop().is_none(), "nothing exported");
    }

    #[test]
    fn new_and_link_starts_a_root_linked_to_the_caller() {
        let (tracer, rx) = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let server = tracer.start_server(&decision(
            TrustPolicy::NewAndLink,
            Some(remote(TraceFlags::NOT_SAMPLED)),
        ));
        assert_ne!(server.trace_id(), TraceId::from(0xabc));
        assert!(server.is_recording(), "a new root follows our own sampler");
        assert_eq!(server.tracestate(), None, "a new trace has no tracestate");
        tracer.end(server, "GET", Status::Unset);
        let span = rx.pop().expect("span");
        assert!(span.parent_span_id.is_empty(), "a root");
        assert_eq!(span.links.len(), 1);
        assert_eq!(id(&span.links[0].span_id), SpanId::from(0xdef));
    }

    #[test]
    fn ratio_zero_samples_nothing_new() {
        let (tracer, rx) = tracer(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.0,
        ))));
        for _ in 0..100 {
            let server = tracer.start_server(&Decision::default());
            assert!(server.context().is_valid());
            tracer.end(server, "GET", Status::Unset);
        }
        assert!(rx.pop().is_none());
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (tracer, _rx) = tracer(Sampler::AlwaysOn);
        for _ in 0..10 {
            let span = tracer.start_server(&Decision::default());
            tracer.end(span, "GET", Status::Unset);
        }
        // Two batches of two fit in the queue; the three batches after them are dropped
        // whole.
        let stats = tracer.stats().snapshot();
        assert_eq!(stats.dropped, 6);
        assert_eq!(stats.ended, 10, "queued and dropped spans were both ended");
    }

    #[test]
    fn unsampled_spans_are_not_ended_for_export() {
        let (tracer, _rx) = tracer(Sampler::AlwaysOff);
        let span = tracer.start_server(&Decision::default());
        tracer.end(span, "GET", Status::Unset);
        assert_eq!(tracer.stats().snapshot().ended, 0);
    }
}
