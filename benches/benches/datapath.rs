//! Datapath benches on the in-memory port, 64-byte frames, one core: the L2
//! pipeline with a warm exact-match cache (1 and 10,000 destination MACs), the
//! slow path alone, and flow-key extraction alone.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use switchyard_benches::{frame64, pmd, routed_frame64, routed_nb, switch_nb};
use switchyard_vswitch::port::BATCH;

fn l2_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2_pipeline_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    for macs in [1usize, 10_000] {
        let ports = macs + 1;
        let nb = switch_nb(ports);
        // Port 1 sends to `macs` destinations in turn.
        let frames: Vec<Vec<u8>> = (0..macs).map(|k| frame64(1, 2 + k)).collect();
        let (mut pmd, stats) = pmd(&nb, ports, frames, 32_768);
        for _ in 0..(macs / BATCH + 2) * 4 {
            pmd.poll_port(0); // warm the cache
        }
        let misses = stats.emc_misses.get();
        g.bench_function(format!("{macs}_macs"), |b| {
            b.iter(|| black_box(pmd.poll_port(0)))
        });
        let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
        assert_eq!(drops, 0, "the bench must forward, not drop");
        eprintln!(
            "{macs} MACs: warm-up misses {misses}, misses during the run {}",
            stats.emc_misses.get() - misses
        );
    }
    g.finish();
}

/// The L2 pipeline on 1 and 2 PMD threads, each pinned to its own core and
/// polling its own ports (as the rxq assignment gives them), all batches
/// timed together: what a second core adds (`l2_pipeline_64B_pmds/N`, the
/// throughput is every PMD's packets).
fn l2_pipeline_pmds(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("l2_pipeline_64B_pmds");
    for n in [1usize, 2] {
        if n > cores {
            eprintln!("l2_pipeline_64B_pmds/{n}: this machine has {cores} core(s); skipped");
            continue;
        }
        let nb = switch_nb(2);
        let mut pmds: Vec<_> = (0..n)
            .map(|_| {
                let (mut p, _) = pmd(&nb, 2, vec![frame64(1, 2)], 32_768);
                for _ in 0..8 {
                    p.poll_port(0);
                }
                p
            })
            .collect();
        g.throughput(Throughput::Elements((BATCH * n) as u64));
        g.bench_function(format!("{n}"), |b| {
            b.iter_custom(|iters| switchyard_benches::time_pinned(&mut pmds, iters))
        });
    }
    g.finish();
}

