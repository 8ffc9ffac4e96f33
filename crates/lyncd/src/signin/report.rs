//! `--report FILE.html`: the sign-in as a ladder diagram. This module only decides who talks
//! to whom (lanes) and what each arrow says; `lyncd_diag::report` draws the page.

use lyncd_client::lyncd_diag::cert::Severity;
use lyncd_client::lyncd_diag::redact;
use lyncd_client::lyncd_diag::report::{Arrow, Failure, Lane, Report, Status, render_html};
use lyncd_client::{Outcome, Step, TraceEvent};
use lyncd_core::{SipAddress, UtcTime};

use super::Walked;
use super::render::{all_findings, step_exit_code};

/// The lanes, left to right, in the order a sign-in meets them.
const LANES: [(&str, &str); 8] = [
    ("client", "This client"),
    ("dns", "DNS"),
    ("autodiscover", "Autodiscover"),
    ("webticket", "Web Ticket service"),
    ("idp", "Identity provider"),
    ("certprov", "Certificate Provisioning"),
    ("registrar", "SIP registrar"),
    ("local", "Local key store"),
];

/// Which server a step talks to.
fn lane_of(step: Step) -> &'static str {
    match step {
        Step::Dns | Step::DnsSip => "dns",
        Step::Lyncdiscover | Step::AutodiscoverChallenge | Step::AutodiscoverUser => "autodiscover",
        Step::WebTicketMex | Step::WebTicket | Step::CertprovWebTicket | Step::UcwaOauth => {
            "webticket"
        }
        Step::IdpRealm | Step::IdpToken | Step::CertprovIdpToken => "idp",
        Step::CertprovMex | Step::Certprov => "certprov",
        Step::CertprovKey => "local",
        Step::SipRegister
        | Step::TlsDskHello
        | Step::TlsDskFinish
        | Step::SipRegisterSigned
        | Step::SipRefresh
        | Step::SipSignOut => "registrar",
        // A probe guards the request after it: decided by the caller.
        Step::Tls => "client",
    }
}

