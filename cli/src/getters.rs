//! ovn-nbctl's per-column readers (`lsp-get-addresses`, `lsp-get-up`, ...)
//! and `lrp-set-enabled`, printed as ovn-nbctl prints them: one value a line.

use crate::nb::{get, southbound, Write};
use switchyard_southbound::pb::{self, nb_op::Op, Mutator};

#[derive(clap::Subcommand, Debug)]
pub enum GetCmd {
    /// PORT's addresses, one entry a line.
    LspGetAddresses { port: String },
    /// PORT's port security, one entry a line.
    LspGetPortSecurity { port: String },
    /// "up" when a chassis has claimed PORT, else "down".
    LspGetUp { port: String },
    /// "enabled" or "disabled".
    LspGetEnabled { port: String },
    /// PORT's type ("" for a VIF, or router).
    LspGetType { port: String },
    /// PORT's options, one KEY=VALUE a line.
    LspGetOptions { port: String },
    /// The switch PORT is on.
    LspGetLs { port: String },
    /// "enabled" or "disabled".
    LrpGetEnabled { port: String },
    /// Enable or disable a router port (a disabled one takes and sends nothing).
    LrpSetEnabled {
        port: String,
        state: crate::EnabledArg,
    },
}

/// The NB write of a command, or the command back when it reads.
pub fn write(cmd: GetCmd) -> anyhow::Result<Result<Write, GetCmd>> {
    match cmd {
        GetCmd::LrpSetEnabled { port, state } => Ok(Ok(Write::new(
            vec![Op::DbMutate(pb::DbMutate {
                table: "Logical_Router_Port".into(),
                record: port,
                mutations: vec![pb::Mutation {
                    mutator: Mutator::Set as i32,
                    column: "enabled".into(),
                    values: vec![matches!(state, crate::EnabledArg::Enabled).to_string()],
                }],
            })],
            false,
            false,
        ))),
        read => Ok(Err(read)),
    }
}

fn enabled(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

pub async fn run(cmd: GetCmd, c: &mut switchyard_cli::nb_client::Nb) -> anyhow::Result<()> {
    let db = get(c).await?;
    let lsp = |name: &str| {
        db.ports
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| anyhow::anyhow!("logical switch port {name:?} does not exist"))
    };
    let lines: Vec<String> = match cmd {
        GetCmd::LspGetAddresses { port } => lsp(&port)?.addresses.clone(),
        GetCmd::LspGetPortSecurity { port } => lsp(&port)?.port_security.clone(),
        GetCmd::LspGetEnabled { port } => vec![enabled(lsp(&port)?.enabled).into()],
        GetCmd::LspGetType { port } => vec![lsp(&port)?.r#type.clone()],
        GetCmd::LspGetLs { port } => vec![lsp(&port)?.switch_name.clone()],
        GetCmd::LspGetOptions { port } => {
            let mut o: Vec<String> = lsp(&port)?
                .options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            o.sort();
            o
        }
        GetCmd::LspGetUp { port } => {
            lsp(&port)?;
            let sb = southbound(c).await?;
            let bound = sb
                .port_bindings
                .iter()
                .any(|b| b.logical_port == port && !b.chassis.is_empty());
            vec![if bound { "up" } else { "down" }.into()]
        }
        GetCmd::LrpGetEnabled { port } => {
            let p = db
                .router_ports
                .iter()
                .find(|p| p.name == port)
                .ok_or_else(|| anyhow::anyhow!("logical router port {port:?} does not exist"))?;
            vec![enabled(p.enabled).into()]
        }
        GetCmd::LrpSetEnabled { .. } => unreachable!("write() took the write"),
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
