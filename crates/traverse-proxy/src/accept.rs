//! What happens to a connection before Pingora reads a request from it: the entrypoint's
//! connection limit, and a deadline for every request header section.
//!
//! Pingora times each read on its own, so a client trickling one header byte every few
//! seconds (slowloris) is never cut off, and with h2c on it reads exactly 24 bytes looking
//! for the HTTP/2 preface with no timer at all, so a silent or short connection (an
//! HTTP/0.9 line, `GET / HTTP/1.0` and a blank line) is held forever. [`Admission`] wraps
//! each accepted stream in a [`DeadlineStream`], which holds every request head to
//! `timeouts.read` from its first byte (a new connection's first head from the accept)
//! and decides HTTP/1 from the first byte that differs from the preface.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

mod head;

use head::HeadEnd;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What was answered, best effort, to a client whose request head missed its deadline.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Connection counts of one entrypoint, read by the admin API.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections closed at once because `maxConnections` were open.
    pub refused: AtomicU64,
    /// Connections closed because a request head did not arrive within `timeouts.read`.
    pub header_timeouts: AtomicU64,
}

/// An entrypoint's application behind its connection limit and header deadline.
pub struct Admission<A> {
    app: Arc<A>,
    head_deadline: Duration,
    max_connections: Option<u64>,
    stats: Arc<ConnectionStats>,
}

impl<A> Admission<A> {
    pub fn new(
        app: A,
        head_deadline: Duration,
        max_connections: Option<u64>,
        stats: Arc<ConnectionStats>,
    ) -> Self {
        Admission {
            app: Arc::new(app),
            head_deadline,
            max_connections,
            stats,
        }
    }
}

/// Counts a connection open until dropped.
struct OpenConnection(Arc<ConnectionStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Admission<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let open = self.stats.open.fetch_add(1, Ordering::Relaxed) + 1;
        let _open = OpenConnection(Arc::clone(&self.stats));
        if self.max_connections.is_some_and(|max| open > max) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            // Dropping the stream closes it before anything is read.
            return None;
        }
        let stream = DeadlineStream::new(stream, self.head_deadline, Arc::clone(&self.stats));
        // Pingora hands a stream back only to reuse it in this same app, which owns it now.
        self.app.process_new(Box::new(stream), shutdown).await;
        None
    }

    async fn cleanup(&self) {
        self.app.cleanup().await
    }
}

/// Where the connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head, which must be complete by the deadline.
    Head,
    /// The head is in: a body may follow at any pace, under Pingora's own timers.
    Body,
    /// A response went out: the next byte read starts the next request head.
    Idle,
    /// HTTP/2: streams and their heads are the HTTP/2 layer's to time.
    Unchecked,
}

/// A stream that holds every request head to a deadline. See the module comment.
#[derive(Debug)]
pub struct DeadlineStream {
    inner: Stream,
    limit: Duration,
    phase: Phase,
    head: HeadEnd,
    /// Whether any byte of the current head arrived (a 408 is only owed then).
    head_started: bool,
    /// Armed only while a head is incomplete; `None` until first needed.
    timer: Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    /// Bytes read while looking for the HTTP/2 preface, given back before any new read.
    replay: Vec<u8>,
    stats: Arc<ConnectionStats>,
    timed_out: bool,
}

impl DeadlineStream {
    fn new(inner: Stream, limit: Duration, stats: Arc<ConnectionStats>) -> Self {
        let h2 = matches!(inner.selected_alpn_proto(), Some(ALPN::H2));
        DeadlineStream {
            inner,
            limit,
            phase: if h2 { Phase::Unchecked } else { Phase::Head },
            head: HeadEnd::default(),
            head_started: false,
            timer: None,
            deadline: Instant::now() + limit,
            replay: Vec::new(),
            stats,
            timed_out: false,
        }
    }

    /// Follows the phase through `bytes` just read.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.phase == Phase::Unchecked {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.head = HeadEnd::default();
            self.head_started = false;
            self.deadline = Instant::now() + self.limit;
        }
        if self.phase == Phase::Head {
            self.head_started = true;
            if self.head.feed(bytes) {
                self.phase = Phase::Body;
            }
        }
    }

    /// `Ready(Err)` once an incomplete head is past its deadline, else `Pending` with the
    /// timer armed to wake this task then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timed_out = true;
        self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
        if self.head_started {
            // Best effort: a client that reads gets a reason; one that does not, the close.
            let _ = Pin::new(&mut self.inner).poll_write(cx, REQUEST_TIMEOUT);
        }
        Poll::Ready(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request header not complete within the entrypoint's read timeout",
        ))
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
        }
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                let new = &filled[before..];
                // `observe` needs `&mut self` while `new` borrows `buf`, not `self`.
                this.observe(new);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending if this.phase == Phase::Head => match this.poll_deadline(cx) {
                Poll::Ready(error) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // A final response ends the request: the next byte read starts the next head. An
        // interim one (100 Continue) comes before the body, which must not be timed as a head.
        if this.phase == Phase::Body && !head::is_interim_response(buf) {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Body
            && !bufs
                .iter()
                .find(|b| !b.is_empty())
                .is_some_and(|b| head::is_interim_response(b))
        {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    /// Reads until the bytes differ from the HTTP/2 preface or all of it is in, under the
    /// head deadline; what was read is read again by the HTTP/1 or HTTP/2 reader. `buf`
    /// equals the preface only when the client sent it.
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        use tokio::io::AsyncReadExt;
        let wanted = buf.len().min(H2_PREFACE.len());
        let mut seen = [0u8; 24];
        let mut len = 0;
        while len < wanted {
            let n = self.read(&mut seen[len..wanted]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let differs = seen[len..len + n] != H2_PREFACE[len..len + n];
            len += n;
            if differs {
                break;
            }
        }
        buf.fill(0);
        buf[..len].copy_from_slice(&seen[..len]);
        if seen[..len] == H2_PREFACE[..] {
            self.phase = Phase::Unchecked;
        }
        // What `read` consumed must be read again; the phase already counted it.
        let mut replay = seen[..len].to_vec();
        replay.append(&mut self.replay);
        self.replay = replay;
        Ok(true)
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}
