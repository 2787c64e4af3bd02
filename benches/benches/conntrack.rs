//! Conntrack on one core: a packet of an established connection with 1 and
//! 100,000 connections in the table, and connection setup (a SYN committed,
//! then the table flushed in batches so it never fills); each for IPv4 and
//! for IPv6 (`_v6` rows: same table, 128-bit addresses hashed).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard_vswitch::ct::conntrack::{tcp_flags, Conntrack, TcpInfo, Tuple};

fn tuple(i: u32) -> Tuple {
    Tuple {
        zone: 1,
        proto: 6,
        v6: false,
        src: (0x0a00_0000 | (i >> 16)).into(),
        dst: 0x0a01_0001,
        sport: i as u16,
        dport: 80,
    }
}

/// The IPv6 twin of [`tuple`]: fd00:10:244::/64 addresses.
fn tuple6(i: u32) -> Tuple {
    let net: u128 = 0xfd00_0010_0244_0000 << 64;
    Tuple {
        v6: true,
        src: net | u128::from(0x0a00_0000 | (i >> 16)),
        dst: net | 0x0a01_0001,
        ..tuple(i)
    }
}

fn seg(flags: u8, seq: u32) -> TcpInfo {
    TcpInfo {
        flags,
        seq,
        ack: 1,
        window: 65535,
        payload_len: 0,
    }
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack_established");
    g.throughput(Throughput::Elements(1));
    for (fam, tuple) in [("", tuple as fn(u32) -> Tuple), ("_v6", tuple6)] {
        for n in [1u32, 100_000] {
            let mut ct = Conntrack::new(n as usize + 16);
            for i in 0..n {
                let t = tuple(i);
                ct.process(&t, Some(&seg(tcp_flags::SYN, 1000)), 0, true);
                ct.process(
                    &t.reverse(),
                    Some(&seg(tcp_flags::SYN | tcp_flags::ACK, 5000)),
                    0,
                    true,
                );
                ct.process(&t, Some(&seg(tcp_flags::ACK, 1001)), 0, true);
            }
            let probe: Vec<Tuple> = (0..1024).map(|k| tuple((k * 7919) % n)).collect();
            let mut k = 0usize;
            g.bench_function(format!("{n}_conns{fam}"), |b| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    black_box(ct.process(&probe[k], Some(&seg(tcp_flags::ACK, 1001)), 1, true))
                })
            });
        }
    }
    g.finish();
}

fn setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack_setup");
    g.throughput(Throughput::Elements(1));
    for (fam, tuple) in [("", tuple as fn(u32) -> Tuple), ("_v6", tuple6)] {
        let mut ct = Conntrack::new(1 << 16);
        let mut i = 0u32;
        g.bench_function(format!("new_connection{fam}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                if ct.len() >= (1 << 16) - 1 {
                    ct.flush();
                }
                black_box(ct.process(&tuple(i), Some(&seg(tcp_flags::SYN, 1000)), 0, true))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, established, setup);
criterion_main!(benches);
