//! Traefik's `entryPoints.NAME.http.redirections.entryPoint`: every request of the
//! entrypoint is answered with a redirect to the same URL on another entrypoint's port
//! and scheme, before routing.

use pingora::http::RequestHeader;
use traverse_config::{Config, EntryPointRedirect};
use traverse_model::Origin;

use crate::host::split_host_port;

/// Where an entrypoint's requests are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    scheme: String,
    /// `None` for the scheme's default port (the URL then carries none).
    port: Option<u16>,
    permanent: bool,
    origin: Origin,
}

impl Redirect {
    /// The redirect of entrypoint `name`'s `redirect` (validated: `to` is an entrypoint or
    /// `:port`), with the port of the target entrypoint's address.
    pub fn new(
        config: &Config,
        name: &str,
        redirect: &EntryPointRedirect,
    ) -> Result<Redirect, String> {
        let address = match config.entry_points.get(&redirect.to) {
            Some(target) => target.address.as_str(),
            None => redirect.to.as_str(),
        };
        let port = address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .ok_or_else(|| format!("{:?} has no port to redirect to", redirect.to))?;
        let default = match redirect.scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        Ok(Redirect {
            scheme: redirect.scheme.clone(),
            port: (port != default).then_some(port),
            permanent: redirect.permanent,
            origin: Origin {
                name: internal_name(name, &redirect.to).into(),
                kind: "RedirectScheme",
            },
        })
    }

    /// Status and `Location` for a request of `method` to `host` (as sent, with or
    /// without a port) and `path_and_query`. GET and HEAD get 301/302; other methods
    /// 308/307, which keep the method and body.
    pub fn target(&self, method: &http::Method, host: &str, path_and_query: &str) -> (u16, String) {
        let safe = *method == http::Method::GET || *method == http::Method::HEAD;
        let status = match (self.permanent, safe) {
            (true, true) => 301,
            (true, false) => 308,
            (false, true) => 302,
            (false, false) => 307,
        };
        let (name, _) = split_host_port(host);
        let name = if name.contains(':') {
            format!("[{name}]")
        } else {
            name.to_owned()
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = if path_and_query.is_empty() {
            "/"
        } else {
            path_and_query
        };
        (status, format!("{}://{name}{port}{path}", self.scheme))
    }

    /// Status and `Location` for `request`.
    pub(crate) fn answer(&self, request: &RequestHeader) -> (u16, String) {
        let host = crate::host::request_host(request).unwrap_or_default();
        let path = request
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        self.target(&request.method, host, path)
    }

    /// What answers, as the SERVER span and the access log name it: Traefik's internal
    /// middleware of the redirect (`redirect-web-to-websecure@internal`).
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// Traefik's name of the internal middleware that redirects entrypoint `from` to `to`:
/// `redirect-web-to-websecure@internal` (characters other than letters, digits and `-`
/// become `-`, as Traefik normalizes names).
fn internal_name(from: &str, to: &str) -> String {
    let name: String = format!("redirect-{from}-to-{to}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{name}@internal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "test.yaml").expect("parses")
    }

    #[test]
    fn the_url_moves_to_the_target_entrypoints_port_and_scheme() {
        let config = config(
            "entryPoints:\n  web: {address: ':8000', http: {redirections: {entryPoint: {to: websecure}}}}\n  websecure: {address: ':8443', tls: {}}\n",
        );
        let web = &config.entry_points["web"];
        let redirect = web
            .http
            .redirections
            .entry_point
            .as_ref()
            .expect("redirect");
        let redirect = Redirect::new(&config, "web", redirect).expect("redirect");
        assert_eq!(
            &*redirect.origin().name,
            "redirect-web-to-websecure@internal"
        );
        let cases = [
            (
                http::Method::GET,
                "a.test:8000",
                "/x?y=1",
                301,
                "https://a.test:8443/x?y=1",
            ),
            (
                http::Method::HEAD,
                "a.test",
                "",
                301,
                "https://a.test:8443/",
            ),
            (
                http::Method::POST,
                "[::1]:8000",
                "/p",
                308,
                "https://[::1]:8443/p",
            ),
        ];
        for (method, host, path, status, location) in cases {
            assert_eq!(
                redirect.target(&method, host, path),
                (status, location.to_owned())
            );
        }
    }

    #[test]
    fn default_ports_are_left_out_and_temporary_redirects_keep_the_method() {
        let config = config(
            "entryPoints:\n  web: {address: ':80', http: {redirections: {entryPoint: {to: ':443', permanent: false}}}}\n",
        );
        let redirect = config.entry_points["web"]
            .http
            .redirections
            .entry_point
            .as_ref()
            .expect("redirect");
        let redirect = Redirect::new(&config, "web", redirect).expect("redirect");
        assert_eq!(&*redirect.origin().name, "redirect-web-to--443@internal");
        assert_eq!(
            redirect.target(&http::Method::GET, "a.test", "/"),
            (302, "https://a.test/".to_owned())
        );
        assert_eq!(
            redirect.target(&http::Method::PUT, "a.test", "/"),
            (307, "https://a.test/".to_owned())
        );
    }
}
