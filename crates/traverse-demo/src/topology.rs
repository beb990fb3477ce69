//! The example files the demo runs (embedded, or from `--examples <dir>`) and what the
//! demo reads from them: which gateways to start, their ports, where the sample apps
//! listen and where spans go. Read as plain YAML so this does not depend on the
//! gateway's own schema; the gateways validate their files themselves.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// `examples/multicluster`, embedded so `traverse demo` runs from any directory.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../../examples/multicluster/README.md"),
    ),
    (
        "parent.yaml",
        include_str!("../../../examples/multicluster/parent.yaml"),
    ),
    (
        "child-a.yaml",
        include_str!("../../../examples/multicluster/child-a.yaml"),
    ),
    (
        "child-b.yaml",
        include_str!("../../../examples/multicluster/child-b.yaml"),
    ),
    (
        "parent/routes.yaml",
        include_str!("../../../examples/multicluster/parent/routes.yaml"),
    ),
    (
        "child-a/whoami.yaml",
        include_str!("../../../examples/multicluster/child-a/whoami.yaml"),
    ),
    (
        "child-a/uplink.yaml",
        include_str!("../../../examples/multicluster/child-a/uplink.yaml"),
    ),
    (
        "child-b/whoami.yaml",
        include_str!("../../../examples/multicluster/child-b/whoami.yaml"),
    ),
    (
        "child-b/uplink.yaml",
        include_str!("../../../examples/multicluster/child-b/uplink.yaml"),
    ),
];

/// The parent's configuration file in the examples directory.
pub const PARENT_CONFIG: &str = "parent.yaml";

