//! Traefik-style manifests from `tests/fixtures` must parse into the typed model,
//! keep every field (names included), round-trip, and be matched by the generated CRDs.

use std::collections::BTreeMap;
use std::path::Path;

use kube::{CustomResourceExt, Resource};
use serde_json::{json, Value};
use traverse_api::ingress_route::{RouteKind, ServiceKind};
use traverse_api::support::{
    middleware_kinds, unsupported_in_ingress_route, unsupported_in_middleware,
};
use traverse_api::{IngressRoute, IngressRouteSpec, IntOrString, Middleware};

/// One YAML document: its raw JSON form and its typed form.
struct Doc<T> {
    raw: Value,
    typed: T,
}

/// All documents of a fixture file, split by kind and keyed by name.
#[derive(Default)]
struct Fixture {
    ingress_routes: BTreeMap<String, Doc<IngressRoute>>,
    middlewares: BTreeMap<String, Doc<Middleware>>,
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn load(file: &str) -> Fixture {
    let mut fixture = Fixture::default();
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&read(file)).expect("fixture documents are valid YAML");
    for raw in documents {
        assert_eq!(raw["apiVersion"], "traefik.io/v1alpha1", "{file}: {raw}");
        let name = raw["metadata"]["name"]
            .as_str()
            .expect("fixture documents have a name")
            .to_owned();
        match raw["kind"].as_str() {
            Some("IngressRoute") => {
                let typed = parse::<IngressRoute>(&raw);
                let previous = fixture
                    .ingress_routes
                    .insert(name.clone(), Doc { raw, typed });
                assert!(previous.is_none(), "{file}: duplicate IngressRoute {name}");
            }
            Some("Middleware") => {
                let typed = parse::<Middleware>(&raw);
                let previous = fixture.middlewares.insert(name.clone(), Doc { raw, typed });
                assert!(previous.is_none(), "{file}: duplicate Middleware {name}");
            }
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    fixture
}

/// Parses from JSON and, independently, from YAML text: both paths must agree.
fn parse<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(raw: &Value) -> T {
    let from_json: T = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("parse {}: {e}", raw["metadata"]["name"]));
    let yaml = serde_saphyr::to_string(raw).expect("YAML from JSON");
    let from_yaml: T = serde_saphyr::from_str(&yaml).expect("typed from YAML");
    assert_eq!(from_json, from_yaml);
    from_json
}

fn route<'a>(fixture: &'a Fixture, name: &str) -> &'a IngressRoute {
    &fixture
        .ingress_routes
        .get(name)
        .unwrap_or_else(|| panic!("no IngressRoute {name}"))
        .typed
}

fn middleware<'a>(fixture: &'a Fixture, name: &str) -> &'a Middleware {
    &fixture
        .middlewares
        .get(name)
        .unwrap_or_else(|| panic!("no Middleware {name}"))
        .typed
}

fn unsupported_fields(found: Vec<traverse_api::support::Unsupported>) -> Vec<String> {
    found.into_iter().map(|u| u.field).collect()
}

/// Round trips through JSON and YAML give back equal values.
fn assert_round_trip<T>(typed: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(typed).expect("serialize to JSON");
    let back: T = serde_json::from_value(json).expect("deserialize from JSON");
    assert_eq!(&back, typed);
    let yaml = serde_saphyr::to_string(typed).expect("serialize to YAML");
    let back: T = serde_saphyr::from_str(&yaml).expect("deserialize from YAML");
    assert_eq!(&back, typed);
}

#[test]
fn documents_parse_by_kind() {
    let routes = load("ingressroutes.yaml");
    assert_eq!(routes.ingress_routes.len(), 4);
    assert!(routes.middlewares.is_empty());
    let middlewares = load("middlewares.yaml");
    assert_eq!(middlewares.middlewares.len(), 26);
    assert!(middlewares.ingress_routes.is_empty());
    let tolerant = load("tolerant.yaml");
    assert_eq!(tolerant.ingress_routes.len(), 1);
    assert_eq!(tolerant.middlewares.len(), 2);
}

