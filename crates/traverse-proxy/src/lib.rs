//! The data plane: Pingora `ProxyHttp` phases, load balancing, error→status mapping
//! and the admin API.
//!
//! Routing reads the current [`RoutingTable`] through an [`ArcSwap`]: one atomic load
//! per request, no lock. Providers publish a new table with [`GatewayState::publish`].
//!
//! The request path, in the order a request meets it: [`gateway`] (the Pingora phases),
//! `routing` (what the matched route decides),
//! [`exchange`] (what happened to the request, and the one place that records it),
//! `select` (each attempt's endpoint), `middleware` (the router's chain), `uplink`
//! (the hop across clusters), `host`, `forwarded` and `respond` (helpers).

mod accept;
mod admin;
mod clock;
mod edge;
mod entrypoint;
mod errors;
pub mod exchange;
mod forwarded;
pub mod gateway;
pub mod health_check;
mod host;
mod middleware;
pub mod mirror;
pub mod multicluster;
mod peer_call;
mod respond;
mod routing;
mod select;
mod trace;
mod transport;
mod uplink;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::HeaderName;
use traverse_config::{Config, MetricFamilies};
use traverse_model::{CheckHealth, HealthCheck, PassiveHealth, RoutingTable};
use traverse_telemetry::access_log::AccessLogger;
use traverse_telemetry::metrics::Metrics;
use traverse_telemetry::Tracer;

pub use accept::{Admission, ConnectionStats};
pub use admin::AdminApi;
pub use entrypoint::{entrypoint_service, Certificates, EntryPointApp, Redirect};
pub use errors::status_for_error;
pub use exchange::Exchange;
pub use gateway::{Gateway, GatewayOptions};

use multicluster::advertisement::Advertiser;
use multicluster::Children;

/// The health states attached to the endpoints of the table in force.
#[derive(Debug, Default)]
struct EndpointHealth {
    passive: HashMap<SocketAddr, Arc<PassiveHealth>>,
    checks: HashMap<(SocketAddr, Arc<HealthCheck>), Arc<CheckHealth>>,
}

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
    topology: Topology,
    /// What this gateway advertises to parents (meaningful on a child).
    advertiser: Advertiser,
    /// Passive health of every Service endpoint address, and the verdict of each active
    /// check on each address, in the table in force; attached to each table's endpoints
    /// when it is published, so a reload keeps them. Locked only by `publish`.
    endpoint_health: Mutex<EndpointHealth>,
    /// Woken at each publish, for the active health checks to follow the table.
    tables_published: tokio::sync::Notify,
    /// Connection counts per entrypoint, by name. Locked only when an entrypoint starts
    /// and when the admin API reads them.
    connections: Mutex<BTreeMap<String, Arc<ConnectionStats>>>,
    /// Copies of requests sent to mirrors, and their counters.
    mirrors: Arc<mirror::Mirrors>,
}

/// Where this gateway stands in a multi-cluster topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// `cluster.name`: sent to children, advertised to parents, set on cross-cluster spans.
    pub cluster: Arc<str>,
    /// On a parent: the children it forwards to.
    pub children: Option<Arc<Children>>,
    pub source_cluster_header: HeaderName,
    pub max_hops: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            cluster: "default".into(),
            children: None,
            source_cluster_header: HeaderName::from_static("x-source-cluster"),
            max_hops: 3,
        }
    }
}

impl Topology {
    /// The topology `config` describes; children are created but not yet followed.
    /// Fails when a child's TLS files are unusable.
    pub fn new(config: &Config) -> Result<Self, String> {
        let multicluster = &config.multicluster;
        let children = if multicluster.children.is_empty() {
            None
        } else {
            Some(Children::new(multicluster)?)
        };
        Ok(Topology {
            cluster: config.cluster.name.as_str().into(),
            children,
            // Validated as a header name with the configuration.
            source_cluster_header: HeaderName::from_bytes(
                multicluster.source_cluster_header.as_bytes(),
            )
            .unwrap_or_else(|_| HeaderName::from_static("x-source-cluster")),
            max_hops: multicluster.max_hops,
        })
    }
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

    /// A state whose requests report to `telemetry`, placed in `topology`.
    pub fn with(telemetry: Telemetry, topology: Topology) -> Arc<Self> {
        Arc::new(GatewayState {
            telemetry,
            topology,
            ..Self::default()
        })
    }

