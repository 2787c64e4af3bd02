//! Integration tests of the L2 slice with real daemons, real pods and AF_XDP.

use std::time::Duration;
use switchyard_tests::frames;
use switchyard_tests::sandbox::{can_run, run, wait_until, Sandbox};
use switchyard_tests::scenario::Topo;

#[test]
fn ping_and_tcp_both_ways() {
    if !can_run("ping_and_tcp_both_ways") {
        return;
    }
    let sb = Sandbox::up(2, 2);
    assert!(sb.ping(0, &sb.ip(1)));
    assert!(sb.ping(1, &sb.ip(0)));
    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    // TCP moved data both ways (no speed threshold: benches measure speed).
    assert!(fwd > 0.0 && rev > 0.0, "fwd {fwd} rev {rev}");
    let ports = sb.syctl_json(&["vswitch", "port-list"]);
    for p in ports.as_array().expect("ports") {
        assert!(p["rx_packets"].as_u64().unwrap() > 1000, "{p}");
        assert!(p["mode"].as_str().unwrap().starts_with("afxdp"), "{p}");
    }
}

#[test]
fn arp_is_answered_by_the_switch_not_flooded() {
    if !can_run("arp_is_answered_by_the_switch_not_flooded") {
        return;
    }
    let sb = Sandbox::up(3, 2);
    let p = Topo::switch(2).endpoints();
    let (p1, p2) = (&p[0], &p[1]);
    let s = sb.sniff(1, "arp-test", "ARP-MARKER");
    // An ARP request for pod2's address (answered by the switch), then a marker.
    let req = frames::arp_request(p1.mac, p1.ip, p2.ip);
    let marker = frames::udp(
        p1.mac,
        0xffff_ffff_ffff,
        p1.ip,
        smoltcp::wire::Ipv4Address::BROADCAST,
        9,
        b"ARP-MARKER",
    );
    let replies_before = sb.syctl_json(&["vswitch", "port-list"])[0]["tx_packets"]
        .as_u64()
        .unwrap();
    sb.send_frames(0, &[req.clone(), marker]);
    let lines = s.finish();
    assert!(lines.iter().any(|l| l == "DONE"), "{lines:?}");
    // The sniffer reports only UDP; check the capture the independent way too.
    let (ok, out, _) = run(
        "ip",
        &["netns", "exec", &sb.netns(0), "ip", "neigh", "flush", "all"],
    );
    assert!(ok, "{out}");
    let mut tcpdump = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &sb.netns(1),
            "tcpdump",
            "-l",
            "-n",
            "-i",
            "eth0",
            "arp or udp port 9",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut err = std::io::BufReader::new(tcpdump.stderr.take().unwrap());
    use std::io::BufRead;
    let mut header = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 || line.contains("listening") {
            header.push(line);
            break;
        }
        header.push(line);
    }
    assert!(
        header.last().is_some_and(|l| l.contains("listening")),
        "tcpdump: {header:?}"
    );
    // The pod's own kernel resolves pod2 (request answered by the switch), then a marker.
    assert!(sb.ping(0, &sb.ip(1)));
    let marker = frames::udp(
        p1.mac,
        0xffff_ffff_ffff,
        p1.ip,
        smoltcp::wire::Ipv4Address::BROADCAST,
        9,
        b"ARP-MARKER-2",
    );
    sb.send_frames(0, &[marker]);
    let mut out = std::io::BufReader::new(tcpdump.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        let done = l.contains("255.255.255.255.9");
        seen.push(l);
        if done {
            break;
        }
    }
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    assert!(
        !seen.iter().any(|l| l.contains("Request who-has")),
        "pod2 saw a flooded ARP request: {seen:?}"
    );
    let neigh = sb.exec(0, &["ip", "neigh", "show", &sb.ip(1)]).1;
    assert!(
        neigh.contains(sb.pod(1)["mac"].as_str().unwrap()),
        "pod1 learned {neigh}"
    );
    let replies_after = sb.syctl_json(&["vswitch", "port-list"])[0]["tx_packets"]
        .as_u64()
        .unwrap();
    assert!(
        replies_after > replies_before,
        "ARP replies go out the requester's port"
    );
}

#[test]
fn deleted_port_stops_forwarding() {
    if !can_run("deleted_port_stops_forwarding") {
        return;
    }
    let sb = Sandbox::up(4, 3);
    assert!(sb.ping(0, &sb.ip(1)));
    sb.syctl(&["lsp-del", sb.pod(1)["lport"].as_str().unwrap()]);
    assert!(
        wait_until(Duration::from_secs(10), || !sb.ping(0, &sb.ip(1))),
        "pod2 still reachable"
    );
    assert!(!sb.ping(0, &sb.ip(1)));
    assert!(sb.ping(0, &sb.ip(2)), "the other ports keep working");
    // Unbinding the interface at the vswitch works the same way.
    sb.syctl(&[
        "vswitch",
        "port-del",
        sb.pod(2)["host_iface"].as_str().unwrap(),
    ]);
    assert!(wait_until(Duration::from_secs(10), || !sb.ping(0, &sb.ip(2))));
    let ports = sb.syctl_json(&["vswitch", "port-list"]);
    assert_eq!(ports.as_array().unwrap().len(), 2);
}

