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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use traverse_api::support::{
    middleware_kinds, unsupported_in_ingress_route, unsupported_in_middleware,
};
use traverse_api::uplink::{HUB_UPLINKS_ANNOTATION, UPLINKS_ANNOTATION};
use traverse_api::{
    EndpointSlice, IngressRoute, IntOrString, Middleware as MiddlewareObject, Service, ServiceKind,
    ServiceRef, Uplink,
};
use traverse_router::{Route, RouteTable, Rule};

use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
use crate::model::{
    AddPrefix, AdvertisedUplink, Backend, Endpoint, Headers, Middleware, Router, RoutingTable,
    Scheme, StripPrefix, Target, UplinkRef, Weighted,
};
use crate::snapshot::{Object, Snapshot};

#[cfg(test)]
mod tests;

/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The entrypoints configured on a gateway, and which of them are uplink entrypoints.
#[derive(Debug, Clone, Default)]
pub struct EntryPoints {
    names: BTreeSet<String>,
    uplinks: BTreeSet<String>,
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
        EntryPoints { names, uplinks }
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
pub fn translate(snapshot: &Snapshot, entry_points: &EntryPoints) -> RoutingTable {
    let mut translator = Translator {
        snapshot,
        diagnostics: Diagnostics::default(),
        services: index(&snapshot.services),
        slices: HashMap::new(),
        middlewares: HashMap::new(),
        uplinks: index(&snapshot.uplinks),
        uplink_routers: HashMap::new(),
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
                .push(slice);
        }
    }
    translator.report_duplicates(&snapshot.services);
    translator.report_duplicates(&snapshot.endpoint_slices);
    translator.report_duplicates(&snapshot.middlewares);
    translator.report_duplicates(&snapshot.ingress_routes);
    translator.report_duplicates(&snapshot.uplinks);
    for middleware in &snapshot.middlewares {
        let (namespace, name) = middleware.key();
        if translator.middlewares.contains_key(&(namespace, name)) {
            continue;
        }
        let resolved = translator.middleware(middleware);
        translator.middlewares.insert((namespace, name), resolved);
    }

    let mut ingress_routes: Vec<&IngressRoute> = Vec::new();
    let mut seen = BTreeSet::new();
    for ingress_route in &snapshot.ingress_routes {
        if seen.insert(ingress_route.key()) {
            ingress_routes.push(ingress_route);
        }
    }
    // Sorted so that equal-priority ties resolve the same way whatever the input order.
    ingress_routes.sort_by_key(|r| r.key());
    let mut routes = Vec::new();
    for ingress_route in ingress_routes {
        translator.ingress_route(ingress_route, entry_points, &mut routes);
    }
    let uplinks = translator.advertised_uplinks(entry_points);

    let mut diagnostics = translator.diagnostics;
    diagnostics.normalize();
    RoutingTable {
        routes: RouteTable::new(routes),
        diagnostics,
        uplinks,
    }
}

fn index<T: Object>(objects: &[T]) -> HashMap<(&str, &str), &T> {
    let mut map = HashMap::new();
    for object in objects {
        map.entry(object.key()).or_insert(object);
    }
    map
}

