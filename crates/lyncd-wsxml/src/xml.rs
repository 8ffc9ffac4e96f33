//! The one way this crate reads XML, plus the small text helpers every renderer shares.
//!
//! Every parser in the crate goes through [`parse`]: it enforces a size limit, refuses any
//! DOCTYPE or ENTITY declaration *before* a parser sees the text (so entity expansion attacks
//! never start), and parses with roxmltree with DTDs disallowed and a node limit.

use roxmltree::{Document, Node, ParsingOptions};

/// Largest XML document accepted by default (requests, tokens, tickets).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// Largest number of nodes accepted in one document: a 64 KiB SOAP message has a few hundred.
pub const MAX_NODES: u32 = 20_000;

/// Namespace URIs used across the crate.
pub mod ns {
    pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
    pub const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    pub const WSU: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    pub const WSA10: &str = "http://www.w3.org/2005/08/addressing";
    pub const WSA04: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
    pub const WSP: &str = "http://schemas.xmlsoap.org/ws/2004/09/policy";
    pub const WSP15: &str = "http://www.w3.org/ns/ws-policy";
    pub const WST13: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    pub const WST05: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust";
    pub const AUTH: &str = "http://schemas.xmlsoap.org/ws/2006/12/authorization";
    pub const SAML1: &str = "urn:oasis:names:tc:SAML:1.0:assertion";
    pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
    pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
    pub const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
    pub const PSF: &str = "http://schemas.microsoft.com/Passport/SoapServices/SOAPFault";
}

/// Why a document was refused before or during parsing.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the document is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the document contains a DOCTYPE or ENTITY declaration, which is never accepted")]
    Dtd,
    #[error("the document is not UTF-8 text")]
    NotUtf8,
    #[error("the document is not well-formed XML: {0}")]
    Malformed(String),
}

/// Checks size, encoding and the absence of DTDs; returns the text ready for [`parse`].
pub fn checked_text(bytes: &[u8], limit: usize) -> Result<&str, XmlError> {
    if bytes.len() > limit {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    // Checked on bytes, case-insensitively, before any parser runs: a DTD is the carrier of
    // every entity-expansion and external-entity attack, and no message in this protocol has one.
    if contains_ci(bytes, b"<!DOCTYPE") || contains_ci(bytes, b"<!ENTITY") {
        return Err(XmlError::Dtd);
    }
    std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)
}

/// Parses already-checked text with DTDs disallowed and a node limit.
pub fn parse_text(text: &str) -> Result<Document<'_>, XmlError> {
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts).map_err(|e| XmlError::Malformed(e.to_string()))
}

/// The single entry point: size limit, DTD refusal, then a restricted roxmltree parse.
pub fn parse(bytes: &[u8], limit: usize) -> Result<Document<'_>, XmlError> {
    parse_text(checked_text(bytes, limit)?)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Escapes text content (`&`, `<`, `>`).
pub use lyncd_core::escape_xml_text as escape_text;

/// Escapes an attribute value for double quotes.
pub use lyncd_core::escape_xml as escape_attr;

/// Byte-level extraction as SIPE does it (http.md §0.2): first `<Tag` up to the first following
/// `</Tag>`; otherwise the first `:Tag` anywhere, back to the preceding `<`, and up to
/// `</prefix:Tag>`. With `include_tag` false only the content between the tags is returned.
///
/// Our client uses it to re-use fragments verbatim, and our tests use it to prove that what we
/// render survives exactly this treatment.
pub fn extract_raw<'a>(xml: &'a str, tag: &str, include_tag: bool) -> Option<&'a str> {
    let open = format!("<{tag}");
    let (start, close) = if let Some(start) = xml.find(&open) {
        (start, format!("</{tag}>"))
    } else {
        let colon = xml.find(&format!(":{tag}"))?;
        let lt = xml[..colon].rfind('<')?;
        let prefix = &xml[lt + 1..colon];
        (lt, format!("</{prefix}:{tag}>"))
    };
    let end_rel = xml[start..].find(&close)?;
    let end = start + end_rel;
    if include_tag {
        Some(&xml[start..end + close.len()])
    } else {
        let gt = xml[start..end].find('>')?;
        Some(&xml[start + gt + 1..end])
    }
}

