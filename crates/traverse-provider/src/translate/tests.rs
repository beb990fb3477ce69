use http::HeaderMap;
use traverse_router::Request;

use super::*;
use crate::model::{Headers, Router, StripPrefix, Target};

/// Builds a snapshot from a multi-document manifest, as the file provider would.
pub(super) fn snapshot(yaml: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(yaml, crate::yaml::options()).expect("yaml");
    for value in documents {
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("IngressRoute") => snapshot.ingress_routes.push(Arc::new(
                serde_json::from_value(value).expect("IngressRoute"),
            )),
            Some("Middleware") => snapshot
                .middlewares
                .push(Arc::new(serde_json::from_value(value).expect("Middleware"))),
            Some("TraefikService") => snapshot.traefik_services.push(Arc::new(
                serde_json::from_value(value).expect("TraefikService"),
            )),
            Some("Service") => snapshot
                .services
                .push(Arc::new(serde_json::from_value(value).expect("Service"))),
            Some("EndpointSlice") => snapshot.endpoint_slices.push(Arc::new(
                serde_json::from_value(value).expect("EndpointSlice"),
            )),
            Some("Uplink") => snapshot
                .uplinks
                .push(Arc::new(serde_json::from_value(value).expect("Uplink"))),
            Some("Secret") => snapshot
                .secrets
                .push(Arc::new(serde_json::from_value(value).expect("Secret"))),
            Some("ServersTransport") => snapshot.servers_transports.push(Arc::new(
                serde_json::from_value(value).expect("ServersTransport"),
            )),
            other => panic!("unexpected kind {other:?}"),
        }
    }
    snapshot
}

pub(super) const APP: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: app, namespace: apps}
spec:
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: metrics, port: 9090}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-abc
  namespace: apps
  labels: {kubernetes.io/service-name: app}
addressType: IPv4
ports:
  - {name: http, port: 8080}
  - {name: metrics, port: 9100}
endpoints:
  - addresses: [10.0.0.1]
    conditions: {ready: true}
  - addresses: [10.0.0.2]
  - addresses: [10.0.0.3]
    conditions: {ready: false}
"#;

fn route(rule: &str, services: &str) -> String {
    format!(
        r#"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  entryPoints: [web]
  routes:
    - match: "{rule}"
      services: {services}
"#
    )
}

pub(super) fn translate_all(yaml: &str) -> RoutingTable {
    translate(
        &snapshot(yaml),
        &EntryPoints::new([("web".to_owned(), false)]),
    )
}

/// As [`translate_all`], with the provider's `allowCrossNamespace` set.
fn translate_across_namespaces(yaml: &str) -> RoutingTable {
    let mut snapshot = snapshot(yaml);
    snapshot.allow_cross_namespace = true;
    translate(&snapshot, &EntryPoints::new([("web".to_owned(), false)]))
}

fn only_router(table: &RoutingTable) -> &Router {
    let routes: Vec<_> = table.routes.routes().collect();
    assert_eq!(routes.len(), 1, "{:?}", table.diagnostics);
    &routes[0].value
}

fn servers(router: &Router) -> Vec<(String, Vec<String>, u32)> {
    match &router.target {
        Target::Services(services) => services
            .backends()
            .into_iter()
            .map(|(backend, weight)| {
                (
                    backend.name.to_string(),
                    backend
                        .servers
                        .items()
                        .iter()
                        .map(|(e, _)| e.address.to_string())
                        .collect(),
                    weight,
                )
            })
            .collect(),
        Target::Unavailable { reason, .. } => panic!("unavailable: {reason}"),
        Target::Uplinks(_) => panic!("uplinks, not services"),
    }
}

pub(super) fn reasons(table: &RoutingTable) -> Vec<(Reason, Option<String>)> {
    table
        .diagnostics
        .iter()
        .map(|d| (d.reason, d.field.clone()))
        .collect()
}

#[test]
fn named_port_resolves_to_ready_endpoints_only() {
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`)", "[{name: app, port: http}]")
    ));
    let router = only_router(&table);
    assert_eq!(&*router.name, "apps/web#0");
    assert_eq!(
        servers(router),
        vec![(
            "apps/app:http".to_owned(),
            vec!["10.0.0.1:8080".to_owned(), "10.0.0.2:8080".to_owned()],
            1
        )]
    );
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
}

#[test]
fn numeric_port_selects_the_matching_slice_port() {
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`)", "[{name: app, port: 9090}]")
    ));
    let (_, addresses, _) = &servers(only_router(&table))[0];
    assert_eq!(addresses, &["10.0.0.1:9100", "10.0.0.2:9100"]);
}

