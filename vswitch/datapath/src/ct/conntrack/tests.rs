//! Conntrack unit tests: the TCP state machine, timeouts, capacity and
//! early drop, NAT bindings, pick-ups, zone flushes.

use super::state::*;
use super::tcp_flags::*;
use super::*;

const C: Tuple = Tuple {
    zone: 1,
    proto: TCP,
    v6: false,
    src: 0x0a00_0001,
    dst: 0x0a00_0002,
    sport: 40000,
    dport: 80,
};

fn seg(flags: u8, seq: u32, ack: u32, len: u32) -> TcpInfo {
    TcpInfo {
        flags,
        seq,
        ack,
        window: 65535,
        payload_len: len,
    }
}

/// Client 1000 -> server 5000 handshake; returns the table.
fn established() -> Conntrack {
    let mut ct = Conntrack::new(16);
    let s = C.reverse();
    assert_eq!(
        ct.process(&C, Some(&seg(SYN, 1000, 0, 0)), 0, true).state,
        TRK | NEW
    );
    assert_eq!(
        ct.process(&s, Some(&seg(SYN | ACK, 5000, 1001, 0)), 1, true)
            .state,
        TRK | EST | RPL
    );
    assert_eq!(
        ct.process(&C, Some(&seg(ACK, 1001, 5001, 0)), 2, true)
            .state,
        TRK | EST
    );
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpEstablished);
    ct
}

#[test]
fn handshake_data_and_close() {
    let mut ct = established();
    let s = C.reverse();
    assert_eq!(
        ct.process(&C, Some(&seg(ACK, 1001, 5001, 100)), 3, true)
            .state,
        TRK | EST
    );
    assert_eq!(
        ct.process(&s, Some(&seg(ACK, 5001, 1101, 0)), 4, true)
            .state,
        TRK | EST | RPL
    );
    ct.process(&C, Some(&seg(FIN | ACK, 1101, 5001, 0)), 5, true);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpClosing);
    ct.process(&s, Some(&seg(FIN | ACK, 5001, 1102, 0)), 6, true);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpTimeWait);
    // TIME_WAIT lingers 30 s, then expiry removes it.
    assert_eq!(ct.expire(6 + 30_000, 16), 0);
    assert_eq!(ct.expire(6 + 30_001, 16), 1);
    assert!(ct.is_empty());
}

#[test]
fn a_mid_stream_packet_without_a_connection_is_invalid() {
    let mut ct = Conntrack::new(16);
    assert_eq!(
        ct.process(&C, Some(&seg(ACK, 1, 1, 10)), 0, true).state,
        TRK | INV
    );
    assert_eq!(
        ct.process(&C, None, 0, true).state,
        TRK | INV,
        "TCP without its header"
    );
    assert!(ct.is_empty());
    assert_eq!(ct.stats.invalid, 2);
}

#[test]
fn an_out_of_window_rst_is_ignored_and_an_in_window_one_closes() {
    let mut ct = established();
    let s = C.reverse();
    // A blind RST far outside the window: counted, the connection stays.
    let r = ct.process(&s, Some(&seg(RST, 5000 + 3_000_000, 0, 0)), 10, true);
    assert!(r.state & INV != 0);
    assert_eq!(ct.stats.rst_ignored, 1);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpEstablished);
    // The peer's RST at its current sequence number: accepted.
    let r = ct.process(&s, Some(&seg(RST, 5001, 0, 0)), 11, true);
    assert!(r.state & INV == 0);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpTimeWait);
}

