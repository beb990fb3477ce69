//! One request's story: the [`Exchange`].
//!
//! The gateway's phases drive an `Exchange` as the request moves on (arrived, routed,
//! attempt begun, attempt failed, upstream answered, finished), and the exchange is the
//! only place that talks to telemetry: at each step it builds one record
//! ([`RequestRecord`], [`AttemptRecord`]) and hands that same value to the tracer, the
//! metrics and the access log, so the three signals cannot disagree.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderName, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::tls::SslDigest;
use traverse_model::{Backend, Origin, Router, Weighted};
use traverse_telemetry::access_log::AccessRecord;
use traverse_telemetry::propagation::{self, TrustPolicy};
use traverse_telemetry::record::{
    server_address, AttemptRecord, Failure, RequestRecord, SpanIds, TlsRecord, Upstream,
};
use traverse_telemetry::{KeyValue, Span, SpanKind, Status};

use crate::entrypoint::TlsFacts;
use crate::host::requested_host_port;
use crate::middleware::Notes;
use crate::multicluster::Member;
use crate::trace::{RequestTrace, RouteNames};
use crate::{InFlight, Telemetry};

/// Upstream attempts per request that the gateway's own retries allow: the first, and
/// one elsewhere. (Pingora may also replay a request whose pooled connection turned out
/// closed; that is not the endpoint's fault and does not count against it.)
pub(crate) const MAX_ATTEMPTS: u32 = 2;
/// Distinct addresses remembered as tried.
const TRIED_CAPACITY: usize = 4;

/// Where a matched request goes, once routing decided.
#[derive(Debug)]
pub(crate) enum Destination {
    /// A Service port's endpoints.
    Service(Arc<Backend>),
    /// On a parent: the children serving the matched uplink, and the uplink hops the
    /// request had taken when it arrived.
    Uplink {
        members: Arc<Weighted<Member>>,
        hops: u32,
    },
}

/// The endpoint of an attempt.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// The endpoint at this index of the Service's endpoints.
    Endpoint(usize),
    Child(Member),
}

/// An upstream attempt in progress.
#[derive(Debug)]
struct Attempt {
    address: SocketAddr,
    peer: Peer,
    started: Instant,
    state: AttemptState,
}

/// Whether an attempt's telemetry is still to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    Open,
    /// Ended without a response: no time is reported as spent with the upstream.
    Failed,
    /// Ended with the upstream's whole response, or with the request.
    Ended,
}

/// The per-entrypoint facts every exchange on it shares.
#[derive(Debug, Clone)]
pub struct Site {
    pub entry_point: Arc<str>,
    /// `https` on a TLS listener, else `http`.
    pub scheme: &'static str,
    pub trust: TrustPolicy,
}

/// How the request ended, as Pingora's `logging` phase knows it.
pub struct Ending<'a> {
    pub request: &'a RequestHeader,
    pub response: Option<&'a ResponseHeader>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The status sent, or what the error maps to.
    pub status: u16,
    pub error: Option<&'a pingora::Error>,
}

/// What happened to one request.
#[derive(Debug)]
pub struct Exchange {
    /// `None` for the advertisement stream, which lives as long as the gateway does.
    in_flight: Option<InFlight>,
    /// Answered by the gateway itself for its parents: no telemetry.
    internal: bool,
    started: Instant,
    /// When the response's last byte went to the client (the request's end, for its
    /// SERVER span and duration); `None` until then, or when no body was sent.
    responded: Option<(Instant, SystemTime)>,
    client: Option<SocketAddr>,
    local_port: Option<u16>,
    /// The TLS connection's digest, holding its [`TlsFacts`]; `None` on cleartext.
    tls: Option<Arc<SslDigest>>,
    router: Option<Arc<Router>>,
    destination: Option<Destination>,
    /// Addresses that failed this request, in order; `tried_len` of them are set.
    tried: [SocketAddr; TRIED_CAPACITY],
    tried_len: u8,
    attempts: u32,
    current: Option<Attempt>,
    /// Status of the last upstream response header received.
    upstream_status: Option<u16>,
    /// `None` when tracing is off (or the request is internal).
    trace: Option<RequestTrace>,
    /// Counted in `http.server.active_requests`, so `finish` must uncount it.
    active: bool,
    /// The entrypoint's scheme: `https` on a TLS listener, else `http`.
    scheme: &'static str,
    /// What the route's middlewares learnt about the request.
    notes: Notes,
    /// The copies owed to mirrors, on a route through a mirroring service.
    pub(crate) mirror: Option<Box<crate::mirror::Pending>>,
    /// This request counted in flight on its endpoint, for a `p2c` Service.
    pub(crate) load: Option<crate::select::InFlightLoad>,
}

