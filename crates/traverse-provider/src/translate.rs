//! The pure step from a [`Snapshot`] to a [`RoutingTable`].
//!
//! Resolution rules, in the order a request meets them:
//! - a route whose rule does not parse is left out (error diagnostic);
//! - a route that names a missing or unusable Middleware fails closed: it answers 503,
//!   because serving it without, say, its auth middleware would be worse than not serving;
//! - each service reference resolves Service → port (by number or name) → EndpointSlices
//!   → ready endpoints; unresolved references are dropped with a diagnostic, and a route
//!   left with no service answers 503 instead of vanishing into a 404;
//! - fields that parse but are not acted on are reported as warnings.

mod depends;
mod health_checks;
mod middlewares;
mod routes;
mod services;
mod traefik_services;
mod transports;
mod uplinks;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use traverse_api::{EndpointSlice, IngressRoute, Service, TraefikService, Uplink};
use traverse_router::{Interner, RouteTable};

use self::depends::{Changed, Mentions};
use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
use crate::model::{Balancer, Middleware, RoutingTable};
use crate::snapshot::{Object, Snapshot};

#[cfg(test)]
mod tests;

/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The entrypoints configured on a gateway, and which of them are uplink entrypoints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryPoints {
    names: BTreeSet<String>,
    uplinks: BTreeSet<String>,
    /// Those that terminate TLS: the only ones serving routes with `spec.tls`.
    tls: BTreeSet<String>,
}

impl EntryPoints {
    /// From `(name, is_uplink)` pairs. An empty set skips the checks against them.
    pub fn new(entry_points: impl IntoIterator<Item = (String, bool)>) -> Self {
        let mut names = BTreeSet::new();
        let mut uplinks = BTreeSet::new();
        for (name, uplink) in entry_points {
            if uplink {
                uplinks.insert(name.clone());
            }
            names.insert(name);
        }
        EntryPoints {
            names,
            uplinks,
            tls: BTreeSet::new(),
        }
    }

    /// Marks `names` as the entrypoints that terminate TLS.
    pub fn with_tls(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.tls = names.into_iter().collect();
        self
    }

    /// The TLS entrypoints among a route's `spec.entryPoints` (empty: the defaults for
    /// routes), as Traefik serves a router with `tls` on TLS entrypoints only. Without
    /// configured entrypoints to check against, every name stands.
    pub(crate) fn tls_of(&self, named: &[String]) -> Vec<String> {
        if self.names.is_empty() {
            return named.to_vec();
        }
        let candidates: Vec<String> = if named.is_empty() {
            self.default_for_routes()
                .map(|d| {
                    if d.is_empty() {
                        self.names.iter().cloned().collect()
                    } else {
                        d
                    }
                })
                .unwrap_or_default()
        } else {
            named.to_vec()
        };
        candidates
            .into_iter()
            .filter(|n| self.tls.contains(n))
            .collect()
    }

    /// Routes that name no entrypoint listen on these: every entrypoint but the uplink
    /// ones, so parents' traffic never meets routes written for clients (empty: all).
    /// `None` when only uplink entrypoints exist: such a route listens nowhere.
    fn default_for_routes(&self) -> Option<Vec<String>> {
        if self.uplinks.is_empty() {
            return Some(Vec::new());
        }
        let others: Vec<String> = self.names.difference(&self.uplinks).cloned().collect();
        (!others.is_empty()).then_some(others)
    }
}

/// Builds the routing table for `snapshot`. `entry_points` are those configured on this
/// gateway; routes naming others are reported.
///
/// Rules come from the snapshot's [`Rules`](crate::Rules) interner: a rule text seen in
/// an earlier translation by the same provider is not parsed again, and every route
/// using the same regex shares one compiled copy. The result is the same as with a
/// fresh interner.
pub fn translate(snapshot: &Snapshot, entry_points: &EntryPoints) -> RoutingTable {
    let mut rules = snapshot.rules.lock();
    let mut memo = snapshot.rules.routes();
    let table = translate_with(snapshot, entry_points, &mut rules, &mut memo);
    // Keep what the new table (and the one still serving) use, forget the rest.
    rules.sweep();
    table
}

