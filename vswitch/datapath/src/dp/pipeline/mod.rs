//! The slow path: a packet's flow key walked through the logical pipelines of the
//! translated tables, stage by stage and datapath by datapath (switch → router →
//! switch through patch ports), to a verdict the caches can remember. The key is
//! a working copy the actions rewrite (MACs, TTL); the verdict carries the
//! difference to apply to the frame. It allocates nothing itself (the caller owns
//! the output list) and can record a trace of every stage it crossed.

use crate::dp::flow::{pack_tunnel, unpack_tunnel};
use crate::dp::flow::{FlowKey, Meta, WORK_ANSWER_PASSED, WORK_COMMIT};
use crate::dp::mask::Wildcards;
pub use crate::dp::verdict::{Commit, Decision, Rewrite, Verdict};
use crate::tables::{
    Act, DpTables, GenKind, PortTarget, RouteHop, StageTable, Tables, TUNNEL_BASE,
};
use switchyard_southbound::field::ct;
use switchyard_southbound::{DropReason, Field, Stage, MC_FIRST_KEY};

mod punt;
pub use punt::{punt, Learned, Punted};

const ETH_IPV6: u16 = 0x86dd;

/// Most datapaths one packet may cross (a loop in the topology ends here).
pub const MAX_DATAPATHS: usize = 8;

/// One step of a trace: a stage and the flow that matched there.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceStep {
    pub datapath: String,
    pub pipeline: &'static str,
    pub stage: &'static str,
    pub table: u32,
    pub priority: Option<u32>,
    pub matched: Option<String>,
    pub actions: Option<String>,
    pub source: Option<String>,
    pub outport: Option<String>,
    /// What happened at this point beside a flow (a flooded copy that stops).
    pub note: Option<String>,
}

/// Where a walk through the pipelines starts.
#[derive(Clone, Copy, Debug)]
struct Start {
    dp: u32,
    meta: Meta,
    /// First ingress stage to run; `None`: straight to egress with `meta.outport`.
    ingress_from: Option<usize>,
    /// Arrived through a tunnel: deliver to local ports only, never back out.
    from_tunnel: bool,
}

/// A generating action, with the datapath and registers it was reached with.
#[derive(Clone, Copy, Debug)]
pub struct Gen {
    pub kind: GenKind,
    pub dp: u32,
    pub meta: Meta,
}

enum Outcome {
    Done(Verdict),
    Gen(Gen),
}

type Trace<'a> = Option<&'a mut Vec<TraceStep>>;

/// [`run_full`] for a DNS query or DHCP message the datapath did not
/// answer: its `dns_lookup` or `dhcp_reply` is `next`, and it goes where
/// it was sent.
pub fn run_passed(t: &Tables, key: &FlowKey, out: &mut Vec<u16>, trace: Trace) -> Decision {
    let mut k = *key;
    k.ct_commit = WORK_ANSWER_PASSED;
    let mut d = run_full(t, &k, out, trace);
    if let Verdict::Dns(_) | Verdict::Dhcp = d.verdict {
        d.verdict = Verdict::Drop(DropReason::PipelineDrop);
    }
    d
}

/// Runs `key` through the pipeline. Output slots are appended to `out`.
pub fn run(t: &Tables, key: &FlowKey, out: &mut Vec<u16>, trace: Trace) -> Verdict {
    run_full(t, key, out, trace).verdict
}

/// Like [`run`], with the tunnel metadata and the conntrack commit.
pub fn run_full(t: &Tables, key: &FlowKey, out: &mut Vec<u16>, trace: Trace) -> Decision {
    decide(t, key, out, trace, &mut Wildcards::default())
}

/// [`run_full`] for the megaflow cache: `wc` receives the bits of `key`
/// the decision depends on.
pub fn run_wc(t: &Tables, key: &FlowKey, out: &mut Vec<u16>, wc: &mut Wildcards) -> Decision {
    decide(t, key, out, None, wc)
}

