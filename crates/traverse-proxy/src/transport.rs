//! The peer for a Service's server: its scheme, and its ServersTransport (the name
//! verified, the CAs trusted, the client certificate presented, the timeouts).

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use traverse_model::{Backend, Scheme, ServersTransport};

use crate::host::{request_host, strip_port};

/// A ServersTransport's certificates as Pingora's connector takes them, made once.
struct Prepared {
    ca: Option<Arc<[WrappedX509]>>,
    identity: Option<Arc<CertKey>>,
}

fn prepared(transport: &ServersTransport) -> Option<&Prepared> {
    transport
        .prepared
        .get_or_init(|| {
            let ca = (!transport.root_cas.is_empty()).then(|| {
                transport
                    .root_cas
                    .iter()
                    .map(|der| WrappedX509::new(der.clone(), parse_x509))
                    .collect::<Vec<_>>()
                    .into()
            });
            let identity = transport
                .client_identity
                .as_ref()
                .map(|(chain, key)| Arc::new(CertKey::new(chain.clone(), key.clone())));
            Arc::new(Prepared { ca, identity }) as Arc<dyn Any + Send + Sync>
        })
        .downcast_ref::<Prepared>()
}

/// The peer for `address`, a server of `backend`, for a request with `header`.
pub(crate) fn service_peer(
    backend: &Backend,
    address: SocketAddr,
    header: &RequestHeader,
) -> HttpPeer {
    let tls = backend.scheme == Scheme::Https;
    let transport = backend.transport.as_deref();
    // TLS upstreams are verified against the transport's serverName, else the name the
    // client asked for.
    let sni = match (tls, transport.and_then(|t| t.server_name.as_deref())) {
        (false, _) => String::new(),
        (true, Some(name)) => name.to_owned(),
        (true, None) => request_host(header)
            .map(strip_port)
            .unwrap_or_default()
            .to_owned(),
    };
    let mut peer = HttpPeer::new(address, tls, sni);
    match backend.scheme {
        // Prior-knowledge HTTP/2 over cleartext.
        Scheme::H2c => peer.options.set_http_version(2, 2),
        // HTTP/2 when the server's ALPN picks it (as Traefik does), so gRPC and its
        // trailers pass; HTTP/1.1 otherwise or with the transport's `disableHTTP2`.
        Scheme::Https if !transport.is_some_and(|t| t.disable_http2) => {
            peer.options.set_http_version(2, 1)
        }
        _ => {}
    }
    if let (true, Some(transport)) = (tls, transport) {
        if let Some(prepared) = prepared(transport) {
            peer.options.ca = prepared.ca.clone();
            peer.client_cert_key = prepared.identity.clone();
        }
        if transport.insecure_skip_verify {
            peer.options.verify_cert = false;
            peer.options.verify_hostname = false;
        }
    }
    peer
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
    use traverse_model::Weighted;

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
}
