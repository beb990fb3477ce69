//! `rateLimit` (a token bucket per source) and `inFlightReq` (a counter per source).
//!
//! Both keep per-source state in sharded maps: a request takes one shard's read lock
//! and updates an atomic, so sources never contend on one lock, and a write lock is
//! taken only to add a source. Each map is bounded; when a shard is full, sources whose
//! state is idle (a full bucket, nothing in flight) are dropped first, which changes
//! nothing since a new source starts in that same state.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Origin, SourceCriterion};

const SHARDS: usize = 64;
/// Sources remembered per middleware (Traefik's bound, 65536), spread over the shards.
const MAX_SOURCES: usize = 65_536;
const SHARD_CAPACITY: usize = MAX_SOURCES / SHARDS;

/// A map from source to state, in shards.
struct Shards<V> {
    hasher: RandomState,
    shards: Vec<RwLock<HashMap<Box<str>, V>>>,
}

impl<V> Shards<V> {
    fn new() -> Self {
        Shards {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    fn shard(&self, source: &str) -> &RwLock<HashMap<Box<str>, V>> {
        let index = (self.hasher.hash_one(source) as usize) % SHARDS;
        &self.shards[index]
    }

    /// Runs `f` on the state of `source`, adding it with `new` if absent; `idle` tells
    /// which states may be dropped to make room.
    fn with<R>(
        &self,
        source: &str,
        new: impl FnOnce() -> V,
        idle: impl Fn(&V) -> bool,
        f: impl FnOnce(&V) -> R,
    ) -> R {
        let shard = self.shard(source);
        {
            let map = shard.read().unwrap_or_else(|e| e.into_inner());
            if let Some(state) = map.get(source) {
                return f(state);
            }
        }
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(source) && map.len() >= SHARD_CAPACITY {
            map.retain(|_, state| !idle(state));
            if map.len() >= SHARD_CAPACITY {
                // Every source is busy: forget one, which only makes it more lenient.
                if let Some(key) = map.keys().next().cloned() {
                    map.remove(&key);
                }
            }
        }
        f(map.entry(source.into()).or_insert_with(new))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// Requests per source at an average rate with bursts (Traefik `rateLimit`).
///
/// Each source's bucket is one number, the theoretical arrival time of its next
/// request (the generic cell rate algorithm, equivalent to a token bucket): updated by
/// compare-and-swap, so a request takes no lock beyond its shard's read lock.
#[derive(Clone)]
pub struct RateLimit {
    pub origin: Origin,
    /// Nanoseconds between requests at the average rate.
    pub interval_ns: u64,
    /// Requests allowed at once (≥ 1).
    pub burst: u64,
    /// A request that would fit the rate within this wait is held, not refused.
    pub max_delay_ns: u64,
    pub source: SourceCriterion,
    buckets: Arc<Shards<AtomicU64>>,
}

/// What a rate limit decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// Admitted once this many nanoseconds have passed.
    After(u64),
    /// Refused: the source's bucket has room again in this many nanoseconds.
    Refused(u64),
}

impl RateLimit {
    pub fn new(
        origin: Origin,
        interval_ns: u64,
        burst: u64,
        max_delay_ns: u64,
        source: SourceCriterion,
    ) -> Self {
        RateLimit {
            origin,
            interval_ns,
            burst: burst.max(1),
            max_delay_ns,
            source,
            buckets: Arc::new(Shards::new()),
        }
    }

    /// Admits (or not) a request of `source` at `now_ns` (a monotonic clock).
    pub fn admit(&self, source: &str, now_ns: u64) -> Admission {
        let interval = self.interval_ns;
        let window = interval.saturating_mul(self.burst);
        self.buckets.with(
            source,
            || AtomicU64::new(0),
            |tat| tat.load(Ordering::Relaxed) <= now_ns,
            |tat| {
                let mut current = tat.load(Ordering::Relaxed);
                loop {
                    let next = current.max(now_ns).saturating_add(interval);
                    let wait = next.saturating_sub(now_ns).saturating_sub(window);
                    if wait > self.max_delay_ns {
                        return Admission::Refused(wait);
                    }
                    match tat.compare_exchange_weak(
                        current,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) if wait == 0 => return Admission::Now,
                        Ok(_) => return Admission::After(wait),
                        Err(actual) => current = actual,
                    }
                }
            },
        )
    }

    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.buckets.len()
    }
}

impl PartialEq for RateLimit {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.origin,
            self.interval_ns,
            self.burst,
            self.max_delay_ns,
            &self.source,
        ) == (
            &other.origin,
            other.interval_ns,
            other.burst,
            other.max_delay_ns,
            &other.source,
        )
    }
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("origin", &self.origin)
            .field("interval_ns", &self.interval_ns)
            .field("burst", &self.burst)
            .field("max_delay_ns", &self.max_delay_ns)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Requests per source in flight at once (Traefik `inFlightReq`).
#[derive(Clone)]
pub struct InFlightReq {
    pub origin: Origin,
    pub amount: u64,
    pub source: SourceCriterion,
    counters: Arc<Shards<Arc<AtomicU64>>>,
}

/// One request counted in flight; uncounted when dropped.
#[derive(Debug)]
pub struct Permit(Arc<AtomicU64>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlightReq {
    pub fn new(origin: Origin, amount: u64, source: SourceCriterion) -> Self {
        InFlightReq {
            origin,
            amount,
            source,
            counters: Arc::new(Shards::new()),
        }
    }

    /// Counts a request of `source` in flight, unless `amount` already are.
    pub fn acquire(&self, source: &str) -> Option<Permit> {
        self.counters.with(
            source,
            || Arc::new(AtomicU64::new(0)),
            |counter| Arc::strong_count(counter) == 1,
            |counter| {
                let mut current = counter.load(Ordering::Acquire);
                loop {
                    if current >= self.amount {
                        return None;
                    }
                    match counter.compare_exchange_weak(
                        current,
                        current + 1,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Some(Permit(Arc::clone(counter))),
                        Err(actual) => current = actual,
                    }
                }
            },
        )
    }

    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.counters.len()
    }
}

impl PartialEq for InFlightReq {
    fn eq(&self, other: &Self) -> bool {
        (&self.origin, self.amount, &self.source) == (&other.origin, other.amount, &other.source)
    }
}

impl std::fmt::Debug for InFlightReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightReq")
            .field("origin", &self.origin)
            .field("amount", &self.amount)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
