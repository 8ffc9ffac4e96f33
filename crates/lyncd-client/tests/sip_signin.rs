//! Steps 7–9 against capture 01 and in memory: our REGISTER has pidgin-sipe's header set and
//! order (exchange 011), our GetAndPublishCert is exchange 016 byte for byte apart from the
//! proof value and its proof verifies with the ticket's proof key, and the whole sign-in runs
//! from DNS to the verified signed 200 OK against the recorded web services, a CertProv stand-in
//! and the real registrar core.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use lyncd_client::sip::{Leg, SessionConfig, SipSession};
use lyncd_client::soap::{self, CertProvRequest};
use lyncd_client::{
    Action, Completion, FailureKind, HttpResponse, Method, Outcome, SignIn, SignInConfig, Step,
    extract_raw, hmac_sha1_sign, psha1,
};
use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use lyncd_pki::CertificateAuthority;
use lyncd_registrar::{Account, Registrar, RegistrarConfig};
use lyncd_sip::Message;
use lyncd_tlsdsk::ServerContext;
use time::Duration;

const CERTPROV_BASE: &str = "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc";
const CERTPROV_PORT_URL: &str =
    "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof_SHA1";
const POOL: &str = "lyncfe.contoso.com";

fn alice() -> SipAddress {
    SipAddress::parse("alice@contoso.com").unwrap()
}

/// Capture 011 as text (the SIP capture files are the raw message).
fn sip_capture(number: &str) -> Message {
    let dir = format!("{}/{CAPTURE}", env!("CARGO_MANIFEST_DIR"));
    let name = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{number}-")) && n.ends_with(".req.txt"))
        .unwrap();
    let text = std::fs::read(format!("{dir}/{name}")).unwrap();
    Message::parse(text.into()).unwrap()
}

#[test]
fn register_has_sipes_header_set_and_order() {
    let theirs = sip_capture("011");
    let epid = theirs.from_addr().unwrap().epid().unwrap().to_string();
    let mut config = SessionConfig::new(alice(), epid.clone());
    config.local = "127.0.0.1:38532".into();
    let mut session = SipSession::new(config, None, &mut SeededEntropy::new(3));
    session.start(START, &mut SeededEntropy::new(4));
    let t = session.poll_transmit().unwrap();
    assert_eq!(t.leg, Leg::Register);
    let ours = Message::parse(t.message.to_bytes()).unwrap();

    let names = |m: &Message| m.headers().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "header set and order");
    assert_eq!(ours.method(), Some("REGISTER"));
    assert_eq!(ours.request_uri(), theirs.request_uri());
    // Same endpoint, same words: identical values where nothing is random or ours.
    for h in [
        "To",
        "Max-Forwards",
        "CSeq",
        "Contact",
        "Supported",
        "Event",
        "Allow-Events",
        "ms-keep-alive",
        "Content-Length",
    ] {
        assert_eq!(ours.header(h), theirs.header(h), "{h}");
    }
    assert!(ours.header("Authorization").is_none());
    assert!(
        ours.header("Expires").is_none(),
        "no Expires unless signing out"
    );
    // Random parts in SIPE's shapes.
    let via = ours.header("Via").unwrap();
    let branch = via
        .strip_prefix("SIP/2.0/tls 127.0.0.1:38532;branch=z9hG4bK")
        .unwrap();
    assert!(
        branch.len() == 20
            && branch
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    let from = ours.from_addr().unwrap();
    assert_eq!(from.uri, "sip:alice@contoso.com");
    assert_eq!(from.epid(), Some(epid.as_str()));
    assert!(
        from.tag()
            .is_some_and(|t| t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit()))
    );
    let call_id = ours.call_id().unwrap();
    assert_eq!(call_id.len(), theirs.call_id().unwrap().len());
    let letters: String = call_id.chars().skip(4).step_by(5).collect();
    let theirs_letters: String = theirs
        .call_id()
        .unwrap()
        .chars()
        .skip(4)
        .step_by(5)
        .collect();
    assert_eq!(letters, theirs_letters);
    assert!(ours.header("User-Agent").unwrap().contains("lyncd/"));
}

/// The SOAP body of capture request `number`.
fn capture_body(number: &str) -> String {
    request(number).text()
}

fn replace_between(text: &str, open: &str, close: &str, with: &str) -> String {
    let a = text.find(open).unwrap() + open.len();
    let b = a + text[a..].find(close).unwrap();
    format!("{}{with}{}", &text[..a], &text[b..])
}

