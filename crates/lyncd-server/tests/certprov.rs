//! Certificate Provisioning over real HTTPS, driven the way pidgin-sipe drives it (http.md §8):
//! CertProv MEX, RST2.srf, WsFedBearer with client entropy for the CertProv port, then
//! GetAndPublishCert signed with the proof key. Every refusal leaves the store unchanged.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Clock, Running, ServerConfig};
use lyncd_store::{NewUser, Store};

const PASSWORD: &str = "Corr3ct&Horse<Battery>";
const WST_ISSUE: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue";
const GET_AND_PUBLISH: &str = "http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCert";
const ALICE_ENTROPY: [u8; 32] = [9u8; 32];

/// A clock the test can move forward, to see tokens expire.
#[derive(Default)]
struct TestClock(AtomicI64);

impl TestClock {
    fn advance(&self, by: time::Duration) {
        self.0.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> UtcTime {
        UtcTime::now_utc() + time::Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

struct Lab {
    _dir: tempfile::TempDir,
    running: Option<Running>,
    store: Store,
    clock: Arc<TestClock>,
    http: reqwest::Client,
    base: String,
    ca_der: Vec<u8>,
}

/// What pidgin-sipe keeps from a WsFedBearer answer to sign its CertProv request.
struct Ticket {
    /// RSTR `Lifetime` contents: the signed Timestamp's children.
    lifetime: String,
    assertion: String,
    assertion_id: String,
    proof_key: Vec<u8>,
}

impl Lab {
    async fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        for addr in ["alice@contoso.com", "bob@contoso.com"] {
            let hash = lyncd_store::password::hash_password(PASSWORD, &[7u8; 16]).unwrap();
            store
                .add_user(
                    NewUser {
                        address: SipAddress::parse(addr).unwrap(),
                        password_hash: hash,
                        display_name: None,
                        object_id: format!("oid-{addr}"),
                    },
                    now,
                )
                .await
                .unwrap();
        }
        let keys = ServiceKeys::load_or_create(&store, now, &mut OsEntropy)
            .await
            .unwrap();
        // What `lyncd ca export` prints: the CA kept in the store.
        let ca_der = lyncd_server::keys::load_or_create_ca(&store, now)
            .await
            .unwrap()
            .cert_der()
            .to_vec();
        let ca = reqwest::Certificate::from_pem(keys.ca.cert_pem().as_bytes()).unwrap();
        let mut config = ServerConfig::default();
        config.names.web = "lyncweb.contoso.com".into();
        config.names.pool = "lyncfe.contoso.com".into();
        config.names.idp = "login.contoso.com".into();
        config.listen.https = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.listen.http = None;
        config.listen.sip_tls = None;
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.listen.https.set_port(port);
        let clock = Arc::new(TestClock::default());
        let app = Arc::new(App::new(config, store.clone(), keys, clock.clone()));
        let running = lyncd_server::start(app).await.unwrap();
        let mut http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .redirect(reqwest::redirect::Policy::none());
        for n in ["lyncweb.contoso.com", "login.contoso.com"] {
            http = http.resolve(n, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        }
        Lab {
            _dir: dir,
            base: format!("https://lyncweb.contoso.com:{}", running.https.port()),
            running: Some(running),
            store,
            clock,
            http: http.build().unwrap(),
            ca_der,
        }
    }

    fn port(&self) -> u16 {
        self.running.as_ref().unwrap().https.port()
    }

    fn wsfed(&self) -> String {
        format!("{}/WebTicket/WebTicketService.svc/WsFedBearer", self.base)
    }

    fn certprov(&self) -> String {
        format!("{}/CertProv/CertProvisioningService.svc", self.base)
    }

    fn certprov_port(&self) -> String {
        format!("{}/WebTicket_Proof_SHA1", self.certprov())
    }

    fn user_url(&self) -> String {
        format!(
            "{}/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com",
            self.base
        )
    }

    /// Users, and every certificate recorded for them.
    async fn snapshot(&self) -> String {
        let mut out = String::new();
        for u in self.store.users(None).await.unwrap() {
            let certs = self.store.certificates_for(&u.address).await.unwrap();
            out.push_str(&format!(
                "{}|{}|{:?}|{:?}\n",
                u.address,
                u.enabled,
                u.updated_at,
                certs
                    .iter()
                    .map(|c| c.serial_hex.clone())
                    .collect::<Vec<_>>()
            ));
        }
        out
    }

    async fn post(
        &self,
        url: &str,
        action: &str,
        body: String,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .post(url)
            .header("SOAPAction", format!("\"{action}\""))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// RST2.srf as pidgin-sipe sends it; returns (Lifetime contents, EncryptedData).
    async fn idp_token(&self, user: &str) -> (String, String) {
        let body = format!(
            r#"<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><soap:Header><wsa:To>https://login.contoso.com:443/RST2.srf</wsa:To><wsa:MessageID>uuid:e8d51f0e-685f-588d-ab13-135f27d353d6</wsa:MessageID><wsa:Action>http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue</wsa:Action><wsse:Security><wsse:UsernameToken><wsse:Username>{user}</wsse:Username><wsse:Password>{}</wsse:Password></wsse:UsernameToken></wsse:Security></soap:Header><soap:Body><wst:RequestSecurityToken><wst:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken></soap:Body></soap:Envelope>"#,
            xml_escape(PASSWORD),
            xml_escape(&self.wsfed()),
        );
        let url = format!("https://login.contoso.com:{}/RST2.srf", self.port());
        let (s, _, b) = self
            .post(
                &url,
                "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue",
                body,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        (
            raw(&b, "Lifetime", false).expect(&b),
            raw(&b, "EncryptedData", true).expect(&b),
        )
    }

    /// WsFedBearer as pidgin-sipe sends it for CertProv (capture 01/015's shape), with client
    /// entropy; returns what it keeps from the answer, the proof key derived as it derives it.
    async fn web_ticket(&self, user: &str, applies_to: &str) -> Ticket {
        let (lifetime, enc) = self.idp_token(user).await;
        let body = format!(
            r#"<?xml version="1.0"?>
<soap:Envelope xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:auth="http://schemas.xmlsoap.org/ws/2006/12/authorization" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" ><soap:Header> <wsa:To>{wsfed}</wsa:To> <wsa:MessageID>uuid:bbbcf7ff-09b7-5bc4-b92a-6a63f9c867ee</wsa:MessageID> <wsa:Action>{WST_ISSUE}</wsa:Action> <wsse:Security><wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="timestamp">{lifetime}</wsu:Timestamp>{enc}</wsse:Security></soap:Header> <soap:Body><wst:RequestSecurityToken Context="8ca50061-9276-524f-a9b4-14011a2c5105"> <wst:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</wst:TokenType> <wst:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</wst:RequestType> <wsp:AppliesTo>  <wsa:EndpointReference>   <wsa:Address>{applies}</wsa:Address>  </wsa:EndpointReference> </wsp:AppliesTo> <wst:Claims Dialect="urn:component:Microsoft.Rtc.WebAuthentication.2010:authclaims">  <auth:ClaimType Uri="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri" Optional="false">   <auth:Value>sip:{user}</auth:Value>  </auth:ClaimType> </wst:Claims> <wst:Entropy>  <wst:BinarySecret>{entropy}</wst:BinarySecret> </wst:Entropy> <wst:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</wst:KeyType></wst:RequestSecurityToken></soap:Body></soap:Envelope>"#,
            wsfed = self.wsfed(),
            applies = xml_escape(applies_to),
            entropy = b64(&ALICE_ENTROPY),
        );
        let (s, _, b) = self.post(&self.wsfed(), WST_ISSUE, body).await;
        assert_eq!(s, 200, "{b}");
        let assertion = raw(&b, "Assertion", true).expect(&b);
        let server_entropy = base64::engine::general_purpose::STANDARD
            .decode(raw(&b, "BinarySecret", false).expect(&b))
            .unwrap();
        let id_at = assertion.find("AssertionID=\"").unwrap() + "AssertionID=\"".len();
        let id_len = assertion[id_at..].find('"').unwrap();
        Ticket {
            lifetime: raw(&b, "Lifetime", false).expect(&b),
            assertion_id: assertion[id_at..id_at + id_len].to_string(),
            assertion,
            proof_key: lyncd_wsxml::psha1(&ALICE_ENTROPY, &server_entropy, 32),
        }
    }

    async fn get_and_publish(&self, body: String) -> (u16, reqwest::header::HeaderMap, String) {
        self.post(&self.certprov_port(), GET_AND_PUBLISH, body)
            .await
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// pidgin-sipe's raw extraction (http.md §0.2).
fn raw(xml: &str, tag: &str, include_tag: bool) -> Option<String> {
    lyncd_wsxml::xml::extract_raw(xml, tag, include_tag).map(str::to_string)
}

/// The CSR as 76-column base64 lines after a CRLF, as pidgin-sipe writes it.
fn sipe_base64(der: &[u8]) -> String {
    let text = b64(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("\r\n{}", lines.join("\r\n"))
}

/// GetAndPublishCert exactly in pidgin-sipe's shape (capture 01/016): the Timestamp built from
/// the RSTR Lifetime, the assertion as cut out, SignedInfo in canonical form with the SHA-1
/// digest of the Timestamp, HMAC-SHA1 over it with `key`, KeyIdentifier = AssertionID.
/// `signature: false` leaves the Signature out (bearer use).
fn get_and_publish_body(
    certprov_port: &str,
    t: &Ticket,
    key: &[u8],
    entity: &str,
    csr_der: &[u8],
    signature: bool,
) -> String {
    let timestamp = format!(
        "<wsu:Timestamp xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\" wsu:Id=\"timestamp\">{}</wsu:Timestamp>",
        t.lifetime
    );
    let (signed_info, signature_value) =
        lyncd_wsxml::sign_certprov_proof(&timestamp, "timestamp", key);
    let sig = if signature {
        format!(
            "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"> {signed_info} <SignatureValue>{signature_value}</SignatureValue> <KeyInfo>  <wsse:SecurityTokenReference wsse:TokenType=\"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1\">   <wsse:KeyIdentifier ValueType=\"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID\">{}</wsse:KeyIdentifier>  </wsse:SecurityTokenReference> </KeyInfo></Signature>",
            t.assertion_id
        )
    } else {
        String::new()
    };
    format!(
        r#"<?xml version="1.0"?>
<soap:Envelope xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:auth="http://schemas.xmlsoap.org/ws/2006/12/authorization" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" ><soap:Header> <wsa:To>{to}</wsa:To> <wsa:ReplyTo>  <wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address> </wsa:ReplyTo> <wsa:MessageID>uuid:7e38557c-df29-5963-b7f9-7bb762333483</wsa:MessageID> <wsa:Action>{GET_AND_PUBLISH}</wsa:Action> <wsse:Security>{timestamp}{assertion}{sig}</wsse:Security></soap:Header> <soap:Body><GetAndPublishCert xmlns="http://schemas.microsoft.com/OCS/AuthWebServices/" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512/" xmlns:wstep="http://schemas.microsoft.com/windows/pki/2009/01/enrollment" DeviceId="{{5ccdb10d-dca1-559e-ad2b-b514060a2da2}}" Entity="{entity}"> <wst:RequestSecurityToken>  <wst:TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</wst:TokenType>  <wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>  <wsse:BinarySecurityToken   ValueType="http://schemas.microsoft.com/OCS/AuthWebServices.xsd#PKCS10"   EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary"  >{csr}</wsse:BinarySecurityToken>  <wstep:RequestID>de259b92-e60e-5b03-9abe-e8c3356d38ce</wstep:RequestID> </wst:RequestSecurityToken></GetAndPublishCert></soap:Body></soap:Envelope>"#,
        to = certprov_port,
        assertion = t.assertion,
        csr = sipe_base64(csr_der),
    )
}

fn alice() -> SipAddress {
    SipAddress::parse("alice@contoso.com").unwrap()
}

fn csr() -> Vec<u8> {
    lyncd_pki::new_user_key_and_csr(&alice()).unwrap().1
}

/// A refusal: HTTP 500, a SOAP fault, an `X-Ms-diagnostics` code, no certificate.
fn assert_refused(status: u16, headers: &reqwest::header::HeaderMap, body: &str, code: &str) {
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("Fault") && !body.contains("BinarySecurityToken"),
        "{body}"
    );
    let diag = headers["x-ms-diagnostics"].to_str().unwrap();
    assert!(diag.starts_with(code), "expected {code}, got {diag}");
}

#[tokio::test]
async fn mex_points_at_the_port_and_the_web_ticket_service() {
    let lab = Lab::start().await;
    for url in [
        format!("{}/mex", lab.certprov()),
        // paths are case-insensitive
        format!("{}/CERTPROV/certprovisioningservice.SVC/MEX", lab.base),
        format!("{}?wsdl", lab.certprov()),
    ] {
        let r = lab.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let body = r.text().await.unwrap();
        assert!(body.contains("CertProvisioningServiceWebTicketProof_SHA1_policy"));
        assert!(
            body.contains(&format!("location=\"{}\"", lab.certprov_port())),
            "{body}"
        );
        assert!(body.contains(&format!(
            "<wsa10:Address>https://lyncweb.contoso.com:{}/WebTicket/WebTicketService.svc</wsa10:Address>",
            lab.port()
        )));
    }
    lab.stop().await;
}

#[tokio::test]
async fn sipe_shaped_request_gets_a_recorded_certificate_for_the_user() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let csr = csr();
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr,
            true,
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/xml"));
    assert!(b.contains("<wstep:RequestID>de259b92-e60e-5b03-9abe-e8c3356d38ce</wstep:RequestID>"));
    assert!(b.contains("<a:RelatesTo>uuid:7e38557c-df29-5963-b7f9-7bb762333483</a:RelatesTo>"));
    // Found the way pidgin-sipe finds it, and trusted by the deployment's CA.
    let der = lyncd_wsxml::parse_certprov_response(b.as_bytes()).unwrap();
    let now = UtcTime::now_utc();
    let info = lyncd_pki::verify_user_cert(&lab.ca_der, &der, now).unwrap();
    assert_eq!(info.sip_uri.as_deref(), Some("sip:alice@contoso.com"));
    let hours = (info.not_after - now).whole_minutes();
    assert!((7 * 60 + 55..=8 * 60).contains(&hours), "{hours} minutes");
    assert!(
        lyncd_pki::verify_user_cert(&lab.ca_der, &der, now + time::Duration::hours(9)).is_err()
    );

    // Recorded, with the device it was issued to.
    let rec = lab
        .store
        .certificate(&info.serial_hex)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.address, alice());
    assert_eq!(
        rec.device_id.as_deref(),
        Some("{5ccdb10d-dca1-559e-ad2b-b514060a2da2}")
    );
    assert_eq!(rec.not_after, info.not_after);
    assert_eq!(
        lab.store.certificates_for(&alice()).await.unwrap(),
        vec![rec]
    );
    assert_ne!(lab.snapshot().await, before);

    // The same ticket may be used again (pidgin-sipe caches it): a second certificate.
    let (s, _, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "sip:ALICE@contoso.com",
            &csr,
            true,
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(lab.store.certificates_for(&alice()).await.unwrap().len(), 2);
    lab.stop().await;
}

#[tokio::test]
async fn csr_whose_key_did_not_sign_it_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    // Two RSA-2048 requests of identical layout: A's body with B's signature.
    let a = csr();
    let b_csr = csr();
    assert_eq!(a.len(), b_csr.len());
    let mut spliced = a.clone();
    let n = spliced.len();
    spliced[n - 256..].copy_from_slice(&b_csr[n - 256..]);
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &spliced,
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28025");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn another_users_ticket_is_refused() {
    let lab = Lab::start().await;
    let bobs = lab
        .web_ticket("bob@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &bobs,
            &bobs.proof_key,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28024");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn wrong_proof_hmac_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    let mut wrong = t.proof_key.clone();
    wrong[31] ^= 0x80;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &wrong,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28023");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn missing_signature_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr(),
            false,
        ))
        .await;
    assert_refused(s, &h, &b, "28023");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn ticket_for_another_audience_is_refused() {
    let lab = Lab::start().await;
    // A genuine ticket with a proof key, but for the Autodiscover user resource.
    let t = lab.web_ticket("alice@contoso.com", &lab.user_url()).await;
    let before = lab.snapshot().await;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28021");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn expired_ticket_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    lab.clock.advance(time::Duration::hours(9));
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28022");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn malformed_xml_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    let before = lab.snapshot().await;
    let good = get_and_publish_body(
        &lab.certprov_port(),
        &t,
        &t.proof_key,
        "alice@contoso.com",
        &csr(),
        true,
    );
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol;</soap:Body></soap:Envelope>"#;
    for body in [
        String::new(),
        "<soap:Envelope><unclosed>".to_string(),
        bomb.to_string(),
        good[..good.len() / 2].to_string(),
        good.replace("Entity=\"alice@contoso.com\"", ""),
    ] {
        let (s, h, b) = lab.get_and_publish(body).await;
        assert_refused(s, &h, &b, "28035");
    }
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn disabled_user_is_refused() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    lab.store
        .set_enabled(&alice(), false, UtcTime::now_utc())
        .await
        .unwrap();
    let before = lab.snapshot().await;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28000");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn user_not_enabled_for_sip_gets_no_certificate() {
    let lab = Lab::start().await;
    let t = lab
        .web_ticket("alice@contoso.com", &lab.certprov_port())
        .await;
    lab.store
        .set_user_flags(
            &alice(),
            lyncd_store::UserFlags {
                sip_enabled: Some(false),
                ..Default::default()
            },
            UtcTime::now_utc(),
        )
        .await
        .unwrap();
    let before = lab.snapshot().await;
    let (s, h, b) = lab
        .get_and_publish(get_and_publish_body(
            &lab.certprov_port(),
            &t,
            &t.proof_key,
            "alice@contoso.com",
            &csr(),
            true,
        ))
        .await;
    assert_refused(s, &h, &b, "28000");
    let diag =
        lyncd_diag::msdiag::parse("X-Ms-diagnostics", h["x-ms-diagnostics"].to_str().unwrap())
            .unwrap();
    assert_eq!(diag.reason.as_deref(), Some("User is not SIP enabled."));
    assert!(b.contains("not enabled for SIP"), "{b}");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}
