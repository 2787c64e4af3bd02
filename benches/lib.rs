//! Fixtures shared by the benches: topologies built through the real NB model and
//! compiler, translated into real tables, on in-memory ports.
#![forbid(unsafe_code)]

use std::sync::Arc;
use switchyard_northd::compile::compile;
use switchyard_northd::model::Nb;
use switchyard_northd::server::sb::Sb;
use switchyard_southbound::fmt_mac;
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_vswitch::pmd::{Pmd, SharedTables};
use switchyard_vswitch::port::MemPort;
use switchyard_vswitch::stats::{PmdStats, PortStats};
use switchyard_vswitch::tables::{LocalBinding, Tables};

/// MAC of port `i` (1-based).
pub fn port_mac(i: usize) -> u64 {
    0x0a00_0000_0000 | i as u64
}

/// IPv4 of port `i`: 10.(i/65536).(i/256).(i%256) inside 10.0.0.0/8.
pub fn port_ip(i: usize) -> [u8; 4] {
    [10, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

/// One switch with `n` ports, each with a MAC, an IP and port security.
pub fn switch_nb(n: usize) -> Nb {
    switch_nb_with(n, Default::default())
}

/// [`switch_nb`] with the switch's other_config (e.g. `mtu`).
pub fn switch_nb_with(n: usize, other_config: std::collections::HashMap<String, String>) -> Nb {
    let mut ops = vec![Op::LsAdd(pb::LogicalSwitch {
        name: "ls0".into(),
        subnet: "10.0.0.0/8".into(),
        other_config,
        ..Default::default()
    })];
    for i in 1..=n {
        let ip = port_ip(i);
        let addr = format!(
            "{} {}.{}.{}.{}",
            fmt_mac(port_mac(i)),
            ip[0],
            ip[1],
            ip[2],
            ip[3]
        );
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("p{i}"),
            switch_name: "ls0".into(),
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            ..Default::default()
        }));
    }
    let mut nb = Nb::default();
    nb.apply_all(ops).expect("valid topology");
    nb
}

/// A UDP frame of exactly 64 bytes on the wire (60 without FCS) from port `a` to `b`.
pub fn frame64(a: usize, b: usize) -> Vec<u8> {
    udp64(port_mac(a), port_mac(b), port_ip(a), port_ip(b))
}

/// The router's MAC on switch `ls{j}` in [`routed_nb`].
pub fn router_mac(j: usize) -> u64 {
    0x0a00_0000_ff00 | j as u64
}

/// Two switches, ls0 (10.0.0.0/24, port p1 = 10.0.0.1) and ls1 (10.1.0.0/24,
/// port p2 = 10.1.0.2), joined by router lr0, which also holds `routes` static
/// routes with prefix lengths cycling over /16, /20, /24, /28, /32 (the same
/// mix of lengths whatever the count), all via 10.1.0.253.
pub fn routed_nb(routes: usize) -> Nb {
    let mut ops = Vec::new();
    for j in 0..2usize {
        let sw = format!("ls{j}");
        ops.push(Op::LsAdd(pb::LogicalSwitch {
            name: sw.clone(),
            subnet: format!("10.{j}.0.0/24"),
            ..Default::default()
        }));
    }
    ops.push(Op::LrAdd(pb::LogicalRouter {
        name: "lr0".into(),
        enabled: true,
        ..Default::default()
    }));
    for j in 0..2usize {
        let sw = format!("ls{j}");
        ops.push(Op::LrpAdd(pb::LogicalRouterPort {
            name: format!("lr0-{sw}"),
            router_name: "lr0".into(),
            mac: fmt_mac(router_mac(j)),
            networks: vec![format!("10.{j}.0.254/24")],
            enabled: true,
            ..Default::default()
        }));
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("{sw}-lr0"),
            switch_name: sw.clone(),
            addresses: vec!["router".into()],
            r#type: "router".into(),
            options: [("router-port".to_string(), format!("lr0-{sw}"))].into(),
            enabled: true,
            ..Default::default()
        }));
        let i = j + 1;
        let addr = format!("{} 10.{j}.0.{i}", fmt_mac(port_mac(i)));
        ops.push(Op::LspAdd(pb::LogicalSwitchPort {
            name: format!("p{i}"),
            switch_name: sw,
            addresses: vec![addr.clone()],
            port_security: vec![addr],
            enabled: true,
            ..Default::default()
        }));
    }
    for r in 0..routes {
        let len = [16u8, 20, 24, 28, 32][r % 5];
        // Distinct prefixes in 100.0.0.0/8 and up, none covering 10.0.0.0/8.
        let base = (100u32 << 24) + ((r as u32) << 16);
        let net = std::net::Ipv4Addr::from(base & (u32::MAX << (32 - u32::from(len))));
        ops.push(Op::RouteAdd(pb::StaticRoute {
            router_name: "lr0".into(),
            prefix: format!("{net}/{len}"),
            nexthop: "10.1.0.253".into(),
            output_port: String::new(),
        }));
    }
    let mut nb = Nb::default();
    nb.apply_all(ops).expect("valid routed topology");
    nb
}

