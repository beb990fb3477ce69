//! Request series bound once, then recorded without an attribute lookup.
//!
//! Recording through the SDK with attributes costs a sort, a hash and a read-locked map
//! lookup per instrument and request (about 1,500 instructions each, a dozen per
//! request). The SDK's bound instruments skip all of that: a bound handle points at its
//! series directly. Each worker thread keeps the handles of the series it has seen in a
//! thread-local map, keyed by the label values themselves (compared as text, so a
//! reloaded routing table with new `Arc`s finds the same series), and looked up with
//! one fast hash per request. Nothing here is shared between threads but the SDK's own
//! per-series aggregators.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};
use opentelemetry::metrics::{BoundCounter, BoundHistogram, BoundUpDownCounter};

use super::{
    client_attributes, entry_point_attribute, entry_point_attributes, router_attributes,
    server_attributes, service_attributes, Family, Metrics, RequestLabels,
};
use crate::record::{method_name, AttemptRecord};

/// Series kept per thread before the map is cleared (labels are bounded by the
/// configuration, so this is only reached after many reloads renamed routers).
const MAX_SERIES: usize = 4096;

/// The bound instruments of one request series.
pub(super) struct Series {
    pub server_duration: BoundHistogram<f64>,
    pub entry_point: Option<BoundFamily>,
    pub router: Option<BoundFamily>,
    pub service: Option<BoundFamily>,
}

/// A family's four instruments, bound to one series.
pub(super) struct BoundFamily {
    pub requests: BoundCounter<u64>,
    pub duration: BoundHistogram<f64>,
    pub request_size: BoundCounter<u64>,
    pub response_size: BoundCounter<u64>,
}

impl BoundFamily {
    fn new(family: &Family, attributes: &[opentelemetry::KeyValue]) -> Self {
        BoundFamily {
            requests: family.requests.bind(attributes),
            duration: family.duration.bind(attributes),
            request_size: family.request_size.bind(attributes),
            response_size: family.response_size.bind(attributes),
        }
    }

    pub fn record(&self, seconds: f64, request_bytes: u64, response_bytes: u64) {
        self.requests.add(1);
        self.duration.record(seconds);
        self.request_size.add(request_bytes);
        self.response_size.add(response_bytes);
    }
}

/// A series' label values, owned (the map's key).
#[derive(PartialEq, Eq)]
struct SeriesKey {
    metrics: u64,
    entry_point: Arc<str>,
    router: Option<Arc<str>>,
    route: Option<Arc<str>>,
    service: Option<Arc<str>>,
    method: &'static str,
    status: u16,
    protocol: &'static str,
    scheme: &'static str,
}

/// A series' label values, borrowed from a request (the lookup).
struct SeriesRef<'a> {
    metrics: u64,
    labels: &'a RequestLabels<'a>,
}

fn hash_labels<H: Hasher>(
    state: &mut H,
    metrics: u64,
    text: [Option<&str>; 4],
    method: &str,
    status: u16,
    protocol: &str,
    scheme: &str,
) {
    metrics.hash(state);
    text.hash(state);
    method.hash(state);
    status.hash(state);
    protocol.hash(state);
    scheme.hash(state);
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let text = [
            Some(self.entry_point.as_ref()),
            self.router.as_deref(),
            self.route.as_deref(),
            self.service.as_deref(),
        ];
        hash_labels(
            state,
            self.metrics,
            text,
            self.method,
            self.status,
            self.protocol,
            self.scheme,
        );
    }
}

impl Hash for SeriesRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let l = self.labels;
        let text = [
            Some(l.entry_point.as_ref()),
            l.router.map(|r| r.as_ref()),
            l.route.map(|r| r.as_ref()),
            l.service.map(|s| s.as_ref()),
        ];
        hash_labels(
            state,
            self.metrics,
            text,
            l.method,
            l.status,
            l.protocol,
            l.scheme,
        );
    }
}

impl Equivalent<SeriesKey> for SeriesRef<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        let l = self.labels;
        self.metrics == key.metrics
            && l.status == key.status
            && l.method == key.method
            && l.protocol == key.protocol
            && l.scheme == key.scheme
            && **l.entry_point == *key.entry_point
            && l.router.map(|r| r.as_ref()) == key.router.as_deref()
            && l.route.map(|r| r.as_ref()) == key.route.as_deref()
            && l.service.map(|s| s.as_ref()) == key.service.as_deref()
    }
}

/// An upstream attempt's series: `http.client.request.duration` labels, owned.
#[derive(PartialEq, Eq, Hash)]
struct AttemptKey {
    metrics: u64,
    service: Option<Arc<str>>,
    method: &'static str,
    status: Option<u16>,
    error: Option<&'static str>,
}

