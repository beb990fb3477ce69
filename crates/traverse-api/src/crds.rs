//! The CustomResourceDefinitions of every kind, as committed in `crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    IngressRoute, Middleware, ServersTransport, TLSOption, TLSStore, TraefikService, Uplink,
};

/// First line of every generated file.
pub const HEADER: &str =
    "# Generated from crates/traverse-api by `cargo run -p traverse-api --bin crdgen`; do not edit.\n";

/// Every CRD with its file name (`<plural>.<group>.yaml`).
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    [
        IngressRoute::crd(),
        Middleware::crd(),
        ServersTransport::crd(),
        TLSOption::crd(),
        TLSStore::crd(),
        TraefikService::crd(),
        Uplink::crd(),
    ]
    .into_iter()
    .map(|crd| {
        let name = crd.metadata.name.clone().unwrap_or_default();
        (format!("{name}.yaml"), crd)
    })
    .collect()
}

/// A CRD as the YAML file holds it.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("{HEADER}{}", serde_yaml::to_string(crd)?))
}
