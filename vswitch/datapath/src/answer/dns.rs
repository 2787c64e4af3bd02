//! DNS answered in the datapath: a switch's records (northd's `SbDns` rows)
//! compiled into per-datapath zones, and the answer to one query built from
//! the received frame into the PMD's scratch buffer.
//!
//! What it answers: a standard query (opcode 0, one question, class IN) for a
//! name the switch has a record for: A, AAAA, SRV, ANY (A + AAAA + SRV), PTR
//! for the records' IPv4 addresses, and NOERROR with no answer for other types
//! or for a name that only has names below it. An alias (CNAME) is answered
//! with its CNAME for every type, followed by the target's records of the
//! type asked when the target is in the same zone (RFC 1034 3.6.2; one level). A name under the switch's
//! `dns_domain` without a record gets an authoritative NXDOMAIN. Everything
//! else (another name, an unparsable message, a fragment, a response, another
//! opcode) is [`Outcome::Pass`]: the query goes on to where it was sent.
//!
//! Names match case-insensitively; the question goes back with the case the
//! client used (resolvers that randomise it check). A compressed question is
//! followed (bounded jumps). EDNS0 is tolerated: the OPT record is ignored and
//! the answer, without one, keeps to 512 bytes (TC set if records had to be
//! left out). Nothing here allocates: lookups borrow the name from a stack
//! buffer.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use switchyard_southbound::pb;

/// Most bytes of a DNS message over UDP without EDNS0 (RFC 1035 4.2.1).
pub const MAX_UDP_MESSAGE: usize = 512;
/// Ethernet + IPv4 (no options) + UDP in front of an answer.
const HDR: usize = 14 + 20 + 8;
/// The buffer an answer needs.
pub const MAX_ANSWER_FRAME: usize = HDR + MAX_UDP_MESSAGE;
/// Compression pointers followed in one name before it counts as malformed.
const MAX_JUMPS: usize = 16;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u16 = 3;

/// One name's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub a: Vec<[u8; 4]>,
    pub aaaa: Vec<[u8; 16]>,
    /// Priority, weight, port and the target in wire form.
    pub srv: Vec<(u16, u16, u16, Box<[u8]>)>,
    pub ttl: u32,
    /// An alias: the canonical name.
    pub cname: Option<Alias>,
}

/// A CNAME's target: lower-case dotted (to look it up) and in wire form.
type Alias = (Box<[u8]>, Box<[u8]>);

/// A PTR answer: the record's name in wire form, and its TTL.
type Ptr = (Box<[u8]>, u32);

/// What one switch answers.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// Lower-case dotted names (no trailing dot).
    names: HashMap<Box<[u8]>, Record>,
    /// `d.c.b.a.in-addr.arpa` -> the record's name in wire form, and its TTL.
    ptr: HashMap<Box<[u8]>, Ptr>,
    /// Names that exist only because names below them do (answered NOERROR).
    parents: HashSet<Box<[u8]>>,
    /// The zone the switch is authoritative for ("": none).
    domain: Box<[u8]>,
}

/// Every switch's zone, by datapath key.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    pub by_dp: HashMap<u32, Zone>,
}

/// A dotted name in wire form (labels with length bytes, a final 0).
fn wire_name(dotted: &str) -> Box<[u8]> {
    let mut w = Vec::with_capacity(dotted.len() + 2);
    for l in dotted.split('.').filter(|l| !l.is_empty()) {
        let l = &l.as_bytes()[..l.len().min(63)];
        w.push(l.len() as u8);
        w.extend_from_slice(l);
    }
    w.push(0);
    w.into_boxed_slice()
}

