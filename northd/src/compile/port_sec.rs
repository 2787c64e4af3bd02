//! Port security, OVN's semantics (ovn-nb(5) `port_security`), in both
//! directions and for both families: a port whose port_security lists entries
//! sends only from their MACs and, per family, only from their addresses; it
//! receives only frames addressed to its MACs and, per family, to its
//! addresses (multicast is let through by the switch-wide egress flow).
//!
//! Per family: an entry with addresses, none of them IPv6, admits no IPv6 at
//! all (link-local and ND included). With IPv6 listed, the port may also use
//! its EUI-64 link-local address and the unspecified address for DAD and MLD
//! reports; ND is checked as OVN's ls_in_port_sec_nd does (NS: nd.sll absent
//! or the port's MAC; NA: nd.tll absent or the port's MAC and nd.target one of
//! the port's addresses). Router Advertisements and Redirects from a
//! port-secured port are dropped: a VIF is not a router (RA-Guard, RFC 6105;
//! stricter than OVN, recorded in docs/ipv6.md).

use crate::compile::flows::*;
use crate::nb::{AddrEntry, Addresses};
use ipnet::{IpNet, Ipv6Net};
use std::net::Ipv6Addr;
use switchyard_southbound::{DropReason, Field, Stage};

const ND_RA: u64 = 134;
const ND_NS: u64 = 135;
const ND_NA: u64 = 136;
const ND_REDIRECT: u64 = 137;
const MLD_REPORT: u64 = 131;
const MLD2_REPORT: u64 = 143;

/// The EUI-64 link-local address of a MAC (RFC 4291 appendix A).
pub(crate) fn link_local(mac: u64) -> Ipv6Addr {
    let (top, bottom) = ((mac >> 24) & 0xff_ffff, mac & 0xff_ffff);
    let iid = ((top ^ 0x02_0000) << 40) | (0xfffe << 24) | bottom;
    Ipv6Addr::from((0xfe80u128 << 112) | u128::from(iid))
}

fn host6(a: Ipv6Addr) -> IpNet {
    IpNet::V6(Ipv6Net::new(a, 128).expect("/128 is a valid prefix"))
}

fn net6(s: &str) -> IpNet {
    s.parse().expect("a constant network")
}

pub(crate) fn compile_port_security(
    lf: &mut Lflows,
    dp: u32,
    key: u32,
    name: &str,
    enabled: bool,
    psec: &Addresses,
) {
    if !enabled {
        let d = || vec![drop(DropReason::PortDisabled)];
        lf.add(
            dp,
            Stage::LsInCheckPortSec,
            150,
            M::any().inport(key, name),
            d(),
        );
        let m = M::any().outport(key, name);
        lf.add(dp, Stage::LsOutApplyPortSec, 150, m, d());
    }
    if psec.entries.is_empty() {
        let m = M::any().inport(key, name);
        lf.add(dp, Stage::LsInCheckPortSec, 50, m, vec![next()]);
        return;
    }
    for e in &psec.entries {
        let from = || M::any().inport(key, name).eq(Field::EthSrc, e.mac);
        let to = || M::any().outport(key, name).eq(Field::EthDst, e.mac);
        ingress_ip4(lf, dp, e, &from);
        egress_ip4(lf, dp, e, &to);
        let has_v6 = e.ips.iter().any(|n| matches!(n, IpNet::V6(_)));
        if has_v6 {
            ingress_ip6(lf, dp, e, &from);
            egress_ip6(lf, dp, e, &to);
        } else if !e.ips.is_empty() {
            // Addresses listed, none of them IPv6: no IPv6 at all from or to
            // this port, link-local, ND and RA included (OVN's rule).
            let m = from().eq(Field::EthType, ETH_IPV6);
            lf.add(
                dp,
                Stage::LsInCheckPortSec,
                80,
                m,
                vec![drop(DropReason::PortSecurityIpv6)],
            );
            let m = to().eq(Field::EthType, ETH_IPV6);
            let d = vec![drop(DropReason::EgressPortSecurityIp)];
            lf.add(dp, Stage::LsOutApplyPortSec, 80, m, d);
        }
        lf.add(dp, Stage::LsInCheckPortSec, 50, from(), vec![next()]);
        lf.add(dp, Stage::LsOutApplyPortSec, 50, to(), vec![output()]);
    }
    let m = M::any().inport(key, name);
    lf.add(
        dp,
        Stage::LsInCheckPortSec,
        40,
        m,
        vec![drop(DropReason::PortSecurityMac)],
    );
    let m = M::any().outport(key, name);
    let d = vec![drop(DropReason::EgressPortSecurity)];
    lf.add(dp, Stage::LsOutApplyPortSec, 40, m, d);
}

