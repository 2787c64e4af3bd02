//! Encapsulation and decapsulation of a whole frame: outer Ethernet, IPv4, UDP
//! (destination 6081) and a Geneve header carrying OVN's metadata option. The
//! outer headers are written into a fixed 58-byte buffer that the caller sends
//! in front of the inner frame, so the inner frame is never moved.

use crate::{Error, Header, UDP_PORT};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet,
    UdpPacket,
};

/// Outer headers in front of every encapsulated frame: Ethernet 14, IPv4 20,
/// UDP 8, Geneve 8 and the OVN option 8.
pub const ENCAP_LEN: usize = 14 + 20 + 8 + 16;
/// What encapsulation costs an inner packet's MTU: the inner Ethernet header
/// plus everything past the outer Ethernet header, rounded up as OVN documents
/// (pod MTU = underlay MTU - 100 leaves room for IPv6 underlays and more options).
pub const MTU_OVERHEAD: usize = 100;

const ETH: usize = 14;
const IP: usize = 20;
const UDP: usize = 8;

/// The outer addresses of one tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub src_mac: u64,
    pub dst_mac: u64,
    pub src_ip: u32,
    pub dst_ip: u32,
}

/// Logical metadata a tunnel carries: datapath key (VNI) and port keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub datapath: u32,
    pub ingress: u16,
    pub egress: u16,
}

/// The UDP source port for an inner flow's hash: in the ephemeral range, so
/// that the underlay spreads different inner flows over its paths (RFC 8926 §3.3).
pub fn source_port(flow_hash: u32) -> u16 {
    0xc000 | (flow_hash as u16 & 0x3fff)
}

fn mac(v: u64) -> EthernetAddress {
    EthernetAddress::from_bytes(&v.to_be_bytes()[2..])
}

/// Writes the outer headers for an inner frame of `inner_len` bytes. The IPv4
/// header checksum is filled; the UDP checksum is zero, as RFC 8926 permits over
/// IPv4 (the inner frame carries its own checksums).
pub fn emit(buf: &mut [u8; ENCAP_LEN], o: &Outer, md: &Metadata, udp_src: u16, inner_len: usize) {
    Template::new(o).write(buf, md, udp_src, inner_len);
}

/// A tunnel's outer headers prepared once (when the tunnel is set up): per
/// packet only the lengths, the checksum (from a precomputed partial sum), the
/// UDP source port, the VNI and the port keys are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    hdr: [u8; ENCAP_LEN],
    /// One's-complement sum of the IPv4 header with total length and checksum 0.
    ip_sum: u32,
}

impl Template {
    pub fn new(o: &Outer) -> Template {
        let mut hdr = [0u8; ENCAP_LEN];
        emit_full(
            &mut hdr,
            o,
            &Metadata {
                datapath: 0,
                ingress: 0,
                egress: 0,
            },
            0,
            0,
        );
        hdr[ETH + 2..ETH + 4].fill(0); // total length
        hdr[ETH + 10..ETH + 12].fill(0); // checksum
        let ip_sum = hdr[ETH..ETH + IP]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        Template { hdr, ip_sum }
    }

    /// The outer headers for one inner frame of `inner_len` bytes.
    #[inline]
    pub fn write(&self, buf: &mut [u8; ENCAP_LEN], md: &Metadata, udp_src: u16, inner_len: usize) {
        *buf = self.hdr;
        let total = (IP + UDP + 16 + inner_len) as u16;
        let mut sum = self.ip_sum + u32::from(total);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        buf[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        buf[ETH + 10..ETH + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let u = ETH + IP;
        buf[u..u + 2].copy_from_slice(&udp_src.to_be_bytes());
        buf[u + 4..u + 6].copy_from_slice(&(total - IP as u16).to_be_bytes());
        let g = u + UDP;
        buf[g + 4..g + 7].copy_from_slice(&md.datapath.to_be_bytes()[1..]);
        let v = (u32::from(md.ingress & 0x7fff) << 16) | u32::from(md.egress);
        buf[g + 12..g + 16].copy_from_slice(&v.to_be_bytes());
    }
}

fn emit_full(buf: &mut [u8; ENCAP_LEN], o: &Outer, md: &Metadata, udp_src: u16, inner_len: usize) {
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_dst_addr(mac(o.dst_mac));
    eth.set_src_addr(mac(o.src_mac));
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let total = (IP + UDP + 16 + inner_len) as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut buf[ETH..]);
    ip.set_version(4);
    ip.set_header_len(IP as u8);
    ip.set_dscp(0);
    ip.set_ecn(0);
    ip.set_total_len(total);
    ip.set_ident(0);
    ip.clear_flags();
    ip.set_dont_frag(true);
    ip.set_frag_offset(0);
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Udp);
    ip.set_src_addr(Ipv4Address::from(o.src_ip));
    ip.set_dst_addr(Ipv4Address::from(o.dst_ip));
    ip.fill_checksum();
    let mut udp = UdpPacket::new_unchecked(&mut buf[ETH + IP..]);
    udp.set_src_port(udp_src);
    udp.set_dst_port(UDP_PORT);
    udp.set_len(total - IP as u16);
    udp.set_checksum(0);
    Header::new_unchecked(&mut buf[ETH + IP + UDP..]).emit_ovn(md.datapath, md.ingress, md.egress);
}

/// A decapsulated frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Decap<'a> {
    pub src_ip: u32,
    /// The outer destination: a chassis takes only what is sent to its encap IP.
    pub dst_ip: u32,
    pub metadata: Metadata,
    pub inner: &'a [u8],
}

