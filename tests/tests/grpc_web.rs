//! The grpcWeb middleware through the real binary: a gRPC-Web client written here (plain
//! HTTP/1.1 POSTs of length-prefixed frames, binary and base64 text) calls the real
//! grpcio server of `tests/grpc/peer.py` over h2c through the gateway. Messages, the
//! status in the trailer frame, errors, CORS (preflight and actual calls) and plain
//! gRPC clients on the same route are checked.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use traverse_e2e::client::{send, Response, DEFAULT_TIMEOUT};
use traverse_e2e::grpc::{call, GrpcServer};
use traverse_e2e::pki::{TestCa, Usage};
use traverse_e2e::{service, Gateway};

const APP: &str = "https://app.example";
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A route to the server over h2c through a grpcWeb middleware in the shape of Traefik's
/// documentation.
async fn gateway(server: &GrpcServer) -> Gateway {
    gateway_with(server, "scheme: h2c", "").await
}

/// As [`gateway`], the route's service with `settings`, and more `manifests`.
async fn gateway_with(server: &GrpcServer, settings: &str, more: &str) -> Gateway {
    let manifests = format!(
        "{}---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-grpcweb
spec:
  grpcWeb:
    allowOrigins:
      - \"{APP}\"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: grpc}}
spec:
  routes:
    - match: Host(`grpc.test`)
      middlewares: [{{name: test-grpcweb}}]
      services: [{{name: grpc, port: 80, {settings}}}]
{more}",
        service("grpc", &[server.addr()])
    );
    let config = traverse_e2e::config(
        "logs:\n  access: {enabled: true, format: json, filePath: access.log}\n",
    );
    let gateway = Gateway::start(&config, &[("all", &manifests)]).await;
    let problems = traverse_e2e::diagnostics(&gateway.routes_json().await);
    assert!(problems.is_empty(), "{problems:?}");
    gateway
}

/// A length-prefixed, uncompressed message frame.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// What a gRPC-Web response body holds: its messages, then the trailers of its last
/// frame (flag 0x80), names and values as sent.
#[derive(Debug, PartialEq, Eq)]
struct Body {
    messages: Vec<String>,
    trailers: Option<Vec<(String, String)>>,
}

fn parse(mut bytes: &[u8]) -> Body {
    let mut body = Body {
        messages: Vec::new(),
        trailers: None,
    };
    while !bytes.is_empty() {
        assert!(body.trailers.is_none(), "a frame after the trailers");
        assert!(bytes.len() >= 5, "a truncated frame header: {bytes:?}");
        let length = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let payload = &bytes[5..5 + length];
        match bytes[0] {
            0 => body
                .messages
                .push(String::from_utf8(payload.to_vec()).expect("text messages")),
            0x80 => {
                let block = std::str::from_utf8(payload).expect("a header block");
                assert!(block.is_empty() || block.ends_with("\r\n"), "{block:?}");
                body.trailers = Some(
                    block
                        .split_terminator("\r\n")
                        .map(|line| {
                            let (name, value) = line.split_once(':').expect("name: value");
                            (name.to_owned(), value.trim().to_owned())
                        })
                        .collect(),
                );
            }
            flag => panic!("unexpected frame flag {flag:#x}"),
        }
        bytes = &bytes[5 + length..];
    }
    body
}

/// Decodes a text body: base64 segments, each possibly padded.
fn decode_text(text: &[u8]) -> Vec<u8> {
    assert_eq!(text.len() % 4, 0, "whole base64 quanta: {text:?}");
    let mut decoded = Vec::new();
    let mut start = 0;
    for end in (4..=text.len()).step_by(4) {
        if text[end - 1] == b'=' || end == text.len() {
            decoded.extend(STANDARD.decode(&text[start..end]).expect("base64"));
            start = end;
        }
    }
    decoded
}

