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

/// The router port's address on pod `i`'s /64 (`::1`, as the sandbox
/// configures it).
fn gateway6(sb: &Sandbox, i: usize) -> String {
    let a = u128::from(sb.ip6(i).parse::<Ipv6Addr>().expect("ip6"));
    Ipv6Addr::from(a & !u128::from(u64::MAX) | 1).to_string()
}

/// fe80::/64 with the modified EUI-64 of `mac` (RFC 4291 appendix A).
fn link_local(mac: u64) -> String {
    let m = mac.to_be_bytes();
    let iid = u64::from_be_bytes([m[2] ^ 2, m[3], m[4], 0xff, 0xfe, m[5], m[6], m[7]]);
    Ipv6Addr::from(0xfe80u128 << 112 | u128::from(iid)).to_string()
}

#[test]
fn ipv6_is_routed_between_switches_with_nd_and_icmpv6() {
    if !can_run("ipv6_is_routed_between_switches_with_nd_and_icmpv6") {
        return;
    }
    let sb = Sandbox::up_with(91, 2, &["--ipv6", "--subnets", "2"]);
    let gw = gateway6(&sb, 0);
    // The switch answers the pod's solicitation for its gateway (as a
    // router: the NA's R flag makes the kernel mark the entry "router").
    assert!(
        wait_until(Duration::from_secs(15), || sb
            .exec(0, &["ping", "-6", "-c", "1", "-W", "1", &gw])
            .0),
        "pod1 -> its gateway {gw}"
    );
    let (_, neigh, _) = sb.exec(0, &["ip", "-6", "neigh", "show", &gw]);
    assert!(neigh.contains("router"), "gateway entry: {neigh}");
    let gw_mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(mac_of)
        .expect("the gateway's MAC");

    // Across the router, both ways, and TCP.
    assert!(ping6_until(&sb, 0, 1), "pod1 -> pod2 across lr0");
    assert!(ping6_until(&sb, 1, 0), "pod2 -> pod1 across lr0");
    assert!(
        sb.iperf3_bps_to(1, 0, &sb.ip6(1), false) > 0.0,
        "iperf3 -6 across lr0"
    );

    // Hop limit 1: the router answers with ICMPv6 time exceeded.
    let before = sb.drops("ttl_exceeded");
    let (_, out, _) = sb.exec(
        0,
        &["ping", "-6", "-c", "1", "-W", "1", "-t", "1", &sb.ip6(1)],
    );
    assert!(out.contains("Time exceeded"), "ping -t 1: {out}");
    assert!(sb.drops("ttl_exceeded") > before);

    // Nothing listens on the router: TCP to it is refused.
    let (ok, out, err) = sb.exec(0, &["iperf3", "-c", &gw, "-t", "1"]);
    assert!(
        !ok && format!("{out}{err}").contains("refused"),
        "TCP to the router: {out}{err}"
    );

    // The router's link-local address answers too; its reply goes to the
    // pod's link-local address, which no NB row names: the router solicits
    // it, learns it from the pod's NA and reports it to northd.
    let ll = format!("{}%eth0", link_local(gw_mac));
    assert!(
        wait_until(Duration::from_secs(15), || sb
            .exec(0, &["ping", "-6", "-c", "1", "-W", "1", &ll])
            .0),
        "pod1 -> the router's link-local {ll}"
    );
    let pod_ll = link_local(pod_mac(&sb, 0));
    assert!(wait_until(Duration::from_secs(10), || sb
        .syctl(&["show"])
        .contains(&format!("neighbour {pod_ll} is"))));
    // IPv4 across the same router is unaffected.
    assert!(sb.ping(0, &sb.ip(1)));
}

