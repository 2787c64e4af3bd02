//! The commit of a stateful batch's stage 4 meets a table that was unlocked
//! since its packet was looked at (stage 2): another PMD, housekeeping or an
//! earlier packet of the batch may have changed it.

use super::*;
use crate::dp::packet::extract;
use crate::dp::pipeline::Commit;

const ZONE: u32 = 7 | crate::tables::STATEFUL_ZONE;

fn udp(src: [u8; 4], dst: [u8; 4]) -> (Vec<u8>, FlowKey) {
    let f = crate::dp::packet::tests::udp_frame(1, 2, src, dst);
    let k = extract(&f, 0).unwrap();
    (f, k)
}

fn look(st: &mut EdgeState, (f, k): &(Vec<u8>, FlowKey)) -> Tracked {
    let mut k = *k;
    track(st, f, &mut k, ZONE).expect("a UDP datagram is tracked")
}

fn mark(m: u32) -> Commit {
    Commit { mark: m, label: m }
}

#[test]
fn two_new_packets_of_one_connection_in_a_batch_enter_it_once() {
    let mut st = EdgeState::new(16);
    let a = udp([10, 0, 0, 1], [10, 0, 0, 2]);
    // Both looked at before either is committed: both new.
    let (t1, t2) = (look(&mut st, &a), look(&mut st, &a));
    assert_eq!((t1.slot, t2.slot), (None, None));
    assert_eq!(t1.state & state::NEW, state::NEW);
    commit(&mut st, &t1, mark(3)).unwrap();
    commit(&mut st, &t2, mark(3)).unwrap();
    assert_eq!(st.ct.len(), 1, "one connection");
    assert_eq!(
        st.ct.stats.nat_collisions, 0,
        "the second is not a collision"
    );
    let c = st.ct.iter().next().unwrap();
    assert_eq!(c.packets[0], 2, "both packets counted");
    assert_eq!((c.mark, c.label), (3, 3));
}

#[test]
fn a_commit_whose_slot_was_reused_since_marks_its_own_connection() {
    let mut st = EdgeState::new(16);
    let a = udp([10, 0, 0, 1], [10, 0, 0, 2]);
    let b = udp([10, 0, 0, 3], [10, 0, 0, 4]);
    let first = look(&mut st, &a);
    commit(&mut st, &first, mark(1)).unwrap();
    // A's packet is looked at: its connection's slot.
    let tr = look(&mut st, &a);
    let slot = tr.slot.expect("established");
    // Unlocked: A's connection is flushed and B's takes its slot.
    st.ct.forget(slot);
    let tb = look(&mut st, &b);
    commit(&mut st, &tb, mark(2)).unwrap();
    assert_eq!(
        st.ct.lookup(&tb.tuple, st.now_ms),
        Some(slot),
        "B took A's slot"
    );
    // A's commit must not touch B's connection: A is entered again.
    commit(&mut st, &tr, mark(9)).unwrap();
    let c = st.ct.get(slot).unwrap();
    assert_eq!((c.orig, c.mark, c.label), (tb.tuple, 2, 2), "B's untouched");
    let again = st.ct.lookup(&tr.tuple, st.now_ms).expect("A entered again");
    assert_ne!(again, slot);
    assert_eq!(st.ct.get(again).unwrap().mark, 9);
    assert_eq!(st.ct.len(), 2);
}
