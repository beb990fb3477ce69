//! A provider's view of the world at one moment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use traverse_api::{
    ConfigMap, EndpointSlice, IngressRoute, Middleware, Secret, ServersTransport, Service,
    TLSOption, TLSStore, TraefikService, Uplink,
};
use traverse_router::Interner;

use crate::diagnostics::ObjectRef;

/// Every object a provider knows of, plus where each came from. Objects are shared: a
/// provider keeps them and hands the same ones on in every snapshot, so a snapshot of
/// 10,000 objects is a copy of 10,000 pointers, not of the objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub ingress_routes: Vec<Arc<IngressRoute>>,
    pub middlewares: Vec<Arc<Middleware>>,
    pub traefik_services: Vec<Arc<TraefikService>>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub uplinks: Vec<Arc<Uplink>>,
    /// Certificates (`tls.crt`, `tls.key`) and CAs named by routes, TLSStores and TLSOptions.
    pub secrets: Vec<Arc<Secret>>,
    /// CAs (`tls.ca`, `ca.crt`) named by ServersTransports' `rootCAs`.
    pub config_maps: Vec<Arc<ConfigMap>>,
    pub tls_stores: Vec<Arc<TLSStore>>,
    pub tls_options: Vec<Arc<TLSOption>>,
    pub servers_transports: Vec<Arc<ServersTransport>>,
    /// Origin of each definition of an object (`file.yaml:12` for files), in snapshot
    /// order: more than one means duplicates, and each is reported where it stands.
    pub sources: BTreeMap<ObjectRef, Vec<String>>,
    /// Whether references may name objects in other namespaces (Traefik's provider
    /// setting `allowCrossNamespace`, false by default).
    pub allow_cross_namespace: bool,
    /// `nativeLB` for the Service references that do not set it (Traefik's provider
    /// setting `nativeLBByDefault`, false by default).
    pub native_lb_by_default: bool,
    /// Compiled rules kept from one translation to the next by the provider that made
    /// this snapshot; not part of what the snapshot says (equal whatever it holds).
    pub rules: Rules,
}

/// A provider's compiled rules and regexes, shared by every snapshot it produces, so
/// that translating a snapshot compiles only the rules the previous one did not have
/// and a regex used by thousands of routes is compiled once; and the routes of the last
/// translation, so that the next one reuses those of the IngressRoutes that did not
/// change. Each clone is a handle to the same caches; the default is a fresh, empty one.
#[derive(Clone, Default)]
pub struct Rules {
    interner: Arc<Mutex<Interner>>,
    routes: Arc<Mutex<crate::translate::Memo>>,
}

impl Rules {
    /// The interner, for one translation (or validation) at a time.
    pub fn lock(&self) -> MutexGuard<'_, Interner> {
        // The interner is a cache: one left half-updated by a panic is still valid.
        self.interner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The routes of the last translation, by IngressRoute.
    pub(crate) fn routes(&self) -> MutexGuard<'_, crate::translate::Memo> {
        // A memo left half-updated by a panic is emptied: it is only a cache.
        self.routes.lock().unwrap_or_else(|poisoned| {
            let mut memo = poisoned.into_inner();
            *memo = Default::default();
            memo
        })
    }
}

impl PartialEq for Rules {
    /// A cache says nothing about the configuration: snapshots compare by their objects.
    fn eq(&self, _: &Rules) -> bool {
        true
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: a snapshot may be printed while its interner is in use.
        match self.interner.try_lock() {
            Ok(interner) => f
                .debug_struct("Rules")
                .field("rules", &interner.rules())
                .field("regexes", &interner.regexes())
                .finish(),
            Err(_) => f.write_str("Rules(in use)"),
        }
    }
}

/// Kubernetes identity shared by all kinds in a snapshot.
pub trait Object {
    /// The `kind` of the object.
    const KIND: &'static str;
    /// Namespace and name; objects without a namespace are in `default`.
    fn key(&self) -> (&str, &str);

    /// The object's reference for diagnostics.
    fn object_ref(&self) -> ObjectRef {
        let (namespace, name) = self.key();
        ObjectRef {
            kind: Self::KIND.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

macro_rules! object {
    ($type:ty, $kind:literal) => {
        impl Object for $type {
            const KIND: &'static str = $kind;
            fn key(&self) -> (&str, &str) {
                (
                    self.metadata.namespace.as_deref().unwrap_or("default"),
                    self.metadata.name.as_deref().unwrap_or(""),
                )
            }
        }
    };
}

impl<T: Object> Object for Arc<T> {
    const KIND: &'static str = T::KIND;
    fn key(&self) -> (&str, &str) {
        self.as_ref().key()
    }
}

object!(IngressRoute, "IngressRoute");
object!(Middleware, "Middleware");
object!(TraefikService, "TraefikService");
object!(Service, "Service");
object!(EndpointSlice, "EndpointSlice");
object!(Uplink, "Uplink");
object!(Secret, "Secret");
object!(ConfigMap, "ConfigMap");
object!(TLSStore, "TLSStore");
object!(TLSOption, "TLSOption");
object!(ServersTransport, "ServersTransport");

impl Snapshot {
    /// Where the definition of `object` that is used (the first) came from.
    pub fn source_of(&self, object: &ObjectRef) -> Option<String> {
        self.nth_source_of(object, 0)
    }

    /// Where the `n`th definition of `object` came from.
    pub fn nth_source_of(&self, object: &ObjectRef, n: usize) -> Option<String> {
        self.sources.get(object).and_then(|s| s.get(n)).cloned()
    }
}
