//! What the gateway does with a connection before a request is read: a request head must
//! arrive whole within `timeouts.read` (a deadline, not a timer per read), a silent or short
//! connection is never held by the wait for the HTTP/2 preface, and `maxConnections` caps
//! what one entrypoint holds open. Bounds are generous deadlines, never speed assertions.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use traverse_e2e::{config_with_web, http_get, route, service, Connection, Gateway, Upstream};

/// A gateway whose `web` entrypoint has `settings` (YAML lines indented by four spaces),
/// routing everything to `app`.
async fn start(settings: &str, app: &Upstream) -> Gateway {
    Gateway::start(
        &config_with_web(&format!("{settings}\n"), ""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

/// The `web` entrypoint's connection counts from the admin API.
async fn connections(gateway: &Gateway) -> serde_json::Value {
    let response = http_get(gateway.addr("admin"), "/api/entrypoints", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let view: serde_json::Value =
        serde_json::from_slice(&response.body).expect("/api/entrypoints is JSON");
    view["web"]["connections"].clone()
}

/// Reads until the peer closes; what it sent, or `None` if still open at `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(received)
}

#[tokio::test]
async fn a_trickled_header_is_cut_at_the_deadline_with_408() {
    let app = Upstream::start("app");
    let gateway = start("    timeouts:\n      read: 1s", &app).await;
    let mut stream = TcpStream::connect(gateway.addr("web"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    // One header line every 200 ms, each read well inside `read: 1s`, for up to 8 s: a
    // timer per read would never fire.
    let mut cut = false;
    for n in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream
            .write_all(format!("X-{n}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
        {
            // Something arrived (the 408) or the connection closed.
            let _ = read;
            cut = true;
            break;
        }
    }
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the gateway closes the connection");
    let took = started.elapsed();
    assert!(cut, "an unfinished header trickled for 8 s was not cut");
    assert!(
        took >= Duration::from_millis(700),
        "cut after {took:?}, before the deadline"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert_eq!(app.count(), 0);
    assert_eq!(connections(&gateway).await["headerTimeouts"], 1);
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_deadline_with_h2c_on() {
    let app = Upstream::start("app");
    let gateway = start("    h2c: true\n    timeouts:\n      read: 1s", &app).await;
    let mut silent = TcpStream::connect(gateway.addr("web"))
        .await
        .expect("connect");
    let mut short = TcpStream::connect(gateway.addr("web"))
        .await
        .expect("connect");
    // Fewer bytes than the HTTP/2 preface, and a prefix of it.
    short.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    for (name, stream) in [("silent", &mut silent), ("short", &mut short)] {
        let answer = read_to_close(stream, Duration::from_secs(5)).await;
        assert!(answer.is_some(), "the {name} connection is held past 5 s");
    }
    // Neither sent a byte of an HTTP/1 head: nothing to answer, and both were counted.
    assert_eq!(connections(&gateway).await["headerTimeouts"], 2);
}

#[tokio::test]
async fn short_requests_are_answered_at_once_with_h2c_on() {
    let app = Upstream::start("app");
    // A deadline far beyond the test's: only deciding HTTP/1 early can answer in time.
    let gateway = start("    h2c: true\n    timeouts:\n      read: 60s", &app).await;

    // 18 bytes, fewer than the 24 of the HTTP/2 preface.
    let mut connection = Connection::open(gateway.addr("web")).await;
    let response = connection
        .send_raw_and_read(b"GET / HTTP/1.0\r\n\r\n", "GET", Duration::from_secs(5))
        .await
        .expect("an 18-byte HTTP/1.0 request is answered");
    assert_eq!(response.status, 200, "{}", response.text());

    // An HTTP/0.9 line: refused and closed, not held.
    let mut stream = TcpStream::connect(gateway.addr("web"))
        .await
        .expect("connect");
    stream.write_all(b"GET /x\r\n\r\n").await.expect("write");
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the HTTP/0.9 line is not held open");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    assert_eq!(app.count(), 1, "only the HTTP/1.0 request reaches the app");
}

#[tokio::test]
async fn a_slow_body_and_an_idle_pause_are_not_held_to_the_head_deadline() {
    let app = Upstream::start("app");
    let gateway = start("    timeouts:\n      read: 1s\n      idle: 30s", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    connection
        .write_raw(b"POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\n")
        .await;
    // Ten body bytes over 2.5 s: each read inside `read: 1s`, the whole beyond it.
    for byte in b"0123456789" {
        tokio::time::sleep(Duration::from_millis(250)).await;
        connection.write_raw(&[*byte]).await;
    }
    let response = connection
        .send_raw_and_read(b"", "POST", Duration::from_secs(5))
        .await
        .expect("the slow body is answered");
    assert_eq!(response.status, 200, "{}", response.text());

    // Idle longer than the head deadline, then the next request on the same connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = connection
        .request("GET", "/after-idle", &[], b"")
        .await
        .expect("a kept-alive connection idle for 1.5 s serves the next request");
    assert_eq!(response.status, 200);
    assert_eq!(connections(&gateway).await["headerTimeouts"], 0);
}

#[tokio::test]
async fn max_connections_closes_the_excess_at_once() {
    let app = Upstream::start("app");
    let gateway = start("    maxConnections: 2", &app).await;
    // The readiness check's own connection to `web` counts until the gateway sees it
    // closed; on a loaded machine that can be after this test's first connections.
    let until = Instant::now() + Duration::from_secs(5);
    while connections(&gateway).await["open"] != 0 {
        assert!(
            Instant::now() < until,
            "the readiness probe's connection is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut connection = Connection::open(gateway.addr("web")).await;
        let response = connection
            .request("GET", "/held", &[], b"")
            .await
            .expect("a connection within the limit is served");
        assert_eq!(response.status, 200);
        held.push(connection);
    }
    let mut excess = TcpStream::connect(gateway.addr("web"))
        .await
        .expect("connect");
    let _ = excess
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        .await;
    let answer = read_to_close(&mut excess, Duration::from_secs(5))
        .await
        .expect("the connection over the limit is closed");
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    let counts = connections(&gateway).await;
    assert_eq!(counts["refused"], 1, "{counts}");
    assert_eq!(counts["open"], 2, "{counts}");
    // The same counts on /metrics.
    let metrics = http_get(gateway.addr("admin"), "/metrics", &[])
        .await
        .text();
    for (series, value) in [
        ("traverse_entrypoint_connections_refused_total", "1"),
        ("traverse_entrypoint_connections", "2"),
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{series}{{")) && l.contains("entrypoint=\"web\""))
            .unwrap_or_else(|| panic!("no {series} for web in:\n{metrics}"));
        assert!(line.ends_with(&format!(" {value}")), "{line}");
    }

    // A slot freed is a slot usable.
    drop(held.pop());
    traverse_e2e::eventually(
        "the closed connection is no longer counted",
        Duration::from_secs(5),
        async || (connections(&gateway).await["open"] == 1).then_some(()),
    )
    .await;
    let response = gateway.get("web", "/again", &[]).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn an_http2_connection_is_not_held_to_the_head_deadline() {
    let app = Upstream::start("app");
    let gateway = start(
        "    h2c: true\n    timeouts:\n      read: 1s\n      idle: 30s",
        &app,
    )
    .await;
    let tcp = traverse_e2e::connect(gateway.addr("web")).await;
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    // Two requests on one HTTP/2 connection, with a pause longer than `read` between.
    for path in ["/first", "/after-pause"] {
        let mut client = client.clone().ready().await.expect("h2 connection ready");
        let request = http::Request::get(format!("http://app{path}"))
            .body(())
            .expect("request");
        let (response, _) = client.send_request(request, true).expect("sending");
        let response = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .expect("an answer within 5 s")
            .expect("an HTTP/2 response on the same connection");
        assert_eq!(response.status(), 200, "{path}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    driver.abort();
    assert_eq!(connections(&gateway).await["headerTimeouts"], 0);
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let app = Upstream::start("app");
    let gateway = start("    timeouts:\n      read: 5s", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    let first = connection
        .send_raw_and_read(
            b"GET /one HTTP/1.1\r\nHost: app\r\n\r\nGET /two HTTP/1.1\r\nHost: app\r\n\r\n",
            "GET",
            Duration::from_secs(5),
        )
        .await
        .expect("the first pipelined request is answered");
    let second = connection
        .send_raw_and_read(b"", "GET", Duration::from_secs(5))
        .await
        .expect("the second pipelined request is answered on the same connection");
    for (response, path) in [(&first, "/one"), (&second, "/two")] {
        assert_eq!(response.status, 200);
        let echo: serde_json::Value = serde_json::from_slice(&response.body).expect("echo");
        assert_eq!(echo["path"], path, "answers in request order");
    }
    assert_eq!(app.count(), 2);
}
