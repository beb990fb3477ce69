//! `basicAuth`, `ipAllowList` (and its deprecated alias `ipWhiteList`).

use std::net::IpAddr;

use ipnet::IpNet;
use traverse_api::middleware::{IpAllowList as IpAllowListSpec, IpStrategy as IpStrategySpec};
use traverse_api::MiddlewareSpec;

use super::{header_name, header_value, Built};
use crate::model::{BasicAuth, Credential, IpAllowList, IpStrategy, Middleware, Origin};

/// Traefik's default realm.
const DEFAULT_REALM: &str = "traefik";

pub(super) fn basic_auth(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(config) = spec.basic_auth.as_ref() else {
        return Err("spec.basicAuth is empty".into());
    };
    let mut users = Vec::new();
    for (i, line) in config.users.iter().enumerate() {
        let field = format!("spec.basicAuth.users[{i}]");
        // Lines are `user:hash`; the hash is never repeated in a message.
        let mut parts = line.split(':');
        let (Some(user), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{field}: expected user:hash"));
        };
        let credential =
            Credential::parse(hash).map_err(|e| format!("{field} (user {user:?}): {e}"))?;
        users.retain(|(name, _): &(String, Credential)| name != user);
        users.push((user.to_owned(), credential));
    }
    if users.is_empty() {
        let why = if config.secret.as_deref().is_some_and(|s| !s.is_empty()) {
            "spec.basicAuth.secret is not read (Secrets are not loaded yet) and spec.basicAuth.users lists no users"
        } else {
            "spec.basicAuth.users lists no users"
        };
        return Err(why.into());
    }
    let realm = config
        .realm
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_REALM);
    if realm.contains('"') {
        return Err("spec.basicAuth.realm must not contain '\"'".into());
    }
    let challenge = header_value(&format!("Basic realm=\"{realm}\""), "spec.basicAuth.realm")?;
    let header_field = config
        .header_field
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(|f| header_name(f, "spec.basicAuth.headerField"))
        .transpose()?;
    Ok(vec![Middleware::BasicAuth(BasicAuth {
        origin,
        users,
        challenge,
        remove_header: config.remove_header == Some(true),
        header_field,
    })])
}

pub(super) fn ip_allow_list(
    config: Option<&IpAllowListSpec>,
    field: &str,
    origin: Origin,
) -> Built {
    let Some(config) = config else {
        return Err(format!("{field} is empty"));
    };
    if config.source_range.is_empty() {
        return Err(format!("{field}.sourceRange must list at least one range"));
    }
    let ranges = config
        .source_range
        .iter()
        .enumerate()
        .map(|(i, range)| ip_range(range, &format!("{field}.sourceRange[{i}]")))
        .collect::<Result<_, _>>()?;
    let reject_status = match config.reject_status_code {
        None | Some(0) => 403,
        Some(code) => u16::try_from(code)
            .ok()
            .and_then(|c| http::StatusCode::from_u16(c).ok())
            .filter(|c| c.canonical_reason().is_some())
            .map(|c| c.as_u16())
            .ok_or_else(|| format!("{field}.rejectStatusCode: {code} is not an HTTP status"))?,
    };
    Ok(vec![Middleware::IpAllowList(IpAllowList {
        origin,
        ranges,
        strategy: ip_strategy(config.ip_strategy.as_ref(), &format!("{field}.ipStrategy"))?,
        reject_status,
    })])
}

/// An IP or a CIDR range.
fn ip_range(text: &str, field: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{field}: {text:?} is not an IP or CIDR range"))
}

/// Traefik's `IPStrategy.Get`: `depth` wins over `excludedIPs`; neither is the peer.
pub(super) fn ip_strategy(
    config: Option<&IpStrategySpec>,
    field: &str,
) -> Result<IpStrategy, String> {
    let Some(config) = config else {
        return Ok(IpStrategy::RemoteAddr { ipv6_subnet: None });
    };
    let ipv6_subnet = config
        .ipv6_subnet
        .map(|bits| {
            u8::try_from(bits)
                .ok()
                .filter(|b| (1..=128).contains(b))
                .ok_or_else(|| {
                    format!("{field}.ipv6Subnet: {bits} is not a prefix length from 1 to 128")
                })
        })
        .transpose()?;
    match config.depth.unwrap_or(0) {
        depth if depth < 0 => Err(format!("{field}.depth: {depth} is negative")),
        0 if !config.excluded_ips.is_empty() => Ok(IpStrategy::Excluded(
            config
                .excluded_ips
                .iter()
                .enumerate()
                .map(|(i, ip)| ip_range(ip, &format!("{field}.excludedIPs[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        0 => Ok(IpStrategy::RemoteAddr { ipv6_subnet }),
        depth => Ok(IpStrategy::Depth {
            depth: usize::try_from(depth).unwrap_or(usize::MAX),
            ipv6_subnet,
        }),
    }
}
