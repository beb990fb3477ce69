//! The Kubernetes provider end to end: the real gateway watches the kmock API-server
//! emulator (tests/kmock/server.py) and routes real requests to real upstreams.
//!
//! The emulator stands in for a cluster: it serves list and watch with resourceVersions
//! like an API server, but validates no schema and runs no controllers (see the top of
//! server.py for its limits).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use traverse_e2e::{diagnostics, eventually, field, Gateway, Kmock, Upstream};

const TRAEFIK: &str = "traefik.io/v1alpha1";

/// Bound on "a change in the cluster reaches the routing": watch latency plus the
/// provider's throttle (100 ms here) plus a reload.
const WITHIN: Duration = Duration::from_secs(5);

async fn start_gateway(kmock: &Kmock, extra: &str) -> Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kmock.kubeconfig(dir.path());
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers:
  kubernetes:
    kubeconfig: \"{}\"
    throttle: 100ms
{extra}",
        kubeconfig.display()
    );
    let gateway = Gateway::start(&config, &[]).await;
    // The kubeconfig must outlive the gateway's start only; the client keeps what it read.
    drop(dir);
    gateway
}

fn service(namespace: &str, name: &str, endpoints: &[SocketAddr]) -> String {
    let port = endpoints.first().map_or(1, SocketAddr::port);
    let addresses: Vec<String> = endpoints
        .iter()
        .map(|e| format!("\"{}\"", e.ip()))
        .collect();
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [{}]}}]
",
        addresses.join(", ")
    )
}

fn ingress_route(namespace: &str, name: &str, host: &str, service: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  routes:
    - match: Host(`{host}`)
      services: [{{name: {service}, port: 80}}]
"
    )
}

