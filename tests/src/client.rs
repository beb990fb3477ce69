//! A small HTTP/1.1 client (cleartext or TLS): one fresh connection per request,
//! `Connection: close`, and a deadline on everything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::http1;

/// Deadline of a client call unless the caller gives another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header fields in order, names as received, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http1::header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        http1::header_all(&self.headers, name)
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "response body is not JSON ({error}); status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// For an answer of the test upstream: the name of the upstream that answered.
    pub fn server(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("server")?.as_str().map(str::to_owned))
    }

    /// For an answer of the test upstream: the path (and query) the upstream received.
    pub fn upstream_path(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("path")?.as_str().map(str::to_owned))
    }

    /// For an answer of the test upstream: every value of request header `name` it received.
    pub fn upstream_headers(&self, name: &str) -> Vec<String> {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        value
            .get("headers")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let pair = pair.as_array()?;
                let (k, v) = (pair.first()?.as_str()?, pair.get(1)?.as_str()?);
                k.eq_ignore_ascii_case(name).then(|| v.to_owned())
            })
            .collect()
    }

    /// For an answer of the test upstream: the first value of request header `name`.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_headers(name).into_iter().next()
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The TCP connection could not be made (refused, unreachable).
    Connect(String),
    /// Connected, but writing the request or reading the response failed (reset, EOF, garbage).
    Io(String),
    /// Nothing complete within the deadline.
    Timeout,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "connect failed: {e}"),
            ClientError::Io(e) => write!(f, "i/o failed: {e}"),
            ClientError::Timeout => write!(f, "timed out"),
        }
    }
}

/// Sends one request on a fresh connection and reads the whole response.
///
/// A `Host` header is added (the target address) unless `headers` has one; `Connection:
/// close` and `Content-Length` (when there is a body or the method usually has one) are
/// always added.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    match tokio::time::timeout(timeout, exchange(addr, method, path, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout),
    }
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, ClientError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let request = encode_request(addr, method, path, headers, body, true);
    let io = |e: std::io::Error| ClientError::Io(e.to_string());
    stream.write_all(&request).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, method).await
}

/// Like [`send`], over TLS: the server's certificate must chain to `ca_pem` and name
/// `server_name`.
pub async fn send_tls(
    addr: SocketAddr,
    server_name: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Response, ClientError> {
    let versions = rustls::DEFAULT_VERSIONS;
    send_tls_versions(addr, server_name, ca_pem, versions, method, path, headers).await
}

/// [`send_tls`] offering only the TLS `versions`.
pub async fn send_tls_versions(
    addr: SocketAddr,
    server_name: &str,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Response, ClientError> {
    let exchange = async {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| ClientError::Connect(format!("CA: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Connect(format!("CA: {e}")))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .map_err(|e| ClientError::Connect(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Connect(format!("TLS handshake: {e}")))?;
        let request = encode_request(addr, method, path, headers, &[], true);
        let io = |e: std::io::Error| ClientError::Io(e.to_string());
        stream.write_all(&request).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut reader = BufReader::new(stream);
        read_response(&mut reader, method).await
    };
    match tokio::time::timeout(DEFAULT_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout),
    }
}

async fn read_response<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    method: &str,
) -> Result<Response, ClientError> {
    let io = |e: std::io::Error| ClientError::Io(e.to_string());
    let head = http1::read_head(reader)
        .await
        .map_err(io)?
        .ok_or_else(|| ClientError::Io("connection closed before any response".into()))?;
    let status = parse_status(&head.start_line)
        .ok_or_else(|| ClientError::Io(format!("bad status line {:?}", head.start_line)))?;
    let framing = http1::response_framing(&head, method, status).map_err(io)?;
    let body = http1::read_body(reader, framing).await.map_err(io)?;
    Ok(Response {
        status,
        headers: head.headers,
        body,
    })
}

/// The bytes of a request as [`send`] writes it (`close`: with `Connection: close`).
pub fn encode_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        text.push_str("Connection: close\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// `GET path` with [`DEFAULT_TIMEOUT`]; panics when no response arrives.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    http_request(addr, "GET", path, headers, b"").await
}

/// Any method, with a body, with [`DEFAULT_TIMEOUT`]; panics when no response arrives.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    send(addr, method, path, headers, body, DEFAULT_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{method} http://{addr}{path}: {error}"))
}

/// `GET path` with a caller-chosen deadline; the error says why there was no response.
pub async fn try_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response, ClientError> {
    send(addr, "GET", path, headers, b"", timeout).await
}

/// Opens a raw connection (deadline [`DEFAULT_TIMEOUT`]) for tests that misbehave on purpose,
/// e.g. write a request and drop the socket before the answer.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    match tokio::time::timeout(DEFAULT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => panic!("connect {addr}: {error}"),
        Err(_) => panic!("connect {addr}: timed out"),
    }
}

/// One persistent (keep-alive) connection, for tests about connection lifetimes.
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects (deadline [`DEFAULT_TIMEOUT`]).
    pub async fn open(addr: SocketAddr) -> Connection {
        Connection {
            addr,
            reader: BufReader::new(connect(addr).await),
        }
    }

    /// Sends a keep-alive request and reads its response, within [`DEFAULT_TIMEOUT`].
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let request = encode_request(self.addr, method, path, headers, body, false);
        self.send_raw_and_read(&request, method, DEFAULT_TIMEOUT)
            .await
    }

    /// Writes `bytes` as they are, then reads one response to `method` within `timeout`.
    pub async fn send_raw_and_read(
        &mut self,
        bytes: &[u8],
        method: &str,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let io = |e: std::io::Error| ClientError::Io(e.to_string());
        let exchange = async {
            let stream = self.reader.get_mut();
            stream.write_all(bytes).await.map_err(io)?;
            stream.flush().await.map_err(io)?;
            read_response(&mut self.reader, method).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(ClientError::Timeout))
    }

    /// Writes `bytes` as they are.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        let stream = self.reader.get_mut();
        tokio::time::timeout(DEFAULT_TIMEOUT, stream.write_all(bytes))
            .await
            .expect("write within the deadline")
            .expect("write to the gateway");
    }

    /// Waits until the peer closes the connection (EOF or reset) and returns what it sent
    /// before; `None` if it is still open after `timeout`.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut received = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                match self.reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(timeout, read).await.ok()?;
        Some(received)
    }
}
