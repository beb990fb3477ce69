//! Traefik `Middleware` (`traefik.io/v1alpha1`): one optional field per middleware type.
//!
//! The types the gateway implements, or is likely to implement next, are modelled
//! field by field. The others keep their configuration as free-form JSON: they still
//! parse and round-trip, and [`crate::support`] reports them as unsupported.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ingress_route::{MiddlewareRef, ServiceRef};
use crate::IntOrString;

/// Desired state of a `Middleware`. Exactly one field should be set.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "Middleware",
    namespaced,
    status = "MiddlewareStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Middleware is the CRD implementation of a Traefik HTTP middleware."
)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareSpec {
    /// Adds a prefix to the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_prefix: Option<AddPrefix>,
    /// Removes prefixes from the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<StripPrefix>,
    /// Removes regex-matched prefixes from the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix_regex: Option<StripPrefixRegex>,
    /// Replaces the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_path: Option<ReplacePath>,
    /// Rewrites the request path with a regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_path_regex: Option<ReplacePathRegex>,
    /// Runs other Middlewares in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Chain>,
    /// Deprecated alias of `ipAllowList`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_white_list: Option<IpAllowList>,
    /// Allows requests by client IP range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allow_list: Option<IpAllowList>,
    /// Request/response headers, CORS and security headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Handling of encoded characters in the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub encoded_characters: Option<Value>,
    /// Custom error pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Errors>,
    /// Rate limiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Redirects by regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_regex: Option<RedirectRegex>,
    /// Redirects to another scheme/port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_scheme: Option<RedirectScheme>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// HTTP digest authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_auth: Option<DigestAuth>,
    /// Delegates authentication to an external service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_auth: Option<ForwardAuth>,
    /// Limits concurrent in-flight requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_req: Option<InFlightReq>,
    /// Buffers requests/responses and limits their size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub buffering: Option<Buffering>,
    /// Circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Response compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<Compress>,
    /// Passes the client TLS certificate upstream in headers.
    #[serde(
        default,
        rename = "passTLSClientCert",
        skip_serializing_if = "Option::is_none"
    )]
    pub pass_tls_client_cert: Option<PassTlsClientCert>,
    /// Retries failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Content-Type auto-detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    /// gRPC-Web to gRPC conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub grpc_web: Option<Value>,
    /// Copies requests/responses to Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub tap: Option<Value>,
    /// Plugin middlewares, keyed by plugin name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::plugin_map")]
    pub plugin: BTreeMap<String, Value>,
}

/// Observed state of a `Middleware`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareStatus {
    /// Standard conditions (e.g. whether the gateway accepted the middleware).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}

/// `addPrefix` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddPrefix {
    /// Prefix to add before the path; should start with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// `stripPrefix` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StripPrefix {
    /// Prefixes to strip from the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Deprecated: replace an empty stripped path with `/` (Traefik default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_slash: Option<bool>,
}

/// `stripPrefixRegex` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StripPrefixRegex {
    /// Regular expressions matching the prefixes to strip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regex: Vec<String>,
}

/// `replacePath` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplacePath {
    /// New request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `replacePathRegex` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplacePathRegex {
    /// Regular expression matching the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Replacement, which may use capture groups (`$1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// `chain` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    /// Middlewares run in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<MiddlewareRef>,
}

