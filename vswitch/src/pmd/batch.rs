//! One batch from one port. A stateless batch (no stateful flows in the
//! tables) goes packet by packet: parse, exact-match cache, megaflow, (on a
//! miss) the pipeline, transmit. A stateful batch goes in stages, so that the
//! conntrack state the PMDs share is locked only for the stages that use it,
//! each at most once per batch:
//!
//! 1. parse every packet (no lock);
//! 2. the edge on the way in and conntrack's look (`ct_state`), locked;
//! 3. the caches and the pipeline, DNS/DHCP answers, router rewrites (no lock);
//! 4. `ct_commit` and the edge on the way out (replies, SNAT), locked;
//! 5. transmit (no lock).
//!
//! A stage that no packet of the batch needs takes no lock. Packets keep their
//! order within each stage, so NAT port allocation and conntrack see them in
//! arrival order; what changes is that a later packet is looked at (stage 2)
//! before an earlier one is committed (stage 4), as in OVS's batched
//! `conntrack_execute`: two new packets of one connection in a batch are both
//! `ct.new`, and the second commit finds the first's entry (`edge::commit`).

use super::{encap_send, lock, pair, Pmd};
use crate::ct::edge::{Edge, EdgeState, Tracked};
use crate::dp::emc::INLINE_OUTPUTS;
use crate::dp::flow::FlowKey;
use crate::dp::generate6::nd_na_in_place;
use crate::dp::megaflow::Wildcards;
use crate::dp::packet::{apply_rewrite, arp_reply_in_place};
use crate::dp::pipeline::{run_passed, run_wc, Decision, Verdict};
use crate::port::BATCH;
use crate::tables::TUNNEL_BASE;
use std::sync::Arc;
use switchyard_geneve::tunnel::ENCAP_LEN;
use switchyard_southbound::DropReason;

/// What the stages of a stateful batch keep of one packet.
#[derive(Clone, Copy)]
struct Staged {
    key: FlowKey,
    /// Where the frame the pipeline sees begins (past a tunnel's headers).
    off: usize,
    hash: u32,
    tracked: Option<Tracked>,
    d: Decision,
    routed: bool,
    /// Its outputs: `outs[from..from + n]` of [`Stages`].
    from: u32,
    n: u32,
    /// Not dropped, answered or sent off yet.
    live: bool,
}

const IDLE: Staged = Staged {
    key: FlowKey::ZERO,
    off: 0,
    hash: 0,
    tracked: None,
    d: Decision {
        verdict: Verdict::Drop(DropReason::PipelineDrop),
        tun_md: 0,
        commit: None,
    },
    routed: false,
    from: 0,
    n: 0,
    live: false,
};

/// A stateful batch's packets between stages (allocated once per PMD).
pub(super) struct Stages {
    items: [Staged; BATCH],
    /// Every packet's outputs, one after the other (a flood may need many).
    outs: Vec<u16>,
}

impl Stages {
    pub(super) fn new() -> Box<Self> {
        Box::new(Stages {
            items: [IDLE; BATCH],
            outs: Vec::with_capacity(BATCH * 16),
        })
    }
}

/// Where a decision's outputs are: the caller's inline array, or `out`.
#[derive(Clone, Copy)]
enum Outs {
    Inline(usize),
    Slow,
}

/// What every packet of a batch shares for the cache lookups.
struct Lookup {
    generation: u64,
    /// No insertion, no exact-match cache (OVS skips its EMC the same way).
    emc_on: bool,
    /// Read on the first exact-match miss of the batch, if any.
    now_ms: u64,
}

impl Pmd {
    /// The batch's time: the clock is read on the first call of a batch
    /// (the edge's stage, or the first exact-match miss) and the caches are
    /// told; a batch of hits on a stateless datapath reads no clock.
    #[inline(always)]
    fn now(&mut self, l: &mut Lookup) -> u64 {
        if l.now_ms == u64::MAX {
            l.now_ms = self.clock.now_ms();
            self.emc.tick(l.now_ms);
        }
        l.now_ms
    }

