//! Traefik's `mirroring`: copies of a request sent in the background to the mirrors its
//! route's mirroring services chose, after the client's own response, as Traefik does.
//! A copy never delays or changes the client's response; its answer is read and
//! dropped. The request body is kept for the copies while it streams to the main
//! service, only up to the mirroring's `maxBodySize`. Copies in flight are bounded;
//! what is sent, answered, failed, dropped or skipped is counted (no log line per copy).
//! Each copy is a CLIENT span of the request's trace, with its context injected.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use traverse_model::{Backend, Mirrored, Node};
use traverse_telemetry::propagation::{
    self, TRACEPARENT, TRACEPARENT_TEXT, TRACESTATE, TRACESTATE_TEXT,
};
use traverse_telemetry::record::{method_name, span_name};
use traverse_telemetry::{semconv, KeyValue, Span, Status, Tracer};

use crate::clock::now_ms;
use crate::transport;

/// Requests whose copies may be in flight at once, across the process; the copies of a
/// request past it are dropped (and counted).
pub const MAX_IN_FLIGHT: usize = 1024;
/// The longest a copy may take, from connecting to its answer's last byte.
const DEADLINE: Duration = Duration::from_secs(30);

/// The process's mirroring: its connections to mirrors and its counters.
pub struct Mirrors {
    connector: Connector,
    in_flight: AtomicUsize,
    pub stats: MirrorStats,
}

impl std::fmt::Debug for Mirrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirrors")
            .field("in_flight", &self.in_flight)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for Mirrors {
    fn default() -> Self {
        Mirrors {
            connector: Connector::new(None),
            in_flight: AtomicUsize::new(0),
            stats: MirrorStats::default(),
        }
    }
}

/// What became of the copies owed, since start.
#[derive(Debug, Default)]
pub struct MirrorStats {
    /// A mirror answered (whatever its status).
    pub answered: AtomicU64,
    /// No answer: no endpoint, refused, reset, or past the deadline.
    pub failed: AtomicU64,
    /// Not sent: [`MAX_IN_FLIGHT`] requests' copies were in flight.
    pub dropped: AtomicU64,
    /// Not sent: the body was longer than `maxBodySize`, or was not read to its end.
    pub skipped: AtomicU64,
}

impl MirrorStats {
    /// Each result with its total, for `/metrics`.
    pub fn totals(&self) -> [(&'static str, u64); 4] {
        [
            ("answered", self.answered.load(Relaxed)),
            ("failed", self.failed.load(Relaxed)),
            ("dropped", self.dropped.load(Relaxed)),
            ("skipped", self.skipped.load(Relaxed)),
        ]
    }
}

/// The copies a request owes, and what they need while it is proxied.
#[derive(Debug)]
pub(crate) struct Pending {
    owed: Vec<Mirrored>,
    /// The request as the main service got it (after middlewares and forwarding headers).
    header: Option<RequestHeader>,
    /// The body kept for copies, at most `keep` bytes.
    body: BytesMut,
    /// Body bytes seen in this attempt (kept or not).
    seen: u64,
    /// The most body bytes worth keeping: the largest `maxBodySize` of the mirrorings
    /// that copy the body (`None`: no limit); 0 when none does.
    keep: Option<u64>,
}

impl Pending {
    pub(crate) fn new(owed: Vec<Mirrored>) -> Self {
        let copying: Vec<Option<u64>> = owed
            .iter()
            .filter(|m| m.mirroring.mirror_body)
            .map(|m| m.mirroring.max_body_size)
            .collect();
        let keep = if copying.contains(&None) {
            None
        } else {
            Some(copying.into_iter().flatten().max().unwrap_or(0))
        };
        Pending {
            owed,
            header: None,
            body: BytesMut::new(),
            seen: 0,
            keep,
        }
    }

    /// A new upstream attempt: Pingora replays the body from its start.
    pub(crate) fn restart(&mut self) {
        self.body.clear();
        self.seen = 0;
    }

    /// Notes the request as it goes to the main service; `host`: the client's, for a
    /// request that came without a Host header (HTTP/2).
    pub(crate) fn request(&mut self, header: &RequestHeader, host: Option<&str>) {
        let mut copy = header.clone();
        if let (false, Some(host)) = (copy.headers.contains_key(HOST), host) {
            let _ = copy.insert_header(HOST, host);
        }
        self.header = Some(copy);
    }

