//! `ms-diagnostics`, `ms-diagnostics-public` and `X-Ms-diagnostics`: the error codes Lync and
//! Skype for Business servers attach to failures, read by the troubleshooter and written by
//! lyncd's own servers (diagnostics.md rows 12, 13, 16).
//!
//! A SIP or HTTP status says little ("404 Not Found" can mean "no such user" or "not enabled
//! for SIP"); the diagnostic code says which. The header is
//!
//! ```text
//! ms-diagnostics: <ErrorId>[.<SubCode>];reason="<text>";source="<server FQDN>"[;<name>="<value>"]*
//! ```
//!
//! with codes grouped in documented ranges ([`range`]). The *public* variant
//! `ms-diagnostics-public` is the one that survives the edge and federation boundaries: Microsoft
//! sends a few codes only that way (4003, 4004), so a client outside the network sees those
//! and nothing else. The web services use `X-Ms-diagnostics` with the same shape
//! ([MS-OCAUTHWS] 3.1.4, there with `source` before `reason`).
//!
//! [`lookup`] knows the codes a sign-in meets, with Microsoft's reason text ([MS-OCER] §7 and
//! Appendix D, the Ms-Diagnostics header page of OCS 2007, [MS-SIPREGE] 4.1.3, [MS-OCAUTHWS]
//! and server traces), what they mean in plain words, and the next thing to check. It also
//! holds lyncd's own registrar codes for conditions Microsoft has no code for: they live in
//! the private block 64000–64099, which no range of the Ms-Diagnostics header page or of
//! [MS-OCER] reaches.

use serde::Serialize;

/// Which of the three headers a diagnostic came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderKind {
    /// `ms-diagnostics` (SIP): seen inside the enterprise; edges strip it.
    MsDiagnostics,
    /// `ms-diagnostics-public` (SIP): meant for the client even across the edge.
    MsDiagnosticsPublic,
    /// `X-Ms-diagnostics` (HTTP): the web services (Web Ticket, Certificate Provisioning,
    /// Autodiscover, UCWA).
    XMsDiagnostics,
}

impl HeaderKind {
    /// The header a name denotes, case-insensitively; `None` for any other header.
    pub fn from_name(name: &str) -> Option<HeaderKind> {
        let name = name.trim();
        [
            HeaderKind::MsDiagnostics,
            HeaderKind::MsDiagnosticsPublic,
            HeaderKind::XMsDiagnostics,
        ]
        .into_iter()
        .find(|kind| kind.name().eq_ignore_ascii_case(name))
    }

    /// The header name as servers spell it.
    pub fn name(self) -> &'static str {
        match self {
            HeaderKind::MsDiagnostics => "ms-diagnostics",
            HeaderKind::MsDiagnosticsPublic => "ms-diagnostics-public",
            HeaderKind::XMsDiagnostics => "X-Ms-diagnostics",
        }
    }
}

/// One diagnostic header as a server sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub header: HeaderKind,
    pub code: u32,
    /// The `<SubCode>` of `<ErrorId>.<SubCode>`, when present.
    pub sub_code: Option<u32>,
    /// The server's `reason` text (which may differ from the table's: servers of different
    /// versions word the same code differently).
    pub reason: Option<String>,
    /// The server that produced the diagnostic (`source`), often not the one that answered.
    pub source: Option<String>,
    /// The header value exactly as received.
    pub raw: String,
}

/// What a diagnostic is about, so a report can say "policy, not network" (diagnostics.md row
/// 13) or "server-side: pool health" (row 16) without knowing every code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Password, token, certificate or identity not accepted for this user.
    Credentials,
    /// The account: missing, disabled, not enabled for SIP, on another pool.
    Provisioning,
    /// An administrator's policy forbids what was asked (remote access, federation…).
    Policy,
    /// A TLS certificate is not trusted, does not match, or was refused.
    Certificate,
    /// Clocks disagree, or something is outside its validity period.
    Clock,
    /// DNS, routing or connectivity between hops.
    Network,
    /// The server or pool itself is failing.
    Server,
    /// The client sent something the server will not take from it (version, endpoint id).
    Client,
    /// A message that breaks the protocol: unreadable, unsigned, replayed.
    Protocol,
}

/// A code this module knows.
#[derive(Debug, Serialize)]
pub struct Known {
    pub code: u32,
    /// Microsoft's reason text, as servers send it (lyncd's own wording for 64000–64099).
    pub reason: &'static str,
    /// Sent as `ms-diagnostics-public` rather than `ms-diagnostics`.
    pub public: bool,
    pub class: Class,
    /// What it means, in plain words, for an engineer.
    pub meaning: &'static str,
    /// The next thing to check.
    pub action: &'static str,
}

/// First code of lyncd's private block (registrar conditions Microsoft has no code for).
pub const LYNCD_PRIVATE_FIRST: u32 = 64000;
/// Last code of lyncd's private block.
pub const LYNCD_PRIVATE_LAST: u32 = 64099;