impl Exchange {
    /// A request that just arrived, counted in flight while `in_flight` lives.
    pub(crate) fn new(in_flight: Option<InFlight>) -> Self {
        Exchange {
            in_flight,
            internal: false,
            started: Instant::now(),
            responded: None,
            client: None,
            local_port: None,
            tls: None,
            router: None,
            destination: None,
            tried: [SocketAddr::from(([0, 0, 0, 0], 0)); TRIED_CAPACITY],
            tried_len: 0,
            attempts: 0,
            current: None,
            upstream_status: None,
            trace: None,
            active: false,
            scheme: "http",
            notes: Notes::default(),
            mirror: None,
            load: None,
        }
    }

    /// The request arrived from `client` on local port `local_port` (over the TLS
    /// connection of `tls`): opens the SERVER span under the entrypoint's trust policy
    /// and counts the request as active.
    pub(crate) fn begin(
        &mut self,
        site: &Site,
        telemetry: &Telemetry,
        request: &RequestHeader,
        client: Option<SocketAddr>,
        local_port: Option<u16>,
        tls: Option<Arc<SslDigest>>,
    ) {
        self.client = client;
        self.local_port = local_port;
        self.tls = tls;
        self.scheme = site.scheme;
        if let Some(tracer) = &telemetry.tracer {
            let tls = self.tls_record();
            self.trace = Some(RequestTrace::start(
                tracer,
                site.trust,
                request,
                site.scheme,
                || {
                    let (host, port) = requested_host_port(request);
                    (server_address(host, tls.as_ref()), port.or(local_port))
                },
                self.client_ip(),
            ));
        }
        if let Some(metrics) = &telemetry.metrics {
            metrics.request_started(&site.entry_point);
            self.active = true;
            if site.trust == TrustPolicy::Continue {
                let valid = match &self.trace {
                    Some(trace) => trace.continued(),
                    None => propagation::extract(&request.headers).context.is_some(),
                };
                metrics.trace_context_seen(&site.entry_point, valid);
            }
        }
    }

    /// The certificates the client presented on the request's TLS connection, leaf
    /// first; empty on cleartext or without client authentication.
    pub(crate) fn client_certificates(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        self.tls
            .as_ref()
            .and_then(|tls| tls.extension.get::<TlsFacts>())
            .map_or(&[], |facts| &facts.client_certificates)
    }

