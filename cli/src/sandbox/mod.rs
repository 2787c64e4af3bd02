//! `syctl sandbox`: a whole Switchyard deployment on one machine. Pods are network
//! namespaces wired by veth pairs; northd and vswitchd run as real daemons with
//! their state and logs under the sandbox directory; the topology is created
//! through the NB API like an operator would. Everything it makes is recorded in
//! `state.json` and named with the sandbox prefix, so `down` (and the next `up`
//! after a crash) removes all of it.

use crate::nb;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_control::{call, Request, Response};
use switchyard_southbound::pb::{self, nb_op::Op};

pub mod cni;
pub mod etcd;
pub mod pki;
mod pod;
pub mod proc;
use pod::create_pod;
pub use proc::{in_ns, sh, Daemon};
mod status;
pub use status::status;

/// Where a sandbox lives and how its names and ports are chosen.
#[derive(Debug, Clone)]
pub struct Opts {
    pub dir: PathBuf,
    pub prefix: String,
    pub port_base: u16,
    pub subnet: String,
    pub pmd_core: Option<usize>,
    /// Several PMD threads (vswitchd's `--pmd-cores`, e.g. "0,1"); pods'
    /// receive processing then stays where it falls.
    pub pmd_cores: Option<String>,
    /// Queues of every pod's veth.
    pub queues: u16,
    /// Extra options for every vswitchd.
    pub vswitchd_args: Vec<String>,
    /// Logical switches (one subnet each); with two or more, a router joins them.
    pub subnets: usize,
    /// Chassis (each a namespace with its own vswitchd, Geneve between them).
    pub chassis: usize,
    /// Pods per chassis (overrides the pod count: chassis × this).
    pub pods_per_chassis: Option<usize>,
    /// An external network behind the router ([`EXT_SWITCH`]).
    pub external: bool,
    /// vswitchd's `--ct-capacity`.
    pub ct_capacity: Option<u64>,
    /// vswitchd's `--dns-rate` (DNS answers per second per port; 0: unlimited).
    pub dns_rate: Option<u32>,
    /// Pods ask for their address, route and MTU by DHCP (the datapath answers).
    pub dhcp: bool,
    /// Members of an etcd cluster for the NB (0: northd's file store).
    pub etcd: usize,
    /// northd instances (more than one needs `etcd`): one active, standbys.
    pub northds: usize,
    /// Mutual TLS between every daemon and client, with a CA of its own.
    pub tls: bool,
    /// The switches' MTU (other_config:mtu) and the pods' (None: 1,500, less
    /// the Geneve overhead across chassis); the underlay gets room for the
    /// encapsulation on top.
    pub mtu: Option<u32>,
    /// Pods are dual-stack: an IPv6 address on their switch's /64 besides
    /// the IPv4 one, in their addresses and port security.
    pub ipv6: bool,
    /// `--slaac`: the pods' IPv6 comes from router advertisements.
    pub slaac: bool,
}

/// The external network of `--external`: a switch behind lr0 and one host.
pub const EXT_SWITCH: &str = "ext";
const EXT_SUBNET: &str = "172.16.0.0/24";
const EXT_GATEWAY: &str = "172.16.0.1";
const EXT_GATEWAY_MAC: &str = "0a:58:ac:10:00:01";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    pub name: String,
    pub netns: String,
    pub host_iface: String,
    pub pod_iface: String,
    pub mac: String,
    pub ip: String,
    pub lport: String,
    pub chassis: String,
    #[serde(default)]
    pub switch: String,
    /// The pod's default gateway (the router port on its subnet), if routed.
    #[serde(default)]
    pub gateway: String,
    /// `--ipv6`: the pod's IPv6 address (its switch's /64), else empty.
    #[serde(default)]
    pub ip6: String,
}

