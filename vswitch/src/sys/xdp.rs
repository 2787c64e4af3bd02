//! Loading Switchyard's XDP program onto an interface through bpf_link (so the
//! kernel detaches it when vswitchd dies, even on SIGKILL) and registering AF_XDP
//! sockets in its XSKMAP.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use std::os::fd::AsRawFd;

static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xsk_redirect.o"));

/// Which XDP attach mode to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native if the driver has it, else generic.
    Auto,
    Native,
    Generic,
}

/// The program attached to one interface; dropping it detaches the program.
pub struct XdpAttachment {
    ebpf: Ebpf,
    pub mode: &'static str,
}

impl std::fmt::Debug for XdpAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XdpAttachment({})", self.mode)
    }
}

impl XdpAttachment {
    /// Loads and attaches the program to `iface`.
    /// `geneve_only`: steer only Geneve (UDP 6081) to the sockets, as on an
    /// underlay interface the kernel also uses.
    pub fn attach(iface: &str, mode: AttachMode, geneve_only: bool) -> anyhow::Result<Self> {
        let mut ebpf = Ebpf::load(PROGRAM)?;
        let name = if geneve_only {
            "switchyard_xsk_geneve"
        } else {
            "switchyard_xsk"
        };
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow::anyhow!("XDP object lacks program {name}"))?
            .try_into()?;
        prog.load()?;
        // On virtual interfaces (veth, tap: no backing device) native XDP converts
        // every skb into an XDP buffer on the sender's core, which measured 30%
        // fewer 64-byte packets/s than generic mode here with the same TCP
        // throughput; real NICs get native mode (and zero-copy) first. A
        // virtual interface with several queues gets native mode too: generic
        // XDP sees every veth frame on queue 0 (veth records the queue only on
        // its NAPI path), so the other queues, and their PMDs, would sit idle.
        let virtual_if = !std::path::Path::new(&format!("/sys/class/net/{iface}/device")).exists()
            && super::rx_queue_count(iface) < 2;
        let tries: &[(XdpMode, &'static str)] = match mode {
            AttachMode::Auto if virtual_if => {
                &[(XdpMode::Skb, "generic"), (XdpMode::Driver, "native")]
            }
            AttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic")],
            AttachMode::Native => &[(XdpMode::Driver, "native")],
            AttachMode::Generic => &[(XdpMode::Skb, "generic")],
        };
        let mut last = None;
        for (m, name) in tries {
            match prog.attach(iface, *m) {
                Ok(_) => {
                    return Ok(XdpAttachment { ebpf, mode: name });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow::anyhow!(
            "cannot attach XDP program to {iface}: {} (another XDP program attached?)",
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
    }

    /// Steers queue `queue` into the socket `fd`.
    pub fn register(&mut self, queue: u32, fd: &impl AsRawFd) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut("xsks_map")
            .ok_or_else(|| anyhow::anyhow!("XDP object lacks xsks_map"))?;
        let mut xsks: XskMap<&mut aya::maps::MapData> = XskMap::try_from(map)?;
        xsks.set(queue, fd.as_raw_fd(), 0)?;
        Ok(())
    }
}

impl XdpAttachment {
    /// Takes the underlay program's trust maps (see `bpf/xsk_redirect.c`), for
    /// the agent to keep in step with the southbound database.
    pub fn take_underlay_filter(&mut self) -> anyhow::Result<UnderlayFilter> {
        let mut take = |name: &str| {
            self.ebpf
                .take_map(name)
                .ok_or_else(|| anyhow::anyhow!("XDP object lacks {name}"))
        };
        Ok(UnderlayFilter {
            peers: HashMap::try_from(take("geneve_peers")?)?,
            local: Array::try_from(take("geneve_local")?)?,
            drops: PerCpuArray::try_from(take("geneve_drops")?)?,
            known: std::collections::BTreeSet::new(),
        })
    }
}

/// The underlay XDP program's view of who may send Geneve to whom. Updated
/// by the control thread when the southbound database changes, never per packet.
pub struct UnderlayFilter {
    peers: HashMap<MapData, u32, u8>,
    local: Array<MapData, u32>,
    drops: PerCpuArray<MapData, u64>,
    known: std::collections::BTreeSet<u32>,
}

impl std::fmt::Debug for UnderlayFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnderlayFilter({} peers)", self.known.len())
    }
}

/// An IPv4 address (host order, as the tables keep it) as the XDP program
/// reads it from the packet: the header's bytes in memory order.
fn wire(ip: u32) -> u32 {
    u32::from_ne_bytes(ip.to_be_bytes())
}

impl UnderlayFilter {
    /// Accept Geneve only to `ip` (host order) from now on.
    pub fn set_local(&mut self, ip: u32) -> anyhow::Result<()> {
        self.local.set(0, wire(ip), 0)?;
        Ok(())
    }

    /// Makes `peers` (host order) the set of addresses Geneve is accepted from.
    pub fn set_peers(&mut self, peers: &std::collections::BTreeSet<u32>) -> anyhow::Result<()> {
        for &ip in peers.difference(&self.known) {
            self.peers.insert(wire(ip), 1, 0)?;
        }
        for &ip in self.known.difference(peers) {
            // Already gone is as good as removed.
            let _ = self.peers.remove(&wire(ip));
        }
        self.known = peers.clone();
        Ok(())
    }

    /// Frames the program dropped: (unknown source, wrong destination),
    /// summed over CPUs.
    pub fn drops(&self) -> (u64, u64) {
        let sum = |i: u32| {
            self.drops
                .get(&i, 0)
                .map(|v| v.iter().sum::<u64>())
                .unwrap_or(0)
        };
        (sum(0), sum(1))
    }
}
