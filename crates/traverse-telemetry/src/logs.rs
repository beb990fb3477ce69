//! OTLP log records (access log records and the gateway's own log lines) on their way
//! to a collector: pushed without waiting into a bounded queue, exported in batches
//! by a dedicated thread. What cannot be queued or delivered is counted.

pub use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::pipeline::StatsSnapshot;

/// The producer side of a log pipeline.
#[derive(Debug)]
pub struct LogSink {}

impl LogSink {
    /// Queues `record` without waiting; a full queue drops it and counts the drop.
    pub fn push(&self, record: LogRecord) {
        let _ = record;
        unimplemented!("log pipeline")
    }

    pub fn stats(&self) -> StatsSnapshot {
        unimplemented!("log pipeline")
    }
}