/// Serializing a parsed fixture gives back exactly the source document: every field
/// name matches Traefik's, and nothing is dropped or added.
#[test]
fn fixtures_serialize_back_to_their_source() {
    for file in ["ingressroutes.yaml", "middlewares.yaml"] {
        let fixture = load(file);
        for (name, doc) in &fixture.ingress_routes {
            let out = serde_json::to_value(&doc.typed).expect("serialize");
            assert_eq!(out, doc.raw, "{file}: IngressRoute {name}");
        }
        for (name, doc) in &fixture.middlewares {
            let out = serde_json::to_value(&doc.typed).expect("serialize");
            assert_eq!(out, doc.raw, "{file}: Middleware {name}");
        }
    }
}

#[test]
fn every_document_round_trips() {
    for file in ["ingressroutes.yaml", "middlewares.yaml", "tolerant.yaml"] {
        let fixture = load(file);
        for doc in fixture.ingress_routes.values() {
            assert_round_trip(&doc.typed);
        }
        for doc in fixture.middlewares.values() {
            assert_round_trip(&doc.typed);
        }
    }
}

#[test]
fn plain_routing_fields() {
    let fixture = load("ingressroutes.yaml");
    let ir = route(&fixture, "whoami");
    assert_eq!(ir.metadata.namespace.as_deref(), Some("apps"));
    assert_eq!(ir.spec.entry_points, ["web", "websecure"]);
    assert_eq!(ir.spec.routes.len(), 2);

    let api = &ir.spec.routes[0];
    assert_eq!(
        api.r#match,
        "Host(`whoami.example.com`) && PathPrefix(`/api`)"
    );
    assert_eq!(api.kind, Some(RouteKind::Rule));
    assert_eq!(api.priority, Some(42));
    assert_eq!(api.syntax.as_deref(), Some("v3"));
    assert_eq!(api.middlewares.len(), 2);
    assert_eq!(api.middlewares[0].name, "strip-api");
    assert_eq!(api.middlewares[0].namespace, None);
    assert_eq!(api.middlewares[1].namespace.as_deref(), Some("shared"));
    let svc = &api.services[0];
    assert_eq!(svc.name, "whoami");
    assert_eq!(svc.kind, Some(ServiceKind::Service));
    assert_eq!(svc.port, Some(IntOrString::Int(80)));
    assert_eq!(svc.scheme.as_deref(), Some("http"));
    assert_eq!(svc.pass_host_header, Some(true));

    let grpc = &ir.spec.routes[1];
    assert_eq!(grpc.kind, None);
    let svc = &grpc.services[0];
    assert_eq!(svc.port, Some(IntOrString::String("grpc".to_owned())));
    assert_eq!(svc.effective_kind(), ServiceKind::Service);
    assert_eq!(svc.scheme.as_deref(), Some("h2c"));
    assert_eq!(svc.pass_host_header, Some(false));

    assert!(unsupported_in_ingress_route(&ir.spec).is_empty());
}

#[test]
fn tls_fields() {
    let fixture = load("ingressroutes.yaml");
    let ir = route(&fixture, "shop-tls");
    let tls = ir.spec.tls.as_ref().expect("tls");
    assert_eq!(tls.secret_name.as_deref(), Some("shop-example-com-tls"));
    let options = tls.options.as_ref().expect("options");
    assert_eq!(options.name, "modern-tls");
    assert_eq!(options.namespace.as_deref(), Some("traefik"));
    let store = tls.store.as_ref().expect("store");
    assert_eq!(store.name, "default");
    assert_eq!(store.namespace, None);
    assert_eq!(tls.cert_resolver.as_deref(), Some("letsencrypt"));
    assert_eq!(tls.domains.len(), 2);
    assert_eq!(tls.domains[0].main.as_deref(), Some("shop.example.com"));
    assert_eq!(
        tls.domains[0].sans,
        ["www.shop.example.com", "cdn.shop.example.com"]
    );
    assert_eq!(tls.domains[1].main.as_deref(), Some("*.shop.example.com"));
    assert!(tls.domains[1].sans.is_empty());

    assert_eq!(
        unsupported_fields(unsupported_in_ingress_route(&ir.spec)),
        ["spec.tls.certResolver", "spec.tls.domains"]
    );
}

