//! The child side: what it advertises, and the stream that carries it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use traverse_model::AdvertisedUplink;

/// A stream idle this long carries an empty line, so a parent can tell a quiet child
/// from a dead connection (it gives up after three missed heartbeats).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// What a child tells its parents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Advertisement {
    /// Opaque and unique across restarts: `<instance>.<revision>`.
    pub version: String,
    /// The child's `cluster.name`.
    pub cluster: String,
    /// Shutting down: parents send it no new requests.
    pub draining: bool,
    pub uplinks: Vec<AdvertisedUplinkView>,
}

/// One uplink as advertised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvertisedUplinkView {
    pub namespace: String,
    pub name: String,
    pub weight: u32,
    pub ready: bool,
}

impl From<&AdvertisedUplink> for AdvertisedUplinkView {
    fn from(uplink: &AdvertisedUplink) -> Self {
        AdvertisedUplinkView {
            namespace: uplink.namespace.clone(),
            name: uplink.name.clone(),
            weight: uplink.weight,
            ready: uplink.ready,
        }
    }
}

/// The current advertisement, with a version that changes whenever its content does.
#[derive(Debug)]
pub struct Advertiser {
    instance: String,
    revision: std::sync::atomic::AtomicU64,
    current: watch::Sender<Arc<Advertisement>>,
}

impl Default for Advertiser {
    fn default() -> Self {
        // Unique per process start, so a restarted child never repeats a version.
        let instance = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Advertiser {
            current: watch::Sender::new(Arc::new(Advertisement {
                version: format!("{instance}.0"),
                ..Advertisement::default()
            })),
            instance,
            revision: Default::default(),
        }
    }
}

impl Advertiser {
    /// Publishes `cluster`, `draining` and `uplinks` if anything changed.
    pub fn update(&self, cluster: &str, draining: bool, uplinks: &[AdvertisedUplink]) {
        let uplinks: Vec<AdvertisedUplinkView> = uplinks.iter().map(Into::into).collect();
        self.current.send_if_modified(|current| {
            if current.cluster == cluster
                && current.draining == draining
                && current.uplinks == uplinks
            {
                return false;
            }
            let revision = 1 + self
                .revision
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *current = Arc::new(Advertisement {
                version: format!("{}.{revision}", self.instance),
                cluster: cluster.to_owned(),
                draining,
                uplinks,
            });
            true
        });
    }

    /// The advertisement in force.
    pub fn current(&self) -> Arc<Advertisement> {
        Arc::clone(&self.current.borrow())
    }

    fn subscribe(&self) -> watch::Receiver<Arc<Advertisement>> {
        self.current.subscribe()
    }
}

/// Serves the advertisement stream on `session` until the parent goes away: the current
/// advertisement unless the parent already has it (`?since=`), then every change.
pub(crate) async fn stream(session: &mut Session, advertiser: &Advertiser) -> Result<()> {
    let since = session
        .req_header()
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("since=")))
        .map(str::to_owned);
    let http1 = session.req_header().version < http::Version::HTTP_2;
    let mut updates = advertiser.subscribe();
    let mut header = ResponseHeader::build(200, Some(3))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/x-ndjson")?;
    header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    if http1 {
        header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    session.set_keepalive(None);
    session
        .write_response_header(Box::new(header), false)
        .await?;
    // From here a write error is the parent going away: the stream's normal end.
    if let Err(error) = send_updates(session, &mut updates, since).await {
        tracing::debug!(%error, "advertisement stream closed");
    }
    Ok(())
}

async fn send_updates(
    session: &mut Session,
    updates: &mut watch::Receiver<Arc<Advertisement>>,
    since: Option<String>,
) -> Result<()> {
    let mut sent = since;
    loop {
        let current = Arc::clone(&updates.borrow_and_update());
        if sent.as_deref() != Some(current.version.as_str()) {
            let mut line = serde_json::to_vec(current.as_ref()).unwrap_or_default();
            line.push(b'\n');
            session
                .write_response_body(Some(Bytes::from(line)), false)
                .await?;
            sent = Some(current.version.clone());
        }
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep(HEARTBEAT) => {
                session
                    .write_response_body(Some(Bytes::from_static(b"\n")), false)
                    .await?;
            }
        }
    }
    session.write_response_body(None, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uplink(name: &str, ready: bool) -> AdvertisedUplink {
        AdvertisedUplink {
            namespace: "apps".into(),
            name: name.into(),
            weight: 2,
            entry_points: vec!["multicluster".into()],
            ready,
            routers: vec![],
        }
    }

    #[test]
    fn the_version_changes_only_with_the_content() {
        let advertiser = Advertiser::default();
        let first = advertiser.current().version.clone();
        advertiser.update("eu", false, &[uplink("shop", true)]);
        let second = advertiser.current();
        assert_ne!(second.version, first);
        assert_eq!(second.uplinks[0].name, "shop");
        advertiser.update("eu", false, &[uplink("shop", true)]);
        assert_eq!(
            advertiser.current().version,
            second.version,
            "nothing changed"
        );
        advertiser.update("eu", true, &[uplink("shop", true)]);
        let draining = advertiser.current();
        assert!(draining.draining);
        assert_ne!(draining.version, second.version);
        let other = Advertiser::default();
        other.update("eu", true, &[uplink("shop", true)]);
        assert_ne!(
            other.current().version,
            draining.version,
            "another process never repeats a version"
        );
    }

    #[test]
    fn the_wire_format_is_camel_case_json() {
        let advertiser = Advertiser::default();
        advertiser.update("eu", false, &[uplink("shop", false)]);
        let json = serde_json::to_value(advertiser.current().as_ref()).expect("json");
        assert_eq!(json["cluster"], "eu");
        assert_eq!(json["draining"], false);
        assert_eq!(json["uplinks"][0]["weight"], 2);
        assert_eq!(json["uplinks"][0]["ready"], false);
        let back: Advertisement = serde_json::from_value(json).expect("parse");
        assert_eq!(back, *advertiser.current());
    }
}
