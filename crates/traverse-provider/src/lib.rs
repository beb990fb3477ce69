//! From resources to a route table.
//!
//! Providers (the file provider here, the Kubernetes provider elsewhere) produce a
//! [`Snapshot`] of objects. [`translate`] turns a snapshot into a [`RoutingTable`] and
//! its [`Diagnostics`]: a pure function, no I/O, no clocks, so every rule about
//! resolving references is testable without a cluster.

pub mod diagnostics;
pub mod file;
pub mod model;
pub mod parse;
mod snapshot;
pub mod status;
mod translate;

pub use diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
pub use model::{
    AdvertisedUplink, Backend, Middleware, Router, RoutingTable, Scheme, Target, UplinkRef,
    Weighted,
};
pub use snapshot::{Object, Snapshot};
pub use translate::{translate, EntryPoints};