#[test]
fn load_balancer_fields() {
    let fixture = load("ingressroutes.yaml");
    let ir = route(&fixture, "canary");
    assert_eq!(
        ir.spec.ingress_class_name.as_deref(),
        Some("traefik-internal")
    );
    assert_eq!(ir.spec.parent_refs.len(), 1);
    assert_eq!(ir.spec.parent_refs[0].name, "apps-root");
    assert_eq!(
        ir.spec.parent_refs[0].namespace.as_deref(),
        Some("platform")
    );

    let split = &ir.spec.routes[0];
    let observability = split.observability.as_ref().expect("observability");
    assert_eq!(observability.access_logs, Some(false));
    assert_eq!(observability.metrics, Some(true));
    assert_eq!(observability.tracing, Some(true));
    assert_eq!(observability.trace_verbosity.as_deref(), Some("detailed"));

    let stable = &split.services[0];
    assert_eq!(stable.weight, Some(90));
    let cookie = stable
        .sticky
        .as_ref()
        .and_then(|s| s.cookie.as_ref())
        .expect("sticky cookie");
    assert_eq!(cookie.name.as_deref(), Some("app_affinity"));
    assert_eq!(cookie.secure, Some(true));
    assert_eq!(cookie.http_only, Some(true));
    assert_eq!(cookie.same_site.as_deref(), Some("lax"));
    assert_eq!(cookie.max_age, Some(3600));
    assert_eq!(cookie.path.as_deref(), Some("/"));
    assert_eq!(cookie.domain.as_deref(), Some("example.com"));
    assert_eq!(stable.strategy.as_deref(), Some("wrr"));
    assert_eq!(
        stable
            .response_forwarding
            .as_ref()
            .and_then(|r| r.flush_interval.as_deref()),
        Some("100ms")
    );
    assert_eq!(stable.servers_transport.as_deref(), Some("mtls-transport"));

    let canary = &split.services[1];
    assert_eq!(canary.weight, Some(10));
    assert_eq!(canary.port, Some(IntOrString::String("http".to_owned())));
    assert_eq!(canary.native_lb, Some(true));
    assert_eq!(canary.node_port_lb, Some(false));
    assert_eq!(canary.middlewares[0].name, "canary-header");

    let legacy = &ir.spec.routes[1].services[0];
    let hc = legacy.health_check.as_ref().expect("healthCheck");
    assert_eq!(hc.path.as_deref(), Some("/healthz"));
    assert_eq!(hc.status, Some(200));
    assert_eq!(hc.port, Some(8443));
    assert_eq!(hc.interval, Some(IntOrString::String("10s".to_owned())));
    assert_eq!(hc.timeout, Some(IntOrString::Int(3)));
    assert_eq!(hc.follow_redirects, Some(false));
    assert_eq!(hc.headers["X-Health-Probe"], "traverse");
    let passive = legacy.passive_health_check.as_ref().expect("passive");
    assert_eq!(passive.max_failed_attempts, Some(3));

    assert_eq!(
        unsupported_fields(unsupported_in_ingress_route(&ir.spec)),
        [
            "spec.ingressClassName",
            "spec.routes[0].observability",
            // strategy and nativeLB are read by the translation, which reports what it
            // does not implement.
            "spec.routes[0].services[0].responseForwarding.flushInterval",
            "spec.routes[0].services[1].middlewares",
            "spec.routes[1].services[0].passiveHealthCheck",
            "spec.parentRefs",
        ]
    );
}

#[test]
fn traefik_service_kind() {
    let fixture = load("ingressroutes.yaml");
    let ir = route(&fixture, "mirrored");
    let svc = &ir.spec.routes[0].services[0];
    assert_eq!(svc.kind, Some(ServiceKind::TraefikService));
    assert_eq!(svc.port, None);
    assert!(
        unsupported_fields(unsupported_in_ingress_route(&ir.spec)).is_empty(),
        "TraefikService references are acted on"
    );
}

#[test]
fn unknown_service_kind_is_a_parse_error() {
    let doc = json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": { "name": "bad" },
        "spec": { "routes": [{
            "match": "PathPrefix(`/`)",
            "services": [{ "name": "x", "kind": "Ingress" }],
        }]},
    });
    let err = serde_json::from_value::<IngressRoute>(doc).expect_err("unknown kind");
    let message = err.to_string();
    assert!(message.contains("unknown variant `Ingress`"), "{message}");
    assert!(message.contains("TraefikService"), "{message}");
}

