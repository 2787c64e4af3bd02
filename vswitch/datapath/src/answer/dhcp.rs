//! DHCPv4 answered in the datapath: each port with DHCP options (northd's
//! `SbDhcp` rows) gets a [`Lease`], and its DISCOVER, REQUEST and INFORM are
//! answered from it into the PMD's scratch buffer (RFC 2131), as OVN's
//! `put_dhcp_opts` does in ovn-controller.
//!
//! Outcomes: DISCOVER -> OFFER; REQUEST for the port's address -> ACK, for
//! another -> NAK; INFORM -> ACK without a lease; a REQUEST naming another
//! server goes on (the client chose that server). Everything else (RELEASE,
//! DECLINE, a relayed or malformed message, a client hardware address that is
//! not the port's) is consumed and counted: the port's DHCP is the
//! datapath's, and nothing it cannot answer is flooded to the other ports.

use rustc_hash::FxHashMap;
use switchyard_southbound::pb;

/// What one port is offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    pub mac: u64,
    pub ip: u32,
    pub netmask: u32,
    pub router: u32,
    pub server_id: u32,
    pub server_mac: u64,
    pub lease_time: u32,
    pub dns: Vec<u32>,
    pub mtu: u16,
    /// The domain name option's bytes (text, at most 255).
    pub domain: Box<[u8]>,
}

impl Lease {
    /// What a DISCOVER from the port is offered, in a line (`syctl trace`).
    pub fn describe(&self) -> String {
        let ip = |v: u32| std::net::Ipv4Addr::from(v).to_string();
        let mut s = format!(
            "OFFER to a DISCOVER, ACK to a REQUEST for it: {}/{} for {} s from server {} ({})",
            ip(self.ip),
            self.netmask.leading_ones(),
            self.lease_time,
            ip(self.server_id),
            switchyard_southbound::fmt_mac(self.server_mac)
        );
        if self.router != 0 {
            s += &format!(", router {}", ip(self.router));
        }
        if !self.dns.is_empty() {
            let d: Vec<String> = self.dns.iter().map(|v| ip(*v)).collect();
            s += &format!(", dns {}", d.join(" "));
        }
        if self.mtu != 0 {
            s += &format!(", mtu {}", self.mtu);
        }
        if !self.domain.is_empty() {
            s += &format!(", domain {}", String::from_utf8_lossy(&self.domain));
        }
        s
    }
}

/// Every port's lease, by (datapath, port key).
#[derive(Debug, Clone, Default)]
pub struct Leases {
    pub by_port: FxHashMap<(u32, u32), Lease>,
}

impl Leases {
    pub fn build(rows: &[pb::SbDhcp]) -> Leases {
        let mut l = Leases::default();
        for r in rows {
            let mut domain = r.domain_name.as_bytes().to_vec();
            domain.truncate(255);
            l.by_port.insert(
                (r.datapath, r.port),
                Lease {
                    mac: r.mac,
                    ip: r.ip,
                    netmask: r.netmask,
                    router: r.router,
                    server_id: r.server_id,
                    server_mac: r.server_mac,
                    lease_time: r.lease_time,
                    dns: r.dns.iter().copied().take(8).collect(),
                    mtu: u16::try_from(r.mtu).unwrap_or(0),
                    domain: domain.into(),
                },
            );
        }
        l
    }

    pub fn get(&self, dp: u32, port: u32) -> Option<&Lease> {
        self.by_port.get(&(dp, port))
    }
}

/// The reply's DHCP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Offer,
    Ack,
    Nak,
}

/// What became of one DHCP message from a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reply of `len` bytes is in the buffer.
    Reply { len: usize, kind: Reply },
    /// Not the datapath's to answer: the packet goes on.
    Pass,
    /// Dropped (counted): RELEASE, DECLINE, relayed, malformed, not the port's.
    Consumed,
}

const HDR: usize = 14 + 20 + 8;
/// BOOTP's fixed part and the magic cookie.
const BOOTP: usize = 236;
const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
/// The smallest BOOTP message a reply is padded to (RFC 1542).
const MIN_BOOTP: usize = 300;
/// The buffer a reply needs.
pub const MAX_REPLY_FRAME: usize = HDR + 640;

const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;
const INFORM: u8 = 8;

use crate::answer::dns::be16;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The BOOTP message of a DHCP frame (client to server), or None.
fn bootp(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(*frame.get(14)? & 0x0f) * 4;
    if frame[14] >> 4 != 4 || ihl < 20 || be16(frame, 20)? & 0x3fff != 0 || frame.get(23)? != &17 {
        return None;
    }
    let total = usize::from(be16(frame, 16)?);
    let udp = 14 + ihl;
    if 14 + total > frame.len() || total < ihl + 8 {
        return None;
    }
    if be16(frame, udp)? != 68 || be16(frame, udp + 2)? != 67 {
        return None;
    }
    let ulen = usize::from(be16(frame, udp + 4)?);
    if ulen < 8 + BOOTP + 4 || udp + ulen > 14 + total {
        return None;
    }
    Some(&frame[udp + 8..udp + ulen])
}

