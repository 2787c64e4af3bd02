//! Parsing a received frame into a [`FlowKey`] with smoltcp's checked views, and
//! the in-place rewrites the datapath performs (ARP replies). Every malformed
//! frame maps to a [`DropReason`]; nothing here panics on any input.

use crate::dp::flow::FlowKey;
use smoltcp::wire::{
    ArpHardware, ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet,
    Ipv6Packet, TcpPacket, UdpPacket,
};
use switchyard_southbound::DropReason;

const ETH_HDR: usize = 14;
const ETH_VLAN: u16 = 0x8100;
/// Smallest frame we accept (Ethernet header, no FCS).
pub const MIN_FRAME: usize = ETH_HDR;

#[inline]
fn mac_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Extracts the flow key of `frame` received on port slot `in_port`.
#[inline]
pub fn extract(frame: &[u8], in_port: u16) -> Result<FlowKey, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::RuntFrame)?;
    // new_checked guarantees the 14-byte header; read the MACs in place rather
    // than through smoltcp's Address (which copies through a slice check).
    let mut key = FlowKey {
        in_port,
        eth_dst: mac_u64(&frame[0..6]),
        eth_src: mac_u64(&frame[6..12]),
        ..FlowKey::default()
    };
    let mut ethertype = u16::from(eth.ethertype());
    let mut payload = eth.payload();
    if ethertype == ETH_VLAN {
        if payload.len() < 4 {
            return Err(DropReason::RuntFrame);
        }
        key.vlan_tci = u16::from_be_bytes([payload[0], payload[1]]) | 0x1000;
        ethertype = u16::from_be_bytes([payload[2], payload[3]]);
        payload = &payload[4..];
    }
    key.eth_type = ethertype;
    match EthernetProtocol::from(ethertype) {
        EthernetProtocol::Ipv4 => parse_ipv4(payload, &mut key)?,
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(payload).map_err(|_| DropReason::MalformedArp)?;
            if arp.hardware_type() != ArpHardware::Ethernet
                || arp.protocol_type() != EthernetProtocol::Ipv4
                || arp.hardware_len() != 6
                || arp.protocol_len() != 4
            {
                return Err(DropReason::MalformedArp);
            }
            key.arp_op = match arp.operation() {
                ArpOperation::Request => 1,
                ArpOperation::Reply => 2,
                ArpOperation::Unknown(op) => op.min(255) as u8,
            };
            key.arp_sha = mac_u64(arp.source_hardware_addr());
            key.ip_src = u32::from_be_bytes(
                arp.source_protocol_addr()
                    .try_into()
                    .map_err(|_| DropReason::MalformedArp)?,
            );
            key.ip_dst = u32::from_be_bytes(
                arp.target_protocol_addr()
                    .try_into()
                    .map_err(|_| DropReason::MalformedArp)?,
            );
        }
        EthernetProtocol::Ipv6 => parse_ipv6(payload, &mut key)?,
        _ => {}
    }
    Ok(key)
}

fn parse_ipv4(payload: &[u8], key: &mut FlowKey) -> Result<(), DropReason> {
    let ip = Ipv4Packet::new_checked(payload).map_err(|_| DropReason::MalformedIp)?;
    if ip.version() != 4 || ip.header_len() < 20 {
        return Err(DropReason::MalformedIp);
    }
    key.ip_src = u32::from(ip.src_addr());
    key.ip_dst = u32::from(ip.dst_addr());
    key.ip_ttl = ip.hop_limit();
    let proto = ip.next_header();
    key.ip_proto = u8::from(proto);
    if ip.frag_offset() != 0 {
        if proto == IpProtocol::Tcp && ip.frag_offset() == 8 {
            // RFC 1858: a fragment at offset 8 can only be there to rewrite
            // the TCP header (flags) of the first one.
            return Err(DropReason::FragTiny);
        }
        key.ip_frag = crate::dp::flow::FRAG_LATER;
        return Ok(());
    }
    if ip.more_frags() {
        key.ip_frag = crate::dp::flow::FRAG_FIRST;
    }
    parse_l4(proto, ip.payload(), ip.more_frags(), key)
}

