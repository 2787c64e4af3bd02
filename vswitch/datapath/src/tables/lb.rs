//! Load balancers and router NAT rules as the datapath executes them: VIPs in
//! one hash map (the per-packet cost does not depend on how many there are),
//! each with a Maglev lookup table (Eisenbud et al., NSDI 2016) so that
//! removing a backend moves only the connections that were on it, and the NAT
//! rules indexed by the switch whose ports they apply at.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use switchyard_southbound::pb::{SbLoadBalancer, SbNat};

/// Maglev table sizes (primes); a VIP uses the smallest one at least 20 times
/// its backend count, which keeps the load within a few percent of even.
const MAGLEV_SIZES: [usize; 5] = [251, 4093, 16381, 65521, 262_139];

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn backend_id(b: &(u32, u16)) -> u64 {
    u64::from(b.0) << 16 | u64::from(b.1)
}

/// The Maglev lookup table for `backends`: entry -> backend index. Each backend
/// walks its own permutation of the table (offset and skip from two hashes of
/// its address) and claims the next free entry in turn.
pub fn maglev(backends: &[(u32, u16)]) -> Vec<u16> {
    if backends.is_empty() {
        return Vec::new();
    }
    let m = MAGLEV_SIZES
        .iter()
        .copied()
        .find(|m| *m >= backends.len() * 20)
        .unwrap_or(MAGLEV_SIZES[MAGLEV_SIZES.len() - 1]);
    let perm: Vec<(usize, usize)> = backends
        .iter()
        .map(|b| {
            let id = backend_id(b);
            let offset = (mix(id ^ 0x5bd1_e995) % m as u64) as usize;
            let skip = (mix(id ^ 0x9e37_79b9_7f4a_7c15) % (m as u64 - 1)) as usize + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; backends.len()];
    let mut table = vec![u16::MAX; m];
    let mut filled = 0;
    'fill: loop {
        for (i, &(offset, skip)) in perm.iter().enumerate() {
            let mut c = (offset + next[i] * skip) % m;
            while table[c] != u16::MAX {
                next[i] += 1;
                c = (offset + next[i] * skip) % m;
            }
            table[c] = i as u16;
            next[i] += 1;
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    table
}

/// One VIP of a load balancer.
#[derive(Debug)]
pub struct Vip {
    /// Its load balancer's settings.
    pub lb: Arc<LbInfo>,
    pub ip: u32,
    pub port: u16,
    pub backends: Vec<(u32, u16)>,
    /// Shared by every VIP with the same backend set.
    pub table: Arc<Vec<u16>>,
}

impl Vip {
    /// The backend a connection hash selects (None: no backends).
    #[inline]
    pub fn select(&self, hash: u32) -> Option<(u32, u16)> {
        let i = *self.table.get(hash as usize % self.table.len().max(1))?;
        self.backends.get(usize::from(i)).copied()
    }
}

/// A load balancer's settings shared by its VIPs.
#[derive(Debug)]
pub struct LbInfo {
    pub name: String,
    pub proto: u8,
    /// Switch datapaths whose ports are its clients.
    pub datapaths: Vec<u32>,
    /// ClientIP affinity, ms (0: none).
    pub affinity_ms: u64,
    /// Source a hairpinned connection is translated to (0: the VIP).
    pub hairpin_ip: u32,
}

/// (protocol, VIP, port): what a packet is looked up by.
pub type VipKey = (u8, u32, u16);

/// Every VIP this chassis serves, as the PMD reads it. Built whole from the
/// SB rows, or updated per changed load balancer by [`ServiceIndex`].
#[derive(Debug, Default, Clone)]
pub struct Services {
    pub by_vip: FxHashMap<VipKey, Arc<Vip>>,
    /// Addresses that are a VIP or a hairpin source (with how many VIPs or
    /// load balancers use each): packets to them are looked up in conntrack
    /// (replies of hairpinned connections come back to them).
    pub vip_ips: FxHashMap<u32, u32>,
    /// Switch datapaths with at least one load balancer in scope (counted).
    pub scoped: FxHashMap<u32, u32>,
    /// The longest affinity timeout of any load balancer seen (for sweeping).
    pub max_affinity_ms: u64,
}

/// Memo of Maglev tables by backend list, so that a rebuild after a change to
/// one service does not recompute the tables of all the others.
#[derive(Debug, Default)]
pub struct MaglevCache {
    tables: FxHashMap<Vec<(u32, u16)>, Arc<Vec<u16>>>,
    used: FxHashSet<Vec<(u32, u16)>>,
}

impl MaglevCache {
    fn get(&mut self, backends: &[(u32, u16)]) -> Arc<Vec<u16>> {
        if !self.used.contains(backends) {
            self.used.insert(backends.to_vec());
        }
        if let Some(t) = self.tables.get(backends) {
            return t.clone();
        }
        let t = Arc::new(maglev(backends));
        self.tables.insert(backends.to_vec(), t.clone());
        t
    }

    /// Forgets tables that the last build did not use.
    pub fn sweep(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.tables.retain(|k, _| used.contains(k));
    }
}

fn bump(m: &mut FxHashMap<u32, u32>, k: u32) {
    *m.entry(k).or_insert(0) += 1;
}

fn unbump(m: &mut FxHashMap<u32, u32>, k: u32) {
    if let Some(n) = m.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            m.remove(&k);
        }
    }
}

