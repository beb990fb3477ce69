use super::*;
use kube::runtime::reflector::store::Writer;
use serde_json::json;

fn route(name: &str, resource_version: Option<&str>, host: &str) -> DynamicObject {
    let mut metadata = json!({"name": name, "namespace": "default", "uid": format!("uid-{name}")});
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = json!(version);
    }
    serde_json::from_value(json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": metadata,
        "spec": {"routes": [{
            "match": format!("Host(`{host}`)"),
            "services": [{"name": "app", "port": 80}],
        }]},
    }))
    .expect("an IngressRoute")
}

fn broken(name: &str, resource_version: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": "default", "uid": "uid-broken",
                     "resourceVersion": resource_version},
        "spec": {"routes": "not a list"},
    }))
    .expect("an IngressRoute")
}

struct Cluster {
    writer: Writer<DynamicObject>,
    stores: Vec<(Kind, Store<DynamicObject>)>,
    objects: Objects,
    settings: Settings,
    rules: Rules,
}

impl Cluster {
    fn new() -> Self {
        let writer = Writer::new(Kind::IngressRoute.resource());
        let stores = vec![(Kind::IngressRoute, writer.as_reader())];
        Cluster {
            writer,
            stores,
            objects: Objects::default(),
            settings: Settings::default(),
            rules: Rules::default(),
        }
    }

    fn apply(&mut self, object: DynamicObject) {
        self.writer
            .apply_watcher_event(&watcher::Event::Apply(object));
    }

    fn delete(&mut self, object: DynamicObject) {
        self.writer
            .apply_watcher_event(&watcher::Event::Delete(object));
    }

    fn snapshot(&mut self) -> (Snapshot, Diagnostics) {
        self.objects
            .snapshot(&self.settings, &self.rules, &self.stores)
    }
}

fn named<'a>(snapshot: &'a Snapshot, name: &str) -> &'a Arc<traverse_api::IngressRoute> {
    snapshot
        .ingress_routes
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no IngressRoute {name}"))
}

#[test]
fn an_unchanged_object_is_the_same_arc_in_the_next_snapshot() {
    let mut cluster = Cluster::new();
    cluster.apply(route("a", Some("1"), "a.test"));
    cluster.apply(route("b", Some("2"), "b.test"));
    let (first, _) = cluster.snapshot();
    // A relist hands the same objects again as new values: still the same Arcs.
    cluster.apply(route("a", Some("1"), "a.test"));
    cluster.apply(route("b", Some("3"), "b2.test"));
    let (second, diagnostics) = cluster.snapshot();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert!(Arc::ptr_eq(named(&first, "a"), named(&second, "a")));
    assert!(!Arc::ptr_eq(named(&first, "b"), named(&second, "b")));
    assert_eq!(
        named(&second, "b").spec.routes[0].r#match,
        "Host(`b2.test`)"
    );
    assert_eq!(second.sources.len(), 2);
}

#[test]
fn a_deleted_object_is_forgotten() {
    let mut cluster = Cluster::new();
    cluster.apply(route("a", Some("1"), "a.test"));
    cluster.apply(route("b", Some("2"), "b.test"));
    let (first, _) = cluster.snapshot();
    cluster.delete(route("b", Some("2"), "b.test"));
    let (second, _) = cluster.snapshot();
    assert_eq!(second.ingress_routes.len(), 1);
    assert!(Arc::ptr_eq(named(&first, "a"), named(&second, "a")));
    assert_eq!(cluster.objects.cache.len(), 1);
    // Created again under the same name: a new object.
    cluster.apply(route("b", Some("4"), "b.test"));
    let (third, _) = cluster.snapshot();
    assert!(!Arc::ptr_eq(named(&first, "b"), named(&third, "b")));
}

#[test]
fn an_object_without_a_resource_version_is_converted_every_time() {
    let mut cluster = Cluster::new();
    cluster.apply(route("a", None, "a.test"));
    let (first, _) = cluster.snapshot();
    let (second, _) = cluster.snapshot();
    assert!(!Arc::ptr_eq(named(&first, "a"), named(&second, "a")));
    assert_eq!(first, second);
}

#[test]
fn an_object_that_does_not_convert_is_reported_in_every_snapshot() {
    let mut cluster = Cluster::new();
    cluster.apply(route("a", Some("1"), "a.test"));
    cluster.apply(broken("bad", "2"));
    let (first, reported) = cluster.snapshot();
    assert_eq!(first.ingress_routes.len(), 1);
    assert_eq!(reported.len(), 1, "{reported:?}");
    let diagnostic = reported.iter().next().expect("a diagnostic");
    assert_eq!(diagnostic.severity, Severity::Error);
    assert_eq!(
        diagnostic.object.as_ref().map(|o| o.name.as_str()),
        Some("bad")
    );
    assert_eq!(diagnostic.field.as_deref(), Some("spec.routes"));
    // Another object changes; the broken one is still reported, unchanged.
    cluster.apply(route("a", Some("3"), "a2.test"));
    let (second, again) = cluster.snapshot();
    assert_eq!(second.ingress_routes.len(), 1);
    assert_eq!(again, reported);
    // Fixed: it converts and is no longer reported.
    cluster.apply(route("bad", Some("4"), "bad.test"));
    let (third, fixed) = cluster.snapshot();
    assert_eq!(third.ingress_routes.len(), 2);
    assert!(fixed.is_empty(), "{fixed:?}");
}
