//! Crate-level tests: golden captures, SIPE-style round trips, rejections, the xmlsec1 oracle.
//! They live inside the crate so they can also build hostile tokens with the internal
//! encryption helper (anyone can encrypt to the relying party's public certificate).

use std::sync::OnceLock;

use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder};
use time::Duration;
use time::macros::datetime;

use crate::xml::{self, extract_raw, ns};
use crate::*;

const NOW: UtcTime = datetime!(2026-11-25 02:52:39 UTC);
const SKEW: Duration = Duration::minutes(5);
const IDP_ISSUER: &str = "https://login.contoso.com/";
const WSFED: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc/WsFedBearer";
const WT_ISSUER: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc";
const USER_URL: &str = "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com";

struct Pem {
    key: String,
    cert: String,
}

fn generate(cn: &str) -> Pem {
    let rsa = Rsa::generate(2048).unwrap();
    let pkey = PKey::from_rsa(rsa).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&pkey).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    b.sign(&pkey, MessageDigest::sha256()).unwrap();
    Pem {
        key: String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        cert: String::from_utf8(b.build().to_pem().unwrap()).unwrap(),
    }
}

struct Fixture {
    idp: Pem,
    rp: Pem,
    wt: Pem,
    evil: Pem,
}

fn fx() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        idp: generate("login.contoso.com"),
        rp: generate("webticket-rp"),
        wt: generate("lyncweb.contoso.com"),
        evil: generate("login.contoso.com"),
    })
}

fn idp_signer() -> RsaSigningKey {
    RsaSigningKey::from_pem(&fx().idp.key, &fx().idp.cert).unwrap()
}
fn idp_trusted() -> TrustedCert {
    TrustedCert::from_pem(&fx().idp.cert).unwrap()
}
fn evil_signer() -> RsaSigningKey {
    RsaSigningKey::from_pem(&fx().evil.key, &fx().evil.cert).unwrap()
}
fn rp_cert() -> RsaEncryptionCert {
    RsaEncryptionCert::from_pem(&fx().rp.cert).unwrap()
}
fn rp_key() -> RsaDecryptionKey {
    RsaDecryptionKey::from_pem(&fx().rp.key, &fx().rp.cert).unwrap()
}
fn wt_signer() -> RsaSigningKey {
    RsaSigningKey::from_pem(&fx().wt.key, &fx().wt.cert).unwrap()
}
fn wt_trusted() -> TrustedCert {
    TrustedCert::from_pem(&fx().wt.cert).unwrap()
}
fn wrap() -> WrapKey {
    WrapKey::from_bytes([0x5a; 32])
}

fn idp_params(audience: &str) -> IdpTokenParams {
    IdpTokenParams {
        issuer: IDP_ISSUER.into(),
        audience: audience.into(),
        upn: "alice@contoso.com".into(),
        object_id: "6f1d2e3c-0000-4000-8000-000000000001".into(),
        lifetime: Duration::hours(8),
    }
}

fn idp_token_with(signer: &RsaSigningKey, audience: &str, seed: u64) -> IdpToken {
    issue_idp_token(
        &idp_params(audience),
        signer,
        &rp_cert(),
        NOW,
        &mut SeededEntropy::new(seed),
    )
    .unwrap()
}

fn verify_idp(ed: &str, now: UtcTime) -> Result<IdpClaims, TokenError> {
    verify_idp_token(ed, &rp_key(), &idp_trusted(), IDP_ISSUER, WSFED, now, SKEW)
}

/// HTTP body of a capture, with the anonymisation (`/root` → `$HOME`) undone.
fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(path)
        .unwrap()
        .replace("$HOME", "/root");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    body.as_bytes().to_vec()
}

/// The WsFedBearer request SIPE builds from our RST2 response (http.md §5.3): raw extraction of
/// Lifetime contents and the EncryptedData, wrapped in SIPE's Timestamp, inside capture 008.
fn sipe_wsfedbearer_request(rst2_response: &str) -> String {
    let lifetime = extract_raw(rst2_response, "Lifetime", false).unwrap();
    let ed = extract_raw(rst2_response, "EncryptedData", true).unwrap();
    let security = format!(
        "<wsse:Security><wsu:Timestamp xmlns:wsu=\"{}\" wsu:Id=\"timestamp\">{lifetime}</wsu:Timestamp>{ed}</wsse:Security>",
        ns::WSU
    );
    let template = String::from_utf8(capture("008-wsfedbearer-request.txt")).unwrap();
    let start = template.find("<wsse:Security>").unwrap();
    let end = template.find("</wsse:Security>").unwrap() + "</wsse:Security>".len();
    format!("{}{security}{}", &template[..start], &template[end..])
}

