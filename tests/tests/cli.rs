//! syctl against a real switchyard-northd (no root needed): `--` chains run as
//! one transaction, all or nothing, with each command's own --may-exist /
//! --if-exists; reads do not chain; lsp-add's third argument is addresses only
//! when it cannot be ovn-nbctl's PARENT.

use std::process::{Command, Stdio};
use std::time::Duration;
use switchyard_tests::northd::{must, Northd, TempDir};
use switchyard_tests::sandbox::bin_dir;

#[test]
fn chained_commands_are_one_transaction_all_or_nothing() {
    let n = Northd::start(17960);
    // ovn-nbctl's own example shape: a router port wired in one go.
    let out = n.ok(
        "lr-add lr0 -- lrp-add lr0 lr0-ls0 0a:00:00:00:00:01 10.0.0.1/24 -- ls-add ls0 \
         -- lsp-add ls0 x1 -- lsp-set-type x1 router --router-port lr0-ls0 -- lsp-set-addresses x1 router",
    );
    assert!(out.starts_with("ok (NB version"), "{out}");
    let ports: serde_json::Value =
        serde_json::from_str(&n.ok("lsp-list ls0 --json")).expect("json");
    let x1 = &ports.as_array().expect("ports")[0];
    assert_eq!(x1["name"], "x1");
    assert_eq!(x1["type"], "router", "{x1}");
    assert_eq!(x1["addresses"][0], "router", "{x1}");

    // One command fails: nothing of the chain is written.
    let e = n.fails("ls-add ls9 -- lsp-add ls9 p9 -- lsp-add nosuch p10");
    assert!(e.contains("nosuch"), "{e}");
    assert!(!n.switches().contains(&"ls9".to_string()));

    // Each command keeps its own flags: ls0 exists.
    n.fails("ls-add ls0 -- ls-add ls7");
    assert!(!n.switches().contains(&"ls7".to_string()));
    n.ok("--may-exist ls-add ls0 -- ls-add ls8");
    n.ok("ls-add ls6 -- ls-del ls5 --if-exists");
    let sw = n.switches();
    assert!(
        sw.contains(&"ls8".to_string()) && sw.contains(&"ls6".to_string()),
        "{sw:?}"
    );

    // Reads do not chain, and refusing them writes nothing.
    let e = n.fails("ls-add ls4 -- ls-list");
    assert!(
        e.contains("\"ls-list\"") && e.contains("only NB writes chain"),
        "{e}"
    );
    assert!(!n.switches().contains(&"ls4".to_string()));
    let e = n.fails("ls-add ls4 --");
    assert!(e.contains("empty command"), "{e}");

    // --wait on a chain (written before any command): no chassis is
    // registered, so every chassis runs it at once; a bad level is refused
    // before anything is written.
    let out = n.ok("--wait=hv ls-add ls3 -- ls-add ls2");
    assert!(out.contains("running on 0 chassis"), "{out}");
    let out = n.ok("ls-add ls1 --wait sb");
    assert!(out.contains("in SB version"), "{out}");
    let e = n.fails("--wait=everywhere ls-add ls4");
    assert!(e.contains("none, sb, hv"), "{e}");
    assert!(!n.switches().contains(&"ls4".to_string()));
}

