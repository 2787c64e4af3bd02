//! Integration tests of logical routers with real daemons, real pods and AF_XDP:
//! pods on two subnets joined by router lr0 (`syctl sandbox up --subnets 2`).

use std::time::Duration;
use switchyard_tests::sandbox::{can_run, run, sniff_in, wait_until, Sandbox};

#[test]
fn pods_on_two_subnets_ping_trace_and_carry_tcp_through_the_router() {
    if !can_run("pods_on_two_subnets_ping_trace_and_carry_tcp_through_the_router") {
        return;
    }
    let sb = Sandbox::up_with(20, 2, &["--subnets", "2"]);
    assert!(sb.ip(0).starts_with("10.244.0."), "{}", sb.ip(0));
    assert!(sb.ip(1).starts_with("10.244.1."), "{}", sb.ip(1));
    assert!(sb.ping(0, &sb.ip(1)), "pod on ls0 reaches pod on ls1");
    assert!(sb.ping(1, &sb.ip(0)), "and back");
    for gw in ["10.244.0.1", "10.244.1.1"] {
        assert!(sb.ping(0, gw), "the router answers echo requests to {gw}");
    }

    // A TTL-limited ping: the router hop answers with time exceeded.
    let (_, out, _) = sb.exec(0, &["ping", "-c", "1", "-t", "1", "-W", "1", &sb.ip(1)]);
    assert!(
        out.contains("From 10.244.0.1") && out.contains("Time to live exceeded"),
        "{out}"
    );
    // No route: destination unreachable from the router.
    let (_, out, _) = sb.exec(0, &["ping", "-c", "1", "-W", "1", "10.99.0.1"]);
    assert!(
        out.contains("From 10.244.0.1") && out.contains("Unreachable"),
        "{out}"
    );
    assert!(sb.drops("ttl_exceeded") >= 1);
    assert!(sb.drops("no_route") >= 1);

    let fwd = sb.iperf3_bps(1, 0, false);
    let rev = sb.iperf3_bps(1, 0, true);
    assert!(fwd > 0.0 && rev > 0.0, "fwd {fwd} rev {rev}");

    // The operator's view: show draws the router, lflow-list covers its stages,
    // the trace crosses switch -> router -> switch.
    let show = sb.syctl(&["show"]);
    assert!(show.contains("router lr0"), "{show}");
    assert!(show.contains("port lr0-ls1"), "{show}");
    let lflows = sb.syctl(&["lflow-list", "lr0"]);
    for stage in [
        "lr_in_admission",
        "lr_in_ip_input",
        "lr_in_ip_routing",
        "lr_in_arp_resolve",
        "lr_in_arp_request",
        "lr_out_delivery",
    ] {
        assert!(lflows.contains(stage), "{stage} missing from\n{lflows}");
    }
    let expr = format!(
        "inport == \"ls0-pod1\" && ip4.dst == {} && tcp.dst == 80",
        sb.ip(1)
    );
    let t = sb.syctl_json(&["trace", &expr]);
    let dps: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["datapath"].as_str().unwrap())
        .collect();
    assert!(
        dps.contains(&"lr0") && dps.last() == Some(&"ls1"),
        "{dps:?}"
    );
    assert_eq!(t["outputs"][0]["port"], "ls1-pod2", "{t}");
    let live = sb.syctl_json(&["vswitch", "trace", &expr]);
    assert_eq!(live["outputs"], t["outputs"], "live datapath agrees");
    assert!(
        live["rewrite"]
            .as_str()
            .unwrap_or("")
            .contains("ip.ttl -= 1"),
        "{live}"
    );
}

/// A namespace on ls1's wire (its veth's host end named like the namespace) at
/// `ip`/24, owning 10.99.0.1 on its loopback, routing 10.244.0.0/16 back via lr0.
fn external_host(ns: &str, mac: &str, ip: &str) {
    for args in [
        vec!["netns", "add", ns],
        vec![
            "link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
        vec!["link", "set", ns, "up"],
    ] {
        let (ok, _, err) = run("ip", &args);
        assert!(ok, "ip {args:?}: {err}");
    }
    let cidr = format!("{ip}/24");
    for args in [
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "link", "set", "eth0", "address", mac],
        vec!["ip", "addr", "add", &cidr, "dev", "eth0"],
        vec!["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"],
        vec!["ip", "link", "set", "eth0", "up"],
        vec!["ip", "route", "add", "10.244.0.0/16", "via", "10.244.1.1"],
        vec!["ethtool", "-K", "eth0", "tx", "off"],
    ] {
        let mut a = vec!["netns", "exec", ns];
        a.extend_from_slice(&args);
        let (ok, _, err) = run("ip", &a);
        assert!(ok, "{args:?}: {err}");
    }
}

