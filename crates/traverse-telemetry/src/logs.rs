//! OTLP log records (access log records and the gateway's own log lines) on their way
//! to a collector: pushed without waiting into a bounded queue, exported in batches
//! by a dedicated thread. What cannot be queued or delivered is counted.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_sdk::Resource;
use traverse_config::ExportQueue;

pub use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::export::ExporterOptions;
use crate::pipeline::{resource_proto, BatchQueue, ExportThread, StartError, StatsSnapshot};

/// Everything a [`LogPipeline`] needs.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Where the records go; an HTTP endpoint names the logs path
    /// (`.../v1/logs`).
    pub exporter: ExporterOptions,
    /// Describes the gateway on every exported batch.
    pub resource: Resource,
    pub queue: ExportQueue,
}

/// The producer side of a log pipeline, shared as `Arc<LogSink>`.
#[derive(Debug)]
pub struct LogSink {
    queue: Arc<BatchQueue<LogRecord>>,
}

impl LogSink {
    /// Queues `record` without waiting; a full queue drops it and counts the drop.
    pub fn push(&self, record: LogRecord) {
        self.queue.push(record);
    }

    /// Export counters, for the admin API and metrics.
    pub fn stats(&self) -> StatsSnapshot {
        self.queue.stats.snapshot()
    }
}

/// Owns a log export thread; [`LogPipeline::shutdown`] flushes what is queued.
#[derive(Debug)]
pub struct LogPipeline {
    thread: ExportThread,
}

impl LogPipeline {
    /// Starts the export thread `thread_name` and returns the sink producers push
    /// into. Fails when the exporter configuration is unusable or the thread
    /// cannot start.
    pub fn start(
        settings: LogSettings,
        thread_name: &str,
    ) -> Result<(Arc<LogSink>, LogPipeline), StartError> {
        let queue = Arc::new(BatchQueue::new(
            settings.queue.max_size,
            settings.queue.max_batch_size,
        ));
        let encoder = Encoder::new(&settings.resource);
        let thread = ExportThread::spawn(
            thread_name,
            Arc::clone(&queue),
            settings.exporter,
            settings.queue.schedule_delay,
            move |records| encoder.encode(records),
        )?;
        Ok((Arc::new(LogSink { queue }), LogPipeline { thread }))
    }

    /// Exports what is queued and stops, within `bound` even when the collector is
    /// unreachable. Returns false when records had to be abandoned at the bound.
    pub fn shutdown(self, bound: Duration) -> bool {
        self.thread.shutdown(bound)
    }
}

/// Wraps batches of records in the gateway's resource and scope.
struct Encoder {
    // Built once: every batch carries the same resource and scope.
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    schema_url: String,
    scope: InstrumentationScope,
}

impl Encoder {
    fn new(resource: &Resource) -> Self {
        Encoder {
            resource: resource_proto(resource),
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
            scope: InstrumentationScope {
                name: "traverse".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
        }
    }

    fn encode(&self, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: self.schema_url.clone(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use prost::Message;
    use tokio::time::Instant;

    use super::*;
    use crate::export::test_support::{serve_http, HttpCollector};
    use crate::export::{Compression, Protocol, TlsOptions};

    fn settings(endpoint: String, queue: ExportQueue) -> LogSettings {
        LogSettings {
            exporter: ExporterOptions {
                protocol: Protocol::HttpProtobuf,
                endpoint,
                headers: Vec::new(),
                timeout: Duration::from_secs(2),
                compression: Compression::None,
                tls: TlsOptions::default(),
            },
            resource: Resource::builder_empty()
                .with_attribute(KeyValue::new("service.name", "gateway"))
                .build(),
            queue,
        }
    }

    fn record(body: &str) -> LogRecord {
        LogRecord {
            severity_text: "INFO".to_owned(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body.to_owned())),
            }),
            ..LogRecord::default()
        }
    }

