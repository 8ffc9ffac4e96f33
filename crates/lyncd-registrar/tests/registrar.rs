//! The registrar core driven in memory by a SIPE-shaped user agent, with a virtual clock:
//! sign-in, signed traffic, refresh, expiry, and every refusal.

mod common;

use bytes::Bytes;
use common::*;
use lyncd_registrar::{Account, Event, PeerNetwork, Refusal};
use lyncd_sip::auth::AuthHeader;
use lyncd_sip::{Message, epid_to_instance};
use lyncd_tlsdsk::ClientContext;
use time::Duration;

#[test]
fn challenge_is_what_sipe_reads() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    let r = w.send(1, &ua.register(&[]), Account::Enabled);
    assert_eq!(r.status(), Some(401));
    assert_eq!(r.reason(), Some("Unauthorized"));
    assert_eq!(
        r.header("WWW-Authenticate").unwrap(),
        format!(
            "TLS-DSK realm=\"SIP Communications Service\", targetname=\"{POOL}\", version=4, sts-uri=\"{STS}\""
        )
    );
    assert_eq!(r.call_id().unwrap(), ua.call_id);
    assert_eq!(r.header("CSeq"), Some("1 REGISTER"));
    assert!(r.to_addr().unwrap().tag().is_some());
    assert!(r.header("Date").unwrap().ends_with(" GMT"));
    assert!(matches!(w.events()[..], [Event::Challenged { .. }]));
}

#[test]
fn full_sign_in_refresh_and_sign_out() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    let ok = ua.sign_in(&mut w);
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert!(ua.verify(&ok), "rspauth verifies with the server key");
    assert_eq!(ok.header("Expires"), Some("600"));
    let supported: Vec<&str> = ok.header_all("Supported").collect();
    assert_eq!(
        supported,
        ["gruu-10", "adhoclist", "msrtc-event-categories"]
    );
    let allow = ok.header("Allow-Events").unwrap();
    assert!(!allow.contains(", "), "SIPE splits on ',' without trimming");
    for e in [
        "vnd-microsoft-roaming-contacts",
        "vnd-microsoft-roaming-self",
        "vnd-microsoft-provisioning-v2",
        "presence",
    ] {
        assert!(allow.split(',').any(|x| x == e), "{e} in Allow-Events");
    }
    let contact = ok.header("Contact").unwrap();
    assert!(
        contact.contains(&epid_to_instance(&ua.epid)),
        "Contact echoed"
    );
    assert!(contact.contains("gruu=\"sip:alice@contoso.com;opaque=user:epid:"));
    assert!(ok.header("ms-keep-alive").unwrap().contains("timeout=300"));
    let info = AuthHeader::parse(ok.header("Authentication-Info").unwrap()).unwrap();
    assert_eq!(info.get("realm"), Some("SIP Communications Service"));
    assert_eq!(info.get("targetname"), Some(POOL));
    assert_eq!(info.get("opaque"), ua.opaque.as_deref());
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), 1);
    let events = w.events();
    assert!(events.iter().any(
        |e| matches!(e, Event::HandshakeCompleted { protocol, .. } if protocol.starts_with("TLS"))
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Registered {
            refreshed: false,
            expires: 600,
            ..
        }
    )));

    // Refresh 30 s before the end, with a new SA-signed REGISTER.
    w.now += Duration::seconds(570);
    w.registrar.handle_timeout(w.now);
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), 1);
    let refresh = ua.register(&[]);
    let refresh = ua.sign(refresh);
    let ok = w.send(1, &refresh, Account::Enabled);
    assert_eq!(ok.status(), Some(200));
    assert!(ua.verify(&ok));
    assert!(w.events().iter().any(|e| matches!(
        e,
        Event::Registered {
            refreshed: true,
            ..
        }
    )));
    let expires = w.registrar.bindings("alice@contoso.com")[0].expires;
    assert_eq!(expires, w.now + Duration::seconds(600));

    // Sign out.
    let bye = ua.register(&[("Expires", "0")]);
    let bye = ua.sign(bye);
    let ok = w.send(1, &bye, Account::Enabled);
    assert_eq!(ok.status(), Some(200));
    assert!(ua.verify(&ok));
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
}

