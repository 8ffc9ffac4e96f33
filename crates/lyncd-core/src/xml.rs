//! XML escaping, shared by every crate that writes XML by hand (SOAP envelopes, Autodiscover
//! documents, SIP bodies), so there is one definition of what is safe to put in a document.

/// Escapes text for an element or a double- or single-quoted attribute: `& < > " '`.
pub fn escape_xml(s: &str) -> String {
    escape(s, true)
}

/// Escapes element text only (`& < >`): what exclusive canonicalization writes, so text built
/// this way is already canonical.
pub fn escape_xml_text(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_xml(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;"
        );
        assert_eq!(escape_xml_text(r#"a<b & "c""#), r#"a&lt;b &amp; "c""#);
        assert_eq!(escape_xml("plain"), "plain");
    }
}
