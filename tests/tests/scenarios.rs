//! The L2 traffic scenario, run over the in-memory port and over AF_XDP between
//! real pods: the same cases must give the same outcome on both.

use switchyard_tests::frames;
use switchyard_tests::memory;
use switchyard_tests::sandbox::{can_run, Sandbox};
use switchyard_tests::scenario::{l2_cases, pod_addr, L2_PODS};

#[test]
fn l2_scenario_over_memory_ports() {
    let nb = memory::sandbox_nb(L2_PODS);
    let (mut pmd, stats, _shared) = memory::pmd_for(&nb, L2_PODS);
    let failures: Vec<String> = l2_cases("mem")
        .iter()
        .filter_map(|c| memory::run_case(&mut pmd, &stats, L2_PODS, c).err())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn l2_scenario_over_afxdp() {
    if !can_run("l2_scenario_over_afxdp") {
        return;
    }
    let sb = Sandbox::up(1, L2_PODS);
    let mut failures = Vec::new();
    for (n, c) in l2_cases("afxdp").iter().enumerate() {
        // A broadcast from the same sender after the case's frame: once every other
        // pod has seen it, the case's frame has been delivered or dropped.
        let marker = format!("MARKER-{n}");
        let src = pod_addr(c.from + 1);
        let marker_frame = frames::udp(
            src.mac,
            0xffff_ffff_ffff,
            src.ip,
            smoltcp::wire::Ipv4Address::BROADCAST,
            9,
            marker.as_bytes(),
        );
        if let Err(e) = sb.run_case(c, L2_PODS, &marker_frame, &marker, "afxdp") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
