//! The logical router's IPv6 flows, beside the IPv4 ones of `router.rs` in
//! the same stages: the port's own addresses (its networks' and the
//! link-local fe80::EUI-64 of its MAC) answer NS, echo requests and, with
//! ICMPv6 port unreachable, UDP and TCP; link-local and multicast packets
//! are not forwarded; hop limit 0 or 1 gets time exceeded; routing is the
//! same longest-prefix match (priority 2 × prefix length, connected one
//! above static), nexthops resolve from the attached switches' addresses or
//! learned NAs, and an unresolved nexthop is solicited.

use crate::compile::flows::{action, drop, Lflows, ETH_IPV6, M};
use crate::compile::router::switch_neighbours;
use crate::nb::ra::{parse_ra_configs, ROUTER_LIFETIME};
use crate::nb::router::{link_local, parse_lrp_mac, parse_networks6, parse_prefix};
use crate::nb::Nb;
use ipnet::{IpNet, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{DropReason, Field, Stage};

const TCP: u64 = 6;
const UDP: u64 = 17;
const ECHO_REQUEST: u64 = 128;
const RS: u64 = 133;
const NS: u64 = 135;
const NA: u64 = 136;
/// ICMPv6 types and codes (RFC 4443).
const DST_UNREACH: u32 = 1;
const NO_ROUTE: u32 = 0;
const PORT_UNREACH: u32 = 4;
const TIME_EXCEEDED: u32 = 3;

/// A router port with IPv6 networks.
struct Port6<'a> {
    lrp: &'a pb::LogicalRouterPort,
    mac: u64,
    nets: Vec<Ipv6Net>,
}

fn host(a: Ipv6Addr) -> IpNet {
    IpNet::V6(Ipv6Net::from(a))
}

fn ip6() -> M {
    M::any().eq(Field::EthType, ETH_IPV6)
}

fn dst(m: M, net: &IpNet) -> M {
    m.ip6(Field::Ip6DstHi, Field::Ip6DstLo, net)
}

fn bytes(a: Ipv6Addr) -> Vec<u8> {
    a.octets().to_vec()
}

fn route6(p: &Port6, nexthop: Option<Ipv6Addr>, src: Ipv6Addr) -> pb::Route {
    pb::Route {
        port: p.lrp.tunnel_key,
        port_name: p.lrp.name.clone(),
        src_mac: p.mac,
        nexthop6: nexthop.map(bytes).unwrap_or_default(),
        src_ip6: bytes(src),
        ..Default::default()
    }
}

fn icmp6_error(ty: u32, code: u32, src: Ipv6Addr) -> pb::Action {
    action(Kind::IcmpError(pb::IcmpError {
        r#type: ty,
        code,
        src_ip6: bytes(src),
        ..Default::default()
    }))
}

/// The router advertisement router port `lrp` answers solicitations with,
/// from its `ipv6_ra_configs` (checked on write: a port whose config does
/// not parse, or that has no IPv6 network, advertises nothing). The attached
/// switch answers, as it answers neighbour solicitations for the router's
/// addresses: a solicitation is multicast, and multicasts stay on their
/// segment.
pub(crate) fn ra_action(lrp: &pb::LogicalRouterPort) -> Option<pb::Action> {
    let c = parse_ra_configs(&lrp.ipv6_ra_configs).ok()??;
    let mac = parse_lrp_mac(&lrp.mac).ok()?;
    let nets = parse_networks6(&lrp.networks).ok()?;
    if !lrp.enabled || nets.is_empty() {
        return None;
    }
    Some(action(Kind::NdRa(pb::NdRa {
        mac,
        src_ip6: bytes(link_local(mac)),
        address_mode: c.mode.name().into(),
        prefixes: nets
            .iter()
            .map(|n| pb::RaPrefix {
                prefix: bytes(n.trunc().addr()),
                len: n.prefix_len().into(),
            })
            .collect(),
        mtu: c.mtu.unwrap_or(0),
        preference: c.preference.into(),
        lifetime: ROUTER_LIFETIME,
        rdnss: c.rdnss.into_iter().map(bytes).collect(),
    })))
}

