//! Multi-cluster topology: this gateway's role, and a parent's children.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::tls::ChildTls;

/// What this gateway is in a multi-cluster topology.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A single gateway in front of workloads; no uplinks.
    #[default]
    Standalone,
    /// Terminates client ingress and forwards over uplinks to children.
    Parent,
    /// Routes to workloads; serves parents on its uplink entrypoint.
    Child,
}

impl Role {
    /// The lowercase name used in config, telemetry and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Parent => "parent",
            Role::Child => "child",
        }
    }
}

/// The child gateways a parent forwards to, and how it judges their health.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Multicluster {
    /// Child gateways by name (the name reported as `traverse.child`).
    pub children: BTreeMap<String, Child>,
    /// Header carrying this gateway's cluster name to its children.
    pub source_cluster_header: String,
    /// Most uplink hops a request may take; one more is answered 508 (a forwarding loop).
    pub max_hops: u32,
    pub health_check: ChildHealthCheck,
    pub passive_health_check: PassiveHealthCheck,
}

impl Default for Multicluster {
    fn default() -> Self {
        Multicluster {
            children: BTreeMap::new(),
            source_cluster_header: "X-Source-Cluster".into(),
            max_hops: 3,
            health_check: ChildHealthCheck::default(),
            passive_health_check: PassiveHealthCheck::default(),
        }
    }
}

/// One child gateway: the address of its uplink entrypoint. `address` is required, and
/// `tls` is absent unless given, so there is no default to state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Child {
    /// `host:port` of the child's uplink entrypoint, e.g. `child-a.example.com:9443`.
    pub address: String,
    /// Speak TLS to the child (mutual TLS when `cert` and `key` are set).
    pub tls: Option<ChildTls>,
}

/// Active health checks of children, on their uplink entrypoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ChildHealthCheck {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failed checks that take a child out of rotation.
    pub unhealthy_threshold: u32,
    /// Consecutive successful checks that put it back.
    pub healthy_threshold: u32,
}

impl Default for ChildHealthCheck {
    fn default() -> Self {
        ChildHealthCheck {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            unhealthy_threshold: 2,
            healthy_threshold: 1,
        }
    }
}

/// Passive ejection: endpoints (or children) that fail requests are taken out of rotation
/// for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PassiveHealthCheck {
    /// Consecutive failed attempts (connect errors, or errors before a response) that eject.
    pub failures: u32,
    /// How long an ejected endpoint gets no requests (for a child, an active check
    /// passing ends it early).
    #[serde(with = "humantime_serde")]
    pub ejection_time: Duration,
}

impl Default for PassiveHealthCheck {
    fn default() -> Self {
        PassiveHealthCheck {
            failures: 3,
            ejection_time: Duration::from_secs(10),
        }
    }
}
