//! SAML 1.1 assertion checks shared by the IdP token and the web ticket.
//!
//! The order matters: shape first (so wrapping tricks are refused before any cryptography), then
//! the signature with the pinned key, and only then the claims, read from the very element the
//! signature was shown to cover (the document element).

use lyncd_core::{UtcTime, format_iso, normalize_audience, parse_iso};
use roxmltree::{Document, Node};
use std::collections::HashSet;
use time::Duration;

use crate::crypto;
use crate::error::TokenError;
use crate::keys::TrustedCert;
use crate::xml::{self, ns};

pub(crate) const MAJOR: &str = "1";
pub(crate) const MINOR: &str = "1";

/// The validity window read from a verified assertion.
pub(crate) struct Checked<'a, 'i> {
    pub root: Node<'a, 'i>,
    pub assertion_id: String,
    pub not_on_or_after: UtcTime,
}

/// Parses `text` (size- and DTD-checked) for [`check`].
pub(crate) fn parse(text: &str) -> Result<Document<'_>, TokenError> {
    Ok(xml::parse(text.as_bytes(), xml::DEFAULT_MAX_BYTES)?)
}

/// Structure, signature, issuer, audience and time checks on a parsed assertion document.
pub(crate) fn check<'a, 'i>(
    doc: &'a Document<'i>,
    text: &str,
    trusted: &TrustedCert,
    expected_issuer: &str,
    expected_audience: &str,
    now: UtcTime,
    skew: Duration,
) -> Result<Checked<'a, 'i>, TokenError> {
    let root = doc.root_element();
    let assertions = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Assertion")
        .count();
    if assertions > 1 {
        return Err(TokenError::SignatureWrapping(format!(
            "the token holds {assertions} Assertion elements; exactly one is allowed"
        )));
    }
    if !xml::is(&root, &[ns::SAML1], "Assertion") {
        return Err(if assertions == 1 {
            TokenError::SignatureWrapping("the Assertion is not the document element".into())
        } else {
            TokenError::Malformed(format!(
                "expected a SAML 1.1 Assertion, found {:?}",
                root.tag_name().name()
            ))
        });
    }
    if root.attribute("MajorVersion") != Some(MAJOR)
        || root.attribute("MinorVersion") != Some(MINOR)
    {
        return Err(TokenError::Malformed(
            "the Assertion is not SAML 1.1".into(),
        ));
    }
    let assertion_id = root
        .attribute("AssertionID")
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingClaim("AssertionID"))?
        .to_string();

    // Every attribute any XML-DSig implementation may treat as an ID must be unique, or a
    // reference could resolve to a different element than the one we read.
    let mut ids = HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            if matches!(a.name(), "Id" | "ID" | "id" | "AssertionID") && !ids.insert(a.value()) {
                return Err(TokenError::SignatureWrapping(format!(
                    "the ID {:?} occurs more than once",
                    a.value()
                )));
            }
        }
    }

    check_signature_shape(doc, root, &assertion_id)?;
    crypto::verify_enveloped(text, trusted)?;

    let issuer = root.attribute("Issuer").unwrap_or("");
    if issuer != expected_issuer {
        return Err(TokenError::WrongIssuer {
            found: issuer.to_string(),
            expected: expected_issuer.to_string(),
        });
    }

    let mut conditions = root
        .children()
        .filter(|c| xml::is(c, &[ns::SAML1], "Conditions"));
    let cond = conditions
        .next()
        .ok_or(TokenError::MissingClaim("Conditions"))?;
    if conditions.next().is_some() {
        return Err(TokenError::Malformed(
            "more than one Conditions element".into(),
        ));
    }
    check_audience(cond, expected_audience)?;

    let time_attr = |name: &'static str| -> Result<Option<UtcTime>, TokenError> {
        cond.attribute(name)
            .map(|v| parse_iso(v).map_err(|_| TokenError::MissingClaim(name)))
            .transpose()
    };
    let not_on_or_after =
        time_attr("NotOnOrAfter")?.ok_or(TokenError::MissingClaim("NotOnOrAfter"))?;
    if let Some(nb) = time_attr("NotBefore")?
        && now + skew < nb
    {
        return Err(TokenError::NotYetValid {
            not_before: format_iso(nb),
        });
    }
    if now >= not_on_or_after + skew {
        return Err(TokenError::Expired {
            not_on_or_after: format_iso(not_on_or_after),
        });
    }
    Ok(Checked {
        root,
        assertion_id,
        not_on_or_after,
    })
}