/// Parses one header. `None` if `header_name` is not one of the three diagnostic headers, or
/// if `value` does not start with a number.
///
/// Tolerant of what servers and log files actually contain: spaces around `;` and `=`,
/// quoted or bare parameter values, parameters in any order and case, `<code>.<sub>`, and
/// free text between the code and the first `;`.
pub fn parse(header_name: &str, value: &str) -> Option<Diagnostic> {
    let header = HeaderKind::from_name(header_name)?;
    let trimmed = value.trim();
    let (code, rest) = leading_number(trimmed)?;
    let (sub_code, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => match leading_number(after_dot) {
            Some((sub, rest)) => (Some(sub), rest),
            None => (None, after_dot),
        },
        None => (None, rest),
    };
    let mut reason = None;
    let mut source = None;
    // Anything before the first ';' that is not the code (some logs write "1003 User does not
    // exist") carries no parameter.
    let params = rest.find(';').map_or("", |i| &rest[i..]);
    for (name, value) in parameters(params) {
        if name.eq_ignore_ascii_case("reason") && reason.is_none() {
            reason = Some(value);
        } else if name.eq_ignore_ascii_case("source") && source.is_none() {
            source = Some(value);
        }
    }
    Some(Diagnostic {
        header,
        code,
        sub_code,
        reason: reason.filter(|r| !r.is_empty()),
        source: source.filter(|s| !s.is_empty()),
        raw: value.to_string(),
    })
}

/// Every diagnostic among `headers` (name, value), in order; other headers are skipped.
pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Diagnostic> {
    headers
        .into_iter()
        .filter_map(|(name, value)| parse(name, value))
        .collect()
}

/// The table entry for `code`.
pub fn lookup(code: u32) -> Option<&'static Known> {
    TABLE
        .binary_search_by_key(&code, |k| k.code)
        .ok()
        .map(|i| &TABLE[i])
}

/// The documented range `code` belongs to (the Ms-Diagnostics header page; [MS-OCER] §7 for
/// the web services), or lyncd's private block.
pub fn range(code: u32) -> &'static str {
    match code {
        0..=999 => "common",
        1000..=1999 => "SIP stack",
        2000..=2999 => "user services (presence)",
        3000..=3999 => "user services (conferencing: focus and focus factory)",
        4000..=4999 => "user services (other: registration, routing, user data)",
        5000..=5999 => "server API applications",
        6000..=6999 => "IM conferencing server",
        7000..=7999 => "A/V conferencing server",
        8000..=8999 => "telephony conferencing server",
        9000..=9999 => "MRAS (media relay authentication)",
        10000..=10999 => "Mediation Server",
        11000..=11999 => "Metrics Server",
        12000..=12999 => "VoIP outbound call routing",
        13000..=13999 => "VoIP inbound call routing",
        14000..=14999 => "VoIP translation service (dial plans)",
        15000..=15999 => "Exchange Server Unified Messaging",
        16000..=16999 => "Intelligent IM Filter",
        17000..=17999 => "client version filter",
        28000..=28999 => "web services (MS-OCAUTHWS)",
        LYNCD_PRIVATE_FIRST..=LYNCD_PRIVATE_LAST => "lyncd registrar (private)",
        90000..=90999 => "public IM connectivity (PIC)",
        _ => "unknown",
    }
}

/// The header lyncd sends `code` in: `X-Ms-diagnostics` for the web services' range,
/// `ms-diagnostics-public` for the codes Microsoft sends publicly, else `ms-diagnostics`.
pub fn header_for(code: u32) -> HeaderKind {
    if (28000..=28999).contains(&code) {
        HeaderKind::XMsDiagnostics
    } else if lookup(code).is_some_and(|k| k.public) {
        HeaderKind::MsDiagnosticsPublic
    } else {
        HeaderKind::MsDiagnostics
    }
}

/// A header value for `code` with the table's reason ("Unknown" for a code not in the table)
/// and `source`: `4005;reason="…";source="fe.contoso.com"`. Web-service codes put `source`
/// first, as [MS-OCAUTHWS] 3.1.4 and Microsoft's servers do. Quotes and line breaks in
/// `source` are dropped, so the value is always one well-formed header line.
pub fn header_value(code: u32, source: &str) -> String {
    let reason = lookup(code).map_or("Unknown", |k| k.reason);
    let source: String = source
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
        .collect();
    if header_for(code) == HeaderKind::XMsDiagnostics {
        format!("{code};source=\"{source}\";reason=\"{reason}\"")
    } else {
        format!("{code};reason=\"{reason}\";source=\"{source}\"")
    }
}

impl Diagnostic {
    pub fn known(&self) -> Option<&'static Known> {
        lookup(self.code)
    }

    /// One line: code, reason (the server's, else the table's), source, then what the table
    /// says it means, e.g. `4005 "Destination URI either not enabled for SIP or does not
    /// exist" from fe.contoso.com: the address is not a SIP-enabled user …`.
    pub fn describe(&self) -> String {
        let known = self.known();
        let mut line = match self.sub_code {
            Some(sub) => format!("{}.{sub}", self.code),
            None => self.code.to_string(),
        };
        let reason = self.reason.as_deref().or(known.map(|k| k.reason));
        if let Some(reason) = reason {
            line.push_str(&format!(" \"{reason}\""));
        }
        if let Some(source) = &self.source {
            line.push_str(&format!(" from {source}"));
        }
        match known {
            Some(k) => line.push_str(&format!(": {}", k.meaning)),
            None => line.push_str(&format!(
                " (not a code lyncd knows; range: {})",
                range(self.code)
            )),
        }
        line
    }
}

