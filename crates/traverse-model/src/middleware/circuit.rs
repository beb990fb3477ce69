//! `circuitBreaker`: Traefik's expression over the last ten seconds of a route's
//! responses, and the breaker's states (standby, tripped, recovering).
//!
//! Responses are counted in ten one-second buckets of atomic counters, so recording
//! and checking take no lock; a bucket is reset by whichever request first sees it
//! stale, so a few counts may be lost at a second's turn (the figures are ratios over
//! thousands of requests, as Traefik's are).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use super::Origin;

/// One term of an expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Share of responses that were 502 or 504 (the upstream could not be reached).
    NetworkErrorRatio,
    /// Responses with a status in `[a, b)` over those in `[c, d)`.
    ResponseCodeRatio(u16, u16, u16, u16),
    /// The latency at quantile `q` (0-100), in milliseconds.
    LatencyAtQuantileMs(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

/// A parsed `expression`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    Compare(Metric, Comparison, f64),
    And(Box<Expression>, Box<Expression>),
    Or(Box<Expression>, Box<Expression>),
}

impl Expression {
    /// Parses Traefik's syntax, e.g. `NetworkErrorRatio() > 0.30 || LatencyAtQuantileMS(50.0) > 100`.
    pub fn parse(text: &str) -> Result<Expression, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expression = parser.or()?;
        match parser.tokens.get(parser.at) {
            None => Ok(expression),
            Some(token) => Err(format!("unexpected {token:?}")),
        }
    }

    /// Whether the expression holds over `stats`.
    pub fn holds(&self, stats: &Stats) -> bool {
        match self {
            Expression::And(a, b) => a.holds(stats) && b.holds(stats),
            Expression::Or(a, b) => a.holds(stats) || b.holds(stats),
            Expression::Compare(metric, comparison, bound) => {
                let value = stats.value(*metric);
                match comparison {
                    Comparison::Greater => value > *bound,
                    Comparison::GreaterOrEqual => value >= *bound,
                    Comparison::Less => value < *bound,
                    Comparison::LessOrEqual => value <= *bound,
                    Comparison::Equal => value == *bound,
                    Comparison::NotEqual => value != *bound,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Number(f64),
    Open,
    Close,
    Comma,
    And,
    Or,
    Compare(Comparison),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while let Some(c) = rest.chars().next() {
        let (token, len) = match c {
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            _ if rest.starts_with("&&") => (Token::And, 2),
            _ if rest.starts_with("||") => (Token::Or, 2),
            _ if rest.starts_with(">=") => (Token::Compare(Comparison::GreaterOrEqual), 2),
            _ if rest.starts_with("<=") => (Token::Compare(Comparison::LessOrEqual), 2),
            _ if rest.starts_with("==") => (Token::Compare(Comparison::Equal), 2),
            _ if rest.starts_with("!=") => (Token::Compare(Comparison::NotEqual), 2),
            '>' => (Token::Compare(Comparison::Greater), 1),
            '<' => (Token::Compare(Comparison::Less), 1),
            _ if c.is_ascii_digit() || c == '.' => {
                let len = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let number = rest[..len]
                    .parse()
                    .map_err(|_| format!("{:?} is not a number", &rest[..len]))?;
                (Token::Number(number), len)
            }
            _ if c.is_ascii_alphabetic() => {
                let len = rest
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(rest.len());
                (Token::Name(rest[..len].to_owned()), len)
            }
            _ => return Err(format!("unexpected character {c:?}")),
        };
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Expression, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Expression::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expression, String> {
        let mut left = self.primary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Expression::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expression, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    other => Err(format!("expected ')', found {other:?}")),
                }
            }
            Some(Token::Name(name)) => {
                let metric = self.metric(&name)?;
                let Some(Token::Compare(comparison)) = self.next() else {
                    return Err(format!("{name}() must be compared (>, <, >=, <=, ==, !=)"));
                };
                let Some(Token::Number(bound)) = self.next() else {
                    return Err(format!("{name}() must be compared with a number"));
                };
                Ok(Expression::Compare(metric, comparison, bound))
            }
            other => Err(format!("expected a metric or '(', found {other:?}")),
        }
    }

    fn metric(&mut self, name: &str) -> Result<Metric, String> {
        if self.next() != Some(Token::Open) {
            return Err(format!("{name} must be called: {name}(...)"));
        }
        let mut args = Vec::new();
        loop {
            match self.next() {
                Some(Token::Close) if args.is_empty() => break,
                Some(Token::Number(n)) => args.push(n),
                other => return Err(format!("{name}: expected a number, found {other:?}")),
            }
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::Close) => break,
                other => return Err(format!("{name}: expected ',' or ')', found {other:?}")),
            }
        }
        let code = |n: f64| -> Result<u16, String> {
            (n.fract() == 0.0 && (0.0..=600.0).contains(&n))
                .then_some(n as u16)
                .ok_or_else(|| format!("{name}: {n} is not a status code"))
        };
        match (name, args.as_slice()) {
            ("NetworkErrorRatio", []) => Ok(Metric::NetworkErrorRatio),
            ("ResponseCodeRatio", [a, b, c, d]) => Ok(Metric::ResponseCodeRatio(
                code(*a)?,
                code(*b)?,
                code(*c)?,
                code(*d)?,
            )),
            ("LatencyAtQuantileMS", [q]) if (0.0..=100.0).contains(q) => {
                Ok(Metric::LatencyAtQuantileMs(*q))
            }
            ("NetworkErrorRatio" | "ResponseCodeRatio" | "LatencyAtQuantileMS", _) => {
                Err(format!("{name}: wrong arguments"))
            }
            _ => Err(format!(
                "unknown function {name} (NetworkErrorRatio, ResponseCodeRatio, LatencyAtQuantileMS)"
            )),
        }
    }
}