#[test]
fn a_smaller_mtu_on_the_way_answers_ipv6_packet_too_big() {
    if !can_run("a_smaller_mtu_on_the_way_answers_ipv6_packet_too_big") {
        return;
    }
    let sb = Sandbox::up_with(92, 2, &["--ipv6", "--subnets", "2", "--mtu", "9000"]);
    let ping = |size: &str| {
        let (_, out, err) = sb.exec(
            0,
            &[
                "ping",
                "-6",
                "-M",
                "do",
                "-c",
                "1",
                "-W",
                "1",
                "-s",
                size,
                &sb.ip6(1),
            ],
        );
        format!("{out}{err}")
    };
    assert!(
        wait_until(Duration::from_secs(15), || ping("8000")
            .contains(" 0% packet loss")),
        "jumbo ping6 through lr0"
    );
    // ls1 goes down to 1,500: a routed 3,000-byte IPv6 packet is refused with
    // packet too big carrying 1,500 (routers never fragment IPv6).
    sb.syctl(&["set", "Logical_Switch", "ls1", "other_config:mtu=1500"]);
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = ping("3000");
            last.contains("mtu=1500")
        }),
        "no packet too big: {last}"
    );
    assert!(sb.drops("frame_too_big_for_mtu") >= 1);
    let (_, route, _) = sb.exec(0, &["ip", "-6", "route", "get", &sb.ip6(1)]);
    assert!(route.contains("mtu 1500"), "path MTU learned: {route}");
    assert!(
        ping("1400").contains(" 0% packet loss"),
        "what fits still passes"
    );
}

#[test]
fn slaac_pods_configure_themselves_from_router_advertisements() {
    if !can_run("slaac_pods_configure_themselves_from_router_advertisements") {
        return;
    }
    let sb = Sandbox::up_with(94, 2, &["--slaac", "--subnets", "2"]);
    // Each pod's address is SLAAC's (dynamic, EUI-64 of its MAC), its
    // default route came from the RA, via the router's link-local address.
    for i in 0..2 {
        let (_, addrs, _) = sb.exec(i, &["ip", "-6", "addr", "show", "dev", "eth0"]);
        let mine = addrs
            .lines()
            .find(|l| l.contains(&format!("{}/64", sb.ip6(i))));
        assert!(
            mine.is_some_and(|l| l.contains("dynamic")),
            "pod {i}: {addrs}"
        );
        let (_, route, _) = sb.exec(i, &["ip", "-6", "route", "show", "default"]);
        assert!(
            route.contains("proto ra") && route.contains("via fe80::"),
            "pod {i}: {route}"
        );
    }
    assert!(ping6_until(&sb, 0, 1), "pod1 -> pod2 across lr0");
    assert!(ping6_until(&sb, 1, 0), "pod2 -> pod1 across lr0");
    assert!(sb.syctl(&["lflow-list"]).contains("nd_ra {"));

    // The RA's MTU reaches the pod when it solicits again.
    sb.syctl(&[
        "set",
        "Logical_Router_Port",
        "lr0-ls0",
        "ipv6_ra_configs:mtu=1400",
    ]);
    let mtu = || {
        sb.exec(0, &["sysctl", "-n", "net.ipv6.conf.eth0.mtu"])
            .1
            .trim()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            for v in ["1", "0"] {
                let s = format!("net.ipv6.conf.eth0.disable_ipv6={v}");
                sb.exec(0, &["sysctl", "-qw", &s]);
            }
            wait_until(Duration::from_secs(3), || mtu() == "1400")
        }),
        "IPv6 MTU after the RA: {}",
        mtu()
    );
    assert!(ping6_until(&sb, 0, 1), "pod1 -> pod2 after the new RA");

    // Bad configs are refused by name and change nothing.
    for bad in [
        "ipv6_ra_configs:send_periodic=true",
        "ipv6_ra_configs:mtu=1000",
        "ipv6_ra_configs:address_mode=bogus",
    ] {
        let e = sb.syctl_err(&["set", "Logical_Router_Port", "lr0-ls0", bad]);
        let key = bad.split(['=', ':']).nth(1).expect("key");
        assert!(e.contains(key), "{bad}: {e}");
    }
    let f = sb.syctl(&["lflow-list"]);
    assert!(f.contains("mtu = 1400"), "the good config stays: {f}");
}
