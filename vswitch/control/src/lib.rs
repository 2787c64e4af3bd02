//! The local control protocol between syctl and vswitchd: one JSON request per
//! line on a Unix socket, one JSON response per line. The contract alone (the
//! requests, the responses, the trace report): a crate of its own so that a
//! client links serde and std, not the datapath's AF_XDP and BPF loaders.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// A request to vswitchd.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    PortAdd {
        iface: String,
        lport: String,
    },
    PortDel {
        iface: String,
    },
    PortList,
    /// Sets a bound port's options: `rxq_affinity` "QUEUE:CORE,..." pins
    /// queues to the PMDs on those cores ("" unpins).
    PortSet {
        iface: String,
        rxq_affinity: String,
    },
    /// Every PMD's receive queues and their share of its cycles.
    PmdRxqShow,
    /// Place every unpinned queue again by its measured cycles.
    PmdRxqRebalance,
    PmdStats {
        clear: bool,
    },
    DpFlows,
    Status,
    /// Trace a microflow through the live datapath (nothing is transmitted).
    Trace {
        microflow: String,
    },
    /// Geneve tunnels with their counters.
    TunnelList,
    /// Conntrack entries (of one zone).
    CtList {
        zone: Option<u32>,
    },
    CtStats,
    /// Forget every connection.
    CtFlush,
}

/// One tracked connection, as `ct-list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnInfo {
    pub zone: u32,
    pub proto: String,
    /// "src:sport -> dst:dport" as the client sent it.
    pub orig: String,
    /// What the reply direction carries (differs from orig reversed when NATed).
    pub reply: String,
    pub state: String,
    pub nat: bool,
    pub packets_orig: u64,
    pub packets_reply: u64,
    pub idle_ms: u64,
    /// Set by `ct_commit` (stateful flows).
    #[serde(default)]
    pub mark: u32,
    #[serde(default)]
    pub label: u32,
}

/// Conntrack counters, as `ct-stats` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CtStatsInfo {
    pub entries: u64,
    pub capacity: u64,
    pub inserts: u64,
    /// Since the previous `ct-stats` (or the daemon's start).
    pub inserts_per_second: f64,
    pub full_drops: u64,
    pub invalid: u64,
    pub expired: u64,
    pub rst_ignored: u64,
    pub nat_collisions: u64,
    /// Entries evicted to make room in a full table (unconfirmed first).
    #[serde(default)]
    pub early_drops: u64,
    /// Connections picked up mid-stream (unconfirmed until answered).
    #[serde(default)]
    pub pickups: u64,
    /// New connections refused because their zone was at its limit.
    #[serde(default)]
    pub zone_limit_drops: u64,
    /// Closing connections evicted because a new SYN reused one of their tuples.
    #[serde(default)]
    pub closed_reused: u64,
    /// Zones with a limit (a switch's other_config:ct-zone-limit), as OVS
    /// `dpctl/ct-get-limits` shows them.
    #[serde(default)]
    pub zone_limits: Vec<ZoneLimitInfo>,
    pub by_state: std::collections::BTreeMap<String, u64>,
}

/// One limited conntrack zone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZoneLimitInfo {
    pub zone: u32,
    pub limit: u32,
    pub count: u32,
}

/// One tunnel, as `tunnel-list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TunnelInfo {
    pub chassis: String,
    pub remote_ip: String,
    pub remote_mac: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_errors: u64,
}

/// One port, as `port-list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortInfo {
    pub iface: String,
    pub lport: String,
    pub slot: u16,
    pub mode: String,
    pub bound: bool,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One receive queue and the PMD polling it, as `pmd-rxq-show` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RxqInfo {
    pub pmd: usize,
    pub core: Option<usize>,
    pub iface: String,
    pub queue: u32,
    /// Pinned by `rxq-affinity` (else placed round-robin).
    pub pinned: bool,
    pub packets: u64,
    pub cycles: u64,
    /// Share of the cycles the PMD spent on all its queues.
    pub usage_pct: f64,
    /// The kernel's drops before the ring (AF_XDP XDP_STATISTICS: no room,
    /// or a frame longer than the socket takes) and invalid descriptors.
    #[serde(default)]
    pub kernel_rx_dropped: u64,
    #[serde(default)]
    pub kernel_rx_invalid: u64,
}

