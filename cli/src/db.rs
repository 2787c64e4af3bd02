//! ovn-nbctl's database commands over the NB tables: `list`, `get`, `find`
//! (reads, with `--columns` and `--format`), `destroy` and `set` (writes,
//! chainable with `--`). Tables carry OVN's names; a record is named by its
//! name, or for tables without one by its identity (`list` shows it as
//! `_id`): a route by `ROUTER,PREFIX,NEXTHOP`, a NAT rule by
//! `ROUTER,TYPE,EXTERNAL_IP`, an ACL by `SWITCH,DIRECTION,PRIORITY,MATCH`.

use crate::nb::{get, Write};
use serde_json::{Map, Value};
use switchyard_southbound::pb::{self, nb_op::Op};

#[derive(clap::Subcommand, Debug)]
pub enum DbCmd {
    /// Records of TABLE (all, or the ones named), every column or --columns.
    List {
        table: String,
        records: Vec<String>,
        /// Columns to show, comma-separated (`_id` is the record's name).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        #[arg(long, value_enum, default_value = "list")]
        format: Format,
    },
    /// The value of COLUMN (or COLUMN:KEY of a map) of one record, one per line.
    Get {
        table: String,
        record: String,
        #[arg(required = true)]
        columns: Vec<String>,
        /// No error when the record or key does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Records of TABLE where every COLUMN[:KEY]=VALUE holds (a set column
    /// holds VALUE when it has it as an element).
    Find {
        table: String,
        #[arg(required = true)]
        conditions: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        #[arg(long, value_enum, default_value = "list")]
        format: Format,
    },
    /// Delete records (a switch or router takes its ports with it).
    Destroy {
        table: String,
        #[arg(required = true)]
        records: Vec<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// Set columns of one record: of a Logical_Switch_Port addresses,
    /// port_security (JSON lists or one entry), enabled, type,
    /// external_ids:KEY=VALUE; of a
    /// Logical_Switch other_config:KEY=VALUE (other columns and tables have
    /// their own commands, named in the error).
    Set {
        table: String,
        record: String,
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// Remove keys from a map column (a Logical_Switch's other_config, a
    /// Logical_Switch_Port's external_ids).
    Remove {
        table: String,
        record: String,
        column: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    List,
    Table,
    Csv,
    Json,
}

/// OVN's table names, the NB dump's field for each, and how a record is named.
const TABLES: [(&str, &str, &[&str]); 8] = [
    ("Logical_Switch", "switches", &["name"]),
    ("Logical_Switch_Port", "ports", &["name"]),
    ("Logical_Router", "routers", &["name"]),
    ("Logical_Router_Port", "router_ports", &["name"]),
    (
        "Logical_Router_Static_Route",
        "routes",
        &["router_name", "prefix", "nexthop"],
    ),
    ("Load_Balancer", "load_balancers", &["name"]),
    ("NAT", "nats", &["router_name", "type", "external_ip"]),
    (
        "ACL",
        "acls",
        &["switch_name", "direction", "priority", "match"],
    ),
];

fn table(name: &str) -> anyhow::Result<(&'static str, &'static str, &'static [&'static str])> {
    TABLES
        .iter()
        .find(|(t, _, _)| t.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = TABLES.iter().map(|t| t.0).collect();
            anyhow::anyhow!("no table {name:?}; the NB tables are {}", names.join(", "))
        })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rows of a table, each with its `_id` first.
fn rows(db: &pb::NbDatabase, tname: &str) -> anyhow::Result<Vec<Map<String, Value>>> {
    let (_, field, id) = table(tname)?;
    let all = serde_json::to_value(db)?;
    Ok(all[field]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(m) => {
                let key: Vec<String> = id.iter().map(|c| text(&m[*c])).collect();
                let mut row = Map::new();
                row.insert("_id".into(), Value::String(key.join(",")));
                row.extend(m);
                Some(row)
            }
            _ => None,
        })
        .collect())
}

fn record<'a>(
    rows: &'a [Map<String, Value>],
    t: &str,
    id: &str,
) -> anyhow::Result<&'a Map<String, Value>> {
    rows.iter().find(|r| r["_id"] == id).ok_or_else(|| {
        anyhow::anyhow!("no {t} record {id:?} (`syctl list {t} --columns _id` lists them)")
    })
}

/// COLUMN or COLUMN:KEY of a row (`None`: the map has no such key).
fn column(row: &Map<String, Value>, t: &str, col: &str) -> anyhow::Result<Option<Value>> {
    let (name, key) = match col.split_once(':') {
        Some((c, k)) => (c, Some(k)),
        None => (col, None),
    };
    let Some(v) = row.get(name) else {
        let cols: Vec<&str> = row.keys().map(String::as_str).collect();
        anyhow::bail!(
            "table {t} has no column {name:?}; its columns are {}",
            cols.join(", ")
        );
    };
    match key {
        None => Ok(Some(v.clone())),
        Some(k) => match v {
            Value::Object(m) => Ok(m.get(k).cloned()),
            _ => anyhow::bail!("{t} column {name:?} is not a map: write it without :{k}"),
        },
    }
}

