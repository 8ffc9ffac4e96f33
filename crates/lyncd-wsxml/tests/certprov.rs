//! Certificate Provisioning against pidgin-sipe's real traffic: its GetAndPublishCert requests
//! parse, and their proofs verify with the key derived from the entropies of the WsFedBearer
//! exchange just before; any altered byte in what is signed makes them fail.

use base64::Engine;
use lyncd_wsxml::xml::extract_raw;
use lyncd_wsxml::{
    TokenError, parse_certprov_response, parse_get_and_publish_cert, psha1, render_certprov_mex,
    render_certprov_response, sign_certprov_proof, verify_certprov_proof,
};
use time::Duration;
use time::macros::datetime;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/interop/captures"
);
const SKEW: Duration = Duration::minutes(5);
const PORT: &str =
    "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof_SHA1";
const WEBTICKET: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc";

/// The body of a captured HTTP message (anonymised captures write `$HOME` for the home directory).
fn body(dir: &str, prefix: &str, suffix: &str) -> String {
    let d = format!("{CAPTURES}/{dir}");
    let name = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} in {d}"));
    let text = std::fs::read_to_string(format!("{d}/{name}"))
        .unwrap()
        .replace("$HOME", "/root");
    let (_, b) = text.split_once("\r\n\r\n").unwrap();
    b.to_string()
}

fn secret(xml: &str) -> Vec<u8> {
    let v = extract_raw(xml, "BinarySecret", false).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .unwrap()
}

/// (GetAndPublishCert body, proof key) of one captured CertProv exchange. The key is derived as
/// our Web Ticket service derives it: `P_SHA1(secret = client entropy, seed = server entropy)`.
fn exchange(dir: &str, wsfed: &str, certprov: &str) -> (String, Vec<u8>) {
    let client = secret(&body(dir, wsfed, ".req.txt"));
    let server = secret(&body(dir, wsfed, ".resp.txt"));
    assert_eq!((client.len(), server.len()), (32, 32));
    (body(dir, certprov, ".req.txt"), psha1(&client, &server, 32))
}

const EXCHANGES: [(&str, &str, &str); 3] = [
    ("01-autodiscover-full-flow", "015-", "016-"),
    ("02-explicit-server", "006-", "007-"),
    ("03-srv-discovery", "010-", "011-"),
];

#[test]
fn captured_requests_parse_and_their_proofs_verify() {
    for (dir, wsfed, certprov) in EXCHANGES {
        let (req_text, key) = exchange(dir, wsfed, certprov);
        let req = parse_get_and_publish_cert(req_text.as_bytes()).unwrap();
        assert_eq!(req.entity, "alice@contoso.com", "{dir}");
        assert!(req.timestamp_raw.starts_with("<wsu:Timestamp "), "{dir}");
        assert_eq!(req.timestamp_id.as_deref(), Some("timestamp"));
        assert!(req.assertion_raw.starts_with("<saml:Assertion "));
        assert!(req.assertion_raw.ends_with("</saml:Assertion>"));
        assert!(req.device_id.as_deref().unwrap().starts_with('{'));
        assert!(req.request_id.is_some() && req.message_id.is_some());
        // The CSR is the DER PKCS#10 whatever the line breaks.
        assert_eq!(req.csr_der[0], 0x30);
        if dir.starts_with("01") {
            let der = std::fs::read(format!("{CAPTURES}/{dir}/client-csr.der")).unwrap();
            assert_eq!(req.csr_der, der);
            assert_eq!(
                req.assertion_id.as_deref(),
                Some("SamlSecurityToken-d0a2aa72-b09a-40f3-a847-9db26c872121")
            );
        }
        let sig = req.signature.as_ref().unwrap();
        assert_eq!(sig.key_identifier, req.assertion_id);
        // pidgin-sipe's SignedInfo is already canonical, and so is its Timestamp.
        assert_eq!(sig.signed_info_c14n, sig.signed_info_raw.as_bytes());
        assert_eq!(req.timestamp_c14n, req.timestamp_raw.as_bytes());

        let now = req.timestamp_expires - Duration::hours(1);
        verify_certprov_proof(&req, &key, now, SKEW).unwrap_or_else(|e| panic!("{dir}: {e}"));

        // Wrong key.
        let mut other = key.clone();
        other[0] ^= 1;
        assert!(matches!(
            verify_certprov_proof(&req, &other, now, SKEW),
            Err(TokenError::BadSignature(_))
        ));
        // Expired Timestamp (beyond the skew).
        assert!(matches!(
            verify_certprov_proof(&req, &key, req.timestamp_expires + SKEW, SKEW),
            Err(TokenError::Expired { .. })
        ));
        verify_certprov_proof(&req, &key, req.timestamp_expires + SKEW / 2, SKEW).unwrap();
    }
}