/// PMD counters, as `pmd-stats` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PmdInfo {
    pub pmd: usize,
    pub core: Option<usize>,
    pub packets: u64,
    pub emc_hits: u64,
    pub emc_misses: u64,
    pub uncacheable: u64,
    /// Partial L4 checksums completed on the way in.
    #[serde(default)]
    pub csum_completed: u64,
    /// Exact-match misses the megaflow cache answered, slow-path walks,
    /// masks in use, megaflows kept and dropped by table swaps.
    #[serde(default)]
    pub megaflow_hits: u64,
    #[serde(default)]
    pub megaflow_misses: u64,
    #[serde(default)]
    pub megaflow_masks: u64,
    #[serde(default)]
    pub megaflow_kept: u64,
    #[serde(default)]
    pub megaflow_dropped: u64,
    pub cycles_per_packet: f64,
    pub iterations: u64,
    pub idle_sleeps: u64,
    /// DNS queries answered, answered NXDOMAIN, let go on, unreadable.
    #[serde(default)]
    pub dns: [u64; 4],
    /// DHCP offers, acks, naks sent, and messages let go on.
    #[serde(default)]
    pub dhcp: [u64; 4],
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// One cache entry, as `dp-flows` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpFlow {
    /// `megaflow` (the key shows only the bits its mask matches) or `emc`.
    #[serde(default)]
    pub cache: String,
    pub key: String,
    pub actions: String,
    pub hits: u64,
    pub age_ms: u64,
    /// Since the last hit (megaflows; `None`: never hit, or not kept).
    #[serde(default)]
    pub idle_ms: Option<u64>,
    /// The PMD whose cache holds it.
    #[serde(default)]
    pub pmd: usize,
}

/// Daemon status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub chassis: String,
    pub sb_connected: bool,
    pub sb_version: u64,
    /// The NB version this chassis last told northd its datapath runs.
    #[serde(default)]
    pub nb_cfg: u64,
    pub table_generation: u64,
    pub ports: usize,
    pub untranslatable_flows: usize,
    /// SB snapshots received, and SB sessions that asked to resume from the
    /// version this chassis had (same northd's epoch; northd answers with the
    /// deltas since, or with a snapshot when it no longer keeps them all).
    #[serde(default)]
    pub sb_snapshots: u64,
    #[serde(default)]
    pub sb_resumes: u64,
}

/// A response from vswitchd.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    Ok,
    Error(String),
    Ports(Vec<PortInfo>),
    Rxqs(Vec<RxqInfo>),
    /// Ports a rebalance moved.
    Moved(usize),
    Pmds(Vec<PmdInfo>),
    DpFlows(Vec<DpFlow>),
    Status(Status),
    Trace(Box<TraceReport>),
    Tunnels(Vec<TunnelInfo>),
    Conns(Vec<ConnInfo>),
    CtStats(CtStatsInfo),
}

/// Sends one request to the daemon at `sock` and reads the response.
pub fn call(sock: &std::path::Path, req: &Request) -> anyhow::Result<Response> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock)
        .map_err(|e| anyhow::anyhow!("cannot reach vswitchd at {}: {e}", sock.display()))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut resp = String::new();
    BufReader::new(s).read_line(&mut resp)?;
    Ok(serde_json::from_str(&resp)?)
}

/// Where a traced packet goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceOutput {
    pub port: String,
    pub chassis: String,
}