/// `headers` middleware: every field of Traefik v3's `Headers`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    /// Headers set on the request; an empty value removes the header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_request_headers: BTreeMap<String, String>,
    /// Headers set on the response; an empty value removes the header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_response_headers: BTreeMap<String, String>,

    /// CORS: whether the request may include credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_allow_credentials: Option<bool>,
    /// CORS: `Access-Control-Allow-Headers` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_headers: Vec<String>,
    /// CORS: `Access-Control-Allow-Methods` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_methods: Vec<String>,
    /// CORS: allowed origins, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_origin_list: Vec<String>,
    /// CORS: allowed origins as regular expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_origin_list_regex: Vec<String>,
    /// CORS: `Access-Control-Expose-Headers` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_control_expose_headers: Vec<String>,
    /// CORS: how long a preflight response may be cached, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_max_age: Option<i64>,
    /// CORS: add/update `Vary` when the allowed origin list is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_vary_header: Option<bool>,

    /// Allowed host names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Headers that may hold the proxied host name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts_proxy_headers: Vec<String>,
    /// Header/value pairs that mark a request as HTTPS (e.g. `X-Forwarded-Proto: https`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ssl_proxy_headers: BTreeMap<String, String>,
    /// `Strict-Transport-Security` max-age; 0 disables the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_seconds: Option<i64>,
    /// Append `includeSubDomains` to the STS header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_include_subdomains: Option<bool>,
    /// Append `preload` to the STS header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_preload: Option<bool>,
    /// Send the STS header on plain HTTP too.
    #[serde(
        default,
        rename = "forceSTSHeader",
        skip_serializing_if = "Option::is_none"
    )]
    pub force_sts_header: Option<bool>,
    /// Send `X-Frame-Options: DENY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_deny: Option<bool>,
    /// `X-Frame-Options` value; overrides `frameDeny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_frame_options_value: Option<String>,
    /// Send `X-Content-Type-Options: nosniff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type_nosniff: Option<bool>,
    /// Send `X-XSS-Protection: 1; mode=block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_xss_filter: Option<bool>,
    /// `X-XSS-Protection` value; overrides `browserXssFilter`.
    #[serde(
        default,
        rename = "customBrowserXSSValue",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_browser_xss_value: Option<String>,
    /// `Content-Security-Policy` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    /// `Content-Security-Policy-Report-Only` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_security_policy_report_only: Option<String>,
    /// HPKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `Referrer-Policy` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_policy: Option<String>,
    /// `Permissions-Policy` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_policy: Option<String>,
    /// Relax host, SSL and STS checks for development.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_development: Option<bool>,

    /// Deprecated: use `permissionsPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_policy: Option<String>,
    /// Deprecated: use entry point redirection or `redirectScheme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect: Option<bool>,
    /// Deprecated: use entry point redirection or `redirectScheme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_temporary_redirect: Option<bool>,
    /// Deprecated: use `redirectRegex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_host: Option<String>,
    /// Deprecated: use `redirectRegex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_force_host: Option<bool>,
}

/// `redirectScheme` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RedirectScheme {
    /// Scheme of the new URL (`https`, `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Port of the new URL; the default port of the scheme is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// 301 (GET) or 308 instead of 302 (GET) or 307.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<bool>,
}

/// `redirectRegex` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RedirectRegex {
    /// Regular expression matched against the request URL (`scheme://host[:port]/path?query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The new URL, which may use capture groups (`${1}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// 301 (GET) or 308 instead of 302 (GET) or 307.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<bool>,
}

/// `basicAuth` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// `user:hash` lines in htpasswd format (bcrypt, `{SHA}`, apr1 or `$1$` MD5).
    /// Traefik's file provider field; its CRD reads users from `secret` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Name of the Secret holding the users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Realm of the `WWW-Authenticate` challenge (default `traefik`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Remove the `Authorization` header before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_header: Option<bool>,
    /// Header that carries the authenticated user upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_field: Option<String>,
}

/// `digestAuth` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DigestAuth {
    /// `user:realm:hash` lines in htdigest format (the hash is MD5 of `user:realm:password`).
    /// Traefik's file provider field; its CRD reads users from `secret` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Name of the Secret holding the users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Realm of the `WWW-Authenticate` challenge (default `traefik`); only users of this
    /// realm authenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Remove the `Authorization` header before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_header: Option<bool>,
    /// Header that carries the authenticated user upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_field: Option<String>,
}

/// `passTLSClientCert` middleware: what of the client's TLS certificates goes upstream.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PassTlsClientCert {
    /// Send the certificates, base64 DER, in `X-Forwarded-Tls-Client-Cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<bool>,
    /// Send the selected fields in `X-Forwarded-Tls-Client-Cert-Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<TlsClientCertInfo>,
}

/// `passTLSClientCert.info`: the certificate fields sent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsClientCertInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<bool>,
    /// Subject alternative names: DNS names, e-mail addresses, IPs, URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sans: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<TlsClientCertSubject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<TlsClientCertIssuer>,
}

/// `passTLSClientCert.info.subject`: the subject's attributes sent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsClientCertSubject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_component: Option<bool>,
}

/// `passTLSClientCert.info.issuer`: the issuer's attributes sent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsClientCertIssuer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_component: Option<bool>,
}

/// `contentType` middleware: in Traefik v3, it turns on Content-Type detection for
/// responses that have none; `autoDetect: false` (deprecated) makes it do nothing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContentType {
    /// Deprecated in Traefik v3; `false` turns the middleware off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_detect: Option<bool>,
}

/// How the client IP is read (Traefik `ipStrategy`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IpStrategy {
    /// Take the IP at this position of `X-Forwarded-For`, counted from the right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    /// Take the rightmost `X-Forwarded-For` IP outside these ranges.
    #[serde(default, rename = "excludedIPs", skip_serializing_if = "Vec::is_empty")]
    pub excluded_ips: Vec<String>,
    /// Treat IPv6 addresses of one subnet of this prefix length as one client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_subnet: Option<i64>,
}

