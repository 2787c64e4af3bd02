//! Router commands (ovn-nbctl's vocabulary): routers, router ports, switch ports
//! of type router, static routes, and `lr-connect` that attaches a switch to a
//! router in one transaction. Also the router part of `syctl show`.

use crate::nb::{get, Write};
use crate::table;
use std::collections::BTreeMap;
use switchyard_southbound::pb::{self, nb_op::Op};

#[derive(clap::Subcommand, Debug)]
pub enum RouterCmd {
    /// Create a logical router.
    LrAdd {
        name: String,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete a logical router with its ports and routes.
    LrDel {
        name: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// List logical routers.
    LrList,
    /// Add a router port: `lrp-add ROUTER PORT MAC NETWORK...` (NETWORK = 10.0.0.1/24).
    LrpAdd {
        router: String,
        port: String,
        mac: String,
        #[arg(required = true)]
        networks: Vec<String>,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete a router port.
    LrpDel {
        port: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// Set a switch port's type ("" for a VIF, or router); `--router-port` sets the
    /// router-port option in the same transaction.
    LspSetType {
        port: String,
        #[arg(name = "TYPE")]
        ty: String,
        #[arg(long)]
        router_port: Option<String>,
    },
    /// Set a switch port's options, e.g. `lsp-set-options ls0-lr0 router-port=lr0-ls0`.
    LspSetOptions { port: String, options: Vec<String> },
    /// Attach SWITCH to ROUTER in one step: router port ROUTER-SWITCH with MAC and
    /// NETWORK, and switch port SWITCH-ROUTER of type router.
    LrConnect {
        router: String,
        switch: String,
        mac: String,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Add a static route: `lr-route-add ROUTER PREFIX NEXTHOP [PORT]`. Several
    /// nexthops for one prefix are used as ECMP.
    LrRouteAdd {
        router: String,
        prefix: String,
        nexthop: String,
        port: Option<String>,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete static routes of a prefix (one nexthop, or all of them).
    LrRouteDel {
        router: String,
        prefix: String,
        nexthop: Option<String>,
        #[arg(long)]
        if_exists: bool,
    },
    /// Static and connected routes of a router.
    LrRouteList { router: String },
}

fn parse_options(list: &[String]) -> anyhow::Result<std::collections::HashMap<String, String>> {
    list.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("option {kv:?} is not KEY=VALUE"))
        })
        .collect()
}

pub async fn run(
    cmd: RouterCmd,
    c: &mut switchyard_cli::nb_client::Nb,
    json: bool,
) -> anyhow::Result<()> {
    match write(cmd)? {
        Ok(w) => crate::nb::commit(c, w).await,
        Err(RouterCmd::LrList) => list_routers(&get(c).await?, json),
        Err(RouterCmd::LrRouteList { router }) => list_routes(&get(c).await?, &router, json),
        Err(other) => unreachable!("write() hands back only reads, not {other:?}"),
    }
}

/// The NB write a command makes, or the command back when it only reads.
pub fn write(cmd: RouterCmd) -> anyhow::Result<Result<Write, RouterCmd>> {
    let (ops, may_exist, if_exists) = match cmd {
        RouterCmd::LrAdd { name, may_exist } => (
            vec![Op::LrAdd(pb::LogicalRouter {
                name,
                enabled: true,
                ..Default::default()
            })],
            may_exist,
            false,
        ),
        RouterCmd::LrDel { name, if_exists } => (vec![Op::LrDel(name)], false, if_exists),
        RouterCmd::LrpAdd {
            router,
            port,
            mac,
            networks,
            may_exist,
        } => (
            vec![Op::LrpAdd(pb::LogicalRouterPort {
                name: port,
                router_name: router,
                mac,
                networks,
                enabled: true,
                ..Default::default()
            })],
            may_exist,
            false,
        ),
        RouterCmd::LrpDel { port, if_exists } => (vec![Op::LrpDel(port)], false, if_exists),
        RouterCmd::LspSetType {
            port,
            ty,
            router_port,
        } => {
            let mut ops = Vec::new();
            if let Some(lrp) = router_port {
                ops.push(Op::LspSetOptions(pb::SetOptions {
                    port: port.clone(),
                    options: [("router-port".to_string(), lrp)].into(),
                }));
            }
            ops.push(Op::LspSetType(pb::SetType { port, r#type: ty }));
            (ops, false, false)
        }
        RouterCmd::LspSetOptions { port, options } => (
            vec![Op::LspSetOptions(pb::SetOptions {
                port,
                options: parse_options(&options)?,
            })],
            false,
            false,
        ),
        RouterCmd::LrConnect {
            router,
            switch,
            mac,
            networks,
        } => {
            let lrp = format!("{router}-{switch}");
            (
                vec![
                    Op::LrpAdd(pb::LogicalRouterPort {
                        name: lrp.clone(),
                        router_name: router.clone(),
                        mac,
                        networks,
                        enabled: true,
                        ..Default::default()
                    }),
                    Op::LspAdd(pb::LogicalSwitchPort {
                        name: format!("{switch}-{router}"),
                        switch_name: switch,
                        addresses: vec!["router".into()],
                        enabled: true,
                        r#type: "router".into(),
                        options: [("router-port".to_string(), lrp)].into(),
                        ..Default::default()
                    }),
                ],
                false,
                false,
            )
        }
        RouterCmd::LrRouteAdd {
            router,
            prefix,
            nexthop,
            port,
            may_exist,
        } => (
            vec![Op::RouteAdd(pb::StaticRoute {
                router_name: router,
                prefix,
                nexthop,
                output_port: port.unwrap_or_default(),
            })],
            may_exist,
            false,
        ),
        RouterCmd::LrRouteDel {
            router,
            prefix,
            nexthop,
            if_exists,
        } => (
            vec![Op::RouteDel(pb::StaticRoute {
                router_name: router,
                prefix,
                nexthop: nexthop.unwrap_or_default(),
                output_port: String::new(),
            })],
            false,
            if_exists,
        ),
        read @ (RouterCmd::LrList | RouterCmd::LrRouteList { .. }) => return Ok(Err(read)),
    };
    Ok(Ok(Write::new(ops, may_exist, if_exists)))
}

fn list_routers(db: &pb::NbDatabase, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&db.routers)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = db
        .routers
        .iter()
        .map(|r| {
            let ports = db
                .router_ports
                .iter()
                .filter(|p| p.router_name == r.name)
                .count();
            let routes = db.routes.iter().filter(|x| x.router_name == r.name).count();
            vec![
                r.name.clone(),
                r.tunnel_key.to_string(),
                ports.to_string(),
                routes.to_string(),
            ]
        })
        .collect();
    table::print(&["NAME", "KEY", "PORTS", "STATIC ROUTES"], &rows);
    Ok(())
}

fn list_routes(db: &pb::NbDatabase, router: &str, json: bool) -> anyhow::Result<()> {
    if !db.routers.iter().any(|r| r.name == router) {
        anyhow::bail!("logical router {router:?} does not exist");
    }
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for p in db.router_ports.iter().filter(|p| p.router_name == router) {
        for n in &p.networks {
            let net = n
                .parse::<ipnet::Ipv4Net>()
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| n.clone());
            rows.push((net, "connected".into(), p.name.clone(), "connected".into()));
        }
    }
    let mut ecmp: BTreeMap<&str, usize> = BTreeMap::new();
    for r in db.routes.iter().filter(|r| r.router_name == router) {
        *ecmp.entry(&r.prefix).or_default() += 1;
    }
    for r in db.routes.iter().filter(|r| r.router_name == router) {
        let kind = if ecmp[r.prefix.as_str()] > 1 {
            "static ecmp"
        } else {
            "static"
        };
        let port = if r.output_port.is_empty() {
            "-".into()
        } else {
            r.output_port.clone()
        };
        rows.push((r.prefix.clone(), r.nexthop.clone(), port, kind.into()));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(
                |(p, n, o, k)| serde_json::json!({"prefix": p, "nexthop": n, "port": o, "kind": k}),
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(a, b, c, d)| vec![a, b, c, d])
        .collect();
    table::print(&["PREFIX", "NEXTHOP", "PORT", "KIND"], &rows);
    Ok(())
}

/// The routers part of `syctl show`, as text.
pub fn show_text(db: &pb::NbDatabase, sb: &pb::SbSnapshot) {
    for r in &db.routers {
        println!(
            "router {} key={}{}",
            r.name,
            r.tunnel_key,
            if r.enabled { "" } else { " (disabled)" }
        );
        for p in db.router_ports.iter().filter(|p| p.router_name == r.name) {
            let peer = db
                .ports
                .iter()
                .find(|l| l.r#type == "router" && l.options.get("router-port") == Some(&p.name))
                .map(|l| format!(" <-> switch {} port {}", l.switch_name, l.name))
                .unwrap_or_else(|| " (not attached)".into());
            println!("    port {} key={}{}", p.name, p.tunnel_key, peer);
            println!("        mac: {}  networks: {}", p.mac, p.networks.join(" "));
        }
        for x in db.routes.iter().filter(|x| x.router_name == r.name) {
            println!("    route {} via {}", x.prefix, x.nexthop);
        }
        for n in db.nats.iter().filter(|n| n.router_name == r.name) {
            println!(
                "    nat {} {} <-> {}",
                n.r#type, n.external_ip, n.logical_ip
            );
        }
        crate::lb::show_attached(db, |l| l.routers.contains(&r.name));
        let dp = sb
            .datapaths
            .iter()
            .find(|d| d.name == r.name)
            .map(|d| d.tunnel_key);
        for m in sb.mac_bindings.iter().filter(|m| Some(m.datapath) == dp) {
            println!(
                "    neighbour {} is {} on {} (learned)",
                switchyard_southbound::mac_binding_ip(m),
                switchyard_southbound::fmt_mac(m.mac),
                m.logical_port
            );
        }
    }
}

/// The routers part of `syctl show --json`.
pub fn show_json(db: &pb::NbDatabase) -> serde_json::Value {
    serde_json::json!(db
        .routers
        .iter()
        .map(|r| serde_json::json!({
            "name": r.name, "tunnel_key": r.tunnel_key, "enabled": r.enabled,
            "ports": db.router_ports.iter().filter(|p| p.router_name == r.name).collect::<Vec<_>>(),
            "routes": db.routes.iter().filter(|x| x.router_name == r.name).collect::<Vec<_>>(),
            "nats": db.nats.iter().filter(|x| x.router_name == r.name).collect::<Vec<_>>(),
            "load_balancers": db.load_balancers.iter().filter(|l| l.routers.contains(&r.name)).map(|l| &l.name).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}
