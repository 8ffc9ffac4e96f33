//! Passwords, identity tokens, web tickets and proof keys never reach a trace or a Debug dump.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use lyncd_client::{Method, Outcome, extract_raw};

const PASSWORD: &str = "Tr0ub4dor&3-unique";

fn forbidden() -> Vec<String> {
    let ticket_response = response("008").text();
    let assertion = extract_raw(&ticket_response, "Assertion", true)
        .unwrap()
        .to_string();
    let idp_response = response("007").text();
    let cipher = extract_raw(&idp_response, "CipherValue", false)
        .unwrap()
        .to_string();
    let b64 = STANDARD.encode(assertion.as_bytes());
    vec![
        PASSWORD.to_string(),
        "Tr0ub4dor&amp;3-unique".to_string(),
        // The ticket, raw or as presented, and any sizeable piece of it.
        assertion.clone(),
        b64.clone(),
        b64[..40].to_string(),
        "<saml:Assertion".to_string(),
        "AuthenticationStatement".to_string(),
        // The Org ID token.
        cipher,
        "<EncryptedData".to_string(),
        "opaque=".to_string(),
    ]
}

fn assert_clean(what: &str, text: &str, forbidden: &[String]) {
    for f in forbidden {
        assert!(!text.contains(f.as_str()), "{what} leaks {f:?}:\n{text}");
    }
}

#[test]
fn no_secret_in_trace_or_debug() {
    let mut cfg = config();
    cfg.password = PASSWORD.into();
    let mut server = FakeServer::capture();
    let (signin, trace) = server.run(cfg.clone(), 21);
    let Some(Outcome::Discovered(d)) = signin.outcome() else {
        panic!("{:?}", signin.outcome());
    };
    let forbidden = forbidden();
    let mut proof_hex: String = d
        .web_ticket
        .proof_key
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    proof_hex.truncate(16);
    let proof_b64 = STANDARD.encode(d.web_ticket.proof_key.expose());
    let mut all = forbidden.clone();
    all.push(proof_hex);
    all.push(proof_b64);

    assert_eq!(trace.len(), 8);
    for e in &trace {
        assert_clean("trace sent", &e.sent, &all);
        assert_clean("trace detail", &e.detail, &all);
        assert_clean("trace Debug", &format!("{e:?}"), &all);
        assert_clean("trace JSON", &serde_json::to_string(e).unwrap(), &all);
    }
    // The AssertionID is a reference, not a secret: it may be shown.
    assert!(trace[6].detail.contains("SamlSecurityToken-7520646a"));

    assert_clean("outcome Debug", &format!("{:?}", signin.outcome()), &all);
    assert_clean("SignIn Debug", &format!("{signin:?}"), &all);
    assert_clean("config Debug", &format!("{cfg:?}"), &all);
    for a in &server.actions {
        assert_clean("action Debug", &format!("{a:?}"), &all);
    }
    // …while the requests themselves do carry them where they must.
    let reqs = server.requests();
    assert!(body_text(reqs[4]).contains("Tr0ub4dor&amp;3-unique"));
    assert!(
        reqs[6]
            .header("X-MS-WebTicket")
            .unwrap()
            .starts_with("opaque=")
    );
}

#[test]
fn no_secret_in_debug_of_a_sign_in_in_flight() {
    // Stop right before the web ticket request, when the Org ID token is held in the state.
    use lyncd_client::{Action, SignIn};
    use lyncd_core::SeededEntropy;
    let mut cfg = config();
    cfg.password = PASSWORD.into();
    let server = FakeServer::capture();
    let mut signin = SignIn::new(cfg, START);
    let mut entropy = SeededEntropy::new(3);
    let forbidden = forbidden();
    while let Some(action) = signin.poll_action(START) {
        assert_clean("SignIn Debug", &format!("{signin:?}"), &forbidden);
        if let Action::Http { request, .. } = &action
            && request.method == Method::Post
            && request.url == WSFED_URL
        {
            break;
        }
        let completion = server.perform(&action);
        signin.handle(START, action.id(), completion, &mut entropy);
    }
    assert_clean("SignIn Debug", &format!("{signin:?}"), &forbidden);
}
