//! Reads `/metrics` answers with a real third-party parser: those of the Python
//! `prometheus_client` package, run in a child process (exposition on stdin, the parsed
//! families as JSON on stdout).
//!
//! - [`Format::Text`], the Prometheus text format 0.0.4:
//!   `prometheus_client.parser.text_string_to_metric_families`. That parser is lenient
//!   (it accepts extra fields after a sample's timestamp, for one).
//! - [`Format::OpenMetrics`], OpenMetrics 1.0 text:
//!   `prometheus_client.openmetrics.parser.text_string_to_metric_families`, which is
//!   strict: it rejects a missing `# EOF`, negative counters, unordered or incomplete
//!   histogram buckets, interleaved families, malformed exemplars, and so on.
//!
//! On top of either parser, [`parse`] rejects a family name that occurs twice and a
//! series (sample name and labels) that occurs twice, which the 0.0.4 parser lets pass.
//!
//! Names, as the parsers report them: a counter *family* is named without `_total`, its
//! *samples* with it (`# TYPE requests_total counter` then `requests_total 3` gives
//! family `requests` with sample `requests_total`; OpenMetrics writes the family as
//! `# TYPE requests counter` to the same effect). Histogram families carry the base name,
//! their samples `_bucket` (label `le`), `_sum`, `_count` (and `_created` in
//! OpenMetrics). So: [`family`] takes the base name, [`sum`] and [`samples`] take
//! sample names exactly as they appear on the sample lines.
//!
//! The interpreter is `TRAVERSE_PYTHON`, else `$TRAVERSE_TOOLS/bin/traverse-python`
//! (default `TRAVERSE_TOOLS`: `~/.cache/traverse/tools`), a wrapper that
//! `scripts/install-prereqs.sh` writes for the virtualenv holding the pinned
//! `prometheus_client`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The exposition format to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// An `Accept` header value asking for this format.
    pub fn accept(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0",
        }
    }

    fn script_arg(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
        }
    }
}

/// A metric family's type (`# TYPE`); `Unknown` for untyped samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

/// A metric family: its samples in exposition order.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The base name (a counter's without `_total`, see the module documentation).
    pub name: String,
    pub kind: Kind,
    /// `# HELP`, unescaped; "" when absent.
    pub help: String,
    /// `# UNIT` (OpenMetrics only); "" when absent.
    pub unit: String,
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The name on the sample line (`requests_total`, `latency_bucket`, ...).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// The sample's timestamp in seconds, when the line has one.
    pub timestamp: Option<f64>,
    /// OpenMetrics only.
    pub exemplar: Option<Exemplar>,
}

/// An OpenMetrics exemplar: `# {trace_id="..."} 0.12 1700000000.000`.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// Seconds since the Unix epoch, when given.
    pub timestamp: Option<f64>,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Whether every `(label, value)` pair is among this sample's labels.
    pub fn has_labels(&self, pairs: &[(&str, &str)]) -> bool {
        pairs
            .iter()
            .all(|(name, value)| self.label(name) == Some(value))
    }
}

/// The family with base name `name` (see the module documentation on names).
pub fn family<'a>(families: &'a [Family], name: &str) -> Option<&'a Family> {
    families.iter().find(|family| family.name == name)
}

/// Samples named `sample_name` whose labels include every pair of `labels`.
pub fn samples<'a>(
    families: &'a [Family],
    sample_name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    families
        .iter()
        .flat_map(|family| &family.samples)
        .filter(move |sample| sample.name == sample_name && sample.has_labels(labels))
}

/// The sum of the values of [`samples`]`(families, sample_name, labels)`; 0 when none
/// match.
pub fn sum(families: &[Family], sample_name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(families, sample_name, labels)
        .map(|sample| sample.value)
        .sum()
}

/// Every sample that carries an exemplar, with its family and the exemplar.
pub fn exemplars(families: &[Family]) -> impl Iterator<Item = (&Family, &Sample, &Exemplar)> {
    families.iter().flat_map(|family| {
        family
            .samples
            .iter()
            .filter_map(move |sample| Some((family, sample, sample.exemplar.as_ref()?)))
    })
}

