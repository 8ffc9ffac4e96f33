//! `name-addr` / `addr-spec` values of From, To, Contact and P-Asserted-Identity.
//!
//! Only split, never normalised: the signature buffer (sip.md §7.1) takes the
//! URI and tag exactly as sent, and SIPE finds "its" Contact by a
//! case-sensitive substring search, so we echo what we received.

use crate::message::FieldError;
use crate::syntax::{split_top_level, trim_ws, unquote};

/// One parsed address: `"Name" <sip:user@host;uri-param>;tag=…;epid=…`
/// or the bracket-less `sip:user@host;tag=…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The whole value, trimmed.
    pub raw: &'a str,
    /// Inside `<…>`, or up to the first `;` when there are no brackets
    /// (RFC 3261 20.10: then every `;` parameter belongs to the header).
    /// Keeps the scheme (`sip:`).
    pub uri: &'a str,
    /// Header parameters after the address, starting with `;`, or empty.
    pub params: &'a str,
}

const INVALID: FieldError = FieldError::Invalid("name-addr");

impl<'a> NameAddr<'a> {
    pub fn parse(raw: &'a str) -> Result<NameAddr<'a>, FieldError> {
        let raw = trim_ws(raw);
        if raw.is_empty() {
            return Err(INVALID);
        }
        // A quoted display name may itself contain '<', ';' or '>'.
        let search_from = if raw.starts_with('"') {
            closing_quote(raw).ok_or(INVALID)? + 1
        } else {
            0
        };
        match raw[search_from..].find('<') {
            Some(rel) => {
                let lt = search_from + rel;
                let gt = lt + raw[lt..].find('>').ok_or(INVALID)?;
                let uri = &raw[lt + 1..gt];
                let after = raw[gt + 1..].trim_start_matches([' ', '\t']);
                if uri.is_empty() || !(after.is_empty() || after.starts_with(';')) {
                    return Err(INVALID);
                }
                Ok(NameAddr {
                    raw,
                    uri,
                    params: after,
                })
            }
            None if search_from > 0 => Err(INVALID),
            None => {
                let (uri, params) = match raw.find(';') {
                    Some(i) => (trim_ws(&raw[..i]), &raw[i..]),
                    None => (raw, ""),
                };
                if uri.is_empty() || uri.contains([' ', '\t']) {
                    return Err(INVALID);
                }
                Ok(NameAddr { raw, uri, params })
            }
        }
    }

    /// Header parameter by name (case-insensitive). Surrounding quotes are
    /// removed, so `+sip.instance="<urn:uuid:…>"` gives `<urn:uuid:…>`; a
    /// parameter without `=` gives `Some("")`.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.param_pairs()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All header parameters in order, values unquoted.
    pub fn param_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        split_top_level(self.params, b';').filter_map(|p| {
            let p = trim_ws(p);
            if p.is_empty() {
                return None;
            }
            Some(match p.split_once('=') {
                Some((n, v)) => (trim_ws(n), unquote(trim_ws(v))),
                None => (p, ""),
            })
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag")
    }

    /// MS-SIPRE endpoint id on From/To.
    pub fn epid(&self) -> Option<&'a str> {
        self.param("epid")
    }

    /// The GUID of a `+sip.instance="<urn:uuid:GUID>"` Contact parameter,
    /// as sent (compare case-insensitively against
    /// [`epid_to_instance`](crate::epid_to_instance)).
    pub fn sip_instance(&self) -> Option<&'a str> {
        let v = self.param("+sip.instance")?;
        let v = v
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or(v);
        let prefix = "urn:uuid:";
        match v.get(..prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(prefix) => v.get(prefix.len()..),
            _ => Some(v),
        }
    }

