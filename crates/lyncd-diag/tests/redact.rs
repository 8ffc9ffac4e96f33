//! Redaction: the real SIPE captures lose every secret and keep their structure; headers,
//! bodies and free text are masked by rule; nothing panics on arbitrary bytes.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use lyncd_diag::redact::{body, header, mask, mask_password, sip_message, text};

const CAPTURES: &str = "/work/shared/interop/captures/01-autodiscover-full-flow";

fn captures() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(CAPTURES)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".req.txt") || name.ends_with(".resp.txt")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 36, "captures missing: {files:?}");
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

fn capture(prefix: &str) -> Vec<u8> {
    captures()
        .into_iter()
        .find(|(name, _)| name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no capture {prefix}"))
        .1
}

fn redacted(prefix: &str) -> Vec<u8> {
    sip_message(&capture(prefix)).into_owned()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Splits a raw HTTP/SIP message into (start line, header lines, body).
fn split(message: &[u8]) -> (String, Vec<String>, Vec<u8>) {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("captures use CRLF");
    let head = String::from_utf8(message[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n").map(str::to_string);
    let start = lines.next().unwrap();
    (start, lines.collect(), message[end + 4..].to_vec())
}

/// Elements whose whole content is masked (their descendants disappear from the redacted copy).
const OPAQUE: [&str; 6] = [
    "Assertion",
    "EncryptedData",
    "EncryptedKey",
    "RequestedProofToken",
    "EncryptedAssertion",
    "Password",
];

/// Local names in document order, not descending into masked elements.
fn element_names(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let mut names = Vec::new();
    fn walk(node: roxmltree::Node<'_, '_>, names: &mut Vec<String>) {
        for child in node.children().filter(|n| n.is_element()) {
            let name = child.tag_name().name().to_string();
            let opaque = OPAQUE.contains(&name.as_str());
            names.push(name);
            if !opaque {
                walk(child, names);
            }
        }
    }
    walk(doc.root(), &mut names);
    names
}

/// Every secret value in a capture: the texts of Password, BinarySecret and CipherValue, the
/// inner XML of assertions and encrypted data, and the web ticket header.
fn secrets_in(message: &[u8]) -> Vec<String> {
    let (_, headers, body) = split(message);
    let mut secrets: Vec<String> = headers
        .iter()
        .filter_map(|line| line.strip_prefix("X-MS-WebTicket: opaque="))
        .map(str::to_string)
        .collect();
    if let Ok(xml) = std::str::from_utf8(&body)
        && xml.trim_start().starts_with('<')
    {
        let doc = roxmltree::Document::parse(xml).unwrap();
        for node in doc.descendants().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "Password" | "BinarySecret" | "CipherValue" => {
                    secrets.push(node.text().unwrap().trim().to_string());
                }
                "Assertion" | "EncryptedData" => {
                    let inner = &xml[node.range()];
                    let open_end = inner.find('>').unwrap() + 1;
                    let close_start = inner.rfind("</").unwrap();
                    secrets.push(inner[open_end..close_start].to_string());
                }
                _ => {}
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

#[test]
fn captures_lose_every_secret_and_keep_their_structure() {
    let mut secrets_seen = 0;
    for (name, original) in captures() {
        let redacted = sip_message(&original);
        let secrets = secrets_in(&original);
        secrets_seen += secrets.len();
        for secret in &secrets {
            assert!(
                !contains(&redacted, secret),
                "{name}: {secret:.40} survived redaction"
            );
        }
        if secrets.is_empty() {
            assert!(
                matches!(redacted, Cow::Borrowed(_)),
                "{name}: nothing secret, nothing changed"
            );
        }

        let (start, headers, body) = split(&original);
        let (redacted_start, redacted_headers, redacted_body) = split(&redacted);
        assert_eq!(start, redacted_start, "{name}: start line");
        assert_eq!(
            headers.len(),
            redacted_headers.len(),
            "{name}: header count"
        );
        for (before, after) in headers.iter().zip(&redacted_headers) {
            let header_name = before.split(':').next().unwrap();
            assert!(
                after.starts_with(&format!("{header_name}:")),
                "{name}: {after}"
            );
            if !header_name.eq_ignore_ascii_case("x-ms-webticket")
                && !header_name.eq_ignore_ascii_case("authorization")
            {
                assert_eq!(before, after, "{name}: only credential headers change");
            }
        }
        if let Ok(xml) = std::str::from_utf8(&body)
            && xml.trim_start().starts_with('<')
        {
            let redacted_xml = std::str::from_utf8(&redacted_body).unwrap();
            assert_eq!(
                element_names(xml),
                element_names(redacted_xml),
                "{name}: element structure"
            );
        }

        // Redacting twice changes nothing more.
        assert_eq!(sip_message(&redacted).as_ref(), redacted.as_ref(), "{name}");
    }
    assert!(
        secrets_seen >= 12,
        "the captures hold secrets: {secrets_seen}"
    );
}

#[test]
fn the_rst2_password_is_masked_without_a_hash() {
    let redacted = String::from_utf8(redacted(
        "007-https-login.microsoftonline.com-POST-_RST2.srf.req",
    ))
    .unwrap();
    assert!(
        redacted.contains("<wsse:Password>‹masked: 6 bytes›</wsse:Password>"),
        "{redacted}"
    );
    assert!(!redacted.contains(">secret<"));
    assert!(redacted.contains("<wsse:Username>alice@contoso.com</wsse:Username>"));
    assert!(
        redacted.contains("Content-Length: 1379\r\n"),
        "kept as received"
    );
}

#[test]
fn web_ticket_request_keeps_everything_but_the_ticket() {
    let redacted = String::from_utf8(redacted("009-")).unwrap();
    let ticket_line = redacted
        .lines()
        .find(|line| line.starts_with("X-MS-WebTicket:"))
        .unwrap();
    assert!(
        ticket_line.starts_with("X-MS-WebTicket: opaque=‹masked: "),
        "{ticket_line}"
    );
    assert!(ticket_line.contains(" bytes, sha256:"));
}

#[test]
fn certificates_csrs_signatures_and_tls_dsk_handshakes_stay() {
    let certprov = String::from_utf8(redacted(
        "016-https-lyncweb.contoso.com-POST-_CertProv_CertProvisioningService.svc_WebTicket_Proof_SHA1.req",
    ))
    .unwrap();
    assert!(certprov.contains("MIICYTCCAUkCAQAwHDEaMBgGA1UEAwwRYWxpY2VAY29udG9zby5jb20"));
    assert!(certprov.contains("<SignatureValue>nakKGaqwgCMZNNZQE19OPk0AJCU=</SignatureValue>"));
    assert!(
        certprov.contains("<saml:Assertion MajorVersion=\"1\""),
        "start tag kept"
    );
    assert!(!certprov.contains("<saml:Conditions"), "content masked");

    let response = redacted(
        "016-https-lyncweb.contoso.com-POST-_CertProv_CertProvisioningService.svc_WebTicket_Proof_SHA1.resp",
    );
    assert!(contains(&response, "MIIDPzCCAiegAwIBAgIJAIGqSkkDLPGu"));

    let tls_dsk = redacted("018-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req");
    assert!(contains(
        &tls_dsk,
        "gssapi-data=\"FgMBADUBAAAxAwFrBk139g2+z/pLBQEau9nzWgKe4Scg6lGTvTKcV2IOKwAACgAEAAUALwA1AAMBAA==\""
    ));
}

#[test]
fn mask_format() {
    let masked = mask(&[0u8; 1532]);
    assert!(
        masked.starts_with("‹masked: 1532 bytes, sha256:"),
        "{masked}"
    );
    assert!(masked.ends_with('›'));
    let hash = masked
        .trim_end_matches('›')
        .rsplit("sha256:")
        .next()
        .unwrap();
    assert_eq!(hash.len(), 8);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mask_password(b"hunter2"), "‹masked: 7 bytes›");
}

#[test]
fn http_authorization_tokens_are_masked_scheme_kept() {
    for (value, scheme) in [
        (
            "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln",
            "Bearer",
        ),
        ("NTLM TlRMTVNTUAADAAAAGAAYAHgAAAA=", "NTLM"),
        (
            "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICHgYKKwYBBAGCNwICCg==",
            "Negotiate",
        ),
    ] {
        let redacted = header("Authorization", value);
        let token = value.split_once(' ').unwrap().1;
        assert_eq!(redacted, format!("{scheme} {}", mask(token.as_bytes())));
    }
    assert_eq!(
        header("authorization", "Basic YWxpY2U6c2VjcmV0"),
        "Basic ‹masked: 16 bytes›"
    );
    assert_eq!(
        header("Proxy-Authorization", "Basic YWxpY2U6c2VjcmV0"),
        "Basic ‹masked: 16 bytes›"
    );
}

#[test]
fn ucwa_compact_web_tickets_are_masked() {
    // UCWA sends the web ticket as a Bearer auth-param rather than a token68.
    let redacted = header("Authorization", "Bearer cwt=AAEBHAEFAAAAAAAFFQAAAL0Rs2Kd");
    assert!(!redacted.contains("AAEBHAEF"), "{redacted}");
    assert!(redacted.starts_with("Bearer cwt=‹masked: "), "{redacted}");
}

#[test]
fn sip_ntlm_credentials_keep_the_security_association_parameters() {
    let value = r#"NTLM qop="auth", realm="SIP Communications Service", opaque="ACDC123", targetname="lyncfe.contoso.com", version=4, gssapi-data="TlRMTVNTUAADAAAAGAAYAHgAAAA=", crand="13317733", cnum="1", response="0100000029ea44f1ac3fa36b00000000""#;
    let redacted = header("Authorization", value);
    for kept in [
        r#"qop="auth""#,
        r#"realm="SIP Communications Service""#,
        r#"opaque="ACDC123""#,
        r#"targetname="lyncfe.contoso.com""#,
        "version=4",
        r#"crand="13317733""#,
        r#"cnum="1""#,
    ] {
        assert!(redacted.contains(kept), "{kept} in {redacted}");
    }
    assert!(!redacted.contains("TlRMTVNTUAAD"), "{redacted}");
    assert!(!redacted.contains("0100000029ea"), "{redacted}");
    assert!(redacted.starts_with("NTLM qop="));
    assert!(
        redacted.contains(r#"gssapi-data="‹masked: 28 bytes, sha256:"#),
        "{redacted}"
    );

    // Kerberos the same; TLS-DSK's gssapi-data is a public TLS handshake and stays.
    let kerberos = header(
        "Proxy-Authorization",
        r#"Kerberos qop="auth", realm="SIP Communications Service", targetname="sip/lyncfe.contoso.com", gssapi-data="YIIFyQYJKoZIhvcSAQICAQBuggW4", version=4"#,
    );
    assert!(!kerberos.contains("YIIFyQYJ"), "{kerberos}");
    let tls_dsk = r#"TLS-DSK qop="auth", realm="SIP Communications Service", targetname="lyncfe.contoso.com", gssapi-data="FgMBADUBAAAx", version=4"#;
    assert_eq!(header("Authorization", tls_dsk), tls_dsk);
    // A signed message's response is masked even under TLS-DSK.
    let signed = header(
        "Authorization",
        r#"TLS-DSK qop="auth", realm="SIP Communications Service", opaque="F2A3", targetname="lyncfe.contoso.com", crand="13317733", cnum="12", response="602306092a864886f7120102020201011100ffffffff""#,
    );
    assert!(!signed.contains("602306092a86"), "{signed}");
    assert!(signed.contains(r#"opaque="F2A3""#));
}

#[test]
fn digest_masks_only_the_response() {
    let redacted = header(
        "Authorization",
        r#"Digest username="alice", realm="contoso.com", nonce="dcd98b7102dd2f0e", uri="sip:contoso.com", response="6629fae49393a05397450978507c4ef1", algorithm=MD5"#,
    );
    assert!(redacted.contains(r#"username="alice""#));
    assert!(redacted.contains(r#"nonce="dcd98b7102dd2f0e""#));
    assert!(redacted.contains("algorithm=MD5"));
    assert!(!redacted.contains("6629fae4"));
}

#[test]
fn challenges_keep_what_is_public_and_mask_integrated_auth_blobs() {
    for public in [
        r#"Bearer trusted_issuers="", client_id="00000004-0000-0ff1-ce00-000000000000""#,
        r#"MsRtcOAuth href="https://lyncweb.contoso.com/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password""#,
        r#"TLS-DSK realm="SIP Communications Service", targetname="lyncfe.contoso.com", sts-uri="https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc", version=4"#,
        r#"Kerberos realm="SIP Communications Service", targetname="sip/lyncfe.contoso.com", version=4"#,
        "Negotiate, NTLM",
        "Negotiate",
        r#"Basic realm="contoso""#,
    ] {
        assert_eq!(header("WWW-Authenticate", public), public);
    }
    let ntlm = header("WWW-Authenticate", "NTLM TlRMTVNTUAACAAAADAAMADgAAAAFgomi");
    assert!(!ntlm.contains("TlRMTVNTUAAC"), "{ntlm}");
    assert!(ntlm.starts_with("NTLM ‹masked: "));
    let sip_ntlm = header(
        "Proxy-Authenticate",
        r#"NTLM realm="SIP Communications Service", targetname="lyncfe.contoso.com", version=4, opaque="CDA2", gssapi-data="TlRMTVNTUAACAAAAAAAAADgAAAA=""#,
    );
    assert!(!sip_ntlm.contains("TlRMTVNTUAAC"), "{sip_ntlm}");
    assert!(sip_ntlm.contains(r#"opaque="CDA2""#));
    // The server's proof of the security association is a signature: kept.
    let info = r#"NTLM rspauth="01000000000000005CD422F0C750C7C6", srand="3FA2B0C4", snum="1", opaque="CDA2", qop="auth", targetname="lyncfe.contoso.com", realm="SIP Communications Service""#;
    assert_eq!(header("Authentication-Info", info), info);
}

#[test]
fn cookies_and_tickets() {
    let cookie = header("Cookie", "MSISAuth=AAEAAB; session=abc123; empty=");
    assert!(cookie.starts_with("MSISAuth=‹masked: 6 bytes"), "{cookie}");
    assert!(cookie.contains("; session=‹masked: 6 bytes"));
    assert!(cookie.ends_with("; empty="));
    assert!(!cookie.contains("abc123"));

    let set = header(
        "SET-COOKIE",
        "LyncSession=deadbeef; Path=/; Secure; HttpOnly",
    );
    assert!(set.starts_with("LyncSession=‹masked: 8 bytes"), "{set}");
    assert!(set.ends_with("; Path=/; Secure; HttpOnly"));

    assert!(!header("X-MS-WebTicket", "opaque=PHNhbWw6").contains("PHNhbWw6"));
    assert!(!header("x-ms-webticket", "PHNhbWw6").contains("PHNhbWw6"));
}

#[test]
fn ordinary_headers_pass_unless_they_carry_tokens_in_urls() {
    let url = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc";
    assert!(matches!(header("X-MS-WebTicketURL", url), Cow::Borrowed(_)));
    assert_eq!(
        header("Content-Type", "text/xml; charset=utf-8"),
        "text/xml; charset=utf-8"
    );
    assert_eq!(
        header(
            "ms-diagnostics",
            r#"1000;reason="Final handling of the transaction failed""#
        ),
        r#"1000;reason="Final handling of the transaction failed""#
    );
    let location = header(
        "Location",
        "https://app.contoso.com/cb#access_token=eyJabc.def&token_type=Bearer&expires_in=3599",
    );
    assert!(!location.contains("eyJabc"), "{location}");
    assert!(location.contains("&token_type=Bearer&expires_in=3599"));
}

#[test]
fn form_bodies_mask_secret_fields_only() {
    let form = b"grant_type=password&username=alice%40contoso.com&password=p%40ss+word&client_secret=xyz&code=abc&refresh_token=rt1";
    let redacted = body(
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        form,
    );
    let redacted = std::str::from_utf8(&redacted).unwrap();
    assert!(
        redacted.starts_with(
            "grant_type=password&username=alice%40contoso.com&password=‹masked: 11 bytes›&"
        ),
        "{redacted}"
    );
    for secret in ["p%40ss", "xyz", "=abc", "rt1"] {
        assert!(!redacted.contains(secret), "{secret}: {redacted}");
    }
}

#[test]
fn json_bodies_mask_tokens_and_passwords_at_any_depth() {
    let json = br#"{"token_type":"Bearer","access_token":"eyJ0eXAi.payload.sig","expires_in":28800,
        "nested":{"refresh_token" : "0.AAAA", "id_token":"eyJid"},"password":"hunter2",
        "list":["access_token","plain"],"escaped":"a\"b","ms_rtc_identityscope":"local"}"#;
    let redacted = body(Some("application/json"), json);
    let redacted = std::str::from_utf8(&redacted).unwrap();
    for secret in ["eyJ0eXAi", "0.AAAA", "eyJid", "hunter2"] {
        assert!(!redacted.contains(secret), "{secret}: {redacted}");
    }
    assert!(redacted.contains(r#""password":"‹masked: 7 bytes›""#));
    assert!(redacted.contains(r#""token_type":"Bearer""#));
    assert!(
        redacted.contains(r#""list":["access_token","plain"]"#),
        "array items are not keys"
    );
    assert!(redacted.contains(r#""escaped":"a\"b""#));
    // Still valid JSON with the same shape.
    let value: serde_json::Value = serde_json::from_str(redacted).unwrap();
    assert_eq!(value["expires_in"], 28800);
    // Sniffed without a content type.
    assert!(!contains(
        &body(None, br#" {"access_token":"tok"}"#),
        "tok\""
    ));
}

#[test]
fn xml_rules_for_ws_trust_and_ws_security() {
    let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>
<o:Security><o:UsernameToken u:Id="uuid-1"><o:Username>alice@contoso.com</o:Username>
<o:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">P@ss&amp;word</o:Password>
<o:Nonce>d36e316282959a9ed4c89851497a717f</o:Nonce></o:UsernameToken>
<o:BinarySecurityToken ValueType="http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#GSS_Kerberosv5_AP_REQ">YIIFyQYJKoZIhvcSAQIC</o:BinarySecurityToken>
<o:BinarySecurityToken ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3">MIIDPzCCAiegAwIBAgIJ</o:BinarySecurityToken>
</o:Security></s:Header><s:Body><t:RequestSecurityTokenResponse>
<t:RequestedProofToken><t:BinarySecret>proofkey==</t:BinarySecret></t:RequestedProofToken>
<xenc:EncryptedKey><xenc:CipherData><xenc:CipherValue>wrapped==</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>
<saml2:Assertion ID="_a1" Version="2.0"><saml2:Issuer>https://sts.contoso.com</saml2:Issuer></saml2:Assertion>
<Empty/><password>lowercase too</password>
</t:RequestSecurityTokenResponse></s:Body></s:Envelope>"#;
    let redacted = body(Some("application/soap+xml; charset=utf-8"), xml);
    let redacted = std::str::from_utf8(&redacted).unwrap();
    for secret in [
        "P@ss",
        "YIIFyQYJ",
        "proofkey",
        "wrapped==",
        "https://sts.contoso.com",
        "lowercase too",
    ] {
        assert!(!redacted.contains(secret), "{secret}: {redacted}");
    }
    for kept in [
        "<o:Username>alice@contoso.com</o:Username>",
        "<o:Nonce>d36e316282959a9ed4c89851497a717f</o:Nonce>",
        "MIIDPzCCAiegAwIBAgIJ",
        "<saml2:Assertion ID=\"_a1\" Version=\"2.0\">‹masked: ",
        "<t:RequestedProofToken>‹masked: ",
        "<Empty/>",
        "#PasswordText\">‹masked: 13 bytes›</o:Password>",
    ] {
        assert!(redacted.contains(kept), "{kept}: {redacted}");
    }
    // Byte-for-byte identical outside the masked ranges: the prefix up to the first secret.
    let first = std::str::from_utf8(xml).unwrap().find("P@ss").unwrap();
    assert_eq!(
        &redacted[..first],
        &std::str::from_utf8(xml).unwrap()[..first]
    );
}

#[test]
fn broken_xml_masks_from_the_break_rather_than_guessing() {
    let truncated = b"<Envelope><Body><Password>half a pass";
    let redacted = body(Some("text/xml"), truncated);
    assert!(!contains(&redacted, "half a pass"));
    assert!(contains(&redacted, "<Envelope><Body><Password>"));

    let broken = b"<Envelope><Body attr=\"unterminated><Password>x</Password>";
    let redacted = body(Some("text/xml"), broken);
    assert!(
        !contains(&redacted, "<Password>x<"),
        "{}",
        String::from_utf8_lossy(&redacted)
    );
}

#[test]
fn pem_private_keys_are_masked_anywhere_certificates_are_not() {
    let pem = "note\n-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n\
               -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nsecretlines\n-----END RSA PRIVATE KEY-----\n\
               -----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkq\n-----END ENCRYPTED PRIVATE KEY-----\n\
               -----BEGIN PRIVATE KEY-----\nunterminated";
    for redacted in [
        text(pem).into_owned(),
        String::from_utf8(body(Some("text/plain"), pem.as_bytes()).into_owned()).unwrap(),
        String::from_utf8(body(None, pem.as_bytes()).into_owned()).unwrap(),
    ] {
        assert!(redacted.contains("MIIBcert"));
        for secret in [
            "MIIEpAIBAAKCAQEA",
            "secretlines",
            "MIIFHDBOBgkq",
            "unterminated",
        ] {
            assert!(!redacted.contains(secret), "{secret}: {redacted}");
        }
        assert!(redacted.contains("-----BEGIN RSA PRIVATE KEY-----\n‹masked: "));
        assert!(redacted.contains("›\n-----END RSA PRIVATE KEY-----"));
    }
}

#[test]
fn free_text_urls_headers_and_json() {
    let line = "GET https://login.contoso.com/oauth?client_id=abc&password=hunter2&access_token=eyJx#frag failed";
    let redacted = text(line);
    assert!(
        !redacted.contains("hunter2") && !redacted.contains("eyJx"),
        "{redacted}"
    );
    assert!(redacted.contains(
        "client_id=abc&password=‹masked: 7 bytes›&access_token=‹masked: 4 bytes, sha256:"
    ));
    assert!(redacted.ends_with("#frag failed"));

    assert!(matches!(
        text("errorcode=5 and passcode=9"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        text("plain words, nothing secret"),
        Cow::Borrowed(_)
    ));

    let log = "request:\r\nAuthorization: Bearer eyJtoken\r\nHost: x\r\n";
    let redacted = text(log);
    assert!(!redacted.contains("eyJtoken"));
    assert!(redacted.contains("Authorization: Bearer ‹masked: "));
    assert!(redacted.ends_with("\r\nHost: x\r\n"));

    let error = r#"400 Bad Request: {"error":"invalid_grant","refresh_token":"0.ARoA"}"#;
    assert!(!text(error).contains("0.ARoA"));
}

#[test]
fn sip_messages_with_folding_lf_and_compact_content_type() {
    let message = b"REGISTER sip:contoso.com SIP/2.0\n\
Via: SIP/2.0/TLS 10.0.0.9:5061\n\
Authorization: NTLM qop=\"auth\", realm=\"SIP Communications Service\",\n \
gssapi-data=\"TlRMTVNTUAADfolded\", version=4\n\
c: application/json\n\
Content-Length: 25\n\
\n\
{\"access_token\":\"abcde\"}";
    let redacted = sip_message(message);
    let redacted = std::str::from_utf8(&redacted).unwrap();
    assert!(!redacted.contains("TlRMTVNTUAADfolded"), "{redacted}");
    assert!(!redacted.contains("abcde"), "{redacted}");
    assert!(
        redacted.starts_with("REGISTER sip:contoso.com SIP/2.0\nVia: SIP/2.0/TLS 10.0.0.9:5061\n")
    );
    assert!(
        redacted.contains("\n gssapi-data=\"‹masked"),
        "folding kept: {redacted}"
    );
    assert!(redacted.contains("Content-Length: 25\n\n{\"access_token\":\"‹masked"));
}

#[test]
fn sdp_srtp_keys_are_masked() {
    let sdp = b"v=0\r\nm=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAo|2^31|1:1\r\na=rtpmap:0 PCMU/8000\r\n";
    let redacted = body(Some("application/sdp"), sdp);
    let redacted = std::str::from_utf8(&redacted).unwrap();
    assert!(!redacted.contains("WVNfX19zZW1jdGwg"), "{redacted}");
    assert!(redacted.contains("inline:‹masked: 44 bytes, sha256:"));
    assert!(redacted.contains("›|2^31|1:1\r\na=rtpmap:0 PCMU/8000\r\n"));
}

/// xorshift64*: deterministic, dependency-free randomness for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("text/xml"),
    Some("application/soap+xml"),
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/sdp"),
    Some("application/octet-stream"),
];

/// Every entry point on one input; the assertion is that none of them panics.
fn run_all(input: &[u8], rng: &mut Rng) {
    let content_type = CONTENT_TYPES[rng.below(CONTENT_TYPES.len())];
    let _ = body(content_type, input);
    let _ = sip_message(input);
    let lossy = String::from_utf8_lossy(input);
    let _ = text(&lossy);
    for name in [
        "Authorization",
        "WWW-Authenticate",
        "Authentication-Info",
        "Cookie",
        "Set-Cookie",
        "X-MS-WebTicket",
        "Location",
    ] {
        let _ = header(name, &lossy);
    }
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let len = rng.below(300);
        let mut input = rng.bytes(len);
        // Bias towards the bytes the parsers branch on.
        const SPECIAL: &[u8] = b"<>/=\"'&;:,\r\n -{}[]\\?#%+";
        for byte in input.iter_mut() {
            if rng.below(2) == 0 {
                *byte = SPECIAL[rng.below(SPECIAL.len())];
            }
        }
        run_all(&input, &mut rng);
        if round % 3 == 0 {
            // Non-UTF-8 in an otherwise valid message.
            let mut message = b"REGISTER sip:x SIP/2.0\r\nAuthorization: NTLM \xff\xfe\r\nContent-Type: text/xml\r\n\r\n<Password>\xc3\x28</Password>".to_vec();
            message.extend_from_slice(&input);
            run_all(&message, &mut rng);
        }
    }
}

#[test]
fn never_panics_on_mutated_captures_and_never_leaks_a_planted_secret() {
    let mut rng = Rng(42);
    let originals = captures();
    for _ in 0..1500 {
        let (_, original) = &originals[rng.below(originals.len())];
        let mut mutated = original.clone();
        match rng.below(3) {
            0 => mutated.truncate(rng.below(mutated.len() + 1)),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(mutated.len());
                    mutated[at] = rng.next() as u8;
                }
            }
            _ => {
                let at = rng.below(mutated.len() + 1);
                let junk_len = rng.below(20);
                let junk = rng.bytes(junk_len);
                mutated.splice(at..at, junk);
            }
        }
        run_all(&mutated, &mut rng);
    }

    // Secrets planted in varied SOAP shapes never survive.
    for _ in 0..500 {
        let secret = format!("S3cr3t{:016x}", rng.next());
        let prefix = ["", "wsse:", "o:", "t:"][rng.below(4)];
        let space = [" ", "\n  ", "", "\t"][rng.below(4)];
        let element = [
            "Password",
            "BinarySecret",
            "CipherValue",
            "Assertion",
            "EncryptedData",
        ][rng.below(5)];
        let xml = format!(
            "<?xml version=\"1.0\"?>{space}<s:Envelope xmlns:s=\"urn:s\">{space}<s:Body attr='1'>\
             <{prefix}{element} a=\"b\">{space}<!-- c -->{secret}{space}</{prefix}{element}>\
             </s:Body></s:Envelope>"
        );
        let redacted = body(Some("text/xml"), xml.as_bytes());
        assert!(!contains(&redacted, &secret), "{xml}");
    }
}

#[test]
fn element_names_helper_sees_the_same_tree() {
    // Guards the structure assertion above against vacuous passes.
    let names: BTreeSet<String> = element_names(
        std::str::from_utf8(&split(&capture("008-https-lyncweb.contoso.com-POST-_WebTicket_WebTicketService.svc_WsFedBearer.req")).2).unwrap(),
    )
    .into_iter()
    .collect();
    for name in [
        "Envelope",
        "Header",
        "Security",
        "EncryptedData",
        "Entropy",
        "BinarySecret",
        "KeyType",
    ] {
        assert!(names.contains(name), "{name}: {names:?}");
    }
    assert!(!names.contains("CipherValue"), "inside EncryptedData");
}