    /// What the TLS handshake of the request's connection settled.
    fn tls_record(&self) -> Option<TlsRecord<'_>> {
        let facts = self.tls.as_ref()?.extension.get::<TlsFacts>()?;
        Some(TlsRecord {
            version: facts.version,
            server_name: facts.server_name.as_deref(),
        })
    }

    /// Served by the gateway itself (parents' endpoints): no telemetry at all.
    pub(crate) fn mark_internal(&mut self) {
        self.internal = true;
    }

    /// The advertisement stream lasts as long as the gateway: it must not hold up the drain.
    pub(crate) fn leave_in_flight(&mut self) {
        self.in_flight = None;
    }

    /// Sets an attribute on the SERVER span (when it is recorded).
    pub(crate) fn annotate(&mut self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(trace) = &mut self.trace {
            trace.server.set(attribute);
        }
    }

    /// A middleware answered the request itself: named on the SERVER span and, through
    /// the record, in the access log.
    pub(crate) fn answered_by(&mut self, origin: Origin) {
        self.annotate(|| KeyValue::new("traverse.middleware", origin.name.to_string()));
        self.annotate(|| KeyValue::new("traverse.middleware.type", origin.kind));
        self.notes.answered_by = Some(origin);
    }

    /// What the route's middlewares learnt about the request.
    pub(crate) fn notes(&self) -> &Notes {
        &self.notes
    }

    pub(crate) fn notes_mut(&mut self) -> &mut Notes {
        &mut self.notes
    }

    /// The entrypoint's scheme: `https` on a TLS listener, else `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Sets an attribute on the current attempt's CLIENT span.
    pub(crate) fn annotate_attempt(&mut self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(client) = self.trace.as_mut().and_then(|t| t.client.as_mut()) {
            client.set(attribute);
        }
    }

    /// Routing matched `router` (or nothing) and chose `destination` (or answers itself).
    pub(crate) fn route(&mut self, router: Option<Arc<Router>>, destination: Option<Destination>) {
        self.router = router;
        self.destination = destination;
    }

    /// Routing chose `destination` for `router`; `cookies` are sticky cookies to set.
    pub(crate) fn route_to(
        &mut self,
        router: Arc<Router>,
        destination: Destination,
        cookies: Vec<String>,
    ) {
        self.route(Some(router), Some(destination));
        self.notes.set_cookies = cookies;
    }

    pub(crate) fn router(&self) -> Option<&Arc<Router>> {
        self.router.as_ref()
    }

    pub(crate) fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    /// Addresses this request already tried: a retry goes elsewhere.
    pub(crate) fn tried(&self) -> &[SocketAddr] {
        &self.tried[..usize::from(self.tried_len)]
    }

    /// The current attempt failed through no fault of its endpoint (a pooled connection
    /// the endpoint had closed): the endpoint may be tried again.
    pub(crate) fn forgive_current(&mut self) {
        let Some(address) = self.current_address() else {
            return;
        };
        let tried = &mut self.tried[..usize::from(self.tried_len)];
        if let Some(position) = tried.iter().position(|a| *a == address) {
            tried[position..].rotate_left(1);
            self.tried_len -= 1;
        }
    }

    /// Forgets the endpoints tried: a retry that found none untried starts a new round.
    pub(crate) fn forget_tried(&mut self) {
        self.tried_len = 0;
    }

    /// Time since the request arrived.
    pub(crate) fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Attempts begun so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the gateway's own retry budget allows another attempt.
    pub(crate) fn may_attempt_again(&self) -> bool {
        self.attempts < MAX_ATTEMPTS
    }

    /// The client's IP address.
    pub(crate) fn client_ip(&self) -> Option<IpAddr> {
        self.client.map(|a| a.ip())
    }

    pub(crate) fn local_port(&self) -> Option<u16> {
        self.local_port
    }

    /// The endpoint of the attempt in progress (or the last one).
    pub(crate) fn current_peer(&self) -> Option<&Peer> {
        self.current.as_ref().map(|a| &a.peer)
    }

    /// The address of the attempt in progress (or the last one).
    pub(crate) fn current_address(&self) -> Option<SocketAddr> {
        self.current.as_ref().map(|a| a.address)
    }

    /// The upstream answered with `status` (a response header arrived).
    pub(crate) fn upstream_responded(&mut self, status: u16) {
        self.upstream_status = Some(status);
    }

    /// Whether a response header came back from the upstream.
    pub(crate) fn upstream_status(&self) -> Option<u16> {
        self.upstream_status
    }

    /// Begins upstream attempt number `attempts + 1`, to `address`: counts it, remembers
    /// the address as tried and opens its CLIENT span (ending a previous one still open).
    pub(crate) fn begin_attempt(
        &mut self,
        site: &Site,
        telemetry: &Telemetry,
        method: &Method,
        address: SocketAddr,
        peer: Peer,
    ) {
        let len = usize::from(self.tried_len);
        if len < TRIED_CAPACITY && !self.tried[..len].contains(&address) {
            self.tried[len] = address;
            self.tried_len += 1;
        }
        self.attempts += 1;
        self.upstream_status = None;
        self.current = Some(Attempt {
            address,
            peer,
            started: Instant::now(),
            state: AttemptState::Open,
        });
        if let (Some(tracer), Some(trace)) = (&telemetry.tracer, &mut self.trace) {
            let names = route_names(
                &site.entry_point,
                self.router.as_ref(),
                self.destination.as_ref(),
                self.current.as_ref(),
            );
            trace.start_attempt(tracer, method, address, self.attempts, &names);
        }
    }

    /// Ends the current attempt as failed with `kind` (no response header came back).
    pub(crate) fn fail_attempt(
        &mut self,
        site: &Site,
        telemetry: &Telemetry,
        method: &Method,
        kind: &'static str,
    ) {
        let Some(started) = self.close_attempt(AttemptState::Failed) else {
            return;
        };
        let failure = Failure {
            kind,
            detail: &kind,
        };
        self.end_attempt(site, telemetry, method, started, None, Some(failure));
    }

    /// Marks the open attempt `state`; its start, or `None` when none was open.
    fn close_attempt(&mut self, state: AttemptState) -> Option<Instant> {
        let attempt = self
            .current
            .as_mut()
            .filter(|a| a.state == AttemptState::Open)?;
        attempt.state = state;
        Some(attempt.started)
    }

    /// The upstream's response has been received whole: the attempt's CLIENT span and
    /// client duration end now, not when the request is logged, so a span the upstream
    /// opened for it ends inside this one.
    pub(crate) fn upstream_complete(
        &mut self,
        site: &Site,
        telemetry: &Telemetry,
        method: &Method,
    ) {
        if let Some(started) = self.close_attempt(AttemptState::Ended) {
            let status = self.upstream_status;
            self.end_attempt(site, telemetry, method, started, status, None);
        }
    }

    /// The response's last byte is on its way to the client connection: the request
    /// ends now (its SERVER span and duration), not after the logging that follows.
    pub(crate) fn response_complete(&mut self) {
        self.responded
            .get_or_insert_with(|| (Instant::now(), SystemTime::now()));
    }

    /// Writes the telemetry of the current attempt, with the upstream's status or `failure`.
    fn end_attempt(
        &mut self,
        site: &Site,
        telemetry: &Telemetry,
        method: &Method,
        started: Instant,
        status: Option<u16>,
        failure: Option<Failure>,
    ) {
        let Some(attempt) = &self.current else {
            return;
        };
        let names = route_names(
            &site.entry_point,
            self.router.as_ref(),
            self.destination.as_ref(),
            Some(attempt),
        );
        let record = AttemptRecord {
            service: names.service,
            route: names.route,
            method,
            number: self.attempts,
            endpoint: attempt.address,
            status,
            failure,
            duration: started.elapsed(),
        };
        if let (Some(tracer), Some(trace)) = (&telemetry.tracer, &mut self.trace) {
            trace.end_attempt(tracer, &record);
        }
        if let Some(metrics) = &telemetry.metrics {
            metrics.attempt_finished(&record);
        }
    }

    /// Replaces the inbound trace headers of `upstream_request` with the current
    /// attempt's context.
    pub(crate) fn inject(&self, upstream_request: &mut RequestHeader) -> pingora::Result<()> {
        match &self.trace {
            Some(trace) => trace.inject(upstream_request),
            None => Ok(()),
        }
    }

    /// The trace id response header, when tracing and the option are on.
    pub(crate) fn trace_header(&self, telemetry: &Telemetry) -> Option<(HeaderName, HeaderValue)> {
        self.trace
            .as_ref()?
            .response_header(telemetry.tracer.as_ref()?)
    }

    /// Opens a CLIENT span for a call a middleware makes on the request's behalf
    /// (forwardAuth), named `name`; its context is what the call must carry.
    pub fn begin_call(&mut self, telemetry: &Telemetry, name: &'static str) -> Option<Call> {
        let tracer = telemetry.tracer.as_ref()?;
        let trace = self.trace.as_ref()?;
        let mut span = tracer.start_child(&trace.server, SpanKind::Client);
        span.set(|| KeyValue::new("traverse.call", name));
        Some(Call { span, name })
    }

    /// The request's SERVER span, when it is traced.
    pub(crate) fn server_span(&self) -> Option<&traverse_telemetry::Span> {
        self.trace.as_ref().map(|t| &t.server)
    }

    /// Ends a middleware's call with the status it got, or as failed.
    pub fn end_call(&mut self, telemetry: &Telemetry, call: Call, status: Result<u16, String>) {
        let Some(tracer) = &telemetry.tracer else {
            return;
        };
        let Call { mut span, name } = call;
        let outcome = match status {
            Ok(code) => {
                span.set(|| {
                    KeyValue::new(
                        traverse_telemetry::semconv::HTTP_RESPONSE_STATUS_CODE,
                        i64::from(code),
                    )
                });
                Status::Unset
            }
            Err(error) => Status::error(error),
        };
        tracer.end(span, name, outcome);
    }

    /// The one record of this request: what the span, the metrics and the access log
    /// are all built from.
    pub fn record<'a>(&'a self, site: &'a Site, ending: &'a Ending<'a>) -> RequestRecord<'a> {
        self.build_record(site, ending, self.trace.as_ref().map(span_ids))
    }

    fn build_record<'a>(
        &'a self,
        site: &'a Site,
        ending: &'a Ending<'a>,
        span: Option<SpanIds>,
    ) -> RequestRecord<'a> {
        let request = ending.request;
        let (host, port) = requested_host_port(request);
        let names = route_names(
            &site.entry_point,
            self.router.as_ref(),
            self.destination.as_ref(),
            self.current.as_ref(),
        );
        // The request ends when its last byte went out, or (no body, an error) now.
        let (ended, end) = self
            .responded
            .unwrap_or_else(|| (Instant::now(), SystemTime::now()));
        let duration = ended.saturating_duration_since(self.started);
        RequestRecord {
            entry_point: &site.entry_point,
            scheme: site.scheme,
            method: &request.method,
            uri: &request.uri,
            version: request.version,
            host,
            port: port.or(self.local_port),
            tls: self.tls_record(),
            request_headers: &request.headers,
            response_headers: ending.response.map(|r| &r.headers),
            client: self.client,
            router: names.router,
            route: names.route,
            service: names.service,
            status: ending.status,
            failure: ending.error.map(|e| Failure {
                kind: e.etype().as_str(),
                detail: e,
            }),
            start: end - duration,
            duration,
            request_bytes: ending.request_bytes,
            response_bytes: ending.response_bytes,
            attempts: self.attempts,
            upstream: self.current.as_ref().map(|attempt| Upstream {
                address: attempt.address,
                scheme: self.upstream_scheme(),
                status: self.upstream_status,
                duration: (attempt.state != AttemptState::Failed)
                    .then(|| ended.saturating_duration_since(attempt.started)),
            }),
            span,
            client_username: self.notes.user.as_deref(),
            middleware: self.notes.answered_by.as_ref().map(|o| &*o.name),
        }
    }

    /// The request is over: ends the open attempt and the SERVER span, and records the
    /// request in metrics and the access log, all from one record.
    pub(crate) fn finish(&mut self, site: &Site, telemetry: &Telemetry, ending: &Ending) {
        if self.internal {
            return;
        }
        if let Some(started) = self.close_attempt(AttemptState::Ended) {
            let failure = match (self.upstream_status, ending.error) {
                (None, Some(error)) => Some(Failure {
                    kind: error.etype().as_str(),
                    detail: error,
                }),
                _ => None,
            };
            let status = self.upstream_status;
            self.end_attempt(
                site,
                telemetry,
                &ending.request.method,
                started,
                status,
                failure,
            );
        }
        let active = std::mem::take(&mut self.active);
        let trace = self.trace.take();
        let record = self.build_record(site, ending, trace.as_ref().map(span_ids));
        if let (Some(tracer), Some(trace)) = (&telemetry.tracer, trace) {
            trace.finish(tracer, &record);
        }
        if let Some(metrics) = telemetry.metrics.as_ref().filter(|_| active) {
            metrics.request_finished(&record);
        }
        if let Some(access_log) = &telemetry.access_log {
            let policy = access_log.policy();
            if policy.keeps(
                record.status,
                record.duration,
                record.attempts.saturating_sub(1),
            ) {
                access_log.log(AccessRecord::new(&record, policy));
            }
        }
        tracing::debug!(
            target: "traverse::access",
            entrypoint = %record.entry_point,
            router = record.router.map(|r| r.as_ref()),
            service = record.service.map(|s| s.as_ref()),
            upstream = record.upstream.map(|u| tracing::field::display(u.address)),
            method = %record.method,
            path = record.uri.path(),
            status = record.status,
            attempts = record.attempts,
            duration_ms = record.duration.as_secs_f64() * 1000.0,
            error = record.failure.map(|f| tracing::field::display(f.detail)),
            "request"
        );
    }

    /// `http`, `https` or `h2c` of the current attempt's upstream.
    fn upstream_scheme(&self) -> &'static str {
        match (&self.destination, self.current.as_ref().map(|a| &a.peer)) {
            (Some(Destination::Service(backend)), _) => backend.scheme.as_str(),
            (_, Some(Peer::Child(member))) if member.child.tls.is_some() => "https",
            _ => "http",
        }
    }
}

