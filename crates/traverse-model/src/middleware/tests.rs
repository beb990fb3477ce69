use std::sync::Arc;

use super::paths::redirect_status;
use super::*;

fn origin(kind: &'static str) -> Origin {
    Origin {
        name: Arc::from("apps/test"),
        kind,
    }
}

// Vectors from Apache's "Password Formats" documentation (user myName, password myPassword).
const APR1: &str = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/";
const APR1_OPENSSL: &str = "$apr1$qHDFfhPC$nITSVHgYbDAK1Y0acGRnY0";
const SHA: &str = "{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=";
const BCRYPT: &str = "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC";

#[test]
fn htpasswd_formats_verify_the_documented_vectors() {
    for hash in [APR1, APR1_OPENSSL, SHA, BCRYPT] {
        let credential = Credential::parse(hash).expect(hash);
        assert!(credential.verify(b"myPassword"), "{hash}");
        assert!(!credential.verify(b"myPasswore"), "{hash}");
        assert!(!credential.verify(b""), "{hash}");
    }
    assert!(Credential::parse(BCRYPT).expect("bcrypt").is_slow());
    assert!(!Credential::parse(APR1).expect("apr1").is_slow());
}

#[test]
fn md5_crypt_with_the_crypt_magic_differs_from_apr1() {
    // Same salt and password, `$1$` magic: a different, valid MD5-crypt hash
    // (`openssl passwd -1 -salt r31..... myPassword`).
    let credential = Credential::parse("$1$r31.....$QDDzs1qZeqfV3IFuCeXI3.").expect("md5");
    assert!(credential.verify(b"myPassword"));
    assert!(!Credential::parse(APR1).expect("apr1").verify(b"other"));
}

#[test]
fn unknown_and_malformed_hashes_are_refused() {
    assert_eq!(
        Credential::parse("plaintext"),
        Err(CredentialError::UnknownFormat)
    );
    assert_eq!(
        Credential::parse("rqXexS6ZhobKA"),
        Err(CredentialError::UnknownFormat),
        "DES crypt is not accepted, as in Traefik"
    );
    assert!(matches!(
        Credential::parse("{SHA}not base64!"),
        Err(CredentialError::Malformed(_))
    ));
    assert!(matches!(
        Credential::parse("$apr1$nosalt"),
        Err(CredentialError::Malformed(_))
    ));
    assert!(matches!(
        Credential::parse("$2y$05$short"),
        Err(CredentialError::Malformed(_))
    ));
}

#[test]
fn an_unknown_user_is_checked_against_a_decoy() {
    let auth = BasicAuth {
        origin: origin("basicAuth"),
        users: vec![
            ("a".into(), Credential::parse(SHA).expect("sha")),
            ("b".into(), Credential::parse(APR1).expect("apr1")),
        ],
        challenge: http::HeaderValue::from_static("Basic realm=\"traefik\""),
        remove_header: false,
        header_field: None,
    };
    let (credential, known) = auth.credential("b").expect("b");
    assert!(known && matches!(credential, Credential::Md5Crypt { .. }));
    let (_, known) = auth.credential("nobody").expect("decoy");
    assert!(!known);
}

#[test]
fn ip_strategies_read_the_client_as_traefik() {
    let remote = Some("192.0.2.1".parse().expect("ip"));
    let xff = "203.0.113.1, 10.0.0.1, 10.0.0.2";
    let plain = IpStrategy::RemoteAddr { ipv6_subnet: None };
    assert_eq!(plain.client_ip(remote, xff).as_deref(), Some("192.0.2.1"));
    let depth = |depth| IpStrategy::Depth {
        depth,
        ipv6_subnet: None,
    };
    assert_eq!(depth(1).client_ip(remote, xff).as_deref(), Some("10.0.0.2"));
    assert_eq!(
        depth(3).client_ip(remote, xff).as_deref(),
        Some("203.0.113.1")
    );
    assert_eq!(
        depth(4).client_ip(remote, xff),
        None,
        "deeper than the chain"
    );
    assert_eq!(depth(1).client_ip(remote, ""), None, "no chain");
    let excluded = IpStrategy::Excluded(vec!["10.0.0.0/8".parse().expect("net")]);
    assert_eq!(
        excluded.client_ip(remote, xff).as_deref(),
        Some("203.0.113.1")
    );
    assert_eq!(excluded.client_ip(remote, "10.1.1.1"), None);
    let v6 = IpStrategy::RemoteAddr {
        ipv6_subnet: Some(64),
    };
    assert_eq!(
        v6.client_ip(Some("2001:db8:1:2:3:4:5:6".parse().expect("v6")), "")
            .as_deref(),
        Some("2001:db8:1:2::")
    );
}

