//! The peer for a Service's server: its scheme, and its ServersTransport (the name
//! verified, the CAs trusted, the client certificate presented, the timeouts). The TLS
//! part is shared with the gateway's own calls to https servers (forwardAuth, health
//! checks), so they trust and present exactly what the Service's requests do.

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use traverse_model::{Backend, ClientTls, Scheme};

use crate::host::{request_host, strip_port};

/// A [`ClientTls`]'s certificates as Pingora's connector takes them, made once.
struct Prepared {
    ca: Option<Arc<[WrappedX509]>>,
    identity: Option<Arc<CertKey>>,
    /// Keeps pooled connections apart by the CAs that verified them: Pingora's reuse
    /// hash covers the client certificate and the verification flags, not the CAs.
    group_key: u64,
}

fn prepared(tls: &ClientTls) -> Option<&Prepared> {
    tls.prepared
        .get_or_init(|| {
            let ca = (!tls.root_cas.is_empty()).then(|| {
                tls.root_cas
                    .iter()
                    .map(|der| WrappedX509::new(der.clone(), parse_x509))
                    .collect::<Vec<_>>()
                    .into()
            });
            let identity = tls
                .client_identity
                .as_ref()
                .map(|(chain, key)| Arc::new(CertKey::new(chain.clone(), key.clone())));
            let group_key = if tls.root_cas.is_empty() {
                0
            } else {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                tls.root_cas.hash(&mut hasher);
                hasher.finish()
            };
            Arc::new(Prepared {
                ca,
                identity,
                group_key,
            }) as Arc<dyn Any + Send + Sync>
        })
        .downcast_ref::<Prepared>()
}

/// A TLS peer for `address`, verified as `server_name` (the address's IP when empty:
/// Pingora would verify nothing without a name), offering HTTP/2 by ALPN when `http2`,
/// and trusting and presenting what `tls` says (the system's CAs without it).
pub(crate) fn tls_peer(
    address: SocketAddr,
    server_name: String,
    tls: Option<&ClientTls>,
    http2: bool,
) -> HttpPeer {
    let server_name = if server_name.is_empty() {
        address.ip().to_string()
    } else {
        server_name
    };
    let mut peer = HttpPeer::new(address, true, server_name);
    if http2 {
        peer.options.set_http_version(2, 1);
    }
    if let Some(tls) = tls {
        if let Some(prepared) = prepared(tls) {
            peer.options.ca = prepared.ca.clone();
            peer.client_cert_key = prepared.identity.clone();
            peer.group_key = prepared.group_key;
        }
        if tls.insecure_skip_verify {
            peer.options.verify_cert = false;
            peer.options.verify_hostname = false;
        }
    }
    peer
}

/// The peer for `address`, a server of `backend`, for a request with `header`.
pub(crate) fn service_peer(
    backend: &Backend,
    address: SocketAddr,
    header: &RequestHeader,
) -> HttpPeer {
    let transport = backend.transport.as_deref();
    match backend.scheme {
        Scheme::Http => HttpPeer::new(address, false, String::new()),
        Scheme::H2c => {
            // Prior-knowledge HTTP/2 over cleartext.
            let mut peer = HttpPeer::new(address, false, String::new());
            peer.options.set_http_version(2, 2);
            peer
        }
        Scheme::Https => {
            let tls = transport.map(|t| &*t.tls);
            // Verified against the transport's serverName, else the name the client asked for.
            let server_name = match tls.and_then(|t| t.server_name.as_deref()) {
                Some(name) => name.to_owned(),
                None => request_host(header)
                    .map(strip_port)
                    .unwrap_or_default()
                    .to_owned(),
            };
            // HTTP/2 when the server's ALPN picks it (as Traefik does), so gRPC and its
            // trailers pass; HTTP/1.1 otherwise or with the transport's `disableHTTP2`.
            let http2 = !transport.is_some_and(|t| t.disable_http2);
            tls_peer(address, server_name, tls, http2)
        }
    }
}