fn decide(
    t: &Tables,
    key: &FlowKey,
    out: &mut Vec<u16>,
    trace: Trace,
    wc: &mut Wildcards,
) -> Decision {
    let mut work = *key;
    let mut tun = 0;
    // Always exact: where the packet came from (the input slot, the tunnel
    // metadata), the working flags, and conntrack's state (the commit below
    // reads it).
    wc.mask.in_port = u16::MAX;
    wc.mask.tun = u64::MAX;
    wc.mask.ct_commit = u8::MAX;
    wc.mask.ct_state = u8::MAX;
    let outcome = if key.tun != 0 {
        run_tunnel(t, &mut work, out, trace, wc)
    } else {
        run_from_slot(t, &mut work, out, &mut tun, trace, wc)
    };
    match outcome {
        Outcome::Done(v) => {
            let verdict = finish(v, key, &work, wc);
            // Only a tracked packet that is sent commits (a dropped new
            // connection leaves no state); a dropped packet of an established
            // one does, so that an ACL can mark the connection it cuts.
            let sent = matches!(verdict, Verdict::Output | Verdict::Routed(_));
            let existing = key.ct_state & ct::EST != 0;
            let commit = (work.ct_commit & WORK_COMMIT != 0
                && (sent || existing && matches!(verdict, Verdict::Drop(_)))
                && key.ct_state & ct::TRK != 0)
                .then_some(Commit {
                    mark: work.ct_mark,
                    label: work.ct_label,
                });
            Decision {
                verdict,
                tun_md: tun,
                commit,
            }
        }
        Outcome::Gen(_) => {
            out.clear();
            Decision::of(if key.tun != 0 {
                Verdict::Drop(DropReason::PipelineDrop)
            } else {
                Verdict::Punt
            })
        }
    }
}

/// A packet that arrived through a tunnel: the sending chassis ran the ingress
/// pipeline; here the egress pipeline runs for the port (or group) it names.
fn run_tunnel(
    t: &Tables,
    work: &mut FlowKey,
    out: &mut Vec<u16>,
    trace: Trace,
    wc: &mut Wildcards,
) -> Outcome {
    out.clear();
    let (dp, ingress, egress) = unpack_tunnel(work.tun);
    let (ingress, egress) = (u32::from(ingress), u32::from(egress));
    let known_port = if egress >= MC_FIRST_KEY {
        t.multicast.contains_key(&(dp, egress))
    } else {
        t.ports.contains_key(&(dp, egress))
    };
    if !t.datapaths.contains_key(&dp) || !known_port {
        return Outcome::Done(Verdict::Drop(DropReason::UnknownTunnelKey));
    }
    let start = Start {
        dp,
        meta: Meta {
            inport: ingress,
            outport: egress,
            ..Meta::default()
        },
        ingress_from: None,
        from_tunnel: true,
    };
    let mut tun = 0;
    walk_datapaths(t, start, work, out, &mut tun, trace, wc)
}

fn run_from_slot(
    t: &Tables,
    work: &mut FlowKey,
    out: &mut Vec<u16>,
    tun: &mut u64,
    trace: Trace,
    wc: &mut Wildcards,
) -> Outcome {
    out.clear();
    let Some(b) = t.slot(work.in_port) else {
        return Outcome::Done(Verdict::Drop(DropReason::UnknownInport));
    };
    let start = Start {
        dp: b.datapath,
        meta: Meta {
            inport: b.port,
            ..Meta::default()
        },
        ingress_from: Some(0),
        from_tunnel: false,
    };
    walk_datapaths(t, start, work, out, tun, trace, wc)
}

