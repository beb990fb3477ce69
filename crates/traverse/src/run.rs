//! `traverse run`: wiring and shutdown order.
//!
//! Pingora serves the entrypoints and the admin API on its own thread. This thread owns
//! the process lifecycle: it feeds configuration to the gateway and handles signals.
//! On SIGTERM it marks the gateway not ready (and draining, for parents), keeps accepting
//! for `shutdown.drainDelay`, tells Pingora to stop accepting, waits for
//! in-flight requests to finish — at most the configured grace period — and exits 0.
//! (Pingora's own graceful path sleeps its whole grace period even when nothing is in
//! flight, so the drain is driven from here instead.)

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use tokio::sync::oneshot;
use traverse_config::{Config, MetricFamilies};
use traverse_k8s::{leader, KubernetesProvider, StatusWriter};
use traverse_provider::file::FileProvider;
use traverse_provider::tls::TlsTranslator;
use traverse_provider::{
    translate, Diagnostic, Diagnostics, EntryPoints, RoutingTable, Severity, Snapshot, Target,
};
use traverse_proxy::multicluster;
use traverse_proxy::{
    entrypoint_service, AdminApi, Certificates, GatewayState, Telemetry, Topology,
};
use traverse_telemetry::access_log::{AccessLogWriter, AccessLogger};
use traverse_telemetry::logs::{LogPipeline, LogSink};
use traverse_telemetry::metrics::push::MetricsPush;
use traverse_telemetry::metrics::{Metrics, MetricsOptions, StatsSource};
use traverse_telemetry::{settings, KeyValue, TelemetrySettings, TracePipeline};

/// Longest the telemetry outputs get to flush at exit, together, even with the
/// collector unreachable.
const TELEMETRY_FLUSH_BOUND: Duration = Duration::from_secs(5);

/// Attaches the gateway's own logs to an OTLP log pipeline.
pub type AttachLogs = Box<dyn FnOnce(Arc<LogSink>) + Send>;

pub fn run(path: &Path, attach_logs: AttachLogs) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let settings = telemetry_settings(&config)?;
    let (state, outputs) = start_telemetry(&config, settings, attach_logs)?;
    let (stop_pingora, pingora_signal) = oneshot::channel();
    let certificates = Certificates::new().map_err(anyhow::Error::msg)?;
    let server = build_server(&config, &state, &certificates)?;
    let pingora = std::thread::Builder::new()
        .name("pingora".into())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(ChannelSignal(Mutex::new(Some(pingora_signal)))),
            })
        })
        .context("starting the data plane thread")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the control runtime")?;
    let result = runtime.block_on(control(config, state, certificates, stop_pingora, pingora));
    // Do not wait for the Pingora thread: it sleeps out its own grace period, and
    // everything that mattered has drained by now.
    runtime.shutdown_background();
    outputs.shutdown(Instant::now() + TELEMETRY_FLUSH_BOUND);
    result
}

/// The threads that take telemetry off the request path, stopped after the drain.
#[derive(Default)]
struct TelemetryOutputs {
    traces: Option<TracePipeline>,
    access_log: Option<AccessLogWriter>,
    access_otlp: Option<LogPipeline>,
    general_otlp: Option<LogPipeline>,
    metrics_push: Option<MetricsPush>,
}

impl TelemetryOutputs {
    /// Flushes every output before `deadline`, access records before their OTLP pipeline.
    fn shutdown(self, deadline: Instant) {
        let left = || deadline.saturating_duration_since(Instant::now());
        let flushed = [
            ("traces", self.traces.map(|p| p.shutdown(left()))),
            ("access log", self.access_log.map(|w| w.shutdown(left()))),
            (
                "access log export",
                self.access_otlp.map(|p| p.shutdown(left())),
            ),
            (
                "metrics push",
                self.metrics_push.map(|p| p.shutdown(left())),
            ),
        ];
        let unfinished: Vec<&str> = flushed
            .iter()
            .filter(|(_, flushed)| *flushed == Some(false))
            .map(|(name, _)| *name)
            .collect();
        if !unfinished.is_empty() {
            tracing::warn!(bound = ?TELEMETRY_FLUSH_BOUND, ?unfinished, "telemetry did not finish flushing");
        }
        // Last: the lines above still go out over OTLP.
        if let Some(pipeline) = self.general_otlp {
            let _ = pipeline.shutdown(left().max(Duration::from_millis(500)));
        }
    }
}

