//! The input each fuzz target (`fuzz/fuzz_targets/`) hands to one of Traverse's parsers.
//! A target passes when the parser returns, whatever it returns: an error is the expected
//! answer to most inputs, a panic or a hang is a bug. The corpus replay test runs the
//! same functions over the committed corpus on every test run, fuzzer or not.

use std::path::PathBuf;
use std::sync::OnceLock;

use traverse_provider::file::FileProvider;
use traverse_provider::{translate, EntryPoints};

/// One fuzz target: what it feeds to Traverse, given the fuzzer's bytes.
pub type Target = fn(&[u8]);

/// Fuzz targets by name, as named under `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 4] = [
    ("rule", rule),
    ("trace_context", trace_context),
    ("config", config),
    ("manifest", manifest),
];

/// A routing rule (`Host(…) && PathPrefix(…)`), parsed.
pub fn rule(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = traverse_router::Rule::parse(text);
    }
}

/// `traceparent` and `tracestate` values: the first line is the traceparent, the others
/// tracestate fields.
pub fn trace_context(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let _ = traverse_telemetry::propagation::parse_traceparent(lines.next().unwrap_or(""));
    let states: Vec<&str> = lines.collect();
    let _ = traverse_telemetry::propagation::parse_tracestate(&states);
}

/// A static configuration file, parsed and validated.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = traverse_config::Config::parse(text, "fuzz.yaml") {
            let _ = config.validate();
        }
    }
}

/// A manifest file in the file provider's directory, loaded and translated into a
/// routing table, as a reload does.
pub fn manifest(data: &[u8]) {
    static DIRECTORY: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    let Some(directory) = DIRECTORY.get_or_init(|| tempfile::tempdir().ok()) else {
        return;
    };
    let path: PathBuf = directory.path().join("manifest.yaml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let (snapshot, _diagnostics) = FileProvider::new(directory.path()).load();
    let entry_points = EntryPoints::new([("web".to_owned(), false), ("uplink".to_owned(), true)]);
    let _ = translate(&snapshot, &entry_points);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Every committed corpus input, through its target: none may panic. Inputs the fuzzer
    /// found that once failed are kept here, so the fix stays.
    #[test]
    fn the_corpus_passes_every_target() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let directory = corpus.join(name);
            let entries = std::fs::read_dir(&directory)
                .unwrap_or_else(|e| panic!("{}: {e}", directory.display()));
            let mut inputs = 0;
            for entry in entries {
                let path = entry.expect("a corpus entry").path();
                let data = std::fs::read(&path).expect("a corpus file");
                target(&data);
                inputs += 1;
            }
            assert!(inputs > 0, "{name}: empty corpus");
            replayed += inputs;
        }
        assert!(replayed >= TARGETS.len());
    }
}
