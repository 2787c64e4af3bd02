//! IPv4 fragments at the edge, by first-fragment tracking (as OVS's `ipf`
//! does for conntrack, without holding packets): the first fragment carries
//! the L4 header, so it is load-balanced, NATed and tracked like any packet;
//! what was decided for it is remembered under (zone, source, destination,
//! protocol, IP identifier), and the later fragments of the datagram, which
//! have no ports, get the same address translation and the same `ct_state`
//! and ports for the stateful flows. A later fragment whose first fragment
//! was not seen cannot be translated: where translation is needed it is
//! dropped and counted (`frag_no_first`).
//!
//! The table is bounded (fixed capacity, reserved up front, keyed hash) and
//! entries live [`FRAG_TIMEOUT_MS`], as Linux's `ipfrag_time`; when it is
//! full and nothing has expired, a first fragment is dropped and counted
//! (`frag_table_full`) rather than letting its datagram arrive half
//! translated. Tiny TCP fragments that could overwrite the TCP header
//! (RFC 1858: offset 8 bytes) are dropped by the parser (`frag_tiny`).

use crate::ct::conntrack::KeyedMap;

/// How long a datagram's fragments are followed after its first one.
pub const FRAG_TIMEOUT_MS: u64 = 30_000;
/// Datagrams followed at once per PMD.
pub const FRAG_CAPACITY: usize = 4096;

/// Which fragments belong together (RFC 791: source, destination,
/// protocol, identification), within a conntrack zone (0 and 1: the edge's
/// translation records on the way in and out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub zone: u32,
    pub src: u32,
    pub dst: u32,
    pub id: u16,
    pub proto: u8,
}

/// What was decided for a datagram's first fragment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragEntry {
    /// The addresses the first fragment left with (translated or not).
    pub src: u32,
    pub dst: u32,
    /// Conntrack's verdict and the first fragment's ports (stateful flows).
    pub ct_state: u8,
    pub ct_mark: u32,
    pub ct_label: u32,
    pub sport: u16,
    pub dport: u16,
    pub(crate) born_ms: u64,
}

impl FragEntry {
    pub fn new(src: u32, dst: u32) -> Self {
        FragEntry {
            src,
            dst,
            ..Default::default()
        }
    }
}

/// Fragment facts of an IPv4 packet in an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub id: u16,
    /// Offset in 8-byte units.
    pub offset: u16,
    pub more: bool,
    /// Where the IPv4 header starts in the frame.
    pub ip: usize,
}

impl Fragment {
    /// The first fragment of a fragmented datagram.
    pub fn is_first(&self) -> bool {
        self.offset == 0 && self.more
    }
}

/// The fragment facts of `frame`, if it is an IPv4 fragment (first, middle
/// or last); `None` for an unfragmented packet or anything else.
#[inline]
pub fn fragment_of(frame: &[u8]) -> Option<Fragment> {
    let ip = if frame.get(12..14)? == [0x81, 0x00] {
        18
    } else {
        14
    };
    let h = frame.get(ip..ip + 20)?;
    if frame.get(ip - 2..ip)? != [0x08, 0x00] || h[0] >> 4 != 4 {
        return None;
    }
    let flags_off = u16::from_be_bytes([h[6], h[7]]);
    let (more, offset) = (flags_off & 0x2000 != 0, flags_off & 0x1fff);
    (more || offset != 0).then_some(Fragment {
        id: u16::from_be_bytes([h[4], h[5]]),
        offset,
        more,
        ip,
    })
}

/// The table of datagrams being followed.
#[derive(Debug)]
pub struct FragTable {
    map: KeyedMap<FragKey, FragEntry>,
    capacity: usize,
    /// First fragments refused because the table was full.
    pub full: u64,
}

