//! DHCPv4 answered in the datapath, with real daemons, real pods, AF_XDP and
//! a real client (busybox's udhcpc): a pod without an address gets its
//! address, router, MTU and DNS server from the switch and reaches others.

use switchyard_tests::sandbox::{can_run, run, runs_unless, Sandbox};

/// udhcpc's script: applies the lease and prints what it got.
const SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "LEASE ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns domain=$domain lease=$lease" ;;
esac
"#;

/// Whether a DHCP test runs here (root, syctl, busybox's udhcpc).
fn can_run_dhcp(name: &str) -> bool {
    if !can_run(name) {
        return false;
    }
    let has_udhcpc = run("busybox", &["udhcpc", "--help"]).2.contains("udhcpc");
    runs_unless(
        name,
        (!has_udhcpc).then_some("busybox udhcpc is missing (busybox-static, scripts/setup)"),
    )
}

#[test]
fn a_pod_without_an_address_gets_its_lease_from_the_datapath_and_reaches_others() {
    let name = "a_pod_without_an_address_gets_its_lease_from_the_datapath_and_reaches_others";
    if !can_run_dhcp(name) {
        return;
    }
    let sb = Sandbox::up(72, 3);
    let script = sb.dir.join("udhcpc.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    run("chmod", &["+x", &script.display().to_string()]);
    let gw_mac = sb.state["switches"][0]["gateway_mac"]
        .as_str()
        .expect("gateway_mac")
        .to_string();
    // Bad options are refused with the reason, nothing written.
    let e = sb.syctl_err(&[
        "dhcp-options-create",
        "10.244.0.0/24",
        "server_id=10.244.0.1",
    ]);
    assert!(e.contains("required"), "{e}");
    let e = sb.syctl_err(&[
        "dhcp-options-create",
        "10.244.0.0/24",
        "server_id=10.244.0.1",
        &format!("server_mac={gw_mac}"),
        "lease_time=3600",
        "mtu=100000",
    ]);
    assert!(e.contains("mtu"), "{e}");
    assert!(!sb.syctl(&["dhcp-options-list"]).contains("10.244.0.0/24"));

    let id = sb
        .syctl(&[
            "dhcp-options-create",
            "10.244.0.0/24",
            "server_id=10.244.0.1",
            &format!("server_mac={gw_mac}"),
            "lease_time=3600",
            "router=10.244.0.1",
            "mtu=1400",
            "dns_server={10.96.0.10}",
        ])
        .trim()
        .to_string();
    let lport = |i: usize| sb.pod(i)["lport"].as_str().expect("lport").to_string();
    sb.syctl(&["--wait=hv", "lsp-set-dhcpv4-options", &lport(0), &id]);
    assert!(sb
        .syctl(&["lsp-get-dhcpv4-options", &lport(0)])
        .contains(&id));
    let udhcpc = |i: usize| {
        sb.exec(i, &["ip", "addr", "flush", "dev", "eth0"]);
        sb.exec(
            i,
            &[
                "timeout",
                "20",
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-f",
                "-q",
                "-n",
                "-t",
                "3",
                "-T",
                "1",
                "-s",
                &script.display().to_string(),
            ],
        )
    };
    let (ok, out, err) = udhcpc(0);
    assert!(ok, "udhcpc failed:\n{out}\n{err}");
    let lease = out.lines().find(|l| l.starts_with("LEASE")).unwrap_or("");
    assert!(
        lease.contains(&format!(
            "ip={} mask=24 router=10.244.0.1 mtu=1400 dns=10.96.0.10",
            sb.ip(0)
        )),
        "{lease}"
    );
    assert!(lease.contains("lease=3600"), "{lease}");
    let mtu = sb.exec(0, &["cat", "/sys/class/net/eth0/mtu"]).1;
    assert_eq!(mtu.trim(), "1400");
    assert!(sb.ping(0, &sb.ip(1)), "the leased address reaches pod2");
    assert!(sb.ping(0, "10.244.0.1"), "and its router");

    // A port without options gets no answer: its DHCP goes where it was sent
    // (no server here), and its client gives up.
    let (ok, _, _) = udhcpc(1);
    assert!(!ok, "pod2 has no DHCP options but got a lease");
    let v = sb.syctl_json(&["vswitch", "pmd-stats"]);
    let d = &v[0]["dhcp"];
    assert!(d[0].as_u64() >= Some(1) && d[1].as_u64() >= Some(1), "{d}");

    // Options deleted: the port's DHCP stops with them.
    sb.syctl(&["--wait=hv", "dhcp-options-del", &id]);
    assert!(sb
        .syctl(&["lsp-get-dhcpv4-options", &lport(0)])
        .trim()
        .is_empty());
    let (ok, _, _) = udhcpc(0);
    assert!(!ok, "a lease without options");
}

#[test]
fn a_dhcp_sandbox_gives_every_pod_its_address_by_dhcp() {
    let name = "a_dhcp_sandbox_gives_every_pod_its_address_by_dhcp";
    if !can_run_dhcp(name) {
        return;
    }
    // Two subnets: sandbox up itself checks that the pods reach each other.
    let sb = Sandbox::up_with(74, 2, &["--dhcp", "--subnets", "2"]);
    for i in 0..2 {
        let addr = sb
            .exec(i, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .1;
        assert!(
            addr.contains(&format!("{}/24", sb.ip(i))),
            "pod{}: {addr}",
            i + 1
        );
        let route = sb.exec(i, &["ip", "route", "show", "default"]).1;
        assert!(route.contains("via 10.244."), "pod{}: {route}", i + 1);
    }
    assert!(sb.ping(0, &sb.ip(1)), "across the router");
    let v = sb.syctl_json(&["vswitch", "pmd-stats"]);
    assert!(
        v[0]["dhcp"][1].as_u64() >= Some(2),
        "two ACKs: {}",
        v[0]["dhcp"]
    );
    let list = sb.syctl(&["dhcp-options-list"]);
    assert!(
        list.contains("sandbox-ls0") && list.contains("sandbox-ls1"),
        "{list}"
    );
}
