//! Hostile input with real daemons, real pods and AF_XDP: a pod that spoofs
//! or sends IPv6 it does not own, frames to a pod that are not addressed to
//! it, a policy change against an open connection, a blind-ACK flood against
//! a small conntrack table, a stranger on the underlay, packets to the
//! router's own address and a ping flood at the gateway. Every case checks
//! the named counter and that legitimate traffic keeps flowing.

use std::process::{Command, Stdio};
use std::time::Duration;
use switchyard_tests::frames;
use switchyard_tests::sandbox::{can_run, run, wait_until, Sandbox};

fn ipv4(s: &str) -> smoltcp::wire::Ipv4Address {
    s.parse().expect("IPv4 address")
}

fn mac_of(s: &str) -> u64 {
    s.split(':')
        .fold(0, |a, b| a << 8 | u64::from_str_radix(b, 16).expect("hex"))
}

fn pod_mac(sb: &Sandbox, i: usize) -> u64 {
    mac_of(sb.pod(i)["mac"].as_str().expect("mac"))
}

#[test]
fn a_new_deny_cuts_an_open_connection_while_other_replies_keep_flowing() {
    if !can_run("a_new_deny_cuts_an_open_connection_while_other_replies_keep_flowing") {
        return;
    }
    let sb = Sandbox::up(51, 3);
    let ns: Vec<String> = (0..3).map(|i| sb.netns(i)).collect();
    let (ip1, ip2, ip3) = (sb.ip(0), sb.ip(1), sb.ip(2));
    let _b2 = sb.serve_in(&ns[1], "tcp", 8080, "b2");
    let _b3 = sb.serve_in(&ns[2], "tcp", 8080, "b3");
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
    assert!(sb.connect_until(&ns[2], &ip2, 8080, |a| a.starts_with("ERR")));

    let mut admitted = sb.hold_in(&ns[0], &ip2, 8080);
    assert!(admitted.line().starts_with("b2"), "pod1 -> pod2 is allowed");
    let mut own = sb.hold_in(&ns[1], &ip3, 8080);
    assert!(own.line().starts_with("b3"), "pod2's own connection");

    // The policy changes under the open connection: pod1 is denied.
    let deny = format!(r#"outport == "ls0-pod2" && ip4.src == {ip1}"#);
    sb.syctl(&["acl-add", "ls0", "to-lport", "200", &deny, "drop"]);
    assert!(
        wait_until(Duration::from_secs(15), || admitted
            .ask()
            .starts_with("ERR")),
        "the admitted connection was not cut"
    );
    assert!(sb.drops("acl_drop") > 0);
    // conntrack remembers the cut (ct_mark.blocked).
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    let cut = conns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let o = c["orig"].as_str().unwrap_or("");
            o.starts_with(&format!("{ip1}:")) && o.ends_with(&format!("{ip2}:8080"))
        })
        .unwrap_or_else(|| panic!("no entry for the cut connection: {conns}"));
    assert_eq!(cut["mark"].as_u64().unwrap_or(0) & 1, 1, "{cut}");
    // pod2's own connection and its replies are not affected.
    for _ in 0..3 {
        assert!(own.ask().starts_with("b3"));
    }
    assert!(sb.ping(1, &ip3), "pod2 still reaches pod3");
}

#[test]
fn blind_acks_to_a_vip_leave_real_clients_connections_working() {
    if !can_run("blind_acks_to_a_vip_leave_real_clients_connections_working") {
        return;
    }
    const VIP: &str = "10.96.0.10";
    let sb = Sandbox::up_with(52, 2, &["--subnets", "2", "--ct-capacity", "64"]);
    let ns = [sb.netns(0), sb.netns(1)];
    let _srv = sb.serve_in(&ns[1], "tcp", 8080, "b");
    sb.service_on_ls0("web", VIP, 80, 1, 8080);
    assert!(sb.connect_until(&ns[0], VIP, 80, |a| a.starts_with("b ")));
    let mut held = sb.hold_in(&ns[0], VIP, 80);
    assert!(held.line().starts_with("b "));

    // 3,000 ACKs for connections that never existed, from ever new ports.
    let gw_mac = mac_of(sb.state["switches"][0]["gateway_mac"].as_str().unwrap());
    let (m1, ip1) = (pod_mac(&sb, 0), ipv4(&sb.ip(0)));
    let flood: Vec<Vec<u8>> = (0..3000u16)
        .map(|k| {
            frames::tcp(
                m1,
                gw_mac,
                ip1,
                ipv4(VIP),
                20000 + k,
                80,
                smoltcp::wire::TcpControl::None,
                Some(12345),
            )
        })
        .collect();
    for chunk in flood.chunks(500) {
        sb.send_frames(0, chunk);
    }
    let stats = sb.syctl_json(&["vswitch", "ct-stats"]);
    assert!(
        stats["early_drops"].as_u64().unwrap_or(0) >= 1000,
        "the flood did not reach conntrack: {stats}"
    );
    assert!(stats["entries"].as_u64().unwrap() <= 64, "{stats}");
    // The real client's connection and new ones work.
    for _ in 0..3 {
        assert!(held.ask().starts_with("b "));
    }
    let lines = sb.svc_in(&ns[0], "connect", VIP, 80, 5);
    assert!(lines.iter().all(|l| l.starts_with("b ")), "{lines:?}");
    assert_eq!(sb.drops("ct_full"), 0);
}

