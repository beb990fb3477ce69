//! Active health checks (`healthCheck` on a route's Service) end to end: an endpoint
//! whose health path starts failing leaves rotation while it keeps answering other
//! paths, requests keep succeeding on the healthy one, and it comes back once its
//! health path passes again; `/api/routes` and `traverse.service.server.up` say so.
//! Checks go over HTTP/1.1, h2c, and https with the Service's ServersTransport.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use traverse_e2e::pki::{Leaf, TestCa, Usage};
use traverse_e2e::prometheus::{self, Format};
use traverse_e2e::{config, diagnostics, service, Gateway, TlsFront, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 server whose `/health` answers a status the test sets, and every other
/// path `200` with `X-Upstream: <name>`; it counts the other requests and keeps the
/// head of the last health check.
struct Switchable {
    health: Arc<AtomicU16>,
    served: Arc<AtomicUsize>,
    last_check: Arc<Mutex<String>>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Switchable {
    async fn start(name: &'static str, address: SocketAddr) -> Switchable {
        let listener = TcpListener::bind(address).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (health, served) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicUsize::new(0)));
        let last_check = Arc::new(Mutex::new(String::new()));
        let (h, s, l) = (health.clone(), served.clone(), last_check.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (h, s, l) = (h.clone(), s.clone(), l.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                        buffer.drain(..end + 4);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let status = if path == "/health" {
                            *l.lock().expect("lock") = head;
                            h.load(Ordering::SeqCst)
                        } else {
                            s.fetch_add(1, Ordering::SeqCst);
                            200
                        };
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nX-Upstream: {name}\r\nContent-Length: 2\r\n\r\nok"
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Switchable {
            health,
            served,
            last_check,
            address,
            task,
        }
    }
}

impl Drop for Switchable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn routes(check: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: checked
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: pair
          port: 80
          healthCheck: {check}
"
    )
}

async fn server_up(gateway: &Gateway, address: SocketAddr) -> f64 {
    let text = gateway.get("admin", "/metrics", &[]).await.text();
    let families = prometheus::parse(&text, Format::Text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    prometheus::sum(
        &families,
        "traverse_service_server_up",
        &[("url", &format!("http://{address}"))],
    )
}

#[tokio::test]
async fn an_endpoint_failing_its_health_check_leaves_rotation_until_it_passes() {
    let steady = Upstream::start("steady");
    let flaky_address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), steady.port()));
    let flaky = Switchable::start("flaky", flaky_address).await;
    let check = "{path: /health, interval: 100ms, timeout: 1s, hostname: health.local, headers: {X-Probe: traverse}}";
    let gateway = Gateway::start(
        &config(""),
        &[
            (
                "backends",
                &service("pair", &[steady.addr(), flaky_address]),
            ),
            ("routes", &routes(check)),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");
    assert_eq!(
        json["routes"][0]["services"][0]["healthCheck"], true,
        "{json:#}"
    );

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..10 {
        let response = gateway.get("web", &format!("/before/{i}"), &[]).await;
        assert_eq!(response.status, 200);
        seen.insert(response.header("x-upstream").unwrap_or("").to_owned());
    }
    assert_eq!(
        seen.len(),
        2,
        "both endpoints serve while healthy: {seen:?}"
    );
    let probe = flaky.last_check.lock().expect("lock").clone();
    assert!(probe.starts_with("GET /health HTTP/1.1"), "{probe}");
    let probe = probe.to_ascii_lowercase();
    assert!(probe.contains("host: health.local"), "{probe}");
    assert!(probe.contains("x-probe: traverse"), "{probe}");

    flaky.health.store(503, Ordering::SeqCst);
    gateway
        .wait_for("the flaky endpoint out of rotation", WAIT, |json| {
            json["routes"][0]["services"][0]["unhealthy"]
                == serde_json::json!([flaky_address.to_string()])
        })
        .await;
    assert_eq!(server_up(&gateway, flaky_address).await, 0.0);
    assert_eq!(server_up(&gateway, steady.addr()).await, 1.0);
    let served = flaky.served.load(Ordering::SeqCst);
    for i in 0..20 {
        let response = gateway.get("web", &format!("/during/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.header("x-upstream"), Some("steady"), "request {i}");
    }
    assert_eq!(
        flaky.served.load(Ordering::SeqCst),
        served,
        "no request reached the unhealthy endpoint"
    );

    flaky.health.store(200, Ordering::SeqCst);
    gateway
        .wait_for("the flaky endpoint back in rotation", WAIT, |json| {
            json["routes"][0]["services"][0].get("unhealthy").is_none()
        })
        .await;
    assert_eq!(server_up(&gateway, flaky_address).await, 1.0);
    let mut back = 0;
    for i in 0..10 {
        let response = gateway.get("web", &format!("/after/{i}"), &[]).await;
        assert_eq!(response.status, 200);
        back += usize::from(response.header("x-upstream") == Some("flaky"));
    }
    assert_eq!(back, 5, "round robin again over both endpoints");
}

/// A check expecting one status fails an endpoint that answers another.
#[tokio::test]
async fn a_check_expecting_a_status_fails_on_any_other() {
    let steady = Upstream::start("steady");
    let flaky_address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), steady.port()));
    let flaky = Switchable::start("flaky", flaky_address).await;
    // The test upstream answers /status/204 with 204; the switchable one answers 200 to
    // any path but /health, which is not what this check expects.
    let gateway = Gateway::start(
        &config(""),
        &[
            (
                "backends",
                &service("pair", &[steady.addr(), flaky_address]),
            ),
            (
                "routes",
                &routes("{path: /status/204, interval: 100ms, status: 204}"),
            ),
        ],
    )
    .await;
    gateway
        .wait_for(
            "only the endpoint answering 204 in rotation",
            WAIT,
            |json| {
                json["routes"][0]["services"][0]["unhealthy"]
                    == serde_json::json!([flaky_address.to_string()])
            },
        )
        .await;
    for i in 0..6 {
        let response = gateway.get("web", &format!("/{i}"), &[]).await;
        assert_eq!(response.header("x-upstream"), Some("steady"), "request {i}");
    }
    drop(flaky);
}

