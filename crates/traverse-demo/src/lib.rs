//! `traverse demo`: a parent gateway, two child gateways in other clusters, a sample app
//! behind each child and an OTLP receiver, all on this machine; then a few requests
//! through the parent (one while a child is down) and each request's trace printed as
//! a waterfall, one trace across clusters.
//!
//! The gateways are this executable (`traverse run`) in child processes, configured by
//! `examples/multicluster` copied to a temporary directory; the apps and the receiver
//! run in this process. Everything is stopped and the directory removed on exit.
//!
//! The `traverse` binary calls [`run`]; the gateways are started from
//! `std::env::current_exe()`, so this runs only inside that executable.

mod app;
pub mod http;
mod processes;
mod receiver;
mod topology;
mod waterfall;

use std::collections::{BTreeSet, HashSet};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::StatusCode;

use processes::Process;
use receiver::Receiver;
use topology::Topology;
use waterfall::{Kind, Span};

/// Longest wait for the gateways to start and the parent to reach every child.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the spans of the demo's requests to arrive.
const SPANS_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a gateway gets to exit after SIGINT (it flushes its spans) before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(6);
/// A trace to which nothing was added for this long is printed in follow mode.
const SETTLED: Duration = Duration::from_secs(1);

/// Paths of the requests sent while every child is up, and after one is stopped.
const REQUESTS: [&str; 4] = ["/", "/hello", "/orders/42", "/status"];
const REQUESTS_AFTER_STOP: [&str; 2] = ["/", "/hello"];

pub struct Options {
    /// Exit after printing the traces instead of running until Ctrl-C.
    pub once: bool,
    /// Read the example files from this directory instead of the embedded copies.
    pub examples: Option<PathBuf>,
}

/// Runs the demo; exit 0 after Ctrl-C/SIGTERM or (with `--once`) when every request
/// behaved, 1 otherwise.
pub fn run(options: Options) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("traverse demo: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut demo = match Demo::prepare(&options) {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("traverse demo: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        tokio::select! {
            outcome = demo.play() => outcome,
            _ = interrupt.recv() => Ok(Outcome::Interrupted),
            _ = terminate.recv() => Ok(Outcome::Interrupted),
        }
    });
    if matches!(outcome, Ok(Outcome::Interrupted)) {
        println!("\nStopping the gateways…");
    }
    // While the runtime still serves the receiver, so the gateways' last spans land.
    demo.stop_gateways();
    runtime.shutdown_timeout(Duration::from_millis(200));

    match outcome {
        Ok(Outcome::Interrupted) | Ok(Outcome::Done { problems: 0 }) => {
            demo.remove_directory();
            ExitCode::SUCCESS
        }
        Ok(Outcome::Done { problems }) => {
            eprintln!("traverse demo: {problems} check(s) failed (see above)");
            demo.remove_directory();
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("traverse demo: {error:#}");
            demo.keep_directory();
            ExitCode::FAILURE
        }
    }
}

enum Outcome {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Every step ran (`--once`); `problems` checks failed.
    Done { problems: usize },
}

/// What one demo request got back.
struct Sent {
    path: &'static str,
    status: Option<StatusCode>,
    /// The cluster whose app answered.
    cluster: Option<String>,
    trace_id: Option<String>,
    elapsed: Duration,
    /// A transport error, or the start of an unexpected body.
    detail: String,
}

struct Demo {
    directory: Option<tempfile::TempDir>,
    topology: Topology,
    children: Vec<Process>,
    parent: Option<Process>,
    once: bool,
    colour: bool,
}

impl Demo {
    /// Writes the example files to a new temporary directory and reads the topology.
    fn prepare(options: &Options) -> anyhow::Result<Demo> {
        let directory = tempfile::Builder::new()
            .prefix("traverse-demo-")
            .tempdir()
            .context("creating a temporary directory")?;
        topology::write_examples(options.examples.as_deref(), directory.path())?;
        std::fs::create_dir_all(directory.path().join("logs"))
            .context("creating the log directory")?;
        let topology = Topology::read(directory.path())?;
        Ok(Demo {
            directory: Some(directory),
            topology,
            children: Vec::new(),
            parent: None,
            once: options.once,
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        })
    }

