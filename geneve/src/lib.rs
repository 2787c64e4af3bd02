//! RFC 8926 Geneve: the base header and its TLV options as zero-copy views over
//! bytes, in smoltcp's style, and the OVN metadata option that carries logical
//! ingress/egress port keys. No I/O and no `unsafe`.
//!
//! Contract: after [`Header::new_checked`] succeeds, no accessor panics.
#![forbid(unsafe_code)]

use thiserror::Error;

pub mod tunnel;

/// UDP destination port assigned to Geneve.
pub const UDP_PORT: u16 = 6081;
/// Option class used by OVN for its metadata option.
pub const OVN_OPTION_CLASS: u16 = 0x0102;
/// Option type of OVN's logical-port metadata option.
pub const OVN_OPTION_TYPE: u8 = 0x80;

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VER_OPTLEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    pub const VNI: Field = 4..7;
    pub const HEADER_LEN: usize = 8;
}

/// Errors from parsing a Geneve header.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    #[error("geneve header truncated: {0} bytes, need at least {1}")]
    Truncated(usize, usize),
    #[error("geneve version {0} is not supported")]
    Version(u8),
    #[error("geneve option at offset {0} runs past the options area")]
    OptionOverrun(usize),
    #[error("unknown critical geneve option class 0x{0:04x} type 0x{1:02x}")]
    UnknownCritical(u16, u8),
}

/// A read/write view of a Geneve header.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Wraps a buffer, checking that the fixed header and options fit.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        let len = h.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(Error::Truncated(len, field::HEADER_LEN));
        }
        if h.version() != 0 {
            return Err(Error::Version(h.version()));
        }
        if len < h.header_len() {
            return Err(Error::Truncated(len, h.header_len()));
        }
        Ok(h)
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_OPTLEN] >> 6
    }
    /// Length of the options in bytes.
    pub fn options_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_OPTLEN] & 0x3f) * 4
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.options_len()
    }
    /// The O (control packet) bit.
    pub fn oam(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & 0x80 != 0
    }
    /// The C (critical options present) bit.
    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & 0x40 != 0
    }
    pub fn protocol(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PROTOCOL];
        u16::from_be_bytes([b[0], b[1]])
    }
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }
    /// Iterates the TLV options.
    pub fn options(&self) -> Options<'_> {
        let b = self.buffer.as_ref();
        Options {
            data: &b[field::HEADER_LEN..self.header_len().min(b.len())],
            offset: 0,
        }
    }
    /// The OVN metadata option: (ingress port key, egress port key). Every
    /// option is looked at: a critical option (type bit 0x80) other than
    /// OVN's metadata, wherever it stands, refuses the whole packet
    /// (RFC 8926 section 3.5: a tunnel endpoint must drop what it cannot
    /// interpret); non-critical unknown options are skipped.
    pub fn ovn_metadata(&self) -> Result<Option<(u16, u16)>, Error> {
        // What every OVN-style chassis sends: the one option and nothing
        // else (new_checked guaranteed the header length is in the buffer).
        let b = self.buffer.as_ref();
        if self.options_len() == 8 {
            let o = &b[field::HEADER_LEN..field::HEADER_LEN + 8];
            if o[0..2] == OVN_OPTION_CLASS.to_be_bytes()
                && o[2] == OVN_OPTION_TYPE
                && o[3] & 0x1f == 1
            {
                let v = u32::from_be_bytes([o[4], o[5], o[6], o[7]]);
                return Ok(Some((((v >> 16) & 0x7fff) as u16, (v & 0xffff) as u16)));
            }
        }
        let mut found = None;
        for opt in self.options() {
            let opt = opt?;
            if opt.class == OVN_OPTION_CLASS && opt.kind == OVN_OPTION_TYPE && opt.data.len() == 4 {
                let v = u32::from_be_bytes([opt.data[0], opt.data[1], opt.data[2], opt.data[3]]);
                found.get_or_insert((((v >> 16) & 0x7fff) as u16, (v & 0xffff) as u16));
                continue;
            }
            if opt.kind & 0x80 != 0 {
                return Err(Error::UnknownCritical(opt.class, opt.kind));
            }
        }
        Ok(found)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes a header with only the OVN option (12 bytes of options area incl. TLV).
    pub fn emit_ovn(&mut self, vni: u32, ingress: u16, egress: u16) {
        let b = self.buffer.as_mut();
        b[0] = 2; // version 0, 2 words of options
        b[1] = 0x40; // C: a critical option (OVN's type 0x80) is present
        b[2..4].copy_from_slice(&0x6558u16.to_be_bytes());
        b[4..7].copy_from_slice(&vni.to_be_bytes()[1..]);
        b[7] = 0;
        b[8..10].copy_from_slice(&OVN_OPTION_CLASS.to_be_bytes());
        b[10] = OVN_OPTION_TYPE;
        b[11] = 1; // one 4-byte word of data
        let v = (u32::from(ingress & 0x7fff) << 16) | u32::from(egress);
        b[12..16].copy_from_slice(&v.to_be_bytes());
    }
}

