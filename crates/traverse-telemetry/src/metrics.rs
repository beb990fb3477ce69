//! Request, upstream, configuration and telemetry metrics.
//!
//! Instruments are created once, at start-up, on an OpenTelemetry SDK `MeterProvider`
//! with a single cumulative reader: recording is the SDK's atomic update of an
//! existing series, and one aggregation serves both outputs. The admin listener's
//! `/metrics` collects on demand ([`prometheus`]); the OTLP push thread ([`push`])
//! collects on its interval. Each output keeps only the per-entrypoint, per-router
//! and per-service families its configuration asks for; a family no output wants is
//! not recorded at all.
//!
//! Labels are bounded: entrypoint, router and service names and `http.route` templates
//! come from configuration, methods outside the standard set become `_OTHER`, and
//! codes are HTTP statuses. Paths and other request values never become labels.

mod bound;
mod exemplars;
pub mod prometheus;
pub mod push;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider, UpDownCounter};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::attribute as semconv;
use traverse_config::MetricFamilies;

use crate::pipeline::StatsSnapshot;
use crate::record::{method_name, AttemptRecord, RequestRecord};
pub use exemplars::Exemplar;
use exemplars::Exemplars;

/// Bucket bounds of every duration histogram, in seconds (the HTTP semantic
/// conventions' advice, which Traefik uses too).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Name prefixes of the switchable families.
const ENTRY_POINT_FAMILY: &str = "traverse.entrypoint.";
const ROUTER_FAMILY: &str = "traverse.router.";
const SERVICE_FAMILY: &str = "traverse.service.";

/// Whether an output with `families` carries the instrument `name`.
pub fn family_enabled(families: &MetricFamilies, name: &str) -> bool {
    if name.starts_with(ENTRY_POINT_FAMILY) {
        families.add_entry_points_labels
    } else if name.starts_with(ROUTER_FAMILY) {
        families.add_routers_labels
    } else if name.starts_with(SERVICE_FAMILY) {
        families.add_services_labels
    } else {
        true
    }
}

/// A source of export counters for the telemetry-health metrics, e.g. the span queue.
pub type StatsSource = Arc<dyn Fn() -> StatsSnapshot + Send + Sync>;

/// What [`Metrics::new`] needs.
pub struct MetricsOptions {
    pub resource: Resource,
    /// The families recorded: the union of what the outputs want.
    pub families: MetricFamilies,
    /// Export counters by signal name (`spans`, `logs`, `access_logs`).
    pub telemetry: Vec<(&'static str, StatsSource)>,
}

/// What identifies a request's series: every label value a request metric can carry.
#[derive(Debug, Clone)]
pub struct RequestLabels<'a> {
    pub entry_point: &'a Arc<str>,
    pub router: Option<&'a Arc<str>>,
    /// `http.route`: the matched rule's path template.
    pub route: Option<&'a Arc<str>>,
    pub service: Option<&'a Arc<str>>,
    /// A standard method name or `_OTHER`.
    pub method: &'static str,
    pub status: u16,
    /// `network.protocol.version`: `1.0`, `1.1` or `2`.
    pub protocol: &'static str,
    /// `url.scheme`: `http` or `https`.
    pub scheme: &'static str,
}

impl<'a> RequestLabels<'a> {
    /// The series a finished request counts in.
    pub fn of(record: &RequestRecord<'a>) -> Self {
        RequestLabels {
            entry_point: record.entry_point,
            router: record.router,
            route: record.route,
            service: record.service,
            method: record.method_name(),
            status: record.status,
            protocol: record.protocol(),
            scheme: record.scheme,
        }
    }
}

/// Every instrument, created once.
#[derive(Debug)]
pub struct Metrics {
    /// Tells this instance's bound series apart from another's in a thread's cache.
    id: u64,
    /// Kept so instruments stay registered; [`Metrics::observe_gauge`] adds to it.
    meter: Meter,
    /// Held, not read: dropping the provider shuts its pipeline down.
    _provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    families: MetricFamilies,
    exemplars: Exemplars,
    server_duration: Histogram<f64>,
    client_duration: Histogram<f64>,
    active_requests: UpDownCounter<i64>,
    entry_point: Family,
    router: Family,
    service: Family,
    reloads: Counter<u64>,
    last_reload_success: Gauge<f64>,
    trace_context: Counter<u64>,
}

/// The four instruments of a per-entrypoint, per-router or per-service family.
#[derive(Debug)]
struct Family {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    request_size: Counter<u64>,
    response_size: Counter<u64>,
}

impl Family {
    fn new(meter: &Meter, prefix: &'static str, what: &'static str) -> Family {
        Family {
            requests: meter
                .u64_counter(format!("{prefix}requests"))
                .with_unit("{request}")
                .with_description(format!("Requests handled, per {what}"))
                .build(),
            duration: meter
                .f64_histogram(format!("{prefix}request.duration"))
                .with_unit("s")
                .with_description(format!("Time to handle a request, per {what}"))
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            request_size: meter
                .u64_counter(format!("{prefix}request.size"))
                .with_unit("By")
                .with_description(format!("Request body bytes received, per {what}"))
                .build(),
            response_size: meter
                .u64_counter(format!("{prefix}response.size"))
                .with_unit("By")
                .with_description(format!("Response body bytes sent, per {what}"))
                .build(),
        }
    }
}

