//! Live reload end to end: edits to the watched manifests apply without failing a single
//! request, and broken edits are reported while the last good routes keep serving.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use traverse_e2e::{
    config, diagnostics, eventually, field, route, send, service, ClientError, Gateway, Upstream,
};

/// What one background request ended with: status and answering upstream, or the failure.
type Outcome = Result<(u16, Option<String>), ClientError>;

/// Requests sent in a loop in the background until stopped, each outcome recorded.
struct Traffic {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// `loops` concurrent loops, each sending `GET path` one after the other.
    fn start(addr: SocketAddr, path: &'static str, loops: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..loops)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let outcomes = Arc::clone(&outcomes);
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = send(addr, "GET", path, &[], b"", Duration::from_secs(5))
                            .await
                            .map(|r| (r.status, r.server()));
                        outcomes.lock().expect("outcomes").push(outcome);
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            outcomes,
            tasks,
        }
    }

    /// Stops the loops and returns every outcome.
    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("traffic loop stops")
                .expect("traffic loop did not panic");
        }
        let outcomes = self.outcomes.lock().expect("outcomes");
        outcomes.clone()
    }

    fn sent(&self) -> usize {
        self.outcomes.lock().expect("outcomes").len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_upstreams_live_fails_no_request() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let backends = [service("a", &[a.addr()]), service("b", &[b.addr()])].join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("route", &route("switch", "PathPrefix(`/`)", "a")),
        ],
    )
    .await;
    let web = gateway.addr("web");
    let traffic = Traffic::start(web, "/traffic", 2);

    for (step, target) in ["b", "a", "b", "a", "b", "a"].into_iter().enumerate() {
        let before = traffic.sent();
        gateway.write_manifest("route", &route("switch", "PathPrefix(`/`)", target));
        eventually(
            &format!("step {step}: responses from {target}"),
            Duration::from_secs(10),
            async || {
                let response = send(web, "GET", "/probe", &[], b"", Duration::from_secs(5))
                    .await
                    .ok()?;
                (response.server().as_deref() == Some(target)).then_some(())
            },
        )
        .await;
        // Let some traffic flow on the new routes before the next edit.
        eventually(
            &format!("step {step}: background traffic continues"),
            Duration::from_secs(10),
            async || (traffic.sent() >= before + 20).then_some(()),
        )
        .await;
    }

    let outcomes = traffic.finish().await;
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok((200, _))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during reloads: {:?}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(10)]
    );
    assert!(
        a.count_path("/traffic") > 0 && b.count_path("/traffic") > 0,
        "both upstreams got background traffic: a={}, b={}",
        a.count_path("/traffic"),
        b.count_path("/traffic")
    );
    assert!(
        outcomes.len() >= 120,
        "only {} requests were sent",
        outcomes.len()
    );
}

#[tokio::test]
async fn added_and_removed_files_take_effect() {
    let app = Upstream::start("app");
    let gateway =
        Gateway::start(&config(""), &[("backends", &service("app", &[app.addr()]))]).await;
    let web = gateway.addr("web");
    assert_eq!(gateway.get("web", "/extra", &[]).await.status, 404);

    gateway.write_manifest("extra", &route("extra", "PathPrefix(`/extra`)", "app"));
    eventually(
        "the new file's route serves",
        Duration::from_secs(10),
        async || {
            let response = send(web, "GET", "/extra", &[], b"", Duration::from_secs(5)).await;
            matches!(response, Ok(r) if r.status == 200).then_some(())
        },
    )
    .await;

    gateway.remove_manifest("extra");
    eventually(
        "the removed file's route is gone",
        Duration::from_secs(10),
        async || {
            let response = send(web, "GET", "/extra", &[], b"", Duration::from_secs(5)).await;
            matches!(response, Ok(r) if r.status == 404).then_some(())
        },
    )
    .await;
    assert!(traverse_e2e::routes(&gateway.routes_json().await).is_empty());
}

