//! A TLSOption turned into rustls' terms, each field checked and what rustls cannot do
//! (TLS 1.0/1.1, CBC and RSA key-exchange suites, P-521) reported naming the field.

use std::sync::Arc;

use rustls::crypto::ring::{ALL_CIPHER_SUITES, ALL_KX_GROUPS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use traverse_api::{Secret, TLSOption};
use traverse_model::tls::{ClientAuth, TlsOptions};

/// One problem of a TLSOption: its field, whether the option is unusable, and why.
pub struct Problem {
    pub field: String,
    /// The option cannot be honoured: its hosts' handshakes are refused.
    pub fatal: bool,
    pub message: String,
}

/// The keys of a Secret that may hold a CA bundle, in Traefik's order.
const CA_KEYS: [&str; 2] = ["tls.ca", "ca.crt"];

/// `option` in rustls' terms, and what was wrong with it. `secret` finds a Secret of the
/// option's namespace by name (the CAs of `clientAuth.secretNames`).
pub fn options<'a>(
    option: &TLSOption,
    name: String,
    secret: impl Fn(&str) -> Option<&'a Secret>,
) -> (TlsOptions, Vec<Problem>) {
    let spec = &option.spec;
    let mut problems = Vec::new();
    let mut problem = |field: &str, fatal: bool, message: String| {
        problems.push(Problem {
            field: field.to_owned(),
            fatal,
            message,
        })
    };
    let mut out = TlsOptions {
        name,
        sni_strict: spec.sni_strict == Some(true),
        disable_session_tickets: spec.disable_session_tickets == Some(true),
        ..TlsOptions::default()
    };

    let min = version(spec.min_version.as_deref(), "spec.minVersion", &mut problem);
    let max = version(spec.max_version.as_deref(), "spec.maxVersion", &mut problem);
    let (min, max) = (min.unwrap_or(12), max.unwrap_or(13));
    if max < 12 {
        problem(
            "spec.maxVersion",
            true,
            "rustls speaks TLS 1.2 and 1.3 only; no version is left to offer".into(),
        );
    }
    if min > max {
        problem(
            "spec.minVersion",
            true,
            "is newer than maxVersion; no version is left to offer".into(),
        );
    }
    let all: [(u8, &'static SupportedProtocolVersion); 2] =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)];
    out.versions = all
        .iter()
        .filter(|(v, _)| (min.max(12)..=max).contains(v))
        .map(|(_, version)| *version)
        .collect();

    // As in Go (and so Traefik), the list chooses TLS 1.2 suites; TLS 1.3's are all on.
    if !spec.cipher_suites.is_empty() {
        let mut suites: Vec<SupportedCipherSuite> = ALL_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for (index, name) in spec.cipher_suites.iter().enumerate() {
            match cipher_suite(name) {
                Some(suite) if !suites.contains(&suite) => suites.push(suite),
                Some(_) => {}
                None => problem(
                    &format!("spec.cipherSuites[{index}]"),
                    false,
                    format!("{name} is not offered: rustls implements only AEAD suites with ECDHE key exchange; skipped"),
                ),
            }
        }
        out.cipher_suites = suites;
    }

    for (index, name) in spec.curve_preferences.iter().enumerate() {
        let wanted = match name.as_str() {
            "CurveP256" | "secp256r1" | "P256" => Some(rustls::NamedGroup::secp256r1),
            "CurveP384" | "secp384r1" | "P384" => Some(rustls::NamedGroup::secp384r1),
            "X25519" | "x25519" => Some(rustls::NamedGroup::X25519),
            _ => None,
        };
        match wanted.and_then(|g| ALL_KX_GROUPS.iter().find(|k| k.name() == g)) {
            Some(group) => out.kx_groups.push(*group),
            None => problem(
                &format!("spec.curvePreferences[{index}]"),
                false,
                format!("{name} is not offered: rustls implements X25519, CurveP256 and CurveP384; skipped"),
            ),
        }
    }
    if !spec.curve_preferences.is_empty() && out.kx_groups.is_empty() {
        problem(
            "spec.curvePreferences",
            true,
            "none of the curves can be offered".into(),
        );
    }

    out.alpn = spec
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    if spec.prefer_server_cipher_suites.is_some() {
        problem(
            "spec.preferServerCipherSuites",
            false,
            "deprecated in Traefik and without effect; the server's order is always preferred"
                .into(),
        );
    }

    if let Some(client_auth) = &spec.client_auth {
        let kind = client_auth
            .client_auth_type
            .as_deref()
            .unwrap_or("NoClientCert");
        let mut roots = rustls::RootCertStore::empty();
        for (index, secret_name) in client_auth.secret_names.iter().enumerate() {
            let field = format!("spec.clientAuth.secretNames[{index}]");
            match secret(secret_name) {
                None => problem(&field, true, format!("Secret {secret_name} not found")),
                Some(found) => {
                    if let Err(message) = add_roots(found, &mut roots) {
                        problem(&field, true, format!("Secret {secret_name}: {message}"));
                    }
                }
            }
        }
        let roots = Arc::new(roots);
        out.client_auth = match kind {
            "NoClientCert" => ClientAuth::None,
            "VerifyClientCertIfGiven" => ClientAuth::Optional(roots),
            "RequireAndVerifyClientCert" => ClientAuth::Required(roots),
            "RequestClientCert" | "RequireAnyClientCert" => {
                problem(
                    "spec.clientAuth.clientAuthType",
                    true,
                    format!("{kind} accepts certificates without verifying them, which rustls does not do; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
                );
                ClientAuth::None
            }
            other => {
                problem(
                    "spec.clientAuth.clientAuthType",
                    true,
                    format!("{other:?} is not a client auth type"),
                );
                ClientAuth::None
            }
        };
        let verifying = matches!(
            out.client_auth,
            ClientAuth::Optional(_) | ClientAuth::Required(_)
        );
        if verifying && client_auth.secret_names.is_empty() {
            problem(
                "spec.clientAuth.secretNames",
                true,
                format!("{kind} needs the CAs client certificates chain to"),
            );
        }
    }
    (out, problems)
}

/// A Traefik version name as its minor number (`VersionTLS12` → 12).
fn version(
    name: Option<&str>,
    field: &str,
    problem: &mut impl FnMut(&str, bool, String),
) -> Option<u8> {
    match name? {
        "" => None,
        "VersionTLS10" | "VersionTLS11" => {
            if field.ends_with("minVersion") {
                problem(
                    field,
                    false,
                    "rustls does not speak TLS 1.0 or 1.1; TLS 1.2 is the oldest version offered"
                        .into(),
                );
            }
            Some(if name? == "VersionTLS10" { 10 } else { 11 })
        }
        "VersionTLS12" => Some(12),
        "VersionTLS13" => Some(13),
        other => {
            problem(
                field,
                true,
                format!("{other:?} is not a version: VersionTLS12 or VersionTLS13"),
            );
            None
        }
    }
}

/// The rustls suite of a Go (Traefik) cipher suite name.
fn cipher_suite(name: &str) -> Option<SupportedCipherSuite> {
    // Go spells the ChaCha20 suites without the hash, and TLS 1.3 suites as TLS_…
    let name = name
        .strip_suffix("_SHA256")
        .filter(|n| n.ends_with("CHACHA20_POLY1305"))
        .unwrap_or(name);
    ALL_CIPHER_SUITES.iter().copied().find(|suite| {
        let rustls_name = format!("{:?}", suite.suite());
        let rustls_name = rustls_name.replace("TLS13_", "TLS_");
        let rustls_name = rustls_name
            .strip_suffix("_SHA256")
            .filter(|n| n.ends_with("CHACHA20_POLY1305"))
            .unwrap_or(&rustls_name)
            .to_owned();
        rustls_name == name
    })
}

/// Adds the CA certificates of `secret` (`tls.ca` or `ca.crt`) to `roots`.
fn add_roots(secret: &Secret, roots: &mut rustls::RootCertStore) -> Result<(), String> {
    let (bytes, field) = CA_KEYS
        .iter()
        .find_map(|key| super::secret_value(secret, key))
        .ok_or("holds neither tls.ca nor ca.crt")?;
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field}: not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{field}: holds no CERTIFICATE section"));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("{field}: not a usable CA certificate: {e}"))?;
    }
    Ok(())
}
