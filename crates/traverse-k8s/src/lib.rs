//! The Kubernetes provider.
//!
//! One kube-rs watcher per kind (and per namespace, when namespaces are listed) keeps a
//! reflector store of raw objects. After a change and a quiet `throttle`, the stores
//! become a [`Snapshot`], the same one the file provider builds, and go through the same
//! `translate`. Objects are read as raw JSON and converted one by one, so a malformed
//! object becomes a diagnostic naming its field instead of breaking its kind's watch.

pub mod leader;
mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::watch;
use traverse_config::KubernetesProvider as Settings;
use traverse_provider::parse::typed;
use traverse_provider::{Diagnostic, Diagnostics, ObjectRef, Reason, Rules, Severity, Snapshot};

/// Source named in diagnostics of objects read from the cluster.
const SOURCE: &str = "kubernetes";

/// A kind the provider watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    IngressRoute,
    Middleware,
    TraefikService,
    Uplink,
    Service,
    EndpointSlice,
    TLSStore,
    TLSOption,
    ServersTransport,
    Secret,
    ConfigMap,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::IngressRoute,
        Kind::Middleware,
        Kind::TraefikService,
        Kind::Uplink,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::TLSStore,
        Kind::TLSOption,
        Kind::ServersTransport,
        Kind::Secret,
        Kind::ConfigMap,
    ];

    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Kind::IngressRoute => ("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes"),
            Kind::Middleware => ("traefik.io", "v1alpha1", "Middleware", "middlewares"),
            Kind::TraefikService => (
                "traefik.io",
                "v1alpha1",
                "TraefikService",
                "traefikservices",
            ),
            Kind::Uplink => ("traverse.dev", "v1alpha1", "Uplink", "uplinks"),
            Kind::Service => ("", "v1", "Service", "services"),
            Kind::EndpointSlice => ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            Kind::TLSStore => ("traefik.io", "v1alpha1", "TLSStore", "tlsstores"),
            Kind::TLSOption => ("traefik.io", "v1alpha1", "TLSOption", "tlsoptions"),
            Kind::ServersTransport => (
                "traefik.io",
                "v1alpha1",
                "ServersTransport",
                "serverstransports",
            ),
            Kind::Secret => ("", "v1", "Secret", "secrets"),
            Kind::ConfigMap => ("", "v1", "ConfigMap", "configmaps"),
        };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// The label selector narrows the routing kinds; Services, EndpointSlices, Secrets,
    /// ConfigMaps and the TLS kinds are found by reference (or by the name `default`) and never filtered.
    fn selected(self) -> bool {
        matches!(
            self,
            Kind::IngressRoute | Kind::Middleware | Kind::TraefikService | Kind::Uplink
        )
    }
}

pub use status::{changes, StatusChange, StatusWriter};

/// Watches a cluster and hands each new snapshot to the gateway.
pub struct KubernetesProvider {
    client: Client,
    settings: Settings,
    /// Compiled rules handed on with every snapshot, so a rebuild parses only new rules.
    rules: Rules,
}

