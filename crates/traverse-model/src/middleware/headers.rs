//! The CORS and security parts of Traefik's `headers` middleware.

use http::{HeaderName, HeaderValue};

use super::Pattern;

/// CORS settings of a `headers` middleware, with header values built once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `accessControlAllowOriginList`: exact origins, or `*`.
    pub allow_origins: Vec<String>,
    /// `accessControlAllowOriginListRegex`.
    pub allow_origin_patterns: Vec<Pattern>,
    pub allow_credentials: bool,
    /// `accessControlAllowHeaders`, joined with `,`; `None` when empty.
    pub allow_headers: Option<HeaderValue>,
    /// The list holds `*`: with credentials, the request's headers are echoed instead.
    pub allow_headers_wildcard: bool,
    pub allow_methods: Option<HeaderValue>,
    pub allow_methods_wildcard: bool,
    pub expose_headers: Option<HeaderValue>,
    pub expose_headers_wildcard: bool,
    /// `accessControlMaxAge`, sent on preflight answers when set (even 0).
    pub max_age: Option<i64>,
    pub add_vary: bool,
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for a request's `Origin` (Traefik's rule:
    /// list entries first, `*` echoing the origin when credentials are allowed, then the
    /// regular expressions).
    pub fn allowed_origin<'a>(&'a self, origin: &'a str) -> Option<&'a str> {
        for item in &self.allow_origins {
            if item == origin {
                return Some(item);
            }
            if item == "*" {
                return Some(if self.allow_credentials { origin } else { "*" });
            }
        }
        self.allow_origin_patterns
            .iter()
            .any(|p| p.regex().is_match(origin))
            .then_some(origin)
    }

    /// `Access-Control-Expose-Headers`, unless it is `*` with credentials (which browsers
    /// would take literally).
    pub fn expose_headers(&self) -> Option<&HeaderValue> {
        self.expose_headers
            .as_ref()
            .filter(|_| !(self.expose_headers_wildcard && self.allow_credentials))
    }
}

/// Security settings of a `headers` middleware (what Traefik delegates to
/// `unrolled/secure`), with header values built once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// `allowedHosts`; a request for another host is refused (500 `Bad Host`).
    pub allowed_hosts: Vec<String>,
    /// `hostsProxyHeaders`: headers that, when present, hold the host to check.
    pub hosts_proxy_headers: Vec<HeaderName>,
    /// `sslProxyHeaders`: a request with one of these header values counts as HTTPS.
    pub ssl_proxy_headers: Vec<(HeaderName, String)>,
    /// `Strict-Transport-Security`, sent on HTTPS requests (or always with `force_sts`).
    pub sts: Option<HeaderValue>,
    pub force_sts: bool,
    /// `Public-Key-Pins`, sent on HTTPS requests.
    pub public_key: Option<HeaderValue>,
    /// Headers sent on every response: frame options, nosniff, XSS protection, CSP,
    /// referrer, permissions and feature policies.
    pub always: Vec<(HeaderName, HeaderValue)>,
    /// `isDevelopment`: no host check, no STS or key pins.
    pub development: bool,
}

impl Security {
    /// Whether `host` is allowed (case-insensitively), when a list is set.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.development
            || self.allowed_hosts.is_empty()
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }
}
