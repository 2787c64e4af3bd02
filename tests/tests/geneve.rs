//! Integration tests of the Geneve overlay: a sandbox with two chassis, each a
//! namespace running its own vswitchd on an underlay bridge; pods spread over
//! them (pod1 and pod3 on chassis 1, pod2 on chassis 2).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_tests::sandbox::{can_run, run, wait_until, Sandbox};

fn node_sock(sb: &Sandbox, k: usize) -> String {
    sb.state["nodes"][k]["control_sock"]
        .as_str()
        .expect("control_sock")
        .to_string()
}

fn tunnels(sb: &Sandbox, k: usize) -> serde_json::Value {
    sb.syctl_json(&["vswitch", "tunnel-list", "--vswitchd", &node_sock(sb, k)])
}

/// A number tshark printed in decimal or hex.
fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
        None => s.parse().unwrap_or(u64::MAX),
    }
}

#[test]
fn pods_on_two_chassis_talk_through_geneve_that_tshark_decodes() {
    if !can_run("pods_on_two_chassis_talk_through_geneve_that_tshark_decodes") {
        return;
    }
    let sb = Sandbox::up_with(30, 3, &["--chassis", "2"]);
    assert_ne!(sb.pod(0)["chassis"], sb.pod(1)["chassis"]);
    assert!(sb.ping(0, &sb.ip(1)) && sb.ping(1, &sb.ip(0)));
    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    assert!(fwd > 0.0 && rev > 0.0, "fwd {fwd} rev {rev}");

    // Each chassis has a tunnel to the other, and it carried the traffic.
    for (k, other) in [(0, "t30-chassis2"), (1, "t30-chassis1")] {
        let t = tunnels(&sb, k);
        assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
        assert_eq!(t[0]["chassis"], other);
        assert!(t[0]["tx_packets"].as_u64().unwrap() > 1000, "{t}");
        assert!(t[0]["rx_packets"].as_u64().unwrap() > 1000, "{t}");
    }
    let chassis = sb.syctl(&["chassis-list"]);
    assert!(
        chassis.contains("172.31.") && chassis.contains("t30-chassis2"),
        "{chassis}"
    );

    // An independent decoder agrees with our encoding: UDP 6081, the switch's
    // datapath key as VNI, OVN's option (class 0x0102, type 0x80, critical).
    let vni = sb.syctl_json(&["show"])["switches"][0]["tunnel_key"]
        .as_u64()
        .unwrap();
    let mut tshark = Command::new("tshark")
        .args([
            "-i",
            "t30-ul",
            "-f",
            "udp port 6081",
            "-c",
            "4",
            "-a",
            "duration:20",
            "-T",
            "fields",
            "-e",
            "udp.dstport",
            "-e",
            "geneve.vni",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.option.type",
            "-e",
            "geneve.flags.critical",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark (scripts/setup installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tshark.try_wait().expect("tshark").is_none() {
        assert!(Instant::now() < deadline, "tshark saw no Geneve");
        let _ = run(
            "ip",
            &[
                "netns",
                "exec",
                &sb.netns(0),
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                &sb.ip(1),
            ],
        );
    }
    let out = tshark.wait_with_output().expect("tshark output");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert!(rows.len() >= 4, "{text}");
    for r in rows {
        assert_eq!(r.len(), 5, "{r:?}");
        assert_eq!(num(r[0].split(',').next().unwrap()), 6081, "{r:?}");
        assert_eq!(num(r[1]), vni, "{r:?}");
        assert_eq!(num(r[2]), 0x0102, "{r:?}");
        assert_eq!(num(r[3]), 0x80, "{r:?}");
        assert!(matches!(r[4], "1" | "True" | "true"), "{r:?}");
    }
}

#[test]
fn a_chassis_that_leaves_disappears_and_the_rest_keeps_working() {
    if !can_run("a_chassis_that_leaves_disappears_and_the_rest_keeps_working") {
        return;
    }
    let sb = Sandbox::up_with(31, 3, &["--chassis", "2"]);
    assert_eq!(tunnels(&sb, 0).as_array().unwrap().len(), 1);
    let pid = sb.state["nodes"][1]["vswitchd"]["pid"]
        .as_u64()
        .unwrap()
        .to_string();
    assert!(run("kill", &["-9", &pid]).0);
    sb.syctl(&["chassis-del", "t31-chassis2"]);
    assert!(
        wait_until(Duration::from_secs(10), || tunnels(&sb, 0)
            .as_array()
            .is_some_and(|a| a.is_empty())),
        "chassis 1 still has a tunnel to the chassis that left"
    );
    assert!(!sb.syctl(&["chassis-list"]).contains("t31-chassis2"));
    // pod1 and pod3 share chassis 1: unaffected.
    assert!(sb.ping(0, &sb.ip(2)) && sb.ping(2, &sb.ip(0)));
    // pod2's port is no longer claimed by anyone: traffic to it is not sent.
    assert!(!sb.ping(0, &sb.ip(1)));
    let err = sb.syctl_err(&["chassis-del", "t31-chassis2"]);
    assert!(err.contains("not registered"), "{err}");
}

#[test]
fn routed_traffic_crosses_chassis_through_geneve() {
    if !can_run("routed_traffic_crosses_chassis_through_geneve") {
        return;
    }
    // pod1 on ls0 and chassis 1, pod2 on ls1 and chassis 2: chassis 1 runs ls0,
    // lr0 and ls1's ingress, then sends to chassis 2 with ls1's datapath key.
    let sb = Sandbox::up_with(32, 2, &["--chassis", "2", "--subnets", "2"]);
    assert!(sb.ping(0, &sb.ip(1)) && sb.ping(1, &sb.ip(0)));
    let (_, out, _) = sb.exec(0, &["ping", "-c", "1", "-t", "1", "-W", "1", &sb.ip(1)]);
    assert!(out.contains("Time to live exceeded"), "{out}");
    assert!(sb.iperf3_bps(1, 0, false) > 0.0);
    let t = tunnels(&sb, 0);
    assert!(t[0]["tx_packets"].as_u64().unwrap() > 1000, "{t}");
}

#[test]
fn oversized_df_packets_get_fragmentation_needed_with_the_tunnel_mtu() {
    if !can_run("oversized_df_packets_get_fragmentation_needed_with_the_tunnel_mtu") {
        return;
    }
    let sb = Sandbox::up_with(33, 2, &["--chassis", "2"]);
    // Give pod1 the underlay's MTU (a misconfigured pod): its 1488-byte DF
    // packets to pod2 on the other chassis cannot fit once encapsulated.
    let (ok, _, err) = sb.exec(0, &["ip", "link", "set", "eth0", "mtu", "1500"]);
    assert!(ok, "{err}");
    let host = sb.pod(0)["host_iface"].as_str().unwrap().to_string();
    let ns = sb.state["nodes"][0]["netns"].as_str().unwrap().to_string();
    assert!(run("ip", &["-n", &ns, "link", "set", &host, "mtu", "1500"]).0);
    let big = ["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1460"];
    let mut args = big.to_vec();
    let ip = sb.ip(1);
    args.push(&ip);
    let (_, out, _) = sb.exec(0, &args);
    assert!(
        out.contains("Frag needed") && out.contains("mtu = 1442"),
        "{out}"
    );
    // The pod's kernel learned the path MTU: it now refuses to send that size.
    let (_, out, err) = sb.exec(0, &args);
    assert!(format!("{out}{err}").contains("1442"), "{out}{err}");
    assert!(sb.drops("tunnel_too_big") >= 1);
    // Packets that fit the tunnel (and pod2's own MTU of 1400) still flow.
    let (ok, out, _) = sb.exec(
        0,
        &["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1360", &ip],
    );
    assert!(ok, "{out}");
}
