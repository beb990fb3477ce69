//! The file provider: Kubernetes-style YAML manifests from a directory.
//!
//! Every `*.yaml`/`*.yml` file (hidden entries skipped, symlinks followed, so a mounted
//! ConfigMap works) may hold several documents. Each document is accepted or rejected on
//! its own: a file's good documents apply even when another document of it is broken. A
//! rejected document keeps its object's last good version serving, so a broken edit is
//! reported and the configuration that was serving keeps serving; a document too broken
//! to say which object it is (invalid YAML) keeps every object the file held before and
//! no longer defines.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use traverse_api::{
    ConfigMap, EndpointSlice, IngressRoute, Middleware, Secret, ServersTransport, Service,
    TLSOption, TLSStore, TraefikService, Uplink,
};
use traverse_router::Interner;

use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
use crate::parse::typed;
use crate::snapshot::{Object, Rules, Snapshot};
use crate::yaml;

#[cfg(test)]
mod tests;

/// One parsed document, shared with the snapshots that carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    IngressRoute(Arc<IngressRoute>),
    Middleware(Arc<Middleware>),
    TraefikService(Arc<TraefikService>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Uplink(Arc<Uplink>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
    TlsStore(Arc<TLSStore>),
    TlsOption(Arc<TLSOption>),
    ServersTransport(Arc<ServersTransport>),
}

impl Document {
    /// The object this document defines.
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Document::IngressRoute(o) => o.object_ref(),
            Document::Middleware(o) => o.object_ref(),
            Document::TraefikService(o) => o.object_ref(),
            Document::Service(o) => o.object_ref(),
            Document::EndpointSlice(o) => o.object_ref(),
            Document::Uplink(o) => o.object_ref(),
            Document::Secret(o) => o.object_ref(),
            Document::ConfigMap(o) => o.object_ref(),
            Document::TlsStore(o) => o.object_ref(),
            Document::TlsOption(o) => o.object_ref(),
            Document::ServersTransport(o) => o.object_ref(),
        }
    }
}

/// What a file contributes: its documents in force (each good one, or for a rejected
/// one its last good version) and where each stands, plus what its last read reported.
#[derive(Debug, Clone, Default)]
struct FileContents {
    documents: Vec<(Document, String)>,
    /// Hash of the text these came from: an unchanged file is not parsed again.
    text_hash: u64,
    /// Everything reading that text reported, repeated on each load while it is unchanged.
    diagnostics: Diagnostics,
}

/// Reads a directory of manifests and remembers each file's documents in force.
#[derive(Debug)]
pub struct FileProvider {
    directory: PathBuf,
    files: BTreeMap<PathBuf, FileContents>,
    /// Rules checked while parsing, handed on with every snapshot so that translating
    /// it reuses them (and the rules of earlier loads).
    rules: Rules,
    allow_cross_namespace: bool,
    native_lb_by_default: bool,
}

/// One document of a file, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A document that can be used, with where it starts (`file.yaml:12`).
    Document(Document, String),
    /// A document that was rejected (its errors are in [`ParsedFile::diagnostics`]), with
    /// the object it names when that much could be read.
    Rejected {
        object: Option<ObjectRef>,
        source: String,
    },
}

/// A file parsed document by document.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// Every non-empty document of a known kind, in file order.
    pub documents: Vec<Parsed>,
    /// Errors of the rejected documents, and what the others reported (unknown kinds,
    /// unknown fields).
    pub diagnostics: Diagnostics,
}

impl ParsedFile {
    /// The documents that parsed, with their sources.
    pub fn good(&self) -> impl Iterator<Item = (&Document, &str)> {
        self.documents.iter().filter_map(|d| match d {
            Parsed::Document(document, source) => Some((document, source.as_str())),
            Parsed::Rejected { .. } => None,
        })
    }

    /// Whether any document was rejected.
    pub fn has_rejected(&self) -> bool {
        self.documents
            .iter()
            .any(|d| matches!(d, Parsed::Rejected { .. }))
    }
}

