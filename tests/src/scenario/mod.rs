//! Traffic scenarios, each written once and run by two runners: the in-memory
//! port ([`crate::memory::run_scenario`]) and real pods over AF_XDP in network
//! namespaces ([`crate::sandbox::Sandbox::run_scenario`]), as OVS runs its
//! `system-traffic.at` over several datapaths.
//!
//! A scenario is a topology the sandbox builds (`syctl sandbox up`, mirrored in
//! memory by [`Topo::nb_ops`]), NB configuration applied on top of it (the same
//! ops `syctl` would send), and cases run in order. A case is one frame sent by
//! one endpoint and what must come of it: the exact frames each endpoint
//! receives (the sender too, for generated answers), or a drop counted under a
//! reason. Every case runs [`ROUNDS`] times in a row, so the exact-match cache's
//! hit path is checked as well as the miss that fills it.

pub mod acl;
pub mod ecmp;
pub mod l2;
pub mod overlay;
pub mod routed;
pub mod service;

use smoltcp::wire::{EthernetFrame, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket, UdpPacket};
use std::sync::Arc;
use switchyard_southbound::fmt_mac;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;

/// How many times each case's frame is sent (the first fills the caches).
pub const ROUNDS: usize = 2;

/// What `syctl sandbox up` builds: `subnets` switches (ls0, ls1, ...; a router
/// lr0 joins them when there are two or more, or an external network),
/// `pods` pods round-robin over the switches and over `chassis` chassis, and
/// with `external`, a host on network 172.16.0.0/24 behind lr0.
#[derive(Clone, Debug)]
pub struct Topo {
    pub subnets: usize,
    pub pods: usize,
    pub chassis: usize,
    pub external: bool,
}

/// One endpoint: a pod, or the external host (index `pods`).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub lport: String,
    pub switch: String,
    pub mac: u64,
    pub ip: Ipv4Address,
    /// The chassis it is bound on (0-based).
    pub chassis: usize,
    /// Its gateway (router port MAC and IP), when a router serves its switch.
    pub gateway: Option<(u64, Ipv4Address)>,
}

/// The external network's addresses (the sandbox's `--external`).
pub const EXT_NET: [u8; 3] = [172, 16, 0];

impl Topo {
    /// One switch, `pods` pods, one chassis.
    pub fn switch(pods: usize) -> Topo {
        Topo {
            subnets: 1,
            pods,
            chassis: 1,
            external: false,
        }
    }

    fn routed(&self) -> bool {
        self.subnets > 1 || self.external
    }

    /// The switch names, then "ext" with `external`.
    fn switches(&self) -> Vec<(String, [u8; 3])> {
        let mut v: Vec<(String, [u8; 3])> = (0..self.subnets)
            .map(|j| (format!("ls{j}"), [10, 244, j as u8]))
            .collect();
        if self.external {
            v.push(("ext".into(), EXT_NET));
        }
        v
    }

    /// The router port MAC and IP on a network (its .1).
    pub fn gateway_of(net: [u8; 3]) -> (u64, Ipv4Address) {
        (
            0x0a58_0000_0001
                | u64::from(net[0]) << 24
                | u64::from(net[1]) << 16
                | u64::from(net[2]) << 8,
            Ipv4Address::new(net[0], net[1], net[2], 1),
        )
    }

