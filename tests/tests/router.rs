//! Integration tests of logical routers with real daemons, real pods and AF_XDP:
//! pods on two subnets joined by router lr0 (`syctl sandbox up --subnets 2`).

use std::time::Duration;
use switchyard_tests::sandbox::{can_run, run, wait_until, Sandbox};

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
    for args in [
        vec!["netns", "add", ns.0],
        vec![
            "link", "add", ns.0, "type", "veth", "peer", "name", "eth0", "netns", ns.0,
        ],
        vec!["link", "set", ns.0, "up"],
    ] {
        let (ok, _, err) = run("ip", &args);
        assert!(ok, "ip {args:?}: {err}");
    }
    for args in [
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "link", "set", "eth0", "address", "0a:58:0a:f4:01:fe"],
        vec!["ip", "addr", "add", "10.244.1.254/24", "dev", "eth0"],
        vec!["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"],
        vec!["ip", "link", "set", "eth0", "up"],
        vec!["ip", "route", "add", "10.244.0.0/16", "via", "10.244.1.1"],
        vec!["ethtool", "-K", "eth0", "tx", "off"],
    ] {
        let mut a = vec!["netns", "exec", ns.0];
        a.extend_from_slice(&args);
        let (ok, _, err) = run("ip", &a);
        assert!(ok, "{args:?}: {err}");
    }
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
    sb.syctl(&[
        "sandbox",
        "restart",
        "northd",
        "--kill",
        "--dir",
        &sb.dir.display().to_string(),
        "--prefix",
        &sb.prefix,
        "--port-base",
        &sb.port_base.to_string(),
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || sb
            .syctl(&["show"])
            .contains("neighbour 10.244.1.254")),
        "learned binding lost across a northd restart"
    );
    assert!(sb.ping(0, "10.99.0.1"));
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
