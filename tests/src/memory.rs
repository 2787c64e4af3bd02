//! The in-memory runner: the real compiler output, translated into real tables,
//! executed by a real PMD over in-memory ports. No kernel involved.

use crate::scenario::{pod_addr, Case, Expect};
use std::sync::Arc;
use switchyard_northd::compile::compile;
use switchyard_northd::model::Nb;
use switchyard_northd::sb::Sb;
use switchyard_southbound::fmt_mac;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::pmd::{Pmd, SharedTables};
use switchyard_vswitch::port::MemPort;
use switchyard_vswitch::stats::{PmdStats, PortStats};
use switchyard_vswitch::tables::{LocalBinding, Tables};

/// The NB topology the sandbox builds: one switch, `pods` ports with port security.
pub fn sandbox_nb(pods: usize) -> Nb {
    let mut ops = vec![Op::LsAdd(pb::LogicalSwitch {
        name: "ls0".into(),
        subnet: "10.244.0.0/24".into(),
        ..Default::default()
    })];
    for i in 1..=pods {
        let a = pod_addr(i);
        let addr = format!("{} {}", fmt_mac(a.mac), a.ip);
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("ls0-pod{i}"),
            switch_name: "ls0".into(),
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            ..Default::default()
        }));
    }
    let mut nb = Nb::default();
    nb.apply_ops(&pb::TransactRequest {
        ops: ops.into_iter().map(|o| pb::NbOp { op: Some(o) }).collect(),
        ..Default::default()
    })
    .expect("sandbox topology is valid");
    nb
}

/// A PMD with one in-memory port per pod (slot i-1 = pod i), on the compiled tables.
pub fn pmd_for(nb: &Nb, pods: usize) -> (Pmd, Arc<PmdStats>, Arc<SharedTables>) {
    let lports: Vec<String> = (1..=pods).map(|i| format!("ls0-pod{i}")).collect();
    pmd_on(&southbound(nb), &lports)
}

/// The southbound contents northd serves for `nb`.
pub fn southbound(nb: &Nb) -> pb::SbSnapshot {
    let mut sb = Sb::default();
    sb.set_compiled(compile(nb), 1);
    sb.snapshot()
}

/// [`southbound`] with chassis registered (name, Geneve encap IP) and ports
/// claimed (port, chassis), as northd serves them to a multi-chassis cluster.
pub fn southbound_with_chassis(
    nb: &Nb,
    chassis: &[(&str, u32)],
    claims: &[(&str, &str)],
) -> pb::SbSnapshot {
    let mut sb = Sb::default();
    sb.set_compiled(compile(nb), 1);
    for (name, ip) in chassis {
        sb.chassis.insert(
            (*name).into(),
            pb::Chassis {
                name: (*name).into(),
                hostname: (*name).into(),
                encaps: vec![pb::Encap {
                    r#type: "geneve".into(),
                    ip: std::net::Ipv4Addr::from(*ip).to_string(),
                }],
            },
        );
    }
    for (p, c) in claims {
        sb.claims.insert((*p).into(), (*c).into());
    }
    sb.rebuild();
    sb.snapshot()
}

/// The local bindings of `lports`, slot i for the i-th.
pub fn bindings(lports: &[String]) -> Vec<LocalBinding> {
    lports
        .iter()
        .enumerate()
        .map(|(i, l)| LocalBinding {
            slot: i as u16,
            iface: format!("mem{i}"),
            lport: l.clone(),
        })
        .collect()
}

/// A PMD with an in-memory port per logical port in `lports` (slot i = lports[i]).
pub fn pmd_on(snap: &pb::SbSnapshot, lports: &[String]) -> (Pmd, Arc<PmdStats>, Arc<SharedTables>) {
    let pods = lports.len();
    let shared = SharedTables::new(Tables::build(1, snap, "", &bindings(lports)));
    let stats = Arc::new(PmdStats::default());
    let mut pmd = Pmd::new(shared.clone(), stats.clone(), 4096);
    for i in 0..pods {
        pmd.add_port(
            i as u16,
            Box::new(MemPort::new()),
            Arc::new(PortStats::default()),
        );
    }
    (pmd, stats, shared)
}

/// The in-memory port at slot `i` (the runner only ever adds MemPorts).
pub fn mem(pmd: &mut Pmd, i: usize) -> &mut MemPort {
    let p = pmd.port_mut(i as u16).expect("port exists");
    p.as_any_mut().downcast_mut::<MemPort>().expect("MemPort")
}

/// Runs one case; returns a description of the mismatch, if any.
pub fn run_case(pmd: &mut Pmd, stats: &PmdStats, pods: usize, c: &Case) -> Result<(), String> {
    for i in 0..pods {
        mem(pmd, i).tx.clear();
    }
    let before: Vec<u64> = stats.drops.iter().map(|d| d.get()).collect();
    mem(pmd, c.from).rx.push_back(c.frame.clone());
    pmd.poll_once();
    let got: Vec<usize> = (0..pods)
        .filter(|i| mem(pmd, *i).tx.contains(&c.frame))
        .collect();
    match &c.expect {
        Expect::Delivered(want) if &got == want => Ok(()),
        Expect::Dropped(r)
            if got.is_empty() && stats.drops[*r as usize].get() > before[*r as usize] =>
        {
            Ok(())
        }
        e => Err(format!("{}: expected {e:?}, delivered to {got:?}", c.name)),
    }
}

/// NB op: load balancer `name` with one VIP ("IP:PORT") -> backends ("IP:PORT,...").
pub fn lb_op(name: &str, proto: &str, vip: &str, backends: &str) -> Op {
    Op::LbAdd(pb::LoadBalancer {
        name: name.into(),
        protocol: proto.into(),
        vips: [(vip.to_string(), backends.to_string())].into(),
        ..Default::default()
    })
}

/// NB op: load balancer `name` served on switch `switch`.
pub fn lb_attach_op(name: &str, switch: &str) -> Op {
    Op::LbAttach(pb::LbAttach {
        lb: name.into(),
        switch_name: switch.into(),
        router_name: String::new(),
    })
}