#[test]
fn ecmp_spreads_flows_over_both_nexthops_and_keeps_each_flow_on_one() {
    if !can_run("ecmp_spreads_flows_over_both_nexthops_and_keeps_each_flow_on_one") {
        return;
    }
    // Three networks: ls0 and ls1 behind lr0, and 10.99.0.0/16 behind two
    // gateways on ls1, reached by two static routes for the same prefix.
    let sb = Sandbox::up_with(23, 2, &["--subnets", "2"]);
    let gw1 = Netns("t23-gw1");
    let gw2 = Netns("t23-gw2");
    external_host(gw1.0, "0a:58:0a:f4:01:fd", "10.244.1.253");
    external_host(gw2.0, "0a:58:0a:f4:01:fe", "10.244.1.254");
    for (lsp, ns) in [("gw1", gw1.0), ("gw2", gw2.0)] {
        sb.syctl(&["lsp-add", "ls1", lsp, "unknown"]);
        sb.syctl(&["vswitch", "port-add", ns, lsp]);
    }
    sb.syctl(&["lr-route-add", "lr0", "10.99.0.0/16", "10.244.1.253"]);
    sb.syctl(&["lr-route-add", "lr0", "10.99.0.0/16", "10.244.1.254"]);
    assert!(sb.syctl(&["lr-route-list", "lr0"]).contains("static ecmp"));
    // Resolve both nexthops: the first packets trigger ARP and learning.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let show = sb.syctl(&["show"]);
            show.contains("neighbour 10.244.1.253") && show.contains("neighbour 10.244.1.254")
        } || {
            let _ = sb.exec(0, &["python3", "-c", UDP_BURST, "16"]);
            false
        }),
        "both nexthops never got resolved"
    );
    // 64 UDP flows (one packet each, distinct source ports): each arrives
    // at exactly one gateway, and both gateways get some. Each gateway's
    // capture counts only this test's datagrams (their payload and source
    // ports), ended by a marker sent to that gateway's own address.
    let flows = |tag: &str, script: &str, n: &str| {
        let sniffers = [
            sniff_in(gw1.0, "eth0", tag, "MARK"),
            sniff_in(gw2.0, "eth0", tag, "MARK"),
        ];
        let (ok, _, err) = sb.exec(0, &["python3", "-c", script, n]);
        assert!(ok, "{err}");
        for gw in ["10.244.1.253", "10.244.1.254"] {
            let (ok, _, err) = sb.exec(0, &["python3", "-c", MARK, gw]);
            assert!(ok, "{err}");
        }
        // The gateways' ports have "unknown" addresses, so the switch floods
        // frames for either to both: a gateway's own are those to its MAC.
        let macs = ["0a580af401fd", "0a580af401fe"];
        let mut k = 0;
        sniffers.map(|s| {
            let mac = macs[k];
            k += 1;
            let lines = s.finish();
            assert_eq!(lines.last().map(String::as_str), Some("DONE"), "{lines:?}");
            // (source port, count) of the tagged datagrams this gateway got.
            let mut ports = std::collections::BTreeMap::<u16, usize>::new();
            for l in lines
                .iter()
                .filter_map(|l| l.strip_prefix("GOT "))
                .filter(|l| l.starts_with(mac))
            {
                let port = u16::from_str_radix(&l[68..72], 16).expect("hex");
                *ports.entry(port).or_default() += 1;
            }
            ports
        })
    };
    let [a, b] = flows("ecmp", UDP_BURST, "64");
    assert!(
        !a.is_empty() && !b.is_empty(),
        "ECMP used one path only: {a:?} / {b:?}"
    );
    assert!(a.keys().all(|p| !b.contains_key(p)), "a flow on both paths");
    let all: Vec<u16> = a.keys().chain(b.keys()).copied().collect();
    assert_eq!(all.len(), 64, "every flow arrives once: {a:?} {b:?}");
    assert!(a.values().chain(b.values()).all(|&n| n == 1));
    // One flow, many packets: all on one path.
    let [a, b] = flows("flow", UDP_ONE_FLOW, "40");
    let (na, nb): (usize, usize) = (a.values().sum(), b.values().sum());
    assert_eq!(na + nb, 40, "{a:?} {b:?}");
    assert!(
        na == 0 || nb == 0,
        "one flow was split over both paths: {na} / {nb}"
    );
}