#[test]
fn timeouts_depend_on_the_state() {
    let mut ct = Conntrack::new(16);
    ct.process(&C, Some(&seg(SYN, 1000, 0, 0)), 0, true);
    assert_eq!(ct.expire(30_000, 16), 0, "SYN_SENT lives 30 s");
    assert_eq!(ct.expire(30_001, 16), 1);
    let mut ct = established();
    assert_eq!(ct.expire(3_600_000, 16), 0, "ESTABLISHED lives a day");
    let u = Tuple { proto: UDP, ..C };
    let mut ct = Conntrack::new(16);
    ct.process(&u, None, 0, true);
    assert_eq!(
        ct.process(&u.reverse(), None, 10, true).state,
        TRK | EST | RPL
    );
    assert_eq!(ct.iter().next().unwrap().state, ConnState::Multiple);
    assert_eq!(ct.expire(10 + 180_000, 16), 0);
    assert_eq!(ct.expire(10 + 180_001, 16), 1);
    // A packet on an expired entry nobody swept yet starts afresh.
    let mut ct = Conntrack::new(16);
    ct.process(&u, None, 0, true);
    assert_eq!(ct.process(&u, None, 40_000, true).state, TRK | NEW);
    assert_eq!(ct.stats.expired, 1);
}

#[test]
fn when_full_new_connections_are_refused_and_old_ones_flow() {
    let mut ct = Conntrack::new(2);
    let t = |port| Tuple {
        proto: UDP,
        sport: port,
        ..C
    };
    // Both answered: assured, so nothing can be evicted for a newcomer.
    for port in [1, 2] {
        ct.process(&t(port), None, 0, true);
        ct.process(&t(port).reverse(), None, 0, true);
    }
    assert_eq!(ct.process(&t(3), None, 0, true).state, TRK | INV);
    assert_eq!(ct.stats.full_drops, 1);
    assert_eq!(ct.stats.early_drops, 0);
    assert_eq!(
        ct.process(&t(1).reverse(), None, 1, true).state,
        TRK | EST | RPL
    );
    // A slot freed by expiry is reused; nothing grows.
    assert_eq!(ct.expire(1 + 180_001, 8), 2);
    assert_eq!(ct.process(&t(3), None, 200_000, true).state, TRK | NEW);
    assert_eq!(ct.len(), 1);
}

#[test]
fn without_commit_a_new_packet_is_classified_not_entered() {
    let mut ct = Conntrack::new(4);
    let u = Tuple { proto: UDP, ..C };
    assert_eq!(ct.process(&u, None, 0, false).state, TRK | NEW);
    assert!(ct.is_empty());
    // Zones keep identical tuples apart.
    ct.process(&u, None, 0, true);
    let other_zone = Tuple { zone: 2, ..u };
    assert_eq!(ct.process(&other_zone, None, 0, false).state, TRK | NEW);
    ct.flush();
    assert!(ct.is_empty());
}

#[test]
fn nat_binding_maps_both_directions_and_refuses_a_taken_reply_tuple() {
    let mut ct = Conntrack::new(16);
    // Client -> VIP 10.96.0.10:80, DNATed to backend 10.244.1.5:8080.
    let vip = Tuple {
        dst: 0x0a60_000a,
        ..C
    };
    let xlate = Tuple {
        dst: 0x0af4_0105,
        dport: 8080,
        ..vip
    };
    let r = ct.commit(&vip, Some(&seg(SYN, 1, 0, 0)), 0, Some(&xlate), false);
    let slot = r.slot.unwrap();
    assert_eq!(ct.target(slot, &vip), xlate, "forward: to the backend");
    let reply = xlate.reverse();
    assert_eq!(
        ct.lookup(&reply, 1),
        Some(slot),
        "the backend's reply finds it"
    );
    assert_eq!(
        ct.target(slot, &reply),
        vip.reverse(),
        "reply: from the VIP"
    );
    assert_eq!(
        ct.lookup(&vip.reverse(), 1),
        None,
        "not keyed by the untranslated reply"
    );
    // Another connection whose reply would be the same tuple is refused.
    let other = Tuple {
        dst: 0x0a60_000b,
        ..C
    };
    let r = ct.commit(&other, Some(&seg(SYN, 1, 0, 0)), 0, Some(&xlate), false);
    assert_eq!(r.slot, None);
    assert_eq!(ct.stats.nat_collisions, 1);
    // Expiry removes both keys.
    ct.expire(10 * 60_000, 16);
    assert!(ct.is_empty());
    assert_eq!(ct.lookup(&reply, 10 * 60_000), None);
}

