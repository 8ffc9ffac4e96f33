//! Fault injection: the `[faults]` section of the configuration, for tests only.
//!
//! Each key breaks one thing the way real deployments break it (a missing DNS record, an
//! expired certificate, a TLS 1.0-only endpoint, a skewed clock, an unpublished CertProv, a pool
//! answering 503…), so that `lyncd signin`'s diagnosis can be exercised end to end against
//! `lyncd serve`. A fault lives where the behaviour it breaks lives (the DNS zone, the
//! certificate, the acceptor, the service); everything else keeps working normally. Every key is
//! off by default, and each active one is logged as a warning at start.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use lyncd_sip::Message;
use serde::Deserialize;

use crate::App;
use crate::reply::Reply;

/// `[faults]`. All off by default.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// DNS records left out of the embedded zone (their names answer NXDOMAIN):
    /// `"lyncdiscover"`, `"lyncdiscoverinternal"` (A), `"sipinternaltls"`
    /// (`_sipinternaltls._tcp` SRV), `"sip-tls"` (`_sip._tls` SRV), `"sipinternal"`, `"sip"`,
    /// `"sipexternal"` (A). Needs `[dns]`.
    pub dns_missing: BTreeSet<DnsRecord>,
    /// The host the SRV records point at, instead of `names.pool`. It also gets an A record, so
    /// it resolves; a name outside the SIP domain is what strict DNS naming refuses.
    pub srv_target: Option<String>,
    /// The HTTPS certificate (SIP over TLS uses the same one): `"expired"` (ended three days
    /// ago), `"expiring"` (ends in ten days), `"not-yet-valid"` (starts in two days),
    /// `"without-sip-domain"` (names neither `lyncdiscover(internal).<domain>` nor anything else
    /// in a tenant domain), or `"self-signed"` (not issued by lyncd's CA).
    pub https_certificate: Option<CertificateFault>,
    /// TLS versions the HTTPS listener accepts: `"1.2-only"`, `"1.3-only"` or `"1.0-only"`.
    pub https_tls: Option<TlsFault>,
    /// TLS versions the SIP-over-TLS listener accepts; values as for `https_tls`.
    pub sip_tls: Option<TlsFault>,
    /// How far the server's clock is off (seconds, negative: behind): tokens, certificates,
    /// the HTTP `Date` and the SIP `Date` headers all carry the shifted time. At most
    /// ±[`MAX_CLOCK_SKEW_SECS`], since certificates are back-dated by only an hour.
    pub clock_skew_secs: i64,
    /// The registrar's `sts-uri` (and the CertProv links of Autodiscover) name a port on the
    /// web host where nothing listens: the client's connection is refused, as with a CertProv
    /// that is not published.
    pub certprov_unreachable: bool,
    /// Every REGISTER is answered `503 Service Unavailable` with `Retry-After` and
    /// `ms-diagnostics`, as by a pool that lost quorum.
    pub pool_unavailable: bool,
    /// The `Retry-After` of `pool_unavailable` (seconds).
    pub retry_after_secs: u32,
    /// The Web Ticket service's WsFedBearer endpoint: `"ntlm-only"` answers 401 offering only
    /// NTLM and Negotiate (the wrong authentication enabled in IIS); `"error"` answers 500 with
    /// a SOAP fault and `X-Ms-diagnostics: 28001`.
    pub web_ticket: Option<WebTicketFault>,
    /// `false`: UCWA's `oauthtoken` refuses `grant_type=password` with
    /// `400 {"error":"unsupported_grant_type"}`.
    pub oauth_password_grant: bool,
    /// `"html"`: the lyncdiscover root answers `200 text/html` (a reverse proxy's portal page)
    /// instead of an Autodiscover document.
    pub autodiscover: Option<AutodiscoverFault>,
    /// The HTTPS listener accepts each TCP connection and resets it at once, like a firewall.
    pub reset_https: bool,
}

/// `clock_skew_secs` limit: the HTTPS certificate is issued with the shifted clock and
/// back-dated by an hour ([`lyncd_pki::BACKDATE`]); beyond this the certificate itself would be
/// "not yet valid" (or the CA not yet valid at the shifted time) and hide the skew.
pub const MAX_CLOCK_SKEW_SECS: i64 = 3000;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            dns_missing: BTreeSet::new(),
            srv_target: None,
            https_certificate: None,
            https_tls: None,
            sip_tls: None,
            clock_skew_secs: 0,
            certprov_unreachable: false,
            pool_unavailable: false,
            retry_after_secs: 300,
            web_ticket: None,
            oauth_password_grant: true,
            autodiscover: None,
            reset_https: false,
        }
    }
}