#[test]
fn binding_expires_without_refresh_and_sa_ends_with_the_certificate() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    // A certificate that ends in 2 hours bounds the SA, not the 8-hour cap.
    ua.cert = w.user_cert("alice@contoso.com", Duration::hours(2));
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    w.events();
    w.now += Duration::seconds(601);
    assert!(w.registrar.poll_timeout().unwrap() <= w.now);
    w.registrar.handle_timeout(w.now);
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
    assert!(
        w.events()
            .iter()
            .any(|e| matches!(e, Event::BindingExpired { .. }))
    );

    // Two hours on, the SA is over: a signed REGISTER gets a fresh challenge (sip.md §8).
    w.now = T0 + Duration::hours(2) + Duration::seconds(1);
    w.registrar.handle_timeout(w.now);
    assert_eq!(w.registrar.security_associations(), 0);
    let late = ua.register(&[]);
    let late = ua.sign(late);
    let r = w.send(1, &late, Account::Enabled);
    assert_eq!(r.status(), Some(401));
    assert!(r.header("WWW-Authenticate").unwrap().contains("sts-uri="));

    // Re-authentication with a new certificate works on the same connection, and cnum goes on
    // from the old SA (SIPE does not reset it).
    ua.cert = w.user_cert("alice@contoso.com", Duration::hours(8));
    let cnum_before = ua.cnum;
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    assert!(ua.cnum > cnum_before);
    assert_eq!(w.registrar.security_associations(), 1);
}

#[test]
fn self_subscriptions_and_service_get_signed_answers() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    let sub_headers = [
        ("Supported", "com.microsoft.autoextend"),
        ("Supported", "ms-benotify"),
        ("Proxy-Require", "ms-benotify"),
        ("Supported", "ms-piggyback-first-notify"),
    ];
    for (event, expect_type) in [
        (
            "vnd-microsoft-roaming-contacts",
            Some("application/vnd-microsoft-roaming-contacts+xml"),
        ),
        (
            "vnd-microsoft-roaming-self",
            Some("application/vnd-microsoft-roaming-self+xml"),
        ),
        (
            "vnd-microsoft-provisioning-v2",
            Some("application/vnd-microsoft-roaming-provisioning-v2+xml"),
        ),
        ("presence", None),
    ] {
        let mut h = vec![("Event", event)];
        h.extend_from_slice(&sub_headers);
        let sub = ua.request("SUBSCRIBE", "sip:alice@contoso.com", &h).build();
        let sub = ua.sign(sub);
        let r = w.send(1, &sub, Account::Unknown);
        assert_eq!(r.status(), Some(200), "{event}");
        assert!(ua.verify(&r), "{event} answer is signed");
        assert_eq!(r.header("Content-Type"), expect_type, "{event}");
        if expect_type.is_some() {
            assert_eq!(r.header("ms-piggyback-cseq"), Some("1"));
            assert_eq!(r.header("Event"), Some(event));
            assert!(!r.body().is_empty());
        }
    }
    let unknown = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "no-such-event")],
        )
        .build();
    let unknown = ua.sign(unknown);
    let r = w.send(1, &unknown, Account::Unknown);
    assert_eq!(r.status(), Some(489));
    assert!(ua.verify(&r));

    let publish = ua
        .request("SERVICE", "sip:alice@contoso.com", &[])
        .body("application/msrtc-category-publish+xml", "<publish/>")
        .build();
    let publish = ua.sign(publish);
    let r = w.send(1, &publish, Account::Unknown);
    assert_eq!(r.status(), Some(200));
    assert!(ua.verify(&r));
}

/// Signs `ua` in, then checks that `bad` is refused with `status`, that the registrar's state did
/// not change, and that another user still signs in.
fn refused_without_harm(w: &mut World, bad: &Message, conn: u64, status: u16) -> Refusal {
    let bindings = w.registrar.bindings("alice@contoso.com").len();
    let sas = w.registrar.security_associations();
    let r = w.send(conn, bad, Account::Enabled);
    assert_eq!(r.status(), Some(status), "{r:?}");
    assert!(
        r.header("Warning").is_some_and(|v| v.starts_with("399 ")),
        "{r:?}"
    );
    let diag = diagnostic(&r);
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), bindings);
    assert_eq!(w.registrar.security_associations(), sas);
    let reason = w.refusal();
    assert_eq!(diag.code, reason.diagnostic_code(), "{reason}");
    let mut carol = Ua::new(w, "carol@contoso.com", 99);
    assert_eq!(
        carol.sign_in(w).status(),
        Some(200),
        "the server keeps serving others"
    );
    reason
}

