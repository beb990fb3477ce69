//! Traefik `TraefikService` (`traefik.io/v1alpha1`): a load balancer over other services.
//!
//! `weighted` is modelled field by field; `mirroring` and `failover` keep their
//! configuration as free-form JSON, so they parse and round-trip: the translation reads
//! both, naming each field it cannot use (a mirroring's service and mirrors are parsed
//! as service references there, unknown fields reported).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ingress_route::{ServiceRef, Sticky};

/// Desired state of a `TraefikService`. Exactly one field should be set.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "traefik.io",
    version = "v1alpha1",
    kind = "TraefikService",
    namespaced,
    status = "TraefikServiceStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "TraefikService is the CRD implementation of a Traefik Service."
)]
#[serde(rename_all = "camelCase")]
pub struct TraefikServiceSpec {
    /// Weighted round robin over services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<WeightedRoundRobin>,
    /// Sends a copy of each request to other services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub mirroring: Option<Value>,
    /// Sends requests to a fallback service while the main one is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub failover: Option<Value>,
}

/// Traefik's `weighted`: services and their weights.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WeightedRoundRobin {
    /// Kubernetes Services or TraefikServices, each with its `weight` (default 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceRef>,
    /// Sticky sessions across the services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Health of the services, propagated from their own health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub health_check: Option<Value>,
}

/// Observed state of a `TraefikService`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TraefikServiceStatus {
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}
