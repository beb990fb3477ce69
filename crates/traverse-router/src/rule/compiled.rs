//! Compiled regular expressions as rules hold them: only "does it match" is asked.

use regex_automata::meta;
use regex_automata::util::syntax;

/// A compiled regular expression and its pattern. Built as `regex::Regex` builds one,
/// but without the full DFA that `regex` compiles up front for small patterns: the lazy
/// DFA it keeps answers as fast once warm, and a pattern costs about a third less memory
/// and a fifth of the compile time, which counts with thousands of distinct patterns
/// (docs/performance.md, "Route scale").
#[derive(Debug)]
pub(crate) struct Regex {
    pattern: Box<str>,
    compiled: meta::Regex,
}

impl Regex {
    /// `utf8: false` also matches text that is not UTF-8, as `regex::bytes::Regex` does.
    pub(crate) fn new(pattern: &str, utf8: bool) -> Result<Regex, String> {
        let compiled = meta::Builder::new()
            .configure(meta::Config::new().dfa(false))
            .syntax(syntax::Config::new().utf8(utf8))
            .build(pattern)
            // The syntax error's own text shows the pattern and where it goes wrong.
            .map_err(|error| match error.syntax_error() {
                Some(syntax) => syntax.to_string(),
                None => error.to_string(),
            })?;
        Ok(Regex {
            pattern: pattern.into(),
            compiled,
        })
    }

    /// The pattern it was compiled from.
    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether it matches anywhere in `haystack` (an unanchored search).
    pub(crate) fn is_match(&self, haystack: impl AsRef<[u8]>) -> bool {
        self.compiled.is_match(haystack.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_the_regex_crate_does() {
        let texts = [
            "",
            "/item/1",
            "/item/12x",
            "/ITEM/1",
            "a/item/3",
            "é/item/4",
        ];
        for pattern in ["^/item/[0-9]+$", "item", "(?i)^/item", r"\d$", "^$"] {
            let ours = Regex::new(pattern, true).expect("compiles");
            let theirs = regex::Regex::new(pattern).expect("compiles");
            for text in texts {
                assert_eq!(
                    ours.is_match(text),
                    theirs.is_match(text),
                    "{pattern} on {text:?}"
                );
            }
            assert_eq!(ours.as_str(), pattern);
        }
        let bytes = Regex::new(r"(?-u)^\xFF", false).expect("bytes pattern");
        assert!(bytes.is_match([0xFF, b'a']));
        assert!(Regex::new(r"(?-u)^\xFF", true).is_err());
    }

    #[test]
    fn errors_show_the_pattern() {
        let error = Regex::new("a(", true).expect_err("unclosed group");
        assert!(error.contains("a("), "{error}");
        assert!(error.contains("unclosed group"), "{error}");
    }
}
