//! `forwardAuth`: the request is first sent, as a GET without body, to an authentication
//! server; a 2xx answer lets it through (with the headers the server names copied onto
//! the upstream request), any other answer goes back to the client as it is. The call is
//! a CLIENT span of the request's trace, and carries its context. An https server is
//! reached with the middleware's `tls` (its CA, client certificate, verification).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderName, HeaderValue};
use http_body_util::Empty;
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::middleware::ForwardAuth;
use traverse_model::Origin;

use super::access::forwarded_for;
use super::calls::{call, call_tls};
use super::redirect::client_scheme;
use super::{status_text, Answer, Step, Verdict};
use crate::exchange::Exchange;
use crate::host::request_host;
use crate::Telemetry;

/// How long the server may take to answer.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read from the server.
const MAX_AUTH_BODY: usize = 1 << 20;

/// Hop-by-hop headers, which concern one connection only.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHORIZATION,
        PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

#[async_trait]
impl Step for ForwardAuth {
    fn acts_on_request(&self) -> bool {
        true
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        telemetry: &Telemetry,
    ) -> Result<Verdict> {
        let call_span = exchange.begin_call(telemetry, "forwardAuth");
        let context = call_span.as_ref().map(|c| c.context_headers());
        let auth_request = auth_request(self, request, exchange, context);
        let answer = match auth_request {
            Ok(auth_request) => match &self.tls {
                Some(tls) => call_tls(auth_request, tls, AUTH_TIMEOUT, MAX_AUTH_BODY).await,
                None => call(auth_request, AUTH_TIMEOUT, MAX_AUTH_BODY).await,
            },
            Err(why) => Err(why),
        };
        if let Some(call_span) = call_span {
            let outcome = answer.as_ref().map(|(parts, _)| parts.status.as_u16());
            exchange.end_call(telemetry, call_span, outcome.map_err(Clone::clone));
        }
        let (parts, body) = match answer {
            Ok(answer) => answer,
            Err(why) => {
                // As Traefik: the server could not be asked, so the request is refused.
                tracing::debug!(middleware = %self.origin.name, %why, "authentication server not reached");
                return Ok(Verdict::Answer(Answer {
                    status: 500,
                    headers: Vec::new(),
                    body: Bytes::from(status_text(500)),
                }));
            }
        };
        if !parts.status.is_success() {
            let headers = parts
                .headers
                .iter()
                .filter(|(name, _)| !hop_by_hop(name) && *name != CONTENT_LENGTH)
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            return Ok(Verdict::Answer(Answer {
                status: parts.status.as_u16(),
                headers,
                body,
            }));
        }
        let notes = exchange.notes_mut();
        for name in &self.response_headers {
            // Removed first, so a client cannot send what only the server may set.
            notes.upstream_headers.push((name.clone(), None));
            if let Some(value) = joined(&parts.headers, name) {
                notes.upstream_headers.push((name.clone(), Some(value)));
            }
        }
        if let Some(pattern) = &self.response_headers_regex {
            let matches = |name: &HeaderName| pattern.regex().is_match(name.as_str());
            for name in request.headers.keys().filter(|n| matches(n)) {
                notes.upstream_headers.push((name.clone(), None));
            }
            for name in parts.headers.keys().filter(|n| matches(n)) {
                if let Some(value) = joined(&parts.headers, name) {
                    notes.upstream_headers.push((name.clone(), Some(value)));
                }
            }
        }
        Ok(Verdict::Continue)
    }
}

/// The request to the server: the client's headers (or those listed), the
/// `X-Forwarded-*` describing the request, and the call's trace context.
fn auth_request(
    auth_config: &ForwardAuth,
    request: &RequestHeader,
    exchange: &Exchange,
    context: Option<traverse_telemetry::propagation::Outbound>,
) -> std::result::Result<http::Request<Empty<Bytes>>, String> {
    let mut auth = http::Request::get(auth_config.address.clone())
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let headers = auth.headers_mut();
    for (name, value) in &request.headers {
        let listed =
            auth_config.request_headers.is_empty() || auth_config.request_headers.contains(name);
        let ours = hop_by_hop(name)
            || [HOST, CONTENT_LENGTH].contains(name)
            || name.as_str() == "traceparent"
            || name.as_str() == "tracestate";
        if listed && !ours {
            headers.append(name.clone(), value.clone());
        }
    }
    // The client's own X-Forwarded-* stay only when trusted, by the middleware and
    // by the entrypoint.
    let trusted = auth_config.trust_forward_header && exchange.notes().forwarded_trusted;
    let client_ip = exchange.client_ip().map(|ip| ip.to_string());
    let forwarded_for = match (trusted, client_ip) {
        (true, Some(ip)) => {
            let chain = forwarded_for(request, exchange);
            if chain.is_empty() {
                Some(ip)
            } else {
                Some(format!("{chain}, {ip}"))
            }
        }
        (_, ip) => ip,
    };
    let uri = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let facts = [
        (
            "x-forwarded-method",
            Some(request.method.as_str().to_owned()),
        ),
        (
            "x-forwarded-proto",
            Some(client_scheme(request, exchange).to_owned()),
        ),
        ("x-forwarded-host", request_host(request).map(str::to_owned)),
        ("x-forwarded-uri", Some(uri.to_owned())),
        ("x-forwarded-for", forwarded_for),
    ];
    for (name, value) in facts {
        let name = HeaderName::from_static(name);
        if trusted && name != "x-forwarded-for" && headers.contains_key(&name) {
            continue;
        }
        headers.remove(&name);
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    if let Some(context) = context {
        if let Some(value) = context.traceparent {
            headers.insert("traceparent", value);
        }
        if let Some(value) = context.tracestate {
            headers.insert("tracestate", value);
        }
    }
    Ok(auth)
}

/// Every value of `name` as one (comma-joined, as HTTP lists combine).
fn joined(headers: &http::HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut text = first.as_bytes().to_vec();
    for value in values {
        text.extend_from_slice(b", ");
        text.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&text).ok()
}
