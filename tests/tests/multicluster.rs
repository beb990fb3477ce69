//! Parent and children over uplinks, end to end: real gateways, real upstreams and the
//! real rotel collector. A parent forwards over uplinks to two children in different
//! clusters; each child routes to its own upstream.

use std::net::SocketAddr;
use std::time::Duration;

use traverse_e2e::collector::{Span, SpanKind};
use traverse_e2e::{eventually, http_get, service, Collector, Gateway, Upstream};

const WAIT: Duration = Duration::from_secs(15);
const PARENT_CLUSTER: &str = "edge";

/// A child in `cluster`: an uplink entrypoint `uplink`, tracing to `collector` if any.
fn child_config(
    cluster: &str,
    uplink_address: &str,
    collector: Option<&Collector>,
    extra: &str,
) -> String {
    format!(
        "role: child
cluster: {{name: {cluster}}}
entryPoints:
  uplink: {{address: \"{uplink_address}\", uplink: true}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
{}{extra}",
        tracing(collector, "traverse-child")
    )
}

fn tracing(collector: Option<&Collector>, service_name: &str) -> String {
    collector.map_or_else(String::new, |c| {
        format!(
            "tracing:\n  serviceName: {service_name}\n  queue: {{scheduleDelay: 50ms}}\n  otlp: {{http: {{endpoint: \"{}\"}}}}\n",
            c.traces_http_url()
        )
    })
}

/// The child's manifests: the upstream as Service `app`, Uplink `whoami` with `weight`,
/// and a route on the uplink entrypoint bound to it.
fn child_manifests(upstream: &Upstream, weight: u32) -> Vec<(&'static str, String)> {
    vec![
        ("app", service("app", &[upstream.addr()])),
        (
            "uplink",
            format!(
                "apiVersion: traverse.dev/v1alpha1
kind: Uplink
metadata: {{name: whoami}}
spec: {{weight: {weight}, entryPoints: [uplink]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: whoami
  annotations: {{traverse.dev/uplinks: whoami}}
spec:
  entryPoints: [uplink]
  routes:
    - match: PathPrefix(`/`)
      services: [{{name: app, port: 80}}]
"
            ),
        ),
    ]
}

async fn start_child(
    cluster: &str,
    upstream: &Upstream,
    weight: u32,
    collector: Option<&Collector>,
    extra: &str,
) -> Gateway {
    let manifests = child_manifests(upstream, weight);
    let manifests: Vec<(&str, &str)> = manifests.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Gateway::start(
        &child_config(cluster, "{uplink}", collector, extra),
        &manifests,
    )
    .await
}

/// A parent in cluster `edge` forwarding everything on `web` to uplink `default/whoami`
/// (Traefik Hub's name for it) on `children`.
async fn start_parent(children: &[(&str, SocketAddr)], collector: Option<&Collector>) -> Gateway {
    start_parent_with(children, collector, FAST_HEALTH).await
}

/// Health checks that notice a dead child within half a second.
const FAST_HEALTH: &str = "healthCheck: {interval: 200ms, timeout: 500ms}
  passiveHealthCheck: {failures: 2, ejectionTime: 30s}";

async fn start_parent_with(
    children: &[(&str, SocketAddr)],
    collector: Option<&Collector>,
    health: &str,
) -> Gateway {
    let children: String = children
        .iter()
        .map(|(name, address)| format!("    {name}: {{address: \"{address}\"}}\n"))
        .collect();
    start_parent_yaml(&children, collector, health).await
}

/// A parent whose `multicluster.children` block is `children` (YAML, indented 4).
async fn start_parent_yaml(children: &str, collector: Option<&Collector>, health: &str) -> Gateway {
    let config = format!(
        "role: parent
cluster: {{name: {PARENT_CLUSTER}}}
entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
multicluster:
  {health}
  children:
{children}{}",
        tracing(collector, "traverse-parent")
    );
    let route = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop}
spec:
  entryPoints: [web]
  routes:
    - match: PathPrefix(`/`)
      services:
        - {name: default-whoami@multicluster, kind: TraefikService}
";
    let parent = Gateway::start(&config, &[("route", route)]).await;
    parent
}

async fn multicluster(gateway: &Gateway) -> serde_json::Value {
    http_get(gateway.addr("admin"), "/api/multicluster", &[])
        .await
        .json()
}

/// Waits until the parent has `n` children taking requests.
async fn wait_available(parent: &Gateway, n: usize) {
    eventually("children available", WAIT, async || {
        let view = multicluster(parent).await;
        let available = view["children"]
            .as_array()?
            .iter()
            .filter(|c| c["available"] == true)
            .count();
        (available == n).then_some(())
    })
    .await;
}

/// The spans of one trace once `n` have arrived.
async fn trace(collector: &Collector, trace_id: &str, n: usize) -> Vec<Span> {
    collector
        .wait_until(&format!("{n} spans of trace {trace_id}"), WAIT, |t| {
            let spans: Vec<Span> = t
                .spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            (spans.len() >= n).then_some(spans)
        })
        .await
}

fn one<'a>(spans: &'a [Span], what: &str, matches: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| matches(s)).collect();
    assert_eq!(found.len(), 1, "exactly one {what} in {spans:#?}");
    found[0]
}

fn cluster(span: &Span) -> &str {
    span.resource_attr("k8s.cluster.name").unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_across_clusters_is_one_trace() {
    let collector = Collector::start().await;
    let (app_a, app_b) = (Upstream::start("app-a"), Upstream::start("app-b"));
    let a = start_child("eu-west", &app_a, 1, Some(&collector), "").await;
    let b = start_child("us-east", &app_b, 1, Some(&collector), "").await;
    let parent = start_parent(
        &[("child-a", a.addr("uplink")), ("child-b", b.addr("uplink"))],
        Some(&collector),
    )
    .await;
    wait_available(&parent, 2).await;

    for _ in 0..2 {
        let response = parent.get("web", "/hello", &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        // The workload sees one traceparent, from the child's CLIENT span, and the cluster
        // the request came from.
        let traceparents = response.upstream_headers("traceparent");
        assert_eq!(traceparents.len(), 1, "{traceparents:?}");
        assert_eq!(
            response.upstream_header("x-source-cluster").as_deref(),
            Some(PARENT_CLUSTER)
        );
        let trace_id = traceparents[0]
            .split('-')
            .nth(1)
            .expect("trace id")
            .to_owned();
        let (child_cluster, child_name) = match response.server().as_deref() {
            Some("app-a") => ("eu-west", "child-a"),
            Some("app-b") => ("us-east", "child-b"),
            other => panic!("answered by {other:?}"),
        };

        let spans = trace(&collector, &trace_id, 4).await;
        assert_eq!(spans.len(), 4, "{spans:#?}");
        let parent_server = one(&spans, "parent SERVER", |s| {
            s.kind == SpanKind::Server && cluster(s) == PARENT_CLUSTER
        });
        let parent_client = one(&spans, "parent CLIENT", |s| {
            s.kind == SpanKind::Client && cluster(s) == PARENT_CLUSTER
        });
        let child_server = one(&spans, "child SERVER", |s| {
            s.kind == SpanKind::Server && cluster(s) == child_cluster
        });
        let child_client = one(&spans, "child CLIENT", |s| {
            s.kind == SpanKind::Client && cluster(s) == child_cluster
        });
        assert_eq!(parent_server.parent_id, None, "the parent starts the trace");
        assert_eq!(
            parent_client.parent_id.as_ref(),
            Some(&parent_server.span_id)
        );
        assert_eq!(
            child_server.parent_id.as_ref(),
            Some(&parent_client.span_id),
            "the parent's CLIENT span is the parent of the child's SERVER span"
        );
        assert_eq!(child_client.parent_id.as_ref(), Some(&child_server.span_id));
        assert_eq!(
            traceparents[0].split('-').nth(2),
            Some(child_client.span_id.as_str())
        );

        for (span, service) in [
            (parent_server, "traverse-parent"),
            (parent_client, "traverse-parent"),
            (child_server, "traverse-child"),
            (child_client, "traverse-child"),
        ] {
            assert_eq!(span.resource_attr("service.name"), Some(service));
        }
        assert_eq!(
            parent_client.attr("traverse.uplink"),
            Some("default/whoami")
        );
        assert_eq!(parent_client.attr("traverse.child"), Some(child_name));
        assert_eq!(
            parent_client.attr("cross_cluster.source"),
            Some(PARENT_CLUSTER)
        );
        assert_eq!(
            parent_client.attr("cross_cluster.target"),
            Some(child_cluster)
        );
        assert_eq!(
            child_server.attr("cross_cluster.source"),
            Some(PARENT_CLUSTER)
        );
        assert_eq!(
            child_server.attr("cross_cluster.target"),
            Some(child_cluster)
        );
        assert_eq!(child_server.attr("traverse.uplink"), Some("default/whoami"));
    }
}

/// A child's SERVER span lies inside the parent's CLIENT span that carried it: it starts
/// after and ends before, allowing for reading the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_server_spans_nest_inside_parent_client_spans() {
    const REQUESTS: usize = 200;
    // Clock readings on one machine: a few microseconds.
    const SLACK_NS: u64 = 5_000;
    let collector = Collector::start().await;
    let app = Upstream::start("app-a");
    let child = start_child("eu-west", &app, 1, Some(&collector), "").await;
    let parent = start_parent(&[("child-a", child.addr("uplink"))], Some(&collector)).await;
    wait_available(&parent, 1).await;

    let mut traces = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let response = parent.get("web", "/hello", &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let traceparent = response.upstream_headers("traceparent");
        let trace_id = traceparent[0].split('-').nth(1).expect("trace id");
        traces.push(trace_id.to_owned());
    }
    let spans = collector
        .wait_until(
            &format!("4 spans for each of {REQUESTS} traces"),
            WAIT,
            |t| {
                let spans: Vec<Span> = t
                    .spans
                    .iter()
                    .filter(|s| traces.contains(&s.trace_id))
                    .cloned()
                    .collect();
                (spans.len() >= 4 * REQUESTS).then_some(spans)
            },
        )
        .await;

    let (mut outside, mut worst_start, mut worst_end) = (Vec::new(), i128::MIN, i128::MIN);
    for trace_id in &traces {
        let of_trace: Vec<Span> = spans
            .iter()
            .filter(|s| &s.trace_id == trace_id)
            .cloned()
            .collect();
        let parent_client = one(&of_trace, "parent CLIENT", |s| {
            s.kind == SpanKind::Client && cluster(s) == PARENT_CLUSTER
        });
        let child_server = one(&of_trace, "child SERVER", |s| {
            s.kind == SpanKind::Server && cluster(s) == "eu-west"
        });
        assert_eq!(
            child_server.parent_id.as_ref(),
            Some(&parent_client.span_id)
        );
        for span in [parent_client, child_server] {
            assert_eq!(span.name, "GET /*", "{span:#?}");
        }
        assert_eq!(child_server.attr("http.route"), Some("/*"));
        assert_eq!(child_server.attr("url.scheme"), Some("http"));
        // How far the child's span sticks out of the parent's, at each end (negative: inside).
        let early = i128::from(parent_client.start_time_unix_nano)
            - i128::from(child_server.start_time_unix_nano);
        let late = i128::from(child_server.end_time_unix_nano)
            - i128::from(parent_client.end_time_unix_nano);
        worst_start = worst_start.max(early);
        worst_end = worst_end.max(late);
        if early > i128::from(SLACK_NS) || late > i128::from(SLACK_NS) {
            outside.push((trace_id.clone(), early, late));
        }
    }
    assert!(
        outside.is_empty(),
        "{} of {REQUESTS} child SERVER spans stick out of their parent CLIENT span \
         (trace, ns early, ns late): {outside:?}",
        outside.len()
    );
    eprintln!(
        "nesting over {REQUESTS} requests: at worst {worst_start} ns at the start, \
         {worst_end} ns at the end (negative: inside)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_honoured_across_children() {
    let (app_a, app_b) = (Upstream::start("app-a"), Upstream::start("app-b"));
    let a = start_child("eu-west", &app_a, 3, None, "").await;
    let b = start_child("us-east", &app_b, 1, None, "").await;
    let parent = start_parent(
        &[("child-a", a.addr("uplink")), ("child-b", b.addr("uplink"))],
        None,
    )
    .await;
    wait_available(&parent, 2).await;
    for _ in 0..400 {
        let response = parent.get("web", "/", &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let (to_a, to_b) = (app_a.count(), app_b.count());
    assert_eq!(to_a + to_b, 400);
    // 3:1 is 300:100; allow 5% of the total either way.
    assert!(
        (280..=320).contains(&to_a),
        "child-a got {to_a}, child-b {to_b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_child_loses_at_most_its_in_flight_requests() {
    let collector = Collector::start().await;
    let (app_a, app_b) = (Upstream::start("app-a"), Upstream::start("app-b"));
    let a = start_child("eu-west", &app_a, 1, Some(&collector), "").await;
    let b = start_child("us-east", &app_b, 1, Some(&collector), "").await;
    // Slow to eject, so that requests keep meeting the dead child for a while and show
    // the retries; detection itself is the fast case of the other tests.
    let parent = start_parent_with(
        &[("child-a", a.addr("uplink")), ("child-b", b.addr("uplink"))],
        Some(&collector),
        "healthCheck: {interval: 5s, timeout: 500ms}
  passiveHealthCheck: {failures: 6, ejectionTime: 30s}",
    )
    .await;
    wait_available(&parent, 2).await;

    const CLIENTS: usize = 4;
    let web = parent.addr("web");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let stop = std::sync::Arc::clone(&stop);
        // Half the clients send POSTs, which must not be replayed once sent.
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0usize, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = traverse_e2e::client::send(
                    web,
                    method,
                    "/delay/5",
                    &[],
                    b"",
                    Duration::from_secs(10),
                )
                .await;
                if response.is_ok_and(|r| r.status == 200) {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (method, ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_kill = (app_a.count(), app_b.count());
    assert!(
        before_kill.0 > 0 && before_kill.1 > 0,
        "both children served: {before_kill:?}"
    );
    drop(a); // SIGKILL
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let a_after_kill = app_a.count();
    let b_after_kill = app_b.count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failed_by_method = std::collections::BTreeMap::new();
    for client in clients {
        let (method, ok, failed) = client.await.expect("client");
        assert!(ok > 0, "{method} client succeeded sometimes");
        *failed_by_method.entry(method).or_insert(0) += failed;
    }
    assert_eq!(
        app_a.count(),
        a_after_kill,
        "nothing reaches the killed child's workload"
    );
    assert!(
        app_b.count() > b_after_kill,
        "the other child takes the traffic"
    );
    // Idempotent requests that fail on the killed child are retried on the other one. A
    // POST already written cannot be: each connection to the killed child fails at most
    // one, the request in flight on it or the next one sent on it from the pool, and
    // there are at most as many connections as concurrent clients.
    assert_eq!(
        failed_by_method.get("GET").copied().unwrap_or(0),
        0,
        "{failed_by_method:?}"
    );
    assert!(
        failed_by_method.get("POST").copied().unwrap_or(0) <= CLIENTS,
        "{failed_by_method:?}"
    );

    // A request that found child-a gone has two CLIENT attempts: the failed one and the
    // retry on child-b.
    let retried = collector
        .wait_until("a retried request", WAIT, |t| {
            t.spans
                .iter()
                .find(|s| {
                    s.kind == SpanKind::Client
                        && cluster(s) == PARENT_CLUSTER
                        && s.attr("traverse.attempt") == Some("2")
                })
                .cloned()
        })
        .await;
    assert_eq!(retried.attr("traverse.child"), Some("child-b"));
    assert_eq!(retried.attr("cross_cluster.target"), Some("us-east"));
    let first = collector
        .wait_until("the failed first attempt", WAIT, |t| {
            t.spans
                .iter()
                .find(|s| {
                    s.trace_id == retried.trace_id
                        && s.kind == SpanKind::Client
                        && cluster(s) == PARENT_CLUSTER
                        && s.attr("traverse.attempt") == Some("1")
                })
                .cloned()
        })
        .await;
    assert_eq!(first.attr("traverse.child"), Some("child-a"));
    assert!(first.attr("error.type").is_some(), "{first:#?}");
}

/// The parent's view of child `name`.
async fn child_view(parent: &Gateway, name: &str) -> serde_json::Value {
    let view = multicluster(parent).await;
    view["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no child {name} in {view:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_follows_a_restarted_child() {
    let (app_a, app_b) = (Upstream::start("app-a"), Upstream::start("app-b"));
    // child-a keeps its address across the restart, as a Service in front of it would.
    let uplink_a = format!("127.0.0.1:{}", traverse_e2e::free_port());
    let start_a = async |weight: u32| {
        let manifests = child_manifests(&app_a, weight);
        let manifests: Vec<(&str, &str)> =
            manifests.iter().map(|(n, t)| (*n, t.as_str())).collect();
        Gateway::start(&child_config("eu-west", &uplink_a, None, ""), &manifests).await
    };
    let a = start_a(1).await;
    let b = start_child("us-east", &app_b, 1, None, "").await;
    let address_a: SocketAddr = uplink_a.parse().expect("address");
    let parent = start_parent(
        &[("child-a", address_a), ("child-b", b.addr("uplink"))],
        None,
    )
    .await;
    wait_available(&parent, 2).await;
    let before = child_view(&parent, "child-a").await;
    assert_eq!(before["connected"], true, "{before:#}");
    let old_version = before["advertisement"]["version"].clone();

    drop(a);
    eventually("child-a out of rotation", WAIT, async || {
        let view = child_view(&parent, "child-a").await;
        (view["available"] == false && view["connected"] == false).then_some(())
    })
    .await;
    // Operators see it too.
    let metrics = http_get(parent.addr("admin"), "/metrics", &[]).await.text();
    let up = |child: &str, cluster: &str, value: u8| {
        metrics.lines().any(|line| {
            line.starts_with("traverse_uplink_child_up{")
                && line.contains(&format!("child=\"{child}\""))
                && line.contains(&format!("cluster=\"{cluster}\""))
                && line.ends_with(&format!(" {value}"))
        })
    };
    assert!(
        up("child-a", "eu-west", 0) && up("child-b", "us-east", 1),
        "{metrics}"
    );
    // The last advertisement is kept while the child is away.
    assert_eq!(
        child_view(&parent, "child-a").await["advertisement"]["version"],
        old_version
    );
    for _ in 0..10 {
        let response = parent.get("web", "/", &[]).await;
        assert_eq!(response.server().as_deref(), Some("app-b"));
    }

    // Back with another weight: the stream reconnects and carries the new advertisement.
    let _a = start_a(7).await;
    let view = eventually("child-a followed again", WAIT, async || {
        let view = child_view(&parent, "child-a").await;
        (view["connected"] == true
            && view["available"] == true
            && view["advertisement"]["uplinks"][0]["weight"] == 7)
            .then_some(view)
    })
    .await;
    assert_ne!(view["advertisement"]["version"], old_version);
    app_a.clear();
    for _ in 0..16 {
        let response = parent.get("web", "/", &[]).await;
        assert_eq!(response.status, 200);
    }
    assert_eq!(app_a.count(), 14, "7:1 over 16 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_child_gets_no_new_requests() {
    let (app_a, app_b) = (Upstream::start("app-a"), Upstream::start("app-b"));
    let mut a = start_child(
        "eu-west",
        &app_a,
        1,
        None,
        "shutdown: {drainDelay: 3s, gracePeriod: 5s}\n",
    )
    .await;
    let b = start_child("us-east", &app_b, 1, None, "").await;
    let parent = start_parent(
        &[("child-a", a.addr("uplink")), ("child-b", b.addr("uplink"))],
        None,
    )
    .await;
    wait_available(&parent, 2).await;

    a.sigterm();
    eventually("child-a advertised as draining", WAIT, async || {
        let view = child_view(&parent, "child-a").await;
        (view["advertisement"]["draining"] == true && view["available"] == false).then_some(())
    })
    .await;
    let served_by_a = app_a.count();
    for _ in 0..40 {
        let response = parent.get("web", "/", &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.server().as_deref(), Some("app-b"));
    }
    assert_eq!(
        app_a.count(),
        served_by_a,
        "no new request reached the draining child"
    );
    // Still up and accepting: traffic moved because of the drain, not a failure.
    assert!(a.wait_exit(Duration::ZERO).await.is_none());
    let health = traverse_e2e::client::try_get(
        a.addr("uplink"),
        "/.well-known/traverse/health",
        &[],
        Duration::from_secs(2),
    )
    .await
    .expect("the draining child still answers");
    assert_eq!(health.status, 503);
    let status = a.wait_exit(Duration::from_secs(10)).await.expect("exits");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_loop_is_answered_not_repeated() {
    // The child's route leads back to the parent: parent → child → parent → ...
    let placeholder = Upstream::start("unused");
    let child = start_child("eu-west", &placeholder, 1, None, "").await;
    let parent = start_parent(&[("child-a", child.addr("uplink"))], None).await;
    wait_available(&parent, 1).await;
    child.write_manifest("app", &service("app", &[parent.addr("web")]));

    // Once the child has applied the change, the request comes back to the parent,
    // which recognises its own cluster name and answers instead of forwarding again.
    let response = eventually("the loop closed", WAIT, async || {
        let response = parent.get("web", "/", &[]).await;
        (response.status != 200).then_some(response)
    })
    .await;
    assert_eq!(response.status, 508, "{}", response.text());
    assert!(
        response.text().contains("already came from cluster edge"),
        "{}",
        response.text()
    );
    let served_before_the_loop = placeholder.count();

    // A request that has already taken the most hops is refused before forwarding.
    let response = parent.get("web", "/", &[("x-traverse-hops", "3")]).await;
    assert_eq!(response.status, 508);
    assert!(
        response.text().contains("3 uplink hops"),
        "{}",
        response.text()
    );
    // A malformed counter is not ours: the request is forwarded (and loops back once).
    let response = parent.get("web", "/", &[("x-traverse-hops", "lots")]).await;
    assert_eq!(response.status, 508);
    assert!(response.text().contains("already came from cluster edge"));
    assert_eq!(placeholder.count(), served_before_the_loop);
}

/// A CA, a server certificate for `child-a.test` and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use traverse_e2e::pki::{TestCa, Usage};
        let ca = TestCa::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let write =
            |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        write("ca.pem", &ca.pem);
        for (name, san, usage) in [
            ("child", "child-a.test", Usage::ServerAuth),
            ("parent", "parent.test", Usage::ClientAuth),
        ] {
            let leaf = ca.issue(san, &[usage]);
            write(&format!("{name}.pem"), &leaf.cert);
            write(&format!("{name}.key"), &leaf.key);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_reach_children_over_mutual_tls() {
    let pki = Pki::new();
    let collector = Collector::start().await;
    let app = Upstream::start("app-a");
    let manifests = child_manifests(&app, 1);
    let manifests: Vec<(&str, &str)> = manifests.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let config = format!(
        "role: child
cluster: {{name: eu-west}}
entryPoints:
  uplink:
    address: \"{{uplink}}\"
    uplink: true
    tls: {{cert: \"{}\", key: \"{}\", clientCA: \"{}\"}}
admin: {{address: \"{{admin}}\"}}
providers: {{file: {{directory: manifests}}}}
{}",
        pki.path("child.pem"),
        pki.path("child.key"),
        pki.path("ca.pem"),
        tracing(Some(&collector), "traverse-child")
    );
    let child = Gateway::start(&config, &manifests).await;
    let tls = |client_cert: bool| {
        let identity = if client_cert {
            format!(
                ", cert: \"{}\", key: \"{}\"",
                pki.path("parent.pem"),
                pki.path("parent.key")
            )
        } else {
            String::new()
        };
        format!(
            "    child-a:\n      address: \"{}\"\n      tls: {{serverName: child-a.test, ca: \"{}\"{identity}}}\n",
            child.addr("uplink"),
            pki.path("ca.pem")
        )
    };

    let parent = start_parent_yaml(&tls(true), None, FAST_HEALTH).await;
    wait_available(&parent, 1).await;
    let response = parent.get("web", "/", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("app-a"));
    assert_eq!(
        response.upstream_header("x-forwarded-proto").as_deref(),
        Some("https"),
        "the child terminated TLS"
    );
    // The child's SERVER span says so too.
    let traceparent = response.upstream_headers("traceparent");
    let trace_id = traceparent[0].split('-').nth(1).expect("trace id");
    let child_server = collector
        .wait_for_span("the child's SERVER span", WAIT, |s| {
            s.trace_id == trace_id && s.kind == SpanKind::Server
        })
        .await;
    assert_eq!(child_server.attr("url.scheme"), Some("https"));
    assert_eq!(child_server.name, "GET /*");
    assert_eq!(child_view(&parent, "child-a").await["connected"], true);

    // Without a client certificate the child refuses the handshake: never followed, never used.
    let stranger = start_parent_yaml(&tls(false), None, FAST_HEALTH).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let view = child_view(&stranger, "child-a").await;
    assert_eq!(view["connected"], false, "{view:#}");
    assert_eq!(view["healthy"], false, "{view:#}");
    let response = stranger.get("web", "/", &[]).await;
    assert_eq!(response.status, 503, "{}", response.text());
}
