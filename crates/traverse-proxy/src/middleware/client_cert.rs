//! `passTLSClientCert`: the client's TLS certificates, or fields of them, in headers for
//! the upstream, in the format of Traefik's `passtlsclientcert` middleware.

use std::net::IpAddr;

use async_trait::async_trait;
use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::middleware::{CertInfo, NameFields};
use traverse_model::PassTlsClientCert;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

use super::{Step, Verdict};
use crate::exchange::Exchange;
use crate::Telemetry;

const CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
const CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

#[async_trait]
impl Step for PassTlsClientCert {
    fn acts_on_request(&self) -> bool {
        true
    }

    async fn request(
        &self,
        _request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        let certificates = exchange.client_certificates();
        let pem = (self.pem && !certificates.is_empty()).then(|| pem_header(certificates));
        let info = match &self.info {
            Some(info) if !certificates.is_empty() => Some(info_header(info, certificates)),
            _ => None,
        };
        // What a client sent under these names never reaches the upstream: only what the
        // gateway read from the handshake does.
        let upstream = &mut exchange.notes_mut().upstream_headers;
        for (name, value) in [(CERT, pem), (CERT_INFO, info)] {
            let value = value.and_then(|v| HeaderValue::from_str(&v).ok());
            upstream.push((name, value));
        }
        Ok(Verdict::Continue)
    }
}

/// Each certificate as base64 DER (PEM without its lines and markers), comma-separated.
fn pem_header(certificates: &[impl AsRef<[u8]>]) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    certificates
        .iter()
        .map(|der| b64.encode(der))
        .collect::<Vec<_>>()
        .join(",")
}

/// Traefik's `getCertInfo`, URL-escaped: per certificate, the selected fields as
/// `Subject="…";Issuer="…";SerialNumber="…";NB="…";NA="…";SAN="…"`, certificates
/// comma-separated. A certificate that does not parse contributes an empty entry.
fn info_header(info: &CertInfo, certificates: &[impl AsRef<[u8]>]) -> String {
    let entries: Vec<String> = certificates
        .iter()
        .map(|der| match X509Certificate::from_der(der.as_ref()) {
            Ok((_, certificate)) => cert_info(info, &certificate),
            Err(_) => String::new(),
        })
        .collect();
    query_escape(&entries.join(","))
}

fn cert_info(info: &CertInfo, certificate: &X509Certificate<'_>) -> String {
    let mut values = Vec::new();
    if let Some(fields) = &info.subject {
        let subject = name_info(fields, certificate.subject());
        if !subject.is_empty() {
            values.push(format!("Subject=\"{subject}\""));
        }
    }
    if let Some(fields) = &info.issuer {
        let issuer = name_info(fields, certificate.issuer());
        if !issuer.is_empty() {
            values.push(format!("Issuer=\"{issuer}\""));
        }
    }
    if info.serial_number {
        values.push(format!(
            "SerialNumber=\"{}\"",
            certificate.tbs_certificate.serial
        ));
    }
    if info.not_before {
        values.push(format!(
            "NB=\"{}\"",
            certificate.validity().not_before.timestamp().max(0)
        ));
    }
    if info.not_after {
        values.push(format!(
            "NA=\"{}\"",
            certificate.validity().not_after.timestamp().max(0)
        ));
    }
    if info.sans {
        let sans = sans(certificate);
        if !sans.is_empty() {
            values.push(format!("SAN=\"{}\"", sans.join(",")));
        }
    }
    values.join(";")
}

const DOMAIN_COMPONENT: &str = "0.9.2342.19200300.100.1.25";

/// The selected attributes of `name` in Traefik's order: domain components, then
/// `C`, `ST`, `L`, `O`, `OU` (each as many as there are), `SN` and `CN` (the last one,
/// as Go keeps).
fn name_info(fields: &NameFields, name: &X509Name<'_>) -> String {
    let values = |oid: &str| -> Vec<&str> {
        name.iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut parts = Vec::new();
    let mut add_all = |selected: bool, oid: &str, prefix: &str, last_only: bool| {
        if !selected {
            return;
        }
        let found = values(oid);
        let found = match (last_only, found.last()) {
            (true, Some(last)) => vec![*last],
            (true, None) => vec![],
            (false, _) => found,
        };
        parts.extend(found.into_iter().map(|v| format!("{prefix}={v}")));
    };
    add_all(fields.domain_component, DOMAIN_COMPONENT, "DC", false);
    add_all(fields.country, "2.5.4.6", "C", false);
    add_all(fields.province, "2.5.4.8", "ST", false);
    add_all(fields.locality, "2.5.4.7", "L", false);
    add_all(fields.organization, "2.5.4.10", "O", false);
    add_all(fields.organizational_unit, "2.5.4.11", "OU", false);
    add_all(fields.serial_number, "2.5.4.5", "SN", true);
    add_all(fields.common_name, "2.5.4.3", "CN", true);
    parts.join(",")
}

/// DNS names, then e-mail addresses, then IPs, then URIs, as Go's certificate lists them.
fn sans(certificate: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    let names = &extension.value.general_names;
    let mut out = Vec::new();
    for pass in 0..4 {
        for name in names {
            match (pass, name) {
                (0, GeneralName::DNSName(dns)) => out.push((*dns).to_owned()),
                (1, GeneralName::RFC822Name(email)) => out.push((*email).to_owned()),
                (2, GeneralName::IPAddress(bytes)) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    out.extend(ip.map(|ip| ip.to_string()));
                }
                (3, GeneralName::URI(uri)) => out.push((*uri).to_owned()),
                _ => {}
            }
        }
    }
    out
}

/// Go's `url.QueryEscape`: letters, digits and `-_.~` kept, space as `+`, every other
/// byte `%XX`. Written here because the form-encoding crates differ on `*` and `~`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests;