    pub(super) fn process_port(&mut self, slot: u16) -> usize {
        let s = usize::from(slot);
        let n = match self.ports[s].as_mut() {
            Some(p) => p.io.rx_burst(),
            None => return 0,
        };
        if n == 0 {
            return 0;
        }
        let underlay = self.tables.underlay.is_some_and(|u| u.slot == slot);
        let mut l = Lookup {
            generation: self.tables.generation,
            emc_on: self.emc_insert_inv_prob != 0,
            now_ms: u64::MAX,
        };
        self.megaflow.sync(l.generation);
        let mut out = std::mem::take(&mut self.out);
        let ct = self.tables.ct_active;
        match (ct, self.staged, self.stages.take()) {
            (true, true, Some(mut st)) => {
                self.stateful(s, n, underlay, &mut l, &mut st, &mut out);
                self.stages = Some(st);
            }
            (ct, _, st) => {
                self.stages = st;
                if ct {
                    self.one_by_one::<true>(s, n, underlay, &mut l, &mut out);
                } else {
                    self.one_by_one::<false>(s, n, underlay, &mut l, &mut out);
                }
            }
        }
        self.out = out;
        if let Some(p) = self.ports[s].as_mut() {
            p.io.rx_done();
        }
        n
    }

    /// The batch packet by packet; with `CT` (stateful tables) under one
    /// lock for the batch, released around DNS and DHCP answers, whose
    /// egress takes it. Without, the compiler leaves the edge out.
    fn one_by_one<const CT: bool>(
        &mut self,
        s: usize,
        n: usize,
        underlay: bool,
        l: &mut Lookup,
        out: &mut Vec<u16>,
    ) {
        let edge_arc = CT.then(|| Arc::clone(&self.edge));
        let mut edge = edge_arc.as_deref().map(lock);
        if let Some(e) = edge.as_deref_mut() {
            e.tick(self.now(l));
        }
        for i in 0..n {
            let Some((mut key, off)) = self.receive(s, i, underlay) else {
                continue;
            };
            let mut tracked = None;
            if let (Some(e), 0x0800 | 0x86dd) = (edge.as_deref_mut(), key.eth_type) {
                match self.edge_in_one(s, i, off, underlay, e, &mut key) {
                    Ok(t) => tracked = t,
                    Err(()) => continue,
                }
            }
            let hash = key.hash32_seeded(self.seed);
            let mut inline = [0u16; INLINE_OUTPUTS];
            let (mut d, mut o) = self.decide(&key, hash, l, &mut inline, out);
            if matches!(d.verdict, Verdict::Dns(_) | Verdict::Dhcp) {
                let relock = edge.take().is_some();
                let again = self.answer(s, i, off, &key, d.verdict, out);
                if relock {
                    edge = edge_arc.as_deref().map(lock);
                }
                let Some(again) = again else {
                    continue;
                };
                (d, o) = (again, Outs::Slow);
            }
            let routed = self.rewrite(s, i, off, &mut d.verdict);
            let outs = match o {
                Outs::Inline(n) => &inline[..n],
                Outs::Slow => &out[..],
            };
            if let Some(e) = edge.as_deref_mut() {
                if !self.edge_out_one(s, i, off, e, &mut key, &d, tracked.as_ref(), outs) {
                    continue;
                }
            }
            self.deliver(s, i, off, &key, &d, outs, hash, routed);
        }
    }