impl KubernetesProvider {
    /// Connects with the configured kubeconfig, or kube's inference (`KUBECONFIG` or
    /// `~/.kube/config` when present, else the in-cluster service account).
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let config = match &settings.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .with_context(|| format!("using the kubeconfig {}", path.display()))?
            }
            None => Config::infer()
                .await
                .context("finding the cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?,
        };
        let client = Client::try_from(config).context("creating the Kubernetes client")?;
        Ok(KubernetesProvider {
            client,
            settings: settings.clone(),
            rules: Rules::default(),
        })
    }

    /// A client for the status writer, sharing this provider's connection settings.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Watches until `stop` completes. `apply` gets the first snapshot once every watch
    /// has listed its objects, then one per change (after the throttle), never the same
    /// snapshot twice in a row.
    pub async fn watch(
        self,
        mut apply: impl FnMut(Snapshot, Diagnostics),
        stop: impl Future<Output = ()>,
    ) {
        let (changed, mut changes) = watch::channel(0u64);
        let changed = Arc::new(changed);
        let mut stores: Vec<(Kind, Store<DynamicObject>)> = Vec::new();
        let mut ready = Vec::new();
        let mut tasks = Vec::new();
        let namespaces: Vec<Option<&str>> = if self.settings.namespaces.is_empty() {
            vec![None]
        } else {
            self.settings
                .namespaces
                .iter()
                .map(|n| Some(n.as_str()))
                .collect()
        };
        for kind in Kind::ALL {
            for namespace in &namespaces {
                let resource = kind.resource();
                let api: Api<DynamicObject> = match namespace {
                    Some(namespace) => {
                        Api::namespaced_with(self.client.clone(), namespace, &resource)
                    }
                    None => Api::all_with(self.client.clone(), &resource),
                };
                let mut config = watcher::Config::default();
                if let (true, Some(selector)) = (kind.selected(), &self.settings.label_selector) {
                    config = config.labels(selector);
                }
                let writer = reflector::store::Writer::new(resource);
                let reader = writer.as_reader();
                stores.push((kind, reader.clone()));
                ready.push(reader);
                let changed = Arc::clone(&changed);
                let what = format!("{kind:?} in {}", namespace.unwrap_or("every namespace"));
                tasks.push(tokio::spawn(async move {
                    let mut failing = false;
                    let events = reflector::reflector(writer, watcher(api, config)).default_backoff();
                    futures::pin_mut!(events);
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(_) => {
                                if std::mem::take(&mut failing) {
                                    tracing::info!(watch = %what, "watch recovered");
                                }
                                changed.send_modify(|n| *n += 1);
                            }
                            Err(error) => {
                                if !std::mem::replace(&mut failing, true) {
                                    tracing::warn!(watch = %what, %error, "watch failing; retrying with backoff");
                                }
                            }
                        }
                    }
                }));
            }
        }

        tokio::pin!(stop);
        // The first snapshot waits for every initial list, so a half-read cluster never serves.
        let all_ready = async {
            for store in &ready {
                let _ = store.wait_until_ready().await;
            }
        };
        tokio::select! {
            () = all_ready => {}
            () = &mut stop => {
                tasks.iter().for_each(|t| t.abort());
                return;
            }
        }
        tracing::info!(
            kinds = Kind::ALL.len(),
            namespaces = namespaces.len(),
            "kubernetes: initial lists read"
        );
        let mut last: Option<Snapshot> = None;
        let mut objects = Objects::default();
        loop {
            let (snapshot, diagnostics) = objects.snapshot(&self.settings, &self.rules, &stores);
            if last.as_ref() != Some(&snapshot) {
                last = Some(snapshot.clone());
                apply(snapshot, diagnostics);
            }
            changes.borrow_and_update();
            tokio::select! {
                result = changes.changed() => {
                    if result.is_err() {
                        break;
                    }
                }
                () = &mut stop => break,
            }
            // Let a burst of changes settle.
            tokio::select! {
                () = tokio::time::sleep(self.settings.throttle) => {}
                () = &mut stop => break,
            }
        }
        tasks.iter().for_each(|t| t.abort());
    }
}

/// Key of an object in the cache: its kind, namespace and name.
type Key = (Kind, String, String);

/// An object converted to its typed kind.
enum Converted {
    IngressRoute(Arc<traverse_api::IngressRoute>),
    Middleware(Arc<traverse_api::Middleware>),
    TraefikService(Arc<traverse_api::TraefikService>),
    Uplink(Arc<traverse_api::Uplink>),
    Service(Arc<traverse_api::Service>),
    EndpointSlice(Arc<traverse_api::EndpointSlice>),
    TLSStore(Arc<traverse_api::TLSStore>),
    TLSOption(Arc<traverse_api::TLSOption>),
    ServersTransport(Arc<traverse_api::ServersTransport>),
    Secret(Arc<traverse_api::Secret>),
    ConfigMap(Arc<traverse_api::ConfigMap>),
}

/// One object as last converted, with what converting it reported.
struct Entry {
    /// `uid` and `resourceVersion` of the object converted; `None` when it had no
    /// resourceVersion, so it is converted again every time.
    version: Option<(Option<String>, String)>,
    /// `None` when the object could not be converted.
    converted: Option<Converted>,
    diagnostics: Diagnostics,
}

/// Objects converted by earlier snapshots. An object whose uid and resourceVersion are
/// those of last time is the same `Arc` again, so the translation's memo reuses its
/// routes instead of translating all of them after each change.
#[derive(Default)]
struct Objects {
    cache: BTreeMap<Key, Entry>,
}

