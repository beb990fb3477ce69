//! The Helm chart `charts/traverse`, rendered offline by the Helm SDK (Helm's Go library,
//! driven by `tests/helm/render.py` through helm-python-sdk): it lints strictly; it renders
//! for a parent, a child and the Datadog example; every rendered manifest passes
//! `kubernetes-validate --strict`; the gateway configuration it renders passes
//! `traverse validate`; and contradictory values fail rendering with a message naming the
//! key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;
use traverse_e2e::gateway::binary;
use traverse_e2e::tool;

const KUBERNETES: &str = "1.30.0";
/// `render.py`'s defaults: release `traverse` in namespace `traverse`.
const NAMESPACE: &str = "traverse";

const PARENT: &str = "values-parent.yaml";
const CHILD: &str = "values-child.yaml";
const DATADOG: &str = "values-child-datadog.yaml";
const AGENT: &str = "http://datadog-agent.datadog.svc.cluster.local:4318";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("charts").join("traverse")
}

/// Runs `render.py COMMAND CHART [OUT] -f examples/helm/FILE... --set-json JSON...`.
fn render_py(command: &str, out: Option<&Path>, files: &[&str], json: &[&str]) -> Output {
    let mut run = Command::new(tool("traverse-python"));
    run.arg(root().join("tests").join("helm").join("render.py"))
        .arg(command)
        .arg(chart());
    if let Some(out) = out {
        run.arg(out);
    }
    for file in files {
        run.arg("-f")
            .arg(root().join("examples").join("helm").join(file));
    }
    for text in json {
        run.arg("--set-json").arg(text);
    }
    run.output().expect(
        "running tests/helm/render.py with traverse-python (scripts/install-prereqs.sh \
         installs helm-python-sdk into its virtualenv)",
    )
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The manifests of one rendering, one document per file.
struct Rendered {
    _dir: tempfile::TempDir,
    files: Vec<(PathBuf, Value)>,
    notes: String,
}

/// Renders the chart; `Err` carries Helm's message.
fn render(files: &[&str], json: &[&str]) -> Result<Rendered, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("manifests");
    let output = render_py("render", Some(&out), files, json);
    if !output.status.success() {
        return Err(text(&output));
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("rendered manifests")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let files = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read manifest");
            let value: Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            (path, value)
        })
        .collect();
    let notes = std::fs::read_to_string(out.join("NOTES.txt")).unwrap_or_default();
    Ok(Rendered {
        _dir: dir,
        files,
        notes,
    })
}

fn rendered(files: &[&str], json: &[&str]) -> Rendered {
    render(files, json).unwrap_or_else(|error| panic!("rendering {files:?} {json:?}: {error}"))
}

/// Rendering fails; returns Helm's message.
fn refused(json: &str) -> String {
    match render(&[], &[json]) {
        Ok(_) => panic!("rendering with {json} succeeded; a contradiction must fail"),
        Err(error) => error,
    }
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map_or(&[], Vec::as_slice)
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.files
            .iter()
            .map(|(_, doc)| doc)
            .filter(|doc| str_of(&doc["kind"]) == kind)
            .collect()
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind)
            .into_iter()
            .find(|doc| str_of(&doc["metadata"]["name"]) == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name).unwrap_or_else(|| {
            let names: Vec<String> = self
                .files
                .iter()
                .map(|(path, _)| path.display().to_string())
                .collect();
            panic!("no {kind} {name} among {names:#?}")
        })
    }

    fn config_text(&self) -> String {
        str_of(&self.get("ConfigMap", "traverse")["data"]["traverse.yaml"]).to_owned()
    }

    /// The gateway configuration the chart renders.
    fn config(&self) -> Value {
        serde_yaml::from_str(&self.config_text()).expect("traverse.yaml is YAML")
    }

    fn pod(&self) -> &Value {
        &self.get("Deployment", "traverse")["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = seq(&self.pod()["containers"]);
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    fn container_port(&self, name: &str) -> Option<u64> {
        seq(&self.container()["ports"])
            .iter()
            .find(|port| str_of(&port["name"]) == name)
            .and_then(|port| port["containerPort"].as_u64())
    }

    fn termination_grace_period(&self) -> u64 {
        self.pod()["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds")
    }
}

/// `10s`, `500ms`, `1m30s`, `2h` in whole seconds, rounded up.
fn seconds(duration: &str) -> u64 {
    let mut millis = 0u64;
    let mut number = String::new();
    let mut chars = duration.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = number.parse().expect("a number before the unit");
        number.clear();
        millis += match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                value
            }
            'm' => value * 60_000,
            's' => value * 1000,
            'h' => value * 3_600_000,
            other => panic!("unit {other} in {duration}"),
        };
    }
    assert!(number.is_empty(), "{duration} ends without a unit");
    millis.div_ceil(1000)
}

