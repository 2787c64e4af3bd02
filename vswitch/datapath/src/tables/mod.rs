//! Translation of southbound contents plus this chassis's local bindings into the
//! immutable table set the PMD threads execute. A new set is built off the fast
//! path and swapped in whole; PMDs notice the new generation between batches.

pub mod lb;

use crate::dp::classifier::Classifier;
use rustc_hash::FxHashMap;
use switchyard_southbound::pb::{action::Kind, LogicalFlow, SbSnapshot};
use switchyard_southbound::{DropReason, Field, Pipeline, Stage};

/// A translated action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Next,
    Output,
    SetOutport(u32),
    Drop(DropReason),
    ArpReply(u64),
    /// Answer a neighbor solicitation in place with this MAC (`router`: the
    /// NA's R flag).
    NdReply {
        mac: u64,
        router: bool,
    },
    /// ip.ttl--; reg0 = nexthop; reg1 = src_ip; eth.src = src_mac; outport; next.
    Route(RouteHop),
    /// One of the hops in `Tables::ecmp[i]`, by a hash of the 5-tuple.
    Ecmp(u32),
    /// eth.dst = the learned MAC of (outport, reg0) or zero; next.
    GetArp,
    /// eth.dst = MAC; next.
    SetEthDst(u64),
    /// The actions that make a new packet (the slow path builds it).
    Generate(GenKind),
    /// Answer a DNS query from the datapath's zone, or `next` for a name it
    /// has no record for (the PMD decides: the name is not in the flow key).
    DnsLookup,
    /// Answer a DHCPv4 message from the inport's lease, or `next`.
    DhcpReply,
    /// Commit the packet's connection with these (value, mask) bits of mark
    /// and label; the PMD does it once the packet's fate is known.
    CtCommit {
        mark: (u32, u32),
        label: (u32, u32),
    },
}

/// One routing decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteHop {
    /// 0: the destination itself (a connected network).
    pub nexthop: u32,
    pub port: u32,
    pub src_ip: u32,
    pub src_mac: u64,
    /// An IPv6 hop: its nexthop (0: the destination) and the router port's
    /// address, as `FlowKey` words; `None` for IPv4.
    pub v6: Option<Hop6>,
}

/// The IPv6 half of a [`RouteHop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop6 {
    pub nexthop: [u64; 2],
    pub src_ip: [u64; 2],
}

/// A 16-byte proto address as `FlowKey` words (high half first).
pub fn ip6_words(b: &[u8]) -> Option<[u64; 2]> {
    let a: [u8; 16] = b.try_into().ok()?;
    let v = u128::from_be_bytes(a);
    Some([(v >> 64) as u64, v as u64])
}

/// A packet the router generates in answer to the one it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenKind {
    IcmpError {
        ty: u8,
        code: u8,
        src_ip: u32,
        mtu: u16,
        /// An ICMPv6 error, from this address.
        src_ip6: Option<[u64; 2]>,
    },
    EchoReply,
    /// A TCP RST answering a segment to the router's own address.
    TcpReset,
    ArpRequest,
    PutArp,
    /// The IPv6 twins: a solicitation for xxreg0, learning from an NA.
    NdSolicit,
    PutNd,
    /// A router advertisement answering a solicitation: `Tables::ra[i]`.
    RouterAdvert(u32),
}

/// One translated logical flow.
#[derive(Debug)]
pub struct Flow {
    pub priority: u32,
    pub actions: Vec<Act>,
    /// The SB flow it came from (for traces and dumps).
    pub lflow: LogicalFlow,
}

/// One stage of one datapath's pipeline.
#[derive(Debug)]
pub struct StageTable {
    pub stage: Stage,
    pub classifier: Classifier,
    pub flows: Vec<Flow>,
}

/// The pipelines of one logical datapath.
#[derive(Debug, Default)]
pub struct DpTables {
    pub name: String,
    /// A router may send a packet back out the port it came in on; a switch may not.
    pub router: bool,
    pub ingress: Vec<StageTable>,
    pub egress: Vec<StageTable>,
    /// Some flow matches conntrack fields or commits: packets entering this
    /// datapath's part of the topology are tracked first.
    pub stateful: bool,
}

