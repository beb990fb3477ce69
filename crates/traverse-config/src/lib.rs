//! Traverse's static configuration: the YAML file an operator writes.
//!
//! Parsing is strict (`deny_unknown_fields`): a typo is an error that names the key,
//! never a silently ignored setting. Every default lives in this file, next to its field.
//! [`Config::validate`] checks what serde cannot (addresses, ranges, conflicts) and
//! names the offending key the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML does not match the schema (unknown key, wrong type, ...).
    #[error("{origin}: {key}: {message}")]
    Parse {
        origin: String,
        key: String,
        message: String,
    },
    /// The configuration parsed but is not usable; every problem is listed.
    #[error("{origin}: invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

/// One validation failure, anchored at a configuration key such as `entryPoints.web.address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// What this gateway is in a multi-cluster topology.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A single gateway in front of workloads; no uplinks.
    #[default]
    Standalone,
    /// Terminates client ingress and forwards over uplinks to children.
    Parent,
    /// Routes to workloads; serves parents on its uplink entrypoint.
    Child,
}

impl Role {
    /// The lowercase name used in config, telemetry and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Parent => "parent",
            Role::Child => "child",
        }
    }
}

/// The whole static configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub cluster: Cluster,
    /// Listeners for client traffic, by name (the name IngressRoutes use in `entryPoints`).
    #[serde(default = "default_entry_points")]
    pub entry_points: BTreeMap<String, EntryPoint>,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub providers: Providers,
    #[serde(default)]
    pub upstream: Upstream,
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub shutdown: Shutdown,
    #[serde(default)]
    pub tracing: Tracing,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub logs: Logs,
    /// Parent side of multi-cluster routing: the child gateways to forward to.
    #[serde(default)]
    pub multicluster: Multicluster,
}

/// Identity of the cluster this gateway runs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Reported as `k8s.cluster.name` and used to tell clusters apart across a trace.
    #[serde(default = "default_cluster_name")]
    pub name: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: default_cluster_name(),
        }
    }
}

/// A listener for client traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPoint {
    /// `host:port` to listen on, e.g. `0.0.0.0:8080`.
    pub address: String,
    /// Accept cleartext HTTP/2 (prior knowledge) beside HTTP/1.1.
    #[serde(default = "yes")]
    pub h2c: bool,
    #[serde(default)]
    pub timeouts: EntryPointTimeouts,
    #[serde(default)]
    pub forwarded_headers: ForwardedHeaders,
    /// What to do with the W3C trace context clients send.
    #[serde(default)]
    pub trace_context: TrustPolicy,
    /// An uplink entrypoint (children only): parents forward here, and it serves the
    /// advertisement of this child's Uplinks. Routes reach it only by naming it.
    #[serde(default)]
    pub uplink: bool,
    /// Terminate TLS (and with `clientCA`, require client certificates).
    pub tls: Option<ListenerTls>,
}

/// TLS of a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    /// PEM certificate chain and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM roots that client certificates must chain to: mutual TLS, every client must
    /// present one (a child's uplink entrypoint accepting only its parents).
    #[serde(rename = "clientCA")]
    pub client_ca: Option<PathBuf>,
}

/// How an entrypoint treats the trace context its clients send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustPolicy {
    /// Join the caller's trace: the inbound context becomes the parent.
    #[default]
    Continue,
    /// Start a new trace and link to the caller's, for untrusted edges that
    /// should not control our trace ids or sampling but stay correlatable.
    NewAndLink,
    /// Start a new trace and drop the caller's context entirely.
    Ignore,
}

/// Downstream (client-side) timeouts of an entrypoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointTimeouts {
    /// Longest wait for the next read from the client (headers or body).
    #[serde(default = "sixty_seconds", with = "humantime_serde")]
    pub read: Duration,
    /// Longest wait for the client to accept a write.
    #[serde(default = "sixty_seconds", with = "humantime_serde")]
    pub write: Duration,
    /// How long an idle keep-alive client connection is kept open (at most `read`: Pingora
    /// times the wait for a request and the reading of its header with one timer).
    #[serde(default = "idle_timeout", with = "humantime_serde")]
    pub idle: Duration,
}

impl Default for EntryPointTimeouts {
    fn default() -> Self {
        EntryPointTimeouts {
            read: sixty_seconds(),
            write: sixty_seconds(),
            idle: idle_timeout(),
        }
    }
}

