//! Load balancer and NAT commands, in ovn-nbctl's vocabulary: `lb-add LB VIP
//! BACKENDS [PROTOCOL]`, attachments to switches and routers, and router NAT
//! rules. northd validates everything; errors come back as they are.

use crate::nb::{get, Write};
use crate::table;
use switchyard_southbound::pb::{self, nb_op::Op};

#[derive(clap::Subcommand, Debug)]
pub enum LbCmd {
    /// Create load balancer LB with VIP (IP:PORT) -> BACKENDS ("IP:PORT,IP:PORT";
    /// "" for none yet), or add the VIP to it. `--may-exist` replaces the
    /// backends of an existing VIP (established connections to backends that
    /// remain are kept).
    LbAdd {
        lb: String,
        vip: String,
        backends: String,
        /// tcp or udp.
        #[arg(default_value = "tcp")]
        protocol: String,
        /// ClientIP session affinity, seconds (0: none).
        #[arg(long)]
        affinity_timeout: Option<u32>,
        /// Source address of hairpinned connections (default: the VIP).
        #[arg(long)]
        hairpin_snat_ip: Option<String>,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete load balancer LB, or only one of its VIPs.
    LbDel {
        lb: String,
        vip: Option<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// Load balancers with their VIPs, backends and attachments.
    LbList { lb: Option<String> },
    /// Serve load balancer LB to the ports of SWITCH.
    LsLbAdd {
        switch: String,
        lb: String,
        #[arg(long)]
        may_exist: bool,
    },
    /// Stop serving load balancer LB to the ports of SWITCH.
    LsLbDel {
        switch: String,
        lb: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// Load balancers attached to SWITCH.
    LsLbList { switch: String },
    /// Serve load balancer LB to every switch on ROUTER.
    LrLbAdd {
        router: String,
        lb: String,
        #[arg(long)]
        may_exist: bool,
    },
    /// Stop serving load balancer LB to the switches on ROUTER.
    LrLbDel {
        router: String,
        lb: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// Add a NAT rule: `lr-nat-add ROUTER snat|dnat|dnat_and_snat EXTERNAL_IP
    /// LOGICAL_IP` (a network for snat).
    LrNatAdd {
        router: String,
        #[arg(name = "TYPE")]
        ty: String,
        external_ip: String,
        logical_ip: String,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete NAT rules: all of ROUTER's, of one TYPE, or of one TYPE and IP
    /// (external IP, or the logical network of a snat rule).
    LrNatDel {
        router: String,
        #[arg(name = "TYPE")]
        ty: Option<String>,
        ip: Option<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// ROUTER's NAT rules: type, external IP, logical IP or network.
    LrNatList { router: String },
    /// Many VIPs in one transaction: FILE has lines "LB VIP BACKENDS [PROTOCOL]"
    /// ("-" for no backends; # comments); existing VIPs are replaced.
    LbImport {
        file: std::path::PathBuf,
        /// Also attach every load balancer in FILE to this switch.
        #[arg(long)]
        ls: Option<String>,
    },
}

fn attach(lb: String, switch: Option<String>, router: Option<String>) -> pb::LbAttach {
    pb::LbAttach {
        lb,
        switch_name: switch.unwrap_or_default(),
        router_name: router.unwrap_or_default(),
    }
}

pub async fn run(
    cmd: LbCmd,
    c: &mut switchyard_cli::nb_client::Nb,
    json: bool,
) -> anyhow::Result<()> {
    match write(cmd)? {
        Ok(w) => crate::nb::commit(c, w).await,
        Err(LbCmd::LbList { lb }) => {
            let db = get(c).await?;
            let lbs: Vec<&pb::LoadBalancer> = db
                .load_balancers
                .iter()
                .filter(|l| lb.as_ref().is_none_or(|n| *n == l.name))
                .collect();
            if let Some(n) = &lb {
                if lbs.is_empty() {
                    anyhow::bail!("load balancer {n:?} does not exist");
                }
            }
            list_lbs(&lbs, json)
        }
        Err(LbCmd::LsLbList { switch }) => {
            let db = get(c).await?;
            if !db.switches.iter().any(|s| s.name == switch) {
                anyhow::bail!("logical switch {switch:?} does not exist");
            }
            let lbs: Vec<&pb::LoadBalancer> = db
                .load_balancers
                .iter()
                .filter(|l| l.switches.contains(&switch))
                .collect();
            list_lbs(&lbs, json)
        }
        Err(LbCmd::LrNatList { router }) => list_nats(&get(c).await?, &router, json),
        Err(other) => unreachable!("write() hands back only reads, not {other:?}"),
    }
}

/// The NB write a command makes, or the command back when it only reads.
pub fn write(cmd: LbCmd) -> anyhow::Result<Result<Write, LbCmd>> {
    let (ops, may_exist, if_exists) = match cmd {
        LbCmd::LbAdd {
            lb,
            vip,
            backends,
            protocol,
            affinity_timeout,
            hairpin_snat_ip,
            may_exist,
        } => {
            let mut options = std::collections::HashMap::new();
            if let Some(a) = affinity_timeout {
                options.insert("affinity_timeout".to_string(), a.to_string());
            }
            if let Some(h) = hairpin_snat_ip {
                options.insert("hairpin_snat_ip".to_string(), h);
            }
            (
                vec![Op::LbAdd(pb::LoadBalancer {
                    name: lb,
                    protocol,
                    vips: [(vip, backends)].into(),
                    options,
                    ..Default::default()
                })],
                may_exist,
                false,
            )
        }
        LbCmd::LbDel { lb, vip, if_exists } => (
            vec![Op::LbDel(pb::LbDel {
                name: lb,
                vip: vip.unwrap_or_default(),
            })],
            false,
            if_exists,
        ),
        LbCmd::LsLbAdd {
            switch,
            lb,
            may_exist,
        } => (
            vec![Op::LbAttach(attach(lb, Some(switch), None))],
            may_exist,
            false,
        ),
        LbCmd::LsLbDel {
            switch,
            lb,
            if_exists,
        } => (
            vec![Op::LbDetach(attach(lb, Some(switch), None))],
            false,
            if_exists,
        ),
        LbCmd::LrLbAdd {
            router,
            lb,
            may_exist,
        } => (
            vec![Op::LbAttach(attach(lb, None, Some(router)))],
            may_exist,
            false,
        ),
        LbCmd::LrLbDel {
            router,
            lb,
            if_exists,
        } => (
            vec![Op::LbDetach(attach(lb, None, Some(router)))],
            false,
            if_exists,
        ),
        LbCmd::LrNatAdd {
            router,
            ty,
            external_ip,
            logical_ip,
            may_exist,
        } => (
            vec![Op::NatAdd(pb::NatRule {
                router_name: router,
                r#type: ty,
                external_ip,
                logical_ip,
            })],
            may_exist,
            false,
        ),
        LbCmd::LrNatDel {
            router,
            ty,
            ip,
            if_exists,
        } => (
            vec![Op::NatDel(pb::NatRule {
                router_name: router,
                r#type: ty.unwrap_or_default(),
                external_ip: ip.unwrap_or_default(),
                logical_ip: String::new(),
            })],
            false,
            if_exists,
        ),
        read @ (LbCmd::LbList { .. } | LbCmd::LsLbList { .. } | LbCmd::LrNatList { .. }) => {
            return Ok(Err(read))
        }
        LbCmd::LbImport { file, ls } => {
            let mut ops = import(&file)?;
            if let Some(sw) = ls {
                let names: std::collections::BTreeSet<String> = ops
                    .iter()
                    .filter_map(|o| match o {
                        Op::LbAdd(l) => Some(l.name.clone()),
                        _ => None,
                    })
                    .collect();
                ops.extend(
                    names
                        .into_iter()
                        .map(|n| Op::LbAttach(attach(n, Some(sw.clone()), None))),
                );
            }
            (ops, true, false)
        }
    };
    Ok(Ok(Write::new(ops, may_exist, if_exists)))
}

/// `syctl show` lines for the load balancers `attached` selects (a few VIPs
/// each; `lb-list` has them all).
pub fn show_attached(db: &pb::NbDatabase, attached: impl Fn(&pb::LoadBalancer) -> bool) {
    let lbs: Vec<&pb::LoadBalancer> = db.load_balancers.iter().filter(|l| attached(l)).collect();
    const MAX: usize = 8;
    for l in lbs.iter().take(MAX) {
        let mut vips: Vec<String> = l
            .vips
            .iter()
            .map(|(v, b)| {
                let n = b.split(',').filter(|x| !x.is_empty()).count();
                format!("{v} ({n} backends)")
            })
            .collect();
        vips.sort();
        let more = vips.len().saturating_sub(3);
        vips.truncate(3);
        if more > 0 {
            vips.push(format!("and {more} more"));
        }
        println!(
            "    load balancer {} {}: {}",
            l.name,
            l.protocol,
            vips.join(", ")
        );
    }
    if lbs.len() > MAX {
        println!(
            "    ... and {} more load balancers (syctl lb-list)",
            lbs.len() - MAX
        );
    }
}

fn import(file: &std::path::Path) -> anyhow::Result<Vec<Op>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let mut ops = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (lb, vip, backends, proto) = match f.as_slice() {
            [l, v, b] => (*l, *v, *b, "tcp"),
            [l, v, b, p] => (*l, *v, *b, *p),
            _ => anyhow::bail!(
                "{}:{}: use \"LB VIP BACKENDS [PROTOCOL]\"",
                file.display(),
                n + 1
            ),
        };
        let backends = if backends == "-" { "" } else { backends };
        ops.push(Op::LbAdd(pb::LoadBalancer {
            name: lb.into(),
            protocol: proto.into(),
            vips: [(vip.to_string(), backends.to_string())].into(),
            ..Default::default()
        }));
    }
    Ok(ops)
}

fn list_lbs(lbs: &[&pb::LoadBalancer], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(lbs)?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for l in lbs {
        let mut opts: Vec<String> = l.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        opts.sort();
        let attached: Vec<String> = l
            .switches
            .iter()
            .map(|s| format!("ls:{s}"))
            .chain(l.routers.iter().map(|r| format!("lr:{r}")))
            .collect();
        let mut vips: Vec<(&String, &String)> = l.vips.iter().collect();
        vips.sort();
        if vips.is_empty() {
            vips.push((&l.name, &l.name));
        }
        for (i, (vip, backends)) in vips.into_iter().enumerate() {
            let first = i == 0;
            let (vip, backends) = if vip == &l.name {
                ("-".to_string(), "-".to_string())
            } else if backends.is_empty() {
                (vip.clone(), "(none)".to_string())
            } else {
                (vip.clone(), backends.clone())
            };
            rows.push(vec![
                if first { l.name.clone() } else { String::new() },
                if first {
                    l.protocol.clone()
                } else {
                    String::new()
                },
                vip,
                backends,
                if first {
                    attached.join(",")
                } else {
                    String::new()
                },
                if first { opts.join(",") } else { String::new() },
            ]);
        }
    }
    table::print(
        &["LB", "PROTO", "VIP", "BACKENDS", "ATTACHED", "OPTIONS"],
        &rows,
    );
    Ok(())
}

fn list_nats(db: &pb::NbDatabase, router: &str, json: bool) -> anyhow::Result<()> {
    if !db.routers.iter().any(|r| r.name == router) {
        anyhow::bail!("logical router {router:?} does not exist");
    }
    let nats: Vec<&pb::NatRule> = db.nats.iter().filter(|n| n.router_name == router).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&nats)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = nats
        .iter()
        .map(|n| {
            vec![
                n.r#type.clone(),
                n.external_ip.clone(),
                n.logical_ip.clone(),
            ]
        })
        .collect();
    table::print(&["TYPE", "EXTERNAL_IP", "LOGICAL_IP"], &rows);
    Ok(())
}
