//! NB storage. The [`NbStore`] trait is all callers see: load the state at start,
//! commit one change per transaction. [`FileStore`] is the embedded backend: an
//! append-only log of checksummed records, each `fdatasync`ed before the write is
//! acknowledged, compacted into a snapshot now and then. The clustered backend,
//! [`crate::store::etcd::EtcdStore`], implements the same two methods on etcd.

pub mod etcd;

use crate::model::{Change, Nb};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A storage failure. The transaction that hit it was not acknowledged.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("NB store I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("NB store snapshot {path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("another writer committed NB version {0} first; this northd must reload")]
    Conflict(String),
}

/// What a store holds: the contents and the version of the last transaction.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub version: u64,
    pub nb: Nb,
    /// Registered chassis (the SB's Chassis table), so that a northd that
    /// restarts or takes over knows whom `--wait=hv` waits for before they
    /// reconnect.
    pub chassis: Vec<switchyard_southbound::pb::Chassis>,
    /// Port claims (logical port -> chassis), for the same reason and so that
    /// a new active northd's SB still binds every port while chassis reconnect.
    pub claims: std::collections::BTreeMap<String, String>,
}

/// A durable home for the northbound database.
pub trait NbStore: Send {
    /// Reads back everything acknowledged so far.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Makes one transaction durable; returns only once it is.
    fn commit(&mut self, change: &Change, after: &Nb) -> Result<(), StoreError>;
    /// Records every registered chassis (after a registration or deletion).
    fn save_chassis(
        &mut self,
        chassis: &[switchyard_southbound::pb::Chassis],
    ) -> Result<(), StoreError>;
    /// Records that `port` is claimed by `chassis` (None: released); `all` is
    /// every claim after the change.
    fn save_claim(
        &mut self,
        port: &str,
        chassis: Option<&str>,
        all: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError>;
}

/// The embedded, crash-safe file database.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    log: Option<File>,
    records_since_snapshot: usize,
    /// Compact after this many log records.
    pub compact_every: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    version: u64,
    switches: Vec<switchyard_southbound::pb::LogicalSwitch>,
    ports: Vec<switchyard_southbound::pb::LogicalSwitchPort>,
    #[serde(default)]
    routers: Vec<switchyard_southbound::pb::LogicalRouter>,
    #[serde(default)]
    router_ports: Vec<switchyard_southbound::pb::LogicalRouterPort>,
    #[serde(default)]
    routes: Vec<switchyard_southbound::pb::StaticRoute>,
    #[serde(default)]
    load_balancers: Vec<switchyard_southbound::pb::LoadBalancer>,
    #[serde(default)]
    nats: Vec<switchyard_southbound::pb::NatRule>,
    #[serde(default)]
    acls: Vec<switchyard_southbound::pb::Acl>,
    #[serde(default)]
    dns: Vec<switchyard_southbound::pb::DnsRecord>,
    #[serde(default)]
    dhcp_options: Vec<switchyard_southbound::pb::DhcpOptions>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl FileStore {
    /// Opens (creating if needed) a store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(FileStore {
            dir,
            log: None,
            records_since_snapshot: 0,
            compact_every: 1000,
        })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.dir.join("nb.snapshot")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.join("nb.log")
    }

    fn write_snapshot(&mut self, version: u64, nb: &Nb) -> Result<(), StoreError> {
        let snap = Snapshot {
            version,
            switches: nb.switches.values().cloned().collect(),
            ports: nb.ports.values().cloned().collect(),
            routers: nb.routers.values().cloned().collect(),
            router_ports: nb.router_ports.values().cloned().collect(),
            routes: nb.routes.values().cloned().collect(),
            load_balancers: nb.load_balancers.values().cloned().collect(),
            nats: nb.nats.values().cloned().collect(),
            acls: nb.acls.values().cloned().collect(),
            dns: nb.dns.values().cloned().collect(),
            dhcp_options: nb.dhcp_options.values().cloned().collect(),
        };
        let tmp = self.dir.join("nb.snapshot.tmp");
        let body = serde_json::to_vec(&snap).expect("NB rows always serialize");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        let snap_path = self.snapshot_path();
        std::fs::rename(&tmp, &snap_path).map_err(io(&snap_path))?;
        sync_dir(&self.dir)?;
        // The snapshot now covers every record: start an empty log.
        let log_path = self.log_path();
        let f = File::create(&log_path).map_err(io(&log_path))?;
        f.sync_all().map_err(io(&log_path))?;
        sync_dir(&self.dir)?;
        self.log = Some(
            OpenOptions::new()
                .append(true)
                .open(&log_path)
                .map_err(io(&log_path))?,
        );
        self.records_since_snapshot = 0;
        Ok(())
    }
}

impl FileStore {
    /// A small JSON file of SB registrations, if there is one.
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let path = self.dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let body = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                why: e.to_string(),
            })
    }

    /// Replaces such a file whole (written aside, synced, renamed into place).
    fn write_json(&self, name: &str, v: &impl serde::Serialize) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let body = serde_json::to_vec(v).expect("SB rows always serialize");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        let path = self.dir.join(name);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)
    }
}

/// A log line is `<crc32 hex> <json>`; a line whose checksum does not match is the
/// torn tail of a write that was never acknowledged.
fn encode_record(c: &Change) -> Vec<u8> {
    let json = serde_json::to_string(c).expect("NB rows always serialize");
    format!("{:08x} {}\n", crc32fast::hash(json.as_bytes()), json).into_bytes()
}