impl Zones {
    /// Compiles the SB rows: `domains` holds each switch's `dns_domain`.
    pub fn build<'a>(rows: &[pb::SbDns], domains: impl Iterator<Item = (u32, &'a str)>) -> Zones {
        let mut z = Zones::default();
        for (dp, d) in domains {
            if !d.is_empty() {
                z.by_dp.entry(dp).or_default().domain = d.to_ascii_lowercase().into_bytes().into();
            }
        }
        for r in rows {
            let zone = z.by_dp.entry(r.datapath).or_default();
            let name = r.name.to_ascii_lowercase();
            let rec = Record {
                a: r.a.iter().map(|a| a.to_be_bytes()).collect(),
                aaaa: r
                    .aaaa
                    .iter()
                    .filter_map(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                    .collect(),
                srv: r
                    .srv
                    .iter()
                    .map(|s| {
                        (
                            s.priority as u16,
                            s.weight as u16,
                            s.port as u16,
                            wire_name(&s.target),
                        )
                    })
                    .collect(),
                ttl: r.ttl,
                cname: (!r.cname.is_empty()).then(|| {
                    let c = r.cname.to_ascii_lowercase();
                    (c.as_bytes().into(), wire_name(&c))
                }),
            };
            for a in &rec.a {
                let rev = format!("{}.{}.{}.{}.in-addr.arpa", a[3], a[2], a[1], a[0]);
                zone.ptr
                    .entry(rev.into_bytes().into())
                    .or_insert_with(|| (wire_name(&name), r.ttl));
            }
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                zone.parents.insert(parent.as_bytes().into());
                rest = parent;
            }
            zone.names.insert(name.into_bytes().into(), rec);
        }
        z
    }

    pub fn get(&self, dp: u32) -> Option<&Zone> {
        self.by_dp.get(&dp)
    }

    pub fn is_empty(&self) -> bool {
        self.by_dp.is_empty()
    }
}

/// Why a query was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A well-formed query the switch has nothing to say about.
    NotOurs,
    /// Not a DNS query this parser can read (counted, then passed on: the
    /// server it was sent to decides).
    Malformed,
}

/// What became of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer of `len` bytes is in the buffer (`nxdomain`: a name under the
    /// zone that does not exist).
    Answer {
        len: usize,
        nxdomain: bool,
    },
    Pass(Pass),
}

/// A parsed question.
struct Question {
    /// Lower-case dotted name in `text[..text_len]`.
    text: [u8; 256],
    text_len: usize,
    /// The name as the client wrote it, decompressed, in `wire[..wire_len]`.
    wire: [u8; 256],
    wire_len: usize,
    qtype: u16,
}

/// A big-endian u16 at `at`, if the bytes are there (shared with [`crate::answer::dhcp`]).
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads the question name at `at` of message `m`; returns the question and
/// where the name ends in the message.
fn read_name(m: &[u8], mut at: usize, q: &mut Question) -> Result<usize, Pass> {
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = usize::from(*m.get(at).ok_or(Pass::Malformed)?);
        match len & 0xc0 {
            0x00 => {}
            0xc0 => {
                let ptr = usize::from(be16(m, at).ok_or(Pass::Malformed)? & 0x3fff);
                end.get_or_insert(at + 2);
                jumps += 1;
                // A pointer goes backwards (a loop or a forward jump is bogus).
                if jumps > MAX_JUMPS || ptr >= at {
                    return Err(Pass::Malformed);
                }
                at = ptr;
                continue;
            }
            _ => return Err(Pass::Malformed),
        }
        if len == 0 {
            q.wire[q.wire_len] = 0;
            q.wire_len += 1;
            if q.text_len > 0 {
                q.text_len -= 1; // the trailing dot
            }
            return Ok(end.unwrap_or(at + 1));
        }
        let label = m.get(at + 1..at + 1 + len).ok_or(Pass::Malformed)?;
        // 255 bytes of wire name at most, its final 0 included.
        if q.wire_len + 1 + len + 1 > 255 {
            return Err(Pass::Malformed);
        }
        q.wire[q.wire_len] = len as u8;
        q.wire[q.wire_len + 1..q.wire_len + 1 + len].copy_from_slice(label);
        q.wire_len += 1 + len;
        for &b in label {
            // A dot inside a label cannot be one of ours (names are dotted).
            q.text[q.text_len] = if b == b'.' { 0 } else { b.to_ascii_lowercase() };
            q.text_len += 1;
        }
        q.text[q.text_len] = b'.';
        q.text_len += 1;
        at += 1 + len;
    }
}