#[test]
fn get_and_publish_cert_is_sipes_and_its_proof_verifies() {
    let theirs = capture_body("016");
    let lifetime = extract_raw(&theirs, "Timestamp", false).unwrap();
    let assertion = extract_raw(&theirs, "Assertion", true).unwrap();
    let assertion_id = "SamlSecurityToken-d0a2aa72-b09a-40f3-a847-9db26c872121";
    let csr_b64: String = extract_raw(&theirs, "BinarySecurityToken", false)
        .unwrap()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let csr_der = STANDARD.decode(csr_b64).unwrap();
    let proof_key = [0x5au8; 32];
    let ours = soap::certprov_request(&CertProvRequest {
        url: CERTPROV_PORT_URL,
        message_id: "7e38557c-df29-5963-b7f9-7bb762333483",
        lifetime,
        assertion,
        assertion_id,
        proof_key: Some(&proof_key),
        device_id: "5ccdb10d-dca1-559e-ad2b-b514060a2da2",
        entity: "alice@contoso.com",
        csr_der: &csr_der,
        request_id: "de259b92-e60e-5b03-9abe-e8c3356d38ce",
    });
    // The digest covers only the Timestamp: identical to SIPE's.
    assert_eq!(
        extract_raw(&ours, "DigestValue", false),
        extract_raw(&theirs, "DigestValue", false)
    );
    // Byte for byte SIPE's request, apart from the HMAC (the proof key is ours).
    let blank = |t: &str| replace_between(t, "<SignatureValue>", "</SignatureValue>", "");
    assert_eq!(blank(&ours), blank(&theirs));

    // Recompute the HMAC-SHA1 over the SignedInfo exactly as sent.
    let signed_info = extract_raw(&ours, "SignedInfo", true).unwrap();
    let value = STANDARD
        .decode(extract_raw(&ours, "SignatureValue", false).unwrap())
        .unwrap();
    assert_eq!(value, hmac_sha1_sign(&proof_key, signed_info.as_bytes()));

    // And the server's verifier (exclusive c14n of SignedInfo, Timestamp digest, key id) agrees.
    let parsed = lyncd_wsxml::certprov::parse_get_and_publish_cert(ours.as_bytes()).unwrap();
    assert_eq!(parsed.entity, "alice@contoso.com");
    assert_eq!(parsed.csr_der, csr_der);
    assert_eq!(
        parsed.device_id.as_deref(),
        Some("{5ccdb10d-dca1-559e-ad2b-b514060a2da2}")
    );
    let at = time::macros::datetime!(2026-11-25 03:00:00 UTC);
    lyncd_wsxml::certprov::verify_certprov_proof(&parsed, &proof_key, at, Duration::minutes(5))
        .unwrap();
    assert!(
        lyncd_wsxml::certprov::verify_certprov_proof(&parsed, &[0u8; 32], at, Duration::minutes(5))
            .is_err(),
        "another key must not verify"
    );

    // A bearer policy sends no Signature at all.
    let bearer = soap::certprov_request(&CertProvRequest {
        proof_key: None,
        url: CERTPROV_PORT_URL,
        message_id: "m",
        lifetime,
        assertion,
        assertion_id,
        device_id: "d",
        entity: "alice@contoso.com",
        csr_der: &csr_der,
        request_id: "r",
    });
    assert!(!bearer.contains("<Signature"));
}

