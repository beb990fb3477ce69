//! Settings of the gateway process: its cluster identity, upstream connections, worker
//! threads and shutdown.

use std::time::Duration;

use serde::Deserialize;

use crate::PassiveHealthCheck;

/// Identity of the cluster this gateway runs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Reported as `k8s.cluster.name` and used to tell clusters apart across a trace.
    pub name: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: "local".to_owned(),
        }
    }
}

/// How Traverse talks to upstream servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Upstream {
    /// TCP (and TLS) connect timeout; exceeded → 502.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the next read from the upstream (headers or body); exceeded → 504.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest wait for the upstream to accept a write.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an idle pooled upstream connection is kept for reuse.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Idle upstream connections kept per process, across all upstreams.
    pub keepalive_pool_size: usize,
    /// Passive ejection of Service endpoints that fail requests (the same settings as
    /// `multicluster.passiveHealthCheck` for children).
    pub passive_health_check: PassiveHealthCheck,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            keepalive_pool_size: 256,
            passive_health_check: PassiveHealthCheck::default(),
        }
    }
}

/// Process-level settings of the data plane.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    /// Worker threads per entrypoint; `0` means one per available core.
    pub threads: usize,
}

/// Graceful shutdown on SIGTERM.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Shutdown {
    /// Longest time in-flight requests get to finish after SIGTERM. Keep it below
    /// the pod's `terminationGracePeriodSeconds`.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// After SIGTERM, keep accepting for this long while readiness fails and parents are
    /// told this child is draining, so traffic moves away before listeners close.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            grace_period: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
        }
    }
}
