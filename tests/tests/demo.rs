//! `traverse demo --once`, run as a command on a copy of examples/multicluster whose fixed
//! ports are replaced by free ones (tests run in parallel): the demo starts a parent and
//! two children, sends requests through the parent (two after stopping child-a) and prints
//! each request's trace as a waterfall. It must exit 0, show every trace across clusters
//! and the failover, and leave nothing listening behind.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use traverse_e2e::free_port;
use traverse_e2e::gateway::binary;

/// The demo takes a few seconds; a hang is stopped after this.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the demo prints between the traces sent with every child up and those sent after
/// it stopped child-a.
const AFTER_STOP: &str = "(after stopping child-a)";

/// The fixed ports of examples/multicluster (its README lists them), by role.
const PARENT_WEB: u16 = 8000;
const PARENT_ADMIN: u16 = 9100;
const CHILD_A_UPLINK: u16 = 9101;
const CHILD_B_UPLINK: u16 = 9102;
const CHILD_A_ADMIN: u16 = 9111;
const CHILD_B_ADMIN: u16 = 9112;
const CHILD_A_APP: u16 = 9201;
const CHILD_B_APP: u16 = 9202;
const OTLP: u16 = 4319;
const FIXED_PORTS: [u16; 9] = [
    PARENT_WEB,
    PARENT_ADMIN,
    CHILD_A_UPLINK,
    CHILD_B_UPLINK,
    CHILD_A_ADMIN,
    CHILD_B_ADMIN,
    CHILD_A_APP,
    CHILD_B_APP,
    OTLP,
];