/// A 64-byte UDP frame from p1 on ls0 to p2 on ls1, through the router.
pub fn routed_frame64() -> Vec<u8> {
    udp64(port_mac(1), router_mac(0), [10, 0, 0, 1], [10, 1, 0, 2])
}

/// A UDP frame of exactly 64 bytes on the wire (60 without FCS).
pub fn udp64(src_mac: u64, dst_mac: u64, s: [u8; 4], d: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst_mac.to_be_bytes()[2..]);
    f.extend_from_slice(&src_mac.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [
        0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0, s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3],
    ];
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x09, 0x00, 26, 0, 0]);
    f.resize(60, 0);
    f
}

/// A PMD on the compiled tables of `nb` with ports 1..=n bound at slots 0..n;
/// slot 0 replays `frames`, every other port only counts what it receives.
pub fn pmd(nb: &Nb, n: usize, frames: Vec<Vec<u8>>, emc_entries: usize) -> (Pmd, Arc<PmdStats>) {
    let mut sb = Sb::default();
    sb.set_compiled(compile(nb), 1);
    pmd_on_snapshot(&sb.snapshot(), n, frames, emc_entries)
}

/// [`pmd`] on southbound contents already compiled.
pub fn pmd_on_snapshot(
    snap: &pb::SbSnapshot,
    n: usize,
    frames: Vec<Vec<u8>>,
    emc_entries: usize,
) -> (Pmd, Arc<PmdStats>) {
    let snap = snap.clone();
    let local: Vec<LocalBinding> = (1..=n)
        .map(|i| LocalBinding {
            slot: (i - 1) as u16,
            iface: format!("m{i}"),
            lport: format!("p{i}"),
        })
        .collect();
    let shared = SharedTables::new(Tables::build(1, &snap, "", &local));
    let stats = Arc::new(PmdStats::default());
    let mut pmd = Pmd::new(shared, stats.clone(), emc_entries);
    pmd.add_port(
        0,
        Box::new(MemPort::replaying(frames)),
        Arc::new(PortStats::default()),
    );
    for i in 1..n {
        let mut p = MemPort::new();
        p.count_only = true;
        pmd.add_port(i as u16, Box::new(p), Arc::new(PortStats::default()));
    }
    (pmd, stats)
}

/// This chassis in [`overlay`]: its encap IP and underlay MAC.
pub const LOCAL_IP: u32 = 0xac1f_000b;
pub const LOCAL_MAC: u64 = 0x0a58_ac1f_000b;
/// The remote chassis in [`overlay`].
pub const REMOTE_IP: u32 = 0xac1f_000c;
pub const REMOTE_MAC: u64 = 0x0a58_ac1f_000c;
/// The underlay port's slot in [`overlay`].
pub const UNDERLAY_SLOT: u16 = 2;

/// One switch with p1, p2, p3 (see [`switch_nb`]); p1 and p3 bound here at slots 0
/// and 1, p2 claimed by chassis "ch2", reached through a Geneve tunnel on an
/// in-memory underlay at [`UNDERLAY_SLOT`]. Slot 0 replays `frames`; the
/// underlay replays `underlay_frames`; ports record what they transmit unless
/// `count_only`.
pub fn overlay(
    frames: Vec<Vec<u8>>,
    underlay_frames: Vec<Vec<u8>>,
    count_only: bool,
) -> (Pmd, Arc<PmdStats>, pb::SbSnapshot) {
    overlay_with(frames, underlay_frames, count_only, |_| {})
}

