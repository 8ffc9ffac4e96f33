//! The web half of sign-in over real HTTPS: what pidgin-sipe needs from each answer (http.md
//! §13), and every kind of bad input refused with a clear error and nothing stored changed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Clock, Running, ServerConfig};
use lyncd_store::{NewUser, Store};

const SIPE_ACCEPT: &str = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";
const PASSWORD: &str = "Corr3ct&Horse<Battery>";

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
    plain: String,
    keys_store: Store,
}

impl Lab {
    async fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        for (addr, enabled) in [("alice@contoso.com", true), ("bob@contoso.com", false)] {
            let hash = lyncd_store::password::hash_password(PASSWORD, &[7u8; 16]).unwrap();
            let address = SipAddress::parse(addr).unwrap();
            store
                .add_user(
                    NewUser {
                        address: address.clone(),
                        password_hash: hash,
                        display_name: None,
                        object_id: format!("oid-{addr}"),
                    },
                    now,
                )
                .await
                .unwrap();
            if !enabled {
                store.set_enabled(&address, false, now).await.unwrap();
            }
        }
        let keys = ServiceKeys::load_or_create(&store, now, &mut OsEntropy)
            .await
            .unwrap();
        let ca = reqwest::Certificate::from_pem(keys.ca.cert_pem().as_bytes()).unwrap();
        let mut config = ServerConfig::default();
        config.names.web = "lyncweb.contoso.com".into();
        config.names.pool = "lyncfe.contoso.com".into();
        config.names.idp = "login.contoso.com".into();
        config.listen.https = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.listen.http = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        config.listen.sip_tls = None;
        // The published URLs must carry the port the OS picks: bind once to learn a free one.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.listen.https.set_port(port);
        let clock = Arc::new(TestClock::default());
        let keys_store = Store::open_dir(dir.path()).await.unwrap();
        let app = Arc::new(App::new(config, store.clone(), keys, clock.clone()));
        let running = lyncd_server::start(app).await.unwrap();
        let mut http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .redirect(reqwest::redirect::Policy::none());
        for n in [
            "lyncdiscover.contoso.com",
            "lyncweb.contoso.com",
            "login.contoso.com",
            "lyncdiscover.fabrikam.com",
        ] {
            http = http.resolve(n, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        }
        let plain = format!(
            "http://lyncdiscover.contoso.com:{}",
            running.http.unwrap().port()
        );
        Lab {
            _dir: dir,
            base: format!("https://lyncweb.contoso.com:{}", running.https.port()),
            plain,
            running: Some(running),
            store,
            clock,
            http: http.build().unwrap(),
            keys_store,
        }
    }

    fn url(&self, host: &str, path: &str) -> String {
        let port = self.running.as_ref().unwrap().https.port();
        format!("https://{host}:{port}{path}")
    }

    fn user_url(&self) -> String {
        format!(
            "{}/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com",
            self.base
        )
    }

    fn wsfed(&self) -> String {
        format!("{}/WebTicket/WebTicketService.svc/WsFedBearer", self.base)
    }

