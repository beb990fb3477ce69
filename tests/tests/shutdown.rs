//! SIGTERM end to end: readiness off, no new connections, in-flight requests finish
//! (within the grace period), exit 0. Time bounds are generous deadlines, not benchmarks.

use std::time::{Duration, Instant};

use traverse_e2e::{
    config, eventually, route, send, service, try_get, ClientError, Gateway, Response, Upstream,
};

async fn start(grace: &str, slow: &Upstream) -> Gateway {
    Gateway::start(
        &config(&format!("shutdown:\n  gracePeriod: {grace}\n")),
        &[
            ("backends", &service("slow", &[slow.addr()])),
            ("route", &route("slow", "PathPrefix(`/`)", "slow")),
        ],
    )
    .await
}

/// Starts `GET path` in the background and waits until the upstream has received it.
async fn in_flight(
    gateway: &Gateway,
    upstream: &Upstream,
    path: &'static str,
) -> tokio::task::JoinHandle<Result<Response, ClientError>> {
    let web = gateway.addr("web");
    let request =
        tokio::spawn(
            async move { send(web, "GET", path, &[], b"", Duration::from_secs(20)).await },
        );
    eventually(
        "the request reaches the upstream",
        Duration::from_secs(5),
        async || (upstream.count_path(path) == 1).then_some(()),
    )
    .await;
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_0() {
    let slow = Upstream::start("slow");
    let mut gateway = start("5s", &slow).await;
    let request = in_flight(&gateway, &slow, "/delay/1500").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.sigterm();
    let signalled = Instant::now();

    // Readiness goes off while the request is still in flight: /readyz answers 503, or the
    // admin listener is already closed.
    let readiness = eventually(
        "/readyz stops answering 200",
        Duration::from_secs(2),
        async || match gateway.readyz().await {
            Ok(200) => None,
            other => Some(other),
        },
    )
    .await;
    eprintln!("/readyz while draining: {readiness:?}");
    assert!(
        matches!(readiness, Ok(503) | Err(_)),
        "/readyz while draining: {readiness:?}"
    );
    assert!(
        !request.is_finished(),
        "readiness went off only after the in-flight request ended"
    );

    // New connections are refused (or fail) while the old request drains.
    let web = gateway.addr("web");
    let refused = eventually(
        "a new request on the entrypoint fails",
        Duration::from_secs(2),
        async || {
            try_get(web, "/new", &[], Duration::from_millis(500))
                .await
                .err()
        },
    )
    .await;
    eprintln!("a new request while draining: {refused}");
    assert!(
        !request.is_finished(),
        "new connections were still served after the in-flight request ended ({refused})"
    );

    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the in-flight request finishes")
        .expect("request task")
        .expect("the in-flight request gets a response");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("slow"));

    let status = gateway
        .wait_exit(Duration::from_secs(8))
        .await
        .expect("traverse exits after draining");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        took < Duration::from_secs(5),
        "exit within the 5s grace period once drained: {took:?}"
    );
    assert!(
        gateway
            .stderr_lines()
            .iter()
            .any(|l| l.contains("drained; exiting")),
        "the drain is logged as complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_bounded_by_the_grace_period() {
    let slow = Upstream::start("slow");
    let mut gateway = start("1s", &slow).await;
    let request = in_flight(&gateway, &slow, "/delay/10000").await;
    gateway.sigterm();
    let signalled = Instant::now();

    let status = gateway
        .wait_exit(Duration::from_secs(6))
        .await
        .expect("traverse exits once the grace period is over");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        took >= Duration::from_millis(800),
        "the in-flight request got (about) the 1s grace period: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "exit about 1s after SIGTERM, not when the 10s request ends: {took:?}"
    );
    // The abandoned request gets no successful answer.
    let outcome = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the abandoned request ends with the process")
        .expect("request task");
    assert!(!matches!(&outcome, Ok(r) if r.status == 200), "{outcome:?}");
    assert!(
        gateway
            .stderr_lines()
            .iter()
            .any(|l| l.contains("grace period over")),
        "the cut-short drain is logged"
    );
}

#[tokio::test]
async fn sigterm_with_nothing_in_flight_exits_promptly() {
    let slow = Upstream::start("slow");
    let mut gateway = start("30s", &slow).await;
    assert_eq!(gateway.get("web", "/warm-up", &[]).await.status, 200);
    gateway.sigterm();
    let signalled = Instant::now();
    let status = gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("traverse exits without waiting out the 30s grace period");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "idle drain took {:?}",
        signalled.elapsed()
    );
}
