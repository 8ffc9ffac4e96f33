//! How a sign-in is shown: a table on a terminal, or one JSON document.

use std::io::IsTerminal;

use lyncd_client::lyncd_diag::cert::{Finding, Severity};
use lyncd_client::{Failure, Outcome, TraceEvent};
use lyncd_core::{SipAddress, UtcTime};
use serde_json::json;

use crate::cli::ColorChoice;

/// The JSON document's schema name; bump the version on any incompatible change.
pub const SCHEMA: &str = "lyncd.signin/v1";

/// Colours only on a terminal (or when asked), and never when NO_COLOR is set
/// (https://no-color.org).
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color
                && match choice {
                    ColorChoice::Always => true,
                    ColorChoice::Never => false,
                    ColorChoice::Auto => std::io::stdout().is_terminal(),
                },
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn ms(ev: &TraceEvent) -> u64 {
    u64::try_from(ev.elapsed.whole_milliseconds()).unwrap_or(0)
}

/// The line above the steps.
pub fn header(style: &Style) -> String {
    style.paint(
        "1",
        "result  #  step (time): what was sent -> status; what came back",
    )
}

/// One block per step: mark, number, title and time; what was sent and what came back; what
/// it means; then its findings and the server's decoded diagnostics.
pub fn step_line(style: &Style, n: usize, ev: &TraceEvent) -> String {
    let mark = match ev.status() {
        "ok" => style.paint("32", "[ok]  "),
        "warning" => style.paint("33", "[warn]"),
        _ => style.paint("31", "[FAIL]"),
    };
    let status = ev.status.map(|s| format!(" -> {s}")).unwrap_or_default();
    let mut out = format!(
        "{mark} {n:>2}. {} [{}] ({} ms)\n          {}{status}\n          {}",
        ev.step.title(),
        ev.step.name(),
        ms(ev),
        style.paint("2", &ev.sent),
        ev.detail
    );
    for f in &ev.findings {
        let (code, label) = match f.severity {
            Severity::Error => ("31", "error"),
            Severity::Warning => ("33", "warning"),
            Severity::Info => ("2", "note"),
        };
        out.push_str(&format!(
            "\n          {} {}",
            style.paint(code, &format!("{label}:")),
            f.message
        ));
    }
    for d in &ev.diagnostics {
        out.push_str(&format!("\n          server diagnosis: {}", d.describe()));
    }
    out
}

pub fn outcome_text(style: &Style, outcome: Option<&Outcome>, total_ms: u64) -> String {
    match outcome {
        Some(Outcome::Discovered(d)) => {
            let pool: Vec<String> = d
                .pool
                .iter()
                .map(|p| format!("{}:{}", p.fqdn, p.port))
                .collect();
            format!(
                "{} web sign-in complete in {total_ms} ms: web ticket valid until {}, SIP pool {}",
                style.paint("32", "SIGNED IN (web)"),
                lyncd_core::format_iso(d.web_ticket.expires),
                pool.join(", ")
            )
        }
        Some(Outcome::SignedIn(s)) => {
            let mut state = Vec::new();
            if s.refreshed {
                state.push("refreshed once".to_string());
            }
            state.push(if s.signed_out {
                "then signed out".to_string()
            } else {
                format!("registered for {} s", s.expires)
            });
            format!(
                "{} in {total_ms} ms at {}:{} ({}): GRUU {}\n  TLS-DSK {} {}, certificate {} \
                 serial {} valid until {}",
                style.paint("32", "SIGNED IN"),
                s.registrar.fqdn,
                s.registrar.port,
                state.join(", "),
                s.gruu.as_deref().unwrap_or("none"),
                s.protocol,
                s.cipher,
                if s.certificate_from_cache {
                    "from the cache,"
                } else {
                    "newly provisioned,"
                },
                s.certificate.serial_hex,
                lyncd_core::format_iso(s.certificate.not_after)
            )
        }
        Some(Outcome::Failed(f)) => failure_text(style, f),
        None => style.paint("31", "the sign-in stopped without an outcome"),
    }
}

fn failure_text(style: &Style, f: &Failure) -> String {
    format!(
        "{} at step {} [{}], diagnosis {} (exit code {})\n  expected:   {}\n  got:        {}\n  \
         why:        {}\n  next check: {}",
        style.paint("31", "SIGN-IN FAILED"),
        f.step.title(),
        f.step.name(),
        f.kind.code(),
        step_exit_code(f.step),
        f.expected,
        f.got,
        why(f),
        f.next_check()
    )
}

/// The meaning of a failure and the server's own diagnosis (expected / got have their rows).
fn why(f: &Failure) -> String {
    let mut text = f.meaning();
    for d in &f.diagnostics {
        text.push_str(&format!("\n  server:     {}", d.describe()));
    }
    text
}