impl Metrics {
    pub fn new(options: MetricsOptions) -> Arc<Metrics> {
        let reader = Arc::new(
            ManualReader::builder()
                .with_temporality(Temporality::Cumulative)
                .build(),
        );
        let provider = SdkMeterProvider::builder()
            .with_resource(options.resource)
            .with_reader(SharedReader(Arc::clone(&reader)))
            .build();
        let meter = provider.meter_with_scope(
            opentelemetry::InstrumentationScope::builder("traverse")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        register_telemetry_health(&meter, options.telemetry);
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Arc::new(Metrics {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            reader,
            families: options.families,
            exemplars: Exemplars::default(),
            server_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            client_duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests (one per upstream attempt)")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            active_requests: meter
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("Requests being handled")
                .build(),
            entry_point: Family::new(&meter, ENTRY_POINT_FAMILY, "entrypoint"),
            router: Family::new(&meter, ROUTER_FAMILY, "router"),
            service: Family::new(&meter, SERVICE_FAMILY, "service"),
            reloads: meter
                .u64_counter("traverse.config.reloads")
                .with_unit("{reload}")
                .with_description("Configuration reloads, by result (success or failure)")
                .build(),
            last_reload_success: meter
                .f64_gauge("traverse.config.last_reload_success")
                .with_unit("s")
                .with_description("Unix time of the last successful configuration reload")
                .build(),
            trace_context: meter
                .u64_counter("traverse.trace_context.requests")
                .with_unit("{request}")
                .with_description(
                    "Requests on entrypoints that continue the caller's trace, by whether \
                     they carried a valid W3C trace context (context: valid or missing)",
                )
                .build(),
            meter,
            _provider: provider,
        })
    }

    /// A request started on an entrypoint.
    pub fn request_started(&self, entry_point: &Arc<str>) {
        bound::add_active(self, entry_point, 1);
    }

    /// Records one finished request; call exactly once per [`Metrics::request_started`].
    pub fn request_finished(&self, request: &RequestRecord) {
        let labels = &RequestLabels::of(request);
        bound::add_active(self, labels.entry_point, -1);
        let duration = request.duration.as_secs_f64();
        let (sent, received) = (request.response_bytes, request.request_bytes);
        bound::with_series(self, labels, |series| {
            series.server_duration.record(duration);
            for family in [&series.entry_point, &series.router, &series.service]
                .into_iter()
                .flatten()
            {
                family.record(duration, received, sent);
            }
        });
        if let Some(span) = request.span.filter(|s| s.sampled) {
            self.exemplars
                .offer(labels, duration, span.trace_id, span.span_id);
        }
    }

    /// Records one ended upstream attempt.
    pub fn attempt_finished(&self, attempt: &AttemptRecord) {
        bound::record_attempt(self, attempt, attempt.duration.as_secs_f64());
    }

    /// A request arrived on an entrypoint whose trust policy is `continue`.
    pub fn trace_context_seen(&self, entry_point: &Arc<str>, valid: bool) {
        self.trace_context.add(
            1,
            &[
                entry_point_attribute(entry_point),
                KeyValue::new("context", if valid { "valid" } else { "missing" }),
            ],
        );
    }

    /// A configuration reload finished (successfully or not).
    pub fn config_reloaded(&self, success: bool) {
        self.reloads.add(
            1,
            &[KeyValue::new(
                "result",
                if success { "success" } else { "failure" },
            )],
        );
        if success {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_reload_success.record(now.as_secs_f64(), &[]);
        }
    }

    /// Registers a gauge read at every collection, e.g. upstream endpoints up or down:
    /// `observe` returns the current value of each series.
    pub fn observe_gauge(
        &self,
        name: &'static str,
        description: &'static str,
        observe: impl Fn() -> Vec<(i64, Vec<KeyValue>)> + Send + Sync + 'static,
    ) {
        let _gauge = self
            .meter
            .i64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (value, attributes) in observe() {
                    observer.observe(value, &attributes);
                }
            })
            .build();
    }

    /// Registers a counter read at every collection from totals kept elsewhere (atomics
    /// counted off the request path): `observe` returns each series' total so far.
    pub fn observe_counter(
        &self,
        name: &'static str,
        description: &'static str,
        observe: impl Fn() -> Vec<(u64, Vec<KeyValue>)> + Send + Sync + 'static,
    ) {
        let _counter = self
            .meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (value, attributes) in observe() {
                    observer.observe(value, &attributes);
                }
            })
            .build();
    }

    /// The current cumulative values of every instrument.
    pub fn collect(&self) -> ResourceMetrics {
        let mut metrics = ResourceMetrics::default();
        if let Err(error) = self.reader.collect(&mut metrics) {
            tracing::debug!(%error, "metrics collection failed");
        }
        metrics
    }

    /// The latest exemplar of each duration-histogram bucket.
    pub(crate) fn exemplars(&self) -> &Exemplars {
        &self.exemplars
    }
}

