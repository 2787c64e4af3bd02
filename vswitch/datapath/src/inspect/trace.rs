//! Traces: a packet described as a microflow, walked through the logical pipeline
//! stage by stage. The logical trace runs on southbound contents alone (every
//! port treated as present); the datapath trace runs inside a live vswitchd on the
//! tables and cache its PMD really uses, without transmitting.

use crate::dp::flow::FlowKey;
use crate::dp::pipeline::{run, TraceStep, Verdict};
use crate::inspect::microflow::{Microflow, MicroflowError};
use crate::tables::{LocalBinding, Tables};
pub use switchyard_control::{TraceOutput, TraceReport, TraceStepOut};
use switchyard_southbound::fmt_mac;
use switchyard_southbound::pb::SbSnapshot;

impl From<TraceStep> for TraceStepOut {
    fn from(s: TraceStep) -> Self {
        TraceStepOut {
            datapath: s.datapath,
            pipeline: s.pipeline.into(),
            stage: s.stage.into(),
            table: s.table,
            priority: s.priority,
            matched: s.matched,
            actions: s.actions,
            source: s.source,
            outport: s.outport,
            note: s.note,
        }
    }
}

/// A flow key in microflow-like text.
pub fn key_text(k: &FlowKey) -> String {
    let ip = |v: u32| std::net::Ipv4Addr::from(v).to_string();
    let mut s = format!(
        "eth.src={} eth.dst={} eth.type=0x{:04x}",
        fmt_mac(k.eth_src),
        fmt_mac(k.eth_dst),
        k.eth_type
    );
    match k.eth_type {
        0x0800 => {
            s += &format!(
                " ip4.src={} ip4.dst={} ip.proto={} ip.ttl={}",
                ip(k.ip_src),
                ip(k.ip_dst),
                k.ip_proto,
                k.ip_ttl
            );
            if matches!(k.ip_proto, 6 | 17 | 1) {
                s += &format!(" l4.src={} l4.dst={}", k.l4_src, k.l4_dst);
            }
        }
        0x86dd => {
            let ip6 = |w: [u64; 2]| {
                std::net::Ipv6Addr::from(u128::from(w[0]) << 64 | u128::from(w[1])).to_string()
            };
            s += &format!(
                " ip6.src={} ip6.dst={} ip.proto={} ip.ttl={}",
                ip6(k.ip6_src),
                ip6(k.ip6_dst),
                k.ip_proto,
                k.ip_ttl
            );
            if matches!(k.ip_proto, 6 | 17 | 58) {
                s += &format!(" l4.src={} l4.dst={}", k.l4_src, k.l4_dst);
            }
        }
        0x0806 => {
            s += &format!(
                " arp.op={} arp.sha={} arp.spa={} arp.tpa={}",
                k.arp_op,
                fmt_mac(k.arp_sha),
                ip(k.ip_src),
                ip(k.ip_dst)
            )
        }
        _ => {}
    }
    if k.ct_state != 0 {
        s += &format!(
            " ct_state={}",
            switchyard_southbound::field::ct::flags_text(k.ct_state, k.ct_state)
        );
    }
    if k.ct_mark != 0 {
        s += &format!(" ct_mark=0x{:x}", k.ct_mark);
    }
    if k.ct_label != 0 {
        s += &format!(" ct_label=0x{:x}", k.ct_label);
    }
    s
}

