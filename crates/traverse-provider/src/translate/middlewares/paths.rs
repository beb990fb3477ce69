//! `stripPrefixRegex`, `replacePath`, `replacePathRegex`, `redirectScheme`, `redirectRegex`.

use traverse_api::MiddlewareSpec;

use super::{pattern, Built};
use crate::model::{
    Middleware, Origin, RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex,
    StripPrefixRegex,
};

pub(super) fn strip_prefix_regex(spec: &MiddlewareSpec) -> Built {
    let sources = spec
        .strip_prefix_regex
        .as_ref()
        .map(|s| s.regex.as_slice())
        .unwrap_or_default();
    if sources.is_empty() {
        return Err("spec.stripPrefixRegex.regex must list at least one expression".into());
    }
    let patterns = sources
        .iter()
        .enumerate()
        .map(|(i, source)| pattern(source, &format!("spec.stripPrefixRegex.regex[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(vec![Middleware::StripPrefixRegex(StripPrefixRegex {
        patterns,
    })])
}

pub(super) fn replace_path(spec: &MiddlewareSpec) -> Built {
    match spec.replace_path.as_ref().and_then(|r| r.path.as_deref()) {
        Some(path) if path.starts_with('/') => Ok(vec![Middleware::ReplacePath(ReplacePath {
            path: path.to_owned(),
        })]),
        Some(path) => Err(format!(
            "spec.replacePath.path {path:?} must start with '/'"
        )),
        None => Err("spec.replacePath.path is required".into()),
    }
}

pub(super) fn replace_path_regex(spec: &MiddlewareSpec) -> Built {
    let config = spec.replace_path_regex.as_ref();
    let Some(source) = config.and_then(|r| r.regex.as_deref()) else {
        return Err("spec.replacePathRegex.regex is required".into());
    };
    let Some(replacement) = config.and_then(|r| r.replacement.as_deref()) else {
        return Err("spec.replacePathRegex.replacement is required".into());
    };
    Ok(vec![Middleware::ReplacePathRegex(ReplacePathRegex {
        pattern: pattern(source, "spec.replacePathRegex.regex")?,
        replacement: replacement.trim().to_owned(),
    })])
}

pub(super) fn redirect_scheme(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let config = spec.redirect_scheme.as_ref();
    let scheme = match config.and_then(|r| r.scheme.as_deref()) {
        Some(scheme) if !scheme.is_empty() => scheme,
        _ => return Err("spec.redirectScheme.scheme is required".into()),
    };
    if !scheme
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(format!(
            "spec.redirectScheme.scheme {scheme:?} is not a URL scheme"
        ));
    }
    let port = match config.and_then(|r| r.port.as_deref()) {
        None | Some("") => String::new(),
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => {
            if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
                String::new()
            } else {
                format!(":{port}")
            }
        }
        Some(port) => return Err(format!("spec.redirectScheme.port {port:?} is not a port")),
    };
    Ok(vec![Middleware::RedirectScheme(RedirectScheme {
        origin,
        scheme: scheme.to_owned(),
        port,
        permanent: config.and_then(|r| r.permanent).unwrap_or(false),
    })])
}

pub(super) fn redirect_regex(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let config = spec.redirect_regex.as_ref();
    let Some(source) = config.and_then(|r| r.regex.as_deref()) else {
        return Err("spec.redirectRegex.regex is required".into());
    };
    let replacement = match config.and_then(|r| r.replacement.as_deref()) {
        Some(replacement) if !replacement.is_empty() => replacement,
        _ => return Err("spec.redirectRegex.replacement is required".into()),
    };
    Ok(vec![Middleware::RedirectRegex(RedirectRegex {
        origin,
        // Traefik compiles the expression as written (no trimming, unlike the path ones).
        pattern: crate::model::Pattern::new(source)
            .map_err(|e| format!("spec.redirectRegex.regex: invalid regular expression: {e}"))?,
        replacement: replacement.to_owned(),
        permanent: config.and_then(|r| r.permanent).unwrap_or(false),
    })])
}
