//! One entrypoint's request path, as Pingora phases. Each phase only drives the
//! request's [`Exchange`]: [`routing`] decides in `request_filter`, [`select`] chooses each
//! attempt's endpoint in `upstream_peer`, the [`middleware`] chain rewrites and filters,
//! [`uplink`] handles the hop across clusters, errors map to a status in one place
//! ([`status_for_error`]), and `logging` ends the exchange, which records it once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use traverse_config::{EntryPoint, Upstream};
use traverse_model::EjectionPolicy;

use crate::edge::{self, whole_seconds};
use crate::entrypoint::Redirect;
use crate::errors::{client_gone, final_status, status_for_error, CLIENT_CLOSED_REQUEST};
use crate::exchange::{Destination, Ending, Exchange, Peer, Site};
use crate::forwarded::{Downstream, ForwardedPolicy};
use crate::host::request_host;
use crate::middleware::{self, Verdict};
use crate::multicluster::WELL_KNOWN_PREFIX;
use crate::respond::respond;
use crate::routing::{self, Decision};
use crate::{mirror, select, transport, uplink, GatewayState};

/// Everything an entrypoint needs from the static configuration, resolved once.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    site: Site,
    forwarded: ForwardedPolicy,
    downstream_read: Duration,
    downstream_write: Duration,
    /// How long a kept-alive connection waits for its next request, in whole seconds (what
    /// Pingora's keep-alive timer takes). The head that follows is held to `read` by the
    /// connection's own deadline (`accept.rs`), not by this timer.
    pub(crate) keepalive_seconds: u64,
    upstream: Upstream,
    /// Passive ejection of Service endpoints.
    ejection: EjectionPolicy,
    /// Serves parents: the advertisement and health endpoints, cross-cluster attributes.
    uplink: bool,
    limits: edge::Limits,
    /// `http.redirections.entryPoint`: every request is answered with this redirect.
    redirect: Option<Arc<Redirect>>,
}

impl GatewayOptions {
    /// Options for the entrypoint `name`.
    pub fn new(name: &str, entry_point: &EntryPoint, upstream: &Upstream) -> Self {
        GatewayOptions {
            site: Site {
                entry_point: name.into(),
                scheme: if entry_point.tls.is_some() {
                    "https"
                } else {
                    "http"
                },
                trust: entry_point.trace_context,
            },
            forwarded: ForwardedPolicy::new(
                entry_point.forwarded_headers.insecure,
                &entry_point.forwarded_headers.trusted_ips,
            ),
            downstream_read: entry_point.timeouts.read,
            downstream_write: entry_point.timeouts.write,
            keepalive_seconds: whole_seconds(entry_point.timeouts.idle),
            upstream: upstream.clone(),
            ejection: EjectionPolicy {
                failures: upstream.passive_health_check.failures,
                ejection_time: upstream.passive_health_check.ejection_time,
            },
            uplink: entry_point.uplink,
            limits: edge::Limits::of(entry_point),
            redirect: None,
        }
    }

    /// Answers every request with `redirect` instead of routing it.
    pub fn with_redirect(mut self, redirect: Option<Arc<Redirect>>) -> Self {
        self.redirect = redirect;
        self
    }
}

/// The `ProxyHttp` implementation of one entrypoint.
pub struct Gateway {
    options: GatewayOptions,
    state: Arc<GatewayState>,
}