#[test]
fn the_chart_lints_strictly() {
    for files in [vec![], vec![PARENT], vec![CHILD], vec![DATADOG]] {
        let output = render_py("lint", None, &files, &[]);
        assert!(
            output.status.success(),
            "helm lint --strict with {files:?}:\n{}",
            text(&output)
        );
    }
    // The values schema is part of linting: a misspelt key is an error.
    let output = render_py(
        "lint",
        None,
        &[],
        &[r#"{"tracing": {"otlp": {"htp": {}}}}"#],
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("'htp' not allowed"),
        "{}",
        text(&output)
    );
}

/// Runs kubernetes-validate --strict on every rendered file. A ServiceMonitor has no
/// schema there (it is the Prometheus Operator's); it is checked by hand instead.
fn validate_manifests(rendered: &Rendered) {
    let output = Command::new(tool("kubernetes-validate"))
        .args(["-k", KUBERNETES, "--strict"])
        .args(rendered.files.iter().map(|(path, _)| path))
        .output()
        .expect("running kubernetes-validate (installed by scripts/install-prereqs.sh)");
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    for (path, doc) in &rendered.files {
        let path = path.display().to_string();
        let line = report
            .lines()
            .find(|line| line.contains(&path))
            .unwrap_or_else(|| panic!("no verdict on {path}:\n{report}"));
        if str_of(&doc["kind"]) == "ServiceMonitor" {
            assert!(line.contains("Couldn't find schema"), "{line}");
            service_monitor_is_well_formed(doc);
        } else {
            assert!(
                line.starts_with("INFO") && line.contains("passed"),
                "{line}\n{report}"
            );
        }
    }
}

fn service_monitor_is_well_formed(monitor: &Value) {
    assert_eq!(str_of(&monitor["apiVersion"]), "monitoring.coreos.com/v1");
    let spec = &monitor["spec"];
    assert_eq!(
        str_of(&spec["selector"]["matchLabels"]["app.kubernetes.io/component"]),
        "admin"
    );
    let endpoints = seq(&spec["endpoints"]);
    assert_eq!(endpoints.len(), 1);
    assert_eq!(str_of(&endpoints[0]["port"]), "admin");
    assert_eq!(str_of(&endpoints[0]["path"]), "/metrics");
    assert_eq!(seq(&spec["namespaceSelector"]["matchNames"]).len(), 1);
}

#[test]
fn every_rendered_manifest_validates_strictly() {
    for files in [vec![], vec![PARENT], vec![CHILD], vec![DATADOG]] {
        let rendered = rendered(&files, &[]);
        assert!(rendered.files.len() >= 10, "{files:?}: too few manifests");
        validate_manifests(&rendered);
    }
    // Less common switches: no web entrypoint, listed namespaces with a parent, a
    // NodePort, an access log file, no CRDs.
    let rendered = rendered(
        &[],
        &[r#"{"entryPoints": {"web": {"enabled": false}},
              "logs": {"access": {"enabled": true, "filePath": "/var/log/traverse/access.log"}},
              "podDisruptionBudget": {"minAvailable": 1},
              "crds": {"install": false}}"#],
    );
    validate_manifests(&rendered);
    let rendered = rendered_parent(
        r#"{"service": {"type": "NodePort", "nodePort": 30080},
            "providers": {"kubernetes": {"namespaces": ["apps"]}},
            "metrics": {"prometheus": {"serviceMonitor": {"enabled": true}}}}"#,
    );
    validate_manifests(&rendered);
}

fn rendered_parent(extra: &str) -> Rendered {
    rendered(
        &[],
        &[
            r#"{"role": "parent", "cluster": {"name": "edge"},
                "multicluster": {"children": {"child-a": {"address": "child-a.example.com:9443"}}}}"#,
            extra,
        ],
    )
}

/// A CA and one certificate signed by it, for server and client use, as PEM.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

impl Pki {
    fn new() -> Pki {
        use traverse_e2e::pki::{TestCa, Usage};
        let ca = TestCa::new();
        let leaf = ca.issue(
            "traverse.example.com",
            &[Usage::ServerAuth, Usage::ClientAuth],
        );
        Pki {
            ca: ca.pem.clone(),
            cert: leaf.cert,
            key: leaf.key,
        }
    }
}

/// Every file the gateway configuration names (TLS certificates, keys and roots).
fn config_files(config: &Value) -> Vec<String> {
    let mut files = Vec::new();
    if let Some(entry_points) = config["entryPoints"].as_mapping() {
        for entry_point in entry_points.values() {
            for key in ["cert", "key", "clientCA"] {
                if let Some(path) = entry_point["tls"][key].as_str() {
                    files.push(path.to_owned());
                }
            }
        }
    }
    if let Some(children) = config["multicluster"]["children"].as_mapping() {
        for child in children.values() {
            for key in ["ca", "cert", "key"] {
                if let Some(path) = child["tls"][key].as_str() {
                    files.push(path.to_owned());
                }
            }
        }
    }
    files
}

fn prefix_paths(value: &mut Value, mounts: &[String], dir: &Path) {
    match value {
        Value::String(text) if mounts.iter().any(|m| text.starts_with(&format!("{m}/"))) => {
            *text = format!("{}{text}", dir.display());
        }
        Value::Mapping(map) => map.values_mut().for_each(|v| prefix_paths(v, mounts, dir)),
        Value::Sequence(items) => items.iter_mut().for_each(|v| prefix_paths(v, mounts, dir)),
        _ => {}
    }
}