    /// Keeps a chunk of the request body, as far as some copy may use it.
    pub(crate) fn body_chunk(&mut self, chunk: &[u8]) {
        let room = self
            .keep
            .map_or(usize::MAX, |keep| keep.saturating_sub(self.seen) as usize);
        self.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.seen += chunk.len() as u64;
    }
}

/// One copy, ready to go.
struct Copy {
    peer: HttpPeer,
    header: RequestHeader,
    body: Option<Bytes>,
    span: Option<Span>,
}

/// Sends the copies `pending` owes in the background. `body_read`: the length of the
/// client's body once read to its end; `parent`: the request's SERVER span.
pub(crate) fn send(
    mirrors: &Arc<Mirrors>,
    pending: Pending,
    body_read: Option<u64>,
    upstream: &traverse_config::Upstream,
    tracer: Option<&Arc<Tracer>>,
    parent: Option<&Span>,
) {
    let stats = &mirrors.stats;
    let owed: usize = pending.owed.iter().map(|m| m.targets().count()).sum();
    let Some(header) = pending.header else {
        // The request never went to the main service (a middleware answered, no
        // endpoint): as in Traefik, there is nothing to copy.
        return;
    };
    if mirrors.in_flight.fetch_add(1, Relaxed) >= MAX_IN_FLIGHT {
        mirrors.in_flight.fetch_sub(1, Relaxed);
        stats.dropped.fetch_add(owed as u64, Relaxed);
        return;
    }
    // Every byte of the body went through this attempt's filter and was kept.
    let kept = body_read == Some(pending.seen) && pending.body.len() as u64 == pending.seen;
    let body = pending.body.freeze();
    let mut copies = Vec::with_capacity(owed);
    for mirrored in &pending.owed {
        let settings = &mirrored.mirroring;
        let body = if !settings.mirror_body {
            None
        } else if kept && settings.max_body_size.is_none_or(|max| pending.seen <= max) {
            Some(body.clone())
        } else {
            stats
                .skipped
                .fetch_add(mirrored.targets().count() as u64, Relaxed);
            continue;
        };
        for mirror in mirrored.targets() {
            match prepare(
                &mirror.node,
                &header,
                body.clone(),
                upstream,
                tracer,
                parent,
            ) {
                Some(copy) => copies.push(copy),
                None => {
                    stats.failed.fetch_add(1, Relaxed);
                }
            }
        }
    }
    if copies.is_empty() {
        mirrors.in_flight.fetch_sub(1, Relaxed);
        return;
    }
    let mirrors = Arc::clone(mirrors);
    let tracer = tracer.cloned();
    tokio::spawn(async move {
        // In turn, as Traefik does: one request's copies hold one place in flight.
        for copy in copies {
            let Copy {
                peer,
                header,
                body,
                span,
            } = copy;
            let method = header.method.clone();
            let answer =
                tokio::time::timeout(DEADLINE, exchange(&mirrors.connector, &peer, header, body))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {DEADLINE:?}")));
            match &answer {
                Ok(_) => mirrors.stats.answered.fetch_add(1, Relaxed),
                Err(_) => mirrors.stats.failed.fetch_add(1, Relaxed),
            };
            if let (Some(tracer), Some(span)) = (&tracer, span) {
                end_span(tracer, span, &method, answer);
            }
        }
        mirrors.in_flight.fetch_sub(1, Relaxed);
    });
}

/// The copy of `header` (and `body`) for one endpoint of `node`; `None` when it has none.
fn prepare(
    node: &Node,
    header: &RequestHeader,
    body: Option<Bytes>,
    upstream: &traverse_config::Upstream,
    tracer: Option<&Arc<Tracer>>,
    parent: Option<&Span>,
) -> Option<Copy> {
    let now = now_ms();
    let backend: &Arc<Backend> = match node {
        Node::Backend(backend) => backend,
        // The mirror's own mirrors are not followed: its balancer only picks the port.
        Node::Balancer(balancer) => balancer.pick(&header.headers, now, &mut Vec::new())?,
    };
    let (_, endpoint) = backend
        .servers
        .select(&[], now)
        .or_else(|| backend.servers.select_untried(&[]))?;
    let address = endpoint.address;
    let mut copy = header.clone();
    copy.set_version(http::Version::HTTP_11);
    copy.remove_header(&TRANSFER_ENCODING);
    // The body goes whole at once: no interim `100 Continue` to wait for.
    copy.remove_header(&http::header::EXPECT);
    match &body {
        Some(body) => copy.insert_header(CONTENT_LENGTH, body.len()).ok()?,
        None => {
            copy.remove_header(&CONTENT_LENGTH);
        }
    }
    if !backend.pass_host_header {
        copy.insert_header(HOST, address.to_string()).ok()?;
    }
    let span = match (tracer, parent) {
        (Some(tracer), Some(parent)) => {
            // The main request's context is its attempt's; the copy carries its own.
            copy.remove_header(&TRACEPARENT);
            copy.remove_header(&TRACESTATE);
            let mut span = tracer.start_child(parent, traverse_telemetry::SpanKind::Client);
            span.set(|| KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_name(&header.method)));
            if span.is_recording() {
                let ip = address.ip().to_string();
                span.set(|| KeyValue::new(semconv::SERVER_ADDRESS, ip.clone()));
                span.set(|| KeyValue::new(semconv::NETWORK_PEER_ADDRESS, ip));
            }
            span.set(|| KeyValue::new(semconv::SERVER_PORT, i64::from(address.port())));
            span.set(|| KeyValue::new(semconv::NETWORK_PEER_PORT, i64::from(address.port())));
            span.set(|| KeyValue::new("traverse.service", Arc::clone(&backend.name)));
            span.set(|| KeyValue::new("traverse.mirror", true));
            let outbound = propagation::outbound(span.context(), span.tracestate());
            if let Some(value) = outbound.traceparent {
                copy.insert_header(TRACEPARENT_TEXT, value).ok()?;
            }
            if let Some(value) = outbound.tracestate {
                copy.insert_header(TRACESTATE_TEXT, value).ok()?;
            }
            Some(span)
        }
        _ => None,
    };
    let mut peer = transport::service_peer(backend, address, &copy);
    transport::apply_upstream(&mut peer, upstream);
    transport::apply_timeouts(backend, &mut peer);
    Some(Copy {
        peer,
        header: copy,
        body,
        span,
    })
}

