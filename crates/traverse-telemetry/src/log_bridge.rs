//! The gateway's own log lines over OTLP: [`OtlpLogLayer`] turns `tracing` events into
//! OTLP log records and pushes them into a [`LogSink`] without waiting.
//!
//! A record carries:
//! - `time_unix_nano` and `observed_time_unix_nano`: the moment of the event;
//! - `severity_number` and `severity_text` from the level (TRACE 1, DEBUG 5, INFO 9,
//!   WARN 13, ERROR 17; texts `TRACE` .. `ERROR`);
//! - `body`: the `message` field (the formatted text of `info!("...")`);
//! - one attribute per other field, typed: `i64`, `bool`, `f64`, strings and bytes as
//!   such; a `u64`/`i128`/`u128` beyond `i64` as its decimal string; an error as its
//!   message followed by its sources (`outer: inner`); anything else as its `Debug` text;
//! - `code.namespace`: the event's target, which is its module path unless the event
//!   names another (`target: "..."`). Semantic conventions have deprecated that key in
//!   favour of `code.function.name`, but a target names no function, and no current key
//!   names a module;
//! - `code.file.path` and `code.line.number`, where the event was written, when known.
//!
//! No trace or span ids: these are the gateway's logs, not a request's.
//!
//! Records bridged from the `log` crate (Pingora logs through it) arrive with target
//! `log` and their origin in `log.*` fields; those become the target, file and line
//! above instead of attributes.
//!
//! Events of the exporter's own machinery (see [`EXPORTER_TARGETS`]) are never exported:
//! exporting them would report on their own export, without end when the collector is
//! down. That includes `h2`, which the HTTP/2 data plane uses as well.
//!
//! The layer exports every event that reaches it: give it a per-layer filter
//! (`Layer::with_filter`) to choose levels.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_semantic_conventions::attribute::{CODE_FILE_PATH, CODE_LINE_NUMBER};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::logs::LogSink;

/// The attribute holding the event's target (see the module documentation).
pub const TARGET_ATTRIBUTE: &str = "code.namespace";

/// Targets (crates, or modules of this crate) whose events are not exported: the OTLP
/// exporter's own code and the libraries it sends through. A target matches a prefix
/// that ends at a `::` boundary.
pub const EXPORTER_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "h2",
    "tonic",
    "tower",
    "rustls",
    "traverse_telemetry::pipeline",
    "traverse_telemetry::logs",
    "traverse_telemetry::export",
];

/// A `tracing` layer that exports events as OTLP log records into a [`LogSink`].
#[derive(Debug, Clone)]
pub struct OtlpLogLayer {
    sink: Arc<LogSink>,
}

impl OtlpLogLayer {
    pub fn new(sink: Arc<LogSink>) -> Self {
        OtlpLogLayer { sink }
    }
}

thread_local! {
    /// Set while this thread pushes a record: an event raised meanwhile (by the sink,
    /// or by whatever it calls) is not exported, so it cannot recurse.
    static PUSHING: Cell<bool> = const { Cell::new(false) };
}

impl<S: Subscriber> Layer<S> for OtlpLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if PUSHING.get() {
            return;
        }
        if let Some(record) = record_for(event) {
            PUSHING.set(true);
            self.sink.push(record);
            PUSHING.set(false);
        }
    }
}