    fn bodies(request: &ExportLogsServiceRequest) -> Vec<String> {
        request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .filter_map(|r| match r.body.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every logs request the collector received, decoded.
    fn received(collector: &Mutex<HttpCollector>) -> Vec<ExportLogsServiceRequest> {
        collector
            .lock()
            .expect("lock")
            .bodies
            .iter()
            .map(|body| ExportLogsServiceRequest::decode(body.as_slice()).expect("logs request"))
            .collect()
    }

    // Multi-threaded so the collector keeps answering while `shutdown` blocks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivers_records_with_resource_and_scope() {
        let (url, collector) = serve_http("/v1/logs", "200 OK").await;
        let queue = ExportQueue {
            max_size: 64,
            max_batch_size: 2,
            schedule_delay: Duration::from_millis(20),
        };
        let (sink, pipeline) =
            LogPipeline::start(settings(url, queue), "test-otlp-logs").expect("start");

        for body in ["one", "two", "three"] {
            sink.push(record(body));
        }
        let waited = Instant::now();
        while sink.stats().exported < 3 && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(pipeline.shutdown(Duration::from_secs(1)));

        assert_eq!(
            sink.stats(),
            StatsSnapshot {
                ended: 3,
                exported: 3,
                ..StatsSnapshot::default()
            }
        );
        let requests = received(&collector);
        let mut all: Vec<String> = requests.iter().flat_map(bodies).collect();
        all.sort();
        assert_eq!(all, ["one", "three", "two"]);
        let head = &collector.lock().expect("lock").headers[0];
        assert!(head.starts_with("post /v1/logs http/1.1"), "{head}");
        for request in &requests {
            let [resource_logs] = request.resource_logs.as_slice() else {
                panic!("one resource per request: {request:?}");
            };
            let resource = resource_logs.resource.as_ref().expect("resource");
            assert_eq!(resource.attributes.len(), 1);
            assert_eq!(resource.attributes[0].key, "service.name");
            let [scope_logs] = resource_logs.scope_logs.as_slice() else {
                panic!("one scope per request: {request:?}");
            };
            let scope = scope_logs.scope.as_ref().expect("scope");
            assert_eq!(scope.name, "traverse");
            assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
            assert_eq!(scope_logs.log_records[0].severity_text, "INFO");
        }
    }

    #[test]
    fn full_queue_drops_and_counts() {
        // No export thread drains this queue, so what overflows is certain.
        let sink = LogSink {
            queue: Arc::new(BatchQueue::new(4, 4)),
        };

        for i in 0..10 {
            sink.push(record(&i.to_string()));
        }

        assert_eq!(
            sink.stats(),
            StatsSnapshot {
                ended: 10,
                dropped: 6,
                ..StatsSnapshot::default()
            }
        );
    }

    #[tokio::test]
    async fn shutdown_is_bounded_when_the_collector_is_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1/logs", listener.local_addr().expect("addr"));
        drop(listener);
        let queue = ExportQueue {
            max_size: 64,
            max_batch_size: 100,
            schedule_delay: Duration::from_secs(3600),
        };
        let (sink, pipeline) =
            LogPipeline::start(settings(url, queue), "test-otlp-logs").expect("start");
        for i in 0..5 {
            sink.push(record(&i.to_string()));
        }

        let started = std::time::Instant::now();
        let finished = pipeline.shutdown(Duration::from_millis(300));

        let elapsed = started.elapsed();
        assert!(finished, "the thread stops at the bound");
        assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
        let stats = sink.stats();
        assert_eq!(stats.exported, 0);
        assert_eq!(stats.failed, 5);
        assert_eq!(stats.ended, 5, "every record ended is accounted for");
        assert_eq!(stats.export_errors, 1);
    }

    #[test]
    fn bad_exporter_configuration_fails_start() {
        let queue = ExportQueue::default();
        let result = LogPipeline::start(settings("collector:4318".to_owned(), queue), "x");
        assert!(matches!(result, Err(StartError::Exporter(_))), "{result:?}");
    }
}