#[test]
fn lsp_add_refuses_a_parent_name_where_addresses_go() {
    let n = Northd::start(17964);
    n.ok("ls-add ls0");
    let e = n.fails("lsp-add ls0 x2 parent1 7");
    assert!(
        e.contains("PARENT TAG") && e.contains("lsp-set-addresses"),
        "{e}"
    );
    let (ok, _, err) = n.syctl(&["lsp-add", "ls0", "x3", "0a:00:00:00:00:03 10.0.0.3"]);
    assert!(ok, "{err}");
    let ports = n.ok("lsp-list ls0");
    assert!(ports.contains("x3") && !ports.contains("x2"), "{ports}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let run = |args: &[&str]| {
        let out = Command::new(bin_dir().join("syctl"))
            .args(args)
            .output()
            .expect("run syctl");
        assert!(
            out.status.success(),
            "syctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for shell in ["bash", "zsh", "fish"] {
        let c = run(&["completions", shell]);
        assert!(
            c.contains("lsp-add") && c.contains("lr-nat-add"),
            "{shell}: no commands in {c:.200}"
        );
    }
    let dir = TempDir(std::env::temp_dir().join(format!("switchyard-man-{}", std::process::id())));
    run(&["man", "--dir", &dir.0.display().to_string()]);
    let page = std::fs::read_to_string(dir.0.join("syctl.1")).expect("syctl.1");
    assert!(
        page.contains(".TH syctl") && page.contains("lsp\\-add"),
        "{page:.300}"
    );
    let sub = std::fs::read_to_string(dir.0.join("syctl-lsp-add.1")).expect("syctl-lsp-add.1");
    assert!(
        sub.contains("PARENT"),
        "the page carries the command's help: {sub:.300}"
    );
    // The daemons' pages (section 8), from their own flag definitions.
    for (daemon, flag) in [
        ("switchyard-northd", "nb\\-etcd"),
        ("switchyard-vswitchd", "encap\\-ip"),
    ] {
        let out = Command::new(bin_dir().join(daemon))
            .arg("--man-page")
            .output()
            .expect("run the daemon");
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && page.contains(&format!(".TH {daemon} 8"))
                && page.contains(flag),
            "{daemon}: {page:.300}"
        );
    }
}

