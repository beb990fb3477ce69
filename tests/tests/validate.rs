//! `traverse validate` and `traverse version`, run as commands.

use std::path::Path;
use std::process::{Command, Output};

use traverse_e2e::gateway::{binary, write_config_dir};

const CONFIG: &str = "entryPoints:
  web:
    address: 127.0.0.1:8080
admin:
  address: 127.0.0.1:9000
providers:
  file:
    directory: manifests
";

const BACKEND: &str = "apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  ports:
    - {name: http, port: 80}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  labels:
    kubernetes.io/service-name: app
addressType: IPv4
ports:
  - {name: http, port: 8081}
endpoints:
  - addresses: [\"127.0.0.1\"]
";

const ROUTE: &str = "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: app
spec:
  routes:
    - match: PathPrefix(`/`)
      services: [{name: app, port: 80}]
";

fn run_validate(config: &Path, strict: bool) -> Output {
    let mut command = Command::new(binary());
    command
        .arg("validate")
        .arg("--config")
        .arg(config)
        .env_remove("TRAVERSE_CONFIG");
    // The developer's own OTEL_* variables would change what is validated.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    if strict {
        command.arg("--strict");
    }
    command.output().expect("running traverse validate")
}

/// Validates a config and manifests; returns (exit code, stdout, stderr).
fn validate(
    config: &str,
    manifests: &[(&str, &str)],
    strict: bool,
) -> (Option<i32>, String, String) {
    let dir = write_config_dir(config, manifests);
    let output = run_validate(&dir.path().join("traverse.yaml"), strict);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_mentions(text: &str, needles: &[&str], context: &str) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "{context}: expected {needle:?} in:\n{text}"
        );
    }
}

#[test]
fn valid_configuration_passes() {
    let (code, stdout, stderr) = validate(CONFIG, &[("backend", BACKEND), ("route", ROUTE)], true);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_mentions(&stdout, &["1 routes", "0 errors", "0 warnings"], "summary");
}

#[test]
fn broken_manifests_fail_naming_file_object_and_field() {
    let bad_rule = ROUTE.replace("PathPrefix(`/`)", "PathPrefix(`/`) && Host(");
    let bad_port = ROUTE.replace("port: 80}", "port: 70000}");
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "malformed.yaml",
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: [unclosed\n",
            &["malformed.yaml", "invalid YAML"],
        ),
        (
            "gadget.yaml",
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: thing\n",
            &[
                "gadget.yaml",
                "Gadget default/thing",
                "not a kind Traverse reads",
            ],
        ),
        (
            "rule.yaml",
            &bad_rule,
            &[
                "rule.yaml",
                "IngressRoute default/app",
                "spec.routes[0].match",
                "column",
            ],
        ),
        (
            "port.yaml",
            &bad_port,
            &[
                "port.yaml",
                "IngressRoute default/app",
                "spec.routes[0].services[0].port",
                "70000",
            ],
        ),
    ];
    for (file, text, mentions) in cases {
        let (code, stdout, stderr) = validate(CONFIG, &[("backend", BACKEND), (file, text)], false);
        assert_eq!(
            code,
            Some(1),
            "{file} must fail validation; stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert_mentions(&stderr, mentions, file);
        assert_mentions(&stderr, &["error"], file);
    }
}

#[test]
fn diagnostics_point_at_the_fields_own_line() {
    // ROUTE is eight lines, so the second document starts on line 10.
    let routes = format!(
        "{ROUTE}---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: second\nspec:\n  routes:\n    - match: PathPrefix(`/b`)\n      services:\n        - name: ghost\n          port: 80\n          weight: 1\n          stickyy: {{cookie: {{}}}}\n"
    );
    // The second document breaks on line 14, where `namespace` is indented under a scalar.
    let broken = format!(
        "{ROUTE}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   namespace: y\n"
    );
    let (code, stdout, stderr) = validate(
        CONFIG,
        &[
            ("backend", BACKEND),
            ("route", &routes),
            ("broken", &broken),
        ],
        false,
    );
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_mentions(
        &stderr,
        &[
            // Translating: the missing Service, at its name's line.
            "route.yaml:18: IngressRoute default/second: spec.routes[0].services[0].name",
            // Reading: the unknown field, at its own line.
            "route.yaml:21: IngressRoute default/second: spec.routes[0].services[0].stickyy",
            "broken.yaml:14: invalid YAML: ",
        ],
        "lines",
    );
    let syntax = stderr
        .lines()
        .find(|l| l.contains("invalid YAML"))
        .expect("the syntax error");
    assert!(
        !syntax.contains("line"),
        "the line is given once, counted from the file's start: {syntax}"
    );
}

#[test]
fn unknown_config_key_fails_naming_the_key() {
    let config = CONFIG.replace("address: 127.0.0.1:8080", "adress: 127.0.0.1:8080");
    let (code, stdout, stderr) = validate(&config, &[("route", ROUTE)], false);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_mentions(
        &stderr,
        &["traverse.yaml", "entryPoints.web.adress", "unknown field"],
        "unknown key",
    );
}

#[test]
fn invalid_config_value_fails_naming_the_key() {
    let config = CONFIG.replace("address: 127.0.0.1:9000", "address: nowhere");
    let (code, _, stderr) = validate(&config, &[("route", ROUTE)], false);
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert_mentions(
        &stderr,
        &["traverse.yaml", "admin.address", "nowhere"],
        "bad address",
    );
}

#[test]
fn strict_turns_warnings_into_failure() {
    let ghost = ROUTE.replace("name: app, port: 80", "name: ghost, port: 80");
    let manifests = [("backend", BACKEND), ("route", ghost.as_str())];

    let (code, stdout, stderr) = validate(CONFIG, &manifests, false);
    assert_eq!(
        code,
        Some(0),
        "a missing Service is only a warning; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_mentions(
        &stderr,
        &[
            "warning",
            "route.yaml",
            "spec.routes[0].services[0].name",
            "ghost",
        ],
        "missing service",
    );
    assert_mentions(&stdout, &["0 errors", "1 warnings"], "summary");

    let (code, _, stderr) = validate(CONFIG, &manifests, true);
    assert_eq!(
        code,
        Some(1),
        "--strict fails on warnings; stderr:\n{stderr}"
    );
    assert_mentions(&stderr, &["ghost"], "missing service, strict");
}

#[test]
fn version_prints_the_package_version() {
    let output = Command::new(binary())
        .arg("version")
        .output()
        .expect("running traverse version");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("traverse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn standalone_example_validates() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("standalone")
        .join("traverse.yaml");
    let output = run_validate(&example, true);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}:\nstdout:\n{}\nstderr:\n{}",
        example.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_mentions(
        &String::from_utf8_lossy(&output.stdout),
        &["2 routes", "0 errors"],
        "example summary",
    );
}

#[test]
fn tracing_settings_are_checked_with_the_environment() {
    let dir = write_config_dir(
        &format!("{CONFIG}tracing:\n  sampleRate: 2\n"),
        &[("app", BACKEND)],
    );
    let output = run_validate(&dir.path().join("traverse.yaml"), false);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        &stderr,
        &["tracing.sampleRate", "between 0.0 and 1.0"],
        "config",
    );

    let dir = write_config_dir(CONFIG, &[("app", BACKEND)]);
    let output = Command::new(binary())
        .args(["validate", "--config"])
        .arg(dir.path().join("traverse.yaml"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .output()
        .expect("running traverse validate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        &stderr,
        &["OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"],
        "environment",
    );
}