/// Turns an output into a routed output when the walk changed the headers.
fn finish(v: Verdict, orig: &FlowKey, work: &FlowKey, wc: &mut Wildcards) -> Verdict {
    if v != Verdict::Output {
        return v;
    }
    if wc.wrote {
        // The rewrite is the difference to the packet's own values.
        wc.exact(Field::EthSrc);
        wc.exact(Field::EthDst);
        wc.exact(Field::IpTtl);
    }
    if work.eth_src == orig.eth_src && work.eth_dst == orig.eth_dst && work.ip_ttl == orig.ip_ttl {
        return v;
    }
    Verdict::Routed(Rewrite {
        eth_src: work.eth_src,
        eth_dst: work.eth_dst,
        ttl_dec: orig.ip_ttl.wrapping_sub(work.ip_ttl),
    })
}

fn walk_datapaths(
    t: &Tables,
    mut cur: Start,
    key: &mut FlowKey,
    out: &mut Vec<u16>,
    tun: &mut u64,
    mut trace: Trace,
    wc: &mut Wildcards,
) -> Outcome {
    for _ in 0..MAX_DATAPATHS {
        let Some(dp) = t.datapaths.get(&cur.dp) else {
            return Outcome::Done(Verdict::Drop(DropReason::UnknownInport));
        };
        let mut meta = cur.meta;
        if let Some(from) = cur.ingress_from {
            let stages = dp.ingress.get(from..).unwrap_or(&[]);
            match walk(
                dp,
                stages,
                key,
                &mut meta,
                t,
                cur.dp,
                trace.as_deref_mut(),
                wc,
            ) {
                Step::Output => {}
                Step::Drop(r) => return Outcome::Done(Verdict::Drop(r)),
                Step::ArpReply(mac) => return Outcome::Done(Verdict::ArpReply(mac)),
                Step::NdReply { mac, router } => {
                    return Outcome::Done(Verdict::NdReply { mac, router })
                }
                Step::Dns => return Outcome::Done(Verdict::Dns(cur.dp)),
                Step::Dhcp => return Outcome::Done(Verdict::Dhcp),
                Step::Gen(kind) => {
                    return Outcome::Gen(Gen {
                        kind,
                        dp: cur.dp,
                        meta,
                    })
                }
            }
        }
        // Egress, once per destination port.
        let mut last_drop = DropReason::NoL2Destination;
        let single = [meta.outport];
        let multicast = meta.outport >= MC_FIRST_KEY;
        let members: &[u32] = if multicast {
            t.multicast
                .get(&(cur.dp, meta.outport))
                .map(Vec::as_slice)
                .unwrap_or(&[])
        } else {
            &single
        };
        let mut cross = None;
        for &port in members {
            if port == meta.inport && !dp.router {
                if !multicast {
                    last_drop = DropReason::LoopToInport;
                }
                continue;
            }
            // A port on another chassis: its chassis runs the egress pipeline.
            if let Some(PortTarget::Remote(chassis)) = t.ports.get(&(cur.dp, port)) {
                match (t.underlay, t.tunnel_of.get(chassis)) {
                    _ if cur.from_tunnel => {}
                    (Some(_), Some(&i)) => {
                        let entry = TUNNEL_BASE + i;
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                        let egress = if multicast { meta.outport } else { port };
                        *tun = pack_tunnel(cur.dp, meta.inport as u16, egress as u16);
                    }
                    _ => last_drop = DropReason::RemotePort,
                }
                continue;
            }
            let mut m = Meta {
                outport: port,
                ..meta
            };
            match walk(
                dp,
                &dp.egress,
                key,
                &mut m,
                t,
                cur.dp,
                trace.as_deref_mut(),
                wc,
            ) {
                Step::Output => match t.ports.get(&(cur.dp, port)) {
                    Some(PortTarget::Local(slot)) => out.push(*slot),
                    Some(PortTarget::Remote(_)) => last_drop = DropReason::RemotePort,
                    // Broadcasts stay on their segment: only unicast enters a router.
                    Some(PortTarget::Patch { dp, port }) if !multicast && !cur.from_tunnel => {
                        cross = Some(Start {
                            dp: *dp,
                            meta: Meta {
                                inport: *port,
                                ..Meta::default()
                            },
                            ingress_from: Some(0),
                            from_tunnel: false,
                        })
                    }
                    Some(PortTarget::Patch { dp: peer, .. }) => {
                        if let Some(tr) = trace.as_deref_mut() {
                            let router = t.datapaths.get(peer).map_or("?", |d| d.name.as_str());
                            tr.push(TraceStep {
                                datapath: dp.name.clone(),
                                pipeline: "egress",
                                stage: "flood",
                                table: 0,
                                priority: None,
                                matched: None,
                                actions: None,
                                source: None,
                                outport: Some(t.port_name(cur.dp, port).to_string()),
                                note: Some(if cur.from_tunnel {
                                    format!("this copy does not enter router \"{router}\": the sending chassis routed the packet")
                                } else {
                                    format!("this copy stops: broadcasts and multicasts stay on their segment, only unicast enters router \"{router}\"")
                                }),
                            });
                        }
                    }
                    _ => last_drop = DropReason::NoL2Destination,
                },
                Step::Drop(r) => last_drop = r,
                Step::ArpReply(_)
                | Step::NdReply { .. }
                | Step::Gen(_)
                | Step::Dns
                | Step::Dhcp => last_drop = DropReason::PipelineDrop,
            }
        }
        match cross {
            Some(next) => cur = next,
            None if out.is_empty() => return Outcome::Done(Verdict::Drop(last_drop)),
            None => return Outcome::Done(Verdict::Output),
        }
    }
    out.clear();
    Outcome::Done(Verdict::Drop(DropReason::DatapathLoop))
}