/// Issues a web ticket for the capture-008 request and renders the RSTR.
fn ticket_and_response(
    signer: &RsaSigningKey,
    audience: &str,
    client: &[u8],
) -> (IssuedWebTicket, String) {
    let p = WebTicketParams {
        issuer: WT_ISSUER.into(),
        audience: audience.into(),
        subject: SipAddress::parse("sip:alice@contoso.com").unwrap(),
        lifetime: Duration::hours(8),
    };
    let t = issue_web_ticket(
        &p,
        signer,
        &wrap(),
        Some(client),
        NOW,
        &mut SeededEntropy::new(9),
    )
    .unwrap();
    let r = render_webticket_response(
        &t,
        Some("8ca50061-9276-524f-a9b4-14011a2c5105"),
        Some("uuid:x"),
        audience,
    );
    (t, r)
}

fn verify_wt(bytes: &[u8], now: UtcTime) -> Result<WebTicketClaims, TokenError> {
    verify_web_ticket(
        bytes,
        &wt_trusted(),
        &wrap(),
        WT_ISSUER,
        USER_URL,
        now,
        SKEW,
    )
}

fn good_ticket() -> String {
    ticket_and_response(&wt_signer(), USER_URL, &[1u8; 32])
        .0
        .assertion
}

mod golden {
    use super::*;

    #[test]
    fn capture_007_rst2_request_parses() {
        let r = parse_rst2_request(&capture("007-rst2-request.txt")).unwrap();
        assert_eq!(r.username, "alice@contoso.com");
        assert_eq!(r.password.expose(), "secret");
        assert_eq!(r.applies_to, WSFED);
        assert_eq!(
            r.message_id.as_deref(),
            Some("uuid:e8d51f0e-685f-588d-ab13-135f27d353d6")
        );
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn capture_008_wsfedbearer_request_parses() {
        let r = parse_webticket_request(&capture("008-wsfedbearer-request.txt")).unwrap();
        assert_eq!(r.applies_to, USER_URL);
        assert_eq!(r.claimed_uri.as_deref(), Some("sip:alice@contoso.com"));
        assert_eq!(r.client_entropy.as_ref().map(Vec::len), Some(32));
        assert_eq!(
            r.context.as_deref(),
            Some("8ca50061-9276-524f-a9b4-14011a2c5105")
        );
        assert_eq!(
            r.message_id.as_deref(),
            Some("uuid:bbbcf7ff-09b7-5bc4-b92a-6a63f9c867ee")
        );
        assert_eq!(
            r.timestamp_created,
            Some(datetime!(2026-11-25 02:52:39 UTC))
        );
        assert_eq!(
            r.timestamp_expires,
            Some(datetime!(2026-11-25 10:52:39 UTC))
        );
        assert!(r.encrypted_data.starts_with(
            "<EncryptedData xmlns=\"http://www.w3.org/2001/04/xmlenc#\" Id=\"BinaryDAToken0\""
        ));
        assert!(r.encrypted_data.ends_with("</EncryptedData>"));
    }

    #[test]
    fn capture_015_wsfedbearer_request_parses() {
        let r = parse_webticket_request(&capture("015-wsfedbearer-request.txt")).unwrap();
        assert_eq!(
            r.applies_to,
            "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof_SHA1"
        );
        assert_eq!(r.claimed_uri.as_deref(), Some("sip:alice@contoso.com"));
        assert_eq!(r.client_entropy.as_ref().map(Vec::len), Some(32));
    }

    #[test]
    fn bare_ampersand_in_applies_to_is_repaired() {
        let body = String::from_utf8(capture("008-wsfedbearer-request.txt"))
            .unwrap()
            .replace(
                "?originalDomain=contoso.com",
                "?originalDomain=contoso.com&sipuri=x",
            );
        let r = parse_webticket_request(body.as_bytes()).unwrap();
        assert_eq!(r.applies_to, format!("{USER_URL}&sipuri=x"));
    }

    #[test]
    fn non_issue_request_type_is_refused() {
        let body = String::from_utf8(capture("007-rst2-request.txt"))
            .unwrap()
            .replace("/trust/Issue<", "/trust/Cancel<");
        assert!(matches!(
            parse_rst2_request(body.as_bytes()),
            Err(WsError::BadValue {
                what: "wst:RequestType",
                ..
            })
        ));
    }

    #[test]
    fn request_without_username_token_is_refused() {
        let body = String::from_utf8(capture("007-rst2-request.txt"))
            .unwrap()
            .replace("UsernameToken", "Other");
        assert!(matches!(
            parse_rst2_request(body.as_bytes()),
            Err(WsError::Missing(_))
        ));
        assert!(matches!(
            parse_rst2_request(b"<html/>"),
            Err(WsError::NotSoap(_))
        ));
    }
}

mod round_trip {
    use super::*;

