//! Writes the CRDs of Traverse's kinds to directories (default `crds` and the Helm chart's
//! copy, `charts/traverse/files/crds`), or with `--check` fails when the files there
//! differ from what the types generate.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut directories: Vec<PathBuf> = Vec::new();
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: crdgen [--check] [DIRECTORY ...] (default: crds charts/traverse/files/crds)"
                );
                return ExitCode::SUCCESS;
            }
            other => directories.push(PathBuf::from(other)),
        }
    }
    if directories.is_empty() {
        directories = vec!["crds".into(), "charts/traverse/files/crds".into()];
    }
    let mut stale = Vec::new();
    for (directory, (file, crd)) in directories
        .iter()
        .flat_map(|d| traverse_api::crds::all().into_iter().map(move |c| (d, c)))
    {
        let path = directory.join(&file);
        let text = match traverse_api::crds::render(&crd) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: {file}: {error}");
                return ExitCode::FAILURE;
            }
        };
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        } else if let Err(error) = std::fs::write(&path, text) {
            eprintln!("error: writing {}: {error}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: out of date (run `cargo run -p traverse-api --bin crdgen`): {}",
            stale.join(", ")
        );
        ExitCode::FAILURE
    }
}
