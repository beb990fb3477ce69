//! The request path across clusters: on a parent, a route to an uplink (loop refusal,
//! the children serving it, the headers and span attributes of the hop); on a child,
//! what an uplink entrypoint serves to parents itself.

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use traverse_model::{Router, UplinkRef, Weighted};
use traverse_telemetry::KeyValue;

use crate::exchange::{Destination, Exchange};
use crate::multicluster::{
    advertisement, Member, ADVERTISEMENT_PATH, HEALTH_PATH, HOPS_HEADER, UPLINK_HEADER,
};
use crate::respond::{respond, NOT_FOUND};
use crate::{select, GatewayState, Topology};

const NO_CHILD: &str = "no available child cluster for this uplink\n";

/// A parent's route to an uplink: refuse loops (508), then find the children serving
/// it (503 when none can take the request).
pub(crate) fn decide(
    topology: &Topology,
    header: &RequestHeader,
    router: &Router,
    uplinks: &Weighted<Arc<UplinkRef>>,
) -> Result<Destination, (u16, Bytes)> {
    // A hop counter that does not parse is not ours: count the request as fresh.
    let hops: u32 = header
        .headers
        .get(HOPS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let from_here = header
        .headers
        .get(&topology.source_cluster_header)
        .is_some_and(|v| v.as_bytes() == topology.cluster.as_bytes());
    if hops >= topology.max_hops || from_here {
        let reason = if from_here {
            format!(
                "forwarding loop detected: the request already came from cluster {}",
                topology.cluster
            )
        } else {
            format!(
                "forwarding loop detected: {hops} uplink hops (multicluster.maxHops is {})",
                topology.max_hops
            )
        };
        // Debug, not warn: a client can send any hop count, and must not flood the log.
        tracing::debug!(router = %router.name, hops, "{reason}");
        return Err((508, Bytes::from(format!("{reason}\n"))));
    }
    let members = topology
        .children
        .as_ref()
        .zip(uplinks.pick())
        .and_then(|(children, uplink)| children.members(uplink));
    match members {
        Some(members) if select::any_child_available(&members) => {
            Ok(Destination::Uplink { members, hops })
        }
        _ => Err((503, Bytes::from_static(NO_CHILD.as_bytes()))),
    }
}

/// The CLIENT span of an attempt on `member` says which uplink, child and clusters.
pub(crate) fn annotate_attempt(exchange: &mut Exchange, topology: &Topology, member: &Member) {
    exchange.annotate_attempt(|| KeyValue::new("traverse.uplink", Arc::clone(&member.uplink)));
    exchange.annotate_attempt(|| KeyValue::new("traverse.child", Arc::clone(&member.child.name)));
    exchange
        .annotate_attempt(|| KeyValue::new("cross_cluster.source", Arc::clone(&topology.cluster)));
    if let Some(cluster) = member.child.cluster() {
        exchange.annotate_attempt(|| KeyValue::new("cross_cluster.target", cluster));
    }
}

/// The headers a child reads: where the request comes from, its hop count and uplink.
pub(crate) fn add_hop_headers(
    request: &mut RequestHeader,
    topology: &Topology,
    member: &Member,
    hops: u32,
) -> Result<()> {
    request.insert_header(
        topology.source_cluster_header.clone(),
        topology.cluster.as_ref(),
    )?;
    request.insert_header(HOPS_HEADER, (hops + 1).to_string())?;
    request.insert_header(UPLINK_HEADER, member.uplink.as_ref())?;
    Ok(())
}

/// On an uplink entrypoint, the SERVER span says which cluster and uplink it came over.
pub(crate) fn annotate_arrival(
    exchange: &mut Exchange,
    topology: &Topology,
    request: &RequestHeader,
) {
    let header = |name: &http::HeaderName| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(source) = header(&topology.source_cluster_header) {
        exchange.annotate(|| KeyValue::new("cross_cluster.source", source));
    }
    exchange.annotate(|| KeyValue::new("cross_cluster.target", Arc::clone(&topology.cluster)));
    if let Some(uplink) = header(&http::HeaderName::from_static(UPLINK_HEADER)) {
        exchange.annotate(|| KeyValue::new("traverse.uplink", uplink));
    }
}

/// The endpoints an uplink entrypoint serves to parents itself: the advertisement
/// stream and the health check. Not traced, metered or logged.
pub(crate) async fn serve_parent(
    session: &mut Session,
    exchange: &mut Exchange,
    state: &GatewayState,
) -> Result<()> {
    exchange.mark_internal();
    let path = session.req_header().uri.path();
    if path == ADVERTISEMENT_PATH {
        exchange.leave_in_flight();
        return advertisement::stream(session, &state.advertiser).await;
    }
    let (status, body) = match path {
        HEALTH_PATH if state.is_ready() => (200, "ready\n"),
        HEALTH_PATH => (503, "not ready\n"),
        _ => (404, NOT_FOUND),
    };
    respond(session, status, Bytes::from_static(body.as_bytes()), &[]).await
}
