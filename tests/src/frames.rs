//! Test frames built with smoltcp's `Repr`s (valid checksums), plus deliberately
//! malformed ones.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

/// A MAC from its 48-bit value.
pub fn mac(v: u64) -> EthernetAddress {
    let b = v.to_be_bytes();
    EthernetAddress([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A UDP/IPv4 frame carrying `payload`, from port 40000.
pub fn udp(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    udp_ports(src_mac, dst_mac, src, dst, 40000, dport, payload)
}

/// A UDP/IPv4 frame carrying `payload`, between the given ports.
pub fn udp_ports(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    let len = udp.header_len() + payload.len();
    ipv4(src_mac, dst_mac, src, dst, IpProtocol::Udp, len, |l4| {
        udp.emit(
            &mut UdpPacket::new_unchecked(l4),
            &src.into(),
            &dst.into(),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        )
    })
}

/// An Ethernet frame with an IPv4 header (TTL 64, valid checksum) from
/// `src_mac`/`src` to `dst_mac`/`dst` and `len` bytes of `proto` payload that
/// `fill` writes.
fn ipv4(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    proto: IpProtocol,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: mac(src_mac),
        dst_addr: mac(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, &ChecksumCapabilities::default());
    fill(p.payload_mut());
    buf
}

/// A TCP/IPv4 segment with no payload: SYN (`ack` None) or SYN-ACK/ACK/RST as
/// `control` says, valid checksums.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    sport: u16,
    dport: u16,
    control: smoltcp::wire::TcpControl,
    ack: Option<u32>,
) -> Vec<u8> {
    use smoltcp::wire::{TcpPacket, TcpRepr, TcpSeqNumber};
    let t = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 64000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    ipv4(
        src_mac,
        dst_mac,
        src,
        dst,
        IpProtocol::Tcp,
        t.buffer_len(),
        |l4| {
            t.emit(
                &mut TcpPacket::new_unchecked(l4),
                &src.into(),
                &dst.into(),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// An ICMP echo request (identifier 7, sequence 1) carrying `payload`.
pub fn icmp_echo(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    payload: &[u8],
) -> Vec<u8> {
    use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data: payload,
    };
    ipv4(
        src_mac,
        dst_mac,
        src,
        dst,
        IpProtocol::Icmp,
        icmp.buffer_len(),
        |l4| {
            icmp.emit(
                &mut Icmpv4Packet::new_unchecked(l4),
                &ChecksumCapabilities::default(),
            )
        },
    )
}

/// An ICMP error (`icmp_type`, `code`) quoting the first 28 bytes of the IPv4
/// packet in frame `quoted`, valid checksums.
pub fn icmp_error(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    icmp_type: u8,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let q = &quoted[14..14 + 28];
    let mut f = udp(src_mac, dst_mac, src, dst, 9, &[0u8; 28]);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_next_header(IpProtocol::Icmp);
    ip.fill_checksum();
    let icmp = ip.payload_mut();
    icmp[..8].copy_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    icmp[8..36].copy_from_slice(q);
    smoltcp::wire::Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    f
}

/// An ARP request from (`sha`, `spa`) for `tpa`, broadcast.
pub fn arp_request(sha: u64, spa: Ipv4Address, tpa: Ipv4Address) -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac(sha),
        source_protocol_addr: spa,
        target_hardware_addr: mac(0),
        target_protocol_addr: tpa,
    };
    let eth = EthernetRepr {
        src_addr: mac(sha),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    buf
}

/// An IPv6 packet in an Ethernet frame: link-local source (`fe80::src_id`),
/// `dst` as given, next header `next`, and `payload` after the fixed header
/// (for UDP, a header is prepended; checksums are not filled: the datapath
/// must drop these before anyone would check).
pub fn ipv6(
    src_mac: u64,
    dst_mac: u64,
    src_id: u8,
    dst: [u8; 16],
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    ipv6_from(src_mac, dst_mac, link_local(src_id), dst, next, payload)
}

/// [`ipv6`] from any source address.
pub fn ipv6_from(
    src_mac: u64,
    dst_mac: u64,
    src: [u8; 16],
    dst: [u8; 16],
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    if next == 17 {
        body.extend_from_slice(&[0x9c, 0x40, 0x00, 0x09]);
        body.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        body.extend_from_slice(&[0, 0]);
    }
    body.extend_from_slice(payload);
    let mut f = Vec::new();
    f.extend_from_slice(&mac(dst_mac).0);
    f.extend_from_slice(&mac(src_mac).0);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, 255]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&body);
    f
}

/// `fe80::id`, an IPv6 link-local address.
pub fn link_local(id: u8) -> [u8; 16] {
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, id]
}

/// `ff02::1`, all nodes.
pub const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A router advertisement (ICMPv6 134) carrying `tag` in a padding option.
pub fn router_advertisement(src_mac: u64, tag: &[u8]) -> Vec<u8> {
    let mut icmp = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(tag);
    ipv6(src_mac, 0x3333_0000_0001, 0x66, ALL_NODES, 58, &icmp)
}

/// A neighbor advertisement (ICMPv6 136, solicited and override) from `src`
/// to `dst` saying `target` is at `tll` (in a target link-layer option).
pub fn neighbor_advert(
    macs: (u64, u64),
    src: [u8; 16],
    dst: [u8; 16],
    target: [u8; 16],
    tll: u64,
) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    icmp.extend_from_slice(&target);
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac(tll).0);
    ipv6_from(macs.0, macs.1, src, dst, 58, &icmp)
}

