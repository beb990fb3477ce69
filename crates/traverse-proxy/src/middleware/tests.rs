use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};

use super::*;
use std::sync::Arc;
use traverse_model::{
    AddPrefix, BasicAuth, Cors, Headers, Pattern, ReplacePath, ReplacePathRegex, Security,
    StripPrefix, StripPrefixRegex,
};

fn origin(kind: &'static str) -> Origin {
    Origin {
        name: Arc::from("apps/mw"),
        kind,
    }
}

fn rewrite(chain: &[Middleware], req: &mut RequestHeader) {
    upstream_request(chain, req, &Exchange::new(None)).expect("rewrite");
}

fn request(uri: &str) -> RequestHeader {
    RequestHeader::build("GET", uri.as_bytes(), None).expect("request")
}

fn strip(prefixes: &[&str]) -> Middleware {
    Middleware::StripPrefix(StripPrefix {
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
    })
}

fn headers(
    request: &[(&'static str, Option<&'static str>)],
    response: &[(&'static str, Option<&'static str>)],
) -> Middleware {
    let list = |items: &[(&'static str, Option<&'static str>)]| {
        items
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), v.map(HeaderValue::from_static)))
            .collect()
    };
    Middleware::Headers(Headers {
        origin: origin("headers"),
        request: list(request),
        response: list(response),
        cors: None,
        security: None,
    })
}

#[test]
fn strip_then_add_prefix_keeps_the_query() {
    let mut req = request("/api/v1/users?x=1");
    let chain = vec![
        strip(&["/nope", "/api"]),
        Middleware::AddPrefix(AddPrefix {
            prefix: "/internal".into(),
        }),
    ];
    rewrite(&chain, &mut req);
    assert_eq!(req.uri.to_string(), "/internal/v1/users?x=1");
    assert_eq!(
        req.headers.get("x-forwarded-prefix").expect("prefix"),
        "/api"
    );
}

#[test]
fn strip_to_root_leaves_a_slash() {
    let mut req = request("/api");
    rewrite(&[strip(&["/api"])], &mut req);
    assert_eq!(req.uri.path(), "/");
}

#[test]
fn no_matching_prefix_leaves_the_path_alone() {
    let mut req = request("/other?q=1");
    rewrite(&[strip(&["/api"])], &mut req);
    assert_eq!(req.uri.to_string(), "/other?q=1");
    assert!(req.headers.get("x-forwarded-prefix").is_none());
}

#[test]
fn header_middleware_sets_and_removes() {
    let mut req = request("/");
    req.insert_header("x-remove-me", "1").expect("header");
    let chain = vec![headers(
        &[("x-added", Some("yes")), ("x-remove-me", None)],
        &[],
    )];
    rewrite(&chain, &mut req);
    assert_eq!(req.headers.get("x-added").expect("added"), "yes");
    assert!(req.headers.get("x-remove-me").is_none());
}

#[test]
fn responses_are_filtered_in_reverse_order() {
    // The first middleware of the chain sees the response last, so its value wins.
    let chain = vec![
        headers(&[], &[("x-layer", Some("outer"))]),
        headers(&[], &[("x-layer", Some("inner")), ("server", None)]),
    ];
    let mut resp = ResponseHeader::build(200, None).expect("response");
    resp.insert_header("server", "upstream").expect("header");
    response(&chain, &request("/"), &mut Exchange::new(None), &mut resp).expect("filter");
    assert_eq!(resp.headers.get("x-layer").expect("layer"), "outer");
    assert!(resp.headers.get("server").is_none());
}

/// A step of the kind later middlewares are: it answers some requests itself.
struct DenyAdmin;

#[async_trait]
impl Step for DenyAdmin {
    fn acts_on_request(&self) -> bool {
        true
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        telemetry: &Telemetry,
    ) -> Result<Verdict> {
        // A call on the request's behalf has no span without a tracer, and must not fail.
        if let Some(call) = exchange.begin_call(telemetry, "deny-admin") {
            assert!(call.context_headers().traceparent.is_some());
            exchange.end_call(telemetry, call, Ok(200));
        }
        if request.uri.path().starts_with("/admin") {
            return Ok(Verdict::Answer(Answer {
                status: 403,
                headers: vec![],
                body: Bytes::from_static(b"forbidden\n"),
            }));
        }
        Ok(Verdict::Continue)
    }

    fn may_retry(&self, _attempts: u32) -> Option<bool> {
        Some(false)
    }
}

/// Steps that only rewrite are skipped by the request phase.
struct Panics;

#[async_trait]
impl Step for Panics {
    async fn request(
        &self,
        _request: &RequestHeader,
        _exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        panic!("a step that does not act on requests is never asked")
    }
}

