//! A TLS server in front of a cleartext test server: a real rustls server with a
//! certificate of a [`TestCa`](crate::pki::TestCa), which may require a client
//! certificate of another CA, passing the decrypted bytes to its backend (an
//! [`Upstream`](crate::Upstream), or any HTTP/1.1 server). It offers no ALPN, so clients
//! speak HTTP/1.1 through it, unless started with [`TlsFront::start_h2`] (`h2` only, for
//! an h2c backend). It counts the handshakes that passed, those that failed, and the
//! client certificates presented.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::pki::{Leaf, TestCa};

#[derive(Default)]
struct Counts {
    handshakes: AtomicUsize,
    failed: AtomicUsize,
    client_certificates: AtomicUsize,
}

/// A running TLS front; stopped (listener and connections) on drop.
pub struct TlsFront {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Serves `leaf` on `127.0.0.1` and a free port in front of `backend`; a client
    /// must present a certificate of `client_ca` when one is given.
    pub async fn start(leaf: &Leaf, client_ca: Option<&TestCa>, backend: SocketAddr) -> TlsFront {
        TlsFront::start_on(
            "127.0.0.1:0".parse().expect("address"),
            leaf,
            client_ca,
            backend,
        )
        .await
        .unwrap_or_else(|error| panic!("starting a TLS front: {error}"))
    }

    /// Serves `leaf` on `127.0.0.1` and a free port, offering HTTP/2 only (ALPN `h2`), in
    /// front of `backend`, which speaks HTTP/2 with prior knowledge
    /// ([`Upstream::start_h2c`](crate::Upstream::start_h2c)).
    pub async fn start_h2(leaf: &Leaf, backend: SocketAddr) -> TlsFront {
        let mut config = server_config(leaf, None);
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsFront::serve_on("127.0.0.1:0".parse().expect("address"), config, backend)
            .await
            .unwrap_or_else(|error| panic!("starting a TLS front: {error}"))
    }

    /// As [`TlsFront::start`], on `addr` (port 0 for any).
    pub async fn start_on(
        addr: SocketAddr,
        leaf: &Leaf,
        client_ca: Option<&TestCa>,
        backend: SocketAddr,
    ) -> std::io::Result<TlsFront> {
        TlsFront::serve_on(addr, server_config(leaf, client_ca), backend).await
    }

    async fn serve_on(
        addr: SocketAddr,
        config: rustls::ServerConfig,
        backend: SocketAddr,
    ) -> std::io::Result<TlsFront> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(serve(listener, acceptor, Arc::clone(&counts), backend));
        Ok(TlsFront { addr, counts, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.counts.handshakes.load(Ordering::SeqCst)
    }

    /// Handshakes refused or broken off (by either side).
    pub fn failed_handshakes(&self) -> usize {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// Completed handshakes in which the client presented a certificate.
    pub fn client_certificates(&self) -> usize {
        self.counts.client_certificates.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config(leaf: &Leaf, client_ca: Option<&TestCa>) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("client CA"))
                .expect("client CA");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(
            CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate"),
            PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key"),
        )
        .expect("server config")
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    counts: Arc<Counts>,
    backend: SocketAddr,
) {
    // The connections end with the front: they are tasks of this set.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, counts) = (acceptor.clone(), Arc::clone(&counts));
        connections.spawn(async move {
            let mut tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(_) => {
                    counts.failed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            };
            counts.handshakes.fetch_add(1, Ordering::SeqCst);
            if tls.get_ref().1.peer_certificates().is_some() {
                counts.client_certificates.fetch_add(1, Ordering::SeqCst);
            }
            let Ok(mut plain) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
    }
}