#[test]
fn allow_list_checks_the_strategy_ip() {
    let list = IpAllowList {
        origin: origin("ipAllowList"),
        ranges: vec![
            "192.0.2.0/24".parse().expect("net"),
            "2001:db8::1/128".parse().expect("net"),
        ],
        strategy: IpStrategy::Depth {
            depth: 1,
            ipv6_subnet: None,
        },
        reject_status: 403,
    };
    assert!(list.allows(None, "198.51.100.1, 192.0.2.77"));
    assert!(list.allows(None, "2001:db8::1"));
    assert!(!list.allows(Some("192.0.2.1".parse().expect("ip")), "198.51.100.1"));
    assert!(!list.allows(None, "not-an-ip"));
    assert!(!list.allows(None, ""));
}

const SECOND: u64 = 1_000_000_000;

fn rate_limit(average_per_s: u64, burst: u64, max_delay_ns: u64) -> RateLimit {
    RateLimit::new(
        origin("rateLimit"),
        SECOND / average_per_s,
        burst,
        max_delay_ns,
        SourceCriterion::Host,
    )
}

#[test]
fn token_bucket_allows_the_burst_then_the_rate() {
    let limit = rate_limit(10, 3, 0);
    let now = 50 * SECOND;
    for _ in 0..3 {
        assert_eq!(limit.admit("a", now), Admission::Now);
    }
    // The bucket is empty: the next token comes in 100ms.
    assert_eq!(limit.admit("a", now), Admission::Refused(SECOND / 10));
    assert_eq!(
        limit.admit("a", now + SECOND / 20),
        Admission::Refused(SECOND / 20)
    );
    assert_eq!(limit.admit("a", now + SECOND / 10), Admission::Now);
    // Another source has its own bucket.
    assert_eq!(limit.admit("b", now), Admission::Now);
    // Idle long enough, the bucket is full again (and no fuller).
    let later = now + 10 * SECOND;
    for _ in 0..3 {
        assert_eq!(limit.admit("a", later), Admission::Now);
    }
    assert!(matches!(limit.admit("a", later), Admission::Refused(_)));
}

#[test]
fn a_short_wait_is_a_delay_not_a_refusal() {
    let limit = rate_limit(10, 1, SECOND / 20);
    let now = 5 * SECOND;
    assert_eq!(limit.admit("a", now), Admission::Now);
    assert_eq!(
        limit.admit("a", now + SECOND / 20),
        Admission::After(SECOND / 20)
    );
    // That request took the next slot: the following one would wait 150ms.
    assert_eq!(
        limit.admit("a", now + SECOND / 20),
        Admission::Refused(3 * SECOND / 20)
    );
}

#[test]
fn idle_sources_are_forgotten_when_the_map_is_full() {
    let limit = rate_limit(1000, 1, 0);
    let now = 100 * SECOND;
    for i in 0..70_000 {
        limit.admit(&format!("s{i}"), now);
    }
    assert!(limit.sources() <= 65_536);
    // Once their buckets have refilled, they make room for new sources without loss.
    for i in 0..70_000 {
        assert_eq!(limit.admit(&format!("t{i}"), now + SECOND), Admission::Now);
    }
    assert!(limit.sources() <= 65_536);
}