/// The `host[:port]` of a step's `sent` line, for the lane header.
fn endpoint(sent: &str) -> Option<String> {
    let url = sent.split_whitespace().find(|w| w.contains("://"))?;
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// The page for one run.
pub fn page(address: &SipAddress, started: UtcTime, walked: &Walked, mask: bool) -> String {
    let steps = &walked.steps;
    // A TLS probe belongs to the lane of the next request (the one it guards).
    let lanes_of: Vec<&'static str> = steps
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            if ev.step == Step::Tls {
                steps[i + 1..]
                    .iter()
                    .find(|e| e.step != Step::Tls)
                    .map_or("autodiscover", |e| lane_of(e.step))
            } else {
                lane_of(ev.step)
            }
        })
        .collect();
    let mut lanes: Vec<Lane> = Vec::new();
    for (id, label) in LANES {
        if id != "client" && !lanes_of.contains(&id) {
            continue;
        }
        let detail = steps
            .iter()
            .zip(&lanes_of)
            .filter(|(_, l)| **l == id)
            .find_map(|(ev, _)| endpoint(&ev.sent))
            .unwrap_or_default();
        lanes.push(Lane {
            id: id.to_string(),
            label: label.to_string(),
            detail,
        });
    }
    let t0 = steps.first().map(|e| e.started);
    let arrows: Vec<Arrow> = steps
        .iter()
        .zip(&lanes_of)
        .enumerate()
        .map(|(i, (ev, lane))| arrow(i + 1, ev, lane, t0, mask))
        .collect();
    let outcome = walked.signin.outcome();
    let (headline, failure) = match outcome {
        Some(Outcome::Failed(f)) => (
            format!(
                "SIGN-IN FAILED at step {} ({}): {} — exit code {}",
                steps
                    .iter()
                    .position(|e| e.failure.as_ref() == Some(f))
                    .map_or(steps.len(), |p| p + 1),
                f.step.name(),
                f.kind.code(),
                step_exit_code(f.step)
            ),
            Some(Failure {
                step: f.step.name().to_string(),
                title: f.step.title().to_string(),
                code: f.kind.code().to_string(),
                expected: f.expected.clone(),
                got: f.got.clone(),
                explanation: f.explanation(),
                next_check: f.next_check(),
            }),
        ),
        Some(Outcome::SignedIn(_)) => (format!("SIGNED IN in {} ms", walked.total_ms), None),
        Some(Outcome::Discovered(_)) => (
            format!("SIGNED IN (web half) in {} ms", walked.total_ms),
            None,
        ),
        None => ("the sign-in stopped without an outcome".into(), None),
    };
    let mut facts = vec![
        ("Sign-in address".to_string(), address.to_string()),
        ("Steps".to_string(), steps.len().to_string()),
        ("Total time".to_string(), format!("{} ms", walked.total_ms)),
    ];
    if let Some(d) = outcome.and_then(|o| o.discovered()) {
        let pool: Vec<String> = d
            .pool
            .iter()
            .map(|p| format!("{}:{}", p.fqdn, p.port))
            .collect();
        facts.push(("SIP pool".into(), pool.join(", ")));
        facts.push((
            "Web ticket valid until".into(),
            lyncd_core::format_iso(d.web_ticket.expires),
        ));
    }
    if let Some(s) = outcome.and_then(|o| o.signed_in()) {
        facts.push((
            "Registrar".into(),
            format!("{}:{}", s.registrar.fqdn, s.registrar.port),
        ));
        facts.push(("TLS-DSK".into(), format!("{} {}", s.protocol, s.cipher)));
        facts.push((
            "User certificate".into(),
            format!(
                "serial {}, valid until {}",
                s.certificate.serial_hex,
                lyncd_core::format_iso(s.certificate.not_after)
            ),
        ));
    }
    let findings: Vec<(String, String, String)> = all_findings(steps)
        .into_iter()
        .map(|(step, f)| {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            (sev.into(), step.name().into(), f.message.clone())
        })
        .collect();
    render_html(&Report {
        title: format!("lyncd sign-in report: {address}"),
        generated: started,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        ok: walked.ok,
        headline,
        lanes,
        arrows,
        failure,
        facts,
        findings,
        secrets_masked: mask,
    })
}

fn arrow(n: usize, ev: &TraceEvent, lane: &str, t0: Option<UtcTime>, mask: bool) -> Arrow {
    let start_ms = t0.map_or(0.0, |t| (ev.started - t).as_seconds_f64() * 1000.0);
    let status = match ev.status() {
        "ok" => Status::Ok,
        "warning" => Status::Warning,
        _ if ev.failure.is_none() => Status::Skipped,
        _ => Status::Failed,
    };
    let request = if mask {
        redact::text(&ev.sent).into_owned()
    } else {
        ev.sent.clone()
    };
    let reply = match (ev.status, &ev.failure) {
        (Some(s), _) => Some(format!(
            "{s} {}",
            reqwest::StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("")
        )),
        (None, Some(f)) => Some(f.kind.code().to_string()),
        (None, None) => None,
    };
    let note = match &ev.failure {
        Some(f) if status == Status::Failed => Some(f.explanation()),
        _ => {
            let warnings: Vec<&str> = ev
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .map(|f| f.message.as_str())
                .collect();
            if warnings.is_empty() {
                None
            } else {
                Some(warnings.join(" "))
            }
        }
    };
    let (from, to) = if lane == "local" {
        ("client".to_string(), "local".to_string())
    } else {
        ("client".to_string(), lane.to_string())
    };
    Arrow {
        n,
        step: ev.step.name().to_string(),
        title: ev.step.title().to_string(),
        from,
        to,
        request,
        reply,
        start_ms,
        ms: ev.elapsed.as_seconds_f64() * 1000.0,
        status,
        note,
    }
}
