//! The committed `crds/` are exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    for (file, crd) in traverse_api::crds::all() {
        let generated = traverse_api::crds::render(&crd).expect("render");
        let committed = std::fs::read_to_string(directory.join(&file)).unwrap_or_else(|e| {
            panic!("crds/{file}: {e}; run `cargo run -p traverse-api --bin crdgen`")
        });
        assert!(
            committed == generated,
            "crds/{file} differs from the types; run `cargo run -p traverse-api --bin crdgen`"
        );
    }
}

#[test]
fn every_kind_with_conditions_has_a_status_subresource() {
    // TLSOption, TLSStore and ServersTransport have no status in Traefik's CRDs either.
    for (file, crd) in traverse_api::crds::all()
        .into_iter()
        .filter(|(file, _)| !file.starts_with("tls") && !file.starts_with("serverstransports"))
    {
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}"
        );
    }
}
