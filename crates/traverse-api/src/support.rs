//! What the gateway acts on today, expressed as diagnostics for everything else.
//!
//! A manifest written for Traefik may use features Traverse does not implement yet.
//! Ignoring them silently would change behaviour behind the user's back, so every set
//! field the gateway does not act on is reported as an [`Unsupported`] entry.
//!
//! A field counts as set when it differs from Go's zero value (non-empty string or
//! list, non-zero number, `true`), because that is how Traefik itself reads these
//! fields: `frameDeny: false` or `stsSeconds: 0` change nothing, so they are not
//! reported. Objects (e.g. `sticky`, `tls`) count as set when present at all, and
//! pointer-like fields with a meaningful explicit value (`forceSlash`) when present.

use std::fmt;

use crate::ingress_route::{IngressRouteSpec, ServiceRef};
use crate::middleware::{Headers, MiddlewareSpec};
use crate::traefik_service::TraefikServiceSpec;

/// A field that parses but the gateway does not act on yet: reported as a diagnostic, never silently ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// JSON-path-like location, e.g. `spec.routes[0].services[1].sticky`.
    pub field: String,
    /// Short explanation of what is missing.
    pub reason: &'static str,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Upstream schemes the proxy can speak.
pub const SUPPORTED_SCHEMES: [&str; 3] = ["http", "https", "h2c"];

/// Collects diagnostics under a common path prefix.
struct Report<'a> {
    out: &'a mut Vec<Unsupported>,
    prefix: String,
}

impl Report<'_> {
    fn flag(&mut self, set: bool, field: &str, reason: &'static str) {
        if set {
            self.out.push(Unsupported {
                field: format!("{}.{}", self.prefix, field),
                reason,
            });
        }
    }
}

fn is_true(value: Option<bool>) -> bool {
    value == Some(true)
}

fn has_text(value: Option<&str>) -> bool {
    value.is_some_and(|s| !s.is_empty())
}

/// Fields of an `IngressRoute` spec that are set but not acted on by the gateway.
pub fn unsupported_in_ingress_route(spec: &IngressRouteSpec) -> Vec<Unsupported> {
    let mut out = Vec::new();
    let mut report = Report {
        out: &mut out,
        prefix: "spec".to_owned(),
    };
    report.flag(
        has_text(spec.ingress_class_name.as_deref()),
        "ingressClassName",
        "the file provider loads every class; only the Kubernetes provider filters on it (providers.kubernetes.ingressClass)",
    );
    for (i, route) in spec.routes.iter().enumerate() {
        let mut route_report = Report {
            out: &mut *report.out,
            prefix: format!("spec.routes[{i}]"),
        };
        route_report.flag(
            route.observability.is_some(),
            "observability",
            "per-router observability settings are not implemented",
        );
        for (j, service) in route.services.iter().enumerate() {
            service_ref(
                &mut Report {
                    out: &mut *route_report.out,
                    prefix: format!("spec.routes[{i}].services[{j}]"),
                },
                service,
            );
        }
    }
    if let Some(tls) = &spec.tls {
        report.flag(
            has_text(tls.cert_resolver.as_deref()),
            "tls.certResolver",
            "certificate resolvers (ACME) are not implemented; name a Secret in tls.secretName",
        );
        report.flag(
            !tls.domains.is_empty(),
            "tls.domains",
            "domains are for certificate resolvers (ACME), which are not implemented; \
             certificates are chosen by the names they hold",
        );
        report.flag(
            tls.store.as_ref().is_some_and(|s| s.name != "default"),
            "tls.store",
            "only the TLSStore named default is used, as in Traefik",
        );
    }
    report.flag(
        !spec.parent_refs.is_empty(),
        "parentRefs",
        "multi-layer routing (parentRefs) is not implemented",
    );
    out
}