/// Runs `traverse validate` on the rendered configuration, as the pod would see it: every
/// Secret item the pod mounts is written (as PEM) under a temporary directory at its mount
/// path, and every file the configuration names must be one of those items.
fn traverse_validate(rendered: &Rendered) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new();
    let pod = rendered.pod();
    let mut mounted = BTreeSet::new();
    let mut mounts = Vec::new();
    for mount in seq(&rendered.container()["volumeMounts"]) {
        let mount_path = str_of(&mount["mountPath"]);
        let volume = seq(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume for the mount {mount:?}"));
        if volume["configMap"].is_mapping() {
            assert_eq!(mount_path, "/etc/traverse", "the configuration's directory");
        }
        if !volume["secret"].is_mapping() {
            continue;
        }
        mounts.push(mount_path.to_owned());
        for item in seq(&volume["secret"]["items"]) {
            let path = format!("{mount_path}/{}", str_of(&item["path"]));
            let pem = match str_of(&item["key"]) {
                "ca.crt" => &pki.ca,
                "tls.crt" => &pki.cert,
                "tls.key" => &pki.key,
                other => panic!("unexpected Secret key {other}"),
            };
            let file = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, pem).expect("write PEM");
            mounted.insert(path);
        }
    }
    let mut config = rendered.config();
    for file in config_files(&config) {
        assert!(
            mounted.contains(&file),
            "the configuration names {file}, which no Secret item mounts ({mounted:?})"
        );
    }
    prefix_paths(&mut config, &mounts, dir.path());
    let config_dir = dir.path().join("etc").join("traverse");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let path = config_dir.join("traverse.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).expect("YAML")).expect("write");

    let mut command = Command::new(binary());
    command
        .arg("validate")
        .arg("--config")
        .arg(&path)
        .env_remove("TRAVERSE_CONFIG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("running traverse validate");
    assert!(
        output.status.success(),
        "traverse validate refused the rendered configuration:\n{}\n{}",
        text(&output),
        rendered.config_text()
    );
    text(&output)
}

#[test]
fn the_rendered_configuration_passes_traverse_validate() {
    for files in [vec![], vec![PARENT], vec![CHILD], vec![DATADOG]] {
        let output = traverse_validate(&rendered(&files, &[]));
        assert!(output.contains("configuration is valid"), "{output}");
    }
    // Durations in several forms, TLS on a parent's child with its own CA, every OTLP
    // transport option, access log filters and a file.
    let rendered = rendered_parent(
        r#"{"shutdown": {"drainDelay": "1m30s", "gracePeriod": 45},
            "multicluster": {"tls": {"clientCertSecretName": "parent-client"},
              "children": {"child-b": {"address": "10.1.2.3:9443",
                "tls": {"enabled": true, "caSecretName": "child-b-ca", "serverName": "child-b.example.com"}}},
              "healthCheck": {"interval": 5, "unhealthyThreshold": 3},
              "passiveHealthCheck": {"ejectionTime": "30s"}},
            "upstream": {"readTimeout": 30, "keepalivePoolSize": 128},
            "entryPoints": {"web": {"timeouts": {"idle": 30, "read": "60s"},
              "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8"]}}},
            "providers": {"kubernetes": {"namespaces": ["apps", "blog"], "labelSelector": "team=shop",
              "ingressClass": "traverse", "throttle": "500ms", "allowCrossNamespace": true}},
            "tracing": {"sampleRate": 0.25, "traceIdResponseHeader": "X-Trace-Id",
              "resourceAttributes": {"version": 3},
              "otlp": {"grpc": {"endpoint": "collector:4317", "insecure": true,
                "headers": {"x-token": "abc"}, "timeout": "5s"}},
              "queue": {"scheduleDelay": "200ms", "maxSize": 4096}},
            "metrics": {"otlp": {"grpc": {"enabled": true, "endpoint": "https://collector:4317"},
              "pushInterval": "30s"}},
            "logs": {"general": {"level": "DEBUG"},
              "access": {"enabled": true, "filePath": "/var/log/traverse/access.log",
                "filters": {"statusCodes": [404, "500-599"], "minDuration": "100ms", "retryAttempts": true},
                "fields": {"general": {"names": {"ClientHost": "drop"}},
                  "headers": {"defaultMode": "redact", "names": {"User-Agent": "keep"}}}}}}"#,
    );
    let kubernetes = &rendered.config()["providers"]["kubernetes"];
    assert_eq!(kubernetes["allowCrossNamespace"], Value::Bool(true));
    assert_eq!(str_of(&kubernetes["labelSelector"]), "team=shop");
    let output = traverse_validate(&rendered);
    assert!(output.contains("configuration is valid"), "{output}");
}

