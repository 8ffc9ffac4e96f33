//! Our client against our server, in memory, leg by leg (sip.md §5.2), and what each side
//! refuses.

mod common;

use common::{ALICE, Fixture, RawClient, TARGETNAME, USER_CERT_LIFETIME, fixture, now, user_cert};
use lyncd_pki::CertificateAuthority;
use lyncd_tlsdsk::records::{CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HANDSHAKE, split_records};
use lyncd_tlsdsk::{
    AwaitingClientFinish, ClientContext, ClientDone, MacAlgorithm, ServerContext, ServerDone,
    TlsDskError, TlsVersion, UtcTime,
};
use openssl::ssl::{SslContext, SslMethod, SslVersion};
use time::Duration;

struct Run {
    server: ServerDone,
    client: ClientDone,
    sizes: [usize; 4],
}

fn handshake(server: &ServerContext, client: &ClientContext, now: UtcTime) -> Run {
    let (hello, c1) = client.connect(TARGETNAME, now).expect("C1");
    let (awaiting, s1) = server.accept(&c1, now).expect("S1");
    let (finishing, c2) = hello.step(&s1).expect("C2");
    let (server_done, s2) = awaiting.finish(&c2).expect("S2");
    let client_done = finishing.finish(&s2).expect("client finish");
    Run {
        server: server_done,
        client: client_done,
        sizes: [c1.len(), s1.len(), c2.len(), s2.len()],
    }
}

fn alice_client(f: &Fixture, max: TlsVersion) -> ClientContext {
    ClientContext::with_max_version(
        &f.alice_cert_pem,
        &f.alice_key_pem,
        Some(f.ca.cert_pem()),
        max,
    )
    .unwrap()
}

fn check_keys_agree(run: &Run) {
    let (s, c) = (&run.server.keys, &run.client.keys);
    assert_eq!(s.mac, MacAlgorithm::HmacSha1);
    assert_eq!(c.mac, MacAlgorithm::HmacSha1);
    assert_eq!(s.client.expose(), c.client.expose());
    assert_eq!(s.server.expose(), c.server.expose());
    assert_ne!(s.client.expose(), s.server.expose());

    let buffer = b"<TLS-DSK><1a2b3c4d><1><SIP Communications Service><sippool.contoso.com>";
    let from_client = c.sign_client(buffer);
    assert_eq!(from_client.len(), 40);
    assert!(s.verify_client(buffer, &from_client));
    assert!(s.verify_client(buffer, &from_client.to_uppercase()));
    assert!(!s.verify_server(buffer, &from_client));
    let from_server = s.sign_server(buffer);
    assert!(c.verify_server(buffer, &from_server));
    assert!(!c.verify_client(buffer, &from_server));
}

#[test]
fn full_handshake_tls12() {
    let f = fixture();
    let run = handshake(&f.server(), &f.client(), now());
    check_keys_agree(&run);
    assert_eq!(run.server.protocol, "TLSv1.2");
    assert_eq!(run.client.protocol, "TLSv1.2");
    assert!(run.server.cipher == "AES256-SHA" || run.server.cipher == "AES128-SHA");
    assert_eq!(run.server.cipher, run.client.cipher);

    let peer = &run.server.peer;
    assert_eq!(peer.sip_uris, vec![ALICE.to_string()]);
    assert_eq!(peer.subject_cn.as_deref(), Some("alice@contoso.com"));
    assert_eq!(peer.not_before, now());
    assert_eq!(peer.not_after, now() + USER_CERT_LIFETIME);
    assert!(!peer.serial_hex.is_empty());
    assert_eq!(peer.serial_hex, peer.serial_hex.to_lowercase());
    let parsed = openssl::x509::X509::from_der(&peer.der).unwrap();
    assert_eq!(
        hex(&parsed.serial_number().to_bn().unwrap().to_vec()),
        peer.serial_hex
    );

    // S2 = CCS (6) + Finished; TLS 1.2 CBC with an explicit IV and encrypt-then-MAC (both ends
    // are OpenSSL and negotiate it): 5 + 16 IV + 32 + 20 MAC = 73.
    assert_eq!(run.sizes[3], 6 + 73, "sizes {:?}", run.sizes);
    let s2 = split_records(&{
        let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
        let (awaiting, s1) = f.server().accept(&c1, now()).unwrap();
        let (_, c2) = hello.step(&s1).unwrap();
        awaiting.finish(&c2).unwrap().1
    })
    .unwrap()
    .iter()
    .map(|r| r.content_type)
    .collect::<Vec<_>>();
    assert_eq!(s2, vec![CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HANDSHAKE]);
    eprintln!("TLS 1.2 leg sizes C1/S1/C2/S2: {:?}", run.sizes);
}

