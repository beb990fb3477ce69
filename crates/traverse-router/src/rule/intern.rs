//! Sharing parsed rules and compiled regular expressions.
//!
//! A large configuration repeats itself: thousands of routes use the same
//! `PathRegexp`, and a reload rebuilds a table whose rules are almost all the
//! ones of the table before. Compiling a regular expression costs tens of
//! microseconds and kilobytes of automata, so an [`Interner`] keeps one compiled
//! copy per pattern and one parsed rule per rule text, and hands out shared
//! references. Kept across table builds, it makes a rebuild re-parse only the
//! rules that are new; [`Interner::sweep`] forgets what no table uses any more.
//!
//! Sharing changes nothing about matching: a rule parsed through an interner is
//! the same rule [`Rule::parse`] returns.

use std::collections::HashMap;
use std::sync::Arc;

use regex_syntax::hir::{HirKind, Look};

use super::compiled::Regex;
use super::{parse, ParseError, Pattern, Rule};

/// Parsed rules by text and compiled regexes by pattern, shared by every rule
/// parsed through it. Not synchronized: one table build uses it at a time.
#[derive(Debug, Default)]
pub struct Interner {
    rules: HashMap<Arc<str>, Rule>,
    regexes: HashMap<Box<str>, Arc<Regex>>,
    bytes_regexes: HashMap<Box<str>, Arc<Regex>>,
    stats: InternStats,
}

/// What an [`Interner`] did since it was created (or since [`Interner::take_stats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InternStats {
    /// Rule texts parsed (not found in the interner).
    pub rules_parsed: usize,
    /// Rules handed out from the interner without parsing.
    pub rules_reused: usize,
    /// Regular expressions compiled.
    pub regexes_compiled: usize,
    /// Regular expressions handed out already compiled.
    pub regexes_reused: usize,
    /// Regular expressions that became a string comparison (`^literal$`, `^literal`).
    pub regexes_as_literals: usize,
}

impl Interner {
    /// The rule for `text`: the shared one when this text was parsed before,
    /// otherwise parsed now (its regexes shared with other rules) and remembered.
    /// Errors are not remembered.
    pub fn rule(&mut self, text: &str) -> Result<Rule, ParseError> {
        if let Some(rule) = self.rules.get(text) {
            self.stats.rules_reused += 1;
            return Ok(rule.clone());
        }
        let expr = parse::parse(text, self)?;
        self.stats.rules_parsed += 1;
        let rule = Rule {
            text: text.into(),
            expr: Arc::new(expr),
        };
        self.rules.insert(Arc::clone(&rule.text), rule.clone());
        Ok(rule)
    }

    /// Forgets every rule and regex that only the interner still holds: call it
    /// once a new table is built, so that the interner keeps what the tables
    /// alive use and nothing else (memory stays bounded across reloads).
    pub fn sweep(&mut self) {
        // Rules first: dropping a rule releases its regexes.
        self.rules
            .retain(|_, rule| Arc::strong_count(&rule.expr) > 1);
        self.regexes.retain(|_, re| Arc::strong_count(re) > 1);
        self.bytes_regexes.retain(|_, re| Arc::strong_count(re) > 1);
    }

    /// Rules currently remembered.
    pub fn rules(&self) -> usize {
        self.rules.len()
    }

    /// Compiled regexes currently remembered.
    pub fn regexes(&self) -> usize {
        self.regexes.len() + self.bytes_regexes.len()
    }

    /// What the interner did so far.
    pub fn stats(&self) -> InternStats {
        self.stats
    }

    /// What the interner did so far, resetting the counts.
    pub fn take_stats(&mut self) -> InternStats {
        std::mem::take(&mut self.stats)
    }

    /// A `HostRegexp`/`PathRegexp` pattern: a string comparison when the regex is
    /// an anchored literal, otherwise the shared compiled regex.
    pub(super) fn pattern(&mut self, pattern: &str) -> Result<Pattern, String> {
        if let Some(literal) = anchored_literal(pattern) {
            self.stats.regexes_as_literals += 1;
            return Ok(literal);
        }
        self.regex(pattern).map(Pattern::Regex)
    }

    pub(super) fn regex(&mut self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(re) = self.regexes.get(pattern) {
            self.stats.regexes_reused += 1;
            return Ok(Arc::clone(re));
        }
        let re = Arc::new(Regex::new(pattern, true)?);
        self.stats.regexes_compiled += 1;
        self.regexes.insert(pattern.into(), Arc::clone(&re));
        Ok(re)
    }

    /// A regex for header and query values, which need not be UTF-8.
    pub(super) fn bytes_regex(&mut self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(re) = self.bytes_regexes.get(pattern) {
            self.stats.regexes_reused += 1;
            return Ok(Arc::clone(re));
        }
        let re = Arc::new(Regex::new(pattern, false)?);
        self.stats.regexes_compiled += 1;
        self.bytes_regexes.insert(pattern.into(), Arc::clone(&re));
        Ok(re)
    }
}

