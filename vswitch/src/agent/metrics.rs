//! vswitchd's Prometheus page: PMD, drop, port and tunnel counters and the
//! agent's state, named by Prometheus conventions.

use super::Agent;
use switchyard_southbound::DropReason;

impl Agent {
    /// The Prometheus page.
    pub fn metrics(&self) -> String {
        let mut p = switchyard_southbound::metrics::Page::default();
        let per_pmd: Vec<Vec<(&str, &str, u64)>> =
            self.pmds.iter().map(|h| pmd_counters(&h.stats)).collect();
        let labels: Vec<String> = (0..self.pmds.len()).map(|i| i.to_string()).collect();
        for (k, (name, help, _)) in per_pmd[0].iter().enumerate() {
            p.family(name, "counter", help);
            for (i, rows) in per_pmd.iter().enumerate() {
                p.sample(name, &[("pmd", labels[i].as_str())], rows[k].2 as f64);
            }
        }
        let n = "switchyard_conntrack_entries";
        p.family(n, "gauge", "Connections tracked now.");
        for (i, h) in self.pmds.iter().enumerate() {
            p.sample(
                n,
                &[("pmd", labels[i].as_str())],
                h.stats.ct_entries.get() as f64,
            );
        }
        let n = "switchyard_datapath_drops_total";
        p.family(n, "counter", "Packets dropped by the datapath, by reason.");
        for (i, h) in self.pmds.iter().enumerate() {
            for r in DropReason::ALL {
                p.sample(
                    n,
                    &[("pmd", labels[i].as_str()), ("reason", r.as_str())],
                    h.stats.drops[*r as usize].get() as f64,
                );
            }
        }
        // Dropped by the underlay's XDP program, before any PMD saw them.
        for (reason, v) in self.underlay.iter().flat_map(|u| u.xdp_drops()) {
            p.sample(n, &[("pmd", "xdp"), ("reason", reason)], v as f64);
        }
        let port_families: [(&str, &str, usize); 6] = [
            (
                "switchyard_port_rx_packets_total",
                "Packets received on the port.",
                0,
            ),
            (
                "switchyard_port_rx_bytes_total",
                "Bytes received on the port.",
                1,
            ),
            (
                "switchyard_port_tx_packets_total",
                "Packets transmitted on the port.",
                2,
            ),
            (
                "switchyard_port_tx_bytes_total",
                "Bytes transmitted on the port.",
                3,
            ),
            (
                "switchyard_port_rx_dropped_total",
                "Received packets dropped.",
                4,
            ),
            (
                "switchyard_port_tx_dropped_total",
                "Packets that could not be transmitted.",
                5,
            ),
        ];
        // Per port over every PMD (each counts its own share).
        for (name, help, k) in port_families {
            p.family(name, "counter", help);
            for e in self.ports.values() {
                p.sample(
                    name,
                    &[("iface", &e.iface), ("lport", &e.lport)],
                    e.counters()[k] as f64,
                );
            }
        }
        p.single(
            "switchyard_vswitchd_sb_connected",
            "gauge",
            "1 while connected to northd's SB.",
            f64::from(u8::from(self.sb_connected)),
        )
        .single(
            "switchyard_vswitchd_sb_version",
            "gauge",
            "SB version of the tables in use.",
            self.sb.as_ref().map(|s| s.version).unwrap_or(0) as f64,
        )
        .single(
            "switchyard_vswitchd_table_generation",
            "gauge",
            "Table sets published to the PMD.",
            self.generation as f64,
        )
        .single(
            "switchyard_vswitchd_ports",
            "gauge",
            "Bound ports.",
            self.ports.len() as f64,
        )
        .single(
            "switchyard_vswitchd_pending_ports",
            "gauge",
            "Configured ports whose interface is not open yet.",
            self.pending.len() as f64,
        )
        .single(
            "switchyard_vswitchd_pmd_auto_lb_moves_total",
            "counter",
            "Ports --pmd-auto-lb moved to other PMDs.",
            self.pmds_auto_lb_moves as f64,
        )
        .single(
            "switchyard_vswitchd_untranslatable_flows",
            "gauge",
            "SB flows this vswitchd could not translate.",
            self.untranslatable as f64,
        );
        if let Some(u) = &self.underlay {
            let tunnels = u.list(&self.shared.tables.load());
            type Get = fn(&crate::control::TunnelInfo) -> u64;
            let families: [(&str, &str, Get); 5] = [
                (
                    "switchyard_tunnel_tx_packets_total",
                    "Packets sent through the tunnel.",
                    |t| t.tx_packets,
                ),
                (
                    "switchyard_tunnel_tx_bytes_total",
                    "Inner bytes sent through the tunnel.",
                    |t| t.tx_bytes,
                ),
                (
                    "switchyard_tunnel_rx_packets_total",
                    "Packets received from the tunnel.",
                    |t| t.rx_packets,
                ),
                (
                    "switchyard_tunnel_rx_bytes_total",
                    "Inner bytes received from the tunnel.",
                    |t| t.rx_bytes,
                ),
                (
                    "switchyard_tunnel_tx_errors_total",
                    "Packets that could not be sent (unresolved, too big, ring full).",
                    |t| t.tx_errors,
                ),
            ];
            for (name, help, get) in families {
                p.family(name, "counter", help);
                for t in &tunnels {
                    p.sample(
                        name,
                        &[("remote_chassis", &t.chassis), ("remote_ip", &t.remote_ip)],
                        get(t) as f64,
                    );
                }
            }
        }
        p.into_string()
    }
}