/// Splits an untagged IPv4 frame (20-byte header) into fragments whose IP
/// packets fit `mtu`, as a sender's kernel does: identifier `id`, offsets,
/// more-fragments flags, lengths and header checksums filled in.
pub fn fragments(frame: &[u8], mtu: usize, id: u16) -> Vec<Vec<u8>> {
    let (eth, ip) = frame.split_at(14);
    let (hdr, payload) = ip.split_at(20);
    let chunk = (mtu - 20) / 8 * 8;
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = [eth, hdr, part].concat();
            let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
            p.set_total_len((20 + part.len()) as u16);
            p.set_ident(id);
            p.set_dont_frag(false);
            p.set_more_frags(i + 1 < n);
            p.set_frag_offset((i * chunk) as u16);
            p.fill_checksum();
            f
        })
        .collect()
}

/// The IPv4 payload of a datagram put back together from its fragments
/// (any order), with the first fragment's addresses; panics on a gap or an
/// invalid header checksum.
pub fn reassemble(frags: &[Vec<u8>]) -> (Ipv4Address, Ipv4Address, Vec<u8>) {
    let mut parts: Vec<(usize, bool, Vec<u8>, Ipv4Address, Ipv4Address)> = frags
        .iter()
        .map(|f| {
            let p = Ipv4Packet::new_checked(&f[14..]).expect("IPv4");
            assert!(p.verify_checksum(), "fragment header checksum");
            (
                usize::from(p.frag_offset()),
                p.more_frags(),
                p.payload().to_vec(),
                p.src_addr(),
                p.dst_addr(),
            )
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (off, _, part, _, _) in &parts {
        assert_eq!(*off, data.len(), "a fragment is missing");
        data.extend_from_slice(part);
    }
    assert!(
        !parts.last().expect("fragments").1,
        "the last fragment is missing"
    );
    (parts[0].3, parts[0].4, data)
}

/// Malformed variants of a valid UDP frame: (name, bytes).
pub fn malformed(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
) -> Vec<(&'static str, Vec<u8>)> {
    let good = udp(src_mac, dst_mac, src, dst, 9, b"malformed");
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x43;
    let mut bad_total = good.clone();
    bad_total[16] = 0x0f; // total length 3840 > frame
    vec![
        ("truncated IP header", good[..14 + 12].to_vec()),
        ("bad IHL", bad_ihl),
        ("IP total length beyond frame", bad_total),
    ]
}

/// Hex encoding for the raw-socket helper.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
