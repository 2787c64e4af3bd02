//! The logical router pipeline, stage by stage: admission, the router's own
//! addresses (ARP, ICMP echo, TTL expiry), longest-prefix routing (priority
//! 2 × prefix length, connected networks one above static routes of the same
//! length), nexthop resolution from known port addresses and learned bindings,
//! ARP for unresolved nexthops, and delivery.

use crate::compile::flows::{
    action, arp_reply, drop, next, output, Compiled, Lflows, ETH_ARP, ETH_IPV4, M, MCAST_BIT,
};
use crate::nb::ipam::effective_addresses;
use crate::nb::router::{
    parse_lrp_mac, parse_networks, parse_prefix, LSP_TYPE_ROUTER, OPT_ROUTER_PORT,
};
use crate::nb::Nb;
use ipnet::{IpNet, Ipv4Net};
use std::collections::BTreeMap;
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{DropReason, Field, Stage};

const ICMP_PROTO: u64 = 1;
const ICMP_ECHO_REQUEST: u64 = 8;
const TCP_PROTO: u64 = 6;
const UDP_PROTO: u64 = 17;

/// A router port with its parsed columns.
struct Port<'a> {
    lrp: &'a pb::LogicalRouterPort,
    mac: u64,
    nets: Vec<Ipv4Net>,
}

fn v4(n: &Ipv4Net) -> IpNet {
    IpNet::V4(*n)
}

fn host(a: std::net::Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::from(a))
}

fn route(p: &Port, nexthop: u32, src: &Ipv4Net) -> pb::Route {
    pb::Route {
        nexthop,
        port: p.lrp.tunnel_key,
        port_name: p.lrp.name.clone(),
        src_ip: u32::from(src.addr()),
        src_mac: p.mac,
        ..Default::default()
    }
}

fn icmp_error(ty: u32, code: u32, src: &Ipv4Net) -> pb::Action {
    action(Kind::IcmpError(pb::IcmpError {
        r#type: ty,
        code,
        src_ip: u32::from(src.addr()),
        ..Default::default()
    }))
}

