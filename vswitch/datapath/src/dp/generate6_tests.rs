use super::*;
use crate::dp::packet::extract;
use smoltcp::wire::{Icmpv6Repr, NdiscRepr, RawHardwareAddress};

const POD: u64 = 0x0a00_0000_0001;
const ROUTER: u64 = 0x0a00_0000_00fe;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An NS from the pod (fd00::b) for `target`, as Linux sends it.
fn ns_for(target: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let n = nd_solicit(&mut buf, POD, words(a("fd00::b")), words(a(target))).unwrap();
    buf.truncate(n);
    buf
}

fn icmp_ok(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, Icmpv6Repr<'_>) {
    let ip = Ipv6Packet::new_checked(&frame[ETH..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let icmp =
        Icmpv6Packet::new_checked(&frame[ETH + IP6..ETH + IP6 + usize::from(ip.payload_len())])
            .unwrap();
    assert!(icmp.verify_checksum(&s, &d), "ICMPv6 checksum");
    let repr = Icmpv6Repr::parse(
        &s,
        &d,
        &icmp,
        &smoltcp::phy::ChecksumCapabilities::default(),
    )
    .unwrap();
    (s, d, repr)
}

#[test]
fn solicitation_goes_to_the_solicited_node_group() {
    let f = ns_for("fd00::1:2:3");
    assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
    let (s, d, repr) = icmp_ok(&f);
    assert_eq!((s, d), (a("fd00::b"), a("ff02::1:ff02:3")));
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr,
        lladdr,
    }) = repr
    else {
        panic!("{repr:?}")
    };
    assert_eq!(target_addr, a("fd00::1:2:3"));
    assert_eq!(
        lladdr,
        Some(RawHardwareAddress::from_bytes(&POD.to_be_bytes()[2..]))
    );
    let k = extract(&f, 1).unwrap();
    assert_eq!(k.nd_target, words(a("fd00::1:2:3")));
    assert_eq!(k.ip_ttl, 255);
}

#[test]
fn advertisement_answers_in_place() {
    let mut f = ns_for("fd00::1");
    let len = f.len();
    assert!(nd_na_in_place(&mut f, ROUTER, true));
    assert_eq!(f.len(), len);
    assert_eq!(&f[0..6], &POD.to_be_bytes()[2..]);
    assert_eq!(&f[6..12], &ROUTER.to_be_bytes()[2..]);
    let (s, d, repr) = icmp_ok(&f);
    assert_eq!((s, d), (a("fd00::1"), a("fd00::b")));
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr,
        lladdr,
    }) = repr
    else {
        panic!("{repr:?}")
    };
    assert_eq!(target_addr, a("fd00::1"));
    assert_eq!(flags.bits(), 0xe0, "router, solicited, override");
    assert_eq!(
        lladdr,
        Some(RawHardwareAddress::from_bytes(&ROUTER.to_be_bytes()[2..]))
    );
    let k = extract(&f, 1).unwrap();
    assert_eq!(learned_from_na(&k), Some((words(a("fd00::1")), ROUTER)));
}

#[test]
fn what_is_not_answered() {
    // A DAD probe (from ::) is for the owner to answer.
    let mut f = ns_for("fd00::1");
    f[ETH + 8..ETH + 24].fill(0);
    assert!(!nd_na_in_place(&mut f, ROUTER, false));
    // Not an NS; not IPv6; truncated.
    let mut g = ns_for("fd00::1");
    g[ETH + IP6] = NA;
    assert!(!nd_na_in_place(&mut g, ROUTER, false));
    let mut h = ns_for("fd00::1");
    h[12] = 0x08;
    assert!(!nd_na_in_place(&mut h, ROUTER, false));
    let mut t = ns_for("fd00::1");
    t.truncate(ETH + IP6 + 10);
    assert!(!nd_na_in_place(&mut t, ROUTER, false));
    for n in 0..ETH + IP6 + 32 {
        let mut cut = ns_for("fd00::1")[..n].to_vec();
        let _ = nd_na_in_place(&mut cut, ROUTER, false);
    }
}

