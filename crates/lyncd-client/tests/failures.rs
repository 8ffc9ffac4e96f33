//! Each way a deployment can break the web half of a sign-in ends with the right step, the
//! right kind, and words that say what came back.

mod common;

use common::*;
use lyncd_client::{Failure, FailureKind, Method, Outcome, Step, TraceEvent, TransportError};

fn failed(server: &mut FakeServer) -> (Failure, Vec<TraceEvent>) {
    let (signin, trace) = server.run(config(), 11);
    let Some(Outcome::Failed(f)) = signin.outcome() else {
        panic!("expected a failure, got {:?}", signin.outcome());
    };
    let last = trace.last().expect("a trace");
    assert!(!last.ok);
    assert_eq!(
        last.failure.as_ref(),
        Some(f),
        "the last event carries the failure"
    );
    // The last event ends the sign-in; its step is the failure's step except when discovery
    // ends on a name that does not resolve after an earlier candidate answered unusably.
    assert!(last.step == f.step || (last.step == Step::Dns && f.step == Step::Lyncdiscover));
    assert!(!f.explanation().is_empty() && !f.next_check().is_empty());
    assert!(signin.poll_action_is_none());
    (f.clone(), trace)
}

trait Finished {
    fn poll_action_is_none(&self) -> bool;
}

impl Finished for lyncd_client::SignIn {
    fn poll_action_is_none(&self) -> bool {
        self.is_finished() && self.current_step().is_none()
    }
}

fn xml(body: &str) -> Reply {
    http(200, &[("Content-Type", XML_TYPE)], body)
}

#[test]
fn nothing_resolves() {
    let (f, trace) = failed(&mut FakeServer::capture().resolves(&[]));
    assert_eq!(
        (f.step, &f.kind),
        (Step::Dns, &FailureKind::NoDiscoveryAnswer)
    );
    assert_eq!(trace.len(), 2);
    assert!(
        f.got
            .contains("lyncdiscoverinternal.contoso.com does not resolve (NXDOMAIN")
    );
    assert!(f.got.contains("lyncdiscover.contoso.com does not resolve"));
    assert!(trace[0].detail.contains("not fatal"));
    assert!(f.next_check().contains("DNS"));
}

#[test]
fn resolves_but_nothing_answers() {
    let (f, trace) = failed(
        &mut FakeServer::capture()
            .resolves(&["lyncdiscover.contoso.com"])
            .answer(
                Method::Get,
                EXTERNAL_URL,
                None,
                Reply::Transport(TransportError::Timeout),
            ),
    );
    // The most telling transport failure names the diagnosis: silence, not refusal.
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::TimedOut)
    );
    assert_eq!(trace.len(), 4, "{trace:#?}");
    assert!(
        f.got.contains("no answer before the time limit"),
        "{}",
        f.got
    );
}

#[test]
fn json_instead_of_autodiscover_xml() {
    let json = r#"{"_links":{"self":{"href":"https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root"}}}"#;
    let j = http(200, &[("Content-Type", "application/json")], json);
    let (f, _) = failed(
        &mut FakeServer::capture()
            .resolves(&["lyncdiscover.contoso.com"])
            .answer(Method::Get, EXTERNAL_URL, None, j.clone())
            .answer(Method::Get, EXTERNAL_HTTP_URL, None, j),
    );
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::NotAutodiscoverContent)
    );
    assert!(f.got.contains("application/json"), "{}", f.got);
    assert!(f.next_check().contains("Accept"));
}

#[test]
fn explicit_server_with_wrong_content_type() {
    let mut server = FakeServer::capture().answer(
        Method::Get,
        "https://web.contoso.com/?sipuri=alice@contoso.com",
        None,
        http(200, &[("Content-Type", "text/html")], "<html/>"),
    );
    let (signin, trace) = server.run(
        config_with(lyncd_client::Discovery::Server {
            host: "web.contoso.com".into(),
            port: 443,
        }),
        1,
    );
    let f = signin.outcome().and_then(Outcome::failure).unwrap();
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::NotAutodiscoverContent)
    );
    assert_eq!(trace.len(), 1);
}

#[test]
fn root_without_user_link() {
    let root = r#"<AutodiscoverResponse><Root><Link token="Self" href="https://x.contoso.com/a"/></Root></AutodiscoverResponse>"#;
    let (f, trace) = failed(
        &mut FakeServer::capture()
            .answer(Method::Get, INTERNAL_URL, None, xml(root))
            .answer(Method::Get, INTERNAL_HTTP_URL, None, xml(root)),
    );
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::NoUserLink)
    );
    assert!(f.got.contains("Self"));
    // https and http of lyncdiscoverinternal answered, lyncdiscover did not resolve.
    let steps: Vec<Step> = trace.iter().map(|e| e.step).collect();
    assert_eq!(
        steps,
        [Step::Dns, Step::Lyncdiscover, Step::Lyncdiscover, Step::Dns]
    );
    assert!(
        f.got.contains("lyncdiscover.contoso.com does not resolve"),
        "{}",
        f.got
    );
}

