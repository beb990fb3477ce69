//! Uplinks: the routes bound to each by annotation, how each is advertised to parents, and
//! service references that forward to one.

use traverse_api::uplink::{HUB_UPLINKS_ANNOTATION, UPLINKS_ANNOTATION};
use traverse_api::{IngressRoute, ServiceRef};

use super::{EntryPoints, Translator};
use crate::diagnostics::{Reason, Severity};
use crate::model::{AdvertisedUplink, UplinkRef};
use crate::snapshot::Object;

impl<'a> Translator<'a> {
    /// The Uplinks an IngressRoute's annotations bind it to; unknown names are reported.
    pub(super) fn bound_uplinks(&mut self, object: &'a IngressRoute) -> Vec<(&'a str, &'a str)> {
        let me = object.object_ref();
        let (namespace, _) = object.key();
        let Some(annotations) = object.metadata.annotations.as_ref() else {
            return Vec::new();
        };
        let mut bound = Vec::new();
        for annotation in [UPLINKS_ANNOTATION, HUB_UPLINKS_ANNOTATION] {
            let Some(value) = annotations.get(annotation) else {
                continue;
            };
            for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let found: Vec<(&'a str, &'a str)> = self
                    .uplinks
                    .keys()
                    .copied()
                    .filter(|(ns, name)| {
                        if annotation == HUB_UPLINKS_ANNOTATION {
                            UplinkRef::Hub(entry.to_owned()).matches(ns, name)
                        } else {
                            match entry.split_once('/') {
                                Some((n, m)) => (n, m) == (*ns, *name),
                                None => (namespace, entry) == (*ns, *name),
                            }
                        }
                    })
                    .collect();
                if found.is_empty() {
                    self.report(
                        &me,
                        Severity::Warning,
                        Reason::UplinkNotFound,
                        Some(format!("metadata.annotations.{annotation}")),
                        format!(
                            "uplink {entry:?} not found; the route is not advertised to parents"
                        ),
                    );
                }
                bound.extend(found);
            }
        }
        bound.sort_unstable();
        bound.dedup();
        bound
    }

    /// Every Uplink as the child advertises it: ready when a bound route can serve on one
    /// of the uplink's entrypoints.
    pub(super) fn advertised_uplinks(
        &mut self,
        entry_points: &EntryPoints,
    ) -> Vec<AdvertisedUplink> {
        let mut keys: Vec<(&'a str, &'a str)> = self.uplinks.keys().copied().collect();
        keys.sort_unstable();
        let mut advertised = Vec::new();
        for key in keys {
            let uplink = self.uplinks[&key];
            let me = uplink.object_ref();
            let serving: Vec<String> = if uplink.spec.entry_points.is_empty() {
                entry_points.uplinks.iter().cloned().collect()
            } else {
                uplink.spec.entry_points.clone()
            };
            if !entry_points.names.is_empty() {
                for (i, name) in uplink.spec.entry_points.iter().enumerate() {
                    if !entry_points.uplinks.contains(name) {
                        self.report(
                            &me,
                            Severity::Warning,
                            Reason::Unsupported,
                            Some(format!("spec.entryPoints[{i}]")),
                            format!("{name:?} is not an uplink entrypoint of this gateway"),
                        );
                    }
                }
            }
            let routers = self.uplink_routers.remove(&key).unwrap_or_default();
            let ready = routers.iter().any(|router| {
                router.serviceable
                    && (router.entry_points.is_empty()
                        || router.entry_points.iter().any(|e| serving.contains(e)))
            });
            if !ready {
                let why = if routers.is_empty() {
                    format!(
                        "no IngressRoute is bound to it (annotation {UPLINKS_ANNOTATION}: {})",
                        key.1
                    )
                } else {
                    "none of its routes can serve on its uplink entrypoints".to_owned()
                };
                self.report(
                    &me,
                    Severity::Warning,
                    Reason::UplinkNotReady,
                    None,
                    format!("{why}; advertised to parents as not ready"),
                );
            }
            advertised.push(AdvertisedUplink {
                namespace: key.0.to_owned(),
                name: key.1.to_owned(),
                weight: uplink.spec.effective_weight(),
                entry_points: serving,
                ready,
                routers: routers.into_iter().map(|router| router.name).collect(),
            });
        }
        advertised
    }
}

/// A service reference to an uplink: `kind: Uplink` (namespace defaults to the route's),
/// or Traefik Hub's `<namespace>-<name>@multicluster`.
pub(super) fn uplink_ref(reference: &ServiceRef, route_namespace: &str) -> UplinkRef {
    match reference
        .name
        .strip_suffix(traverse_api::ingress_route::MULTICLUSTER_SUFFIX)
    {
        Some(joined) => UplinkRef::Hub(joined.to_owned()),
        None => UplinkRef::Named {
            namespace: reference
                .namespace
                .clone()
                .unwrap_or_else(|| route_namespace.to_owned()),
            name: reference.name.clone(),
        },
    }
}
