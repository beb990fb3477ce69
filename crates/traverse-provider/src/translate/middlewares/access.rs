//! `basicAuth`, `digestAuth`, `forwardAuth`, `passTLSClientCert`, `ipAllowList` (and its deprecated alias `ipWhiteList`).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use traverse_api::middleware::{
    ClientTls as ClientTlsSpec, IpAllowList as IpAllowListSpec, IpStrategy as IpStrategySpec,
};
use traverse_api::{MiddlewareSpec, Secret};

use super::super::transports::{identity, roots};
use super::{header_name, header_value, pattern, Built};
use crate::model::middleware::ForwardAuth;
use crate::model::middleware::{parse_htdigest, CertInfo, NameFields};
use crate::model::{
    BasicAuth, ClientTls, Credential, DigestAuth, IpAllowList, IpStrategy, Middleware, Origin,
    PassTlsClientCert,
};
use crate::snapshot::Object;
use crate::tls::secret_value;

/// The Secret type whose `username` and `password` are one user.
const BASIC_AUTH_SECRET: &str = "kubernetes.io/basic-auth";

/// Traefik's default realm.
const DEFAULT_REALM: &str = "traefik";

/// `basicAuth`; `secret` names a Secret of the Middleware's `namespace` among `secrets`.
pub(super) fn basic_auth(
    spec: &MiddlewareSpec,
    namespace: &str,
    secrets: &[Arc<Secret>],
    origin: Origin,
) -> Built {
    let Some(config) = spec.basic_auth.as_ref() else {
        return Err("spec.basicAuth is empty".into());
    };
    let mut users = Vec::new();
    for (i, line) in config.users.iter().enumerate() {
        let field = format!("spec.basicAuth.users[{i}]");
        add_user(&mut users, line, &field)?;
    }
    if let Some((secret, field)) = named_secret(
        config.secret.as_deref(),
        namespace,
        secrets,
        "spec.basicAuth.secret",
    )? {
        secret_users(&mut users, secret, &field)?;
    }
    if users.is_empty() {
        return Err("spec.basicAuth.users lists no users, and no secret names any".into());
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

/// The Secret an auth middleware's `field` names in its own namespace (Traefik looks
/// nowhere else), with the field to name in its problems; `None` when unset or empty.
fn named_secret<'a>(
    name: Option<&str>,
    namespace: &str,
    secrets: &'a [Arc<Secret>],
    field: &str,
) -> Result<Option<(&'a Secret, String)>, String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let secret = secrets
        .iter()
        .find(|s| s.key() == (namespace, name))
        .ok_or_else(|| format!("{field}: Secret {namespace}/{name} not found"))?;
    Ok(Some((
        secret,
        format!("{field} (Secret {namespace}/{name})"),
    )))
}

/// Adds htpasswd line `user:hash` (a later line for the same user wins).
fn add_user(users: &mut Vec<(String, Credential)>, line: &str, field: &str) -> Result<(), String> {
    // The hash is never repeated in a message.
    let mut parts = line.split(':');
    let (Some(user), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{field}: expected user:hash"));
    };
    let credential =
        Credential::parse(hash).map_err(|e| format!("{field} (user {user:?}): {e}"))?;
    users.retain(|(name, _)| name != user);
    users.push((user.to_owned(), credential));
    Ok(())
}

/// The users of a Secret, as Traefik reads them: a `kubernetes.io/basic-auth` Secret's
/// `username` and `password` (in clear), else the htpasswd lines of its one entry.
fn secret_users(
    users: &mut Vec<(String, Credential)>,
    secret: &Secret,
    field: &str,
) -> Result<(), String> {
    if secret.type_.as_deref() == Some(BASIC_AUTH_SECRET) {
        let (Some((user, _)), Some((password, _))) = (
            secret_value(secret, "username"),
            secret_value(secret, "password"),
        ) else {
            return Err(format!(
                "{field}: a {BASIC_AUTH_SECRET} Secret holds username and password"
            ));
        };
        let user = String::from_utf8_lossy(user).into_owned();
        users.retain(|(name, _)| *name != user);
        users.push((user, Credential::sha1_of(password)));
        return Ok(());
    }
    for (line, field) in secret_lines(secret, field, "htpasswd")? {
        add_user(users, &line, &field)?;
    }
    Ok(())
}

/// The lines of a Secret's one entry (Traefik's `loadAuthCredentials`), each with the
/// field naming it in a message; blank lines skipped.
fn secret_lines(
    secret: &Secret,
    field: &str,
    format: &str,
) -> Result<Vec<(String, String)>, String> {
    let keys: Vec<&String> = secret
        .data
        .iter()
        .flat_map(|d| d.keys())
        .chain(secret.string_data.iter().flat_map(|d| d.keys()))
        .collect();
    let [key] = keys.as_slice() else {
        return Err(format!(
            "{field}: holds {} entries; exactly one, of {format} lines, is read",
            keys.len()
        ));
    };
    let Some((bytes, entry)) = secret_value(secret, key) else {
        return Err(format!("{field}: entry {key} is unreadable"));
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{field}: {entry} is not text"))?;
    if text.trim().is_empty() {
        return Err(format!("{field}: {entry} holds no users"));
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            (
                line.trim().to_owned(),
                format!("{field} {entry} line {}", i + 1),
            )
        })
        .collect())
}

