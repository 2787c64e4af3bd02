//! The `dns` and `dhcp` fuzz targets. `dns`: a DNS message (the UDP payload of a query from
//! 10.0.0.5 to 10.96.0.10:53) answered from a zone with A, AAAA, SRV, PTR
//! and CNAME records and a domain. Invariants: no panic; an answer fits the buffer and
//! 512 bytes of message, goes back to the sender from port 53 with a valid
//! IPv4 header checksum, and keeps the query's id; `describe` reads it.

use switchyard_southbound::pb;
use switchyard_vswitch::answer::dns::{answer, describe, Outcome, Zones, MAX_ANSWER_FRAME};

thread_local! {
    static ZONES: Zones = zones();
}

fn zones() -> Zones {
    let rows = vec![
        pb::SbDns {
            datapath: 1,
            name: "web.default.svc.cluster.local".into(),
            a: vec![0x0a60_000a, 0x0a60_000b],
            aaaa: vec![[0xfdu8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10].to_vec()],
            srv: vec![pb::SbSrv {
                priority: 1,
                weight: 10,
                port: 80,
                target: "web.default.svc.cluster.local".into(),
            }],
            ttl: 30,
            ..Default::default()
        },
        // Aliases: one chased to web, one to a name elsewhere, one to many
        // (whose SRV answer to ANY, after the CNAME, truncates).
        pb::SbDns {
            datapath: 1,
            name: "www.default.svc.cluster.local".into(),
            cname: "web.default.svc.cluster.local".into(),
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "ext.default.svc.cluster.local".into(),
            cname: "example.com".into(),
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "alias-of-many.cluster.local".into(),
            cname: "many.cluster.local".into(),
            ttl: 30,
            ..Default::default()
        },
        pb::SbDns {
            datapath: 1,
            name: "many.cluster.local".into(),
            srv: (0..16)
                .map(|i| pb::SbSrv {
                    priority: i,
                    weight: 1,
                    port: 9000 + i,
                    target: format!(
                        "backend-{i}.a-rather-long-service-name.default.svc.cluster.local"
                    ),
                })
                .collect(),
            ttl: 5,
            ..Default::default()
        },
    ];
    Zones::build(&rows, [(1, "cluster.local")].into_iter())
}

/// The query frame carrying `msg`.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0x0a, 0, 0, 0, 0, 1, 0x0a, 0, 0, 0, 0, 5, 0x08, 0x00];
    let total = (20 + 8 + msg.len()).min(0xffff) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 5, 10, 96, 0, 10]);
    let ulen = (8 + msg.len()).min(0xffff) as u16;
    f.extend_from_slice(&[0x9c, 0x40, 0, 53]);
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(msg);
    f
}

pub fn dns(data: &[u8]) {
    let q = frame(data);
    let mut buf = [0u8; MAX_ANSWER_FRAME];
    ZONES.with(|z| {
        let zone = z.get(1).expect("zone 1");
        // The message alone, and as the whole frame (a malformed IP/UDP).
        let _ = answer(zone, data, &mut buf);
        if let Outcome::Answer { len, .. } = answer(zone, &q, &mut buf) {
            assert!((42 + 12..=MAX_ANSWER_FRAME).contains(&len));
            let a = &buf[..len];
            assert_eq!(&a[30..34], &[10, 0, 0, 5], "back to the sender");
            assert_eq!(&a[34..36], &[0, 53], "from port 53");
            assert_eq!(&a[42..44], &data[..2], "the query's id");
            let mut sum = 0u32;
            for c in a[14..34].chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff, "IPv4 header checksum");
            let _ = describe(a);
        }
    });
}

