#![allow(clippy::unwrap_used)] // panicking on a broken fixture is what a test should do

use super::{Route, RouteTable};
use crate::rule::tests::{req, Req};
use crate::Rule;

fn route<T>(rule: &str, priority: Option<i64>, entrypoints: &[&str], value: T) -> Route<T> {
    let rule = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    Route {
        priority: priority.unwrap_or_else(|| rule.default_priority()),
        rule,
        entrypoints: entrypoints.iter().map(|e| e.to_string()).collect(),
        value,
    }
}

fn find<T: Copy>(table: &RouteTable<T>, entrypoint: &str, request: &Req) -> Option<T> {
    request.with(|r| table.find(entrypoint, r).copied())
}

/// Reference implementation: first route in match order that matches.
fn linear<T: Copy>(table: &RouteTable<T>, entrypoint: &str, request: &Req) -> Option<T> {
    request.with(|r| {
        table
            .routes()
            .find(|route| {
                (route.entrypoints.is_empty() || route.entrypoints.iter().any(|e| e == entrypoint))
                    && route.rule.matches(r)
            })
            .map(|route| route.value)
    })
}

#[test]
fn empty_and_default() {
    let table: RouteTable<u32> = RouteTable::default();
    assert!(table.is_empty());
    assert_eq!(table.len(), 0);
    assert_eq!(find(&table, "web", &req()), None);
    assert!(RouteTable::<u32>::new(Vec::new()).is_empty());
}

#[test]
fn explicit_priority_wins() {
    let table = RouteTable::new(vec![
        route("PathPrefix(`/`)", Some(1), &[], "low"),
        route("PathPrefix(`/`)", Some(100), &[], "high"),
        route("Host(`example.com`)", Some(50), &[], "host"),
    ]);
    assert_eq!(table.len(), 3);
    assert_eq!(find(&table, "web", &req()), Some("high"));
    let order: Vec<_> = table.routes().map(|r| r.value).collect();
    assert_eq!(order, ["high", "host", "low"]);
}

#[test]
fn default_priority_longer_rule_wins() {
    let table = RouteTable::new(vec![
        route("PathPrefix(`/`)", None, &[], "short"),
        route(
            "Host(`example.com`) && PathPrefix(`/api`)",
            None,
            &[],
            "long",
        ),
        route("PathPrefix(`/api`)", None, &[], "mid"),
    ]);
    assert_eq!(find(&table, "web", &req().path("/api/x")), Some("long"));
    assert_eq!(
        find(&table, "web", &req().host("other.com").path("/api/x")),
        Some("mid")
    );
    assert_eq!(
        find(&table, "web", &req().host("other.com").path("/x")),
        Some("short")
    );
}

#[test]
fn ties_keep_input_order() {
    let table = RouteTable::new(vec![
        route("PathPrefix(`/`)", Some(5), &[], 0),
        route("Host(`example.com`)", Some(5), &[], 1),
        route("PathPrefix(`/`)", Some(5), &[], 2),
    ]);
    assert_eq!(find(&table, "web", &req()), Some(0));
    let table = RouteTable::new(vec![
        route("Host(`example.com`)", Some(5), &[], 1),
        route("PathPrefix(`/`)", Some(5), &[], 0),
    ]);
    assert_eq!(find(&table, "web", &req()), Some(1));
    let order: Vec<_> = table.routes().map(|r| r.value).collect();
    assert_eq!(order, [1, 0]);
}

#[test]
fn entrypoint_filter() {
    let table = RouteTable::new(vec![
        route("Host(`example.com`)", Some(10), &["websecure"], "secure"),
        route("Host(`example.com`)", Some(5), &["web", "other"], "plain"),
        route("PathPrefix(`/`)", Some(1), &[], "any"),
    ]);
    assert_eq!(find(&table, "websecure", &req()), Some("secure"));
    assert_eq!(find(&table, "web", &req()), Some("plain"));
    assert_eq!(find(&table, "other", &req()), Some("plain"));
    assert_eq!(find(&table, "admin", &req()), Some("any"));
}

