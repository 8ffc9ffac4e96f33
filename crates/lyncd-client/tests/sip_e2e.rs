//! The SIP session against the real registrar core, in memory, on a virtual clock: registration,
//! refresh at Expires − 30 s, expiry of an unrefreshed binding, re-authentication before the
//! certificate / SA runs out, sign-out, and refusals surfaced as typed errors.

use lyncd_client::sip::{
    Fault, Leg, SessionConfig, SessionError, SessionEvent, SipSession, UserCertificate, epid_for,
};
use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use lyncd_pki::CertificateAuthority;
use lyncd_registrar::{Account, Registrar, RegistrarConfig};
use lyncd_sip::Message;
use lyncd_sip::auth::AuthHeader;
use lyncd_tlsdsk::ServerContext;
use time::Duration;
use time::macros::datetime;

const T0: UtcTime = datetime!(2026-11-25 03:00:00 UTC);
const POOL: &str = "lyncfe.contoso.com";
const STS: &str = "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc";
const CONN: u64 = 7;

/// Rewrites a message from the registrar before the session sees it.
type Tamper = Box<dyn FnMut(&Message) -> Message>;

struct World {
    ca: CertificateAuthority,
    registrar: Registrar,
    session: SipSession,
    now: UtcTime,
    entropy: SeededEntropy,
    /// Legs sent, in order.
    legs: Vec<Leg>,
    /// Messages sent, in order (as the registrar received them).
    sent: Vec<Message>,
    events: Vec<SessionEvent>,
    /// Whose certificate CertProv issues when the session asks.
    cert_user: SipAddress,
    /// Lifetime of issued user certificates.
    cert_lifetime: Duration,
    /// Applied to every message from the registrar before the session sees it.
    tamper: Option<Tamper>,
    certificates_issued: usize,
}

fn alice() -> SipAddress {
    SipAddress::parse("alice@contoso.com").unwrap()
}

fn registrar(ca: &CertificateAuthority) -> Registrar {
    let server = ca
        .issue_signing_cert(POOL, T0 - Duration::days(1), Duration::days(30))
        .unwrap();
    let tls =
        ServerContext::new(&server.chain_pem, server.key_pem.expose(), ca.cert_pem()).unwrap();
    Registrar::new(RegistrarConfig::new(POOL, STS), tls)
}

impl World {
    fn new() -> World {
        let ca = CertificateAuthority::generate("lyncd test CA", T0 - Duration::days(1)).unwrap();
        let registrar = registrar(&ca);
        let mut entropy = SeededEntropy::new(42);
        let mut config =
            SessionConfig::new(alice(), epid_for("3f9a2c1e-7d64-5b0e-9a1f-2c3d4e5f6a7b"));
        config.server_ca_pem = Some(ca.cert_pem().to_string());
        let session = SipSession::new(config, None, &mut entropy);
        World {
            ca,
            registrar,
            session,
            now: T0,
            entropy,
            legs: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            cert_user: alice(),
            cert_lifetime: Duration::hours(8),
            tamper: None,
            certificates_issued: 0,
        }
    }

    fn issue(&mut self) -> UserCertificate {
        let (key, csr) = lyncd_pki::new_user_key_and_csr(&alice()).unwrap();
        let cert = self
            .ca
            .issue_user_cert(&csr, &self.cert_user, self.now, self.cert_lifetime)
            .unwrap();
        self.certificates_issued += 1;
        UserCertificate::from_der(&cert.der, key).unwrap()
    }

