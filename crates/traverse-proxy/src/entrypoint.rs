//! One entrypoint as a Pingora service.

mod certificates;
mod handshake;
mod redirect;

pub use certificates::{Certificates, EntryPointResolver};
pub use handshake::TlsFacts;
pub use redirect::Redirect;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use pingora::services::ServiceWithDependents;

use rustls::sign::CertifiedKey;
use traverse_config::{Config, ListenerTls};
use traverse_telemetry::export::tls::PemFiles;

use crate::{Admission, Gateway, GatewayOptions, GatewayState};

/// The proxy of one entrypoint, with the entrypoint's timeouts applied from the first byte
/// of every request. Pingora reads a new connection's first header under a fixed 60 s
/// keep-alive timer and only lets `request_filter` change it, after the header is in; a
/// client trickling a header (slowloris) must be cut off by the configured timeout instead.
pub struct EntryPointApp {
    proxy: Arc<HttpProxy<Gateway>>,
    read_timeout: Duration,
    keepalive_seconds: u64,
}

/// A listening service for the entrypoint `name` of `config`, serving from `state`, a
/// TLS one choosing among `certificates` by SNI; fails when its TLS files are unusable
/// or nothing can listen on its address.
pub fn entrypoint_service(
    conf: &Arc<ServerConf>,
    name: &str,
    config: &Config,
    state: Arc<GatewayState>,
    certificates: &Arc<Certificates>,
) -> Result<Box<dyn ServiceWithDependents>, String> {
    let entry_point = config
        .entry_points
        .get(name)
        .ok_or_else(|| format!("entryPoints.{name}: not configured"))?;
    let address = entry_point.listen_address();
    check_listenable(name, &address)?;
    let redirect = match &entry_point.http.redirections.entry_point {
        Some(redirect) => Some(Arc::new(Redirect::new(config, name, redirect).map_err(
            |e| format!("entryPoints.{name}.http.redirections.entryPoint: {e}"),
        )?)),
        None => None,
    };
    let options = GatewayOptions::new(name, entry_point, &config.upstream).with_redirect(redirect);
    let keepalive_seconds = options.keepalive_seconds;
    let mut proxy = http_proxy(conf, Gateway::new(options, Arc::clone(&state)));
    let mut server_options = HttpServerOptions::default();
    server_options.h2c = entry_point.h2c;
    proxy.server_options = Some(server_options);
    let app = EntryPointApp {
        proxy: Arc::new(proxy),
        read_timeout: entry_point.timeouts.read,
        keepalive_seconds,
    };
    // On a TLS entrypoint the handshake comes first: the head deadline and the
    // connection limit apply to the decrypted stream.
    let app = Admission::new(
        app,
        entry_point.timeouts.read,
        entry_point.max_connections,
        state.connection_stats(name),
    );
    let service_name = format!("entrypoint {name}");
    match &entry_point.tls {
        Some(tls) => {
            let handshakes = Arc::new(
                tls_handshakes(name, tls, certificates)
                    .map_err(|e| format!("entryPoints.{name}.tls: {e}"))?,
            );
            certificates.register(Arc::clone(&handshakes));
            let app = handshake::TlsEntryPointApp {
                http: Arc::new(app),
                handshakes,
                timeout: entry_point.timeouts.read,
            };
            let mut service = Service::new(service_name, app);
            // Plain TCP: the handshake is made by the app, under the host's TLSOption.
            service.add_tcp(&address);
            Ok(Box::new(service))
        }
        None => {
            let mut service = Service::new(service_name, app);
            service.add_tcp(&address);
            Ok(Box::new(service))
        }
    }
}

/// Fails, naming the entrypoint and its address, when nothing can listen there (the port
/// is taken, the address is not local): Pingora would retry for half a minute, then lose
/// that listener while the process stayed up and ready. The probe listener is closed at
/// once; Pingora binds its own.
fn check_listenable(name: &str, address: &str) -> Result<(), String> {
    std::net::TcpListener::bind(address)
        .map(drop)
        .map_err(|error| format!("entryPoints.{name}: cannot listen on {address}: {error}"))
}

/// The listener's certificates (the file's, if any, beside those of resources), and
/// with `clientCA` the requirement that clients present a certificate chaining to it.
/// The files are read here, so that a missing or unusable one is an error naming it
/// rather than a panic when the listener starts.
fn tls_handshakes(
    name: &str,
    tls: &ListenerTls,
    certificates: &Arc<Certificates>,
) -> Result<handshake::Handshakes, String> {
    let files = PemFiles::read(&tls.files(), ListenerTls::CA_KEY).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let file = match files.identity {
        Some((chain, key)) => {
            // What Pingora would build from the two paths, built from the files already read.
            let certified =
                CertifiedKey::from_der(chain.parsed, key.parsed, &provider).map_err(|e| {
                    let path = |p: &Option<std::path::PathBuf>| {
                        p.as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    };
                    format!(
                        "certificate {} / key {}: {e}",
                        path(&tls.cert),
                        path(&tls.key)
                    )
                })?;
            Some(Arc::new(certified))
        }
        None => None,
    };
    let resolver = Arc::new(EntryPointResolver::new(
        name,
        Arc::clone(certificates),
        file,
    ));
    let mut file_verifier = None;
    if let (Some(client_ca), Some(ca)) = (&tls.client_ca, files.ca) {
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca.parsed {
            roots
                .add(cert)
                .map_err(|e| format!("clientCA {}: {e}", client_ca.display()))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("clientCA {}: {e}", client_ca.display()))?;
        file_verifier = Some(verifier);
    }
    handshake::Handshakes::new(name, resolver, file_verifier)
}

#[async_trait]
impl HttpServerApp for EntryPointApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        session.set_read_timeout(Some(self.read_timeout));
        // Requests pipelined behind this one are answered in order (RFC 9112 §9.3.2), one
        // after another, instead of closing the connection on them.
        session.set_pipelining_enabled(true);
        // A session Pingora marked not reusable (shutting down) stays so.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(self.keepalive_seconds));
        }
        self.proxy.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.proxy.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.proxy.server_options()
    }

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        Arc::clone(&self.proxy)
            .process_custom_session(stream, shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_use_is_named_with_its_entrypoint() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let address = taken.local_addr().expect("its address").to_string();
        let error = check_listenable("web", &address).expect_err("the port is taken");
        assert!(error.contains("entryPoints.web"), "{error}");
        assert!(error.contains(&address), "{error}");
        assert!(check_listenable("web", "127.0.0.1:0").is_ok());
    }

    #[test]
    fn unreadable_listener_files_are_named_with_their_key() {
        let tls = ListenerTls {
            cert: Some("/nonexistent/listener.crt".into()),
            key: Some("/nonexistent/listener.key".into()),
            client_ca: None,
        };
        let certificates = Certificates::new().expect("generated");
        let Err(error) = tls_handshakes("websecure", &tls, &certificates) else {
            panic!("missing files were accepted");
        };
        assert!(error.contains("/nonexistent/listener.crt"), "{error}");
        assert!(error.contains("(cert)"), "{error}");
    }
}