fn service_ref(report: &mut Report<'_>, service: &ServiceRef) {
    report.flag(
        !service.middlewares.is_empty(),
        "middlewares",
        "service-level middlewares are not implemented; attach them to the route",
    );
    report.flag(
        service
            .scheme
            .as_deref()
            .is_some_and(|s| !s.is_empty() && !SUPPORTED_SCHEMES.contains(&s)),
        "scheme",
        "only the http, https and h2c upstream schemes are supported",
    );
    report.flag(
        service.response_forwarding.is_some(),
        "responseForwarding.flushInterval",
        "not acted on: each chunk of a response is sent on as it arrives (as Traefik's \
         flushInterval -1 does)",
    );
    report.flag(
        is_true(service.node_port_lb),
        "nodePortLB",
        "balancing to node ports is not implemented; endpoints are used",
    );
    report.flag(
        service.passive_health_check.is_some(),
        "passiveHealthCheck",
        "passive health checks are not implemented",
    );
}

/// Fields of a `TraefikService` spec that are set but not acted on by the gateway
/// (`mirroring` and `failover` are not: the translation reads them itself).
pub fn unsupported_in_traefik_service(spec: &TraefikServiceSpec) -> Vec<Unsupported> {
    let mut out = Vec::new();
    if let Some(weighted) = &spec.weighted {
        // `healthCheck` (propagating the children's health) needs no flag: a balancer
        // always reads its children's health.
        for (j, service) in weighted.services.iter().enumerate() {
            service_ref(
                &mut Report {
                    out: &mut out,
                    prefix: format!("spec.weighted.services[{j}]"),
                },
                service,
            );
        }
    }
    out
}

/// Middleware types set in a `Middleware` spec, by their Traefik field name, in spec order.
///
/// A valid Middleware sets exactly one; the caller diagnoses none or several.
pub fn middleware_kinds(spec: &MiddlewareSpec) -> Vec<&'static str> {
    let set = [
        ("addPrefix", spec.add_prefix.is_some()),
        ("stripPrefix", spec.strip_prefix.is_some()),
        ("stripPrefixRegex", spec.strip_prefix_regex.is_some()),
        ("replacePath", spec.replace_path.is_some()),
        ("replacePathRegex", spec.replace_path_regex.is_some()),
        ("chain", spec.chain.is_some()),
        ("ipWhiteList", spec.ip_white_list.is_some()),
        ("ipAllowList", spec.ip_allow_list.is_some()),
        ("headers", spec.headers.is_some()),
        ("encodedCharacters", spec.encoded_characters.is_some()),
        ("errors", spec.errors.is_some()),
        ("rateLimit", spec.rate_limit.is_some()),
        ("redirectRegex", spec.redirect_regex.is_some()),
        ("redirectScheme", spec.redirect_scheme.is_some()),
        ("basicAuth", spec.basic_auth.is_some()),
        ("digestAuth", spec.digest_auth.is_some()),
        ("forwardAuth", spec.forward_auth.is_some()),
        ("inFlightReq", spec.in_flight_req.is_some()),
        ("buffering", spec.buffering.is_some()),
        ("circuitBreaker", spec.circuit_breaker.is_some()),
        ("compress", spec.compress.is_some()),
        ("passTLSClientCert", spec.pass_tls_client_cert.is_some()),
        ("retry", spec.retry.is_some()),
        ("contentType", spec.content_type.is_some()),
        ("grpcWeb", spec.grpc_web.is_some()),
        ("tap", spec.tap.is_some()),
        ("plugin", !spec.plugin.is_empty()),
    ];
    set.into_iter()
        .filter_map(|(name, is_set)| is_set.then_some(name))
        .collect()
}

/// Middleware types the gateway implements (possibly partially; see
/// [`unsupported_in_middleware`] for their unsupported fields).
pub const SUPPORTED_MIDDLEWARE_KINDS: [&str; 24] = [
    "addPrefix",
    "stripPrefix",
    "stripPrefixRegex",
    "replacePath",
    "replacePathRegex",
    "redirectScheme",
    "redirectRegex",
    "headers",
    "basicAuth",
    "digestAuth",
    "passTLSClientCert",
    "contentType",
    "ipAllowList",
    "ipWhiteList",
    "rateLimit",
    "inFlightReq",
    "chain",
    "compress",
    "retry",
    "errors",
    "forwardAuth",
    "circuitBreaker",
    "buffering",
    "grpcWeb",
];

/// Attempts a `retry` middleware gets at most: the first and the data plane's 16 retries.
pub const MAX_RETRY_ATTEMPTS: i64 = 17;

