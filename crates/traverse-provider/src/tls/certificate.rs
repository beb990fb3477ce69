//! A Secret's `tls.crt` and `tls.key` checked and turned into a certificate rustls serves.
//!
//! Everything is checked here, before a handshake can meet it: the PEM sections, the DER
//! of every certificate (x509-parser, which returns errors rather than panicking), and
//! that the key is the certificate's (rustls compares the public keys).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use traverse_api::Secret;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// A usable certificate and the DNS names it is served for.
#[derive(Debug)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    /// Subject alternative DNS names (`*.example.com` included), else the subject's CN.
    pub names: Vec<String>,
}

/// Why a Secret holds no usable certificate, and which of its fields says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateError {
    /// `data.tls.crt`, `stringData.tls.key`, ...
    pub field: String,
    pub message: String,
}

/// The key of a Secret holding the certificate chain.
pub const CERT_KEY: &str = "tls.crt";
/// The key of a Secret holding the private key.
pub const KEY_KEY: &str = "tls.key";

/// The bytes of `key` in a Secret, and the field they come from: `data` (already
/// base64-decoded by the type) first, then `stringData` (what a file may hold).
pub fn secret_value<'a>(secret: &'a Secret, key: &str) -> Option<(&'a [u8], String)> {
    let data = secret.data.as_ref().and_then(|d| d.get(key));
    if let Some(bytes) = data {
        return Some((bytes.0.as_slice(), format!("data.{key}")));
    }
    let text = secret.string_data.as_ref().and_then(|d| d.get(key))?;
    Some((text.as_bytes(), format!("stringData.{key}")))
}

/// The certificate a Secret holds, checked.
pub fn certificate_from_secret(secret: &Secret) -> Result<Certificate, CertificateError> {
    let missing = |key: &str| CertificateError {
        field: format!("data.{key}"),
        message: "is missing; a TLS Secret holds tls.crt and tls.key".into(),
    };
    let (chain, chain_field) = secret_value(secret, CERT_KEY).ok_or_else(|| missing(CERT_KEY))?;
    let (key, key_field) = secret_value(secret, KEY_KEY).ok_or_else(|| missing(KEY_KEY))?;
    certificate_from_pem(chain, &chain_field, key, &key_field)
}

/// A PEM chain and key checked into a [`Certificate`]; the fields name them in errors.
pub fn certificate_from_pem(
    chain: &[u8],
    chain_field: &str,
    key: &[u8],
    key_field: &str,
) -> Result<Certificate, CertificateError> {
    let chain_error = |message: String| CertificateError {
        field: chain_field.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| chain_error(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(chain_error("holds no CERTIFICATE section".into()));
    }
    let mut names = Vec::new();
    for (index, der) in certs.iter().enumerate() {
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| chain_error(format!("certificate {index} is not valid X.509: {e}")))?;
        if index == 0 {
            names = dns_names(&parsed);
        }
    }
    if names.is_empty() {
        return Err(chain_error(
            "the certificate holds no DNS name (subjectAltName or CN) to serve it for".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| CertificateError {
        field: key_field.to_owned(),
        message: format!("not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(certs, key, &provider).map_err(|e| CertificateError {
        field: key_field.to_owned(),
        message: match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("is not the key of the certificate in {chain_field}")
            }
            other => format!("unusable private key: {other}"),
        },
    })?;
    Ok(Certificate {
        key: Arc::new(key),
        names,
    })
}

/// The DNS names a certificate is for: its subjectAltName DNS entries, else its CN.
fn dns_names(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = match certificate.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            certificate
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    names
}