#[test]
fn a_stranger_on_the_underlay_cannot_tunnel_into_a_pod() {
    if !can_run("a_stranger_on_the_underlay_cannot_tunnel_into_a_pod") {
        return;
    }
    let sb = Sandbox::up_with(53, 2, &["--chassis", "2", "--pods-per-chassis", "1"]);
    let chassis1 = sb.state["nodes"][0]["name"].as_str().unwrap().to_string();
    let here = (0..2)
        .find(|&i| sb.pod(i)["chassis"] == chassis1.as_str())
        .expect("a pod on chassis 1");
    let there = 1 - here;
    assert!(sb.ping(there, &sb.ip(here)), "the overlay works");

    // What chassis 2 would send to pod `here`, sent by the root namespace:
    // an underlay host that is no chassis.
    let show = sb.syctl_json(&["show"]);
    let sw = &show["switches"][0];
    let key = |i: usize| {
        let lport = sb.pod(i)["lport"].as_str().unwrap();
        sw["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == lport)
            .and_then(|p| p["tunnel_key"].as_u64())
            .expect("port key") as u16
    };
    let inner = frames::udp(
        pod_mac(&sb, there),
        pod_mac(&sb, here),
        ipv4(&sb.ip(there)),
        ipv4(&sb.ip(here)),
        9,
        b"HOSTILE tunnel",
    );
    let bridge = format!("{}-ul", sb.prefix);
    let encap_ip = ipv4(sb.state["nodes"][0]["encap_ip"].as_str().unwrap());
    let ch1_ns = sb.state["nodes"][0]["netns"].as_str().unwrap().to_string();
    let read_mac = |args: &[&str]| mac_of(run(args[0], &args[1..]).1.trim());
    let ul_mac = read_mac(&[
        "ip",
        "netns",
        "exec",
        &ch1_ns,
        "cat",
        "/sys/class/net/ul0/address",
    ]);
    let br_mac = read_mac(&["cat", &format!("/sys/class/net/{bridge}/address")]);
    let stranger_ip = {
        let net = encap_ip.octets();
        smoltcp::wire::Ipv4Address::new(net[0], net[1], net[2], 1)
    };
    use switchyard_geneve::tunnel::{emit, source_port, Metadata, Outer, ENCAP_LEN};
    let geneve = |src: smoltcp::wire::Ipv4Address, dst: smoltcp::wire::Ipv4Address| {
        let mut outer = [0u8; ENCAP_LEN];
        emit(
            &mut outer,
            &Outer {
                src_mac: br_mac,
                dst_mac: ul_mac,
                src_ip: u32::from(src),
                dst_ip: u32::from(dst),
            },
            &Metadata {
                datapath: sw["tunnel_key"].as_u64().unwrap() as u32,
                ingress: key(there),
                egress: key(here),
            },
            source_port(1),
            inner.len(),
        );
        [&outer[..], &inner[..]].concat()
    };
    // A stranger to our encap IP, and chassis 2's address to an IP that is
    // not ours (both reach ul0: the bridge delivers by MAC).
    let chassis2_ip = ipv4(sb.state["nodes"][1]["encap_ip"].as_str().unwrap());
    let not_ours = {
        let net = encap_ip.octets();
        smoltcp::wire::Ipv4Address::new(net[0], net[1], net[2], 250)
    };
    let hostile = [geneve(stranger_ip, encap_ip), geneve(chassis2_ip, not_ours)];
    let sniff = sb.sniff(here, "HOSTILE", "MARKER");
    let counters = || {
        [
            "xdp_tunnel_unknown_source",
            "xdp_tunnel_wrong_destination",
            "tunnel_unknown_source",
            "tunnel_wrong_destination",
        ]
        .map(|r| sb.drops(r))
    };
    let before = counters();
    sb.send_frames_root(&bridge, &hostile);
    // The real chassis 2 then delivers a frame that ends the capture.
    sb.send_frames(
        there,
        &[frames::udp(
            pod_mac(&sb, there),
            pod_mac(&sb, here),
            ipv4(&sb.ip(there)),
            ipv4(&sb.ip(here)),
            9,
            b"MARKER",
        )],
    );
    let lines = sniff.finish();
    assert_eq!(lines.last().map(String::as_str), Some("DONE"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("GOT")), "{lines:?}");
    // Both are dropped by the underlay's XDP program, before the PMD.
    let want = [before[0] + 1, before[1] + 1, before[2], before[3]];
    assert!(
        wait_until(Duration::from_secs(5), || counters() == want),
        "the hostile frames were not counted at XDP: {:?} -> {:?}",
        before,
        counters()
    );
}

#[test]
fn the_router_answers_its_own_address_and_a_ping_flood_leaves_forwarding_working() {
    if !can_run("the_router_answers_its_own_address_and_a_ping_flood_leaves_forwarding_working") {
        return;
    }
    let sb = Sandbox::up_with(54, 3, &["--subnets", "2"]);
    let ns = sb.netns(0);
    let gw = sb.pod(0)["gateway"].as_str().unwrap().to_string();
    // Nothing listens on the router: TCP is reset, UDP is unreachable.
    assert_eq!(
        sb.svc_in(&ns, "connect", &gw, 22, 1)[0],
        "ERR ConnectionRefusedError"
    );
    assert_eq!(
        sb.svc_in(&ns, "udp", &gw, 53, 1)[0],
        "ERR ConnectionRefusedError"
    );
    assert!(sb.drops("router_tcp_reset") >= 1);
    assert!(sb.drops("router_port_unreachable") >= 1);

    // A ping flood at the gateway while two other pods run TCP.
    let mut flood = Command::new("ip")
        .args([
            "netns", "exec", &ns, "ping", "-f", "-l", "64", "-w", "4", "-q", &gw,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping -f");
    let bps = sb.iperf3_bps(1, 2, false);
    let _ = flood.wait();
    assert!(bps > 0.0, "no TCP throughput during the flood");
    assert!(
        sb.drops("icmp_rate_limited") > 0,
        "the flood was answered without limit"
    );
    assert!(sb.ping(0, &gw), "the gateway still answers a single ping");
}

#[test]
fn fragmented_datagrams_cross_a_vip_and_snat_whole() {
    if !can_run("fragmented_datagrams_cross_a_vip_and_snat_whole") {
        return;
    }
    const VIP: &str = "10.96.0.10";
    let sb = Sandbox::up_with(55, 2, &["--subnets", "2", "--external"]);
    let (pod1, pod2, ext) = (sb.netns(0), sb.netns(1), sb.ext_netns());
    let _dns = sb.serve_in(&pod2, "udp", 5353, "b");
    let _far = sb.serve_in(&ext, "udp", 7000, "ext");
    sb.syctl(&[
        "lb-add",
        "dns",
        &format!("{VIP}:53"),
        &format!("{}:5353", sb.ip(1)),
        "udp",
    ]);
    sb.syctl(&["ls-lb-add", "ls0", "dns"]);
    sb.syctl(&["lr-nat-add", "lr0", "snat", "172.16.0.100", "10.244.0.0/16"]);
    let big = |ns: &str, ip: &str, port: u16| {
        let (_, out, err) = sb.exec_ns(
            ns,
            &[
                "python3",
                &switchyard_tests::sandbox::svc_helper(),
                "udpbig",
                ip,
                &port.to_string(),
                "3000",
            ],
        );
        format!("{}{err}", out.trim())
    };
    // 3,000 bytes at MTU 1500: three fragments each way. The backend gets
    // the whole datagram, and its answer (as large) comes from the VIP.
    let want = format!("FROM {VIP}:53 b {} ", sb.ip(0));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let a = big(&pod1, VIP, 53);
            a.starts_with(&want) && a.contains("got=3000") && a.ends_with("len=3000")
        }),
        "the fragmented datagram did not make it through the VIP: {}",
        big(&pod1, VIP, 53)
    );
    // Through SNAT: the outside sees the external IP and the whole datagram.
    let through_snat = || {
        let a = big(&pod1, "172.16.0.10", 7000);
        a.starts_with("FROM 172.16.0.10:7000 ext 172.16.0.100 ")
            && a.contains("got=3000")
            && a.ends_with("len=3000")
    };
    // (The first datagram toward a new neighbour may go while lr0 ARPs.)
    assert!(
        wait_until(Duration::from_secs(10), through_snat),
        "through SNAT: {}",
        big(&pod1, "172.16.0.10", 7000)
    );
    assert_eq!(sb.drops("frag_no_first"), 0);
}
