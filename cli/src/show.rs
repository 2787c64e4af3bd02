//! `syctl show`: the topology with its load balancers, routers and bindings, as
//! text, JSON or Graphviz (the printing side; nb.rs talks to northd).

use switchyard_southbound::pb;

/// `syctl show`: switches, their ports and where each port is bound.
/// `syctl show`; `applied` says what each chassis runs (OVN's nb_cfg per chassis).
pub fn show(
    db: &pb::NbDatabase,
    sb: &pb::SbSnapshot,
    applied: &pb::WaitReply,
    json: bool,
) -> anyhow::Result<()> {
    let runs = |name: &str| {
        applied
            .chassis
            .iter()
            .find(|c| c.name == name && c.reported)
            .map(|c| c.nb_version)
    };
    if json {
        let v = serde_json::json!({
            "nb_version": db.version,
            "sb_version": sb.version,
            "sb_nb_version": applied.sb_nb_version,
            "chassis_nb_version": sb.chassis.iter().map(|c| (c.name.clone(), runs(&c.name))).collect::<std::collections::BTreeMap<_, _>>(),
            "switches": db.switches.iter().map(|s| serde_json::json!({
                "name": s.name, "subnet": s.subnet, "tunnel_key": s.tunnel_key,
                "ports": db.ports.iter().filter(|p| p.switch_name == s.name).map(|p| serde_json::json!({
                    "name": p.name, "addresses": p.addresses, "dynamic_addresses": p.dynamic_addresses, "port_security": p.port_security,
                    "dhcpv4_options": p.dhcpv4_options,
                    "enabled": p.enabled, "tunnel_key": p.tunnel_key,
                    "chassis": sb.port_bindings.iter().find(|b| b.logical_port == p.name).map(|b| b.chassis.clone()).unwrap_or_default(),
                })).collect::<Vec<_>>(),
                "load_balancers": db.load_balancers.iter().filter(|l| l.switches.contains(&s.name)).map(|l| &l.name).collect::<Vec<_>>(),
                "acls": db.acls.iter().filter(|a| a.switch_name == s.name).count(),
                "dns_records": db.dns_records.iter().filter(|r| r.switch_name == s.name).count(),
            })).collect::<Vec<_>>(),
            "routers": crate::router::show_json(db),
            "chassis": sb.chassis,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for s in &db.switches {
        let subnet = if s.subnet.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.subnet)
        };
        println!("switch {} key={}{}", s.name, s.tunnel_key, subnet);
        for p in db.ports.iter().filter(|p| p.switch_name == s.name) {
            let chassis = sb
                .port_bindings
                .iter()
                .find(|b| b.logical_port == p.name)
                .map(|b| b.chassis.as_str())
                .filter(|c| !c.is_empty())
                .unwrap_or("unbound");
            println!(
                "    port {} key={}{} [{}]",
                p.name,
                p.tunnel_key,
                if p.enabled { "" } else { " (disabled)" },
                chassis
            );
            for a in &p.addresses {
                println!("        addresses: {a}");
            }
            if !p.dynamic_addresses.is_empty() {
                println!("        dynamic_addresses: {}", p.dynamic_addresses);
            }
            for a in &p.port_security {
                println!("        port_security: {a}");
            }
            if !p.dhcpv4_options.is_empty() {
                println!("        dhcpv4_options: {}", p.dhcpv4_options);
            }
        }
        crate::lb::show_attached(db, |l| l.switches.contains(&s.name));
        let acls: Vec<&pb::Acl> = db.acls.iter().filter(|a| a.switch_name == s.name).collect();
        if !acls.is_empty() {
            let of = |d: &str| acls.iter().filter(|a| a.direction == d).count();
            println!(
                "    acls: {} from-lport, {} to-lport (syctl acl-list {})",
                of("from-lport"),
                of("to-lport"),
                s.name
            );
        }
        let dns = db
            .dns_records
            .iter()
            .filter(|r| r.switch_name == s.name)
            .count();
        let domain = s.other_config.get("dns_domain");
        if dns > 0 || domain.is_some() {
            println!(
                "    dns: {dns} record{}{} (syctl dns-list {})",
                if dns == 1 { "" } else { "s" },
                domain
                    .map(|d| format!(", authoritative for {d}"))
                    .unwrap_or_default(),
                s.name
            );
        }
    }
    crate::router::show_text(db, sb);
    for c in &sb.chassis {
        let encaps: Vec<String> = c
            .encaps
            .iter()
            .map(|e| format!("{} {}", e.r#type, e.ip))
            .collect();
        let at = match runs(&c.name) {
            Some(v) => format!("runs NB version {v}"),
            None => "has reported nothing".to_string(),
        };
        println!(
            "chassis {} ({}) encap: {}; {at}",
            c.name,
            c.hostname,
            encaps.join(", ")
        );
    }
    Ok(())
}

/// `syctl show --format dot`: Graphviz of switches, ports and the chassis they are bound on.
pub fn show_dot(db: &pb::NbDatabase, sb: &pb::SbSnapshot) -> String {
    // Labels carry Graphviz's own \\n line breaks, so only quotes are escaped.
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
    let mut out = String::from(
        "digraph switchyard {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for s in &db.switches {
        let label = if s.subnet.is_empty() {
            format!("switch {}", s.name)
        } else {
            format!("switch {}\\n{}", s.name, s.subnet)
        };
        out += &format!(
            "  {} [shape=box, style=filled, fillcolor=\"#dbe9f6\", label={}];\n",
            q(&format!("ls:{}", s.name)),
            q(&label)
        );
    }
    let chassis_of = |p: &str| {
        sb.port_bindings
            .iter()
            .find(|b| b.logical_port == p)
            .map(|b| b.chassis.clone())
            .unwrap_or_default()
    };
    let mut by_chassis: std::collections::BTreeMap<String, Vec<&pb::LogicalSwitchPort>> =
        Default::default();
    for p in &db.ports {
        by_chassis.entry(chassis_of(&p.name)).or_default().push(p);
    }
    for (chassis, ports) in &by_chassis {
        let inner: String = ports
            .iter()
            .map(|p| {
                let label = format!("{}\\n{}", p.name, p.addresses.join("\\n"));
                format!(
                    "    {} [shape=ellipse, label={}];\n",
                    q(&format!("lsp:{}", p.name)),
                    q(&label)
                )
            })
            .collect();
        if chassis.is_empty() {
            out += &inner;
        } else {
            let encap = sb
                .chassis
                .iter()
                .find(|c| &c.name == chassis)
                .and_then(|c| c.encaps.first())
                .map(|e| format!(" ({} {})", e.r#type, e.ip))
                .unwrap_or_default();
            out += &format!(
                "  subgraph {} {{\n    label={};\n    style=dashed;\n{}  }}\n",
                q(&format!("cluster_{chassis}")),
                q(&format!("chassis {chassis}{encap}")),
                inner
            );
        }
    }
    for p in &db.ports {
        out += &format!(
            "  {} -> {} [dir=none];\n",
            q(&format!("ls:{}", p.switch_name)),
            q(&format!("lsp:{}", p.name))
        );
    }
    for r in &db.routers {
        out += &format!(
            "  {} [shape=octagon, style=filled, fillcolor=\"#f6e3c8\", label={}];\n",
            q(&format!("lr:{}", r.name)),
            q(&format!("router {}", r.name))
        );
    }
    for lrp in &db.router_ports {
        let peer = db
            .ports
            .iter()
            .find(|l| l.r#type == "router" && l.options.get("router-port") == Some(&lrp.name));
        if let Some(l) = peer {
            out += &format!(
                "  {} -> {} [dir=none, label={}];\n",
                q(&format!("lr:{}", lrp.router_name)),
                q(&format!("lsp:{}", l.name)),
                q(&format!("{}\\n{}", lrp.name, lrp.networks.join(" ")))
            );
        }
    }
    out += "}\n";
    out
}
