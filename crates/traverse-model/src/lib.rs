//! The runtime model: what `translate` produces and the data plane reads.
//!
//! Everything here is immutable once built, except the few atomics of balancing and
//! passive health. A new configuration is a new [`RoutingTable`], published atomically;
//! requests never take a lock to route. No I/O and no clocks: times come from the caller.

pub mod balancer;
pub mod diagnostics;
pub mod health;
pub mod middleware;
mod model;
pub mod tls;
mod weighted;

pub use balancer::{Balancer, Mirror, Mirrored, Mirroring, Node, Sticky, StickyCookie};
pub use diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
pub use health::{CheckHealth, EjectionPolicy, HealthCheck, PassiveHealth};
pub use middleware::{
    AddPrefix, BasicAuth, Buffering, Cors, Credential, DigestAuth, Headers, InFlightReq,
    IpAllowList, IpStrategy, Middleware, Origin, PassTlsClientCert, Pattern, RateLimit,
    RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex, Security, SourceCriterion,
    StripPrefix, StripPrefixRegex,
};
pub use model::{
    AdvertisedUplink, Backend, ClientTls, Endpoint, Router, RoutingTable, Scheme, ServersTransport,
    Strategy, Target, UplinkRef,
};
pub use weighted::{Candidate, Weighted};
