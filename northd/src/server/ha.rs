//! Several northds, one active: a lock in etcd held with a lease.
//!
//! Each northd on etcd first takes `<prefix>/leader` (a compare-and-put that
//! succeeds only while the key does not exist, attached to a lease of
//! `ttl`); until it holds it, it is a standby that serves nothing, so chassis
//! and syctl, which take lists of endpoints, connect to the active one. The
//! active northd keeps the lease alive at a third of its TTL; when it dies,
//! etcd drops the key at the lease's expiry and a standby takes it within
//! one poll. An active northd told its lease expired stops (fail-stop:
//! another may already be active); and every NB write is a compare-and-swap
//! on the store's version, so even two that briefly both believed themselves
//! active could not interleave writes.

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};
use std::time::Duration;

/// How often a standby looks at the lock.
const POLL: Duration = Duration::from_millis(100);

/// The lock, held: dropping it does not release it (the lease expires).
pub struct Leadership {
    pub lost: tokio::sync::oneshot::Receiver<String>,
}

/// Waits until this northd (`id`, reachable at `nb`) holds the lock; logs
/// who holds it meanwhile.
pub async fn acquire(
    endpoints: &[String],
    prefix: &str,
    id: &str,
    nb: &str,
    ttl: Duration,
) -> anyhow::Result<Leadership> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(2));
    let mut client = Client::connect(endpoints, Some(opts)).await?;
    let key = format!("{}/leader", prefix.trim_end_matches('/'));
    let ttl_s = ttl.as_secs().max(1) as i64;
    let mut last_holder = String::new();
    let mut refused = 0;
    loop {
        let lease = match client.lease_grant(ttl_s, None).await {
            Ok(l) => l.id(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot get an etcd lease; retrying");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.as_str(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(
                key.as_str(),
                format!("{id} {nb} {lease}"),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else(vec![TxnOp::get(key.as_str(), None)]);
        match client.txn(txn).await {
            Ok(r) if r.succeeded() => {
                tracing::info!(id, ttl_s, "active: holding the northd lock");
                return Ok(Leadership {
                    lost: keep(client, lease, ttl).await?,
                });
            }
            Ok(r) => {
                let holder = r
                    .op_responses()
                    .into_iter()
                    .find_map(|op| match op {
                        etcd_client::TxnOpResponse::Get(g) => g
                            .kvs()
                            .first()
                            .and_then(|kv| kv.value_str().ok())
                            .map(str::to_string),
                        _ => None,
                    })
                    .unwrap_or_default();
                if holder != last_holder {
                    tracing::info!(active = %holder, "standby: another northd is active");
                    last_holder = holder.clone();
                    refused = 0;
                }
                let _ = client.lease_revoke(lease).await;
                // A holder whose NB port refuses connections is a dead process
                // on a live host: end its lease now instead of waiting out the
                // TTL (a host that is gone times out instead, and the TTL
                // decides). Wrongly ending a live holder's lease costs a
                // failover, not data: writes are compare-and-swap.
                if let Some((url, their_lease)) = holder_parts(&holder) {
                    if refuses(url).await {
                        refused += 1;
                    } else {
                        refused = 0;
                    }
                    if refused >= DEAD_AFTER {
                        tracing::warn!(active = %holder, "the active northd refuses connections; ending its lease");
                        let _ = client.lease_revoke(their_lease).await;
                        refused = 0;
                        continue;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "northd lock: etcd unreachable; retrying"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Consecutive refused probes after which the holder counts as dead.
const DEAD_AFTER: u32 = 3;

/// The NB address and lease of a lock value `"<id> <url> <lease>"`.
fn holder_parts(v: &str) -> Option<(&str, i64)> {
    let mut it = v.split(' ');
    let (_, url, lease) = (it.next()?, it.next()?, it.next()?);
    Some((url, lease.parse().ok()?))
}

/// Whether `url`'s host answers a TCP connection to its port with a refusal.
async fn refuses(url: &str) -> bool {
    let Some(hostport) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    match tokio::time::timeout(POLL, tokio::net::TcpStream::connect(hostport)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// Renews the lease at a third of its TTL; reports on `lost` when it cannot.
/// Each renewal opens a keep-alive stream of its own and is tried again
/// (the client may send it to a dead member first) until the lease would run
/// out.
async fn keep(
    mut client: Client,
    lease: i64,
    ttl: Duration,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let every = ttl / 3;
        let mut valid_until = tokio::time::Instant::now() + ttl;
        loop {
            tokio::time::sleep(every).await;
            loop {
                let sent = tokio::time::Instant::now();
                match renew(&mut client, lease, every).await {
                    Some(0) => {
                        let _ = tx.send("the lease expired".into());
                        return;
                    }
                    Some(_) => {
                        valid_until = sent + ttl;
                        break;
                    }
                    // etcd cannot renew leases while it elects a new raft
                    // leader (a member died), and it extends every lease
                    // when the new leader takes over: so not being able to
                    // renew is not yet having lost the lock. Only an answer
                    // that the lease expired is, or being cut off far longer
                    // than any election (then another northd surely took
                    // over; our writes would fail their compare anyway).
                    None if tokio::time::Instant::now() >= valid_until + 2 * ttl => {
                        let _ = tx.send("cannot reach etcd to renew the lease".into());
                        return;
                    }
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    });
    Ok(rx)
}

/// One renewal: the lease's remaining TTL (0: expired), None when it failed.
async fn renew(client: &mut Client, lease: i64, within: Duration) -> Option<i64> {
    let attempt = async {
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await.ok()?;
        keeper.keep_alive().await.ok()?;
        stream.message().await.ok()?.map(|r| r.ttl())
    };
    tokio::time::timeout(within, attempt).await.ok().flatten()
}