/// A logical switch the sandbox made, with its subnet and router port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchInfo {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub gateway_mac: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub dir: PathBuf,
    pub prefix: String,
    pub nb: String,
    pub sb: String,
    pub switch: String,
    pub subnet: String,
    pub chassis: String,
    pub control_sock: PathBuf,
    #[serde(default)]
    pub pmd_core: Option<usize>,
    /// Queues of every pod's veth (0 in older state files: one).
    #[serde(default)]
    pub queues: u16,
    #[serde(default)]
    pub northd_metrics: String,
    #[serde(default)]
    pub vswitchd_metrics: String,
    pub northd: Option<Daemon>,
    pub vswitchd: Option<Daemon>,
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub switches: Vec<SwitchInfo>,
    /// The router joining the switches, and every pod's gateway.
    #[serde(default)]
    pub router: Option<String>,
    /// Every chassis with its vswitchd (the first is also `chassis`/`vswitchd`).
    #[serde(default)]
    pub nodes: Vec<crate::cluster::ChassisNode>,
    /// The external host (`--external`): no route to the pods.
    #[serde(default)]
    pub external: Option<Pod>,
    /// The etcd members holding the NB (`--etcd N`), and their client URLs.
    #[serde(default)]
    pub etcd: Vec<Daemon>,
    #[serde(default)]
    pub etcd_endpoints: Vec<String>,
    /// Standby northds (`--northd N`), besides `northd`.
    #[serde(default)]
    pub standbys: Vec<Daemon>,
    /// What `sandbox cni-install` wrote (removed on `down`).
    #[serde(default)]
    pub cni_files: Vec<PathBuf>,
    /// `--mtu`: the switches' and pods' MTU (0: not set).
    #[serde(default)]
    pub mtu: u32,
    /// `--tls`: certificates in DIR/pki, https everywhere.
    #[serde(default)]
    pub tls: bool,
    /// `--dhcp`: pods got their addresses from the datapath's DHCP.
    #[serde(default)]
    pub dhcp: bool,
    /// `--ipv6`: pods are dual-stack.
    #[serde(default)]
    pub ipv6: bool,
    /// `--slaac`: the pods' IPv6 came from router advertisements.
    #[serde(default)]
    pub slaac: bool,
}

impl State {
    fn node(&self, chassis: &str) -> Option<&crate::cluster::ChassisNode> {
        self.nodes.iter().find(|n| n.name == chassis)
    }
}

impl State {
    pub fn load(dir: &Path) -> Option<State> {
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()
    }
    fn save(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, self.dir.join("state.json"))?;
        Ok(())
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Finds a sibling binary of syctl (cargo puts them together), else uses PATH.
pub fn binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn spawn(bin: &str, args: &[String], log: &Path) -> anyhow::Result<Daemon> {
    spawn_in(None, bin, args, log)
}

/// Starts a daemon, inside network namespace `netns` when given (`ip netns exec`
/// execs the daemon in place, so the recorded pid is the daemon's).
fn spawn_in(netns: Option<&str>, bin: &str, args: &[String], log: &Path) -> anyhow::Result<Daemon> {
    use std::os::unix::process::CommandExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(binary(bin));
            c
        }
        None => Command::new(binary(bin)),
    };
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!("cannot start {bin} (build it with cargo build --release --bins)")
        })?;
    Ok(Daemon {
        pid: child.id(),
        log: log.to_path_buf(),
        args: args.to_vec(),
    })
}

fn pid_alive(pid: u32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| name.starts_with(c.trim()))
        .unwrap_or(false)
        && !exited(pid)
}

/// Whether every thread of `pid` has exited. The group leader turns zombie
/// before its other threads have finished exiting, and those still hold the
/// process's files (its listening sockets): a successor started as soon as the
/// leader shows `Z` can find its port still taken.
fn exited(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).map_or(true, |s| {
            s.rsplit_once(") ")
                .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
        })
    })
}

/// Stops a daemon: SIGTERM, then SIGKILL after a grace period.
pub fn stop_daemon(d: &Daemon, name: &str) {
    stop_daemon_with(d, name, libc::SIGTERM);
}

fn stop_daemon_with(d: &Daemon, name: &str, sig: i32) {
    if !pid_alive(d.pid, name) {
        return;
    }
    signal(d.pid, sig);
    if !wait_until(Duration::from_secs(5), || !pid_alive(d.pid, name)) {
        signal(d.pid, libc::SIGKILL);
        wait_until(Duration::from_secs(2), || !pid_alive(d.pid, name));
    }
}

