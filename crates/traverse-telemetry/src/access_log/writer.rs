//! The queue between the request workers and the `traverse-access-log` thread, and
//! the thread itself.
//!
//! Workers only push into a bounded lock-free queue. The thread wakes every
//! [`PARK_INTERVAL`], or earlier when the queue passes a quarter of its capacity,
//! so a worker never pays a wake-up syscall per record: at low rates lines appear
//! within the interval, at high rates the thread is woken before the queue fills.
//!
//! Text lines go to the configured file, opened in append mode and created if
//! missing (external rotation must use copytruncate: the file is not reopened), or
//! to stdout. With an OTLP sink and no file, records go only to the sink.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use serde::Serialize;
use traverse_config::{AccessLog, AccessLogFormat};

use super::{AccessLogPolicy, AccessRecord};
use crate::logs::LogSink;

/// Longest a record waits in the queue when the thread is not woken early.
const PARK_INTERVAL: Duration = Duration::from_millis(50);

/// Room for the file or stdout writes of many lines per syscall.
const WRITE_BUFFER: usize = 64 * 1024;

/// The producer side of the access log, shared by the request workers.
#[derive(Debug)]
pub struct AccessLogger {
    policy: AccessLogPolicy,
    queue: ArrayQueue<AccessRecord>,
    /// Queue length at which a worker wakes the thread early.
    wake_at: usize,
    /// Set once the thread runs; unset in tests that exercise the queue alone.
    thread: OnceLock<Thread>,
    closing: AtomicBool,
    logged: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

/// A copy of the access log counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogStats {
    /// Records written (or handed to the OTLP sink).
    pub logged: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Failed writes or flushes of the text output.
    pub write_errors: u64,
}

/// Owns the access log thread; [`AccessLogWriter::shutdown`] drains the queue.
/// Dropping it stops the thread without waiting.
#[derive(Debug)]
pub struct AccessLogWriter {
    logger: Arc<AccessLogger>,
    done: mpsc::Receiver<()>,
}

impl AccessLogger {
    /// Opens the output and starts the `traverse-access-log` thread. `otlp` is the
    /// sink of the access log's OTLP pipeline, given when `config.otlp` is enabled.
    ///
    /// A file that cannot be opened (or whose directory cannot be created) is an error.
    pub fn start(
        config: &AccessLog,
        otlp: Option<Arc<LogSink>>,
    ) -> io::Result<(Arc<AccessLogger>, AccessLogWriter)> {
        let text: Option<Box<dyn Write + Send>> = match &config.file_path {
            Some(path) => Some(Box::new(open_append(path)?)),
            None if otlp.is_none() => Some(Box::new(io::stdout())),
            None => None,
        };
        let logger = Arc::new(AccessLogger::new(
            AccessLogPolicy::new(config),
            config.buffer_size,
        ));
        let mut output = Output {
            text: text.map(|sink| BufWriter::with_capacity(WRITE_BUFFER, sink)),
            otlp,
            failing: false,
        };
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::clone(&logger);
        let handle = std::thread::Builder::new()
            .name("traverse-access-log".into())
            .spawn(move || {
                shared.run(&mut output);
                let _ = done_tx.send(());
            })?;
        // Until this is set workers do not wake the thread; its timer covers that.
        let _ = logger.thread.set(handle.thread().clone());
        Ok((Arc::clone(&logger), AccessLogWriter { logger, done }))
    }