/// Whether inbound `X-Forwarded-*` headers are trusted or replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardedHeaders {
    /// Trust `X-Forwarded-*` from every client (only behind another proxy you control).
    #[serde(default)]
    pub insecure: bool,
    /// Clients (IPs or CIDRs) whose `X-Forwarded-*` headers are kept and extended.
    #[serde(default, rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
}

/// The admin listener: health probes and the read-only API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Admin {
    #[serde(default = "default_admin_address")]
    pub address: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: default_admin_address(),
        }
    }
}

/// Where routing resources come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Providers {
    pub file: Option<FileProvider>,
    pub kubernetes: Option<KubernetesProvider>,
}

/// The same kinds as the file provider, watched in a Kubernetes cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesProvider {
    /// Namespaces to watch; empty: every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only IngressRoutes, Middlewares and Uplinks matching this label selector
    /// (e.g. `team=shop,tier!=canary`); Services and EndpointSlices are found by reference.
    pub label_selector: Option<String>,
    /// Only IngressRoutes of this class (`spec.ingressClassName` or the
    /// `kubernetes.io/ingress.class` annotation). Unset: those without a class, or of
    /// class `traverse` or `traefik`.
    pub ingress_class: Option<String>,
    /// Quiet time after a change before the configuration is rebuilt, so a burst of
    /// changes (a rollout's EndpointSlices) is applied once.
    #[serde(default = "default_throttle", with = "humantime_serde")]
    pub throttle: Duration,
    /// A kubeconfig file; unset: kube's inference, `KUBECONFIG` or `~/.kube/config`
    /// when present, else the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Of several replicas, only the holder of this Lease writes status and Events.
    #[serde(default)]
    pub leader_election: LeaderElection,
}

/// The Lease replicas contend for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElection {
    #[serde(default = "default_lease_name")]
    pub name: String,
    /// Default: the pod's namespace (`POD_NAMESPACE`), else `default`.
    pub namespace: Option<String>,
    /// A holder that has not renewed for this long is replaced.
    #[serde(default = "default_lease_duration", with = "humantime_serde")]
    pub lease_duration: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            name: default_lease_name(),
            namespace: None,
            lease_duration: default_lease_duration(),
        }
    }
}

/// Kubernetes-style YAML manifests read from a directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileProvider {
    /// Relative paths are resolved against the configuration file's directory.
    pub directory: PathBuf,
    /// Reload when files change.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Quiet time after the last change before reloading, so an editor's or
    /// `kubectl`-style multi-file write is applied once.
    #[serde(default = "default_debounce", with = "humantime_serde")]
    pub debounce: Duration,
}

/// How Traverse talks to upstream servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Upstream {
    /// TCP (and TLS) connect timeout; exceeded → 502.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the next read from the upstream (headers or body); exceeded → 504.
    #[serde(default = "sixty_seconds", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Longest wait for the upstream to accept a write.
    #[serde(default = "sixty_seconds", with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an idle pooled upstream connection is kept for reuse.
    #[serde(default = "idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Idle upstream connections kept per process, across all upstreams.
    #[serde(default = "default_keepalive_pool_size")]
    pub keepalive_pool_size: usize,
    /// Passive ejection of Service endpoints that fail requests (the same settings as
    /// `multicluster.passiveHealthCheck` for children).
    #[serde(default)]
    pub passive_health_check: PassiveHealthCheck,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            connect_timeout: default_connect_timeout(),
            read_timeout: sixty_seconds(),
            write_timeout: sixty_seconds(),
            idle_timeout: idle_timeout(),
            keepalive_pool_size: default_keepalive_pool_size(),
            passive_health_check: PassiveHealthCheck::default(),
        }
    }
}

/// Process-level settings of the data plane.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    /// Worker threads per entrypoint; `0` means one per available core.
    #[serde(default)]
    pub threads: usize,
}

/// Graceful shutdown on SIGTERM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Shutdown {
    /// Longest time in-flight requests get to finish after SIGTERM. Keep it below
    /// the pod's `terminationGracePeriodSeconds`.
    #[serde(default = "default_grace_period", with = "humantime_serde")]
    pub grace_period: Duration,
    /// After SIGTERM, keep accepting for this long while readiness fails and parents are
    /// told this child is draining, so traffic moves away before listeners close.
    #[serde(default, with = "humantime_serde")]
    pub drain_delay: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            grace_period: default_grace_period(),
            drain_delay: Duration::ZERO,
        }
    }
}