/// A record of the embedded DNS zone that `dns_missing` can leave out.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum DnsRecord {
    /// A `lyncdiscover.<domain>`.
    Lyncdiscover,
    /// A `lyncdiscoverinternal.<domain>`.
    Lyncdiscoverinternal,
    /// SRV `_sipinternaltls._tcp.<domain>`.
    Sipinternaltls,
    /// SRV `_sip._tls.<domain>`.
    SipTls,
    /// A `sipinternal.<domain>`.
    Sipinternal,
    /// A `sip.<domain>`.
    Sip,
    /// A `sipexternal.<domain>`.
    Sipexternal,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateFault {
    Expired,
    Expiring,
    NotYetValid,
    WithoutSipDomain,
    SelfSigned,
}

/// The only TLS version a listener speaks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum TlsFault {
    #[serde(rename = "1.0-only")]
    Tls10Only,
    #[serde(rename = "1.2-only")]
    Tls12Only,
    #[serde(rename = "1.3-only")]
    Tls13Only,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WebTicketFault {
    NtlmOnly,
    Error,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AutodiscoverFault {
    Html,
}

/// Why a `[faults]` value is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFault {
    pub key: &'static str,
    pub why: String,
}

impl Faults {
    /// Checks what the types cannot: ranges and host names.
    pub fn validate(&self) -> Result<(), BadFault> {
        if self.clock_skew_secs.abs() > MAX_CLOCK_SKEW_SECS {
            return Err(BadFault {
                key: "clock_skew_secs",
                why: format!(
                    "{} is beyond ±{MAX_CLOCK_SKEW_SECS} s: certificates are back-dated by an \
                     hour, so a larger skew would break the HTTPS certificate instead",
                    self.clock_skew_secs
                ),
            });
        }
        if let Some(target) = &self.srv_target
            && lyncd_core::SipAddress::parse(&format!("x@{target}")).is_err()
        {
            return Err(BadFault {
                key: "srv_target",
                why: format!("{target:?} is not a host name"),
            });
        }
        if !(1..=86_400).contains(&self.retry_after_secs) {
            return Err(BadFault {
                key: "retry_after_secs",
                why: "must be between 1 and 86400".into(),
            });
        }
        Ok(())
    }

    /// One sentence per active fault, for the start-up warnings.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.dns_missing.is_empty() {
            let names: Vec<&str> = self.dns_missing.iter().map(|r| r.name()).collect();
            out.push(format!(
                "DNS records left out of the zone: {}",
                names.join(", ")
            ));
        }
        if let Some(t) = &self.srv_target {
            out.push(format!("SRV records point at {t}"));
        }
        if let Some(c) = self.https_certificate {
            out.push(format!("the HTTPS certificate is {}", c.name()));
        }
        if let Some(v) = self.https_tls {
            out.push(format!("HTTPS speaks only {}", v.version_name()));
        }
        if let Some(v) = self.sip_tls {
            out.push(format!("SIP over TLS speaks only {}", v.version_name()));
        }
        if self.clock_skew_secs != 0 {
            out.push(format!("clock is off by {} s", self.clock_skew_secs));
        }
        if self.certprov_unreachable {
            out.push("sts-uri names a port where nothing listens".into());
        }
        if self.pool_unavailable {
            out.push(format!(
                "every REGISTER is answered 503 (Retry-After: {})",
                self.retry_after_secs
            ));
        }
        if let Some(w) = self.web_ticket {
            out.push(format!("Web Ticket WsFedBearer answers {}", w.answer()));
        }
        if !self.oauth_password_grant {
            out.push("oauthtoken refuses grant_type=password".into());
        }
        if self.autodiscover.is_some() {
            out.push("the lyncdiscover root answers an HTML page".into());
        }
        if self.reset_https {
            out.push("HTTPS connections are reset right after accept".into());
        }
        out
    }

    /// The server clock's offset.
    pub fn clock_skew(&self) -> time::Duration {
        time::Duration::seconds(self.clock_skew_secs)
    }
}