/// A middleware's call in progress (see [`Exchange::begin_call`]).
pub struct Call {
    span: Span,
    name: &'static str,
}

impl Call {
    /// The `traceparent` (and `tracestate`) the call must send.
    pub fn context_headers(&self) -> propagation::Outbound {
        propagation::outbound(self.span.context(), self.span.tracestate())
    }
}

fn span_ids(trace: &RequestTrace) -> SpanIds {
    let context = trace.server.context();
    SpanIds {
        trace_id: context.trace_id(),
        span_id: context.span_id(),
        sampled: context.is_sampled(),
    }
}

/// The names a span and a metric report: the service is the Service port, or on a
/// parent the uplink of the current child.
fn route_names<'a>(
    entry_point: &'a Arc<str>,
    router: Option<&'a Arc<Router>>,
    destination: Option<&'a Destination>,
    attempt: Option<&'a Attempt>,
) -> RouteNames<'a> {
    let service = match (destination, attempt.map(|a| &a.peer)) {
        (Some(Destination::Service(backend)), _) => Some(&backend.name),
        (_, Some(Peer::Child(member))) => Some(&member.uplink),
        _ => None,
    };
    RouteNames {
        entry_point,
        router: router.map(|r| &r.name),
        route: router.map(|r| &r.route),
        service,
    }
}

#[cfg(test)]
mod tests;
