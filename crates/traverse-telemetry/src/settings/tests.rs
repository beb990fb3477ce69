use std::collections::HashMap;

use opentelemetry::Value;

use super::*;

fn config(yaml: &str) -> Config {
    let config = Config::parse(yaml, "test.yaml").expect("parse");
    config.validate().expect("valid");
    config
}

fn resolve_with(yaml: &str, vars: &[(&str, &str)]) -> Result<Option<TraceSettings>, Vec<Problem>> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    resolve(&config(yaml), &|name| vars.get(name).cloned()).map(|t| t.traces)
}

fn settings(yaml: &str, vars: &[(&str, &str)]) -> TraceSettings {
    resolve_with(yaml, vars)
        .expect("resolves")
        .expect("tracing enabled")
}

fn resource(settings: &TraceSettings, key: &str) -> Option<String> {
    settings
        .resource
        .get(&opentelemetry::Key::from(key.to_owned()))
        .map(|v: Value| v.to_string())
}

fn problem_keys(result: Result<Option<TraceSettings>, Vec<Problem>>) -> Vec<String> {
    result
        .expect_err("problems")
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn off_without_configuration_or_endpoint_variables() {
    assert!(resolve_with("", &[]).expect("ok").is_none());
    assert!(resolve_with("", &[("OTEL_SERVICE_NAME", "x")])
        .expect("ok")
        .is_none());
}

#[test]
fn seed_values_resolve_to_http_protobuf() {
    let s = settings(
        "cluster: {name: eu-1}
role: parent
multicluster: {children: {child-a: {address: 'child-a:9443'}}}
tracing:
  otlp:
    enabled: true
    http:
      enabled: true
      endpoint: http://datadog-agent.datadog.svc.cluster.local:4318/v1/traces
  serviceName: traefik-hub-parent
  resourceAttributes:
    env: dev
    deployment.environment: dev
  addInternals: true
  sampleRate: 1.0
",
        &[],
    );
    assert_eq!(s.exporter.protocol, Protocol::HttpProtobuf);
    assert_eq!(
        s.exporter.endpoint,
        "http://datadog-agent.datadog.svc.cluster.local:4318/v1/traces"
    );
    assert!(s.add_internals);
    assert_eq!(
        resource(&s, "service.name").as_deref(),
        Some("traefik-hub-parent")
    );
    assert_eq!(resource(&s, "k8s.cluster.name").as_deref(), Some("eu-1"));
    assert_eq!(resource(&s, "traverse.role").as_deref(), Some("parent"));
    assert_eq!(
        resource(&s, "deployment.environment").as_deref(),
        Some("dev")
    );
    assert_eq!(resource(&s, "env").as_deref(), Some("dev"));
    assert_eq!(
        resource(&s, "service.instance.id").map(|i| i.len()),
        Some(36)
    );
}

#[test]
fn endpoint_variables_enable_tracing_and_the_base_gets_the_signal_path() {
    let s = settings("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]);
    assert_eq!(s.exporter.protocol, Protocol::HttpProtobuf);
    assert_eq!(s.exporter.endpoint, "http://c:4318/v1/traces");

    let s = settings(
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/custom"),
        ],
    );
    assert_eq!(
        s.exporter.endpoint, "http://t:4318/custom",
        "signal-specific wins, as is"
    );

    let s = settings(
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    );
    assert_eq!(s.exporter.protocol, Protocol::Grpc);
    assert_eq!(
        s.exporter.endpoint, "http://c:4317",
        "gRPC takes the base as is"
    );
}

#[test]
fn configuration_wins_over_variables() {
    let s = settings(
        "tracing:
  serviceName: from-config
  sampleRate: 0.25
  resourceAttributes: {team: config}
  otlp:
    http:
      endpoint: http://config:4318/v1/traces
      headers: {authorization: config}
      timeout: 2s
",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=env,x-env=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=env,region=eu%2Dwest"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
    );
    assert_eq!(s.exporter.protocol, Protocol::HttpProtobuf);
    assert_eq!(s.exporter.endpoint, "http://config:4318/v1/traces");
    assert_eq!(
        s.exporter.headers,
        vec![
            ("authorization".to_owned(), "config".to_owned()),
            ("x-env".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(s.exporter.timeout, Duration::from_secs(2));
    assert_eq!(resource(&s, "service.name").as_deref(), Some("from-config"));
    assert_eq!(resource(&s, "team").as_deref(), Some("config"));
    assert_eq!(
        resource(&s, "region").as_deref(),
        Some("eu-west"),
        "percent-decoded"
    );
    assert!(
        matches!(s.sampler, Sampler::ParentBased(_)),
        "{:?}",
        s.sampler
    );
}

#[test]
fn variables_fill_what_configuration_leaves_unset() {
    let s = settings(
        "tracing: {otlp: {http: {}}}",
        &[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://env:4318/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500"),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ],
    );
    assert_eq!(s.exporter.endpoint, "http://env:4318/v1/traces");
    assert_eq!(s.exporter.timeout, Duration::from_millis(1500));
    assert_eq!(resource(&s, "service.name").as_deref(), Some("from-env"));
    assert!(matches!(s.sampler, Sampler::TraceIdRatioBased(r) if r == 0.5));
}

#[test]
fn grpc_endpoint_without_scheme_follows_insecure() {
    let s = settings(
        "tracing: {otlp: {grpc: {endpoint: 'collector:4317', insecure: true}}}",
        &[],
    );
    assert_eq!(s.exporter.protocol, Protocol::Grpc);
    assert_eq!(s.exporter.endpoint, "http://collector:4317");
    let s = settings("tracing: {otlp: {grpc: {endpoint: 'collector:4317'}}}", &[]);
    assert_eq!(s.exporter.endpoint, "https://collector:4317");
}

#[test]
fn explicit_disable_wins_and_variables_can_disable() {
    assert!(resolve_with(
        "tracing: {otlp: {enabled: false, http: {endpoint: 'http://c/v1/traces'}}}",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c")]
    )
    .expect("ok")
    .is_none());
    assert!(resolve_with(
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_SDK_DISABLED", "true")
        ]
    )
    .expect("ok")
    .is_none());
    assert!(resolve_with(
        "tracing: {otlp: {enabled: true}}",
        &[("OTEL_SDK_DISABLED", "true")]
    )
    .expect("ok")
    .is_some());
}

#[test]
fn bad_variables_are_reported_by_name() {
    assert_eq!(
        problem_keys(resolve_with(
            "tracing: {otlp: {enabled: true}}",
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
                ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ]
        )),
        [
            "OTEL_RESOURCE_ATTRIBUTES",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_TRACES_SAMPLER_ARG",
        ]
    );
    assert_eq!(
        problem_keys(resolve_with(
            "tracing: {otlp: {enabled: true}}",
            &[("OTEL_TRACES_SAMPLER", "jaeger_remote")]
        )),
        ["OTEL_TRACES_SAMPLER"]
    );
}

#[test]
fn compression_from_the_file_or_the_variables() {
    let s = settings(
        "tracing: {otlp: {grpc: {endpoint: 'http://c:4317', compression: gzip}}}",
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "none")],
    );
    assert_eq!(s.exporter.compression, Compression::Gzip, "the file wins");
    let s = settings(
        "tracing: {otlp: {enabled: true}}",
        &[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ],
    );
    assert_eq!(
        s.exporter.compression,
        Compression::Gzip,
        "the signal's variable wins"
    );
    let s = settings("tracing: {otlp: {enabled: true}}", &[]);
    assert_eq!(s.exporter.compression, Compression::None);
    assert_eq!(
        problem_keys(resolve_with(
            "tracing: {otlp: {enabled: true}}",
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")]
        )),
        ["OTEL_EXPORTER_OTLP_COMPRESSION"]
    );
}

#[test]
fn key_value_lists() {
    assert_eq!(
        parse_key_values(" a = 1 ,b=x%3Dy,, ").expect("ok"),
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x=y".to_owned())
        ]
    );
    assert!(parse_key_values("=1").is_err());
    assert!(parse_key_values("a=%4").is_err());
}