/// Most IPv6 extension headers walked before the upper-layer header: RFC
/// 8200's recommended order has at most six (hop-by-hop, destination
/// options, routing, fragment, authentication, destination options); a
/// longer chain is only there to make a parser work (RFC 9098).
pub const MAX_IPV6_EXT: usize = 6;

const IP6_HOP_BY_HOP: u8 = 0;
const IP6_ROUTING: u8 = 43;
const IP6_FRAGMENT: u8 = 44;
const IP6_AUTH: u8 = 51;
const IP6_DEST_OPTS: u8 = 60;
const ICMP6: u8 = 58;
/// ICMPv6 neighbor solicitation and advertisement (RFC 4861).
pub const ND_NS: u8 = 135;
pub const ND_NA: u8 = 136;

#[inline]
fn ip6_words(a: &[u8]) -> [u64; 2] {
    let w = |i: usize| u64::from_be_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
    [w(0), w(8)]
}

fn parse_ipv6(payload: &[u8], key: &mut FlowKey) -> Result<(), DropReason> {
    let ip = Ipv6Packet::new_checked(payload).map_err(|_| DropReason::MalformedIp)?;
    if ip.version() != 6 {
        return Err(DropReason::MalformedIp);
    }
    key.ip6_src = ip6_words(&payload[8..24]);
    key.ip6_dst = ip6_words(&payload[24..40]);
    key.ip_ttl = ip.hop_limit();
    // The extension-header chain, bounded: each header says how long it is
    // and what follows; a fragment header ends the walk at a later fragment.
    let mut nh = u8::from(ip.next_header());
    let mut rest = ip.payload();
    let mut more = false;
    let mut seen_frag = false;
    for n in 0..=MAX_IPV6_EXT {
        let len = match nh {
            IP6_HOP_BY_HOP | IP6_ROUTING | IP6_DEST_OPTS | IP6_AUTH | IP6_FRAGMENT
                if n == MAX_IPV6_EXT =>
            {
                return Err(DropReason::Ipv6ExtTooMany)
            }
            // Hop-by-hop options only directly after the IPv6 header.
            IP6_HOP_BY_HOP if n > 0 => return Err(DropReason::MalformedIpv6Ext),
            IP6_HOP_BY_HOP | IP6_ROUTING | IP6_DEST_OPTS => {
                8 * (usize::from(*rest.get(1).ok_or(DropReason::MalformedIpv6Ext)?) + 1)
            }
            IP6_AUTH => 4 * (usize::from(*rest.get(1).ok_or(DropReason::MalformedIpv6Ext)?) + 2),
            IP6_FRAGMENT => {
                if rest.len() < 8 || seen_frag {
                    return Err(DropReason::MalformedIpv6Ext);
                }
                seen_frag = true;
                let off = u16::from_be_bytes([rest[2], rest[3]]);
                let offset = usize::from(off >> 3) * 8;
                more = off & 1 != 0;
                nh = rest[0];
                rest = &rest[8..];
                if offset != 0 {
                    if nh == 6 && offset == 8 {
                        // As for IPv4 (RFC 1858): only there to rewrite
                        // the first fragment's TCP flags.
                        return Err(DropReason::FragTiny);
                    }
                    key.ip_proto = nh;
                    key.ip_frag = crate::dp::flow::FRAG_LATER;
                    return Ok(());
                }
                if more {
                    key.ip_frag = crate::dp::flow::FRAG_FIRST;
                }
                continue;
            }
            _ => break,
        };
        if rest.len() < len {
            return Err(DropReason::MalformedIpv6Ext);
        }
        nh = rest[0];
        rest = &rest[len..];
    }
    key.ip_proto = nh;
    if nh == ICMP6 {
        return parse_icmp6(rest, key);
    }
    parse_l4(IpProtocol::from(nh), rest, more, key)
}