/// `digestAuth`: htdigest users from `users` and the Secret `secret` of the Middleware's
/// `namespace`; only those of the realm authenticate, as in Traefik.
pub(super) fn digest_auth(
    spec: &MiddlewareSpec,
    namespace: &str,
    secrets: &[Arc<Secret>],
    origin: Origin,
) -> Built {
    let Some(config) = spec.digest_auth.as_ref() else {
        return Err("spec.digestAuth is empty".into());
    };
    let realm = config
        .realm
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_REALM);
    if realm.contains(['"', '\\']) {
        return Err("spec.digestAuth.realm must not contain '\"' or '\\'".into());
    }
    header_value(realm, "spec.digestAuth.realm")?;
    let mut lines: Vec<(String, String)> = config
        .users
        .iter()
        .enumerate()
        .map(|(i, line)| (line.clone(), format!("spec.digestAuth.users[{i}]")))
        .collect();
    if let Some((secret, field)) = named_secret(
        config.secret.as_deref(),
        namespace,
        secrets,
        "spec.digestAuth.secret",
    )? {
        lines.extend(secret_lines(secret, &field, "htdigest")?);
    }
    if lines.is_empty() {
        return Err("spec.digestAuth.users lists no users, and no secret names any".into());
    }
    let mut users: Vec<(String, String)> = Vec::new();
    for (line, field) in &lines {
        let (user, user_realm, ha1) =
            parse_htdigest(line).map_err(|why| format!("{field}: {why}"))?;
        if user_realm == realm {
            users.retain(|(name, _)| name != user);
            users.push((user.to_owned(), ha1));
        }
    }
    if users.is_empty() {
        return Err(format!(
            "spec.digestAuth.users: no user is of realm {realm:?}, so none could authenticate"
        ));
    }
    let header_field = config
        .header_field
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(|f| header_name(f, "spec.digestAuth.headerField"))
        .transpose()?;
    Ok(vec![Middleware::DigestAuth(DigestAuth {
        origin,
        realm: realm.to_owned(),
        users,
        remove_header: config.remove_header == Some(true),
        header_field,
    })])
}

