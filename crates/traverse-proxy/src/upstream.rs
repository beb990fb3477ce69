//! What every connection to an upstream is held to.

use pingora::prelude::HttpPeer;
use traverse_config::Upstream;

/// The `upstream` timeouts, on `peer`.
pub(crate) fn apply_timeouts(peer: &mut HttpPeer, upstream: &Upstream) {
    peer.options.connection_timeout = Some(upstream.connect_timeout);
    peer.options.read_timeout = Some(upstream.read_timeout);
    peer.options.write_timeout = Some(upstream.write_timeout);
    peer.options.idle_timeout = Some(upstream.idle_timeout);
}