/// Between Services: a route's Service whose every endpoint fails its check gets no
/// requests while the other Service serves.
#[tokio::test]
async fn a_service_whose_endpoints_all_fail_their_checks_is_skipped() {
    let steady = Upstream::start("steady");
    let flaky = Switchable::start("flaky", SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await;
    let flaky_address = flaky.address;
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: two
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: steady
          port: 80
          healthCheck: {path: /health, interval: 100ms}
        - name: flaky
          port: 80
          healthCheck: {path: /health, interval: 100ms}
";
    let backends = [
        service("steady", &[steady.addr()]),
        service("flaky", &[flaky_address]),
    ]
    .join("---\n");
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;
    gateway
        .wait_for("both services serving", WAIT, |json| {
            json["routes"][0]["services"]
                .as_array()
                .is_some_and(|s| s.len() == 2)
        })
        .await;
    flaky.health.store(500, Ordering::SeqCst);
    gateway
        .wait_for("the flaky service out of rotation", WAIT, |json| {
            json["routes"][0]["services"][1]["unhealthy"]
                == serde_json::json!([flaky_address.to_string()])
        })
        .await;
    let served = flaky.served.load(Ordering::SeqCst);
    for i in 0..10 {
        let response = gateway.get("web", &format!("/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.header("x-upstream"), Some("steady"), "request {i}");
    }
    assert_eq!(flaky.served.load(Ordering::SeqCst), served);
}

/// A `failover` TraefikService sends everything to its service while that has an
/// endpoint in rotation, to its fallback while it has none, and back.
#[tokio::test]
async fn a_failover_uses_its_fallback_while_its_service_is_down() {
    let spare = Upstream::start("spare");
    let main = Switchable::start("main", SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await;
    let services = "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: main
spec:
  weighted:
    services:
      - name: main
        port: 80
        healthCheck: {path: /health, interval: 100ms}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: spare
spec:
  weighted:
    services:
      - name: spare
        port: 80
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: failover
spec:
  failover:
    service: main
    fallback: spare
    healthCheck: {}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: failover
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: failover
          kind: TraefikService
";
    let backends = [
        service("main", &[main.address]),
        service("spare", &[spare.addr()]),
    ]
    .join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("services", services)],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");

    let upstreams = async |from: &str| -> Vec<String> {
        let mut seen = Vec::new();
        for i in 0..6 {
            let response = gateway.get("web", &format!("/{from}/{i}"), &[]).await;
            assert_eq!(response.status, 200, "{from} {i}");
            seen.push(response.header("x-upstream").unwrap_or("").to_owned());
        }
        seen
    };
    assert_eq!(upstreams("up").await, ["main"; 6]);
    assert_eq!(
        spare.count(),
        0,
        "the fallback gets nothing while the service is up"
    );

    main.health.store(503, Ordering::SeqCst);
    gateway
        .wait_for("the main endpoint out of rotation", WAIT, |json| {
            json["routes"][0]["services"][0]["unhealthy"]
                == serde_json::json!([main.address.to_string()])
        })
        .await;
    assert_eq!(upstreams("down").await, ["spare"; 6]);

    main.health.store(200, Ordering::SeqCst);
    gateway
        .wait_for("the main endpoint back", WAIT, |json| {
            json["routes"][0]["services"][0].get("unhealthy").is_none()
        })
        .await;
    assert_eq!(upstreams("back").await, ["main"; 6]);
}

/// A reload that removes the check puts an endpoint that was failing it back in
/// rotation: the check stops and lets go of the address.
#[tokio::test]
async fn removing_the_check_puts_the_endpoint_back() {
    let steady = Upstream::start("steady");
    let flaky_address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), steady.port()));
    let flaky = Switchable::start("flaky", flaky_address).await;
    flaky.health.store(503, Ordering::SeqCst);
    let gateway = Gateway::start(
        &config(""),
        &[
            (
                "backends",
                &service("pair", &[steady.addr(), flaky_address]),
            ),
            ("routes", &routes("{path: /health, interval: 100ms}")),
        ],
    )
    .await;
    gateway
        .wait_for("the flaky endpoint out of rotation", WAIT, |json| {
            json["routes"][0]["services"][0]["unhealthy"]
                == serde_json::json!([flaky_address.to_string()])
        })
        .await;
    gateway.write_manifest(
        "routes",
        &traverse_e2e::route("checked", "PathPrefix(`/`)", "pair"),
    );
    gateway
        .wait_for("the check gone", WAIT, |json| {
            json["routes"][0]["services"][0]["healthCheck"] == false
        })
        .await;
    let json = gateway.routes_json().await;
    assert!(
        json["routes"][0]["services"][0].get("unhealthy").is_none(),
        "{json:#}"
    );
    let mut flaky_served = 0;
    for i in 0..6 {
        let response = gateway.get("web", &format!("/{i}"), &[]).await;
        assert_eq!(response.status, 200);
        flaky_served += usize::from(response.header("x-upstream") == Some("flaky"));
    }
    assert_eq!(flaky_served, 3, "unchecked, both endpoints serve");
}

