//! What a PMD generates in answer to the packets it receives: ICMP errors
//! and echo replies, TCP RSTs, ARP requests (built by the slow path into the
//! PMD's one scratch frame), hairpinned frames, and the rate limits that keep
//! a flood of packets asking for answers from costing forwarding time.

use super::{encap_send, Pmd};
use crate::dp::flow::FlowKey;
use crate::dp::packet::apply_rewrite;
use crate::dp::pipeline::{punt, Verdict};
use crate::tables::TUNNEL_BASE;
use switchyard_southbound::DropReason;

/// Generated ARP requests per nexthop are limited to one per this interval.
const ARP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
const ARP_LIMITER_SLOTS: usize = 256;

/// Remembers when an ARP request for a nexthop was last sent (fixed size: a
/// hash slot per nexthop, a collision only lets one extra request through).
pub(super) struct ArpLimiter {
    last: [(u64, u64); ARP_LIMITER_SLOTS],
}

impl ArpLimiter {
    pub(super) fn new() -> Box<Self> {
        Box::new(ArpLimiter {
            last: [(0, 0); ARP_LIMITER_SLOTS],
        })
    }

    pub(super) fn allow(&mut self, dp: u32, ip: u32, now_ms: u64) -> bool {
        let id = u64::from(dp) << 32 | u64::from(ip);
        let slot = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % ARP_LIMITER_SLOTS;
        let now = now_ms + 1;
        let (who, when) = self.last[slot];
        if who == id && now.saturating_sub(when) < ARP_INTERVAL.as_millis() as u64 {
            return false;
        }
        self.last[slot] = (id, now);
        true
    }
}

/// Answers (ICMP errors and echo replies, TCP RSTs) a PMD generates per
/// second by default, and the burst it allows: Linux's `icmp_msgs_per_sec`
/// and `icmp_msgs_burst`.
pub const ICMP_RATE: u32 = 1000;
pub const ICMP_BURST: u32 = 50;

/// A token bucket for generated answers (as Linux's `icmp_ratelimit`): a
/// flood of pings or TTL-1 packets at a gateway costs the PMD a bounded
/// number of answers, not its forwarding time. Time comes from the caller.
#[derive(Clone, Copy, Debug)]
pub struct RateLimiter {
    /// Tokens per millisecond, times 1000 (fixed point).
    per_ms_x1000: u64,
    /// Most tokens, times 1000.
    burst_x1000: u64,
    tokens_x1000: u64,
    last_ms: u64,
}

impl RateLimiter {
    /// `rate` answers per second, bursts of `burst`; a rate of 0 disables it.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst_x1000 = u64::from(burst.max(1)) * 1000;
        RateLimiter {
            per_ms_x1000: u64::from(rate),
            burst_x1000,
            tokens_x1000: burst_x1000,
            last_ms: 0,
        }
    }

    /// Takes a token at `now_ms`, if there is one.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        if self.per_ms_x1000 == 0 {
            return true;
        }
        let dt = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens_x1000 =
            (self.tokens_x1000 + dt.saturating_mul(self.per_ms_x1000)).min(self.burst_x1000);
        if self.tokens_x1000 >= 1000 {
            self.tokens_x1000 -= 1000;
            true
        } else {
            false
        }
    }
}

/// DNS answers per second the datapath gives one port by default, and the
/// burst: far above what a pod's resolver asks, low enough that a flood of
/// queries from one pod costs a bounded share of the PMD.
pub const DNS_RATE: u32 = 20_000;
pub const DNS_BURST: u32 = 2_000;

impl Pmd {
    /// Sets the rate of DNS answers per port (per second; 0: unlimited).
    pub fn set_dns_rate(&mut self, rate: u32, burst: u32) {
        self.dns_rate = (rate, burst);
        for p in self.ports.iter_mut().flatten() {
            p.dns_limit = RateLimiter::new(rate, burst);
        }
    }

