//! A real gRPC server and client (Python grpcio), driven by `tests/grpc/peer.py`, which
//! says what each method answers. Both run in the tools' python:
//! `TRAVERSE_PYTHON`, else `$TRAVERSE_TOOLS/bin/traverse-python`, where
//! `scripts/install-prereqs.sh` installs grpcio.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::captured::{tail, Captured};
use crate::pki::Leaf;

/// How long the server gets to print its `listening` line.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// How long one client call may take, python's start included (the call's own deadline
/// is 10 s).
const CALL_DEADLINE: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(20);

/// The python with grpcio. Panics when it is missing.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAVERSE_PYTHON") {
        return PathBuf::from(path);
    }
    let path = crate::tool("traverse-python");
    assert!(
        path.is_file(),
        "traverse-python, the python with grpcio of the gRPC tests, is missing at {}: \
         run scripts/install-prereqs.sh (or set TRAVERSE_PYTHON)",
        path.display()
    );
    path
}

/// `tests/grpc/peer.py`.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("grpc")
        .join("peer.py")
}

/// A running gRPC server; dropping it kills the process.
pub struct GrpcServer {
    child: Child,
    readers: Vec<JoinHandle<()>>,
    output: Captured,
    port: u16,
    /// Holds the certificate files while the server runs.
    _dir: tempfile::TempDir,
}

impl GrpcServer {
    /// Starts the server, over TLS with `identity` when given, and waits until it listens.
    pub async fn start(identity: Option<&Leaf>) -> GrpcServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(python());
        command.arg(script()).arg("server");
        if let Some(leaf) = identity {
            let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::write(&cert, &leaf.cert).expect("writing the certificate");
            std::fs::write(&key, &leaf.key).expect("writing the key");
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the gRPC server");
        let output = Captured::default();
        let readers = vec![
            output.read_from(child.stdout.take().expect("piped stdout")),
            output.read_from(child.stderr.take().expect("piped stderr")),
        ];
        let until = Instant::now() + START_DEADLINE;
        let port = loop {
            let listening = output.text().lines().find_map(|line| {
                line.strip_prefix("listening ")
                    .and_then(|port| port.trim().parse::<u16>().ok())
            });
            if let Some(port) = listening {
                break port;
            }
            let exited = child.try_wait().expect("waiting for the gRPC server");
            if exited.is_some() || Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the gRPC server did not start ({exited:?}); output:\n{}",
                    tail(&output.text(), 100)
                );
            }
            tokio::time::sleep(POLL).await;
        };
        GrpcServer {
            child,
            readers,
            output,
            port,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        self.output.text()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// What one call ended with, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GrpcOutcome {
    /// The status code's name (`OK`, `FAILED_PRECONDITION`, ...).
    pub code: String,
    /// The status message (`grpc-message`), `None` on success.
    pub details: Option<String>,
    /// The response messages, in order.
    pub responses: Vec<String>,
    /// The trailing metadata.
    pub trailers: std::collections::BTreeMap<String, String>,
}

/// Calls `test.Echo/<method>` with `request` at `target`, with `:authority` (and over TLS
/// the SNI) `authority`: over h2c, or over TLS trusting `ca` (PEM) when given.
pub async fn call(
    target: SocketAddr,
    authority: &str,
    method: &str,
    request: &str,
    ca: Option<&str>,
) -> GrpcOutcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(python());
    command
        .arg(script())
        .arg("client")
        .arg(target.to_string())
        .arg(authority)
        .arg(method)
        .arg(request);
    if let Some(ca) = ca {
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, ca).expect("writing the CA");
        command.arg("--ca").arg(path);
    }
    let mut child = command
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the gRPC client");
    let output = Captured::default();
    let readers = [
        output.read_from(child.stdout.take().expect("piped stdout")),
        output.read_from(child.stderr.take().expect("piped stderr")),
    ];
    let until = Instant::now() + CALL_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the gRPC client") {
            break Some(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(POLL).await;
    };
    for reader in readers {
        let _ = reader.join();
    }
    let text = output.text();
    let result = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok());
    match (status, result) {
        (Some(status), Some(result)) if status.success() => result,
        _ => panic!("{method} at {target}: the client failed ({status:?}); output:\n{text}"),
    }
}