impl Objects {
    /// The snapshot of what `stores` hold; only objects that are new or changed since the
    /// last call are converted, and those gone are forgotten.
    fn snapshot(
        &mut self,
        settings: &Settings,
        rules: &Rules,
        stores: &[(Kind, Store<DynamicObject>)],
    ) -> (Snapshot, Diagnostics) {
        let mut objects: BTreeMap<Key, Arc<DynamicObject>> = BTreeMap::new();
        for (kind, store) in stores {
            for object in store.state() {
                let key = (
                    *kind,
                    object
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                    object.metadata.name.clone().unwrap_or_default(),
                );
                objects.insert(key, object);
            }
        }
        let mut snapshot = Snapshot {
            rules: rules.clone(),
            allow_cross_namespace: settings.allow_cross_namespace,
            native_lb_by_default: settings.native_lb_by_default,
            ..Snapshot::default()
        };
        let mut diagnostics = Diagnostics::default();
        let mut cache = BTreeMap::new();
        for (key, object) in objects {
            let (kind, namespace, name) = &key;
            let object_ref = ObjectRef {
                kind: format!("{kind:?}"),
                namespace: namespace.clone(),
                name: name.clone(),
            };
            let version = object
                .metadata
                .resource_version
                .clone()
                .map(|v| (object.metadata.uid.clone(), v));
            let entry = match self.cache.remove(&key) {
                Some(entry) if entry.version.is_some() && entry.version == version => entry,
                _ => {
                    let mut diagnostics = Diagnostics::default();
                    let converted = convert(*kind, &object, &object_ref, &mut diagnostics);
                    Entry {
                        version,
                        converted,
                        diagnostics,
                    }
                }
            };
            diagnostics.extend(entry.diagnostics.clone());
            if let Some(converted) = &entry.converted {
                match converted {
                    Converted::IngressRoute(o) => {
                        if class_matches(settings, o) {
                            snapshot.ingress_routes.push(Arc::clone(o));
                        }
                    }
                    Converted::Middleware(o) => snapshot.middlewares.push(Arc::clone(o)),
                    Converted::TraefikService(o) => snapshot.traefik_services.push(Arc::clone(o)),
                    Converted::Uplink(o) => snapshot.uplinks.push(Arc::clone(o)),
                    Converted::Service(o) => snapshot.services.push(Arc::clone(o)),
                    Converted::EndpointSlice(o) => snapshot.endpoint_slices.push(Arc::clone(o)),
                    Converted::TLSStore(o) => snapshot.tls_stores.push(Arc::clone(o)),
                    Converted::TLSOption(o) => snapshot.tls_options.push(Arc::clone(o)),
                    Converted::ServersTransport(o) => {
                        snapshot.servers_transports.push(Arc::clone(o))
                    }
                    Converted::Secret(o) => snapshot.secrets.push(Arc::clone(o)),
                    Converted::ConfigMap(o) => snapshot.config_maps.push(Arc::clone(o)),
                }
                snapshot
                    .sources
                    .entry(object_ref)
                    .or_default()
                    .push(SOURCE.to_owned());
            }
            cache.insert(key, entry);
        }
        // What is not in the stores any more is dropped here.
        self.cache = cache;
        diagnostics.normalize();
        (snapshot, diagnostics)
    }
}

/// One object as its typed kind; `None` (and an error in `diagnostics`) when it does not
/// parse as one.
fn convert(
    kind: Kind,
    object: &DynamicObject,
    object_ref: &ObjectRef,
    diagnostics: &mut Diagnostics,
) -> Option<Converted> {
    let value = match to_value(kind, object) {
        Ok(value) => value,
        Err(message) => {
            diagnostics.push(invalid(object_ref, None, message));
            return None;
        }
    };
    let warnings = &mut *diagnostics;
    let converted =
        match kind {
            Kind::IngressRoute => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::IngressRoute(Arc::new(o))),
            Kind::Middleware => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::Middleware(Arc::new(o))),
            Kind::TraefikService => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::TraefikService(Arc::new(o))),
            Kind::Uplink => {
                typed(value, object_ref, SOURCE, warnings).map(|o| Converted::Uplink(Arc::new(o)))
            }
            Kind::Service => {
                typed(value, object_ref, SOURCE, warnings).map(|o| Converted::Service(Arc::new(o)))
            }
            Kind::EndpointSlice => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::EndpointSlice(Arc::new(o))),
            Kind::TLSStore => {
                typed(value, object_ref, SOURCE, warnings).map(|o| Converted::TLSStore(Arc::new(o)))
            }
            Kind::TLSOption => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::TLSOption(Arc::new(o))),
            Kind::ServersTransport => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::ServersTransport(Arc::new(o))),
            Kind::Secret => {
                typed(value, object_ref, SOURCE, warnings).map(|o| Converted::Secret(Arc::new(o)))
            }
            Kind::ConfigMap => typed(value, object_ref, SOURCE, warnings)
                .map(|o| Converted::ConfigMap(Arc::new(o))),
        };
    match converted {
        Ok(converted) => Some(converted),
        Err((field, message)) => {
            diagnostics.push(invalid(object_ref, field, message));
            None
        }
    }
}

/// Whether an IngressRoute belongs to this gateway's ingress class.
fn class_matches(settings: &Settings, route: &traverse_api::IngressRoute) -> bool {
    let class = route
        .spec
        .ingress_class_name
        .as_deref()
        .or_else(|| {
            route
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/ingress.class"))
                .map(String::as_str)
        })
        .filter(|c| !c.is_empty());
    match (&settings.ingress_class, class) {
        (Some(wanted), Some(class)) => wanted == class,
        (Some(_), None) => false,
        (None, None) => true,
        (None, Some(class)) => class == "traverse" || class == "traefik",
    }
}

/// The object as the JSON a typed kind parses, with its apiVersion and kind set.
fn to_value(kind: Kind, object: &DynamicObject) -> Result<Value, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    let resource = kind.resource();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(resource.api_version));
        map.insert("kind".into(), Value::String(resource.kind));
    }
    Ok(value)
}

fn invalid(object: &ObjectRef, field: Option<String>, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        reason: Reason::InvalidDocument,
        object: Some(object.clone()),
        source: Some(SOURCE.to_owned()),
        field,
        message: format!("{message}; the object is skipped"),
    }
}

#[cfg(test)]
mod tests;