/// ICMPv6: type and code in the L4 slots; a neighbor solicitation's or
/// advertisement's target and link-layer address option into the key.
fn parse_icmp6(l4: &[u8], key: &mut FlowKey) -> Result<(), DropReason> {
    if l4.len() < 4 {
        return Err(DropReason::MalformedL4);
    }
    key.l4_src = l4[0].into();
    key.l4_dst = l4[1].into();
    if !(l4[0] == ND_NS || l4[0] == ND_NA) || l4[1] != 0 {
        return Ok(());
    }
    if l4.len() < 24 {
        return Err(DropReason::MalformedL4);
    }
    key.nd_target = ip6_words(&l4[8..24]);
    // Options: type, length in 8-byte units (0 is invalid, RFC 4861 4.6).
    let want = if l4[0] == ND_NS { 1 } else { 2 };
    let mut opts = &l4[24..];
    while opts.len() >= 2 {
        let len = 8 * usize::from(opts[1]);
        if len == 0 || opts.len() < len {
            return Err(DropReason::MalformedL4);
        }
        if opts[0] == want && len == 8 {
            key.arp_sha = mac_u64(&opts[2..8]);
        }
        opts = &opts[len..];
    }
    Ok(())
}

/// Ports (TCP, UDP) or ICMP type and code from the upper-layer header.
fn parse_l4(
    proto: IpProtocol,
    l4: &[u8],
    more_frags: bool,
    key: &mut FlowKey,
) -> Result<(), DropReason> {
    match proto {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
            key.l4_src = t.src_port();
            key.l4_dst = t.dst_port();
        }
        IpProtocol::Udp if more_frags => {
            // A first fragment: its UDP length covers the whole datagram,
            // not this packet; only the header must be here.
            if l4.len() < 8 {
                return Err(DropReason::MalformedL4);
            }
            key.l4_src = u16::from_be_bytes([l4[0], l4[1]]);
            key.l4_dst = u16::from_be_bytes([l4[2], l4[3]]);
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(l4).map_err(|_| DropReason::MalformedL4)?;
            key.l4_src = u.src_port();
            key.l4_dst = u.dst_port();
        }
        IpProtocol::Icmp => {
            // ICMP type and code in the L4 port slots, as OVS does.
            if l4.len() < 4 {
                return Err(DropReason::MalformedL4);
            }
            key.l4_src = l4[0].into();
            key.l4_dst = l4[1].into();
        }
        _ => {}
    }
    Ok(())
}

/// Rewrites an ARP request in place into the reply that `mac` owns `arp.tpa`.
/// The frame was validated by [`extract`] as an Ethernet/IPv4 ARP request.
pub fn arp_reply_in_place(frame: &mut [u8], mac: u64) {
    let mac_b = &mac.to_be_bytes()[2..];
    let vlan = u16::from_be_bytes([frame[12], frame[13]]) == ETH_VLAN;
    let arp_off = ETH_HDR + if vlan { 4 } else { 0 };
    let (eth, rest) = frame.split_at_mut(arp_off);
    // eth.dst = requester, eth.src = answering MAC
    let (dst, src) = eth.split_at_mut(6);
    dst.copy_from_slice(&src[..6]);
    src[..6].copy_from_slice(mac_b);
    let mut arp = ArpPacket::new_unchecked(rest);
    let sha: [u8; 6] = arp.source_hardware_addr().try_into().unwrap_or([0; 6]);
    let spa: [u8; 4] = arp.source_protocol_addr().try_into().unwrap_or([0; 4]);
    let tpa: [u8; 4] = arp.target_protocol_addr().try_into().unwrap_or([0; 4]);
    arp.set_operation(ArpOperation::Reply);
    arp.set_source_hardware_addr(mac_b);
    arp.set_source_protocol_addr(&tpa);
    arp.set_target_hardware_addr(&sha);
    arp.set_target_protocol_addr(&spa);
}

