//! The file provider: Kubernetes-style YAML manifests from a directory.
//!
//! Every `*.yaml`/`*.yml` file (hidden entries skipped, symlinks followed, so a mounted
//! ConfigMap works) may hold several documents. A file that fails to load keeps its last
//! good documents: a broken edit is reported and the configuration that was serving
//! keeps serving.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use traverse_api::{EndpointSlice, IngressRoute, Middleware, Service, Uplink};
use traverse_router::Rule;

use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
use crate::parse::typed;
use crate::snapshot::{Object, Snapshot};

#[cfg(test)]
mod tests;

/// One parsed document (boxed: the kinds differ a lot in size).
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    IngressRoute(Box<IngressRoute>),
    Middleware(Box<Middleware>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    Uplink(Box<Uplink>),
}

/// A file's documents and where each starts.
#[derive(Debug, Clone, Default)]
struct FileContents {
    documents: Vec<(Document, String)>,
}

/// Reads a directory of manifests and remembers each file's last good contents.
#[derive(Debug)]
pub struct FileProvider {
    directory: PathBuf,
    files: BTreeMap<PathBuf, FileContents>,
}

/// A file's parse result: the documents and non-fatal warnings, or the errors that rejected it.
pub type ParseResult = Result<(Vec<(Document, String)>, Diagnostics), Diagnostics>;

impl FileProvider {
    /// A provider for `directory`; nothing is read until [`FileProvider::load`].
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        FileProvider {
            directory: directory.into(),
            files: BTreeMap::new(),
        }
    }

    /// Re-reads the directory. Files that fail keep their last good documents; the
    /// diagnostics say what failed and what was kept.
    pub fn load(&mut self) -> (Snapshot, Diagnostics) {
        let mut diagnostics = Diagnostics::default();
        let paths = match manifest_paths(&self.directory) {
            Ok(paths) => paths,
            Err(error) => {
                diagnostics.push(file_error(
                    &self.directory,
                    None,
                    format!("cannot read directory: {error}"),
                ));
                // Keep serving everything we had.
                return (self.snapshot(), diagnostics);
            }
        };
        self.files.retain(|path, _| paths.contains(path));
        for path in paths {
            let result = std::fs::read_to_string(&path)
                .map_err(|error| {
                    let mut errors = Diagnostics::default();
                    errors.push(file_error(
                        &path,
                        None,
                        format!("cannot read file: {error}"),
                    ));
                    errors
                })
                .and_then(|text| parse_file(&path, &text));
            match result {
                Ok((documents, warnings)) => {
                    diagnostics.extend(warnings);
                    self.files.insert(path, FileContents { documents });
                }
                Err(errors) => {
                    diagnostics.extend(errors);
                    if self.files.contains_key(&path) {
                        diagnostics.push(Diagnostic {
                            severity: Severity::Warning,
                            reason: Reason::InvalidDocument,
                            object: None,
                            source: Some(path.display().to_string()),
                            field: None,
                            message: "file rejected; its last good contents keep serving".into(),
                        });
                    }
                }
            }
        }
        diagnostics.normalize();
        (self.snapshot(), diagnostics)
    }

    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for contents in self.files.values() {
            for (document, source) in &contents.documents {
                let object = match document {
                    Document::IngressRoute(o) => {
                        snapshot.ingress_routes.push(o.as_ref().clone());
                        o.object_ref()
                    }
                    Document::Middleware(o) => {
                        snapshot.middlewares.push(o.as_ref().clone());
                        o.object_ref()
                    }
                    Document::Service(o) => {
                        snapshot.services.push(o.as_ref().clone());
                        o.object_ref()
                    }
                    Document::EndpointSlice(o) => {
                        snapshot.endpoint_slices.push(o.as_ref().clone());
                        o.object_ref()
                    }
                    Document::Uplink(o) => {
                        snapshot.uplinks.push(o.as_ref().clone());
                        o.object_ref()
                    }
                };
                snapshot
                    .sources
                    .entry(object)
                    .or_default()
                    .push(source.clone());
            }
        }
        snapshot
    }

    /// Loads now, then again after each change (debounced) until `shutdown` completes.
    /// `publish` gets every load whose result differs from the previous one.
    pub async fn watch(
        mut self,
        debounce: Duration,
        mut publish: impl FnMut(Snapshot, Diagnostics) + Send,
        shutdown: impl Future<Output = ()>,
    ) {
        let (changed_tx, mut changed) = mpsc::channel::<()>(1);
        // Without a watcher the configuration still loads once and serves; it just won't reload.
        let watcher = watch_directory(&self.directory, changed_tx)
            .inspect_err(|error| {
                tracing::error!(%error, directory = %self.directory.display(), "cannot watch the directory; configuration will not reload");
            })
            .ok();

        let mut last = self.load();
        publish(last.0.clone(), last.1.clone());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = changed.recv() => if event.is_none() { break },
            }
            // Wait for a quiet period so that a burst of writes is applied once.
            loop {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(debounce) => break,
                    _ = changed.recv() => continue,
                }
            }
            let next = self.load();
            if next != last {
                publish(next.0.clone(), next.1.clone());
                last = next;
            }
        }
        drop(watcher);
    }
}