enum Step {
    Output,
    Drop(DropReason),
    ArpReply(u64),
    NdReply { mac: u64, router: bool },
    Gen(GenKind),
    Dns,
    Dhcp,
}

/// The 5-tuple hash ECMP selects a hop by (stable for a connection). The
/// IPv6 words count only in an IPv6 key: the megaflow mask marks them
/// exact only there.
fn flow_hash(k: &FlowKey) -> u32 {
    let mut h = (u64::from(k.ip_src) << 32 | u64::from(k.ip_dst))
        ^ (u64::from(k.l4_src) << 24 | u64::from(k.l4_dst) << 8 | u64::from(k.ip_proto));
    if k.eth_type == ETH_IPV6 {
        h ^= k.ip6_src[0].rotate_left(7)
            ^ k.ip6_src[1].rotate_left(19)
            ^ k.ip6_dst[0].rotate_left(31)
            ^ k.ip6_dst[1].rotate_left(43);
    }
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h ^ (h >> 33)) as u32
}

#[inline]
fn route(key: &mut FlowKey, meta: &mut Meta, h: &RouteHop, wc: &mut Wildcards) {
    wc.wrote = true;
    wc.exact(Field::IpTtl);
    key.ip_ttl = key.ip_ttl.saturating_sub(1);
    key.eth_src = h.src_mac;
    meta.outport = h.port;
    if let Some(v6) = h.v6 {
        meta.xxreg0 = if v6.nexthop == [0; 2] {
            wc.exact(Field::Ip6DstHi);
            wc.exact(Field::Ip6DstLo);
            key.ip6_dst
        } else {
            v6.nexthop
        };
        meta.xxreg1 = v6.src_ip;
        return;
    }
    meta.reg0 = if h.nexthop == 0 {
        // The next hop is the destination itself: it decides the neighbour.
        wc.exact(Field::Ip4Dst);
        key.ip_dst
    } else {
        h.nexthop
    };
    meta.reg1 = h.src_ip;
}