    fn path(&self) -> &Path {
        self.directory
            .as_ref()
            .map_or(Path::new("."), tempfile::TempDir::path)
    }

    async fn play(&mut self) -> anyhow::Result<Outcome> {
        let t = self.topology.clone();
        self.print_topology();

        let (receiver, _) = Receiver::start(t.otlp).await?;
        for child in &t.children {
            for address in &child.apps {
                let identity = app::Identity {
                    app: "whoami".into(),
                    cluster: child.cluster.clone(),
                    gateway: child.name.clone(),
                };
                app::start(*address, identity).await?;
            }
        }
        for (address, what) in t.gateway_listeners() {
            ensure_free(address, &what)?;
        }
        let executable = std::env::current_exe().context("locating the traverse executable")?;
        for child in &t.children {
            let process = self.spawn(&executable, &child.name, &child.config)?;
            self.children.push(process);
        }
        let parent = self.spawn(&executable, "parent", &t.parent.config)?;
        self.parent = Some(parent);

        let started = Instant::now();
        self.wait_ready().await?;
        println!(
            "Ready in {:.1} s: the parent routes to {}.\n",
            started.elapsed().as_secs_f64(),
            t.children
                .iter()
                .map(|c| format!("{} ({})", c.cluster, c.name))
                .collect::<Vec<_>>()
                .join(" and ")
        );

        let mut problems = Vec::new();
        let mut sent = Vec::new();
        println!(
            "{}",
            self.bold(&format!(
                "Requests through the parent (http://{}):",
                t.parent.entry_point.1
            ))
        );
        for path in REQUESTS {
            let result = self.request(path).await;
            self.print_request(sent.len() + 1, &result);
            if result.status != Some(StatusCode::OK) {
                problems.push(format!("GET {path} was not answered 200"));
            }
            sent.push(result);
        }
        // The stopped child's spans must be in before it is killed.
        let deadline = Instant::now() + SPANS_TIMEOUT;
        for result in &sent {
            if let Some(id) = &result.trace_id {
                let expected = result.cluster.clone();
                receiver
                    .wait_for(id, deadline, |spans| {
                        complete(spans, &t.parent.cluster, expected.as_deref())
                    })
                    .await;
            }
        }

        let before_stop = sent.len();
        if let (Some(victim), Some(process)) = (t.children.first(), self.children.first_mut()) {
            process.kill();
            println!(
                "\nStopped {} ({}) with SIGKILL: the parent has to fail over to the other child.",
                victim.name, victim.cluster
            );
            for path in REQUESTS_AFTER_STOP {
                let result = self.request(path).await;
                self.print_request(sent.len() + 1, &result);
                if result.status != Some(StatusCode::OK) {
                    problems.push(format!(
                        "GET {path} after stopping {} was not answered 200",
                        victim.name
                    ));
                } else if result.cluster.as_deref() == Some(victim.cluster.as_str()) {
                    problems.push(format!(
                        "GET {path} was answered by the stopped {}",
                        victim.name
                    ));
                }
                sent.push(result);
            }
        }

        println!(
            "\n{}\n",
            self.bold("Traces, as the gateways exported them:")
        );
        let deadline = Instant::now() + SPANS_TIMEOUT;
        let mut traces = Vec::new();
        for result in &sent {
            let Some(id) = &result.trace_id else {
                continue;
            };
            let expected = result.cluster.clone();
            let (spans, whole) = receiver
                .wait_for(id, deadline, |spans| {
                    complete(spans, &t.parent.cluster, expected.as_deref())
                })
                .await;
            traces.push((id.clone(), spans, whole));
        }
        // Spans ended together travel together; give stragglers one export interval.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (index, (id, _, whole)) in traces.iter().enumerate() {
            if index == before_stop {
                println!(
                    "(after stopping {})\n",
                    t.children.first().map_or("", |c| c.name.as_str())
                );
            }
            let spans = receiver.trace(id);
            if spans.is_empty() {
                println!("trace {id}: no spans arrived within {SPANS_TIMEOUT:?}\n");
                problems.push(format!("no spans of trace {id}"));
                continue;
            }
            print!("{}", waterfall::render(&spans, self.colour));
            if !whole {
                println!("  (incomplete: only these spans arrived within {SPANS_TIMEOUT:?})");
                problems.push(format!("trace {id} is incomplete"));
            }
            println!();
        }
        for result in sent
            .iter()
            .filter(|r| r.status.is_some() && r.trace_id.is_none())
        {
            problems.push(format!(
                "GET {} had no {} header",
                result.path, t.parent.trace_id_header
            ));
        }
        if !problems.is_empty() {
            println!("{}", self.bold("Not as expected:"));
            for problem in &problems {
                println!("  - {problem}");
            }
            println!();
        }
        if self.once {
            return Ok(Outcome::Done {
                problems: problems.len(),
            });
        }