/// A megaflow: the fields its mask consults, `field=value` when exact,
/// `field=value/prefix` or `field=value/mask` when partly, OVS's
/// `dpctl/dump-flows` way (fields it ignores are not printed).
pub fn masked_key_text(k: &FlowKey, m: &FlowKey) -> String {
    let ip = |v: u32, mk: u32| {
        let a = std::net::Ipv4Addr::from(v);
        if mk == u32::MAX {
            a.to_string()
        } else if mk.leading_ones() + mk.trailing_zeros() == 32 {
            format!("{a}/{}", mk.leading_ones())
        } else {
            format!("{a}/{}", std::net::Ipv4Addr::from(mk))
        }
    };
    let num = |v: u64, mk: u64, full: u64| {
        if mk == full {
            v.to_string()
        } else {
            format!("0x{v:x}/0x{mk:x}")
        }
    };
    let mac = |v: u64, mk: u64| {
        if mk & 0xffff_ffff_ffff == 0xffff_ffff_ffff {
            fmt_mac(v)
        } else {
            format!("{}/{}", fmt_mac(v), fmt_mac(mk))
        }
    };
    let mut parts: Vec<String> = Vec::new();
    let mut put = |name: &str, shown: Option<String>| {
        if let Some(v) = shown {
            parts.push(format!("{name}={v}"));
        }
    };
    let w = |mk: u64, f: &dyn Fn() -> String| (mk != 0).then(f);
    put(
        "in_slot",
        w(m.in_port.into(), &|| {
            num(k.in_port.into(), m.in_port.into(), 0xffff)
        }),
    );
    put("tun", w(m.tun & k.tun, &|| format!("0x{:x}", k.tun)));
    put(
        "eth.src",
        w(m.eth_src & 0xffff_ffff_ffff, &|| mac(k.eth_src, m.eth_src)),
    );
    put(
        "eth.dst",
        w(m.eth_dst & 0xffff_ffff_ffff, &|| mac(k.eth_dst, m.eth_dst)),
    );
    put(
        "eth.type",
        w(m.eth_type.into(), &|| format!("0x{:04x}", k.eth_type)),
    );
    put(
        "arp.op",
        w(m.arp_op.into(), &|| {
            num(k.arp_op.into(), m.arp_op.into(), 0xff)
        }),
    );
    put(
        "arp.sha",
        w(m.arp_sha & 0xffff_ffff_ffff, &|| mac(k.arp_sha, m.arp_sha)),
    );
    let (src, dst) = if k.eth_type == 0x0806 {
        ("arp.spa", "arp.tpa")
    } else {
        ("ip4.src", "ip4.dst")
    };
    put(src, w(m.ip_src.into(), &|| ip(k.ip_src, m.ip_src)));
    put(dst, w(m.ip_dst.into(), &|| ip(k.ip_dst, m.ip_dst)));
    put(
        "ip.proto",
        w(m.ip_proto.into(), &|| {
            num(k.ip_proto.into(), m.ip_proto.into(), 0xff)
        }),
    );
    put(
        "ip.ttl",
        w(m.ip_ttl.into(), &|| {
            num(k.ip_ttl.into(), m.ip_ttl.into(), 0xff)
        }),
    );
    put(
        "l4.src",
        w(m.l4_src.into(), &|| {
            num(k.l4_src.into(), m.l4_src.into(), 0xffff)
        }),
    );
    put(
        "l4.dst",
        w(m.l4_dst.into(), &|| {
            num(k.l4_dst.into(), m.l4_dst.into(), 0xffff)
        }),
    );
    put(
        "ct_state",
        w((m.ct_state & k.ct_state).into(), &|| {
            switchyard_southbound::field::ct::flags_text(k.ct_state, k.ct_state)
        }),
    );
    put(
        "ct_mark",
        w((m.ct_mark & k.ct_mark).into(), &|| {
            format!("0x{:x}", k.ct_mark)
        }),
    );
    put(
        "ct_label",
        w((m.ct_label & k.ct_label).into(), &|| {
            format!("0x{:x}", k.ct_label)
        }),
    );
    parts.join(" ")
}

/// A routing rewrite as text.
pub fn rewrite_text(rw: &crate::dp::pipeline::Rewrite) -> String {
    format!(
        "eth.src = {}, eth.dst = {}, ip.ttl -= {}",
        fmt_mac(rw.eth_src),
        fmt_mac(rw.eth_dst),
        rw.ttl_dec
    )
}