#[tokio::test]
async fn the_first_answer_ends_the_request_phase() {
    let telemetry = Telemetry::default();
    let mut exchange = Exchange::new(None);
    let steps: [&dyn Step; 2] = [&Panics, &DenyAdmin];
    let verdict = run_request(
        steps.into_iter(),
        &request("/admin/x"),
        &mut exchange,
        &telemetry,
    )
    .await
    .expect("verdict");
    let Verdict::Answer(answer) = verdict else {
        panic!("answered")
    };
    assert_eq!(answer.status, 403);
    let verdict = run_request(
        steps.into_iter(),
        &request("/shop"),
        &mut exchange,
        &telemetry,
    )
    .await
    .expect("verdict");
    assert_eq!(verdict, Verdict::Continue);
}

#[tokio::test]
async fn todays_middlewares_never_answer() {
    let chain = vec![strip(&["/api"]), headers(&[("x-a", Some("1"))], &[])];
    let verdict = super::request(
        &chain,
        &request("/api"),
        &mut Exchange::new(None),
        &Telemetry::default(),
    )
    .await
    .expect("verdict");
    assert_eq!(verdict, Verdict::Continue);
    assert!(may_retry(&chain, 1, true), "no opinion: the default stands");
    assert!(!may_retry(&chain, 1, false));
    assert_eq!(DenyAdmin.may_retry(1), Some(false));
}

#[test]
fn path_regex_steps_record_what_they_replaced() {
    let mut req = request("/foo/abc/123/bar?q=1");
    let chain = vec![
        Middleware::StripPrefixRegex(StripPrefixRegex {
            patterns: vec![Pattern::new("/foo/[a-z]+/[0-9]+/").expect("regex")],
        }),
        Middleware::ReplacePathRegex(ReplacePathRegex {
            pattern: Pattern::new("^/bar$").expect("regex"),
            replacement: "/baz/$0".into(),
        }),
        Middleware::ReplacePath(ReplacePath {
            path: "/final".into(),
        }),
    ];
    rewrite(&chain, &mut req);
    assert_eq!(req.uri.to_string(), "/final?q=1");
    assert_eq!(
        req.headers.get("x-forwarded-prefix").expect("prefix"),
        "/foo/abc/123/"
    );
    let replaced: Vec<_> = req.headers.get_all("x-replaced-path").iter().collect();
    assert_eq!(replaced, ["/bar", "/baz//bar"]);
}

fn cors_headers(credentials: bool) -> Middleware {
    Middleware::Headers(Headers {
        origin: origin("headers"),
        request: vec![],
        response: vec![],
        cors: Some(Box::new(Cors {
            allow_origins: vec!["https://app.example".into()],
            allow_origin_patterns: vec![],
            allow_credentials: credentials,
            allow_headers: Some(HeaderValue::from_static("*")),
            allow_headers_wildcard: true,
            allow_methods: Some(HeaderValue::from_static("GET,OPTIONS,PUT")),
            allow_methods_wildcard: false,
            expose_headers: None,
            expose_headers_wildcard: false,
            max_age: Some(100),
            add_vary: true,
        })),
        security: Some(Box::new(Security {
            allowed_hosts: vec![],
            hosts_proxy_headers: vec![],
            ssl_proxy_headers: vec![],
            sts: Some(HeaderValue::from_static("max-age=60")),
            force_sts: false,
            public_key: None,
            always: vec![(
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("DENY"),
            )],
            development: false,
        })),
    })
}

fn preflight_request() -> RequestHeader {
    let mut req = RequestHeader::build("OPTIONS", b"/api", None).expect("request");
    req.insert_header("origin", "https://app.example")
        .expect("h");
    req.insert_header("access-control-request-method", "PUT")
        .expect("h");
    req.insert_header("access-control-request-headers", "x-token")
        .expect("h");
    req
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.to_str().ok())
}

#[tokio::test]
async fn cors_preflight_is_answered_and_named() {
    let chain = vec![cors_headers(true)];
    let mut exchange = Exchange::new(None);
    let verdict = super::request(
        &chain,
        &preflight_request(),
        &mut exchange,
        &Telemetry::default(),
    )
    .await
    .expect("verdict");
    let Verdict::Answer(answer) = verdict else {
        panic!("a preflight is answered")
    };
    assert_eq!(answer.status, 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        header(&answer, "access-control-allow-credentials"),
        Some("true")
    );
    // `*` with credentials: the requested headers are echoed.
    assert_eq!(
        header(&answer, "access-control-allow-headers"),
        Some("x-token")
    );
    assert_eq!(
        header(&answer, "access-control-allow-methods"),
        Some("GET,OPTIONS,PUT")
    );
    assert_eq!(header(&answer, "access-control-max-age"), Some("100"));
    assert_eq!(
        exchange
            .notes()
            .answered_by
            .as_ref()
            .map(|o| (&*o.name, o.kind)),
        Some(("apps/mw", "headers"))
    );
    // Without credentials the list is sent as configured.
    let verdict = super::request(
        &[cors_headers(false)],
        &preflight_request(),
        &mut Exchange::new(None),
        &Telemetry::default(),
    )
    .await
    .expect("verdict");
    let Verdict::Answer(answer) = verdict else {
        panic!("answered")
    };
    assert_eq!(header(&answer, "access-control-allow-headers"), Some("*"));
    assert_eq!(header(&answer, "access-control-allow-credentials"), None);
}