/// Every single-byte change inside the Timestamp's or SignedInfo's text makes the proof fail.
#[test]
fn one_changed_byte_in_the_signed_parts_breaks_the_proof() {
    let (dir, wsfed, certprov) = EXCHANGES[0];
    let (text, key) = exchange(dir, wsfed, certprov);
    let req = parse_get_and_publish_cert(text.as_bytes()).unwrap();
    let now = req.timestamp_expires - Duration::hours(1);
    for (what, needle, from, to) in [
        (
            "Timestamp Expires",
            "<wsu:Expires>2026-11-25T10:52:39Z",
            "10:52:39",
            "10:52:38",
        ),
        (
            "Timestamp Created",
            "<wsu:Created>2026-11-25T02:52:39Z",
            "02:52",
            "01:52",
        ),
        (
            "Timestamp Id",
            "wsu:Id=\"timestamp\"",
            "timestamp",
            "timestamq",
        ),
        ("DigestValue", "<DigestValue>8WJm", "8WJm", "8WJn"),
        (
            "Reference",
            "<Reference URI=\"#timestamp\"",
            "#timestamp",
            "#Timestamp",
        ),
        ("SignatureValue", "<SignatureValue>nakK", "nakK", "nakL"),
    ] {
        let at = text.find(needle).unwrap_or_else(|| panic!("{what}"));
        let mut changed = text.clone();
        let rel = needle.find(from).unwrap();
        changed.replace_range(at + rel..at + rel + from.len(), to);
        let outcome = parse_get_and_publish_cert(changed.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|r| verify_certprov_proof(&r, &key, now, SKEW).map_err(|e| e.to_string()));
        assert!(
            outcome.is_err(),
            "{what} altered but the proof still verified"
        );
    }
    // The Timestamp changed inside the signed element, any single byte of its content.
    let ts_at = text.find("<wsu:Created>").unwrap();
    for i in ts_at..ts_at + 60 {
        let mut bytes = text.clone().into_bytes();
        if !bytes[i].is_ascii_digit() {
            continue;
        }
        bytes[i] = if bytes[i] == b'1' { b'2' } else { b'1' };
        // Either the time no longer parses or the digest no longer matches.
        if let Ok(r) = parse_get_and_publish_cert(&bytes) {
            assert!(
                verify_certprov_proof(&r, &key, now, SKEW).is_err(),
                "byte {i}"
            );
        }
    }
}

