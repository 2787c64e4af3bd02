//! The switchyard-vswitchd daemon: the chassis agent, its control socket and its
//! PMD threads, until SIGINT/SIGTERM.

use clap::Parser;
use std::path::PathBuf;
use switchyard_vswitch::agent::{self, IdlePolicy};
use switchyard_vswitch::control::{Request, Response};
use switchyard_vswitch::sys::xdp::AttachMode;
use switchyard_vswitch::sys::xsk::XskOptions;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser, Debug)]
#[command(
    name = "switchyard-vswitchd",
    version,
    about = "Switchyard's chassis agent and AF_XDP datapath"
)]
struct Args {
    /// Configuration file: every flag is also a key (`nb-listen = "..."`),
    /// the command line wins; a missing file at the default path is fine.
    #[arg(long, default_value = "/etc/switchyard/vswitchd.toml")]
    config: PathBuf,
    /// Chassis name (default: the hostname).
    #[arg(long)]
    chassis: Option<String>,
    /// Southbound API of northd.
    #[arg(long, default_value = "http://127.0.0.1:6642")]
    sb: String,
    /// CA certificate (PEM) northd's certificate is checked against; with
    /// --tls-cert and --tls-key the SB connection is mutual TLS, the chassis
    /// known by its certificate (CN = --chassis, OU = chassis).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// This chassis's certificate (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// This chassis's private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Tunnel endpoint IP this chassis announces.
    #[arg(long, default_value = "127.0.0.1")]
    encap_ip: String,
    /// Underlay interface for Geneve tunnels to other chassis (its address is
    /// --encap-ip). Pods' MTU must leave 100 bytes for the encapsulation.
    #[arg(long)]
    underlay: Option<String>,
    /// Directory for persisted bindings.
    #[arg(long, default_value = "/var/lib/switchyard/vswitchd")]
    state_dir: PathBuf,
    /// Control socket path.
    #[arg(long, default_value = "/run/switchyard/vswitchd.sock")]
    control_sock: PathBuf,
    /// Cores of the PMD threads, one pinned thread per core: a list with
    /// ranges ("2,3", "0-3"). Ports go to the PMD with the fewest; frames
    /// for a port another PMD owns are handed to it. One unpinned PMD when
    /// omitted.
    #[arg(long)]
    pmd_cores: Option<String>,
    /// Rebalance the PMDs' receive queues by load, every
    /// --pmd-auto-lb-interval, when the busiest PMD is loaded and the
    /// placement relieves it enough (OVS's pmd-auto-lb).
    #[arg(long, env = "SWITCHYARD_PMD_AUTO_LB")]
    pmd_auto_lb: bool,
    /// Seconds between --pmd-auto-lb checks (1-3600).
    #[arg(long, env = "SWITCHYARD_PMD_AUTO_LB_INTERVAL", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pmd_auto_lb_interval: u64,
    /// Busy percentage of the busiest PMD below which --pmd-auto-lb does
    /// nothing (0-100).
    #[arg(long, env = "SWITCHYARD_PMD_AUTO_LB_LOAD", default_value_t = 95,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pmd_auto_lb_load_threshold: u32,
    /// Percentage by which a rebalance must lower the busiest PMD's load
    /// for --pmd-auto-lb to move queues (0-100).
    #[arg(long, env = "SWITCHYARD_PMD_AUTO_LB_IMPROVEMENT", default_value_t = 25,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pmd_auto_lb_improvement_threshold: u32,
    /// What an idle PMD does.
    #[arg(long, value_enum, default_value = "adaptive")]
    idle: IdlePolicy,
    /// Adaptive idle: microseconds the PMD keeps polling after the last
    /// packet before it blocks (latency of request-response traffic against
    /// CPU when traffic is sparse; 0: block after a short streak of empty polls).
    #[arg(long, env = "SWITCHYARD_IDLE_SPIN_US", default_value_t = 200)]
    idle_spin_us: u64,
    /// XDP attach mode (auto: native on devices with a driver hook, generic
    /// on virtual interfaces such as veth, where it measured faster).
    #[arg(long, value_enum, env = "SWITCHYARD_XDP_MODE", default_value = "auto")]
    xdp_mode: XdpModeArg,
    /// UMEM frames (2 KiB each) per interface queue.
    #[arg(long, default_value_t = 4096)]
    umem_frames: u32,
    /// Prometheus metrics address (GET /metrics); off when omitted.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Exact-match cache entries per PMD (rounded up to a power of two).
    #[arg(long, default_value_t = switchyard_vswitch::pmd::EMC_ENTRIES as u64,
          value_parser = clap::value_parser!(u64).range(2..=1_048_576))]
    emc_entries: u64,
    /// Megaflow (wildcard) cache entries per PMD; 0 turns the cache off
    /// (every exact-match miss walks the pipeline).
    #[arg(long, default_value_t = switchyard_vswitch::pmd::MEGAFLOW_ENTRIES as u64,
          value_parser = clap::value_parser!(u64).range(0..=4_194_304))]
    megaflow_entries: u64,
    /// One in this many megaflow hits is copied into the exact-match cache
    /// (OVS's emc-insert-inv-prob; 1: every hit; 0: the exact-match cache
    /// is off, lookups too: for nodes with many more flows than it holds).
    #[arg(long, default_value_t = switchyard_vswitch::pmd::EMC_INSERT_INV_PROB)]
    emc_insert_inv_prob: u32,
    /// Conntrack capacity (connections) per PMD; when full, new connections are
    /// dropped and counted (ct_full) while established ones keep flowing.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(16..=50_000_000))]
    ct_capacity: u64,
    /// Answers the datapath generates (ICMP errors and echo replies, TCP
    /// RSTs) per second per PMD; past it they are not sent and counted
    /// (icmp_rate_limited). 0: unlimited.
    #[arg(long, default_value_t = switchyard_vswitch::pmd::ICMP_RATE)]
    icmp_rate: u32,
    /// The burst of answers allowed above the rate.
    #[arg(long, default_value_t = switchyard_vswitch::pmd::ICMP_BURST)]
    icmp_burst: u32,
    /// DNS answers the datapath gives one port per second; past it queries
    /// it would answer are dropped and counted (dns_rate_limited). 0: unlimited.
    #[arg(long, default_value_t = switchyard_vswitch::pmd::DNS_RATE)]
    dns_rate: u32,
    /// The burst of DNS answers allowed above the rate.
    #[arg(long, default_value_t = switchyard_vswitch::pmd::DNS_BURST)]
    dns_burst: u32,
    /// Print this manual page (roff, section 8) and exit (the package's man page).
    #[arg(long, hide = true)]
    man_page: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

