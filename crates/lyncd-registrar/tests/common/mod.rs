//! A SIPE-shaped user agent and a registrar with a virtual clock, shared by the tests and the
//! bench (sip.md §2.1, §5.2, §6).
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use lyncd_diag::msdiag;
use lyncd_pki::CertificateAuthority;
use lyncd_registrar::{Account, Event, PeerNetwork, Refusal, Registrar, RegistrarConfig};
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::sign::{self, SigParams};
use lyncd_sip::{Message, MessageBuilder, epid_to_instance};
use lyncd_tlsdsk::{ClientContext, ServerContext, SigningKeys};
use time::Duration;
use time::macros::datetime;

pub const POOL: &str = "lyncfe.contoso.com";
pub const STS: &str = "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc";
pub const T0: UtcTime = datetime!(2026-11-25 08:00 UTC);

pub struct World {
    pub ca: CertificateAuthority,
    pub registrar: Registrar,
    pub entropy: SeededEntropy,
    pub now: UtcTime,
}

impl World {
    pub fn new() -> World {
        let ca = CertificateAuthority::generate("lyncd test CA", T0 - Duration::days(1)).unwrap();
        World::with_ca(ca)
    }

    pub fn with_ca(ca: CertificateAuthority) -> World {
        let pool = ca
            .issue_signing_cert(POOL, T0 - Duration::hours(1), Duration::days(30))
            .unwrap();
        let tls =
            ServerContext::new(&pool.chain_pem, pool.key_pem.expose(), ca.cert_pem()).unwrap();
        let mut config = RegistrarConfig::new(POOL, STS);
        config.registration_expires = 600;
        config.max_registration_expires = 600;
        World {
            registrar: Registrar::new(config, tls),
            ca,
            entropy: SeededEntropy::new(7),
            now: T0,
        }
    }

    /// A user certificate from this world's CA, as Certificate Provisioning issues it.
    pub fn user_cert(&self, user: &str, lifetime: Duration) -> (String, String) {
        let address = SipAddress::parse(user).unwrap();
        let (key, csr) = lyncd_pki::new_user_key_and_csr(&address).unwrap();
        let cert = self
            .ca
            .issue_user_cert(&csr, &address, self.now, lifetime)
            .unwrap();
        (cert.pem, key.expose().clone())
    }

    pub fn send(&mut self, conn: u64, msg: &Message, account: Account) -> Message {
        self.registrar
            .handle(self.now, conn, msg, account, &mut self.entropy);
        let t = self
            .registrar
            .poll_transmit()
            .expect("the registrar answers every request");
        assert_eq!(t.conn, conn, "answered on the connection it came from");
        assert!(
            self.registrar.poll_transmit().is_none(),
            "one answer per request"
        );
        // What goes on the wire must parse again.
        let answer = Message::parse(Bytes::copy_from_slice(t.message.as_bytes())).unwrap();
        // Every answer carries the registrar's clock, which clients read skew from.
        assert_eq!(
            answer.header("Date"),
            Some(http_date(self.now).as_str()),
            "{answer:?}"
        );
        answer
    }

    /// Like [`World::send`], but the connection comes from `network`.
    pub fn send_from(
        &mut self,
        network: PeerNetwork,
        conn: u64,
        msg: &Message,
        account: Account,
    ) -> Message {
        self.registrar.connection_opened(conn, network);
        self.send(conn, msg, account)
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.registrar.poll_event()).collect()
    }

    pub fn refusal(&mut self) -> Refusal {
        self.events()
            .into_iter()
            .find_map(|e| match e {
                Event::Refused { reason, .. } => Some(reason),
                _ => None,
            })
            .expect("a Refused event")
    }
}

/// `Wed, 25 Nov 2026 08:00:00 GMT` (RFC 7231 IMF-fixdate), the form of SIP's `Date`.
pub fn http_date(t: UtcTime) -> String {
    t.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap()
}