    /// Moves messages both ways and answers certificate requests until nothing moves.
    fn pump(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(t) = self.session.poll_transmit() {
                moved = true;
                self.legs.push(t.leg);
                // Over the wire: the registrar parses the bytes we produced.
                let wire = Message::parse(t.message.to_bytes()).unwrap();
                self.registrar
                    .handle(self.now, CONN, &wire, Account::Enabled, &mut self.entropy);
                self.sent.push(wire);
            }
            while let Some(tx) = self.registrar.poll_transmit() {
                moved = true;
                assert_eq!(tx.conn, CONN);
                let mut msg = Message::parse(tx.message.to_bytes()).unwrap();
                if let Some(t) = self.tamper.as_mut() {
                    msg = t(&msg);
                }
                self.session.handle(self.now, &msg, &mut self.entropy);
            }
            while let Some(ev) = self.session.poll_event() {
                moved = true;
                if matches!(ev, SessionEvent::CertificateNeeded { .. }) {
                    let cert = self.issue();
                    self.session
                        .provide_certificate(self.now, cert, &mut self.entropy);
                }
                self.events.push(ev);
            }
            while self.registrar.poll_event().is_some() {}
            if !moved {
                return;
            }
        }
        panic!("the session and the registrar never settled");
    }

    fn advance_to(&mut self, t: UtcTime) {
        assert!(t >= self.now, "the clock only moves forward");
        self.now = t;
        self.registrar.handle_timeout(t);
        self.session.handle_timeout(t, &mut self.entropy);
        self.pump();
    }

    fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }

    fn take_legs(&mut self) -> Vec<Leg> {
        std::mem::take(&mut self.legs)
    }

    fn binding_expires(&self) -> Option<UtcTime> {
        self.registrar
            .bindings("alice@contoso.com")
            .iter()
            .find(|b| b.epid == self.session.epid())
            .map(|b| b.expires)
    }

    fn last_authorization(&self, name: &str) -> String {
        let msg = self.sent.last().unwrap();
        let value = msg.header("Authorization").unwrap();
        AuthHeader::parse(value)
            .unwrap()
            .get(name)
            .unwrap_or_default()
            .to_string()
    }

    fn register(&mut self) {
        self.session.start(self.now, &mut self.entropy);
        self.pump();
    }
}

fn registered(events: &[SessionEvent]) -> Vec<(u32, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Registered {
                registration,
                refreshed,
            } => Some((registration.expires, *refreshed)),
            _ => None,
        })
        .collect()
}

fn failure(events: &[SessionEvent]) -> Option<SessionError> {
    events.iter().find_map(|e| match e {
        SessionEvent::Failed(f) => Some(f.clone()),
        _ => None,
    })
}