/// The child gateways a parent forwards to, and how it judges their health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Multicluster {
    /// Child gateways by name (the name reported as `traverse.child`).
    #[serde(default)]
    pub children: BTreeMap<String, Child>,
    /// Header carrying this gateway's cluster name to its children.
    #[serde(default = "default_source_cluster_header")]
    pub source_cluster_header: String,
    /// Most uplink hops a request may take; one more is answered 508 (a forwarding loop).
    #[serde(default = "default_max_hops")]
    pub max_hops: u32,
    #[serde(default)]
    pub health_check: ChildHealthCheck,
    #[serde(default)]
    pub passive_health_check: PassiveHealthCheck,
}

impl Default for Multicluster {
    fn default() -> Self {
        Multicluster {
            children: BTreeMap::new(),
            source_cluster_header: default_source_cluster_header(),
            max_hops: default_max_hops(),
            health_check: ChildHealthCheck::default(),
            passive_health_check: PassiveHealthCheck::default(),
        }
    }
}

/// One child gateway: the address of its uplink entrypoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Child {
    /// `host:port` of the child's uplink entrypoint, e.g. `child-a.example.com:9443`.
    pub address: String,
    /// Speak TLS to the child (mutual TLS when `cert` and `key` are set).
    pub tls: Option<ChildTls>,
}

/// TLS towards a child gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChildTls {
    /// Name verified against the child's certificate (default: the address's host).
    pub server_name: Option<String>,
    /// PEM bundle of roots to trust instead of the system's.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Skip server verification: only for testing.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Active health checks of children, on their uplink entrypoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChildHealthCheck {
    #[serde(default = "two_seconds", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "one_second", with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failed checks that take a child out of rotation.
    #[serde(default = "two")]
    pub unhealthy_threshold: u32,
    /// Consecutive successful checks that put it back.
    #[serde(default = "one")]
    pub healthy_threshold: u32,
}

impl Default for ChildHealthCheck {
    fn default() -> Self {
        ChildHealthCheck {
            interval: two_seconds(),
            timeout: one_second(),
            unhealthy_threshold: two(),
            healthy_threshold: one(),
        }
    }
}

/// Passive ejection: endpoints (or children) that fail requests are taken out of rotation
/// for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PassiveHealthCheck {
    /// Consecutive failed attempts (connect errors, or errors before a response) that eject.
    #[serde(default = "three")]
    pub failures: u32,
    /// How long an ejected endpoint gets no requests (for a child, an active check
    /// passing ends it early).
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    pub ejection_time: Duration,
}

impl Default for PassiveHealthCheck {
    fn default() -> Self {
        PassiveHealthCheck {
            failures: three(),
            ejection_time: ten_seconds(),
        }
    }
}

/// Distributed tracing. Unset fields fall back to the standard `OTEL_*` environment
/// variables, then to defaults: explicit configuration wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracing {
    /// `service.name` of every span (default `OTEL_SERVICE_NAME`, else `traverse`).
    pub service_name: Option<String>,
    /// Fraction of new traces recorded, 0.0 to 1.0; a request that arrives with trace
    /// context follows the caller's sampling decision.
    pub sample_rate: Option<f64>,
    /// Also trace the admin listener's own traffic (probes, API).
    #[serde(default)]
    pub add_internals: bool,
    /// Extra resource attributes, e.g. `deployment.environment: prod`; they win over
    /// `OTEL_RESOURCE_ATTRIBUTES` and the defaults.
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    /// Response header that returns the trace id to the client, e.g. `X-Trace-Id`.
    pub trace_id_response_header: Option<String>,
    #[serde(default)]
    pub otlp: Otlp,
    #[serde(default)]
    pub queue: ExportQueue,
}

/// Where a signal is exported over OTLP: one of `http` or `grpc`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Otlp {
    /// Unset: enabled when `http` or `grpc` is given or an `OTEL_EXPORTER_OTLP_*ENDPOINT`
    /// variable is set.
    pub enabled: Option<bool>,
    pub http: Option<OtlpHttp>,
    pub grpc: Option<OtlpGrpc>,
}

/// OTLP over HTTP with protobuf bodies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OtlpHttp {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The full URL including the signal's path, e.g. `http://collector:4318/v1/traces`.
    pub endpoint: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per export attempt.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub tls: Option<Tls>,
}

/// OTLP over gRPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OtlpGrpc {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `host:port` or a URL, e.g. `collector:4317` or `https://collector:4317`.
    pub endpoint: Option<String>,
    /// Plaintext (no TLS) when the endpoint has no scheme.
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub tls: Option<Tls>,
}

/// TLS towards a collector (the system's roots are always trusted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tls {
    /// PEM bundle of extra roots to trust.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Skip server verification: only for testing.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Request, upstream, configuration and telemetry metrics. The resource (service name,
