//! Two PMD threads with real daemons, pods and AF_XDP (`syctl sandbox up
//! --pmd-cores 0,1`): ports spread over both, frames for a port the other
//! PMD owns handed over to it, and connections whose two directions are
//! polled by different PMDs tracked and load-balanced by the one shared
//! conntrack.

use switchyard_tests::sandbox::{can_run, Sandbox};

const VIP: &str = "10.96.0.20";

#[test]
fn two_pmds_share_the_ports_and_track_connections_across_them() {
    if !can_run("two_pmds_share_the_ports_and_track_connections_across_them") {
        return;
    }
    let sb = Sandbox::up_with(77, 4, &["--subnets", "2", "--pmd-cores", "0,1"]);
    let ns: Vec<String> = (0..4).map(|i| sb.netns(i)).collect();

    // Ports go to the PMD with the fewest, in the order they are bound.
    let ports = sb.syctl_json(&["vswitch", "port-list"]);
    let pmd_of = |i: usize| -> String {
        let iface = sb.pod(i)["host_iface"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let p = ports
            .as_array()
            .expect("port list")
            .iter()
            .find(|p| p["iface"] == iface.as_str())
            .unwrap_or_else(|| panic!("{iface} not in {ports}"));
        let mode = p["mode"].as_str().unwrap_or_default();
        mode.split_whitespace()
            .find_map(|w| w.strip_prefix("pmd="))
            .unwrap_or_else(|| panic!("no pmd in {mode:?}"))
            .to_string()
    };
    let owners: Vec<String> = (0..4).map(pmd_of).collect();
    assert!(owners.iter().any(|o| o == "0"), "{owners:?}");
    assert!(owners.iter().any(|o| o == "1"), "{owners:?}");
    // A client and a backend on different PMDs.
    let client = 0;
    let backends: Vec<usize> = (1..4).filter(|&i| owners[i] != owners[client]).collect();
    assert!(!backends.is_empty(), "{owners:?}");

    // Switched and routed, across PMDs.
    for &b in &backends {
        assert!(
            sb.ping(client, &sb.ip(b)),
            "ping pod{} -> pod{}",
            client + 1,
            b + 1
        );
    }

    // A service whose backends are on the other PMD: the request is DNATed
    // by the client's PMD, the reply un-DNATed by the backend's.
    let _servers: Vec<_> = backends
        .iter()
        .map(|&i| sb.serve_in(&ns[i], "tcp", 8080, &format!("b{}", i + 1)))
        .collect();
    let list = backends
        .iter()
        .map(|&i| format!("{}:8080", sb.ip(i)))
        .collect::<Vec<_>>()
        .join(",");
    sb.syctl(&["lb-add", "web", &format!("{VIP}:80"), &list]);
    sb.syctl(&["ls-lb-add", "ls0", "web"]);
    sb.syctl(&["ls-lb-add", "ls1", "web"]);
    assert!(
        sb.connect_until(&ns[client], VIP, 80, |a| !a.starts_with("ERR")),
        "the VIP never answered across PMDs\n{}",
        sb.log_tails()
    );
    let lines = sb.svc_in(&ns[client], "connect", VIP, 80, 20);
    assert!(lines.iter().all(|l| l.starts_with('b')), "{lines:?}");
    // One connection stays on its backend for its life.
    let mut held = sb.hold_in(&ns[client], VIP, 80);
    let first = held.line();
    for _ in 0..10 {
        let a = held.ask();
        assert_eq!(
            a.split_whitespace().next(),
            first.split_whitespace().next(),
            "{a}"
        );
    }

    // Both PMDs received traffic, and show in pmd-stats each.
    let v = sb.syctl_json(&["vswitch", "pmd-stats"]);
    let pmds = v.as_array().expect("pmd list");
    assert_eq!(pmds.len(), 2, "{v}");
    for p in pmds {
        assert!(p["packets"].as_u64().unwrap_or(0) > 0, "{p}");
    }
    // Conntrack is one table: its connections are listed once.
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    assert!(conns.as_array().is_some_and(|c| !c.is_empty()), "{conns}");
}
