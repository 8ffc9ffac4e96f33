//! epid → `+sip.instance` GUID (MS-SIPRE; sip.md §2.1).
//!
//! A server doing endpoint binding (MS-SIPAE 3.3.5.2, sip.md §5.9) checks that
//! the Contact's instance id is the one derived from the From `epid`.

use std::fmt::Write;

use sha1::{Digest, Sha1};

/// The namespace GUID `fcacfb03-8a73-46ef-91b1-e5ebeeaba4fe` as Windows lays
/// it out in memory (first three fields little-endian). The hash input is these
/// bytes, not the textual GUID.
const NAMESPACE: [u8; 16] = [
    0x03, 0xfb, 0xac, 0xfc, 0x73, 0x8a, 0xef, 0x46, 0x91, 0xb1, 0xe5, 0xeb, 0xee, 0xab, 0xa4, 0xfe,
];

/// Derives the lower-case instance GUID for `epid`: a version-5 style UUID
/// from SHA-1(namespace ‖ epid), whose first three fields are read
/// little-endian (again the Windows GUID layout).
pub fn epid_to_instance(epid: &str) -> String {
    let digest = Sha1::new()
        .chain_update(NAMESPACE)
        .chain_update(epid.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let d2 = u16::from_le_bytes([b[4], b[5]]);
    let d3 = (u16::from_le_bytes([b[6], b[7]]) & 0x0fff) | 0x5000;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = format!("{d1:08x}-{d2:04x}-{d3:04x}-");
    for (i, byte) in b[8..].iter().enumerate() {
        if i == 2 {
            out.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_sipre_vector() {
        assert_eq!(
            epid_to_instance("01010101"),
            "4b1682a8-f968-5701-83fc-7c6741dc6697"
        );
    }

    #[test]
    fn sip_md_example() {
        assert_eq!(
            epid_to_instance("8f2c41d07ab3"),
            "b5abc5c8-14ab-565b-9809-c28e775d4534"
        );
    }
}
