//! TLS handshakes under the TLSOption of the host a client asks for.
//!
//! Pingora's TLS listener builds one rustls configuration per listener, so a TLS
//! entrypoint listens on plain TCP and completes the handshake here: the ClientHello is
//! peeked (left in the stream), its SNI chooses the configuration of the host's
//! TLSOption, and Pingora's acceptor runs the handshake with it. The configurations are
//! built when a table is published, and read per connection without a lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::listeners::TlsAccept;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use traverse_model::tls::{ClientAuth, SniTable, TlsOptions, TlsTable};

use super::certificates::EntryPointResolver;
use super::EntryPointApp;
use crate::Admission;

/// The largest TLS record, header included: a ClientHello is read in one.
const MAX_RECORD: usize = 5 + 16 * 1024;

/// The rustls configurations of one TLS entrypoint: by SNI host, and for every other.
/// `None` refuses the handshake (the host's TLSOption is missing or unusable).
#[derive(Debug)]
struct Configs {
    default: Option<Arc<ServerConfig>>,
    by_host: SniTable<Option<Arc<ServerConfig>>>,
}

/// What a TLS entrypoint's handshakes are made of, and their current configurations.
#[derive(Debug)]
pub struct Handshakes {
    entry_point: String,
    resolver: Arc<EntryPointResolver>,
    /// The entrypoint's `clientCA`, when no TLSOption asks for client certificates.
    file_verifier: Option<Arc<dyn ClientCertVerifier>>,
    configs: ArcSwap<Configs>,
}