/// Seconds of history, one bucket each.
const BUCKETS: usize = 10;
/// Statuses counted one by one (what `ResponseCodeRatio` ranges may name).
const CODES: usize = 600;
/// Latency classes: a quarter of a power of two each (about 19% wide).
const LATENCIES: usize = 96;

fn latency_class(ms: u64) -> usize {
    // The last class holds everything beyond (about 16 days).
    ((((ms + 1) as f64).log2() * 4.0) as usize).min(LATENCIES - 1)
}

/// The upper bound of a latency class, in milliseconds.
fn latency_bound(class: usize) -> f64 {
    2f64.powf((class + 1) as f64 / 4.0) - 1.0
}

struct Bucket {
    second: AtomicU64,
    total: AtomicU64,
    codes: Vec<AtomicU32>,
    latencies: Vec<AtomicU32>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            second: AtomicU64::new(0),
            total: AtomicU64::new(0),
            codes: (0..CODES).map(|_| AtomicU32::new(0)).collect(),
            latencies: (0..LATENCIES).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn clear(&self) {
        self.total.store(0, Ordering::Relaxed);
        self.codes
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
        self.latencies
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

/// What the expression is evaluated over.
#[derive(Debug, Default)]
pub struct Stats {
    pub total: u64,
    pub codes: Vec<u64>,
    pub latencies: Vec<u64>,
}

impl Stats {
    fn value(&self, metric: Metric) -> f64 {
        let codes = |low: u16, high: u16| -> u64 {
            self.codes
                .get(usize::from(low)..usize::from(high).min(CODES))
                .map_or(0, |c| c.iter().sum())
        };
        match metric {
            Metric::NetworkErrorRatio if self.total > 0 => {
                (codes(502, 503) + codes(504, 505)) as f64 / self.total as f64
            }
            Metric::ResponseCodeRatio(a, b, c, d) => {
                let over = codes(c, d);
                if over == 0 {
                    0.0
                } else {
                    codes(a, b) as f64 / over as f64
                }
            }
            Metric::LatencyAtQuantileMs(q) if self.total > 0 => {
                let wanted = (q / 100.0 * self.total as f64).ceil().max(1.0) as u64;
                let mut seen = 0;
                for (class, count) in self.latencies.iter().enumerate() {
                    seen += count;
                    if seen >= wanted {
                        return latency_bound(class);
                    }
                }
                latency_bound(LATENCIES - 1)
            }
            _ => 0.0,
        }
    }
}

const STANDBY: u8 = 0;
const TRIPPED: u8 = 1;
const RECOVERING: u8 = 2;

/// The shared state of one `circuitBreaker` object.
pub struct Circuit {
    buckets: Vec<Bucket>,
    state: AtomicU8,
    /// Tripped: until when; recovering: since when (the same instant), in ms.
    mark_ms: AtomicU64,
    next_check_ms: AtomicU64,
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            buckets: (0..BUCKETS).map(|_| Bucket::new()).collect(),
            state: AtomicU8::new(STANDBY),
            mark_ms: AtomicU64::new(0),
            next_check_ms: AtomicU64::new(0),
        }
    }
}