/// A load-balancer change as the SB delta carries it: rows to put, names to delete.
pub type LbChange = (Vec<SbLoadBalancer>, Vec<String>);

/// The VIP index in two copies, left-right: the PMD reads one through the
/// live table set while a change is applied to the other, which then becomes
/// the one published; the copy let go of catches up with the changes it
/// missed when the next change comes. A service change so costs the agent
/// the change (twice), not a copy of the index: at 100,000 services that copy
/// was a few milliseconds. When the PMD still holds the spare copy (changes
/// faster than it swaps tables), the change copies it, as before.
#[derive(Debug, Default)]
pub struct ServiceSets {
    ix: [Option<ServiceIndex>; 2],
    live: usize,
    /// Changes made to the live copy that the spare one has not seen.
    missed: Vec<LbChange>,
}

impl ServiceSets {
    /// Forgets both copies (a full SB snapshot arrived): the next
    /// [`Self::current`] builds from the rows.
    pub fn reset(&mut self) {
        *self = ServiceSets::default();
    }

    /// The services to publish, built from `rows` if there is no index yet.
    pub fn current(&mut self, rows: &[SbLoadBalancer], cache: &mut MaglevCache) -> Arc<Services> {
        self.ix[self.live]
            .get_or_insert_with(|| ServiceIndex::build(rows, cache))
            .services
            .clone()
    }

    /// Brings the spare copy up to date off the path of a change: makes it
    /// after a full build (the first change would copy the live one), and
    /// applies the changes it missed (after a large change, such as 100,000
    /// services in one transaction, the next small one would replay it).
    pub fn prepare(&mut self, cache: &mut MaglevCache) {
        let spare = 1 - self.live;
        match &mut self.ix[spare] {
            Some(ix) => {
                for (upserts, deletes) in self.missed.drain(..) {
                    let d: Vec<&str> = deletes.iter().map(String::as_str).collect();
                    ix.update(&upserts, &d, cache);
                }
            }
            None => {
                if let Some(live) = &self.ix[self.live] {
                    self.ix[spare] = Some(ServiceIndex {
                        by_lb: live.by_lb.clone(),
                        services: Arc::new((*live.services).clone()),
                    });
                }
            }
        }
    }

    /// Applies a change to the spare copy, which becomes the live one.
    pub fn update(&mut self, change: LbChange, cache: &mut MaglevCache) {
        if self.ix[self.live].is_none() {
            return; // nothing built yet: `current` builds from the new rows
        }
        let spare = 1 - self.live;
        if self.ix[spare].is_none() {
            // The first change: the copy shares the services until it changes them.
            self.ix[spare] = self.ix[self.live].clone();
        }
        let Some(ix) = self.ix[spare].as_mut() else {
            return;
        };
        for (upserts, deletes) in self.missed.drain(..) {
            let d: Vec<&str> = deletes.iter().map(String::as_str).collect();
            ix.update(&upserts, &d, cache);
        }
        let d: Vec<&str> = change.1.iter().map(String::as_str).collect();
        ix.update(&change.0, &d, cache);
        self.missed.push(change);
        self.live = spare;
    }
}

/// What one load balancer put into [`Services`], so it can be taken out again.
#[derive(Debug, Default, Clone)]
struct Added {
    keys: Vec<VipKey>,
    ips: Vec<u32>,
    datapaths: Vec<u32>,
}

/// The agent's side of [`Services`]: which entries each load balancer made,
/// so that a change to one is applied in proportion to it. The services are
/// shared with the table sets by `Arc` and changed in place when no table
/// set holds them any more (else copied first).
#[derive(Debug, Default, Clone)]
pub struct ServiceIndex {
    by_lb: FxHashMap<String, Added>,
    pub services: Arc<Services>,
}

