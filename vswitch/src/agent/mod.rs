//! The chassis agent: registers with northd, follows the southbound stream,
//! binds local interfaces to logical ports (persisted, so a restart re-binds),
//! claims them in SB, and builds and publishes table sets for the PMD thread.
//! It keeps the last tables while northd is away.

use crate::control::{DpFlow, PmdInfo, PortInfo, Request, Response, Status};
use crate::pmd::handoff::Handoff;
use crate::pmd::SharedTables;
use crate::port::PortIo;
use crate::stats::{PmdStats, PortStats};
use crate::sys::xsk::{XskOptions, XskPort};
use crate::tables::lb::ServiceSets;
use crate::tables::{LocalBinding, Tables};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_southbound::pb::{self, sb_update::Update, southbound_client::SouthboundClient};
use switchyard_southbound::DropReason;
use tokio::sync::Mutex;

pub(crate) mod ct;
mod metrics;
mod rxq;
mod sb;
mod threads;
pub mod underlay;

pub use sb::{applied_loop, auto_lb_loop, learn_loop, pending_loop, sb_loop, tunnel_loop};
pub use threads::{start, PmdThreads};

/// How a PMD thread waits when there is no traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IdlePolicy {
    /// Spin while busy and for `idle_spin_us` after the last packet, then
    /// block in poll() (woken by the next frame).
    Adaptive,
    /// Never block (a dedicated core).
    Spin,
}

/// Agent configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub chassis: String,
    pub hostname: String,
    pub encap_ip: String,
    pub sb: String,
    /// Mutual TLS to northd (none: plaintext).
    pub tls: Option<switchyard_southbound::tls::TlsFiles>,
    pub state_dir: PathBuf,
    /// Cores of the PMD threads, one thread each (empty: one unpinned PMD).
    pub pmd_cores: Vec<usize>,
    pub idle: IdlePolicy,
    /// Adaptive: how long the PMD keeps polling after the last packet before
    /// it blocks.
    pub idle_spin_us: u64,
    pub xsk: XskOptions,
    pub emc_entries: usize,
    /// Megaflow cache entries (0: off) and the exact-match insertion draw.
    pub megaflow_entries: usize,
    pub emc_insert_inv_prob: u32,
    /// Conntrack capacity of the PMD.
    pub ct_capacity: usize,
    /// Generated answers per second per PMD, and their burst.
    pub icmp_rate: (u32, u32),
    /// DNS answers per second per port, and their burst.
    pub dns_rate: (u32, u32),
    /// The underlay interface Geneve tunnels use (none: a single-chassis switch).
    pub underlay: Option<String>,
}

/// Commands to the PMD thread.
pub enum PmdCmd {
    Add(u16, Box<dyn PortIo>, Arc<PortStats>),
    /// A port another PMD owns: frames to it go on the ring to that PMD.
    AddRemote(u16, Arc<Handoff>, Arc<PortStats>),
    Del(u16, std::sync::mpsc::Sender<()>),
    /// The caches' entries, copied; the control thread formats them.
    DumpFlows(std::sync::mpsc::Sender<crate::pmd::CacheDump>),
    Trace(
        crate::dp::flow::FlowKey,
        String,
        std::sync::mpsc::Sender<crate::inspect::trace::TraceReport>,
    ),
    CtFlush(std::sync::mpsc::Sender<usize>),
    /// Zero the PMD's counters: done by the PMD itself, their only writer,
    /// so that no increment racing a reset from outside is lost.
    ClearStats(std::sync::mpsc::Sender<()>),
    Stop,
}

struct PortEntry {
    iface: String,
    lport: String,
    slot: u16,
    mode: String,
    /// Its receive queues and the PMD polling each (which also transmits on
    /// them).
    rxqs: Vec<rxq::RxqEntry>,
    /// Queues pinned to cores (`port-set IFACE rxq-affinity=Q:CORE,...`).
    affinity: Vec<(u32, usize)>,
    /// Each PMD's counters for it (an owner's: receive and transmit; the
    /// others': frames they could not hand to an owner).
    stats: Vec<Arc<PortStats>>,
}