#[test]
fn northd_restart_keeps_topology_and_forwarding() {
    if !can_run("northd_restart_keeps_topology_and_forwarding") {
        return;
    }
    let mut sb = Sandbox::up(5, 2);
    sb.syctl(&["ls-add", "extra", "--subnet", "10.9.0.0/24"]);
    sb.syctl(&["lsp-add", "extra", "x1", "0a:00:00:00:09:01 10.9.0.1"]);
    let before = sb.syctl_json(&["show"]);
    sb.kill_and_restart("northd");
    // The NB comes back from disk at once; the port claims come back when
    // vswitchd has reconnected and claimed again.
    let after = sb.syctl_json(&["show"]);
    assert_eq!(before["nb_version"], after["nb_version"]);
    assert!(
        wait_until(Duration::from_secs(10), || sb.syctl_json(&["show"])
            ["switches"]
            == before["switches"]),
        "topology or claims not back: {}",
        sb.syctl_json(&["show"])["switches"]
    );
    assert!(sb.ping(0, &sb.ip(1)));
    // While northd is down, the datapath keeps its last tables.
    let pid = sb.state["northd"]["pid"].as_u64().unwrap().to_string();
    assert!(run("kill", &["-9", &pid]).0);
    assert!(sb.ping(0, &sb.ip(1)), "forwarding continues without northd");
    sb.kill_and_restart("northd");
    assert!(sb.ping(1, &sb.ip(0)));
}

#[test]
fn vswitchd_restart_rebinds_ports() {
    if !can_run("vswitchd_restart_rebinds_ports") {
        return;
    }
    let mut sb = Sandbox::up(6, 2);
    assert!(sb.ping(0, &sb.ip(1)));
    let iface = sb.pod(0)["host_iface"].as_str().unwrap().to_string();
    let has_xdp = |i: &str| {
        run("ip", &["-d", "link", "show", "dev", i])
            .1
            .contains("prog/xdp")
    };
    assert!(
        has_xdp(&iface),
        "our XDP program is attached while vswitchd runs"
    );
    // A crash (SIGKILL) must not leave the XDP program behind: bpf_link goes with
    // the process.
    let pid = sb.state["vswitchd"]["pid"].as_u64().unwrap().to_string();
    assert!(run("kill", &["-9", &pid]).0);
    assert!(
        wait_until(Duration::from_secs(10), || !has_xdp(&iface)),
        "XDP program left attached after SIGKILL"
    );
    sb.kill_and_restart("vswitchd");
    assert!(has_xdp(&iface), "re-attached after restart");
    let ports = sb.syctl_json(&["vswitch", "port-list"]);
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    assert!(
        wait_until(Duration::from_secs(10), || sb.ping(0, &sb.ip(1))),
        "forwarding resumes"
    );
    let show = sb.syctl_json(&["show"]);
    // Every pod's port is bound here again (the router's port is bound nowhere).
    for p in show["switches"][0]["ports"].as_array().unwrap() {
        if p["addresses"][0] != "router" {
            assert_eq!(p["chassis"], sb.state["chassis"], "{p}");
        }
    }
}

#[test]
fn malformed_frames_are_counted_and_dropped_while_traffic_flows() {
    if !can_run("malformed_frames_are_counted_and_dropped_while_traffic_flows") {
        return;
    }
    let sb = Sandbox::up(7, 2);
    let p = Topo::switch(2).endpoints();
    let (p1, p2) = (&p[0], &p[1]);
    let before = sb.drops("malformed_ip");
    let bad: Vec<Vec<u8>> = frames::malformed(p1.mac, p2.mac, p1.ip, p2.ip)
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let n = bad.len() as u64;
    for _ in 0..10 {
        sb.send_frames(0, &bad);
        assert!(sb.ping(0, &sb.ip(1)), "good traffic keeps flowing");
    }
    assert!(
        wait_until(Duration::from_secs(5), || sb.drops("malformed_ip")
            >= before + 10 * n),
        "malformed_ip {} (before {before}), pmd-stats {}",
        sb.drops("malformed_ip"),
        sb.syctl_json(&["vswitch", "pmd-stats"])
    );
    let pid = sb.state["vswitchd"]["pid"].as_u64().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "vswitchd is alive"
    );
}

#[test]
fn bad_nb_input_is_refused_with_a_clear_error() {
    if !can_run("bad_nb_input_is_refused_with_a_clear_error") {
        return;
    }
    let sb = Sandbox::up(8, 1);
    let before = sb.syctl_json(&["show"]);
    let cases: &[(&[&str], &str)] = &[
        (&["ls-add", "ls0"], "already exists"),
        (&["ls-add", "x", "--subnet", "10.0.0.300/24"], "not a CIDR"),
        (&["lsp-add", "nope", "p9"], "\"nope\" does not exist"),
        (
            &["lsp-add", "ls0", "p9", "zz:00:00:00:00:01 10.244.0.50"],
            "not a MAC",
        ),
        (
            &["lsp-add", "ls0", "p9", "0a:58:0a:f4:00:0b 10.244.0.50"],
            "already used by port",
        ),
        (
            &["lsp-add", "ls0", "p9", "0a:00:00:00:00:09 10.1.0.5"],
            "outside switch",
        ),
        (
            &["lsp-set-port-security", "ghost", "0a:00:00:00:00:09"],
            "\"ghost\" does not exist",
        ),
        (
            &["vswitch", "port-add", "no-such-if", "ls0-pod1"],
            "does not exist",
        ),
    ];
    for (args, want) in cases {
        let err = sb.syctl_err(args);
        assert!(err.contains(want), "syctl {args:?}: {err:?} lacks {want:?}");
    }
    assert_eq!(
        sb.syctl_json(&["show"])["switches"],
        before["switches"],
        "nothing was written"
    );
}