fn telemetry(yaml: &str, vars: &[(&str, &str)]) -> TelemetrySettings {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    resolve(&config(yaml), &|name| vars.get(name).cloned()).expect("resolves")
}

#[test]
fn metrics_push_follows_the_generic_endpoint_with_its_own_path() {
    let settings = telemetry("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://agent:4318/")]);
    let push = settings.metrics_push.expect("push on");
    assert_eq!(push.exporter.endpoint, "http://agent:4318/v1/metrics");
    assert_eq!(push.interval, Duration::from_secs(10));
    // Logs are only exported when configured, not by the generic variable alone.
    assert!(settings.general_logs.is_none());
    assert!(settings.access_logs.is_none());
}

#[test]
fn metrics_push_configuration_wins_over_variables() {
    let settings = telemetry(
        r#"
metrics:
  otlp:
    grpc: {endpoint: "agent:4317", insecure: true}
    pushInterval: 3s
    serviceName: gw-metrics
    addRoutersLabels: true
"#,
        &[
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://other:4318/v1/metrics",
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
        ],
    );
    let push = settings.metrics_push.expect("push on");
    assert_eq!(push.exporter.protocol, Protocol::Grpc);
    assert_eq!(push.exporter.endpoint, "http://agent:4317");
    assert_eq!(push.interval, Duration::from_secs(3));
    assert_eq!(push.service_name.as_deref(), Some("gw-metrics"));
    assert!(push.families.add_routers_labels);
}

#[test]
fn metrics_push_interval_and_off_switch_from_variables() {
    let vars = [
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://agent:4318/v1/metrics",
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "2500"),
    ];
    let push = telemetry("", &vars).metrics_push.expect("push on");
    assert_eq!(push.exporter.endpoint, "http://agent:4318/v1/metrics");
    assert_eq!(push.interval, Duration::from_millis(2500));
    let off = telemetry(
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://agent:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ],
    );
    assert!(off.metrics_push.is_none());
    assert!(off.traces.is_some());
}

#[test]
fn log_signals_share_the_resource_and_take_their_own_endpoints() {
    let settings = telemetry(
        r#"
cluster: {name: eu-1}
tracing: {serviceName: gw}
logs:
  general:
    otlp: {http: {endpoint: "http://agent:4318/v1/logs"}}
  access:
    otlp: {enabled: true}
"#,
        &[(
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "http://logs:4318/v1/logs",
        )],
    );
    let general = settings.general_logs.expect("general logs on");
    assert_eq!(general.exporter.endpoint, "http://agent:4318/v1/logs");
    let access = settings.access_logs.expect("access logs on");
    assert_eq!(access.exporter.endpoint, "http://logs:4318/v1/logs");
    for resource in [&general.resource, &access.resource] {
        let get = |key: &str| resource.get(&opentelemetry::Key::from(key.to_owned()));
        assert_eq!(get("service.name"), Some(Value::from("gw")));
        assert_eq!(get("k8s.cluster.name"), Some(Value::from("eu-1")));
    }
}

#[test]
fn bad_metric_interval_variable_is_named() {
    let vars: HashMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://agent:4318"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "10"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let problems = resolve(&config(""), &|name| vars.get(name).cloned()).expect_err("rejected");
    assert_eq!(problems[0].key, "OTEL_METRIC_EXPORT_INTERVAL");
}
