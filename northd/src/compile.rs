//! The compiler from the northbound model to southbound contents: datapath and
//! port bindings, multicast groups and logical flows, stage by stage. Every flow
//! is added through [`Lflows::add`], which records the source line of its builder.

use crate::model::{parse_addresses, Nb};
use ipnet::IpNet;
use switchyard_southbound::pb::{self, action::Kind, Action, FieldMatch, LogicalFlow};
use switchyard_southbound::{DropReason, Field, Stage, MC_FLOOD_KEY, MC_UNKNOWN_KEY};

/// Southbound contents derived from NB alone (chassis and claims are added later).
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub datapaths: Vec<pb::DatapathBinding>,
    pub port_bindings: Vec<pb::PortBinding>,
    pub multicast_groups: Vec<pb::MulticastGroup>,
    pub flows: Vec<LogicalFlow>,
    pub load_balancers: Vec<pb::SbLoadBalancer>,
    pub nats: Vec<pb::SbNat>,
    pub dns: Vec<pb::SbDns>,
    pub dhcp: Vec<pb::SbDhcp>,
}

pub(crate) const ETH_IPV4: u64 = 0x0800;
pub(crate) const ETH_ARP: u64 = 0x0806;
pub(crate) const ETH_IPV6: u64 = 0x86dd;
pub(crate) const MCAST_BIT: u64 = 1 << 40;

/// A match under construction: a conjunction of field comparisons.
#[derive(Debug, Clone, Default)]
pub struct M(Vec<FieldMatch>);

impl M {
    pub fn any() -> Self {
        M(Vec::new())
    }
    pub fn field(mut self, f: Field, value: u64, mask: u64) -> Self {
        self.0.push(FieldMatch {
            field: f.as_str().into(),
            value: value & mask,
            mask,
            port: String::new(),
        });
        self
    }
    pub fn eq(self, f: Field, value: u64) -> Self {
        self.field(f, value, f.full_mask())
    }
    fn port(mut self, f: Field, key: u32, name: &str) -> Self {
        self.0.push(FieldMatch {
            field: f.as_str().into(),
            value: key.into(),
            mask: f.full_mask(),
            port: name.into(),
        });
        self
    }
    pub fn inport(self, key: u32, name: &str) -> Self {
        self.port(Field::Inport, key, name)
    }
    pub fn outport(self, key: u32, name: &str) -> Self {
        self.port(Field::Outport, key, name)
    }
    pub fn eth_mcast(self) -> Self {
        self.field(Field::EthDst, MCAST_BIT, MCAST_BIT)
    }
    /// An IPv4 network on `f` (a host address is a /32).
    pub fn ip4(self, f: Field, net: &IpNet) -> Self {
        match net {
            IpNet::V4(n) => self.field(
                f,
                u32::from(n.network()).into(),
                u32::from(n.netmask()).into(),
            ),
            IpNet::V6(_) => self,
        }
    }
}

fn act(k: Kind) -> Action {
    Action { kind: Some(k) }
}
pub fn next() -> Action {
    act(Kind::Next(pb::Next {}))
}
pub fn output() -> Action {
    act(Kind::Output(pb::Output {}))
}
pub fn set_outport(port: u32, name: &str) -> Action {
    act(Kind::SetOutport(pb::SetOutport {
        port,
        name: name.into(),
        multicast: port >= switchyard_southbound::MC_FIRST_KEY,
    }))
}
pub fn drop(reason: DropReason) -> Action {
    act(Kind::Drop(pb::Drop {
        reason: reason.as_str().into(),
    }))
}
pub fn arp_reply(mac: u64) -> Action {
    act(Kind::ArpReply(pb::ArpReply { mac }))
}
pub(crate) fn action(k: Kind) -> Action {
    act(k)
}

/// The one way to add a logical flow.
#[derive(Debug, Default)]
pub struct Lflows {
    pub flows: Vec<LogicalFlow>,
}

impl Lflows {
    #[track_caller]
    pub fn add(&mut self, dp: u32, stage: Stage, priority: u32, m: M, actions: Vec<Action>) {
        let loc = std::panic::Location::caller();
        self.flows.push(LogicalFlow {
            datapath: dp,
            pipeline: stage.pipeline().as_str().into(),
            stage: stage.name().into(),
            table: stage.table(),
            priority,
            matches: m.0,
            actions,
            source: format!("{}:{}", loc.file(), loc.line()),
        });
    }
}

