//! The typed trace: one event per lookup or request, in the order they happened.

use crate::failure::Failure;
use crate::io::{SrvRecord, VersionProbe};
use lyncd_core::UtcTime;
use lyncd_diag::cert::{Finding, HopCheck, Severity};
use lyncd_diag::msdiag::Diagnostic;
use serde::Serializer;

/// The steps of a sign-in (web half, then certificate and SIP), in the order a successful sign-in meets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// A/AAAA lookup of a `lyncdiscover[internal].<domain>` name.
    Dns,
    /// The names a client without Autodiscover tries for the SIP pool: the SRV records
    /// (`_sipinternaltls._tcp`, `_sipinternal._tcp`, `_sip._tls`, `_sip._tcp`) and the A-record
    /// fallbacks (`sipinternal`, `sipexternal`, `sip`). Never fatal: it says which answered.
    DnsSip,
    /// The first contact with a TLS endpoint: the versions it accepts and its certificate
    /// chain (trust, names versus the host and the SIP domain, days to expiry).
    Tls,
    /// Unauthenticated GET of an Autodiscover root (and any Redirect hops).
    Lyncdiscover,
    /// GET of the user resource without a ticket: expect 401 + `X-MS-WebTicketURL`.
    AutodiscoverChallenge,
    /// GET `<web ticket service>/mex`: where to send the IdP token.
    WebTicketMex,
    /// GET `getuserrealm.srf`: managed or federated domain.
    IdpRealm,
    /// POST `RST2.srf` with user name and password: an Org ID token.
    IdpToken,
    /// POST the token to the Web Ticket service: a web ticket.
    WebTicket,
    /// GET the user resource with the web ticket: the SIP pool.
    AutodiscoverUser,
    /// The mobile (UCWA) sign-in: `grant_type=password` at the `MsRtcOAuth` token URL the
    /// Autodiscover challenge named. Only when asked for (it uses the password once more).
    UcwaOauth,
    /// Unauthenticated REGISTER: expect 401 with the TLS-DSK challenge.
    SipRegister,
    /// GET `<sts-uri>/mex`: where and how to ask for a certificate.
    CertprovMex,
    /// POST `RST2.srf` again: a fresh identity token for the CertProv web ticket.
    CertprovIdpToken,
    /// POST the token to the Web Ticket service for the CertProv audience (with a proof key).
    CertprovWebTicket,
    /// Generate the user's key pair and certificate request (local).
    CertprovKey,
    /// POST `GetAndPublishCert` with the CSR and the ticket's proof: the user certificate.
    Certprov,
    /// REGISTER with the ClientHello (C1): expect the server's flight (S1).
    TlsDskHello,
    /// REGISTER with certificate, key exchange and Finished (C2): expect the server Finished (S2).
    TlsDskFinish,
    /// The first signed REGISTER (C3): expect a signed 200 OK.
    SipRegisterSigned,
    /// One signed re-REGISTER.
    SipRefresh,
    /// Signed REGISTER with `Expires: 0`.
    SipSignOut,
}

