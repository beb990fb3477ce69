//! `compress`: which responses are compressed, and with which encoding.
//!
//! The choice follows Traefik v3: the client's `Accept-Encoding` preferences by quality
//! value, ties broken by the order of `encodings`; `*` stands for `defaultEncoding` (else
//! the first of `encodings`); no `Accept-Encoding` at all means `defaultEncoding` or
//! nothing. Pingora's own compression ignores quality values, so the choice is made here.

use mime::Mime;

/// A content coding the gateway produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Brotli,
    Zstd,
}

impl Encoding {
    /// The token of `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding of `token` (case-insensitive), if it is one the gateway produces.
    pub fn from_token(token: &str) -> Option<Encoding> {
        [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd]
            .into_iter()
            .find(|e| e.token().eq_ignore_ascii_case(token))
    }
}

/// Response media types compressed: all but some, or only some.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentTypes {
    /// `excludedContentTypes` (`application/grpc` is never compressed either).
    Excluded(Vec<Mime>),
    /// `includedContentTypes`.
    Included(Vec<Mime>),
}

/// Traefik `compress`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Compress {
    /// Encodings offered, the first preferred at equal quality; never empty.
    pub encodings: Vec<Encoding>,
    /// For a request without `Accept-Encoding`, and for `*`.
    pub default_encoding: Option<Encoding>,
    /// Responses whose `Content-Length` is below this are not compressed.
    pub min_body_bytes: u64,
    pub content_types: ContentTypes,
}

/// The default of `minResponseBodyBytes`, as in Traefik.
pub const DEFAULT_MIN_BODY_BYTES: u64 = 1024;
/// The default of `encodings`, as in Traefik v3.
pub const DEFAULT_ENCODINGS: [Encoding; 3] = [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd];

/// One acceptable coding of `Accept-Encoding`, with its rank at equal quality.
struct Acceptable {
    quality: f32,
    /// `*` first, then `encodings` in order, then `identity`.
    rank: usize,
    choice: Option<Encoding>,
}

impl Compress {
    /// The encoding for a request whose `Accept-Encoding` field lines are `lines`
    /// (`None` when the header is absent); `None`: send the response as it is.
    pub fn choose(&self, lines: Option<&[&str]>) -> Option<Encoding> {
        let Some(lines) = lines else {
            return self.default_encoding;
        };
        let wildcard = self.default_encoding.or(self.encodings.first().copied());
        let mut best: Option<Acceptable> = None;
        for item in lines.iter().flat_map(|line| line.split(',')) {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let (rank, choice) = if token == "*" {
                (0, wildcard)
            } else if token.eq_ignore_ascii_case("identity") {
                (self.encodings.len() + 1, None)
            } else {
                let Some(position) = Encoding::from_token(token)
                    .and_then(|e| self.encodings.iter().position(|&offered| offered == e))
                else {
                    continue;
                };
                (position + 1, Some(self.encodings[position]))
            };
            let quality = parts
                .find_map(|param| {
                    let (name, value) = param.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
                })
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            let better = best
                .as_ref()
                .is_none_or(|b| quality > b.quality || (quality == b.quality && rank < b.rank));
            if better {
                best = Some(Acceptable {
                    quality,
                    rank,
                    choice,
                });
            }
        }
        best.and_then(|b| b.choice)
    }

    /// Whether a response of `content_type` (its `Content-Type`, if any) may be compressed.
    /// An unparsable type is not compressed; a response without one is, unless only
    /// some types are.
    pub fn compresses_type(&self, content_type: Option<&str>) -> bool {
        let Some(text) = content_type else {
            return matches!(self.content_types, ContentTypes::Excluded(_));
        };
        let Ok(actual) = text.parse::<Mime>() else {
            return false;
        };
        if actual.essence_str() == "application/grpc" {
            // As in Traefik: gRPC frames its own messages and compression.
            return false;
        }
        match &self.content_types {
            ContentTypes::Excluded(types) => !types.iter().any(|t| media_type_matches(t, &actual)),
            ContentTypes::Included(types) => types.iter().any(|t| media_type_matches(t, &actual)),
        }
    }
}