impl ServiceIndex {
    /// Everything from the SB rows.
    pub fn build(rows: &[SbLoadBalancer], cache: &mut MaglevCache) -> ServiceIndex {
        let mut ix = ServiceIndex::default();
        let n: usize = rows.iter().map(|r| r.vips.len()).sum();
        let s = Arc::make_mut(&mut ix.services);
        s.by_vip.reserve(n);
        s.vip_ips.reserve(n);
        ix.by_lb.reserve(rows.len());
        for row in rows {
            ix.add(row, cache);
        }
        cache.sweep();
        ix
    }

    /// Replaces or removes load balancers (`upserts` rows, `deletes` names).
    pub fn update(
        &mut self,
        upserts: &[SbLoadBalancer],
        deletes: &[&str],
        cache: &mut MaglevCache,
    ) {
        for name in deletes
            .iter()
            .copied()
            .chain(upserts.iter().map(|r| r.name.as_str()))
        {
            self.remove(name);
        }
        for row in upserts {
            self.add(row, cache);
        }
    }

    fn remove(&mut self, name: &str) {
        let Some(a) = self.by_lb.remove(name) else {
            return;
        };
        let s = Arc::make_mut(&mut self.services);
        for k in &a.keys {
            s.by_vip.remove(k);
        }
        for ip in &a.ips {
            unbump(&mut s.vip_ips, *ip);
        }
        for dp in &a.datapaths {
            unbump(&mut s.scoped, *dp);
        }
    }

    fn add(&mut self, row: &SbLoadBalancer, cache: &mut MaglevCache) {
        let Ok(proto) = u8::try_from(row.protocol) else {
            return;
        };
        let lb = Arc::new(LbInfo {
            name: row.name.clone(),
            proto,
            datapaths: row.datapaths.clone(),
            affinity_ms: u64::from(row.affinity_timeout) * 1000,
            hairpin_ip: row.hairpin_snat_ip,
        });
        let s = Arc::make_mut(&mut self.services);
        s.max_affinity_ms = s.max_affinity_ms.max(lb.affinity_ms);
        let mut added = Added::default();
        if !row.datapaths.is_empty() {
            for dp in &row.datapaths {
                bump(&mut s.scoped, *dp);
            }
            added.datapaths = row.datapaths.clone();
            if row.hairpin_snat_ip != 0 {
                bump(&mut s.vip_ips, row.hairpin_snat_ip);
                added.ips.push(row.hairpin_snat_ip);
            }
            for v in &row.vips {
                let Ok(port) = u16::try_from(v.port) else {
                    continue;
                };
                let mut backends: Vec<(u32, u16)> = v
                    .backends
                    .iter()
                    .filter_map(|b| Some((b.ip, u16::try_from(b.port).ok()?)))
                    .collect();
                // The table depends on the set, not on the order it was listed in.
                backends.sort_unstable();
                let table = cache.get(&backends);
                let key = (proto, v.ip, port);
                s.by_vip.insert(
                    key,
                    Arc::new(Vip {
                        lb: lb.clone(),
                        ip: v.ip,
                        port,
                        backends,
                        table,
                    }),
                );
                bump(&mut s.vip_ips, v.ip);
                added.keys.push(key);
                added.ips.push(v.ip);
            }
        }
        self.by_lb.insert(row.name.clone(), added);
    }
}

impl Services {
    /// Builds the VIP index from the southbound load balancers.
    pub fn build(rows: &[SbLoadBalancer], cache: &mut MaglevCache) -> Services {
        let ix = ServiceIndex::build(rows, cache);
        Arc::try_unwrap(ix.services).unwrap_or_else(|s| (*s).clone())
    }

    /// The VIP a packet addresses, if the load balancer serves the switch `dp`.
    #[inline]
    pub fn vip_for(&self, proto: u8, ip: u32, port: u16, dp: u32) -> Option<&Vip> {
        let v = self.by_vip.get(&(proto, ip, port))?;
        v.lb.datapaths.contains(&dp).then_some(&**v)
    }

    /// Whether packets to `ip` may belong to a load-balanced connection.
    #[inline]
    pub fn is_vip_ip(&self, ip: u32) -> bool {
        self.vip_ips.contains_key(&ip)
    }
}

/// What a NAT rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    Snat,
    Dnat,
    DnatAndSnat,
}

/// One router NAT rule, as the chassis applies it at the external switch.
#[derive(Clone, Debug)]
pub struct NatRule {
    /// Router datapath key: the conntrack zone of its connections.
    pub router: u32,
    pub router_name: String,
    pub kind: NatKind,
    pub external: u32,
    pub logical: u32,
    pub mask: u32,
    /// The switch behind the gateway port.
    pub switch: u32,
}