#[test]
fn signature_faults_are_refused() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    w.events();

    // Wrong signature: change a signed field after signing.
    let sub = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "presence")],
        )
        .build();
    let signed = ua.sign(sub);
    let tampered = Message::parse(Bytes::from(
        String::from_utf8(signed.as_bytes().to_vec())
            .unwrap()
            .replace("CSeq: ", "CSeq: 1"),
    ))
    .unwrap();
    let r = refused_without_harm(&mut w, &tampered, 1, 403);
    assert!(matches!(r, Refusal::BadSignature), "{r}");

    // Replayed cnum: the same signed message twice.
    let sub = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "presence")],
        )
        .build();
    let signed = ua.sign(sub);
    assert_eq!(w.send(1, &signed, Account::Enabled).status(), Some(200));
    let r = refused_without_harm(&mut w, &signed, 1, 403);
    assert!(matches!(r, Refusal::Replay(_)), "{r}");

    // Missing signature on a request after sign-in.
    let unsigned = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "presence")],
        )
        .build();
    let r = refused_without_harm(&mut w, &unsigned, 1, 403);
    assert!(matches!(r, Refusal::NotSignedIn), "{r}");

    // An Authorization without response.
    let half = ua
        .request("SUBSCRIBE", "sip:alice@contoso.com", &[("Event", "presence")])
        .build()
        .with_header(
            "Authorization",
            &format!(
                "TLS-DSK qop=\"auth\", opaque=\"{}\", realm=\"SIP Communications Service\", targetname=\"{POOL}\", crand=\"00000001\", cnum=\"900\"",
                ua.opaque.clone().unwrap()
            ),
        );
    let r = refused_without_harm(&mut w, &half, 1, 403);
    assert!(
        matches!(r, Refusal::MissingSignatureParameter("response")),
        "{r}"
    );

    // The SA used from another connection.
    let other = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "presence")],
        )
        .build();
    let other = ua.sign(other);
    let r = refused_without_harm(&mut w, &other, 2, 403);
    assert!(matches!(r, Refusal::WrongConnection), "{r}");
}

#[test]
fn certificate_must_belong_to_the_user_in_from() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    ua.cert = w.user_cert("bob@contoso.com", Duration::hours(8));
    let challenge = w.send(1, &ua.register(&[]), Account::Enabled);
    assert_eq!(challenge.status(), Some(401));
    let client = ClientContext::new(&ua.cert.0, &ua.cert.1, None).unwrap();
    let (hello, c1) = client.connect(POOL, w.now).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c1));
    let s1 = w.send(1, &m, Account::Enabled);
    ua.opaque = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap())
        .unwrap()
        .get("opaque")
        .map(str::to_string);
    let (_, c2) = hello.step(&Ua::gssapi(&s1)).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c2));
    let r = refused_without_harm(&mut w, &m, 1, 403);
    assert_eq!(r.diagnostic_code(), 4004);
    assert_eq!(r.diagnostic_header(), "ms-diagnostics-public");
    match r {
        Refusal::CertificateForAnotherUser { certificate, from } => {
            assert_eq!(certificate, "sip:bob@contoso.com");
            assert_eq!(from, "sip:alice@contoso.com");
        }
        other => panic!("{other}"),
    }
    assert_eq!(w.registrar.security_associations(), 1, "only carol's");
}

