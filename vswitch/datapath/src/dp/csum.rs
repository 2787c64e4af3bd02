//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624,
//! eqn. 3): the one place the datapath does one's complement arithmetic.
//! Routing's TTL decrement, NAT's address and port rewrites and a later
//! fragment's address rewrite all update a checksum through [`update16`] /
//! [`update32`], so every other header bit is preserved.

/// Checksum `hc` after a 16-bit word of the data it covers changed from
/// `old` to `new`: HC' = ~(~HC + ~m + m').
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// [`update16`] for a 32-bit word (an IPv4 address), one half at a time.
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
    update16(hc, old as u16, new as u16)
}

/// The checksum of `data` (an odd last byte padded with zero) continuing the
/// partial sum `!init`: `checksum(b, !checksum(a, 0))` covers `a` then `b`,
/// and a region whose checksum field is filled in sums to 0.
pub fn checksum(data: &[u8], init: u16) -> u16 {
    !fold(u64::from(init) + sum(data))
}

/// The one's complement sum of `data` as big-endian 16-bit words, not yet
/// folded: eight bytes per add with an end-around carry (2^16 = 1 modulo
/// 2^16 - 1, so wider words sum to the same folded value).
#[inline]
fn sum(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        acc = s + u64::from(carry);
    }
    let mut tail = 0u64;
    for (k, &b) in chunks.remainder().iter().enumerate() {
        tail |= u64::from(b) << (56 - 8 * k);
    }
    let (s, carry) = acc.overflowing_add(tail);
    // Fold once to 33 bits so the caller's add cannot overflow.
    let s = s + u64::from(carry);
    (s >> 32) + (s & 0xffff_ffff)
}

