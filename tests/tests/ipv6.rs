//! IPv6 between real pods (`syctl sandbox up --ipv6`): ping6 both ways over
//! AF_XDP, and what a dual-stack pod must not get away with: a source address
//! it does not own, a neighbor advertisement claiming another pod's address,
//! a router advertisement. Each is dropped under its own counter and the
//! legitimate traffic keeps flowing; iperf3 runs over IPv6.

use std::net::Ipv6Addr;
use std::time::Duration;
use switchyard_tests::frames;
use switchyard_tests::sandbox::{can_run, wait_until, Sandbox};

fn mac_of(s: &str) -> u64 {
    s.split(':')
        .fold(0, |a, b| a << 8 | u64::from_str_radix(b, 16).expect("hex"))
}

fn pod_mac(sb: &Sandbox, i: usize) -> u64 {
    mac_of(sb.pod(i)["mac"].as_str().expect("mac"))
}

fn octets(ip: &str) -> [u8; 16] {
    ip.parse::<Ipv6Addr>().expect("IPv6 address").octets()
}

fn ping6(sb: &Sandbox, from: usize, to: usize) -> bool {
    sb.exec(from, &["ping", "-6", "-c", "1", "-W", "1", &sb.ip6(to)])
        .0
}

fn ping6_until(sb: &Sandbox, from: usize, to: usize) -> bool {
    wait_until(Duration::from_secs(15), || ping6(sb, from, to))
}

#[test]
fn dual_stack_pods_ping6_and_cannot_spoof_or_advertise() {
    if !can_run("dual_stack_pods_ping6_and_cannot_spoof_or_advertise") {
        return;
    }
    let sb = Sandbox::up_with(90, 2, &["--ipv6"]);
    assert!(ping6_until(&sb, 0, 1), "pod1 -> pod2 over IPv6");
    assert!(ping6_until(&sb, 1, 0), "pod2 -> pod1 over IPv6");
    let (m0, m1) = (pod_mac(&sb, 0), pod_mac(&sb, 1));
    let (a0, a1) = (octets(&sb.ip6(0)), octets(&sb.ip6(1)));

    // A source address pod1 does not own, in its own prefix.
    let mut stolen = a0;
    stolen[15] = 0x99;
    let before = sb.drops("port_security_ipv6");
    sb.send_frames(0, &[frames::ipv6_from(m0, m1, stolen, a1, 17, b"spoof6")]);
    assert!(
        wait_until(Duration::from_secs(10), || sb.drops("port_security_ipv6")
            > before),
        "a spoofed IPv6 source was not counted"
    );

    // pod1 claims pod2's address for its own MAC (ND cache poisoning), then
    // advertises itself as a router.
    let before = sb.drops("port_security_nd");
    sb.send_frames(0, &[frames::neighbor_advert((m0, m1), a0, a1, a1, m0)]);
    assert!(
        wait_until(Duration::from_secs(10), || sb.drops("port_security_nd")
            > before),
        "a forged neighbor advertisement was not counted"
    );
    let before = sb.drops("port_security_nd");
    sb.send_frames(0, &[frames::router_advertisement(m0, b"rogue-ra")]);
    assert!(
        wait_until(Duration::from_secs(10), || sb.drops("port_security_nd")
            > before),
        "a router advertisement from a pod was not counted"
    );

    // pod2 still resolves pod1 correctly and both directions still work.
    let (_, neigh, _) = sb.exec(1, &["ip", "-6", "neigh", "show", &sb.ip6(0)]);
    let m0s = sb.pod(0)["mac"].as_str().unwrap().to_string();
    assert!(
        neigh.is_empty() || neigh.contains(&m0s),
        "pod2's neighbor entry for pod1 is wrong: {neigh}"
    );
    assert!(ping6_until(&sb, 0, 1), "pod1 -> pod2 after the attacks");
    assert!(ping6_until(&sb, 1, 0), "pod2 -> pod1 after the attacks");
    // TCP over IPv6: the pods' veths offload checksums, so this passes only
    // if the datapath completes partial IPv6 checksums.
    let completed = |sb: &Sandbox| {
        sb.syctl_json(&["vswitch", "pmd-stats"])[0]["csum_completed"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = completed(&sb);
    let bps = sb.iperf3_bps_to(1, 0, &sb.ip6(1), false);
    assert!(bps > 0.0, "iperf3 over IPv6 moved nothing");
    assert!(completed(&sb) > before, "no IPv6 checksum was completed");
    // IPv4 is unaffected by the IPv6 rules.
    assert!(sb.ping(0, &sb.ip(1)));
}
