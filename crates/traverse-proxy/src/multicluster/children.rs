//! The parent side: the children, what each advertises, their health, and the
//! membership the request path picks from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use traverse_config::Multicluster;
use traverse_model::{Candidate, EjectionPolicy, PassiveHealth, UplinkRef, Weighted};

use super::tls::ChildTls;
use super::Advertisement;
use crate::clock::now_ms;

/// Every configured child, and which of them serve each uplink.
#[derive(Debug)]
pub struct Children {
    children: Vec<Arc<Child>>,
    membership: ArcSwap<Membership>,
    passive: EjectionPolicy,
}

/// Uplink (`namespace`, `name`) → the children advertising it, weighted. Ordered, so an
/// ambiguous Traefik Hub name always resolves to the same uplink.
#[derive(Debug, Default)]
struct Membership {
    uplinks: BTreeMap<(String, String), Arc<Weighted<Member>>>,
}

/// One child serving one uplink.
#[derive(Debug, Clone)]
pub struct Member {
    pub child: Arc<Child>,
    /// `namespace/name`, as reported in spans.
    pub uplink: Arc<str>,
}

/// A child gateway as the parent knows it.
#[derive(Debug)]
pub struct Child {
    pub name: Arc<str>,
    /// `host:port` as configured.
    pub address: String,
    /// `None`: cleartext.
    pub tls: Option<Arc<ChildTls>>,
    resolved: ArcSwapOption<SocketAddr>,
    /// The last advertisement received, kept while the stream is down.
    known: ArcSwapOption<Known>,
    connected: AtomicBool,
    healthy: AtomicBool,
    checks_passed: AtomicU32,
    checks_failed: AtomicU32,
    passive: PassiveHealth,
}

/// What a child advertised, with its cluster name ready to attach to spans.
#[derive(Debug)]
struct Known {
    cluster: Arc<str>,
    advertisement: Advertisement,
}

impl Children {
    /// The children of `config`, none of them known yet; fails on unusable TLS files.
    pub fn new(config: &Multicluster) -> Result<Arc<Self>, String> {
        let children = config
            .children
            .iter()
            .map(|(name, child)| {
                let tls = child
                    .tls
                    .as_ref()
                    .map(|tls| ChildTls::load(tls, &child.address).map(Arc::new))
                    .transpose()
                    .map_err(|e| format!("multicluster.children.{name}.tls: {e}"))?;
                Ok(Arc::new(Child {
                    name: name.as_str().into(),
                    address: child.address.clone(),
                    tls,
                    resolved: ArcSwapOption::const_empty(),
                    known: ArcSwapOption::const_empty(),
                    connected: AtomicBool::new(false),
                    healthy: AtomicBool::new(true),
                    checks_passed: AtomicU32::new(0),
                    checks_failed: AtomicU32::new(0),
                    passive: PassiveHealth::default(),
                }))
            })
            .collect::<Result<_, String>>()?;
        Ok(Arc::new(Children {
            children,
            membership: ArcSwap::default(),
            passive: EjectionPolicy {
                failures: config.passive_health_check.failures,
                ejection_time: config.passive_health_check.ejection_time,
            },
        }))
    }

    /// Every child, in configuration order.
    pub fn all(&self) -> &[Arc<Child>] {
        &self.children
    }

    /// The children serving `uplink`, or `None` when no child advertises it. A scan of
    /// the (few) advertised uplinks, allocation-free, for both forms of reference.
    pub fn members(&self, uplink: &UplinkRef) -> Option<Arc<Weighted<Member>>> {
        self.membership
            .load()
            .uplinks
            .iter()
            .find(|((namespace, name), _)| uplink.matches(namespace, name))
            .map(|(_, members)| Arc::clone(members))
    }

    /// Whether `member` may take a new request now.
    pub fn available(&self, member: &Member) -> bool {
        member.usable(now_ms())
    }

    /// Records what `child` advertised and republishes the membership.
    pub fn advertised(&self, child: &Child, advertisement: Advertisement) {
        let previous = child.known.load_full();
        if previous.as_ref().map(|k| &k.advertisement) == Some(&advertisement) {
            return;
        }
        if previous.as_ref().map(|k| k.advertisement.draining) != Some(advertisement.draining)
            && advertisement.draining
        {
            tracing::info!(child = %child.name, cluster = %advertisement.cluster, "child is draining; no new requests go to it");
        }
        child.known.store(Some(Arc::new(Known {
            cluster: advertisement.cluster.as_str().into(),
            advertisement,
        })));
        self.rebuild();
    }