#[allow(clippy::too_many_arguments)]
fn walk(
    dp: &DpTables,
    stages: &[StageTable],
    key: &mut FlowKey,
    meta: &mut Meta,
    t: &Tables,
    dp_key: u32,
    mut trace: Trace,
    wc: &mut Wildcards,
) -> Step {
    for st in stages {
        let hit = st
            .classifier
            .lookup_wc(key, meta, wc)
            .map(|id| &st.flows[id as usize]);
        if let Some(tr) = trace.as_deref_mut() {
            tr.push(TraceStep {
                datapath: dp.name.clone(),
                pipeline: st.stage.pipeline().as_str(),
                stage: st.stage.name(),
                table: st.stage.table(),
                priority: hit.map(|f| f.priority),
                matched: hit
                    .map(|f| switchyard_southbound::display::matches_text(&f.lflow.matches)),
                actions: hit
                    .map(|f| switchyard_southbound::display::actions_text(&f.lflow.actions)),
                source: hit.map(|f| f.lflow.source.clone()),
                outport: (meta.outport != 0).then(|| t.port_name(dp_key, meta.outport).to_string()),
                note: None,
            });
        }
        let Some(flow) = hit else {
            return Step::Drop(DropReason::NoFlow);
        };
        let mut next = false;
        for a in &flow.actions {
            match *a {
                Act::Next => {
                    next = true;
                    break;
                }
                Act::Output => return Step::Output,
                Act::SetOutport(p) => meta.outport = p,
                Act::Drop(r) => return Step::Drop(r),
                Act::ArpReply(mac) => return Step::ArpReply(mac),
                Act::NdReply { mac, router } => return Step::NdReply { mac, router },
                Act::Route(h) => {
                    route(key, meta, &h, wc);
                    next = true;
                    break;
                }
                Act::Ecmp(i) => {
                    let Some(hops) = t.ecmp.get(i as usize).filter(|h| !h.is_empty()) else {
                        return Step::Drop(DropReason::NoRoute);
                    };
                    for f in [
                        Field::EthType,
                        Field::Ip4Src,
                        Field::Ip4Dst,
                        Field::L4Src,
                        Field::L4Dst,
                        Field::IpProto,
                    ] {
                        wc.exact(f);
                    }
                    if key.eth_type == ETH_IPV6 {
                        for f in [
                            Field::Ip6SrcHi,
                            Field::Ip6SrcLo,
                            Field::Ip6DstHi,
                            Field::Ip6DstLo,
                        ] {
                            wc.exact(f);
                        }
                    }
                    let h = hops[flow_hash(key) as usize % hops.len()];
                    route(key, meta, &h, wc);
                    next = true;
                    break;
                }
                Act::GetArp => {
                    wc.wrote = true;
                    let learned = if key.eth_type == ETH_IPV6 {
                        t.neighbors6.get(&(dp_key, meta.outport, meta.xxreg0))
                    } else {
                        t.neighbors.get(&(dp_key, meta.outport, meta.reg0))
                    };
                    key.eth_dst = learned.copied().unwrap_or(0);
                    next = true;
                    break;
                }
                Act::SetEthDst(mac) => {
                    wc.wrote = true;
                    key.eth_dst = mac;
                    next = true;
                    break;
                }
                Act::Generate(g) => return Step::Gen(g),
                Act::DnsLookup | Act::DhcpReply => {
                    if key.ct_commit & WORK_ANSWER_PASSED == 0 {
                        return if *a == Act::DnsLookup {
                            Step::Dns
                        } else {
                            Step::Dhcp
                        };
                    }
                    next = true;
                    break;
                }
                Act::CtCommit { mark, label } => {
                    // Bits the commit keeps come from the connection.
                    wc.exact(Field::CtMark);
                    wc.exact(Field::CtLabel);
                    key.ct_mark = (key.ct_mark & !mark.1) | (mark.0 & mark.1);
                    key.ct_label = (key.ct_label & !label.1) | (label.0 & label.1);
                    key.ct_commit |= WORK_COMMIT;
                }
            }
        }
        if !next {
            // A flow whose actions neither continue nor output drops, as in OVN.
            return Step::Drop(DropReason::PipelineDrop);
        }
    }
    Step::Drop(DropReason::NoFlow)
}