/// Routes naming one Service port with different checks (or none) each keep their own:
/// a check failing on an address takes it out of the routes with that check only, as
/// each Traefik service's balancer holds its own servers' status.
#[tokio::test]
async fn a_failing_check_takes_an_endpoint_out_of_the_routes_with_that_check_only() {
    let steady = Upstream::start("steady");
    let flaky_address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), steady.port()));
    let flaky = Switchable::start("flaky", flaky_address).await;
    // The Service reference's fields follow the shared route's `port: 80`.
    let route = |name: &str, check: &str| {
        let rule = format!("PathPrefix(`/{name}`)");
        format!("{}{check}", traverse_e2e::route(name, &rule, "pair"))
    };
    let routes = [
        route("unchecked", ""),
        route(
            "health",
            "          healthCheck: {path: /health, interval: 100ms}\n",
        ),
        route(
            "ready",
            "          healthCheck: {path: /ready, interval: 100ms}\n",
        ),
    ]
    .join("---\n");
    let gateway = Gateway::start(
        &config(""),
        &[
            (
                "backends",
                &service("pair", &[steady.addr(), flaky_address]),
            ),
            ("routes", &routes),
        ],
    )
    .await;
    let service_of = |json: &serde_json::Value, prefix: &str| {
        json["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["rule"].as_str().is_some_and(|rule| rule.contains(prefix)))
            .map(|r| r["services"][0].clone())
            .unwrap_or_default()
    };
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");
    for (prefix, checked) in [("/unchecked", false), ("/health", true), ("/ready", true)] {
        assert_eq!(
            service_of(&json, prefix)["healthCheck"],
            checked,
            "{prefix}: {json:#}"
        );
    }

    flaky.health.store(503, Ordering::SeqCst);
    gateway
        .wait_for(
            "the flaky endpoint out of the /health route",
            WAIT,
            |json| {
                service_of(json, "/health")["unhealthy"]
                    == serde_json::json!([flaky_address.to_string()])
            },
        )
        .await;
    let json = gateway.routes_json().await;
    for prefix in ["/unchecked", "/ready"] {
        assert!(
            service_of(&json, prefix).get("unhealthy").is_none(),
            "{prefix}: {json:#}"
        );
    }
    for (prefix, flaky_share) in [("/health", 0), ("/unchecked", 5), ("/ready", 5)] {
        let mut served = 0;
        for i in 0..10 {
            let response = gateway.get("web", &format!("{prefix}/{i}"), &[]).await;
            assert_eq!(response.status, 200, "{prefix} request {i}");
            served += usize::from(response.header("x-upstream") == Some("flaky"));
        }
        assert_eq!(
            served, flaky_share,
            "{prefix}: requests to the flaky endpoint"
        );
    }
}

