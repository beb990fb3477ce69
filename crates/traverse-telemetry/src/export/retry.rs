//! Retries with exponential backoff and full jitter, bounded by a deadline.

use std::time::Duration;

use tokio::time::Instant;

use super::{Accepted, ExportError, OtlpExporter, OtlpRequest};

/// How hard [`send_with_retry`] tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included; 0 counts as 1.
    pub max_attempts: u32,
    /// Upper bound of the first jittered delay; doubles on each retry.
    pub initial_backoff: Duration,
    /// Upper bound of any jittered delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the delay before retry number `retry` (1 for the first
    /// retry): `initial_backoff * 2^(retry - 1)`, capped at `max_backoff`.
    fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The delay before retry number `retry`. A delay asked for by the
    /// collector is used as is: it knows when it will recover, and waiting
    /// less would only earn another rejection. Otherwise "full jitter": a
    /// uniform pick in `[0, cap]`, which spreads out exporters that failed
    /// together.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(delay) => delay,
            None => full_jitter(self.backoff_cap(retry)),
        }
    }
}

fn full_jitter(cap: Duration) -> Duration {
    let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=cap_nanos))
}

/// Sends `request`, retrying [`ExportError::Retryable`] failures.
///
/// Nothing runs past `deadline`: an attempt still in flight then is abandoned
/// (and reported as retryable), and when the next delay would end after it the
/// last error is returned without waiting. Returns the number of attempts made
/// alongside the outcome.
pub async fn send_with_retry<R: OtlpRequest>(
    exporter: &OtlpExporter,
    request: &R,
    policy: &RetryPolicy,
    deadline: Instant,
) -> (u32, Result<Accepted, ExportError>) {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = tokio::time::timeout_at(deadline, exporter.send(request))
            .await
            .unwrap_or_else(|_| {
                Err(ExportError::retryable(
                    "export deadline reached during the attempt",
                ))
            });
        let retry_after = match &result {
            Err(ExportError::Retryable { retry_after, .. }) if attempts < max_attempts => {
                *retry_after
            }
            _ => return (attempts, result),
        };
        let wake = Instant::now().checked_add(policy.delay(attempts, retry_after));
        match wake {
            Some(wake) if wake < deadline => tokio::time::sleep_until(wake).await,
            _ => return (attempts, result),
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;
    use crate::export::{Compression, ExporterOptions, Protocol, TlsOptions};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn default_policy() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.initial_backoff, Duration::from_millis(100));
        assert_eq!(policy.max_backoff, Duration::from_secs(5));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = policy();
        let caps: Vec<_> = (1..=6).map(|retry| policy.backoff_cap(retry)).collect();
        let expected = [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis);
        assert_eq!(caps, expected);
        assert_eq!(policy.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_the_cap() {
        let policy = policy();
        for retry in 1..=8 {
            let cap = policy.backoff_cap(retry);
            for _ in 0..200 {
                assert!(policy.delay(retry, None) <= cap);
            }
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
        assert!(full_jitter(Duration::MAX) <= Duration::MAX);
    }

    #[test]
    fn jitter_is_spread_out() {
        let cap = Duration::from_millis(1000);
        let picks: Vec<_> = (0..200).map(|_| full_jitter(cap)).collect();
        assert!(picks.iter().any(|d| *d < cap / 4));
        assert!(picks.iter().any(|d| *d > cap * 3 / 4));
    }

    #[test]
    fn retry_after_is_used_exactly() {
        let policy = policy();
        assert_eq!(policy.delay(1, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }

    #[tokio::test]
    async fn deadline_ends_a_hanging_attempt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
        let exporter = OtlpExporter::new(ExporterOptions {
            protocol: Protocol::HttpProtobuf,
            endpoint,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            compression: Compression::None,
            tls: TlsOptions::default(),
        })
        .expect("exporter");
        let started = Instant::now();

        // The listener never answers, so only the deadline ends the attempt.
        let (attempts, result) = send_with_retry(
            &exporter,
            &ExportTraceServiceRequest::default(),
            &policy(),
            started + Duration::from_millis(100),
        )
        .await;

        assert_eq!(attempts, 1);
        assert!(
            matches!(result, Err(ExportError::Retryable { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
