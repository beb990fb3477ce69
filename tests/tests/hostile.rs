//! Hostile and ambiguous input, as raw bytes to the real binary: what must be refused is
//! refused and never reaches the upstream, what passes reaches it unambiguously, and a
//! client that hangs up is not held against anyone. See `docs/security.md`.

use std::time::Duration;

use traverse_e2e::{config, eventually, route, service, Connection, Gateway, Upstream};

/// How long a test waits for an answer.
const WAIT: Duration = Duration::from_secs(5);

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
