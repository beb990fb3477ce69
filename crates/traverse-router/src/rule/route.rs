//! A rule's path template: what `http.route` and span names report.
//!
//! OpenTelemetry wants a low-cardinality template of the matched route, never the
//! request's path. A template is derived from the rule's path matchers alone:
//!
//! | Rule | Template |
//! |------|----------|
//! | ``Path(`/x`)`` | `/x` |
//! | ``PathPrefix(`/api`)``, ``PathPrefix(`/api/`)`` | `/api/*` |
//! | ``PathRegexp(`^/users/[0-9]+$`)`` | `/users/*`: the literal start of an anchored regexp, up to its last `/`, then `*` |
//! | ``PathRegexp(`^/health$`)`` | `/health`: an anchored regexp that is all literal |
//! | ``PathRegexp(`/users`)`` (not anchored at the start) | `/*` |
//! | ``Host(`a`)``, and any rule that does not constrain the path | `/*` |
//! | `A && B` | the most specific of the operands' templates (an exact path, else the longest prefix) |
//! | `A \|\| B`, several arguments | their common template: the same one, the prefix of one that covers the others, else their common leading segments then `*` |
//! | `!A` | `/*` |

use regex_syntax::hir::{Hir, HirKind, Look};

use super::{Expr, Matcher};

/// A path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Template {
    /// Exactly this path.
    Exact(String),
    /// Any path under this prefix.
    Prefix(String),
}

impl Template {
    fn text(&self) -> &str {
        match self {
            Template::Exact(text) | Template::Prefix(text) => text,
        }
    }

    fn render(self) -> String {
        match self {
            Template::Exact(path) => path,
            Template::Prefix(mut prefix) => {
                if !prefix.ends_with('/') {
                    prefix.push('/');
                }
                prefix.push('*');
                prefix
            }
        }
    }
}

fn any() -> Template {
    Template::Prefix("/".to_owned())
}

pub(super) fn template(expr: &Expr) -> String {
    of(expr).unwrap_or_else(any).render()
}

/// The template of a compiled `PathRegexp` pattern: a literal pattern is read back as
/// the regexp it came from, so it gets the template the regexp would.
fn pattern_template(pattern: &super::Pattern) -> Template {
    match pattern {
        super::Pattern::Exact(text) => regexp(&format!("^{}$", regex::escape(text))),
        super::Pattern::Prefix(text) => regexp(&format!("^{}", regex::escape(text))),
        super::Pattern::Regex(re) => regexp(re.as_str()),
    }
}

/// `None` when `expr` does not constrain the path.
fn of(expr: &Expr) -> Option<Template> {
    match expr {
        Expr::Match(Matcher::Path(paths)) => {
            Some(common(paths.iter().map(|p| Template::Exact(p.clone()))))
        }
        Expr::Match(Matcher::PathPrefix(prefixes)) => {
            Some(common(prefixes.iter().map(|p| Template::Prefix(p.clone()))))
        }
        Expr::Match(Matcher::PathRegexp(regexes)) => {
            Some(common(regexes.iter().map(pattern_template)))
        }
        Expr::Match(_) | Expr::Not(_) => None,
        Expr::And(items) => items.iter().filter_map(of).max_by_key(specificity),
        // One alternative that may match any path makes the whole rule match any path.
        Expr::Or(items) => items
            .iter()
            .map(of)
            .collect::<Option<Vec<_>>>()
            .map(|all| common(all.into_iter())),
    }
}

/// Exact paths first, then longer prefixes.
fn specificity(template: &Template) -> (bool, usize) {
    (
        matches!(template, Template::Exact(_)),
        template.text().len(),
    )
}

/// The one template covering every alternative.
fn common(alternatives: impl Iterator<Item = Template>) -> Template {
    let all: Vec<Template> = alternatives.collect();
    let Some(first) = all.first() else {
        return any();
    };
    if all.iter().all(|t| t == first) {
        return first.clone();
    }
    let shared = all.iter().skip(1).fold(first.text(), |shared, t| {
        let len = shared
            .bytes()
            .zip(t.text().bytes())
            .take_while(|(a, b)| a == b)
            .count();
        &shared[..len]
    });
    if all
        .iter()
        .any(|t| matches!(t, Template::Prefix(p) if p == shared))
    {
        return Template::Prefix(shared.to_owned());
    }
    segments(shared)
}