fn signal(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Removes everything a sandbox with these options made, whatever state it is in.
/// Removes the sandbox in `o.dir`: its daemons, pods, chassis and underlay,
/// and anything named under its prefix. Returns the prefixes it swept (the
/// flag's, and the recorded one when only the directory was given).
pub fn down(o: &Opts) -> anyhow::Result<Vec<String>> {
    // The flag's prefix and the one the sandbox was made with (its state
    // says), which differ when only the directory was given.
    let mut prefixes = vec![format!("{}-", o.prefix)];
    if let Some(st) = State::load(&o.dir) {
        if !st.prefix.is_empty() && st.prefix != o.prefix {
            prefixes.push(format!("{}-", st.prefix));
        }
        if let Some(d) = &st.vswitchd {
            stop_daemon(d, "switchyard-vswitchd");
        }
        for d in st.nodes.iter().filter_map(|n| n.vswitchd.as_ref()) {
            stop_daemon(d, "switchyard-vswitchd");
        }
        if let Some(d) = &st.northd {
            stop_daemon(d, "switchyard-northd");
        }
        for d in &st.standbys {
            stop_daemon(d, "switchyard-northd");
        }
        etcd::stop(&st.etcd);
        cni::uninstall(&st);
        for p in st.pods.iter().chain(&st.external) {
            let _ = sh("ip", &["netns", "del", &p.netns]);
            let _ = sh("ip", &["link", "del", &p.host_iface]);
        }
    }
    // Chassis namespaces, the underlay and leftovers of a run that crashed
    // before recording them: match the prefix.
    let ours = |name: &str| prefixes.iter().any(|p| name.starts_with(p.as_str()));
    if let Ok(list) = sh("ip", &["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ours(ns) {
                let _ = sh("ip", &["netns", "del", ns]);
            }
        }
    }
    if let Ok(list) = sh("ip", &["-o", "link", "show"]) {
        for l in list.lines() {
            if let Some(name) = l
                .split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap_or(""))
            {
                if ours(name) {
                    let _ = sh("ip", &["link", "del", name]);
                }
            }
        }
    }
    if o.dir.exists() {
        std::fs::remove_dir_all(&o.dir)
            .with_context(|| format!("cannot remove {}", o.dir.display()))?;
    }
    Ok(prefixes
        .iter()
        .map(|p| p.trim_end_matches('-').to_string())
        .collect())
}

/// The URL scheme of the sandbox's gRPC services.
pub fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

/// The /24 of switch `j`: the base subnet with its third octet plus `j`.
fn nth_subnet(base: &str, j: usize) -> anyhow::Result<String> {
    let net: std::net::Ipv4Addr = base
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .with_context(|| format!("--subnet {base:?} is not an IPv4 CIDR"))?;
    if !base.ends_with("/24") {
        bail!("--subnet {base:?}: the sandbox uses a /24");
    }
    let o = net.octets();
    let third = usize::from(o[2]) + j;
    if third > 255 {
        bail!("--subnet {base:?} leaves no room for {} subnets", j + 1);
    }
    Ok(format!("{}.{}.{}.0/24", o[0], o[1], third))
}

/// The PMD core the sandbox uses by default: the last core, when there are two or more.
pub fn default_pmd_core() -> Option<usize> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (n > 1).then_some(n - 1)
}

/// Pings `ip` from `ns` once.
pub fn ping_once(ns: &str, ip: &str) -> bool {
    in_ns(ns, &["ping", "-c", "1", "-W", "1", ip]).is_ok()
}

