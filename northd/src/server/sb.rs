//! The southbound state northd serves: compiled contents plus what chassis tell it
//! (registrations, port claims), versioned. Every change becomes one ordered delta;
//! a watcher that is too far behind (or new) gets a full snapshot instead.

use crate::compile::flows::Compiled;
use std::collections::{BTreeMap, VecDeque};
use switchyard_southbound::pb::{self, sb_row::Row, SbDelta, SbRow, SbSnapshot};
use switchyard_southbound::row_key;

/// How many deltas are kept for watchers that reconnect.
const HISTORY: usize = 512;

#[derive(Debug, Default)]
pub struct Sb {
    pub version: u64,
    pub nb_version: u64,
    compiled: Compiled,
    pub chassis: BTreeMap<String, pb::Chassis>,
    /// logical port -> chassis that claimed it.
    pub claims: BTreeMap<String, String>,
    /// Neighbours learned by chassis: (router datapath, router port, IP) -> binding.
    pub mac_bindings: BTreeMap<(u32, String, std::net::IpAddr), pb::MacBinding>,
    rows: BTreeMap<String, SbRow>,
    history: VecDeque<SbDelta>,
    /// The NB version the last delta carried: a new one makes a delta even
    /// when no row changed, so every chassis learns it (for `--wait=hv`).
    sent_nb: u64,
    /// This process's version sequence ([`pb::SbSnapshot::epoch`]): versions
    /// of another northd (or of this one before a restart) are not these.
    pub epoch: String,
}

fn row(r: Row) -> SbRow {
    SbRow { row: Some(r) }
}

impl Sb {
    /// Replaces the compiled contents (after an NB change).
    pub fn set_compiled(&mut self, c: Compiled, nb_version: u64) -> bool {
        self.compiled = c;
        self.nb_version = nb_version;
        self.rebuild()
    }

    /// Recomputes rows and records the delta; returns whether anything changed.
    pub fn rebuild(&mut self) -> bool {
        let mut rows = BTreeMap::new();
        let mut put = |r: Row| {
            let r = row(r);
            rows.insert(row_key(&r), r);
        };
        for c in self.chassis.values() {
            put(Row::Chassis(c.clone()));
        }
        for d in &self.compiled.datapaths {
            put(Row::Datapath(d.clone()));
        }
        for p in &self.compiled.port_bindings {
            let mut p = p.clone();
            p.chassis = self
                .claims
                .get(&p.logical_port)
                .cloned()
                .unwrap_or_default();
            put(Row::PortBinding(p));
        }
        for m in &self.compiled.multicast_groups {
            put(Row::MulticastGroup(m.clone()));
        }
        for f in &self.compiled.flows {
            put(Row::Flow(f.clone()));
        }
        for l in &self.compiled.load_balancers {
            put(Row::LoadBalancer(l.clone()));
        }
        for n in &self.compiled.nats {
            put(Row::Nat(n.clone()));
        }
        for d in &self.compiled.dns {
            put(Row::Dns(d.clone()));
        }
        for d in &self.compiled.dhcp {
            put(Row::Dhcp(d.clone()));
        }
        // A learned binding lives as long as its router port (a re-created router
        // gets new keys and learns afresh).
        let ports: std::collections::HashSet<(u32, &str)> = self
            .compiled
            .port_bindings
            .iter()
            .map(|p| (p.datapath, p.logical_port.as_str()))
            .collect();
        for m in self.mac_bindings.values() {
            if ports.contains(&(m.datapath, m.logical_port.as_str())) {
                put(Row::MacBinding(m.clone()));
            }
        }
        let upserts: Vec<SbRow> = rows
            .iter()
            .filter(|(k, v)| self.rows.get(*k) != Some(v))
            .map(|(_, v)| v.clone())
            .collect();
        let deletes: Vec<String> = self
            .rows
            .keys()
            .filter(|k| !rows.contains_key(*k))
            .cloned()
            .collect();
        if upserts.is_empty() && deletes.is_empty() && self.nb_version == self.sent_nb {
            return false;
        }
        self.rows = rows;
        self.record(upserts, deletes);
        true
    }