#[test]
fn in_flight_counts_per_source_and_releases_on_drop() {
    let limit = InFlightReq::new(origin("inFlightReq"), 2, SourceCriterion::Host);
    let first = limit.acquire("a").expect("first");
    let second = limit.acquire("a").expect("second");
    assert!(limit.acquire("a").is_none());
    assert!(limit.acquire("b").is_some());
    drop(first);
    let third = limit.acquire("a").expect("freed");
    drop((second, third));
    assert_eq!(limit.sources(), 2);
    // Shared by clones (routes using the same Middleware).
    let clone = limit.clone();
    let _held = (clone.acquire("c"), clone.acquire("c"));
    assert!(limit.acquire("c").is_none());
}

#[test]
fn redirect_status_follows_method_and_permanence() {
    assert_eq!(redirect_status(false, true), 302);
    assert_eq!(redirect_status(false, false), 307);
    assert_eq!(redirect_status(true, true), 301);
    assert_eq!(redirect_status(true, false), 308);
}

#[test]
fn redirect_scheme_targets() {
    let redirect = |port: &str| RedirectScheme {
        origin: origin("redirectScheme"),
        scheme: "https".into(),
        port: port.into(),
        permanent: true,
    };
    assert_eq!(
        redirect("").target("http", "a.example", Some("8080"), "/x?y=1"),
        Some("https://a.example/x?y=1".to_owned())
    );
    assert_eq!(
        redirect(":8443").target("http", "a.example", None, "/"),
        Some("https://a.example:8443/".to_owned())
    );
    assert_eq!(
        redirect("").target("https", "a.example", Some("443"), "/"),
        None
    );
    assert_eq!(redirect("").target("https", "a.example", None, "/"), None);
    assert_eq!(
        redirect("").target("https", "a.example", Some("8443"), "/"),
        Some("https://a.example/".to_owned())
    );
}

#[test]
fn redirect_regex_replaces_or_passes() {
    let redirect = RedirectRegex {
        origin: origin("redirectRegex"),
        pattern: Pattern::new("^http://localhost/(.*)").expect("regex"),
        replacement: "http://mydomain/${1}".into(),
        permanent: false,
    };
    assert_eq!(
        redirect.target("http://localhost/a/b?c=d"),
        Some("http://mydomain/a/b?c=d".to_owned())
    );
    assert_eq!(redirect.target("http://other/a"), None);
    let same = RedirectRegex {
        pattern: Pattern::new("^(.*)$").expect("regex"),
        replacement: "$1".into(),
        ..redirect
    };
    assert_eq!(
        same.target("http://a/"),
        None,
        "an unchanged URL is not redirected"
    );
}

#[test]
fn path_regexes() {
    let strip = StripPrefixRegex {
        patterns: vec![
            Pattern::new("/nomatch/[a-z]+").expect("regex"),
            Pattern::new("/foo/[a-z0-9]+/[0-9]+/").expect("regex"),
        ],
    };
    assert_eq!(
        strip.strip("/foo/abc/123/bar"),
        Some(("/foo/abc/123/".to_owned(), "/bar".to_owned()))
    );
    assert_eq!(
        strip.strip("/x/foo/abc/123/bar"),
        None,
        "a match must be a prefix"
    );
    let replace = ReplacePathRegex {
        pattern: Pattern::new("^/foo/(.*)").expect("regex"),
        replacement: "/bar/$1".into(),
    };
    assert_eq!(replace.rewrite("/foo/a/b").as_deref(), Some("/bar/a/b"));
    assert_eq!(replace.rewrite("/other"), None);
}

fn cors(origins: &[&str], patterns: &[&str], credentials: bool) -> Cors {
    Cors {
        allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        allow_origin_patterns: patterns
            .iter()
            .map(|p| Pattern::new(p).expect("regex"))
            .collect(),
        allow_credentials: credentials,
        allow_headers: None,
        allow_headers_wildcard: false,
        allow_methods: None,
        allow_methods_wildcard: false,
        expose_headers: Some(http::HeaderValue::from_static("*")),
        expose_headers_wildcard: true,
        max_age: None,
        add_vary: false,
    }
}

