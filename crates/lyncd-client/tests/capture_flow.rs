//! Golden test against capture 01: the requests the core emits are pidgin-sipe's requests
//! (modulo random values), and the recorded answers lead to the recorded SIP pool.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use lyncd_client::{
    Action, Discovery, HttpRequest, Method, Outcome, SipEndpoint, Step, extract_raw, psha1,
};
use time::macros::datetime;

/// Headers the shell adds (or that carry nothing the core decides).
const SHELL_HEADERS: &[&str] = &["host", "user-agent", "content-length"];

fn same_url(ours: &str, recorded: &str) {
    // `https://login.microsoftonline.com:443/RST2.srf` is what pidgin-sipe requests; the
    // recorded `Host` has no port. Normalising drops the default port on both sides.
    let a = url::Url::parse(ours).unwrap();
    let b = url::Url::parse(recorded).unwrap();
    assert_eq!(a.as_str(), b.as_str(), "URL");
}

/// Method, URL and every header the core decides must match the recording.
fn assert_matches(ours: &HttpRequest, recorded: &Recorded) {
    assert_eq!(
        ours.method.as_str(),
        recorded.method,
        "method of {}",
        ours.url
    );
    same_url(&ours.url, &recorded.url);
    let mut theirs: Vec<(String, String)> = recorded
        .headers
        .iter()
        .filter(|(n, _)| !SHELL_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let mut mine: Vec<(String, String)> = ours
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    theirs.sort();
    mine.sort();
    assert_eq!(mine, theirs, "headers of {} {}", ours.method, ours.url);
}

fn message_id(body: &str) -> &str {
    extract_raw(body, "MessageID", false).expect("a MessageID")
}

#[test]
fn replays_capture_01_and_emits_sipes_requests() {
    let mut server = FakeServer::capture();
    let (signin, trace) = server.run(config(), 1);

    // --- the actions, in order -----------------------------------------------------------
    assert!(matches!(
        &server.actions[0],
        Action::Resolve { host, .. } if host == "lyncdiscoverinternal.contoso.com"
    ));
    let reqs = server.requests();
    // pidgin-sipe probes http and https in parallel, so the capture holds each Autodiscover
    // request twice (001/002, 003/004, 009/010). Our core asks https first and needs http only
    // when https fails, so it emits one of each pair.
    let recorded = ["002", "003", "005", "006", "007", "008", "009"];
    assert_eq!(reqs.len(), recorded.len(), "{reqs:#?}");
    for (a, b) in [("001", "002"), ("004", "003"), ("010", "009")] {
        let (x, y) = (request(a), request(b));
        assert_eq!(x.headers, y.headers, "{a}/{b}: duplicate requests differ");
        assert_eq!(
            x.url.split_once("://").unwrap().1,
            y.url.split_once("://").unwrap().1
        );
    }
    for (ours, n) in reqs.iter().zip(recorded) {
        assert_matches(ours, &request(n));
    }

    // --- RST2 (007): byte for byte, but for the random MessageID ---------------------------
    let ours = body_text(reqs[4]);
    let theirs = request("007").text();
    let expected = theirs.replace(message_id(&theirs), message_id(&ours));
    assert_eq!(ours, expected, "RST2 body");
    assert!(message_id(&ours).starts_with("uuid:"));
    assert_eq!(
        &message_id(&ours)[5 + 14..5 + 15],
        "4",
        "a v4-shaped MessageID"
    );

    // --- WsFedBearer (008): byte for byte, but for MessageID and client entropy --------------
    let ours = body_text(reqs[5]);
    let theirs = request("008").text();
    let secret = |b: &str| extract_raw(b, "BinarySecret", false).unwrap().to_string();
    let expected = theirs
        .replace(message_id(&theirs), message_id(&ours))
        .replace(&secret(&theirs), &secret(&ours));
    assert_eq!(ours, expected, "web ticket request body");
    // The parts that matter, checked on their own for clearer failures:
    let security = |b: &str| extract_raw(b, "Security", false).unwrap().to_string();
    assert_eq!(security(&ours), security(&theirs), "wsse:Security contents");
    let applies = |b: &str| extract_raw(b, "AppliesTo", true).unwrap().to_string();
    assert_eq!(applies(&ours), applies(&theirs));
    assert!(applies(&ours).contains(USER_URL));
    let claims = |b: &str| extract_raw(b, "Claims", true).unwrap().to_string();
    assert_eq!(claims(&ours), claims(&theirs));
    let client_entropy = STANDARD.decode(secret(&ours)).unwrap();
    assert_eq!(client_entropy.len(), 32);

    // --- the ticket presented to Autodiscover (009) -----------------------------------------
    let assertion = extract_raw(&response("008").text(), "Assertion", true)
        .unwrap()
        .to_string();
    let header = reqs[6].header("X-MS-WebTicket").unwrap();
    assert_eq!(
        header,
        format!("opaque={}", STANDARD.encode(assertion.as_bytes()))
    );
    assert_eq!(Some(header), request("009").header("X-MS-WebTicket"));

    // --- the outcome -------------------------------------------------------------------------
    let Some(Outcome::Discovered(d)) = signin.outcome() else {
        panic!("expected Discovered, got {:?}", signin.outcome());
    };
    assert_eq!(
        d.pool,
        [SipEndpoint {
            fqdn: "lyncfe.contoso.com".into(),
            port: 5061
        }]
    );
    assert_eq!(d.user_url, USER_URL);
    assert_eq!(d.webticket_url, WEBTICKET_URL);
    assert_eq!(d.idp_url, RST2_URL);
    assert_eq!(d.web_ticket.assertion.expose(), &assertion);
    assert_eq!(
        d.web_ticket.assertion_id,
        "SamlSecurityToken-7520646a-b35f-4897-b3c9-bebee7aeb584"
    );
    assert_eq!(d.web_ticket.expires, datetime!(2026-11-25 10:52:39 UTC));
    let server_entropy = STANDARD
        .decode("xfbzD3vGSz7GtbpEpdi6slbDS5WZa0XbyRGYJE8wM+8=")
        .unwrap();
    assert_eq!(
        d.web_ticket.proof_key.expose(),
        &psha1(&client_entropy, &server_entropy, 32)
    );

    // --- the trace: one event per step, in order ---------------------------------------------
    let steps: Vec<Step> = trace.iter().map(|e| e.step).collect();
    assert_eq!(
        steps,
        [
            Step::Dns,
            Step::Lyncdiscover,
            Step::AutodiscoverChallenge,
            Step::WebTicketMex,
            Step::IdpRealm,
            Step::IdpToken,
            Step::WebTicket,
            Step::AutodiscoverUser,
        ]
    );
    assert!(
        trace.iter().all(|e| e.ok && e.failure.is_none()),
        "{trace:#?}"
    );
    assert_eq!(trace[0].sent, "A lyncdiscoverinternal.contoso.com");
    assert_eq!(trace[1].sent, format!("GET {INTERNAL_URL}"));
    assert_eq!(trace[1].status, Some(200));
    assert_eq!(trace[2].status, Some(401));
    assert!(
        trace[2].detail.contains(WEBTICKET_URL),
        "{}",
        trace[2].detail
    );
    assert!(
        trace[3].detail.contains("login.microsoftonline.com"),
        "IdP fallback is said"
    );
    assert!(trace[7].detail.contains("lyncfe.contoso.com:5061"));
    for e in &trace {
        assert_eq!(e.elapsed, time::Duration::milliseconds(10));
        assert!(e.started >= START);
    }
    assert!(trace.windows(2).all(|w| w[0].started < w[1].started));
    // The trace serialises with kebab-case step names.
    let json = serde_json::to_value(&trace[2]).unwrap();
    assert_eq!(json["step"], "autodiscover-challenge");
    assert_eq!(json["elapsed_ms"], 10.0);
}

#[test]
fn explicit_server_skips_dns() {
    let mut server = FakeServer::capture().resolves(&[]).answer(
        Method::Get,
        "https://lyncweb.contoso.com:4443/?sipuri=alice@contoso.com",
        None,
        reply(&response("002")),
    );
    let (signin, trace) = server.run(
        config_with(Discovery::Server {
            host: "lyncweb.contoso.com".into(),
            port: 4443,
        }),
        2,
    );
    assert!(matches!(signin.outcome(), Some(Outcome::Discovered(_))));
    assert!(
        server
            .actions
            .iter()
            .all(|a| matches!(a, Action::Http { .. }))
    );
    assert_eq!(trace[0].step, Step::Lyncdiscover);
    assert_eq!(trace.len(), 7);
}

#[test]
fn https_failure_falls_back_to_http_and_unresolved_names_are_skipped() {
    // lyncdiscoverinternal does not resolve; lyncdiscover refuses https but answers http.
    let mut server = FakeServer::capture()
        .resolves(&["lyncdiscover.contoso.com"])
        .answer(
            Method::Get,
            EXTERNAL_HTTP_URL,
            None,
            reply(&response("001")),
        );
    let (signin, trace) = server.run(config(), 3);
    assert!(matches!(signin.outcome(), Some(Outcome::Discovered(_))));
    let steps: Vec<(Step, bool)> = trace.iter().take(4).map(|e| (e.step, e.ok)).collect();
    assert_eq!(
        steps,
        [
            (Step::Dns, false),
            (Step::Dns, true),
            (Step::Lyncdiscover, false),
            (Step::Lyncdiscover, true),
        ]
    );
    assert!(trace[0].detail.contains("not fatal"), "{}", trace[0].detail);
    assert!(trace[2].detail.contains("not fatal"), "{}", trace[2].detail);
    assert_eq!(trace[3].sent, format!("GET {EXTERNAL_HTTP_URL}"));
}

#[test]
fn idp_address_comes_from_the_wsfedbearer_policy_when_published() {
    let mex = r##"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702" xmlns:wsa10="http://www.w3.org/2005/08/addressing" xmlns:tns="http://tempuri.org/">
  <wsp:Policy wsu:Id="WsFedBearer_policy"><wsp:ExactlyOne><wsp:All><sp:SignedSupportingTokens><wsp:Policy>
    <sp:IssuedToken><sp:Issuer><wsa10:Address>https://login.contoso.com/RST2.srf</wsa10:Address></sp:Issuer></sp:IssuedToken>
  </wsp:Policy></sp:SignedSupportingTokens></wsp:All></wsp:ExactlyOne></wsp:Policy>
  <wsdl:binding name="WsFedBearer" type="tns:IWebTicketService"><wsp:PolicyReference URI="#WsFedBearer_policy"/></wsdl:binding>
  <wsdl:service name="WebTicketService">
    <wsdl:port name="WsFedBearer" binding="tns:WsFedBearer"><soap:address location="https://lyncweb.contoso.com/WebTicket/WebTicketService.svc/WsFedBearer"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>"##;
    let mut server = FakeServer::capture()
        .answer(
            Method::Get,
            &format!("{WEBTICKET_URL}/mex"),
            None,
            http(200, &[("Content-Type", "text/xml")], mex),
        )
        .answer(
            Method::Get,
            "https://login.contoso.com/getuserrealm.srf?login=alice@contoso.com&xml=1",
            None,
            reply(&response("006")),
        )
        .answer(
            Method::Post,
            "https://login.contoso.com/RST2.srf",
            None,
            reply(&response("007")),
        );
    let (signin, trace) = server.run(config(), 4);
    let d = signin
        .outcome()
        .and_then(Outcome::discovered)
        .expect("discovered");
    assert_eq!(d.idp_url, "https://login.contoso.com/RST2.srf");
    let rst2 = server.requests()[4];
    assert_eq!(rst2.url, "https://login.contoso.com/RST2.srf");
    assert!(body_text(rst2).contains("<wsa:To>https://login.contoso.com/RST2.srf</wsa:To>"));
    assert!(
        trace[3]
            .detail
            .contains("policy names the identity provider")
    );
}

#[test]
fn login_overrides_the_user_name_and_is_escaped() {
    let mut cfg = config();
    cfg.login = Some("CONTOSO\\a&b".into());
    let mut server = FakeServer::capture().answer(
        Method::Get,
        "https://login.microsoftonline.com/getuserrealm.srf?login=CONTOSO%5Ca%26b&xml=1",
        None,
        reply(&response("006")),
    );
    let (signin, _) = server.run(cfg, 5);
    assert!(matches!(signin.outcome(), Some(Outcome::Discovered(_))));
    let body = body_text(server.requests()[4]);
    assert!(body.contains("<wsse:Username>CONTOSO\\a&amp;b</wsse:Username>"));
}

#[test]
fn user_homed_elsewhere_is_followed_through_a_second_ticket() {
    let other_root = "https://pool2.contoso.com/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com";
    let other_user = "https://pool2.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com";
    let redirect_user = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><AutodiscoverResponse><User><Link token="Redirect" href="{other_root}"/></User></AutodiscoverResponse>"#
    );
    let root = format!(
        r#"<AutodiscoverResponse><Root><Link token="User" href="{other_user}"/></Root></AutodiscoverResponse>"#
    );
    let pool = r#"<AutodiscoverResponse><User><SipClientExternalAccess fqdn="sip2.contoso.com" port="443"/></User></AutodiscoverResponse>"#;
    let wt2 = "https://pool2.contoso.com/WebTicket/WebTicketService.svc";
    let mex2 = response("005").text().replace("lyncweb.", "pool2.");
    let mut server = FakeServer::capture()
        .answer(
            Method::Get,
            USER_URL,
            Some(true),
            http(200, &[("Content-Type", XML_TYPE)], &redirect_user),
        )
        .answer(
            Method::Get,
            other_root,
            None,
            http(200, &[("Content-Type", XML_TYPE)], &root),
        )
        .answer(
            Method::Get,
            other_user,
            Some(false),
            http(401, &[("X-MS-WebTicketURL", wt2)], ""),
        )
        .answer(
            Method::Get,
            &format!("{wt2}/mex"),
            None,
            http(200, &[("Content-Type", "text/xml")], &mex2),
        )
        .answer(
            Method::Post,
            &format!("{wt2}/WsFedBearer"),
            None,
            reply(&response("008")),
        )
        .answer(
            Method::Get,
            other_user,
            Some(true),
            http(200, &[("Content-Type", XML_TYPE)], pool),
        );
    let (signin, trace) = server.run(config(), 6);
    let d = signin
        .outcome()
        .and_then(Outcome::discovered)
        .expect("discovered");
    assert_eq!(d.user_url, other_user);
    assert_eq!(d.pool[0].fqdn, "sip2.contoso.com");
    assert_eq!(trace.len(), 8 + 7);
    assert_eq!(trace[8].step, Step::Lyncdiscover);
    // The second web ticket request applies to the new user URL.
    let wt_req = server
        .requests()
        .into_iter()
        .filter(|r| r.url.ends_with("/WsFedBearer"))
        .nth(1)
        .unwrap();
    assert!(body_text(wt_req).contains(&format!(
        "<wsa:Address>{}</wsa:Address>",
        other_user.replace('&', "&amp;")
    )));
}

#[test]
fn stale_or_unknown_completions_are_ignored() {
    use lyncd_client::{ActionId, Completion, SignIn};
    use lyncd_core::SeededEntropy;
    let mut signin = SignIn::new(config(), START);
    let a = signin.poll_action(START).unwrap();
    signin.handle(
        START,
        ActionId(a.id().0 + 7),
        Completion::ResolveFailed("x".into()),
        &mut SeededEntropy::new(0),
    );
    assert!(signin.poll_trace().is_none());
    assert!(
        signin.poll_action(START).is_none(),
        "the first action is still outstanding"
    );
    assert_eq!(signin.current_step(), Some(Step::Dns));
}