/// The error diagnostics of an `/api/routes` answer.
fn errors(json: &Value) -> Vec<Value> {
    diagnostics(json)
        .into_iter()
        .filter(|d| field(d, "severity") == "error")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_edits_are_reported_and_the_last_good_routes_keep_serving() {
    let app = Upstream::start("app");
    let route_v1 = route("app", "PathPrefix(`/v1`)", "app");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route_v1),
        ],
    )
    .await;
    let web = gateway.addr("web");
    assert_eq!(gateway.get("web", "/v1", &[]).await.status, 200);
    let traffic = Traffic::start(web, "/v1/traffic", 1);

    let malformed = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: [unclosed
spec: {}
";
    let bad_rule = route("app", "PathPrefix(`/v2`) && ", "app");
    let bad_port = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: app
spec:
  routes:
    - match: PathPrefix(`/v2`)
      services:
        - name: app
          port: 70000
";
    let cases: [(&str, &str, &str, Option<&str>, &str); 3] = [
        ("malformed YAML", malformed, "InvalidDocument", None, "YAML"),
        (
            "rule syntax error",
            &bad_rule,
            "InvalidRule",
            Some("spec.routes[0].match"),
            "column",
        ),
        (
            "invalid port",
            bad_port,
            "InvalidDocument",
            Some("spec.routes[0].services[0].port"),
            "70000",
        ),
    ];
    for (what, text, reason, field_name, mention) in cases {
        gateway.write_manifest("route", text);
        let json = gateway
            .wait_for(
                &format!("{what}: an error diagnostic naming route.yaml"),
                Duration::from_secs(10),
                |json| {
                    errors(json).iter().any(|d| {
                        field(d, "reason") == reason
                            && field(d, "source").contains("route.yaml:")
                            && field_name.is_none_or(|f| field(d, "field") == f)
                            && field(d, "message").contains(mention)
                    })
                },
            )
            .await;
        // The rejected document keeps its last good contents: the old route, nothing new.
        let rules: Vec<String> = traverse_e2e::routes(&json)
            .iter()
            .map(|r| field(r, "rule").to_owned())
            .collect();
        assert_eq!(rules, ["PathPrefix(`/v1`)"], "{what}");
        assert_eq!(gateway.get("web", "/v1", &[]).await.status, 200, "{what}");
        assert_eq!(gateway.get("web", "/v2", &[]).await.status, 404, "{what}");
        assert_eq!(gateway.readyz().await, Ok(200), "{what}");
    }

    let outcomes = traffic.finish().await;
    let failed = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok((200, _))))
        .count();
    assert_eq!(
        failed,
        0,
        "requests failed while broken files were rejected: {:?}",
        outcomes
            .iter()
            .filter(|o| !matches!(o, Ok((200, _))))
            .take(10)
            .collect::<Vec<_>>()
    );
    assert!(!outcomes.is_empty());

    // Fixing the file applies it and clears the errors.
    gateway.write_manifest("route", &route("app", "PathPrefix(`/v2`)", "app"));
    gateway
        .wait_for("the fixed file applied", Duration::from_secs(10), |json| {
            errors(json).is_empty()
                && traverse_e2e::routes(json)
                    .iter()
                    .map(|r| field(r, "rule").to_owned())
                    .eq(["PathPrefix(`/v2`)".to_owned()])
        })
        .await;
    assert_eq!(gateway.get("web", "/v2", &[]).await.status, 200);
    assert_eq!(gateway.get("web", "/v1", &[]).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_document_is_rejected_alone_and_the_rest_of_its_file_applies() {
    let app = Upstream::start("app");
    let file = |a: &str, b: &str| format!("{}---\n{}", route("a", a, "app"), route("b", b, "app"));
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("routes", &file("PathPrefix(`/a1`)", "PathPrefix(`/b1`)")),
        ],
    )
    .await;
    assert_eq!(gateway.get("web", "/a1", &[]).await.status, 200);

    // `b` breaks in the same write that changes `a`: `a`'s change applies, `b` keeps
    // its last good route.
    gateway.write_manifest("routes", &file("PathPrefix(`/a2`)", "PathPrefix(`/b2`) &&"));
    let json = gateway
        .wait_for("a applied, b rejected", Duration::from_secs(10), |json| {
            errors(json).iter().any(|d| {
                field(d, "reason") == "InvalidRule" && field(d, "source").contains("routes.yaml:")
            }) && traverse_e2e::routes(json)
                .iter()
                .any(|r| field(r, "rule") == "PathPrefix(`/a2`)")
        })
        .await;
    let mut rules: Vec<String> = traverse_e2e::routes(&json)
        .iter()
        .map(|r| field(r, "rule").to_owned())
        .collect();
    rules.sort();
    assert_eq!(rules, ["PathPrefix(`/a2`)", "PathPrefix(`/b1`)"]);
    assert_eq!(gateway.get("web", "/a2", &[]).await.status, 200);
    assert_eq!(gateway.get("web", "/b1", &[]).await.status, 200);
    assert_eq!(gateway.get("web", "/a1", &[]).await.status, 404);
    assert_eq!(gateway.get("web", "/b2", &[]).await.status, 404);
}