/// Exactly one `Signature`, a direct child of the assertion, with exactly one `Reference` to the
/// assertion's own ID and only the algorithms we issue with.
fn check_signature_shape(
    doc: &Document<'_>,
    root: Node<'_, '_>,
    assertion_id: &str,
) -> Result<(), TokenError> {
    let sigs: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| xml::is(n, &[ns::DSIG], "Signature"))
        .collect();
    let sig = match sigs.as_slice() {
        [] => return Err(TokenError::MissingSignature),
        [one] => *one,
        _ => {
            return Err(TokenError::SignatureWrapping(
                "the token carries more than one Signature".into(),
            ));
        }
    };
    if sig.parent_element() != Some(root) {
        return Err(TokenError::SignatureWrapping(
            "the Signature is not a child of the Assertion".into(),
        ));
    }
    let si = xml::child(sig, &[ns::DSIG], "SignedInfo")
        .ok_or_else(|| TokenError::BadSignature("SignedInfo is missing".into()))?;
    let alg = |parent: Node<'_, '_>, name: &str| -> String {
        xml::child(parent, &[ns::DSIG], name)
            .and_then(|n| n.attribute("Algorithm"))
            .unwrap_or("")
            .to_string()
    };
    let c14n = alg(si, "CanonicalizationMethod");
    if c14n != crypto::EXC_C14N {
        return Err(TokenError::AlgorithmNotAllowed(c14n));
    }
    let method = alg(si, "SignatureMethod");
    if method != crypto::RSA_SHA256 {
        return Err(TokenError::AlgorithmNotAllowed(method));
    }
    let refs: Vec<Node<'_, '_>> = si
        .children()
        .filter(|c| xml::is(c, &[ns::DSIG], "Reference"))
        .collect();
    let [reference] = refs.as_slice() else {
        return Err(TokenError::SignatureWrapping(format!(
            "the signature has {} references; exactly one is allowed",
            refs.len()
        )));
    };
    let want = format!("#{assertion_id}");
    if reference.attribute("URI") != Some(want.as_str()) {
        return Err(TokenError::SignatureWrapping(format!(
            "the signature references {:?}, not the Assertion {:?}",
            reference.attribute("URI").unwrap_or(""),
            want
        )));
    }
    let transforms: Vec<String> = xml::child(*reference, &[ns::DSIG], "Transforms")
        .map(|t| {
            t.children()
                .filter(|c| xml::is(c, &[ns::DSIG], "Transform"))
                .map(|c| c.attribute("Algorithm").unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if transforms != [crypto::ENVELOPED, crypto::EXC_C14N] {
        return Err(TokenError::AlgorithmNotAllowed(transforms.join(" ")));
    }
    let digest = alg(*reference, "DigestMethod");
    if digest != crypto::SHA256 {
        return Err(TokenError::AlgorithmNotAllowed(digest));
    }
    Ok(())
}

/// Every `AudienceRestrictionCondition` must name our audience (SAML 1.1: all conditions hold).
fn check_audience(cond: Node<'_, '_>, expected: &str) -> Result<(), TokenError> {
    let want = normalize_audience(expected).map_err(|_| TokenError::WrongAudience {
        found: String::new(),
        expected: expected.to_string(),
    })?;
    let mut restrictions = 0;
    for arc in cond
        .children()
        .filter(|c| xml::is(c, &[ns::SAML1], "AudienceRestrictionCondition"))
    {
        restrictions += 1;
        let audiences: Vec<String> = arc
            .children()
            .filter(|c| xml::is(c, &[ns::SAML1], "Audience"))
            .map(xml::text_of)
            .collect();
        let ok = audiences
            .iter()
            .any(|a| normalize_audience(a).is_ok_and(|n| n == want));
        if !ok {
            return Err(TokenError::WrongAudience {
                found: audiences.join(" "),
                expected: want,
            });
        }
    }
    if restrictions == 0 {
        return Err(TokenError::MissingClaim("Audience"));
    }
    Ok(())
}

/// Text of the `NameIdentifier` of every `Subject` in the assertion's statements.
pub(crate) fn name_identifiers(root: Node<'_, '_>) -> Vec<String> {
    root.children()
        .filter(|s| s.is_element())
        .filter_map(|s| xml::child(s, &[ns::SAML1], "Subject"))
        .filter_map(|subj| xml::child(subj, &[ns::SAML1], "NameIdentifier"))
        .map(xml::text_of)
        .collect()
}

/// A fresh `AssertionID`: `_` and 32 hex digits from the caller's entropy (an XML NCName).
pub(crate) fn new_assertion_id(entropy: &mut dyn lyncd_core::Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("_{hex}")
}

/// `now` without its sub-second part: what we render is what we report.
pub(crate) fn whole_seconds(t: UtcTime) -> UtcTime {
    t.replace_nanosecond(0).unwrap_or(t)
}
