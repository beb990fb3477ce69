//! Path rewriting: `stripPrefix`, `addPrefix`, `stripPrefixRegex`, `replacePath`,
//! `replacePathRegex`.

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::{AddPrefix, ReplacePath, ReplacePathRegex, StripPrefix, StripPrefixRegex};

/// Where Traefik keeps the path a replace step replaced.
const X_REPLACED_PATH: &str = "x-replaced-path";

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

impl Step for StripPrefixRegex {
    fn upstream_request(&self, request: &mut RequestHeader, path: &mut PathRewrite) -> Result<()> {
        let Some((prefix, rest)) = self.strip(path.current(request)) else {
            return Ok(());
        };
        path.set(rest);
        if let Ok(value) = HeaderValue::from_str(&prefix) {
            request.append_header("x-forwarded-prefix", value)?;
        }
        Ok(())
    }
}

impl Step for ReplacePath {
    fn upstream_request(&self, request: &mut RequestHeader, path: &mut PathRewrite) -> Result<()> {
        let replaced = path.current(request).to_owned();
        if let Ok(value) = HeaderValue::from_str(&replaced) {
            request.append_header(X_REPLACED_PATH, value)?;
        }
        path.set(self.path.clone());
        Ok(())
    }
}

impl Step for ReplacePathRegex {
    fn upstream_request(&self, request: &mut RequestHeader, path: &mut PathRewrite) -> Result<()> {
        let current = path.current(request).to_owned();
        let Some(rewritten) = self.rewrite(&current) else {
            return Ok(());
        };
        if let Ok(value) = HeaderValue::from_str(&current) {
            request.append_header(X_REPLACED_PATH, value)?;
        }
        path.set(rewritten);
        Ok(())
    }
}
