//! The NB on etcd: one row per key, one NB transaction per etcd transaction.
//!
//! Layout under a prefix (default `/switchyard/nb`): `<prefix>/version` holds
//! `"<NB version> <writer id>"`, and `<prefix>/rows/<table>/<row key>` each
//! row as JSON. A commit is a compare-and-swap on the version key: it applies
//! only if the version key still holds what this store last read or wrote,
//! so two northds can never interleave writes; the one that lost gets
//! [`StoreError::Conflict`] and must reload. etcd acknowledges a transaction
//! once a quorum of members has it on disk, so an acknowledged write survives
//! the loss of any minority of the cluster. A commit whose answer was lost
//! (the member died mid-request) is retried on another member; if the version
//! key then holds this writer's own new value, the first attempt had landed.
//!
//! etcd-client is async and northd calls the store from inside its tokio
//! runtime, so the store runs its own single-threaded runtime on a thread of
//! its own and the trait's methods wait on it (as the file store waits on
//! fdatasync).

use crate::model::{Change, Nb};
use crate::store::{Loaded, NbStore, StoreError};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};
use std::sync::mpsc;
use std::time::Duration;
use switchyard_southbound::pb;

/// Per request: a member that does not answer in this time is given up on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A commit is retried (on another member) for this long.
const COMMIT_DEADLINE: Duration = Duration::from_secs(15);

enum Req {
    Load(mpsc::Sender<Result<Loaded, StoreError>>),
    /// Replace the chassis list (all chassis keys) with these (name, JSON).
    Chassis(Vec<(String, String)>, mpsc::Sender<Result<(), StoreError>>),
    /// Put (Some chassis) or delete one claim.
    Claim(String, Option<String>, mpsc::Sender<Result<(), StoreError>>),
    Commit(Vec<TxnOp>, u64, mpsc::Sender<Result<(), StoreError>>),
}

/// An NB store on an etcd cluster.
#[derive(Debug)]
pub struct EtcdStore {
    tx: mpsc::Sender<Req>,
    prefix: String,
}

fn etcd(e: impl std::fmt::Display) -> StoreError {
    StoreError::Etcd(e.to_string())
}

/// The table names under `rows/`, in `Nb`'s order.
const TABLES: [&str; 10] = [
    "switches",
    "ports",
    "routers",
    "router_ports",
    "routes",
    "load_balancers",
    "nats",
    "acls",
    "dns",
    "dhcp_options",
];

impl EtcdStore {
    /// Connects to `endpoints` (`http://host:port`, several for a cluster).
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Etcd("no etcd endpoint given".into()));
        }
        let (tx, rx) = mpsc::channel::<Req>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let eps = endpoints.to_vec();
        let prefix = prefix.trim_end_matches('/').to_string();
        let p = prefix.clone();
        std::thread::Builder::new()
            .name("nb-etcd".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(etcd(e)));
                        return;
                    }
                };
                rt.block_on(serve(eps, p, rx, ready_tx));
            })
            .map_err(etcd)?;
        ready_rx
            .recv()
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))??;
        Ok(EtcdStore { tx, prefix })
    }

    fn key(&self, table: &str, row: &str) -> String {
        format!("{}/rows/{table}/{row}", self.prefix)
    }

    fn ops(&self, c: &Change) -> Vec<TxnOp> {
        let mut ops = Vec::new();
        let mut put = |t: &str, k: &str, v: String| ops.push(TxnOp::put(self.key(t, k), v, None));
        let j = |v: &dyn erased::Json| v.json();
        for r in &c.put_switches {
            put("switches", &r.name, j(r));
        }
        for r in &c.put_ports {
            put("ports", &r.name, j(r));
        }
        for r in &c.put_routers {
            put("routers", &r.name, j(r));
        }
        for r in &c.put_router_ports {
            put("router_ports", &r.name, j(r));
        }
        for r in &c.put_routes {
            put("routes", &crate::nb::router::route_key(r), j(r));
        }
        for r in &c.put_lbs {
            put("load_balancers", &r.name, j(r));
        }
        for r in &c.put_nats {
            put("nats", &crate::nb::lb::nat_key(r), j(r));
        }
        for r in &c.put_acls {
            put("acls", &crate::nb::acl::acl_key(r), j(r));
        }
        for r in &c.put_dns {
            put(
                "dns",
                &crate::nb::dns::dns_key(&r.switch_name, &r.name),
                j(r),
            );
        }
        for r in &c.put_dhcp {
            put("dhcp_options", &r.id, j(r));
        }
        let dels: [(&str, &Vec<String>); 10] = [
            ("switches", &c.del_switches),
            ("ports", &c.del_ports),
            ("routers", &c.del_routers),
            ("router_ports", &c.del_router_ports),
            ("routes", &c.del_routes),
            ("load_balancers", &c.del_lbs),
            ("nats", &c.del_nats),
            ("acls", &c.del_acls),
            ("dns", &c.del_dns),
            ("dhcp_options", &c.del_dhcp),
        ];
        for (t, keys) in dels {
            for k in keys {
                ops.push(TxnOp::delete(self.key(t, k), None));
            }
        }
        ops
    }
}

