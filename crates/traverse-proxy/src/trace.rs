//! The spans of one request: a SERVER span for the entrypoint and a CLIENT span per
//! upstream attempt, with the OpenTelemetry HTTP semantic-convention attributes. Their
//! final attributes are read from the request's records, as metrics and access logs are.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};
use pingora::http::RequestHeader;
use traverse_telemetry::propagation::{
    self, TRACEPARENT, TRACEPARENT_TEXT, TRACESTATE, TRACESTATE_TEXT,
};
use traverse_telemetry::record::{
    method_name, protocol_version, span_name, AttemptRecord, IpText, RequestRecord, OTHER_METHOD,
};
use traverse_telemetry::semconv;
use traverse_telemetry::{KeyValue, Span, SpanKind, Status, Tracer};

/// Tracing state carried through a request's phases.
#[derive(Debug)]
pub(crate) struct RequestTrace {
    pub server: Span,
    /// The request carried a valid trace context and the SERVER span continues it.
    continued: bool,
    /// The CLIENT span of the current upstream attempt.
    pub client: Option<Span>,
    /// The inbound `baggage` was malformed or over the limits: not forwarded.
    drop_baggage: bool,
}

/// The names a span carries: where the request came in, which router matched (and
/// its `http.route` template) and which service it went to.
pub(crate) struct RouteNames<'a> {
    pub entry_point: &'a Arc<str>,
    pub router: Option<&'a Arc<str>>,
    pub route: Option<&'a Arc<str>>,
    pub service: Option<&'a Arc<str>>,
}