/// `1234rest` → (1234, "rest"); `None` without a leading digit or on overflow.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// `;name="value";name2=bare` → (name, value) pairs. A quoted value may contain `;` and
/// backslash-escaped quotes; an unterminated quote runs to the end. Values are trimmed.
fn parameters(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if s.is_empty() {
            return out;
        }
        let name_end = s.find(['=', ';']).unwrap_or(s.len());
        let name = s[..name_end].trim().to_string();
        s = &s[name_end..];
        let Some(after_eq) = s.strip_prefix('=') else {
            // A flag without a value.
            if !name.is_empty() {
                out.push((name, String::new()));
            }
            continue;
        };
        let after_eq = after_eq.trim_start();
        let (value, rest) = match after_eq.strip_prefix('"') {
            Some(quoted) => quoted_value(quoted),
            None => {
                let end = after_eq.find(';').unwrap_or(after_eq.len());
                (after_eq[..end].to_string(), &after_eq[end..])
            }
        };
        if !name.is_empty() {
            out.push((name, value.trim().to_string()));
        }
        s = rest;
    }
}

/// The text of a quoted value whose opening quote is already consumed, and what follows its
/// closing quote.
fn quoted_value(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    (value, "")
}

const fn entry(
    code: u32,
    reason: &'static str,
    public: bool,
    class: Class,
    meaning: &'static str,
    action: &'static str,
) -> Known {
    Known {
        code,
        reason,
        public,
        class,
        meaning,
        action,
    }
}

use Class::*;

