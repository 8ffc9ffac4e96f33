//! TLS record framing, checked before any byte reaches OpenSSL.
//!
//! sip.md §5.2: every `gssapi-data` value is the base64 of *complete* TLS records, concatenated.
//! Anything else (a truncated record, an SSLv2-style hello, random bytes) is the peer's fault and
//! is refused here with [`TlsDskError::NotTlsRecords`], so OpenSSL never waits for bytes that are
//! not coming and never parses input we already know is malformed.

use crate::TlsDskError;

/// Record header: type (1), version (2), length (2).
pub const RECORD_HEADER_LEN: usize = 5;

/// Largest `TLSCiphertext.length` RFC 5246 §6.2.3 allows: 2^14 plus 2048 bytes of expansion.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// `change_cipher_spec`.
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
/// `alert`.
pub const CONTENT_ALERT: u8 = 21;
/// `handshake`.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// `application_data`.
pub const CONTENT_APPLICATION_DATA: u8 = 23;

/// One TLS record, borrowed from the leg's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// 20 ChangeCipherSpec, 21 alert, 22 handshake, 23 application data.
    pub content_type: u8,
    /// Record-layer version, `0x0301` for TLS 1.0.
    pub version: u16,
    /// The record body (encrypted once the sender changed cipher spec).
    pub fragment: &'a [u8],
}

/// Splits one leg into whole records.
///
/// Fails with [`TlsDskError::NotTlsRecords`] if the input is empty, a content type is not 20–23,
/// a version is not 3.x, a length exceeds [`MAX_RECORD_LEN`], or the last record is cut short.
pub fn split_records(input: &[u8]) -> Result<Vec<Record<'_>>, TlsDskError> {
    if input.is_empty() {
        return Err(TlsDskError::NotTlsRecords);
    }
    let mut records = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let Some((header, body)) = rest.split_first_chunk::<RECORD_HEADER_LEN>() else {
            return Err(TlsDskError::NotTlsRecords);
        };
        let [content_type, major, minor, len_hi, len_lo] = *header;
        if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(&content_type)
            || major != 3
        {
            return Err(TlsDskError::NotTlsRecords);
        }
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len == 0 || len > MAX_RECORD_LEN || len > body.len() {
            return Err(TlsDskError::NotTlsRecords);
        }
        let (fragment, next) = body.split_at(len);
        records.push(Record {
            content_type,
            version: u16::from_be_bytes([major, minor]),
            fragment,
        });
        rest = next;
    }
    Ok(records)
}

/// Checks that `input` is whole TLS records (see [`split_records`]).
pub fn check_records(input: &[u8]) -> Result<(), TlsDskError> {
    split_records(input).map(|_| ())
}

/// Largest plaintext fragment a record may carry (RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT_LEN: usize = 1 << 14;

/// Packs runs of plaintext handshake records into as few records as possible.
///
/// OpenSSL writes every handshake message of a flight in its own record. pidgin-sipe's parser
/// fails on a record that holds only the empty ServerHelloDone (it reports success only after a
/// message with fields), so S1 must carry ServerHello … ServerHelloDone in one record, as
/// Microsoft's servers send it. Coalescing is transparent to any TLS peer: the handshake hash
/// covers messages, not record boundaries. Input that is not whole records is returned as is.
pub fn coalesce_handshake_records(leg: &[u8]) -> Vec<u8> {
    let Ok(records) = split_records(leg) else {
        return leg.to_vec();
    };
    let mut out = Vec::with_capacity(leg.len());
    let mut open: Option<(usize, u16)> = None; // (header offset in out, version)
    for r in records {
        if let (CONTENT_HANDSHAKE, Some((at, version))) = (r.content_type, open) {
            let len = usize::from(u16::from_be_bytes([out[at + 3], out[at + 4]]));
            if version == r.version && len + r.fragment.len() <= MAX_PLAINTEXT_LEN {
                out.extend_from_slice(r.fragment);
                let merged = (len + r.fragment.len()) as u16;
                out[at + 3..at + 5].copy_from_slice(&merged.to_be_bytes());
                continue;
            }
        }
        open = (r.content_type == CONTENT_HANDSHAKE).then_some((out.len(), r.version));
        out.push(r.content_type);
        out.extend_from_slice(&r.version.to_be_bytes());
        out.extend_from_slice(&(r.fragment.len() as u16).to_be_bytes());
        out.extend_from_slice(r.fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_a_handshake_flight_into_one_record() {
        let flight = [
            22, 3, 1, 0, 2, 2, 0xaa, // "ServerHello"
            22, 3, 1, 0, 3, 11, 0xbb, 0xcc, // "Certificate"
            22, 3, 1, 0, 4, 14, 0, 0, 0, // ServerHelloDone
        ];
        let one = coalesce_handshake_records(&flight);
        assert_eq!(one, [22, 3, 1, 0, 9, 2, 0xaa, 11, 0xbb, 0xcc, 14, 0, 0, 0]);
        // CCS + encrypted Finished stay as they are.
        let s2 = [20, 3, 1, 0, 1, 1, 22, 3, 1, 0, 2, 0xde, 0xad];
        assert_eq!(coalesce_handshake_records(&s2), s2);
        // Not records: unchanged.
        assert_eq!(coalesce_handshake_records(b"junk"), b"junk");
    }

    #[test]
    fn accepts_concatenated_records() {
        let input = [
            22, 3, 1, 0, 2, 0xaa, 0xbb, // handshake
            20, 3, 1, 0, 1, 1, // CCS
        ];
        let records = split_records(&input).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].content_type, CONTENT_HANDSHAKE);
        assert_eq!(records[0].version, 0x0301);
        assert_eq!(records[0].fragment, &[0xaa, 0xbb]);
        assert_eq!(records[1].fragment, &[1]);
    }

    #[test]
    fn refuses_what_is_not_records() {
        for bad in [
            &b""[..],
            b"GET / HTTP/1.1\r\n\r\n",
            &[22, 3, 1, 0],              // short header
            &[22, 3, 1, 0, 5, 1, 2],     // body cut short
            &[24, 3, 1, 0, 1, 0],        // unknown content type
            &[22, 2, 0, 0, 1, 0],        // SSL 2 version
            &[22, 3, 1, 0, 0],           // empty record
            &[0x80, 0x2e, 1, 3, 1, 0],   // SSLv2-compatible hello
            &[22, 3, 1, 0x48, 0x01, 0],  // longer than TLS allows
            &[22, 3, 1, 0, 1, 0, 22, 3], // trailing partial header
        ] {
            assert!(
                matches!(split_records(bad), Err(TlsDskError::NotTlsRecords)),
                "{bad:?}"
            );
        }
    }
}