#[test]
fn the_demo_shows_one_trace_across_clusters_and_the_failover() {
    let examples = tempfile::Builder::new()
        .prefix("traverse-e2e-demo-")
        .tempdir()
        .expect("creating a temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/multicluster");
    let ports: HashMap<u16, u16> = FIXED_PORTS.iter().map(|&p| (p, free_port())).collect();
    copy_rewritten(&source, examples.path(), &ports);
    let port = |fixed: u16| ports[&fixed];

    let run = run_demo(examples.path());
    let context = format!(
        "stdout:\n{}\nstderr:\n{}",
        run.stdout.trim_end(),
        run.stderr.trim_end()
    );
    assert!(
        !run.timed_out,
        "traverse demo --once did not finish within {TIMEOUT:?}; {context}"
    );
    assert!(
        run.status.success(),
        "traverse demo --once exited with {}; {context}",
        run.status
    );

    let traces = parse_traces(&run.stdout);
    assert!(
        traces.len() >= 6,
        "expected a waterfall for each of at least 6 requests, found {}; {context}",
        traces.len()
    );
    let clusters: BTreeSet<&str> = traces
        .iter()
        .flat_map(|t| &t.spans)
        .map(|s| s.cluster.as_str())
        .collect();
    for cluster in ["edge", "eu-west", "us-east"] {
        assert!(
            clusters.contains(cluster),
            "no span in cluster {cluster} (clusters seen: {clusters:?}); {context}"
        );
    }
    assert!(
        traces.iter().any(|t| !t.after_stop) && traces.iter().any(|t| t.after_stop),
        "expected traces before and after the line {AFTER_STOP:?}; {context}"
    );

    let to_child_a = format!("→ child-a 127.0.0.1:{}", port(CHILD_A_UPLINK));
    let to_child_b = format!("→ child-b 127.0.0.1:{}", port(CHILD_B_UPLINK));
    let mut failovers = 0usize;
    for trace in &traces {
        let what = format!("trace {:?}; {context}", trace.header);
        let header: Vec<&str> = trace.header.split_whitespace().collect();
        assert!(
            header.len() >= 5
                && header[1].len() == 32
                && header[1].chars().all(|c| c.is_ascii_hexdigit())
                && header[2] == "GET"
                && header[4] == "200",
            "a waterfall header names the trace id, the request and its status 200: {what}"
        );
        let root = trace.spans.first().expect("a trace has spans");
        assert!(
            root.cluster == "edge" && root.kind == "SERVER",
            "the root span is the parent's SERVER span in cluster edge: {what}"
        );
        // The child that answered: its SERVER span, and its CLIENT span to its own app.
        let answered: Vec<&SpanLine> = trace
            .spans
            .iter()
            .filter(|s| s.kind == "SERVER" && s.cluster != "edge")
            .collect();
        assert_eq!(
            answered.len(),
            1,
            "one child's SERVER span per trace: {what}"
        );
        let app = match answered[0].cluster.as_str() {
            "eu-west" => port(CHILD_A_APP),
            "us-east" => port(CHILD_B_APP),
            other => panic!("a SERVER span in unexpected cluster {other}: {what}"),
        };
        assert!(
            trace.spans.iter().any(|s| s.kind == "CLIENT"
                && s.cluster == answered[0].cluster
                && s.line.contains(&format!("→ 127.0.0.1:{app}"))
                && !s.failed()),
            "the child's CLIENT span to its app on port {app}: {what}"
        );
        let attempts: Vec<&SpanLine> = trace
            .spans
            .iter()
            .filter(|s| s.kind == "CLIENT" && s.cluster == "edge")
            .collect();
        if !trace.after_stop {
            assert!(
                trace.spans.iter().all(|s| !s.failed()),
                "no span fails while every child is up: {what}"
            );
            assert!(
                attempts.len() == 1
                    && (attempts[0].line.contains(&to_child_a)
                        || attempts[0].line.contains(&to_child_b)),
                "one attempt from the parent to a child: {what}"
            );
            continue;
        }
        // After child-a was killed: the successful attempt goes to child-b; an attempt to
        // child-a, when the schedule picked it first, failed before it.
        let failed = attempts
            .iter()
            .position(|s| s.line.contains(&to_child_a) && s.failed());
        let succeeded = attempts
            .iter()
            .position(|s| s.line.contains(&to_child_b) && !s.failed());
        assert!(
            succeeded.is_some() && failed.is_none_or(|f| Some(f) < succeeded),
            "after {AFTER_STOP:?}, child-b answers, after any failed attempt to child-a: {what}"
        );
        failovers += usize::from(failed.is_some());
        assert_eq!(
            answered[0].cluster, "us-east",
            "after child-a stopped, child-b answers: {what}"
        );
        assert!(
            trace.spans.iter().all(|s| s.cluster != "eu-west"),
            "no span from the stopped child-a: {what}"
        );
    }

    // The demo shows a failover: at least one request met the stopped child first (the
    // weighted schedule decides how many).
    assert!(
        failovers > 0,
        "no trace shows a failed attempt to child-a then child-b"
    );

    // The demo stopped its gateways, apps and receiver: nothing listens any more.
    for fixed in FIXED_PORTS {
        let address = SocketAddr::from(([127, 0, 0, 1], port(fixed)));
        assert!(
            TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
            "{address} (port {fixed} of the example) still accepts connections after the demo \
             exited; {context}"
        );
    }
    eprintln!("traverse demo --once took {:?}", run.elapsed);
}

/// Copies the example directory `from` to `to`, replacing each fixed port in its YAML
/// files with its free port from `ports`; then checks that every listen address and
/// endpoint port left in them is one of the free ports.
fn copy_rewritten(from: &Path, to: &Path, ports: &HashMap<u16, u16>) {
    std::fs::create_dir_all(to).expect("creating a directory");
    for entry in std::fs::read_dir(from).expect("reading the example directory") {
        let entry = entry.expect("reading the example directory");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_rewritten(&source, &target, ports);
            continue;
        }
        let is_yaml = matches!(
            source.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !is_yaml {
            std::fs::copy(&source, &target).expect("copying an example file");
            continue;
        }
        let text = std::fs::read_to_string(&source).expect("reading an example file");
        let rewritten = replace_numbers(&text, ports);
        for (before, number) in numbers(&rewritten) {
            let listens = before.ends_with("127.0.0.1:");
            // `port: 80` is the Service's own port, not an address anything listens on.
            let endpoint = before.ends_with("port: ") && number != "80";
            if listens || endpoint {
                let kept = number
                    .parse::<u16>()
                    .map_or(true, |n| !ports.values().any(|&p| p == n));
                assert!(
                    !kept,
                    "{}: port {number} is not rewritten to a free port: add it to FIXED_PORTS",
                    source.display()
                );
            }
        }
        std::fs::write(&target, rewritten).expect("writing an example file");
    }
}

