//! `retry`: more attempts for a request whose attempt failed before the upstream received
//! it (connection refused, reset or timed out while connecting), after a backoff. Each
//! attempt is its own CLIENT span, as the exchange records every attempt.

use std::time::Duration;

use traverse_model::middleware::Retry;

use super::Step;

impl Step for Retry {
    fn may_retry(&self, attempts: u32) -> Option<bool> {
        Some(attempts < self.attempts)
    }

    fn retry_delay(&self, attempts: u32) -> Option<Duration> {
        Some(self.delay(attempts, fastrand::f64()))
    }
}
