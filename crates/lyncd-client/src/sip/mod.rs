//! The SIP half of a sign-in: the registration of one endpoint with TLS-DSK, as a sans-IO core.
//!
//! [`SipSession`] owns one registration (sip.md §0, §13.5): the unauthenticated REGISTER and its
//! 401 (§2, §3), the request for a certificate when none is valid for another hour (§4), the
//! three tunnelled TLS-DSK legs (§5.2), the signed REGISTER whose 200 OK must carry a valid
//! `rspauth` (§6, §7), and then the timers of §8: re-REGISTER at `Expires` − 30 s, full
//! re-authentication at min(certificate expiry, SA start + 8 h) − 5 min or when a signed
//! re-REGISTER is answered 401, and sign-out with `Expires: 0`.
//!
//! Shaped like quinn-proto: the owner feeds received messages to [`SipSession::handle`], calls
//! [`SipSession::handle_timeout`] at [`SipSession::poll_timeout`], sends what
//! [`SipSession::poll_transmit`] yields on its one connection, and drains
//! [`SipSession::poll_event`]. Time and randomness are arguments; the session never touches a
//! socket or a clock.

mod cert;
mod error;
mod request;

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lyncd_core::{Entropy, SipAddress, UtcTime};
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::sign::{self, SigParams};
use lyncd_sip::{Message, epid_to_instance};
use lyncd_tlsdsk::{AwaitingServerFinish, AwaitingServerHello, ClientContext, SigningKeys};
use time::Duration;

pub use cert::{CertificateError, MIN_REMAINING, UserCertificate};
pub use error::{Fault, SessionError};
pub use request::{DEFAULT_USER_AGENT, SUPPORTED, epid_for};

use error::warning_text;
use request::RegisterTemplate;

/// [MS-SIPAE] 3.2.2 (sip.md §8): a security association lives at most 8 hours …
pub const MAX_SA_LIFETIME: Duration = Duration::hours(8);
/// … and is renewed this long before it ends (the spec asks for at least 5 minutes).
pub const SA_MARGIN: Duration = Duration::minutes(5);
/// Re-REGISTER this long before the registration expires (SIPE, sip.md §6.2).
pub const REFRESH_MARGIN: Duration = Duration::seconds(30);
/// Handshakes in a row that may end in a new 401 instead of a 200 before we give up.
const MAX_HANDSHAKES_WITHOUT_200: u32 = 2;
/// The TLS-DSK scheme token.
const SCHEME: &str = "TLS-DSK";

/// The transport named in Via and Contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tls,
    Tcp,
}

/// What the session needs to know about its endpoint.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub address: SipAddress,
    /// 12 lower-case hex (see [`epid_for`]); `+sip.instance` is derived from it.
    pub epid: String,
    /// `host:port` for Via and Contact. The registrar answers on the connection and hands out a
    /// GRUU, so this is informational; the default is a reserved `.invalid` name rather than an
    /// address we would have to guess.
    pub local: String,
    pub transport: Transport,
    pub user_agent: String,
    /// The CA the inner TLS-DSK server certificate must chain to (and match the targetname).
    /// `None` accepts any, as SIPE does (it relies on the outer TLS).
    pub server_ca_pem: Option<String>,
    /// How long a REGISTER may wait for its final answer.
    pub transaction_timeout: Duration,
}

impl SessionConfig {
    pub fn new(address: SipAddress, epid: impl Into<String>) -> Self {
        let epid = epid.into();
        SessionConfig {
            address,
            local: format!("{epid}.invalid:5061"),
            epid,
            transport: Transport::Tls,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            server_ca_pem: None,
            transaction_timeout: Duration::seconds(60),
        }
    }
}

/// The TLS-DSK offer of a 401 (sip.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub targetname: String,
    pub version: u32,
    /// CertProv base URL (the client appends `/mex`).
    pub sts_uri: Option<String>,
}

/// Which exchange a REGISTER belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// No `Authorization`: expect 401 with the TLS-DSK challenge.
    Register,
    /// C1: ClientHello → S1.
    Hello,
    /// C2: certificate, key exchange, Finished → S2.
    Finish,
    /// C3: the first signed REGISTER → signed 200 OK.
    Signed,
    /// A signed re-REGISTER.
    Refresh,
    /// A signed REGISTER with `Expires: 0`.
    SignOut,
}

