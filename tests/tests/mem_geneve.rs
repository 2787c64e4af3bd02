//! In-memory only: the overlay's wire format, what leaves toward a remote chassis
//! (outer headers, metadata, one copy per chassis for a flood) and what a
//! received Geneve frame becomes (delivered, or counted and dropped).

use switchyard_benches::{
    encapsulated_to_p1, frame64, overlay, LOCAL_IP, LOCAL_MAC, REMOTE_IP, REMOTE_MAC, UNDERLAY_SLOT,
};
use switchyard_geneve::tunnel::{decap, DecapError};
use switchyard_southbound::DropReason;
use switchyard_tests::memory::mem;

fn key_of(snap: &switchyard_southbound::pb::SbSnapshot, n: &str) -> u16 {
    snap.port_bindings
        .iter()
        .find(|b| b.logical_port == n)
        .map(|b| b.tunnel_key as u16)
        .unwrap()
}

#[test]
fn unicast_to_a_remote_port_is_encapsulated_toward_its_chassis() {
    let (mut pmd, stats, snap) = overlay(Vec::new(), Vec::new(), false);
    let f = frame64(1, 2);
    mem(&mut pmd, 0).rx.push_back(f.clone());
    pmd.poll_once();
    let tx = std::mem::take(&mut mem(&mut pmd, UNDERLAY_SLOT as usize).tx);
    assert_eq!(tx.len(), 1, "drops {:?}", stats.drops);
    assert_eq!(&tx[0][0..6], &REMOTE_MAC.to_be_bytes()[2..]);
    assert_eq!(&tx[0][6..12], &LOCAL_MAC.to_be_bytes()[2..]);
    let d = decap(&tx[0]).unwrap();
    assert_eq!(d.src_ip, LOCAL_IP);
    assert_eq!(&tx[0][30..34], &REMOTE_IP.to_be_bytes());
    assert_eq!(d.inner, &f[..], "the inner frame is untouched");
    assert_eq!(d.metadata.ingress, key_of(&snap, "p1"));
    assert_eq!(d.metadata.egress, key_of(&snap, "p2"));
    assert!(mem(&mut pmd, 1).tx.is_empty());
}

#[test]
fn a_broadcast_goes_to_local_ports_and_once_to_each_remote_chassis() {
    let (mut pmd, _, _) = overlay(Vec::new(), Vec::new(), false);
    let mut f = frame64(1, 2);
    f[0..6].copy_from_slice(&[0xff; 6]);
    mem(&mut pmd, 0).rx.push_back(f.clone());
    pmd.poll_once();
    assert_eq!(mem(&mut pmd, 1).tx, vec![f.clone()], "local p3 gets it");
    let tx = std::mem::take(&mut mem(&mut pmd, UNDERLAY_SLOT as usize).tx);
    assert_eq!(tx.len(), 1, "one copy for chassis ch2");
    let d = decap(&tx[0]).unwrap();
    assert_eq!(d.metadata.egress, 0x8000, "the flood group: ch2 expands it");
}

#[test]
fn a_received_frame_runs_the_egress_pipeline_for_its_port() {
    let (mut pmd, stats, snap) = overlay(Vec::new(), Vec::new(), false);
    let enc = encapsulated_to_p1(&snap);
    mem(&mut pmd, UNDERLAY_SLOT as usize)
        .rx
        .push_back(enc.clone());
    pmd.poll_once();
    let inner = decap(&enc).unwrap().inner.to_vec();
    assert_eq!(mem(&mut pmd, 0).tx, vec![inner], "drops {:?}", stats.drops);
    assert!(mem(&mut pmd, 1).tx.is_empty());
    assert!(
        mem(&mut pmd, UNDERLAY_SLOT as usize).tx.is_empty(),
        "never sent back out"
    );
}