impl PortEntry {
    /// Whether PMD `i` polls some of the port's queues.
    fn owned_by(&self, i: usize) -> bool {
        self.rxqs.iter().any(|q| q.pmd == i)
    }

    /// The PMDs polling its queues, as port-list shows them ("0" or "0,1").
    fn owners(&self) -> String {
        let mut v: Vec<usize> = self.rxqs.iter().map(|q| q.pmd).collect();
        v.sort_unstable();
        v.dedup();
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// rx/tx packets, bytes, drops over every PMD.
    pub(super) fn counters(&self) -> [u64; 6] {
        let owners = (0..self.stats.len()).filter(|&i| self.owned_by(i));
        let mut t = PortStats::sum(owners.map(|i| &*self.stats[i]));
        for (i, s) in self.stats.iter().enumerate() {
            if !self.owned_by(i) {
                t[5] += s.tx_dropped.get();
            }
        }
        t
    }
}

/// One PMD thread as the agent sees it.
struct PmdHandle {
    tx: crossbeam::channel::Sender<PmdCmd>,
    stats: Arc<PmdStats>,
    core: Option<usize>,
}

/// The agent's state.
pub struct Agent {
    cfg: Config,
    ports: BTreeMap<String, PortEntry>,
    sb: Option<pb::SbSnapshot>,
    sb_connected: bool,
    /// SB snapshots received / sessions that asked to resume (see `Status`).
    sb_snapshots: u64,
    sb_resumes: u64,
    client: Option<SouthboundClient<tonic::transport::Channel>>,
    generation: u64,
    shared: Arc<SharedTables>,
    pmds: Vec<PmdHandle>,
    /// `rings[from][to]`: frames PMD `from` hands to PMD `to`.
    rings: Vec<Vec<Option<Arc<Handoff>>>>,
    untranslatable: usize,
    /// Saved bindings whose interface could not be opened yet; retried.
    pending: BTreeMap<String, (SavedBinding, String)>,
    /// Neighbours this chassis learned, re-reported whenever northd reconnects
    /// (northd keeps learned bindings in memory, as chassis claims).
    learned: BTreeMap<(u32, String, std::net::IpAddr), pb::MacBinding>,
    underlay: Option<crate::agent::underlay::UnderlayState>,
    underlay_stats: Option<Arc<PortStats>>,
    /// The PMD that owns the underlay port.
    underlay_pmd: usize,
    underlay_rxqs: Vec<rxq::RxqEntry>,
    /// Maglev tables kept across table builds (a change to one service does
    /// not recompute the others').
    maglev: crate::tables::lb::MaglevCache,
    /// The VIP index, updated per changed load balancer (two copies: one is
    /// published while the other changes).
    services: ServiceSets,
    started: std::time::Instant,
    /// The last `ct-stats` sample, for its inserts-per-second figure.
    ct_rate: Option<(std::time::Instant, u64)>,
    /// What the last SB update made of the datapath: (NB version, SB version,
    /// table generation); reported to northd once the PMD runs that generation.
    applied: (u64, u64, u64),
    /// SB version of this chassis's latest port claim (this SB session).
    claimed_sb: u64,
    /// The last (NB, SB, claimed) report sent.
    reported: Option<(u64, u64, u64)>,
    /// The NB version northd last acknowledged as running here.
    nb_cfg: u64,
    /// The PMDs' shared conntrack (dumped from here, in chunks).
    edge: Arc<std::sync::Mutex<crate::ct::edge::EdgeState>>,
    /// `--pmd-auto-lb`: the last interval's counters, and ports it moved.
    auto_lb: rxq::AutoLb,
    pmds_auto_lb_moves: u64,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct SavedBinding {
    iface: String,
    lport: String,
    /// "QUEUE:CORE,..." (none: round-robin).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    rxq_affinity: String,
}

impl Agent {
    fn bindings_path(&self) -> PathBuf {
        self.cfg.state_dir.join("bindings.json")
    }