/// Signals `changed` on every modification under `directory`.
fn watch_directory(
    directory: &Path,
    changed: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            // A full channel already holds a pending reload.
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(directory, notify::RecursiveMode::Recursive)?;
    Ok(watcher)
}

fn manifest_paths(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Hidden entries include the `..data` links of mounted ConfigMaps and editor swap files.
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        // `metadata` follows symlinks.
        if is_yaml && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn file_error(path: &Path, line: Option<usize>, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        reason: Reason::InvalidDocument,
        object: None,
        source: Some(match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        }),
        field: None,
        message,
    }
}

/// Splits a multi-document YAML text at `---` lines, keeping each document's first line number.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            documents.push((start, std::mem::take(&mut current)));
            start = index + 2;
            // `--- {inline: doc}` carries content on the separator line.
            let rest = line.trim_start_matches('-').trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.push_str(rest);
                current.push('\n');
                start = index + 1;
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.push((start, current));
    documents
        .into_iter()
        .filter(|(_, text)| {
            text.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Parses every document of one file. Any invalid document rejects the whole file, so a
/// half-applied edit never serves; unknown kinds and unknown fields are reported but do not.
pub fn parse_file(path: &Path, text: &str) -> ParseResult {
    let mut documents = Vec::new();
    let mut errors = Diagnostics::default();
    let mut reported = Diagnostics::default();
    for (line, text) in split_documents(text) {
        let source = format!("{}:{line}", path.display());
        let value: serde_yaml::Value = match serde_yaml::from_str(&text) {
            Ok(value) => value,
            Err(error) => {
                let at = error.location().map(|l| line + l.line() - 1);
                errors.push(file_error(
                    path,
                    at.or(Some(line)),
                    format!("invalid YAML: {error}"),
                ));
                continue;
            }
        };
        match parse_document(value, &source) {
            Ok(Some((document, warnings))) => {
                reported.extend(warnings);
                documents.push((document, source));
            }
            Ok(None) => {}
            Err(diagnostic) => {
                // Unknown kinds are skipped without rejecting the file's other documents.
                if diagnostic.reason == Reason::UnknownKind {
                    reported.push(*diagnostic);
                } else {
                    errors.push(*diagnostic);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok((documents, reported))
    } else {
        errors.extend(reported);
        Err(errors)
    }
}

/// Parses one document by its apiVersion/kind. `Ok(None)` for an empty document.
fn parse_document(
    value: serde_yaml::Value,
    source: &str,
) -> Result<Option<(Document, Diagnostics)>, Box<Diagnostic>> {
    if value.is_null() {
        return Ok(None);
    }
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let metadata = value.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(|v| v.as_str())
        .unwrap_or("default")
        .to_owned();
    let object = ObjectRef {
        kind: kind.clone(),
        namespace,
        name: name.clone(),
    };
    let error = |reason: Reason, field: Option<String>, message: String| {
        Box::new(Diagnostic {
            severity: Severity::Error,
            reason,
            object: Some(object.clone()),
            source: Some(source.to_owned()),
            field,
            message,
        })
    };
    if api_version.is_empty() || kind.is_empty() {
        return Err(error(
            Reason::InvalidDocument,
            None,
            "apiVersion and kind are required".into(),
        ));
    }
    if name.is_empty() {
        return Err(error(
            Reason::InvalidDocument,
            Some("metadata.name".into()),
            "is required".into(),
        ));
    }

    let mut warnings = Diagnostics::default();
    let document = match (api_version.as_str(), kind.as_str()) {
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "IngressRoute") => {
            let route: IngressRoute = typed(value, &object, source, &mut warnings)
                .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?;
            for (i, r) in route.spec.routes.iter().enumerate() {
                if let Err(e) = Rule::parse(&r.r#match) {
                    return Err(error(
                        Reason::InvalidRule,
                        Some(format!("spec.routes[{i}].match")),
                        e.to_string(),
                    ));
                }
                for (j, service) in r.services.iter().enumerate() {
                    if let Some(traverse_api::IntOrString::Int(port)) = service.port {
                        if !(1..=65535).contains(&port) {
                            return Err(error(
                                Reason::InvalidDocument,
                                Some(format!("spec.routes[{i}].services[{j}].port")),
                                format!("{port} is not a port number (1-65535)"),
                            ));
                        }
                    }
                }
            }
            Document::IngressRoute(Box::new(route))
        }
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "Middleware") => {
            Document::Middleware(Box::new(
                typed(value, &object, source, &mut warnings)
                    .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
            ))
        }
        ("v1", "Service") => {
            let service: Service = typed(value, &object, source, &mut warnings)
                .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?;
            let ports = service
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_deref())
                .unwrap_or_default();
            for (i, port) in ports.iter().enumerate() {
                if !(1..=65535).contains(&port.port) {
                    return Err(error(
                        Reason::InvalidDocument,
                        Some(format!("spec.ports[{i}].port")),
                        format!("{} is not a port number (1-65535)", port.port),
                    ));
                }
            }
            Document::Service(Box::new(service))
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let slice: EndpointSlice = typed(value, &object, source, &mut warnings)
                .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?;
            for (i, port) in slice
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(number) = port.port.filter(|p| !(1..=65535).contains(p)) {
                    return Err(error(
                        Reason::InvalidDocument,
                        Some(format!("ports[{i}].port")),
                        format!("{number} is not a port number (1-65535)"),
                    ));
                }
            }
            for (i, endpoint) in slice.endpoints.iter().flatten().enumerate() {
                for (j, address) in endpoint.addresses.iter().enumerate() {
                    if address.parse::<std::net::IpAddr>().is_err() {
                        return Err(error(
                            Reason::InvalidDocument,
                            Some(format!("endpoints[{i}].addresses[{j}]")),
                            format!("{address:?} is not an IP address"),
                        ));
                    }
                }
            }
            Document::EndpointSlice(Box::new(slice))
        }
        ("traverse.dev/v1alpha1", "Uplink") => {
            let uplink: Uplink = typed(value, &object, source, &mut warnings)
                .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?;
            if uplink.spec.weight.is_some_and(|w| w < 0) {
                return Err(error(
                    Reason::InvalidDocument,
                    Some("spec.weight".into()),
                    "must not be negative".into(),
                ));
            }
            Document::Uplink(Box::new(uplink))
        }
        _ => {
            return Err(error(
                Reason::UnknownKind,
                None,
                format!("{api_version} {kind} is not a kind Traverse reads; document skipped"),
            ));
        }
    };
    Ok(Some((document, warnings)))
}