#[tokio::test]
async fn an_h2c_service_is_checked_over_http2() {
    let (failing, passing) = (
        Upstream::start_h2c("failing"),
        Upstream::start_h2c("passing"),
    );
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: checked
spec:
  routes:
    - match: PathPrefix(`/failing`)
      services:
        - name: failing
          port: 80
          scheme: h2c
          healthCheck: {path: /status/503, interval: 100ms, hostname: health.local}
    - match: PathPrefix(`/passing`)
      services:
        - name: passing
          port: 80
          scheme: h2c
          healthCheck: {path: /status/204, interval: 100ms}
";
    let backends = [
        service("failing", &[failing.addr()]),
        service("passing", &[passing.addr()]),
    ]
    .join("---\n");
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");
    gateway
        .wait_for("the failing endpoint out of rotation", WAIT, |json| {
            json.to_string()
                .contains(&format!("\"unhealthy\":[\"{}\"]", failing.addr()))
        })
        .await;
    let up = |address: SocketAddr| {
        let gateway = &gateway;
        async move {
            let text = gateway.get("admin", "/metrics", &[]).await.text();
            let families =
                prometheus::parse(&text, Format::Text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            prometheus::sum(
                &families,
                "traverse_service_server_up",
                &[("url", &format!("h2c://{address}"))],
            )
        }
    };
    assert_eq!(up(failing.addr()).await, 0.0);
    assert_eq!(up(passing.addr()).await, 1.0);
    // The checks went over HTTP/2 (no HTTP/1 head), to the configured path and host.
    let check = failing
        .requests()
        .into_iter()
        .find(|r| r.path == "/status/503")
        .expect("a check");
    assert!(check.raw_head.is_empty(), "HTTP/2: {check:?}");
    let passing_checks = passing.count_path("/status/204");
    assert!(passing_checks >= 1, "{:?}", passing.requests());
    assert!(passing.requests().iter().all(|r| r.raw_head.is_empty()));
    assert_eq!(gateway.get("web", "/passing/x", &[]).await.status, 200);
}

/// TLS fronts on one port of 127.0.0.1, 127.0.0.2, ..., as the endpoints of one
/// EndpointSlice must be: each serves its certificate in front of its backend.
async fn fronts_on_one_port(fronts: &[(&Leaf, SocketAddr)]) -> Vec<TlsFront> {
    'retry: for _ in 0..50 {
        let mut started: Vec<TlsFront> = Vec::new();
        for (i, (leaf, backend)) in fronts.iter().enumerate() {
            let port = started.first().map_or(0, |f| f.addr().port());
            let address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1 + i as u8), port));
            match TlsFront::start_on(address, leaf, None, *backend).await {
                Ok(front) => started.push(front),
                Err(_) => continue 'retry,
            }
        }
        return started;
    }
    panic!(
        "no port free on each of 127.0.0.1 to 127.0.0.{}",
        fronts.len()
    );
}

