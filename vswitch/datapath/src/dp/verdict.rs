//! What a pipeline run decides for a packet, as the caches keep it: the
//! verdict, the rewrite of a routed packet, the connection to commit.

use switchyard_southbound::DropReason;

/// What to change in a frame before it is transmitted (routed packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub eth_src: u64,
    pub eth_dst: u64,
    /// Hops the packet crossed: subtract from the IPv4 TTL or IPv6 hop limit.
    pub ttl_dec: u8,
}

/// What the datapath does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop(DropReason),
    /// Transmit a copy to every slot in the caller's output list.
    Output,
    /// Rewrite, then transmit to every slot in the output list.
    Routed(Rewrite),
    /// Answer an ARP request in place with this MAC, back out the input port.
    ArpReply(u64),
    /// Answer a neighbor solicitation in place (NA with this MAC; `router`
    /// sets the R flag), back out the input port.
    NdReply {
        mac: u64,
        router: bool,
    },
    /// The pipeline generates a packet from this one (ICMP, ARP, learning): the
    /// PMD hands the frame to `pipeline::punt`.
    Punt,
    /// A DNS query on this switch datapath: the PMD answers it from the
    /// datapath's zone, or runs it again with `pipeline::run_passed`.
    Dns(u32),
    /// A DHCPv4 message from a port with a lease: the PMD answers it, or
    /// runs it again with `pipeline::run_passed`.
    Dhcp,
}

/// A connection the pipeline committed (`ct_commit`): the mark and label it
/// leaves on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    pub mark: u32,
    pub label: u32,
}

/// Everything the caches remember of one pipeline run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Tunnel metadata (`flow::pack_tunnel`) for outputs at or above `tables::TUNNEL_BASE`.
    pub tun_md: u64,
    /// Commit the packet's connection once it is sent.
    pub commit: Option<Commit>,
}

impl Decision {
    pub(crate) fn of(verdict: Verdict) -> Self {
        Decision {
            verdict,
            tun_md: 0,
            commit: None,
        }
    }
}
