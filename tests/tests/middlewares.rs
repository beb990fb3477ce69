//! Traefik's middlewares end to end: manifests in the shapes Traefik's documentation
//! shows load unchanged, and each behaviour is checked as a client and the upstream see
//! it (status, headers, body), and, for the answers a middleware gives itself, on the
//! request's SERVER span and in the access log.

use std::time::Duration;

use traverse_e2e::collector::SpanKind;
use traverse_e2e::{eventually, http_request, service, Collector, Gateway, Response, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// Entrypoints `web` (forwarding headers not trusted) and `proxied` (trusted, as
/// behind a load balancer), the admin API, the file provider and `extra`.
fn config(extra: &str) -> String {
    format!(
        "entryPoints:
  web:
    address: \"{{web}}\"
  proxied:
    address: \"{{proxied}}\"
    forwardedHeaders:
      insecure: true
admin:
  address: \"{{admin}}\"
providers:
  file:
    directory: manifests
{extra}"
    )
}

/// One IngressRoute `routes` for Service `app`: one route per `(rule, middlewares)`.
fn routes(routes: &[(&str, &str)]) -> String {
    let mut yaml = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: routes
spec:
  routes:
"
    .to_owned();
    for (rule, middlewares) in routes {
        yaml.push_str(&format!(
            "    - match: {rule}\n      middlewares: [{middlewares}]\n      services: [{{name: app, port: 80}}]\n"
        ));
    }
    yaml
}

async fn start(middlewares: &str, routes: &str, extra: &str) -> (Gateway, Upstream) {
    let upstream = Upstream::start("app");
    let gateway = Gateway::start(
        &config(extra),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("middlewares", middlewares),
            ("routes", routes),
        ],
    )
    .await;
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    assert!(
        diagnostics.is_empty(),
        "the manifests load unchanged: {diagnostics:#?}"
    );
    (gateway, upstream)
}

async fn send(
    gateway: &Gateway,
    entry_point: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    http_request(gateway.addr(entry_point), method, path, headers, b"").await
}

const PATHS: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-stripprefixregex
spec:
  stripPrefixRegex:
    regex:
      - \"/foo/[a-z0-9]+/[0-9]+/\"
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-replacepath
spec:
  replacePath:
    path: /foo
---
# Replace path with regex
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-replacepathregex
spec:
  replacePathRegex:
    regex: \"^/foo/(.*)\"
    replacement: \"/bar/$1\"
---
# Redirect to https
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-redirectscheme
spec:
  redirectScheme:
    scheme: https
    permanent: true
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: redirect-port
spec:
  redirectScheme:
    scheme: https
    port: \"8443\"
---
# Redirect with domain replacement
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-redirectregex
spec:
  redirectRegex:
    regex: ^http://localhost/(.*)
    replacement: http://mydomain/${1}
";