/// Sorted by code (a test checks), so [`lookup`] can search it.
///
/// Reason texts are Microsoft's as sent on the wire: SIP servers send them without the full
/// stop [MS-OCER]'s tables print; the web services keep it ("No valid security token.").
/// For 28021–28025, 28032 and 28035 no Microsoft text could be checked (the [MS-OCAUTHWS]
/// error table is not in the references at hand), so those are lyncd's wording; 28000,
/// 28020 and 28029 match Microsoft's documentation and servers.
static TABLE: &[Known] = &[
    // ---- common (0–999) ----
    entry(
        0,
        "Server internal error",
        false,
        Server,
        "The server failed while handling the request; nothing the client sent is known to be wrong.",
        "Read the Lync Server event log on the server named in `source` at that time; retry once the pool is healthy.",
    ),
    entry(
        1,
        "Service unavailable",
        false,
        Server,
        "A server component the request needs is stopped, starting or overloaded (usually with 503 and Retry-After).",
        "Get-CsWindowsService on the front ends and Get-CsPoolFabricState for the pool; honour Retry-After before retrying.",
    ),
    // ---- SIP stack (1000–1999) ----
    entry(
        1000,
        "Final handshake failed",
        false,
        Credentials,
        "The authentication handshake (NTLM, Kerberos or TLS-DSK) did not complete, so no security association exists for this user.",
        "Check the client's credentials or user certificate (issuer, expiry, subject = SIP URI) and that it authenticates to the pool FQDN it was given; a Warning header names the failing step.",
    ),
    entry(
        1001,
        "From URI not authorized to communicate with public IM providers",
        false,
        Policy,
        "The sender's external access policy does not allow public IM connectivity.",
        "Get-CsUser <address> | fl ExternalAccessPolicy; Get-CsExternalAccessPolicy <policy> | fl EnablePublicCloudAccess",
    ),
    entry(
        1002,
        "From URI not authorized to communicate with federated partners",
        false,
        Policy,
        "The sender's external access policy does not allow federation.",
        "Get-CsUser <address> | fl ExternalAccessPolicy; Get-CsExternalAccessPolicy <policy> | fl EnableFederationAccess",
    ),
    entry(
        1003,
        "User does not exist",
        false,
        Provisioning,
        "The server has no user with this SIP address: never created, deleted, or not yet replicated to the pool.",
        "Get-CsUser <address> (Enable-CsUser if missing, then allow User Replicator time); in lyncd: lyncd user list",
    ),
    entry(
        1004,
        "Route set is no longer valid",
        false,
        Protocol,
        "A request inside a dialog used a route the server no longer knows, typically after a server restart or failover.",
        "Let the client end the dialog and sign in again; look for front-end restarts at that time.",
    ),
    entry(
        1005,
        "Cannot route to destination domain",
        false,
        Network,
        "The server has no route to the target SIP domain: it is not hosted here and no federation route reaches it.",
        "Get-CsSipDomain; for a partner domain Get-CsAllowedDomain and its DNS SRV record _sipfederationtls._tcp.<domain>",
    ),
    entry(
        1006,
        "Error routing on client connection",
        false,
        Network,
        "The server could not deliver a message over the client's connection: it dropped or the client went away.",
        "Check the network path between client and pool or edge: firewalls, NAT idle timeouts, TLS inspection.",
    ),
    entry(
        1007,
        "Temporarily cannot route",
        false,
        Server,
        "Routing is temporarily impossible, for example while a pool starts or its next hop is down.",
        "Retry later; check the health of the next-hop pool (Get-CsPoolFabricState).",
    ),
    entry(
        1008,
        "Unable to resolve DNS SRV record",
        false,
        Network,
        "The server's DNS lookup of the SRV record for the destination domain failed.",
        "Resolve-DnsName -Type SRV _sipfederationtls._tcp.<domain> (or _sip._tls.<domain>) from the server that sent it.",
    ),
    entry(
        1009,
        "Conflicting SRV and host domains in DNS",
        false,
        Network,
        "The domain's SRV record points at a host outside that domain, which strict DNS naming refuses (some servers say \"No match for domain in DNS SRV results\").",
        "Make the SRV target a name inside the SIP domain, or configure the partner with an explicit ProxyFqdn (New-CsAllowedDomain).",
    ),
    entry(
        1010,
        "Certificate trust with next-hop server could not be established",
        false,
        Certificate,
        "TLS to the next server failed: its certificate is not trusted here or does not carry the expected name.",
        "Check the next hop's certificate chain and subject/SAN against its FQDN in the topology; install the missing root or intermediate CA.",
    ),
    entry(
        1011,
        "ms-diagnostics header not provided by previous hop",
        false,
        Server,
        "An upstream server answered with an error but gave no diagnostics; the cause lies at that hop.",
        "Read the logs of the previous hop (often an edge, a gateway or a federated partner).",
    ),
    entry(
        1012,
        "From URI is not authorized to communicate with users outside the enterprise",
        false,
        Policy,
        "The sender's external access policy keeps them inside the enterprise.",
        "Get-CsUser <address> | fl ExternalAccessPolicy; Get-CsExternalAccessPolicy <policy>",
    ),
    entry(
        1013,
        "Significant time skew detected during authentication",
        false,
        Clock,
        "Client and server clocks are too far apart for authentication, or (lyncd) the user certificate is outside its validity period by the server's clock.",
        "Compare the client's UTC time with the response's Date header; sync clocks (w32tm /resync, timedatectl set-ntp true) and get a fresh user certificate.",
    ),
    entry(
        1014,
        "Unable to resolve DNS A record",
        false,
        Network,
        "The server could not resolve the host name of the next hop.",
        "Resolve-DnsName <next-hop FQDN> from the server that sent it; fix the A/AAAA record.",
    ),
    entry(
        1017,
        "Cannot route From and To domains in this combination",
        false,
        Server,
        "The server's analysis of the two domains (hosted, federated, split-domain/hybrid) does not allow a request between them.",
        "Compare the domains in From and To; for hybrid check Get-CsHostingProvider | fl EnabledSharedAddressSpace and the domain lists on both sides.",
    ),
    entry(
        1027,
        "Cannot route this type of SIP request to or from federated partners",
        false,
        Policy,
        "This kind of request is not allowed across the federation boundary.",
        "Check the edge and federation configuration for that partner and request type.",
    ),
    entry(
        1034,
        "Previous hop federated peer did not report diagnostic information",
        false,
        Network,
        "A federated partner's edge refused or failed without saying why.",
        "Ask the partner to read their edge logs; check federation DNS and certificates on both sides.",
    ),
    entry(
        1046,
        "Failed to connect to a peer server",
        false,
        Network,
        "The server could not open a connection to the next hop; WinsockFailureCode says why (10060 timed out, 10061 refused).",
        "Test-NetConnection <peer> -Port 5061 from the server that sent it; check firewalls and that the peer listens.",
    ),
    entry(
        1047,
        "Failed to complete TLS negotiation with a federated peer server",
        false,
        Certificate,
        "The connection to a federated edge opened but TLS failed, usually because one side does not trust the other's certificate.",
        "Check both edges' external certificates and that each trusts the other's root CA.",
    ),
    // ---- user services, other (4000–4999) ----
    entry(
        4000,
        "User services default",
        false,
        Server,
        "A generic failure inside the front end's user services.",
        "Read the front end's event log (LS User Services) and check its back-end database connectivity.",
    ),
    entry(
        4001,
        "XML parse failure",
        false,
        Protocol,
        "The server could not parse an XML body the client sent (presence, contacts, provisioning).",
        "Capture the request; suspect a client bug or a proxy that alters bodies.",
    ),
    entry(
        4003,
        "From URI not enabled for remote access",
        true,
        Policy,
        "The user connected from outside the internal network, and their external access policy does not allow remote access: policy, not network.",
        "Get-CsUser <address> | fl ExternalAccessPolicy; Get-CsExternalAccessPolicy <policy> | fl EnableOutsideAccess. lyncd: lyncd user set <address> --remote-access on, or list the client's network in [sip] internal_networks",
    ),
    entry(
        4004,
        "Credentials provided are not authorized to act as specified from URI",
        true,
        Credentials,
        "The authenticated identity (account, certificate or security association) belongs to another SIP address than the one in From.",
        "Compare the sign-in address with the user's SIP URI (Get-CsUser <address> | fl SipAddress, UserPrincipalName) and the certificate subject; clear cached credentials and certificates.",
    ),
    entry(
        4005,
        "Destination URI either not enabled for SIP or does not exist",
        false,
        Provisioning,
        "The address is not a SIP-enabled user here: the account is disabled for Lync/SfB, not enabled for SIP, or unknown.",
        "Get-CsUser <address> | fl Enabled, SipAddress, RegistrarPool. lyncd: lyncd user list, then lyncd user enable <address> or lyncd user set <address> --sip on",
    ),
    entry(
        4006,
        "User not found in pool",
        false,
        Provisioning,
        "The user exists but the pool does not have them: homed on another pool, being moved, or not yet replicated.",
        "Get-CsUser <address> | fl RegistrarPool; check User Replicator events and any Move-CsUser in progress.",
    ),
    entry(
        4007,
        "Resource is unknown in this deployment",
        false,
        Provisioning,
        "The target is not a user, contact object or application endpoint this deployment knows.",
        "Check the address; Get-CsUser, Get-CsContact, Get-CsTrustedApplicationEndpoint <address>",
    ),
    entry(
        4010,
        "Missing endpoint identifier",
        false,
        Client,
        "The request did not identify the client endpoint (neither epid nor +sip.instance).",
        "Capture the REGISTER: From must carry ;epid= and Contact +sip.instance; suspect the client or a proxy stripping parameters.",
    ),
    entry(
        4011,
        "Epid not present",
        false,
        Client,
        "The From header lacks the epid parameter that names the client endpoint.",
        "Capture the REGISTER and check From: <sip:user@domain>;tag=…;epid=…; suspect the client or a proxy rewriting From.",
    ),
    entry(
        4012,
        "Epid too long",
        false,
        Client,
        "The epid parameter is longer than the 16 characters servers accept.",
        "Capture the REGISTER and check From ;epid=; this is a client bug.",
    ),
    entry(
        4141,
        "User disabled",
        true,
        Provisioning,
        "The server ended the user's registration because the account was disabled while signed in (sent in a registration NOTIFY).",
        "Get-CsUser <address> | fl Enabled; re-enable if intended (lyncd: lyncd user enable <address>).",
    ),
    // ---- server API applications (5000–5999) ----
    entry(
        5000,
        "One or more critical applications are not running",
        false,
        Server,
        "A server application the pool needs is not running, so requests are refused (usually 503): pool health, not the client.",
        "Get-CsWindowsService on every front end; start what is stopped; Get-CsPoolFabricState for quorum.",
    ),
    entry(
        5001,
        "Request timed out",
        false,
        Server,
        "A server application did not answer in time.",
        "Check load and health of the pool and of its back-end SQL server.",
    ),
    entry(
        5003,
        "Internal processing failure",
        false,
        Server,
        "A server application failed while processing the request.",
        "Read the event log of the server named in `source` at that time.",
    ),
    // ---- client version filter (17000–17999) ----
    entry(
        17000,
        "Server overloaded",
        false,
        Server,
        "The client version filter refused the request because the server is overloaded.",
        "Check the pool's load and health; retry later.",
    ),
    entry(
        17002,
        "Invalid protocol client version",
        false,
        Client,
        "The client's User-Agent is blocked by the client version policy.",
        "Get-CsClientVersionPolicy | fl Rules and compare with the client's User-Agent; upgrade the client.",
    ),
    entry(
        17003,
        "Declined with URL",
        false,
        Client,
        "The client version policy blocks this client and points the user to an upgrade URL.",
        "Get-CsClientVersionPolicy | fl Rules; upgrade the client.",
    ),
    // ---- web services (28000–28999, MS-OCAUTHWS) ----
    entry(
        28000,
        "User is not SIP enabled.",
        false,
        Provisioning,
        "The web services know the user but will not issue a ticket or certificate: the account is disabled or not enabled for SIP.",
        "Get-CsUser <address> | fl Enabled, SipAddress. lyncd: lyncd user list (state, sip)",
    ),
    entry(
        28001,
        "Internal server error.",
        false,
        Server,
        "The web service failed while handling the request.",
        "Read the IIS and Lync Server logs of the server named in `source`; retry later.",
    ),
    entry(
        28020,
        "No valid security token.",
        false,
        Credentials,
        "The request carried no credentials or ticket the web service accepts: missing, unreadable, signed by someone else, or for a user that no longer exists.",
        "Check that the client obtained a web ticket first and sends it (X-MS-WebTicket or Authorization: Bearer) to the URL it was issued for.",
    ),
    entry(
        28021,
        "The security token was issued for another service.",
        false,
        Credentials,
        "The ticket is valid but its audience (AppliesTo) is another service's URL.",
        "Compare the AppliesTo the client asked the Web Ticket service for with the service URL it then called (host and path).",
    ),
    entry(
        28022,
        "The security token has expired.",
        false,
        Clock,
        "The ticket is outside its validity period by the server's clock: it is old, or the clocks differ.",
        "Get a fresh ticket; compare the client's clock with the response's Date header.",
    ),
    entry(
        28023,
        "The proof of possession of the security token is invalid.",
        false,
        Credentials,
        "Certificate Provisioning needs proof that the caller holds the web ticket's key, and the proof is missing or does not verify.",
        "Request the web ticket with client entropy (proof key) and sign the request with it; check the client's clock.",
    ),
    entry(
        28024,
        "The request is for another user than the security token.",
        false,
        Credentials,
        "The request names a different user than the one the web ticket was issued to.",
        "Compare the Entity (SIP URI) in the request with the ticket's user; sign in with the matching address.",
    ),
    entry(
        28025,
        "The certificate request is not acceptable.",
        false,
        Client,
        "Certificate Provisioning refused the CSR: unreadable, badly signed, weak key or wrong algorithm.",
        "Generate a fresh RSA-2048 key and PKCS#10 request signed with SHA-1 or SHA-256.",
    ),
    entry(
        28029,
        "Authentication type not allowed.",
        false,
        Policy,
        "The web service does not accept this grant type or authentication method.",
        "Get-CsWebServiceConfiguration | fl Use*Auth*; use a method the server allows.",
    ),
    entry(
        28032,
        "Invalid user name or password.",
        false,
        Credentials,
        "The user name or password was refused.",
        "Check the sign-in address (SIP URI vs UPN) and the password; do not retry in a loop: accounts lock out.",
    ),
    entry(
        28035,
        "The request is malformed.",
        false,
        Protocol,
        "The web service could not read the request (SOAP envelope, form or parameters).",
        "Capture the request body and compare it with the service's MEX/WSDL.",
    ),
    // ---- lyncd registrar, private block (64000–64099) ----
    entry(
        64000,
        "Required header missing or invalid",
        false,
        Protocol,
        "lyncd: the request lacks a readable Call-ID, CSeq, From or To, so the registrar cannot answer it meaningfully.",
        "Capture the request; the Warning header names the header; suspect the client or a proxy.",
    ),
    entry(
        64001,
        "Authentication scheme not offered",
        false,
        Credentials,
        "lyncd: the client answered the challenge with another scheme (e.g. NTLM or Kerberos); lyncd signs users in with TLS-DSK only.",
        "Configure the client for TLS-DSK (certificate) authentication; pidgin-sipe: authentication scheme \"TLS-DSK\".",
    ),
    entry(
        64002,
        "Wrong realm or targetname",
        false,
        Protocol,
        "lyncd: the Authorization header names another realm or targetname than this registrar's.",
        "Point the client at this pool's FQDN ([names] pool); a cached server name from another deployment also causes this.",
    ),
    entry(
        64003,
        "Request-URI domain is not the user's domain",
        false,
        Protocol,
        "lyncd: the REGISTER is addressed to another domain than the one in From.",
        "Check the client's sign-in address and the domain it registers to.",
    ),
    entry(
        64004,
        "Endpoint instance not derived from epid",
        false,
        Client,
        "lyncd: +sip.instance in Contact is not the GUID derived from the epid in From ([MS-SIPAE] 3.3.5.2).",
        "Capture the REGISTER and compare epid and +sip.instance; suspect the client.",
    ),
    entry(
        64005,
        "Signature parameters missing or invalid",
        false,
        Protocol,
        "lyncd: a signed request lacks crand, cnum or response, or cnum is not a number.",
        "Capture the request; suspect the client's TLS-DSK signing.",
    ),
    entry(
        64006,
        "Replayed or stale cnum",
        false,
        Protocol,
        "lyncd: the request reuses a cnum already seen, or one older than the replay window.",
        "Look for a duplicating proxy or a client resending signed requests; sign in again.",
    ),
    entry(
        64007,
        "Message signature invalid",
        false,
        Credentials,
        "lyncd: the TLS-DSK signature of the request does not verify, so it was changed in transit or signed with other keys.",
        "Look for a proxy that rewrites headers; sign in again to get a fresh security association.",
    ),
    entry(
        64008,
        "Security association used on another connection",
        false,
        Protocol,
        "lyncd: the request uses a security association set up on another connection; associations are per connection.",
        "Let the client register again on its new connection.",
    ),
    entry(
        64009,
        "Request not signed",
        false,
        Protocol,
        "lyncd: a request other than REGISTER arrived without a valid TLS-DSK signature, or after its security association ended.",
        "Let the client sign in again (REGISTER); check that it signs every request.",
    ),
    entry(
        64010,
        "Registration could not be stored",
        false,
        Server,
        "lyncd: the registrar could not write the registration to its database (unreachable or read-only), so it did not acknowledge it.",
        "Check the database the lyncd nodes share (lyncd's log names the cause and /readyz shows it); the client retries after Retry-After.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_complete() {
        assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
        assert!(TABLE.len() >= 40, "{}", TABLE.len());
        for k in TABLE {
            assert!(!k.reason.is_empty() && !k.meaning.is_empty() && !k.action.is_empty());
            assert!(
                !k.reason.contains(['"', '\r', '\n']),
                "{} has a reason that cannot be quoted",
                k.code
            );
            assert_ne!(range(k.code), "unknown", "{} is in no range", k.code);
            let private = (LYNCD_PRIVATE_FIRST..=LYNCD_PRIVATE_LAST).contains(&k.code);
            assert_eq!(
                private,
                k.meaning.starts_with("lyncd:"),
                "{}: lyncd's own codes say so",
                k.code
            );
            // SIP reasons go out as Microsoft's servers send them: no trailing full stop.
            if header_for(k.code) != HeaderKind::XMsDiagnostics {
                assert!(!k.reason.ends_with('.'), "{}", k.code);
            }
        }
    }

    #[test]
    fn the_sign_in_codes_are_known() {
        let k = lookup(4005).unwrap();
        assert_eq!(
            k.reason,
            "Destination URI either not enabled for SIP or does not exist"
        );
        assert_eq!(k.class, Class::Provisioning);
        assert!(k.action.contains("Get-CsUser"));
        assert!(lookup(4003).unwrap().public);
        assert!(lookup(4004).unwrap().public);
        assert!(!lookup(1003).unwrap().public);
        assert_eq!(lookup(1000).unwrap().reason, "Final handshake failed");
        assert_eq!(lookup(1013).unwrap().class, Class::Clock);
        assert_eq!(lookup(28020).unwrap().reason, "No valid security token.");
        assert!(lookup(4002).is_none());
        assert!(lookup(u32::MAX).is_none());
    }

    #[test]
    fn ranges_are_named() {
        assert_eq!(range(0), "common");
        assert_eq!(range(1017), "SIP stack");
        assert_eq!(range(2100), "user services (presence)");
        assert_eq!(range(28032), "web services (MS-OCAUTHWS)");
        assert_eq!(range(64003), "lyncd registrar (private)");
        assert_eq!(range(50_000), "unknown");
    }

    #[test]
    fn real_world_shapes_parse() {
        let d = parse(
            "ms-diagnostics",
            "1003;reason=\"User does not exist\";source=\"fe.contoso.com\"",
        )
        .unwrap();
        assert_eq!(d.header, HeaderKind::MsDiagnostics);
        assert_eq!((d.code, d.sub_code), (1003, None));
        assert_eq!(d.reason.as_deref(), Some("User does not exist"));
        assert_eq!(d.source.as_deref(), Some("fe.contoso.com"));

        let d = parse(
            "Ms-Diagnostics-Public",
            "4003;reason=\"From URI not enabled for remote access\";source=\"edge.contoso.com\";appName=\"InboundRouting\"",
        )
        .unwrap();
        assert_eq!(d.header, HeaderKind::MsDiagnosticsPublic);
        assert_eq!(d.code, 4003);
        assert_eq!(d.source.as_deref(), Some("edge.contoso.com"));
        assert_eq!(d.known().unwrap().class, Class::Policy);

        // Web services: source before reason.
        let d = parse(
            "X-Ms-diagnostics",
            "28020;source=\"fe01\";reason=\"No valid security token.\"",
        )
        .unwrap();
        assert_eq!(d.header, HeaderKind::XMsDiagnostics);
        assert_eq!(d.reason.as_deref(), Some("No valid security token."));
        assert_eq!(d.source.as_deref(), Some("fe01"));

        // Spaces around ';' and '=', padded values, extra parameters (captures in
        // OfficeDocs-Support and Cisco's Expressway guide).
        let d = parse(
            "ms-diagnostics",
            " 1009; reason =\"No match for domain in DNS SRV results\"; domain =\" cms.steven.lab \"; fqdn1 =\" vcse.sub.cms.steven.lab :5061\";source=\"sip.skype.lab\"",
        )
        .unwrap();
        assert_eq!(d.code, 1009);
        assert_eq!(
            d.reason.as_deref(),
            Some("No match for domain in DNS SRV results")
        );
        assert_eq!(d.source.as_deref(), Some("sip.skype.lab"));
        let d = parse(
            "ms-diagnostics",
            "1017; reason=\"Cannot route From and To domains in this combination\"; summary=\"Domain type analysis indicates that the ms-split-domain-info header in the message is the wrong type\"",
        )
        .unwrap();
        assert_eq!(d.code, 1017);
        assert_eq!(d.source, None);

        // Mediation server, with attributes after source.
        let d = parse(
            "ms-diagnostics",
            "10003;source=\"AMS0S00MED02.infra.lync.com\";reason=\"Proxy returned a SIP failure code\";component=\"MediationServer\";SipResponseCode=\"404\"",
        )
        .unwrap();
        assert_eq!(d.code, 10003);
        assert!(d.known().is_none());
        assert!(
            d.describe().contains("Mediation Server"),
            "{}",
            d.describe()
        );

        // Registration NOTIFY ([MS-SIPREGE] 4.1.3), no source.
        let d = parse("ms-diagnostics-public", "4141;reason=\"User disabled\"").unwrap();
        assert_eq!(d.known().unwrap().class, Class::Provisioning);
    }

    #[test]
    fn sub_codes_bare_values_and_escapes() {
        let d = parse("ms-diagnostics", "1046.3;reason=Timeout;source=fe1").unwrap();
        assert_eq!((d.code, d.sub_code), (1046, Some(3)));
        assert_eq!(d.reason.as_deref(), Some("Timeout"));
        assert_eq!(d.source.as_deref(), Some("fe1"));

        let d = parse(
            "ms-diagnostics",
            "7.;reason=\"a \\\"quoted\\\" word; and more\"",
        )
        .unwrap();
        assert_eq!((d.code, d.sub_code), (7, None));
        assert_eq!(d.reason.as_deref(), Some("a \"quoted\" word; and more"));

        // Free text before the parameters, an unterminated quote, an empty reason.
        let d = parse("ms-diagnostics", "1003 User does not exist;source=\"fe").unwrap();
        assert_eq!(d.code, 1003);
        assert_eq!(d.source.as_deref(), Some("fe"));
        assert_eq!(d.reason, None);
        let d = parse("ms-diagnostics", "4005;reason=\"\"").unwrap();
        assert_eq!(d.reason, None);
        assert!(d.describe().contains("Destination URI"), "{}", d.describe());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse("ms-diagnostics", "").is_none());
        assert!(parse("ms-diagnostics", "reason=\"no code\"").is_none());
        assert!(parse("ms-diagnostics", ";4005").is_none());
        assert!(parse("ms-diagnostics", "99999999999;reason=\"overflow\"").is_none());
        assert!(parse("Warning", "399 pool \"text\"").is_none());
        assert!(parse("ms-diagnostics-private", "4005").is_none());
        assert!(parse("ms-diagnostics", "\u{1F600}\u{0}\u{7f}").is_none());
        // Never panics on odd bytes after a code.
        let d = parse("ms-diagnostics", "1;\u{7f}=\u{0};=;;\"\\").unwrap();
        assert_eq!(d.code, 1);
    }

    #[test]
    fn from_headers_keeps_only_diagnostics_in_order() {
        let headers = [
            ("Via", "SIP/2.0/TLS 10.0.0.1"),
            (
                "ms-diagnostics",
                "1034;reason=\"Previous hop federated peer did not report diagnostic information\";source=\"federation.messenger.msn.com\"",
            ),
            (
                "ms-diagnostics-public",
                "10003;reason=\"Proxy returned a SIP failure code\"",
            ),
            ("ms-diagnostics", "not a number"),
            ("Content-Length", "0"),
        ];
        let all = from_headers(headers);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].code, 1034);
        assert_eq!(all[1].header, HeaderKind::MsDiagnosticsPublic);
        assert_eq!(all[0].raw, headers[1].1);
    }

    #[test]
    fn header_values_round_trip_through_parse() {
        let v = header_value(4005, "fe.contoso.com");
        assert_eq!(
            v,
            "4005;reason=\"Destination URI either not enabled for SIP or does not exist\";source=\"fe.contoso.com\""
        );
        let v = header_value(28020, "webdir.contoso.com");
        assert_eq!(
            v,
            "28020;source=\"webdir.contoso.com\";reason=\"No valid security token.\""
        );
        for k in TABLE {
            let kind = header_for(k.code);
            let d = parse(kind.name(), &header_value(k.code, "pool.contoso.com")).unwrap();
            assert_eq!(d.code, k.code);
            assert_eq!(d.reason.as_deref(), Some(k.reason));
            assert_eq!(d.source.as_deref(), Some("pool.contoso.com"));
            assert_eq!(d.header == HeaderKind::MsDiagnosticsPublic, k.public);
        }
        // Unknown codes and hostile sources still make one well-formed value.
        let v = header_value(12345, "evil\"\r\nInjected: yes");
        assert_eq!(v, "12345;reason=\"Unknown\";source=\"evilInjected: yes\"");
        let d = parse("ms-diagnostics", &v).unwrap();
        assert_eq!(d.reason.as_deref(), Some("Unknown"));
    }

    #[test]
    fn descriptions_prefer_the_servers_words() {
        let d = parse(
            "ms-diagnostics",
            "4005;reason=\"Destination URI not enabled\";source=\"fe.contoso.com\"",
        )
        .unwrap();
        let line = d.describe();
        assert!(
            line.starts_with("4005 \"Destination URI not enabled\" from fe.contoso.com: "),
            "{line}"
        );
        assert!(line.contains(lookup(4005).unwrap().meaning), "{line}");
        let d = parse("ms-diagnostics", "1046.2").unwrap();
        assert!(
            d.describe()
                .starts_with("1046.2 \"Failed to connect to a peer server\": "),
            "{}",
            d.describe()
        );
    }

    #[test]
    fn serializes_kebab_case() {
        let d = parse("ms-diagnostics-public", "4004").unwrap();
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["header"], "ms-diagnostics-public");
        let json = serde_json::to_value(lookup(4004).unwrap()).unwrap();
        assert_eq!(json["class"], "credentials");
        assert_eq!(json["public"], true);
    }
}
