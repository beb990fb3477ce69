//! Client IP selection (`ipStrategy`), `ipAllowList` and `sourceCriterion`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderName;
use ipnet::{IpNet, Ipv6Net};

use super::Origin;

/// How the client IP is read (Traefik `ipStrategy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpStrategy {
    /// The connection's peer.
    RemoteAddr { ipv6_subnet: Option<u8> },
    /// The `depth`-th `X-Forwarded-For` entry from the right (`depth` ≥ 1).
    Depth {
        depth: usize,
        ipv6_subnet: Option<u8>,
    },
    /// The rightmost `X-Forwarded-For` entry outside these ranges.
    Excluded(Vec<IpNet>),
}

impl IpStrategy {
    /// The client IP as text (Traefik compares and keys on text), or `None` when the
    /// strategy finds none. `forwarded_for` is the `X-Forwarded-For` chain as the gateway
    /// trusts it (empty when the client may not set it).
    pub fn client_ip(&self, remote: Option<IpAddr>, forwarded_for: &str) -> Option<String> {
        match self {
            IpStrategy::RemoteAddr { ipv6_subnet } => {
                remote.map(|ip| subnet(&ip.to_string(), *ipv6_subnet))
            }
            IpStrategy::Depth { depth, ipv6_subnet } => {
                let hops: Vec<&str> = forwarded_for.split(',').collect();
                let ip = hops.len().checked_sub(*depth).map(|i| hops[i].trim())?;
                (!ip.is_empty()).then(|| subnet(ip, *ipv6_subnet))
            }
            IpStrategy::Excluded(excluded) => forwarded_for
                .rsplit(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
                .find(|hop| {
                    parse_ip(hop).is_none_or(|ip| !excluded.iter().any(|n| n.contains(&ip)))
                })
                .map(str::to_owned),
        }
    }
}

/// An IP, or the IP of an `ip:port`.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// An IPv6 address reduced to its subnet's first address; anything else as it is.
fn subnet(ip: &str, prefix: Option<u8>) -> String {
    match (prefix, ip.parse::<Ipv6Addr>()) {
        (Some(prefix), Ok(v6)) => Ipv6Net::new(v6, prefix)
            .map(|net| net.network().to_string())
            .unwrap_or_else(|_| ip.to_owned()),
        _ => ip.to_owned(),
    }
}

/// Allow only clients in ranges (Traefik `ipAllowList`, formerly `ipWhiteList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowList {
    pub origin: Origin,
    pub ranges: Vec<IpNet>,
    pub strategy: IpStrategy,
    /// 403 unless configured.
    pub reject_status: u16,
}

impl IpAllowList {
    /// Whether the client (as the strategy reads it) is in a range.
    pub fn allows(&self, remote: Option<IpAddr>, forwarded_for: &str) -> bool {
        self.strategy
            .client_ip(remote, forwarded_for)
            .and_then(|ip| parse_ip(&ip))
            .is_some_and(|ip| self.ranges.iter().any(|net| net.contains(&ip)))
    }
}

/// What groups requests as one source (Traefik `sourceCriterion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceCriterion {
    Ip(IpStrategy),
    /// The value of a request header (requests without it share the empty source).
    Header(HeaderName),
    Host,
}