#[test]
fn the_role_switches_the_uplink_entrypoint_and_the_children() {
    let child = rendered(&[CHILD], &[]);
    let config = child.config();
    assert_eq!(str_of(&config["role"]), "child");
    assert_eq!(str_of(&config["cluster"]["name"]), "eu-west");
    let uplink = &config["entryPoints"]["multicluster"];
    assert_eq!(uplink["uplink"], Value::Bool(true));
    assert_eq!(str_of(&uplink["address"]), "0.0.0.0:9443");
    assert_eq!(str_of(&uplink["traceContext"]), "", "the default, continue");
    assert_eq!(
        str_of(&uplink["tls"]["clientCA"]),
        "/etc/traverse-tls/parents/ca.crt",
        "mutual TLS with the parents' CA"
    );
    assert_eq!(
        seq(&uplink["forwardedHeaders"]["trustedIPs"]),
        [Value::from("10.20.0.0/16")]
    );
    assert!(config["multicluster"].is_null(), "a child has no children");
    assert!(config["providers"]["kubernetes"].is_mapping());
    // Off unless asked for, as in Traefik: the key is left out.
    assert!(config["providers"]["kubernetes"]["allowCrossNamespace"].is_null());
    assert_eq!(child.container_port("multicluster"), Some(9443));
    let service = child.get("Service", "traverse-uplink");
    let port = &seq(&service["spec"]["ports"])[0];
    assert_eq!(port["port"].as_u64(), Some(9443));
    assert_eq!(str_of(&port["targetPort"]), "multicluster");
    assert_eq!(
        seq(&service["spec"]["loadBalancerSourceRanges"]),
        [Value::from("203.0.113.0/24")]
    );
    assert_eq!(
        str_of(&child.get("Service", "traverse")["spec"]["type"]),
        "ClusterIP"
    );

    let parent = rendered(&[PARENT], &[]);
    let config = parent.config();
    assert_eq!(str_of(&config["role"]), "parent");
    assert_eq!(str_of(&config["cluster"]["name"]), "edge");
    let entry_points: Vec<&str> = config["entryPoints"]
        .as_mapping()
        .expect("entryPoints")
        .keys()
        .map(str_of)
        .collect();
    assert_eq!(
        entry_points,
        ["web", "websecure"],
        "a parent has no uplink entrypoint"
    );
    assert_eq!(
        str_of(&config["entryPoints"]["web"]["traceContext"]),
        "new-and-link"
    );
    let children = config["multicluster"]["children"]
        .as_mapping()
        .expect("children");
    assert_eq!(children.len(), 2);
    let eu_west = &config["multicluster"]["children"]["eu-west"];
    assert_eq!(
        str_of(&eu_west["address"]),
        "traverse-uplink.eu-west.example.com:9443"
    );
    assert_eq!(
        str_of(&eu_west["tls"]["ca"]),
        "/etc/traverse-tls/children/traverse-children-ca/ca.crt"
    );
    assert_eq!(
        str_of(&eu_west["tls"]["cert"]),
        "/etc/traverse-tls/client/tls.crt"
    );
    // A parent reads its own IngressRoutes (those naming Uplinks) from its cluster too.
    assert!(config["providers"]["kubernetes"].is_mapping());
    assert!(parent.find("Service", "traverse-uplink").is_none());
    assert_eq!(parent.container_port("multicluster"), None);
    assert_eq!(parent.container_port("web"), Some(8080));
    assert!(
        !parent.all("ClusterRole").is_empty(),
        "a parent watches too"
    );

    // A child without its own clients: only the uplink entrypoint.
    let uplink_only = rendered(
        &[],
        &[r#"{"entryPoints": {"web": {"enabled": false}, "websecure": {"enabled": false}}}"#],
    );
    let config = uplink_only.config();
    assert!(config["entryPoints"]["web"].is_null());
    assert!(config["entryPoints"]["websecure"].is_null());
    assert!(config["entryPoints"]["multicluster"].is_mapping());
    assert!(uplink_only.find("Service", "traverse").is_none());
    assert_eq!(uplink_only.container_port("web"), None);
    traverse_validate(&uplink_only);

    // Unset cluster name and service name follow the role.
    let defaults = rendered(&[], &[]).config();
    assert_eq!(str_of(&defaults["cluster"]["name"]), "child");
    assert_eq!(
        str_of(&defaults["tracing"]["serviceName"]),
        "traverse-child"
    );
    let parent = rendered_parent("{}").config();
    assert_eq!(str_of(&parent["tracing"]["serviceName"]), "traverse-parent");
}

/// `rules` of every object of `kind` named `name` in docs/kubernetes.md's YAML blocks.
fn documented_rules(kind: &str, name: &str) -> Value {
    let docs = std::fs::read_to_string(root().join("docs").join("kubernetes.md"))
        .expect("docs/kubernetes.md");
    for block in docs.split("```yaml").skip(1) {
        let body = block.split("```").next().unwrap_or("");
        for document in serde_yaml::Deserializer::from_str(body) {
            let Ok(value) = Value::deserialize(document) else {
                continue;
            };
            if str_of(&value["kind"]) == kind && str_of(&value["metadata"]["name"]) == name {
                return value["rules"].clone();
            }
        }
    }
    panic!("docs/kubernetes.md has no {kind} {name}");
}

#[test]
fn rbac_grants_exactly_the_documented_verbs() {
    let watched = documented_rules("ClusterRole", "traverse");
    let lease = documented_rules("Role", "traverse-leader-election");
    // The documented rules are the ones the code needs: list/watch, status patch, events.
    let verbs: BTreeSet<&str> = seq(&watched)
        .iter()
        .flat_map(|rule| seq(&rule["verbs"]).iter().map(str_of))
        .collect();
    assert_eq!(verbs, BTreeSet::from(["create", "list", "patch", "watch"]));

    // Every namespace: a ClusterRole bound to the ServiceAccount.
    let every = rendered(&[], &[]);
    let cluster_roles = every.all("ClusterRole");
    assert_eq!(cluster_roles.len(), 1);
    assert_eq!(
        cluster_roles[0]["rules"], watched,
        "the ClusterRole's rules"
    );
    let binding = every.all("ClusterRoleBinding")[0];
    assert_eq!(
        binding["roleRef"]["name"],
        cluster_roles[0]["metadata"]["name"]
    );
    let subject = &seq(&binding["subjects"])[0];
    assert_eq!(str_of(&subject["kind"]), "ServiceAccount");
    assert_eq!(str_of(&subject["name"]), "traverse");
    assert_eq!(str_of(&subject["namespace"]), NAMESPACE);
    every.get("ServiceAccount", "traverse");
    assert_eq!(str_of(&every.pod()["serviceAccountName"]), "traverse");
    let roles = every.all("Role");
    assert_eq!(roles.len(), 1, "only the Lease's Role");

    // The Lease's Role: in the Lease's namespace, named as the configuration's Lease.
    let config = every.config();
    let election = &config["providers"]["kubernetes"]["leaderElection"];
    let role = every.get("Role", "traverse-leader-election");
    assert_eq!(role["metadata"]["namespace"], election["namespace"]);
    assert_eq!(str_of(&election["namespace"]), NAMESPACE);
    assert_eq!(str_of(&election["name"]), "traverse-status");
    assert_eq!(role["rules"], lease, "the Lease Role's rules");
    let binding = every.get("RoleBinding", "traverse-leader-election");
    assert_eq!(str_of(&binding["roleRef"]["kind"]), "Role");
    assert_eq!(binding["metadata"]["namespace"], election["namespace"]);

    // Listed namespaces: a Role and a RoleBinding in each, no ClusterRole.
    let listed = rendered(&[CHILD], &[]);
    assert!(listed.all("ClusterRole").is_empty());
    assert!(listed.all("ClusterRoleBinding").is_empty());
    assert_eq!(
        seq(&listed.config()["providers"]["kubernetes"]["namespaces"]),
        [Value::from("apps"), Value::from("blog")]
    );
    for namespace in ["apps", "blog"] {
        let role = listed
            .all("Role")
            .into_iter()
            .find(|r| {
                str_of(&r["metadata"]["namespace"]) == namespace
                    && str_of(&r["metadata"]["name"]) == "traverse"
            })
            .unwrap_or_else(|| panic!("no Role in {namespace}"));
        assert_eq!(role["rules"], watched, "the Role in {namespace}");
        let binding = listed
            .all("RoleBinding")
            .into_iter()
            .find(|b| {
                str_of(&b["metadata"]["namespace"]) == namespace
                    && str_of(&b["metadata"]["name"]) == "traverse"
            })
            .unwrap_or_else(|| panic!("no RoleBinding in {namespace}"));
        assert_eq!(str_of(&binding["roleRef"]["kind"]), "Role");
        assert_eq!(
            str_of(&seq(&binding["subjects"])[0]["namespace"]),
            NAMESPACE
        );
    }
    assert_eq!(listed.all("Role").len(), 3, "apps, blog and the Lease's");

    // A Lease elsewhere, under another name.
    let moved = rendered(
        &[],
        &[
            r#"{"providers": {"kubernetes": {"leaderElection": {"name": "gw", "namespace": "ops"}}}}"#,
        ],
    );
    let role = moved.get("Role", "traverse-leader-election");
    assert_eq!(str_of(&role["metadata"]["namespace"]), "ops");
    assert_eq!(seq(&role["rules"][1]["resourceNames"]), [Value::from("gw")]);
    let election = &moved.config()["providers"]["kubernetes"]["leaderElection"];
    assert_eq!(str_of(&election["name"]), "gw");
    assert_eq!(str_of(&election["namespace"]), "ops");

    // rbac.enabled: false leaves RBAC to the user.
    let none = rendered(&[], &[r#"{"rbac": {"enabled": false}}"#]);
    assert!(none.all("ClusterRole").is_empty() && none.all("Role").is_empty());
}

#[test]
fn probes_and_ports_use_the_admin_listener() {
    for files in [vec![PARENT], vec![CHILD], vec![DATADOG]] {
        let rendered = rendered(&files, &[]);
        let container = rendered.container();
        let readiness = &container["readinessProbe"]["httpGet"];
        assert_eq!(str_of(&readiness["path"]), "/readyz");
        assert_eq!(str_of(&readiness["port"]), "admin");
        let liveness = &container["livenessProbe"]["httpGet"];
        assert_eq!(str_of(&liveness["path"]), "/livez");
        assert_eq!(str_of(&liveness["port"]), "admin");
        let config = rendered.config();
        assert_eq!(str_of(&config["admin"]["address"]), "0.0.0.0:9000");
        assert_eq!(rendered.container_port("admin"), Some(9000));
        let admin = rendered.get("Service", "traverse-admin");
        assert_eq!(str_of(&admin["spec"]["type"]), "ClusterIP");
        assert_eq!(
            str_of(&admin["metadata"]["labels"]["app.kubernetes.io/component"]),
            "admin"
        );
        // Every entrypoint listens on its container port.
        for (name, entry_point) in config["entryPoints"].as_mapping().expect("entryPoints") {
            let port: u64 = str_of(&entry_point["address"])
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port");
            assert_eq!(rendered.container_port(str_of(name)), Some(port));
        }
        // The pod is named, and knows its namespace (leader election).
        let env = seq(&container["env"]);
        for (name, field) in [
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ] {
            let variable = env
                .iter()
                .find(|e| str_of(&e["name"]) == name)
                .unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(
                str_of(&variable["valueFrom"]["fieldRef"]["fieldPath"]),
                field
            );
        }
        let args: Vec<&str> = seq(&container["args"]).iter().map(str_of).collect();
        assert_eq!(args, ["run", "--config", "/etc/traverse/traverse.yaml"]);
        assert!(container["resources"]["requests"].is_mapping());
        assert!(container["resources"]["limits"]["memory"].is_string());
    }
    // A different admin port moves the probes' target with it.
    let moved = rendered(&[], &[r#"{"admin": {"port": 9100}}"#]);
    assert_eq!(str_of(&moved.config()["admin"]["address"]), "0.0.0.0:9100");
    assert_eq!(moved.container_port("admin"), Some(9100));
}

#[test]
fn otlp_goes_to_the_datadog_agent_as_in_the_seed() {
    let datadog = rendered(&[DATADOG], &[]);
    let config = datadog.config();
    let tracing = &config["tracing"];
    assert_eq!(
        str_of(&tracing["otlp"]["http"]["endpoint"]),
        format!("{AGENT}/v1/traces")
    );
    assert!(tracing["otlp"]["grpc"].is_null(), "one transport");
    assert_eq!(str_of(&tracing["serviceName"]), "traverse-child");
    assert_eq!(tracing["addInternals"], Value::Bool(true));
    assert_eq!(tracing["sampleRate"].as_f64(), Some(1.0));
    assert_eq!(
        str_of(&tracing["resourceAttributes"]["deployment.environment"]),
        "dev"
    );
    assert_eq!(str_of(&tracing["resourceAttributes"]["env"]), "dev");
    let metrics = &config["metrics"]["otlp"];
    assert_eq!(
        str_of(&metrics["http"]["endpoint"]),
        format!("{AGENT}/v1/metrics")
    );
    assert_eq!(metrics["addRoutersLabels"], Value::Bool(true));
    assert_eq!(str_of(&metrics["serviceName"]), "traverse-child");
    let logs = &config["logs"];
    for signal in ["general", "access"] {
        assert_eq!(
            str_of(&logs[signal]["otlp"]["http"]["endpoint"]),
            format!("{AGENT}/v1/logs"),
            "logs.{signal}"
        );
    }
    let access = &logs["access"];
    assert_eq!(access["enabled"], Value::Bool(true));
    assert_eq!(str_of(&access["format"]), "json");
    assert_eq!(str_of(&access["fields"]["general"]["defaultMode"]), "keep");
    assert_eq!(str_of(&access["fields"]["headers"]["defaultMode"]), "keep");
    assert!(access["filePath"].is_null(), "records go only to the Agent");

    // The seed's additionalArguments and the chart's own values say the same thing.
    let native = rendered(
        &[DATADOG],
        &[&format!(
            r#"{{"additionalArguments": [],
                "logs": {{"general": {{"otlp": {{"http": {{"endpoint": "{AGENT}/v1/logs"}}}}}},
                          "access": {{"otlp": {{"http": {{"endpoint": "{AGENT}/v1/logs"}}}}}}}}}}"#
        )],
    );
    assert_eq!(native.config(), config);

    // The gRPC example: host:port, plaintext.
    let child = rendered(&[CHILD], &[]).config();
    let grpc = &child["tracing"]["otlp"]["grpc"];
    assert_eq!(
        str_of(&grpc["endpoint"]),
        "otel-collector.observability.svc.cluster.local:4317"
    );
    assert_eq!(grpc["insecure"], Value::Bool(true));
    assert!(child["tracing"]["otlp"]["http"].is_null());

    // Nothing configured: no exporter, only the Prometheus endpoint.
    let plain = rendered(&[], &[]).config();
    assert!(plain["tracing"]["otlp"].is_null());
    assert!(plain["metrics"]["otlp"]["http"].is_null());
    assert_eq!(plain["metrics"]["prometheus"]["enabled"], Value::Bool(true));
    assert!(plain["logs"]["general"].is_null());
    // otlp.enabled: false wins over an endpoint.
    let off = rendered(
        &[DATADOG],
        &[r#"{"tracing": {"otlp": {"enabled": false}}}"#],
    )
    .config();
    assert_eq!(off["tracing"]["otlp"]["enabled"], Value::Bool(false));
    assert!(off["tracing"]["otlp"]["http"].is_null());
}

#[test]
fn the_grace_period_outlasts_the_drain() {
    for (files, json, expected) in [
        (vec![], "{}", 10 + 30 + 10),
        (vec![CHILD], "{}", 15 + 30 + 10),
        (
            vec![],
            r#"{"shutdown": {"drainDelay": "1m30s", "gracePeriod": 45}}"#,
            90 + 45 + 10,
        ),
        (
            vec![],
            r#"{"shutdown": {"drainDelay": "500ms", "gracePeriod": "2m"}}"#,
            1 + 120 + 10,
        ),
        (
            vec![],
            r#"{"deployment": {"terminationGracePeriodSeconds": 120}}"#,
            120,
        ),
    ] {
        let rendered = rendered(&files, &[json]);
        let config = rendered.config();
        let drain = seconds(str_of(&config["shutdown"]["drainDelay"]));
        let grace = seconds(str_of(&config["shutdown"]["gracePeriod"]));
        let period = rendered.termination_grace_period();
        assert_eq!(period, expected, "{files:?} {json}");
        assert!(
            period > drain + grace + 5,
            "{files:?} {json}: {period}s does not outlast {drain}s + {grace}s + the flush"
        );
    }
    let message = refused(r#"{"deployment": {"terminationGracePeriodSeconds": 45}}"#);
    assert!(
        message.contains("deployment.terminationGracePeriodSeconds: 45 is too short")
            && message.contains("at least 46"),
        "{message}"
    );
}

#[test]
fn the_pod_runs_as_non_root_on_a_read_only_root_filesystem() {
    for files in [vec![PARENT], vec![CHILD], vec![DATADOG]] {
        let rendered = rendered(&files, &[]);
        let pod = &rendered.pod()["securityContext"];
        assert_eq!(pod["runAsNonRoot"], Value::Bool(true));
        assert!(pod["runAsUser"].as_u64().is_some_and(|uid| uid > 0));
        assert_eq!(str_of(&pod["seccompProfile"]["type"]), "RuntimeDefault");
        let container = &rendered.container()["securityContext"];
        assert_eq!(container["runAsNonRoot"], Value::Bool(true));
        assert_eq!(container["readOnlyRootFilesystem"], Value::Bool(true));
        assert_eq!(container["allowPrivilegeEscalation"], Value::Bool(false));
        assert_eq!(
            seq(&container["capabilities"]["drop"]),
            [Value::from("ALL")]
        );
        // Listeners above 1024: no capability needed.
        for port in seq(&rendered.container()["ports"]) {
            assert!(port["containerPort"].as_u64().is_some_and(|p| p > 1024));
        }
        // The access log goes to stdout or OTLP: nothing is written to the filesystem.
        assert!(rendered.config()["logs"]["access"]["filePath"].is_null());
    }
    // An access log file gets a writable emptyDir at its directory.
    let rendered = rendered(
        &[],
        &[r#"{"logs": {"access": {"enabled": true, "filePath": "/var/log/traverse/access.log"}}}"#],
    );
    let mount = seq(&rendered.container()["volumeMounts"])
        .iter()
        .find(|m| str_of(&m["mountPath"]) == "/var/log/traverse")
        .expect("a mount for the access log's directory");
    let volume = seq(&rendered.pod()["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("its volume");
    assert!(volume["emptyDir"].is_mapping());
    assert!(mount["readOnly"].as_bool() != Some(true));
}

#[test]
fn contradictory_values_fail_with_a_clear_message() {
    let parent = r#""role": "parent", "multicluster": {"children": {"child-a": {"address": "child-a.example.com:9443"}}}"#;
    let cases: Vec<(String, &str)> = vec![
        (r#"{"role": "gateway"}"#.into(), "'/role': value must be one of 'parent', 'child'"),
        (
            r#"{"entryPoints": {"multicluster": {"port": null}}}"#.into(),
            "role: child needs entryPoints.multicluster.port",
        ),
        (
            r#"{"role": "parent"}"#.into(),
            "role: parent needs at least one child in multicluster.children",
        ),
        (
            r#"{"multicluster": {"children": {"child-a": {"address": "a.example.com:9443"}}}}"#
                .into(),
            "multicluster.children: only a parent forwards to children (role is child)",
        ),
        (
            r#"{"role": "parent", "multicluster": {"children": {"child-a": {"address": "child-a"}}}}"#
                .into(),
            r#"multicluster.children.child-a.address: "child-a" is not host:port"#,
        ),
        (
            format!(r#"{{{parent}, "entryPoints": {{"web": {{"enabled": false}}}}}}"#),
            "entryPoints.web.enabled: a parent takes client traffic on web",
        ),
        (
            r#"{"role": "parent", "multicluster": {"tls": {"clientCertSecretName": "parent-client"},
                "children": {"child-a": {"address": "child-a.example.com:9443"}}}}"#
                .into(),
            "multicluster.tls.clientCertSecretName: a client certificate needs TLS",
        ),
        (
            r#"{"role": "parent", "multicluster": {"children": {"child-a":
                {"address": "child-a.example.com:9443", "tls": {"caSecretName": "ca"}}}}}"#
                .into(),
            "multicluster.children.child-a.tls: settings are given but tls.enabled is not true",
        ),
        (
            r#"{"additionalArguments": ["--log.otlp.endpoint=http://a:4318/v1/logs"]}"#.into(),
            "is a Traefik flag with no Traverse equivalent",
        ),
        (
            r#"{"entryPoints": {"multicluster": {"tls": {"clientCASecretName": "parents-ca"}}}}"#
                .into(),
            "entryPoints.multicluster.tls.clientCASecretName needs entryPoints.multicluster.tls.secretName",
        ),
        (
            r#"{"entryPoints": {"multicluster": {"port": 8080}}}"#.into(),
            "entryPoints.multicluster.port: 8080 is already entryPoints.web.port",
        ),
        (
            r#"{"tracing": {"otlp": {"http": {"endpoint": "http://collector:4318/v1/traces"},
                "grpc": {"endpoint": "collector:4317"}}}}"#
                .into(),
            "tracing.otlp: enable one of http and grpc, not both",
        ),
        (
            r#"{"metrics": {"otlp": {"http": {"enabled": true}, "grpc": {"enabled": true}}}}"#
                .into(),
            "metrics.otlp: enable one of http and grpc, not both",
        ),
        (
            r#"{"logs": {"access": {"otlp": {"http": {"endpoint": "collector:4318"}}}}}"#.into(),
            r#"logs.access.otlp.http.endpoint: "collector:4318" is not an http:// or https:// URL"#,
        ),
        (
            r#"{"tracing": {"otlp": {"grpc": {"endpoint": "https://collector:4317", "insecure": true}}}}"#
                .into(),
            "tracing.otlp.grpc.insecure: true contradicts the https:// endpoint",
        ),
        (
            r#"{"shutdown": {"drainDelay": "ten seconds"}}"#.into(),
            r#"shutdown.drainDelay: "ten seconds" is not a duration"#,
        ),
        (
            r#"{"shutdown": {"drainDelay": "11m"}}"#.into(),
            "shutdown.drainDelay: must be at most 10m",
        ),
        (
            r#"{"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}"#.into(),
            "podDisruptionBudget: set minAvailable or maxUnavailable, not both",
        ),
        (
            r#"{"podDisruptionBudget": {"minAvailable": 2}}"#.into(),
            "podDisruptionBudget.minAvailable: 2 with deployment.replicas 2 blocks every voluntary eviction",
        ),
        (
            r#"{"metrics": {"prometheus": {"enabled": false, "serviceMonitor": {"enabled": true}}}}"#
                .into(),
            "metrics.prometheus.serviceMonitor.enabled: the ServiceMonitor scrapes /metrics",
        ),
        (
            r#"{"logs": {"access": {"fields": {"headers": {"defaultmode": "keep", "defaultMode": "drop"}}}}}"#
                .into(),
            "logs.access.fields.headers: defaultmode (keep) and defaultMode (drop) disagree",
        ),
        (
            r#"{"logs": {"access": {"enabled": true, "filePath": "access.log"}}}"#.into(),
            r#"logs.access.filePath: "access.log" must be an absolute path"#,
        ),
        (
            r#"{"additionalArguments": ["--entryPoints.web.address=:80"]}"#.into(),
            r#"additionalArguments[0]: "--entryPoints.web.address=:80" is a Traefik flag with no Traverse equivalent"#,
        ),
        (
            r#"{"additionalArguments": ["--log.otlp.http.endpoint=http://a:4318/v1/logs"],
                "logs": {"general": {"otlp": {"http": {"endpoint": "http://b:4318/v1/logs"}}}}}"#
                .into(),
            "logs.general.otlp.http.endpoint is \"http://b:4318/v1/logs\" but additionalArguments set \"http://a:4318/v1/logs\"",
        ),
        (
            r#"{"logs": {"general": {"level": "verbose"}}}"#.into(),
            r#"logs.general.level: "verbose" is not trace, debug, info, warn or error"#,
        ),
        (
            r#"{"providers": {"kubernetes": {"namespaces": ["Apps"]}}}"#.into(),
            r#"providers.kubernetes.namespaces[0]: "Apps" is not a namespace name"#,
        ),
        (
            r#"{"tracing": {"otlp": {"htp": {"endpoint": "http://collector:4318"}}}}"#.into(),
            "additional properties 'htp' not allowed",
        ),
        (
            r#"{"entryPoints": {"websecure": {"enabled": false},
                "web": {"redirections": {"entryPoint": {"to": "websecure"}}}}}"#
                .into(),
            r#"entryPoints.web.redirections.entryPoint.to: "websecure" is not an enabled entrypoint"#,
        ),
        (
            r#"{"entryPoints": {"websecure": {"port": 8080}}}"#.into(),
            "entryPoints.websecure.port: 8080 is already entryPoints.web.port",
        ),
    ];
    for (json, expected) in &cases {
        let message = refused(json);
        assert!(
            message.contains(expected),
            "values {json}\nexpected the message to contain: {expected}\ngot: {message}"
        );
    }
    // What the gateway accepts, the chart accepts: OTLP enabled without a transport
    // (the OTEL_* variables give it), an uplink entrypoint's explicit `continue`.
    rendered(
        &[],
        &[r#"{"tracing": {"otlp": {"enabled": true}},
              "entryPoints": {"multicluster": {"traceContext": "continue"}}}"#],
    );
}