/// A cached verdict with its output slots, as dumps print it.
pub fn verdict_text(v: Verdict, outs: &[u16]) -> String {
    match v {
        Verdict::Drop(r) => format!("drop({r})"),
        Verdict::ArpReply(m) => format!("arp_reply({})", fmt_mac(m)),
        Verdict::NdReply { mac, router } => {
            format!(
                "nd_na{}({})",
                if router { "_router" } else { "" },
                fmt_mac(mac)
            )
        }
        Verdict::Output => format!("output{outs:?}"),
        Verdict::Routed(rw) => format!("set({}) output{outs:?}", rewrite_text(&rw)),
        Verdict::Punt => "slow_path(generate)".into(),
        Verdict::Dns(_) => "dns_lookup(answer, or run again passed)".into(),
        Verdict::Dhcp => "dhcp_reply(answer, or run again passed)".into(),
    }
}

/// Builds a report from a pipeline run.
pub fn report(
    t: &Tables,
    key: &FlowKey,
    v: Verdict,
    out: &[u16],
    steps: Vec<TraceStep>,
    chassis_of: impl Fn(&str) -> String,
) -> TraceReport {
    let b = t.slot(key.in_port);
    let (verdict, drop_reason) = match v {
        Verdict::Output | Verdict::Routed(_) => ("output", None),
        Verdict::Drop(r) => ("drop", Some(r.as_str().to_string())),
        Verdict::ArpReply(_) => ("arp_reply", None),
        Verdict::NdReply { .. } => ("nd_na", None),
        Verdict::Punt => ("generate", None),
        Verdict::Dns(_) => ("dns", None),
        Verdict::Dhcp => ("dhcp", None),
    };
    let rewrite = match v {
        Verdict::Routed(rw) => Some(rewrite_text(&rw)),
        _ => None,
    };
    let mut outputs: Vec<TraceOutput> = out
        .iter()
        .filter_map(|s| t.slot(*s))
        .map(|sb| TraceOutput {
            port: sb.name.clone(),
            chassis: chassis_of(&sb.name),
        })
        .collect();
    if let (
        Verdict::ArpReply(_) | Verdict::NdReply { .. } | Verdict::Dns(_) | Verdict::Dhcp,
        Some(b),
    ) = (v, b)
    {
        outputs.push(TraceOutput {
            port: b.name.clone(),
            chassis: chassis_of(&b.name),
        });
    }
    TraceReport {
        datapath: b
            .and_then(|b| t.datapaths.get(&b.datapath))
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        inport: b.map(|b| b.name.clone()).unwrap_or_default(),
        packet: key_text(key),
        steps: steps.into_iter().map(Into::into).collect(),
        verdict: verdict.into(),
        rewrite,
        drop_reason,
        outputs,
        cache: None,
        conntrack: None,
        dns: None,
        generated: None,
        dhcp: match (v, b) {
            (Verdict::Dhcp, Some(b)) => t.dhcp.get(b.datapath, b.port).map(|l| l.describe()),
            _ => None,
        },
    }
}

/// A frame carrying `key`'s headers (Ethernet, then IPv4 or IPv6 with an
/// ICMP, TCP or UDP header, or ARP), for the trace to hand to the packet generators.
pub fn frame_of(key: &FlowKey) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&key.eth_dst.to_be_bytes()[2..]);
    f.extend_from_slice(&key.eth_src.to_be_bytes()[2..]);
    f.extend_from_slice(&key.eth_type.to_be_bytes());
    match key.eth_type {
        0x0806 => {
            f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, key.arp_op]);
            f.extend_from_slice(&key.arp_sha.to_be_bytes()[2..]);
            f.extend_from_slice(&key.ip_src.to_be_bytes());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&key.ip_dst.to_be_bytes());
        }
        0x0800 | 0x86dd => {
            let l4: Vec<u8> = match key.ip_proto {
                6 => {
                    let mut t = Vec::with_capacity(20);
                    t.extend_from_slice(&key.l4_src.to_be_bytes());
                    t.extend_from_slice(&key.l4_dst.to_be_bytes());
                    t.extend_from_slice(&[
                        0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
                    ]);
                    t
                }
                17 => {
                    let mut u = Vec::with_capacity(8);
                    u.extend_from_slice(&key.l4_src.to_be_bytes());
                    u.extend_from_slice(&key.l4_dst.to_be_bytes());
                    u.extend_from_slice(&[0, 8, 0, 0]);
                    u
                }
                1 | 58 => vec![key.l4_src as u8, key.l4_dst as u8, 0, 0, 0, 1, 0, 1],
                _ => Vec::new(),
            };
            if key.eth_type == 0x86dd {
                // IPv6: no header checksum; the L4 checksum is left 0 (the
                // generators read headers, not checksums).
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.extend_from_slice(&[key.ip_proto, key.ip_ttl]);
                for w in key.ip6_src.iter().chain(key.ip6_dst.iter()) {
                    f.extend_from_slice(&w.to_be_bytes());
                }
                f.extend_from_slice(&l4);
                return f;
            }
            let total = (20 + l4.len()) as u16;
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0x40, 0, key.ip_ttl, key.ip_proto, 0, 0]);
            f.extend_from_slice(&key.ip_src.to_be_bytes());
            f.extend_from_slice(&key.ip_dst.to_be_bytes());
            f.extend_from_slice(&l4);
            smoltcp::wire::Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        }
        _ => {}
    }
    f
}