/// `^literal$` as [`Pattern::Exact`] and `^literal` as [`Pattern::Prefix`], read
/// from the regex's syntax tree with the options `Regex::new` uses, so escapes,
/// flags and classes are understood exactly as the regex engine would; anything
/// else (a class, a repetition, `(?i)`, `(?m)`, no leading `^`) is `None`.
///
/// Equivalence with `Regex::is_match` (an unanchored search): `^` is the start of
/// the text and `$` its end (`Look::Start`/`Look::End`, not the multi-line forms),
/// so `^lit$` matches exactly the text `lit` and `^lit` exactly the texts that
/// start with it.
fn anchored_literal(pattern: &str) -> Option<Pattern> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let is_look = |hir: &regex_syntax::hir::Hir, want: Look| matches!(hir.kind(), HirKind::Look(l) if *l == want);
    let literal = |hir: &regex_syntax::hir::Hir| match hir.kind() {
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0).ok().map(Box::<str>::from),
        _ => None,
    };
    match parts.as_slice() {
        [start, lit, end] if is_look(start, Look::Start) && is_look(end, Look::End) => {
            literal(lit).map(Pattern::Exact)
        }
        [start, lit] if is_look(start, Look::Start) => literal(lit).map(Pattern::Prefix),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kind(pattern: &str) -> String {
        match anchored_literal(pattern) {
            Some(Pattern::Exact(s)) => format!("exact {s}"),
            Some(Pattern::Prefix(s)) => format!("prefix {s}"),
            Some(Pattern::Regex(_)) | None => "regex".into(),
        }
    }

    #[test]
    fn only_anchored_literals_become_string_comparisons() {
        assert_eq!(kind("^/health$"), "exact /health");
        assert_eq!(kind(r"^/a\.b$"), "exact /a.b");
        assert_eq!(kind("^/api"), "prefix /api");
        assert_eq!(kind("^/api/"), "prefix /api/");
        assert_eq!(kind(r"^/v1/\$x"), r"prefix /v1/$x");
        for regex in [
            "/api",
            "^/item/[0-9]+$",
            "(?i)^/api$",
            "(?m)^/api$",
            "^/api$|^/b$",
            "^/a.c$",
            "/api$",
            "^$",
            "^",
            "(",
        ] {
            assert_eq!(kind(regex), "regex", "{regex}");
        }
    }

    #[test]
    fn literal_patterns_match_as_the_regex_would() {
        let paths = [
            "", "/", "/api", "/api/", "/apix", "/API", "/a.b", "/axb", "x/api", "/api\n",
        ];
        for pattern in ["^/api$", "^/api", r"^/a\.b$", "^/api/", r"^/api\n$"] {
            let re = regex::Regex::new(pattern).unwrap();
            let literal = anchored_literal(pattern).unwrap();
            for path in paths {
                assert_eq!(
                    literal.matches(path),
                    re.is_match(path),
                    "{pattern} on {path:?}"
                );
            }
        }
    }

    #[test]
    fn one_compiled_regex_per_pattern_and_one_rule_per_text() {
        let mut interner = Interner::default();
        let a = interner
            .rule("Host(`a.test`) && PathRegexp(`^/item/[0-9]+$`)")
            .unwrap();
        let b = interner
            .rule("Host(`b.test`) && PathRegexp(`^/item/[0-9]+$`)")
            .unwrap();
        let again = interner
            .rule("Host(`a.test`) && PathRegexp(`^/item/[0-9]+$`)")
            .unwrap();
        assert!(a.ptr_eq(&again));
        assert!(!a.ptr_eq(&b));
        let regex_of = |rule: &Rule| -> Arc<Regex> {
            let super::super::Expr::And(items) = rule.expr.as_ref() else {
                panic!("and")
            };
            items
                .iter()
                .find_map(|e| match e {
                    super::super::Expr::Match(super::super::Matcher::PathRegexp(p)) => {
                        match &p[0] {
                            Pattern::Regex(re) => Some(Arc::clone(re)),
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .unwrap()
        };
        assert!(Arc::ptr_eq(&regex_of(&a), &regex_of(&b)));
        let stats = interner.stats();
        assert_eq!(stats.rules_parsed, 2);
        assert_eq!(stats.rules_reused, 1);
        assert_eq!(stats.regexes_compiled, 1);
        assert_eq!(stats.regexes_reused, 1);

        // Header and query regexes are shared the same way.
        let h1 = interner.rule("HeaderRegexp(`X-A`, `^v[0-9]$`)").unwrap();
        let h2 = interner
            .rule("Path(`/`) && HeaderRegexp(`X-B`, `^v[0-9]$`)")
            .unwrap();
        assert_eq!(interner.regexes(), 2);
        drop((h1, h2));

        // What no one holds any more is forgotten; what a table holds is kept.
        drop((b, again));
        interner.sweep();
        assert_eq!(interner.rules(), 1);
        assert_eq!(interner.regexes(), 1);
        drop(a);
        interner.sweep();
        assert_eq!((interner.rules(), interner.regexes()), (0, 0));
    }
}
