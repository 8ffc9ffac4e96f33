//! The troubleshooter's checks around the sign-in proper: the TLS probe of every endpoint, the
//! SIP names in DNS, the clock against the servers' `Date` headers, and the refinement of a
//! failure by what the failing answer carried (`ms-diagnostics`, `Retry-After`, the transport
//! error's class). Pure functions of their inputs.

use lyncd_core::UtcTime;
use lyncd_diag::cert::{self, Finding, Severity};
use lyncd_diag::{msdiag, skew};

use crate::failure::{Failure, FailureKind};
use crate::io::{TlsReport, TlsVersion, TransportError};
use crate::trace::{DnsLookup, Evidence, Step, TlsEvidence};

/// What a TLS probe means for the sign-in.
pub(crate) struct ProbeVerdict {
    pub detail: String,
    pub findings: Vec<Finding>,
    pub evidence: Evidence,
    pub failure: Option<Failure>,
}

/// Reads a TLS probe: versions, trust, names and dates. A fatal problem (no current TLS
/// version, an expired or misnamed or untrusted certificate) is a failure at this step,
/// named after the most specific cause.
pub(crate) fn evaluate_probe(
    report: &TlsReport,
    host: &str,
    port: u16,
    sip_domain: &str,
    now: UtcTime,
) -> ProbeVerdict {
    let accepted: Vec<TlsVersion> = report
        .versions
        .iter()
        .filter(|v| v.accepted)
        .map(|v| v.version)
        .collect();
    let refused: Vec<TlsVersion> = report
        .versions
        .iter()
        .filter(|v| !v.accepted)
        .map(|v| v.version)
        .collect();
    let names = |vs: &[TlsVersion]| {
        vs.iter()
            .map(|v| v.name().trim_start_matches("TLS ").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let check = cert::check_hop(&report.chain, host, sip_domain, now);
    let mut findings: Vec<Finding> = check.findings.clone();
    findings.extend(version_findings(&accepted, &refused));
    let days_left = check.days_left(now);
    let endpoint = format!("{host}:{port}");
    let expected = format!(
        "{endpoint} accepts TLS 1.2 or 1.3 and presents a trusted, valid certificate naming \
         {host}"
    );

    let modern = accepted
        .iter()
        .any(|v| matches!(v, TlsVersion::Tls12 | TlsVersion::Tls13));
    let versions_line = if accepted.is_empty() {
        "no TLS version accepted".to_string()
    } else if refused.is_empty() {
        format!("TLS {} accepted", names(&accepted))
    } else {
        format!(
            "TLS {} accepted ({} refused)",
            names(&accepted),
            names(&refused)
        )
    };
    let leaf = check.chain.first();
    let cert_line = match (leaf, days_left) {
        (Some(l), Some(d)) => format!(
            "certificate {} issued by {}, {}",
            l.subject,
            l.issuer,
            if d < 0 {
                format!("expired {} days ago", -d)
            } else {
                format!("{d} days left")
            }
        ),
        _ => "no certificate seen".to_string(),
    };
    let trust_line = match &report.trust {
        Ok(()) => "trusted".to_string(),
        Err(e) => format!("not trusted ({e})"),
    };

    let error = |code: &str| {
        findings
            .iter()
            .find(|f| f.severity == Severity::Error && f.code == code)
            .map(|f| f.message.clone())
    };
    let failure = if !modern {
        let got = report
            .versions
            .iter()
            .map(|v| {
                if v.accepted {
                    format!("{} accepted ({})", v.version.name(), v.detail)
                } else {
                    format!("{} refused ({})", v.version.name(), v.detail)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Some(Failure::new(
            Step::Tls,
            FailureKind::TlsVersionMismatch,
            expected.clone(),
            got,
        ))
    } else if let Some(m) = error("certificate-expired") {
        Some(Failure::new(
            Step::Tls,
            FailureKind::CertificateExpired,
            expected.clone(),
            m,
        ))
    } else if let Some(m) = error("certificate-not-yet-valid") {
        Some(Failure::new(
            Step::Tls,
            FailureKind::CertificateNotYetValid,
            expected.clone(),
            m,
        ))
    } else if let Some(m) = error("host-not-in-certificate") {
        Some(Failure::new(
            Step::Tls,
            FailureKind::CertificateNameMismatch,
            expected.clone(),
            m,
        ))
    } else if let Err(e) = &report.trust {
        let mut got = format!("the chain is not trusted here: {e}");
        if let Some(f) = findings.iter().find(|f| f.code == "chain-incomplete") {
            got.push_str(&format!("; {}", f.message));
        } else if let Some(root) = check.chain.last() {
            got.push_str(&format!(
                "; the chain presented ends at {} (issued by {})",
                root.subject, root.issuer
            ));
        }
        Some(Failure::new(
            Step::Tls,
            FailureKind::CertificateUntrusted,
            expected.clone(),
            got,
        ))
    } else {
        check
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .map(|f| {
                Failure::new(
                    Step::Tls,
                    FailureKind::Malformed(f.message.clone()),
                    expected.clone(),
                    f.message.clone(),
                )
            })
    };
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let detail = format!("{endpoint}: {versions_line}; {cert_line}; {trust_line}");
    ProbeVerdict {
        detail,
        findings,
        evidence: Evidence::Tls(Box::new(TlsEvidence {
            host: host.to_string(),
            port,
            versions: report.versions.clone(),
            trusted: report.trust.is_ok(),
            trust_error: report.trust.clone().err(),
            certificates: check,
            days_left,
        })),
        failure,
    }
}

/// Which client generations the accepted versions leave out (diagnostics row 7).
fn version_findings(accepted: &[TlsVersion], refused: &[TlsVersion]) -> Vec<Finding> {
    let mut out = Vec::new();
    let has = |v| accepted.contains(&v);
    if has(TlsVersion::Tls13) && !has(TlsVersion::Tls12) {
        out.push(Finding {
            severity: Severity::Warning,
            code: "tls-1.3-only",
            message: "only TLS 1.3 is accepted: Lync 2013 and Skype for Business 2015/2016 \
                      clients, and most Lync Phone Edition devices, speak at most TLS 1.2 and \
                      cannot connect"
                .into(),
        });
    }
    if (has(TlsVersion::Tls12) || has(TlsVersion::Tls13))
        && refused.contains(&TlsVersion::Tls10)
        && refused.contains(&TlsVersion::Tls11)
    {
        out.push(Finding {
            severity: Severity::Info,
            code: "tls-legacy-refused",
            message: "TLS 1.0 and 1.1 are refused: clients without TLS 1.2 (Lync 2010, Windows 7 \
                      without the TLS 1.2 updates, old phones) cannot connect here"
                .into(),
        });
    }
    if has(TlsVersion::Tls10) || has(TlsVersion::Tls11) {
        out.push(Finding {
            severity: Severity::Info,
            code: "tls-legacy-accepted",
            message: "TLS 1.0/1.1 are still accepted (Microsoft recommends disabling them once \
                      every client speaks TLS 1.2)"
                .into(),
        });
    }
    out
}

/// The names a client without Autodiscover tries for the SIP pool, in pidgin-sipe's order:
/// SRV first, then A records. `(name, is_srv, default port for A records)`.
pub(crate) fn sip_dns_names(domain: &str) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = [
        "_sipinternaltls._tcp",
        "_sipinternal._tcp",
        "_sip._tls",
        "_sip._tcp",
    ]
    .iter()
    .map(|p| (format!("{p}.{domain}"), true))
    .collect();
    names.extend(
        ["sipinternal", "sipexternal", "sip"]
            .iter()
            .map(|p| (format!("{p}.{domain}"), false)),
    );
    names
}

/// One line saying which names answered, plus what an engineer should know about them.
pub(crate) fn summarize_sip_dns(domain: &str, lookups: &[DnsLookup]) -> (String, Vec<Finding>) {
    let mut findings = Vec::new();
    let answered: Vec<String> = lookups
        .iter()
        .filter(|l| l.answered())
        .map(|l| {
            if l.rtype == "SRV" {
                let targets: Vec<String> = l
                    .srv
                    .iter()
                    .map(|s| format!("{}:{}", s.target, s.port))
                    .collect();
                format!("{} → {}", l.name, targets.join(", "))
            } else {
                format!("{} → {}", l.name, l.addresses.join(", "))
            }
        })
        .collect();
    let missing: Vec<&str> = lookups
        .iter()
        .filter(|l| !l.answered())
        .map(|l| l.name.as_str())
        .collect();
    let srv_answered = lookups.iter().any(|l| l.rtype == "SRV" && l.answered());
    if !srv_answered {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "sip-srv-missing",
            message: format!(
                "no SIP SRV record (_sipinternaltls._tcp / _sip._tls.{domain}): clients that do \
                 not use Autodiscover, or fall back to DNS when it fails, cannot find the pool \
                 (\"manual configuration works, automatic doesn't\")"
            ),
        });
    }
    for l in lookups.iter().filter(|l| l.rtype == "SRV") {
        for s in &l.srv {
            let t = s.target.to_ascii_lowercase();
            if t != domain && !t.ends_with(&format!(".{domain}")) {
                findings.push(Finding {
                    severity: Severity::Warning,
                    code: "sip-srv-outside-domain",
                    message: format!(
                        "{} points at {}, outside the SIP domain {domain}: Lync clients refuse \
                         such a target under strict DNS naming unless the TrustModelData policy \
                         lists its domain",
                        l.name, s.target
                    ),
                });
            }
            if l.name.starts_with("_sipinternaltls.") && s.port != 5061
                || l.name.starts_with("_sip._tls.") && s.port != 443
            {
                findings.push(Finding {
                    severity: Severity::Info,
                    code: "sip-srv-unusual-port",
                    message: format!(
                        "{} uses port {} (usual: 5061 internal, 443 external)",
                        l.name, s.port
                    ),
                });
            }
        }
    }
    let detail = if answered.is_empty() {
        format!(
            "none of the {} SIP names answered ({})",
            lookups.len(),
            missing.join(", ")
        )
    } else if missing.is_empty() {
        format!("all answered: {}", answered.join("; "))
    } else {
        format!(
            "answered: {}; no record: {}",
            answered.join("; "),
            missing.join(", ")
        )
    };
    (detail, findings)
}

/// The clock check for one answer's `Date` header: a finding at warning level and above.
pub(crate) fn clock_finding(now: UtcTime, date: &str) -> Option<(skew::Skew, Finding)> {
    let s = skew::evaluate(now, date)?;
    if s.severity < Severity::Warning {
        return None;
    }
    let finding = Finding {
        severity: s.severity,
        code: "clock-skew",
        message: s.describe(),
    };
    Some((s, finding))
}

/// The failure kind of a transport error: refused, reset, timeout, or simply unreachable.
pub(crate) fn transport_kind(e: &TransportError) -> FailureKind {
    match e {
        TransportError::Refused(_) => FailureKind::ConnectionRefused,
        TransportError::Reset(_) => FailureKind::ConnectionReset,
        TransportError::Timeout => FailureKind::TimedOut,
        _ => FailureKind::Unreachable,
    }
}

/// What the failing answer itself says about the failure.
#[derive(Default)]
pub(crate) struct AnswerFacts {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub transport: Option<TransportError>,
    /// `WWW-Authenticate` schemes offered.
    pub offers: Vec<String>,
}

impl AnswerFacts {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn diagnostics(&self) -> Vec<msdiag::Diagnostic> {
        msdiag::from_headers(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}

/// Makes a generic failure specific: the transport error's class, 503/504 as a server-side
/// problem (with `Retry-After`), a Web Ticket 401 asking for Windows authentication, and the
/// server's `ms-diagnostics`.
pub(crate) fn refine(mut f: Failure, facts: &AnswerFacts) -> Failure {
    if matches!(f.kind, FailureKind::Unreachable)
        && let Some(e) = &facts.transport
    {
        f.kind = transport_kind(e);
    }
    let generic = matches!(
        f.kind,
        FailureKind::SipRefused
            | FailureKind::UnexpectedStatus
            | FailureKind::WebTicketRejected
            | FailureKind::CertprovRejected
            | FailureKind::IdpFault
    );
    if generic && matches!(facts.status, Some(503 | 504)) {
        f.kind = FailureKind::PoolUnavailable;
        if let Some(r) = facts.header("Retry-After") {
            f.got.push_str(&format!(" (Retry-After: {r} s)"));
        }
    }
    if f.step == Step::WebTicket
        && facts.status == Some(401)
        && !facts.offers.is_empty()
        && facts.offers.iter().all(|o| {
            matches!(
                o.to_ascii_lowercase().as_str(),
                "ntlm" | "negotiate" | "kerberos"
            )
        })
    {
        f.kind = FailureKind::WebTicketAuthNotOffered;
        f.got = format!(
            "401 asking for {} instead of accepting the token",
            facts.offers.join(", ")
        );
    }
    let diagnostics = facts.diagnostics();
    if diagnostics.is_empty() {
        f
    } else {
        f.with_diagnostics(diagnostics)
    }
}