/// Runs C1 and C2 with `ua`'s certificate and returns the answer to C2.
fn handshake_with(w: &mut World, ua: &mut Ua, account: Account) -> (Message, Refusal) {
    let client = ClientContext::new(&ua.cert.0, &ua.cert.1, None).unwrap();
    let (hello, c1) = client.connect(POOL, w.now).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c1));
    let s1 = w.send(ua.conn, &m, account);
    assert_eq!(s1.status(), Some(401));
    ua.opaque = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap())
        .unwrap()
        .get("opaque")
        .map(str::to_string);
    let (_, c2) = hello.step(&Ua::gssapi(&s1)).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c2));
    let r = w.send(ua.conn, &m, account);
    let reason = w.refusal();
    (r, reason)
}

#[test]
fn certificates_from_another_ca_or_expired_are_refused() {
    let mut w = World::new();
    let stranger = World::new();
    let mut ua = Ua::new(&stranger, "alice@contoso.com", 1);
    let (r, reason) = handshake_with(&mut w, &mut ua, Account::Enabled);
    assert_eq!(r.status(), Some(403));
    assert!(
        matches!(
            reason,
            Refusal::Handshake(lyncd_tlsdsk::TlsDskError::UntrustedCertificate(_))
        ),
        "{reason}"
    );
    assert_eq!(diagnostic(&r).code, 1000, "Final handshake failed");
    assert_eq!(w.registrar.security_associations(), 0);

    let mut ua = Ua::new(&w, "alice@contoso.com", 2);
    w.now += Duration::hours(9);
    let (r, reason) = handshake_with(&mut w, &mut ua, Account::Enabled);
    assert_eq!(r.status(), Some(403));
    assert!(
        matches!(
            reason,
            Refusal::Handshake(lyncd_tlsdsk::TlsDskError::CertificateExpired)
        ),
        "{reason}"
    );
    assert!(r.header("Warning").unwrap().contains("expired"), "{r:?}");
    // Outside its validity by the registrar's clock: reported as time skew.
    assert_eq!(diagnostic(&r).code, 1013);
    assert_eq!(w.registrar.security_associations(), 0);
}

#[test]
fn accounts_that_may_not_sign_in_get_404_with_microsofts_codes() {
    let mut w = World::new();
    for (conn, account, code) in [
        (1, Account::Disabled, 4005),
        (2, Account::NotSipEnabled, 4005),
        (3, Account::Unknown, 1003),
    ] {
        let mut ua = Ua::new(&w, "alice@contoso.com", conn);
        let (r, reason) = handshake_with(&mut w, &mut ua, account);
        assert_eq!(r.status(), Some(404), "{account:?}");
        assert_eq!(r.reason(), Some("Not Found"));
        let d = diagnostic(&r);
        assert_eq!(d.code, code, "{account:?}");
        assert_eq!(d.header, lyncd_diag::msdiag::HeaderKind::MsDiagnostics);
        match account {
            Account::Disabled => assert!(matches!(reason, Refusal::AccountNotEnabled(_))),
            Account::NotSipEnabled => assert!(matches!(reason, Refusal::NotSipEnabled(_))),
            _ => assert!(matches!(reason, Refusal::UnknownUser(_))),
        }
        // pidgin-sipe shows the Warning: it names the user and what is wrong.
        assert!(
            r.header("Warning").unwrap().contains("alice@contoso.com"),
            "{r:?}"
        );
        if code == 4005 {
            assert_eq!(
                r.header("ms-diagnostics"),
                Some(
                    "4005;reason=\"Destination URI either not enabled for SIP or does not exist\";source=\"lyncfe.contoso.com\""
                )
            );
        }
    }
    assert_eq!(w.registrar.security_associations(), 0);

    // Disabling (or taking SIP away) takes effect at the next refresh, everywhere.
    let mut ua = Ua::new(&w, "alice@contoso.com", 4);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    let mut other = Ua::new_with_cert(&ua, 5);
    other.epid = "0123456789ab".into();
    assert_eq!(other.sign_in(&mut w).status(), Some(200));
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), 2);
    let refresh = ua.register(&[]);
    let refresh = ua.sign(refresh);
    let r = w.send(4, &refresh, Account::NotSipEnabled);
    assert_eq!(r.status(), Some(404));
    assert_eq!(diagnostic(&r).code, 4005);
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
    assert_eq!(w.registrar.security_associations(), 0);
}

