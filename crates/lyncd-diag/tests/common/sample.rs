//! Realistic reports for the report tests: a whole sign-in against a lab deployment, one that
//! fails at the signed REGISTER (with a long explanation) and one that succeeds.
#![allow(dead_code)]

use lyncd_diag::report::{Arrow, Failure, Lane, Report, Status};

fn lane(id: &str, label: &str, detail: &str) -> Lane {
    Lane {
        id: id.into(),
        label: label.into(),
        detail: detail.into(),
    }
}

/// The seven parties of a full sign-in.
pub fn lanes() -> Vec<Lane> {
    vec![
        lane("client", "lyncd signin", "alice@contoso.com"),
        lane("dns", "DNS", "10.0.0.2:53"),
        lane(
            "autodiscover",
            "Autodiscover",
            "lyncdiscover.contoso.com:443",
        ),
        lane("webticket", "Web Ticket", "lyncweb.contoso.com:443"),
        lane("idp", "Identity provider", "login.microsoftonline.com:443"),
        lane("certprov", "CertProv", "lyncweb.contoso.com:443"),
        lane("registrar", "Registrar", "lyncfe.contoso.com:5061"),
    ]
}

/// The explanation of the failing step: long on purpose, so the callout has to wrap.
pub const FAILURE_EXPLANATION: &str = "The registrar could not verify the signature on the \
REGISTER: the TLS-DSK security association was set up, but the registrar computed a different \
signature for the message. This usually means a proxy or load balancer between the client and \
the pool rewrote a signed header (Via, Contact or Max-Forwards), or the client and the registrar \
disagree on the targetname used to derive the keys (lyncfe.contoso.com vs. sip/lyncfe.contoso.com).";

pub const WARNING_NOTE: &str = "The identity provider's clock is 94 s ahead of this machine. \
Tokens are still accepted (the limit is 300 s), but fix NTP before it grows.";

/// `(step, title, from, to, request, reply, ms, status, note)` of each step.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    f64,
    Status,
    Option<&'static str>,
);

#[rustfmt::skip]
fn failed_rows() -> Vec<Row> {
    vec![
        ("dns-lyncdiscover", "Resolve the discovery name", "client", "dns",
         "A? lyncdiscover.contoso.com", Some("10.0.0.5"), 4.2, Status::Ok, None),
        ("tls-discover", "Connect to the discovery service", "client", "autodiscover",
         "TLS connect lyncdiscover.contoso.com:443", Some("TLS 1.3, certificate valid"), 21.0, Status::Ok, None),
        ("lyncdiscover", "Ask where the user's web services are", "client", "autodiscover",
         "GET /?sipuri=sip:alice@contoso.com", Some("200 OK (root document)"), 18.0, Status::Ok, None),
        ("autodiscover-challenge", "Ask Autodiscover for the user's pool", "client", "autodiscover",
         "GET /Autodiscover/AutodiscoverService.svc/root/user", Some("401 Unauthorized + X-MS-WebTicketURL"), 12.0, Status::Ok, None),
        ("webticket-mex", "Read the Web Ticket service's metadata", "client", "webticket",
         "GET /WebTicket/WebTicketService.svc/mex", Some("200 OK (WSDL, 3 bindings)"), 25.0, Status::Ok, None),
        ("idp-realm", "Find the user's identity provider", "client", "idp",
         "GET /getuserrealm.srf?login=alice@contoso.com", Some("200 OK (Managed)"), 40.0, Status::Ok, None),
        ("idp-token", "Get an identity token with the password", "client", "idp",
         "POST /RST2.srf", Some("200 OK (SAML token, 8 h)"), 131.0, Status::Warning, Some(WARNING_NOTE)),
        ("web-ticket", "Exchange the identity token for a web ticket", "client", "webticket",
         "POST /WebTicket/WebTicketService.svc/WsFedBearer", Some("200 OK (web ticket, 8 h)"), 35.0, Status::Ok, None),
        ("autodiscover-user", "Ask Autodiscover for the pool with the ticket", "client", "autodiscover",
         "GET /Autodiscover/AutodiscoverService.svc/root/user + X-MS-WebTicket", Some("200 OK (SipClientExternalAccess)"), 15.0, Status::Ok, None),
        ("dns-pool", "Resolve the SIP pool", "client", "dns",
         "A? lyncfe.contoso.com", Some("10.0.0.6"), 3.1, Status::Ok, None),
        ("sip-connect", "Connect to the registrar", "client", "registrar",
         "TLS connect lyncfe.contoso.com:5061", Some("TLS 1.2, certificate valid"), 24.0, Status::Ok, None),
        ("sip-register", "Register, to learn the authentication scheme", "client", "registrar",
         "REGISTER sip:contoso.com", Some("401 Unauthorized (TLS-DSK, sts-uri)"), 9.0, Status::Ok, None),
        ("keygen", "Generate the user's key pair and CSR", "client", "client",
         "RSA-2048 key + PKCS#10", None, 48.0, Status::Ok, None),
        ("certprov-mex", "Read CertProv's metadata", "client", "certprov",
         "GET /CertProv/CertProvisioningService.svc/mex", Some("200 OK (WSDL)"), 22.0, Status::Ok, None),
        ("certprov-get", "Get the user certificate", "client", "certprov",
         "POST GetAndPublishCert (CSR, web ticket, proof)", Some("200 OK (user certificate, 8 h)"), 60.0, Status::Ok, None),
        ("tlsdsk-handshake", "Run the TLS-DSK handshake inside SIP", "client", "registrar",
         "REGISTER gssapi-data (TLS-DSK, 3 legs)", Some("401 gssapi-data (handshake done)"), 30.0, Status::Ok, None),
        ("sip-register-signed", "Sign in with the signed REGISTER", "client", "registrar",
         "REGISTER sip:contoso.com (signed, crand 1, cnum 1)", Some("403 Forbidden · ms-diagnostics 1000"), 11.0, Status::Failed, Some(FAILURE_EXPLANATION)),
        ("subscribe-self", "Subscribe to roaming contacts and self", "client", "registrar",
         "SUBSCRIBE sip:alice@contoso.com (roaming)", None, 0.0, Status::Skipped, Some("not attempted: step 17 failed")),
        ("sign-out", "Sign out", "client", "registrar",
         "REGISTER Expires: 0", None, 0.0, Status::Skipped, Some("not attempted: step 17 failed")),
    ]
}