struct Translator<'a> {
    snapshot: &'a Snapshot,
    diagnostics: Diagnostics,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    /// Each Middleware resolved once: its steps, or why it cannot be used.
    middlewares: HashMap<(&'a str, &'a str), Result<Vec<Middleware>, String>>,
    uplinks: HashMap<(&'a str, &'a str), &'a Uplink>,
    /// Routers bound to each Uplink by annotation.
    uplink_routers: HashMap<(&'a str, &'a str), Vec<BoundRouter>>,
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

    fn middleware(&mut self, object: &MiddlewareObject) -> Result<Vec<Middleware>, String> {
        let me = object.object_ref();
        let spec = &object.spec;
        for unsupported in unsupported_in_middleware(spec) {
            self.report(
                &me,
                Severity::Warning,
                Reason::Unsupported,
                Some(unsupported.field),
                unsupported.reason.into(),
            );
        }
        let kinds = middleware_kinds(spec);
        let invalid = |message: String| Err((Reason::InvalidMiddleware, message));
        let result = match kinds.as_slice() {
            [] => invalid("sets no middleware type".into()),
            [_, _, ..] => invalid(format!(
                "sets several middleware types ({}); exactly one is allowed",
                kinds.join(", ")
            )),
            ["addPrefix"] => match spec.add_prefix.as_ref().and_then(|a| a.prefix.clone()) {
                Some(prefix) if prefix.starts_with('/') => {
                    Ok(vec![Middleware::AddPrefix(AddPrefix { prefix })])
                }
                Some(prefix) => invalid(format!(
                    "spec.addPrefix.prefix {prefix:?} must start with '/'"
                )),
                None => invalid("spec.addPrefix.prefix is required".into()),
            },
            ["stripPrefix"] => {
                let prefixes = spec
                    .strip_prefix
                    .as_ref()
                    .map(|s| s.prefixes.clone())
                    .unwrap_or_default();
                if prefixes.is_empty() {
                    invalid("spec.stripPrefix.prefixes must list at least one prefix".into())
                } else {
                    Ok(vec![Middleware::StripPrefix(StripPrefix { prefixes })])
                }
            }
            ["headers"] => {
                let headers = spec.headers.as_ref();
                let request = headers.map(|h| {
                    header_list(
                        &h.custom_request_headers,
                        "spec.headers.customRequestHeaders",
                    )
                });
                let response = headers.map(|h| {
                    header_list(
                        &h.custom_response_headers,
                        "spec.headers.customResponseHeaders",
                    )
                });
                match (request, response) {
                    (Some(Ok(request)), Some(Ok(response))) => {
                        Ok(vec![Middleware::Headers(Headers { request, response })])
                    }
                    (Some(Err(e)), _) | (_, Some(Err(e))) => invalid(e),
                    _ => invalid("spec.headers is empty".into()),
                }
            }
            [kind] => Err((
                Reason::Unsupported,
                format!("middleware type {kind} is not supported yet"),
            )),
        };
        if let Err((reason, message)) = &result {
            self.report(
                &me,
                Severity::Error,
                *reason,
                None,
                format!("{message}; routes using it answer 503"),
            );
        }
        result.map_err(|(_, message)| message)
    }

    fn ingress_route(
        &mut self,
        object: &'a IngressRoute,
        entry_points: &EntryPoints,
        routes: &mut Vec<Route<Arc<Router>>>,
    ) {
        let me = object.object_ref();
        let (namespace, name) = object.key();
        let spec = &object.spec;
        for unsupported in unsupported_in_ingress_route(spec) {
            self.report(
                &me,
                Severity::Warning,
                Reason::Unsupported,
                Some(unsupported.field),
                unsupported.reason.into(),
            );
        }
        if !entry_points.names.is_empty() {
            for (i, entry_point) in spec.entry_points.iter().enumerate() {
                if !entry_points.names.contains(entry_point) {
                    self.report(
                        &me,
                        Severity::Warning,
                        Reason::Unsupported,
                        Some(format!("spec.entryPoints[{i}]")),
                        format!("entrypoint {entry_point:?} is not configured on this gateway"),
                    );
                }
            }
        }

        let bound_uplinks = self.bound_uplinks(object);
        let route_entry_points = if spec.entry_points.is_empty() {
            match entry_points.default_for_routes() {
                Some(names) => names,
                None => {
                    self.report(
                        &me,
                        Severity::Warning,
                        Reason::Unsupported,
                        Some("spec.entryPoints".into()),
                        "names no entrypoint, and this gateway has only uplink entrypoints, \
                         which serve only the routes that name them; the routes serve nowhere"
                            .into(),
                    );
                    return;
                }
            }
        } else {
            spec.entry_points.clone()
        };

        for (i, route) in spec.routes.iter().enumerate() {
            let field = format!("spec.routes[{i}]");
            let rule = match Rule::parse(&route.r#match) {
                Ok(rule) => rule,
                Err(error) => {
                    self.report(
                        &me,
                        Severity::Error,
                        Reason::InvalidRule,
                        Some(format!("{field}.match")),
                        error.to_string(),
                    );
                    continue;
                }
            };
            let priority = route
                .priority
                .filter(|p| *p != 0)
                .unwrap_or_else(|| rule.default_priority());

            let mut middlewares = Vec::new();
            let mut middleware_names = Vec::new();
            let mut unusable = Vec::new();
            for (j, reference) in route.middlewares.iter().enumerate() {
                let (mw_namespace, mw_name) = parse_middleware_ref(
                    &reference.name,
                    reference.namespace.as_deref(),
                    namespace,
                );
                match self.middlewares.get(&(mw_namespace, mw_name)) {
                    Some(Ok(steps)) => {
                        middlewares.extend(steps.iter().cloned());
                        middleware_names.push(format!("{mw_namespace}/{mw_name}"));
                    }
                    Some(Err(why)) => {
                        let message =
                            format!("middleware {mw_namespace}/{mw_name} is unusable: {why}");
                        self.report(
                            &me,
                            Severity::Warning,
                            Reason::InvalidMiddleware,
                            Some(format!("{field}.middlewares[{j}]")),
                            message.clone(),
                        );
                        unusable.push(message);
                    }
                    None => {
                        let message = format!("middleware {mw_namespace}/{mw_name} not found");
                        self.report(
                            &me,
                            Severity::Warning,
                            Reason::MiddlewareNotFound,
                            Some(format!("{field}.middlewares[{j}]")),
                            message.clone(),
                        );
                        unusable.push(message);
                    }
                }
            }

            let mut backends = Vec::new();
            let mut unresolved = Vec::new();
            let mut uplinks = Vec::new();
            for (j, reference) in route.services.iter().enumerate() {
                if reference.is_uplink() {
                    let weight = reference.weight.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32;
                    uplinks.push((Arc::new(uplink_ref(reference, namespace)), weight));
                    continue;
                }
                match self.backend(&me, namespace, reference, &format!("{field}.services[{j}]")) {
                    Ok(backend) => {
                        let weight =
                            reference.weight.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32;
                        backends.push((Arc::new(backend), weight));
                    }
                    Err(message) => unresolved.push(message),
                }
            }
            if route.services.is_empty() {
                self.report(
                    &me,
                    Severity::Warning,
                    Reason::ServiceNotFound,
                    Some(format!("{field}.services")),
                    "route has no services; it answers 503".into(),
                );
                unresolved.push("route has no services".into());
            }

            if !uplinks.is_empty() && uplinks.len() != route.services.len() {
                let message =
                    "a route forwards either to uplinks or to Services, not both".to_owned();
                self.report(
                    &me,
                    Severity::Error,
                    Reason::Unsupported,
                    Some(format!("{field}.services")),
                    format!("{message}; the route answers 503"),
                );
                unusable.push(message);
            }
            let target = if !unusable.is_empty() {
                Target::Unavailable {
                    status: 503,
                    reason: unusable.join("; "),
                }
            } else if !uplinks.is_empty() {
                Target::Uplinks(Weighted::new(uplinks))
            } else if backends.is_empty() {
                Target::Unavailable {
                    status: 503,
                    reason: unresolved.join("; "),
                }
            } else {
                Target::Services(Weighted::new(backends))
            };
            let router_name: Arc<str> = format!("{namespace}/{name}#{i}").into();
            let serviceable = match &target {
                Target::Services(services) => services
                    .items()
                    .iter()
                    .any(|(b, w)| *w > 0 && b.servers.has_available()),
                _ => false,
            };
            for key in &bound_uplinks {
                self.uplink_routers
                    .entry(*key)
                    .or_default()
                    .push(BoundRouter {
                        name: Arc::clone(&router_name),
                        serviceable,
                        entry_points: route_entry_points.clone(),
                    });
            }
            routes.push(Route {
                rule: rule.clone(),
                priority,
                entrypoints: route_entry_points.clone(),
                value: Arc::new(Router {
                    name: router_name,
                    rule: rule.text().to_owned(),
                    priority,
                    entry_points: spec.entry_points.clone(),
                    middlewares,
                    middleware_names,
                    target,
                }),
            });
        }
    }

    /// The Uplinks an IngressRoute's annotations bind it to; unknown names are reported.
    fn bound_uplinks(&mut self, object: &'a IngressRoute) -> Vec<(&'a str, &'a str)> {
        let me = object.object_ref();
        let (namespace, _) = object.key();
        let Some(annotations) = object.metadata.annotations.as_ref() else {
            return Vec::new();
        };
        let mut bound = Vec::new();
        for annotation in [UPLINKS_ANNOTATION, HUB_UPLINKS_ANNOTATION] {
            let Some(value) = annotations.get(annotation) else {
                continue;
            };
            for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let found: Vec<(&'a str, &'a str)> = self
                    .uplinks
                    .keys()
                    .copied()
                    .filter(|(ns, name)| {
                        if annotation == HUB_UPLINKS_ANNOTATION {
                            UplinkRef::Hub(entry.to_owned()).matches(ns, name)
                        } else {
                            match entry.split_once('/') {
                                Some((n, m)) => (n, m) == (*ns, *name),
                                None => (namespace, entry) == (*ns, *name),
                            }
                        }
                    })
                    .collect();
                if found.is_empty() {
                    self.report(
                        &me,
                        Severity::Warning,
                        Reason::UplinkNotFound,
                        Some(format!("metadata.annotations.{annotation}")),
                        format!(
                            "uplink {entry:?} not found; the route is not advertised to parents"
                        ),
                    );
                }
                bound.extend(found);
            }
        }
        bound.sort_unstable();
        bound.dedup();
        bound
    }

    /// Every Uplink as the child advertises it: ready when a bound route can serve on one
    /// of the uplink's entrypoints.
    fn advertised_uplinks(&mut self, entry_points: &EntryPoints) -> Vec<AdvertisedUplink> {
        let mut keys: Vec<(&'a str, &'a str)> = self.uplinks.keys().copied().collect();
        keys.sort_unstable();
        let mut advertised = Vec::new();
        for key in keys {
            let uplink = self.uplinks[&key];
            let me = uplink.object_ref();
            let serving: Vec<String> = if uplink.spec.entry_points.is_empty() {
                entry_points.uplinks.iter().cloned().collect()
            } else {
                uplink.spec.entry_points.clone()
            };
            if !entry_points.names.is_empty() {
                for (i, name) in uplink.spec.entry_points.iter().enumerate() {
                    if !entry_points.uplinks.contains(name) {
                        self.report(
                            &me,
                            Severity::Warning,
                            Reason::Unsupported,
                            Some(format!("spec.entryPoints[{i}]")),
                            format!("{name:?} is not an uplink entrypoint of this gateway"),
                        );
                    }
                }
            }
            let routers = self.uplink_routers.remove(&key).unwrap_or_default();
            let ready = routers.iter().any(|router| {
                router.serviceable
                    && (router.entry_points.is_empty()
                        || router.entry_points.iter().any(|e| serving.contains(e)))
            });
            if !ready {
                let why = if routers.is_empty() {
                    format!(
                        "no IngressRoute is bound to it (annotation {UPLINKS_ANNOTATION}: {})",
                        key.1
                    )
                } else {
                    "none of its routes can serve on its uplink entrypoints".to_owned()
                };
                self.report(
                    &me,
                    Severity::Warning,
                    Reason::UplinkNotReady,
                    None,
                    format!("{why}; advertised to parents as not ready"),
                );
            }
            advertised.push(AdvertisedUplink {
                namespace: key.0.to_owned(),
                name: key.1.to_owned(),
                weight: uplink.spec.effective_weight(),
                entry_points: serving,
                ready,
                routers: routers.into_iter().map(|router| router.name).collect(),
            });
        }
        advertised
    }

    /// Resolves one service reference to its ready endpoints, or says why it cannot.
    fn backend(
        &mut self,
        me: &ObjectRef,
        namespace: &str,
        reference: &ServiceRef,
        field: &str,
    ) -> Result<Backend, String> {
        if reference.effective_kind() == ServiceKind::TraefikService {
            // Already reported by the support check; here it only leaves the route.
            return Err(format!(
                "TraefikService {} is not supported yet",
                reference.name
            ));
        }
        let service_namespace = reference.namespace.as_deref().unwrap_or(namespace);
        let Some(service) = self
            .services
            .get(&(service_namespace, reference.name.as_str()))
            .copied()
        else {
            let message = format!("service {service_namespace}/{} not found", reference.name);
            self.report(
                me,
                Severity::Warning,
                Reason::ServiceNotFound,
                Some(format!("{field}.name")),
                format!("{message}; the route answers 503 until it exists"),
            );
            return Err(message);
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let message = format!(
                "service {service_namespace}/{} is of type ExternalName, not supported yet",
                reference.name
            );
            self.report(
                me,
                Severity::Warning,
                Reason::Unsupported,
                Some(format!("{field}.name")),
                message.clone(),
            );
            return Err(message);
        }
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
        let port = match &reference.port {
            Some(IntOrString::Int(number)) => ports.iter().find(|p| p.port == *number),
            Some(IntOrString::String(port_name)) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(port_name.as_str())),
            None if ports.len() == 1 => ports.first(),
            None => None,
        };
        let Some(port) = port else {
            let wanted = match &reference.port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(s)) => format!("{s:?}"),
                None => "(none given, and the service does not have exactly one port)".into(),
            };
            let message = format!(
                "service {service_namespace}/{} has no port {wanted}",
                reference.name
            );
            self.report(
                me,
                Severity::Warning,
                Reason::PortNotFound,
                Some(format!("{field}.port")),
                format!("{message}; the route answers 503"),
            );
            return Err(message);
        };

        let port_name = port.name.as_deref().unwrap_or("");
        let mut servers = BTreeSet::new();
        for slice in self
            .slices
            .get(&(service_namespace, reference.name.as_str()))
            .into_iter()
            .flatten()
        {
            let Some(slice_port) = slice
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for endpoint in slice.endpoints.iter().flatten() {
                // Kubernetes: an unset `ready` means ready.
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(ip) = address.parse::<IpAddr>() {
                        servers.insert(SocketAddr::new(ip, slice_port));
                    }
                }
            }
        }
        let backend_name = format!(
            "{service_namespace}/{}:{}",
            reference.name,
            port.name.clone().unwrap_or_else(|| port.port.to_string())
        );
        if servers.is_empty() {
            self.report(
                me,
                Severity::Warning,
                Reason::NoReadyEndpoints,
                Some(format!("{field}.name")),
                format!("service {backend_name} has no ready endpoints; requests to it answer 503"),
            );
        }

        let scheme = match reference.scheme.as_deref() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some("h2c") => Scheme::H2c,
            Some(other) => {
                self.report(
                    me,
                    Severity::Warning,
                    Reason::Unsupported,
                    Some(format!("{field}.scheme")),
                    format!("scheme {other:?} is not one of http, https, h2c; using http"),
                );
                Scheme::Http
            }
            // Traefik's default: https for port 443 or a port named https.
            None if port.port == 443 || port_name == "https" => Scheme::Https,
            None => Scheme::Http,
        };
        Ok(Backend {
            name: backend_name.into(),
            scheme,
            pass_host_header: reference.pass_host_header.unwrap_or(true),
            servers: Weighted::new(servers.into_iter().map(|s| (Endpoint::new(s), 1)).collect()),
        })
    }
}