/// Starts every configured telemetry output and the state the data plane reports to.
fn start_telemetry(
    config: &Config,
    settings: TelemetrySettings,
    attach_logs: AttachLogs,
) -> anyhow::Result<(Arc<GatewayState>, TelemetryOutputs)> {
    let mut outputs = TelemetryOutputs::default();
    let mut sources: Vec<(&'static str, StatsSource)> = Vec::new();
    if let Some(logs) = settings.general_logs {
        let (sink, pipeline) =
            LogPipeline::start(logs, "traverse-otlp-logs").context("starting log export")?;
        let stats = Arc::clone(&sink);
        sources.push(("logs", Arc::new(move || stats.stats())));
        attach_logs(sink);
        outputs.general_otlp = Some(pipeline);
    }
    let tracer = match settings.traces {
        Some(traces) => {
            tracing::info!(
                protocol = ?traces.exporter.protocol,
                endpoint = %traces.exporter.endpoint,
                sampler = ?traces.sampler,
                "tracing on"
            );
            let (tracer, pipeline) =
                TracePipeline::start(traces).context("starting trace export")?;
            let stats = Arc::clone(&tracer);
            sources.push(("spans", Arc::new(move || stats.stats().snapshot())));
            outputs.traces = Some(pipeline);
            Some(tracer)
        }
        None => None,
    };

    let access = &config.logs.access;
    let access_log = if access.enabled {
        let sink = match settings.access_logs {
            Some(logs) => {
                tracing::info!(endpoint = %logs.exporter.endpoint, "access log export on");
                let (sink, pipeline) = LogPipeline::start(logs, "traverse-otlp-access")
                    .context("starting access log export")?;
                let stats = Arc::clone(&sink);
                sources.push(("access_logs", Arc::new(move || stats.stats())));
                outputs.access_otlp = Some(pipeline);
                Some(sink)
            }
            None => None,
        };
        let (logger, writer) =
            AccessLogger::start(access, sink).with_context(|| match &access.file_path {
                Some(path) => format!("opening the access log {}", path.display()),
                None => "starting the access log".to_owned(),
            })?;
        outputs.access_log = Some(writer);
        Some(logger)
    } else {
        None
    };

    let prometheus = config
        .metrics
        .prometheus
        .enabled
        .then(|| config.metrics.prometheus.families());
    let pushed = settings.metrics_push.as_ref().map(|p| p.families);
    // Each family is recorded when at least one output carries it.
    let metrics = prometheus
        .into_iter()
        .chain(pushed)
        .reduce(MetricFamilies::union)
        .map(|families| {
            Metrics::new(MetricsOptions {
                resource: settings.resource,
                families,
                telemetry: sources,
            })
        });
    let state = GatewayState::with(
        Telemetry {
            tracer,
            metrics: metrics.clone(),
            access_log,
            prometheus,
        },
        Topology::new(config).map_err(anyhow::Error::msg)?,
    );
    if let Some(metrics) = metrics {
        observe_servers(&metrics, &state);
        observe_unresolved(&metrics, &state);
        observe_connections(&metrics, &state);
        observe_mirrors(&metrics, &state);
        if let Some(children) = &state.topology().children {
            observe_children(&metrics, children);
        }
        if let Some(push) = settings.metrics_push {
            tracing::info!(endpoint = %push.exporter.endpoint, interval = ?push.interval, "metrics push on");
            outputs.metrics_push =
                Some(MetricsPush::start(metrics, push).context("starting metrics push")?);
        }
    }
    Ok((state, outputs))
}

/// `traverse.service.server.up`: 1 for each endpoint in rotation (not ejected, not failing
/// its health check), per service, read from the routing table in force at each collection.
fn observe_servers(metrics: &Metrics, state: &Arc<GatewayState>) {
    let state = Arc::downgrade(state);
    metrics.observe_gauge(
        "traverse.service.server.up",
        "Whether an upstream endpoint is in rotation (1) or not: weight 0, passively ejected or failing its active health check (0), per service",
        move || {
            let Some(state) = state.upgrade() else {
                return Vec::new();
            };
            let routing = state.routing();
            let mut servers = BTreeSet::new();
            for route in routing.routes.routes() {
                if let Target::Services(services) = &route.value.target {
                    for (backend, _) in services.backends() {
                        for (endpoint, weight) in backend.servers.items() {
                            let up = *weight > 0 && traverse_proxy::in_rotation(endpoint);
                            servers.insert((
                                Arc::clone(&backend.name),
                                backend.scheme.as_str(),
                                endpoint.address,
                                up,
                            ));
                        }
                    }
                }
            }
            servers
                .into_iter()
                .map(|(service, scheme, address, up)| {
                    (
                        i64::from(up),
                        vec![
                            KeyValue::new("service", service),
                            KeyValue::new("url", format!("{scheme}://{address}")),
                        ],
                    )
                })
                .collect()
        },
    );
}

/// Per entrypoint: `traverse.entrypoint.connections` open now, and the totals of
/// connections refused over `maxConnections` and closed for a request head that missed
/// its deadline.
fn observe_connections(metrics: &Metrics, state: &Arc<GatewayState>) {
    use std::sync::atomic::Ordering::Relaxed;
    type Field = fn(&traverse_proxy::ConnectionStats) -> u64;
    let series = |state: &std::sync::Weak<GatewayState>, field: Field| {
        let Some(state) = state.upgrade() else {
            return Vec::new();
        };
        state
            .all_connection_stats()
            .into_iter()
            .map(|(name, stats)| (field(&stats), vec![KeyValue::new("entrypoint", name)]))
            .collect::<Vec<_>>()
    };
    let weak = Arc::downgrade(state);
    metrics.observe_gauge(
        "traverse.entrypoint.connections",
        "Client connections open now, per entrypoint",
        move || {
            series(&weak, |s| s.open.load(Relaxed))
                .into_iter()
                .map(|(value, attributes)| (value as i64, attributes))
                .collect()
        },
    );
    for (name, description, field) in [
        (
            "traverse.entrypoint.connections.refused",
            "Connections closed at once because the entrypoint's maxConnections were open",
            (|s| s.refused.load(Relaxed)) as Field,
        ),
        (
            "traverse.entrypoint.header_timeouts",
            "Connections closed because a request head did not arrive within timeouts.read",
            |s| s.header_timeouts.load(Relaxed),
        ),
    ] {
        let weak = Arc::downgrade(state);
        metrics.observe_counter(name, description, move || series(&weak, field));
    }
}

/// `traverse.service.mirror.requests`: copies of requests owed to mirrors, by what became
/// of them (`answered`, `failed`, `dropped` over the in-flight bound, `skipped` for a body
/// over `maxBodySize` or not read to its end).
fn observe_mirrors(metrics: &Metrics, state: &Arc<GatewayState>) {
    let state = Arc::downgrade(state);
    metrics.observe_counter(
        "traverse.service.mirror.requests",
        "Copies of requests for mirroring services' mirrors, by result",
        move || {
            let Some(state) = state.upgrade() else {
                return Vec::new();
            };
            state
                .mirror_stats()
                .totals()
                .into_iter()
                .map(|(result, total)| (total, vec![KeyValue::new("result", result)]))
                .collect()
        },
    );
}

/// `traverse.routes.unresolved`: IngressRoutes with a reference that does not resolve
/// (they answer 503 for it), from the routing table in force.
fn observe_unresolved(metrics: &Metrics, state: &Arc<GatewayState>) {
    let state = Arc::downgrade(state);
    metrics.observe_gauge(
        "traverse.routes.unresolved",
        "IngressRoutes with an unresolved reference (Service, port, Middleware or Uplink)",
        move || {
            let Some(state) = state.upgrade() else {
                return Vec::new();
            };
            let routing = state.routing();
            let objects: BTreeSet<_> = routing
                .diagnostics
                .iter()
                .filter(|d| d.reason.is_unresolved_reference())
                .filter_map(|d| d.object.as_ref())
                .filter(|o| o.kind == "IngressRoute")
                .collect();
            vec![(objects.len() as i64, Vec::new())]
        },
    );
}

/// `traverse.uplink.child.up`: 1 for each child taking new requests, 0 for one that is
/// unhealthy, ejected, draining or not yet heard from.
fn observe_children(metrics: &Metrics, children: &Arc<multicluster::Children>) {
    let children = Arc::downgrade(children);
    metrics.observe_gauge(
        "traverse.uplink.child.up",
        "Whether a child gateway takes new requests (1) or not (0)",
        move || {
            let Some(children) = children.upgrade() else {
                return Vec::new();
            };
            children
                .view()
                .into_iter()
                .map(|child| {
                    let cluster = child.advertisement.map(|a| a.cluster).unwrap_or_default();
                    (
                        i64::from(child.available),
                        vec![
                            KeyValue::new("child", child.name),
                            KeyValue::new("cluster", cluster),
                        ],
                    )
                })
                .collect()
        },
    );
}

/// Telemetry resolved against the `OTEL_*` environment; every problem is reported.
pub fn telemetry_settings(config: &Config) -> anyhow::Result<TelemetrySettings> {
    let settings =
        settings::resolve(config, &|name| std::env::var(name).ok()).map_err(|problems| {
            let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
            anyhow::anyhow!("invalid telemetry configuration:\n{}", list.join("\n"))
        })?;
    Ok(settings)
}

fn build_server(
    config: &Config,
    state: &Arc<GatewayState>,
    certificates: &Arc<Certificates>,
) -> anyhow::Result<Server> {
    let grace = config.shutdown.grace_period.as_secs();
    let conf = ServerConf {
        threads: config.worker_threads(),
        upstream_keepalive_pool_size: config.upstream.keepalive_pool_size,
        // The drain is bounded by this process (see the module docs); these only keep
        // Pingora from cutting it short.
        grace_period_seconds: Some(grace + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf = Arc::clone(&server.configuration);

    for name in config.entry_points.keys() {
        server.add_boxed_service(
            entrypoint_service(&conf, name, config, Arc::clone(state), certificates)
                .map_err(anyhow::Error::msg)?,
        );
    }

    let mut admin = Service::new("admin".to_owned(), AdminApi::new(Arc::clone(state)));
    admin.add_tcp(&config.admin.address);
    admin.threads = Some(1);
    server.add_service(admin);
    Ok(server)
}

/// Hands Pingora the shutdown decided by [`control`].
struct ChannelSignal(Mutex<Option<oneshot::Receiver<ShutdownSignal>>>);

#[async_trait]
impl ShutdownSignalWatch for ChannelSignal {
    async fn recv(&self) -> ShutdownSignal {
        let receiver = self.0.lock().ok().and_then(|mut r| r.take());
        match receiver {
            Some(receiver) => receiver.await.unwrap_or(ShutdownSignal::FastShutdown),
            None => std::future::pending().await,
        }
    }
}

async fn control(
    config: Config,
    state: Arc<GatewayState>,
    certificates: Arc<Certificates>,
    stop_pingora: oneshot::Sender<ShutdownSignal>,
    pingora: std::thread::JoinHandle<()>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (stop_providers, providers_stopped) = tokio::sync::watch::channel(false);

    if let Some(children) = &state.topology().children {
        multicluster::follow::start(children, &config.multicluster.health_check);
    }
    traverse_proxy::health_check::start(&state);
    let mut applier = Applier::new(Arc::clone(&state), certificates, entry_points(&config));
    let kubernetes = match &config.providers.kubernetes {
        Some(settings) => Some((
            KubernetesProvider::connect(settings)
                .await
                .context("starting the Kubernetes provider")?,
            lease_settings(settings),
        )),
        None => None,
    };
    let providers = match (config.providers.file.clone(), kubernetes) {
        (_, Some((kubernetes, lease))) => {
            let leading = leader::start(kubernetes.client(), lease);
            applier.applied = Some(start_status_writer(
                StatusWriter::new(kubernetes.client()),
                leading,
            ));
            let mut stopped = providers_stopped.clone();
            Some(tokio::spawn(kubernetes.watch(
                move |snapshot, diagnostics| applier.apply(&snapshot, diagnostics),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )))
        }
        (Some(file), None) if file.watch => {
            let mut stopped = providers_stopped.clone();
            Some(tokio::spawn(
                FileProvider::new(&file.directory)
                    .allow_cross_namespace(file.allow_cross_namespace)
                    .native_lb_by_default(file.native_lb_by_default)
                    .watch(
                        file.debounce,
                        move |snapshot, diagnostics| applier.apply(&snapshot, diagnostics),
                        async move {
                            let _ = stopped.wait_for(|stop| *stop).await;
                        },
                    ),
            ))
        }
        (Some(file), None) => {
            let (snapshot, diagnostics) = FileProvider::new(&file.directory)
                .allow_cross_namespace(file.allow_cross_namespace)
                .native_lb_by_default(file.native_lb_by_default)
                .load();
            applier.apply(&snapshot, diagnostics);
            None
        }
        (None, None) => {
            tracing::warn!("no provider configured: every request answers 404");
            applier.apply(&Snapshot::default(), Diagnostics::default());
            None
        }
    };
    tracing::info!(
        role = config.role.as_str(),
        cluster = %config.cluster.name,
        entrypoints = ?config.entry_points.iter().map(|(n, e)| format!("{n}={}", e.address)).collect::<Vec<_>>(),
        admin = %config.admin.address,
        "traverse started"
    );

    // Pingora exiting on its own (e.g. a listener failed to bind) ends the process.
    let pingora_exited = tokio::task::spawn_blocking(move || pingora.join());
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {
            tracing::info!("SIGINT: exiting now");
            let _ = stop_pingora.send(ShutdownSignal::FastShutdown);
            return Ok(());
        }
        _ = pingora_exited => anyhow::bail!("the data plane stopped unexpectedly"),
    }

    let grace = config.shutdown.grace_period;
    tracing::info!(grace_period = ?grace, in_flight = state.in_flight(), "SIGTERM: draining");
    state.start_draining();
    let delay = config.shutdown.drain_delay;
    if !delay.is_zero() {
        // Readiness fails and parents see the drain; listeners stay open meanwhile, so
        // whoever has not noticed yet is still served.
        tracing::info!(drain_delay = ?delay, "still accepting while traffic moves away");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = interrupt.recv() => {
                tracing::info!("SIGINT: exiting now");
                let _ = stop_pingora.send(ShutdownSignal::FastShutdown);
                return Ok(());
            }
        }
    }
    let _ = stop_pingora.send(ShutdownSignal::GracefulTerminate);
    let _ = stop_providers.send(true);
    if let Some(watcher) = providers {
        let _ = watcher.await;
    }

    let deadline = Instant::now() + grace;
    while state.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match state.in_flight() {
        0 => tracing::info!("drained; exiting"),
        left => tracing::warn!(
            in_flight = left,
            "grace period over; exiting with requests still in flight"
        ),
    }
    Ok(())
}

/// Writes conditions and Events for each applied snapshot, latest first: a writer that
/// falls behind skips to the newest state rather than replaying old ones.
/// Only while this replica leads; on becoming leader it writes the current state.
fn start_status_writer(
    mut writer: StatusWriter,
    mut leading: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::watch::Sender<Option<Applied>> {
    let (sender, mut receiver) = tokio::sync::watch::channel(None::<Applied>);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = receiver.changed() => if changed.is_err() { break },
                changed = leading.changed() => if changed.is_err() { break },
            }
            if !*leading.borrow_and_update() {
                // A later leader compares against what the objects carry, not this cache.
                writer.forget();
                continue;
            }
            let latest = receiver.borrow_and_update().clone();
            if let Some(applied) = latest {
                writer.write(&applied.0, &applied.1).await;
            }
        }
    });
    sender
}

