//! Status conditions computed from diagnostics: pure, so that what a controller writes
//! (and when it writes nothing) is testable without a cluster.
//!
//! An IngressRoute gets `Accepted` (its routes parse and were applied) and `ResolvedRefs`
//! (every Service, port, Middleware and Uplink it names exists); an Uplink gets `Ready`.
//! [`transition`] keeps `lastTransitionTime` while a condition's status holds, and says
//! when nothing changed at all, so a resync never causes a write.

use traverse_api::{Condition, Time};

use crate::diagnostics::{Diagnostic, ObjectRef, Reason, Severity};

/// The conditions of `object` (an IngressRoute) given every diagnostic of a translation.
pub fn ingress_route_conditions<'a>(
    object: &ObjectRef,
    generation: Option<i64>,
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    now: &Time,
) -> Vec<Condition> {
    let mine: Vec<&Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| d.object.as_ref() == Some(object))
        .collect();
    let errors: Vec<&&Diagnostic> = mine
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let unresolved: Vec<&&Diagnostic> = mine
        .iter()
        .filter(|d| d.reason.is_unresolved_reference())
        .collect();
    let condition = |kind: &str, problems: &[&&Diagnostic], ok_reason: &str| Condition {
        type_: kind.to_owned(),
        status: if problems.is_empty() { "True" } else { "False" }.to_owned(),
        reason: problems
            .first()
            .map_or_else(|| ok_reason.to_owned(), |d| reason_name(d.reason)),
        message: problems
            .iter()
            .map(|d| match &d.field {
                Some(field) => format!("{field}: {}", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        observed_generation: generation,
        last_transition_time: now.clone(),
    };
    vec![
        condition("Accepted", &errors, "Accepted"),
        condition("ResolvedRefs", &unresolved, "ResolvedRefs"),
    ]
}

/// `Ready` of an Uplink: advertised as ready to parents, or why not.
pub fn uplink_conditions<'a>(
    object: &ObjectRef,
    generation: Option<i64>,
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    now: &Time,
) -> Vec<Condition> {
    let problem = diagnostics
        .into_iter()
        .find(|d| d.object.as_ref() == Some(object) && d.reason == Reason::UplinkNotReady);
    vec![Condition {
        type_: "Ready".to_owned(),
        status: if problem.is_some() { "False" } else { "True" }.to_owned(),
        reason: problem.map_or_else(|| "Advertised".to_owned(), |d| reason_name(d.reason)),
        message: problem.map(|d| d.message.clone()).unwrap_or_default(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }]
}

/// The conditions to write over `previous`, or `None` when nothing changed. A condition
/// whose status is unchanged keeps its `lastTransitionTime`.
pub fn transition(previous: &[Condition], next: Vec<Condition>) -> Option<Vec<Condition>> {
    let merged: Vec<Condition> = next
        .into_iter()
        .map(|mut condition| {
            if let Some(old) = previous.iter().find(|c| c.type_ == condition.type_) {
                if old.status == condition.status {
                    condition.last_transition_time = old.last_transition_time.clone();
                }
            }
            condition
        })
        .collect();
    (merged.as_slice() != previous).then_some(merged)
}

fn reason_name(reason: Reason) -> String {
    // The enum's names are CamelCase, as Kubernetes reasons are.
    format!("{reason:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use traverse_api::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn route() -> ObjectRef {
        ObjectRef {
            kind: "IngressRoute".into(),
            namespace: "apps".into(),
            name: "shop".into(),
        }
    }

    fn diagnostic(
        object: ObjectRef,
        severity: Severity,
        reason: Reason,
        field: &str,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            reason,
            object: Some(object),
            source: None,
            field: Some(field.into()),
            message: format!("{reason:?} here"),
        }
    }

    fn summary(conditions: &[Condition]) -> Vec<(String, String, String)> {
        conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    #[test]
    fn a_clean_route_is_accepted_with_resolved_refs() {
        let conditions = ingress_route_conditions(&route(), Some(3), [], &at(10));
        assert_eq!(
            summary(&conditions),
            [
                ("Accepted".into(), "True".into(), "Accepted".into()),
                ("ResolvedRefs".into(), "True".into(), "ResolvedRefs".into())
            ]
        );
        assert!(conditions.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn missing_references_and_errors_are_reasons_with_fields() {
        let other = ObjectRef {
            name: "other".into(),
            ..route()
        };
        let diagnostics = [
            diagnostic(
                route(),
                Severity::Warning,
                Reason::ServiceNotFound,
                "spec.routes[0].services[0].name",
            ),
            diagnostic(
                route(),
                Severity::Warning,
                Reason::MiddlewareNotFound,
                "spec.routes[0].middlewares[0]",
            ),
            diagnostic(
                route(),
                Severity::Error,
                Reason::InvalidRule,
                "spec.routes[1].match",
            ),
            diagnostic(
                other,
                Severity::Error,
                Reason::PortNotFound,
                "spec.routes[0].services[0].port",
            ),
        ];
        let conditions = ingress_route_conditions(&route(), None, &diagnostics, &at(10));
        assert_eq!(
            summary(&conditions),
            [
                ("Accepted".into(), "False".into(), "InvalidRule".into()),
                (
                    "ResolvedRefs".into(),
                    "False".into(),
                    "ServiceNotFound".into()
                )
            ]
        );
        assert_eq!(
            conditions[1].message,
            "spec.routes[0].services[0].name: ServiceNotFound here; \
             spec.routes[0].middlewares[0]: MiddlewareNotFound here"
        );
        assert!(
            !conditions[0].message.contains("PortNotFound"),
            "another object's problem"
        );
    }

    #[test]
    fn a_resync_writes_nothing_and_a_change_keeps_unchanged_transition_times() {
        let first = ingress_route_conditions(&route(), Some(1), [], &at(10));
        let written = transition(&[], first).expect("first write");
        // The same state later: nothing to write.
        let again = ingress_route_conditions(&route(), Some(1), [], &at(99));
        assert_eq!(transition(&written, again), None);
        // A Service goes missing: ResolvedRefs flips (new time), Accepted keeps its time.
        let missing = [diagnostic(
            route(),
            Severity::Warning,
            Reason::ServiceNotFound,
            "f",
        )];
        let changed = ingress_route_conditions(&route(), Some(1), &missing, &at(120));
        let written2 = transition(&written, changed).expect("a change");
        assert_eq!(written2[0].last_transition_time, at(10));
        assert_eq!(written2[1].last_transition_time, at(120));
        assert_eq!(written2[1].status, "False");
        // A new generation with the same state is a change (observedGeneration moves).
        let bumped = ingress_route_conditions(&route(), Some(2), &missing, &at(130));
        let written3 = transition(&written2, bumped).expect("generation");
        assert_eq!(written3[1].last_transition_time, at(120));
    }

    #[test]
    fn uplinks_are_ready_unless_reported_not_ready() {
        let uplink = ObjectRef {
            kind: "Uplink".into(),
            ..route()
        };
        let ready = uplink_conditions(&uplink, None, [], &at(1));
        assert_eq!(
            summary(&ready),
            [("Ready".into(), "True".into(), "Advertised".into())]
        );
        let not = [diagnostic(
            uplink.clone(),
            Severity::Warning,
            Reason::UplinkNotReady,
            "",
        )];
        let conditions = uplink_conditions(&uplink, None, &not, &at(2));
        assert_eq!(
            summary(&conditions),
            [("Ready".into(), "False".into(), "UplinkNotReady".into())]
        );
    }
}
