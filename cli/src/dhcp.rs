//! DHCPv4 option commands, ovn-nbctl's: `dhcp-options-create CIDR
//! [KEY=VALUE...]` (prints the new row's id), `dhcp-options-set-options ID
//! KEY=VALUE...`, `dhcp-options-get-options ID`, `dhcp-options-list`,
//! `dhcp-options-del ID`, `lsp-set-dhcpv4-options PORT [ID]`,
//! `lsp-get-dhcpv4-options PORT`. The datapath answers a port's DHCP from
//! the options it points at and its own address.

use crate::nb::{get, transact, Write};
use crate::table;
use std::collections::HashMap;
use switchyard_southbound::pb::{self, nb_op::Op};

// The variants are the command names, as ovn-nbctl's.
#[allow(clippy::enum_variant_names)]
#[derive(clap::Subcommand, Debug)]
pub enum DhcpCmd {
    /// Create DHCPv4 options for CIDR (e.g. 10.244.0.0/24 server_id=10.244.0.1
    /// server_mac=0a:58:0a:f4:00:01 lease_time=3600 router=10.244.0.1
    /// dns_server={10.96.0.10} mtu=1400); prints the new row's id.
    DhcpOptionsCreate {
        cidr: String,
        #[arg(value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// Replace the options of row ID.
    DhcpOptionsSetOptions {
        id: String,
        #[arg(value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// Print the options of row ID, one KEY=VALUE a line.
    DhcpOptionsGetOptions { id: String },
    /// List the rows: id and CIDR.
    DhcpOptionsList,
    /// Delete row ID; the ports that used it lose their DHCP.
    DhcpOptionsDel {
        id: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// Answer PORT's DHCPv4 from the options of row ID (none: stop).
    LspSetDhcpv4Options { port: String, id: Option<String> },
    /// The id of PORT's DHCPv4 options, if any.
    LspGetDhcpv4Options { port: String },
}

fn key_values(kv: &[String]) -> anyhow::Result<HashMap<String, String>> {
    kv.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("{s:?} is not KEY=VALUE"),
        })
        .collect()
}

pub async fn run(
    cmd: DhcpCmd,
    c: &mut switchyard_cli::nb_client::Nb,
    json: bool,
) -> anyhow::Result<()> {
    let created = match &cmd {
        DhcpCmd::DhcpOptionsCreate { .. } => Some(uuid::Uuid::new_v4().to_string()),
        _ => None,
    };
    match write(cmd, created.clone())? {
        Ok(w) => {
            let v = transact(c, w.ops, w.may_exist, w.if_exists).await?;
            match created {
                Some(id) => println!("{id}"),
                None => println!("ok (NB version {v})"),
            }
            Ok(())
        }
        Err(read) => {
            let db = get(c).await?;
            read_cmd(&db, read, json)
        }
    }
}

/// The NB write a command makes (`id` for a created row), or the command
/// back when it only reads.
pub fn write(cmd: DhcpCmd, id: Option<String>) -> anyhow::Result<Result<Write, DhcpCmd>> {
    let (op, if_exists) = match cmd {
        DhcpCmd::DhcpOptionsCreate { cidr, options } => (
            Op::DhcpOptionsAdd(pb::DhcpOptions {
                id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                cidr,
                options: key_values(&options)?,
                external_ids: Default::default(),
            }),
            false,
        ),
        DhcpCmd::DhcpOptionsSetOptions { id, options } => (
            Op::DhcpOptionsSet(pb::SetConfig {
                record: id,
                config: key_values(&options)?,
            }),
            false,
        ),
        DhcpCmd::DhcpOptionsDel { id, if_exists } => (Op::DhcpOptionsDel(id), if_exists),
        DhcpCmd::LspSetDhcpv4Options { port, id } => (
            Op::LspSetDhcpv4Options(pb::SetDhcpOptions {
                port,
                id: id.unwrap_or_default(),
            }),
            false,
        ),
        read => return Ok(Err(read)),
    };
    Ok(Ok(Write::new(vec![op], false, if_exists)))
}

fn read_cmd(db: &pb::NbDatabase, cmd: DhcpCmd, json: bool) -> anyhow::Result<()> {
    let row = |id: &str| {
        db.dhcp_options
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| anyhow::anyhow!("DHCP options {id:?} do not exist"))
    };
    match cmd {
        DhcpCmd::DhcpOptionsList => {
            if json {
                println!("{}", serde_json::to_string_pretty(&db.dhcp_options)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = db
                .dhcp_options
                .iter()
                .map(|d| {
                    let users = db.ports.iter().filter(|p| p.dhcpv4_options == d.id).count();
                    vec![d.id.clone(), d.cidr.clone(), users.to_string()]
                })
                .collect();
            table::print(&["ID", "CIDR", "PORTS"], &rows);
        }
        DhcpCmd::DhcpOptionsGetOptions { id } => {
            let d = row(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d.options)?);
                return Ok(());
            }
            let mut kv: Vec<_> = d.options.iter().collect();
            kv.sort();
            for (k, v) in kv {
                println!("{k}={v}");
            }
        }
        DhcpCmd::LspGetDhcpv4Options { port } => {
            let p =
                db.ports.iter().find(|p| p.name == port).ok_or_else(|| {
                    anyhow::anyhow!("logical switch port {port:?} does not exist")
                })?;
            if !p.dhcpv4_options.is_empty() {
                let cidr = row(&p.dhcpv4_options)
                    .map(|d| d.cidr.clone())
                    .unwrap_or_default();
                println!("{} ({cidr})", p.dhcpv4_options);
            }
        }
        other => unreachable!("write() took the writes: {other:?}"),
    }
    Ok(())
}