#[test]
fn registers_refreshes_reauthenticates_and_signs_out() {
    let mut w = World::new();
    w.register();
    let events = w.take_events();
    assert_eq!(failure(&events), None, "{events:?}");
    assert_eq!(
        w.take_legs(),
        [Leg::Register, Leg::Hello, Leg::Finish, Leg::Signed]
    );
    assert!(
        matches!(events[0], SessionEvent::Challenged(ref c) if c.targetname == POOL && c.sts_uri.as_deref() == Some(STS))
    );
    assert!(events.iter().any(|e| matches!(e, SessionEvent::CertificateNeeded { reason, .. } if reason.contains("no certificate"))));
    assert_eq!(registered(&events), [(7200, false)]);
    assert!(w.session.is_registered());
    let (protocol, cipher) = w.session.security().unwrap();
    assert!(protocol.starts_with("TLSv1"), "{protocol}");
    assert!(cipher.ends_with("SHA"), "{cipher}");

    // The signed REGISTER: crand 8 lower hex, cnum 1, and the registrar bound us.
    let crand = w.last_authorization("crand");
    assert_eq!(crand.len(), 8);
    assert!(
        crand
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert_eq!(w.last_authorization("cnum"), "1");
    assert_eq!(w.binding_expires(), Some(T0 + Duration::seconds(7200)));
    let reg = w.session.registration().unwrap().clone();
    let gruu = reg.gruu.clone().unwrap();
    assert!(
        gruu.starts_with("sip:alice@contoso.com;") && gruu.ends_with(";gruu"),
        "{gruu}"
    );
    let first_opaque = reg.opaque.clone();
    // Every REGISTER of the session shares the Call-ID and counts CSeq up.
    let cseqs: Vec<u32> = w.sent.iter().map(|m| m.cseq().unwrap().number).collect();
    assert_eq!(cseqs, [1, 2, 3, 4]);
    assert!(
        w.sent
            .iter()
            .all(|m| m.call_id().unwrap() == w.session.call_id())
    );

    // Refresh at Expires − 30 s, not earlier.
    assert_eq!(w.session.poll_timeout(), Some(T0 + Duration::seconds(7170)));
    w.advance_to(T0 + Duration::seconds(7000));
    assert!(w.take_legs().is_empty(), "no refresh before Expires - 30 s");
    w.advance_to(T0 + Duration::seconds(7170));
    assert_eq!(w.take_legs(), [Leg::Refresh]);
    assert_eq!(registered(&w.take_events()), [(7200, true)]);
    assert_eq!(
        w.binding_expires(),
        Some(T0 + Duration::seconds(7170 + 7200)),
        "the refresh renewed the binding"
    );
    assert_eq!(w.last_authorization("cnum"), "2");

    // Keep following the timers: refreshes until the SA is 7 h 55 min old (the certificate's
    // 8 h end is the nearer limit), then a full re-authentication.
    let reauth_at = T0 + Duration::hours(8) - Duration::minutes(5);
    assert_eq!(reg.reauthenticate_at, reauth_at);
    let mut refreshes = 0;
    while let Some(t) = w.session.poll_timeout() {
        if t >= reauth_at {
            break;
        }
        w.advance_to(t);
        assert_eq!(w.take_legs(), [Leg::Refresh]);
        refreshes += 1;
    }
    assert_eq!(refreshes, 2, "refreshes at 3 h 59 min and 5 h 58 min 30 s");
    w.take_events();
    let issued_before = w.certificates_issued;
    let cnum_before: u64 = w.last_authorization("cnum").parse().unwrap();
    assert_eq!(w.session.poll_timeout(), Some(reauth_at));
    w.advance_to(reauth_at);
    let events = w.take_events();
    assert_eq!(failure(&events), None, "{events:?}");
    assert_eq!(
        w.take_legs(),
        [Leg::Register, Leg::Hello, Leg::Finish, Leg::Signed],
        "unsigned REGISTER, then a new handshake"
    );
    assert!(
        events.iter().any(|e| matches!(e, SessionEvent::CertificateNeeded { reason, .. } if reason.contains("less than an hour"))),
        "5 minutes left on the certificate: a new one is asked for: {events:?}"
    );
    assert_eq!(w.certificates_issued, issued_before + 1);
    assert_eq!(registered(&events), [(7200, false)]);
    let reg2 = w.session.registration().unwrap().clone();
    assert_ne!(reg2.opaque, first_opaque, "a new security association");
    assert_eq!(
        w.registrar.security_associations(),
        1,
        "the old SA was replaced"
    );
    assert_eq!(
        w.last_authorization("cnum"),
        (cnum_before + 1).to_string(),
        "cnum is never reset"
    );
    assert_eq!(
        reg2.reauthenticate_at,
        reauth_at + Duration::hours(8) - Duration::minutes(5),
        "the new SA runs to the new certificate's end, less the margin"
    );
    assert_eq!(
        w.binding_expires(),
        Some(reauth_at + Duration::seconds(7200))
    );

    // Sign-out: Expires: 0, signed 200 OK, binding gone.
    assert!(w.session.sign_out(w.now, &mut w.entropy));
    w.pump();
    assert_eq!(w.take_legs(), [Leg::SignOut]);
    assert_eq!(w.sent.last().unwrap().header("Expires"), Some("0"));
    assert!(matches!(
        w.take_events().as_slice(),
        [SessionEvent::SignedOut]
    ));
    assert!(w.session.is_signed_out());
    assert_eq!(w.binding_expires(), None);
    assert_eq!(w.session.poll_timeout(), None, "no timers after sign-out");
}

#[test]
fn cached_certificate_skips_provisioning_and_short_one_is_replaced() {
    let mut w = World::new();
    // A cached certificate valid for 8 h: used directly.
    let cached = w.issue();
    let mut config = SessionConfig::new(alice(), "0123456789ab");
    config.server_ca_pem = Some(w.ca.cert_pem().to_string());
    w.session = SipSession::new(config.clone(), Some(cached), &mut w.entropy);
    w.register();
    let events = w.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SessionEvent::CertificateNeeded { .. }))
    );
    assert_eq!(registered(&events), [(7200, false)]);
    assert_eq!(w.certificates_issued, 1);

    // One with 30 minutes left is not used: provisioning runs.
    w.cert_lifetime = Duration::minutes(30);
    let short = w.issue();
    w.cert_lifetime = Duration::hours(8);
    w.session = SipSession::new(config, Some(short), &mut w.entropy);
    w.register();
    let events = w.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::CertificateNeeded { .. }))
    );
    assert_eq!(registered(&events), [(7200, false)]);
    assert_eq!(w.certificates_issued, 3);
}

