//! A trace as a terminal waterfall: one line per span (service, cluster, kind, name,
//! the peer a CLIENT span called, a bar on the trace's time line, duration, status),
//! indented by depth in the span tree. Pure, so the layout is tested without gateways.
//!
//! Bars share one time line from the first start to the last end of the trace, not
//! the root's: a child gateway may end its span just after the parent ends its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// Characters of the time line every bar is placed on.
pub const BAR_WIDTH: usize = 24;

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Unspecified => "-",
            Kind::Internal => "INTERNAL",
            Kind::Server => "SERVER",
            Kind::Client => "CLIENT",
            Kind::Producer => "PRODUCER",
            Kind::Consumer => "CONSUMER",
        }
    }
}

/// A span's status; an error carries its message (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error(String),
}

/// One received span with what the waterfall shows of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Lowercase hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Status,
    /// The resource's `service.name`.
    pub service: String,
    /// The resource's `k8s.cluster.name`.
    pub cluster: String,
    /// Attribute values as text (`Int(502)` is `"502"`).
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Renders `spans` (one trace) as a header line and one line per span; empty input
/// renders as nothing. `colour` adds ANSI colours (for a terminal only).
pub fn render(spans: &[Span], colour: bool) -> String {
    let order = tree_order(spans);
    let Some(&(root, _)) = order.first() else {
        return String::new();
    };
    let paint = Paint { on: colour };
    let window_start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let window_end = spans.iter().map(|s| s.end_ns).max().unwrap_or(0);
    // A trace of instant spans still gets a time line.
    let window = window_end.saturating_sub(window_start).max(1);

    let mut out = String::new();
    let root = &spans[root];
    let attr = |key: &str| root.attributes.get(key).map(String::as_str);
    let request = match (attr("http.request.method"), attr("url.path")) {
        (Some(method), Some(path)) => format!("{method} {path}"),
        _ => root.name.clone(),
    };
    let mut header = format!("trace {}  {request}", root.trace_id);
    if let Some(status) = attr("http.response.status_code") {
        let _ = write!(header, "  {status}");
    }
    let _ = writeln!(
        out,
        "{}  ({})",
        paint.apply(BOLD, &header),
        format_duration(root.duration_ns())
    );

    let clusters = cluster_colours(spans, &order);
    let service_width = column_width(order.iter().map(|&(i, _)| spans[i].service.chars().count()));
    let cluster_width = column_width(order.iter().map(|&(i, _)| spans[i].cluster.chars().count()));
    let kind_width = column_width(order.iter().map(|&(i, _)| spans[i].kind.label().len()));
    let name_width = column_width(
        order
            .iter()
            .map(|&(i, depth)| 2 * depth + spans[i].name.chars().count()),
    );
    let peers: Vec<String> = order.iter().map(|&(i, _)| peer(&spans[i])).collect();
    let peer_width = column_width(peers.iter().map(|p| p.chars().count()));
    for (&(index, depth), peer) in order.iter().zip(&peers) {
        let span = &spans[index];
        let tint = clusters.get(span.cluster.as_str()).copied().unwrap_or("");
        let (begin, end) = bar_cells(span, window_start, window);
        let name = format!("{}{}", "  ".repeat(depth), span.name);
        let status = status_text(span);
        let status = match span.status {
            Status::Ok => paint.apply(GREEN, &status),
            Status::Error(_) => paint.apply(RED, &status),
            Status::Unset => status,
        };
        let line = format!(
            "  {}  {}  {}  {}  {}|{}{}{}| {:>9}  {}",
            paint.apply(tint, &pad(&span.service, service_width)),
            paint.apply(tint, &pad(&span.cluster, cluster_width)),
            paint.apply(DIM, &pad(span.kind.label(), kind_width)),
            pad(&name, name_width),
            if peer_width == 0 {
                String::new()
            } else {
                let fill = peer_width.saturating_sub(peer.chars().count());
                format!("{}{}  ", paint.apply(DIM, peer), " ".repeat(fill))
            },
            " ".repeat(begin),
            paint.apply(tint, &"█".repeat(end - begin)),
            " ".repeat(BAR_WIDTH - end),
            format_duration(span.duration_ns()),
            status,
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Spans in display order with their depth: depth-first from the roots, siblings by
/// start time. A span whose parent is not in the trace (not received, or in another
/// trace) is a root; spans caught in a parent cycle are shown as roots too.
pub fn tree_order(spans: &[Span]) -> Vec<(usize, usize)> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let parent = span.parent_span_id.as_str();
        if parent.is_empty() || parent == span.span_id || !ids.contains(parent) {
            roots.push(index);
        } else {
            children.entry(parent).or_default().push(index);
        }
    }
    let by_start = |a: &usize, b: &usize| {
        (spans[*a].start_ns, &spans[*a].span_id).cmp(&(spans[*b].start_ns, &spans[*b].span_id))
    };
    roots.sort_by(by_start);
    for siblings in children.values_mut() {
        siblings.sort_by(by_start);
    }

    let mut order = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    loop {
        while let Some((index, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[index], true) {
                continue;
            }
            order.push((index, depth));
            if let Some(kids) = children.get(spans[index].span_id.as_str()) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
        match (0..spans.len()).filter(|&i| !visited[i]).min_by(by_start) {
            Some(index) => stack.push((index, 0)),
            None => break,
        }
    }
    order
}

/// Whom a CLIENT span called: `→ child-a 127.0.0.1:9101` (the child gateway, when the
/// span names one) or `→ 127.0.0.1:9201`; empty for other spans.
pub fn peer(span: &Span) -> String {
    if span.kind != Kind::Client {
        return String::new();
    }
    let attr = |key: &str| span.attributes.get(key).map(String::as_str);
    let address = match (attr("server.address"), attr("server.port")) {
        (Some(host), Some(port)) if host.contains(':') => format!("[{host}]:{port}"),
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    };
    match (attr("traverse.child"), address.is_empty()) {
        (Some(child), false) => format!("→ {child} {address}"),
        (Some(child), true) => format!("→ {child}"),
        (None, false) => format!("→ {address}"),
        (None, true) => String::new(),
    }
}

/// The status column: `OK`, `ERROR: <message>` (the message, else the span's
/// `error.type`), or nothing when unset.
pub fn status_text(span: &Span) -> String {
    match &span.status {
        Status::Unset => String::new(),
        Status::Ok => "OK".to_owned(),
        Status::Error(message) => {
            let detail = if message.is_empty() {
                span.attributes.get("error.type").map_or("", String::as_str)
            } else {
                message
            };
            if detail.is_empty() {
                "ERROR".to_owned()
            } else {
                format!("ERROR: {detail}")
            }
        }
    }
}

/// `412 ns`, `87 µs`, `3.2 ms`, `1.25 s`.
pub fn format_duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{} µs", ns / 1_000),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// The cells `[begin, end)` of the span's bar: at least one cell, inside the time line.
fn bar_cells(span: &Span, window_start: u64, window: u64) -> (usize, usize) {
    let cell = |t: u64| {
        let offset = t.saturating_sub(window_start).min(window) as f64;
        ((offset / window as f64) * BAR_WIDTH as f64).round() as usize
    };
    let begin = cell(span.start_ns).min(BAR_WIDTH - 1);
    let end = cell(span.end_ns).clamp(begin + 1, BAR_WIDTH);
    (begin, end)
}

fn column_width(widths: impl Iterator<Item = usize>) -> usize {
    widths.max().unwrap_or(0)
}

fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(text.chars().count());
    format!("{text}{}", " ".repeat(fill))
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
/// One per cluster, in order of first appearance.
const CLUSTER_PALETTE: [&str; 5] = ["\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[34m", "\x1b[32m"];

/// Each cluster's colour, so a hop across clusters stands out.
fn cluster_colours<'a>(
    spans: &'a [Span],
    order: &[(usize, usize)],
) -> HashMap<&'a str, &'static str> {
    let mut colours = HashMap::new();
    for &(index, _) in order {
        let next = CLUSTER_PALETTE[colours.len() % CLUSTER_PALETTE.len()];
        colours.entry(spans[index].cluster.as_str()).or_insert(next);
    }
    colours
}

struct Paint {
    on: bool,
}

impl Paint {
    fn apply(&self, code: &str, text: &str) -> String {
        if self.on && !code.is_empty() && !text.is_empty() {
            format!("{code}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            name: format!("span {id}"),
            kind: Kind::Server,
            start_ns: start,
            end_ns: end,
            status: Status::Unset,
            service: "svc".into(),
            cluster: "edge".into(),
            attributes: BTreeMap::new(),
        }
    }

    fn names(spans: &[Span]) -> Vec<(String, usize)> {
        tree_order(spans)
            .into_iter()
            .map(|(i, depth)| (spans[i].span_id.clone(), depth))
            .collect()
    }

    #[test]
    fn children_follow_their_parent_by_start_time() {
        // Received out of order, as batches from several processes arrive.
        let spans = [
            span("c2", "root", 50, 60),
            span("g1", "c1", 20, 30),
            span("root", "", 0, 100),
            span("c1", "root", 10, 40),
        ];
        let order: Vec<(String, usize)> = names(&spans);
        let expected = [("root", 0), ("c1", 1), ("g1", 2), ("c2", 1)];
        assert_eq!(
            order,
            expected.map(|(id, depth)| (id.to_owned(), depth)).to_vec()
        );
    }

    #[test]
    fn a_span_whose_parent_did_not_arrive_is_a_root() {
        let spans = [
            span("root", "", 0, 100),
            span("orphan", "missing", 5, 20),
            span("child", "orphan", 6, 10),
        ];
        let order = names(&spans);
        assert_eq!(order[0], ("root".to_owned(), 0));
        assert_eq!(order[1], ("orphan".to_owned(), 0));
        assert_eq!(order[2], ("child".to_owned(), 1));
    }

    #[test]
    fn a_parent_cycle_still_shows_every_span_once() {
        let spans = [span("a", "b", 0, 10), span("b", "a", 1, 5)];
        let order = names(&spans);
        assert_eq!(order, vec![("a".to_owned(), 0), ("b".to_owned(), 1)]);
    }

    #[test]
    fn names_are_indented_by_depth() {
        let spans = [
            span("root", "", 0, 100),
            span("child", "root", 10, 90),
            span("grandchild", "child", 20, 80),
        ];
        let text = render(&spans, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].contains("SERVER  span root "), "{text}");
        assert!(lines[2].contains("SERVER    span child "), "{text}");
        assert!(lines[3].contains("SERVER      span grandchild "), "{text}");
    }

    fn bar(line: &str) -> &str {
        let start = line.find('|').map_or(0, |i| i + 1);
        let end = line.rfind('|').unwrap_or(line.len());
        &line[start..end]
    }

    #[test]
    fn bars_are_scaled_to_the_root_span() {
        let spans = [
            span("root", "", 1_000, 1_100),
            span("middle", "root", 1_025, 1_075),
            span("tiny", "root", 1_099, 1_100),
        ];
        let text = render(&spans, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(bar(lines[1]), "█".repeat(BAR_WIDTH));
        assert_eq!(
            bar(lines[2]),
            format!("{}{}{}", " ".repeat(6), "█".repeat(12), " ".repeat(6))
        );
        // Too short to fill a cell: still one cell, at the end of the line.
        assert_eq!(bar(lines[3]), format!("{}█", " ".repeat(BAR_WIDTH - 1)));
        for line in &lines[1..] {
            assert_eq!(bar(line).chars().count(), BAR_WIDTH, "{line}");
        }
    }

    #[test]
    fn header_names_the_request_and_the_whole_duration() {
        let mut root = span("root", "", 0, 3_200_000);
        root.attributes
            .insert("http.request.method".into(), "GET".into());
        root.attributes.insert("url.path".into(), "/hello".into());
        root.attributes
            .insert("http.response.status_code".into(), "200".into());
        let text = render(&[root], false);
        assert!(
            text.starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736  GET /hello  200  (3.2 ms)\n"),
            "{text}"
        );
    }

    #[test]
    fn status_text_per_status() {
        let mut s = span("a", "", 0, 1);
        assert_eq!(status_text(&s), "");
        s.status = Status::Ok;
        assert_eq!(status_text(&s), "OK");
        s.status = Status::Error(String::new());
        assert_eq!(status_text(&s), "ERROR");
        s.attributes
            .insert("error.type".into(), "ConnectRefused".into());
        assert_eq!(status_text(&s), "ERROR: ConnectRefused");
        s.status = Status::Error("upstream refused the connection".into());
        assert_eq!(status_text(&s), "ERROR: upstream refused the connection");
        let text = render(&[s], false);
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.ends_with("ERROR: upstream refused the connection")),
            "{text}"
        );
    }

    #[test]
    fn columns_line_up_and_colour_is_optional() {
        let mut parent = span("root", "", 0, 100);
        parent.service = "traverse-parent".into();
        let mut child = span("child", "root", 10, 90);
        child.service = "traverse-child".into();
        child.cluster = "eu-west".into();
        child.kind = Kind::Client;
        let plain = render(&[parent.clone(), child.clone()], false);
        assert!(!plain.contains('\x1b'));
        let bars: Vec<usize> = plain.lines().skip(1).filter_map(|l| l.find('|')).collect();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0], bars[1], "{plain}");
        assert!(
            plain.contains("  traverse-parent  edge     SERVER"),
            "{plain}"
        );
        assert!(
            plain.contains("  traverse-child   eu-west  CLIENT"),
            "{plain}"
        );
        let coloured = render(&[parent, child], true);
        assert!(coloured.contains("\x1b[36m"), "{coloured}");
    }

    #[test]
    fn client_spans_name_their_peer() {
        let mut client = span("c", "", 0, 1);
        client.kind = Kind::Client;
        assert_eq!(peer(&client), "");
        client
            .attributes
            .insert("server.address".into(), "127.0.0.1".into());
        client
            .attributes
            .insert("server.port".into(), "9201".into());
        assert_eq!(peer(&client), "→ 127.0.0.1:9201");
        client
            .attributes
            .insert("server.address".into(), "::1".into());
        assert_eq!(peer(&client), "→ [::1]:9201");
        client
            .attributes
            .insert("server.address".into(), "127.0.0.1".into());
        client
            .attributes
            .insert("traverse.child".into(), "child-a".into());
        assert_eq!(peer(&client), "→ child-a 127.0.0.1:9201");
        let mut server = client.clone();
        server.kind = Kind::Server;
        assert_eq!(peer(&server), "", "only CLIENT spans call a peer");

        let root = span("root", "", 0, 10);
        client.parent_span_id = "root".into();
        let text = render(&[root, client], false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].contains("→ child-a 127.0.0.1:9201  |"), "{text}");
        let bar_columns: Vec<Option<usize>> = lines[1..]
            .iter()
            .map(|l| l.chars().position(|c| c == '|'))
            .collect();
        assert_eq!(bar_columns[0], bar_columns[1], "{text}");
    }

    #[test]
    fn the_header_shows_the_root_duration_and_bars_the_whole_trace() {
        // The child's span ends after the root's: bars cover both, the header the root.
        let root = span("root", "", 0, 3_000_000);
        let late = span("late", "root", 1_000_000, 4_000_000);
        let text = render(&[root, late], false);
        assert!(
            text.lines().next().is_some_and(|l| l.ends_with("(3.0 ms)")),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            bar(lines[1]),
            format!("{}{}", "█".repeat(18), " ".repeat(6))
        );
        assert_eq!(
            bar(lines[2]),
            format!("{}{}", " ".repeat(6), "█".repeat(18))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(412), "412 ns");
        assert_eq!(format_duration(87_400), "87 µs");
        assert_eq!(format_duration(3_240_000), "3.2 ms");
        assert_eq!(format_duration(1_250_000_000), "1.25 s");
    }

    #[test]
    fn nothing_to_render() {
        assert_eq!(render(&[], true), "");
    }
}