/// Every run of ASCII digits in `text`, with the text before it.
fn numbers(text: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let start = index;
            while index < bytes.len() && bytes[index].is_ascii_digit() {
                index += 1;
            }
            found.push((&text[..start], &text[start..index]));
        } else {
            index += 1;
        }
    }
    found
}

/// `text` with every whole number that is a key of `ports` replaced by its value.
fn replace_numbers(text: &str, ports: &HashMap<u16, u16>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (before, number) in numbers(text) {
        let start = before.len();
        if let Some(new) = number.parse::<u16>().ok().and_then(|n| ports.get(&n)) {
            out.push_str(&text[copied..start]);
            out.push_str(&new.to_string());
            copied = start + number.len();
        }
    }
    out.push_str(&text[copied..]);
    out
}

struct Run {
    status: ExitStatus,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `traverse demo --once --examples <examples>` without the test's `OTEL_*`
/// variables. After [`TIMEOUT`] it gets SIGTERM (the demo then stops its gateways), and
/// SIGKILL if it is still running 10 s later.
fn run_demo(examples: &Path) -> Run {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    let started = Instant::now();
    let mut child = command
        .args(["demo", "--once", "--examples"])
        .arg(examples)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting traverse demo");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));

    let wait = |child: &mut std::process::Child, deadline: Instant| loop {
        if let Some(status) = child.try_wait().expect("waiting for traverse demo") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut timed_out = false;
    let status = match wait(&mut child, started + TIMEOUT) {
        Some(status) => status,
        None => {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            match wait(&mut child, Instant::now() + Duration::from_secs(10)) {
                Some(status) => status,
                None => {
                    let _ = child.kill();
                    child.wait().expect("waiting for traverse demo")
                }
            }
        }
    };
    let elapsed = started.elapsed();
    Run {
        status,
        timed_out,
        stdout: stdout.join().expect("reading stdout"),
        stderr: stderr.join().expect("reading stderr"),
        elapsed,
    }
}

/// One printed waterfall.
struct Trace {
    /// `trace <id>  GET <path>  <status>  (<duration>)`
    header: String,
    /// In display order: the root first, children under their parent by start time.
    spans: Vec<SpanLine>,
    /// Printed after [`AFTER_STOP`].
    after_stop: bool,
}

/// A waterfall line: service, cluster, kind, name, peer, bar, duration, status.
struct SpanLine {
    cluster: String,
    kind: String,
    line: String,
}

impl SpanLine {
    fn failed(&self) -> bool {
        self.line.contains("ERROR")
    }
}

/// The waterfalls of the demo's output: a `trace ` line, then one indented line per span,
/// up to an empty line.
fn parse_traces(stdout: &str) -> Vec<Trace> {
    let mut traces = Vec::new();
    let mut current: Option<Trace> = None;
    let mut after_stop = false;
    for line in stdout.lines() {
        if line.trim() == AFTER_STOP {
            after_stop = true;
        }
        if line.starts_with("trace ") {
            traces.extend(current.take());
            current = Some(Trace {
                header: line.to_owned(),
                spans: Vec::new(),
                after_stop,
            });
            continue;
        }
        match current.as_mut() {
            Some(trace) if line.starts_with("  ") && !line.trim().is_empty() => {
                let fields: Vec<&str> = line.split_whitespace().collect();
                trace.spans.push(SpanLine {
                    cluster: fields.get(1).copied().unwrap_or("").to_owned(),
                    kind: fields.get(2).copied().unwrap_or("").to_owned(),
                    line: line.to_owned(),
                });
            }
            _ => traces.extend(current.take()),
        }
    }
    traces.extend(current);
    traces.retain(|t| !t.spans.is_empty());
    traces
}
