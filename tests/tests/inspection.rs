//! Inspection: logical traces checked by stage names and verdicts, logical and
//! datapath traces agreeing on live pods, Prometheus metrics that parse and move,
//! and trace expression errors that point at the right column.

use std::time::Duration;
use switchyard_northd::compile::compile;
use switchyard_northd::server::sb::Sb;
use switchyard_tests::memory::sandbox_nb;
use switchyard_tests::metrics::{scrape, value};
use switchyard_tests::sandbox::{can_run, wait_until, Sandbox};
use switchyard_vswitch::inspect::trace::{logical, TraceReport};

fn sb3() -> switchyard_southbound::pb::SbSnapshot {
    let mut sb = Sb::default();
    sb.set_compiled(compile(&sandbox_nb(3)), 1);
    sb.snapshot()
}

fn stages(r: &TraceReport) -> Vec<String> {
    r.steps
        .iter()
        .map(|s| format!("{}:{}", s.pipeline, s.stage))
        .collect()
}

#[test]
fn logical_trace_names_stages_and_verdicts() {
    let sb = sb3();
    let r = logical(
        &sb,
        r#"inport == "ls0-pod1" && ip4.dst == 10.244.0.12 && tcp.dst == 80"#,
    )
    .unwrap();
    assert_eq!(
        stages(&r),
        [
            "ingress:ls_in_check_port_sec",
            "ingress:ls_in_acl",
            "ingress:ls_in_arp_rsp",
            "ingress:ls_in_dhcp",
            "ingress:ls_in_dns_lookup",
            "ingress:ls_in_l2_lkup",
            "egress:ls_out_acl",
            "egress:ls_out_apply_port_sec"
        ]
    );
    assert_eq!(
        (r.verdict.as_str(), r.outputs[0].port.as_str()),
        ("output", "ls0-pod2")
    );
    // Every step names the northd builder of its flow.
    assert!(r.steps.iter().all(|s| s.source.as_deref().is_some_and(|x| {
        ["mod.rs:", "port_sec.rs:", "dhcp.rs:", "dns.rs:"]
            .iter()
            .any(|f| x.starts_with(&format!("northd/src/compile/{f}")))
    })));

    let r = logical(
        &sb,
        r#"inport == "ls0-pod1" && eth.src == 0a:00:00:00:00:99 && ip4.dst == 10.244.0.12"#,
    )
    .unwrap();
    assert_eq!(stages(&r), ["ingress:ls_in_check_port_sec"]);
    assert_eq!(
        (r.verdict.as_str(), r.drop_reason.as_deref()),
        ("drop", Some("port_security_mac"))
    );

    let r = logical(
        &sb,
        r#"inport == "ls0-pod1" && ip4.src == 10.244.0.99 && ip4.dst == 10.244.0.12"#,
    )
    .unwrap();
    assert_eq!(r.drop_reason.as_deref(), Some("port_security_ip"));

    let r = logical(&sb, r#"inport == "ls0-pod2" && arp.tpa == 10.244.0.13"#).unwrap();
    assert_eq!(r.verdict, "arp_reply");
    assert_eq!(stages(&r).last().unwrap(), "ingress:ls_in_arp_rsp");

    let r = logical(
        &sb,
        r#"inport == "ls0-pod3" && eth.dst == ff:ff:ff:ff:ff:ff && udp"#,
    )
    .unwrap();
    let mut outs: Vec<&str> = r.outputs.iter().map(|o| o.port.as_str()).collect();
    outs.sort();
    assert_eq!(outs, ["ls0-pod1", "ls0-pod2"]);
}

#[test]
fn logical_and_datapath_traces_agree() {
    if !can_run("logical_and_datapath_traces_agree") {
        return;
    }
    let sb = Sandbox::up(9, 3);
    let flows = [
        r#"inport == "ls0-pod1" && ip4.dst == 10.244.0.12 && tcp.dst == 80"#,
        r#"inport == "ls0-pod2" && eth.dst == ff:ff:ff:ff:ff:ff && udp"#,
        r#"inport == "ls0-pod3" && arp.tpa == 10.244.0.11"#,
        r#"inport == "ls0-pod1" && eth.src == 0a:00:00:00:00:99 && ip4.dst == 10.244.0.12"#,
        r#"inport == "ls0-pod2" && ip4.src == 10.244.0.99 && ip4.dst == 10.244.0.13 && udp"#,
        r#"inport == "ls0-pod1" && eth.dst == 0a:00:00:00:00:77 && ip4.dst == 10.244.0.12"#,
    ];
    for f in flows {
        let l = sb.syctl_json(&["trace", f]);
        let d = sb.syctl_json(&["vswitch", "trace", f]);
        for k in [
            "datapath",
            "inport",
            "packet",
            "verdict",
            "drop_reason",
            "outputs",
            "steps",
        ] {
            assert_eq!(l[k], d[k], "{f}: logical and datapath disagree on {k}");
        }
        assert!(
            d["cache"]
                .as_str()
                .is_some_and(|c| c.contains("exact-match cache")),
            "{d}"
        );
    }
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    if !can_run("metrics_parse_and_move_with_traffic") {
        return;
    }
    let sb = Sandbox::up(10, 2);
    let vs = sb.state["vswitchd_metrics"].as_str().unwrap().to_string();
    let nd = sb.state["northd_metrics"].as_str().unwrap().to_string();
    let lport = ("lport", "ls0-pod1");
    let before = scrape(&vs);
    let rx0 = value(&before, "switchyard_port_rx_packets_total", Some(lport));
    let pk0 = value(&before, "switchyard_pmd_packets_total", None);
    assert_eq!(
        value(&before, "switchyard_vswitchd_sb_connected", None),
        1.0
    );
    for _ in 0..5 {
        assert!(sb.ping(0, &sb.ip(1)));
    }
    assert!(wait_until(Duration::from_secs(5), || {
        let after = scrape(&vs);
        value(&after, "switchyard_port_rx_packets_total", Some(lport)) >= rx0 + 5.0
            && value(&after, "switchyard_pmd_packets_total", None) >= pk0 + 10.0
    }));
    // The same counters through the CLI.
    let cli = sb.syctl_json(&["vswitch", "port-list"]);
    let rx_cli = cli
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["lport"] == "ls0-pod1")
        .unwrap()["rx_packets"]
        .as_f64()
        .unwrap();
    assert!(rx_cli >= rx0 + 5.0);

    let n = scrape(&nd);
    let v0 = value(&n, "switchyard_northd_nb_version", None);
    assert_eq!(value(&n, "switchyard_northd_chassis", None), 1.0);
    sb.syctl(&["ls-add", "metrics-test"]);
    let n = scrape(&nd);
    assert_eq!(value(&n, "switchyard_northd_nb_version", None), v0 + 1.0);
    assert!(value(&n, "switchyard_northd_compiles_total", None) >= 1.0);
    let chassis = sb.state["chassis"].as_str().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        value(
            &scrape(&nd),
            "switchyard_northd_chassis_sb_lag_versions",
            Some(("chassis", chassis)),
        ) == 0.0
    }));
}