/// The router port a switch port of type router attaches to, if it exists.
pub(crate) fn router_peer<'a>(
    nb: &'a Nb,
    p: &pb::LogicalSwitchPort,
) -> Option<&'a pb::LogicalRouterPort> {
    if p.r#type != crate::router::LSP_TYPE_ROUTER {
        return None;
    }
    nb.router_ports
        .get(p.options.get(crate::router::OPT_ROUTER_PORT)?)
}

/// "MAC IP/len ..." of a router port, as port bindings show it.
pub(crate) fn lrp_address_text(lrp: &pb::LogicalRouterPort) -> String {
    std::iter::once(lrp.mac.clone())
        .chain(lrp.networks.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A switch port's addresses as the switch uses them: its own, or for a port of
/// type router the MAC and IPs of the router port it attaches to.
pub(crate) fn effective_addresses(nb: &Nb, p: &pb::LogicalSwitchPort) -> crate::model::Addresses {
    if let Some(lrp) = router_peer(nb, p) {
        let (Ok(mac), Ok(nets)) = (
            crate::router::parse_lrp_mac(&lrp.mac),
            crate::router::parse_networks(&lrp.networks),
        ) else {
            return Default::default();
        };
        // The router port answers ARP for its addresses and for the NAT
        // external IPs in its networks (floating IPs, SNAT addresses).
        let nat = nb.nat_external_ips_on(lrp);
        return crate::model::Addresses {
            entries: vec![crate::model::AddrEntry {
                mac,
                ips: nets
                    .iter()
                    .map(|n| n.addr())
                    .chain(nat)
                    .map(|a| IpNet::from(std::net::IpAddr::V4(a)))
                    .collect(),
            }],
            ..Default::default()
        };
    }
    parse_addresses("addresses", &crate::ipam::resolved(p), false).unwrap_or_default()
}

/// Compiles the whole NB database.
pub fn compile(nb: &Nb) -> Compiled {
    let mut out = Compiled::default();
    let mut lf = Lflows::default();
    for ls in nb.switches.values() {
        compile_switch(nb, ls, &mut out, &mut lf);
    }
    for lr in nb.routers.values() {
        crate::compile_router::compile_router(nb, lr, &mut out, &mut lf);
    }
    crate::compile_lb::compile_lb_nat(nb, &mut out);
    out.flows = lf.flows;
    out
}

fn compile_switch(nb: &Nb, ls: &pb::LogicalSwitch, out: &mut Compiled, lf: &mut Lflows) {
    let dp = ls.tunnel_key;
    out.datapaths.push(pb::DatapathBinding {
        tunnel_key: dp,
        name: ls.name.clone(),
        kind: "switch".into(),
        ct_zone_limit: crate::model::ct_zone_limit(ls),
        dns_domain: crate::dns::dns_domain(ls),
    });
    let mut flood = Vec::new();
    let mut unknown = Vec::new();

    // Default flows of every stage.
    lf.add(
        dp,
        Stage::LsInCheckPortSec,
        110,
        M::any().field(Field::EthSrc, MCAST_BIT, MCAST_BIT),
        vec![drop(DropReason::PortSecurityMac)],
    );
    lf.add(
        dp,
        Stage::LsInCheckPortSec,
        0,
        M::any(),
        vec![drop(DropReason::NoFlow)],
    );
    // The stateful stages: empty but for `next` until flows there match
    // ct_state or commit (a datapath with such flows is tracked by vswitchd).
    lf.add(dp, Stage::LsInAcl, 0, M::any(), vec![next()]);
    lf.add(dp, Stage::LsOutAcl, 0, M::any(), vec![next()]);
    crate::compile_acl::compile_acls(nb, &ls.name, dp, lf);
    lf.add(dp, Stage::LsInArpRsp, 0, M::any(), vec![next()]);
    crate::dhcp::compile_dhcp(nb, ls, out, lf);
    crate::dns::compile_dns(nb, ls, out, lf);
    lf.add(
        dp,
        Stage::LsInL2Lkup,
        110,
        M::any().eth_mcast(),
        vec![set_outport(MC_FLOOD_KEY, "_MC_flood"), output()],
    );
    lf.add(
        dp,
        Stage::LsOutApplyPortSec,
        100,
        M::any().eth_mcast(),
        vec![output()],
    );
    lf.add(dp, Stage::LsOutApplyPortSec, 0, M::any(), vec![output()]);

    for p in nb.ports_of(&ls.name) {
        let (key, name) = (p.tunnel_key, p.name.as_str());
        // Addresses were validated on write; a parse failure here would be a bug,
        // and the port then simply gets no address flows.
        let addrs = effective_addresses(nb, p);
        let psec = parse_addresses("port_security", &p.port_security, true).unwrap_or_default();
        let peer = router_peer(nb, p);
        out.port_bindings.push(pb::PortBinding {
            logical_port: p.name.clone(),
            datapath: dp,
            tunnel_key: key,
            mac: match peer {
                Some(lrp) => vec![lrp_address_text(lrp)],
                None => crate::ipam::resolved(p),
            },
            chassis: String::new(),
            r#type: if peer.is_some() {
                "patch".into()
            } else {
                String::new()
            },
            enabled: p.enabled,
            peer: peer.map(|l| l.name.clone()).unwrap_or_default(),
        });
        if p.enabled {
            flood.push(key);
            if addrs.unknown {
                unknown.push(key);
            }
        }

        // ls_in_check_port_sec: admit only the port's own MAC (and IPs, if listed).
        if !p.enabled {
            lf.add(
                dp,
                Stage::LsInCheckPortSec,
                150,
                M::any().inport(key, name),
                vec![drop(DropReason::PortDisabled)],
            );
            lf.add(
                dp,
                Stage::LsOutApplyPortSec,
                150,
                M::any().outport(key, name),
                vec![drop(DropReason::PortDisabled)],
            );
        }
        if psec.entries.is_empty() {
            lf.add(
                dp,
                Stage::LsInCheckPortSec,
                50,
                M::any().inport(key, name),
                vec![next()],
            );
        } else {
            for e in &psec.entries {
                let base = || M::any().inport(key, name).eq(Field::EthSrc, e.mac);
                let v4: Vec<&IpNet> = e.ips.iter().filter(|n| matches!(n, IpNet::V4(_))).collect();
                if !v4.is_empty() {
                    for net in &v4 {
                        lf.add(
                            dp,
                            Stage::LsInCheckPortSec,
                            90,
                            base().eq(Field::EthType, ETH_IPV4).ip4(Field::Ip4Src, net),
                            vec![next()],
                        );
                        lf.add(
                            dp,
                            Stage::LsInCheckPortSec,
                            90,
                            base()
                                .eq(Field::EthType, ETH_ARP)
                                .eq(Field::ArpSha, e.mac)
                                .ip4(Field::ArpSpa, net),
                            vec![next()],
                        );
                    }
                    // DHCP discovery from an address-less client.
                    lf.add(
                        dp,
                        Stage::LsInCheckPortSec,
                        90,
                        base()
                            .eq(Field::EthType, ETH_IPV4)
                            .eq(Field::Ip4Src, 0)
                            .eq(Field::Ip4Dst, 0xffff_ffff)
                            .eq(Field::IpProto, 17)
                            .eq(Field::L4Dst, 67),
                        vec![next()],
                    );
                    lf.add(
                        dp,
                        Stage::LsInCheckPortSec,
                        80,
                        base().eq(Field::EthType, ETH_IPV4),
                        vec![drop(DropReason::PortSecurityIp)],
                    );
                    lf.add(
                        dp,
                        Stage::LsInCheckPortSec,
                        80,
                        base().eq(Field::EthType, ETH_ARP),
                        vec![drop(DropReason::PortSecurityIp)],
                    );
                }
                let has_v6 = e.ips.iter().any(|n| matches!(n, IpNet::V6(_)));
                if !e.ips.is_empty() && !has_v6 {
                    // Addresses listed, none of them IPv6: no IPv6 at all from
                    // this port, link-local, ND and RA included (OVN's rule).
                    lf.add(
                        dp,
                        Stage::LsInCheckPortSec,
                        80,
                        base().eq(Field::EthType, ETH_IPV6),
                        vec![drop(DropReason::PortSecurityIpv6)],
                    );
                }
                lf.add(dp, Stage::LsInCheckPortSec, 50, base(), vec![next()]);
                // Egress: deliver only frames addressed to the port's MAC and,
                // when addresses are listed, to its IPs (or IPv4 broadcast and
                // multicast), as OVN's ls_out_port_sec_ip.
                let to_me = || M::any().outport(key, name).eq(Field::EthDst, e.mac);
                if !v4.is_empty() {
                    let ip4 = || to_me().eq(Field::EthType, ETH_IPV4);
                    for net in &v4 {
                        lf.add(
                            dp,
                            Stage::LsOutApplyPortSec,
                            90,
                            ip4().ip4(Field::Ip4Dst, net),
                            vec![output()],
                        );
                    }
                    lf.add(
                        dp,
                        Stage::LsOutApplyPortSec,
                        90,
                        ip4().eq(Field::Ip4Dst, 0xffff_ffff),
                        vec![output()],
                    );
                    lf.add(
                        dp,
                        Stage::LsOutApplyPortSec,
                        90,
                        ip4().field(Field::Ip4Dst, 0xe000_0000, 0xf000_0000),
                        vec![output()],
                    );
                    lf.add(
                        dp,
                        Stage::LsOutApplyPortSec,
                        80,
                        ip4(),
                        vec![drop(DropReason::EgressPortSecurityIp)],
                    );
                }
                if !e.ips.is_empty() && !has_v6 {
                    lf.add(
                        dp,
                        Stage::LsOutApplyPortSec,
                        80,
                        to_me().eq(Field::EthType, ETH_IPV6),
                        vec![drop(DropReason::EgressPortSecurityIp)],
                    );
                }
                lf.add(dp, Stage::LsOutApplyPortSec, 50, to_me(), vec![output()]);
            }
            lf.add(
                dp,
                Stage::LsInCheckPortSec,
                40,
                M::any().inport(key, name),
                vec![drop(DropReason::PortSecurityMac)],
            );
            lf.add(
                dp,
                Stage::LsOutApplyPortSec,
                40,
                M::any().outport(key, name),
                vec![drop(DropReason::EgressPortSecurity)],
            );
        }

        // ls_in_arp_rsp and ls_in_l2_lkup from the port's addresses.
        for e in &addrs.entries {
            if p.enabled {
                lf.add(
                    dp,
                    Stage::LsInL2Lkup,
                    50,
                    M::any().eq(Field::EthDst, e.mac),
                    vec![set_outport(key, name), output()],
                );
            }
            for ip in e.ips.iter().filter(|n| matches!(n, IpNet::V4(_))) {
                let arp_req = || {
                    M::any()
                        .eq(Field::EthType, ETH_ARP)
                        .eq(Field::ArpOp, 1)
                        .ip4(Field::ArpTpa, ip)
                };
                // The port asking for its own address (duplicate address detection)
                // must reach the others, not be answered by the switch.
                lf.add(
                    dp,
                    Stage::LsInArpRsp,
                    100,
                    arp_req().inport(key, name),
                    vec![next()],
                );
                lf.add(dp, Stage::LsInArpRsp, 50, arp_req(), vec![arp_reply(e.mac)]);
            }
        }
    }

    if unknown.is_empty() {
        lf.add(
            dp,
            Stage::LsInL2Lkup,
            0,
            M::any(),
            vec![drop(DropReason::NoL2Destination)],
        );
    } else {
        lf.add(
            dp,
            Stage::LsInL2Lkup,
            0,
            M::any(),
            vec![set_outport(MC_UNKNOWN_KEY, "_MC_unknown"), output()],
        );
    }
    out.multicast_groups.push(pb::MulticastGroup {
        datapath: dp,
        name: "_MC_flood".into(),
        tunnel_key: MC_FLOOD_KEY,
        ports: flood,
    });
    out.multicast_groups.push(pb::MulticastGroup {
        datapath: dp,
        name: "_MC_unknown".into(),
        tunnel_key: MC_UNKNOWN_KEY,
        ports: unknown,
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::tests_support::*;
    use switchyard_southbound::display::{actions_text, matches_text};
    use switchyard_southbound::pb::nb_op::Op;

    /// Flows as "stage prio match => actions", table numbers left out on purpose.
    pub(crate) fn flows_of(c: &Compiled, stage: Stage) -> Vec<String> {
        let mut v: Vec<String> = c
            .flows
            .iter()
            .filter(|f| f.stage == stage.name())
            .map(|f| {
                format!(
                    "{} {} => {}",
                    f.priority,
                    matches_text(&f.matches),
                    actions_text(&f.actions)
                )
            })
            .collect();
        v.sort();
        v
    }

    pub(crate) fn topo() -> Nb {
        let mut nb = Nb::default();
        nb.apply_ops(&txn(vec![
            ls("ls1", "10.0.0.0/24"),
            lsp("p1", "ls1", "0a:00:00:00:00:01 10.0.0.1"),
            lsp("p2", "ls1", "0a:00:00:00:00:02 10.0.0.2"),
            Op::LspSetPortSecurity(pb::SetAddresses {
                port: "p1".into(),
                addresses: vec!["0a:00:00:00:00:01 10.0.0.1".into()],
            }),
        ]))
        .unwrap();
        nb
    }

    #[test]
    fn l2_lookup_and_arp_flows() {
        let c = compile(&topo());
        let l2 = flows_of(&c, Stage::LsInL2Lkup);
        assert!(
            l2.contains(
                &"50 eth.dst == 0a:00:00:00:00:02 => outport = \"p2\"; output;".to_string()
            ),
            "{l2:#?}"
        );
        assert!(l2.contains(&"110 eth.mcast => outport = \"_MC_flood\"; output;".to_string()));
        assert!(l2.contains(&"0 1 => drop /* no_l2_destination */;".to_string()));
        let arp = flows_of(&c, Stage::LsInArpRsp);
        assert!(arp.contains(&"50 eth.type == 0x0806 && arp.op == 1 && arp.tpa == 10.0.0.2 => arp_reply(eth.src = 0a:00:00:00:00:02);".to_string()), "{arp:#?}");
        assert_eq!(c.multicast_groups[0].ports, vec![1, 2]);
    }

    #[test]
    fn port_security_flows() {
        let c = compile(&topo());
        let ps = flows_of(&c, Stage::LsInCheckPortSec);
        let want = [
            "90 inport == \"p1\" && eth.src == 0a:00:00:00:00:01 && eth.type == 0x0800 && ip4.src == 10.0.0.1 => next;",
            "80 inport == \"p1\" && eth.src == 0a:00:00:00:00:01 && eth.type == 0x0800 => drop /* port_security_ip */;",
            "40 inport == \"p1\" => drop /* port_security_mac */;",
            "50 inport == \"p2\" => next;",
        ];
        for w in want {
            assert!(ps.contains(&w.to_string()), "missing {w}\n{ps:#?}");
        }
        let out = flows_of(&c, Stage::LsOutApplyPortSec);
        let want_out = [
            "40 outport == \"p1\" => drop /* egress_port_security */;",
            "90 outport == \"p1\" && eth.dst == 0a:00:00:00:00:01 && eth.type == 0x0800 && ip4.dst == 10.0.0.1 => output;",
            "80 outport == \"p1\" && eth.dst == 0a:00:00:00:00:01 && eth.type == 0x0800 => drop /* egress_port_security_ip */;",
            "80 outport == \"p1\" && eth.dst == 0a:00:00:00:00:01 && eth.type == 0x86dd => drop /* egress_port_security_ip */;",
        ];
        for w in want_out {
            assert!(out.contains(&w.to_string()), "missing {w}\n{out:#?}");
        }
        // An IPv4-only port sends no IPv6 at all; p2 (no port security) may.
        assert!(ps.contains(&"80 inport == \"p1\" && eth.src == 0a:00:00:00:00:01 && eth.type == 0x86dd => drop /* port_security_ipv6 */;".to_string()), "{ps:#?}");
        assert!(!ps.iter().any(|f| f.contains("\"p2\" && eth.src")));
    }

    #[test]
    fn every_flow_names_its_builder() {
        let c = compile(&topo());
        assert!(c
            .flows
            .iter()
            .all(|f| f.source.starts_with("northd/src/compile.rs:")
                || f.source.starts_with("northd/src/dns.rs:")
                || f.source.starts_with("northd/src/dhcp.rs:")));
    }
}
