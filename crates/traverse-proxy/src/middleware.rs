//! A router's middlewares as an ordered chain of steps, run by the gateway's phases.
//!
//! Each middleware kind of the runtime model implements [`Step`], acting only in the
//! hooks it needs; every hook defaults to doing nothing. The hooks cover what Traefik's
//! middlewares do:
//! - [`Step::request`]: before an upstream is chosen, answer the request itself
//!   (redirects, 401/403/429) or let it go on; a step that calls out first (forwardAuth,
//!   errors) does so through the [`Exchange`](crate::exchange::Exchange)'s
//!   `begin_call`/`end_call`, so its CLIENT span belongs to the request's trace;
//! - [`Step::upstream_request`]: rewrite the request sent upstream (path, headers);
//! - [`Step::response`]: filter the response header, in reverse order (headers); a step
//!   that rewrites the body as it streams (compress) leaves its encoder in the [`Notes`];
//! - [`Step::preferred_endpoint`], [`Step::may_retry`] and [`Step::retry_delay`]: a say
//!   in upstream choice and retries (sticky sessions, retry, circuit breaker).
//!
//! A step that answers is named on the request's SERVER span and in its access log
//! record ([`Notes::answered_by`]), and its answer passes through the `response` hooks
//! of the steps before it, as in Traefik (CORS and security headers on a 401, say).
//! What a step learns for a later phase (the authenticated user, a header for the
//! upstream, an in-flight permit) it keeps in the exchange's [`Notes`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};
use traverse_model::middleware::{Circuit, Permit};
use traverse_model::{Backend, Middleware, Origin};

use crate::exchange::Exchange;
use crate::Telemetry;

/// What a route's middlewares learnt about one request, kept on its exchange.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// The client may set `X-Forwarded-*` (a trusted proxy): known once a route with
    /// middlewares matched.
    pub forwarded_trusted: bool,
    /// Headers to set (or, with no value, remove) on the upstream request, in order
    /// (basicAuth's `headerField`, forwardAuth's `authResponseHeaders`).
    pub upstream_headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The user an authentication step identified (the access log's `ClientUsername`).
    pub user: Option<String>,
    /// The step that answered the request itself.
    pub answered_by: Option<Origin>,
    /// In-flight permits, released when the exchange ends.
    pub permits: Vec<Permit>,
    /// `Set-Cookie` values of sticky balancers that chose without a cookie.
    pub set_cookies: Vec<String>,
    /// The encoder of the response body, when a compress step chose one.
    pub encoder: Option<compress::Encoder>,
    /// The body that replaces the upstream's (an error page): `Some(Some(_))` until
    /// sent, then `Some(None)` while the upstream's chunks are dropped.
    pub page: Option<Option<Bytes>>,
    /// The circuit breakers that let the request through, told how it ended.
    pub circuits: Vec<Arc<Circuit>>,
    /// The most request body bytes a buffering step lets through.
    pub max_request_body: Option<u64>,
    /// How many more bytes of a response body sent without `Content-Length` a buffering
    /// step lets through.
    pub response_body_left: Option<u64>,
    /// The gRPC-Web call a grpcWeb step is converting.
    pub grpc_web: Option<grpc_web::Conversion>,
}

impl Notes {
    /// Notes sticky cookie `value` (a whole `Set-Cookie` value), replacing one of the
    /// same name: a retry elsewhere sticks the client to where it was answered.
    pub fn set_cookie(&mut self, value: String) {
        let name = value.split('=').next().unwrap_or("");
        self.set_cookies
            .retain(|c| c.split('=').next().unwrap_or("") != name);
        self.set_cookies.push(value);
    }
}

/// What a step decided about a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Continue,
    /// Answer the client with this response; no upstream is chosen.
    Answer(Answer),
}

