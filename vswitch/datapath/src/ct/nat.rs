//! Header work for conntrack and NAT on a received frame: the connection tuple
//! and TCP segment facts of a packet, the in-place rewrite of addresses and
//! ports with incremental checksum updates (RFC 1624, [`crate::dp::csum`]).
//! Frames were validated by
//! [`crate::dp::packet::extract`]; anything shorter than it claims is left alone.

use crate::ct::conntrack::{TcpInfo, Tuple};
use crate::dp::csum::{checksum, update16, update32};
use crate::dp::flow::FlowKey;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMP6: u8 = 58;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
/// Extension headers walked to find an IPv6 packet's L4 header: the parser
/// ([`crate::dp::packet`]) refused longer chains before anything gets here.
const MAX_IPV6_EXT: usize = 6;

/// Offsets of the IPv4 and L4 headers in an Ethernet frame (untagged or
/// 802.1Q), when the frame holds that much.
#[inline]
fn offsets(frame: &[u8]) -> Option<(usize, usize)> {
    if frame.len() < 34 {
        return None;
    }
    let ip = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    let ihl = usize::from(*frame.get(ip)? & 0x0f) * 4;
    let l4 = ip + ihl;
    (ihl >= 20 && frame.len() >= l4 + 8).then_some((ip, l4))
}

/// Offsets of the IPv6 header and of the L4 header behind its extension
/// headers, when the frame holds that much and 8 bytes of L4.
#[inline]
fn offsets6(frame: &[u8]) -> Option<(usize, usize)> {
    let ip = if frame.get(12..14)? == [0x81, 0x00] {
        18
    } else {
        14
    };
    let (_, l4) = l4_of6(frame, ip)?;
    (frame.len() >= l4 + 8).then_some((ip, l4))
}

/// The L4 protocol and offset of the IPv6 header at `ip`, past its extension
/// headers (hop-by-hop, routing, destination options, authentication, a first
/// fragment's header). Received chains were validated by the parser; a quoted
/// one in an ICMPv6 error was not, so the walk is bounded and checked.
#[inline]
fn l4_of6(frame: &[u8], ip: usize) -> Option<(u8, usize)> {
    let mut nh = *frame.get(ip + 6)?;
    let mut at = ip + 40;
    for _ in 0..MAX_IPV6_EXT {
        let len = match nh {
            0 | 43 | 60 => 8 * (usize::from(*frame.get(at + 1)?) + 1),
            51 => 4 * (usize::from(*frame.get(at + 1)?) + 2),
            44 => 8,
            _ => return Some((nh, at)),
        };
        nh = *frame.get(at)?;
        at += len;
    }
    // Still an extension header after the bound: not walked further.
    (!matches!(nh, 0 | 43 | 44 | 51 | 60)).then_some((nh, at))
}

