//! ovn-nbctl's database commands over the NB tables: `list`, `get`, `find`
//! (reads, with `--columns` and `--format`), `destroy`, `set`, `add`,
//! `remove` and `clear` (writes, chainable with `--`). Tables carry OVN's
//! names ([`switchyard_southbound::nb_tables`]); a record is named by its
//! name, or for tables without one by its identity (`list` shows it as
//! `_id`): a route by `ROUTER,PREFIX,NEXTHOP`, a NAT rule by
//! `ROUTER,TYPE,EXTERNAL_IP`, an ACL by `SWITCH,DIRECTION,PRIORITY,MATCH`, a
//! DNS record by `SWITCH,NAME`. Column writes are applied by northd inside
//! the transaction, so they see what earlier commands of a `--` chain wrote,
//! and are validated as the table's own add command would be.

use crate::nb::{get, Write};
use serde_json::{Map, Value};
use switchyard_southbound::nb_tables::nb_table;
use switchyard_southbound::pb::{self, nb_op::Op, Mutator};

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
    /// Set columns of one record: COLUMN=VALUE, or COLUMN:KEY=VALUE for one
    /// entry of a map column. Values as ovn-nbctl writes them: text or
    /// "text", true, 5, [a, b] for a set, {k=v, k2=v2} for a map. Every
    /// column of every table except those that name the record and those
    /// northd assigns (tunnel_key, dynamic_addresses).
    Set {
        table: String,
        record: String,
        #[arg(required = true)]
        assignments: Vec<String>,
        /// No error when the record does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Add elements to a set column, or KEY=VALUE entries to a map column (a
    /// key already present keeps its value, as in ovn-nbctl).
    Add {
        table: String,
        record: String,
        column: String,
        #[arg(required = true)]
        values: Vec<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// Remove elements from a set column, or keys (KEY, or KEY=VALUE: only
    /// with that value) from a map column.
    Remove {
        table: String,
        record: String,
        column: String,
        #[arg(required = true)]
        values: Vec<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// Empty set or map columns.
    Clear {
        table: String,
        record: String,
        #[arg(required = true)]
        columns: Vec<String>,
        #[arg(long)]
        if_exists: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    List,
    Table,
    Csv,
    Json,
}

/// OVN's table name, the NB dump's field and the key columns of table `name`.
fn table(name: &str) -> anyhow::Result<(&'static str, &'static str, &'static [&'static str])> {
    let t = nb_table(name).map_err(|e| anyhow::anyhow!(e))?;
    Ok((t.name, t.field, t.key))
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
                let parts = nb_table(t)
                    .and_then(|tb| tb.split_record(&id))
                    .map_err(|e| anyhow::anyhow!(e))?;
                ops.push(match t {
                    "Logical_Switch" => Op::LsDel(id.clone()),
                    "Logical_Switch_Port" => Op::LspDel(id.clone()),
                    "Logical_Router" => Op::LrDel(id.clone()),
                    "Logical_Router_Port" => Op::LrpDel(id.clone()),
                    "Load_Balancer" => Op::LbDel(pb::LbDel {
                        name: id.clone(),
                        vip: String::new(),
                    }),
                    "DHCP_Options" => Op::DhcpOptionsDel(id.clone()),
                    "DNS" => Op::DnsDel(pb::DnsDel {
                        switch_name: parts[0].into(),
                        name: parts[1].into(),
                    }),
                    "Logical_Router_Static_Route" => Op::RouteDel(pb::StaticRoute {
                        router_name: parts[0].into(),
                        prefix: parts[1].into(),
                        nexthop: parts[2].into(),
                        output_port: String::new(),
                    }),
                    "NAT" => Op::NatDel(pb::NatRule {
                        router_name: parts[0].into(),
                        r#type: parts[1].into(),
                        external_ip: parts[2].into(),
                        logical_ip: String::new(),
                    }),
                    _ => Op::AclDel(pb::AclDel {
                        switch_name: parts[0].into(),
                        direction: parts[1].into(),
                        priority: parts[2].parse().map_err(|e| {
                            anyhow::anyhow!("ACL {id:?}: priority {:?}: {e}", parts[2])
                        })?,
                        r#match: parts[3].into(),
                    }),
                });
            }
            Ok(Ok(Write::new(ops, false, if_exists)))
        }
        DbCmd::Set {
            table,
            record,
            assignments,
            if_exists,
        } => {
            let mut ms = Vec::new();
            for a in assignments {
                let Some((col, v)) = a.split_once('=') else {
                    anyhow::bail!("set: {a:?} is not COLUMN=VALUE or COLUMN:KEY=VALUE");
                };
                ms.push(mutation(Mutator::Set, col, vec![v.to_string()]));
            }
            mutate(&table, record, ms, if_exists)
        }
        DbCmd::Add {
            table,
            record,
            column,
            values,
            if_exists,
        } => mutate(
            &table,
            record,
            vec![mutation(Mutator::Add, &column, values)],
            if_exists,
        ),
        DbCmd::Remove {
            table,
            record,
            column,
            values,
            if_exists,
        } => mutate(
            &table,
            record,
            vec![mutation(Mutator::Remove, &column, values)],
            if_exists,
        ),
        DbCmd::Clear {
            table,
            record,
            columns,
            if_exists,
        } => mutate(
            &table,
            record,
            columns
                .iter()
                .map(|c| mutation(Mutator::Clear, c, Vec::new()))
                .collect(),
            if_exists,
        ),
        read => Ok(Err(read)),
    }
}

fn mutation(mutator: Mutator, column: &str, values: Vec<String>) -> pb::Mutation {
    pb::Mutation {
        mutator: mutator as i32,
        column: column.to_string(),
        values,
    }
}

/// One record's column writes as an op (the table name checked here, the
/// rest by northd against the record as the transaction has it).
fn mutate(
    table: &str,
    record: String,
    mutations: Vec<pb::Mutation>,
    if_exists: bool,
) -> anyhow::Result<Result<Write, DbCmd>> {
    let t = nb_table(table).map_err(|e| anyhow::anyhow!(e))?;
    t.split_record(&record).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Ok(Write::new(
        vec![Op::DbMutate(pb::DbMutate {
            table: t.name.to_string(),
            record,
            mutations,
        })],
        false,
        if_exists,
    )))
}
