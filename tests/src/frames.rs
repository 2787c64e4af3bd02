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

/// A UDP/IPv4 frame carrying `payload`.
pub fn udp(
    src_mac: u64,
    dst_mac: u64,
    src: Ipv4Address,
    dst: Ipv4Address,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: 40000,
        dst_port: dport,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
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
    let mut u = UdpPacket::new_unchecked(p.payload_mut());
    udp.emit(
        &mut u,
        &src.into(),
        &dst.into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
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
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: t.buffer_len(),
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
    t.emit(
        &mut TcpPacket::new_unchecked(p.payload_mut()),
        &src.into(),
        &dst.into(),
        &ChecksumCapabilities::default(),
    );
    buf
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
    f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src_id]);
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