/// SignedInfo is checked in canonical form: attribute order, whitespace inside start tags and
/// self-closing empty elements do not matter; content does.
#[test]
fn signed_info_is_verified_in_canonical_form() {
    let (dir, wsfed, certprov) = EXCHANGES[0];
    let (text, key) = exchange(dir, wsfed, certprov);
    let now = datetime!(2026-11-25 03:00:00 UTC);
    let rewritten = text
        .replace(
            "<CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></CanonicalizationMethod>",
            "<CanonicalizationMethod   Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#'/>",
        )
        .replace(
            "<SignedInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\">",
            "<SignedInfo\n  xmlns=\"http://www.w3.org/2000/09/xmldsig#\" >",
        );
    assert_ne!(rewritten, text);
    let req = parse_get_and_publish_cert(rewritten.as_bytes()).unwrap();
    verify_certprov_proof(&req, &key, now, SKEW).unwrap();

    // Whitespace added *between* SignedInfo's children changes its canonical form.
    let spaced = text.replace(
        "</SignatureMethod><Reference",
        "</SignatureMethod> <Reference",
    );
    let req = parse_get_and_publish_cert(spaced.as_bytes()).unwrap();
    assert!(matches!(
        verify_certprov_proof(&req, &key, now, SKEW),
        Err(TokenError::BadSignature(_))
    ));
    // A namespace declared on an ancestor but not used inside SignedInfo stays out of its
    // exclusive canonical form.
    let prefixed = text.replace("<Signature xmlns=", "<Signature xmlns:ds=\"urn:x\" xmlns=");
    let req = parse_get_and_publish_cert(prefixed.as_bytes()).unwrap();
    verify_certprov_proof(&req, &key, now, SKEW).unwrap();
}

#[test]
fn missing_or_misdirected_proof_is_refused() {
    let (dir, wsfed, certprov) = EXCHANGES[0];
    let (text, key) = exchange(dir, wsfed, certprov);
    let now = datetime!(2026-11-25 03:00:00 UTC);
    let sig = extract_raw(&text, "Signature", true).unwrap();
    let unsigned = text.replace(sig, "");
    let req = parse_get_and_publish_cert(unsigned.as_bytes()).unwrap();
    assert_eq!(
        verify_certprov_proof(&req, &key, now, SKEW),
        Err(TokenError::MissingSignature)
    );
    // KeyIdentifier naming another assertion.
    let other_kid = text.replacen(
        ">SamlSecurityToken-d0a2aa72-b09a-40f3-a847-9db26c872121</wsse:KeyIdentifier>",
        ">SamlSecurityToken-other</wsse:KeyIdentifier>",
        1,
    );
    let req = parse_get_and_publish_cert(other_kid.as_bytes()).unwrap();
    assert!(matches!(
        verify_certprov_proof(&req, &key, now, SKEW),
        Err(TokenError::Malformed(_))
    ));
    // Two timestamps: refused at parse.
    let ts = extract_raw(&text, "Timestamp", true).unwrap();
    let twice = text.replacen(ts, &format!("{ts}{ts}"), 1);
    assert!(parse_get_and_publish_cert(twice.as_bytes()).is_err());
}

#[test]
fn our_client_side_proof_verifies_and_trailing_slash_namespace_is_accepted() {
    let (dir, wsfed, certprov) = EXCHANGES[0];
    let (text, _) = exchange(dir, wsfed, certprov);
    let key = [42u8; 32];
    let ts = extract_raw(&text, "Timestamp", true).unwrap();
    let (signed_info, sig_value) = sign_certprov_proof(ts, "timestamp", &key);
    let old_si = extract_raw(&text, "SignedInfo", true).unwrap();
    let old_sv = extract_raw(&text, "SignatureValue", false).unwrap();
    let ours = text
        .replace(old_si, &signed_info)
        .replace(old_sv, &sig_value);
    assert!(ours.contains("xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512/\""));
    let req = parse_get_and_publish_cert(ours.as_bytes()).unwrap();
    verify_certprov_proof(&req, &key, datetime!(2026-11-25 03:00:00 UTC), SKEW).unwrap();
    // The standard namespace works too.
    let std_ns = ours.replace(
        "xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512/\"",
        "xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\"",
    );
    assert!(parse_get_and_publish_cert(std_ns.as_bytes()).is_ok());
}

