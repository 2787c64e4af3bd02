use super::*;

/// Whether the IPv4 header and UDP checksums of an answer frame verify.
fn checksums_ok(a: &[u8]) -> bool {
    let ip = smoltcp::wire::Ipv4Packet::new_checked(&a[14..]).expect("IPv4");
    let udp = smoltcp::wire::UdpPacket::new_checked(ip.payload()).expect("UDP");
    ip.verify_checksum() && udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
}

const MAC: u64 = 0x0a00_0000_0005;

fn lease() -> Lease {
    Lease {
        mac: MAC,
        ip: 0x0a00_0005,
        netmask: 0xffff_ff00,
        router: 0x0a00_0001,
        server_id: 0x0a00_0001,
        server_mac: 0x0a00_0000_00fe,
        lease_time: 3600,
        dns: vec![0x0a00_0035],
        mtu: 1400,
        domain: b"cluster.local".to_vec().into(),
    }
}

/// A client message of `ty` with options `extra` (code, data), from MAC.
pub(crate) fn client(ty: u8, flags: u16, ciaddr: u32, extra: &[(u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; BOOTP];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    b[10..12].copy_from_slice(&flags.to_be_bytes());
    b[12..16].copy_from_slice(&ciaddr.to_be_bytes());
    b[28..34].copy_from_slice(&MAC.to_be_bytes()[2..]);
    b.extend_from_slice(&COOKIE);
    b.extend_from_slice(&[53, 1, ty]);
    for (c, d) in extra {
        b.push(*c);
        b.push(d.len() as u8);
        b.extend_from_slice(d);
    }
    b.push(255);
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MAC.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (28 + b.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&ciaddr.to_be_bytes());
    f.extend_from_slice(&[255, 255, 255, 255, 0, 68, 0, 67]);
    f.extend_from_slice(&((8 + b.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&b);
    f
}

/// The reply's options by code, after checking its headers.
fn options(a: &[u8]) -> std::collections::BTreeMap<u8, Vec<u8>> {
    let ulen = usize::from(u16::from_be_bytes([a[38], a[39]]));
    assert_eq!(34 + ulen, a.len());
    assert!(checksums_ok(a), "IPv4 and UDP checksums");
    assert_eq!(&a[34..38], &[0, 67, 0, 68]);
    assert_eq!(&a[6..12], &[0x0a, 0, 0, 0, 0, 0xfe], "from server_mac");
    let b = &a[42..];
    assert!(b.len() >= MIN_BOOTP);
    assert_eq!(
        (b[0], &b[4..8]),
        (2, &[0xde, 0xad, 0xbe, 0xef][..]),
        "reply, same xid"
    );
    let mut out = std::collections::BTreeMap::new();
    let mut at = BOOTP + 4;
    while b[at] != 255 {
        let (c, n) = (b[at], usize::from(b[at + 1]));
        out.insert(c, b[at + 2..at + 2 + n].to_vec());
        at += 2 + n;
    }
    out
}

fn ask(f: &[u8]) -> (Outcome, Vec<u8>) {
    let mut buf = [0u8; MAX_REPLY_FRAME];
    let o = answer(&lease(), f, &mut buf);
    let len = match o {
        Outcome::Reply { len, .. } => len,
        _ => 0,
    };
    (o, buf[..len].to_vec())
}

#[test]
fn discover_gets_an_offer_of_the_ports_address_with_every_option() {
    let (o, a) = ask(&client(DISCOVER, 0, 0, &[(55, &[1, 3, 6, 26])]));
    assert!(matches!(
        o,
        Outcome::Reply {
            kind: Reply::Offer,
            ..
        }
    ));
    let opts = options(&a);
    assert_eq!(&a[42 + 16..42 + 20], &[10, 0, 0, 5], "yiaddr");
    assert_eq!(
        &a[0..6],
        &MAC.to_be_bytes()[2..],
        "unicast to the client's MAC"
    );
    assert_eq!(&a[30..34], &[10, 0, 0, 5]);
    assert_eq!(opts[&53], [OFFER]);
    assert_eq!(opts[&54], [10, 0, 0, 1]);
    assert_eq!(opts[&51], 3600u32.to_be_bytes());
    assert_eq!(opts[&1], [255, 255, 255, 0]);
    assert_eq!(opts[&3], [10, 0, 0, 1]);
    assert_eq!(opts[&6], [10, 0, 0, 53]);
    assert_eq!(opts[&26], 1400u16.to_be_bytes());
    assert_eq!(opts[&15], b"cluster.local");
    // The broadcast flag: to everyone.
    let (_, a) = ask(&client(DISCOVER, 0x8000, 0, &[]));
    assert_eq!((&a[0..6], &a[30..34]), (&[0xff; 6][..], &[255; 4][..]));
}

#[test]
fn request_for_the_address_is_acked_another_nakked_another_servers_passed() {
    let (o, a) = ask(&client(
        REQUEST,
        0,
        0,
        &[(50, &[10, 0, 0, 5]), (54, &[10, 0, 0, 1])],
    ));
    assert!(matches!(
        o,
        Outcome::Reply {
            kind: Reply::Ack,
            ..
        }
    ));
    assert_eq!(options(&a)[&53], [ACK]);
    // A renewal: ciaddr set, unicast back to it.
    let (o, a) = ask(&client(REQUEST, 0, 0x0a00_0005, &[]));
    assert!(matches!(
        o,
        Outcome::Reply {
            kind: Reply::Ack,
            ..
        }
    ));
    assert_eq!(&a[30..34], &[10, 0, 0, 5]);
    let (o, a) = ask(&client(REQUEST, 0, 0, &[(50, &[10, 0, 0, 9])]));
    assert!(matches!(
        o,
        Outcome::Reply {
            kind: Reply::Nak,
            ..
        }
    ));
    assert_eq!(options(&a)[&53], [NAK]);
    assert_eq!(&a[42 + 16..42 + 20], &[0; 4], "no address in a NAK");
    let other = client(
        REQUEST,
        0,
        0,
        &[(50, &[10, 0, 0, 5]), (54, &[10, 0, 0, 99])],
    );
    assert_eq!(ask(&other).0, Outcome::Pass);
}

#[test]
fn inform_gets_options_without_a_lease() {
    let (o, a) = ask(&client(INFORM, 0, 0x0a00_0005, &[]));
    assert!(matches!(
        o,
        Outcome::Reply {
            kind: Reply::Ack,
            ..
        }
    ));
    let opts = options(&a);
    assert!(!opts.contains_key(&51));
    assert_eq!(&a[42 + 16..42 + 20], &[0; 4]);
}

#[test]
fn release_spoofed_relayed_and_cut_messages_are_consumed_never_a_panic() {
    assert_eq!(ask(&client(7, 0, 0x0a00_0005, &[])).0, Outcome::Consumed);
    let mut spoof = client(DISCOVER, 0, 0, &[]);
    spoof[42 + 28 + 5] ^= 1; // chaddr of another MAC
    assert_eq!(ask(&spoof).0, Outcome::Consumed);
    let mut relayed = client(DISCOVER, 0, 0, &[]);
    relayed[42 + 24] = 10; // giaddr
    assert_eq!(ask(&relayed).0, Outcome::Consumed);
    let f = client(REQUEST, 0, 0, &[(50, &[10, 0, 0, 5]), (12, &[b'x'; 40])]);
    for n in 0..f.len() {
        let _ = ask(&f[..n]);
    }
    for i in 0..f.len() {
        let mut g = f.clone();
        g[i] ^= 0xff;
        let _ = ask(&g);
    }
    // An option whose length runs past the message.
    let mut bad = client(DISCOVER, 0, 0, &[]);
    let n = bad.len();
    bad[n - 1] = 12;
    bad.push(200);
    assert_eq!(ask(&bad).0, Outcome::Consumed);
}