/// Serializing any NB row through one function.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("NB rows always serialize")
        }
    }
}

impl NbStore for EtcdStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Req::Load(tx))
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?
    }

    fn save_chassis(&mut self, chassis: &[pb::Chassis]) -> Result<(), StoreError> {
        let rows = chassis
            .iter()
            .map(|c| (c.name.clone(), erased::Json::json(c)))
            .collect();
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Req::Chassis(rows, tx))
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?
    }

    fn save_claim(
        &mut self,
        port: &str,
        chassis: Option<&str>,
        _all: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Req::Claim(port.into(), chassis.map(str::to_string), tx))
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?
    }

    fn commit(&mut self, change: &Change, _after: &Nb) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Req::Commit(self.ops(change), change.version, tx))
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Etcd("etcd thread died".into()))?
    }
}

/// The store's thread: owns the client and the version value last seen.
async fn serve(
    endpoints: Vec<String>,
    prefix: String,
    rx: mpsc::Receiver<Req>,
    ready: mpsc::Sender<Result<(), StoreError>>,
) {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    let mut client = match Client::connect(&endpoints, Some(opts)).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(StoreError::Etcd(format!(
                "cannot reach etcd at {}: {e}",
                endpoints.join(",")
            ))));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let version_key = format!("{prefix}/version");
    let writer = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    // What the version key held when this store last read or wrote it.
    let mut seen: Option<String> = None;
    // std's receiver blocks: the runtime has nothing else to do meanwhile.
    while let Ok(req) = rx.recv() {
        match req {
            Req::Load(reply) => {
                let r = load(&mut client, &prefix, &version_key).await;
                if let Ok((_, v)) = &r {
                    seen = v.clone();
                }
                let _ = reply.send(r.map(|(l, _)| l));
            }
            Req::Chassis(rows, reply) => {
                // One transaction: put the list, delete the keys of chassis
                // not in it (etcd refuses a delete and a put of one key in one
                // transaction, so the stale keys are read first).
                let dir = format!("{prefix}/chassis/");
                let keep: std::collections::HashSet<String> =
                    rows.iter().map(|(n, _)| format!("{dir}{n}")).collect();
                let deadline = tokio::time::Instant::now() + COMMIT_DEADLINE;
                let existing = get(
                    &mut client,
                    &dir,
                    Some(GetOptions::new().with_prefix().with_keys_only()),
                    deadline,
                )
                .await;
                let mut ops = Vec::new();
                if let Ok(existing) = &existing {
                    for kv in existing.kvs() {
                        if let Ok(k) = kv.key_str() {
                            if !keep.contains(k) {
                                ops.push(TxnOp::delete(k, None));
                            }
                        }
                    }
                }
                for (name, json) in rows {
                    ops.push(TxnOp::put(format!("{dir}{name}"), json, None));
                }
                let r = match existing {
                    Err(e) => Err(e),
                    Ok(_) => client
                        .txn(Txn::new().and_then(ops))
                        .await
                        .map(|_| ())
                        .map_err(etcd),
                };
                let _ = reply.send(r);
            }
            Req::Claim(port, chassis, reply) => {
                let key = format!("{prefix}/claims/{port}");
                let r = match chassis {
                    Some(c) => client.put(key, c, None).await.map(|_| ()),
                    None => client.delete(key, None).await.map(|_| ()),
                };
                let _ = reply.send(r.map_err(etcd));
            }
            Req::Commit(ops, version, reply) => {
                let next = format!("{version} {writer}");
                let r = commit(&mut client, &version_key, seen.as_deref(), &next, ops).await;
                if r.is_ok() {
                    seen = Some(next);
                }
                let _ = reply.send(r);
            }
        }
    }
}

