//! Each switch's `ls_in_dhcp` stage and its ports' `SbDhcp` rows, from the
//! DHCP options validated in [`crate::nb::dhcp`].

use crate::compile::flows::{action, next, Compiled, Lflows, ETH_IPV4, M};
use crate::model::Nb;
use crate::nb::dhcp::parse;
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{Field, Stage};

/// The `ls_in_dhcp` stage of one switch and its ports' `SbDhcp` rows.
pub fn compile_dhcp(nb: &Nb, ls: &pb::LogicalSwitch, out: &mut Compiled, lf: &mut Lflows) {
    let dp = ls.tunnel_key;
    lf.add(dp, Stage::LsInDhcp, 0, M::any(), vec![next()]);
    for p in nb.ports_of(&ls.name) {
        let Some(row) = nb.dhcp_options.get(&p.dhcpv4_options) else {
            continue;
        };
        let Ok(o) = parse(&row.cidr, &row.options) else {
            continue;
        };
        let addrs = crate::nb::ipam::effective_addresses(nb, p);
        // The port's first IPv4 address inside the options' network.
        let Some((mac, ip)) = addrs.entries.iter().find_map(|e| {
            e.ips.iter().find_map(|n| match n.addr() {
                std::net::IpAddr::V4(a) if o.net.contains(&a) => Some((e.mac, a)),
                _ => None,
            })
        }) else {
            continue;
        };
        out.dhcp.push(pb::SbDhcp {
            logical_port: p.name.clone(),
            datapath: dp,
            port: p.tunnel_key,
            mac,
            ip: ip.into(),
            netmask: o.netmask.into(),
            router: o.router.map_or(0, u32::from),
            server_id: o.server_id.into(),
            server_mac: o.server_mac,
            lease_time: o.lease_time,
            dns: o.dns.iter().map(|a| u32::from(*a)).collect(),
            mtu: o.mtu,
            domain_name: o.domain_name.clone(),
        });
        lf.add(
            dp,
            Stage::LsInDhcp,
            100,
            M::any()
                .inport(p.tunnel_key, &p.name)
                .eq(Field::EthSrc, mac)
                .eq(Field::EthType, ETH_IPV4)
                .eq(Field::IpProto, 17)
                .eq(Field::L4Src, 68)
                .eq(Field::L4Dst, 67),
            vec![action(Kind::DhcpReply(pb::DhcpReply {}))],
        );
    }
}