/// Whether `actual` is of the configured media type `listed`: the same type and
/// subtype, and, when `listed` has parameters, exactly its parameters.
pub fn media_type_matches(listed: &Mime, actual: &Mime) -> bool {
    if listed.essence_str() != actual.essence_str() {
        return false;
    }
    let wanted: Vec<_> = listed.params().collect();
    wanted.is_empty() || {
        let given: Vec<_> = actual.params().collect();
        given.len() == wanted.len() && wanted.iter().all(|p| given.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(encodings: &[Encoding], default: Option<Encoding>) -> Compress {
        Compress {
            encodings: encodings.to_vec(),
            default_encoding: default,
            min_body_bytes: DEFAULT_MIN_BODY_BYTES,
            content_types: ContentTypes::Excluded(Vec::new()),
        }
    }

    use Encoding::{Brotli as Br, Gzip, Zstd};

    #[test]
    fn accept_encoding_is_chosen_by_quality_then_by_the_order_of_encodings() {
        let traefik = compress(&DEFAULT_ENCODINGS, None);
        let cases: &[(&str, Option<Encoding>)] = &[
            ("gzip", Some(Gzip)),
            ("br", Some(Br)),
            ("zstd", Some(Zstd)),
            ("gzip, br, zstd", Some(Gzip)),
            ("zstd, br", Some(Br)),
            ("br;q=0.9, zstd;q=1.0", Some(Zstd)),
            ("gzip;q=0.5, br;q=0.8", Some(Br)),
            ("gzip;q=0, br;q=0.1", Some(Br)),
            ("gzip;q=0", None),
            ("deflate", None),
            ("deflate, compress;q=0.5, BR", Some(Br)),
            ("*", Some(Gzip)),
            ("*;q=0", None),
            ("br;q=0.5, *", Some(Gzip)),
            ("identity", None),
            ("identity, gzip;q=0.5", None),
            ("identity;q=0.5, gzip", Some(Gzip)),
            ("gzip;level=1;q=0.2, zstd;q=0.3", Some(Zstd)),
            ("gzip;q=x", None),
            ("", None),
            (" gzip ;  q=0.4 ,zstd ; q=0.3", Some(Gzip)),
        ];
        for (header, expected) in cases {
            assert_eq!(traefik.choose(Some(&[header])), *expected, "{header:?}");
        }
        // Field lines are one list.
        assert_eq!(traefik.choose(Some(&["gzip;q=0.1", "zstd"])), Some(Zstd));
    }

    #[test]
    fn the_order_and_default_of_encodings_decide_ties_and_wildcards() {
        let zstd_first = compress(&[Zstd, Br], Some(Br));
        assert_eq!(zstd_first.choose(Some(&["gzip, br, zstd"])), Some(Zstd));
        assert_eq!(zstd_first.choose(Some(&["gzip"])), None, "not offered");
        assert_eq!(zstd_first.choose(Some(&["*"])), Some(Br), "the default");
        assert_eq!(zstd_first.choose(None), Some(Br), "no header: the default");
        assert_eq!(compress(&[Zstd], None).choose(None), None, "no default");
    }

    #[test]
    fn content_types_are_matched_by_type_and_configured_parameters() {
        let mut c = compress(&DEFAULT_ENCODINGS, None);
        let parse = |t: &str| t.parse::<Mime>().expect(t);
        c.content_types = ContentTypes::Excluded(vec![
            parse("text/event-stream"),
            parse("text/plain; charset=ascii"),
        ]);
        assert!(c.compresses_type(Some("application/json")));
        assert!(c.compresses_type(None));
        assert!(!c.compresses_type(Some("application/grpc")));
        assert!(!c.compresses_type(Some("Text/Event-Stream; charset=utf-8")));
        assert!(!c.compresses_type(Some("text/plain; charset=ascii")));
        assert!(c.compresses_type(Some("text/plain; charset=utf-8")));
        assert!(c.compresses_type(Some("text/plain")));
        assert!(!c.compresses_type(Some("not a type")));

        c.content_types = ContentTypes::Included(vec![parse("application/json")]);
        assert!(c.compresses_type(Some("application/json; charset=utf-8")));
        assert!(!c.compresses_type(Some("text/html")));
        assert!(!c.compresses_type(None));
    }
}