#[test]
fn path_middlewares() {
    let fixture = load("middlewares.yaml");
    let add = &middleware(&fixture, "add-api").spec;
    assert_eq!(
        add.add_prefix.as_ref().and_then(|a| a.prefix.as_deref()),
        Some("/api")
    );
    let strip = middleware(&fixture, "strip-api")
        .spec
        .strip_prefix
        .as_ref()
        .expect("stripPrefix");
    assert_eq!(strip.prefixes, ["/api", "/v1"]);
    assert_eq!(strip.force_slash, Some(false));
    let regex = &middleware(&fixture, "strip-tenant").spec;
    assert_eq!(
        regex.strip_prefix_regex.as_ref().map(|r| r.regex.clone()),
        Some(vec!["^/tenants/[a-z0-9-]+".to_owned()])
    );
    let replace = &middleware(&fixture, "replace-path").spec;
    assert_eq!(
        replace
            .replace_path
            .as_ref()
            .and_then(|r| r.path.as_deref()),
        Some("/v2/status")
    );
    let rewrite = middleware(&fixture, "replace-path-regex")
        .spec
        .replace_path_regex
        .as_ref()
        .expect("replacePathRegex");
    assert_eq!(rewrite.regex.as_deref(), Some("^/foo/(.*)"));
    assert_eq!(rewrite.replacement.as_deref(), Some("/bar/$1"));

    assert!(unsupported_in_middleware(add).is_empty());
    assert_eq!(
        unsupported_fields(unsupported_in_middleware(
            &middleware(&fixture, "strip-api").spec
        )),
        ["spec.stripPrefix.forceSlash"]
    );
    assert!(unsupported_in_middleware(replace).is_empty());
}

#[test]
fn headers_middleware_fields() {
    let fixture = load("middlewares.yaml");
    let mw = middleware(&fixture, "security-headers");
    let h = mw.spec.headers.as_ref().expect("headers");
    assert_eq!(h.custom_request_headers["X-Script-Name"], "test");
    assert_eq!(h.custom_request_headers["X-Custom-Request-Header"], "");
    assert_eq!(h.custom_response_headers["Server"], "");
    assert_eq!(h.access_control_allow_credentials, Some(true));
    assert_eq!(h.access_control_allow_methods, ["GET", "OPTIONS", "PUT"]);
    assert_eq!(
        h.access_control_allow_origin_list,
        ["https://app.example.com"]
    );
    assert_eq!(h.access_control_max_age, Some(100));
    assert_eq!(h.ssl_proxy_headers["X-Forwarded-Proto"], "https");
    assert_eq!(h.sts_seconds, Some(31536000));
    assert_eq!(h.force_sts_header, Some(true));
    assert_eq!(h.custom_frame_options_value.as_deref(), Some("SAMEORIGIN"));
    assert_eq!(h.browser_xss_filter, Some(true));
    assert_eq!(h.custom_browser_xss_value.as_deref(), Some("0"));
    assert_eq!(
        h.content_security_policy.as_deref(),
        Some("default-src 'self'")
    );
    assert_eq!(h.referrer_policy.as_deref(), Some("same-origin"));
    assert_eq!(
        h.permissions_policy.as_deref(),
        Some("camera=(), microphone=()")
    );
    assert_eq!(h.is_development, Some(false));
    assert_eq!(h.ssl_redirect, Some(true));
    assert_eq!(h.ssl_host.as_deref(), Some("secure.example.com"));

    // Only the deprecated redirect fields are reported: the rest is implemented, and
    // false flags change nothing in Traefik (`sslTemporaryRedirect: false`).
    assert_eq!(
        unsupported_fields(unsupported_in_middleware(&mw.spec)),
        [
            "spec.headers.sslRedirect",
            "spec.headers.sslHost",
            "spec.headers.sslForceHost",
        ]
    );

    let plain = &middleware(&fixture, "request-id").spec;
    assert!(unsupported_in_middleware(plain).is_empty());
}

#[test]
fn chain_and_free_form_middlewares() {
    let fixture = load("middlewares.yaml");
    let chain = middleware(&fixture, "secured")
        .spec
        .chain
        .as_ref()
        .expect("chain");
    let names: Vec<_> = chain.middlewares.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ip-allow", "basic-auth", "security-headers"]);
    assert_eq!(chain.middlewares[2].namespace.as_deref(), Some("shared"));

    let rate = middleware(&fixture, "rate-limit").spec.rate_limit.as_ref();
    let rate = rate.expect("rateLimit");
    assert_eq!(rate.average, Some(100));
    assert_eq!(
        rate.period,
        Some(traverse_api::IntOrString::String("1m".into()))
    );
    assert_eq!(rate.burst, Some(50));
    assert_eq!(
        rate.source_criterion
            .as_ref()
            .and_then(|c| c.request_header_name.as_deref()),
        Some("X-Client-Id")
    );
    let plugin = &middleware(&fixture, "geoblock").spec.plugin;
    assert_eq!(plugin["geoblock"]["countries"], json!(["FR", "DE"]));
    assert_eq!(
        middleware(&fixture, "compress").spec.compress,
        Some(traverse_api::middleware::Compress::default())
    );

    assert_eq!(
        unsupported_fields(unsupported_in_middleware(
            &middleware(&fixture, "geoblock").spec
        )),
        ["spec.plugin"]
    );
    assert!(unsupported_in_middleware(&middleware(&fixture, "rate-limit").spec).is_empty());
}

