//! The IPv6 packets the datapath makes itself: the neighbor advertisement
//! that answers a solicitation in place (the ARP responder's twin), ICMPv6
//! errors (time exceeded, destination unreachable, packet too big) and echo
//! replies from a router port, and the solicitation that resolves a nexthop.
//! Written with smoltcp's views; checksums over the IPv6 pseudo-header. Each
//! builder returns `None` (or `false`) when the input does not warrant an
//! answer (RFC 4443 §2.4: no error about an error, a multicast destination
//! or an unspecified source) or does not fit.

use smoltcp::wire::{EthernetProtocol, Icmpv6Packet, IpProtocol, Ipv6Packet};
use std::net::Ipv6Addr;

const ETH: usize = 14;
const IP6: usize = 40;
const ICMP_HDR: usize = 8;
const ND_LEN: usize = 24;
const LL_OPT: usize = 8;
const ICMP6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;
/// An ICMPv6 error carries as much of the offending packet as fits in the
/// IPv6 minimum MTU (RFC 4443 §2.4(c)).
const MIN_MTU: usize = 1280;
/// Hop limits as the IPv4 generators' TTLs: echo replies 255, errors 254.
/// ND messages must carry 255 (RFC 4861 §7.1: receivers drop any other).
const HOPS_ECHO_REPLY: u8 = 255;
const HOPS_ICMP_ERROR: u8 = 254;
const HOPS_ND: u8 = 255;

/// An address from `FlowKey` words.
pub fn addr(w: [u64; 2]) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(w[0]) << 64 | u128::from(w[1]))
}

fn words(a: Ipv6Addr) -> [u64; 2] {
    let v = u128::from(a);
    [(v >> 64) as u64, v as u64]
}

/// Offset of the IPv6 header in an untagged or 802.1Q-tagged frame.
fn ip6_offset(frame: &[u8]) -> Option<usize> {
    let ty = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    match ty(12)? {
        0x86dd => Some(ETH),
        0x8100 if ty(16)? == 0x86dd => Some(ETH + 4),
        _ => None,
    }
}

fn write_eth(buf: &mut [u8], src: u64, dst: u64) {
    buf[0..6].copy_from_slice(&dst.to_be_bytes()[2..]);
    buf[6..12].copy_from_slice(&src.to_be_bytes()[2..]);
    buf[12..14].copy_from_slice(&u16::from(EthernetProtocol::Ipv6).to_be_bytes());
}

fn write_ipv6(buf: &mut [u8], payload: usize, src: Ipv6Addr, dst: Ipv6Addr, hops: u8) {
    let mut ip = Ipv6Packet::new_unchecked(&mut buf[..IP6]);
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(payload as u16);
    ip.set_next_header(IpProtocol::Icmpv6);
    ip.set_hop_limit(hops);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
}

fn fill_icmp6(icmp: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) {
    Icmpv6Packet::new_unchecked(icmp).fill_checksum(src, dst);
}

/// Rewrites the neighbor solicitation in `frame` in place into the
/// advertisement that `mac` owns its target: to the solicitor, from the
/// target address, solicited and override set (router as asked), with the
/// target link-layer option when the solicitation left room for it. The
/// frame keeps its length: a longer solicitation's trailing bytes are
/// zeroed and lie past the IPv6 payload length, where receivers trim them.
/// `false` for anything but an NS right after the fixed header from a
/// unicast source (a DAD probe is not answered here: its owner answers).
pub fn nd_na_in_place(frame: &mut [u8], mac: u64, router: bool) -> bool {
    let Some(off) = ip6_offset(frame) else {
        return false;
    };
    let Ok(ip) = Ipv6Packet::new_checked(&frame[off..]) else {
        return false;
    };
    let icmp_len = ip.payload().len();
    let src = ip.src_addr();
    if ip.next_header() != IpProtocol::Icmpv6
        || icmp_len < ND_LEN
        || ip.payload()[0] != NS
        || src.is_unspecified()
        || src.is_multicast()
    {
        return false;
    }
    let target: [u8; 16] = ip.payload()[8..24].try_into().unwrap_or([0; 16]);
    let target = Ipv6Addr::from(target);
    let len = if icmp_len >= ND_LEN + LL_OPT {
        ND_LEN + LL_OPT
    } else {
        ND_LEN
    };
    let requester: [u8; 6] = frame[6..12].try_into().unwrap_or([0; 6]);
    frame[0..6].copy_from_slice(&requester);
    frame[6..12].copy_from_slice(&mac.to_be_bytes()[2..]);
    write_ipv6(&mut frame[off..], len, target, src, HOPS_ND);
    let icmp = &mut frame[off + IP6..];
    icmp[0] = NA;
    icmp[1] = 0;
    // R, S, O (RFC 4861 §4.4): solicited, and the answer overrides a cache entry.
    icmp[4] = if router { 0x80 } else { 0 } | 0x40 | 0x20;
    icmp[5..8].fill(0);
    if len > ND_LEN {
        icmp[ND_LEN] = 2; // target link-layer address
        icmp[ND_LEN + 1] = 1;
        icmp[ND_LEN + 2..ND_LEN + 8].copy_from_slice(&mac.to_be_bytes()[2..]);
    }
    icmp[len..icmp_len].fill(0);
    fill_icmp6(&mut icmp[..len], &target, &src);
    true
}

