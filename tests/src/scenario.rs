//! Traffic scenarios, written once and run by two runners: the in-memory port
//! ([`crate::memory`]) and real pods over AF_XDP ([`crate::sandbox`]). Each case
//! sends one frame from one pod and says who must receive it, or why it is dropped.

use crate::frames;
use smoltcp::wire::Ipv4Address;
use switchyard_southbound::DropReason;

/// A pod as scenarios see it.
#[derive(Clone, Debug)]
pub struct PodAddr {
    pub mac: u64,
    pub ip: Ipv4Address,
}

/// The address plan the sandbox uses (pod i, from 1: 10.244.0.(10+i)).
pub fn pod_addr(i: usize) -> PodAddr {
    let host = 10 + i as u8;
    PodAddr {
        mac: 0x0a58_0af4_0000 | u64::from(host),
        ip: Ipv4Address::new(10, 244, 0, host),
    }
}

/// What must happen to a case's frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Received by exactly these pods (indexes into the pod list).
    Delivered(Vec<usize>),
    /// Received by nobody, and counted under this reason.
    Dropped(DropReason),
}

/// One case.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub from: usize,
    pub frame: Vec<u8>,
    pub expect: Expect,
}

/// Number of pods the L2 scenario needs.
pub const L2_PODS: usize = 3;

/// The L2 switch scenario; `tag` is embedded in every payload so that runners can
/// tell the case's frames from anything else on the wire.
pub fn l2_cases(tag: &str) -> Vec<Case> {
    let p: Vec<PodAddr> = (1..=L2_PODS).map(pod_addr).collect();
    let payload = |s: &str| format!("{tag}:{s}").into_bytes();
    vec![
        Case {
            name: "known unicast goes to its port only",
            from: 0,
            frame: frames::udp(p[0].mac, p[1].mac, p[0].ip, p[1].ip, 9, &payload("unicast")),
            expect: Expect::Delivered(vec![1]),
        },
        Case {
            name: "broadcast floods to every other port",
            from: 1,
            frame: frames::udp(
                p[1].mac,
                0xffff_ffff_ffff,
                p[1].ip,
                Ipv4Address::BROADCAST,
                9,
                &payload("bcast"),
            ),
            expect: Expect::Delivered(vec![0, 2]),
        },
        Case {
            name: "unknown unicast is dropped (no port accepts unknown)",
            from: 0,
            frame: frames::udp(
                p[0].mac,
                0x0a58_0000_0099,
                p[0].ip,
                p[2].ip,
                9,
                &payload("unknown"),
            ),
            expect: Expect::Dropped(DropReason::NoL2Destination),
        },
        Case {
            name: "spoofed source MAC is dropped",
            from: 0,
            frame: frames::udp(
                0x0a58_0000_0bad,
                p[1].mac,
                p[0].ip,
                p[1].ip,
                9,
                &payload("spoofmac"),
            ),
            expect: Expect::Dropped(DropReason::PortSecurityMac),
        },
        Case {
            name: "spoofed source IP is dropped",
            from: 2,
            frame: frames::udp(
                p[2].mac,
                p[1].mac,
                Ipv4Address::new(10, 244, 0, 99),
                p[1].ip,
                9,
                &payload("spoofip"),
            ),
            expect: Expect::Dropped(DropReason::PortSecurityIp),
        },
        Case {
            name: "frame to the sender's own MAC is not looped back",
            from: 1,
            frame: frames::udp(p[1].mac, p[1].mac, p[1].ip, p[1].ip, 9, &payload("loop")),
            expect: Expect::Dropped(DropReason::LoopToInport),
        },
    ]
}
