//! Golden tests: every SIP message pidgin-sipe sent or received in the interop
//! captures must parse, both as one message and through the stream decoder.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use lyncd_sip::auth::AuthHeader;
use lyncd_sip::{Decoder, Frame, Limits, Message, StartLine, epid_to_instance};

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/interop/captures"
);

fn sip_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(CAPTURES).expect("captures directory") {
        let dir = dir.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("capture dir") {
            let f = f.expect("entry").path();
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.contains("-sip-") && (name.ends_with(".req.txt") || name.ends_with(".resp.txt"))
            {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

fn load(rel: &str) -> Message {
    let path = Path::new(CAPTURES).join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Message::parse(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_capture_parses() {
    let files = sip_files();
    assert!(
        files.len() >= 30,
        "expected the SIP captures, found {}",
        files.len()
    );
    for f in files {
        let raw = std::fs::read(&f).expect("read");
        let m = Message::parse(Bytes::from(raw.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(m.as_bytes(), &raw[..]);
        let is_req = f.to_string_lossy().ends_with(".req.txt");
        assert_eq!(m.is_request(), is_req, "{}", f.display());
        // Every captured message carries the transaction keys.
        m.call_id()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        m.cseq().unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        m.from_addr()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        m.to_addr()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let cl: usize = m
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .expect("CL");
        assert_eq!(m.body().len(), cl);
        // Any auth header in a capture is readable.
        for name in ["Authorization", "WWW-Authenticate", "Authentication-Info"] {
            for v in m.header_all(name) {
                AuthHeader::parse(v).unwrap_or_else(|e| panic!("{}: {name}: {e}", f.display()));
            }
        }
    }
}

#[test]
fn every_capture_decodes_whole_and_byte_by_byte() {
    for f in sip_files() {
        let raw = std::fs::read(&f).expect("read");

        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&raw[..]);
        match dec.decode(&mut buf) {
            Ok(Some(Frame::Message(m))) => assert_eq!(m.as_bytes(), &raw[..]),
            other => panic!("{}: {other:?}", f.display()),
        }
        assert!(buf.is_empty());

        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, b) in raw.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            match dec.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(Frame::Message(m))) => {
                    assert_eq!(
                        i,
                        raw.len() - 1,
                        "{}: message before its last byte",
                        f.display()
                    );
                    got = Some(m);
                }
                other => panic!("{} at byte {i}: {other:?}", f.display()),
            }
        }
        let m = got.unwrap_or_else(|| panic!("{}: no message", f.display()));
        assert_eq!(m.as_bytes(), &raw[..]);
        assert!(buf.is_empty());
    }
}

#[test]
fn all_captures_pipelined_with_keepalives() {
    let files = sip_files();
    let mut stream = Vec::new();
    for f in &files {
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(&std::fs::read(f).expect("read"));
    }
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let (mut messages, mut keepalives) = (0, 0);
    // Feed in odd-sized chunks to cross every boundary somewhere.
    for chunk in stream.chunks(97) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = dec.decode(&mut buf).expect("decode") {
            match frame {
                Frame::KeepAlive => keepalives += 1,
                Frame::Message(_) => messages += 1,
            }
        }
    }
    assert_eq!(messages, files.len());
    assert!(keepalives >= files.len());
    assert!(buf.is_empty());
}

#[test]
fn capture_01_register_fields() {
    let m = load(
        "01-autodiscover-full-flow/011-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req.txt",
    );
    assert_eq!(
        m.start(),
        StartLine::Request {
            method: "REGISTER",
            uri: "sip:contoso.com"
        }
    );
    assert_eq!(m.call_id(), Ok("705Ag16DCa41EFi6F0Bm07E8tAC50b71DFxB74Fx"));
    let cseq = m.cseq().expect("cseq");
    assert_eq!((cseq.number, cseq.method), (1, "REGISTER"));
    let from = m.from_addr().expect("from");
    assert_eq!(from.uri, "sip:alice@contoso.com");
    assert_eq!(from.tag(), Some("5634129346"));
    assert_eq!(from.epid(), Some("c97532c1946f"));
    assert_eq!(m.to_addr().expect("to").tag(), None);
    assert_eq!(m.expires(), None);
    assert_eq!(m.header("ms-keep-alive"), Some("UAC;hop-hop=yes"));
    assert_eq!(m.header("MS-KEEP-ALIVE"), Some("UAC;hop-hop=yes"));

    let contact = m.contact().expect("contact");
    assert_eq!(
        contact.uri,
        "sip:127.0.0.1:38532;transport=tls;ms-opaque=d3470f2e1d"
    );
    assert_eq!(contact.param("proxy"), Some("replace"));
    assert_eq!(
        contact.param("methods"),
        Some(
            "INVITE, MESSAGE, INFO, SUBSCRIBE, OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, BENOTIFY"
        )
    );
    assert_eq!(
        contact.param("+sip.instance"),
        Some("<urn:uuid:5ccdb10d-dca1-559e-ad2b-b514060a2da2>")
    );
    // Known answer: the capture's epid derives the capture's instance id.
    assert_eq!(
        contact.sip_instance(),
        Some("5ccdb10d-dca1-559e-ad2b-b514060a2da2")
    );
    assert_eq!(
        epid_to_instance("c97532c1946f"),
        "5ccdb10d-dca1-559e-ad2b-b514060a2da2"
    );
    // The contact list splitter must not cut at the commas inside methods="…".
    assert_eq!(m.contacts().count(), 1);

    // Header order and raw names are kept.
    let names: Vec<&str> = m.headers().map(|(n, _)| n).collect();
    assert_eq!(names.first(), Some(&"Via"));
    assert_eq!(names.last(), Some(&"Content-Length"));
    assert_eq!(names.len(), 13);
}

#[test]
fn capture_challenge_and_response() {
    let m = load(
        "01-autodiscover-full-flow/011-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.resp.txt",
    );
    assert_eq!(m.status(), Some(401));
    assert_eq!(m.reason(), Some("Unauthorized"));
    assert_eq!(m.to_addr().expect("to").tag(), Some("harness1234"));
    let auth = AuthHeader::parse(m.header("WWW-Authenticate").expect("challenge")).expect("auth");
    assert!(auth.is_scheme("tls-dsk"));
    assert_eq!(auth.get("realm"), Some("SIP Communications Service"));
    assert_eq!(auth.get("TARGETNAME"), Some("lyncfe.contoso.com"));
    assert_eq!(
        auth.get("sts-uri"),
        Some("https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc")
    );
    assert_eq!(auth.get("version"), Some("4"));
    assert_eq!(auth.get("opaque"), None);
}

#[test]
fn capture_tls_dsk_authorization_with_gssapi_data() {
    let m = load(
        "01-autodiscover-full-flow/018-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req.txt",
    );
    assert_eq!(m.cseq().expect("cseq").number, 4);
    assert_eq!(m.from_addr().expect("from").tag(), Some("4731562066"));
    // Authorization comes after Content-Length in SIPE's messages.
    let (last_name, last_value) = m.headers().last().expect("headers");
    assert_eq!(last_name, "Authorization");
    let auth = AuthHeader::parse(last_value).expect("auth");
    assert_eq!(auth.scheme, "TLS-DSK");
    assert_eq!(
        auth.params().map(|(n, _)| n).collect::<Vec<_>>(),
        ["qop", "realm", "targetname", "gssapi-data", "version"]
    );
    assert_eq!(auth.get("qop"), Some("auth"));
    assert_eq!(
        auth.get("gssapi-data"),
        Some("FgMBADUBAAAxAwFrBk139g2+z/pLBQEau9nzWgKe4Scg6lGTvTKcV2IOKwAACgAEAAUALwA1AAMBAA==")
    );
}

#[test]
fn capture_ntlm_signed_subscribe_with_body() {
    let m = load(
        "06-ntlm-signed-on/005-sip-tls-lyncfe.contoso.com-SUBSCRIBE-sip_alice_contoso.com.req.txt",
    );
    assert_eq!(m.method(), Some("SUBSCRIBE"));
    assert_eq!(m.call_id(), Ok("B917gACF8a0711iE165m5DA0tD531bB364xA425x"));
    assert_eq!(m.expires(), Some(Ok(0)));
    assert_eq!(m.body().len(), 301);
    assert!(m.body().starts_with(b"<provisioningGroupList"));
    assert_eq!(m.header_all("Supported").count(), 3);
    let auth = AuthHeader::parse(m.header("Authorization").expect("auth")).expect("parse");
    assert!(auth.is_scheme("NTLM"));
    assert_eq!(auth.get("crand"), Some("2a51b614"));
    assert_eq!(auth.get("cnum"), Some("2"));
    assert_eq!(
        auth.get("response"),
        Some("010000008A3B3836C4C61E2B64000000")
    );
    let contact = m.contact().expect("contact");
    assert_eq!(
        contact.uri,
        "sip:alice@contoso.com:49694;maddr=127.0.0.1;transport=tls"
    );
    assert_eq!(contact.uri_user_host(), "alice@contoso.com:49694");
}

#[test]
fn capture_ntlm_200_ok() {
    let m =
        load("06-ntlm-signed-on/003-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.resp.txt");
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.expires(), Some(Ok(7200)));
    assert_eq!(m.contact().and_then(|c| c.param("expires")), Some("7200"));
    assert_eq!(m.cseq().expect("cseq").method, "REGISTER");
}