/// Sends one copy and reads its answer to the end; its status.
async fn exchange(
    connector: &Connector,
    peer: &HttpPeer,
    header: RequestHeader,
    body: Option<Bytes>,
) -> Result<u16, String> {
    let (mut session, _) = connector
        .get_http_session(peer)
        .await
        .map_err(|e| e.to_string())?;
    let mut header = header;
    if session.as_http2().is_some() {
        // HTTP/2 carries the scheme and authority in the request target, as Pingora's
        // proxy sets them for its own HTTP/2 attempts.
        absolute_target(&mut header, peer)?;
    }
    session.set_read_timeout(peer.options.read_timeout);
    session.set_write_timeout(peer.options.write_timeout);
    let sent: pingora::Result<()> = async {
        session.write_request_header(Box::new(header)).await?;
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            session.write_request_body(body, true).await?;
        }
        session.finish_request_body().await?;
        session.read_response_header().await?;
        while session.read_response_body().await?.is_some() {}
        Ok(())
    }
    .await;
    match sent {
        Ok(()) => {
            let status = session.response_header().map_or(0, |r| r.status.as_u16());
            connector
                .release_http_session(session, peer, peer.options.idle_timeout)
                .await;
            Ok(status)
        }
        Err(error) => {
            session.shutdown().await;
            Err(error.to_string())
        }
    }
}

/// Makes the request target `scheme://host/path`, the host from the `Host` header.
fn absolute_target(header: &mut RequestHeader, peer: &HttpPeer) -> Result<(), String> {
    use pingora::upstreams::peer::Peer as _;
    let host = header
        .headers
        .get(HOST)
        .map(|h| h.as_bytes().to_vec())
        .unwrap_or_else(|| peer.address().to_string().into_bytes());
    let authority = http::uri::Authority::try_from(host.as_slice()).map_err(|e| e.to_string())?;
    let path = header
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let uri = http::Uri::builder()
        .scheme(if peer.is_tls() { "https" } else { "http" })
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| e.to_string())?;
    header.set_uri(uri);
    Ok(())
}

