//! Services as a tree: a route's services, and Traefik's `weighted` TraefikServices
//! nested in them, are balancers over Service ports and other balancers. A balancer or
//! a Service port may keep a client on the child it chose with a sticky cookie. A
//! `mirroring` TraefikService is a balancer with one child (its main service) that also
//! names the mirrors a request reaching it is copied to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha1::Digest as _;

use crate::model::Backend;
use crate::weighted::Weighted;

/// Weighted round robin over a route's services or a `weighted` TraefikService.
#[derive(Debug)]
pub struct Balancer {
    /// The TraefikService (`namespace/name`), or the router for a route's own list.
    pub name: Arc<str>,
    pub children: Weighted<Node>,
    /// The cookie keeping a client on one child, with each child's key in order. Boxed:
    /// every route has a balancer and few have a cookie.
    pub sticky: Option<Box<Sticky>>,
    /// Whether some child with a positive weight has an endpoint.
    available: bool,
    /// Traefik's `failover`: the first child that can serve, in order, instead of
    /// weighted round robin.
    in_order: bool,
    /// Traefik's `mirroring`: where a copy of each request that goes through here goes.
    mirroring: Option<Arc<Mirroring>>,
}

/// Traefik's `mirroring` settings and the counters of its `percent` selection.
#[derive(Debug)]
pub struct Mirroring {
    pub mirrors: Vec<Mirror>,
    /// `mirrorBody`: copy the request body (else the copies go without one).
    pub mirror_body: bool,
    /// `maxBodySize`: a request whose body is longer is not mirrored; `None`: no limit.
    pub max_body_size: Option<u64>,
    /// Requests that reached this mirroring service.
    total: AtomicU64,
}

/// One of a mirroring service's mirrors.
#[derive(Debug)]
pub struct Mirror {
    pub node: Node,
    /// Share of the requests copied here, 0 to 100.
    pub percent: u8,
    /// Requests copied here so far.
    sent: AtomicU64,
}

impl Mirror {
    pub fn new(node: Node, percent: u8) -> Self {
        Mirror {
            node,
            percent: percent.min(100),
            sent: AtomicU64::new(0),
        }
    }
}

impl Mirroring {
    pub fn new(mirrors: Vec<Mirror>, mirror_body: bool, max_body_size: Option<u64>) -> Self {
        Mirroring {
            mirrors,
            mirror_body,
            max_body_size,
            total: AtomicU64::new(0),
        }
    }

    /// Counts a request that reached this mirroring service (its route's middlewares let
    /// it through) and returns the copies it owes, if any.
    pub fn owed(self: &Arc<Self>) -> Option<Mirrored> {
        let chosen = self.choose();
        (chosen != 0).then(|| Mirrored {
            mirroring: Arc::clone(self),
            chosen,
        })
    }

    /// Counts one more request and returns the mirrors it is copied to, in order (as a
    /// bit set: bit `i` for `mirrors[i]`). As Traefik does, a mirror gets request `n`
    /// when it has had fewer than `percent`% of the `n` so far: exact and deterministic
    /// (percent 50 mirrors every other request), kept with atomics instead of a lock.
    pub fn choose(&self) -> u64 {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut chosen = 0;
        for (i, mirror) in self.mirrors.iter().enumerate().take(64) {
            let due = |sent: u64| sent * 100 < total * u64::from(mirror.percent);
            let taken = mirror
                .sent
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sent| {
                    due(sent).then_some(sent + 1)
                })
                .is_ok();
            if taken {
                chosen |= 1 << i;
            }
        }
        chosen
    }
}

/// A request's copies for one mirroring service it went through.
#[derive(Debug, Clone)]
pub struct Mirrored {
    pub mirroring: Arc<Mirroring>,
    /// Bit `i` set: copied to `mirroring.mirrors[i]`.
    pub chosen: u64,
}

impl Mirrored {
    /// The mirrors chosen, in order.
    pub fn targets(&self) -> impl Iterator<Item = &Mirror> {
        self.mirroring
            .mirrors
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && self.chosen & (1 << i) != 0)
            .map(|(_, m)| m)
    }
}

/// One child of a [`Balancer`].
#[derive(Debug, Clone)]
pub enum Node {
    Backend(Arc<Backend>),
    Balancer(Arc<Balancer>),
}

impl Node {
    /// Whether a request sent here can find an endpoint.
    pub fn available(&self) -> bool {
        match self {
            Node::Backend(backend) => backend.servers.has_available(),
            Node::Balancer(balancer) => balancer.available,
        }
    }

