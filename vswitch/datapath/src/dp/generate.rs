//! Packets the router generates: ICMP errors (time exceeded, unreachable,
//! fragmentation needed), ICMP echo replies, ARP requests and TCP resets (from
//! a router's own IP or a VIP without backends), written into a
//! caller-owned buffer with smoltcp's views. Ethernet addresses are left for the
//! pipeline to set (the generated packet is routed like any other). Each builder
//! returns `None` when the input does not warrant an answer (RFC 1812: no ICMP
//! error about an ICMP error, a fragment or a broadcast) or does not fit.

use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet,
    TcpPacket, TcpSeqNumber,
};

const ETH: usize = 14;
const IP: usize = 20;
const ICMP_HDR: usize = 8;
const TCP_HDR: usize = 20;
/// How much of the offending datagram an ICMP error quotes (RFC 1812 allows up
/// to 576 bytes in all; header + 8 bytes is the minimum traceroute and PMTUD need).
const QUOTE: usize = 128;

/// The IPv4 packet in an untagged or 802.1Q-tagged Ethernet frame.
fn ipv4_of(frame: &[u8]) -> Option<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (ty, off) = match u16::from(eth.ethertype()) {
        0x8100 if frame.len() >= ETH + 4 => (u16::from_be_bytes([frame[16], frame[17]]), ETH + 4),
        t => (t, ETH),
    };
    (ty == 0x0800).then(|| &frame[off..])
}

fn write_eth(buf: &mut [u8], src: u64, dst: u64, ty: EthernetProtocol) {
    let mut e = EthernetFrame::new_unchecked(&mut buf[..ETH]);
    e.set_dst_addr(smoltcp::wire::EthernetAddress::from_bytes(
        &dst.to_be_bytes()[2..],
    ));
    e.set_src_addr(smoltcp::wire::EthernetAddress::from_bytes(
        &src.to_be_bytes()[2..],
    ));
    e.set_ethertype(ty);
}

/// TTLs of generated packets, as OVN's: echo replies leave with 255, ICMP
/// errors with 254 (the router's own hop comes off when they are routed).
const TTL_ECHO_REPLY: u8 = 255;
const TTL_ICMP_ERROR: u8 = 254;
/// A reset leaves as the host stack's own segments do.
const TTL_TCP_RESET: u8 = 64;

fn write_ipv4(buf: &mut [u8], total: usize, src: u32, dst: u32, ttl: u8, proto: IpProtocol) {
    let mut ip = Ipv4Packet::new_unchecked(&mut buf[..IP]);
    ip.set_version(4);
    ip.set_header_len(IP as u8);
    ip.set_dscp(0);
    ip.set_ecn(0);
    ip.set_total_len(total as u16);
    ip.set_ident(0);
    ip.clear_flags();
    ip.set_frag_offset(0);
    ip.set_hop_limit(ttl);
    ip.set_next_header(proto);
    ip.set_src_addr(src.into());
    ip.set_dst_addr(dst.into());
    ip.fill_checksum();
}

/// Fills the IPv4 header checksum and the UDP checksum of an untagged
/// Ethernet/IPv4 (no options)/UDP frame whose headers are written (the
/// datapath's DNS and DHCP answers).
pub(crate) fn fill_udp4_checksums(frame: &mut [u8]) {
    let Some(ip) = frame.get_mut(ETH..) else {
        return;
    };
    let mut p = Ipv4Packet::new_unchecked(&mut *ip);
    p.fill_checksum();
    let (src, dst) = (p.src_addr(), p.dst_addr());
    let Some(udp) = ip.get_mut(IP..) else {
        return;
    };
    let mut u = smoltcp::wire::UdpPacket::new_unchecked(udp);
    u.fill_checksum(&src.into(), &dst.into());
}

/// An ICMP error of `ty`/`code` from `src_ip` about the packet in `frame`.
pub fn icmp_error(
    frame: &[u8],
    buf: &mut [u8],
    src_ip: u32,
    ty: u8,
    code: u8,
    mtu: u16,
) -> Option<usize> {
    let orig = ipv4_of(frame)?;
    let ip = Ipv4Packet::new_checked(orig).ok()?;
    if ip.frag_offset() != 0 {
        return None;
    }
    let src = u32::from(ip.src_addr());
    if src == 0 || src == u32::MAX || src >> 28 == 0xe {
        return None;
    }
    if ip.next_header() == IpProtocol::Icmp {
        // Only echo requests and replies may be answered with an error.
        let t = ip.payload().first().copied()?;
        if t != 8 && t != 0 {
            return None;
        }
    }
    let quoted = usize::from(ip.total_len()).min(orig.len()).min(QUOTE);
    let total = IP + ICMP_HDR + quoted;
    if buf.len() < ETH + total {
        return None;
    }
    write_eth(buf, 0, 0, EthernetProtocol::Ipv4);
    write_ipv4(
        &mut buf[ETH..],
        total,
        src_ip,
        src,
        TTL_ICMP_ERROR,
        IpProtocol::Icmp,
    );
    let icmp = &mut buf[ETH + IP..ETH + total];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..8].fill(0);
    if ty == 3 && code == 4 {
        icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    }
    icmp[ICMP_HDR..].copy_from_slice(&orig[..quoted]);
    Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    Some(ETH + total)
}