fn v4_of(e: &AddrEntry) -> Vec<&IpNet> {
    e.ips.iter().filter(|n| matches!(n, IpNet::V4(_))).collect()
}

fn ingress_ip4(lf: &mut Lflows, dp: u32, e: &AddrEntry, from: &dyn Fn() -> M) {
    let v4 = v4_of(e);
    if v4.is_empty() {
        return;
    }
    let st = Stage::LsInCheckPortSec;
    for net in &v4 {
        let m = from().eq(Field::EthType, ETH_IPV4).ip4(Field::Ip4Src, net);
        lf.add(dp, st, 90, m, vec![next()]);
        let m = from()
            .eq(Field::EthType, ETH_ARP)
            .eq(Field::ArpSha, e.mac)
            .ip4(Field::ArpSpa, net);
        lf.add(dp, st, 90, m, vec![next()]);
    }
    // DHCP discovery from an address-less client.
    let m = from()
        .eq(Field::EthType, ETH_IPV4)
        .eq(Field::Ip4Src, 0)
        .eq(Field::Ip4Dst, 0xffff_ffff)
        .eq(Field::IpProto, 17)
        .eq(Field::L4Dst, 67);
    lf.add(dp, st, 90, m, vec![next()]);
    for ty in [ETH_IPV4, ETH_ARP] {
        let m = from().eq(Field::EthType, ty);
        lf.add(dp, st, 80, m, vec![drop(DropReason::PortSecurityIp)]);
    }
}

/// Egress: only the port's IPs, IPv4 broadcast and multicast (OVN's
/// ls_out_port_sec_ip).
fn egress_ip4(lf: &mut Lflows, dp: u32, e: &AddrEntry, to: &dyn Fn() -> M) {
    let v4 = v4_of(e);
    if v4.is_empty() {
        return;
    }
    let st = Stage::LsOutApplyPortSec;
    let ip4 = || to().eq(Field::EthType, ETH_IPV4);
    for net in &v4 {
        lf.add(dp, st, 90, ip4().ip4(Field::Ip4Dst, net), vec![output()]);
    }
    lf.add(
        dp,
        st,
        90,
        ip4().eq(Field::Ip4Dst, 0xffff_ffff),
        vec![output()],
    );
    let m = ip4().field(Field::Ip4Dst, 0xe000_0000, 0xf000_0000);
    lf.add(dp, st, 90, m, vec![output()]);
    lf.add(
        dp,
        st,
        80,
        ip4(),
        vec![drop(DropReason::EgressPortSecurityIp)],
    );
}

/// The port's own IPv6 networks and its link-local address.
fn v6_of(e: &AddrEntry) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = e
        .ips
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)))
        .cloned()
        .collect();
    v.push(host6(link_local(e.mac)));
    v
}

fn ingress_ip6(lf: &mut Lflows, dp: u32, e: &AddrEntry, from: &dyn Fn() -> M) {
    let st = Stage::LsInCheckPortSec;
    let own = v6_of(e);
    let unspecified = host6(Ipv6Addr::UNSPECIFIED);
    let (src, dst) = (
        |m: M, n: &IpNet| m.ip6(Field::Ip6SrcHi, Field::Ip6SrcLo, n),
        |m: M, n: &IpNet| m.ip6(Field::Ip6DstHi, Field::Ip6DstLo, n),
    );
    // Neighbor Solicitation: from an own address, or from :: (DAD) without
    // a source link-layer option (RFC 4861 7.1.1).
    for s in own.iter().chain([&unspecified]) {
        let slls: &[u64] = if s == &unspecified { &[0] } else { &[0, e.mac] };
        for &sll in slls {
            let m = src(from().icmp6(ND_NS).eq(Field::L4Dst, 0), s).eq(Field::NdSll, sll);
            lf.add(dp, st, 95, m, vec![next()]);
        }
    }
    // Neighbor Advertisement: from and about an own address. The code is
    // not matched (it would take the flow past MAX_MATCH_FIELDS): the parser
    // reads no target from an NA whose code is not 0, so such an NA falls to
    // the drop below.
    for s in &own {
        for t in &own {
            for tll in [0, e.mac] {
                let m = from().icmp6(ND_NA);
                let m = src(m, s).ip6(Field::NdTargetHi, Field::NdTargetLo, t);
                lf.add(dp, st, 95, m.eq(Field::NdTll, tll), vec![next()]);
            }
        }
    }
    for ty in [ND_NS, ND_NA, ND_RA, ND_REDIRECT] {
        let m = from().icmp6(ty);
        lf.add(dp, st, 94, m, vec![drop(DropReason::PortSecurityNd)]);
    }
    // MLD reports from an interface that has no address yet.
    for ty in [MLD_REPORT, MLD2_REPORT] {
        let m = dst(src(from().icmp6(ty), &unspecified), &net6("ff02::/16"));
        lf.add(dp, st, 90, m, vec![next()]);
    }
    for s in &own {
        let m = src(from().eq(Field::EthType, ETH_IPV6), s);
        lf.add(dp, st, 90, m, vec![next()]);
    }
    let m = from().eq(Field::EthType, ETH_IPV6);
    lf.add(dp, st, 80, m, vec![drop(DropReason::PortSecurityIpv6)]);
}