impl FragTable {
    pub fn new(capacity: usize) -> Self {
        let mut map = KeyedMap::default();
        map.reserve(capacity);
        FragTable {
            map,
            capacity,
            full: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remembers the decision for a first fragment; false when the table is
    /// full of live entries.
    pub fn record(&mut self, k: FragKey, mut e: FragEntry, now_ms: u64) -> bool {
        if self.map.len() >= self.capacity && !self.map.contains_key(&k) {
            self.expire(now_ms);
            if self.map.len() >= self.capacity {
                self.full += 1;
                return false;
            }
        }
        e.born_ms = now_ms;
        self.map.insert(k, e);
        true
    }

    /// The decision for a later fragment's datagram, while it lives.
    #[inline]
    pub fn lookup(&self, k: &FragKey, now_ms: u64) -> Option<FragEntry> {
        self.map
            .get(k)
            .filter(|e| now_ms.saturating_sub(e.born_ms) <= FRAG_TIMEOUT_MS)
            .copied()
    }

    /// Forgets datagrams older than the timeout (when the table fills, and
    /// from the PMD's housekeeping when it is half full).
    pub fn expire(&mut self, now_ms: u64) {
        self.map
            .retain(|_, e| now_ms.saturating_sub(e.born_ms) <= FRAG_TIMEOUT_MS);
    }

    /// Housekeeping: bounded work, only when the table is half full.
    pub fn housekeep(&mut self, now_ms: u64) {
        if self.map.len() >= self.capacity / 2 {
            self.expire(now_ms);
        }
    }
}

/// Rewrites the IPv4 addresses of a later fragment (no L4 header to touch):
/// the header checksum follows incrementally (RFC 1624).
pub fn rewrite_addresses(frame: &mut [u8], f: &Fragment, src: u32, dst: u32) {
    let ip = f.ip;
    if frame.len() < ip + 20 {
        return;
    }
    let mut sum = u16::from_be_bytes([frame[ip + 10], frame[ip + 11]]);
    for (at, new) in [(ip + 12, src), (ip + 16, dst)] {
        let old = u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
        if old != new {
            frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
            sum = crate::dp::csum::update32(sum, old, new);
        }
    }
    frame[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame with fragment fields `flags_off` and identifier 0x4242.
    fn frag(flags_off: u16) -> Vec<u8> {
        let mut f = crate::dp::packet::tests::udp_frame(1, 2, [10, 0, 0, 1], [10, 0, 0, 2]);
        f[18..20].copy_from_slice(&0x4242u16.to_be_bytes());
        f[20..22].copy_from_slice(&flags_off.to_be_bytes());
        smoltcp::wire::Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f
    }

    #[test]
    fn fragment_fields_are_read_and_whole_packets_are_not_fragments() {
        assert_eq!(fragment_of(&frag(0x4000)), None, "DF, whole");
        assert_eq!(fragment_of(&frag(0)), None);
        let first = fragment_of(&frag(0x2000)).unwrap();
        assert!(first.is_first());
        assert_eq!((first.id, first.offset, first.ip), (0x4242, 0, 14));
        let last = fragment_of(&frag(185)).unwrap();
        assert!(!last.is_first() && !last.more);
        assert_eq!(last.offset, 185);
        for n in 0..40 {
            let _ = fragment_of(&frag(0x2000)[..n]);
        }
    }

    #[test]
    fn a_later_fragment_gets_the_first_ones_addresses_with_a_valid_checksum() {
        let mut f = frag(185);
        let info = fragment_of(&f).unwrap();
        rewrite_addresses(&mut f, &info, 0x0a00_0001, 0x0a01_0002);
        let ip = smoltcp::wire::Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(u32::from(ip.dst_addr()), 0x0a01_0002);
        assert_eq!(ip.frag_offset(), 185 * 8, "fragment fields untouched");
    }

    #[test]
    fn the_table_is_bounded_and_entries_expire() {
        let mut t = FragTable::new(2);
        let k = |id| FragKey {
            zone: 0,
            src: 1,
            dst: 2,
            id,
            proto: 17,
        };
        assert!(t.record(k(1), FragEntry::new(1, 3), 0));
        assert!(t.record(k(2), FragEntry::new(1, 3), 0));
        assert!(
            !t.record(k(3), FragEntry::new(1, 3), 10),
            "full of live entries"
        );
        assert_eq!(t.full, 1);
        assert_eq!(t.lookup(&k(1), 10).map(|e| e.dst), Some(3));
        assert_eq!(t.lookup(&k(1), FRAG_TIMEOUT_MS + 1), None, "expired");
        assert!(t.record(k(3), FragEntry::new(1, 3), FRAG_TIMEOUT_MS + 1));
        assert_eq!(t.len(), 1, "the expired ones went to make room");
    }
}