    /// What `rebuild` would make of the rows under `keys`, for the rows
    /// that do not depend on the compiled contents' other rows: a chassis
    /// (`chassis/NAME`), a port binding with its claim (`pb/PORT`), a learned
    /// binding (`mb/DP/PORT/IP`). Applies the difference and records a delta
    /// without recomputing the rest (a chassis registering, a port claimed,
    /// a neighbour learned cost the row, not the database); returns whether
    /// anything changed.
    pub fn refresh(&mut self, keys: &[String]) -> bool {
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for key in keys {
            let now = self.row_now(key);
            match (now, self.rows.get(key)) {
                (Some(r), Some(old)) if &r == old => {}
                (Some(r), _) => {
                    self.rows.insert(key.clone(), r.clone());
                    upserts.push(r);
                }
                (None, Some(_)) => {
                    self.rows.remove(key);
                    deletes.push(key.clone());
                }
                (None, None) => {}
            }
        }
        if upserts.is_empty() && deletes.is_empty() {
            return false;
        }
        self.record(upserts, deletes);
        true
    }

    fn row_now(&self, key: &str) -> Option<SbRow> {
        if let Some(name) = key.strip_prefix("chassis/") {
            return self.chassis.get(name).map(|c| row(Row::Chassis(c.clone())));
        }
        if let Some(port) = key.strip_prefix("pb/") {
            let mut p = self
                .compiled
                .port_bindings
                .iter()
                .find(|p| p.logical_port == port)?
                .clone();
            p.chassis = self.claims.get(port).cloned().unwrap_or_default();
            return Some(row(Row::PortBinding(p)));
        }
        if key.starts_with("mb/") {
            let m = self
                .mac_bindings
                .values()
                .find(|m| switchyard_southbound::mac_binding_key(m) == key)?;
            let live = self
                .compiled
                .port_bindings
                .iter()
                .any(|p| p.datapath == m.datapath && p.logical_port == m.logical_port);
            return live.then(|| row(Row::MacBinding(m.clone())));
        }
        debug_assert!(false, "refresh of {key:?}: not a row refresh knows");
        None
    }