#[test]
fn a_picked_up_tcp_flow_is_unconfirmed_until_answered() {
    let mut ct = Conntrack::new(16);
    let mid = seg(ACK, 7000, 9000, 100);
    let r = ct.commit(&C, Some(&mid), 0, Some(&C), false);
    assert_eq!(r.state, TRK | INV, "no SYN, no pickup: invalid");
    let r = ct.commit(&C, Some(&mid), 0, Some(&C), true);
    assert_eq!(r.state, TRK | EST);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpUnconfirmed);
    assert_eq!(ct.stats.pickups, 1);
    // The other side answers: a real connection.
    ct.process(&C.reverse(), Some(&seg(ACK, 9000, 7100, 0)), 5, true);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpEstablished);
    assert_eq!(ct.expire(3_600_000, 16), 0, "established lives a day");
    // Unanswered, a pickup is gone in seconds.
    let mut ct = Conntrack::new(16);
    ct.commit(&C, Some(&mid), 0, Some(&C), true);
    assert_eq!(ct.expire(10_000, 16), 0);
    assert_eq!(ct.expire(10_001, 16), 1);
}

#[test]
fn rst_fin_and_syn_ack_without_a_connection_open_nothing() {
    let mut ct = Conntrack::new(16);
    for flags in [RST, RST | ACK, FIN | ACK, FIN, SYN | ACK, SYN | FIN, 0] {
        let r = ct.commit(&C, Some(&seg(flags, 1, 1, 0)), 0, Some(&C), true);
        assert_eq!(
            r,
            CtResult {
                state: TRK | INV,
                slot: None
            },
            "flags {flags:#x}"
        );
    }
    assert!(ct.is_empty());
    assert_eq!(ct.stats.invalid, 7);
}

#[test]
fn a_full_table_evicts_pickups_and_handshakes_never_established_connections() {
    let mut ct = Conntrack::new(4);
    let t = |port| Tuple { sport: port, ..C };
    // Two real clients: established.
    for port in [1, 2] {
        ct.process(&t(port), Some(&seg(SYN, 10, 0, 0)), 0, true);
        ct.process(
            &t(port).reverse(),
            Some(&seg(SYN | ACK, 50, 11, 0)),
            0,
            true,
        );
        ct.process(&t(port), Some(&seg(ACK, 11, 51, 0)), 0, true);
    }
    // A flood of blind ACKs: each evicts the last one's unconfirmed entry.
    for port in 100..1100 {
        let r = ct.commit(&t(port), Some(&seg(ACK, 7, 7, 10)), 1, Some(&t(port)), true);
        assert!(r.slot.is_some(), "pickup {port} refused");
    }
    assert_eq!(ct.len(), 4);
    assert!(ct.stats.early_drops >= 998, "{:?}", ct.stats);
    assert_eq!(
        ct.iter()
            .filter(|c| c.state == ConnState::TcpEstablished)
            .count(),
        2,
        "the real clients' connections stay"
    );
    // A real client still gets in (it evicts a pickup), and its
    // connection is established in turn.
    let r = ct.process(&t(3), Some(&seg(SYN, 10, 0, 0)), 2, true);
    assert_eq!(r.state, TRK | NEW);
    ct.process(&t(3).reverse(), Some(&seg(SYN | ACK, 50, 11, 0)), 2, true);
    ct.process(&t(3), Some(&seg(ACK, 11, 51, 0)), 2, true);
    // Only established connections left to evict: the next is refused.
    let r = ct.commit(&t(4), Some(&seg(ACK, 7, 7, 10)), 3, Some(&t(4)), true);
    assert!(r.slot.is_some(), "the last pickup goes for this one");
    let r = ct.commit(&t(5), Some(&seg(SYN, 7, 0, 0)), 3, Some(&t(5)), false);
    assert!(r.slot.is_some());
    ct.process(&t(5).reverse(), Some(&seg(SYN | ACK, 50, 8, 0)), 3, true);
    ct.process(&t(5), Some(&seg(ACK, 8, 51, 0)), 3, true);
    let before = ct.stats.full_drops;
    let r = ct.commit(&t(6), Some(&seg(SYN, 7, 0, 0)), 4, Some(&t(6)), false);
    assert_eq!(r.slot, None);
    assert_eq!(ct.stats.full_drops, before + 1);
    assert_eq!(ct.len(), 4);
}