#[test]
fn challenge_without_webticket_url() {
    let (f, trace) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        USER_URL,
        Some(false),
        http(
            401,
            &[
                ("WWW-Authenticate", "Bearer trusted_issuers=\"\""),
                ("WWW-Authenticate", "MsRtcOAuth href=\"https://x/oauth\""),
            ],
            "",
        ),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::AutodiscoverChallenge, &FailureKind::NoWebTicketUrl)
    );
    assert!(f.got.contains("Bearer, MsRtcOAuth"), "{}", f.got);
    assert_eq!(trace.last().unwrap().status, Some(401));
}

#[test]
fn mex_without_wsfedbearer() {
    let mex = response("005").text().replace(
        "name=\"WsFedBearer\"",
        "name=\"WebTicketServiceWinNegotiate\"",
    );
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        &format!("{WEBTICKET_URL}/mex"),
        None,
        http(200, &[("Content-Type", "text/xml")], &mex),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::WebTicketMex, &FailureKind::MexWithoutWsFedBearer)
    );
    assert!(f.got.contains("WebTicketServiceWinNegotiate"));
}

#[test]
fn mex_that_is_not_a_wsdl() {
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        &format!("{WEBTICKET_URL}/mex"),
        None,
        http(
            200,
            &[("Content-Type", "text/html")],
            "<html><body>proxy</body></html>",
        ),
    ));
    assert_eq!(f.step, Step::WebTicketMex);
    assert!(matches!(f.kind, FailureKind::Malformed(_)), "{:?}", f.kind);
}

#[test]
fn federated_realm() {
    let realm = r#"<?xml version="1.0" encoding="utf-8"?><RealmInfo Success="true"><NameSpaceType>Federated</NameSpaceType><STSAuthURL>https://sts.contoso.com/adfs/services/trust/2005/usernamemixed</STSAuthURL></RealmInfo>"#;
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        REALM_URL,
        None,
        http(200, &[("Content-Type", "text/xml")], realm),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::IdpRealm, &FailureKind::FederatedRealm)
    );
    assert!(f.got.contains("sts.contoso.com"));
}

#[test]
fn unreadable_realm_is_not_fatal() {
    let mut server =
        FakeServer::capture().answer(Method::Get, REALM_URL, None, http(500, &[], "oops"));
    let (signin, trace) = server.run(config(), 1);
    assert!(matches!(signin.outcome(), Some(Outcome::Discovered(_))));
    let realm = trace.iter().find(|e| e.step == Step::IdpRealm).unwrap();
    assert!(!realm.ok && realm.failure.is_none());
    assert!(realm.detail.contains("not fatal"), "{}", realm.detail);
}

const BAD_PASSWORD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault" xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust">
  <S:Body><S:Fault>
    <S:Code><S:Value>S:Sender</S:Value><S:Subcode><S:Value>wst:FailedAuthentication</S:Value></S:Subcode></S:Code>
    <S:Reason><S:Text xml:lang="en-US">Authentication Failure</S:Text></S:Reason>
    <S:Detail><psf:error><psf:value>0x80048821</psf:value><psf:internalerror><psf:code>0x80041012</psf:code><psf:text>Invalid user name or password.</psf:text></psf:internalerror></psf:error></S:Detail>
  </S:Fault></S:Body>
</S:Envelope>"#;

#[test]
fn bad_password() {
    let (f, trace) = failed(&mut FakeServer::capture().answer(
        Method::Post,
        RST2_URL,
        None,
        http(
            200,
            &[("Content-Type", "application/soap+xml")],
            BAD_PASSWORD,
        ),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::IdpToken, &FailureKind::BadCredentials)
    );
    assert!(
        f.got.contains("Invalid user name or password."),
        "{}",
        f.got
    );
    assert!(
        trace
            .last()
            .unwrap()
            .detail
            .contains("Invalid user name or password.")
    );
    assert!(f.next_check().contains("password"));
}

#[test]
fn other_idp_fault() {
    let fault = BAD_PASSWORD
        .replace("wst:FailedAuthentication", "wst:RequestFailed")
        .replace("Invalid user name or password.", "The account is disabled.");
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Post,
        RST2_URL,
        None,
        http(200, &[], &fault),
    ));
    assert_eq!((f.step, &f.kind), (Step::IdpToken, &FailureKind::IdpFault));
    assert!(f.got.contains("The account is disabled."));
}

#[test]
fn idp_answer_without_encrypted_data() {
    let text = response("007").text();
    let start = text.find("<EncryptedData").unwrap();
    let end = text.find("</EncryptedData>").unwrap() + "</EncryptedData>".len();
    let stripped = format!("{}{}", &text[..start], &text[end..]);
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Post,
        RST2_URL,
        None,
        http(200, &[], &stripped),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::IdpToken, &FailureKind::IdpAnswerMalformed)
    );
    assert!(f.got.contains("EncryptedData"));
}