/// Signs `ua` in over a connection from `network` with `account`, returning the answer to
/// C2 (the last handshake leg, where the account is checked).
fn handshake_from(w: &mut World, ua: &mut Ua, network: PeerNetwork, account: Account) -> Message {
    w.registrar.connection_opened(ua.conn, network);
    let (r, _) = handshake_or_pass(w, ua, account);
    r
}

/// Like [`handshake_with`], but does not insist on a refusal.
fn handshake_or_pass(w: &mut World, ua: &mut Ua, account: Account) -> (Message, Vec<Event>) {
    let client = ClientContext::new(&ua.cert.0, &ua.cert.1, None).unwrap();
    let (hello, c1) = client.connect(POOL, w.now).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c1));
    let s1 = w.send(ua.conn, &m, account);
    assert_eq!(s1.status(), Some(401));
    ua.opaque = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap())
        .unwrap()
        .get("opaque")
        .map(str::to_string);
    let (_, c2) = hello.step(&Ua::gssapi(&s1)).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c2));
    let r = w.send(ua.conn, &m, account);
    (r, w.events())
}

#[test]
fn users_without_remote_access_sign_in_only_from_internal_networks() {
    let mut w = World::new();

    // From outside: 403 with the public code, so a client behind an edge learns why.
    let mut outside = Ua::new(&w, "alice@contoso.com", 1);
    let r = handshake_from(
        &mut w,
        &mut outside,
        PeerNetwork::External,
        Account::InternalOnly,
    );
    assert_eq!(r.status(), Some(403), "{r:?}");
    let d = diagnostic(&r);
    assert_eq!(d.code, 4003);
    assert_eq!(
        d.header,
        lyncd_diag::msdiag::HeaderKind::MsDiagnosticsPublic
    );
    assert!(
        r.header("ms-diagnostics").is_none(),
        "only the public header"
    );
    assert!(
        r.header("Warning").unwrap().contains("remote access"),
        "{r:?}"
    );
    assert_eq!(w.registrar.security_associations(), 0);

    // A connection the shell never described counts as external: the policy fails closed.
    let mut unknown = Ua::new(&w, "alice@contoso.com", 2);
    let (r, _) = handshake_or_pass(&mut w, &mut unknown, Account::InternalOnly);
    assert_eq!(r.status(), Some(403));
    assert_eq!(diagnostic(&r).code, 4003);

    // From inside: signed in.
    let mut inside = Ua::new(&w, "alice@contoso.com", 3);
    w.registrar.connection_opened(3, PeerNetwork::Internal);
    inside.account = Account::InternalOnly;
    assert_eq!(inside.sign_in(&mut w).status(), Some(200));

    // Users with remote access sign in from anywhere.
    let mut bob = Ua::new(&w, "bob@contoso.com", 4);
    w.registrar.connection_opened(4, PeerNetwork::External);
    assert_eq!(bob.sign_in(&mut w).status(), Some(200));
}

#[test]
fn losing_remote_access_ends_only_the_external_registrations() {
    let mut w = World::new();
    let mut inside = Ua::new(&w, "alice@contoso.com", 1);
    w.registrar.connection_opened(1, PeerNetwork::Internal);
    assert_eq!(inside.sign_in(&mut w).status(), Some(200));
    let mut outside = Ua::new_with_cert(&inside, 2);
    outside.epid = "0123456789ab".into();
    w.registrar.connection_opened(2, PeerNetwork::External);
    assert_eq!(outside.sign_in(&mut w).status(), Some(200));
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), 2);

    // The administrator takes remote access away; the external endpoint's refresh is refused.
    let refresh = outside.register(&[]);
    let refresh = outside.sign(refresh);
    let r = w.send_from(PeerNetwork::External, 2, &refresh, Account::InternalOnly);
    assert_eq!(r.status(), Some(403));
    assert_eq!(diagnostic(&r).code, 4003);
    let left = w.registrar.bindings("alice@contoso.com");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].conn, 1, "the internal endpoint stays signed in");
    assert_eq!(w.registrar.security_associations(), 1);

    let refresh = inside.register(&[]);
    let refresh = inside.sign(refresh);
    assert_eq!(
        w.send(1, &refresh, Account::InternalOnly).status(),
        Some(200)
    );
}