/// A response a step gives instead of the upstream's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// The reason phrase of `status`, the body Traefik sends with its own answers.
pub(crate) fn status_text(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The path being rewritten for the upstream, shared by the steps of one chain so a
/// later step sees what an earlier one made of it.
#[derive(Debug, Default)]
pub(crate) struct PathRewrite {
    path: Option<String>,
}

impl PathRewrite {
    /// The path as rewritten so far.
    pub fn current<'a>(&'a self, request: &'a RequestHeader) -> &'a str {
        self.path.as_deref().unwrap_or_else(|| request.uri.path())
    }

    pub fn set(&mut self, path: String) {
        self.path = Some(path);
    }
}

/// One middleware's behaviour on the request path.
#[async_trait]
pub(crate) trait Step: Sync {
    /// Whether [`Step::request`] does anything: the chain skips it otherwise, so steps
    /// that only rewrite cost no boxed future.
    fn acts_on_request(&self) -> bool {
        false
    }

    /// Runs on the client's request before an upstream is chosen. A call made here on
    /// the request's behalf goes through [`Exchange::begin_call`], so its span belongs
    /// to the request's trace.
    async fn request(
        &self,
        _request: &RequestHeader,
        _exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        Ok(Verdict::Continue)
    }

    /// Whether [`Step::intercept`] does anything.
    fn intercepts(&self) -> bool {
        false
    }

    /// Runs on the upstream's response header before the `response` hooks, and may call
    /// out (through [`Exchange::begin_call`]) for a body to send instead, which it notes
    /// on the exchange (errors).
    async fn intercept(
        &self,
        _request: &RequestHeader,
        _exchange: &mut Exchange,
        _response: &mut ResponseHeader,
        _telemetry: &Telemetry,
    ) -> Result<()> {
        Ok(())
    }

    /// Rewrites the request sent upstream.
    fn upstream_request(
        &self,
        _request: &mut RequestHeader,
        _path: &mut PathRewrite,
    ) -> Result<()> {
        Ok(())
    }

    /// Rewrites the response header sent to the client (the upstream's, or the answer
    /// of a later step); `request` is the client's.
    fn response(
        &self,
        _request: &RequestHeader,
        _exchange: &mut Exchange,
        _response: &mut ResponseHeader,
    ) -> Result<()> {
        Ok(())
    }

    /// The Middleware object of a step that may answer, for the span and the access log.
    fn origin(&self) -> Option<&Origin> {
        None
    }

    /// An endpoint of `backend` this request should go to, if the step knows one.
    fn preferred_endpoint(
        &self,
        _request: &RequestHeader,
        _backend: &Backend,
    ) -> Option<SocketAddr> {
        None
    }

    /// Whether a failed attempt (the `attempts`-th) may be retried; `None`: no opinion.
    fn may_retry(&self, _attempts: u32) -> Option<bool> {
        None
    }

    /// How long to wait before the attempt after the `attempts`-th; `None`: the step
    /// does not retry.
    fn retry_delay(&self, _attempts: u32) -> Option<Duration> {
        None
    }
}

/// The behaviour of a middleware of the runtime model.
pub(crate) fn step(middleware: &Middleware) -> &dyn Step {
    match middleware {
        Middleware::StripPrefix(step) => step,
        Middleware::AddPrefix(step) => step,
        Middleware::Headers(step) => step,
        Middleware::StripPrefixRegex(step) => step,
        Middleware::ReplacePath(step) => step,
        Middleware::ReplacePathRegex(step) => step,
        Middleware::RedirectScheme(step) => step,
        Middleware::RedirectRegex(step) => step,
        Middleware::BasicAuth(step) => step,
        Middleware::DigestAuth(step) => step,
        Middleware::PassTlsClientCert(step) => step,
        Middleware::IpAllowList(step) => step,
        Middleware::RateLimit(step) => step,
        Middleware::InFlightReq(step) => step,
        Middleware::Compress(step) => step,
        Middleware::Retry(step) => step,
        Middleware::Errors(step) => step,
        Middleware::ForwardAuth(step) => step,
        Middleware::CircuitBreaker(step) => step,
        Middleware::Buffering(step) => step,
        Middleware::GrpcWeb(step) => step,
    }
}

/// Runs `request` over the chain: the first answer wins.
pub(crate) async fn request(
    chain: &[Middleware],
    request: &RequestHeader,
    exchange: &mut Exchange,
    telemetry: &Telemetry,
) -> Result<Verdict> {
    run_request(chain.iter().map(step), request, exchange, telemetry).await
}

async fn run_request<'a>(
    steps: impl Iterator<Item = &'a dyn Step> + Clone,
    request: &RequestHeader,
    exchange: &mut Exchange,
    telemetry: &Telemetry,
) -> Result<Verdict> {
    for (i, step) in steps.clone().enumerate() {
        if !step.acts_on_request() {
            continue;
        }
        if let Verdict::Answer(mut answer) = step.request(request, exchange, telemetry).await? {
            if let Some(origin) = step.origin() {
                exchange.answered_by(origin.clone());
            }
            if i > 0 {
                dress(steps.take(i), request, exchange, &mut answer)?;
            }
            return Ok(Verdict::Answer(answer));
        }
    }
    Ok(Verdict::Continue)
}

/// Passes a step's answer through the `response` hooks of the steps before it (the
/// nearest first), as an upstream response would.
fn dress<'a>(
    before: impl Iterator<Item = &'a dyn Step>,
    request: &RequestHeader,
    exchange: &mut Exchange,
    answer: &mut Answer,
) -> Result<()> {
    let mut header = ResponseHeader::build(answer.status, Some(answer.headers.len()))?;
    for (name, value) in answer.headers.drain(..) {
        header.append_header(name, value)?;
    }
    let before: Vec<&dyn Step> = before.collect();
    for step in before.into_iter().rev() {
        step.response(request, exchange, &mut header)?;
    }
    answer.headers = header
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Ok(())
}