/// Where a logical port lives, from this chassis's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortTarget {
    /// Bound here, at this port slot.
    Local(u16),
    /// Bound on another chassis.
    Remote(String),
    /// A switch-router link: the packet continues in datapath `dp` entering at `port`.
    Patch { dp: u32, port: u32 },
    /// Not bound anywhere (yet).
    Unbound,
}

/// What a local port slot is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotBinding {
    pub datapath: u32,
    pub port: u32,
    pub name: String,
    pub enabled: bool,
    /// A load balancer serves this port's switch: its packets to VIPs are
    /// translated on the way in, replies on the way out.
    pub lb: bool,
    /// The port is on a router's external switch: its traffic is NATed.
    pub nat: bool,
    /// Conntrack zone its packets are tracked in before the pipeline (0: none).
    pub ct_zone: u32,
}

/// A local interface bound to a logical port (the agent's view).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalBinding {
    pub slot: u16,
    pub iface: String,
    pub lport: String,
}

/// The complete, immutable datapath configuration.
#[derive(Debug, Default)]
pub struct Tables {
    pub generation: u64,
    pub sb_version: u64,
    pub slots: Vec<Option<SlotBinding>>,
    pub datapaths: FxHashMap<u32, DpTables>,
    pub ports: FxHashMap<(u32, u32), PortTarget>,
    pub port_names: FxHashMap<(u32, u32), String>,
    pub multicast: FxHashMap<(u32, u32), Vec<u32>>,
    /// SB flows that could not be translated (version skew); they are skipped.
    pub untranslatable: usize,
    /// ECMP groups referenced by [`Act::Ecmp`].
    pub ecmp: Vec<Vec<RouteHop>>,
    /// Router advertisements referenced by [`GenKind::RouterAdvert`].
    pub ra: Vec<crate::dp::generate6::RaTemplate>,
    /// Learned neighbours: (router datapath, router port, IP) -> MAC.
    pub neighbors: FxHashMap<(u32, u32, u32), u64>,
    /// Learned IPv6 neighbours: (router datapath, router port, IPv6) -> MAC.
    pub neighbors6: FxHashMap<(u32, u32, [u64; 2]), u64>,
    /// This chassis's underlay port, when it has one (Geneve tunnels).
    pub underlay: Option<Underlay>,
    /// One tunnel per remote chassis with a Geneve encap, in chassis-name order.
    pub tunnels: Vec<Tunnel>,
    /// Chassis name -> index into `tunnels`.
    pub tunnel_of: FxHashMap<String, u16>,
    /// Remote encap IP -> index into `tunnels` (received traffic).
    pub tunnel_by_ip: FxHashMap<u32, u16>,
    /// (datapath, port) -> the tunnel that may name it as a received packet's
    /// logical ingress: the one to the chassis it is bound to, or
    /// [`ANY_TUNNEL`] for a router's patch port. Ports not here (local,
    /// unbound) are no tunnel's to name.
    pub tunnel_ingress: FxHashMap<(u32, u32), u16>,
    /// Load balancer VIPs (shared with the agent's incremental index).
    pub services: std::sync::Arc<crate::tables::lb::Services>,
    /// Router NAT rules.
    pub nats: crate::tables::lb::Nats,
    /// Some local port needs conntrack (load balancing, NAT or stateful flows).
    pub ct_active: bool,
    /// Datapath -> conntrack zone, for datapaths connected (through routers)
    /// to one with stateful flows.
    pub ct_zones: FxHashMap<u32, u32>,
    /// Conntrack zone -> most connections it may hold (other_config:ct-zone-limit
    /// of a switch: its load balancer zone and its topology's stateful zone,
    /// the smallest limit of the topology's switches winning).
    pub ct_zone_limits: FxHashMap<u32, u32>,
    /// DNS records by switch datapath ([`crate::answer::dns`]).
    pub dns: crate::answer::dns::Zones,
    /// DHCPv4 leases by (switch datapath, port) ([`crate::answer::dhcp`]).
    pub dhcp: crate::answer::dhcp::Leases,
    /// By local slot: the MTU of its switch (other_config:mtu), the largest
    /// IP packet delivered to it; 0 where none is set (not checked).
    pub slot_mtu: Vec<u16>,
}

impl Tables {
    /// The largest IP packet slot `slot` takes (0: not checked).
    #[inline]
    pub fn mtu_of(&self, slot: u16) -> u16 {
        self.slot_mtu.get(usize::from(slot)).copied().unwrap_or(0)
    }