fn slow_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("slow_path_64B");
    g.throughput(Throughput::Elements(1));
    for macs in [1usize, 10_000] {
        let nb = switch_nb(macs + 1);
        let frames = vec![frame64(1, 2)];
        let (pmd, _) = pmd(&nb, 2, frames, 2);
        let key = switchyard_vswitch::dp::packet::extract(&frame64(1, 2), 0).expect("valid frame");
        g.bench_function(format!("{macs}_macs"), |b| {
            b.iter_batched(
                || key,
                |k| black_box(pmd.trace_verdict(&k)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// switch -> router -> switch with 10 and 100,000 static routes: the warm-cache
/// path (EMC hit, rewrite, transmit) and the slow path (LPM lookup included).
fn routed(c: &mut Criterion) {
    let mut g = c.benchmark_group("routed_pipeline_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut slow = Vec::new();
    for routes in [10usize, 100_000] {
        let nb = routed_nb(routes);
        let (mut pmd, stats) = pmd(&nb, 2, vec![routed_frame64()], 4096);
        for _ in 0..4 {
            pmd.poll_port(0);
        }
        g.bench_function(format!("{routes}_routes"), |b| {
            b.iter(|| black_box(pmd.poll_port(0)))
        });
        let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
        assert_eq!(drops, 0, "the bench must route, not drop");
        let key = switchyard_vswitch::dp::packet::extract(&routed_frame64(), 0).expect("valid");
        assert!(matches!(
            pmd.trace_verdict(&key),
            switchyard_vswitch::dp::pipeline::Verdict::Routed(_)
        ));
        slow.push((routes, pmd, key));
    }
    g.finish();
    let mut g = c.benchmark_group("routed_slow_path_64B");
    g.throughput(Throughput::Elements(1));
    for (routes, pmd, key) in &slow {
        g.bench_function(format!("{routes}_routes"), |b| {
            b.iter(|| black_box(pmd.trace_verdict(black_box(key))))
        });
    }
    g.finish();
}

/// The overlay on the in-memory path, 64-byte inner frames, warm cache: encap
/// (local pod -> remote chassis: outer headers written, frame queued on the
/// underlay) and decap (underlay -> local pod: outer headers checked, egress
/// pipeline by cache, inner frame delivered).
fn geneve(c: &mut Criterion) {
    use switchyard_benches::{encapsulated_to_p1, overlay, UNDERLAY_SLOT};
    let mut g = c.benchmark_group("geneve_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut pmd, stats, snap) = overlay(vec![frame64(1, 2)], Vec::new(), true);
    for _ in 0..4 {
        pmd.poll_port(0);
    }
    g.bench_function("encap", |b| b.iter(|| black_box(pmd.poll_port(0))));
    let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
    assert_eq!(drops, 0, "the encap bench must send, not drop");
    let enc = encapsulated_to_p1(&snap);
    let (mut pmd, stats, _) = overlay(Vec::new(), vec![enc], true);
    for _ in 0..4 {
        pmd.poll_port(UNDERLAY_SLOT);
    }
    g.bench_function("decap", |b| {
        b.iter(|| black_box(pmd.poll_port(UNDERLAY_SLOT)))
    });
    let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
    assert_eq!(drops, 0, "the decap bench must deliver, not drop");
    g.finish();
}

fn parse(c: &mut Criterion) {
    let f = frame64(1, 2);
    let mut g = c.benchmark_group("flow_key_extract");
    g.throughput(Throughput::Elements(1));
    g.bench_function("udp_64B", |b| {
        b.iter(|| black_box(switchyard_vswitch::dp::packet::extract(black_box(&f), 0)))
    });
    g.finish();
}

/// `n` distinct 5-tuples from port 1 to 100 destination ports (100 megaflows,
/// each covering every source port): with 100,000 and more flows the
/// exact-match cache cannot hold them, and the megaflow cache answers.
/// `flows_64B_options` runs 100,000 flows with the megaflow cache off (every
/// exact-match miss walks the pipeline) and with the exact-match cache off
/// (`--emc-insert-inv-prob 0`: megaflows only), for the ratios.
fn flows(c: &mut Criterion) {
    const DSTS: usize = 100;
    type Run = (&'static str, &'static str, usize, Option<(usize, u32)>);
    let runs: [Run; 6] = [
        ("flows_64B", "1", 1, None),
        ("flows_64B", "1000", 1_000, None),
        ("flows_64B", "100000", 100_000, None),
        ("flows_64B", "1000000", 1_000_000, None),
        (
            "flows_64B_options",
            "no_megaflow_100000",
            100_000,
            Some((0, 100)),
        ),
        (
            "flows_64B_options",
            "emc_off_100000",
            100_000,
            Some((32_768, 0)),
        ),
    ];
    let nb = switch_nb(DSTS + 1);
    for group in ["flows_64B", "flows_64B_options"] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(BATCH as u64));
        for &(_, name, n, cfg) in runs.iter().filter(|r| r.0 == group) {
            let frames: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let mut f = frame64(1, 2 + i % DSTS);
                    let sport = 1024 + (i / DSTS) as u16;
                    f[34..36].copy_from_slice(&sport.to_be_bytes());
                    f
                })
                .collect();
            let (mut pmd, stats) = pmd(&nb, DSTS + 1, frames, 16_384);
            if let Some((entries, inv)) = cfg {
                pmd.set_megaflow(entries, inv);
            }
            for _ in 0..(n / BATCH + 2) * 2 {
                pmd.poll_port(0); // warm both caches
            }
            let walks = stats.megaflow_misses.get();
            g.bench_function(name, |b| b.iter(|| black_box(pmd.poll_port(0))));
            let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
            assert_eq!(drops, 0, "the bench must forward, not drop");
            eprintln!(
                "{group}/{name}: emc hits {} megaflow hits {} slow-path walks {} (warm-up {walks})",
                stats.emc_hits.get(),
                stats.megaflow_hits.get(),
                stats.megaflow_misses.get()
            );
        }
        g.finish();
    }
}

criterion_group!(
    benches,
    l2_pipeline,
    l2_pipeline_pmds,
    slow_path,
    routed,
    geneve,
    parse,
    flows
);
criterion_main!(benches);
