//! The runtime model: what `translate` produces and the data plane reads.
//!
//! Everything here is immutable once built. A new configuration is a new
//! [`RoutingTable`], published atomically; requests never take a lock to route.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use traverse_router::RouteTable;

use crate::diagnostics::Diagnostics;

/// One published configuration: the route table and what was wrong with its inputs.
#[derive(Debug, Default)]
pub struct RoutingTable {
    pub routes: RouteTable<Arc<Router>>,
    pub diagnostics: Diagnostics,
    /// What a child advertises to its parents, one entry per Uplink object.
    pub uplinks: Vec<AdvertisedUplink>,
}

/// An Uplink as a child advertises it to parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedUplink {
    pub namespace: String,
    pub name: String,
    pub weight: u32,
    /// Uplink entrypoints serving it.
    pub entry_points: Vec<String>,
    /// At least one route bound to it can serve (its services have ready endpoints).
    pub ready: bool,
    /// The routers bound to it, for the admin API.
    pub routers: Vec<Arc<str>>,
}

/// A routing rule resolved against its middlewares and services.
#[derive(Debug)]
pub struct Router {
    /// Stable name, `namespace/ingressroute#index`: used in logs, spans and metrics
    /// instead of the rule text. Shared, so telemetry attributes reuse it without copying.
    pub name: Arc<str>,
    /// The rule as written, for the admin API.
    pub rule: String,
    pub priority: i64,
    pub entry_points: Vec<String>,
    /// Applied in order to the request, and in reverse order to the response.
    pub middlewares: Vec<Middleware>,
    /// The Middleware objects those steps come from, `namespace/name`, for the admin API.
    pub middleware_names: Vec<String>,
    pub target: Target,
}

/// Where a matched request goes.
#[derive(Debug)]
pub enum Target {
    /// Weighted round robin across the route's services.
    Services(Weighted<Arc<Backend>>),
    /// A parent's route to uplinks that children advertise; which children serve each
    /// is known only at run time, from their advertisements.
    Uplinks(Weighted<Arc<UplinkRef>>),
    /// The route exists but cannot be served (e.g. every Service it names is missing):
    /// it answers this status instead of vanishing into a 404.
    Unavailable { status: u16, reason: String },
}

/// A Kubernetes Service port resolved to the endpoints that may receive traffic.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, as reported in logs and telemetry (shared, like `Router::name`).
    pub name: Arc<str>,
    pub scheme: Scheme,
    /// Send the client's Host header upstream (Traefik's default) rather than the endpoint address.
    pub pass_host_header: bool,
    /// Ready endpoints; empty means the Service exists but nothing can serve (503).
    pub servers: Weighted<SocketAddr>,
}

/// A parent route's reference to an uplink, matched against children's advertisements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UplinkRef {
    /// `kind: Uplink` with a name and namespace: exactly that Uplink.
    Named { namespace: String, name: String },
    /// Traefik Hub's `<namespace>-<name>@multicluster`, without the suffix.
    Hub(String),
}

impl UplinkRef {
    /// Whether an advertised `namespace/name` is the uplink this refers to.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        match self {
            UplinkRef::Named {
                namespace: n,
                name: m,
            } => n == namespace && m == name,
            UplinkRef::Hub(joined) => {
                joined
                    .strip_prefix(namespace)
                    .and_then(|rest| rest.strip_prefix('-'))
                    == Some(name)
            }
        }
    }
}

impl std::fmt::Display for UplinkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UplinkRef::Named { namespace, name } => write!(f, "{namespace}/{name}"),
            UplinkRef::Hub(joined) => write!(f, "{joined}@multicluster"),
        }
    }
}

/// How to speak to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// Cleartext HTTP/2 with prior knowledge.
    H2c,
}

impl Scheme {
    /// The scheme's name in manifests and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::H2c => "h2c",
        }
    }
}

/// A request/response transformation, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Middleware {
    /// Remove the first matching prefix from the path (Traefik `stripPrefix`).
    StripPrefix { prefixes: Vec<String> },
    /// Prepend a prefix to the path (Traefik `addPrefix`).
    AddPrefix { prefix: String },
    /// Set or remove headers; a `None` value removes the header (Traefik's empty string).
    Headers {
        request: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
        response: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    },
}

/// Smooth weighted round robin over a fixed set of items, lock-free.
///
/// The interleaved schedule is computed once (nginx's smooth algorithm, so heavy
/// items are spread out rather than bunched), and picking is one atomic increment.
#[derive(Debug)]
pub struct Weighted<T> {
    items: Vec<(T, u32)>,
    schedule: Vec<u32>,
    next: AtomicUsize,
    /// Turn counter of [`Weighted::pick_where`]'s fallback, apart from the schedule's.
    fallback: AtomicUsize,
}

/// Longest schedule kept; larger weight sums are scaled down proportionally.
const MAX_SCHEDULE: u64 = 4096;