    /// Every endpoint: pods 0..pods, then the external host.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let sw = self.switches();
        let host = |net: [u8; 3], h: u8| {
            (
                0x0a58_0000_0000
                    | u64::from(net[0]) << 24
                    | u64::from(net[1]) << 16
                    | u64::from(net[2]) << 8
                    | u64::from(h),
                Ipv4Address::new(net[0], net[1], net[2], h),
            )
        };
        let mut v: Vec<Endpoint> = (1..=self.pods)
            .map(|i| {
                let (name, net) = &sw[(i - 1) % self.subnets];
                let (mac, ip) = host(*net, 10 + i as u8);
                Endpoint {
                    lport: format!("{name}-pod{i}"),
                    switch: name.clone(),
                    mac,
                    ip,
                    chassis: (i - 1) % self.chassis,
                    gateway: self.routed().then(|| Topo::gateway_of(*net)),
                }
            })
            .collect();
        if self.external {
            let (mac, ip) = host(EXT_NET, 10);
            v.push(Endpoint {
                lport: "ext-host".into(),
                switch: "ext".into(),
                mac,
                ip,
                chassis: 0,
                gateway: None,
            });
        }
        v
    }

    /// The `syctl sandbox up` arguments that build this topology (with --pods).
    pub fn sandbox_args(&self) -> Vec<String> {
        let mut a = vec!["--subnets".to_string(), self.subnets.to_string()];
        if self.chassis > 1 {
            a.extend(["--chassis".to_string(), self.chassis.to_string()]);
        }
        if self.external {
            a.push("--external".into());
        }
        a
    }

    /// The NB ops `syctl sandbox up` sends for this topology.
    pub fn nb_ops(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = self
            .switches()
            .iter()
            .map(|(name, net)| {
                Op::LsAdd(pb::LogicalSwitch {
                    name: name.clone(),
                    subnet: format!("{}.{}.{}.0/24", net[0], net[1], net[2]),
                    ..Default::default()
                })
            })
            .collect();
        if self.routed() {
            ops.push(Op::LrAdd(pb::LogicalRouter {
                name: "lr0".into(),
                enabled: true,
                ..Default::default()
            }));
            for (name, net) in self.switches() {
                let (mac, ip) = Topo::gateway_of(net);
                let lrp = format!("lr0-{name}");
                ops.push(Op::LrpAdd(pb::LogicalRouterPort {
                    name: lrp.clone(),
                    router_name: "lr0".into(),
                    mac: fmt_mac(mac),
                    networks: vec![format!("{ip}/24")],
                    enabled: true,
                    ..Default::default()
                }));
                ops.push(Op::LspAdd(pb::LogicalSwitchPort {
                    name: format!("{name}-lr0"),
                    switch_name: name.clone(),
                    addresses: vec!["router".into()],
                    enabled: true,
                    r#type: "router".into(),
                    options: [("router-port".to_string(), lrp)].into(),
                    ..Default::default()
                }));
            }
        }
        for e in self.endpoints() {
            let addr = format!("{} {}", fmt_mac(e.mac), e.ip);
            ops.push(Op::LspAdd(pb::LogicalSwitchPort {
                name: e.lport.clone(),
                switch_name: e.switch.clone(),
                addresses: vec![addr.clone()],
                port_security: vec![addr],
                enabled: true,
                ..Default::default()
            }));
        }
        ops
    }
}

/// A test on a received frame.
pub type Predicate = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// A frame some endpoint must receive: exactly these bytes, or any frame a
/// predicate accepts (generated answers whose every byte is not the point).
#[derive(Clone)]
pub struct Want {
    pub what: String,
    pub test: Predicate,
}

impl Want {
    pub fn exact(frame: Vec<u8>) -> Want {
        Want {
            what: format!("exactly {}", crate::frames::hex(&frame)),
            test: Arc::new(move |f| f == frame.as_slice()),
        }
    }

    pub fn like(what: &str, test: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> Want {
        Want {
            what: what.into(),
            test: Arc::new(test),
        }
    }
}

impl std::fmt::Debug for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// What must happen to a case's frame.
#[derive(Clone, Debug)]
pub enum Expect {
    /// These endpoints receive these frames, and nobody receives anything else
    /// of the case's (a copy of its frame, a frame carrying its tag, or one a
    /// [`Want`] accepts).
    Delivered(Vec<(usize, Want)>),
    /// Nobody receives anything of the case's, and the drop is counted.
    Dropped(DropReason),
    /// Exactly one of these alternatives happens (ECMP: one next hop of
    /// several), the same one in every round, and nobody else receives
    /// anything of the case's.
    OneOf(Vec<(usize, Want)>),
}

/// One case: endpoint `from` sends `frame`.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub from: usize,
    pub frame: Vec<u8>,
    pub expect: Expect,
}