#[test]
fn unknown_keys_and_malformed_tunnel_frames_are_counted_and_dropped() {
    let (mut pmd, stats, snap) = overlay(Vec::new(), Vec::new(), false);
    let good = encapsulated_to_p1(&snap);
    let mut unknown_vni = good.clone();
    unknown_vni[14 + 20 + 8 + 4..14 + 20 + 8 + 7].copy_from_slice(&[0x0a, 0xbc, 0xde]);
    let mut unknown_port = good.clone();
    unknown_port[14 + 20 + 8 + 14..14 + 20 + 8 + 16].copy_from_slice(&0x7777u16.to_be_bytes());
    let truncated = good[..14 + 20 + 8 + 6].to_vec();
    assert_eq!(decap(&truncated).unwrap_err(), DecapError::MalformedOuter);
    for f in [unknown_vni, unknown_port, truncated] {
        mem(&mut pmd, UNDERLAY_SLOT as usize).rx.push_back(f);
    }
    mem(&mut pmd, UNDERLAY_SLOT as usize).rx.push_back(good);
    pmd.poll_once();
    assert_eq!(stats.drops[DropReason::UnknownTunnelKey as usize].get(), 2);
    assert_eq!(stats.drops[DropReason::MalformedTunnel as usize].get(), 1);
    assert_eq!(
        mem(&mut pmd, 0).tx.len(),
        1,
        "the good frame still gets through"
    );
}

/// Outer IPv4 addresses and the ingress key in a frame from [`encapsulated_to_p1`].
const OUTER_SRC: std::ops::Range<usize> = 14 + 12..14 + 16;
const OUTER_DST: std::ops::Range<usize> = 14 + 16..14 + 20;
const INGRESS_KEY: std::ops::Range<usize> = 14 + 20 + 8 + 12..14 + 20 + 8 + 14;

#[test]
fn only_known_chassis_may_tunnel_to_us_and_only_for_their_own_ports() {
    let (mut pmd, stats, snap) = overlay(Vec::new(), Vec::new(), false);
    let good = encapsulated_to_p1(&snap);
    // A stranger on the underlay (no chassis has 172.31.0.99).
    let mut stranger = good.clone();
    stranger[OUTER_SRC].copy_from_slice(&[172, 31, 0, 99]);
    // Sent to an address that is not our encap IP.
    let mut elsewhere = good.clone();
    elsewhere[OUTER_DST].copy_from_slice(&[172, 31, 0, 77]);
    // ch2 speaking for p3, a port bound here: it would skip p3's port security.
    let mut impostor = good.clone();
    impostor[INGRESS_KEY].copy_from_slice(&key_of(&snap, "p3").to_be_bytes());
    // A critical option nobody knows, after OVN's (options area grows by 8).
    let mut critical = good.clone();
    let opt_end = 14 + 20 + 8 + 16;
    critical.splice(opt_end..opt_end, [0x01, 0x03, 0x81, 0x01, 0, 0, 0, 0]);
    critical[14 + 20 + 8] = 4; // 4 words of options
    let grow = |f: &mut Vec<u8>, at: usize| {
        let v = u16::from_be_bytes([f[at], f[at + 1]]) + 8;
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
    };
    grow(&mut critical, 14 + 2); // IP total length
    grow(&mut critical, 14 + 20 + 4); // UDP length
    for f in [stranger, elsewhere, impostor, critical] {
        mem(&mut pmd, UNDERLAY_SLOT as usize).rx.push_back(f);
    }
    mem(&mut pmd, UNDERLAY_SLOT as usize).rx.push_back(good);
    pmd.poll_once();
    for r in [
        DropReason::TunnelUnknownSource,
        DropReason::TunnelWrongDestination,
        DropReason::TunnelIngressNotBound,
        DropReason::TunnelUnknownCritical,
    ] {
        assert_eq!(stats.drops[r as usize].get(), 1, "{r}: {:?}", stats.drops);
    }
    assert_eq!(
        mem(&mut pmd, 0).tx.len(),
        1,
        "only ch2's own packet reaches p1"
    );
    assert!(mem(&mut pmd, 1).tx.is_empty());
}
