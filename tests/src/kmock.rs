//! A Kubernetes API server for the tests of the Kubernetes provider: kmock's emulator,
//! driven by `tests/kmock/server.py` (which documents exactly how it behaves and where it
//! differs from a real API server), in a child process on a free port of 127.0.0.1.
//!
//! The python is `KMOCK_SERVER`, else `$TRAVERSE_TOOLS/bin/kmock-server` (default
//! `TRAVERSE_TOOLS`: `~/.cache/traverse/tools`), where `scripts/install-prereqs.sh`
//! installs it; it is started as `kmock-server tests/kmock/server.py PORT`.
//!
//! [`Kmock`] writes a kubeconfig for the gateway, creates, replaces, reads and deletes
//! objects over the REST API like a client would, opens raw watches, and reads back every
//! request the server received (e.g. the status PATCHes the gateway sends).
//!
//! The server sets `metadata.resourceVersion` (one server-wide counter), `uid`,
//! `creationTimestamp` and `generation` itself, so documents need none of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::captured::{tail, Captured};
use crate::client::{self, Response};
use crate::http1;

/// How long the server gets to print its `listening` line.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// How many lines of output a failure message shows at most (the last ones).
pub const SHOWN_LINES: usize = 200;

/// Deadline of one request to the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the output is looked at while starting.
const POLL: Duration = Duration::from_millis(20);

/// The python that runs the server: `KMOCK_SERVER`, else `$TRAVERSE_TOOLS/bin/kmock-server`.
/// Panics when it is missing.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KMOCK_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KMOCK_SERVER={} is not a file",
            path.display()
        );
        return path;
    }
    let path = crate::tool("kmock-server");
    assert!(
        path.is_file(),
        "kmock-server, the Kubernetes API emulator of the provider tests, is missing at {}: \
         run scripts/install-prereqs.sh (or set KMOCK_SERVER to a python that has kmock)",
        path.display()
    );
    path
}

/// `tests/kmock/server.py`.
pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kmock")
        .join("server.py")
}

/// The path of a collection (`name` `None`) or of one object; `namespace` `None`: across
/// all namespaces. `api_version` `v1` is the core group (`/api/v1`).
pub fn resource_path(
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> String {
    let mut path = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    if let Some(namespace) = namespace {
        path.push_str(&format!("/namespaces/{namespace}"));
    }
    path.push('/');
    path.push_str(plural);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
    }
    path
}

/// The plural (the URL segment) of `kind`: those the server serves, else the lowercase
/// kind with an `s`.
pub fn plural(kind: &str) -> String {
    match kind {
        "IngressRoute" => "ingressroutes".into(),
        "Middleware" => "middlewares".into(),
        "TraefikService" => "traefikservices".into(),
        "Uplink" => "uplinks".into(),
        "Service" => "services".into(),
        "EndpointSlice" => "endpointslices".into(),
        "Event" => "events".into(),
        "Lease" => "leases".into(),
        other => format!("{}s", other.to_ascii_lowercase()),
    }
}

/// One request the server received, as its log at `GET /_requests` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Position in the log, from 0.
    pub id: u64,
    pub method: String,
    pub path: String,
    /// The raw query string (percent-encoded, without `?`).
    pub query: String,
    pub content_type: String,
    pub body: String,
    /// The response status; `None` while the response is still streaming (a watch).
    pub status: Option<u16>,
}

impl Recorded {
    fn from_json(value: &Value) -> Recorded {
        let text = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        Recorded {
            id: value["id"].as_u64().unwrap_or_default(),
            method: text("method"),
            path: text("path"),
            query: text("query"),
            content_type: text("contentType"),
            body: text("body"),
            status: value["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
        }
    }

    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "the body of {} {} is not JSON ({error}): {:?}",
                self.method, self.path, self.body
            )
        })
    }

    /// The decoded value of query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// Whether this is a PATCH of the status subresource of an object.
    pub fn is_status_patch(&self) -> bool {
        self.method == "PATCH" && self.path.ends_with("/status")
    }

    /// Whether this is a watch (`GET` with `watch=true`).
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && self.query_param("watch").as_deref() == Some("true")
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A running emulator. Dropping it kills the process (SIGKILL); when the test is
/// panicking, the end of its output is printed (unless a failure message showed it).
pub struct Kmock {
    child: Option<Child>,
    readers: Vec<JoinHandle<()>>,
    port: u16,
    /// stdout and stderr, whole lines, interleaved as they came.
    output: Captured,
    reported: AtomicBool,
}