/// The echo reply to the echo request in `frame` (addressed to the router).
pub fn icmp_echo_reply(frame: &[u8], buf: &mut [u8]) -> Option<usize> {
    let orig = ipv4_of(frame)?;
    let ip = Ipv4Packet::new_checked(orig).ok()?;
    if ip.next_header() != IpProtocol::Icmp || ip.frag_offset() != 0 || ip.more_frags() {
        return None;
    }
    let payload = ip.payload();
    if payload.len() < ICMP_HDR || payload[0] != 8 {
        return None;
    }
    let total = IP + payload.len();
    if buf.len() < ETH + total {
        return None;
    }
    write_eth(buf, 0, 0, EthernetProtocol::Ipv4);
    write_ipv4(
        &mut buf[ETH..],
        total,
        u32::from(ip.dst_addr()),
        u32::from(ip.src_addr()),
        TTL_ECHO_REPLY,
        IpProtocol::Icmp,
    );
    let icmp = &mut buf[ETH + IP..ETH + total];
    icmp.copy_from_slice(payload);
    icmp[0] = 0;
    Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    Some(ETH + total)
}

/// The TCP RST that answers the TCP segment in `frame` (RFC 793's reset
/// generation: from the segment's destination, SEQ = its ACK when it had
/// one, else ACK = its SEQ + length), MACs swapped, untagged. `None` if the
/// segment was itself a RST, is a later fragment, or is shorter than it claims.
pub fn tcp_rst(frame: &[u8], buf: &mut [u8]) -> Option<usize> {
    let orig = ipv4_of(frame)?;
    let ip = Ipv4Packet::new_checked(orig).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
        return None;
    }
    let seg = TcpPacket::new_checked(ip.payload()).ok()?;
    if seg.rst() || buf.len() < ETH + IP + TCP_HDR {
        return None;
    }
    let data = ip
        .payload()
        .len()
        .saturating_sub(usize::from(seg.header_len()));
    let (seq, ack) = if seg.ack() {
        (seg.ack_number(), None)
    } else {
        let len = data + usize::from(seg.syn()) + usize::from(seg.fin());
        (TcpSeqNumber(0), Some(seg.seq_number() + len))
    };
    let (src, dst) = (u32::from(ip.dst_addr()), u32::from(ip.src_addr()));
    let mac = |at: usize| {
        frame[at..at + 6]
            .iter()
            .fold(0u64, |m, b| m << 8 | u64::from(*b))
    };
    write_eth(buf, mac(0), mac(6), EthernetProtocol::Ipv4);
    let total = IP + TCP_HDR;
    write_ipv4(
        &mut buf[ETH..],
        total,
        src,
        dst,
        TTL_TCP_RESET,
        IpProtocol::Tcp,
    );
    let mut out = Ipv4Packet::new_unchecked(&mut buf[ETH..ETH + total]);
    out.set_dont_frag(true);
    out.fill_checksum();
    let mut t = TcpPacket::new_unchecked(&mut buf[ETH + IP..ETH + total]);
    t.set_src_port(seg.dst_port());
    t.set_dst_port(seg.src_port());
    t.set_seq_number(seq);
    t.set_ack_number(ack.unwrap_or(TcpSeqNumber(0)));
    t.set_header_len(TCP_HDR as u8);
    t.clear_flags();
    t.set_rst(true);
    t.set_ack(ack.is_some());
    t.set_window_len(0);
    t.set_urgent_at(0);
    let (s4, d4) = (std::net::Ipv4Addr::from(src), std::net::Ipv4Addr::from(dst));
    t.fill_checksum(&s4.into(), &d4.into());
    Some(ETH + total)
}