    fn stateful(
        &mut self,
        s: usize,
        n: usize,
        underlay: bool,
        l: &mut Lookup,
        st: &mut Stages,
        out: &mut Vec<u16>,
    ) {
        let slot = s as u16;
        // 1: parse.
        let mut need_in = false;
        for (i, x) in st.items[..n].iter_mut().enumerate() {
            (x.live, x.tracked, x.n) = (false, None, 0);
            let Some((key, off)) = self.receive(s, i, underlay) else {
                continue;
            };
            (x.key, x.off, x.live) = (key, off, true);
            need_in |= is_ip(key.eth_type) && self.edge_in(slot, &key, underlay);
        }
        // 2: the edge on the way in, and conntrack's look.
        if need_in {
            let edge_arc = Arc::clone(&self.edge);
            let now = self.now(l);
            let mut e = lock(&edge_arc);
            e.tick(now);
            for i in 0..n {
                let x = &mut st.items[i];
                if x.live && is_ip(x.key.eth_type) {
                    match self.edge_in_one(s, i, x.off, underlay, &mut e, &mut x.key) {
                        Ok(t) => x.tracked = t,
                        Err(()) => x.live = false,
                    }
                }
            }
        }
        // 3: the caches and the pipeline.
        st.outs.clear();
        let mut need_out = false;
        for i in 0..n {
            if !st.items[i].live {
                continue;
            }
            let key = st.items[i].key;
            let off = st.items[i].off;
            let hash = key.hash32_seeded(self.seed);
            let mut inline = [0u16; INLINE_OUTPUTS];
            let (mut d, mut o) = self.decide(&key, hash, l, &mut inline, out);
            if matches!(d.verdict, Verdict::Dns(_) | Verdict::Dhcp) {
                let Some(again) = self.answer(s, i, off, &key, d.verdict, out) else {
                    st.items[i].live = false;
                    continue;
                };
                (d, o) = (again, Outs::Slow);
            }
            let routed = self.rewrite(s, i, off, &mut d.verdict);
            let outs = match o {
                Outs::Inline(n) => &inline[..n],
                Outs::Slow => &out[..],
            };
            let from = st.outs.len() as u32;
            st.outs.extend_from_slice(outs);
            let x = &mut st.items[i];
            need_out |= d.commit.is_some() && x.tracked.is_some()
                || d.verdict == Verdict::Output && self.edge_out(outs);
            (x.d, x.hash, x.routed, x.from, x.n) = (d, hash, routed, from, outs.len() as u32);
        }
        // 4: commit, and the edge on the way out.
        if need_out {
            let edge_arc = Arc::clone(&self.edge);
            let mut e = lock(&edge_arc);
            for i in 0..n {
                let x = &mut st.items[i];
                if x.live {
                    let outs = &st.outs[x.from as usize..(x.from + x.n) as usize];
                    let (d, tr) = (x.d, x.tracked);
                    x.live =
                        self.edge_out_one(s, i, x.off, &mut e, &mut x.key, &d, tr.as_ref(), outs);
                }
            }
        }
        // 5: transmit.
        for i in 0..n {
            let x = &st.items[i];
            if x.live {
                let outs = &st.outs[x.from as usize..(x.from + x.n) as usize];
                self.deliver(s, i, x.off, &x.key, &x.d, outs, x.hash, x.routed);
            }
        }
    }

    /// The edge on the way in for one IPv4 packet, and conntrack's look:
    /// what committing it will need, or `Err` when the edge dropped it (or
    /// answered it: a VIP without backends).
    #[inline(always)]
    fn edge_in_one(
        &mut self,
        s: usize,
        i: usize,
        off: usize,
        underlay: bool,
        e: &mut EdgeState,
        key: &mut FlowKey,
    ) -> Result<Option<Tracked>, ()> {
        let t = &*self.tables;
        let Some(p) = self.ports[s].as_mut() else {
            return Err(());
        };
        let frame = &mut p.io.rx_frame_mut(i)[off..];
        let zone = if underlay {
            let dp = crate::dp::flow::unpack_tunnel(key.tun).0;
            t.ct_zones.get(&dp).copied().unwrap_or(0)
        } else {
            match crate::ct::edge::ingress(t, e, &self.stats, frame, key) {
                Edge::Pass => {}
                Edge::Drop(r) => {
                    p.drop_rx(r, &self.stats);
                    return Err(());
                }
                Edge::NoBackend { vip } => {
                    self.stats.count_drop(DropReason::LbNoBackend);
                    let k = *key;
                    self.no_backend(s, i, &k, vip);
                    return Err(());
                }
            }
            t.slot(s as u16).map_or(0, |b| b.ct_zone)
        };
        Ok((zone != 0)
            .then(|| crate::ct::edge::track(e, frame, key, zone))
            .flatten())
    }

