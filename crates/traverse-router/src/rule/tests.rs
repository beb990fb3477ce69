#![allow(clippy::unwrap_used)] // panicking on a broken fixture is what a test should do

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{HostPattern, Rule};
use crate::table::Request;

/// Owned description of a request, turned into a borrowed [`Request`] per check.
#[derive(Clone)]
pub(crate) struct Req {
    pub method: &'static str,
    pub host: &'static str,
    pub path: &'static str,
    pub query: Option<&'static str>,
    pub headers: Vec<(&'static str, &'static str)>,
    pub ip: Option<&'static str>,
}

pub(crate) fn req() -> Req {
    Req {
        method: "GET",
        host: "example.com",
        path: "/",
        query: None,
        headers: Vec::new(),
        ip: None,
    }
}

impl Rule {
    fn matches_request(&self, request: &Req) -> bool {
        request.with(|r| self.matches(r))
    }
}

impl Req {
    pub fn host(mut self, host: &'static str) -> Self {
        self.host = host;
        self
    }
    pub fn path(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }
    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    pub fn query(mut self, query: &'static str) -> Self {
        self.query = Some(query);
        self
    }
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn ip(mut self, ip: &'static str) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Calls `f` with the borrowed request view.
    pub fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        let request = Request {
            method: self.method,
            host: self.host,
            path: self.path,
            query: self.query,
            headers: &headers,
            client_ip: self.ip.map(|ip| ip.parse::<IpAddr>().unwrap()),
        };
        f(&request)
    }
}