/// The Lease of `settings`, held under this pod's name.
fn lease_settings(settings: &traverse_config::KubernetesProvider) -> leader::LeaseSettings {
    let election = &settings.leader_election;
    let pod = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME"));
    leader::LeaseSettings {
        namespace: election
            .namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into()),
        name: election.name.clone(),
        duration: election.lease_duration,
        identity: format!(
            "{}-{}",
            pod.unwrap_or_else(|_| "traverse".into()),
            std::process::id()
        ),
    }
}

/// The configured entrypoints, which of them serve parents and which terminate TLS.
pub fn entry_points(config: &Config) -> EntryPoints {
    EntryPoints::new(
        config
            .entry_points
            .iter()
            .map(|(name, entry_point)| (name.clone(), entry_point.uplink)),
    )
    .with_tls(
        config
            .entry_points
            .iter()
            .filter(|(_, entry_point)| entry_point.tls.is_some())
            .map(|(name, _)| name.clone()),
    )
}

/// Turns provider snapshots into published routing tables, logging each new problem once.
struct Applier {
    state: Arc<GatewayState>,
    /// The TLS entrypoints' certificates, and the translator that keeps each Secret's
    /// last good one.
    certificates: Arc<Certificates>,
    tls: TlsTranslator,
    entry_points: EntryPoints,
    reported: HashSet<Diagnostic>,
    /// Receives every applied snapshot with its diagnostics (the status writer).
    applied: Option<tokio::sync::watch::Sender<Option<Applied>>>,
}