/// Applies a routing rewrite in place: MACs, and the IPv4 TTL lowered by the
/// hops crossed with the header checksum updated incrementally (RFC 1624,
/// eqn. 3), so every other header bit is preserved; or the IPv6 hop limit
/// (no header checksum). The frame was parsed by
/// [`extract`]; a frame too short for what it claims is left untouched.
pub fn apply_rewrite(frame: &mut [u8], rw: &crate::dp::verdict::Rewrite) {
    if frame.len() < ETH_HDR {
        return;
    }
    frame[0..6].copy_from_slice(&rw.eth_dst.to_be_bytes()[2..]);
    frame[6..12].copy_from_slice(&rw.eth_src.to_be_bytes()[2..]);
    if rw.ttl_dec == 0 {
        return;
    }
    let ip = if u16::from_be_bytes([frame[12], frame[13]]) == ETH_VLAN {
        ETH_HDR + 4
    } else {
        ETH_HDR
    };
    if frame.len() >= ip + 40 && frame[ip] >> 4 == 6 {
        frame[ip + 7] = frame[ip + 7].saturating_sub(rw.ttl_dec);
        return;
    }
    if frame.len() < ip + 20 || frame[ip] >> 4 != 4 {
        return;
    }
    let old = u16::from_be_bytes([frame[ip + 8], frame[ip + 9]]);
    let ttl = frame[ip + 8].saturating_sub(rw.ttl_dec);
    frame[ip + 8] = ttl;
    let new = u16::from_be_bytes([frame[ip + 8], frame[ip + 9]]);
    let hc = u16::from_be_bytes([frame[ip + 10], frame[ip + 11]]);
    frame[ip + 10..ip + 12].copy_from_slice(&super::csum::update16(hc, old, new).to_be_bytes());
}