/// The IPv4/UDP/DNS offsets of a query frame: (IP header, UDP header, message).
fn locate(frame: &[u8]) -> Result<(usize, usize, usize, usize), Pass> {
    if frame.len() < HDR + 12 || frame[12..14] != [0x08, 0x00] {
        return Err(Pass::Malformed);
    }
    let ip = 14;
    let ihl = usize::from(frame[ip] & 0x0f) * 4;
    if frame[ip] >> 4 != 4 || ihl < 20 {
        return Err(Pass::Malformed);
    }
    let total = usize::from(be16(frame, ip + 2).ok_or(Pass::Malformed)?);
    if total < ihl + 8 || ip + total > frame.len() {
        return Err(Pass::Malformed);
    }
    // A fragment cannot be answered (the rest of the query is elsewhere).
    if be16(frame, ip + 6).ok_or(Pass::Malformed)? & 0x3fff != 0 {
        return Err(Pass::NotOurs);
    }
    if frame[ip + 9] != 17 {
        return Err(Pass::NotOurs);
    }
    let udp = ip + ihl;
    let ulen = usize::from(be16(frame, udp + 4).ok_or(Pass::Malformed)?);
    if ulen < 8 + 12 || udp + ulen > ip + total {
        return Err(Pass::Malformed);
    }
    Ok((ip, udp, udp + 8, udp + ulen))
}

/// Answers the query in `frame` (an untagged Ethernet frame) from `zone` into
/// `buf` (at least [`MAX_ANSWER_FRAME`] bytes): addresses, ports and MACs
/// swapped, so the answer goes back out of the port the query came in on.
pub fn answer(zone: &Zone, frame: &[u8], buf: &mut [u8]) -> Outcome {
    match answer_inner(zone, frame, buf) {
        Ok(o) => o,
        Err(p) => Outcome::Pass(p),
    }
}

fn answer_inner(zone: &Zone, frame: &[u8], buf: &mut [u8]) -> Result<Outcome, Pass> {
    if buf.len() < MAX_ANSWER_FRAME {
        return Err(Pass::NotOurs);
    }
    let (ip, udp, dns, end) = locate(frame)?;
    let m = &frame[dns..end];
    let flags = be16(m, 2).ok_or(Pass::Malformed)?;
    let (qd, an, ns) = (be16(m, 4), be16(m, 6), be16(m, 8));
    // A query (QR 0), standard (opcode 0), not truncated, one question.
    if flags & 0x8000 != 0 || flags & 0x7800 != 0 || flags & 0x0200 != 0 {
        return Err(Pass::NotOurs);
    }
    if qd != Some(1) || an != Some(0) || ns != Some(0) {
        return Err(Pass::Malformed);
    }
    let mut q = Question {
        text: [0; 256],
        text_len: 0,
        wire: [0; 256],
        wire_len: 0,
        qtype: 0,
    };
    let at = read_name(m, 12, &mut q)?;
    q.qtype = be16(m, at).ok_or(Pass::Malformed)?;
    if be16(m, at + 2).ok_or(Pass::Malformed)? != CLASS_IN {
        return Err(Pass::NotOurs);
    }
    let name = &q.text[..q.text_len];

    // The message: header, question, answers.
    let msg = &mut buf[HDR..MAX_ANSWER_FRAME];
    msg[0..2].copy_from_slice(&m[0..2]);
    msg[4..6].copy_from_slice(&1u16.to_be_bytes());
    msg[6..12].fill(0);
    msg[12..12 + q.wire_len].copy_from_slice(&q.wire[..q.wire_len]);
    let mut len = 12 + q.wire_len;
    msg[len..len + 2].copy_from_slice(&q.qtype.to_be_bytes());
    msg[len + 2..len + 4].copy_from_slice(&CLASS_IN.to_be_bytes());
    len += 4;
    let mut w = Writer {
        msg,
        len,
        count: 0,
        truncated: false,
        owner: 0xc00c,
    };
    let mut rcode = 0;
    if let Some(r) = zone.names.get(name) {
        match &r.cname {
            Some((target, wire)) => {
                // The target's name starts 12 bytes into this record's rdata:
                // the chased records point back at it.
                let at = w.len + 12;
                w.rr(TYPE_CNAME, r.ttl, &[wire]);
                let chase = zone.names.get(&**target).filter(|t| t.cname.is_none());
                if let (Some(t), false, Ok(ptr)) = (chase, q.qtype == TYPE_CNAME, u16::try_from(at))
                {
                    if !w.truncated && ptr < 0x3fff {
                        w.owner = 0xc000 | ptr;
                        records(&mut w, t, q.qtype);
                    }
                }
            }
            None => records(&mut w, r, q.qtype),
        }
    } else if let Some((target, ttl)) = zone.ptr.get(name).filter(|_| q.qtype == TYPE_PTR) {
        w.rr(TYPE_PTR, *ttl, &[target]);
    } else if zone.parents.contains(name) || (!zone.domain.is_empty() && name == &*zone.domain) {
        // The name exists (names below it do): no data of this type.
    } else if zone.ptr.contains_key(name) {
        // A reverse name of ours asked for another type: no data.
    } else if in_domain(name, &zone.domain) {
        rcode = RCODE_NXDOMAIN;
    } else {
        return Err(Pass::NotOurs);
    }
    let (count, truncated, len) = (w.count, w.truncated, w.len);
    // QR, AA, RD as asked, RA (what this answer stands in for recurses), TC.
    let rd = flags & 0x0100;
    let out_flags = 0x8000 | 0x0400 | rd | 0x0080 | if truncated { 0x0200 } else { 0 } | rcode;
    let msg = &mut buf[HDR..];
    msg[2..4].copy_from_slice(&out_flags.to_be_bytes());
    msg[6..8].copy_from_slice(&count.to_be_bytes());

    // Ethernet, IPv4 (no options) and UDP, swapped.
    buf[0..6].copy_from_slice(&frame[6..12]);
    buf[6..12].copy_from_slice(&frame[0..6]);
    buf[12..14].copy_from_slice(&[0x08, 0x00]);
    let ulen = 8 + len;
    let total = 20 + ulen;
    let h = &mut buf[14..34];
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&frame[ip + 4..ip + 6]);
    h[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    h[8] = 64;
    h[9] = 17;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&frame[ip + 16..ip + 20]);
    h[16..20].copy_from_slice(&frame[ip + 12..ip + 16]);
    let u = &mut buf[34..42];
    u[0..2].copy_from_slice(&frame[udp + 2..udp + 4]);
    u[2..4].copy_from_slice(&frame[udp..udp + 2]);
    u[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
    u[6..8].fill(0);
    crate::dp::generate::fill_udp4_checksums(&mut buf[..34 + ulen]);
    Ok(Outcome::Answer {
        len: HDR + len,
        nxdomain: rcode == RCODE_NXDOMAIN,
    })
}