impl Kmock {
    /// Starts the emulator on a free port and waits until it is listening. A start that
    /// fails because the port was taken meanwhile is retried.
    pub async fn start() -> Kmock {
        Kmock::start_without_status(&[]).await
    }

    /// [`Kmock::start`], with `resources` (`group/version/plural`, e.g.
    /// `traefik.io/v1alpha1/ingressroutes`) served without a status subresource, as
    /// Traefik's own CRDs are.
    pub async fn start_without_status(resources: &[&str]) -> Kmock {
        let mut last_failure = String::new();
        for _ in 0..3 {
            let mut kmock = Kmock::spawn(crate::free_port(), resources);
            match kmock.wait_ready(START_DEADLINE).await {
                Ok(()) => return kmock,
                Err(failure) => {
                    let port_taken = failure.contains("in use");
                    kmock.stop();
                    last_failure = failure;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the Kubernetes API emulator did not start: {last_failure}");
    }

    fn spawn(port: u16, without_status: &[&str]) -> Kmock {
        let mut child = Command::new(server_binary())
            .arg(server_script())
            .arg(port.to_string())
            .args(without_status)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kmock-server");
        let output = Captured::default();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Kmock {
            child: Some(child),
            readers: vec![output.read_from(stdout), output.read_from(stderr)],
            port,
            output,
            reported: AtomicBool::new(false),
        }
    }

    async fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        loop {
            if self.output.any_line(|line| line.starts_with("listening ")) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().expect("waiting for kmock-server"),
                None => return Err("not running".into()),
            };
            if let Some(status) = exited {
                self.join_readers();
                return Err(format!(
                    "kmock-server exited early with {status}; output:\n{}",
                    self.output_tail()
                ));
            }
            if Instant::now() >= until {
                return Err(format!(
                    "no `listening` line after {deadline:?} (port {}); output:\n{}",
                    self.port,
                    self.output_tail()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the process (SIGKILL) and waits for it. Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_readers();
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:<port>`, the API server's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// The last [`SHOWN_LINES`] lines of the output, for a failure message; the process
    /// does not print them again when dropped.
    pub fn output_tail(&self) -> String {
        self.reported.store(true, Ordering::Relaxed);
        tail(&self.output(), SHOWN_LINES)
    }

    /// Writes `dir/kubeconfig`: one cluster at [`Kmock::url`] (plain HTTP), a user without
    /// credentials, and a context of both (namespace `default`) set as current. Returns its
    /// path (for `KUBECONFIG`).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: kmock
    cluster:
      server: {url}
users:
  - name: kmock
    user: {{}}
contexts:
  - name: kmock
    context:
      cluster: kmock
      user: kmock
      namespace: default
current-context: kmock
",
            url = self.url()
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Sends one request and reads the whole answer; panics when there is none.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Response {
        let mut headers = vec![("Accept", "application/json")];
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type));
        }
        client::send(self.addr(), method, path, &headers, body, REQUEST_TIMEOUT)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{method} {}{path}: {error}; emulator output:\n{}",
                    self.url(),
                    self.output_tail()
                )
            })
    }

    /// Sends one request with a JSON body and returns the answer if its status is
    /// `expected`; panics with the answer otherwise.
    async fn expect(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
        expected: &[u16],
    ) -> Response {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("serializing JSON")
        };
        let response = self.request(method, path, content_type, &body).await;
        if !expected.contains(&response.status) {
            panic!(
                "{method} {path}: status {} (expected {expected:?}): {}",
                response.status,
                response.text()
            );
        }
        response
    }

    /// Creates or replaces every document of `yaml` (separated by `---`), in order, as
    /// `kubectl apply` would through the REST API: a POST, and a PUT when it exists.
    /// A document without a namespace goes to `default`. A `status` in a document is
    /// ignored for resources with a status subresource, as a real API server does: set
    /// it with [`Kmock::patch_status`]. Returns the objects as stored.
    pub async fn apply(&self, yaml: &str) -> Vec<Value> {
        let mut stored = Vec::new();
        let documents: Vec<Value> = serde_saphyr::from_multiple(yaml)
            .unwrap_or_else(|e| panic!("a document of the YAML does not parse: {e}"));
        for value in documents {
            if value.is_null() {
                continue;
            }
            stored.push(self.apply_object(value).await);
        }
        stored
    }

    /// [`Kmock::apply`] for one object.
    pub async fn apply_object(&self, mut object: Value) -> Value {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_else(|| panic!("no apiVersion: {object}"))
            .to_owned();
        let kind = object["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("no kind: {object}"))
            .to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("no metadata.name: {object}"))
            .to_owned();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        object["metadata"]["namespace"] = Value::from(namespace.as_str());
        let plural = plural(&kind);
        let collection = resource_path(&api_version, &plural, Some(&namespace), None);
        let json = "application/json";
        let created = self
            .expect("POST", &collection, json, &object, &[201, 409])
            .await;
        if created.status == 201 {
            return created.json();
        }
        let path = resource_path(&api_version, &plural, Some(&namespace), Some(&name));
        self.expect("PUT", &path, json, &object, &[200])
            .await
            .json()
    }

    /// The object, or `None` when there is none.
    pub async fn try_get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let path = resource_path(api_version, plural, Some(namespace), Some(name));
        let response = self
            .expect("GET", &path, "", &Value::Null, &[200, 404])
            .await;
        (response.status == 200).then(|| response.json())
    }

    /// The object; panics when there is none.
    pub async fn get(&self, api_version: &str, plural: &str, namespace: &str, name: &str) -> Value {
        self.try_get(api_version, plural, namespace, name)
            .await
            .unwrap_or_else(|| panic!("no {plural} {namespace}/{name}"))
    }

    /// The objects of a collection (`namespace` `None`: across all namespaces).
    pub async fn list(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        self.list_json(&resource_path(api_version, plural, namespace, None))
            .await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The whole list answer of `path_and_query` (with `metadata.resourceVersion`).
    pub async fn list_json(&self, path_and_query: &str) -> Value {
        self.expect("GET", path_and_query, "", &Value::Null, &[200])
            .await
            .json()
    }

    /// Deletes the object; `false` when there was none.
    pub async fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let path = resource_path(api_version, plural, Some(namespace), Some(name));
        self.expect("DELETE", &path, "", &Value::Null, &[200, 404])
            .await
            .status
            == 200
    }

    /// Sets the status of an object (a merge patch of its status subresource, as a
    /// controller would); returns the object as stored.
    pub async fn patch_status(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Value {
        let path = resource_path(api_version, plural, Some(namespace), Some(name)) + "/status";
        let body = serde_json::json!({ "status": status });
        self.expect(
            "PATCH",
            &path,
            "application/merge-patch+json",
            &body,
            &[200],
        )
        .await
        .json()
    }

    /// Opens a watch on `path_and_query` (which should have `watch=true`) and returns it
    /// once the response head arrived; panics unless the status is 200.
    pub async fn watch(&self, path_and_query: &str) -> Watch {
        let stream = client::connect(self.addr()).await;
        let mut reader = BufReader::new(stream);
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            self.addr()
        );
        let head = async {
            reader.get_mut().write_all(request.as_bytes()).await?;
            http1::read_head(&mut reader).await
        };
        let head = tokio::time::timeout(REQUEST_TIMEOUT, head)
            .await
            .unwrap_or_else(|_| panic!("watch {path_and_query}: no response head in time"))
            .unwrap_or_else(|e| panic!("watch {path_and_query}: {e}"))
            .unwrap_or_else(|| panic!("watch {path_and_query}: connection closed"));
        let status = head.start_line.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            let framing = http1::response_framing(&head, "GET", 0).ok();
            let body = match framing {
                Some(framing) => http1::read_body(&mut reader, framing)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            panic!(
                "watch {path_and_query}: {}: {}",
                head.start_line,
                String::from_utf8_lossy(&body)
            );
        }
        Watch {
            reader,
            chunked: head
                .header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked")),
            pending: Vec::new(),
            ended: false,
        }
    }

    /// Every request received so far (except those reading this log), oldest first.
    pub async fn requests(&self) -> Vec<Recorded> {
        self.expect("GET", "/_requests", "", &Value::Null, &[200])
            .await
            .json()
            .as_array()
            .map(|entries| entries.iter().map(Recorded::from_json).collect())
            .unwrap_or_default()
    }

    /// Every PATCH of a status subresource received so far.
    pub async fn status_patches(&self) -> Vec<Recorded> {
        self.requests()
            .await
            .into_iter()
            .filter(Recorded::is_status_patch)
            .collect()
    }

    /// Every PATCH of the status of one object received so far.
    pub async fn status_patches_of(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Vec<Recorded> {
        let path = resource_path(api_version, plural, Some(namespace), Some(name)) + "/status";
        self.status_patches()
            .await
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Polls the request log until a request satisfies `predicate`; returns the first that
    /// does. Panics naming `what`, with the log, at `deadline`.
    pub async fn wait_for_request(
        &self,
        what: &str,
        deadline: Duration,
        predicate: impl Fn(&Recorded) -> bool,
    ) -> Recorded {
        let until = Instant::now() + deadline;
        loop {
            let requests = self.requests().await;
            if let Some(found) = requests.iter().find(|r| predicate(r)) {
                return found.clone();
            }
            if Instant::now() >= until {
                let log: Vec<String> = requests
                    .iter()
                    .map(|r| format!("{} {}?{} -> {:?}", r.method, r.path, r.query, r.status))
                    .collect();
                panic!(
                    "{what}: not within {deadline:?}; requests received:\n{}",
                    log.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Kmock {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() && !self.reported.load(Ordering::Relaxed) {
            eprintln!(
                "---- kmock output (port {}) ----\n{}",
                self.port,
                self.output_tail()
            );
        }
    }
}

/// An open watch: one JSON event per line of a (chunked) streaming answer.
pub struct Watch {
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes received but not yet returned as an event.
    pending: Vec<u8>,
    ended: bool,
}

impl Watch {
    /// The next event (`{"type": ..., "object": ...}`), or `None` when none arrives within
    /// `timeout` or the stream ended.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if line.trim().is_empty() {
                    continue;
                }
                return Some(
                    serde_json::from_str(line.trim())
                        .unwrap_or_else(|e| panic!("a watch line is not JSON ({e}): {line:?}")),
                );
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(until, self.read_more()).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => self.ended = true,
                Err(_) => return None,
            }
        }
    }

    /// Reads the next chunk (or whatever arrives, unchunked) into `pending`; `false` at the
    /// end of the stream. Not cancel-safe inside a chunk: a timeout there loses it, which
    /// only happens when the server stalls mid-chunk.
    async fn read_more(&mut self) -> std::io::Result<bool> {
        if !self.chunked {
            let mut buf = [0u8; 8192];
            let n = self.reader.read(&mut buf).await?;
            self.pending.extend_from_slice(&buf[..n]);
            return Ok(n > 0);
        }
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&line);
        let size = text.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size line")
        })?;
        if size == 0 {
            return Ok(false);
        }
        let start = self.pending.len();
        self.pending.resize(start + size, 0);
        self.reader.read_exact(&mut self.pending[start..]).await?;
        let mut crlf = Vec::new();
        self.reader.read_until(b'\n', &mut crlf).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            resource_path("traefik.io/v1alpha1", "ingressroutes", None, None),
            "/apis/traefik.io/v1alpha1/ingressroutes"
        );
        assert_eq!(
            resource_path("v1", "services", Some("apps"), Some("shop")),
            "/api/v1/namespaces/apps/services/shop"
        );
        assert_eq!(plural("EndpointSlice"), "endpointslices");
        assert_eq!(plural("Widget"), "widgets");
    }

    #[test]
    fn query_params_are_decoded() {
        let recorded = Recorded {
            id: 0,
            method: "GET".into(),
            path: "/api/v1/services".into(),
            query: "watch=true&labelSelector=app%3Dshop%2Ctier+in+%28a%29&x".into(),
            content_type: String::new(),
            body: String::new(),
            status: None,
        };
        assert_eq!(
            recorded.query_param("labelSelector").as_deref(),
            Some("app=shop,tier in (a)")
        );
        assert_eq!(recorded.query_param("x").as_deref(), Some(""));
        assert_eq!(recorded.query_param("y"), None);
        assert!(recorded.is_watch());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