/// A message for the session's connection.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub leg: Leg,
    pub message: Message,
}

/// A live registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Seconds granted by the `Expires` header of the 200 OK.
    pub expires: u32,
    /// The GRUU from our Contact in the 200 OK, if the registrar gave one.
    pub gruu: Option<String>,
    pub registered_at: UtcTime,
    /// When the session re-REGISTERs.
    pub refresh_at: UtcTime,
    /// When the session re-authenticates (new handshake).
    pub reauthenticate_at: UtcTime,
    /// The `opaque` of the security association that signed it.
    pub opaque: String,
}

/// What happened, for the owner.
#[derive(Clone, Debug)]
pub enum SessionEvent {
    /// A 401 offered TLS-DSK.
    Challenged(Challenge),
    /// No certificate valid for another hour: the owner runs Certificate Provisioning and calls
    /// [`SipSession::provide_certificate`].
    CertificateNeeded {
        targetname: String,
        sts_uri: String,
        /// Why: none yet, or the one at hand expires too soon.
        reason: String,
    },
    /// S1 was accepted; C2 is on its way.
    HandshakeStarted { opaque: String },
    /// S2 verified, keys derived: the security association exists.
    HandshakeCompleted {
        opaque: String,
        protocol: &'static str,
        cipher: String,
        certificate_serial: String,
    },
    /// A signed 200 OK whose `rspauth` verified.
    Registered {
        registration: Registration,
        refreshed: bool,
    },
    /// The signed 200 OK to `Expires: 0`.
    SignedOut,
    /// The session ended.
    Failed(SessionError),
}

/// Keys and parameters of the established security association (sip.md §5.4 `ESTABLISHED`).
struct SecurityAssociation {
    keys: SigningKeys,
    opaque: String,
    realm: String,
    targetname: String,
    version: u32,
    reauthenticate_at: UtcTime,
    protocol: &'static str,
    cipher: String,
}

/// Where the registration stands (sip.md §5.4, client side). The handshake states own the TLS
/// engine's typed state, so a leg cannot be taken twice or out of order.
enum State {
    Idle,
    /// Unsigned REGISTER outstanding.
    Challenging,
    /// Waiting for [`SipSession::provide_certificate`].
    NeedCertificate(Challenge),
    /// C1 outstanding.
    Hello(AwaitingServerHello, Challenge),
    /// C2 outstanding.
    Finish(AwaitingServerFinish, Challenge, String),
    /// C3 outstanding.
    Registering,
    Registered,
    Refreshing,
    SigningOut,
    SignedOut,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Challenging => "challenging",
            State::NeedCertificate(_) => "waiting for a certificate",
            State::Hello(..) => "waiting for the server hello",
            State::Finish(..) => "waiting for the server finish",
            State::Registering => "registering",
            State::Registered => "registered",
            State::Refreshing => "refreshing",
            State::SigningOut => "signing out",
            State::SignedOut => "signed out",
            State::Failed => "failed",
        }
    }
}

struct Outstanding {
    cseq: u32,
    leg: Leg,
    deadline: UtcTime,
}

/// The registration of one endpoint. See the module documentation.
pub struct SipSession {
    template: RegisterTemplate,
    server_ca_pem: Option<String>,
    transaction_timeout: Duration,
    cseq: u32,
    /// Never reset, not even by re-authentication (sip.md §6.1).
    cnum: u64,
    state: State,
    outstanding: Option<Outstanding>,
    certificate: Option<UserCertificate>,
    sa: Option<SecurityAssociation>,
    registration: Option<Registration>,
    handshakes_without_200: u32,
    error: Option<SessionError>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
}

impl std::fmt::Debug for SipSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipSession")
            .field("address", &self.template.address)
            .field("call_id", &self.template.call_id)
            .field("state", &self.state.name())
            .field("cseq", &self.cseq)
            .field("cnum", &self.cnum)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