fn end_span(tracer: &Tracer, mut span: Span, method: &http::Method, answer: Result<u16, String>) {
    if !span.is_recording() {
        return;
    }
    let status = match answer {
        Ok(code) => {
            span.set(|| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
            if code >= 500 {
                span.set(|| KeyValue::new(semconv::ERROR_TYPE, code.to_string()));
                Status::error(format!("mirror answered {code}"))
            } else {
                Status::Unset
            }
        }
        Err(error) => {
            span.set(|| KeyValue::new(semconv::ERROR_TYPE, "mirror_failed"));
            Status::error(error)
        }
    };
    tracer.end(span, span_name(method, None), status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use traverse_model::{Mirror, Mirroring, Weighted};

    /// A mirroring with one mirror per name, each a Service port without endpoints.
    fn owed(mirror_body: bool, max_body_size: Option<u64>, names: &[&str]) -> Mirrored {
        let mirrors = names
            .iter()
            .map(|name| {
                let backend = Backend {
                    name: (*name).into(),
                    scheme: traverse_model::Scheme::Http,
                    pass_host_header: true,
                    servers: Weighted::new(vec![]),
                    transport: None,
                    sticky: None,
                    health_check: None,
                    strategy: Default::default(),
                };
                Mirror::new(Node::Backend(Arc::new(backend)), 100)
            })
            .collect();
        let mirroring = Arc::new(Mirroring::new(mirrors, mirror_body, max_body_size));
        let chosen = mirroring.choose();
        Mirrored { mirroring, chosen }
    }

    fn pending(owed: Vec<Mirrored>, body: &[u8]) -> Pending {
        let mut pending = Pending::new(owed);
        let header = RequestHeader::build("POST", b"/x", None).expect("header");
        pending.request(&header, Some("example.test"));
        pending.body_chunk(body);
        pending
    }

    fn totals(mirrors: &Mirrors) -> [u64; 4] {
        mirrors.stats.totals().map(|(_, total)| total)
    }

    #[test]
    fn the_body_is_kept_up_to_the_largest_limit_of_those_copying_it() {
        let mut kept = Pending::new(vec![
            owed(true, Some(4), &["a"]),
            owed(true, Some(6), &["b"]),
            owed(false, Some(1), &["c"]),
        ]);
        kept.body_chunk(b"0123");
        kept.body_chunk(b"4567");
        assert_eq!((&kept.body[..], kept.seen), (&b"012345"[..], 8));
        // A retry replays the body from its start.
        kept.restart();
        kept.body_chunk(b"01");
        assert_eq!((&kept.body[..], kept.seen), (&b"01"[..], 2));
        // Without a limit everything is kept; with no mirroring copying it, nothing.
        let mut unlimited =
            Pending::new(vec![owed(true, None, &["a"]), owed(true, Some(1), &["b"])]);
        unlimited.body_chunk(b"0123456789");
        assert_eq!(unlimited.body.len(), 10);
        let mut bodiless = Pending::new(vec![owed(false, None, &["a"])]);
        bodiless.body_chunk(b"0123456789");
        assert!(bodiless.body.is_empty());
    }

    #[tokio::test]
    async fn every_copy_owed_is_counted_once() {
        let mirrors = Arc::new(Mirrors::default());
        let upstream = traverse_config::Upstream::default();
        // Over maxBodySize: skipped, and not sent.
        send(
            &mirrors,
            pending(vec![owed(true, Some(4), &["a", "b"])], b"12345"),
            Some(5),
            &upstream,
            None,
            None,
        );
        assert_eq!(totals(&mirrors), [0, 0, 0, 2]);
        // A body not read to its end: skipped; a copy without body still goes (and
        // fails here: its Service has no endpoint).
        send(
            &mirrors,
            pending(
                vec![owed(true, None, &["a"]), owed(false, None, &["b"])],
                b"1",
            ),
            None,
            &upstream,
            None,
            None,
        );
        assert_eq!(totals(&mirrors), [0, 1, 0, 3]);
        // No place in flight: every copy of the request dropped.
        mirrors.in_flight.store(MAX_IN_FLIGHT, Relaxed);
        send(
            &mirrors,
            pending(vec![owed(false, None, &["a", "b", "c"])], b""),
            Some(0),
            &upstream,
            None,
            None,
        );
        assert_eq!(totals(&mirrors), [0, 1, 3, 3]);
        assert_eq!(mirrors.in_flight.load(Relaxed), MAX_IN_FLIGHT);
        // The request never went to the main service: nothing owed.
        mirrors.in_flight.store(0, Relaxed);
        send(
            &mirrors,
            Pending::new(vec![owed(false, None, &["a"])]),
            Some(0),
            &upstream,
            None,
            None,
        );
        assert_eq!(totals(&mirrors), [0, 1, 3, 3]);
    }
}