/// The whole segments of `literal` as a prefix (`/users/4` → `/users/`).
fn segments(literal: &str) -> Template {
    match literal.rfind('/') {
        Some(end) if literal.starts_with('/') => Template::Prefix(literal[..=end].to_owned()),
        _ => any(),
    }
}

/// The template of a `PathRegexp`: read from the regexp's syntax tree, so escapes and
/// classes are understood as the matcher understands them.
fn regexp(pattern: &str) -> Template {
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return any();
    };
    let items = match hir.kind() {
        HirKind::Concat(items) => items.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    // Unanchored, the regexp may match anywhere in the path: nothing is known of its start.
    let Some((HirKind::Look(Look::Start), rest)) = items.split_first().map(|(h, r)| (h.kind(), r))
    else {
        return any();
    };
    let literal_len = rest
        .iter()
        .take_while(|h| matches!(h.kind(), HirKind::Literal(_)))
        .count();
    let mut literal = Vec::new();
    for hir in &rest[..literal_len] {
        if let HirKind::Literal(l) = hir.kind() {
            literal.extend_from_slice(&l.0);
        }
    }
    let Ok(literal) = String::from_utf8(literal) else {
        return any();
    };
    let tail: &[Hir] = &rest[literal_len..];
    let ends = matches!(tail, [end] if matches!(end.kind(), HirKind::Look(Look::End)));
    if ends && literal.starts_with('/') {
        Template::Exact(literal)
    } else {
        segments(&literal)
    }
}

#[cfg(test)]
mod tests {
    use crate::Rule;

    #[test]
    fn templates_of_every_rule_kind() {
        // (rule, http.route)
        let cases = [
            ("Path(`/x`)", "/x"),
            ("Path(`/`)", "/"),
            ("PathPrefix(`/api`)", "/api/*"),
            ("PathPrefix(`/api/`)", "/api/*"),
            ("PathPrefix(`/`)", "/*"),
            ("PathRegexp(`^/users/[0-9]+$`)", "/users/*"),
            ("PathRegexp(`^/users/[0-9]+/orders`)", "/users/*"),
            ("PathRegexp(`^/api/v[12]/`)", "/api/*"),
            ("PathRegexp(`^/health$`)", "/health"),
            ("PathRegexp(`^/a\\.b$`)", "/a.b"),
            ("PathRegexp(`/users/[0-9]+`)", "/*"),
            ("PathRegexp(`^(?i)/Users`)", "/*"),
            ("PathRegexp(`.*`)", "/*"),
            ("Host(`a.example`)", "/*"),
            ("HostRegexp(`^.+\\.example$`)", "/*"),
            ("Header(`x-a`, `1`)", "/*"),
            ("HeaderRegexp(`x-a`, `^1`)", "/*"),
            ("Method(`GET`)", "/*"),
            ("Query(`a`, `1`)", "/*"),
            ("QueryRegexp(`a`, `^1`)", "/*"),
            ("ClientIP(`10.0.0.0/8`)", "/*"),
            ("Host(`a`) && PathPrefix(`/api`)", "/api/*"),
            ("PathPrefix(`/api`) && Path(`/api/x`)", "/api/x"),
            ("PathPrefix(`/api`) && PathPrefix(`/api/v1`)", "/api/v1/*"),
            ("Method(`GET`) && (Path(`/a`) || Path(`/a`))", "/a"),
            ("Path(`/a/x`) || Path(`/a/y`)", "/a/*"),
            ("Path(`/a`, `/b`)", "/*"),
            ("PathPrefix(`/api`) || Path(`/api/x`)", "/api/*"),
            ("PathPrefix(`/api`, `/apix`)", "/api/*"),
            ("Path(`/a`) || Host(`b`)", "/*"),
            ("!Path(`/a`)", "/*"),
            ("!Path(`/a`) && PathPrefix(`/b`)", "/b/*"),
        ];
        for (rule, expected) in cases {
            let parsed = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(parsed.route_template(), expected, "{rule}");
        }
    }
}
