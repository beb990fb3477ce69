//! `errors`: the status list, and the Service serving the pages resolved to its endpoints.

use std::sync::Arc;

use traverse_api::{Middleware as MiddlewareObject, ServiceKind};

use super::Built;
use crate::model::middleware::{parse_status_ranges, Errors};
use crate::model::{Middleware, Origin, Scheme};
use crate::snapshot::Object;
use crate::translate::Translator;

impl Translator<'_> {
    pub(super) fn errors(&mut self, object: &MiddlewareObject, origin: Origin) -> Built {
        let Some(config) = object.spec.errors.as_ref() else {
            return Err("spec.errors is empty".into());
        };
        if config.status.is_empty() {
            return Err("spec.errors.status must list at least one status or range".into());
        }
        let mut statuses = Vec::new();
        for (i, text) in config.status.iter().enumerate() {
            statuses.extend(parse_status_ranges(text).ok_or_else(|| {
                format!("spec.errors.status[{i}]: {text:?} is not a status or range (e.g. 500-599)")
            })?);
        }
        let Some(reference) = config.service.as_ref() else {
            return Err("spec.errors.service is required".into());
        };
        if reference.effective_kind() != ServiceKind::Service {
            return Err(
                "spec.errors.service.kind: only a Kubernetes Service serves error pages".into(),
            );
        }
        let (namespace, _) = object.key();
        super::allowed_namespace(
            reference.namespace.as_deref(),
            namespace,
            self.snapshot.allow_cross_namespace,
        )
        .map_err(|why| format!("spec.errors.service.namespace: {why}"))?;
        let backend = self
            .backend(
                &object.object_ref(),
                namespace,
                reference,
                "spec.errors.service",
                None,
            )
            .map_err(|why| format!("spec.errors.service: {why}"))?;
        if backend.scheme != Scheme::Http {
            return Err(format!(
                "spec.errors.service.scheme: {} is not supported for error pages; use http",
                backend.scheme.as_str()
            ));
        }
        let query = match config.query.as_deref().map(str::trim) {
            None | Some("") => "/".to_owned(),
            Some(query) if query.starts_with('/') => query.to_owned(),
            Some(query) => format!("/{query}"),
        };
        Ok(vec![Middleware::Errors(Errors {
            origin,
            statuses,
            service: Arc::new(backend),
            query,
        })])
    }
}