#[test]
fn each_fixture_middleware_sets_exactly_its_type() {
    let fixture = load("middlewares.yaml");
    let expected = [
        ("add-api", "addPrefix"),
        ("strip-api", "stripPrefix"),
        ("strip-tenant", "stripPrefixRegex"),
        ("replace-path", "replacePath"),
        ("replace-path-regex", "replacePathRegex"),
        ("security-headers", "headers"),
        ("request-id", "headers"),
        ("secured", "chain"),
        ("ip-allow", "ipAllowList"),
        ("ip-whitelist-legacy", "ipWhiteList"),
        ("basic-auth", "basicAuth"),
        ("digest-auth", "digestAuth"),
        ("forward-auth", "forwardAuth"),
        ("rate-limit", "rateLimit"),
        ("in-flight", "inFlightReq"),
        ("redirect-regex", "redirectRegex"),
        ("redirect-https", "redirectScheme"),
        ("buffering", "buffering"),
        ("circuit-breaker", "circuitBreaker"),
        ("compress", "compress"),
        ("content-type", "contentType"),
        ("errors", "errors"),
        ("grpc-web", "grpcWeb"),
        ("client-cert", "passTLSClientCert"),
        ("retry", "retry"),
        ("geoblock", "plugin"),
    ];
    assert_eq!(expected.len(), fixture.middlewares.len());
    for (name, kind) in expected {
        let spec = &middleware(&fixture, name).spec;
        assert_eq!(middleware_kinds(spec), [kind], "{name}");
        let supported = traverse_api::support::SUPPORTED_MIDDLEWARE_KINDS.contains(&kind);
        let type_reported = unsupported_in_middleware(spec)
            .iter()
            .any(|u| u.field == format!("spec.{kind}"));
        assert_eq!(type_reported, !supported, "{name}");
    }
}

#[test]
fn tolerates_cluster_fields_and_unknown_fields() {
    let fixture = load("tolerant.yaml");
    let ir = route(&fixture, "from-cluster");
    assert_eq!(ir.metadata.generation, Some(3));
    assert_eq!(ir.spec.routes[0].services[0].name, "web");
    let status = ir.status.as_ref().expect("status");
    assert_eq!(status.conditions.len(), 1);
    assert_eq!(status.conditions[0].type_, "Accepted");
    assert_eq!(status.conditions[0].observed_generation, Some(3));
    assert!(unsupported_in_ingress_route(&ir.spec).is_empty());
    // Unknown fields are dropped, known ones kept.
    let out = serde_json::to_value(ir).expect("serialize");
    assert!(out["spec"].get("futureTopLevelField").is_none());
    assert_eq!(out["spec"]["routes"][0]["services"][0]["port"], 80);
    assert_eq!(out["status"]["conditions"][0]["reason"], "Accepted");

    let two = &middleware(&fixture, "two-kinds").spec;
    assert_eq!(middleware_kinds(two), ["addPrefix", "stripPrefix"]);
    assert!(unsupported_in_middleware(two).is_empty());
    assert!(middleware_kinds(&middleware(&fixture, "empty").spec).is_empty());
}

#[test]
fn unset_fields_are_not_serialized() {
    let spec: IngressRouteSpec = serde_json::from_value(json!({
        "routes": [{ "match": "PathPrefix(`/`)", "services": [{ "name": "web" }] }],
    }))
    .expect("minimal spec");
    let ir = IngressRoute::new("minimal", spec);
    assert_eq!(
        serde_json::to_value(&ir).expect("serialize"),
        json!({
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "IngressRoute",
            "metadata": { "name": "minimal" },
            "spec": {
                "routes": [{ "match": "PathPrefix(`/`)", "services": [{ "name": "web" }] }],
            },
        })
    );
    let mw = Middleware::new("empty", Default::default());
    assert_eq!(
        serde_json::to_value(&mw).expect("serialize")["spec"],
        json!({})
    );
}