/// resource attributes) is the one configured under `tracing`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    /// Scraped at the admin listener's `/metrics`.
    #[serde(default)]
    pub prometheus: Prometheus,
    /// Pushed to a collector.
    #[serde(default)]
    pub otlp: MetricsOtlp,
}

/// Which per-entrypoint, per-router and per-service metric families an output carries
/// (Traefik's switches; each family multiplies series by its label's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricFamilies {
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
}

impl Default for MetricFamilies {
    fn default() -> Self {
        MetricFamilies {
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
        }
    }
}

impl MetricFamilies {
    /// Every family either side carries.
    pub fn union(self, other: MetricFamilies) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels || other.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels || other.add_routers_labels,
            add_services_labels: self.add_services_labels || other.add_services_labels,
        }
    }
}

/// The Prometheus text endpoint on the admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Prometheus {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub add_entry_points_labels: bool,
    #[serde(default)]
    pub add_routers_labels: bool,
    #[serde(default = "yes")]
    pub add_services_labels: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            enabled: true,
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
        }
    }
}

impl Prometheus {
    pub fn families(&self) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels,
            add_services_labels: self.add_services_labels,
        }
    }
}

/// OTLP metrics push: the transport keys of [`Otlp`] plus the push settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsOtlp {
    /// Unset: enabled when `http` or `grpc` is given or an `OTEL_EXPORTER_OTLP_*ENDPOINT`
    /// variable is set.
    pub enabled: Option<bool>,
    pub http: Option<OtlpHttp>,
    pub grpc: Option<OtlpGrpc>,
    /// Time between two pushes of the cumulative values (default
    /// `OTEL_METRIC_EXPORT_INTERVAL`, else 10s).
    #[serde(default, with = "humantime_serde")]
    pub push_interval: Option<Duration>,
    #[serde(default = "yes")]
    pub add_entry_points_labels: bool,
    #[serde(default)]
    pub add_routers_labels: bool,
    #[serde(default = "yes")]
    pub add_services_labels: bool,
    /// `service.name` of the metrics resource; default: the tracing service name.
    pub service_name: Option<String>,
}

impl Default for MetricsOtlp {
    fn default() -> Self {
        MetricsOtlp {
            enabled: None,
            http: None,
            grpc: None,
            push_interval: None,
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            service_name: None,
        }
    }
}

impl MetricsOtlp {
    /// The transport part, resolved like every other signal's.
    pub fn transport(&self) -> Otlp {
        Otlp {
            enabled: self.enabled,
            http: self.http.clone(),
            grpc: self.grpc.clone(),
        }
    }

    pub fn families(&self) -> MetricFamilies {
        MetricFamilies {
            add_entry_points_labels: self.add_entry_points_labels,
            add_routers_labels: self.add_routers_labels,
            add_services_labels: self.add_services_labels,
        }
    }
}

/// The gateway's own logs and the access log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logs {
    #[serde(default)]
    pub general: GeneralLogs,
    #[serde(default)]
    pub access: AccessLog,
}

/// The gateway's own log lines (always on stderr; optionally also over OTLP).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneralLogs {
    /// Exported with the same resource as the traces; off unless `http` or `grpc` is
    /// given (the `OTEL_*` endpoint variables do not turn it on).
    #[serde(default)]
    pub otlp: Otlp,
}

/// One record per request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLog {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub format: AccessLogFormat,
    /// Append text lines to this file. Unset: text lines go to stdout, unless `otlp`
    /// is enabled (then records go only to the collector).
    pub file_path: Option<PathBuf>,
    /// Also log the admin listener's requests.
    #[serde(default)]
    pub add_internals: bool,
    #[serde(default)]
    pub filters: AccessLogFilters,
    #[serde(default)]
    pub fields: AccessLogFields,
    /// Send records as OTLP log records, with the request's trace and span ids.
    #[serde(default)]
    pub otlp: Otlp,
    /// Records waiting to be written; when full, new records are dropped and counted.
    #[serde(default = "default_access_log_buffer")]
    pub buffer_size: usize,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: false,
            format: AccessLogFormat::default(),
            file_path: None,
            add_internals: false,
            filters: AccessLogFilters::default(),
            fields: AccessLogFields::default(),
            otlp: Otlp::default(),
            buffer_size: default_access_log_buffer(),
        }
    }
}

/// Text encoding of access log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// Common Log Format, extended like Traefik's (router, service, duration).
    #[default]
    Common,
    /// One JSON object per line with Traefik's field names.
    Json,
}