#[test]
fn matching_table() {
    let cases: Vec<(&str, Req, bool)> = vec![
        // Host: case, port, trailing dot, IPv6 literal.
        ("Host(`example.com`)", req(), true),
        ("Host(`example.com`)", req().host("EXAMPLE.Com"), true),
        ("Host(`example.com`)", req().host("example.com:8080"), true),
        ("Host(`Example.COM`)", req().host("example.com"), true),
        ("Host(`example.com`)", req().host("Example.Com:443"), true),
        ("Host(`example.com`)", req().host("example.com."), true),
        ("Host(`example.com.`)", req().host("example.com"), true),
        ("Host(`example.com`)", req().host("example.org"), false),
        ("Host(`example.com`)", req().host("www.example.com"), false),
        ("Host(`example.com`)", req().host(""), false),
        ("Host(`::1`)", req().host("[::1]:8080"), true),
        ("Host(`[::1]`)", req().host("[::1]"), true),
        ("Host(`::1`)", req().host("::1"), true),
        ("Host(`10.0.0.1`)", req().host("10.0.0.1:80"), true),
        // Wildcards: one or more labels, never the apex.
        ("Host(`*.example.com`)", req().host("a.example.com"), true),
        ("Host(`*.example.com`)", req().host("a.b.example.com"), true),
        (
            "Host(`*.example.com`)",
            req().host("A.Example.COM:8443"),
            true,
        ),
        ("Host(`*.example.com`)", req().host("example.com"), false),
        ("Host(`*.example.com`)", req().host("aexample.com"), false),
        ("Host(`*.example.com`)", req().host(".example.com"), false),
        ("Host(`*.example.com`)", req().host("a.example.org"), false),
        // v2 multi-argument Host.
        ("Host(`a.com`, `b.com`)", req().host("b.com"), true),
        ("Host(`a.com`, `*.b.com`)", req().host("x.b.com"), true),
        ("Host(`a.com`, `b.com`)", req().host("c.com"), false),
        // HostRegexp: unanchored, against the lowercased port-stripped host.
        (
            "HostRegexp(`^[a-z]+\\.example\\.com$`)",
            req().host("API.example.com:80"),
            true,
        ),
        (
            "HostRegexp(`^[a-z]+\\.example\\.com$`)",
            req().host("api2.example.com"),
            false,
        ),
        ("HostRegexp(`example`)", req().host("www.example.org"), true),
        (
            "HostRegexp(`^a\\.`, `^b\\.`)",
            req().host("b.example.com"),
            true,
        ),
        ("HostRegexp(`^A`)", req().host("a.com"), false),
        // Path / PathPrefix / PathRegexp.
        ("Path(`/api`)", req().path("/api"), true),
        ("Path(`/api`)", req().path("/api/"), false),
        ("Path(`/api`)", req().path("/API"), false),
        ("Path(`/a`, `/b`)", req().path("/b"), true),
        ("PathPrefix(`/api`)", req().path("/api/users"), true),
        ("PathPrefix(`/api`)", req().path("/apiv2"), true),
        ("PathPrefix(`/api`)", req().path("/ap"), false),
        ("PathPrefix(`/`)", req().path("/anything"), true),
        ("PathPrefix(`/a`, `/b`)", req().path("/b/c"), true),
        (
            "PathRegexp(`^/users/[0-9]+$`)",
            req().path("/users/42"),
            true,
        ),
        (
            "PathRegexp(`^/users/[0-9]+$`)",
            req().path("/users/x"),
            false,
        ),
        ("PathRegexp(`[0-9]+`)", req().path("/v1/x"), true),
        ("PathRegexp(\"^/v\\d+/\")", req().path("/v2/x"), true),
        ("PathRegexp(`^/a$`, `^/b$`)", req().path("/b"), true),
        // Header / HeaderRegexp.
        (
            "Header(`X-Env`, `prod`)",
            req().header("x-env", "prod"),
            true,
        ),
        (
            "Header(`x-env`, `prod`)",
            req().header("X-Env", "prod"),
            true,
        ),
        (
            "Header(`X-Env`, `prod`)",
            req().header("x-env", "Prod"),
            false,
        ),
        (
            "Header(`X-Env`, `prod`)",
            req().header("x-env", "dev").header("x-env", "prod"),
            true,
        ),
        ("Header(`X-Env`, `prod`)", req(), false),
        ("Header(`bad name`, `v`)", req().header("bad", "v"), false),
        (
            "HeaderRegexp(`X-Env`, `^pr`)",
            req().header("x-env", "prod"),
            true,
        ),
        (
            "HeaderRegexp(`X-Env`, `^pr`)",
            req().header("x-env", "dev"),
            false,
        ),
        (
            "HeaderRegexp(`X-Env`, `^pr`)",
            req().header("x-env", "dev").header("x-env", "pre"),
            true,
        ),
        ("HeaderRegexp(`X-Env`, `.*`)", req(), false),
        // Method.
        ("Method(`GET`)", req(), true),
        ("Method(`get`)", req().method("GET"), true),
        ("Method(`POST`)", req(), false),
        ("Method(`POST`, `GET`)", req(), true),
        // Query: decoding, presence, v2 key=value.
        ("Query(`a`, `1`)", req().query("a=1"), true),
        ("Query(`a`, `1`)", req().query("b=2&a=1"), true),
        ("Query(`a`, `1`)", req().query("a=2"), false),
        ("Query(`a`, `1`)", req(), false),
        ("Query(`a`, `1`)", req().query("a=2&a=1"), true),
        (
            "Query(`q`, `hello world`)",
            req().query("q=hello+world"),
            true,
        ),
        ("Query(`q`, `a&b`)", req().query("q=a%26b"), true),
        ("Query(`my key`, `v`)", req().query("my%20key=v"), true),
        ("Query(`q`, `100%`)", req().query("q=100%"), true),
        ("Query(`q`, `%zz`)", req().query("q=%zz"), true),
        ("Query(`a`)", req().query("a"), true),
        ("Query(`a`)", req().query("a=anything"), true),
        ("Query(`a`)", req().query("b=1"), false),
        ("Query(`a`, ``)", req().query("a"), true),
        ("Query(`a`, ``)", req().query("a=1"), false),
        ("Query(`a=1`)", req().query("a=1"), true),
        ("Query(`a=1`)", req().query("a=2"), false),
        ("Query(`a=`)", req().query("a="), true),
        ("QueryRegexp(`id`, `^[0-9]+$`)", req().query("id=123"), true),
        (
            "QueryRegexp(`id`, `^[0-9]+$`)",
            req().query("id=12x"),
            false,
        ),
        ("QueryRegexp(`q`, `^a b$`)", req().query("q=a+b"), true),
        ("QueryRegexp(`q`, `.`)", req().query("other=1"), false),
        // ClientIP: v4, v6, CIDR, several, v4-mapped v6.
        ("ClientIP(`10.0.0.1`)", req().ip("10.0.0.1"), true),
        ("ClientIP(`10.0.0.1`)", req().ip("10.0.0.2"), false),
        ("ClientIP(`10.0.0.0/8`)", req().ip("10.200.3.4"), true),
        ("ClientIP(`10.0.0.0/8`)", req().ip("11.0.0.1"), false),
        ("ClientIP(`10.0.0.0/8`)", req(), false),
        ("ClientIP(`2001:db8::/32`)", req().ip("2001:db8::1"), true),
        ("ClientIP(`2001:db8::/32`)", req().ip("2001:db9::1"), false),
        ("ClientIP(`::1`)", req().ip("::1"), true),
        ("ClientIP(`::1`)", req().ip("127.0.0.1"), false),
        ("ClientIP(`192.168.0.0/16`, `::1`)", req().ip("::1"), true),
        (
            "ClientIP(`192.168.0.0/16`)",
            req().ip("::ffff:192.168.1.1"),
            true,
        ),
        // Operators, precedence, negation, parentheses.
        ("Host(`example.com`) && Path(`/`)", req(), true),
        ("Host(`example.com`) && Path(`/x`)", req(), false),
        ("Host(`other.com`) || Path(`/`)", req(), true),
        ("Host(`other.com`) || Path(`/x`)", req(), false),
        ("!Host(`other.com`)", req(), true),
        ("!Host(`example.com`)", req(), false),
        ("!!Host(`example.com`)", req(), true),
        ("! Host(`example.com`) && Path(`/`)", req(), false),
        ("!(Host(`example.com`) && Path(`/x`))", req(), true),
        // `A || B && C` is `A || (B && C)`.
        (
            "Path(`/`) || Method(`POST`) && Host(`other.com`)",
            req(),
            true,
        ),
        (
            "Path(`/x`) || Method(`GET`) && Host(`example.com`)",
            req(),
            true,
        ),
        (
            "Path(`/x`) || Method(`GET`) && Host(`other.com`)",
            req(),
            false,
        ),
        (
            "(Path(`/`) || Method(`POST`)) && Host(`other.com`)",
            req(),
            false,
        ),
        (
            "Host(`other.com`) && Path(`/x`) || Method(`GET`)",
            req(),
            true,
        ),
        (
            "Host(`other.com`) && (Path(`/x`) || Method(`GET`))",
            req(),
            false,
        ),
        ("((Host(`example.com`)))", req(), true),
        (
            "(Host(`a.com`) || Host(`example.com`)) && PathPrefix(`/`)",
            req(),
            true,
        ),
        // Whitespace anywhere, double quotes and escapes, lowercase/uppercase names.
        ("  Host ( \"example.com\" )\n&&\tPath(`/`)  ", req(), true),
        (
            "Header(`X-Q`, \"a\\\"b\\\\c\")",
            req().header("x-q", "a\"b\\c"),
            true,
        ),
        (
            "host(`example.com`) && PATHPREFIX(`/`) && Pathprefix(`/`)",
            req(),
            true,
        ),
        ("Host(`example.com`)&&Path(`/`)||Path(`/z`)", req(), true),
    ];
    let mut failures = Vec::new();
    for (text, request, expected) in &cases {
        let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got = request.with(|r| rule.matches(r));
        if got != *expected {
            failures.push(format!(
                "{text} on host={:?} path={:?} query={:?} ip={:?}: got {got}",
                request.host, request.path, request.query, request.ip
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parse_error_table() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "empty rule"),
        ("   ", 1, "empty rule"),
        ("Hots(`a`)", 1, "unknown matcher `Hots`"),
        (
            "Host(`a`) && Foo(`b`)",
            14,
            "valid matchers are Host, HostRegexp",
        ),
        ("hOsT(`a`)", 1, "unknown matcher"),
        ("Host(`a", 6, "unterminated string"),
        ("Host(\"a", 6, "unterminated string"),
        ("Host(\"a\\\")", 6, "unterminated string"),
        ("Host `a`", 6, "missing `(`"),
        ("Host", 5, "missing `(`"),
        ("Host(`a`", 9, "missing `)`"),
        ("Host(`a`,", 10, "missing `)`"),
        ("(Host(`a`)", 11, "missing `)` to close `(` at column 1"),
        ("Host(`a` `b`)", 10, "expected `,` or `)`"),
        ("Host(a.com)", 6, "expected a quoted argument"),
        ("Host(`a`,)", 10, "expected a quoted argument"),
        ("Host(`a`) &&", 11, "dangling operator `&&`"),
        ("Host(`a`) ||", 11, "dangling operator `||`"),
        ("Host(`a`) && || Path(`/`)", 11, "dangling operator `&&`"),
        ("!", 1, "dangling operator `!`"),
        ("(Host(`a`) &&)", 12, "dangling operator"),
        ("&& Host(`a`)", 1, "expected a matcher"),
        ("()", 2, "expected a matcher"),
        ("Host(`a`) & Path(`/`)", 11, "did you mean `&&`"),
        ("Host(`a`) | Path(`/`)", 11, "did you mean `||`"),
        ("Host(`a`) Path(`/`)", 11, "unexpected `Path`"),
        ("Host(`a`))", 10, "unexpected `)`"),
        ("Host(`a`) $", 11, "unexpected character `$`"),
        ("Host()", 1, "`Host` expects at least 1 argument, got 0"),
        ("Header(`a`)", 1, "`Header` expects 2 arguments, got 1"),
        (
            "Path(`/`) && HeaderRegexp(`a`, `b`, `c`)",
            14,
            "expects 2 arguments, got 3",
        ),
        ("QueryRegexp(`a`)", 1, "expects 2 arguments"),
        ("Query()", 1, "expects 1 or 2 arguments, got 0"),
        ("Query(`a`, `b`, `c`)", 1, "expects 1 or 2 arguments, got 3"),
        ("PathRegexp(`(`)", 12, "invalid regex"),
        ("HostRegexp(`a`, `[z-a]`)", 17, "invalid regex"),
        ("HeaderRegexp(`X`, `(?P<`)", 19, "invalid regex"),
        ("QueryRegexp(`k`, `*`)", 18, "invalid regex"),
        ("ClientIP(`10.0.0.256`)", 10, "invalid IP address or CIDR"),
        ("ClientIP(`10.0.0.0/33`)", 10, "invalid IP address or CIDR"),
        ("ClientIP(`::1`, `nope`)", 17, "`nope`"),
        ("Path(`api`)", 6, "must start with `/`"),
        ("PathPrefix(`/a`, `b`)", 18, "must start with `/`"),
        ("Host(`a.*.com`)", 6, "leftmost label"),
        ("Host(`*.`)", 6, "leftmost label"),
        ("Host(`bücher.de`)", 6, "non-ASCII"),
        // Columns count characters, not bytes.
        ("Path(`/ü`) && Nope(`x`)", 15, "unknown matcher `Nope`"),
    ];
    let mut failures = Vec::new();
    for (text, column, message) in cases {
        match Rule::parse(text) {
            Ok(_) => failures.push(format!("{text:?}: parsed, expected error")),
            Err(e) if e.column != *column || !e.message.contains(message) => {
                failures.push(format!(
                    "{text:?}: got column {} {:?}, want column {column} containing {message:?}",
                    e.column, e.message
                ))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nesting_is_capped() {
    let nested = |n: usize| format!("{}Path(`/`){}", "(".repeat(n), ")".repeat(n));
    assert!(Rule::parse(&nested(100)).unwrap().matches_request(&req()));
    let e = Rule::parse(&nested(101)).unwrap_err();
    assert_eq!(e.column, 101);
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
    assert!(Rule::parse(&format!("{}Path(`/`)", "!".repeat(100))).is_ok());
    assert_eq!(
        Rule::parse(&format!("{}Path(`/`)", "!".repeat(101)))
            .unwrap_err()
            .column,
        101
    );
    // Far past the cap: must fail cleanly, not overflow the stack.
    assert!(Rule::parse(&nested(100_000)).is_err());
}

#[test]
fn error_display_and_regex_detail() {
    let e = Rule::parse("PathRegexp(`(`)").unwrap_err();
    assert!(e.to_string().starts_with("column 12: invalid regex: "));
    assert!(e.message.contains("unclosed group"), "{}", e.message);
}

#[test]
fn text_and_default_priority() {
    let text = "Host(`example.com`) && PathPrefix(`/ü`)";
    let rule = Rule::parse(text).unwrap();
    assert_eq!(rule.text(), text);
    assert_eq!(rule.to_string(), text);
    assert_eq!(rule.default_priority(), text.chars().count() as i64);
    assert_eq!(format!("{rule:?}"), format!("Rule({text:?})"));
    let parsed: Rule = text.parse().unwrap();
    assert_eq!(parsed.text(), text);
}

#[test]
fn required_hosts_derivation() {
    let exact = |h: &str| HostPattern::Exact(h.to_owned());
    let wild = |s: &str| HostPattern::Wildcard(s.to_owned());
    let cases: Vec<(&str, Option<Vec<HostPattern>>)> = vec![
        ("Host(`A.com`)", Some(vec![exact("a.com")])),
        ("Host(`a.com`) && Path(`/`)", Some(vec![exact("a.com")])),
        (
            "Path(`/`) && Host(`a.com`, `b.com`)",
            Some(vec![exact("a.com"), exact("b.com")]),
        ),
        (
            "(Host(`a.com`) || Host(`*.b.com`)) && Path(`/`)",
            Some(vec![exact("a.com"), wild("b.com")]),
        ),
        (
            "Host(`*.b.com`) && Host(`a.b.com`)",
            Some(vec![exact("a.b.com")]),
        ),
        ("Host(`a.com`) || Path(`/`)", None),
        ("!Host(`a.com`)", None),
        ("HostRegexp(`a`)", None),
        ("Path(`/`)", None),
    ];
    for (text, want) in cases {
        let rule = Rule::parse(text).unwrap();
        let got = rule
            .required_hosts()
            .map(|v| v.into_iter().cloned().collect::<Vec<_>>());
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn uppercase_host_longer_than_stack_buffer() {
    let long: &'static str = Box::leak(format!("{}.COM", "A".repeat(300)).into_boxed_str());
    let rule = Rule::parse(&format!("Host(`{}`)", long.to_ascii_lowercase())).unwrap();
    assert!(req().host(long).with(|r| rule.matches(r)));
}

#[test]
fn rule_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Rule>();
}
