//! Cleartext HTTP/2 (prior knowledge) on an entrypoint, proxied to an HTTP/1.1 upstream.

use std::time::Duration;

use bytes::Bytes;
use traverse_e2e::{config, service, Gateway, Upstream};

/// Sends one HTTP/2 request with prior knowledge; returns (status, headers, body).
async fn h2_get(
    addr: std::net::SocketAddr,
    uri: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Vec<u8>) {
    let tcp = traverse_e2e::connect(addr).await;
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("h2 connection ready");
    let mut request = http::Request::builder().method("GET").uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).expect("request");
    let (response, _) = client.send_request(request, true).expect("sending");
    let response = response.await.expect("h2 response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.expect("h2 body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    drop(client);
    driver.abort();
    (status, headers, bytes)
}

#[tokio::test]
async fn h2c_prior_knowledge_is_routed_to_an_http1_upstream() {
    let app = Upstream::start("app");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: h2
spec:
  routes:
    - match: Host(`h2.example.com`) && PathPrefix(`/h2`)
      services: [{name: app, port: 80}]
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", manifests),
        ],
    )
    .await;
    let web = gateway.addr("web");

    let (status, headers, body) = tokio::time::timeout(
        Duration::from_secs(10),
        h2_get(
            web,
            "http://h2.example.com/h2/path?x=1",
            &[("x-test", "h2c")],
        ),
    )
    .await
    .expect("h2 request within 10s");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers.get("x-upstream").and_then(|v| v.to_str().ok()),
        Some("app")
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON from the upstream");
    assert_eq!(json["server"], "app");
    assert_eq!(json["path"], "/h2/path?x=1");

    let seen = app.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("host"),
        Some("h2.example.com"),
        "the HTTP/1.1 upstream gets a Host built from :authority"
    );
    assert_eq!(seen[0].header("x-test"), Some("h2c"));

    // The :authority is what routes: another host does not match.
    let (status, _, _) = tokio::time::timeout(
        Duration::from_secs(10),
        h2_get(web, "http://other.example.com/h2/path", &[]),
    )
    .await
    .expect("h2 request within 10s");
    assert_eq!(status, 404);
}

#[tokio::test]
async fn h2c_can_be_turned_off_per_entrypoint() {
    let app = Upstream::start("app");
    let config = "entryPoints:
  web:
    address: \"{web}\"
    h2c: false
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
";
    let gateway = Gateway::start(
        config,
        &[
            ("backends", &service("app", &[app.addr()])),
            (
                "route",
                &traverse_e2e::route("app", "PathPrefix(`/`)", "app"),
            ),
        ],
    )
    .await;
    // HTTP/1.1 still works.
    assert_eq!(gateway.get("web", "/h1", &[]).await.status, 200);

    let web = gateway.addr("web");
    let attempt = tokio::time::timeout(Duration::from_secs(10), async move {
        let tcp = traverse_e2e::connect(web).await;
        let (client, connection) = h2::client::handshake(tcp).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await?;
        let request = http::Request::get(format!("http://{web}/h2"))
            .body(())
            .expect("request");
        let (response, _) = client.send_request(request, true)?;
        let status = response.await.map(|r| r.status().as_u16());
        driver.abort();
        status
    })
    .await
    .expect("the h2 attempt ends within 10s");
    assert!(
        attempt.is_err(),
        "prior-knowledge HTTP/2 was served with h2c: false: {attempt:?}"
    );
    assert_eq!(app.count_path("/h2"), 0);
}

#[tokio::test]
async fn h2c_upstream_scheme_speaks_http2_to_the_upstream() {
    let grpc = Upstream::start_h2c("grpc");
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: h2c-upstream
spec:
  routes:
    - match: PathPrefix(`/`)
      services: [{name: grpc, port: 80, scheme: h2c}]
";
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("grpc", &[grpc.addr()])),
            ("route", manifests),
        ],
    )
    .await;
    let json = gateway.routes_json().await;
    assert_eq!(json["routes"][0]["services"][0]["scheme"], "h2c", "{json}");

    // HTTP/1.1 in, HTTP/2 out.
    let response = gateway
        .get("web", "/svc/Method?x=1", &[("Host", "grpc.example:8080")])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("grpc"));
    assert_eq!(response.upstream_path().as_deref(), Some("/svc/Method?x=1"));
    let seen = grpc.requests();
    assert_eq!(seen.len(), 1);
    let authority = seen[0]
        .header(":authority")
        .filter(|a| !a.is_empty())
        .or(seen[0].header("host"));
    assert_eq!(
        authority,
        Some("grpc.example:8080"),
        "the client's host reaches the HTTP/2 upstream: {:?}",
        seen[0].headers
    );

    // HTTP/2 in, HTTP/2 out.
    let (status, _, body) = tokio::time::timeout(
        Duration::from_secs(10),
        h2_get(gateway.addr("web"), "http://grpc.example/svc/Other", &[]),
    )
    .await
    .expect("h2 request within 10s");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(grpc.count_path("/svc/Other"), 1);
}
