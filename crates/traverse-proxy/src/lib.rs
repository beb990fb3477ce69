//! The data plane: Pingora `ProxyHttp` phases, load balancing, error→status mapping
//! and the admin API.
//!
//! Routing reads the current [`RoutingTable`] through an [`ArcSwap`]: one atomic load
//! per request, no lock. Providers publish a new table with [`GatewayState::publish`].

mod admin;
mod entrypoint;
mod errors;
mod forwarded;
mod gateway;
mod trace;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use traverse_config::MetricFamilies;
use traverse_provider::RoutingTable;
use traverse_telemetry::access_log::AccessLogger;
use traverse_telemetry::metrics::Metrics;
use traverse_telemetry::Tracer;

pub use admin::AdminApi;
pub use entrypoint::{entrypoint_service, EntryPointApp};
pub use errors::status_for_error;
pub use gateway::{Gateway, GatewayOptions, RequestCtx};

/// State shared by every entrypoint, the admin API and the providers.
#[derive(Debug, Default)]
pub struct GatewayState {
    routing: ArcSwap<RoutingTable>,
    /// Set once the first configuration is published; cleared when draining.
    ready: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    generation: AtomicU64,
    telemetry: Telemetry,
}

/// What the request path reports to; each part is `None` when it is off.
#[derive(Debug, Default, Clone)]
pub struct Telemetry {
    pub tracer: Option<Arc<Tracer>>,
    pub metrics: Option<Arc<Metrics>>,
    pub access_log: Option<Arc<AccessLogger>>,
    /// The families the admin listener's `/metrics` serves; `None`: no `/metrics`.
    pub prometheus: Option<MetricFamilies>,
}

impl GatewayState {
    /// A state with an empty routing table, not yet ready.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A state whose requests report to `telemetry`.
    pub fn with_telemetry(telemetry: Telemetry) -> Arc<Self> {
        Arc::new(GatewayState {
            telemetry,
            ..Self::default()
        })
    }

    /// The tracer, when tracing is on.
    pub fn tracer(&self) -> Option<&Arc<Tracer>> {
        self.telemetry.tracer.as_ref()
    }

    /// The metrics, when an output (Prometheus or OTLP) is on.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.telemetry.metrics.as_ref()
    }

    /// The access log, when enabled.
    pub fn access_log(&self) -> Option<&Arc<AccessLogger>> {
        self.telemetry.access_log.as_ref()
    }

    /// Atomically replaces the routing table; requests already matched keep the old one.
    pub fn publish(&self, table: RoutingTable) {
        self.routing.store(Arc::new(table));
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
    }

    /// The table in force now.
    pub fn routing(&self) -> Arc<RoutingTable> {
        self.routing.load_full()
    }

    /// How many tables have been published.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Ready to take traffic: configured and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining: readiness turns false so load balancers stop sending.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Requests currently being handled, across entrypoints.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// Counts a request as in flight until dropped (the end of the request's context).
#[derive(Debug)]
struct InFlight(Arc<GatewayState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
