//! Byte-level XML extraction with pidgin-sipe's semantics (`protocol/http.md` §0.2).
//!
//! The token fragments a Lync client forwards (IdP `Lifetime` and `EncryptedData`, the web
//! ticket's `Assertion`) are cut out of the answer *as text* and pasted into the next request,
//! byte for byte. Re-serialising them through a DOM would change whitespace, attribute quoting
//! or namespace declarations, and the next server (or the signature over them) would disagree.
//! So these lookups deliberately do not parse XML.

/// Cuts the first `Tag` element out of `xml`, the way pidgin-sipe's raw extraction does:
///
/// 1. find the first `<Tag` (a plain substring: `<TagX` matches too) and the first `</Tag>`
///    after it; when `<Tag` is found but no closing tag follows, the answer is `None` (no
///    fallback);
/// 2. only when `<Tag` does not occur at all: find the first `:Tag` anywhere in the text, walk
///    back to the `<` before it, take the text in between as the prefix, and extract
///    `prefix:Tag` by rule 1.
///
/// With `include_tag` the whole element (start tag to end tag) is returned, otherwise only the
/// text between the end of the start tag and the closing tag.
pub fn extract_raw<'a>(xml: &'a str, tag: &str, include_tag: bool) -> Option<&'a str> {
    let open = format!("<{tag}");
    match xml.find(&open) {
        Some(start) => cut(xml, start, tag, include_tag),
        None => {
            let colon = xml.find(&format!(":{tag}"))?;
            let lt = xml[..colon].rfind('<')?;
            let prefix = &xml[lt + 1..colon];
            if prefix.is_empty() {
                return None;
            }
            let qualified = format!("{prefix}:{tag}");
            let start = xml.find(&format!("<{qualified}"))?;
            cut(xml, start, &qualified, include_tag)
        }
    }
}

/// The element starting at `start` (which points at `<tag`), up to the first `</tag>`.
fn cut<'a>(xml: &'a str, start: usize, tag: &str, include_tag: bool) -> Option<&'a str> {
    let after_open = start + 1 + tag.len();
    let close = format!("</{tag}>");
    let end = after_open + xml.get(after_open..)?.find(&close)?;
    if include_tag {
        xml.get(start..end + close.len())
    } else {
        let content_start = after_open + xml.get(after_open..end)?.find('>')? + 1;
        xml.get(content_start..end)
    }
}

/// The value of the first `name="…"` in `xml` (plain substring search, double quotes only, as
/// pidgin-sipe looks up `AssertionID`).
pub fn raw_attribute<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = xml.find(&key)? + key.len();
    let len = xml.get(start..)?.find('"')?;
    xml.get(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprefixed_tag_with_and_without_the_tag() {
        let xml = r#"<a><Lifetime x="1"><C>1</C></Lifetime></a>"#;
        assert_eq!(
            extract_raw(xml, "Lifetime", true),
            Some(r#"<Lifetime x="1"><C>1</C></Lifetime>"#)
        );
        assert_eq!(extract_raw(xml, "Lifetime", false), Some("<C>1</C>"));
    }

    #[test]
    fn prefixed_tag_uses_the_prefix_found_before_the_colon() {
        let xml = "<S:Body><wst:Lifetime><wsu:Created>c</wsu:Created></wst:Lifetime></S:Body>";
        assert_eq!(
            extract_raw(xml, "Lifetime", false),
            Some("<wsu:Created>c</wsu:Created>")
        );
        assert_eq!(
            extract_raw(xml, "Lifetime", true),
            Some("<wst:Lifetime><wsu:Created>c</wsu:Created></wst:Lifetime>")
        );
    }

    #[test]
    fn first_match_wins() {
        let xml = "<r><x:T>one</x:T><x:T>two</x:T><T>three</T></r>";
        // `<T` exists, so the unprefixed rule applies even though a prefixed one comes first.
        assert_eq!(extract_raw(xml, "T", false), Some("three"));
        let xml = "<r><x:T>one</x:T><y:T>two</y:T></r>";
        assert_eq!(extract_raw(xml, "T", false), Some("one"));
    }

    #[test]
    fn colon_fallback_takes_the_first_colon_occurrence_even_in_text() {
        // The first `:Assertion` is inside text; walking back reaches `<note>` whose "prefix"
        // `note>see saml` does not open an element, so nothing is found (as in SIPE).
        let xml = "<r><note>see saml:Assertion</note><saml:Assertion>A</saml:Assertion></r>";
        assert_eq!(extract_raw(xml, "Assertion", true), None);
    }

    #[test]
    fn lower_case_namespace_uri_does_not_match() {
        let xml = r#"<s:Body><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" AssertionID="_1">x</saml:Assertion></s:Body>"#;
        let a = extract_raw(xml, "Assertion", true).unwrap();
        assert!(a.starts_with("<saml:Assertion ") && a.ends_with("</saml:Assertion>"));
        assert_eq!(raw_attribute(a, "AssertionID"), Some("_1"));
    }

    #[test]
    fn open_without_close_gives_nothing_and_does_not_fall_back() {
        assert_eq!(extract_raw("<a><T>x</a><p:T>y</p:T>", "T", false), None);
        assert_eq!(extract_raw("<a>nothing</a>", "T", true), None);
        assert_eq!(extract_raw("T:T</T>", "T", true), None);
    }

    #[test]
    fn tag_is_a_plain_prefix_match_like_sipe() {
        let xml = "<r><TagX>1</Tag></r>";
        assert_eq!(extract_raw(xml, "Tag", false), Some("1"));
    }

    #[test]
    fn attribute_needs_double_quotes() {
        assert_eq!(raw_attribute("<a AssertionID='x'/>", "AssertionID"), None);
        assert_eq!(
            raw_attribute(r#"<a AssertionID="x"/>"#, "AssertionID"),
            Some("x")
        );
    }
}