#[test]
fn host_index_normalization_and_wildcards() {
    let table = RouteTable::new(vec![
        route(
            "Host(`Api.Example.com`) && PathPrefix(`/`)",
            Some(3),
            &[],
            "exact",
        ),
        route("Host(`*.example.com`)", Some(2), &[], "wild"),
        route("Host(`*.a.example.com`)", Some(4), &[], "deep-wild"),
        route("Host(`a.com`, `b.com`)", Some(1), &[], "multi"),
        route("Host(`::1`)", Some(1), &[], "v6"),
    ]);
    assert_eq!(
        find(&table, "web", &req().host("API.example.COM:8443")),
        Some("exact")
    );
    assert_eq!(
        find(&table, "web", &req().host("api.example.com.")),
        Some("exact")
    );
    assert_eq!(
        find(&table, "web", &req().host("web.example.com")),
        Some("wild")
    );
    assert_eq!(
        find(&table, "web", &req().host("x.a.example.com")),
        Some("deep-wild")
    );
    assert_eq!(
        find(&table, "web", &req().host("a.example.com")),
        Some("wild")
    );
    assert_eq!(find(&table, "web", &req().host("example.com")), None);
    assert_eq!(find(&table, "web", &req().host("b.com")), Some("multi"));
    assert_eq!(find(&table, "web", &req().host("[::1]:80")), Some("v6"));
    assert_eq!(find(&table, "web", &req().host("")), None);
}

#[test]
fn route_in_several_buckets_is_found_once() {
    let table = RouteTable::new(vec![
        route(
            "Host(`x.b.com`, `*.b.com`, `x.b.com`) && Path(`/no`)",
            Some(9),
            &[],
            0,
        ),
        route("Host(`x.b.com`)", Some(1), &[], 1),
    ]);
    assert_eq!(find(&table, "web", &req().host("x.b.com")), Some(1));
    assert_eq!(
        find(&table, "web", &req().host("x.b.com").path("/no")),
        Some(0)
    );
}

#[test]
fn many_wildcard_levels_spill_past_inline_buckets() {
    // 20 nested wildcard suffixes: more buckets than fit on the stack.
    let labels: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    let mut routes = Vec::new();
    for depth in 1..labels.len() {
        let suffix = labels[depth..].join(".");
        routes.push(route(
            &format!("Host(`*.{suffix}`)"),
            Some(depth as i64),
            &[],
            depth,
        ));
    }
    routes.push(route("Path(`/`)", Some(0), &[], 0));
    let table = RouteTable::new(routes);
    let host: &'static str = Box::leak(labels.join(".").into_boxed_str());
    assert_eq!(
        find(&table, "web", &req().host(host)),
        Some(labels.len() - 1)
    );
    assert_eq!(
        find(&table, "web", &req().host(host)),
        linear(&table, "web", &req().host(host))
    );
}

/// Small deterministic generator so the property test needs no extra crates.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn indexed_find_equals_linear_scan() {
    const HOSTS: &[&str] = &[
        "a.example.com",
        "B.example.com",
        "x.a.example.com",
        "example.com",
        "other.org",
        "svc1.internal",
        "svc2.internal",
    ];
    const WILDCARDS: &[&str] = &["*.example.com", "*.a.example.com", "*.org", "*.internal"];
    const PATHS: &[&str] = &["/", "/api", "/api/v1", "/static"];
    const ENTRYPOINTS: &[&[&str]] = &[&[], &["web"], &["websecure"], &["web", "websecure"]];

    let mut rng = Lcg(0x5eed);
    let mut routes = Vec::new();
    for i in 0..400 {
        let h1 = rng.pick(HOSTS);
        let h2 = rng.pick(HOSTS);
        let w = rng.pick(WILDCARDS);
        let p = rng.pick(PATHS);
        // Host-less rules avoid `/` so some requests match nothing.
        let cp = rng.pick(&PATHS[1..]);
        let text = match rng.next() % 10 {
            0 => format!("Host(`{h1}`) && PathPrefix(`{p}`)"),
            1 => format!("Host(`{h1}`, `{h2}`)"),
            2 => format!("(Host(`{h1}`) || Host(`{w}`)) && Method(`GET`)"),
            3 => format!("Host(`{w}`) && PathPrefix(`{p}`)"),
            4 => format!("PathPrefix(`{cp}`)"),
            5 => format!("!Host(`{h1}`) && Path(`{cp}`)"),
            6 => format!("Host(`{h1}`) || Path(`{cp}`)"),
            7 => format!("HostRegexp(`^svc[0-9]\\.`) && PathPrefix(`{cp}`)"),
            8 => format!("Host(`{w}`) && Host(`{h1}`)"),
            _ => format!("Host(`{h1}`) && Method(`POST`)"),
        };
        let priority = match rng.next() % 3 {
            0 => None,
            _ => Some((rng.next() % 6) as i64),
        };
        let entrypoints: &[&str] = rng.pick(ENTRYPOINTS);
        routes.push(route(&text, priority, entrypoints, i));
    }
    let table = RouteTable::new(routes);
    assert_eq!(table.len(), 400);

    const REQ_HOSTS: &[&str] = &[
        "a.example.com",
        "A.EXAMPLE.COM:443",
        "b.example.com",
        "x.a.example.com.",
        "y.x.a.example.com",
        "example.com",
        "other.org:8080",
        "deep.other.org",
        "svc1.internal",
        "svc2.internal:80",
        "svc3.internal",
        "unknown.net",
        "",
    ];
    let mut checked = 0;
    let mut misses = 0;
    let mut distinct = std::collections::HashSet::new();
    for &host in REQ_HOSTS {
        for &path in PATHS.iter().chain(&["/nothing"]) {
            for method in ["GET", "POST"] {
                for entrypoint in ["web", "websecure", "admin"] {
                    let request = req().host(host).path(path).method(method);
                    let want = linear(&table, entrypoint, &request);
                    let got = find(&table, entrypoint, &request);
                    assert_eq!(got, want, "{entrypoint} {method} {host}{path}");
                    checked += 1;
                    match got {
                        Some(v) => {
                            distinct.insert(v);
                        }
                        None => misses += 1,
                    }
                }
            }
        }
    }
    // Guard against a vacuous test where nothing (or everything) matches.
    assert!(
        misses > 0 && misses < checked / 2,
        "{misses}/{checked} misses"
    );
    assert!(
        distinct.len() >= 20,
        "only {} distinct routes found",
        distinct.len()
    );
}

