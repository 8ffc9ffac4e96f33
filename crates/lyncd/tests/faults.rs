//! One test per failure the troubleshooter detects (design/diagnostics.md rows 1–4, 6–9,
//! 11–17): `lyncd serve` with that fault injected, `lyncd signin --json` against it, and the
//! failing step and diagnosis asserted — or, for problems that do not stop a sign-in, the
//! finding.

mod common;

use common::lab::{Lab, PASSWORD, diagnostic_codes, failure, finding_codes, lyncd, text};

fn assert_fails(
    lab: &Lab,
    extra: &[&str],
    password: &str,
    step: &str,
    kind: &str,
    exit: i32,
) -> serde_json::Value {
    let (doc, code, out) = lab.signin_json(extra, password);
    assert_eq!(doc["schema"], "lyncd.signin/v1");
    assert_eq!(doc["ok"], false, "{}", text(&out));
    assert_eq!(
        failure(&doc),
        (step.to_string(), kind.to_string()),
        "failure: {}\n--- server log ---\n{}",
        serde_json::to_string_pretty(&doc["failure"]).unwrap(),
        lab.server_log()
    );
    assert_eq!(code, exit, "exit code for a failure at {step}");
    assert_eq!(doc["failure"]["exit_code"], exit);
    for key in ["expected", "got", "explanation", "next_check"] {
        assert!(
            doc["failure"][key].as_str().is_some_and(|s| !s.is_empty()),
            "failure.{key} must say something"
        );
    }
    // The failing step is the last one, marked failed, with the same diagnosis.
    let last = doc["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["step"], step);
    assert_eq!(last["result"], "failed");
    doc
}

fn assert_signs_in(lab: &Lab, extra: &[&str]) -> serde_json::Value {
    let (doc, code, out) = lab.signin_json(extra, PASSWORD);
    assert_eq!(
        doc["ok"],
        true,
        "{}\n--- server log ---\n{}",
        text(&out),
        lab.server_log()
    );
    assert_eq!(code, 0);
    doc
}

#[test]
fn healthy_lab_signs_in_with_every_check_passing() {
    let lab = Lab::start("");
    let doc = assert_signs_in(&lab, &[]);
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"dns-sip"));
    assert!(steps.contains(&"tls"), "{steps:?}");
    assert!(steps.contains(&"sip-register-signed"), "{steps:?}");
    // Every SIP name of the zone answered, inside the SIP domain (the lab's ports are
    // unusual, which is only a note).
    let codes = finding_codes(&doc);
    assert!(
        !codes
            .iter()
            .any(|c| c == "sip-srv-missing" || c == "sip-srv-outside-domain"),
        "{codes:?}"
    );
    assert!(codes.contains(&"sip-srv-unusual-port".into()), "{codes:?}");
    let tls = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "tls")
        .unwrap();
    assert_eq!(tls["evidence"]["kind"], "tls");
    assert_eq!(tls["evidence"]["trusted"], true);
    assert!(tls["evidence"]["days_left"].as_i64().unwrap() > 300);
}