fn matches(v: &Value, want: &str) -> bool {
    match v {
        Value::Array(items) => {
            items.iter().any(|i| text(i) == want)
                || serde_json::from_str::<Value>(want).is_ok_and(|w| w == *v)
        }
        other => text(other) == want,
    }
}

fn print_rows(
    rows: &[&Map<String, Value>],
    t: &str,
    columns: &[String],
    format: Format,
) -> anyhow::Result<()> {
    let cols: Vec<String> = if columns.is_empty() {
        rows.first()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        columns.to_vec()
    };
    let mut out: Vec<Vec<(String, Value)>> = Vec::new();
    for r in rows {
        let mut line = Vec::new();
        for c in &cols {
            line.push((c.clone(), column(r, t, c)?.unwrap_or(Value::Null)));
        }
        out.push(line);
    }
    match format {
        Format::Json => {
            let v: Vec<Map<String, Value>> =
                out.into_iter().map(|l| l.into_iter().collect()).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::List => {
            for (i, l) in out.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let w = l.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
                for (c, v) in l {
                    println!("{c:<w$} : {}", text(v));
                }
            }
        }
        Format::Csv => {
            let quote = |s: String| {
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s
                }
            };
            println!("{}", cols.join(","));
            for l in out {
                let f: Vec<String> = l.into_iter().map(|(_, v)| quote(text(&v))).collect();
                println!("{}", f.join(","));
            }
        }
        Format::Table => {
            let body: Vec<Vec<String>> = out
                .into_iter()
                .map(|l| l.into_iter().map(|(_, v)| text(&v)).collect())
                .collect();
            let head: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
            let head: Vec<&str> = head.iter().map(String::as_str).collect();
            crate::table::print(&head, &body);
        }
    }
    Ok(())
}

pub async fn run(cmd: DbCmd, c: &mut switchyard_cli::nb_client::Nb) -> anyhow::Result<()> {
    match write(cmd)? {
        Ok(w) => crate::nb::commit(c, w).await,
        Err(DbCmd::List {
            table: t,
            records,
            columns,
            format,
        }) => {
            let all = rows(&get(c).await?, &t)?;
            let (t, _, _) = table(&t)?;
            let picked: Vec<&Map<String, Value>> = if records.is_empty() {
                all.iter().collect()
            } else {
                records
                    .iter()
                    .map(|r| record(&all, t, r))
                    .collect::<anyhow::Result<_>>()?
            };
            print_rows(&picked, t, &columns, format)
        }
        Err(DbCmd::Get {
            table: t,
            record: id,
            columns,
            if_exists,
        }) => {
            let all = rows(&get(c).await?, &t)?;
            let (t, _, _) = table(&t)?;
            let r = match record(&all, t, &id) {
                Ok(r) => r,
                Err(_) if if_exists => return Ok(()),
                Err(e) => return Err(e),
            };
            for col in &columns {
                match column(r, t, col)? {
                    Some(v) => println!("{v}"),
                    None if if_exists => {}
                    None => anyhow::bail!("{t} {id:?}: no key {col:?}"),
                }
            }
            Ok(())
        }
        Err(DbCmd::Find {
            table: t,
            conditions,
            columns,
            format,
        }) => {
            let all = rows(&get(c).await?, &t)?;
            let (t, _, _) = table(&t)?;
            let mut picked = Vec::new();
            'rows: for r in &all {
                for cond in &conditions {
                    let Some((col, want)) = cond.split_once('=') else {
                        anyhow::bail!("find: {cond:?} is not COLUMN[:KEY]=VALUE");
                    };
                    if !column(r, t, col)?.is_some_and(|v| matches(&v, want)) {
                        continue 'rows;
                    }
                }
                picked.push(r);
            }
            print_rows(&picked, t, &columns, format)
        }
        Err(other) => unreachable!("write() hands back only reads, not {other:?}"),
    }
}

/// The values of a set column: a JSON list, or one entry.
fn list_value(v: &str) -> anyhow::Result<Vec<String>> {
    if v.trim_start().starts_with('[') {
        serde_json::from_str(v)
            .map_err(|e| anyhow::anyhow!("{v:?} is not a JSON list of strings: {e}"))
    } else if v.is_empty() {
        Ok(Vec::new())
    } else {
        Ok(vec![v.to_string()])
    }
}