/// The one diagnostic header of a refusal, checked for what every refusal must carry: a code
/// in lyncd_diag's table, its reason text, and this pool as the source.
pub fn diagnostic(r: &Message) -> msdiag::Diagnostic {
    let all = msdiag::from_headers(
        ["ms-diagnostics", "ms-diagnostics-public"]
            .into_iter()
            .flat_map(|name| r.header_all(name).map(move |v| (name, v))),
    );
    assert_eq!(all.len(), 1, "exactly one diagnostic header: {r:?}");
    let d = all.into_iter().next().unwrap();
    let known = msdiag::lookup(d.code).expect("a code in the table");
    assert_eq!(d.reason.as_deref(), Some(known.reason));
    assert_eq!(d.source.as_deref(), Some(POOL));
    assert_eq!(
        d.header == msdiag::HeaderKind::MsDiagnosticsPublic,
        known.public,
        "public codes go in ms-diagnostics-public: {r:?}"
    );
    d
}

/// A user agent that speaks like pidgin-sipe.
pub struct Ua {
    pub user: String,
    pub epid: String,
    pub call_id: String,
    pub cseq: u32,
    pub conn: u64,
    pub cert: (String, String),
    pub account: Account,
    pub keys: Option<SigningKeys>,
    pub opaque: Option<String>,
    pub cnum: u64,
}

impl Ua {
    pub fn new(w: &World, user: &str, conn: u64) -> Ua {
        Ua {
            user: user.to_string(),
            epid: "c97532c1946f".to_string(),
            call_id: format!("705Ag16DCa41EFi6F0Bm07E8tAC50b71DF{conn:06}"),
            cseq: 0,
            conn,
            cert: w.user_cert(user, Duration::hours(8)),
            account: Account::Enabled,
            keys: None,
            opaque: None,
            cnum: 0,
        }
    }

    /// Another endpoint of the same user on connection `conn`, with the same certificate.
    pub fn new_with_cert(template: &Ua, conn: u64) -> Ua {
        Ua {
            user: template.user.clone(),
            epid: template.epid.clone(),
            call_id: format!("705Ag16DCa41EFi6F0Bm07E8tAC50b71DF{conn:06}"),
            cseq: 0,
            conn,
            cert: template.cert.clone(),
            account: Account::Enabled,
            keys: None,
            opaque: None,
            cnum: 0,
        }
    }

    pub fn request(&mut self, method: &str, uri: &str, extra: &[(&str, &str)]) -> MessageBuilder {
        self.cseq += 1;
        let instance = epid_to_instance(&self.epid);
        let mut b = MessageBuilder::request(method, uri)
            .header(
                "Via",
                &format!("SIP/2.0/tls 127.0.0.1:38532;branch=z9hG4bK{:020X}", self.cseq),
            )
            .header(
                "From",
                &format!("<sip:{}>;tag={};epid={}", self.user, 5634129340u64 + u64::from(self.cseq), self.epid),
            )
            .header("To", &format!("<sip:{}>", self.user))
            .header("Max-Forwards", "70")
            .header("CSeq", &format!("{} {method}", self.cseq))
            .header("User-Agent", "Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)")
            .header("Call-ID", &self.call_id)
            .header(
                "Contact",
                &format!(
                    "<sip:127.0.0.1:38532;transport=tls;ms-opaque=d3470f2e1d>;methods=\"INVITE, MESSAGE\";proxy=replace;+sip.instance=\"<urn:uuid:{instance}>\""
                ),
            );
        for (n, v) in extra {
            b = b.header(n, v);
        }
        b
    }

    pub fn register(&mut self, extra: &[(&str, &str)]) -> Message {
        let domain = self.user.split('@').nth(1).unwrap().to_string();
        let mut headers = vec![
            (
                "Supported",
                "gruu-10, adhoclist, msrtc-event-categories, com.microsoft.msrtc.presence",
            ),
            ("Event", "registration"),
            ("Allow-Events", "presence"),
            ("ms-keep-alive", "UAC;hop-hop=yes"),
        ];
        headers.extend_from_slice(extra);
        self.request("REGISTER", &format!("sip:{domain}"), &headers)
            .build()
    }