/// A service reference to an uplink: `kind: Uplink` (namespace defaults to the route's),
/// or Traefik Hub's `<namespace>-<name>@multicluster`.
fn uplink_ref(reference: &ServiceRef, route_namespace: &str) -> UplinkRef {
    match reference
        .name
        .strip_suffix(traverse_api::ingress_route::MULTICLUSTER_SUFFIX)
    {
        Some(joined) => UplinkRef::Hub(joined.to_owned()),
        None => UplinkRef::Named {
            namespace: reference
                .namespace
                .clone()
                .unwrap_or_else(|| route_namespace.to_owned()),
            name: reference.name.clone(),
        },
    }
}

/// Middleware references are `name` in the route's namespace, `namespace` when given,
/// with Traefik's provider suffix (`name@kubernetescrd`) accepted and ignored.
fn parse_middleware_ref<'r>(
    name: &'r str,
    namespace: Option<&'r str>,
    default: &'r str,
) -> (&'r str, &'r str) {
    if let Some(namespace) = namespace {
        return (namespace, name);
    }
    (default, name.strip_suffix("@kubernetescrd").unwrap_or(name))
}

fn header_list(
    headers: &BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(http::HeaderName, Option<http::HeaderValue>)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{field}: {name:?} is not a valid header name"))?;
            // Traefik's convention: an empty value removes the header.
            if value.is_empty() {
                return Ok((header, None));
            }
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| format!("{field}.{name}: value is not valid header text"))?;
            Ok((header, Some(value)))
        })
        .collect()
}
