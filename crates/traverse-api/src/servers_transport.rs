//! Traefik `ServersTransport` (`traefik.io/v1alpha1`): how the gateway connects to a
//! service's servers (TLS verification, client certificate, timeouts).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `ServersTransport`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "ServersTransport",
    namespaced,
    derive = "PartialEq",
    doc = "ServersTransport is the CRD implementation of a Traefik servers transport."
)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportSpec {
    /// Name verified against the servers' certificates (and sent as SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip verification of the servers' certificates: only for testing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// CAs the servers' certificates must chain to, instead of the system's.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "rootCAs")]
    pub root_cas: Vec<RootCa>,
    /// Traefik v2's spelling of `rootCAs`: Secret names.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "rootCAsSecrets"
    )]
    pub root_cas_secrets: Vec<String>,
    /// Secrets (`tls.crt`, `tls.key`) holding client certificates presented to servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates_secrets: Vec<String>,
    /// Idle connections kept per host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_idle_conns_per_host: Option<i64>,
    /// Timeouts of the connections to the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
    /// Speak HTTP/1.1 only to the servers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "disableHTTP2"
    )]
    pub disable_http2: Option<bool>,
    /// Peer certificate URI (SPIFFE) to verify.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "peerCertURI"
    )]
    pub peer_cert_uri: Option<String>,
    /// SPIFFE configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe: Option<serde_json::Value>,
}

/// A CA bundle from a Secret or a ConfigMap (key `tls.ca` or `ca.crt`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RootCa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
}

/// `forwardingTimeouts`: durations as Go writes them (`30s`) or seconds.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ForwardingTimeouts {
    /// Longest wait for a connection to a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub dial_timeout: Option<IntOrString>,
    /// Longest wait for a server's response headers once the request is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub response_header_timeout: Option<IntOrString>,
    /// How long an idle connection to a server is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub idle_conn_timeout: Option<IntOrString>,
    /// Interval of HTTP/2 pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub ping_timeout: Option<IntOrString>,
    /// Wait for an HTTP/2 ping's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub read_idle_timeout: Option<IntOrString>,
}
