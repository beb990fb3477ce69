//! Where sampled spans wait for export.
//!
//! Each worker thread encodes the spans it ends straight into its own [`SpanBatch`]
//! ([`TraceQueue::push`]); a full batch is closed into an export request and goes into a
//! bounded lock-free queue, which the `traverse-otlp` thread sends as it is. A span thus
//! costs no allocation and is copied nowhere between the worker and the socket, and the
//! workers share nothing per span: one queue push and one wake-up per batch.
//!
//! The export thread also takes a batch a worker is still filling when its timer fires
//! ([`Source::flush`]), so a span never waits longer than `scheduleDelay` on an idle
//! worker. Each worker's batch sits in a slot that the worker empties while it appends
//! and fills again after (two uncontended atomic swaps, no lock): the export thread finds
//! the slot empty in that moment and takes the batch at its next tick.

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::atomic::AtomicCell;
use thread_local::ThreadLocal;
use tokio::sync::Notify;

use crate::pipeline::{Batch, ExportStats, Source};
use crate::span_wire::{EncodedTraceRequest, SpanBatch, SpanView, TraceRequestEncoder};

/// A worker's open batch: `None` while the worker appends to it, or once taken.
type Slot = AtomicCell<Option<Box<SpanBatch>>>;

pub(crate) struct TraceQueue {
    encoder: TraceRequestEncoder,
    open: ThreadLocal<Slot>,
    /// Closed batches, with their span counts.
    requests: ArrayQueue<(EncodedTraceRequest, u64)>,
    max_batch: usize,
    batch_ready: Notify,
    pub(crate) stats: ExportStats,
}

impl TraceQueue {
    /// A queue of about `max_size` spans in batches of `max_batch` (each worker's open
    /// batch comes on top).
    pub(crate) fn new(encoder: TraceRequestEncoder, max_size: usize, max_batch: usize) -> Self {
        let max_batch = max_batch.clamp(1, max_size.max(1));
        TraceQueue {
            encoder,
            open: ThreadLocal::new(),
            requests: ArrayQueue::new((max_size / max_batch).max(1)),
            max_batch,
            batch_ready: Notify::new(),
            stats: ExportStats::default(),
        }
    }

    /// Encodes `span` into this thread's batch, and queues the batch once full. Never
    /// waits: a full queue drops the batch and counts its spans.
    pub(crate) fn push(&self, span: &SpanView<'_>) {
        let slot = self.open.get_or(Slot::default);
        let mut batch = slot
            .take()
            .unwrap_or_else(|| Box::new(self.encoder.open(self.max_batch)));
        batch.push(span);
        if batch.len() >= self.max_batch {
            self.queue(*batch);
        } else {
            slot.store(Some(batch));
        }
    }

    fn queue(&self, batch: SpanBatch) {
        let spans = batch.len() as u64;
        let queued = self
            .requests
            .push((self.encoder.close(batch), spans))
            .is_ok();
        self.stats.offered(spans, queued);
        if queued {
            self.batch_ready.notify_one();
        }
    }
}

impl std::fmt::Debug for TraceQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceQueue")
            .field("queued_batches", &self.requests.len())
            .field("max_batch", &self.max_batch)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Source for TraceQueue {
    type Request = EncodedTraceRequest;

    fn flush(&self) {
        for slot in self.open.iter() {
            if let Some(batch) = slot.take() {
                self.queue(*batch);
            }
        }
    }

    /// Every queued request is a batch: `partial` changes nothing.
    fn next_batch(&self, _partial: bool) -> Option<Batch<EncodedTraceRequest>> {
        self.requests
            .pop()
            .map(|(request, items)| Batch { request, items })
    }

    fn stats(&self) -> &ExportStats {
        &self.stats
    }

    fn batch_ready(&self) -> &Notify {
        &self.batch_ready
    }
}