#[test]
fn web_ticket_service_500() {
    let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">wsse:InvalidSecurityToken</faultcode><faultstring>The token issuer is not trusted.</faultstring></s:Fault></s:Body></s:Envelope>"#;
    let (f, trace) = failed(&mut FakeServer::capture().answer(
        Method::Post,
        WSFED_URL,
        None,
        http(
            500,
            &[
                ("Content-Type", "text/xml"),
                (
                    "X-Ms-diagnostics",
                    "28020;source=\"fe\";reason=\"No valid security token.\"",
                ),
            ],
            fault,
        ),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::WebTicket, &FailureKind::WebTicketRejected)
    );
    assert!(
        f.got.contains("The token issuer is not trusted."),
        "{}",
        f.got
    );
    assert_eq!(trace.last().unwrap().status, Some(500));
}

#[test]
fn web_ticket_answer_without_assertion() {
    let text = response("008")
        .text()
        .replace("saml:Assertion", "saml:Statement");
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Post,
        WSFED_URL,
        None,
        http(200, &[], &text),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::WebTicket, &FailureKind::WebTicketMalformed)
    );
}

#[test]
fn autodiscover_refuses_the_ticket() {
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        USER_URL,
        Some(true),
        reply(&response("003")),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::AutodiscoverUser, &FailureKind::TicketRefused)
    );
}

#[test]
fn user_not_found() {
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        USER_URL,
        Some(true),
        http(404, &[("Content-Length", "0")], ""),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::AutodiscoverUser, &FailureKind::UserNotFound)
    );
}

#[test]
fn user_document_without_sip_access() {
    // AccessLocation Internal, but only an external entry: nothing a client may use.
    let doc = r#"<AutodiscoverResponse AccessLocation="Internal"><User>
        <SipClientExternalAccess fqdn="lyncfe.contoso.com" port="5061"/>
        <SipClientInternalAccess fqdn="lyncfe.contoso.com" port="0"/>
        <Link token="Internal/Autodiscover" href="https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root"/>
    </User></AutodiscoverResponse>"#;
    let (f, _) =
        failed(&mut FakeServer::capture().answer(Method::Get, USER_URL, Some(true), xml(doc)));
    assert_eq!(
        (f.step, &f.kind),
        (Step::AutodiscoverUser, &FailureKind::NoSipPool)
    );
    assert!(f.got.contains("AccessLocation Internal"), "{}", f.got);
}

fn redirect_to(href: &str) -> Reply {
    xml(&format!(
        r#"<AutodiscoverResponse><Root><Link token="Redirect" href="{href}"/></Root></AutodiscoverResponse>"#
    ))
}

#[test]
fn redirect_loop() {
    let a = "https://a.contoso.com/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com";
    let b = "https://B.contoso.com/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com";
    let (f, trace) = failed(
        &mut FakeServer::capture()
            .answer(Method::Get, INTERNAL_URL, None, redirect_to(a))
            .answer(Method::Get, a, None, redirect_to(b))
            // Host case differs: still the same server.
            .answer(
                Method::Get,
                b,
                None,
                redirect_to(&a.replace("a.contoso", "A.contoso")),
            ),
    );
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::RedirectLoop)
    );
    assert_eq!(trace.len(), 4, "{trace:#?}");
}

#[test]
fn too_many_redirects() {
    let hop = |i: usize| format!("https://hop{i}.contoso.com/root");
    let mut server =
        FakeServer::capture().answer(Method::Get, INTERNAL_URL, None, redirect_to(&hop(0)));
    for i in 0..10 {
        server = server.answer(Method::Get, &hop(i), None, redirect_to(&hop(i + 1)));
    }
    let (f, trace) = failed(&mut server);
    assert_eq!(
        (f.step, &f.kind),
        (Step::Lyncdiscover, &FailureKind::TooManyRedirects)
    );
    // DNS, lyncdiscover, then the five hops followed; the fifth names a sixth.
    assert_eq!(trace.len(), 2 + 5);
}

#[test]
fn unreachable_web_ticket_service() {
    let (f, _) = failed(&mut FakeServer::capture().answer(
        Method::Get,
        &format!("{WEBTICKET_URL}/mex"),
        None,
        Reply::Transport(TransportError::Tls("certificate not trusted".into())),
    ));
    assert_eq!(
        (f.step, &f.kind),
        (Step::WebTicketMex, &FailureKind::Unreachable)
    );
    assert!(f.got.contains("certificate not trusted"));
}

#[test]
fn failures_serialise_with_explanations() {
    let (f, _) = failed(&mut FakeServer::capture().resolves(&[]));
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v["kind"], "no-discovery-answer");
    assert_eq!(v["step"], "dns");
    assert!(v["explanation"].as_str().unwrap().contains("Expected"));
    assert!(v["next_check"].as_str().unwrap().contains("lyncdiscover"));
    assert_eq!(f.to_string(), f.explanation());
}