/// The packet the router generates for `key` (verdict "generate"), walked
/// from where the router sends it, as a report of its own; `None` when the
/// router only learns from the packet (an ARP reply) or generates nothing.
pub fn follow_generated(
    t: &Tables,
    key: &FlowKey,
    chassis_of: impl Fn(&str) -> String,
) -> Option<TraceReport> {
    let frame = frame_of(key);
    let mut buf = vec![0u8; crate::port::MAX_FRAME];
    let (mut out, mut steps) = (Vec::new(), Vec::new());
    let p = crate::dp::pipeline::punt(t, key, &frame, &mut buf, &mut out, Some(&mut steps));
    if p.len == 0 {
        return None;
    }
    let gk = crate::dp::packet::extract(&buf[..p.len], key.in_port).ok()?;
    let mut r = report(t, &gk, p.verdict, &out, steps, chassis_of);
    // It starts inside the router, not at a port.
    r.inport = String::new();
    r.datapath = r
        .steps
        .first()
        .map(|s| s.datapath.clone())
        .unwrap_or_default();
    Some(r)
}

/// What a traced DNS query gets: the datapath's answer, or (no record) the
/// walk it takes on with the lookup passed. Returns the verdict and outputs
/// to report, and the note.
pub fn dns_outcome(
    t: &Tables,
    key: &FlowKey,
    dp: u32,
    question: Option<(String, u16)>,
    steps: &mut Vec<TraceStep>,
    out: &mut Vec<u16>,
) -> (Verdict, String) {
    let Some((name, qtype)) = question else {
        return (
            Verdict::Dns(dp),
            "dns_lookup: the answer depends on the name asked (add dns.qname == \"NAME\", and dns.qtype == AAAA for another type)".into(),
        );
    };
    let q = crate::answer::dns::query_for(key, &name, qtype);
    let mut buf = [0u8; crate::answer::dns::MAX_ANSWER_FRAME];
    match t
        .dns
        .get(dp)
        .map(|z| crate::answer::dns::answer(z, &q, &mut buf))
    {
        Some(crate::answer::dns::Outcome::Answer { len, .. }) => (
            Verdict::Dns(dp),
            format!(
                "{name}: answered by the datapath, back out of the port it came in on: {}",
                crate::answer::dns::describe(&buf[..len])
            ),
        ),
        _ => {
            steps.clear();
            out.clear();
            let d = crate::dp::pipeline::run_passed(t, key, out, Some(steps));
            (
                d.verdict,
                format!("{name}: no record here, the query goes on to where it was sent"),
            )
        }
    }
}

/// The `ct_state` a logical trace assumes at each conntrack step it meets, in
/// order (`syctl trace --ct FLAGS`, repeatable, as ovn-trace's): the edge's load
/// balancing or NAT first, when the packet has one, then the tracking of
/// stateful flows. Steps beyond the list take its last entry; with no `--ct`
/// at all, `trk,est` (ovn-trace's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtAssume(Vec<u8>);