/// The log record for `event`, or `None` when it comes from the exporter's own
/// machinery.
pub fn record_for(event: &Event<'_>) -> Option<LogRecord> {
    let metadata = event.metadata();
    // Checked before the fields are visited: that is the common case of a skipped event.
    if is_exporters_own(metadata.target()) {
        return None;
    }
    let mut fields = Fields::default();
    event.record(&mut fields);
    let target = fields.log_target.take();
    if target.as_deref().is_some_and(is_exporters_own) {
        return None;
    }
    let mut attributes = fields.attributes;
    attributes.push(attribute(
        TARGET_ATTRIBUTE,
        any_value::Value::StringValue(target.unwrap_or_else(|| metadata.target().to_owned())),
    ));
    if let Some(file) = fields
        .log_file
        .or_else(|| metadata.file().map(str::to_owned))
    {
        attributes.push(attribute(
            CODE_FILE_PATH,
            any_value::Value::StringValue(file),
        ));
    }
    if let Some(line) = fields.log_line.or_else(|| metadata.line().map(i64::from)) {
        attributes.push(attribute(
            CODE_LINE_NUMBER,
            any_value::Value::IntValue(line),
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        });
    let level = *metadata.level();
    Some(LogRecord {
        time_unix_nano: now,
        observed_time_unix_nano: now,
        severity_number: severity(level) as i32,
        severity_text: level.as_str().to_owned(),
        body: fields.body.map(|value| AnyValue { value: Some(value) }),
        attributes,
        ..LogRecord::default()
    })
}

fn is_exporters_own(target: &str) -> bool {
    EXPORTER_TARGETS.iter().any(|prefix| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

fn severity(level: Level) -> SeverityNumber {
    match level {
        Level::TRACE => SeverityNumber::Trace,
        Level::DEBUG => SeverityNumber::Debug,
        Level::INFO => SeverityNumber::Info,
        Level::WARN => SeverityNumber::Warn,
        Level::ERROR => SeverityNumber::Error,
    }
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// An event's fields, sorted into body, attributes and the origin of a `log` record.
#[derive(Default)]
struct Fields {
    body: Option<any_value::Value>,
    attributes: Vec<KeyValue>,
    log_target: Option<String>,
    log_file: Option<String>,
    log_line: Option<i64>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: any_value::Value) {
        use any_value::Value::{IntValue, StringValue};
        match (field.name(), value) {
            ("message", value) => self.body = Some(value),
            // Fields of records bridged from the `log` crate (tracing-log).
            ("log.target", StringValue(target)) => self.log_target = Some(target),
            ("log.file", StringValue(file)) => self.log_file = Some(file),
            ("log.line", IntValue(line)) => self.log_line = Some(line),
            // The target already says where it came from.
            ("log.module_path", _) => {}
            (name, value) => self.attributes.push(attribute(name, value)),
        }
    }

    /// An integer as OTLP's `i64` when it fits, else exactly, as its decimal string.
    fn put_integer<T: TryInto<i64> + fmt::Display + Copy>(&mut self, field: &Field, value: T) {
        let value = match value.try_into() {
            Ok(value) => any_value::Value::IntValue(value),
            Err(_) => any_value::Value::StringValue(value.to_string()),
        };
        self.put(field, value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, any_value::Value::DoubleValue(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, any_value::Value::IntValue(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put_integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put_integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put_integer(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, any_value::Value::BoolValue(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, any_value::Value::StringValue(value.to_owned()));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put(field, any_value::Value::BytesValue(value.to_vec()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The causes are what makes an error actionable; Display alone shows the outermost.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, any_value::Value::StringValue(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, any_value::Value::StringValue(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps what `record_for` makes of every event, as the real layer would push it.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<LogRecord>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if let Some(record) = record_for(event) {
                self.0.lock().expect("lock").push(record);
            }
        }
    }

    /// The records made of the events `emit` raises.
    fn records(emit: impl FnOnce()) -> Vec<LogRecord> {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, emit);
        let records = capture.0.lock().expect("lock").clone();
        records
    }

    fn value(record: &LogRecord, key: &str) -> Option<any_value::Value> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    fn text(value: &str) -> Option<any_value::Value> {
        Some(any_value::Value::StringValue(value.to_owned()))
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reload failed")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn event_becomes_record_with_typed_attributes() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let error = Outer(std::io::Error::other("disk full"));
        let records = records(|| {
            tracing::warn!(
                count = 3i64,
                big = u64::MAX,
                small = 7u64,
                ratio = 0.5,
                ok = false,
                name = "web",
                addr = ?"10.0.0.1:80",
                error = &error as &(dyn std::error::Error + 'static),
                "upstream {} is slow",
                "api"
            );
        });
        let [record] = records.as_slice() else {
            panic!("one record: {records:?}");
        };

        assert_eq!(record.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(
            record.body.as_ref().and_then(|b| b.value.clone()),
            text("upstream api is slow")
        );
        assert!(u128::from(record.time_unix_nano) >= before);
        assert_eq!(record.observed_time_unix_nano, record.time_unix_nano);
        assert!(record.trace_id.is_empty() && record.span_id.is_empty());

        use any_value::Value::{BoolValue, DoubleValue, IntValue};
        assert_eq!(value(record, "count"), Some(IntValue(3)));
        assert_eq!(value(record, "big"), text("18446744073709551615"));
        assert_eq!(value(record, "small"), Some(IntValue(7)));
        assert_eq!(value(record, "ratio"), Some(DoubleValue(0.5)));
        assert_eq!(value(record, "ok"), Some(BoolValue(false)));
        assert_eq!(value(record, "name"), text("web"));
        assert_eq!(value(record, "addr"), text("\"10.0.0.1:80\""));
        assert_eq!(value(record, "error"), text("reload failed: disk full"));
        assert_eq!(value(record, "message"), None);
        assert_eq!(
            value(record, TARGET_ATTRIBUTE),
            text("traverse_telemetry::log_bridge::tests")
        );
        assert_eq!(value(record, CODE_FILE_PATH), text(file!()));
        assert!(matches!(
            value(record, CODE_LINE_NUMBER),
            Some(IntValue(line)) if line > 0
        ));
    }

    #[test]
    fn levels_map_to_severities() {
        let records = records(|| {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let severities: Vec<_> = records
            .iter()
            .map(|r| (r.severity_number, r.severity_text.as_str()))
            .collect();
        assert_eq!(
            severities,
            [
                (1, "TRACE"),
                (5, "DEBUG"),
                (9, "INFO"),
                (13, "WARN"),
                (17, "ERROR")
            ]
        );
    }

    #[test]
    fn exporter_events_are_not_exported() {
        let records = records(|| {
            tracing::info!(target: "hyper", "a");
            tracing::info!(target: "hyper::proto::h1", "b");
            tracing::info!(target: "hyper_util::client::legacy", "c");
            tracing::info!(target: "h2::codec", "d");
            tracing::info!(target: "tonic::transport", "e");
            tracing::info!(target: "tower::buffer", "f");
            tracing::info!(target: "rustls::client", "g");
            tracing::info!(target: "traverse_telemetry::pipeline", "h");
            tracing::info!(target: "traverse_telemetry::logs::queue", "i");
            tracing::info!(target: "traverse_telemetry::export::retry", "j");
            // Neighbours of those names are exported.
            tracing::info!(target: "hyperion", "kept 1");
            tracing::info!(target: "h2c_probe", "kept 2");
            tracing::info!(target: "traverse_telemetry::logsink", "kept 3");
            tracing::info!(target: "traverse_proxy::h2", "kept 4");
        });
        let bodies: Vec<_> = records
            .iter()
            .map(|r| r.body.clone().and_then(|b| b.value))
            .collect();
        assert_eq!(
            bodies,
            [
                text("kept 1"),
                text("kept 2"),
                text("kept 3"),
                text("kept 4")
            ]
        );
    }

    #[test]
    fn log_crate_records_use_their_origin() {
        // The shape in which tracing-log hands on a `log` record.
        let records = records(|| {
            tracing::event!(
                target: "log",
                Level::WARN,
                log.target = "pingora_core::connectors",
                log.module_path = "pingora_core::connectors",
                log.file = "src/connectors/mod.rs",
                log.line = 42u64,
                "connect failed"
            );
            tracing::event!(target: "log", Level::WARN, log.target = "rustls::conn", "bad");
        });
        let [record] = records.as_slice() else {
            panic!("one record (the rustls one is the exporter's): {records:?}");
        };
        assert_eq!(
            value(record, TARGET_ATTRIBUTE),
            text("pingora_core::connectors")
        );
        assert_eq!(value(record, CODE_FILE_PATH), text("src/connectors/mod.rs"));
        assert_eq!(
            value(record, CODE_LINE_NUMBER),
            Some(any_value::Value::IntValue(42))
        );
        assert_eq!(value(record, "log.module_path"), None);
        assert_eq!(record.attributes.len(), 3, "{:?}", record.attributes);
    }

    #[tokio::test]
    async fn layer_exports_through_the_log_pipeline() {
        use crate::export::test_support::{serve_http, HttpCollector};
        use crate::export::{Compression, ExporterOptions, Protocol, TlsOptions};
        use crate::logs::{LogPipeline, LogSettings};

        let (url, collector) = serve_http("/v1/logs", "200 OK").await;
        let settings = LogSettings {
            exporter: ExporterOptions {
                protocol: Protocol::HttpProtobuf,
                endpoint: url,
                headers: Vec::new(),
                timeout: Duration::from_secs(2),
                compression: Compression::None,
                tls: TlsOptions::default(),
            },
            resource: opentelemetry_sdk::Resource::builder_empty().build(),
            queue: traverse_config::ExportQueue {
                max_size: 64,
                max_batch_size: 16,
                schedule_delay: Duration::from_millis(20),
            },
        };
        let (sink, pipeline) = LogPipeline::start(settings, "test-log-bridge").expect("start");

        let subscriber = tracing_subscriber::registry().with(OtlpLogLayer::new(Arc::clone(&sink)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "hyper::client", "not exported");
            tracing::error!(route = "api", "route has no endpoints");
        });
        let waited = std::time::Instant::now();
        while sink.stats().exported < 1 && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(pipeline.shutdown(Duration::from_secs(1)));

        let received = |collector: &Mutex<HttpCollector>| -> Vec<LogRecord> {
            collector
                .lock()
                .expect("lock")
                .bodies
                .iter()
                .map(|body| ExportLogsServiceRequest::decode(body.as_slice()).expect("request"))
                .flat_map(|request| request.resource_logs)
                .flat_map(|resource| resource.scope_logs)
                .flat_map(|scope| scope.log_records)
                .collect()
        };
        let records = received(&collector);
        let [record] = records.as_slice() else {
            panic!("one record: {records:?}");
        };
        assert_eq!(record.severity_text, "ERROR");
        assert_eq!(
            record.body.as_ref().and_then(|b| b.value.clone()),
            text("route has no endpoints")
        );
        assert_eq!(value(record, "route"), text("api"));
        assert_eq!(sink.stats().exported, 1);
    }
}
