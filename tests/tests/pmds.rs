//! Two PMD threads with real daemons, pods and AF_XDP (`syctl sandbox up
//! --pmd-cores 0,1`): ports spread over both, frames for a port the other
//! PMD owns handed over to it, and connections whose two directions are
//! polled by different PMDs tracked and load-balanced by the one shared
//! conntrack.

use std::time::Duration;
use switchyard_tests::sandbox::{can_run, wait_until, Sandbox};

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

/// Queues of `iface` in `pmd-rxq-show`: (queue, pmd, pinned, packets).
fn rxqs_of(sb: &Sandbox, iface: &str) -> Vec<(u64, u64, bool, u64)> {
    let v = sb.syctl_json(&["vswitch", "pmd-rxq-show"]);
    v.as_array()
        .expect("rxq list")
        .iter()
        .filter(|q| q["iface"] == iface)
        .map(|q| {
            (
                q["queue"].as_u64().unwrap_or(99),
                q["pmd"].as_u64().unwrap_or(99),
                q["pinned"].as_bool().unwrap_or(false),
                q["packets"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_ports_queues_spread_over_pmds_carry_traffic_and_stay_pinned_across_a_restart() {
    if !can_run("a_ports_queues_spread_over_pmds_carry_traffic_and_stay_pinned_across_a_restart") {
        return;
    }
    let sb = Sandbox::up_with(78, 2, &["--pmd-cores", "0,1", "--queues", "2"]);
    let ns: Vec<String> = (0..2).map(|i| sb.netns(i)).collect();
    let iface = |i: usize| {
        sb.pod(i)["host_iface"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // Every queue of every port is polled, one by each PMD (round-robin).
    for i in 0..2 {
        let q = rxqs_of(&sb, &iface(i));
        let placed: Vec<(u64, u64)> = q.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(placed.len(), 2, "{q:?}");
        assert_ne!(placed[0].1, placed[1].1, "both queues on one PMD: {q:?}");
    }

    // Thirty connections (thirty source ports) spread over both of the
    // client's queues, so both PMDs receive from the one port.
    let _srv = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let lines = sb.svc_in(&ns[0], "connect", &sb.ip(1), 8080, 30);
    assert!(lines.iter().all(|l| l.starts_with("b2 ")), "{lines:?}");
    let q = rxqs_of(&sb, &iface(0));
    assert!(q.iter().all(|r| r.3 > 0), "a queue received nothing: {q:?}");

    // Pinning both queues to core 1: refused values change nothing.
    for (bad, why) in [
        ("rxq-affinity=0:7", "no PMD on core 7"),
        ("rxq-affinity=5:1", "queue 5 does not exist"),
        ("rxq-affinity=0", "want QUEUE:CORE"),
        ("colour=red", "unknown option"),
    ] {
        let err = sb.syctl_err(&["vswitch", "port-set", &iface(0), bad]);
        assert!(err.contains(why), "{bad}: {err}");
    }
    sb.syctl(&["vswitch", "port-set", &iface(0), "rxq-affinity=0:1,1:1"]);
    let pinned = |sb: &Sandbox| {
        rxqs_of(sb, &iface(0))
            .iter()
            .map(|r| (r.0, r.1, r.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(pinned(&sb), [(0, 1, true), (1, 1, true)]);
    // The re-pinned port forwards, and PMD 1 alone receives from it.
    let lines = sb.svc_in(&ns[0], "connect", &sb.ip(1), 8080, 10);
    assert!(lines.iter().all(|l| l.starts_with("b2 ")), "{lines:?}");
    assert!(rxqs_of(&sb, &iface(0)).iter().all(|r| r.3 > 0));
    // A restarted vswitchd comes back with the pinning.
    sb.restart("vswitchd", true);
    assert!(
        wait_until(Duration::from_secs(10), || pinned(&sb)
            == [(0, 1, true), (1, 1, true)]),
        "the pinning did not survive a restart: {:?}",
        pinned(&sb)
    );
    assert!(sb.ping(0, &sb.ip(1)), "no ping after the restart");
    // Unpinned, the port's queues go to the PMDs with the fewest queues:
    // PMD 0 took the other port's while PMD 1 was isolated by the pinning,
    // so both land on PMD 1; a rebalance then spreads every port again.
    sb.syctl(&["vswitch", "port-set", &iface(0), "rxq-affinity="]);
    let q = pinned(&sb);
    assert!(q.iter().all(|r| !r.2) && q[0].1 == q[1].1, "{q:?}");
    // Load pod 1's two queues (64 UDP flows to a closed port: the answers
    // are rate-limited ICMP), so they are the busiest and share a PMD; a
    // rebalance by cycles puts them apart.
    let flood =
        "import socket\nss=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(64)]\n\
                 for i in range(20000): ss[i%64].sendto(b'x'*64,(ADDR,9))";
    let flood = flood.replace("ADDR", &format!("'{}'", sb.ip(1)));
    let (ok, _, err) = sb.exec(0, &["python3", "-c", &flood]);
    assert!(ok, "{err}");
    let v = sb.syctl_json(&["vswitch", "pmd-rxq-rebalance"]);
    assert!(v["moved"].as_u64().unwrap_or(0) >= 1, "{v}");
    let q = rxqs_of(&sb, &iface(0));
    assert!(
        q[0].1 != q[1].1,
        "the busiest queues still share a PMD: {q:?}"
    );
    let lines = sb.svc_in(&ns[0], "connect", &sb.ip(1), 8080, 5);
    assert!(lines.iter().all(|l| l.starts_with("b2 ")), "{lines:?}");
}

#[test]
fn pmd_auto_lb_moves_a_busy_queue_off_an_overloaded_pmd() {
    if !can_run("pmd_auto_lb_moves_a_busy_queue_off_an_overloaded_pmd") {
        return;
    }
    let sb = Sandbox::up_with(
        79,
        2,
        &[
            "--pmd-cores",
            "0,1",
            "--queues",
            "2",
            "--vswitchd-arg=--pmd-auto-lb",
            "--vswitchd-arg=--pmd-auto-lb-interval=1",
            "--vswitchd-arg=--pmd-auto-lb-load-threshold=0",
        ],
    );
    let iface = |i: usize| {
        sb.pod(i)["host_iface"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Both of pod 1's queues on core 1 (pinned), then unpinned: they stay
    // together (PMD 0 has the other port's two) until auto-lb sees the load.
    sb.syctl(&["vswitch", "port-set", &iface(0), "rxq-affinity=0:1,1:1"]);
    sb.restart("vswitchd", false);
    sb.syctl(&["vswitch", "port-set", &iface(0), "rxq-affinity="]);
    let together = rxqs_of(&sb, &iface(0));
    assert_eq!(together[0].1, together[1].1, "{together:?}");
    let flood = format!(
        "import socket\nss=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(64)]\n\
         for i in range(400000): ss[i%64].sendto(b'x'*64,('{}',9))",
        sb.ip(1)
    );
    let spread = |sb: &Sandbox| {
        let q = rxqs_of(sb, &iface(0));
        q.len() == 2 && q[0].1 != q[1].1
    };
    // Flood until auto-lb moves a queue (each round a fraction of a second
    // of load; the check runs every second).
    let moved = wait_until(Duration::from_secs(30), || {
        let (ok, _, _) = sb.exec(0, &["python3", "-c", &flood]);
        ok && spread(&sb)
    });
    assert!(
        moved,
        "auto-lb never spread the busy queues: {:?}",
        rxqs_of(&sb, &iface(0))
    );
    let url = sb.state["vswitchd_metrics"]
        .as_str()
        .expect("metrics url")
        .to_string();
    let m = switchyard_tests::metrics::scrape(&url);
    let moves =
        switchyard_tests::metrics::value(&m, "switchyard_vswitchd_pmd_auto_lb_moves_total", None);
    assert!(moves >= 1.0, "no move counted: {moves}");
    assert!(sb.ping(0, &sb.ip(1)), "no ping after the rebalance");
}