/// `forwardAuth`; its `tls` Secrets are of the Middleware's `namespace` among `secrets`.
pub(super) fn forward_auth(
    spec: &MiddlewareSpec,
    namespace: &str,
    secrets: &[Arc<Secret>],
    origin: Origin,
) -> Built {
    let Some(config) = spec.forward_auth.as_ref() else {
        return Err("spec.forwardAuth is empty".into());
    };
    let field = "spec.forwardAuth.address";
    let text = config
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("{field} is required"))?;
    let address: http::Uri = text
        .parse()
        .map_err(|_| format!("{field}: {text:?} is not a URL"))?;
    let https = match address.scheme_str() {
        Some("http") if address.authority().is_some() => false,
        Some("https") if address.authority().is_some() => true,
        _ => {
            return Err(format!(
                "{field}: {text:?} is not an http:// or https:// URL"
            ))
        }
    };
    // Read even for an http address, as Traefik does: a missing Secret is an error.
    let tls = config
        .tls
        .as_ref()
        .map(|tls| client_tls(tls, namespace, secrets))
        .transpose()?;
    let tls = https.then(|| Arc::new(tls.unwrap_or_default()));
    let names = |list: &[String], field: &str| {
        list.iter()
            .enumerate()
            .map(|(i, name)| header_name(name, &format!("{field}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    };
    let response_headers_regex = config
        .auth_response_headers_regex
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| {
            // Header names are compared in lower case, as they are stored.
            pattern(
                &format!("(?i){r}"),
                "spec.forwardAuth.authResponseHeadersRegex",
            )
        })
        .transpose()?;
    Ok(vec![Middleware::ForwardAuth(ForwardAuth {
        origin,
        address,
        tls,
        trust_forward_header: config.trust_forward_header == Some(true),
        response_headers: names(
            &config.auth_response_headers,
            "spec.forwardAuth.authResponseHeaders",
        )?,
        response_headers_regex,
        request_headers: names(
            &config.auth_request_headers,
            "spec.forwardAuth.authRequestHeaders",
        )?,
    })])
}

/// `forwardAuth.tls`: its Secrets read and checked as a ServersTransport's are (Traefik
/// loads both the same way). The server is verified as the address's host.
fn client_tls(
    config: &ClientTlsSpec,
    namespace: &str,
    secrets: &[Arc<Secret>],
) -> Result<ClientTls, String> {
    let mut tls = ClientTls {
        insecure_skip_verify: config.insecure_skip_verify == Some(true),
        ..ClientTls::default()
    };
    if let Some((secret, field)) = named_secret(
        config.ca_secret.as_deref(),
        namespace,
        secrets,
        "spec.forwardAuth.tls.caSecret",
    )? {
        tls.root_cas = roots(secret).map_err(|why| format!("{field}: {why}"))?;
    }
    if let Some((secret, field)) = named_secret(
        config.cert_secret.as_deref(),
        namespace,
        secrets,
        "spec.forwardAuth.tls.certSecret",
    )? {
        tls.client_identity = Some(identity(secret).map_err(|why| format!("{field}: {why}"))?);
    }
    Ok(tls)
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

/// `passTLSClientCert`: nothing to validate beyond the shape; unset flags are false.
pub(super) fn pass_tls_client_cert(spec: &MiddlewareSpec) -> Built {
    let Some(config) = spec.pass_tls_client_cert.as_ref() else {
        return Err("spec.passTLSClientCert is empty".into());
    };
    let on = |flag: Option<bool>| flag == Some(true);
    let info = config.info.as_ref().map(|info| CertInfo {
        not_after: on(info.not_after),
        not_before: on(info.not_before),
        sans: on(info.sans),
        serial_number: on(info.serial_number),
        subject: info.subject.as_ref().map(|s| NameFields {
            country: on(s.country),
            province: on(s.province),
            locality: on(s.locality),
            organization: on(s.organization),
            organizational_unit: on(s.organizational_unit),
            common_name: on(s.common_name),
            serial_number: on(s.serial_number),
            domain_component: on(s.domain_component),
        }),
        issuer: info.issuer.as_ref().map(|i| NameFields {
            country: on(i.country),
            province: on(i.province),
            locality: on(i.locality),
            organization: on(i.organization),
            organizational_unit: false,
            common_name: on(i.common_name),
            serial_number: on(i.serial_number),
            domain_component: on(i.domain_component),
        }),
    });
    Ok(vec![Middleware::PassTlsClientCert(PassTlsClientCert {
        pem: on(config.pem),
        info,
    })])
}
