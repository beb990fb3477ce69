use super::*;
use crate::parse::field_path;

const GOOD: &str = r#"
# a comment before the first document
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {ports: [{port: 80}]}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web}
spec:
  routes:
    - match: Host(`a.example`)
      services: [{name: app, port: 80}]
"#;

/// The good documents and what was reported, or (when a document was rejected) what
/// was reported.
fn parse(text: &str) -> Result<(Vec<(Document, String)>, Diagnostics), Diagnostics> {
    let parsed = parse_file(Path::new("dir/app.yaml"), text);
    if parsed.has_rejected() {
        return Err(parsed.diagnostics);
    }
    let documents = parsed
        .good()
        .map(|(d, s)| (d.clone(), s.to_owned()))
        .collect();
    Ok((documents, parsed.diagnostics))
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Ok(_) => panic!("expected a document to be rejected"),
        Err(errors) => errors.iter().cloned().collect(),
    }
}

#[test]
fn documents_carry_their_starting_line() {
    let (documents, warnings) = parse(GOOD).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    let sources: Vec<&str> = documents.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(sources, ["dir/app.yaml:1", "dir/app.yaml:8"]);
    assert!(matches!(documents[1].0, Document::IngressRoute(_)));
}

#[test]
fn bad_documents_name_file_object_and_field() {
    // (document, expected source: the field's own line, expected object, expected field,
    // message fragment)
    let cases = [
        ("a: [unclosed", "dir/app.yaml:1", None, None, "invalid YAML"),
        (
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r}\nspec:\n  routes:\n    - match: Host(`a`) &&\n",
            "dir/app.yaml:6",
            Some("IngressRoute default/r"),
            Some("spec.routes[0].match"),
            "column",
        ),
        (
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r, namespace: ns}\nspec:\n  routes:\n    - match: Path(`/`)\n      services: [{name: s, port: [1]}]\n",
            "dir/app.yaml:7",
            Some("IngressRoute ns/r"),
            Some("spec.routes[0].services[0].port"),
            "",
        ),
        (
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r}\nspec:\n  routes:\n    - match: Path(`/`)\n      services: [{name: s, port: 70000}]\n",
            "dir/app.yaml:7",
            Some("IngressRoute default/r"),
            Some("spec.routes[0].services[0].port"),
            "not a port number",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n",
            "dir/app.yaml:4",
            Some("Service default/s"),
            Some("spec.ports[0].port"),
            "not a port number",
        ),
        (
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\naddressType: IPv4\nendpoints: [{addresses: [not-an-ip]}]\n",
            "dir/app.yaml:5",
            Some("EndpointSlice default/e"),
            Some("endpoints[0].addresses[0]"),
            "not an IP address",
        ),
        ("apiVersion: v1\nkind: Service\n", "dir/app.yaml:1", Some("Service default/"), Some("metadata.name"), "required"),
        ("kind: Service\nmetadata: {name: x}\n", "dir/app.yaml:1", Some("Service default/x"), None, "apiVersion and kind"),
    ];
    for (text, source, object, field, fragment) in cases {
        let found = errors(text);
        let first = &found[0];
        assert_eq!(first.severity, Severity::Error, "{text}");
        assert_eq!(first.source.as_deref(), Some(source), "{text}");
        assert_eq!(
            first.object.as_ref().map(|o| o.to_string()).as_deref(),
            object,
            "{text}"
        );
        assert_eq!(first.field.as_deref(), field, "{text}");
        assert!(
            first.message.contains(fragment),
            "{text}: {}",
            first.message
        );
    }
}

#[test]
fn one_bad_document_is_rejected_alone_and_points_at_its_line() {
    let text = format!("{GOOD}---\napiVersion: v1\nkind: Service\nmetadata: {{name: bad}}\nspec: {{ports: [{{port: nope}}]}}\n");
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    // The document starts on line 16; the port is on line 19.
    assert_eq!(found[0].source.as_deref(), Some("dir/app.yaml:19"));
    assert_eq!(found[0].field.as_deref(), Some("spec.ports[0].port"));
    // The file's other documents are kept.
    let parsed = parse_file(Path::new("dir/app.yaml"), &text);
    let good: Vec<String> = parsed
        .good()
        .map(|(d, _)| d.object_ref().to_string())
        .collect();
    assert_eq!(good, ["Service default/app", "IngressRoute default/web"]);
    assert_eq!(
        parsed.documents.last(),
        Some(&Parsed::Rejected {
            object: Some(ObjectRef {
                kind: "Service".into(),
                namespace: "default".into(),
                name: "bad".into(),
            }),
            source: "dir/app.yaml:16".into(),
        })
    );
}

