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

/// A neighbour learned from an ARP reply (reported to northd by the agent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub dp: u32,
    pub port: u32,
    /// IPv4 (0 for an IPv6 neighbour).
    pub ip: u32,
    pub mac: u64,
    /// An IPv6 neighbour (`FlowKey` words), learned from an NA.
    pub ip6: Option<[u64; 2]>,
}

/// What the slow path made of a punted packet.
#[derive(Debug)]
pub struct Punted {
    /// Why the received packet itself goes no further (counted), if it does not.
    pub consumed: Option<DropReason>,
    /// Bytes of the generated packet in the caller's buffer (0: none).
    pub len: usize,
    /// The generated packet's verdict; its output slots are in `out`.
    pub verdict: Verdict,
    /// The ARP target, for a generated ARP request (the caller rate-limits).
    pub arp_for: Option<(u32, u32)>,
    /// Tunnel metadata for tunnel outputs of the generated packet.
    pub tun: u64,
    pub learned: Option<Learned>,
}

/// Runs a punted packet: finds the generating action again, builds the new
/// packet into `buf` from `frame`, and walks it from where the router sends it
/// (routing for ICMP, egress of the router port for ARP). `out` receives the
/// generated packet's output slots.
///
/// With `trace`, the generated packet's walk is recorded there (`syctl trace`
/// follows a router's answer back through the datapaths it crosses).
pub fn punt(
    t: &Tables,
    key: &FlowKey,
    frame: &[u8],
    buf: &mut [u8],
    out: &mut Vec<u16>,
    mut trace: Trace,
) -> Punted {
    let mut work = *key;
    let mut p = Punted {
        consumed: None,
        len: 0,
        verdict: Verdict::Drop(DropReason::GenerateFailed),
        arp_for: None,
        tun: 0,
        learned: None,
    };
    let mut tun = 0;
    // The generator's result is not cached by megaflows (the PMD punts again).
    let wc = &mut Wildcards::default();
    let g = match run_from_slot(t, &mut work, out, &mut tun, None, wc) {
        Outcome::Done(v) => {
            p.verdict = finish(v, key, &work, wc);
            return p;
        }
        Outcome::Gen(g) => g,
    };
    out.clear();
    let routing = t.datapaths.get(&g.dp).and_then(|d| {
        d.ingress
            .iter()
            .position(|s| s.stage == Stage::LrInIpRouting)
    });
    let (len, start) = match g.kind {
        GenKind::PutArp => {
            p.consumed = Some(DropReason::ConsumedByRouter);
            p.learned = Some(Learned {
                dp: g.dp,
                port: g.meta.inport,
                ip: key.ip_src,
                mac: key.arp_sha,
                ip6: None,
            });
            p.verdict = Verdict::Drop(DropReason::ConsumedByRouter);
            return p;
        }
        GenKind::PutNd => {
            p.consumed = Some(DropReason::ConsumedByRouter);
            p.verdict = Verdict::Drop(DropReason::ConsumedByRouter);
            if let Some((ip6, mac)) = crate::dp::generate6::learned_from_na(key) {
                p.learned = Some(Learned {
                    dp: g.dp,
                    port: g.meta.inport,
                    ip: 0,
                    mac,
                    ip6: Some(ip6),
                });
            }
            return p;
        }
        GenKind::IcmpError {
            ty,
            code,
            mtu,
            src_ip6: Some(src6),
            ..
        } => {
            p.consumed = Some(match (ty, code) {
                (3, _) => DropReason::TtlExceeded,
                (1, 4) => DropReason::RouterPortUnreachable,
                _ => DropReason::NoRoute,
            });
            let len = crate::dp::generate6::icmp6_error(frame, buf, src6, ty, code, mtu);
            (len, routing.map(|i| (i, g.meta.inport)))
        }
        GenKind::IcmpError {
            ty,
            code,
            src_ip,
            mtu,
            src_ip6: None,
        } => {
            p.consumed = Some(match (ty, code) {
                (11, _) => DropReason::TtlExceeded,
                (3, 3) => DropReason::RouterPortUnreachable,
                _ => DropReason::NoRoute,
            });
            let len = crate::dp::generate::icmp_error(frame, buf, src_ip, ty, code, mtu);
            (len, routing.map(|i| (i, g.meta.inport)))
        }
        GenKind::EchoReply => {
            let len = if key.eth_type == ETH_IPV6 {
                crate::dp::generate6::icmp6_echo_reply(frame, buf)
            } else {
                crate::dp::generate::icmp_echo_reply(frame, buf)
            };
            (len, routing.map(|i| (i, g.meta.inport)))
        }
        GenKind::TcpReset => {
            p.consumed = Some(DropReason::RouterTcpReset);
            let len = crate::dp::generate::tcp_rst(frame, buf);
            (len, routing.map(|i| (i, g.meta.inport)))
        }
        GenKind::RouterAdvert(i) => {
            p.consumed = Some(DropReason::ConsumedByRouter);
            let Some(n) =
                t.ra.get(i as usize)
                    .and_then(|ra| crate::dp::generate6::router_advert(frame, buf, ra))
            else {
                p.verdict = Verdict::Drop(DropReason::ConsumedByRouter);
                return p;
            };
            // Back out of the port the solicitation came in on: the
            // switch answers for its router, so the answer has no inport
            // (which would be the loop check's own port).
            let meta = Meta {
                outport: g.meta.inport,
                inport: 0,
                ..g.meta
            };
            walk_out(t, g.dp, meta, Some(n), key.in_port, buf, out, trace, &mut p);
            return p;
        }
        GenKind::ArpRequest | GenKind::NdSolicit => {
            solicit(t, &g, work.eth_src, key.in_port, buf, out, trace, &mut p);
            return p;
        }
    };
    let (Some(n), Some((stage, inport))) = (len, start) else {
        return p;
    };
    let Ok(mut k) = crate::dp::packet::extract(&buf[..n], key.in_port) else {
        return p;
    };
    let orig = k;
    let start = Start {
        dp: g.dp,
        meta: Meta {
            inport,
            ..Meta::default()
        },
        ingress_from: Some(stage),
        from_tunnel: false,
    };
    p.len = n;
    p.verdict = match walk_datapaths(t, start, &mut k, out, &mut p.tun, trace.as_deref_mut(), wc) {
        Outcome::Done(v) => finish(v, &orig, &k, wc),
        // An answer to a neighbour not resolved yet: the solicitation goes
        // instead of it (the sender's retry finds the neighbour known).
        Outcome::Gen(g2) if matches!(g2.kind, GenKind::ArpRequest | GenKind::NdSolicit) => {
            p.len = 0;
            solicit(t, &g2, k.eth_src, key.in_port, buf, out, trace, &mut p);
            return p;
        }
        // A generated packet that would generate again (e.g. no route back) dies.
        Outcome::Gen(_) => {
            out.clear();
            Verdict::Drop(DropReason::GenerateFailed)
        }
    };
    p
}

