use std::sync::Arc;

use super::*;
use crate::EntryPoints;
use traverse_api::{TLSOption, TLSStore};

/// A certificate for `names` and its key, PEM.
fn identity(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn secret(name: &str, cert: &str, key: &str) -> Arc<Secret> {
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: {cert:?}\n  tls.key: {key:?}\n"
    );
    Arc::new(serde_saphyr::from_str(&yaml).expect("secret"))
}

fn route(name: &str, host: &str, secret: &str) -> Arc<IngressRoute> {
    let yaml = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  routes: [{{match: \"Host(`{host}`)\"}}]\n  tls: {{secretName: {secret}}}\n"
    );
    Arc::new(serde_saphyr::from_str(&yaml).expect("route"))
}

fn entry_points() -> EntryPoints {
    EntryPoints::new([("web".to_owned(), false), ("websecure".to_owned(), false)])
        .with_tls(["websecure".to_owned()])
}

/// The leaf certificate served on websecure for `sni`.
fn served(table: &TlsTable, sni: &str) -> Option<Vec<u8>> {
    table
        .find("websecure", sni)
        .map(|key| key.cert[0].as_ref().to_vec())
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .as_ref()
        .to_vec()
}

#[test]
fn each_host_gets_the_certificate_of_its_secret_on_tls_entrypoints_only() {
    let (a_cert, a_key) = identity(&["a.test"]);
    let (b_cert, b_key) = identity(&["*.b.test"]);
    let snapshot = Snapshot {
        secrets: vec![secret("a", &a_cert, &a_key), secret("b", &b_cert, &b_key)],
        ingress_routes: vec![route("a", "a.test", "a"), route("b", "x.b.test", "b")],
        ..Snapshot::default()
    };
    let (table, diagnostics) = TlsTranslator::default().translate(&snapshot, &entry_points());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(served(&table, "a.test"), Some(der(&a_cert)));
    assert_eq!(served(&table, "x.b.test"), Some(der(&b_cert)));
    assert_eq!(served(&table, "b.test"), None);
    assert!(table.find("web", "a.test").is_none());
    assert!(table.default.is_none());
}

#[test]
fn a_broken_secret_is_named_and_its_last_good_certificate_keeps_serving() {
    let (cert, key) = identity(&["a.test"]);
    let (_, other_key) = identity(&["a.test"]);
    let mut translator = TlsTranslator::default();
    let good = Snapshot {
        secrets: vec![secret("a", &cert, &key)],
        ingress_routes: vec![route("a", "a.test", "a")],
        ..Snapshot::default()
    };
    translator.translate(&good, &entry_points());

    let broken = Snapshot {
        secrets: vec![secret("a", &cert, &other_key)],
        ..good.clone()
    };
    let (table, diagnostics) = translator.translate(&broken, &entry_points());
    assert_eq!(served(&table, "a.test"), Some(der(&cert)));
    let on_secret = diagnostics
        .iter()
        .find(|d| d.object.as_ref().is_some_and(|o| o.kind == "Secret"))
        .expect("the Secret is reported");
    assert_eq!(on_secret.severity, Severity::Error);
    assert_eq!(on_secret.field.as_deref(), Some("stringData.tls.key"));
    assert!(
        on_secret.message.contains("not the key of the certificate"),
        "{on_secret}"
    );
    assert!(on_secret.message.contains("last good"), "{on_secret}");
    let on_route = diagnostics
        .iter()
        .find(|d| d.object.as_ref().is_some_and(|o| o.kind == "IngressRoute"))
        .expect("the route is reported");
    assert_eq!(on_route.reason, Reason::InvalidCertificate);
    assert!(on_route.reason.is_unresolved_reference());
    assert_eq!(on_route.field.as_deref(), Some("spec.tls.secretName"));

    // A fresh translator (`traverse validate`) has no last good certificate to serve.
    let (table, _) = TlsTranslator::default().translate(&broken, &entry_points());
    assert_eq!(served(&table, "a.test"), None);
}

#[test]
fn unusable_contents_name_their_field() {
    let (cert, key) = identity(&["a.test"]);
    let cases = [
        ("not pem", key.as_str(), "stringData.tls.crt", "CERTIFICATE"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            key.as_str(),
            "stringData.tls.crt",
            "X.509",
        ),
        (
            cert.as_str(),
            "garbage",
            "stringData.tls.key",
            "PEM private key",
        ),
    ];
    for (chain, private, field, says) in cases {
        let error = certificate_from_secret(&secret("s", chain, private)).expect_err(field);
        assert_eq!(error.field, field, "{error:?}");
        assert!(error.message.contains(says), "{error:?}");
    }
    let empty: Secret = serde_saphyr::from_str("metadata: {name: s}\ndata: {}\n").expect("secret");
    let error = certificate_from_secret(&empty).expect_err("empty");
    assert_eq!(error.field, "data.tls.crt");
}

#[test]
fn base64_data_is_read_like_string_data() {
    let (cert, key) = identity(&["a.test", "*.a.test"]);
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let yaml = format!(
        "metadata: {{name: s}}\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&cert),
        b64(&key)
    );
    let secret: Secret = serde_saphyr::from_str(&yaml).expect("secret");
    let certificate = certificate_from_secret(&secret).expect("usable");
    assert_eq!(certificate.names, ["a.test", "*.a.test"]);
}

#[test]
fn missing_secrets_and_the_default_store() {
    let (cert, key) = identity(&["fallback.test"]);
    let store: Arc<TLSStore> = Arc::new(
        serde_saphyr::from_str(
            "apiVersion: traefik.io/v1alpha1\nkind: TLSStore\nmetadata: {name: default, namespace: default}\nspec:\n  defaultCertificate: {secretName: fallback}\n  certificates: [{secretName: nowhere}]\n",
        )
        .expect("store"),
    );
    let snapshot = Snapshot {
        secrets: vec![secret("fallback", &cert, &key)],
        ingress_routes: vec![route("a", "a.test", "absent")],
        tls_stores: vec![store],
        ..Snapshot::default()
    };
    let (table, diagnostics) = TlsTranslator::default().translate(&snapshot, &entry_points());
    let default = table.default.as_ref().expect("the store's default");
    assert_eq!(default.cert[0].as_ref(), der(&cert).as_slice());
    assert_eq!(served(&table, "fallback.test"), None);
    let missing: Vec<(String, Option<String>)> = diagnostics
        .iter()
        .filter(|d| d.reason == Reason::SecretNotFound)
        .map(|d| {
            (
                d.object.as_ref().expect("object").kind.clone(),
                d.field.clone(),
            )
        })
        .collect();
    assert_eq!(
        missing,
        [
            (
                "IngressRoute".to_owned(),
                Some("spec.tls.secretName".to_owned())
            ),
            (
                "TLSStore".to_owned(),
                Some("spec.certificates[0].secretName".to_owned())
            ),
        ]
    );
}

fn tls_option(yaml_spec: &str) -> Arc<TLSOption> {
    let yaml = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: strict, namespace: default}}\nspec:\n{yaml_spec}"
    );
    Arc::new(serde_saphyr::from_str(&yaml).expect("option"))
}

