//! Hand-written JSON schemas for field types that do not implement `JsonSchema`
//! without extra k8s-openapi features, or whose content is deliberately free-form.
//!
//! Each function is used through `#[schemars(schema_with = ...)]` and produces a
//! Kubernetes structural schema fragment, as Traefik's own CRDs do for the same fields.

use schemars::{json_schema, Schema, SchemaGenerator};

/// `IntOrString`: the same shape k8s-openapi and Traefik's CRDs use.
pub(crate) fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
    })
}

/// Configuration of a middleware type the gateway does not model field by field:
/// any object is kept as is, so it parses and round-trips.
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// `plugin`: a map from plugin name to that plugin's free-form configuration.
pub(crate) fn plugin_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}

/// `metav1.Condition` list, as in `status.conditions` of Kubernetes APIs.
pub(crate) fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "lastTransitionTime": { "type": "string", "format": "date-time" },
                "message": { "type": "string" },
                "observedGeneration": { "type": "integer", "format": "int64" },
                "reason": { "type": "string" },
                "status": { "type": "string" },
                "type": { "type": "string" },
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
        },
        "x-kubernetes-list-map-keys": ["type"],
        "x-kubernetes-list-type": "map",
    })
}
