//! syctl: build and inspect a Switchyard topology, drive a vswitchd, run a sandbox.
#![forbid(unsafe_code)]

mod acl;
mod chain;
mod cluster;
mod conn;
mod db;
mod demo;
mod dhcp;
mod dns;
mod getters;
mod k8s;
mod lb;
mod nb;
mod router;
mod sandbox;
mod sandbox_cli;
mod show;
mod table;
mod trace;
mod vswitch;

use clap::{Parser, Subcommand};
use sandbox_cli::SandboxCmd;
use std::path::PathBuf;
use switchyard_control::Request;
use switchyard_southbound::pb::{self, nb_op::Op};

const DEFAULT_SANDBOX_DIR: &str = "/run/switchyard-sandbox";

#[derive(Parser, Debug)]
#[command(
    name = "syctl",
    version,
    about = "Operate a Switchyard virtual network",
    after_help = "Several NB writes run as one transaction, all or nothing, when chained with `--` \
                  as with ovn-nbctl: syctl lsp-add ls0 x1 -- lsp-set-type x1 router -- lsp-set-addresses x1 router"
)]
struct Cli {
    /// NB API of switchyard-northd (default: the running sandbox's, else 127.0.0.1:6641).
    #[arg(long, env = "SYCTL_NB", global = true)]
    nb: Option<String>,
    /// Control socket of switchyard-vswitchd (default: the sandbox's, else /run/switchyard/vswitchd.sock).
    #[arg(long, env = "SYCTL_VSWITCHD", global = true)]
    vswitchd: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// After an NB write, return once northd compiled it into the SB (sb) or
    /// once every chassis runs it in its datapath (hv), as ovn-nbctl --wait.
    #[arg(long, global = true, value_enum, default_value = "none")]
    wait: nb::WaitLevel,
    /// With --wait: give up after this many seconds, naming the chassis that
    /// lag (0: wait as long as it takes).
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    timeout: u64,
    /// CA certificate (PEM) for a TLS northd (https://); with --tls-cert and
    /// --tls-key, syctl presents an operator certificate (default: the
    /// sandbox's, when talking to it).
    #[arg(long, env = "SYCTL_TLS_CA", global = true)]
    tls_ca: Option<PathBuf>,
    #[arg(long, env = "SYCTL_TLS_CERT", global = true)]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "SYCTL_TLS_KEY", global = true)]
    tls_key: Option<PathBuf>,
    /// An NB token (northd --nb-token-file) instead of an operator certificate.
    #[arg(long, env = "SYCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// While no northd accepts the connection, keep trying this long: rides
    /// through a northd restart or a standby taking over (0: try once).
    #[arg(
        long,
        global = true,
        default_value_t = 5.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    connect_timeout: f64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a logical switch.
    LsAdd {
        name: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete a logical switch and its ports.
    LsDel {
        name: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// List logical switches.
    LsList,
    /// Add a port to a switch. ovn-nbctl's third argument (PARENT TAG) does not
    /// exist here; this one is a short form of lsp-set-addresses ("MAC IP...",
    /// unknown, router), taken only when it reads as addresses.
    LspAdd {
        switch: String,
        port: String,
        addresses: Vec<String>,
        #[arg(long)]
        may_exist: bool,
    },
    /// Delete a switch port.
    LspDel {
        port: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// List switch ports (of one switch, or all).
    LspList { switch: Option<String> },
    /// Set a port's addresses; each argument is one "MAC IP..." entry or "unknown".
    LspSetAddresses {
        port: String,
        addresses: Vec<String>,
    },
    /// Set a port's port security; each argument is one "MAC [IP[/LEN]...]" entry.
    LspSetPortSecurity {
        port: String,
        addresses: Vec<String>,
    },
    /// Enable or disable a port.
    LspSetEnabled { port: String, state: EnabledArg },
    /// The topology as a tree, with bindings and chassis.
    Show {
        /// text, dot (Graphviz) or svg (rendered with Graphviz's dot).
        #[arg(long, value_enum, default_value = "text")]
        format: ShowFormat,
    },
    /// Logical flows, by datapath and stage.
    LflowList { switch: Option<String> },
    /// Registered chassis.
    ChassisList,
    /// Remove a chassis that left: its registration and port claims (the other
    /// chassis drop their tunnel to it). A running vswitchd registers again.
    ChassisDel {
        name: String,
        #[arg(long)]
        if_exists: bool,
    },
    /// Walk a packet through the logical pipeline: `syctl trace [SWITCH] 'inport == "p1" && ip4.dst == 10.0.0.3 && tcp.dst == 80'`.
    Trace {
        /// The switch (optional: the inport determines it; checked when given).
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// One line per datapath.
        #[arg(long, conflicts_with_all = ["minimal", "detailed"])]
        summary: bool,
        /// Only what happens to the packet: its translation and where it goes.
        #[arg(long, conflicts_with = "detailed")]
        minimal: bool,
        /// Every stage with its flow and northd source (the default).
        #[arg(long)]
        detailed: bool,
        /// The ct_state to assume at each conntrack step, in order, as
        /// ovn-trace: FLAGS is a list of trk, new, est, rel, rpl, inv
        /// (`--ct new` for a new connection; `--ct new --ct est` for a new
        /// connection to a VIP that stateful flows then see established).
        /// Steps beyond the list take the last; default trk,est.
        #[arg(long, value_name = "FLAGS")]
        ct: Vec<String>,
        /// A new connection to a VIP goes to this backend instead of the one
        /// the Maglev hash picks (ovn-trace's --lb-dst).
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_lb_dst)]
        lb_dst: Option<(u32, Option<u16>)>,
    },
    #[command(flatten)]
    Router(router::RouterCmd),
    #[command(flatten)]
    Lb(lb::LbCmd),
    #[command(flatten)]
    Acl(acl::AclCmd),
    #[command(flatten)]
    Dns(dns::DnsCmd),
    #[command(flatten)]
    Dhcp(dhcp::DhcpCmd),
    #[command(flatten)]
    Db(db::DbCmd),
    #[command(flatten)]
    Get(getters::GetCmd),
    /// Kubernetes manifests: `k8s apply -f FILE|DIR` keeps the NB in line
    /// with their Services and EndpointSlices, `k8s delete -f` removes that.
    #[command(subcommand)]
    K8s(k8s::K8sCmd),
    /// Talk to the local switchyard-vswitchd.
    #[command(subcommand)]
    Vswitch(VswitchCmd),
    /// A whole deployment on this machine (namespaces as pods).
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Shell completions on stdout, e.g. `syctl completions bash >
    /// /usr/share/bash-completion/completions/syctl`.
    Completions { shell: clap_complete::Shell },
    /// Man pages of syctl and every command (syctl.1, syctl-lsp-add.1, ...)
    /// written into DIR.
    Man {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ShowFormat {
    Text,
    Dot,
    Svg,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum EnabledArg {
    Enabled,
    Disabled,
}

#[derive(Subcommand, Debug)]
enum VswitchCmd {
    /// Bind a local interface to a logical port (a port just added to the NB
    /// is waited for, up to 5 s, while it reaches vswitchd).
    PortAdd { iface: String, lport: String },
    /// Unbind a local interface.
    PortDel { iface: String },
    /// Set a bound port's options: rxq-affinity=QUEUE:CORE,... pins its
    /// queues to the PMDs on those cores (rxq-affinity= unpins).
    PortSet {
        iface: String,
        /// KEY=VALUE (rxq-affinity).
        #[arg(required = true)]
        options: Vec<String>,
    },
    /// Each PMD's receive queues and their share of its cycles.
    PmdRxqShow,
    /// Place every unpinned receive queue again by the cycles it took
    /// (the busiest apart); moved ports are reopened on their new PMDs.
    PmdRxqRebalance,
    /// Bound ports with counters.
    PortList,
    /// PMD counters: packets, cache hits, cycles per packet, drops by reason.
    PmdStats {
        #[arg(long)]
        clear: bool,
    },
    /// Megaflow and exact-match cache entries, with masks, hits and idle time.
    DpFlows,
    /// Geneve tunnels to other chassis, with packet/byte/error counters.
    TunnelList,
    /// Connection and table state.
    Status,
    /// Conntrack entries: both directions' tuples (they differ when NATed),
    /// state, packets, idle time.
    CtList {
        /// Only this zone (a switch's datapath key for load balancing, a
        /// router's for its NAT, 0x8000000N for stateful flows; decimal or 0x hex).
        #[arg(long, value_parser = parse_zone)]
        zone: Option<u32>,
    },
    /// Forget every tracked connection.
    CtFlush,
    /// Conntrack counters: entries, inserts/s, drops when full, by state.
    CtStats,
    /// Trace a microflow through this vswitchd's live tables and cache (nothing is sent).
    Trace {
        microflow: String,
        /// One line per datapath.
        #[arg(long, conflicts_with = "minimal")]
        summary: bool,
        /// Only what happens to the packet.
        #[arg(long)]
        minimal: bool,
    },
}

fn main() {
    // `syctl ... | head` ends quietly, as a Unix tool should. Not by giving
    // SIGPIPE back its default action: that also killed syctl, silently, when
    // a peer closed a gRPC connection under hyper's writev (a plaintext
    // client on a TLS port). A write to a closed stdout panics in println!;
    // this makes that panic (and clap_complete's) a quiet exit with the
    // shell's SIGPIPE status.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        // println! says "failed printing to stdout: Broken pipe", clap_complete
        // "failed to write completion file: ... BrokenPipe ...".
        if msg.contains("Broken pipe") || msg.contains("BrokenPipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let chain = chain::split_chain(&args);
    let parse = |seg: &[String]| {
        Cli::try_parse_from(std::iter::once("syctl".to_string()).chain(seg.iter().cloned()))
            .unwrap_or_else(|e| e.exit())
    };
    if chain.iter().any(Vec::is_empty) {
        eprintln!("syctl: an empty command in a `--` chain (syctl CMD ARGS -- CMD ARGS ...)");
        std::process::exit(2);
    }
    let clis: Vec<(String, Cli)> = chain
        .iter()
        .map(|seg| (chain::command_name(seg), parse(seg)))
        .collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syctl: {e}");
            std::process::exit(1);
        }
    };
    let result = if clis.len() == 1 {
        let (_, cli) = clis.into_iter().next().expect("one command");
        rt.block_on(run(cli))
    } else {
        rt.block_on(run_chain(clis))
    };
    if let Err(e) = result {
        eprintln!("syctl: {e:#}");
        let text = format!("{e:#}");
        if text.contains("h2 protocol error") || text.trim_end() == "transport error" {
            // What a plaintext client gets from a TLS port.
            eprintln!("syctl: (is northd serving TLS? then use https:// and --tls-ca)");
        }
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match &cli.cmd {
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "syctl", &mut std::io::stdout());
            return Ok(());
        }
        Cmd::Man { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(Cli::command(), dir)?;
            println!("man pages written to {}", dir.display());
            return Ok(());
        }
        Cmd::Vswitch(VswitchCmd::Trace {
            microflow,
            summary,
            minimal,
        }) => {
            let req = Request::Trace {
                microflow: microflow.clone(),
            };
            return match switchyard_control::call(&cli.vswitchd_sock(), &req)? {
                switchyard_control::Response::Trace(r) => {
                    trace::print(&r, trace::Level::of(*summary, *minimal), json)
                }
                switchyard_control::Response::Error(e) => anyhow::bail!("{e}"),
                other => anyhow::bail!("unexpected answer {other:?}"),
            };
        }
        Cmd::Vswitch(v) => {
            let req = match v {
                VswitchCmd::PortAdd { iface, lport } => Request::PortAdd {
                    iface: iface.clone(),
                    lport: lport.clone(),
                },
                VswitchCmd::PortDel { iface } => Request::PortDel {
                    iface: iface.clone(),
                },
                VswitchCmd::PortList => Request::PortList,
                VswitchCmd::PortSet { iface, options } => {
                    let mut rxq_affinity = None;
                    for o in options {
                        match o.split_once('=') {
                            Some(("rxq-affinity", v)) => rxq_affinity = Some(v.to_string()),
                            _ => anyhow::bail!(
                                "port-set: unknown option {o:?} (known: rxq-affinity=QUEUE:CORE,...)"
                            ),
                        }
                    }
                    Request::PortSet {
                        iface: iface.clone(),
                        rxq_affinity: rxq_affinity.unwrap_or_default(),
                    }
                }
                VswitchCmd::PmdRxqShow => Request::PmdRxqShow,
                VswitchCmd::PmdRxqRebalance => Request::PmdRxqRebalance,
                VswitchCmd::PmdStats { clear } => Request::PmdStats { clear: *clear },
                VswitchCmd::DpFlows => Request::DpFlows,
                VswitchCmd::TunnelList => Request::TunnelList,
                VswitchCmd::Status => Request::Status,
                VswitchCmd::CtList { zone } => Request::CtList { zone: *zone },
                VswitchCmd::CtFlush => Request::CtFlush,
                VswitchCmd::CtStats => Request::CtStats,
                VswitchCmd::Trace { .. } => unreachable!("handled above"),
            };
            return vswitch::run(&cli.vswitchd_sock(), req, json);
        }
        Cmd::Sandbox(s) => {
            return match s {
                SandboxCmd::Up { pods, o } => {
                    let st = sandbox::up(&o.opts(), *pods).await?;
                    let switches: Vec<String> = st
                        .switches
                        .iter()
                        .map(|s| format!("{} ({})", s.name, s.subnet))
                        .collect();
                    println!(
                        "sandbox up: {} pods on {}{}; NB {}",
                        st.pods.len(),
                        switches.join(", "),
                        st.router
                            .as_ref()
                            .map(|r| format!(" joined by router {r}"))
                            .unwrap_or_default(),
                        st.nb
                    );
                    sandbox::status(&o.opts(), json)
                }
                SandboxCmd::Status { o } => sandbox::status(&o.opts(), json),
                SandboxCmd::Restart { daemon, kill, o } => {
                    sandbox::restart(&o.opts(), daemon, *kill).await?;
                    println!("{daemon} restarted");
                    Ok(())
                }
                SandboxCmd::CniInstall {
                    conf_dir,
                    bin_dir,
                    cni_version,
                    chain,
                    o,
                } => {
                    let o = o.opts();
                    let mut st = sandbox::State::load(&o.dir).ok_or_else(|| {
                        anyhow::anyhow!("no sandbox at {}: syctl sandbox up first", o.dir.display())
                    })?;
                    for f in sandbox::cni::install(&mut st, conf_dir, bin_dir, cni_version, chain)?
                    {
                        println!("wrote {}", f.display());
                    }
                    Ok(())
                }
                SandboxCmd::Down { o } => {
                    let swept = sandbox::down(&o.opts())?;
                    println!(
                        "sandbox down: everything under prefix {} removed",
                        swept
                            .iter()
                            .map(|p| format!("{p:?}"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    );
                    Ok(())
                }
                SandboxCmd::Demo {
                    pods,
                    seconds,
                    keep,
                    o,
                } => demo::run(&o.opts(), *pods, *seconds, *keep).await,
            };
        }
        _ => {}
    }
    let mut c = nb::connect(&cli.nb_addr(), cli.connect_within()?, &cli.creds()?).await?;
    let (wait, timeout) = (cli.wait, cli.timeout);
    let cmd = match nb_write(cli.cmd)? {
        Ok(w) => {
            let v = nb::transact(&mut c, w.ops, w.may_exist, w.if_exists).await?;
            return nb::committed(&mut c, v, wait, timeout).await;
        }
        Err(read) => read,
    };
    match cmd {
        Cmd::LsList => nb::print_switches(&nb::get(&mut c).await?, json)?,
        Cmd::LspList { switch } => {
            nb::print_ports(&nb::get(&mut c).await?, switch.as_deref(), json)?
        }
        Cmd::Show { format } => {
            let db = nb::get(&mut c).await?;
            let sb = nb::southbound(&mut c).await?;
            match format {
                ShowFormat::Text => {
                    let applied = nb::applied(&mut c, db.version, "", 0).await?;
                    show::show(&db, &sb, &applied, json)?
                }
                ShowFormat::Dot => print!("{}", show::show_dot(&db, &sb)),
                ShowFormat::Svg => {
                    use std::io::Write;
                    let mut child = std::process::Command::new("dot")
                        .arg("-Tsvg")
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::inherit())
                        .spawn()
                        .map_err(|e| anyhow::anyhow!("cannot run Graphviz's dot ({e}); install graphviz or use --format dot"))?;
                    child
                        .stdin
                        .take()
                        .expect("piped")
                        .write_all(show::show_dot(&db, &sb).as_bytes())?;
                    if !child.wait()?.success() {
                        anyhow::bail!("dot failed to render the topology");
                    }
                }
            }
        }
        Cmd::LflowList { switch } => {
            nb::lflow_list(&nb::southbound(&mut c).await?, switch.as_deref(), json)?
        }
        Cmd::ChassisList => nb::chassis_list(&nb::southbound(&mut c).await?, json)?,
        Cmd::ChassisDel { name, if_exists } => {
            let r = c
                .delete_chassis(pb::DeleteChassisRequest { name, if_exists })
                .await
                .map_err(|s| anyhow::anyhow!("{}", s.message()))?;
            println!("ok (SB version {})", r.into_inner().version);
        }
        Cmd::Trace {
            args,
            summary,
            minimal,
            detailed: _,
            ct,
            lb_dst,
        } => {
            let (switch, expr) = match args.as_slice() {
                [e] => (None, e.as_str()),
                [s, e] => (Some(s.as_str()), e.as_str()),
                _ => anyhow::bail!("usage: syctl trace [SWITCH] MICROFLOW"),
            };
            let sb = nb::southbound(&mut c).await?;
            let ct = switchyard_datapath::inspect::trace::CtAssume::parse(&ct)
                .map_err(|e| anyhow::anyhow!(e))?;
            let r = switchyard_datapath::inspect::trace::logical_lb_dst(&sb, expr, &ct, lb_dst)
                .map_err(|e| anyhow::anyhow!("{}", e.render(expr)))?
                .map_err(|e| anyhow::anyhow!(e))?;
            if let Some(s) = switch {
                if r.datapath != s {
                    anyhow::bail!(
                        "inport \"{}\" is on switch {:?}, not {s:?}",
                        r.inport,
                        r.datapath
                    );
                }
            }
            trace::print(&r, trace::Level::of(summary, minimal), json)?;
        }
        Cmd::Router(r) => router::run(r, &mut c, json).await?,
        Cmd::Lb(l) => lb::run(l, &mut c, json).await?,
        Cmd::Acl(a) => acl::run(a, &mut c, json).await?,
        Cmd::Dns(d) => dns::run(d, &mut c, json).await?,
        Cmd::Dhcp(d) => dhcp::run(d, &mut c, json).await?,
        Cmd::Get(g) => getters::run(g, &mut c).await?,
        Cmd::K8s(k) => k8s::run(k, &mut c).await?,
        Cmd::Db(d) => db::run(d, &mut c).await?,
        other => unreachable!("nb_write() took the writes, run() the rest: {other:?}"),
    }
    Ok(())
}

/// The NB write a command makes, or the command back when it does not write.
// The command handed back is the parsed command line, moved once per run:
// boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn nb_write(cmd: Cmd) -> anyhow::Result<Result<nb::Write, Cmd>> {
    let w = |ops: Vec<Op>, may_exist: bool, if_exists: bool| {
        Ok(Ok(nb::Write::new(ops, may_exist, if_exists)))
    };
    match cmd {
        Cmd::LsAdd {
            name,
            subnet,
            may_exist,
        } => w(
            vec![Op::LsAdd(pb::LogicalSwitch {
                name,
                subnet: subnet.unwrap_or_default(),
                ..Default::default()
            })],
            may_exist,
            false,
        ),
        Cmd::LsDel { name, if_exists } => w(vec![Op::LsDel(name)], false, if_exists),
        Cmd::LspAdd {
            switch,
            port,
            addresses,
            may_exist,
        } => {
            check_short_addresses(&addresses)?;
            w(
                vec![Op::LspAdd(pb::LogicalSwitchPort {
                    name: port,
                    switch_name: switch,
                    addresses,
                    enabled: true,
                    ..Default::default()
                })],
                may_exist,
                false,
            )
        }
        Cmd::LspDel { port, if_exists } => w(vec![Op::LspDel(port)], false, if_exists),
        Cmd::LspSetAddresses { port, addresses } => w(
            vec![Op::LspSetAddresses(pb::SetAddresses { port, addresses })],
            false,
            false,
        ),
        Cmd::LspSetPortSecurity { port, addresses } => w(
            vec![Op::LspSetPortSecurity(pb::SetAddresses { port, addresses })],
            false,
            false,
        ),
        Cmd::LspSetEnabled { port, state } => {
            let enabled = matches!(state, EnabledArg::Enabled);
            w(
                vec![Op::LspSetEnabled(pb::SetEnabled { port, enabled })],
                false,
                false,
            )
        }
        Cmd::Router(r) => router::write(r).map(|x| x.map_err(Cmd::Router)),
        Cmd::Lb(l) => lb::write(l).map(|x| x.map_err(Cmd::Lb)),
        Cmd::Acl(a) => acl::write(a).map(|x| x.map_err(Cmd::Acl)),
        Cmd::Dns(d) => dns::write(d).map(|x| x.map_err(Cmd::Dns)),
        Cmd::Db(d) => db::write(d).map(|x| x.map_err(Cmd::Db)),
        Cmd::Get(g) => getters::write(g).map(|x| x.map_err(Cmd::Get)),
        other => Ok(Err(other)),
    }
}

/// `lsp-add SWITCH PORT [ADDRESS...]`: the short form of addresses, taken only
/// when every argument reads as one, since ovn-nbctl puts PARENT TAG there.
fn check_short_addresses(addresses: &[String]) -> anyhow::Result<()> {
    for a in addresses {
        let first = a.split_whitespace().next().unwrap_or("");
        // MAC-shaped is enough here: northd says what is wrong with a bad one.
        let is_mac = first.split(':').count() == 6 && first.split(':').all(|h| h.len() == 2);
        if !(is_mac || matches!(first, "unknown" | "router" | "dynamic")) {
            anyhow::bail!(
                "lsp-add: {a:?} is not an address (\"MAC IP...\", unknown, router, dynamic); \
                 ovn-nbctl's PARENT TAG (container ports) do not exist in Switchyard: \
                 add the port, then `-- lsp-set-addresses PORT ADDRESS...`"
            );
        }
    }
    Ok(())
}

/// Runs a `--` chain: every command must be an NB write; all of them go in one
/// transaction, applied whole or not at all.
async fn run_chain(clis: Vec<(String, Cli)>) -> anyhow::Result<()> {
    let addr = clis[0].1.nb_addr();
    let within = clis[0].1.connect_within()?;
    let creds = clis[0].1.creds()?;
    // --wait and --timeout apply to the whole chain (written on any command).
    let wait = clis.iter().map(|(_, c)| c.wait).max().unwrap_or_default();
    let timeout = clis[0].1.timeout;
    let mut writes = Vec::new();
    for (i, (name, cli)) in clis.into_iter().enumerate() {
        match nb_write(cli.cmd)? {
            Ok(w) => writes.push(w),
            Err(_) => anyhow::bail!(
                "command {} of the chain, {name:?}, does not write the NB: only NB writes chain with `--` (run it on its own)",
                i + 1
            ),
        }
    }
    let mut c = nb::connect(&addr, within, &creds).await?;
    let v = nb::transact_all(&mut c, writes).await?;
    nb::committed(&mut c, v, wait, timeout).await
}

/// `--lb-dst IP[:PORT]`.
fn parse_lb_dst(s: &str) -> Result<(u32, Option<u16>), String> {
    let (ip, port) = match s.split_once(':') {
        Some((i, p)) => (
            i,
            Some(p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}"))?),
        ),
        None => (s, None),
    };
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|e| format!("{ip:?} is not an IPv4 address: {e}"))?;
    Ok((u32::from(ip), port))
}

/// A conntrack zone, decimal or `0x` hex (stateful zones print in hex).
fn parse_zone(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("zone {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsp_add_takes_addresses_only_where_they_cannot_be_a_parent_name() {
        for ok in [
            "0a:00:00:00:00:01 10.0.0.1",
            "zz:00:00:00:00:01",
            "unknown",
            "router",
            "dynamic",
        ] {
            assert!(check_short_addresses(&[ok.to_string()]).is_ok(), "{ok}");
        }
        for bad in [
            "lsp-set-type",
            "parent1",
            "0a:00:00:00:01 10.0.0.1",
            "10.0.0.1",
        ] {
            let e = check_short_addresses(&[bad.to_string()])
                .unwrap_err()
                .to_string();
            assert!(e.contains("lsp-set-addresses"), "{e}");
        }
    }
}