/// An echo request from the pod to `dst` with `hops`.
fn echo(dst: &str, hops: u8) -> Vec<u8> {
    let mut f = ns_for(dst);
    let ip_len = 8 + 4;
    f.truncate(ETH + IP6 + ip_len);
    let (s, d) = (a("fd00::b"), a(dst));
    write_ipv6(&mut f[ETH..], ip_len, s, d, hops);
    let icmp = &mut f[ETH + IP6..];
    icmp.copy_from_slice(&[128, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4]);
    fill_icmp6(icmp, &s, &d);
    f
}

#[test]
fn echo_reply_and_errors() {
    let req = echo("fd00::1", 64);
    let mut buf = [0u8; 2048];
    let n = icmp6_echo_reply(&req, &mut buf).unwrap();
    let (s, d, repr) = icmp_ok(&buf[..n]);
    assert_eq!((s, d), (a("fd00::1"), a("fd00::b")));
    assert!(
        matches!(
            repr,
            Icmpv6Repr::EchoReply {
                ident: 0x1234,
                seq_no: 1,
                data: &[1, 2, 3, 4]
            }
        ),
        "{repr:?}"
    );

    let n = icmp6_error(&req, &mut buf, words(a("fd00::1")), 3, 0, 0).unwrap();
    let (s, d, repr) = icmp_ok(&buf[..n]);
    assert_eq!((s, d), (a("fd00::1"), a("fd00::b")));
    assert!(
        matches!(
            repr,
            Icmpv6Repr::DstUnreachable { .. } | Icmpv6Repr::TimeExceeded { .. }
        ),
        "{repr:?}"
    );
    assert_eq!(
        &buf[ETH + IP6 + ICMP_HDR..n],
        &req[ETH..],
        "the whole packet is quoted"
    );

    let n = icmp6_error(&req, &mut buf, words(a("fd00::1")), 2, 0, 1400).unwrap();
    let (_, _, repr) = icmp_ok(&buf[..n]);
    assert!(
        matches!(repr, Icmpv6Repr::PktTooBig { mtu: 1400, .. }),
        "{repr:?}"
    );

    // No error about an error, nor to an unspecified source.
    let err = buf[..n].to_vec();
    assert!(icmp6_error(&err, &mut buf, words(a("fd00::1")), 3, 0, 0).is_none());
    let mut anon = req.clone();
    anon[ETH + 8..ETH + 24].fill(0);
    assert!(icmp6_error(&anon, &mut buf, words(a("fd00::1")), 3, 0, 0).is_none());
}

/// A router solicitation from `src` (with the source link-layer option
/// unless `src` is ::) and hop limit `hops`.
fn rs(src: &str, hops: u8) -> Vec<u8> {
    let opt = if a(src).is_unspecified() { 0 } else { LL_OPT };
    let n = ICMP_HDR + opt;
    let mut f = vec![0u8; ETH + IP6 + n];
    write_eth(&mut f, POD, 0x3333_0000_0002);
    write_ipv6(&mut f[ETH..], n, a(src), a("ff02::2"), hops);
    let icmp = &mut f[ETH + IP6..];
    icmp[0] = RS;
    if opt != 0 {
        icmp[8] = 1;
        icmp[9] = 1;
        icmp[10..16].copy_from_slice(&POD.to_be_bytes()[2..]);
    }
    fill_icmp6(icmp, &a(src), &a("ff02::2"));
    f
}

fn template(mode: &str) -> RaTemplate {
    use switchyard_southbound::pb;
    RaTemplate::new(&pb::NdRa {
        mac: ROUTER,
        src_ip6: a("fe80::800:ff:fe00:fe").octets().to_vec(),
        address_mode: mode.into(),
        prefixes: vec![pb::RaPrefix {
            prefix: a("fd00:af4:1::").octets().to_vec(),
            len: 64,
        }],
        mtu: 1400,
        preference: "HIGH".into(),
        lifetime: 65535,
        rdnss: vec![a("fd00::53").octets().to_vec()],
    })
    .unwrap()
}