#[test]
fn trace_levels_ct_flags_and_lb_dst_as_ovn_trace_has_them() {
    let n = Northd::start(17968);
    let (ok, _, err) = n.syctl(&[
        "ls-add",
        "ls0",
        "--",
        "lsp-add",
        "ls0",
        "p1",
        "0a:00:00:00:00:01 10.0.0.1",
        "--",
        "lsp-add",
        "ls0",
        "p2",
        "0a:00:00:00:00:02 10.0.0.2",
    ]);
    assert!(ok, "{err}");
    let flow =
        r#"inport == "p1" && eth.dst == 0a:00:00:00:00:02 && ip4.dst == 10.0.0.2 && udp.dst == 53"#;
    let (ok, out, err) = n.syctl(&["trace", "--minimal", flow]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "output to \"p2\"",
        "minimal: where it goes, nothing else"
    );
    let (_, detailed, _) = n.syctl(&["trace", "--detailed", flow]);
    assert!(
        detailed.contains("ls_in_l2_lkup") && detailed.contains("verdict: output"),
        "{detailed}"
    );
    let (ok, _, err) = n.syctl(&["trace", "--summary", "--minimal", flow]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let (ok, _, err) = n.syctl(&["trace", "--ct", "trk,bogus", flow]);
    assert!(!ok && err.contains("bogus"), "{err}");
    let (ok, _, err) = n.syctl(&["trace", "--lb-dst", "10.0.0.2:53", flow]);
    assert!(!ok && err.contains("meets no load balancer VIP"), "{err}");
    let (ok, _, err) = n.syctl(&["trace", "--lb-dst", "10.0.0.300", flow]);
    assert!(!ok && err.contains("not an IPv4 address"), "{err}");
}

/// `syctl ARGS` (explicit argument list) must succeed; its stdout.

#[test]
fn database_commands_round_trip_every_nb_table() {
    let n = Northd::start(17972);
    must(
        &n,
        &[
            "lr-add",
            "lr0",
            "--",
            "lrp-add",
            "lr0",
            "lr0-ls0",
            "0a:00:00:00:00:01",
            "10.0.0.1/24",
            "--",
            "lrp-add",
            "lr0",
            "lr0-ext",
            "0a:00:00:00:00:02",
            "172.16.0.1/24",
            "--",
            "ls-add",
            "ls0",
            "--subnet",
            "10.0.0.0/24",
            "--",
            "lsp-add",
            "ls0",
            "p1",
            "0a:00:00:00:00:0b 10.0.0.11",
            "--",
            "lr-route-add",
            "lr0",
            "10.9.0.0/16",
            "10.0.0.254",
            "--",
            "lr-nat-add",
            "lr0",
            "snat",
            "172.16.0.100",
            "10.0.0.0/24",
            "--",
            "lb-add",
            "web",
            "10.96.0.10:80",
            "10.0.0.11:8080",
            "--",
            "acl-add",
            "ls0",
            "to-lport",
            "100",
            "ip4.src == 10.0.0.11 && tcp.dst == {80, 443}",
            "allow-related",
        ],
    );
    // Every table lists, as JSON, with its records named by _id.
    let ids = |t: &str| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&must(&n, &["list", t, "--format", "json"])).expect("json");
        v.as_array()
            .expect("rows")
            .iter()
            .map(|r| r["_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids("Logical_Switch"), ["ls0"]);
    assert_eq!(ids("Logical_Switch_Port"), ["p1"]);
    assert_eq!(ids("Logical_Router"), ["lr0"]);
    assert_eq!(ids("Logical_Router_Port"), ["lr0-ext", "lr0-ls0"]);
    assert_eq!(
        ids("Logical_Router_Static_Route"),
        ["lr0,10.9.0.0/16,10.0.0.254"]
    );
    assert_eq!(ids("NAT"), ["lr0,snat,172.16.0.100"]);
    assert_eq!(ids("Load_Balancer"), ["web"]);
    let acl = "ls0,to-lport,100,ip4.src == 10.0.0.11 && tcp.dst == {80, 443}";
    assert_eq!(ids("ACL"), [acl]);

    // get: a column, a map key; find: by a set element and by a map key.
    assert_eq!(
        must(&n, &["get", "Logical_Switch", "ls0", "subnet"]).trim(),
        "\"10.0.0.0/24\""
    );
    assert_eq!(
        must(&n, &["get", "Load_Balancer", "web", "vips:10.96.0.10:80"]).trim(),
        "\"10.0.0.11:8080\""
    );
    let found = must(
        &n,
        &[
            "find",
            "Logical_Switch_Port",
            "addresses=0a:00:00:00:00:0b 10.0.0.11",
            "--columns",
            "name,enabled",
            "--format",
            "csv",
        ],
    );
    assert_eq!(found.trim(), "name,enabled\np1,true");
    let found = must(
        &n,
        &[
            "find",
            "Load_Balancer",
            "vips:10.96.0.10:80=10.0.0.11:8080",
            "--columns",
            "_id",
        ],
    );
    assert_eq!(found.trim(), "_id : web");
    assert!(must(&n, &["find", "ACL", "priority=7"]).trim().is_empty());
    let table = must(
        &n,
        &[
            "list",
            "NAT",
            "--columns",
            "type,external_ip",
            "--format",
            "table",
        ],
    );
    assert!(
        table.contains("TYPE") && table.contains("172.16.0.100"),
        "{table}"
    );

    // set on a port, chained; a column it cannot set is refused, nothing written.
    must(
        &n,
        &[
            "set",
            "Logical_Switch_Port",
            "p1",
            "enabled=false",
            "port_security=[\"0a:00:00:00:00:0b 10.0.0.11\"]",
        ],
    );
    assert_eq!(
        must(&n, &["get", "Logical_Switch_Port", "p1", "enabled"]).trim(),
        "false"
    );
    assert_eq!(
        must(&n, &["get", "Logical_Switch_Port", "p1", "port_security"]).trim(),
        "[\"0a:00:00:00:00:0b 10.0.0.11\"]"
    );
    let (ok, _, e) = n.syctl(&[
        "set",
        "Logical_Switch_Port",
        "p1",
        "enabled=true",
        "--",
        "set",
        "Logical_Switch_Port",
        "p1",
        "tunnel_key=9",
    ]);
    assert!(!ok && e.contains("tunnel_key cannot be changed"), "{e}");
    assert_eq!(
        must(&n, &["get", "Logical_Switch_Port", "p1", "enabled"]).trim(),
        "false"
    );

    // A switch's other_config: set merges keys, remove takes them out; an
    // unknown key or a bad value is refused and nothing is written.
    must(
        &n,
        &[
            "set",
            "Logical_Switch",
            "ls0",
            "other_config:ct-zone-limit=500",
        ],
    );
    let zl = || must(&n, &["get", "Logical_Switch", "ls0", "other_config"]);
    assert_eq!(zl().trim(), r#"{"ct-zone-limit":"500"}"#);
    for (bad, why) in [
        ("other_config:ct-zone-limt=5", "not one Switchyard knows"),
        ("other_config:ct-zone-limit=many", "not a number"),
        ("subnet=10.1.0.0/24", "outside switch"),
    ] {
        let (ok, _, e) = n.syctl(&["set", "Logical_Switch", "ls0", bad]);
        assert!(!ok && e.contains(why), "{bad}: {e}");
    }
    assert_eq!(zl().trim(), r#"{"ct-zone-limit":"500"}"#);
    must(
        &n,
        &[
            "remove",
            "Logical_Switch",
            "ls0",
            "other_config",
            "ct-zone-limit",
        ],
    );
    assert_eq!(zl().trim(), "{}");

    // Bad names say what exists.
    let (ok, _, e) = n.syctl(&["list", "Logical_Flow"]);
    assert!(!ok && e.contains("Logical_Switch_Port"), "{e}");
    let (ok, _, e) = n.syctl(&["get", "Logical_Switch", "ls0", "colour"]);
    assert!(!ok && e.contains("subnet"), "{e}");
    let (ok, _, e) = n.syctl(&["get", "Logical_Switch", "ls9", "name"]);
    assert!(!ok && e.contains("no Logical_Switch record"), "{e}");
    assert!(must(&n, &["get", "--if-exists", "Logical_Switch", "ls9", "name"]).is_empty());

    // destroy every table's record in one chain; then each table is empty.
    must(
        &n,
        &[
            "destroy",
            "ACL",
            acl,
            "--",
            "destroy",
            "NAT",
            "lr0,snat,172.16.0.100",
            "--",
            "destroy",
            "Logical_Router_Static_Route",
            "lr0,10.9.0.0/16,10.0.0.254",
            "--",
            "destroy",
            "Load_Balancer",
            "web",
            "--",
            "destroy",
            "Logical_Switch_Port",
            "p1",
            "--",
            "destroy",
            "Logical_Router_Port",
            "lr0-ls0",
            "lr0-ext",
            "--",
            "destroy",
            "Logical_Router",
            "lr0",
            "--",
            "destroy",
            "Logical_Switch",
            "ls0",
        ],
    );
    for t in [
        "Logical_Switch",
        "Logical_Switch_Port",
        "Logical_Router",
        "Logical_Router_Port",
        "Logical_Router_Static_Route",
        "NAT",
        "Load_Balancer",
        "ACL",
    ] {
        assert!(ids(t).is_empty(), "{t} still has {:?}", ids(t));
    }
    must(&n, &["destroy", "--if-exists", "Logical_Switch", "ls0"]);
    let (ok, _, e) = n.syctl(&["destroy", "NAT", "lr0"]);
    assert!(!ok && e.contains("--columns _id"), "{e}");
}

#[test]
fn syctl_rides_through_a_northd_that_is_not_up_yet_and_says_when_it_gave_up() {
    let nb = "http://127.0.0.1:17976";
    let syctl = |args: &[&str]| {
        Command::new(bin_dir().join("syctl"))
            .args(args)
            .env("SYCTL_NB", nb)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run syctl")
    };
    // Nothing listens: --connect-timeout 0 tries once and says so.
    let out = syctl(&["--connect-timeout", "0", "ls-list"])
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot reach switchyard-northd at http://127.0.0.1:17976"),
        "{err}"
    );
    let out = syctl(&["--connect-timeout", "0.3", "ls-list"])
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("within 0.3 s (--connect-timeout)"), "{err}");
    let out = syctl(&["--connect-timeout", "-1", "ls-list"])
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--connect-timeout -1"), "{err}");
    // A write issued before northd binds (a restart, a standby taking over)
    // lands once it does, by default.
    let early = syctl(&["ls-add", "early"]);
    // The stimulus, not a synchronisation: northd starts half a second late.
    std::thread::sleep(Duration::from_millis(500));
    let n = Northd::start(17976);
    let out = early.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(must(&n, &["ls-list"]).contains("early"));
}

#[test]
fn twenty_concurrent_dynamic_ports_get_twenty_addresses_that_survive_a_restart() {
    let mut n = Northd::start(17980);
    must(&n, &["ls-add", "ls0", "--subnet", "10.7.0.0/24"]);
    must(
        &n,
        &[
            "set",
            "Logical_Switch",
            "ls0",
            "other_config:exclude_ips=10.7.0.2..10.7.0.4",
        ],
    );
    let children: Vec<_> = (0..20)
        .map(|i| {
            Command::new(bin_dir().join("syctl"))
                .args(["lsp-add", "ls0", &format!("d{i}"), "dynamic"])
                .env("SYCTL_NB", &n.nb)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run syctl")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let assigned = |n: &Northd| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&must(n, &["lsp-list", "--json"])).expect("json");
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                p["dynamic_addresses"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let before = assigned(&n);
    let mut ips: Vec<&str> = before.iter().filter_map(|a| a.split(' ').nth(1)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{before:?}");
    for ip in &ips {
        let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
        assert!(
            (5..=24).contains(&last),
            "{ip}: gateway or excluded handed out"
        );
    }
    n.restart();
    assert_eq!(assigned(&n), before, "a restart changes no assignment");
}

#[test]
fn a_port_s_external_ids_are_set_merged_and_removed_as_ovn_nbctl_does() {
    let n = Northd::start(17990);
    must(&n, &["ls-add", "ls0"]);
    must(&n, &["lsp-add", "ls0", "p1"]);
    must(
        &n,
        &[
            "set",
            "Logical_Switch_Port",
            "p1",
            "external_ids:k8s/pod=web",
            "external_ids:owner=me",
        ],
    );
    must(
        &n,
        &["set", "Logical_Switch_Port", "p1", "external_ids:owner=you"],
    );
    assert_eq!(
        must(&n, &["get", "Logical_Switch_Port", "p1", "external_ids"]).trim(),
        r#"{"k8s/pod":"web","owner":"you"}"#
    );
    must(
        &n,
        &[
            "remove",
            "Logical_Switch_Port",
            "p1",
            "external_ids",
            "owner",
        ],
    );
    assert_eq!(
        must(&n, &["get", "Logical_Switch_Port", "p1", "external_ids"]).trim(),
        r#"{"k8s/pod":"web"}"#
    );
    let (ok, _, err) = n.syctl(&["set", "Logical_Switch_Port", "p1", "external_ids:=x"]);
    assert!(
        !ok && err.contains("external_ids:KEY=VALUE with a KEY"),
        "{err}"
    );
    let (ok, _, err) = n.syctl(&["set", "Logical_Switch_Port", "nope", "external_ids:a=b"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[test]
fn a_closed_stdout_ends_syctl_quietly() {
    use std::io::Read;
    // More than a pipe holds, read a little, then the reader goes away.
    let mut child = Command::new(bin_dir().join("syctl"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syctl");
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.is_empty(),
        "a closed stdout is no error to report: {err}"
    );
    assert!(
        matches!(done.status.code(), Some(0 | 141)),
        "{:?}",
        done.status
    );
}

/// Cache sizes are checked before vswitchd allocates anything: a size past
/// the bound is refused with the range, not an allocation failure.
#[test]
fn vswitchd_refuses_a_cache_past_its_bound() {
    for (flag, value, range) in [
        ("--megaflow-entries", "99999999999", "0..=4194304"),
        ("--emc-entries", "9223372036854775809", "2..=1048576"),
        ("--emc-entries", "0", "2..=1048576"),
    ] {
        let out = Command::new(bin_dir().join("switchyard-vswitchd"))
            .args([flag, value])
            .output()
            .expect("vswitchd runs");
        assert!(!out.status.success(), "{flag} {value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(range), "{err}");
    }
}
