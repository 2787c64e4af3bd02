//! Instructions per packet, for A/B comparisons that no machine's noise
//! moves: builds one of the bench scenarios (the same fixtures as the
//! criterion benches), warms its caches, then runs `BATCHES` batches of 32
//! frames through the PMD inside `measured`, which callgrind counts alone:
//!
//!   valgrind --tool=callgrind --toggle-collect='*measured*' \
//!       target/release/sy-ipp SCENARIO [BATCHES]
//!
//! then instructions per packet = Ir / (BATCHES * 32). `benches/ipp.sh`
//! runs every scenario and prints the table. Scenarios: l2, routed,
//! service, geneve-encap, geneve-decap (warm caches: packets through the
//! PMD), and slow-l2, slow-routed (the slow path alone: `BATCHES * 32`
//! pipeline walks of one key, as an exact-match and megaflow miss costs).

use std::hint::black_box;
use switchyard_benches::{
    encapsulated_to_p1, frame64, overlay, pmd, pmd_on_snapshot, port_mac, routed_frame64,
    routed_nb, router_mac, switch_nb, udp64, UNDERLAY_SLOT,
};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::pmd::Pmd;

#[inline(never)]
fn measured(pmd: &mut Pmd, slot: u16, batches: usize) -> usize {
    let mut n = 0;
    for _ in 0..batches {
        n += pmd.poll_port(slot);
    }
    n
}

#[inline(never)]
fn measured_walks(pmd: &Pmd, key: &switchyard_vswitch::dp::flow::FlowKey, walks: usize) -> usize {
    let mut n = 0;
    for _ in 0..walks {
        black_box(pmd.trace_verdict(black_box(key)));
        n += 1;
    }
    n
}

/// 32 UDP connections from p1 to a VIP served by ls0 (routed_nb plus a load
/// balancer), as the service-path criterion bench does with one VIP.
fn service() -> Pmd {
    let mut nb = routed_nb(0);
    let mut lb = pb::LoadBalancer {
        name: "svc".into(),
        protocol: "udp".into(),
        ..Default::default()
    };
    lb.vips
        .insert("10.96.0.1:80".into(), "10.1.0.2:8080,10.1.0.2:8081".into());
    let ops = [
        Op::LbAdd(lb),
        Op::LbAttach(pb::LbAttach {
            lb: "svc".into(),
            switch_name: "ls0".into(),
            router_name: String::new(),
        }),
    ];
    // Spelled out, not Nb::apply_all: ipp.sh copies this driver into older
    // commits for A/B runs, which may not have that helper.
    nb.apply_ops(&pb::TransactRequest {
        ops: ops
            .into_iter()
            .map(|o| pb::NbOp {
                op: Some(o),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
    .expect("valid load balancer");
    let mut sb = switchyard_northd::server::sb::Sb::default();
    sb.set_compiled(switchyard_northd::compile::compile(&nb), 1);
    let frames = (0..32u16)
        .map(|j| {
            let mut f = udp64(port_mac(1), router_mac(0), [10, 0, 0, 1], [10, 96, 0, 1]);
            f[34..36].copy_from_slice(&(40_000 + j).to_be_bytes());
            f[36..38].copy_from_slice(&80u16.to_be_bytes());
            f
        })
        .collect();
    pmd_on_snapshot(&sb.snapshot(), 2, frames, 4096).0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "l2".into());
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    if let Some(which) = scenario.strip_prefix("slow-") {
        let (pmd, frame) = match which {
            "l2" => (pmd(&switch_nb(2), 2, Vec::new(), 4096).0, frame64(1, 2)),
            "routed" => (pmd(&routed_nb(10), 2, Vec::new(), 4096).0, routed_frame64()),
            s => panic!("unknown scenario slow-{s}"),
        };
        let key = switchyard_vswitch::dp::packet::extract(&frame, 0).expect("valid frame");
        let n = black_box(measured_walks(&pmd, &key, batches * 32));
        println!("{scenario} walks={n}");
        return;
    }
    let (mut pmd, slot) = match scenario.as_str() {
        "l2" => (pmd(&switch_nb(2), 2, vec![frame64(1, 2)], 4096).0, 0),
        "routed" => (pmd(&routed_nb(10), 2, vec![routed_frame64()], 4096).0, 0),
        "service" => (service(), 0),
        "geneve-encap" => (overlay(vec![frame64(1, 2)], Vec::new(), true).0, 0),
        "geneve-decap" => {
            let (_, _, snap) = overlay(Vec::new(), Vec::new(), true);
            let enc = encapsulated_to_p1(&snap);
            (overlay(Vec::new(), vec![enc], true).0, UNDERLAY_SLOT)
        }
        s => panic!("unknown scenario {s}"),
    };
    for _ in 0..64 {
        pmd.poll_port(slot);
    }
    let drops: u64 = pmd.stats.drops.iter().map(|d| d.get()).sum();
    assert_eq!(drops, 0, "{scenario}: the scenario must forward, not drop");
    let n = black_box(measured(&mut pmd, slot, batches));
    let drops: u64 = pmd.stats.drops.iter().map(|d| d.get()).sum();
    assert_eq!(drops, 0, "{scenario}: dropped during the run");
    println!("{scenario} packets={n}");
}