/// A marker datagram to one gateway's own address (no ECMP on the way).
const MARK: &str = "import socket,sys\nsocket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'MARK',(sys.argv[1],9))";
/// UDP to 10.99.0.1:9, one packet from each of N source ports.
const UDP_BURST: &str = "import socket,sys\nfor i in range(int(sys.argv[1])):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',20000+i)); s.sendto(b'ecmp',('10.99.0.1',9)); s.close()";
/// UDP to 10.99.0.1:9, N packets from one source port.
const UDP_ONE_FLOW: &str = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',30000))\nfor i in range(int(sys.argv[1])): s.sendto(b'flow',('10.99.0.1',9))";

/// Removes the test's external namespace even when the test fails.
struct Netns(&'static str);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", self.0]);
        let _ = run("ip", &["link", "del", self.0]);
    }
}

#[test]
fn unresolved_nexthop_is_arped_for_learned_and_then_reached() {
    if !can_run("unresolved_nexthop_is_arped_for_learned_and_then_reached") {
        return;
    }
    let sb = Sandbox::up_with(21, 2, &["--subnets", "2"]);
    // An "external" host on ls1 whose address northd does not know, with a
    // network 10.99.0.0/16 behind it that lr0 reaches through a static route.
    let ns = Netns("t21-ext");
    external_host(ns.0, "0a:58:0a:f4:01:fe", "10.244.1.254");
    sb.syctl(&["lsp-add", "ls1", "ext", "unknown"]);
    sb.syctl(&["vswitch", "port-add", ns.0, "ext"]);
    sb.syctl(&["lr-route-add", "lr0", "10.99.0.0/16", "10.244.1.254"]);
    let routes = sb.syctl(&["lr-route-list", "lr0"]);
    assert!(
        routes.contains("10.99.0.0/16") && routes.contains("10.244.1.254"),
        "{routes}"
    );

    // The first packets find no MAC for 10.244.1.254: the router ARPs, learns
    // the answer (reported to northd, back through SB) and forwards.
    assert!(
        wait_until(Duration::from_secs(10), || sb.ping(0, "10.99.0.1")),
        "10.99.0.1 never became reachable"
    );
    assert!(sb.drops("neighbor_unresolved") >= 1);
    let show = sb.syctl(&["show"]);
    assert!(
        show.contains("neighbour 10.244.1.254 is 0a:58:0a:f4:01:fe on lr0-ls1 (learned)"),
        "{show}"
    );
    // The learned binding survives a northd restart: the chassis reports it again.
    sb.restart("northd", true);
    assert!(
        wait_until(Duration::from_secs(10), || sb
            .syctl(&["show"])
            .contains("neighbour 10.244.1.254")),
        "learned binding lost across a northd restart"
    );
    // northd shows the re-reported binding before every chassis has applied
    // the SB update carrying it back (the restarted northd's first snapshot
    // may predate the report): reachable again, within a deadline.
    assert!(
        wait_until(Duration::from_secs(10), || sb.ping(0, "10.99.0.1")),
        "10.99.0.1 unreachable after the northd restart"
    );
}

#[test]
fn bad_router_input_is_refused_with_a_clear_error() {
    if !can_run("bad_router_input_is_refused_with_a_clear_error") {
        return;
    }
    let sb = Sandbox::up_with(22, 2, &["--subnets", "2"]);
    let before = sb.syctl_json(&["show"]);
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "lrp-add",
                "lr0",
                "lr0-x",
                "0a:00:00:00:00:99",
                "10.244.0.77/16",
            ],
            "overlaps",
        ),
        (
            &["lr-route-add", "lr0", "10.50.0.0/16", "192.0.2.1"],
            "not reachable",
        ),
        (
            &["lr-route-add", "lr0", "10.50.0.1/16", "10.244.0.5"],
            "host bits set",
        ),
        (
            &[
                "lsp-set-type",
                "ls0-pod1",
                "router",
                "--router-port",
                "nope",
            ],
            "no logical router port \"nope\"",
        ),
        (
            &[
                "lsp-set-type",
                "ls0-pod1",
                "router",
                "--router-port",
                "lr0-ls1",
            ],
            "attached twice",
        ),
    ];
    for (args, want) in cases {
        let err = sb.syctl_err(args);
        assert!(err.contains(want), "{args:?}: {err:?} should say {want:?}");
    }
    assert_eq!(sb.syctl_json(&["show"]), before, "nothing was written");
}