impl Gateway {
    /// A gateway serving `options`' entrypoint from `state`'s routing table.
    pub fn new(options: GatewayOptions, state: Arc<GatewayState>) -> Self {
        Gateway { options, state }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Exchange;

    fn new_ctx(&self) -> Exchange {
        Exchange::new(Some(self.state.enter()))
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Exchange) -> Result<bool> {
        session.set_read_timeout(Some(self.options.downstream_read));
        session.set_write_timeout(Some(self.options.downstream_write));
        let draining = self.state.is_draining();
        edge::keep_alive(session, self.options.keepalive_seconds, draining);
        if let Some((status, reason)) = edge::refusal(session.req_header(), self.options.limits) {
            tracing::debug!(status, reason, "request refused");
            session.set_keepalive(None);
            respond(session, status, Bytes::from(format!("{reason}\n")), &[]).await?;
            return Ok(true);
        }
        if self.options.uplink
            && session
                .req_header()
                .uri
                .path()
                .starts_with(WELL_KNOWN_PREFIX)
        {
            uplink::serve_parent(session, ctx, &self.state).await?;
            return Ok(true);
        }
        let client = session.client_addr().and_then(|a| a.as_inet()).copied();
        let local_port = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.port());
        let telemetry = self.state.telemetry();
        let tls = session.digest().and_then(|d| d.ssl_digest.clone());
        ctx.begin(
            &self.options.site,
            telemetry,
            session.req_header(),
            client,
            local_port,
            tls,
        );
        if self.options.uplink {
            uplink::annotate_arrival(ctx, self.state.topology(), session.req_header());
        }
        // Before routing, as Traefik's redirect router outranks the others; recorded like
        // a middleware's answer.
        if let Some(redirect) = &self.options.redirect {
            let (status, location) = redirect.answer(session.req_header());
            // Made of a valid Host header and request target.
            let location = http::HeaderValue::try_from(location)
                .map_err(|e| Error::because(ErrorType::InternalError, "redirect Location", e))?;
            ctx.answered_by(redirect.origin().clone());
            let mut headers = vec![(http::header::LOCATION, location)];
            headers.extend(ctx.trace_header(telemetry));
            respond(session, status, Bytes::new(), &headers).await?;
            return Ok(true);
        }

        let decision = routing::decide(
            &self.state,
            &self.options.site.entry_point,
            session.req_header(),
            ctx.client_ip(),
        );
        let mut mirrorings = Vec::new();
        let (router, answer) = match decision {
            Decision::Proxy(router, destination, cookies, mirrored) => {
                ctx.route_to(router, destination, cookies);
                mirrorings = mirrored;
                (ctx.router().cloned(), None)
            }
            Decision::Respond(router, status, body) => {
                ctx.route(router, None);
                (ctx.router().cloned(), Some((status, body)))
            }
        };
        // A matched route's middlewares come first: they may answer (e.g. 401) before
        // the route's own 503.
        if let Some(router) = router.filter(|r| !r.middlewares.is_empty()) {
            ctx.notes_mut().forwarded_trusted = self.options.forwarded.trusts(ctx.client_ip());
            let verdict =
                middleware::request(&router.middlewares, session.req_header(), ctx, telemetry)
                    .await?;
            if let Verdict::Answer(answer) = verdict {
                let mut headers = answer.headers;
                headers.extend(ctx.trace_header(telemetry));
                respond(session, answer.status, answer.body, &headers).await?;
                return Ok(true);
            }
        }
        match answer {
            None => {
                // Past the middlewares, the request reaches the service: only now does it
                // count towards the mirrors' shares, as in Traefik.
                let owed: Vec<_> = mirrorings.iter().filter_map(|m| m.owed()).collect();
                if !owed.is_empty() {
                    ctx.mirror = Some(Box::new(mirror::Pending::new(owed)));
                }
                Ok(false)
            }
            Some((status, body)) => {
                let headers: Vec<_> = ctx.trace_header(telemetry).into_iter().collect();
                respond(session, status, body, &headers).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Exchange,
    ) -> Result<Box<HttpPeer>> {
        let preferred = match (ctx.router(), ctx.destination()) {
            (Some(router), Some(Destination::Service(backend))) => {
                middleware::preferred_endpoint(&router.middlewares, session.req_header(), backend)
            }
            _ => None,
        };
        let topology = self.state.topology();
        let retry_delay = match ctx.router() {
            Some(router) if ctx.attempts() > 0 => {
                middleware::retry_delay(&router.middlewares, ctx.attempts())
            }
            _ => None,
        };
        if let Some(delay) = retry_delay.filter(|d| !d.is_zero()) {
            tokio::time::sleep(delay).await;
        }
        if let Some(pending) = ctx.mirror.as_mut() {
            pending.restart();
        }
        let mut selected = select::next(ctx, preferred);
        if selected.is_none() && retry_delay.is_some() {
            // A retry middleware's attempts go on over endpoints already tried, as
            // Traefik's balancer would pick them again.
            ctx.forget_tried();
            selected = select::next(ctx, preferred);
        }
        let Some(selected) = selected else {
            let reason = match ctx.destination() {
                Some(Destination::Uplink { .. }) => "no available child cluster",
                _ => "no available server",
            };
            return Err(Error::explain(ErrorType::HTTPStatus(503), reason));
        };
        let method = &session.req_header().method;
        let telemetry = self.state.telemetry();
        ctx.begin_attempt(
            &self.options.site,
            telemetry,
            method,
            selected.address,
            selected.peer.clone(),
        );
        let peer = match (&selected.peer, ctx.destination()) {
            (Peer::Child(member), _) => {
                uplink::annotate_attempt(ctx, topology, member);
                let mut peer = match &member.child.tls {
                    Some(tls) => tls.peer(selected.address),
                    None => HttpPeer::new(selected.address, false, String::new()),
                };
                transport::apply_upstream(&mut peer, &self.options.upstream);
                peer
            }
            (Peer::Endpoint(_), Some(Destination::Service(backend))) => {
                let mut peer =
                    transport::service_peer(backend, selected.address, session.req_header());
                transport::apply_upstream(&mut peer, &self.options.upstream);
                transport::apply_timeouts(backend, &mut peer);
                peer
            }
            (Peer::Endpoint(_), _) => {
                return Err(Error::explain(
                    ErrorType::InternalError,
                    "endpoint chosen without a Service",
                ))
            }
        };
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Exchange,
        mut error: Box<Error>,
    ) -> Box<Error> {
        if client_gone(&error) {
            error.set_retry(false);
            return error;
        }
        self.end_failed_attempt(session, ctx, &error);
        self.hold_against_endpoint(ctx);
        // Nothing reached the upstream, so retrying is safe for every method.
        if self.may_retry_elsewhere(ctx) {
            error.set_retry(true);
        }
        error
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        error: Box<Error>,
        ctx: &mut Exchange,
        client_reused: bool,
    ) -> Box<Error> {
        // Pingora's rule: only idempotent requests whose body is still buffered are
        // replayed, and only on a reused connection (it may have been closed under us).
        let mut error = error.more_context(format!("Peer: {peer}"));
        if client_gone(&error) {
            // The client went away: nothing to retry for, and nothing against the upstream.
            error.set_retry(false);
            return error;
        }
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        if replayable {
            error.retry.decide_reuse(client_reused);
        } else {
            error.set_retry(false);
        }
        if ctx.upstream_status().is_some() {
            return error;
        }
        let over_uplink = matches!(ctx.destination(), Some(Destination::Uplink { .. }));
        if over_uplink {
            // A child that failed before answering is counted against it, and a
            // replayable request gets one more attempt on another child.
            self.hold_against_endpoint(ctx);
            if replayable && self.may_retry_elsewhere(ctx) {
                error.set_retry(true);
            }
        } else if error.retry() {
            // A pooled connection the endpoint had closed: replayed, on the same endpoint
            // if need be, and not held against it.
            ctx.forgive_current();
        } else {
            // Failed before answering on a fresh connection: held against the endpoint.
            self.hold_against_endpoint(ctx);
        }
        if error.retry() {
            self.end_failed_attempt(session, ctx, &error);
        }
        error
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Exchange,
    ) -> Result<()> {
        let Some(router) = ctx.router() else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "upstream request without a route",
            ));
        };
        let original_host = request_host(session.req_header());
        // Forwarding headers first: an untrusted client's X-Forwarded-* are dropped before
        // middlewares (stripPrefix's X-Forwarded-Prefix, custom headers) set their own.
        let downstream = Downstream {
            client_ip: ctx.client_ip(),
            proto: self.options.site.scheme,
            host: original_host,
            port: ctx.local_port(),
        };
        self.options.forwarded.apply(upstream_request, &downstream);
        middleware::upstream_request(&router.middlewares, upstream_request, ctx)?;
        ctx.inject(upstream_request)?;
        if let Some(pending) = ctx.mirror.as_mut() {
            pending.request(upstream_request, original_host);
        }

