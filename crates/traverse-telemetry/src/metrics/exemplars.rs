//! Exemplars: the trace of a recent request in each duration-histogram bucket, so a
//! latency spike on a dashboard leads to a trace.
//!
//! The SDK does not keep exemplars, so they are kept here. The request path only
//! offers a sampled request to a small lock-free ring (overwriting the oldest when
//! full); a collection drains the ring into the latest exemplar per series and
//! bucket, under a lock only the collecting side takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crossbeam_queue::ArrayQueue;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::KeyValue;

use super::{
    entry_point_attributes, router_attributes, server_attributes, service_attributes,
    RequestLabels, DURATION_BUCKETS,
};

/// Sampled requests kept between two collections; older ones are overwritten.
const RING_SIZE: usize = 512;

/// One request's trace, attached to the bucket its duration fell into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// Seconds.
    pub value: f64,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub time: SystemTime,
}

/// Which exemplar: histogram and series (see [`series_key`]), and bucket index.
type Key = (String, usize);

#[derive(Debug)]
pub(crate) struct Exemplars {
    recent: ArrayQueue<Sample>,
    latest: Mutex<HashMap<Key, Exemplar>>,
}

impl Default for Exemplars {
    fn default() -> Self {
        Exemplars {
            recent: ArrayQueue::new(RING_SIZE),
            latest: Mutex::new(HashMap::new()),
        }
    }
}

/// A sampled request, owned so it outlives the request.
#[derive(Debug)]
struct Sample {
    entry_point: Arc<str>,
    router: Option<Arc<str>>,
    route: Option<Arc<str>>,
    service: Option<Arc<str>>,
    method: &'static str,
    status: u16,
    protocol: &'static str,
    scheme: &'static str,
    exemplar: Exemplar,
}

impl Exemplars {
    /// Called on the request path: never blocks.
    pub(crate) fn offer(
        &self,
        labels: &RequestLabels,
        seconds: f64,
        trace_id: TraceId,
        span_id: SpanId,
    ) {
        let _overwritten = self.recent.force_push(Sample {
            entry_point: Arc::clone(labels.entry_point),
            router: labels.router.cloned(),
            route: labels.route.cloned(),
            service: labels.service.cloned(),
            method: labels.method,
            status: labels.status,
            protocol: labels.protocol,
            scheme: labels.scheme,
            exemplar: Exemplar {
                value: seconds,
                trace_id,
                span_id,
                time: SystemTime::now(),
            },
        });
    }

    /// The latest exemplars, after taking in what was offered since the last call.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut latest = match self.latest.lock() {
            Ok(latest) => latest,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some(sample) = self.recent.pop() {
            let labels = RequestLabels {
                entry_point: &sample.entry_point,
                router: sample.router.as_ref(),
                route: sample.route.as_ref(),
                service: sample.service.as_ref(),
                method: sample.method,
                status: sample.status,
                protocol: sample.protocol,
                scheme: sample.scheme,
            };
            let bucket = bucket_index(sample.exemplar.value);
            let mut keep = |histogram: &str, attributes: &[KeyValue]| {
                latest.insert(
                    (series_key(histogram, attributes.iter()), bucket),
                    sample.exemplar,
                );
            };
            keep("http.server.request.duration", &server_attributes(&labels));
            keep(
                "traverse.entrypoint.request.duration",
                &entry_point_attributes(&labels),
            );
            if let Some(attributes) = router_attributes(&labels) {
                keep("traverse.router.request.duration", &attributes);
            }
            if let Some(attributes) = service_attributes(&labels) {
                keep("traverse.service.request.duration", &attributes);
            }
        }
        Snapshot(latest.clone())
    }
}

/// Exemplars at one collection.
#[derive(Debug, Default)]
pub struct Snapshot(HashMap<Key, Exemplar>);

impl Snapshot {
    /// The exemplar of `bucket` (an index into the bounds, `bounds.len()` for +Inf) of
    /// the series of `histogram` with `attributes`.
    pub fn get<'a>(
        &self,
        histogram: &str,
        attributes: impl Iterator<Item = &'a KeyValue>,
        bucket: usize,
    ) -> Option<&Exemplar> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(&(series_key(histogram, attributes), bucket))
    }
}

/// Index of the bucket `value` falls into; buckets include their upper bound.
pub(crate) fn bucket_index(value: f64) -> usize {
    DURATION_BUCKETS
        .iter()
        .position(|bound| value <= *bound)
        .unwrap_or(DURATION_BUCKETS.len())
}

/// A series' identity: the instrument's name and its attributes sorted by key.
pub(crate) fn series_key<'a>(
    histogram: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
) -> String {
    let mut pairs: Vec<(&str, String)> = attributes
        .map(|kv| (kv.key.as_str(), kv.value.as_str().into_owned()))
        .collect();
    pairs.sort_unstable();
    let mut key = histogram.to_owned();
    for (name, value) in pairs {
        key.push('\u{1f}');
        key.push_str(name);
        key.push('=');
        key.push_str(&value);
    }
    key
}