#[test]
fn cors_and_security_headers_on_responses() {
    let chain = vec![cors_headers(false)];
    let mut req = request("/api");
    req.insert_header("origin", "https://evil.example")
        .expect("h");
    let mut resp = ResponseHeader::build(200, None).expect("response");
    resp.insert_header("vary", "Accept-Encoding").expect("h");
    response(&chain, &req, &mut Exchange::new(None), &mut resp).expect("filter");
    assert!(resp.headers.get("access-control-allow-origin").is_none());
    assert_eq!(
        resp.headers.get("vary").expect("vary"),
        "Accept-Encoding,Origin"
    );
    assert_eq!(resp.headers.get("x-frame-options").expect("frame"), "DENY");
    assert!(
        resp.headers.get("strict-transport-security").is_none(),
        "no STS on plain HTTP unless forced"
    );

    let mut req = request("/api");
    req.insert_header("origin", "https://app.example")
        .expect("h");
    let mut resp = ResponseHeader::build(200, None).expect("response");
    response(&chain, &req, &mut Exchange::new(None), &mut resp).expect("filter");
    assert_eq!(
        resp.headers
            .get("access-control-allow-origin")
            .expect("origin"),
        "https://app.example"
    );
    assert_eq!(resp.headers.get("vary").expect("vary"), "Origin");
}

fn basic_auth() -> Middleware {
    Middleware::BasicAuth(BasicAuth {
        origin: origin("basicAuth"),
        users: vec![(
            "myName".into(),
            traverse_model::Credential::parse("{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=").expect("sha"),
        )],
        challenge: HeaderValue::from_static("Basic realm=\"traefik\""),
        remove_header: true,
        header_field: Some(HeaderName::from_static("x-webauth-user")),
    })
}

#[tokio::test]
async fn an_answer_passes_through_the_earlier_steps_response_hooks() {
    // headers (CORS, security) before basicAuth: the 401 carries their headers.
    let chain = vec![cors_headers(false), basic_auth()];
    let mut req = request("/api");
    req.insert_header("origin", "https://app.example")
        .expect("h");
    let mut exchange = Exchange::new(None);
    let verdict = super::request(&chain, &req, &mut exchange, &Telemetry::default())
        .await
        .expect("verdict");
    let Verdict::Answer(answer) = verdict else {
        panic!("no credentials: 401")
    };
    assert_eq!(answer.status, 401);
    assert_eq!(
        header(&answer, "www-authenticate"),
        Some("Basic realm=\"traefik\"")
    );
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(header(&answer, "x-frame-options"), Some("DENY"));
    assert_eq!(
        exchange.notes().answered_by.as_ref().map(|o| o.kind),
        Some("basicAuth")
    );
}

#[tokio::test]
async fn basic_auth_admits_and_names_the_user_upstream() {
    let chain = vec![basic_auth()];
    let mut req = request("/api");
    // myName:myPassword
    req.insert_header("authorization", "Basic bXlOYW1lOm15UGFzc3dvcmQ=")
        .expect("h");
    let mut exchange = Exchange::new(None);
    let verdict = super::request(&chain, &req, &mut exchange, &Telemetry::default())
        .await
        .expect("verdict");
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(exchange.notes().user.as_deref(), Some("myName"));
    upstream_request(&chain, &mut req, &exchange).expect("rewrite");
    assert_eq!(req.headers.get("x-webauth-user").expect("user"), "myName");
    assert!(req.headers.get("authorization").is_none(), "removeHeader");

    let mut wrong = request("/api");
    // myName:nope
    wrong
        .insert_header("authorization", "Basic bXlOYW1lOm5vcGU=")
        .expect("h");
    let mut exchange = Exchange::new(None);
    let verdict = super::request(&chain, &wrong, &mut exchange, &Telemetry::default())
        .await
        .expect("verdict");
    assert!(matches!(
        verdict,
        Verdict::Answer(Answer { status: 401, .. })
    ));
    assert_eq!(
        exchange.notes().user.as_deref(),
        Some("myName"),
        "logged even when refused, as Traefik"
    );
}
