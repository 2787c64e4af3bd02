//! `syctl trace` follows what the packet becomes: the router's generated
//! answer through the datapaths it crosses, and every copy of a flood
//! (against a real switchyard-northd; no root needed).

use switchyard_tests::northd::{must, Northd};

fn json(n: &Northd, flow: &str) -> serde_json::Value {
    serde_json::from_str(&must(n, &["trace", "--json", flow])).expect("json")
}

#[test]
fn trace_follows_the_routers_answer_and_every_copy_of_a_flood() {
    let n = Northd::start(17998);
    for line in [
        "ls-add ls0 --subnet 10.0.0.0/24",
        "ls-add ls1 --subnet 10.1.0.0/24",
        "lr-add lr0",
        "lr-connect lr0 ls0 0a:00:00:00:00:01 10.0.0.1/24",
        "lr-connect lr0 ls1 0a:00:00:00:01:01 10.1.0.1/24",
    ] {
        n.ok(line);
    }
    must(&n, &["lsp-add", "ls0", "p1", "0a:00:00:00:00:0b 10.0.0.11"]);
    must(&n, &["lsp-add", "ls0", "p3", "0a:00:00:00:00:0c 10.0.0.12"]);
    must(&n, &["lsp-add", "ls1", "p2", "0a:00:00:00:01:0b 10.1.0.11"]);

    // A ping to the router: the echo reply is routed back to p1.
    let ping = r#"inport == "p1" && eth.dst == 0a:00:00:00:00:01 && ip4.dst == 10.0.0.1 && icmp4.type == 8"#;
    let r = json(&n, ping);
    assert_eq!(r["verdict"], "generate", "{r}");
    let g = &r["generated"];
    assert_eq!(g["verdict"], "output", "{g}");
    assert_eq!(g["outputs"][0]["port"], "p1", "{g}");
    assert!(
        g["packet"]
            .as_str()
            .unwrap()
            .contains("ip4.src=10.0.0.1 ip4.dst=10.0.0.11"),
        "{g}"
    );
    assert!(
        g["rewrite"]
            .as_str()
            .unwrap()
            .contains("eth.dst = 0a:00:00:00:00:0b"),
        "{g}"
    );

    // TTL 1 toward ls1: time exceeded, from the router, back to p1.
    let r = json(
        &n,
        r#"inport == "p1" && eth.dst == 0a:00:00:00:00:01 && ip4.dst == 10.1.0.11 && ip.ttl == 1 && udp.dst == 53"#,
    );
    let g = &r["generated"];
    assert!(g["packet"].as_str().unwrap().contains("ip.proto=1"), "{g}");
    assert!(
        g["packet"].as_str().unwrap().contains("l4.src=11"),
        "ICMP time exceeded: {g}"
    );
    assert_eq!(g["outputs"][0]["port"], "p1", "{g}");

    // TCP to the router's own address: a RST back to p1.
    let r = json(
        &n,
        r#"inport == "p1" && eth.dst == 0a:00:00:00:00:01 && ip4.dst == 10.0.0.1 && tcp.dst == 22"#,
    );
    let g = &r["generated"];
    assert!(g["packet"].as_str().unwrap().contains("ip.proto=6"), "{r}");
    assert_eq!(g["outputs"][0]["port"], "p1", "{g}");

    // The levels print the answer too.
    let (ok, out, err) = n.syctl(&["trace", "--summary", ping]);
    assert!(ok, "{err}");
    assert!(
        out.contains("answer: lr0 -> ls0: (the router) -> output to \"p1\""),
        "{out}"
    );
    let (_, out, _) = n.syctl(&["trace", ping]);
    assert!(out.contains("==== the router's answer"), "{out}");

    // A broadcast: every copy's egress is shown, the router's copy stops with
    // the reason, and the other pod gets one.
    let bcast = r#"inport == "p1" && eth.dst == ff:ff:ff:ff:ff:ff && ip4.dst == 255.255.255.255 && udp.dst == 67"#;
    let r = json(&n, bcast);
    let outs: Vec<&str> = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["port"].as_str().unwrap())
        .collect();
    assert_eq!(outs, ["p3"], "{r}");
    let steps = r["steps"].as_array().unwrap();
    let stop = steps
        .iter()
        .find(|s| s["stage"] == "flood")
        .expect("the router's copy is in the trace");
    assert_eq!(stop["outport"], "ls0-lr0", "{stop}");
    assert!(
        stop["note"]
            .as_str()
            .unwrap()
            .contains("only unicast enters router \"lr0\""),
        "{stop}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["pipeline"] == "egress" && s["outport"] == "p3"),
        "{r}"
    );
    let (_, out, _) = n.syctl(&["trace", bcast]);
    assert!(out.contains("this copy stops"), "{out}");
}

#[test]
fn trace_of_a_dhcp_discover_shows_what_the_ports_lease_offers() {
    let n = Northd::start(17956);
    n.ok("ls-add ls0 --subnet 10.0.0.0/24");
    must(&n, &["lsp-add", "ls0", "p1", "0a:00:00:00:00:0b 10.0.0.11"]);
    let id = n
        .ok("dhcp-options-create 10.0.0.0/24 server_id=10.0.0.1 server_mac=0a:00:00:00:00:01 lease_time=3600 router=10.0.0.1 dns_server={10.96.0.10} mtu=1400")
        .trim()
        .to_string();
    n.ok(&format!("lsp-set-dhcpv4-options p1 {id}"));
    let discover = r#"inport == "p1" && eth.dst == ff:ff:ff:ff:ff:ff && ip4.src == 0.0.0.0 && ip4.dst == 255.255.255.255 && udp.src == 68 && udp.dst == 67"#;
    let r = json(&n, discover);
    assert_eq!(r["verdict"], "dhcp", "{r}");
    let d = r["dhcp"].as_str().expect("the lease is described");
    for want in [
        "10.0.0.11/24 for 3600 s",
        "server 10.0.0.1 (0a:00:00:00:00:01)",
        "router 10.0.0.1",
        "dns 10.96.0.10",
        "mtu 1400",
    ] {
        assert!(d.contains(want), "{d} should say {want}");
    }
    let (_, out, _) = n.syctl(&["trace", "--minimal", discover]);
    assert!(out.contains("OFFER to a DISCOVER"), "{out}");
    // Without options the message is not the datapath's: no lease described.
    n.ok("lsp-set-dhcpv4-options p1");
    let r = json(&n, discover);
    assert!(r["dhcp"].is_null(), "{r}");
}