        let pass_host_header = match (ctx.destination(), ctx.current_peer()) {
            (Some(Destination::Uplink { hops, .. }), Some(Peer::Child(member))) => {
                uplink::add_hop_headers(upstream_request, self.state.topology(), member, *hops)?;
                true
            }
            (Some(Destination::Service(backend)), _) => backend.pass_host_header,
            _ => true,
        };
        if !pass_host_header {
            if let Some(address) = ctx.current_address() {
                upstream_request.insert_header(http::header::HOST, address.to_string())?;
            }
        } else if !upstream_request.headers.contains_key(http::header::HOST) {
            // An HTTP/2 client sends :authority, not Host; an HTTP/1 upstream needs Host.
            // An HTTP/1.0 request may come without Host: the upstream's address stands in.
            let host = original_host
                .map(str::to_owned)
                .or_else(|| ctx.current_address().map(|a| a.to_string()));
            if let Some(host) = host {
                upstream_request.insert_header(http::header::HOST, host)?;
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Exchange,
    ) -> Result<()> {
        ctx.upstream_responded(upstream_response.status.as_u16());
        select::succeeded(ctx, self.state.topology().children.as_deref());
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Exchange,
    ) -> Result<Option<Duration>> {
        if end_of_stream {
            let (site, telemetry) = (&self.options.site, self.state.telemetry());
            ctx.upstream_complete(site, telemetry, &session.req_header().method);
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Exchange,
    ) -> Result<()> {
        if let Some((name, value)) = ctx.trace_header(self.state.telemetry()) {
            response.insert_header(name, value)?;
        }
        if self.state.is_draining() {
            // From SIGTERM on, no connection is kept for another request.
            session.set_keepalive(None);
        }
        // The route is shared, so a chain's steps can note what they learn on the exchange.
        let router = ctx.router().filter(|r| !r.middlewares.is_empty()).cloned();
        let chain = router.as_deref().map_or(&[][..], |r| &r.middlewares);
        let telemetry = self.state.telemetry();
        middleware::intercept(chain, session.req_header(), ctx, response, telemetry).await?;
        middleware::response(chain, session.req_header(), ctx, response)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Exchange,
    ) -> Result<Option<Duration>> {
        middleware::response_body(ctx, body, end_of_stream)?;
        if end_of_stream {
            ctx.response_complete();
        }
        Ok(None)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Exchange,
    ) -> Result<()> {
        edge::body_within_limit(session.body_bytes_read(), self.options.limits)?;
        middleware::request_body_within_limit(session.body_bytes_read(), ctx)?;
        middleware::request_body(ctx, body, end_of_stream)?;
        // Mirrors get the body as the main service does, after the middlewares.
        if let (Some(pending), Some(chunk)) = (ctx.mirror.as_mut(), body.as_ref()) {
            pending.body_chunk(chunk);
        }
        Ok(())
    }

    async fn response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut Exchange,
    ) -> Result<Option<Bytes>> {
        // Bytes returned here end the body instead of trailers (grpcWeb).
        let ending = middleware::response_trailers(ctx, trailers)?;
        if ending.is_some() {
            ctx.response_complete();
        }
        Ok(ending)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut Exchange,
    ) -> FailToProxy {
        let status = status_for_error(error);
        // A client that is gone cannot be answered; anything else gets the mapped status.
        if status != CLIENT_CLOSED_REQUEST && session.response_written().is_none() {
            let trace = ctx.trace_header(self.state.telemetry());
            edge::send_error(session, status, trace).await;
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, session: &Session, _ctx: &Exchange, error: &Error) -> bool {
        if client_gone(error) {
            let path = session.req_header().uri.path();
            tracing::debug!(%error, path, "client closed the connection before the response");
            return true;
        }
        false
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut Exchange) {
        let body_done = session.is_body_done();
        let response = session.response_written();
        let ending = Ending {
            request: session.req_header(),
            response,
            request_bytes: session.body_bytes_read() as u64,
            response_bytes: session.body_bytes_sent() as u64,
            status: final_status(response.map(|r| r.status.as_u16()), error),
            error,
        };
        middleware::finished(ctx, ending.status);
        // As in Traefik, a request whose client went away is not copied.
        if let Some(pending) = ctx
            .mirror
            .take()
            .filter(|_| !error.is_some_and(client_gone))
        {
            let body_read = body_done.then_some(ending.request_bytes);
            mirror::send(
                &self.state.mirrors,
                *pending,
                body_read,
                &self.options.upstream,
                self.state.tracer(),
                ctx.server_span(),
            );
        }
        ctx.finish(&self.options.site, self.state.telemetry(), &ending);
    }
}

impl Gateway {
    /// Whether a failed attempt gets another, elsewhere: the retry budget allows it, an
    /// untried endpoint is in rotation, and the route's middlewares do not object.
    fn may_retry_elsewhere(&self, ctx: &Exchange) -> bool {
        let default = ctx.may_attempt_again() && select::another_available(ctx);
        match ctx.router() {
            Some(router) => middleware::may_retry(&router.middlewares, ctx.attempts(), default),
            None => default,
        }
    }

    /// Ends the current attempt's span and metric as failed with `error`'s type.
    fn end_failed_attempt(&self, session: &Session, ctx: &mut Exchange, error: &Error) {
        let (site, telemetry) = (&self.options.site, self.state.telemetry());
        ctx.fail_attempt(
            site,
            telemetry,
            &session.req_header().method,
            error.etype().as_str(),
        );
    }

    /// Counts the current attempt's failure against its endpoint's or child's passive health.
    fn hold_against_endpoint(&self, ctx: &Exchange) {
        let children = self.state.topology().children.as_deref();
        select::failed(ctx, children, self.options.ejection);
    }
}