/// The solicitation flow of switch `dp` for its router peer `lrp`, true if
/// the port advertises:
/// only a solicitation with hop limit 255 is valid (RFC 4861 6.1.1), others
/// flood like any multicast and stop at the router.
pub(crate) fn ra_flow(lf: &mut Lflows, dp: u32, lrp: &pb::LogicalRouterPort) -> bool {
    let Some(ra) = ra_action(lrp) else {
        return false;
    };
    lf.add(
        dp,
        Stage::LsInArpRsp,
        60,
        M::any().icmp6(RS).eq(Field::L4Dst, 0).eq(Field::IpTtl, 255),
        vec![ra],
    );
    true
}

pub(crate) fn compile_router6(
    nb: &Nb,
    lr: &pb::LogicalRouter,
    attached: &BTreeMap<&str, &pb::LogicalSwitchPort>,
    lf: &mut Lflows,
) {
    let dp = lr.tunnel_key;
    let ports: Vec<Port6> = nb
        .router_ports_of(&lr.name)
        .filter(|lrp| lr.enabled && lrp.enabled)
        .filter_map(|lrp| {
            Some(Port6 {
                lrp,
                mac: parse_lrp_mac(&lrp.mac).ok()?,
                nets: parse_networks6(&lrp.networks).ok()?,
            })
        })
        .filter(|p| !p.nets.is_empty())
        .collect();
    // Never forwarded: multicast (beyond what is answered above), and
    // link-local sources or destinations (RFC 4291 §2.5.6).
    let multicast: IpNet = "ff00::/8".parse().unwrap_or(host(Ipv6Addr::UNSPECIFIED));
    let ll: IpNet = "fe80::/10".parse().unwrap_or(host(Ipv6Addr::UNSPECIFIED));
    lf.add(
        dp,
        Stage::LrInIpInput,
        100,
        dst(ip6(), &multicast),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInIpInput,
        50,
        dst(ip6(), &ll),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInIpInput,
        50,
        ip6().ip6(Field::Ip6SrcHi, Field::Ip6SrcLo, &ll),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInArpResolve,
        50,
        ip6(),
        vec![action(Kind::GetArp(pb::GetArp {}))],
    );
    lf.add(
        dp,
        Stage::LrInArpRequest,
        100,
        ip6().eq(Field::EthDst, 0),
        vec![action(Kind::NdNs(pb::NdNs {}))],
    );

    for p in &ports {
        let (key, name) = (p.lrp.tunnel_key, p.lrp.name.as_str());
        let first = p.nets[0].addr();
        // A neighbour's advertisement to the router teaches its MAC.
        lf.add(
            dp,
            Stage::LrInIpInput,
            110,
            M::any().inport(key, name).icmp6(NA),
            vec![action(Kind::PutNd(pb::PutNd {}))],
        );
        for ttl in [0, 1] {
            lf.add(
                dp,
                Stage::LrInIpInput,
                30,
                ip6().inport(key, name).eq(Field::IpTtl, ttl),
                vec![icmp6_error(TIME_EXCEEDED, 0, first)],
            );
        }
        lf.add(
            dp,
            Stage::LrInIpRouting,
            1,
            ip6().inport(key, name),
            vec![icmp6_error(DST_UNREACH, NO_ROUTE, first)],
        );
        let own = p.nets.iter().map(|n| n.addr());
        for addr in own.chain([link_local(p.mac)]) {
            let me = host(addr);
            // A unicast solicitation (neighbour unreachability detection);
            // multicast ones are answered by the switch.
            lf.add(
                dp,
                Stage::LrInIpInput,
                105,
                M::any()
                    .inport(key, name)
                    .icmp6(NS)
                    .ip6(Field::NdTargetHi, Field::NdTargetLo, &me),
                vec![action(Kind::NdNa(pb::NdNa {
                    mac: p.mac,
                    router: true,
                }))],
            );
            lf.add(
                dp,
                Stage::LrInIpInput,
                90,
                dst(M::any().icmp6(ECHO_REQUEST), &me),
                vec![action(Kind::IcmpEchoReply(pb::IcmpEchoReply {}))],
            );
            // Nothing listens on the router. TCP is refused with ICMPv6
            // port unreachable rather than a RST: a connecting host treats
            // both as "refused" (RFC 1122 4.2.3.9 / Linux), and the reset
            // builder is IPv4's.
            for proto in [TCP, UDP] {
                lf.add(
                    dp,
                    Stage::LrInIpInput,
                    80,
                    dst(ip6(), &me).eq(Field::IpProto, proto),
                    vec![icmp6_error(DST_UNREACH, PORT_UNREACH, addr)],
                );
            }
            lf.add(
                dp,
                Stage::LrInIpInput,
                60,
                dst(ip6(), &me),
                vec![drop(DropReason::RouterIpNoReply)],
            );
        }
        // Link-local destinations stay on the link they came from: the
        // router's answers to a neighbour's link-local address (OVN too).
        let lla: IpNet = "fe80::/64".parse().unwrap_or(host(Ipv6Addr::UNSPECIFIED));
        lf.add(
            dp,
            Stage::LrInIpRouting,
            2 * 64 + 1,
            dst(ip6().inport(key, name), &lla),
            vec![action(Kind::Route(route6(p, None, link_local(p.mac))))],
        );
        for n in &p.nets {
            lf.add(
                dp,
                Stage::LrInIpRouting,
                2 * u32::from(n.prefix_len()) + 1,
                dst(ip6(), &IpNet::V6(n.trunc())),
                vec![action(Kind::Route(route6(p, None, n.addr())))],
            );
        }
        // Neighbours known from NB: the IPv6 addresses of the other ports on
        // the switch this router port attaches to.
        for (ip, mac) in switch_neighbours(nb, attached.get(name).copied()) {
            let IpNet::V6(a) = ip else { continue };
            if !p.nets.iter().any(|n| n.contains(&a.addr())) {
                continue;
            }
            lf.add(
                dp,
                Stage::LrInArpResolve,
                100,
                M::any()
                    .outport(key, name)
                    .ip6(Field::Xxreg0Hi, Field::Xxreg0Lo, &host(a.addr())),
                vec![action(Kind::SetEthDst(pb::SetEthDst { mac }))],
            );
        }
    }

    // Static IPv6 routes, grouped by prefix: several nexthops are ECMP.
    let mut by_prefix: BTreeMap<Ipv6Net, Vec<pb::Route>> = BTreeMap::new();
    for r in nb.routes_of(&lr.name) {
        let (Ok(IpNet::V6(prefix)), Ok((lrp, IpNet::V6(net))), Ok(IpAddr::V6(nh))) = (
            parse_prefix(&r.prefix),
            nb.route_port(r),
            r.nexthop.parse::<IpAddr>(),
        ) else {
            continue;
        };
        let Some(p) = ports.iter().find(|p| p.lrp.name == lrp.name) else {
            continue;
        };
        by_prefix
            .entry(prefix)
            .or_default()
            .push(route6(p, Some(nh), net.addr()));
    }
    for (prefix, mut routes) in by_prefix {
        let m = dst(ip6(), &IpNet::V6(prefix));
        let prio = 2 * u32::from(prefix.prefix_len());
        let act = if routes.len() == 1 {
            Kind::Route(routes.remove(0))
        } else {
            Kind::Ecmp(pb::Ecmp { routes })
        };
        lf.add(dp, Stage::LrInIpRouting, prio, m, vec![action(act)]);
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::compile;
    use crate::compile::tests::flows_of;
    use crate::nb::tests_support::*;
    use crate::nb::Nb;
    use switchyard_southbound::pb::{self, nb_op::Op};
    use switchyard_southbound::{Stage, MAX_MATCH_FIELDS};

    fn dual_stack() -> Nb {
        let lrp = |name: &str, mac: &str, nets: [&str; 2]| {
            Op::LrpAdd(pb::LogicalRouterPort {
                name: name.into(),
                router_name: "lr0".into(),
                mac: mac.into(),
                networks: nets.map(String::from).to_vec(),
                enabled: true,
                ..Default::default()
            })
        };
        let attach = |name: &str, sw: &str, lrp: &str| {
            Op::LspAdd(pb::LogicalSwitchPort {
                name: name.into(),
                switch_name: sw.into(),
                addresses: vec!["router".into()],
                r#type: "router".into(),
                options: [("router-port".to_string(), lrp.to_string())].into(),
                enabled: true,
                ..Default::default()
            })
        };
        let mut nb = Nb::default();
        nb.apply_ops(&txn(vec![
            ls("ls0", "10.0.0.0/24"),
            ls("ls1", "10.1.0.0/24"),
            Op::LrAdd(pb::LogicalRouter {
                name: "lr0".into(),
                enabled: true,
                ..Default::default()
            }),
            lrp(
                "lr0-ls0",
                "0a:00:00:00:ff:00",
                ["10.0.0.1/24", "fd00:0::1/64"],
            ),
            lrp(
                "lr0-ls1",
                "0a:00:00:00:ff:01",
                ["10.1.0.1/24", "fd00:1::1/64"],
            ),
            attach("ls0-lr0", "ls0", "lr0-ls0"),
            attach("ls1-lr0", "ls1", "lr0-ls1"),
            lsp("p1", "ls0", "0a:00:00:00:00:01 10.0.0.11 fd00::b"),
            lsp("p2", "ls1", "0a:00:00:00:00:02 10.1.0.12 fd00:1::c"),
            Op::RouteAdd(pb::StaticRoute {
                router_name: "lr0".into(),
                prefix: "fd00:9::/48".into(),
                nexthop: "fd00:1::64".into(),
                output_port: String::new(),
            }),
        ]))
        .unwrap();
        nb
    }

    #[test]
    fn ipv6_routing_resolution_and_answers() {
        let c = compile(&dual_stack());
        let has = |stage: Stage, want: &str| {
            let f = flows_of(&c, stage);
            assert!(f.iter().any(|x| x == want), "missing {want}\n{f:#?}");
        };
        has(Stage::LrInIpRouting, "129 eth.type == 0x86dd && ip6.dst == fd00:1::/64 => ip.ttl--; xxreg0 = ip6.dst; xxreg1 = fd00:1::1; eth.src = 0a:00:00:00:ff:01; outport = \"lr0-ls1\"; next;");
        has(Stage::LrInIpRouting, "96 eth.type == 0x86dd && ip6.dst == fd00:9::/48 => ip.ttl--; xxreg0 = fd00:1::64; xxreg1 = fd00:1::1; eth.src = 0a:00:00:00:ff:01; outport = \"lr0-ls1\"; next;");
        has(Stage::LrInArpResolve, "100 outport == \"lr0-ls1\" && xxreg0 == fd00:1::c => eth.dst = 0a:00:00:00:00:02; next;");
        has(Stage::LrInArpRequest, "100 eth.type == 0x86dd && eth.dst == 00:00:00:00:00:00 => nd_ns { eth.dst = 33:33:ff:xx:xx:xx; ip6.dst = solicited-node(xxreg0); ip6.src = xxreg1; nd.target = xxreg0; output; };");
        has(Stage::LrInIpInput, "30 eth.type == 0x86dd && inport == \"lr0-ls0\" && ip.ttl == 1 => icmp6_error { icmp6.type = 3; icmp6.code = 0; ip6.src = fd00::1; };");
        // The router's link-local address (EUI-64 of 0a:00:00:00:ff:00) answers too.
        has(Stage::LrInIpInput, "90 eth.type == 0x86dd && ip.proto == 58 && l4.src == 128 && ip6.dst == fe80::800:ff:fe00:ff00 => icmp { ip.dst <-> ip.src; icmp.type = echo_reply; ip.ttl = 255; } /* routed back */;");
        // The switch answers NS for the gateway (as a router) and for pods,
        // but not the owner's own, nor DAD.
        has(Stage::LsInArpRsp, "50 eth.type == 0x86dd && ip.proto == 58 && l4.src == 135 && nd.target == fd00::1 => nd_na_router { eth.src = 0a:00:00:00:ff:00; ip6.src = nd.target; nd.tll = 0a:00:00:00:ff:00; outport = inport; output; };");
        has(Stage::LsInArpRsp, "50 eth.type == 0x86dd && ip.proto == 58 && l4.src == 135 && nd.target == fd00::b => nd_na { eth.src = 0a:00:00:00:00:01; ip6.src = nd.target; nd.tll = 0a:00:00:00:00:01; outport = inport; output; };");
        has(Stage::LsInArpRsp, "90 eth.type == 0x86dd && ip.proto == 58 && l4.src == 135 && nd.target == fd00::b && ip6.src == :: => next;");
        for f in &c.flows {
            assert!(f.matches.len() <= MAX_MATCH_FIELDS, "{f:?}");
        }
    }

    #[test]
    fn a_port_with_ra_configs_answers_solicitations() {
        let mut nb = dual_stack();
        let mut lrp = nb.router_ports["lr0-ls1"].clone();
        lrp.ipv6_ra_configs = [
            ("address_mode".to_string(), "slaac".to_string()),
            ("mtu".to_string(), "1400".to_string()),
        ]
        .into();
        let none = flows_of(&compile(&nb), Stage::LsInArpRsp);
        assert!(!none.iter().any(|f| f.contains("nd_ra")), "{none:#?}");
        nb.apply_ops(&txn(vec![
            Op::LrpDel("lr0-ls1".into()),
            Op::LrpAdd(lrp.clone()),
        ]))
        .unwrap();
        let f = flows_of(&compile(&nb), Stage::LsInArpRsp);
        let want = "60 eth.type == 0x86dd && ip.proto == 58 && l4.src == 133 && l4.dst == 0 && ip.ttl == 255 => nd_ra { put_nd_ra_opts(addr_mode = \"slaac\", slla = 0a:00:00:00:ff:01, prefix = fd00:1::/64, mtu = 1400, router_preference = \"MEDIUM\", lifetime = 65535); eth.dst = eth.src; eth.src = 0a:00:00:00:ff:01; ip6.dst = ip6.src /* ff02::1 from :: */; ip6.src = fe80::800:ff:fe00:ff01; outport = inport; output; };";
        assert!(f.iter().any(|x| x == want), "missing {want}\n{f:#?}");

        // An IPv4-only port has nothing to advertise; a bad key is refused.
        let mut v4 = lrp.clone();
        v4.name = "lr0-v4".into();
        v4.mac = "0a:00:00:00:ff:09".into();
        v4.networks = vec!["10.9.0.1/24".into()];
        let e = nb.apply_ops(&txn(vec![Op::LrpAdd(v4)])).unwrap_err();
        assert!(e.to_string().contains("no IPv6 network"), "{e}");
        lrp.ipv6_ra_configs
            .insert("send_periodic".into(), "true".into());
        let e = nb
            .apply_ops(&txn(vec![Op::LrpDel("lr0-ls1".into()), Op::LrpAdd(lrp)]))
            .unwrap_err();
        assert!(e.to_string().contains("send_periodic"), "{e}");
    }

    #[test]
    fn an_ipv6_only_router_port_compiles() {
        let mut nb = dual_stack();
        nb.apply_ops(&txn(vec![Op::LrpAdd(pb::LogicalRouterPort {
            name: "lr0-v6".into(),
            router_name: "lr0".into(),
            mac: "0a:00:00:00:ff:02".into(),
            networks: vec!["fd00:2::1/64".into()],
            enabled: true,
            ..Default::default()
        })]))
        .unwrap();
        let r = flows_of(&compile(&nb), Stage::LrInIpRouting);
        assert!(
            r.iter().any(|f| f.contains("ip6.dst == fd00:2::/64")),
            "{r:#?}"
        );
    }
}
