use super::*;
use pb::nb_op::Op;

/// A database with one record in every table.
fn full() -> Nb {
    let mut nb = Nb::default();
    let good: std::collections::HashMap<String, String> = [
        ("server_id", "10.0.0.1"),
        ("server_mac", "0a:00:00:00:00:fe"),
        ("lease_time", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    nb.apply_all(vec![
        Op::LsAdd(pb::LogicalSwitch {
            name: "ls0".into(),
            subnet: "10.0.0.0/24".into(),
            ..Default::default()
        }),
        Op::LspAdd(pb::LogicalSwitchPort {
            name: "p1".into(),
            switch_name: "ls0".into(),
            addresses: vec!["0a:00:00:00:00:01 10.0.0.5".into()],
            enabled: true,
            ..Default::default()
        }),
        Op::LspAdd(pb::LogicalSwitchPort {
            name: "p2".into(),
            switch_name: "ls0".into(),
            addresses: vec!["0a:00:00:00:00:02 10.0.0.6".into()],
            enabled: true,
            ..Default::default()
        }),
        Op::LrAdd(pb::LogicalRouter {
            name: "lr0".into(),
            enabled: true,
            ..Default::default()
        }),
        Op::LrpAdd(pb::LogicalRouterPort {
            name: "lr0-ls0".into(),
            router_name: "lr0".into(),
            mac: "0a:00:00:00:01:01".into(),
            networks: vec!["10.0.0.1/24".into()],
            enabled: true,
            ..Default::default()
        }),
        Op::RouteAdd(pb::StaticRoute {
            router_name: "lr0".into(),
            prefix: "10.9.0.0/16".into(),
            nexthop: "10.0.0.254".into(),
            output_port: String::new(),
        }),
        Op::LbAdd(pb::LoadBalancer {
            name: "lb0".into(),
            protocol: "tcp".into(),
            vips: [("10.96.0.10:80".to_string(), "10.0.0.5:8080".to_string())].into(),
            ..Default::default()
        }),
        Op::NatAdd(pb::NatRule {
            router_name: "lr0".into(),
            r#type: "snat".into(),
            external_ip: "10.0.0.200".into(),
            logical_ip: "10.0.0.0/24".into(),
        }),
        Op::AclAdd(pb::Acl {
            switch_name: "ls0".into(),
            direction: "to-lport".into(),
            priority: 10,
            r#match: "ip4.src == {10.0.0.5, 10.0.0.6}".into(),
            action: "allow".into(),
            name: String::new(),
        }),
        Op::DnsAdd(pb::DnsRecord {
            switch_name: "ls0".into(),
            name: "web.example".into(),
            addresses: vec!["10.0.0.5".into()],
            ..Default::default()
        }),
        Op::DhcpOptionsAdd(pb::DhcpOptions {
            id: "d1".into(),
            cidr: "10.0.0.0/24".into(),
            options: good,
            ..Default::default()
        }),
    ])
    .unwrap();
    nb
}

fn m(kind: Mutator, column: &str, values: &[&str]) -> pb::Mutation {
    pb::Mutation {
        mutator: kind as i32,
        column: column.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn apply(nb: &mut Nb, table: &str, record: &str, ms: Vec<pb::Mutation>) -> Result<(), NbError> {
    nb.apply_all(vec![Op::DbMutate(pb::DbMutate {
        table: table.into(),
        record: record.into(),
        mutations: ms,
    })])
}

#[test]
fn every_table_takes_a_column_write_and_keeps_what_northd_assigned() {
    let mut nb = full();
    let before = nb.clone();
    use Mutator::*;
    apply(
        &mut nb,
        "Logical_Switch",
        "ls0",
        vec![m(Set, "other_config:dns_domain", &["example"])],
    )
    .unwrap();
    assert_eq!(nb.switches["ls0"].other_config["dns_domain"], "example");
    assert_eq!(
        nb.switches["ls0"].tunnel_key,
        before.switches["ls0"].tunnel_key
    );

    apply(
        &mut nb,
        "logical_switch_port",
        "p1",
        vec![
            m(Set, "port_security", &["[\"0a:00:00:00:00:01 10.0.0.5\"]"]),
            m(Set, "external_ids:owner", &["\"team a\""]),
            m(Set, "enabled", &["false"]),
        ],
    )
    .unwrap();
    let p = &nb.ports["p1"];
    assert_eq!(p.port_security, ["0a:00:00:00:00:01 10.0.0.5"]);
    assert_eq!(p.external_ids["owner"], "team a");
    assert!(!p.enabled);
    assert_eq!(p.tunnel_key, before.ports["p1"].tunnel_key);

    apply(
        &mut nb,
        "Logical_Router",
        "lr0",
        vec![m(Set, "enabled", &["false"])],
    )
    .unwrap();
    assert!(!nb.routers["lr0"].enabled);
    assert_eq!(
        nb.routers["lr0"].tunnel_key,
        before.routers["lr0"].tunnel_key
    );

    apply(
        &mut nb,
        "Logical_Router_Port",
        "lr0-ls0",
        vec![m(Add, "networks", &["10.1.0.1/24"])],
    )
    .unwrap();
    assert_eq!(
        nb.router_ports["lr0-ls0"].networks,
        ["10.0.0.1/24", "10.1.0.1/24"]
    );

    apply(
        &mut nb,
        "Logical_Router_Static_Route",
        "lr0,10.9.0.0/16,10.0.0.254",
        vec![m(Set, "output_port", &["lr0-ls0"])],
    )
    .unwrap();
    assert_eq!(nb.routes.values().next().unwrap().output_port, "lr0-ls0");

    apply(
        &mut nb,
        "Load_Balancer",
        "lb0",
        vec![
            m(Add, "vips", &["\"10.96.0.11:80\"=\"10.0.0.6:8080\""]),
            m(Add, "switches", &["ls0"]),
            m(Set, "options:affinity_timeout", &["60"]),
        ],
    )
    .unwrap();
    let lb = &nb.load_balancers["lb0"];
    assert_eq!(lb.vips.len(), 2);
    assert_eq!(lb.switches, ["ls0"]);
    assert_eq!(lb.options["affinity_timeout"], "60");

    apply(
        &mut nb,
        "NAT",
        "lr0,snat,10.0.0.200",
        vec![m(Set, "logical_ip", &["10.0.0.0/25"])],
    )
    .unwrap();
    assert_eq!(nb.nats.values().next().unwrap().logical_ip, "10.0.0.0/25");

    apply(
        &mut nb,
        "ACL",
        "ls0,to-lport,10,ip4.src == {10.0.0.5, 10.0.0.6}",
        vec![m(Set, "action", &["drop"]), m(Set, "name", &["quiet"])],
    )
    .unwrap();
    let a = nb.acls.values().next().unwrap();
    assert_eq!((a.action.as_str(), a.name.as_str()), ("drop", "quiet"));

    apply(
        &mut nb,
        "DNS",
        "ls0,WEB.example.",
        vec![m(Add, "addresses", &["10.0.0.6"]), m(Set, "ttl", &["60"])],
    )
    .unwrap();
    let r = nb.dns.values().next().unwrap();
    assert_eq!((r.addresses.len(), r.ttl), (2, 60));

    apply(
        &mut nb,
        "DHCP_Options",
        "d1",
        vec![
            m(Set, "options:router", &["10.0.0.1"]),
            m(Remove, "options", &["lease_time=7200"]),
        ],
    )
    .unwrap();
    assert_eq!(nb.dhcp_options["d1"].options["router"], "10.0.0.1");
    assert_eq!(
        nb.dhcp_options["d1"].options["lease_time"], "3600",
        "remove KEY=VALUE only when the value matches"
    );
}

#[test]
fn add_remove_and_clear_follow_ovn_nbctl_on_sets_and_maps() {
    let mut nb = full();
    use Mutator::*;
    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![
            m(Add, "external_ids", &["a=1", "b=2"]),
            m(Add, "external_ids", &["a=9"]),
        ],
    )
    .unwrap();
    assert_eq!(
        nb.ports["p1"].external_ids["a"], "1",
        "add keeps a present key"
    );
    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![m(Remove, "external_ids", &["a", "b=3"])],
    )
    .unwrap();
    let ids = &nb.ports["p1"].external_ids;
    assert!(!ids.contains_key("a") && ids["b"] == "2");
    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![m(Clear, "external_ids", &[])],
    )
    .unwrap();
    assert!(nb.ports["p1"].external_ids.is_empty());

    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![m(
            Add,
            "port_security",
            &["[\"0a:00:00:00:00:01\", \"0a:00:00:00:00:01 10.0.0.5\"]"],
        )],
    )
    .unwrap();
    assert_eq!(nb.ports["p1"].port_security.len(), 2);
    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![m(Remove, "port_security", &["0a:00:00:00:00:01"])],
    )
    .unwrap();
    assert_eq!(nb.ports["p1"].port_security, ["0a:00:00:00:00:01 10.0.0.5"]);
    apply(
        &mut nb,
        "Logical_Switch_Port",
        "p1",
        vec![m(Set, "external_ids", &["{x=1, y=\"a,b\"}"])],
    )
    .unwrap();
    assert_eq!(nb.ports["p1"].external_ids["y"], "a,b");
}

