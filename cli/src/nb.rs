//! Northbound commands (ovn-nbctl style) and the read commands that show the
//! topology and its compiled southbound contents.

use crate::table;
use switchyard_southbound::display::{actions_text, matches_text};
use switchyard_southbound::pb::{self, nb_op::Op};

pub use switchyard_cli::nb_client::connect;

/// A port's addresses for a table: a dynamic entry with what northd assigned.
fn shown_addresses(p: &pb::LogicalSwitchPort) -> String {
    p.addresses
        .iter()
        .map(|a| {
            if a.split_whitespace().last() == Some("dynamic") && !p.dynamic_addresses.is_empty() {
                format!("{a} ({})", p.dynamic_addresses)
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One command's NB write: its ops and its `--may-exist` / `--if-exists`.
#[derive(Debug, Default)]
pub struct Write {
    pub ops: Vec<Op>,
    pub may_exist: bool,
    pub if_exists: bool,
}

impl Write {
    pub fn new(ops: Vec<Op>, may_exist: bool, if_exists: bool) -> Write {
        Write {
            ops,
            may_exist,
            if_exists,
        }
    }
}

/// Runs the writes of several commands as one transaction (each op keeps its
/// own command's flags): all of them, or none.
pub async fn transact_all(
    c: &mut switchyard_cli::nb_client::Nb,
    writes: Vec<Write>,
) -> anyhow::Result<u64> {
    let ops = writes
        .into_iter()
        .flat_map(|w| {
            let (m, i) = (w.may_exist, w.if_exists);
            w.ops.into_iter().map(move |o| pb::NbOp {
                op: Some(o),
                may_exist: m,
                if_exists: i,
            })
        })
        .collect();
    let req = pb::TransactRequest {
        ops,
        ..Default::default()
    };
    match c.transact(req).await {
        Ok(r) => Ok(r.into_inner().version),
        Err(s) => anyhow::bail!("{}", s.message()),
    }
}

/// Runs one transaction; a refused write surfaces northd's message.
pub async fn transact(
    c: &mut switchyard_cli::nb_client::Nb,
    ops: Vec<Op>,
    may_exist: bool,
    if_exists: bool,
) -> anyhow::Result<u64> {
    match c
        .transact(switchyard_cli::nb_client::request(
            ops, may_exist, if_exists,
        ))
        .await
    {
        Ok(r) => Ok(r.into_inner().version),
        Err(s) => anyhow::bail!("{}", s.message()),
    }
}

/// `--wait`: how far a committed write must have got before syctl returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum WaitLevel {
    #[default]
    None,
    /// northd compiled it into the southbound database.
    Sb,
    /// Every chassis runs it in its datapath.
    Hv,
}

/// What every chassis runs against NB version `v` (`level` "" only reports).
pub async fn applied(
    c: &mut switchyard_cli::nb_client::Nb,
    v: u64,
    level: &str,
    timeout_ms: u32,
) -> anyhow::Result<pb::WaitReply> {
    let req = pb::WaitRequest {
        nb_version: v,
        level: level.into(),
        timeout_ms,
    };
    Ok(c.wait(req)
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner())
}

/// Says a write committed at NB version `v`, after waiting as `--wait` asks;
/// a timeout is an error naming the chassis that lag.
pub async fn committed(
    c: &mut switchyard_cli::nb_client::Nb,
    v: u64,
    wait: WaitLevel,
    timeout_s: u64,
) -> anyhow::Result<()> {
    let level = match wait {
        WaitLevel::None => {
            println!("ok (NB version {v})");
            return Ok(());
        }
        WaitLevel::Sb => "sb",
        WaitLevel::Hv => "hv",
    };
    let ms = if timeout_s == 0 {
        u32::MAX
    } else {
        u32::try_from(timeout_s.saturating_mul(1000)).unwrap_or(u32::MAX)
    };
    let r = applied(c, v, level, ms).await?;
    if r.done {
        println!(
            "ok (NB version {v}, {})",
            match wait {
                WaitLevel::Hv => format!("running on {} chassis", r.chassis.len()),
                _ => format!("in SB version {}", r.sb_version),
            }
        );
        return Ok(());
    }
    if r.sb_nb_version < v {
        anyhow::bail!(
            "NB version {v} committed, but northd has not compiled it after {timeout_s} s (SB has NB version {})",
            r.sb_nb_version
        );
    }
    let lag: Vec<String> = r
        .chassis
        .iter()
        .filter(|ch| !ch.reported || ch.nb_version < v || ch.sb_version < r.hv_sb_version)
        .map(|ch| {
            if !ch.reported {
                format!("{} has reported nothing since it registered", ch.name)
            } else if ch.nb_version < v {
                format!("{} runs NB version {}", ch.name, ch.nb_version)
            } else {
                format!(
                    "{} runs NB version {} but has not seen SB version {} (a port claim) yet",
                    ch.name, ch.nb_version, r.hv_sb_version
                )
            }
        })
        .collect();
    anyhow::bail!(
        "NB version {v} committed, but not on every chassis after {timeout_s} s: {}",
        lag.join("; ")
    )
}

/// Writes `w` in one transaction and says so, as every write command does.
pub async fn commit(c: &mut switchyard_cli::nb_client::Nb, w: Write) -> anyhow::Result<()> {
    let v = transact(c, w.ops, w.may_exist, w.if_exists).await?;
    println!("ok (NB version {v})");
    Ok(())
}

pub async fn get(c: &mut switchyard_cli::nb_client::Nb) -> anyhow::Result<pb::NbDatabase> {
    Ok(c.get(pb::GetRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner())
}

pub async fn southbound(c: &mut switchyard_cli::nb_client::Nb) -> anyhow::Result<pb::SbSnapshot> {
    Ok(c.get_southbound(pb::GetRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner())
}

pub fn print_switches(db: &pb::NbDatabase, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&db.switches)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = db
        .switches
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                if s.subnet.is_empty() {
                    "-".into()
                } else {
                    s.subnet.clone()
                },
                s.tunnel_key.to_string(),
                db.ports
                    .iter()
                    .filter(|p| p.switch_name == s.name)
                    .count()
                    .to_string(),
            ]
        })
        .collect();
    table::print(&["NAME", "SUBNET", "KEY", "PORTS"], &rows);
    Ok(())
}

pub fn print_ports(db: &pb::NbDatabase, switch: Option<&str>, json: bool) -> anyhow::Result<()> {
    if let Some(s) = switch {
        if !db.switches.iter().any(|x| x.name == s) {
            anyhow::bail!("logical switch {s:?} does not exist");
        }
    }
    let ports: Vec<&pb::LogicalSwitchPort> = db
        .ports
        .iter()
        .filter(|p| switch.is_none_or(|s| p.switch_name == s))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&ports)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.switch_name.clone(),
                p.tunnel_key.to_string(),
                shown_addresses(p),
                p.port_security.join(", "),
                if p.enabled { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table::print(
        &[
            "NAME",
            "SWITCH",
            "KEY",
            "ADDRESSES",
            "PORT SECURITY",
            "ENABLED",
        ],
        &rows,
    );
    Ok(())
}

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

/// `syctl lflow-list [SWITCH]`, grouped by datapath and stage, as ovn-sbctl does.
pub fn lflow_list(sb: &pb::SbSnapshot, switch: Option<&str>, json: bool) -> anyhow::Result<()> {
    let dps: Vec<&pb::DatapathBinding> = sb
        .datapaths
        .iter()
        .filter(|d| switch.is_none_or(|s| d.name == s))
        .collect();
    if let Some(s) = switch {
        if dps.is_empty() {
            anyhow::bail!("no datapath named {s:?}");
        }
    }
    let mut out_json = Vec::new();
    for dp in dps {
        let mut flows: Vec<&pb::LogicalFlow> = sb
            .flows
            .iter()
            .filter(|f| f.datapath == dp.tunnel_key)
            .collect();
        flows.sort_by(|a, b| {
            (
                a.pipeline != "ingress",
                a.table,
                std::cmp::Reverse(a.priority),
                matches_text(&a.matches),
            )
                .cmp(&(
                    b.pipeline != "ingress",
                    b.table,
                    std::cmp::Reverse(b.priority),
                    matches_text(&b.matches),
                ))
        });
        if json {
            for f in &flows {
                out_json.push(serde_json::json!({
                    "datapath": dp.name, "pipeline": f.pipeline, "stage": f.stage, "table": f.table,
                    "priority": f.priority, "match": matches_text(&f.matches), "actions": actions_text(&f.actions),
                    "source": f.source,
                }));
            }
            continue;
        }
        println!(
            "Datapath: \"{}\" ({} key={})",
            dp.name, dp.kind, dp.tunnel_key
        );
        let mut last = String::new();
        for f in flows {
            if f.stage != last {
                println!("  {} table={} ({})", f.pipeline, f.table, f.stage);
                last = f.stage.clone();
            }
            println!(
                "    priority={:<5} match=({}), action=({})  [{}]",
                f.priority,
                matches_text(&f.matches),
                actions_text(&f.actions),
                f.source
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out_json)?);
    }
    Ok(())
}

pub fn chassis_list(sb: &pb::SbSnapshot, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&sb.chassis)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = sb
        .chassis
        .iter()
        .map(|c| {
            let ports: Vec<&str> = sb
                .port_bindings
                .iter()
                .filter(|b| b.chassis == c.name)
                .map(|b| b.logical_port.as_str())
                .collect();
            vec![
                c.name.clone(),
                c.hostname.clone(),
                c.encaps
                    .iter()
                    .map(|e| format!("{}:{}", e.r#type, e.ip))
                    .collect::<Vec<_>>()
                    .join(","),
                ports.join(","),
            ]
        })
        .collect();
    table::print(&["NAME", "HOSTNAME", "ENCAP", "PORTS"], &rows);
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
