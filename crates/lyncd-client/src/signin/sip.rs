//! The SIP half of the sign-in (steps 7–9): REGISTER and its TLS-DSK challenge, Certificate
//! Provisioning when no certificate is valid for another hour, the tunnelled handshake, the
//! signed REGISTER, one signed refresh and (when asked) sign-out. The registration itself is a
//! [`SipSession`]; this phase turns its transmits into [`Action::Sip`]s, runs CertProv over HTTP
//! when the session asks for a certificate (http.md §8), and writes one trace event per leg.

use super::*;

use bytes::Bytes;
use lyncd_discover::SipEndpoint;
use lyncd_sip::Message;

use crate::model::SignedIn;
use crate::sip::{
    Challenge, Leg, SessionConfig, SessionError, SessionEvent, SipSession, Transmit,
    UserCertificate, epid_for,
};

/// Where the CertProv request goes and how it is authorised (http.md §8.1).
#[derive(Debug, Clone)]
struct CertProvTarget {
    /// The web-ticket port location: POST target and ticket audience.
    location: String,
    /// The policy asks for the HMAC proof (EndorsingSupportingTokens).
    proof: bool,
}

#[derive(Debug)]
enum Stage {
    /// REGISTERs on the SIP connection.
    Sip,
    Mex {
        sts_uri: String,
    },
    IdpToken {
        target: CertProvTarget,
        message_id: String,
    },
    WebTicket {
        target: CertProvTarget,
        token: soap::IdpToken,
        client_entropy: Secret<Vec<u8>>,
        message_id: String,
    },
    Key {
        target: CertProvTarget,
        ticket: WebTicket,
    },
    CertProv {
        target: CertProvTarget,
        ticket: WebTicket,
        key_pem: Secret<String>,
        csr_der: Vec<u8>,
        message_id: String,
        request_id: String,
    },
}

#[derive(Debug)]
pub(super) struct SipFlow {
    session: SipSession,
    endpoint: SipEndpoint,
    auth: WebAuth,
    discovered: Discovered,
    stage: Stage,
    /// The REGISTER to hand to the shell next (kept until its answer arrives).
    pending: Option<Transmit>,
    /// The leg of the last REGISTER sent, for receive-only actions.
    last_leg: Leg,
    challenge: Option<Challenge>,
    certificate_from_cache: bool,
    refreshed: bool,
    last_registration: Option<crate::sip::Registration>,
}

fn leg_step(leg: Leg) -> Step {
    match leg {
        Leg::Register => Step::SipRegister,
        Leg::Hello => Step::TlsDskHello,
        Leg::Finish => Step::TlsDskFinish,
        Leg::Signed => Step::SipRegisterSigned,
        Leg::Refresh => Step::SipRefresh,
        Leg::SignOut => Step::SipSignOut,
    }
}