#[tokio::test]
async fn a_burst_of_writes_is_applied_once_after_the_debounce() {
    let app = Upstream::start("app");
    let config = "entryPoints:
  web:
    address: \"{web}\"
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
    debounce: 1s
";
    let gateway = Gateway::start(
        config,
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/v0`)", "app")),
        ],
    )
    .await;
    let before = gateway.routes_json().await["generation"]
        .as_u64()
        .expect("generation");
    for version in 1..=5 {
        gateway.write_manifest(
            "route",
            &route("app", &format!("PathPrefix(`/v{version}`)"), "app"),
        );
    }
    let json = gateway
        .wait_for("the last write applied", Duration::from_secs(10), |json| {
            traverse_e2e::routes(json)
                .iter()
                .any(|r| field(r, "rule") == "PathPrefix(`/v5`)")
        })
        .await;
    assert_eq!(
        json["generation"].as_u64(),
        Some(before + 1),
        "five quick writes make one new configuration"
    );
    assert_eq!(gateway.get("web", "/v5", &[]).await.status, 200);
    assert_eq!(gateway.get("web", "/v3", &[]).await.status, 404);
}

#[tokio::test]
async fn configmap_style_symlink_swap_is_applied() {
    use std::os::unix::fs::symlink;
    let app = Upstream::start("app");
    let gateway = Gateway::start(&config(""), &[]).await;
    let dir = gateway.manifests_dir();

    // The layout of a mounted ConfigMap: files are links through `..data` to a
    // timestamped directory, and an update swaps `..data` atomically.
    let version = |name: &str, rule: &str| {
        let data = dir.join(name);
        std::fs::create_dir(&data).expect("creating a ConfigMap version");
        std::fs::write(data.join("backends.yaml"), service("app", &[app.addr()]))
            .expect("writing backends");
        std::fs::write(data.join("route.yaml"), route("app", rule, "app")).expect("writing route");
    };
    version("..2024_01_01", "PathPrefix(`/first`)");
    symlink("..2024_01_01", dir.join("..data")).expect("linking ..data");
    for file in ["backends.yaml", "route.yaml"] {
        symlink(format!("..data/{file}"), dir.join(file)).expect("linking a file");
    }
    let web = gateway.addr("web");
    eventually(
        "the mounted files are read",
        Duration::from_secs(10),
        async || {
            let response = send(web, "GET", "/first", &[], b"", Duration::from_secs(5)).await;
            matches!(response, Ok(r) if r.status == 200).then_some(())
        },
    )
    .await;

    version("..2024_01_02", "PathPrefix(`/second`)");
    symlink("..2024_01_02", dir.join("..data_tmp")).expect("linking ..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swapping ..data");
    std::fs::remove_dir_all(dir.join("..2024_01_01")).expect("removing the old version");
    eventually(
        "the swapped version is applied",
        Duration::from_secs(10),
        async || {
            let response = send(web, "GET", "/second", &[], b"", Duration::from_secs(5)).await;
            matches!(response, Ok(r) if r.status == 200).then_some(())
        },
    )
    .await;
    assert_eq!(gateway.get("web", "/first", &[]).await.status, 404);
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");
}
