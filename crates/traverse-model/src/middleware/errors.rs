//! `errors`: which upstream statuses get an error page, and where the page comes from.

use std::sync::Arc;

use super::Origin;
use crate::Backend;

/// Traefik `errors`, validated: responses whose status is in `statuses` get the body (and
/// headers) of `query` on `service`, keeping their status.
#[derive(Debug, Clone)]
pub struct Errors {
    pub origin: Origin,
    /// Inclusive ranges.
    pub statuses: Vec<(u16, u16)>,
    pub service: Arc<Backend>,
    /// The page's path; `{status}` and `{url}` are replaced per response.
    pub query: String,
}

impl Errors {
    /// Whether a response of `status` gets the error page.
    pub fn catches(&self, status: u16) -> bool {
        self.statuses
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }

    /// The page's path for a response of `status` to a request for `escaped_url` (the
    /// request target, already query-escaped).
    pub fn page(&self, status: u16, escaped_url: &str) -> String {
        self.query
            .replace("{status}", &status.to_string())
            .replace("{url}", escaped_url)
    }
}

/// Parses Traefik's status list entry: `404`, `500-599`, or several separated by commas.
pub fn parse_status_ranges(text: &str) -> Option<Vec<(u16, u16)>> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let (low, high) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
            ((100..=599).contains(&low) && (low..=599).contains(&high)).then_some((low, high))
        })
        .collect()
}

impl PartialEq for Errors {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
            && self.statuses == other.statuses
            && self.query == other.query
            && Arc::ptr_eq(&self.service, &other.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_are_codes_and_ranges() {
        assert_eq!(parse_status_ranges("404"), Some(vec![(404, 404)]));
        assert_eq!(parse_status_ranges("500-599"), Some(vec![(500, 599)]));
        assert_eq!(
            parse_status_ranges("401, 403-404"),
            Some(vec![(401, 401), (403, 404)])
        );
        for bad in ["", "abc", "599-500", "600", "5xx", "-1"] {
            assert_eq!(parse_status_ranges(bad), None, "{bad:?}");
        }
    }
}
