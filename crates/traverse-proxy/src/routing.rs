//! What a request's route decides: proxy to a Service or an uplink, or answer here
//! (no route, no server, a route that cannot be served, a forwarding loop).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use pingora::http::RequestHeader;
use traverse_model::{Backend, Mirroring, Router, Target};

use crate::exchange::Destination;
use crate::host::request_host;
use crate::respond::{NOT_FOUND, NO_SERVER};
use crate::{uplink, GatewayState};

/// What routing decided, computed while the request header is borrowed.
pub(crate) enum Decision {
    /// With the `Set-Cookie` values of the sticky balancers that chose without a cookie,
    /// and the mirroring services on the way (counted once the middlewares let it pass).
    Proxy(Arc<Router>, Destination, Vec<String>, Vec<Arc<Mirroring>>),
    Respond(Option<Arc<Router>>, u16, Bytes),
}

/// Matches `header` on `entry_point` against the table in force.
pub(crate) fn decide(
    state: &GatewayState,
    entry_point: &str,
    header: &RequestHeader,
    client_ip: Option<IpAddr>,
) -> Decision {
    let request = traverse_router::Request {
        method: header.method.as_str(),
        host: request_host(header).unwrap_or(""),
        path: header.uri.path(),
        query: header.uri.query(),
        headers: &header.headers,
        client_ip,
    };
    let routing = state.routing.load();
    let Some(router) = routing.routes.find(entry_point, &request) else {
        return Decision::Respond(None, 404, Bytes::from_static(NOT_FOUND.as_bytes()));
    };
    let router = Arc::clone(router);
    match &router.target {
        Target::Unavailable { status, reason } => {
            let body = Bytes::from(format!("{reason}\n"));
            Decision::Respond(Some(Arc::clone(&router)), *status, body)
        }
        Target::Services(services) => {
            let (mut cookies, mut mirrored) = (Vec::new(), Vec::new());
            let now = crate::clock::now_ms();
            match services.pick_mirrored(&header.headers, now, &mut cookies, &mut mirrored) {
                // Every endpoint failing its active check: Traefik's balancer answers 503
                // `no available server` without trying one.
                Some(backend) if backend.servers.has_available() && !all_failing(backend) => {
                    let destination = Destination::Service(Arc::clone(backend));
                    Decision::Proxy(router, destination, cookies, mirrored)
                }
                _ => {
                    let body = Bytes::from_static(NO_SERVER.as_bytes());
                    Decision::Respond(Some(router), 503, body)
                }
            }
        }
        Target::Uplinks(uplinks) => {
            match uplink::decide(state.topology(), header, &router, uplinks) {
                Ok(destination) => Decision::Proxy(router, destination, Vec::new(), Vec::new()),
                Err((status, body)) => Decision::Respond(Some(router), status, body),
            }
        }
    }
}

/// Whether every endpoint that takes requests fails its Service's active health check.
fn all_failing(backend: &Backend) -> bool {
    backend.health_check.is_some()
        && backend
            .servers
            .items()
            .iter()
            .all(|(endpoint, weight)| *weight == 0 || endpoint.failing_check())
}