    /// Answers the DNS query in frame `i` of port `s` from switch `dp`'s
    /// records, back out of the port (through conntrack's reply translation,
    /// so a query to a service VIP is answered from the VIP). Returns false
    /// when the datapath has no answer and the query goes on.
    pub(super) fn dns(&mut self, s: usize, i: usize, off: usize, dp: u32) -> bool {
        let t = &*self.tables;
        let (Some(zone), Some(p)) = (t.dns.get(dp), self.ports[s].as_mut()) else {
            self.stats.dns_passed.add(1);
            return false;
        };
        let frame = &p.io.rx_frame(i)[off..];
        let len = match crate::answer::dns::answer(zone, frame, &mut self.scratch[..]) {
            crate::answer::dns::Outcome::Pass(why) => {
                match why {
                    crate::answer::dns::Pass::Malformed => self.stats.dns_malformed.add(1),
                    crate::answer::dns::Pass::NotOurs => self.stats.dns_passed.add(1),
                }
                return false;
            }
            crate::answer::dns::Outcome::Answer { len, nxdomain } => {
                let now = self.clock.now_ms();
                if !p.dns_limit.allow(now) {
                    p.drop_rx(DropReason::DnsRateLimited, &self.stats);
                    return true;
                }
                if nxdomain {
                    self.stats.dns_nxdomain.add(1);
                } else {
                    self.stats.dns_answered.add(1);
                }
                len
            }
        };
        let slot = s as u16;
        if t.ct_active {
            let answer = &mut self.scratch[..len];
            if let Ok(mut k) = crate::dp::packet::extract(answer, slot) {
                if let crate::ct::edge::Edge::Drop(r) = crate::ct::edge::egress(
                    t,
                    &mut super::lock(&self.edge),
                    &self.stats,
                    answer,
                    &mut k,
                    slot,
                ) {
                    self.stats.count_drop(r);
                    return true;
                }
            }
        }
        self.send_back(s, len);
        true
    }

    /// Sends the answer in the scratch frame back out of port `s`.
    fn send_back(&mut self, s: usize, len: usize) {
        let Some(p) = self.ports[s].as_mut() else {
            return;
        };
        if p.send(&self.scratch[..len], &self.stats) {
            self.stats.generated.add(1);
        }
        self.mark_dirty(s as u16);
    }

    /// Answers the DHCPv4 message in frame `i` of port `s` from the port's
    /// lease, back out of the port. Returns false when it is not the
    /// datapath's to answer (a REQUEST to another server): it goes on.
    pub(super) fn dhcp(&mut self, s: usize, i: usize, off: usize) -> bool {
        let t = &*self.tables;
        let lease = t
            .slot(s as u16)
            .and_then(|b| t.dhcp.get(b.datapath, b.port));
        let (Some(lease), Some(p)) = (lease, self.ports[s].as_mut()) else {
            self.stats.dhcp_passed.add(1);
            return false;
        };
        let frame = &p.io.rx_frame(i)[off..];
        let len = match crate::answer::dhcp::answer(lease, frame, &mut self.scratch[..]) {
            crate::answer::dhcp::Outcome::Pass => {
                self.stats.dhcp_passed.add(1);
                return false;
            }
            crate::answer::dhcp::Outcome::Consumed => {
                p.drop_rx(DropReason::DhcpConsumed, &self.stats);
                return true;
            }
            crate::answer::dhcp::Outcome::Reply { len, kind } => {
                let now = self.clock.now_ms();
                if !p.dns_limit.allow(now) {
                    p.drop_rx(DropReason::DhcpRateLimited, &self.stats);
                    return true;
                }
                match kind {
                    crate::answer::dhcp::Reply::Offer => self.stats.dhcp_offers.add(1),
                    crate::answer::dhcp::Reply::Ack => self.stats.dhcp_acks.add(1),
                    crate::answer::dhcp::Reply::Nak => self.stats.dhcp_naks.add(1),
                }
                len
            }
        };
        self.send_back(s, len);
        true
    }

    /// Sets the rate of generated answers (per second; 0: unlimited).
    pub fn set_answer_rate(&mut self, rate: u32, burst: u32) {
        self.answers = RateLimiter::new(rate, burst);
    }

    /// Whether another generated answer may go out now; counts it when not.
    pub(super) fn answer_allowed(&mut self) -> bool {
        let now = self.clock.now_ms();
        if self.answers.allow(now) {
            return true;
        }
        self.stats.count_drop(DropReason::IcmpRateLimited);
        false
    }

