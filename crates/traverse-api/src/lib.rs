//! Resource model for the Kubernetes objects Traverse reads.
//!
//! Traverse loads Traefik's `traefik.io/v1alpha1` `IngressRoute` and `Middleware`
//! manifests unchanged, so these types mirror every spec field of Traefik v3's CRDs
//! (field names included) and tolerate fields they do not know. What the gateway can
//! act on is a subset; [`support`] lists, per object, the fields that are set but not
//! acted on, so they can be reported instead of silently ignored.
//!
//! Layout:
//! - [`ingress_route`]: `IngressRoute` and its parts (routes, service refs, TLS, ...).
//! - [`middleware`]: `Middleware` with one optional field per Traefik middleware type.
//! - [`support`]: what the gateway supports today, as diagnostics.
//! - [`crds`]: the CustomResourceDefinitions committed in `crds/` (`crdgen` writes them).
//! - [`tls`]: Traefik's `TLSStore` and `TLSOption`; [`servers_transport`]: its `ServersTransport`.
//! - [`uplink`]: Traverse's own `Uplink` (`traverse.dev/v1alpha1`), exposed by children to parents.
//! - The core kinds the gateway watches ([`Service`], [`EndpointSlice`]) are re-exported.

pub mod crds;
pub mod ingress_route;
pub mod middleware;
mod schema;
pub mod servers_transport;
pub mod support;
pub mod tls;
pub mod traefik_service;
pub mod uplink;

pub use ingress_route::{
    IngressRoute, IngressRouteRef, IngressRouteSpec, IngressRouteStatus, MiddlewareRef, Route,
    RouteKind, ServiceKind, ServiceRef,
};
pub use middleware::{Middleware, MiddlewareSpec, MiddlewareStatus};
pub use servers_transport::{ServersTransport, ServersTransportSpec};
pub use tls::{TLSOption, TLSStore, TlsOptionSpec, TlsStoreSpec};
pub use traefik_service::{TraefikService, TraefikServiceSpec, TraefikServiceStatus};
pub use uplink::{Uplink, UplinkSpec, UplinkStatus};

/// Kubernetes `ConfigMap`, a source of CAs (`tls.ca`, `ca.crt`) for ServersTransports.
pub use k8s_openapi::api::core::v1::ConfigMap;
/// Kubernetes `Secret`, the source of certificates (`tls.crt`, `tls.key`) and CAs.
pub use k8s_openapi::api::core::v1::Secret;
/// Kubernetes `Service`, resolved by name from an IngressRoute service reference.
pub use k8s_openapi::api::core::v1::Service;
/// Kubernetes `EndpointSlice`, the source of upstream addresses for a `Service`.
pub use k8s_openapi::api::discovery::v1::EndpointSlice;
/// Status condition type used by every status, and its timestamp.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
/// Int-or-string values (service ports, durations) as Kubernetes encodes them.
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
/// The time library of [`Time`].
pub use k8s_openapi::jiff;

/// API group of Traefik's CRDs.
pub const GROUP: &str = "traefik.io";
/// API version of Traefik's CRDs.
pub const VERSION: &str = "v1alpha1";
