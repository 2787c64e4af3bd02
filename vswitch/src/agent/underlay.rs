//! The local end of the Geneve tunnels: the underlay interface, served by an
//! AF_XDP socket whose XDP program steers only UDP 6081 to it (ARP and the
//! control plane stay with the kernel), and the remote chassis' MACs, which the
//! kernel resolves: a probe datagram makes it ARP, `/proc/net/arp` tells the
//! answer. An underlay reached through a router resolves the gateway instead.

use crate::control::TunnelInfo;
use crate::stats::TunnelStats;
use crate::tables::{Tables, Underlay};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What the agent keeps about the underlay across table generations.
#[derive(Debug)]
pub struct UnderlayState {
    pub iface: String,
    pub info: Underlay,
    /// Remote encap IP -> MAC to send to (the remote's, or the gateway's).
    pub macs: HashMap<u32, u64>,
    pub tunnel_stats: BTreeMap<String, Arc<TunnelStats>>,
    /// The XDP program's trust maps (none over the in-memory port).
    pub filter: Option<crate::sys::xdp::UnderlayFilter>,
    /// XDP drop counts at the last `pmd-stats --clear`.
    xdp_cleared: (u64, u64),
}

/// Names of the XDP program's drop counters, as `pmd-stats` and Prometheus
/// show them beside the PMD's reasons.
pub const XDP_DROPS: [&str; 2] = ["xdp_tunnel_unknown_source", "xdp_tunnel_wrong_destination"];

fn read_sys(iface: &str, what: &str) -> anyhow::Result<String> {
    let p = format!("/sys/class/net/{iface}/{what}");
    Ok(std::fs::read_to_string(&p)
        .map_err(|e| anyhow::anyhow!("cannot read {p}: {e} (does --underlay {iface} exist?)"))?
        .trim()
        .to_string())
}

impl UnderlayState {
    /// Describes `iface` (MAC, MTU) for a tunnel end at `ip`; the port itself
    /// is opened by the agent at `slot`.
    pub fn new(iface: &str, ip: &str, slot: u16) -> anyhow::Result<Self> {
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| anyhow::anyhow!("--encap-ip {ip:?} is not an IPv4 address"))?;
        let mac = switchyard_southbound::parse_mac(&read_sys(iface, "address")?)
            .ok_or_else(|| anyhow::anyhow!("{iface} has no Ethernet address"))?;
        let mtu: u16 = read_sys(iface, "mtu")?.parse().unwrap_or(1500);
        Ok(UnderlayState {
            iface: iface.to_string(),
            info: Underlay {
                slot,
                ip: u32::from(ip),
                mac,
                mtu,
            },
            macs: HashMap::new(),
            tunnel_stats: BTreeMap::new(),
            filter: None,
            xdp_cleared: (0, 0),
        })
    }

    /// Gives the XDP program this chassis's encap IP and takes over its maps.
    pub fn set_filter(&mut self, mut f: crate::sys::xdp::UnderlayFilter) -> anyhow::Result<()> {
        f.set_local(self.info.ip)?;
        self.filter = Some(f);
        Ok(())
    }

    /// Lets Geneve in at XDP from exactly the chassis `t` has tunnels to.
    pub fn sync_filter(&mut self, t: &Tables) {
        let Some(f) = &mut self.filter else { return };
        let peers = t.tunnels.iter().map(|x| x.ip).collect();
        if let Err(e) = f.set_peers(&peers) {
            // The PMD still checks every source: a failed update costs cycles,
            // not trust.
            tracing::warn!(error = %e, "cannot update the underlay XDP filter");
        }
    }

    /// The XDP program's drops since the last clear, named as [`XDP_DROPS`].
    pub fn xdp_drops(&self) -> [(&'static str, u64); 2] {
        let (a, b) = self.filter.as_ref().map(|f| f.drops()).unwrap_or((0, 0));
        [
            (XDP_DROPS[0], a.saturating_sub(self.xdp_cleared.0)),
            (XDP_DROPS[1], b.saturating_sub(self.xdp_cleared.1)),
        ]
    }

    /// Starts the XDP drop counts from zero (`pmd-stats --clear`).
    pub fn clear_xdp_drops(&mut self) {
        if let Some(f) = &self.filter {
            self.xdp_cleared = f.drops();
        }
    }

    /// Looks up the MACs of tunnels that have none yet, asking the kernel to
    /// resolve them; returns whether any became known (tables need rebuilding).
    pub fn resolve(&mut self, t: &Tables) -> bool {
        let missing: Vec<u32> = t
            .tunnels
            .iter()
            .filter(|x| !self.macs.contains_key(&x.ip))
            .map(|x| x.ip)
            .collect();
        if missing.is_empty() {
            return false;
        }
        let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        let table = parse_proc_arp(&arp, &self.iface);
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let mut changed = false;
        for ip in missing {
            let hop = gateway_for(&routes, &self.iface, ip).unwrap_or(ip);
            match table.get(&hop) {
                Some(&mac) => {
                    self.macs.insert(ip, mac);
                    changed = true;
                }
                None => probe(self.info.ip, hop),
            }
        }
        changed
    }

    /// The tunnels as `tunnel-list` shows them.
    pub fn list(&self, t: &Tables) -> Vec<TunnelInfo> {
        t.tunnels
            .iter()
            .map(|x| TunnelInfo {
                chassis: x.chassis.clone(),
                remote_ip: Ipv4Addr::from(x.ip).to_string(),
                remote_mac: if x.mac == 0 {
                    "unresolved".into()
                } else {
                    switchyard_southbound::fmt_mac(x.mac)
                },
                tx_packets: x.stats.tx_packets.get(),
                tx_bytes: x.stats.tx_bytes.get(),
                rx_packets: x.stats.rx_packets.get(),
                rx_bytes: x.stats.rx_bytes.get(),
                tx_errors: x.stats.tx_errors.get(),
            })
            .collect()
    }
}