    /// Whether a request sent here finds an endpoint in rotation at `now_ms` (not
    /// ejected, not failing its health check).
    pub fn healthy(&self, now_ms: u64) -> bool {
        match self {
            Node::Backend(backend) => backend.servers.has_selectable(&[], now_ms),
            Node::Balancer(balancer) => balancer.healthy(now_ms),
        }
    }
}

impl Balancer {
    pub fn new(name: Arc<str>, children: Vec<(Node, u32)>, sticky: Option<Sticky>) -> Self {
        let available = children.iter().any(|(n, w)| *w > 0 && n.available());
        Balancer {
            name,
            children: Weighted::new(children),
            sticky: sticky.map(Box::new),
            available,
            in_order: false,
            mirroring: None,
        }
    }

    /// A mirroring service: requests go to `service`, and copies to `mirroring`'s mirrors.
    pub fn mirroring(name: Arc<str>, service: Node, mirroring: Mirroring) -> Self {
        Balancer {
            in_order: true,
            mirroring: Some(Arc::new(mirroring)),
            ..Balancer::new(name, vec![(service, 1)], None)
        }
    }

    /// The mirroring settings, for a mirroring service.
    pub fn mirroring_settings(&self) -> Option<&Arc<Mirroring>> {
        self.mirroring.as_ref()
    }

    /// A failover: `service` while it has an endpoint in rotation, else `fallback`.
    pub fn failover(name: Arc<str>, service: Node, fallback: Option<Node>) -> Self {
        let children = std::iter::once(service)
            .chain(fallback)
            .map(|n| (n, 1))
            .collect();
        Balancer {
            in_order: true,
            ..Balancer::new(name, children, None)
        }
    }

    /// Whether a request can find an endpoint through this balancer.
    pub fn available(&self) -> bool {
        self.available
    }

    /// Whether a request finds an endpoint in rotation through this balancer at `now_ms`.
    pub fn healthy(&self, now_ms: u64) -> bool {
        self.children
            .items()
            .iter()
            .any(|(node, weight)| *weight > 0 && node.healthy(now_ms))
    }

    /// The Service port a request with `headers` goes to at `now_ms`: at each level the
    /// child its sticky cookie names, when that child can serve, else the next in
    /// weighted order among those that can. Children with an endpoint in rotation come
    /// first; when none has one, any child with endpoints (trying beats refusing). A
    /// level that chose without its cookie adds the `Set-Cookie` value that keeps the
    /// client there to `set_cookies`.
    pub fn pick(
        &self,
        headers: &http::HeaderMap,
        now_ms: u64,
        set_cookies: &mut Vec<String>,
    ) -> Option<&Arc<Backend>> {
        self.pick_mirrored(headers, now_ms, set_cookies, &mut Vec::new())
    }

    /// [`Balancer::pick`], adding each mirroring service on the way to `mirrored` when a
    /// port was found. Nothing is counted yet: a request counts towards the mirrors'
    /// shares ([`Mirroring::owed`]) once it reaches the service, past the route's
    /// middlewares, as Traefik's mirroring handler counts it.
    pub fn pick_mirrored(
        &self,
        headers: &http::HeaderMap,
        now_ms: u64,
        set_cookies: &mut Vec<String>,
        mirrored: &mut Vec<Arc<Mirroring>>,
    ) -> Option<&Arc<Backend>> {
        let healthy = |node: &Node| node.healthy(now_ms);
        let picked = match self.pick_where(headers, now_ms, set_cookies, mirrored, &healthy) {
            Some(backend) => Some(backend),
            None => self.pick_where(headers, now_ms, set_cookies, mirrored, &Node::available),
        }?;
        if let Some(mirroring) = &self.mirroring {
            mirrored.push(Arc::clone(mirroring));
        }
        Some(picked)
    }

    fn pick_where(
        &self,
        headers: &http::HeaderMap,
        now_ms: u64,
        set_cookies: &mut Vec<String>,
        mirrored: &mut Vec<Arc<Mirroring>>,
        serves: &dyn Fn(&Node) -> bool,
    ) -> Option<&Arc<Backend>> {
        let items = self.children.items();
        let stuck = self.sticky.as_ref().and_then(|sticky| {
            let value = cookie_value(headers, &sticky.cookie.name)?;
            let index = sticky.index_of(value)?;
            let (node, weight) = items.get(index)?;
            (*weight > 0 && serves(node)).then_some(index)
        });
        let index = match stuck {
            Some(index) => index,
            None => {
                let index = if self.in_order {
                    items
                        .iter()
                        .position(|(node, weight)| *weight > 0 && serves(node))?
                } else {
                    self.children.pick_index_where(serves)?
                };
                if let Some(sticky) = &self.sticky {
                    set_cookies.push(sticky.set_cookie(index));
                }
                index
            }
        };
        match &items.get(index)?.0 {
            Node::Backend(backend) => Some(backend),
            Node::Balancer(balancer) => {
                balancer.pick_mirrored(headers, now_ms, set_cookies, mirrored)
            }
        }
    }

