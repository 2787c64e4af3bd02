//! Large frames and pod offloads with real daemons, real pods and AF_XDP:
//! jumbo MTUs through a switch and a router (multi-buffer AF_XDP), ICMP
//! fragmentation-needed where a packet meets a smaller switch MTU, and
//! partial checksums (pods keep TX checksum offload on) completed by the
//! datapath so that receivers accept them.

use std::time::Duration;
use switchyard_tests::sandbox::{can_run, run, wait_until, Sandbox};

/// A pod's UDP/TCP checksum error counters (`InCsumErrors` of /proc/net/snmp).
fn csum_errors(sb: &Sandbox, pod: usize) -> u64 {
    let (_, snmp, _) = sb.exec(pod, &["cat", "/proc/net/snmp"]);
    let mut total = 0;
    let lines: Vec<&str> = snmp.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (n, v): (Vec<&str>, Vec<&str>) = (
            names.split_whitespace().collect(),
            values.split_whitespace().collect(),
        );
        if let Some(i) = n.iter().position(|x| *x == "InCsumErrors") {
            total += v.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// `count` pings of `size` bytes with DF set from pod 0 to pod 1.
fn ping_df(sb: &Sandbox, count: u32, size: u32) -> (bool, String, String) {
    let (count, size) = (count.to_string(), size.to_string());
    let args = ["ping", "-c", &count, "-W", "2", "-s", &size, "-M", "do"];
    let mut args = args.to_vec();
    let dst = sb.ip(1);
    args.push(&dst);
    sb.exec(0, &args)
}

#[test]
fn jumbo_frames_cross_switch_and_router_and_a_smaller_mtu_answers_frag_needed() {
    let name = "jumbo_frames_cross_switch_and_router_and_a_smaller_mtu_answers_frag_needed";
    if !can_run(name) {
        return;
    }
    let sb = Sandbox::up_with(87, 2, &["--subnets", "2", "--mtu", "9000"]);
    let (_, link, _) = sb.exec(0, &["ip", "link", "show", "eth0"]);
    assert!(link.contains("mtu 9000"), "{link}");
    let ports = sb.syctl(&["vswitch", "port-list"]);
    assert!(ports.contains("multi-buffer"), "{ports}");

    // 8,000 bytes of ICMP with DF: three chunks each way, through lr0.
    let (ok, out, err) = ping_df(&sb, 2, 8000);
    assert!(ok, "jumbo ping through the router: {out}{err}");
    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    assert!(
        fwd > 0.0 && rev > 0.0,
        "TCP at MTU 9000: fwd {fwd} rev {rev}"
    );

    // ls1 goes down to 1,500: a routed 3,000-byte packet with DF is refused
    // with ICMP fragmentation-needed carrying 1,500, and counted.
    sb.syctl(&["set", "Logical_Switch", "ls1", "other_config:mtu=1500"]);
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (_, out, err) = ping_df(&sb, 1, 3000);
            last = format!("{out}{err}");
            last.contains("mtu = 1500")
        }),
        "no fragmentation-needed with the MTU: {last}"
    );
    assert!(sb.drops("frame_too_big_for_mtu") >= 1);
    // What fits still passes, and the sender's path MTU now says 1,500.
    let (ok, out, err) = ping_df(&sb, 1, 1400);
    assert!(ok, "{out}{err}");
    let (_, route, _) = sb.exec(0, &["ip", "route", "get", &sb.ip(1)]);
    assert!(route.contains("mtu 1500"), "path MTU learned: {route}");

    // A bad MTU is refused before anything is written.
    let err = sb.syctl_err(&["set", "Logical_Switch", "ls1", "other_config:mtu=70000"]);
    assert!(err.contains("other_config:mtu"), "{err}");
}

#[test]
fn pods_keep_checksum_offload_and_receivers_accept_what_they_send() {
    let name = "pods_keep_checksum_offload_and_receivers_accept_what_they_send";
    if !can_run(name) {
        return;
    }
    let sb = Sandbox::up_with(88, 2, &[]);
    let (_, feat, _) = sb.exec(0, &["ethtool", "-k", "eth0"]);
    assert!(feat.contains("tx-checksumming: on"), "{feat}");
    let before = (csum_errors(&sb, 0), csum_errors(&sb, 1));

    // UDP both ways (requests and answers), then TCP both ways.
    let _srv = sb.serve_in(&sb.netns(1), "udp", 7000, "udp-echo");
    let answers = sb.svc_in(&sb.netns(0), "udp", &sb.ip(1), 7000, 20);
    assert!(
        answers.iter().all(|a| a.contains("udp-echo")),
        "{answers:?}"
    );
    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    assert!(fwd > 0.0 && rev > 0.0, "fwd {fwd} rev {rev}");

    let v = sb.syctl_json(&["vswitch", "pmd-stats"]);
    let completed = v[0]["csum_completed"].as_u64().unwrap_or(0);
    assert!(completed >= 40, "partial checksums completed: {completed}");
    assert_eq!(
        (csum_errors(&sb, 0), csum_errors(&sb, 1)),
        before,
        "no receiver saw a bad checksum"
    );
}

#[test]
fn jumbo_frames_cross_chassis_through_geneve() {
    if !can_run("jumbo_frames_cross_chassis_through_geneve") {
        return;
    }
    // Pods at 9,000 on two chassis: the underlay gets 9,000 plus the Geneve
    // overhead, and a full-size packet leaves encapsulated as one chain.
    let sb = Sandbox::up_with(89, 2, &["--chassis", "2", "--mtu", "9000"]);
    assert_ne!(sb.pod(0)["chassis"], sb.pod(1)["chassis"]);
    let (ok, out, err) = ping_df(&sb, 2, 8972);
    assert!(ok, "9,000-byte IP packets across chassis: {out}{err}");
    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    assert!(fwd > 0.0 && rev > 0.0, "fwd {fwd} rev {rev}");
    // The tunnel carried jumbo frames, not a fallback to small ones: iperf3's
    // 9,000-byte segments dominate what chassis 1 encapsulated.
    let tunnels = sb.syctl_json(&["vswitch", "tunnel-list"]);
    let (bytes, packets) = (
        tunnels[0]["tx_bytes"].as_u64(),
        tunnels[0]["tx_packets"].as_u64(),
    );
    let (Some(bytes), Some(packets)) = (bytes, packets) else {
        panic!("{tunnels}");
    };
    assert!(packets > 0 && bytes / packets > 4000, "{tunnels}");

    // `sandbox down` given only the directory removes the chassis namespaces
    // and the underlay too (the prefix is the one the sandbox recorded).
    let dir = sb.dir.display().to_string();
    let (ok, out, err) = sb.syctl_at(
        &sb.dir.join("vswitchd.sock"),
        &["sandbox", "down", "--dir", &dir],
    );
    assert!(ok && out.contains("\"t89\""), "{out}{err}");
    let (_, netns, _) = run("ip", &["netns", "list"]);
    assert!(!netns.contains("t89-"), "left behind: {netns}");
    let (_, links, _) = run("ip", &["-o", "link", "show"]);
    assert!(!links.contains("t89-"), "left behind: {links}");
}
