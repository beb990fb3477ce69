//! `grpcWeb`: browsers' gRPC-Web calls converted to gRPC for the upstream.

use super::Origin;

/// Traefik `grpcWeb`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcWeb {
    pub origin: Origin,
    /// The origins allowed to call across origins (CORS); `*` allows any.
    pub allow_origins: Vec<String>,
}

impl GrpcWeb {
    /// Whether a browser page from `origin` may call, as Traefik decides: listed
    /// exactly, or `*` listed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn grpc_web(origins: &[&str]) -> GrpcWeb {
        GrpcWeb {
            origin: Origin {
                name: Arc::from("apps/web"),
                kind: "grpcWeb",
            },
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn origins_match_exactly_or_by_star() {
        let listed = grpc_web(&["https://app.example"]);
        assert!(listed.allows("https://app.example"));
        assert!(!listed.allows("https://app.example:8443"));
        assert!(!listed.allows("http://app.example"));
        assert!(!listed.allows(""));
        assert!(grpc_web(&["https://x.example", "*"]).allows("https://any.example"));
        assert!(!grpc_web(&[]).allows("https://app.example"));
    }
}