#[test]
fn every_answer_carries_the_registrars_clock() {
    let mut w = World::new();
    w.now = T0 + Duration::seconds(3);
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    // World::send checks Date on every answer; here its exact form (RFC 7231 IMF-fixdate).
    let r = w.send(1, &ua.register(&[]), Account::Enabled);
    assert_eq!(r.header("Date"), Some("Wed, 25 Nov 2026 08:00:03 GMT"));
    let ok = ua.sign_in(&mut w);
    assert_eq!(ok.status(), Some(200));
    assert!(ua.verify(&ok), "Date does not disturb the signature");
    let sub = ua
        .request(
            "SUBSCRIBE",
            "sip:alice@contoso.com",
            &[("Event", "presence")],
        )
        .build();
    let sub = ua.sign(sub);
    w.now += Duration::hours(1);
    let r = w.send(1, &sub, Account::Enabled);
    assert_eq!(r.header("Date"), Some("Wed, 25 Nov 2026 09:00:03 GMT"));
    // Refusals too.
    let unsigned = ua.request("SERVICE", "sip:alice@contoso.com", &[]).build();
    let r = w.send(1, &unsigned, Account::Enabled);
    assert_eq!(r.status(), Some(403));
    assert!(r.header("Date").is_some());
}

#[test]
fn registrations_must_name_their_endpoint() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    w.events();

    let strip_epid = |m: Message, epid: &str, with: &str| {
        Message::parse(Bytes::from(
            String::from_utf8(m.as_bytes().to_vec())
                .unwrap()
                .replace(&format!(";epid={epid}"), with),
        ))
        .unwrap()
    };
    let epid = ua.epid.clone();
    let refresh = ua.register(&[]);
    let refresh = ua.sign(strip_epid(refresh, &epid, ""));
    let r = refused_without_harm(&mut w, &refresh, 1, 400);
    assert!(matches!(r, Refusal::EpidMissing), "{r}");
    assert_eq!(r.diagnostic_code(), 4011);

    let refresh = ua.register(&[]);
    let refresh = ua.sign(strip_epid(refresh, &epid, ";epid=0123456789abcdef0"));
    let r = refused_without_harm(&mut w, &refresh, 1, 400);
    assert!(matches!(r, Refusal::EpidTooLong(_)), "{r}");
    assert_eq!(r.diagnostic_code(), 4012);
}

#[test]
fn bad_gssapi_data_and_other_schemes_are_refused() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    w.events();

    let not_base64 = ua.register(&[]).with_header(
        "Authorization",
        &format!("TLS-DSK qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"{POOL}\", gssapi-data=\"%%%not base64%%%\", version=4"),
    );
    let r = refused_without_harm(&mut w, &not_base64, 1, 403);
    assert!(matches!(r, Refusal::BadGssapiData), "{r}");

    // Base64 of bytes that are not TLS records, shaped as a first leg.
    let mut fake_hello = vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01];
    fake_hello.extend_from_slice(b"junk");
    let not_tls = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&fake_hello));
    let r = refused_without_harm(&mut w, &not_tls, 1, 403);
    assert!(matches!(r, Refusal::Handshake(_)), "{r}");

    let ntlm = ua.register(&[]).with_header(
        "Authorization",
        "NTLM qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"lyncfe.contoso.com\", gssapi-data=\"\", version=4",
    );
    let r = refused_without_harm(&mut w, &ntlm, 1, 403);
    assert!(matches!(r, Refusal::SchemeNotOffered { .. }), "{r}");

    let foreign = ua.register(&[]).with_header(
        "Authorization",
        "TLS-DSK qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"other.example.com\", gssapi-data=\"AAAA\", version=4",
    );
    let r = refused_without_harm(&mut w, &foreign, 1, 403);
    assert!(matches!(r, Refusal::WrongTarget), "{r}");
}

