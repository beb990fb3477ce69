//! Certificate files: read and parsed once, at construction, so that mistakes
//! surface as [`ConfigError`]s naming the file and its configuration key.
//! [`PemFiles`] is the one reader of certificate files (listeners, children and
//! collectors); [`TlsMaterial`] is the client side built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use traverse_config::CertificateFiles;

use super::{ConfigError, TlsOptions};

/// One PEM file: its text (tonic takes TLS material as PEM) and what it holds.
pub struct Pem<T> {
    pub text: Vec<u8>,
    pub parsed: T,
}

/// The files of a [`CertificateFiles`], read and parsed.
pub struct PemFiles {
    /// The certificate chain and its key; both or neither.
    pub identity: Option<(
        Pem<Vec<CertificateDer<'static>>>,
        Pem<PrivateKeyDer<'static>>,
    )>,
    /// The roots the other end's certificate must chain to.
    pub ca: Option<Pem<Vec<CertificateDer<'static>>>>,
}

impl PemFiles {
    /// Reads and parses every file `files` names. `ca_key` is the configuration key
    /// of the CA file in the role's YAML (`ca`, or a listener's `clientCA`).
    pub fn read(files: &CertificateFiles, ca_key: &'static str) -> Result<Self, ConfigError> {
        // Checked before reading: a lone file is a configuration mistake, not an I/O one.
        match (&files.cert, &files.key) {
            (None, Some(key)) => return Err(ConfigError::KeyWithoutCert(key.clone())),
            (Some(cert), None) => return Err(ConfigError::CertWithoutKey(cert.clone())),
            _ => {}
        }
        let ca = match &files.ca {
            Some(path) => Some(read_certs(path, "CA file", ca_key)?),
            None => None,
        };
        let identity = match (&files.cert, &files.key) {
            (Some(cert_path), Some(key_path)) => {
                let chain = read_certs(cert_path, "certificate", "cert")?;
                let text = read(key_path, "key", "key")?;
                let key =
                    PrivateKeyDer::from_pem_slice(&text).map_err(|e| ConfigError::InvalidPem {
                        what: "key",
                        key: "key",
                        path: key_path.clone(),
                        reason: pem_reason(e, "PRIVATE KEY"),
                    })?;
                Some((chain, Pem { text, parsed: key }))
            }
            _ => None,
        };
        Ok(PemFiles { identity, ca })
    }
}

/// Parsed TLS options of a client. Also used for the parent's connections to its
/// children.
pub struct TlsMaterial {
    files: PemFiles,
    insecure_skip_verify: bool,
}

impl TlsMaterial {
    /// Reads and checks the files `options` name.
    pub fn load(options: &TlsOptions) -> Result<Self, ConfigError> {
        if options.insecure_skip_verify && options.files.ca.is_some() {
            return Err(ConfigError::CaWithInsecure);
        }
        let material = Self {
            files: PemFiles::read(&options.files, CertificateFiles::CA_KEY)?,
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
            if let Some(ca) = &self.files.ca {
                for cert in &ca.parsed {
                    roots
                        .add(cert.clone())
                        .map_err(|e| ConfigError::Tls(format!("unusable CA certificate: {e}")))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        match &self.files.identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.parsed.clone(), key.parsed.clone_key())
                .map_err(|e| ConfigError::Tls(format!("client certificate and key: {e}"))),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The extra trusted CA certificates (DER), if any.
    pub fn ca_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.files.ca.as_ref().map(|ca| ca.parsed.as_slice())
    }

    /// The client certificate chain and key (DER), for mutual TLS.
    pub fn client_identity(&self) -> Option<(&[CertificateDer<'static>], &PrivateKeyDer<'static>)> {
        self.files
            .identity
            .as_ref()
            .map(|(chain, key)| (chain.parsed.as_slice(), &key.parsed))
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
        if let Some((chain, key)) = &self.files.identity {
            config = config.identity(Identity::from_pem(&chain.text, &key.text));
        }
        if self.insecure_skip_verify {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            return (config, Some(Arc::new(SkipServerVerification(provider))));
        }
        config = config.with_webpki_roots();
        if let Some(ca) = &self.files.ca {
            config = config.ca_certificate(Certificate::from_pem(&ca.text));
        }
        (config, None)
    }
}

fn read(path: &Path, what: &'static str, key: &'static str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        key,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(
    path: &Path,
    what: &'static str,
    key: &'static str,
) -> Result<Pem<Vec<CertificateDer<'static>>>, ConfigError> {
    let text = read(path, what, key)?;
    let invalid = |reason: String| ConfigError::InvalidPem {
        what,
        key,
        path: PathBuf::from(path),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(pem_reason(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE section found".to_owned()));
    }
    Ok(Pem {
        text,
        parsed: certs,
    })
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
            files: CertificateFiles {
                ca: Some(path.clone()),
                ..CertificateFiles::default()
            },
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
            files: CertificateFiles {
                ca: Some(path),
                ..CertificateFiles::default()
            },
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
            files: CertificateFiles {
                key: Some(key),
                ..CertificateFiles::default()
            },
            ..TlsOptions::default()
        });
        assert!(
            message.contains("key_file `client.key` is set without cert_file"),
            "{message}"
        );

        let message = load_error(TlsOptions {
            files: CertificateFiles {
                cert: Some(PathBuf::from("client.crt")),
                ..CertificateFiles::default()
            },
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
            files: CertificateFiles {
                ca: Some(PathBuf::from("ca.pem")),
                ..CertificateFiles::default()
            },
            insecure_skip_verify: true,
        });
        assert!(message.contains("insecure_skip_verify"), "{message}");
    }

    #[test]
    fn a_missing_file_is_named_with_its_config_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        let cert = dir.path().join("cert.pem");
        let params = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).expect("cert");
        std::fs::write(&cert, params.cert.pem()).expect("write");
        let files = |cert: &Path, key: &Path, ca: Option<&Path>| CertificateFiles {
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
            ca: ca.map(Path::to_owned),
        };
        let cases = [
            (files(&missing, &missing, None), "ca", "(cert)"),
            (files(&cert, &missing, None), "ca", "(key)"),
            (files(&cert, &missing, Some(&missing)), "ca", "(ca)"),
            (
                files(&cert, &missing, Some(&missing)),
                "clientCA",
                "(clientCA)",
            ),
        ];
        for (files, ca_key, named) in cases {
            let message = match PemFiles::read(&files, ca_key) {
                Ok(_) => panic!("{files:?} was read"),
                Err(e) => e.to_string(),
            };
            assert!(message.starts_with("cannot read TLS"), "{message}");
            assert!(message.contains(named), "{message}");
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_pem_is_named_with_its_config_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "just some text\n").expect("write");
        let files = CertificateFiles {
            cert: Some(text.clone()),
            key: Some(text.clone()),
            ca: None,
        };
        let message = match PemFiles::read(&files, CertificateFiles::CA_KEY) {
            Ok(_) => panic!("text was read as a certificate"),
            Err(e) => e.to_string(),
        };
        assert!(message.contains("invalid TLS certificate"), "{message}");
        assert!(message.contains("(cert)"), "{message}");
    }
}