/// Seeds: queries of every type answered, NXDOMAIN, passed on, EDNS0,
/// truncation, and a compression loop.
pub fn seeds() -> Vec<Vec<u8>> {
    let q = |name: &str, ty: u16, edns: bool| {
        let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        if edns {
            m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        }
        m
    };
    let mut out = vec![
        q("web.default.svc.cluster.local", 1, false),
        q("WEB.Default.svc.cluster.local", 28, true),
        q("web.default.svc.cluster.local", 33, false),
        q("web.default.svc.cluster.local", 255, true),
        q("10.0.96.10.in-addr.arpa", 12, false),
        q("many.cluster.local", 33, false),
        q("nope.cluster.local", 1, false),
        q("svc.cluster.local", 1, false),
        q("www.example.com", 1, true),
    ];
    let mut ptr_loop = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    ptr_loop.extend_from_slice(&[3, b'w', b'e', b'b', 0xc0, 12, 0, 1, 0, 1]);
    out.push(ptr_loop);
    out
}

/// The `dhcp` fuzz target: a BOOTP/DHCP message (the UDP payload from
/// 0.0.0.0:68 to 255.255.255.255:67) from a port with a lease. Invariants:
/// no panic; a reply fits its buffer, goes from 67 to 68 with the request's
/// transaction id, and offers nothing but the lease's address.
pub fn dhcp(data: &[u8]) {
    use switchyard_vswitch::answer::dhcp::{answer, Lease, Outcome, MAX_REPLY_FRAME};
    let lease = Lease {
        mac: 0x0a00_0000_0005,
        ip: 0x0a00_0005,
        netmask: 0xffff_ff00,
        router: 0x0a00_0001,
        server_id: 0x0a00_0001,
        server_mac: 0x0a00_0000_00fe,
        lease_time: 3600,
        dns: vec![0x0a00_0035, 0x0a00_0036],
        mtu: 1400,
        domain: b"cluster.local".to_vec().into(),
    };
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x0a, 0, 0, 0, 0, 5, 0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((28 + data.len()).min(0xffff) as u16).to_be_bytes());
    f.extend_from_slice(&[
        0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 68, 0, 67,
    ]);
    f.extend_from_slice(&((8 + data.len()).min(0xffff) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(data);
    let mut buf = [0u8; MAX_REPLY_FRAME];
    let _ = answer(&lease, data, &mut buf);
    if let Outcome::Reply { len, .. } = answer(&lease, &f, &mut buf) {
        assert!(len <= MAX_REPLY_FRAME);
        assert_eq!(&buf[34..38], &[0, 67, 0, 68]);
        assert_eq!(&buf[42 + 4..42 + 8], &data[4..8], "the transaction id");
        let yiaddr = &buf[42 + 16..42 + 20];
        assert!(yiaddr == [0; 4] || yiaddr == [10, 0, 0, 5], "{yiaddr:?}");
    }
}

/// Seeds for `dhcp`: DISCOVER, REQUEST (ours, another address, another
/// server), INFORM, RELEASE.
pub fn dhcp_seeds() -> Vec<Vec<u8>> {
    let msg = |ty: u8, ciaddr: [u8; 4], extra: &[u8]| {
        let mut b = vec![0u8; 236];
        b[0..3].copy_from_slice(&[1, 1, 6]);
        b[4..8].copy_from_slice(&[1, 2, 3, 4]);
        b[12..16].copy_from_slice(&ciaddr);
        b[28..34].copy_from_slice(&[0x0a, 0, 0, 0, 0, 5]);
        b.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, ty]);
        b.extend_from_slice(extra);
        b.push(255);
        b
    };
    vec![
        msg(1, [0; 4], &[55, 4, 1, 3, 6, 26]),
        msg(3, [0; 4], &[50, 4, 10, 0, 0, 5, 54, 4, 10, 0, 0, 1]),
        msg(3, [0; 4], &[50, 4, 10, 0, 0, 9]),
        msg(3, [0; 4], &[50, 4, 10, 0, 0, 5, 54, 4, 10, 0, 0, 99]),
        msg(3, [10, 0, 0, 5], &[]),
        msg(8, [10, 0, 0, 5], &[]),
        msg(7, [10, 0, 0, 5], &[]),
    ]
}
