//! In-memory only: a switch's MTU and partial checksums, frame by frame. A
//! frame larger than its switch's MTU is not delivered (a switch cannot
//! fragment) and is counted; a partial UDP checksum (a pod's checksum
//! offload) is completed on the way in. The routed case (ICMP
//! fragmentation-needed) and the real pods are tests/mtu.rs.

use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Packet, UdpPacket};
use switchyard_benches::{port_ip, port_mac, switch_nb_with};
use switchyard_northd::model::Nb;
use switchyard_southbound::DropReason;
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};

fn ip(i: usize) -> Ipv4Address {
    let a = port_ip(i);
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

/// ls0 with other_config:mtu=1500 and ports p1, p2 (MAC, IP, port security).
fn nb_with_mtu() -> Nb {
    switch_nb_with(2, [("mtu".to_string(), "1500".to_string())].into())
}

#[test]
fn a_frame_over_its_switch_mtu_is_dropped_and_counted_and_one_that_fits_passes() {
    let lports = vec!["p1".to_string(), "p2".to_string()];
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb_with_mtu()), &lports);
    let too_big = DropReason::FrameTooBig as usize;
    // IP length 1,500 fits exactly; 1,501 does not (twice: the cached verdict too).
    for (payload, delivered, drops) in [(1472, true, 0), (1473, false, 1), (1473, false, 2)] {
        let f = frames::udp(
            port_mac(1),
            port_mac(2),
            ip(1),
            ip(2),
            9,
            &vec![7u8; payload],
        );
        assert_eq!(f.len(), 14 + 28 + payload);
        mem(&mut pmd, 0).rx.push_back(f);
        pmd.poll_once();
        let out = std::mem::take(&mut mem(&mut pmd, 1).tx);
        assert_eq!(!out.is_empty(), delivered, "payload {payload}");
        assert_eq!(stats.drops[too_big].get(), drops, "payload {payload}");
    }
    // A jumbo frame (8,000 bytes) arrives whole and is refused the same way.
    let f = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 9, &[1u8; 8000]);
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    assert!(mem(&mut pmd, 1).tx.is_empty());
    assert_eq!(stats.drops[too_big].get(), 3);
}

#[test]
fn a_partial_udp_checksum_is_completed_on_the_way_in() {
    let lports = vec!["p1".to_string(), "p2".to_string()];
    let (mut pmd, stats, _) = pmd_on(&southbound(&nb_with_mtu()), &lports);
    let mut f = frames::udp(port_mac(1), port_mac(2), ip(1), ip(2), 9, &[0x5a; 1000]);
    // What a sender with checksum offload leaves: the pseudo-header's sum.
    let udp_len = (f.len() - 34) as u32;
    let words = [&f[26..28], &f[28..30], &f[30..32], &f[32..34]];
    let mut s: u32 = words
        .iter()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    s += 17 + udp_len;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    f[40..42].copy_from_slice(&(s as u16).to_be_bytes());
    mem(&mut pmd, 0).rx.push_back(f);
    pmd.poll_once();
    let out = std::mem::take(&mut mem(&mut pmd, 1).tx);
    assert_eq!(out.len(), 1);
    let ipv4 = Ipv4Packet::new_checked(&out[0][14..]).expect("IPv4");
    let udp = UdpPacket::new_checked(ipv4.payload()).expect("UDP");
    assert!(
        udp.verify_checksum(
            &IpAddress::Ipv4(ipv4.src_addr()),
            &IpAddress::Ipv4(ipv4.dst_addr())
        ),
        "the receiver gets a complete checksum"
    );
    assert_eq!(stats.csum_completed.get(), 1);
}