/// Answers the DHCP message in `frame` (from the port whose lease is `l`)
/// into `buf` (at least [`MAX_REPLY_FRAME`] bytes).
pub fn answer(l: &Lease, frame: &[u8], buf: &mut [u8]) -> Outcome {
    if buf.len() < MAX_REPLY_FRAME {
        return Outcome::Pass;
    }
    let Some(m) = bootp(frame) else {
        return Outcome::Consumed;
    };
    // A request, Ethernet, from the port's own hardware address, not relayed.
    if m[0] != 1 || m[1] != 1 || m[2] != 6 || m[28..34] != l.mac.to_be_bytes()[2..] {
        return Outcome::Consumed;
    }
    if m[24..28] != [0; 4] || m[BOOTP..BOOTP + 4] != COOKIE {
        return Outcome::Consumed;
    }
    let (mut ty, mut requested, mut server) = (0u8, None, None);
    let mut at = BOOTP + 4;
    while at < m.len() {
        match m[at] {
            0 => at += 1,
            255 => break,
            code => {
                let Some(&len) = m.get(at + 1) else {
                    return Outcome::Consumed;
                };
                let data = match m.get(at + 2..at + 2 + usize::from(len)) {
                    Some(d) => d,
                    None => return Outcome::Consumed,
                };
                match (code, data.len()) {
                    (53, 1) => ty = data[0],
                    (50, 4) => requested = be32(data, 0),
                    (54, 4) => server = be32(data, 0),
                    _ => {}
                }
                at += 2 + usize::from(len);
            }
        }
    }
    let ciaddr = be32(m, 12).unwrap_or(0);
    let reply = match ty {
        DISCOVER => OFFER,
        REQUEST => {
            if server.is_some_and(|s| s != l.server_id) {
                return Outcome::Pass;
            }
            let asked = requested.unwrap_or(ciaddr);
            if asked == l.ip {
                ACK
            } else {
                NAK
            }
        }
        INFORM => ACK,
        _ => return Outcome::Consumed,
    };
    let inform = ty == INFORM;
    let flags = be16(m, 10).unwrap_or(0);
    let broadcast = flags & 0x8000 != 0;

    // BOOTP reply.
    let b = &mut buf[HDR..MAX_REPLY_FRAME];
    b[..BOOTP].fill(0);
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&m[4..8]);
    b[10..12].copy_from_slice(&m[10..12]);
    b[12..16].copy_from_slice(&m[12..16]);
    if reply != NAK && !inform {
        b[16..20].copy_from_slice(&l.ip.to_be_bytes());
    }
    b[28..44].copy_from_slice(&m[28..44]);
    b[BOOTP..BOOTP + 4].copy_from_slice(&COOKIE);
    let mut o = Opts { b, at: BOOTP + 4 };
    o.put(53, &[reply]);
    o.put(54, &l.server_id.to_be_bytes());
    if reply != NAK {
        if !inform {
            o.put(51, &l.lease_time.to_be_bytes());
            o.put(58, &(l.lease_time / 2).to_be_bytes());
            o.put(59, &(l.lease_time / 8 * 7).to_be_bytes());
        }
        o.put(1, &l.netmask.to_be_bytes());
        if l.router != 0 {
            o.put(3, &l.router.to_be_bytes());
        }
        if !l.dns.is_empty() {
            let mut d = [0u8; 32];
            for (i, a) in l.dns.iter().enumerate() {
                d[i * 4..i * 4 + 4].copy_from_slice(&a.to_be_bytes());
            }
            o.put(6, &d[..l.dns.len() * 4]);
        }
        if l.mtu != 0 {
            o.put(26, &l.mtu.to_be_bytes());
        }
        if !l.domain.is_empty() {
            o.put(15, &l.domain);
        }
    }
    o.b[o.at] = 255;
    let mut blen = o.at + 1;
    if blen < MIN_BOOTP {
        o.b[blen..MIN_BOOTP].fill(0);
        blen = MIN_BOOTP;
    }

    // Ethernet, IPv4 and UDP.
    let to_all = broadcast || reply == NAK;
    let dst_mac = if to_all {
        [0xff; 6]
    } else {
        m[28..34].try_into().unwrap_or([0xff; 6])
    };
    let dst_ip = if reply == NAK {
        u32::MAX
    } else if ciaddr != 0 {
        ciaddr
    } else if broadcast {
        u32::MAX
    } else {
        l.ip
    };
    buf[0..6].copy_from_slice(&dst_mac);
    buf[6..12].copy_from_slice(&l.server_mac.to_be_bytes()[2..]);
    buf[12..14].copy_from_slice(&[0x08, 0x00]);
    let ulen = 8 + blen;
    let h = &mut buf[14..34];
    h[0] = 0x45;
    h[1] = 0x10;
    h[2..4].copy_from_slice(&((20 + ulen) as u16).to_be_bytes());
    h[4..8].fill(0);
    h[8] = 64;
    h[9] = 17;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&l.server_id.to_be_bytes());
    h[16..20].copy_from_slice(&dst_ip.to_be_bytes());
    buf[34..36].copy_from_slice(&67u16.to_be_bytes());
    buf[36..38].copy_from_slice(&68u16.to_be_bytes());
    buf[38..40].copy_from_slice(&(ulen as u16).to_be_bytes());
    buf[40..42].fill(0);
    crate::dp::generate::fill_udp4_checksums(&mut buf[..34 + ulen]);
    Outcome::Reply {
        len: HDR + blen,
        kind: match reply {
            OFFER => Reply::Offer,
            ACK => Reply::Ack,
            _ => Reply::Nak,
        },
    }
}

/// Appends DHCP options.
struct Opts<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl Opts<'_> {
    fn put(&mut self, code: u8, data: &[u8]) {
        let n = data.len().min(255);
        if self.at + 2 + n + 1 > self.b.len() {
            return;
        }
        self.b[self.at] = code;
        self.b[self.at + 1] = n as u8;
        self.b[self.at + 2..self.at + 2 + n].copy_from_slice(&data[..n]);
        self.at += 2 + n;
    }
}

#[cfg(test)]
mod tests;
