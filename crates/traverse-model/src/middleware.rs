//! Middlewares as the data plane runs them: validated, one type per kind.

/// A request/response transformation, already validated. Each kind is its own type, so
/// the data plane gives each its behaviour in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Middleware {
    StripPrefix(StripPrefix),
    AddPrefix(AddPrefix),
    Headers(Headers),
}

/// Remove the first matching prefix from the path (Traefik `stripPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
}

/// Prepend a prefix to the path (Traefik `addPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPrefix {
    pub prefix: String,
}

/// Set or remove headers; a `None` value removes the header (Traefik's empty string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub request: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
    pub response: Vec<(http::HeaderName, Option<http::HeaderValue>)>,
}
