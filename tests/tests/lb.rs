//! Load balancers and conntrack with real daemons, real pods and AF_XDP:
//! Service VIPs on two subnets joined by lr0 (`syctl sandbox up --subnets 2`),
//! served by `helpers/svc.py` in the backend pods.

use std::collections::BTreeMap;
use std::time::Duration;
use switchyard_tests::metrics::{scrape, value};
use switchyard_tests::sandbox::{can_run, wait_until, Sandbox};

const VIP: &str = "10.96.0.10";

/// The backend names of `connect` answers ("NAME PEER_IP PEER_PORT"), counted.
fn spread(lines: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        let name = l.split_whitespace().next().unwrap_or("").to_string();
        *m.entry(name).or_default() += 1;
    }
    m
}

#[test]
fn service_vip_balances_keeps_connections_and_answers_from_the_vip() {
    if !can_run("service_vip_balances_keeps_connections_and_answers_from_the_vip") {
        return;
    }
    let sb = Sandbox::up_with(40, 4, &["--subnets", "2"]);
    // pod1 (ls0) is the client; pod2 (ls1), pod3 (ls0), pod4 (ls1) are backends.
    let ns: Vec<String> = (0..4).map(|i| sb.netns(i)).collect();
    let _servers: Vec<_> = (1..4)
        .flat_map(|i| {
            let name = format!("b{}", i + 1);
            [
                sb.serve_in(&ns[i], "tcp", 8080, &name),
                sb.serve_in(&ns[i], "udp", 5353, &name),
            ]
        })
        .collect();
    let backends = |port: u16, which: &[usize]| {
        which
            .iter()
            .map(|i| format!("{}:{port}", sb.ip(*i)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let vip80 = format!("{VIP}:80");
    sb.syctl(&["lb-add", "web", &vip80, &backends(8080, &[1, 2, 3])]);
    sb.syctl(&["ls-lb-add", "ls0", "web"]);
    sb.syctl(&["ls-lb-add", "ls1", "web"]);
    let vip53 = format!("{VIP}:53");
    sb.syctl(&[
        "lb-add",
        "web-dns",
        &vip53,
        &backends(5353, &[1, 2, 3]),
        "udp",
    ]);
    sb.syctl(&["ls-lb-add", "ls0", "web-dns"]);
    assert!(
        sb.connect_until(&ns[0], VIP, 80, |a| !a.starts_with("ERR")),
        "the VIP never answered"
    );

    // Many connections: every backend gets a share, and sees the client's own
    // address (no SNAT for a client that is not a backend).
    let lines = sb.svc_in(&ns[0], "connect", VIP, 80, 60);
    assert!(lines.iter().all(|l| !l.starts_with("ERR")), "{lines:?}");
    let s = spread(&lines);
    for b in ["b2", "b3", "b4"] {
        assert!(
            s.get(b).copied().unwrap_or(0) >= 5,
            "{b} got too few: {s:?}"
        );
    }
    assert!(lines.iter().all(|l| l.contains(&sb.ip(0))), "{lines:?}");

    // UDP: the answer comes from the VIP, not from the backend.
    for l in sb.svc_in(&ns[0], "udp", VIP, 53, 6) {
        assert!(l.starts_with(&format!("FROM {VIP}:53 b")), "{l}");
    }

    // One TCP connection stays on one backend for its life.
    let mut held = sb.hold_in(&ns[0], VIP, 80);
    let first = held.line();
    assert!(first.starts_with('b'), "{first}");
    for _ in 0..20 {
        let a = held.ask();
        assert_eq!(
            a.split_whitespace().next(),
            first.split_whitespace().next(),
            "{a}"
        );
    }

    // ClientIP affinity: every connection of one client goes to one backend.
    let vip81 = format!("{VIP}:81");
    sb.syctl(&[
        "lb-add",
        "sticky",
        &vip81,
        &backends(8080, &[1, 2, 3]),
        "--affinity-timeout",
        "60",
    ]);
    sb.syctl(&["ls-lb-add", "ls0", "sticky"]);
    assert!(sb.connect_until(&ns[0], VIP, 81, |a| !a.starts_with("ERR")));
    let s = spread(&sb.svc_in(&ns[0], "connect", VIP, 81, 12));
    assert_eq!(s.len(), 1, "affinity broken: {s:?}");

    // Hairpin: a backend reaching its own service; when it lands on itself it
    // sees the VIP as the peer (hairpin SNAT), else its own address; every
    // connection is checked, not a sample.
    let lines = sb.svc_in(&ns[2], "connect", VIP, 80, 30);
    assert!(lines.iter().all(|l| !l.starts_with("ERR")), "{lines:?}");
    for l in &lines {
        let peer = l.split_whitespace().nth(1).unwrap_or("");
        let want = if l.starts_with("b3 ") {
            VIP.to_string()
        } else {
            sb.ip(2)
        };
        assert_eq!(peer, want, "{l}");
    }
    // A service whose only backend is the client: every connection hairpins.
    sb.syctl(&[
        "lb-add",
        "self",
        &format!("{VIP}:83"),
        &format!("{}:8080", sb.ip(2)),
    ]);
    sb.syctl(&["ls-lb-add", "ls0", "self"]);
    assert!(sb.connect_until(&ns[2], VIP, 83, |a| !a.starts_with("ERR")));
    let lines = sb.svc_in(&ns[2], "connect", VIP, 83, 10);
    assert!(
        lines.iter().all(|l| l.starts_with(&format!("b3 {VIP} "))),
        "every hairpinned connection comes from the VIP: {lines:?}"
    );

    // One client port to two services that share a backend: the second
    // connection's reply tuple is the first's, closed and in TIME_WAIT, and
    // its SYN takes it over (a client reusing ports must not be refused).
    for (name, port) in [("one-a", 84), ("one-b", 85)] {
        sb.syctl(&[
            "lb-add",
            name,
            &format!("{VIP}:{port}"),
            &format!("{}:8080", sb.ip(1)),
        ]);
        sb.syctl(&["ls-lb-add", "ls0", name]);
        assert!(sb.connect_until(&ns[0], VIP, port, |a| a.starts_with("b2 ")));
    }
    let reused = |sb: &Sandbox| sb.syctl_json(&["vswitch", "ct-stats"])["closed_reused"].as_u64();
    let before = reused(&sb).expect("ct-stats closed_reused");
    for port in [84, 85] {
        let a = sb.connect_from(&ns[0], VIP, port, 45_678);
        assert!(a.starts_with("b2 "), "VIP:{port} from port 45678: {a}");
    }
    assert!(
        reused(&sb).unwrap_or(0) > before,
        "the closed entry was not taken over"
    );

    // Removing a backend leaves the others' established connections intact.
    let mut holds: BTreeMap<String, switchyard_tests::sandbox::Background> = BTreeMap::new();
    for _ in 0..40 {
        if holds.len() == 3 {
            break;
        }
        let mut h = sb.hold_in(&ns[0], VIP, 80);
        let name = h.line().split_whitespace().next().unwrap_or("").to_string();
        if name.starts_with('b') {
            holds.entry(name).or_insert(h);
        }
    }
    assert_eq!(
        holds.len(),
        3,
        "could not open a connection to each backend"
    );
    sb.syctl(&[
        "lb-add",
        "web",
        &vip80,
        &backends(8080, &[1, 3]),
        "--may-exist",
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || !spread(
            &sb.svc_in(&ns[0], "connect", VIP, 80, 12)
        )
        .contains_key("b3")),
        "b3 still gets new connections"
    );
    for b in ["b2", "b4"] {
        let h = holds.get_mut(b).unwrap();
        for _ in 0..3 {
            let a = h.ask();
            assert!(
                a.starts_with(&format!("{b} ")),
                "{b}'s connection broke: {a}"
            );
        }
    }
    drop(holds);
    drop(held);

    // A VIP without backends: TCP is reset, UDP gets port unreachable.
    sb.syctl(&["lb-add", "empty", &format!("{VIP}:90"), ""]);
    sb.syctl(&["lb-add", "empty-dns", &format!("{VIP}:91"), "", "udp"]);
    sb.syctl(&["ls-lb-add", "ls0", "empty"]);
    sb.syctl(&["ls-lb-add", "ls0", "empty-dns"]);
    assert!(sb.connect_until(&ns[0], VIP, 90, |a| a == "ERR ConnectionRefusedError"));
    assert_eq!(
        sb.svc_in(&ns[0], "udp", VIP, 91, 1)[0],
        "ERR ConnectionRefusedError"
    );
    assert!(sb.drops("lb_no_backend") >= 2);

    // The operator's view: the topology with its load balancers, conntrack
    // entries with their translation, counters, and traces that show the load
    // balancer's step.
    let show = sb.syctl(&["show"]);
    assert!(
        show.contains("load balancer web tcp: 10.96.0.10:80 (2 backends)"),
        "{show}"
    );
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    let conns = conns.as_array().expect("list");
    assert!(
        conns.iter().any(|c| c["orig"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("-> {VIP}:80"))
            && c["nat"] == true),
        "{conns:?}"
    );
    let stats = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert!(stats["inserts"].as_u64().unwrap_or(0) >= 60, "{stats}");
    assert_eq!(stats["full_drops"], 0);
    // The same counters on the Prometheus page (mirrored between batches).
    let url = sb.state["vswitchd_metrics"].as_str().unwrap().to_string();
    let inserts = stats["inserts"].as_f64().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || {
            let m = scrape(&url);
            value(&m, "switchyard_conntrack_inserts_total", None) == inserts
                && value(&m, "switchyard_lb_connections_total", None) >= 60.0
        }),
        "metrics disagree with ct-stats {stats}"
    );
    let expr =
        format!("inport == \"ls0-pod1\" && ip4.dst == {VIP} && tcp.dst == 80 && tcp.src == 40000");
    let t = sb.syctl_json(&["trace", &expr, "--ct", "new"]);
    let ct = t["conntrack"].as_str().unwrap_or("");
    assert!(ct.starts_with("ct_lb(web): new connection"), "{t}");
    assert_eq!(t["verdict"], "output", "{t}");
    let est = sb.syctl(&["trace", &expr, "--ct", "est"]);
    assert!(est.contains("established connection"), "{est}");
    // ovn-trace's default (trk,est), and one state per conntrack step.
    let dflt = sb.syctl(&["trace", &expr]);
    assert!(
        dflt.contains("established connection (--ct trk,est)"),
        "{dflt}"
    );
    let steps = sb.syctl(&["trace", &expr, "--ct", "new", "--ct", "est"]);
    assert!(steps.contains("new connection"), "{steps}");
    // --lb-dst: the backend the operator names, not the hash's; a pod that is
    // no backend of the VIP is refused with the list of those that are.
    let to = format!("{}:8080", sb.ip(3));
    let pinned = sb.syctl_json(&["trace", &expr, "--ct", "new", "--lb-dst", &to]);
    let ct = pinned["conntrack"].as_str().unwrap_or("");
    assert!(ct.contains(&format!("backend {to} (--lb-dst")), "{pinned}");
    assert_eq!(pinned["outputs"][0]["port"], sb.pod(3)["lport"], "{pinned}");
    let e = sb.syctl_err(&["trace", &expr, "--lb-dst", &sb.ip(2)]);
    assert!(e.contains("is not a backend") && e.contains(&to), "{e}");
    let live = sb.syctl_json(&["vswitch", "trace", &expr]);
    assert!(
        live["conntrack"]
            .as_str()
            .unwrap_or("")
            .contains("ct_lb(web)"),
        "{live}"
    );
    sb.syctl(&["vswitch", "ct-flush"]);
    let after = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert_eq!(after["entries"], 0, "{after}");
}

#[test]
fn conntrack_full_drops_new_connections_and_keeps_established_ones() {
    if !can_run("conntrack_full_drops_new_connections_and_keeps_established_ones") {
        return;
    }
    let sb = Sandbox::up_with(41, 2, &["--subnets", "2", "--ct-capacity", "16"]);
    let ns = [sb.netns(0), sb.netns(1)];
    let _srv = sb.serve_in(&ns[1], "tcp", 8080, "b");
    sb.service_on_ls0("web", VIP, 80, 1, 8080);
    let mut held = None;
    assert!(wait_until(Duration::from_secs(10), || {
        let mut h = sb.hold_in(&ns[0], VIP, 80);
        let ok = h.line().starts_with("b ");
        if ok {
            held = Some(h);
        }
        ok
    }));
    let mut held = held.unwrap();
    // Closed connections linger in TIME_WAIT: 15 more fill the table, and
    // newcomers evict them (they are over) rather than being refused.
    let lines = sb.svc_in(&ns[0], "connect", VIP, 80, 15);
    assert!(lines.iter().all(|l| l.starts_with("b ")), "{lines:?}");
    let more = sb.svc_in(&ns[0], "connect", VIP, 80, 2);
    assert!(more.iter().all(|l| l.starts_with("b ")), "{more:?}");
    let stats = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert!(stats["early_drops"].as_u64().unwrap_or(0) >= 2, "{stats}");
    // Fifteen more held open: sixteen established connections, nothing
    // left to evict, and the next connection is refused.
    let mut open = Vec::new();
    for _ in 0..15 {
        let mut h = sb.hold_in(&ns[0], VIP, 80);
        assert!(h.line().starts_with("b "));
        open.push(h);
    }
    let refused = sb.svc_in(&ns[0], "connect", VIP, 80, 2);
    assert!(refused.iter().all(|l| l.starts_with("ERR")), "{refused:?}");
    assert!(sb.drops("ct_full") >= 1);
    let stats = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert_eq!(stats["capacity"], 16, "{stats}");
    assert!(stats["full_drops"].as_u64().unwrap_or(0) >= 1, "{stats}");
    drop(open);
    // The established connection is not affected.
    for _ in 0..5 {
        assert!(held.ask().starts_with("b "));
    }
    // Restarts: northd comes back with its load balancers; a vswitchd that
    // lost its conntrack picks the established connection up again (the
    // consistent hash sends it to the backend it had).
    let mut sb = sb;
    sb.kill_and_restart("northd");
    let lbs = sb.syctl_json(&["lb-list"]);
    assert_eq!(lbs[0]["name"], "web", "{lbs}");
    sb.kill_and_restart("vswitchd");
    assert!(
        wait_until(Duration::from_secs(10), || sb
            .syctl_json(&["vswitch", "status"])["sb_connected"]
            == true),
        "vswitchd did not reconnect"
    );
    let a = held.ask();
    assert!(a.starts_with("b "), "the connection did not survive: {a}");
    let stats = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert_eq!(stats["entries"], 1, "picked up as one connection: {stats}");
}

#[test]
fn service_vip_across_chassis_through_a_router_attachment() {
    if !can_run("service_vip_across_chassis_through_a_router_attachment") {
        return;
    }
    let sb = Sandbox::up_with(
        43,
        4,
        &[
            "--subnets",
            "2",
            "--chassis",
            "2",
            "--pods-per-chassis",
            "2",
        ],
    );
    // pod1 (ls0) and pod3 on chassis 1; backends pod2 and pod4 (ls1) on chassis 2.
    let ns: Vec<String> = (0..4).map(|i| sb.netns(i)).collect();
    let _b2 = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let _b4 = sb.serve_in(&ns[3], "tcp", 8080, "b4");
    let vip = format!("{VIP}:80");
    let backends = format!("{}:8080,{}:8080", sb.ip(1), sb.ip(3));
    sb.syctl(&["lb-add", "web", &vip, &backends]);
    // Attached to the router: served to every switch on lr0.
    sb.syctl(&["lr-lb-add", "lr0", "web"]);
    assert!(sb.connect_until(&ns[0], VIP, 80, |a| !a.starts_with("ERR")));
    // Replies cross the tunnel back and are un-DNATed on the client's chassis.
    let lines = sb.svc_in(&ns[0], "connect", VIP, 80, 30);
    assert!(lines.iter().all(|l| !l.starts_with("ERR")), "{lines:?}");
    let s = spread(&lines);
    assert!(s.len() == 2, "both remote backends serve: {s:?}");
    // pod4 is a backend on the other switch: hairpin there too.
    let lines = sb.svc_in(&ns[3], "connect", VIP, 80, 20);
    assert!(lines.iter().all(|l| !l.starts_with("ERR")), "{lines:?}");
    assert!(lines
        .iter()
        .filter(|l| l.starts_with("b4 "))
        .all(|l| l.contains(&format!(" {VIP} "))));
}
