//! The service path on one core: a packet of an established connection to a
//! load-balancer VIP (conntrack lookup, DNAT rewrite with checksum updates,
//! cached pipeline, transmit) with 1, 1,000 and 100,000 VIPs, and connection
//! setup (VIP lookup, Maglev backend choice, conntrack commit, rewrite) per
//! new connection, with 1 and 100,000 VIPs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use switchyard_benches::{pmd_on_snapshot, port_mac, routed_nb, router_mac, udp64};
use switchyard_northd::compile::compile;
use switchyard_northd::model::Nb;
use switchyard_northd::server::sb::Sb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::port::BATCH;

/// The VIP of service `k`: 10.96.0.0/12 upwards, port 80.
fn vip(k: usize) -> [u8; 4] {
    let v = (10u32 << 24 | 96 << 16) + k as u32 + 1;
    v.to_be_bytes()
}

/// [`routed_nb`] (p1 on ls0, p2 on ls1 behind lr0) with one load balancer of
/// `vips` VIPs on ls0, each served by two backends on p2 (10.1.0.2, ports 8080 and 8081).
fn service_nb(vips: usize) -> Nb {
    let mut nb = routed_nb(0);
    let mut lb = pb::LoadBalancer {
        name: "svc".into(),
        protocol: "udp".into(),
        ..Default::default()
    };
    for k in 0..vips {
        let v = std::net::Ipv4Addr::from(vip(k));
        lb.vips
            .insert(format!("{v}:80"), "10.1.0.2:8080,10.1.0.2:8081".into());
    }
    let ops = vec![
        Op::LbAdd(lb),
        Op::LbAttach(pb::LbAttach {
            lb: "svc".into(),
            switch_name: "ls0".into(),
            router_name: String::new(),
        }),
    ];
    nb.apply_all(ops).expect("valid load balancer");
    nb
}

/// A 64-byte UDP frame from p1 to VIP `k` port 80, source port `sport`.
fn to_vip(k: usize, sport: u16) -> Vec<u8> {
    let mut f = udp64(port_mac(1), router_mac(0), [10, 0, 0, 1], vip(k));
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f
}

fn snapshot(nb: &Nb) -> pb::SbSnapshot {
    let mut sb = Sb::default();
    sb.set_compiled(compile(nb), 1);
    sb.snapshot()
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("service_path_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    for vips in [1usize, 1_000, 100_000] {
        let snap = snapshot(&service_nb(vips));
        // 32 connections, to VIPs spread over the whole set.
        let frames: Vec<Vec<u8>> = (0..BATCH)
            .map(|j| to_vip(j * vips / BATCH, 40_000 + j as u16))
            .collect();
        let (mut pmd, stats) = pmd_on_snapshot(&snap, 2, frames, 4096);
        for _ in 0..4 {
            pmd.poll_port(0);
        }
        assert_eq!(pmd.edge().ct.len(), BATCH, "one connection per flow");
        g.bench_function(format!("{vips}_vips"), |b| {
            b.iter(|| black_box(pmd.poll_port(0)))
        });
        let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
        assert_eq!(drops, 0, "the bench must forward, not drop");
        assert!(stats.nat_rewrites.get() > 0);
    }
    g.finish();
}

/// The established service path on 1 and 2 PMD threads, each pinned to its
/// own core with its own ports and 32 connections, timed together: with one
/// conntrack shared by both (`shared`, what vswitchd runs: stateful batches
/// in stages, the lock held only for the conntrack work), the same with
/// batches packet by packet under one lock each (`shared_one_by_one`, what
/// it ran before), and, as the bound any sharding or steering could reach,
/// with a table each (`own`). `service_path_64B_pmds/N_...`.
fn established_pmds(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("service_path_64B_pmds");
    let snap = snapshot(&service_nb(1));
    for (n, mode) in [
        (1usize, "shared"),
        (2, "shared_one_by_one"),
        (2, "shared"),
        (2, "own"),
    ] {
        if n > cores {
            eprintln!("service_path_64B_pmds/{n}: this machine has {cores} core(s); skipped");
            continue;
        }
        let mut pmds: Vec<_> = (0..n)
            .map(|k| {
                let frames: Vec<Vec<u8>> = (0..BATCH)
                    .map(|j| to_vip(0, 40_000 + (k * BATCH + j) as u16))
                    .collect();
                pmd_on_snapshot(&snap, 2, frames, 4096).0
            })
            .collect();
        let shared = mode != "own";
        if shared {
            let edge = pmds[0].edge_handle();
            for p in &mut pmds[1..] {
                p.share_edge(edge.clone());
            }
            let staged = n > 1 && mode == "shared";
            for p in &mut pmds {
                p.set_staged(staged);
            }
        }
        for p in &mut pmds {
            for _ in 0..4 {
                p.poll_port(0);
            }
        }
        let entries: usize = if shared {
            pmds[0].edge().ct.len()
        } else {
            pmds.iter().map(|p| p.edge().ct.len()).sum()
        };
        assert_eq!(entries, BATCH * n, "one connection per flow");
        g.throughput(Throughput::Elements((BATCH * n) as u64));
        let name = format!("{n}_{mode}");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| switchyard_benches::time_pinned(&mut pmds, iters))
        });
    }
    g.finish();
}