/// Sets the headers steps noted for the upstream, runs `upstream_request` over the
/// chain in order, then applies the rewritten path.
pub(crate) fn upstream_request(
    chain: &[Middleware],
    request: &mut RequestHeader,
    exchange: &Exchange,
) -> Result<()> {
    for (name, value) in &exchange.notes().upstream_headers {
        match value {
            Some(value) => request.insert_header(name.clone(), value.clone())?,
            None => {
                request.remove_header(name);
            }
        }
    }
    let mut path = PathRewrite::default();
    for middleware in chain {
        step(middleware).upstream_request(request, &mut path)?;
    }
    if let Some(path) = path.path {
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

/// Adds the sticky cookies routing noted, then runs `response` over the chain in
/// reverse order.
pub(crate) fn response(
    chain: &[Middleware],
    request: &RequestHeader,
    exchange: &mut Exchange,
    response: &mut ResponseHeader,
) -> Result<()> {
    for cookie in &exchange.notes().set_cookies {
        response.append_header(http::header::SET_COOKIE, cookie)?;
    }
    chain
        .iter()
        .rev()
        .try_for_each(|middleware| step(middleware).response(request, exchange, response))
}

/// Runs `intercept` over the chain in reverse order, on the upstream's response.
pub(crate) async fn intercept(
    chain: &[Middleware],
    request: &RequestHeader,
    exchange: &mut Exchange,
    response: &mut ResponseHeader,
    telemetry: &Telemetry,
) -> Result<()> {
    for step in chain.iter().rev().map(step).filter(|s| s.intercepts()) {
        step.intercept(request, exchange, response, telemetry)
            .await?;
    }
    Ok(())
}

/// Replaces a chunk of the response body by the page a step fetched, then encodes it when
/// a step chose an encoder.
pub(crate) fn response_body(
    exchange: &mut Exchange,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Result<()> {
    let notes = exchange.notes_mut();
    buffering::response_chunk_within_limit(&mut notes.response_body_left, body.as_ref())?;
    if let Some(page) = &mut notes.page {
        *body = page.take();
    }
    if let Some(conversion) = &mut notes.grpc_web {
        conversion.response_chunk(body);
    }
    match &mut notes.encoder {
        Some(encoder) => encoder.encode(body, end_of_stream),
        None => Ok(()),
    }
}

/// Decodes a chunk of the request body when a grpcWeb step converts a text call.
pub(crate) fn request_body(
    exchange: &mut Exchange,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Result<()> {
    match &mut exchange.notes_mut().grpc_web {
        Some(conversion) => conversion.request_chunk(body, end_of_stream),
        None => Ok(()),
    }
}

/// The bytes that end the response body in place of the upstream's trailers, when a
/// grpcWeb step converts the call.
pub(crate) fn response_trailers(
    exchange: &mut Exchange,
    trailers: &http::HeaderMap,
) -> Result<Option<Bytes>> {
    match &mut exchange.notes_mut().grpc_web {
        Some(conversion) => conversion.trailers(trailers),
        None => Ok(None),
    }
}

/// The endpoint the Service's sticky cookie names, else the first endpoint a step of the
/// chain prefers.
pub(crate) fn preferred_endpoint(
    chain: &[Middleware],
    request: &RequestHeader,
    backend: &Backend,
) -> Option<SocketAddr> {
    backend.sticky_endpoint(&request.headers).or_else(|| {
        chain
            .iter()
            .find_map(|middleware| step(middleware).preferred_endpoint(request, backend))
    })
}

/// Tells the circuit breakers that let the request through how it ended.
pub(crate) fn finished(exchange: &Exchange, status: u16) {
    let circuits = &exchange.notes().circuits;
    if circuits.is_empty() {
        return;
    }
    let latency_ms = exchange.elapsed().as_millis() as u64;
    let now = crate::clock::now_ms();
    for circuit in circuits {
        circuit.record(now, status, latency_ms);
    }
}

/// The wait before the attempt after the `attempts`-th, when a step of the chain retries.
pub(crate) fn retry_delay(chain: &[Middleware], attempts: u32) -> Option<Duration> {
    chain
        .iter()
        .find_map(|middleware| step(middleware).retry_delay(attempts))
}

/// Whether the chain lets the `attempts`-th failed attempt be retried: the first step
/// with an opinion decides; without one, `default`.
pub(crate) fn may_retry(chain: &[Middleware], attempts: u32, default: bool) -> bool {
    chain
        .iter()
        .find_map(|middleware| step(middleware).may_retry(attempts))
        .unwrap_or(default)
}

mod access;
mod buffering;

pub(crate) use buffering::request_body_within_limit;
mod calls;
mod circuit;
mod client_cert;
mod compress;
mod digest;
mod errors;
mod forward_auth;
mod grpc_web;
mod headers;
mod limit;
mod paths;
mod redirect;
mod retry;

#[cfg(test)]
mod tests;
