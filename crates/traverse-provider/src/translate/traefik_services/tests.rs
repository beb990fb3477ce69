use super::super::tests::{reasons, translate_all, APP};
use crate::diagnostics::{Reason, Severity};
use crate::model::{RoutingTable, Target};

fn traefik_service(name: &str, spec: &str) -> String {
    format!(
        r#"
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: {name}, namespace: apps}}
spec:
{spec}
"#
    )
}

fn route_to(services: &str) -> String {
    format!(
        r#"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  entryPoints: [web]
  routes:
    - match: PathPrefix(`/`)
      services: {services}
"#
    )
}

fn target(table: &RoutingTable) -> &Target {
    let routes: Vec<_> = table.routes.routes().collect();
    assert_eq!(routes.len(), 1, "{:?}", table.diagnostics);
    &routes[0].value.target
}

#[test]
fn a_weighted_traefik_service_nests_services_and_traefik_services() {
    let yaml = format!(
        "{APP}{}{}{}",
        traefik_service(
            "outer",
            "  weighted:\n    services:\n      - {name: app, port: 80, weight: 3}\n      - {name: inner, kind: TraefikService, weight: 1}\n    sticky: {cookie: {name: lb, httpOnly: true, sameSite: Lax}}"
        ),
        traefik_service(
            "inner",
            "  weighted:\n    services:\n      - {name: app, port: metrics}"
        ),
        route_to("[{name: outer, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    assert!(
        table.diagnostics.iter().next().is_none(),
        "{:?}",
        table.diagnostics
    );
    let Target::Services(balancer) = target(&table) else {
        panic!("services");
    };
    assert_eq!(
        &*balancer.name, "apps/outer",
        "a lone TraefikService is the route's"
    );
    let backends: Vec<(String, u32)> = balancer
        .backends()
        .into_iter()
        .map(|(b, w)| (b.name.to_string(), w))
        .collect();
    assert_eq!(
        backends,
        [("apps/app:http".into(), 3), ("apps/app:metrics".into(), 1)]
    );
    let sticky = balancer.sticky.as_ref().expect("sticky");
    assert_eq!(sticky.cookie.name, "lb");
    assert!(sticky.cookie.http_only);
    assert_eq!(sticky.cookie.same_site, Some("Lax"));
    assert_eq!(sticky.cookie.path, "/");
    let key = crate::model::balancer::sticky_key("apps-app-80");
    assert_eq!(sticky.index_of(&key), Some(0));
}

/// The TraefikService's diagnostics as (severity, field, message).
fn service_diagnostics(table: &RoutingTable) -> Vec<(Severity, Option<String>, String)> {
    table
        .diagnostics
        .iter()
        .filter(|d| {
            d.object
                .as_ref()
                .is_some_and(|o| o.kind == "TraefikService")
        })
        .map(|d| (d.severity, d.field.clone(), d.message.clone()))
        .collect()
}

const MIRRORED: &str = r#"
  mirroring:
    name: app
    port: 80
    maxBodySize: 1024
    mirrors:
      - {name: app, port: 9090, percent: 50}
      - {name: split, kind: TraefikService, percent: 100}"#;

const SPLIT: &str = "  weighted:\n    services: [{name: app, port: 80}]";

#[test]
fn mirroring_sends_to_its_service_and_names_its_mirrors() {
    let yaml = format!(
        "{APP}{}{}{}",
        traefik_service("mirror", MIRRORED),
        traefik_service("split", SPLIT),
        route_to("[{name: mirror, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    assert!(
        service_diagnostics(&table).is_empty(),
        "{:?}",
        table.diagnostics
    );
    let Target::Services(route) = target(&table) else {
        panic!("not served: {:?}", table.diagnostics);
    };
    let mut mirrored = Vec::new();
    let picked = route
        .pick_mirrored(&http::HeaderMap::new(), 0, &mut Vec::new(), &mut mirrored)
        .expect("a port");
    assert_eq!(&*picked.name, "apps/app:http");
    let settings = &mirrored[0];
    assert!(settings.mirror_body);
    assert_eq!(settings.max_body_size, Some(1024));
    let percents: Vec<u8> = settings.mirrors.iter().map(|m| m.percent).collect();
    assert_eq!(percents, [50, 100]);
    assert!(
        matches!(&settings.mirrors[0].node, crate::model::Node::Backend(b) if &*b.name == "apps/app:metrics")
    );
    assert!(
        matches!(&settings.mirrors[1].node, crate::model::Node::Balancer(b) if &*b.name == "apps/split")
    );
}

#[test]
fn mirroring_defaults_are_traefiks() {
    let yaml = format!(
        "{APP}{}{}",
        traefik_service(
            "mirror",
            "  mirroring:\n    name: app\n    port: 80\n    maxBodySize: -1\n    mirrorBody: false\n    mirrors: [{name: app, port: 80}]"
        ),
        route_to("[{name: mirror, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    let Target::Services(route) = target(&table) else {
        panic!("not served: {:?}", table.diagnostics);
    };
    let mut mirrored = Vec::new();
    route.pick_mirrored(&http::HeaderMap::new(), 0, &mut Vec::new(), &mut mirrored);
    assert_eq!(mirrored.len(), 1);
    assert!(mirrored[0].owed().is_none(), "percent 0 copies nothing");
    let settings = route
        .mirroring_settings()
        .or_else(|| match route.children.items().first() {
            Some((crate::model::Node::Balancer(b), _)) => b.mirroring_settings(),
            _ => None,
        })
        .expect("a mirroring service");
    assert!(!settings.mirror_body);
    assert_eq!(settings.max_body_size, None);
    // `percent` left out is 0, as in Traefik.
    assert_eq!(settings.mirrors[0].percent, 0);
}

#[test]
fn an_invalid_mirror_names_its_field_and_the_routes_answer_503() {
    let cases = [
        (
            "    mirrors: [{name: app, port: 80, percent: 101}]",
            "spec.mirroring.mirrors[0].percent",
        ),
        (
            "    mirrors: [{name: nope, kind: TraefikService}]",
            "spec.mirroring.mirrors[0].name",
        ),
        (
            "    mirrors: [{name: app, port: 80, weight: x}]",
            "spec.mirroring.mirrors[0].weight",
        ),
        ("    maxBodySize: lots", "spec.mirroring.maxBodySize"),
        ("    mirrorBody: 3", "spec.mirroring.mirrorBody"),
        (
            "    mirrors: [{name: app, kind: Uplink}]",
            "spec.mirroring.mirrors[0].kind",
        ),
    ];
    for (extra, field) in cases {
        let spec = format!("  mirroring:\n    name: app\n    port: 80\n{extra}");
        let yaml = format!(
            "{APP}{}{}",
            traefik_service("mirror", &spec),
            route_to("[{name: mirror, kind: TraefikService}]"),
        );
        let table = translate_all(&yaml);
        let errors: Vec<_> = service_diagnostics(&table)
            .into_iter()
            .filter(|(severity, _, _)| *severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
        assert_eq!(errors[0].1.as_deref(), Some(field), "{extra}: {errors:?}");
        assert!(
            errors[0].2.ends_with("the routes using it answer 503"),
            "{errors:?}"
        );
        assert!(
            matches!(target(&table), Target::Unavailable { status: 503, .. }),
            "{extra}"
        );
    }
}

#[test]
fn an_unknown_field_of_a_mirror_is_reported_and_ignored() {
    let spec = "  mirroring:\n    name: app\n    port: 80\n    mirrors: [{name: app, port: 80, percent: 5, colour: blue}]";
    let yaml = format!(
        "{APP}{}{}",
        traefik_service("mirror", spec),
        route_to("[{name: mirror, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    let diagnostics = service_diagnostics(&table);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].0, Severity::Warning);
    assert_eq!(
        diagnostics[0].1.as_deref(),
        Some("spec.mirroring.mirrors[0].colour")
    );
    assert!(matches!(target(&table), Target::Services(_)));
}

#[test]
fn loops_missing_references_and_bad_cookies_are_errors_naming_the_field() {
    let yaml = format!(
        "{APP}{}{}{}",
        traefik_service(
            "a",
            "  weighted:\n    services:\n      - {name: b, kind: TraefikService}"
        ),
        traefik_service(
            "b",
            "  weighted:\n    services:\n      - {name: a, kind: TraefikService}"
        ),
        route_to("[{name: a, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    assert!(
        table
            .diagnostics
            .iter()
            .any(|d| d.message.contains("refers to itself")),
        "{:?}",
        table.diagnostics
    );
    let Target::Unavailable { status, .. } = target(&table) else {
        panic!("a loop cannot serve");
    };
    assert_eq!(*status, 503);

    let missing = translate_all(&format!(
        "{APP}{}",
        route_to("[{name: nowhere, kind: TraefikService}]")
    ));
    assert!(reasons(&missing).contains(&(
        Reason::ServiceNotFound,
        Some("spec.routes[0].services[0].name".into())
    )));
    assert!(matches!(target(&missing), Target::Unavailable { .. }));

    let bad_cookie = translate_all(&format!(
        "{APP}{}{}",
        traefik_service(
            "w",
            "  weighted:\n    services: [{name: app, port: 80}]\n    sticky: {cookie: {sameSite: sideways}}"
        ),
        route_to("[{name: w, kind: TraefikService}]"),
    ));
    assert!(reasons(&bad_cookie).contains(&(
        Reason::InvalidService,
        Some("spec.weighted.sticky.cookie.sameSite".into())
    )));
    assert!(matches!(target(&bad_cookie), Target::Unavailable { .. }));
}

#[test]
fn a_service_sticky_cookie_keys_its_endpoints_by_url() {
    let table = translate_all(&format!(
        "{APP}{}",
        route_to("[{name: app, port: 80, sticky: {cookie: {secure: true, maxAge: 10}}}]")
    ));
    let Target::Services(balancer) = target(&table) else {
        panic!("services");
    };
    let (backend, _) = balancer.backends()[0];
    let sticky = backend.sticky.as_ref().expect("sticky");
    assert_eq!(
        sticky.cookie.name,
        crate::model::balancer::default_cookie_name("apps/app")
    );
    assert!(sticky.cookie.secure);
    assert_eq!(sticky.cookie.max_age, 10);
    let key = crate::model::balancer::sticky_key("http://10.0.0.2:8080");
    assert_eq!(sticky.index_of(&key), Some(1));
}

#[test]
fn a_failover_names_its_service_and_fallback() {
    let yaml = format!(
        "{APP}{}{}{}{}",
        traefik_service("main", "  weighted:\n    services:\n      - {name: app, port: 80}"),
        traefik_service("spare", "  weighted:\n    services:\n      - {name: app, port: metrics}"),
        traefik_service(
            "fo",
            "  failover:\n    service: main\n    fallback: spare@kubernetescrd\n    healthCheck: {}\n    extra: 1"
        ),
        route_to("[{name: fo, kind: TraefikService}]"),
    );
    let table = translate_all(&yaml);
    assert_eq!(
        reasons(&table),
        [(Reason::Unsupported, Some("spec.failover.extra".into()))],
        "an unknown field is reported"
    );
    let Target::Services(balancer) = target(&table) else {
        panic!("services");
    };
    assert_eq!(&*balancer.name, "apps/fo");
    let backends: Vec<String> = balancer
        .backends()
        .into_iter()
        .map(|(b, _)| b.name.to_string())
        .collect();
    assert_eq!(backends, ["apps/app:http", "apps/app:metrics"]);
    let picked = balancer.pick(&http::HeaderMap::new(), 0, &mut Vec::new());
    assert_eq!(&*picked.expect("pick").name, "apps/app:http");

    for (spec, field) in [
        ("  failover:\n    fallback: main", "spec.failover.service"),
        ("  failover:\n    service: nope", "spec.failover.service"),
        (
            "  failover:\n    service: main\n    fallback: 3",
            "spec.failover.fallback",
        ),
    ] {
        let yaml = format!(
            "{APP}{}{}{}",
            traefik_service(
                "main",
                "  weighted:\n    services:\n      - {name: app, port: 80}"
            ),
            traefik_service("fo", spec),
            route_to("[{name: fo, kind: TraefikService}]"),
        );
        let table = translate_all(&yaml);
        assert!(
            table
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error && d.field.as_deref() == Some(field)),
            "{spec}: {:?}",
            table.diagnostics
        );
        assert!(
            matches!(target(&table), Target::Unavailable { status: 503, .. }),
            "{spec}"
        );
    }
}
