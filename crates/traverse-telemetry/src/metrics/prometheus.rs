//! The admin listener's `/metrics`: Prometheus text format 0.0.4, or OpenMetrics 1.0
//! when the scraper asks for it (only OpenMetrics can carry exemplars).
//!
//! Names follow the OpenTelemetry-to-Prometheus conventions: dots become
//! underscores, the unit is appended (`_seconds`, `_bytes`), monotonic sums are
//! counters ending in `_total`, and the resource becomes a `target_info` series.

use std::fmt::Write;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Gauge, Histogram, Metric, MetricData, ResourceMetrics, Sum,
};
use traverse_config::MetricFamilies;

use super::exemplars::Snapshot;
use super::{family_enabled, Metrics};

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists it, as Prometheus does when it
    /// wants exemplars; the classic text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Collects `metrics` and renders the families `families` selects.
pub fn render(metrics: &Metrics, families: &MetricFamilies, format: Format) -> String {
    let collected = metrics.collect();
    let exemplars = metrics.exemplars().snapshot();
    encode(&collected, families, &exemplars, format)
}

/// Renders collected metrics.
pub(crate) fn encode(
    collected: &ResourceMetrics,
    families: &MetricFamilies,
    exemplars: &Snapshot,
    format: Format,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    target_info(&mut out, collected, format);
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            if family_enabled(families, metric.name()) {
                encode_metric(&mut out, metric, exemplars, format);
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// The resource's attributes as the `target_info` info series.
fn target_info(out: &mut String, collected: &ResourceMetrics, format: Format) {
    let resource = collected.resource();
    if resource.is_empty() {
        return;
    }
    // OpenMetrics names an info family without the `_info` its sample carries.
    let (family, kind) = match format {
        Format::Text => ("target_info", "gauge"),
        Format::OpenMetrics => ("target", "info"),
    };
    let _ = writeln!(out, "# HELP {family} Target metadata");
    let _ = writeln!(out, "# TYPE {family} {kind}");
    let attributes: Vec<KeyValue> = resource
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    sample(out, "target_info", &attributes, None, "1");
}

fn encode_metric(out: &mut String, metric: &Metric, exemplars: &Snapshot, format: Format) {
    let base = base_name(metric.name(), metric.unit());
    match metric.data() {
        AggregatedMetrics::F64(data) => encode_data(out, metric, &base, data, exemplars, format),
        AggregatedMetrics::U64(data) => encode_data(out, metric, &base, data, exemplars, format),
        AggregatedMetrics::I64(data) => encode_data(out, metric, &base, data, exemplars, format),
    }
}

/// A value the SDK aggregates.
trait Number: Copy {
    fn render(self) -> String;
}

impl Number for f64 {
    fn render(self) -> String {
        float(self)
    }
}
impl Number for u64 {
    fn render(self) -> String {
        self.to_string()
    }
}
impl Number for i64 {
    fn render(self) -> String {
        self.to_string()
    }
}

fn encode_data<T: Number>(
    out: &mut String,
    metric: &Metric,
    base: &str,
    data: &MetricData<T>,
    exemplars: &Snapshot,
    format: Format,
) {
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => counter(out, metric, base, sum, format),
        MetricData::Sum(sum) => {
            header(out, metric, base, "gauge", format);
            for point in sum.data_points() {
                let attributes: Vec<KeyValue> = point.attributes().cloned().collect();
                sample(out, base, &attributes, None, &point.value().render());
            }
        }
        MetricData::Gauge(gauge) => gauge_points(out, metric, base, gauge, format),
        MetricData::Histogram(histogram) => {
            histogram_points(out, metric, base, histogram, exemplars, format)
        }
        // Not produced: every histogram here has explicit buckets.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn counter<T: Number>(out: &mut String, metric: &Metric, base: &str, sum: &Sum<T>, format: Format) {
    // OpenMetrics names the family without `_total` and the sample with it; the
    // classic format uses the sample name for both.
    let total = format!("{base}_total");
    match format {
        Format::Text => header(out, metric, &total, "counter", format),
        Format::OpenMetrics => header(out, metric, base, "counter", format),
    }
    for point in sum.data_points() {
        let attributes: Vec<KeyValue> = point.attributes().cloned().collect();
        sample(out, &total, &attributes, None, &point.value().render());
    }
}

fn gauge_points<T: Number>(
    out: &mut String,
    metric: &Metric,
    base: &str,
    gauge: &Gauge<T>,
    format: Format,
) {
    header(out, metric, base, "gauge", format);
    for point in gauge.data_points() {
        let attributes: Vec<KeyValue> = point.attributes().cloned().collect();
        sample(out, base, &attributes, None, &point.value().render());
    }
}

fn histogram_points<T: Number>(
    out: &mut String,
    metric: &Metric,
    base: &str,
    histogram: &Histogram<T>,
    exemplars: &Snapshot,
    format: Format,
) {
    header(out, metric, base, "histogram", format);
    let bucket_name = format!("{base}_bucket");
    for point in histogram.data_points() {
        let attributes: Vec<KeyValue> = point.attributes().cloned().collect();
        let mut with_le = attributes.clone();
        with_le.push(KeyValue::new("le", ""));
        let mut cumulative = 0;
        let bounds: Vec<f64> = point.bounds().collect();
        let counts: Vec<u64> = point.bucket_counts().collect();
        for (index, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = bounds
                .get(index)
                .map_or_else(|| "+Inf".to_owned(), |b| float(*b));
            if let Some(last) = with_le.last_mut() {
                *last = KeyValue::new("le", le);
            }
            let exemplar = match format {
                Format::OpenMetrics => exemplars.get(metric.name(), attributes.iter(), index),
                Format::Text => None,
            };
            sample(
                out,
                &bucket_name,
                &with_le,
                exemplar,
                &cumulative.to_string(),
            );
        }
        sample(
            out,
            &format!("{base}_sum"),
            &attributes,
            None,
            &point.sum().render(),
        );
        sample(
            out,
            &format!("{base}_count"),
            &attributes,
            None,
            &point.count().to_string(),
        );
    }
}

fn header(out: &mut String, metric: &Metric, name: &str, kind: &str, format: Format) {
    let help = metric.description();
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if format == Format::OpenMetrics {
        if let Some(unit) = unit_suffix(metric.unit()) {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
    }
}

/// One sample line, with an optional exemplar (OpenMetrics only).
fn sample(
    out: &mut String,
    name: &str,
    attributes: &[KeyValue],
    exemplar: Option<&super::Exemplar>,
    value: &str,
) {
    out.push_str(name);
    if !attributes.is_empty() {
        out.push('{');
        for (index, kv) in attributes.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(&label_name(kv.key.as_str()));
            out.push_str("=\"");
            out.push_str(&escape(&kv.value.as_str(), true));
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    if let Some(exemplar) = exemplar {
        let seconds = exemplar
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let _ = write!(
            out,
            " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {seconds:.3}",
            exemplar.trace_id,
            exemplar.span_id,
            float(exemplar.value)
        );
    }
    out.push('\n');
}

/// `http.server.request.duration` with unit `s` → `http_server_request_duration_seconds`.
pub fn base_name(name: &str, unit: &str) -> String {
    let mut base = metric_name(name);
    if let Some(suffix) = unit_suffix(unit) {
        if !base.ends_with(suffix) {
            base.push('_');
            base.push_str(suffix);
        }
    }
    base
}

/// The Prometheus unit word of an OpenTelemetry (UCUM) unit; `{request}`-style
/// annotations have none.
fn unit_suffix(unit: &str) -> Option<&'static str> {
    match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "By" => Some("bytes"),
        _ => None,
    }
}

fn metric_name(name: &str) -> String {
    sanitize(name, |c, first| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
    })
}

fn label_name(name: &str) -> String {
    sanitize(name, |c, first| {
        c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit())
    })
}

fn sanitize(name: &str, allowed: impl Fn(char, bool) -> bool) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if allowed(c, i == 0) { c } else { '_' })
        .collect()
}

/// Escapes a label value (`\`, `"`, newline) or HELP text (`\`, newline).
fn escape(text: &str, quotes: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if quotes => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Floats as both formats accept them.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // `{:?}` keeps a decimal point (`1.0`), which OpenMetrics expects of `le`.
        format!("{value:?}")
    }
}
