//! An IngressRoute's routes: rule, priority, middlewares and where each forwards.

use std::sync::Arc;

use traverse_api::support::unsupported_in_ingress_route;
use traverse_api::IngressRoute;
use traverse_router::Route;

use super::middlewares::middleware_ref;
use super::traefik_services::Resolved;
use super::uplinks::uplink_ref;
use super::{BoundRouter, EntryPoints, Translator};
use crate::diagnostics::{Reason, Severity};
use crate::model::{Balancer, Node, Router, Target, Weighted};
use crate::snapshot::Object;

impl<'a> Translator<'a> {
    pub(super) fn ingress_route(
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
        let route_entry_points = match &spec.tls {
            Some(_) if !entry_points.names.is_empty() => {
                let tls = entry_points.tls_of(&spec.entry_points);
                if tls.is_empty() {
                    self.report(
                        &me,
                        Severity::Warning,
                        Reason::Unsupported,
                        Some("spec.tls".into()),
                        "routes with tls serve only on TLS entrypoints, as in Traefik, and none \
                         of this route's entrypoints terminates TLS; the routes serve nowhere"
                            .into(),
                    );
                    return;
                }
                tls
            }
            _ => route_entry_points,
        };

        for (i, route) in spec.routes.iter().enumerate() {
            let field = format!("spec.routes[{i}]");
            let rule = match self.rules.rule(&route.r#match) {
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
                let (mw_namespace, mw_name) = match middleware_ref(
                    &reference.name,
                    reference.namespace.as_deref(),
                    namespace,
                    self.snapshot.allow_cross_namespace,
                ) {
                    Ok(key) => key,
                    Err((part, why)) => {
                        let field = format!("{field}.middlewares[{j}].{part}");
                        self.report(
                            &me,
                            Severity::Error,
                            Reason::InvalidMiddleware,
                            Some(field.clone()),
                            format!("{why}; the route answers 503"),
                        );
                        unusable.push(format!("{field}: {why}"));
                        continue;
                    }
                };
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

            let mut nodes = Vec::new();
            let mut unresolved = Vec::new();
            let mut uplinks = Vec::new();
            for (j, reference) in route.services.iter().enumerate() {
                if reference.is_uplink() {
                    let weight = reference.weight.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32;
                    uplinks.push((Arc::new(uplink_ref(reference, namespace)), weight));
                    continue;
                }
                let service_field = format!("{field}.services[{j}]");
                match self.node(&me, namespace, reference, &service_field, &mut Vec::new()) {
                    Resolved::Node(node, weight) => nodes.push((node, weight)),
                    Resolved::Dropped(message) => unresolved.push(message),
                    Resolved::Unusable(message) => unusable.push(message),
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
            let router_name: Arc<str> = format!("{namespace}/{name}#{i}").into();
            let target = if !unusable.is_empty() {
                Target::Unavailable {
                    status: 503,
                    reason: unusable.join("; "),
                }
            } else if !uplinks.is_empty() {
                Target::Uplinks(Weighted::new(uplinks))
            } else if nodes.is_empty() {
                Target::Unavailable {
                    status: 503,
                    reason: unresolved.join("; "),
                }
            } else {
                Target::Services(balancer(&router_name, nodes))
            };
            let serviceable = match &target {
                Target::Services(services) => services.available(),
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
                    route: rule.route_template().into(),
                    rule: Arc::clone(rule.shared_text()),
                    priority,
                    entry_points: spec.entry_points.clone(),
                    middlewares,
                    middleware_names,
                    target,
                }),
            });
        }
    }
}

/// The balancer of a route's services: a lone TraefikService is that TraefikService's
/// (its sticky cookie included), as in Traefik; several are balanced by their weights.
fn balancer(router_name: &Arc<str>, mut nodes: Vec<(Node, u32)>) -> Arc<Balancer> {
    if let [(Node::Balancer(_), weight)] = nodes.as_slice() {
        if *weight > 0 {
            if let Some((Node::Balancer(only), _)) = nodes.pop() {
                return only;
            }
        }
    }
    Arc::new(Balancer::new(Arc::clone(router_name), nodes, None))
}