/// The NB write a command makes, or the command back when it only reads.
pub fn write(cmd: DbCmd) -> anyhow::Result<Result<Write, DbCmd>> {
    match cmd {
        DbCmd::Destroy {
            table: t,
            records,
            if_exists,
        } => {
            let (t, _, _) = table(&t)?;
            let mut ops = Vec::new();
            for id in records {
                let parts: Vec<&str> = id.splitn(4, ',').collect();
                let need = |n: usize| -> anyhow::Result<()> {
                    if parts.len() == n {
                        Ok(())
                    } else {
                        anyhow::bail!("{t} record {id:?}: `syctl list {t} --columns _id` shows how they are named")
                    }
                };
                ops.push(match t {
                    "Logical_Switch" => Op::LsDel(id.clone()),
                    "Logical_Switch_Port" => Op::LspDel(id.clone()),
                    "Logical_Router" => Op::LrDel(id.clone()),
                    "Logical_Router_Port" => Op::LrpDel(id.clone()),
                    "Load_Balancer" => Op::LbDel(pb::LbDel {
                        name: id.clone(),
                        vip: String::new(),
                    }),
                    "Logical_Router_Static_Route" => {
                        need(3)?;
                        Op::RouteDel(pb::StaticRoute {
                            router_name: parts[0].into(),
                            prefix: parts[1].into(),
                            nexthop: parts[2].into(),
                            output_port: String::new(),
                        })
                    }
                    "NAT" => {
                        need(3)?;
                        Op::NatDel(pb::NatRule {
                            router_name: parts[0].into(),
                            r#type: parts[1].into(),
                            external_ip: parts[2].into(),
                            logical_ip: String::new(),
                        })
                    }
                    _ => {
                        need(4)?;
                        Op::AclDel(pb::AclDel {
                            switch_name: parts[0].into(),
                            direction: parts[1].into(),
                            priority: parts[2].parse().map_err(|e| {
                                anyhow::anyhow!("ACL {id:?}: priority {:?}: {e}", parts[2])
                            })?,
                            r#match: parts[3].into(),
                        })
                    }
                });
            }
            Ok(Ok(Write::new(ops, false, if_exists)))
        }
        DbCmd::Set {
            table: t,
            record: port,
            assignments,
        } => {
            let (t, _, _) = table(&t)?;
            if t == "Logical_Switch" {
                let mut config = std::collections::HashMap::new();
                for a in assignments {
                    let kv = a.strip_prefix("other_config:").ok_or_else(|| {
                        anyhow::anyhow!("set {t} {a:?}: only other_config:KEY=VALUE can be set")
                    })?;
                    let (k, v) = kv
                        .split_once('=')
                        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                        .ok_or_else(|| {
                            anyhow::anyhow!("set {t} {a:?}: write other_config:KEY=VALUE")
                        })?;
                    config.insert(k.to_string(), v.to_string());
                }
                return Ok(Ok(Write::new(
                    vec![Op::LsSetOtherConfig(pb::SetConfig {
                        record: port,
                        config,
                    })],
                    false,
                    false,
                )));
            }
            if t != "Logical_Switch_Port" {
                anyhow::bail!(
                    "set {t}: not supported yet; only Logical_Switch_Port and Logical_Switch other_config are (use the {} commands)",
                    t.to_lowercase().replace('_', "-")
                );
            }
            let mut ops = Vec::new();
            for a in assignments {
                let Some((col, v)) = a.split_once('=') else {
                    anyhow::bail!("set: {a:?} is not COLUMN=VALUE");
                };
                ops.push(match col {
                    "addresses" => Op::LspSetAddresses(pb::SetAddresses {
                        port: port.clone(),
                        addresses: list_value(v)?,
                    }),
                    "port_security" => Op::LspSetPortSecurity(pb::SetAddresses {
                        port: port.clone(),
                        addresses: list_value(v)?,
                    }),
                    "enabled" => Op::LspSetEnabled(pb::SetEnabled {
                        port: port.clone(),
                        enabled: v
                            .parse()
                            .map_err(|_| anyhow::anyhow!("enabled={v:?}: write true or false"))?,
                    }),
                    "type" => Op::LspSetType(pb::SetType {
                        port: port.clone(),
                        r#type: v.into(),
                    }),
                    other if other.starts_with("external_ids:") => {
                        let k = &other["external_ids:".len()..];
                        if k.is_empty() || v.is_empty() {
                            anyhow::bail!("set {t} {a:?}: write external_ids:KEY=VALUE");
                        }
                        Op::LspSetExternalIds(pb::SetConfig {
                            record: port.clone(),
                            config: [(k.to_string(), v.to_string())].into(),
                        })
                    }
                    other if other.starts_with("options") => {
                        anyhow::bail!("set {t} {other}: use `syctl lsp-set-options PORT KEY=VALUE...` (it sets the whole map)")
                    }
                    other => anyhow::bail!(
                        "set {t}: column {other:?} cannot be set (addresses, port_security, enabled, type, external_ids:KEY can)"
                    ),
                });
            }
            Ok(Ok(Write::new(ops, false, false)))
        }
        DbCmd::Remove {
            table: t,
            record,
            column,
            keys,
        } => {
            let (t, _, _) = table(&t)?;
            // An empty value removes the key (SetConfig's convention).
            let config = keys.into_iter().map(|k| (k, String::new())).collect();
            let op = match (t, column.as_str()) {
                ("Logical_Switch", "other_config") => {
                    Op::LsSetOtherConfig(pb::SetConfig { record, config })
                }
                ("Logical_Switch_Port", "external_ids") => {
                    Op::LspSetExternalIds(pb::SetConfig { record, config })
                }
                _ => anyhow::bail!(
                    "remove {t} {column}: only Logical_Switch other_config and Logical_Switch_Port external_ids keys can be removed"
                ),
            };
            Ok(Ok(Write::new(vec![op], false, false)))
        }
        read => Ok(Err(read)),
    }
}
