//! One YAML document read with serde-saphyr: into a value the typed step reads (as the
//! Kubernetes provider reads JSON), and, only when a diagnostic names a field, the line
//! that field sits on.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

/// A document that is not YAML: the message, and the line (counted within the document)
/// where the parser stopped.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

/// How manifests are read: only `true` and `false` are booleans (YAML 1.2, as Kubernetes
/// objects are written), so `on`, `yes` or `y` stay strings.
pub(crate) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true, with_snippet: false }
}

/// Parses one document. An empty document (only `~` or `null`) is `Value::Null`.
pub(crate) fn document(text: &str) -> Result<serde_json::Value, SyntaxError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|error| {
        let inner = error.without_snippet();
        // The message alone: the line is reported once, in the diagnostic's source, counted
        // from the start of the file.
        let message = serde_saphyr::DefaultMessageFormatter
            .format_message(inner)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        SyntaxError {
            line: inner
                .location()
                .and_then(|l| usize::try_from(l.line()).ok())
                .filter(|line| *line > 0),
            message,
        }
    })
}

/// Where a document's keys and items sit, read only when a diagnostic names a field.
pub(crate) struct Fields(Node);

impl Fields {
    /// `None` when the document cannot be read.
    pub fn of(text: &str) -> Option<Fields> {
        serde_saphyr::from_str_with_options(text, options())
            .ok()
            .map(Fields)
    }

    /// The line (counted within the document) of the deepest key or item of `field` (as
    /// diagnostics write it: `spec.routes[0].services[1].port`) that the document has;
    /// `None` when it does not even have the first.
    pub fn line(&self, field: &str) -> Option<usize> {
        let mut node = &self.0;
        let mut line = None;
        for step in steps(field) {
            let next = match (step, node) {
                (Step::Key(key), Node::Map(entries)) => entries
                    .iter()
                    .find(|(k, _, _)| k == key)
                    .map(|(_, at, n)| (*at, n)),
                (Step::Index(index), Node::Seq(items)) => items.get(index).map(|(at, n)| (*at, n)),
                _ => None,
            };
            let Some((at, next)) = next else { break };
            line = Some(at);
            node = next;
        }
        line.and_then(|l| usize::try_from(l).ok())
    }
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `spec.routes[0].match` as `spec`, `routes`, `0`, `match`.
fn steps(field: &str) -> impl Iterator<Item = Step<'_>> {
    field.split('.').flat_map(|segment| {
        let (key, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        let key = (!key.is_empty()).then_some(Step::Key(key));
        let indexes = indexes
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok())
            .map(Step::Index);
        key.into_iter().chain(indexes)
    })
}

/// A document's shape with the line of each key and item; scalars carry nothing.
enum Node {
    Map(Vec<(String, u64, Node)>),
    Seq(Vec<(u64, Node)>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push((item.referenced.line(), item.value));
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key.value, key.referenced.line(), value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: web
spec:
  routes:
    - match: Host(`a.example`)
      services:
        - name: app
          port: 80
        - name: other
          port: 81
          sticky:
            cookie: {name: lb}
";

    #[test]
    fn fields_are_found_on_their_own_line() {
        let cases = [
            ("metadata.name", Some(4)),
            ("spec.routes[0].match", Some(7)),
            ("spec.routes[0].services[1].port", Some(12)),
            ("spec.routes[0].services[1].sticky", Some(13)),
            ("spec.routes[0].services[1].sticky.cookie.name", Some(14)),
            // A field the document does not have: its deepest ancestor that it has.
            ("spec.routes[0].services[1].weight", Some(11)),
            ("spec.routes[3]", Some(6)),
            ("status", None),
        ];
        let fields = Fields::of(ROUTE).expect("YAML");
        for (field, line) in cases {
            assert_eq!(fields.line(field), line, "{field}");
        }
    }

    #[test]
    fn a_syntax_error_has_its_line_once() {
        let error = document("a: 1\nb: [unclosed\nc: 2\n").expect_err("not YAML");
        assert!(
            error.line.is_some_and(|l| (2..=4).contains(&l)),
            "{error:?}"
        );
        assert!(!error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn documents_read_as_values() {
        let value = document(ROUTE).expect("YAML");
        assert_eq!(value["spec"]["routes"][0]["services"][1]["port"], 81);
        assert!(document("~\n").expect("YAML").is_null());
        assert_eq!(document("a: y\nb: on\n").expect("YAML")["b"], "on");
    }
}
