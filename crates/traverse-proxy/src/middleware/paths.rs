//! Path rewriting: `stripPrefix`, `addPrefix`.

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::{AddPrefix, StripPrefix};

use super::{PathRewrite, Step};

impl Step for StripPrefix {
    fn upstream_request(&self, request: &mut RequestHeader, path: &mut PathRewrite) -> Result<()> {
        let current = path.current(request);
        let Some((prefix, rest)) = self
            .prefixes
            .iter()
            .find_map(|p| current.strip_prefix(p.as_str()).map(|rest| (p, rest)))
        else {
            return Ok(());
        };
        let stripped = if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
        let prefix = prefix.trim_end_matches('/').to_owned();
        path.set(stripped);
        if let Ok(value) = HeaderValue::from_str(&prefix) {
            request.insert_header("x-forwarded-prefix", value)?;
        }
        Ok(())
    }
}

impl Step for AddPrefix {
    fn upstream_request(&self, request: &mut RequestHeader, path: &mut PathRewrite) -> Result<()> {
        let prefixed = format!("{}{}", self.prefix, path.current(request));
        path.set(prefixed);
        Ok(())
    }
}
