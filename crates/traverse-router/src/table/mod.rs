//! Route table with host indexing.
//!
//! # Why the index gives the same answer as a linear scan
//!
//! Routes are stored sorted in *match order* (priority descending, then input
//! order), so "the answer" is the first route in that order whose entrypoints
//! accept the request and whose rule matches. Route `i` (its position in match
//! order) is placed into buckets:
//!
//! * if its rule *requires* the host to match one of a set of patterns (see
//!   `Rule::required_hosts`), into the exact bucket of every exact host in the
//!   set and the wildcard bucket (keyed by suffix) of every `*.suffix` in it;
//! * otherwise into the catch-all bucket.
//!
//! For a request with host `h`, `find` gathers the exact bucket of `h`, the
//! wildcard bucket of every proper parent suffix of `h`, and the catch-all
//! bucket. A route in none of them requires a host pattern `h` does not match
//! (an exact pattern `p` matches only `h == p`; `*.s` matches only hosts
//! `x.s` with `x` non-empty, i.e. `s` is a parent suffix of `h`), so its rule
//! cannot match and a linear scan would skip it too. Every bucket lists route
//! indices in increasing order, so a k-way merge of the buckets visits the
//! remaining candidates in match order, and the first candidate that matches is
//! exactly the first match a linear scan would return. A route present in
//! several gathered buckets is visited once (equal heads are popped together).

use std::collections::HashMap;

use crate::rule::{with_normalized_host, Ctx, HostPattern};
use crate::Rule;

// Defined on its own so that rules and the table both use it without depending on each
// other; still reachable as `table::Request`.
pub use crate::request::Request;

/// One routing entry: a rule, its priority, the entrypoints it listens on and
/// the caller's payload.
#[derive(Debug, Clone)]
pub struct Route<T> {
    /// Rule the request must satisfy.
    pub rule: Rule,
    /// Higher wins; Traefik's default is [`Rule::default_priority`].
    pub priority: i64,
    /// Entrypoint names this route is attached to; empty means every entrypoint.
    pub entrypoints: Vec<String>,
    /// Caller data returned by [`RouteTable::find`].
    pub value: T,
}

impl<T> Route<T> {
    fn accepts(&self, entrypoint: &str) -> bool {
        self.entrypoints.is_empty() || self.entrypoints.iter().any(|e| e == entrypoint)
    }
}

/// Immutable set of routes indexed by required host, so lookup cost depends
/// on the routes that could match a host rather than on the table size.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// In match order: priority descending, then input order.
    routes: Vec<Route<T>>,
    /// Lowercase host → indices (ascending) of routes requiring it.
    exact: HashMap<Box<str>, Vec<usize>>,
    /// Suffix of `*.suffix` → indices (ascending) of routes requiring it.
    wildcard: HashMap<Box<str>, Vec<usize>>,
    /// Indices (ascending) of routes with no indexable host requirement.
    catch_all: Vec<usize>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            routes: Vec::new(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            catch_all: Vec::new(),
        }
    }
}

/// Buckets gathered on the stack per lookup: exact + catch-all + wildcard
/// suffixes; more only when a host has many labels with wildcard buckets.
const INLINE_BUCKETS: usize = 16;

impl<T> RouteTable<T> {
    /// Builds the table: sorts routes into match order and indexes them.
    pub fn new(mut routes: Vec<Route<T>>) -> Self {
        // Stable sort keeps input order among equal priorities.
        routes.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let mut exact: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut wildcard: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut catch_all = Vec::new();
        // Indices are pushed in increasing order, so every bucket is sorted; a
        // route naming the same host twice is pushed once (last != idx check).
        let push = |bucket: &mut Vec<usize>, idx: usize| {
            if bucket.last() != Some(&idx) {
                bucket.push(idx);
            }
        };
        for (idx, route) in routes.iter().enumerate() {
            match route.rule.required_hosts() {
                Some(hosts) => {
                    for host in hosts {
                        let (map, key) = match host {
                            HostPattern::Exact(h) => (&mut exact, h),
                            HostPattern::Wildcard(s) => (&mut wildcard, s),
                        };
                        push(map.entry(key.as_str().into()).or_default(), idx);
                    }
                }
                None => push(&mut catch_all, idx),
            }
        }
        // Tables live long and there may be tens of thousands of routes: no spare room.
        routes.shrink_to_fit();
        for bucket in exact.values_mut().chain(wildcard.values_mut()) {
            bucket.shrink_to_fit();
        }
        catch_all.shrink_to_fit();
        RouteTable {
            routes,
            exact,
            wildcard,
            catch_all,
        }
    }

    /// The value of the highest-priority route whose entrypoints include
    /// `entrypoint` (or are empty) and whose rule matches; ties go to the route
    /// given first to [`RouteTable::new`].
    pub fn find(&self, entrypoint: &str, req: &Request<'_>) -> Option<&T> {
        with_normalized_host(req.host, |host| {
            let ctx = Ctx { req, host };
            let mut inline: [&[usize]; INLINE_BUCKETS] = [&[]; INLINE_BUCKETS];
            let mut len = 0;
            let mut spill: Vec<&[usize]> = Vec::new(); // allocates only if used
            for bucket in self.buckets(ctx.host_key()) {
                if let Some(slot) = inline.get_mut(len) {
                    *slot = bucket;
                    len += 1;
                } else {
                    spill.push(bucket);
                }
            }
            if spill.is_empty() {
                self.merge(inline.get_mut(..len).unwrap_or_default(), entrypoint, &ctx)
            } else {
                spill.extend_from_slice(inline.get(..len).unwrap_or_default());
                self.merge(&mut spill, entrypoint, &ctx)
            }
        })
    }

    /// Non-empty buckets that may hold routes matching `host` (normalized like
    /// `Ctx::host_key`): its exact bucket, the wildcard bucket of each parent
    /// suffix, and the catch-all bucket.
    fn buckets<'s>(&'s self, host: &'s str) -> impl Iterator<Item = &'s [usize]> + 's {
        // `*.s` needs at least one label before `.s`, hence dots at index > 0.
        let wildcard_host = if self.wildcard.is_empty() { "" } else { host };
        let suffixes = wildcard_host
            .match_indices('.')
            .filter(|&(i, _)| i > 0)
            .filter_map(move |(i, _)| wildcard_host.get(i + 1..))
            .filter_map(|suffix| self.wildcard.get(suffix));
        self.exact
            .get(host)
            .into_iter()
            .chain(suffixes)
            .map(Vec::as_slice)
            .chain(std::iter::once(self.catch_all.as_slice()))
            .filter(|bucket| !bucket.is_empty())
    }

    /// k-way merge of ascending buckets: visits candidates in match order and
    /// returns the first that accepts the entrypoint and matches.
    fn merge(&self, buckets: &mut [&[usize]], entrypoint: &str, ctx: &Ctx<'_, '_>) -> Option<&T> {
        loop {
            let next = buckets.iter().filter_map(|b| b.first().copied()).min()?;
            // Pop `next` from every bucket holding it, so it is evaluated once.
            for bucket in buckets.iter_mut() {
                if let Some((&head, rest)) = bucket.split_first() {
                    if head == next {
                        *bucket = rest;
                    }
                }
            }
            // Always present: bucket entries are indices into `routes`.
            let Some(route) = self.routes.get(next) else {
                continue;
            };
            if route.accepts(entrypoint) && route.rule.matches_ctx(ctx) {
                return Some(&route.value);
            }
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// All routes in match order (priority descending, then input order).
    pub fn routes(&self) -> impl Iterator<Item = &Route<T>> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests;
