//! The spans of one request: a SERVER span for the entrypoint and a CLIENT span per
//! upstream attempt, with the OpenTelemetry HTTP semantic-convention attributes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};
use pingora::http::RequestHeader;
use traverse_telemetry::propagation::{self, TRACEPARENT, TRACESTATE};
use traverse_telemetry::semconv;
use traverse_telemetry::{KeyValue, Span, SpanKind, Status, Tracer};

/// Tracing state carried through a request's phases.
pub(crate) struct RequestTrace {
    pub server: Span,
    /// The request carried a valid trace context and the SERVER span continues it.
    continued: bool,
    /// The CLIENT span of the current upstream attempt.
    pub client: Option<Span>,
    /// The inbound `baggage` was malformed or over the limits: not forwarded.
    drop_baggage: bool,
}

/// What a span's name and attributes need to know about the request.
pub(crate) struct RequestFacts<'a> {
    pub entry_point: &'a Arc<str>,
    pub router: Option<&'a Arc<str>>,
    pub service: Option<&'a Arc<str>>,
}

impl RequestTrace {
    /// Extracts the inbound context under `policy` and opens the SERVER span.
    pub fn start(
        tracer: &Tracer,
        policy: propagation::TrustPolicy,
        request: &RequestHeader,
        client_ip: Option<IpAddr>,
        local_port: Option<u16>,
    ) -> RequestTrace {
        let extracted = propagation::extract(&request.headers);
        if let Some(reason) = &extracted.invalid {
            tracing::debug!(%reason, "inbound trace context ignored; starting a new trace");
        }
        let decision = propagation::decide(policy, &extracted);
        let mut server = tracer.start_server(&decision);
        server.set(|| KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_name(&request.method)));
        if method_name(&request.method) == OTHER_METHOD {
            server.set(|| {
                KeyValue::new(
                    semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                    request.method.as_str().to_owned(),
                )
            });
        }
        server.set(|| KeyValue::new(semconv::URL_PATH, request.uri.path().to_owned()));
        server.set(|| KeyValue::new(semconv::URL_SCHEME, "http"));
        server.set(|| {
            KeyValue::new(
                semconv::NETWORK_PROTOCOL_VERSION,
                protocol_version(request.version),
            )
        });
        if let Some((host, port)) = crate::gateway::request_host(request).map(split_host_port) {
            server.set(|| KeyValue::new(semconv::SERVER_ADDRESS, host.to_owned()));
            if let Some(port) = port.or(local_port) {
                server.set(|| KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
            }
        }
        if let Some(ip) = client_ip {
            server.set(|| KeyValue::new(semconv::CLIENT_ADDRESS, ip.to_string()));
        }
        if let Some(agent) = request
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            server.set(|| KeyValue::new(semconv::USER_AGENT_ORIGINAL, agent.to_owned()));
        }
        server.set(|| KeyValue::new("traverse.role", tracer.role()));
        RequestTrace {
            server,
            continued: decision.parent.is_some(),
            client: None,
            drop_baggage: !propagation::baggage_is_valid(&request.headers),
        }
    }

    /// Whether the request arrived with a valid trace context that was continued.
    pub fn continued(&self) -> bool {
        self.continued
    }

    /// Opens the CLIENT span of upstream attempt number `attempt` (from 1), ending
    /// the previous attempt's span if it is still open.
    pub fn start_attempt(
        &mut self,
        tracer: &Tracer,
        method: &Method,
        upstream: SocketAddr,
        attempt: u32,
        facts: &RequestFacts,
    ) {
        if let Some(previous) = self.client.take() {
            tracer.end(previous, span_name(method, facts.router), Status::Unset);
        }
        let mut client = tracer.start_child(&self.server, SpanKind::Client);
        client.set(|| KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_name(method)));
        if client.is_recording() {
            let ip: Arc<str> = upstream.ip().to_string().into();
            client.set(|| KeyValue::new(semconv::SERVER_ADDRESS, Arc::clone(&ip)));
            client.set(|| KeyValue::new(semconv::NETWORK_PEER_ADDRESS, ip));
        }
        client.set(|| KeyValue::new(semconv::SERVER_PORT, i64::from(upstream.port())));
        client.set(|| KeyValue::new(semconv::NETWORK_PEER_PORT, i64::from(upstream.port())));
        if attempt > 1 {
            client
                .set(|| KeyValue::new(semconv::HTTP_REQUEST_RESEND_COUNT, i64::from(attempt - 1)));
        }
        client.set(|| KeyValue::new("traverse.attempt", i64::from(attempt)));
        set_route_attributes(&mut client, facts);
        self.client = Some(client);
    }

    /// Ends the current CLIENT span as a transport failure (e.g. connect refused).
    pub fn fail_attempt(
        &mut self,
        tracer: &Tracer,
        method: &Method,
        facts: &RequestFacts,
        error: &str,
    ) {
        if let Some(mut client) = self.client.take() {
            client.set(|| KeyValue::new(semconv::ERROR_TYPE, error.to_owned()));
            tracer.end(
                client,
                span_name(method, facts.router),
                Status::error(error.to_owned()),
            );
        }
    }

    /// Replaces the inbound trace headers with the current attempt's context.
    pub fn inject(&self, upstream_request: &mut RequestHeader) -> pingora::Result<()> {
        upstream_request.remove_header(&TRACEPARENT);
        upstream_request.remove_header(&TRACESTATE);
        if self.drop_baggage {
            upstream_request.remove_header(&propagation::BAGGAGE);
        }
        let span = self.client.as_ref().unwrap_or(&self.server);
        let outbound = propagation::outbound(span.context());
        if let Some(value) = outbound.traceparent {
            upstream_request.insert_header(TRACEPARENT, value)?;
        }
        if let Some(value) = outbound.tracestate {
            upstream_request.insert_header(TRACESTATE, value)?;
        }
        Ok(())
    }

    /// Ends the request's spans: the open CLIENT span with the upstream's status (or the
    /// error that ended it), then the SERVER span with the status sent to the client.
    pub fn finish(
        mut self,
        tracer: &Tracer,
        method: &Method,
        facts: &RequestFacts,
        upstream_status: Option<u16>,
        status: u16,
        error: Option<&pingora::Error>,
    ) {
        let name = span_name(method, facts.router);
        if let Some(mut client) = self.client.take() {
            let client_status = match (upstream_status, error) {
                (Some(code), _) => {
                    client
                        .set(|| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
                    if code >= 400 {
                        client.set(|| KeyValue::new(semconv::ERROR_TYPE, code.to_string()));
                        Status::error(format!("upstream answered {code}"))
                    } else {
                        Status::Unset
                    }
                }
                (None, Some(error)) => {
                    client.set(|| KeyValue::new(semconv::ERROR_TYPE, error_type(error)));
                    Status::error(error.to_string())
                }
                (None, None) => Status::Unset,
            };
            tracer.end(client, name.clone(), client_status);
        }

        let mut server = self.server;
        set_route_attributes(&mut server, facts);
        if let Some(router) = facts.router {
            server.set(|| KeyValue::new(semconv::HTTP_ROUTE, Arc::clone(router)));
        }
        if status > 0 {
            server.set(|| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        }
        let server_status = if status >= 500 {
            let kind = error.map_or_else(|| status.to_string(), error_type);
            server.set(|| KeyValue::new(semconv::ERROR_TYPE, kind));
            Status::error(error.map_or_else(|| format!("answered {status}"), |e| e.to_string()))
        } else {
            Status::Unset
        };
        tracer.end(server, name, server_status);
    }

    /// The trace id header for the client's response, when configured.
    pub fn response_header(&self, tracer: &Tracer) -> Option<(HeaderName, HeaderValue)> {
        let name = tracer.trace_id_response_header()?;
        let value = HeaderValue::try_from(self.server.trace_id().to_string()).ok()?;
        Some((name.clone(), value))
    }
}

fn set_route_attributes(span: &mut Span, facts: &RequestFacts) {
    span.set(|| KeyValue::new("traverse.entrypoint", Arc::clone(facts.entry_point)));
    if let Some(router) = facts.router {
        span.set(|| KeyValue::new("traverse.router", Arc::clone(router)));
    }
    if let Some(service) = facts.service {
        span.set(|| KeyValue::new("traverse.service", Arc::clone(service)));
    }
}

const OTHER_METHOD: &str = "_OTHER";

/// The method as semantic conventions want it: the known methods, everything else
/// `_OTHER`, so a client cannot make span names and attributes unbounded.
pub(crate) fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => OTHER_METHOD,
    }
}

/// `{METHOD} {route}`; just the method when no route matched.
pub(crate) fn span_name(method: &Method, router: Option<&Arc<str>>) -> String {
    match router {
        Some(router) => format!("{} {router}", method_name(method)),
        None => method_name(method).to_owned(),
    }
}

pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `host:port` → (host, port); IPv6 literals keep no brackets.
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    let name = crate::gateway::strip_port(host);
    let port = host
        .rsplit_once(':')
        .filter(|(rest, _)| !rest.contains(':') || rest.ends_with(']'))
        .and_then(|(_, port)| port.parse().ok());
    (name, port)
}

/// A short, bounded `error.type` for a Pingora error, e.g. `ConnectRefused`.
fn error_type(error: &pingora::Error) -> String {
    error.etype().as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_name(&Method::GET), "GET");
        let custom = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_name(&custom), "_OTHER");
        assert_eq!(
            span_name(&custom, Some(&Arc::from("ns/r#0"))),
            "_OTHER ns/r#0"
        );
        assert_eq!(span_name(&Method::POST, None), "POST");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a.example:8080"), ("a.example", Some(8080)));
        assert_eq!(split_host_port("a.example"), ("a.example", None));
        assert_eq!(split_host_port("[::1]:9"), ("::1", Some(9)));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
