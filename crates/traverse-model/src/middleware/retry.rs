//! `retry`: how many attempts a request gets, and the wait before each retry.

use std::time::Duration;

/// Traefik `retry`, validated: up to `attempts` attempts in all, retried only when an
/// attempt failed before the upstream received the request (a network error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// At least 1.
    pub attempts: u32,
    /// The first wait; zero retries at once.
    pub initial_interval: Duration,
}

impl Retry {
    /// The wait before attempt `attempts + 1`, given `jitter` in `[0, 1)`.
    ///
    /// Traefik's exponential backoff: the wait starts at `initialInterval` and grows so
    /// that the last one is twice the first (factor `2^(1/(attempts-1))` per retry), each
    /// randomized by ±50%.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        if self.initial_interval.is_zero() || self.attempts < 2 || attempts == 0 {
            return Duration::ZERO;
        }
        let factor = 2f64.powf(1.0 / f64::from(self.attempts - 1));
        let nominal = self.initial_interval.as_secs_f64() * factor.powi(attempts as i32 - 1);
        Duration::from_secs_f64(nominal * (0.5 + jitter.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_over_the_attempts_with_half_jitter() {
        let retry = Retry {
            attempts: 3,
            initial_interval: Duration::from_millis(100),
        };
        let ms = |attempts, jitter| retry.delay(attempts, jitter).as_secs_f64() * 1000.0;
        // Middle jitter: the nominal series, 100ms then 141ms; the next would be 200ms.
        assert!((ms(1, 0.5) - 100.0).abs() < 0.01);
        assert!((ms(2, 0.5) - 141.42).abs() < 0.01);
        assert!((ms(3, 0.5) - 200.0).abs() < 0.01);
        // ±50%.
        assert!((ms(1, 0.0) - 50.0).abs() < 0.01);
        assert!((ms(1, 0.999_999) - 150.0).abs() < 0.01);
        assert_eq!(
            retry.delay(0, 0.5),
            Duration::ZERO,
            "the first attempt waits not"
        );
    }

    #[test]
    fn no_interval_or_a_single_attempt_retries_at_once() {
        let at_once = Retry {
            attempts: 4,
            initial_interval: Duration::ZERO,
        };
        assert_eq!(at_once.delay(2, 0.7), Duration::ZERO);
        let single = Retry {
            attempts: 1,
            initial_interval: Duration::from_secs(1),
        };
        assert_eq!(single.delay(1, 0.7), Duration::ZERO);
    }
}