/// A snapshot as applied, with every diagnostic of loading and translating it.
type Applied = Arc<(Snapshot, Diagnostics)>;

impl Applier {
    fn new(
        state: Arc<GatewayState>,
        certificates: Arc<Certificates>,
        entry_points: EntryPoints,
    ) -> Self {
        Applier {
            state,
            certificates,
            tls: TlsTranslator::default(),
            entry_points,
            reported: HashSet::new(),
            applied: None,
        }
    }

    fn apply(&mut self, snapshot: &Snapshot, load_diagnostics: Diagnostics) {
        let RoutingTable {
            routes,
            diagnostics: translated,
            uplinks,
        } = translate(snapshot, &self.entry_points);
        let (certificates, tls_diagnostics) = self.tls.translate(snapshot, &self.entry_points);
        let mut diagnostics = load_diagnostics;
        diagnostics.extend(translated);
        diagnostics.extend(tls_diagnostics);
        diagnostics.normalize();

        let current: HashSet<Diagnostic> = diagnostics.iter().cloned().collect();
        // Each new problem is shown once, at its field's line when a file holds it.
        let mut new: Vec<Diagnostic> = diagnostics
            .iter()
            .filter(|d| !self.reported.contains(*d))
            .cloned()
            .collect();
        traverse_provider::file::place_on_lines(&mut new);
        for diagnostic in &new {
            match diagnostic.severity {
                Severity::Error => tracing::error!("{diagnostic}"),
                Severity::Warning => tracing::warn!("{diagnostic}"),
            }
        }
        for resolved in self.reported.difference(&current) {
            tracing::info!("resolved: {resolved}");
        }
        self.reported = current;

        if let Some(metrics) = self.state.metrics() {
            // Broken objects were skipped and the rest applied: still a failed reload.
            let clean = !self.reported.iter().any(|d| d.severity == Severity::Error);
            metrics.config_reloaded(clean);
        }
        let count = routes.len();
        if let Some(applied) = &self.applied {
            applied.send_replace(Some(Arc::new((snapshot.clone(), diagnostics.clone()))));
        }
        // Certificates first: a route that needs a new certificate finds it served.
        self.certificates.publish(certificates);
        self.state.publish(RoutingTable {
            routes,
            diagnostics,
            uplinks,
        });
        tracing::info!(
            routes = count,
            problems = self.reported.len(),
            generation = self.state.generation(),
            "configuration applied"
        );
    }
}