fn translate_with(
    snapshot: &Snapshot,
    entry_points: &EntryPoints,
    rules: &mut Interner,
    memo: &mut Memo,
) -> RoutingTable {
    let mut translator = Translator {
        snapshot,
        rules,
        diagnostics: Diagnostics::default(),
        services: index(&snapshot.services),
        slices: HashMap::new(),
        middlewares: HashMap::new(),
        traefik_services: index(&snapshot.traefik_services),
        balancers: HashMap::new(),
        uplinks: index(&snapshot.uplinks),
        uplink_routers: HashMap::new(),
        transports: HashMap::new(),
        backends: HashMap::new(),
    };
    for slice in &snapshot.endpoint_slices {
        let (namespace, _) = slice.key();
        if let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            translator
                .slices
                .entry((namespace, service.as_str()))
                .or_default()
                .push(slice.as_ref());
        }
    }
    translator.report_duplicates(&snapshot.services);
    translator.report_duplicates(&snapshot.endpoint_slices);
    translator.report_duplicates(&snapshot.middlewares);
    translator.report_duplicates(&snapshot.traefik_services);
    translator.report_duplicates(&snapshot.ingress_routes);
    translator.report_duplicates(&snapshot.uplinks);
    for middleware in &snapshot.middlewares {
        translator.resolve_middleware(middleware, &mut Vec::new());
    }
    translator.resolve_traefik_services();

    let mut ingress_routes: Vec<&Arc<IngressRoute>> = Vec::new();
    let mut seen = BTreeSet::new();
    for ingress_route in &snapshot.ingress_routes {
        if seen.insert(ingress_route.key()) {
            ingress_routes.push(ingress_route);
        }
    }
    // Sorted so that equal-priority ties resolve the same way whatever the input order.
    ingress_routes.sort_by_key(|r| r.key());
    let mut routes = Vec::new();
    // What the IngressRoutes kept from the last translation resolved against, and what
    // changed in it since.
    let others = others_of(snapshot);
    let changed = match &memo.against {
        Some((before, same_entry_points)) if same_entry_points == entry_points => {
            Changed::between(before, &others)
        }
        _ => Changed::Everything,
    };
    let mut next = Memo {
        against: Some((others, entry_points.clone())),
        routes: HashMap::with_capacity(ingress_routes.len()),
    };
    for ingress_route in ingress_routes {
        let key = Arc::as_ptr(ingress_route) as usize;
        let sources = snapshot.sources.get(&ingress_route.object_ref());
        let kept = memo
            .routes
            .remove(&key)
            .filter(|kept| kept.sources.as_ref() == sources && !kept.mentions.any_in(&changed));
        if let Some(kept) = kept {
            routes.extend(kept.routes.iter().cloned());
            for diagnostic in &kept.diagnostics {
                translator.diagnostics.push(diagnostic.clone());
            }
            next.routes.insert(key, kept);
            continue;
        }
        let (routes_before, reported_before) = (routes.len(), translator.diagnostics.len());
        let bound_before = translator
            .uplink_routers
            .values()
            .map(Vec::len)
            .sum::<usize>();
        translator.ingress_route(ingress_route, entry_points, &mut routes);
        // Routes bound to an Uplink also feed its advertisement: always translated.
        if translator
            .uplink_routers
            .values()
            .map(Vec::len)
            .sum::<usize>()
            == bound_before
        {
            next.routes.insert(
                key,
                Translated {
                    _object: Arc::clone(ingress_route),
                    sources: sources.cloned(),
                    mentions: Mentions::of(&ingress_route.spec),
                    routes: routes[routes_before..].to_vec(),
                    diagnostics: translator
                        .diagnostics
                        .iter()
                        .skip(reported_before)
                        .cloned()
                        .collect(),
                },
            );
        }
    }
    *memo = next;
    let uplinks = translator.advertised_uplinks(entry_points);

    let mut diagnostics = translator.diagnostics;
    diagnostics.normalize();
    RoutingTable {
        routes: RouteTable::new(routes),
        diagnostics,
        uplinks,
    }
}

/// The routes of the last translation by IngressRoute. The next translation reuses those
/// of every IngressRoute it still holds (the same object, from the same place) unless
/// the entrypoints changed, or another object it may depend on (one its spec names, or
/// one reached through a Middleware, TraefikService or ServersTransport it names): see
/// [`Changed`].
#[derive(Default)]
pub(crate) struct Memo {
    /// Every object of the last snapshot but its IngressRoutes, and the entrypoints.
    against: Option<(Snapshot, EntryPoints)>,
    /// By the IngressRoute's address: its `Arc` is kept here, so no other takes it.
    routes: HashMap<usize, Translated>,
}

struct Translated {
    /// Held so that the address keying it stays this object's.
    _object: Arc<IngressRoute>,
    sources: Option<Vec<String>>,
    /// The names its spec mentions, to tell whether a change can affect it.
    mentions: Mentions,
    routes: Vec<traverse_router::Route<Arc<crate::model::Router>>>,
    diagnostics: Vec<Diagnostic>,
}