    /// Where this gateway stands among clusters.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// What this gateway advertises to parents now.
    pub fn advertisement(&self) -> Arc<multicluster::Advertisement> {
        self.advertiser.current()
    }

    fn advertise(&self) {
        self.advertiser.update(
            &self.topology.cluster,
            self.draining.load(Ordering::Acquire),
            &self.routing.load().uplinks,
        );
    }

    /// What the request path reports to.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The tracer, when tracing is on.
    pub fn tracer(&self) -> Option<&Arc<Tracer>> {
        self.telemetry.tracer.as_ref()
    }

    /// The metrics, when an output (Prometheus or OTLP) is on.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.telemetry.metrics.as_ref()
    }

    /// What became of the copies sent to mirrors.
    pub fn mirror_stats(&self) -> &mirror::MirrorStats {
        &self.mirrors.stats
    }

    /// The access log, when enabled.
    pub fn access_log(&self) -> Option<&Arc<AccessLogger>> {
        self.telemetry.access_log.as_ref()
    }

    /// Atomically replaces the routing table; requests already matched keep the old one.
    pub fn publish(&self, table: RoutingTable) {
        self.attach_health(&table);
        // Counted before the table is visible: whoever sees a table and then reads the
        // generation (the admin API) gets that table's generation or a later one, never
        // the one before it.
        self.generation.fetch_add(1, Ordering::Release);
        self.routing.store(Arc::new(table));
        self.ready.store(true, Ordering::Release);
        self.advertise();
        self.tables_published.notify_one();
    }

    /// Gives `table`'s endpoints the health state of their addresses (one per address,
    /// shared by every route) and of their Service's active check (one per address and
    /// check), each kept while it stays in the table.
    // Checks are keyed by value; their TLS settings' interior mutability is the data
    // plane's cache of them, which their `Hash` and `Eq` leave out.
    #[allow(clippy::mutable_key_type)]
    fn attach_health(&self, table: &RoutingTable) {
        let mut cells = match self.endpoint_health.lock() {
            Ok(cells) => cells,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut kept = EndpointHealth {
            passive: HashMap::with_capacity(cells.passive.len()),
            checks: HashMap::with_capacity(cells.checks.len()),
        };
        for endpoint in table.endpoints() {
            let cell = kept.passive.entry(endpoint.address).or_insert_with(|| {
                cells
                    .passive
                    .get(&endpoint.address)
                    .cloned()
                    .unwrap_or_default()
            });
            endpoint.attach_health(Arc::clone(cell));
        }
        for backend in table.backends() {
            let Some(check) = &backend.health_check else {
                continue;
            };
            for (endpoint, _) in backend.servers.items() {
                let key = (endpoint.address, Arc::clone(check));
                let cell = match kept.checks.get(&key) {
                    Some(cell) => cell,
                    None => {
                        let cell = cells.checks.get(&key).cloned().unwrap_or_default();
                        kept.checks.entry(key).or_insert(cell)
                    }
                };
                endpoint.attach_check(Arc::clone(cell));
            }
        }
        *cells = kept;
    }

    /// The table in force now.
    pub fn routing(&self) -> Arc<RoutingTable> {
        self.routing.load_full()
    }

    /// How many tables have been published.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Ready to take traffic: configured and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining: readiness turns false so load balancers stop
    /// sending, and parents are told to send no new requests.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.advertise();
    }

    /// Whether SIGTERM was received: responses close their connections from then on.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Requests currently being handled, across entrypoints.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The connection counts of the entrypoint `name`, created on first use.
    pub fn connection_stats(&self, name: &str) -> Arc<ConnectionStats> {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(connections.entry(name.to_owned()).or_default())
    }

    /// Every entrypoint's connection counts, by name.
    pub fn all_connection_stats(&self) -> BTreeMap<String, Arc<ConnectionStats>> {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// Whether a Service endpoint takes new requests now (not passively ejected, not
/// failing an active health check).
pub fn in_rotation(endpoint: &traverse_model::Endpoint) -> bool {
    traverse_model::Candidate::usable(endpoint, clock::now_ms())
}

/// Counts a request as in flight until dropped (the end of the request's context).
#[derive(Debug)]
struct InFlight(Arc<GatewayState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
