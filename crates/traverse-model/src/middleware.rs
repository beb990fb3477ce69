//! Middlewares as the data plane runs them: validated, one type per kind.
//!
//! Everything a middleware needs is checked and compiled when the table is built
//! (regular expressions, CIDR ranges, password hashes, header values), so a request
//! never parses configuration. The kinds that keep state across requests (rate limits,
//! in-flight counts) hold it behind an `Arc`, shared by every route using the object.

use std::sync::Arc;

mod auth;
mod buffering;
mod circuit;
mod compress;
mod errors;
mod grpc_web;
mod headers;
mod ip;
mod limit;
mod paths;
mod retry;
#[cfg(test)]
mod tests;

pub use auth::{
    md5_hex, parse_htdigest, BasicAuth, Credential, CredentialError, DigestAuth, DigestResponse,
    ForwardAuth,
};
pub use mime::Mime;

pub use buffering::Buffering;
pub use circuit::{Circuit, CircuitBreaker, Expression};
pub use compress::{
    media_type_matches, Compress, ContentTypes, Encoding, DEFAULT_ENCODINGS, DEFAULT_MIN_BODY_BYTES,
};
pub use errors::{parse_status_ranges, Errors};
pub use grpc_web::GrpcWeb;
pub use headers::{Cors, Security};
pub use ip::{IpAllowList, IpStrategy, SourceCriterion};
pub use limit::{Admission, InFlightReq, Permit, RateLimit};
pub use paths::{
    redirect_status, RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex, StripPrefixRegex,
};
pub use retry::Retry;

/// A request/response transformation, already validated. Each kind is its own type, so
/// the data plane gives each its behaviour in one place.
#[derive(Debug, Clone, PartialEq)]
pub enum Middleware {
    StripPrefix(StripPrefix),
    AddPrefix(AddPrefix),
    Headers(Headers),
    StripPrefixRegex(StripPrefixRegex),
    ReplacePath(ReplacePath),
    ReplacePathRegex(ReplacePathRegex),
    RedirectScheme(RedirectScheme),
    RedirectRegex(RedirectRegex),
    BasicAuth(BasicAuth),
    DigestAuth(DigestAuth),
    PassTlsClientCert(PassTlsClientCert),
    IpAllowList(IpAllowList),
    RateLimit(RateLimit),
    InFlightReq(InFlightReq),
    Compress(Compress),
    Retry(Retry),
    Errors(Errors),
    ForwardAuth(ForwardAuth),
    CircuitBreaker(CircuitBreaker),
    Buffering(Buffering),
    GrpcWeb(GrpcWeb),
}

/// The Middleware object a step comes from, `namespace/name`, and its Traefik type:
/// what a span and the access log name when the step answers a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: Arc<str>,
    pub kind: &'static str,
}

/// A compiled regular expression, compared by its source text.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles `source` (Go's RE2 syntax, which the `regex` crate shares).
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(source).map(Pattern)
    }

    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// Remove the first matching prefix from the path (Traefik `stripPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
}

/// Prepend a prefix to the path (Traefik `addPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPrefix {
    pub prefix: String,
}

/// Traefik `passTLSClientCert`: the client's TLS certificates, or fields of them, in
/// headers for the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassTlsClientCert {
    /// `X-Forwarded-Tls-Client-Cert`: each certificate, base64 DER.
    pub pem: bool,
    /// `X-Forwarded-Tls-Client-Cert-Info`: these fields of each certificate.
    pub info: Option<CertInfo>,
}

/// The certificate fields `passTLSClientCert.info` selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: bool,
    pub not_before: bool,
    pub sans: bool,
    pub serial_number: bool,
    pub subject: Option<NameFields>,
    pub issuer: Option<NameFields>,
}

/// The attributes of a distinguished name `passTLSClientCert.info` selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFields {
    pub country: bool,
    pub province: bool,
    pub locality: bool,
    pub organization: bool,
    /// Of the subject only, as in Traefik.
    pub organizational_unit: bool,
    pub common_name: bool,
    pub serial_number: bool,
    pub domain_component: bool,
}

/// Traefik `headers`: custom request and response headers (a `None` value removes the
/// header, Traefik's empty string), CORS and security headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub origin: Origin,
    pub request: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    pub response: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    /// Boxed, like `security`: most `headers` middlewares set neither.
    pub cors: Option<Box<Cors>>,
    pub security: Option<Box<Security>>,
}
