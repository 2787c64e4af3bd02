//! The switchyard-northd daemon: opens the NB store and serves the NB and SB gRPC
//! APIs until SIGINT/SIGTERM.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchyard_northd::server::Northd;
use switchyard_northd::store::etcd::EtcdStore;
use switchyard_northd::store::{FileStore, NbStore};
use switchyard_southbound::pb::{
    northbound_server::NorthboundServer, southbound_server::SouthboundServer,
};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard-northd",
    version,
    about = "Switchyard's northbound store and compiler"
)]
struct Args {
    /// Configuration file: every flag is also a key (`nb-listen = "..."`),
    /// the command line wins; a missing file at the default path is fine.
    #[arg(long, default_value = "/etc/switchyard/northd.toml")]
    config: PathBuf,
    /// Directory of the embedded NB database (unused with --nb-etcd).
    #[arg(long, default_value = "/var/lib/switchyard/northd")]
    db: PathBuf,
    /// Keep the NB on this etcd cluster instead (client URLs, comma-separated:
    /// http://10.0.0.1:2379,http://10.0.0.2:2379,...).
    #[arg(long, value_delimiter = ',')]
    nb_etcd: Vec<String>,
    /// Key prefix of the NB in etcd.
    #[arg(long, default_value = "/switchyard/nb")]
    nb_etcd_prefix: String,
    /// With --nb-etcd: this northd's name in the active/standby lock
    /// (default: host name and NB address). Several northds on one etcd
    /// elect one active; the others wait, serving nothing, and take over
    /// when it dies.
    #[arg(long)]
    id: Option<String>,
    /// With --nb-etcd: seconds the active northd's lock outlives it (etcd's
    /// lease TTL; failover takes about this long).
    #[arg(long, default_value_t = 2)]
    lease_ttl: u64,
    /// Address of the NB API (syctl).
    #[arg(long, default_value = "127.0.0.1:6641")]
    nb_listen: SocketAddr,
    /// Address of the SB API (chassis).
    #[arg(long, default_value = "127.0.0.1:6642")]
    sb_listen: SocketAddr,
    /// Prometheus metrics address (GET /metrics); off when omitted.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// CA certificate (PEM) that signs every party's certificate. With
    /// --tls-cert and --tls-key, both APIs speak TLS and check who calls:
    /// chassis act only as themselves (their certificate's CN, OU=chassis),
    /// the NB needs an operator certificate (OU=operator) or a token.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// northd's certificate (PEM), with the addresses clients dial in its SAN.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// northd's private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Tokens that may use the NB API without an operator certificate, one
    /// per line (scripts send `authorization: Bearer TOKEN`; syctl --token).
    #[arg(long)]
    nb_token_file: Option<PathBuf>,
    /// Serve plaintext on addresses other than loopback (refused unless
    /// given: anyone on that network could drive the cluster).
    #[arg(long)]
    allow_plaintext: bool,
    /// Print this manual page (roff, section 8) and exit (the package's man page).
    #[arg(long, hide = true)]
    man_page: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    let argv = switchyard_southbound::config::args_with_config(
        std::env::args_os(),
        std::path::Path::new("/etc/switchyard/northd.toml"),
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
    let tls = switchyard_southbound::tls::TlsFiles::from_flags(
        args.tls_ca.as_deref(),
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    if tls.is_none() && !args.allow_plaintext {
        for a in [args.nb_listen, args.sb_listen] {
            if !switchyard_southbound::tls::is_loopback(&a) {
                anyhow::bail!(
                    "{a} is not a loopback address: serve it with TLS (--tls-ca, --tls-cert, --tls-key) \
                     or say --allow-plaintext"
                );
            }
        }
    }
    let tokens = match &args.nb_token_file {
        Some(p) => switchyard_northd::server::auth::Auth::load_tokens(p)?,
        None => Vec::new(),
    };
    let server_tls = match &tls {
        Some(t) => Some(t.server().map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let builder = || -> anyhow::Result<tonic::transport::Server> {
        let b = tonic::transport::Server::builder();
        Ok(match &server_tls {
            Some(c) => b.tls_config(c.clone())?,
            None => b,
        })
    };
    let mut lost = None;
    if !args.nb_etcd.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let id = args
            .id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", host.trim(), args.nb_listen));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let nb = format!("{scheme}://{}", args.nb_listen);
        let ttl = std::time::Duration::from_secs(args.lease_ttl.max(1));
        let acquire = switchyard_northd::server::ha::acquire(
            &args.nb_etcd,
            &args.nb_etcd_prefix,
            &id,
            &nb,
            ttl,
        );
        // A standby stops on SIGTERM like an active one.
        let held = tokio::select! {
            h = acquire => h?,
            _ = shutdown() => {
                tracing::info!("northd stopped (standby)");
                return Ok(());
            }
        };
        lost = Some(held.lost);
    }
    // Listen before loading: a standby probing an active northd's port takes
    // a refusal for death, and loading a large NB takes a while.
    let nb_listener = listen(args.nb_listen, "NB").await?;
    let sb_listener = listen(args.sb_listen, "SB").await?;
    let (store, db): (Box<dyn NbStore>, String) = if args.nb_etcd.is_empty() {
        (
            Box::new(FileStore::open(&args.db)?),
            args.db.display().to_string(),
        )
    } else {
        let store = EtcdStore::connect(&args.nb_etcd, &args.nb_etcd_prefix)?;
        (
            Box::new(store),
            format!("etcd {} {}", args.nb_etcd.join(","), args.nb_etcd_prefix),
        )
    };
    let northd = Northd::new(store)?.with_auth(switchyard_northd::server::auth::Auth::new(
        tls.is_some(),
        tokens,
    ));
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let northd = northd.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let northd = northd.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    while n < buf.len() {
                        match stream.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let page = northd.metrics().await;
                    let resp = switchyard_southbound::metrics::http_response(&req, || page);
                    let _ = stream.write_all(resp.as_bytes()).await;
                });
            }
        });
        tracing::info!(%addr, "metrics at GET /metrics");
    }
    let nb = builder()?
        .add_service(
            NorthboundServer::new(northd.clone())
                .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
                .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(nb_listener), shutdown());
    // The active northd that loses its lock stops at once: another may be
    // active already (fail-stop; its supervisor starts it again as standby).
    let fenced = async move {
        match lost {
            Some(rx) => {
                let why = rx.await.unwrap_or_else(|_| "lock keeper ended".into());
                tracing::error!(%why, "lost the northd lock; stopping");
                Err::<(), anyhow::Error>(anyhow::anyhow!("lost the northd lock: {why}"))
            }
            None => std::future::pending().await,
        }
    };
    let sb = builder()?
        .add_service(
            SouthboundServer::new(northd)
                .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
                .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(sb_listener), shutdown());
    tracing::info!(nb = %args.nb_listen, sb = %args.sb_listen, db, tls = tls.is_some(), "northd serving");
    tokio::select! {
        r = async { tokio::try_join!(nb, sb) } => { r?; }
        r = fenced => r?,
    }
    tracing::info!("northd stopped");
    Ok(())
}

async fn listen(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for {what} on {addr}: {e}"))
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