/// Writes the example files into `target`: the embedded copies, or every file under
/// `source` (so a modified example keeps its extra manifests).
pub fn write_examples(source: Option<&Path>, target: &Path) -> anyhow::Result<()> {
    match source {
        None => {
            for (relative, text) in EMBEDDED {
                let path = target.join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Some(source) => {
            if !source.join(PARENT_CONFIG).is_file() {
                anyhow::bail!(
                    "{} has no {PARENT_CONFIG}: --examples takes a directory laid out like examples/multicluster",
                    source.display()
                );
            }
            copy_tree(source, target)
        }
    }
}

fn copy_tree(source: &Path, target: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let entries =
        std::fs::read_dir(source).with_context(|| format!("reading {}", source.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", source.display()))?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to)?;
        } else if from.is_file() {
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The parent gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub config: PathBuf,
    pub cluster: String,
    /// The first entrypoint (by name): where the demo sends its requests.
    pub entry_point: (String, SocketAddr),
    pub admin: SocketAddr,
    /// The header that returns each request's trace id.
    pub trace_id_header: String,
}

/// One child gateway and the sample app(s) its manifests point at.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildGateway {
    /// The name under `multicluster.children` of the parent; its file is `<name>.yaml`.
    pub name: String,
    pub config: PathBuf,
    pub cluster: String,
    /// Its entrypoints by name (the parent's forwards and uplink streams arrive here).
    pub entry_points: Vec<(String, SocketAddr)>,
    pub admin: SocketAddr,
    /// Every endpoint of its EndpointSlices: where its sample app listens.
    pub apps: Vec<SocketAddr>,
}

/// Everything the demo starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub parent: Parent,
    pub children: Vec<ChildGateway>,
    /// Where every gateway sends its spans (the receiver listens there).
    pub otlp: SocketAddr,
}

impl Topology {
    /// Reads the example files in `dir`.
    pub fn read(dir: &Path) -> anyhow::Result<Topology> {
        let parent_path = dir.join(PARENT_CONFIG);
        let parent_yaml = load(&parent_path)?;
        let at = |key: &str| format!("{}: {key}", parent_path.display());
        let entry_point = entry_points(&parent_yaml, &parent_path)?
            .into_iter()
            .next()
            .with_context(|| at("entryPoints: the parent needs one for the demo's requests"))?;
        let trace_id_header = text(&parent_yaml, &["tracing", "traceIdResponseHeader"])
            .with_context(|| {
                at("tracing.traceIdResponseHeader must be set: the demo learns each request's trace from it")
            })?;
        let otlp_url = otlp_endpoint(&parent_yaml, &parent_path)?;
        let otlp = receiver_address(&otlp_url).with_context(|| at("tracing.otlp.http.endpoint"))?;
        let parent = Parent {
            config: parent_path.clone(),
            cluster: cluster(&parent_yaml),
            entry_point,
            admin: admin(&parent_yaml, &parent_path)?,
            trace_id_header,
        };

        let names: Vec<String> = match lookup(&parent_yaml, &["multicluster", "children"]) {
            Some(Value::Object(children)) => children.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if names.is_empty() {
            anyhow::bail!(
                "{}: the demo needs at least one child",
                at("multicluster.children")
            );
        }
        let mut children = Vec::new();
        for name in names {
            let config = dir.join(format!("{name}.yaml"));
            let yaml = load(&config).with_context(|| {
                format!(
                    "the configuration of child {name} (named in {})",
                    parent_path.display()
                )
            })?;
            let endpoint = otlp_endpoint(&yaml, &config)?;
            if endpoint != otlp_url {
                anyhow::bail!(
                    "{}: tracing.otlp.http.endpoint is {endpoint}; the demo receives spans at the \
                     parent's {otlp_url} only",
                    config.display()
                );
            }
            let manifests = match text(&yaml, &["providers", "file", "directory"]) {
                Some(directory) => dir.join(directory),
                None => anyhow::bail!("{}: providers.file.directory is not set", config.display()),
            };
            children.push(ChildGateway {
                cluster: cluster(&yaml),
                entry_points: entry_points(&yaml, &config)?,
                admin: admin(&yaml, &config)?,
                apps: app_addresses(&manifests)?,
                name,
                config,
            });
        }
        Ok(Topology {
            parent,
            children,
            otlp,
        })
    }

    /// Every address a gateway listens on, with what it is, for a clear "port taken".
    pub fn gateway_listeners(&self) -> Vec<(SocketAddr, String)> {
        let mut listeners = vec![
            (
                self.parent.entry_point.1,
                format!("the parent's entrypoint {}", self.parent.entry_point.0),
            ),
            (self.parent.admin, "the parent's admin API".to_owned()),
        ];
        for child in &self.children {
            for (name, address) in &child.entry_points {
                listeners.push((*address, format!("{}'s entrypoint {name}", child.name)));
            }
            listeners.push((child.admin, format!("{}'s admin API", child.name)));
        }
        listeners
    }
}

fn load(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn lookup<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, key| v.get(*key))
}

fn text(value: &Value, keys: &[&str]) -> Option<String> {
    lookup(value, keys)?.as_str().map(str::to_owned)
}

fn cluster(value: &Value) -> String {
    text(value, &["cluster", "name"]).unwrap_or_else(|| "default".to_owned())
}

fn address(value: &Value, keys: &[&str], path: &Path) -> anyhow::Result<SocketAddr> {
    let key = keys.join(".");
    let text =
        text(value, keys).with_context(|| format!("{}: {key} is not set", path.display()))?;
    connectable(&text).with_context(|| format!("{}: {key}", path.display()))
}

fn admin(value: &Value, path: &Path) -> anyhow::Result<SocketAddr> {
    address(value, &["admin", "address"], path)
}

fn entry_points(value: &Value, path: &Path) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    let Some(Value::Object(entries)) = lookup(value, &["entryPoints"]) else {
        anyhow::bail!("{}: entryPoints is not set", path.display());
    };
    let mut list = Vec::new();
    for name in entries.keys() {
        list.push((
            name.to_owned(),
            address(value, &["entryPoints", name, "address"], path)?,
        ));
    }
    list.sort();
    Ok(list)
}

fn otlp_endpoint(value: &Value, path: &Path) -> anyhow::Result<String> {
    text(value, &["tracing", "otlp", "http", "endpoint"]).with_context(|| {
        format!(
            "{}: tracing.otlp.http.endpoint is not set: the demo shows the spans sent there",
            path.display()
        )
    })
}

/// `host:port` of an `http://host:port/v1/traces` endpoint.
fn receiver_address(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL (the demo's receiver has no TLS)"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path != "v1/traces" {
        anyhow::bail!("{url}: the demo's receiver takes spans at /v1/traces");
    }
    connectable(authority)
}

/// `host:port` resolved to an address this machine can connect to (`0.0.0.0` → loopback).
fn connectable(text: &str) -> anyhow::Result<SocketAddr> {
    let mut address = text
        .to_socket_addrs()
        .with_context(|| format!("{text:?} is not a host:port"))?
        .next()
        .with_context(|| format!("{text:?} resolves to no address"))?;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(address)
}

/// The endpoints of every EndpointSlice in the manifests directory.
fn app_addresses(manifests: &Path) -> anyhow::Result<Vec<SocketAddr>> {
    let entries =
        std::fs::read_dir(manifests).with_context(|| format!("reading {}", manifests.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut addresses = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        // The gateway reports broken documents itself.
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_default();
        for document in documents {
            if document.get("kind").and_then(Value::as_str) != Some("EndpointSlice") {
                continue;
            }
            let port = lookup(&document, &["ports"])
                .and_then(|p| p.get(0))
                .and_then(|p| p.get("port"))
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            let Some(port) = port else { continue };
            let endpoints = lookup(&document, &["endpoints"]).and_then(Value::as_array);
            for endpoint in endpoints.into_iter().flatten() {
                let ips = endpoint.get("addresses").and_then(Value::as_array);
                for ip in ips.into_iter().flatten().filter_map(Value::as_str) {
                    let address = connectable(&format!("{ip}:{port}"))
                        .with_context(|| format!("{}: EndpointSlice address", file.display()))?;
                    if !addresses.contains(&address) {
                        addresses.push(address);
                    }
                }
            }
        }
    }
    if addresses.is_empty() {
        anyhow::bail!(
            "{}: no EndpointSlice with an address: nowhere to start the sample app",
            manifests.display()
        );
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_embedded_examples_describe_the_documented_ports() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_examples(None, dir.path()).expect("written");
        let topology = Topology::read(dir.path()).expect("readable");
        let parent = &topology.parent;
        assert_eq!(parent.cluster, "edge");
        assert_eq!(
            parent.entry_point,
            ("web".to_owned(), addr("127.0.0.1:8000"))
        );
        assert_eq!(parent.admin, addr("127.0.0.1:9100"));
        assert_eq!(parent.trace_id_header, "X-Trace-Id");
        assert_eq!(topology.otlp, addr("127.0.0.1:4319"));
        let children: Vec<(&str, &str, SocketAddr, SocketAddr, Vec<SocketAddr>)> = topology
            .children
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.cluster.as_str(),
                    c.entry_points[0].1,
                    c.admin,
                    c.apps.clone(),
                )
            })
            .collect();
        assert_eq!(
            children,
            vec![
                (
                    "child-a",
                    "eu-west",
                    addr("127.0.0.1:9101"),
                    addr("127.0.0.1:9111"),
                    vec![addr("127.0.0.1:9201")]
                ),
                (
                    "child-b",
                    "us-east",
                    addr("127.0.0.1:9102"),
                    addr("127.0.0.1:9112"),
                    vec![addr("127.0.0.1:9202")]
                ),
            ]
        );
        let listeners = topology.gateway_listeners();
        assert_eq!(listeners.len(), 6);
        assert!(listeners.contains(&(
            addr("127.0.0.1:9101"),
            "child-a's entrypoint multicluster".to_owned()
        )));
    }

    #[test]
    fn the_embedded_copies_are_the_repository_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
        for (relative, text) in EMBEDDED {
            let on_disk = std::fs::read_to_string(root.join(relative)).expect("the example file");
            assert_eq!(&on_disk, text, "{relative}");
        }
        // Every file of the example is embedded.
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&root, dir.path()).expect("copied");
        let mut count = 0;
        let mut stack = vec![dir.path().to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)
                .expect("readable")
                .filter_map(Result::ok)
            {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    count += 1;
                }
            }
        }
        assert_eq!(
            count,
            EMBEDDED.len(),
            "a file of examples/multicluster is not embedded"
        );
    }

    #[test]
    fn a_directory_is_copied_whole() {
        let source = tempfile::tempdir().expect("temp dir");
        write_examples(None, source.path()).expect("written");
        std::fs::write(
            source.path().join("child-b/extra.yaml"),
            "kind: Middleware\n",
        )
        .expect("extra");
        let target = tempfile::tempdir().expect("temp dir");
        write_examples(Some(source.path()), target.path()).expect("copied");
        assert!(target.path().join("child-b/extra.yaml").is_file());
        assert!(Topology::read(target.path()).is_ok());

        let empty = tempfile::tempdir().expect("temp dir");
        let error = write_examples(Some(empty.path()), target.path()).expect_err("no parent.yaml");
        assert!(format!("{error:#}").contains("has no parent.yaml"));
    }

    #[test]
    fn missing_pieces_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_examples(None, dir.path()).expect("written");
        let parent = dir.path().join("parent.yaml");
        let original = std::fs::read_to_string(&parent).expect("readable");

        std::fs::write(
            &parent,
            original.replace("traceIdResponseHeader: X-Trace-Id", ""),
        )
        .expect("write");
        let error = format!("{:#}", Topology::read(dir.path()).expect_err("no header"));
        assert!(
            error.contains("tracing.traceIdResponseHeader must be set"),
            "{error}"
        );

        std::fs::write(&parent, original.replace("child-b:", "child-c:")).expect("write");
        let error = format!(
            "{:#}",
            Topology::read(dir.path()).expect_err("no child-c.yaml")
        );
        assert!(
            error.contains("child-c.yaml") && error.contains("child child-c"),
            "{error}"
        );

        std::fs::write(&parent, &original).expect("write");
        let child = dir.path().join("child-a.yaml");
        let text = std::fs::read_to_string(&child).expect("readable");
        std::fs::write(&child, text.replace("4319", "4320")).expect("write");
        let error = format!(
            "{:#}",
            Topology::read(dir.path()).expect_err("other endpoint")
        );
        assert!(
            error.contains("child-a.yaml: tracing.otlp.http.endpoint is http://127.0.0.1:4320"),
            "{error}"
        );
    }

    #[test]
    fn receiver_addresses() {
        assert_eq!(
            receiver_address("http://127.0.0.1:4319/v1/traces").expect("ok"),
            addr("127.0.0.1:4319")
        );
        assert_eq!(
            receiver_address("http://0.0.0.0:4319/v1/traces").expect("ok"),
            addr("127.0.0.1:4319")
        );
        assert!(receiver_address("https://127.0.0.1:4319/v1/traces").is_err());
        assert!(receiver_address("http://127.0.0.1:4319/traces").is_err());
    }
}