/// An https Service checked over https with its ServersTransport's CA and server name:
/// an endpoint whose certificate that CA did not sign never enters rotation, one whose
/// health path fails leaves it and comes back, and the healthy one serves throughout.
#[tokio::test]
async fn an_https_service_is_checked_with_its_servers_transport() {
    let (ca, stranger) = (TestCa::new(), TestCa::new());
    let trusted = ca.issue("backend.internal", &[Usage::ServerAuth]);
    let forged = stranger.issue("backend.internal", &[Usage::ServerAuth]);
    let steady = Upstream::start("steady");
    let flaky = Switchable::start("flaky", SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await;
    let untrusted = Upstream::start("untrusted");
    let fronts = fronts_on_one_port(&[
        (&trusted, steady.addr()),
        (&trusted, flaky.address),
        (&forged, untrusted.addr()),
    ])
    .await;
    let [steady_at, flaky_at, untrusted_at] = [0, 1, 2].map(|i| fronts[i].addr());
    let routes = format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: checked
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: secure
          port: 80
          scheme: https
          serversTransport: internal
          healthCheck: {{path: /health, interval: 100ms, timeout: 1s, hostname: health.local}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata:
  name: internal
spec:
  serverName: backend.internal
  rootCAs: [{{secret: backend-ca}}]
---
apiVersion: v1
kind: Secret
metadata:
  name: backend-ca
stringData:
  ca.crt: {:?}
",
        ca.pem
    );
    let gateway = Gateway::start(
        &config(""),
        &[
            (
                "backends",
                &service("secure", &[steady_at, flaky_at, untrusted_at]),
            ),
            ("routes", &routes),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json:#}");
    let unhealthy = |json: &serde_json::Value| {
        let mut found: Vec<String> = json["routes"][0]["services"][0]["unhealthy"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    };
    gateway
        .wait_for("the untrusted endpoint out of rotation", WAIT, |json| {
            unhealthy(json) == [untrusted_at.to_string()]
        })
        .await;

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..10 {
        let response = gateway.get("web", &format!("/before/{i}"), &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        seen.insert(response.header("x-upstream").unwrap_or("").to_owned());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["flaky", "steady"],
        "the two trusted endpoints serve"
    );
    // The check went through TLS as HTTP/1.1, with the configured Host.
    let probe = flaky.last_check.lock().expect("lock").to_ascii_lowercase();
    assert!(probe.starts_with("get /health http/1.1"), "{probe}");
    assert!(probe.contains("host: health.local"), "{probe}");

    flaky.health.store(503, Ordering::SeqCst);
    let mut both = [flaky_at.to_string(), untrusted_at.to_string()];
    both.sort();
    gateway
        .wait_for("the flaky endpoint out of rotation", WAIT, |json| {
            unhealthy(json) == both
        })
        .await;
    let served = flaky.served.load(Ordering::SeqCst);
    for i in 0..10 {
        let response = gateway.get("web", &format!("/during/{i}"), &[]).await;
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.header("x-upstream"), Some("steady"), "request {i}");
    }
    assert_eq!(flaky.served.load(Ordering::SeqCst), served);

    flaky.health.store(200, Ordering::SeqCst);
    gateway
        .wait_for("the flaky endpoint back in rotation", WAIT, |json| {
            unhealthy(json) == [untrusted_at.to_string()]
        })
        .await;
    // The stranger's certificate never passed a handshake: no check and no request
    // reached the server behind it.
    assert!(fronts[2].failed_handshakes() >= 1);
    assert_eq!(fronts[2].handshakes(), 0);
    assert_eq!(untrusted.count(), 0);
}

/// A Service whose every endpoint fails its check answers 503 without trying any, as
/// Traefik's balancer answers `no available server`; it serves again once one passes.
#[tokio::test]
async fn a_service_whose_every_endpoint_fails_its_check_answers_503_without_trying() {
    let flaky = Switchable::start("flaky", SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await;
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("pair", &[flaky.address])),
            ("routes", &routes("{path: /health, interval: 100ms}")),
        ],
    )
    .await;
    flaky.health.store(503, Ordering::SeqCst);
    gateway
        .wait_for("the endpoint out of rotation", WAIT, |json| {
            json["routes"][0]["services"][0]["unhealthy"]
                == serde_json::json!([flaky.address.to_string()])
        })
        .await;
    let served = flaky.served.load(Ordering::SeqCst);
    for i in 0..5 {
        let response = gateway.get("web", &format!("/down/{i}"), &[]).await;
        assert_eq!(response.status, 503, "request {i}: {}", response.text());
        assert_eq!(
            response.text(),
            "no available server\n",
            "as Traefik answers"
        );
    }
    assert_eq!(
        flaky.served.load(Ordering::SeqCst),
        served,
        "no request reached the endpoint failing its check"
    );
    flaky.health.store(200, Ordering::SeqCst);
    gateway
        .wait_for("the endpoint back in rotation", WAIT, |json| {
            json["routes"][0]["services"][0].get("unhealthy").is_none()
        })
        .await;
    let response = gateway.get("web", "/up", &[]).await;
    assert_eq!(response.status, 200);
}
