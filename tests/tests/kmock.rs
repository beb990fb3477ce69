//! The Kubernetes API emulator of the provider tests (tests/kmock/server.py through
//! `traverse_e2e::Kmock`): objects go in and come back over the REST API, across
//! namespaces, watches see them, and every request is recorded, status PATCHes included.
//! Everything here is what the provider's tests rely on.

use std::time::Duration;

use serde_json::{json, Value};
use traverse_e2e::kmock::resource_path;
use traverse_e2e::Kmock;

const TRAEFIK: &str = "traefik.io/v1alpha1";
const WAIT: Duration = Duration::from_secs(5);

/// An IngressRoute `shop` in `apps` to Service `shop`, the Service, its EndpointSlice
/// (both in `default`), and an IngressRoute `blog` in `other`.
const OBJECTS: &str = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: shop
  namespace: apps
  labels:
    team: store
spec:
  routes:
    - match: Host(`shop.example`)
      services:
        - name: shop
          namespace: default
          port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  ports:
    - name: http
      port: 80
      targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: shop-1
  labels:
    kubernetes.io/service-name: shop
addressType: IPv4
ports:
  - name: http
    port: 8080
endpoints:
  - addresses: [\"127.0.0.1\"]
    conditions:
      ready: true
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: blog
  namespace: other
  labels:
    team: press
spec:
  routes:
    - match: Host(`blog.example`)
      services:
        - name: blog
          port: 80
";

fn names(items: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|item| {
            format!(
                "{}/{}",
                item["metadata"]["namespace"].as_str().unwrap_or("?"),
                item["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    names.sort();
    names
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no numeric resourceVersion: {object}"))
}

#[tokio::test]
async fn serves_discovery_and_writes_a_kubeconfig() {
    let kmock = Kmock::start().await;
    let version = kmock.request("GET", "/version", "", b"").await;
    assert_eq!(version.status, 200, "{}", version.text());

    let groups = kmock.request("GET", "/apis", "", b"").await.json();
    let groups: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in [
        "traefik.io",
        "traverse.dev",
        "discovery.k8s.io",
        "events.k8s.io",
        "coordination.k8s.io",
    ] {
        assert!(groups.contains(&group), "{group} in {groups:?}");
    }
    let core = kmock.request("GET", "/api/v1", "", b"").await.json();
    assert_eq!(core["groupVersion"], "v1");
    let resources: Vec<&str> = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in ["services", "services/status", "events"] {
        assert!(resources.contains(&name), "{name} in {resources:?}");
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = kmock.kubeconfig(dir.path());
    let config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("kubeconfig")).expect("YAML");
    assert_eq!(config["current-context"], "kmock");
    assert_eq!(config["clusters"][0]["cluster"]["server"], kmock.url());
    assert_eq!(config["contexts"][0]["context"]["cluster"], "kmock");
    assert_eq!(config["contexts"][0]["context"]["user"], "kmock");
}

#[tokio::test]
async fn applies_lists_across_namespaces_replaces_and_deletes() {
    let kmock = Kmock::start().await;
    let stored = kmock.apply(OBJECTS).await;
    assert_eq!(stored.len(), 4);
    for object in &stored {
        // Set by the server: kube-rs's watcher needs a resourceVersion on every object.
        assert!(resource_version(object) > 0, "{object}");
        assert_eq!(object["metadata"]["generation"], 1, "{object}");
        assert!(object["metadata"]["uid"].is_string(), "{object}");
    }
    assert_eq!(stored[1]["metadata"]["namespace"], "default");

    let routes = kmock.list(TRAEFIK, "ingressroutes", None).await;
    assert_eq!(names(&routes), ["apps/shop", "other/blog"]);
    let in_apps = kmock.list(TRAEFIK, "ingressroutes", Some("apps")).await;
    assert_eq!(names(&in_apps), ["apps/shop"]);
    let slices = kmock
        .list("discovery.k8s.io/v1", "endpointslices", None)
        .await;
    assert_eq!(names(&slices), ["default/shop-1"]);
    assert_eq!(
        slices[0]["endpoints"][0]["addresses"][0], "127.0.0.1",
        "{slices:?}"
    );
    let services = kmock.list("v1", "services", Some("default")).await;
    assert_eq!(names(&services), ["default/shop"]);

    // A list carries the server's counter, not kmock's fixed "...".
    let list = kmock
        .list_json(&resource_path(TRAEFIK, "ingressroutes", None, None))
        .await;
    assert_eq!(list["kind"], "IngressRouteList");
    let list_version: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("numeric list resourceVersion");
    assert!(list_version >= stored.iter().map(resource_version).max().unwrap_or(0));

    // Label selectors filter.
    let selected = kmock
        .list_json(&format!(
            "{}?labelSelector=team%3Dpress",
            resource_path(TRAEFIK, "ingressroutes", None, None)
        ))
        .await;
    assert_eq!(
        names(selected["items"].as_array().expect("items")),
        ["other/blog"]
    );

    // Applying again replaces: a new spec is a new generation and resourceVersion.
    let before = kmock.get(TRAEFIK, "ingressroutes", "apps", "shop").await;
    let changed = OBJECTS.replace("Host(`shop.example`)", "Host(`shop.test`)");
    let after = kmock.apply(&changed).await;
    let shop = &after[0];
    assert_eq!(
        shop["spec"]["routes"][0]["match"], "Host(`shop.test`)",
        "{shop}"
    );
    assert_eq!(shop["metadata"]["generation"], 2, "{shop}");
    assert_eq!(shop["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(resource_version(shop) > resource_version(&before));
    // Unchanged documents stay as they were.
    assert_eq!(after[1], stored[1]);

    assert!(kmock.delete(TRAEFIK, "ingressroutes", "apps", "shop").await);
    assert!(!kmock.delete(TRAEFIK, "ingressroutes", "apps", "shop").await);
    assert_eq!(
        kmock
            .try_get(TRAEFIK, "ingressroutes", "apps", "shop")
            .await,
        None
    );
    let routes = kmock.list(TRAEFIK, "ingressroutes", None).await;
    assert_eq!(names(&routes), ["other/blog"]);
}

#[tokio::test]
async fn a_watch_replays_existing_objects_then_streams_changes() {
    let kmock = Kmock::start().await;
    kmock.apply(OBJECTS).await;
    let collection = resource_path(TRAEFIK, "ingressroutes", None, None);

    let mut watch = kmock.watch(&format!("{collection}?watch=true")).await;
    let mut replayed = Vec::new();
    for _ in 0..2 {
        let event = watch.next_event(WAIT).await.expect("a replayed event");
        assert_eq!(event["type"], "ADDED", "{event}");
        replayed.push(event["object"].clone());
    }
    assert_eq!(names(&replayed), ["apps/shop", "other/blog"]);
    assert_eq!(watch.next_event(Duration::from_millis(200)).await, None);

    let list = kmock.list_json(&collection).await;
    let list_version = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_owned();

    kmock
        .apply(
            "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: cart
  namespace: apps
spec:
  routes: []
",
        )
        .await;
    let added = watch.next_event(WAIT).await.expect("ADDED of cart");
    assert_eq!(added["type"], "ADDED", "{added}");
    assert_eq!(added["object"]["metadata"]["name"], "cart");

    kmock
        .patch_status(
            TRAEFIK,
            "ingressroutes",
            "apps",
            "cart",
            &json!({"conditions": []}),
        )
        .await;
    let modified = watch.next_event(WAIT).await.expect("MODIFIED of cart");
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["object"]["status"], json!({"conditions": []}));

    assert!(kmock.delete(TRAEFIK, "ingressroutes", "apps", "cart").await);
    let deleted = watch.next_event(WAIT).await.expect("DELETED of cart");
    assert_eq!(deleted["type"], "DELETED", "{deleted}");
    assert_eq!(deleted["object"]["metadata"]["name"], "cart");

    // A watch from the list's resourceVersion gets exactly what happened since, in order
    // (what kube-rs's watcher asks for after its initial list).
    let mut resumed = kmock
        .watch(&format!(
            "{collection}?watch=true&resourceVersion={list_version}&allowWatchBookmarks=true"
        ))
        .await;
    let mut since = Vec::new();
    while let Some(event) = resumed.next_event(Duration::from_millis(300)).await {
        since.push(format!(
            "{} {}",
            event["type"].as_str().unwrap_or("?"),
            event["object"]["metadata"]["name"].as_str().unwrap_or("?")
        ));
    }
    assert_eq!(since, ["ADDED cart", "MODIFIED cart", "DELETED cart"]);

    // A namespaced watch with a label selector sees only its own.
    let mut selected = kmock
        .watch(&format!(
            "{}?watch=true&labelSelector=team%3Dpress",
            resource_path(TRAEFIK, "ingressroutes", Some("other"), None)
        ))
        .await;
    let event = selected.next_event(WAIT).await.expect("ADDED of blog");
    assert_eq!(event["object"]["metadata"]["name"], "blog");
    assert_eq!(selected.next_event(Duration::from_millis(200)).await, None);

    let log = kmock.requests().await;
    assert!(log.iter().filter(|r| r.is_watch()).count() >= 3, "{log:?}");
}

#[tokio::test]
async fn status_patches_are_recorded_and_change_only_the_status() {
    let kmock = Kmock::start().await;
    kmock.apply(OBJECTS).await;
    let before = kmock.get(TRAEFIK, "ingressroutes", "apps", "shop").await;
    let path = resource_path(TRAEFIK, "ingressroutes", Some("apps"), Some("shop")) + "/status";
    assert_eq!(
        path,
        "/apis/traefik.io/v1alpha1/namespaces/apps/ingressroutes/shop/status"
    );

    // A merge patch, as a status writer sends it; a spec in it is ignored.
    let accepted = json!({"status": {"conditions": [
        {"type": "Accepted", "status": "True", "reason": "Accepted"}
    ]}, "spec": {"routes": []}});
    let response = kmock
        .request(
            "PATCH",
            &path,
            "application/merge-patch+json",
            accepted.to_string().as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let patched = response.json();
    assert_eq!(patched["status"], accepted["status"]);
    assert_eq!(patched["spec"], before["spec"]);
    assert_eq!(patched["metadata"]["generation"], 1);
    assert!(resource_version(&patched) > resource_version(&before));

    // Server-side apply (kube-rs's Patch::Apply sends JSON), merged like a merge patch.
    let applied = json!({
        "apiVersion": TRAEFIK, "kind": "IngressRoute",
        "metadata": {"name": "shop"},
        "status": {"conditions": [
            {"type": "Accepted", "status": "False", "reason": "Invalid"}
        ]}
    });
    let response = kmock
        .request(
            "PATCH",
            &format!("{path}?fieldManager=traverse&force=true"),
            "application/apply-patch+yaml",
            applied.to_string().as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["status"], applied["status"]);

    // The same status again changes nothing: no new resourceVersion, no watch event.
    let again = kmock
        .request(
            "PATCH",
            &format!("{path}?fieldManager=traverse&force=true"),
            "application/apply-patch+yaml",
            applied.to_string().as_bytes(),
        )
        .await
        .json();
    assert_eq!(resource_version(&again), resource_version(&response.json()));

    // A status PATCH of an object that does not exist.
    let missing = resource_path(TRAEFIK, "ingressroutes", Some("apps"), Some("nope")) + "/status";
    let response = kmock
        .request("PATCH", &missing, "application/merge-patch+json", b"{}")
        .await;
    assert_eq!(response.status, 404, "{}", response.text());

    let patches = kmock
        .status_patches_of(TRAEFIK, "ingressroutes", "apps", "shop")
        .await;
    assert_eq!(patches.len(), 3, "{patches:?}");
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(patches[0].json(), accepted);
    assert_eq!(patches[0].status, Some(200));
    assert_eq!(patches[1].content_type, "application/apply-patch+yaml");
    assert_eq!(
        patches[1].query_param("fieldManager").as_deref(),
        Some("traverse")
    );
    assert_eq!(patches[1].json(), applied);
    let all = kmock.status_patches().await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].path, missing);
    assert_eq!(all[3].status, Some(404));

    let found = kmock
        .wait_for_request("an apply of the status of shop", WAIT, |r| {
            r.is_status_patch() && r.content_type == "application/apply-patch+yaml"
        })
        .await;
    assert_eq!(found, patches[1]);

    // A PATCH of the main resource changes the spec, never the status.
    let main = resource_path(TRAEFIK, "ingressroutes", Some("apps"), Some("shop"));
    let response = kmock
        .request(
            "PATCH",
            &main,
            "application/merge-patch+json",
            br#"{"spec": {"routes": []}, "status": {"conditions": []}}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let object = response.json();
    assert_eq!(object["spec"]["routes"], json!([]));
    assert_eq!(object["status"], applied["status"]);
    assert_eq!(object["metadata"]["generation"], 2);
}

#[tokio::test]
async fn writes_with_a_stale_resource_version_conflict() {
    let kmock = Kmock::start().await;
    let stored = kmock
        .apply(
            "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: traverse
  namespace: kube-system
spec:
  holderIdentity: a
",
        )
        .await;
    let mut lease = stored[0].clone();
    let path = resource_path(
        "coordination.k8s.io/v1",
        "leases",
        Some("kube-system"),
        Some("traverse"),
    );
    lease["spec"]["holderIdentity"] = json!("b");
    let taken = kmock
        .request(
            "PUT",
            &path,
            "application/json",
            lease.to_string().as_bytes(),
        )
        .await;
    assert_eq!(taken.status, 200, "{}", taken.text());
    // The same write again carries the old resourceVersion now.
    lease["spec"]["holderIdentity"] = json!("c");
    let stale = kmock
        .request(
            "PUT",
            &path,
            "application/json",
            lease.to_string().as_bytes(),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(stale.json()["reason"], "Conflict");
    let now = kmock
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "kube-system",
            "traverse",
        )
        .await;
    assert_eq!(now["spec"]["holderIdentity"], "b");
}
