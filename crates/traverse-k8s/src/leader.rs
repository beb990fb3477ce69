//! Lease-based leader election: of several replicas, only the holder of a
//! `coordination.k8s.io/v1` Lease writes status. Every replica routes.
//!
//! The holder renews every third of the lease duration; another replica takes the lease
//! over once it has not been renewed for a whole duration. Writes carry the Lease's
//! resourceVersion, so two replicas racing for it cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use traverse_api::jiff::{SignedDuration, Timestamp};

/// Where the lease lives and how long it holds.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub duration: Duration,
    /// This replica: the pod name where known.
    pub identity: String,
}

/// Starts contending for the lease; the receiver says whether this replica leads now.
pub fn start(client: Client, settings: LeaseSettings) -> watch::Receiver<bool> {
    let (leading, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let renew = settings.duration / 3;
        loop {
            let now = Timestamp::now();
            let lead = match try_acquire(&api, &settings, now).await {
                Ok(lead) => lead,
                Err(error) => {
                    tracing::debug!(%error, lease = %settings.name, "lease not renewed");
                    false
                }
            };
            leading.send_if_modified(|current| {
                if *current == lead {
                    return false;
                }
                if lead {
                    tracing::info!(lease = %settings.name, identity = %settings.identity, "leading: this replica writes status");
                } else {
                    tracing::info!(lease = %settings.name, "not leading: another replica writes status");
                }
                *current = lead;
                true
            });
            tokio::time::sleep(renew).await;
        }
    });
    receiver
}

/// One round: create, renew or take over the lease; whether this replica holds it.
async fn try_acquire(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let existing = match api.get(&settings.name).await {
        Ok(lease) => Some(lease),
        Err(kube::Error::Api(response)) if response.code == 404 => None,
        Err(error) => return Err(error),
    };
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(settings, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(response)) if response.code == 409 => Ok(false),
            Err(error) => Err(error),
        };
    };
    let current = lease.spec.clone().unwrap_or_default();
    let mine = current.holder_identity.as_deref() == Some(settings.identity.as_str());
    let expired = current.renew_time.as_ref().is_none_or(|renewed| {
        let held = i64::from(current.lease_duration_seconds.unwrap_or(0));
        renewed
            .0
            .checked_add(SignedDuration::from_secs(held))
            .is_ok_and(|until| until < now)
    });
    if !mine && !expired {
        return Ok(false);
    }
    let (acquired, transitions) = if mine {
        (
            current.acquire_time.map_or(now, |t| t.0),
            current.lease_transitions.unwrap_or(0),
        )
    } else {
        (now, current.lease_transitions.unwrap_or(0) + 1)
    };
    lease.spec = Some(spec(settings, acquired, now, transitions));
    // The resourceVersion read above makes this a compare-and-swap.
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

fn spec(
    settings: &LeaseSettings,
    acquired: Timestamp,
    renewed: Timestamp,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(settings.duration.as_secs().max(1) as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}
