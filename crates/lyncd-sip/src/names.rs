//! Well-known header names, classified once when a header line is parsed or
//! built, so that the many lookups a registrar and the signature buffer make
//! compare one byte per header instead of whole names (the hyper
//! `StandardHeader` idea). Compact forms get the id of their long name, which
//! is how `header("Call-ID")` finds `i:` and `header("i")` finds `Call-ID:`.

/// Not a well-known name: compare the text.
pub(crate) const OTHER: u8 = 0;
pub(crate) const CALL_ID: u8 = 1;
pub(crate) const FROM: u8 = 2;
pub(crate) const TO: u8 = 3;
pub(crate) const VIA: u8 = 4;
pub(crate) const CONTACT: u8 = 5;
pub(crate) const CONTENT_LENGTH: u8 = 6;
pub(crate) const CONTENT_TYPE: u8 = 7;
pub(crate) const SUPPORTED: u8 = 8;
pub(crate) const CONTENT_ENCODING: u8 = 9;
pub(crate) const SUBJECT: u8 = 10;
pub(crate) const EVENT: u8 = 11;
pub(crate) const REFER_TO: u8 = 12;
pub(crate) const ALLOW_EVENTS: u8 = 13;
pub(crate) const CSEQ: u8 = 14;
pub(crate) const EXPIRES: u8 = 15;
pub(crate) const AUTHORIZATION: u8 = 16;
pub(crate) const WWW_AUTHENTICATE: u8 = 17;
pub(crate) const AUTHENTICATION_INFO: u8 = 18;
pub(crate) const P_ASSERTED_IDENTITY: u8 = 19;
pub(crate) const P_PREFERRED_IDENTITY: u8 = 20;

/// Id of a header name (case-insensitive). Dispatches on length first, so an
/// unknown name costs one comparison of lengths at most.
pub(crate) fn header_id(name: &[u8]) -> u8 {
    let Some(&first) = name.first() else {
        return OTHER;
    };
    let first = first.to_ascii_lowercase();
    let candidates: &[(&[u8], u8)] = match name.len() {
        // RFC 3261 7.3.3 compact forms, plus RFC 3265's `o` (Event) and `u`
        // (Allow-Events) and RFC 3515's `r` (Refer-To).
        1 => {
            return match first {
                b'i' => CALL_ID,
                b'f' => FROM,
                b't' => TO,
                b'v' => VIA,
                b'm' => CONTACT,
                b'l' => CONTENT_LENGTH,
                b'c' => CONTENT_TYPE,
                b'k' => SUPPORTED,
                b'e' => CONTENT_ENCODING,
                b's' => SUBJECT,
                b'o' => EVENT,
                b'r' => REFER_TO,
                b'u' => ALLOW_EVENTS,
                _ => OTHER,
            };
        }
        2 => &[(b"to", TO)],
        3 => &[(b"via", VIA)],
        4 => &[(b"from", FROM), (b"cseq", CSEQ)],
        5 => &[(b"event", EVENT)],
        7 => &[
            (b"call-id", CALL_ID),
            (b"contact", CONTACT),
            (b"expires", EXPIRES),
            (b"subject", SUBJECT),
        ],
        8 => &[(b"refer-to", REFER_TO)],
        9 => &[(b"supported", SUPPORTED)],
        12 => &[
            (b"content-type", CONTENT_TYPE),
            (b"allow-events", ALLOW_EVENTS),
        ],
        13 => &[(b"authorization", AUTHORIZATION)],
        14 => &[(b"content-length", CONTENT_LENGTH)],
        16 => &[
            (b"content-encoding", CONTENT_ENCODING),
            (b"www-authenticate", WWW_AUTHENTICATE),
        ],
        19 => &[
            (b"authentication-info", AUTHENTICATION_INFO),
            (b"p-asserted-identity", P_ASSERTED_IDENTITY),
        ],
        20 => &[(b"p-preferred-identity", P_PREFERRED_IDENTITY)],
        _ => return OTHER,
    };
    // Candidates are lower case; testing the first byte first skips most
    // full comparisons.
    candidates
        .iter()
        .find(|(n, _)| n.first() == Some(&first) && name.eq_ignore_ascii_case(n))
        .map_or(OTHER, |&(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(header_id(b"Call-ID"), CALL_ID);
        assert_eq!(header_id(b"I"), CALL_ID);
        assert_eq!(header_id(b"CONTENT-LENGTH"), CONTENT_LENGTH);
        assert_eq!(header_id(b"l"), CONTENT_LENGTH);
        assert_eq!(header_id(b"P-Asserted-Identity"), P_ASSERTED_IDENTITY);
        assert_eq!(header_id(b"ms-keep-alive"), OTHER);
        assert_eq!(header_id(b"x"), OTHER);
        assert_eq!(header_id(b""), OTHER);
    }
}