impl Circuit {
    /// Counts a response of `status` that took `latency_ms`, at `now_ms`.
    pub fn record(&self, now_ms: u64, status: u16, latency_ms: u64) {
        let second = now_ms / 1000 + 1;
        let bucket = &self.buckets[(second as usize) % BUCKETS];
        let seen = bucket.second.load(Ordering::Acquire);
        if seen != second
            && bucket
                .second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.clear();
        }
        bucket.total.fetch_add(1, Ordering::Relaxed);
        if let Some(code) = bucket.codes.get(usize::from(status)) {
            code.fetch_add(1, Ordering::Relaxed);
        }
        bucket.latencies[latency_class(latency_ms)].fetch_add(1, Ordering::Relaxed);
    }

    /// The last ten seconds' responses.
    pub fn stats(&self, now_ms: u64) -> Stats {
        let second = now_ms / 1000 + 1;
        let mut stats = Stats {
            total: 0,
            codes: vec![0; CODES],
            latencies: vec![0; LATENCIES],
        };
        for bucket in &self.buckets {
            let at = bucket.second.load(Ordering::Acquire);
            if at == 0 || at + (BUCKETS as u64) <= second {
                continue;
            }
            stats.total += bucket.total.load(Ordering::Relaxed);
            for (sum, c) in stats.codes.iter_mut().zip(&bucket.codes) {
                *sum += u64::from(c.load(Ordering::Relaxed));
            }
            for (sum, c) in stats.latencies.iter_mut().zip(&bucket.latencies) {
                *sum += u64::from(c.load(Ordering::Relaxed));
            }
        }
        stats
    }

    fn forget(&self) {
        self.buckets.iter().for_each(|b| {
            b.second.store(0, Ordering::Release);
            b.clear();
        });
    }
}

/// Traefik `circuitBreaker`, validated.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    pub origin: Origin,
    pub expression: Expression,
    pub check_period_ms: u64,
    pub fallback_ms: u64,
    pub recovery_ms: u64,
    pub response_code: u16,
    pub circuit: Arc<Circuit>,
}

impl PartialEq for CircuitBreaker {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
            && self.expression == other.expression
            && self.check_period_ms == other.check_period_ms
            && self.fallback_ms == other.fallback_ms
            && self.recovery_ms == other.recovery_ms
            && self.response_code == other.response_code
            && Arc::ptr_eq(&self.circuit, &other.circuit)
    }
}

