//! Choosing the endpoint of each upstream attempt, one way for Services and uplinks.
//!
//! The balancer ([`Weighted::select`]) yields candidates in weighted round robin and
//! skips those the request already tried (the [`Exchange`]'s tried set) and those out
//! of rotation (passively ejected; for a child also unhealthy or draining). Failures and
//! successes feed passive health, with the same settings shape for both.

use std::net::SocketAddr;
use std::sync::Arc;

use traverse_model::{Backend, Candidate, EjectionPolicy, Endpoint, Strategy, Weighted};

use crate::clock::now_ms;
use crate::exchange::{Destination, Exchange, Peer};
use crate::multicluster::{Children, Member};

/// The endpoint chosen for an attempt.
pub(crate) struct Selected {
    pub address: SocketAddr,
    pub peer: Peer,
}

/// The next endpoint for `exchange`: never one it already tried. A Service whose every
/// untried endpoint is ejected still gets its first attempt (trying beats refusing);
/// children out of rotation are never chosen. `preferred` (a middleware's say, e.g. a
/// sticky cookie) wins when it names a usable, untried endpoint. A Service with a
/// sticky cookie that did not lead here gets one naming the chosen endpoint.
pub(crate) fn next(exchange: &mut Exchange, preferred: Option<SocketAddr>) -> Option<Selected> {
    let selected = choose(exchange, preferred)?;
    // `p2c` balances by requests in flight: this one counts on its endpoint until the
    // next attempt or the end of the request.
    if let (Some(Destination::Service(backend)), Peer::Endpoint(index)) =
        (exchange.destination(), &selected.peer)
    {
        if backend.strategy == Strategy::P2c {
            let load = InFlightLoad::new(Arc::clone(backend), *index);
            exchange.load = Some(load);
        }
    }
    if let (Some(Destination::Service(backend)), Peer::Endpoint(index)) =
        (exchange.destination(), &selected.peer)
    {
        if let Some(sticky) = backend.sticky.as_ref() {
            if preferred != Some(selected.address) {
                let cookie = sticky.set_cookie(*index);
                exchange.notes_mut().set_cookie(cookie);
            }
        }
    }
    Some(selected)
}

fn choose(exchange: &Exchange, preferred: Option<SocketAddr>) -> Option<Selected> {
    let tried = exchange.tried();
    let now = now_ms();
    match exchange.destination()? {
        Destination::Service(backend) => {
            let servers = &backend.servers;
            let balanced = || match backend.strategy {
                Strategy::Wrr => servers.select(tried, now),
                Strategy::P2c => servers.select_p2c(tried, now, Endpoint::in_flight, &mut |n| {
                    fastrand::usize(..n)
                }),
            };
            let (index, chosen) = preferred
                .and_then(|address| preferred_endpoint(backend, address, tried, now))
                .or_else(balanced)
                .or_else(|| {
                    tried
                        .is_empty()
                        .then(|| servers.select_untried(tried))
                        .flatten()
                })?;
            Some(Selected {
                address: chosen.address,
                peer: Peer::Endpoint(index),
            })
        }
        Destination::Uplink { members, .. } => {
            // A child with no resolved address is not usable, so `address` is set.
            let (_, member) = members.select(tried, now)?;
            Some(Selected {
                address: member.child.socket_address()?,
                peer: Peer::Child(member.clone()),
            })
        }
    }
}

/// Whether a retry would find an endpoint this request has not tried and that is in
/// rotation.
pub(crate) fn another_available(exchange: &Exchange) -> bool {
    let tried = exchange.tried();
    match exchange.destination() {
        Some(Destination::Service(backend)) => backend.servers.has_selectable(tried, now_ms()),
        Some(Destination::Uplink { members, .. }) => members.has_selectable(tried, now_ms()),
        None => false,
    }
}

/// Counts a failed attempt (nothing came back) against its endpoint's passive health.
pub(crate) fn failed(exchange: &Exchange, children: Option<&Children>, policy: EjectionPolicy) {
    match (exchange.destination(), exchange.current_peer()) {
        (Some(Destination::Service(backend)), Some(Peer::Endpoint(index))) => {
            let Some((endpoint, _)) = backend.servers.items().get(*index) else {
                return;
            };
            if let Some(health) = endpoint.health() {
                if health.failed(now_ms(), policy) {
                    tracing::warn!(service = %backend.name, endpoint = %endpoint.address, failures = policy.failures, ejection = ?policy.ejection_time, "endpoint ejected after failed requests");
                }
            }
        }
        (_, Some(Peer::Child(member))) => {
            if let Some(children) = children {
                children.attempt_failed(&member.child);
            }
        }
        _ => {}
    }
}

/// A response came back from the current attempt's endpoint.
pub(crate) fn succeeded(exchange: &Exchange, children: Option<&Children>) {
    match (exchange.destination(), exchange.current_peer()) {
        (Some(Destination::Service(backend)), Some(Peer::Endpoint(index))) => {
            if let Some(health) = backend
                .servers
                .items()
                .get(*index)
                .and_then(|(e, _)| e.health())
            {
                health.succeeded();
            }
        }
        (_, Some(Peer::Child(member))) => {
            if let Some(children) = children {
                children.attempt_succeeded(&member.child);
            }
        }
        _ => {}
    }
}

/// Whether `members` has any child that can take a request now (checked without
/// picking: the pick happens per attempt).
pub(crate) fn any_child_available(members: &Weighted<Member>) -> bool {
    members.has_selectable(&[], now_ms())
}

fn preferred_endpoint<'a>(
    backend: &'a Backend,
    address: SocketAddr,
    tried: &[SocketAddr],
    now: u64,
) -> Option<(usize, &'a Endpoint)> {
    backend
        .servers
        .items()
        .iter()
        .enumerate()
        .map(|(index, (endpoint, _))| (index, endpoint))
        .find(|(_, e)| e.address == address && !tried.contains(&address) && e.usable(now))
}

/// A request counted in flight on one endpoint of a `p2c` Service, until dropped.
#[derive(Debug)]
pub(crate) struct InFlightLoad {
    backend: Arc<Backend>,
    index: usize,
}

impl InFlightLoad {
    fn new(backend: Arc<Backend>, index: usize) -> Self {
        if let Some((endpoint, _)) = backend.servers.items().get(index) {
            endpoint.started();
        }
        InFlightLoad { backend, index }
    }
}

impl Drop for InFlightLoad {
    fn drop(&mut self) {
        if let Some((endpoint, _)) = self.backend.servers.items().get(self.index) {
            endpoint.finished();
        }
    }
}
