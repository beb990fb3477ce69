//! `compress` and `buffering`.

use traverse_api::MiddlewareSpec;

use super::Built;
use crate::model::middleware::Buffering;
use crate::model::middleware::{
    Compress, ContentTypes, Encoding, Mime, DEFAULT_ENCODINGS, DEFAULT_MIN_BODY_BYTES,
};
use crate::model::{Middleware, Origin};

pub(super) fn compress(spec: &MiddlewareSpec) -> Built {
    let Some(config) = spec.compress.as_ref() else {
        return Err("spec.compress is empty".into());
    };
    let media_types = |list: &[String], field: &str| {
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<Mime>().map_err(|_| {
                    format!("spec.compress.{field}[{i}]: {text:?} is not a media type")
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let content_types = match (
        config.excluded_content_types.as_slice(),
        config.included_content_types.as_slice(),
    ) {
        ([_, ..], [_, ..]) => return Err(
            "spec.compress: excludedContentTypes and includedContentTypes are mutually exclusive"
                .into(),
        ),
        (_, [_, ..]) => ContentTypes::Included(media_types(
            &config.included_content_types,
            "includedContentTypes",
        )?),
        (excluded, []) => ContentTypes::Excluded(media_types(excluded, "excludedContentTypes")?),
    };
    let min_body_bytes = match config.min_response_body_bytes {
        None | Some(0) => DEFAULT_MIN_BODY_BYTES,
        Some(bytes) if bytes < 0 => {
            return Err(format!(
                "spec.compress.minResponseBodyBytes: {bytes} is negative"
            ))
        }
        Some(bytes) => bytes.unsigned_abs(),
    };
    let encodings = if config.encodings.is_empty() {
        DEFAULT_ENCODINGS.to_vec()
    } else {
        config
            .encodings
            .iter()
            .enumerate()
            .map(|(i, token)| {
                Encoding::from_token(token).ok_or_else(|| {
                    format!("spec.compress.encodings[{i}]: {token:?} is not one of gzip, br, zstd")
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let default_encoding = match config.default_encoding.as_deref() {
        None | Some("") => None,
        Some(token) => match Encoding::from_token(token) {
            Some(encoding) if encodings.contains(&encoding) => Some(encoding),
            _ => {
                return Err(format!(
                    "spec.compress.defaultEncoding: {token:?} is not one of encodings"
                ))
            }
        },
    };
    Ok(vec![Middleware::Compress(Compress {
        encodings,
        default_encoding,
        min_body_bytes,
        content_types,
    })])
}

/// `buffering`: body size limits; 0 or absent is none, as in Traefik.
pub(super) fn buffering(spec: &MiddlewareSpec, origin: Origin) -> Built {
    let Some(config) = spec.buffering.as_ref() else {
        return Err("spec.buffering is empty".into());
    };
    let limit = |value: Option<i64>, field: &str| match value {
        None | Some(0) => Ok(None),
        Some(bytes) if bytes < 0 => Err(format!("spec.buffering.{field}: {bytes} is negative")),
        Some(bytes) => Ok(Some(bytes.unsigned_abs())),
    };
    Ok(vec![Middleware::Buffering(Buffering {
        origin,
        max_request_body_bytes: limit(config.max_request_body_bytes, "maxRequestBodyBytes")?,
        max_response_body_bytes: limit(config.max_response_body_bytes, "maxResponseBodyBytes")?,
    })])
}