impl Step {
    /// Stable machine name (the serde name).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Dns => "dns",
            Step::DnsSip => "dns-sip",
            Step::Tls => "tls",
            Step::Lyncdiscover => "lyncdiscover",
            Step::AutodiscoverChallenge => "autodiscover-challenge",
            Step::WebTicketMex => "web-ticket-mex",
            Step::IdpRealm => "idp-realm",
            Step::IdpToken => "idp-token",
            Step::WebTicket => "web-ticket",
            Step::AutodiscoverUser => "autodiscover-user",
            Step::UcwaOauth => "ucwa-oauth",
            Step::SipRegister => "sip-register",
            Step::CertprovMex => "certprov-mex",
            Step::CertprovIdpToken => "certprov-idp-token",
            Step::CertprovWebTicket => "certprov-web-ticket",
            Step::CertprovKey => "certprov-key",
            Step::Certprov => "certprov",
            Step::TlsDskHello => "tls-dsk-hello",
            Step::TlsDskFinish => "tls-dsk-finish",
            Step::SipRegisterSigned => "sip-register-signed",
            Step::SipRefresh => "sip-refresh",
            Step::SipSignOut => "sip-sign-out",
        }
    }

    /// Short human title.
    pub fn title(&self) -> &'static str {
        match self {
            Step::Dns => "Find the Autodiscover server in DNS",
            Step::DnsSip => "Find the SIP pool in DNS (SRV and A records)",
            Step::Tls => "Check the TLS endpoint (versions, certificate)",
            Step::Lyncdiscover => "Ask Autodiscover where the user lives",
            Step::AutodiscoverChallenge => {
                "Ask for the user's settings (expect a ticket challenge)"
            }
            Step::WebTicketMex => "Read the Web Ticket service's metadata",
            Step::IdpRealm => "Ask the identity provider about the user's realm",
            Step::IdpToken => "Sign in at the identity provider",
            Step::WebTicket => "Exchange the identity token for a web ticket",
            Step::AutodiscoverUser => "Fetch the user's settings with the web ticket",
            Step::UcwaOauth => "Sign in as a mobile (UCWA) client: OAuth password grant",
            Step::SipRegister => "Register at the SIP pool (expect a TLS-DSK challenge)",
            Step::CertprovMex => "Read the Certificate Provisioning service's metadata",
            Step::CertprovIdpToken => "Sign in at the identity provider again, for CertProv",
            Step::CertprovWebTicket => "Get a web ticket for Certificate Provisioning",
            Step::CertprovKey => "Generate the key pair and certificate request",
            Step::Certprov => "Ask Certificate Provisioning for the user certificate",
            Step::TlsDskHello => "TLS-DSK handshake: hello and server certificate",
            Step::TlsDskFinish => "TLS-DSK handshake: client certificate and finish",
            Step::SipRegisterSigned => "Send the signed REGISTER (expect a signed 200 OK)",
            Step::SipRefresh => "Refresh the registration (signed re-REGISTER)",
            Step::SipSignOut => "Sign out (REGISTER with Expires: 0)",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one lookup or request did. Never contains a password, a token or a ticket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TraceEvent {
    pub step: Step,
    /// The step did what it was meant to. `false` with `failure: None` or with a failure whose
    /// detail says "skipped" means the sign-in went on regardless.
    pub ok: bool,
    #[serde(serialize_with = "ser_time")]
    pub started: UtcTime,
    #[serde(rename = "elapsed_ms", serialize_with = "ser_ms")]
    pub elapsed: time::Duration,
    /// `GET https://…`, `POST https://… (…)` or `A host`; never a body or a credential header.
    pub sent: String,
    pub status: Option<u16>,
    /// One line: what came back, what it means, what happens next.
    pub detail: String,
    pub failure: Option<Failure>,
    /// What deserves attention even when the step worked (an expiring certificate, a skewed
    /// clock, a missing SRV record …), worst first.
    pub findings: Vec<Finding>,
    /// The `ms-diagnostics` / `ms-diagnostics-public` / `X-Ms-diagnostics` headers of the
    /// answers of this step, decoded.
    pub diagnostics: Vec<Diagnostic>,
    /// The facts behind the detail line (lookups, the TLS probe).
    pub evidence: Option<Evidence>,
}

impl TraceEvent {
    /// Ok, warning or failed, as the table and the report show it.
    pub fn status(&self) -> &'static str {
        if !self.ok {
            "failed"
        } else if self
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Warning)
        {
            "warning"
        } else {
            "ok"
        }
    }
}

/// The facts a step gathered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    Dns { lookups: Vec<DnsLookup> },
    Tls(Box<TlsEvidence>),
}

/// One name looked up.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DnsLookup {
    pub name: String,
    /// `A` (addresses) or `SRV`.
    pub rtype: &'static str,
    pub addresses: Vec<String>,
    pub srv: Vec<SrvRecord>,
    /// The resolver's words when the name did not resolve.
    pub error: Option<String>,
}

impl DnsLookup {
    pub fn answered(&self) -> bool {
        self.error.is_none() && (!self.addresses.is_empty() || !self.srv.is_empty())
    }
}

/// One TLS endpoint as the probe found it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsEvidence {
    pub host: String,
    pub port: u16,
    pub versions: Vec<VersionProbe>,
    pub trusted: bool,
    pub trust_error: Option<String>,
    /// The chain, names and dates, with its findings.
    pub certificates: HopCheck,
    /// Days until the leaf expires (negative: expired).
    pub days_left: Option<i64>,
}

fn ser_time<S: Serializer>(t: &UtcTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

fn ser_ms<S: Serializer>(d: &time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_seconds_f64() * 1000.0)
}
