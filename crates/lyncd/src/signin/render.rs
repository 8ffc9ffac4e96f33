//! How a sign-in is shown: a table on a terminal, or one JSON document.

use std::io::IsTerminal;

use lyncd_client::{Failure, Outcome, TraceEvent};
use serde_json::json;

/// Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Self {
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
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

/// One block per step: mark, number, title and time; what was sent and what came back; what
/// it means.
pub fn step_line(style: &Style, n: usize, ev: &TraceEvent) -> String {
    let mark = if ev.ok {
        style.paint("32", "[ok]  ")
    } else {
        style.paint("31", "[FAIL]")
    };
    let status = ev.status.map(|s| format!(" -> {s}")).unwrap_or_default();
    format!(
        "{mark} {n:>2}. {} ({} ms)\n          {}{status}\n          {}",
        ev.step.title(),
        ms(ev),
        style.paint("2", &ev.sent),
        ev.detail
    )
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
        "{} at step {}\n  expected:   {}\n  got:        {}\n  why:        {}\n  next check: {}",
        style.paint("31", "SIGN-IN FAILED"),
        f.step.title(),
        f.expected,
        f.got,
        f.explanation(),
        f.next_check()
    )
}

pub fn step_json(ev: &TraceEvent) -> serde_json::Value {
    json!({
        "step": ev.step.name(),
        "ok": ev.ok,
        "ms": ms(ev),
        "detail": ev.detail,
        "sent": ev.sent,
        "status": ev.status,
    })
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
                "kind": format!("{:?}", f.kind),
                "expected": f.expected,
                "got": f.got,
                "explanation": f.explanation(),
                "next_check": f.next_check(),
            });
        }
        None => {}
    }
    doc
}

/// One exit code per failing stage, so scripts can tell where a sign-in broke.
pub fn exit_code(outcome: Option<&Outcome>) -> u8 {
    use lyncd_client::Step::*;
    // Keep in step with cli::SIGNIN_EXIT_CODES.
    match outcome {
        Some(Outcome::Discovered(_) | Outcome::SignedIn(_)) => 0,
        Some(Outcome::Failed(f)) => match f.step {
            Dns => 10,
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
        },
        None => 1,
    }
}
