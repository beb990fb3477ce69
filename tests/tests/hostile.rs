//! Hostile and ambiguous input, as raw bytes to the real binary: what must be refused is
//! refused and never reaches the upstream, what passes reaches it unambiguously, and a
//! client that hangs up is not held against anyone. See `docs/security.md`.

use std::time::Duration;

use traverse_e2e::{
    config, config_with_web, eventually, route, service, Connection, Gateway, Response, Upstream,
};

/// How long a test waits for an answer.
const WAIT: Duration = Duration::from_secs(5);

/// A gateway with one catch-all route to `upstream`; `extra` is appended to the config.
async fn start(extra: &str, upstream: &Upstream) -> Gateway {
    Gateway::start(
        &config(extra),
        &[
            ("backends", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

/// A gateway like [`start`] whose `web` entrypoint also has `settings` (YAML lines
/// indented by four spaces).
async fn start_with_web(settings: &str, upstream: &Upstream) -> Gateway {
    Gateway::start(
        &config_with_web(settings, ""),
        &[
            ("backends", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

/// Writes `bytes` on a fresh connection and reads one response to `method`.
async fn raw(gateway: &Gateway, bytes: &str, method: &str) -> (Response, Connection) {
    let mut connection = Connection::open(gateway.addr("web")).await;
    let response = connection
        .send_raw_and_read(bytes.as_bytes(), method, WAIT)
        .await
        .unwrap_or_else(|error| panic!("no response to {bytes:?}: {error}"));
    (response, connection)
}

/// Whether the gateway closes `connection` within `within`.
async fn closes(connection: &mut Connection, within: Duration) -> bool {
    connection.wait_closed(within).await.is_some()
}

/// Asserts a 400 that closes the connection and that nothing reached the upstream.
async fn refused(gateway: &Gateway, upstream: &Upstream, bytes: &str) {
    refused_with(gateway, upstream, bytes, 400).await;
}

/// Asserts `status`, that the connection closes after it and that nothing reached the
/// upstream.
async fn refused_with(gateway: &Gateway, upstream: &Upstream, bytes: &str, status: u16) {
    let (response, mut connection) = raw(gateway, bytes, "GET").await;
    let shown = &bytes[..bytes.len().min(80)];
    assert_eq!(response.status, status, "{shown:?}: {}", response.text());
    assert!(
        closes(&mut connection, WAIT).await,
        "{shown:?}: the connection stays open after the {status}"
    );
    assert_eq!(
        upstream.count(),
        0,
        "{shown:?} reached the upstream: {:?}",
        upstream
            .requests()
            .iter()
            .map(|r| r.raw_head_text())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_is_not_an_upstream_failure() {
    let (a, b) = Upstream::start_pair("a", "b");
    let gateway = Gateway::start(
        &config("upstream:\n  passiveHealthCheck: {failures: 1, ejectionTime: 10m}\n"),
        &[
            ("backends", &service("pair", &[a.addr(), b.addr()])),
            ("route", &route("pair", "PathPrefix(`/`)", "pair")),
        ],
    )
    .await;
    for i in 0..2 {
        let mut connection = Connection::open(gateway.addr("web")).await;
        connection
            .write_raw(
                format!("GET /delay/600?cancel={i} HTTP/1.1\r\nHost: app\r\n\r\n").as_bytes(),
            )
            .await;
        eventually("the request reaches an upstream", WAIT, async || {
            (a.count() + b.count() == i + 1).then_some(())
        })
        .await;
        drop(connection);
    }
    // Let the upstream answers come and go.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        a.count() + b.count(),
        2,
        "a cancelled request was retried on the other endpoint"
    );
    a.clear();
    b.clear();
    for i in 0..6 {
        let response = gateway.get("web", &format!("/after/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
    }
    assert!(
        a.count() > 0 && b.count() > 0,
        "an endpoint was ejected for a client's cancellation: a {}, b {}",
        a.count(),
        b.count()
    );
    let noisy: Vec<_> = gateway
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("ERROR") || l.contains("ejected"))
        .collect();
    assert!(
        noisy.is_empty(),
        "cancellations logged as errors: {noisy:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_is_400_and_never_forwarded() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    // Longer than the 24 bytes Pingora waits for to rule out an HTTP/2 preface.
    refused(
        &gateway,
        &upstream,
        "GET /x HTTP/1.1\r\nUser-Agent: hostile\r\n\r\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_without_host_goes_upstream_with_a_host() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    let (response, _) = raw(
        &gateway,
        "GET /old HTTP/1.0\r\nUser-Agent: hostile\r\n\r\n",
        "GET",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let recorded = upstream.requests();
    let head = recorded[0].raw_head_text();
    let host = recorded[0].header_all("host");
    assert_eq!(host.len(), 1, "{head}");
    assert!(!host[0].is_empty(), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_target_in_no_known_form_is_400() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    for target in ["faults/x", "*", "x", "example.com:80"] {
        refused(
            &gateway,
            &upstream,
            &format!("GET {target} HTTP/1.1\r\nHost: app\r\n\r\n"),
        )
        .await;
    }
    // Absolute-form is routed by its path.
    let (response, _) = raw(
        &gateway,
        "GET http://app/abs?q=1 HTTP/1.1\r\nHost: app\r\n\r\n",
        "GET",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    // Forwarded as received: absolute-form names the same path.
    let path = &upstream.requests()[0].path;
    assert!(path == "/abs?q=1" || path == "http://app/abs?q=1", "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_rejected() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    for target in [
        "/a/../b",
        "/..",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a/.%2E/b",
        "/a/%2E/b",
        "/a/..?q",
    ] {
        refused(
            &gateway,
            &upstream,
            &format!("GET {target} HTTP/1.1\r\nHost: app\r\n\r\n"),
        )
        .await;
    }
    // Dots inside a segment are just characters.
    let (response, _) = raw(
        &gateway,
        "GET /a/..b/.c/d.. HTTP/1.1\r\nHost: app\r\n\r\n",
        "GET",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(upstream.requests()[0].path, "/a/..b/.c/d..");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_list_is_400() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    refused(
        &gateway,
        &upstream,
        "POST /cl HTTP/1.1\r\nHost: app\r\nContent-Length: 5, 5\r\n\r\nhello",
    )
    .await;
    refused(
        &gateway,
        &upstream,
        "POST /cl HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_coding_other_than_chunked_is_400() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    refused(
        &gateway,
        &upstream,
        "POST /te HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    refused(
        &gateway,
        &upstream,
        "POST /te HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    // Plain chunked still passes, as chunked.
    let (response, _) = raw(
        &gateway,
        "POST /te HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(upstream.requests()[0].body, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_beside_transfer_encoding_closes_after_the_response() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    let (response, mut connection) = raw(
        &gateway,
        "POST /both HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let recorded = &upstream.requests()[0];
    assert_eq!(recorded.body, b"hello");
    assert!(
        recorded.header("content-length").is_none(),
        "{}",
        recorded.raw_head_text()
    );
    assert!(
        closes(&mut connection, WAIT).await,
        "the connection stays open after a request with both Content-Length and Transfer-Encoding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_without_keep_alive_is_closed_after_the_response() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    let (response, mut connection) =
        raw(&gateway, "GET /old HTTP/1.0\r\nHost: app\r\n\r\n", "GET").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        !response
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")),
        "{:?}",
        response.headers
    );
    assert!(
        closes(&mut connection, WAIT).await,
        "an HTTP/1.0 connection without keep-alive stays open"
    );

    // With keep-alive asked for, it stays open for the next request.
    let (response, mut connection) = raw(
        &gateway,
        "GET /old HTTP/1.0\r\nHost: app\r\nConnection: keep-alive\r\n\r\n",
        "GET",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let again = connection
        .send_raw_and_read(b"GET /again HTTP/1.1\r\nHost: app\r\n\r\n", "GET", WAIT)
        .await
        .expect("a second request on the kept-alive connection");
    assert_eq!(again.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_responses_do_not_name_pingora() {
    let upstream = Upstream::start("app");
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[upstream.addr()])),
            ("dead", &service("dead", &[closed])),
            ("route", &route("app", "PathPrefix(`/app`)", "app")),
            ("route-dead", &route("dead", "PathPrefix(`/dead`)", "dead")),
        ],
    )
    .await;
    for (path, status) in [("/dead", 502), ("/nothing", 404)] {
        let (response, _) = raw(
            &gateway,
            &format!("GET {path} HTTP/1.1\r\nHost: app\r\n\r\n"),
            "GET",
        )
        .await;
        assert_eq!(response.status, status, "{path}");
        assert!(
            response.header("server").is_none(),
            "{path}: {:?}",
            response.headers
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_405_to_other_methods() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    let admin = gateway.addr("admin");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/api/routes", "/readyz", "/livez"] {
            let response = traverse_e2e::send(admin, method, path, &[], b"x", WAIT)
                .await
                .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
            assert_eq!(response.status, 405, "{method} {path}");
            assert_eq!(
                response.header("allow"),
                Some("GET, HEAD"),
                "{method} {path}"
            );
        }
    }
    let head = traverse_e2e::send(admin, "HEAD", "/livez", &[], b"", WAIT)
        .await
        .expect("HEAD /livez");
    assert_eq!(head.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_responses_close_the_connection() {
    let upstream = Upstream::start("app");
    let gateway = start(
        "shutdown:\n  drainDelay: 3s\n  gracePeriod: 5s\n",
        &upstream,
    )
    .await;
    let mut kept = Connection::open(gateway.addr("web")).await;
    let first = kept
        .request("GET", "/before", &[], b"")
        .await
        .expect("a response before SIGTERM");
    assert_eq!(first.status, 200);
    assert!(first
        .header("connection")
        .is_none_or(|c| !c.eq_ignore_ascii_case("close")));
    let mut idle = Connection::open(gateway.addr("web")).await;
    let idle_first = idle
        .request("GET", "/idle", &[], b"")
        .await
        .expect("a response before SIGTERM");
    assert_eq!(idle_first.status, 200);

    gateway.sigterm();
    eventually("readiness goes off", WAIT, async || {
        (gateway.readyz().await != Ok(200)).then_some(())
    })
    .await;
    let during = kept
        .request("GET", "/during", &[], b"")
        .await
        .expect("a request on a kept-alive connection is answered while draining");
    assert_eq!(during.status, 200);
    assert_eq!(
        during
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close"),
        "{:?}",
        during.headers
    );
    assert!(
        closes(&mut kept, WAIT).await,
        "the connection stays open after Connection: close"
    );
    // An idle kept-alive connection is closed by the time the listeners close.
    assert!(
        closes(&mut idle, Duration::from_secs(8)).await,
        "an idle kept-alive connection stays open while draining"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_uri_is_414_and_a_large_header_431_by_default() {
    let upstream = Upstream::start("app");
    let gateway = start("", &upstream).await;
    let long = format!("/{}", "a".repeat(8 * 1024));
    refused_with(
        &gateway,
        &upstream,
        &format!("GET {long} HTTP/1.1\r\nHost: app\r\n\r\n"),
        414,
    )
    .await;
    let big = "b".repeat(64 * 1024);
    refused_with(
        &gateway,
        &upstream,
        &format!("GET /big HTTP/1.1\r\nHost: app\r\nX-Big: {big}\r\n\r\n"),
        431,
    )
    .await;
    // Just under both limits passes.
    let fits = format!("/{}", "a".repeat(8 * 1024 - 1));
    let (response, _) = raw(
        &gateway,
        &format!(
            "GET {fits} HTTP/1.1\r\nHost: app\r\nX-Big: {}\r\n\r\n",
            "b".repeat(50 * 1024)
        ),
        "GET",
    )
    .await;
    assert_eq!(response.status, 200);
    // Refusals are in the access log like any other request.
    for (path, status) in [("/big", 431), ("/aaaa", 414)] {
        let event = gateway
            .wait_for_log("the refusal's access event", WAIT, |l| {
                l.contains("traverse::access") && l.contains(&format!("status={status}"))
            })
            .await;
        assert!(event.contains(path), "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_per_entrypoint() {
    let upstream = Upstream::start("app");
    let config = "entryPoints:
  web:
    address: \"{web}\"
    maxUriLength: 100
    maxHeaderBytes: 2048
  other:
    address: \"{other}\"
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
";
    let gateway = Gateway::start(
        config,
        &[
            ("backends", &service("app", &[upstream.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    let long = format!("/{}", "a".repeat(100));
    refused_with(
        &gateway,
        &upstream,
        &format!("GET {long} HTTP/1.1\r\nHost: app\r\n\r\n"),
        414,
    )
    .await;
    refused_with(
        &gateway,
        &upstream,
        &format!(
            "GET /h HTTP/1.1\r\nHost: app\r\nX-Big: {}\r\n\r\n",
            "b".repeat(2048)
        ),
        431,
    )
    .await;
    // The other entrypoint keeps the defaults.
    let mut connection = Connection::open(gateway.addr("other")).await;
    let response = connection
        .send_raw_and_read(
            format!("GET {long} HTTP/1.1\r\nHost: app\r\n\r\n").as_bytes(),
            "GET",
            WAIT,
        )
        .await
        .expect("a response on the other entrypoint");
    assert_eq!(response.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_bytes_is_413() {
    let upstream = Upstream::start("app");
    let gateway = start_with_web("    maxBodyBytes: 16\n", &upstream).await;
    // Declared too large: refused before anything is forwarded.
    refused_with(
        &gateway,
        &upstream,
        "POST /big HTTP/1.1\r\nHost: app\r\nContent-Length: 17\r\n\r\n01234567890123456",
        413,
    )
    .await;
    // Within the limit: served.
    let (response, _) = raw(
        &gateway,
        "POST /fits HTTP/1.1\r\nHost: app\r\nContent-Length: 16\r\n\r\n0123456789012345",
        "POST",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    // Chunked, growing past the limit: cut off with 413, and never a complete request
    // upstream.
    let (response, mut connection) = raw(
        &gateway,
        "POST /chunked HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n\
         10\r\n0123456789012345\r\n10\r\n0123456789012345\r\n0\r\n\r\n",
        "POST",
    )
    .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(closes(&mut connection, WAIT).await);
    let complete: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.raw_head_text().contains("/chunked") && r.body.len() > 16)
        .collect();
    assert!(complete.is_empty(), "the whole body reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entrypoint_that_cannot_listen_stops_the_process() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().expect("its address");
    let admin = traverse_e2e::free_port();
    let dir = traverse_e2e::gateway::write_config_dir(
        &format!(
            "entryPoints:\n  web:\n    address: \"{address}\"\nadmin:\n  address: \"127.0.0.1:{admin}\"\n"
        ),
        &[],
    );
    let mut child = std::process::Command::new(traverse_e2e::gateway::binary())
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("traverse.yaml"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting traverse");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for traverse") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("traverse kept running with entrypoint web unable to listen on {address}");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr)
        .expect("reading stderr");
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("entryPoints.web") && stderr.contains(&address.to_string()),
        "the error does not name the entrypoint and address:\n{stderr}"
    );
    drop(taken);
}
