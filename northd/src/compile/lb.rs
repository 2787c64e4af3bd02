//! Load balancers and router NAT compiled into southbound rows a chassis
//! executes directly (no per-VIP logical flows: a VIP is a hash-table entry on
//! the chassis, so the per-packet cost does not grow with the number of services).

use crate::compile::flows::Compiled;
use crate::nb::lb::{nat_logical, parse_backends, parse_endpoint, proto_number};
use crate::nb::Nb;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use switchyard_southbound::pb::{self, LoadBalancer};

/// The southbound rows of the load balancers and NAT rules.
pub(crate) fn compile_lb_nat(nb: &Nb, out: &mut Compiled) {
    for lb in nb.load_balancers.values() {
        out.load_balancers.push(compile_lb(nb, lb));
    }
    compile_nats(nb, out);
}

/// The southbound row of one load balancer.
pub fn compile_lb(nb: &Nb, lb: &LoadBalancer) -> pb::SbLoadBalancer {
    {
        let mut dps: BTreeSet<u32> = BTreeSet::new();
        let scope = lb
            .switches
            .iter()
            .map(String::as_str)
            .chain(lb.routers.iter().flat_map(|r| nb.switches_of_router(r)));
        for s in scope {
            if let Some(ls) = nb.switches.get(s) {
                dps.insert(ls.tunnel_key);
            }
        }
        // The NB map's order is arbitrary: sorted, so that an unchanged load
        // balancer compiles to an identical row.
        let mut vips = Vec::new();
        for (vip, backends) in &lb.vips {
            let (Ok(v), Ok(b)) = (parse_endpoint("vip", vip), parse_backends(backends)) else {
                continue; // validated on write
            };
            vips.push(pb::SbVip {
                ip: v.0.into(),
                port: v.1.into(),
                backends: b
                    .iter()
                    .map(|(ip, port)| pb::SbBackend {
                        ip: (*ip).into(),
                        port: (*port).into(),
                    })
                    .collect(),
            });
        }
        vips.sort_by_key(|v: &pb::SbVip| (v.ip, v.port));
        pb::SbLoadBalancer {
            name: lb.name.clone(),
            protocol: proto_number(&lb.protocol).unwrap_or(6),
            vips,
            datapaths: dps.into_iter().collect(),
            affinity_timeout: lb
                .options
                .get("affinity_timeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            hairpin_snat_ip: lb
                .options
                .get("hairpin_snat_ip")
                .and_then(|v| v.parse::<Ipv4Addr>().ok())
                .map(u32::from)
                .unwrap_or(0),
        }
    }
}

fn compile_nats(nb: &Nb, out: &mut Compiled) {
    for n in nb.nats.values() {
        let (Some(lr), Ok(ext), Ok(logical)) = (
            nb.routers.get(&n.router_name),
            n.external_ip.parse::<Ipv4Addr>(),
            nat_logical(n),
        ) else {
            continue;
        };
        let Some((_, Some(sw))) = nb.nat_gateway(n) else {
            continue; // the gateway port is attached to no switch (yet)
        };
        let Some(ls) = nb.switches.get(sw) else {
            continue;
        };
        out.nats.push(pb::SbNat {
            router: lr.tunnel_key,
            router_name: lr.name.clone(),
            r#type: n.r#type.clone(),
            external_ip: ext.into(),
            logical_ip: logical.addr().into(),
            logical_plen: logical.prefix_len().into(),
            switch: ls.tunnel_key,
        });
    }
}
