//! `rateLimit` and `inFlightReq`.

use std::time::Duration;

use traverse_api::middleware::SourceCriterion as SourceCriterionSpec;
use traverse_api::support::MAX_RETRY_ATTEMPTS;
use traverse_api::{IntOrString, MiddlewareSpec};

use super::access::ip_strategy;
use super::{header_name, Built};
use crate::model::middleware::{CircuitBreaker, Expression, Retry};
use crate::model::{InFlightReq, IpStrategy, Middleware, Origin, RateLimit, SourceCriterion};

const SECOND_NS: u64 = 1_000_000_000;

pub(super) fn rate_limit(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(config) = spec.rate_limit.as_ref() else {
        return Err("spec.rateLimit is empty".into());
    };
    let average = config.average.unwrap_or(0);
    if average < 0 {
        return Err(format!("spec.rateLimit.average: {average} is negative"));
    }
    let period_ns = match &config.period {
        None => SECOND_NS,
        Some(IntOrString::Int(seconds)) if *seconds < 0 => {
            return Err(format!("spec.rateLimit.period: {seconds} is negative"))
        }
        Some(IntOrString::Int(seconds)) => u64::try_from(*seconds).unwrap_or(0) * SECOND_NS,
        Some(IntOrString::String(text)) => go_duration(text).ok_or_else(|| {
            format!("spec.rateLimit.period: {text:?} is not a duration (e.g. 1s, 1m)")
        })?,
    };
    let period_ns = if period_ns == 0 { SECOND_NS } else { period_ns };
    let source = source_criterion(
        config.source_criterion.as_ref(),
        "spec.rateLimit.sourceCriterion",
        SourceCriterion::Ip(IpStrategy::RemoteAddr { ipv6_subnet: None }),
    )?;
    if average == 0 {
        // No limit, as in Traefik: the route runs no step for it.
        return Ok(Vec::new());
    }
    let average = average.unsigned_abs();
    let burst = config.burst.unwrap_or(1).max(1).unsigned_abs();
    // Traefik holds a request that fits the rate within half an interval (500ms
    // below one request per second) rather than refusing it.
    let per_second = average as f64 * SECOND_NS as f64 / period_ns as f64;
    let max_delay_ns = if per_second < 1.0 {
        SECOND_NS / 2
    } else {
        SECOND_NS / (2 * per_second as u64)
    };
    let interval_ns = (period_ns / average).max(1);
    Ok(vec![Middleware::RateLimit(RateLimit::new(
        origin,
        interval_ns,
        burst,
        max_delay_ns,
        source,
    ))])
}

pub(super) fn retry(spec: &MiddlewareSpec) -> Built {
    let Some(config) = spec.retry.as_ref() else {
        return Err("spec.retry is empty".into());
    };
    let attempts = match config.attempts {
        // More is reported as a warning and capped.
        Some(attempts) if attempts > 0 => {
            u32::try_from(attempts.min(MAX_RETRY_ATTEMPTS)).unwrap_or(1)
        }
        Some(attempts) => {
            return Err(format!(
                "spec.retry.attempts: {attempts} must be at least 1"
            ))
        }
        None => return Err("spec.retry.attempts is required".into()),
    };
    let initial_interval_ns = match &config.initial_interval {
        None => 0,
        Some(IntOrString::Int(seconds)) => u64::try_from(*seconds)
            .map_err(|_| format!("spec.retry.initialInterval: {seconds} is negative"))?
            .saturating_mul(SECOND_NS),
        Some(IntOrString::String(text)) => go_duration(text).ok_or_else(|| {
            format!("spec.retry.initialInterval: {text:?} is not a duration (e.g. 100ms)")
        })?,
    };
    Ok(vec![Middleware::Retry(Retry {
        attempts,
        initial_interval: Duration::from_nanos(initial_interval_ns),
    })])
}

pub(super) fn circuit_breaker(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(config) = spec.circuit_breaker.as_ref() else {
        return Err("spec.circuitBreaker is empty".into());
    };
    let text = config
        .expression
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .ok_or("spec.circuitBreaker.expression is required")?;
    let expression =
        Expression::parse(text).map_err(|why| format!("spec.circuitBreaker.expression: {why}"))?;
    let millis = |value: &Option<IntOrString>, field: &str, default_ms: u64| match value {
        None => Ok(default_ms),
        Some(IntOrString::Int(seconds)) => u64::try_from(*seconds)
            .map(|s| s.saturating_mul(1000))
            .map_err(|_| format!("spec.circuitBreaker.{field}: {seconds} is negative")),
        Some(IntOrString::String(text)) => {
            go_duration(text).map(|ns| ns / 1_000_000).ok_or_else(|| {
                format!("spec.circuitBreaker.{field}: {text:?} is not a duration (e.g. 10s)")
            })
        }
    };
    let response_code = match config.response_code {
        None => 503,
        Some(code) if (100..=599).contains(&code) => u16::try_from(code).unwrap_or(503),
        Some(code) => {
            return Err(format!(
                "spec.circuitBreaker.responseCode: {code} is not an HTTP status"
            ))
        }
    };
    Ok(vec![Middleware::CircuitBreaker(CircuitBreaker {
        origin,
        expression,
        check_period_ms: millis(&config.check_period, "checkPeriod", 100)?.max(1),
        fallback_ms: millis(&config.fallback_duration, "fallbackDuration", 10_000)?,
        recovery_ms: millis(&config.recovery_duration, "recoveryDuration", 10_000)?,
        response_code,
        circuit: Default::default(),
    })])
}

pub(super) fn in_flight_req(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(config) = spec.in_flight_req.as_ref() else {
        return Err("spec.inFlightReq is empty".into());
    };
    let amount = match config.amount {
        Some(amount) if amount > 0 => amount.unsigned_abs(),
        Some(amount) => {
            return Err(format!(
                "spec.inFlightReq.amount: {amount} must be at least 1"
            ))
        }
        None => return Err("spec.inFlightReq.amount is required".into()),
    };
    let source = source_criterion(
        config.source_criterion.as_ref(),
        "spec.inFlightReq.sourceCriterion",
        SourceCriterion::Host,
    )?;
    Ok(vec![Middleware::InFlightReq(InFlightReq::new(
        origin, amount, source,
    ))])
}

/// One criterion at most, as Traefik requires; none is `default`.
fn source_criterion(
    config: Option<&SourceCriterionSpec>,
    field: &str,
    default: SourceCriterion,
) -> Result<SourceCriterion, String> {
    let Some(config) = config else {
        return Ok(default);
    };
    let header = config
        .request_header_name
        .as_deref()
        .filter(|h| !h.is_empty());
    let host = config.request_host == Some(true);
    match (config.ip_strategy.as_ref(), header, host) {
        (None, None, false) => Ok(default),
        (Some(strategy), None, false) => Ok(SourceCriterion::Ip(ip_strategy(
            Some(strategy),
            &format!("{field}.ipStrategy"),
        )?)),
        (None, Some(name), false) => Ok(SourceCriterion::Header(header_name(
            name,
            &format!("{field}.requestHeaderName"),
        )?)),
        (None, None, true) => Ok(SourceCriterion::Host),
        _ => Err(format!(
            "{field}: ipStrategy, requestHeaderName and requestHost are mutually exclusive"
        )),
    }
}

/// A Go duration (`300ms`, `1.5s`, `1m30s`) in nanoseconds.
pub(in crate::translate) fn go_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (!text.is_empty()).then_some(total as u64)
}