/// Builds a sandbox with `pods` pods on one switch.
pub async fn up(o: &Opts, pods: usize) -> anyhow::Result<State> {
    let pods = o.pods_per_chassis.map_or(pods, |m| m * o.chassis);
    if pods < 1 && o.chassis > 1 {
        bail!("--pods 0 (daemons and switches only, for containers to join) needs --chassis 1");
    }
    if o.subnets < 1 || o.subnets > 16 {
        bail!("--subnets takes 1 to 16");
    }
    if o.chassis < 1 || o.chassis > 16 {
        bail!("--chassis takes 1 to 16");
    }
    down(o)?;
    std::fs::create_dir_all(&o.dir)?;
    let mut st = State {
        dir: o.dir.clone(),
        prefix: o.prefix.clone(),
        nb: format!("{}://127.0.0.1:{}", scheme(o.tls), o.port_base),
        sb: format!("{}://127.0.0.1:{}", scheme(o.tls), o.port_base + 1),
        tls: o.tls,
        dhcp: o.dhcp,
        ipv6: o.ipv6,
        slaac: o.slaac,
        queues: o.queues,
        mtu: o.mtu.unwrap_or(0),
        switch: "ls0".into(),
        subnet: o.subnet.clone(),
        chassis: format!("{}-chassis1", o.prefix),
        control_sock: o.dir.join("vswitchd.sock"),
        pmd_core: if o.pmd_cores.is_some() {
            None
        } else {
            o.pmd_core
        },
        northd_metrics: format!("http://127.0.0.1:{}/metrics", o.port_base + 2),
        vswitchd_metrics: format!("http://127.0.0.1:{}/metrics", o.port_base + 3),
        // Always a router, so every pod has a way out (a default route to
        // the router port on its subnet) and a Service VIP works with one subnet.
        router: Some("lr0".to_string()),
        ..Default::default()
    };
    st.nodes.push(crate::cluster::ChassisNode {
        name: st.chassis.clone(),
        netns: None,
        encap_ip: "127.0.0.1".into(),
        control_sock: st.control_sock.clone(),
        state_dir: o.dir.join("vswitchd-state"),
        log: o.dir.join("vswitchd.log"),
        vswitchd: None,
    });
    for j in 0..o.subnets {
        let subnet = nth_subnet(&o.subnet, j)?;
        let (gateway, _, _) = pod::pod_addr(&subnet, 0)?;
        let gateway = gateway
            .rsplit_once('.')
            .map(|(a, _)| format!("{a}.1"))
            .unwrap_or(gateway);
        let o4: Vec<u8> = gateway.split('.').filter_map(|x| x.parse().ok()).collect();
        st.switches.push(SwitchInfo {
            name: format!("ls{j}"),
            gateway_mac: format!("0a:58:{:02x}:{:02x}:{:02x}:01", o4[0], o4[1], o4[2]),
            subnet,
            gateway,
        });
    }
    st.save()?;
    let result = build(o, &mut st, pods).await;
    st.save()?;
    if let Err(e) = result {
        eprintln!("sandbox up failed: {e:#}; removing what was made");
        let _ = down(o);
        return Err(e);
    }
    Ok(st)
}

