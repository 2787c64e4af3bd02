//! The megaflow cache against the slow path, in memory (what only memory can
//! do: millions of pipeline walks on chosen keys). For every traffic
//! scenario's tables: random packets built from the scenario's own addresses
//! and ports, each walked once for its decision and mask; then packets that
//! agree with it on the mask and differ anywhere else must get the same
//! decision from the slow path. A bit the pipeline reads and does not mark
//! fails here.

use switchyard_southbound::field::ct;
use switchyard_tests::memory::{self, Cluster};
use switchyard_tests::scenario::{self, Scenario};
use switchyard_vswitch::dp::flow::{pack_tunnel, FlowKey};
use switchyard_vswitch::dp::megaflow::{blend, Wildcards};
use switchyard_vswitch::dp::packet::extract;
use switchyard_vswitch::dp::pipeline::{run_full, run_wc};
use switchyard_vswitch::tables::Tables;

/// xorshift64*: deterministic, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.next() as usize % v.len()]
    }
}

/// Values per field: those of the scenario's packets, plus a few others.
#[derive(Default)]
struct Pools {
    macs: Vec<u64>,
    ips: Vec<u32>,
    ports: Vec<u16>,
    slots: Vec<u16>,
    tuns: Vec<u64>,
    /// The scenario's packets sent from this chassis (they pass port
    /// security and reach the later stages).
    sent: Vec<FlowKey>,
}

fn pools(s: &Scenario, c: &Cluster, chassis: usize, t: &Tables) -> Pools {
    let mut p = Pools {
        macs: vec![0, 0xffff_ffff_ffff, 0x0200_0000_0001],
        ips: vec![0, 0xffff_ffff, 0x0808_0808],
        ports: vec![0, 53, 67, 68, 80, 443, 8080, 33000],
        tuns: vec![0],
        ..Pools::default()
    };
    for case in &s.cases {
        let (k, slot) = c.at[case.from];
        let Ok(key) = extract(&case.frame, slot) else {
            continue;
        };
        if k == chassis {
            p.slots.push(slot);
            p.sent.push(key);
        }
        p.macs.extend([key.eth_src, key.eth_dst]);
        p.ips.extend([key.ip_src, key.ip_dst]);
        p.ports.extend([key.l4_src, key.l4_dst]);
    }
    // Every gateway and router port a packet may be addressed to.
    for e in s.topo.endpoints() {
        if let Some((mac, ip)) = e.gateway {
            p.macs.push(mac);
            p.ips.push(u32::from(ip));
        }
    }
    // Tunnel metadata naming each known port (and group) of each datapath,
    // from each port of it, on a chassis with an underlay.
    if t.underlay.is_some() {
        let mut keys: Vec<(u32, u32)> = t.ports.keys().copied().collect();
        keys.extend(t.multicast.keys().copied());
        keys.sort();
        for &(dp, egress) in &keys {
            for &(dp2, ingress) in &keys {
                if dp2 == dp {
                    p.tuns.push(pack_tunnel(dp, ingress as u16, egress as u16));
                }
            }
        }
        p.tuns.push(pack_tunnel(999, 1, 1));
    }
    if p.slots.is_empty() {
        p.slots.push(0);
    }
    p
}

/// A packet of the scenario's with some fields changed (three in four
/// times), or one made up of the pools' values.
fn random_key(r: &mut Rng, p: &Pools) -> FlowKey {
    let made = made_up(r, p);
    if p.sent.is_empty() || r.next().is_multiple_of(4) {
        return made;
    }
    let mut k = r.pick(&p.sent);
    let change = |r: &mut Rng, f: &mut dyn FnMut(&FlowKey)| {
        if r.next().is_multiple_of(6) {
            f(&made)
        }
    };
    change(r, &mut |m| k.eth_src = m.eth_src);
    change(r, &mut |m| k.eth_dst = m.eth_dst);
    change(r, &mut |m| k.ip_src = m.ip_src);
    change(r, &mut |m| k.ip_dst = m.ip_dst);
    change(r, &mut |m| k.l4_src = m.l4_src);
    change(r, &mut |m| k.l4_dst = m.l4_dst);
    change(r, &mut |m| k.ip_proto = m.ip_proto);
    change(r, &mut |m| k.ip_ttl = m.ip_ttl);
    change(r, &mut |m| k.ct_state = m.ct_state);
    change(r, &mut |m| k.ct_mark = m.ct_mark);
    change(r, &mut |m| k.ct_label = m.ct_label);
    change(r, &mut |m| k.in_port = m.in_port);
    // Any source port, as a client's connections have.
    if r.next().is_multiple_of(2) {
        k.l4_src = (r.next() % 65536) as u16;
    }
    k
}

