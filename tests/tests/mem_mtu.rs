//! In-memory only: a switch's MTU, frame by frame. A
//! frame larger than its switch's MTU is not delivered (a switch cannot
//! fragment) and is counted. The routed case (ICMP
//! fragmentation-needed) and the real pods are tests/mtu.rs.

use smoltcp::wire::Ipv4Address;
use switchyard_benches::{port_ip, port_mac};
use switchyard_northd::model::Nb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::{fmt_mac, DropReason};
use switchyard_tests::frames;
use switchyard_tests::memory::{mem, pmd_on, southbound};

fn ip(i: usize) -> Ipv4Address {
    let a = port_ip(i);
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

/// ls0 with other_config:mtu=1500 and ports p1, p2 (MAC, IP, port security).
fn nb_with_mtu() -> Nb {
    let mut ops = vec![Op::LsAdd(pb::LogicalSwitch {
        name: "ls0".into(),
        subnet: "10.0.0.0/8".into(),
        other_config: [("mtu".to_string(), "1500".to_string())].into(),
        ..Default::default()
    })];
    for i in 1..=2 {
        let addr = format!("{} {}", fmt_mac(port_mac(i)), ip(i));
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("p{i}"),
            switch_name: "ls0".into(),
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            ..Default::default()
        }));
    }
    let mut nb = Nb::default();
    nb.apply_all(ops).expect("valid topology");
    nb
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