    fn save(&self) -> anyhow::Result<()> {
        let list: Vec<SavedBinding> = self
            .ports
            .values()
            .map(|p| SavedBinding {
                iface: p.iface.clone(),
                lport: p.lport.clone(),
                rxq_affinity: rxq::format_affinity(&p.affinity),
            })
            .chain(self.pending.values().map(|(b, _)| b.clone()))
            .collect();
        let tmp = self.cfg.state_dir.join("bindings.json.tmp");
        let body = serde_json::to_vec_pretty(&list)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.bindings_path())?;
        Ok(())
    }

    fn local_bindings(&self) -> Vec<LocalBinding> {
        self.ports
            .values()
            .map(|p| LocalBinding {
                slot: p.slot,
                iface: p.iface.clone(),
                lport: p.lport.clone(),
            })
            .collect()
    }

    /// Builds and publishes a new table set from the last SB contents.
    fn publish(&mut self) {
        let Some(sb) = &self.sb else { return };
        self.generation += 1;
        let local = self.local_bindings();
        let services = self.services.current(&sb.load_balancers, &mut self.maglev);
        let t = Tables::build_on(self.generation, sb, &self.cfg.chassis, &local, services);
        let mut t = t;
        if let Some(u) = &mut self.underlay {
            let info = u.info;
            let (macs, stats) = (&u.macs, &mut u.tunnel_stats);
            t.set_underlay(info, macs, stats);
            u.sync_filter(&t);
        }
        self.untranslatable = t.untranslatable;
        self.shared.tables.store(Arc::new(t));
        // Table sets the PMD retired are freed here, off the fast path.
        while let Some(old) = self.shared.retired.pop() {
            drop(old);
        }
    }

    fn free_slot(&self) -> u16 {
        let taken = |s: u16| {
            self.ports.values().any(|p| p.slot == s)
                || self.underlay.as_ref().is_some_and(|u| u.info.slot == s)
        };
        (0..=u16::MAX).find(|s| !taken(*s)).unwrap_or(u16::MAX)
    }

    /// Opens the underlay interface for Geneve (at start, before any port).
    pub async fn open_underlay(&mut self) -> anyhow::Result<()> {
        let Some(iface) = self.cfg.underlay.clone() else {
            return Ok(());
        };
        let slot = self.free_slot();
        let mut state =
            crate::agent::underlay::UnderlayState::new(&iface, &self.cfg.encap_ip, slot)?;
        let opts = XskOptions {
            geneve_only: true,
            ..self.cfg.xsk
        };
        let name = iface.clone();
        let mut port = tokio::task::spawn_blocking(move || XskPort::open(&name, &opts)).await??;
        state.set_filter(port.take_underlay_filter()?)?;
        let (rxqs, stats) = self
            .place(slot, port, &[], None)
            .map_err(|e| anyhow::anyhow!(e))?;
        let owner = rxqs.first().map_or(0, |q| q.pmd);
        self.underlay_pmd = owner;
        self.underlay_rxqs = rxqs;
        let stats = stats[owner].clone();
        tracing::info!(
            iface,
            slot,
            mtu = state.info.mtu,
            "underlay open for Geneve"
        );
        self.underlay = Some(state);
        self.underlay_stats = Some(stats);
        Ok(())
    }

    async fn claim(&mut self, lport: &str, release: bool) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let req = pb::ClaimRequest {
            chassis: self.cfg.chassis.clone(),
            logical_port: lport.to_string(),
            release,
        };
        match client.claim_port(req).await {
            Ok(r) => self.claimed_sb = self.claimed_sb.max(r.into_inner().version),
            Err(e) => {
                tracing::warn!(port = lport, error = %e.message(), "claim failed; retried on reconnect")
            }
        }
    }

