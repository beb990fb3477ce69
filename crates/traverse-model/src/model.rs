//! Routing table, routers, targets and backends.
//!
//! Everything here is immutable once built. A new configuration is a new
//! [`RoutingTable`], published atomically; requests never take a lock to route.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use traverse_router::RouteTable;

use crate::balancer::{cookie_value, Balancer, Sticky};
use crate::diagnostics::Diagnostics;
use crate::health::{CheckHealth, HealthCheck, PassiveHealth};
use crate::middleware::Middleware;
use crate::weighted::{Candidate, Weighted};

/// One published configuration: the route table and what was wrong with its inputs.
#[derive(Debug, Default)]
pub struct RoutingTable {
    pub routes: RouteTable<Arc<Router>>,
    pub diagnostics: Diagnostics,
    /// What a child advertises to its parents, one entry per Uplink object.
    pub uplinks: Vec<AdvertisedUplink>,
}

/// An Uplink as a child advertises it to parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedUplink {
    pub namespace: String,
    pub name: String,
    pub weight: u32,
    /// Uplink entrypoints serving it.
    pub entry_points: Vec<String>,
    /// At least one route bound to it can serve (its services have ready endpoints).
    pub ready: bool,
    /// The routers bound to it, for the admin API.
    pub routers: Vec<Arc<str>>,
}

/// A routing rule resolved against its middlewares and services.
#[derive(Debug)]
pub struct Router {
    /// Stable name, `namespace/ingressroute#index`: used in logs, spans and metrics
    /// instead of the rule text. Shared, so telemetry attributes reuse it without copying.
    pub name: Arc<str>,
    /// The rule's path template (`/api/*`), the `http.route` of spans, metrics and
    /// access logs; derived from the rule once, when the table is built.
    pub route: Arc<str>,
    /// The rule as written, for the admin API (the same text the route's rule holds).
    pub rule: Arc<str>,
    pub priority: i64,
    pub entry_points: Vec<String>,
    /// Applied in order to the request, and in reverse order to the response.
    pub middlewares: Vec<Middleware>,
    /// The Middleware objects those steps come from, `namespace/name`, for the admin API.
    pub middleware_names: Vec<String>,
    pub target: Target,
}

/// Where a matched request goes.
#[derive(Debug)]
pub enum Target {
    /// Weighted round robin across the route's services (nested for TraefikServices).
    Services(Arc<Balancer>),
    /// A parent's route to uplinks that children advertise; which children serve each
    /// is known only at run time, from their advertisements.
    Uplinks(Weighted<Arc<UplinkRef>>),
    /// The route exists but cannot be served (e.g. every Service it names is missing):
    /// it answers this status instead of vanishing into a 404.
    Unavailable { status: u16, reason: String },
}

/// A Kubernetes Service port resolved to the endpoints that may receive traffic.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, as reported in logs and telemetry (shared, like `Router::name`).
    pub name: Arc<str>,
    pub scheme: Scheme,
    /// Send the client's Host header upstream (Traefik's default) rather than the endpoint address.
    pub pass_host_header: bool,
    /// Ready endpoints; empty means the Service exists but nothing can serve (503).
    pub servers: Weighted<Endpoint>,
    /// The ServersTransport the service reference names: how to connect to its servers.
    pub transport: Option<Arc<ServersTransport>>,
    /// `sticky.cookie`: keeps a client on one endpoint (keys are the endpoints' URLs).
    pub sticky: Option<Sticky>,
    /// `healthCheck`: probes each endpoint in the background.
    pub health_check: Option<Arc<HealthCheck>>,
    /// `strategy`: how an endpoint is chosen.
    pub strategy: Strategy,
}

/// Traefik's load-balancing `strategy` of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Weighted round robin (`wrr`, Traefik's default).
    #[default]
    Wrr,
    /// Power of two choices (`p2c`): of two endpoints drawn at random, the one with fewer
    /// requests in flight.
    P2c,
}

impl Backend {
    /// The endpoint the request's sticky cookie names, if it names one.
    pub fn sticky_endpoint(&self, headers: &http::HeaderMap) -> Option<SocketAddr> {
        let sticky = self.sticky.as_ref()?;
        let index = sticky.index_of(cookie_value(headers, &sticky.cookie.name)?)?;
        self.servers.items().get(index).map(|(e, _)| e.address)
    }
}

/// A ServersTransport: TLS towards servers and the timeouts of those connections.
#[derive(Debug, Default)]
pub struct ServersTransport {
    /// `namespace/name`, for logs.
    pub name: String,
    /// Its `serverName`, `insecureSkipVerify`, `rootCAs` and client certificate; shared
    /// with the Service's https health checks, which connect as its requests do.
    pub tls: Arc<ClientTls>,
    pub dial_timeout: Option<std::time::Duration>,
    pub response_header_timeout: Option<std::time::Duration>,
    pub idle_conn_timeout: Option<std::time::Duration>,
    /// Speak HTTP/1.1 only to `https` servers (else HTTP/2 when the server offers it).
    pub disable_http2: bool,
}

