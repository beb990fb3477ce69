//! The admin listener: `/livez`, `/readyz`, Prometheus `/metrics` and the read-only
//! `/api/routes`, `/api/telemetry`, `/api/entrypoints` and `/api/multicluster`. Its own traffic is traced only with
//! `tracing.addInternals`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;
use traverse_config::TrustPolicy;
use traverse_model::{Backend, Diagnostic, Node, Router, Target};
use traverse_telemetry::access_log::{AccessLogPolicy, AccessLogStats, AccessRecord};
use traverse_telemetry::metrics::prometheus::{self, Format};
use traverse_telemetry::record::{RequestRecord, SpanIds};
use traverse_telemetry::{propagation, semconv, KeyValue, Span, StatsSnapshot, Status, Tracer};

use crate::clock::now_ms;
use crate::host::requested_host_port;
use crate::GatewayState;

/// The `entryPointName` of the admin listener's access log records.
const ADMIN_ENTRY_POINT: &str = "traverse-admin";

/// Serves health probes and a JSON view of the routing table.
pub struct AdminApi {
    state: Arc<GatewayState>,
}

impl AdminApi {
    /// An admin API over `state`.
    pub fn new(state: Arc<GatewayState>) -> Self {
        AdminApi { state }
    }

    fn routes_json(&self) -> Vec<u8> {
        let routing = self.state.routing();
        let view = RoutesView {
            generation: self.state.generation(),
            routes: routing
                .routes
                .routes()
                .map(|r| RouteView::from(r.value.as_ref()))
                .collect(),
            diagnostics: routing.diagnostics.iter().collect(),
        };
        // Serializing plain data into memory cannot fail.
        serde_json::to_vec_pretty(&view).unwrap_or_default()
    }

    /// A child's advertisement, and on a parent every child as the parent sees it.
    fn multicluster_json(&self) -> Vec<u8> {
        let topology = self.state.topology();
        let view = serde_json::json!({
            "cluster": topology.cluster.as_ref(),
            "advertisement": self.state.advertisement().as_ref(),
            "children": topology.children.as_ref().map(|c| c.view()),
        });
        serde_json::to_vec_pretty(&view).unwrap_or_default()
    }

    /// Connection counts per entrypoint: open, refused over `maxConnections`, and closed
    /// for a request head that missed its deadline.
    fn entrypoints_json(&self) -> Vec<u8> {
        let view: std::collections::BTreeMap<_, _> = self
            .state
            .all_connection_stats()
            .into_iter()
            .map(|(name, stats)| (name, serde_json::json!({ "connections": &*stats })))
            .collect();
        serde_json::to_vec_pretty(&view).unwrap_or_default()
    }

    fn telemetry_json(&self) -> Vec<u8> {
        let tracer = self.state.tracer();
        let view = TelemetryView {
            traces: TracesView {
                enabled: tracer.is_some(),
                spans: tracer.map(|t| t.stats().snapshot()).unwrap_or_default(),
            },
            access_log: self.state.access_log().map(|a| a.stats()),
        };
        serde_json::to_vec_pretty(&view).unwrap_or_default()
    }

