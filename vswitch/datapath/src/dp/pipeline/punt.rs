//! Punted packets: what a router generates (ICMP errors, echo replies, ARP
//! requests and neighbour solicitations, router advertisements), built from
//! the received frame and walked from where the router sends it.

use super::*;

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