async fn build(o: &Opts, st: &mut State, pods: usize) -> anyhow::Result<()> {
    if o.chassis > 1 {
        // Every chassis in its own namespace on an underlay bridge; northd's SB
        // listens on the bridge, chassis 1's control socket stays the default.
        let net = crate::cluster::underlay_prefix(o.port_base);
        let gw = crate::cluster::create_underlay(&o.prefix, &net)?;
        st.sb = format!("{}://{gw}:{}", scheme(o.tls), o.port_base + 1);
        st.nodes.clear();
        for k in 1..=o.chassis {
            let node =
                crate::cluster::create_chassis(&o.prefix, k, &net, &o.dir, underlay_mtu(st))?;
            st.nodes.push(node);
            st.save()?;
        }
        st.chassis = st.nodes[0].name.clone();
        st.control_sock = st.nodes[0].control_sock.clone();
    }
    for i in 1..=pods {
        // Pods go round-robin over the switches (pod1 on ls0, pod2 on ls1, ...)
        // and over the chassis.
        let sw = st.switches[(i - 1) % st.switches.len()].clone();
        let node = st.nodes[(i - 1) % st.nodes.len()].clone();
        let p = create_pod(st, &format!("pod{i}"), i, &sw, &node)?;
        st.pods.push(p);
        st.save()?;
    }
    let ext_sw = SwitchInfo {
        name: EXT_SWITCH.into(),
        subnet: EXT_SUBNET.into(),
        gateway: EXT_GATEWAY.into(),
        gateway_mac: EXT_GATEWAY_MAC.into(),
    };
    if o.external {
        let mut p = create_pod(st, "ext", 0, &ext_sw, &st.nodes[0].clone())?;
        p.lport = "ext-host".into();
        st.external = Some(p);
        st.save()?;
    }
    // Store and security flags: every northd (standbys too) gets them.
    let mut store = etcd::store_args(o, st)?;
    store.extend(pki::northd_args(o, st)?);
    let mut args = store.clone();
    args.extend([
        "--nb-listen".into(),
        format!("127.0.0.1:{}", o.port_base),
        "--sb-listen".into(),
        st.sb
            .rsplit_once("://")
            .map_or(st.sb.as_str(), |(_, h)| h)
            .to_string(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{}", o.port_base + 2),
    ]);
    st.northd = Some(spawn(
        "switchyard-northd",
        &args,
        &o.dir.join("northd.log"),
    )?);
    st.save()?;
    wait_northd(st).await?;
    etcd::start_standbys(o, st, &store)?;
    let mut client = nb::connect(&st.nb, Duration::from_secs(5), &pki::operator_creds(st)).await?;
    let mut ops: Vec<Op> = st
        .switches
        .iter()
        .map(|s| {
            Op::LsAdd(pb::LogicalSwitch {
                name: s.name.clone(),
                subnet: s.subnet.clone(),
                other_config: switch_config(st),
                ..Default::default()
            })
        })
        .collect();
    if o.external {
        ops.push(Op::LsAdd(pb::LogicalSwitch {
            name: ext_sw.name.clone(),
            subnet: ext_sw.subnet.clone(),
            other_config: switch_config(st),
            ..Default::default()
        }));
    }
    if let Some(lr) = &st.router {
        ops.push(Op::LrAdd(pb::LogicalRouter {
            name: lr.clone(),
            enabled: true,
            ..Default::default()
        }));
        let ext = o.external.then_some(&ext_sw);
        for s in st.switches.iter().chain(ext) {
            let lrp = format!("{lr}-{}", s.name);
            let plen = s.subnet.rsplit('/').next().unwrap_or("24");
            ops.push(Op::LrpAdd(pb::LogicalRouterPort {
                name: lrp.clone(),
                router_name: lr.clone(),
                mac: s.gateway_mac.clone(),
                // --ipv6: the router port is ::1 of the switch's /64 too.
                networks: std::iter::once(format!("{}/{plen}", s.gateway))
                    .chain(
                        (st.ipv6 && s.name != EXT_SWITCH)
                            .then(|| format!("{}/64", pod::pod_addr6(&s.subnet, 1))),
                    )
                    .collect(),
                enabled: true,
                ipv6_ra_configs: pod::ra_configs(st, s),
                ..Default::default()
            }));
            ops.push(Op::LspAdd(pb::LogicalSwitchPort {
                name: format!("{}-{lr}", s.name),
                switch_name: s.name.clone(),
                addresses: vec!["router".into()],
                enabled: true,
                r#type: "router".into(),
                options: [("router-port".to_string(), lrp)].into(),
                ..Default::default()
            }));
        }
    }
    if st.dhcp {
        ops.extend(pod::dhcp_options(st));
    }
    for p in st.pods.iter().chain(&st.external) {
        let addr = format!("{} {} {}", p.mac, p.ip, p.ip6)
            .trim_end()
            .to_string();
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: p.lport.clone(),
            switch_name: p.switch.clone(),
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            dhcpv4_options: if st.dhcp && p.switch != EXT_SWITCH {
                pod::dhcp_id(&p.switch)
            } else {
                String::new()
            },
            ..Default::default()
        }));
    }
    nb::transact(&mut client, ops, false, false).await?;

    for k in 0..st.nodes.len() {
        let node = st.nodes[k].clone();
        let mut args = vec![
            "--chassis".into(),
            node.name.clone(),
            "--sb".into(),
            st.sb.clone(),
            "--state-dir".into(),
            node.state_dir.display().to_string(),
            "--control-sock".into(),
            node.control_sock.display().to_string(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{}", o.port_base + 3),
        ];
        if node.netns.is_some() {
            args.extend([
                "--encap-ip".into(),
                node.encap_ip.clone(),
                "--underlay".into(),
                "ul0".into(),
            ]);
        }
        if let Some(list) = &o.pmd_cores {
            args.push("--pmd-cores".into());
            args.push(list.clone());
        } else if let Some(c) = o.pmd_core {
            args.push("--pmd-cores".into());
            args.push(c.to_string());
        }
        if let Some(n) = o.ct_capacity {
            args.push("--ct-capacity".into());
            args.push(n.to_string());
        }
        if let Some(n) = o.dns_rate {
            args.push("--dns-rate".into());
            args.push(n.to_string());
        }
        args.extend(pki::vswitchd_args(st, &node.name));
        args.extend(o.vswitchd_args.iter().cloned());
        let d = spawn_in(
            node.netns.as_deref(),
            "switchyard-vswitchd",
            &args,
            &node.log,
        )?;
        if k == 0 {
            st.vswitchd = Some(d.clone());
        }
        st.nodes[k].vswitchd = Some(d);
        st.save()?;
        wait_vswitchd_at(&node.control_sock, &node.log)?;
    }
    for p in st.pods.iter().chain(&st.external) {
        let Some(node) = st.node(&p.chassis) else {
            bail!("pod {} is on unknown chassis {}", p.name, p.chassis);
        };
        let req = Request::PortAdd {
            iface: p.host_iface.clone(),
            lport: p.lport.clone(),
        };
        if let Response::Error(e) = call(&node.control_sock, &req)? {
            bail!(
                "port-add {} {} on {}: {e}",
                p.host_iface,
                p.lport,
                node.name
            );
        }
    }
    for p in &st.pods {
        if st.dhcp {
            pod::dhcp_client(st, p)?;
        }
        pod::solicit_router(st, p)?;
    }
    // Ready when every pod reaches the first one (and the first reaches the second).
    let Some(first) = st.pods.first().cloned() else {
        return Ok(());
    };
    let ips = [&first.ip, &first.ip6];
    for (p, ip) in st.pods.iter().skip(1).flat_map(|p| ips.map(|ip| (p, ip))) {
        if !ip.is_empty() && !wait_until(Duration::from_secs(15), || ping_once(&p.netns, ip)) {
            bail!(
                "pod {} cannot ping {ip} through the switch; see {}",
                p.name,
                o.dir.join("vswitchd.log").display()
            );
        }
    }
    Ok(())
}