#[test]
fn a_column_write_is_refused_when_the_result_would_be_refused() {
    use Mutator::*;
    let nb = full();
    let cases: Vec<(&str, &str, Vec<pb::Mutation>, &str)> = vec![
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "addresses", &["0a:00:00:00:00:02 10.0.0.9"])],
            "already used",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "tunnel_key", &["9"])],
            "tunnel_key cannot",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "switch_name", &["ls1"])],
            "switch_name cannot",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "name", &["p9"])],
            "names the record",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "colour", &["red"])],
            "no column \"colour\"",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "enabled", &["maybe"])],
            "true or false",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Add, "enabled", &["true"])],
            "holds one value",
        ),
        (
            "Logical_Switch_Port",
            "p1",
            vec![m(Set, "addresses:x", &["1"])],
            "not a map",
        ),
        (
            "Logical_Switch_Port",
            "nope",
            vec![m(Set, "enabled", &["true"])],
            "does not exist",
        ),
        (
            "Logical_Switch",
            "ls0",
            vec![m(Set, "other_config:colour", &["red"])],
            "colour",
        ),
        (
            "Logical_Switch",
            "ls0",
            vec![m(Set, "subnet", &["10.1.0.0/24"])],
            "outside switch",
        ),
        (
            "Logical_Switch",
            "ls0",
            vec![m(Set, "other_config:", &["x"])],
            "with a KEY",
        ),
        (
            "Logical_Router_Port",
            "lr0-ls0",
            vec![m(Set, "mac", &["ff:ff:ff:ff:ff:ff"])],
            "mac",
        ),
        (
            "Load_Balancer",
            "lb0",
            vec![m(Add, "switches", &["ls9"])],
            "ls9",
        ),
        (
            "Load_Balancer",
            "lb0",
            vec![m(Add, "vips", &["10.96.0.12:80=10.0.0.5"])],
            "IP:PORT",
        ),
        (
            "ACL",
            "ls0,to-lport,10,ip4.src == {10.0.0.5, 10.0.0.6}",
            vec![m(Set, "action", &["maybe"])],
            "action",
        ),
        (
            "ACL",
            "ls0,to-lport",
            vec![m(Set, "action", &["drop"])],
            "name it by",
        ),
        (
            "DNS",
            "ls0,web.example",
            vec![m(Clear, "addresses", &[])],
            "at least one",
        ),
        (
            "DHCP_Options",
            "d1",
            vec![m(Remove, "options", &["server_id"])],
            "server_id",
        ),
        ("Port_Group", "pg", vec![], "no table"),
    ];
    for (table, record, ms, want) in cases {
        let mut n = nb.clone();
        let e = apply(&mut n, table, record, ms)
            .expect_err(want)
            .to_string();
        assert!(
            e.contains(want),
            "{table} {record}: {e:?} should say {want:?}"
        );
    }
    let mut n = nb.clone();
    apply(&mut n, "Logical_Switch_Port", "nope", vec![]).unwrap_err();
    n.apply_ops(&pb::TransactRequest {
        ops: vec![pb::NbOp {
            op: Some(Op::DbMutate(pb::DbMutate {
                table: "Logical_Switch_Port".into(),
                record: "nope".into(),
                mutations: vec![m(Set, "enabled", &["true"])],
            })),
            if_exists: true,
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(n, nb, "--if-exists on a missing record writes nothing");
}

#[test]
fn ovn_value_syntax_reads_as_expected() {
    assert_eq!(parse_set("[a, \"b, c\", d]").unwrap(), ["a", "b, c", "d"]);
    assert_eq!(parse_set("[]").unwrap(), Vec::<String>::new());
    assert_eq!(parse_set("\"x y\"").unwrap(), ["x y"]);
    let m = parse_map("{k=v, \"a=b\"=\"c\"}").unwrap();
    assert_eq!(m["k"], "v");
    assert_eq!(m["a=b"], "c");
    assert_eq!(parse_map("{\"j\": \"son\"}").unwrap()["j"], "son");
    assert!(parse_map("k=v").is_err());
    assert!(parse_value(&Value::from(1), "-1").is_err());
}