#[test]
fn malformed_requests_get_400_and_wrong_domains_403() {
    let mut w = World::new();
    let no_call_id = Message::parse(Bytes::from_static(
        b"REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/tls 1.2.3.4:5;branch=z9hG4bK1\r\nFrom: <sip:alice@contoso.com>;tag=1\r\nTo: <sip:alice@contoso.com>\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    let r = w.send(1, &no_call_id, Account::Enabled);
    assert_eq!(r.status(), Some(400));
    assert_eq!(diagnostic(&r).code, 64000, "lyncd's private block");
    assert!(matches!(w.refusal(), Refusal::Malformed(_)));

    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    let mut m = ua.register(&[]);
    m = Message::parse(Bytes::from(
        String::from_utf8(m.as_bytes().to_vec()).unwrap().replacen(
            "REGISTER sip:contoso.com",
            "REGISTER sip:fabrikam.com",
            1,
        ),
    ))
    .unwrap();
    let r = w.send(1, &m, Account::Enabled);
    assert_eq!(r.status(), Some(403));
    assert!(matches!(w.refusal(), Refusal::DomainMismatch { .. }));
}

#[test]
fn instance_must_derive_from_epid() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    ua.epid = "0123456789ab".into();
    // Contact carries the instance of another epid.
    let client = ClientContext::new(&ua.cert.0, &ua.cert.1, None).unwrap();
    let (hello, c1) = client.connect(POOL, w.now).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c1));
    let s1 = w.send(1, &m, Account::Enabled);
    ua.opaque = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap())
        .unwrap()
        .get("opaque")
        .map(str::to_string);
    let (_, c2) = hello.step(&Ua::gssapi(&s1)).unwrap();
    let m = ua
        .register(&[])
        .with_header("Authorization", &ua.handshake_auth(&c2));
    let wrong = String::from_utf8(m.as_bytes().to_vec()).unwrap().replace(
        &epid_to_instance("0123456789ab"),
        &epid_to_instance("c97532c1946f"),
    );
    let m = Message::parse(Bytes::from(wrong)).unwrap();
    let r = w.send(1, &m, Account::Enabled);
    assert_eq!(r.status(), Some(403));
    assert!(matches!(w.refusal(), Refusal::InstanceMismatch { .. }));
}

#[test]
fn connection_loss_forgets_the_endpoint() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    let dropped = w.registrar.connection_closed(1);
    // The shell learns what went, to remove it from the shared store too.
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].aor, "alice@contoso.com");
    assert_eq!(dropped[0].epid, ua.epid);
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
    assert_eq!(w.registrar.security_associations(), 0);
    assert!(w.registrar.connection_closed(1).is_empty());
}

/// The shell could not look the account up: 503 with Retry-After and 64010, not "unknown
/// user", and nothing registered.
#[test]
fn an_unavailable_user_database_is_503_with_retry_after() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    let (r, reason) = handshake_with(&mut w, &mut ua, Account::Unavailable);
    assert_eq!(r.status(), Some(503), "{r:?}");
    assert_eq!(r.header("Retry-After"), Some("10"));
    assert_eq!(diagnostic(&r).code, 64010);
    assert!(matches!(reason, Refusal::DatabaseUnavailable));
    assert!(r.header("Warning").unwrap().contains("database"), "{r:?}");
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
    assert_eq!(w.registrar.security_associations(), 0);
}

/// The shell could not store the registration the core just answered 200 OK: the binding is
/// forgotten and the core's answer for the shell to send instead is 503 with 64010.
#[test]
fn a_registration_the_shell_could_not_store_is_withdrawn() {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    let _ = w.events();
    let refresh = ua.register(&[]);
    let refresh = ua.sign(refresh);
    let ok = w.send(1, &refresh, Account::Enabled);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(w.registrar.bindings("alice@contoso.com").len(), 1);

    w.registrar
        .registration_not_stored(w.now, 1, &refresh, &mut lyncd_core::OsEntropy);
    let t = w.registrar.poll_transmit().expect("a 503 to send instead");
    assert_eq!(t.conn, 1);
    assert_eq!(t.message.status(), Some(503));
    assert_eq!(t.message.header("Retry-After"), Some("10"));
    assert_eq!(diagnostic(&t.message).code, 64010);
    assert!(w.registrar.bindings("alice@contoso.com").is_empty());
    assert!(w.events().iter().any(|e| matches!(
        e,
        Event::Refused {
            reason: Refusal::DatabaseUnavailable,
            ..
        }
    )));
}