/// Fields of a `Middleware` spec that are set but not acted on by the gateway.
pub fn unsupported_in_middleware(spec: &MiddlewareSpec) -> Vec<Unsupported> {
    let mut out = Vec::new();
    for kind in middleware_kinds(spec) {
        if !SUPPORTED_MIDDLEWARE_KINDS.contains(&kind) {
            out.push(Unsupported {
                field: format!("spec.{kind}"),
                reason: "middleware type is not implemented",
            });
        }
    }
    let mut report = Report {
        out: &mut out,
        prefix: "spec.stripPrefix".to_owned(),
    };
    if let Some(strip) = &spec.strip_prefix {
        report.flag(
            strip.force_slash.is_some(),
            "forceSlash",
            "forceSlash is deprecated in Traefik and not implemented",
        );
    }
    if let Some(headers) = &spec.headers {
        report.prefix = "spec.headers".to_owned();
        unsupported_headers(&mut report, headers);
    }
    if let Some(auth) = &spec.forward_auth {
        report.prefix = "spec.forwardAuth".to_owned();
        const REASON: &str = "not implemented";
        report.flag(
            auth.tls.is_some()
                && auth
                    .address
                    .as_deref()
                    .is_some_and(|a| a.trim_start().starts_with("http://")),
            "tls",
            "applies to an https address only; this one is http",
        );
        report.flag(
            auth.tls.as_ref().is_some_and(|t| t.ca_optional.is_some()),
            "tls.caOptional",
            "deprecated in Traefik and without effect: whether a client certificate is \
             required is the authentication server's choice",
        );
        report.flag(
            !auth.add_auth_cookies_to_response.is_empty(),
            "addAuthCookiesToResponse",
            REASON,
        );
        report.flag(is_true(auth.forward_body), "forwardBody", REASON);
        report.flag(auth.max_body_size.is_some(), "maxBodySize", REASON);
        report.flag(
            has_text(auth.header_field.as_deref()),
            "headerField",
            REASON,
        );
        report.flag(
            is_true(auth.preserve_location_header),
            "preserveLocationHeader",
            REASON,
        );
        report.flag(
            is_true(auth.preserve_request_method),
            "preserveRequestMethod",
            REASON,
        );
        report.flag(
            auth.max_response_body_size.is_some(),
            "maxResponseBodySize",
            REASON,
        );
    }
    if let Some(content_type) = &spec.content_type {
        // Detection needs the body's first bytes before the response header is sent,
        // which the proxy's phases do not allow: the middleware only keeps Traverse's
        // default, never adding a Content-Type.
        const NO_DETECTION: &str = "Content-Type detection is not implemented: a response without a Content-Type keeps having none";
        // Unset, Traefik v3 detects too.
        if content_type.auto_detect != Some(false) {
            report.out.push(Unsupported {
                field: "spec.contentType.autoDetect".to_owned(),
                reason: NO_DETECTION,
            });
        }
    }
    if let Some(errors) = &spec.errors {
        report.prefix = "spec.errors".to_owned();
        report.flag(
            !errors.status_rewrites.is_empty(),
            "statusRewrites",
            "not implemented: the upstream's status is kept",
        );
        if let Some(service) = &errors.service {
            report.prefix = "spec.errors.service".to_owned();
            service_ref(&mut report, service);
        }
    }
    if let Some(buffering) = &spec.buffering {
        report.prefix = "spec.buffering".to_owned();
        const STREAMED: &str = "not acted on: bodies stream through, counted, never held";
        report.flag(
            buffering.mem_request_body_bytes.is_some(),
            "memRequestBodyBytes",
            STREAMED,
        );
        report.flag(
            buffering.mem_response_body_bytes.is_some(),
            "memResponseBodyBytes",
            STREAMED,
        );
        report.flag(
            buffering.retry_expression.is_some(),
            "retryExpression",
            "not implemented: a request body is not kept for replay (see the retry middleware)",
        );
    }
    if let Some(retry) = &spec.retry {
        report.prefix = "spec.retry".to_owned();
        report.flag(
            retry.attempts.is_some_and(|a| a > MAX_RETRY_ATTEMPTS),
            "attempts",
            "more than 17 attempts are not made (the data plane's limit of 16 retries)",
        );
        const REASON: &str = "not implemented: only network errors are retried, within attempts";
        report.flag(retry.timeout.is_some(), "timeout", REASON);
        report.flag(
            retry.max_request_body_bytes.is_some(),
            "maxRequestBodyBytes",
            REASON,
        );
        report.flag(!retry.status.is_empty(), "status", REASON);
        report.flag(
            retry.disable_retry_on_network_error.is_some(),
            "disableRetryOnNetworkError",
            REASON,
        );
        report.flag(
            retry.retry_non_idempotent_method.is_some(),
            "retryNonIdempotentMethod",
            REASON,
        );
    }
    if let Some(limit) = &spec.rate_limit {
        report.prefix = "spec.rateLimit".to_owned();
        report.flag(
            limit.redis.is_some(),
            "redis",
            "buckets shared in Redis are not implemented; each gateway keeps its own",
        );
    }
    out
}

