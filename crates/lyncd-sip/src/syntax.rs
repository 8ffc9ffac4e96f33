//! Small lexical helpers shared by the parser, the builder and the header-value parsers.

/// RFC 3261 `token` characters (25.1): what method names, header names and
/// parameter names are made of. A table, because the parser tests every byte
/// of every header name.
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// SIP linear white space inside one line (folding is rejected by the parser).
/// Byte-wise: every header value goes through here.
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |i| i + 1);
    // Both ends sit next to ASCII white space or the string's ends, so they
    // are char boundaries.
    s.get(start..end).unwrap_or("")
}

/// Removes one pair of surrounding double quotes, if present.
pub(crate) fn unquote(s: &str) -> &str {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner,
        None => s,
    }
}

/// Splits a header value at top-level commas: commas inside double quotes or
/// inside `<…>` do not count. Used for Contact and P-Asserted-Identity, whose
/// values may hold several name-addrs and whose parameters (`methods="INVITE, …"`,
/// `gruu="sip:…;gruu"`) contain commas and semicolons.
pub(crate) fn split_top_level(value: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let mut in_quotes = false;
        let mut in_angle = false;
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b'<' if !in_quotes => in_angle = true,
                b'>' if !in_quotes => in_angle = false,
                _ if b == sep && !in_quotes && !in_angle => {
                    pos = i + 1;
                    return value.get(start..i);
                }
                _ => {}
            }
            i += 1;
        }
        done = true;
        value.get(start..)
    })
}

/// Drops CR and LF: builders treat them as a programming error and must not let
/// a caller's value end a header line early (header injection).
pub(crate) fn strip_crlf(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        std::borrow::Cow::Owned(s.chars().filter(|&c| c != '\r' && c != '\n').collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Keeps only token characters: for method and header names given to builders.
pub(crate) fn keep_token(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(is_token_byte) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.chars()
                .filter(|&c| c.is_ascii() && is_token_byte(c as u8))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v = r#"<sip:a;x=1>;methods="INVITE, MESSAGE";gruu="sip:a;gruu", <tel:+1>"#;
        let parts: Vec<_> = split_top_level(v, b',').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], " <tel:+1>");
        let params: Vec<_> = split_top_level(parts[0], b';').collect();
        assert_eq!(
            params,
            [
                "<sip:a;x=1>",
                r#"methods="INVITE, MESSAGE""#,
                r#"gruu="sip:a;gruu""#
            ]
        );
    }

    #[test]
    fn sanitizers() {
        assert_eq!(strip_crlf("a\r\nb"), "ab");
        assert_eq!(keep_token("Call-ID: x\r\n"), "Call-IDx");
        assert_eq!(unquote("\"x\""), "x");
        assert_eq!(unquote("\""), "\"");
    }
}
