//! DNS answered by the PMD on the in-memory port, one core: a query for a
//! name the switch has a record for, answered back out of the port it came
//! in on, against the same query frame forwarded to another port by a switch
//! without records (the baseline: what the PMD costs a frame it only
//! switches). Both from a warm exact-match cache.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard_benches::{pmd, port_ip, port_mac, switch_nb};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::port::BATCH;

const NAME: &str = "web.default.svc.cluster.local";

/// A query for NAME (type A) from p1 to p2's address, port 53.
fn query() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in NAME.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut f = Vec::new();
    f.extend_from_slice(&port_mac(2).to_be_bytes()[2..]);
    f.extend_from_slice(&port_mac(1).to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((28 + m.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&port_ip(1));
    f.extend_from_slice(&port_ip(2));
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&[0x82, 0x35, 0, 53]);
    f.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&m);
    f
}

fn dns(c: &mut Criterion) {
    let mut g = c.benchmark_group("dns_query");
    g.throughput(Throughput::Elements(BATCH as u64));
    for answered in [false, true] {
        let mut nb = switch_nb(2);
        if answered {
            nb.apply_all(vec![Op::DnsAdd(pb::DnsRecord {
                switch_name: "ls0".into(),
                name: NAME.into(),
                addresses: vec!["10.96.0.10".into()],
                ..Default::default()
            })])
            .expect("valid record");
        }
        let (mut pmd, stats) = pmd(&nb, 2, vec![query()], 4096);
        pmd.set_dns_rate(0, 0);
        for _ in 0..4 {
            pmd.poll_port(0);
        }
        let name = if answered { "answered" } else { "forwarded" };
        g.bench_function(name, |b| b.iter(|| black_box(pmd.poll_port(0))));
        let drops: u64 = stats.drops.iter().map(|d| d.get()).sum();
        assert_eq!(drops, 0, "the bench must answer or forward, not drop");
        assert_eq!(stats.dns_answered.get() > 0, answered);
    }
    g.finish();
}

criterion_group!(benches, dns);
criterion_main!(benches);
