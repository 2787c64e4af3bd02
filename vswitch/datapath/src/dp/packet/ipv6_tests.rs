//! IPv6 parsing: the extension-header walk and its bound, fragments, ND.

use super::*;
use crate::dp::flow::{FRAG_FIRST, FRAG_LATER};

const SRC: [u8; 16] = [0xfd, 0, 0, 0x10, 2, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
const DST: [u8; 16] = [0xfd, 0, 0, 0x10, 2, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3];

/// Ethernet + IPv6 carrying `chain` (extension headers, then the
/// upper-layer bytes) whose first header is `nh`.
fn ip6_frame(nh: u8, chain: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(chain.len() as u16).to_be_bytes());
    f.extend_from_slice(&[nh, 64]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&DST);
    f.extend_from_slice(chain);
    f
}

/// An 8-byte options header (hop-by-hop or destination options) followed by `next`.
fn opts(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

fn tcp_header() -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&5201u16.to_be_bytes());
    t[12] = 0x50;
    t
}

#[test]
fn addresses_ports_and_hop_limit() {
    let mut chain = opts(60).to_vec();
    chain.extend_from_slice(&opts(6));
    chain.extend_from_slice(&tcp_header());
    let k = extract(&ip6_frame(0, &chain), 1).unwrap();
    assert_eq!(k.eth_type, 0x86dd);
    assert_eq!(k.ip6_src, [0xfd00_0010_0244_0001, 2]);
    assert_eq!(k.ip6_dst, [0xfd00_0010_0244_0001, 3]);
    assert_eq!(
        (k.ip_proto, k.ip_ttl, k.l4_src, k.l4_dst),
        (6, 64, 40000, 5201)
    );
    assert_eq!((k.ip_src, k.ip_dst, k.ip_frag), (0, 0, 0));
}

#[test]
fn the_chain_is_bounded_and_checked() {
    // Six destination-options headers then TCP: walked.
    let mut chain = Vec::new();
    for _ in 0..MAX_IPV6_EXT - 1 {
        chain.extend_from_slice(&opts(60));
    }
    chain.extend_from_slice(&opts(6));
    chain.extend_from_slice(&tcp_header());
    assert_eq!(extract(&ip6_frame(60, &chain), 0).unwrap().l4_dst, 5201);
    // A seventh: refused, whatever follows.
    let mut longer = opts(60).to_vec();
    longer.extend_from_slice(&chain);
    assert_eq!(
        extract(&ip6_frame(60, &longer), 0),
        Err(DropReason::Ipv6ExtTooMany)
    );
    // Hop-by-hop anywhere but first.
    let mut late_hbh = opts(0).to_vec();
    late_hbh.extend_from_slice(&opts(6));
    late_hbh.extend_from_slice(&tcp_header());
    assert_eq!(
        extract(&ip6_frame(60, &late_hbh), 0),
        Err(DropReason::MalformedIpv6Ext)
    );
    // A header longer than what is left.
    let mut long = opts(6);
    long[1] = 3;
    assert_eq!(
        extract(&ip6_frame(60, &long), 0),
        Err(DropReason::MalformedIpv6Ext)
    );
    // Every truncation is a drop reason or a key, never a panic.
    let f = ip6_frame(60, &chain);
    for n in 0..f.len() {
        let _ = extract(&f[..n], 0);
    }
}

#[test]
fn fragments_first_later_and_tiny() {
    // Fragment header: next, reserved, offset<<3 | M, identification.
    let frag = |next: u8, offset: u16, more: bool| {
        let o = (offset / 8) << 3 | u16::from(more);
        let mut h = vec![next, 0];
        h.extend_from_slice(&o.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 7]);
        h
    };
    let mut first = frag(6, 0, true);
    first.extend_from_slice(&tcp_header());
    let k = extract(&ip6_frame(44, &first), 0).unwrap();
    assert_eq!((k.ip_frag, k.ip_proto, k.l4_dst), (FRAG_FIRST, 6, 5201));
    let mut later = frag(17, 1448, false);
    later.extend_from_slice(&[0; 16]);
    let k = extract(&ip6_frame(44, &later), 0).unwrap();
    assert_eq!((k.ip_frag, k.ip_proto, k.l4_src), (FRAG_LATER, 17, 0));
    let mut tiny = frag(6, 8, false);
    tiny.extend_from_slice(&[0; 16]);
    assert_eq!(extract(&ip6_frame(44, &tiny), 0), Err(DropReason::FragTiny));
    // Two fragment headers in one packet.
    let mut twice = frag(44, 0, true);
    twice.extend_from_slice(&frag(6, 0, true));
    twice.extend_from_slice(&tcp_header());
    assert_eq!(
        extract(&ip6_frame(44, &twice), 0),
        Err(DropReason::MalformedIpv6Ext)
    );
}

/// A neighbor solicitation for DST from SRC with a source link-layer option.
pub(crate) fn ns(target: [u8; 16], sll: Option<[u8; 6]>) -> Vec<u8> {
    let mut icmp = vec![ND_NS, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target);
    if let Some(mac) = sll {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&mac);
    }
    let mut f = ip6_frame(58, &icmp);
    f[14 + 7] = 255;
    f
}

#[test]
fn neighbor_discovery_target_and_link_layer_address() {
    let k = extract(&ns(DST, Some([0x0a, 0, 0, 0, 0, 1])), 0).unwrap();
    assert_eq!((k.ip_proto, k.l4_src, k.l4_dst), (58, 135, 0));
    assert_eq!(k.nd_target, [0xfd00_0010_0244_0001, 3]);
    assert_eq!((k.arp_sha, k.ip_ttl), (0x0a00_0000_0001, 255));
    // Without the option: no link-layer address.
    assert_eq!(extract(&ns(DST, None), 0).unwrap().arp_sha, 0);
    // An option of length 0 (RFC 4861: invalid) or past the end.
    let mut zero = ns(DST, Some([0x0a, 0, 0, 0, 0, 1]));
    let opt = 14 + 40 + 24;
    zero[opt + 1] = 0;
    assert_eq!(extract(&zero, 0), Err(DropReason::MalformedL4));
    zero[opt + 1] = 2;
    assert_eq!(extract(&zero, 0), Err(DropReason::MalformedL4));
    // An NA carries the target link-layer address (option 2).
    let mut na = ns(SRC, None);
    na[14 + 40] = ND_NA;
    na.extend_from_slice(&[2, 1, 0x0a, 0, 0, 0, 0, 9]);
    let len = (na.len() - 14 - 40) as u16;
    na[18..20].copy_from_slice(&len.to_be_bytes());
    let k = extract(&na, 0).unwrap();
    assert_eq!((k.l4_src, k.arp_sha), (136, 0x0a00_0000_0009));
    assert_eq!(k.nd_target, [0xfd00_0010_0244_0001, 2]);
    // Truncated before the target.
    let short = ip6_frame(58, &[ND_NS, 0, 0, 0, 0, 0, 0, 0, 0xfd]);
    assert_eq!(extract(&short, 0), Err(DropReason::MalformedL4));
}
