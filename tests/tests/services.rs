//! TraefikServices and sticky sessions end to end: `weighted` TraefikServices nested in
//! one another share traffic by weight, sticky cookies keep a client where it was first
//! sent (at each level of nesting, and across a Service's endpoints), and a
//! TraefikService the gateway cannot run makes its routes answer 503 while the others
//! keep serving.

use traverse_e2e::{config, diagnostics, field, service, Gateway, Upstream};

/// The value a `Set-Cookie` header gives cookie `name`.
fn cookie_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    set_cookie
        .split(';')
        .next()?
        .trim()
        .strip_prefix(name)?
        .strip_prefix('=')
}

const WEIGHTED: &str = "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: wrr1
  namespace: default
spec:
  weighted:
    services:
      - name: a
        port: 80
        weight: 3
      - name: wrr2
        kind: TraefikService
        weight: 1
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: wrr2
  namespace: default
spec:
  weighted:
    services:
      - name: b
        port: 80
        weight: 1
      - name: c
        port: 80
        weight: 1
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: sticky
  namespace: default
spec:
  weighted:
    services:
      - name: a
        port: 80
      - name: b
        port: 80
    sticky:
      cookie:
        name: lvl1
        httpOnly: true
        sameSite: lax
        maxAge: 60
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: ingressroutebar
  namespace: default
spec:
  entryPoints:
    - web
  routes:
  - match: PathPrefix(`/weighted`)
    kind: Rule
    services:
    - name: wrr1
      namespace: default
      kind: TraefikService
  - match: PathPrefix(`/sticky`)
    kind: Rule
    services:
    - name: sticky
      kind: TraefikService
";

#[tokio::test]
async fn nested_weighted_traefik_services_share_traffic_by_weight() {
    let (a, b, c) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("c"),
    );
    let backends = [
        service("a", &[a.addr()]),
        service("b", &[b.addr()]),
        service("c", &[c.addr()]),
    ]
    .join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("services", WEIGHTED)],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "loads unchanged: {json}");

    for i in 0..400 {
        let response = gateway.get("web", &format!("/weighted/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
        assert!(response.header("set-cookie").is_none(), "no sticky cookie");
    }
    // 3:1 at the outer level, 1:1 inside: exact over whole cycles.
    assert_eq!((a.count(), b.count(), c.count()), (300, 50, 50));
}

#[tokio::test]
async fn a_sticky_weighted_service_keeps_a_client_on_its_first_choice() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let backends = [service("a", &[a.addr()]), service("b", &[b.addr()])].join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("services", WEIGHTED)],
    )
    .await;

    let first = gateway.get("web", "/sticky/1", &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let set_cookie = first
        .header("set-cookie")
        .expect("a sticky cookie")
        .to_owned();
    let value = cookie_value(&set_cookie, "lvl1")
        .expect("cookie lvl1")
        .to_owned();
    assert_eq!(
        set_cookie,
        format!("lvl1={value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax")
    );
    assert_eq!(value.len(), 16, "a truncated SHA-256: {value}");
    let chosen = first.header("x-upstream").expect("upstream").to_owned();

    let cookie = format!("other=1; lvl1={value}");
    for i in 0..10 {
        let response = gateway
            .get("web", &format!("/sticky/{i}"), &[("cookie", &cookie)])
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("x-upstream"),
            Some(chosen.as_str()),
            "request {i}"
        );
        assert!(
            response.header("set-cookie").is_none(),
            "a cookie that was followed is not set again"
        );
    }
    // Without the cookie the balancer alternates, and each answer sticks the client.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..4 {
        let response = gateway.get("web", &format!("/sticky/n{i}"), &[]).await;
        assert!(response.header("set-cookie").is_some());
        seen.insert(response.header("x-upstream").unwrap_or("").to_owned());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // A stale value is replaced by one naming where the request went.
    let stale = gateway
        .get(
            "web",
            "/sticky/stale",
            &[("cookie", "lvl1=0000000000000000")],
        )
        .await;
    let replaced = stale.header("set-cookie").expect("a new cookie");
    assert!(cookie_value(replaced, "lvl1").is_some_and(|v| v != "0000000000000000"));
}

#[tokio::test]
async fn a_sticky_service_keeps_a_client_on_one_endpoint() {
    let (first, second) = Upstream::start_pair("first", "second");
    let backends = service("pair", &[first.addr(), second.addr()]);
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: pair
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: pair
          port: 80
          sticky:
            cookie:
              name: srv
              secure: true
";
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");

    let answer = gateway.get("web", "/", &[]).await;
    let set_cookie = answer
        .header("set-cookie")
        .expect("sticky cookie")
        .to_owned();
    assert!(set_cookie.ends_with("; Path=/; Secure"), "{set_cookie}");
    let value = cookie_value(&set_cookie, "srv").expect("srv").to_owned();
    let endpoint = answer.header("x-upstream").expect("upstream").to_owned();
    for i in 0..10 {
        let response = gateway
            .get(
                "web",
                &format!("/{i}"),
                &[("cookie", &format!("srv={value}"))],
            )
            .await;
        assert_eq!(response.header("x-upstream"), Some(endpoint.as_str()));
        assert!(response.header("set-cookie").is_none());
    }
    let endpoint_count = |u: &Upstream| u.count();
    assert_eq!(endpoint_count(&first) + endpoint_count(&second), 11);
    assert!(
        endpoint_count(&first) == 11 || endpoint_count(&second) == 11,
        "every request on one endpoint"
    );
}

#[tokio::test]
async fn a_traefik_service_the_gateway_cannot_run_answers_503_and_is_named() {
    let app = Upstream::start("app");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: mirrored
spec:
  mirroring:
    name: app
    port: 80
    mirrors:
      - name: app
        port: 80
        percent: 101
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: routes
spec:
  routes:
    - match: PathPrefix(`/mirrored`)
      services: [{name: mirrored, kind: TraefikService}]
    - match: PathPrefix(`/`)
      services: [{name: app, port: 80}]
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("app", &service("app", &[app.addr()])),
            ("routes", manifests),
        ],
    )
    .await;
    assert_eq!(gateway.get("web", "/mirrored/x", &[]).await.status, 503);
    assert_eq!(gateway.get("web", "/other", &[]).await.status, 200);
    let json = gateway.routes_json().await;
    let diagnostic = diagnostics(&json)
        .into_iter()
        .find(|d| field(&d["object"], "kind") == "TraefikService")
        .unwrap_or_else(|| panic!("no diagnostic on the TraefikService: {json}"));
    assert_eq!(field(&diagnostic["object"], "name"), "mirrored");
    assert_eq!(
        field(&diagnostic, "field"),
        "spec.mirroring.mirrors[0].percent"
    );
    assert_eq!(field(&diagnostic, "severity"), "error");
    assert!(
        field(&diagnostic, "source").contains("routes.yaml"),
        "{diagnostic}"
    );
}
