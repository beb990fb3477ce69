//! The committed CRDs are valid `apiextensions.k8s.io/v1` objects, checked by the
//! third-party `kubernetes-validate` against Kubernetes' own schemas (offline).

use std::path::{Path, PathBuf};
use std::process::Command;

const KUBERNETES: &str = "1.30.0";

fn crd_files() -> Vec<PathBuf> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("crds/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Exit success and the combined output of `kubernetes-validate --strict` on `file`.
fn validate(file: &Path) -> (bool, String) {
    let output = Command::new(traverse_e2e::tool("kubernetes-validate"))
        .args(["-k", KUBERNETES, "--strict"])
        .arg(file)
        .output()
        .expect("running kubernetes-validate (installed by scripts/install-prereqs.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_crd_validates_strictly() {
    let files = crd_files();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            "ingressroutes.traefik.io.yaml",
            "middlewares.traefik.io.yaml",
            "serverstransports.traefik.io.yaml",
            "tlsoptions.traefik.io.yaml",
            "tlsstores.traefik.io.yaml",
            "traefikservices.traefik.io.yaml",
            "uplinks.traverse.dev.yaml"
        ]
    );
    for file in &files {
        let (ok, output) = validate(file);
        assert!(
            ok && output.contains("passed"),
            "{}: {output}",
            file.display()
        );
    }
}

#[test]
fn the_validator_rejects_a_broken_crd() {
    // A field apiextensions/v1 does not have: strict validation must refuse it, or the
    // test above proves nothing.
    let file = &crd_files()[0];
    let text = std::fs::read_to_string(file).expect("read");
    let broken = text.replacen(
        "  scope: Namespaced",
        "  scope: Namespaced\n  notAField: true",
        1,
    );
    assert_ne!(broken, text, "the CRD has a scope line to break");
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("broken.yaml");
    std::fs::write(&copy, broken).expect("write");
    let (ok, output) = validate(&copy);
    assert!(!ok, "a CRD with an unknown field passed: {output}");
}