    /// `/metrics` in the format the scraper asked for; 404 when Prometheus is off.
    fn metrics(&self, session: &ServerSession) -> Response<Vec<u8>> {
        let (Some(metrics), Some(families)) =
            (self.state.metrics(), self.state.telemetry.prometheus)
        else {
            return text(StatusCode::NOT_FOUND, "metrics are off\n");
        };
        let accept = session
            .req_header()
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = Format::negotiate(accept);
        let body = prometheus::render(metrics, &families, format);
        respond(StatusCode::OK, format.content_type(), body.into_bytes())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TelemetryView {
    traces: TracesView,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_log: Option<AccessLogStats>,
}

#[derive(Serialize)]
struct TracesView {
    enabled: bool,
    spans: StatsSnapshot,
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let started = Instant::now();
        let tracer = self.state.tracer().filter(|t| t.add_internals());
        let span = tracer.map(|t| internal_span(t, session.req_header()));
        let ids = span.as_ref().map(|s| {
            let context = s.context();
            SpanIds {
                trace_id: context.trace_id(),
                span_id: context.span_id(),
                sampled: context.is_sampled(),
            }
        });
        let path = session.req_header().uri.path().to_owned();
        let method = &session.req_header().method;
        let read_only = *method == http::Method::GET || *method == http::Method::HEAD;
        let response = match path.as_str() {
            // Every page is read-only.
            _ if !read_only => method_not_allowed(),
            "/livez" => text(StatusCode::OK, "ok\n"),
            "/readyz" if self.state.is_ready() => text(StatusCode::OK, "ready\n"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            "/api/routes" => json(self.routes_json()),
            "/api/telemetry" => json(self.telemetry_json()),
            "/api/entrypoints" => json(self.entrypoints_json()),
            "/api/multicluster" => json(self.multicluster_json()),
            "/metrics" => self.metrics(session),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        if let (Some(tracer), Some(mut span)) = (tracer, span) {
            let status = response.status();
            span.set(|| {
                KeyValue::new(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                )
            });
            let known = status != StatusCode::NOT_FOUND;
            let method = session.req_header().method.as_str().to_owned();
            let name = if known {
                format!("{method} {path}")
            } else {
                method
            };
            let outcome = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                Status::error(status.to_string())
            } else {
                Status::Unset
            };
            tracer.end(span, name, outcome);
        }
        if let Some(access_log) = self
            .state
            .access_log()
            .filter(|a| a.policy().add_internals())
        {
            let duration = started.elapsed();
            let status = response.status().as_u16();
            if access_log.policy().keeps(status, duration, 0) {
                access_log.log(internal_record(
                    access_log.policy(),
                    session,
                    &response,
                    duration,
                    ids,
                ));
            }
        }
        response
    }
}

/// The access log record of an admin request (with `logs.access.addInternals`).
fn internal_record(
    policy: &AccessLogPolicy,
    session: &ServerSession,
    response: &Response<Vec<u8>>,
    duration: Duration,
    span: Option<SpanIds>,
) -> AccessRecord {
    let request = session.req_header();
    let (host, port) = requested_host_port(request);
    let entry_point: Arc<str> = Arc::from(ADMIN_ENTRY_POINT);
    let record = RequestRecord {
        entry_point: &entry_point,
        // The admin listener is plain TCP.
        scheme: "http",
        method: &request.method,
        uri: &request.uri,
        version: request.version,
        host,
        port,
        tls: None,
        request_headers: &request.headers,
        response_headers: Some(response.headers()),
        client: session.client_addr().and_then(|a| a.as_inet()).copied(),
        router: None,
        route: None,
        service: None,
        status: response.status().as_u16(),
        failure: None,
        start: SystemTime::now() - duration,
        duration,
        request_bytes: 0,
        response_bytes: response.body().len() as u64,
        attempts: 0,
        upstream: None,
        span,
        client_username: None,
        middleware: None,
    };
    AccessRecord::new(&record, policy)
}

/// The SERVER span of an admin request, continuing the caller's trace (probes from
/// the orchestrator usually send none).
fn internal_span(tracer: &Tracer, request: &pingora::http::RequestHeader) -> Span {
    let extracted = propagation::extract(&request.headers);
    let mut span = tracer.start_server(&propagation::decide(TrustPolicy::Continue, &extracted));
    span.set(|| {
        KeyValue::new(
            semconv::HTTP_REQUEST_METHOD,
            request.method.as_str().to_owned(),
        )
    });
    span.set(|| KeyValue::new(semconv::URL_PATH, request.uri.path().to_owned()));
    span.set(|| KeyValue::new(semconv::URL_SCHEME, "http"));
    span.set(|| KeyValue::new("traverse.role", tracer.role()));
    span.set(|| KeyValue::new("traverse.internal", true));
    span
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// 405 with the methods every admin page takes.
fn method_not_allowed() -> Response<Vec<u8>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response.headers_mut().insert(
        http::header::ALLOW,
        http::HeaderValue::from_static("GET, HEAD"),
    );
    response
}

fn json(body: Vec<u8>) -> Response<Vec<u8>> {
    respond(StatusCode::OK, "application/json", body)
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    let length = response.body().len();
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, length.into());
    response
}

#[derive(Serialize)]
struct RoutesView<'a> {
    generation: u64,
    routes: Vec<RouteView<'a>>,
    diagnostics: Vec<&'a Diagnostic>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteView<'a> {
    name: &'a str,
    rule: &'a str,
    priority: i64,
    entry_points: &'a [String],
    middlewares: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<ServiceView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uplinks: Option<Vec<UplinkView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<UnavailableView<'a>>,
    /// Where the route's mirroring services copy requests to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mirrors: Vec<MirrorView<'a>>,
}

/// One Service port a mirroring service copies requests to.
#[derive(Serialize)]
struct MirrorView<'a> {
    /// The mirroring TraefikService (`namespace/name`).
    mirroring: &'a str,
    /// The mirror's Service port; a TraefikService mirror lists each of its ports.
    name: &'a str,
    percent: u8,
    servers: Vec<String>,
}