impl Case {
    /// The bytes that mark the case's frames (carried in UDP payloads).
    pub fn tag(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// Judges what each endpoint received (`got[e]`, every frame, noise
    /// included) against the expectation; `counted` says whether the drop
    /// reason's counter rose.
    /// For [`Expect::OneOf`], returns the endpoint that received it.
    pub fn judge(&self, got: &[Vec<Vec<u8>>], counted: bool) -> Result<Option<usize>, String> {
        if let Expect::OneOf(alts) = &self.expect {
            return self.judge_one_of(got, alts);
        }
        let wants: Vec<&(usize, Want)> = match &self.expect {
            Expect::Delivered(w) => w.iter().collect(),
            _ => Vec::new(),
        };
        let ours = |f: &[u8]| {
            f == self.frame.as_slice()
                || carries_tag(f, self.tag())
                || wants.iter().any(|(_, w)| (w.test)(f))
        };
        for (e, frames) in got.iter().enumerate() {
            let mut mine: Vec<&Vec<u8>> = frames.iter().filter(|f| ours(f)).collect();
            for (_, w) in wants.iter().filter(|(to, _)| *to == e) {
                match mine.iter().position(|f| (w.test)(f)) {
                    Some(i) => {
                        mine.remove(i);
                    }
                    None => {
                        return Err(format!(
                            "{}: endpoint {e} did not receive {w:?}; it got {}",
                            self.name,
                            describe(frames)
                        ))
                    }
                }
            }
            if !mine.is_empty() {
                return Err(format!(
                    "{}: endpoint {e} received what it should not: {}",
                    self.name,
                    describe(&mine.into_iter().cloned().collect::<Vec<_>>())
                ));
            }
        }
        match &self.expect {
            Expect::Dropped(r) if !counted => Err(format!("{}: not counted as {r}", self.name)),
            _ => Ok(None),
        }
    }

    fn judge_one_of(
        &self,
        got: &[Vec<Vec<u8>>],
        alts: &[(usize, Want)],
    ) -> Result<Option<usize>, String> {
        let ours = |f: &[u8]| {
            f == self.frame.as_slice()
                || carries_tag(f, self.tag())
                || alts.iter().any(|(_, w)| (w.test)(f))
        };
        let mine: Vec<(usize, Vec<&Vec<u8>>)> = got
            .iter()
            .enumerate()
            .map(|(e, frames)| (e, frames.iter().filter(|f| ours(f)).collect::<Vec<_>>()))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let [(e, frames)] = mine.as_slice() else {
            let who: Vec<usize> = mine.iter().map(|(e, _)| *e).collect();
            return Err(format!(
                "{}: exactly one of {:?} should receive it; endpoints {who:?} received something of it",
                self.name,
                alts.iter().map(|(e, _)| *e).collect::<Vec<_>>()
            ));
        };
        match alts.iter().find(|(to, _)| to == e) {
            Some((_, w)) if frames.len() == 1 && (w.test)(frames[0]) => Ok(Some(*e)),
            Some((_, w)) => Err(format!(
                "{}: endpoint {e} should receive {w:?} once; it got {}",
                self.name,
                describe(&frames.iter().map(|f| f.to_vec()).collect::<Vec<_>>())
            )),
            None => Err(format!(
                "{}: endpoint {e} is none of the alternatives",
                self.name
            )),
        }
    }
}

/// What a runner learns over a scenario's cases and rounds: the mismatches,
/// and for [`Expect::OneOf`] cases which alternative each took.
#[derive(Default)]
pub struct Tally {
    chosen: std::collections::BTreeMap<&'static str, usize>,
    pub failures: Vec<String>,
}

impl Tally {
    /// Records one round of one case.
    pub fn record(
        &mut self,
        s: &Scenario,
        case: &Case,
        round: usize,
        r: Result<Option<usize>, String>,
    ) {
        match r {
            Err(e) => self
                .failures
                .push(format!("{} (round {}): {e}", s.name, round + 1)),
            Ok(Some(e)) => {
                if let Some(first) = self.chosen.insert(case.name, e) {
                    if first != e {
                        self.failures.push(format!(
                            "{} (round {}): {}: went to endpoint {e}, endpoint {first} before",
                            s.name,
                            round + 1,
                            case.name
                        ));
                    }
                }
            }
            Ok(None) => {}
        }
    }

