//! The flow vocabulary every compiler stage writes with: matches ([`M`]),
//! actions, the one way to add a logical flow ([`Lflows::add`], which records
//! the source line of its builder), EtherTypes, and what a compile produces.

use ipnet::IpNet;
use switchyard_southbound::pb::{self, action::Kind, Action, FieldMatch, LogicalFlow};
use switchyard_southbound::{DropReason, Field, Stage};

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
    /// An IPv6 network on the two 64-bit halves of one address field (`hi`
    /// holds bits 64..127); the low half is matched only past a /64.
    pub fn ip6(self, hi: Field, lo: Field, net: &IpNet) -> Self {
        let IpNet::V6(n) = net else { return self };
        let (addr, mask) = (u128::from(n.network()), u128::from(n.netmask()));
        let mut m = self;
        for (f, v, k) in [(hi, addr >> 64, mask >> 64), (lo, addr, mask)] {
            if k as u64 != 0 {
                m = m.field(f, v as u64, k as u64);
            }
        }
        m
    }
    /// ICMPv6 of one type (the parser walks extension headers first).
    pub fn icmp6(self, icmp_type: u64) -> Self {
        self.eq(Field::EthType, ETH_IPV6)
            .eq(Field::IpProto, 58)
            .eq(Field::L4Src, icmp_type)
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
