//! ACLs (NetworkPolicy) with real daemons, real pods and AF_XDP: stateful
//! rules compiled into `ls_in_acl` / `ls_out_acl`, enforced with the datapath's
//! conntrack (`ct_state` matches, `ct_commit`).

use switchyard_tests::sandbox::{can_run, wait_until, Sandbox};

fn ok(a: &str) -> bool {
    !a.starts_with("ERR")
}

#[test]
fn acls_admit_one_client_keep_replies_flowing_and_survive_daemon_restarts() {
    if !can_run("acls_admit_one_client_keep_replies_flowing_and_survive_daemon_restarts") {
        return;
    }
    let mut sb = Sandbox::up(45, 3);
    let ns: Vec<String> = (0..3).map(|i| sb.netns(i)).collect();
    let (ip1, ip2, ip3) = (sb.ip(0), sb.ip(1), sb.ip(2));
    let _b2 = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let _b2u = sb.serve_in(&ns[1], "udp", 5353, "b2");
    let _b1 = sb.serve_in(&ns[0], "tcp", 8080, "b1");
    assert!(
        sb.connect_until(&ns[2], &ip2, 8080, ok),
        "no ACLs: pod3 reaches pod2"
    );

    // Only pod1 may open connections to pod2, and only to TCP 8080.
    let allow = format!(r#"outport == "ls0-pod2" && ip4.src == {ip1} && tcp.dst == 8080"#);
    sb.syctl(&["acl-add", "ls0", "to-lport", "100", &allow, "allow-related"]);
    let deny = r#"outport == "ls0-pod2" && ip4"#;
    sb.syctl(&[
        "acl-add",
        "ls0",
        "to-lport",
        "10",
        deny,
        "drop",
        "--name",
        "default-deny",
    ]);
    assert!(
        sb.connect_until(&ns[2], &ip2, 8080, |a| !ok(a)),
        "pod3 still reaches pod2 with the ACLs in place"
    );
    let check = |sb: &Sandbox| {
        let a = sb.svc_in(&ns[0], "connect", &ip2, 8080, 3);
        assert!(a.iter().all(|l| l.starts_with("b2")), "pod1 -> pod2: {a:?}");
        assert!(!ok(&sb.svc_in(&ns[2], "connect", &ip2, 8080, 1)[0]));
        assert!(
            !ok(&sb.svc_in(&ns[0], "udp", &ip2, 5353, 1)[0]),
            "UDP is not allowed"
        );
        assert!(!sb.ping(2, &ip2), "pod3 pings pod2");
        // Replies to what pod2 opens pass its default deny: they are established.
        assert!(sb.ping(1, &ip3), "pod2 cannot ping pod3");
        let a = sb.svc_in(&ns[1], "connect", &ip1, 8080, 1);
        assert!(a[0].starts_with("b1"), "pod2 -> pod1: {a:?}");
    };
    check(&sb);
    assert!(sb.drops("acl_drop") > 0);

    // The connections are in the switch's stateful zone, committed by the ACLs.
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    let zones: Vec<u64> = conns
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["zone"].as_u64())
        .collect();
    assert!(zones.iter().any(|z| z & 0x8000_0000 != 0), "{conns}");

    // The trace names the ACL that decides.
    let t = sb.syctl_json(&[
        "trace",
        "--ct",
        "new",
        &format!(r#"inport == "ls0-pod3" && ip4.dst == {ip2} && tcp.dst == 8080"#),
    ]);
    assert_eq!(t["drop_reason"], "acl_drop", "{t}");
    let t = sb.syctl_json(&[
        "trace",
        "--ct",
        "new",
        &format!(r#"inport == "ls0-pod1" && ip4.dst == {ip2} && tcp.dst == 8080"#),
    ]);
    assert_eq!(t["verdict"], "output", "{t}");
    let t = sb.syctl_json(&[
        "trace",
        "--ct",
        "rpl",
        &format!(r#"inport == "ls0-pod3" && ip4.dst == {ip2} && tcp.dst == 8080"#),
    ]);
    assert_eq!(t["verdict"], "output", "a reply passes: {t}");

    // Bad input: a clear error, nothing written.
    let e = sb.syctl_err(&[
        "acl-add",
        "ls0",
        "to-lport",
        "5",
        "tcp.dst == 80 || udp",
        "drop",
    ]);
    assert!(e.contains("column 15") && e.contains("sets"), "{e}");
    let e = sb.syctl_err(&[
        "acl-add",
        "ls0",
        "to-lport",
        "5",
        r#"outport == "nope""#,
        "drop",
    ]);
    assert!(e.contains("no port \"nope\""), "{e}");
    let e = sb.syctl_err(&["acl-add", "ls0", "sideways", "5", "ip4", "drop"]);
    assert!(e.contains("from-lport or to-lport"), "{e}");
    let e = sb.syctl_err(&["acl-add", "ls0", "to-lport", "40000", "ip4", "drop"]);
    assert!(e.contains("0 to 32767"), "{e}");
    let list = sb.syctl_json(&["acl-list", "ls0"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[1]["name"], "default-deny");

    // northd comes back with its ACLs; the datapath still enforces them.
    let mut held = sb.hold_in(&ns[0], &ip2, 8080);
    assert!(held.line().starts_with("b2"));
    sb.kill_and_restart("northd");
    let list = sb.syctl_json(&["acl-list", "ls0"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    check(&sb);

    // A vswitchd restart forgets its conntrack: the held connection is picked
    // up again (a mid-stream segment the ACLs allow), the policy still holds.
    sb.kill_and_restart("vswitchd");
    assert!(
        wait_until(std::time::Duration::from_secs(10), || sb
            .syctl_json(&["vswitch", "status"])["sb_connected"]
            == true),
        "vswitchd did not reconnect"
    );
    let a = held.ask();
    assert!(a.starts_with("b2"), "the connection did not survive: {a}");
    check(&sb);

    // Removing them opens pod2 again.
    sb.syctl(&["acl-del", "ls0"]);
    assert!(
        sb.connect_until(&ns[2], &ip2, 8080, ok),
        "pod3 blocked after acl-del"
    );
    assert!(wait_until(std::time::Duration::from_secs(10), || sb.ping(2, &ip2)));
}

#[test]
fn acls_hold_across_chassis_where_each_side_tracks_what_arrives_by_tunnel() {
    if !can_run("acls_hold_across_chassis_where_each_side_tracks_what_arrives_by_tunnel") {
        return;
    }
    // pod1 and pod3 on chassis 1, pod2 on chassis 2.
    let sb = Sandbox::up_with(46, 3, &["--chassis", "2"]);
    assert_ne!(sb.pod(0)["chassis"], sb.pod(1)["chassis"]);
    let ns: Vec<String> = (0..3).map(|i| sb.netns(i)).collect();
    let (ip1, ip2) = (sb.ip(0), sb.ip(1));
    let _b2 = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let _b1 = sb.serve_in(&ns[0], "tcp", 8080, "b1");
    assert!(sb.connect_until(&ns[0], &ip2, 8080, ok));

    // pod2 is isolated but for pod1's connections to 8080. The SYN is
    // committed on chassis 2 (egress pipeline, after the tunnel), the
    // replies find it there and on chassis 1 (where they arrive by tunnel).
    let allow = format!(r#"outport == "ls0-pod2" && ip4.src == {ip1} && tcp.dst == 8080"#);
    sb.syctl(&["acl-add", "ls0", "to-lport", "100", &allow, "allow-related"]);
    sb.syctl(&[
        "acl-add",
        "ls0",
        "to-lport",
        "10",
        r#"outport == "ls0-pod2" && ip4"#,
        "drop",
    ]);
    assert!(
        sb.connect_until(&ns[2], &ip2, 8080, |a| !ok(a)),
        "pod3 still reaches pod2"
    );
    let a = sb.svc_in(&ns[0], "connect", &ip2, 8080, 3);
    assert!(
        a.iter().all(|l| l.starts_with("b2")),
        "pod1 -> pod2 across chassis: {a:?}"
    );
    // What pod2 opens comes back to it through the tunnel as a reply.
    let a = sb.svc_in(&ns[1], "connect", &ip1, 8080, 2);
    assert!(
        a.iter().all(|l| l.starts_with("b1")),
        "pod2 -> pod1 across chassis: {a:?}"
    );
    assert!(sb.ping(1, &ip1), "pod2 cannot ping pod1");
    assert!(
        !sb.ping(0, &ip2),
        "pod1 pings pod2 (only TCP 8080 is allowed)"
    );
}

/// The same policy over IPv6 (`--ipv6` pods): `ip` and `tcp` cover both
/// families as in OVN, IPv6 connections are tracked (replies of what pod2
/// opens pass its default deny), neighbour discovery passes the ACL stages,
/// and a policy change cuts an IPv6 connection that is already open.
#[test]
fn ipv6_acls_are_stateful_cover_both_families_and_leave_neighbour_discovery_alone() {
    if !can_run("ipv6_acls_are_stateful_cover_both_families_and_leave_neighbour_discovery_alone") {
        return;
    }
    let sb = Sandbox::up_with(95, 3, &["--ipv6"]);
    let ns: Vec<String> = (0..3).map(|i| sb.netns(i)).collect();
    let (a1, a2, a3) = (sb.ip6(0), sb.ip6(1), sb.ip6(2));
    let ping6 = |from: usize, to: &str| sb.exec(from, &["ping", "-6", "-c", "1", "-W", "1", to]).0;
    let _b2 = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let _b1 = sb.serve_in(&ns[0], "tcp", 8080, "b1");
    assert!(
        sb.connect_until(&ns[2], &a2, 8080, ok),
        "no ACLs: pod3 reaches pod2 over IPv6"
    );

    // Only pod1 may open connections to pod2, only to TCP 8080, over IPv6.
    let allow = format!(r#"outport == "ls0-pod2" && ip6.src == {a1} && tcp.dst == 8080"#);
    sb.syctl(&["acl-add", "ls0", "to-lport", "100", &allow, "allow-related"]);
    sb.syctl(&[
        "acl-add",
        "ls0",
        "to-lport",
        "10",
        r#"outport == "ls0-pod2" && ip"#,
        "drop",
    ]);
    assert!(
        sb.connect_until(&ns[2], &a2, 8080, |a| !ok(a)),
        "pod3 still reaches pod2 over IPv6"
    );
    let drops = sb.drops("acl_drop");
    let a = sb.svc_in(&ns[0], "connect", &a2, 8080, 3);
    assert!(
        a.iter().all(|l| l.starts_with("b2")),
        "pod1 -> pod2 over IPv6: {a:?}"
    );
    assert!(
        a.iter().all(|l| l.contains(&a1)),
        "pod2 saw pod1's IPv6 address: {a:?}"
    );
    assert!(!ping6(2, &a2), "pod3 pings pod2 over IPv6");
    assert!(
        !ok(&sb.svc_in(&ns[2], "connect", &sb.ip(1), 8080, 1)[0]),
        "the deny on ip covers IPv4"
    );
    assert!(sb.drops("acl_drop") > drops);
    // What pod2 opens comes back as replies: conntrack follows IPv6.
    assert!(ping6(1, &a3), "pod2 cannot ping6 pod3");
    let a = sb.svc_in(&ns[1], "connect", &a1, 8080, 1);
    assert!(a[0].starts_with("b1"), "pod2 -> pod1 over IPv6: {a:?}");
    // Neighbour discovery passes: pod2 forgets its neighbours and finds them again.
    sb.exec(1, &["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || ping6(1, &a3)),
        "pod2 cannot resolve pod3 with the ACLs in place"
    );
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    let six: Vec<&serde_json::Value> = conns
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["orig"].as_str().is_some_and(|o| o.starts_with('[')))
        .collect();
    assert!(
        six.iter().any(
            |c| c["proto"] == "tcp" && c["orig"].as_str().unwrap().contains(&format!("[{a1}]"))
        ),
        "no IPv6 TCP connection from pod1 in ct-list: {conns}"
    );
    assert!(six.iter().any(|c| c["proto"] == "icmp6"), "{conns}");

    // The trace takes IPv6 microflows and names the ACL that decides.
    let trace = |ct: &str, from: &str| {
        let m = format!(r#"inport == "ls0-{from}" && ip6.dst == {a2} && tcp.dst == 8080"#);
        sb.syctl_json(&["trace", "--ct", ct, &m])
    };
    let t = trace("new", "pod3");
    assert_eq!(t["drop_reason"], "acl_drop", "{t}");
    assert!(
        t["packet"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("ip6.dst={a2}")),
        "{t}"
    );
    assert_eq!(trace("new", "pod1")["verdict"], "output");
    assert_eq!(trace("rpl", "pod3")["verdict"], "output", "a reply passes");

    // An open IPv6 connection is cut when the policy stops allowing it.
    let mut held = sb.hold_in(&ns[0], &a2, 8080);
    assert!(held.line().starts_with("b2"));
    sb.syctl(&["acl-del", "ls0", "to-lport", "100", &allow]);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || !held
            .ask()
            .starts_with("b2")),
        "the held IPv6 connection survived the policy change"
    );

    // Bad IPv6 matches: a clear error, nothing written.
    for (m, why) in [
        ("ip6.src == fd00::1/64", "host bits"),
        ("ip6.dst == 10.0.0.1", "not an IPv6 address"),
        ("ip4 && ip6", "both IPv4 and IPv6"),
        ("icmp4 && icmp6.type == 128", "never matches"),
    ] {
        let e = sb.syctl_err(&["acl-add", "ls0", "to-lport", "5", m, "drop"]);
        assert!(e.contains(why), "{m}: {e}");
    }
    let list = sb.syctl_json(&["acl-list", "ls0"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
