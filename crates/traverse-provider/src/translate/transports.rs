//! A service reference's `serversTransport`: the ServersTransport in the Service's
//! namespace, its Secrets read and checked, in the model's terms.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use traverse_api::{ConfigMap, IntOrString, Secret, ServersTransport};

use super::Translator;
use crate::diagnostics::{ObjectRef, Reason, Severity};
use crate::model::{ClientTls, ServersTransport as Transport};
use crate::snapshot::Object;
use crate::tls::{certificate_from_secret, secret_value, KEY_KEY};

/// The keys of a Secret holding a CA bundle, in Traefik's order.
const CA_KEYS: [&str; 2] = ["tls.ca", "ca.crt"];

impl Translator<'_> {
    /// The ServersTransport `reference` names in `namespace` (converted once per
    /// translation), reporting on `me` when it does not exist.
    pub(super) fn servers_transport(
        &mut self,
        me: &ObjectRef,
        namespace: &str,
        reference: &str,
        field: &str,
    ) -> Option<Arc<Transport>> {
        // Traefik's `name@kubernetescrd` names the same object.
        let name = reference.split('@').next().unwrap_or_default();
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(done) = self.transports.get(&key) {
            return done.clone();
        }
        let found = self
            .snapshot
            .servers_transports
            .iter()
            .find(|t| t.key() == (namespace, name))
            .cloned();
        let converted = match found {
            Some(transport) => Some(Arc::new(self.convert(&transport, namespace, name))),
            None => {
                self.report(
                    me,
                    Severity::Warning,
                    Reason::ServersTransportNotFound,
                    Some(format!("{field}.serversTransport")),
                    format!("ServersTransport {namespace}/{name} not found; the servers are reached without it"),
                );
                None
            }
        };
        self.transports.insert(key, converted.clone());
        converted
    }

    fn convert(&mut self, transport: &ServersTransport, namespace: &str, name: &str) -> Transport {
        let me = transport.object_ref();
        let spec = &transport.spec;
        let secret = |name: &str| {
            self.snapshot
                .secrets
                .iter()
                .find(|s| s.key() == (namespace, name))
                .cloned()
        };
        let config_map = |name: &str| {
            self.snapshot
                .config_maps
                .iter()
                .find(|c| c.key() == (namespace, name))
                .cloned()
        };
        let mut problems: Vec<(Severity, Reason, String, String)> = Vec::new();
        let mut out = Transport {
            name: format!("{namespace}/{name}"),
            disable_http2: spec.disable_http2 == Some(true),
            ..Transport::default()
        };
        let mut tls = ClientTls {
            server_name: spec.server_name.clone().filter(|n| !n.is_empty()),
            insecure_skip_verify: spec.insecure_skip_verify == Some(true),
            ..ClientTls::default()
        };
        let ca_secrets = spec
            .root_cas
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                (
                    format!("spec.rootCAs[{i}]"),
                    ca.secret.clone(),
                    ca.config_map.clone(),
                )
            })
            .chain(
                spec.root_cas_secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("spec.rootCAsSecrets[{i}]"), Some(s.clone()), None)),
            );
        for (field, secret_name, config_map_name) in ca_secrets {
            if let Some(name) = config_map_name {
                match config_map(&name)
                    .ok_or("not found".to_owned())
                    .and_then(|c| config_map_roots(&c))
                {
                    Ok(certs) => tls.root_cas.extend(certs),
                    Err(why) => problems.push((
                        Severity::Error,
                        Reason::ConfigMapNotFound,
                        format!("{field}.configMap"),
                        format!("ConfigMap {name}: {why}"),
                    )),
                }
            }
            let Some(secret_name) = secret_name else {
                continue;
            };
            match secret(&secret_name)
                .ok_or("not found".to_owned())
                .and_then(|s| roots(&s))
            {
                Ok(certs) => tls.root_cas.extend(certs),
                Err(why) => problems.push((
                    Severity::Error,
                    Reason::SecretNotFound,
                    format!("{field}.secret"),
                    format!("Secret {secret_name}: {why}"),
                )),
            }
        }
        for (i, secret_name) in spec.certificates_secrets.iter().enumerate() {
            let field = format!("spec.certificatesSecrets[{i}]");
            if i > 0 {
                problems.push((
                    Severity::Warning,
                    Reason::Unsupported,
                    field,
                    "only the first client certificate is presented".into(),
                ));
                continue;
            }
            match secret(secret_name)
                .ok_or("not found".to_owned())
                .and_then(|s| identity(&s))
            {
                Ok(identity) => tls.client_identity = Some(identity),
                Err(why) => problems.push((
                    Severity::Error,
                    Reason::InvalidCertificate,
                    field,
                    format!("Secret {secret_name}: {why}"),
                )),
            }
        }
        if let Some(timeouts) = &spec.forwarding_timeouts {
            let mut duration = |value: &Option<IntOrString>, key: &str| {
                let value = value.as_ref()?;
                let parsed = match value {
                    IntOrString::Int(seconds) => {
                        u64::try_from(*seconds).ok().map(Duration::from_secs)
                    }
                    IntOrString::String(text) => go_duration(text),
                };
                if parsed.is_none() {
                    problems.push((
                        Severity::Error,
                        Reason::InvalidDocument,
                        format!("spec.forwardingTimeouts.{key}"),
                        format!(
                            "{value:?} is not a duration such as 30s or 1m30s; the default applies"
                        ),
                    ));
                }
                parsed.filter(|d| !d.is_zero())
            };
            out.dial_timeout = duration(&timeouts.dial_timeout, "dialTimeout");
            out.response_header_timeout =
                duration(&timeouts.response_header_timeout, "responseHeaderTimeout");
            out.idle_conn_timeout = duration(&timeouts.idle_conn_timeout, "idleConnTimeout");
            for (set, key) in [
                (timeouts.ping_timeout.is_some(), "pingTimeout"),
                (timeouts.read_idle_timeout.is_some(), "readIdleTimeout"),
            ] {
                if set {
                    problems.push((
                        Severity::Warning,
                        Reason::Unsupported,
                        format!("spec.forwardingTimeouts.{key}"),
                        "HTTP/2 pings to servers are not implemented".into(),
                    ));
                }
            }
        }
        for (set, key, why) in [
            (
                spec.max_idle_conns_per_host.is_some(),
                "maxIdleConnsPerHost",
                "the idle pool is sized for all servers at once (upstream.keepalivePoolSize)",
            ),
            (
                spec.peer_cert_uri.is_some(),
                "peerCertURI",
                "SPIFFE peer verification is not implemented",
            ),
            (spec.spiffe.is_some(), "spiffe", "SPIFFE is not implemented"),
        ] {
            if set {
                problems.push((
                    Severity::Warning,
                    Reason::Unsupported,
                    format!("spec.{key}"),
                    why.into(),
                ));
            }
        }
        for (severity, reason, field, message) in problems {
            self.report(&me, severity, reason, Some(field), message);
        }
        out.tls = Arc::new(tls);
        out
    }
}

