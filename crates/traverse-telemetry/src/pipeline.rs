//! The export side: a bounded queue drained by one dedicated thread.
//!
//! Workers only `try_send` into the queue (see [`crate::Tracer::end`]); batching,
//! encoding, network I/O and retries happen on the `traverse-otlp` thread, which runs
//! its own single-threaded runtime so a slow or unreachable collector can never
//! stall the request path. What cannot be queued or delivered is counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::export::{send_with_retry, RetryPolicy, TraceExporter};
use crate::settings::TraceSettings;
use crate::tracer::Tracer;

/// Longest a batch is retried before its spans are given up, outside shutdown.
const EXPORT_BUDGET: Duration = Duration::from_secs(30);

/// Span export counters. Monotonic; read with [`ExportStats::snapshot`].
#[derive(Debug, Default)]
pub struct ExportStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    export_errors: AtomicU64,
    retries: AtomicU64,
}

/// A copy of [`ExportStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
    /// Spans lost because their batch could not be delivered.
    pub failed: u64,
    /// Spans the collector reported as rejected (partial success).
    pub rejected: u64,
    /// Batches that could not be delivered.
    pub export_errors: u64,
    /// Export attempts beyond the first.
    pub retries: u64,
}

impl ExportStats {
    pub(crate) fn count_dropped(&self, spans: u64) {
        self.dropped.fetch_add(spans, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            exported: get(&self.exported),
            dropped: get(&self.dropped),
            failed: get(&self.failed),
            rejected: get(&self.rejected),
            export_errors: get(&self.export_errors),
            retries: get(&self.retries),
        }
    }
}

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] crate::export::ConfigError),
    #[error("could not start the export thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Owns the export thread; [`TracePipeline::shutdown`] flushes what is queued.
#[derive(Debug)]
pub struct TracePipeline {
    closing: watch::Sender<Option<Instant>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl TracePipeline {
    /// Starts the export thread and returns the tracer the data plane uses.
    pub fn start(settings: TraceSettings) -> Result<(Arc<Tracer>, TracePipeline), StartError> {
        let (queue_tx, queue_rx) = mpsc::channel(settings.queue.max_size);
        let stats = Arc::new(ExportStats::default());
        let (closing, closing_rx) = watch::channel(None);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();

        let worker = Worker {
            queue: queue_rx,
            resource: ResourceAttributesWithSchema::from(&settings.resource),
            max_batch: settings.queue.max_batch_size,
            delay: settings.queue.schedule_delay,
            stats: Arc::clone(&stats),
            closing: closing_rx,
            policy: RetryPolicy::default(),
        };
        let options = settings.exporter.clone();
        std::thread::Builder::new()
            .name("traverse-otlp".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(StartError::Thread(err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TraceExporter::new(options) {
                        Ok(exporter) => {
                            let _ = ready_tx.send(Ok(()));
                            worker.run(exporter).await;
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(StartError::Exporter(err)));
                        }
                    }
                });
                let _ = done_tx.send(());
            })?;
        ready
            .recv()
            .map_err(|_| StartError::Thread(std::io::Error::other("export thread exited")))??;

        let tracer = Tracer::new(
            settings.sampler,
            queue_tx,
            stats,
            settings.role,
            settings.add_internals,
            settings.trace_id_response_header,
        );
        Ok((Arc::new(tracer), TracePipeline { closing, done }))
    }

    /// Exports what is queued and stops, within `bound` even when the collector is
    /// unreachable. Returns false when spans had to be abandoned at the bound.
    pub fn shutdown(self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let _ = self.closing.send(Some(deadline));
        self.done
            .recv_timeout(bound + Duration::from_millis(100))
            .is_ok()
    }
}

struct Worker {
    queue: mpsc::Receiver<SpanData>,
    resource: ResourceAttributesWithSchema,
    max_batch: usize,
    delay: Duration,
    stats: Arc<ExportStats>,
    closing: watch::Receiver<Option<Instant>>,
    policy: RetryPolicy,
}