impl DnsRecord {
    /// The record's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            DnsRecord::Lyncdiscover => "lyncdiscover",
            DnsRecord::Lyncdiscoverinternal => "lyncdiscoverinternal",
            DnsRecord::Sipinternaltls => "sipinternaltls",
            DnsRecord::SipTls => "sip-tls",
            DnsRecord::Sipinternal => "sipinternal",
            DnsRecord::Sip => "sip",
            DnsRecord::Sipexternal => "sipexternal",
        }
    }
}

impl CertificateFault {
    /// The value's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            CertificateFault::Expired => "expired",
            CertificateFault::Expiring => "expiring",
            CertificateFault::NotYetValid => "not-yet-valid",
            CertificateFault::WithoutSipDomain => "without-sip-domain",
            CertificateFault::SelfSigned => "self-signed",
        }
    }
}

impl WebTicketFault {
    /// What WsFedBearer answers.
    pub fn answer(self) -> &'static str {
        match self {
            WebTicketFault::NtlmOnly => "401 offering only NTLM and Negotiate",
            WebTicketFault::Error => "500 with a SOAP fault",
        }
    }
}

impl TlsFault {
    pub fn version_name(self) -> &'static str {
        match self {
            TlsFault::Tls10Only => "TLS 1.0",
            TlsFault::Tls12Only => "TLS 1.2",
            TlsFault::Tls13Only => "TLS 1.3",
        }
    }
}

/// Logs one warning per active fault, so nobody mistakes a test server for a broken one.
pub fn warn_active(faults: &Faults) {
    for what in faults.describe() {
        tracing::warn!("fault injection active: {what}");
    }
}

/// `ms-diagnostics` ErrorId of the `pool_unavailable` 503: 1, "Service unavailable", the
/// common (0–999) code [MS-OCER] gives a server component that is stopped or overloaded.
const SERVICE_UNAVAILABLE: u32 = 1;

/// With `pool_unavailable`, the 503 a REGISTER gets instead of reaching the registrar.
pub fn pool_unavailable(app: &App, request: &Message) -> Option<Message> {
    if !app.config.faults.pool_unavailable
        || !request
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case("REGISTER"))
    {
        return None;
    }
    let diagnostic = lyncd_diag::msdiag::header_value(SERVICE_UNAVAILABLE, &app.config.names.pool);
    let response = lyncd_sip::response_to(request, 503, "Service Unavailable", None)
        .header(
            "Retry-After",
            &app.config.faults.retry_after_secs.to_string(),
        )
        .header("ms-diagnostics", &diagnostic)
        .header("Date", &crate::http::http_date(app.now()))
        .build();
    Some(response)
}

/// What WsFedBearer answers under `web_ticket`.
pub fn web_ticket_refusal(app: &App) -> Option<Reply> {
    let fault = app.config.faults.web_ticket?;
    tracing::info!(?fault, "webticket: refused by fault injection");
    Some(match fault {
        // IIS with Windows authentication instead of anonymous access on the endpoint.
        WebTicketFault::NtlmOnly => Reply::new(
            StatusCode::UNAUTHORIZED,
            "text/html; charset=utf-8",
            "<html><head><title>401 - Unauthorized: Access is denied due to invalid \
             credentials.</title></head><body><h2>401 - Unauthorized: Access is denied due to \
             invalid credentials.</h2></body></html>",
        )
        .header(axum::http::header::WWW_AUTHENTICATE, "NTLM")
        .header(axum::http::header::WWW_AUTHENTICATE, "Negotiate"),
        WebTicketFault::Error => crate::services::soap_fault(
            app,
            lyncd_wsxml::webticket::FaultCode::Server,
            crate::diagnostics::Diagnostic::Internal,
            "internal error",
        ),
    })
}

/// What the lyncdiscover root answers under `autodiscover = "html"`: the sign-in portal a
/// reverse proxy shows when it does not publish Autodiscover.
pub fn autodiscover_refusal(app: &App) -> Option<Reply> {
    app.config.faults.autodiscover?;
    Some(Reply::ok(
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Welcome</h1>\
         <p>Please sign in to continue.</p><form method=\"post\" action=\"/login\">\
         <input name=\"username\"><input name=\"password\" type=\"password\">\
         <button>Sign in</button></form></body></html>",
    ))
}