/// Folds a sum to 16 bits (end-around carries).
#[inline]
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Completes a partial TCP or UDP checksum in an untagged IPv4 or IPv6
/// frame, as the device would have: a sender with checksum offload (a pod's
/// veth) leaves only the pseudo-header's sum in the field, and copy-mode
/// AF_XDP says nothing about it. The field holding exactly that sum is the
/// mark (a complete checksum equal to it by chance is left as it was:
/// completing a correct checksum gives it back). IPv4 fragments are left
/// alone (their checksum covers the whole datagram), and so is IPv6 with
/// extension headers (Linux offloads only when TCP/UDP follows the fixed
/// header). True if the checksum was completed.
pub fn complete_partial(frame: &mut [u8]) -> bool {
    let Some(l4) = partial_l4(frame) else {
        return false;
    };
    let at = l4.start + if l4.proto == 6 { 16 } else { 6 };
    let field = u16::from_be_bytes([frame[at], frame[at + 1]]);
    if l4.proto == 17 && field == 0 {
        return false; // UDP without a checksum (IPv4) or an invalid one (IPv6)
    }
    if fold(l4.pseudo) != field {
        return false;
    }
    let mut c = checksum(&frame[l4.start..l4.end], 0);
    if l4.proto == 17 && c == 0 {
        c = 0xffff; // UDP sends a computed zero as all ones
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Where a frame's TCP or UDP segment lies and its pseudo-header's sum.
struct L4 {
    proto: u8,
    start: usize,
    end: usize,
    pseudo: u64,
}

fn partial_l4(frame: &[u8]) -> Option<L4> {
    let w = |i: usize| u64::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
    let min_l4 = |proto: u8| if proto == 6 { 18 } else { 8 };
    match frame.get(12..14)? {
        [0x08, 0x00] if frame.len() >= 34 && frame[14] >> 4 == 4 => {
            let proto = frame[23];
            if !matches!(proto, 6 | 17) || frame[20] & 0x3f != 0 || frame[21] != 0 {
                return None; // not TCP/UDP, or MF or a fragment offset
            }
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            if ihl < 20 || total < ihl + min_l4(proto) || 14 + total > frame.len() {
                return None;
            }
            let len = (total - ihl) as u64;
            let pseudo = w(26) + w(28) + w(30) + w(32) + u64::from(proto) + len;
            Some(L4 {
                proto,
                start: 14 + ihl,
                end: 14 + total,
                pseudo,
            })
        }
        [0x86, 0xdd] if frame.len() >= 54 && frame[14] >> 4 == 6 => {
            let proto = frame[20];
            let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
            if !matches!(proto, 6 | 17) || len < min_l4(proto) || 54 + len > frame.len() {
                return None;
            }
            let addrs: u64 = (22..54).step_by(2).map(w).sum();
            let pseudo = addrs + u64::from(proto) + len as u64;
            Some(L4 {
                proto,
                start: 54,
                end: 54 + len,
                pseudo,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header of RFC 1071's example family: any header will do, the
    /// property is that an incremental update equals a full recomputation.
    fn header() -> [u8; 20] {
        let mut h = [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 96, 0, 10,
        ];
        let s = checksum(&h, 0);
        h[10..12].copy_from_slice(&s.to_be_bytes());
        h
    }

    #[test]
    fn incremental_updates_equal_a_full_recomputation() {
        let mut h = header();
        assert_eq!(checksum(&h, 0), 0, "a filled-in header sums to 0");
        // The TTL/protocol word, then the destination address, then back.
        for (at, new) in [(8usize, 0x3f11u16), (8, 0x0111), (8, 0xff11)] {
            let old = u16::from_be_bytes([h[at], h[at + 1]]);
            let hc = u16::from_be_bytes([h[10], h[11]]);
            h[at..at + 2].copy_from_slice(&new.to_be_bytes());
            h[10..12].copy_from_slice(&update16(hc, old, new).to_be_bytes());
            assert_eq!(checksum(&h, 0), 0, "after word {at} = {new:#x}");
        }
        for new in [0x0a00_0063u32, 0xffff_ffff, 0, 0x0a60_000a] {
            let old = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
            let hc = u16::from_be_bytes([h[10], h[11]]);
            h[16..20].copy_from_slice(&new.to_be_bytes());
            h[10..12].copy_from_slice(&update32(hc, old, new).to_be_bytes());
            assert_eq!(checksum(&h, 0), 0, "after dst = {new:#x}");
        }
    }

    #[test]
    fn a_sum_continues_over_two_regions_and_pads_an_odd_byte() {
        let (a, b) = ([1u8, 2, 3, 4], [5u8, 6, 7]);
        let whole = [1u8, 2, 3, 4, 5, 6, 7];
        assert_eq!(checksum(&b, !checksum(&a, 0)), checksum(&whole, 0));
        assert_eq!(checksum(&[0xab], 0), checksum(&[0xab, 0], 0));
    }

    /// The byte-pair sum of RFC 1071, the reference the fast sum must equal.
    fn slow(data: &[u8], init: u16) -> u16 {
        let mut sum = u32::from(init);
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn the_fast_sum_equals_rfc_1071_at_every_length_and_value() {
        let mut x = 0x1234_5678u32;
        let mut data = vec![0u8; 9100];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for len in (0..64).chain([1499, 1500, 8999, 9000, 9100]) {
            for init in [0u16, 1, 0xfffe, 0xffff] {
                assert_eq!(
                    checksum(&data[..len], init),
                    slow(&data[..len], init),
                    "len {len}"
                );
            }
        }
        let ones = vec![0xffu8; 9000];
        assert_eq!(checksum(&ones, 0), slow(&ones, 0), "all carries");
    }

    /// A UDP (17) or TCP (6) frame with `payload`, its L4 checksum complete.
    fn l4_frame(proto: u8, payload: &[u8]) -> Vec<u8> {
        let l4len = if proto == 6 { 20 } else { 8 } + payload.len();
        let mut f = vec![0u8; 14 + 20 + l4len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14..34].copy_from_slice(&header());
        f[16..18].copy_from_slice(&((20 + l4len) as u16).to_be_bytes());
        f[20] = 0x40; // DF
        f[23] = proto;
        f[24..26].fill(0);
        let hc = checksum(&f[14..34], 0);
        f[24..26].copy_from_slice(&hc.to_be_bytes());
        f[34..38].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        if proto == 6 {
            f[46] = 0x50;
        } else {
            f[38..40].copy_from_slice(&(l4len as u16).to_be_bytes());
        }
        let start = 34 + if proto == 6 { 20 } else { 8 };
        f[start..].copy_from_slice(payload);
        let at = 34 + if proto == 6 { 16 } else { 6 };
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(l4len as u16).to_be_bytes());
        let c = checksum(&f[34..], !checksum(&pseudo, 0));
        f[at..at + 2].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn a_partial_checksum_is_completed_and_a_complete_one_left_alone() {
        for proto in [6u8, 17] {
            let payload: Vec<u8> = (0..1400u32).map(|i| (i * 7) as u8).collect();
            let good = l4_frame(proto, &payload);
            let at = 34 + if proto == 6 { 16 } else { 6 };
            // What a sender with checksum offload leaves: the pseudo-header sum.
            let mut partial = good.clone();
            let mut pseudo = good[26..34].to_vec();
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&((good.len() - 34) as u16).to_be_bytes());
            let ps = !checksum(&pseudo, 0);
            partial[at..at + 2].copy_from_slice(&ps.to_be_bytes());
            assert!(complete_partial(&mut partial), "proto {proto}");
            assert_eq!(partial, good, "completed as the device would have");
            let mut same = good.clone();
            assert!(
                !complete_partial(&mut same),
                "a complete checksum is not touched"
            );
            assert_eq!(same, good);
            // Fragments, short frames and lying lengths are left alone.
            let mut frag = partial.clone();
            frag[at..at + 2].copy_from_slice(&ps.to_be_bytes());
            frag[20] |= 0x20;
            assert!(!complete_partial(&mut frag));
            let mut lying = frag.clone();
            lying[20] = 0x40;
            lying[16..18].copy_from_slice(&9000u16.to_be_bytes());
            assert!(!complete_partial(&mut lying));
            assert!(!complete_partial(&mut good.clone()[..40]));
        }
    }

    /// An IPv6 TCP or UDP frame (fd00::1 → fd00::2) with its checksum
    /// computed from RFC 8200 §8.1's pseudo-header.
    fn l4_frame6(proto: u8, payload: &[u8]) -> Vec<u8> {
        let l4len = payload.len() + if proto == 6 { 20 } else { 8 };
        let mut f = vec![0u8; 54 + l4len];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&(l4len as u16).to_be_bytes());
        f[20] = proto;
        f[21] = 64;
        f[22..24].copy_from_slice(&[0xfd, 0]);
        f[37] = 1;
        f[38..40].copy_from_slice(&[0xfd, 0]);
        f[53] = 2;
        f[54..58].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        if proto == 6 {
            f[66] = 0x50;
        } else {
            f[58..60].copy_from_slice(&(l4len as u16).to_be_bytes());
        }
        let start = 54 + if proto == 6 { 20 } else { 8 };
        f[start..].copy_from_slice(payload);
        let c = checksum(&f[54..], pseudo6(&f));
        f[54 + if proto == 6 { 16 } else { 6 }..][..2].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn pseudo6(f: &[u8]) -> u16 {
        let mut p = f[22..54].to_vec();
        p.extend_from_slice(&((f.len() - 54) as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, f[20]]);
        !checksum(&p, 0)
    }

    #[test]
    fn an_ipv6_partial_checksum_is_completed_and_extension_headers_left_alone() {
        for proto in [6u8, 17] {
            let payload: Vec<u8> = (0..1401u32).map(|i| (i * 13) as u8).collect();
            let good = l4_frame6(proto, &payload);
            let at = 54 + if proto == 6 { 16 } else { 6 };
            let mut partial = good.clone();
            partial[at..at + 2].copy_from_slice(&pseudo6(&good).to_be_bytes());
            let ps = partial.clone();
            assert!(complete_partial(&mut partial), "proto {proto}");
            assert_eq!(partial, good, "completed as the device would have");
            assert!(!complete_partial(&mut good.clone()), "complete: untouched");
            // A hop-by-hop header first, a lying length, a short frame.
            let mut ext = ps.clone();
            ext[20] = 0;
            assert!(!complete_partial(&mut ext));
            let mut lying = ps.clone();
            lying[18..20].copy_from_slice(&9000u16.to_be_bytes());
            assert!(!complete_partial(&mut lying));
            assert!(!complete_partial(&mut ps[..60].to_vec()));
        }
    }
}
