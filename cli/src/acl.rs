//! ACL commands, in ovn-nbctl's vocabulary: `acl-add SWITCH DIRECTION PRIORITY
//! MATCH ACTION`, `acl-del`, `acl-list`. northd parses and validates the match;
//! its errors (with the column) come back as they are.

use crate::nb::{get, Write};
use crate::table;
use switchyard_southbound::pb::{self, nb_op::Op};

// The variants are the command names (acl-add, acl-del, acl-list), as ovn-nbctl's.
#[allow(clippy::enum_variant_names)]
#[derive(clap::Subcommand, Debug)]
pub enum AclCmd {
    /// Add an ACL to SWITCH: DIRECTION from-lport (what its ports send) or
    /// to-lport (what they receive), PRIORITY 0-32767 (the highest matching
    /// one decides), MATCH such as 'outport == "pod2" && tcp.dst == {80, 443}',
    /// ACTION allow-related, allow or drop. Allowed connections are tracked:
    /// their replies pass without a rule. Traffic no ACL matches is allowed;
    /// a default deny is a low-priority drop ACL (e.g. 'outport == "pod2" && ip4').
    AclAdd {
        switch: String,
        direction: String,
        priority: u32,
        #[arg(name = "MATCH")]
        expr: String,
        action: String,
        /// A label shown by acl-list.
        #[arg(long)]
        name: Option<String>,
        /// Replace the action of an ACL with the same direction, priority and match.
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete ACLs: all of SWITCH's, of one DIRECTION, or the one with
    /// DIRECTION, PRIORITY and MATCH.
    AclDel {
        switch: String,
        direction: Option<String>,
        priority: Option<u32>,
        #[arg(name = "MATCH", requires = "priority")]
        expr: Option<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// List SWITCH's ACLs, highest priority first.
    AclList { switch: String },
}

pub async fn run(
    cmd: AclCmd,
    c: &mut switchyard_cli::nb_client::Nb,
    json: bool,
) -> anyhow::Result<()> {
    match write(cmd)? {
        Ok(w) => crate::nb::commit(c, w).await,
        Err(AclCmd::AclList { switch }) => list(&get(c).await?, &switch, json),
        Err(other) => unreachable!("write() hands back only reads, not {other:?}"),
    }
}

/// The NB write a command makes, or the command back when it only reads.
pub fn write(cmd: AclCmd) -> anyhow::Result<Result<Write, AclCmd>> {
    let (op, may_exist, if_exists) = match cmd {
        AclCmd::AclAdd {
            switch,
            direction,
            priority,
            expr,
            action,
            name,
            may_exist,
        } => (
            Op::AclAdd(pb::Acl {
                switch_name: switch,
                direction,
                priority,
                r#match: expr,
                action,
                name: name.unwrap_or_default(),
            }),
            may_exist,
            false,
        ),
        AclCmd::AclDel {
            switch,
            direction,
            priority,
            expr,
            if_exists,
        } => {
            if priority.is_some() && expr.is_none() {
                anyhow::bail!("acl-del with a PRIORITY needs the MATCH too");
            }
            (
                Op::AclDel(pb::AclDel {
                    switch_name: switch,
                    direction: direction.unwrap_or_default(),
                    priority: priority.unwrap_or_default(),
                    r#match: expr.unwrap_or_default(),
                }),
                false,
                if_exists,
            )
        }
        read @ AclCmd::AclList { .. } => return Ok(Err(read)),
    };
    Ok(Ok(Write::new(vec![op], may_exist, if_exists)))
}

fn list(db: &pb::NbDatabase, switch: &str, json: bool) -> anyhow::Result<()> {
    if !db.switches.iter().any(|s| s.name == switch) {
        anyhow::bail!("logical switch {switch:?} does not exist");
    }
    let mut acls: Vec<&pb::Acl> = db.acls.iter().filter(|a| a.switch_name == switch).collect();
    acls.sort_by(|a, b| {
        (&a.direction, std::cmp::Reverse(a.priority), &a.r#match).cmp(&(
            &b.direction,
            std::cmp::Reverse(b.priority),
            &b.r#match,
        ))
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&acls)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|a| {
            vec![
                a.direction.clone(),
                a.priority.to_string(),
                a.r#match.clone(),
                a.action.clone(),
                a.name.clone(),
            ]
        })
        .collect();
    table::print(&["DIRECTION", "PRIORITY", "MATCH", "ACTION", "NAME"], &rows);
    Ok(())
}
