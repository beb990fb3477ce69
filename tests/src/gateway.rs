//! The gateway under test: the real `traverse` binary in a child process.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{self, ClientError, Response};

/// How long a gateway gets to become ready.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// The log filter the gateway runs with: access events are debug events on `traverse::access`.
pub const RUST_LOG: &str = "info,traverse::access=debug";

/// A running `traverse run` process with its own directory, ports and captured stderr.
/// Dropping it kills the process (SIGKILL).
pub struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
    addresses: BTreeMap<String, SocketAddr>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// The path of the `traverse` executable: `TRAVERSE_BIN`, or `target/<profile>/traverse`
/// beside this test executable (which lives in `target/<profile>/deps/`).
///
/// Cargo does not rebuild another package's binary for these tests, so a binary older
/// than a source file of the workspace's crates is refused rather than silently tested
/// (set `TRAVERSE_BIN` to test a given binary as it is).
pub fn binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(locate_binary).clone()
}

fn locate_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAVERSE_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TRAVERSE_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let path = profile_dir.join(format!("traverse{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the traverse binary is missing at {}: run `cargo build -p traverse` (same profile and \
         target directory as the tests) first, or set TRAVERSE_BIN",
        path.display()
    );
    if let Some(newer) = newer_source(&path) {
        panic!(
            "the traverse binary at {} is older than {}: run `cargo build -p traverse` first \
             (or set TRAVERSE_BIN to test that binary anyway)",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A workspace source file the binary was built from that changed after it was built,
/// read from the dep-info file Cargo writes beside it (`traverse.d`); `None` when there is
/// none or that file is missing.
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .canonicalize()
        .ok()?;
    // `target: dep dep ...`, spaces inside paths escaped as `\ `.
    let (_, deps) = dep_info.split_once(": ")?;
    let deps = deps.replace("\\ ", "\u{0}");
    deps.split_whitespace()
        .map(|dep| PathBuf::from(dep.replace('\u{0}', " ")))
        .filter(|dep| dep.starts_with(&workspace))
        .find(|dep| {
            std::fs::metadata(dep)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified > built)
        })
}

/// A directory holding `traverse.yaml` and `manifests/`, as `traverse` expects them.
pub fn write_config_dir(config_yaml: &str, manifests: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("traverse-e2e-")
        .tempdir()
        .expect("creating a temporary directory");
    std::fs::create_dir(dir.path().join("manifests")).expect("creating manifests/");
    std::fs::write(dir.path().join("traverse.yaml"), config_yaml).expect("writing traverse.yaml");
    for (name, text) in manifests {
        std::fs::write(dir.path().join("manifests").join(file_name(name)), text)
            .expect("writing a manifest");
    }
    dir
}

/// `name` with `.yaml` appended unless it already ends in `.yaml`/`.yml`.
fn file_name(name: &str) -> String {
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        name.to_owned()
    } else {
        format!("{name}.yaml")
    }
}

/// Names of the `{placeholder}`s in `text`: a lowercase letter, then lowercase letters,
/// digits, `-` or `_`.
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

impl Gateway {
    /// Writes `config_yaml` and `manifests` (`(name, text)`, stored as `manifests/name.yaml`)
    /// to a fresh directory, replaces every `{name}` placeholder in the config with
    /// `127.0.0.1:<free port>`, starts `traverse run` and waits until `/readyz` answers 200.
    ///
    /// Every placeholder must be a listen address (an entrypoint or the admin API), and
    /// `{admin}` is required. Ready means `/readyz` is 200 and every listener accepts
    /// connections. A start that fails because a picked port was taken meanwhile is retried
    /// with new ports.
    pub async fn start(config_yaml: &str, manifests: &[(&str, &str)]) -> Gateway {
        Gateway::start_with_env(config_yaml, manifests, &[]).await
    }