/// The solicitation a router port (`sha`, `src`) sends to resolve `target`:
/// to its solicited-node multicast group, with the source link-layer option.
pub fn nd_solicit(buf: &mut [u8], sha: u64, src: [u64; 2], target: [u64; 2]) -> Option<usize> {
    let len = ND_LEN + LL_OPT;
    if buf.len() < ETH + IP6 + len {
        return None;
    }
    let t = addr(target);
    let low = u128::from(t) & 0xff_ffff;
    let group = Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000u128 | low);
    write_eth(buf, sha, 0x3333_ff00_0000 | low as u64);
    let s = addr(src);
    write_ipv6(&mut buf[ETH..], len, s, group, HOPS_ND);
    let icmp = &mut buf[ETH + IP6..ETH + IP6 + len];
    icmp[0] = NS;
    icmp[1..8].fill(0);
    icmp[8..24].copy_from_slice(&t.octets());
    icmp[24] = 1; // source link-layer address
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&sha.to_be_bytes()[2..]);
    fill_icmp6(icmp, &s, &group);
    Some(ETH + IP6 + len)
}

/// An ICMPv6 error of `ty`/`code` from `src` about the packet in `frame`
/// (`mtu` goes into a packet-too-big message), quoting as much of it as
/// fits the minimum MTU. Ethernet addresses are left for the pipeline.
pub fn icmp6_error(
    frame: &[u8],
    buf: &mut [u8],
    src: [u64; 2],
    ty: u8,
    code: u8,
    mtu: u16,
) -> Option<usize> {
    let orig = &frame[ip6_offset(frame)?..];
    let ip = Ipv6Packet::new_checked(orig).ok()?;
    let to = ip.src_addr();
    // Not about an error, nor to a source that names no single node; to a
    // multicast destination only "packet too big" (RFC 4443 §2.4(e)).
    if to.is_unspecified() || to.is_multicast() || (ip.dst_addr().is_multicast() && ty != 2) {
        return None;
    }
    if ip.next_header() == IpProtocol::Icmpv6 && ip.payload().first().is_none_or(|t| *t < 128) {
        return None;
    }
    let whole = (IP6 + usize::from(ip.payload_len())).min(orig.len());
    let quoted = whole.min(MIN_MTU - IP6 - ICMP_HDR);
    let payload = ICMP_HDR + quoted;
    if buf.len() < ETH + IP6 + payload {
        return None;
    }
    write_eth(buf, 0, 0);
    let s = addr(src);
    write_ipv6(&mut buf[ETH..], payload, s, to, HOPS_ICMP_ERROR);
    let icmp = &mut buf[ETH + IP6..ETH + IP6 + payload];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..8].fill(0);
    if ty == 2 {
        icmp[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
    }
    icmp[ICMP_HDR..].copy_from_slice(&orig[..quoted]);
    fill_icmp6(icmp, &s, &to);
    Some(ETH + IP6 + payload)
}

/// The echo reply to the ICMPv6 echo request in `frame` (to the router; no
/// extension headers), from the address it was sent to.
pub fn icmp6_echo_reply(frame: &[u8], buf: &mut [u8]) -> Option<usize> {
    let ip = Ipv6Packet::new_checked(&frame[ip6_offset(frame)?..]).ok()?;
    let payload = ip.payload();
    if ip.next_header() != IpProtocol::Icmpv6 || payload.len() < ICMP_HDR || payload[0] != 128 {
        return None;
    }
    if buf.len() < ETH + IP6 + payload.len() {
        return None;
    }
    let (src, dst) = (ip.dst_addr(), ip.src_addr());
    write_eth(buf, 0, 0);
    write_ipv6(&mut buf[ETH..], payload.len(), src, dst, HOPS_ECHO_REPLY);
    let icmp = &mut buf[ETH + IP6..ETH + IP6 + payload.len()];
    icmp.copy_from_slice(payload);
    icmp[0] = 129;
    fill_icmp6(icmp, &src, &dst);
    Some(ETH + IP6 + payload.len())
}

/// The neighbour an advertisement teaches: its target and link-layer
/// address (`None` for one without the option, or not an NA).
pub fn learned_from_na(key: &crate::dp::flow::FlowKey) -> Option<([u64; 2], u64)> {
    (key.eth_type == 0x86dd
        && key.ip_proto == ICMP6
        && key.l4_src == u16::from(NA)
        && key.arp_sha != 0)
        .then_some((key.nd_target, key.arp_sha))
}

/// The rate limiter's key for a solicitation's target (collisions only
/// share a budget).
pub fn limiter_key(target: [u64; 2]) -> u32 {
    let w = target[0] ^ target[1];
    (w ^ (w >> 32)) as u32
}

/// A router advertisement, built once from its flow's `nd_ra` (the ICMPv6
/// message whole but for the checksum) and sent to every solicitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaTemplate {
    pub mac: u64,
    pub src: Ipv6Addr,
    pub icmp: Vec<u8>,
}