/// Makes the kernel ARP for `ip`: one empty datagram to the discard port.
fn probe(src: u32, ip: u32) {
    if let Ok(s) = std::net::UdpSocket::bind((Ipv4Addr::from(src), 0)) {
        let _ = s.send_to(&[], (Ipv4Addr::from(ip), 9));
    }
}

/// `/proc/net/arp` rows of `iface` that are complete: IP -> MAC.
pub fn parse_proc_arp(text: &str, iface: &str) -> HashMap<u32, u64> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // IP, HW type, Flags (0x2 = complete), HW address, Mask, Device
            if f.len() < 6
                || f[5] != iface
                || u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()? & 2 == 0
            {
                return None;
            }
            let ip: Ipv4Addr = f[0].parse().ok()?;
            Some((u32::from(ip), switchyard_southbound::parse_mac(f[3])?))
        })
        .collect()
}

/// The gateway `/proc/net/route` gives for `ip` out of `iface` (longest prefix),
/// or `None` when `ip` is on-link.
pub fn gateway_for(text: &str, iface: &str, ip: u32) -> Option<u32> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    let mut best: Option<(u32, u32)> = None; // (mask, gateway)
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || f[0] != iface {
            continue;
        }
        // /proc/net/route prints the network-order word as a host-order number:
        // `from_be` turns it back into the address's value.
        let (Some(dst), Some(gw), Some(mask)) = (hex(f[1]), hex(f[2]), hex(f[7])) else {
            continue;
        };
        if ip & mask == dst && best.is_none_or(|(m, _)| mask > m) {
            best = Some((mask, gw));
        }
    }
    best.and_then(|(_, gw)| (gw != 0).then_some(gw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_arp_complete_entries_of_the_interface_only() {
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                    172.31.0.12      0x1         0x2         0a:58:ac:1f:00:0c     *        ul0\n\
                    172.31.0.13      0x1         0x0         00:00:00:00:00:00     *        ul0\n\
                    10.0.0.1         0x1         0x2         0a:00:00:00:00:01     *        eth9\n";
        let m = parse_proc_arp(text, "ul0");
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[&u32::from(Ipv4Addr::new(172, 31, 0, 12))],
            0x0a58_ac1f_000c
        );
    }

    #[test]
    fn route_gateway_or_on_link() {
        // 172.31.0.0/24 on-link; default via 172.31.0.1 (little-endian hex, as the kernel prints).
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    ul0\t00000000\t01001FAC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    ul0\t00001FAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let on_link = u32::from(Ipv4Addr::new(172, 31, 0, 12));
        assert_eq!(gateway_for(text, "ul0", on_link), None);
        let far = u32::from(Ipv4Addr::new(192, 168, 9, 9));
        assert_eq!(
            gateway_for(text, "ul0", far),
            Some(u32::from(Ipv4Addr::new(172, 31, 0, 1)))
        );
    }
}