/// `--pmd-cores`: a list of cores and ranges ("2,3", "0-3,6"), each once,
/// each on this machine.
fn parse_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--pmd-cores {s:?}: {x:?} is not a core number"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b {
            anyhow::bail!("--pmd-cores {s:?}: range {part:?} runs backwards");
        }
        for c in a..=b {
            if c >= n {
                anyhow::bail!(
                    "--pmd-cores {s:?}: core {c}: this machine has cores 0..{}",
                    n - 1
                );
            }
            if cores.contains(&c) {
                anyhow::bail!("--pmd-cores {s:?}: core {c} is given twice");
            }
            cores.push(c);
        }
    }
    if cores.is_empty() {
        anyhow::bail!("--pmd-cores {s:?}: no core given");
    }
    Ok(cores)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    let argv = switchyard_southbound::config::args_with_config(
        std::env::args_os(),
        std::path::Path::new("/etc/switchyard/vswitchd.toml"),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let args = Args::parse_from(argv);
    if args.man_page {
        use clap::CommandFactory;
        return Ok(switchyard_southbound::config::print_man_page(
            Args::command(),
        )?);
    }
    if args.config.exists() {
        tracing::info!(config = %args.config.display(), "read configuration file");
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    if args.umem_frames < 256 || !args.umem_frames.is_power_of_two() {
        anyhow::bail!(
            "--umem-frames {}: use a power of two of at least 256",
            args.umem_frames
        );
    }
    let cfg = agent::Config {
        chassis: args.chassis.clone().unwrap_or_else(|| hostname.clone()),
        hostname,
        encap_ip: args.encap_ip.clone(),
        sb: args.sb.clone(),
        tls: switchyard_southbound::tls::TlsFiles::from_flags(
            args.tls_ca.as_deref(),
            args.tls_cert.as_deref(),
            args.tls_key.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!(e))?,
        state_dir: args.state_dir.clone(),
        pmd_cores: args
            .pmd_cores
            .as_deref()
            .map(parse_cores)
            .transpose()?
            .unwrap_or_default(),
        idle: args.idle,
        idle_spin_us: args.idle_spin_us,
        xsk: XskOptions {
            frames_per_queue: args.umem_frames,
            ring_size: (args.umem_frames / 2).min(4096),
            attach: match args.xdp_mode {
                XdpModeArg::Auto => AttachMode::Auto,
                XdpModeArg::Native => AttachMode::Native,
                XdpModeArg::Generic => AttachMode::Generic,
            },
            zero_copy: true,
            geneve_only: false,
        },
        emc_entries: args.emc_entries as usize,
        megaflow_entries: args.megaflow_entries as usize,
        emc_insert_inv_prob: args.emc_insert_inv_prob,
        ct_capacity: args.ct_capacity as usize,
        icmp_rate: (args.icmp_rate, args.icmp_burst),
        dns_rate: (args.dns_rate, args.dns_burst),
        underlay: args.underlay.clone(),
    };
    let (agent, pmd_threads) = agent::start(cfg)?;

    if let Some(dir) = args.control_sock.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&args.control_sock);
    let listener = tokio::net::UnixListener::bind(&args.control_sock)?;
    tracing::info!(sock = %args.control_sock.display(), "control socket ready");

    agent.lock().await.open_underlay().await?;
    agent.lock().await.restore().await;
    tokio::spawn(agent::sb_loop(agent.clone()));
    tokio::spawn(agent::pending_loop(agent.clone()));
    tokio::spawn(agent::learn_loop(agent.clone()));
    tokio::spawn(agent::applied_loop(agent.clone()));
    tokio::spawn(agent::tunnel_loop(agent.clone()));
    if args.pmd_auto_lb {
        tokio::spawn(agent::auto_lb_loop(
            agent.clone(),
            std::time::Duration::from_secs(args.pmd_auto_lb_interval),
            args.pmd_auto_lb_load_threshold,
            args.pmd_auto_lb_improvement_threshold,
        ));
    }

    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let agent = agent.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let agent = agent.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    while n < buf.len() {
                        match tokio::io::AsyncReadExt::read(&mut stream, &mut buf[n..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let page = agent.lock().await.metrics();
                    let resp = switchyard_southbound::metrics::http_response(&req, || page);
                    let _ = stream.write_all(resp.as_bytes()).await;
                });
            }
        });
        tracing::info!(%addr, "metrics at GET /metrics");
    }

    let ctl_agent = agent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let agent = ctl_agent.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let resp = match serde_json::from_str::<Request>(&line) {
                        Ok(req) => agent.lock().await.handle(req).await,
                        Err(e) => Response::Error(format!("bad request: {e}")),
                    };
                    let mut out = serde_json::to_string(&resp).unwrap_or_else(|_| "\"ok\"".into());
                    out.push('\n');
                    if w.write_all(out.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });

    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    tracing::info!("stopping");
    agent.lock().await.stop();
    let _ = tokio::task::spawn_blocking(move || {
        for t in pmd_threads {
            let _ = t.join();
        }
    })
    .await;
    let _ = std::fs::remove_file(&args.control_sock);
    Ok(())
}