// Row 1: Autodiscover not found.
#[test]
fn missing_lyncdiscover_records_fail_at_dns() {
    let lab = Lab::start("[faults]\ndns_missing = [\"lyncdiscover\", \"lyncdiscoverinternal\"]\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "dns", "no-discovery-answer", 10);
    let got = doc["failure"]["got"].as_str().unwrap();
    assert!(got.contains("lyncdiscover.contoso.com"), "{got}");
    assert!(got.contains("NXDOMAIN"), "{got}");
}

// Row 1: the name answers, but with a web page instead of Autodiscover.
#[test]
fn a_web_page_instead_of_autodiscover_fails_at_lyncdiscover() {
    let lab = Lab::start("[faults]\nautodiscover = \"html\"\n");
    assert_fails(
        &lab,
        &[],
        PASSWORD,
        "lyncdiscover",
        "not-autodiscover-content",
        11,
    );
}

// Row 2: no SIP SRV records / SRV target outside the SIP domain (a warning: Autodiscover works).
#[test]
fn missing_and_foreign_sip_srv_records_are_reported() {
    let lab = Lab::start("[faults]\ndns_missing = [\"sipinternaltls\", \"sip-tls\"]\n");
    let doc = assert_signs_in(&lab, &[]);
    assert!(finding_codes(&doc).contains(&"sip-srv-missing".into()));
    let lab = Lab::start("[faults]\nsrv_target = \"lyncfe.fabrikam.net\"\n");
    let doc = assert_signs_in(&lab, &[]);
    assert!(finding_codes(&doc).contains(&"sip-srv-outside-domain".into()));
}

// Row 3: the certificate does not name the SIP domain's discovery host.
#[test]
fn certificate_without_the_sip_domain_fails_at_tls() {
    let lab = Lab::start("[faults]\nhttps_certificate = \"without-sip-domain\"\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "tls", "certificate-name-mismatch", 18);
    assert!(
        doc["failure"]["got"]
            .as_str()
            .unwrap()
            .contains("lyncdiscoverinternal.contoso.com")
    );
}

// Row 4: a certificate this machine does not trust.
#[test]
fn untrusted_certificate_fails_at_tls() {
    let lab = Lab::start("[faults]\nhttps_certificate = \"self-signed\"\n");
    assert_fails(&lab, &[], PASSWORD, "tls", "certificate-untrusted", 18);
}

// Row 6: an expired certificate; one about to expire is a warning.
#[test]
fn expired_certificate_fails_and_expiring_one_warns() {
    let lab = Lab::start("[faults]\nhttps_certificate = \"expired\"\n");
    assert_fails(&lab, &[], PASSWORD, "tls", "certificate-expired", 18);
    let lab = Lab::start("[faults]\nhttps_certificate = \"expiring\"\n");
    let doc = assert_signs_in(&lab, &[]);
    assert!(finding_codes(&doc).contains(&"certificate-expiring".into()));
}

// Row 7: TLS 1.0-only endpoints fail; TLS 1.2-only ones work and say who is left out.
#[test]
fn tls_version_problems_are_found_by_the_probe() {
    let lab = Lab::start("[faults]\nhttps_tls = \"1.0-only\"\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "tls", "tls-version-mismatch", 18);
    assert!(
        doc["failure"]["got"]
            .as_str()
            .unwrap()
            .contains("TLS 1.0 accepted")
    );
    let lab = Lab::start("[faults]\nsip_tls = \"1.0-only\"\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "tls", "tls-version-mismatch", 18);
    assert!(
        doc["failure"]["expected"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}", lab.sip))
    );
    let lab = Lab::start("[faults]\nhttps_tls = \"1.2-only\"\n");
    let doc = assert_signs_in(&lab, &[]);
    assert!(finding_codes(&doc).contains(&"tls-legacy-refused".into()));
}

// Row 8: a server clock 10 minutes off stops the sign-in; 3 minutes is a warning.
#[test]
fn clock_skew_is_measured_from_date_headers() {
    let lab = Lab::start("[faults]\nclock_skew_secs = 600\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "lyncdiscover", "clock-skew", 11);
    assert!(doc["failure"]["got"].as_str().unwrap().contains("ahead"));
    let lab = Lab::start("[faults]\nclock_skew_secs = -180\n");
    let doc = assert_signs_in(&lab, &[]);
    assert!(finding_codes(&doc).contains(&"clock-skew".into()));
}

// Row 9: the Web Ticket service wants Windows authentication, or fails.
#[test]
fn web_ticket_service_problems_are_named() {
    let lab = Lab::start("[faults]\nweb_ticket = \"ntlm-only\"\n");
    let doc = assert_fails(
        &lab,
        &[],
        PASSWORD,
        "web-ticket",
        "web-ticket-auth-not-offered",
        16,
    );
    assert!(doc["failure"]["got"].as_str().unwrap().contains("NTLM"));
    let lab = Lab::start("[faults]\nweb_ticket = \"error\"\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "web-ticket", "web-ticket-rejected", 16);
    assert!(
        diagnostic_codes(&doc).contains(&28001),
        "{}",
        doc["failure"]
    );
}

// Row 11: a wrong password, tried exactly once.
#[test]
fn wrong_password_is_one_attempt_and_a_clear_diagnosis() {
    let lab = Lab::start("");
    let trace = lab.dir.path().join("trace.har");
    let doc = assert_fails(
        &lab,
        &["--trace", trace.to_str().unwrap()],
        "not the password",
        "idp-token",
        "bad-credentials",
        15,
    );
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let rst2 = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request"]["url"].as_str().unwrap().contains("RST2"))
        .count();
    assert_eq!(rst2, 1, "one credential attempt per run");
    let raw = std::fs::read_to_string(&trace).unwrap();
    assert!(!raw.contains("not the password"), "the password is masked");
    assert_eq!(doc["ok"], false);
}

// Row 12: a user not enabled for SIP.
#[test]
fn user_not_enabled_for_sip_is_decoded_from_ms_diagnostics() {
    let lab = Lab::start("");
    let out = lyncd(
        &[
            "user",
            "set",
            common::lab::USER,
            "--sip",
            "off",
            "--data-dir",
            &lab.data_dir(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let (doc, _, out) = lab.signin_json(&[], PASSWORD);
    assert_eq!(failure(&doc).1, "user-not-sip-enabled", "{}", text(&out));
    // Certificate Provisioning refuses such a user first (28000); with a certificate from
    // before, the registrar would (4005).
    let codes = diagnostic_codes(&doc);
    assert!(
        codes.contains(&28000) || codes.contains(&4005),
        "{}",
        doc["failure"]
    );
}

// Disabled account: refused before any ticket.
#[test]
fn disabled_user_is_refused_with_a_reason() {
    let lab = Lab::start("");
    let out = lyncd(
        &[
            "user",
            "disable",
            common::lab::USER,
            "--data-dir",
            &lab.data_dir(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let (doc, code, _) = lab.signin_json(&[], PASSWORD);
    assert_eq!(doc["ok"], false);
    // lyncd's identity provider, like Org ID, does not tell a disabled account from a
    // wrong password before the password is proven: the diagnosis says to check both.
    assert_eq!(
        failure(&doc),
        ("idp-token".to_string(), "bad-credentials".to_string()),
        "{}",
        doc["failure"]
    );
    assert_eq!(code, 15);
}

// Row 13: no remote access for this user from outside the internal networks.
#[test]
fn remote_access_policy_is_reported_as_policy() {
    let lab = Lab::start("[sip]\ninternal_networks = [\"10.0.0.0/8\"]\n");
    let out = lyncd(
        &[
            "user",
            "set",
            common::lab::USER,
            "--remote-access",
            "off",
            "--data-dir",
            &lab.data_dir(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let (doc, _, out) = lab.signin_json(&[], PASSWORD);
    assert_eq!(failure(&doc).1, "remote-access-denied", "{}", text(&out));
    assert!(diagnostic_codes(&doc).contains(&4003), "{}", doc["failure"]);
}

// Row 14: Certificate Provisioning not reachable.
#[test]
fn unreachable_certprov_is_named_at_its_step() {
    let lab = Lab::start("[faults]\ncertprov_unreachable = true\n");
    assert_fails(
        &lab,
        &[],
        PASSWORD,
        "certprov-mex",
        "connection-refused",
        21,
    );
}

// Row 15: a connection reset right after connect.
#[test]
fn reset_connections_are_told_apart() {
    let lab = Lab::start("[faults]\nreset_https = true\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "lyncdiscover", "connection-reset", 11);
    assert!(doc["failure"]["got"].as_str().unwrap().contains("reset"));
}

// Row 16: the pool answers 503.
#[test]
fn pool_503_is_a_server_side_problem_with_retry_after() {
    let lab = Lab::start("[faults]\npool_unavailable = true\nretry_after_secs = 120\n");
    let doc = assert_fails(&lab, &[], PASSWORD, "sip-register", "pool-unavailable", 20);
    assert!(
        doc["failure"]["got"]
            .as_str()
            .unwrap()
            .contains("Retry-After: 120")
    );
    assert!(!diagnostic_codes(&doc).is_empty(), "{}", doc["failure"]);
}

// Row 17: the mobile (UCWA) sign-in is refused while the desktop path works.
#[test]
fn ucwa_password_grant_refusal_is_found_with_ucwa() {
    let lab = Lab::start("[faults]\noauth_password_grant = false\n");
    let doc = assert_fails(
        &lab,
        &["--ucwa"],
        PASSWORD,
        "ucwa-oauth",
        "ucwa-refused",
        19,
    );
    assert!(
        doc["failure"]["got"]
            .as_str()
            .unwrap()
            .contains("unsupported_grant_type")
    );
    let lab = Lab::start("");
    assert_signs_in(&lab, &["--ucwa"]);
}
