//! The admin listener: probes and the read-only routes view.

use traverse_e2e::{config, diagnostics, field, routes, service, Gateway, Upstream};

#[tokio::test]
async fn probes_and_routes_view() {
    let app = Upstream::start("app");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: strip
spec:
  stripPrefix:
    prefixes: [/api]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: shop
  namespace: default
spec:
  entryPoints: [web]
  routes:
    - match: Host(`shop.example.com`) && PathPrefix(`/api`)
      services: [{name: app, port: 80, passHostHeader: false}]
      middlewares: [{name: strip}]
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("routes", manifests),
        ],
    )
    .await;
    let admin = gateway.addr("admin");

    let livez = traverse_e2e::http_get(admin, "/livez", &[]).await;
    assert_eq!((livez.status, livez.text().trim()), (200, "ok"));
    let readyz = traverse_e2e::http_get(admin, "/readyz", &[]).await;
    assert_eq!((readyz.status, readyz.text().trim()), (200, "ready"));
    assert_eq!(
        traverse_e2e::http_get(admin, "/nope", &[]).await.status,
        404
    );

    let response = traverse_e2e::http_get(admin, "/api/routes", &[]).await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    assert!(
        json["generation"].as_u64().is_some_and(|g| g >= 1),
        "{json}"
    );
    assert!(diagnostics(&json).is_empty(), "{json}");
    let all = routes(&json);
    assert_eq!(all.len(), 1, "{json}");
    let shop = &all[0];
    assert_eq!(field(shop, "name"), "default/shop#0");
    assert_eq!(
        field(shop, "rule"),
        "Host(`shop.example.com`) && PathPrefix(`/api`)"
    );
    assert_eq!(shop["entryPoints"], serde_json::json!(["web"]));
    assert_eq!(shop["middlewares"], serde_json::json!(["default/strip"]));
    let backend = &shop["services"][0];
    assert_eq!(field(backend, "name"), "default/app:http");
    assert_eq!(field(backend, "scheme"), "http");
    assert_eq!(backend["passHostHeader"], false);
    assert_eq!(
        backend["servers"],
        serde_json::json!([app.addr().to_string()])
    );
}

#[tokio::test]
async fn empty_manifest_directory_is_ready_and_answers_404() {
    let gateway = Gateway::start(&config(""), &[]).await;
    assert_eq!(gateway.readyz().await, Ok(200));
    assert!(routes(&gateway.routes_json().await).is_empty());
    assert_eq!(gateway.get("web", "/", &[]).await.status, 404);
}

#[tokio::test]
async fn without_a_provider_every_request_is_404() {
    let config = "entryPoints:
  web:
    address: \"{web}\"
admin:
  address: \"{admin}\"
";
    let gateway = Gateway::start(config, &[]).await;
    assert_eq!(gateway.readyz().await, Ok(200));
    assert_eq!(gateway.get("web", "/anything", &[]).await.status, 404);
}

#[tokio::test]
async fn fields_not_acted_on_are_reported() {
    let app = Upstream::start("app");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: partial
spec:
  parentRefs:
    - name: shop
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: app
          port: 80
          strategy: leasttime
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", manifests),
        ],
    )
    .await;
    // Served, but not silently: each ignored field is a warning naming it.
    assert_eq!(gateway.get("web", "/", &[]).await.status, 200);
    let json = gateway.routes_json().await;
    let unsupported: Vec<String> = diagnostics(&json)
        .iter()
        .filter(|d| field(d, "reason") == "Unsupported" && field(d, "severity") == "warning")
        .map(|d| field(d, "field").to_owned())
        .collect();
    for expected in ["spec.parentRefs", "spec.routes[0].services[0].strategy"] {
        assert!(
            unsupported.iter().any(|f| f.starts_with(expected)),
            "no Unsupported warning for {expected}: {json}"
        );
    }
}

#[tokio::test]
async fn unknown_kinds_and_duplicates_do_not_block_the_rest() {
    let first = Upstream::start("first");
    let second = Upstream::start("second");
    let backends = [
        service("first", &[first.addr()]),
        service("second", &[second.addr()]),
    ]
    .join("---\n");
    // An unknown kind is skipped without rejecting the file's other documents.
    let mixed = format!(
        "apiVersion: example.com/v1
kind: Gadget
metadata:
  name: thing
---
{}",
        traverse_e2e::route("dup", "PathPrefix(`/dup`)", "first")
    );
    // The same IngressRoute again, in a file read later: the first definition is used.
    let again = traverse_e2e::route("dup", "PathPrefix(`/dup`)", "second");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("a-mixed", &mixed),
            ("b-again", &again),
        ],
    )
    .await;
    let response = gateway.get("web", "/dup", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("first"));

    let json = gateway.routes_json().await;
    let reasons: Vec<(String, String)> = diagnostics(&json)
        .iter()
        .map(|d| (field(d, "reason").to_owned(), field(d, "source").to_owned()))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|(r, s)| r == "UnknownKind" && s.contains("a-mixed.yaml")),
        "{json}"
    );
    assert!(reasons.iter().any(|(r, _)| r == "Duplicate"), "{json}");
    assert_eq!(routes(&json).len(), 1, "{json}");
}

#[tokio::test]
async fn duplicate_diagnostic_names_the_file_of_the_ignored_copy() {
    let app = Upstream::start("app");
    let first = traverse_e2e::route("dup", "PathPrefix(`/first`)", "app");
    let again = traverse_e2e::route("dup", "PathPrefix(`/again`)", "app");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("a-first", &first),
            ("b-again", &again),
        ],
    )
    .await;
    assert_eq!(gateway.get("web", "/first", &[]).await.status, 200);
    assert_eq!(gateway.get("web", "/again", &[]).await.status, 404);
    let json = gateway.routes_json().await;
    let duplicate = diagnostics(&json)
        .into_iter()
        .find(|d| field(d, "reason") == "Duplicate")
        .unwrap_or_else(|| panic!("no Duplicate diagnostic: {json}"));
    assert!(
        field(&duplicate, "source").contains("b-again.yaml"),
        "the diagnostic must lead to the ignored copy: {duplicate}"
    );
}
