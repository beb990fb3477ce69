//! Certificates chosen by the name a client asks for (SNI).
//!
//! [`TlsTable`] is what a translation publishes for the TLS entrypoints: per entrypoint,
//! the certificates of the Secrets its routes name, by the DNS names those certificates
//! hold, plus the store's default. It is immutable; a reload publishes a new one, and a
//! handshake reads whichever is current without a lock.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

/// Values by DNS name, exact names before wildcards. `*.example.com` matches one label
/// (`a.example.com`), neither `example.com` nor `a.b.example.com`, as in RFC 6125.
#[derive(Debug, Clone)]
pub struct SniTable<K> {
    exact: HashMap<String, K>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, K>,
}

impl<K> Default for SniTable<K> {
    fn default() -> Self {
        SniTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<K> SniTable<K> {
    /// Adds `value` under `name` (`host` or `*.domain`) unless the name already has one:
    /// the first wins, so the order of insertion decides conflicts. Returns whether it
    /// was added.
    pub fn insert(&mut self, name: &str, value: K) -> bool {
        let name = normalize(name);
        let (map, key) = match name.strip_prefix("*.") {
            Some(domain) => (&mut self.wildcard, domain.to_owned()),
            None => (&mut self.exact, name),
        };
        // `*` only as a whole first label: `*.`, `a*.b` and `*` are not names to serve.
        if key.is_empty() || key.contains('*') || map.contains_key(&key) {
            return false;
        }
        map.insert(key, value);
        true
    }

    /// The value for a client's SNI: its exact name, else the wildcard of its parent.
    pub fn find(&self, sni: &str) -> Option<&K> {
        let lowered;
        let sni = if sni.bytes().any(|b| b.is_ascii_uppercase()) || sni.ends_with('.') {
            lowered = normalize(sni);
            lowered.as_str()
        } else {
            sni
        };
        self.exact.get(sni).or_else(|| {
            let (_, parent) = sni.split_once('.')?;
            self.wildcard.get(parent)
        })
    }

    /// Every name (wildcards written `*.domain`) with its value, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (String, &K)> {
        self.exact
            .iter()
            .map(|(name, value)| (name.clone(), value))
            .chain(
                self.wildcard
                    .iter()
                    .map(|(d, value)| (format!("*.{d}"), value)),
            )
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// Every name held, wildcards written `*.domain`, sorted (for the admin API and tests).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .exact
            .keys()
            .cloned()
            .chain(self.wildcard.keys().map(|d| format!("*.{d}")))
            .collect();
        names.sort();
        names
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The certificates and handshake options of every TLS entrypoint at one moment.
#[derive(Debug, Clone, Default)]
pub struct TlsTable {
    /// By entrypoint name: the certificates of the Secrets its routes (and the default
    /// TLSStore's `certificates`) name.
    pub entry_points: HashMap<String, SniTable<Arc<CertifiedKey>>>,
    /// The default TLSStore's `defaultCertificate`: served when nothing matches the SNI
    /// and the entrypoint has no certificate file.
    pub default: Option<Arc<CertifiedKey>>,
    /// By entrypoint name: the TLSOption of each host its routes with `tls` match.
    pub options: HashMap<String, SniTable<Arc<TlsOptions>>>,
    /// The TLSOption named `default`, for every other handshake.
    pub default_options: Option<Arc<TlsOptions>>,
}

/// A TLSOption in rustls' terms. Empty lists mean rustls' defaults.
#[derive(Debug, Default)]
pub struct TlsOptions {
    /// `namespace/name`, for logs.
    pub name: String,
    /// Protocol versions offered, oldest first (TLS 1.2 and 1.3 when empty).
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Cipher suites: every TLS 1.3 suite and the TLS 1.2 suites named.
    pub cipher_suites: Vec<rustls::SupportedCipherSuite>,
    /// Key exchange groups, in order of preference.
    pub kx_groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
    /// ALPN protocols offered (`h2`, `http/1.1` when empty).
    pub alpn: Vec<Vec<u8>>,
    pub client_auth: ClientAuth,
    /// Refuse a handshake whose SNI no certificate holds.
    pub sni_strict: bool,
    pub disable_session_tickets: bool,
    /// Why handshakes under these options are refused: the TLSOption a route names is
    /// missing or unusable, and serving without it (its client authentication, say)
    /// would be worse than not serving.
    pub refuse: Option<String>,
}

/// Client certificate authentication of a TLSOption.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    #[default]
    None,
    /// A certificate is asked for, and verified against these roots when given.
    Optional(Arc<rustls::RootCertStore>),
    /// A certificate chaining to these roots is required.
    Required(Arc<rustls::RootCertStore>),
}

impl TlsTable {
    /// The certificate of `entry_point` for `sni`, if a resource provides one.
    pub fn find(&self, entry_point: &str, sni: &str) -> Option<&Arc<CertifiedKey>> {
        self.entry_points.get(entry_point)?.find(sni)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_win_over_wildcards_and_wildcards_cover_one_label() {
        let mut table = SniTable::default();
        assert!(table.insert("*.example.com", "wildcard"));
        assert!(table.insert("api.example.com", "api"));
        assert!(table.insert("Other.TEST.", "other"));
        let cases = [
            ("api.example.com", Some("api")),
            ("API.Example.com", Some("api")),
            ("www.example.com", Some("wildcard")),
            ("www.example.com.", Some("wildcard")),
            ("example.com", None),
            ("a.b.example.com", None),
            ("other.test", Some("other")),
            ("x.other.test", None),
            ("", None),
            ("com", None),
        ];
        for (sni, expected) in cases {
            assert_eq!(table.find(sni).copied(), expected, "{sni}");
        }
        assert_eq!(
            table.names(),
            ["*.example.com", "api.example.com", "other.test"]
        );
    }

    #[test]
    fn the_first_certificate_for_a_name_stays() {
        let mut table = SniTable::default();
        assert!(table.insert("a.test", 1));
        assert!(!table.insert("A.test", 2));
        assert!(!table.insert("*.", 3));
        assert_eq!(table.find("a.test"), Some(&1));
    }
}