#[test]
fn solicitations_are_answered_with_the_configured_advertisement() {
    let t = template("slaac");
    let mut buf = vec![0u8; 512];
    let n = router_advert(&rs("fe80::800:ff:fe00:1", 255), &mut buf, &t).unwrap();
    let f = &buf[..n];
    assert_eq!(
        &f[0..6],
        &POD.to_be_bytes()[2..],
        "unicast to the solicitor"
    );
    assert_eq!(&f[6..12], &ROUTER.to_be_bytes()[2..]);
    let (s, d, repr) = icmp_ok(f);
    assert_eq!(
        (s, d),
        (a("fe80::800:ff:fe00:fe"), a("fe80::800:ff:fe00:1"))
    );
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit,
        flags,
        router_lifetime,
        lladdr,
        mtu,
        prefix_info,
        ..
    }) = repr
    else {
        panic!("{repr:?}")
    };
    assert_eq!(hop_limit, 64);
    assert_eq!(router_lifetime.secs(), 65535);
    assert_eq!(mtu, Some(1400));
    assert_eq!(
        lladdr,
        Some(RawHardwareAddress::from_bytes(&ROUTER.to_be_bytes()[2..]))
    );
    // Neither managed nor other; high preference (RFC 4191, which
    // smoltcp does not parse).
    assert_eq!(flags.bits(), 0);
    assert_eq!(f[ETH + IP6 + 5], 0b01 << 3);
    let p = prefix_info.unwrap();
    assert_eq!((p.prefix, p.prefix_len), (a("fd00:af4:1::"), 64));
    assert!(p
        .flags
        .contains(smoltcp::wire::NdiscPrefixInfoFlags::ADDRCONF));
    assert!(p
        .flags
        .contains(smoltcp::wire::NdiscPrefixInfoFlags::ON_LINK));
    // The RDNSS option (type 25) closes the message.
    let icmp = &f[ETH + IP6..];
    assert_eq!(&icmp[icmp.len() - 24..icmp.len() - 22], &[25, 3]);
    assert_eq!(&icmp[icmp.len() - 16..], &a("fd00::53").octets());
    let k = extract(f, 1).unwrap();
    assert_eq!(k.ip_ttl, 255);

    // Stateful DHCPv6: M and O, prefixes on-link only.
    let n = router_advert(
        &rs("fe80::800:ff:fe00:1", 255),
        &mut buf,
        &template("dhcpv6_stateful"),
    )
    .unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        flags, prefix_info, ..
    }) = icmp_ok(&buf[..n]).2
    else {
        panic!()
    };
    assert_eq!(flags.bits() & 0xc0, 0xc0);
    assert!(!prefix_info
        .unwrap()
        .flags
        .contains(smoltcp::wire::NdiscPrefixInfoFlags::ADDRCONF));
}

#[test]
fn what_solicitations_are_not_answered() {
    let t = template("slaac");
    let mut buf = vec![0u8; 512];
    // From :: to all nodes.
    let n = router_advert(&rs("::", 255), &mut buf, &t).unwrap();
    assert_eq!(&buf[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(icmp_ok(&buf[..n]).1, a("ff02::1"));
    // Forwarded (hop limit below 255): not from the link.
    assert_eq!(router_advert(&rs("fe80::1", 254), &mut buf, &t), None);
    // A source link-layer option from the unspecified address.
    let mut f = rs("fe80::1", 255);
    f[ETH + 8..ETH + 24].fill(0);
    assert_eq!(router_advert(&f, &mut buf, &t), None);
    // A zero-length option; a code other than 0; cut short; no room.
    let mut f = rs("fe80::1", 255);
    f[ETH + IP6 + 9] = 0;
    assert_eq!(router_advert(&f, &mut buf, &t), None);
    let mut f = rs("fe80::1", 255);
    f[ETH + IP6 + 1] = 1;
    assert_eq!(router_advert(&f, &mut buf, &t), None);
    let f = rs("fe80::1", 255);
    assert_eq!(router_advert(&f[..ETH + IP6 + 4], &mut buf, &t), None);
    assert_eq!(router_advert(&f, &mut buf[..60], &t), None);
    // Not a solicitation.
    assert_eq!(router_advert(&echo("fd00::1", 255), &mut buf, &t), None);
}
