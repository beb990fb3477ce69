//! Middleware objects resolved to the steps a route runs, and references to them.
//!
//! Each kind is validated and compiled here, once per table (regular expressions,
//! ranges, password hashes, header values); what fails is an error naming the field,
//! and the routes using the object answer 503. A `chain` resolves the objects it names
//! (each once, whatever the number of chains naming it) and refuses to loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use traverse_api::support::{middleware_kinds, unsupported_in_middleware};
use traverse_api::Middleware as MiddlewareObject;

use super::Translator;
use crate::diagnostics::{Reason, Severity};
use crate::model::{AddPrefix, Middleware, Origin, StripPrefix};
use crate::snapshot::Object;

mod access;
mod content;
mod errors;
mod grpc_web;
mod headers;
mod paths;
mod traffic;

#[cfg(test)]
pub(in crate::translate) use traffic::go_duration as go_duration_for_tests;

/// A kind's translation: its steps, or what is wrong, naming the field.
type Built = Result<Vec<Middleware>, String>;

impl<'a> Translator<'a> {
    /// Resolves `object` (once), and through a chain the objects it names. `stack` holds
    /// the chains being resolved, to refuse a loop.
    pub(super) fn resolve_middleware(
        &mut self,
        object: &'a MiddlewareObject,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) {
        let key = object.key();
        if self.middlewares.contains_key(&key) {
            return;
        }
        let resolved = self.middleware(object, stack);
        self.middlewares.insert(key, resolved);
    }

    fn middleware(
        &mut self,
        object: &'a MiddlewareObject,
        stack: &mut Vec<(&'a str, &'a str)>,
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
        let (namespace, name) = object.key();
        let origin = |kind: &'static str| Origin {
            name: Arc::from(format!("{namespace}/{name}")),
            kind,
        };
        let kinds = middleware_kinds(spec);
        let invalid = |message: String| Err((Reason::InvalidMiddleware, message));
        let checked = |built: Built| built.map_err(|e| (Reason::InvalidMiddleware, e));
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
            ["stripPrefixRegex"] => checked(paths::strip_prefix_regex(spec)),
            ["replacePath"] => checked(paths::replace_path(spec)),
            ["replacePathRegex"] => checked(paths::replace_path_regex(spec)),
            ["redirectScheme"] => checked(paths::redirect_scheme(spec, origin("redirectScheme"))),
            ["redirectRegex"] => checked(paths::redirect_regex(spec, origin("redirectRegex"))),
            ["headers"] => checked(headers::headers(spec, origin("headers"))),
            ["basicAuth"] => checked(access::basic_auth(
                spec,
                namespace,
                &self.snapshot.secrets,
                origin("basicAuth"),
            )),
            ["digestAuth"] => checked(access::digest_auth(
                spec,
                namespace,
                &self.snapshot.secrets,
                origin("digestAuth"),
            )),
            ["passTLSClientCert"] => checked(access::pass_tls_client_cert(spec)),
            ["ipAllowList"] => checked(access::ip_allow_list(
                spec.ip_allow_list.as_ref(),
                "spec.ipAllowList",
                origin("ipAllowList"),
            )),
            ["ipWhiteList"] => checked(access::ip_allow_list(
                spec.ip_white_list.as_ref(),
                "spec.ipWhiteList",
                origin("ipWhiteList"),
            )),
            ["rateLimit"] => checked(traffic::rate_limit(spec, origin("rateLimit"))),
            ["inFlightReq"] => checked(traffic::in_flight_req(spec, origin("inFlightReq"))),
            ["compress"] => checked(content::compress(spec)),
            // No step: Traverse never adds a Content-Type (detection is reported).
            ["contentType"] => Ok(Vec::new()),
            ["buffering"] => checked(content::buffering(spec, origin("buffering"))),
            ["retry"] => checked(traffic::retry(spec)),
            ["circuitBreaker"] => checked(traffic::circuit_breaker(spec, origin("circuitBreaker"))),
            ["errors"] => checked(self.errors(object, origin("errors"))),
            ["forwardAuth"] => checked(access::forward_auth(
                spec,
                namespace,
                &self.snapshot.secrets,
                origin("forwardAuth"),
            )),
            ["grpcWeb"] => checked(self.grpc_web(object, origin("grpcWeb"))),
            ["chain"] => checked(self.chain(object, stack)),
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
                field_of(message),
                format!("{message}; routes using it answer 503"),
            );
        }
        result.map_err(|(_, message)| message)
    }

    /// A `chain`: the steps of the objects it names, in order.
    fn chain(
        &mut self,
        object: &'a MiddlewareObject,
        stack: &mut Vec<(&'a str, &'a str)>,
    ) -> Built {
        let (namespace, _) = object.key();
        let Some(chain) = object.spec.chain.as_ref() else {
            return Ok(Vec::new());
        };
        stack.push(object.key());
        let mut steps = Vec::new();
        let mut result = Ok(());
        for (i, reference) in chain.middlewares.iter().enumerate() {
            let field = format!("spec.chain.middlewares[{i}]");
            let key = match middleware_ref(
                &reference.name,
                reference.namespace.as_deref(),
                namespace,
                self.snapshot.allow_cross_namespace,
            ) {
                Ok(key) => key,
                Err((part, why)) => {
                    result = Err(format!("{field}.{part}: {why}"));
                    break;
                }
            };
            if stack.contains(&key) {
                result = Err(format!("{field}: chain loops back to {}/{}", key.0, key.1));
                break;
            }
            let Some(named) = self.snapshot.middlewares.iter().find(|m| m.key() == key) else {
                result = Err(format!("{field}: middleware {}/{} not found", key.0, key.1));
                break;
            };
            self.resolve_middleware(named, stack);
            match self.middlewares.get(&named.key()) {
                Some(Ok(more)) => steps.extend(more.iter().cloned()),
                Some(Err(why)) => {
                    result = Err(format!(
                        "{field}: middleware {}/{} is unusable: {why}",
                        key.0, key.1
                    ));
                    break;
                }
                None => {
                    result = Err(format!("{field}: middleware {}/{} not found", key.0, key.1));
                    break;
                }
            }
        }
        stack.pop();
        result.map(|()| steps)
    }
}