/// Egress: only the port's IPv6 addresses, its link-local and multicast.
fn egress_ip6(lf: &mut Lflows, dp: u32, e: &AddrEntry, to: &dyn Fn() -> M) {
    let st = Stage::LsOutApplyPortSec;
    let ip6 = || to().eq(Field::EthType, ETH_IPV6);
    for d in v6_of(e).iter().chain([&net6("ff00::/8")]) {
        let m = ip6().ip6(Field::Ip6DstHi, Field::Ip6DstLo, d);
        lf.add(dp, st, 90, m, vec![output()]);
    }
    lf.add(
        dp,
        st,
        80,
        ip6(),
        vec![drop(DropReason::EgressPortSecurityIp)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::compile::tests::flows_of;
    use crate::nb::tests_support::*;
    use crate::nb::Nb;
    use switchyard_southbound::pb::nb_op::Op;
    use switchyard_southbound::{pb, MAX_MATCH_FIELDS};

    fn dual_stack() -> Nb {
        let mut nb = Nb::default();
        let a = "0a:00:00:00:00:01 10.0.0.1 fd00::1";
        nb.apply_ops(&txn(vec![
            ls("ls1", "10.0.0.0/24"),
            lsp("p1", "ls1", a),
            Op::LspSetPortSecurity(pb::SetAddresses {
                port: "p1".into(),
                addresses: vec![a.into()],
            }),
        ]))
        .unwrap();
        nb
    }

    #[test]
    fn link_local_is_eui64() {
        let want: Ipv6Addr = "fe80::800:ff:fe00:1".parse().unwrap();
        assert_eq!(link_local(0x0a00_0000_0001), want);
    }

    #[test]
    fn dual_stack_port_security() {
        let c = compile(&dual_stack());
        let ps = flows_of(&c, Stage::LsInCheckPortSec);
        let from = "inport == \"p1\" && eth.src == 0a:00:00:00:00:01";
        let want = [
            format!("90 {from} && eth.type == 0x86dd && ip6.src == fd00::1 => next;"),
            format!("90 {from} && eth.type == 0x86dd && ip6.src == fe80::800:ff:fe00:1 => next;"),
            format!("95 {from} && eth.type == 0x86dd && ip.proto == 58 && l4.src == 135 && l4.dst == 0 && ip6.src == :: && nd.sll == 00:00:00:00:00:00 => next;"),
            format!("95 {from} && eth.type == 0x86dd && ip.proto == 58 && l4.src == 136 && ip6.src == fd00::1 && nd.target == fd00::1 && nd.tll == 0a:00:00:00:00:01 => next;"),
            format!("94 {from} && eth.type == 0x86dd && ip.proto == 58 && l4.src == 134 => drop /* port_security_nd */;"),
            format!("80 {from} && eth.type == 0x86dd => drop /* port_security_ipv6 */;"),
            format!("80 {from} && eth.type == 0x0800 => drop /* port_security_ip */;"),
        ];
        for w in &want {
            assert!(ps.contains(w), "missing {w}\n{ps:#?}");
        }
        // DAD: from :: the solicitation carries no link-layer option.
        assert!(
            !ps.iter()
                .any(|f| f.contains("ip6.src == :: && nd.sll == 0a:")),
            "{ps:#?}"
        );
        let out = flows_of(&c, Stage::LsOutApplyPortSec);
        let to = "outport == \"p1\" && eth.dst == 0a:00:00:00:00:01";
        let want_out = [
            format!("90 {to} && eth.type == 0x86dd && ip6.dst == fd00::1 => output;"),
            format!("90 {to} && eth.type == 0x86dd && ip6.dst == ff00::/8 => output;"),
            format!("80 {to} && eth.type == 0x86dd => drop /* egress_port_security_ip */;"),
        ];
        for w in &want_out {
            assert!(out.contains(w), "missing {w}\n{out:#?}");
        }
        // Every flow fits vswitchd's classifier.
        let long = c.flows.iter().find(|f| f.matches.len() > MAX_MATCH_FIELDS);
        assert!(long.is_none(), "{long:#?}");
    }
}