/// The CA certificates of a Secret, DER: `tls.ca` or `ca.crt`, else (as Traefik still
/// accepts) the Secret's only entry whatever its key.
pub(super) fn roots(secret: &Secret) -> Result<Vec<Vec<u8>>, String> {
    let only_entry = || {
        let keys: Vec<&String> = secret
            .data
            .iter()
            .flat_map(|d| d.keys())
            .chain(secret.string_data.iter().flat_map(|d| d.keys()))
            .collect();
        match keys.as_slice() {
            [key] => secret_value(secret, key),
            _ => None,
        }
    };
    let (bytes, field) = CA_KEYS
        .iter()
        .find_map(|key| secret_value(secret, key))
        .or_else(only_entry)
        .ok_or("holds neither tls.ca nor ca.crt")?;
    pem_roots(bytes, &field)
}

/// The CA certificates of a ConfigMap's `data` (`tls.ca` or `ca.crt`), DER.
fn config_map_roots(config_map: &ConfigMap) -> Result<Vec<Vec<u8>>, String> {
    let data = config_map.data.as_ref();
    let (text, key) = CA_KEYS
        .iter()
        .find_map(|key| Some((data?.get(*key)?, key)))
        .ok_or("holds neither tls.ca nor ca.crt in data")?;
    pem_roots(text.as_bytes(), &format!("data.{key}"))
}