/// Which requests are logged: a request is kept when it matches any filter that is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogFilters {
    /// Status codes and ranges, e.g. `["400-599", "302"]`.
    #[serde(default)]
    pub status_codes: Vec<String>,
    /// Keep requests that were retried.
    #[serde(default)]
    pub retry_attempts: bool,
    /// Keep requests that took longer than this.
    #[serde(default, with = "humantime_serde")]
    pub min_duration: Option<Duration>,
}

/// Field and header selection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessLogFields {
    #[serde(default)]
    pub general: FieldSelection,
    #[serde(default)]
    pub headers: HeaderSelection,
}

/// Keep or drop each field (names as in the JSON output, e.g. `ClientAddr`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSelection {
    // `defaultmode` is the spelling of Traefik's Helm values, accepted so they carry over.
    #[serde(default, alias = "defaultmode")]
    pub default_mode: FieldMode,
    #[serde(default)]
    pub names: BTreeMap<String, FieldMode>,
}

/// Keep, drop or redact each request and response header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderSelection {
    #[serde(default = "drop_mode", alias = "defaultmode")]
    pub default_mode: HeaderMode,
    /// By header name, case-insensitive.
    #[serde(default)]
    pub names: BTreeMap<String, HeaderMode>,
}

impl Default for HeaderSelection {
    fn default() -> Self {
        HeaderSelection {
            default_mode: HeaderMode::Drop,
            names: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldMode {
    #[default]
    Keep,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMode {
    Keep,
    Drop,
    /// Logged as `REDACTED`: the header was present, its value is not recorded.
    Redact,
}

/// Parses one `statusCodes` entry: `404` or `500-599`.
pub fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let status = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (status(low)?, status(high)?),
        None => (status(text)?, status(text)?),
    };
    (low <= high).then_some((low, high))
}

/// The bounded buffer between the request path and the exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportQueue {
    /// Spans waiting for export; when full, new spans are dropped (and counted).
    #[serde(default = "default_max_queue_size")]
    pub max_size: usize,
    /// Spans per export request.
    #[serde(default = "default_max_batch_size")]
    pub max_batch_size: usize,
    /// Longest time a span waits before its batch is sent.
    #[serde(default = "default_schedule_delay", with = "humantime_serde")]
    pub schedule_delay: Duration,
}

impl Default for ExportQueue {
    fn default() -> Self {
        ExportQueue {
            max_size: default_max_queue_size(),
            max_batch_size: default_max_batch_size(),
            schedule_delay: default_schedule_delay(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_cluster_name() -> String {
    "local".to_owned()
}
fn default_entry_points() -> BTreeMap<String, EntryPoint> {
    BTreeMap::from([(
        "web".to_owned(),
        EntryPoint {
            address: "0.0.0.0:8080".to_owned(),
            h2c: true,
            timeouts: EntryPointTimeouts::default(),
            forwarded_headers: ForwardedHeaders::default(),
            trace_context: TrustPolicy::default(),
            uplink: false,
            tls: None,
        },
    )])
}
fn default_admin_address() -> String {
    "127.0.0.1:9000".to_owned()
}
fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}
fn idle_timeout() -> Duration {
    Duration::from_secs(90)
}
fn default_debounce() -> Duration {
    Duration::from_millis(200)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_keepalive_pool_size() -> usize {
    256
}
fn default_lease_name() -> String {
    "traverse-status".into()
}
fn default_lease_duration() -> Duration {
    Duration::from_secs(15)
}
fn default_throttle() -> Duration {
    Duration::from_millis(200)
}
fn default_source_cluster_header() -> String {
    "X-Source-Cluster".into()
}
fn default_max_hops() -> u32 {
    3
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn default_grace_period() -> Duration {
    Duration::from_secs(30)
}
fn default_max_queue_size() -> usize {
    2048
}
fn default_max_batch_size() -> usize {
    512
}
fn default_access_log_buffer() -> usize {
    4096
}
fn drop_mode() -> HeaderMode {
    HeaderMode::Drop
}
fn default_schedule_delay() -> Duration {
    Duration::from_secs(1)
}

impl Config {
    /// Reads, parses and validates a configuration file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut config = Config::parse(&text, &origin)?;
        config.resolve_paths(path.parent().unwrap_or_else(|| Path::new(".")));
        config
            .validate()
            .map_err(|problems| ConfigError::Invalid { origin, problems })?;
        Ok(config)
    }

    /// Makes every relative file path in the configuration relative to `base`, the
    /// configuration file's directory.
    fn resolve_paths(&mut self, base: &Path) {
        let mut paths: Vec<&mut PathBuf> = Vec::new();
        paths.extend(self.providers.file.as_mut().map(|f| &mut f.directory));
        paths.extend(
            self.providers
                .kubernetes
                .as_mut()
                .and_then(|k| k.kubeconfig.as_mut()),
        );
        paths.extend(self.logs.access.file_path.as_mut());
        for tls in self
            .entry_points
            .values_mut()
            .filter_map(|e| e.tls.as_mut())
        {
            paths.extend([&mut tls.cert, &mut tls.key]);
            paths.extend(tls.client_ca.as_mut());
        }
        for tls in self
            .multicluster
            .children
            .values_mut()
            .filter_map(|c| c.tls.as_mut())
        {
            paths.extend(
                [&mut tls.ca, &mut tls.cert, &mut tls.key]
                    .into_iter()
                    .flatten(),
            );
        }
        for path in paths {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Parses YAML without validating; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // An empty file is a valid, all-defaults configuration.
        let text = if text.trim().is_empty() { "{}" } else { text };
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            ConfigError::Parse {
                origin: origin.to_owned(),
                key: if key == "." {
                    "(top level)".to_owned()
                } else {
                    key
                },
                message: err.into_inner().to_string(),
            }
        })
    }

    /// Checks what the schema cannot express; returns every problem, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: String| problems.push(Problem { key, message });

        if self.cluster.name.trim().is_empty() {
            problem("cluster.name".into(), "must not be empty".into());
        }
        if self.entry_points.is_empty() {
            problem(
                "entryPoints".into(),
                "at least one entrypoint is required".into(),
            );
        }
        let mut addresses: BTreeMap<SocketAddr, String> = BTreeMap::new();
        let mut claim = |key: String, address: &str, problem: &mut dyn FnMut(String, String)| {
            match address.parse::<SocketAddr>() {
                Ok(addr) => {
                    if let Some(other) = addresses.insert(addr, key.clone()) {
                        problem(key, format!("{address} is already used by {other}"));
                    }
                }
                Err(err) => problem(key, format!("invalid address {address:?} ({err}); expected host:port such as 0.0.0.0:8080")),
            }
        };
        for (name, entry_point) in &self.entry_points {
            let key = format!("entryPoints.{name}");
            if !is_dns_label(name) {
                problem(
                    key.clone(),
                    "entrypoint names must be lowercase letters, digits and '-' (at most 63)"
                        .into(),
                );
            }
            claim(format!("{key}.address"), &entry_point.address, &mut problem);
            for (field, value) in [
                ("read", entry_point.timeouts.read),
                ("write", entry_point.timeouts.write),
                ("idle", entry_point.timeouts.idle),
            ] {
                if value.is_zero() {
                    problem(
                        format!("{key}.timeouts.{field}"),
                        "must be greater than zero".into(),
                    );
                }
            }
            for (index, cidr) in entry_point.forwarded_headers.trusted_ips.iter().enumerate() {
                if !is_ip_or_cidr(cidr) {
                    problem(
                        format!("{key}.forwardedHeaders.trustedIPs[{index}]"),
                        format!("{cidr:?} is not an IP address or CIDR"),
                    );
                }
            }
        }
        claim("admin.address".into(), &self.admin.address, &mut problem);

        if let Some(kubernetes) = &self.providers.kubernetes {
            if self.providers.file.is_some() {
                problem(
                    "providers".into(),
                    "set one provider: file or kubernetes, not both".into(),
                );
            }
            for (index, namespace) in kubernetes.namespaces.iter().enumerate() {
                if !is_dns_label(namespace) {
                    problem(
                        format!("providers.kubernetes.namespaces[{index}]"),
                        format!("{namespace:?} is not a namespace name"),
                    );
                }
            }
            if kubernetes.leader_election.lease_duration < Duration::from_secs(1) {
                problem(
                    "providers.kubernetes.leaderElection.leaseDuration".into(),
                    "must be at least 1s".into(),
                );
            }
            if kubernetes.throttle > Duration::from_secs(60) {
                problem(
                    "providers.kubernetes.throttle".into(),
                    "must be at most 1m".into(),
                );
            }
        }
        if let Some(file) = &self.providers.file {
            if !file.directory.is_dir() {
                problem(
                    "providers.file.directory".into(),
                    format!("{} is not a directory", file.directory.display()),
                );
            }
        }
        for (field, value) in [
            ("connectTimeout", self.upstream.connect_timeout),
            ("readTimeout", self.upstream.read_timeout),
            ("writeTimeout", self.upstream.write_timeout),
            ("idleTimeout", self.upstream.idle_timeout),
        ] {
            if value.is_zero() {
                problem(
                    format!("upstream.{field}"),
                    "must be greater than zero".into(),
                );
            }
        }
        if self.upstream.passive_health_check.failures == 0 {
            problem(
                "upstream.passiveHealthCheck.failures".into(),
                "must be at least 1".into(),
            );
        }
        if self.shutdown.grace_period > Duration::from_secs(3600) {
            problem("shutdown.gracePeriod".into(), "must be at most 1h".into());
        }
        if self.shutdown.drain_delay > Duration::from_secs(600) {
            problem("shutdown.drainDelay".into(), "must be at most 10m".into());
        }
        self.validate_multicluster(&mut problem);
        self.tracing.validate(&mut problem);
        self.metrics.validate(&mut problem);
        self.logs.validate(&mut problem);

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn validate_multicluster(&self, problem: &mut dyn FnMut(String, String)) {
        let uplinks: Vec<&String> = self
            .entry_points
            .iter()
            .filter(|(_, e)| e.uplink)
            .map(|(name, _)| name)
            .collect();
        for name in &uplinks {
            if self.entry_points[*name].trace_context != TrustPolicy::Continue {
                problem(
                    format!("entryPoints.{name}.traceContext"),
                    "an uplink entrypoint continues its parent's trace; it must be continue".into(),
                );
            }
        }
        let multicluster = &self.multicluster;
        match self.role {
            Role::Child if uplinks.is_empty() => problem(
                "entryPoints".into(),
                "a child needs an uplink entrypoint (uplink: true) for its parents".into(),
            ),
            Role::Parent if multicluster.children.is_empty() => problem(
                "multicluster.children".into(),
                "a parent needs at least one child".into(),
            ),
            Role::Child => {}
            _ => {
                for name in &uplinks {
                    problem(
                        format!("entryPoints.{name}.uplink"),
                        format!(
                            "only a child serves parents (role is {})",
                            self.role.as_str()
                        ),
                    );
                }
            }
        }
        if self.role != Role::Parent && !multicluster.children.is_empty() {
            problem(
                "multicluster.children".into(),
                format!(
                    "only a parent forwards to children (role is {})",
                    self.role.as_str()
                ),
            );
        }
        for (name, child) in &multicluster.children {
            let key = format!("multicluster.children.{name}");
            if !is_dns_label(name) {
                problem(
                    key.clone(),
                    "child names must be lowercase letters, digits and '-' (at most 63)".into(),
                );
            }
            if !is_host_port(&child.address) {
                problem(
                    format!("{key}.address"),
                    format!(
                        "{:?} is not host:port, e.g. child-a.example.com:9443",
                        child.address
                    ),
                );
            }
            if let Some(tls) = &child.tls {
                if tls.cert.is_some() != tls.key.is_some() {
                    problem(
                        format!("{key}.tls"),
                        "cert and key must be set together (mutual TLS)".into(),
                    );
                }
            }
        }
        if !is_token(&multicluster.source_cluster_header) {
            problem(
                "multicluster.sourceClusterHeader".into(),
                format!(
                    "{:?} is not a valid header name",
                    multicluster.source_cluster_header
                ),
            );
        }
        if multicluster.max_hops == 0 {
            problem("multicluster.maxHops".into(), "must be at least 1".into());
        }
        let health = &multicluster.health_check;
        for (field, value) in [("interval", health.interval), ("timeout", health.timeout)] {
            if value.is_zero() {
                problem(
                    format!("multicluster.healthCheck.{field}"),
                    "must be greater than zero".into(),
                );
            }
        }
        for (field, value) in [
            ("healthCheck.unhealthyThreshold", health.unhealthy_threshold),
            ("healthCheck.healthyThreshold", health.healthy_threshold),
            (
                "passiveHealthCheck.failures",
                multicluster.passive_health_check.failures,
            ),
        ] {
            if value == 0 {
                problem(format!("multicluster.{field}"), "must be at least 1".into());
            }
        }
    }

    /// Worker threads per entrypoint after resolving `0` to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.server.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Tracing {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        if let Some(rate) = self.sample_rate {
            if !(0.0..=1.0).contains(&rate) {
                problem(
                    "tracing.sampleRate".into(),
                    format!("{rate} is not between 0.0 and 1.0"),
                );
            }
        }
        if let Some(name) = &self.trace_id_response_header {
            if !is_token(name) {
                problem(
                    "tracing.traceIdResponseHeader".into(),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
        for key in self.resource_attributes.keys() {
            if key.trim().is_empty() {
                problem(
                    "tracing.resourceAttributes".into(),
                    "attribute names must not be empty".into(),
                );
            }
        }
        self.otlp.validate("tracing.otlp", problem);
        let queue = &self.queue;
        if queue.max_size == 0 {
            problem(
                "tracing.queue.maxSize".into(),
                "must be greater than zero".into(),
            );
        }
        if queue.max_batch_size == 0 || queue.max_batch_size > queue.max_size {
            problem(
                "tracing.queue.maxBatchSize".into(),
                format!("must be between 1 and maxSize ({})", queue.max_size),
            );
        }
        if queue.schedule_delay.is_zero() {
            problem(
                "tracing.queue.scheduleDelay".into(),
                "must be greater than zero".into(),
            );
        }
    }
}

impl Metrics {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        self.otlp.transport().validate("metrics.otlp", problem);
        if self
            .otlp
            .push_interval
            .is_some_and(|i| i < Duration::from_secs(1))
        {
            problem(
                "metrics.otlp.pushInterval".into(),
                "must be at least 1s".into(),
            );
        }
    }
}

impl Logs {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        self.general.otlp.validate("logs.general.otlp", problem);
        let access = &self.access;
        access.otlp.validate("logs.access.otlp", problem);
        if access.buffer_size == 0 {
            problem(
                "logs.access.bufferSize".into(),
                "must be greater than zero".into(),
            );
        }
        for (index, range) in access.filters.status_codes.iter().enumerate() {
            if parse_status_range(range).is_none() {
                problem(
                    format!("logs.access.filters.statusCodes[{index}]"),
                    format!("{range:?} is not a status code (100-599) or a range such as 500-599"),
                );
            }
        }
        for name in access.fields.headers.names.keys() {
            if !is_token(name) {
                problem(
                    "logs.access.fields.headers.names".into(),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
    }
}

impl Otlp {
    /// The transport chosen by configuration, if one is enabled.
    pub fn http_enabled(&self) -> Option<&OtlpHttp> {
        self.http.as_ref().filter(|h| h.enabled)
    }

    pub fn grpc_enabled(&self) -> Option<&OtlpGrpc> {
        self.grpc.as_ref().filter(|g| g.enabled)
    }

    fn validate(&self, key: &str, problem: &mut dyn FnMut(String, String)) {
        if self.http_enabled().is_some() && self.grpc_enabled().is_some() {
            problem(key.into(), "enable one of http and grpc, not both".into());
        }
        let transports = [
            self.http
                .as_ref()
                .map(|h| ("http", h.endpoint.as_deref(), &h.headers, h.timeout, &h.tls)),
            self.grpc
                .as_ref()
                .map(|g| ("grpc", g.endpoint.as_deref(), &g.headers, g.timeout, &g.tls)),
        ];
        for (name, endpoint, headers, timeout, tls) in transports.into_iter().flatten() {
            let key = format!("{key}.{name}");
            if let Some(endpoint) = endpoint {
                let has_scheme =
                    endpoint.starts_with("http://") || endpoint.starts_with("https://");
                if (name == "http" && !has_scheme) || endpoint.contains(char::is_whitespace) {
                    problem(
                        format!("{key}.endpoint"),
                        format!("{endpoint:?} is not an http:// or https:// URL"),
                    );
                }
            }
            for header in headers.keys() {
                if !is_token(header) {
                    problem(
                        format!("{key}.headers"),
                        format!("{header:?} is not a valid header name"),
                    );
                }
            }
            if timeout.is_some_and(|t| t.is_zero()) {
                problem(format!("{key}.timeout"), "must be greater than zero".into());
            }
            if let Some(tls) = tls {
                if tls.cert.is_some() != tls.key.is_some() {
                    problem(
                        format!("{key}.tls"),
                        "cert and key must be given together".into(),
                    );
                }
            }
        }
        if let Some(grpc) = &self.grpc {
            if grpc.insecure
                && grpc
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("https://"))
            {
                problem(
                    format!("{key}.grpc.insecure"),
                    "contradicts the https:// endpoint".into(),
                );
            }
        }
    }
}

/// An HTTP token (RFC 9110), the grammar of header names.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `host:port` with a DNS name or an IP (IPv6 in brackets) and a non-zero port.
fn is_host_port(text: &str) -> bool {
    if text.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && host_ok
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_ip_or_cidr(text: &str) -> bool {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}
