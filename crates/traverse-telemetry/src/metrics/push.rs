//! OTLP metrics push: every interval, the cumulative values go to the collector from
//! a dedicated thread, so a slow collector never touches the request path.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use tokio::sync::watch;
use tokio::time::Instant;
use traverse_config::MetricFamilies;

use super::{family_enabled, Metrics};
use crate::export::{send_with_retry, ExporterOptions, OtlpExporter, RetryPolicy};
use crate::pipeline::{ExportThread, StartError};

/// Resolved OTLP push configuration.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub exporter: ExporterOptions,
    pub interval: Duration,
    pub families: MetricFamilies,
    /// Replaces `service.name` in the pushed resource.
    pub service_name: Option<String>,
}

/// Owns the push thread; [`MetricsPush::shutdown`] sends the final values.
#[derive(Debug)]
pub struct MetricsPush {
    thread: ExportThread,
}

impl MetricsPush {
    pub fn start(metrics: Arc<Metrics>, settings: PushSettings) -> Result<MetricsPush, StartError> {
        let options = settings.exporter.clone();
        let thread = ExportThread::start(
            "traverse-otlp-metrics",
            options,
            move |exporter, closing| {
                let pusher = Pusher {
                    metrics,
                    settings,
                    exporter,
                    policy: RetryPolicy::default(),
                };
                pusher.run(closing)
            },
        )?;
        Ok(MetricsPush { thread })
    }

    /// Pushes the final values and stops, within `bound`.
    pub fn shutdown(self, bound: Duration) -> bool {
        self.thread.shutdown(bound)
    }
}

struct Pusher {
    metrics: Arc<Metrics>,
    settings: PushSettings,
    exporter: OtlpExporter,
    policy: RetryPolicy,
}

impl Pusher {
    /// Pushes every interval until closing, then once more before the deadline.
    async fn run(self, mut closing_rx: watch::Receiver<Option<Instant>>) {
        let mut failing = false;
        let mut next = Instant::now() + self.settings.interval;
        loop {
            tokio::select! {
                _ = closing_rx.changed() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            next = Instant::now() + self.settings.interval;
            let mut closing = closing_rx.clone();
            tokio::select! {
                // A push may retry until the next one is due.
                pushed = self.push(next) => report(pushed, &mut failing),
                _ = closing.changed() => break,
            }
        }
        // The final values, within the shutdown bound.
        let deadline = (*closing_rx.borrow()).unwrap_or_else(Instant::now);
        let _ = tokio::time::timeout_at(deadline, self.push(deadline)).await;
    }

    async fn push(&self, deadline: Instant) -> Result<(), String> {
        let request = encode(&self.metrics, &self.settings);
        let (_attempts, outcome) =
            send_with_retry(&self.exporter, &request, &self.policy, deadline).await;
        outcome.map(|_| ()).map_err(|error| error.to_string())
    }
}

/// The collected values as an OTLP request, restricted to the families this output
/// carries.
pub(crate) fn encode(metrics: &Metrics, settings: &PushSettings) -> ExportMetricsServiceRequest {
    let collected = metrics.collect();
    let mut request = ExportMetricsServiceRequest::from(&collected);
    for resource_metrics in &mut request.resource_metrics {
        if let (Some(name), Some(resource)) =
            (&settings.service_name, &mut resource_metrics.resource)
        {
            resource
                .attributes
                .retain(|kv| kv.key != semconv::SERVICE_NAME);
            resource.attributes.push(KeyValue {
                key: semconv::SERVICE_NAME.to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(name.clone())),
                }),
                ..KeyValue::default()
            });
        }
        for scope in &mut resource_metrics.scope_metrics {
            scope
                .metrics
                .retain(|metric| family_enabled(&settings.families, &metric.name));
        }
    }
    request
}

/// Logs the first failure of a streak and the recovery, not every push.
fn report(pushed: Result<(), String>, failing: &mut bool) {
    match pushed {
        Err(error) if !*failing => {
            *failing = true;
            tracing::warn!(%error, "metrics push failing");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("metrics push recovered");
        }
        _ => {}
    }
}
