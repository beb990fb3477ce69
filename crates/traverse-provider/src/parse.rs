//! Turning one raw object into its typed kind, shared by the providers: a field that does
//! not fit is named, and fields the type does not know are reported, never dropped silently.

use serde::de::DeserializeOwned;
use serde::Deserializer;

use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};

/// serde_ignored writes `spec.?.ports.0.x` (`?` for an Option level); diagnostics use `spec.ports[0].x`.
pub(crate) fn field_path(ignored: &str) -> String {
    let mut path = String::new();
    for segment in ignored.split('.').filter(|s| *s != "?") {
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    path
}

/// Deserializes one object (YAML or JSON) into `T`, naming the field on failure and
/// reporting unknown fields as warnings.
pub fn typed<'de, T, V>(
    value: V,
    object: &ObjectRef,
    source: &str,
    warnings: &mut Diagnostics,
) -> Result<T, (Option<String>, String)>
where
    T: DeserializeOwned,
    V: Deserializer<'de> + Clone,
{
    let mut unknown = Vec::new();
    let parsed: Result<T, _> = serde_path_to_error::deserialize(value.clone());
    let parsed = parsed.map_err(|error| {
        let path = error.path().to_string();
        (
            if path == "." { None } else { Some(path) },
            error.into_inner().to_string(),
        )
    })?;
    // Second pass only to learn which fields were ignored; it cannot fail where the first succeeded.
    let _: Result<T, _> =
        serde_ignored::deserialize(value, |path| unknown.push(field_path(&path.to_string())));
    // kube's derived kinds read apiVersion/kind through their own type metadata.
    for field in unknown
        .into_iter()
        .filter(|f| f != "apiVersion" && f != "kind")
    {
        warnings.push(Diagnostic {
            severity: Severity::Warning,
            reason: Reason::Unsupported,
            object: Some(object.clone()),
            source: Some(source.to_owned()),
            field: Some(field),
            message: "unknown field, ignored".into(),
        });
    }
    Ok(parsed)
}