#[test]
fn full_handshake_tls10_client() {
    let f = fixture();
    let run = handshake(&f.server(), &alice_client(f, TlsVersion::Tls1_0), now());
    check_keys_agree(&run);
    assert_eq!(run.server.protocol, "TLSv1");
    assert_eq!(run.client.protocol, "TLSv1");
    assert_eq!(run.server.peer.sip_uris, vec![ALICE.to_string()]);
    // TLS 1.0, implicit IV, encrypt-then-MAC: CCS 6 + (5 + 32 + 20) = 63 (sip.md §5.2; 59 with
    // SIPE, which does not offer encrypt-then-MAC: see tests/sipe.rs).
    assert_eq!(run.sizes[3], 63, "sizes {:?}", run.sizes);
    eprintln!("TLS 1.0 leg sizes C1/S1/C2/S2: {:?}", run.sizes);
}

#[test]
fn tls11_client_works_too() {
    let f = fixture();
    let run = handshake(&f.server(), &alice_client(f, TlsVersion::Tls1_1), now());
    check_keys_agree(&run);
    assert_eq!(run.server.protocol, "TLSv1.1");
}

#[test]
fn client_without_ca_accepts_any_server_certificate() {
    let f = fixture();
    let other = CertificateAuthority::generate("Other CA", now()).unwrap();
    let pool = other
        .issue_signing_cert("elsewhere.example", now(), Duration::days(30))
        .unwrap();
    let server =
        ServerContext::new(&pool.chain_pem, pool.key_pem.expose(), f.ca.cert_pem()).unwrap();
    // Like SIPE: no CA → no check of the inner server certificate.
    let client = ClientContext::new(&f.alice_cert_pem, &f.alice_key_pem, None).unwrap();
    check_keys_agree(&handshake(&server, &client, now()));

    // With a CA, the same server is refused by the client at S1.
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (_, s1) = server.accept(&c1, now()).unwrap();
    let err = hello.step(&s1).unwrap_err();
    assert!(
        matches!(err, TlsDskError::UntrustedCertificate(_)),
        "{err:?}"
    );
}

#[test]
fn client_checks_targetname() {
    let f = fixture();
    let (hello, c1) = f.client().connect("other.contoso.com", now()).unwrap();
    let (_, s1) = f.server().accept(&c1, now()).unwrap();
    match hello.step(&s1) {
        Err(TlsDskError::UntrustedCertificate(why)) => {
            assert!(why.contains("hostname"), "{why}")
        }
        other => panic!("expected a name mismatch, got {other:?}"),
    }
}

#[test]
fn client_certificate_from_another_ca_is_untrusted() {
    let f = fixture();
    let other = CertificateAuthority::generate("Rogue CA", now()).unwrap();
    let (cert, key) = user_cert(&other, ALICE, now(), USER_CERT_LIFETIME);
    let client = ClientContext::new(&cert, &key, Some(f.ca.cert_pem())).unwrap();
    let err = server_verdict(&f.server(), &client, now(), now());
    assert!(
        matches!(err, TlsDskError::UntrustedCertificate(_)),
        "{err:?}"
    );
    eprintln!("{err}");
}

/// Runs to C2 and returns the server's refusal.
fn server_verdict(
    server: &ServerContext,
    client: &ClientContext,
    client_now: UtcTime,
    server_now: UtcTime,
) -> TlsDskError {
    let (hello, c1) = client.connect(TARGETNAME, client_now).unwrap();
    let (awaiting, s1) = server.accept(&c1, server_now).unwrap();
    let (_, c2) = hello.step(&s1).unwrap();
    match awaiting.finish(&c2) {
        Ok(_) => panic!("the server accepted the client"),
        Err(e) => e,
    }
}

#[test]
fn expired_client_certificate() {
    let f = fixture();
    let later = now() + Duration::hours(9);
    let err = server_verdict(&f.server(), &f.client(), later, later);
    assert!(matches!(err, TlsDskError::CertificateExpired), "{err:?}");
}