#[test]
fn cors_origin_decisions() {
    let exact = cors(
        &["https://a.example"],
        &[r"^https://.*\.b\.example$"],
        false,
    );
    assert_eq!(
        exact.allowed_origin("https://a.example"),
        Some("https://a.example")
    );
    assert_eq!(
        exact.allowed_origin("https://x.b.example"),
        Some("https://x.b.example")
    );
    assert_eq!(exact.allowed_origin("https://evil.example"), None);
    assert!(exact.expose_headers().is_some());
    let any = cors(&["*"], &[], false);
    assert_eq!(any.allowed_origin("https://z.example"), Some("*"));
    let credentials = cors(&["*"], &[], true);
    assert_eq!(
        credentials.allowed_origin("https://z.example"),
        Some("https://z.example"),
        "a wildcard cannot go with credentials: the origin is echoed"
    );
    assert!(credentials.expose_headers().is_none());
}

#[test]
fn allowed_hosts_ignore_case_and_development() {
    let mut security = Security {
        allowed_hosts: vec!["A.example".into()],
        hosts_proxy_headers: vec![],
        ssl_proxy_headers: vec![],
        sts: None,
        force_sts: false,
        public_key: None,
        always: vec![],
        development: false,
    };
    assert!(security.host_allowed("a.EXAMPLE"));
    assert!(!security.host_allowed("b.example"));
    security.development = true;
    assert!(security.host_allowed("b.example"));
}

/// The MD5 examples of RFC 2617 section 3.5 and RFC 7616 section 3.9.1.
#[test]
fn digest_responses_match_the_rfc_examples() {
    for (realm, password, nonce, cnonce, response) in [
        (
            "testrealm@host.com",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "0a4f113b",
            "6629fae49393a05397450978507c4ef1",
        ),
        (
            "http-auth@example.org",
            "Circle of Life",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
    ] {
        let ha1 = md5_hex(&["Mufasa:", realm, ":", password]);
        let mut proof = DigestResponse {
            method: "GET",
            uri: "/dir/index.html",
            nonce,
            nc: "00000001",
            cnonce,
            qop: "auth",
            response,
        };
        assert!(proof.matches(&ha1), "{realm}");
        let upper = response.to_ascii_uppercase();
        proof.response = &upper;
        assert!(proof.matches(&ha1), "hex case does not matter");
        proof.response = response;
        proof.uri = "/dir/other.html";
        assert!(!proof.matches(&ha1), "another URI");
        proof.uri = "/dir/index.html";
        proof.nc = "00000002";
        assert!(!proof.matches(&ha1), "another count");
        assert!(!proof.matches(&md5_hex(&["Mufasa:", realm, ":wrong"])));
    }
}

#[test]
fn htdigest_lines_parse_or_name_the_problem() {
    // htdigest's own output for test:traefik:test.
    assert_eq!(
        parse_htdigest("test:traefik:A2688E031EDB4BE6A3797F3882655C05"),
        Ok((
            "test",
            "traefik",
            "a2688e031edb4be6a3797f3882655c05".to_owned()
        ))
    );
    assert_eq!(
        md5_hex(&["test:traefik:test"]),
        "a2688e031edb4be6a3797f3882655c05"
    );
    assert!(parse_htdigest("test:a2688e031edb4be6a3797f3882655c05").is_err());
    assert!(parse_htdigest("test:traefik:a2688e031edb4be6a3797f3882655c0").is_err());
    assert!(parse_htdigest("test:traefik:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/").is_err());
    let auth = DigestAuth {
        origin: origin("digestAuth"),
        realm: "traefik".into(),
        users: vec![("test".into(), md5_hex(&["test:traefik:test"]))],
        remove_header: false,
        header_field: None,
    };
    assert_eq!(auth.ha1("test"), ("a2688e031edb4be6a3797f3882655c05", true));
    assert!(!auth.ha1("nobody").1);
}