    /// `ct_commit` for one packet the pipeline decided (`d`), and the edge on
    /// its way out; false when it was dropped.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn edge_out_one(
        &mut self,
        s: usize,
        i: usize,
        off: usize,
        e: &mut EdgeState,
        key: &mut FlowKey,
        d: &Decision,
        tracked: Option<&Tracked>,
        outs: &[u16],
    ) -> bool {
        if let (Some(c), Some(tr)) = (d.commit, tracked) {
            if let Err(r) = crate::ct::edge::commit(e, tr, c) {
                match self.ports[s].as_ref() {
                    Some(p) => p.drop_rx(r, &self.stats),
                    None => self.stats.count_drop(r),
                }
                return false;
            }
        }
        if d.verdict != Verdict::Output || !self.edge_out(outs) {
            return true;
        }
        let t = &*self.tables;
        if let Some(p) = self.ports[s].as_mut() {
            let frame = &mut p.io.rx_frame_mut(i)[off..];
            if let Edge::Drop(r) = crate::ct::edge::egress(t, e, &self.stats, frame, key, outs[0]) {
                self.stats.count_drop(r);
                return false;
            }
        }
        true
    }

    /// Counts and parses frame `i` of port `s`; a frame that does not parse
    /// is dropped here.
    #[inline(always)]
    fn receive(&mut self, s: usize, i: usize, underlay: bool) -> Option<(FlowKey, usize)> {
        let src = self.ports[s].as_mut()?;
        // A pod with checksum offload on sends partial TCP/UDP checksums;
        // complete them before anything rewrites or forwards the frame.
        if !underlay && crate::dp::csum::complete_partial(src.io.rx_frame_mut(i)) {
            self.stats.csum_completed.add(1);
        }
        let src = self.ports[s].as_ref()?;
        let len = src.io.rx_frame(i).len();
        src.stats.rx_packets.add(1);
        src.stats.rx_bytes.add(len as u64);
        match self.parse(s as u16, i, underlay) {
            Ok(k) => Some(k),
            Err(r) => {
                src.drop_rx(r, &self.stats);
                None
            }
        }
    }

    /// Whether the edge on the way in has anything to do with a packet: a
    /// port with a load balancer, NAT or a conntrack zone, or a tunnel
    /// packet for a stateful datapath.
    #[inline(always)]
    fn edge_in(&self, slot: u16, key: &FlowKey, underlay: bool) -> bool {
        let t = &*self.tables;
        if underlay {
            let dp = crate::dp::flow::unpack_tunnel(key.tun).0;
            t.ct_zones.get(&dp).is_some_and(|&z| z != 0)
        } else {
            t.slot(slot)
                .is_some_and(|b| b.lb || b.nat || b.ct_zone != 0)
        }
    }

    /// Whether the edge on the way out has anything to do with a packet sent
    /// to `outs`: one local port with a load balancer or NAT.
    #[inline(always)]
    fn edge_out(&self, outs: &[u16]) -> bool {
        match outs {
            [o] if *o < TUNNEL_BASE => self.tables.slot(*o).is_some_and(|b| b.lb || b.nat),
            _ => false,
        }
    }

    /// The decision for `key`: from the exact-match cache, the megaflow
    /// cache, or a pipeline walk (which installs it in both). Its outputs are
    /// in `inline` or, from a walk, in `out`.
    #[inline(always)]
    fn decide(
        &mut self,
        key: &FlowKey,
        hash: u32,
        l: &mut Lookup,
        inline: &mut [u16; INLINE_OUTPUTS],
        out: &mut Vec<u16>,
    ) -> (Decision, Outs) {
        if l.emc_on {
            if let Some(e) = self.emc.lookup(key, hash, l.generation) {
                self.stats.emc_hits.add(1);
                let n = usize::from(e.n_out);
                inline[..n].copy_from_slice(&e.out[..n]);
                let d = Decision {
                    verdict: e.verdict,
                    tun_md: e.tun_md,
                    commit: e.commit,
                };
                return (d, Outs::Inline(n));
            }
            self.stats.emc_misses.add(1);
        }
        self.now(l);
        if self.megaflow_on {
            if let Some(e) = self.megaflow.lookup(key, l.now_ms) {
                let n = usize::from(e.n_out);
                inline[..n].copy_from_slice(&e.out[..n]);
                let d = Decision {
                    verdict: e.verdict,
                    tun_md: e.tun_md,
                    commit: e.commit,
                };
                self.stats.megaflow_hits.add(1);
                if self.emc_draw() {
                    self.emc.insert(key, hash, l.generation, &d, &inline[..n]);
                }
                return (d, Outs::Inline(n));
            }
        }
        self.stats.megaflow_misses.add(1);
        let mut wc = Wildcards::default();
        let d = run_wc(&self.tables, key, out, &mut wc);
        let in_emc = !l.emc_on || self.emc.insert(key, hash, l.generation, &d, out);
        let in_mf = !self.megaflow_on || self.megaflow.insert(key, &wc, &d, out, l.now_ms).is_ok();
        if !in_emc || !in_mf {
            self.stats.uncacheable.add(1);
        }
        (d, Outs::Slow)
    }

    /// A DNS query or DHCP request the datapath answers ends here (`None`);
    /// one it does not goes on as if the switch had no records: the
    /// pipeline runs again with the lookup passed, its outputs in `out`.
    #[inline(never)]
    fn answer(
        &mut self,
        s: usize,
        i: usize,
        off: usize,
        key: &FlowKey,
        verdict: Verdict,
        out: &mut Vec<u16>,
    ) -> Option<Decision> {
        let done = match verdict {
            Verdict::Dns(dp) => self.dns(s, i, off, dp),
            _ => self.dhcp(s, i, off),
        };
        (!done).then(|| run_passed(&self.tables, key, out, None))
    }

    /// Applies a router's rewrite to the frame (a routed packet is then sent
    /// like any other); true if it was routed.
    #[inline(always)]
    fn rewrite(&mut self, s: usize, i: usize, off: usize, verdict: &mut Verdict) -> bool {
        let Verdict::Routed(rw) = *verdict else {
            return false;
        };
        if let Some(p) = self.ports[s].as_mut() {
            apply_rewrite(&mut p.io.rx_frame_mut(i)[off..], &rw);
        }
        *verdict = Verdict::Output;
        true
    }

    /// Carries out decision `d` for frame `i` of port `s`: sends it to its
    /// outputs (through a tunnel for those at `TUNNEL_BASE` and above),
    /// answers ARP in place, punts, or drops and counts.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn deliver(
        &mut self,
        s: usize,
        i: usize,
        off: usize,
        key: &FlowKey,
        d: &Decision,
        outs: &[u16],
        hash: u32,
        routed: bool,
    ) {
        match d.verdict {
            Verdict::Punt => self.punt(s as u16, i, key),
            // Rewritten before; an answer's second walk cannot come back.
            Verdict::Routed(_) | Verdict::Dns(_) | Verdict::Dhcp => {
                self.stats.count_drop(DropReason::PipelineDrop)
            }
            Verdict::Drop(r) => match self.ports[s].as_ref() {
                Some(p) => p.drop_rx(r, &self.stats),
                None => self.stats.count_drop(r),
            },
            Verdict::ArpReply(mac) => {
                if let Some(p) = self.ports[s].as_mut() {
                    let f = p.io.rx_frame_mut(i);
                    arp_reply_in_place(f, mac);
                    let len = f.len();
                    let r = p.io.tx_rx_frame(i);
                    p.sent(r, len, &self.stats);
                }
                self.mark_dirty(s as u16);
            }
            Verdict::NdReply { mac, router } => {
                let Some(p) = self.ports[s].as_mut() else {
                    return;
                };
                let f = p.io.rx_frame_mut(i);
                // The flows match only solicitations; one the in-place
                // writer cannot answer (extension headers) is dropped.
                if !nd_na_in_place(f, mac, router) {
                    p.drop_rx(DropReason::GenerateFailed, &self.stats);
                    return;
                }
                let len = f.len();
                let r = p.io.tx_rx_frame(i);
                p.sent(r, len, &self.stats);
                self.mark_dirty(s as u16);
            }
            Verdict::Output => {
                let mut too_big = 0u16;
                for &dst in outs {
                    if dst >= TUNNEL_BASE {
                        self.encap(s, i, off, dst - TUNNEL_BASE, d.tun_md, hash, key);
                        continue;
                    }
                    let o = usize::from(dst);
                    if o == s {
                        // Back out the port it came in on (a hairpinned
                        // service connection, routed back by the router;
                        // the pipeline never sends a switch's packet back).
                        self.hairpin(s, i, off);
                        continue;
                    }
                    if o >= self.ports.len() {
                        self.stats.count_drop(DropReason::LoopToInport);
                        continue;
                    }
                    let mtu = self.tables.mtu_of(dst);
                    let (src, dstp) = pair(&mut self.ports, s, o);
                    let (Some(src), Some(dstp)) = (src.as_ref(), dstp.as_mut()) else {
                        self.stats.count_drop(DropReason::NoL2Destination);
                        continue;
                    };
                    let frame = &src.io.rx_frame(i)[off..];
                    // Larger than its switch's MTU: not delivered (a switch
                    // cannot fragment; a router answers below).
                    if mtu != 0 && frame.len() > usize::from(mtu) + 14 {
                        dstp.stats.tx_dropped.add(1);
                        self.stats.count_drop(DropReason::FrameTooBig);
                        too_big = mtu;
                        continue;
                    }
                    dstp.send(frame, &self.stats);
                    self.mark_dirty(dst);
                }
                // A routed packet with DF set that fits no egress MTU: the
                // router tells the sender (ICMP fragmentation needed).
                if too_big != 0 && routed && off == 0 {
                    self.frag_needed(s, i, usize::from(too_big), key);
                }
            }
        }
    }

    /// Sends frame `i` of port slot `s` (from byte `off`) through tunnel `tunnel`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn encap(
        &mut self,
        s: usize,
        i: usize,
        off: usize,
        tunnel: u16,
        tun_md: u64,
        hash: u32,
        key: &FlowKey,
    ) {
        let Some(u) = self.tables.underlay else {
            self.stats.count_drop(DropReason::RemotePort);
            return;
        };
        let Some(tun) = self.tables.tunnels.get(usize::from(tunnel)) else {
            self.stats.count_drop(DropReason::RemotePort);
            return;
        };
        let d = usize::from(u.slot);
        if d == s || d >= self.ports.len() {
            self.stats.count_drop(DropReason::LoopToInport);
            return;
        }
        let (src, dstp) = pair(&mut self.ports, s, d);
        let (Some(src), Some(dstp)) = (src.as_ref(), dstp.as_mut()) else {
            self.stats.count_drop(DropReason::RemotePort);
            return;
        };
        let frame = &src.io.rx_frame(i)[off..];
        let result = encap_send(&mut *dstp.io, &u, tun, tun_md, hash, frame);
        match result {
            Ok(()) => {
                tun.stats.tx_packets.add(1);
                tun.stats.tx_bytes.add(frame.len() as u64);
                dstp.stats.tx_packets.add(1);
                dstp.stats.tx_bytes.add((frame.len() + ENCAP_LEN) as u64);
            }
            Err(r) => {
                tun.stats.tx_errors.add(1);
                self.stats.count_drop(r);
                if r == DropReason::TunnelTooBig && off == 0 {
                    self.frag_needed(s, i, usize::from(u.mtu).saturating_sub(ENCAP_LEN), key);
                }
            }
        }
        self.mark_dirty(u.slot);
    }
}

/// IPv4 or IPv6: what the edge (conntrack; for IPv4 also LB and NAT) looks at.
#[inline(always)]
fn is_ip(eth_type: u16) -> bool {
    matches!(eth_type, 0x0800 | 0x86dd)
}