/// Parses `text` in `format`. `Err` carries the parser's message when it rejects the
/// exposition. Panics when the interpreter is missing or fails otherwise (an environment
/// problem, not a verdict on the exposition).
pub fn parse(text: &str, format: Format) -> Result<Vec<Family>, String> {
    let python = python();
    let mut child = Command::new(&python)
        // Isolated: no PYTHON* variables, no user site-packages.
        .args(["-I", "-c", SCRIPT, format.script_arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}", python.display()));
    if let Some(mut stdin) = child.stdin.take() {
        // The script reads all of its input before it writes anything, so this cannot
        // deadlock. A failed write (the interpreter died) shows in the exit status.
        let _ = stdin.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for {}: {error}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(REJECTED) => return Err(stderr.trim().to_owned()),
        _ => panic!(
            "{} failed ({}); is prometheus_client installed (scripts/install-prereqs.sh)?\n{stderr}",
            python.display(),
            output.status
        ),
    }
    let families = decode(&output.stdout);
    check_unique(&families)?;
    Ok(families)
}

/// The interpreter: `TRAVERSE_PYTHON`, else `$TRAVERSE_TOOLS/bin/traverse-python`.
/// Panics when it is missing.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAVERSE_PYTHON") {
        return PathBuf::from(path);
    }
    let path = crate::tool("traverse-python");
    assert!(
        path.is_file(),
        "traverse-python, the interpreter with the tests' Prometheus parser, is missing at \
         {}: run scripts/install-prereqs.sh (or set TRAVERSE_PYTHON to a python with \
         prometheus_client)",
        path.display()
    );
    path
}

/// The script's exit status when the parser rejects the input.
const REJECTED: i32 = 3;

/// argv[1]: `text` or `openmetrics`; stdin: the exposition (UTF-8); stdout: JSON.
/// Numbers travel as their `repr` strings: JSON has no NaN or infinities, and Rust
/// parses Python's `nan`, `inf` and `-inf`.
const SCRIPT: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families

def num(value):
    return None if value is None else repr(float(value))

def sample(s):
    if getattr(s, "native_histogram", None) is not None:
        raise ValueError(f"native histogram sample {s.name}: not supported by the tests")
    e = s.exemplar
    return {
        "name": s.name, "labels": s.labels, "value": num(s.value), "timestamp": num(s.timestamp),
        "exemplar": None if e is None else
            {"labels": e.labels, "value": num(e.value), "timestamp": num(e.timestamp)},
    }

text = sys.stdin.buffer.read().decode("utf-8")
try:
    families = [
        {"name": f.name, "type": f.type, "help": f.documentation, "unit": f.unit,
         "samples": [sample(s) for s in f.samples]}
        for f in text_string_to_metric_families(text)
    ]
except Exception as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(3)
json.dump(families, sys.stdout)
"#;

/// Families from the script's JSON. Panics on anything the script does not write.
fn decode(json: &[u8]) -> Vec<Family> {
    let value: Value = serde_json::from_slice(json).expect("the parser script writes JSON");
    array(&value, "families")
        .iter()
        .map(|family| Family {
            name: string(family, "name"),
            kind: kind(&string(family, "type")),
            help: string(family, "help"),
            unit: string(family, "unit"),
            samples: array(&family["samples"], "samples")
                .iter()
                .map(|sample| Sample {
                    name: string(sample, "name"),
                    labels: labels(&sample["labels"]),
                    value: number(&sample["value"]).expect("a sample has a value"),
                    timestamp: number(&sample["timestamp"]),
                    exemplar: match &sample["exemplar"] {
                        Value::Null => None,
                        exemplar => Some(Exemplar {
                            labels: labels(&exemplar["labels"]),
                            value: number(&exemplar["value"]).expect("an exemplar has a value"),
                            timestamp: number(&exemplar["timestamp"]),
                        }),
                    },
                })
                .collect(),
        })
        .collect()
}

fn array<'a>(value: &'a Value, what: &str) -> &'a [Value] {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {value}"))
}

fn string(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => panic!("{key}: not a string: {other}"),
    }
}

fn number(value: &Value) -> Option<f64> {
    let text = value.as_str()?;
    Some(
        text.parse()
            .unwrap_or_else(|error| panic!("number {text:?}: {error}")),
    )
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("labels: not an object: {value}"))
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("label {name}: not a string: {value}"));
            (name.clone(), value.to_owned())
        })
        .collect()
}

fn kind(name: &str) -> Kind {
    match name {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "histogram" => Kind::Histogram,
        "gaugehistogram" => Kind::GaugeHistogram,
        "summary" => Kind::Summary,
        "info" => Kind::Info,
        "stateset" => Kind::StateSet,
        "unknown" | "untyped" => Kind::Unknown,
        other => panic!("unexpected metric type {other:?}"),
    }
}

/// Rejects a family or a series that occurs twice: scrapers drop or reject the repeat,
/// while the 0.0.4 parser returns both.
fn check_unique(families: &[Family]) -> Result<(), String> {
    let mut names = HashSet::new();
    let mut series = HashSet::new();
    for family in families {
        if !names.insert(family.name.as_str()) {
            return Err(format!(
                "family {} occurs twice (samples not grouped, a repeated TYPE, or names \
                 equal once `_total` is stripped)",
                family.name
            ));
        }
        for sample in &family.samples {
            if !series.insert((sample.name.as_str(), &sample.labels)) {
                return Err(format!(
                    "series {}{:?} occurs twice",
                    sample.name, sample.labels
                ));
            }
        }
    }
    Ok(())
}