#[derive(Serialize)]
struct UplinkView {
    name: String,
    weight: u32,
}

#[derive(Serialize)]
struct ServiceView<'a> {
    name: &'a str,
    weight: u32,
    scheme: &'static str,
    #[serde(rename = "passHostHeader")]
    pass_host_header: bool,
    servers: Vec<String>,
    /// Endpoints passively ejected now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ejected: Vec<String>,
    /// Whether the Service has an active `healthCheck`.
    #[serde(rename = "healthCheck")]
    health_check: bool,
    /// Endpoints failing their active health check now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unhealthy: Vec<String>,
}

#[derive(Serialize)]
struct UnavailableView<'a> {
    status: u16,
    reason: &'a str,
}

impl<'a> From<&'a Router> for RouteView<'a> {
    fn from(router: &'a Router) -> Self {
        let (mut services, mut uplinks, mut unavailable) = (None, None, None);
        let mut mirrors = Vec::new();
        match &router.target {
            Target::Services(balancer) => {
                for (mirroring, settings) in balancer.mirrorings() {
                    for mirror in &settings.mirrors {
                        let ports = match &mirror.node {
                            Node::Backend(backend) => vec![backend],
                            Node::Balancer(balancer) => {
                                balancer.backends().into_iter().map(|(b, _)| b).collect()
                            }
                        };
                        mirrors.extend(ports.into_iter().map(|backend| MirrorView {
                            mirroring,
                            name: &backend.name,
                            percent: mirror.percent,
                            servers: server_addresses(backend),
                        }));
                    }
                }
                services = Some(
                    balancer
                        .backends()
                        .into_iter()
                        .map(|(b, w)| ServiceView::new(b, w))
                        .collect(),
                );
            }
            Target::Uplinks(list) => {
                uplinks = Some(
                    list.items()
                        .iter()
                        .map(|(u, w)| UplinkView {
                            name: u.to_string(),
                            weight: *w,
                        })
                        .collect(),
                );
            }
            Target::Unavailable { status, reason } => {
                unavailable = Some(UnavailableView {
                    status: *status,
                    reason,
                });
            }
        }
        RouteView {
            name: &router.name,
            rule: &router.rule,
            priority: router.priority,
            entry_points: &router.entry_points,
            middlewares: &router.middleware_names,
            services,
            uplinks,
            unavailable,
            mirrors,
        }
    }
}

/// The addresses of a backend's servers, as the views list them.
fn server_addresses(backend: &Backend) -> Vec<String> {
    backend
        .servers
        .items()
        .iter()
        .map(|(e, _)| e.address.to_string())
        .collect()
}

impl<'a> ServiceView<'a> {
    fn new(backend: &'a Backend, weight: u32) -> Self {
        ServiceView {
            name: &backend.name,
            weight,
            scheme: backend.scheme.as_str(),
            pass_host_header: backend.pass_host_header,
            servers: server_addresses(backend),
            ejected: backend
                .servers
                .items()
                .iter()
                .filter(|(e, _)| e.health().is_some_and(|h| h.ejected(now_ms())))
                .map(|(e, _)| e.address.to_string())
                .collect(),
            health_check: backend.health_check.is_some(),
            unhealthy: backend
                .servers
                .items()
                .iter()
                .filter(|(e, _)| e.failing_check())
                .map(|(e, _)| e.address.to_string())
                .collect(),
        }
    }
}