#[test]
fn malformed_trace_expressions_point_at_the_error() {
    if !can_run("malformed_trace_expressions_point_at_the_error") {
        return;
    }
    let sb = Sandbox::up(11, 1);
    let expr = r#"inport == "ls0-pod1" && ip4.dts == 10.244.0.12"#;
    for cmd in [vec!["trace", expr], vec!["vswitch", "trace", expr]] {
        let err = sb.syctl_err(&cmd);
        assert!(err.contains("unknown field \"ip4.dts\""), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        let caret = lines
            .iter()
            .position(|l| l.trim() == "^")
            .expect("a caret line");
        let col = lines[caret].find('^').unwrap();
        let echoed = lines[caret - 1];
        assert_eq!(&echoed[col..col + 7], "ip4.dts", "{err}");
    }
    let svg = sb.syctl(&["show", "--format", "svg"]);
    // Graphviz writes "-" as &#45; in SVG text.
    assert!(
        svg.contains("<svg") && svg.contains("ls0&#45;pod1"),
        "{svg}"
    );
}

/// Real pods over AF_XDP: datagrams from fifty source ports of one pod to
/// another cost one slow-path walk, the rest are megaflow hits on one entry
/// that ignores the source port; a port added to the switch keeps it.
#[test]
fn one_megaflow_serves_every_source_port_and_survives_an_unrelated_change() {
    if !can_run("one_megaflow_serves_every_source_port_and_survives_an_unrelated_change") {
        return;
    }
    let sb = Sandbox::up(76, 2);
    let mac = |i: usize| {
        switchyard_southbound::parse_mac(sb.pod(i)["mac"].as_str().unwrap()).expect("mac")
    };
    let ip = |i: usize| sb.ip(i).parse::<std::net::Ipv4Addr>().unwrap();
    let frames = |ports: std::ops::Range<u16>| -> Vec<Vec<u8>> {
        ports
            .map(|sport| {
                switchyard_tests::frames::udp_ports(
                    mac(0),
                    mac(1),
                    ip(0),
                    ip(1),
                    sport,
                    7777,
                    b"megaflow",
                )
            })
            .collect()
    };
    let entry = |sb: &Sandbox| -> Option<(u64, String)> {
        let flows = sb.syctl_json(&["vswitch", "dp-flows"]);
        flows.as_array().unwrap().iter().find_map(|f| {
            let key = f["key"].as_str().unwrap();
            (f["cache"] == "megaflow"
                && key.contains(&format!("ip4.dst={}", sb.ip(1)))
                && key.contains("ip.proto=17"))
            .then(|| (f["hits"].as_u64().unwrap(), key.to_string()))
        })
    };
    sb.send_frames(0, &frames(20000..20050));
    assert!(
        wait_until(Duration::from_secs(5), || entry(&sb)
            .is_some_and(|(h, _)| h >= 49)),
        "no megaflow with 49 hits: {:?}\n{}",
        entry(&sb),
        sb.log_tails()
    );
    let (_, key) = entry(&sb).unwrap();
    assert!(
        !key.contains("l4.src"),
        "the source port is wildcarded: {key}"
    );

    let generation =
        |sb: &Sandbox| sb.syctl_json(&["vswitch", "status"])["table_generation"].as_u64();
    let g0 = generation(&sb);
    sb.syctl(&["lsp-add", "ls0", "extra1", "0a:58:0a:f4:00:63 10.244.0.99"]);
    assert!(wait_until(Duration::from_secs(5), || generation(&sb) != g0));
    // The agent publishes the tables before the PMD adopts (and revalidates).
    let kept = |sb: &Sandbox| sb.syctl_json(&["vswitch", "pmd-stats"])[0]["megaflow_kept"].as_u64();
    assert!(
        wait_until(Duration::from_secs(5), || kept(&sb).is_some_and(|k| k >= 1)),
        "{}",
        sb.syctl_json(&["vswitch", "pmd-stats"])[0]
    );
    sb.send_frames(0, &frames(30000..30010));
    assert!(
        wait_until(Duration::from_secs(5), || entry(&sb)
            .is_some_and(|(h, _)| h >= 59)),
        "the kept megaflow serves new source ports: {:?}",
        entry(&sb)
    );
}