impl Default for CtAssume {
    fn default() -> Self {
        use switchyard_southbound::field::ct;
        CtAssume(vec![ct::TRK | ct::EST])
    }
}

impl CtAssume {
    /// Parses `--ct` values: each a comma- or space-separated list of `trk`,
    /// `new`, `est`, `rel`, `rpl`, `inv` (`trk` is implied; `rpl` alone means
    /// an established connection's reply, `est,rpl`).
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<CtAssume, String> {
        use switchyard_southbound::field::ct;
        if values.is_empty() {
            return Ok(CtAssume::default());
        }
        let mut states = Vec::new();
        for v in values {
            let mut bits = ct::TRK;
            for f in v.as_ref().split([',', ' ']).filter(|f| !f.is_empty()) {
                let Some((bit, _)) = ct::NAMES.iter().find(|(_, n)| *n == f) else {
                    return Err(format!(
                        "--ct {:?}: {f:?} is not a ct_state flag (trk, new, est, rel, rpl, inv)",
                        v.as_ref()
                    ));
                };
                bits |= bit;
            }
            if bits & ct::RPL != 0 && bits & (ct::EST | ct::REL) == 0 {
                bits |= ct::EST;
            }
            if bits & ct::NEW != 0 && bits & (ct::EST | ct::INV) != 0 {
                return Err(format!(
                    "--ct {:?}: a packet is not new and established or invalid at once",
                    v.as_ref()
                ));
            }
            states.push(bits);
        }
        Ok(CtAssume(states))
    }

    /// The state assumed at conntrack step `i` (0 first).
    pub fn at(&self, i: usize) -> u8 {
        self.0.get(i).or(self.0.last()).copied().unwrap_or_default()
    }