    /// Binds `iface` to logical port `lport`.
    pub async fn port_add(
        &mut self,
        iface: &str,
        lport: &str,
        affinity: Vec<(u32, usize)>,
        persist: bool,
    ) -> Result<(), String> {
        if crate::sys::if_index(iface).is_none() {
            return Err(format!("interface {iface:?} does not exist"));
        }
        if self.ports.contains_key(iface) || (persist && self.pending.contains_key(iface)) {
            return Err(format!("interface {iface:?} is already bound"));
        }
        if let Some(p) = self.ports.values().find(|p| p.lport == lport) {
            return Err(format!(
                "logical port {lport:?} is already bound to {:?}",
                p.iface
            ));
        }
        if let Some(sb) = &self.sb {
            if !sb.port_bindings.iter().any(|b| b.logical_port == lport) {
                return Err(format!(
                    "logical port {lport:?} does not exist in the southbound database"
                ));
            }
        }
        let port = self.open_port(iface).await?;
        let slot = self.free_slot();
        let mode = port.describe();
        let (rxqs, stats) = self.place(slot, port, &affinity, None)?;
        self.ports.insert(
            iface.to_string(),
            PortEntry {
                iface: iface.to_string(),
                lport: lport.to_string(),
                slot,
                mode,
                rxqs,
                affinity,
                stats,
            },
        );
        if persist {
            self.save().map_err(|e| format!("binding not saved: {e}"))?;
        }
        self.claim(lport, false).await;
        self.publish();
        tracing::info!(iface, lport, slot, "port bound");
        Ok(())
    }

    /// Unbinds `iface`.
    pub async fn port_del(&mut self, iface: &str) -> Result<(), String> {
        if self.pending.remove(iface).is_some() {
            self.save()
                .map_err(|e| format!("binding removal not saved: {e}"))?;
            return Ok(());
        }
        let Some(p) = self.ports.remove(iface) else {
            return Err(format!("interface {iface:?} is not bound"));
        };
        self.publish();
        self.unplace(p.slot).await;
        self.save()
            .map_err(|e| format!("binding removal not saved: {e}"))?;
        self.claim(&p.lport, true).await;
        tracing::info!(iface, lport = %p.lport, "port unbound");
        Ok(())
    }