    pub fn handshake_auth(&self, data: &[u8]) -> String {
        let mut p = AuthParams::new("TLS-DSK").quoted("qop", "auth");
        if let Some(o) = &self.opaque {
            p = p.quoted("opaque", o);
        }
        p.quoted("realm", "SIP Communications Service")
            .quoted("targetname", POOL)
            .quoted("gssapi-data", &B64.encode(data))
            .token("version", "4")
            .render()
    }

    /// Signs `msg` as SIPE does after the handshake (sip.md §6.1, §7.2).
    pub fn sign(&mut self, msg: Message) -> Message {
        self.cnum += 1;
        let crand = format!("{:08x}", 0x1a2b3c00 + self.cnum);
        let cnum = self.cnum.to_string();
        let params = SigParams {
            scheme: "TLS-DSK",
            rand: &crand,
            num: &cnum,
            realm: "SIP Communications Service",
            targetname: POOL,
            version: 4,
        };
        let buffer = sign::buffer(&msg, &params).unwrap();
        let response = self
            .keys
            .as_ref()
            .expect("signed in")
            .sign_client(buffer.as_bytes())
            .to_uppercase();
        let value = AuthParams::new("TLS-DSK")
            .quoted("qop", "auth")
            .quoted("opaque", self.opaque.as_deref().unwrap())
            .quoted("realm", "SIP Communications Service")
            .quoted("targetname", POOL)
            .quoted("crand", &crand)
            .quoted("cnum", &cnum)
            .quoted("response", &response)
            .render();
        msg.with_header("Authorization", &value)
    }

    /// Checks the `Authentication-Info` of a response against the server key (sip.md §7.2).
    pub fn verify(&self, msg: &Message) -> bool {
        let Some(info) = msg.header("Authentication-Info") else {
            return false;
        };
        let auth = AuthHeader::parse(info).unwrap();
        let params = SigParams::from_auth(&auth, 4).unwrap();
        let buffer = sign::buffer(msg, &params).unwrap();
        self.keys
            .as_ref()
            .unwrap()
            .verify_server(buffer.as_bytes(), auth.get("rspauth").unwrap())
    }

    pub fn gssapi(msg: &Message) -> Vec<u8> {
        let h = msg.header("WWW-Authenticate").expect("continuation 401");
        let a = AuthHeader::parse(h).unwrap();
        B64.decode(a.get("gssapi-data").unwrap()).unwrap()
    }

    /// REGISTER → 401 → C1/S1 → C2/S2 → signed REGISTER → 200 OK.
    pub fn sign_in(&mut self, w: &mut World) -> Message {
        let challenge = w.send(self.conn, &self.register(&[]), self.account);
        assert_eq!(challenge.status(), Some(401));
        let client = ClientContext::new(&self.cert.0, &self.cert.1, Some(w.ca.cert_pem())).unwrap();
        let (hello, c1) = client.connect(POOL, w.now).unwrap();
        let c1_msg = self.register(&[]);
        let c1_msg = c1_msg.with_header("Authorization", &self.handshake_auth(&c1));
        let s1 = w.send(self.conn, &c1_msg, self.account);
        assert_eq!(s1.status(), Some(401), "S1 rides in a 401: {s1:?}");
        let opaque = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap())
            .unwrap()
            .get("opaque")
            .unwrap()
            .to_string();
        self.opaque = Some(opaque);
        let (finish, c2) = hello.step(&Ua::gssapi(&s1)).unwrap();
        let c2_msg = self
            .register(&[])
            .with_header("Authorization", &self.handshake_auth(&c2));
        let s2 = w.send(self.conn, &c2_msg, self.account);
        assert_eq!(
            s2.status(),
            Some(401),
            "S2 must be a 401 (sip.md §5.2): {s2:?}"
        );
        let done = finish.finish(&Ua::gssapi(&s2)).unwrap();
        self.keys = Some(done.keys);
        let c3 = self.register(&[]);
        let c3 = self.sign(c3);
        w.send(self.conn, &c3, self.account)
    }
}
