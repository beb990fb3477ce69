//! Client-side (entrypoint) timeouts end to end: slow request headers, slow request
//! bodies and idle keep-alive connections. Bounds are generous deadlines.

use std::time::{Duration, Instant};

use traverse_e2e::{config_with_web, route, service, Connection, Gateway, Upstream};

/// A gateway whose `web` entrypoint has the given `timeouts` block, routing everything to `app`.
async fn start(timeouts: &str, app: &Upstream) -> Gateway {
    Gateway::start(
        &config_with_web(&format!("    timeouts:\n{timeouts}\n"), ""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = Upstream::start("app");
    let gateway = start("      idle: 1s", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    // Two requests on one connection: keep-alive works.
    for path in ["/one", "/two"] {
        let response = connection
            .request("GET", path, &[], b"")
            .await
            .expect("keep-alive request");
        assert_eq!(response.status, 200);
    }
    let idle_since = Instant::now();
    let rest = connection
        .wait_closed(Duration::from_secs(5))
        .await
        .expect("the idle connection is closed within 1s + margin");
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(700),
        "closed after {:?}, before the idle timeout",
        idle_since.elapsed()
    );
}

#[tokio::test]
async fn subsecond_idle_timeout_still_closes_idle_connections() {
    let app = Upstream::start("app");
    let gateway = start("      idle: 500ms", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    let response = connection
        .request("GET", "/one", &[], b"")
        .await
        .expect("keep-alive request");
    assert_eq!(response.status, 200);
    assert!(
        connection
            .wait_closed(Duration::from_secs(4))
            .await
            .is_some(),
        "a connection idle for 4s outlived `idle: 500ms`"
    );
}

#[tokio::test]
async fn slow_request_header_is_cut_off_by_the_read_timeout() {
    let app = Upstream::start("app");
    let gateway = start("      read: 1s", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    connection
        .write_raw(b"GET /slow-header HTTP/1.1\r\nHost: test\r\n")
        .await;
    let started = Instant::now();
    let answer = connection.wait_closed(Duration::from_secs(5)).await;
    assert!(
        answer.is_some(),
        "a request header left incomplete for 5s was not cut off by `read: 1s`"
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(app.count(), 0);
}

#[tokio::test]
async fn slow_request_body_is_cut_off_by_the_read_timeout() {
    let app = Upstream::start("app");
    let gateway = start("      read: 1s", &app).await;
    let mut connection = Connection::open(gateway.addr("web")).await;
    connection
        .write_raw(
            b"POST /slow-body HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await;
    let started = Instant::now();
    let answer = connection
        .wait_closed(Duration::from_secs(5))
        .await
        .expect("a stalled request body is cut off within 1s + margin");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "cut off after {took:?}, before the read timeout"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "either closed or answered 408: {text:?}"
    );
    let event = gateway
        .wait_for_log(
            "access event of the stalled body",
            Duration::from_secs(5),
            |l| l.contains("traverse::access") && l.contains("path=\"/slow-body\""),
        )
        .await;
    assert!(event.contains("status=408"), "{event}");
}