    /// Answers an IPv4 packet with DF set that would not fit the underlay once
    /// encapsulated with ICMP fragmentation-needed carrying the MTU that does
    /// fit, so the sender's path-MTU discovery shrinks its packets. The answer
    /// comes from the destination's address (the sender checks the quoted
    /// header, not the source) and goes back out the port it came in on, to
    /// the sender's MAC from the address it sent to (`key`, the frame as
    /// received: a routed frame is already rewritten). An IPv6 packet is
    /// never fragmented on the way: it always gets ICMPv6 packet too big.
    pub(super) fn frag_needed(&mut self, s: usize, i: usize, mtu: usize, key: &FlowKey) {
        let Some(src) = self.ports[s].as_ref() else {
            return;
        };
        let frame = src.io.rx_frame(i);
        if frame.len() >= 54 && frame[12..14] == [0x86, 0xdd] {
            return self.packet_too_big(s, i, mtu, key);
        }
        // IPv4 with DF, untagged (the fast path's key had eth_type 0x0800).
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[20] & 0x40 == 0 {
            return;
        }
        let dst_ip = u32::from_be_bytes([frame[30], frame[31], frame[32], frame[33]]);
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        if !self.answer_allowed() {
            return;
        }
        let Some(src) = self.ports[s].as_ref() else {
            return;
        };
        let frame = src.io.rx_frame(i);
        let Some(n) =
            crate::dp::generate::icmp_error(frame, &mut self.scratch[..], dst_ip, 3, 4, mtu)
        else {
            return;
        };
        self.scratch[0..6].copy_from_slice(&key.eth_src.to_be_bytes()[2..]);
        self.scratch[6..12].copy_from_slice(&key.eth_dst.to_be_bytes()[2..]);
        if self.send_scratch(s, n) {
            self.stats.generated.add(1);
        }
    }

    /// [`Self::frag_needed`] for IPv6: packet too big, from the destination.
    fn packet_too_big(&mut self, s: usize, i: usize, mtu: usize, key: &FlowKey) {
        if !self.answer_allowed() {
            return;
        }
        let Some(src) = self.ports[s].as_ref() else {
            return;
        };
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        let frame = src.io.rx_frame(i);
        let Some(n) =
            crate::dp::generate6::icmp6_error(frame, &mut self.scratch[..], key.ip6_dst, 2, 0, mtu)
        else {
            return;
        };
        self.scratch[0..6].copy_from_slice(&key.eth_src.to_be_bytes()[2..]);
        self.scratch[6..12].copy_from_slice(&key.eth_dst.to_be_bytes()[2..]);
        if self.send_scratch(s, n) {
            self.stats.generated.add(1);
        }
    }

    /// Transmits frame `i` of port `s` back out `s`, through the scratch frame
    /// (the receive frame cannot be borrowed while the port transmits).
    pub(super) fn hairpin(&mut self, s: usize, i: usize, off: usize) {
        let Some(p) = self.ports[s].as_mut() else {
            return;
        };
        let frame = &p.io.rx_frame(i)[off..];
        let n = frame.len().min(self.scratch.len());
        self.scratch[..n].copy_from_slice(&frame[..n]);
        self.send_scratch(s, n);
    }

    /// Transmits the first `n` bytes of the scratch frame out port `s`
    /// (generated answers and hairpinned packets), counted either way.
    pub(super) fn send_scratch(&mut self, s: usize, n: usize) -> bool {
        let Some(p) = self.ports[s].as_mut() else {
            return false;
        };
        let sent = p.send(&self.scratch[..n], &self.stats);
        self.mark_dirty(s as u16);
        sent
    }

