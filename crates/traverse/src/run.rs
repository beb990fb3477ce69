//! `traverse run`: wiring and shutdown order.
//!
//! Pingora serves the entrypoints and the admin API on its own thread. This thread owns
//! the process lifecycle: it feeds configuration to the gateway and handles signals.
//! On SIGTERM it marks the gateway not ready, tells Pingora to stop accepting, waits for
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
use traverse_config::Config;
use traverse_provider::file::FileProvider;
use traverse_provider::{translate, Diagnostic, Diagnostics, RoutingTable, Severity, Snapshot};
use traverse_proxy::{entrypoint_service, AdminApi, GatewayState};
use traverse_telemetry::{settings, TracePipeline, TraceSettings};

/// Longest the trace export gets to flush at exit, even with the collector unreachable.
const TRACE_FLUSH_BOUND: Duration = Duration::from_secs(5);

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let (tracer, pipeline) = match tracing_settings(&config)? {
        Some(settings) => {
            tracing::info!(
                protocol = ?settings.exporter.protocol,
                endpoint = %settings.exporter.endpoint,
                sampler = ?settings.sampler,
                "tracing on"
            );
            let (tracer, pipeline) =
                TracePipeline::start(settings).context("starting trace export")?;
            (Some(tracer), Some(pipeline))
        }
        None => (None, None),
    };
    let state = GatewayState::with_tracer(tracer);
    let (stop_pingora, pingora_signal) = oneshot::channel();
    let server = build_server(&config, &state)?;
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
    let result = runtime.block_on(control(config, state, stop_pingora, pingora));
    // Do not wait for the Pingora thread: it sleeps out its own grace period, and
    // everything that mattered has drained by now.
    runtime.shutdown_background();
    if let Some(pipeline) = pipeline {
        if !pipeline.shutdown(TRACE_FLUSH_BOUND) {
            tracing::warn!(bound = ?TRACE_FLUSH_BOUND, "trace export did not finish flushing");
        }
    }
    result
}

/// Tracing resolved against the `OTEL_*` environment; every problem is reported.
pub fn tracing_settings(config: &Config) -> anyhow::Result<Option<TraceSettings>> {
    settings::resolve(config, &|name| std::env::var(name).ok()).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::anyhow!("invalid tracing configuration:\n{}", list.join("\n"))
    })
}

fn build_server(config: &Config, state: &Arc<GatewayState>) -> anyhow::Result<Server> {
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

    for (name, entry_point) in &config.entry_points {
        server.add_service(entrypoint_service(
            &conf,
            name,
            entry_point,
            &config.upstream,
            Arc::clone(state),
        ));
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
    stop_pingora: oneshot::Sender<ShutdownSignal>,
    pingora: std::thread::JoinHandle<()>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (stop_providers, providers_stopped) = tokio::sync::watch::channel(false);

    let entry_points: BTreeSet<String> = config.entry_points.keys().cloned().collect();
    let mut applier = Applier::new(Arc::clone(&state), entry_points);
    let providers = match config.providers.file.clone() {
        Some(file) if file.watch => {
            let mut stopped = providers_stopped.clone();
            Some(tokio::spawn(FileProvider::new(&file.directory).watch(
                file.debounce,
                move |snapshot, diagnostics| applier.apply(&snapshot, diagnostics),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )))
        }
        Some(file) => {
            let (snapshot, diagnostics) = FileProvider::new(&file.directory).load();
            applier.apply(&snapshot, diagnostics);
            None
        }
        None => {
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

/// Turns provider snapshots into published routing tables, logging each new problem once.
struct Applier {
    state: Arc<GatewayState>,
    entry_points: BTreeSet<String>,
    reported: HashSet<Diagnostic>,
}

impl Applier {
    fn new(state: Arc<GatewayState>, entry_points: BTreeSet<String>) -> Self {
        Applier {
            state,
            entry_points,
            reported: HashSet::new(),
        }
    }

    fn apply(&mut self, snapshot: &Snapshot, load_diagnostics: Diagnostics) {
        let RoutingTable {
            routes,
            diagnostics: translated,
        } = translate(snapshot, &self.entry_points);
        let mut diagnostics = load_diagnostics;
        diagnostics.extend(translated);
        diagnostics.normalize();

        let current: HashSet<Diagnostic> = diagnostics.iter().cloned().collect();
        for diagnostic in diagnostics.iter().filter(|d| !self.reported.contains(*d)) {
            match diagnostic.severity {
                Severity::Error => tracing::error!("{diagnostic}"),
                Severity::Warning => tracing::warn!("{diagnostic}"),
            }
        }
        for resolved in self.reported.difference(&current) {
            tracing::info!("resolved: {resolved}");
        }
        self.reported = current;

        let count = routes.len();
        self.state.publish(RoutingTable {
            routes,
            diagnostics,
        });
        tracing::info!(
            routes = count,
            problems = self.reported.len(),
            generation = self.state.generation(),
            "configuration applied"
        );
    }
}