impl CircuitBreaker {
    /// Whether a request may go on at `now_ms`; `chance` in `[0, 1)` decides during
    /// recovery, when the share let through grows from none to all.
    pub fn admit(&self, now_ms: u64, chance: f64) -> bool {
        let circuit = &self.circuit;
        match circuit.state.load(Ordering::Acquire) {
            TRIPPED => {
                if now_ms < circuit.mark_ms.load(Ordering::Acquire) {
                    return false;
                }
                // The recovery ramp starts when the fallback ended (the mark stays).
                let _ = circuit.state.compare_exchange(
                    TRIPPED,
                    RECOVERING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                self.admit(now_ms, chance)
            }
            RECOVERING => {
                let since = circuit.mark_ms.load(Ordering::Acquire);
                if self.check_due(now_ms) && self.holds(now_ms) {
                    self.trip(now_ms);
                    return false;
                }
                let elapsed = now_ms.saturating_sub(since);
                if elapsed >= self.recovery_ms {
                    circuit.state.store(STANDBY, Ordering::Release);
                    return true;
                }
                chance < elapsed as f64 / self.recovery_ms.max(1) as f64
            }
            _ => {
                if self.check_due(now_ms) && self.holds(now_ms) {
                    self.trip(now_ms);
                    return false;
                }
                true
            }
        }
    }

    /// Whether this request is the one to check, once per check period.
    fn check_due(&self, now_ms: u64) -> bool {
        let next = self.circuit.next_check_ms.load(Ordering::Acquire);
        now_ms >= next
            && self
                .circuit
                .next_check_ms
                .compare_exchange(
                    next,
                    now_ms + self.check_period_ms,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn holds(&self, now_ms: u64) -> bool {
        self.expression.holds(&self.circuit.stats(now_ms))
    }

    fn trip(&self, now_ms: u64) {
        self.circuit
            .mark_ms
            .store(now_ms + self.fallback_ms, Ordering::Release);
        self.circuit.state.store(TRIPPED, Ordering::Release);
        // What tripped it is not held against the recovery.
        self.circuit.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(expression: &str) -> CircuitBreaker {
        CircuitBreaker {
            origin: Origin {
                name: Arc::from("apps/cb"),
                kind: "circuitBreaker",
            },
            expression: Expression::parse(expression).expect(expression),
            check_period_ms: 100,
            fallback_ms: 10_000,
            recovery_ms: 10_000,
            response_code: 503,
            circuit: Arc::default(),
        }
    }

    #[test]
    fn traefiks_expressions_parse() {
        use Comparison::*;
        assert_eq!(
            Expression::parse("NetworkErrorRatio() > 0.30"),
            Ok(Expression::Compare(Metric::NetworkErrorRatio, Greater, 0.3))
        );
        assert_eq!(
            Expression::parse("ResponseCodeRatio(500, 600, 0, 600) > 0.25"),
            Ok(Expression::Compare(
                Metric::ResponseCodeRatio(500, 600, 0, 600),
                Greater,
                0.25
            ))
        );
        let both = Expression::parse(
            "ResponseCodeRatio(500, 600, 0, 600) > 0.30 || NetworkErrorRatio() > 0.10 && LatencyAtQuantileMS(50.0) >= 100",
        )
        .expect("parses");
        assert!(
            matches!(both, Expression::Or(_, ref right) if matches!(**right, Expression::And(_, _))),
            "&& binds tighter: {both:?}"
        );
        assert!(Expression::parse("(NetworkErrorRatio() > 0.5)").is_ok());
        for bad in [
            "",
            "NetworkErrorRatio()",
            "NetworkErrorRatio > 0.5",
            "Foo() > 1",
            "ResponseCodeRatio(500, 600) > 0.1",
            "LatencyAtQuantileMS(150) > 1",
            "NetworkErrorRatio() > 0.5 &&",
            "NetworkErrorRatio() > 0.5 $",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_are_ratios_and_quantiles_of_the_last_ten_seconds() {
        let circuit = Circuit::default();
        let now = 100_000;
        for i in 0..100u64 {
            let status = match i % 10 {
                0 => 502,
                1 => 504,
                2 => 500,
                _ => 200,
            };
            circuit.record(now, status, i);
        }
        let stats = circuit.stats(now + 500);
        assert_eq!(stats.total, 100);
        assert!((stats.value(Metric::NetworkErrorRatio) - 0.2).abs() < 1e-9);
        let server_errors = stats.value(Metric::ResponseCodeRatio(500, 600, 0, 600));
        assert!((server_errors - 0.3).abs() < 1e-9);
        // Latencies 0..99 ms: the median class holds 49 ms, within a class's width.
        let median = stats.value(Metric::LatencyAtQuantileMs(50.0));
        assert!((49.0..=60.0).contains(&median), "{median}");
        // Ten seconds later, nothing is left.
        assert_eq!(circuit.stats(now + 10_000).total, 0);
    }

    #[test]
    fn trips_falls_back_then_recovers_gradually() {
        let cb = breaker("NetworkErrorRatio() > 0.5");
        let mut now = 50_000;
        assert!(cb.admit(now, 0.0));
        for _ in 0..10 {
            cb.circuit.record(now, 502, 1);
        }
        now += 100;
        assert!(!cb.admit(now, 0.0), "tripped at the next check");
        assert!(!cb.admit(now + 9_999, 0.0), "falls back for 10s");
        now += 10_000;
        // Recovering: the share let through grows with the time since.
        assert!(!cb.admit(now, 0.5));
        assert!(cb.admit(now + 6_000, 0.5));
        assert!(!cb.admit(now + 6_000, 0.7));
        assert!(cb.admit(now + 10_000, 0.99), "recovered");
        assert!(cb.admit(now + 10_001, 0.99));
    }
}