impl FileProvider {
    /// A provider for `directory`; nothing is read until [`FileProvider::load`].
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        FileProvider {
            directory: directory.into(),
            files: BTreeMap::new(),
            rules: Rules::default(),
            allow_cross_namespace: false,
            native_lb_by_default: false,
        }
    }

    /// Lets references name objects in other namespaces (Traefik's `allowCrossNamespace`).
    pub fn allow_cross_namespace(mut self, allow: bool) -> Self {
        self.allow_cross_namespace = allow;
        self
    }

    /// Balances to the cluster IP of Services whose references do not set `nativeLB`
    /// (Traefik's `nativeLBByDefault`).
    pub fn native_lb_by_default(mut self, native: bool) -> Self {
        self.native_lb_by_default = native;
        self
    }

    /// Re-reads the directory. A file whose text did not change since the last load is not
    /// parsed again. Rejected documents keep their last good version; the diagnostics say
    /// what failed and what was kept.
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
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) => {
                    diagnostics.push(file_error(
                        &path,
                        None,
                        format!("cannot read file: {error}"),
                    ));
                    if self.files.contains_key(&path) {
                        diagnostics.push(kept_file(&path));
                    }
                    continue;
                }
            };
            let text_hash = hash(&text);
            if let Some(contents) = self.files.get(&path) {
                if contents.text_hash == text_hash {
                    diagnostics.extend(contents.diagnostics.clone());
                    continue;
                }
            }
            let parsed = parse_file_with(&path, &text, &mut self.rules.lock());
            let previous = self.files.remove(&path).unwrap_or_default();
            let contents = apply(&path, parsed, previous.documents, text_hash);
            diagnostics.extend(contents.diagnostics.clone());
            self.files.insert(path, contents);
        }
        diagnostics.normalize();
        (self.snapshot(), diagnostics)
    }

    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            rules: self.rules.clone(),
            allow_cross_namespace: self.allow_cross_namespace,
            native_lb_by_default: self.native_lb_by_default,
            ..Snapshot::default()
        };
        for contents in self.files.values() {
            for (document, source) in &contents.documents {
                let object = match document {
                    Document::IngressRoute(o) => {
                        snapshot.ingress_routes.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::Middleware(o) => {
                        snapshot.middlewares.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::TraefikService(o) => {
                        snapshot.traefik_services.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::Service(o) => {
                        snapshot.services.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::EndpointSlice(o) => {
                        snapshot.endpoint_slices.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::Uplink(o) => {
                        snapshot.uplinks.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::Secret(o) => {
                        snapshot.secrets.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::ConfigMap(o) => {
                        snapshot.config_maps.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::TlsStore(o) => {
                        snapshot.tls_stores.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::TlsOption(o) => {
                        snapshot.tls_options.push(Arc::clone(o));
                        o.object_ref()
                    }
                    Document::ServersTransport(o) => {
                        snapshot.servers_transports.push(Arc::clone(o));
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

/// A file's parsed documents put in force: good documents as they are; a rejected
/// document that names an object keeps that object's version from `previous` (the file's
/// documents in force until now), in its place; when a document could not be read far
/// enough to name its object, every object of `previous` that the file no longer defines
/// is kept, since that document may be the one that defined it.
fn apply(
    path: &Path,
    parsed: ParsedFile,
    mut previous: Vec<(Document, String)>,
    text_hash: u64,
) -> FileContents {
    let mut diagnostics = parsed.diagnostics;
    let mut documents = Vec::with_capacity(parsed.documents.len());
    let mut unreadable = Vec::new();
    let take_previous = |previous: &mut Vec<(Document, String)>, object: &ObjectRef| {
        let index = previous
            .iter()
            .position(|(d, _)| d.object_ref() == *object)?;
        Some(previous.swap_remove(index))
    };
    for document in parsed.documents {
        match document {
            Parsed::Document(document, source) => {
                // Its new version replaces the old one, whatever became of the old one's place.
                let _ = take_previous(&mut previous, &document.object_ref());
                documents.push((document, source));
            }
            Parsed::Rejected {
                object: Some(object),
                source,
            } => {
                if let Some((document, _)) = take_previous(&mut previous, &object) {
                    diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        reason: Reason::InvalidDocument,
                        object: Some(object),
                        source: Some(source.clone()),
                        field: None,
                        message: "document rejected; its last good contents keep serving".into(),
                    });
                    documents.push((document, source));
                }
            }
            Parsed::Rejected {
                object: None,
                source,
            } => unreadable.push(source),
        }
    }
    if let Some(source) = unreadable.first() {
        let defined: HashSet<ObjectRef> = documents.iter().map(|(d, _)| d.object_ref()).collect();
        for (document, old_source) in previous {
            let object = document.object_ref();
            if defined.contains(&object) {
                continue;
            }
            diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                reason: Reason::InvalidDocument,
                object: Some(object),
                source: Some(source.clone()),
                field: None,
                message: format!(
                    "a document of {} cannot be read; this object, which it may define, \
                     keeps its last good contents serving",
                    path.display()
                ),
            });
            documents.push((document, old_source));
        }
    }
    FileContents {
        documents,
        text_hash,
        diagnostics,
    }
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A file that could not be read keeps all its documents in force.
fn kept_file(path: &Path) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        reason: Reason::InvalidDocument,
        object: None,
        source: Some(path.display().to_string()),
        field: None,
        message: "file rejected; its last good contents keep serving".into(),
    }
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

/// Parses every document of one file, each on its own: an invalid document is rejected
/// with its errors and the others are kept; unknown kinds are reported and skipped.
pub fn parse_file(path: &Path, text: &str) -> ParsedFile {
    parse_file_with(path, text, &mut Interner::default())
}

/// [`parse_file`], checking rules through `rules` (shared with the translation).
fn parse_file_with(path: &Path, text: &str, rules: &mut Interner) -> ParsedFile {
    let mut parsed = ParsedFile::default();
    for (line, text) in split_documents(text) {
        let source = format!("{}:{line}", path.display());
        let value = match yaml::document(&text) {
            Ok(value) => value,
            Err(error) => {
                let at = line + error.line.map_or(0, |l| l - 1);
                parsed.diagnostics.push(file_error(
                    path,
                    Some(at),
                    format!("invalid YAML: {}", error.message),
                ));
                parsed.documents.push(Parsed::Rejected {
                    object: None,
                    source,
                });
                continue;
            }
        };
        match parse_document(value, &source, rules) {
            Ok(Some((document, mut warnings))) => {
                place_fields(warnings.iter_mut(), path, line, &text);
                parsed.diagnostics.extend(warnings);
                parsed.documents.push(Parsed::Document(document, source));
            }
            Ok(None) => {}
            // Unknown kinds are skipped: not an object Traverse reads.
            Err(diagnostic) if diagnostic.reason == Reason::UnknownKind => {
                parsed.diagnostics.push(*diagnostic);
            }
            Err(mut diagnostic) => {
                place_fields(std::iter::once(&mut *diagnostic), path, line, &text);
                // Only an object named by kind and name can keep a last good version.
                let object = diagnostic
                    .object
                    .clone()
                    .filter(|o| !o.kind.is_empty() && !o.name.is_empty());
                parsed.diagnostics.push(*diagnostic);
                parsed.documents.push(Parsed::Rejected { object, source });
            }
        }
    }
    parsed
}

/// Points each diagnostic that names a field of a document read from a file (its source is
/// the document's first line, `file.yaml:12`, as translating reports it) at that field's own
/// line. Files are read again, once each, so this is for diagnostics about to be shown.
pub fn place_on_lines<'a>(diagnostics: impl IntoIterator<Item = &'a mut Diagnostic>) {
    let mut files: BTreeMap<PathBuf, Vec<(usize, String)>> = BTreeMap::new();
    for diagnostic in diagnostics {
        let (Some(_), Some(source)) = (&diagnostic.field, &diagnostic.source) else {
            continue;
        };
        let Some((path, start)) = source
            .rsplit_once(':')
            .and_then(|(path, line)| Some((PathBuf::from(path), line.parse::<usize>().ok()?)))
        else {
            continue;
        };
        let documents = files.entry(path.clone()).or_insert_with_key(|path| {
            std::fs::read_to_string(path)
                .map(|text| split_documents(&text))
                .unwrap_or_default()
        });
        if let Some((_, text)) = documents.iter().find(|(line, _)| *line == start) {
            place_fields(std::iter::once(diagnostic), &path, start, text);
        }
    }
}

/// Points each diagnostic that names a field at that field's line of the file (the document
/// starting at `start`), instead of the document's first line.
fn place_fields<'a>(
    diagnostics: impl Iterator<Item = &'a mut Diagnostic>,
    path: &Path,
    start: usize,
    text: &str,
) {
    let mut fields = None;
    for diagnostic in diagnostics {
        let Some(field) = &diagnostic.field else {
            continue;
        };
        // Read the document's shape once, and only when a field is named.
        let Some(fields) = fields.get_or_insert_with(|| yaml::Fields::of(text)) else {
            return;
        };
        if let Some(at) = fields.line(field) {
            diagnostic.source = Some(format!("{}:{}", path.display(), start + at - 1));
        }
    }
}

/// A Secret's `data` values with their line breaks removed. Manifests wrap long base64
/// over lines (Traefik's documentation does, in `|2` blocks); Go's decoder, which Traefik
/// and `kubectl` use, skips `\r` and `\n`, while the strict decoder behind `data` does not.
fn without_line_breaks_in_data(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(data) = value.get_mut("data").and_then(|d| d.as_object_mut()) {
        for encoded in data.values_mut() {
            if let Some(text) = encoded.as_str().filter(|t| t.contains(['\r', '\n'])) {
                *encoded = text.replace(['\r', '\n'], "").into();
            }
        }
    }
    value
}

/// Parses one document by its apiVersion/kind. `Ok(None)` for an empty document.
fn parse_document(
    value: serde_json::Value,
    source: &str,
    rules: &mut Interner,
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
                if let Err(e) = rules.rule(&r.r#match) {
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
            Document::IngressRoute(Arc::new(route))
        }
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "Middleware") => {
            Document::Middleware(Arc::new(
                typed(value, &object, source, &mut warnings)
                    .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
            ))
        }
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "TraefikService") => {
            Document::TraefikService(Arc::new(
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
            Document::Service(Arc::new(service))
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
            Document::EndpointSlice(Arc::new(slice))
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
            Document::Uplink(Arc::new(uplink))
        }
        // `data` is base64 (bad base64 rejects the document, naming the key); whether
        // it holds a usable certificate is checked where a route or store names it.
        ("v1", "Secret") => Document::Secret(Arc::new(
            typed(
                without_line_breaks_in_data(value),
                &object,
                source,
                &mut warnings,
            )
            .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
        )),
        ("v1", "ConfigMap") => Document::ConfigMap(Arc::new(
            typed(value, &object, source, &mut warnings)
                .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
        )),
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "TLSStore") => {
            Document::TlsStore(Arc::new(
                typed(value, &object, source, &mut warnings)
                    .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
            ))
        }
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "ServersTransport") => {
            Document::ServersTransport(Arc::new(
                typed(value, &object, source, &mut warnings)
                    .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
            ))
        }
        ("traefik.io/v1alpha1" | "traefik.containo.us/v1alpha1", "TLSOption") => {
            Document::TlsOption(Arc::new(
                typed(value, &object, source, &mut warnings)
                    .map_err(|(f, m)| error(Reason::InvalidDocument, f, m))?,
            ))
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