fn made_up(r: &mut Rng, p: &Pools) -> FlowKey {
    let eth_type = r.pick(&[0x0800u16, 0x0800, 0x0800, 0x0806, 0x86dd, 0x88cc]);
    let arp = eth_type == 0x0806;
    let v6 = eth_type == 0x86dd;
    let tun = if r.next().is_multiple_of(4) {
        r.pick(&p.tuns)
    } else {
        0
    };
    FlowKey {
        eth_src: r.pick(&p.macs),
        eth_dst: r.pick(&p.macs),
        arp_sha: if arp { r.pick(&p.macs) } else { 0 },
        ip_src: r.pick(&p.ips),
        ip_dst: r.pick(&p.ips),
        in_port: if tun != 0 { 200 } else { r.pick(&p.slots) },
        eth_type,
        vlan_tci: 0,
        l4_src: r.pick(&p.ports),
        l4_dst: r.pick(&p.ports),
        ip_proto: if arp {
            0
        } else {
            r.pick(&[1u8, 6, 17, 17, 132])
        },
        ip_ttl: if arp { 0 } else { r.pick(&[0u8, 1, 2, 63, 64]) },
        arp_op: if arp { r.pick(&[1u8, 2, 3]) } else { 0 },
        ip_frag: 0,
        ct_state: r.pick(&[
            0,
            ct::TRK | ct::NEW,
            ct::TRK | ct::EST,
            ct::TRK | ct::EST | ct::RPL,
            ct::TRK | ct::REL,
            ct::TRK | ct::INV,
        ]),
        ct_commit: 0,
        tun,
        ct_mark: r.pick(&[0u32, 1, 2, 0x8000_0000]),
        ct_label: r.pick(&[0u32, 1, 7]),
        ip6_src: if v6 {
            [0xfd00_0010_0244_0001, r.pick(&[1u64, 2, 3])]
        } else {
            [0; 2]
        },
        ip6_dst: if v6 {
            [0xfd00_0010_0244_0001, r.pick(&[1u64, 2, 3])]
        } else {
            [0; 2]
        },
        nd_target: [0; 2],
    }
}

/// Checks `bases` random packets, each against `variants` covered ones;
/// returns how many decisions left the source port wildcarded.
fn check(t: &Tables, p: &Pools, seed: u64, bases: usize, variants: usize) -> usize {
    let mut r = Rng(seed);
    let (mut out, mut out2) = (Vec::new(), Vec::new());
    let mut wildcarded = 0;
    for i in 0..bases {
        let key = random_key(&mut r, p);
        let mut wc = Wildcards::default();
        let d = run_wc(t, &key, &mut out, &mut wc);
        if wc.mask.l4_src == 0 {
            wildcarded += 1;
        }
        for _ in 0..variants {
            let other = random_key(&mut r, p);
            let q = blend(&key, &wc.mask, &other);
            let d2 = run_full(t, &q, &mut out2, None);
            assert!(
                d2 == d && out2 == out,
                "seed {seed} base {i}: {key:?}\n decided {d:?} -> {out:?} with mask {:?}\n \
                 but the covered packet {q:?}\n got {d2:?} -> {out2:?}",
                wc.mask
            );
        }
    }
    wildcarded
}

fn equivalent(s: Scenario) {
    let c = Cluster::new(&s);
    for (k, (pmd, _)) in c.pmds.iter().enumerate() {
        let t = pmd.tables();
        let p = pools(&s, &c, k, t);
        let wildcarded = check(t, &p, 0x5eed + k as u64, 3000, 8);
        // The cache is worth having: many decisions hold for every source port.
        assert!(
            wildcarded > 300,
            "{} chassis {k}: only {wildcarded} of 3000 decisions ignore the source port",
            s.name
        );
    }
}