#[tokio::test]
async fn paths_are_rewritten_and_redirects_answered() {
    let routes = routes(&[
        ("PathPrefix(`/foo`)", "{name: test-stripprefixregex}"),
        ("PathPrefix(`/replace`)", "{name: test-replacepath}"),
        ("PathPrefix(`/regex`)", "{name: test-replacepathregex}"),
        ("PathPrefix(`/secure`)", "{name: test-redirectscheme}"),
        ("PathPrefix(`/port`)", "{name: redirect-port}"),
        ("Host(`localhost`)", "{name: test-redirectregex}"),
    ]);
    let (gateway, _upstream) = start(PATHS, &routes, "").await;

    let response = send(&gateway, "web", "GET", "/foo/abc/123/bar?x=1", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.upstream_path().as_deref(), Some("/bar?x=1"));
    assert_eq!(
        response.upstream_header("X-Forwarded-Prefix").as_deref(),
        Some("/foo/abc/123/")
    );

    let response = send(&gateway, "web", "GET", "/replace/me?q=2", &[]).await;
    assert_eq!(response.upstream_path().as_deref(), Some("/foo?q=2"));
    assert_eq!(
        response.upstream_header("X-Replaced-Path").as_deref(),
        Some("/replace/me")
    );

    // The regex route's path does not match `^/foo/`: left as it is, no header.
    let response = send(&gateway, "web", "GET", "/regex/x", &[]).await;
    assert_eq!(response.upstream_path().as_deref(), Some("/regex/x"));
    assert_eq!(response.upstream_header("X-Replaced-Path"), None);

    // redirectScheme: 301 for GET, 308 otherwise; the port the client used is dropped.
    let host = format!("example.com:{}", gateway.port("web"));
    let response = send(&gateway, "web", "GET", "/secure/a?b=c", &[("Host", &host)]).await;
    assert_eq!(response.status, 301, "{}", response.text());
    assert_eq!(
        response.header("Location"),
        Some("https://example.com/secure/a?b=c")
    );
    assert_eq!(response.text(), "Moved Permanently");
    let response = send(&gateway, "web", "POST", "/secure/a", &[("Host", &host)]).await;
    assert_eq!(response.status, 308);
    // Not permanent: 302 for GET, 307 otherwise; the configured port is kept.
    let response = send(&gateway, "web", "GET", "/port", &[("Host", "example.com")]).await;
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("Location"),
        Some("https://example.com:8443/port")
    );
    let response = send(&gateway, "web", "PUT", "/port", &[("Host", "example.com")]).await;
    assert_eq!(response.status, 307);
    // A request that a trusted proxy says came over HTTPS is already there.
    let response = send(
        &gateway,
        "proxied",
        "GET",
        "/secure/a",
        &[("Host", "example.com"), ("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    // From an untrusted client the header is not believed.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/secure/a",
        &[("Host", "example.com"), ("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(response.status, 301);

    // redirectRegex, Traefik's documented example.
    let response = send(&gateway, "web", "GET", "/a/b?c=d", &[("Host", "localhost")]).await;
    assert_eq!(response.status, 302, "{}", response.text());
    assert_eq!(response.header("Location"), Some("http://mydomain/a/b?c=d"));
}

const HEADERS: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-cors
spec:
  headers:
    accessControlAllowMethods:
      - \"GET\"
      - \"OPTIONS\"
      - \"PUT\"
    accessControlAllowHeaders:
      - \"*\"
    accessControlAllowOriginList:
      - \"https://foo.bar.org\"
      - \"https://example.org\"
    accessControlAllowOriginListRegex:
      - \"^https://[a-z]+\\\\.example\\\\.net$\"
    accessControlExposeHeaders:
      - \"X-Custom\"
    accessControlMaxAge: 100
    addVaryHeader: true
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-security
spec:
  headers:
    frameDeny: true
    browserXssFilter: true
    contentTypeNosniff: true
    stsSeconds: 31536000
    stsIncludeSubdomains: true
    stsPreload: true
    contentSecurityPolicy: \"default-src 'self'\"
    referrerPolicy: same-origin
    permissionsPolicy: \"camera=()\"
    sslProxyHeaders:
      X-Forwarded-Proto: https
    customResponseHeaders:
      X-Custom-Response-Header: \"value\"
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: forced-sts
spec:
  headers:
    stsSeconds: 60
    forceSTSHeader: true
    customFrameOptionsValue: SAMEORIGIN
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: hosts
spec:
  headers:
    allowedHosts: [good.example]
    hostsProxyHeaders: [X-Forwarded-Host]
";

#[tokio::test]
async fn cors_preflights_are_answered_and_security_headers_added() {
    let routes = routes(&[
        ("PathPrefix(`/cors`)", "{name: test-cors}"),
        ("PathPrefix(`/secure`)", "{name: test-security}"),
        ("PathPrefix(`/forced`)", "{name: forced-sts}"),
        ("PathPrefix(`/hosts`)", "{name: hosts}"),
    ]);
    let (gateway, upstream) = start(HEADERS, &routes, "").await;

    // A preflight is answered by the gateway; the upstream never sees it.
    let response = send(
        &gateway,
        "web",
        "OPTIONS",
        "/cors/items",
        &[
            ("Origin", "https://example.org"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "X-Token"),
        ],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("Access-Control-Allow-Origin"),
        Some("https://example.org")
    );
    assert_eq!(
        response.header("Access-Control-Allow-Methods"),
        Some("GET,OPTIONS,PUT")
    );
    assert_eq!(response.header("Access-Control-Allow-Headers"), Some("*"));
    assert_eq!(response.header("Access-Control-Max-Age"), Some("100"));
    assert_eq!(
        response.header("Access-Control-Expose-Headers"),
        Some("X-Custom")
    );
    assert!(response.body.is_empty());
    assert!(upstream.requests().iter().all(|r| r.method != "OPTIONS"));

    // An actual request: the allowed origin (by the regular expression) and Vary.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/cors/items",
        &[("Origin", "https://api.example.net")],
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Access-Control-Allow-Origin"),
        Some("https://api.example.net")
    );
    assert_eq!(response.header("Vary"), Some("Origin"));
    // Another origin gets no Access-Control-Allow-Origin.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/cors/items",
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(response.header("Access-Control-Allow-Origin"), None);

    // Security headers; STS only over HTTPS, which a trusted proxy's header tells.
    let response = send(&gateway, "web", "GET", "/secure", &[]).await;
    assert_eq!(response.status, 200);
    for (name, value) in [
        ("X-Frame-Options", "DENY"),
        ("X-XSS-Protection", "1; mode=block"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'self'"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=()"),
        ("X-Custom-Response-Header", "value"),
    ] {
        assert_eq!(response.header(name), Some(value), "{name}");
    }
    assert_eq!(response.header("Strict-Transport-Security"), None);
    let response = send(
        &gateway,
        "proxied",
        "GET",
        "/secure",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(
        response.header("Strict-Transport-Security"),
        Some("max-age=31536000; includeSubDomains; preload")
    );
    // An untrusted client cannot claim HTTPS.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/secure",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(response.header("Strict-Transport-Security"), None);
    let response = send(&gateway, "web", "GET", "/forced", &[]).await;
    assert_eq!(
        response.header("Strict-Transport-Security"),
        Some("max-age=60")
    );
    assert_eq!(response.header("X-Frame-Options"), Some("SAMEORIGIN"));

    // allowedHosts, checked against hostsProxyHeaders first.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/hosts",
        &[("Host", "good.example")],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = send(&gateway, "web", "GET", "/hosts", &[("Host", "bad.example")]).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "Bad Host\n");
    let response = send(
        &gateway,
        "web",
        "GET",
        "/hosts",
        &[
            ("Host", "bad.example"),
            ("X-Forwarded-Host", "good.example"),
        ],
    )
    .await;
    assert_eq!(response.status, 200);
}

// myName:myPassword, in the formats of Apache's documentation.
const ACCESS: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth
spec:
  basicAuth:
    users:
      - \"myName:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\"
      - \"sha:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=\"
      - \"bcrypt:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\"
    realm: MyRealm
    removeHeader: true
    headerField: X-WebAuth-User
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-ipallowlist
spec:
  ipAllowList:
    sourceRange:
      - 127.0.0.1/32
      - 192.168.1.7
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: elsewhere
spec:
  ipAllowList:
    sourceRange: [10.0.0.0/8]
    rejectStatusCode: 404
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: legacy
spec:
  ipWhiteList:
    sourceRange: [192.0.2.0/24]
    ipStrategy:
      depth: 2
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: secured
spec:
  chain:
    middlewares:
      - name: test-ipallowlist
      - name: test-auth
";

#[tokio::test]
async fn basic_auth_and_allow_lists() {
    let routes = routes(&[
        ("PathPrefix(`/auth`)", "{name: secured}"),
        ("PathPrefix(`/elsewhere`)", "{name: elsewhere}"),
        ("PathPrefix(`/legacy`)", "{name: legacy}"),
    ]);
    let (gateway, upstream) = start(ACCESS, &routes, "").await;

    let response = send(&gateway, "web", "GET", "/auth", &[]).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some("Basic realm=\"MyRealm\"")
    );
    assert_eq!(response.text(), "401 Unauthorized\n");
    // myName:wrong
    let response = send(
        &gateway,
        "web",
        "GET",
        "/auth",
        &[("Authorization", "Basic bXlOYW1lOndyb25n")],
    )
    .await;
    assert_eq!(response.status, 401);
    // Each hash format: myPassword.
    for (user, credentials) in [
        ("myName", "bXlOYW1lOm15UGFzc3dvcmQ="),
        ("sha", "c2hhOm15UGFzc3dvcmQ="),
        ("bcrypt", "YmNyeXB0Om15UGFzc3dvcmQ="),
    ] {
        let authorization = format!("Basic {credentials}");
        let response = send(
            &gateway,
            "web",
            "GET",
            "/auth",
            &[("Authorization", &authorization)],
        )
        .await;
        assert_eq!(response.status, 200, "{user}: {}", response.text());
        assert_eq!(
            response.upstream_header("X-WebAuth-User").as_deref(),
            Some(user)
        );
        assert_eq!(
            response.upstream_header("Authorization"),
            None,
            "removeHeader"
        );
    }
    let before = upstream.requests().len();

    // 127.0.0.1 is outside 10.0.0.0/8: the configured status.
    let response = send(&gateway, "web", "GET", "/elsewhere", &[]).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.text(), "Not Found");

    // ipWhiteList with depth 2: the second X-Forwarded-For entry from the right, only
    // when the entrypoint trusts the client to send it.
    let xff = [("X-Forwarded-For", "192.0.2.9, 198.51.100.1")];
    assert_eq!(
        send(&gateway, "proxied", "GET", "/legacy", &xff)
            .await
            .status,
        200
    );
    assert_eq!(
        send(&gateway, "web", "GET", "/legacy", &xff).await.status,
        403
    );
    let short = [("X-Forwarded-For", "192.0.2.9")];
    assert_eq!(
        send(&gateway, "proxied", "GET", "/legacy", &short)
            .await
            .status,
        403
    );
    assert_eq!(
        upstream.requests().len(),
        before + 1,
        "refused requests stay here"
    );
}

const TRAFFIC: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-ratelimit
spec:
  rateLimit:
    average: 1
    period: 1m
    burst: 2
    sourceCriterion:
      requestHeaderName: X-Client
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-inflightreq
spec:
  inFlightReq:
    amount: 1
";

#[tokio::test]
async fn rate_limits_and_in_flight_limits_answer_429() {
    let routes = routes(&[
        ("PathPrefix(`/limited`)", "{name: test-ratelimit}"),
        ("PathPrefix(`/delay`)", "{name: test-inflightreq}"),
    ]);
    let (gateway, _upstream) = start(TRAFFIC, &routes, "").await;

    let alice = [("X-Client", "alice")];
    for _ in 0..2 {
        let response = send(&gateway, "web", "GET", "/limited", &alice).await;
        assert_eq!(response.status, 200, "the burst: {}", response.text());
    }
    let response = send(&gateway, "web", "GET", "/limited", &alice).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.text(), "Too Many Requests");
    let retry_after: u64 = response
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another source has its own bucket.
    let bob = [("X-Client", "bob")];
    assert_eq!(
        send(&gateway, "web", "GET", "/limited", &bob).await.status,
        200
    );

    // One request in flight per host: a second, concurrent one is refused.
    let slow = tokio::spawn({
        let addr = gateway.addr("web");
        async move { http_request(addr, "GET", "/delay/800", &[], b"").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = send(&gateway, "web", "GET", "/delay/0", &[]).await;
    assert_eq!(response.status, 429);
    assert_eq!(slow.await.expect("slow").status, 200);
    // Released when the slow one finished.
    assert_eq!(
        send(&gateway, "web", "GET", "/delay/0", &[]).await.status,
        200
    );
}

#[tokio::test]
async fn an_answering_middleware_is_named_on_the_span_and_in_the_access_log() {
    let collector = Collector::start().await;
    let extra = format!(
        "tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{}\"}}}}
logs:
  access:
    enabled: true
    format: json
    filePath: access.log
",
        collector.traces_http_url()
    );
    let routes = routes(&[("PathPrefix(`/auth`)", "{name: secured}")]);
    let (gateway, _upstream) = start(ACCESS, &routes, &extra).await;

    // myName:wrong
    let response = send(
        &gateway,
        "web",
        "GET",
        "/auth",
        &[("Authorization", "Basic bXlOYW1lOndyb25n")],
    )
    .await;
    assert_eq!(response.status, 401);

    let server = eventually("the SERVER span of the 401", WAIT, async || {
        collector.spans().into_iter().find(|s| {
            s.kind == SpanKind::Server && s.attr("http.response.status_code") == Some("401")
        })
    })
    .await;
    assert_eq!(
        server.attr("traverse.middleware"),
        Some("default/test-auth")
    );
    assert_eq!(server.attr("traverse.middleware.type"), Some("basicAuth"));

    let log = gateway.dir().join("access.log");
    let line = eventually("the access log line", WAIT, async || {
        std::fs::read_to_string(&log)
            .ok()?
            .lines()
            .find(|l| l.contains("\"DownstreamStatus\":401"))
            .map(str::to_owned)
    })
    .await;
    let record: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(record["ClientUsername"], "myName");
    assert_eq!(
        record["traverse.middleware"], "default/test-auth",
        "the same middleware the span names: {record:#}"
    );
}

const COMPRESS: &str = "# Enable compression
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-compress
spec:
  compress: {}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-compress-options
spec:
  compress:
    encodings:
      - zstd
      - br
    defaultEncoding: zstd
    minResponseBodyBytes: 1200
    excludedContentTypes:
      - text/event-stream
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-compress-included
spec:
  compress:
    includedContentTypes:
      - application/json
      - text/html
      - text/plain
";

/// The body as the client reads it, decoded per its `Content-Encoding`.
fn decoded(response: &Response) -> Vec<u8> {
    use std::io::Read;
    let body = response.body.as_slice();
    let mut out = Vec::new();
    let read = match response.header("Content-Encoding") {
        None => return response.body.clone(),
        Some("gzip") => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
        Some("br") => brotli::Decompressor::new(body, 4096).read_to_end(&mut out),
        Some("zstd") => {
            zstd::stream::read::Decoder::new(body).and_then(|mut d| d.read_to_end(&mut out))
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    };
    read.unwrap_or_else(|e| panic!("the body does not decode: {e}"));
    out
}

#[tokio::test]
async fn responses_are_compressed_as_the_client_prefers() {
    let routes = routes(&[
        ("PathPrefix(`/default`)", "{name: test-compress}"),
        ("PathPrefix(`/options`)", "{name: test-compress-options}"),
        ("PathPrefix(`/included`)", "{name: test-compress-included}"),
    ]);
    let (gateway, _upstream) = start(COMPRESS, &routes, "").await;
    // The upstream echoes request headers: a long one makes its answer long.
    let pad = "compressible ".repeat(200);
    let get = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let gateway = &gateway;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send(gateway, "web", "GET", path, &headers).await
        }
    };
    let long = |accept: Option<&str>| {
        let mut headers = vec![("X-Pad", pad.clone())];
        if let Some(accept) = accept {
            headers.push(("Accept-Encoding", accept.to_owned()));
        }
        headers
    };

    // Quality values decide; ties go to the order of `encodings` (gzip, br, zstd).
    for (accept, expected) in [
        ("gzip;q=0.5, br;q=1.0, zstd;q=0.8", Some("br")),
        ("gzip, deflate, br, zstd", Some("gzip")),
        ("zstd", Some("zstd")),
        ("deflate", None),
        ("gzip;q=0, identity", None),
    ] {
        let response = get("/default", long(Some(accept))).await;
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(response.header("Content-Encoding"), expected, "{accept}");
        assert!(
            response
                .header_all("Vary")
                .iter()
                .any(|v| v.eq_ignore_ascii_case("Accept-Encoding")),
            "{accept}: {:?}",
            response.headers
        );
        if expected.is_some() {
            assert_eq!(response.header("Content-Length"), None, "{accept}");
            assert!(response.body.len() < pad.len(), "{accept}: compressed");
        }
        let body: serde_json::Value = serde_json::from_slice(&decoded(&response))
            .unwrap_or_else(|e| panic!("{accept}: decoded body is the upstream's JSON: {e}"));
        assert_eq!(body["path"], "/default", "{accept}");
        let echoed = body["headers"]
            .as_array()
            .and_then(|h| h.iter().find(|p| p[0].as_str() == Some("X-Pad")))
            .map(|p| p[1].clone());
        assert_eq!(echoed, Some(serde_json::json!(pad.trim_end())), "{accept}");
    }

    // Without Accept-Encoding (and no defaultEncoding), or below 1024 bytes: as sent.
    let response = get("/default", long(None)).await;
    assert_eq!(response.header("Content-Encoding"), None);
    assert!(response.header("Content-Length").is_some());
    let small = get("/default", vec![("Accept-Encoding", "gzip".into())]).await;
    assert!(small.body.len() < 1024, "{}", small.body.len());
    assert_eq!(small.header("Content-Encoding"), None);
    assert_eq!(small.json()["path"], "/default");

    // A body of unknown length is compressed as it streams.
    let mut headers = long(Some("gzip"));
    headers.push(("X-Response-Chunked", "yes".into()));
    let response = get("/default", headers).await;
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
    let body: serde_json::Value = serde_json::from_slice(&decoded(&response)).expect("JSON");
    assert_eq!(body["path"], "/default");

    // The options: defaultEncoding for no header and for `*`; gzip is not offered;
    // an excluded type is sent as it is.
    for (accept, expected) in [
        (None, Some("zstd")),
        (Some("*"), Some("zstd")),
        (Some("gzip"), None),
        (Some("gzip, br"), Some("br")),
    ] {
        let response = get("/options", long(accept)).await;
        assert_eq!(response.header("Content-Encoding"), expected, "{accept:?}");
        let body: serde_json::Value = serde_json::from_slice(&decoded(&response)).expect("JSON");
        assert_eq!(body["path"], "/options");
    }
    let mut events = long(Some("zstd"));
    events.push(("X-Response-Type", "text/event-stream".into()));
    let response = get("/options", events).await;
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(response.header("Content-Type"), Some("text/event-stream"));

    // Only the included types are compressed.
    let response = get("/included", long(Some("br"))).await;
    assert_eq!(response.header("Content-Encoding"), Some("br"));
    let mut image = long(Some("br"));
    image.push(("X-Response-Type", "image/png".into()));
    let response = get("/included", image).await;
    assert_eq!(response.header("Content-Encoding"), None);
}

const RETRY: &str = "# Retry 4 times with exponential backoff
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-retry
spec:
  retry:
    attempts: 3
    initialInterval: 100ms
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-retry-long
spec:
  retry:
    attempts: 6
    initialInterval: 100ms
";

#[tokio::test]
async fn retry_makes_its_attempts_with_backoff_each_a_client_span() {
    let collector = Collector::start().await;
    let extra = format!(
        "tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{}\"}}}}
",
        collector.traces_http_url()
    );
    let down = std::net::SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let late = std::net::SocketAddr::from(([127, 0, 0, 1], Upstream::closed_port()));
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: routes
spec:
  routes:
    - match: PathPrefix(`/retried`)
      middlewares: [{name: test-retry}]
      services: [{name: down, port: 80}]
    - match: PathPrefix(`/once`)
      services: [{name: down, port: 80}]
    - match: PathPrefix(`/late`)
      middlewares: [{name: test-retry-long}]
      services: [{name: late, port: 80}]
";
    let gateway = Gateway::start(
        &config(&extra),
        &[
            ("down", &service("down", &[down])),
            ("late", &service("late", &[late])),
            ("middlewares", RETRY),
            ("routes", routes),
        ],
    )
    .await;
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");

    let client_spans_of = async |path: &str, expected: usize| {
        let server = eventually("the SERVER span", WAIT, async || {
            collector
                .spans()
                .into_iter()
                .find(|s| s.kind == SpanKind::Server && s.attr("url.path") == Some(path))
        })
        .await;
        eventually("every CLIENT span", WAIT, async || {
            let clients: Vec<_> = collector
                .spans()
                .into_iter()
                .filter(|s| s.kind == SpanKind::Client && s.trace_id == server.trace_id)
                .collect();
            (clients.len() >= expected).then_some(clients)
        })
        .await
    };

    // Three attempts, waiting 50-150ms then 71-212ms between them.
    let started = std::time::Instant::now();
    let response = send(&gateway, "web", "GET", "/retried", &[]).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(elapsed >= Duration::from_millis(120), "{elapsed:?}");
    let clients = client_spans_of("/retried", 3).await;
    assert_eq!(
        clients.len(),
        3,
        "one CLIENT span per attempt: {clients:#?}"
    );
    assert!(
        clients.iter().all(|s| s.attr("error.type").is_some()),
        "{clients:#?}"
    );

    // Without the middleware: one attempt (no other endpoint to try).
    let response = send(&gateway, "web", "GET", "/once", &[]).await;
    assert_eq!(response.status, 502);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client_spans_of("/once", 1).await.len(), 1);

    // An endpoint that starts listening while the request is being retried answers it.
    let request = tokio::spawn({
        let addr = gateway.addr("web");
        async move { http_request(addr, "GET", "/late", &[], b"").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _late = Upstream::start_on("late", late).expect("the late endpoint's port is free");
    let response = request.await.expect("request");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("late"));
    let clients = client_spans_of("/late", 2).await;
    assert!(
        clients
            .iter()
            .any(|s| s.attr("http.response.status_code") == Some("200")),
        "{clients:#?}"
    );
}

const ERRORS: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-errors
spec:
  errors:
    status:
      - \"500\"
      - \"501\"
      - \"503\"
      - \"505-599\"
    query: /{status}.html
    service:
      name: error-pages
      port: 80
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-errors-url
spec:
  errors:
    status: [\"404\", \"418\"]
    query: \"/page?code={status}&from={url}\"
    service:
      name: error-pages
      port: 80
";

#[tokio::test]
async fn error_pages_replace_listed_statuses_in_the_requests_trace() {
    let collector = Collector::start().await;
    let extra = format!(
        "tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{}\"}}}}
",
        collector.traces_http_url()
    );
    let app = Upstream::start("app");
    let pages = Upstream::start("pages");
    let routes = routes(&[
        ("PathPrefix(`/status/5`)", "{name: test-errors}"),
        ("PathPrefix(`/status/4`)", "{name: test-errors-url}"),
        ("PathPrefix(`/status/2`)", "{name: test-errors}"),
    ]);
    let gateway = Gateway::start(
        &config(&extra),
        &[
            ("app", &service("app", &[app.addr()])),
            ("error-pages", &service("error-pages", &[pages.addr()])),
            ("middlewares", ERRORS),
            ("routes", &routes),
        ],
    )
    .await;
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");

    // A listed status keeps its code and gets the page's body and headers.
    for status in [500u16, 503, 599] {
        let path = format!("/status/{status}");
        let response = send(&gateway, "web", "GET", &path, &[]).await;
        assert_eq!(response.status, status);
        assert_eq!(response.server().as_deref(), Some("pages"), "{path}");
        assert_eq!(response.upstream_path(), Some(format!("/{status}.html")));
        assert_eq!(
            response.header("X-Upstream"),
            Some("pages"),
            "the page's headers"
        );
        assert_eq!(
            response.header("Content-Length"),
            Some(response.body.len().to_string().as_str())
        );
    }
    // Others pass as the upstream sent them.
    for status in [502u16, 504, 200] {
        let path = format!("/status/{status}");
        let response = send(&gateway, "web", "GET", &path, &[]).await;
        assert_eq!(response.status, status);
        assert_eq!(response.server().as_deref(), Some("app"), "{path}");
    }
    // `{url}` is the request's target, query-escaped.
    let response = send(&gateway, "web", "GET", "/status/418?x=1", &[]).await;
    assert_eq!(response.status, 418);
    assert_eq!(
        response.upstream_path().as_deref(),
        Some("/page?code=418&from=%2Fstatus%2F418%3Fx%3D1")
    );

    // The page request is a CLIENT span of the request's trace, and carries its context.
    let server = eventually("the SERVER span of the 503", WAIT, async || {
        collector
            .spans()
            .into_iter()
            .find(|s| s.kind == SpanKind::Server && s.attr("url.path") == Some("/status/503"))
    })
    .await;
    let call = eventually("the error page's CLIENT span", WAIT, async || {
        collector.spans().into_iter().find(|s| {
            s.kind == SpanKind::Client
                && s.trace_id == server.trace_id
                && s.attr("traverse.call") == Some("errors")
        })
    })
    .await;
    assert_eq!(call.parent_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(call.attr("http.response.status_code"), Some("200"));
    let page_request = pages
        .requests()
        .into_iter()
        .find(|r| r.path == "/503.html")
        .expect("the page request");
    let traceparent = page_request.header("traceparent").expect("traceparent");
    assert!(
        traceparent.contains(&format!("-{}-{}-", server.trace_id, call.span_id)),
        "{traceparent} names the CLIENT span"
    );
}

const SECRET_AUTH: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth
spec:
  basicAuth:
    secret: authsecret
---
# Note: in a kubernetes secret the string (e.g. generated by htpasswd) must be base64-encoded first.
apiVersion: v1
kind: Secret
metadata:
  name: authsecret
  namespace: default
# Traefik's example writes the value as a `|2` block; its trailing newline is not base64
# to the Secret type used here (Go's decoder skips it), so it is one plain scalar.
data:
  users: dGVzdDokYXByMSRINnVza2trVyRJZ1hMUDZld1RyU3VCa1RycUU4d2ovCnRlc3QyOiRhcHIxJGQ5aHI5SEJCJDRIeHdnVWlyM0hQNEVzZ2dQL1FObzAK
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth-typed
spec:
  basicAuth:
    secret: authsecret-typed
---
apiVersion: v1
kind: Secret
metadata:
  name: authsecret-typed
  namespace: default
type: kubernetes.io/basic-auth
data:
  username: dXNlcg== # username: user
  password: cGFzc3dvcmQ= # password: password
";

#[tokio::test]
async fn basic_auth_reads_its_users_from_a_secret() {
    let routes = routes(&[
        ("PathPrefix(`/lines`)", "{name: test-auth}"),
        ("PathPrefix(`/typed`)", "{name: test-auth-typed}"),
    ]);
    let (gateway, _upstream) = start(SECRET_AUTH, &routes, "").await;
    use base64::Engine as _;
    let basic = |credentials: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    };
    for (path, credentials, status) in [
        ("/lines", "test:test", 200),
        ("/lines", "test2:test2", 200),
        ("/lines", "test:test2", 401),
        ("/typed", "user:password", 200),
        ("/typed", "user:wrong", 401),
        ("/typed", "test:test", 401),
    ] {
        let authorization = basic(credentials);
        let response = send(
            &gateway,
            "web",
            "GET",
            path,
            &[("Authorization", &authorization)],
        )
        .await;
        assert_eq!(response.status, status, "{path} {credentials}");
    }
}

fn forward_auth_middlewares(auth: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth
spec:
  forwardAuth:
    address: http://{auth}/status/200
    authResponseHeaders:
      - X-Upstream
    authResponseHeadersRegex: ^X-Upstream-S
    authRequestHeaders:
      - Accept
      - X-Keep
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth-deny
spec:
  forwardAuth:
    address: http://{auth}/status/403
"
    )
}

#[tokio::test]
async fn forward_auth_asks_the_server_in_the_requests_trace() {
    let collector = Collector::start().await;
    let extra = format!(
        "tracing:
  queue: {{scheduleDelay: 50ms}}
  otlp: {{http: {{endpoint: \"{}\"}}}}
",
        collector.traces_http_url()
    );
    let auth = Upstream::start("auth");
    let routes = routes(&[
        ("PathPrefix(`/allowed`)", "{name: test-auth}"),
        ("PathPrefix(`/denied`)", "{name: test-auth-deny}"),
    ]);
    let (gateway, upstream) = start(&forward_auth_middlewares(auth.addr()), &routes, &extra).await;

    // Allowed: the server's named headers replace the client's on the upstream request.
    let response = send(
        &gateway,
        "web",
        "GET",
        "/allowed/page?q=1",
        &[
            ("X-Keep", "kept"),
            ("X-Drop", "not for the server"),
            ("X-Upstream", "forged"),
            ("X-Upstream-Secret", "forged"),
        ],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.server().as_deref(), Some("app"));
    assert_eq!(response.upstream_headers("X-Upstream"), ["auth"]);
    assert_eq!(response.upstream_headers("X-Upstream-Secret"), ["s3cret"]);
    let asked = auth.requests();
    let asked = asked.last().expect("the server was asked");
    assert_eq!(asked.method, "GET");
    assert_eq!(asked.path, "/status/200");
    assert_eq!(asked.header("X-Keep"), Some("kept"));
    assert_eq!(asked.header("X-Drop"), None, "only authRequestHeaders");
    assert_eq!(asked.header("X-Forwarded-Method"), Some("GET"));
    assert_eq!(asked.header("X-Forwarded-Uri"), Some("/allowed/page?q=1"));
    assert_eq!(asked.header("X-Forwarded-Proto"), Some("http"));
    assert_eq!(asked.header("X-Forwarded-For"), Some("127.0.0.1"));
    assert!(asked.header("X-Forwarded-Host").is_some());
    let traceparent = asked
        .header("traceparent")
        .expect("trace context")
        .to_owned();
    assert_eq!(upstream.count(), 1);

    // Denied: the server's answer is the client's, and the upstream never sees it.
    let response = send(&gateway, "web", "GET", "/denied", &[]).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.server().as_deref(), Some("auth"));
    assert_eq!(response.header("X-Upstream"), Some("auth"));
    assert_eq!(upstream.count(), 1);

    // The call is a CLIENT span of the request's trace, the one whose context it carried;
    // a refusal is named on the SERVER span.
    let server = eventually("the SERVER span of /allowed", WAIT, async || {
        collector
            .spans()
            .into_iter()
            .find(|s| s.kind == SpanKind::Server && s.attr("url.path") == Some("/allowed/page"))
    })
    .await;
    let call = eventually("the forwardAuth CLIENT span", WAIT, async || {
        collector.spans().into_iter().find(|s| {
            s.kind == SpanKind::Client
                && s.trace_id == server.trace_id
                && s.attr("traverse.call") == Some("forwardAuth")
        })
    })
    .await;
    assert_eq!(call.parent_id.as_deref(), Some(server.span_id.as_str()));
    assert!(
        traceparent.contains(&format!("-{}-{}-", server.trace_id, call.span_id)),
        "{traceparent}"
    );
    let denied = eventually("the SERVER span of /denied", WAIT, async || {
        collector
            .spans()
            .into_iter()
            .find(|s| s.kind == SpanKind::Server && s.attr("url.path") == Some("/denied"))
    })
    .await;
    assert_eq!(denied.attr("traverse.middleware.type"), Some("forwardAuth"));
    assert_eq!(
        denied.attr("traverse.middleware"),
        Some("default/test-auth-deny")
    );
}

const CIRCUIT: &str = "# Latency Check
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-cb
spec:
  circuitBreaker:
    expression: ResponseCodeRatio(500, 600, 0, 600) > 0.50
    checkPeriod: 100ms
    fallbackDuration: 1s
    recoveryDuration: 1s
";

#[tokio::test]
async fn a_circuit_breaker_trips_falls_back_and_recovers() {
    let routes = routes(&[("PathPrefix(`/status`)", "{name: test-cb}")]);
    let (gateway, upstream) = start(CIRCUIT, &routes, "").await;

    // Mostly server errors: the next check trips the breaker.
    for _ in 0..6 {
        let response = send(&gateway, "web", "GET", "/status/500", &[]).await;
        assert_eq!(response.status, 500);
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let seen = upstream.count();
    let tripped = send(&gateway, "web", "GET", "/status/200", &[]).await;
    assert_eq!(tripped.status, 503, "{}", tripped.text());
    assert_eq!(tripped.text(), "Service Unavailable");
    for _ in 0..3 {
        assert_eq!(
            send(&gateway, "web", "GET", "/status/200", &[])
                .await
                .status,
            503
        );
    }
    assert_eq!(
        upstream.count(),
        seen,
        "nothing reached the upstream while tripped"
    );

    // After fallbackDuration and recoveryDuration, all requests pass again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..5 {
        assert_eq!(
            send(&gateway, "web", "GET", "/status/200", &[])
                .await
                .status,
            200
        );
    }
}

/// A Middleware in another namespace, and the route that names it.
const SHARED_HEADERS: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: shared-headers
  namespace: shared
spec:
  headers:
    customRequestHeaders:
      X-Shared: \"yes\"
";

#[tokio::test]
async fn cross_namespace_references_follow_the_provider_setting() {
    let upstream = Upstream::start("app");
    let routes = routes(&[
        (
            "PathPrefix(`/cross`)",
            "{name: shared-headers, namespace: shared}",
        ),
        ("PathPrefix(`/elsewhere`)", "{name: shared-headers@docker}"),
        ("PathPrefix(`/local`)", ""),
    ]);
    let files = [
        ("app", service("app", &[upstream.addr()])),
        ("middlewares", SHARED_HEADERS.to_owned()),
        ("routes", routes),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();

    // Traefik's default: refused, the field named, the route closed, the others serving.
    let gateway = Gateway::start(&config(""), &files).await;
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    for field in [
        "spec.routes[0].middlewares[0].namespace",
        "spec.routes[1].middlewares[0].name",
    ] {
        assert!(
            diagnostics
                .iter()
                .any(|d| traverse_e2e::field(d, "field") == field),
            "{field}: {diagnostics:#?}"
        );
    }
    assert_eq!(
        send(&gateway, "web", "GET", "/cross", &[]).await.status,
        503
    );
    assert_eq!(
        send(&gateway, "web", "GET", "/elsewhere", &[]).await.status,
        503
    );
    assert_eq!(
        send(&gateway, "web", "GET", "/local", &[]).await.status,
        200
    );
    drop(gateway);

    // Allowed by the provider, the same reference resolves.
    let gateway = Gateway::start(&config("    allowCrossNamespace: true\n"), &files).await;
    let response = send(&gateway, "web", "GET", "/cross", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.upstream_header("X-Shared").as_deref(), Some("yes"));
    assert_eq!(
        send(&gateway, "web", "GET", "/elsewhere", &[]).await.status,
        503
    );
}

/// Traefik's documented shapes, with small limits.
const BUFFERING: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: limit-request
spec:
  buffering:
    maxRequestBodyBytes: 64
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: limit-response
spec:
  buffering:
    maxResponseBodyBytes: 2000
";

#[tokio::test]
async fn buffering_limits_request_and_response_bodies() {
    let routes = routes(&[
        ("PathPrefix(`/request`)", "{name: limit-request}"),
        ("PathPrefix(`/response`)", "{name: limit-response}"),
    ]);
    let (gateway, upstream) = start(BUFFERING, &routes, "").await;
    let post = |path: &'static str, body: Vec<u8>| {
        let addr = gateway.addr("web");
        async move { http_request(addr, "POST", path, &[], &body).await }
    };

    let response = post("/request/small", vec![b'a'; 64]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = post("/request/large", vec![b'a'; 65]).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), "Request Entity Too Large");
    assert_eq!(
        upstream.count_path("/request/large"),
        0,
        "a body announced too large never reaches the upstream"
    );

    // A chunked body is counted as it streams: past the limit the client gets the 413.
    let mut connection = traverse_e2e::client::Connection::open(gateway.addr("web")).await;
    let chunk = format!("28\r\n{}\r\n", "b".repeat(40));
    let raw = format!(
        "POST /request/chunked HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let response = connection
        .send_raw_and_read(raw.as_bytes(), "POST", std::time::Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(response.status, 413, "{}", response.text());

    // The upstream echoes the request's headers: a long one makes a long answer.
    let pad = "p".repeat(3000);
    let response = send(&gateway, "web", "GET", "/response/small", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = send(
        &gateway,
        "web",
        "GET",
        "/response/large",
        &[("X-Pad", &pad)],
    )
    .await;
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "Internal Server Error");
    // Without Content-Length the size is known only as the body streams: a 500 while the
    // response header has not left yet, else the response is cut; never a whole 200.
    let chunked = traverse_e2e::client::send(
        gateway.addr("web"),
        "GET",
        "/response/chunked",
        &[("X-Pad", &pad), ("X-Response-Chunked", "1")],
        b"",
        std::time::Duration::from_secs(5),
    )
    .await;
    if let Ok(response) = chunked {
        assert_eq!(response.status, 500, "{}", response.text());
    }
    let small = traverse_e2e::client::send(
        gateway.addr("web"),
        "GET",
        "/response/chunked-small",
        &[("X-Response-Chunked", "1")],
        b"",
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("a chunked body under the limit passes");
    assert_eq!(small.status, 200);
}

// Traefik's documented users (test:test, test2:test2) and a Secret in another realm.
const DIGEST: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth
spec:
  digestAuth:
    users:
      - test:traefik:a2688e031edb4be6a3797f3882655c05
      - test2:traefik:518845800f9e2bfb1f1f740ec24f074e
    removeHeader: true
    headerField: X-WebAuth-User
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-auth-secret
spec:
  digestAuth:
    secret: userssecret
    realm: MyRealm
---
apiVersion: v1
kind: Secret
metadata:
  name: userssecret
  namespace: default
stringData:
  users: |
    alice:MyRealm:ea7ea06f4fa19c9443ca91f6ec6a6242
";

/// Output of `program` with `args`, run off the runtime's thread (the upstream shares it).
async fn run(program: &'static str, args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || std::process::Command::new(program).args(args).output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// The status of `GET url` by `curl --digest` as `user:password`.
async fn curl_digest(url: &str, credentials: &str) -> u16 {
    let output = run(
        "curl",
        [
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "--digest",
            "-u",
            credentials,
            url,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    String::from_utf8_lossy(&output.stdout)
        .parse()
        .unwrap_or_else(|_| panic!("curl: {output:?}"))
}

/// The status of `GET url` by Python's `urllib` digest handler as `user`, `password`.
async fn python_digest(url: &str, user: &str, password: &str) -> u16 {
    const SCRIPT: &str = "
import sys, urllib.error, urllib.request
url, user, password = sys.argv[1:4]
passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
passwords.add_password(None, url, user, password)
opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
try:
    print(opener.open(url, timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
";
    let output = run(
        "python3",
        ["-c", SCRIPT, url, user, password]
            .map(String::from)
            .to_vec(),
    )
    .await;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("python3: {output:?}"))
}

/// `name="value"` of a `WWW-Authenticate` challenge.
fn challenge_param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("{name} in {challenge}"))
        + name.len()
        + 2;
    let end = start + challenge[start..].find('"').expect("closing quote");
    &challenge[start..end]
}

fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn digest_auth_answers_real_digest_clients() {
    let routes = routes(&[
        ("PathPrefix(`/digest`)", "{name: test-auth}"),
        ("PathPrefix(`/secret`)", "{name: test-auth-secret}"),
    ]);
    let (gateway, upstream) = start(DIGEST, &routes, "").await;

    let response = send(&gateway, "web", "GET", "/digest", &[]).await;
    assert_eq!(response.status, 401);
    let challenge = response
        .header("WWW-Authenticate")
        .expect("challenge")
        .to_owned();
    assert!(
        challenge.starts_with("Digest realm=\"traefik\", nonce=\"")
            && challenge.ends_with("\", algorithm=\"MD5\", qop=\"auth\""),
        "{challenge}"
    );
    assert_eq!(response.text(), "401 Unauthorized\n");

    let web = gateway.addr("web");
    let url = format!("http://{web}/digest/page?x=1");
    assert_eq!(curl_digest(&url, "test:test").await, 200);
    let seen = upstream
        .requests()
        .last()
        .cloned()
        .expect("a request upstream");
    assert_eq!(seen.header("X-WebAuth-User"), Some("test"));
    assert_eq!(seen.header("Authorization"), None, "removeHeader");
    assert_eq!(curl_digest(&url, "test:wrong").await, 401);
    assert_eq!(curl_digest(&url, "nobody:test").await, 401);
    assert_eq!(python_digest(&url, "test2", "test2").await, 200);
    assert_eq!(python_digest(&url, "test2", "test").await, 401);
    // The Secret's user, of realm MyRealm (alice:MyRealm:secret).
    let secret_url = format!("http://{web}/secret");
    assert_eq!(curl_digest(&secret_url, "alice:secret").await, 200);
    assert_eq!(
        curl_digest(&url, "alice:secret").await,
        401,
        "another realm"
    );

    // A proof made by hand with a nonce this process did not sign (as after a restart):
    // right password, so the new challenge says the nonce is stale.
    let opaque = challenge_param(&challenge, "opaque");
    let authorization = |nonce: &str, uri: &str| {
        let ha1 = md5_hex("test:traefik:test");
        let ha2 = md5_hex(&format!("GET:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abcdef:auth:{ha2}"));
        format!(
            "Digest username=\"test\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"{uri}\", \
             qop=auth, nc=00000001, cnonce=\"abcdef\", response=\"{response}\", opaque=\"{opaque}\""
        )
    };
    let foreign = "0".repeat(challenge_param(&challenge, "nonce").len());
    let response = send(
        &gateway,
        "web",
        "GET",
        "/digest",
        &[("Authorization", &authorization(&foreign, "/digest"))],
    )
    .await;
    assert_eq!(response.status, 401);
    let stale = response.header("WWW-Authenticate").expect("challenge");
    assert!(stale.ends_with(", stale=\"true\""), "{stale}");
    // The challenge's own nonce is accepted, for the URI the proof names only.
    let nonce = challenge_param(&challenge, "nonce");
    let good = authorization(nonce, "/digest");
    let response = send(
        &gateway,
        "web",
        "GET",
        "/digest",
        &[("Authorization", &good)],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = send(
        &gateway,
        "web",
        "GET",
        "/digest/other",
        &[("Authorization", &good)],
    )
    .await;
    assert_eq!(response.status, 401);
    assert!(!response
        .header("WWW-Authenticate")
        .unwrap_or("")
        .contains("stale"));
}

// Traefik's documented example, and the deprecated off switch.
const CONTENT_TYPE: &str = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: autodetect
spec:
  contentType: {}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: no-autodetect
spec:
  contentType:
    autoDetect: false
";

#[tokio::test]
async fn content_type_never_adds_one_and_detection_is_reported() {
    let upstream = Upstream::start("app");
    let routes = routes(&[
        ("PathPrefix(`/detect`)", "{name: autodetect}"),
        ("PathPrefix(`/off`)", "{name: no-autodetect}"),
        ("PathPrefix(`/plain`)", ""),
    ]);
    let gateway = Gateway::start(
        &config(""),
        &[
            ("app", &service("app", &[upstream.addr()])),
            ("middlewares", CONTENT_TYPE),
            ("routes", &routes),
        ],
    )
    .await;
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    let named: Vec<(String, String)> = diagnostics
        .iter()
        .map(|d| {
            (
                traverse_e2e::field(&d["object"], "name").to_owned(),
                traverse_e2e::field(d, "field").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [(
            "autodetect".to_owned(),
            "spec.contentType.autoDetect".to_owned()
        )],
        "{diagnostics:#?}"
    );
    assert_eq!(traverse_e2e::field(&diagnostics[0], "severity"), "warning");
    for path in ["/detect", "/off", "/plain"] {
        // A JSON body without a Content-Type: Go's detection would add text/plain.
        let response = send(&gateway, "web", "GET", path, &[("X-Response-Type", "none")]).await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("Content-Type"), None, "{path}");
        let response = send(
            &gateway,
            "web",
            "GET",
            path,
            &[("X-Response-Type", "text/csv")],
        )
        .await;
        assert_eq!(response.header("Content-Type"), Some("text/csv"), "{path}");
    }
}