#[cfg(test)]
#[path = "packet/ipv6_tests.rs"]
mod ipv6_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real ARP request: 0a:00:00:00:00:01 (10.0.0.1) asks who has 10.0.0.2.
    pub static ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00,
        0x01, // htype, ptype, hlen, plen, op=request
        0x0a, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha, spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // tha, tpa
    ];

    /// A real UDP/IPv4 frame 10.0.0.1:1234 -> 10.0.0.2:5678 with valid checksums.
    pub fn udp_frame(src_mac: u64, dst_mac: u64, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac.to_be_bytes()[2..]);
        f.extend_from_slice(&src_mac.to_be_bytes()[2..]);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, src[0], src[1],
            src[2], src[3], dst[0], dst[1], dst[2], dst[3],
        ];
        let sum = crate::dp::csum::checksum(&ip, 0);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[
            0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g',
        ]);
        f
    }

    #[test]
    fn extracts_arp() {
        let k = extract(&ARP_REQUEST, 3).unwrap();
        assert_eq!(k.in_port, 3);
        assert_eq!(k.eth_type, 0x0806);
        assert_eq!(k.eth_dst, 0xffff_ffff_ffff);
        assert_eq!(k.arp_op, 1);
        assert_eq!(k.arp_sha, 0x0a00_0000_0001);
        assert_eq!(k.ip_src, 0x0a00_0001);
        assert_eq!(k.ip_dst, 0x0a00_0002);
    }

    #[test]
    fn extracts_udp() {
        let f = udp_frame(1, 2, [10, 0, 0, 1], [10, 0, 0, 2]);
        let k = extract(&f, 0).unwrap();
        assert_eq!((k.eth_src, k.eth_dst, k.eth_type), (1, 2, 0x0800));
        assert_eq!(
            (k.ip_src, k.ip_dst, k.ip_proto, k.ip_ttl),
            (0x0a00_0001, 0x0a00_0002, 17, 64)
        );
        assert_eq!((k.l4_src, k.l4_dst), (1234, 5678));
    }

    #[test]
    fn malformed_frames_are_classified_not_panicked() {
        let good = udp_frame(1, 2, [10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(extract(&good[..10], 0), Err(DropReason::RuntFrame));
        assert_eq!(extract(&good[..14 + 12], 0), Err(DropReason::MalformedIp));
        let mut bad_ihl = good.clone();
        bad_ihl[14] = 0x43; // IHL 3 words
        assert_eq!(extract(&bad_ihl, 0), Err(DropReason::MalformedIp));
        let mut bad_ver = good.clone();
        bad_ver[14] = 0x65;
        assert_eq!(extract(&bad_ver, 0), Err(DropReason::MalformedIp));
        let mut long_total = good.clone();
        long_total[17] = 0xff; // total length beyond the frame
        assert_eq!(extract(&long_total, 0), Err(DropReason::MalformedIp));
        assert_eq!(
            extract(&ARP_REQUEST[..30], 0),
            Err(DropReason::MalformedArp)
        );
        let mut short_udp = good.clone();
        short_udp[17] = 24; // IP total 24: only 4 bytes of UDP
        assert_eq!(
            extract(&short_udp[..14 + 24], 0),
            Err(DropReason::MalformedL4)
        );
        // Every truncation of a valid frame is either accepted or a drop reason.
        for n in 0..good.len() {
            let _ = extract(&good[..n], 0);
            let _ = extract(&ARP_REQUEST[..n.min(42)], 0);
        }
    }

    #[test]
    fn fragments_first_with_ports_later_without_tiny_tcp_refused() {
        let mut f = udp_frame(1, 2, [10, 0, 0, 1], [10, 0, 0, 2]);
        // A first fragment: the UDP length says more than this packet holds.
        f[14 + 6] = 0x20; // MF
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&3008u16.to_be_bytes());
        let k = extract(&f, 0).unwrap();
        assert_eq!((k.l4_src, k.l4_dst, k.ip_frag), (1234, 5678, 2));
        // A later one: no ports.
        f[14 + 6..14 + 8].copy_from_slice(&185u16.to_be_bytes());
        let k = extract(&f, 0).unwrap();
        assert_eq!((k.l4_src, k.l4_dst, k.ip_frag), (0, 0, 1));
        // RFC 1858: TCP at offset 8 bytes.
        f[14 + 9] = 6;
        f[14 + 6..14 + 8].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(extract(&f, 0), Err(DropReason::FragTiny));
    }

    #[test]
    fn arp_reply_rewrite() {
        let mut f = ARP_REQUEST;
        arp_reply_in_place(&mut f, 0x0a00_0000_0002);
        let k = extract(&f, 0).unwrap();
        assert_eq!(k.arp_op, 2);
        assert_eq!(k.eth_dst, 0x0a00_0000_0001);
        assert_eq!(k.eth_src, 0x0a00_0000_0002);
        assert_eq!(k.arp_sha, 0x0a00_0000_0002);
        assert_eq!(k.ip_src, 0x0a00_0002);
        assert_eq!(k.ip_dst, 0x0a00_0001);
        assert_eq!(&f[32..38], &[0x0a, 0, 0, 0, 0, 1]); // tha = requester
    }

    #[test]
    fn routing_rewrite_keeps_the_ip_checksum_valid() {
        use smoltcp::wire::Ipv4Packet;
        for ttl in [64u8, 1, 2, 255, 0x80] {
            let mut f = udp_frame(1, 2, [10, 0, 0, 1], [10, 1, 0, 2]);
            f[14 + 8] = ttl;
            Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
            let rw = crate::dp::verdict::Rewrite {
                eth_src: 0x0a00_0000_00aa,
                eth_dst: 0x0a00_0000_00bb,
                ttl_dec: 1,
            };
            apply_rewrite(&mut f, &rw);
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum(), "ttl {ttl}");
            assert_eq!(ip.hop_limit(), ttl.saturating_sub(1));
            assert_eq!(ip.ident(), 0x1234, "other header bits are preserved");
            let k = extract(&f, 0).unwrap();
            assert_eq!((k.eth_src, k.eth_dst), (0x0a00_0000_00aa, 0x0a00_0000_00bb));
        }
    }
}
