//! TraefikServices and the service references of routes resolved to balancer trees.
//!
//! A `weighted` TraefikService becomes a [`Balancer`] over Service ports and other
//! TraefikServices, resolved once per table whatever the number of references, and
//! refusing loops; a `failover` one is a balancer that keeps to its first child while it
//! can serve; a `mirroring` one is a balancer over its main service that names the
//! mirrors requests are copied to. A TraefikService that cannot be used (no type, an
//! invalid sticky cookie or mirror, a missing failover target, a loop) is an error on the
//! object naming the field, and the routes using it answer 503. A Kubernetes Service it names that does
//! not resolve is left out, as on a route.

use std::sync::Arc;

use serde_json::Value;
use traverse_api::support::unsupported_in_traefik_service;
use traverse_api::{IntOrString, ServiceKind, ServiceRef, TraefikService};

use super::middlewares::{allowed_namespace, local_name};
use super::{BackendKey, Translator};
use crate::diagnostics::{ObjectRef, Reason, Severity};
use crate::model::balancer::{default_cookie_name, sanitize_cookie_name};
use crate::model::{Balancer, Diagnostics, Mirror, Mirroring, Node, Sticky, StickyCookie};
use crate::snapshot::Object;

/// What one service reference resolved to.
pub(super) enum Resolved {
    /// A child to balance to, with its weight.
    Node(Node, u32),
    /// A Kubernetes Service that does not resolve (reported): left out.
    Dropped(String),
    /// A TraefikService that is missing or unusable (reported): the route answers 503.
    Unusable(String),
}

impl<'a> Translator<'a> {
    /// Resolves every TraefikService of the snapshot, reporting each problem once.
    pub(super) fn resolve_traefik_services(&mut self) {
        for object in &self.snapshot.traefik_services {
            self.traefik_service(object.key(), &mut Vec::new());
        }
    }