/// Attributes of `http.server.request.duration`: four, then `http.route` when a route
/// matched. Kept on the stack, as every request records them.
pub(crate) struct ServerAttributes([KeyValue; 5], usize);

impl std::ops::Deref for ServerAttributes {
    type Target = [KeyValue];

    fn deref(&self) -> &[KeyValue] {
        &self.0[..self.1]
    }
}

fn server_attributes(labels: &RequestLabels) -> ServerAttributes {
    let (route, len) = match labels.route {
        Some(route) => (name_attribute(semconv::HTTP_ROUTE, route), 5),
        // An unused slot: the slice ends before it.
        None => (KeyValue::new(semconv::HTTP_ROUTE, ""), 4),
    };
    ServerAttributes(
        [
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, labels.method),
            KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(labels.status)),
            KeyValue::new(semconv::URL_SCHEME, labels.scheme),
            KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, labels.protocol),
            route,
        ],
        len,
    )
}

/// Attributes of `http.client.request.duration`.
fn client_attributes(attempt: &AttemptRecord) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(4);
    attributes.push(KeyValue::new(
        semconv::HTTP_REQUEST_METHOD,
        method_name(attempt.method),
    ));
    if let Some(status) = attempt.status {
        attributes.push(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
            i64::from(status),
        ));
    }
    if let Some(failure) = attempt.failure {
        attributes.push(KeyValue::new(semconv::ERROR_TYPE, failure.kind));
    }
    if let Some(service) = attempt.service {
        attributes.push(name_attribute("traverse.service", service));
    }
    attributes
}

fn entry_point_attributes(labels: &RequestLabels) -> [KeyValue; 4] {
    [
        entry_point_attribute(labels.entry_point),
        KeyValue::new("code", i64::from(labels.status)),
        KeyValue::new("method", labels.method),
        KeyValue::new("protocol", labels.protocol),
    ]
}

/// `None` when no router matched.
fn router_attributes(labels: &RequestLabels) -> Option<Vec<KeyValue>> {
    let router = labels.router?;
    let mut attributes = Vec::with_capacity(5);
    attributes.push(name_attribute("router", router));
    attributes.extend(labels.service.map(|s| name_attribute("service", s)));
    attributes.push(KeyValue::new("code", i64::from(labels.status)));
    attributes.push(KeyValue::new("method", labels.method));
    attributes.push(KeyValue::new("protocol", labels.protocol));
    Some(attributes)
}

/// `None` when no service was chosen.
fn service_attributes(labels: &RequestLabels) -> Option<[KeyValue; 4]> {
    Some([
        name_attribute("service", labels.service?),
        KeyValue::new("code", i64::from(labels.status)),
        KeyValue::new("method", labels.method),
        KeyValue::new("protocol", labels.protocol),
    ])
}

fn entry_point_attribute(entry_point: &Arc<str>) -> KeyValue {
    name_attribute("entrypoint", entry_point)
}

/// A name shared with the routing table, as an attribute without copying the text.
fn name_attribute(key: &'static str, name: &Arc<str>) -> KeyValue {
    KeyValue::new(key, Value::from(Arc::clone(name)))
}

/// Ended / exported / dropped / failed counters of every telemetry signal, read at collection.
fn register_telemetry_health(meter: &Meter, sources: Vec<(&'static str, StatsSource)>) {
    let sources = Arc::new(sources);
    for (name, description, field) in [
        (
            "traverse.telemetry.ended",
            "Telemetry items (spans, log records) offered for export, by signal",
            (|s: &StatsSnapshot| s.ended) as fn(&StatsSnapshot) -> u64,
        ),
        (
            "traverse.telemetry.exported",
            "Telemetry items (spans, log records) the collector accepted, by signal",
            |s: &StatsSnapshot| s.exported,
        ),
        (
            "traverse.telemetry.dropped",
            "Telemetry items dropped before export because a queue was full, by signal",
            |s: &StatsSnapshot| s.dropped,
        ),
        (
            "traverse.telemetry.failed",
            "Telemetry items lost because their batch could not be delivered, by signal",
            |s: &StatsSnapshot| s.failed,
        ),
        (
            "traverse.telemetry.rejected",
            "Telemetry items the collector reported as rejected, by signal",
            |s: &StatsSnapshot| s.rejected,
        ),
        (
            "traverse.telemetry.export_errors",
            "Export requests that failed after retries, by signal",
            |s: &StatsSnapshot| s.export_errors,
        ),
    ] {
        let sources = Arc::clone(&sources);
        let _counter = meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (signal, source) in sources.iter() {
                    observer.observe(field(&source()), &[KeyValue::new("signal", *signal)]);
                }
            })
            .build();
    }
}

/// Lets the provider own a reader that [`Metrics::collect`] also calls.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
