use super::*;
use std::time::Duration;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.yaml")
}

#[test]
fn empty_file_is_all_defaults() {
    let config = parse("").expect("empty config parses");
    assert_eq!(config.role, Role::Standalone);
    assert_eq!(config.cluster.name, "local");
    assert_eq!(config.entry_points["web"].address, "0.0.0.0:8080");
    assert!(config.entry_points["web"].h2c);
    assert_eq!(config.shutdown.grace_period, Duration::from_secs(30));
    assert_eq!(config.admin.address, "127.0.0.1:9000");
    assert!(config.providers.file.is_none());
    config.validate().expect("defaults are valid");
}

#[test]
fn full_file_parses() {
    let config = parse(
        r#"
role: child
cluster: {name: eu-west-1}
entryPoints:
  web:
    address: 127.0.0.1:8081
    h2c: false
    timeouts: {read: 5s, write: 10s, idle: 2m}
    forwardedHeaders: {trustedIPs: [10.0.0.0/8, "::1"]}
  uplink: {address: "127.0.0.1:9443", uplink: true}
admin: {address: 127.0.0.1:9001}
providers:
  file: {directory: ., watch: false, debounce: 50ms}
upstream: {connectTimeout: 1s, readTimeout: 2s, writeTimeout: 3s, idleTimeout: 4s, keepalivePoolSize: 8}
server: {threads: 3}
shutdown: {gracePeriod: 7s}
"#,
    )
    .expect("parses");
    assert_eq!(config.role, Role::Child);
    assert_eq!(config.cluster.name, "eu-west-1");
    let web = &config.entry_points["web"];
    assert!(!web.h2c);
    assert_eq!(web.timeouts.idle, Duration::from_secs(120));
    assert_eq!(web.forwarded_headers.trusted_ips.len(), 2);
    assert!(config.entry_points["uplink"].h2c, "h2c defaults to on");
    assert_eq!(config.upstream.keepalive_pool_size, 8);
    assert_eq!(config.worker_threads(), 3);
    assert_eq!(config.shutdown.grace_period, Duration::from_secs(7));
    let file = config.providers.file.as_ref().expect("file provider");
    assert!(!file.watch);
    assert_eq!(file.debounce, Duration::from_millis(50));
    config.validate().expect("valid");
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let cases = [
        (
            "entryPoint: {}",
            "entryPoint",
            "unknown field `entryPoint`, expected one of",
        ),
        (
            "entryPoints: {web: {address: ':1', h2: true}}",
            "entryPoints.web.h2",
            "unknown field `h2`",
        ),
        (
            "shutdown: {grace: 1s}",
            "shutdown.grace",
            "expected one of gracePeriod",
        ),
        ("shutdown: {gracePeriod: soon}", "shutdown.gracePeriod", ""),
        ("role: grandparent", "role", "grandparent"),
        (
            "upstream: {keepalivePoolSize: -1}",
            "upstream.keepalivePoolSize",
            "",
        ),
    ];
    for (text, key, mention) in cases {
        match parse(text) {
            Err(ConfigError::Parse {
                key: got, message, ..
            }) => {
                assert_eq!(got, key, "{text}");
                assert!(message.contains(mention), "{text}: {message}");
            }
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn validate_names_every_offending_key() {
    let config = parse(
        r#"
cluster: {name: " "}
entryPoints:
  Web: {address: "0.0.0.0:80"}
  other: {address: "nonsense", timeouts: {read: 0s}, maxUriLength: 0}
  dup: {address: "0.0.0.0:80", forwardedHeaders: {trustedIPs: [10.0.0.0/33]}, maxHeaderBytes: 2000000}
admin: {address: "0.0.0.0:80"}
providers: {file: {directory: /definitely/not/here}}
upstream: {connectTimeout: 0s}
"#,
    )
    .expect("parses");
    let problems = config.validate().expect_err("invalid");
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "cluster.name",
        "entryPoints.Web",
        "entryPoints.other.address",
        "entryPoints.other.timeouts.read",
        "entryPoints.other.maxUriLength",
        "entryPoints.dup.maxHeaderBytes",
        "entryPoints.dup.forwardedHeaders.trustedIPs[0]",
        "admin.address",
        "providers.file.directory",
        "upstream.connectTimeout",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    // Two listeners on one address: the later key is blamed and the earlier named.
    let duplicate = problems
        .iter()
        .find(|p| p.key == "entryPoints.Web.address" || p.key == "entryPoints.dup.address")
        .expect("duplicate address reported");
    assert!(duplicate.message.contains("already used"), "{duplicate}");
}

#[test]
fn load_resolves_the_directory_against_the_config_file() {
    let dir = std::env::temp_dir().join(format!("traverse-config-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("manifests")).expect("mkdir");
    let path = dir.join("traverse.yaml");
    std::fs::write(&path, "providers: {file: {directory: manifests}}\n").expect("write");
    let config = Config::load(&path).expect("loads");
    assert_eq!(
        config.providers.file.expect("file").directory,
        dir.join("manifests")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tracing_problems_name_their_keys() {
    let config = parse(
        r#"
tracing:
  sampleRate: 1.5
  traceIdResponseHeader: "x trace"
  otlp:
    http: {endpoint: "collector:4318", headers: {"bad header": x}, timeout: 0s, tls: {cert: c.pem}}
    grpc: {endpoint: "https://c:4317", insecure: true}
  queue: {maxSize: 10, maxBatchSize: 20, scheduleDelay: 0s}
"#,
    )
    .expect("parses");
    let problems = config.validate().expect_err("invalid");
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "tracing.sampleRate",
            "tracing.traceIdResponseHeader",
            "tracing.otlp",
            "tracing.otlp.http.endpoint",
            "tracing.otlp.http.headers",
            "tracing.otlp.http.timeout",
            "tracing.otlp.http.tls",
            "tracing.otlp.grpc.insecure",
            "tracing.queue.maxBatchSize",
            "tracing.queue.scheduleDelay",
        ]
    );
}

#[test]
fn entrypoint_trace_context_policies() {
    let config = parse(
        "entryPoints:\n  edge: {address: '0.0.0.0:80', traceContext: new-and-link}\n  mesh: {address: '0.0.0.0:81'}\n",
    )
    .expect("parses");
    assert_eq!(
        config.entry_points["edge"].trace_context,
        TrustPolicy::NewAndLink
    );
    assert_eq!(
        config.entry_points["mesh"].trace_context,
        TrustPolicy::Continue
    );
    let err = parse("entryPoints:\n  edge: {address: '0.0.0.0:80', traceContext: trust}\n")
        .expect_err("unknown policy");
    assert!(
        err.to_string().contains("entryPoints.edge.traceContext"),
        "{err}"
    );
}

#[test]
fn metrics_and_logs_parse_in_the_seed_shape() {
    let config = parse(
        r#"
metrics:
  prometheus: {addRoutersLabels: true}
  otlp:
    enabled: true
    http: {enabled: true, endpoint: "http://agent:4318/v1/metrics"}
    addEntryPointsLabels: true
    addRoutersLabels: true
    addServicesLabels: false
    serviceName: traverse-parent
    pushInterval: 2s
logs:
  general:
    otlp: {http: {endpoint: "http://agent:4318/v1/logs"}}
  access:
    enabled: true
    format: json
    addInternals: true
    filters: {statusCodes: ["500-599", "404"], minDuration: 10ms}
    fields:
      general: {defaultmode: keep, names: {ClientHost: drop}}
      headers: {defaultmode: drop, names: {Authorization: redact, User-Agent: keep}}
    otlp: {http: {endpoint: "http://agent:4318/v1/logs"}}
"#,
    )
    .expect("parses");
    config.validate().expect("valid");
    assert!(config.metrics.prometheus.families().add_routers_labels);
    let otlp = &config.metrics.otlp;
    assert_eq!(otlp.push_interval, Some(Duration::from_secs(2)));
    assert!(!otlp.families().add_services_labels);
    assert!(otlp.transport().http_enabled().is_some());
    let access = &config.logs.access;
    assert_eq!(access.format, AccessLogFormat::Json);
    assert_eq!(access.fields.general.names["ClientHost"], FieldMode::Drop);
    assert_eq!(access.fields.headers.default_mode, HeaderMode::Drop);
    assert_eq!(
        access.fields.headers.names["Authorization"],
        HeaderMode::Redact
    );
    assert_eq!(access.filters.min_duration, Some(Duration::from_millis(10)));
}

#[test]
fn metrics_and_logs_defaults() {
    let config = parse("").expect("parses");
    assert!(config.metrics.prometheus.enabled);
    assert_eq!(
        config.metrics.otlp.families(),
        MetricFamilies {
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true
        }
    );
    assert!(!config.logs.access.enabled);
    assert_eq!(config.logs.access.format, AccessLogFormat::Common);
    assert_eq!(
        config.logs.access.fields.headers.default_mode,
        HeaderMode::Drop
    );
    assert_eq!(
        config.logs.access.fields.general.default_mode,
        FieldMode::Keep
    );
}

#[test]
fn bad_metrics_and_logs_values_name_their_keys() {
    let config = parse(
        r#"
metrics:
  otlp: {pushInterval: 10ms, http: {endpoint: "agent:4318"}}
logs:
  access:
    bufferSize: 0
    filters: {statusCodes: ["200", "600", "5xx", "300-200"]}
    fields: {headers: {names: {"bad header": keep}}}
"#,
    )
    .expect("parses");
    let keys: Vec<String> = config
        .validate()
        .expect_err("invalid")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "metrics.otlp.http.endpoint",
            "metrics.otlp.pushInterval",
            "logs.access.bufferSize",
            "logs.access.filters.statusCodes[1]",
            "logs.access.filters.statusCodes[2]",
            "logs.access.filters.statusCodes[3]",
            "logs.access.fields.headers.names",
        ]
    );
}

#[test]
fn status_ranges() {
    assert_eq!(parse_status_range("404"), Some((404, 404)));
    assert_eq!(parse_status_range("500-599"), Some((500, 599)));
    assert_eq!(parse_status_range("599-500"), None);
    assert_eq!(parse_status_range("99"), None);
    assert_eq!(parse_status_range("abc"), None);
}

#[test]
fn parent_and_child_parse_with_defaults() {
    let parent = parse(
        r#"
role: parent
cluster: {name: edge}
multicluster:
  children:
    child-a: {address: "child-a.example.com:9443", tls: {ca: ca.pem}}
    child-b: {address: "10.0.0.2:9443"}
"#,
    )
    .expect("parent");
    parent.validate().expect("valid parent");
    let multicluster = &parent.multicluster;
    assert_eq!(multicluster.source_cluster_header, "X-Source-Cluster");
    assert_eq!(multicluster.max_hops, 3);
    assert_eq!(multicluster.health_check.interval, Duration::from_secs(2));
    assert_eq!(multicluster.passive_health_check.failures, 3);
    assert!(multicluster.children["child-a"].tls.is_some());

    let child = parse(
        r#"
role: child
entryPoints:
  web: {address: "127.0.0.1:8080"}
  multicluster: {address: "127.0.0.1:9443", uplink: true}
shutdown: {drainDelay: 5s}
"#,
    )
    .expect("child");
    child.validate().expect("valid child");
    assert!(child.entry_points["multicluster"].uplink);
    assert!(!child.entry_points["web"].uplink);
    assert_eq!(child.shutdown.drain_delay, Duration::from_secs(5));
}

#[test]
fn contradictory_roles_name_their_keys() {
    let problems = |text: &str| -> Vec<String> {
        parse(text)
            .expect("parses")
            .validate()
            .expect_err("invalid")
            .into_iter()
            .map(|p| p.key)
            .collect()
    };
    assert_eq!(problems("role: parent\n"), ["multicluster.children"]);
    assert_eq!(problems("role: child\n"), ["entryPoints"]);
    assert_eq!(
        problems(
            "entryPoints: {up: {address: '127.0.0.1:9443', uplink: true}}\nmulticluster: {children: {a: {address: 'x:1'}}}\n"
        ),
        ["entryPoints.up.uplink", "multicluster.children"]
    );
    assert_eq!(
        problems(
            r#"
role: parent
multicluster:
  maxHops: 0
  sourceClusterHeader: "bad header"
  healthCheck: {interval: 0s}
  passiveHealthCheck: {failures: 0}
  children:
    Bad_Name: {address: "no-port"}
    b: {address: "b:9443", tls: {cert: c.pem}}
"#
        ),
        [
            "multicluster.children.Bad_Name",
            "multicluster.children.Bad_Name.address",
            "multicluster.children.b.tls",
            "multicluster.sourceClusterHeader",
            "multicluster.maxHops",
            "multicluster.healthCheck.interval",
            "multicluster.passiveHealthCheck.failures",
        ]
    );
    assert_eq!(
        problems(
            "role: child\nentryPoints: {up: {address: '127.0.0.1:9443', uplink: true, traceContext: ignore}}\n"
        ),
        ["entryPoints.up.traceContext"]
    );
}

#[test]
fn kubernetes_provider_defaults_and_problems() {
    let config = parse("providers: {kubernetes: {}}\n").expect("parses");
    config.validate().expect("valid");
    let kubernetes = config.providers.kubernetes.as_ref().expect("kubernetes");
    assert!(kubernetes.namespaces.is_empty());
    assert_eq!(kubernetes.throttle, Duration::from_millis(200));
    assert_eq!(kubernetes.leader_election.name, "traverse-status");
    assert_eq!(
        kubernetes.leader_election.lease_duration,
        Duration::from_secs(15)
    );

    let keys: Vec<String> = parse(
        "providers:
  file: {directory: .}
  kubernetes:
    namespaces: [apps, Apps]
    throttle: 2m
    leaderElection: {leaseDuration: 100ms}
",
    )
    .expect("parses")
    .validate()
    .expect_err("invalid")
    .into_iter()
    .map(|p| p.key)
    .collect();
    assert_eq!(
        keys,
        [
            "providers",
            "providers.kubernetes.namespaces[1]",
            "providers.kubernetes.leaderElection.leaseDuration",
            "providers.kubernetes.throttle",
        ]
    );
}

#[test]
fn traefik_entrypoints_with_a_redirect_and_hostless_addresses_are_valid() {
    let config = parse(
        r#"
entryPoints:
  web:
    address: ":8000"
    http:
      redirections:
        entryPoint: {to: websecure, scheme: https, permanent: true}
  websecure:
    address: ":8443"
    tls: {}
"#,
    )
    .expect("parses");
    config.validate().expect("valid");
    let web = &config.entry_points["web"];
    assert_eq!(web.listen_address(), "0.0.0.0:8000");
    let redirect = web
        .http
        .redirections
        .entry_point
        .as_ref()
        .expect("redirect");
    assert_eq!(
        (
            redirect.to.as_str(),
            redirect.scheme.as_str(),
            redirect.permanent
        ),
        ("websecure", "https", true)
    );
    let tls = config.entry_points["websecure"].tls.as_ref().expect("tls");
    assert_eq!((tls.cert.as_ref(), tls.key.as_ref()), (None, None));
}

#[test]
fn a_redirect_to_nowhere_and_half_a_listener_identity_are_named() {
    let config = parse(
        r#"
entryPoints:
  web: {address: ":8000", http: {redirections: {entryPoint: {to: missing, scheme: ftp}}}}
  other: {address: ":8001", http: {redirections: {entryPoint: {to: ":x"}}}}
  secure: {address: ":8443", tls: {cert: c.pem}}
  same: {address: "0.0.0.0:8443"}
"#,
    )
    .expect("parses");
    let problems = config.validate().expect_err("invalid");
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "entryPoints.web.http.redirections.entryPoint.to",
        "entryPoints.web.http.redirections.entryPoint.scheme",
        "entryPoints.other.http.redirections.entryPoint.to",
        "entryPoints.secure.tls",
        // `:8443` is every interface, so `0.0.0.0:8443` is the same listener.
        "entryPoints.secure.address",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
}

#[test]
fn parse_errors_name_the_line_once() {
    let text = "entryPoints:\n  web:\n    address: ':80'\n    adress: ':81'\n";
    let error = parse(text).expect_err("unknown key");
    let shown = error.to_string();
    assert!(
        shown.starts_with("test.yaml:4: entryPoints.web.adress: unknown field"),
        "{shown}"
    );
    assert!(!shown.contains("line"), "one line number: {shown}");

    let error = parse("entryPoints:\n  web: {address: ':80'\nadmin: {}\n").expect_err("not YAML");
    match error {
        // Read as it streams: the key is where the parser had got to.
        ConfigError::Parse { line, key, .. } => {
            assert!(key.starts_with("entryPoints"), "{key}");
            assert!(line.is_some_and(|l| l >= 2), "{line:?}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // YAML 1.2 booleans only: `on` is a string, so a boolean key rejects it by name.
    let error = parse("providers: {file: {directory: d, watch: on}}").expect_err("not a boolean");
    assert!(
        error.to_string().contains("providers.file.watch"),
        "{error}"
    );
}
