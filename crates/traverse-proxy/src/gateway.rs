//! One entrypoint's request path, as Pingora phases.
//!
//! `request_filter` matches a route and chooses a service, `upstream_peer` chooses an
//! endpoint, `upstream_request_filter` applies middlewares and forwarding headers,
//! `response_filter` applies response middlewares, `fail_to_proxy` maps errors to a status,
//! and `logging` records the outcome once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::protocols::http::error_resp::gen_error_response;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use traverse_config::{EntryPoint, TrustPolicy, Upstream};
use traverse_provider::{Backend, Middleware, Router, Scheme, Target, Weighted};
use traverse_telemetry::access_log::{AccessLogPolicy, AccessRecord};
use traverse_telemetry::metrics::{AttemptOutcome, RequestLabels, RequestOutcome};
use traverse_telemetry::{propagation, KeyValue};

use crate::errors::{status_for_error, CLIENT_CLOSED_REQUEST};
use crate::forwarded::{Downstream, ForwardedPolicy};
use crate::multicluster::{
    advertisement, Member, ADVERTISEMENT_PATH, HEALTH_PATH, HOPS_HEADER, UPLINK_HEADER,
    WELL_KNOWN_PREFIX,
};
use crate::trace::{method_name, protocol_version, RequestFacts, RequestTrace};
use crate::{GatewayState, InFlight};

/// Everything an entrypoint needs from the static configuration, resolved once.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub entry_point: Arc<str>,
    forwarded: ForwardedPolicy,
    downstream_read: Duration,
    downstream_write: Duration,
    /// Pingora applies one timer, in whole seconds, both to waiting for the next request on
    /// a kept-alive connection and to reading its header. It is the smaller of the idle and
    /// read timeouts, so a trickled header is cut off by `read` and an idle connection by `idle`.
    pub(crate) keepalive_seconds: u64,
    upstream: Upstream,
    trust: TrustPolicy,
    /// Serves parents: the advertisement and health endpoints, cross-cluster attributes.
    uplink: bool,
    /// `https` on a TLS listener.
    scheme: &'static str,
}

impl GatewayOptions {
    /// Options for the entrypoint `name`.
    pub fn new(name: &str, entry_point: &EntryPoint, upstream: &Upstream) -> Self {
        GatewayOptions {
            entry_point: name.into(),
            forwarded: ForwardedPolicy::new(
                entry_point.forwarded_headers.insecure,
                &entry_point.forwarded_headers.trusted_ips,
            ),
            downstream_read: entry_point.timeouts.read,
            downstream_write: entry_point.timeouts.write,
            keepalive_seconds: whole_seconds(
                entry_point.timeouts.idle.min(entry_point.timeouts.read),
            ),
            upstream: upstream.clone(),
            trust: entry_point.trace_context,
            uplink: entry_point.uplink,
            scheme: if entry_point.tls.is_some() {
                "https"
            } else {
                "http"
            },
        }
    }
}

/// The `ProxyHttp` implementation of one entrypoint.
pub struct Gateway {
    options: GatewayOptions,
    state: Arc<GatewayState>,
}

impl Gateway {
    /// A gateway serving `options.entry_point` from `state`'s routing table.
    pub fn new(options: GatewayOptions, state: Arc<GatewayState>) -> Self {
        Gateway { options, state }
    }
}

/// Per-request state, filled as the request moves through the phases and read in `logging`.
pub struct RequestCtx {
    /// `None` for the advertisement stream, which lives as long as the gateway does.
    in_flight: Option<InFlight>,
    /// Answered by the gateway itself for its parents: no telemetry.
    internal: bool,
    /// On a parent: the children serving the matched uplink, and this attempt's.
    uplink: Option<UplinkAttempt>,
    started: Instant,
    router: Option<Arc<Router>>,
    backend: Option<Arc<Backend>>,
    upstream: Option<SocketAddr>,
    attempts: u32,
    /// When the current upstream attempt started; `None` once it failed to connect.
    attempt_started: Option<Instant>,
    /// The client's address and the port it connected to, read once per request.
    client: Option<SocketAddr>,
    client_ip: Option<IpAddr>,
    local_port: Option<u16>,
    /// Counted in `http.server.active_requests`, so `logging` must uncount it.
    active: bool,
    /// Status of the last upstream response header received.
    upstream_status: Option<u16>,
    /// `None` when tracing is off.
    trace: Option<RequestTrace>,
}