#[test]
fn table_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteTable<std::sync::Arc<String>>>();
    assert_send_sync::<Route<String>>();
}

/// A table built through an interner (rules and regexes shared, anchored literal
/// regexes compared as strings) answers exactly like one built rule by rule, and
/// like the regexes themselves.
#[test]
fn interned_table_matches_like_separately_parsed_rules() {
    const PATTERNS: &[&str] = &[
        "^/item/[0-9]+$",
        "^/api$",
        "^/api",
        r"^/a\.b$",
        "/api",
        "(?i)^/API$",
        "^/static/",
    ];
    const PATHS: &[&str] = &[
        "/", "/api", "/API", "/api/x", "/apix", "/a.b", "/axb", "/item/12", "/item/x", "/static/",
        "/static", "/x/api",
    ];
    let texts: Vec<String> = (0..60)
        .map(|i| {
            let pattern = PATTERNS[i % PATTERNS.len()];
            match i % 3 {
                0 => format!("Host(`h{}.test`) && PathRegexp(`{pattern}`)", i % 5),
                1 => format!("PathRegexp(`{pattern}`) && Header(`X-V`, `{}`)", i % 4),
                _ => format!(
                    "Host(`h{}.test`) && (PathPrefix(`/z`) || PathRegexp(`{pattern}`))",
                    i % 5
                ),
            }
        })
        .collect();
    let mut interner = crate::Interner::default();
    let interned = RouteTable::new(
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let rule = interner.rule(text).unwrap();
                Route {
                    priority: (i % 7) as i64,
                    rule,
                    entrypoints: Vec::new(),
                    value: i,
                }
            })
            .collect(),
    );
    let separate = RouteTable::new(
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| route(text, Some((i % 7) as i64), &[], i))
            .collect(),
    );
    // Seven distinct patterns: four are literals, three are compiled once each.
    let stats = interner.stats();
    assert_eq!(stats.regexes_compiled, 3, "{stats:?}");
    for host in ["h0.test", "h3.test", "other.test"] {
        for path in PATHS {
            for header in ["0", "1", "9"] {
                let request = req().host(host).path(path).header("x-v", header);
                let want = linear(&separate, "web", &request);
                assert_eq!(
                    find(&interned, "web", &request),
                    want,
                    "{host}{path} {header}"
                );
                assert_eq!(
                    find(&separate, "web", &request),
                    want,
                    "{host}{path} {header}"
                );
                // The reference answer, from the regexes themselves.
                let expected = request.with(|r| {
                    separate
                        .routes()
                        .find(|route| {
                            let i = route.value;
                            let re = regex::Regex::new(PATTERNS[i % PATTERNS.len()]).unwrap();
                            let host_ok = r.host == format!("h{}.test", i % 5);
                            match i % 3 {
                                0 => host_ok && re.is_match(r.path),
                                1 => re.is_match(r.path) && header == (i % 4).to_string(),
                                _ => host_ok && (r.path.starts_with("/z") || re.is_match(r.path)),
                            }
                        })
                        .map(|route| route.value)
                });
                assert_eq!(want, expected, "{host}{path} {header}");
            }
        }
    }
}