fn route_with_options(name: &str, rule: &str, options: &str) -> Arc<IngressRoute> {
    let yaml = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  routes: [{{match: \"{rule}\"}}]\n  tls: {{options: {{name: {options}}}}}\n"
    );
    Arc::new(serde_saphyr::from_str(&yaml).expect("route"))
}

#[test]
fn a_routes_tls_option_applies_to_the_hosts_of_its_rules() {
    let snapshot = Snapshot {
        tls_options: vec![tls_option(
            "  minVersion: VersionTLS13\n  sniStrict: true\n  alpnProtocols: [http/1.1]\n",
        )],
        ingress_routes: vec![route_with_options(
            "a",
            "Host(`a.test`) || Host(`*.w.test`)",
            "strict",
        )],
        ..Snapshot::default()
    };
    let (table, diagnostics) = TlsTranslator::default().translate(&snapshot, &entry_points());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let hosts = &table.options["websecure"];
    assert_eq!(hosts.names(), ["*.w.test", "a.test"]);
    let options = hosts.find("x.w.test").expect("the wildcard host");
    assert_eq!(options.name, "default/strict");
    assert_eq!(options.versions, [&rustls::version::TLS13]);
    assert!(options.sni_strict && options.refuse.is_none());
    assert_eq!(options.alpn, [b"http/1.1".to_vec()]);
    assert!(table.default_options.is_none());
}

#[test]
fn what_rustls_cannot_do_is_named_and_a_missing_option_refuses_its_hosts() {
    let option = tls_option(
        "  minVersion: VersionTLS10\n  cipherSuites: [TLS_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]\n  curvePreferences: [CurveP521, X25519]\n  clientAuth: {clientAuthType: RequireAnyClientCert}\n",
    );
    let snapshot = Snapshot {
        tls_options: vec![option],
        ingress_routes: vec![
            route_with_options("a", "Host(`a.test`)", "strict"),
            route_with_options("b", "Host(`b.test`)", "absent"),
        ],
        ..Snapshot::default()
    };
    let (table, diagnostics) = TlsTranslator::default().translate(&snapshot, &entry_points());
    let on_option: Vec<(Severity, String)> = diagnostics
        .iter()
        .filter(|d| d.object.as_ref().is_some_and(|o| o.kind == "TLSOption"))
        .map(|d| (d.severity, d.field.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        on_option,
        [
            (Severity::Error, "spec.clientAuth.clientAuthType".to_owned()),
            (Severity::Warning, "spec.cipherSuites[0]".to_owned()),
            (Severity::Warning, "spec.curvePreferences[0]".to_owned()),
            (Severity::Warning, "spec.minVersion".to_owned()),
        ]
    );
    let hosts = &table.options["websecure"];
    let a = hosts.find("a.test").expect("a");
    // Unusable: its client authentication cannot be honoured, so handshakes are refused.
    assert!(a
        .refuse
        .as_deref()
        .is_some_and(|r| r.contains("clientAuthType")));
    // Both named TLS 1.2 suites (Go's ChaCha20 spelling included) and all of TLS 1.3's.
    assert_eq!(
        a.cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .count(),
        2
    );
    assert_eq!(a.kx_groups.len(), 1);
    let b = hosts.find("b.test").expect("b");
    assert!(b.refuse.as_deref().is_some_and(|r| r.contains("not found")));
    assert!(diagnostics
        .iter()
        .any(|d| d.reason == Reason::TlsOptionNotFound
            && d.field.as_deref() == Some("spec.tls.options")));
}
