//! TLS towards a child: the same files serve the request path (Pingora's rustls
//! connector) and the advertisement and health requests (hyper-rustls).

use std::sync::Arc;

use pingora::prelude::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use traverse_telemetry::export::tls::TlsMaterial;
use traverse_telemetry::export::TlsOptions;

/// Loaded TLS settings of one child.
pub struct ChildTls {
    /// Verified against the child's certificate, and sent as SNI.
    pub server_name: String,
    /// The same, as the background requests' TLS takes it.
    pub verified_name: rustls::pki_types::ServerName<'static>,
    /// For the background requests.
    pub client_config: rustls::ClientConfig,
    ca: Option<Arc<[WrappedX509]>>,
    identity: Option<Arc<CertKey>>,
    verify: bool,
}

impl std::fmt::Debug for ChildTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildTls")
            .field("server_name", &self.server_name)
            .field("ca", &self.ca.is_some())
            .field("mutual", &self.identity.is_some())
            .field("verify", &self.verify)
            .finish()
    }
}

impl ChildTls {
    /// Reads and checks the files of `config`; `address` gives the default server name.
    pub fn load(config: &traverse_config::ChildTls, address: &str) -> Result<Self, String> {
        let material = TlsMaterial::load(&TlsOptions {
            files: config.files(),
            insecure_skip_verify: config.insecure_skip_verify,
        })
        .map_err(|e| e.to_string())?;
        let client_config = material.rustls_config().map_err(|e| e.to_string())?;
        let server_name = match &config.server_name {
            Some(name) => name.clone(),
            None => host_of(address).to_owned(),
        };
        let verified_name = rustls::pki_types::ServerName::try_from(server_name.clone())
            .map_err(|e| format!("server name {server_name:?}: {e}"))?;
        // The certificates were parsed by rustls already; these copies are what
        // Pingora's connector takes.
        let ca = material.ca_certificates().map(|certs| {
            certs
                .iter()
                .map(|c| WrappedX509::new(c.to_vec(), parse_x509))
                .collect::<Vec<_>>()
                .into()
        });
        let identity = material.client_identity().map(|(chain, key)| {
            Arc::new(CertKey::new(
                chain.iter().map(|c| c.to_vec()).collect(),
                key.secret_der().to_vec(),
            ))
        });
        Ok(ChildTls {
            server_name,
            verified_name,
            client_config,
            ca,
            identity,
            verify: !material.insecure_skip_verify(),
        })
    }

    /// A TLS peer for `address` with these settings.
    pub fn peer(&self, address: std::net::SocketAddr) -> HttpPeer {
        let mut peer = HttpPeer::new(address, true, self.server_name.clone());
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.identity.clone();
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
        peer
    }
}

/// `host` of `host:port` (brackets of an IPv6 literal removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_defaults_to_the_address_host() {
        assert_eq!(host_of("child-a.example.com:9443"), "child-a.example.com");
        assert_eq!(host_of("10.0.0.1:9443"), "10.0.0.1");
        assert_eq!(host_of("[::1]:9443"), "::1");
    }

    #[test]
    fn unreadable_files_are_named() {
        let config = traverse_config::ChildTls {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let error = ChildTls::load(&config, "a:1").expect_err("missing file");
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
