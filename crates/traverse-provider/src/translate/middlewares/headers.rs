//! `headers`: custom headers, CORS and security headers.

use http::HeaderValue;
use traverse_api::middleware::Headers as HeadersSpec;
use traverse_api::MiddlewareSpec;

use super::{header_list, header_name, header_value, pattern, Built};
use crate::model::{Cors, Headers, Middleware, Origin, Security};

pub(super) fn headers(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(h) = spec.headers.as_ref() else {
        return Err("spec.headers is empty".into());
    };
    Ok(vec![Middleware::Headers(Headers {
        origin,
        request: header_list(
            &h.custom_request_headers,
            "spec.headers.customRequestHeaders",
        )?,
        response: header_list(
            &h.custom_response_headers,
            "spec.headers.customResponseHeaders",
        )?,
        cors: cors(h)?.map(Box::new),
        security: security(h)?.map(Box::new),
    })])
}

/// A list joined as Traefik sends it (`,` without spaces), and whether it holds `*`.
fn joined(list: &[String], field: &str) -> Result<(Option<HeaderValue>, bool), String> {
    if list.is_empty() {
        return Ok((None, false));
    }
    let value = header_value(&list.join(","), field)?;
    Ok((Some(value), list.iter().any(|item| item == "*")))
}

/// CORS is on when Traefik's `HasCorsHeadersDefined` would say so.
fn cors(h: &HeadersSpec) -> Result<Option<Cors>, String> {
    let defined = h.access_control_allow_credentials == Some(true)
        || !h.access_control_allow_headers.is_empty()
        || !h.access_control_allow_methods.is_empty()
        || !h.access_control_allow_origin_list.is_empty()
        || !h.access_control_allow_origin_list_regex.is_empty()
        || !h.access_control_expose_headers.is_empty()
        || h.access_control_max_age.is_some_and(|age| age != 0)
        || h.add_vary_header == Some(true);
    if !defined {
        return Ok(None);
    }
    let (allow_headers, allow_headers_wildcard) = joined(
        &h.access_control_allow_headers,
        "spec.headers.accessControlAllowHeaders",
    )?;
    let (allow_methods, allow_methods_wildcard) = joined(
        &h.access_control_allow_methods,
        "spec.headers.accessControlAllowMethods",
    )?;
    let (expose_headers, expose_headers_wildcard) = joined(
        &h.access_control_expose_headers,
        "spec.headers.accessControlExposeHeaders",
    )?;
    let allow_origin_patterns = h
        .access_control_allow_origin_list_regex
        .iter()
        .enumerate()
        .map(|(i, source)| {
            pattern(
                source,
                &format!("spec.headers.accessControlAllowOriginListRegex[{i}]"),
            )
        })
        .collect::<Result<_, _>>()?;
    for (i, origin) in h.access_control_allow_origin_list.iter().enumerate() {
        header_value(
            origin,
            &format!("spec.headers.accessControlAllowOriginList[{i}]"),
        )?;
    }
    Ok(Some(Cors {
        allow_origins: h.access_control_allow_origin_list.clone(),
        allow_origin_patterns,
        allow_credentials: h.access_control_allow_credentials == Some(true),
        allow_headers,
        allow_headers_wildcard,
        allow_methods,
        allow_methods_wildcard,
        expose_headers,
        expose_headers_wildcard,
        max_age: h.access_control_max_age,
        add_vary: h.add_vary_header == Some(true),
    }))
}

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The security headers (Traefik's `HasSecureHeadersDefined`), or `None` when none is set.
fn security(h: &HeadersSpec) -> Result<Option<Security>, String> {
    let mut always = Vec::new();
    let mut add = |name: &'static str, value: Option<&str>, field: &str| -> Result<(), String> {
        if let Some(value) = value {
            always.push((
                http::HeaderName::from_static(name),
                header_value(value, &format!("spec.headers.{field}"))?,
            ));
        }
        Ok(())
    };
    let frame =
        text(&h.custom_frame_options_value).or((h.frame_deny == Some(true)).then_some("DENY"));
    add("x-frame-options", frame, "customFrameOptionsValue")?;
    add(
        "x-content-type-options",
        (h.content_type_nosniff == Some(true)).then_some("nosniff"),
        "contentTypeNosniff",
    )?;
    let xss = text(&h.custom_browser_xss_value)
        .or((h.browser_xss_filter == Some(true)).then_some("1; mode=block"));
    add("x-xss-protection", xss, "customBrowserXSSValue")?;
    add(
        "content-security-policy",
        text(&h.content_security_policy),
        "contentSecurityPolicy",
    )?;
    add(
        "content-security-policy-report-only",
        text(&h.content_security_policy_report_only),
        "contentSecurityPolicyReportOnly",
    )?;
    add(
        "referrer-policy",
        text(&h.referrer_policy),
        "referrerPolicy",
    )?;
    add("feature-policy", text(&h.feature_policy), "featurePolicy")?;
    add(
        "permissions-policy",
        text(&h.permissions_policy),
        "permissionsPolicy",
    )?;

    let sts_seconds = h.sts_seconds.unwrap_or(0);
    let sts = if sts_seconds != 0 {
        let mut value = format!("max-age={sts_seconds}");
        if h.sts_include_subdomains == Some(true) {
            value.push_str("; includeSubDomains");
        }
        if h.sts_preload == Some(true) {
            value.push_str("; preload");
        }
        Some(header_value(&value, "spec.headers.stsSeconds")?)
    } else {
        None
    };
    let public_key = text(&h.public_key)
        .map(|key| header_value(key, "spec.headers.publicKey"))
        .transpose()?;
    let hosts_proxy_headers = h
        .hosts_proxy_headers
        .iter()
        .map(|name| header_name(name, "spec.headers.hostsProxyHeaders"))
        .collect::<Result<Vec<_>, _>>()?;
    let ssl_proxy_headers = h
        .ssl_proxy_headers
        .iter()
        .map(|(name, value)| {
            Ok((
                header_name(name, "spec.headers.sslProxyHeaders")?,
                value.clone(),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let defined = !always.is_empty()
        || sts.is_some()
        || public_key.is_some()
        || !h.allowed_hosts.is_empty()
        || !hosts_proxy_headers.is_empty()
        || !ssl_proxy_headers.is_empty()
        || h.force_sts_header == Some(true)
        || h.is_development == Some(true);
    if !defined {
        return Ok(None);
    }
    Ok(Some(Security {
        allowed_hosts: h.allowed_hosts.clone(),
        hosts_proxy_headers,
        ssl_proxy_headers,
        sts,
        force_sts: h.force_sts_header == Some(true),
        public_key,
        always,
        development: h.is_development == Some(true),
    }))
}