    /// Whether conntrack entries in `zone` belong to this table set: a load
    /// balancer's (switch) or NAT's (router) datapath key, or a stateful zone
    /// (named after its topology's smallest datapath key, which maps to it).
    #[inline]
    pub fn has_zone(&self, zone: u32) -> bool {
        if zone & STATEFUL_ZONE != 0 {
            self.ct_zones.get(&(zone & !STATEFUL_ZONE)) == Some(&zone)
        } else {
            self.datapaths.contains_key(&zone)
        }
    }

    /// Whether `old` had a datapath or a stateful zone that this set lacks.
    pub fn lost_zones(&self, old: &Tables) -> bool {
        old.datapaths
            .keys()
            .any(|k| !self.datapaths.contains_key(k))
            || old.ct_zones.values().any(|z| !self.has_zone(*z))
    }
}

/// Stateful zones are `STATEFUL_ZONE | the smallest datapath key of the
/// connected topology`, apart from load balancer (switch) and NAT (router) zones.
pub const STATEFUL_ZONE: u32 = 1 << 31;

/// [`Tables::tunnel_ingress`] of a patch port: any chassis may name it.
pub const ANY_TUNNEL: u16 = u16::MAX;

/// Output list entries at or above this are tunnels (`entry - TUNNEL_BASE`).
pub const TUNNEL_BASE: u16 = 0x8000;

/// The local end of the tunnels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub slot: u16,
    pub ip: u32,
    pub mac: u64,
    pub mtu: u16,
}

/// A tunnel to one remote chassis.
#[derive(Clone, Debug)]
pub struct Tunnel {
    pub chassis: String,
    pub ip: u32,
    /// The remote's underlay MAC (or the underlay gateway's); 0 while unresolved.
    pub mac: u64,
    pub stats: std::sync::Arc<crate::stats::TunnelStats>,
    /// The outer headers, prepared once the remote MAC is known.
    pub template: Option<switchyard_geneve::tunnel::Template>,
}

/// A translated match: (field, value, mask) conjuncts.
pub type MatchList = Vec<(Field, u64, u64)>;

fn hop(r: &switchyard_southbound::pb::Route) -> RouteHop {
    RouteHop {
        nexthop: r.nexthop,
        port: r.port,
        src_ip: r.src_ip,
        src_mac: r.src_mac,
        v6: ip6_words(&r.src_ip6).map(|src_ip| Hop6 {
            nexthop: ip6_words(&r.nexthop6).unwrap_or([0; 2]),
            src_ip,
        }),
    }
}