async fn wait_northd(st: &State) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match nb::connect(&st.nb, Duration::ZERO, &pki::operator_creds(st)).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("northd did not come up; see northd.log"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn wait_vswitchd(st: &State) -> anyhow::Result<()> {
    wait_vswitchd_at(&st.control_sock, &st.dir.join("vswitchd.log"))
}

fn wait_vswitchd_at(sock: &Path, log: &Path) -> anyhow::Result<()> {
    let sock = sock.to_path_buf();
    if !wait_until(
        Duration::from_secs(10),
        || matches!(call(&sock, &Request::Status), Ok(Response::Status(s)) if s.sb_connected && s.sb_version > 0),
    ) {
        bail!("vswitchd did not connect to northd; see {}", log.display());
    }
    Ok(())
}

/// Restarts one daemon with its recorded command line (after SIGKILL with `kill`,
/// to exercise crash recovery) and waits until it is serving again.
pub async fn restart(o: &Opts, daemon: &str, kill: bool) -> anyhow::Result<()> {
    let Some(mut st) = State::load(&o.dir) else {
        bail!("no sandbox at {} (syctl sandbox up)", o.dir.display());
    };
    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
    match daemon {
        "northd" | "switchyard-northd" => {
            let d = st
                .northd
                .clone()
                .ok_or_else(|| anyhow::anyhow!("northd was never started"))?;
            stop_daemon_with(&d, "switchyard-northd", sig);
            st.northd = Some(spawn("switchyard-northd", &d.args, &d.log)?);
            st.save()?;
            wait_northd(&st).await?;
            // Chassis reconnect on their own; wait for ours so callers see a settled system.
            if st.vswitchd.is_some() {
                wait_vswitchd(&st)?;
            }
        }
        "vswitchd" | "switchyard-vswitchd" => {
            let d = st
                .vswitchd
                .clone()
                .ok_or_else(|| anyhow::anyhow!("vswitchd was never started"))?;
            stop_daemon_with(&d, "switchyard-vswitchd", sig);
            st.vswitchd = Some(spawn("switchyard-vswitchd", &d.args, &d.log)?);
            st.save()?;
            wait_vswitchd(&st)?;
        }
        other => bail!("unknown daemon {other:?}: use northd or vswitchd"),
    }
    Ok(())
}

/// The MTU of the sandbox's pods: `--mtu`, else 1,500 on one chassis and
/// 1,500 less the Geneve overhead across several.
pub fn pod_mtu(st: &State) -> u32 {
    match st.mtu {
        0 if st.nodes.len() > 1 => crate::cluster::POD_MTU,
        0 => 1500,
        m => m,
    }
}

/// The underlay's MTU: room for a pod's frame and its encapsulation.
fn underlay_mtu(st: &State) -> u32 {
    match st.mtu {
        0 => crate::cluster::UNDERLAY_MTU,
        m => m + switchyard_geneve::tunnel::MTU_OVERHEAD as u32,
    }
}

/// Every sandbox switch's other_config: its MTU, when `--mtu` set one.
fn switch_config(st: &State) -> std::collections::HashMap<String, String> {
    let mut c = std::collections::HashMap::new();
    if st.mtu != 0 {
        c.insert("mtu".to_string(), st.mtu.to_string());
    }
    c
}