/// One PMD's counters for the Prometheus page: (name, help, value).
fn pmd_counters(s: &crate::stats::PmdStats) -> Vec<(&'static str, &'static str, u64)> {
    vec![
            (
                "switchyard_pmd_packets_total",
                "Packets received by the PMD thread.",
                s.packets.get(),
            ),
            (
                "switchyard_pmd_emc_hits_total",
                "Exact-match cache hits.",
                s.emc_hits.get(),
            ),
            (
                "switchyard_pmd_emc_misses_total",
                "Exact-match cache misses (then the megaflow cache is asked).",
                s.emc_misses.get(),
            ),
            (
                "switchyard_pmd_megaflow_hits_total",
                "Exact-match misses the megaflow cache answered.",
                s.megaflow_hits.get(),
            ),
            (
                "switchyard_pmd_megaflow_misses_total",
                "Megaflow misses (slow-path lookups).",
                s.megaflow_misses.get(),
            ),
            (
                "switchyard_pmd_uncacheable_total",
                "Verdicts too wide to cache.",
                s.uncacheable.get(),
            ),
            (
                "switchyard_pmd_busy_cycles_total",
                "CPU cycles spent on batches with packets.",
                s.busy_cycles.get(),
            ),
            (
                "switchyard_pmd_iterations_total",
                "Poll loop iterations.",
                s.iterations.get(),
            ),
            (
                "switchyard_pmd_idle_sleeps_total",
                "Times the PMD blocked for lack of traffic.",
                s.idle_sleeps.get(),
            ),
            (
                "switchyard_lb_connections_total",
                "Connections a load balancer sent to a backend.",
                s.lb_new.get(),
            ),
            (
                "switchyard_checksums_completed_total",
                "Partial TCP/UDP checksums (pod checksum offload) completed by the datapath.",
                s.csum_completed.get(),
            ),
            (
                "switchyard_nat_rewrites_total",
                "Packets translated by conntrack (load balancing and NAT).",
                s.nat_rewrites.get(),
            ),
            (
                "switchyard_dns_answered_total",
                "DNS queries the datapath answered from a switch's records.",
                s.dns_answered.get(),
            ),
            (
                "switchyard_dns_nxdomain_total",
                "DNS queries answered NXDOMAIN (a name under the switch's dns_domain without a record).",
                s.dns_nxdomain.get(),
            ),
            (
                "switchyard_dns_passed_total",
                "DNS queries the datapath had no answer for and let go on.",
                s.dns_passed.get(),
            ),
            (
                "switchyard_dns_malformed_total",
                "DNS queries the datapath could not read (let go on).",
                s.dns_malformed.get(),
            ),
            (
                "switchyard_dhcp_offers_total",
                "DHCPOFFERs the datapath sent.",
                s.dhcp_offers.get(),
            ),
            (
                "switchyard_dhcp_acks_total",
                "DHCPACKs the datapath sent.",
                s.dhcp_acks.get(),
            ),
            (
                "switchyard_dhcp_naks_total",
                "DHCPNAKs the datapath sent (a request for another address).",
                s.dhcp_naks.get(),
            ),
            (
                "switchyard_dhcp_passed_total",
                "DHCP messages the datapath let go on (a request to another server).",
                s.dhcp_passed.get(),
            ),
            (
                "switchyard_conntrack_inserts_total",
                "Connections entered in conntrack.",
                s.ct_inserts.get(),
            ),
            (
                "switchyard_conntrack_full_drops_total",
                "New connections dropped because conntrack was full.",
                s.ct_full.get(),
            ),
            (
                "switchyard_conntrack_expired_total",
                "Connections removed by timeout.",
                s.ct_expired.get(),
            ),
            (
                "switchyard_conntrack_early_drops_total",
                "Entries evicted (unconfirmed or not yet assured) to make room in a full table.",
                s.ct_early_drops.get(),
            ),
    ]
}
