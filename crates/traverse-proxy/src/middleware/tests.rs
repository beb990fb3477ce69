use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};

use super::*;
use traverse_model::{AddPrefix, Headers, StripPrefix};

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
        request: list(request),
        response: list(response),
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
    upstream_request(&chain, &mut req).expect("rewrite");
    assert_eq!(req.uri.to_string(), "/internal/v1/users?x=1");
    assert_eq!(
        req.headers.get("x-forwarded-prefix").expect("prefix"),
        "/api"
    );
}

#[test]
fn strip_to_root_leaves_a_slash() {
    let mut req = request("/api");
    upstream_request(&[strip(&["/api"])], &mut req).expect("rewrite");
    assert_eq!(req.uri.path(), "/");
}

#[test]
fn no_matching_prefix_leaves_the_path_alone() {
    let mut req = request("/other?q=1");
    upstream_request(&[strip(&["/api"])], &mut req).expect("rewrite");
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
    upstream_request(&chain, &mut req).expect("rewrite");
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
    response(&chain, &mut resp).expect("filter");
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
