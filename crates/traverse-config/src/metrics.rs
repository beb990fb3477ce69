//! Request, upstream, configuration and telemetry metrics.

use std::time::Duration;

use serde::Deserialize;

use crate::tracing::{Otlp, OtlpGrpc, OtlpHttp};

/// Request, upstream, configuration and telemetry metrics. The resource (service name,
/// resource attributes) is the one configured under `tracing`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    /// Scraped at the admin listener's `/metrics`.
    pub prometheus: Prometheus,
    /// Pushed to a collector.
    pub otlp: MetricsOtlp,
}

/// Which per-entrypoint, per-router and per-service metric families an output carries
/// (Traefik's switches; each family multiplies series by its label's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricFamilies {
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
}

impl Default for MetricFamilies {
    fn default() -> Self {
        MetricFamilies {
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
        }
    }
}

impl MetricFamilies {
    /// Every family either side carries.
    pub fn union(self, other: MetricFamilies) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels || other.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels || other.add_routers_labels,
            add_services_labels: self.add_services_labels || other.add_services_labels,
        }
    }
}

/// The Prometheus text endpoint on the admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Prometheus {
    pub enabled: bool,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        // The families' defaults are those of every output.
        let families = MetricFamilies::default();
        Prometheus {
            enabled: true,
            add_entry_points_labels: families.add_entry_points_labels,
            add_routers_labels: families.add_routers_labels,
            add_services_labels: families.add_services_labels,
        }
    }
}

impl Prometheus {
    pub fn families(&self) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels,
            add_services_labels: self.add_services_labels,
        }
    }
}

/// OTLP metrics push: the transport keys of [`Otlp`] plus the push settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsOtlp {
    /// Unset: enabled when `http` or `grpc` is given or an `OTEL_EXPORTER_OTLP_*ENDPOINT`
    /// variable is set.
    pub enabled: Option<bool>,
    pub http: Option<OtlpHttp>,
    pub grpc: Option<OtlpGrpc>,
    /// Time between two pushes of the cumulative values (default
    /// `OTEL_METRIC_EXPORT_INTERVAL`, else 10s).
    #[serde(with = "humantime_serde")]
    pub push_interval: Option<Duration>,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
    /// `service.name` of the metrics resource; default: the tracing service name.
    pub service_name: Option<String>,
}

impl Default for MetricsOtlp {
    fn default() -> Self {
        let families = MetricFamilies::default();
        MetricsOtlp {
            enabled: None,
            http: None,
            grpc: None,
            push_interval: None,
            add_entry_points_labels: families.add_entry_points_labels,
            add_routers_labels: families.add_routers_labels,
            add_services_labels: families.add_services_labels,
            service_name: None,
        }
    }
}

impl MetricsOtlp {
    /// The transport part, resolved like every other signal's.
    pub fn transport(&self) -> Otlp {
        Otlp {
            enabled: self.enabled,
            http: self.http.clone(),
            grpc: self.grpc.clone(),
        }
    }

    pub fn families(&self) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels,
            add_services_labels: self.add_services_labels,
        }
    }
}