    /// The balancer of the TraefikService `key`, or why it cannot be used; `None` when
    /// there is no such object. `stack` holds those being resolved, to refuse a loop.
    fn traefik_service(
        &mut self,
        key: (&'a str, &'a str),
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Option<Result<Arc<Balancer>, String>> {
        if let Some(done) = self.balancers.get(&key) {
            return Some(done.clone());
        }
        let object = *self.traefik_services.get(&key)?;
        if stack.contains(&key) {
            let path: Vec<String> = stack.iter().map(|(n, m)| format!("{n}/{m}")).collect();
            return Some(Err(format!(
                "refers to itself through {}",
                path.join(" -> ")
            )));
        }
        stack.push(key);
        let resolved = self.weighted(object, stack);
        stack.pop();
        self.balancers.insert(key, resolved.clone());
        Some(resolved)
    }

    fn weighted(
        &mut self,
        object: &'a TraefikService,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Arc<Balancer>, String> {
        let me = object.object_ref();
        let (namespace, name) = object.key();
        let spec = &object.spec;
        for unsupported in unsupported_in_traefik_service(spec) {
            self.report(
                &me,
                Severity::Warning,
                Reason::Unsupported,
                Some(unsupported.field),
                unsupported.reason.into(),
            );
        }
        let set: Vec<&str> = [
            ("weighted", spec.weighted.is_some()),
            ("mirroring", spec.mirroring.is_some()),
            ("failover", spec.failover.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, set)| set.then_some(kind))
        .collect();
        let fail = |this: &mut Self, field: Option<String>, message: String| {
            this.report(
                &me,
                Severity::Error,
                Reason::InvalidService,
                field,
                format!("{message}; the routes using it answer 503"),
            );
            Err(message)
        };
        let weighted = match (set.as_slice(), &spec.weighted) {
            (["weighted"], Some(weighted)) => weighted,
            ([], _) => {
                return fail(
                    self,
                    None,
                    "sets none of weighted, mirroring, failover".into(),
                )
            }
            (["failover"], _) => {
                return match self.failover(object, stack) {
                    Ok(balancer) => Ok(balancer),
                    Err((field, message)) => fail(self, Some(field), message),
                }
            }
            (["mirroring"], _) => {
                return match self.mirroring(object, stack) {
                    Ok(balancer) => Ok(balancer),
                    Err((field, message)) => fail(self, Some(field), message),
                }
            }
            ([kind], _) => {
                return fail(
                    self,
                    Some(format!("spec.{kind}")),
                    format!("{kind} is not implemented"),
                )
            }
            _ => {
                return fail(
                    self,
                    None,
                    format!(
                        "sets several types ({}); exactly one is allowed",
                        set.join(", ")
                    ),
                )
            }
        };
        if weighted.services.is_empty() {
            return fail(
                self,
                Some("spec.weighted.services".into()),
                "lists no service".into(),
            );
        }
        let own_name = format!("{namespace}/{name}");
        let cookie = match self.sticky_cookie(weighted.sticky.as_ref(), &own_name) {
            Ok(cookie) => cookie,
            Err((field, message)) => {
                return fail(self, Some(format!("spec.weighted.sticky.{field}")), message)
            }
        };
        let mut children = Vec::new();
        let mut names = Vec::new();
        for (j, reference) in weighted.services.iter().enumerate() {
            let field = format!("spec.weighted.services[{j}]");
            if reference.is_uplink() {
                return fail(
                    self,
                    Some(format!("{field}.kind")),
                    "an uplink cannot be balanced with services".into(),
                );
            }
            match self.node(&me, namespace, reference, &field, stack) {
                Resolved::Node(node, weight) => {
                    names.push(child_name(reference, namespace));
                    children.push((node, weight));
                }
                Resolved::Dropped(_) => {}
                Resolved::Unusable(message) => return Err(message),
            }
        }
        let sticky = cookie.map(|c| Sticky::new(c, names.iter().map(String::as_str)));
        Ok(Arc::new(Balancer::new(own_name.into(), children, sticky)))
    }

    /// Traefik's `failover`: `service` and `fallback` name TraefikServices of the same
    /// namespace. An error names the field.
    fn failover(
        &mut self,
        object: &'a TraefikService,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Arc<Balancer>, (String, String)> {
        let me = object.object_ref();
        let (namespace, name) = object.key();
        let Some(fields) = object.spec.failover.as_ref().and_then(|v| v.as_object()) else {
            return Err(("spec.failover".into(), "is not an object".into()));
        };
        for key in fields.keys() {
            if !["service", "fallback", "healthCheck"].contains(&key.as_str()) {
                self.report(
                    &me,
                    Severity::Warning,
                    Reason::Unsupported,
                    Some(format!("spec.failover.{key}")),
                    "unknown field; ignored".into(),
                );
            }
        }
        let mut resolve = |this: &mut Self, key: &str| -> Result<Option<Node>, (String, String)> {
            let field = format!("spec.failover.{key}");
            let Some(value) = fields.get(key) else {
                return Ok(None);
            };
            let Some(target) = value.as_str().filter(|t| !t.is_empty()) else {
                return Err((field, "is not the name of a TraefikService".into()));
            };
            let target = target.strip_suffix("@kubernetescrd").unwrap_or(target);
            match this.traefik_service((namespace, target), stack) {
                Some(Ok(balancer)) => Ok(Some(Node::Balancer(balancer))),
                Some(Err(why)) => Err((
                    field,
                    format!("TraefikService {namespace}/{target} is unusable: {why}"),
                )),
                None => Err((
                    field,
                    format!("TraefikService {namespace}/{target} not found"),
                )),
            }
        };
        let Some(service) = resolve(self, "service")? else {
            return Err(("spec.failover.service".into(), "names no service".into()));
        };
        let fallback = resolve(self, "fallback")?;
        Ok(Arc::new(Balancer::failover(
            format!("{namespace}/{name}").into(),
            service,
            fallback,
        )))
    }

    /// Traefik's `mirroring`: the main service (a Service port or a TraefikService, named
    /// by the fields of a service reference), `mirrorBody`, `maxBodySize` and `mirrors`,
    /// each a service reference with its `percent`. An error names the field.
    fn mirroring(
        &mut self,
        object: &'a TraefikService,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Arc<Balancer>, (String, String)> {
        let me = object.object_ref();
        let (namespace, name) = object.key();
        let Some(fields) = object.spec.mirroring.as_ref().and_then(Value::as_object) else {
            return Err(("spec.mirroring".into(), "is not an object".into()));
        };
        let mut main = fields.clone();
        let mirror_body = match main.remove("mirrorBody") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(body)) => body,
            Some(other) => {
                return Err((
                    "spec.mirroring.mirrorBody".into(),
                    format!("{other} is not true or false"),
                ))
            }
        };
        // Traefik: -1 (the default), or any negative size, is no limit.
        let max_body_size = match main.remove("maxBodySize") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(size) => u64::try_from(size).ok(),
                None => {
                    return Err((
                        "spec.mirroring.maxBodySize".into(),
                        format!("{value} is not a whole number of bytes"),
                    ))
                }
            },
        };
        let mirrors = main.remove("mirrors").unwrap_or(Value::Null);
        let service =
            self.mirror_target(&me, namespace, Value::Object(main), "spec.mirroring", stack)?;
        let mirrors = match mirrors {
            Value::Null => Vec::new(),
            Value::Array(mirrors) => mirrors,
            _ => return Err(("spec.mirroring.mirrors".into(), "is not a list".into())),
        };
        let mut targets = Vec::new();
        for (j, mirror) in mirrors.into_iter().enumerate() {
            let field = format!("spec.mirroring.mirrors[{j}]");
            let Value::Object(mut mirror) = mirror else {
                return Err((field, "is not an object".into()));
            };
            let percent = match mirror.remove("percent") {
                None | Some(Value::Null) => 0,
                Some(value) => match value.as_u64().filter(|p| *p <= 100) {
                    Some(percent) => percent as u8,
                    None => {
                        return Err((
                            format!("{field}.percent"),
                            format!("{value} is not a percentage from 0 to 100"),
                        ))
                    }
                },
            };
            let node = self.mirror_target(&me, namespace, Value::Object(mirror), &field, stack)?;
            targets.push(Mirror::new(node, percent));
        }
        Ok(Arc::new(Balancer::mirroring(
            format!("{namespace}/{name}").into(),
            service,
            Mirroring::new(targets, mirror_body, max_body_size),
        )))
    }

    /// A service reference inside `mirroring`, at `field` of `me`: a Kubernetes Service
    /// port or a TraefikService. Unlike on a route, a Service that does not resolve makes
    /// the whole mirroring unusable (Traefik refuses it too).
    fn mirror_target(
        &mut self,
        me: &ObjectRef,
        namespace: &'a str,
        value: Value,
        field: &str,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Node, (String, String)> {
        let source = self.snapshot.source_of(me).unwrap_or_default();
        let mut unknown = Diagnostics::default();
        let reference: ServiceRef =
            crate::parse::typed(value, me, &source, &mut unknown).map_err(|(inner, message)| {
                let at = inner.map_or_else(|| field.to_owned(), |i| format!("{field}.{i}"));
                (at, message)
            })?;
        for mut warning in unknown.iter().cloned() {
            warning.field = warning.field.map(|f| format!("{field}.{f}"));
            self.diagnostics.push(warning);
        }
        if reference.is_uplink() {
            return Err((
                format!("{field}.kind"),
                "an uplink cannot be mirrored".into(),
            ));
        }
        allowed_namespace(
            reference.namespace.as_deref(),
            namespace,
            self.snapshot.allow_cross_namespace,
        )
        .map_err(|why| (format!("{field}.namespace"), why))?;
        let target_namespace = reference.namespace.as_deref().unwrap_or(namespace);
        if reference.effective_kind() == ServiceKind::TraefikService {
            let target =
                local_name(&reference.name).map_err(|why| (format!("{field}.name"), why))?;
            // The key as the snapshot holds it, which outlives this parsed reference.
            let key = self
                .traefik_services
                .keys()
                .find(|(n, m)| *n == target_namespace && *m == target)
                .copied();
            let Some(key) = key else {
                return Err((
                    format!("{field}.name"),
                    format!("TraefikService {target_namespace}/{target} not found"),
                ));
            };
            return match self.traefik_service(key, stack) {
                Some(Ok(balancer)) => Ok(Node::Balancer(balancer)),
                Some(Err(why)) => Err((
                    format!("{field}.name"),
                    format!("TraefikService {target_namespace}/{target} is unusable: {why}"),
                )),
                None => Err((
                    format!("{field}.name"),
                    format!("TraefikService {target_namespace}/{target} not found"),
                )),
            };
        }
        let cookie = self
            .sticky_cookie(reference.sticky.as_deref(), &reference.name)
            .map_err(|(f, message)| (format!("{field}.sticky.{f}"), message))?;
        let backend = self
            .backend(me, namespace, &reference, field, cookie)
            .map_err(|message| (field.to_owned(), message))?;
        Ok(Node::Backend(Arc::new(backend)))
    }

    /// Resolves one service reference of `me` (a route's or a TraefikService's), in
    /// `namespace` unless it names another.
    pub(super) fn node(
        &mut self,
        me: &ObjectRef,
        namespace: &'a str,
        reference: &'a ServiceRef,
        field: &str,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Resolved {
        let weight = reference.weight.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32;
        let allowed = allowed_namespace(
            reference.namespace.as_deref(),
            namespace,
            self.snapshot.allow_cross_namespace,
        );
        if let Err(why) = allowed {
            self.report(
                me,
                Severity::Error,
                Reason::InvalidService,
                Some(format!("{field}.namespace")),
                format!("{why}; the route answers 503"),
            );
            return Resolved::Unusable(format!("{field}.namespace: {why}"));
        }
        if reference.effective_kind() == ServiceKind::TraefikService {
            let target_namespace = reference.namespace.as_deref().unwrap_or(namespace);
            let target_name = match local_name(&reference.name) {
                Ok(name) => name,
                Err(why) => {
                    self.report(
                        me,
                        Severity::Error,
                        Reason::InvalidService,
                        Some(format!("{field}.name")),
                        format!("{why}; the route answers 503"),
                    );
                    return Resolved::Unusable(format!("{field}.name: {why}"));
                }
            };
            let key = (target_namespace, target_name);
            let (reason, message) = match self.traefik_service(key, stack) {
                Some(Ok(balancer)) => return Resolved::Node(Node::Balancer(balancer), weight),
                Some(Err(why)) => (
                    Reason::InvalidService,
                    format!("TraefikService {target_namespace}/{target_name} is unusable: {why}"),
                ),
                None => (
                    Reason::ServiceNotFound,
                    format!("TraefikService {target_namespace}/{target_name} not found"),
                ),
            };
            self.report(
                me,
                Severity::Warning,
                reason,
                Some(format!("{field}.name")),
                format!("{message}; the route answers 503"),
            );
            return Resolved::Unusable(message);
        }
        let service_namespace = reference.namespace.as_deref().unwrap_or(namespace);
        let name = format!("{service_namespace}/{}", reference.name);
        let cookie = match self.sticky_cookie(reference.sticky.as_deref(), &name) {
            Ok(cookie) => cookie,
            Err((sticky_field, message)) => {
                self.report(
                    me,
                    Severity::Error,
                    Reason::InvalidService,
                    Some(format!("{field}.sticky.{sticky_field}")),
                    format!("{message}; the route answers 503"),
                );
                return Resolved::Unusable(format!("{field}.sticky.{sticky_field}: {message}"));
            }
        };
        // Routes naming the same Service port the same way share one backend (its
        // endpoints and their rotation) when resolving it reported nothing, so it
        // reports nothing for the next route either. A sticky cookie keeps its own.
        let key = cookie
            .is_none()
            .then(|| BackendKey::of(service_namespace, reference));
        if let Some(backend) = key.as_ref().and_then(|key| self.backends.get(key)) {
            return Resolved::Node(Node::Backend(Arc::clone(backend)), weight);
        }
        let reported = self.diagnostics.len();
        match self.backend(me, namespace, reference, field, cookie) {
            Ok(backend) => {
                let backend = Arc::new(backend);
                if let Some(key) = key.filter(|_| self.diagnostics.len() == reported) {
                    self.backends.insert(key, Arc::clone(&backend));
                }
                Resolved::Node(Node::Backend(backend), weight)
            }
            Err(message) => Resolved::Dropped(message),
        }
    }

    /// Checks `sticky.cookie`; `None` without one. The error names the field under
    /// `sticky`.
    fn sticky_cookie(
        &mut self,
        sticky: Option<&traverse_api::ingress_route::Sticky>,
        service: &str,
    ) -> Result<Option<StickyCookie>, (String, String)> {
        let Some(cookie) = sticky.and_then(|s| s.cookie.as_ref()) else {
            return Ok(None);
        };
        let same_site = match cookie.same_site.as_deref().map(str::to_ascii_lowercase) {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => Some(match s.as_str() {
                "none" => "None",
                "lax" => "Lax",
                "strict" => "Strict",
                _ => {
                    return Err((
                        "cookie.sameSite".into(),
                        format!("{s:?} is not one of none, lax, strict"),
                    ))
                }
            }),
        };
        let path = cookie.path.clone().unwrap_or_else(|| "/".into());
        if path.contains(';') || path.chars().any(char::is_control) {
            return Err((
                "cookie.path".into(),
                format!("{path:?} is not a cookie path"),
            ));
        }
        let domain = cookie.domain.clone().filter(|d| !d.is_empty());
        if let Some(domain) = &domain {
            if domain.contains(';') || domain.chars().any(|c| c.is_control() || c == ' ') {
                return Err((
                    "cookie.domain".into(),
                    format!("{domain:?} is not a cookie domain"),
                ));
            }
        }
        let name = match cookie.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => sanitize_cookie_name(name),
            None => default_cookie_name(service),
        };
        Ok(Some(StickyCookie {
            name,
            secure: cookie.secure.unwrap_or(false),
            http_only: cookie.http_only.unwrap_or(false),
            same_site,
            max_age: cookie.max_age.unwrap_or(0),
            path,
            domain,
        }))
    }
}

/// The name Traefik's Kubernetes provider gives a child of a weighted service, from which
/// its sticky cookie value is derived: `namespace-name-port` for a Service,
/// `namespace-name` for a TraefikService.
fn child_name(reference: &ServiceRef, namespace: &str) -> String {
    let namespace = reference.namespace.as_deref().unwrap_or(namespace);
    match (reference.effective_kind(), &reference.port) {
        (ServiceKind::TraefikService, _) | (_, None) => {
            format!("{namespace}-{}", reference.name)
        }
        (_, Some(IntOrString::Int(port))) => format!("{namespace}-{}-{port}", reference.name),
        (_, Some(IntOrString::String(port))) => format!("{namespace}-{}-{port}", reference.name),
    }
}

#[cfg(test)]
mod tests;