#[test]
fn unknown_kinds_and_fields_are_reported_without_rejecting() {
    let text = format!(
        "{GOOD}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: typo}}\nspec: {{portz: []}}\n"
    );
    let (documents, reported) = parse(&text).expect("kept");
    assert_eq!(documents.len(), 3);
    let reported: Vec<_> = reported
        .iter()
        .map(|d| (d.severity, d.reason, d.field.clone()))
        .collect();
    assert!(
        reported.contains(&(Severity::Error, Reason::UnknownKind, None)),
        "{reported:?}"
    );
    assert!(
        reported.contains(&(
            Severity::Warning,
            Reason::Unsupported,
            Some("spec.portz".into())
        )),
        "{reported:?}"
    );
}

#[test]
fn ignored_paths_use_the_diagnostic_form() {
    assert_eq!(field_path("spec.?.ports.0.?.nme"), "spec.ports[0].nme");
    assert_eq!(field_path("portz"), "portz");
}

#[test]
fn a_broken_edit_keeps_the_last_good_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, GOOD).expect("write");
    std::fs::write(dir.path().join(".hidden.yaml"), "not: [valid").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let mut provider = FileProvider::new(dir.path());
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(snapshot.ingress_routes.len(), 1);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");

    std::fs::write(&path, GOOD.replace("Host(`a.example`)", "Host(`b.example`")).expect("write");
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(
        snapshot.ingress_routes[0].spec.routes[0].r#match, "Host(`a.example`)",
        "last good kept"
    );
    assert!(diagnostics.has_errors());
    assert!(diagnostics
        .iter()
        .any(|d| d.message.contains("last good contents keep serving")));

    std::fs::remove_file(&path).expect("remove");
    let (snapshot, _) = provider.load();
    assert!(
        snapshot.ingress_routes.is_empty(),
        "a deleted file's objects go away"
    );
}

#[tokio::test]
async fn watch_publishes_changes_once_debounced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, GOOD).expect("write");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let provider = FileProvider::new(dir.path());
    let task = tokio::spawn(provider.watch(
        Duration::from_millis(50),
        move |snapshot, _| {
            let _ = tx.send(snapshot.ingress_routes[0].spec.routes[0].r#match.clone());
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("initial load");
    assert_eq!(first.as_deref(), Some("Host(`a.example`)"));

    // A burst of writes ends in one publish of the final content.
    for host in ["b", "c", "d"] {
        std::fs::write(&path, GOOD.replace("a.example", &format!("{host}.example")))
            .expect("write");
    }
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("reload");
    assert_eq!(next.as_deref(), Some("Host(`d.example`)"));
    // Touching without changing content publishes nothing.
    std::fs::write(&path, GOOD.replace("a.example", "d.example")).expect("write");
    assert!(tokio::time::timeout(Duration::from_millis(400), rx.recv())
        .await
        .is_err());

    stop_tx.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .expect("join");
}

fn route_doc(name: &str, host: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}}}\nspec:\n  routes:\n    - match: Host(`{host}`)\n      services: [{{name: app, port: 80}}]\n"
    )
}