/// Every object of a snapshot but its IngressRoutes (shared, not copied): what a later
/// translation compares its own against, by identity.
fn others_of(snapshot: &Snapshot) -> Snapshot {
    Snapshot {
        middlewares: snapshot.middlewares.clone(),
        traefik_services: snapshot.traefik_services.clone(),
        services: snapshot.services.clone(),
        endpoint_slices: snapshot.endpoint_slices.clone(),
        uplinks: snapshot.uplinks.clone(),
        secrets: snapshot.secrets.clone(),
        config_maps: snapshot.config_maps.clone(),
        tls_stores: snapshot.tls_stores.clone(),
        tls_options: snapshot.tls_options.clone(),
        servers_transports: snapshot.servers_transports.clone(),
        allow_cross_namespace: snapshot.allow_cross_namespace,
        ..Snapshot::default()
    }
}

fn index<T: Object>(objects: &[Arc<T>]) -> HashMap<(&str, &str), &T> {
    let mut map = HashMap::new();
    for object in objects {
        map.entry(object.key()).or_insert(object.as_ref());
    }
    map
}

struct Translator<'a> {
    snapshot: &'a Snapshot,
    /// Parsed rules, shared across routes and translations.
    rules: &'a mut Interner,
    diagnostics: Diagnostics,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    /// Each Middleware resolved once: its steps, or why it cannot be used.
    middlewares: HashMap<(&'a str, &'a str), Result<Vec<Middleware>, String>>,
    traefik_services: HashMap<(&'a str, &'a str), &'a TraefikService>,
    /// Each TraefikService resolved once: its balancer, or why it cannot be used.
    balancers: HashMap<(&'a str, &'a str), Result<Arc<Balancer>, String>>,
    uplinks: HashMap<(&'a str, &'a str), &'a Uplink>,
    /// Routers bound to each Uplink by annotation.
    uplink_routers: HashMap<(&'a str, &'a str), Vec<BoundRouter>>,
    /// Each ServersTransport converted once, or `None` when it does not exist.
    transports: HashMap<(String, String), Option<Arc<crate::model::ServersTransport>>>,
    /// Backends resolved without a problem, shared by every route naming them alike.
    backends: HashMap<BackendKey<'a>, Arc<crate::model::Backend>>,
}

/// What a resolved backend depends on in a service reference (a sticky cookie aside:
/// a reference with one is never shared). The fields left out (`passiveHealthCheck`,
/// `responseForwarding`, `nodePortLB`, `middlewares`) are reported, not acted on.
#[derive(PartialEq, Eq, Hash)]
struct BackendKey<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The port by number, or by name.
    port: (Option<i32>, Option<&'a str>),
    scheme: Option<&'a str>,
    pass_host_header: Option<bool>,
    servers_transport: Option<&'a str>,
    strategy: Option<&'a str>,
    native_lb: Option<bool>,
    /// The `healthCheck` as written (JSON): each check keeps its own backend, so
    /// routes checking a port differently each get their check.
    health_check: Option<String>,
}

impl<'a> BackendKey<'a> {
    fn of(namespace: &'a str, reference: &'a traverse_api::ServiceRef) -> Self {
        BackendKey {
            namespace,
            name: &reference.name,
            port: match &reference.port {
                Some(traverse_api::IntOrString::Int(number)) => (Some(*number), None),
                Some(traverse_api::IntOrString::String(name)) => (None, Some(name)),
                None => (None, None),
            },
            scheme: reference.scheme.as_deref(),
            pass_host_header: reference.pass_host_header,
            servers_transport: reference.servers_transport.as_deref(),
            strategy: reference.strategy.as_deref(),
            native_lb: reference.native_lb,
            health_check: reference
                .health_check
                .as_ref()
                .map(|check| serde_json::to_string(check).unwrap_or_default()),
        }
    }
}

/// A router an IngressRoute binds to an Uplink.
struct BoundRouter {
    name: Arc<str>,
    /// Its services have ready endpoints.
    serviceable: bool,
    entry_points: Vec<String>,
}

impl<'a> Translator<'a> {
    fn report(
        &mut self,
        object: &ObjectRef,
        severity: Severity,
        reason: Reason,
        field: Option<String>,
        message: String,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            reason,
            object: Some(object.clone()),
            source: self.snapshot.source_of(object),
            field,
            message,
        });
    }

    fn report_duplicates<T: Object>(&mut self, objects: &[T]) {
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for object in objects {
            let count = seen.entry(object.key()).or_default();
            if *count > 0 {
                let me = object.object_ref();
                // Point at the copy that is ignored, so the reader finds the second file.
                self.diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    reason: Reason::Duplicate,
                    source: self.snapshot.nth_source_of(&me, *count),
                    object: Some(me),
                    field: None,
                    message:
                        "defined more than once; this copy is ignored, the first definition is used"
                            .into(),
                });
            }
            *count += 1;
        }
    }
}