/// Builds into `buf` the ARP request or neighbor solicitation that `g`
/// asks for (from `eth_src`, the router port's MAC) and walks it out of the
/// router port: egress of the router, then the attached switch.
#[allow(clippy::too_many_arguments)]
fn solicit(
    t: &Tables,
    g: &Gen,
    eth_src: u64,
    in_port: u16,
    buf: &mut [u8],
    out: &mut Vec<u16>,
    trace: Trace,
    p: &mut Punted,
) {
    p.consumed = Some(DropReason::NeighborUnresolved);
    let len = if g.kind == GenKind::NdSolicit {
        let (target, src) = (g.meta.xxreg0, g.meta.xxreg1);
        p.arp_for = Some((g.dp, crate::dp::generate6::limiter_key(target)));
        crate::dp::generate6::nd_solicit(buf, eth_src, src, target)
    } else {
        p.arp_for = Some((g.dp, g.meta.reg0));
        crate::dp::generate::arp_request(buf, eth_src, g.meta.reg1, g.meta.reg0)
    };
    walk_out(t, g.dp, g.meta, len, in_port, buf, out, trace, p);
}

/// Walks the packet built in `buf` (`len` bytes; `None`: it could not be
/// built) out of `meta.outport` of router `dp`: the router's egress, then
/// the attached switch.
#[allow(clippy::too_many_arguments)]
fn walk_out(
    t: &Tables,
    dp: u32,
    meta: Meta,
    len: Option<usize>,
    in_port: u16,
    buf: &mut [u8],
    out: &mut Vec<u16>,
    trace: Trace,
    p: &mut Punted,
) {
    let start = Start {
        dp,
        meta,
        ingress_from: None,
        from_tunnel: false,
    };
    let Some(mut k) = len.and_then(|n| crate::dp::packet::extract(&buf[..n], in_port).ok()) else {
        return;
    };
    let orig = k;
    let wc = &mut Wildcards::default();
    out.clear();
    p.len = len.unwrap_or(0);
    p.verdict = match walk_datapaths(t, start, &mut k, out, &mut p.tun, trace, wc) {
        Outcome::Done(v) => finish(v, &orig, &k, wc),
        Outcome::Gen(_) => Verdict::Drop(DropReason::GenerateFailed),
    };
}
