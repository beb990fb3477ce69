//! Which certificate files each TLS role reads.
//!
//! Every role reads the same three PEM files, [`CertificateFiles`]; what differs is the
//! role's extras (a child's `serverName`, a client's `insecureSkipVerify`) and, for a
//! listener, the spelling of the CA key (`clientCA`). The role structs keep their own
//! fields rather than `#[serde(flatten)]` a shared one: serde's flatten loses the key
//! path of errors inside it (an unknown or mistyped key would no longer be named).

use std::path::PathBuf;

use serde::Deserialize;

/// The PEM files one end of a TLS connection reads: the certificate chain it presents
/// and that chain's private key, and the roots the other end's certificate must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFiles {
    /// PEM certificate chain presented to the other end.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert`.
    pub key: Option<PathBuf>,
    /// PEM roots the other end's certificate must chain to.
    pub ca: Option<PathBuf>,
}

impl CertificateFiles {
    /// The configuration key of `ca` in the client roles (children, collectors).
    pub const CA_KEY: &'static str = "ca";
}

/// TLS of a listener. `cert` and `key` are optional together: `tls: {}` terminates TLS
/// with the certificates of resources only (Secrets chosen by SNI, the default TLSStore's
/// default certificate, else a generated one), as Traefik's `http.tls: {}` does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    /// PEM certificate chain and key: served for the names of the certificate, and as
    /// this entrypoint's certificate when no other matches the client's SNI.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// PEM roots that client certificates must chain to: mutual TLS, every client must
    /// present one (a child's uplink entrypoint accepting only its parents).
    #[serde(rename = "clientCA")]
    pub client_ca: Option<PathBuf>,
}

impl ListenerTls {
    /// The configuration key of the listener's CA.
    pub const CA_KEY: &'static str = "clientCA";

    pub fn files(&self) -> CertificateFiles {
        CertificateFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.client_ca.clone(),
        }
    }

    pub(crate) fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.cert, &mut self.key, &mut self.client_ca]
            .into_iter()
            .flatten()
    }
}

/// TLS towards a child gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ChildTls {
    /// Name verified against the child's certificate (default: the address's host).
    pub server_name: Option<String>,
    /// PEM bundle of roots to trust instead of the system's.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Skip server verification: only for testing.
    pub insecure_skip_verify: bool,
}

impl ChildTls {
    pub fn files(&self) -> CertificateFiles {
        CertificateFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }

    pub(crate) fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.ca, &mut self.cert, &mut self.key]
            .into_iter()
            .flatten()
    }
}

/// TLS towards a collector (the system's roots are always trusted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Tls {
    /// PEM bundle of extra roots to trust.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Skip server verification: only for testing.
    pub insecure_skip_verify: bool,
}

impl Tls {
    pub fn files(&self) -> CertificateFiles {
        CertificateFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }
}