pub fn step_json(ev: &TraceEvent) -> serde_json::Value {
    json!({
        "step": ev.step.name(),
        "ok": ev.ok,
        "ms": ms(ev),
        "detail": ev.detail,
        "title": ev.step.title(),
        "result": ev.status(),
        "started": lyncd_core::format_iso(ev.started),
        "sent": ev.sent,
        "status": ev.status,
        "findings": ev.findings,
        "diagnostics": ev.diagnostics,
        "evidence": ev.evidence,
        "failure": ev.failure,
    })
}

/// Every finding of a run with its step, worst first (the JSON document and the report list
/// them the same way).
pub fn all_findings(steps: &[TraceEvent]) -> Vec<(lyncd_client::Step, &Finding)> {
    let mut all: Vec<(lyncd_client::Step, &Finding)> = steps
        .iter()
        .flat_map(|ev| ev.findings.iter().map(move |f| (ev.step, f)))
        .collect();
    all.sort_by_key(|(_, f)| std::cmp::Reverse(f.severity));
    all
}

/// The document of `lyncd signin --json`: [`document`] plus the schema, the run's identity,
/// and every finding of the run in one list (worst first).
pub fn versioned(
    mut doc: serde_json::Value,
    address: &SipAddress,
    started: UtcTime,
    steps: &[TraceEvent],
) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = all_findings(steps)
        .into_iter()
        .map(|(step, f)| {
            json!({
                "step": step.name(),
                "severity": f.severity,
                "code": f.code,
                "message": f.message,
            })
        })
        .collect();
    if let Some(o) = doc.as_object_mut() {
        o.insert("schema".into(), json!(SCHEMA));
        o.insert(
            "tool".into(),
            json!({"name": "lyncd", "version": env!("CARGO_PKG_VERSION")}),
        );
        o.insert("address".into(), json!(address.to_string()));
        o.insert("started".into(), json!(lyncd_core::format_iso(started)));
        o.insert("findings".into(), json!(findings));
    }
    doc
}

pub fn document(
    ok: bool,
    steps: &[TraceEvent],
    outcome: Option<&Outcome>,
    total_ms: u64,
) -> serde_json::Value {
    let mut doc = json!({
        "ok": ok,
        "ms": total_ms,
        "steps": steps.iter().map(step_json).collect::<Vec<_>>(),
    });
    match outcome {
        Some(Outcome::Discovered(d)) => {
            doc["pool"] = json!(d.pool);
            doc["web_ticket_expires"] = json!(lyncd_core::format_iso(d.web_ticket.expires));
        }
        Some(Outcome::SignedIn(s)) => {
            doc["pool"] = json!(s.discovered.pool);
            doc["web_ticket_expires"] =
                json!(lyncd_core::format_iso(s.discovered.web_ticket.expires));
            doc["sip"] = json!({
                "registrar": format!("{}:{}", s.registrar.fqdn, s.registrar.port),
                "targetname": s.targetname,
                "expires": s.expires,
                "gruu": s.gruu,
                "protocol": s.protocol,
                "cipher": s.cipher,
                "refreshed": s.refreshed,
                "signed_out": s.signed_out,
                "certificate": {
                    "serial": s.certificate.serial_hex,
                    "not_after": lyncd_core::format_iso(s.certificate.not_after),
                    "from_cache": s.certificate_from_cache,
                },
            });
        }
        Some(Outcome::Failed(f)) => {
            doc["failure"] = json!({
                "step": f.step.name(),
                "title": f.step.title(),
                "kind": f.kind.code(),
                "expected": f.expected,
                "got": f.got,
                "explanation": f.explanation(),
                "next_check": f.next_check(),
                "diagnostics": f.diagnostics,
                "exit_code": step_exit_code(f.step),
            });
        }
        None => {}
    }
    doc
}

/// One exit code per failing stage, so scripts can tell where a sign-in broke.
pub fn exit_code(outcome: Option<&Outcome>) -> u8 {
    match outcome {
        Some(Outcome::Discovered(_) | Outcome::SignedIn(_)) => 0,
        Some(Outcome::Failed(f)) => step_exit_code(f.step),
        None => 1,
    }
}

/// The exit code of a failure at `step`. Keep in step with cli::SIGNIN_EXIT_CODES.
pub fn step_exit_code(step: lyncd_client::Step) -> u8 {
    use lyncd_client::Step::*;
    match step {
        Dns | DnsSip => 10,
        Tls => 18,
        UcwaOauth => 19,
        Lyncdiscover => 11,
        AutodiscoverChallenge => 12,
        WebTicketMex => 13,
        IdpRealm => 14,
        IdpToken => 15,
        WebTicket => 16,
        AutodiscoverUser => 17,
        SipRegister => 20,
        CertprovMex => 21,
        CertprovIdpToken => 22,
        CertprovWebTicket => 23,
        CertprovKey => 24,
        Certprov => 25,
        TlsDskHello => 26,
        TlsDskFinish => 27,
        SipRegisterSigned => 28,
        SipRefresh => 29,
        SipSignOut => 30,
    }
}