/// How the gateway verifies a server and presents itself to it over TLS (Traefik's
/// `ClientTLS`): a ServersTransport's settings, a forwardAuth `tls`. Compared and hashed
/// by its settings, not by what the data plane made of them.
#[derive(Debug, Default)]
pub struct ClientTls {
    /// Name verified against the server's certificate and sent as SNI (default: each
    /// user of the settings says).
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    /// DER of the CAs the server's certificate must chain to (empty: the system's).
    pub root_cas: Vec<Vec<u8>>,
    /// DER chain and PKCS#8/PKCS#1/SEC1 key DER of the client certificate presented.
    pub client_identity: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    /// The data plane's own form of the above, made on first use and kept with the
    /// table (the model does not know the data plane's types).
    pub prepared: OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl ClientTls {
    fn settings(&self) -> impl PartialEq + std::hash::Hash + '_ {
        (
            &self.server_name,
            self.insecure_skip_verify,
            &self.root_cas,
            &self.client_identity,
        )
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings() == other.settings()
    }
}

impl Eq for ClientTls {}

impl std::hash::Hash for ClientTls {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.settings().hash(state);
    }
}

/// One address a Service's traffic can go to.
#[derive(Debug)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// Shared by every route to this address and kept across reloads: the data plane
    /// attaches it when the table is published, so a request reads it without a lookup.
    health: OnceLock<Arc<PassiveHealth>>,
    /// The verdict of its Service's active health check on this address, shared by the
    /// Services with the same check; attached at publish like `health`.
    check: OnceLock<Arc<CheckHealth>>,
    /// Requests in flight to it through this Service (counted for `p2c` only).
    in_flight: AtomicU64,
}

impl Endpoint {
    /// An endpoint without health state yet (in rotation until one is attached).
    pub fn new(address: SocketAddr) -> Self {
        Endpoint {
            address,
            health: OnceLock::new(),
            check: OnceLock::new(),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Requests in flight to this endpoint (for `p2c`).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// One more request in flight; [`Endpoint::finished`] counts it out.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request counted by [`Endpoint::started`] is over.
    pub fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Attaches the shared health state of this address; the first one attached stays.
    pub fn attach_health(&self, health: Arc<PassiveHealth>) {
        let _ = self.health.set(health);
    }

    /// The health state, once attached.
    pub fn health(&self) -> Option<&PassiveHealth> {
        self.health.get().map(Arc::as_ref)
    }

    /// The shared health state, for the background checks that write it.
    pub fn shared_health(&self) -> Option<Arc<PassiveHealth>> {
        self.health.get().cloned()
    }

    /// Attaches the state of its Service's active check on this address; the first one
    /// attached stays.
    pub fn attach_check(&self, check: Arc<CheckHealth>) {
        let _ = self.check.set(check);
    }

    /// The active check's state, once attached, for the background check that writes it.
    pub fn shared_check(&self) -> Option<Arc<CheckHealth>> {
        self.check.get().cloned()
    }

    /// Whether its Service's active health check fails on it: out of rotation, and
    /// never tried, not even when nothing else is left.
    pub fn failing_check(&self) -> bool {
        self.check.get().is_some_and(|c| c.failing())
    }
}

impl Candidate for Endpoint {
    fn address(&self) -> Option<SocketAddr> {
        Some(self.address)
    }

    fn usable(&self, now_ms: u64) -> bool {
        !self.failing_check() && self.health().is_none_or(|h| !h.ejected(now_ms))
    }

    // A passive ejection is a guess from a few failed requests; a failing check is a
    // probe's verdict, and Traefik answers 503 rather than try such a server.
    fn last_resort(&self) -> bool {
        !self.failing_check()
    }
}

impl RoutingTable {
    /// Every Service endpoint of every route (an address appears once per route using it).
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.backends()
            .flat_map(|backend| backend.servers.items().iter().map(|(e, _)| e))
    }

    /// Every Service port of every route (once per route using it).
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.routes
            .routes()
            .filter_map(|route| match &route.value.target {
                Target::Services(services) => Some(services),
                _ => None,
            })
            .flat_map(|services| services.backends())
            .map(|(backend, _)| backend)
    }
}

/// A parent route's reference to an uplink, matched against children's advertisements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UplinkRef {
    /// `kind: Uplink` with a name and namespace: exactly that Uplink.
    Named { namespace: String, name: String },
    /// Traefik Hub's `<namespace>-<name>@multicluster`, without the suffix.
    Hub(String),
}

impl UplinkRef {
    /// Whether an advertised `namespace/name` is the uplink this refers to.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        match self {
            UplinkRef::Named {
                namespace: n,
                name: m,
            } => n == namespace && m == name,
            UplinkRef::Hub(joined) => {
                joined
                    .strip_prefix(namespace)
                    .and_then(|rest| rest.strip_prefix('-'))
                    == Some(name)
            }
        }
    }
}

impl std::fmt::Display for UplinkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UplinkRef::Named { namespace, name } => write!(f, "{namespace}/{name}"),
            UplinkRef::Hub(joined) => write!(f, "{joined}@multicluster"),
        }
    }
}

/// How to speak to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
    /// Cleartext HTTP/2 with prior knowledge.
    H2c,
}

impl Scheme {
    /// The scheme's name in manifests and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::H2c => "h2c",
        }
    }
}