    fn record(&mut self, upserts: Vec<SbRow>, deletes: Vec<String>) {
        self.version += 1;
        self.sent_nb = self.nb_version;
        self.history.push_back(SbDelta {
            version: self.version,
            upserts,
            deletes,
            nb_version: self.nb_version,
        });
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    /// Replaces or deletes load balancer rows without recomputing the rest
    /// (an NB transaction that touched only load balancers); records the delta.
    pub fn update_lbs(
        &mut self,
        upserts: Vec<pb::SbLoadBalancer>,
        deletes: &[String],
        nb_version: u64,
    ) -> bool {
        self.nb_version = nb_version;
        let lbs = &mut self.compiled.load_balancers;
        lbs.retain(|l| !deletes.contains(&l.name));
        for u in &upserts {
            match lbs.iter_mut().find(|l| l.name == u.name) {
                Some(l) => *l = u.clone(),
                None => lbs.push(u.clone()),
            }
        }
        let mut rows = Vec::new();
        for u in upserts {
            let r = row(Row::LoadBalancer(u));
            let k = row_key(&r);
            if self.rows.get(&k) != Some(&r) {
                self.rows.insert(k, r.clone());
                rows.push(r);
            }
        }
        let mut gone = Vec::new();
        for name in deletes {
            let k = format!("lb/{name}");
            if self.rows.remove(&k).is_some() {
                gone.push(k);
            }
        }
        if rows.is_empty() && gone.is_empty() && self.nb_version == self.sent_nb {
            return false;
        }
        self.record(rows, gone);
        true
    }

    /// The whole contents at the current version.
    pub fn snapshot(&self) -> SbSnapshot {
        let mut s = SbSnapshot {
            version: self.version,
            nb_version: self.nb_version,
            epoch: self.epoch.clone(),
            ..Default::default()
        };
        for r in self.rows.values() {
            switchyard_southbound::push_row(&mut s, r.clone());
        }
        s
    }

    /// What a watcher that has `version` of `epoch` is sent first: the
    /// deltas since, when it has this northd's versions and they are all
    /// kept; else `None` (a snapshot).
    pub fn resume(&self, epoch: &str, version: u64) -> Option<Vec<SbDelta>> {
        if epoch.is_empty() || epoch != self.epoch || version == 0 {
            return None;
        }
        self.deltas_since(version)
    }

    /// The deltas after `version`, or `None` when they are no longer all kept.
    pub fn deltas_since(&self, version: u64) -> Option<Vec<SbDelta>> {
        if version == self.version {
            return Some(Vec::new());
        }
        let first = self.history.front()?.version;
        if version + 1 < first || version > self.version {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|d| d.version > version)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::model::{tests_support::*, Nb};
    use switchyard_southbound::apply_delta;

    #[test]
    fn refreshing_a_chassis_a_claim_or_a_neighbour_equals_a_full_rebuild() {
        let mut nb = Nb::default();
        nb.apply_ops(&txn(vec![
            ls("a", ""),
            lsp("p1", "a", "0a:00:00:00:00:01 10.0.0.1"),
            lsp("p2", "a", "0a:00:00:00:00:02 10.0.0.2"),
        ]))
        .unwrap();
        let mut sb = Sb::default();
        sb.set_compiled(compile(&nb), 1);
        let mut view = sb.snapshot();
        let v0 = sb.version;
        let ch = |n: &str| pb::Chassis {
            name: n.into(),
            hostname: n.into(),
            encaps: vec![],
        };
        sb.chassis.insert("ch1".into(), ch("ch1"));
        assert!(sb.refresh(&["chassis/ch1".into()]));
        sb.claims.insert("p1".into(), "ch1".into());
        assert!(sb.refresh(&["pb/p1".into()]));
        assert!(
            !sb.refresh(&["pb/p1".into()]),
            "nothing changed, no version"
        );
        let dp = sb.compiled.port_bindings[0].datapath;
        sb.mac_bindings.insert(
            (dp, "p2".into(), std::net::Ipv4Addr::from(7).into()),
            pb::MacBinding {
                datapath: dp,
                logical_port: "p2".into(),
                ip: 7,
                mac: 0x0a00_0000_0009,
                ..Default::default()
            },
        );
        assert!(sb.refresh(&[format!("mb/{dp}/p2/7")]));
        // A port released, a chassis gone.
        sb.claims.remove("p1");
        sb.chassis.remove("ch1");
        assert!(sb.refresh(&["pb/p1".into(), "chassis/ch1".into()]));
        // Exactly what recomputing everything gives: rebuild finds nothing to do.
        assert!(
            !sb.rebuild(),
            "refresh left the rows as a full rebuild makes them"
        );
        for d in sb.deltas_since(v0).unwrap() {
            apply_delta(&mut view, &d);
        }
        assert_eq!(view, sb.snapshot());
    }

    #[test]
    fn deltas_replayed_on_a_snapshot_equal_the_new_snapshot() {
        let mut nb = Nb::default();
        nb.apply_ops(&txn(vec![
            ls("a", ""),
            lsp("p1", "a", "0a:00:00:00:00:01 10.0.0.1"),
        ]))
        .unwrap();
        let mut sb = Sb::default();
        sb.set_compiled(compile(&nb), 1);
        let mut chassis_view = sb.snapshot();
        let v0 = sb.version;

        nb.apply_ops(&txn(vec![lsp("p2", "a", "0a:00:00:00:00:02 10.0.0.2")]))
            .unwrap();
        sb.set_compiled(compile(&nb), 2);
        sb.claims.insert("p1".into(), "ch1".into());
        sb.rebuild();
        assert!(!sb.rebuild(), "an unchanged rebuild makes no version");

        let deltas = sb.deltas_since(v0).unwrap();
        assert_eq!(deltas.len(), 2);
        // The delta is proportional to the change: far fewer rows than the snapshot.
        assert!(deltas[0].upserts.len() < sb.snapshot().flows.len());
        for d in &deltas {
            apply_delta(&mut chassis_view, d);
        }
        assert_eq!(chassis_view, sb.snapshot());
        assert_eq!(chassis_view.nb_version, 2);
        assert_eq!(sb.deltas_since(sb.version + 5), None);

        // An NB version that changes no row still reaches every chassis.
        let v = sb.version;
        assert!(sb.set_compiled(compile(&nb), 3));
        let d = sb.deltas_since(v).unwrap();
        assert_eq!((d.len(), d[0].upserts.len(), d[0].nb_version), (1, 0, 3));
        apply_delta(&mut chassis_view, &d[0]);
        assert_eq!(chassis_view.nb_version, 3);

        // Resuming needs this northd's epoch: another's versions are not ours.
        sb.epoch = "e1".into();
        assert_eq!(sb.resume("e1", v0).map(|d| d.len()), Some(3));
        assert_eq!(sb.resume("e1", sb.version).map(|d| d.len()), Some(0));
        assert_eq!(sb.resume("e2", v0), None, "another northd's version");
        assert_eq!(sb.resume("", v0), None, "no epoch: a snapshot");
        assert_eq!(sb.resume("e1", 0), None, "nothing yet: a snapshot");
        assert_eq!(sb.snapshot().epoch, "e1");
        // A chassis keeps the epoch through the deltas it applies.
        let mut view = sb.snapshot();
        let v = sb.version;
        sb.set_compiled(compile(&nb), 4);
        for d in sb.deltas_since(v).unwrap() {
            apply_delta(&mut view, &d);
        }
        assert_eq!(view, sb.snapshot());
    }
}