/// Why a received frame is not a Geneve frame we can take.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    #[error("not IPv4/UDP to port 6081")]
    NotGeneve,
    #[error("malformed outer headers")]
    MalformedOuter,
    #[error("malformed geneve header: {0}")]
    Geneve(#[from] Error),
    #[error("geneve frame without OVN metadata or not carrying Ethernet")]
    NoMetadata,
}

/// Validates the outer headers of `frame` and returns the metadata and the inner
/// Ethernet frame. Nothing here panics on any input.
pub fn decap(frame: &[u8]) -> Result<Decap<'_>, DecapError> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DecapError::MalformedOuter)?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return Err(DecapError::NotGeneve);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| DecapError::MalformedOuter)?;
    if ip.version() != 4 || ip.next_header() != IpProtocol::Udp {
        return Err(DecapError::NotGeneve);
    }
    if ip.frag_offset() != 0 || ip.more_frags() {
        return Err(DecapError::MalformedOuter);
    }
    let ip_off = ETH + usize::from(ip.header_len());
    let udp = UdpPacket::new_checked(ip.payload()).map_err(|_| DecapError::MalformedOuter)?;
    if udp.dst_port() != UDP_PORT {
        return Err(DecapError::NotGeneve);
    }
    let gen_off = ip_off + UDP;
    let end = (ETH + usize::from(ip.total_len())).min(frame.len());
    let g = Header::new_checked(frame.get(gen_off..end).ok_or(DecapError::MalformedOuter)?)?;
    if g.protocol() != 0x6558 || g.oam() {
        return Err(DecapError::NoMetadata);
    }
    let (ingress, egress) = g.ovn_metadata()?.ok_or(DecapError::NoMetadata)?;
    let inner = &frame[gen_off + g.header_len()..end];
    Ok(Decap {
        src_ip: u32::from(ip.src_addr()),
        dst_ip: u32::from(ip.dst_addr()),
        metadata: Metadata {
            datapath: g.vni(),
            ingress,
            egress,
        },
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Outer = Outer {
        src_mac: 0x0a00_0000_0001,
        dst_mac: 0x0a00_0000_0002,
        src_ip: 0xac1f_000b,
        dst_ip: 0xac1f_000c,
    };
    const MD: Metadata = Metadata {
        datapath: 0x12_3456,
        ingress: 0x7fff,
        egress: 0x8000,
    };

    fn encap(inner: &[u8]) -> Vec<u8> {
        let mut h = [0x5au8; ENCAP_LEN];
        emit(&mut h, &O, &MD, source_port(0xdead_beef), inner.len());
        [&h[..], inner].concat()
    }

    #[test]
    fn round_trip_with_valid_outer_checksum() {
        let inner: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let f = encap(&inner);
        let ip = Ipv4Packet::new_checked(&f[ETH..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(ip.dont_frag());
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(udp.dst_port(), 6081);
        assert!(udp.src_port() >= 0xc000);
        let d = decap(&f).unwrap();
        assert_eq!(d.metadata, MD);
        assert_eq!(d.src_ip, O.src_ip);
        assert_eq!(d.inner, &inner[..]);
    }

    /// Property: every inner length and metadata round-trips (a deterministic
    /// sweep, no randomness needed for the key space that matters here).
    #[test]
    fn round_trip_property() {
        let mut seed = 0x9e37_79b9u32;
        for len in (14..1500).step_by(37) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let md = Metadata {
                datapath: seed & 0xff_ffff,
                ingress: (seed >> 8) as u16 & 0x7fff,
                egress: (seed >> 12) as u16,
            };
            let inner = vec![seed as u8; len];
            let mut h = [0u8; ENCAP_LEN];
            emit(&mut h, &O, &md, source_port(seed), len);
            let f = [&h[..], &inner[..]].concat();
            let d = decap(&f).unwrap();
            assert_eq!((d.metadata, d.inner.len()), (md, len));
        }
    }

    #[test]
    fn template_writes_exactly_what_a_full_emit_writes() {
        let t = Template::new(&O);
        for (len, md) in [
            (60, MD),
            (
                1400,
                Metadata {
                    datapath: 1,
                    ingress: 2,
                    egress: 3,
                },
            ),
        ] {
            let (mut a, mut b) = ([0u8; ENCAP_LEN], [0u8; ENCAP_LEN]);
            t.write(&mut a, &md, 0xc123, len);
            emit_full(&mut b, &O, &md, 0xc123, len);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let f = encap(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        for cut in 0..f.len() {
            let _ = decap(&f[..cut]); // no panic at any length
        }
        assert_eq!(
            decap(&f[..ETH + IP + UDP + 4]).unwrap_err(),
            DecapError::MalformedOuter
        );
        let mut v = f.clone();
        v[ETH + IP + 2..ETH + IP + 4].copy_from_slice(&4789u16.to_be_bytes());
        assert_eq!(decap(&v).unwrap_err(), DecapError::NotGeneve);
        let mut v = f.clone();
        v[ETH + IP + UDP + 11] = 5; // option longer than the options area
        assert!(matches!(
            decap(&v),
            Err(DecapError::Geneve(Error::OptionOverrun(_)))
        ));
        let mut v = f.clone();
        v[ETH + IP + UDP + 8] = 0x77; // unknown class with the critical bit
        assert!(matches!(
            decap(&v),
            Err(DecapError::Geneve(Error::UnknownCritical(..)))
        ));
        let mut v = f;
        v[ETH + IP + UDP] = 0; // no options: no OVN metadata
        assert!(matches!(decap(&v), Err(DecapError::NoMetadata)));
    }
}
