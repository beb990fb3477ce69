//! OTLP metrics push: every interval, the cumulative values go to the collector from
//! a dedicated thread, so a slow collector never touches the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use traverse_config::MetricFamilies;

use super::{family_enabled, Metrics};
use crate::export::{send_with_retry, ExporterOptions, OtlpExporter, RetryPolicy};
use crate::pipeline::StartError;

/// Resolved OTLP push configuration.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub exporter: ExporterOptions,
    pub interval: Duration,
    pub families: MetricFamilies,
    /// Replaces `service.name` in the pushed resource.
    pub service_name: Option<String>,
}

/// Push outcomes, for the admin API.
#[derive(Debug, Default)]
pub struct PushStats {
    pushed: AtomicU64,
    failed: AtomicU64,
}

/// A copy of [`PushStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSnapshot {
    /// Pushes the collector accepted.
    pub pushed: u64,
    /// Pushes that failed after retries (the next push carries the same cumulative values).
    pub failed: u64,
}

impl PushStats {
    pub fn snapshot(&self) -> PushSnapshot {
        PushSnapshot {
            pushed: self.pushed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Owns the push thread; [`MetricsPush::shutdown`] sends the final values.
#[derive(Debug)]
pub struct MetricsPush {
    closing: watch::Sender<Option<Instant>>,
    done: std::sync::mpsc::Receiver<()>,
    stats: Arc<PushStats>,
}

impl MetricsPush {
    pub fn start(metrics: Arc<Metrics>, settings: PushSettings) -> Result<MetricsPush, StartError> {
        let (closing, mut closing_rx) = watch::channel(None);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let stats = Arc::new(PushStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("traverse-otlp-metrics".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(StartError::Thread(err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let exporter = match OtlpExporter::new(settings.exporter.clone()) {
                        Ok(exporter) => exporter,
                        Err(err) => {
                            let _ = ready_tx.send(Err(StartError::Exporter(err)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let pusher = Pusher {
                        metrics,
                        settings,
                        exporter,
                        stats: thread_stats,
                        policy: RetryPolicy::default(),
                    };
                    let mut failing = false;
                    let mut next = Instant::now() + pusher.settings.interval;
                    loop {
                        tokio::select! {
                            _ = closing_rx.changed() => break,
                            _ = tokio::time::sleep_until(next) => {}
                        }
                        next = Instant::now() + pusher.settings.interval;
                        let mut closing = closing_rx.clone();
                        tokio::select! {
                            // A push may retry until the next one is due.
                            pushed = pusher.push(next) => report(pushed, &mut failing),
                            _ = closing.changed() => break,
                        }
                    }
                    // The final values, within the shutdown bound.
                    let deadline = (*closing_rx.borrow()).unwrap_or_else(Instant::now);
                    let _ = tokio::time::timeout_at(deadline, pusher.push(deadline)).await;
                });
                let _ = done_tx.send(());
            })?;
        ready
            .recv()
            .map_err(|_| StartError::Thread(std::io::Error::other("metrics thread exited")))??;
        Ok(MetricsPush {
            closing,
            done,
            stats,
        })
    }

    pub fn stats(&self) -> Arc<PushStats> {
        Arc::clone(&self.stats)
    }

    /// Pushes the final values and stops, within `bound`.
    pub fn shutdown(self, bound: Duration) -> bool {
        let _ = self.closing.send(Some(Instant::now() + bound));
        self.done
            .recv_timeout(bound + Duration::from_millis(100))
            .is_ok()
    }
}

struct Pusher {
    metrics: Arc<Metrics>,
    settings: PushSettings,
    exporter: OtlpExporter,
    stats: Arc<PushStats>,
    policy: RetryPolicy,
}

impl Pusher {
    async fn push(&self, deadline: Instant) -> Result<(), String> {
        let request = encode(&self.metrics, &self.settings);
        let (_attempts, outcome) =
            send_with_retry(&self.exporter, &request, &self.policy, deadline).await;
        match outcome {
            Ok(_) => {
                self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                Err(error.to_string())
            }
        }
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
