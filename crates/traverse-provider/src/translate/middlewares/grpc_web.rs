//! `grpcWeb`: the origins allowed to call across origins.

use traverse_api::Middleware as MiddlewareObject;

use super::Built;
use crate::diagnostics::{Reason, Severity};
use crate::model::middleware::GrpcWeb;
use crate::model::{Middleware, Origin};
use crate::snapshot::Object;
use crate::translate::Translator;

impl Translator<'_> {
    /// Traefik's `grpcWeb` has one field, `allowOrigins`; others are reported and ignored.
    pub(super) fn grpc_web(&mut self, object: &MiddlewareObject, origin: Origin) -> Built {
        let Some(config) = object.spec.grpc_web.as_ref() else {
            return Err("spec.grpcWeb is empty".into());
        };
        let fields = match config {
            serde_json::Value::Null => None,
            serde_json::Value::Object(fields) => Some(fields),
            _ => return Err("spec.grpcWeb is not an object".into()),
        };
        let mut allow_origins = Vec::new();
        for (key, value) in fields.into_iter().flatten() {
            if key != "allowOrigins" {
                self.report(
                    &object.object_ref(),
                    Severity::Warning,
                    Reason::Unsupported,
                    Some(format!("spec.grpcWeb.{key}")),
                    "unknown field; ignored".into(),
                );
                continue;
            }
            let list = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Array(list) => list,
                _ => return Err("spec.grpcWeb.allowOrigins is not a list".into()),
            };
            for (i, item) in list.iter().enumerate() {
                let Some(text) = item.as_str() else {
                    return Err(format!("spec.grpcWeb.allowOrigins[{i}] is not a string"));
                };
                allow_origins.push(text.to_owned());
            }
        }
        Ok(vec![Middleware::GrpcWeb(GrpcWeb {
            origin,
            allow_origins,
        })])
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostics::{Reason, Severity};
    use crate::model::middleware::GrpcWeb;
    use crate::model::{Middleware, RoutingTable, Target};
    use crate::translate::tests::{reasons, translate_all, APP};

    /// The table for a route using Middleware `entry` with `spec`.
    fn translated(spec: &str) -> RoutingTable {
        translate_all(&format!(
            r#"{APP}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: entry, namespace: apps}}
spec:
  {spec}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  routes:
    - match: PathPrefix(`/`)
      middlewares: [{{name: entry}}]
      services: [{{name: app, port: 80, scheme: h2c}}]
"#
        ))
    }

    #[test]
    fn traefik_s_example_loads_and_unknown_fields_are_reported() {
        let table =
            translated("grpcWeb: {allowOrigins: [\"https://app.example\", \"*\"], corsMaxAge: 60}");
        let router = table
            .routes
            .routes()
            .next()
            .expect("the route")
            .value
            .clone();
        assert!(matches!(router.target, Target::Services(_)));
        let [Middleware::GrpcWeb(GrpcWeb {
            origin,
            allow_origins,
        })] = router.middlewares.as_slice()
        else {
            panic!("{:?}", router.middlewares)
        };
        assert_eq!(allow_origins, &["https://app.example", "*"]);
        assert_eq!((&*origin.name, origin.kind), ("apps/entry", "grpcWeb"));
        assert_eq!(
            reasons(&table),
            [(Reason::Unsupported, Some("spec.grpcWeb.corsMaxAge".into()))]
        );
        assert!(table
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning));

        let table = translated("grpcWeb: {}");
        let router = table
            .routes
            .routes()
            .next()
            .expect("the route")
            .value
            .clone();
        assert!(
            matches!(router.middlewares.as_slice(), [Middleware::GrpcWeb(g)] if g.allow_origins.is_empty())
        );
        assert!(table.diagnostics.is_empty(), "{:?}", table.diagnostics);
    }

    #[test]
    fn a_malformed_list_names_its_field_and_the_route_answers_503() {
        for (spec, field) in [
            (
                "grpcWeb: {allowOrigins: \"*\"}",
                "spec.grpcWeb.allowOrigins",
            ),
            (
                "grpcWeb: {allowOrigins: [[\"*\"]]}",
                "spec.grpcWeb.allowOrigins[0]",
            ),
            ("grpcWeb: [\"*\"]", "spec.grpcWeb"),
        ] {
            let table = translated(spec);
            let router = table
                .routes
                .routes()
                .next()
                .expect("the route")
                .value
                .clone();
            assert!(
                matches!(router.target, Target::Unavailable { status: 503, .. }),
                "{spec}"
            );
            assert!(
                reasons(&table).contains(&(Reason::InvalidMiddleware, Some(field.into()))),
                "{spec}: {:?}",
                table.diagnostics
            );
        }
    }
}
