//! ovn-nbctl's column writes (`set`, `add`, `remove`, `clear`) and the DNS
//! and DHCP_Options tables, against a real switchyard-northd (no root needed).

use switchyard_tests::northd::{must, Northd};

fn get(n: &Northd, table: &str, record: &str, col: &str) -> String {
    must(n, &["get", table, record, col]).trim().to_string()
}

#[test]
fn every_nb_table_takes_set_add_remove_and_clear_validated_as_its_own_commands() {
    let n = Northd::start(17994);
    n.ok("ls-add ls0 --subnet 10.0.0.0/24");
    n.ok("lr-add lr0");
    n.ok("lr-connect lr0 ls0 0a:00:00:00:00:01 10.0.0.1/24");
    n.ok("lb-add web 10.96.0.10:80 10.0.0.11:8080");
    n.ok("dns-add ls0 web.example 10.0.0.11");
    let id = n
        .ok("dhcp-options-create 10.0.0.0/24 server_id=10.0.0.1 server_mac=0a:00:00:00:00:01 lease_time=3600")
        .trim()
        .to_string();

    // A column write in a chain sees the earlier commands' rows: one transaction.
    must(
        &n,
        &[
            "lsp-add",
            "ls0",
            "p1",
            "--",
            "set",
            "Logical_Switch_Port",
            "p1",
            "addresses=[\"0a:00:00:00:00:0b 10.0.0.11\"]",
            "external_ids:owner=\"team a\"",
        ],
    );
    assert_eq!(
        get(&n, "Logical_Switch_Port", "p1", "external_ids:owner"),
        "\"team a\""
    );

    // Every table: one write each, read back.
    must(&n, &["set", "Logical_Router", "lr0", "enabled=false"]);
    assert_eq!(get(&n, "Logical_Router", "lr0", "enabled"), "false");
    must(
        &n,
        &[
            "add",
            "Logical_Router_Port",
            "lr0-ls0",
            "networks",
            "192.168.5.1/24",
        ],
    );
    assert_eq!(
        get(&n, "Logical_Router_Port", "lr0-ls0", "networks"),
        r#"["10.0.0.1/24","192.168.5.1/24"]"#
    );
    n.ok("lr-route-add lr0 10.9.0.0/16 10.0.0.254");
    must(
        &n,
        &[
            "set",
            "Logical_Router_Static_Route",
            "lr0,10.9.0.0/16,10.0.0.254",
            "output_port=lr0-ls0",
        ],
    );
    assert_eq!(
        get(
            &n,
            "Logical_Router_Static_Route",
            "lr0,10.9.0.0/16,10.0.0.254",
            "output_port"
        ),
        "\"lr0-ls0\""
    );
    n.ok("lr-nat-add lr0 snat 192.168.5.100 10.0.0.0/24");
    must(
        &n,
        &[
            "set",
            "NAT",
            "lr0,snat,192.168.5.100",
            "logical_ip=10.0.0.0/25",
        ],
    );
    assert_eq!(
        get(&n, "NAT", "lr0,snat,192.168.5.100", "logical_ip"),
        "\"10.0.0.0/25\""
    );
    must(
        &n,
        &[
            "add",
            "Load_Balancer",
            "web",
            "vips",
            "10.96.0.11:80=10.0.0.11:8080",
        ],
    );
    must(&n, &["add", "Load_Balancer", "web", "switches", "ls0"]);
    assert_eq!(get(&n, "Load_Balancer", "web", "switches"), r#"["ls0"]"#);
    assert!(n.ok("ls-lb-list ls0").contains("web"));
    n.ok("acl-add ls0 to-lport 100 ip4 allow");
    must(
        &n,
        &[
            "set",
            "ACL",
            "ls0,to-lport,100,ip4",
            "action=drop",
            "name=deny-all",
        ],
    );
    assert!(n.ok("acl-list ls0").contains("deny-all"));
    must(
        &n,
        &[
            "add",
            "DNS",
            "ls0,web.example",
            "addresses",
            "10.0.0.12",
            "10.0.0.13",
        ],
    );
    must(&n, &["set", "DNS", "ls0,web.example", "ttl=60"]);
    assert_eq!(
        get(&n, "DNS", "ls0,web.example", "addresses"),
        r#"["10.0.0.11","10.0.0.12","10.0.0.13"]"#
    );
    must(&n, &["set", "DHCP_Options", &id, "options:router=10.0.0.1"]);
    assert_eq!(
        get(&n, "DHCP_Options", &id, "options:router"),
        "\"10.0.0.1\""
    );
    must(
        &n,
        &["remove", "DHCP_Options", &id, "options", "router=10.0.0.99"],
    );
    assert_eq!(
        get(&n, "DHCP_Options", &id, "options:router"),
        "\"10.0.0.1\"",
        "remove KEY=VALUE only on that value"
    );
    must(&n, &["remove", "DHCP_Options", &id, "options", "router"]);
    must(
        &n,
        &[
            "add",
            "Logical_Switch",
            "ls0",
            "other_config",
            "dns_domain=example",
        ],
    );
    must(&n, &["clear", "Logical_Switch", "ls0", "other_config"]);
    assert_eq!(get(&n, "Logical_Switch", "ls0", "other_config"), "{}");
    must(
        &n,
        &["remove", "DNS", "ls0,web.example", "addresses", "10.0.0.13"],
    );
    must(&n, &["clear", "Logical_Switch_Port", "p1", "external_ids"]);
    assert_eq!(get(&n, "Logical_Switch_Port", "p1", "external_ids"), "{}");

    // What the table's own command would refuse is refused, and a chain with
    // one refused write writes nothing at all.
    let before = must(&n, &["list", "Logical_Switch_Port", "--format", "json"]);
    for (args, why) in [
        (
            vec![
                "set",
                "Logical_Switch_Port",
                "p1",
                "addresses=\"0a:00:00:00:00:0c 10.1.0.5\"",
            ],
            "outside switch",
        ),
        (
            vec!["set", "Logical_Switch_Port", "p1", "tunnel_key=7"],
            "tunnel_key cannot be changed",
        ),
        (
            vec!["set", "Logical_Switch_Port", "p1", "name=p2"],
            "names the record",
        ),
        (
            vec!["add", "Logical_Switch_Port", "p1", "enabled", "true"],
            "holds one value",
        ),
        (
            vec!["clear", "DNS", "ls0,web.example", "addresses"],
            "at least one",
        ),
        (vec!["add", "Load_Balancer", "web", "routers", "lr9"], "lr9"),
        (
            vec!["set", "DHCP_Options", &id, "options:lease_time=soon"],
            "lease_time",
        ),
        (vec!["set", "Port_Group", "pg", "name=x"], "no table"),
        (
            vec!["set", "ACL", "ls0,to-lport", "action=drop"],
            "name it by",
        ),
    ] {
        let (ok, _, e) = n.syctl(&args);
        assert!(!ok && e.contains(why), "{args:?}: {e}");
    }
    let (ok, _, e) = n.syctl(&[
        "set",
        "Logical_Switch_Port",
        "p1",
        "enabled=false",
        "--",
        "set",
        "Logical_Switch_Port",
        "p1",
        "addresses=garbage",
    ]);
    assert!(!ok && e.contains("garbage"), "{e}");
    assert_eq!(
        must(&n, &["list", "Logical_Switch_Port", "--format", "json"]),
        before
    );
    must(
        &n,
        &[
            "set",
            "--if-exists",
            "Logical_Switch_Port",
            "nope",
            "enabled=false",
        ],
    );

    // The new tables list, find and destroy like the others.
    assert!(must(&n, &["list", "DNS", "--columns", "_id"]).contains("ls0,web.example"));
    assert!(must(
        &n,
        &[
            "find",
            "DHCP_Options",
            "cidr=10.0.0.0/24",
            "--columns",
            "_id"
        ]
    )
    .contains(&id));
    must(
        &n,
        &[
            "destroy",
            "DNS",
            "ls0,web.example",
            "--",
            "destroy",
            "DHCP_Options",
            &id,
        ],
    );
    assert!(must(&n, &["list", "DNS"]).trim().is_empty());
    assert!(must(&n, &["list", "DHCP_Options"]).trim().is_empty());

    // All of it survives a restart (the store holds what the writes made).
    let dump = must(&n, &["list", "Load_Balancer", "--format", "json"]);
    let mut n = n;
    n.restart();
    assert_eq!(
        must(&n, &["list", "Load_Balancer", "--format", "json"]),
        dump
    );
}

#[test]
fn per_column_readers_print_as_ovn_nbctl_does() {
    let n = Northd::start(17996);
    n.ok("ls-add ls0 --subnet 10.0.0.0/24");
    n.ok("lr-add lr0");
    n.ok("lr-connect lr0 ls0 0a:00:00:00:00:01 10.0.0.1/24");
    must(&n, &["lsp-add", "ls0", "p1", "0a:00:00:00:00:0b 10.0.0.11"]);
    must(
        &n,
        &["lsp-set-port-security", "p1", "0a:00:00:00:00:0b 10.0.0.11"],
    );
    assert_eq!(
        n.ok("lsp-get-addresses p1"),
        "0a:00:00:00:00:0b 10.0.0.11\n"
    );
    assert_eq!(
        n.ok("lsp-get-port-security p1"),
        "0a:00:00:00:00:0b 10.0.0.11\n"
    );
    assert_eq!(n.ok("lsp-get-enabled p1"), "enabled\n");
    assert_eq!(n.ok("lsp-get-up p1"), "down\n", "no chassis claimed it");
    assert_eq!(n.ok("lsp-get-type p1"), "\n");
    assert_eq!(n.ok("lsp-get-type ls0-lr0"), "router\n");
    assert_eq!(n.ok("lsp-get-options ls0-lr0"), "router-port=lr0-ls0\n");
    assert_eq!(n.ok("lsp-get-ls p1"), "ls0\n");
    assert_eq!(n.ok("lrp-get-enabled lr0-ls0"), "enabled\n");
    n.ok("lrp-set-enabled lr0-ls0 disabled");
    assert_eq!(n.ok("lrp-get-enabled lr0-ls0"), "disabled\n");
    assert!(n.fails("lsp-get-addresses nope").contains("does not exist"));
    assert!(n
        .fails("lrp-set-enabled nope enabled")
        .contains("does not exist"));
}
