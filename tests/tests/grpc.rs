//! gRPC through the gateway with a real grpcio server and client: unary and
//! server-streaming calls, and failures whose status and message travel in trailers,
//! over h2c end to end, and over TLS end to end (HTTP/2 chosen by ALPN on both sides, the
//! server's private CA trusted through a ServersTransport).

use base64::Engine as _;
use traverse_e2e::grpc::{call, GrpcOutcome, GrpcServer};
use traverse_e2e::pki::{TestCa, Usage};
use traverse_e2e::{service, Gateway};

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn outcome(
    code: &str,
    details: Option<&str>,
    responses: &[&str],
    trailers: &[(&str, &str)],
) -> GrpcOutcome {
    GrpcOutcome {
        code: code.into(),
        details: details.map(Into::into),
        responses: responses.iter().map(|r| (*r).to_owned()).collect(),
        trailers: trailers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Every kind of call the tests make, at `target`, against what the server answers
/// directly. `ca`: the client speaks TLS trusting it.
async fn calls_pass_through(target: std::net::SocketAddr, ca: Option<&str>) {
    let message = "stock: 0 left (ü, 100%)";
    let cases = [
        ("Unary", "ping", outcome("OK", None, &["echo:ping"], &[])),
        (
            "Stream",
            "3",
            outcome("OK", None, &["item-0", "item-1", "item-2"], &[]),
        ),
        (
            "Fail",
            message,
            outcome(
                "FAILED_PRECONDITION",
                Some(message),
                &[],
                &[("x-reason", "precondition")],
            ),
        ),
        (
            "StreamThenFail",
            message,
            outcome(
                "FAILED_PRECONDITION",
                Some(message),
                &["item-0", "item-1"],
                &[("x-reason", "precondition")],
            ),
        ),
    ];
    for (method, request, expected) in cases {
        let mut got = call(target, "grpc.test", method, request, ca).await;
        // A failure before any message is one HEADERS frame, so its headers are the
        // trailers: the Date that the gateway's HTTP/2 server adds to every answer shows.
        got.trailers.remove("date");
        assert_eq!(got, expected, "{method}({request:?}) through the gateway");
    }
}

#[tokio::test]
async fn grpc_passes_through_h2c_to_an_h2c_upstream() {
    let server = GrpcServer::start(None).await;
    let manifests = format!(
        "{}---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: grpc}}
spec:
  routes:
    - match: Host(`grpc.test`)
      services: [{{name: grpc, port: 80, scheme: h2c}}]
",
        service("grpc", &[server.addr()])
    );
    let gateway = Gateway::start(&traverse_e2e::config(""), &[("all", &manifests)]).await;
    // The same calls straight to the server first: the expectations hold there.
    calls_pass_through(server.addr(), None).await;
    calls_pass_through(gateway.addr("web"), None).await;
}

#[tokio::test]
async fn grpc_passes_through_tls_to_an_https_upstream_with_a_private_ca() {
    let backend_ca = TestCa::new();
    let server = GrpcServer::start(Some(
        &backend_ca.issue("backend.internal", &[Usage::ServerAuth]),
    ))
    .await;
    let front_ca = TestCa::new();
    let front = front_ca.issue("grpc.test", &[Usage::ServerAuth]);
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let manifests = format!(
        "{}---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: grpc}}
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(`grpc.test`)
      services: [{{name: grpc, port: 80, scheme: https, serversTransport: internal}}]
  tls: {{secretName: front}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: internal}}
spec:
  serverName: backend.internal
  rootCAs: [{{secret: backend-ca}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca}}
stringData:
  ca.crt: {:?}
---
apiVersion: v1
kind: Secret
metadata: {{name: front}}
type: kubernetes.io/tls
data: {{tls.crt: {}, tls.key: {}}}
",
        service("grpc", &[server.addr()]),
        backend_ca.pem,
        b64(&front.cert),
        b64(&front.key),
    );
    let config = "entryPoints:
  websecure: {address: \"{websecure}\", tls: {}}
admin: {address: \"{admin}\"}
providers:
  file: {directory: manifests, watch: true}
logs:
  access: {enabled: true, format: json, filePath: access.log}
";
    let gateway = Gateway::start(config, &[("all", &manifests)]).await;
    let problems = traverse_e2e::diagnostics(&gateway.routes_json().await);
    assert!(problems.is_empty(), "{problems:?}");
    calls_pass_through(gateway.addr("websecure"), Some(&front_ca.pem)).await;

    // HTTP/2 requests know their connection's handshake too.
    let path = gateway.dir().join("access.log");
    let records = traverse_e2e::eventually("the four calls logged", WAIT, async || {
        let text = std::fs::read_to_string(&path).ok()?;
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect();
        (records.len() >= 4).then_some(records)
    })
    .await;
    for record in &records {
        assert_eq!(record["RequestProtocol"], "HTTP/2.0", "{record:#}");
        assert_eq!(record["TLSVersion"], "1.3", "{record:#}");
        assert_eq!(record["TLSServerName"], "grpc.test", "{record:#}");
        assert_eq!(
            record["ServiceURL"],
            format!("https://{}", server.addr()),
            "{record:#}"
        );
    }
}

#[tokio::test]
async fn disable_http2_speaks_http1_to_the_upstream() {
    // A gRPC server speaks HTTP/2 only: with disableHTTP2 its calls fail at the gateway
    // (no HTTP/1.1 from the server), which shows the transport's setting applies.
    let backend_ca = TestCa::new();
    let server = GrpcServer::start(Some(
        &backend_ca.issue("backend.internal", &[Usage::ServerAuth]),
    ))
    .await;
    let manifests = format!(
        "{}---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: grpc}}
spec:
  routes:
    - match: Host(`grpc.test`)
      services: [{{name: grpc, port: 80, scheme: https, serversTransport: http1}}]
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: http1}}
spec:
  serverName: backend.internal
  rootCAs: [{{secret: backend-ca}}]
  disableHTTP2: true
---
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca}}
stringData:
  tls.ca: {:?}
",
        service("grpc", &[server.addr()]),
        backend_ca.pem,
    );
    let gateway = Gateway::start(&traverse_e2e::config(""), &[("all", &manifests)]).await;
    let got = call(gateway.addr("web"), "grpc.test", "Unary", "ping", None).await;
    assert_ne!(got.code, "OK", "{got:?}");
    assert!(got.responses.is_empty(), "{got:?}");
}