fn trailers(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// A gRPC-Web call of `test.Echo/<method>` from a page of `origin`.
async fn web_call(
    gateway: &Gateway,
    method: &str,
    content_type: &str,
    body: &[u8],
    origin: &str,
) -> Response {
    send(
        gateway.addr("web"),
        "POST",
        &format!("/test.Echo/{method}"),
        &[
            ("host", "grpc.test"),
            ("content-type", content_type),
            ("accept", content_type),
            ("x-grpc-web", "1"),
            ("x-user-agent", "grpc-web-javascript/0.1"),
            ("origin", origin),
        ],
        body,
        DEFAULT_TIMEOUT,
    )
    .await
    .expect("a response")
}

#[tokio::test]
async fn grpc_web_calls_reach_a_grpc_server_and_come_back_as_grpc_web() {
    let server = GrpcServer::start(None).await;
    let gateway = gateway(&server).await;

    // Unary, binary: the message, then the status in the trailer frame.
    let response = web_call(
        &gateway,
        "Unary",
        "application/grpc-web+proto",
        &frame(b"ping"),
        APP,
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/grpc-web")
    );
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    let exposed = response
        .header("access-control-expose-headers")
        .expect("exposed headers");
    for name in ["grpc-status", "grpc-message", "content-type"] {
        assert!(
            exposed.split(", ").any(|n| n == name),
            "{name} in {exposed}"
        );
    }
    assert!(response.header("grpc-status").is_none(), "{response:?}");
    let body = parse(&response.body);
    assert_eq!(body.messages, ["echo:ping"]);
    let status = body.trailers.expect("a trailer frame");
    assert!(
        status.contains(&("grpc-status".into(), "0".into())),
        "{status:?}"
    );

    // Server streaming, text: every frame base64-encoded, the trailers too.
    let response = web_call(
        &gateway,
        "Stream",
        "application/grpc-web-text",
        STANDARD.encode(frame(b"3")).as_bytes(),
        APP,
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/grpc-web-text")
    );
    let body = parse(&decode_text(&response.body));
    assert_eq!(body.messages, ["item-0", "item-1", "item-2"]);
    assert!(
        body.trailers
            .as_ref()
            .is_some_and(|t| t.contains(&("grpc-status".into(), "0".into()))),
        "{body:?}"
    );

    // A text request sent in two padded segments (a client flushing twice) decodes whole.
    let message = frame(b"pong");
    let segmented = format!(
        "{}{}",
        STANDARD.encode(&message[..4]),
        STANDARD.encode(&message[4..])
    );
    let response = web_call(
        &gateway,
        "Unary",
        "application/grpc-web-text+proto",
        segmented.as_bytes(),
        APP,
    )
    .await;
    assert_eq!(parse(&decode_text(&response.body)).messages, ["echo:pong"]);

    // Messages, then a failure: its status, message (percent-encoded, as gRPC sends it)
    // and metadata in the trailer frame.
    let details = "stock: 0 left (ü, 100%)";
    let response = web_call(
        &gateway,
        "StreamThenFail",
        "application/grpc-web+proto",
        &frame(details.as_bytes()),
        APP,
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    let body = parse(&response.body);
    assert_eq!(body.messages, ["item-0", "item-1"]);
    let mut got = body.trailers.expect("a trailer frame");
    got.sort();
    assert_eq!(
        Some(got),
        trailers(&[
            ("grpc-message", "stock: 0 left (%C3%BC, 100%25)"),
            ("grpc-status", "9"),
            ("x-reason", "precondition"),
        ])
    );

    // A failure before any message is trailers-only: the status is in the headers, the
    // body is empty.
    let response = web_call(
        &gateway,
        "Fail",
        "application/grpc-web+proto",
        &frame(details.as_bytes()),
        APP,
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/grpc-web")
    );
    assert_eq!(response.header("grpc-status"), Some("9"));
    assert_eq!(
        response.header("grpc-message"),
        Some("stock: 0 left (%C3%BC, 100%25)")
    );
    assert_eq!(response.header("x-reason"), Some("precondition"));
    assert_eq!(response.body, b"", "{response:?}");

    // A page of another origin is proxied too, without CORS headers: its browser then
    // refuses to hand the answer to the script.
    let response = web_call(
        &gateway,
        "Unary",
        "application/grpc-web",
        &frame(b"ping"),
        "https://evil.example",
    )
    .await;
    assert_eq!(parse(&response.body).messages, ["echo:ping"]);
    assert!(response.header("access-control-allow-origin").is_none());
    assert_eq!(response.header("vary"), Some("Origin"));
}

#[tokio::test]
async fn cors_preflights_are_answered_for_the_allowed_origins() {
    let server = GrpcServer::start(None).await;
    let gateway = gateway(&server).await;
    let preflight = async |origin: &str| {
        let headers = [
            ("host", "grpc.test"),
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            ),
        ];
        let path = "/test.Echo/Unary";
        send(
            gateway.addr("web"),
            "OPTIONS",
            path,
            &headers,
            b"",
            DEFAULT_TIMEOUT,
        )
        .await
    };
    let response = preflight(APP).await.expect("a response");
    assert_eq!(response.status, 204, "{response:?}");
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("content-type,x-grpc-web,x-user-agent")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(response.header("access-control-max-age"), Some("600"));

    let response = preflight("https://evil.example").await.expect("a response");
    assert_eq!(response.status, 204, "{response:?}");
    assert!(
        response.header("access-control-allow-origin").is_none(),
        "{response:?}"
    );
    assert!(response.header("access-control-allow-methods").is_none());

    // Both answered by the gateway, which the access log names; the server saw neither.
    let path = gateway.dir().join("access.log");
    let records = traverse_e2e::eventually("the two preflights logged", WAIT, async || {
        let text = std::fs::read_to_string(&path).ok()?;
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect();
        (records.len() >= 2).then_some(records)
    })
    .await;
    for record in &records {
        assert_eq!(record["DownstreamStatus"], 204, "{record:#}");
        assert_eq!(
            record["traverse.middleware"], "default/test-grpcweb",
            "{record:#}"
        );
        assert!(
            record.get("OriginStatus").is_none_or(|s| s.is_null()),
            "{record:#}"
        );
    }
}

#[tokio::test]
async fn plain_grpc_clients_pass_through_the_same_route() {
    let server = GrpcServer::start(None).await;
    let gateway = gateway(&server).await;
    let got = call(gateway.addr("web"), "grpc.test", "Unary", "ping", None).await;
    assert_eq!(
        (got.code.as_str(), got.responses),
        ("OK", vec!["echo:ping".to_owned()])
    );
    let got = call(
        gateway.addr("web"),
        "grpc.test",
        "StreamThenFail",
        "no",
        None,
    )
    .await;
    assert_eq!(got.code, "FAILED_PRECONDITION", "{got:?}");
    assert_eq!(got.details.as_deref(), Some("no"));
    assert_eq!(got.responses, ["item-0", "item-1"]);
    assert_eq!(
        got.trailers.get("x-reason").map(String::as_str),
        Some("precondition")
    );
}

#[tokio::test]
async fn grpc_web_calls_reach_an_https_upstream_that_chooses_http2() {
    let ca = TestCa::new();
    let server = GrpcServer::start(Some(&ca.issue("backend.internal", &[Usage::ServerAuth]))).await;
    let transport = format!(
        "---
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
",
        ca.pem
    );
    let gateway = gateway_with(
        &server,
        "scheme: https, serversTransport: internal",
        &transport,
    )
    .await;
    let response = web_call(
        &gateway,
        "StreamThenFail",
        "application/grpc-web-text+proto",
        STANDARD.encode(frame(b"out of stock")).as_bytes(),
        APP,
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/grpc-web-text")
    );
    let body = parse(&decode_text(&response.body));
    assert_eq!(body.messages, ["item-0", "item-1"]);
    let status = body.trailers.expect("a trailer frame");
    assert!(
        status.contains(&("grpc-status".into(), "9".into())),
        "{status:?}"
    );
    assert!(
        status.contains(&("grpc-message".into(), "out of stock".into())),
        "{status:?}"
    );
}
