//! Routing end to end: matchers, priorities, entrypoints, middlewares and forwarding
//! headers, as seen by a client and by the upstream behind the gateway.

use std::collections::BTreeMap;

use traverse_e2e::{config, route, service, Gateway, Upstream};

/// One upstream per name, and the Service + EndpointSlice manifests for all of them.
fn upstreams(names: &[&str]) -> (BTreeMap<String, Upstream>, String) {
    let mut all = BTreeMap::new();
    let mut manifests = Vec::new();
    for name in names {
        let upstream = Upstream::start(name);
        manifests.push(service(name, &[upstream.addr()]));
        all.insert((*name).to_owned(), upstream);
    }
    (all, manifests.join("---\n"))
}

/// A matcher case: method, path, request headers, and the upstream expected (`None`: 404).
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

/// GETs `path` with `headers` on `web` and returns `(status, upstream name)`.
async fn who(
    gateway: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>) {
    let response =
        traverse_e2e::http_request(gateway.addr("web"), method, path, headers, b"").await;
    (response.status, response.server())
}

#[tokio::test]
async fn matchers_select_the_route() {
    let (ups, backends) = upstreams(&[
        "host",
        "wild",
        "path",
        "prefix",
        "header",
        "method",
        "query",
        "or",
        "and",
        "hostre",
        "pathre",
        "headerre",
        "queryre",
        "client",
        "otherclient",
    ]);
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: matchers
spec:
  routes:
    - match: Host(`app.example.com`)
      services: [{name: host, port: 80}]
    - match: Host(`*.example.com`)
      services: [{name: wild, port: 80}]
    - match: Path(`/exact`)
      services: [{name: path, port: 80}]
    - match: PathPrefix(`/prefix`)
      services: [{name: prefix, port: 80}]
    - match: Header(`X-Tenant`, `blue`)
      services: [{name: header, port: 80}]
    - match: Method(`DELETE`)
      services: [{name: method, port: 80}]
    - match: Query(`mode`, `fast`)
      services: [{name: query, port: 80}]
    - match: Path(`/or-a`) || Path(`/or-b`)
      services: [{name: or, port: 80}]
    - match: PathPrefix(`/and`) && !Header(`X-Block`, `1`)
      services: [{name: and, port: 80}]
    - match: HostRegexp(`^api-[0-9]+\\.example\\.net$`)
      services: [{name: hostre, port: 80}]
    - match: PathRegexp(`^/items/[0-9]+$`)
      services: [{name: pathre, port: 80}]
    - match: HeaderRegexp(`X-Version`, `^v[23]$`)
      services: [{name: headerre, port: 80}]
    - match: QueryRegexp(`id`, `^[a-f]+$`)
      services: [{name: queryre, port: 80}]
    - match: PathPrefix(`/client`) && ClientIP(`127.0.0.0/8`)
      services: [{name: client, port: 80}]
    - match: PathPrefix(`/other-client`) && ClientIP(`10.0.0.0/8`, `192.168.0.1`)
      services: [{name: otherclient, port: 80}]
";
    let gateway = Gateway::start(&config(""), &[("backends", &backends), ("routes", routes)]).await;

    let cases: &[Case] = &[
        // Host: exact, case-insensitive, with a port; wildcard one label deep; apex is not a wildcard match.
        ("GET", "/", &[("Host", "app.example.com")], Some("host")),
        (
            "GET",
            "/",
            &[("Host", "APP.Example.COM:8080")],
            Some("host"),
        ),
        ("GET", "/", &[("Host", "foo.example.com")], Some("wild")),
        ("GET", "/", &[("Host", "Foo.EXAMPLE.com:443")], Some("wild")),
        ("GET", "/", &[("Host", "a.b.example.com")], Some("wild")),
        ("GET", "/", &[("Host", "app.example.com.")], Some("host")),
        ("GET", "/", &[("Host", "example.com")], None),
        ("GET", "/", &[("Host", "app.example.org")], None),
        // Path is exact; PathPrefix is a prefix.
        ("GET", "/exact", &[], Some("path")),
        ("GET", "/exact/more", &[], None),
        ("GET", "/exactly", &[], None),
        ("GET", "/prefix", &[], Some("prefix")),
        ("GET", "/prefix/a/b?c=d", &[], Some("prefix")),
        ("GET", "/pre", &[], None),
        // Header, Method, Query.
        ("GET", "/", &[("X-Tenant", "blue")], Some("header")),
        ("GET", "/", &[("X-Tenant", "red")], None),
        ("DELETE", "/", &[], Some("method")),
        ("GET", "/", &[], None),
        ("GET", "/?mode=fast", &[], Some("query")),
        ("GET", "/?x=1&mode=fast", &[], Some("query")),
        ("GET", "/?mode=slow", &[], None),
        // ||, && and !.
        ("GET", "/or-a", &[], Some("or")),
        ("GET", "/or-b", &[], Some("or")),
        ("GET", "/or-c", &[], None),
        ("GET", "/and/x", &[], Some("and")),
        ("GET", "/and/x", &[("X-Block", "0")], Some("and")),
        ("GET", "/and/x", &[("X-Block", "1")], None),
        // The regexp matchers and ClientIP.
        (
            "GET",
            "/",
            &[("Host", "api-42.example.net")],
            Some("hostre"),
        ),
        ("GET", "/", &[("Host", "api-x.example.net")], None),
        ("GET", "/items/17", &[], Some("pathre")),
        ("GET", "/items/17/x", &[], None),
        ("GET", "/", &[("X-Version", "v3")], Some("headerre")),
        ("GET", "/", &[("X-Version", "v4")], None),
        ("GET", "/?id=beef", &[], Some("queryre")),
        ("GET", "/?id=b33f", &[], None),
        ("GET", "/client", &[], Some("client")),
        ("GET", "/other-client", &[], None),
    ];
    let mut failures = Vec::new();
    for (method, path, headers, expected) in cases {
        let (status, server) = who(&gateway, method, path, headers).await;
        let ok = match expected {
            Some(name) => status == 200 && server.as_deref() == Some(*name),
            None => status == 404 && server.is_none(),
        };
        if !ok {
            failures.push(format!(
                "{method} {path} {headers:?}: expected {expected:?}, got {status} from {server:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The path and query reach the upstream unchanged.
    let request = ups["prefix"]
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/prefix/a/b"))
        .expect("the prefix upstream saw /prefix/a/b");
    assert_eq!(request.path, "/prefix/a/b?c=d");
    assert_eq!(ups["method"].requests()[0].method, "DELETE");
}

#[tokio::test]
async fn longer_rule_wins_unless_priority_says_otherwise() {
    let (_ups, backends) = upstreams(&[
        "short", "long", "explicit", "shadowed", "low", "high", "first", "second",
    ]);
    let routes = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: priorities
spec:
  routes:
    - match: PathPrefix(`/p`)
      services: [{name: short, port: 80}]
    - match: PathPrefix(`/p/longer`)
      services: [{name: long, port: 80}]
    - match: PathPrefix(`/q`)
      priority: 1000
      services: [{name: explicit, port: 80}]
    - match: PathPrefix(`/q/very/long/path`)
      services: [{name: shadowed, port: 80}]
    - match: PathPrefix(`/r/a/much/longer/rule`)
      priority: 1
      services: [{name: low, port: 80}]
    - match: PathPrefix(`/r`)
      services: [{name: high, port: 80}]
";
    // Two IngressRoutes with equally long rules: the one that sorts first by namespace/name
    // wins, whatever the file order (the file of `b-tie` is read first).
    let tie_b = route("b-tie", "PathPrefix(`/tie`)", "second");
    let tie_a = route("a-tie", "PathPrefix(`/tie`)", "first");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &backends),
            ("routes", routes),
            ("0-tie", &tie_b),
            ("1-tie", &tie_a),
        ],
    )
    .await;

    assert_eq!(
        who(&gateway, "GET", "/tie", &[]).await,
        (200, Some("first".into())),
        "equal priorities: default/a-tie sorts before default/b-tie"
    );
    assert_eq!(
        who(&gateway, "GET", "/p/longer/x", &[]).await,
        (200, Some("long".into()))
    );
    assert_eq!(
        who(&gateway, "GET", "/p/x", &[]).await,
        (200, Some("short".into()))
    );
    assert_eq!(
        who(&gateway, "GET", "/q/very/long/path", &[]).await,
        (200, Some("explicit".into())),
        "priority 1000 beats a longer rule"
    );
    assert_eq!(
        who(&gateway, "GET", "/r/a/much/longer/rule", &[]).await,
        (200, Some("high".into())),
        "priority 1 loses to a shorter rule's default priority"
    );

    // The admin API reports the default priority as the rule length.
    let json = gateway.routes_json().await;
    let shadowed = traverse_e2e::routes(&json)
        .into_iter()
        .find(|r| r["rule"] == "PathPrefix(`/q/very/long/path`)")
        .expect("the shadowed route is listed");
    assert_eq!(
        shadowed["priority"],
        "PathPrefix(`/q/very/long/path`)".len()
    );
}

#[tokio::test]
async fn routes_only_serve_their_entrypoints() {
    let (_ups, backends) = upstreams(&["app"]);
    let config = "entryPoints:
  web:
    address: \"{web}\"
  other:
    address: \"{other}\"
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
";
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: web-only
spec:
  entryPoints: [web]
  routes:
    - match: PathPrefix(`/web-only`)
      services: [{name: app, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: other-only
spec:
  entryPoints: [other]
  routes:
    - match: PathPrefix(`/other-only`)
      services: [{name: app, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: everywhere
spec:
  routes:
    - match: PathPrefix(`/both`)
      services: [{name: app, port: 80}]
";
    let gateway = Gateway::start(config, &[("backends", &backends), ("routes", manifests)]).await;
    for (entry_point, path, status) in [
        ("web", "/web-only", 200),
        ("other", "/web-only", 404),
        ("web", "/other-only", 404),
        ("other", "/other-only", 200),
        ("web", "/both", 200),
        ("other", "/both", 200),
    ] {
        let response = gateway.get(entry_point, path, &[]).await;
        assert_eq!(
            response.status,
            status,
            "{path} on entrypoint {entry_point}: {}",
            response.text()
        );
    }
}

#[tokio::test]
async fn middlewares_rewrite_paths_and_headers() {
    let (ups, backends) = upstreams(&["app"]);
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: strip
spec:
  stripPrefix:
    prefixes: [/strip]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: add
spec:
  addPrefix:
    prefix: /added
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: chain-strip
spec:
  stripPrefix:
    prefixes: [/chain]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: headers
spec:
  headers:
    customRequestHeaders:
      X-Injected: \"yes\"
      X-Remove-Me: \"\"
    customResponseHeaders:
      X-Served-By: traverse
      X-Upstream-Secret: \"\"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: rewrites
spec:
  routes:
    - match: PathPrefix(`/strip`)
      services: [{name: app, port: 80}]
      middlewares: [{name: strip}]
    - match: PathPrefix(`/add`)
      services: [{name: app, port: 80}]
      middlewares: [{name: add@kubernetescrd}]
    - match: PathPrefix(`/chain`)
      services: [{name: app, port: 80}]
      middlewares: [{name: chain-strip}, {name: add}]
    - match: PathPrefix(`/hdr`)
      services: [{name: app, port: 80}]
      middlewares: [{name: headers}]
    - match: PathPrefix(`/plain`)
      services: [{name: app, port: 80}]
";
    let gateway = Gateway::start(
        &config(""),
        &[("backends", &backends), ("routes", manifests)],
    )
    .await;
    let app = &ups["app"];

    // stripPrefix: prefix removed, query kept, X-Forwarded-Prefix set; stripping everything leaves "/".
    let response = gateway.get("web", "/strip/users?id=7", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.upstream_path().as_deref(), Some("/users?id=7"));
    assert_eq!(
        response.upstream_header("X-Forwarded-Prefix").as_deref(),
        Some("/strip")
    );
    let response = gateway.get("web", "/strip", &[]).await;
    assert_eq!(response.upstream_path().as_deref(), Some("/"));
    let response = gateway.get("web", "/strip?x=1", &[]).await;
    assert_eq!(response.upstream_path().as_deref(), Some("/?x=1"));

    // addPrefix.
    let response = gateway.get("web", "/add/x?q=1", &[]).await;
    assert_eq!(
        response.upstream_path().as_deref(),
        Some("/added/add/x?q=1")
    );

    // Middlewares apply in the order listed: strip, then add.
    let response = gateway.get("web", "/chain/x", &[]).await;
    assert_eq!(response.upstream_path().as_deref(), Some("/added/x"));

    // headers: request header set (replacing the client's value) and removed; response
    // header added and removed.
    let response = gateway
        .get(
            "web",
            "/hdr",
            &[("X-Injected", "from-client"), ("X-Remove-Me", "1")],
        )
        .await;
    assert_eq!(response.status, 200);
    let seen = app
        .requests()
        .into_iter()
        .find(|r| r.path == "/hdr")
        .expect("upstream saw /hdr");
    assert_eq!(seen.header_all("x-injected"), ["yes"]);
    assert!(
        seen.header("x-remove-me").is_none(),
        "X-Remove-Me reached the upstream: {:?}",
        seen.headers
    );
    assert_eq!(response.header("x-served-by"), Some("traverse"));
    assert_eq!(
        response.header("x-upstream-secret"),
        None,
        "an empty customResponseHeaders value removes the header"
    );
    assert_eq!(response.header("x-upstream"), Some("app"));

    // Control: the same request on a route without the middleware is left alone.
    let response = gateway
        .get(
            "web",
            "/plain",
            &[("X-Injected", "from-client"), ("X-Remove-Me", "1")],
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.upstream_headers("x-injected"), ["from-client"]);
    assert_eq!(response.upstream_headers("x-remove-me"), ["1"]);
    assert_eq!(response.header("x-upstream-secret"), Some("s3cret"));
    assert_eq!(response.header("x-served-by"), None);
}

#[tokio::test]
async fn host_header_and_forwarding_headers() {
    let upstream = Upstream::start("app");
    let backends = service("app", &[upstream.addr()]);
    let config = "entryPoints:
  web:
    address: \"{web}\"
  trusted:
    address: \"{trusted}\"
    forwardedHeaders:
      trustedIPs: [\"127.0.0.1/32\"]
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
";
    let manifests = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: hosts
spec:
  routes:
    - match: PathPrefix(`/pass`)
      services: [{name: app, port: 80}]
    - match: PathPrefix(`/nopass`)
      services: [{name: app, port: 80, passHostHeader: false}]
";
    let gateway = Gateway::start(config, &[("backends", &backends), ("routes", manifests)]).await;

    // passHostHeader (default true): the upstream sees the client's Host.
    let response = gateway
        .get("web", "/pass", &[("Host", "client.example:1234")])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.upstream_headers("host"), ["client.example:1234"]);

    // passHostHeader: false: the upstream sees its own address.
    let response = gateway
        .get("web", "/nopass", &[("Host", "client.example:1234")])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.upstream_headers("host"),
        [upstream.addr().to_string()]
    );
    assert_eq!(
        response.upstream_header("x-forwarded-host").as_deref(),
        Some("client.example:1234"),
        "X-Forwarded-Host keeps the client's Host even when Host is rewritten"
    );

    // An untrusted client's X-Forwarded-* are replaced, not extended.
    let spoofed = [
        ("Host", "client.example"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Port", "1"),
        ("X-Real-Ip", "6.6.6.6"),
    ];
    let response = gateway.get("web", "/pass", &spoofed).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.upstream_headers("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(response.upstream_headers("x-forwarded-proto"), ["http"]);
    assert_eq!(
        response.upstream_headers("x-forwarded-host"),
        ["client.example"]
    );
    assert_eq!(
        response.upstream_headers("x-forwarded-port"),
        [gateway.port("web").to_string()]
    );
    assert_eq!(response.upstream_headers("x-real-ip"), ["127.0.0.1"]);

    // Without any inbound X-Forwarded-*, they are all set.
    let response = gateway
        .get("web", "/pass", &[("Host", "plain.example")])
        .await;
    assert_eq!(response.upstream_headers("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(response.upstream_headers("x-forwarded-proto"), ["http"]);
    assert_eq!(
        response.upstream_headers("x-forwarded-host"),
        ["plain.example"]
    );

    // A trusted client's chain is extended and its other X-Forwarded-* kept.
    let response = gateway.get("trusted", "/pass", &spoofed).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.upstream_headers("x-forwarded-for"),
        ["6.6.6.6, 127.0.0.1"]
    );
    assert_eq!(response.upstream_headers("x-forwarded-proto"), ["https"]);
    assert_eq!(
        response.upstream_headers("x-forwarded-host"),
        ["evil.example"]
    );
}

#[tokio::test]
async fn request_body_reaches_the_upstream() {
    let upstream = Upstream::start("app");
    let gateway = Gateway::start(
        &config(""),
        &[
            ("backends", &service("app", &[upstream.addr()])),
            ("routes", &route("echo", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    let body = b"{\"hello\": \"world\"}".repeat(100);
    let response = traverse_e2e::http_request(
        gateway.addr("web"),
        "POST",
        "/submit",
        &[("Content-Type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].body, body);
}

/// A gateway with an untrusted `web` and a `trusted` (127.0.0.1) entrypoint, routing to `app`.
async fn forwarding_gateway(app: &Upstream) -> Gateway {
    let config = "entryPoints:
  web:
    address: \"{web}\"
  trusted:
    address: \"{trusted}\"
    forwardedHeaders:
      trustedIPs: [\"127.0.0.1\"]
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
";
    Gateway::start(
        config,
        &[
            ("backends", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await
}

#[tokio::test]
async fn trusted_forwarded_for_chain_in_several_lines_is_kept_whole() {
    let app = Upstream::start("app");
    let gateway = forwarding_gateway(&app).await;
    let response = gateway
        .get(
            "trusted",
            "/chain",
            &[
                ("X-Forwarded-For", "1.1.1.1"),
                ("X-Forwarded-For", "2.2.2.2"),
            ],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.upstream_headers("x-forwarded-for").join(", "),
        "1.1.1.1, 2.2.2.2, 127.0.0.1"
    );
}

#[tokio::test]
async fn untrusted_forwarded_prefix_is_dropped() {
    let app = Upstream::start("app");
    let gateway = forwarding_gateway(&app).await;
    let response = gateway
        .get("web", "/page", &[("X-Forwarded-Prefix", "/evil")])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.upstream_headers("x-forwarded-prefix"),
        Vec::<String>::new(),
        "a spoofed X-Forwarded-Prefix from an untrusted client"
    );
    // A trusted proxy's value is kept.
    let response = gateway
        .get("trusted", "/page", &[("X-Forwarded-Prefix", "/base")])
        .await;
    assert_eq!(response.upstream_headers("x-forwarded-prefix"), ["/base"]);
}