impl NatRule {
    #[inline]
    pub fn matches_logical(&self, ip: u32) -> bool {
        ip & self.mask == self.logical
    }
}

/// The NAT rules of every router, indexed for the two places they apply.
#[derive(Debug, Default)]
pub struct Nats {
    pub rules: Vec<NatRule>,
    /// (external switch, external IP) -> a rule with that external IP (DNAT
    /// rules first): traffic from the outside to it is translated.
    pub by_external: FxHashMap<(u32, u32), u16>,
    /// External switch -> its source-translating rules, longest prefix first.
    pub by_switch: FxHashMap<u32, Vec<u16>>,
}

impl Nats {
    pub fn build(rows: &[SbNat]) -> Nats {
        let mut n = Nats::default();
        for r in rows {
            let kind = match r.r#type.as_str() {
                "snat" => NatKind::Snat,
                "dnat" => NatKind::Dnat,
                "dnat_and_snat" => NatKind::DnatAndSnat,
                _ => continue,
            };
            let plen = r.logical_plen.min(32);
            let mask = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - plen)
            };
            n.rules.push(NatRule {
                router: r.router,
                router_name: r.router_name.clone(),
                kind,
                external: r.external_ip,
                logical: r.logical_ip & mask,
                mask,
                switch: r.switch,
            });
        }
        // Longest prefix first, so a floating IP (/32) wins over its subnet's SNAT.
        let mut order: Vec<u16> = (0..n.rules.len() as u16).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(n.rules[usize::from(i)].mask));
        for i in order {
            let r = &n.rules[usize::from(i)];
            let dnat = r.kind != NatKind::Snat;
            match n.by_external.get(&(r.switch, r.external)) {
                Some(&j) if n.rules[usize::from(j)].kind != NatKind::Snat || !dnat => {}
                _ => {
                    n.by_external.insert((r.switch, r.external), i);
                }
            }
            n.by_switch.entry(r.switch).or_default().push(i);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u32) -> Vec<(u32, u16)> {
        (0..n).map(|i| (0x0af4_0000 + i, 8080)).collect()
    }

    #[test]
    fn maglev_spreads_evenly_and_removal_moves_only_the_removed_backends_flows() {
        let b = backends(5);
        let t = maglev(&b);
        let mut count = [0usize; 5];
        for &i in &t {
            count[usize::from(i)] += 1;
        }
        let (min, max) = (count.iter().min().unwrap(), count.iter().max().unwrap());
        assert!(max - min <= t.len() / 20, "uneven: {count:?}");

        // Remove backend 2: every entry that was not on it keeps its backend.
        let mut fewer = b.clone();
        fewer.remove(2);
        let t2 = maglev(&fewer);
        assert_eq!(t.len(), t2.len());
        let mut moved = 0;
        for (old, new) in t.iter().zip(&t2) {
            let old_b = b[usize::from(*old)];
            let new_b = fewer[usize::from(*new)];
            if old_b != b[2] && old_b != new_b {
                moved += 1;
            }
        }
        // Maglev's guarantee is near-minimal disruption: a few percent at most.
        assert!(
            moved <= t.len() / 20,
            "{moved} of {} entries moved",
            t.len()
        );
    }

    #[test]
    fn maglev_tables_scale_with_backends() {
        assert!(maglev(&[]).is_empty());
        assert_eq!(maglev(&backends(1)), vec![0; 251]);
        assert_eq!(maglev(&backends(100)).len(), 4093);
    }

    #[test]
    fn services_are_scoped_to_their_switches() {
        use switchyard_southbound::pb::{SbBackend, SbVip};
        let row = SbLoadBalancer {
            name: "web".into(),
            protocol: 6,
            vips: vec![SbVip {
                ip: 0x0a60_000a,
                port: 80,
                backends: vec![SbBackend {
                    ip: 0x0af4_0005,
                    port: 8080,
                }],
            }],
            datapaths: vec![3],
            affinity_timeout: 10,
            hairpin_snat_ip: 0,
        };
        let mut cache = MaglevCache::default();
        let s = Services::build(std::slice::from_ref(&row), &mut cache);
        assert!(s.vip_for(6, 0x0a60_000a, 80, 3).is_some());
        assert!(s.vip_for(6, 0x0a60_000a, 80, 4).is_none(), "other switch");
        assert!(
            s.vip_for(17, 0x0a60_000a, 80, 3).is_none(),
            "other protocol"
        );
        let v = s.vip_for(6, 0x0a60_000a, 80, 3).unwrap();
        assert_eq!(v.select(12345), Some((0x0af4_0005, 8080)));
        assert_eq!(v.lb.affinity_ms, 10_000);

        // Incremental updates end where a full build from the same rows does.
        let mut ix = ServiceIndex::build(std::slice::from_ref(&row), &mut cache);
        let mut other = row.clone();
        other.name = "dns".into();
        other.protocol = 17;
        other.vips[0].port = 53;
        ix.update(std::slice::from_ref(&other), &[], &mut cache);
        let mut changed = row.clone();
        changed.vips[0].ip = 0x0a60_000b;
        changed.datapaths = vec![4];
        ix.update(std::slice::from_ref(&changed), &[], &mut cache);
        let full = Services::build(&[changed.clone(), other.clone()], &mut cache);
        let keys = |s: &Services| {
            let mut k: Vec<_> = s.by_vip.keys().copied().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&ix.services), keys(&full));
        assert_eq!(ix.services.vip_ips, full.vip_ips);
        assert_eq!(ix.services.scoped, full.scoped);
        ix.update(&[], &["web", "dns"], &mut cache);
        assert!(ix.services.by_vip.is_empty() && ix.services.vip_ips.is_empty());
        assert!(ix.services.scoped.is_empty());
    }

    #[test]
    fn two_copies_follow_every_change_and_change_in_place_when_free() {
        use switchyard_southbound::pb::{SbBackend, SbVip};
        let row = |name: &str, vip: u32| SbLoadBalancer {
            name: name.into(),
            protocol: 6,
            vips: vec![SbVip {
                ip: vip,
                port: 80,
                backends: vec![SbBackend {
                    ip: 0x0af4_0005,
                    port: 8080,
                }],
            }],
            datapaths: vec![3],
            affinity_timeout: 0,
            hairpin_snat_ip: 0,
        };
        let keys = |s: &Services| {
            let mut k: Vec<_> = s.by_vip.keys().copied().collect();
            k.sort();
            (k, s.vip_ips.clone(), s.scoped.clone())
        };
        let mut cache = MaglevCache::default();
        let mut sets = ServiceSets::default();
        let mut rows = vec![row("a", 1)];
        let mut published = vec![sets.current(&rows, &mut cache)];
        // After each change the published services equal a full build of the
        // rows, whichever copy they come from and whether or not the other
        // copy was still held (every earlier set is kept here: copies).
        for (i, (name, vip, del)) in [
            ("b", 2, None),
            ("c", 3, Some("a")),
            ("b", 4, None),
            ("d", 5, Some("c")),
        ]
        .into_iter()
        .enumerate()
        {
            rows.retain(|r| r.name != name && Some(r.name.as_str()) != del);
            rows.push(row(name, vip));
            let deletes = del.map(String::from).into_iter().collect();
            sets.update((vec![row(name, vip)], deletes), &mut cache);
            let s = sets.current(&rows, &mut cache);
            assert_eq!(
                keys(&s),
                keys(&Services::build(&rows, &mut cache)),
                "change {i}"
            );
            published.push(s);
        }
        // When the PMD has let go of the older set, the change is made in place.
        let mut sets = ServiceSets::default();
        let a = sets.current(&rows, &mut cache);
        let pa = Arc::as_ptr(&a) as usize;
        sets.update((vec![row("e", 6)], vec![]), &mut cache);
        let b = sets.current(&rows, &mut cache);
        drop(a);
        sets.update((vec![row("f", 7)], vec![]), &mut cache);
        let c = sets.current(&rows, &mut cache);
        assert_eq!(Arc::as_ptr(&c) as usize, pa, "changed in place, not copied");
        assert_eq!(c.by_vip.len(), b.by_vip.len() + 1);
        assert_eq!(c.by_vip.len(), rows.len() + 2);
        // A spare copy made ahead of the first change takes it in place.
        sets.reset();
        let a = sets.current(&rows, &mut cache);
        sets.prepare(&mut cache);
        sets.update((vec![row("g", 8)], vec![]), &mut cache);
        let b = sets.current(&rows, &mut cache);
        assert_ne!(Arc::as_ptr(&a), Arc::as_ptr(&b));
        assert_eq!(b.by_vip.len(), rows.len() + 1);
        assert_eq!(
            a.by_vip.len(),
            rows.len(),
            "the published set is never changed"
        );
        // The changes the spare missed are caught up ahead of the next one.
        drop(a);
        sets.prepare(&mut cache);
        assert!(sets.missed.is_empty());
        sets.update((vec![row("h", 9)], vec![]), &mut cache);
        let c = sets.current(&rows, &mut cache);
        assert_eq!(c.by_vip.len(), rows.len() + 2);
        // Reset: built again from the rows.
        sets.reset();
        assert_eq!(sets.current(&rows, &mut cache).by_vip.len(), rows.len());
    }
}