    /// [`Gateway::start`] with environment variables set for the process. The test
    /// process's own `OTEL_*` variables are never passed on.
    pub async fn start_with_env(
        config_yaml: &str,
        manifests: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Gateway {
        let names = placeholders(config_yaml);
        assert!(
            names.iter().any(|n| n == "admin"),
            "the gateway config needs an {{admin}} placeholder:\n{config_yaml}"
        );
        let mut last_failure = String::new();
        for _ in 0..3 {
            let addresses: BTreeMap<String, SocketAddr> = names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        SocketAddr::from(([127, 0, 0, 1], crate::free_port())),
                    )
                })
                .collect();
            let mut config = config_yaml.to_owned();
            for (name, addr) in &addresses {
                config = config.replace(&format!("{{{name}}}"), &addr.to_string());
            }
            let dir = write_config_dir(&config, manifests);
            let mut gateway = Gateway::spawn(dir, addresses, env);
            match gateway.wait_ready(START_DEADLINE).await {
                Ok(()) => return gateway,
                Err(failure) => {
                    let port_taken = failure.contains("in use");
                    drop(gateway);
                    last_failure = failure;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the gateway did not become ready: {last_failure}");
    }

    fn spawn(
        dir: tempfile::TempDir,
        addresses: BTreeMap<String, SocketAddr>,
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut command = Command::new(binary());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .envs(env.iter().copied())
            .arg("run")
            .arg("--config")
            .arg(dir.path().join("traverse.yaml"))
            .env("RUST_LOG", RUST_LOG)
            .env_remove("TRAVERSE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the traverse binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lock(&lines).push(line);
            }
        });
        Gateway {
            child,
            dir,
            addresses,
            stderr,
        }
    }

    async fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        let mut last;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread drain what the process wrote last.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(format!(
                    "traverse exited early with {status}; stderr:\n{}",
                    self.stderr_lines().join("\n")
                ));
            }
            // Pingora retries a listener whose port is taken instead of failing: the caller
            // starts over with other ports.
            if let Some(line) = lock(&self.stderr).iter().find(|l| l.contains("is in use")) {
                return Err(format!("a port is in use: {line}"));
            }
            match client::try_get(self.addr("admin"), "/readyz", &[], Duration::from_secs(2)).await
            {
                Ok(response) if response.status == 200 => {
                    // Every listener must be bound, not only the admin one.
                    let mut unbound = Vec::new();
                    for (name, addr) in &self.addresses {
                        if tokio::net::TcpStream::connect(addr).await.is_err() {
                            unbound.push(name.clone());
                        }
                    }
                    if unbound.is_empty() {
                        return Ok(());
                    }
                    last = format!("ready, but nothing listens on {unbound:?} yet");
                }
                Ok(response) => last = format!("/readyz answered {}", response.status),
                Err(error) => last = format!("/readyz: {error}"),
            }
            if Instant::now() >= until {
                return Err(format!(
                    "not ready after {deadline:?} ({last}); stderr:\n{}",
                    self.stderr_lines().join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The address a `{name}` placeholder was replaced with.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addresses
            .get(name)
            .unwrap_or_else(|| panic!("no {{{name}}} placeholder in the gateway config"))
    }

    /// The port a `{name}` placeholder was replaced with.
    pub fn port(&self, name: &str) -> u16 {
        self.addr(name).port()
    }

    /// `http://127.0.0.1:<port>` of a `{name}` placeholder.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}", self.addr(name))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `traverse.yaml`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The watched manifests directory.
    pub fn manifests_dir(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    /// Replaces (or creates) `manifests/name.yaml` atomically: written beside it under a
    /// hidden name (which the gateway ignores), then renamed over it, as `kubectl` and most
    /// editors do, so the gateway never reads a half-written file.
    pub fn write_manifest(&self, name: &str, text: &str) {
        let name = file_name(name);
        let temporary = self.manifests_dir().join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).expect("writing a manifest");
        std::fs::rename(&temporary, self.manifests_dir().join(&name))
            .expect("renaming a manifest into place");
    }

    /// Deletes `manifests/name.yaml`.
    pub fn remove_manifest(&self, name: &str) {
        std::fs::remove_file(self.manifests_dir().join(file_name(name)))
            .expect("removing a manifest");
    }

    /// `GET /api/routes` on the admin port, as JSON.
    pub async fn routes_json(&self) -> serde_json::Value {
        let response = client::http_get(self.addr("admin"), "/api/routes", &[]).await;
        assert_eq!(response.status, 200, "/api/routes: {}", response.text());
        response.json()
    }

    /// Polls `/api/routes` until `predicate` holds; returns that JSON. Panics with the last
    /// JSON seen when `deadline` passes first.
    pub async fn wait_for(
        &self,
        what: &str,
        deadline: Duration,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let until = Instant::now() + deadline;
        loop {
            let json = self.routes_json().await;
            if predicate(&json) {
                return json;
            }
            if Instant::now() >= until {
                panic!(
                    "{what}: not seen on /api/routes within {deadline:?}; last:\n{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET path` on the entrypoint `{name}`; panics when no response arrives.
    pub async fn get(&self, entry_point: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        client::http_get(self.addr(entry_point), path, headers).await
    }

    /// Status of `GET /readyz`, or why there was none (short deadline).
    pub async fn readyz(&self) -> Result<u16, ClientError> {
        client::try_get(self.addr("admin"), "/readyz", &[], Duration::from_secs(1))
            .await
            .map(|r| r.status)
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// The access events (`traverse::access`) logged so far.
    pub fn access_events(&self) -> Vec<String> {
        lock(&self.stderr)
            .iter()
            .filter(|l| l.contains("traverse::access"))
            .cloned()
            .collect()
    }

    /// Polls stderr until a line satisfies `predicate`; returns it. Panics at `deadline`.
    pub async fn wait_for_log(
        &self,
        what: &str,
        deadline: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> String {
        let until = Instant::now() + deadline;
        loop {
            if let Some(line) = lock(&self.stderr).iter().find(|l| predicate(l)) {
                return line.clone();
            }
            if Instant::now() >= until {
                panic!(
                    "{what}: no such stderr line within {deadline:?}; stderr:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for traverse") {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let lines = self.stderr_lines();
            let skip = lines.len().saturating_sub(200);
            eprintln!(
                "---- traverse stderr (pid {}, last {} lines) ----",
                self.child.id(),
                lines.len() - skip
            );
            for line in &lines[skip..] {
                eprintln!("{line}");
            }
            eprintln!("---- end of traverse stderr ----");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
