//! Smooth weighted round robin, lock-free.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Something a balancer hands out for an upstream attempt: a Service endpoint or a
/// child gateway. Both are selected the same way, by [`Weighted::select`].
pub trait Candidate {
    /// Where an attempt connects; `None` while unknown (a child not yet resolved).
    fn address(&self) -> Option<SocketAddr>;
    /// Whether it may take a new attempt at `now_ms` (not ejected; for a child also
    /// healthy and not draining).
    fn usable(&self, now_ms: u64) -> bool;

    /// Whether it may still get an attempt when none is usable (trying beats refusing);
    /// true unless a verdict says it cannot serve.
    fn last_resort(&self) -> bool {
        true
    }
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
    pub fn new(mut items: Vec<(T, u32)>) -> Self {
        // Kept as long as the table, one per route: no spare room.
        items.shrink_to_fit();
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
        self.pick_index().map(|i| &self.items[i].0)
    }

    fn pick_index(&self) -> Option<usize> {
        if self.schedule.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.schedule[n % self.schedule.len()] as usize)
    }

    /// The next item in the schedule if `usable` accepts it; otherwise a pick among the
    /// usable items in proportion to their weights (a walk over the items, taken only
    /// while something is unusable). `None` when nothing usable has a positive weight.
    pub fn pick_where(&self, usable: impl Fn(&T) -> bool) -> Option<&T> {
        self.pick_index_where(usable).map(|i| &self.items[i].0)
    }

    /// [`Weighted::pick_where`], as a position in [`Weighted::items`].
    pub fn pick_index_where(&self, usable: impl Fn(&T) -> bool) -> Option<usize> {
        let first = self.pick_index()?;
        if usable(&self.items[first].0) {
            return Some(first);
        }
        let candidates = || {
            self.items
                .iter()
                .enumerate()
                .filter(|(_, (item, weight))| *weight > 0 && usable(item))
        };
        let total: u64 = candidates().map(|(_, (_, w))| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.fallback.fetch_add(1, Ordering::Relaxed) as u64 % total;
        for (index, (_, weight)) in candidates() {
            if ticket < u64::from(*weight) {
                return Some(index);
            }
            ticket -= u64::from(*weight);
        }
        None
    }

    /// The next usable candidate whose address this request has not `tried` yet, in
    /// proportion to the weights, with its position in [`Weighted::items`]; `None` when
    /// there is none.
    pub fn select(&self, tried: &[SocketAddr], now_ms: u64) -> Option<(usize, &T)>
    where
        T: Candidate,
    {
        self.pick_index_where(|c| c.usable(now_ms) && untried(c, tried))
            .map(|i| (i, &self.items[i].0))
    }

    /// Traefik's `p2c` (power of two choices): two different candidates drawn at random
    /// among those [`Weighted::select`] could return (weights other than 0 do not
    /// count, as in Traefik), and the one with the lower `load` (the first on a tie).
    /// `random(n)` draws from `0..n`. No allocation: the draws are found by counting.
    pub fn select_p2c(
        &self,
        tried: &[SocketAddr],
        now_ms: u64,
        load: impl Fn(&T) -> u64,
        random: &mut dyn FnMut(usize) -> usize,
    ) -> Option<(usize, &T)>
    where
        T: Candidate,
    {
        let eligible = || {
            self.items
                .iter()
                .enumerate()
                .filter(|(_, (c, w))| *w > 0 && c.usable(now_ms) && untried(c, tried))
                .map(|(i, (c, _))| (i, c))
        };
        let n = eligible().count();
        let first = eligible().nth(random(n.max(1)) % n.max(1))?;
        if n == 1 {
            return Some(first);
        }
        // The second draw skips the first, as Traefik's does.
        let mut second = random(n - 1) % (n - 1);
        let first_rank = eligible().position(|(i, _)| i == first.0)?;
        if second >= first_rank {
            second += 1;
        }
        let second = eligible().nth(second)?;
        Some(if load(second.1) < load(first.1) {
            second
        } else {
            first
        })
    }

    /// Like [`Weighted::select`], ignoring whether candidates are usable: for when every
    /// candidate is ejected and trying one beats refusing the request.
    pub fn select_untried(&self, tried: &[SocketAddr]) -> Option<(usize, &T)>
    where
        T: Candidate,
    {
        self.pick_index_where(|c| untried(c, tried) && c.last_resort())
            .map(|i| (i, &self.items[i].0))
    }

    /// Whether [`Weighted::select`] would find a candidate.
    pub fn has_selectable(&self, tried: &[SocketAddr], now_ms: u64) -> bool
    where
        T: Candidate,
    {
        self.items
            .iter()
            .any(|(c, w)| *w > 0 && c.usable(now_ms) && untried(c, tried))
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

fn untried<T: Candidate>(candidate: &T, tried: &[SocketAddr]) -> bool {
    candidate.address().is_some_and(|a| !tried.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Loaded(u16, u64);

    impl Candidate for Loaded {
        fn address(&self) -> Option<SocketAddr> {
            Some(SocketAddr::from(([127, 0, 0, 1], self.0)))
        }
        fn usable(&self, _: u64) -> bool {
            true
        }
    }

    #[test]
    fn p2c_takes_the_less_loaded_of_two_different_draws() {
        let servers = Weighted::new(vec![
            (Loaded(1, 5), 1),
            (Loaded(2, 0), 1),
            (Loaded(3, 9), 1),
            (Loaded(4, 0), 0),
        ]);
        let load = |s: &Loaded| s.1;
        // Every pair of draws: the first draw's rank, then the second among the others.
        let mut chosen = Vec::new();
        for a in 0..3 {
            for b in 0..2 {
                let mut draws = [a, b].into_iter();
                let mut random = |_: usize| draws.next().expect("two draws");
                let (_, server) = servers.select_p2c(&[], 0, load, &mut random).expect("one");
                chosen.push(server.0);
            }
        }
        // (1,2)->2 (1,3)->1 (2,1)->2 (2,3)->2 (3,1)->1 (3,2)->2; weight 0 never drawn.
        assert_eq!(chosen, [2, 1, 2, 2, 1, 2]);
        // One candidate left (the others tried): it, with a single draw.
        let tried = [
            SocketAddr::from(([127, 0, 0, 1], 1)),
            SocketAddr::from(([127, 0, 0, 1], 2)),
        ];
        let mut random = |n: usize| n - 1;
        let (_, only) = servers
            .select_p2c(&tried, 0, load, &mut random)
            .expect("one");
        assert_eq!(only.0, 3);
        let all: Vec<_> = (1..=4)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        assert!(servers.select_p2c(&all, 0, load, &mut random).is_none());
    }

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

    struct Server(SocketAddr, bool);

    impl Candidate for Server {
        fn address(&self) -> Option<SocketAddr> {
            Some(self.0)
        }
        fn usable(&self, _now_ms: u64) -> bool {
            self.1
        }
    }

    #[test]
    fn select_skips_tried_and_unusable_candidates() {
        let address = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let servers = Weighted::new(vec![
            (Server(address(1), true), 1),
            (Server(address(2), false), 1),
            (Server(address(3), true), 1),
        ]);
        for _ in 0..10 {
            let picked = servers.select(&[address(1)], 0).expect("one left").1 .0;
            assert_eq!(picked, address(3), "neither tried nor unusable");
        }
        assert!(servers.select(&[address(1), address(3)], 0).is_none());
        assert!(!servers.has_selectable(&[address(1), address(3)], 0));
        assert_eq!(
            servers
                .select_untried(&[address(1), address(3)])
                .map(|(i, s)| (i, s.0)),
            Some((1, address(2))),
            "unusable but untried"
        );
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
