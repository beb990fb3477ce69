//! Writes what the gateway concluded back to the cluster: conditions on each
//! IngressRoute's and Uplink's status subresource, and one Event per change.
//!
//! Conditions are computed by the pure `traverse_provider::status`; a write happens only
//! when they change against what the object already carries, so a resync writes nothing.
//! When the cluster's CRD has no status subresource (Traefik's own CRDs), the first 404
//! turns status writing off for good and Events carry on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use traverse_api::{jiff, Condition, Time};
use traverse_provider::status::{ingress_route_conditions, transition, uplink_conditions};
use traverse_provider::{Diagnostics, Object, ObjectRef, Snapshot};

use crate::Kind;

/// Component named in Events and as the field manager.
const MANAGER: &str = "traverse";

/// The API server refuses longer Event messages.
const MAX_EVENT_MESSAGE: usize = 1024;

/// `text` cut at a character boundary to at most `max` bytes, marked when cut.
fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// One object's conditions to write.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub conditions: Vec<Condition>,
    /// The object's uid, for the Event's reference.
    pub uid: Option<String>,
}

/// The writes `snapshot` and its `diagnostics` call for: only objects whose conditions
/// differ from what they carry (or from what was last written, `written`).
pub fn changes(
    snapshot: &Snapshot,
    diagnostics: &Diagnostics,
    written: &BTreeMap<ObjectRef, Vec<Condition>>,
    now: &Time,
) -> Vec<StatusChange> {
    let mut out = Vec::new();
    let mut consider = |kind: &'static str,
                        object: ObjectRef,
                        uid: &Option<String>,
                        carried: Option<&Vec<Condition>>,
                        next: Vec<Condition>| {
        let current = written
            .get(&object)
            .or(carried)
            .map_or(&[][..], Vec::as_slice);
        if let Some(conditions) = transition(current, next) {
            out.push(StatusChange {
                kind,
                namespace: object.namespace,
                name: object.name,
                conditions,
                uid: uid.clone(),
            });
        }
    };
    for route in &snapshot.ingress_routes {
        let object = route.object_ref();
        let next =
            ingress_route_conditions(&object, route.metadata.generation, diagnostics.iter(), now);
        let carried = route.status.as_ref().map(|s| &s.conditions);
        consider("IngressRoute", object, &route.metadata.uid, carried, next);
    }
    for uplink in &snapshot.uplinks {
        let object = uplink.object_ref();
        let next = uplink_conditions(&object, uplink.metadata.generation, diagnostics.iter(), now);
        let carried = uplink.status.as_ref().map(|s| &s.conditions);
        consider("Uplink", object, &uplink.metadata.uid, carried, next);
    }
    out
}

/// Writes status changes and Events to the cluster.
pub struct StatusWriter {
    client: Client,
    /// Kinds whose CRD turned out to have no status subresource.
    without_status: std::collections::BTreeSet<&'static str>,
    /// What was last written per (kind, namespace, name), so a write that has not yet come
    /// back through the watch is not repeated.
    written: BTreeMap<ObjectRef, Vec<Condition>>,
    /// `host` of Events: the pod's name where known.
    reporter: String,
}

impl StatusWriter {
    pub fn new(client: Client) -> Self {
        let reporter = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "traverse".to_owned());
        StatusWriter {
            client,
            without_status: Default::default(),
            written: BTreeMap::new(),
            reporter,
        }
    }

    /// Drops what this writer remembers writing (when it stops leading).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// Writes what changed since the last call.
    pub async fn write(&mut self, snapshot: &Snapshot, diagnostics: &Diagnostics) {
        let now = Time(jiff::Timestamp::now());
        for change in changes(snapshot, diagnostics, &self.written, &now) {
            let key = ObjectRef {
                kind: change.kind.to_owned(),
                namespace: change.namespace.clone(),
                name: change.name.clone(),
            };
            if !self.without_status.contains(change.kind) {
                match self.patch_status(&change).await {
                    Ok(()) => {}
                    Err(kube::Error::Api(response)) if response.code == 404 => {
                        if !self.exists(&change).await {
                            // Deleted meanwhile: nothing to write, nothing to report.
                            continue;
                        }
                        // The object is there, its /status is not: Traefik's own CRDs.
                        tracing::warn!(kind = change.kind, "the CRD has no status subresource; status writing is off for this kind, Events continue");
                        self.without_status.insert(change.kind);
                    }
                    Err(error) => {
                        tracing::warn!(kind = change.kind, namespace = %change.namespace, name = %change.name, %error, "status write failed; retried on the next change");
                        continue;
                    }
                }
            }
            if let Err(error) = self.event(&change).await {
                tracing::debug!(%error, "event not recorded");
            }
            self.written.insert(key, change.conditions);
        }
    }

    fn api(&self, change: &StatusChange) -> Api<DynamicObject> {
        let kind = match change.kind {
            "Uplink" => Kind::Uplink,
            _ => Kind::IngressRoute,
        };
        let resource: ApiResource = kind.resource();
        Api::namespaced_with(self.client.clone(), &change.namespace, &resource)
    }

    /// Whether the object still exists (a failed read counts as existing).
    async fn exists(&self, change: &StatusChange) -> bool {
        !matches!(
            self.api(change).get(&change.name).await,
            Err(kube::Error::Api(response)) if response.code == 404
        )
    }

    async fn patch_status(&self, change: &StatusChange) -> Result<(), kube::Error> {
        let api = self.api(change);
        let body = serde_json::json!({ "status": { "conditions": change.conditions } });
        api.patch_status(&change.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map(|_| ())
    }

    async fn event(&self, change: &StatusChange) -> Result<(), kube::Error> {
        let failing = change.conditions.iter().find(|c| c.status == "False");
        let (event_type, reason, message) = match failing {
            Some(condition) => (
                "Warning",
                condition.reason.clone(),
                condition.message.clone(),
            ),
            None => (
                "Normal",
                change
                    .conditions
                    .first()
                    .map(|c| c.reason.clone())
                    .unwrap_or_default(),
                "all conditions hold".to_owned(),
            ),
        };
        let api_version = match change.kind {
            "Uplink" => "traverse.dev/v1alpha1",
            _ => "traefik.io/v1alpha1",
        };
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", change.name)),
                namespace: Some(change.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: Some(change.kind.to_owned()),
                namespace: Some(change.namespace.clone()),
                name: Some(change.name.clone()),
                uid: change.uid.clone(),
                ..ObjectReference::default()
            },
            type_: Some(event_type.to_owned()),
            reason: Some(reason),
            message: Some(truncate(message, MAX_EVENT_MESSAGE)),
            action: Some("Reconcile".to_owned()),
            reporting_component: Some(MANAGER.to_owned()),
            reporting_instance: Some(self.reporter.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &change.namespace);
        events
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_messages_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        let cut = truncate("é".repeat(600), MAX_EVENT_MESSAGE);
        assert!(
            cut.len() <= MAX_EVENT_MESSAGE && cut.ends_with("..."),
            "{}",
            cut.len()
        );
    }
}
