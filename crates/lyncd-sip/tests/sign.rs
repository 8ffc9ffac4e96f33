//! Signature buffers against the known answers of sip.md §6.1, §6.2 and §7.1.

use bytes::Bytes;
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::sign::{SigParams, buffer};
use lyncd_sip::{FieldError, Message};
use sha1::{Digest, Sha1};

/// Joins doc lines with CRLF and closes the header block.
fn wire(lines: &[&str]) -> Message {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    Message::parse(Bytes::from(s)).expect("doc message parses")
}

const C3: &[&str] = &[
    "REGISTER sip:contoso.com SIP/2.0",
    "Via: SIP/2.0/tls 192.0.2.10:50123;branch=z9hG4bK0F6B1D93A2C4E7B85D10",
    "From: <sip:alice@contoso.com>;tag=4120735512;epid=8f2c41d07ab3",
    "To: <sip:alice@contoso.com>",
    "Max-Forwards: 70",
    "CSeq: 6 REGISTER",
    "User-Agent: Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)",
    "Call-ID: 3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx",
    r#"Contact: <sip:192.0.2.10:50123;transport=tls;ms-opaque=d3470f2e1d>;methods="INVITE, MESSAGE, INFO, SUBSCRIBE, OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, BENOTIFY";proxy=replace;+sip.instance="<urn:uuid:b5abc5c8-14ab-565b-9809-c28e775d4534>""#,
    "Supported: gruu-10, adhoclist, msrtc-event-categories, com.microsoft.msrtc.presence",
    "Event: registration",
    "Allow-Events: presence",
    "ms-keep-alive: UAC;hop-hop=yes",
    "Content-Length: 0",
    r#"Authorization: TLS-DSK qop="auth", opaque="9C41E07B", realm="SIP Communications Service", targetname="sippool.contoso.com", version=4, crand="1a2b3c4d", cnum="1", response="1C19B3D787E1046D83B2C09623F818D6023FBAB4""#,
];

const C3_BUFFER: &str = "<TLS-DSK><1a2b3c4d><1><SIP Communications Service><sippool.contoso.com><3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx><6><REGISTER><sip:alice@contoso.com><4120735512><sip:alice@contoso.com><><><><>";

const OK200: &[&str] = &[
    "SIP/2.0 200 OK",
    r#"Authentication-Info: TLS-DSK qop="auth", opaque="9C41E07B", srand="6F3A9C21", snum="1", rspauth="1ebca73ad8514492f050e2cc8a5b5abae39576fa", targetname="sippool.contoso.com", realm="SIP Communications Service", version=4"#,
    "Via: SIP/2.0/tls 192.0.2.10:50123;branch=z9hG4bK0F6B1D93A2C4E7B85D10;received=198.51.100.7;ms-received-port=50123",
    "From: <sip:alice@contoso.com>;tag=4120735512;epid=8f2c41d07ab3",
    "To: <sip:alice@contoso.com>;tag=A1B2C3D4E5",
    "Call-ID: 3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx",
    "CSeq: 6 REGISTER",
    r#"Contact: <sip:192.0.2.10:50123;transport=tls;ms-opaque=d3470f2e1d>;methods="INVITE, MESSAGE, INFO, SUBSCRIBE, OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, BENOTIFY";proxy=replace;+sip.instance="<urn:uuid:b5abc5c8-14ab-565b-9809-c28e775d4534>";expires=7200;gruu="sip:alice@contoso.com;opaque=user:epid:2Ew0tQ7mVFeKQS9-HG2LkA;gruu""#,
    "Expires: 7200",
    "ms-keep-alive: UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300",
    "Supported: gruu-10",
    "Supported: adhoclist",
    "Supported: msrtc-event-categories",
    "Allow-Events: vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,presence,presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2",
    "Server: RTC/6.0",
    "Content-Length: 0",
];

const OK200_BUFFER: &str = "<TLS-DSK><6F3A9C21><1><SIP Communications Service><sippool.contoso.com><3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx><6><REGISTER><sip:alice@contoso.com><4120735512><sip:alice@contoso.com><A1B2C3D4E5><><><7200><200>";

