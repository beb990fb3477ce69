//! A test upstream: an HTTP/1.1 echo server that records every request it receives.
//!
//! Every request is answered `200` with JSON
//! `{"server", "method", "path", "headers": [[name, value], ...], "body"}`, except
//! `/delay/{ms}` (answers after sleeping) and `/status/{code}` (answers that status).
//! Every response also carries `X-Upstream: <name>` and `X-Upstream-Secret: s3cret`
//! (so a test can check that a middleware removes a response header). On HTTP/1.1, a
//! request header `X-Response-Type` sets the response's `Content-Type` (else
//! `application/json`; `none` sends no `Content-Type`), and `X-Response-Chunked` sends the body chunked, in two chunks.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::http1;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query as received (the request target).
    pub path: String,
    /// All header fields in order, names as received, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request head exactly as received (request line, fields, blank line); empty for
    /// HTTP/2.
    pub raw_head: Vec<u8>,
}

impl Recorded {
    /// The request head as received, as (lossy) text.
    pub fn raw_head_text(&self) -> String {
        String::from_utf8_lossy(&self.raw_head).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http1::header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        http1::header_all(&self.headers, name)
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;
type Tasks = Arc<Mutex<Vec<AbortHandle>>>;

/// A running test upstream. Stopped (listener and every connection closed) on drop.
pub struct Upstream {
    name: String,
    addr: SocketAddr,
    log: Log,
    tasks: Tasks,
}

impl Upstream {
    /// Starts an upstream named `name` on `127.0.0.1` and a free port. Call inside a Tokio runtime.
    pub fn start(name: &str) -> Upstream {
        Upstream::start_on(name, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .unwrap_or_else(|error| panic!("starting upstream {name}: {error}"))
    }

    /// Starts an upstream on a given address (port 0 for any).
    pub fn start_on(name: &str, addr: SocketAddr) -> std::io::Result<Upstream> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let log: Log = Arc::default();
        let tasks: Tasks = Arc::default();
        let accept = tokio::spawn(accept_loop(
            listener,
            name.to_owned(),
            Arc::clone(&log),
            Arc::clone(&tasks),
        ));
        lock(&tasks).push(accept.abort_handle());
        Ok(Upstream {
            name: name.to_owned(),
            addr,
            log,
            tasks,
        })
    }

    /// Starts an upstream named `name` that speaks cleartext HTTP/2 only (prior knowledge),
    /// answering like the HTTP/1.1 one. Recorded requests carry `:authority` and `:scheme`
    /// among their headers.
    pub fn start_h2c(name: &str) -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .unwrap_or_else(|error| panic!("starting h2c upstream {name}: {error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("h2c upstream address: {error}"));
        let log: Log = Arc::default();
        let tasks: Tasks = Arc::default();
        let accept = tokio::spawn(accept_loop_h2c(
            listener,
            name.to_owned(),
            Arc::clone(&log),
            Arc::clone(&tasks),
        ));
        lock(&tasks).push(accept.abort_handle());
        Upstream {
            name: name.to_owned(),
            addr,
            log,
            tasks,
        }
    }

    /// Two upstreams on the same port, one on `127.0.0.1` and one on `127.0.0.2`, as two
    /// endpoints of one EndpointSlice must be (a slice has one port for all its addresses).
    pub fn start_pair(first: &str, second: &str) -> (Upstream, Upstream) {
        for _ in 0..50 {
            let a = Upstream::start(first);
            let other = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), a.port()));
            if let Ok(b) = Upstream::start_on(second, other) {
                return (a, b);
            }
        }
        panic!("could not bind 127.0.0.1:P and 127.0.0.2:P for the same port P");
    }

    /// A port on 127.0.0.1 with nothing listening (bound, then released).
    pub fn closed_port() -> u16 {
        crate::free_port()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.log).clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        lock(&self.log).len()
    }

    /// How many requests whose path starts with `prefix` were received so far.
    pub fn count_path(&self, prefix: &str) -> usize {
        lock(&self.log)
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        lock(&self.log).clear();
    }

    /// Closes the listener and every open connection.
    pub fn stop(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the data from the others.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, name: String, log: Log, tasks: Tasks) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Transient accept errors (e.g. EMFILE): back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let task = tokio::spawn(serve(stream, name.clone(), Arc::clone(&log)));
        let mut tasks = lock(&tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }
}