    /// `trk,est`, as `--ct` writes it.
    pub fn text(state: u8) -> String {
        switchyard_southbound::field::ct::NAMES
            .iter()
            .filter(|(b, _)| state & b != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The logical trace: the southbound pipeline as northd compiled it.
pub fn logical(sb: &SbSnapshot, expr: &str) -> Result<TraceReport, MicroflowError> {
    logical_ct(sb, expr, &CtAssume::default())
}

/// [`logical`] assuming conntrack state `ct` for the packet.
pub fn logical_ct(
    sb: &SbSnapshot,
    expr: &str,
    ct: &CtAssume,
) -> Result<TraceReport, MicroflowError> {
    match logical_lb_dst(sb, expr, ct, None)? {
        Ok(r) => Ok(r),
        Err(e) => unreachable!("no --lb-dst, no --lb-dst error: {e}"),
    }
}

/// [`logical_ct`] with ovn-trace's `--lb-dst IP[:PORT]`: a new connection to a
/// VIP goes to that backend instead of the one the Maglev hash picks. The
/// inner error says what is wrong with `lb_dst` (not a VIP's backend, or no
/// VIP on the packet's way).
pub fn logical_lb_dst(
    sb: &SbSnapshot,
    expr: &str,
    ct: &CtAssume,
    lb_dst: Option<(u32, Option<u16>)>,
) -> Result<Result<TraceReport, String>, MicroflowError> {
    let mf = Microflow::parse(expr)?;
    let mut key = mf.resolve(sb)?;
    let inport = mf.inport()?.to_string();
    let local: Vec<LocalBinding> = sb
        .port_bindings
        .iter()
        .filter(|p| p.r#type != "patch")
        .enumerate()
        .map(|(i, p)| LocalBinding {
            slot: i as u16,
            iface: String::new(),
            lport: p.logical_port.clone(),
        })
        .collect();
    key.in_port = local
        .iter()
        .find(|l| l.lport == inport)
        .map(|l| l.slot)
        .unwrap_or(0);
    let t = Tables::build(0, sb, "", &local);
    // Conntrack at the edge (load balancers, NAT) on an empty table: what a
    // new connection gets; `--ct est` describes it as committed.
    let edge =
        crate::ct::edge::preview(&t, &crate::ct::edge::EdgeState::new(16), &key).map(|(d, k)| {
            let st = ct.at(0);
            let d = if st & switchyard_southbound::field::ct::NEW != 0 {
                d
            } else {
                d.replace(
                    "new connection",
                    &format!("established connection (--ct {})", CtAssume::text(st)),
                )
            };
            (d, k)
        });
    let mut edge = edge;
    if let Some((want_ip, want_port)) = lb_dst {
        let ip = |v: u32| std::net::Ipv4Addr::from(v);
        let shown = match want_port {
            Some(p) => format!("{}:{p}", ip(want_ip)),
            None => ip(want_ip).to_string(),
        };
        let dp = t.slot(key.in_port).map_or(0, |b| b.datapath);
        let Some(vip) = t.services.vip_for(key.ip_proto, key.ip_dst, key.l4_dst, dp) else {
            return Ok(Err(format!(
                "--lb-dst {shown}: the packet meets no load balancer VIP ({}:{} is none on {inport:?}'s switch)",
                ip(key.ip_dst),
                key.l4_dst
            )));
        };
        let Some(be) = vip
            .backends
            .iter()
            .find(|(b, p)| *b == want_ip && want_port.is_none_or(|w| w == *p))
        else {
            let list: Vec<String> = vip
                .backends
                .iter()
                .map(|(b, p)| format!("{}:{p}", ip(*b)))
                .collect();
            return Ok(Err(format!(
                "--lb-dst {shown} is not a backend of VIP {}:{} (backends: {})",
                ip(vip.ip),
                vip.port,
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            )));
        };
        let mut k = key;
        (k.ip_dst, k.l4_dst) = *be;
        edge = Some((
            format!(
                "ct_lb({}): {} to VIP {}:{}, backend {}:{} (--lb-dst; committed in zone {dp})",
                vip.lb.name,
                if ct.at(0) & switchyard_southbound::field::ct::NEW != 0 {
                    "new connection".to_string()
                } else {
                    format!("established connection (--ct {})", CtAssume::text(ct.at(0)))
                },
                ip(vip.ip),
                vip.port,
                ip(be.0),
                be.1
            ),
            k,
        ));
    }
    let mut step = 0;
    if let Some((_, k)) = &edge {
        key = *k;
        step = 1;
    }
    // Stateful flows on the way: the packet is tracked first, in the state assumed.
    let zone = t.slot(key.in_port).map_or(0, |b| b.ct_zone);
    let tracked = (zone != 0 && matches!(key.eth_type, 0x0800 | 0x86dd)).then(|| {
        key.ct_state = ct.at(step);
        format!(
            "ct(zone=0x{zone:x}): ct_state={} (assumed: --ct {})",
            switchyard_southbound::field::ct::flags_text(key.ct_state, key.ct_state),
            CtAssume::text(key.ct_state)
        )
    });
    let mut out = Vec::new();
    let mut steps = Vec::new();
    let mut v = run(&t, &key, &mut out, Some(&mut steps));
    let mut dns = None;
    let mut asked = true;
    if let Verdict::Dns(dp) = v {
        let q = mf.dns_question()?;
        asked = q.is_some();
        let (verdict, note) = dns_outcome(&t, &key, dp, q, &mut steps, &mut out);
        v = verdict;
        dns = Some(note);
    }
    let chassis_of = |p: &str| {
        sb.port_bindings
            .iter()
            .find(|b| b.logical_port == p)
            .map(|b| b.chassis.clone())
            .unwrap_or_default()
    };
    let mut r = report(&t, &key, v, &out, steps, chassis_of);
    if v == Verdict::Punt {
        r.generated = follow_generated(&t, &key, chassis_of).map(Box::new);
    }
    r.conntrack = join_ct(edge.map(|(d, _)| d), tracked);
    r.dns = dns;
    if !asked {
        r.verdict = "dns_lookup".into();
    }
    Ok(Ok(r))
}

/// The edge's translation and the stateful tracking, as one conntrack line.
pub fn join_ct(edge: Option<String>, tracked: Option<String>) -> Option<String> {
    match (edge, tracked) {
        (Some(a), Some(b)) => Some(format!("{a}; then {b}")),
        (a, b) => a.or(b),
    }
}