/// [`overlay`] with the southbound contents edited before the tables are built.
pub fn overlay_with(
    frames: Vec<Vec<u8>>,
    underlay_frames: Vec<Vec<u8>>,
    count_only: bool,
    edit: impl FnOnce(&mut pb::SbSnapshot),
) -> (Pmd, Arc<PmdStats>, pb::SbSnapshot) {
    let nb = switch_nb(3);
    let mut sb = Sb::default();
    sb.set_compiled(compile(&nb), 1);
    for (name, ip) in [("ch1", LOCAL_IP), ("ch2", REMOTE_IP)] {
        sb.chassis.insert(
            name.into(),
            pb::Chassis {
                name: name.into(),
                hostname: name.into(),
                encaps: vec![pb::Encap {
                    r#type: "geneve".into(),
                    ip: std::net::Ipv4Addr::from(ip).to_string(),
                }],
            },
        );
    }
    for (p, c) in [("p1", "ch1"), ("p2", "ch2"), ("p3", "ch1")] {
        sb.claims.insert(p.into(), c.into());
    }
    sb.rebuild();
    let mut snap = sb.snapshot();
    edit(&mut snap);
    let local = vec![
        LocalBinding {
            slot: 0,
            iface: "m1".into(),
            lport: "p1".into(),
        },
        LocalBinding {
            slot: 1,
            iface: "m3".into(),
            lport: "p3".into(),
        },
    ];
    let mut t = Tables::build(1, &snap, "ch1", &local);
    let macs = [(REMOTE_IP, REMOTE_MAC)].into_iter().collect();
    t.set_underlay(
        switchyard_vswitch::tables::Underlay {
            slot: UNDERLAY_SLOT,
            ip: LOCAL_IP,
            mac: LOCAL_MAC,
            mtu: 1500,
        },
        &macs,
        &mut Default::default(),
    );
    let shared = SharedTables::new(t);
    let stats = Arc::new(PmdStats::default());
    let mut pmd = Pmd::new(shared, stats.clone(), 4096);
    let port = |replay: Vec<Vec<u8>>| {
        let mut p = if replay.is_empty() {
            MemPort::new()
        } else {
            MemPort::replaying(replay)
        };
        p.count_only = count_only;
        Box::new(p)
    };
    pmd.add_port(0, port(frames), Arc::new(PortStats::default()));
    pmd.add_port(1, port(Vec::new()), Arc::new(PortStats::default()));
    pmd.add_port(
        UNDERLAY_SLOT,
        port(underlay_frames),
        Arc::new(PortStats::default()),
    );
    (pmd, stats, snap)
}

/// A 64-byte frame from p2 (remote) to p1 as chassis ch2 encapsulates it.
pub fn encapsulated_to_p1(snap: &pb::SbSnapshot) -> Vec<u8> {
    encapsulate_to_p1(snap, &frame64(2, 1))
}

/// `inner`, sent by p2 to p1, as chassis ch2 encapsulates it.
pub fn encapsulate_to_p1(snap: &pb::SbSnapshot, inner: &[u8]) -> Vec<u8> {
    use switchyard_geneve::tunnel::{emit, source_port, Metadata, Outer, ENCAP_LEN};
    let key = |n: &str| {
        snap.port_bindings
            .iter()
            .find(|b| b.logical_port == n)
            .map(|b| (b.datapath, b.tunnel_key as u16))
            .expect("port binding")
    };
    let (dp, p2) = key("p2");
    let (_, p1) = key("p1");
    let mut h = [0u8; ENCAP_LEN];
    emit(
        &mut h,
        &Outer {
            src_mac: REMOTE_MAC,
            dst_mac: LOCAL_MAC,
            src_ip: REMOTE_IP,
            dst_ip: LOCAL_IP,
        },
        &Metadata {
            datapath: dp,
            ingress: p2,
            egress: p1,
        },
        source_port(7),
        inner.len(),
    );
    [&h[..], inner].concat()
}

/// Runs `iters` batches on every PMD at once, each on its own thread pinned
/// to core k (PMD k), started together; returns the time until the last ends
/// (criterion's `iter_custom` for the several-PMD benches).
pub fn time_pinned(pmds: &mut [Pmd], iters: u64) -> std::time::Duration {
    let start = std::sync::Barrier::new(pmds.len() + 1);
    let start = &start;
    std::thread::scope(|s| {
        for (k, p) in pmds.iter_mut().enumerate() {
            s.spawn(move || {
                switchyard_vswitch::sys::pin_to_core(k);
                start.wait();
                for _ in 0..iters {
                    std::hint::black_box(p.poll_port(0));
                }
            });
        }
        start.wait();
        // The scope joins every PMD before it returns.
        std::time::Instant::now()
    })
    .elapsed()
}
