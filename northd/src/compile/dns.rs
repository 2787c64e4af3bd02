//! Each switch's `ls_in_dns_lookup` stage and its `SbDns` rows, from the
//! DNS records validated in [`crate::nb::dns`].

use crate::compile::flows::{action, next, Compiled, Lflows, ETH_IPV4, M};
use crate::model::Nb;
use crate::nb::dns::{dns_domain, parse_srv, DEFAULT_TTL};
use std::net::IpAddr;
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{Field, Stage};

/// The `ls_in_dns_lookup` stage of one switch and its `SbDns` rows. A switch
/// with records or a domain sends every IPv4 UDP query to port 53 from its
/// own ports to `dns_lookup` (the PMD answers, or the query goes on); a query
/// that entered through a router port was already looked up where it started.
pub fn compile_dns(nb: &Nb, ls: &pb::LogicalSwitch, out: &mut Compiled, lf: &mut Lflows) {
    let dp = ls.tunnel_key;
    lf.add(dp, Stage::LsInDnsLookup, 0, M::any(), vec![next()]);
    let mut any = false;
    for r in nb.dns_of(&ls.name) {
        any = true;
        let mut row = pb::SbDns {
            datapath: dp,
            name: r.name.clone(),
            ttl: if r.ttl == 0 { DEFAULT_TTL } else { r.ttl },
            cname: r.cname.clone(),
            ..Default::default()
        };
        for a in &r.addresses {
            match a.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) => row.a.push(u32::from(v4)),
                Ok(IpAddr::V6(v6)) => row.aaaa.push(v6.octets().to_vec()),
                Err(_) => {}
            }
        }
        for s in &r.srv {
            if let Ok(e) = parse_srv(s) {
                row.srv.push(pb::SbSrv {
                    priority: e.priority.into(),
                    weight: e.weight.into(),
                    port: e.port.into(),
                    target: e.target,
                });
            }
        }
        out.dns.push(row);
    }
    if !any && dns_domain(ls).is_empty() {
        return;
    }
    let query = || {
        M::any()
            .eq(Field::EthType, ETH_IPV4)
            .eq(Field::IpProto, 17)
            .eq(Field::L4Dst, 53)
    };
    lf.add(
        dp,
        Stage::LsInDnsLookup,
        100,
        query(),
        vec![action(Kind::DnsLookup(pb::DnsLookup {}))],
    );
    for p in nb.ports_of(&ls.name) {
        if crate::nb::router::router_peer(nb, p).is_some() {
            lf.add(
                dp,
                Stage::LsInDnsLookup,
                110,
                query().inport(p.tunnel_key, &p.name),
                vec![next()],
            );
        }
    }
}