        if let (Some(victim), Some(process)) = (t.children.first(), self.children.first_mut()) {
            process.restart()?;
            println!(
                "Started {} again; the parent takes it back once it advertises its uplinks.",
                victim.name
            );
        }
        self.print_hints();
        let mut printed: HashSet<String> = receiver.trace_ids().into_iter().collect();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            for (id, spans) in receiver.settled(SETTLED, &printed) {
                // Only requests through the parent (not health checks or advertisements).
                if spans
                    .iter()
                    .any(|s| s.kind == Kind::Server && s.cluster == t.parent.cluster)
                {
                    println!("{}", waterfall::render(&spans, self.colour));
                }
                printed.insert(id);
            }
        }
    }

    fn spawn(&self, executable: &Path, name: &str, config: &Path) -> anyhow::Result<Process> {
        let log = self.path().join("logs").join(format!("{name}.log"));
        Process::spawn(
            name,
            executable,
            &[
                "run".into(),
                "--config".into(),
                config.as_os_str().to_owned(),
            ],
            self.path(),
            &log,
        )
    }

    /// Each child's and then the parent's `/readyz`, then requests through the parent
    /// until every child's cluster has answered one.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let admins: Vec<SocketAddr> = self.topology.children.iter().map(|c| c.admin).collect();
        for (process, admin) in self.children.iter_mut().zip(admins) {
            wait_admin_ready(process, admin, deadline).await?;
        }
        let admin = self.topology.parent.admin;
        if let Some(parent) = self.parent.as_mut() {
            wait_admin_ready(parent, admin, deadline).await?;
        }

        let entry = self.topology.parent.entry_point.1;
        let expected: BTreeSet<String> = self
            .topology
            .children
            .iter()
            .map(|c| c.cluster.clone())
            .collect();
        let mut answered = BTreeSet::new();
        let mut last = String::from("nothing yet");
        loop {
            for process in self.children.iter_mut().chain(self.parent.as_mut()) {
                if let Some(status) = process.exited() {
                    return Err(process.failure(format!(
                        "{} exited ({status}) while the parent was connecting to its children",
                        process.name()
                    )));
                }
            }
            match crate::http::get(entry, "/", Duration::from_secs(2)).await {
                Ok(reply) if reply.status == StatusCode::OK => match app::cluster_of(&reply.body) {
                    Some(cluster) => {
                        answered.insert(cluster);
                    }
                    None => {
                        last = format!("200 with an unexpected body: {}", first_line(&reply.body))
                    }
                },
                Ok(reply) => last = format!("{} {}", reply.status, first_line(&reply.body)),
                Err(error) => last = format!("{error:#}"),
            }
            if answered.is_superset(&expected) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let missing: Vec<&String> = expected.difference(&answered).collect();
                let message = format!(
                    "the parent did not route to every child within {READY_TIMEOUT:?}: no answer \
                     from {missing:?} through http://{entry}/ (last: {last})"
                );
                return Err(match self.parent.as_ref() {
                    Some(parent) => parent.failure(message),
                    None => anyhow::anyhow!(message),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn request(&self, path: &'static str) -> Sent {
        let started = Instant::now();
        let entry = self.topology.parent.entry_point.1;
        let mut sent = Sent {
            path,
            status: None,
            cluster: None,
            trace_id: None,
            elapsed: Duration::ZERO,
            detail: String::new(),
        };
        match crate::http::get(entry, path, REQUEST_TIMEOUT).await {
            Ok(reply) => {
                sent.status = Some(reply.status);
                sent.cluster = app::cluster_of(&reply.body);
                sent.trace_id = reply
                    .headers
                    .get(self.topology.parent.trace_id_header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_ascii_lowercase());
                if sent.cluster.is_none() {
                    sent.detail = first_line(&reply.body);
                }
            }
            Err(error) => sent.detail = format!("{error:#}"),
        }
        sent.elapsed = started.elapsed();
        sent
    }

    fn print_request(&self, number: usize, sent: &Sent) {
        let status = sent
            .status
            .map_or("---".to_owned(), |s| s.as_u16().to_string());
        let served = match &sent.cluster {
            Some(cluster) => {
                let gateway = self
                    .topology
                    .children
                    .iter()
                    .find(|c| &c.cluster == cluster)
                    .map_or(String::new(), |c| format!(" ({})", c.name));
                format!("{cluster}{gateway}")
            }
            None => sent.detail.clone(),
        };
        let trace = sent
            .trace_id
            .as_deref()
            .map_or(String::new(), |id| format!("  trace {id}"));
        let status = if sent.status == Some(StatusCode::OK) {
            status
        } else {
            self.red(&status)
        };
        println!(
            "  {number}  GET {:<12} {status}  {:<20} {:>9}{trace}",
            sent.path,
            served,
            waterfall::format_duration(u64::try_from(sent.elapsed.as_nanos()).unwrap_or(u64::MAX)),
        );
    }

    fn print_topology(&self) {
        let t = &self.topology;
        println!(
            "{}\n",
            self.bold("Traverse multicluster demo: one trace across clusters")
        );
        println!(
            "  parent   cluster {:<8}  {} http://{}  admin {}",
            t.parent.cluster, t.parent.entry_point.0, t.parent.entry_point.1, t.parent.admin
        );
        for child in &t.children {
            let entry_points: Vec<String> = child
                .entry_points
                .iter()
                .map(|(name, address)| format!("{name} {address}"))
                .collect();
            let apps: Vec<String> = child.apps.iter().map(ToString::to_string).collect();
            println!(
                "  {:<8} cluster {:<8}  {}  admin {}  app {}",
                child.name,
                child.cluster,
                entry_points.join(", "),
                child.admin,
                apps.join(", ")
            );
        }
        println!(
            "  spans    OTLP receiver http://{}/v1/traces (in this process)\n",
            t.otlp
        );
        println!("Starting the gateways…");
    }

    fn print_hints(&self) {
        let t = &self.topology;
        println!(
            "\n{}",
            self.bold("The demo keeps running; press Ctrl-C to stop it. Try:")
        );
        let entry = t.parent.entry_point.1;
        let mut commands = vec![
            (
                format!("curl -i http://{entry}/hello"),
                "through the parent; new traces print here".to_owned(),
            ),
            (
                format!("curl http://{}/api/multicluster", t.parent.admin),
                "what the parent learned from its children".to_owned(),
            ),
        ];
        for child in &t.children {
            commands.push((
                format!("curl http://{}/api/routes", child.admin),
                format!("{}'s routes ({})", child.name, child.cluster),
            ));
        }
        let width = commands.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
        for (command, comment) in commands {
            println!("  {command:<width$}   # {comment}");
        }
        println!("  Configuration and logs: {}\n", self.path().display());
    }

    fn stop_gateways(&mut self) {
        processes::stop_all(
            self.children.iter_mut().chain(self.parent.as_mut()),
            STOP_GRACE,
        );
    }

    fn remove_directory(&mut self) {
        if let Some(directory) = self.directory.take() {
            let path = directory.path().to_owned();
            if let Err(error) = directory.close() {
                eprintln!("traverse demo: removing {}: {error}", path.display());
            }
        }
    }

    /// After a failure: the logs named in the error stay readable.
    fn keep_directory(&mut self) {
        let started = !self.children.is_empty() || self.parent.is_some();
        match self.directory.take() {
            Some(directory) if started => {
                eprintln!(
                    "traverse demo: configuration and logs kept in {}",
                    directory.keep().display()
                );
            }
            Some(directory) => {
                let _ = directory.close();
            }
            None => {}
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("\x1b[1m", text)
    }

    fn red(&self, text: &str) -> String {
        self.paint("\x1b[31m", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("{code}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Whether a trace has what a request through the parent produces: the parent's SERVER
/// span and, when a child's app answered, that child's SERVER span and the CLIENT spans
/// (at least four spans in all).
fn complete(spans: &[Span], parent_cluster: &str, answered_by: Option<&str>) -> bool {
    let server_in = |cluster: &str| {
        spans
            .iter()
            .any(|s| s.kind == Kind::Server && s.cluster == cluster)
    };
    server_in(parent_cluster)
        && answered_by.is_none_or(|cluster| server_in(cluster) && spans.len() >= 4)
}

async fn wait_admin_ready(
    process: &mut Process,
    admin: SocketAddr,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        if let Some(status) = process.exited() {
            return Err(process.failure(format!(
                "{} exited ({status}) before it was ready",
                process.name()
            )));
        }
        let last = match crate::http::get(admin, "/readyz", Duration::from_secs(1)).await {
            Ok(reply) if reply.status == StatusCode::OK => return Ok(()),
            Ok(reply) => format!("{} {}", reply.status, first_line(&reply.body)),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            return Err(process.failure(format!(
                "{} was not ready within {READY_TIMEOUT:?}: GET http://{admin}/readyz: {last}",
                process.name()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails, naming the port and its role, when something already listens on `address`.
fn ensure_free(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(address) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
            "port {} ({what}, {address}) is already in use: stop what listens there, or run \
             `traverse demo --examples <dir>` with configurations using other ports",
            address.port()
        ),
        Err(error) => Err(anyhow::Error::new(error).context(format!("binding {address} ({what})"))),
    }
}

fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use waterfall::Status;

    fn span(kind: Kind, cluster: &str) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: format!("{kind:?}{cluster}"),
            parent_span_id: String::new(),
            name: "GET".into(),
            kind,
            start_ns: 0,
            end_ns: 1,
            status: Status::Unset,
            service: "s".into(),
            cluster: cluster.into(),
            attributes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_trace_is_complete_with_both_gateways_spans() {
        let parent_only = [span(Kind::Server, "edge"), span(Kind::Client, "edge")];
        assert!(!complete(&parent_only, "edge", Some("eu-west")));
        assert!(
            complete(&parent_only, "edge", None),
            "a failed request stops at the parent"
        );
        let mut whole = parent_only.to_vec();
        whole.push(span(Kind::Server, "eu-west"));
        assert!(
            !complete(&whole, "edge", Some("eu-west")),
            "the child's CLIENT span is missing"
        );
        whole.push(span(Kind::Client, "eu-west"));
        assert!(complete(&whole, "edge", Some("eu-west")));
        assert!(!complete(&whole, "edge", Some("us-east")));
    }

    #[test]
    fn a_taken_port_is_named_with_its_role() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        let error = ensure_free(address, "the parent's admin API").expect_err("taken");
        let message = format!("{error:#}");
        assert!(
            message.starts_with(&format!("port {} (the parent's admin API", address.port())),
            "{message}"
        );
    }
}