    /// Answers a packet to a VIP without backends as if nothing listened there:
    /// a TCP RST, or ICMP port unreachable, from the VIP, back out its port.
    pub(super) fn no_backend(&mut self, s: usize, i: usize, key: &FlowKey, vip: u32) {
        if !self.answer_allowed() {
            return;
        }
        let Some(src) = self.ports[s].as_ref() else {
            return;
        };
        let frame = src.io.rx_frame(i);
        let n = if key.ip_proto == crate::ct::nat::TCP {
            crate::dp::generate::tcp_rst(frame, &mut self.scratch[..])
        } else {
            let n = crate::dp::generate::icmp_error(frame, &mut self.scratch[..], vip, 3, 3, 0);
            if n.is_some() {
                self.scratch[0..6].copy_from_slice(&frame[6..12]);
                self.scratch[6..12].copy_from_slice(&frame[0..6]);
            }
            n
        };
        let Some(n) = n else {
            return;
        };
        if self.send_scratch(s, n) {
            self.stats.generated.add(1);
        }
    }

    /// The slow path for a packet that makes the router generate one (ICMP, ARP)
    /// or learn a neighbour: rare by nature, and each one rate-limited or bounded.
    pub(super) fn punt(&mut self, slot: u16, i: usize, key: &crate::dp::flow::FlowKey) {
        let s = usize::from(slot);
        let Some(src) = self.ports[s].as_ref() else {
            return;
        };
        let mut out = std::mem::take(&mut self.out);
        let p = punt(
            &self.tables,
            key,
            src.io.rx_frame(i),
            &mut self.scratch[..],
            &mut out,
            None,
        );
        self.stats.punted.add(1);
        if let Some(r) = p.consumed {
            self.stats.count_drop(r);
        }
        if let Some(l) = p.learned {
            let _ = self.shared.learned.push(l);
        }
        let send = p.len > 0
            && match p.arp_for {
                Some((dp, ip)) => self.arp_limiter.allow(dp, ip, self.clock.now_ms()),
                None => self.answer_allowed(),
            };
        if send {
            let frame = &mut self.scratch[..p.len];
            let ok = match p.verdict {
                Verdict::Routed(rw) => {
                    apply_rewrite(frame, &rw);
                    true
                }
                Verdict::Output => true,
                Verdict::Drop(r) => {
                    self.stats.count_drop(r);
                    false
                }
                _ => false,
            };
            if ok {
                self.stats.generated.add(1);
                for &dst in &out {
                    if dst >= TUNNEL_BASE {
                        self.punt_encap(dst - TUNNEL_BASE, p.tun, key.hash32(), p.len);
                        continue;
                    }
                    let Some(d) = self
                        .ports
                        .get_mut(usize::from(dst))
                        .and_then(|p| p.as_mut())
                    else {
                        continue;
                    };
                    d.send(&self.scratch[..p.len], &self.stats);
                    self.mark_dirty(dst);
                }
            }
        }
        self.out = out;
    }

    /// Sends the generated packet in the scratch frame through a tunnel.
    pub(super) fn punt_encap(&mut self, tunnel: u16, tun_md: u64, hash: u32, len: usize) {
        let tables = self.tables.clone();
        let (Some(u), Some(tun)) = (tables.underlay, tables.tunnels.get(usize::from(tunnel)))
        else {
            return;
        };
        let Some(d) = self
            .ports
            .get_mut(usize::from(u.slot))
            .and_then(|p| p.as_mut())
        else {
            return;
        };
        match encap_send(&mut *d.io, &u, tun, tun_md, hash, &self.scratch[..len]) {
            Ok(()) => tun.stats.tx_packets.add(1),
            Err(r) => {
                tun.stats.tx_errors.add(1);
                self.stats.count_drop(r);
            }
        }
        self.mark_dirty(u.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimiter;

    #[test]
    fn the_answer_budget_refills_at_its_rate_and_caps_at_its_burst() {
        let mut r = RateLimiter::new(1000, 50);
        let burst = (0..200).filter(|_| r.allow(0)).count();
        assert_eq!(burst, 50, "a burst, then nothing in the same millisecond");
        assert!(r.allow(1), "one token a millisecond at 1000/s");
        assert!(!r.allow(1));
        // A quiet second refills the burst, never more.
        assert_eq!((0..200).filter(|_| r.allow(1_001)).count(), 50);
        // Time that goes backwards (a reset clock) grants nothing.
        assert!(!r.allow(500));
        let mut off = RateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| off.allow(0)), "rate 0: unlimited");
    }
}
