//! TLS material shared by both protocols: files are read and parsed once, at
//! construction, so that mistakes surface as [`ConfigError`]s naming the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ConfigError, TlsOptions};

/// Parsed TLS options. The PEM text is kept as well because tonic takes its
/// TLS material as PEM. Also used for the parent's connections to its children.
pub struct TlsMaterial {
    ca: Option<(Vec<u8>, Vec<CertificateDer<'static>>)>,
    client: Option<ClientIdentity>,
    insecure_skip_verify: bool,
}

struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// Reads and checks the files `options` name.
    pub fn load(options: &TlsOptions) -> Result<Self, ConfigError> {
        if options.insecure_skip_verify && options.ca_file.is_some() {
            return Err(ConfigError::CaWithInsecure);
        }
        let ca = match &options.ca_file {
            Some(path) => {
                let pem = read(path, "CA file")?;
                let certs = parse_certs(&pem, path, "CA file")?;
                Some((pem, certs))
            }
            None => None,
        };
        let client = match (&options.cert_file, &options.key_file) {
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read(cert_path, "client certificate")?;
                let chain = parse_certs(&cert_pem, cert_path, "client certificate")?;
                let key_pem = read(key_path, "client key")?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    ConfigError::InvalidPem {
                        what: "client key",
                        path: key_path.clone(),
                        reason: pem_reason(e, "PRIVATE KEY"),
                    }
                })?;
                Some(ClientIdentity {
                    cert_pem,
                    key_pem,
                    chain,
                    key,
                })
            }
            (None, Some(key_path)) => return Err(ConfigError::KeyWithoutCert(key_path.clone())),
            (Some(cert_path), None) => return Err(ConfigError::CertWithoutKey(cert_path.clone())),
            (None, None) => None,
        };
        let material = Self {
            ca,
            client,
            insecure_skip_verify: options.insecure_skip_verify,
        };
        // Building the config checks what only rustls can: that the CA
        // certificates are usable trust anchors and that the key matches the
        // client certificate.
        material.rustls_config()?;
        Ok(material)
    }

    /// Client configuration without ALPN, as used for OTLP/HTTP (HTTP/1.1).
    pub fn rustls_config(&self) -> Result<ClientConfig, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Tls(e.to_string()))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipServerVerification(provider)))
        } else {
            let mut roots =
                RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some((_, certs)) = &self.ca {
                for cert in certs {
                    roots
                        .add(cert.clone())
                        .map_err(|e| ConfigError::Tls(format!("unusable CA certificate: {e}")))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        match &self.client {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| ConfigError::Tls(format!("client certificate and key: {e}"))),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The extra trusted CA certificates (DER), if any.
    pub fn ca_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.ca.as_ref().map(|(_, certs)| certs.as_slice())
    }

    /// The client certificate chain and key (DER), for mutual TLS.
    pub fn client_identity(&self) -> Option<(&[CertificateDer<'static>], &PrivateKeyDer<'static>)> {
        self.client.as_ref().map(|c| (c.chain.as_slice(), &c.key))
    }

    /// Whether the server's certificate is accepted unverified.
    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify
    }

    /// The same settings for tonic, plus the verifier to install when server
    /// verification is disabled.
    pub(super) fn tonic_config(
        &self,
    ) -> (
        tonic::transport::ClientTlsConfig,
        Option<Arc<dyn ServerCertVerifier>>,
    ) {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};

        let mut config = ClientTlsConfig::new();
        if let Some(identity) = &self.client {
            config = config.identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem));
        }
        if self.insecure_skip_verify {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            return (config, Some(Arc::new(SkipServerVerification(provider))));
        }
        config = config.with_webpki_roots();
        if let Some((pem, _)) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        (config, None)
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn parse_certs(
    pem: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidPem {
        what,
        path: PathBuf::from(path),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(pem_reason(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE section found".to_owned()));
    }
    Ok(certs)
}

fn pem_reason(error: rustls::pki_types::pem::Error, section: &str) -> String {
    match error {
        rustls::pki_types::pem::Error::NoItemsFound => format!("no {section} section found"),
        other => other.to_string(),
    }
}

/// Accepts any server certificate. Handshake signatures are still checked,
/// which costs nothing and keeps the connection bound to the presented key.
#[derive(Debug)]
struct SkipServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_error(options: TlsOptions) -> String {
        match TlsMaterial::load(&options) {
            Ok(_) => panic!("TLS options were accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_options_use_bundled_roots() {
        let material = TlsMaterial::load(&TlsOptions::default()).expect("defaults");
        material.rustls_config().expect("config");
        let (_, verifier) = material.tonic_config();
        assert!(verifier.is_none());
    }

    #[test]
    fn insecure_installs_a_verifier() {
        let options = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let material = TlsMaterial::load(&options).expect("insecure");
        assert!(material.tonic_config().1.is_some());
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let path = std::env::temp_dir().join("traverse-otlp-no-such-ca.pem");
        let message = load_error(TlsOptions {
            ca_file: Some(path.clone()),
            ..TlsOptions::default()
        });
        assert!(message.contains("cannot read TLS CA file"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty-ca.pem");
        std::fs::write(&path, "just some text\n").expect("write");
        let message = load_error(TlsOptions {
            ca_file: Some(path),
            ..TlsOptions::default()
        });
        assert!(
            message.contains("no CERTIFICATE section found"),
            "{message}"
        );
    }

    #[test]
    fn key_and_cert_come_in_pairs() {
        let key = PathBuf::from("client.key");
        let message = load_error(TlsOptions {
            key_file: Some(key),
            ..TlsOptions::default()
        });
        assert!(
            message.contains("key_file `client.key` is set without cert_file"),
            "{message}"
        );

        let message = load_error(TlsOptions {
            cert_file: Some(PathBuf::from("client.crt")),
            ..TlsOptions::default()
        });
        assert!(
            message.contains("cert_file `client.crt` is set without key_file"),
            "{message}"
        );
    }

    #[test]
    fn insecure_and_ca_conflict() {
        let message = load_error(TlsOptions {
            ca_file: Some(PathBuf::from("ca.pem")),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        });
        assert!(message.contains("insecure_skip_verify"), "{message}");
    }
}
