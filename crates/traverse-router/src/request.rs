//! The request as routing rules and the route table see it.

/// A request as the router sees it. Everything is borrowed; matching does not
/// allocate on the common path.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method, compared case-insensitively.
    pub method: &'a str,
    /// `Host` header or `:authority` as received: may carry `:port` and any
    /// case. The router strips the port and compares case-insensitively.
    pub host: &'a str,
    /// Request path, compared as given.
    pub path: &'a str,
    /// Raw query string without the leading `?`.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a http::HeaderMap,
    /// Address of the client, if known; `ClientIP` never matches without it.
    pub client_ip: Option<std::net::IpAddr>,
}
