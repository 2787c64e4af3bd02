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
