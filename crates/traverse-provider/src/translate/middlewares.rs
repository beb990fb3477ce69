//! Middleware objects resolved to the steps a route runs, and references to them.

use std::collections::BTreeMap;

use traverse_api::support::{middleware_kinds, unsupported_in_middleware};
use traverse_api::Middleware as MiddlewareObject;

use super::Translator;
use crate::diagnostics::{Reason, Severity};
use crate::model::{AddPrefix, Headers, Middleware, StripPrefix};
use crate::snapshot::Object;

impl Translator<'_> {
    pub(super) fn middleware(
        &mut self,
        object: &MiddlewareObject,
    ) -> Result<Vec<Middleware>, String> {
        let me = object.object_ref();
        let spec = &object.spec;
        for unsupported in unsupported_in_middleware(spec) {
            self.report(
                &me,
                Severity::Warning,
                Reason::Unsupported,
                Some(unsupported.field),
                unsupported.reason.into(),
            );
        }
        let kinds = middleware_kinds(spec);
        let invalid = |message: String| Err((Reason::InvalidMiddleware, message));
        let result = match kinds.as_slice() {
            [] => invalid("sets no middleware type".into()),
            [_, _, ..] => invalid(format!(
                "sets several middleware types ({}); exactly one is allowed",
                kinds.join(", ")
            )),
            ["addPrefix"] => match spec.add_prefix.as_ref().and_then(|a| a.prefix.clone()) {
                Some(prefix) if prefix.starts_with('/') => {
                    Ok(vec![Middleware::AddPrefix(AddPrefix { prefix })])
                }
                Some(prefix) => invalid(format!(
                    "spec.addPrefix.prefix {prefix:?} must start with '/'"
                )),
                None => invalid("spec.addPrefix.prefix is required".into()),
            },
            ["stripPrefix"] => {
                let prefixes = spec
                    .strip_prefix
                    .as_ref()
                    .map(|s| s.prefixes.clone())
                    .unwrap_or_default();
                if prefixes.is_empty() {
                    invalid("spec.stripPrefix.prefixes must list at least one prefix".into())
                } else {
                    Ok(vec![Middleware::StripPrefix(StripPrefix { prefixes })])
                }
            }
            ["headers"] => {
                let headers = spec.headers.as_ref();
                let request = headers.map(|h| {
                    header_list(
                        &h.custom_request_headers,
                        "spec.headers.customRequestHeaders",
                    )
                });
                let response = headers.map(|h| {
                    header_list(
                        &h.custom_response_headers,
                        "spec.headers.customResponseHeaders",
                    )
                });
                match (request, response) {
                    (Some(Ok(request)), Some(Ok(response))) => {
                        Ok(vec![Middleware::Headers(Headers { request, response })])
                    }
                    (Some(Err(e)), _) | (_, Some(Err(e))) => invalid(e),
                    _ => invalid("spec.headers is empty".into()),
                }
            }
            [kind] => Err((
                Reason::Unsupported,
                format!("middleware type {kind} is not supported yet"),
            )),
        };
        if let Err((reason, message)) = &result {
            self.report(
                &me,
                Severity::Error,
                *reason,
                None,
                format!("{message}; routes using it answer 503"),
            );
        }
        result.map_err(|(_, message)| message)
    }
}

/// Middleware references are `name` in the route's namespace, `namespace` when given,
/// with Traefik's provider suffix (`name@kubernetescrd`) accepted and ignored.
pub(super) fn parse_middleware_ref<'r>(
    name: &'r str,
    namespace: Option<&'r str>,
    default: &'r str,
) -> (&'r str, &'r str) {
    if let Some(namespace) = namespace {
        return (namespace, name);
    }
    (default, name.strip_suffix("@kubernetescrd").unwrap_or(name))
}

fn header_list(
    headers: &BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(http::HeaderName, Option<http::HeaderValue>)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{field}: {name:?} is not a valid header name"))?;
            // Traefik's convention: an empty value removes the header.
            if value.is_empty() {
                return Ok((header, None));
            }
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| format!("{field}.{name}: value is not valid header text"))?;
            Ok((header, Some(value)))
        })
        .collect()
}
