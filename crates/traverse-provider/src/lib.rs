//! From resources to a route table.
//!
//! Providers (the file provider here, the Kubernetes provider elsewhere) produce a
//! [`Snapshot`] of objects. [`translate`] turns a snapshot into a [`RoutingTable`] and
//! its [`Diagnostics`]: a pure function, no I/O, no clocks, so every rule about
//! resolving references is testable without a cluster.

pub mod file;
pub mod parse;
mod snapshot;
pub mod status;
pub mod tls;
mod translate;
mod yaml;

// The runtime model has its own crate, so the data plane need not depend on providers;
// re-exported here for the providers' code.
pub use snapshot::{Object, Rules, Snapshot};
pub use translate::{translate, EntryPoints};
pub use traverse_model::{self as model, diagnostics};
pub use traverse_model::{
    AdvertisedUplink, Backend, Diagnostic, Diagnostics, Endpoint, Middleware, ObjectRef, Reason,
    Router, RoutingTable, Scheme, Severity, Target, UplinkRef, Weighted,
};