/// A parent's request over an uplink.
struct UplinkAttempt {
    members: Arc<Weighted<Member>>,
    /// The child of the current attempt.
    current: Option<Member>,
    /// Children already tried, by index: a retry goes elsewhere.
    tried: Vec<usize>,
    /// Uplink hops the request had taken when it arrived.
    hops: u32,
}

/// Names for spans, borrowed from the context's fields (not the whole context, so the
/// trace can be updated while they are held).
fn facts<'a>(
    entry_point: &'a Arc<str>,
    router: &'a Option<Arc<Router>>,
    backend: &'a Option<Arc<Backend>>,
    uplink: &'a Option<UplinkAttempt>,
) -> RequestFacts<'a> {
    RequestFacts {
        entry_point,
        router: router.as_ref().map(|r| &r.name),
        service: service_name(backend, uplink),
    }
}

/// The service a request went to: the Service port, or on a parent the uplink.
fn service_name<'a>(
    backend: &'a Option<Arc<Backend>>,
    uplink: &'a Option<UplinkAttempt>,
) -> Option<&'a Arc<str>> {
    backend.as_ref().map(|b| &b.name).or_else(|| {
        uplink
            .as_ref()
            .and_then(|u| u.current.as_ref())
            .map(|m| &m.uplink)
    })
}

/// What routing decided, computed while the request header is borrowed.
enum Decision {
    Proxy(Arc<Router>, Arc<Backend>),
    Uplink(Arc<Router>, Arc<Weighted<Member>>, u32),
    Respond(Option<Arc<Router>>, u16, Bytes),
}