#[test]
fn flushing_a_zone_takes_its_entries_and_nat_bindings_only() {
    let mut ct = Conntrack::new(16);
    let u = Tuple { proto: UDP, ..C };
    let other = Tuple { zone: 2, ..u };
    let xlate = Tuple {
        dst: 0x0a00_0099,
        ..other
    };
    ct.process(&u, None, 0, true);
    ct.commit(&other, None, 0, Some(&xlate), false);
    assert_eq!(ct.flush_if(|z| z == 2), 1);
    assert_eq!(ct.len(), 1);
    assert_eq!(ct.lookup(&xlate.reverse(), 1), None, "the binding is gone");
    assert!(ct.lookup(&u, 1).is_some());
}

#[test]
fn a_zone_at_its_limit_refuses_new_connections_and_leaves_other_zones_alone() {
    let mut ct = Conntrack::new(16);
    let udp = |zone: u32, sport: u16| Tuple {
        zone,
        proto: UDP,
        sport,
        ..C
    };
    // Two connections in zone 1 before any limit.
    for p in [1, 2] {
        assert!(ct.process(&udp(1, p), None, 0, true).slot.is_some());
    }
    // A limit lower than what the zone holds: the two stay, nothing new enters.
    let limits = [(1u32, 2u32)].into_iter().collect();
    ct.set_zone_limits(&limits);
    assert_eq!(
        ct.zone_limits().collect::<Vec<_>>(),
        vec![(1, ZoneLimit { limit: 2, count: 2 })]
    );
    let r = ct.process(&udp(1, 3), None, 1, true);
    assert_eq!((r.slot, r.state), (None, TRK | INV));
    assert_eq!(ct.stats.zone_limit_drops, 1);
    assert_eq!(ct.stats.full_drops, 0);
    // The zone's own connections keep being tracked: udp(1,1) is answered
    // (and so outlives udp(1,2) below).
    assert_eq!(
        ct.process(&udp(1, 1).reverse(), None, 2, true).state,
        TRK | EST | RPL
    );
    // Zone 2 has no limit.
    for p in 1..=4 {
        assert!(ct.process(&udp(2, p), None, 3, true).slot.is_some());
    }
    // One of zone 1's connections expires: room for exactly one more.
    ct.timeouts.udp_first = 10;
    ct.timeouts.udp_multiple = 10_000;
    assert_eq!(ct.expire(100, 16), 5); // udp(1,2) and zone 2's four
    assert!(ct.process(&udp(1, 3), None, 101, true).slot.is_some());
    assert!(ct.process(&udp(1, 4), None, 102, true).slot.is_none());
    assert_eq!(ct.stats.zone_limit_drops, 2);
    // No limit any more.
    ct.set_zone_limits(&Default::default());
    assert!(ct.process(&udp(1, 4), None, 103, true).slot.is_some());
    assert_eq!(ct.zone_limits().count(), 0);
}