pub(crate) fn compile_router(nb: &Nb, lr: &pb::LogicalRouter, out: &mut Compiled, lf: &mut Lflows) {
    let dp = lr.tunnel_key;
    out.datapaths.push(pb::DatapathBinding {
        tunnel_key: dp,
        name: lr.name.clone(),
        kind: "router".into(),
        ct_zone_limit: 0,
        dns_domain: String::new(),
        mtu: 0,
    });
    // Rows were validated on write; a port that fails to parse here gets no flows.
    let ports: Vec<Port> = nb
        .router_ports_of(&lr.name)
        .filter_map(|lrp| {
            Some(Port {
                lrp,
                mac: parse_lrp_mac(&lrp.mac).ok()?,
                nets: parse_networks(&lrp.networks).ok()?,
            })
        })
        .collect();
    let attached: BTreeMap<&str, &pb::LogicalSwitchPort> = nb
        .ports
        .values()
        .filter(|p| p.r#type == LSP_TYPE_ROUTER)
        .filter_map(|p| Some((p.options.get(OPT_ROUTER_PORT)?.as_str(), p)))
        .collect();
    let ip4 = || M::any().eq(Field::EthType, ETH_IPV4);

    // lr_in_admission: frames for one of the router's MACs, or broadcast.
    lf.add(
        dp,
        Stage::LrInAdmission,
        110,
        M::any().field(Field::EthSrc, MCAST_BIT, MCAST_BIT),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInAdmission,
        0,
        M::any(),
        vec![drop(DropReason::NotForRouter)],
    );
    // lr_in_ip_input defaults: never answer broadcast or multicast IP.
    lf.add(
        dp,
        Stage::LrInIpInput,
        100,
        ip4().eth_mcast(),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInIpInput,
        100,
        ip4().field(Field::Ip4Dst, 0xe000_0000, 0xf000_0000),
        vec![drop(DropReason::NotForRouter)],
    );
    lf.add(
        dp,
        Stage::LrInIpInput,
        80,
        M::any().eq(Field::EthType, ETH_ARP),
        vec![drop(DropReason::ConsumedByRouter)],
    );
    lf.add(dp, Stage::LrInIpInput, 0, M::any(), vec![next()]);
    lf.add(
        dp,
        Stage::LrInIpRouting,
        0,
        M::any(),
        vec![drop(DropReason::NoRoute)],
    );
    lf.add(
        dp,
        Stage::LrInArpResolve,
        50,
        ip4(),
        vec![action(Kind::GetArp(pb::GetArp {}))],
    );
    lf.add(dp, Stage::LrInArpResolve, 0, M::any(), vec![next()]);
    lf.add(
        dp,
        Stage::LrInArpRequest,
        100,
        ip4().eq(Field::EthDst, 0),
        vec![action(Kind::ArpRequest(pb::ArpRequest {}))],
    );
    lf.add(dp, Stage::LrInArpRequest, 0, M::any(), vec![output()]);
    lf.add(
        dp,
        Stage::LrOutDelivery,
        0,
        M::any(),
        vec![drop(DropReason::NoFlow)],
    );

    for p in &ports {
        let (key, name) = (p.lrp.tunnel_key, p.lrp.name.as_str());
        out.port_bindings.push(pb::PortBinding {
            logical_port: p.lrp.name.clone(),
            datapath: dp,
            tunnel_key: key,
            mac: vec![crate::nb::router::lrp_address_text(p.lrp)],
            chassis: String::new(),
            r#type: "patch".into(),
            enabled: lr.enabled && p.lrp.enabled,
            peer: attached
                .get(name)
                .map(|l| l.name.clone())
                .unwrap_or_default(),
        });
        if !(lr.enabled && p.lrp.enabled) {
            continue; // admission then drops everything arriving on it
        }
        lf.add(
            dp,
            Stage::LrInAdmission,
            50,
            M::any().inport(key, name).eq(Field::EthDst, p.mac),
            vec![next()],
        );
        lf.add(
            dp,
            Stage::LrInAdmission,
            50,
            M::any().inport(key, name).eth_mcast(),
            vec![next()],
        );
        lf.add(
            dp,
            Stage::LrInIpInput,
            85,
            M::any()
                .inport(key, name)
                .eq(Field::EthType, ETH_ARP)
                .eq(Field::ArpOp, 2),
            vec![action(Kind::PutArp(pb::PutArp {}))],
        );
        // A port with IPv6 networks only has no IPv4 address to answer from.
        if let Some(first) = p.nets.first() {
            for ttl in [0, 1] {
                lf.add(
                    dp,
                    Stage::LrInIpInput,
                    30,
                    ip4().inport(key, name).eq(Field::IpTtl, ttl),
                    vec![icmp_error(11, 0, first)],
                );
            }
            lf.add(
                dp,
                Stage::LrInIpRouting,
                1,
                ip4().inport(key, name),
                vec![icmp_error(3, 0, first)],
            );
        }
        lf.add(
            dp,
            Stage::LrOutDelivery,
            100,
            M::any().outport(key, name),
            vec![output()],
        );
        // The port's own addresses, and the NAT external IPs behind it (those
        // connections are translated on the chassis before the pipeline; what
        // reaches the router here is new and untranslated): ARP and ping are
        // answered, anything else to them is dropped.
        let own = p.nets.iter().map(|n| n.addr());
        for addr in own.chain(nb.nat_external_ips_on(p.lrp)) {
            let me = host(addr);
            lf.add(
                dp,
                Stage::LrInIpInput,
                90,
                M::any()
                    .inport(key, name)
                    .eq(Field::EthType, ETH_ARP)
                    .eq(Field::ArpOp, 1)
                    .ip4(Field::ArpTpa, &me),
                vec![arp_reply(p.mac)],
            );
            lf.add(
                dp,
                Stage::LrInIpInput,
                90,
                ip4()
                    .ip4(Field::Ip4Dst, &me)
                    .eq(Field::IpProto, ICMP_PROTO)
                    .eq(Field::L4Src, ICMP_ECHO_REQUEST),
                vec![action(Kind::IcmpEchoReply(pb::IcmpEchoReply {}))],
            );
            // As RFC 1122 and OVN: nothing listens on the router, so TCP
            // gets a RST and UDP a port unreachable, from the address asked.
            lf.add(
                dp,
                Stage::LrInIpInput,
                80,
                ip4().ip4(Field::Ip4Dst, &me).eq(Field::IpProto, TCP_PROTO),
                vec![action(Kind::TcpReset(pb::TcpReset {}))],
            );
            lf.add(
                dp,
                Stage::LrInIpInput,
                80,
                ip4().ip4(Field::Ip4Dst, &me).eq(Field::IpProto, UDP_PROTO),
                vec![icmp_error(3, 3, &Ipv4Net::from(addr))],
            );
            lf.add(
                dp,
                Stage::LrInIpInput,
                60,
                ip4().ip4(Field::Ip4Dst, &me),
                vec![drop(DropReason::RouterIpNoReply)],
            );
        }
        for n in &p.nets {
            // Connected network: the nexthop is the destination itself.
            lf.add(
                dp,
                Stage::LrInIpRouting,
                2 * u32::from(n.prefix_len()) + 1,
                ip4().ip4(Field::Ip4Dst, &v4(&n.trunc())),
                vec![action(Kind::Route(route(p, 0, n)))],
            );
        }
        // Neighbours known from NB: the addresses of every other port on the
        // switch this router port attaches to (pods, and other routers' ports).
        for (ip, mac) in switch_neighbours(nb, attached.get(name).copied()) {
            let IpNet::V4(a) = ip else { continue };
            if !p.nets.iter().any(|n| n.contains(&a.addr())) {
                continue;
            }
            lf.add(
                dp,
                Stage::LrInArpResolve,
                100,
                M::any()
                    .outport(key, name)
                    .ip4(Field::Reg0, &host(a.addr())),
                vec![action(Kind::SetEthDst(pb::SetEthDst { mac }))],
            );
        }
    }

    // Static routes, grouped by prefix: several nexthops for one prefix are ECMP.
    let mut by_prefix: BTreeMap<Ipv4Net, Vec<pb::Route>> = BTreeMap::new();
    for r in nb.routes_of(&lr.name) {
        let (Ok(IpNet::V4(prefix)), Ok((lrp, IpNet::V4(net))), Ok(nh)) = (
            parse_prefix(&r.prefix),
            nb.route_port(r),
            r.nexthop.parse::<std::net::Ipv4Addr>(),
        ) else {
            continue; // IPv6 routes: router6
        };
        let Some(p) = ports.iter().find(|p| p.lrp.name == lrp.name) else {
            continue;
        };
        by_prefix
            .entry(prefix)
            .or_default()
            .push(route(p, u32::from(nh), &net));
    }
    for (prefix, mut routes) in by_prefix {
        let m = ip4().ip4(Field::Ip4Dst, &v4(&prefix));
        let prio = 2 * u32::from(prefix.prefix_len());
        let act = if routes.len() == 1 {
            Kind::Route(routes.remove(0))
        } else {
            Kind::Ecmp(pb::Ecmp { routes })
        };
        lf.add(dp, Stage::LrInIpRouting, prio, m, vec![action(act)]);
    }
    crate::compile::router6::compile_router6(nb, lr, &attached, lf);
}

/// Every (address, MAC) of the other ports on the switch a router port
/// attaches to (`lsp`, its switch-side port): the neighbours NB knows.
pub(crate) fn switch_neighbours(nb: &Nb, lsp: Option<&pb::LogicalSwitchPort>) -> Vec<(IpNet, u64)> {
    let Some(lsp) = lsp else { return Vec::new() };
    nb.ports_of(&lsp.switch_name)
        .filter(|o| o.name != lsp.name)
        .flat_map(|o| effective_addresses(nb, o).entries)
        .flat_map(|e| e.ips.into_iter().map(move |ip| (ip, e.mac)))
        .collect()
}
