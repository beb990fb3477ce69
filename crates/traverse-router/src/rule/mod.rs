//! Traefik v3 rule grammar: parsing and evaluation.
//!
//! ```text
//! rule    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | primary
//! primary := "(" or ")" | matcher
//! matcher := NAME "(" [ string ( "," string )* ] ")"
//! string  := `backtick` | "double-quoted, with \" and \\ escapes"
//! ```
//!
//! Matcher names are accepted in the spellings Traefik accepts: as written
//! (`PathPrefix`), all lowercase, all uppercase and title case (`Pathprefix`).

mod compiled;
mod eval;
mod intern;
mod parse;
mod route;

use std::fmt;
use std::sync::Arc;

use self::compiled::Regex;
use ipnet::IpNet;

use crate::request::Request;

pub(crate) use eval::{with_normalized_host, Ctx};
pub use intern::{InternStats, Interner};

/// A rule that failed to parse, with the 1-based column (in characters) of the
/// offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based column, counted in characters, of the token that caused the error.
    pub column: usize,
    /// Human-readable description of the problem.
    pub message: String,
}

/// A parsed Traefik routing rule such as ``Host(`a.example`) && PathPrefix(`/api`)``.
///
/// Cheap to share: evaluation takes `&self` and never allocates on the common path,
/// and a clone shares the parsed and compiled rule (two reference counts).
#[derive(Clone)]
pub struct Rule {
    text: Arc<str>,
    expr: Arc<Expr>,
}

impl Rule {
    /// Parses a rule in Traefik v3 syntax (with v2 multi-argument forms such as
    /// ``Host(`a`, `b`)`` meaning "any of"). To share compiled rules and regexes
    /// between many rules, parse through an [`Interner`] instead.
    pub fn parse(text: &str) -> Result<Rule, ParseError> {
        Interner::default().rule(text)
    }

    /// The rule text, shared: the same allocation as [`Rule::text`].
    pub fn shared_text(&self) -> &Arc<str> {
        &self.text
    }

    /// Whether both are the same parsed rule (one parse shared), not merely equal text.
    pub fn ptr_eq(&self, other: &Rule) -> bool {
        Arc::ptr_eq(&self.expr, &other.expr)
    }

    /// Whether the request satisfies this rule.
    pub fn matches(&self, req: &Request<'_>) -> bool {
        with_normalized_host(req.host, |host| self.matches_ctx(&Ctx { req, host }))
    }

    /// Evaluation with the request host already normalized, so a table lookup
    /// normalizes it once for all candidate routes.
    pub(crate) fn matches_ctx(&self, ctx: &Ctx<'_, '_>) -> bool {
        self.expr.eval(ctx)
    }

    /// The rule text exactly as given to [`Rule::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The rule's path template, for `http.route` and span names: low-cardinality
    /// by construction, never a request's path. See [`route`] for the forms.
    ///
    /// Computed on each call; callers keep it with the route, once per table build.
    pub fn route_template(&self) -> String {
        route::template(&self.expr)
    }

    /// Traefik's default priority: the length of the rule text (here in
    /// characters), so more specific (longer) rules win.
    pub fn default_priority(&self) -> i64 {
        i64::try_from(self.text.chars().count()).unwrap_or(i64::MAX)
    }

    /// Host patterns of which the request host must match at least one for the
    /// rule to possibly match, or `None` when the rule does not constrain the host
    /// in a way the index can use.
    ///
    /// Soundness (rule matches ⇒ host matches a returned pattern):
    /// * `Host(p1, ..)`: by definition.
    /// * `A && B`: a match requires every operand to match, so any one operand's
    ///   requirement holds for the whole conjunction.
    /// * `A || B`: a match requires some operand to match, so the union of the
    ///   operands' requirements holds, provided every operand has one.
    /// * `!A` and every other matcher: no requirement.
    pub(crate) fn required_hosts(&self) -> Option<Vec<&HostPattern>> {
        self.expr.required_hosts()
    }

    /// The host names a request must ask for to match (`a.example`, `*.example` for a
    /// wildcard), as [`Rule::required_hosts`] finds them; empty when the rule does not
    /// constrain the host. What TLS options are chosen by, as Traefik chooses them.
    pub fn host_names(&self) -> Vec<String> {
        self.required_hosts()
            .unwrap_or_default()
            .into_iter()
            .map(|host| match host {
                HostPattern::Exact(name) => name.clone(),
                HostPattern::Wildcard(suffix) => format!("*.{suffix}"),
            })
            .collect()
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.text).finish()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Rule {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::parse(s)
    }
}

/// Rule AST. `And`/`Or` are flattened n-ary nodes (never empty).
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Match(Matcher),
}

impl Expr {
    fn required_hosts(&self) -> Option<Vec<&HostPattern>> {
        match self {
            Expr::Match(Matcher::Host(patterns)) => Some(patterns.iter().collect()),
            Expr::Match(_) | Expr::Not(_) => None,
            Expr::And(items) => {
                // Any operand's requirement is valid; prefer one made only of exact
                // hosts, since exact buckets are the most selective.
                let mut fallback = None;
                for item in items {
                    if let Some(hosts) = item.required_hosts() {
                        if hosts.iter().all(|h| matches!(h, HostPattern::Exact(_))) {
                            return Some(hosts);
                        }
                        fallback.get_or_insert(hosts);
                    }
                }
                fallback
            }
            Expr::Or(items) => {
                let mut all = Vec::new();
                for item in items {
                    all.extend(item.required_hosts()?);
                }
                Some(all)
            }
        }
    }
}

/// A host pattern from `Host(...)`, normalized at parse time: ASCII-lowercase,
/// IPv6 brackets removed, one trailing dot removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// Matches exactly this host.
    Exact(String),
    /// `*.suffix`: matches one or more labels followed by `.suffix`.
    Wildcard(String),
}

/// One matcher with its arguments already validated and compiled.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    Host(Vec<HostPattern>),
    HostRegexp(Vec<Pattern>),
    Path(Vec<String>),
    PathPrefix(Vec<String>),
    PathRegexp(Vec<Pattern>),
    /// `name` is `None` when the key is not a valid header name: such a header
    /// can never be present, so the matcher never matches (as in Traefik).
    Header {
        name: Option<http::HeaderName>,
        value: String,
    },
    HeaderRegexp {
        name: Option<http::HeaderName>,
        regex: Arc<Regex>,
    },
    Method(Vec<String>),
    /// `value: None` (one-argument form) only requires the key to be present.
    Query {
        key: String,
        value: Option<String>,
    },
    QueryRegexp {
        key: String,
        regex: Arc<Regex>,
    },
    ClientIp(Vec<IpNet>),
}

/// A `HostRegexp`/`PathRegexp` pattern in its cheapest exact form: a regular
/// expression that only says "exactly this text" (`^/health$`) or "starts with this
/// text" (`^/api`) is compared as a string; any other is a compiled regex, shared by
/// every rule using the same pattern.
#[derive(Clone, Debug)]
pub(crate) enum Pattern {
    /// `^literal$`: the whole text equals it.
    Exact(Box<str>),
    /// `^literal`: the text starts with it.
    Prefix(Box<str>),
    Regex(Arc<Regex>),
}

#[cfg(test)]
pub(crate) mod tests;
