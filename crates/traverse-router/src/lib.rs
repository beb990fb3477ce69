//! Traefik v3 routing rules, a route table and indexed request matching.
//!
//! This crate is pure: it performs no I/O, reads no clocks and holds no global
//! state, so it can be shared freely across worker threads behind an `Arc`.
//!
//! * [`Rule`] parses and evaluates one Traefik rule such as
//!   ``Host(`example.com`) && PathPrefix(`/api`)``.
//! * [`RouteTable`] holds many [`Route`]s and finds the highest-priority match
//!   for a [`Request`] without scanning every route: routes are indexed by the
//!   hosts their rules require.
//!
//! ```
//! use traverse_router::{Request, Route, RouteTable, Rule};
//!
//! let rule = Rule::parse("Host(`example.com`) && PathPrefix(`/api`)").unwrap();
//! let priority = rule.default_priority();
//! let table = RouteTable::new(vec![Route { rule, priority, entrypoints: vec![], value: "api" }]);
//!
//! let headers = http::HeaderMap::new();
//! let req = Request {
//!     method: "GET",
//!     host: "Example.com:8443",
//!     path: "/api/users",
//!     query: None,
//!     headers: &headers,
//!     client_ip: None,
//! };
//! assert_eq!(table.find("websecure", &req), Some(&"api"));
//! ```

mod request;
pub mod rule;
pub mod table;

pub use request::Request;
pub use rule::{InternStats, Interner, ParseError, Rule};
pub use table::{Route, RouteTable};