#[test]
fn l2_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::l2::scenario());
}

#[test]
fn routed_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::routed::scenario());
}

#[test]
fn ecmp_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::ecmp::scenario());
}

#[test]
fn lb_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::service::lb());
}

#[test]
fn nat_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::service::nat());
}

#[test]
fn acl_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::acl::scenario());
}

#[test]
fn overlay_megaflows_agree_with_the_slow_path() {
    equivalent(scenario::overlay::scenario());
}

/// Many source ports of one pair: one slow-path walk, the rest megaflow hits
/// (and into the exact-match cache only now and then).
#[test]
fn a_thousand_source_ports_cost_one_slow_path_walk() {
    let nb = memory::sandbox_nb(2);
    let (mut pmd, stats, _) = memory::pmd_for(&nb, 2);
    let eps = scenario::Topo::switch(2).endpoints();
    let (a, b) = (&eps[0], &eps[1]);
    let frames: Vec<Vec<u8>> = (0..1000u16)
        .map(|sport| {
            switchyard_tests::frames::udp_ports(a.mac, b.mac, a.ip, b.ip, 10_000 + sport, 80, b"x")
        })
        .collect();
    for f in &frames {
        memory::mem(&mut pmd, 0).rx.push_back(f.clone());
    }
    while pmd.poll_once() > 0 {}
    assert_eq!(memory::mem(&mut pmd, 1).tx.len(), 1000, "all delivered");
    assert_eq!(stats.megaflow_misses.get(), 1, "one walk");
    assert_eq!(stats.megaflow_hits.get(), 999);
    assert_eq!(
        stats.emc_hits.get(),
        0,
        "every key is new to the exact-match cache"
    );
}

/// A table swap keeps the megaflows whose decision still holds (a port added
/// elsewhere) and drops those it changes (their destination gone).
#[test]
fn table_changes_revalidate_only_what_they_touch() {
    use std::sync::Arc;
    use switchyard_vswitch::tables::Tables;
    let lports: Vec<String> = (1..=3).map(|i| format!("ls0-pod{i}")).collect();
    let (mut pmd, stats, shared) =
        memory::pmd_on(&memory::southbound(&memory::sandbox_nb(3)), &lports);
    let eps = scenario::Topo::switch(3).endpoints();
    let send = |pmd: &mut switchyard_vswitch::pmd::Pmd, to: usize, sport: u16| {
        let (a, b) = (&eps[0], &eps[to]);
        let f = switchyard_tests::frames::udp_ports(a.mac, b.mac, a.ip, b.ip, sport, 80, b"x");
        memory::mem(pmd, 0).rx.push_back(f);
        while pmd.poll_once() > 0 {}
    };
    send(&mut pmd, 1, 1000);
    send(&mut pmd, 2, 1000);
    assert_eq!(stats.megaflow_misses.get(), 2);
    let publish = |generation: u64, pods: usize| {
        let snap = memory::southbound(&memory::sandbox_nb(pods));
        let t = Tables::build(generation, &snap, "", &memory::bindings(&lports));
        shared.tables.store(Arc::new(t));
    };
    // pod4 joins the switch: both decisions still hold.
    publish(2, 4);
    pmd.refresh_tables();
    assert_eq!(
        (stats.megaflow_kept.get(), stats.megaflow_dropped.get()),
        (2, 0)
    );
    send(&mut pmd, 1, 1001);
    send(&mut pmd, 2, 1001);
    assert_eq!(stats.megaflow_misses.get(), 2, "no walk after the swap");
    // pod3 leaves: the flow to it is dropped, the one to pod2 kept.
    publish(3, 2);
    pmd.refresh_tables();
    assert_eq!(
        (stats.megaflow_kept.get(), stats.megaflow_dropped.get()),
        (3, 1)
    );
    send(&mut pmd, 1, 1002);
    assert_eq!(stats.megaflow_misses.get(), 2);
    assert_eq!(memory::mem(&mut pmd, 1).tx.len(), 3, "pod2 got all three");
    send(&mut pmd, 2, 1002);
    assert_eq!(
        stats.megaflow_misses.get(),
        3,
        "the flow to pod3 walks again"
    );
}

