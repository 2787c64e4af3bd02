//! The compiler from the northbound model to southbound contents: datapath and
//! port bindings, multicast groups and logical flows, stage by stage. Every flow
//! is added through `Lflows::add` (flows.rs), which records the source line of its builder.

pub mod acl;
pub mod dhcp;
pub mod dns;
pub mod flows;
pub mod lb;
mod port_sec;
pub mod router;
mod router6;

use crate::nb::{parse_addresses, Nb};
use ipnet::IpNet;
use switchyard_southbound::pb;
use switchyard_southbound::{DropReason, Field, Stage, MC_FLOOD_KEY, MC_UNKNOWN_KEY};

pub use crate::compile::flows::*;

pub(crate) use crate::nb::ipam::effective_addresses;
pub(crate) use crate::nb::router::{lrp_address_text, router_peer};

/// Compiles the whole NB database.
pub fn compile(nb: &Nb) -> Compiled {
    let mut out = Compiled::default();
    let mut lf = Lflows::default();
    for ls in nb.switches.values() {
        compile_switch(nb, ls, &mut out, &mut lf);
    }
    for lr in nb.routers.values() {
        crate::compile::router::compile_router(nb, lr, &mut out, &mut lf);
    }
    crate::compile::lb::compile_lb_nat(nb, &mut out);
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
        dns_domain: crate::nb::dns::dns_domain(ls),
        mtu: crate::model::mtu(ls),
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
    crate::compile::acl::compile_acls(nb, &ls.name, dp, lf);
    lf.add(dp, Stage::LsInArpRsp, 0, M::any(), vec![next()]);
    dhcp::compile_dhcp(nb, ls, out, lf);
    dns::compile_dns(nb, ls, out, lf);
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

    // One router advertises on a segment: the first router port, by switch
    // port order, that has `ipv6_ra_configs` (docs/ipv6.md).
    let mut advertised = false;
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
                None => crate::nb::ipam::resolved(p),
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
        if let (Some(lrp), false, true) = (peer, advertised, p.enabled) {
            advertised = crate::compile::router6::ra_flow(lf, dp, lrp);
        }
        if p.enabled {
            flood.push(key);
            if addrs.unknown {
                unknown.push(key);
            }
        }

        port_sec::compile_port_security(lf, dp, key, name, p.enabled, &psec);

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
            for ip in e.ips.iter().filter(|n| matches!(n, IpNet::V6(_))) {
                nd_responder(lf, dp, key, name, ip, e.mac, peer.is_some());
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

/// The switch answers a neighbor solicitation for a known IPv6 address (the
/// ARP responder's twin; `router`: the address is a router port's), but not
/// from the port that owns it, and never a DAD probe (from ::, which only
/// the owner may answer: the probe is flooded to it).
fn nd_responder(
    lf: &mut Lflows,
    dp: u32,
    key: u32,
    name: &str,
    ip: &IpNet,
    mac: u64,
    router: bool,
) {
    let ns = || {
        M::any()
            .icmp6(135)
            .ip6(Field::NdTargetHi, Field::NdTargetLo, ip)
    };
    let unspecified = IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
    lf.add(
        dp,
        Stage::LsInArpRsp,
        100,
        ns().inport(key, name),
        vec![next()],
    );
    lf.add(
        dp,
        Stage::LsInArpRsp,
        90,
        ns().ip6(Field::Ip6SrcHi, Field::Ip6SrcLo, &unspecified),
        vec![next()],
    );
    lf.add(
        dp,
        Stage::LsInArpRsp,
        50,
        ns(),
        vec![flows::action(
            switchyard_southbound::pb::action::Kind::NdNa(switchyard_southbound::pb::NdNa {
                mac,
                router,
            }),
        )],
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nb::tests_support::*;
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
            .all(|f| ["mod.rs:", "dns.rs:", "dhcp.rs:", "port_sec.rs:"]
                .iter()
                .any(|s| f.source.starts_with(&format!("northd/src/compile/{s}")))));
    }
}