    pub(crate) fn new(policy: AccessLogPolicy, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        AccessLogger {
            policy,
            queue: ArrayQueue::new(capacity),
            wake_at: (capacity / 4).max(1),
            thread: OnceLock::new(),
            closing: AtomicBool::new(false),
            logged: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    /// Filters and header selection; the caller applies them before [`Self::log`].
    pub fn policy(&self) -> &AccessLogPolicy {
        &self.policy
    }

    /// Queues `record` without waiting; a full queue drops it and counts the drop.
    pub fn log(&self, record: AccessRecord) {
        match self.queue.push(record) {
            Ok(()) => {
                // Unparking a thread that is already awake is an atomic swap, not a
                // syscall, so only the first worker past the mark pays for a wake-up.
                if self.queue.len() >= self.wake_at {
                    if let Some(thread) = self.thread.get() {
                        thread.unpark();
                    }
                }
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> AccessLogStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AccessLogStats {
            logged: get(&self.logged),
            dropped: get(&self.dropped),
            write_errors: get(&self.write_errors),
        }
    }

    /// The thread's loop: drain, flush, sleep; on close, drain once more and stop.
    fn run(&self, output: &mut Output) {
        let mut scratch = Scratch::default();
        let mut sequence = 0u64;
        loop {
            // Read before draining, so what was queued before the close is written.
            let closing = self.closing.load(Ordering::Acquire);
            let mut wrote = false;
            while let Some(mut record) = self.queue.pop() {
                sequence += 1;
                record.request_count = Some(sequence);
                self.write(output, &record, &mut scratch);
                wrote = true;
            }
            // Flushing whenever the queue runs dry makes lines appear promptly while
            // still writing many lines per syscall under load.
            if wrote {
                self.flush(output);
            }
            if closing {
                return;
            }
            std::thread::park_timeout(PARK_INTERVAL);
        }
    }

    fn write(&self, output: &mut Output, record: &AccessRecord, scratch: &mut Scratch) {
        let line = &mut scratch.line;
        line.clear();
        let mut ok = true;
        if let Some(text) = &mut output.text {
            match self.policy.format() {
                AccessLogFormat::Json => self.policy.write_json(record, line),
                AccessLogFormat::Common => {
                    scratch.common.clear();
                    self.policy.write_common(record, &mut scratch.common);
                    line.extend_from_slice(scratch.common.as_bytes());
                }
            }
            line.push(b'\n');
            let written = text.write_all(line);
            ok = self.outcome(written, &mut output.failing);
        }
        if let Some(sink) = &output.otlp {
            // The body is the JSON line: reuse it when the text output already is JSON.
            let body = match (&output.text, self.policy.format()) {
                (Some(_), AccessLogFormat::Json) => {
                    String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned()
                }
                _ => self.policy.json(record),
            };
            sink.push(self.policy.otlp_with_body(record, body));
        }
        if ok {
            self.logged.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self, output: &mut Output) {
        if let Some(text) = &mut output.text {
            let flushed = text.flush();
            self.outcome(flushed, &mut output.failing);
        }
    }

    /// Counts a failed write; warns on the first failure of a streak and on recovery.
    fn outcome(&self, result: io::Result<()>, failing: &mut bool) -> bool {
        match result {
            Ok(()) => {
                if *failing {
                    *failing = false;
                    tracing::info!("access log writes recovered");
                }
                true
            }
            Err(error) => {
                self.write_errors.fetch_add(1, Ordering::Relaxed);
                if !*failing {
                    *failing = true;
                    tracing::warn!(%error, "access log write failed; lines are being lost");
                }
                false
            }
        }
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

impl AccessLogWriter {
    /// Writes what is queued, flushes and stops the thread. Returns false when that
    /// did not finish within `bound` (the thread then finishes on its own).
    pub fn shutdown(self, bound: Duration) -> bool {
        self.logger.close();
        self.done.recv_timeout(bound).is_ok()
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.logger.close();
    }
}

/// Where the thread writes; owned by the thread.
struct Output {
    text: Option<BufWriter<Box<dyn Write + Send>>>,
    otlp: Option<Arc<LogSink>>,
    /// In a streak of write failures (warned about once).
    failing: bool,
}

/// Line buffers reused from record to record by the thread.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    common: String,
}

/// Appends (never truncates), so lines survive restarts and copytruncate rotation.
fn open_append(path: &std::path::Path) -> io::Result<File> {
    let with_path = |error: io::Error| {
        io::Error::new(
            error.kind(),
            format!("access log file {}: {error}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(with_path)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(with_path)
}