fn decode_record(line: &str) -> Option<Change> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    (crc32fast::hash(json.as_bytes()) == crc)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

impl NbStore for FileStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let snap_path = self.snapshot_path();
        if snap_path.exists() {
            let body = std::fs::read(&snap_path).map_err(io(&snap_path))?;
            let snap: Snapshot =
                serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt {
                    path: snap_path.clone(),
                    why: e.to_string(),
                })?;
            loaded.version = snap.version;
            loaded.nb.switches = snap
                .switches
                .into_iter()
                .map(|s| (s.name.clone(), s))
                .collect();
            loaded.nb.ports = snap
                .ports
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect();
            loaded.nb.routers = snap
                .routers
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            loaded.nb.router_ports = snap
                .router_ports
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect();
            loaded.nb.routes = snap
                .routes
                .into_iter()
                .map(|r| (crate::nb::router::route_key(&r), r))
                .collect();
            loaded.nb.load_balancers = snap
                .load_balancers
                .into_iter()
                .map(|l| (l.name.clone(), l))
                .collect();
            loaded.nb.nats = snap
                .nats
                .into_iter()
                .map(|n| (crate::nb::lb::nat_key(&n), n))
                .collect();
            loaded.nb.acls = snap
                .acls
                .into_iter()
                .map(|a| (crate::nb::acl::acl_key(&a), a))
                .collect();
            loaded.nb.dns = snap
                .dns
                .into_iter()
                .map(|r| (crate::nb::dns::dns_key(&r.switch_name, &r.name), r))
                .collect();
            loaded.nb.dhcp_options = snap
                .dhcp_options
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
        }
        let log_path = self.log_path();
        let mut good_len = 0u64;
        let mut records = 0;
        if log_path.exists() {
            let f = File::open(&log_path).map_err(io(&log_path))?;
            for line in BufReader::new(f).split(b'\n') {
                let line = line.map_err(io(&log_path))?;
                let Some(c) = std::str::from_utf8(&line).ok().and_then(decode_record) else {
                    break; // torn tail: never acknowledged
                };
                if c.version > loaded.version {
                    loaded.nb.apply_change(&c);
                    loaded.version = c.version;
                }
                good_len += line.len() as u64 + 1;
                records += 1;
            }
            // Drop a torn tail so that new records follow the last good one.
            let f = OpenOptions::new()
                .write(true)
                .open(&log_path)
                .map_err(io(&log_path))?;
            if f.metadata().map_err(io(&log_path))?.len() > good_len {
                f.set_len(good_len).map_err(io(&log_path))?;
                f.sync_all().map_err(io(&log_path))?;
            }
        }
        self.log = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(io(&log_path))?,
        );
        self.records_since_snapshot = records;
        loaded.chassis = self.read_json("chassis.json")?.unwrap_or_default();
        loaded.claims = self.read_json("claims.json")?.unwrap_or_default();
        Ok(loaded)
    }

    fn save_chassis(
        &mut self,
        chassis: &[switchyard_southbound::pb::Chassis],
    ) -> Result<(), StoreError> {
        self.write_json("chassis.json", &chassis)
    }

    fn save_claim(
        &mut self,
        _port: &str,
        _chassis: Option<&str>,
        all: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.write_json("claims.json", all)
    }

    fn commit(&mut self, change: &Change, after: &Nb) -> Result<(), StoreError> {
        let log_path = self.log_path();
        let log = self.log.as_mut().expect("load() before commit()");
        log.write_all(&encode_record(change))
            .and_then(|_| log.sync_data())
            .map_err(io(&log_path))?;
        self.records_since_snapshot += 1;
        if self.records_since_snapshot >= self.compact_every {
            self.write_snapshot(change.version, after)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests_support::*;

    #[test]
    fn survives_reopen_compaction_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut nb = Nb::default();
        let mut st = FileStore::open(dir.path()).unwrap();
        st.compact_every = 3;
        st.load().unwrap();
        for i in 1..=5u64 {
            let mut next = nb.clone();
            // ACLs ride along: in the snapshot (compaction every 3) and the log.
            let acl =
                switchyard_southbound::pb::nb_op::Op::AclAdd(switchyard_southbound::pb::Acl {
                    switch_name: format!("ls{i}"),
                    direction: "to-lport".into(),
                    priority: i as u32,
                    r#match: "tcp.dst == {22, 23}".into(),
                    action: "drop".into(),
                    name: format!("acl{i}"),
                });
            next.apply_ops(&txn(vec![ls(&format!("ls{i}"), ""), acl]))
                .unwrap();
            st.commit(&nb.diff(&next, i), &next).unwrap();
            nb = next;
        }
        drop(st);
        // A torn, unacknowledged write at the tail.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("nb.log"))
            .unwrap();
        f.write_all(b"deadbeef {\"version\":6,\"put_swi").unwrap();
        drop(f);
        let mut st = FileStore::open(dir.path()).unwrap();
        let loaded = st.load().unwrap();
        assert_eq!(loaded.version, 5);
        assert_eq!(loaded.nb, nb);
        assert_eq!(loaded.nb.acls.len(), 5);
        // The store keeps working after the torn tail was cut.
        let mut next = nb.clone();
        next.apply_ops(&txn(vec![ls("ls6", "")])).unwrap();
        st.commit(&nb.diff(&next, 6), &next).unwrap();
        drop(st);
        let loaded = FileStore::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.version, 6);
        assert_eq!(loaded.nb, next);
    }
}