async fn serve(stream: TcpStream, name: String, log: Log) {
    let mut reader = BufReader::new(stream);
    loop {
        let Ok(Some(head)) = http1::read_head(&mut reader).await else {
            return;
        };
        let Ok(framing) = http1::request_framing(&head) else {
            return;
        };
        let Ok(body) = http1::read_body(&mut reader, framing).await else {
            return;
        };
        let mut parts = head.start_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let version = parts.next().unwrap_or("HTTP/1.1").to_owned();
        let close = head
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || version == "HTTP/1.0";
        let recorded = Recorded {
            method: method.clone(),
            path: path.clone(),
            headers: head.headers.clone(),
            body: body.clone(),
            raw_head: head.raw.clone(),
        };
        lock(&log).push(recorded);

        let (status, body) = answer(&name, &method, &path, &head.headers, &body).await;
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Status");
        let content_type = match head.header("x-response-type") {
            Some("none") => String::new(),
            Some(other) => format!("Content-Type: {other}\r\n"),
            None => "Content-Type: application/json\r\n".to_owned(),
        };
        let chunked = head.header("x-response-chunked").is_some();
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\n{content_type}X-Upstream: {name}\r\nX-Upstream-Secret: s3cret\r\n"
        );
        if chunked {
            response.push_str("Transfer-Encoding: chunked\r\n");
        } else if status != 204 && status != 304 {
            response.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if close {
            response.push_str("Connection: close\r\n");
        }
        response.push_str("\r\n");
        let mut bytes = response.into_bytes();
        if chunked {
            let (first, second) = body.split_at(body.len() / 2);
            for chunk in [first, second] {
                if !chunk.is_empty() {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            bytes.extend_from_slice(&body);
        }
        let stream = reader.get_mut();
        if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() || close {
            return;
        }
    }
}

/// The status and body of the answer to a recorded request, after any `/delay/{ms}`.
async fn answer(
    name: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let bare_path = path.split('?').next().unwrap_or("");
    let mut status = 200u16;
    if let Some(ms) = bare_path.strip_prefix("/delay/") {
        let ms: u64 = ms.trim_end_matches('/').parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    } else if let Some(code) = bare_path.strip_prefix("/status/") {
        status = code
            .trim_end_matches('/')
            .parse()
            .ok()
            .filter(|c| (200..600).contains(c))
            .unwrap_or(400);
    }
    let reply = serde_json::json!({
        "server": name,
        "method": method,
        "path": path,
        "headers": headers.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        "body": String::from_utf8_lossy(body),
    });
    let body = if status == 204 || status == 304 || method == "HEAD" {
        Vec::new()
    } else {
        serde_json::to_vec(&reply).unwrap_or_default()
    };
    (status, body)
}

async fn accept_loop_h2c(listener: TcpListener, name: String, log: Log, tasks: Tasks) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let task = tokio::spawn(serve_h2c(stream, name.clone(), Arc::clone(&log)));
        let mut tasks = lock(&tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }
}

async fn serve_h2c(stream: TcpStream, name: String, log: Log) {
    let Ok(mut connection) = h2::server::handshake(stream).await else {
        return;
    };
    let mut streams = tokio::task::JoinSet::new();
    while let Some(Ok((request, respond))) = connection.accept().await {
        streams.spawn(serve_h2c_stream(
            request,
            respond,
            name.clone(),
            Arc::clone(&log),
        ));
    }
}

async fn serve_h2c_stream(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    name: String,
    log: Log,
) {
    let (parts, mut recv) = request.into_parts();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = recv.data().await {
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let mut headers = vec![
        (
            ":authority".to_owned(),
            parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ),
        (
            ":scheme".to_owned(),
            parts.uri.scheme_str().unwrap_or("").to_owned(),
        ),
    ];
    for (k, v) in &parts.headers {
        headers.push((
            k.to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let method = parts.method.to_string();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    lock(&log).push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
        raw_head: Vec::new(),
    });
    let (status, body) = answer(&name, &method, &path, &headers, &body).await;
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", name.as_str())
        .header("x-upstream-secret", "s3cret")
        .body(())
        .unwrap_or_default();
    let Ok(mut send) = respond.send_response(response, body.is_empty()) else {
        return;
    };
    if !body.is_empty() {
        let _ = send.send_data(bytes::Bytes::from(body), true);
    }
}