/// A record's data of type `t` (ANY: all of it).
fn records(w: &mut Writer, r: &Record, t: u16) {
    if t == TYPE_A || t == TYPE_ANY {
        for a in &r.a {
            w.rr(TYPE_A, r.ttl, &[&a[..]]);
        }
    }
    if t == TYPE_AAAA || t == TYPE_ANY {
        for a in &r.aaaa {
            w.rr(TYPE_AAAA, r.ttl, &[&a[..]]);
        }
    }
    if t == TYPE_SRV || t == TYPE_ANY {
        for (p, wt, port, target) in &r.srv {
            let [p0, p1] = p.to_be_bytes();
            let [w0, w1] = wt.to_be_bytes();
            let [o0, o1] = port.to_be_bytes();
            w.rr(TYPE_SRV, r.ttl, &[&[p0, p1, w0, w1, o0, o1], target]);
        }
    }
}

/// Whether `name` is `domain` or below it.
fn in_domain(name: &[u8], domain: &[u8]) -> bool {
    !domain.is_empty()
        && name.len() > domain.len()
        && name.ends_with(domain)
        && name[name.len() - domain.len() - 1] == b'.'
}

/// Appends resource records whose owner is a compression pointer: the
/// question's name, or a CNAME's target.
struct Writer<'a> {
    msg: &'a mut [u8],
    len: usize,
    count: u16,
    truncated: bool,
    owner: u16,
}

impl Writer<'_> {
    fn rr(&mut self, ty: u16, ttl: u32, rdata: &[&[u8]]) {
        let rdlen: usize = rdata.iter().map(|d| d.len()).sum();
        if self.truncated || self.len + 12 + rdlen > MAX_UDP_MESSAGE {
            self.truncated = true;
            return;
        }
        let m = &mut self.msg[self.len..];
        m[0..2].copy_from_slice(&self.owner.to_be_bytes());
        m[2..4].copy_from_slice(&ty.to_be_bytes());
        m[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        m[6..10].copy_from_slice(&ttl.to_be_bytes());
        m[10..12].copy_from_slice(&(rdlen as u16).to_be_bytes());
        let mut at = 12;
        for d in rdata {
            m[at..at + d.len()].copy_from_slice(d);
            at += d.len();
        }
        self.len += at;
        self.count += 1;
    }
}