/// SIPE copies the Autodiscover user URL into `<wsa:Address>` without escaping (http.md §6.2), so a
/// URL with two query parameters makes the request ill-formed. This escapes every `&` that does
/// not start a character or predefined entity reference, but only in the text of elements whose
/// local name is `Address`: elsewhere a bare `&` stays an error.
pub fn repair_address_ampersands(xml: &str) -> std::borrow::Cow<'_, str> {
    if !xml.contains('&') {
        return std::borrow::Cow::Borrowed(xml);
    }
    let mut out = String::with_capacity(xml.len() + 16);
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        let (before, tag_and_after) = rest.split_at(lt);
        out.push_str(before);
        let Some(gt) = tag_and_after.find('>') else {
            out.push_str(tag_and_after);
            return std::borrow::Cow::Owned(out);
        };
        let tag = &tag_and_after[..=gt];
        out.push_str(tag);
        let after = &tag_and_after[gt + 1..];
        let text_end = after.find('<').unwrap_or(after.len());
        let text = &after[..text_end];
        let name = tag[1..tag.len() - 1]
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == "Address" && !tag.ends_with("/>") {
            out.push_str(&escape_bare_ampersands(text));
        } else {
            out.push_str(text);
        }
        rest = &after[text_end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn escape_bare_ampersands(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = text[i..].find('&') {
        let at = i + pos;
        out.push_str(&text[i..at]);
        if starts_reference(&text[at + 1..]) {
            out.push('&');
        } else {
            out.push_str("&amp;");
        }
        i = at + 1;
    }
    out.push_str(&text[i..]);
    out
}

fn starts_reference(s: &str) -> bool {
    let Some(semi) = s.find(';') else {
        return false;
    };
    let name = &s[..semi];
    match name {
        "amp" | "lt" | "gt" | "quot" | "apos" => true,
        _ => {
            if let Some(hex) = name.strip_prefix("#x") {
                !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
            } else if let Some(dec) = name.strip_prefix('#') {
                !dec.is_empty() && dec.chars().all(|c| c.is_ascii_digit())
            } else {
                false
            }
        }
    }
}

/// True when `n` is an element named `local` in one of `namespaces`.
pub(crate) fn is(n: &Node<'_, '_>, namespaces: &[&str], local: &str) -> bool {
    n.is_element()
        && n.tag_name().name() == local
        && namespaces.contains(&n.tag_name().namespace().unwrap_or(""))
}

/// First child element named `local` in one of `namespaces`.
pub(crate) fn child<'a, 'i>(
    n: Node<'a, 'i>,
    namespaces: &[&str],
    local: &str,
) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(c, namespaces, local))
}

/// Trimmed text content of an element (concatenated text children).
pub(crate) fn text_of(n: Node<'_, '_>) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Base64 decoding that skips whitespace and line breaks, as WS-Trust peers wrap long values.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

pub(crate) fn b64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype_and_entities_before_parsing() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert_eq!(parse(laughs, DEFAULT_MAX_BYTES).unwrap_err(), XmlError::Dtd);
        assert_eq!(
            parse(b"<a><!entity x 'y'></a>", DEFAULT_MAX_BYTES).unwrap_err(),
            XmlError::Dtd
        );
    }

    #[test]
    fn refuses_oversized_and_malformed() {
        let big = vec![b' '; DEFAULT_MAX_BYTES + 1];
        assert!(matches!(
            parse(&big, DEFAULT_MAX_BYTES),
            Err(XmlError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(b"<a><b></a>", DEFAULT_MAX_BYTES),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(
            parse(b"<a>\xff</a>", DEFAULT_MAX_BYTES).unwrap_err(),
            XmlError::NotUtf8
        );
    }

    #[test]
    fn refuses_too_many_nodes() {
        let mut s = String::from("<a>");
        for _ in 0..(MAX_NODES as usize) {
            s.push_str("<b/>");
        }
        s.push_str("</a>");
        assert!(matches!(
            parse(s.as_bytes(), usize::MAX),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn extracts_like_sipe() {
        let xml = r#"<r><wst:Lifetime><wsu:Created>c</wsu:Created></wst:Lifetime><EncryptedData a="1"><x/></EncryptedData></r>"#;
        assert_eq!(
            extract_raw(xml, "Lifetime", false),
            Some("<wsu:Created>c</wsu:Created>")
        );
        assert_eq!(
            extract_raw(xml, "EncryptedData", true),
            Some(r#"<EncryptedData a="1"><x/></EncryptedData>"#)
        );
        assert_eq!(extract_raw(xml, "Missing", true), None);
    }

    #[test]
    fn repairs_only_bare_ampersands_in_addresses() {
        let xml = "<a:Address>https://h/x?a=1&b=2&amp;c=&#38;</a:Address><t>&amp;</t>";
        assert_eq!(
            repair_address_ampersands(xml),
            "<a:Address>https://h/x?a=1&amp;b=2&amp;c=&#38;</a:Address><t>&amp;</t>"
        );
        // A bare & outside an Address stays, so the document is still refused.
        assert!(repair_address_ampersands("<t>a&b</t>").contains("a&b"));
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_text("a&<>\"'"), "a&amp;&lt;&gt;\"'");
        assert_eq!(escape_attr("a&<>\"'"), "a&amp;&lt;&gt;&quot;&apos;");
    }
}
