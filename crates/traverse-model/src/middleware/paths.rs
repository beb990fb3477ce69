//! Path rewriting and redirects: `stripPrefixRegex`, `replacePath`, `replacePathRegex`,
//! `redirectScheme`, `redirectRegex`.

use super::{Origin, Pattern};

/// Remove the first prefix a regular expression matches (Traefik `stripPrefixRegex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripPrefixRegex {
    pub patterns: Vec<Pattern>,
}

impl StripPrefixRegex {
    /// The prefix to strip from `path` and what remains (with a leading `/`), if any
    /// expression matches text that `path` starts with.
    pub fn strip(&self, path: &str) -> Option<(String, String)> {
        self.patterns.iter().find_map(|pattern| {
            let matched = pattern.regex().find(path)?.as_str();
            let rest = path.strip_prefix(matched).filter(|_| !matched.is_empty())?;
            let rest = if rest.starts_with('/') || rest.is_empty() {
                rest.to_owned()
            } else {
                format!("/{rest}")
            };
            Some((matched.to_owned(), rest))
        })
    }
}

/// Replace the path, keeping the original in `X-Replaced-Path` (Traefik `replacePath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacePath {
    pub path: String,
}

/// Rewrite a matching path with a regular expression (Traefik `replacePathRegex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacePathRegex {
    pub pattern: Pattern,
    /// May use capture groups (`$1`, `${name}`).
    pub replacement: String,
}

impl ReplacePathRegex {
    /// The new path, when the expression matches `path`.
    pub fn rewrite(&self, path: &str) -> Option<String> {
        let regex = self.pattern.regex();
        regex.is_match(path).then(|| {
            regex
                .replace_all(path, self.replacement.as_str())
                .into_owned()
        })
    }
}

/// Redirect to another scheme (and port) (Traefik `redirectScheme`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectScheme {
    pub origin: Origin,
    pub scheme: String,
    /// `:port` as it goes in the new URL; empty for the scheme's default port.
    pub port: String,
    pub permanent: bool,
}

impl RedirectScheme {
    /// The target URL for a request to `scheme://host[:port]path_and_query`, or `None`
    /// when the request is already there. `port` is the one the client asked for.
    pub fn target(
        &self,
        scheme: &str,
        host: &str,
        port: Option<&str>,
        path_and_query: &str,
    ) -> Option<String> {
        let port = match port {
            Some(port) if !is_default_port(scheme, port) => format!(":{port}"),
            _ => String::new(),
        };
        let current = format!("{scheme}://{host}{port}{path_and_query}");
        let target = format!("{}://{host}{}{path_and_query}", self.scheme, self.port);
        (target != current).then_some(target)
    }
}

/// Whether `port` is the default of `scheme` (left out of URLs).
pub(crate) fn is_default_port(scheme: &str, port: &str) -> bool {
    (scheme == "http" && port == "80") || (scheme == "https" && port == "443")
}

/// Redirect when a regular expression rewrites the request URL (Traefik `redirectRegex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRegex {
    pub origin: Origin,
    pub pattern: Pattern,
    pub replacement: String,
    pub permanent: bool,
}

impl RedirectRegex {
    /// The target URL for the request URL `url`, or `None` when the expression does not
    /// match or leaves the URL as it is.
    pub fn target(&self, url: &str) -> Option<String> {
        let regex = self.pattern.regex();
        if !regex.is_match(url) {
            return None;
        }
        let target = regex.replace_all(url, self.replacement.as_str());
        (target != url).then(|| target.into_owned())
    }
}

/// The status of a redirect as Traefik chooses it: 302/301 for `GET`, else 307/308 so the
/// method and body are kept.
pub fn redirect_status(permanent: bool, is_get: bool) -> u16 {
    match (permanent, is_get) {
        (false, true) => 302,
        (false, false) => 307,
        (true, true) => 301,
        (true, false) => 308,
    }
}
