//! Traefik `IngressRoute` (`traefik.io/v1alpha1`): HTTP routers.
//!
//! Field names follow Traefik v3's CRD exactly. Required fields in Traefik's schema
//! (`routes`, `match`, reference `name`s) are plain values; everything else is optional
//! and omitted again on serialization, so a manifest round-trips cleanly.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of an `IngressRoute`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "IngressRoute",
    namespaced,
    status = "IngressRouteStatus",
    derive = "PartialEq",
    doc = "IngressRoute is the CRD implementation of a Traefik HTTP router."
)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteSpec {
    /// Name of the IngressClass this route belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Entry point names to bind to; empty means all entry points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
    /// HTTP routes.
    pub routes: Vec<Route>,
    /// TLS configuration of the routers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Parent IngressRoutes for multi-layer routing: these routers become their children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<IngressRouteRef>,
}

/// Observed state of an `IngressRoute`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteStatus {
    /// Standard conditions (e.g. whether the gateway accepted the route).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}

/// One HTTP route: a rule and what it forwards to.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Router rule, e.g. ``Host(`example.com`) && PathPrefix(`/api`)``.
    pub r#match: String,
    /// Kind of the route; `Rule` is the only kind, and the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RouteKind>,
    /// Router priority; Traefik defaults it to the rule length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 9007199254740991_i64))]
    pub priority: Option<i64>,
    /// Rule syntax (`v2` or `v3`); deprecated in Traefik v3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// Upstream services: Kubernetes Services and/or TraefikServices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceRef>,
    /// Middlewares applied to the route, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<MiddlewareRef>,
    /// Per-router observability switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<RouterObservability>,
}

/// Kind of a route. Traefik's CRD allows only `Rule`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RouteKind {
    /// A rule-matched HTTP route.
    #[default]
    Rule,
}

/// Per-router observability configuration.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouterObservability {
    /// Whether access logs are enabled for this router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<bool>,
    /// Whether metrics are enabled for this router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    /// Whether tracing is enabled for this router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<bool>,
    /// Tracing verbosity: `minimal` or `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_verbosity: Option<String>,
}

/// TLS configuration of a route.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// Name of the Secret holding the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// TLSOption to use; Traefik uses `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TlsOptionRef>,
    /// TLSStore to use (only `default` is meaningful in Traefik).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<TlsStoreRef>,
    /// Certificate resolver (e.g. ACME) from the static configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_resolver: Option<String>,
    /// Domains to request certificates for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Domain>,
}

/// Reference to a `TLSOption` resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptionRef {
    /// Name of the TLSOption.
    pub name: String,
    /// Namespace of the TLSOption; defaults to the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to a `TLSStore` resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsStoreRef {
    /// Name of the TLSStore.
    pub name: String,
    /// Namespace of the TLSStore; defaults to the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A certificate domain: main name plus subject alternative names.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// Main domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// Subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
}

/// Reference to a `Middleware` resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareRef {
    /// Name of the Middleware.
    pub name: String,
    /// Namespace of the Middleware; defaults to the referencing object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to a parent `IngressRoute`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteRef {
    /// Name of the parent IngressRoute.
    pub name: String,
    /// Namespace of the parent; defaults to this route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a service reference points at.
///
/// Typed rather than a string: Traefik's CRD restricts `kind` to its two values, so
/// any other value is rejected at parse time with serde's "unknown variant" error.
/// `Uplink` is Traverse's addition (a cluster with Traefik's own CRDs rejects it; the
/// `<namespace>-<uplink>@multicluster` name works under either schema).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceKind {
    /// A Kubernetes `Service` (the default).
    #[default]
    Service,
    /// A Traefik `TraefikService` (weighted, mirroring, ... load balancers).
    TraefikService,
    /// A Traverse `Uplink` that child gateways advertise (on a parent gateway).
    Uplink,
}

/// A route upstream: a Kubernetes Service or a TraefikService (Traefik's
/// `LoadBalancerSpec`).
// The rarely set nested options are boxed: every route holds one of these, and inline
// they made it ~630 bytes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Name of the Service or TraefikService.
    pub name: String,
    /// `Service` (default), `TraefikService`, or `Uplink` (Traverse parents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ServiceKind>,
    /// Namespace of the target; defaults to the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Middlewares applied to this service only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<MiddlewareRef>,
    /// Sticky sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Box<Sticky>>,
    /// Service port: a number or a named port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub port: Option<IntOrString>,
    /// Upstream scheme (`http`, `https`, `h2c`); Traefik defaults to https for port 443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Load-balancing strategy (`wrr`, `p2c`, `hrw`, `leasttime`, deprecated `RoundRobin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Whether the client Host header is forwarded upstream (Traefik default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_host_header: Option<bool>,
    /// How responses are forwarded to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_forwarding: Option<Box<ResponseForwarding>>,
    /// Name of a ServersTransport resource (Kubernetes Services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers_transport: Option<String>,
    /// Weight within a weighted round robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// Balance to the Service's cluster IP instead of its endpoints (Traefik default: false).
    #[serde(default, rename = "nativeLB", skip_serializing_if = "Option::is_none")]
    pub native_lb: Option<bool>,
    /// Balance to node IPs and the node port for NodePort Services (Traefik default: false).
    #[serde(
        default,
        rename = "nodePortLB",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_port_lb: Option<bool>,
    /// Active health checks (ExternalName Services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Box<ServerHealthCheck>>,
    /// Passive health checks (ExternalName Services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_health_check: Option<Box<PassiveServerHealthCheck>>,
}

/// Suffix of Traefik Hub's names for uplinks: `<namespace>-<uplink>@multicluster`.
pub const MULTICLUSTER_SUFFIX: &str = "@multicluster";

impl ServiceRef {
    /// The kind, with Traefik's default (`Service`) applied.
    pub fn effective_kind(&self) -> ServiceKind {
        self.kind.unwrap_or_default()
    }

    /// Whether this reference names an uplink: `kind: Uplink`, or Traefik Hub's
    /// `<namespace>-<uplink>@multicluster` name with either kind.
    pub fn is_uplink(&self) -> bool {
        self.effective_kind() == ServiceKind::Uplink || self.name.ends_with(MULTICLUSTER_SUFFIX)
    }
}

/// Sticky sessions configuration.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Sticky {
    /// Cookie-based stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<StickyCookie>,
}

/// Sticky session cookie.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StickyCookie {
    /// Cookie name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Send the cookie over HTTPS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// Hide the cookie from client-side scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// SameSite policy: `none`, `lax` or `strict` (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    /// Seconds until expiry; negative expires at once, zero never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Cookie path (Traefik default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Cookie domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Response forwarding options.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResponseForwarding {
    /// Interval between flushes while copying the body (e.g. `100ms`; negative flushes each write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<String>,
}

/// Active health check of the servers behind a service.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerHealthCheck {
    /// Scheme of the health check URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// `http` (default) or `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Path of the health check URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HTTP method of the health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Expected status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// Port of the health check URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Interval between checks of healthy servers (duration or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub interval: Option<IntOrString>,
    /// Interval between checks of unhealthy servers (duration or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub unhealthy_interval: Option<IntOrString>,
    /// Timeout of one check (duration or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub timeout: Option<IntOrString>,
    /// Host header of the check request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Whether redirects are followed (Traefik default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// Extra headers sent with the check.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Passive health check: servers failing live traffic are taken out.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PassiveServerHealthCheck {
    /// Window in which failures count, and how long a server stays out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub failure_window: Option<IntOrString>,
    /// Consecutive failures within the window that mark a server unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_attempts: Option<i64>,
}
