//! Traefik `TLSStore` and `TLSOption` (`traefik.io/v1alpha1`): where certificates not
//! named by a route come from, and how handshakes are negotiated.
//!
//! Field names follow Traefik v3's CRDs; every field is optional so that manifests
//! written for Traefik load unchanged, and what the gateway does not act on is reported.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `TLSStore`. Only the store named `default` is used, as in Traefik.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "TLSStore",
    namespaced,
    derive = "PartialEq",
    doc = "TLSStore is the CRD implementation of a Traefik TLS store."
)]
#[serde(rename_all = "camelCase")]
pub struct TlsStoreSpec {
    /// Certificates offered by SNI on every TLS entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateRef>,
    /// The certificate served when none matches the client's SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<CertificateRef>,
    /// A default certificate from a resolver (ACME): not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_generated_cert: Option<GeneratedCert>,
}

/// A certificate held by a Secret in the store's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRef {
    /// Name of the Secret (`tls.crt` and `tls.key`).
    pub secret_name: String,
}

/// Traefik's `defaultGeneratedCert`: a default certificate obtained by a resolver.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedCert {
    /// Name of the certificate resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// Domain the certificate is obtained for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<crate::ingress_route::Domain>,
}

/// Desired state of a `TLSOption`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "TLSOption",
    namespaced,
    derive = "PartialEq",
    doc = "TLSOption is the CRD implementation of a Traefik TLS option."
)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptionSpec {
    /// Oldest protocol version accepted, e.g. `VersionTLS12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Newest protocol version accepted, e.g. `VersionTLS13`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Cipher suites (Go names, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// Key exchange groups, e.g. `CurveP256`, `X25519`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve_preferences: Vec<String>,
    /// Client certificate authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Refuse handshakes whose SNI matches no certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni_strict: Option<bool>,
    /// ALPN protocols offered, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    /// Disable TLS session tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_session_tickets: Option<bool>,
    /// Deprecated in Traefik; without effect in TLS 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_server_cipher_suites: Option<bool>,
}

/// `TLSOption.spec.clientAuth`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuth {
    /// Secrets (`tls.ca` or `ca.crt`) holding the CAs client certificates must chain to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_names: Vec<String>,
    /// `NoClientCert`, `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth_type: Option<String>,
}
