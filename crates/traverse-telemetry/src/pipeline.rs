//! The export side: bounded queues, each drained by one dedicated thread.
//!
//! Producers only push into a lock-free bounded `BatchQueue` (see
//! [`crate::Tracer::end`] and [`crate::logs::LogSink::push`]); batching, encoding,
//! network I/O and retries happen on the signal's export thread (`traverse-otlp` for
//! traces), which runs its own single-threaded runtime so a slow or unreachable
//! collector can never stall the request path. What cannot be queued or delivered is
//! counted.
//!
//! The queue and the thread know nothing of the signal: an encoder turns each batch
//! into the signal's [`OtlpRequest`]. Each signal starts its own ([`crate::TracePipeline`],
//! [`crate::logs::LogPipeline`], [`crate::metrics::push::MetricsPush`]), so this module
//! depends on none of them.
//!
//! An export thread is woken once per full batch (or by its timer), not per item:
//! waking a parked thread is a syscall, and at tens of thousands of spans per second
//! per-span wake-ups cost the workers more than recording the spans.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::export::{
    send_with_retry, ExportError, ExporterOptions, OtlpExporter, OtlpRequest, RetryPolicy,
};

/// Nice value of the export thread: below the workers, above batch jobs.
const EXPORT_THREAD_NICENESS: i32 = 10;

/// Longest a batch is retried before its items are given up, outside shutdown.
const EXPORT_BUDGET: Duration = Duration::from_secs(30);

/// Export counters of one signal. Monotonic; read with [`ExportStats::snapshot`].
#[derive(Debug, Default)]
pub struct ExportStats {
    ended: AtomicU64,
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
    /// Items (spans, log records) offered for export. Once nothing is queued or in
    /// flight, `exported + dropped + failed + rejected == ended`.
    pub ended: u64,
    /// Items (spans, log records) the collector accepted.
    pub exported: u64,
    /// Items dropped because the queue was full.
    pub dropped: u64,
    /// Items lost because their batch could not be delivered.
    pub failed: u64,
    /// Items the collector reported as rejected (partial success).
    pub rejected: u64,
    /// Batches that could not be delivered.
    pub export_errors: u64,
    /// Export attempts beyond the first.
    pub retries: u64,
}