#[test]
fn crds_follow_the_switch_and_match_the_repository() {
    // The chart ships crds/ unchanged.
    let shipped = chart().join("files").join("crds");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_name().expect("name").to_owned();
        let copy = std::fs::read_to_string(shipped.join(&name)).unwrap_or_default();
        assert_eq!(
            copy,
            std::fs::read_to_string(&path).expect("read"),
            "charts/traverse/files/crds/{} differs from crds/: run `cargo run -p traverse-api --bin crdgen`",
            name.to_string_lossy()
        );
        names.push(name);
    }
    assert_eq!(names.len(), 7);
    assert_eq!(std::fs::read_dir(&shipped).expect("files/crds").count(), 7);

    let crd_names = |rendered: &Rendered| -> Vec<String> {
        let mut names: Vec<String> = rendered
            .all("CustomResourceDefinition")
            .iter()
            .map(|crd| str_of(&crd["metadata"]["name"]).to_owned())
            .collect();
        names.sort();
        names
    };
    let default = rendered(&[], &[]);
    assert_eq!(
        crd_names(&default),
        [
            "ingressroutes.traefik.io",
            "middlewares.traefik.io",
            "serverstransports.traefik.io",
            "tlsoptions.traefik.io",
            "tlsstores.traefik.io",
            "traefikservices.traefik.io",
            "uplinks.traverse.dev"
        ]
    );
    for crd in default.all("CustomResourceDefinition") {
        assert_eq!(
            str_of(&crd["metadata"]["annotations"]["helm.sh/resource-policy"]),
            "keep",
            "uninstalling must not delete every route"
        );
    }
    let without_traefik = rendered(&[], &[r#"{"crds": {"traefik": false}}"#]);
    assert_eq!(crd_names(&without_traefik), ["uplinks.traverse.dev"]);
    let none = rendered(&[], &[r#"{"crds": {"install": false}}"#]);
    assert!(crd_names(&none).is_empty());
}

#[test]
fn the_pod_disruption_budget_and_the_service_monitor() {
    let default = rendered(&[], &[]);
    let budget = default.get("PodDisruptionBudget", "traverse");
    assert_eq!(budget["spec"]["maxUnavailable"].as_u64(), Some(1));
    assert!(budget["spec"]["minAvailable"].is_null());
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        default.get("Deployment", "traverse")["spec"]["selector"]["matchLabels"]
    );
    assert!(default.all("ServiceMonitor").is_empty());
    let min = rendered(
        &[],
        &[r#"{"podDisruptionBudget": {"minAvailable": "50%"}}"#],
    );
    let budget = min.get("PodDisruptionBudget", "traverse");
    assert_eq!(str_of(&budget["spec"]["minAvailable"]), "50%");
    assert!(budget["spec"]["maxUnavailable"].is_null());

    let parent = rendered(&[PARENT], &[]);
    let monitor = parent.get("ServiceMonitor", "traverse");
    service_monitor_is_well_formed(monitor);
    // It selects the admin Service, and only that one.
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("matchLabels");
    let selected: Vec<&str> = parent
        .all("Service")
        .into_iter()
        .filter(|service| {
            selector
                .iter()
                .all(|(key, value)| &service["metadata"]["labels"][str_of(key)] == value)
        })
        .map(|service| str_of(&service["metadata"]["name"]))
        .collect();
    assert_eq!(selected, ["traverse-admin"]);
}

#[test]
fn notes_tell_how_to_reach_the_gateway_and_see_a_trace() {
    let datadog = rendered(&[DATADOG], &[]);
    let notes = &datadog.notes;
    for expected in [
        "runs as a child gateway",
        "kubectl -n traverse get service traverse ",
        "curl -i -H 'Host: whoami.example.com' http://$GATEWAY/",
        "traverse-uplink",
        "traceparent: 00-$TRACE_ID-",
        "http://datadog-agent.datadog.svc.cluster.local:4318/v1/traces",
        "service.name traverse-child and k8s.cluster.name eu-west",
        "curl -s localhost:9000/api/telemetry",
        "curl -s localhost:9000/api/routes",
    ] {
        assert!(
            notes.contains(expected),
            "NOTES.txt lacks {expected:?}:\n{notes}"
        );
    }
    let parent = rendered(&[PARENT], &[]);
    for expected in [
        "runs as a parent gateway",
        "Children: eu-west, us-east",
        "/api/multicluster",
        // new-and-link on web: a client's traceparent does not choose the trace.
        "Every response carries its trace id in X-Trace-Id",
    ] {
        assert!(
            parent.notes.contains(expected),
            "NOTES.txt lacks {expected:?}:\n{}",
            parent.notes
        );
    }
    let plain = rendered(&[], &[r#"{"service": {"type": "ClusterIP"}}"#]);
    for expected in [
        "kubectl -n traverse port-forward service/traverse 8080:80",
        "Tracing is off",
        "cluster.name is unset",
    ] {
        assert!(
            plain.notes.contains(expected),
            "NOTES.txt lacks {expected:?}:\n{}",
            plain.notes
        );
    }
}

#[test]
fn a_configuration_change_rolls_the_pods() {
    let checksum = |rendered: &Rendered| {
        str_of(
            &rendered.get("Deployment", "traverse")["spec"]["template"]["metadata"]["annotations"]
                ["checksum/config"],
        )
        .to_owned()
    };
    let before = rendered(&[], &[]);
    let after = rendered(&[], &[r#"{"shutdown": {"drainDelay": "20s"}}"#]);
    assert_eq!(checksum(&before).len(), 64);
    assert_ne!(checksum(&before), checksum(&after));
    assert_eq!(checksum(&before), checksum(&rendered(&[], &[])));
}

#[test]
fn websecure_terminates_tls_and_web_can_redirect_to_it() {
    // By default: a `tls: {}` entrypoint on 8443, port 443 of the client Service.
    let plain = rendered(&[], &[]);
    let config = plain.config();
    let websecure = &config["entryPoints"]["websecure"];
    assert_eq!(str_of(&websecure["address"]), "0.0.0.0:8443");
    assert!(
        websecure["tls"]
            .as_mapping()
            .is_some_and(|tls| tls.is_empty()),
        "certificates from resources only: {websecure:?}"
    );
    assert!(
        config["entryPoints"]["web"]["http"].is_null(),
        "no redirect unless asked"
    );
    assert_eq!(plain.container_port("websecure"), Some(8443));
    let ports: Vec<(&str, u64, &str)> = seq(&plain.get("Service", "traverse")["spec"]["ports"])
        .iter()
        .map(|p| {
            (
                str_of(&p["name"]),
                p["port"].as_u64().unwrap_or_default(),
                str_of(&p["targetPort"]),
            )
        })
        .collect();
    assert_eq!(ports, [("web", 80, "web"), ("websecure", 443, "websecure")]);

    // The parent example sends plain HTTP to HTTPS, in Traefik's static shape.
    let parent = rendered(&[PARENT], &[]);
    let redirect = &parent.config()["entryPoints"]["web"]["http"]["redirections"]["entryPoint"];
    assert_eq!(str_of(&redirect["to"]), "websecure");
    assert_eq!(str_of(&redirect["scheme"]), "https");
    assert_eq!(redirect["permanent"].as_bool(), Some(true));
    assert!(parent
        .notes
        .contains("Every request on web is redirected to websecure"));

    // Turned off: no entrypoint, no container or Service port.
    let off = rendered(
        &[],
        &[r#"{"entryPoints": {"websecure": {"enabled": false}}}"#],
    );
    assert!(off.config()["entryPoints"]["websecure"].is_null());
    assert_eq!(off.container_port("websecure"), None);
    let ports = seq(&off.get("Service", "traverse")["spec"]["ports"]);
    assert_eq!(ports.len(), 1, "{ports:?}");

    // Certificates and CAs are read through the API: the core rule lists Secrets and
    // ConfigMaps (list and watch, nothing else), and no Secret is mounted for them.
    let rules = seq(&plain.all("ClusterRole")[0]["rules"]);
    let core = rules
        .iter()
        .find(|rule| {
            seq(&rule["resources"])
                .iter()
                .any(|r| str_of(r) == "secrets")
        })
        .expect("a rule for secrets");
    let resources: Vec<&str> = seq(&core["resources"]).iter().map(str_of).collect();
    assert_eq!(resources, ["services", "secrets", "configmaps"]);
    let verbs: Vec<&str> = seq(&core["verbs"]).iter().map(str_of).collect();
    assert_eq!(verbs, ["list", "watch"]);
}