/// The same, borrowed from an attempt (hashes like [`AttemptKey`]: `Option<&str>` and
/// `Option<Arc<str>>` hash their text alike).
#[derive(Hash)]
struct AttemptRef<'a> {
    metrics: u64,
    service: Option<&'a str>,
    method: &'static str,
    status: Option<u16>,
    error: Option<&'static str>,
}

impl Equivalent<AttemptKey> for AttemptRef<'_> {
    fn equivalent(&self, key: &AttemptKey) -> bool {
        self.metrics == key.metrics
            && self.method == key.method
            && self.status == key.status
            && self.error == key.error
            && self.service == key.service.as_deref()
    }
}

/// `http.server.active_requests` of one entrypoint of one [`Metrics`], bound.
type ActiveCounter = (u64, Arc<str>, BoundUpDownCounter<i64>);

thread_local! {
    static SERIES: RefCell<HashMap<SeriesKey, Series>> = RefCell::new(HashMap::new());
    static ACTIVE: RefCell<Vec<ActiveCounter>> = const { RefCell::new(Vec::new()) };
    static ATTEMPTS: RefCell<HashMap<AttemptKey, BoundHistogram<f64>>> =
        RefCell::new(HashMap::new());
}

/// Runs `record` with the bound series of `labels`, binding it on first use.
pub(super) fn with_series(metrics: &Metrics, labels: &RequestLabels, record: impl FnOnce(&Series)) {
    SERIES.with(|cell| {
        let Ok(mut map) = cell.try_borrow_mut() else {
            return;
        };
        let lookup = SeriesRef {
            metrics: metrics.id,
            labels,
        };
        if let Some(series) = map.get(&lookup) {
            record(series);
            return;
        }
        if map.len() >= MAX_SERIES {
            map.clear();
        }
        let series = bind(metrics, labels);
        record(&series);
        map.insert(
            SeriesKey {
                metrics: metrics.id,
                entry_point: Arc::clone(labels.entry_point),
                router: labels.router.cloned(),
                route: labels.route.cloned(),
                service: labels.service.cloned(),
                method: labels.method,
                status: labels.status,
                protocol: labels.protocol,
                scheme: labels.scheme,
            },
            series,
        );
    });
}

/// Adds `delta` to `http.server.active_requests` of `entry_point`.
pub(super) fn add_active(metrics: &Metrics, entry_point: &Arc<str>, delta: i64) {
    ACTIVE.with(|cell| {
        let Ok(mut map) = cell.try_borrow_mut() else {
            return;
        };
        // Few entrypoints: a scan beats hashing.
        if let Some((_, _, counter)) = map
            .iter()
            .find(|(id, name, _)| *id == metrics.id && **name == **entry_point)
        {
            counter.add(delta);
            return;
        }
        if map.len() >= MAX_SERIES {
            map.clear();
        }
        let counter = metrics
            .active_requests
            .bind(&[entry_point_attribute(entry_point)]);
        counter.add(delta);
        map.push((metrics.id, Arc::clone(entry_point), counter));
    });
}

/// Records an attempt's duration in its `http.client.request.duration` series.
pub(super) fn record_attempt(metrics: &Metrics, attempt: &AttemptRecord, seconds: f64) {
    ATTEMPTS.with(|cell| {
        let Ok(mut map) = cell.try_borrow_mut() else {
            return;
        };
        let lookup = AttemptRef {
            metrics: metrics.id,
            service: attempt.service.map(|s| s.as_ref()),
            method: method_name(attempt.method),
            status: attempt.status,
            error: attempt.failure.map(|f| f.kind),
        };
        if let Some(histogram) = map.get(&lookup) {
            histogram.record(seconds);
            return;
        }
        if map.len() >= MAX_SERIES {
            map.clear();
        }
        let histogram = metrics.client_duration.bind(&client_attributes(attempt));
        histogram.record(seconds);
        map.insert(
            AttemptKey {
                metrics: metrics.id,
                service: attempt.service.cloned(),
                method: lookup.method,
                status: lookup.status,
                error: lookup.error,
            },
            histogram,
        );
    });
}

fn bind(metrics: &Metrics, labels: &RequestLabels) -> Series {
    let families = &metrics.families;
    Series {
        server_duration: metrics.server_duration.bind(&server_attributes(labels)),
        entry_point: families
            .add_entry_points_labels
            .then(|| BoundFamily::new(&metrics.entry_point, &entry_point_attributes(labels))),
        router: router_attributes(labels)
            .filter(|_| families.add_routers_labels)
            .map(|attributes| BoundFamily::new(&metrics.router, &attributes)),
        service: service_attributes(labels)
            .filter(|_| families.add_services_labels)
            .map(|attributes| BoundFamily::new(&metrics.service, &attributes)),
    }
}