    #[test]
    fn idp_token_survives_sipe_and_verifies() {
        let token = idp_token_with(&idp_signer(), WSFED, 1);
        let resp = render_rst2_response(&token, WSFED);
        xml::parse(resp.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        let req = sipe_wsfedbearer_request(&resp);
        let parsed = parse_webticket_request(req.as_bytes()).unwrap();
        assert_eq!(parsed.encrypted_data, token.encrypted_data);
        assert_eq!(parsed.timestamp_created, Some(token.created));
        assert_eq!(parsed.timestamp_expires, Some(token.expires));
        let claims = verify_idp(&parsed.encrypted_data, NOW + Duration::hours(1)).unwrap();
        assert_eq!(claims.upn, "alice@contoso.com");
        assert!(claims.assertion_id.starts_with('_') && claims.assertion_id.len() == 33);
        assert_eq!(claims.not_on_or_after, NOW + Duration::hours(8));
    }

    #[test]
    fn idp_audience_is_compared_normalised() {
        let token = idp_token_with(
            &idp_signer(),
            "https://LyncWeb.Contoso.com:443/WebTicket/WebTicketService.svc/WsFedBearer",
            2,
        );
        assert!(verify_idp(&token.encrypted_data, NOW).is_ok());
    }

    #[test]
    fn issuing_is_deterministic_given_entropy() {
        // Only the RSA-OAEP padding is random; the content ciphertext is fixed by our entropy.
        let a = idp_token_with(&idp_signer(), WSFED, 3);
        let b = idp_token_with(&idp_signer(), WSFED, 3);
        let content =
            |t: &IdpToken| extract_raw(&t.encrypted_data, "CipherValue", false).map(str::to_string);
        let last = |t: &IdpToken| {
            let s = &t.encrypted_data;
            let i = s.rfind("<CipherValue>").unwrap();
            s[i..].to_string()
        };
        assert_ne!(content(&a), None);
        assert_eq!(last(&a), last(&b));
    }

    #[test]
    fn bergshamra_decrypts_our_encrypted_data() {
        // Interop check of the hand-built XML-Enc wrapper against bergshamra's own decryptor.
        let token = idp_token_with(&idp_signer(), WSFED, 4);
        let key = bergshamra::keys::loader::load_rsa_private_pem(fx().rp.key.as_bytes())
            .unwrap()
            .with_name(rp_key().key_name());
        let mut m = bergshamra::KeysManager::new();
        m.add_key(key);
        let ctx = bergshamra::EncContext::new(m);
        let plain = bergshamra::decrypt_to_bytes(&ctx, &token.encrypted_data).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        let plain = plain
            .trim_start_matches("<?xml version=\"1.0\"?>")
            .trim_start();
        assert!(plain.starts_with("<saml:Assertion "), "{plain}");
        assert!(plain.contains("alice@contoso.com"));
    }

    #[test]
    fn web_ticket_survives_sipe_and_verifies_with_proof_key() {
        let client = capture_entropy();
        let (t, resp) = ticket_and_response(&wt_signer(), USER_URL, &client);
        xml::parse(resp.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        // SIPE: raw Assertion, raw BinarySecret, AssertionID="…" inside the assertion.
        let assertion = extract_raw(&resp, "Assertion", true).unwrap();
        assert_eq!(assertion, t.assertion);
        let server = xml::b64_decode(extract_raw(&resp, "BinarySecret", false).unwrap()).unwrap();
        let id_at = assertion.find("AssertionID=\"").unwrap() + 13;
        let id = &assertion[id_at..id_at + assertion[id_at..].find('"').unwrap()];
        assert_eq!(id, t.assertion_id);
        // X-MS-WebTicket: opaque=<base64 of the raw bytes>
        let header = xml::b64_encode(assertion.as_bytes());
        let bytes = xml::b64_decode(&header).unwrap();
        let claims = verify_wt(&bytes, NOW + Duration::hours(7)).unwrap();
        assert_eq!(
            claims.subject,
            SipAddress::parse("alice@contoso.com").unwrap()
        );
        assert_eq!(claims.assertion_id, t.assertion_id);
        let k = claims.proof_key.unwrap();
        assert_eq!(k.expose(), &psha1(&client, &server, 32));
        assert_eq!(k.expose(), t.proof_key.as_ref().unwrap().expose());
        assert!(!format!("{t:?}").contains(&format!("{:?}", k.expose())));
    }

    #[test]
    fn web_ticket_without_entropy_is_bearer_only() {
        let p = WebTicketParams {
            issuer: WT_ISSUER.into(),
            audience: USER_URL.into(),
            subject: SipAddress::parse("alice@contoso.com").unwrap(),
            lifetime: Duration::hours(8),
        };
        let t = issue_web_ticket(
            &p,
            &wt_signer(),
            &wrap(),
            None,
            NOW,
            &mut SeededEntropy::new(1),
        )
        .unwrap();
        assert!(t.server_entropy.is_none() && t.proof_key.is_none());
        let resp = render_webticket_response(&t, None, None, USER_URL);
        assert!(!resp.contains("BinarySecret") && !resp.contains("ComputedKey"));
        let claims = verify_wt(t.assertion.as_bytes(), NOW).unwrap();
        assert!(claims.proof_key.is_none());
        // A service verifying its own tickets can pin its signing certificate directly.
        let own = wt_signer().trusted_cert();
        assert!(!format!("{own:?}").contains("PRIVATE"));
        verify_web_ticket(
            t.assertion.as_bytes(),
            &own,
            &wrap(),
            WT_ISSUER,
            USER_URL,
            NOW,
            SKEW,
        )
        .unwrap();
    }

    fn capture_entropy() -> Vec<u8> {
        parse_webticket_request(&capture("008-wsfedbearer-request.txt"))
            .unwrap()
            .client_entropy
            .unwrap()
    }
}

mod render {
    use super::*;

    #[test]
    fn rst2_response_meets_sipe_rules() {
        let token = idp_token_with(&idp_signer(), WSFED, 5);
        let resp = render_rst2_response(&token, "https://x.example/a?b=1&c=2");
        assert_eq!(resp.matches("<EncryptedData").count(), 1);
        assert_eq!(resp.matches(":EncryptedData").count(), 0);
        // The first ":Lifetime" is the real element, and its content is exactly our times.
        let first = resp.find(":Lifetime").unwrap();
        assert_eq!(&resp[first - 4..first], "<wst");
        assert!(!resp.contains("<Lifetime"));
        assert_eq!(
            extract_raw(&resp, "Lifetime", false).unwrap(),
            "<wsu:Created>2026-11-25T02:52:39Z</wsu:Created><wsu:Expires>2026-11-25T10:52:39Z</wsu:Expires>"
        );
        assert!(resp.contains("<wsa:Address>https://x.example/a?b=1&amp;c=2</wsa:Address>"));
        let doc = xml::parse(resp.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(doc.root_element().tag_name().namespace(), Some(ns::SOAP12));
        // The EncryptedData is self-contained: it parses on its own.
        xml::parse(token.encrypted_data.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
    }

    #[test]
    fn webticket_response_meets_sipe_rules() {
        let (t, resp) =
            ticket_and_response(&wt_signer(), "https://h.example/x?a=1&b=2", &[7u8; 32]);
        assert!(resp.contains("<a:Address>https://h.example/x?a=1&amp;b=2</a:Address>"));
        let lifetime = extract_raw(&resp, "Lifetime", false).unwrap();
        assert_eq!(
            lifetime,
            "<wsu:Created>2026-11-25T02:52:39Z</wsu:Created><wsu:Expires>2026-11-25T10:52:39Z</wsu:Expires>"
        );
        assert!(!lifetime.contains("xmlns"));
        let lt = resp.find(":Lifetime").unwrap();
        assert!(
            resp[..lt].contains("xmlns:wsu="),
            "wsu must be bound on an ancestor"
        );
        assert_eq!(resp.matches("<wst:BinarySecret>").count(), 1);
        assert_eq!(resp.matches("BinarySecret").count(), 2);
        assert!(!t.assertion.contains("BinarySecret"));
        assert!(resp.contains("<wst:ComputedKey>http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1</wst:ComputedKey>"));
        assert!(
            t.assertion
                .contains(&format!("AssertionID=\"{}\"", t.assertion_id))
        );
        // The assertion stands alone (self-contained namespaces) and stays compact.
        xml::parse(t.assertion.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        assert!(
            t.assertion.len() < 4096,
            "ticket is {} bytes",
            t.assertion.len()
        );
    }

    #[test]
    fn rst2_fault_has_the_path_sipe_reads() {
        let f = render_rst2_fault(IdpFault::BadCredentials);
        let doc = xml::parse(f.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        let mut n = doc.root_element();
        for step in ["Body", "Fault", "Detail", "error", "internalerror", "text"] {
            n = n.children().find(|c| c.tag_name().name() == step).unwrap();
        }
        assert_eq!(n.text(), Some("Invalid user name or password."));
        // Unknown user and wrong password share the variant, so the bytes are identical.
        assert_eq!(f, render_rst2_fault(IdpFault::BadCredentials));
        let m = render_rst2_fault(IdpFault::MalformedRequest("a <b> & c".into()));
        assert!(m.contains("a &lt;b&gt; &amp; c"));
        for v in [
            IdpFault::UserDisabled,
            IdpFault::UnknownAudience,
            IdpFault::Internal,
        ] {
            xml::parse(render_rst2_fault(v).as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        }
    }

    #[test]
    fn soap11_fault_parses() {
        for code in [
            FaultCode::FailedAuthentication,
            FaultCode::InvalidSecurityToken,
            FaultCode::Client,
            FaultCode::Server,
        ] {
            let f = render_soap11_fault(code, "No valid security token & more");
            let doc = xml::parse(f.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
            let fc = doc
                .descendants()
                .find(|n| n.tag_name().name() == "faultcode")
                .unwrap();
            assert_eq!(fc.text(), Some(code.qname()));
            assert_eq!(doc.root_element().tag_name().namespace(), Some(ns::SOAP11));
        }
    }

    #[test]
    fn realm_info_is_managed_without_sts() {
        let r = render_realm_info("alice@contoso.com", "contoso.com");
        let doc = xml::parse(r.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "RealmInfo");
        assert!(!r.contains("STSAuthURL"));
        assert!(r.contains("<NameSpaceType>Managed</NameSpaceType>"));
    }

    #[test]
    fn psha1_known_answer_against_openssl_hmac() {
        use openssl::sign::Signer;
        let hmac = |key: &[u8], data: &[u8]| {
            let k = PKey::hmac(key).unwrap();
            let mut s = Signer::new(MessageDigest::sha1(), &k).unwrap();
            s.update(data).unwrap();
            s.sign_to_vec().unwrap()
        };
        let secret: Vec<u8> = (0u8..32).collect();
        let seed: Vec<u8> = (100u8..132).collect();
        let a1 = hmac(&secret, &seed);
        let a2 = hmac(&secret, &a1);
        let mut expected = hmac(&secret, &[a1.as_slice(), &seed].concat());
        expected.extend(hmac(&secret, &[a2.as_slice(), &seed].concat()));
        expected.truncate(32);
        assert_eq!(psha1(&secret, &seed, 32), expected);
        assert_eq!(psha1(&secret, &seed, 7), expected[..7]);
        assert_ne!(psha1(&seed, &secret, 32), expected);
    }

    #[test]
    fn keys_never_print_secrets() {
        let dbg = format!("{:?} {:?} {:?}", idp_signer(), rp_key(), wrap());
        assert!(!dbg.contains("PRIVATE") && !dbg.contains("90, 90"), "{dbg}");
        assert!(matches!(
            RsaSigningKey::from_pem(&fx().idp.key, &fx().rp.cert),
            Err(KeyError::KeyCertMismatch)
        ));
        assert!(matches!(
            TrustedCert::from_pem("junk"),
            Err(KeyError::BadCertificate(_))
        ));
        assert_ne!(
            WrapKey::from_bytes([1; 32]).key_name(),
            WrapKey::from_bytes([2; 32]).key_name()
        );
        assert_eq!(rp_key().key_name(), rp_cert().key_name());
    }
}

/// Builds hostile IdP tokens: decrypt ours, change the plaintext, encrypt it again to the RP
/// (its certificate is public, so an attacker can do the same).
mod idp_rejects {
    use super::*;

    fn plaintext(t: &IdpToken) -> String {
        String::from_utf8(
            crate::crypto::decrypt_element(&t.encrypted_data, &rp_key())
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn reencrypt(plain: &str) -> String {
        crate::crypto::encrypt_element(plain.as_bytes(), &rp_cert(), &mut SeededEntropy::new(77))
            .unwrap()
    }

    fn good() -> IdpToken {
        idp_token_with(&idp_signer(), WSFED, 11)
    }

    #[test]
    fn tampered_name_identifier() {
        let p = plaintext(&good()).replacen(
            "alice@contoso.com</saml:NameIdentifier>",
            "mallory@contoso.com</saml:NameIdentifier>",
            1,
        );
        assert!(matches!(
            verify_idp(&reencrypt(&p), NOW),
            Err(TokenError::BadSignature(_))
        ));
    }

    #[test]
    fn signed_by_another_key() {
        let t = idp_token_with(&evil_signer(), WSFED, 12);
        assert_eq!(
            verify_idp(&t.encrypted_data, NOW),
            Err(TokenError::UntrustedSigner)
        );
    }

    #[test]
    fn other_audience() {
        let t = idp_token_with(&idp_signer(), "https://evil.example/WsFedBearer", 13);
        assert!(matches!(
            verify_idp(&t.encrypted_data, NOW),
            Err(TokenError::WrongAudience { .. })
        ));
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let t = good();
        let end = t.expires + SKEW;
        assert!(verify_idp(&t.encrypted_data, end - Duration::seconds(1)).is_ok());
        assert!(matches!(
            verify_idp(&t.encrypted_data, end),
            Err(TokenError::Expired { .. })
        ));
        let start = t.created - Duration::minutes(5) - SKEW;
        assert!(verify_idp(&t.encrypted_data, start).is_ok());
        assert!(matches!(
            verify_idp(&t.encrypted_data, start - Duration::seconds(1)),
            Err(TokenError::NotYetValid { .. })
        ));
    }

    #[test]
    fn wrong_issuer() {
        let r = verify_idp_token(
            &good().encrypted_data,
            &rp_key(),
            &idp_trusted(),
            "https://other.example/",
            WSFED,
            NOW,
            SKEW,
        );
        assert!(matches!(r, Err(TokenError::WrongIssuer { .. })));
    }

    #[test]
    fn unknown_key_name() {
        let t = issue_idp_token(
            &idp_params(WSFED),
            &idp_signer(),
            &rp_cert().with_name("other-rp"),
            NOW,
            &mut SeededEntropy::new(1),
        )
        .unwrap();
        assert!(matches!(
            verify_idp(&t.encrypted_data, NOW),
            Err(TokenError::UnknownKeyName { .. })
        ));
    }

    #[test]
    fn truncated_ciphertext() {
        let t = good();
        let ed = &t.encrypted_data;
        let i = ed.rfind("<CipherValue>").unwrap() + "<CipherValue>".len();
        let j = ed.rfind("</CipherValue>").unwrap();
        let ct = xml::b64_decode(&ed[i..j]).unwrap();
        let cut = format!(
            "{}{}{}",
            &ed[..i],
            xml::b64_encode(&ct[..ct.len() - 10]),
            &ed[j..]
        );
        assert_eq!(verify_idp(&cut, NOW), Err(TokenError::Undecryptable));
        let tiny = format!("{}{}{}", &ed[..i], xml::b64_encode(&ct[..5]), &ed[j..]);
        assert_eq!(verify_idp(&tiny, NOW), Err(TokenError::Undecryptable));
    }

    #[test]
    fn algorithm_not_allowed() {
        let t = good();
        let cbc = t
            .encrypted_data
            .replacen("xmlenc11#aes256-gcm", "xmlenc#aes256-cbc", 1);
        assert!(matches!(
            verify_idp(&cbc, NOW),
            Err(TokenError::AlgorithmNotAllowed(_))
        ));
        let sha1 = plaintext(&t).replace("xmldsig-more#rsa-sha256", "xmldsig#rsa-sha1");
        assert!(matches!(
            verify_idp(&reencrypt(&sha1), NOW),
            Err(TokenError::AlgorithmNotAllowed(_))
        ));
    }

    #[test]
    fn missing_signature() {
        let p = plaintext(&good());
        let start = p.find("<Signature").unwrap();
        let end = p.find("</Signature>").unwrap() + "</Signature>".len();
        let unsigned = format!("{}{}", &p[..start], &p[end..]);
        assert_eq!(
            verify_idp(&reencrypt(&unsigned), NOW),
            Err(TokenError::MissingSignature)
        );
    }

    #[test]
    fn wrapping_signed_assertion_inside_forged_one() {
        let signed = plaintext(&good());
        let forged = format!(
            "<saml:Assertion xmlns:saml=\"{}\" MajorVersion=\"1\" MinorVersion=\"1\" AssertionID=\"_evil\" Issuer=\"{IDP_ISSUER}\" IssueInstant=\"2026-11-25T02:52:39Z\"><saml:Conditions NotOnOrAfter=\"2030-01-01T00:00:00Z\"><saml:AudienceRestrictionCondition><saml:Audience>{WSFED}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions><saml:Advice>{signed}</saml:Advice><saml:AttributeStatement><saml:Subject><saml:NameIdentifier>mallory@contoso.com</saml:NameIdentifier></saml:Subject></saml:AttributeStatement></saml:Assertion>",
            ns::SAML1
        );
        assert!(matches!(
            verify_idp(&reencrypt(&forged), NOW),
            Err(TokenError::SignatureWrapping(_))
        ));
    }

    #[test]
    fn wrapping_forged_assertion_next_to_signed_one() {
        let signed = plaintext(&good());
        let forged = signed
            .replace("alice@contoso.com", "mallory@contoso.com")
            .replace("AssertionID=\"_", "AssertionID=\"_x");
        let doc = format!("<Tokens>{forged}{signed}</Tokens>");
        assert!(matches!(
            verify_idp(&reencrypt(&doc), NOW),
            Err(TokenError::SignatureWrapping(_))
        ));
    }

    #[test]
    fn duplicate_ids() {
        let signed = plaintext(&good());
        let id_at = signed.find("AssertionID=\"").unwrap() + 13;
        let id = &signed[id_at..id_at + 33];
        let dup = signed.replacen(
            "<saml:AttributeStatement>",
            &format!("<saml:AttributeStatement ID=\"{id}\">"),
            1,
        );
        assert!(matches!(
            verify_idp(&reencrypt(&dup), NOW),
            Err(TokenError::SignatureWrapping(_))
        ));
    }

    #[test]
    fn malformed_oversized_and_dtd() {
        assert!(matches!(
            verify_idp("<EncryptedData", NOW),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            verify_idp(&reencrypt("<saml:Assertion"), NOW),
            Err(TokenError::Malformed(_))
        ));
        let big = format!("<EncryptedData>{}</EncryptedData>", "A".repeat(70_000));
        assert!(matches!(
            verify_idp(&big, NOW),
            Err(TokenError::TooLarge { .. })
        ));
        let laughs = "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><lolz>&lol2;</lolz>";
        assert_eq!(verify_idp(laughs, NOW), Err(TokenError::Dtd));
        // Inside the ciphertext too: the decrypted plaintext is checked the same way.
        assert_eq!(verify_idp(&reencrypt(laughs), NOW), Err(TokenError::Dtd));
    }
}

mod webticket_rejects {
    use super::*;

    #[test]
    fn tampered_name_identifier() {
        let t = good_ticket().replacen(
            ">sip:alice@contoso.com</saml:NameIdentifier>",
            ">sip:mallory@contoso.com</saml:NameIdentifier>",
            1,
        );
        assert!(t.contains("mallory"));
        assert!(matches!(
            verify_wt(t.as_bytes(), NOW),
            Err(TokenError::BadSignature(_))
        ));
    }

    #[test]
    fn signed_by_another_key() {
        let (t, _) = ticket_and_response(&evil_signer(), USER_URL, &[1u8; 32]);
        assert_eq!(
            verify_wt(t.assertion.as_bytes(), NOW),
            Err(TokenError::UntrustedSigner)
        );
    }

    #[test]
    fn other_audience() {
        let (t, _) = ticket_and_response(
            &wt_signer(),
            "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof_SHA1",
            &[1u8; 32],
        );
        assert!(matches!(
            verify_wt(t.assertion.as_bytes(), NOW),
            Err(TokenError::WrongAudience { .. })
        ));
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let t = good_ticket();
        assert!(matches!(
            verify_wt(t.as_bytes(), NOW + Duration::hours(8) + SKEW),
            Err(TokenError::Expired { .. })
        ));
        assert!(matches!(
            verify_wt(t.as_bytes(), NOW - Duration::minutes(11)),
            Err(TokenError::NotYetValid { .. })
        ));
    }

    #[test]
    fn wrong_issuer() {
        let r = verify_web_ticket(
            good_ticket().as_bytes(),
            &wt_trusted(),
            &wrap(),
            "https://other/",
            USER_URL,
            NOW,
            SKEW,
        );
        assert!(matches!(r, Err(TokenError::WrongIssuer { .. })));
    }

    #[test]
    fn proof_key_wrapped_for_another_key() {
        let r = verify_web_ticket(
            good_ticket().as_bytes(),
            &wt_trusted(),
            &WrapKey::from_bytes([1; 32]),
            WT_ISSUER,
            USER_URL,
            NOW,
            SKEW,
        );
        assert!(matches!(r, Err(TokenError::UnknownKeyName { .. })));
    }

    #[test]
    fn wrapping_signed_assertion_inside_forged_one() {
        let signed = good_ticket();
        let forged = format!(
            "<saml:Assertion xmlns:saml=\"{}\" MajorVersion=\"1\" MinorVersion=\"1\" AssertionID=\"_evil\" Issuer=\"{WT_ISSUER}\" IssueInstant=\"2026-11-25T02:52:39Z\"><saml:Conditions NotOnOrAfter=\"2030-01-01T00:00:00Z\"><saml:AudienceRestrictionCondition><saml:Audience>{}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions><saml:Advice>{signed}</saml:Advice><saml:AttributeStatement><saml:Subject><saml:NameIdentifier>sip:mallory@contoso.com</saml:NameIdentifier></saml:Subject></saml:AttributeStatement></saml:Assertion>",
            ns::SAML1,
            xml::escape_text(USER_URL)
        );
        assert!(matches!(
            verify_wt(forged.as_bytes(), NOW),
            Err(TokenError::SignatureWrapping(_))
        ));
    }

    #[test]
    fn wrapping_forged_assertion_next_to_signed_one() {
        let signed = good_ticket();
        let forged = signed.replace("alice", "mallory");
        // Same ID (the reference would resolve to either) and a different ID, both orders.
        for doc in [
            format!("<x:Tokens xmlns:x=\"urn:x\">{forged}{signed}</x:Tokens>"),
            format!(
                "<x:Tokens xmlns:x=\"urn:x\">{signed}{}</x:Tokens>",
                forged.replace("AssertionID=\"_", "AssertionID=\"_z")
            ),
        ] {
            assert!(
                matches!(
                    verify_wt(doc.as_bytes(), NOW),
                    Err(TokenError::SignatureWrapping(_))
                ),
                "{doc}"
            );
        }
    }

    #[test]
    fn signature_moved_out_of_the_assertion() {
        let signed = good_ticket();
        let start = signed.find("<Signature").unwrap();
        let end = signed.find("</Signature>").unwrap() + "</Signature>".len();
        let moved = signed[..start].to_string() + &signed[end..];
        let moved = moved.replacen(
            "<saml:Conditions",
            &format!(
                "<saml:Advice>{}</saml:Advice><saml:Conditions",
                &signed[start..end]
            ),
            1,
        );
        assert!(matches!(
            verify_wt(moved.as_bytes(), NOW),
            Err(TokenError::SignatureWrapping(_))
        ));
    }

    #[test]
    fn malformed_oversized_and_dtd() {
        assert!(matches!(
            verify_wt(b"<saml:Assertion", NOW),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            verify_wt(b"<a><b></a>", NOW),
            Err(TokenError::Malformed(_))
        ));
        let big = vec![b' '; 64 * 1024 + 1];
        assert!(matches!(
            verify_wt(&big, NOW),
            Err(TokenError::TooLarge { .. })
        ));
        let laughs = b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;\">]><lolz>&lol3;</lolz>";
        assert_eq!(verify_wt(laughs, NOW), Err(TokenError::Dtd));
    }
}

/// xmlsec1 (libxmlsec1, the reference implementation) must accept our signature.
#[test]
fn xmlsec1_verifies_our_web_ticket() {
    use std::process::Command;
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        eprintln!(
            "NOTICE: xmlsec1 is not installed; skipping the interop oracle test (apt-get install xmlsec1)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("lyncd-wsxml-xmlsec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("wt-cert.pem");
    std::fs::write(&cert, &fx().wt.cert).unwrap();
    let run = |name: &str, xml: &str| {
        let f = dir.join(name);
        std::fs::write(&f, xml).unwrap();
        let out = Command::new("xmlsec1")
            .arg("--verify")
            .arg("--id-attr:AssertionID")
            .arg("urn:oasis:names:tc:SAML:1.0:assertion:Assertion")
            .arg("--pubkey-cert-pem")
            .arg(&cert)
            .arg(&f)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ticket = good_ticket();
    let (ok, log) = run("ticket.xml", &ticket);
    assert!(ok, "xmlsec1 rejected our ticket: {log}");
    let (ok, _) = run("tampered.xml", &ticket.replacen("alice", "mallory", 1));
    assert!(!ok, "xmlsec1 accepted a tampered ticket");
    let _ = std::fs::remove_dir_all(&dir);
}