impl SipFlow {
    /// Sets up the session for the first pool entry and queues the unauthenticated REGISTER.
    pub(super) fn start(
        ctx: &Context,
        auth: WebAuth,
        discovered: Discovered,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (SipFlow, String) {
        // `discovered.pool` is never empty here: the user step fails without a pool.
        let endpoint = discovered.pool.first().cloned().unwrap_or(SipEndpoint {
            fqdn: String::new(),
            port: 5061,
        });
        let mut config = SessionConfig::new(ctx.address.clone(), epid_for(&ctx.endpoint_id));
        config.server_ca_pem = ctx.sip.server_ca.clone();
        let cached = ctx
            .sip
            .certificates
            .iter()
            .find(|c| c.targetname.eq_ignore_ascii_case(&endpoint.fqdn));
        let (cached, note) = match cached {
            Some(c) => match UserCertificate::from_pem(&c.cert_pem, c.key_pem.clone()) {
                Ok(cert) if cert.usable_at(now) => {
                    let note = format!("cached certificate {} at hand", cert.describe());
                    (Some(cert), note)
                }
                Ok(cert) => (
                    None,
                    format!(
                        "the cached certificate ({}) is valid for less than an hour: not used",
                        cert.describe()
                    ),
                ),
                Err(e) => (
                    None,
                    format!("the cached certificate is unreadable ({e}): not used"),
                ),
            },
            None => (None, "no cached certificate".to_string()),
        };
        let certificate_from_cache = cached.is_some();
        let mut session = SipSession::new(config, cached, entropy);
        session.start(now, entropy);
        let pending = session.poll_transmit();
        let note = format!(
            "{note}; next: REGISTER at {}:{} over TLS",
            endpoint.fqdn, endpoint.port
        );
        (
            SipFlow {
                session,
                endpoint,
                auth,
                discovered,
                stage: Stage::Sip,
                pending,
                last_leg: Leg::Register,
                challenge: None,
                certificate_from_cache,
                refreshed: false,
                last_registration: None,
            },
            note,
        )
    }

    fn target(&self) -> String {
        format!("{}:{}", self.endpoint.fqdn, self.endpoint.port)
    }

    pub(super) fn request(&self, ctx: &Context) -> Option<Request> {
        Some(match &self.stage {
            Stage::Sip => {
                let (leg, message, sent) = match &self.pending {
                    Some(t) => (t.leg, t.message.as_bytes().to_vec(), self.describe(t)),
                    None if self.session.is_waiting() => (
                        self.last_leg,
                        Vec::new(),
                        format!("(read the next SIP message from {})", self.target()),
                    ),
                    None => return None,
                };
                Request {
                    step: leg_step(leg),
                    sent,
                    io: Io::Sip {
                        host: self.endpoint.fqdn.clone(),
                        port: self.endpoint.port,
                        tls: true,
                        message,
                    },
                }
            }
            Stage::Mex { sts_uri } => {
                let url = format!("{sts_uri}/mex");
                Request {
                    step: Step::CertprovMex,
                    sent: format!("GET {url}"),
                    io: Io::Http(get(url, Vec::new())),
                }
            }
            Stage::IdpToken { message_id, .. } => {
                let body = soap::rst2_request(
                    &self.auth.idp_url,
                    message_id,
                    &ctx.login,
                    ctx.password.expose(),
                    &self.auth.wsfed_url,
                );
                Request {
                    step: Step::CertprovIdpToken,
                    sent: format!(
                        "POST {} (WS-Trust RST for {} with user name {} and the password; body \
                         not shown)",
                        self.auth.idp_url, self.auth.wsfed_url, ctx.login
                    ),
                    io: Io::Http(soap_post(&self.auth.idp_url, soap::RST2_ACTION, body)),
                }
            }
            Stage::WebTicket {
                target,
                token,
                client_entropy,
                message_id,
            } => {
                let entropy_b64 = STANDARD.encode(client_entropy.expose());
                let body = soap::webticket_request(&soap::WebTicketRequest {
                    wsfed_url: &self.auth.wsfed_url,
                    message_id,
                    lifetime: &token.lifetime,
                    encrypted_data: &token.encrypted_data,
                    context: &ctx.endpoint_id,
                    applies_to: &target.location,
                    sip_uri: &ctx.address.sip_uri(),
                    entropy_b64: &entropy_b64,
                });
                Request {
                    step: Step::CertprovWebTicket,
                    sent: format!(
                        "POST {} (WS-Trust RST carrying the identity token and client entropy, \
                         for {}; body not shown)",
                        self.auth.wsfed_url, target.location
                    ),
                    io: Io::Http(soap_post(
                        &self.auth.wsfed_url,
                        soap::WEBTICKET_ACTION,
                        body,
                    )),
                }
            }
            Stage::Key { .. } => Request {
                step: Step::CertprovKey,
                sent: format!(
                    "generate RSA-2048 key and PKCS#10 request for CN={}",
                    ctx.address
                ),
                io: Io::GenerateKey(ctx.address.clone()),
            },
            Stage::CertProv {
                target,
                ticket,
                csr_der,
                message_id,
                request_id,
                ..
            } => {
                let body = soap::certprov_request(&soap::CertProvRequest {
                    url: &target.location,
                    message_id,
                    lifetime: &ticket.lifetime,
                    assertion: ticket.assertion.expose(),
                    assertion_id: &ticket.assertion_id,
                    proof_key: target.proof.then(|| ticket.proof_key.expose().as_slice()),
                    device_id: self.session.instance(),
                    entity: &ctx.address.to_string(),
                    csr_der,
                    request_id,
                });
                Request {
                    step: Step::Certprov,
                    sent: format!(
                        "POST {} (GetAndPublishCert with the CSR and web ticket {}{}; body not \
                         shown)",
                        target.location,
                        ticket.assertion_id,
                        if target.proof {
                            ", HMAC-SHA1 proof over the Timestamp"
                        } else {
                            ", bearer"
                        }
                    ),
                    io: Io::Http(soap_post(&target.location, soap::CERTPROV_ACTION, body)),
                }
            }
        })
    }

    fn describe(&self, t: &Transmit) -> String {
        let cseq = t.message.cseq().map(|c| c.number).unwrap_or_default();
        let what = match t.leg {
            Leg::Register => "no credentials",
            Leg::Hello => "TLS-DSK gssapi-data: ClientHello (C1)",
            Leg::Finish => "TLS-DSK gssapi-data: certificate, key exchange, verify, Finished (C2)",
            Leg::Signed => "signed: crand, cnum, response (C3)",
            Leg::Refresh => "signed re-REGISTER",
            Leg::SignOut => "signed, Expires: 0",
        };
        format!(
            "REGISTER {} (CSeq {cseq}, {what}) to {} over TLS",
            t.message.request_uri().unwrap_or_default(),
            self.target()
        )
    }

    pub(super) fn complete(
        mut self,
        ctx: &mut Context,
        c: Completion,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (Next, Report) {
        match std::mem::replace(&mut self.stage, Stage::Sip) {
            Stage::Sip => self.sip_answer(ctx, c, entropy, now),
            Stage::Mex { sts_uri } => self.mex(c, &sts_uri, entropy),
            Stage::IdpToken { target, .. } => self.idp_token(c, target, entropy),
            Stage::WebTicket {
                target,
                client_entropy,
                ..
            } => self.web_ticket(c, target, client_entropy),
            Stage::Key { target, ticket } => self.key(c, target, ticket, entropy),
            Stage::CertProv {
                target,
                ticket,
                key_pem,
                ..
            } => self.certprov(ctx, c, target, ticket, key_pem, entropy, now),
        }
    }

    // ---- SIP --------------------------------------------------------------------------------

    fn sip_answer(
        mut self,
        ctx: &Context,
        c: Completion,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (Next, Report) {
        let sent = self.pending.take();
        let leg = sent.as_ref().map_or(self.last_leg, |t| t.leg);
        self.last_leg = leg;
        let step = leg_step(leg);
        let bytes = match c {
            Completion::SipResponse(b) => b,
            Completion::TransportFailed(e) => {
                let f = Failure::new(
                    step,
                    FailureKind::Unreachable,
                    format!("a SIP answer from {}", self.target()),
                    format!("the SIP connection failed: {e}"),
                );
                return fail(
                    f,
                    None,
                    format!("no answer: the SIP connection failed ({e})"),
                );
            }
            other => return unreachable_failure(step, &self.target(), &other),
        };
        let msg = match Message::parse(Bytes::from(bytes)) {
            Ok(m) => m,
            Err(e) => {
                let f = Failure::new(
                    step,
                    FailureKind::Malformed(format!("the registrar's SIP message: {e}")),
                    "a SIP response",
                    e.to_string(),
                );
                return fail(f, None, format!("answered something that is not SIP ({e})"));
            }
        };
        let status = msg.status();
        self.session.handle(now, &msg, entropy);
        let events: Vec<SessionEvent> = std::iter::from_fn(|| self.session.poll_event()).collect();
        self.pending = self.session.poll_transmit();
        if events.is_empty() && self.pending.is_none() && self.session.is_waiting() {
            // Not the answer (a server request, a provisional or stale response): read on.
            return (Next::Wait(Phase::Sip(Box::new(self))), quiet_report());
        }
        let mut notes: Vec<String> = Vec::new();
        let mut done = false;
        for ev in events {
            match ev {
                SessionEvent::Challenged(ch) => {
                    notes.push(format!(
                        "answered 401 with a TLS-DSK challenge (targetname {}, realm \"{}\", \
                         version {}, sts-uri {})",
                        ch.targetname,
                        ch.realm,
                        ch.version,
                        ch.sts_uri.as_deref().unwrap_or("none")
                    ));
                    if let Some(cert) = self.session.certificate()
                        && cert.usable_at(now)
                    {
                        notes.push(format!(
                            "certificate {} is valid for another hour: next: the TLS-DSK \
                             handshake",
                            cert.describe()
                        ));
                    }
                    self.challenge = Some(ch);
                }
                SessionEvent::CertificateNeeded {
                    sts_uri, reason, ..
                } => {
                    notes.push(format!(
                        "{reason}: next: Certificate Provisioning at {sts_uri}"
                    ));
                    self.certificate_from_cache = false;
                    self.stage = Stage::Mex { sts_uri };
                }
                SessionEvent::HandshakeStarted { opaque } => notes.push(format!(
                    "answered 401 with the server's hello, certificate and certificate request \
                     (S1) for security association {opaque}; next: our certificate, key \
                     exchange and Finished (C2)"
                )),
                SessionEvent::HandshakeCompleted {
                    opaque,
                    protocol,
                    cipher,
                    certificate_serial,
                } => notes.push(format!(
                    "answered 401 with the server Finished (S2), verified: security association \
                     {opaque} ready, {protocol} {cipher}, user certificate {certificate_serial}; \
                     next: the signed REGISTER (C3)"
                )),
                SessionEvent::Registered {
                    registration,
                    refreshed,
                } => {
                    notes.push(format!(
                        "answered 200 OK signed by the registrar (rspauth verified): {} for {} s, \
                         GRUU {}; re-REGISTER due at {}, re-authentication at {}",
                        if refreshed {
                            "registration renewed"
                        } else {
                            "registered"
                        },
                        registration.expires,
                        registration.gruu.as_deref().unwrap_or("none"),
                        format_iso(registration.refresh_at),
                        format_iso(registration.reauthenticate_at)
                    ));
                    self.last_registration = Some(registration);
                    if refreshed {
                        self.refreshed = true;
                    }
                    if !self.refreshed && ctx.sip.refresh && self.session.refresh(now, entropy) {
                        notes.push("next: one signed refresh".into());
                    } else if ctx.sip.sign_out && self.session.sign_out(now, entropy) {
                        notes.push("next: sign out".into());
                    } else {
                        notes.push("signed in".into());
                        done = true;
                    }
                    self.pending = self.session.poll_transmit();
                }
                SessionEvent::SignedOut => {
                    notes.push(
                        "answered 200 OK signed by the registrar (rspauth verified) to Expires: 0: \
                         signed out"
                            .into(),
                    );
                    done = true;
                }
                SessionEvent::Failed(e) => {
                    let f = session_failure(step, &e);
                    let mut detail = notes.join("; ");
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(&e.to_string());
                    return fail(f, status, detail);
                }
            }
        }
        let detail = notes.join("; ");
        if done {
            return self.finish(status, detail);
        }
        proceed(Phase::Sip(Box::new(self)), status, detail)
    }

    fn finish(self, status: Option<u16>, detail: String) -> (Next, Report) {
        let Some(certificate) = self.session.certificate().cloned() else {
            let f = Failure::new(
                Step::SipRegisterSigned,
                FailureKind::CertificateUnusable,
                "a certificate",
                "none",
            );
            return fail(f, status, detail);
        };
        let (protocol, cipher) = self
            .session
            .security()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .unwrap_or_default();
        let signed_out = self.session.is_signed_out();
        let reg = self.last_registration;
        let signed_in = SignedIn {
            discovered: self.discovered,
            registrar: self.endpoint,
            certificate,
            certificate_from_cache: self.certificate_from_cache,
            expires: if signed_out {
                0
            } else {
                reg.as_ref().map_or(0, |r| r.expires)
            },
            gruu: reg.and_then(|r| r.gruu),
            protocol,
            cipher,
            targetname: self.challenge.map(|c| c.targetname).unwrap_or_default(),
            refreshed: self.refreshed,
            signed_out,
        };
        (
            Next::Done(Outcome::SignedIn(Box::new(signed_in))),
            Report {
                ok: true,
                status,
                detail,
                failure: None,
            },
        )
    }

    // ---- Certificate Provisioning ------------------------------------------------------------

    fn mex(mut self, c: Completion, sts_uri: &str, entropy: &mut dyn Entropy) -> (Next, Report) {
        let step = Step::CertprovMex;
        let url = format!("{sts_uri}/mex");
        let expected = format!(
            "HTTP 200 with a WSDL offering the {} port and its policy",
            soap::CERTPROV_PORT
        );
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &url, &other),
        };
        let status = Some(resp.status);
        if resp.status != 200 {
            let f = Failure::new(
                step,
                FailureKind::UnexpectedStatus,
                expected,
                describe_response(&resp),
            );
            return fail(f, status, format!("answered {}", describe_response(&resp)));
        }
        let mex = match body_text(&resp).and_then(soap::parse_certprov_mex) {
            Ok(m) => m,
            Err(why) => {
                let f = Failure::new(
                    step,
                    FailureKind::Malformed(format!("the CertProv metadata: {why}")),
                    expected,
                    why.clone(),
                );
                return fail(f, status, format!("answered 200, but {why}"));
            }
        };
        let Some(location) = mex.location.clone() else {
            let ports = if mex.ports.is_empty() {
                "no ports".to_string()
            } else {
                format!("ports {}", mex.ports.join(", "))
            };
            let f = Failure::new(
                step,
                FailureKind::CertprovMexWithoutPort,
                expected,
                format!("a WSDL with {ports}"),
            );
            return fail(f, status, format!("answered a WSDL with {ports}"));
        };
        if let Err(why) = absolute_http_url(&location) {
            let f = Failure::new(
                step,
                FailureKind::Malformed(format!("the CertProv port location {location:?} {why}")),
                expected,
                location.clone(),
            );
            return fail(f, status, format!("the CertProv port location {why}"));
        }
        let same = |a: &str, b: &str| {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(b.trim_end_matches('/'))
        };
        let issuer_note = match &mex.issuer {
            Some(i) if !same(i, &self.auth.webticket_url) => {
                let f = Failure::new(
                    step,
                    FailureKind::CertprovForeignIssuer,
                    format!("tickets from {}", self.auth.webticket_url),
                    format!("tickets from {i}"),
                );
                return fail(
                    f,
                    status,
                    format!("answered a WSDL that wants tickets from {i}"),
                );
            }
            Some(i) => format!("tickets from {i}"),
            None => format!(
                "no issuer named, so tickets from {}",
                self.auth.webticket_url
            ),
        };
        let detail = format!(
            "answered the WSDL: {} at {location}; {issuer_note}, {}; next: a fresh identity token \
             (as pidgin-sipe: an identity provider may accept each token once)",
            soap::CERTPROV_PORT,
            if mex.proof {
                "with an HMAC proof of the ticket's key"
            } else {
                "as a bearer ticket"
            }
        );
        self.stage = Stage::IdpToken {
            target: CertProvTarget {
                location,
                proof: mex.proof,
            },
            message_id: uuid_v4(entropy),
        };
        proceed(Phase::Sip(Box::new(self)), status, detail)
    }

    fn idp_token(
        mut self,
        c: Completion,
        target: CertProvTarget,
        entropy: &mut dyn Entropy,
    ) -> (Next, Report) {
        let (token, status) = match read_idp_answer(Step::CertprovIdpToken, &self.auth.idp_url, c) {
            Ok(t) => t,
            Err(done) => return done,
        };
        let mut client_entropy = vec![0u8; ENTROPY_LEN];
        entropy.fill(&mut client_entropy);
        let detail = format!(
            "answered 200 with an identity token{}; next: exchange it at {} for a ticket to {}",
            token
                .expires
                .map(|e| format!(" valid until {}", format_iso(e)))
                .unwrap_or_default(),
            self.auth.wsfed_url,
            target.location
        );
        self.stage = Stage::WebTicket {
            target,
            token,
            client_entropy: Secret::new(client_entropy),
            message_id: uuid_v4(entropy),
        };
        proceed(Phase::Sip(Box::new(self)), status, detail)
    }

    fn web_ticket(
        mut self,
        c: Completion,
        target: CertProvTarget,
        client_entropy: Secret<Vec<u8>>,
    ) -> (Next, Report) {
        let (ticket, key_note, status) = match read_ticket_answer(
            Step::CertprovWebTicket,
            &self.auth.wsfed_url,
            c,
            client_entropy.expose(),
        ) {
            Ok(t) => t,
            Err(done) => return done,
        };
        let detail = format!(
            "answered 200 with web ticket {} for {} valid until {} ({key_note}); next: a key pair \
             and certificate request",
            ticket.assertion_id,
            target.location,
            format_iso(ticket.expires)
        );
        self.stage = Stage::Key { target, ticket };
        proceed(Phase::Sip(Box::new(self)), status, detail)
    }

    fn key(
        mut self,
        c: Completion,
        target: CertProvTarget,
        ticket: WebTicket,
        entropy: &mut dyn Entropy,
    ) -> (Next, Report) {
        let step = Step::CertprovKey;
        match c {
            Completion::KeyPair { key_pem, csr_der } => {
                let detail = format!(
                    "generated an RSA key pair and a {}-byte certificate request; next: \
                     GetAndPublishCert at {}",
                    csr_der.len(),
                    target.location
                );
                self.stage = Stage::CertProv {
                    target,
                    ticket,
                    key_pem,
                    csr_der,
                    message_id: uuid_v4(entropy),
                    request_id: uuid_v4(entropy),
                };
                proceed(Phase::Sip(Box::new(self)), None, detail)
            }
            Completion::KeyFailed(why) => {
                let f = Failure::new(
                    step,
                    FailureKind::KeyGeneration,
                    "an RSA key pair and a PKCS#10 request",
                    why.clone(),
                );
                fail(f, None, format!("key generation failed: {why}"))
            }
            _ => {
                let f = Failure::new(
                    step,
                    FailureKind::KeyGeneration,
                    "an RSA key pair and a PKCS#10 request",
                    "the shell answered a key request with something else",
                );
                fail(f, None, "no key pair came back".into())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn certprov(
        mut self,
        ctx: &Context,
        c: Completion,
        target: CertProvTarget,
        ticket: WebTicket,
        key_pem: Secret<String>,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (Next, Report) {
        let step = Step::Certprov;
        let expected = "HTTP 200 with RequestedSecurityToken/BinarySecurityToken (one DER \
                        certificate) for this user";
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &target.location, &other),
        };
        let status = Some(resp.status);
        let text = body_text(&resp);
        if resp.status != 200 {
            let got = describe_refusal(&resp, text.as_deref());
            let f = Failure::new(step, FailureKind::CertprovRejected, expected, &got);
            return fail(f, status, format!("refused to issue a certificate: {got}"));
        }
        let der = match text
            .map_err(IdpAnswer::Malformed)
            .and_then(soap::read_certprov_response)
        {
            Ok(d) => d,
            Err(IdpAnswer::Fault(fault)) => {
                let got = format!("a SOAP fault: {}", fault.describe());
                let f = Failure::new(step, FailureKind::CertprovRejected, expected, &got);
                return fail(f, status, format!("refused to issue a certificate: {got}"));
            }
            Err(IdpAnswer::Malformed(why)) => {
                let f = Failure::new(step, FailureKind::CertprovMalformed, expected, why.clone());
                return fail(f, status, format!("answered 200, but {why}"));
            }
        };
        let cert = match UserCertificate::from_der(&der, key_pem) {
            Ok(c) => c,
            Err(e) => {
                let f = Failure::new(
                    step,
                    FailureKind::CertprovMalformed,
                    expected,
                    e.to_string(),
                );
                return fail(f, status, format!("answered 200, but {e}"));
            }
        };
        let ours = cert
            .sip_uri
            .as_deref()
            .is_some_and(|u| lyncd_core::SipAddress::parse(u).is_ok_and(|a| a == ctx.address));
        if !ours {
            let whose = cert
                .sip_uri
                .clone()
                .unwrap_or_else(|| "nobody (no sip: URI)".into());
            let f = Failure::new(
                step,
                FailureKind::CertificateForAnotherUser,
                format!("a certificate for {}", ctx.address.sip_uri()),
                format!(
                    "a certificate issued to {whose}, not {}",
                    ctx.address.sip_uri()
                ),
            );
            return fail(
                f,
                status,
                format!(
                    "answered a certificate issued to {whose}, not to {}",
                    ctx.address
                ),
            );
        }
        let detail = format!(
            "answered 200 with certificate {} for {} (ticket {} accepted); next: the TLS-DSK \
             handshake",
            cert.describe(),
            ctx.address.sip_uri(),
            ticket.assertion_id
        );
        self.session.provide_certificate(now, cert, entropy);
        if let Some(SessionEvent::Failed(e)) = std::iter::from_fn(|| self.session.poll_event())
            .find(|e| matches!(e, SessionEvent::Failed(_)))
        {
            let f = session_failure(step, &e);
            return fail(f, status, format!("{detail}; but {e}"));
        }
        self.pending = self.session.poll_transmit();
        let _ = target;
        self.stage = Stage::Sip;
        proceed(Phase::Sip(Box::new(self)), status, detail)
    }
}

fn quiet_report() -> Report {
    Report {
        ok: true,
        status: None,
        detail: String::new(),
        failure: None,
    }
}

/// A [`SessionError`] as the sign-in's [`Failure`]: the server's own words stay verbatim.
fn session_failure(step: Step, e: &SessionError) -> Failure {
    let (kind, expected) = match e {
        SessionError::Refused { .. } => {
            (FailureKind::SipRefused, "a TLS-DSK 401 or a signed 200 OK")
        }
        SessionError::NoTlsDsk { .. } => (
            FailureKind::NoTlsDsk,
            "WWW-Authenticate: TLS-DSK realm, targetname, version, sts-uri",
        ),
        SessionError::Handshake(_) => {
            (FailureKind::TlsDskHandshake, "a complete TLS-DSK handshake")
        }
        SessionError::Certificate(_) => (
            FailureKind::CertificateUnusable,
            "a user certificate valid for another hour, with its key",
        ),
        SessionError::Unsigned { .. } | SessionError::BadSignature { .. } => (
            FailureKind::SipSignature,
            "a 200 OK whose Authentication-Info rspauth verifies with the server key",
        ),
        SessionError::Timeout(_) | SessionError::Transport(_) => {
            (FailureKind::Unreachable, "an answer from the registrar")
        }
        SessionError::NoStsUri
        | SessionError::BadHandshakeAnswer(_)
        | SessionError::NoExpires
        | SessionError::ChallengeLoop
        | SessionError::UnexpectedStatus { .. } => (
            FailureKind::SipProtocol,
            "answers as [MS-SIPAE] describes them (sip.md §3–§6)",
        ),
    };
    let got = match e {
        SessionError::Refused {
            status,
            reason,
            warning,
            diagnostics,
        } => {
            let mut got = format!("{status} {reason}");
            if let Some(w) = warning {
                got.push_str(&format!(" with Warning \"{w}\""));
            }
            if let Some(d) = diagnostics {
                got.push_str(&format!(", ms-diagnostics: {d}"));
            }
            got
        }
        other => other.to_string(),
    };
    Failure::new(step, kind, expected, got)
}