#[test]
fn a_syn_reusing_the_reply_tuple_of_a_closed_connection_evicts_it() {
    let mut ct = Conntrack::new(16);
    // Client port 40000 to VIP A:80, DNATed to backend B:8080, then closed.
    let via_a = Tuple {
        dst: 0x0a60_000a,
        ..C
    };
    let backend = Tuple {
        dst: 0x0af4_0105,
        dport: 8080,
        ..via_a
    };
    ct.commit(&via_a, Some(&seg(SYN, 1, 0, 0)), 0, Some(&backend), false);
    let reply = backend.reverse();
    ct.process(&reply, Some(&seg(SYN | ACK, 100, 2, 0)), 1, true);
    ct.process(&via_a, Some(&seg(ACK, 2, 101, 0)), 2, true);
    ct.process(&via_a, Some(&seg(FIN | ACK, 2, 101, 0)), 3, true);
    ct.process(&reply, Some(&seg(FIN | ACK, 101, 3, 0)), 4, true);
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpTimeWait);

    // The same client port to VIP B:81 lands on the same backend: its reply
    // tuple is the closed connection's. A non-SYN cannot take it...
    let via_b = Tuple {
        dst: 0x0a60_000b,
        dport: 81,
        ..C
    };
    let r = ct.commit(&via_b, Some(&seg(ACK, 1, 0, 0)), 5, Some(&backend), true);
    assert_eq!(r.slot, None, "a pick-up never evicts");
    assert_eq!(ct.stats.nat_collisions, 1);
    // ...a SYN evicts the closed entry and opens the new connection.
    let r = ct.commit(&via_b, Some(&seg(SYN, 50, 0, 0)), 6, Some(&backend), false);
    let slot = r.slot.expect("the SYN opens a connection");
    assert_eq!(ct.stats.closed_reused, 1);
    assert_eq!(ct.len(), 1);
    assert_eq!(ct.lookup(&reply, 7), Some(slot));
    assert_eq!(
        ct.target(slot, &reply),
        via_b.reverse(),
        "replies from VIP B"
    );
    assert_eq!(ct.lookup(&via_a, 7), None, "the old connection is gone");

    // An established connection is never evicted: the collision is refused.
    ct.process(&reply, Some(&seg(SYN | ACK, 500, 51, 0)), 8, true);
    ct.process(&via_b, Some(&seg(ACK, 51, 501, 0)), 9, true);
    let r = ct.commit(&via_a, Some(&seg(SYN, 1, 0, 0)), 10, Some(&backend), false);
    assert_eq!(r.slot, None);
    assert_eq!(ct.stats.nat_collisions, 2);
    assert_eq!(ct.stats.closed_reused, 1);
}

/// An IPv6 connection is tracked like an IPv4 one, and is its own: the IPv6
/// tuple whose addresses have the IPv4 one's bits (`::10.0.0.1`) neither
/// finds the IPv4 connection nor is found by it.
#[test]
fn ipv6_connections_are_tracked_apart_from_ipv4_ones() {
    let mut ct = established();
    let v6 = Tuple { v6: true, ..C };
    assert_eq!(
        ct.lookup(&v6, 3),
        None,
        "an IPv6 tuple found an IPv4 connection"
    );
    assert_eq!(
        ct.process(&v6, Some(&seg(ACK, 1001, 5001, 0)), 3, true)
            .state
            & EST,
        0,
        "an IPv6 segment was taken for the IPv4 connection"
    );
    let a = Tuple {
        v6: true,
        src: 0xfd00_0000_0000_0000_0000_0000_0000_000a,
        dst: 0xfd00_0000_0000_0000_0000_0000_0000_000b,
        ..C
    };
    let mut ct = Conntrack::new(16);
    assert_eq!(
        ct.process(&a, Some(&seg(SYN, 1, 0, 0)), 0, true).state,
        TRK | NEW
    );
    assert_eq!(
        ct.process(&a.reverse(), Some(&seg(SYN | ACK, 9, 2, 0)), 1, true)
            .state,
        TRK | EST | RPL
    );
    assert_eq!(
        ct.process(&a, Some(&seg(ACK, 2, 10, 0)), 2, true).state,
        TRK | EST
    );
    assert_eq!(ct.iter().next().unwrap().state, ConnState::TcpEstablished);
    assert_eq!(ct.lookup(&Tuple { v6: false, ..a }, 3), None);
}