impl Handshakes {
    pub fn new(
        entry_point: &str,
        resolver: Arc<EntryPointResolver>,
        file_verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Handshakes, String> {
        let handshakes = Handshakes {
            entry_point: entry_point.to_owned(),
            resolver,
            file_verifier,
            configs: ArcSwap::from_pointee(Configs {
                default: None,
                by_host: SniTable::default(),
            }),
        };
        // The entrypoint's own settings must build: that is a startup error, not a refusal.
        let default = handshakes.config(None)?;
        handshakes.configs.store(Arc::new(Configs {
            default: Some(default),
            by_host: SniTable::default(),
        }));
        Ok(handshakes)
    }

    /// Builds the configurations of `table` for this entrypoint and makes them current.
    pub fn publish(&self, table: &TlsTable) {
        let mut built: HashMap<*const TlsOptions, Option<Arc<ServerConfig>>> = HashMap::new();
        let mut build = |options: Option<&Arc<TlsOptions>>| -> Option<Arc<ServerConfig>> {
            let key = options.map_or(std::ptr::null(), Arc::as_ptr);
            built
                .entry(key)
                .or_insert_with(|| match options.map(|o| (o, o.refuse.as_ref())) {
                    Some((_, Some(_))) => None,
                    _ => self
                        .config(options.map(Arc::as_ref))
                        .inspect_err(|error| {
                            tracing::error!(entrypoint = %self.entry_point, %error, "TLS options unusable; their handshakes are refused");
                        })
                        .ok(),
                })
                .clone()
        };
        let default = build(table.default_options.as_ref());
        let mut by_host = SniTable::default();
        if let Some(hosts) = table.options.get(&self.entry_point) {
            for (name, options) in hosts.entries() {
                by_host.insert(&name, build(Some(options)));
            }
        }
        self.configs.store(Arc::new(Configs { default, by_host }));
    }

    /// A rustls configuration for `options` (none: the entrypoint's own settings).
    fn config(&self, options: Option<&TlsOptions>) -> Result<Arc<ServerConfig>, String> {
        let defaults = TlsOptions::default();
        let options = options.unwrap_or(&defaults);
        let mut provider = rustls::crypto::ring::default_provider();
        if !options.cipher_suites.is_empty() {
            provider.cipher_suites = options.cipher_suites.clone();
        }
        if !options.kx_groups.is_empty() {
            provider.kx_groups = options.kx_groups.clone();
        }
        let provider = Arc::new(provider);
        let versions: &[&'static rustls::SupportedProtocolVersion] = if options.versions.is_empty()
        {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        } else {
            &options.versions
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS options {}: {e}", options.name))?;
        let verifier = |roots: &Arc<rustls::RootCertStore>, optional: bool| {
            let builder = WebPkiClientVerifier::builder_with_provider(
                Arc::clone(roots),
                Arc::clone(&provider),
            );
            let builder = if optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("TLS options {}: client CAs: {e}", options.name))
        };
        let builder = match (&options.client_auth, &self.file_verifier) {
            (ClientAuth::Optional(roots), _) => {
                builder.with_client_cert_verifier(verifier(roots, true)?)
            }
            (ClientAuth::Required(roots), _) => {
                builder.with_client_cert_verifier(verifier(roots, false)?)
            }
            (ClientAuth::None, Some(file)) => builder.with_client_cert_verifier(Arc::clone(file)),
            (ClientAuth::None, None) => builder.with_no_client_auth(),
        };
        let resolver: Arc<dyn ResolvesServerCert> = if options.sni_strict {
            Arc::new(self.resolver.strict())
        } else {
            Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = if options.alpn.is_empty() {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            options.alpn.clone()
        };
        if options.disable_session_tickets {
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }

    /// The configuration for the ClientHello waiting in `stream` (peeked, not consumed);
    /// `None` refuses the handshake.
    async fn choose(&self, stream: &mut Stream) -> Option<Arc<ServerConfig>> {
        let sni = peek_sni(stream).await;
        let configs = self.configs.load();
        match sni.as_deref().and_then(|sni| configs.by_host.find(sni)) {
            Some(config) => config.clone(),
            None => configs.default.clone(),
        }
    }
}

/// The SNI of the ClientHello at the start of `stream`, left unread. `None` when there
/// is none, or the bytes are no ClientHello (the handshake then fails on its own).
async fn peek_sni(stream: &mut Stream) -> Option<String> {
    let mut header = [0u8; 5];
    if !stream.try_peek(&mut header).await.ok()? || header[0] != 0x16 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut record = vec![0u8; (5 + length).min(MAX_RECORD)];
    stream.try_peek(&mut record).await.ok()?;
    let mut acceptor = rustls::server::Acceptor::default();
    acceptor.read_tls(&mut record.as_slice()).ok()?;
    let accepted = acceptor.accept().ok()??;
    accepted.client_hello().server_name().map(str::to_owned)
}

/// What a connection's handshake settled, for its requests' spans and access log: kept
/// in the connection's TLS digest, which every request on it (HTTP/1 or HTTP/2) sees.
#[derive(Debug)]
pub struct TlsFacts {
    /// `tls.protocol.version`: `1.2` or `1.3`.
    pub version: &'static str,
    /// The SNI the client sent.
    pub server_name: Option<Box<str>>,
    /// The certificates the client presented, leaf first (a TLSOption's `clientAuth`);
    /// empty when it presented none.
    pub client_certificates: Box<[CertificateDer<'static>]>,
}

/// Records [`TlsFacts`] when a handshake completes.
struct RecordTlsFacts;

#[async_trait]
impl TlsAccept for RecordTlsFacts {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(Arc::new(TlsFacts {
            version: protocol_version(tls.version()?)?,
            server_name: tls.server_name().map(Box::from),
            client_certificates: tls.peer_cert_chain_der().map(Box::from).unwrap_or_default(),
        }))
    }
}

/// `tls.protocol.version` from rustls' name of the version (`TLSv1_3`); rustls
/// negotiates no other.
fn protocol_version(name: &str) -> Option<&'static str> {
    match name {
        "TLSv1_3" => Some("1.3"),
        "TLSv1_2" => Some("1.2"),
        _ => None,
    }
}

/// A TLS entrypoint: the handshake under the host's options, then the HTTP entrypoint.
pub struct TlsEntryPointApp {
    pub(super) http: Arc<Admission<EntryPointApp>>,
    pub(super) handshakes: Arc<Handshakes>,
    /// Longest a client may take to send its ClientHello and finish the handshake.
    pub(super) timeout: Duration,
}

#[async_trait]
impl ServerApp for TlsEntryPointApp {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive connection comes back after its first request, TLS already done.
        if stream.get_ssl_digest().is_none() {
            let config = tokio::time::timeout(self.timeout, self.handshakes.choose(&mut stream))
                .await
                .ok()??;
            let acceptor = Acceptor::from_server_config(config);
            // A TCP listener's connections are L4 streams; the handshake wants the type.
            let l4 = *stream.into_any().downcast::<L4Stream>().ok()?;
            let handshake = handshake_with_callback(&acceptor, l4, &RecordTlsFacts);
            let tls = tokio::time::timeout(self.timeout, handshake)
                .await
                .ok()?
                .inspect_err(|error| tracing::debug!(%error, "TLS handshake failed"))
                .ok()?;
            stream = Box::new(tls);
        }
        ServerApp::process_new(&self.http, stream, shutdown).await
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(self.http.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::protocol_version;
    use rustls::ProtocolVersion;

    #[test]
    fn tls_versions_are_named_as_semantic_conventions_want() {
        let name = |version: ProtocolVersion| version.as_str().expect("a known version");
        assert_eq!(
            protocol_version(name(ProtocolVersion::TLSv1_3)),
            Some("1.3")
        );
        assert_eq!(
            protocol_version(name(ProtocolVersion::TLSv1_2)),
            Some("1.2")
        );
        assert_eq!(protocol_version(name(ProtocolVersion::TLSv1_1)), None);
    }
}
