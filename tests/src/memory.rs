//! The in-memory runner: the real compiler output, translated into real tables,
//! executed by a real PMD over in-memory ports. No kernel involved.

use crate::scenario::{Expect, Scenario, Tally, Topo, ROUNDS};
use std::sync::Arc;
use switchyard_northd::compile::compile;
use switchyard_northd::model::Nb;
use switchyard_northd::server::sb::Sb;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::pmd::{Pmd, SharedTables};
use switchyard_vswitch::port::MemPort;
use switchyard_vswitch::stats::{PmdStats, PortStats};
use switchyard_vswitch::tables::{LocalBinding, Tables};

/// The NB topology the sandbox builds: one switch, `pods` ports with port security.
pub fn sandbox_nb(pods: usize) -> Nb {
    nb_of(&Topo::switch(pods).nb_ops())
}

/// An NB database made of `ops`, validated as northd validates them.
pub fn nb_of(ops: &[Op]) -> Nb {
    let mut nb = Nb::default();
    nb.apply_all(ops.to_vec())
        .expect("the scenario's NB is valid");
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

/// The in-memory cluster of a scenario: one PMD per chassis, each endpoint an
/// in-memory port on its chassis, the chassis joined by an in-memory underlay
/// that carries each Geneve frame to the chassis whose MAC it is sent to.
pub struct Cluster {
    pub pmds: Vec<(Pmd, Arc<PmdStats>)>,
    /// Endpoint -> (chassis, slot).
    pub at: Vec<(usize, u16)>,
}

const UNDERLAY: u16 = 200;

fn chassis_ip(k: usize) -> u32 {
    0xac1f_0000 | (k as u32 + 11)
}

fn chassis_mac(k: usize) -> u64 {
    0x0a58_ac1f_0000 | (k as u64 + 11)
}

impl Cluster {
    /// Compiles the scenario's NB (topology, then configuration) and builds the
    /// chassis' tables from it, as northd and vswitchd would.
    pub fn new(s: &Scenario) -> Cluster {
        let mut ops = s.topo.nb_ops();
        ops.extend(s.config.iter().cloned());
        let nb = nb_of(&ops);
        let eps = s.topo.endpoints();
        let n = s.topo.chassis;
        let names: Vec<String> = (0..n).map(|k| format!("ch{k}")).collect();
        let chassis: Vec<(&str, u32)> =
            (0..n).map(|k| (names[k].as_str(), chassis_ip(k))).collect();
        let claims: Vec<(&str, &str)> = eps
            .iter()
            .map(|e| (e.lport.as_str(), names[e.chassis].as_str()))
            .collect();
        let snap = if n > 1 {
            southbound_with_chassis(&nb, &chassis, &claims)
        } else {
            southbound(&nb)
        };
        let mut at = vec![(0, 0); eps.len()];
        let mut pmds = Vec::new();
        for (k, name) in names.iter().enumerate() {
            let mut local = Vec::new();
            for (i, e) in eps.iter().enumerate().filter(|(_, e)| e.chassis == k) {
                let slot = local.len() as u16;
                at[i] = (k, slot);
                local.push(LocalBinding {
                    slot,
                    iface: format!("mem{i}"),
                    lport: e.lport.clone(),
                });
            }
            let me = if n > 1 { name.as_str() } else { "" };
            let mut t = Tables::build(1, &snap, me, &local);
            if n > 1 {
                let macs = (0..n).map(|j| (chassis_ip(j), chassis_mac(j))).collect();
                t.set_underlay(
                    switchyard_vswitch::tables::Underlay {
                        slot: UNDERLAY,
                        ip: chassis_ip(k),
                        mac: chassis_mac(k),
                        mtu: 1500,
                    },
                    &macs,
                    &mut Default::default(),
                );
            }
            let stats = Arc::new(PmdStats::default());
            let mut pmd = Pmd::new(SharedTables::new(t), stats.clone(), 4096);
            for b in &local {
                pmd.add_port(
                    b.slot,
                    Box::new(MemPort::new()),
                    Arc::new(PortStats::default()),
                );
            }
            if n > 1 {
                pmd.add_port(
                    UNDERLAY,
                    Box::new(MemPort::new()),
                    Arc::new(PortStats::default()),
                );
            }
            pmds.push((pmd, stats));
        }
        Cluster { pmds, at }
    }

    fn port(&mut self, k: usize, slot: u16) -> &mut MemPort {
        let p = self.pmds[k].0.port_mut(slot).expect("port exists");
        p.as_any_mut().downcast_mut::<MemPort>().expect("MemPort")
    }

    /// Sends `frame` from endpoint `from`, runs every chassis until nothing
    /// moves (the underlay delivering what each sends), and returns what each
    /// endpoint received.
    pub fn send(&mut self, from: usize, frame: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let (k, slot) = self.at[from];
        self.port(k, slot).rx.push_back(frame.to_vec());
        for _ in 0..16 {
            let mut moved = 0;
            for (pmd, _) in &mut self.pmds {
                moved += pmd.poll_once();
            }
            if self.pmds.len() > 1 {
                for src in 0..self.pmds.len() {
                    let out = std::mem::take(&mut self.port(src, UNDERLAY).tx);
                    for f in out {
                        let dst = (0..self.pmds.len())
                            .find(|j| f[0..6] == chassis_mac(*j).to_be_bytes()[2..]);
                        if let Some(j) = dst {
                            self.port(j, UNDERLAY).rx.push_back(f);
                            moved += 1;
                        }
                    }
                }
            }
            if moved == 0 {
                break;
            }
        }
        (0..self.at.len())
            .map(|e| {
                let (k, slot) = self.at[e];
                std::mem::take(&mut self.port(k, slot).tx)
            })
            .collect()
    }

    /// The drops counted under `r` on every chassis.
    pub fn drops(&self, r: switchyard_southbound::DropReason) -> u64 {
        self.pmds
            .iter()
            .map(|(_, s)| s.drops[r as usize].get())
            .sum()
    }

    /// Exact-match cache hits on every chassis.
    pub fn emc_hits(&self) -> u64 {
        self.pmds.iter().map(|(_, s)| s.emc_hits.get()).sum()
    }
}

/// Runs a scenario over the in-memory port: every case [`ROUNDS`] times, in
/// order. Returns the mismatches (empty when all is well) and the EMC hits.
pub fn run_scenario(s: &Scenario) -> (Vec<String>, u64) {
    let mut c = Cluster::new(s);
    let mut tally = Tally::default();
    for case in &s.cases {
        for round in 0..ROUNDS {
            let reason = match &case.expect {
                Expect::Dropped(r) => Some(*r),
                _ => None,
            };
            let before = reason.map(|r| c.drops(r)).unwrap_or(0);
            let got = c.send(case.from, &case.frame);
            let counted = reason.is_some_and(|r| c.drops(r) > before);
            tally.record(s, case, round, case.judge(&got, counted));
        }
    }
    (tally.finish(s), c.emc_hits())
}