/// A broadcast ARP request from `sha`/`spa` for `tpa`.
pub fn arp_request(buf: &mut [u8], sha: u64, spa: u32, tpa: u32) -> Option<usize> {
    const LEN: usize = ETH + 28;
    if buf.len() < LEN {
        return None;
    }
    write_eth(buf, sha, 0xffff_ffff_ffff, EthernetProtocol::Arp);
    let mut arp = ArpPacket::new_unchecked(&mut buf[ETH..LEN]);
    arp.set_hardware_type(smoltcp::wire::ArpHardware::Ethernet);
    arp.set_protocol_type(EthernetProtocol::Ipv4);
    arp.set_hardware_len(6);
    arp.set_protocol_len(4);
    arp.set_operation(ArpOperation::Request);
    arp.set_source_hardware_addr(&sha.to_be_bytes()[2..]);
    arp.set_source_protocol_addr(&spa.to_be_bytes());
    arp.set_target_hardware_addr(&[0; 6]);
    arp.set_target_protocol_addr(&tpa.to_be_bytes());
    Some(LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dp::packet::extract;

    /// A UDP packet 10.0.0.2 -> 10.1.0.3 with TTL 1, as a pod sends it.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; ETH + IP + 8 + 4];
        write_eth(
            &mut f,
            0x0a00_0000_0002,
            0x0a00_0000_0001,
            EthernetProtocol::Ipv4,
        );
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_total_len((IP + 12) as u16);
            ip.set_hop_limit(1);
            ip.set_next_header(IpProtocol::Udp);
            ip.set_src_addr(std::net::Ipv4Addr::new(10, 0, 0, 2));
            ip.set_dst_addr(std::net::Ipv4Addr::new(10, 1, 0, 3));
            ip.fill_checksum();
        }
        f[ETH + IP..ETH + IP + 4].copy_from_slice(&[0x30, 0x39, 0x82, 0x9a]);
        f[ETH + IP + 4..ETH + IP + 6].copy_from_slice(&12u16.to_be_bytes());
        f
    }

    #[test]
    fn time_exceeded_quotes_the_datagram_with_valid_checksums() {
        let f = udp_frame();
        let mut buf = [0u8; 2048];
        let n = icmp_error(&f, &mut buf, 0x0a00_0001, 11, 0, 0).unwrap();
        let ip = Ipv4Packet::new_checked(&buf[ETH..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), std::net::Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst_addr(), std::net::Ipv4Addr::new(10, 0, 0, 2));
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!((ip.payload()[0], ip.payload()[1]), (11, 0));
        assert_eq!(&ip.payload()[8..], &f[ETH..]);
        let k = extract(&buf[..n], 0).unwrap();
        assert_eq!((k.ip_proto, k.l4_src, k.ip_ttl), (1, 11, 254));
    }

    #[test]
    fn no_error_about_an_error_or_from_a_broadcast_source() {
        let f = udp_frame();
        let mut buf = [0u8; 2048];
        let n = icmp_error(&f, &mut buf, 0x0a00_0001, 3, 0, 0).unwrap();
        let err = buf[..n].to_vec();
        assert_eq!(icmp_error(&err, &mut buf, 0x0a00_0001, 11, 0, 0), None);
        let mut bcast = udp_frame();
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut bcast[ETH..]);
            ip.set_src_addr(std::net::Ipv4Addr::BROADCAST);
        }
        assert_eq!(icmp_error(&bcast, &mut buf, 1, 11, 0, 0), None);
        assert_eq!(icmp_error(&f[..20], &mut buf, 1, 11, 0, 0), None, "runt");
    }

    #[test]
    fn frag_needed_carries_the_mtu() {
        let f = udp_frame();
        let mut buf = [0u8; 2048];
        let n = icmp_error(&f, &mut buf, 1, 3, 4, 1400).unwrap();
        assert_eq!(&buf[ETH + IP + 6..ETH + IP + 8], &1400u16.to_be_bytes());
        assert!(Icmpv4Packet::new_checked(&buf[ETH + IP..n])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn echo_reply_swaps_addresses_and_keeps_the_payload() {
        let mut f = udp_frame();
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            ip.set_next_header(IpProtocol::Icmp);
            ip.fill_checksum();
        }
        let body = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd'];
        f[ETH + IP..].copy_from_slice(&body);
        Icmpv4Packet::new_unchecked(&mut f[ETH + IP..]).fill_checksum();
        let mut buf = [0u8; 2048];
        let n = icmp_echo_reply(&f, &mut buf).unwrap();
        let ip = Ipv4Packet::new_checked(&buf[ETH..n]).unwrap();
        assert_eq!(ip.src_addr(), std::net::Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(ip.dst_addr(), std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.payload()[0], 0);
        assert_eq!(&ip.payload()[4..], &body[4..]);
        assert!(Icmpv4Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum());
        let udp = udp_frame();
        assert_eq!(icmp_echo_reply(&udp, &mut buf), None, "not an echo request");
    }

    #[test]
    fn arp_request_parses_back() {
        let mut buf = [0u8; 64];
        let n = arp_request(&mut buf, 0x0a00_0000_0001, 0x0a00_0001, 0x0a00_0063).unwrap();
        let k = extract(&buf[..n], 0).unwrap();
        assert_eq!(
            (k.arp_op, k.ip_src, k.ip_dst),
            (1, 0x0a00_0001, 0x0a00_0063)
        );
        assert_eq!((k.eth_dst, k.arp_sha), (0xffff_ffff_ffff, 0x0a00_0000_0001));
    }

    /// A TCP segment 10.0.0.1:5555 -> 10.96.0.10:80 with `flags`, seq 1000,
    /// ack 7000, and `data` payload bytes, MACs 0a:..:01 -> 0a:..:02.
    fn tcp_frame(flags: u8, data: usize) -> Vec<u8> {
        let total = IP + TCP_HDR + data;
        let mut f = vec![0u8; ETH + total];
        write_eth(
            &mut f,
            0x0a00_0000_0001,
            0x0a00_0000_0002,
            EthernetProtocol::Ipv4,
        );
        let (src, dst) = (0x0a00_0001u32, 0x0a60_000au32);
        write_ipv4(&mut f[ETH..], total, src, dst, 64, IpProtocol::Tcp);
        let mut t = TcpPacket::new_unchecked(&mut f[ETH + IP..]);
        t.set_src_port(5555);
        t.set_dst_port(80);
        t.set_seq_number(TcpSeqNumber(1000));
        t.set_ack_number(TcpSeqNumber(7000));
        t.set_header_len(TCP_HDR as u8);
        t.clear_flags();
        f[ETH + IP + 13] = flags;
        f
    }

    /// The reset's addresses, ports, seq, ack and flags, its checksums checked.
    fn rst_of(f: &[u8]) -> Option<(u32, u32, u16, u16, i32, i32, u8)> {
        let mut buf = [0u8; 128];
        let n = tcp_rst(f, &mut buf)?;
        assert_eq!(&buf[0..6], &f[6..12], "back to the sender's MAC");
        assert_eq!(&buf[6..12], &f[0..6], "from the address it was sent to");
        let ip = Ipv4Packet::new_checked(&buf[ETH..n]).unwrap();
        assert!(ip.verify_checksum() && ip.dont_frag());
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        assert!(t.verify_checksum(&s.into(), &d.into()));
        Some((
            u32::from(s),
            u32::from(d),
            t.src_port(),
            t.dst_port(),
            t.seq_number().0,
            t.ack_number().0,
            buf[ETH + IP + 13],
        ))
    }

    #[test]
    fn a_reset_answers_a_syn_and_a_segment_with_data_as_rfc_793_says() {
        let (vip, client) = (0x0a60_000a, 0x0a00_0001);
        // A SYN: no ACK, so ACK = SEQ + 1 (the SYN counts), RST+ACK.
        assert_eq!(
            rst_of(&tcp_frame(0x02, 0)),
            Some((vip, client, 80, 5555, 0, 1001, 0x14))
        );
        // A segment with ACK: SEQ = its ACK, a bare RST.
        assert_eq!(
            rst_of(&tcp_frame(0x18, 100)),
            Some((vip, client, 80, 5555, 7000, 0, 0x04))
        );
        // FIN without ACK, 10 bytes: ACK = SEQ + 10 + 1.
        assert_eq!(rst_of(&tcp_frame(0x01, 10)).map(|r| r.5), Some(1011));
    }

    #[test]
    fn no_reset_to_a_reset_a_fragment_or_a_cut_segment() {
        assert_eq!(rst_of(&tcp_frame(0x04, 0)), None, "a RST is never answered");
        assert_eq!(rst_of(&tcp_frame(0x14, 0)), None);
        let mut later = tcp_frame(0x02, 0);
        later[ETH + 6..ETH + 8].copy_from_slice(&0x0001u16.to_be_bytes());
        assert_eq!(rst_of(&later), None, "a later fragment has no TCP header");
        let f = tcp_frame(0x02, 0);
        for len in 0..f.len() {
            assert_eq!(tcp_rst(&f[..len], &mut [0u8; 128]), None, "cut at {len}");
        }
        assert_eq!(tcp_rst(&f, &mut [0u8; 40]), None, "no room for the answer");
    }
}