#[test]
fn binding_expires_without_refresh_and_comes_back() {
    let mut w = World::new();
    w.register();
    assert!(w.binding_expires().is_some());
    // The client goes quiet; the registrar's clock passes the binding's end.
    let late = T0 + Duration::seconds(7201);
    w.registrar.handle_timeout(late);
    assert_eq!(w.binding_expires(), None, "the unrefreshed binding is gone");
    // The late refresh (the SA still lives) creates it again.
    w.now = late;
    w.session.handle_timeout(late, &mut w.entropy);
    w.pump();
    assert_eq!(w.take_legs()[4..], [Leg::Refresh]);
    assert_eq!(w.binding_expires(), Some(late + Duration::seconds(7200)));
}

#[test]
fn lost_security_association_means_full_reauthentication() {
    let mut w = World::new();
    w.register();
    w.take_legs();
    w.take_events();
    // The registrar restarts and forgets every SA: the signed refresh gets a fresh 401.
    w.registrar = registrar(&w.ca);
    w.advance_to(T0 + Duration::seconds(7170));
    let events = w.take_events();
    assert_eq!(failure(&events), None, "{events:?}");
    assert_eq!(
        w.take_legs(),
        [Leg::Refresh, Leg::Hello, Leg::Finish, Leg::Signed]
    );
    assert_eq!(
        w.certificates_issued, 1,
        "the certificate is still good: reused"
    );
    assert_eq!(registered(&events), [(7200, false)]);
    assert!(w.binding_expires().is_some());
}

#[test]
fn certificate_for_another_user_is_refused_with_the_servers_words() {
    let mut w = World::new();
    w.cert_user = SipAddress::parse("bob@contoso.com").unwrap();
    w.register();
    let events = w.take_events();
    let err = failure(&events).expect("refused");
    match &err {
        SessionError::Refused {
            status, warning, ..
        } => {
            assert_eq!(*status, 403);
            let w = warning.as_deref().unwrap_or_default();
            assert!(
                w.contains("bob@contoso.com") && w.contains("alice@contoso.com"),
                "{w}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(err.fault(), Fault::Server);
    assert!(err.to_string().contains("issued to"), "{err}");
    assert!(!w.session.is_registered());
    assert_eq!(w.binding_expires(), None);
}

fn replace_header(msg: &Message, name: &str, f: impl Fn(&str) -> Option<String>) -> Message {
    let text = String::from_utf8(msg.as_bytes().to_vec()).unwrap();
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        match line.split_once(": ") {
            Some((n, v)) if n.eq_ignore_ascii_case(name) => {
                if let Some(new) = f(v.trim_end()) {
                    out.push_str(&format!("{n}: {new}\r\n"));
                }
            }
            _ => out.push_str(line),
        }
    }
    Message::parse(out.into_bytes().into()).unwrap()
}

#[test]
fn forged_or_unsigned_200_is_refused() {
    // rspauth altered.
    let mut w = World::new();
    w.tamper = Some(Box::new(|m: &Message| {
        if m.status() != Some(200) {
            return m.clone();
        }
        replace_header(m, "Authentication-Info", |v| {
            let i = v.find("rspauth=\"").unwrap() + 9;
            let mut s = v.to_string();
            let c = if &s[i..i + 1] == "0" { "1" } else { "0" };
            s.replace_range(i..i + 1, c);
            Some(s)
        })
    }));
    w.register();
    assert_eq!(
        failure(&w.take_events()),
        Some(SessionError::BadSignature { status: 200 })
    );
    assert!(!w.session.is_registered());

    // Authentication-Info removed.
    let mut w = World::new();
    w.tamper = Some(Box::new(|m: &Message| {
        if m.status() != Some(200) {
            return m.clone();
        }
        replace_header(m, "Authentication-Info", |_| None)
    }));
    w.register();
    assert_eq!(
        failure(&w.take_events()),
        Some(SessionError::Unsigned { status: 200 })
    );
}

#[test]
fn unanswered_register_times_out() {
    let mut w = World::new();
    w.session.start(T0, &mut w.entropy);
    let t = w.session.poll_transmit().unwrap();
    assert_eq!(t.leg, Leg::Register);
    assert_eq!(w.session.poll_timeout(), Some(T0 + Duration::seconds(60)));
    w.session
        .handle_timeout(T0 + Duration::seconds(60), &mut w.entropy);
    assert_eq!(w.session.error(), Some(&SessionError::Timeout(60)));
    assert_eq!(w.session.error().unwrap().fault(), Fault::Network);
}