    /// Text before the `<`, unquoted; empty for a bare addr-spec.
    pub fn display_name(&self) -> &'a str {
        // `uri` is a sub-slice of `raw`; when it sits right after a '<', the
        // text before that bracket is the display name.
        let uri_at = (self.uri.as_ptr() as usize).wrapping_sub(self.raw.as_ptr() as usize);
        match self.raw.get(..uri_at).and_then(|s| s.strip_suffix('<')) {
            Some(before) => unquote(trim_ws(before)),
            None => "",
        }
    }

    /// `alice@contoso.com` from `sip:alice@contoso.com;transport=tls`: the
    /// scheme, URI parameters and URI headers removed. A port, if present, is
    /// kept. Used to compare addresses of record.
    pub fn uri_user_host(&self) -> &'a str {
        let uri = self.uri;
        let rest = match uri.split_once(':') {
            Some((scheme, rest))
                if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                rest
            }
            _ => uri,
        };
        let end = rest.find([';', '?']).unwrap_or(rest.len());
        &rest[..end]
    }
}

/// Index of the quote that closes the quoted string starting at byte 0.
fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipe_from() {
        let a =
            NameAddr::parse("<sip:alice@contoso.com>;tag=5634129346;epid=c97532c1946f").unwrap();
        assert_eq!(a.uri, "sip:alice@contoso.com");
        assert_eq!(a.tag(), Some("5634129346"));
        assert_eq!(a.epid(), Some("c97532c1946f"));
        assert_eq!(a.uri_user_host(), "alice@contoso.com");
        assert_eq!(a.display_name(), "");
    }

    #[test]
    fn display_name_with_specials() {
        let a = NameAddr::parse(r#""Bob <x>; \"B\"" <SIP:bob@contoso.com;user=phone> ;TAG="7a""#)
            .unwrap();
        assert_eq!(a.uri, "SIP:bob@contoso.com;user=phone");
        assert_eq!(a.params, ";TAG=\"7a\"");
        assert_eq!(a.tag(), Some("7a"));
        assert_eq!(a.uri_user_host(), "bob@contoso.com");
        assert_eq!(a.display_name(), r#"Bob <x>; \"B\""#);
    }

    #[test]
    fn bare_addr_spec() {
        let a = NameAddr::parse("sip:bob@contoso.com;tag=abc;lr").unwrap();
        assert_eq!(a.uri, "sip:bob@contoso.com");
        assert_eq!(a.params, ";tag=abc;lr");
        assert_eq!(a.param("lr"), Some(""));
        assert_eq!(a.param("nope"), None);
        let t = NameAddr::parse("tel:+14255550100").unwrap();
        assert_eq!(t.uri, "tel:+14255550100");
        assert_eq!(t.uri_user_host(), "+14255550100");
    }

    #[test]
    fn contact_with_quoted_semicolons() {
        let c = NameAddr::parse(concat!(
            r#"<sip:192.0.2.10:50123;transport=tls;ms-opaque=d3470f2e1d>;methods="INVITE, MESSAGE";"#,
            r#"proxy=replace;+sip.instance="<urn:uuid:b5abc5c8-14ab-565b-9809-c28e775d4534>";"#,
            r#"expires=7200;gruu="sip:alice@contoso.com;opaque=user:epid:2Ew0tQ7mVFeKQS9-HG2LkA;gruu""#
        ))
        .unwrap();
        assert_eq!(
            c.sip_instance(),
            Some("b5abc5c8-14ab-565b-9809-c28e775d4534")
        );
        assert_eq!(c.param("methods"), Some("INVITE, MESSAGE"));
        assert_eq!(
            c.param("gruu"),
            Some("sip:alice@contoso.com;opaque=user:epid:2Ew0tQ7mVFeKQS9-HG2LkA;gruu")
        );
        assert_eq!(c.param("EXPIRES"), Some("7200"));
        assert_eq!(c.uri_user_host(), "192.0.2.10:50123");
    }

    #[test]
    fn invalid_forms() {
        for bad in [
            "",
            "<sip:a",
            "<>",
            "\"unterminated <sip:a>",
            "<sip:a> junk",
            "Alice sip:a",
            "\"x\" sip:a",
        ] {
            assert_eq!(NameAddr::parse(bad), Err(INVALID), "{bad:?}");
        }
    }
}