impl RequestTrace {
    /// Extracts the inbound context under `policy` and opens the SERVER span.
    /// `server` gives `server.address` and `server.port`, asked for only when the span
    /// is recorded.
    pub fn start<'a>(
        tracer: &Tracer,
        policy: propagation::TrustPolicy,
        request: &'a RequestHeader,
        scheme: &'static str,
        server: impl FnOnce() -> (Option<&'a str>, Option<u16>),
        client_ip: Option<IpAddr>,
    ) -> RequestTrace {
        let extracted = propagation::extract(&request.headers);
        if let Some(reason) = &extracted.invalid {
            tracing::debug!(%reason, "inbound trace context ignored; starting a new trace");
        }
        if let Some(reason) = &extracted.tracestate_invalid {
            tracing::debug!(%reason, "inbound tracestate discarded");
        }
        let decision = propagation::decide(policy, &extracted);
        let mut span = tracer.start_server(&decision);
        span.set(|| KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_name(&request.method)));
        if method_name(&request.method) == OTHER_METHOD {
            span.set(|| {
                KeyValue::new(
                    semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                    request.method.as_str().to_owned(),
                )
            });
        }
        span.set(|| KeyValue::new(semconv::URL_PATH, request.uri.path().to_owned()));
        span.set(|| KeyValue::new(semconv::URL_SCHEME, scheme));
        span.set(|| {
            KeyValue::new(
                semconv::NETWORK_PROTOCOL_VERSION,
                protocol_version(request.version),
            )
        });
        if span.is_recording() {
            if let (Some(address), port) = server() {
                span.set(|| KeyValue::new(semconv::SERVER_ADDRESS, address.to_owned()));
                if let Some(port) = port {
                    span.set(|| KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
                }
            }
        }
        if let Some(ip) = client_ip {
            span.set(|| {
                KeyValue::new(semconv::CLIENT_ADDRESS, IpText::new(ip).as_str().to_owned())
            });
        }
        let agent = span
            .is_recording()
            .then(|| request.headers.get(http::header::USER_AGENT))
            .flatten();
        if let Some(agent) = agent.and_then(|v| v.to_str().ok()) {
            span.set(|| KeyValue::new(semconv::USER_AGENT_ORIGINAL, agent.to_owned()));
        }
        span.set(|| KeyValue::new("traverse.role", tracer.role()));
        RequestTrace {
            server: span,
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
        names: &RouteNames,
    ) {
        if let Some(previous) = self.client.take() {
            end(
                tracer,
                previous,
                || span_name(method, names.route),
                Status::Unset,
            );
        }
        let mut client = tracer.start_child(&self.server, SpanKind::Client);
        client.set(|| KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_name(method)));
        if client.is_recording() {
            let ip: Arc<str> = IpText::new(upstream.ip()).as_str().into();
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
        set_route_attributes(&mut client, names);
        self.client = Some(client);
    }

    /// Ends the current CLIENT span as `attempt` says: the upstream's status, or the
    /// failure that ended it.
    pub fn end_attempt(&mut self, tracer: &Tracer, attempt: &AttemptRecord) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        let status = match (attempt.status, attempt.failure) {
            (Some(code), _) => {
                client.set(|| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
                if code >= 400 {
                    client.set(|| KeyValue::new(semconv::ERROR_TYPE, code.to_string()));
                    Status::error(format!("upstream answered {code}"))
                } else {
                    Status::Unset
                }
            }
            (None, Some(failure)) => {
                client.set(|| KeyValue::new(semconv::ERROR_TYPE, failure.kind));
                Status::error(failure.detail.to_string())
            }
            (None, None) => Status::Unset,
        };
        end(tracer, client, || attempt.span_name(), status);
    }

    /// Replaces the inbound trace headers with the current attempt's context.
    pub fn inject(&self, upstream_request: &mut RequestHeader) -> pingora::Result<()> {
        upstream_request.remove_header(&TRACEPARENT);
        upstream_request.remove_header(&TRACESTATE);
        if self.drop_baggage {
            upstream_request.remove_header(&propagation::BAGGAGE);
        }
        let span = self.client.as_ref().unwrap_or(&self.server);
        let outbound = propagation::outbound(span.context(), span.tracestate());
        // Names as static text: Pingora copies a `HeaderName` it has no title case for
        // into a new allocation, a `&'static str` it keeps as it is.
        if let Some(value) = outbound.traceparent {
            upstream_request.insert_header(TRACEPARENT_TEXT, value)?;
        }
        if let Some(value) = outbound.tracestate {
            upstream_request.insert_header(TRACESTATE_TEXT, value)?;
        }
        Ok(())
    }

    /// Ends the SERVER span with what `request` records, at the request's end (when its
    /// last byte went to the client); the attempt's CLIENT span has ended already.
    pub fn finish(self, tracer: &Tracer, request: &RequestRecord) {
        let names = RouteNames {
            entry_point: request.entry_point,
            router: request.router,
            route: request.route,
            service: request.service,
        };
        if let Some(client) = self.client {
            end(tracer, client, || request.span_name(), Status::Unset);
        }
        let mut server = self.server;
        set_route_attributes(&mut server, &names);
        if let Some(tls) = request.tls {
            server.set(|| KeyValue::new(semconv::TLS_PROTOCOL_NAME, "tls"));
            server.set(|| KeyValue::new(semconv::TLS_PROTOCOL_VERSION, tls.version));
        }
        if let Some(route) = request.route {
            server.set(|| KeyValue::new(semconv::HTTP_ROUTE, Arc::clone(route)));
        }
        let status = request.status;
        if status > 0 {
            server.set(|| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        }
        let server_status = if status >= 500 {
            let kind = request
                .failure
                .map_or_else(|| status.to_string(), |f| f.kind.to_owned());
            server.set(|| KeyValue::new(semconv::ERROR_TYPE, kind));
            Status::error(
                request
                    .failure
                    .map_or_else(|| format!("answered {status}"), |f| f.detail.to_string()),
            )
        } else {
            Status::Unset
        };
        if server.is_recording() {
            let end = request.start + request.duration;
            tracer.end_at(server, request.span_name(), server_status, end);
        }
    }

    /// The trace id header for the client's response, when configured.
    pub fn response_header(&self, tracer: &Tracer) -> Option<(HeaderName, HeaderValue)> {
        let name = tracer.trace_id_response_header()?;
        let value = HeaderValue::try_from(self.server.trace_id().to_string()).ok()?;
        Some((name.clone(), value))
    }
}

fn set_route_attributes(span: &mut Span, names: &RouteNames) {
    span.set(|| KeyValue::new("traverse.entrypoint", Arc::clone(names.entry_point)));
    if let Some(router) = names.router {
        span.set(|| KeyValue::new("traverse.router", Arc::clone(router)));
    }
    if let Some(service) = names.service {
        span.set(|| KeyValue::new("traverse.service", Arc::clone(service)));
    }
}

/// Ends `span`, naming it only when it is recorded: an unsampled request formats no name.
fn end(tracer: &Tracer, span: Span, name: impl FnOnce() -> String, status: Status) {
    if span.is_recording() {
        tracer.end(span, name(), status);
    }
}