/// `--emc-insert-inv-prob 0` turns the exact-match cache off: the same
/// packet again is a megaflow hit, never an exact-match lookup.
#[test]
fn without_the_exact_match_cache_megaflows_answer() {
    let (mut pmd, stats, _) = memory::pmd_for(&memory::sandbox_nb(2), 2);
    pmd.set_megaflow(1024, 0);
    let eps = scenario::Topo::switch(2).endpoints();
    let (a, b) = (&eps[0], &eps[1]);
    let f = switchyard_tests::frames::udp_ports(a.mac, b.mac, a.ip, b.ip, 5000, 80, b"x");
    for _ in 0..10 {
        memory::mem(&mut pmd, 0).rx.push_back(f.clone());
    }
    while pmd.poll_once() > 0 {}
    assert_eq!(memory::mem(&mut pmd, 1).tx.len(), 10);
    assert_eq!((stats.emc_hits.get(), stats.emc_misses.get()), (0, 0));
    assert_eq!(
        (stats.megaflow_misses.get(), stats.megaflow_hits.get()),
        (1, 9)
    );
}

/// Revalidation gives what a fresh slow path gives, for every kind of change
/// the scenarios make (load balancers, NAT rules, ACLs, static routes, port
/// security), each applied and then taken back: a megaflow that survives a
/// table swap never answers differently from the new tables.
fn revalidation_equals_recompute(s: Scenario) {
    use switchyard_vswitch::dp::megaflow::Megaflow;
    assert_eq!(s.topo.chassis, 1, "single-chassis scenarios");
    let c = Cluster::new(&s);
    let lports: Vec<String> = s.topo.endpoints().iter().map(|e| e.lport.clone()).collect();
    let tables = |generation: u64, config: &[switchyard_southbound::pb::nb_op::Op]| {
        let mut ops = s.topo.nb_ops();
        ops.extend(config.iter().cloned());
        let snap = memory::southbound(&memory::nb_of(&ops));
        Tables::build(generation, &snap, "", &memory::bindings(&lports))
    };
    let full = tables(1, &s.config);
    let p = pools(&s, &c, 0, &full);
    let mut r = Rng(0xc0ffee);
    // Every prefix of the configuration, forwards then backwards.
    let mut steps: Vec<usize> = (0..=s.config.len()).collect();
    steps.extend((0..s.config.len()).rev());
    let mut mf = Megaflow::new(4096, 9);
    let (mut out, mut out2) = (Vec::new(), Vec::new());
    let mut kept = 0;
    for (generation, &n) in (1u64..).zip(&steps) {
        let t = tables(generation, &s.config[..n]);
        if generation == 1 {
            mf.sync(1);
        } else {
            kept += mf
                .revalidate(generation, 4096, |k, o, wc| run_wc(&t, k, o, wc), &mut out)
                .kept;
        }
        for _ in 0..400 {
            let key = random_key(&mut r, &p);
            if let Some(e) = mf.lookup(&key, 0).copied() {
                let d = run_full(&t, &key, &mut out2, None);
                assert!(
                    d.verdict == e.verdict
                        && d.commit == e.commit
                        && out2[..] == e.out[..usize::from(e.n_out)],
                    "{} after {n} config ops: a kept megaflow says {:?} -> {:?}, the tables {d:?} -> {out2:?} for {key:?}",
                    s.name,
                    e.verdict,
                    &e.out[..usize::from(e.n_out)]
                );
                continue;
            }
            let mut wc = Wildcards::default();
            let d = run_wc(&t, &key, &mut out, &mut wc);
            let _ = mf.insert(&key, &wc, &d, &out, 0);
        }
    }
    assert!(kept > 0, "{}: no megaflow survived any change", s.name);
}

#[test]
fn revalidation_equals_recompute_for_load_balancers() {
    revalidation_equals_recompute(scenario::service::lb());
}

#[test]
fn revalidation_equals_recompute_for_nat() {
    revalidation_equals_recompute(scenario::service::nat());
}

#[test]
fn revalidation_equals_recompute_for_acls() {
    revalidation_equals_recompute(scenario::acl::scenario());
}

#[test]
fn revalidation_equals_recompute_for_routes() {
    revalidation_equals_recompute(scenario::ecmp::scenario());
}
