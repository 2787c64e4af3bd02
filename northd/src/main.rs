//! The switchyard-northd daemon: opens the NB store and serves the NB and SB gRPC
//! APIs until SIGINT/SIGTERM.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchyard_northd::server::Northd;
use switchyard_northd::store::{FileStore, NbStore};
use switchyard_northd::store_etcd::EtcdStore;
use switchyard_southbound::pb::{
    northbound_server::NorthboundServer, southbound_server::SouthboundServer,
};

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
    /// Address of the NB API (syctl).
    #[arg(long, default_value = "127.0.0.1:6641")]
    nb_listen: SocketAddr,
    /// Address of the SB API (chassis).
    #[arg(long, default_value = "127.0.0.1:6642")]
    sb_listen: SocketAddr,
    /// Prometheus metrics address (GET /metrics); off when omitted.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
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
    if args.config.exists() {
        tracing::info!(config = %args.config.display(), "read configuration file");
    }
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
    let northd = Northd::new(store)?;
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
    let nb = tonic::transport::Server::builder()
        .add_service(
            NorthboundServer::new(northd.clone())
                .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
                .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE),
        )
        .serve_with_shutdown(args.nb_listen, shutdown());
    let sb = tonic::transport::Server::builder()
        .add_service(
            SouthboundServer::new(northd)
                .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
                .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE),
        )
        .serve_with_shutdown(args.sb_listen, shutdown());
    tracing::info!(nb = %args.nb_listen, sb = %args.sb_listen, db, "northd serving");
    tokio::try_join!(nb, sb)?;
    tracing::info!("northd stopped");
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
