//! DNS record commands: `dns-add SWITCH NAME [ADDRESS...] [--srv ...]`,
//! `dns-del SWITCH [NAME]`, `dns-list [SWITCH]`. The switch's datapath answers
//! queries from its ports for these names (OVN keeps them in its DNS table;
//! here a record belongs to one switch). northd normalises and validates them.

use crate::nb::{get, Write};
use crate::table;
use switchyard_southbound::pb::{self, nb_op::Op};

// The variants are the command names (dns-add, dns-del, dns-list).
#[allow(clippy::enum_variant_names)]
#[derive(clap::Subcommand, Debug)]
pub enum DnsCmd {
    /// Give NAME (e.g. web.default.svc.cluster.local) A and AAAA records
    /// for the ADDRESSES, answered by the datapath to queries from SWITCH's
    /// ports; a name under the switch's other_config:dns_domain without a
    /// record gets NXDOMAIN, any other name goes on to its server.
    DnsAdd {
        switch: String,
        name: String,
        addresses: Vec<String>,
        /// An SRV entry "PRIORITY WEIGHT PORT TARGET" (or with colons:
        /// 0:100:80:web.default.svc.cluster.local); repeatable.
        #[arg(long, value_name = "ENTRY")]
        srv: Vec<String>,
        /// Seconds resolvers may cache the answer (default 30).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=86_400))]
        ttl: Option<u32>,
        /// Make NAME an alias of TARGET (a CNAME record; no ADDRESSES or
        /// --srv then). Resolvers follow it; a TARGET on the same switch is
        /// answered along with it.
        #[arg(long, value_name = "TARGET", conflicts_with_all = ["addresses", "srv"])]
        cname: Option<String>,
        /// Replace the record of the same name.
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete NAME's record from SWITCH, or every record of SWITCH.
    DnsDel {
        switch: String,
        name: Option<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// List the records of SWITCH, or of every switch.
    DnsList { switch: Option<String> },
}

pub async fn run(
    cmd: DnsCmd,
    c: &mut switchyard_cli::nb_client::Nb,
    json: bool,
) -> anyhow::Result<()> {
    match write(cmd)? {
        Ok(w) => crate::nb::commit(c, w).await,
        Err(DnsCmd::DnsList { switch }) => list(&get(c).await?, switch.as_deref(), json),
        Err(other) => unreachable!("write() hands back only reads, not {other:?}"),
    }
}

/// The NB write a command makes, or the command back when it only reads.
pub fn write(cmd: DnsCmd) -> anyhow::Result<Result<Write, DnsCmd>> {
    let (op, may_exist, if_exists) = match cmd {
        DnsCmd::DnsAdd {
            switch,
            name,
            addresses,
            srv,
            ttl,
            cname,
            may_exist,
        } => {
            if addresses.is_empty() && srv.is_empty() && cname.is_none() {
                anyhow::bail!("dns-add {name}: give at least one ADDRESS, --srv entry or --cname");
            }
            (
                Op::DnsAdd(pb::DnsRecord {
                    switch_name: switch,
                    name,
                    addresses,
                    srv,
                    ttl: ttl.unwrap_or_default(),
                    external_ids: Default::default(),
                    cname: cname.unwrap_or_default(),
                }),
                may_exist,
                false,
            )
        }
        DnsCmd::DnsDel {
            switch,
            name,
            if_exists,
        } => (
            Op::DnsDel(pb::DnsDel {
                switch_name: switch,
                name: name.unwrap_or_default(),
            }),
            false,
            if_exists,
        ),
        read @ DnsCmd::DnsList { .. } => return Ok(Err(read)),
    };
    Ok(Ok(Write::new(vec![op], may_exist, if_exists)))
}

fn list(db: &pb::NbDatabase, switch: Option<&str>, json: bool) -> anyhow::Result<()> {
    if let Some(s) = switch {
        if !db.switches.iter().any(|x| x.name == s) {
            anyhow::bail!("logical switch {s:?} does not exist");
        }
    }
    let recs: Vec<&pb::DnsRecord> = db
        .dns_records
        .iter()
        .filter(|r| switch.is_none_or(|s| r.switch_name == s))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&recs)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            let values: Vec<String> = r
                .addresses
                .iter()
                .cloned()
                .chain(r.srv.iter().map(|s| format!("SRV {s}")))
                .chain((!r.cname.is_empty()).then(|| format!("CNAME {}", r.cname)))
                .collect();
            vec![
                r.switch_name.clone(),
                r.name.clone(),
                if r.ttl == 0 {
                    "30".into()
                } else {
                    r.ttl.to_string()
                },
                values.join(", "),
            ]
        })
        .collect();
    table::print(&["SWITCH", "NAME", "TTL", "RECORDS"], &rows);
    Ok(())
}
