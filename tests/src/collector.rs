//! A real OTLP collector for the tests: `rotel-agent` in a child process, listening for
//! OTLP/gRPC and OTLP/HTTP on free ports of 127.0.0.1, exporting nowhere, and printing
//! everything it receives (its detailed debug log). That text is captured and parsed back
//! into [`Span`]s, [`LogRecord`]s and metric [`DataPoint`]s.
//!
//! The binary is found at `ROTEL_AGENT`, else at `$TRAVERSE_TOOLS/bin/rotel-agent`
//! (default `TRAVERSE_TOOLS`: `~/.cache/traverse/tools`), where
//! `scripts/install-prereqs.sh` installs it.
//!
//! rotel's detailed output, one block per exported batch (written with a single write):
//!
//! ```text
//! ResourceSpans #0
//! Resource SchemaURL:
//! Resource attributes:
//!      -> service.name: Str(traverse)
//! ScopeSpans #0
//! ScopeSpans SchemaURL:
//! InstrumentationScope traverse 0.1.0
//! Span #0
//!     Trace ID       : 0af7651916cd43dd8448eb211c80319c
//!     Parent ID      : 00f067aa0ba902b7
//!     ID             : b7ad6b7169203331
//!     Name           : GET /api
//!     Kind           : SPAN_KIND_SERVER
//! Start time: 1700000000000000000
//! End time: 1700000000500000000
//!     Status code    : STATUS_CODE_ERROR
//!     Status message : upstream failed
//! Attributes:
//!      -> http.response.status_code: Int(502)
//! Links:
//! SpanLink #0
//!      -> Trace ID: 11111111111111111111111111111111
//!      -> ID: 2222222222222222
//! ```
//!
//! Sections with nothing in them (attributes, events, links, an empty trace state, an
//! absent status) are left out. Values are printed as `Str(..)`, `Int(..)`, `Bool(..)`,
//! `Double(..)`, `Slice(..)`, `Map(..)`, `Bytes(..)`, strings unescaped: a string with a
//! line break continues on the next lines, which the parser joins back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::captured::{tail, Captured};

/// How long a collector gets to accept connections on both ports.
pub const START_DEADLINE: Duration = Duration::from_secs(10);

/// How many lines of output a failure message shows at most (the last ones).
pub const SHOWN_LINES: usize = 400;

/// How often the `wait_for_*` helpers look at the output.
const POLL: Duration = Duration::from_millis(20);

/// The `rotel-agent` executable: `ROTEL_AGENT`, else `$TRAVERSE_TOOLS/bin/rotel-agent`
/// (default `TRAVERSE_TOOLS`: `~/.cache/traverse/tools`). Panics when it is missing.
pub fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ROTEL_AGENT") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "ROTEL_AGENT={} is not a file",
            path.display()
        );
        return path;
    }
    let path = crate::tool("rotel-agent");
    assert!(
        path.is_file(),
        "rotel-agent, the OTLP collector of the telemetry tests, is missing at {}: run \
         scripts/install-prereqs.sh (or set ROTEL_AGENT to the executable)",
        path.display()
    );
    path
}

/// A running `rotel-agent` with its own directory and captured output. Dropping it kills
/// the process (SIGKILL); when the test is panicking, the end of the output is printed
/// (unless a failure message of the collector's already showed it).
pub struct Collector {
    child: Option<Child>,
    readers: Vec<JoinHandle<()>>,
    grpc_port: u16,
    http_port: u16,
    dir: tempfile::TempDir,
    stdout: Captured,
    stderr: Captured,
    /// Whether a failure message already showed the output.
    reported: AtomicBool,
}