    /// Opens every queue of `iface` with AF_XDP (off the async runtime).
    async fn open_port(&self, iface: &str) -> Result<XskPort, String> {
        let opts = self.cfg.xsk;
        let name = iface.to_string();
        tokio::task::spawn_blocking(move || XskPort::open(&name, &opts))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))
    }

    /// Every PMD forgets port `slot` (its owners close their queues) and
    /// says so, before the slot is reused or the interface reopened.
    async fn unplace(&self, slot: u16) {
        let mut waits = Vec::new();
        for h in &self.pmds {
            let (tx, rx) = std::sync::mpsc::channel();
            if h.tx.send(PmdCmd::Del(slot, tx)).is_ok() {
                waits.push(rx);
            }
        }
        let _ = tokio::task::spawn_blocking(move || {
            for rx in waits {
                let _ = rx.recv_timeout(Duration::from_secs(5));
            }
        })
        .await;
    }

    /// Answers one control request.
    pub async fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::PortAdd { iface, lport } => {
                match self.port_add(&iface, &lport, Vec::new(), true).await {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error(e),
                }
            }
            Request::PortSet {
                iface,
                rxq_affinity,
            } => match self.port_set(&iface, &rxq_affinity).await {
                Ok(()) => Response::Ok,
                Err(e) => Response::Error(e),
            },
            Request::PmdRxqShow => Response::Rxqs(self.rxq_show()),
            Request::PmdRxqRebalance => match self.rebalance().await {
                Ok(n) => Response::Moved(n),
                Err(e) => Response::Error(e),
            },
            Request::PortDel { iface } => match self.port_del(&iface).await {
                Ok(()) => Response::Ok,
                Err(e) => Response::Error(e),
            },
            Request::PortList => {
                let t = self.shared.tables.load();
                let pending = self.pending.values().map(|(b, why)| PortInfo {
                    iface: b.iface.clone(),
                    lport: b.lport.clone(),
                    slot: u16::MAX,
                    mode: format!("pending: {why}"),
                    bound: false,
                    rx_packets: 0,
                    rx_bytes: 0,
                    tx_packets: 0,
                    tx_bytes: 0,
                    rx_dropped: 0,
                    tx_dropped: 0,
                });
                let several = self.pmds.len() > 1;
                Response::Ports(
                    self.ports
                        .values()
                        .map(|p| {
                            let [rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped] =
                                p.counters();
                            PortInfo {
                                iface: p.iface.clone(),
                                lport: p.lport.clone(),
                                slot: p.slot,
                                mode: if several {
                                    format!("{} pmd={}", p.mode, p.owners())
                                } else {
                                    p.mode.clone()
                                },
                                bound: t.slot(p.slot).is_some(),
                                rx_packets,
                                rx_bytes,
                                tx_packets,
                                tx_bytes,
                                rx_dropped,
                                tx_dropped,
                            }
                        })
                        .chain(pending)
                        .collect(),
                )
            }
            Request::PmdStats { clear } => {
                let infos: Vec<PmdInfo> = (0..self.pmds.len()).map(|i| self.pmd_info(i)).collect();
                if clear {
                    if let Some(u) = &mut self.underlay {
                        u.clear_xdp_drops();
                    }
                    for i in 0..self.pmds.len() {
                        if let Err(e) = self.ask_pmd_n(i, PmdCmd::ClearStats).await {
                            return e;
                        }
                    }
                }
                Response::Pmds(infos)
            }
            Request::DpFlows => {
                let mut rows = Vec::new();
                for i in 0..self.pmds.len() {
                    match self.ask_pmd_n(i, PmdCmd::DumpFlows).await {
                        Ok(d) => rows.extend(dp_flows(&d).into_iter().map(|mut f| {
                            f.pmd = i;
                            f
                        })),
                        Err(e) => return e,
                    }
                }
                Response::DpFlows(rows)
            }
            Request::CtList { zone } => match self.off_pmds(move |e| ct::list(e, zone)).await {
                Ok(c) => Response::Conns(c),
                Err(e) => e,
            },
            Request::CtStats => match self.off_pmds(ct::stats).await {
                Ok(mut s) => {
                    let now = std::time::Instant::now();
                    let (t0, n0) = self.ct_rate.unwrap_or((self.started, 0));
                    let secs = now.duration_since(t0).as_secs_f64().max(1e-3);
                    s.inserts_per_second = s.inserts.saturating_sub(n0) as f64 / secs;
                    self.ct_rate = Some((now, s.inserts));
                    Response::CtStats(s)
                }
                Err(e) => e,
            },
            Request::CtFlush => match self.ask_pmd(PmdCmd::CtFlush).await {
                Ok(_) => Response::Ok,
                Err(e) => e,
            },
            Request::Trace { microflow } => self.trace(&microflow).await,
            Request::TunnelList => {
                let t = self.shared.tables.load();
                Response::Tunnels(
                    self.underlay
                        .as_ref()
                        .map(|u| u.list(&t))
                        .unwrap_or_default(),
                )
            }
            Request::Status => Response::Status(Status {
                chassis: self.cfg.chassis.clone(),
                sb_connected: self.sb_connected,
                sb_version: self.sb.as_ref().map(|s| s.version).unwrap_or(0),
                nb_cfg: self.nb_cfg,
                table_generation: self.generation,
                ports: self.ports.len(),
                untranslatable_flows: self.untranslatable,
                sb_snapshots: self.sb_snapshots,
                sb_resumes: self.sb_resumes,
            }),
        }
    }

    /// Applies a load-balancer-only SB delta to the VIP index, in proportion
    /// to the load balancers it names.
    fn update_services(&mut self, d: &pb::SbDelta) {
        let upserts: Vec<pb::SbLoadBalancer> = d
            .upserts
            .iter()
            .filter_map(|r| match &r.row {
                Some(pb::sb_row::Row::LoadBalancer(l)) => Some(l.clone()),
                _ => None,
            })
            .collect();
        let deletes: Vec<String> = d
            .deletes
            .iter()
            .filter_map(|k| k.strip_prefix("lb/").map(str::to_string))
            .collect();
        // Table sets the PMD let go of first: the spare copy is then free to
        // change in place.
        while let Some(old) = self.shared.retired.pop() {
            drop(old);
        }
        self.services.update((upserts, deletes), &mut self.maglev);
    }

    /// Sends a command to PMD 0 (conntrack and tracing: the state is shared)
    /// and waits for its answer.
    /// Runs `f` on the shared conntrack on a blocking thread (it takes the
    /// lock in short chunks; the PMDs keep running).
    async fn off_pmds<T: Send + 'static>(
        &self,
        f: impl FnOnce(&std::sync::Mutex<crate::ct::edge::EdgeState>) -> T + Send + 'static,
    ) -> Result<T, Response> {
        let edge = self.edge.clone();
        tokio::task::spawn_blocking(move || f(&edge))
            .await
            .map_err(|e| Response::Error(format!("conntrack dump failed: {e}")))
    }

    async fn ask_pmd<T: Send + 'static>(
        &self,
        make: impl FnOnce(std::sync::mpsc::Sender<T>) -> PmdCmd,
    ) -> Result<T, Response> {
        self.ask_pmd_n(0, make).await
    }

    /// PMD `i`'s counters, as `pmd-stats` shows them.
    fn pmd_info(&self, i: usize) -> PmdInfo {
        let h = &self.pmds[i];
        let s = &h.stats;
        let packets = s.packets.get();
        PmdInfo {
            pmd: i,
            core: h.core,
            packets,
            emc_hits: s.emc_hits.get(),
            emc_misses: s.emc_misses.get(),
            uncacheable: s.uncacheable.get(),
            csum_completed: s.csum_completed.get(),
            megaflow_hits: s.megaflow_hits.get(),
            megaflow_misses: s.megaflow_misses.get(),
            megaflow_masks: s.megaflow_masks.get(),
            megaflow_kept: s.megaflow_kept.get(),
            megaflow_dropped: s.megaflow_dropped.get(),
            cycles_per_packet: if packets > 0 {
                s.busy_cycles.get() as f64 / packets as f64
            } else {
                0.0
            },
            iterations: s.iterations.get(),
            idle_sleeps: s.idle_sleeps.get(),
            dns: [
                s.dns_answered.get(),
                s.dns_nxdomain.get(),
                s.dns_passed.get(),
                s.dns_malformed.get(),
            ],
            dhcp: [
                s.dhcp_offers.get(),
                s.dhcp_acks.get(),
                s.dhcp_naks.get(),
                s.dhcp_passed.get(),
            ],
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), s.drops[*r as usize].get()))
                .chain(
                    // The underlay's XDP filter counts per interface: shown once.
                    self.underlay
                        .iter()
                        .filter(|_| i == self.underlay_pmd)
                        .flat_map(|u| u.xdp_drops().map(|(name, n)| (name.to_string(), n))),
                )
                .collect(),
        }
    }

    /// Sends a command to PMD `i` and waits for its answer.
    async fn ask_pmd_n<T: Send + 'static>(
        &self,
        i: usize,
        make: impl FnOnce(std::sync::mpsc::Sender<T>) -> PmdCmd,
    ) -> Result<T, Response> {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.pmds[i].tx.send(make(tx)).is_err() {
            return Err(Response::Error("PMD thread is gone".into()));
        }
        match tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5))).await {
            Ok(Ok(v)) => Ok(v),
            _ => Err(Response::Error("PMD thread did not answer".into())),
        }
    }

    async fn trace(&mut self, expr: &str) -> Response {
        let Some(sb) = &self.sb else {
            return Response::Error("no southbound contents yet (is northd reachable?)".into());
        };
        let mf = match crate::inspect::microflow::Microflow::parse(expr) {
            Ok(m) => m,
            Err(e) => return Response::Error(e.render(expr)),
        };
        let mut key = match mf.resolve(sb) {
            Ok(k) => k,
            Err(e) => return Response::Error(e.render(expr)),
        };
        let inport = mf.inport().unwrap_or_default().to_string();
        let Some(p) = self.ports.values().find(|p| p.lport == inport) else {
            return Response::Error(format!(
                "logical port {inport:?} is not bound on chassis {}",
                self.cfg.chassis
            ));
        };
        key.in_port = p.slot;
        let chassis = self.cfg.chassis.clone();
        match self.ask_pmd(|tx| PmdCmd::Trace(key, chassis, tx)).await {
            Ok(r) => Response::Trace(Box::new(r)),
            Err(e) => e,
        }
    }

    /// Re-binds the ports saved by a previous run.
    pub async fn restore(&mut self) {
        let Ok(body) = std::fs::read(self.bindings_path()) else {
            return;
        };
        let saved: Vec<SavedBinding> = match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "bindings.json unreadable; starting with no ports");
                return;
            }
        };
        for b in saved {
            self.pending
                .insert(b.iface.clone(), (b, "restoring".into()));
        }
        self.retry_pending().await;
    }

    /// Tries to open the interfaces of pending bindings (missing or busy ones stay
    /// pending and on disk, as an operator expects of a configured port).
    pub async fn retry_pending(&mut self) {
        let todo: Vec<SavedBinding> = self.pending.values().map(|(b, _)| b.clone()).collect();
        for b in todo {
            // A saved affinity that no longer parses or fits (other PMD
            // cores now) is dropped with a warning: the port still binds.
            let mut affinity = rxq::parse_affinity(&b.rxq_affinity).unwrap_or_default();
            if !affinity.is_empty() {
                let cores: Vec<Option<usize>> = self.pmds.iter().map(|h| h.core).collect();
                if affinity.iter().any(|(_, c)| !cores.contains(&Some(*c))) {
                    tracing::warn!(iface = %b.iface, affinity = %b.rxq_affinity, "saved rxq-affinity names cores without a PMD; ignored");
                    affinity.clear();
                }
            }
            match self.port_add(&b.iface, &b.lport, affinity, false).await {
                Ok(()) => {
                    self.pending.remove(&b.iface);
                }
                Err(e) => {
                    if self.pending.get(&b.iface).is_some_and(|(_, old)| *old != e) {
                        tracing::warn!(iface = %b.iface, lport = %b.lport, error = %e, "binding pending");
                    }
                    self.pending.insert(b.iface.clone(), (b, e));
                }
            }
        }
    }

    /// Stops the PMD thread (closing every port and detaching XDP).
    pub fn stop(&self) {
        for h in &self.pmds {
            let _ = h.tx.send(PmdCmd::Stop);
        }
    }
}

/// `dp-flows` rows of a cache dump: megaflows (only the bits their mask
/// matches), then exact-match entries.
fn dp_flows(d: &crate::pmd::CacheDump) -> Vec<DpFlow> {
    let megaflows = d.megaflows.iter().map(|(e, mask)| DpFlow {
        cache: "megaflow".into(),
        key: crate::inspect::trace::masked_key_text(&e.key, mask),
        actions: crate::inspect::trace::verdict_text(e.verdict, &e.out[..usize::from(e.n_out)]),
        hits: e.hits,
        age_ms: d.now_ms.saturating_sub(e.installed_ms),
        idle_ms: Some(d.now_ms.saturating_sub(e.used_ms)),
        pmd: 0,
    });
    let exact = d.exact.iter().map(|(e, age_ms)| DpFlow {
        cache: "emc".into(),
        key: format!(
            "in_slot={} {}",
            e.key.in_port,
            crate::inspect::trace::key_text(&e.key)
        ),
        actions: crate::inspect::trace::verdict_text(e.verdict, &e.out[..usize::from(e.n_out)]),
        hits: e.hits,
        age_ms: *age_ms,
        idle_ms: None,
        pmd: 0,
    });
    megaflows.chain(exact).collect()
}
