//! `syctl sandbox ...`: its subcommands and the options every one of them takes.

use crate::{sandbox, DEFAULT_SANDBOX_DIR};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SandboxOpts {
    /// Directory for the sandbox's state, databases and logs.
    #[arg(long, env = "SWITCHYARD_SANDBOX_DIR", default_value = DEFAULT_SANDBOX_DIR)]
    dir: PathBuf,
    /// Prefix of every namespace and interface the sandbox creates.
    #[arg(long, default_value = "sy")]
    pub(crate) prefix: String,
    /// NB port (SB uses the next one).
    #[arg(long, default_value_t = 16641)]
    port_base: u16,
    /// Pod subnet (a /24).
    #[arg(long, default_value = "10.244.0.0/24")]
    subnet: String,
    /// Logical switches, one /24 each from --subnet upwards (10.244.0.0/24,
    /// 10.244.1.0/24, ...); with two or more, router lr0 joins them and pods are
    /// spread round-robin over them with lr0 as their default gateway.
    #[arg(long, default_value_t = 1)]
    subnets: usize,
    /// Chassis: with two or more, each is a namespace running its own vswitchd
    /// on an underlay bridge, pods are spread round-robin over them and reach
    /// each other through Geneve; pods' MTU is the underlay's (1500) less 100.
    #[arg(long, default_value_t = 1)]
    chassis: usize,
    /// Pods on each chassis (instead of --pods: chassis × this many pods).
    #[arg(long)]
    pods_per_chassis: Option<usize>,
    /// Pin vswitchd's PMD thread to this core (default: the last core, when there
    /// are two or more; pods' receive processing is steered to the other cores).
    #[arg(long)]
    pmd_core: Option<usize>,
    /// Leave the PMD thread unpinned and pods' receive processing where it falls.
    #[arg(long, conflicts_with = "pmd_core")]
    no_pin: bool,
    /// Run several PMD threads, pinned to these cores ("0,1", "0-3"); pods'
    /// receive processing stays where it falls.
    #[arg(long, conflicts_with_all = ["pmd_core", "no_pin"])]
    pmd_cores: Option<String>,
    /// Receive and transmit queues of every pod's veth (1-16): with several
    /// PMDs, a port's queues are spread over them (`vswitch pmd-rxq-show`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    queues: u16,
    /// An extra option for every vswitchd (repeatable), e.g.
    /// --vswitchd-arg=--pmd-auto-lb.
    #[arg(long = "vswitchd-arg", allow_hyphen_values = true)]
    vswitchd_args: Vec<String>,
    /// Also an "external" network behind router lr0: switch ext (172.16.0.0/24,
    /// router port 172.16.0.1) with one host namespace PREFIX-ext at
    /// 172.16.0.10 that has no route to the pods (reach it with lr-nat-add).
    #[arg(long)]
    external: bool,
    /// Conntrack capacity of each vswitchd (default: vswitchd's, 1,000,000).
    #[arg(long)]
    ct_capacity: Option<u64>,
    /// DNS answers the datapath gives each port per second (default:
    /// vswitchd's, 20,000; 0: unlimited, for benchmarks).
    #[arg(long)]
    dns_rate: Option<u32>,
    /// Pods start without addresses and ask for them by DHCP (busybox
    /// udhcpc); the datapath answers from one DHCP options row per switch.
    #[arg(long)]
    dhcp: bool,
    /// Keep the NB on an etcd cluster of this many members (1-5; Debian's
    /// etcd, client ports from 2 x port base - 4000), not northd's file store.
    #[arg(long, default_value_t = 0)]
    etcd: usize,
    /// Run this many northds on the etcd cluster (needs --etcd): one active,
    /// the others standbys that take over when it dies.
    #[arg(long, default_value_t = 1, requires = "etcd")]
    northd: usize,
    /// Mutual TLS everywhere: a CA of the sandbox's own signs northd's, every
    /// chassis's and the operator's certificates (DIR/pki); chassis may act
    /// only as themselves, the NB needs the operator certificate.
    #[arg(long)]
    tls: bool,
    /// The MTU of every switch (other_config:mtu) and pod, 576-9000
    /// (default 1,500; across chassis, less the Geneve overhead); the
    /// underlay gets room for the encapsulation on top.
    #[arg(long, value_parser = clap::value_parser!(u32).range(576..=9000))]
    mtu: Option<u32>,
    /// Dual-stack pods: each also gets an IPv6 address on its switch's /64
    /// (10.244.N.0/24 -> fd00:af4:N::/64), in its addresses and port security.
    #[arg(long)]
    ipv6: bool,
    /// Like --ipv6, but the pods configure IPv6 themselves from the router's
    /// advertisements (SLAAC: EUI-64 address, default route, MTU); the
    /// router ports get ipv6_ra_configs address_mode=slaac.
    #[arg(long)]
    slaac: bool,
}

impl SandboxOpts {
    pub(crate) fn opts(&self) -> sandbox::Opts {
        sandbox::Opts {
            dir: self.dir.clone(),
            prefix: self.prefix.clone(),
            port_base: self.port_base,
            subnet: self.subnet.clone(),
            subnets: self.subnets,
            chassis: self.chassis,
            pods_per_chassis: self.pods_per_chassis,
            external: self.external,
            ct_capacity: self.ct_capacity,
            dns_rate: self.dns_rate,
            dhcp: self.dhcp,
            etcd: self.etcd,
            northds: self.northd,
            tls: self.tls,
            mtu: self.mtu,
            ipv6: self.ipv6 || self.slaac,
            slaac: self.slaac,
            pmd_cores: self.pmd_cores.clone(),
            queues: self.queues,
            vswitchd_args: self.vswitchd_args.clone(),
            pmd_core: if self.no_pin {
                None
            } else {
                self.pmd_core.or_else(sandbox::default_pmd_core)
            },
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum SandboxCmd {
    /// Create pods, start northd and vswitchd, build the topology, wait for ping.
    Up {
        #[arg(long, default_value_t = 2)]
        pods: usize,
        #[command(flatten)]
        o: SandboxOpts,
    },
    /// Pods, daemons, logs.
    Status {
        #[command(flatten)]
        o: SandboxOpts,
    },
    /// Restart a daemon (northd or vswitchd) with its recorded command line.
    Restart {
        daemon: String,
        /// SIGKILL instead of SIGTERM (crash recovery).
        #[arg(long)]
        kill: bool,
        #[command(flatten)]
        o: SandboxOpts,
    },
    /// Let a container runtime use the sandbox: write a conflist for
    /// switchyard-cni and copy the plugin where containerd and kubelet look.
    CniInstall {
        #[arg(long, default_value = "/etc/cni/net.d")]
        conf_dir: PathBuf,
        #[arg(long, default_value = "/opt/cni/bin")]
        bin_dir: PathBuf,
        /// The conflist's cniVersion (containerd 1.6's libcni reads up to 1.0.0).
        #[arg(long, default_value = "1.0.0")]
        cni_version: String,
        /// Plugins chained after ours (e.g. tuning), by type.
        #[arg(long, value_delimiter = ',')]
        chain: Vec<String>,
        #[command(flatten)]
        o: SandboxOpts,
    },
    /// Remove everything the sandbox made.
    Down {
        #[command(flatten)]
        o: SandboxOpts,
    },
    /// Up, ping every pair, measure TCP throughput, print a summary, then down.
    Demo {
        #[arg(long, default_value_t = 3)]
        pods: usize,
        /// Seconds of iperf3.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Leave the sandbox up afterwards to explore it.
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        o: SandboxOpts,
    },
}