    /// The failures, with the scenario's spread checked: its OneOf cases
    /// together must have reached every endpoint in `s.spread`.
    pub fn finish(mut self, s: &Scenario) -> Vec<String> {
        let reached: std::collections::BTreeSet<usize> = self.chosen.values().copied().collect();
        let missed: Vec<usize> = s
            .spread
            .iter()
            .filter(|e| !reached.contains(e))
            .copied()
            .collect();
        if !missed.is_empty() {
            self.failures.push(format!(
                "{}: no case went to endpoints {missed:?} (reached {reached:?})",
                s.name
            ));
        }
        self.failures
    }
}

fn describe(frames: &[Vec<u8>]) -> String {
    if frames.is_empty() {
        return "nothing".into();
    }
    frames
        .iter()
        .map(|f| crate::frames::hex(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `f` is a UDP or TCP/IPv4 frame whose bytes contain `tag` (ICMP
/// errors quoting the case's frame, from a pod's own kernel, are not ours).
pub fn carries_tag(f: &[u8], tag: &[u8]) -> bool {
    let l4 = f.len() > 23 && f[12..14] == [0x08, 0x00] && (f[23] == 17 || f[23] == 6);
    l4 && f.windows(tag.len()).any(|w| w == tag)
}

/// A scenario: topology, configuration on top of it, cases in order.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub topo: Topo,
    pub config: Vec<Op>,
    pub cases: Vec<Case>,
    /// Endpoints the [`Expect::OneOf`] cases must reach between them (empty:
    /// no such check).
    pub spread: Vec<usize>,
}

/// The `syctl` arguments that make `op` (the configuration a scenario may use).
pub fn syctl_args(op: &Op) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match op {
        Op::LbAdd(l) => {
            let (vip, backends) = l.vips.iter().next().expect("one VIP");
            s(&["lb-add", &l.name, vip, backends, &l.protocol])
        }
        Op::LbAttach(a) if !a.switch_name.is_empty() => s(&["ls-lb-add", &a.switch_name, &a.lb]),
        Op::LbAttach(a) => s(&["lr-lb-add", &a.router_name, &a.lb]),
        Op::NatAdd(n) => s(&[
            "lr-nat-add",
            &n.router_name,
            &n.r#type,
            &n.external_ip,
            &n.logical_ip,
        ]),
        Op::AclAdd(a) => s(&[
            "acl-add",
            &a.switch_name,
            &a.direction,
            &a.priority.to_string(),
            &a.r#match,
            &a.action,
        ]),
        Op::RouteAdd(r) => s(&["lr-route-add", &r.router_name, &r.prefix, &r.nexthop]),
        Op::LspSetPortSecurity(p) => {
            let mut a = s(&["lsp-set-port-security", &p.port]);
            a.extend(p.addresses.iter().cloned());
            a
        }
        Op::LsSetOtherConfig(c) => {
            let mut a = s(&["set", "Logical_Switch", &c.record]);
            let mut kv: Vec<_> = c.config.iter().collect();
            kv.sort();
            a.extend(kv.iter().map(|(k, v)| format!("other_config:{k}={v}")));
            a
        }
        other => panic!("no syctl form for {other:?} in the scenario API"),
    }
}

/// The frame a router hop makes of `f`: new MACs, TTL one less, checksum valid.
pub fn routed(f: &[u8], src_mac: u64, dst_mac: u64) -> Vec<u8> {
    let mut f = f.to_vec();
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    e.set_src_addr(crate::frames::mac(src_mac));
    e.set_dst_addr(crate::frames::mac(dst_mac));
    let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
    p.set_hop_limit(p.hop_limit() - 1);
    p.fill_checksum();
    f
}

/// `f` with its IPv4 source and/or destination (address, port) rewritten and
/// every checksum made valid again: what NAT and load balancing do.
pub fn translated(
    f: &[u8],
    src: Option<(Ipv4Address, u16)>,
    dst: Option<(Ipv4Address, u16)>,
) -> Vec<u8> {
    let mut f = f.to_vec();
    let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
    if let Some((a, _)) = src {
        p.set_src_addr(a);
    }
    if let Some((a, _)) = dst {
        p.set_dst_addr(a);
    }
    p.fill_checksum();
    let (s, d, proto) = (p.src_addr(), p.dst_addr(), p.next_header());
    let l4 = p.payload_mut();
    match proto {
        IpProtocol::Udp => {
            let mut u = UdpPacket::new_unchecked(l4);
            if let Some((_, port)) = src {
                u.set_src_port(port);
            }
            if let Some((_, port)) = dst {
                u.set_dst_port(port);
            }
            u.fill_checksum(&s.into(), &d.into());
        }
        IpProtocol::Tcp => {
            let mut t = TcpPacket::new_unchecked(l4);
            if let Some((_, port)) = src {
                t.set_src_port(port);
            }
            if let Some((_, port)) = dst {
                t.set_dst_port(port);
            }
            t.fill_checksum(&s.into(), &d.into());
        }
        other => panic!("translated: {other} is not UDP or TCP"),
    }
    f
}

/// A UDP frame from endpoint `a` to endpoint `b` carrying `tag`, addressed at L2
/// to `b` when they share a switch and to `a`'s gateway otherwise.
pub fn udp_between(t: &Topo, a: usize, b: usize, sport: u16, dport: u16, tag: &str) -> Vec<u8> {
    let e = t.endpoints();
    let dst_mac = if e[a].switch == e[b].switch {
        e[b].mac
    } else {
        e[a].gateway.expect("a routed endpoint").0
    };
    crate::frames::udp_ports(
        e[a].mac,
        dst_mac,
        e[a].ip,
        e[b].ip,
        sport,
        dport,
        tag.as_bytes(),
    )
}

/// A case: endpoint `a` sends UDP to endpoint `b` (tagged with the case's
/// name), and `b` receives it as the network delivers it: unchanged on one
/// switch, rewritten by the router hop (MACs, TTL) across switches.
pub fn forwarded(t: &Topo, name: &'static str, a: usize, b: usize, sport: u16, dport: u16) -> Case {
    let e = t.endpoints();
    let f = udp_between(t, a, b, sport, dport, name);
    let seen = if e[a].switch == e[b].switch {
        f.clone()
    } else {
        routed(&f, e[b].gateway.expect("a routed endpoint").0, e[b].mac)
    };
    Case {
        name,
        from: a,
        frame: f,
        expect: Expect::Delivered(vec![(b, Want::exact(seen))]),
    }
}

/// The IPv4 header of `f` when it is an ICMP message of `icmp_type` from `src`
/// to `dst`, quoting a datagram to `quoted_dst`.
pub fn is_icmp(
    f: &[u8],
    icmp_type: u8,
    src: Ipv4Address,
    dst: Ipv4Address,
    quoted_dst: Option<Ipv4Address>,
) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(f.get(14..).unwrap_or(&[])) else {
        return false;
    };
    if f[12..14] != [0x08, 0x00]
        || p.next_header() != IpProtocol::Icmp
        || p.src_addr() != src
        || p.dst_addr() != dst
        || !p.verify_checksum()
    {
        return false;
    }
    let icmp = p.payload();
    if icmp.first() != Some(&icmp_type) {
        return false;
    }
    match quoted_dst {
        None => true,
        Some(q) => icmp.len() >= 28 && icmp[24..28] == q.octets(),
    }
}