#[test]
fn missing_service_keeps_the_route_answering_503() {
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`)", "[{name: nope, port: 80}]")
    ));
    let router = only_router(&table);
    match &router.target {
        Target::Unavailable { status, reason } => {
            assert_eq!(*status, 503);
            assert!(reason.contains("apps/nope not found"), "{reason}");
        }
        Target::Services(_) | Target::Uplinks(_) => panic!("route must not be served"),
    }
    assert_eq!(
        reasons(&table),
        vec![(
            Reason::ServiceNotFound,
            Some("spec.routes[0].services[0].name".into())
        )]
    );
    let diagnostic = table.diagnostics.iter().next().expect("diagnostic");
    assert_eq!(
        diagnostic.object.as_ref().map(|o| o.to_string()).as_deref(),
        Some("IngressRoute apps/web")
    );
}

#[test]
fn missing_port_is_reported() {
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`)", "[{name: app, port: grpc}]")
    ));
    assert!(matches!(
        only_router(&table).target,
        Target::Unavailable { status: 503, .. }
    ));
    assert_eq!(
        reasons(&table),
        vec![(
            Reason::PortNotFound,
            Some("spec.routes[0].services[0].port".into())
        )]
    );

    // No port given and two ports on the Service: ambiguous.
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`)", "[{name: app}]")
    ));
    assert_eq!(reasons(&table)[0].0, Reason::PortNotFound);
}

#[test]
fn service_without_ready_endpoints_is_kept_with_a_warning() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: apps}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: idle-1, namespace: apps, labels: {kubernetes.io/service-name: idle}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.9], conditions: {ready: false}}]
"#;
    let table = translate_all(&format!(
        "{yaml}{}",
        route("PathPrefix(`/`)", "[{name: idle}]")
    ));
    let router = only_router(&table);
    let Target::Services(services) = &router.target else {
        panic!("expected services")
    };
    assert!(!services.backends()[0].0.servers.has_available());
    assert_eq!(
        reasons(&table),
        vec![(
            Reason::NoReadyEndpoints,
            Some("spec.routes[0].services[0].name".into())
        )]
    );
}

#[test]
fn weights_across_services() {
    let other = APP
        .replace("name: app,", "name: other,")
        .replace("app-abc", "other-abc")
        .replace("service-name: app", "service-name: other");
    let table = translate_all(&format!(
        "{APP}---{other}{}",
        route(
            "Host(`a.example`)",
            "[{name: app, port: 80, weight: 3}, {name: other, port: 80, weight: 1}]"
        )
    ));
    let weights: Vec<_> = servers(only_router(&table))
        .into_iter()
        .map(|(name, _, w)| (name, w))
        .collect();
    assert_eq!(
        weights,
        vec![("apps/app:http".into(), 3), ("apps/other:http".into(), 1)]
    );
}

#[test]
fn one_missing_service_leaves_the_others_serving() {
    let table = translate_all(&format!(
        "{APP}{}",
        route(
            "Host(`a.example`)",
            "[{name: app, port: 80}, {name: gone, port: 80}]"
        )
    ));
    assert_eq!(servers(only_router(&table)).len(), 1);
    assert_eq!(
        reasons(&table),
        vec![(
            Reason::ServiceNotFound,
            Some("spec.routes[0].services[1].name".into())
        )]
    );
}

#[test]
fn priority_defaults_to_rule_length_and_explicit_wins() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: multi, namespace: apps}}
spec:
  routes:
    - match: PathPrefix(`/`)
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/api`)
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/`)
      priority: 100
      services: [{{name: app, port: 80}}]
"#
    );
    let table = translate_all(&yaml);
    let order: Vec<(&str, i64)> = table
        .routes
        .routes()
        .map(|r| (r.value.name.as_ref(), r.priority))
        .collect();
    assert_eq!(
        order,
        vec![
            ("apps/multi#2", 100),
            ("apps/multi#1", 18),
            ("apps/multi#0", 15)
        ]
    );
    let headers = HeaderMap::new();
    let request = Request {
        method: "GET",
        host: "x",
        path: "/api/users",
        query: None,
        headers: &headers,
        client_ip: None,
    };
    assert_eq!(
        table.routes.find("web", &request).map(|r| r.name.as_ref()),
        Some("apps/multi#2")
    );
}

#[test]
fn middlewares_resolve_in_order_and_missing_ones_fail_closed() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: strip, namespace: apps}}
spec: {{stripPrefix: {{prefixes: [/api]}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: hdr, namespace: shared}}
spec:
  headers:
    customRequestHeaders: {{X-Env: prod, X-Drop: ""}}
    customResponseHeaders: {{X-Served-By: traverse}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: limit, namespace: apps}}
spec: {{tap: {{}}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: mw, namespace: apps}}
spec:
  routes:
    - match: PathPrefix(`/api`)
      middlewares: [{{name: strip}}, {{name: hdr, namespace: shared}}]
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/missing`)
      middlewares: [{{name: nowhere}}]
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/limited`)
      middlewares: [{{name: limit@kubernetescrd}}]
      services: [{{name: app, port: 80}}]
"#
    );
    let table = translate_across_namespaces(&yaml);
    let routers: BTreeMap<&str, &Router> = table
        .routes
        .routes()
        .map(|r| (r.value.name.as_ref(), r.value.as_ref()))
        .collect();
    let api = routers["apps/mw#0"];
    assert_eq!(api.middlewares.len(), 2);
    assert_eq!(
        api.middlewares[0],
        Middleware::StripPrefix(StripPrefix {
            prefixes: vec!["/api".into()]
        })
    );
    let Middleware::Headers(Headers {
        request, response, ..
    }) = &api.middlewares[1]
    else {
        panic!("headers")
    };
    assert_eq!(request.len(), 2);
    assert!(
        request.iter().any(|(n, v)| n == "x-drop" && v.is_none()),
        "empty value removes"
    );
    assert_eq!(response.len(), 1);
    assert!(matches!(api.target, Target::Services(_)));

    for name in ["apps/mw#1", "apps/mw#2"] {
        assert!(
            matches!(
                routers[name].target,
                Target::Unavailable { status: 503, .. }
            ),
            "{name} must fail closed"
        );
    }
    let found = reasons(&table);
    assert!(
        found.contains(&(
            Reason::MiddlewareNotFound,
            Some("spec.routes[1].middlewares[0]".into())
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            Reason::InvalidMiddleware,
            Some("spec.routes[2].middlewares[0]".into())
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(Reason::Unsupported, None)),
        "tap reported on the Middleware: {found:?}"
    );
}

#[test]
fn invalid_rule_is_left_out_with_its_column() {
    let table = translate_all(&format!(
        "{APP}{}",
        route("Host(`a.example`) &&", "[{name: app, port: 80}]")
    ));
    assert!(table.routes.is_empty());
    let diagnostic = table.diagnostics.iter().next().expect("diagnostic");
    assert_eq!(diagnostic.reason, Reason::InvalidRule);
    assert_eq!(diagnostic.field.as_deref(), Some("spec.routes[0].match"));
    assert!(
        diagnostic.message.starts_with("column "),
        "{}",
        diagnostic.message
    );
}

#[test]
fn unsupported_fields_and_unknown_entrypoints_are_reported() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: tls, namespace: apps}}
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(`a.example`)
      services: [{{name: app, port: 80, nodePortLB: true}}]
  tls: {{certResolver: le}}
"#
    );
    let table = translate_all(&yaml);
    let found = reasons(&table);
    for field in [
        "spec.tls",
        "spec.tls.certResolver",
        "spec.routes[0].services[0].nodePortLB",
        "spec.entryPoints[0]",
    ] {
        assert!(
            found
                .iter()
                .any(|(r, f)| *r == Reason::Unsupported && f.as_deref() == Some(field)),
            "{field}: {found:?}"
        );
    }
    // A route with tls serves on TLS entrypoints only, and this gateway has none.
    assert_eq!(table.routes.len(), 0);
}

#[test]
fn routes_with_tls_serve_on_the_tls_entrypoints_only() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: tls, namespace: apps}}
spec:
  routes:
    - match: Host(`a.example`)
      services: [{{name: app, port: 80}}]
  tls: {{}}
"#
    );
    let entry_points =
        EntryPoints::new([("web".to_owned(), false), ("websecure".to_owned(), false)])
            .with_tls(["websecure".to_owned()]);
    let table = translate(&snapshot(&yaml), &entry_points);
    let routes: Vec<_> = table.routes.routes().collect();
    assert_eq!(routes.len(), 1, "{:?}", table.diagnostics);
    assert_eq!(routes[0].entrypoints, ["websecure"]);
}

#[test]
fn duplicates_keep_the_first_and_report() {
    let table = translate_all(&format!(
        "{APP}{}{}",
        route("Host(`first.example`)", "[{name: app, port: 80}]"),
        route("Host(`second.example`)", "[{name: app, port: 80}]")
    ));
    assert_eq!(&*only_router(&table).rule, "Host(`first.example`)");
    assert_eq!(reasons(&table), vec![(Reason::Duplicate, None)]);
}

#[test]
fn translate_is_deterministic() {
    let yaml = format!("{APP}{}", route("Host(`a.example`)", "[{name: nope}]"));
    let a = translate_all(&yaml);
    let b = translate_all(&yaml);
    assert_eq!(a.diagnostics, b.diagnostics);
}

/// A child: `web` for clients, `multicluster` for parents.
fn child_entry_points() -> EntryPoints {
    EntryPoints::new([("web".to_owned(), false), ("multicluster".to_owned(), true)])
}

const UPLINK: &str = r#"
---
apiVersion: traverse.dev/v1alpha1
kind: Uplink
metadata: {name: shop, namespace: apps}
spec: {weight: 4, entryPoints: [multicluster]}
"#;

fn bound_route(annotation: &str, entry_points: &str, service: &str) -> String {
    format!(
        r#"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: shop
  namespace: apps
  annotations: {{{annotation}}}
spec:
  entryPoints: {entry_points}
  routes:
    - match: PathPrefix(`/`)
      services: [{{name: {service}, port: http}}]
"#
    )
}

#[test]
fn an_uplink_bound_to_a_serviceable_route_is_advertised_ready() {
    for annotation in [
        "traverse.dev/uplinks: shop",
        "traverse.dev/uplinks: 'other, apps/shop'",
        "hub.traefik.io/router.uplinks: apps-shop",
    ] {
        let yaml = format!(
            "{APP}{UPLINK}{}",
            bound_route(annotation, "[multicluster]", "app")
        );
        let table = translate(&snapshot(&yaml), &child_entry_points());
        let uplink = &table.uplinks[0];
        assert_eq!(
            (
                uplink.namespace.as_str(),
                uplink.name.as_str(),
                uplink.weight
            ),
            ("apps", "shop", 4)
        );
        assert!(uplink.ready, "{annotation}: {:?}", table.diagnostics);
        assert_eq!(uplink.entry_points, ["multicluster"]);
        assert_eq!(uplink.routers.len(), 1);
    }
}

#[test]
fn an_uplink_without_a_working_route_is_advertised_not_ready() {
    let cases = [
        // No route bound at all.
        (String::new(), Reason::UplinkNotReady),
        // Bound, but the route's Service is missing.
        (
            bound_route("traverse.dev/uplinks: shop", "[multicluster]", "missing"),
            Reason::UplinkNotReady,
        ),
        // Bound, but the route listens only on the client entrypoint.
        (
            bound_route("traverse.dev/uplinks: shop", "[web]", "app"),
            Reason::UplinkNotReady,
        ),
    ];
    for (route, reason) in cases {
        let yaml = format!("{APP}{UPLINK}{route}");
        let table = translate(&snapshot(&yaml), &child_entry_points());
        assert!(!table.uplinks[0].ready, "{route}");
        assert!(
            table.diagnostics.iter().any(
                |d| d.reason == reason && d.object.as_ref().is_some_and(|o| o.kind == "Uplink")
            ),
            "{route}: {:?}",
            table.diagnostics
        );
    }
    // A binding to an Uplink that does not exist is reported on the IngressRoute.
    let yaml = format!(
        "{APP}{}",
        bound_route("traverse.dev/uplinks: nope", "[multicluster]", "app")
    );
    let table = translate(&snapshot(&yaml), &child_entry_points());
    assert_eq!(
        reasons(&table),
        [(
            Reason::UplinkNotFound,
            Some("metadata.annotations.traverse.dev/uplinks".into())
        )]
    );
}

#[test]
fn routes_without_entrypoints_stay_off_uplink_entrypoints() {
    let yaml = format!("{APP}{}", bound_route("x: y", "[]", "app"));
    let table = translate(&snapshot(&yaml), &child_entry_points());
    let headers = HeaderMap::new();
    let request = |host: &'static str| Request {
        method: "GET",
        host,
        path: "/",
        query: None,
        headers: &headers,
        client_ip: None,
    };
    assert!(table.routes.find("web", &request("a")).is_some());
    assert!(
        table.routes.find("multicluster", &request("a")).is_none(),
        "parents reach only routes that name the uplink entrypoint"
    );

    // A child with nothing but its uplink entrypoint: the route serves nowhere, and says so.
    let uplink_only = EntryPoints::new([("multicluster".to_owned(), true)]);
    let table = translate(&snapshot(&yaml), &uplink_only);
    assert!(table.routes.find("multicluster", &request("a")).is_none());
    assert_eq!(
        reasons(&table),
        [(Reason::Unsupported, Some("spec.entryPoints".into()))]
    );
}

#[test]
fn parent_routes_reference_uplinks_in_both_forms() {
    let yaml = route(
        "PathPrefix(`/`)",
        "[{name: apps-shop@multicluster, kind: TraefikService, weight: 3}, {name: cart, kind: Uplink, namespace: shop}, {name: web, kind: Uplink}]",
    );
    let table = translate_all(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let Target::Uplinks(uplinks) = &only_router(&table).target else {
        panic!("uplink target expected");
    };
    let refs: Vec<(String, u32)> = uplinks
        .items()
        .iter()
        .map(|(r, w)| (r.to_string(), *w))
        .collect();
    assert_eq!(
        refs,
        [
            ("apps-shop@multicluster".to_owned(), 3),
            ("shop/cart".to_owned(), 1),
            ("apps/web".to_owned(), 1)
        ]
    );
    let hub = &uplinks.items()[0].0;
    assert!(hub.matches("apps", "shop"));
    assert!(!hub.matches("apps-shop", ""));
    assert!(!hub.matches("app", "s-shop"));

    // Mixing uplinks and Services in one route is refused, not half-served.
    let yaml = format!(
        "{APP}{}",
        route(
            "PathPrefix(`/`)",
            "[{name: apps-shop@multicluster}, {name: app, port: http}]"
        )
    );
    let table = translate_all(&yaml);
    assert!(matches!(
        only_router(&table).target,
        Target::Unavailable { status: 503, .. }
    ));
    assert_eq!(
        reasons(&table),
        [(Reason::Unsupported, Some("spec.routes[0].services".into()))]
    );
}

#[test]
fn router_carries_the_route_template_of_its_rule() {
    for (rule, template) in [
        ("Host(`a.example`)", "/*"),
        ("Host(`a.example`) && PathPrefix(`/api`)", "/api/*"),
        ("Path(`/health`)", "/health"),
    ] {
        let table = translate_all(&format!(
            "{APP}{}",
            route(rule, "[{name: app, port: http}]")
        ));
        let router = only_router(&table);
        assert_eq!(&*router.route, template, "{rule}");
        assert_eq!(&*router.name, "apps/web#0", "the router keeps its own name");
    }
}

const MIDDLEWARE_ROUTE: &str = r#"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: mw, namespace: apps}
spec:
  routes:
    - match: PathPrefix(`/`)
      middlewares: [{name: entry}]
      services: [{name: app, port: 80}]
"#;

fn single_router(table: &RoutingTable) -> &Router {
    table.routes.routes().next().expect("router").value.as_ref()
}

#[test]
fn chains_flatten_in_order_and_share_objects() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec:
  chain:
    middlewares: [{{name: auth-chain}}, {{name: strip, namespace: shared}}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: auth-chain, namespace: apps}}
spec:
  chain:
    middlewares: [{{name: allow}}, {{name: limit}}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: allow, namespace: apps}}
spec: {{ipAllowList: {{sourceRange: [10.0.0.0/8, 192.0.2.1]}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: limit, namespace: apps}}
spec: {{rateLimit: {{average: 100, period: 1m, burst: 50}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: strip, namespace: shared}}
spec: {{stripPrefixRegex: {{regex: ["/[a-z]+/"]}}}}
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_across_namespaces(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let router = single_router(&table);
    let kinds: Vec<&str> = router
        .middlewares
        .iter()
        .map(|m| match m {
            Middleware::IpAllowList(_) => "ipAllowList",
            Middleware::RateLimit(_) => "rateLimit",
            Middleware::StripPrefixRegex(_) => "stripPrefixRegex",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["ipAllowList", "rateLimit", "stripPrefixRegex"]);
    let Middleware::RateLimit(limit) = &router.middlewares[1] else {
        panic!("rateLimit")
    };
    // 100 per minute: one every 600ms, 50 at once, a wait up to 500ms tolerated.
    assert_eq!(limit.interval_ns, 600_000_000);
    assert_eq!(limit.burst, 50);
    assert_eq!(limit.max_delay_ns, 500_000_000);
    assert_eq!(&*limit.origin.name, "apps/limit");
    assert_eq!(router.middleware_names, ["apps/entry"]);
}

#[test]
fn chain_loops_and_missing_links_fail_closed() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{chain: {{middlewares: [{{name: loop-a}}]}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: loop-a, namespace: apps}}
spec: {{chain: {{middlewares: [{{name: loop-b}}]}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: loop-b, namespace: apps}}
spec: {{chain: {{middlewares: [{{name: loop-a}}]}}}}
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_all(&yaml);
    assert!(matches!(
        single_router(&table).target,
        Target::Unavailable { status: 503, .. }
    ));
    assert!(
        table
            .diagnostics
            .iter()
            .any(|d| d.field.as_deref() == Some("spec.chain.middlewares[0]")
                && d.message.contains("chain loops back to apps/loop-a")),
        "{:?}",
        table.diagnostics
    );
}

/// Each invalid configuration is an error on the Middleware naming the field, and
/// the route using it answers 503.
#[test]
fn invalid_middleware_fields_are_named() {
    let cases = [
        ("{redirectScheme: {port: \"443\"}}", "spec.redirectScheme.scheme"),
        ("{redirectScheme: {scheme: https, port: abc}}", "spec.redirectScheme.port"),
        ("{redirectRegex: {regex: \"^(\", replacement: x}}", "spec.redirectRegex.regex"),
        ("{stripPrefixRegex: {regex: [\"/ok\", \"[\"]}}", "spec.stripPrefixRegex.regex[1]"),
        ("{replacePath: {path: nope}}", "spec.replacePath.path"),
        ("{replacePathRegex: {regex: \"(\", replacement: /x}}", "spec.replacePathRegex.regex"),
        ("{headers: {accessControlAllowOriginListRegex: [\"(\"]}}", "spec.headers.accessControlAllowOriginListRegex[0]"),
        ("{headers: {hostsProxyHeaders: [\"bad header\"]}}", "spec.headers.hostsProxyHeaders"),
        ("{basicAuth: {users: [\"alice:plaintext\"]}}", "spec.basicAuth.users[0]"),
        ("{basicAuth: {users: [\"no-colon\"]}}", "spec.basicAuth.users[0]"),
        ("{basicAuth: {secret: authsecret}}", "spec.basicAuth.secret"),
        ("{digestAuth: {users: [\"test:a2688e031edb4be6a3797f3882655c05\"]}}", "spec.digestAuth.users[0]"),
        ("{digestAuth: {users: [\"test:traefik:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\"]}}", "spec.digestAuth.users[0]"),
        ("{digestAuth: {users: [\"test:other:a2688e031edb4be6a3797f3882655c05\"]}}", "spec.digestAuth.users"),
        ("{digestAuth: {secret: authsecret}}", "spec.digestAuth.secret"),
        ("{digestAuth: {users: [\"test:traefik:a2688e031edb4be6a3797f3882655c05\"], headerField: \"bad header\"}}", "spec.digestAuth.headerField"),
        ("{ipAllowList: {sourceRange: [10.0.0.0/8, not-an-ip]}}", "spec.ipAllowList.sourceRange[1]"),
        ("{ipAllowList: {sourceRange: [10.0.0.0/8], rejectStatusCode: 999}}", "spec.ipAllowList.rejectStatusCode"),
        ("{ipWhiteList: {sourceRange: []}}", "spec.ipWhiteList.sourceRange"),
        ("{ipAllowList: {sourceRange: [10.0.0.0/8], ipStrategy: {depth: -1}}}", "spec.ipAllowList.ipStrategy.depth"),
        ("{rateLimit: {average: 10, period: 2 weeks}}", "spec.rateLimit.period"),
        ("{rateLimit: {average: 10, sourceCriterion: {requestHost: true, requestHeaderName: X-A}}}", "spec.rateLimit.sourceCriterion"),
        ("{inFlightReq: {amount: 0}}", "spec.inFlightReq.amount"),
        ("{compress: {encodings: [gzip, deflate]}}", "spec.compress.encodings[1]"),
        ("{compress: {encodings: [br], defaultEncoding: gzip}}", "spec.compress.defaultEncoding"),
        ("{compress: {excludedContentTypes: [text/csv], includedContentTypes: [text/html]}}", "spec.compress"),
        ("{compress: {includedContentTypes: [text/html, \"not a type\"]}}", "spec.compress.includedContentTypes[1]"),
        ("{compress: {minResponseBodyBytes: -1}}", "spec.compress.minResponseBodyBytes"),
        ("{retry: {initialInterval: 100ms}}", "spec.retry.attempts"),
        ("{retry: {attempts: 0}}", "spec.retry.attempts"),
        ("{retry: {attempts: 3, initialInterval: soon}}", "spec.retry.initialInterval"),
        ("{errors: {status: [\"5xx\"], service: {name: app, port: 80}}}", "spec.errors.status[0]"),
        ("{errors: {service: {name: app, port: 80}}}", "spec.errors.status"),
        ("{errors: {status: [\"500\"]}}", "spec.errors.service"),
        ("{forwardAuth: {trustForwardHeader: true}}", "spec.forwardAuth.address"),
        ("{circuitBreaker: {checkPeriod: 1s}}", "spec.circuitBreaker.expression"),
        ("{circuitBreaker: {expression: \"NetworkErrorRatio() >\"}}", "spec.circuitBreaker.expression"),
        ("{circuitBreaker: {expression: \"NetworkErrorRatio() > 0.5\", fallbackDuration: later}}", "spec.circuitBreaker.fallbackDuration"),
        ("{circuitBreaker: {expression: \"NetworkErrorRatio() > 0.5\", responseCode: 42}}", "spec.circuitBreaker.responseCode"),
        ("{forwardAuth: {address: \"ftp://auth.example/verify\"}}", "spec.forwardAuth.address"),
        ("{forwardAuth: {address: \"https:///verify\"}}", "spec.forwardAuth.address"),
        ("{forwardAuth: {address: \"https://auth\", tls: {caSecret: missing}}}", "spec.forwardAuth.tls.caSecret"),
        ("{forwardAuth: {address: \"https://auth\", tls: {certSecret: missing}}}", "spec.forwardAuth.tls.certSecret"),
        ("{forwardAuth: {address: \"http://auth\", authResponseHeaders: [\"bad header\"]}}", "spec.forwardAuth.authResponseHeaders[0]"),
        ("{forwardAuth: {address: \"http://auth\", authResponseHeadersRegex: \"(\"}}", "spec.forwardAuth.authResponseHeadersRegex"),
        ("{errors: {status: [\"500\"], service: {name: nowhere, port: 80}}}", "spec.errors.service"),
        ("{errors: {status: [\"500\"], service: {name: app, namespace: shared, port: 80}}}", "spec.errors.service.namespace"),
        ("{buffering: {maxRequestBodyBytes: -1}}", "spec.buffering.maxRequestBodyBytes"),
        ("{buffering: {maxResponseBodyBytes: -5}}", "spec.buffering.maxResponseBodyBytes"),
    ];
    for (spec, field) in cases {
        let yaml = format!(
            r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {spec}
{MIDDLEWARE_ROUTE}"#
        );
        let table = translate_all(&yaml);
        assert!(
            matches!(
                single_router(&table).target,
                Target::Unavailable { status: 503, .. }
            ),
            "{spec}"
        );
        let error = table
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{spec}: {:?}", table.diagnostics));
        assert_eq!(error.field.as_deref(), Some(field), "{spec}: {error}");
        assert_eq!(
            error.object.as_ref().map(|o| o.name.as_str()),
            Some("entry"),
            "{spec}"
        );
        assert!(
            !error.message.contains("plaintext"),
            "hashes are never echoed"
        );
    }
}

#[test]
fn rate_limit_of_zero_is_no_step() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{rateLimit: {{average: 0}}}}
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_all(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    assert!(single_router(&table).middlewares.is_empty());
}

#[test]
fn compress_defaults_are_traefiks() {
    use crate::model::middleware::{ContentTypes, Encoding};
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{compress: {{}}}}
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_all(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let [Middleware::Compress(compress)] = single_router(&table).middlewares.as_slice() else {
        panic!("one compress step")
    };
    assert_eq!(
        compress.encodings,
        [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd]
    );
    assert_eq!(compress.default_encoding, None);
    assert_eq!(compress.min_body_bytes, 1024);
    assert_eq!(compress.content_types, ContentTypes::Excluded(Vec::new()));
}

#[test]
fn retry_intervals_are_seconds_or_durations() {
    use crate::model::middleware::Retry;
    for (interval, expected) in [("100ms", 100), ("2", 2000), ("\"1s\"", 1000)] {
        let yaml = format!(
            r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{retry: {{attempts: 4, initialInterval: {interval}}}}}
{MIDDLEWARE_ROUTE}"#
        );
        let table = translate_all(&yaml);
        assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
        assert_eq!(
            single_router(&table).middlewares,
            [Middleware::Retry(Retry {
                attempts: 4,
                initial_interval: std::time::Duration::from_millis(expected),
            })],
            "{interval}"
        );
    }
}

#[test]
fn pass_tls_client_cert_and_content_type_translate_as_traefik_reads_them() {
    let yaml = |spec: &str| {
        format!(
            r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {spec}
{MIDDLEWARE_ROUTE}"#
        )
    };
    let table = translate_all(&yaml(
        "{passTLSClientCert: {pem: true, info: {sans: true, issuer: {commonName: true}}}}",
    ));
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let [Middleware::PassTlsClientCert(pass)] = single_router(&table).middlewares.as_slice() else {
        panic!("{:?}", single_router(&table).middlewares);
    };
    assert!(pass.pem);
    let info = pass.info.as_ref().expect("info");
    assert!(info.sans && !info.not_after && info.subject.is_none());
    assert!(info
        .issuer
        .as_ref()
        .is_some_and(|i| i.common_name && !i.country));

    // contentType runs no step; detection, unless turned off, is a warning.
    let table = translate_all(&yaml("{contentType: {autoDetect: false}}"));
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    assert!(single_router(&table).middlewares.is_empty());
    let table = translate_all(&yaml("{contentType: {}}"));
    assert!(single_router(&table).middlewares.is_empty());
    let diagnostics: Vec<_> = table.diagnostics.iter().collect();
    let [warning] = diagnostics.as_slice() else {
        panic!("{:?}", table.diagnostics);
    };
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(
        warning.field.as_deref(),
        Some("spec.contentType.autoDetect")
    );
    assert!(
        matches!(single_router(&table).target, Target::Services(_)),
        "the route serves"
    );
}

#[test]
fn digest_auth_keeps_the_users_of_its_realm() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: v1
kind: Secret
metadata: {{name: digest-users, namespace: apps}}
stringData:
  users: |
    test:traefik:a2688e031edb4be6a3797f3882655c05
    other:elsewhere:a2688e031edb4be6a3797f3882655c05
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec:
  digestAuth:
    secret: digest-users
    users: ["test:traefik:00000000000000000000000000000000", "admin:traefik:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
    removeHeader: true
    headerField: X-WebAuth-User
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_all(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let [Middleware::DigestAuth(auth)] = single_router(&table).middlewares.as_slice() else {
        panic!("{:?}", single_router(&table).middlewares);
    };
    assert_eq!(auth.realm, "traefik");
    // The Secret's line for test comes last and wins; other's realm is not this one.
    assert_eq!(
        auth.users,
        [
            ("admin".to_owned(), "a".repeat(32)),
            (
                "test".to_owned(),
                "a2688e031edb4be6a3797f3882655c05".to_owned()
            ),
        ]
    );
    assert!(auth.remove_header);
    assert_eq!(
        auth.header_field.as_ref().map(|h| h.as_str()),
        Some("x-webauth-user")
    );
}

#[test]
fn basic_auth_reads_users_from_secrets_as_traefik() {
    let yaml = |secret: &str| {
        format!(
            r#"{APP}
---
apiVersion: v1
kind: Secret
metadata: {{name: authsecret, namespace: apps}}
{secret}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{basicAuth: {{secret: authsecret}}}}
{MIDDLEWARE_ROUTE}"#
        )
    };
    let users = |table: &RoutingTable| match single_router(table).middlewares.as_slice() {
        [Middleware::BasicAuth(auth)] => auth.users.clone(),
        other => panic!("{other:?}: {:?}", table.diagnostics),
    };
    // htpasswd lines in the Secret's one entry (myName:myPassword, then test:test).
    let table = translate_all(&yaml(
        "stringData:\n  users: |\n    myName:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\n\n    test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\n",
    ));
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let found = users(&table);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0, "myName");
    assert!(found[0].1.verify(b"myPassword"));
    assert!(found[1].1.verify(b"test"));
    // A kubernetes.io/basic-auth Secret: one user, password in clear.
    let table = translate_all(&yaml(
        "type: kubernetes.io/basic-auth\nstringData: {username: alice, password: s3cret}",
    ));
    let found = users(&table);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "alice");
    assert!(found[0].1.verify(b"s3cret") && !found[0].1.verify(b"other"));
    // Unusable Secrets are errors naming the field; the route answers 503.
    for secret in [
        "stringData: {users: \"a:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\", more: x}",
        "stringData: {users: \"a:plaintext\"}",
        "stringData: {users: \"\"}",
        "type: kubernetes.io/basic-auth\nstringData: {username: alice}",
    ] {
        let table = translate_all(&yaml(secret));
        assert!(
            matches!(
                single_router(&table).target,
                Target::Unavailable { status: 503, .. }
            ),
            "{secret}"
        );
        let error = table
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{secret}: {:?}", table.diagnostics));
        assert_eq!(
            error.field.as_deref(),
            Some("spec.basicAuth.secret"),
            "{error}"
        );
        assert!(!error.message.contains("plaintext"), "{error}");
    }
}

/// `forwardAuth.tls` as Traefik reads it: the CA from `tls.ca` or `ca.crt` (or a Secret's
/// only entry), the client certificate from `tls.crt` and `tls.key`, both Secrets of the
/// Middleware's namespace; a missing Secret or a bad PEM is an error naming the field.
#[test]
fn forward_auth_tls_reads_its_secrets_as_traefik() {
    let ca = rcgen::generate_simple_self_signed(vec!["auth-ca.test".to_owned()]).expect("CA");
    let client =
        rcgen::generate_simple_self_signed(vec!["gateway.test".to_owned()]).expect("client");
    let yaml = |tls: &str, ca_data: &str, address: &str| {
        format!(
            r#"{APP}
---
apiVersion: v1
kind: Secret
metadata: {{name: auth-ca, namespace: apps}}
stringData: {ca_data}
---
apiVersion: v1
kind: Secret
metadata: {{name: gateway-cert, namespace: apps}}
type: kubernetes.io/tls
stringData: {{tls.crt: {:?}, tls.key: {:?}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: elsewhere, namespace: other}}
stringData: {{tls.ca: {:?}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec: {{forwardAuth: {{address: "{address}", tls: {tls}}}}}
{MIDDLEWARE_ROUTE}"#,
            client.cert.pem(),
            client.signing_key.serialize_pem(),
            ca.cert.pem(),
        )
    };
    let auth = |table: &RoutingTable| match single_router(table).middlewares.as_slice() {
        [Middleware::ForwardAuth(auth)] => auth.clone(),
        other => panic!("{other:?}: {:?}", table.diagnostics),
    };
    let ca_der = ca.cert.der().to_vec();
    for key in ["tls.ca", "ca.crt", "anything"] {
        let table = translate_all(&yaml(
            "{caSecret: auth-ca, certSecret: gateway-cert}",
            &format!("{{{key}: {:?}}}", ca.cert.pem()),
            "https://auth.apps:8443/verify",
        ));
        assert!(
            table.diagnostics.is_empty(),
            "{key}: {:?}",
            table.diagnostics
        );
        let tls = auth(&table).tls.expect("TLS for an https address");
        assert_eq!(tls.root_cas, std::slice::from_ref(&ca_der), "{key}");
        let (chain, _) = tls.client_identity.as_ref().expect("client certificate");
        assert_eq!(chain, &[client.cert.der().to_vec()]);
        assert!(!tls.insecure_skip_verify && tls.server_name.is_none());
    }
    // Without `tls`, an https server is verified against the system's CAs.
    let ca_entry = format!("{{tls.ca: {:?}}}", ca.cert.pem());
    let table = translate_all(&yaml(
        "{insecureSkipVerify: true}",
        &ca_entry,
        "https://auth",
    ));
    let tls = auth(&table).tls.expect("TLS");
    assert!(tls.insecure_skip_verify && tls.root_cas.is_empty());
    // `caOptional` is accepted and reported; `tls` on an http address does nothing.
    for (tls, address, field) in [
        (
            "{caOptional: true}",
            "https://auth",
            "spec.forwardAuth.tls.caOptional",
        ),
        ("{caSecret: auth-ca}", "http://auth", "spec.forwardAuth.tls"),
    ] {
        let table = translate_all(&yaml(tls, &ca_entry, address));
        let found: Vec<_> = table
            .diagnostics
            .iter()
            .map(|d| (d.severity, d.field.as_deref()))
            .collect();
        assert_eq!(found, [(Severity::Warning, Some(field))], "{tls}");
        assert_eq!(auth(&table).tls.is_some(), address.starts_with("https"));
    }
    // Unusable Secrets: errors naming the field, the Secret and its key; the route answers 503.
    for (tls, ca_data, field, says) in [
        (
            "{caSecret: nowhere}",
            ca_entry.as_str(),
            "caSecret",
            "Secret apps/nowhere not found",
        ),
        // Secrets are read from the Middleware's namespace only.
        (
            "{caSecret: elsewhere}",
            ca_entry.as_str(),
            "caSecret",
            "Secret apps/elsewhere not found",
        ),
        (
            "{caSecret: auth-ca}",
            "{tls.ca: not a certificate}",
            "caSecret",
            "stringData.tls.ca",
        ),
        (
            "{caSecret: auth-ca}",
            "{a: x, b: y}",
            "caSecret",
            "neither tls.ca nor ca.crt",
        ),
        (
            "{certSecret: auth-ca}",
            ca_entry.as_str(),
            "certSecret",
            "tls.crt",
        ),
    ] {
        let table = translate_all(&yaml(tls, ca_data, "https://auth"));
        assert!(
            matches!(
                single_router(&table).target,
                Target::Unavailable { status: 503, .. }
            ),
            "{tls} {ca_data}"
        );
        let error = table
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{tls}: {:?}", table.diagnostics));
        assert_eq!(
            error.field.as_deref(),
            Some(format!("spec.forwardAuth.tls.{field}").as_str()),
            "{error}"
        );
        assert_eq!(
            error.object.as_ref().map(|o| o.name.as_str()),
            Some("entry")
        );
        assert!(error.message.contains(says), "{tls} {ca_data}: {error}");
    }
}

#[test]
fn go_durations() {
    use super::middlewares::go_duration_for_tests as go;
    assert_eq!(go("1s"), Some(1_000_000_000));
    assert_eq!(go("1m30s"), Some(90_000_000_000));
    assert_eq!(go("1.5h"), Some(5_400_000_000_000));
    assert_eq!(go("250ms"), Some(250_000_000));
    assert_eq!(go("0"), Some(0));
    assert_eq!(go("10"), None, "a unit is required");
    assert_eq!(go("2 weeks"), None);
    assert_eq!(go(""), None);
}

/// Routes, chains and service references in another namespace are refused unless the
/// provider allows them; provider suffixes `@kubernetescrd` and `@file` name this
/// gateway's objects, any other is refused. Each refusal names its field and fails the
/// route closed.
#[test]
fn cross_namespace_references_need_the_provider_setting() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: v1
kind: Service
metadata: {{name: app, namespace: shared}}
spec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: hdr, namespace: shared}}
spec: {{headers: {{customRequestHeaders: {{X-Env: prod}}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: local, namespace: apps}}
spec: {{headers: {{customRequestHeaders: {{X-Env: test}}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec:
  chain:
    middlewares: [{{name: hdr, namespace: shared}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: mw, namespace: apps}}
spec:
  routes:
    - match: PathPrefix(`/route`)
      middlewares: [{{name: hdr, namespace: shared}}]
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/chain`)
      middlewares: [{{name: entry}}]
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/service`)
      services: [{{name: app, namespace: shared, port: 80}}]
    - match: PathPrefix(`/suffixes`)
      middlewares: [{{name: local@kubernetescrd}}, {{name: local@file}}, {{name: local, namespace: apps}}]
      services: [{{name: app, port: 80}}]
    - match: PathPrefix(`/docker`)
      middlewares: [{{name: local@docker}}]
      services: [{{name: app, port: 80}}]
"#
    );
    let table = translate_all(&yaml);
    let routers: BTreeMap<&str, &Router> = table
        .routes
        .routes()
        .map(|r| (r.value.name.as_ref(), r.value.as_ref()))
        .collect();
    for name in ["apps/mw#0", "apps/mw#1", "apps/mw#2", "apps/mw#4"] {
        assert!(
            matches!(
                routers[name].target,
                Target::Unavailable { status: 503, .. }
            ),
            "{name} must fail closed"
        );
    }
    assert!(matches!(routers["apps/mw#3"].target, Target::Services(_)));
    assert_eq!(routers["apps/mw#3"].middlewares.len(), 3);
    let found = reasons(&table);
    for field in [
        "spec.routes[0].middlewares[0].namespace",
        "spec.routes[2].services[0].namespace",
        "spec.routes[4].middlewares[0].name",
    ] {
        assert!(
            found.iter().any(|(_, f)| f.as_deref() == Some(field)),
            "{field} not reported: {found:?}"
        );
    }
    let chain = table
        .diagnostics
        .iter()
        .find(|d| d.object.as_ref().is_some_and(|o| o.name == "entry"))
        .expect("the chain is reported");
    assert_eq!(
        chain.field.as_deref(),
        Some("spec.chain.middlewares[0].namespace")
    );
    assert!(
        chain.message.contains("allowCrossNamespace"),
        "{}",
        chain.message
    );

    // Allowed, the same references resolve.
    let table = translate_across_namespaces(&yaml);
    let routers: BTreeMap<&str, &Router> = table
        .routes
        .routes()
        .map(|r| (r.value.name.as_ref(), r.value.as_ref()))
        .collect();
    for name in ["apps/mw#0", "apps/mw#1"] {
        assert!(
            matches!(routers[name].target, Target::Services(_)),
            "{name}"
        );
        assert_eq!(routers[name].middlewares.len(), 1, "{name}");
    }
    let found = reasons(&table);
    assert!(
        !found
            .iter()
            .any(|(_, f)| f.as_deref() == Some("spec.routes[2].services[0].namespace")),
        "{found:?}"
    );
    assert!(matches!(
        routers["apps/mw#4"].target,
        Target::Unavailable { status: 503, .. }
    ));
}

/// `buffering`'s limits (0: none, as in Traefik); the fields about Traefik's memory
/// thresholds and replays are reported, and the route keeps serving.
#[test]
fn buffering_limits_and_reported_fields() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec:
  buffering:
    maxRequestBodyBytes: 2000000
    memRequestBodyBytes: 1048576
    maxResponseBodyBytes: 0
    retryExpression: "IsNetworkError() && Attempts() < 2"
{MIDDLEWARE_ROUTE}"#
    );
    let table = translate_all(&yaml);
    let router = single_router(&table);
    assert!(matches!(router.target, Target::Services(_)));
    let [Middleware::Buffering(buffering)] = router.middlewares.as_slice() else {
        panic!("{:?}", router.middlewares)
    };
    assert_eq!(buffering.max_request_body_bytes, Some(2_000_000));
    assert_eq!(buffering.max_response_body_bytes, None);
    assert_eq!(&*buffering.origin.name, "apps/entry");
    let found = reasons(&table);
    for field in [
        "spec.buffering.memRequestBodyBytes",
        "spec.buffering.retryExpression",
    ] {
        assert!(
            found.contains(&(Reason::Unsupported, Some(field.into()))),
            "{field}: {found:?}"
        );
    }
    assert!(table
        .diagnostics
        .iter()
        .all(|d| d.severity == Severity::Warning));
}

#[test]
fn routes_naming_a_service_alike_share_its_backend() {
    let yaml = format!(
        r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  entryPoints: [web]
  routes:
    - {{match: "PathPrefix(`/a`)", services: [{{name: app, port: 80}}]}}
    - {{match: "PathPrefix(`/b`)", services: [{{name: app, port: 80, weight: 3}}]}}
    - {{match: "PathPrefix(`/c`)", services: [{{name: app, port: http}}]}}
    - {{match: "PathPrefix(`/d`)", services: [{{name: app, port: 80, sticky: {{cookie: {{}}}}}}]}}
    - {{match: "PathPrefix(`/e`)", services: [{{name: ghost, port: 80}}]}}
    - {{match: "PathPrefix(`/f`)", services: [{{name: ghost, port: 80}}]}}
    - {{match: "PathPrefix(`/g`)", services: [{{name: app, port: 80, healthCheck: {{path: /ready}}}}]}}
    - {{match: "PathPrefix(`/h`)", services: [{{name: app, port: 80, healthCheck: {{path: /live}}}}]}}
    - {{match: "PathPrefix(`/i`)", services: [{{name: app, port: 80, healthCheck: {{path: /ready}}}}]}}
"#
    );
    let table = translate_all(&yaml);
    let backend = |prefix: &str| {
        let router = table
            .routes
            .routes()
            .find(|r| r.value.rule.contains(prefix))
            .expect("route");
        match &router.value.target {
            Target::Services(services) => Arc::clone(services.backends()[0].0),
            _ => panic!("{prefix}: not served"),
        }
    };
    // The same reference (its weight aside) shares one backend, endpoints and rotation.
    assert!(Arc::ptr_eq(&backend("/a"), &backend("/b")));
    // Written differently, or with a sticky cookie of its own: resolved on its own.
    assert!(!Arc::ptr_eq(&backend("/a"), &backend("/c")));
    assert!(!Arc::ptr_eq(&backend("/a"), &backend("/d")));
    assert_eq!(backend("/c").servers.items().len(), 2);
    // Each health check keeps its own backend, so none is lost to another route's.
    assert!(!Arc::ptr_eq(&backend("/a"), &backend("/g")));
    assert!(!Arc::ptr_eq(&backend("/g"), &backend("/h")));
    assert!(Arc::ptr_eq(&backend("/g"), &backend("/i")));
    let path = |prefix: &str| {
        backend(prefix)
            .health_check
            .as_ref()
            .map(|c| c.path.clone())
    };
    assert_eq!(path("/a"), None);
    assert_eq!(path("/g").as_deref(), Some("/ready"));
    assert_eq!(path("/h").as_deref(), Some("/live"));
    // A reference that reports a problem reports it for every route that makes it.
    let missing: Vec<_> = table
        .diagnostics
        .iter()
        .filter(|d| d.reason == Reason::ServiceNotFound)
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
}

#[test]
fn a_translation_reuses_the_routes_of_unchanged_ingress_routes() {
    let yaml = format!(
        "{APP}{}{}",
        route("PathPrefix(`/a`)", "[{name: app, port: 80}]"),
        route("PathPrefix(`/b`)", "[{name: ghost, port: 80}]").replace("name: web", "name: other")
    );
    let mut snapshot = snapshot(&yaml);
    let entry_points = EntryPoints::new([("web".to_owned(), false)]);
    let routers = |table: &RoutingTable| -> Vec<Arc<Router>> {
        table
            .routes
            .routes()
            .map(|r| Arc::clone(&r.value))
            .collect()
    };
    let first = translate(&snapshot, &entry_points);
    let again = translate(&snapshot, &entry_points);
    assert_eq!(routers(&first).len(), 2);
    assert!(routers(&first)
        .iter()
        .zip(routers(&again).iter())
        .all(|(a, b)| Arc::ptr_eq(a, b)));
    // The reused IngressRoute's problems are still reported.
    assert_eq!(first.diagnostics, again.diagnostics);

    // One IngressRoute changes: it alone is translated again.
    let mut changed = (*snapshot.ingress_routes[1]).clone();
    changed.spec.routes[0].r#match = "PathPrefix(`/c`)".into();
    snapshot.ingress_routes[1] = Arc::new(changed);
    let third = translate(&snapshot, &entry_points);
    let kept = |table: &RoutingTable, name: &str| {
        routers(table)
            .into_iter()
            .find(|r| r.name.starts_with(name))
            .expect("router")
    };
    assert!(Arc::ptr_eq(
        &kept(&first, "apps/web#"),
        &kept(&third, "apps/web#")
    ));
    assert!(!Arc::ptr_eq(
        &kept(&first, "apps/other#"),
        &kept(&third, "apps/other#")
    ));
    assert_eq!(&*kept(&third, "apps/other#").rule, "PathPrefix(`/c`)");
    // As a translation from scratch would have it.
    let fresh = Snapshot {
        rules: crate::Rules::default(),
        ..snapshot.clone()
    };
    assert_eq!(
        translate(&fresh, &entry_points).diagnostics,
        third.diagnostics
    );

    // The Service it names changes: its route is translated again.
    snapshot.services[0] = Arc::new((*snapshot.services[0]).clone());
    let fourth = translate(&snapshot, &entry_points);
    assert!(!Arc::ptr_eq(
        &kept(&third, "apps/web#"),
        &kept(&fourth, "apps/web#")
    ));
    // And so does every route on other entrypoints.
    let fifth = translate(
        &snapshot,
        &EntryPoints::new([("web".to_owned(), false), ("admin".to_owned(), false)]),
    );
    assert!(!Arc::ptr_eq(
        &kept(&fourth, "apps/web#"),
        &kept(&fifth, "apps/web#")
    ));
}

/// Four IngressRoutes in `apps`: `direct` forwards to the Service `app`, `weighted` to a
/// TraefikService over `app`, `guarded` to `other` through a chain of two Middlewares,
/// `plain` to `other`.
const DEPENDENTS: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: apps}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-1, namespace: apps, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.1.1]}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: split, namespace: apps}
spec: {weighted: {services: [{name: app, port: 80}]}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: apps}
spec: {stripPrefix: {prefixes: [/api]}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: guard, namespace: apps}
spec: {chain: {middlewares: [{name: strip}]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: direct, namespace: apps}
spec:
  routes: [{match: "PathPrefix(`/direct`)", services: [{name: app, port: 80}]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: weighted, namespace: apps}
spec:
  routes: [{match: "PathPrefix(`/weighted`)", services: [{name: split, kind: TraefikService}]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: guarded, namespace: apps}
spec:
  routes:
    - match: "PathPrefix(`/guarded`)"
      middlewares: [{name: guard}]
      services: [{name: other, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: plain, namespace: apps}
spec:
  routes: [{match: "PathPrefix(`/plain`)", services: [{name: other, port: 80}]}]
"#;

/// Translates `snapshot` with its provider's memo, checks the result against a
/// translation from scratch, and names the IngressRoutes whose routers were reused
/// from `before`.
fn reused_since(before: &RoutingTable, snapshot: &Snapshot) -> (RoutingTable, Vec<String>) {
    let entry_points = EntryPoints::new([("web".to_owned(), false)]);
    let table = translate(snapshot, &entry_points);
    let fresh = translate(
        &Snapshot {
            rules: crate::Rules::default(),
            ..snapshot.clone()
        },
        &entry_points,
    );
    let render = |table: &RoutingTable| {
        table
            .routes
            .routes()
            .map(|r| {
                format!(
                    "{:?} {} {:?} {:?}",
                    r.rule, r.priority, r.entrypoints, r.value
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(render(&table), render(&fresh));
    assert_eq!(table.diagnostics, fresh.diagnostics);
    let mut reused: Vec<String> = table
        .routes
        .routes()
        .filter(|r| {
            before
                .routes
                .routes()
                .any(|b| Arc::ptr_eq(&b.value, &r.value))
        })
        .map(|r| {
            r.value
                .name
                .split('#')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    reused.sort();
    (table, reused)
}

#[test]
fn a_change_to_another_object_translates_only_the_ingress_routes_that_reach_it() {
    let mut snapshot = snapshot(&format!("{APP}{DEPENDENTS}"));
    let entry_points = EntryPoints::new([("web".to_owned(), false)]);
    let first = translate(&snapshot, &entry_points);
    assert_eq!(first.routes.routes().count(), 4, "{:?}", first.diagnostics);

    // The Service `app` changes: the routes reaching it, directly or through the
    // TraefikService, are translated again; the others are reused.
    let mut app = (*snapshot.services[0]).clone();
    app.spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")[0]
        .target_port = Some(traverse_api::IntOrString::Int(8081));
    snapshot.services[0] = Arc::new(app);
    let (second, reused) = reused_since(&first, &snapshot);
    assert_eq!(reused, ["apps/guarded", "apps/plain"]);

    // An EndpointSlice of `other` changes: the routes to `other`.
    let mut slice = (*snapshot.endpoint_slices[1]).clone();
    slice.endpoints.as_mut().expect("endpoints")[0].addresses = vec!["10.0.1.2".into()];
    snapshot.endpoint_slices[1] = Arc::new(slice);
    let (third, reused) = reused_since(&second, &snapshot);
    assert_eq!(reused, ["apps/direct", "apps/weighted"]);

    // The Middleware a chain names changes: the route through the chain.
    let mut strip = (*snapshot.middlewares[0]).clone();
    strip
        .spec
        .strip_prefix
        .as_mut()
        .expect("stripPrefix")
        .prefixes = vec!["/v1".into()];
    snapshot.middlewares[0] = Arc::new(strip);
    let (fourth, reused) = reused_since(&third, &snapshot);
    assert_eq!(reused, ["apps/direct", "apps/plain", "apps/weighted"]);

    // The TraefikService is removed: the route naming it (now answering 503).
    snapshot.traefik_services.clear();
    let (fifth, reused) = reused_since(&fourth, &snapshot);
    assert_eq!(reused, ["apps/direct", "apps/guarded", "apps/plain"]);

    // A Service nothing names appears: every route is reused.
    let mut unnamed = (*snapshot.services[0]).clone();
    unnamed.metadata.name = Some("unnamed".into());
    snapshot.services.push(Arc::new(unnamed));
    let (_, reused) = reused_since(&fifth, &snapshot);
    assert_eq!(
        reused,
        ["apps/direct", "apps/guarded", "apps/plain", "apps/weighted"]
    );
}

/// A Secret a forwardAuth `tls` names is a dependency of the routes using the Middleware:
/// a rotated CA retranslates them, and only them.
#[test]
fn a_changed_forward_auth_secret_translates_the_routes_using_it() {
    let ca = |name: &str| {
        rcgen::generate_simple_self_signed(vec![name.to_owned()])
            .expect("CA")
            .cert
            .pem()
    };
    let yaml = format!(
        r#"{APP}
---
apiVersion: v1
kind: Secret
metadata: {{name: auth-ca, namespace: apps}}
stringData: {{tls.ca: {:?}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: guard, namespace: apps}}
spec: {{forwardAuth: {{address: "https://auth.apps", tls: {{caSecret: auth-ca}}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: guarded, namespace: apps}}
spec:
  routes: [{{match: "PathPrefix(`/guarded`)", middlewares: [{{name: guard}}], services: [{{name: app, port: 80}}]}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: plain, namespace: apps}}
spec:
  routes: [{{match: "PathPrefix(`/plain`)", services: [{{name: app, port: 80}}]}}]
"#,
        ca("first.test")
    );
    let mut snapshot = snapshot(&yaml);
    let first = translate(&snapshot, &EntryPoints::new([("web".to_owned(), false)]));
    assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
    let mut secret = (*snapshot.secrets[0]).clone();
    secret.string_data = Some([("tls.ca".to_owned(), ca("second.test"))].into());
    snapshot.secrets[0] = Arc::new(secret);
    let (_, reused) = reused_since(&first, &snapshot);
    assert_eq!(reused, ["apps/plain"]);
}

#[test]
fn a_missing_object_that_appears_translates_the_ingress_routes_naming_it() {
    let yaml = format!("{APP}{DEPENDENTS}");
    let mut snapshot = snapshot(&yaml);
    let entry_points = EntryPoints::new([("web".to_owned(), false)]);
    let other = snapshot.services.remove(1);
    let first = translate(&snapshot, &entry_points);
    let unavailable = |table: &RoutingTable, name: &str| {
        table
            .routes
            .routes()
            .find(|r| r.value.name.starts_with(name))
            .is_some_and(|r| matches!(r.value.target, Target::Unavailable { .. }))
    };
    assert!(unavailable(&first, "apps/plain#"));

    snapshot.services.push(other);
    let (second, reused) = reused_since(&first, &snapshot);
    assert_eq!(reused, ["apps/direct", "apps/weighted"]);
    assert!(!unavailable(&second, "apps/plain#"));
}

const CLUSTER_IP: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: native, namespace: apps}
spec:
  clusterIP: 10.96.0.10
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: apps}
spec:
  clusterIP: None
  ports:
    - {name: http, port: 80, targetPort: 8080}
"#;

#[test]
fn native_lb_balances_to_the_cluster_ip_and_port() {
    let yaml = format!(
        "{APP}{CLUSTER_IP}{}",
        route(
            "PathPrefix(`/`)",
            "[{name: native, port: 80, nativeLB: true}, {name: app, port: 80, nativeLB: false}]"
        )
    );
    let table = translate_all(&yaml);
    assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    let found = servers(only_router(&table));
    assert_eq!(found[0].1, ["10.96.0.10:80"], "{found:?}");
    assert_eq!(found[1].1, ["10.0.0.1:8080", "10.0.0.2:8080"], "{found:?}");

    for (name, why) in [("headless", "headless"), ("app", "no clusterIP")] {
        let services = format!("[{{name: {name}, port: 80, nativeLB: true}}]");
        let table = translate_all(&format!(
            "{APP}{CLUSTER_IP}{}",
            route("PathPrefix(`/`)", &services)
        ));
        let error = table
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{name}: {:?}", table.diagnostics));
        assert_eq!(
            error.field.as_deref(),
            Some("spec.routes[0].services[0].nativeLB")
        );
        assert!(error.message.contains(why), "{}", error.message);
        assert!(matches!(
            only_router(&table).target,
            Target::Unavailable { status: 503, .. }
        ));
    }
}

#[test]
fn strategy_is_wrr_or_p2c_and_others_are_reported() {
    let services = "[{name: app, port: 80, strategy: p2c}, {name: app, port: http, strategy: RoundRobin}, {name: app, port: 9090, strategy: hrw}]";
    let table = translate_all(&format!("{APP}{}", route("PathPrefix(`/`)", services)));
    let Target::Services(balancer) = &only_router(&table).target else {
        panic!("not served");
    };
    let strategies: Vec<_> = balancer
        .backends()
        .iter()
        .map(|(b, _)| b.strategy)
        .collect();
    use crate::model::Strategy;
    assert_eq!(strategies, [Strategy::P2c, Strategy::Wrr, Strategy::Wrr]);
    let diagnostics: Vec<_> = table
        .diagnostics
        .iter()
        .map(|d| (d.field.as_deref().unwrap_or(""), d.message.as_str()))
        .collect();
    assert_eq!(
        diagnostics,
        [(
            "spec.routes[0].services[2].strategy",
            "strategy hrw is not implemented; wrr is used"
        )]
    );
}

#[test]
fn native_lb_by_default_applies_where_a_reference_does_not_say() {
    let yaml = format!(
        "{CLUSTER_IP}{}",
        route(
            "PathPrefix(`/`)",
            "[{name: native, port: 80}, {name: native, port: http, nativeLB: false}]"
        )
    );
    let mut snapshot = snapshot(&yaml);
    snapshot.native_lb_by_default = true;
    let table = translate(&snapshot, &EntryPoints::new([("web".to_owned(), false)]));
    let found = servers(only_router(&table));
    assert_eq!(found[0].1, ["10.96.0.10:80"], "{found:?}");
    // No EndpointSlice: the endpoints of the Service are none.
    assert!(found[1].1.is_empty(), "{found:?}");
}