fn translate_flow(
    f: &LogicalFlow,
    ecmp: &mut Vec<Vec<RouteHop>>,
    ra: &mut Vec<crate::dp::generate6::RaTemplate>,
) -> Option<(MatchList, Vec<Act>)> {
    let mut ms = Vec::with_capacity(f.matches.len());
    for m in &f.matches {
        ms.push((Field::parse(&m.field)?, m.value, m.mask));
    }
    let mut acts = Vec::with_capacity(f.actions.len());
    for a in &f.actions {
        acts.push(match a.kind.as_ref()? {
            Kind::Next(_) => Act::Next,
            Kind::Output(_) => Act::Output,
            Kind::SetOutport(o) => Act::SetOutport(o.port),
            Kind::Drop(d) => {
                Act::Drop(DropReason::parse(&d.reason).unwrap_or(DropReason::PipelineDrop))
            }
            Kind::ArpReply(r) => Act::ArpReply(r.mac),
            Kind::NdNa(r) => Act::NdReply {
                mac: r.mac,
                router: r.router,
            },
            Kind::Route(r) => Act::Route(hop(r)),
            Kind::Ecmp(e) => {
                if e.routes.is_empty() {
                    return None;
                }
                ecmp.push(e.routes.iter().map(hop).collect());
                Act::Ecmp(ecmp.len() as u32 - 1)
            }
            Kind::GetArp(_) => Act::GetArp,
            Kind::SetEthDst(e) => Act::SetEthDst(e.mac),
            Kind::IcmpError(e) => Act::Generate(GenKind::IcmpError {
                ty: u8::try_from(e.r#type).ok()?,
                code: u8::try_from(e.code).ok()?,
                src_ip: e.src_ip,
                mtu: u16::try_from(e.mtu).ok()?,
                src_ip6: ip6_words(&e.src_ip6),
            }),
            Kind::IcmpEchoReply(_) => Act::Generate(GenKind::EchoReply),
            Kind::ArpRequest(_) => Act::Generate(GenKind::ArpRequest),
            Kind::PutArp(_) => Act::Generate(GenKind::PutArp),
            Kind::NdNs(_) => Act::Generate(GenKind::NdSolicit),
            Kind::PutNd(_) => Act::Generate(GenKind::PutNd),
            Kind::NdRa(r) => {
                ra.push(crate::dp::generate6::RaTemplate::new(r)?);
                Act::Generate(GenKind::RouterAdvert(ra.len() as u32 - 1))
            }
            Kind::TcpReset(_) => Act::Generate(GenKind::TcpReset),
            Kind::DnsLookup(_) => Act::DnsLookup,
            Kind::DhcpReply(_) => Act::DhcpReply,
            Kind::CtCommit(c) => Act::CtCommit {
                mark: (c.mark, c.mark_mask),
                label: (c.label, c.label_mask),
            },
        });
    }
    Some((ms, acts))
}

impl Tables {
    /// Builds the tables for `sb` with this chassis's `local` bindings.
    pub fn build(
        generation: u64,
        sb: &SbSnapshot,
        chassis: &str,
        local: &[LocalBinding],
    ) -> Tables {
        Self::build_with(
            generation,
            sb,
            chassis,
            local,
            &mut crate::tables::lb::MaglevCache::default(),
        )
    }

    /// [`Self::build`] reusing the Maglev tables of an earlier build.
    pub fn build_with(
        generation: u64,
        sb: &SbSnapshot,
        chassis: &str,
        local: &[LocalBinding],
        maglev: &mut crate::tables::lb::MaglevCache,
    ) -> Tables {
        let services = std::sync::Arc::new(crate::tables::lb::Services::build(
            &sb.load_balancers,
            maglev,
        ));
        Self::build_on(generation, sb, chassis, local, services)
    }

    /// [`Self::build`] with the VIP index already made (the agent keeps it up
    /// to date per changed load balancer).
    pub fn build_on(
        generation: u64,
        sb: &SbSnapshot,
        chassis: &str,
        local: &[LocalBinding],
        services: std::sync::Arc<crate::tables::lb::Services>,
    ) -> Tables {
        let mut t = Tables {
            generation,
            sb_version: sb.version,
            services,
            nats: crate::tables::lb::Nats::build(&sb.nats),
            dns: crate::answer::dns::Zones::build(
                &sb.dns,
                sb.datapaths
                    .iter()
                    .map(|d| (d.tunnel_key, d.dns_domain.as_str())),
            ),
            dhcp: crate::answer::dhcp::Leases::build(&sb.dhcp),
            ..Default::default()
        };
        let mut by_name: FxHashMap<&str, (u32, u32, bool)> = FxHashMap::default();
        for pb in &sb.port_bindings {
            by_name.insert(&pb.logical_port, (pb.datapath, pb.tunnel_key, pb.enabled));
        }
        for pb in &sb.port_bindings {
            t.port_names
                .insert((pb.datapath, pb.tunnel_key), pb.logical_port.clone());
            let target = if pb.r#type == "patch" {
                match by_name.get(pb.peer.as_str()) {
                    Some(&(dp, port, _)) => PortTarget::Patch { dp, port },
                    None => PortTarget::Unbound, // a router port attached to no switch
                }
            } else if pb.chassis.is_empty() {
                PortTarget::Unbound
            } else if pb.chassis == chassis {
                // Claimed by us; becomes Local below if an interface is bound.
                PortTarget::Unbound
            } else {
                PortTarget::Remote(pb.chassis.clone())
            };
            t.ports.insert((pb.datapath, pb.tunnel_key), target);
        }
        let mtus: FxHashMap<u32, u16> = sb
            .datapaths
            .iter()
            .filter(|d| d.mtu > 0)
            .map(|d| (d.tunnel_key, u16::try_from(d.mtu).unwrap_or(u16::MAX)))
            .collect();
        for b in local {
            let Some(&(dp, key, enabled)) = by_name.get(b.lport.as_str()) else {
                continue; // logical port not (yet) in SB
            };
            if matches!(t.ports.get(&(dp, key)), Some(PortTarget::Patch { .. })) {
                continue; // patch ports exist in the pipeline only
            }
            let slot = usize::from(b.slot);
            if t.slots.len() <= slot {
                t.slots.resize(slot + 1, None);
            }
            let lb = t.services.scoped.contains_key(&dp);
            let nat = t.nats.by_switch.contains_key(&dp);
            t.ct_active |= lb || nat;
            if let Some(&m) = mtus.get(&dp) {
                if t.slot_mtu.len() <= slot {
                    t.slot_mtu.resize(slot + 1, 0);
                }
                t.slot_mtu[slot] = m;
            }
            t.slots[slot] = Some(SlotBinding {
                datapath: dp,
                port: key,
                name: b.lport.clone(),
                enabled,
                lb,
                nat,
                ct_zone: 0,
            });
            t.ports.insert((dp, key), PortTarget::Local(b.slot));
        }
        for mg in &sb.multicast_groups {
            t.multicast
                .insert((mg.datapath, mg.tunnel_key), mg.ports.clone());
        }
        for dp in &sb.datapaths {
            let mut d = DpTables {
                name: dp.name.clone(),
                ..Default::default()
            };
            let router = dp.kind == "router";
            d.router = router;
            for p in [Pipeline::Ingress, Pipeline::Egress] {
                let stages: Vec<Stage> = if router {
                    Stage::router_pipeline(p).collect()
                } else {
                    Stage::switch_pipeline(p).collect()
                };
                let stages = stages.into_iter().map(|stage| StageTable {
                    stage,
                    classifier: Classifier::default(),
                    flows: Vec::new(),
                });
                match p {
                    Pipeline::Ingress => d.ingress = stages.collect(),
                    Pipeline::Egress => d.egress = stages.collect(),
                }
            }
            t.datapaths.insert(dp.tunnel_key, d);
        }
        for f in &sb.flows {
            let Some(d) = t.datapaths.get_mut(&f.datapath) else {
                t.untranslatable += 1;
                continue;
            };
            let stage = Stage::from_name(&f.stage);
            let list = match Pipeline::parse(&f.pipeline) {
                Some(Pipeline::Ingress) => &mut d.ingress,
                Some(Pipeline::Egress) => &mut d.egress,
                None => {
                    t.untranslatable += 1;
                    continue;
                }
            };
            let (Some(st), Some((ms, acts))) = (
                list.iter_mut().find(|s| Some(s.stage) == stage),
                translate_flow(f, &mut t.ecmp, &mut t.ra),
            ) else {
                t.untranslatable += 1;
                continue;
            };
            let id = st.flows.len() as u32;
            if st.classifier.insert(id, f.priority, &ms).is_err() {
                t.untranslatable += 1;
                continue;
            }
            d.stateful |= ms
                .iter()
                .any(|(f, _, _)| matches!(f, Field::CtState | Field::CtMark | Field::CtLabel))
                || acts.iter().any(|a| matches!(a, Act::CtCommit { .. }));
            st.flows.push(Flow {
                priority: f.priority,
                actions: acts,
                lflow: f.clone(),
            });
        }
        for d in t.datapaths.values_mut() {
            for st in d.ingress.iter_mut().chain(d.egress.iter_mut()) {
                st.classifier.finish();
            }
        }
        t.assign_ct_zones();
        for dp in sb.datapaths.iter().filter(|d| d.ct_zone_limit > 0) {
            let zones = [Some(dp.tunnel_key), t.ct_zones.get(&dp.tunnel_key).copied()];
            for z in zones.into_iter().flatten() {
                let l = t.ct_zone_limits.entry(z).or_insert(dp.ct_zone_limit);
                *l = (*l).min(dp.ct_zone_limit);
            }
        }
        let mut remote: Vec<(&str, u32)> = sb
            .chassis
            .iter()
            .filter(|c| c.name != chassis)
            .filter_map(|c| {
                let e = c.encaps.iter().find(|e| e.r#type == "geneve")?;
                Some((
                    c.name.as_str(),
                    u32::from(e.ip.parse::<std::net::Ipv4Addr>().ok()?),
                ))
            })
            .collect();
        remote.sort();
        for (i, (name, ip)) in remote.into_iter().enumerate() {
            t.tunnel_of.insert(name.to_string(), i as u16);
            t.tunnel_by_ip.insert(ip, i as u16);
            t.tunnels.push(Tunnel {
                chassis: name.to_string(),
                ip,
                mac: 0,
                stats: Default::default(),
                template: None,
            });
        }
        let tunnel_ingress = t
            .ports
            .iter()
            .filter_map(|(k, target)| match target {
                PortTarget::Remote(c) => Some((*k, *t.tunnel_of.get(c)?)),
                PortTarget::Patch { .. } => Some((*k, ANY_TUNNEL)),
                _ => None,
            })
            .collect();
        t.tunnel_ingress = tunnel_ingress;
        for m in &sb.mac_bindings {
            if let Some(&(dp, port, _)) = by_name.get(m.logical_port.as_str()) {
                if dp == m.datapath {
                    match ip6_words(&m.ip6) {
                        Some(ip6) => t.neighbors6.insert((dp, port, ip6), m.mac),
                        None => t.neighbors.insert((dp, port, m.ip), m.mac),
                    };
                }
            }
        }
        t
    }

    /// Attaches the underlay and what the agent knows of each tunnel: remote
    /// MACs (by IP) and the counters that outlive table generations.
    pub fn set_underlay(
        &mut self,
        u: Underlay,
        macs: &std::collections::HashMap<u32, u64>,
        stats: &mut std::collections::BTreeMap<String, std::sync::Arc<crate::stats::TunnelStats>>,
    ) {
        self.underlay = Some(u);
        for t in &mut self.tunnels {
            t.mac = macs.get(&t.ip).copied().unwrap_or(0);
            t.stats = stats.entry(t.chassis.clone()).or_default().clone();
            t.template = (t.mac != 0).then(|| {
                switchyard_geneve::tunnel::Template::new(&switchyard_geneve::tunnel::Outer {
                    src_mac: u.mac,
                    dst_mac: t.mac,
                    src_ip: u.ip,
                    dst_ip: t.ip,
                })
            });
        }
    }

    /// Gives every datapath connected (through patch ports) to a stateful one
    /// the zone of that connected topology. One zone for all of it: a packet
    /// is tracked once per chassis, where it enters (from a local port or a
    /// tunnel), and its reply enters elsewhere, perhaps on another switch
    /// behind the same router; both must meet the same connection. Addresses
    /// are unique within a routed topology, so the zone needs no finer grain.
    fn assign_ct_zones(&mut self) {
        if !self.datapaths.values().any(|d| d.stateful) {
            return;
        }
        let mut root: FxHashMap<u32, u32> = self.datapaths.keys().map(|&k| (k, k)).collect();
        let find = |root: &FxHashMap<u32, u32>, mut x: u32| {
            while let Some(&r) = root.get(&x).filter(|&&r| r != x) {
                x = r;
            }
            x
        };
        for (&(dp, _), target) in &self.ports {
            if let PortTarget::Patch { dp: peer, .. } = *target {
                let (a, b) = (find(&root, dp), find(&root, peer));
                if a != b {
                    root.insert(a.max(b), a.min(b));
                }
            }
        }
        let stateful: Vec<u32> = self
            .datapaths
            .iter()
            .filter(|(_, d)| d.stateful)
            .map(|(&k, _)| find(&root, k))
            .collect();
        for &dp in self.datapaths.keys() {
            let r = find(&root, dp);
            if stateful.contains(&r) {
                self.ct_zones.insert(dp, STATEFUL_ZONE | r);
            }
        }
        for b in self.slots.iter_mut().flatten() {
            b.ct_zone = self.ct_zones.get(&b.datapath).copied().unwrap_or(0);
            self.ct_active |= b.ct_zone != 0;
        }
    }

    /// The logical port bound at a slot.
    #[inline]
    pub fn slot(&self, slot: u16) -> Option<&SlotBinding> {
        self.slots.get(usize::from(slot)).and_then(|s| s.as_ref())
    }

    /// A port's name, for display.
    pub fn port_name(&self, dp: u32, key: u32) -> &str {
        self.port_names
            .get(&(dp, key))
            .map(String::as_str)
            .unwrap_or("?")
    }
}