async fn load(
    client: &mut Client,
    prefix: &str,
    version_key: &str,
) -> Result<(Loaded, Option<String>), StoreError> {
    // One range read: every key at one revision, so rows and version agree.
    let resp = get(
        client,
        &format!("{prefix}/"),
        Some(GetOptions::new().with_prefix()),
        tokio::time::Instant::now() + COMMIT_DEADLINE,
    )
    .await?;
    let mut loaded = Loaded::default();
    let mut seen = None;
    let rows = format!("{prefix}/rows/");
    for kv in resp.kvs() {
        let key = kv.key_str().map_err(etcd)?;
        let value = kv.value_str().map_err(etcd)?;
        let bad = |why: String| StoreError::Etcd(format!("key {key:?}: {why}"));
        if key == version_key {
            loaded.version = value
                .split(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("not a version: {value:?}")))?;
            seen = Some(value.to_string());
            continue;
        }
        if let Some(port) = key.strip_prefix(&format!("{prefix}/claims/")) {
            loaded.claims.insert(port.to_string(), value.to_string());
            continue;
        }
        if let Some(name) = key.strip_prefix(&format!("{prefix}/chassis/")) {
            let c: pb::Chassis = row(key, value)?;
            if c.name == name {
                loaded.chassis.push(c);
            }
            continue;
        }
        let Some(rest) = key.strip_prefix(&rows) else {
            continue; // someone else's key under the prefix: not ours to judge
        };
        let (table, k) = rest.split_once('/').ok_or_else(|| bad("no table".into()))?;
        let nb = &mut loaded.nb;
        let k = k.to_string();
        match table {
            "switches" => drop(nb.switches.insert(k, row(key, value)?)),
            "ports" => drop(nb.ports.insert(k, row(key, value)?)),
            "routers" => drop(nb.routers.insert(k, row(key, value)?)),
            "router_ports" => drop(nb.router_ports.insert(k, row(key, value)?)),
            "routes" => drop(nb.routes.insert(k, row(key, value)?)),
            "load_balancers" => drop(nb.load_balancers.insert(k, row(key, value)?)),
            "nats" => drop(nb.nats.insert(k, row(key, value)?)),
            "acls" => drop(nb.acls.insert(k, row(key, value)?)),
            "dns" => drop(nb.dns.insert(k, row(key, value)?)),
            "dhcp_options" => drop(nb.dhcp_options.insert(k, row(key, value)?)),
            other => {
                return Err(bad(format!(
                    "unknown table {other:?} (known: {})",
                    TABLES.join(", ")
                )))
            }
        }
    }
    Ok((loaded, seen))
}

/// A read, tried again until `deadline`: a request the client sent to a dead
/// member fails at once, and the next goes to another.
async fn get(
    client: &mut Client,
    key: &str,
    opts: Option<GetOptions>,
    deadline: tokio::time::Instant,
) -> Result<etcd_client::GetResponse, StoreError> {
    loop {
        match client.get(key, opts.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(etcd(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn row<T: serde::de::DeserializeOwned>(key: &str, value: &str) -> Result<T, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::Etcd(format!("key {key:?}: {e}")))
}

async fn commit(
    client: &mut Client,
    version_key: &str,
    seen: Option<&str>,
    next: &str,
    mut ops: Vec<TxnOp>,
) -> Result<(), StoreError> {
    let guard = match seen {
        Some(v) => Compare::value(version_key, CompareOp::Equal, v),
        None => Compare::version(version_key, CompareOp::Equal, 0),
    };
    ops.push(TxnOp::put(version_key, next, None));
    let txn = Txn::new().when(vec![guard]).and_then(ops);
    let deadline = tokio::time::Instant::now() + COMMIT_DEADLINE;
    let mut ambiguous = false;
    loop {
        match client.txn(txn.clone()).await {
            Ok(r) if r.succeeded() => return Ok(()),
            Ok(_) => {
                // The guard failed: someone wrote, perhaps our own lost attempt.
                let now = get(client, version_key, None, deadline).await?;
                let current = now
                    .kvs()
                    .first()
                    .and_then(|kv| kv.value_str().ok())
                    .unwrap_or("")
                    .to_string();
                if ambiguous && current == next {
                    return Ok(());
                }
                return Err(StoreError::Conflict(
                    current.split(' ').next().unwrap_or("?").to_string(),
                ));
            }
            Err(e) => {
                let msg = e.to_string();
                // A refused request (too large, too many operations) is final.
                if msg.contains("too many operations") || msg.contains("too large") {
                    return Err(StoreError::Etcd(format!(
                        "{msg} (raise etcd's --max-txn-ops / --max-request-bytes)"
                    )));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Etcd(format!("not committed: {msg}")));
                }
                ambiguous = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