/// `ipAllowList` middleware (and its deprecated alias `ipWhiteList`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IpAllowList {
    /// Allowed IPs or CIDR ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_range: Vec<String>,
    /// How the client IP is read; the connection's peer when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_strategy: Option<IpStrategy>,
    /// Status of refused requests (default 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_status_code: Option<i64>,
}

/// What groups requests as coming from one source (Traefik `sourceCriterion`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SourceCriterion {
    /// The client IP, read with this strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_strategy: Option<IpStrategy>,
    /// The value of this request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_name: Option<String>,
    /// The request's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_host: Option<bool>,
}

/// `rateLimit` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests allowed per `period` on average; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<i64>,
    /// Period of `average`: seconds, or a duration such as `1m` (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub period: Option<IntOrString>,
    /// Requests allowed at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<i64>,
    /// What a source is (default: the client IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterion>,
    /// Shared buckets in Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub redis: Option<Value>,
}

/// `inFlightReq` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InFlightReq {
    /// Requests of one source allowed in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// What a source is (default: the request's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterion>,
}

/// `buffering` middleware: body size limits (0 or absent: none).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Buffering {
    /// A larger request body is answered 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<i64>,
    /// Traefik's memory threshold before spilling the request body to disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_request_body_bytes: Option<i64>,
    /// A larger response body is answered 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_body_bytes: Option<i64>,
    /// Traefik's memory threshold before spilling the response body to disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_response_body_bytes: Option<i64>,
    /// When to replay the buffered request (e.g. `IsNetworkError() && Attempts() < 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_expression: Option<String>,
}

/// `compress` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Compress {
    /// Response media types never compressed (`application/grpc` always is not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_content_types: Vec<String>,
    /// The only response media types compressed; exclusive with `excludedContentTypes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_content_types: Vec<String>,
    /// Responses shorter than this are sent as they are (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_response_body_bytes: Option<i64>,
    /// Encodings offered, by priority at equal client preference (default gzip, br, zstd).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encodings: Vec<String>,
    /// Encoding used when the client sends no `Accept-Encoding`, or accepts `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_encoding: Option<String>,
}

/// `retry` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Attempts in all, the first included (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
    /// First wait of the exponential backoff (seconds, or a duration such as `100ms`);
    /// the longest wait is twice this. None: retry at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub initial_interval: Option<IntOrString>,
    /// Time allowed for all attempts together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub timeout: Option<IntOrString>,
    /// Largest request body kept for replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<i64>,
    /// Response statuses (or ranges such as `500-599`) also retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// Do not retry on network errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_retry_on_network_error: Option<bool>,
    /// Retry non-idempotent methods too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_non_idempotent_method: Option<bool>,
}

/// `errors` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Errors {
    /// Statuses that get the error page: codes or ranges such as `500-599`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// Statuses sent instead of the upstream's (`"418": 404`, `"500-599": 500`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_rewrites: BTreeMap<String, i64>,
    /// The Service serving the error pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// Path of the error page; `{status}` and `{url}` are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `forwardAuth` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ForwardAuth {
    /// URL of the authentication server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Pass the client's `X-Forwarded-*` headers on instead of setting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_forward_header: Option<bool>,
    /// Headers copied from the server's answer onto the upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_response_headers: Vec<String>,
    /// Headers copied from the server's answer whose name matches this expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_response_headers_regex: Option<String>,
    /// Request headers sent to the server (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_request_headers: Vec<String>,
    /// TLS towards an `https` server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Cookies of the server's answer added to the response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_auth_cookies_to_response: Vec<String>,
    /// Send the request body to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_body: Option<bool>,
    /// Largest body sent with `forwardBody`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<i64>,
    /// Header carrying the authenticated user upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_field: Option<String>,
    /// Keep a relative `Location` of the server's answer as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_location_header: Option<bool>,
    /// Send the request's method instead of GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_request_method: Option<bool>,
    /// Largest answer read from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_body_size: Option<i64>,
}

/// `forwardAuth.tls`: TLS towards the authentication server (Traefik's
/// `ClientTLSWithCAOptional`). The Secrets are of the Middleware's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// Secret holding the CA that verifies the server's certificate, under `tls.ca` or `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<String>,
    /// Secret holding the client certificate presented, under `tls.crt` and `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret: Option<String>,
    /// Accept the server's certificate without verifying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Deprecated: whether a client certificate is required is the server's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_optional: Option<bool>,
}

/// `circuitBreaker` middleware.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    /// When to trip, e.g. `NetworkErrorRatio() > 0.30`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// How often the expression is checked (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub check_period: Option<IntOrString>,
    /// How long a tripped breaker answers `responseCode` (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub fallback_duration: Option<IntOrString>,
    /// How long the recovery ramp lasts (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub recovery_duration: Option<IntOrString>,
    /// Status answered while tripped (default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<i64>,
}