#[test]
fn client_certificate_not_yet_valid() {
    let f = fixture();
    // Certificates are back-dated one hour: two hours earlier they are not valid yet.
    let earlier = now() - Duration::hours(2);
    let err = server_verdict(&f.server(), &f.client(), now(), earlier);
    assert!(
        matches!(err, TlsDskError::CertificateNotYetValid),
        "{err:?}"
    );

    // The client judges the pool certificate (issued `now` − 1 h) at its own `now` too.
    let (hello, c1) = f.client().connect(TARGETNAME, earlier).unwrap();
    let (_, s1) = f.server().accept(&c1, now()).unwrap();
    let err = hello.step(&s1).unwrap_err();
    assert!(
        matches!(err, TlsDskError::CertificateNotYetValid),
        "{err:?}"
    );
}

#[test]
fn no_client_certificate() {
    let f = fixture();
    let mut ctx = SslContext::builder(SslMethod::tls_client()).unwrap();
    ctx.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    ctx.set_max_proto_version(Some(SslVersion::TLS1)).unwrap();
    ctx.set_cipher_list(lyncd_tlsdsk::CIPHER_LIST).unwrap();
    let mut raw = RawClient::new(&ctx.build());
    let (c1, r) = raw.leg(&[]);
    r.unwrap();
    let (awaiting, s1) = f.server().accept(&c1, now()).unwrap();
    let (c2, r) = raw.leg(&s1);
    r.unwrap();
    let err = awaiting.finish(&c2).unwrap_err();
    assert!(matches!(err, TlsDskError::NoClientCertificate), "{err:?}");
}

#[test]
fn garbage_and_truncated_legs() {
    let f = fixture();
    let server = f.server();
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();

    for bad in [
        b"hello there, not TLS".to_vec(),
        Vec::new(),
        c1[..c1.len() - 1].to_vec(),
        c1[..3].to_vec(),
        [c1.clone(), vec![22, 3]].concat(),
    ] {
        let err = server.accept(&bad, now()).unwrap_err();
        assert!(matches!(err, TlsDskError::NotTlsRecords), "{err:?}");
    }

    // Whole records, but not a ClientHello: OpenSSL refuses.
    for bad in [
        vec![22, 3, 1, 0, 4, 0xff, 0, 0, 0],    // unknown handshake type
        vec![23, 3, 1, 0, 3, 1, 2, 3],          // application data first
        vec![22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 1], // ClientHello claiming 2 bytes
    ] {
        let err = server.accept(&bad, now()).unwrap_err();
        assert!(matches!(err, TlsDskError::Handshake(_)), "{bad:?}: {err:?}");
    }

    // C2 side.
    let (awaiting, s1) = server.accept(&c1, now()).unwrap();
    let err = awaiting.finish(b"garbage").unwrap_err();
    assert!(matches!(err, TlsDskError::NotTlsRecords), "{err:?}");

    let (awaiting, s1b) = server.accept(&c1, now()).unwrap();
    let (_, c2) = hello.step(&s1b).unwrap();
    let mut tampered = c2.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55; // inside the encrypted Finished
    let err = awaiting.finish(&tampered).unwrap_err();
    assert!(matches!(err, TlsDskError::Handshake(_)), "{err:?}");

    let (awaiting, _) = server.accept(&c1, now()).unwrap();
    let err = awaiting
        .finish(&[22, 3, 3, 0, 4, 0xfe, 0, 0, 0])
        .unwrap_err();
    assert!(matches!(err, TlsDskError::Handshake(_)), "{err:?}");

    // Client side: garbage instead of S1.
    let (hello, _) = f.client().connect(TARGETNAME, now()).unwrap();
    let err = hello.step(b"\x00\x01\x02").unwrap_err();
    assert!(matches!(err, TlsDskError::NotTlsRecords), "{err:?}");
    let _ = s1;
}