/// The certificates of the PEM `bytes` of `field`, each checked to be X.509, DER.
fn pem_roots(bytes: &[u8], field: &str) -> Result<Vec<Vec<u8>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field}: not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{field}: holds no CERTIFICATE section"));
    }
    for (index, der) in certs.iter().enumerate() {
        use x509_parser::prelude::FromDer;
        x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| format!("{field}: certificate {index} is not valid X.509: {e}"))?;
    }
    Ok(certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
}

/// A client certificate chain and key (DER) from a TLS Secret, checked to match.
pub(super) fn identity(secret: &Secret) -> Result<(Vec<Vec<u8>>, Vec<u8>), String> {
    let certificate =
        certificate_from_secret(secret).map_err(|e| format!("{}: {}", e.field, e.message))?;
    let (key, _) = secret_value(secret, KEY_KEY).ok_or("no tls.key")?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| e.to_string())?;
    let chain = certificate
        .key
        .cert
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    Ok((chain, key.secret_der().to_vec()))
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `1h`); a bare number is seconds.
pub(super) fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * scale).ok()?;
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::{config_map_roots, go_duration, roots};
    use std::time::Duration;
    use traverse_api::{ConfigMap, Secret};

    fn config_map(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn config_map_cas_are_read_from_tls_ca_or_ca_crt_and_checked() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
            .expect("a certificate")
            .cert;
        let pem = ca.pem();
        for key in ["tls.ca", "ca.crt"] {
            let roots = config_map_roots(&config_map(&[(key, &pem)])).expect("read");
            assert_eq!(roots, vec![ca.der().to_vec()], "{key}");
        }
        let error = config_map_roots(&config_map(&[("other", &pem)])).expect_err("no key");
        assert!(error.contains("tls.ca"), "{error}");
        let error =
            config_map_roots(&config_map(&[("ca.crt", "not a certificate")])).expect_err("no PEM");
        assert!(error.contains("data.ca.crt"), "{error}");
        assert!(config_map_roots(&ConfigMap::default()).is_err());
    }

    #[test]
    fn secret_cas_are_read_from_tls_ca_ca_crt_or_the_only_entry() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
            .expect("a certificate")
            .cert;
        let pem = ca.pem();
        let secret = |entries: &[(&str, &str)]| Secret {
            string_data: Some(
                entries
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Secret::default()
        };
        for key in ["tls.ca", "ca.crt", "bundle.pem"] {
            let found = roots(&secret(&[(key, &pem)])).expect("read");
            assert_eq!(found, vec![ca.der().to_vec()], "{key}");
        }
        // Beside other entries, only the two keys name the CA.
        let found = roots(&secret(&[("ca.crt", &pem), ("tls.crt", "x")])).expect("ca.crt");
        assert_eq!(found, vec![ca.der().to_vec()]);
        let error = roots(&secret(&[("a", &pem), ("b", &pem)])).expect_err("which one?");
        assert!(error.contains("neither tls.ca nor ca.crt"), "{error}");
        let error = roots(&secret(&[("bundle.pem", "not PEM")])).expect_err("no PEM");
        assert!(error.contains("stringData.bundle.pem"), "{error}");
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("30s", Some(Duration::from_secs(30))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2h", Some(Duration::from_secs(7200))),
            ("15", Some(Duration::from_secs(15))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("s", None),
            ("10x", None),
            ("", Some(Duration::ZERO)),
        ];
        for (text, expected) in cases {
            assert_eq!(go_duration(text), expected, "{text}");
        }
    }
}