fn arrows(rows: Vec<Row>) -> Vec<Arrow> {
    let mut start = 0.0;
    rows.into_iter()
        .enumerate()
        .map(
            |(i, (step, title, from, to, request, reply, ms, status, note))| {
                let arrow = Arrow {
                    n: i + 1,
                    step: step.into(),
                    title: title.into(),
                    from: from.into(),
                    to: to.into(),
                    request: request.into(),
                    reply: reply.map(Into::into),
                    start_ms: start,
                    ms,
                    status,
                    note: note.map(Into::into),
                };
                // A little client-side work between steps, like a real run.
                start += ms + 1.5;
                arrow
            },
        )
        .collect()
}

fn generated() -> time::OffsetDateTime {
    time::macros::datetime!(2026-11-25 07:00:14 UTC)
}

/// A sign-in that fails at step 17 (the signed REGISTER) after a warning at step 7.
pub fn failed_signin() -> Report {
    let arrows = arrows(failed_rows());
    Report {
        title: "lyncd sign-in report: alice@contoso.com".into(),
        generated: generated(),
        tool_version: "0.1.0".into(),
        ok: false,
        headline: "SIGN-IN FAILED at step 17 (sip-register-signed)".into(),
        lanes: lanes(),
        arrows,
        failure: Some(Failure {
            step: "sip-register-signed".into(),
            title: "Sign in with the signed REGISTER".into(),
            code: "ms-diagnostics 1000".into(),
            expected: "200 OK with a signed Authentication-Info (TLS-DSK)".into(),
            got: "403 Forbidden; ms-diagnostics: 1000;reason=\"Final handshake failed\"".into(),
            explanation: FAILURE_EXPLANATION.into(),
            next_check: "Compare the signed headers in the SIP trace (--trace) with what the \
                registrar logged; bypass the load balancer with --resolve lyncfe.contoso.com:5061:10.0.0.6."
                .into(),
        }),
        facts: vec![
            ("user".into(), "sip:alice@contoso.com".into()),
            ("discovery".into(), "https://lyncdiscover.contoso.com/?sipuri=sip:alice@contoso.com".into()),
            ("web ticket URL".into(), "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc".into()),
            ("SIP pool".into(), "lyncfe.contoso.com:5061 (external)".into()),
            ("registrar TLS".into(), "TLS 1.2, ECDHE-RSA-AES256-GCM-SHA384".into()),
            ("user certificate".into(), "serial 4F:1A:9C:03:77:E2, valid 8 h".into()),
            ("clock skew".into(), "+94 s (identity provider)".into()),
        ],
        findings: vec![
            ("error".into(), "sip-register-signed".into(), "The registrar rejected the signed REGISTER (ms-diagnostics 1000).".into()),
            ("warning".into(), "idp-token".into(), "Clock skew of 94 s with the identity provider.".into()),
            ("info".into(), "tls-discover".into(), "The discovery service offers TLS 1.3.".into()),
        ],
        secrets_masked: true,
    }
}

/// The same sign-in, all the way to 200 OK.
pub fn successful_signin() -> Report {
    let mut rows = failed_rows();
    for row in rows.iter_mut() {
        row.7 = Status::Ok;
        row.8 = None;
    }
    rows[16].5 = Some("200 OK (signed, Authentication-Info)");
    rows[17].5 = Some("200 OK (roaming contacts, self)");
    rows[17].6 = 19.0;
    rows[18].5 = Some("200 OK");
    rows[18].6 = 7.0;
    let arrows = arrows(rows);
    let total = arrows.last().map_or(0.0, |a| a.start_ms + a.ms);
    Report {
        title: "lyncd sign-in report: alice@contoso.com".into(),
        generated: generated(),
        tool_version: "0.1.0".into(),
        ok: true,
        headline: format!("SIGNED IN in {total:.0} ms"),
        lanes: lanes(),
        arrows,
        failure: None,
        facts: vec![
            ("user".into(), "sip:alice@contoso.com".into()),
            ("SIP pool".into(), "lyncfe.contoso.com:5061".into()),
        ],
        findings: Vec::new(),
        secrets_masked: true,
    }
}
