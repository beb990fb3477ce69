//! `traverse validate`: everything `run` would load, checked without serving.

use std::path::Path;
use std::process::ExitCode;

use traverse_config::Config;
use traverse_provider::file::FileProvider;
use traverse_provider::tls::TlsTranslator;
use traverse_provider::{translate, Severity};

pub fn validate(path: &Path, strict: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = crate::run::telemetry_settings(&config) {
        eprintln!("error: {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    // Reads the children's TLS files, as `run` would.
    if let Err(error) = traverse_proxy::Topology::new(&config) {
        eprintln!("error: {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    let Some(file) = &config.providers.file else {
        let why = if config.providers.kubernetes.is_some() {
            "the Kubernetes provider reports each object's problems as it watches"
        } else {
            "no file provider, no manifests to check"
        };
        println!("{}: configuration is valid ({why})", path.display());
        return ExitCode::SUCCESS;
    };
    let (snapshot, mut diagnostics) = FileProvider::new(&file.directory)
        .allow_cross_namespace(file.allow_cross_namespace)
        .native_lb_by_default(file.native_lb_by_default)
        .load();
    let entry_points = crate::run::entry_points(&config);
    let table = translate(&snapshot, &entry_points);
    diagnostics.extend(table.diagnostics);
    // Certificates are checked as `run` checks them (without a last good one to keep).
    let (_, tls) = TlsTranslator::default().translate(&snapshot, &entry_points);
    diagnostics.extend(tls);
    traverse_provider::file::place_on_lines(diagnostics.iter_mut());
    diagnostics.normalize();

    for diagnostic in diagnostics.iter() {
        eprintln!("{diagnostic}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let objects = snapshot.ingress_routes.len()
        + snapshot.middlewares.len()
        + snapshot.services.len()
        + snapshot.endpoint_slices.len()
        + snapshot.secrets.len()
        + snapshot.config_maps.len()
        + snapshot.tls_stores.len()
        + snapshot.tls_options.len();
    println!(
        "{}: {objects} objects, {} routes: {errors} errors, {warnings} warnings",
        path.display(),
        table.routes.len()
    );
    if errors > 0 || (strict && warnings > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
