//! Parent/child routing over uplinks.
//!
//! A child advertises its Uplinks on each uplink entrypoint as a stream of JSON lines
//! ([`advertisement`]): the whole advertisement again on every change, so a parent that
//! reconnects with the last version it saw gets exactly what it missed. A parent
//! follows every child's stream and checks its health ([`follow`]), and the request path
//! picks a child per request from the published membership ([`children`]) without a lock.

pub mod advertisement;
pub mod children;
pub mod follow;
pub mod tls;

pub use advertisement::{AdvertisedUplinkView, Advertisement};
pub use children::{Child, Children, Member};

/// Paths an uplink entrypoint serves itself, before any route.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/traverse/";
/// The advertisement stream (`?since=<version>` resumes).
pub const ADVERTISEMENT_PATH: &str = "/.well-known/traverse/uplinks";
/// Answers 200 while the child takes traffic, 503 while it drains or is not configured.
pub const HEALTH_PATH: &str = "/.well-known/traverse/health";
/// Uplink hops taken so far; a parent refuses to forward past `multicluster.maxHops`.
pub const HOPS_HEADER: &str = "x-traverse-hops";
/// The uplink a parent forwards a request over, `namespace/name`.
pub const UPLINK_HEADER: &str = "x-traverse-uplink";
