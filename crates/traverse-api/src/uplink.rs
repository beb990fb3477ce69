//! Traverse `Uplink` (`traverse.dev/v1alpha1`): what a child gateway exposes to parents.
//!
//! A child declares an Uplink and binds IngressRoutes on its uplink entrypoints to it
//! with the [`UPLINKS_ANNOTATION`]. The child advertises each Uplink (weight, ready,
//! draining) to its parents, which route `<namespace>-<name>@multicluster` to it.
//! The shape follows Traefik Hub's Uplink, so manifests carry over.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of Traverse's own kinds.
pub const TRAVERSE_GROUP: &str = "traverse.dev";

/// IngressRoute annotation naming the Uplinks its routes serve: comma-separated names of
/// Uplinks in the route's namespace, or `namespace/name`.
pub const UPLINKS_ANNOTATION: &str = "traverse.dev/uplinks";

/// Traefik Hub's annotation for the same binding, with `<namespace>-<name>` values.
pub const HUB_UPLINKS_ANNOTATION: &str = "hub.traefik.io/router.uplinks";

/// Desired state of an `Uplink`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traverse.dev",
    version = "v1alpha1",
    kind = "Uplink",
    namespaced,
    status = "UplinkStatus",
    derive = "PartialEq",
    doc = "Uplink advertises routes of a child gateway to its parent gateways."
)]
#[serde(rename_all = "camelCase")]
pub struct UplinkSpec {
    /// Share of a parent's traffic for this uplink relative to other children exposing
    /// it (weighted round robin); 0 advertises the uplink but sends it nothing. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// Uplink entrypoints it is served on; empty means every uplink entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
}

/// Observed state of an `Uplink`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UplinkStatus {
    /// Standard conditions (e.g. `Ready` when a route serves it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}

impl UplinkSpec {
    /// The weight with its default applied, clamped to what a weighted round robin takes.
    pub fn effective_weight(&self) -> u32 {
        self.weight.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_style_manifest_parses() {
        let uplink: Uplink = serde_saphyr::from_str(
            "apiVersion: traverse.dev/v1alpha1\nkind: Uplink\nmetadata: {name: api, namespace: apps}\nspec:\n  weight: 5\n  entryPoints: [multicluster]\n",
        )
        .expect("uplink");
        assert_eq!(uplink.spec.effective_weight(), 5);
        assert_eq!(uplink.spec.entry_points, ["multicluster"]);
        let defaults = UplinkSpec::default();
        assert_eq!(defaults.effective_weight(), 1);
    }
}