    /// Every mirroring service a request through this balancer may pass (this one
    /// included) with its name, for the admin API. A mirror's own mirrors are not
    /// followed, as requests are not.
    pub fn mirrorings(&self) -> Vec<(&str, &Arc<Mirroring>)> {
        let mut out = Vec::new();
        self.collect_mirrorings(&mut out);
        out
    }

    fn collect_mirrorings<'a>(&'a self, out: &mut Vec<(&'a str, &'a Arc<Mirroring>)>) {
        if let Some(mirroring) = &self.mirroring {
            out.push((&self.name, mirroring));
        }
        for (node, _) in self.children.items() {
            if let Node::Balancer(balancer) = node {
                balancer.collect_mirrorings(out);
            }
        }
    }

    /// Every Service port under this balancer with its weight at its own level, in
    /// order, for the admin API and the gauges.
    pub fn backends(&self) -> Vec<(&Arc<Backend>, u32)> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<(&'a Arc<Backend>, u32)>) {
        for (node, weight) in self.children.items() {
            match node {
                Node::Backend(backend) => out.push((backend, *weight)),
                Node::Balancer(balancer) => balancer.collect(out),
            }
        }
    }
}

/// A sticky cookie and the key of each child (a balancer's children, a Service port's
/// endpoints), in order.
#[derive(Debug)]
pub struct Sticky {
    pub cookie: StickyCookie,
    keys: Vec<Box<str>>,
}

impl Sticky {
    /// The cookie, with each child known by `names` (Traefik: a service's name, an
    /// endpoint's URL); the cookie carries [`sticky_key`] of the name.
    pub fn new<'a>(cookie: StickyCookie, names: impl IntoIterator<Item = &'a str>) -> Self {
        Sticky {
            cookie,
            keys: names.into_iter().map(sticky_key).collect(),
        }
    }

    /// The child a cookie value names.
    pub fn index_of(&self, value: &str) -> Option<usize> {
        self.keys.iter().position(|k| **k == *value)
    }

    /// The `Set-Cookie` value naming child `index`.
    pub fn set_cookie(&self, index: usize) -> String {
        self.cookie
            .header(self.keys.get(index).map(|k| &**k).unwrap_or(""))
    }
}

/// Traefik's `sticky.cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    pub name: String,
    pub secure: bool,
    pub http_only: bool,
    /// `None`, `Lax` or `Strict` as written in the header; `None` leaves it out.
    pub same_site: Option<&'static str>,
    /// Positive: `Max-Age`; negative: `Max-Age=0` (expire now); 0: a session cookie.
    pub max_age: i64,
    pub path: String,
    pub domain: Option<String>,
}

impl StickyCookie {
    /// The `Set-Cookie` header value carrying `value`, laid out as Go's `http.SetCookie`
    /// writes it (Traefik's).
    pub fn header(&self, value: &str) -> String {
        let mut out = format!("{}={value}", self.name);
        if !self.path.is_empty() {
            out.push_str("; Path=");
            out.push_str(&self.path);
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if self.max_age > 0 {
            out.push_str(&format!("; Max-Age={}", self.max_age));
        } else if self.max_age < 0 {
            out.push_str("; Max-Age=0");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site);
        }
        out
    }
}

/// What a sticky cookie carries for a child named `name`: the first 16 hex digits of
/// its SHA-256, as Traefik v3 writes it.
pub fn sticky_key(name: &str) -> Box<str> {
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut hex = String::with_capacity(16);
    for byte in &digest[..8] {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.into()
}

/// Traefik's cookie name for a service whose `sticky.cookie.name` is empty: `_` and the
/// first 5 hex digits of the SHA-1 of `_TRAEFIK_BACKEND_<service>`.
pub fn default_cookie_name(service: &str) -> String {
    let digest = sha1::Sha1::digest(format!("_TRAEFIK_BACKEND_{service}").as_bytes());
    let hex: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    format!("_{}", &hex[..5])
}

/// A configured cookie name as Traefik sanitizes it: characters outside RFC 2616's
/// token set become `_`.
pub fn sanitize_cookie_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c,
            '!' | '#' | '$' | '%' | '&' | '\'' | '*' | '+' | '-' | '.' | '^' | '`' | '|' | '~' => c,
            _ => '_',
        })
        .collect()
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub fn cookie_value<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"'))
        })
}

/// The name Traefik gives a server for stickiness: its URL.
pub fn server_url(scheme: &str, address: SocketAddr) -> String {
    format!("{scheme}://{address}")
}

#[cfg(test)]
mod tests;