/// sip.md §5.5 signing keys (key_material[64..96] and [96..128]).
const CLIENT_KEY: &str = "ce3995c07f413757261e4c945cbc6f3089856e605c4a8523760f961bbea80ad9";
const SERVER_KEY: &str = "0a429b87784f035800479e57cc6f9e92272739bfb96082638cf33ebd4125fc39";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 2104 HMAC-SHA1, here only to check the doc's consistency vectors end to end.
fn hmac_sha1_hex(key: &[u8], data: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha1::new()
        .chain_update(&ipad)
        .chain_update(data)
        .finalize();
    let outer = Sha1::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn c3_buffer_sip_md_6_1() {
    let m = wire(C3);
    let auth = AuthHeader::parse(m.header("Authorization").expect("auth")).expect("parse");
    let p = SigParams::from_auth(&auth, 4).expect("sig params");
    let buf = buffer(&m, &p).expect("buffer");
    assert_eq!(buf, C3_BUFFER);
    assert_eq!(buf.len(), 192);
    let mac = hmac_sha1_hex(&unhex(CLIENT_KEY), buf.as_bytes());
    assert!(mac.eq_ignore_ascii_case(auth.get("response").expect("response")));
}

#[test]
fn c3_buffer_is_the_same_before_authorization_is_added() {
    // The client signs first, then appends Authorization with with_header.
    let unsigned = wire(&C3[..C3.len() - 1]);
    let p = SigParams {
        scheme: "TLS-DSK",
        rand: "1a2b3c4d",
        num: "1",
        realm: "SIP Communications Service",
        targetname: "sippool.contoso.com",
        version: 4,
    };
    assert_eq!(buffer(&unsigned, &p).expect("buffer"), C3_BUFFER);
    let value = C3[C3.len() - 1]
        .strip_prefix("Authorization: ")
        .expect("prefix");
    let signed = unsigned.with_header("Authorization", value);
    assert_eq!(signed.as_bytes(), wire(C3).as_bytes());
}

#[test]
fn ok200_buffer_sip_md_6_2() {
    let m = wire(OK200);
    let auth = AuthHeader::parse(m.header("Authentication-Info").expect("info")).expect("parse");
    let p = SigParams::from_auth(&auth, 4).expect("sig params");
    let buf = buffer(&m, &p).expect("buffer");
    assert_eq!(buf, OK200_BUFFER);
    let mac = hmac_sha1_hex(&unhex(SERVER_KEY), buf.as_bytes());
    assert_eq!(mac, auth.get("rspauth").expect("rspauth"));
}

#[test]
fn authentication_info_render_matches_sip_md_6_2() {
    let rendered = AuthParams::new("TLS-DSK")
        .quoted("qop", "auth")
        .quoted("opaque", "9C41E07B")
        .quoted("srand", "6F3A9C21")
        .quoted("snum", "1")
        .quoted("rspauth", "1ebca73ad8514492f050e2cc8a5b5abae39576fa")
        .quoted("targetname", "sippool.contoso.com")
        .quoted("realm", "SIP Communications Service")
        .token("version", "4")
        .render();
    let doc = OK200[1]
        .strip_prefix("Authentication-Info: ")
        .expect("prefix");
    assert_eq!(rendered, doc);
    // And the §5.1 Office-trace shape.
    let office = r#"TLS-DSK qop="auth", opaque="F755045D", srand="1D9666D9", snum="17", rspauth="3359c8ac2e6229b2eb9738ac707dc8c3e54f65f0", targetname="sippool.contoso.com", realm="SIP Communications Service", version=4"#;
    let parsed = AuthHeader::parse(office).expect("parse");
    let mut again = AuthParams::new(parsed.scheme);
    for (n, v) in parsed.params() {
        again = if n == "version" {
            again.token(n, v)
        } else {
            again.quoted(n, v)
        };
    }
    assert_eq!(again.render(), office);
}

/// sip.md §7.1: a 180 to an INVITE signed with NTLM v4, PAI scheme in upper case.
fn ringing() -> Message {
    wire(&[
        "SIP/2.0 180 Ringing",
        "Via: SIP/2.0/tls 192.0.2.20:5061;branch=z9hG4bK1234;ms-received-port=5061",
        "From: \"Alice\" <sip:alice@contoso.com>;tag=2420628112;epid=01010101",
        "To: <sip:bob@contoso.com>;tag=7aee15546a;epid=a1b2c3d4e5",
        "Call-ID: 41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x",
        "CSeq: 1 INVITE",
        "Contact: <sip:bob@contoso.com;gruu;opaque=user:epid:abc>",
        "P-Asserted-Identity: \"Bob\" <SIP:bob@contoso.com>",
        "Content-Length: 0",
    ])
}

fn ntlm(version: u32) -> SigParams<'static> {
    SigParams {
        scheme: "NTLM",
        rand: "1B6D47A1",
        num: "11",
        realm: "SIP Communications Service",
        targetname: "sippool.contoso.com",
        version,
    }
}