/// One TLV option.
#[derive(Debug, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    pub class: u16,
    pub kind: u8,
    pub data: &'a [u8],
}

/// Iterator over TLV options; yields an error and stops on a malformed option.
#[derive(Debug)]
pub struct Options<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<GeneveOption<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.offset..];
        if rest.len() < 4 {
            let at = self.offset;
            self.offset = self.data.len();
            return Some(Err(Error::OptionOverrun(at)));
        }
        let len = usize::from(rest[3] & 0x1f) * 4;
        if rest.len() < 4 + len {
            let at = self.offset;
            self.offset = self.data.len();
            return Some(Err(Error::OptionOverrun(at)));
        }
        self.offset += 4 + len;
        Some(Ok(GeneveOption {
            class: u16::from_be_bytes([rest[0], rest[1]]),
            kind: rest[2],
            data: &rest[4..4 + len],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Geneve header with OVN's option: VNI 5, ingress port 1, egress port 3.
    static BYTES: [u8; 16] = [
        0x02, 0x40, 0x65, 0x58, 0x00, 0x00, 0x05, 0x00, 0x01, 0x02, 0x80, 0x01, 0x00, 0x01, 0x00,
        0x03,
    ];

    #[test]
    fn deconstruct() {
        let h = Header::new_checked(&BYTES[..]).unwrap();
        assert_eq!(h.version(), 0);
        assert_eq!(h.header_len(), 16);
        assert_eq!(h.protocol(), 0x6558);
        assert_eq!(h.vni(), 5);
        assert!(!h.oam() && h.critical());
        assert_eq!(h.ovn_metadata(), Ok(Some((1, 3))));
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 16];
        Header::new_unchecked(&mut buf[..]).emit_ovn(5, 1, 3);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Header::new_checked(&BYTES[..7]).unwrap_err(),
            Error::Truncated(7, 8)
        );
        assert_eq!(
            Header::new_checked(&BYTES[..12]).unwrap_err(),
            Error::Truncated(12, 16)
        );
        let mut v = BYTES;
        v[0] = 0x42;
        assert_eq!(Header::new_checked(&v[..]).unwrap_err(), Error::Version(1));
        let mut v = BYTES;
        v[11] = 5; // option claims 20 bytes of data
        let h = Header::new_checked(&v[..]).unwrap();
        assert_eq!(h.ovn_metadata(), Err(Error::OptionOverrun(0)));
        let mut v = BYTES;
        v[8] = 0x77; // unknown class, critical type
        let h = Header::new_checked(&v[..]).unwrap();
        assert_eq!(h.ovn_metadata(), Err(Error::UnknownCritical(0x7702, 0x80)));
    }

    /// BYTES with a second 4-byte option of (class, type) after OVN's.
    fn with_second_option(class: u16, kind: u8) -> Vec<u8> {
        let mut v = BYTES.to_vec();
        v[0] = 4; // 4 words of options
        v.extend_from_slice(&class.to_be_bytes());
        v.extend_from_slice(&[kind, 1, 0xde, 0xad, 0xbe, 0xef]);
        v
    }

    #[test]
    fn every_option_is_checked_for_the_critical_bit() {
        // A critical option the OVN option does not hide, whatever its order.
        let v = with_second_option(0x0103, 0x81);
        let h = Header::new_checked(&v[..]).unwrap();
        assert_eq!(h.ovn_metadata(), Err(Error::UnknownCritical(0x0103, 0x81)));
        // OVN's own class with a type we do not know, critical: refused too.
        let v = with_second_option(OVN_OPTION_CLASS, 0x81);
        let h = Header::new_checked(&v[..]).unwrap();
        assert!(h.ovn_metadata().is_err());
        // A non-critical unknown option is skipped.
        let v = with_second_option(0x0103, 0x01);
        let h = Header::new_checked(&v[..]).unwrap();
        assert_eq!(h.ovn_metadata(), Ok(Some((1, 3))));
    }
}