impl<T> Weighted<T> {
    /// Items with weight 0 are kept (the admin API shows them) but never picked.
    pub fn new(items: Vec<(T, u32)>) -> Self {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let scale = |w: u32| -> i64 {
            if w == 0 {
                0
            } else if total <= MAX_SCHEDULE {
                i64::from(w)
            } else {
                // Keep every positive weight at least 1 so no item starves.
                ((u64::from(w) * MAX_SCHEDULE / total).max(1)) as i64
            }
        };
        let weights: Vec<i64> = items.iter().map(|(_, w)| scale(*w)).collect();
        let sum: i64 = weights.iter().sum();
        let positive = || weights.iter().filter(|w| **w > 0);
        let first = positive().next().copied();
        if positive().all(|w| Some(*w) == first) {
            // Equal weights (every endpoint of a Service): the smooth schedule is plain
            // round robin in order; building it directly keeps large Services linear.
            let schedule = (0..weights.len() as u32)
                .filter(|i| weights[*i as usize] > 0)
                .collect();
            return Weighted {
                items,
                schedule,
                next: AtomicUsize::new(0),
                fallback: AtomicUsize::new(0),
            };
        }
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(sum as usize);
        for _ in 0..sum {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= sum;
            schedule.push(best as u32);
        }
        Weighted {
            items,
            schedule,
            next: AtomicUsize::new(0),
            fallback: AtomicUsize::new(0),
        }
    }

    /// The next item in the schedule, or `None` when nothing has a positive weight.
    pub fn pick(&self) -> Option<&T> {
        if self.schedule.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let index = self.schedule[n % self.schedule.len()] as usize;
        Some(&self.items[index].0)
    }

    /// The next item in the schedule if `usable` accepts it; otherwise a pick among the
    /// usable items in proportion to their weights (a walk over the items, taken only
    /// while something is unusable). `None` when nothing usable has a positive weight.
    pub fn pick_where(&self, usable: impl Fn(&T) -> bool) -> Option<&T> {
        let first = self.pick()?;
        if usable(first) {
            return Some(first);
        }
        let candidates = || {
            self.items
                .iter()
                .filter(|(item, weight)| *weight > 0 && usable(item))
        };
        let total: u64 = candidates().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.fallback.fetch_add(1, Ordering::Relaxed) as u64 % total;
        for (item, weight) in candidates() {
            if ticket < u64::from(*weight) {
                return Some(item);
            }
            ticket -= u64::from(*weight);
        }
        None
    }

    /// Every item with its configured weight.
    pub fn items(&self) -> &[(T, u32)] {
        &self.items
    }

    /// True when [`Weighted::pick`] can return something.
    pub fn has_available(&self) -> bool {
        !self.schedule.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        weighted: &Weighted<&'static str>,
        picks: usize,
    ) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..picks {
            *counts.entry(*weighted.pick().expect("pick")).or_default() += 1;
        }
        counts
    }

    #[test]
    fn weights_are_exact_over_a_full_cycle() {
        let weighted = Weighted::new(vec![("a", 3), ("b", 1), ("c", 0)]);
        let counts = counts(&weighted, 400);
        assert_eq!(counts.get("a"), Some(&300));
        assert_eq!(counts.get("b"), Some(&100));
        assert_eq!(counts.get("c"), None, "weight 0 never picked");
    }

    #[test]
    fn smooth_schedule_spreads_heavy_items() {
        let weighted = Weighted::new(vec![("a", 5), ("b", 1), ("c", 1)]);
        let sequence: Vec<_> = (0..7).map(|_| *weighted.pick().expect("pick")).collect();
        assert_eq!(sequence, ["a", "a", "b", "a", "c", "a", "a"]);
    }

    #[test]
    fn huge_weights_are_scaled_without_starving() {
        let weighted = Weighted::new(vec![("a", 1_000_000), ("b", 1)]);
        assert!(weighted.schedule.len() as u64 <= MAX_SCHEDULE + 1);
        let counts = counts(&weighted, weighted.schedule.len());
        assert_eq!(counts.get("b"), Some(&1));
    }

    #[test]
    fn equal_weights_match_the_smooth_schedule() {
        // The fast path must give what the smooth algorithm gives: each item once, in order.
        let weighted = Weighted::new(vec![("a", 2), ("b", 0), ("c", 2), ("d", 2)]);
        assert_eq!(weighted.schedule, [0, 2, 3]);
        let large = Weighted::new((0..10_000u32).map(|i| (i, 1)).collect());
        assert_eq!(large.schedule.len(), 10_000);
        assert!(large
            .schedule
            .iter()
            .enumerate()
            .all(|(i, s)| *s as usize == i));
    }

    #[test]
    fn pick_where_skips_unusable_items_and_keeps_the_rest_weighted() {
        let weighted = Weighted::new(vec![("a", 3), ("b", 2), ("c", 1)]);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..600 {
            let item = weighted.pick_where(|i| *i != "a").expect("pick");
            *counts.entry(*item).or_insert(0) += 1;
        }
        assert_eq!(counts.get("a"), None);
        let (b, c) = (counts["b"], counts["c"]);
        assert_eq!(b + c, 600);
        assert!(
            (380..=420).contains(&b),
            "b={b} c={c}: 2:1 among the usable"
        );
        assert!(weighted.pick_where(|_| false).is_none());
    }

    #[test]
    fn nothing_to_pick() {
        assert!(Weighted::<u8>::new(vec![]).pick().is_none());
        let zero = Weighted::new(vec![(1u8, 0)]);
        assert!(zero.pick().is_none());
        assert!(!zero.has_available());
        assert_eq!(zero.items().len(), 1);
    }
}
