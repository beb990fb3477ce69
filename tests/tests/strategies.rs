//! Load-balancer fields of a route's Service end to end: `strategy: p2c` sends a request
//! to the endpoint with fewer requests in flight (where `wrr` keeps alternating), and
//! `nativeLB` sends to the Service's cluster IP and port instead of its endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use traverse_e2e::{config, diagnostics, service, Gateway, Upstream};

fn routes(strategy: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: pair
spec:
  routes:
    - match: PathPrefix(`/`)
      services:
        - name: pair
          port: 80
{strategy}"
    )
}

/// Sends one slow request, then 10 quick ones while it is in flight: who served the slow
/// one, and how many quick ones each endpoint served.
async fn quick_beside_slow(gateway: &Gateway) -> (String, Vec<String>) {
    let slow = tokio::spawn({
        let url = gateway.addr("web");
        async move { traverse_e2e::client::http_get(url, "/delay/1500", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut quick = Vec::new();
    for i in 0..10 {
        let response = gateway.get("web", &format!("/quick/{i}"), &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        quick.push(response.server().expect("x-upstream"));
    }
    let slow = slow.await.expect("the slow request");
    assert_eq!(slow.status, 200, "{}", slow.text());
    (slow.server().expect("x-upstream"), quick)
}

#[tokio::test]
async fn p2c_sends_to_the_endpoint_with_fewer_requests_in_flight() {
    let (first, second) = Upstream::start_pair("first", "second");
    let backends = service("pair", &[first.addr(), second.addr()]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("routes", &routes("          strategy: p2c\n")),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");

    let (busy, quick) = quick_beside_slow(&gateway).await;
    // With two endpoints both are drawn each time: the idle one always wins.
    assert!(
        quick.iter().all(|server| *server != busy),
        "{busy} was busy: {quick:?}"
    );

    // The same under wrr: the busy endpoint keeps getting its turn.
    let wrr = Gateway::start(
        &config(""),
        &[("backends", &backends), ("routes", &routes(""))],
    )
    .await;
    let (busy, quick) = quick_beside_slow(&wrr).await;
    assert_eq!(
        quick.iter().filter(|server| **server == busy).count(),
        5,
        "{quick:?}"
    );
}

#[tokio::test]
async fn native_lb_sends_to_the_cluster_ip_and_service_port() {
    let upstream = Upstream::start("native");
    let closed = SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    // The Service's own port is the upstream's; its only endpoint is a closed port.
    let backends = format!(
        "apiVersion: v1
kind: Service
metadata:
  name: native
spec:
  clusterIP: 127.0.0.1
  ports:
    - name: http
      port: {}
      targetPort: {}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: native-1
  labels:
    kubernetes.io/service-name: native
addressType: IPv4
ports:
  - name: http
    port: {}
endpoints:
  - addresses: [\"127.0.0.1\"]
",
        upstream.port(),
        closed.port(),
        closed.port()
    );
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: native
spec:
  routes:
    - match: PathPrefix(`/native`)
      services:
        - {name: native, port: http, nativeLB: true}
    - match: PathPrefix(`/endpoints`)
      services:
        - {name: native, port: http}
";
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;
    let json = gateway.routes_json().await;
    assert!(diagnostics(&json).is_empty(), "{json}");

    let response = gateway.get("web", "/native", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("native"));
    let response = gateway.get("web", "/endpoints", &[]).await;
    assert_eq!(response.status, 502, "the endpoint's port is closed");
    assert_eq!(upstream.count(), 1);
}