#[test]
fn ntlm_180_invite_sip_md_7_1() {
    assert_eq!(
        buffer(&ringing(), &ntlm(4)).expect("buffer"),
        "<NTLM><1B6D47A1><11><SIP Communications Service><sippool.contoso.com><41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x><1><INVITE><sip:alice@contoso.com><2420628112><sip:bob@contoso.com><7aee15546a><SIP:bob@contoso.com><><><180>"
    );
}

#[test]
fn version_below_3_drops_to_uri_and_pai() {
    assert_eq!(
        buffer(&ringing(), &ntlm(2)).expect("buffer"),
        "<NTLM><1B6D47A1><11><SIP Communications Service><sippool.contoso.com><41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x><1><INVITE><sip:alice@contoso.com><2420628112><7aee15546a><><180>"
    );
    let m = wire(C3);
    assert_eq!(
        buffer(
            &m,
            &SigParams {
                version: 2,
                ..ntlm(2)
            }
        )
        .expect("buffer"),
        "<NTLM><1B6D47A1><11><SIP Communications Service><sippool.contoso.com><3F2Ag9B1Ca77C0i12D4m0E5Ft6A7Bb8C9Dx0E1Fx><6><REGISTER><sip:alice@contoso.com><4120735512><><>"
    );
}

#[test]
fn pai_tel_and_preferred_identity_fallback() {
    let both = wire(&[
        "BENOTIFY sip:alice@contoso.com SIP/2.0",
        "From: sip:bob@contoso.com;tag=1",
        "To: <sip:alice@contoso.com>;tag=2",
        "Call-ID: c",
        "CSeq: 9 BENOTIFY",
        "P-Asserted-Identity: <sip:bob@contoso.com>, <tel:+14255550100>",
        "P-Preferred-Identity: <sip:nobody@contoso.com>",
        "Expires: 0",
        "Content-Length: 0",
    ]);
    assert_eq!(
        buffer(&both, &ntlm(4)).expect("buffer"),
        "<NTLM><1B6D47A1><11><SIP Communications Service><sippool.contoso.com><c><9><BENOTIFY><sip:bob@contoso.com><1><sip:alice@contoso.com><2><sip:bob@contoso.com><tel:+14255550100><0>"
    );
    let preferred = wire(&[
        "MESSAGE sip:alice@contoso.com SIP/2.0",
        "From: <sip:bob@contoso.com>;tag=1",
        "To: <sip:alice@contoso.com>",
        "i: c",
        "CSeq: 2 MESSAGE",
        "P-Preferred-Identity: tel:+14255550100",
        "P-Preferred-Identity: <sip:bob@contoso.com>",
        "Content-Length: 0",
    ]);
    assert_eq!(
        buffer(&preferred, &ntlm(4)).expect("buffer"),
        "<NTLM><1B6D47A1><11><SIP Communications Service><sippool.contoso.com><c><2><MESSAGE><sip:bob@contoso.com><1><sip:alice@contoso.com><><sip:bob@contoso.com><tel:+14255550100><>"
    );
}

#[test]
fn missing_fields_are_errors() {
    let base = [
        "OPTIONS sip:x SIP/2.0",
        "From: <sip:a@b>;tag=1",
        "To: <sip:c@d>",
        "Call-ID: c",
        "CSeq: 1 OPTIONS",
    ];
    for (skip, field) in [(1, "From"), (2, "To"), (3, "Call-ID"), (4, "CSeq")] {
        let lines: Vec<&str> = base
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        assert_eq!(
            buffer(&wire(&lines), &ntlm(4)),
            Err(FieldError::Missing(field))
        );
    }
    let bad_from = wire(&[
        "OPTIONS sip:x SIP/2.0",
        "From: <sip:a@b",
        "To: <sip:c@d>",
        "Call-ID: c",
        "CSeq: 1 OPTIONS",
    ]);
    assert_eq!(
        buffer(&bad_from, &ntlm(4)),
        Err(FieldError::Invalid("From"))
    );
}