fn setup(c: &mut Criterion) {
    use switchyard_vswitch::ct::edge::{ingress, Edge, EdgeState};
    use switchyard_vswitch::stats::PmdStats;
    use switchyard_vswitch::tables::{LocalBinding, Tables};
    let mut g = c.benchmark_group("lb_connection_setup");
    g.throughput(Throughput::Elements(1));
    for vips in [1usize, 100_000] {
        let snap = snapshot(&service_nb(vips));
        let local = [LocalBinding {
            slot: 0,
            iface: "m1".into(),
            lport: "p1".into(),
        }];
        let t = Tables::build(1, &snap, "", &local);
        const N: usize = 65_536;
        let frames: Vec<Vec<u8>> = (0..N)
            .map(|i| to_vip((i * 7919) % vips, 1024 + (i % 60_000) as u16))
            .collect();
        // Past 60,000 source ports, another client address: every tuple differs.
        let keys: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut k = switchyard_vswitch::dp::packet::extract(f, 0).expect("valid");
                k.ip_src = 0x0a00_0001 + (i / 60_000) as u32;
                k
            })
            .collect();
        let mut st = EdgeState::new(N + 16);
        let stats = Arc::new(PmdStats::default());
        let mut buf = [0u8; 64];
        g.bench_function(format!("{vips}_vips"), |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    st.ct.flush();
                    let n = ((iters - done) as usize).min(N);
                    let t0 = std::time::Instant::now();
                    for i in 0..n {
                        buf[..frames[i].len()].copy_from_slice(&frames[i]);
                        let mut k = keys[i];
                        let e = ingress(&t, &mut st, &stats, &mut buf[..frames[i].len()], &mut k);
                        assert_eq!(e, Edge::Pass);
                        black_box(k);
                    }
                    total += t0.elapsed();
                    done += n as u64;
                }
                total
            })
        });
        // (Zero when a filter skipped this bench.)
        assert!(
            stats.lb_new.get() > 0 || st.ct.is_empty(),
            "connections were set up"
        );
    }
    g.finish();
}

/// [`switch_nb`] with `n` stateful ACLs on ls0 (n = 0: no ACLs, the switch is
/// not tracked): UDP from 10.0.0.0/8 allowed, the rest filler that never matches.
fn acl_nb(n: usize) -> Nb {
    let mut nb = switchyard_benches::switch_nb(2);
    let acl = |dir: &str, prio: u32, m: String, action: &str| {
        Op::AclAdd(pb::Acl {
            switch_name: "ls0".into(),
            direction: dir.into(),
            priority: prio,
            r#match: m,
            action: action.into(),
            name: String::new(),
        })
    };
    let mut ops = Vec::new();
    if n > 0 {
        ops.push(acl(
            "from-lport",
            1000,
            "ip4.src == 10.0.0.0/8 && udp".into(),
            "allow-related",
        ));
    }
    for i in 1..n {
        ops.push(acl(
            "to-lport",
            (i % 30_000) as u32,
            format!(
                "ip4.src == 192.168.{}.{} && tcp.dst == 22",
                i / 250,
                i % 250
            ),
            "drop",
        ));
    }
    nb.apply_all(ops).expect("valid ACLs");
    nb
}

/// The switching path with and without stateful ACLs: 32 UDP flows from p1
/// to p2, warm caches. With ACLs every packet is looked up in conntrack and
/// its cached verdict carries the commit.
fn acl_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl_path_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    for acls in [0usize, 1, 1000] {
        let snap = snapshot(&acl_nb(acls));
        let frames: Vec<Vec<u8>> = (0..BATCH)
            .map(|j| {
                let mut f = switchyard_benches::frame64(1, 2);
                f[34..36].copy_from_slice(&(40_000 + j as u16).to_be_bytes());
                f
            })
            .collect();
        let (mut pmd, stats) = pmd_on_snapshot(&snap, 2, frames, 4096);
        for _ in 0..4 {
            pmd.poll_port(0);
        }
        let tracked = if acls > 0 { BATCH } else { 0 };
        assert_eq!(pmd.edge().ct.len(), tracked, "one connection per flow");
        g.bench_function(format!("{acls}_acls"), |b| {
            b.iter(|| black_box(pmd.poll_port(0)))
        });
        let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
        assert_eq!(drops, 0, "the bench must forward, not drop");
    }
    g.finish();
}

criterion_group!(benches, established, established_pmds, setup, acl_path);
criterion_main!(benches);