    /// Everything the store holds, to prove a refused request changed nothing.
    async fn snapshot(&self) -> String {
        let users = self.store.users(None).await.unwrap();
        let tenants = self.store.tenants().await.unwrap();
        let mut keys = vec![
            self.keys_store
                .key("ca")
                .await
                .unwrap()
                .map(|k| k.material.expose().clone()),
        ];
        for g in self.keys_store.key_generations().await.unwrap() {
            keys.extend(g.keys.iter().map(|k| Some(k.material.expose().clone())));
        }
        format!(
            "{:?}|{:?}|{:?}",
            users
                .iter()
                .map(|u| (u.address.to_string(), u.enabled, u.updated_at))
                .collect::<Vec<_>>(),
            tenants.iter().map(|t| t.domain.clone()).collect::<Vec<_>>(),
            keys
        )
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

    /// RST2.srf exactly as pidgin-sipe sends it (capture 007's shape).
    async fn rst2(&self, user: &str, password: &str, applies_to: &str) -> (u16, String) {
        let body = format!(
            r#"<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><soap:Header><wsa:To>https://login.contoso.com:443/RST2.srf</wsa:To><wsa:MessageID>uuid:e8d51f0e-685f-588d-ab13-135f27d353d6</wsa:MessageID><wsa:Action>http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue</wsa:Action><wsse:Security><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password>{}</wsse:Password></wsse:UsernameToken></wsse:Security></soap:Header><soap:Body><wst:RequestSecurityToken><wst:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken></soap:Body></soap:Envelope>"#,
            xml_escape(user),
            xml_escape(password),
            xml_escape(applies_to)
        );
        let (s, _, b) = self
            .post(
                &self.url("login.contoso.com", "/RST2.srf"),
                "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue",
                body,
            )
            .await;
        (s, b)
    }

    /// WsFedBearer request as pidgin-sipe builds it from an RST2 answer (capture 008's shape).
    fn wsfed_body(
        &self,
        lifetime: &str,
        encrypted: &str,
        applies_to: &str,
        entropy: &[u8],
    ) -> String {
        format!(
            r#"<?xml version="1.0"?>
<soap:Envelope xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:auth="http://schemas.xmlsoap.org/ws/2006/12/authorization" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" ><soap:Header> <wsa:To>{wsfed}</wsa:To> <wsa:MessageID>uuid:bbbcf7ff-09b7-5bc4-b92a-6a63f9c867ee</wsa:MessageID> <wsa:Action>http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue</wsa:Action> <wsse:Security><wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="timestamp">{lifetime}</wsu:Timestamp>{encrypted}</wsse:Security></soap:Header> <soap:Body><wst:RequestSecurityToken Context="8ca50061-9276-524f-a9b4-14011a2c5105"> <wst:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</wst:TokenType> <wst:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</wst:RequestType> <wsp:AppliesTo>  <wsa:EndpointReference>   <wsa:Address>{applies_to}</wsa:Address>  </wsa:EndpointReference> </wsp:AppliesTo> <wst:Claims Dialect="urn:component:Microsoft.Rtc.WebAuthentication.2010:authclaims">  <auth:ClaimType Uri="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri" Optional="false">   <auth:Value>sip:alice@contoso.com</auth:Value>  </auth:ClaimType> </wst:Claims> <wst:Entropy>  <wst:BinarySecret>{}</wst:BinarySecret> </wst:Entropy> <wst:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</wst:KeyType></wst:RequestSecurityToken></soap:Body></soap:Envelope>"#,
            base64::engine::general_purpose::STANDARD.encode(entropy),
            wsfed = self.wsfed(),
        )
    }

    /// Org ID token for alice: (Lifetime contents, EncryptedData), cut out as pidgin-sipe does.
    async fn idp_token(&self) -> (String, String) {
        let (status, body) = self
            .rst2("alice@contoso.com", PASSWORD, &self.wsfed())
            .await;
        assert_eq!(status, 200, "{body}");
        (
            raw(&body, "Lifetime", false).expect(&body),
            raw(&body, "EncryptedData", true).expect(&body),
        )
    }

    async fn web_ticket(&self) -> String {
        let (lifetime, enc) = self.idp_token().await;
        let (status, _, body) = self
            .post(
                &self.wsfed(),
                "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue",
                self.wsfed_body(&lifetime, &enc, &xml_escape(&self.user_url()), &[9u8; 32]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        raw(&body, "Assertion", true).expect(&body)
    }

    async fn autodiscover_with(
        &self,
        assertion: &[u8],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(self.user_url())
            .header("Accept", SIPE_ACCEPT)
            .header(
                "X-MS-WebTicket",
                format!(
                    "opaque={}",
                    base64::engine::general_purpose::STANDARD.encode(assertion)
                ),
            )
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, h, r.text().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// pidgin-sipe's raw extraction (http.md §0.2): `<Tag` … first `</Tag>`, else the first `:Tag`,
/// back to its `<`, and the matching `</prefix:Tag>`.
fn raw(xml: &str, tag: &str, include_tag: bool) -> Option<String> {
    let (start, close) = if let Some(s) = xml.find(&format!("<{tag}")) {
        (s, format!("</{tag}>"))
    } else {
        let colon = xml.find(&format!(":{tag}"))?;
        let lt = xml[..colon].rfind('<')?;
        (lt, format!("</{}:{tag}>", &xml[lt + 1..colon]))
    };
    let end = start + xml[start..].find(&close)?;
    if include_tag {
        Some(xml[start..end + close.len()].to_string())
    } else {
        let open_end = start + xml[start..].find('>')? + 1;
        Some(xml[open_end..end].to_string())
    }
}

#[tokio::test]
async fn discovery_answers_what_sipe_reads() {
    let lab = Lab::start().await;
    let r = lab
        .http
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .header("Accept", SIPE_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.microsoft.rtc.autodiscover+xml")
    );
    assert!(r.headers().contains_key("content-length"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "<Link token=\"User\" href=\"{}\"/>",
            lab.user_url()
        )),
        "{body}"
    );

    // plain http: a Redirect to the https root (§13 item 6, MS-OCDISCWS 3.1.5.2)
    let r = lab
        .http
        .get(format!("{}/?sipuri=alice@contoso.com", lab.plain))
        .header("Accept", SIPE_ACCEPT)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("token=\"Redirect\""), "{body}");
    assert!(body.contains("https://lyncweb.contoso.com"), "{body}");

    // JSON by default, pointing at the OAuth user resource
    let v: serde_json::Value = lab
        .http
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["_links"]["user"]["href"]
            .as_str()
            .unwrap()
            .contains("/root/oauth/user")
    );

    // a domain this deployment does not serve: 404, so the client tries its next method
    let r = lab
        .http
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=x@fabrikam.com"))
        .header("Accept", SIPE_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    lab.stop().await;
}

#[tokio::test]
async fn challenge_and_mex_point_the_way() {
    let lab = Lab::start().await;
    let r = lab
        .http
        .get(lab.user_url())
        .header("Accept", SIPE_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let wt = format!("{}/WebTicket/WebTicketService.svc", lab.base);
    assert_eq!(r.headers()["x-ms-webticketurl"], wt.as_str());
    for v in r.headers().get_all("www-authenticate") {
        let v = v.to_str().unwrap().to_ascii_lowercase();
        assert!(
            !v.starts_with("basic") && !v.starts_with("ntlm") && !v.starts_with("negotiate"),
            "{v}"
        );
    }
    assert!(
        r.headers()
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("MsRtcOAuth href=\""))
    );

    let mex = lab
        .http
        .get(format!("{wt}/mex"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&mex).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "definitions");
    let service = doc
        .root_element()
        .children()
        .find(|n| n.tag_name().name() == "service")
        .unwrap();
    let port = service
        .children()
        .find(|n| n.attribute("name") == Some("WsFedBearer"))
        .expect("WsFedBearer port");
    let address = port
        .children()
        .find(|n| n.tag_name().name() == "address")
        .unwrap();
    assert_eq!(address.attribute("location"), Some(lab.wsfed().as_str()));
    assert!(!mex.contains("WebTicketServiceWinNegotiate"));
    lab.stop().await;
}

#[tokio::test]
async fn whole_web_sign_in_with_sipe_shaped_requests() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let realm = lab
        .http
        .get(lab.url(
            "login.contoso.com",
            "/getuserrealm.srf?login=alice@contoso.com&xml=1",
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!realm.contains("STSAuthURL"), "{realm}");

    let ticket = lab.web_ticket().await;
    let (status, headers, body) = lab.autodiscover_with(ticket.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.microsoft.rtc.autodiscover+xml")
    );
    let pool = lyncd_discover::Document::from_xml(&body)
        .unwrap()
        .sip_endpoints();
    assert_eq!(pool[0].fqdn, "lyncfe.contoso.com");
    assert_eq!(pool[0].port, 5061);
    assert_eq!(lab.snapshot().await, before, "a sign-in writes nothing");
    lab.stop().await;
}

#[tokio::test]
async fn oauth_password_grant_gives_a_bearer_token_for_the_user_resource() {
    let lab = Lab::start().await;
    let url = format!("{}/WebTicket/oauthtoken", lab.base);
    let v: serde_json::Value = lab
        .http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice@contoso.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["access_token"].as_str().unwrap();
    assert!(token.starts_with("cwt="));
    assert_eq!(v["token_type"], "Bearer");
    let r = lab
        .http
        .get(format!(
            "{}/Autodiscover/AutodiscoverService.svc/root/oauth/user?originalDomain=contoso.com",
            lab.base
        ))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["_links"]["applications"]["href"].is_string());

    let r = lab
        .http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice@contoso.com"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-ms-diagnostics"));
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let r = lab
        .http
        .post(&url)
        .form(&[("grant_type", "urn:microsoft.rtc:windows")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    lab.stop().await;
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_get_no_token() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let (s1, wrong) = lab.rst2("alice@contoso.com", "wrong", &lab.wsfed()).await;
    let (s2, unknown) = lab.rst2("nobody@contoso.com", "wrong", &lab.wsfed()).await;
    for (s, b) in [(s1, &wrong), (s2, &unknown)] {
        assert_eq!(s, 200, "faults travel with 200 so pidgin-sipe shows them");
        assert!(b.contains("Fault") && !b.contains("EncryptedData"), "{b}");
        assert!(
            raw(b, "text", false).is_some_and(|t| t.contains("Invalid user name or password")),
            "{b}"
        );
    }
    assert_eq!(
        wrong, unknown,
        "an unknown user must be indistinguishable from a wrong password"
    );
    let (_, disabled) = lab.rst2("bob@contoso.com", PASSWORD, &lab.wsfed()).await;
    assert!(
        disabled.contains("Fault") && !disabled.contains("EncryptedData"),
        "{disabled}"
    );
    assert_ne!(
        disabled, wrong,
        "a disabled account is told so once the password is right"
    );
    let (_, other) = lab
        .rst2(
            "alice@contoso.com",
            PASSWORD,
            "https://evil.example/WsFedBearer",
        )
        .await;
    assert!(
        other.contains("Fault") && !other.contains("EncryptedData"),
        "{other}"
    );
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn forged_foreign_and_expired_tokens_are_refused() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let (lifetime, enc) = lab.idp_token().await;
    let action = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue";
    let user_url = xml_escape(&lab.user_url());

    // tampered ciphertext
    let cipher = raw(&enc, "CipherValue", false).unwrap();
    let last = enc.rfind(&cipher).unwrap();
    let mut flipped = cipher.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "{}{}{}",
        &enc[..last],
        String::from_utf8(flipped).unwrap(),
        &enc[last + cipher.len()..]
    );
    let (s, h, b) = lab
        .post(
            &lab.wsfed(),
            action,
            lab.wsfed_body(&lifetime, &tampered, &user_url, &[1; 32]),
        )
        .await;
    assert_eq!(s, 500, "{b}");
    assert!(h.contains_key("x-ms-diagnostics"));
    assert!(b.contains("Fault") && !b.contains("Assertion"), "{b}");

    // a ticket for a service that is not ours
    let (s, _, b) = lab
        .post(
            &lab.wsfed(),
            action,
            lab.wsfed_body(&lifetime, &enc, "https://evil.example/x", &[1; 32]),
        )
        .await;
    assert_eq!(s, 500, "{b}");

    // an IdP token minted for another audience, correctly signed and encrypted
    let keys = ServiceKeys::load_or_create(&lab.keys_store, UtcTime::now_utc(), &mut OsEntropy)
        .await
        .unwrap();
    let foreign = lyncd_wsxml::idp::issue_idp_token(
        &lyncd_wsxml::idp::IdpTokenParams {
            issuer: format!(
                "https://login.contoso.com:{}/",
                lab.running.as_ref().unwrap().https.port()
            ),
            audience: "https://elsewhere.example/WsFedBearer".into(),
            upn: "alice@contoso.com".into(),
            object_id: "oid".into(),
            lifetime: time::Duration::hours(1),
        },
        &keys.signing(UtcTime::now_utc()).idp_signer,
        &keys.signing(UtcTime::now_utc()).rp_encryption,
        UtcTime::now_utc(),
        &mut OsEntropy,
    )
    .unwrap();
    let (s, _, b) = lab
        .post(
            &lab.wsfed(),
            action,
            lab.wsfed_body(&lifetime, &foreign.encrypted_data, &user_url, &[1; 32]),
        )
        .await;
    assert_eq!(s, 500, "{b}");

    // a web ticket that was good, presented after it expired (the clock moves 9 hours)
    let ticket = lab.web_ticket().await;
    assert_eq!(lab.autodiscover_with(ticket.as_bytes()).await.0, 200);
    lab.clock.advance(time::Duration::hours(9));
    let (s, h, _) = lab.autodiscover_with(ticket.as_bytes()).await;
    assert_eq!(s, 401);
    assert!(
        h["x-ms-diagnostics"].to_str().unwrap().starts_with("28022"),
        "{h:?}"
    );
    // … and the IdP token too
    let (s, _, b) = lab
        .post(
            &lab.wsfed(),
            action,
            lab.wsfed_body(&lifetime, &enc, &user_url, &[1; 32]),
        )
        .await;
    assert_eq!(s, 500, "{b}");
    lab.clock.advance(time::Duration::hours(-9));

    // a forged ticket: the signed assertion with another user's name in it
    let forged = ticket.replace("alice@contoso.com", "bob@contoso.com");
    assert_eq!(lab.autodiscover_with(forged.as_bytes()).await.0, 401);
    // signature wrapping: a second, unsigned assertion around the signed one
    let wrapped = format!(
        "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\" AssertionID=\"_evil\"><saml:AttributeStatement><saml:Subject><saml:NameIdentifier>sip:bob@contoso.com</saml:NameIdentifier></saml:Subject></saml:AttributeStatement>{ticket}</saml:Assertion>"
    );
    assert_eq!(lab.autodiscover_with(wrapped.as_bytes()).await.0, 401);
    // garbage where the ticket should be
    let r = lab
        .http
        .get(lab.user_url())
        .header("X-MS-WebTicket", "opaque=***not base64***")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn malformed_oversized_and_entity_laden_xml_is_refused() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let rst2 = lab.url("login.contoso.com", "/RST2.srf");
    let action = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue";
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol2;</soap:Body></soap:Envelope>"#;
    for body in [
        "<soap:Envelope><unclosed>".to_string(),
        bomb.to_string(),
        String::new(),
    ] {
        let (s, _, b) = lab.post(&rst2, action, body).await;
        assert_eq!(s, 200);
        assert!(b.contains("Fault") && !b.contains("EncryptedData"), "{b}");
    }
    let (s, _, b) = lab.post(&lab.wsfed(), "x", bomb.to_string()).await;
    assert_eq!(s, 500);
    assert!(b.contains("Fault"), "{b}");
    let huge = format!("<a>{}</a>", "x".repeat(70 * 1024));
    let (s, _, _) = lab.post(&rst2, action, huge.clone()).await;
    assert_eq!(s, 413);
    let (s, _, _) = lab.post(&lab.wsfed(), action, huge).await;
    assert_eq!(s, 413);
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}
