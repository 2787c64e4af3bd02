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
    let mut sum = u32::from(init);
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
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
}