const NOT_FOUND: &str = "404 page not found\n";
const NO_SERVER: &str = "no available server\n";
const NO_CHILD: &str = "no available child cluster for this uplink\n";
/// Connect failures are retried once, on another endpoint where the service has one.
const MAX_ATTEMPTS: u32 = 2;

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            in_flight: Some(self.state.enter()),
            internal: false,
            uplink: None,
            started: Instant::now(),
            router: None,
            backend: None,
            upstream: None,
            attempts: 0,
            attempt_started: None,
            client: None,
            client_ip: None,
            local_port: None,
            active: false,
            upstream_status: None,
            trace: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        session.set_read_timeout(Some(self.options.downstream_read));
        session.set_write_timeout(Some(self.options.downstream_write));
        session.set_keepalive(Some(self.options.keepalive_seconds));
        ctx.client = session.client_addr().and_then(|a| a.as_inet()).copied();
        ctx.client_ip = ctx.client.map(|a| a.ip());
        ctx.local_port = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.port());
        if self.options.uplink
            && session
                .req_header()
                .uri
                .path()
                .starts_with(WELL_KNOWN_PREFIX)
        {
            ctx.internal = true;
            self.serve_parent(session, ctx).await?;
            return Ok(true);
        }
        if let Some(tracer) = self.state.tracer() {
            let mut trace = RequestTrace::start(
                tracer,
                self.options.trust,
                session.req_header(),
                ctx.client_ip,
                ctx.local_port,
            );
            if self.options.uplink {
                self.mark_cross_cluster(&mut trace, session.req_header());
            }
            ctx.trace = Some(trace);
        }
        if let Some(metrics) = self.state.metrics() {
            metrics.request_started(&self.options.entry_point);
            ctx.active = true;
            if self.options.trust == TrustPolicy::Continue {
                let valid = match &ctx.trace {
                    Some(trace) => trace.continued(),
                    None => propagation::extract(&session.req_header().headers)
                        .context
                        .is_some(),
                };
                metrics.trace_context_seen(&self.options.entry_point, valid);
            }
        }

        match self.decide(session.req_header(), ctx.client_ip) {
            Decision::Proxy(router, backend) => {
                ctx.router = Some(router);
                ctx.backend = Some(backend);
                Ok(false)
            }
            Decision::Uplink(router, members, hops) => {
                ctx.router = Some(router);
                ctx.uplink = Some(UplinkAttempt {
                    members,
                    current: None,
                    tried: Vec::new(),
                    hops,
                });
                Ok(false)
            }
            Decision::Respond(router, status, body) => {
                ctx.router = router;
                let trace_header = self.trace_header(ctx);
                respond(session, status, body, trace_header).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        if ctx.uplink.is_some() {
            return self.child_peer(session, ctx);
        }
        let backend = ctx.backend.as_ref().ok_or_else(|| {
            Error::explain(ErrorType::InternalError, "no backend chosen for request")
        })?;
        let address = *backend
            .servers
            .pick()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(503), "no available server"))?;
        let scheme = backend.scheme;
        self.begin_attempt(session, ctx, address);

        let tls = scheme == Scheme::Https;
        // TLS upstreams are verified against the name the client asked for.
        let sni = if tls {
            request_host(session.req_header())
                .map(strip_port)
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(address, tls, sni);
        self.apply_upstream_options(&mut peer);
        if scheme == Scheme::H2c {
            // Prior-knowledge HTTP/2 over cleartext.
            peer.options.set_http_version(2, 2);
        }
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut error: Box<Error>,
    ) -> Box<Error> {
        self.end_failed_attempt(session, ctx, error.etype().as_str());
        // Nothing reached the upstream, so retrying is safe for every method.
        let elsewhere = match &ctx.uplink {
            Some(uplink) => self.uplink_failed(uplink),
            None => ctx
                .backend
                .as_ref()
                .is_some_and(|b| b.servers.items().iter().filter(|(_, w)| *w > 0).count() > 1),
        };
        if ctx.attempts < MAX_ATTEMPTS && elsewhere {
            error.set_retry(true);
        }
        error
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        error: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        // Pingora's rule: only idempotent requests whose body is still buffered are
        // replayed, and only on a reused connection (it may have been closed under us).
        let mut error = error.more_context(format!("Peer: {peer}"));
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        if replayable {
            error.retry.decide_reuse(client_reused);
        } else {
            error.set_retry(false);
        }
        // Over an uplink, a child that failed before answering is counted against it,
        // and a replayable request gets one more attempt on another child.
        if let Some(uplink) = &ctx.uplink {
            if ctx.upstream_status.is_none() {
                let elsewhere = self.uplink_failed(uplink);
                if replayable && elsewhere && ctx.attempts < MAX_ATTEMPTS {
                    error.set_retry(true);
                }
                if error.retry() {
                    self.end_failed_attempt(session, ctx, error.etype().as_str());
                }
            }
        }
        error
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(router) = &ctx.router else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "upstream request without a route",
            ));
        };
        let original_host = request_host(session.req_header()).map(str::to_owned);
        // Forwarding headers first: an untrusted client's X-Forwarded-* are dropped before
        // middlewares (stripPrefix's X-Forwarded-Prefix, custom headers) set their own.
        let downstream = Downstream {
            client_ip: ctx.client_ip,
            proto: self.options.scheme,
            host: original_host.as_deref(),
            port: ctx.local_port,
        };
        self.options.forwarded.apply(upstream_request, &downstream);
        rewrite_request(upstream_request, &router.middlewares)?;
        if let Some(trace) = &ctx.trace {
            trace.inject(upstream_request)?;
        }

        if let Some(member) = ctx
            .uplink
            .as_ref()
            .and_then(|u| u.current.as_ref().map(|m| (u, m)))
        {
            let (uplink, member) = member;
            let topology = self.state.topology();
            upstream_request.insert_header(
                topology.source_cluster_header.clone(),
                topology.cluster.as_ref(),
            )?;
            upstream_request.insert_header(HOPS_HEADER, (uplink.hops + 1).to_string())?;
            upstream_request.insert_header(UPLINK_HEADER, member.uplink.as_ref())?;
        }

        let pass_host_header = ctx.backend.as_ref().is_none_or(|b| b.pass_host_header);
        if !pass_host_header {
            if let Some(address) = ctx.upstream {
                upstream_request.insert_header(http::header::HOST, address.to_string())?;
            }
        } else if !upstream_request.headers.contains_key(http::header::HOST) {
            // An HTTP/2 client sends :authority, not Host; an HTTP/1 upstream needs Host.
            if let Some(host) = &original_host {
                upstream_request.insert_header(http::header::HOST, host.as_str())?;
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.upstream_status = Some(upstream_response.status.as_u16());
        if let (Some(children), Some(member)) = (
            &self.state.topology().children,
            ctx.uplink.as_ref().and_then(|u| u.current.as_ref()),
        ) {
            children.attempt_succeeded(&member.child);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some((name, value)) = self.trace_header(ctx) {
            response.insert_header(name, value)?;
        }
        if let Some(router) = &ctx.router {
            for middleware in router.middlewares.iter().rev() {
                if let Middleware::Headers {
                    response: headers, ..
                } = middleware
                {
                    for (name, value) in headers {
                        match value {
                            Some(value) => response.insert_header(name.clone(), value.clone())?,
                            None => {
                                response.remove_header(name);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let status = status_for_error(error);
        // A client that is gone cannot be answered; anything else gets the mapped status.
        if status != CLIENT_CLOSED_REQUEST && session.response_written().is_none() {
            let mut response = gen_error_response(status);
            if let Some((name, value)) = self.trace_header(ctx) {
                // The name and value were validated when built; this cannot fail.
                let _ = response.insert_header(name, value);
            }
            let downstream = session.as_downstream_mut();
            if let Err(write_error) = downstream
                .write_error_response(response, Bytes::new())
                .await
            {
                tracing::debug!(%write_error, "could not send error response");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.internal {
            return;
        }
        let status = final_status(session.response_written().map(|r| r.status.as_u16()), error);
        let duration = ctx.started.elapsed();
        let origin_duration = ctx.attempt_started.take().map(|t| t.elapsed());
        let request = session.req_header();
        let method = method_name(&request.method);
        // The SERVER span's ids, for exemplars and access log records.
        let server_span = ctx.trace.as_ref().map(|t| {
            let context = t.server.context();
            (context.trace_id(), context.span_id(), context.is_sampled())
        });
        if let (Some(tracer), Some(trace)) = (self.state.tracer(), ctx.trace.take()) {
            let facts = facts(
                &self.options.entry_point,
                &ctx.router,
                &ctx.backend,
                &ctx.uplink,
            );
            trace.finish(
                tracer,
                &request.method,
                &facts,
                ctx.upstream_status,
                status,
                error,
            );
        }
        let service = service_name(&ctx.backend, &ctx.uplink);
        if let Some(metrics) = self.state.metrics() {
            if let Some(duration) = origin_duration {
                metrics.attempt_finished(&AttemptOutcome {
                    service,
                    method,
                    status: ctx.upstream_status,
                    error: match (ctx.upstream_status, error) {
                        (None, Some(error)) => Some(error.etype().as_str()),
                        _ => None,
                    },
                    duration,
                });
            }
            if std::mem::take(&mut ctx.active) {
                metrics.request_finished(&RequestOutcome {
                    labels: RequestLabels {
                        entry_point: &self.options.entry_point,
                        router: ctx.router.as_ref().map(|r| &r.name),
                        service,
                        method,
                        status,
                        protocol: protocol_version(request.version),
                    },
                    duration,
                    request_bytes: session.body_bytes_read() as u64,
                    response_bytes: session.body_bytes_sent() as u64,
                    trace: server_span
                        .filter(|(_, _, sampled)| *sampled)
                        .map(|(trace_id, span_id, _)| (trace_id, span_id)),
                });
            }
        }
        if let Some(access_log) = self.state.access_log() {
            let policy = access_log.policy();
            let retries = ctx.attempts.saturating_sub(1);
            if policy.keeps(status, duration, retries) {
                let upstream: Option<Arc<str>> = ctx.upstream.map(|a| a.to_string().into());
                let record = AccessRecord {
                    origin_duration,
                    request_content_size: session.body_bytes_read() as u64,
                    entry_point: Some(Arc::clone(&self.options.entry_point)),
                    router: ctx.router.as_ref().map(|r| Arc::clone(&r.name)),
                    service: service.cloned(),
                    service_url: upstream.as_ref().map(|a| {
                        let scheme = ctx.backend.as_ref().map_or("http", |b| b.scheme.as_str());
                        format!("{scheme}://{a}").into()
                    }),
                    service_addr: upstream,
                    origin_status: ctx.upstream_status,
                    downstream_status: status,
                    downstream_content_size: session.body_bytes_sent() as u64,
                    retry_attempts: retries,
                    trace_id: server_span.map(|(trace_id, _, _)| trace_id),
                    span_id: server_span.map(|(_, span_id, _)| span_id),
                    sampled: server_span.is_some_and(|(_, _, sampled)| sampled),
                    response_headers: session
                        .response_written()
                        .map(|r| policy.capture_headers(&r.headers))
                        .unwrap_or_default(),
                    ..access_record(policy, request, ctx.client, duration)
                };
                access_log.log(record);
            }
        }
        tracing::debug!(
            target: "traverse::access",
            entrypoint = %self.options.entry_point,
            router = ctx.router.as_ref().map(|r| r.name.as_ref()),
            service = service.map(|s| s.as_ref()),
            upstream = ctx.upstream.map(tracing::field::display),
            method = %request.method,
            path = request.uri.path(),
            status,
            attempts = ctx.attempts,
            duration_ms = duration.as_secs_f64() * 1000.0,
            error = error.map(tracing::field::display),
            "request"
        );
    }
}

impl Gateway {
    /// The trace id response header, when tracing and the option are on.
    fn trace_header(&self, ctx: &RequestCtx) -> Option<(http::HeaderName, HeaderValue)> {
        ctx.trace.as_ref()?.response_header(self.state.tracer()?)
    }

    fn decide(&self, header: &RequestHeader, client_ip: Option<IpAddr>) -> Decision {
        let request = traverse_router::Request {
            method: header.method.as_str(),
            host: request_host(header).unwrap_or(""),
            path: header.uri.path(),
            query: header.uri.query(),
            headers: &header.headers,
            client_ip,
        };
        let routing = self.state.routing.load();
        let Some(router) = routing.routes.find(&self.options.entry_point, &request) else {
            return Decision::Respond(None, 404, Bytes::from_static(NOT_FOUND.as_bytes()));
        };
        match &router.target {
            Target::Unavailable { status, reason } => Decision::Respond(
                Some(Arc::clone(router)),
                *status,
                Bytes::from(format!("{reason}\n")),
            ),
            Target::Services(services) => match services.pick() {
                Some(backend) if backend.servers.has_available() => {
                    Decision::Proxy(Arc::clone(router), Arc::clone(backend))
                }
                _ => Decision::Respond(
                    Some(Arc::clone(router)),
                    503,
                    Bytes::from_static(NO_SERVER.as_bytes()),
                ),
            },
            Target::Uplinks(uplinks) => self.decide_uplink(header, router, uplinks),
        }
    }

    /// A parent's route to an uplink: refuse loops, then find the children serving it.
    fn decide_uplink(
        &self,
        header: &RequestHeader,
        router: &Arc<Router>,
        uplinks: &Weighted<Arc<traverse_provider::UplinkRef>>,
    ) -> Decision {
        let topology = self.state.topology();
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
            return Decision::Respond(
                Some(Arc::clone(router)),
                508,
                Bytes::from(format!("{reason}\n")),
            );
        }
        let members = topology
            .children
            .as_ref()
            .zip(uplinks.pick())
            .and_then(|(children, uplink)| children.members(uplink).map(|m| (children, m)));
        match members {
            // Checked without picking: the pick happens per attempt, in `upstream_peer`.
            Some((children, members))
                if members
                    .items()
                    .iter()
                    .any(|(m, w)| *w > 0 && children.available(m)) =>
            {
                Decision::Uplink(Arc::clone(router), members, hops)
            }
            _ => Decision::Respond(
                Some(Arc::clone(router)),
                503,
                Bytes::from_static(NO_CHILD.as_bytes()),
            ),
        }
    }

    /// The next child for an uplink request, never one this request already tried.
    fn child_peer(&self, session: &Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let no_child = || Error::explain(ErrorType::HTTPStatus(503), "no available child cluster");
        let children = self
            .state
            .topology()
            .children
            .as_ref()
            .ok_or_else(no_child)?;
        let uplink = ctx.uplink.as_mut().ok_or_else(no_child)?;
        let member = uplink
            .members
            .pick_where(|m| children.available(m) && !uplink.tried.contains(&m.child.index))
            .cloned()
            .ok_or_else(no_child)?;
        let address = member.child.socket_address().ok_or_else(no_child)?;
        uplink.tried.push(member.child.index);
        uplink.current = Some(member.clone());
        self.begin_attempt(session, ctx, address);
        if let Some(client) = ctx.trace.as_mut().and_then(|t| t.client.as_mut()) {
            let topology = self.state.topology();
            client.set(|| KeyValue::new("traverse.uplink", Arc::clone(&member.uplink)));
            client.set(|| KeyValue::new("traverse.child", Arc::clone(&member.child.name)));
            client.set(|| KeyValue::new("cross_cluster.source", Arc::clone(&topology.cluster)));
            if let Some(cluster) = member.child.cluster() {
                client.set(|| KeyValue::new("cross_cluster.target", cluster));
            }
        }
        let mut peer = match &member.child.tls {
            Some(tls) => tls.peer(address),
            None => HttpPeer::new(address, false, String::new()),
        };
        self.apply_upstream_options(&mut peer);
        Ok(Box::new(peer))
    }

    /// Counts a new upstream attempt to `address` and opens its CLIENT span (named for
    /// the context's service: the Service port, or the uplink of the current child).
    fn begin_attempt(&self, session: &Session, ctx: &mut RequestCtx, address: SocketAddr) {
        ctx.attempts += 1;
        ctx.upstream = Some(address);
        ctx.attempt_started = Some(Instant::now());
        if let (Some(tracer), Some(trace)) = (self.state.tracer(), &mut ctx.trace) {
            let facts = facts(
                &self.options.entry_point,
                &ctx.router,
                &ctx.backend,
                &ctx.uplink,
            );
            let method = &session.req_header().method;
            trace.start_attempt(tracer, method, address, ctx.attempts, &facts);
        }
    }

    /// Counts a failed attempt against the uplink's current child; whether another
    /// child could take a retry.
    fn uplink_failed(&self, uplink: &UplinkAttempt) -> bool {
        let Some(children) = &self.state.topology().children else {
            return false;
        };
        if let Some(member) = &uplink.current {
            children.attempt_failed(&member.child);
        }
        uplink
            .members
            .items()
            .iter()
            .any(|(m, w)| *w > 0 && children.available(m) && !uplink.tried.contains(&m.child.index))
    }

    /// Ends the current attempt's CLIENT span and metric as failed with `kind`.
    fn end_failed_attempt(&self, session: &Session, ctx: &mut RequestCtx, kind: &'static str) {
        if let (Some(tracer), Some(trace)) = (self.state.tracer(), &mut ctx.trace) {
            let facts = facts(
                &self.options.entry_point,
                &ctx.router,
                &ctx.backend,
                &ctx.uplink,
            );
            trace.fail_attempt(tracer, &session.req_header().method, &facts, kind);
        }
        if let (Some(metrics), Some(started)) = (self.state.metrics(), ctx.attempt_started.take()) {
            metrics.attempt_finished(&AttemptOutcome {
                service: service_name(&ctx.backend, &ctx.uplink),
                method: method_name(&session.req_header().method),
                status: None,
                error: Some(kind),
                duration: started.elapsed(),
            });
        }
    }

    fn apply_upstream_options(&self, peer: &mut HttpPeer) {
        let upstream = &self.options.upstream;
        peer.options.connection_timeout = Some(upstream.connect_timeout);
        peer.options.read_timeout = Some(upstream.read_timeout);
        peer.options.write_timeout = Some(upstream.write_timeout);
        peer.options.idle_timeout = Some(upstream.idle_timeout);
    }

    /// The endpoints an uplink entrypoint serves to parents itself.
    async fn serve_parent(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let path = session.req_header().uri.path();
        if path == ADVERTISEMENT_PATH {
            // A stream lasts as long as the gateway: it must not hold up the drain.
            ctx.in_flight = None;
            return advertisement::stream(session, &self.state.advertiser).await;
        }
        let (status, body) = match path {
            HEALTH_PATH if self.state.is_ready() => (200, "ready\n"),
            HEALTH_PATH => (503, "not ready\n"),
            _ => (404, NOT_FOUND),
        };
        respond(session, status, Bytes::from_static(body.as_bytes()), None).await
    }

    /// On an uplink entrypoint, the SERVER span says which cluster and uplink it came over.
    fn mark_cross_cluster(&self, trace: &mut RequestTrace, request: &RequestHeader) {
        let topology = self.state.topology();
        let header = |name: &http::HeaderName| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(source) = header(&topology.source_cluster_header) {
            trace
                .server
                .set(|| KeyValue::new("cross_cluster.source", source));
        }
        trace
            .server
            .set(|| KeyValue::new("cross_cluster.target", Arc::clone(&topology.cluster)));
        if let Some(uplink) = header(&http::HeaderName::from_static(UPLINK_HEADER)) {
            trace
                .server
                .set(|| KeyValue::new("traverse.uplink", uplink));
        }
    }
}

/// The status the request ended with: what was sent, or what the error maps to.
/// A client that disconnected before any response is 499.
fn final_status(written: Option<u16>, error: Option<&Error>) -> u16 {
    match (written, error) {
        (Some(status), _) => status,
        (None, Some(error)) => status_for_error(error),
        (None, None) => 0,
    }
}

/// The access log record's request part, shared by the entrypoints and the admin
/// listener; the caller adds what it knows of the response.
pub(crate) fn access_record(
    policy: &AccessLogPolicy,
    request: &RequestHeader,
    client: Option<SocketAddr>,
    duration: Duration,
) -> AccessRecord {
    AccessRecord {
        start: SystemTime::now() - duration,
        duration,
        client_addr: client,
        method: request.method.clone(),
        path: request
            .uri
            .path_and_query()
            .map_or_else(|| request.uri.path().to_owned(), |p| p.as_str().to_owned()),
        protocol: request.version,
        host: request_host(request)
            .map(strip_port)
            .unwrap_or("")
            .to_owned(),
        request_headers: policy.capture_headers(&request.headers),
        ..AccessRecord::default()
    }
}

/// Host from the Host header (HTTP/1) or the URI authority (HTTP/2).
pub(crate) fn request_host(header: &RequestHeader) -> Option<&str> {
    header
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| header.uri.authority().map(|a| a.as_str()))
}

/// `d` rounded up to whole seconds, at least 1: Pingora counts keep-alive in seconds and
/// reads 0 as "forever".
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// `example.com:8443` → `example.com`, `[::1]:8443` → `::1`.
pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Applies path and request-header middlewares in order.
fn rewrite_request(request: &mut RequestHeader, middlewares: &[Middleware]) -> Result<()> {
    let mut path: Option<String> = None;
    for middleware in middlewares {
        match middleware {
            Middleware::StripPrefix { prefixes } => {
                let current = path.as_deref().unwrap_or_else(|| request.uri.path());
                if let Some((prefix, rest)) = prefixes
                    .iter()
                    .find_map(|p| current.strip_prefix(p.as_str()).map(|rest| (p, rest)))
                {
                    let stripped = if rest.starts_with('/') {
                        rest.to_owned()
                    } else {
                        format!("/{rest}")
                    };
                    let prefix = prefix.trim_end_matches('/').to_owned();
                    path = Some(stripped);
                    if let Ok(value) = HeaderValue::from_str(&prefix) {
                        request.insert_header("x-forwarded-prefix", value)?;
                    }
                }
            }
            Middleware::AddPrefix { prefix } => {
                let current = path.as_deref().unwrap_or_else(|| request.uri.path());
                path = Some(format!("{prefix}{current}"));
            }
            Middleware::Headers {
                request: headers, ..
            } => {
                for (name, value) in headers {
                    match value {
                        Some(value) => request.insert_header(name.clone(), value.clone())?,
                        None => {
                            request.remove_header(name);
                        }
                    }
                }
            }
        }
    }
    if let Some(path) = path {
        let path_and_query = match request.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let uri = Uri::builder()
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| {
                Error::because(
                    ErrorType::InternalError,
                    "rewritten path is not a valid URI",
                    e,
                )
            })?;
        request.set_uri(uri);
    }
    Ok(())
}

async fn respond(
    session: &mut Session,
    status: u16,
    body: Bytes,
    trace_header: Option<(http::HeaderName, HeaderValue)>,
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(3))?;
    if let Some((name, value)) = trace_header {
        header.insert_header(name, value)?;
    }
    header.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::ErrorSource;

    fn request(uri: &str) -> RequestHeader {
        RequestHeader::build("GET", uri.as_bytes(), None).expect("request")
    }

    #[test]
    fn strip_then_add_prefix_keeps_the_query() {
        let mut req = request("/api/v1/users?x=1");
        let middlewares = vec![
            Middleware::StripPrefix {
                prefixes: vec!["/nope".into(), "/api".into()],
            },
            Middleware::AddPrefix {
                prefix: "/internal".into(),
            },
        ];
        rewrite_request(&mut req, &middlewares).expect("rewrite");
        assert_eq!(req.uri.to_string(), "/internal/v1/users?x=1");
        assert_eq!(
            req.headers.get("x-forwarded-prefix").expect("prefix"),
            "/api"
        );
    }

    #[test]
    fn strip_to_root_leaves_a_slash() {
        let mut req = request("/api");
        rewrite_request(
            &mut req,
            &[Middleware::StripPrefix {
                prefixes: vec!["/api".into()],
            }],
        )
        .expect("rewrite");
        assert_eq!(req.uri.path(), "/");
    }

    #[test]
    fn header_middleware_sets_and_removes() {
        let mut req = request("/");
        req.insert_header("x-remove-me", "1").expect("header");
        let middlewares = vec![Middleware::Headers {
            request: vec![
                (
                    http::HeaderName::from_static("x-added"),
                    Some(HeaderValue::from_static("yes")),
                ),
                (http::HeaderName::from_static("x-remove-me"), None),
            ],
            response: vec![],
        }];
        rewrite_request(&mut req, &middlewares).expect("rewrite");
        assert_eq!(req.headers.get("x-added").expect("added"), "yes");
        assert!(req.headers.get("x-remove-me").is_none());
    }

    #[test]
    fn keepalive_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(90)), 90);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        for (host, expected) in [
            ("a.example", "a.example"),
            ("a.example:8443", "a.example"),
            ("[::1]:8443", "::1"),
            ("::1", "::1"),
        ] {
            assert_eq!(strip_port(host), expected);
        }
    }

    #[test]
    fn final_status_prefers_what_was_sent() {
        let gone = Error::create(
            ErrorType::ConnectionClosed,
            ErrorSource::Downstream,
            None,
            None,
        );
        assert_eq!(final_status(None, Some(&gone)), 499);
        assert_eq!(final_status(Some(200), Some(&gone)), 200);
        let timeout = Error::create(ErrorType::ReadTimedout, ErrorSource::Upstream, None, None);
        assert_eq!(final_status(None, Some(&timeout)), 504);
        assert_eq!(final_status(Some(404), None), 404);
    }
}