const RS: u8 = 133;
const RA: u8 = 134;
/// The hop limit hosts are told to use (Linux's default).
const RA_CUR_HOP_LIMIT: u8 = 64;

impl RaTemplate {
    /// The advertisement of `r` (RFC 4861 §4.2, RFC 4191 preference, RFC
    /// 8106 RDNSS); `None` for a malformed one (a version skew).
    pub fn new(r: &switchyard_southbound::pb::NdRa) -> Option<RaTemplate> {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(r.src_ip6.as_slice()).ok()?);
        let (managed, other, autonomous) = match r.address_mode.as_str() {
            "slaac" => (false, false, true),
            "dhcpv6_stateless" => (false, true, true),
            "dhcpv6_stateful" => (true, true, false),
            _ => return None,
        };
        let prf: u8 = match r.preference.as_str() {
            "HIGH" => 0b01,
            "LOW" => 0b11,
            _ => 0,
        };
        let lifetime = u16::try_from(r.lifetime).unwrap_or(u16::MAX);
        let mut m = vec![RA, 0, 0, 0, RA_CUR_HOP_LIMIT];
        m.push(u8::from(managed) << 7 | u8::from(other) << 6 | prf << 3);
        m.extend_from_slice(&lifetime.to_be_bytes());
        m.extend_from_slice(&[0; 8]); // reachable time, retrans timer: unspecified
        m.extend_from_slice(&[1, 1]); // source link-layer address
        m.extend_from_slice(&r.mac.to_be_bytes()[2..]);
        if r.mtu != 0 {
            m.extend_from_slice(&[5, 1, 0, 0]);
            m.extend_from_slice(&r.mtu.to_be_bytes());
        }
        for p in &r.prefixes {
            let prefix: [u8; 16] = p.prefix.as_slice().try_into().ok()?;
            // On-link (L), autonomous (A) as the mode says; valid and
            // preferred forever, as OVN advertises.
            m.extend_from_slice(&[3, 4, u8::try_from(p.len).ok().filter(|l| *l <= 128)?]);
            m.push(0x80 | u8::from(autonomous) << 6);
            m.extend_from_slice(&[0xff; 8]);
            m.extend_from_slice(&[0; 4]);
            m.extend_from_slice(&prefix);
        }
        if !r.rdnss.is_empty() {
            m.extend_from_slice(&[25, u8::try_from(1 + 2 * r.rdnss.len()).ok()?, 0, 0]);
            m.extend_from_slice(&r.lifetime.to_be_bytes());
            for d in &r.rdnss {
                m.extend_from_slice(<&[u8; 16]>::try_from(d.as_slice()).ok()?);
            }
        }
        Some(RaTemplate {
            mac: r.mac,
            src,
            icmp: m,
        })
    }
}

/// The advertisement answering the router solicitation in `frame`: to the
/// solicitor, or to all nodes when it has no address yet. `None` for a
/// solicitation RFC 4861 §6.1.1 says to discard (hop limit not 255, code
/// not 0, shorter than 8 bytes, a zero-length option, or a source
/// link-layer option from the unspecified address).
pub fn router_advert(frame: &[u8], buf: &mut [u8], t: &RaTemplate) -> Option<usize> {
    let ip = Ipv6Packet::new_checked(&frame[ip6_offset(frame)?..]).ok()?;
    let rs = ip.payload();
    if ip.next_header() != IpProtocol::Icmpv6
        || ip.hop_limit() != HOPS_ND
        || rs.len() < ICMP_HDR
        || rs[0] != RS
        || rs[1] != 0
    {
        return None;
    }
    let from = ip.src_addr();
    let mut at = ICMP_HDR;
    while at < rs.len() {
        let (ty, len) = (rs[at], usize::from(*rs.get(at + 1)?) * 8);
        if len == 0 || at + len > rs.len() || (ty == 1 && from.is_unspecified()) {
            return None;
        }
        at += len;
    }
    let (dst, eth_dst) = if from.is_unspecified() {
        (Ipv6Addr::from(0xff02u128 << 112 | 1), 0x3333_0000_0001)
    } else if from.is_multicast() {
        return None;
    } else {
        let m = frame.get(6..12)?;
        (
            from,
            u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]),
        )
    };
    let n = t.icmp.len();
    if buf.len() < ETH + IP6 + n {
        return None;
    }
    write_eth(buf, t.mac, eth_dst);
    write_ipv6(&mut buf[ETH..], n, t.src, dst, HOPS_ND);
    let icmp = &mut buf[ETH + IP6..ETH + IP6 + n];
    icmp.copy_from_slice(&t.icmp);
    fill_icmp6(icmp, &t.src, &dst);
    Some(ETH + IP6 + n)
}

#[cfg(test)]
#[path = "generate6_tests.rs"]
mod tests;

/// Used by tests and benches to build addresses as `FlowKey` words.
pub fn ip6_key_words(a: Ipv6Addr) -> [u64; 2] {
    words(a)
}
