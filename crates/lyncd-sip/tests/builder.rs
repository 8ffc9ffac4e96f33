//! Building answers: response_to must echo the transaction headers byte for
//! byte (SIPE matches on Call-ID and CSeq; signatures cover From/To as sent).

use std::path::Path;

use bytes::Bytes;
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::{Message, MessageBuilder, epid_to_instance, response_to};

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/interop/captures"
);

fn load(rel: &str) -> Message {
    let bytes = std::fs::read(Path::new(CAPTURES).join(rel)).expect("capture");
    Message::parse(Bytes::from(bytes)).expect("parse")
}

#[test]
fn response_to_copies_transaction_headers_exactly() {
    let raw = "INVITE sip:bob@contoso.com SIP/2.0\r\n\
               Via: SIP/2.0/tls 192.0.2.10:50123;branch=z9hG4bKa;ms-received-port=1\r\n\
               v:   SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKb , SIP/2.0/TLS 10.0.0.2;branch=z9hG4bKc\r\n\
               Max-Forwards: 70\r\n\
               f: \"Alice  Smith\" <sip:alice@contoso.com>;tag=4120735512;epid=8f2c41d07ab3\r\n\
               To: <SIP:Bob@Contoso.com>  \r\n\
               i: 3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx\r\n\
               CSeq:   0042   INVITE\r\n\
               Content-Length: 0\r\n\r\n";
    let req = Message::parse(Bytes::from_static(raw.as_bytes())).expect("parse");
    let resp = response_to(&req, 180, "Ringing", Some("7aee15546a")).build();
    let expected = "SIP/2.0 180 Ringing\r\n\
                    Via: SIP/2.0/tls 192.0.2.10:50123;branch=z9hG4bKa;ms-received-port=1\r\n\
                    Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKb , SIP/2.0/TLS 10.0.0.2;branch=z9hG4bKc\r\n\
                    From: \"Alice  Smith\" <sip:alice@contoso.com>;tag=4120735512;epid=8f2c41d07ab3\r\n\
                    To: <SIP:Bob@Contoso.com>;tag=7aee15546a\r\n\
                    Call-ID: 3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx\r\n\
                    CSeq: 0042   INVITE\r\n\
                    Content-Length: 0\r\n\r\n";
    assert_eq!(
        std::str::from_utf8(resp.as_bytes()).expect("utf8"),
        expected
    );
    assert_eq!(resp.cseq().expect("cseq").number_raw, "0042");
    assert_eq!(resp.to_addr().expect("to").tag(), Some("7aee15546a"));
}

#[test]
fn response_to_keeps_an_existing_to_tag_and_adds_headers_after() {
    let req =
        load("06-ntlm-signed-on/003-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req.txt");
    let contact = req.header("Contact").expect("contact");
    let resp = response_to(&req, 200, "OK", Some("harness1234"))
        .header("Contact", &format!("{contact};expires=7200"))
        .header("Expires", "7200")
        .header("Supported", "msrtc-event-categories")
        .build();
    // Byte-exact copies of the captured request's values.
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        assert_eq!(resp.header(name), req.header(name), "{name}");
    }
    assert_eq!(
        resp.header("To"),
        Some("<sip:alice@contoso.com>;tag=harness1234")
    );
    // The capture's real 200 OK has the same transaction headers.
    let real =
        load("06-ntlm-signed-on/003-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.resp.txt");
    for name in ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Expires"] {
        assert_eq!(resp.header(name), real.header(name), "{name}");
    }
    // A To that already has a tag is left alone.
    let tagged = response_to(&real, 200, "OK", Some("other")).build();
    assert_eq!(tagged.header("To"), real.header("To"));
    // No tag requested: To copied as is.
    let plain = response_to(&req, 100, "Trying", None).build();
    assert_eq!(plain.header("To"), req.header("To"));
    let reparsed = Message::parse(resp.to_bytes()).expect("our output parses");
    assert_eq!(reparsed.headers().count(), resp.headers().count());
}

#[test]
fn signed_response_flow() {
    // Sign, then append Authentication-Info last, as the registrar does.
    let req = load(
        "01-autodiscover-full-flow/011-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req.txt",
    );
    let resp = response_to(&req, 401, "Unauthorized", Some("harness1234"))
        .header("Server", "RTC/6.0")
        .build();
    let challenge = AuthParams::new("TLS-DSK")
        .quoted("realm", "SIP Communications Service")
        .quoted("targetname", "lyncfe.contoso.com")
        .quoted(
            "sts-uri",
            "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc",
        )
        .token("version", "4")
        .render();
    let resp = resp.with_header("WWW-Authenticate", &challenge);
    let real = load(
        "01-autodiscover-full-flow/011-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.resp.txt",
    );
    for name in [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Server",
        "Content-Length",
    ] {
        assert_eq!(resp.header(name), real.header(name), "{name}");
    }
    let ours = AuthHeader::parse(resp.header("WWW-Authenticate").expect("ours")).expect("parse");
    let theirs = AuthHeader::parse(real.header("WWW-Authenticate").expect("real")).expect("parse");
    let mut a: Vec<_> = ours.params().collect();
    let mut b: Vec<_> = theirs.params().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let last = resp
        .as_bytes()
        .rsplit(|&b| b == b'\n')
        .nth(2)
        .expect("last header line");
    assert!(last.starts_with(b"WWW-Authenticate: TLS-DSK realm="));
}

#[test]
fn sip_md_challenge_and_authorization_lines() {
    let ntlm = AuthHeader::parse(
        r#"NTLM qop="auth", realm="SIP Communications Service", targetname="sippool.contoso.com", gssapi-data="", version=4"#,
    )
    .expect("ntlm");
    assert_eq!(ntlm.get("gssapi-data"), Some(""));
    assert_eq!(ntlm.get("version"), Some("4"));
    let digest = AuthHeader::parse(
        r#"Digest realm="SIP Communications Service", nonce="abc", opaque="def", algorithm=MD5-sess, qop="auth""#,
    )
    .expect("digest");
    assert_eq!(digest.get("algorithm"), Some("MD5-sess"));
    let kerberos = AuthHeader::parse(
        r#"Kerberos realm="SIP Communications Service", targetname="sip/sippool.contoso.com", version=4"#,
    )
    .expect("kerberos");
    assert_eq!(kerberos.get("targetname"), Some("sip/sippool.contoso.com"));
}

#[test]
fn builder_always_has_reason_and_content_length() {
    let m = MessageBuilder::response(200, "OK").build();
    assert_eq!(m.as_bytes(), b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let body = Bytes::from_static(b"<roamingList/>");
    let m = MessageBuilder::request("NOTIFY", "sip:alice@contoso.com")
        .header("Event", "vnd-microsoft-roaming-self")
        .body("application/vnd-microsoft-roaming-self+xml", body.clone())
        .build();
    assert_eq!(m.header("Content-Length"), Some("14"));
    assert_eq!(m.header("l"), Some("14"));
    assert_eq!(
        m.header("Content-Type"),
        Some("application/vnd-microsoft-roaming-self+xml")
    );
    assert_eq!(m.body(), &body[..]);
    assert_eq!(m.headers().last().map(|(n, _)| n), Some("Content-Length"));
}

#[test]
fn epid_vectors() {
    assert_eq!(
        epid_to_instance("01010101"),
        "4b1682a8-f968-5701-83fc-7c6741dc6697"
    );
    assert_eq!(
        epid_to_instance("c97532c1946f"),
        "5ccdb10d-dca1-559e-ad2b-b514060a2da2"
    );
}
