//! Which IngressRoutes a change to other objects can affect, for [`Memo`](super::Memo).
//!
//! Objects refer to each other by name (a Service, a Middleware, a Secret, ...), so an
//! object can depend only on objects whose name appears among its spec's strings. The
//! names are compared as hashes and without their namespace: a collision or a name in
//! another namespace only translates an IngressRoute that did not need it, never the
//! other way round.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

use super::SERVICE_NAME_LABEL;
use crate::snapshot::{Object, Snapshot};

/// The names an object's spec could refer to others by, hashed, sorted.
#[derive(Debug, Default)]
pub(super) struct Mentions(Box<[u64]>);

impl Mentions {
    /// Every name `spec`'s strings could stand for.
    pub(super) fn of(spec: &impl Serialize) -> Mentions {
        let mut names = Vec::new();
        // A spec that does not serialize mentions nothing we can see: say "everything".
        match serde_json::to_value(spec) {
            Ok(value) => collect(&value, &mut names),
            Err(_) => names.push(EVERYTHING),
        }
        names.sort_unstable();
        names.dedup();
        Mentions(names.into())
    }

    /// Whether any of these names is in `changed`.
    pub(super) fn any_in(&self, changed: &Changed) -> bool {
        match changed {
            Changed::Everything => true,
            Changed::Names(names) => {
                self.0.contains(&EVERYTHING) || self.0.iter().any(|n| names.contains(n))
            }
        }
    }
}

/// Stands for "any name" in a [`Mentions`] whose spec could not be read.
const EVERYTHING: u64 = 0;

fn collect(value: &serde_json::Value, names: &mut Vec<u64>) {
    match value {
        serde_json::Value::String(text) => {
            // `name@provider` and Traefik's `namespace-name@kubernetescrd` name `name`:
            // the text before `@`, and each part of it after a `-`.
            let base = text.split('@').next().unwrap_or_default();
            names.push(name_hash(base));
            for (i, _) in base.match_indices('-') {
                names.push(name_hash(&base[i + 1..]));
            }
        }
        serde_json::Value::Array(values) => values.iter().for_each(|v| collect(v, names)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| collect(v, names)),
        _ => {}
    }
}

fn name_hash(name: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    // Never `EVERYTHING`.
    hasher.finish().max(1)
}

/// What changed between two snapshots, as the names IngressRoutes may depend on.
#[derive(Debug)]
pub(super) enum Changed {
    /// A change every IngressRoute may depend on (an Uplink, a TLS kind).
    Everything,
    /// The names of the objects added, removed or replaced, and of every Middleware,
    /// TraefikService and ServersTransport that mentions one of them, transitively.
    Names(HashSet<u64>),
}

impl Changed {
    /// From `before` to `after`, by object identity (providers hand on the same object
    /// while it is unchanged).
    pub(super) fn between(before: &Snapshot, after: &Snapshot) -> Changed {
        if before.allow_cross_namespace != after.allow_cross_namespace
            || before.native_lb_by_default != after.native_lb_by_default
            || !same(&before.uplinks, &after.uplinks)
            || !same(&before.tls_stores, &after.tls_stores)
            || !same(&before.tls_options, &after.tls_options)
        {
            return Changed::Everything;
        }
        let mut names = HashSet::new();
        replaced(&before.services, &after.services, &mut names, |_| None);
        replaced(
            &before.endpoint_slices,
            &after.endpoint_slices,
            &mut names,
            |s| s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL).cloned(),
        );
        replaced(&before.middlewares, &after.middlewares, &mut names, |_| {
            None
        });
        replaced(
            &before.traefik_services,
            &after.traefik_services,
            &mut names,
            |_| None,
        );
        replaced(
            &before.servers_transports,
            &after.servers_transports,
            &mut names,
            |_| None,
        );
        replaced(&before.secrets, &after.secrets, &mut names, |_| None);
        replaced(&before.config_maps, &after.config_maps, &mut names, |_| {
            None
        });
        if names.is_empty() {
            return Changed::Names(names);
        }
        // Objects that IngressRoutes reach through: one mentioning a changed name is
        // changed too, until no more are found.
        let mut through: Vec<(u64, Mentions)> = Vec::new();
        through.extend(
            after
                .middlewares
                .iter()
                .map(|o| (name_hash(o.key().1), Mentions::of(&o.spec))),
        );
        through.extend(
            after
                .traefik_services
                .iter()
                .map(|o| (name_hash(o.key().1), Mentions::of(&o.spec))),
        );
        through.extend(
            after
                .servers_transports
                .iter()
                .map(|o| (name_hash(o.key().1), Mentions::of(&o.spec))),
        );
        let mut changed = Changed::Names(names);
        loop {
            let more: Vec<u64> = through
                .iter()
                .filter(|(name, mentions)| {
                    matches!(&changed, Changed::Names(n) if !n.contains(name))
                        && mentions.any_in(&changed)
                })
                .map(|(name, _)| *name)
                .collect();
            if more.is_empty() {
                return changed;
            }
            if let Changed::Names(names) = &mut changed {
                names.extend(more);
            }
        }
    }
}

fn same<T>(before: &[Arc<T>], after: &[Arc<T>]) -> bool {
    before.len() == after.len() && before.iter().zip(after).all(|(b, a)| Arc::ptr_eq(b, a))
}

/// Adds the names of the objects in only one of `before` and `after`, and what `also`
/// names for them (an EndpointSlice's Service).
fn replaced<T: Object>(
    before: &[Arc<T>],
    after: &[Arc<T>],
    names: &mut HashSet<u64>,
    also: impl Fn(&T) -> Option<String>,
) {
    if same(before, after) {
        return;
    }
    let held: HashSet<*const T> = before.iter().map(Arc::as_ptr).collect();
    let kept: HashSet<*const T> = after.iter().map(Arc::as_ptr).collect();
    let added = after.iter().filter(|o| !held.contains(&Arc::as_ptr(o)));
    let removed = before.iter().filter(|o| !kept.contains(&Arc::as_ptr(o)));
    for object in added.chain(removed) {
        names.insert(name_hash(object.key().1));
        if let Some(other) = also(object) {
            names.insert(name_hash(&other));
        }
    }
}