fn unsupported_headers(report: &mut Report<'_>, h: &Headers) {
    const REASON: &str =
        "deprecated in Traefik and not implemented; use a redirectScheme or redirectRegex middleware";
    let set = [
        ("sslRedirect", is_true(h.ssl_redirect)),
        ("sslTemporaryRedirect", is_true(h.ssl_temporary_redirect)),
        ("sslHost", has_text(h.ssl_host.as_deref())),
        ("sslForceHost", is_true(h.ssl_force_host)),
    ];
    for (field, is_set) in set {
        report.flag(is_set, field, REASON);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use crate::ServiceKind;

    use super::*;
    use crate::ingress_route::{MiddlewareRef, Route, Tls};
    use crate::middleware::{AddPrefix, BasicAuth, RateLimit, StripPrefix};
    use crate::IntOrString;

    fn fields(found: &[Unsupported]) -> Vec<&str> {
        found.iter().map(|u| u.field.as_str()).collect()
    }

    fn service(name: &str) -> ServiceRef {
        ServiceRef {
            name: name.to_owned(),
            kind: None,
            namespace: None,
            middlewares: Vec::new(),
            sticky: None,
            port: Some(IntOrString::Int(80)),
            scheme: None,
            strategy: None,
            pass_host_header: None,
            response_forwarding: None,
            servers_transport: None,
            weight: None,
            native_lb: None,
            node_port_lb: None,
            health_check: None,
            passive_health_check: None,
        }
    }

    fn route(services: Vec<ServiceRef>) -> Route {
        Route {
            r#match: "Host(`a.example`)".to_owned(),
            kind: None,
            priority: None,
            syntax: None,
            services,
            middlewares: Vec::new(),
            observability: None,
        }
    }

    fn spec(routes: Vec<Route>) -> IngressRouteSpec {
        IngressRouteSpec {
            ingress_class_name: None,
            entry_points: Vec::new(),
            routes,
            tls: None,
            parent_refs: Vec::new(),
        }
    }

    #[test]
    fn supported_ingress_route_has_no_findings() {
        let mut svc = service("web");
        svc.namespace = Some("apps".to_owned());
        svc.kind = Some(ServiceKind::Service);
        svc.port = Some(IntOrString::String("http".to_owned()));
        svc.weight = Some(3);
        svc.scheme = Some("h2c".to_owned());
        svc.pass_host_header = Some(false);
        svc.native_lb = Some(false);
        svc.node_port_lb = Some(false);
        let mut r = route(vec![svc]);
        r.priority = Some(10);
        r.syntax = Some("v3".to_owned());
        r.middlewares = vec![MiddlewareRef {
            name: "strip".to_owned(),
            namespace: None,
        }];
        let mut s = spec(vec![r]);
        s.entry_points = vec!["web".to_owned()];
        assert_eq!(unsupported_in_ingress_route(&s), Vec::new());
    }

    #[test]
    fn unsupported_ingress_route_fields_have_exact_paths() {
        let mut second = service("other");
        second.kind = Some(ServiceKind::TraefikService);
        second.sticky = Some(Default::default());
        second.scheme = Some("ftp".to_owned());
        second.native_lb = Some(true);
        second.strategy = Some(String::new());
        second.response_forwarding = Some(Default::default());
        let mut r1 = route(vec![service("web"), second]);
        r1.observability = Some(Default::default());
        let mut s = spec(vec![route(vec![service("a")]), r1]);
        s.tls = Some(Tls {
            secret_name: Some("served".to_owned()),
            cert_resolver: Some("acme".to_owned()),
            ..Tls::default()
        });
        s.ingress_class_name = Some("traefik".to_owned());
        let found = unsupported_in_ingress_route(&s);
        assert_eq!(
            fields(&found),
            [
                "spec.ingressClassName",
                "spec.routes[1].observability",
                "spec.routes[1].services[1].scheme",
                "spec.routes[1].services[1].responseForwarding.flushInterval",
                "spec.tls.certResolver",
            ]
        );
        assert!(found.iter().all(|u| !u.reason.is_empty()));
        assert_eq!(
            found[3].to_string(),
            "spec.routes[1].services[1].responseForwarding.flushInterval: not acted on: each chunk of a response is sent on as it arrives (as Traefik's flushInterval -1 does)"
        );
    }

    #[test]
    fn middleware_kinds_lists_every_set_type() {
        assert!(middleware_kinds(&MiddlewareSpec::default()).is_empty());
        let spec = MiddlewareSpec {
            add_prefix: Some(AddPrefix::default()),
            rate_limit: Some(RateLimit {
                average: Some(10),
                ..Default::default()
            }),
            plugin: BTreeMap::from([("demo".to_owned(), json!({}))]),
            ..Default::default()
        };
        assert_eq!(
            middleware_kinds(&spec),
            ["addPrefix", "rateLimit", "plugin"]
        );
    }

    #[test]
    fn supported_middlewares_have_no_findings() {
        let add = MiddlewareSpec {
            add_prefix: Some(AddPrefix {
                prefix: Some("/api".to_owned()),
            }),
            ..Default::default()
        };
        assert!(unsupported_in_middleware(&add).is_empty());
        let strip = MiddlewareSpec {
            strip_prefix: Some(StripPrefix {
                prefixes: vec!["/api".to_owned()],
                force_slash: None,
            }),
            ..Default::default()
        };
        assert!(unsupported_in_middleware(&strip).is_empty());
        let headers = MiddlewareSpec {
            headers: Some(Headers {
                custom_request_headers: BTreeMap::from([("X-A".to_owned(), "1".to_owned())]),
                custom_response_headers: BTreeMap::from([("X-B".to_owned(), String::new())]),
                frame_deny: Some(false),
                sts_seconds: Some(0),
                referrer_policy: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(unsupported_in_middleware(&headers).is_empty());
    }

    #[test]
    fn unsupported_middleware_fields_have_exact_paths() {
        let spec = MiddlewareSpec {
            strip_prefix: Some(StripPrefix {
                prefixes: vec!["/x".to_owned()],
                force_slash: Some(true),
            }),
            headers: Some(Headers {
                frame_deny: Some(true),
                sts_seconds: Some(31536000),
                force_sts_header: Some(true),
                custom_browser_xss_value: Some("0".to_owned()),
                ssl_redirect: Some(true),
                ssl_host: Some("a.example".to_owned()),
                ..Default::default()
            }),
            tap: Some(json!({})),
            basic_auth: Some(BasicAuth {
                secret: Some("users".to_owned()),
                ..Default::default()
            }),
            rate_limit: Some(RateLimit {
                redis: Some(json!({"endpoints": ["redis:6379"]})),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(&unsupported_in_middleware(&spec)),
            [
                "spec.tap",
                "spec.stripPrefix.forceSlash",
                "spec.headers.sslRedirect",
                "spec.headers.sslHost",
                "spec.rateLimit.redis",
            ]
        );
    }

    #[test]
    fn retry_fields_beyond_network_errors_are_reported() {
        let spec = MiddlewareSpec {
            retry: Some(crate::middleware::Retry {
                attempts: Some(20),
                status: vec!["500-599".to_owned()],
                retry_non_idempotent_method: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(&unsupported_in_middleware(&spec)),
            [
                "spec.retry.attempts",
                "spec.retry.status",
                "spec.retry.retryNonIdempotentMethod"
            ]
        );
    }
}
