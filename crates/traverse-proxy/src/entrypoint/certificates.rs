//! The certificates a TLS entrypoint serves, chosen per handshake by SNI.
//!
//! Every TLS entrypoint's rustls configuration holds an [`EntryPointResolver`]; the
//! certificates themselves live in one [`Certificates`] that each reload replaces whole
//! (an atomic pointer swap). A handshake reads the table current when it starts, without
//! a lock; open connections keep the certificate they were given.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use traverse_model::tls::TlsTable;

use super::handshake::Handshakes;

/// The certificates of every TLS entrypoint, replaced whole by each reload.
#[derive(Debug)]
pub struct Certificates {
    table: ArcSwap<TlsTable>,
    /// Served when nothing else applies, as Traefik serves its generated default.
    generated: Arc<CertifiedKey>,
    /// The TLS entrypoints, whose rustls configurations each table rebuilds (TLSOptions).
    /// Written at startup and read by the control thread only: never on a request.
    handshakes: Mutex<Vec<Arc<Handshakes>>>,
}

impl Certificates {
    /// An empty table and a freshly generated self-signed default certificate.
    pub fn new() -> Result<Arc<Certificates>, String> {
        Ok(Arc::new(Certificates {
            table: ArcSwap::from_pointee(TlsTable::default()),
            generated: Arc::new(generate_default()?),
            handshakes: Mutex::new(Vec::new()),
        }))
    }

    /// Makes `table` the one new handshakes read.
    pub fn publish(&self, table: TlsTable) {
        for handshakes in self.handshakes().iter() {
            handshakes.publish(&table);
        }
        self.table.store(Arc::new(table));
    }

    /// Adds a TLS entrypoint, set up for the current table.
    pub(super) fn register(&self, handshakes: Arc<Handshakes>) {
        handshakes.publish(&self.table.load());
        self.handshakes().push(handshakes);
    }

    fn handshakes(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Handshakes>>> {
        // A list of pointers: one left mid-push by a panic is still a list.
        self.handshakes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generated default certificate's chain (for tests and the admin API).
    pub fn generated(&self) -> &Arc<CertifiedKey> {
        &self.generated
    }
}

/// The name of the generated default certificate, like Traefik's `TRAEFIK DEFAULT CERT`.
pub(crate) const GENERATED_NAME: &str = "TRAVERSE DEFAULT CERT";

fn generate_default() -> Result<CertifiedKey, String> {
    let mut params = rcgen::CertificateParams::new(vec!["traverse.default".to_owned()])
        .map_err(|e| format!("generating the default certificate: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, GENERATED_NAME);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("generating the default certificate: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        &provider,
    )
    .map_err(|e| format!("the generated default certificate: {e}"))
}

/// One entrypoint's choice of certificate: a Secret's for the SNI, else the entrypoint's
/// certificate file, else the default TLSStore's default, else the generated one.
#[derive(Debug, Clone)]
pub struct EntryPointResolver {
    entry_point: String,
    certificates: Arc<Certificates>,
    file: Option<Arc<CertifiedKey>>,
    /// TLSOption `sniStrict`: only a certificate holding the SNI is served.
    strict: bool,
}

impl EntryPointResolver {
    pub fn new(
        entry_point: &str,
        certificates: Arc<Certificates>,
        file: Option<Arc<CertifiedKey>>,
    ) -> Self {
        EntryPointResolver {
            entry_point: entry_point.to_owned(),
            certificates,
            file,
            strict: false,
        }
    }

    /// The same choice, refusing a handshake whose SNI no certificate holds.
    pub fn strict(&self) -> EntryPointResolver {
        EntryPointResolver {
            strict: true,
            ..self.clone()
        }
    }

    fn choose(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let table = self.certificates.table.load();
        let matching = sni.and_then(|sni| table.find(&self.entry_point, sni));
        if self.strict {
            return matching.cloned();
        }
        Some(
            matching
                .or(self.file.as_ref())
                .or(table.default.as_ref())
                .unwrap_or(&self.certificates.generated)
                .clone(),
        )
    }
}

impl ResolvesServerCert for EntryPointResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traverse_model::tls::SniTable;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen");
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(
            CertifiedKey::from_der(
                vec![certified.cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    certified.signing_key.serialize_der(),
                )),
                &provider,
            )
            .expect("key"),
        )
    }

    fn pick(resolver: &EntryPointResolver, sni: Option<&str>) -> Arc<CertifiedKey> {
        resolver.choose(sni).expect("a certificate")
    }

    #[test]
    fn sni_then_file_then_store_default_then_generated() {
        let certificates = Certificates::new().expect("generated");
        let (a, file, fallback) = (key("a.test"), key("file.test"), key("default.test"));
        let with_file = EntryPointResolver::new(
            "websecure",
            Arc::clone(&certificates),
            Some(Arc::clone(&file)),
        );
        let without = EntryPointResolver::new("websecure", Arc::clone(&certificates), None);
        assert!(Arc::ptr_eq(
            &pick(&without, Some("a.test")),
            certificates.generated()
        ));

        let mut names = SniTable::default();
        names.insert("a.test", Arc::clone(&a));
        let mut table = TlsTable::default();
        table.entry_points.insert("websecure".into(), names);
        certificates.publish(table.clone());
        assert!(Arc::ptr_eq(&pick(&with_file, Some("a.test")), &a));
        assert!(Arc::ptr_eq(&pick(&with_file, Some("b.test")), &file));
        assert!(Arc::ptr_eq(&pick(&with_file, None), &file));
        assert!(Arc::ptr_eq(
            &pick(&without, Some("b.test")),
            certificates.generated()
        ));
        // sniStrict: a name no certificate holds gets none.
        assert!(with_file.strict().choose(Some("b.test")).is_none());
        assert!(Arc::ptr_eq(&pick(&with_file.strict(), Some("a.test")), &a));

        table.default = Some(Arc::clone(&fallback));
        certificates.publish(table);
        assert!(Arc::ptr_eq(&pick(&without, Some("b.test")), &fallback));
        let elsewhere = EntryPointResolver::new("other", Arc::clone(&certificates), None);
        assert!(Arc::ptr_eq(&pick(&elsewhere, Some("a.test")), &fallback));
    }
}