/// Where a Middleware reference points: `name` in the referencing object's namespace
/// `own`, or in `namespace` when given and allowed. Of Traefik's provider suffixes,
/// `@kubernetescrd` and `@file` name this gateway's own objects (its file provider reads
/// the same Kubernetes kinds); another provider is an error. The error is the field
/// under the reference (`name`, `namespace`) and why.
pub(super) fn middleware_ref<'r>(
    name: &'r str,
    namespace: Option<&'r str>,
    own: &'r str,
    allow_cross_namespace: bool,
) -> Result<(&'r str, &'r str), (&'static str, String)> {
    let name = local_name(name).map_err(|why| ("name", why))?;
    let namespace = allowed_namespace(namespace, own, allow_cross_namespace)
        .map_err(|why| ("namespace", why))?;
    Ok((namespace, name))
}

/// `name` without a provider suffix naming this gateway's objects.
pub(super) fn local_name(name: &str) -> Result<&str, String> {
    match name.rsplit_once('@') {
        None => Ok(name),
        Some((local, "kubernetescrd" | "file")) => Ok(local),
        Some((_, provider)) => Err(format!(
            "provider {provider:?} is unknown here (this gateway's objects are @kubernetescrd or @file)"
        )),
    }
}

/// The namespace a reference points into: `named` when it is `own` or the provider
/// allows cross-namespace references (Traefik's `allowCrossNamespace`), else an error.
pub(super) fn allowed_namespace<'r>(
    named: Option<&'r str>,
    own: &'r str,
    allow_cross_namespace: bool,
) -> Result<&'r str, String> {
    match named {
        None => Ok(own),
        Some(named) if named == own || allow_cross_namespace => Ok(named),
        Some(named) => Err(format!(
            "namespace {named} is not {own}, and the provider does not set allowCrossNamespace"
        )),
    }
}

/// Custom headers: an empty value removes the header (Traefik's convention).
fn header_list(
    headers: &BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(http::HeaderName, Option<http::HeaderValue>)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let header = header_name(name, field)?;
            if value.is_empty() {
                return Ok((header, None));
            }
            Ok((
                header,
                Some(header_value(value, &format!("{field}.{name}"))?),
            ))
        })
        .collect()
}

fn header_name(name: &str, field: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{field}: {name:?} is not a valid header name"))
}

fn header_value(value: &str, field: &str) -> Result<http::HeaderValue, String> {
    http::HeaderValue::from_str(value)
        .map_err(|_| format!("{field}: value is not valid header text"))
}

fn pattern(source: &str, field: &str) -> Result<crate::model::Pattern, String> {
    crate::model::Pattern::new(source.trim())
        .map_err(|e| format!("{field}: invalid regular expression: {e}"))
}

/// The field an error message starts with (`spec.x.y: …`, `spec.x.y (…)` or
/// `spec.x.y is …`), for the diagnostic's field.
fn field_of(message: &str) -> Option<String> {
    message.starts_with("spec.").then(|| {
        message
            .split([':', ' '])
            .next()
            .unwrap_or_default()
            .to_owned()
    })
}