fn hosts(snapshot: &Snapshot) -> Vec<String> {
    let mut hosts: Vec<String> = snapshot
        .ingress_routes
        .iter()
        .map(|r| format!("{}={}", r.key().1, r.spec.routes[0].r#match))
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn a_bad_document_is_rejected_alone_and_keeps_its_last_good_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    let write = |docs: &[String]| std::fs::write(&path, docs.join("---\n")).expect("write");
    write(&[
        route_doc("a", "a1"),
        route_doc("b", "b1"),
        route_doc("c", "c1"),
    ]);
    let mut provider = FileProvider::new(dir.path());
    let (snapshot, diagnostics) = provider.load();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(hosts(&snapshot).len(), 3);

    // `b` breaks while `a` and `c` change: their edits apply, `b` keeps its last version.
    write(&[
        route_doc("a", "a2"),
        route_doc("b", "b2`) &&"),
        route_doc("c", "c2"),
        route_doc("d", "d2`"),
    ]);
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(
        hosts(&snapshot),
        ["a=Host(`a2`)", "b=Host(`b1`)", "c=Host(`c2`)"]
    );
    let errors: Vec<(String, Option<String>)> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            (
                d.object.as_ref().expect("named").name.clone(),
                d.source.clone(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            // Each at its rule's line: the documents start on lines 9 and 25.
            ("b".to_owned(), Some(format!("{}:14", path.display()))),
            ("d".to_owned(), Some(format!("{}:30", path.display())))
        ]
    );
    let kept: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.message.contains("last good contents keep serving"))
        .map(|d| d.object.as_ref().expect("named").name.as_str())
        .collect();
    assert_eq!(kept, ["b"], "a new object has no last good version");
    // The kept version stands where the document stands now, in file order.
    assert_eq!(
        snapshot.source_of(&ObjectRef {
            kind: "IngressRoute".into(),
            namespace: "default".into(),
            name: "b".into(),
        }),
        Some(format!("{}:9", path.display()))
    );

    // Loading the unchanged file again gives the same snapshot and the same reports.
    let again = provider.load();
    assert_eq!(again, (snapshot, diagnostics));

    // Fixed: everything applies and nothing is reported.
    write(&[route_doc("a", "a3"), route_doc("b", "b3")]);
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(hosts(&snapshot), ["a=Host(`a3`)", "b=Host(`b3`)"]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn an_unreadable_document_keeps_the_objects_the_file_no_longer_defines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    let write = |docs: &[String]| std::fs::write(&path, docs.join("---\n")).expect("write");
    write(&[route_doc("a", "a1"), route_doc("b", "b1")]);
    let mut provider = FileProvider::new(dir.path());
    assert_eq!(hosts(&provider.load().0).len(), 2);

    // `b`'s document no longer parses as YAML: it cannot say it is `b`, so `b` stays;
    // `a` changes and applies.
    write(&[route_doc("a", "a2"), "metadata: [unclosed\n".to_owned()]);
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(hosts(&snapshot), ["a=Host(`a2`)", "b=Host(`b1`)"]);
    assert!(diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error && d.message.contains("invalid YAML")));
    assert!(diagnostics.iter().any(|d| d.severity == Severity::Warning
        && d.object.as_ref().is_some_and(|o| o.name == "b")
        && d.message.contains("keeps its last good contents serving")));

    // Once every document reads, objects the file no longer defines go away.
    write(&[route_doc("a", "a2")]);
    let (snapshot, diagnostics) = provider.load();
    assert_eq!(hosts(&snapshot), ["a=Host(`a2`)"]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn loads_share_compiled_rules_with_the_translation() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.yaml"), GOOD).expect("write");
    let mut provider = FileProvider::new(dir.path());
    let (snapshot, _) = provider.load();
    // Checking the file parsed the rule once; translating and reloading reuse it.
    assert_eq!(snapshot.rules.lock().stats().rules_parsed, 1);
    let table = crate::translate(&snapshot, &crate::EntryPoints::default());
    assert_eq!(table.routes.len(), 1);
    std::fs::write(dir.path().join("more.yaml"), route_doc("more", "b.example")).expect("write");
    let (snapshot, _) = provider.load();
    let again = crate::translate(&snapshot, &crate::EntryPoints::default());
    assert_eq!(again.routes.len(), 2);
    let stats = snapshot.rules.lock().stats();
    assert_eq!(stats.rules_parsed, 2, "{stats:?}");
    let first = table.routes.routes().next().expect("route");
    assert!(again.routes.routes().any(|r| r.rule.ptr_eq(&first.rule)));
}

#[test]
fn a_syntax_error_names_one_line_counted_from_the_file_start() {
    // The second document (from line 16) breaks on its fifth line, line 20 of the file.
    let text = format!(
        "{GOOD}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   namespace: y\n"
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].source.as_deref(),
        Some("dir/app.yaml:20"),
        "{found:?}"
    );
    assert!(found[0].message.starts_with("invalid YAML: "), "{found:?}");
    assert!(
        !found[0].message.contains("line"),
        "one line number: {found:?}"
    );
}

#[test]
fn warnings_about_fields_point_at_the_field() {
    let text = format!(
        "{GOOD}---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: other}}\nspec:\n  routes:\n    - match: Host(`b.example`)\n      services:\n        - name: app\n          port: 80\n          stickyy: {{cookie: {{}}}}\n"
    );
    let (_, reported) = parse(&text).expect("kept");
    let found: Vec<_> = reported
        .iter()
        .map(|d| (d.field.as_deref(), d.source.as_deref()))
        .collect();
    assert_eq!(
        found,
        [(
            Some("spec.routes[0].services[0].stickyy"),
            Some("dir/app.yaml:25")
        )]
    );
}

/// Base64 wrapped over lines, as Traefik's documentation writes basicAuth Secrets, decodes
/// as Go decodes it; anything else that is not base64 still rejects the document.
#[test]
fn secret_data_may_wrap_its_base64_over_lines() {
    let wrapped = "apiVersion: v1\nkind: Secret\nmetadata: {name: authsecret}\ndata:\n  users: |2\n    dGVzdDokYXByMSRINnVza2trVyRJZ1hMUDZld1RyU3VCa1RycUU4d2ovCnRlc3QyOiRhcHIxJGQ5\n    aHI5SEJCJDRIeHdnVWlyM0hQNEVzZ2dQL1FObzAK\n";
    let (documents, _) = parse(wrapped).expect("valid");
    let Document::Secret(secret) = &documents[0].0 else {
        panic!("not a Secret")
    };
    let users = &secret.data.as_ref().expect("data")["users"].0;
    assert_eq!(
        String::from_utf8_lossy(users),
        "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\ntest2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0\n"
    );

    let broken = wrapped.replace("aHI5", "a*I5");
    let errors = errors(&broken);
    assert_eq!(
        errors[0].object.as_ref().expect("object").name,
        "authsecret"
    );
    assert!(
        errors[0]
            .field
            .as_deref()
            .is_some_and(|f| f.contains("data")),
        "{errors:?}"
    );
}
