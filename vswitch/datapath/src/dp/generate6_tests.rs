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
