use super::*;
use switchyard_southbound::{DropReason, Field};

fn d(verdict: Verdict) -> Decision {
    Decision {
        verdict,
        tun_md: 0,
        commit: None,
    }
}

fn key(dst: u32, sport: u16) -> FlowKey {
    FlowKey {
        in_port: 1,
        eth_type: 0x800,
        ip_dst: dst,
        l4_src: sport,
        ..Default::default()
    }
}

fn wc_dst(prefix: u32) -> Wildcards {
    let mut w = Wildcards::default();
    w.mask.in_port = u16::MAX;
    w.exact(Field::EthType);
    w.field(Field::Ip4Dst, u64::from(u32::MAX << (32 - prefix)));
    w
}

#[test]
fn one_entry_covers_every_packet_agreeing_on_its_mask() {
    let mut c = Megaflow::new(64, 7);
    c.sync(1);
    let k = key(0x0a00_0105, 1000);
    assert!(c.lookup(&k, 0).is_none());
    c.insert(&k, &wc_dst(24), &d(Verdict::Output), &[3], 5)
        .unwrap();
    // Another source port and host in the /24: the same entry.
    let e = c.lookup(&key(0x0a00_01fe, 2000), 9).unwrap();
    assert_eq!(&e.out[..usize::from(e.n_out)], &[3]);
    assert_eq!((e.hits, e.installed_ms, e.used_ms), (1, 5, 9));
    // Outside the /24, or another input port: not covered.
    assert!(c.lookup(&key(0x0a00_0205, 1000), 0).is_none());
    assert!(c.lookup(&FlowKey { in_port: 2, ..k }, 0).is_none());
    assert_eq!((c.len(), c.mask_count()), (1, 1));
}

#[test]
fn masks_are_shared_and_capped() {
    let mut c = Megaflow::new(4096, 1);
    c.sync(1);
    for i in 0..MAX_MASKS as u32 {
        let k = key(0x0a00_0000 + (i << 8), 1);
        c.insert(&k, &wc_dst(24), &d(Verdict::Output), &[i as u16], 0)
            .unwrap();
    }
    assert_eq!(c.mask_count(), 1, "one shape, one mask");
    // 63 more shapes: the /24 and a partial L4 destination mask each.
    for i in 1..MAX_MASKS as u64 {
        let mut w = wc_dst(24);
        w.field(Field::L4Dst, i);
        c.insert(&key(0, 1), &w, &d(Verdict::Output), &[1], 0)
            .unwrap();
    }
    assert_eq!(c.mask_count(), MAX_MASKS);
    let mut more = wc_dst(32);
    more.exact(Field::L4Src);
    assert_eq!(
        c.insert(&key(0, 1), &more, &d(Verdict::Output), &[1], 0),
        Err(NotInstalled::Masks)
    );
    assert_eq!(
        c.insert(&key(0, 1), &wc_dst(8), &d(Verdict::Output), &[1; 7], 0),
        Err(NotInstalled::FanOut)
    );
}

#[test]
fn a_table_swap_without_revalidation_drops_everything() {
    let mut c = Megaflow::new(64, 1);
    c.sync(1);
    let k = key(0x0a00_0105, 1);
    c.insert(&k, &wc_dst(24), &d(Verdict::Output), &[3], 0)
        .unwrap();
    c.sync(2);
    assert!(c.lookup(&k, 0).is_none());
    assert_eq!((c.len(), c.mask_count()), (0, 0));
}

#[test]
fn revalidation_keeps_what_holds_and_drops_the_rest() {
    let mut c = Megaflow::new(64, 1);
    c.sync(1);
    let (a, b, x) = (
        key(0x0a00_0105, 1),
        key(0x0a00_0205, 1),
        key(0x0a00_0305, 1),
    );
    for (k, port) in [(a, 3), (b, 4), (x, 5)] {
        c.insert(&k, &wc_dst(24), &d(Verdict::Output), &[port], 0)
            .unwrap();
    }
    // The new tables: a's subnet unchanged, b's now goes elsewhere, x's now
    // depends on the source port (a bit outside its mask).
    let mut out = Vec::new();
    let r = c.revalidate(
        2,
        100,
        |k, out, wc| {
            *wc = wc_dst(24);
            match k.ip_dst >> 8 & 0xff {
                1 => out.push(3),
                2 => out.push(9),
                _ => {
                    wc.exact(Field::L4Src);
                    out.push(5)
                }
            }
            d(Verdict::Output)
        },
        &mut out,
    );
    assert_eq!(
        r,
        Revalidated {
            kept: 1,
            dropped: 2
        }
    );
    assert!(c.lookup(&key(0x0a00_0177, 8), 0).is_some());
    assert!(c.lookup(&b, 0).is_none());
    assert!(c.lookup(&x, 0).is_none());
    // Past the budget: dropped without a walk.
    let r = c.revalidate(3, 0, |_, _, _| unreachable!(), &mut out);
    assert_eq!(
        r,
        Revalidated {
            kept: 0,
            dropped: 1
        }
    );
    assert!(c.is_empty());
}

#[test]
fn unused_masks_go_after_revalidation() {
    let mut c = Megaflow::new(64, 1);
    c.sync(1);
    let a = key(0x0a00_0105, 1);
    let b = key(0x0b00_0000, 1);
    c.insert(&a, &wc_dst(24), &d(Verdict::Output), &[3], 0)
        .unwrap();
    c.insert(
        &b,
        &wc_dst(8),
        &d(Verdict::Drop(DropReason::NoRoute)),
        &[],
        0,
    )
    .unwrap();
    assert_eq!(c.mask_count(), 2);
    let mut out = Vec::new();
    c.revalidate(
        2,
        100,
        |k, out, wc| {
            if k.ip_dst >> 24 == 10 {
                *wc = wc_dst(24);
                out.push(4);
                return d(Verdict::Output);
            }
            *wc = wc_dst(8);
            d(Verdict::Drop(DropReason::NoRoute))
        },
        &mut out,
    );
    assert_eq!(c.mask_count(), 1, "the /24's entry changed, its mask went");
    let e = *c
        .lookup(&key(0x0b01_0203, 5), 0)
        .expect("renumbered entry found");
    assert_eq!(e.verdict, Verdict::Drop(DropReason::NoRoute));
    assert_eq!(*c.mask(&e), wc_dst(8).mask);
}

#[test]
fn covers_is_a_subset_test() {
    let w = wc_dst(24);
    assert!(w.covers(&wc_dst(16).mask));
    assert!(!w.covers(&wc_dst(32).mask));
    assert_eq!(
        masked(&key(0x0a00_01ff, 9), &w.mask),
        FlowKey {
            l4_src: 0,
            ip_dst: 0x0a00_0100,
            ..key(0, 0)
        }
    );
}