impl SipSession {
    /// A session for `config`, with an optional certificate from a cache (used if still valid
    /// for an hour when the challenge comes). The Call-ID is drawn from `entropy` and kept for
    /// every REGISTER of the session.
    pub fn new(
        config: SessionConfig,
        certificate: Option<UserCertificate>,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let instance = epid_to_instance(&config.epid);
        SipSession {
            template: RegisterTemplate {
                address: config.address,
                epid: config.epid,
                instance,
                call_id: request::call_id(entropy),
                local: config.local,
                transport: match config.transport {
                    Transport::Tls => "tls",
                    Transport::Tcp => "tcp",
                },
                user_agent: config.user_agent,
            },
            server_ca_pem: config.server_ca_pem,
            transaction_timeout: config.transaction_timeout,
            cseq: 0,
            cnum: 0,
            state: State::Idle,
            outstanding: None,
            certificate,
            sa: None,
            registration: None,
            handshakes_without_200: 0,
            error: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sends the first (unauthenticated) REGISTER. Does nothing unless the session is new.
    pub fn start(&mut self, now: UtcTime, entropy: &mut dyn Entropy) {
        if matches!(self.state, State::Idle) {
            self.send_unsigned(now, entropy);
        }
    }

    /// The answer to [`SessionEvent::CertificateNeeded`]: starts the handshake with it. Ignored
    /// unless the session is waiting for a certificate.
    pub fn provide_certificate(
        &mut self,
        now: UtcTime,
        certificate: UserCertificate,
        entropy: &mut dyn Entropy,
    ) {
        let State::NeedCertificate(challenge) = std::mem::replace(&mut self.state, State::Failed)
        else {
            return;
        };
        if !certificate.usable_at(now) {
            let why = format!(
                "the certificate provided ({}) is not valid for another hour",
                certificate.describe()
            );
            self.certificate = Some(certificate);
            self.fail(SessionError::Certificate(why));
            return;
        }
        self.certificate = Some(certificate);
        self.start_handshake(now, challenge, entropy);
    }

    /// Re-REGISTERs now (signed) instead of waiting for the timer. Returns whether it was sent.
    pub fn refresh(&mut self, now: UtcTime, entropy: &mut dyn Entropy) -> bool {
        if !matches!(self.state, State::Registered) {
            return false;
        }
        self.send_signed(now, Leg::Refresh, entropy)
    }

    /// Starts a full re-authentication now: the SA is dropped and an unsigned REGISTER goes out.
    pub fn reauthenticate(&mut self, now: UtcTime, entropy: &mut dyn Entropy) -> bool {
        if !matches!(self.state, State::Registered) {
            return false;
        }
        self.sa = None;
        self.send_unsigned(now, entropy);
        true
    }

    /// Signs out: a signed REGISTER with `Expires: 0` (sip.md §8). Returns whether it was sent.
    pub fn sign_out(&mut self, now: UtcTime, entropy: &mut dyn Entropy) -> bool {
        if !matches!(self.state, State::Registered) {
            return false;
        }
        self.send_signed(now, Leg::SignOut, entropy)
    }

    /// The owner's connection failed: the session ends.
    pub fn transport_failed(&mut self, why: impl Into<String>) {
        self.fail(SessionError::Transport(why.into()));
    }

    /// One received message. Requests from the server and responses that do not answer the
    /// outstanding REGISTER (another Call-ID or CSeq, or provisional) are ignored.
    pub fn handle(&mut self, now: UtcTime, msg: &Message, entropy: &mut dyn Entropy) {
        let Some(status) = msg.status() else {
            return;
        };
        if status < 200 || !self.answers_outstanding(msg) {
            return;
        }
        let Some(out) = self.outstanding.take() else {
            return;
        };
        if let Some(sa) = &self.sa {
            match verify(sa, msg) {
                Signature::Valid => {}
                Signature::Invalid => return self.fail(SessionError::BadSignature { status }),
                // Unsigned 401/403 are processed (sip.md §7.2): a lost SA is re-challenged,
                // a refusal is unsigned by nature. A 2xx must prove the SA.
                Signature::Absent if (200..300).contains(&status) => {
                    return self.fail(SessionError::Unsigned { status });
                }
                Signature::Absent => {}
            }
        }
        let state = std::mem::replace(&mut self.state, State::Failed);
        match (state, status) {
            (State::Challenging, 401) => self.challenged(now, msg, entropy),
            (State::Hello(tls, challenge), 401) => {
                self.server_hello(now, msg, tls, challenge, entropy)
            }
            (State::Finish(tls, challenge, opaque), 401) => {
                self.server_finish(now, msg, tls, challenge, opaque, entropy)
            }
            (State::Registering | State::Refreshing, 200..=299) => {
                self.registered(now, msg, out.leg == Leg::Refresh)
            }
            (State::Registering, 401) => {
                // The handshake finished yet the signed REGISTER was challenged again.
                self.handshakes_without_200 += 1;
                self.sa = None;
                if self.handshakes_without_200 >= MAX_HANDSHAKES_WITHOUT_200 {
                    return self.fail(SessionError::ChallengeLoop);
                }
                self.challenged(now, msg, entropy)
            }
            (State::Refreshing, 401) => {
                // The registrar lost or ended our SA: full re-authentication (sip.md §8).
                self.sa = None;
                self.challenged(now, msg, entropy)
            }
            (State::SigningOut, 200..=299) => {
                self.registration = None;
                self.state = State::SignedOut;
                self.events.push_back(SessionEvent::SignedOut);
            }
            (_, 400..=699) if status != 401 => self.fail(refusal(msg, status)),
            (_, _) => self.fail(SessionError::UnexpectedStatus {
                status,
                reason: msg.reason().unwrap_or_default().to_string(),
            }),
        }
    }

    /// Runs the timers: transaction time limit, re-authentication, re-REGISTER.
    pub fn handle_timeout(&mut self, now: UtcTime, entropy: &mut dyn Entropy) {
        if let Some(out) = &self.outstanding
            && now >= out.deadline
        {
            let secs = u32::try_from(self.transaction_timeout.whole_seconds()).unwrap_or(0);
            return self.fail(SessionError::Timeout(secs));
        }
        if !matches!(self.state, State::Registered) {
            return;
        }
        let Some(reg) = &self.registration else {
            return;
        };
        if now >= reg.reauthenticate_at {
            self.reauthenticate(now, entropy);
        } else if now >= reg.refresh_at {
            self.refresh(now, entropy);
        }
    }

    /// The next instant [`SipSession::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<UtcTime> {
        if let Some(out) = &self.outstanding {
            return Some(out.deadline);
        }
        match (&self.state, &self.registration) {
            (State::Registered, Some(r)) => Some(r.refresh_at.min(r.reauthenticate_at)),
            _ => None,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The live registration, if any.
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// The certificate in use (or last provided).
    pub fn certificate(&self) -> Option<&UserCertificate> {
        self.certificate.as_ref()
    }

    /// Protocol and cipher of the current security association.
    pub fn security(&self) -> Option<(&'static str, &str)> {
        self.sa.as_ref().map(|s| (s.protocol, s.cipher.as_str()))
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered | State::Refreshing)
    }

    pub fn is_signed_out(&self) -> bool {
        matches!(self.state, State::SignedOut)
    }

    /// Waiting for the answer to a REGISTER.
    pub fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
    }

    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    pub fn call_id(&self) -> &str {
        &self.template.call_id
    }

    pub fn epid(&self) -> &str {
        &self.template.epid
    }

    /// The `+sip.instance` GUID of this endpoint.
    pub fn instance(&self) -> &str {
        &self.template.instance
    }

    // ---- internals ------------------------------------------------------------------------

    fn answers_outstanding(&self, msg: &Message) -> bool {
        let Some(out) = &self.outstanding else {
            return false;
        };
        let call_id_ok = msg.call_id().is_ok_and(|c| c == self.template.call_id);
        let cseq_ok = msg
            .cseq()
            .is_ok_and(|c| c.number == out.cseq && c.method.eq_ignore_ascii_case("REGISTER"));
        call_id_ok && cseq_ok
    }

    fn fail(&mut self, e: SessionError) {
        self.state = State::Failed;
        self.outstanding = None;
        self.sa = None;
        self.registration = None;
        self.error = Some(e.clone());
        self.events.push_back(SessionEvent::Failed(e));
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    fn queue(&mut self, now: UtcTime, leg: Leg, cseq: u32, message: Message) {
        self.outstanding = Some(Outstanding {
            cseq,
            leg,
            deadline: now + self.transaction_timeout,
        });
        self.transmits.push_back(Transmit { leg, message });
    }

    fn send_unsigned(&mut self, now: UtcTime, entropy: &mut dyn Entropy) {
        let cseq = self.next_cseq();
        let msg = self.template.build(cseq, entropy, false);
        self.state = State::Challenging;
        self.queue(now, Leg::Register, cseq, msg);
    }

    /// A handshake leg: `Authorization: TLS-DSK qop, [opaque,] realm, targetname, gssapi-data,
    /// version` (sip.md §5.2 rows C1, C2); base64 without line breaks.
    fn send_leg(
        &mut self,
        now: UtcTime,
        leg: Leg,
        challenge: &Challenge,
        opaque: Option<&str>,
        data: &[u8],
        entropy: &mut dyn Entropy,
    ) {
        let cseq = self.next_cseq();
        let msg = self.template.build(cseq, entropy, false);
        let mut auth = AuthParams::new(SCHEME).quoted("qop", "auth");
        if let Some(o) = opaque {
            auth = auth.quoted("opaque", o);
        }
        let auth = auth
            .quoted("realm", &challenge.realm)
            .quoted("targetname", &challenge.targetname)
            .quoted("gssapi-data", &STANDARD.encode(data))
            .token("version", &challenge.version.to_string())
            .render();
        let msg = msg.with_header("Authorization", &auth);
        self.queue(now, leg, cseq, msg);
    }

    /// A signed REGISTER (C3, refresh, sign-out): the signature covers the message without its
    /// `Authorization`, which is appended after `Content-Length` (sip.md §6.1, §7).
    fn send_signed(&mut self, now: UtcTime, leg: Leg, entropy: &mut dyn Entropy) -> bool {
        let cseq = self.next_cseq();
        let msg = self.template.build(cseq, entropy, leg == Leg::SignOut);
        let Some(sa) = &self.sa else {
            self.fail(SessionError::Handshake(
                "no security association to sign with".into(),
            ));
            return false;
        };
        self.cnum += 1;
        let crand = request::crand(entropy);
        let cnum = self.cnum.to_string();
        let params = SigParams {
            scheme: SCHEME,
            rand: &crand,
            num: &cnum,
            realm: &sa.realm,
            targetname: &sa.targetname,
            version: sa.version,
        };
        let buffer = match sign::buffer(&msg, &params) {
            Ok(b) => b,
            Err(e) => {
                self.fail(SessionError::Handshake(format!(
                    "our REGISTER cannot be signed ({e})"
                )));
                return false;
            }
        };
        let response = sa.keys.sign_client(buffer.as_bytes()).to_ascii_uppercase();
        let auth = AuthParams::new(SCHEME)
            .quoted("qop", "auth")
            .quoted("opaque", &sa.opaque)
            .quoted("realm", &sa.realm)
            .quoted("targetname", &sa.targetname)
            .quoted("crand", &crand)
            .quoted("cnum", &cnum)
            .quoted("response", &response)
            .render();
        let msg = msg.with_header("Authorization", &auth);
        self.state = match leg {
            Leg::SignOut => State::SigningOut,
            Leg::Refresh => State::Refreshing,
            _ => State::Registering,
        };
        self.queue(now, leg, cseq, msg);
        true
    }

    /// A 401 to an unsigned (or no longer valid) REGISTER: read the TLS-DSK offer; handshake
    /// with the certificate at hand if it is valid for another hour, else ask for one.
    fn challenged(&mut self, now: UtcTime, msg: &Message, entropy: &mut dyn Entropy) {
        let challenge = match read_challenge(msg) {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        self.events
            .push_back(SessionEvent::Challenged(challenge.clone()));
        let reason = match &self.certificate {
            Some(c) if c.usable_at(now) => return self.start_handshake(now, challenge, entropy),
            Some(c) => format!(
                "the certificate at hand ({}) is valid for less than an hour",
                c.describe()
            ),
            None => "no certificate yet".to_string(),
        };
        let Some(sts_uri) = challenge.sts_uri.clone() else {
            return self.fail(SessionError::NoStsUri);
        };
        self.events.push_back(SessionEvent::CertificateNeeded {
            targetname: challenge.targetname.clone(),
            sts_uri,
            reason,
        });
        self.state = State::NeedCertificate(challenge);
    }

    fn start_handshake(&mut self, now: UtcTime, challenge: Challenge, entropy: &mut dyn Entropy) {
        let Some(cert) = &self.certificate else {
            return self.fail(SessionError::Certificate("no certificate".into()));
        };
        let ctx = match ClientContext::new(
            &cert.cert_pem,
            cert.key_pem.expose(),
            self.server_ca_pem.as_deref(),
        ) {
            Ok(c) => c,
            Err(e) => return self.fail(SessionError::Certificate(e.to_string())),
        };
        let (tls, c1) = match ctx.connect(&challenge.targetname, now) {
            Ok(r) => r,
            Err(e) => return self.fail(SessionError::Handshake(e.to_string())),
        };
        self.send_leg(now, Leg::Hello, &challenge, None, &c1, entropy);
        self.state = State::Hello(tls, challenge);
    }

    fn server_hello(
        &mut self,
        now: UtcTime,
        msg: &Message,
        tls: AwaitingServerHello,
        challenge: Challenge,
        entropy: &mut dyn Entropy,
    ) {
        let (opaque, s1) = match continuation(msg) {
            Ok((o, _)) if o.is_empty() => {
                return self.fail(SessionError::BadHandshakeAnswer(
                    "the server hello 401 names no opaque (security association id)".into(),
                ));
            }
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        let (tls, c2) = match tls.step(&s1) {
            Ok(r) => r,
            Err(e) => return self.fail(SessionError::Handshake(e.to_string())),
        };
        self.send_leg(now, Leg::Finish, &challenge, Some(&opaque), &c2, entropy);
        self.events.push_back(SessionEvent::HandshakeStarted {
            opaque: opaque.clone(),
        });
        self.state = State::Finish(tls, challenge, opaque);
    }

    fn server_finish(
        &mut self,
        now: UtcTime,
        msg: &Message,
        tls: AwaitingServerFinish,
        challenge: Challenge,
        opaque: String,
        entropy: &mut dyn Entropy,
    ) {
        let (new_opaque, s2) = match continuation(msg) {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        let done = match tls.finish(&s2) {
            Ok(d) => d,
            Err(e) => return self.fail(SessionError::Handshake(e.to_string())),
        };
        // The opaque of S2 names the SA; it should be the one of S1.
        let opaque = if new_opaque.is_empty() {
            opaque
        } else {
            new_opaque
        };
        let (serial, cert_end) = self
            .certificate
            .as_ref()
            .map(|c| (c.serial_hex.clone(), c.not_after))
            .unwrap_or_else(|| (String::new(), now + MAX_SA_LIFETIME));
        let reauthenticate_at = cert_end.min(now + MAX_SA_LIFETIME) - SA_MARGIN;
        self.events.push_back(SessionEvent::HandshakeCompleted {
            opaque: opaque.clone(),
            protocol: done.protocol,
            cipher: done.cipher.clone(),
            certificate_serial: serial,
        });
        self.sa = Some(SecurityAssociation {
            keys: done.keys,
            opaque,
            realm: challenge.realm,
            targetname: challenge.targetname,
            version: challenge.version,
            reauthenticate_at,
            protocol: done.protocol,
            cipher: done.cipher,
        });
        self.send_signed(now, Leg::Signed, entropy);
    }

    /// A verified 2xx to C3 or a refresh: read `Expires` (the only lifetime SIPE honours) and
    /// our GRUU, and set the timers.
    fn registered(&mut self, now: UtcTime, msg: &Message, refreshed: bool) {
        let expires = match msg.expires() {
            Some(Ok(n)) if n > 0 => n,
            _ => return self.fail(SessionError::NoExpires),
        };
        let Some(sa) = &self.sa else {
            return self.fail(SessionError::Unsigned {
                status: msg.status().unwrap_or(200),
            });
        };
        let instance = &self.template.instance;
        let gruu = msg
            .contacts()
            .filter_map(Result::ok)
            .find(|c| {
                c.sip_instance()
                    .is_some_and(|i| i.eq_ignore_ascii_case(instance))
            })
            .and_then(|c| c.param("gruu"))
            .filter(|g| !g.is_empty())
            .map(str::to_string);
        let lifetime = Duration::seconds(i64::from(expires));
        let lead = if lifetime > REFRESH_MARGIN * 2 {
            lifetime - REFRESH_MARGIN
        } else {
            lifetime / 2
        };
        let registration = Registration {
            expires,
            gruu,
            registered_at: now,
            refresh_at: now + lead,
            reauthenticate_at: sa.reauthenticate_at,
            opaque: sa.opaque.clone(),
        };
        self.handshakes_without_200 = 0;
        self.registration = Some(registration.clone());
        self.state = State::Registered;
        self.events.push_back(SessionEvent::Registered {
            registration,
            refreshed,
        });
    }
}

enum Signature {
    Valid,
    Invalid,
    Absent,
}

/// Checks the `rspauth` of `Authentication-Info: TLS-DSK …` with the SA's server key; the
/// signature buffer is built from that header's own srand/snum/realm/targetname (sip.md §7.2).
fn verify(sa: &SecurityAssociation, msg: &Message) -> Signature {
    for value in msg.header_all("Authentication-Info") {
        let Ok(auth) = AuthHeader::parse(value) else {
            continue;
        };
        if !auth.is_scheme(SCHEME) {
            continue;
        }
        let Some(rspauth) = auth.get("rspauth") else {
            continue;
        };
        let Some(params) = SigParams::from_auth(&auth, sa.version) else {
            return Signature::Invalid;
        };
        return match sign::buffer(msg, &params) {
            Ok(buffer) if sa.keys.verify_server(buffer.as_bytes(), rspauth) => Signature::Valid,
            _ => Signature::Invalid,
        };
    }
    Signature::Absent
}

/// The TLS-DSK line among every `WWW-Authenticate` of a 401 (sip.md §3.2).
fn read_challenge(msg: &Message) -> Result<Challenge, SessionError> {
    let mut offered = Vec::new();
    for value in msg.header_all("WWW-Authenticate") {
        let Ok(auth) = AuthHeader::parse(value) else {
            continue;
        };
        if !auth.is_scheme(SCHEME) {
            offered.push(auth.scheme.to_string());
            continue;
        }
        let Some(targetname) = auth.get("targetname").filter(|t| !t.is_empty()) else {
            return Err(SessionError::BadHandshakeAnswer(
                "the TLS-DSK challenge has no targetname".into(),
            ));
        };
        return Ok(Challenge {
            realm: auth
                .get("realm")
                .unwrap_or(lyncd_default_realm())
                .to_string(),
            targetname: targetname.to_string(),
            version: auth
                .get("version")
                .and_then(|v| v.trim_matches('"').parse().ok())
                .unwrap_or(4),
            sts_uri: auth
                .get("sts-uri")
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('/').to_string()),
        });
    }
    Err(SessionError::NoTlsDsk { offered })
}

fn lyncd_default_realm() -> &'static str {
    "SIP Communications Service"
}

/// `opaque` and decoded `gssapi-data` of a continuation 401 (S1, S2).
fn continuation(msg: &Message) -> Result<(String, Vec<u8>), SessionError> {
    let auth = msg
        .header_all("WWW-Authenticate")
        .filter_map(|v| AuthHeader::parse(v).ok())
        .find(|a| a.is_scheme(SCHEME))
        .ok_or_else(|| {
            SessionError::BadHandshakeAnswer("the 401 carries no TLS-DSK WWW-Authenticate".into())
        })?;
    let data = auth.get("gssapi-data").ok_or_else(|| {
        SessionError::BadHandshakeAnswer(
            "the 401 carries no gssapi-data: the registrar restarted the handshake".into(),
        )
    })?;
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(clean)
        .map_err(|_| SessionError::BadHandshakeAnswer("gssapi-data is not base64".into()))?;
    let opaque = auth.get("opaque").unwrap_or_default().to_string();
    Ok((opaque, bytes))
}

/// A 4xx–6xx refusal with the server's `Warning` / `ms-diagnostics`, verbatim.
fn refusal(msg: &Message, status: u16) -> SessionError {
    SessionError::Refused {
        status,
        reason: msg.reason().unwrap_or_default().to_string(),
        warning: msg.header("Warning").map(warning_text),
        diagnostics: msg.header("ms-diagnostics").map(str::to_string),
    }
}