/// A query type by name (A, AAAA, SRV, PTR, ANY, MX, TXT, NS, SOA, CNAME).
pub fn qtype_of(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => TYPE_A,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => TYPE_PTR,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => TYPE_AAAA,
        "SRV" => TYPE_SRV,
        "ANY" => TYPE_ANY,
        _ => return None,
    })
}

fn qtype_name(t: u16) -> String {
    match t {
        TYPE_A => "A".into(),
        TYPE_CNAME => "CNAME".into(),
        TYPE_PTR => "PTR".into(),
        TYPE_AAAA => "AAAA".into(),
        TYPE_SRV => "SRV".into(),
        TYPE_ANY => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

/// The query frame a traced packet with this key would carry for `name`
/// (slow path only: it allocates).
pub fn query_for(key: &crate::dp::flow::FlowKey, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![0x5e, 0x1f, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&wire_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    let mut f = Vec::with_capacity(HDR + m.len());
    f.extend_from_slice(&key.eth_dst.to_be_bytes()[2..]);
    f.extend_from_slice(&key.eth_src.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + m.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, key.ip_ttl, 17, 0, 0]);
    f.extend_from_slice(&key.ip_src.to_be_bytes());
    f.extend_from_slice(&key.ip_dst.to_be_bytes());
    f.extend_from_slice(&key.l4_src.to_be_bytes());
    f.extend_from_slice(&key.l4_dst.to_be_bytes());
    f.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&m);
    f
}

/// An answer [`answer`] built, in a line: rcode, flags and the records.
pub fn describe(frame: &[u8]) -> String {
    let Some(m) = frame.get(HDR..) else {
        return "?".into();
    };
    let flags = be16(m, 2).unwrap_or(0);
    let count = be16(m, 6).unwrap_or(0);
    let mut at = 12;
    while let Some(&l) = m.get(at) {
        if l == 0 {
            break;
        }
        at += 1 + usize::from(l);
    }
    at += 5;
    let mut recs = Vec::new();
    for _ in 0..count {
        let (Some(ty), Some(ttl_hi), Some(ttl_lo), Some(len)) = (
            be16(m, at + 2),
            be16(m, at + 6),
            be16(m, at + 8),
            be16(m, at + 10),
        ) else {
            break;
        };
        let ttl = u32::from(ttl_hi) << 16 | u32::from(ttl_lo);
        let d = m.get(at + 12..at + 12 + usize::from(len)).unwrap_or(&[]);
        let text = match (ty, d.len()) {
            (TYPE_A, 4) => std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3]).to_string(),
            (TYPE_AAAA, 16) => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap_or([0; 16])).to_string()
            }
            (TYPE_SRV, n) if n > 6 => format!(
                "{} {} {} {}",
                u16::from_be_bytes([d[0], d[1]]),
                u16::from_be_bytes([d[2], d[3]]),
                u16::from_be_bytes([d[4], d[5]]),
                dotted(&d[6..])
            ),
            (TYPE_PTR | TYPE_CNAME, _) => dotted(d),
            _ => format!("{} bytes", d.len()),
        };
        recs.push(format!("{} {text} (ttl {ttl})", qtype_name(ty)));
        at += 12 + usize::from(len);
    }
    let rcode = match flags & 0xf {
        0 => "NOERROR",
        3 => "NXDOMAIN",
        _ => "rcode?",
    };
    let tc = if flags & 0x0200 != 0 {
        ", truncated"
    } else {
        ""
    };
    if recs.is_empty() {
        format!("{rcode}, authoritative, no records{tc}")
    } else {
        format!("{rcode}, authoritative{tc}: {}", recs.join(", "))
    }
}

/// A wire-form name as text.
fn dotted(w: &[u8]) -> String {
    let mut s = String::new();
    let mut at = 0;
    while let Some(&l) = w.get(at) {
        if l == 0 || l & 0xc0 != 0 {
            break;
        }
        let label = w.get(at + 1..at + 1 + usize::from(l)).unwrap_or(&[]);
        s.push_str(&String::from_utf8_lossy(label));
        s.push('.');
        at += 1 + usize::from(l);
    }
    s
}

#[cfg(test)]
mod tests;