/// The 128-bit value of two 64-bit key halves (high first).
#[inline]
pub fn words128(w: [u64; 2]) -> u128 {
    u128::from(w[0]) << 64 | u128::from(w[1])
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be128(b: &[u8], at: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    u128::from_be_bytes(a)
}

/// The conntrack tuple of a packet in `zone`: TCP/UDP ports, or for ICMP
/// (and ICMPv6) echo the identifier as source port (requests) or destination
/// port (replies), so that both directions of a ping map to one connection.
/// `None` for packets conntrack does not follow (other protocols, ICMP errors,
/// later fragments).
#[inline]
pub fn tuple_of(key: &FlowKey, frame: &[u8], zone: u32) -> Option<Tuple> {
    if key.ip_frag == crate::dp::flow::FRAG_LATER {
        return None;
    }
    let v6 = match key.eth_type {
        0x0800 => false,
        0x86dd => true,
        _ => return None,
    };
    let (sport, dport) = match (key.ip_proto, v6) {
        (TCP | UDP, _) => (key.l4_src, key.l4_dst),
        (ICMP, false) => {
            let (_, l4) = offsets(frame)?;
            let id = be16(frame, l4 + 4);
            match frame[l4] {
                ICMP_ECHO_REQUEST => (id, 0),
                ICMP_ECHO_REPLY => (0, id),
                _ => return None,
            }
        }
        (ICMP6, true) => {
            let (_, l4) = offsets6(frame)?;
            let id = be16(frame, l4 + 4);
            match frame[l4] {
                ICMP6_ECHO_REQUEST => (id, 0),
                ICMP6_ECHO_REPLY => (0, id),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(key_tuple(key, zone, sport, dport))
}

/// The tuple of a key of either family (by its EtherType), with the ports given.
#[inline]
pub fn key_tuple(key: &FlowKey, zone: u32, sport: u16, dport: u16) -> Tuple {
    let v6 = key.eth_type == 0x86dd;
    let (src, dst) = if v6 {
        (words128(key.ip6_src), words128(key.ip6_dst))
    } else {
        (key.ip_src.into(), key.ip_dst.into())
    };
    Tuple {
        zone,
        proto: key.ip_proto,
        v6,
        src,
        dst,
        sport,
        dport,
    }
}

/// The TCP facts conntrack's state machine needs, of an IPv4 or (`v6`) an
/// IPv6 segment.
#[inline]
pub fn tcp_info(frame: &[u8], v6: bool) -> Option<TcpInfo> {
    let (ip, l4) = if v6 {
        offsets6(frame)?
    } else {
        offsets(frame)?
    };
    if frame.len() < l4 + 20 {
        return None;
    }
    // Bytes from the IP header's start to the end of its payload.
    let total = if v6 {
        40 + usize::from(be16(frame, ip + 4))
    } else {
        usize::from(be16(frame, ip + 2))
    };
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    let payload = total.saturating_sub(l4 - ip + doff);
    Some(TcpInfo {
        flags: frame[l4 + 13],
        seq: be32(frame, l4 + 4),
        ack: be32(frame, l4 + 8),
        window: u32::from(be16(frame, l4 + 14)),
        payload_len: payload as u32,
    })
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Rewrites the packet whose tuple is `from` so that it carries `to`: IPv4
/// addresses (header checksum and the L4 pseudo-header checksum follow) and
/// ports (or the ICMP echo identifier). Returns false if the frame is too short.
#[inline]
pub fn rewrite(frame: &mut [u8], from: &Tuple, to: &Tuple) -> bool {
    if from.v6 || to.v6 {
        return false; // IPv6 translation is not done at the edge (docs/ipv6.md)
    }
    let Some((ip, l4)) = offsets(frame) else {
        return false;
    };
    // Where the L4 checksum is, and whether it covers the pseudo-header.
    let (csum_at, pseudo) = match from.proto {
        TCP if frame.len() >= l4 + 20 => (Some(l4 + 16), true),
        TCP => return false,
        // UDP checksum 0: none was computed; leave it so.
        UDP => ((be16(frame, l4 + 6) != 0).then_some(l4 + 6), true),
        ICMP => (Some(l4 + 2), false),
        _ => (None, false),
    };
    let mut ip_sum = be16(frame, ip + 10);
    let mut l4_sum = csum_at.map(|a| be16(frame, a)).unwrap_or(0);
    for (at, old, new) in [
        (ip + 12, from.src4(), to.src4()),
        (ip + 16, from.dst4(), to.dst4()),
    ] {
        if old != new {
            frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
            ip_sum = update32(ip_sum, old, new);
            if pseudo {
                l4_sum = update32(l4_sum, old, new);
            }
        }
    }
    if from.proto == ICMP {
        // The echo identifier sits in the slot that is not 0.
        let (old, new) = if from.sport != 0 || to.sport != 0 {
            (from.sport, to.sport)
        } else {
            (from.dport, to.dport)
        };
        if old != new {
            put16(frame, l4 + 4, new);
            l4_sum = update16(l4_sum, old, new);
        }
    } else {
        for (at, old, new) in [(l4, from.sport, to.sport), (l4 + 2, from.dport, to.dport)] {
            if old != new {
                put16(frame, at, new);
                l4_sum = update16(l4_sum, old, new);
            }
        }
    }
    put16(frame, ip + 10, ip_sum);
    if let Some(a) = csum_at {
        // A computed UDP checksum of 0 is sent as 0xffff (RFC 768).
        let v = if from.proto == UDP && l4_sum == 0 {
            0xffff
        } else {
            l4_sum
        };
        put16(frame, a, v);
    }
    true
}

/// The IPv4 destination of a frame.
#[inline]
pub fn ipv4_dst(frame: &[u8]) -> Option<u32> {
    let (ip, _) = offsets(frame)?;
    Some(be32(frame, ip + 16))
}

/// The ICMP (and ICMPv6: unreachable, too big, time exceeded, parameter
/// problem) error types that quote the packet they answer.
#[inline]
pub fn is_icmp_error(key: &FlowKey) -> bool {
    match (key.eth_type, key.ip_proto) {
        (0x0800, ICMP) => matches!(key.l4_src, 3 | 11 | 12),
        (0x86dd, ICMP6) => matches!(key.l4_src, 1..=4),
        _ => false,
    }
}

/// The tuple of the connection an ICMP error is about, as the *reply* to the
/// quoted packet would carry it (the quoted packet went the other way): so a
/// lookup finds the direction the error travels in.
pub fn icmp_error_tuple(frame: &[u8], zone: u32) -> Option<Tuple> {
    if let Some((_, l4)) = offsets6(frame).filter(|&(ip, _)| frame[ip] >> 4 == 6) {
        return icmp6_error_tuple(frame, l4 + 8, zone);
    }
    let (_, l4) = offsets(frame)?;
    let inner = l4 + 8;
    let ihl = usize::from(*frame.get(inner)? & 0x0f) * 4;
    if frame[inner] >> 4 != 4 || ihl < 20 || frame.len() < inner + ihl + 8 {
        return None;
    }
    let proto = frame[inner + 9];
    let (src, dst) = (be32(frame, inner + 12), be32(frame, inner + 16));
    let il4 = inner + ihl;
    let (sport, dport) = match proto {
        TCP | UDP => (be16(frame, il4), be16(frame, il4 + 2)),
        ICMP if frame[il4] == ICMP_ECHO_REQUEST => (be16(frame, il4 + 4), 0),
        _ => return None,
    };
    Some(Tuple {
        zone,
        proto,
        v6: false,
        src: dst.into(),
        dst: src.into(),
        sport: if proto == ICMP { 0 } else { dport },
        dport: sport,
    })
}

/// [`icmp_error_tuple`] for an ICMPv6 error quoting the IPv6 packet at `inner`.
fn icmp6_error_tuple(frame: &[u8], inner: usize, zone: u32) -> Option<Tuple> {
    if *frame.get(inner)? >> 4 != 6 || frame.len() < inner + 40 {
        return None;
    }
    let (proto, il4) = l4_of6(frame, inner)?;
    if frame.len() < il4 + 8 {
        return None;
    }
    let (src, dst) = (be128(frame, inner + 8), be128(frame, inner + 24));
    let (sport, dport) = match proto {
        TCP | UDP => (be16(frame, il4), be16(frame, il4 + 2)),
        ICMP6 if frame[il4] == ICMP6_ECHO_REQUEST => (be16(frame, il4 + 4), 0),
        _ => return None,
    };
    Some(Tuple {
        zone,
        proto,
        v6: true,
        src: dst,
        dst: src,
        sport: if proto == ICMP6 { 0 } else { dport },
        dport: sport,
    })
}

/// Rewrites an ICMP error so that it fits the translated connection: `to` is
/// the tuple the error's direction is translated to; the outer destination
/// becomes `to.dst`, the outer source `to.src` when the error came from the
/// connection's peer itself (not from a router on the way), and the quoted
/// packet becomes `to` reversed. Checksums are recomputed (errors are rare).
pub fn rewrite_icmp_error(frame: &mut [u8], from: &Tuple, to: &Tuple) -> bool {
    if from.v6 || to.v6 {
        return false;
    }
    let Some((ip, l4)) = offsets(frame) else {
        return false;
    };
    let inner = l4 + 8;
    let ihl = usize::from(frame[inner] & 0x0f) * 4;
    let il4 = inner + ihl;
    if frame.len() < il4 + 8 {
        return false;
    }
    if be32(frame, ip + 12) == from.src4() {
        frame[ip + 12..ip + 16].copy_from_slice(&to.src4().to_be_bytes());
    }
    frame[ip + 16..ip + 20].copy_from_slice(&to.dst4().to_be_bytes());
    put16(frame, ip + 10, 0);
    let s = checksum(&frame[ip..l4], 0);
    put16(frame, ip + 10, s);
    // The quoted packet: from to.dst:to.dport to to.src:to.sport.
    frame[inner + 12..inner + 16].copy_from_slice(&to.dst4().to_be_bytes());
    frame[inner + 16..inner + 20].copy_from_slice(&to.src4().to_be_bytes());
    put16(frame, inner + 10, 0);
    let s = checksum(&frame[inner..il4], 0);
    put16(frame, inner + 10, s);
    if to.proto == ICMP {
        put16(frame, il4 + 4, to.dport);
    } else {
        put16(frame, il4, to.dport);
        put16(frame, il4 + 2, to.sport);
    }
    let total = usize::from(be16(frame, ip + 2));
    let end = (ip + total).min(frame.len());
    if end < il4 + 8 {
        return false;
    }
    put16(frame, l4 + 2, 0);
    let s = checksum(&frame[l4..end], 0);
    put16(frame, l4 + 2, s);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dp::packet::extract;
    use crate::dp::packet::tests::udp_frame;

    fn verify_ip(frame: &[u8]) -> bool {
        checksum(&frame[14..34], 0) == 0
    }

    fn verify_l4(frame: &[u8]) -> bool {
        let total = usize::from(be16(frame, 16));
        let l4 = &frame[34..14 + total];
        let mut pseudo = [0u8; 12];
        pseudo[0..8].copy_from_slice(&frame[26..34]);
        pseudo[9] = frame[23];
        put16(&mut pseudo, 10, l4.len() as u16);
        checksum(l4, !checksum(&pseudo, 0)) == 0
    }

    /// The test frame with its UDP checksum computed (the helper leaves 0).
    fn checked_udp() -> Vec<u8> {
        let mut f = udp_frame(0x0a0000000001, 0x0a0000000002, [10, 0, 0, 1], [10, 0, 0, 2]);
        let mut pseudo = [0u8; 12];
        pseudo[0..8].copy_from_slice(&f[26..34]);
        pseudo[9] = UDP;
        put16(&mut pseudo, 10, (f.len() - 34) as u16);
        let s = checksum(&f[34..], !checksum(&pseudo, 0));
        put16(&mut f, 40, s);
        f
    }

    #[test]
    fn dnat_and_snat_keep_checksums_valid() {
        let mut f = checked_udp();
        assert!(verify_ip(&f) && verify_l4(&f));
        let key = extract(&f, 1).unwrap();
        let from = tuple_of(&key, &f, 7).unwrap();
        let to = Tuple {
            src: u32::from_be_bytes([192, 168, 1, 1]).into(),
            sport: 40000,
            dst: u32::from_be_bytes([10, 244, 1, 5]).into(),
            dport: 8080,
            ..from
        };
        assert!(rewrite(&mut f, &from, &to));
        assert!(verify_ip(&f), "IP header checksum after NAT");
        assert!(verify_l4(&f), "UDP checksum after NAT");
        let k2 = extract(&f, 1).unwrap();
        assert_eq!(tuple_of(&k2, &f, 7), Some(to));
        // And back.
        assert!(rewrite(&mut f, &to, &from));
        assert_eq!(f, checked_udp());
    }

    #[test]
    fn malformed_frames_are_left_alone() {
        let from = Tuple {
            proto: TCP,
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            sport: 1,
            dport: 2,
            ..Tuple::default()
        };
        let to = Tuple {
            dst: 0x0a00_0099,
            dport: 99,
            ..from
        };
        // Too short for an IPv4 header plus the L4 bytes the rewrite touches:
        // refused, and not one byte changed.
        for len in [0, 13, 20, 33, 40] {
            let orig = vec![0x45u8; len];
            let mut f = orig.clone();
            assert!(!rewrite(&mut f, &from, &to), "len {len}");
            assert_eq!(f, orig, "len {len}: the frame was touched");
            assert_eq!(tcp_info(&f, false), None, "len {len}");
        }
    }

    /// Ethernet + IPv6 (fd00::a -> fd00::b) + optional hop-by-hop header +
    /// `l4` (next header `nh`).
    fn frame6(nh: u8, l4: &[u8], hop_by_hop: bool) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let ext = if hop_by_hop { 8 } else { 0 };
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        put16(&mut ip, 4, (ext + l4.len()) as u16);
        ip[6] = if hop_by_hop { 0 } else { nh };
        ip[7] = 64;
        ip[8] = 0xfd;
        ip[23] = 0x0a;
        ip[24] = 0xfd;
        ip[39] = 0x0b;
        f.extend_from_slice(&ip);
        if hop_by_hop {
            f.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]); // PadN
        }
        f.extend_from_slice(l4);
        f
    }

    #[test]
    fn ipv6_tcp_behind_an_extension_header_has_its_tuple_and_segment() {
        let mut tcp = [0u8; 20 + 100];
        put16(&mut tcp, 0, 40000);
        put16(&mut tcp, 2, 80);
        tcp[4..8].copy_from_slice(&7u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        put16(&mut tcp, 14, 1000);
        for hbh in [false, true] {
            let f = frame6(TCP, &tcp, hbh);
            let key = extract(&f, 1).unwrap();
            let t = tuple_of(&key, &f, 3).expect("tracked");
            assert!(t.v6 && t.proto == TCP && (t.sport, t.dport) == (40000, 80));
            assert_eq!(t.src, 0xfd00_0000_0000_0000_0000_0000_0000_000a);
            assert_eq!(t.dst, 0xfd00_0000_0000_0000_0000_0000_0000_000b);
            let s = tcp_info(&f, true).expect("a segment");
            assert_eq!((s.flags, s.seq, s.payload_len), (0x02, 7, 100), "hbh {hbh}");
            // IPv4's rewrite never touches an IPv6 frame.
            let mut g = f.clone();
            assert!(!rewrite(&mut g, &t, &Tuple { dport: 81, ..t }));
            assert_eq!(g, f);
        }
    }

    #[test]
    fn ipv6_echo_and_errors_map_to_one_connection() {
        let mut echo = [0u8; 16];
        echo[0] = ICMP6_ECHO_REQUEST;
        put16(&mut echo, 4, 0x1234);
        let req = frame6(ICMP6, &echo, false);
        let t = tuple_of(&extract(&req, 1).unwrap(), &req, 3).expect("request");
        assert_eq!((t.proto, t.sport, t.dport), (ICMP6, 0x1234, 0));
        // The reply, from fd00::b: the same connection reversed.
        let mut rep = frame6(ICMP6, &[ICMP6_ECHO_REPLY, 0, 0, 0, 0x12, 0x34, 0, 0], false);
        rep[14 + 8..14 + 24].copy_from_slice(&req[14 + 24..14 + 40]);
        rep[14 + 24..14 + 40].copy_from_slice(&req[14 + 8..14 + 24]);
        let r = tuple_of(&extract(&rep, 1).unwrap(), &rep, 3).expect("reply");
        assert_eq!(r, t.reverse());
        // Time exceeded about the request, sent back to fd00::a: related,
        // with the tuple of the connection's reply direction.
        let mut err = vec![0u8; 200];
        let n = crate::dp::generate6::icmp6_error(&req, &mut err, [0xfd00 << 48, 1], 3, 0, 0)
            .expect("an error");
        err.truncate(n);
        let key = extract(&err, 1).unwrap();
        assert!(is_icmp_error(&key) && tuple_of(&key, &err, 3).is_none());
        assert_eq!(icmp_error_tuple(&err, 3), Some(t.reverse()));
        // A truncated quote is no tuple, and no panic.
        for len in 14 + 40 + 8..err.len() {
            let _ = icmp_error_tuple(&err[..len], 3);
        }
    }
}