/// A TCP port on `ip` that refuses connections for as long as the returned socket lives: it is
/// bound (so no other program gets it) but never listens, so a SYN is answered with RST.
pub fn refusing_port(ip: std::net::IpAddr) -> std::io::Result<(tokio::net::TcpSocket, u16)> {
    let socket = match ip {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(std::net::SocketAddr::new(ip, 0))?;
    let port = socket.local_addr()?.port();
    Ok((socket, port))
}

/// With `reset_https`: resets an accepted connection (RST, not FIN), as a firewall does.
pub fn reset(tcp: tokio::net::TcpStream) {
    if let Err(e) = tcp.set_zero_linger() {
        tracing::debug!(error = %e, "https: could not set SO_LINGER 0; closing normally");
    }
    drop(tcp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerConfig;

    fn faults(toml: &str) -> Result<Faults, String> {
        ServerConfig::from_toml(&format!("[faults]\n{toml}"))
            .map(|c| c.faults)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn everything_is_off_by_default() {
        let f = ServerConfig::from_toml("").unwrap().faults;
        assert_eq!(f, Faults::default());
        assert!(f.describe().is_empty());
        assert!(f.oauth_password_grant);
        assert_eq!(f.clock_skew(), time::Duration::ZERO);
    }

    #[test]
    fn every_key_parses() {
        let f = faults(
            r#"
            dns_missing = ["lyncdiscover", "lyncdiscoverinternal", "sipinternaltls", "sip-tls",
                           "sipinternal", "sip", "sipexternal"]
            srv_target = "lyncfe.fabrikam.net"
            https_certificate = "without-sip-domain"
            https_tls = "1.0-only"
            sip_tls = "1.3-only"
            clock_skew_secs = -600
            certprov_unreachable = true
            pool_unavailable = true
            retry_after_secs = 120
            web_ticket = "ntlm-only"
            oauth_password_grant = false
            autodiscover = "html"
            reset_https = true
            "#,
        )
        .unwrap();
        assert_eq!(f.dns_missing.len(), 7);
        assert!(f.dns_missing.contains(&DnsRecord::SipTls));
        assert_eq!(f.srv_target.as_deref(), Some("lyncfe.fabrikam.net"));
        assert_eq!(
            f.https_certificate,
            Some(CertificateFault::WithoutSipDomain)
        );
        assert_eq!(f.https_tls, Some(TlsFault::Tls10Only));
        assert_eq!(f.sip_tls, Some(TlsFault::Tls13Only));
        assert_eq!(f.clock_skew(), time::Duration::seconds(-600));
        assert_eq!(f.web_ticket, Some(WebTicketFault::NtlmOnly));
        assert_eq!(f.autodiscover, Some(AutodiscoverFault::Html));
        assert!(f.certprov_unreachable && f.pool_unavailable && f.reset_https);
        assert!(!f.oauth_password_grant);
        assert_eq!(f.retry_after_secs, 120);
        // One warning per active fault (retry_after_secs only refines pool_unavailable).
        assert_eq!(f.describe().len(), 12);

        for (value, expected) in [
            ("expired", CertificateFault::Expired),
            ("expiring", CertificateFault::Expiring),
            ("not-yet-valid", CertificateFault::NotYetValid),
            ("self-signed", CertificateFault::SelfSigned),
        ] {
            let f = faults(&format!("https_certificate = \"{value}\"")).unwrap();
            assert_eq!(f.https_certificate, Some(expected));
        }
        assert_eq!(
            faults("https_tls = \"1.2-only\"").unwrap().https_tls,
            Some(TlsFault::Tls12Only)
        );
        assert_eq!(
            faults("web_ticket = \"error\"").unwrap().web_ticket,
            Some(WebTicketFault::Error)
        );
    }

    #[test]
    fn unknown_values_are_refused_naming_the_key() {
        for (key, value) in [
            ("dns_missing", "[\"lyncdiscovery\"]"),
            ("https_certificate", "\"revoked\""),
            ("https_tls", "\"1.1-only\""),
            ("sip_tls", "\"tls1.0\""),
            ("web_ticket", "\"kerberos-only\""),
            ("autodiscover", "\"json\""),
            ("clock_skew_secs", "\"ten minutes\""),
            ("pool_unavailable", "\"yes\""),
            ("srv_target", "\"not a host\""),
            ("clock_skew_secs", "7200"),
            ("retry_after_secs", "0"),
            ("reset_http", "true"),
        ] {
            let e = faults(&format!("{key} = {value}")).unwrap_err();
            assert!(e.contains(key), "{key} = {value}: {e}");
        }
    }
}
