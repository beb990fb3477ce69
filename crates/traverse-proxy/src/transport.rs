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
    if backend.scheme == Scheme::H2c {
        // Prior-knowledge HTTP/2 over cleartext.
        peer.options.set_http_version(2, 2);
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
