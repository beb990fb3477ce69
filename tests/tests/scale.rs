//! Many routes end to end: 10,000 IngressRoutes in 100 files, one of them malformed; a
//! burst of changes. Counts and outcomes only; timings are measured by `bench/routes.sh`.

use std::time::Duration;

use serde_json::Value;
use traverse_e2e::{config, diagnostics, field, service, Gateway, Upstream};

const OBJECTS: usize = 10_000;
const PER_FILE: usize = 100;

fn ingress_route(i: usize, host: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r{i}}}
spec:
  routes:
    - match: Host(`{host}`) && (PathPrefix(`/api`) || Header(`X-V`, `{i}`))
      services: [{{name: app, port: 80}}]
    - match: Host(`{host}`) && PathRegexp(`^/item/[0-9]+$`)
      services: [{{name: app, port: 80}}]
"
    )
}

fn generation(json: &Value) -> u64 {
    json["generation"].as_u64().expect("generation")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_malformed_object_among_ten_thousand_is_named_and_the_rest_serve() {
    let app = Upstream::start("app");
    let files: Vec<(String, String)> = (0..OBJECTS / PER_FILE)
        .map(|f| {
            let documents: Vec<String> = (f * PER_FILE..(f + 1) * PER_FILE)
                .map(|i| match i {
                    // A rule that does not parse, in the middle of a file.
                    4_321 => ingress_route(i, "broken.test`) &&"),
                    _ => ingress_route(i, &format!("h{i}.test")),
                })
                .collect();
            (format!("routes-{f:03}"), documents.join("---\n"))
        })
        .collect();
    let mut manifests: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let backends = service("app", &[app.addr()]);
    manifests.push(("backends", &backends));
    let gateway = Gateway::start(&config("    debounce: 300ms\n"), &manifests).await;

    let json = gateway.routes_json().await;
    assert_eq!(
        traverse_e2e::routes(&json).len(),
        2 * (OBJECTS - 1),
        "every other object's two routes serve"
    );
    let errors: Vec<Value> = diagnostics(&json)
        .into_iter()
        .filter(|d| field(d, "severity") == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(field(&errors[0], "reason"), "InvalidRule");
    assert_eq!(errors[0]["object"]["kind"], "IngressRoute");
    assert_eq!(errors[0]["object"]["name"], "r4321");
    assert_eq!(field(&errors[0], "field"), "spec.routes[0].match");
    assert!(
        field(&errors[0], "source").contains("routes-043.yaml:"),
        "{:?}",
        errors[0]
    );
    for i in [0, 4_320, 4_322, 9_999] {
        let host = format!("h{i}.test");
        let response = gateway.get("web", "/api", &[("host", &host)]).await;
        assert_eq!(response.status, 200, "{host}");
        let item = gateway.get("web", "/item/7", &[("host", &host)]).await;
        assert_eq!(item.status, 200, "{host}");
        let other = gateway.get("web", "/item/x", &[("host", &host)]).await;
        assert_eq!(other.status, 404, "{host}");
    }

    // A burst of 1,000 changes, one object per file, is applied in a few rebuilds.
    let before = generation(&json);
    for k in 0..1_000 {
        gateway.write_manifest(
            &format!("burst-{k:04}"),
            &ingress_route(OBJECTS + k, &format!("burst{k}.test")),
        );
    }
    let json = gateway
        .wait_for("the burst applied", Duration::from_secs(60), |json| {
            traverse_e2e::routes(json).len() == 2 * (OBJECTS - 1 + 1_000)
        })
        .await;
    let rebuilds = generation(&json) - before;
    assert!(
        (1..=5).contains(&rebuilds),
        "1,000 writes caused {rebuilds} rebuilds"
    );
    let response = gateway
        .get("web", "/api", &[("host", "burst999.test")])
        .await;
    assert_eq!(response.status, 200);
}