impl Collector {
    /// Starts a collector on two free ports and waits until both accept connections.
    /// A start that fails because a picked port was taken meanwhile is retried.
    pub async fn start() -> Collector {
        let mut last_failure = String::new();
        for _ in 0..3 {
            let mut collector = Collector::spawn(crate::free_port(), crate::free_port());
            match collector.wait_ready(START_DEADLINE).await {
                Ok(()) => return collector,
                Err(failure) => {
                    let port_taken = failure.contains("in use");
                    collector.stop();
                    last_failure = failure;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the collector did not start: {last_failure}");
    }

    /// Starts a collector on the given ports (e.g. those of a collector stopped earlier)
    /// and waits until both accept connections.
    pub async fn start_on(grpc_port: u16, http_port: u16) -> Collector {
        let mut collector = Collector::spawn(grpc_port, http_port);
        if let Err(failure) = collector.wait_ready(START_DEADLINE).await {
            collector.stop();
            panic!("the collector did not start on gRPC port {grpc_port}, HTTP port {http_port}: {failure}");
        }
        collector
    }

    fn spawn(grpc_port: u16, http_port: u16) -> Collector {
        let dir = tempfile::Builder::new()
            .prefix("traverse-e2e-collector-")
            .tempdir()
            .expect("creating a temporary directory");
        let mut collector = Collector {
            child: None,
            readers: Vec::new(),
            grpc_port,
            http_port,
            dir,
            stdout: Captured::default(),
            stderr: Captured::default(),
            reported: AtomicBool::new(false),
        };
        collector.launch();
        collector
    }

    /// Starts the process on this collector's ports (which must be free).
    fn launch(&mut self) {
        let mut command = Command::new(agent_binary());
        command
            .arg("start")
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{}", self.grpc_port))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .args(["--exporter", "blackhole"])
            .args(["--debug-log", "traces"])
            .args(["--debug-log", "metrics"])
            .args(["--debug-log", "logs"])
            .args(["--debug-log-verbosity", "detailed"])
            // Print every request's data as it arrives instead of every 200 ms.
            .arg("--disable-batching")
            // Both default to fixed paths under /tmp.
            .arg("--pid-file")
            .arg(self.dir.path().join("rotel-agent.pid"))
            .arg("--log-file")
            .arg(self.dir.path().join("rotel-agent.log"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Every option can also be set through a ROTEL_* variable: none may leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ROTEL_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("starting rotel-agent");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        self.readers = vec![self.stdout.read_from(stdout), self.stderr.read_from(stderr)];
        self.child = Some(child);
    }

    async fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().expect("waiting for rotel-agent"),
                None => return Err("not running".into()),
            };
            if let Some(status) = exited {
                self.join_readers();
                return Err(format!(
                    "rotel-agent exited early with {status}; output:\n{}",
                    self.output_tail()
                ));
            }
            let grpc = tokio::net::TcpStream::connect(self.grpc_addr())
                .await
                .is_ok();
            let http = tokio::net::TcpStream::connect(self.http_addr())
                .await
                .is_ok();
            if grpc && http {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!(
                    "not accepting connections after {deadline:?} (gRPC port {}: {grpc}, HTTP \
                     port {}: {http}); output:\n{}",
                    self.grpc_port,
                    self.http_port,
                    self.output_tail()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the process (SIGKILL) and waits for it; the ports are free afterwards. What
    /// was received so far stays readable. Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // It may have exited already: then kill fails and wait reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_readers();
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Stops the process if it runs, then starts it again on the same ports and waits
    /// until both accept connections. The output (and so what was parsed) accumulates.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch();
        if let Err(failure) = self.wait_ready(START_DEADLINE).await {
            self.stop();
            panic!("the collector did not restart: {failure}");
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.grpc_port))
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The OTLP/HTTP base endpoint, `http://127.0.0.1:<port>` (signals are posted to
    /// `/v1/traces`, `/v1/metrics`, `/v1/logs` below it).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:<port>/v1/traces`.
    pub fn traces_http_url(&self) -> String {
        format!("{}/v1/traces", self.http_endpoint())
    }

    /// `http://127.0.0.1:<port>/v1/metrics`.
    pub fn metrics_http_url(&self) -> String {
        format!("{}/v1/metrics", self.http_endpoint())
    }

    /// `http://127.0.0.1:<port>/v1/logs`.
    pub fn logs_http_url(&self) -> String {
        format!("{}/v1/logs", self.http_endpoint())
    }

    /// Everything the process wrote so far: stdout, then stderr (when not empty).
    pub fn output(&self) -> String {
        let mut text = self.stdout.text();
        let stderr = self.stderr.text();
        if !stderr.is_empty() {
            text.push_str("---- stderr ----\n");
            text.push_str(&stderr);
        }
        text
    }

    /// The last [`SHOWN_LINES`] lines of [`Collector::output`], for a failure message; the
    /// process does not print them again when dropped.
    pub fn output_tail(&self) -> String {
        self.reported.store(true, Ordering::Relaxed);
        tail(&self.output(), SHOWN_LINES)
    }

    /// What was received so far, parsed. A batch still being read may be cut short: to
    /// wait for something, use the `wait_for_*` helpers, which read settled output only.
    pub fn telemetry(&self) -> Telemetry {
        parse(&self.stdout.text())
    }

    /// Every span received so far (see [`Collector::telemetry`]).
    pub fn spans(&self) -> Vec<Span> {
        self.telemetry().spans
    }

    /// Every log record received so far (see [`Collector::telemetry`]).
    pub fn logs(&self) -> Vec<LogRecord> {
        self.telemetry().logs
    }

    /// Every metric data point received so far (see [`Collector::telemetry`]).
    pub fn data_points(&self) -> Vec<DataPoint> {
        self.telemetry().data_points
    }

    /// Polls the output until `probe` returns `Some` for it; panics naming `what`, with
    /// the raw output, at `timeout`. The probe only sees output that did not grow since
    /// the previous poll, so a batch is never seen half-read.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Telemetry) -> Option<T>,
    ) -> T {
        let until = Instant::now() + timeout;
        let mut seen = None;
        loop {
            let text = self.stdout.text();
            let settled = seen == Some(text.len());
            let expired = Instant::now() >= until;
            if settled || expired {
                let telemetry = parse(&text);
                if let Some(value) = probe(&telemetry) {
                    return value;
                }
                if expired {
                    panic!(
                        "{what}: not within {timeout:?} (received {} spans, {} log records, {} \
                         data points); collector output:\n{}",
                        telemetry.spans.len(),
                        telemetry.logs.len(),
                        telemetry.data_points.len(),
                        self.output_tail()
                    );
                }
            }
            seen = Some(text.len());
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until at least `n` spans were received; returns them all.
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<Span> {
        self.wait_until(&format!("{n} spans"), timeout, |t| {
            (t.spans.len() >= n).then(|| t.spans.clone())
        })
        .await
    }

    /// Waits until a span satisfies `predicate`; returns the first that does.
    pub async fn wait_for_span(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Span) -> bool,
    ) -> Span {
        self.wait_until(what, timeout, |t| {
            t.spans.iter().find(|s| predicate(s)).cloned()
        })
        .await
    }

    /// Waits until at least `n` log records were received; returns them all.
    pub async fn wait_for_logs(&self, n: usize, timeout: Duration) -> Vec<LogRecord> {
        self.wait_until(&format!("{n} log records"), timeout, |t| {
            (t.logs.len() >= n).then(|| t.logs.clone())
        })
        .await
    }

    /// Waits until data points of metric `name` were received; returns those.
    pub async fn wait_for_metric(&self, name: &str, timeout: Duration) -> Vec<DataPoint> {
        self.wait_until(&format!("metric {name}"), timeout, |t| {
            let points: Vec<DataPoint> = t
                .data_points
                .iter()
                .filter(|p| p.metric == name)
                .cloned()
                .collect();
            (!points.is_empty()).then_some(points)
        })
        .await
    }

    /// Asserts that no span arrives within `duration` beyond those received before the
    /// call (e.g. with sampling off). Returns the spans received before.
    pub async fn assert_no_spans_for(&self, duration: Duration) -> Vec<Span> {
        let before = self.settled().await.spans;
        tokio::time::sleep(duration).await;
        let after = self.settled().await.spans;
        if after.len() > before.len() {
            panic!(
                "expected no span within {duration:?}, received {}:\n{:#?}\ncollector output:\n{}",
                after.len() - before.len(),
                &after[before.len()..],
                self.output_tail()
            );
        }
        before
    }

    /// What was received, once the output stops growing (bounded by one second).
    async fn settled(&self) -> Telemetry {
        let until = Instant::now() + Duration::from_secs(1);
        let mut seen = self.stdout.len();
        loop {
            tokio::time::sleep(POLL).await;
            let text = self.stdout.text();
            if text.len() == seen || Instant::now() >= until {
                return parse(&text);
            }
            seen = text.len();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() && !self.reported.load(Ordering::Relaxed) {
            eprintln!(
                "---- collector output (gRPC port {}, HTTP port {}) ----\n{}",
                self.grpc_port,
                self.http_port,
                self.output_tail()
            );
        }
    }
}

/// Everything parsed from the collector's output, in the order received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    pub spans: Vec<Span>,
    pub logs: Vec<LogRecord>,
    pub data_points: Vec<DataPoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
    /// As printed, when not one of the above.
    Unknown(String),
}

impl SpanKind {
    fn parse(text: &str) -> SpanKind {
        match text {
            "SPAN_KIND_UNSPECIFIED" => SpanKind::Unspecified,
            "SPAN_KIND_INTERNAL" => SpanKind::Internal,
            "SPAN_KIND_SERVER" => SpanKind::Server,
            "SPAN_KIND_CLIENT" => SpanKind::Client,
            "SPAN_KIND_PRODUCER" => SpanKind::Producer,
            "SPAN_KIND_CONSUMER" => SpanKind::Consumer,
            other => SpanKind::Unknown(other.to_owned()),
        }
    }
}

/// A span's status code; `Unset` also when the span had no status at all (rotel prints no
/// status then).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
    /// As printed, when not one of the above.
    Unknown(String),
}

impl StatusCode {
    fn parse(text: &str) -> StatusCode {
        match text {
            "STATUS_CODE_UNSET" => StatusCode::Unset,
            "STATUS_CODE_OK" => StatusCode::Ok,
            "STATUS_CODE_ERROR" => StatusCode::Error,
            other => StatusCode::Unknown(other.to_owned()),
        }
    }
}

/// Attributes by key. `attributes` holds values as text (`Str(x)` as `x`, `Int(3)` as
/// `3`, `Bool(true)` as `true`, `Double(0.5)` as `0.5`; arrays, maps and bytes as printed,
/// e.g. `Slice(Str(a), Int(1))`); `raw_attributes` holds every value as printed, type
/// included, to check a type (`Int(502)` rather than `Str(502)`).
pub type Attributes = BTreeMap<String, String>;

/// One span. Ids are lowercase hex; resource attributes are those of the span's resource,
/// as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a root span.
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    /// Empty when none.
    pub trace_state: String,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub status_code: StatusCode,
    pub status_message: String,
    pub attributes: Attributes,
    pub raw_attributes: Attributes,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

impl Span {
    fn new(resource: &Attributes, scope: &(String, String)) -> Span {
        Span {
            trace_id: String::new(),
            span_id: String::new(),
            parent_id: None,
            name: String::new(),
            kind: SpanKind::Unspecified,
            trace_state: String::new(),
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            status_code: StatusCode::Unset,
            status_message: String::new(),
            attributes: Attributes::new(),
            raw_attributes: Attributes::new(),
            events: Vec::new(),
            links: Vec::new(),
            resource: resource.clone(),
            scope_name: scope.0.clone(),
            scope_version: scope.1.clone(),
        }
    }

    /// Attribute `key` as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Resource attribute `key` as text.
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        self.resource.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
    pub raw_attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    pub trace_id: String,
    pub span_id: String,
    pub trace_state: String,
    pub attributes: Attributes,
    pub raw_attributes: Attributes,
}

/// One log record; `body` as text like an attribute value (`raw_body` as printed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_text: String,
    /// The number (`SEVERITY_NUMBER_ERROR(17)` gives 17), 0 when unspecified.
    pub severity_number: i32,
    /// Empty when none.
    pub event_name: String,
    pub body: String,
    pub raw_body: String,
    pub attributes: Attributes,
    pub raw_attributes: Attributes,
    /// `None` when the record carries no trace context.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub flags: u32,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

impl LogRecord {
    /// Attribute `key` as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One data point of a metric, with its metric's descriptor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataPoint {
    /// The metric's name.
    pub metric: String,
    pub description: String,
    pub unit: String,
    /// `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` or `Summary`.
    pub data_type: String,
    /// For a sum.
    pub is_monotonic: Option<bool>,
    /// For a sum or histogram, e.g. `AGGREGATION_TEMPORALITY_CUMULATIVE`.
    pub temporality: Option<String>,
    pub attributes: Attributes,
    pub raw_attributes: Attributes,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// For a gauge or sum.
    pub value: Option<f64>,
    /// For a histogram or summary.
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// For an explicit-bucket histogram.
    pub explicit_bounds: Vec<f64>,
    pub bucket_counts: Vec<u64>,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

impl DataPoint {
    /// Attribute `key` as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A value as text: the inside of `Str(..)`, `Int(..)`, `Bool(..)`, `Double(..)`; anything
/// else as printed.
pub fn plain_value(raw: &str) -> String {
    for wrapper in ["Str(", "Int(", "Bool(", "Double("] {
        if let Some(inner) = raw
            .strip_prefix(wrapper)
            .and_then(|rest| rest.strip_suffix(')'))
        {
            return inner.to_owned();
        }
    }
    raw.to_owned()
}

/// Parses rotel's detailed debug output. Lines that are not part of it (its own log lines,
/// anything else) are skipped.
pub fn parse(text: &str) -> Telemetry {
    let mut parser = Parser::default();
    for line in text.lines() {
        parser.line(line);
    }
    parser.commit();
    parser.out
}

/// One recognised line of the output.
#[derive(Clone, Copy)]
enum Line<'a> {
    /// `ResourceSpans #0`, `ResourceLog #0`, `ResourceMetrics #0`.
    ResourceStart,
    /// A label with nothing of interest: `Resource SchemaURL: ...`, `Events:`, a log line.
    Skip,
    /// `Resource attributes:`.
    ResourceAttributes,
    /// `ScopeSpans #0` and the like.
    ScopeStart,
    /// `InstrumentationScope name version`.
    Scope(&'a str),
    /// `InstrumentationScope attributes:`.
    ScopeAttributes,
    /// `Span #0`.
    SpanStart,
    /// `SpanEvent #0`.
    EventStart,
    /// `SpanLink #0`.
    LinkStart,
    /// `LogRecord #0`.
    LogStart,
    /// `Metric #0`.
    MetricStart,
    /// `Descriptor:`.
    Descriptor,
    /// `NumberDataPoints #0` and the other kinds.
    PointStart,
    /// `Data point attributes:`.
    PointAttributes,
    /// `Attributes:` of a span or log record.
    Attributes,
    /// `Exemplars:`, `Exemplar #0`: skipped, with their fields.
    Exemplar,
    /// `ExplicitBounds #0: 0.1`.
    Bound(&'a str),
    /// `Buckets #0, Count: 3`.
    Bucket(&'a str),
    /// `    Label          : value` (span fields, a log record's ids).
    Padded(&'a str, &'a str),
    /// `Label: value` for the known labels.
    Field(&'a str, &'a str),
    /// `     -> key: value`, at any depth.
    Arrow(&'a str, &'a str),
    /// `     -> Attributes::` (of an event or link), `     -> FilteredAttributes:`.
    ArrowHeader(&'a str),
}

/// Labels of the unindented `Label: value` lines.
const FIELDS: &[&str] = &[
    "Start time",
    "End time",
    "ObservedTimestamp",
    "Timestamp",
    "SeverityText",
    "SeverityNumber",
    "EventName",
    "Body",
    "Flags",
    "StartTimestamp",
    "Value",
    "Count",
    "Sum",
    "Min",
    "Max",
];

/// Labels of the `    Label          : value` lines.
const PADDED: &[&str] = &[
    "Trace ID",
    "Parent ID",
    "ID",
    "Span ID",
    "Name",
    "Kind",
    "TraceState",
    "Status code",
    "Status message",
];

fn classify(line: &str) -> Option<Line<'_>> {
    const STARTS: &[(&str, Line<'static>)] = &[
        ("ResourceSpans #", Line::ResourceStart),
        ("ResourceLog #", Line::ResourceStart),
        ("ResourceLogs #", Line::ResourceStart),
        ("ResourceMetrics #", Line::ResourceStart),
        ("Resource SchemaURL:", Line::Skip),
        ("Resource attributes:", Line::ResourceAttributes),
        ("ScopeSpans #", Line::ScopeStart),
        ("ScopeLogs #", Line::ScopeStart),
        ("ScopeMetrics #", Line::ScopeStart),
        ("ScopeSpans SchemaURL:", Line::Skip),
        ("ScopeLogs SchemaURL:", Line::Skip),
        ("ScopeMetrics SchemaURL:", Line::Skip),
        ("InstrumentationScope attributes:", Line::ScopeAttributes),
        ("Span #", Line::SpanStart),
        ("Events:", Line::Skip),
        ("SpanEvent #", Line::EventStart),
        ("Links:", Line::Skip),
        ("SpanLink #", Line::LinkStart),
        ("LogRecord #", Line::LogStart),
        ("Metric #", Line::MetricStart),
        ("Descriptor:", Line::Descriptor),
        ("NumberDataPoints #", Line::PointStart),
        ("HistogramDataPoints #", Line::PointStart),
        ("ExponentialHistogramDataPoints #", Line::PointStart),
        ("SummaryDataPoints #", Line::PointStart),
        ("Data point attributes:", Line::PointAttributes),
        ("Bucket [", Line::Skip),
        ("Bucket (", Line::Skip),
        ("QuantileValue #", Line::Skip),
        ("Exemplars:", Line::Exemplar),
        ("Exemplar #", Line::Exemplar),
    ];
    for (prefix, kind) in STARTS {
        if line.starts_with(prefix) {
            return Some(*kind);
        }
    }
    if line == "Attributes:" {
        return Some(Line::Attributes);
    }
    if let Some(rest) = line.strip_prefix("InstrumentationScope ") {
        return Some(Line::Scope(rest));
    }
    if let Some(rest) = line.strip_prefix("ExplicitBounds #") {
        return rest.split_once(": ").map(|(_, v)| Line::Bound(v));
    }
    if let Some(rest) = line.strip_prefix("Buckets #") {
        return rest.split_once(", Count: ").map(|(_, v)| Line::Bucket(v));
    }
    if is_log_line(line) {
        return Some(Line::Skip);
    }
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("-> ") {
        if line.len() == trimmed.len() {
            return None;
        }
        if let Some((key, value)) = rest.split_once(": ") {
            return Some(Line::Arrow(key, value));
        }
        return rest
            .ends_with(':')
            .then(|| Line::ArrowHeader(rest.trim_end_matches(':')));
    }
    if let Some(rest) = line.strip_prefix("    ") {
        if let Some((label, value)) = rest.split_once(": ") {
            let label = label.trim_end();
            if PADDED.contains(&label) {
                return Some(Line::Padded(label, value));
            }
        } else if let Some(label) = rest.strip_suffix(':') {
            if PADDED.contains(&label.trim_end()) {
                return Some(Line::Padded(label.trim_end(), ""));
            }
        }
        return None;
    }
    label_value(line).map(|(label, value)| Line::Field(label, value))
}

/// `label: value` for the known labels, or `label:` alone when the value is empty.
fn label_value(text: &str) -> Option<(&str, &str)> {
    let (label, value) = match text.split_once(": ") {
        Some(split) => split,
        None => (text.strip_suffix(':')?, ""),
    };
    FIELDS.contains(&label).then_some((label, value))
}

/// rotel's own log lines: `2024-01-02T03:04:05.123456Z  INFO ...` (or colored).
fn is_log_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.first() == Some(&0x1b)
        || (bytes.len() > 11
            && bytes[..4].iter().all(u8::is_ascii_digit)
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes[10] == b'T')
}

/// What the lines that follow a header belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Section {
    #[default]
    None,
    Resource,
    Span,
    SpanAttributes,
    Event,
    EventAttributes,
    Link,
    LinkAttributes,
    Log,
    LogAttributes,
    Descriptor,
    Point,
    PointAttributes,
    /// Scope attributes, exemplars: read past.
    Ignored,
}

/// The record the current lines describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Current {
    #[default]
    None,
    Span,
    Log,
    Point,
}

/// A valued line, held until the next recognised line: a string value may go on over
/// several lines.
struct Pending {
    kind: PendingKind,
    label: String,
    value: String,
}

enum PendingKind {
    Padded,
    Field,
    Arrow,
}

#[derive(Default)]
struct Parser {
    out: Telemetry,
    resource: Attributes,
    scope: (String, String),
    metric: DataPoint,
    section: Section,
    current: Current,
    pending: Option<Pending>,
}

impl Parser {
    fn line(&mut self, line: &str) {
        let Some(kind) = classify(line) else {
            if let Some(pending) = &mut self.pending {
                pending.value.push('\n');
                pending.value.push_str(line);
            }
            return;
        };
        self.commit();
        let (kind, label, value) = match kind {
            Line::Padded(label, value) => (PendingKind::Padded, label, value),
            Line::Field(label, value) => (PendingKind::Field, label, value),
            Line::Arrow(label, value) => (PendingKind::Arrow, label, value),
            structural => {
                self.structural(structural);
                return;
            }
        };
        self.pending = Some(Pending {
            kind,
            label: label.to_owned(),
            value: value.to_owned(),
        });
    }

    fn structural(&mut self, line: Line<'_>) {
        match line {
            Line::ResourceStart => {
                self.resource.clear();
                self.scope = Default::default();
                self.section = Section::None;
                self.current = Current::None;
            }
            Line::Skip => {}
            Line::ResourceAttributes => self.section = Section::Resource,
            Line::ScopeStart => {
                self.scope = Default::default();
                self.section = Section::None;
                self.current = Current::None;
            }
            Line::Scope(rest) => {
                let (name, version) = rest.split_once(' ').unwrap_or((rest, ""));
                self.scope = (name.to_owned(), version.trim().to_owned());
                self.section = Section::None;
            }
            Line::ScopeAttributes | Line::Exemplar => self.section = Section::Ignored,
            Line::SpanStart => {
                self.out.spans.push(Span::new(&self.resource, &self.scope));
                self.current = Current::Span;
                self.section = Section::Span;
            }
            Line::EventStart => {
                if let Some(span) = self.span() {
                    span.events.push(Event::default());
                    self.section = Section::Event;
                }
            }
            Line::LinkStart => {
                if let Some(span) = self.span() {
                    span.links.push(Link::default());
                    self.section = Section::Link;
                }
            }
            Line::LogStart => {
                self.out.logs.push(LogRecord {
                    resource: self.resource.clone(),
                    scope_name: self.scope.0.clone(),
                    scope_version: self.scope.1.clone(),
                    ..LogRecord::default()
                });
                self.current = Current::Log;
                self.section = Section::Log;
            }
            Line::MetricStart => {
                self.metric = DataPoint::default();
                self.current = Current::None;
                self.section = Section::None;
            }
            Line::Descriptor => self.section = Section::Descriptor,
            Line::PointStart => {
                self.out.data_points.push(DataPoint {
                    resource: self.resource.clone(),
                    scope_name: self.scope.0.clone(),
                    scope_version: self.scope.1.clone(),
                    ..self.metric.clone()
                });
                self.current = Current::Point;
                self.section = Section::Point;
            }
            Line::PointAttributes => self.section = Section::PointAttributes,
            Line::Attributes => {
                self.section = match self.current {
                    Current::Span => Section::SpanAttributes,
                    Current::Log => Section::LogAttributes,
                    _ => Section::Ignored,
                }
            }
            Line::Bound(value) => {
                if let Some(point) = self.point() {
                    point
                        .explicit_bounds
                        .push(value.trim().parse().unwrap_or(f64::NAN));
                }
            }
            Line::Bucket(value) => {
                if let Some(point) = self.point() {
                    point
                        .bucket_counts
                        .push(value.trim().parse().unwrap_or_default());
                }
            }
            Line::ArrowHeader(name) => {
                self.section = match (self.section, name) {
                    (Section::Event, "Attributes") => Section::EventAttributes,
                    (Section::Link, "Attributes") => Section::LinkAttributes,
                    _ => Section::Ignored,
                }
            }
            Line::Padded(..) | Line::Field(..) | Line::Arrow(..) => {}
        }
    }

    fn span(&mut self) -> Option<&mut Span> {
        match self.current {
            Current::Span => self.out.spans.last_mut(),
            _ => None,
        }
    }

    fn log(&mut self) -> Option<&mut LogRecord> {
        match self.current {
            Current::Log => self.out.logs.last_mut(),
            _ => None,
        }
    }

    fn point(&mut self) -> Option<&mut DataPoint> {
        match self.current {
            Current::Point => self.out.data_points.last_mut(),
            _ => None,
        }
    }

    /// Applies the pending valued line.
    fn commit(&mut self) {
        let Some(Pending { kind, label, value }) = self.pending.take() else {
            return;
        };
        let label = label.as_str();
        match kind {
            PendingKind::Padded => self.padded(label, value),
            PendingKind::Field => self.field(label, value),
            PendingKind::Arrow => self.arrow(label, value),
        }
    }

    fn padded(&mut self, label: &str, value: String) {
        let id = |value: &str| Some(value.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
        if let Some(span) = self.span() {
            match label {
                "Trace ID" => span.trace_id = value.trim().to_ascii_lowercase(),
                "Parent ID" => span.parent_id = id(&value),
                "ID" => span.span_id = value.trim().to_ascii_lowercase(),
                "Name" => span.name = value,
                "Kind" => span.kind = SpanKind::parse(value.trim()),
                "TraceState" => span.trace_state = value,
                "Status code" => span.status_code = StatusCode::parse(value.trim()),
                "Status message" => span.status_message = value,
                _ => {}
            }
        } else if let Some(log) = self.log() {
            match label {
                "Trace ID" => log.trace_id = id(&value),
                "Span ID" => log.span_id = id(&value),
                _ => {}
            }
        }
    }

    fn field(&mut self, label: &str, value: String) {
        let number = |value: &str| value.trim().parse::<u64>().unwrap_or_default();
        let float = |value: &str| value.trim().parse::<f64>().ok();
        if let Some(span) = self.span() {
            match label {
                "Start time" => span.start_time_unix_nano = number(&value),
                "End time" => span.end_time_unix_nano = number(&value),
                _ => {}
            }
        } else if let Some(log) = self.log() {
            match label {
                "ObservedTimestamp" => log.observed_time_unix_nano = number(&value),
                "Timestamp" => log.time_unix_nano = number(&value),
                "SeverityText" => log.severity_text = value,
                "SeverityNumber" => {
                    // SEVERITY_NUMBER_ERROR(17)
                    log.severity_number = value
                        .rsplit_once('(')
                        .and_then(|(_, n)| n.trim_end_matches(')').parse().ok())
                        .unwrap_or_default();
                }
                "EventName" => log.event_name = value,
                "Body" => {
                    log.body = plain_value(&value);
                    log.raw_body = value;
                }
                "Flags" => log.flags = value.trim().parse().unwrap_or_default(),
                _ => {}
            }
        } else if let Some(point) = self.point() {
            match label {
                "StartTimestamp" => point.start_time_unix_nano = number(&value),
                "Timestamp" => point.time_unix_nano = number(&value),
                "Value" => point.value = float(&value),
                "Count" => point.count = value.trim().parse().ok(),
                "Sum" => point.sum = float(&value),
                "Min" => point.min = float(&value),
                "Max" => point.max = float(&value),
                _ => {}
            }
        }
    }

    fn arrow(&mut self, label: &str, value: String) {
        let insert = |plain: &mut Attributes, raw: &mut Attributes, value: String| {
            plain.insert(label.to_owned(), plain_value(&value));
            raw.insert(label.to_owned(), value);
        };
        match self.section {
            Section::Resource => {
                self.resource.insert(label.to_owned(), plain_value(&value));
            }
            Section::SpanAttributes => {
                if let Some(span) = self.span() {
                    insert(&mut span.attributes, &mut span.raw_attributes, value);
                }
            }
            Section::Event => {
                if let Some(event) = self.span().and_then(|s| s.events.last_mut()) {
                    match label {
                        "Name" => event.name = value,
                        "Timestamp" => event.time_unix_nano = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            Section::EventAttributes => {
                if let Some(event) = self.span().and_then(|s| s.events.last_mut()) {
                    insert(&mut event.attributes, &mut event.raw_attributes, value);
                }
            }
            Section::Link => {
                if let Some(link) = self.span().and_then(|s| s.links.last_mut()) {
                    match label {
                        "Trace ID" => link.trace_id = value.trim().to_ascii_lowercase(),
                        "ID" => link.span_id = value.trim().to_ascii_lowercase(),
                        "TraceState" => link.trace_state = value,
                        _ => {}
                    }
                }
            }
            Section::LinkAttributes => {
                if let Some(link) = self.span().and_then(|s| s.links.last_mut()) {
                    insert(&mut link.attributes, &mut link.raw_attributes, value);
                }
            }
            Section::LogAttributes => {
                if let Some(log) = self.log() {
                    insert(&mut log.attributes, &mut log.raw_attributes, value);
                }
            }
            Section::Descriptor => match label {
                "Name" => self.metric.metric = value,
                "Description" => self.metric.description = value,
                "Unit" => self.metric.unit = value,
                "DataType" => self.metric.data_type = value.trim().to_owned(),
                "IsMonotonic" => self.metric.is_monotonic = value.trim().parse().ok(),
                "AggregationTemporality" => self.metric.temporality = Some(value.trim().to_owned()),
                _ => {}
            },
            Section::PointAttributes => {
                if let Some(point) = self.point() {
                    insert(&mut point.attributes, &mut point.raw_attributes, value);
                }
            }
            Section::None | Section::Span | Section::Log | Section::Point | Section::Ignored => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output as rotel prints it (two batches, a log line between them, a string value
    /// with a line break, an empty parent id).
    const TRACES: &str = "\
2026-01-02T03:04:05.000001Z  INFO Starting Rotel. grpc_endpoint=\"127.0.0.1:1\"
ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> service.name: Str(traverse)
     -> host.count: Int(3)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope traverse 0.1.0
Span #0
    Trace ID       : 0af7651916cd43dd8448eb211c80319c
    Parent ID      : 00f067aa0ba902b7
    ID             : b7ad6b7169203331
    Name           : GET /api
    Kind           : SPAN_KIND_SERVER
    TraceState     : k=v
Start time: 1700000000000000000
End time: 1700000000500000000
    Status code    : STATUS_CODE_ERROR
    Status message : upstream failed
Attributes:
     -> http.response.status_code: Int(502)
     -> retry: Bool(true)
     -> ratio: Double(0.25)
     -> list: Slice(Str(a), Int(1))
     -> msg: Str(two
lines)
     -> empty: Str()
Events:
SpanEvent #0
     -> Name: exception
     -> Timestamp: 1700000000100000000
     -> DroppedAttributesCount: 0
     -> Attributes::
          -> exception.message: Str(boom)
Links:
SpanLink #0
     -> Trace ID: 11111111111111111111111111111111
     -> ID: 2222222222222222
     -> TraceState: 
     -> DroppedAttributesCount: 0
     -> Attributes::
          -> l: Str(x)
Span #1
    Trace ID       : 0af7651916cd43dd8448eb211c80319c
    Parent ID      : 
    ID             : 00f067aa0ba902b7
    Name           : root
    Kind           : SPAN_KIND_CLIENT
Start time: 1
End time: 2
2026-01-02T03:04:06.000001Z  WARN something unrelated
ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> service.name: Str(other)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope s2 
Span #0
    Trace ID       : aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    Parent ID      : 
    ID             : bbbbbbbbbbbbbbbb
    Name           : internal-op
    Kind           : SPAN_KIND_INTERNAL
Start time: 0
End time: 0
    Status code    : STATUS_CODE_OK
    Status message : 
";

    #[test]
    fn parses_spans() {
        let spans = parse(TRACES).spans;
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let first = &spans[0];
        assert_eq!(first.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(first.span_id, "b7ad6b7169203331");
        assert_eq!(first.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(first.name, "GET /api");
        assert_eq!(first.kind, SpanKind::Server);
        assert_eq!(first.trace_state, "k=v");
        assert_eq!(first.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(first.end_time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(first.status_code, StatusCode::Error);
        assert_eq!(first.status_message, "upstream failed");
        assert_eq!(first.attr("http.response.status_code"), Some("502"));
        assert_eq!(
            first.raw_attributes["http.response.status_code"],
            "Int(502)"
        );
        assert_eq!(first.attr("retry"), Some("true"));
        assert_eq!(first.attr("ratio"), Some("0.25"));
        assert_eq!(first.attr("list"), Some("Slice(Str(a), Int(1))"));
        assert_eq!(first.attr("msg"), Some("two\nlines"));
        assert_eq!(first.attr("empty"), Some(""));
        assert_eq!(first.resource_attr("service.name"), Some("traverse"));
        assert_eq!(first.resource_attr("host.count"), Some("3"));
        assert_eq!(
            (first.scope_name.as_str(), first.scope_version.as_str()),
            ("traverse", "0.1.0")
        );
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].name, "exception");
        assert_eq!(first.events[0].time_unix_nano, 1_700_000_000_100_000_000);
        assert_eq!(first.events[0].attributes["exception.message"], "boom");
        assert_eq!(first.links.len(), 1);
        assert_eq!(first.links[0].trace_id, "11111111111111111111111111111111");
        assert_eq!(first.links[0].span_id, "2222222222222222");
        assert_eq!(first.links[0].attributes["l"], "x");

        let root = &spans[1];
        assert_eq!(root.parent_id, None);
        assert_eq!(root.kind, SpanKind::Client);
        assert_eq!(root.status_code, StatusCode::Unset);
        assert!(root.attributes.is_empty() && root.links.is_empty() && root.events.is_empty());
        assert_eq!(root.resource_attr("service.name"), Some("traverse"));

        let other = &spans[2];
        assert_eq!(other.kind, SpanKind::Internal);
        assert_eq!(other.status_code, StatusCode::Ok);
        assert_eq!(other.status_message, "");
        assert_eq!(other.resource_attr("service.name"), Some("other"));
        assert_eq!(other.resource.len(), 1);
        assert_eq!(
            (other.scope_name.as_str(), other.scope_version.as_str()),
            ("s2", "")
        );
    }

    #[test]
    fn a_cut_batch_parses_as_far_as_it_goes() {
        let cut = &TRACES[..TRACES.find("Span #1").expect("second span")];
        let spans = parse(cut).spans;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].links.len(), 1);
    }

    #[test]
    fn parses_logs_and_metrics() {
        let text = "\
ResourceLog #0
Resource SchemaURL: 
Resource attributes:
     -> service.name: Str(traverse)
ScopeLogs #0
ScopeLogs SchemaURL: 
InstrumentationScope traverse 
LogRecord #0
ObservedTimestamp: 1700000000000000001
Timestamp: 1700000000000000000
SeverityText: ERROR
SeverityNumber: SEVERITY_NUMBER_ERROR(17)
EventName: access
Body: Str(upstream
failed)
Attributes:
     -> route: Str(r1)
     -> n: Int(7)
    Trace ID       : 0af7651916cd43dd8448eb211c80319c
    Span ID        : b7ad6b7169203331
Flags: 1
LogRecord #1
ObservedTimestamp: 0
Timestamp: 0
SeverityText: 
SeverityNumber: SEVERITY_NUMBER_INFO(9)
Body: Map(a:Int(1))
    Trace ID       : 
    Span ID        : 
Flags: 0
ResourceMetrics #0
Resource SchemaURL: 
Resource attributes:
     -> service.name: Str(traverse)
ScopeMetrics #0
ScopeMetrics SchemaURL: 
InstrumentationScope traverse 
Metric #0
Descriptor:
     -> Name: http.server.requests
     -> Description: reqs
     -> Unit: 1
     -> DataType: Sum
     -> IsMonotonic: true
     -> AggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE
NumberDataPoints #0
Data point attributes:
     -> code: Int(200)
StartTimestamp: 1
Timestamp: 2
Value: 5
Metric #1
Descriptor:
     -> Name: http.server.request.duration
     -> Description: 
     -> Unit: s
     -> DataType: Histogram
     -> AggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE
HistogramDataPoints #0
Data point attributes:
     -> route: Str(r)
StartTimestamp: 0
Timestamp: 2
Count: 3
Sum: 0.3
Min: 0.05
Max: 0.2
ExplicitBounds #0: 0.1
ExplicitBounds #1: 0.5
Buckets #0, Count: 1
Buckets #1, Count: 2
Buckets #2, Count: 0
";
        let telemetry = parse(text);
        assert!(telemetry.spans.is_empty());
        let logs = &telemetry.logs;
        assert_eq!(logs.len(), 2, "{logs:#?}");
        assert_eq!(logs[0].body, "upstream\nfailed");
        assert_eq!(logs[0].severity_text, "ERROR");
        assert_eq!(logs[0].severity_number, 17);
        assert_eq!(logs[0].event_name, "access");
        assert_eq!(logs[0].attr("n"), Some("7"));
        assert_eq!(
            logs[0].trace_id.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(logs[0].span_id.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(logs[0].flags, 1);
        assert_eq!(logs[0].time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(logs[0].resource["service.name"], "traverse");
        assert_eq!(logs[1].body, "Map(a:Int(1))");
        assert_eq!(logs[1].severity_number, 9);
        assert_eq!(logs[1].trace_id, None);

        let points = &telemetry.data_points;
        assert_eq!(points.len(), 2, "{points:#?}");
        assert_eq!(points[0].metric, "http.server.requests");
        assert_eq!(points[0].data_type, "Sum");
        assert_eq!(points[0].is_monotonic, Some(true));
        assert_eq!(points[0].value, Some(5.0));
        assert_eq!(points[0].attr("code"), Some("200"));
        assert_eq!(points[1].metric, "http.server.request.duration");
        assert_eq!(points[1].unit, "s");
        assert_eq!(points[1].description, "");
        assert_eq!(points[1].count, Some(3));
        assert_eq!(points[1].sum, Some(0.3));
        assert_eq!(points[1].explicit_bounds, vec![0.1, 0.5]);
        assert_eq!(points[1].bucket_counts, vec![1, 2, 0]);
        assert_eq!(points[1].resource["service.name"], "traverse");
    }
}