    fn rebuild(&self) {
        let mut uplinks: BTreeMap<(String, String), Vec<(Member, u32)>> = BTreeMap::new();
        for child in &self.children {
            let Some(known) = child.known.load_full() else {
                continue;
            };
            for uplink in &known.advertisement.uplinks {
                let weight = if uplink.ready { uplink.weight } else { 0 };
                uplinks
                    .entry((uplink.namespace.clone(), uplink.name.clone()))
                    .or_default()
                    .push((
                        Member {
                            child: Arc::clone(child),
                            uplink: format!("{}/{}", uplink.namespace, uplink.name).into(),
                        },
                        weight,
                    ));
            }
        }
        self.membership.store(Arc::new(Membership {
            uplinks: uplinks
                .into_iter()
                .map(|(key, members)| (key, Arc::new(Weighted::new(members))))
                .collect(),
        }));
    }

    /// A request to `child` failed before any response: after `failures` in a row the
    /// child is ejected for the configured time.
    pub fn attempt_failed(&self, child: &Child) {
        if child.passive.failed(now_ms(), self.passive) {
            tracing::warn!(child = %child.name, failures = self.passive.failures, ejection = ?self.passive.ejection_time, "child ejected after failed requests");
        }
    }

    /// A response came back from `child`.
    pub fn attempt_succeeded(&self, child: &Child) {
        child.passive.succeeded();
    }

    /// Records an active health check; `thresholds` are (unhealthy, healthy).
    pub fn checked(&self, child: &Child, passed: bool, thresholds: (u32, u32)) {
        let (unhealthy, healthy) = thresholds;
        if passed {
            child.checks_failed.store(0, Ordering::Release);
            let passed = child.checks_passed.fetch_add(1, Ordering::AcqRel) + 1;
            if passed >= healthy && !child.healthy.swap(true, Ordering::AcqRel) {
                tracing::info!(child = %child.name, "child healthy again");
            }
            if passed >= healthy {
                // A passing check ends a passive ejection early.
                child.passive.end_ejection();
            }
        } else {
            child.checks_passed.store(0, Ordering::Release);
            let failed = child.checks_failed.fetch_add(1, Ordering::AcqRel) + 1;
            if failed >= unhealthy && child.healthy.swap(false, Ordering::AcqRel) {
                tracing::warn!(child = %child.name, failed, "child unhealthy; out of rotation");
            }
        }
    }

    /// The admin API's view of every child.
    pub fn view(&self) -> Vec<ChildView> {
        let now = now_ms();
        self.children
            .iter()
            .map(|child| {
                let known = child.known.load_full();
                ChildView {
                    name: child.name.to_string(),
                    address: child.address.clone(),
                    resolved: child.resolved.load_full().map(|a| a.to_string()),
                    connected: child.connected.load(Ordering::Acquire),
                    healthy: child.healthy.load(Ordering::Acquire),
                    ejected_for: child.passive.ejected_for(now).map(|d| d.as_secs_f64()),
                    available: child.available(now),
                    advertisement: known.map(|k| k.advertisement.clone()),
                }
            })
            .collect()
    }
}

/// One child in `/api/multicluster`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildView {
    pub name: String,
    pub address: String,
    pub resolved: Option<String>,
    /// The advertisement stream is up.
    pub connected: bool,
    /// Active health checks pass.
    pub healthy: bool,
    /// Seconds left of a passive ejection.
    pub ejected_for: Option<f64>,
    /// Takes new requests: healthy, not ejected, not draining, address resolved.
    pub available: bool,
    pub advertisement: Option<Advertisement>,
}

impl Candidate for Member {
    fn address(&self) -> Option<SocketAddr> {
        self.child.socket_address()
    }

    fn usable(&self, now_ms: u64) -> bool {
        self.child.available(now_ms)
    }
}