#[test]
fn routes_field_is_required() {
    let err = serde_json::from_value::<IngressRouteSpec>(json!({ "entryPoints": ["web"] }))
        .expect_err("routes is required");
    assert!(err.to_string().contains("routes"), "{err}");
}

fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("CRD has a schema"),
    )
    .expect("schema serializes to JSON")
}

#[test]
fn ingress_route_crd() {
    let crd = IngressRoute::crd();
    assert_eq!(IngressRoute::crd_name(), "ingressroutes.traefik.io");
    assert_eq!(crd.spec.group, "traefik.io");
    assert_eq!(crd.spec.names.kind, "IngressRoute");
    assert_eq!(crd.spec.names.plural, "ingressroutes");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.versions.len(), 1);
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    assert_eq!(IngressRoute::api_version(&()), "traefik.io/v1alpha1");

    let json = serde_json::to_string(&crd).expect("CRD serializes to JSON");
    assert!(json.contains("\"group\":\"traefik.io\""));

    let schema = schema_of::<IngressRoute>();
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["routes"]));
    let route = &spec["properties"]["routes"]["items"];
    assert_eq!(route["required"], json!(["match"]));
    let service = &route["properties"]["services"]["items"];
    assert_eq!(
        service["properties"]["port"]["x-kubernetes-int-or-string"],
        true
    );
    assert_eq!(
        service["properties"]["kind"]["enum"],
        json!(["Service", "TraefikService", "Uplink"]),
        "Traefik's two kinds, plus Traverse's Uplink"
    );
    assert!(service["properties"]["nativeLB"].is_object());
    assert!(schema["properties"]["status"]["properties"]["conditions"].is_object());
}

#[test]
fn middleware_crd() {
    let crd = Middleware::crd();
    assert_eq!(crd.spec.group, "traefik.io");
    assert_eq!(crd.spec.names.plural, "middlewares");
    assert_eq!(crd.spec.versions[0].name, "v1alpha1");
    assert!(crd.spec.versions[0]
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    let schema = schema_of::<Middleware>();
    let spec = &schema["properties"]["spec"]["properties"];
    assert!(spec["rateLimit"]["properties"]["average"].is_object());
    assert_eq!(
        spec["rateLimit"]["properties"]["redis"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert!(spec["compress"]["properties"]["minResponseBodyBytes"].is_object());
    assert_eq!(
        spec["grpcWeb"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert!(spec["headers"]["properties"]["forceSTSHeader"].is_object());
    assert_eq!(
        spec["plugin"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

/// Walks a spec alongside its structural schema and fails on any field the schema does
/// not declare: the generated CRDs would then prune fields Traefik users write.
/// (`apiVersion`, `kind` and `metadata` are the apiserver's business.)
fn assert_schema_declares(schema: &Value, value: &Value, path: &str) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, child) in map {
                    let sub = properties
                        .get(key)
                        .unwrap_or_else(|| panic!("{path}.{key} is not in the CRD schema"));
                    assert_schema_declares(sub, child, &format!("{path}.{key}"));
                }
            } else if let Some(additional) = schema.get("additionalProperties") {
                for (key, child) in map {
                    assert_schema_declares(additional, child, &format!("{path}.{key}"));
                }
            } else {
                panic!("{path} is an object without properties in the CRD schema");
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_schema_declares(&schema["items"], item, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn crd_schemas_declare_every_fixture_field() {
    let routes = schema_of::<IngressRoute>();
    let middlewares = schema_of::<Middleware>();
    for file in ["ingressroutes.yaml", "middlewares.yaml"] {
        let fixture = load(file);
        for doc in fixture.ingress_routes.values() {
            assert_schema_declares(&routes["properties"]["spec"], &doc.raw["spec"], "spec");
        }
        for doc in fixture.middlewares.values() {
            assert_schema_declares(&middlewares["properties"]["spec"], &doc.raw["spec"], "spec");
        }
    }
}

#[test]
fn core_kinds_are_reexported() {
    assert_eq!(traverse_api::Service::kind(&()), "Service");
    assert_eq!(traverse_api::EndpointSlice::kind(&()), "EndpointSlice");
    assert_eq!(IngressRoute::kind(&()), "IngressRoute");
    assert_eq!(Middleware::plural(&()), "middlewares");
}