async fn answered_by(gateway: &Gateway, host: &str) -> (u16, Option<String>) {
    let response = gateway.get("web", "/", &[("host", host)]).await;
    (response.status, response.server())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_changes_reach_the_routing() {
    let kmock = Kmock::start().await;
    let (one, two) = (Upstream::start("one"), Upstream::start("two"));
    kmock.apply(&service("apps", "shop", &[one.addr()])).await;
    kmock
        .apply(&ingress_route("apps", "shop", "shop.example", "shop"))
        .await;
    let gateway = start_gateway(&kmock, "").await;
    // Ready means the first snapshot, read after every initial list, is applied.
    assert_eq!(
        answered_by(&gateway, "shop.example").await,
        (200, Some("one".into()))
    );

    // A new IngressRoute in another namespace.
    kmock.apply(&service("blog", "blog", &[two.addr()])).await;
    kmock
        .apply(&ingress_route("blog", "blog", "blog.example", "blog"))
        .await;
    eventually("the new route serves", WITHIN, async || {
        (answered_by(&gateway, "blog.example").await == (200, Some("two".into()))).then_some(())
    })
    .await;

    // The EndpointSlice moves to another endpoint: requests follow.
    kmock.apply(&service("apps", "shop", &[two.addr()])).await;
    eventually("the endpoint change applies", WITHIN, async || {
        (answered_by(&gateway, "shop.example").await == (200, Some("two".into()))).then_some(())
    })
    .await;

    // The IngressRoute is updated to another host, then deleted.
    kmock
        .apply(&ingress_route("apps", "shop", "store.example", "shop"))
        .await;
    eventually("the rule change applies", WITHIN, async || {
        (answered_by(&gateway, "store.example").await.0 == 200
            && answered_by(&gateway, "shop.example").await.0 == 404)
            .then_some(())
    })
    .await;
    assert!(
        kmock
            .delete("traefik.io/v1alpha1", "ingressroutes", "apps", "shop")
            .await
    );
    eventually("the deletion applies", WITHIN, async || {
        (answered_by(&gateway, "store.example").await.0 == 404).then_some(())
    })
    .await;
    assert_eq!(answered_by(&gateway, "blog.example").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_service_answers_503_while_others_route() {
    let kmock = Kmock::start().await;
    let one = Upstream::start("one");
    kmock.apply(&service("apps", "shop", &[one.addr()])).await;
    kmock
        .apply(&ingress_route("apps", "shop", "shop.example", "shop"))
        .await;
    kmock
        .apply(&ingress_route("apps", "cart", "cart.example", "cart"))
        .await;
    let gateway = start_gateway(&kmock, "").await;
    assert_eq!(answered_by(&gateway, "shop.example").await.0, 200);
    assert_eq!(answered_by(&gateway, "cart.example").await.0, 503);
    let routes = gateway.routes_json().await;
    assert!(
        diagnostics(&routes)
            .iter()
            .any(|d| field(d, "reason") == "ServiceNotFound"
                && d["object"]["name"] == "cart"
                && field(d, "field") == "spec.routes[0].services[0].name"),
        "{routes:#}"
    );
    let metrics = traverse_e2e::http_get(gateway.addr("admin"), "/metrics", &[])
        .await
        .text();
    assert!(
        metrics.lines().any(|l| l == "traverse_routes_unresolved 1"),
        "{metrics}"
    );

    // The unresolved reference is written to the route's status subresource, with an Event.
    let status = eventually("cart's status written", WITHIN, async || {
        let cart = kmock.get(TRAEFIK, "ingressroutes", "apps", "cart").await;
        let conditions = cart["status"]["conditions"].as_array()?.clone();
        Some(conditions)
    })
    .await;
    let condition = |conditions: &[Value], kind: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {conditions:?}"))
    };
    let resolved = condition(&status, "ResolvedRefs");
    assert_eq!(resolved["status"], "False");
    assert_eq!(resolved["reason"], "ServiceNotFound");
    assert!(
        field(&resolved, "message").contains("spec.routes[0].services[0].name"),
        "{resolved}"
    );
    assert_eq!(condition(&status, "Accepted")["status"], "True");
    let patch = kmock
        .status_patches_of(TRAEFIK, "ingressroutes", "apps", "cart")
        .await;
    assert_eq!(patch.len(), 1, "one write for one change");
    assert!(
        patch[0].content_type.contains("merge-patch"),
        "{}",
        patch[0].content_type
    );
    let shop = condition(
        kmock.get(TRAEFIK, "ingressroutes", "apps", "shop").await["status"]["conditions"]
            .as_array()
            .expect("shop's conditions"),
        "ResolvedRefs",
    );
    assert_eq!(shop["status"], "True");
    let event = kmock
        .wait_for_request("a Warning Event for cart", WITHIN, |r| {
            r.method == "POST"
                && r.path.ends_with("/namespaces/apps/events")
                && r.body.contains("\"cart\"")
        })
        .await
        .json();
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "ServiceNotFound");
    assert_eq!(event["involvedObject"]["kind"], "IngressRoute");

    // The Service appears: the route serves, and its status turns True (one more write).
    kmock.apply(&service("apps", "cart", &[one.addr()])).await;
    eventually("the route resolves", WITHIN, async || {
        (answered_by(&gateway, "cart.example").await.0 == 200).then_some(())
    })
    .await;
    eventually("cart's status resolved", WITHIN, async || {
        let cart = kmock.get(TRAEFIK, "ingressroutes", "apps", "cart").await;
        let conditions = cart["status"]["conditions"].as_array()?.clone();
        (condition(&conditions, "ResolvedRefs")["status"] == "True").then_some(())
    })
    .await;
    // Unrelated changes and the watch's own resyncs write nothing more.
    kmock.apply(&service("apps", "shop", &[one.addr()])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kmock
            .status_patches_of(TRAEFIK, "ingressroutes", "apps", "cart")
            .await
            .len(),
        2
    );
    assert_eq!(
        kmock
            .status_patches_of(TRAEFIK, "ingressroutes", "apps", "shop")
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_object_is_skipped_with_a_diagnostic() {
    let kmock = Kmock::start().await;
    let one = Upstream::start("one");
    kmock.apply(&service("apps", "shop", &[one.addr()])).await;
    kmock
        .apply(&ingress_route("apps", "shop", "shop.example", "shop"))
        .await;
    // `routes` must be a list: the emulator validates no schema, as a cluster without the
    // CRD's schema would not either.
    kmock
        .apply(
            "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: broken, namespace: apps}
spec:
  routes: {match: oops}
",
        )
        .await;
    let gateway = start_gateway(&kmock, "").await;
    assert_eq!(answered_by(&gateway, "shop.example").await.0, 200);
    let routes = gateway.routes_json().await;
    let broken: Vec<_> = diagnostics(&routes)
        .into_iter()
        .filter(|d| d["object"]["name"] == "broken")
        .collect();
    assert_eq!(broken.len(), 1, "{routes:#}");
    assert_eq!(field(&broken[0], "reason"), "InvalidDocument");
    assert_eq!(field(&broken[0], "severity"), "error");
    assert_eq!(field(&broken[0], "field"), "spec.routes");

    // Fixing it applies it; the watch of the others never stopped.
    kmock
        .apply(&ingress_route("apps", "broken", "fixed.example", "shop"))
        .await;
    eventually("the fixed object applies", WITHIN, async || {
        (answered_by(&gateway, "fixed.example").await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_labels_and_ingress_class_filter_what_is_served() {
    let kmock = Kmock::start().await;
    let one = Upstream::start("one");
    for namespace in ["apps", "other"] {
        kmock
            .apply(&service(namespace, "shop", &[one.addr()]))
            .await;
    }
    let labelled = |namespace: &str, name: &str, host: &str, labels: &str, class: &str| {
        format!(
            "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}
spec:
  {class}
  routes:
    - match: Host(`{host}`)
      services: [{{name: shop, port: 80}}]
"
        )
    };
    kmock
        .apply(&labelled("apps", "a", "a.example", "team: shop", ""))
        .await;
    kmock
        .apply(&labelled("apps", "b", "b.example", "team: blog", ""))
        .await;
    kmock
        .apply(&labelled("other", "c", "c.example", "team: shop", ""))
        .await;
    kmock
        .apply(&labelled(
            "apps",
            "d",
            "d.example",
            "team: shop",
            "ingressClassName: nginx",
        ))
        .await;
    let gateway = start_gateway(
        &kmock,
        "    namespaces: [apps]\n    labelSelector: team=shop\n",
    )
    .await;
    let status = |host: &'static str| {
        let gateway = &gateway;
        async move { answered_by(gateway, host).await.0 }
    };
    assert_eq!(status("a.example").await, 200, "in scope");
    assert_eq!(status("b.example").await, 404, "label does not match");
    assert_eq!(status("c.example").await, 404, "namespace not watched");
    assert_eq!(status("d.example").await, 404, "another ingress class");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_status_and_another_replica_takes_over() {
    let kmock = Kmock::start().await;
    let one = Upstream::start("one");
    kmock
        .apply(&ingress_route("apps", "cart", "cart.example", "cart"))
        .await;
    let election = "    leaderElection: {namespace: default, leaseDuration: 2s}\n";
    let mut replicas = vec![
        start_gateway(&kmock, election).await,
        start_gateway(&kmock, election).await,
    ];
    // Both route (and answer 503 for the unresolved route) ...
    for replica in &replicas {
        assert_eq!(answered_by(replica, "cart.example").await.0, 503);
    }
    // ... but one writes.
    kmock
        .wait_for_request("cart's status written", WITHIN, |r| {
            r.is_status_patch() && r.path.ends_with("/ingressroutes/cart/status")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let patches = || async {
        kmock
            .status_patches_of(TRAEFIK, "ingressroutes", "apps", "cart")
            .await
            .len()
    };
    assert_eq!(patches().await, 1, "one replica wrote");
    let holder = |lease: &Value| field(&lease["spec"], "holderIdentity").to_owned();
    let lease = kmock
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "default",
            "traverse-status",
        )
        .await;
    let leader = replicas
        .iter()
        .position(|r| holder(&lease).ends_with(&format!("-{}", r.pid())))
        .unwrap_or_else(|| panic!("the holder is one of the replicas: {lease:#}"));

    // The leader goes away; the other takes the lease over once it expires and writes
    // the next change.
    let survivor_pid = replicas[1 - leader].pid();
    drop(replicas.remove(leader));
    kmock.apply(&service("apps", "cart", &[one.addr()])).await;
    eventually("the survivor writes the change", WITHIN, async || {
        (patches().await == 2).then_some(())
    })
    .await;
    let lease = kmock
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "default",
            "traverse-status",
        )
        .await;
    assert!(
        holder(&lease).ends_with(&format!("-{survivor_pid}")),
        "{lease:#}"
    );
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_subresource_status_writing_stops_and_events_remain() {
    // Traefik's own IngressRoute CRD has no status subresource.
    let kmock = Kmock::start_without_status(&["traefik.io/v1alpha1/ingressroutes"]).await;
    let one = Upstream::start("one");
    kmock
        .apply(&ingress_route("apps", "cart", "cart.example", "cart"))
        .await;
    let gateway = start_gateway(&kmock, "").await;
    assert_eq!(answered_by(&gateway, "cart.example").await.0, 503);
    let refused = kmock
        .wait_for_request("the status write tried", WITHIN, |r| {
            r.is_status_patch() && r.path.ends_with("/ingressroutes/cart/status")
        })
        .await;
    assert_eq!(refused.status, Some(404));
    let events = || async {
        kmock
            .requests()
            .await
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/namespaces/apps/events"))
            .map(|r| r.json())
            .collect::<Vec<Value>>()
    };
    eventually("a Warning Event", WITHIN, async || {
        events()
            .await
            .iter()
            .any(|e| e["reason"] == "ServiceNotFound")
            .then_some(())
    })
    .await;

    // The next change: an Event, and no further status write.
    kmock.apply(&service("apps", "cart", &[one.addr()])).await;
    eventually("the route serves", WITHIN, async || {
        (answered_by(&gateway, "cart.example").await.0 == 200).then_some(())
    })
    .await;
    eventually("a Normal Event", WITHIN, async || {
        events()
            .await
            .iter()
            .any(|e| e["type"] == "Normal" && e["involvedObject"]["name"] == "cart")
            .then_some(())
    })
    .await;
    assert_eq!(
        kmock.status_patches().await.len(),
        1,
        "status writing is off"
    );
    assert!(
        gateway
            .stderr_lines()
            .iter()
            .any(|l| l.contains("no status subresource")),
        "the switch is logged once"
    );
}