/// The result of a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceReport {
    pub datapath: String,
    pub inport: String,
    pub packet: String,
    pub steps: Vec<TraceStepOut>,
    /// "output", "drop", "arp_reply", "generate" (the router answers with a
    /// packet of its own: ICMP, ARP; the last stage's actions say which),
    /// "dns" (the switch answers a DNS query) or "dns_lookup" (it would, if
    /// it has a record for the name, which the trace did not give).
    pub verdict: String,
    /// Header changes applied before output (routed packets).
    #[serde(default)]
    pub rewrite: Option<String>,
    pub drop_reason: Option<String>,
    pub outputs: Vec<TraceOutput>,
    /// Datapath traces only: which cache level would answer.
    pub cache: Option<String>,
    /// What conntrack did before the pipeline (load balancing, NAT).
    #[serde(default)]
    pub conntrack: Option<String>,
    /// A DNS query's answer from the datapath, or why it goes on.
    #[serde(default)]
    pub dns: Option<String>,
    /// Verdict "generate": the packet the router answers with (ICMP echo
    /// reply or error, TCP RST, ARP request), traced from where the router
    /// sends it through every datapath it crosses.
    #[serde(default)]
    pub generated: Option<Box<TraceReport>>,
    /// Verdict "dhcp": what the port's lease answers.
    #[serde(default)]
    pub dhcp: Option<String>,
}

/// A stage crossed, as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceStepOut {
    pub datapath: String,
    pub pipeline: String,
    pub stage: String,
    pub table: u32,
    pub priority: Option<u32>,
    #[serde(rename = "match")]
    pub matched: Option<String>,
    pub actions: Option<String>,
    pub source: Option<String>,
    pub outport: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_tagged_json_line_and_unknown_commands_are_refused() {
        let line = serde_json::to_string(&Request::PortSet {
            iface: "eth1".into(),
            rxq_affinity: "0:2".into(),
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"port-set","iface":"eth1","rxq_affinity":"0:2"}"#
        );
        assert!(!line.contains('\n'));
        match serde_json::from_str::<Request>(r#"{"cmd":"ct-list","zone":7}"#).unwrap() {
            Request::CtList { zone } => assert_eq!(zone, Some(7)),
            other => panic!("parsed as {other:?}"),
        }
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"port-add","iface":"x"}"#).is_err());
    }

    #[test]
    fn a_trace_report_round_trips_and_older_reports_without_new_fields_still_parse() {
        let r = TraceReport {
            datapath: "ls0".into(),
            inport: "p1".into(),
            packet: "ip4.dst=10.0.0.2".into(),
            steps: vec![],
            verdict: "generate".into(),
            rewrite: None,
            drop_reason: None,
            outputs: vec![TraceOutput {
                port: "p2".into(),
                chassis: "c1".into(),
            }],
            cache: Some("emc".into()),
            conntrack: None,
            dns: None,
            generated: None,
            dhcp: None,
        };
        let line = serde_json::to_string(&Response::Trace(Box::new(r))).unwrap();
        match serde_json::from_str::<Response>(&line).unwrap() {
            Response::Trace(t) => {
                assert_eq!((t.verdict.as_str(), t.outputs.len()), ("generate", 1));
                assert_eq!(t.cache.as_deref(), Some("emc"));
            }
            other => panic!("parsed as {other:?}"),
        }
        // A report from a vswitchd that predates conntrack, DNS and DHCP fields.
        let old = r#"{"trace":{"datapath":"d","inport":"i","packet":"p","steps":[],
            "verdict":"drop","drop_reason":"acl","outputs":[],"cache":null}}"#;
        assert!(matches!(
            serde_json::from_str::<Response>(old).unwrap(),
            Response::Trace(t) if t.drop_reason.as_deref() == Some("acl") && t.dns.is_none()
        ));
    }

    #[test]
    fn a_call_to_no_daemon_says_which_socket() {
        let e = call(
            std::path::Path::new("/nonexistent/sy.sock"),
            &Request::Status,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/sy.sock"), "{e}");
    }
}