/// Spans encoded as one export request.
struct Batch {
    request: ExportTraceServiceRequest,
    spans: u64,
}

impl Worker {
    async fn run(mut self, exporter: TraceExporter) {
        let mut spans: Vec<SpanData> = Vec::with_capacity(self.max_batch);
        let mut interrupted = None;
        let mut flush_at = Instant::now() + self.delay;
        let mut failing = false;
        loop {
            tokio::select! {
                biased;
                _ = self.closing.changed() => break,
                received = self.queue.recv_many(&mut spans, self.max_batch) => {
                    if received == 0 {
                        break;
                    }
                    if spans.len() < self.max_batch {
                        continue;
                    }
                }
                _ = tokio::time::sleep_until(flush_at) => {}
            }
            flush_at = Instant::now() + self.delay;
            if spans.is_empty() {
                continue;
            }
            let batch = self.encode(std::mem::replace(
                &mut spans,
                Vec::with_capacity(self.max_batch),
            ));
            let mut closing = self.closing.clone();
            tokio::select! {
                delivered = self.send(&exporter, &batch, Instant::now() + EXPORT_BUDGET) => {
                    report(delivered, &mut failing);
                }
                // Shutdown interrupts retries; the batch is sent again under its bound.
                _ = closing.changed() => {
                    interrupted = Some(batch);
                    break;
                }
            }
        }

        // Shutdown: send what is queued before the deadline; give up on the rest.
        let deadline = (*self.closing.borrow()).unwrap_or_else(Instant::now);
        while let Ok(span) = self.queue.try_recv() {
            spans.push(span);
        }
        let mut batches: Vec<Batch> = interrupted.into_iter().collect();
        while !spans.is_empty() {
            let rest = spans.split_off(spans.len().min(self.max_batch));
            batches.push(self.encode(std::mem::replace(&mut spans, rest)));
        }
        for batch in batches {
            let sent = tokio::time::timeout_at(deadline, self.send(&exporter, &batch, deadline));
            if sent.await.is_err() {
                self.stats.failed.fetch_add(batch.spans, Ordering::Relaxed);
                self.stats.export_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let lost = self.stats.snapshot();
        if lost.failed > 0 || lost.dropped > 0 {
            tracing::warn!(
                dropped = lost.dropped,
                failed = lost.failed,
                "trace export stopped; some spans were never delivered"
            );
        }
    }

    fn encode(&self, spans: Vec<SpanData>) -> Batch {
        let count = spans.len() as u64;
        Batch {
            request: ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(spans, &self.resource),
            },
            spans: count,
        }
    }

    /// Sends one batch with retries; returns the error text when it was given up.
    async fn send(
        &self,
        exporter: &TraceExporter,
        batch: &Batch,
        deadline: Instant,
    ) -> Result<(), String> {
        let (attempts, outcome) =
            send_with_retry(exporter, &batch.request, &self.policy, deadline).await;
        self.stats
            .retries
            .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        match outcome {
            Ok(accepted) => {
                let rejected = u64::try_from(accepted.rejected_spans)
                    .unwrap_or(0)
                    .min(batch.spans);
                self.stats
                    .exported
                    .fetch_add(batch.spans - rejected, Ordering::Relaxed);
                self.stats.rejected.fetch_add(rejected, Ordering::Relaxed);
                if rejected > 0 {
                    tracing::warn!(rejected, message = %accepted.message, "collector rejected spans");
                }
                Ok(())
            }
            Err(error) => {
                self.stats.failed.fetch_add(batch.spans, Ordering::Relaxed);
                self.stats.export_errors.fetch_add(1, Ordering::Relaxed);
                Err(error.to_string())
            }
        }
    }
}

/// Logs the first failure of a streak and the recovery, not every batch.
fn report(delivered: Result<(), String>, failing: &mut bool) {
    match delivered {
        Err(error) if !*failing => {
            *failing = true;
            tracing::warn!(%error, "trace export failing; spans are being dropped");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("trace export recovered");
        }
        _ => {}
    }
}
