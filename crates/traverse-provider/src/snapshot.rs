//! A provider's view of the world at one moment.

use std::collections::BTreeMap;

use traverse_api::{EndpointSlice, IngressRoute, Middleware, Service, Uplink};

use crate::diagnostics::ObjectRef;

/// Every object a provider knows of, plus where each came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub ingress_routes: Vec<IngressRoute>,
    pub middlewares: Vec<Middleware>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub uplinks: Vec<Uplink>,
    /// Origin of each definition of an object (`file.yaml:12` for files), in snapshot
    /// order: more than one means duplicates, and each is reported where it stands.
    pub sources: BTreeMap<ObjectRef, Vec<String>>,
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

object!(IngressRoute, "IngressRoute");
object!(Middleware, "Middleware");
object!(Service, "Service");
object!(EndpointSlice, "EndpointSlice");
object!(Uplink, "Uplink");

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