impl Child {
    fn available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Acquire)
            && !self.passive.ejected(now_ms)
            && self.resolved.load().is_some()
            && self
                .known
                .load()
                .as_ref()
                .is_some_and(|k| !k.advertisement.draining)
    }

    /// The address to connect to, once resolved.
    pub fn socket_address(&self) -> Option<SocketAddr> {
        self.resolved.load().as_deref().copied()
    }

    /// The cluster the child advertised, for spans.
    pub fn cluster(&self) -> Option<Arc<str>> {
        self.known.load().as_ref().map(|k| Arc::clone(&k.cluster))
    }

    pub(super) fn set_resolved(&self, address: SocketAddr) {
        if self.socket_address() != Some(address) {
            self.resolved.store(Some(Arc::new(address)));
        }
    }

    pub(super) fn set_connected(&self, connected: bool) -> bool {
        self.connected.swap(connected, Ordering::AcqRel)
    }

    /// The version of the last advertisement, to resume the stream from.
    pub(super) fn version(&self) -> Option<String> {
        self.known
            .load()
            .as_ref()
            .map(|k| k.advertisement.version.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multicluster::AdvertisedUplinkView;

    fn children() -> Arc<Children> {
        let config: Multicluster = two_children_config();
        Children::new(&config).expect("children")
    }

    /// Two children, a and b, with default health settings.
    fn two_children_config() -> Multicluster {
        let mut config = Multicluster::default();
        for (name, port) in [("a", 1), ("b", 2)] {
            config.children.insert(
                name.into(),
                traverse_config::Child {
                    address: format!("127.0.0.1:{port}"),
                    tls: None,
                },
            );
        }
        config.passive_health_check.failures = 2;
        config
    }

    fn advertisement(cluster: &str, weight: u32, ready: bool, draining: bool) -> Advertisement {
        Advertisement {
            version: format!("{cluster}.{weight}.{ready}.{draining}"),
            cluster: cluster.into(),
            draining,
            uplinks: vec![AdvertisedUplinkView {
                namespace: "apps".into(),
                name: "shop".into(),
                weight,
                ready,
            }],
        }
    }

    fn shares(children: &Children, picks: usize) -> std::collections::HashMap<String, usize> {
        let members = children
            .members(&UplinkRef::Hub("apps-shop".into()))
            .expect("members");
        let mut counts = std::collections::HashMap::new();
        for _ in 0..picks {
            if let Some(member) = members.pick_where(|m| children.available(m)) {
                *counts.entry(member.child.name.to_string()).or_default() += 1;
            }
        }
        counts
    }

    fn start(children: &Children) {
        for (i, child) in children.all().iter().enumerate() {
            child.set_resolved(SocketAddr::from(([127, 0, 0, 1], i as u16 + 1)));
        }
    }

    #[test]
    fn weights_come_from_advertisements() {
        let children = children();
        start(&children);
        assert!(children
            .members(&UplinkRef::Hub("apps-shop".into()))
            .is_none());
        children.advertised(&children.all()[0], advertisement("eu", 3, true, false));
        children.advertised(&children.all()[1], advertisement("us", 1, true, false));
        let counts = shares(&children, 400);
        assert_eq!((counts["a"], counts["b"]), (300, 100));
        assert_eq!(children.all()[1].cluster().as_deref(), Some("us"));
        let named = UplinkRef::Named {
            namespace: "apps".into(),
            name: "shop".into(),
        };
        assert!(children.members(&named).is_some());
    }

    #[test]
    fn draining_not_ready_unhealthy_and_ejected_children_get_nothing() {
        let children = children();
        start(&children);
        let (a, b) = (&children.all()[0], &children.all()[1]);
        children.advertised(b, advertisement("us", 1, true, false));
        for (advert, why) in [
            (advertisement("eu", 1, true, true), "draining"),
            (advertisement("eu", 1, false, false), "not ready"),
        ] {
            children.advertised(a, advert);
            assert_eq!(shares(&children, 50).get("a"), None, "{why}");
        }
        children.advertised(a, advertisement("eu", 1, true, false));
        assert!(shares(&children, 50)["a"] > 0);

        children.checked(a, false, (2, 1));
        assert!(
            shares(&children, 10)["a"] > 0,
            "one failed check is not enough"
        );
        children.checked(a, false, (2, 1));
        assert_eq!(shares(&children, 50).get("a"), None, "unhealthy");
        children.checked(a, true, (2, 1));
        assert!(shares(&children, 50)["a"] > 0, "healthy again");

        children.attempt_failed(a);
        assert!(
            shares(&children, 10)["a"] > 0,
            "below the failure threshold"
        );
        children.attempt_failed(a);
        assert_eq!(shares(&children, 50).get("a"), None, "ejected");
        assert!(children.view()[0].ejected_for.is_some());
        children.checked(a, true, (2, 1));
        assert!(
            shares(&children, 50)["a"] > 0,
            "a passing check ends the ejection"
        );
    }
}