#[test]
fn malformed_requests_are_refused() {
    let (dir, wsfed, certprov) = EXCHANGES[0];
    let (text, _) = exchange(dir, wsfed, certprov);
    let csr = extract_raw(&text, "BinarySecurityToken", false).unwrap();
    for bad in [
        String::new(),
        "<soap:Envelope><unclosed>".to_string(),
        "<a/>".to_string(),
        text.replace(csr, "***not base64***"),
        text.replace(" Entity=\"alice@contoso.com\"", ""),
        text.replace(extract_raw(&text, "Assertion", true).unwrap(), ""),
        format!("<!DOCTYPE x [<!ENTITY a 'b'>]>{text}"),
    ] {
        assert!(
            parse_get_and_publish_cert(bad.as_bytes()).is_err(),
            "{}",
            &bad[..bad.len().min(60)]
        );
    }
}

/// The MEX as pidgin-sipe walks it (local names, first match, relative to the document element),
/// compared with the recorder's MEX in capture 01/012.
#[test]
fn mex_has_what_sipe_reads_like_the_captured_one() {
    fn first<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }
    fn walk(xml: &str) -> (String, String) {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let root = doc.root_element();
        let policy = root
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "Policy")
            .find(|p| {
                p.attributes().any(|a| {
                    a.name().eq_ignore_ascii_case("Id")
                        && a.value().eq_ignore_ascii_case(
                            "CertProvisioningServiceWebTicketProof_SHA1_policy",
                        )
                })
            })
            .unwrap();
        let mut n = policy;
        for step in [
            "ExactlyOne",
            "All",
            "EndorsingSupportingTokens",
            "Policy",
            "IssuedToken",
            "Issuer",
            "Address",
        ] {
            n = first(n, step).unwrap_or_else(|| panic!("{step}"));
        }
        let issuer = n.text().unwrap().to_string();
        let service = first(root, "service").unwrap();
        let port = service
            .children()
            .find(|c| {
                c.tag_name().name() == "port"
                    && c.attribute("name") == Some("CertProvisioningServiceWebTicketProof_SHA1")
            })
            .unwrap();
        let loc = first(port, "address")
            .unwrap()
            .attribute("location")
            .unwrap()
            .to_string();
        (issuer, loc)
    }
    let ours = render_certprov_mex(PORT, WEBTICKET);
    let captured = body("01-autodiscover-full-flow", "012-", ".resp.txt");
    assert_eq!(walk(&ours), walk(&captured));
    assert_eq!(walk(&ours), (WEBTICKET.to_string(), PORT.to_string()));
    // No SignedSupportingTokens anywhere: bearer use would skip the proof.
    assert!(!ours.contains("SignedSupportingTokens"));
    assert!(ours.starts_with("<?xml"));
}

#[test]
fn response_carries_the_leaf_where_sipe_looks_and_echoes_the_request() {
    let leaf = vec![0x30, 0x82, 1, 2, 3];
    let chain = vec![0x30, 0x80, 9];
    let xml = render_certprov_response(&leaf, Some(&chain), "de259b92-<&>", Some("uuid:1"));
    assert_eq!(parse_certprov_response(xml.as_bytes()).unwrap(), leaf);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let rstr = doc
        .descendants()
        .find(|n| n.tag_name().name() == "RequestSecurityTokenResponse")
        .unwrap();
    assert_eq!(
        rstr.parent_element().unwrap().tag_name().name(),
        "GetAndPublishCertResponse"
    );
    let rid = rstr
        .children()
        .find(|n| n.tag_name().name() == "RequestID")
        .unwrap();
    assert_eq!(rid.text(), Some("de259b92-<&>"));
    assert!(xml.contains("<a:RelatesTo>uuid:1</a:RelatesTo>"));
    // the captured response from the recorder reads the same way
    let captured = body("01-autodiscover-full-flow", "016-", ".resp.txt");
    let der = parse_certprov_response(captured.as_bytes()).unwrap();
    assert_eq!(
        der,
        std::fs::read(format!(
            "{CAPTURES}/01-autodiscover-full-flow/client-cert.der"
        ))
        .unwrap()
    );
    let without_chain = render_certprov_response(&leaf, None, "r", None);
    assert_eq!(without_chain.matches("BinarySecurityToken ").count(), 1);
}