impl ExportStats {
    /// `items` were offered for export; `queued` says whether they found room.
    pub(crate) fn offered(&self, items: u64, queued: bool) {
        self.ended.fetch_add(items, Ordering::Relaxed);
        if !queued {
            self.dropped.fetch_add(items, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Read before the outcomes: under load, what is queued or in flight is
        // counted in `ended` only.
        let ended = get(&self.ended);
        StatsSnapshot {
            ended,
            exported: get(&self.exported),
            dropped: get(&self.dropped),
            failed: get(&self.failed),
            rejected: get(&self.rejected),
            export_errors: get(&self.export_errors),
            retries: get(&self.retries),
        }
    }
}

/// Items (spans, log records) waiting for export, shared by their producers and
/// one export thread.
#[derive(Debug)]
pub(crate) struct BatchQueue<T> {
    items: ArrayQueue<T>,
    max_batch: usize,
    batch_ready: Notify,
    pub(crate) stats: ExportStats,
}

impl<T> BatchQueue<T> {
    pub(crate) fn new(capacity: usize, max_batch: usize) -> Self {
        BatchQueue {
            items: ArrayQueue::new(capacity.max(1)),
            max_batch: max_batch.clamp(1, capacity.max(1)),
            batch_ready: Notify::new(),
            stats: ExportStats::default(),
        }
    }

    /// Queues `item` without waiting; a full queue drops it and counts the drop.
    pub(crate) fn push(&self, item: T) {
        let queued = self.items.push(item).is_ok();
        self.stats.offered(1, queued);
        if queued && self.items.len() >= self.max_batch {
            self.batch_ready.notify_one();
        }
    }

    /// Takes up to one batch.
    fn pop_batch(&self) -> Vec<T> {
        let mut batch = Vec::with_capacity(self.max_batch.min(self.items.len()));
        while batch.len() < self.max_batch {
            match self.items.pop() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        batch
    }

    fn has_full_batch(&self) -> bool {
        self.items.len() >= self.max_batch
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
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

/// The OTLP form of an SDK resource (its attributes; the schema URL goes on the
/// `Resource*` message that carries it).
pub(crate) fn resource_proto(resource: &Resource) -> ProtoResource {
    ProtoResource {
        attributes: ResourceAttributesWithSchema::from(resource).attributes.0,
        ..ProtoResource::default()
    }
}

/// Where an export thread takes its batches from.
pub(crate) trait Source: Send + 'static {
    type Request: OtlpRequest;

    /// Called when the timer fires and at shutdown, before batches are taken: what
    /// waits elsewhere than in the queue (a batch being filled) is queued now.
    fn flush(&self) {}

    /// The next batch to send: a full one, or with `partial` whatever is queued.
    fn next_batch(&self, partial: bool) -> Option<Batch<Self::Request>>;

    fn stats(&self) -> &ExportStats;

    /// Notified when a full batch is ready.
    fn batch_ready(&self) -> &Notify;
}

/// A [`BatchQueue`] of items, each batch of them encoded into one request by `encode`.
struct QueueSource<T, E> {
    queue: Arc<BatchQueue<T>>,
    encode: E,
}

impl<T, R, E> Source for QueueSource<T, E>
where
    T: Send + 'static,
    R: OtlpRequest,
    E: Fn(Vec<T>) -> R + Send + 'static,
{
    type Request = R;

    fn next_batch(&self, partial: bool) -> Option<Batch<R>> {
        let queue = &self.queue;
        if !(queue.has_full_batch() || (partial && !queue.is_empty())) {
            return None;
        }
        let items = queue.pop_batch();
        let count = items.len() as u64;
        Some(Batch {
            request: (self.encode)(items),
            items: count,
        })
    }

    fn stats(&self) -> &ExportStats {
        &self.queue.stats
    }

    fn batch_ready(&self) -> &Notify {
        &self.queue.batch_ready
    }
}

impl<S: Source + Send + Sync> Source for Arc<S> {
    type Request = S::Request;

    fn flush(&self) {
        S::flush(self)
    }

    fn next_batch(&self, partial: bool) -> Option<Batch<S::Request>> {
        S::next_batch(self, partial)
    }

    fn stats(&self) -> &ExportStats {
        S::stats(self)
    }

    fn batch_ready(&self) -> &Notify {
        S::batch_ready(self)
    }
}

/// A running export thread: drains a [`Source`] (or pushes metrics) into one collector.
#[derive(Debug)]
pub(crate) struct ExportThread {
    closing: watch::Sender<Option<Instant>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl ExportThread {
    /// Starts thread `name`, which batches `queue`, turns each batch into one
    /// request with `encode` and sends it to the collector `options` names.
    /// Returns once the exporter is built, so a bad configuration is an error here.
    pub(crate) fn spawn<T, R, E>(
        name: &str,
        queue: Arc<BatchQueue<T>>,
        options: ExporterOptions,
        delay: Duration,
        encode: E,
    ) -> Result<Self, StartError>
    where
        T: Send + 'static,
        R: OtlpRequest,
        E: Fn(Vec<T>) -> R + Send + 'static,
    {
        ExportThread::spawn_source(name, QueueSource { queue, encode }, options, delay)
    }

    /// Starts thread `name`, which sends the batches of `source` to the collector
    /// `options` names, a partial one every `delay`. Returns once the exporter is built,
    /// so a bad configuration is an error here.
    pub(crate) fn spawn_source<S: Source>(
        name: &str,
        source: S,
        options: ExporterOptions,
        delay: Duration,
    ) -> Result<Self, StartError> {
        ExportThread::start(name, options, move |exporter, closing| {
            let worker = Worker {
                source,
                delay,
                closing,
                policy: RetryPolicy::default(),
                quiet_until: Cell::new(None),
            };
            worker.run(exporter)
        })
    }

    /// Starts thread `name` on its own single-threaded runtime and runs `run` there
    /// with an exporter for `options`. `run` must return once the closing channel
    /// carries a deadline, having finished its work by then. Returns once the
    /// exporter is built, so a bad configuration is an error here.
    pub(crate) fn start<F, Fut>(
        name: &str,
        options: ExporterOptions,
        run: F,
    ) -> Result<Self, StartError>
    where
        F: FnOnce(OtlpExporter, watch::Receiver<Option<Instant>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (closing, closing_rx) = watch::channel(None);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();

        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Encoding a batch is a burst of CPU; at a lower priority it waits for
                // an idle moment instead of preempting a worker mid-request (which shows
                // up as tail latency). Failing to lower it is harmless.
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    EXPORT_THREAD_NICENESS,
                );
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
                    match OtlpExporter::new(options) {
                        Ok(exporter) => {
                            let _ = ready_tx.send(Ok(()));
                            run(exporter, closing_rx).await;
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
        Ok(ExportThread { closing, done })
    }

    /// Exports what is queued and stops, within `bound` even when the collector is
    /// unreachable. Returns false when items had to be abandoned at the bound.
    pub(crate) fn shutdown(self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let _ = self.closing.send(Some(deadline));
        self.done
            .recv_timeout(bound + Duration::from_millis(100))
            .is_ok()
    }
}

struct Worker<S> {
    source: S,
    delay: Duration,
    closing: watch::Receiver<Option<Instant>>,
    policy: RetryPolicy,
    /// Set when the collector's last answer asked for a pause (`Retry-After`): it holds
    /// for the next batch too, not only for the retries of the batch that got it.
    quiet_until: Cell<Option<Instant>>,
}

/// Items encoded as one export request.
pub(crate) struct Batch<R> {
    pub(crate) request: R,
    pub(crate) items: u64,
}

impl<S: Source> Worker<S> {
    async fn run(mut self, exporter: OtlpExporter) {
        let mut interrupted = None;
        let mut flush_at = Instant::now() + self.delay;
        let mut failing = false;
        'serve: loop {
            let timer = tokio::select! {
                biased;
                _ = self.closing.changed() => break,
                _ = self.source.batch_ready().notified() => false,
                _ = tokio::time::sleep_until(flush_at) => true,
            };
            // Full batches go at once; on the timer, what is left goes too.
            if timer {
                self.source.flush();
            }
            while let Some(batch) = self.source.next_batch(timer) {
                let mut closing = self.closing.clone();
                tokio::select! {
                    delivered = self.send(&exporter, &batch, Instant::now() + EXPORT_BUDGET) => {
                        report::<S::Request>(delivered, &mut failing);
                    }
                    // Shutdown interrupts retries; the batch is sent again under its bound.
                    _ = closing.changed() => {
                        interrupted = Some(batch);
                        break 'serve;
                    }
                }
            }
            if timer {
                flush_at = Instant::now() + self.delay;
            }
        }

        // Shutdown: send what is queued before the deadline; give up on the rest.
        let deadline = (*self.closing.borrow()).unwrap_or_else(Instant::now);
        let mut batches: Vec<Batch<S::Request>> = interrupted.into_iter().collect();
        self.source.flush();
        while let Some(batch) = self.source.next_batch(true) {
            batches.push(batch);
        }
        let stats = self.source.stats();
        for batch in batches {
            let sent = tokio::time::timeout_at(deadline, self.send(&exporter, &batch, deadline));
            if sent.await.is_err() {
                stats.failed.fetch_add(batch.items, Ordering::Relaxed);
                stats.export_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let lost = stats.snapshot();
        if lost.failed > 0 || lost.dropped > 0 {
            tracing::warn!(
                dropped = lost.dropped,
                failed = lost.failed,
                "{} export stopped; some {} were never delivered",
                S::Request::SIGNAL,
                S::Request::ITEMS,
            );
        }
    }

    /// Sends one batch with retries; returns the error text when it was given up.
    async fn send(
        &self,
        exporter: &OtlpExporter,
        batch: &Batch<S::Request>,
        deadline: Instant,
    ) -> Result<(), String> {
        if let Some(quiet_until) = self.quiet_until.take() {
            tokio::time::sleep_until(quiet_until.min(deadline)).await;
        }
        let (attempts, outcome) =
            send_with_retry(exporter, &batch.request, &self.policy, deadline).await;
        if let Err(ExportError::Retryable {
            retry_after: Some(pause),
            ..
        }) = &outcome
        {
            // Bounded like a batch's retries: a collector asking for an hour is not
            // left alone for an hour (spans are dropped meanwhile, and counted).
            self.quiet_until
                .set(Some(Instant::now() + (*pause).min(EXPORT_BUDGET)));
        }
        let stats = self.source.stats();
        stats
            .retries
            .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        match outcome {
            Ok(accepted) => {
                // A negative or inflated count from the collector cannot make
                // the counters go wrong.
                let rejected = u64::try_from(accepted.rejected)
                    .unwrap_or(0)
                    .min(batch.items);
                stats
                    .exported
                    .fetch_add(batch.items - rejected, Ordering::Relaxed);
                stats.rejected.fetch_add(rejected, Ordering::Relaxed);
                if rejected > 0 {
                    tracing::warn!(
                        rejected,
                        message = %accepted.message,
                        "collector rejected {}",
                        S::Request::ITEMS
                    );
                }
                Ok(())
            }
            Err(error) => {
                stats.failed.fetch_add(batch.items, Ordering::Relaxed);
                stats.export_errors.fetch_add(1, Ordering::Relaxed);
                Err(error.to_string())
            }
        }
    }
}

/// Logs the first failure of a streak and the recovery, not every batch.
fn report<R: OtlpRequest>(delivered: Result<(), String>, failing: &mut bool) {
    match delivered {
        Err(error) if !*failing => {
            *failing = true;
            tracing::warn!(
                %error,
                "{} export failing; {} are being dropped",
                R::SIGNAL,
                R::ITEMS
            );
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("{} export recovered", R::SIGNAL);
        }
        _ => {}
    }
}