/// The transport's timeouts, over the gateway's `upstream` ones.
pub(crate) fn apply_timeouts(backend: &Backend, peer: &mut HttpPeer) {
    let Some(transport) = backend.transport.as_deref() else {
        return;
    };
    if let Some(dial) = transport.dial_timeout {
        peer.options.connection_timeout = Some(dial);
    }
    if let Some(response) = transport.response_header_timeout {
        peer.options.read_timeout = Some(response);
    }
    if let Some(idle) = transport.idle_conn_timeout {
        peer.options.idle_timeout = Some(idle);
    }
}

/// The gateway's `upstream` timeouts, which every peer starts from.
pub(crate) fn apply_upstream(peer: &mut HttpPeer, upstream: &traverse_config::Upstream) {
    peer.options.connection_timeout = Some(upstream.connect_timeout);
    peer.options.read_timeout = Some(upstream.read_timeout);
    peer.options.write_timeout = Some(upstream.write_timeout);
    peer.options.idle_timeout = Some(upstream.idle_timeout);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::protocols::ALPN;
    use traverse_model::{ServersTransport, Weighted};

    fn backend(scheme: Scheme, transport: Option<ServersTransport>) -> Backend {
        Backend {
            name: "apps/grpc:80".into(),
            scheme,
            pass_host_header: true,
            servers: Weighted::new(vec![]),
            transport: transport.map(Arc::new),
            sticky: None,
            health_check: None,
            strategy: Default::default(),
        }
    }

    fn alpn(backend: &Backend) -> ALPN {
        let header = RequestHeader::build("POST", b"/svc/Method", None).expect("header");
        let peer = service_peer(
            backend,
            "127.0.0.1:50051".parse().expect("address"),
            &header,
        );
        peer.options.alpn
    }

    #[test]
    fn http2_is_offered_to_https_servers_unless_the_transport_disables_it() {
        let http1_only = ServersTransport {
            disable_http2: true,
            ..ServersTransport::default()
        };
        let cases = [
            (backend(Scheme::Http, None), ALPN::H1),
            (backend(Scheme::H2c, None), ALPN::H2),
            (backend(Scheme::Https, None), ALPN::H2H1),
            (
                backend(Scheme::Https, Some(ServersTransport::default())),
                ALPN::H2H1,
            ),
            (backend(Scheme::Https, Some(http1_only)), ALPN::H1),
        ];
        for (backend, expected) in cases {
            assert_eq!(alpn(&backend), expected, "{:?}", backend.scheme);
        }
    }

    #[test]
    fn a_tls_peer_trusts_presents_and_pools_by_its_settings() {
        use pingora::upstreams::peer::Peer;
        let der = |name: &str| {
            rcgen::generate_simple_self_signed(vec![name.to_owned()])
                .expect("certificate")
                .cert
                .der()
                .to_vec()
        };
        let address: SocketAddr = "10.0.0.1:8443".parse().expect("address");
        let private = ClientTls {
            root_cas: vec![der("private-ca.test")],
            ..ClientTls::default()
        };
        let peer = tls_peer(address, "auth.test".into(), Some(&private), true);
        assert_eq!(peer.sni(), "auth.test");
        assert_eq!(peer.options.alpn, ALPN::H2H1);
        assert_eq!(peer.options.ca.as_ref().map(|ca| ca.len()), Some(1));
        assert!(peer.options.verify_cert && peer.options.verify_hostname);

        // Connections verified against another CA are not reused for this one.
        let other = ClientTls {
            root_cas: vec![der("other-ca.test")],
            ..ClientTls::default()
        };
        let elsewhere = tls_peer(address, "auth.test".into(), Some(&other), true);
        assert_ne!(peer.reuse_hash(), elsewhere.reuse_hash());
        let again = tls_peer(address, "auth.test".into(), Some(&private), true);
        assert_eq!(peer.reuse_hash(), again.reuse_hash());

        // Without a name the address's IP is verified (Pingora verifies nothing without
        // one); without settings, the system's CAs.
        let bare = tls_peer(address, String::new(), None, false);
        assert_eq!(bare.sni(), "10.0.0.1");
        assert_eq!(bare.options.alpn, ALPN::H1);
        assert!(bare.options.ca.is_none() && bare.options.verify_cert);

        let insecure = ClientTls {
            insecure_skip_verify: true,
            ..ClientTls::default()
        };
        let peer = tls_peer(address, "auth.test".into(), Some(&insecure), true);
        assert!(!peer.options.verify_cert && !peer.options.verify_hostname);
    }
}
