//! Endpoint health. Passive: consecutive failed attempts take an endpoint (a Service
//! endpoint or a child gateway) out of rotation for a while. Active: a Service's
//! `healthCheck` probes each endpoint in the background and keeps a failing one out
//! until a check passes. Lock-free: a few atomics per endpoint.
//!
//! Times are milliseconds on a clock the caller supplies, so this stays free of clocks.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// A Service's active health check (Traefik's `healthCheck`), checked and defaulted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// `http`, `https` or `h2c`; the Service's scheme unless the check sets one.
    pub scheme: Option<crate::Scheme>,
    /// Path and query, starting with `/`.
    pub path: String,
    pub method: http::Method,
    /// The Host header sent; the endpoint's address unless set.
    pub hostname: Option<String>,
    /// The port checked; the endpoint's unless set.
    pub port: Option<u16>,
    /// The status a passing check answers; any 2xx or 3xx when unset.
    pub status: Option<u16>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub interval: Duration,
    /// Between checks of an endpoint that is down.
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
    pub follow_redirects: bool,
    /// For `https` checks: the TLS settings of the Service's ServersTransport (the
    /// defaults without one), so a check connects as the Service's requests do.
    pub tls: Option<std::sync::Arc<crate::ClientTls>>,
    /// For `https` checks: HTTP/1.1 only (the ServersTransport's `disableHTTP2`).
    pub disable_http2: bool,
}

impl HealthCheck {
    /// Whether a final answer with `status` passes.
    pub fn passes(&self, status: u16) -> bool {
        match self.status {
            Some(expected) => status == expected,
            None => (200..400).contains(&status),
        }
    }
}

/// When consecutive failures eject an endpoint, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Failed attempts in a row that eject (at least 1).
    pub failures: u32,
    pub ejection_time: Duration,
}

/// The passive-health state of one endpoint.
#[derive(Debug, Default)]
pub struct PassiveHealth {
    /// Failures since the last success or ejection.
    failures: AtomicU32,
    /// Out of rotation until this time; 0 when never ejected.
    ejected_until_ms: AtomicU64,
}

/// The verdict of one active health check on one address. Per address and check, not
/// per address: as in Traefik, where each service's balancer holds its own servers'
/// status, a check failing for one Service leaves the address in the rotation of a
/// Service that checks it otherwise (or not at all).
#[derive(Debug, Default)]
pub struct CheckHealth {
    failing: AtomicBool,
}

impl CheckHealth {
    /// Whether the last probe failed: the endpoint is out of rotation for the Services
    /// with this check.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Records a probe's verdict; true when it changed.
    pub fn set_failing(&self, failing: bool) -> bool {
        self.failing.swap(failing, Ordering::AcqRel) != failing
    }
}

impl PassiveHealth {
    /// Whether the endpoint is out of rotation at `now_ms`.
    pub fn ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until_ms.load(Ordering::Acquire)
    }

    /// Counts a failed attempt; true when this failure ejects an endpoint that was in
    /// rotation (so the caller can say so once).
    pub fn failed(&self, now_ms: u64, policy: EjectionPolicy) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures < policy.failures.max(1) {
            return false;
        }
        let until = now_ms.saturating_add(policy.ejection_time.as_millis() as u64);
        let previous = self.ejected_until_ms.swap(until, Ordering::AcqRel);
        self.failures.store(0, Ordering::Release);
        previous <= now_ms
    }

    /// A response came back: the run of failures ends.
    pub fn succeeded(&self) {
        // Read first: a shared cache line is written only when there is something to reset.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Release);
        }
    }

    /// Ends an ejection early (an active health check passed).
    pub fn end_ejection(&self) {
        self.ejected_until_ms.store(0, Ordering::Release);
    }

    /// How long the ejection still lasts at `now_ms`.
    pub fn ejected_for(&self, now_ms: u64) -> Option<Duration> {
        let until = self.ejected_until_ms.load(Ordering::Acquire);
        (until > now_ms).then(|| Duration::from_millis(until - now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: EjectionPolicy = EjectionPolicy {
        failures: 3,
        ejection_time: Duration::from_secs(10),
    };

    #[test]
    fn consecutive_failures_eject_for_the_ejection_time() {
        let health = PassiveHealth::default();
        assert!(!health.failed(1_000, POLICY));
        assert!(!health.failed(1_000, POLICY));
        assert!(!health.ejected(1_000));
        assert!(health.failed(1_000, POLICY), "the third failure ejects");
        assert!(health.ejected(1_000));
        assert!(health.ejected(10_999));
        assert_eq!(health.ejected_for(6_000), Some(Duration::from_secs(5)));
        assert!(
            !health.ejected(11_000),
            "back in rotation after the ejection time"
        );
        assert_eq!(health.ejected_for(11_000), None);
    }

    #[test]
    fn a_success_ends_the_run_of_failures() {
        let health = PassiveHealth::default();
        health.failed(0, POLICY);
        health.failed(0, POLICY);
        health.succeeded();
        assert!(!health.failed(0, POLICY));
        assert!(!health.ejected(0));
    }

    #[test]
    fn failing_while_ejected_extends_without_reporting_again() {
        let health = PassiveHealth::default();
        let once = EjectionPolicy {
            failures: 1,
            ..POLICY
        };
        assert!(health.failed(0, once));
        assert!(
            !health.failed(5_000, once),
            "already ejected: not a new ejection"
        );
        assert!(health.ejected(14_000), "extended from the later failure");
        health.end_ejection();
        assert!(!health.ejected(5_000));
    }

    #[test]
    fn a_check_verdict_says_when_it_turns() {
        let check = CheckHealth::default();
        assert!(!check.failing(), "in rotation until a probe fails");
        assert!(check.set_failing(true), "the first failure turns it");
        assert!(!check.set_failing(true), "a second one changes nothing");
        assert!(check.failing());
        assert!(check.set_failing(false));
        assert!(!check.failing());
    }

    #[test]
    fn a_check_passes_on_its_status_or_any_2xx_3xx() {
        let mut check = HealthCheck {
            scheme: None,
            path: "/health".into(),
            method: http::Method::GET,
            hostname: None,
            port: None,
            status: None,
            headers: Vec::new(),
            interval: Duration::from_secs(30),
            unhealthy_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            follow_redirects: true,
            tls: None,
            disable_http2: false,
        };
        for (status, passes) in [
            (200, true),
            (204, true),
            (302, true),
            (199, false),
            (404, false),
            (503, false),
        ] {
            assert_eq!(check.passes(status), passes, "{status}");
        }
        check.status = Some(204);
        assert!(check.passes(204));
        assert!(!check.passes(200));
    }
}