#[test]
fn certprov_mex_and_response_read_like_sipe() {
    let mex = soap::parse_certprov_mex(&response("012").text()).unwrap();
    assert_eq!(mex.location.as_deref(), Some(CERTPROV_PORT_URL));
    assert_eq!(
        mex.issuer.as_deref(),
        Some("https://lyncweb.contoso.com/WebTicket/WebTicketService.svc")
    );
    assert!(mex.proof);
    let der = soap::read_certprov_response(&response("016").text()).unwrap();
    let recorded = std::fs::read(format!(
        "{}/{CAPTURE}/client-cert.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(der, recorded);
}

// ---------------------------------------------------------------------------------------------
// The whole sign-in, in memory

struct Deployment {
    web: FakeServer,
    ca: CertificateAuthority,
    registrar: Registrar,
    account: Account,
    entropy: SeededEntropy,
    /// Client entropy of the last WsFedBearer request (to recompute the proof key).
    last_client_entropy: Vec<u8>,
    certprov_requests: usize,
}

impl Deployment {
    fn new() -> Self {
        let ca =
            CertificateAuthority::generate("lyncd test CA", START - Duration::days(1)).unwrap();
        let server = ca
            .issue_signing_cert(POOL, START - Duration::days(1), Duration::days(30))
            .unwrap();
        let tls =
            ServerContext::new(&server.chain_pem, server.key_pem.expose(), ca.cert_pem()).unwrap();
        let registrar = Registrar::new(RegistrarConfig::new(POOL, CERTPROV_BASE), tls);
        let web = FakeServer::capture().answer(
            Method::Get,
            &format!("{CERTPROV_BASE}/mex"),
            None,
            reply(&response("012")),
        );
        Deployment {
            web,
            ca,
            registrar,
            account: Account::Enabled,
            entropy: SeededEntropy::new(99),
            last_client_entropy: Vec::new(),
            certprov_requests: 0,
        }
    }

    fn perform(&mut self, now: UtcTime, action: &Action) -> Completion {
        match action {
            Action::Sip {
                host,
                port,
                message,
                ..
            } => {
                assert_eq!((host.as_str(), *port), (POOL, 5061));
                if !message.is_empty() {
                    let msg = Message::parse(message.clone().into()).unwrap();
                    self.registrar
                        .handle(now, 1, &msg, self.account, &mut self.entropy);
                }
                match self.registrar.poll_transmit() {
                    Some(t) => Completion::SipResponse(t.message.as_bytes().to_vec()),
                    None => Completion::TransportFailed(lyncd_client::TransportError::Timeout),
                }
            }
            Action::GenerateKey { address, .. } => {
                let (key_pem, csr_der) = lyncd_pki::new_user_key_and_csr(address).unwrap();
                Completion::KeyPair { key_pem, csr_der }
            }
            Action::Http { request, .. } if request.url == CERTPROV_PORT_URL => {
                self.certprov_requests += 1;
                let body = request.body.as_deref().unwrap();
                let parsed = lyncd_wsxml::certprov::parse_get_and_publish_cert(body).unwrap();
                // The proof key: P_SHA1(our client entropy, the server entropy of answer 008).
                let server = STANDARD
                    .decode(extract_raw(&response("008").text(), "BinarySecret", false).unwrap())
                    .unwrap();
                let key = psha1(&self.last_client_entropy, &server, 32);
                lyncd_wsxml::certprov::verify_certprov_proof(
                    &parsed,
                    &key,
                    now,
                    Duration::minutes(5),
                )
                .expect("the proof verifies with the ticket's proof key");
                let user = SipAddress::parse(&parsed.entity).unwrap();
                let cert = self
                    .ca
                    .issue_user_cert(&parsed.csr_der, &user, now, Duration::hours(8))
                    .unwrap();
                let xml = lyncd_wsxml::certprov::render_certprov_response(
                    &cert.der,
                    None,
                    parsed.request_id.as_deref().unwrap_or(""),
                    parsed.message_id.as_deref(),
                );
                Completion::Response(HttpResponse {
                    status: 200,
                    headers: vec![("Content-Type".into(), "text/xml; charset=utf-8".into())],
                    body: xml.into_bytes(),
                })
            }
            Action::Http { request, .. } => {
                if request.url == WSFED_URL {
                    let body = String::from_utf8(request.body.clone().unwrap()).unwrap();
                    let b64 = extract_raw(&body, "BinarySecret", false).unwrap();
                    self.last_client_entropy = STANDARD.decode(b64).unwrap();
                }
                self.web.perform(action)
            }
            other => self.web.perform(other),
        }
    }

    fn run(&mut self, config: SignInConfig) -> (SignIn, Vec<lyncd_client::TraceEvent>) {
        let mut entropy = SeededEntropy::new(5);
        let mut now = START;
        let mut signin = SignIn::new(config, now);
        let mut trace = Vec::new();
        for _ in 0..100 {
            let Some(action) = signin.poll_action(now) else {
                break;
            };
            let completion = self.perform(now, &action);
            now += Duration::milliseconds(10);
            signin.handle(now, action.id(), completion, &mut entropy);
            trace.extend(std::iter::from_fn(|| signin.poll_trace()));
        }
        assert!(signin.outcome().is_some(), "the sign-in must finish");
        (signin, trace)
    }
}

fn sip_config() -> SignInConfig {
    let mut c = config();
    c.sip = true;
    c
}

#[test]
fn whole_sign_in_in_memory() {
    let mut d = Deployment::new();
    let mut config = sip_config();
    config.sip_server_ca = Some(d.ca.cert_pem().to_string());
    let (signin, trace) = d.run(config);
    let steps: Vec<&str> = trace.iter().map(|e| e.step.name()).collect();
    assert_eq!(
        steps,
        [
            "dns",
            "lyncdiscover",
            "autodiscover-challenge",
            "web-ticket-mex",
            "idp-realm",
            "idp-token",
            "web-ticket",
            "autodiscover-user",
            "sip-register",
            "certprov-mex",
            "certprov-idp-token",
            "certprov-web-ticket",
            "certprov-key",
            "certprov",
            "tls-dsk-hello",
            "tls-dsk-finish",
            "sip-register-signed",
            "sip-refresh",
        ]
    );
    assert!(trace.iter().all(|e| e.ok), "{trace:#?}");
    let s = match signin.outcome() {
        Some(Outcome::SignedIn(s)) => s,
        other => panic!("not signed in: {other:?}"),
    };
    assert!(s.refreshed && !s.signed_out && !s.certificate_from_cache);
    assert_eq!(s.expires, 7200);
    assert_eq!(s.targetname, POOL);
    assert!(s.gruu.as_deref().is_some_and(|g| g.ends_with(";gruu")));
    assert_eq!(
        s.certificate.sip_uri.as_deref(),
        Some("sip:alice@contoso.com")
    );
    assert_eq!(d.certprov_requests, 1);
    assert_eq!(d.registrar.bindings("alice@contoso.com").len(), 1);
    let signed = trace
        .iter()
        .find(|e| e.step == Step::SipRegisterSigned)
        .unwrap();
    assert_eq!(signed.status, Some(200));
    assert!(
        signed.detail.contains("rspauth verified"),
        "{}",
        signed.detail
    );
    let finish = trace.iter().find(|e| e.step == Step::TlsDskFinish).unwrap();
    assert!(
        finish.detail.contains("AES"),
        "cipher in the detail: {}",
        finish.detail
    );
    let cert = trace.iter().find(|e| e.step == Step::Certprov).unwrap();
    assert!(cert.detail.contains(&s.certificate.serial_hex));
    // No secret in the trace or the outcome's Debug.
    let key = s.certificate.key_pem.expose().clone();
    let all = format!("{trace:?} {:?}", signin.outcome());
    assert!(!all.contains("PRIVATE KEY") && !all.contains(&key[40..80]));
    assert!(!all.contains("<saml:Assertion"));

    // Again with that certificate cached: no CertProv, sign-out at the end.
    let mut config = sip_config();
    config.certificates = vec![lyncd_client::CachedCertificate {
        targetname: POOL.into(),
        cert_pem: s.certificate.cert_pem.clone(),
        key_pem: s.certificate.key_pem.clone(),
    }];
    config.refresh = false;
    config.sign_out = true;
    let mut d2 = Deployment::new();
    d2.ca = CertificateAuthority::from_pem(d.ca.cert_pem(), d.ca.key_pem().expose()).unwrap();
    d2.registrar = {
        let server = d2
            .ca
            .issue_signing_cert(POOL, START - Duration::days(1), Duration::days(30))
            .unwrap();
        let tls = ServerContext::new(&server.chain_pem, server.key_pem.expose(), d2.ca.cert_pem())
            .unwrap();
        Registrar::new(RegistrarConfig::new(POOL, CERTPROV_BASE), tls)
    };
    let (signin, trace) = d2.run(config);
    let steps: Vec<&str> = trace.iter().skip(8).map(|e| e.step.name()).collect();
    assert_eq!(
        steps,
        [
            "sip-register",
            "tls-dsk-hello",
            "tls-dsk-finish",
            "sip-register-signed",
            "sip-sign-out"
        ]
    );
    let s2 = signin.outcome().and_then(|o| o.signed_in()).unwrap();
    assert!(s2.certificate_from_cache && s2.signed_out && !s2.refreshed);
    assert_eq!(d2.certprov_requests, 0);
    assert!(d2.registrar.bindings("alice@contoso.com").is_empty());
}

#[test]
fn disabled_account_is_refused_in_the_servers_words() {
    let mut d = Deployment::new();
    d.account = Account::Disabled;
    let (signin, trace) = d.run(sip_config());
    let f = signin.outcome().and_then(|o| o.failure()).unwrap();
    assert_eq!(f.step, Step::TlsDskFinish);
    // 404 with ms-diagnostics 4005, decoded into the specific diagnosis.
    assert_eq!(f.kind, FailureKind::UserNotSipEnabled);
    assert!(
        f.got.starts_with("404 Not Found with Warning \""),
        "{}",
        f.got
    );
    assert!(f.got.contains("not enabled"), "{}", f.got);
    assert_eq!(
        f.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
        [4005]
    );
    assert!(f.explanation().contains("not enabled for Lync"));
    assert!(!f.next_check().is_empty());
    assert!(!trace.last().unwrap().ok);
}