#[test]
fn flight_split_across_legs_needs_more_data() {
    let f = fixture();
    let server = f.server();

    // C2 cut after its first record (Certificate … CertificateVerify, no CCS / Finished).
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (awaiting, s1) = server.accept(&c1, now()).unwrap();
    let (_, c2) = hello.step(&s1).unwrap();
    let first_len = 5 + split_records(&c2).unwrap()[0].fragment.len();
    let err = awaiting.finish(&c2[..first_len]).unwrap_err();
    assert!(matches!(err, TlsDskError::NeedsMoreData), "{err:?}");

    // A ClientHello split over two records, only the first sent.
    let (_, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let body = &c1[5..];
    let half = body.len() / 2;
    let mut first = vec![22, c1[1], c1[2]];
    first.extend_from_slice(&u16::try_from(half).unwrap().to_be_bytes());
    first.extend_from_slice(&body[..half]);
    let err = server.accept(&first, now()).unwrap_err();
    assert!(matches!(err, TlsDskError::NeedsMoreData), "{err:?}");

    // S1 without its ServerHelloDone (the flight is one record, sip.md §5.2: drop the last
    // 4-byte message and fix the record length).
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (_, s1) = server.accept(&c1, now()).unwrap();
    let records = split_records(&s1).unwrap();
    assert_eq!(records.len(), 1, "S1 is one record");
    let body = &records[0].fragment[..records[0].fragment.len() - 4];
    let mut cut = vec![22, s1[1], s1[2]];
    cut.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    cut.extend_from_slice(body);
    let err = hello.step(&cut).unwrap_err();
    assert!(matches!(err, TlsDskError::NeedsMoreData), "{err:?}");

    // S2 without its Finished.
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (awaiting, s1) = server.accept(&c1, now()).unwrap();
    let (finishing, c2) = hello.step(&s1).unwrap();
    let (_, s2) = awaiting.finish(&c2).unwrap();
    let err = finishing.finish(&s2[..6]).unwrap_err();
    assert!(matches!(err, TlsDskError::NeedsMoreData), "{err:?}");
}

#[test]
fn trailing_records_after_the_flight_are_refused() {
    let f = fixture();
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (awaiting, s1) = f.server().accept(&c1, now()).unwrap();
    let (_, c2) = hello.step(&s1).unwrap();
    let extra = [c2.clone(), vec![23, 3, 1, 0, 1, 0]].concat();
    let err = awaiting.finish(&extra).unwrap_err();
    assert!(matches!(err, TlsDskError::Handshake(_)), "{err:?}");
}

#[test]
fn configuration_errors() {
    let f = fixture();
    let ca = f.ca.cert_pem();
    let err = ServerContext::new("not pem", f.pool.key_pem.expose(), ca).unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
    let err = ServerContext::new(&f.pool.chain_pem, "not pem", ca).unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
    // Key of another certificate.
    let err = ServerContext::new(&f.pool.chain_pem, &f.alice_key_pem, ca).unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
    // An ECDSA key cannot do RSA key transport.
    let ec =
        f.ca.issue_server_cert(&[TARGETNAME.to_string()], now(), Duration::days(1))
            .unwrap();
    let err = ServerContext::new(&ec.chain_pem, ec.key_pem.expose(), ca).unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
    let err = ServerContext::new(&f.pool.chain_pem, f.pool.key_pem.expose(), "").unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
    let err = ClientContext::new(&f.alice_cert_pem, f.pool.key_pem.expose(), None).unwrap_err();
    assert!(matches!(err, TlsDskError::Config(_)), "{err:?}");
}

#[test]
fn states_can_cross_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<AwaitingClientFinish>();
    send::<lyncd_tlsdsk::AwaitingServerHello>();
    send::<lyncd_tlsdsk::AwaitingServerFinish>();
    send_sync::<ServerContext>();
    send_sync::<ClientContext>();
    send_sync::<ServerDone>();

    // And really do: accept on one thread, finish on another.
    let f = fixture();
    let server = f.server();
    let (hello, c1) = f.client().connect(TARGETNAME, now()).unwrap();
    let (awaiting, s1) = server.accept(&c1, now()).unwrap();
    let (finishing, c2) = hello.step(&s1).unwrap();
    let (done, s2) = std::thread::spawn(move || awaiting.finish(&c2).unwrap())
        .join()
        .unwrap();
    let client = finishing.finish(&s2).unwrap();
    assert_eq!(client.keys.server.expose(), done.keys.server.expose());
}

#[test]
fn debug_never_shows_keys() {
    let f = fixture();
    let run = handshake(&f.server(), &f.client(), now());
    let shown = format!("{:?} {:?}", run.server, run.client);
    for key in [
        run.server.keys.client.expose(),
        run.server.keys.server.expose(),
    ] {
        assert!(!shown.contains(&hex(key)), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &key[..4])), "{shown}");
    }
}

fn hex(bytes: &[u8]) -> String {
    common::hex(bytes)
}
