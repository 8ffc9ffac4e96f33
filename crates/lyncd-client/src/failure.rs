//! Why a sign-in stopped, in words a user or an administrator can act on.

use crate::trace::Step;
use lyncd_diag::msdiag::Diagnostic;
use serde::ser::SerializeStruct;

/// The failure a known `ms-diagnostics` code names, when it is more specific than the status.
fn kind_for_code(code: u32) -> Option<FailureKind> {
    Some(match code {
        // 28000: the web services' "user not enabled" (CertProv refuses such users first).
        1003 | 4005 | 4006 | 28000 => FailureKind::UserNotSipEnabled,
        4003 => FailureKind::RemoteAccessDenied,
        4004 => FailureKind::NotAuthorizedForAddress,
        1013 => FailureKind::ClockSkew,
        _ => return None,
    })
}

/// What went wrong, named after the peer's behaviour (not after our code path).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// No `lyncdiscover[internal]` name resolved, or none answered over HTTP(S) at all.
    NoDiscoveryAnswer,
    /// An Autodiscover URL answered, but not with `application/vnd.microsoft.rtc.autodiscover+xml`.
    NotAutodiscoverContent,
    /// An Autodiscover root has neither a `Redirect` nor a `User` link.
    NoUserLink,
    /// A `Redirect` link points at an Autodiscover URL already visited.
    RedirectLoop,
    /// More `Redirect` hops than a client follows.
    TooManyRedirects,
    /// A required service could not be reached (connect, TLS, timeout).
    Unreachable,
    /// The user resource answered 401 without `X-MS-WebTicketURL`.
    NoWebTicketUrl,
    /// An HTTP status this step does not expect.
    UnexpectedStatus,
    /// The Web Ticket metadata has no `WsFedBearer` port.
    MexWithoutWsFedBearer,
    /// The WsFedBearer policy names an identity provider that is not a usable URL.
    MexWithoutIdp,
    /// Realm discovery says the domain is federated (`STSAuthURL`): not supported.
    FederatedRealm,
    /// The identity provider refused the user name or password.
    BadCredentials,
    /// The identity provider answered with another SOAP fault.
    IdpFault,
    /// The identity provider's answer lacks `Lifetime` or `EncryptedData`.
    IdpAnswerMalformed,
    /// The Web Ticket service refused the token (fault or non-200).
    WebTicketRejected,
    /// The Web Ticket service's answer lacks the ticket's parts.
    WebTicketMalformed,
    /// Autodiscover answered 401 again, to the ticket just issued.
    TicketRefused,
    /// Autodiscover answered 404 for the user.
    UserNotFound,
    /// The user document has no usable `SipClient*Access`.
    NoSipPool,
    /// The registrar's 401 offers no TLS-DSK.
    NoTlsDsk,
    /// The registrar refused a REGISTER (403, 404, 503 …); `got` carries its own words.
    SipRefused,
    /// The registrar's answers do not follow MS-SIPAE (missing gssapi-data, no Expires, endless
    /// challenges, an unexpected status, no sts-uri to get a certificate from).
    SipProtocol,
    /// A final answer after the security association was set up was unsigned, or its `rspauth`
    /// did not verify.
    SipSignature,
    /// The tunnelled TLS handshake failed.
    TlsDskHandshake,
    /// Our user certificate or key could not be used.
    CertificateUnusable,
    /// Certificate Provisioning issued a certificate for somebody else.
    CertificateForAnotherUser,
    /// The CertProv metadata has no `CertProvisioningServiceWebTicketProof_SHA1` port.
    CertprovMexWithoutPort,
    /// The CertProv metadata wants tickets from a Web Ticket service other than the one found
    /// through Autodiscover.
    CertprovForeignIssuer,
    /// Certificate Provisioning refused the request (fault or non-200).
    CertprovRejected,
    /// Certificate Provisioning answered without a readable certificate.
    CertprovMalformed,
    /// The shell could not generate the key pair and certificate request.
    KeyGeneration,
    /// Nothing listens at the address (TCP connection refused).
    ConnectionRefused,
    /// Something reset the connection (a firewall, a proxy, a load balancer without a healthy
    /// server).
    ConnectionReset,
    /// No answer within the time limit (packets dropped on the way, or a hung server).
    TimedOut,
    /// The endpoint accepts none of the TLS versions current clients speak (1.2, 1.3).
    TlsVersionMismatch,
    /// The server certificate (or one in its chain) has expired.
    CertificateExpired,
    /// The server certificate is not valid yet: a clock (here or there) is wrong.
    CertificateNotYetValid,
    /// The server certificate does not name the host the client connected to.
    CertificateNameMismatch,
    /// The server certificate does not chain to a trusted root (unknown CA, missing
    /// intermediate, self-signed).
    CertificateUntrusted,
    /// This machine's clock and the server's differ by more than Kerberos and SAML tolerate
    /// (5 minutes).
    ClockSkew,
    /// The Web Ticket service asked for an authentication scheme other than the WsFedBearer
    /// token (NTLM / Negotiate only: the wrong authentication is enabled on the endpoint).
    WebTicketAuthNotOffered,
    /// The server answered 503 / 504: a server-side problem (pool health), not the client's.
    PoolUnavailable,
    /// The user does not exist or is not enabled for SIP (`ms-diagnostics` 1003, 4005, 4006).
    UserNotSipEnabled,
    /// The user may not sign in from outside the company network (`ms-diagnostics-public`
    /// 4003: the external access policy).
    RemoteAccessDenied,
    /// The credentials presented are not authorized for this SIP address (4004).
    NotAuthorizedForAddress,
    /// The UCWA OAuth token endpoint refused the password grant or failed.
    UcwaRefused,
    /// An answer could not be read; the text says what was wrong.
    Malformed(String),
}

impl FailureKind {
    /// Stable machine name.
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::NoDiscoveryAnswer => "no-discovery-answer",
            FailureKind::NotAutodiscoverContent => "not-autodiscover-content",
            FailureKind::NoUserLink => "no-user-link",
            FailureKind::RedirectLoop => "redirect-loop",
            FailureKind::TooManyRedirects => "too-many-redirects",
            FailureKind::Unreachable => "unreachable",
            FailureKind::NoWebTicketUrl => "no-web-ticket-url",
            FailureKind::UnexpectedStatus => "unexpected-status",
            FailureKind::MexWithoutWsFedBearer => "mex-without-ws-fed-bearer",
            FailureKind::MexWithoutIdp => "mex-without-idp",
            FailureKind::FederatedRealm => "federated-realm",
            FailureKind::BadCredentials => "bad-credentials",
            FailureKind::IdpFault => "idp-fault",
            FailureKind::IdpAnswerMalformed => "idp-answer-malformed",
            FailureKind::WebTicketRejected => "web-ticket-rejected",
            FailureKind::WebTicketMalformed => "web-ticket-malformed",
            FailureKind::TicketRefused => "ticket-refused",
            FailureKind::UserNotFound => "user-not-found",
            FailureKind::NoSipPool => "no-sip-pool",
            FailureKind::NoTlsDsk => "no-tls-dsk",
            FailureKind::SipRefused => "sip-refused",
            FailureKind::SipProtocol => "sip-protocol",
            FailureKind::SipSignature => "sip-signature",
            FailureKind::TlsDskHandshake => "tls-dsk-handshake",
            FailureKind::CertificateUnusable => "certificate-unusable",
            FailureKind::CertificateForAnotherUser => "certificate-for-another-user",
            FailureKind::CertprovMexWithoutPort => "certprov-mex-without-port",
            FailureKind::CertprovForeignIssuer => "certprov-foreign-issuer",
            FailureKind::CertprovRejected => "certprov-rejected",
            FailureKind::CertprovMalformed => "certprov-malformed",
            FailureKind::KeyGeneration => "key-generation",
            FailureKind::ConnectionRefused => "connection-refused",
            FailureKind::ConnectionReset => "connection-reset",
            FailureKind::TimedOut => "timed-out",
            FailureKind::TlsVersionMismatch => "tls-version-mismatch",
            FailureKind::CertificateExpired => "certificate-expired",
            FailureKind::CertificateNotYetValid => "certificate-not-yet-valid",
            FailureKind::CertificateNameMismatch => "certificate-name-mismatch",
            FailureKind::CertificateUntrusted => "certificate-untrusted",
            FailureKind::ClockSkew => "clock-skew",
            FailureKind::WebTicketAuthNotOffered => "web-ticket-auth-not-offered",
            FailureKind::PoolUnavailable => "pool-unavailable",
            FailureKind::UserNotSipEnabled => "user-not-sip-enabled",
            FailureKind::RemoteAccessDenied => "remote-access-denied",
            FailureKind::NotAuthorizedForAddress => "not-authorized-for-address",
            FailureKind::UcwaRefused => "ucwa-refused",
            FailureKind::Malformed(_) => "malformed",
        }
    }
}

/// The end of a sign-in: at which step, what kind of problem, what was expected and what came.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.explanation())]
pub struct Failure {
    pub step: Step,
    pub kind: FailureKind,
    /// What a working deployment answers here.
    pub expected: String,
    /// What actually came back (never a secret).
    pub got: String,
    /// The server's own diagnosis (`ms-diagnostics` headers of the failing answer), decoded.
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    pub fn new(
        step: Step,
        kind: FailureKind,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Failure {
            step,
            kind,
            expected: expected.into(),
            got: got.into(),
            diagnostics: Vec::new(),
        }
    }

    /// Attaches the server's `ms-diagnostics`; a generic refusal becomes the specific failure
    /// the known codes name (not enabled for SIP, no remote access, clock skew, …).
    pub fn with_diagnostics(mut self, diagnostics: Vec<Diagnostic>) -> Self {
        if let Some(kind) = diagnostics.iter().find_map(|d| kind_for_code(d.code)) {
            let generic = matches!(
                self.kind,
                FailureKind::SipRefused
                    | FailureKind::UnexpectedStatus
                    | FailureKind::UserNotFound
                    | FailureKind::CertprovRejected
                    | FailureKind::WebTicketRejected
                    | FailureKind::IdpFault
                    | FailureKind::TicketRefused
            );
            if generic {
                self.kind = kind;
            }
        }
        self.diagnostics = diagnostics;
        self
    }

    /// What happened and what it means, in plain words, with what was expected and what came
    /// back and the server's own diagnosis.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "{} Expected: {}. Got: {}.",
            self.meaning(),
            self.expected,
            self.got
        );
        for d in &self.diagnostics {
            text.push_str(&format!(
                " Server diagnosis: {}.",
                d.describe().trim_end_matches('.')
            ));
        }
        text
    }

    /// What this kind of failure means, in plain words (without the particulars).
    pub fn meaning(&self) -> String {
        match &self.kind {
            FailureKind::NoDiscoveryAnswer => {
                "No Autodiscover server could be found: none of the lyncdiscover names resolved or \
                 answered, so the client cannot learn where the user's web services and SIP pool \
                 are."
                    .to_string()
            }
            FailureKind::NotAutodiscoverContent => {
                "A server answered the Autodiscover request, but not with Autodiscover XML. Lync \
                 clients only accept a 200 whose Content-Type starts with \
                 application/vnd.microsoft.rtc.autodiscover+xml, so this answer counts as no answer."
                    .to_string()
            }
            FailureKind::NoUserLink => {
                "The Autodiscover root document names neither the user's resource (a \"User\" link) \
                 nor another server (a \"Redirect\" link), so there is nowhere to go next."
                    .to_string()
            }
            FailureKind::RedirectLoop => {
                "The Autodiscover servers redirect in a circle: a Redirect link leads back to an \
                 address already visited."
                    .to_string()
            }
            FailureKind::TooManyRedirects => {
                "The Autodiscover servers redirect more often than a client follows (5 hops)."
                    .to_string()
            }
            FailureKind::Unreachable => format!(
                "The step \"{}\" could not reach its server: no HTTP answer came back.",
                self.step.title()
            ),
            FailureKind::NoWebTicketUrl => {
                "The user's Autodiscover resource refused access (401) but did not say where to get \
                 a web ticket: the X-MS-WebTicketURL header is missing, so this client has no way \
                 to authenticate."
                    .to_string()
            }
            FailureKind::UnexpectedStatus => format!(
                "The step \"{}\" got an HTTP status it does not expect.",
                self.step.title()
            ),
            FailureKind::MexWithoutWsFedBearer => {
                "The Web Ticket service does not offer the WsFedBearer port, the one used to sign \
                 in with a password checked by an identity provider."
                    .to_string()
            }
            FailureKind::MexWithoutIdp => {
                "The Web Ticket service names an identity provider for WsFedBearer, but its address \
                 is not a usable http(s) URL."
                    .to_string()
            }
            FailureKind::FederatedRealm => {
                "The user's domain is federated: the password is checked by the organisation's own \
                 sign-in service (AD FS or another STS) named in STSAuthURL. This client supports \
                 managed (cloud-checked) accounts only."
                    .to_string()
            }
            FailureKind::BadCredentials => {
                "The identity provider refused the sign-in name or the password.".to_string()
            }
            FailureKind::IdpFault => {
                "The identity provider refused to issue a token, for a reason other than the \
                 password."
                    .to_string()
            }
            FailureKind::IdpAnswerMalformed => {
                "The identity provider answered, but without a token a Lync client can use (it \
                 needs a Lifetime element and the token as an EncryptedData element)."
                    .to_string()
            }
            FailureKind::WebTicketRejected => {
                "The Web Ticket service did not accept the identity provider's token.".to_string()
            }
            FailureKind::WebTicketMalformed => {
                "The Web Ticket service answered, but without a usable ticket (a SAML Assertion \
                 with an AssertionID and a Lifetime with Expires)."
                    .to_string()
            }
            FailureKind::TicketRefused => {
                "Autodiscover refused the web ticket that its own Web Ticket service just issued \
                 (401 again)."
                    .to_string()
            }
            FailureKind::UserNotFound => {
                "The server does not know this user (404): the sign-in address is not enabled for \
                 Lync / Skype for Business here, or it is homed elsewhere."
                    .to_string()
            }
            FailureKind::NoSipPool => {
                "The user's settings arrived, but without a SIP server to connect to (no usable \
                 SipClientInternalAccess / SipClientExternalAccess for the AccessLocation given)."
                    .to_string()
            }
            FailureKind::NoTlsDsk => {
                "The SIP registrar asked for credentials but does not offer TLS-DSK, the \
                 certificate-based scheme this client signs in with (it offers only NTLM, \
                 Kerberos or nothing usable)."
                    .to_string()
            }
            FailureKind::SipRefused => {
                "The SIP registrar refused the sign-in. Its own reason is quoted below.".to_string()
            }
            FailureKind::SipProtocol => {
                "The SIP registrar's answers do not follow the TLS-DSK sign-in protocol \
                 ([MS-SIPAE]), so the sign-in cannot go on."
                    .to_string()
            }
            FailureKind::SipSignature => {
                "An answer that claims to come from the registrar is not signed with the keys of \
                 the TLS-DSK handshake just completed. It cannot be trusted: something between \
                 this client and the registrar altered it, or the registrar signs wrongly."
                    .to_string()
            }
            FailureKind::TlsDskHandshake => {
                "The TLS handshake tunnelled through the REGISTER messages (TLS-DSK) failed, so \
                 no signing keys exist."
                    .to_string()
            }
            FailureKind::CertificateUnusable => {
                "The user certificate (from Certificate Provisioning or the cache) cannot be \
                 used for TLS-DSK."
                    .to_string()
            }
            FailureKind::CertificateForAnotherUser => {
                "Certificate Provisioning issued a certificate for another user; the registrar \
                 would refuse it."
                    .to_string()
            }
            FailureKind::CertprovMexWithoutPort => {
                "The Certificate Provisioning service does not offer the web-ticket port \
                 (CertProvisioningServiceWebTicketProof_SHA1) that Lync clients use to get a \
                 certificate with a web ticket."
                    .to_string()
            }
            FailureKind::CertprovForeignIssuer => {
                "Certificate Provisioning wants a ticket from a Web Ticket service other than \
                 the one Autodiscover named; this client only signs in at the one it found."
                    .to_string()
            }
            FailureKind::CertprovRejected => {
                "Certificate Provisioning refused to issue a user certificate.".to_string()
            }
            FailureKind::CertprovMalformed => {
                "Certificate Provisioning answered, but without a certificate this client can \
                 read (RequestedSecurityToken/BinarySecurityToken with one DER certificate)."
                    .to_string()
            }
            FailureKind::KeyGeneration => {
                "This machine could not generate the RSA key pair and certificate request."
                    .to_string()
            }
            FailureKind::ConnectionRefused => format!(
                "The step \"{}\" could not connect: the address answered, but nothing listens on \
                 that port (connection refused).",
                self.step.title()
            ),
            FailureKind::ConnectionReset => format!(
                "The step \"{}\" was cut off: the connection was reset right after it was opened. \
                 A firewall, an intercepting proxy or a load balancer without a healthy server \
                 does this.",
                self.step.title()
            ),
            FailureKind::TimedOut => format!(
                "The step \"{}\" got no answer within the time limit: packets are dropped on the \
                 way (firewall) or the server hangs.",
                self.step.title()
            ),
            FailureKind::TlsVersionMismatch => {
                "The server accepts none of the TLS versions current clients speak (TLS 1.2 or \
                 1.3), so the connection fails with a handshake error (Schannel events 36874 / \
                 36888, alert 70 \"protocol version\" or 40 \"handshake failure\")."
                    .to_string()
            }
            FailureKind::CertificateExpired => {
                "The server's certificate has expired, so every client refuses the connection; \
                 when it happens to a pool, everyone fails to sign in at once."
                    .to_string()
            }
            FailureKind::CertificateNotYetValid => {
                "The server's certificate is not valid yet. Either it was just issued by a CA \
                 whose clock runs ahead, or this machine's clock is behind."
                    .to_string()
            }
            FailureKind::CertificateNameMismatch => {
                "The server's certificate does not name the host this client connected to, so \
                 clients refuse it (\"There was a problem verifying the certificate from the \
                 server\"; Lync asks whether the server is trusted for the sign-in address)."
                    .to_string()
            }
            FailureKind::CertificateUntrusted => {
                "The server's certificate does not chain to a root this machine trusts: the \
                 issuing CA is unknown here, or the server does not send its intermediate \
                 certificate."
                    .to_string()
            }
            FailureKind::ClockSkew => {
                "This machine's clock and the server's differ by more than 5 minutes. Kerberos, \
                 SAML tokens and web tickets are refused beyond that, so sign-in fails \
                 intermittently or always (\"problem acquiring a personal certificate\")."
                    .to_string()
            }
            FailureKind::WebTicketAuthNotOffered => {
                "The Web Ticket service refused the identity provider's token and asked for \
                 Windows authentication (NTLM / Negotiate) instead: the endpoint does not accept \
                 WsFedBearer tokens, or a reverse proxy answers in its place."
                    .to_string()
            }
            FailureKind::PoolUnavailable => {
                "The server answered that the service is unavailable (503 / 504). This is a \
                 server-side problem (pool health: front ends down, lost quorum, back end \
                 unreachable), not a problem of this client or this account."
                    .to_string()
            }
            FailureKind::UserNotSipEnabled => {
                "The server says the user does not exist or is not enabled for Lync / Skype for \
                 Business (SIP). The password and the network are fine: it is provisioning."
                    .to_string()
            }
            FailureKind::RemoteAccessDenied => {
                "The server refuses this user from outside the company network: the external \
                 access policy does not allow remote access. This is policy, not the network."
                    .to_string()
            }
            FailureKind::NotAuthorizedForAddress => {
                "The server says the credentials presented may not act as this SIP address: the \
                 sign-in name (UPN) and the SIP address belong to different users, or the \
                 certificate was issued to someone else."
                    .to_string()
            }
            FailureKind::UcwaRefused => {
                "The mobile (UCWA) OAuth sign-in failed while the desktop path works: the token \
                 endpoint refused the password grant or is broken."
                    .to_string()
            }
            FailureKind::Malformed(what) => {
                format!("An answer could not be read: {what}.")
            }
        }
    }

    /// The next thing to check.
    pub fn next_check(&self) -> String {
        let s = match &self.kind {
            FailureKind::NoDiscoveryAnswer => {
                "Check that lyncdiscover.<domain> (and, inside the company network, \
                 lyncdiscoverinternal.<domain>) exist in DNS and that the host they point to \
                 accepts connections on ports 443 and 80; or name the server explicitly to skip DNS."
            }
            FailureKind::NotAutodiscoverContent => {
                "Check that the name points at the Lync / Skype for Business web services and not at \
                 another web site or a reverse proxy's default page, and that the server honours \
                 'Accept: application/vnd.microsoft.rtc.autodiscover+xml' (a JSON answer means it \
                 ignored the Accept header)."
            }
            FailureKind::NoUserLink => {
                "Check the Autodiscover configuration for this SIP domain: the root must carry a \
                 Link token=\"User\" (or token=\"Redirect\") with an absolute https URL."
            }
            FailureKind::RedirectLoop | FailureKind::TooManyRedirects => {
                "Check the Redirect configuration of every Autodiscover server in the chain; hybrid \
                 deployments often send a domain back and forth between on-premises and online."
            }
            FailureKind::Unreachable => {
                "Check that the host name resolves from this machine, that a firewall or proxy lets \
                 HTTPS through, and that its certificate is trusted and names the host."
            }
            FailureKind::NoWebTicketUrl => {
                "Check the web services (or a reverse proxy that may strip headers): the 401 must \
                 carry X-MS-WebTicketURL. A 401 that offers only 'WWW-Authenticate: MsRtcOAuth' or \
                 'Bearer' means the server expects the OAuth (UCWA) sign-in; one that offers NTLM or \
                 Negotiate expects Windows authentication. This client implements neither."
            }
            FailureKind::UnexpectedStatus => {
                "Look at the server's log for this request; check whether a reverse proxy or load \
                 balancer answers instead of the web service."
            }
            FailureKind::MexWithoutWsFedBearer => {
                "Enable Org ID / WsFedBearer authentication on the Web Ticket service. A deployment \
                 that only offers Windows authentication (WebTicketServiceWinNegotiate) needs a \
                 domain-joined client."
            }
            FailureKind::MexWithoutIdp => {
                "Fix the Issuer Address in the WsFedBearer policy of the Web Ticket metadata: it must \
                 be the absolute https URL of the identity provider's RST2 endpoint."
            }
            FailureKind::FederatedRealm => {
                "Sign in with a managed account, or use a client that supports federated sign-in; \
                 check with the administrator which sign-in service the domain uses."
            }
            FailureKind::BadCredentials => {
                "Check the sign-in name and the password. The sign-in name is usually the UPN, which \
                 can differ from the SIP address (set it with the login option). Do not retry \
                 repeatedly: the account may get locked."
            }
            FailureKind::IdpFault => {
                "Read the identity provider's message above; check that the account is enabled and \
                 licensed and that the Web Ticket service is a relying party the identity provider \
                 knows."
            }
            FailureKind::IdpAnswerMalformed => {
                "Check that the identity provider URL points at a WS-Trust RST2 endpoint and that it \
                 issues its token as an EncryptedData element together with a Lifetime."
            }
            FailureKind::WebTicketRejected => {
                "Check that the Web Ticket service trusts this identity provider (issuer name, \
                 signing certificate), that the clocks of this machine, the identity provider and \
                 the server agree within 5 minutes, and the service's log for the reason."
            }
            FailureKind::WebTicketMalformed => {
                "Check the Web Ticket service's version and configuration; save this trace and \
                 compare its answer with the documented RSTR shape."
            }
            FailureKind::TicketRefused => {
                "Check that Autodiscover and the Web Ticket service trust the same signing \
                 certificate, that the ticket's audience matches the user URL, and that the \
                 server's clock is right."
            }
            FailureKind::UserNotFound => {
                "Check that the sign-in address is the user's SIP address, that the user is enabled \
                 for Lync / Skype for Business, and that the account has replicated to this pool."
            }
            FailureKind::NoSipPool => {
                "Check the pool's published FQDNs and ports for the access location the server \
                 reports (internal / external): each needs an fqdn without spaces and a non-zero \
                 port."
            }
            FailureKind::NoTlsDsk => {
                "Enable TLS-DSK (certificate authentication) on the registrar pool; check that the \
                 client reached the pool Autodiscover named and not an Edge or proxy that offers \
                 only NTLM."
            }
            FailureKind::SipRefused => {
                "Act on the registrar's reason quoted above: a certificate issued to another user \
                 means the cached certificate belongs to someone else (clear the certificate \
                 cache); 'not enabled' means the account is disabled for Lync / Skype for \
                 Business; a handshake or signature reason points at the client certificate's \
                 issuer, which the registrar must trust."
            }
            FailureKind::SipProtocol => {
                "Save this trace and compare the registrar's answers with sip.md: continuation \
                 401s must carry opaque and gssapi-data, the 200 OK an Expires header; a proxy or \
                 load balancer that splits one connection over several servers breaks TLS-DSK."
            }
            FailureKind::SipSignature => {
                "Check for a TLS-intercepting proxy between client and pool, and that every \
                 server of the pool signs with the security association of this connection."
            }
            FailureKind::TlsDskHandshake => {
                "Check the reason above: an untrusted or misnamed inner server certificate means \
                 the CA given for it (or the targetname) is wrong; an alert from the server means \
                 it did not accept the user certificate or the offered TLS versions and ciphers."
            }
            FailureKind::CertificateUnusable => {
                "Remove the cached certificate (or run without the cache) so a fresh one is \
                 provisioned; check this machine's clock."
            }
            FailureKind::CertificateForAnotherUser => {
                "Check that the web ticket for Certificate Provisioning was issued for this user \
                 and the service's user mapping; do not use this certificate."
            }
            FailureKind::CertprovMexWithoutPort => {
                "Check the sts-uri the registrar sends: it must be the base URL of the \
                 Certificate Provisioning service (…/CertProv/CertProvisioningService.svc), whose \
                 /mex lists the web-ticket port."
            }
            FailureKind::CertprovForeignIssuer => {
                "Check that the Certificate Provisioning service and Autodiscover belong to the \
                 same pool (same Web Ticket service URL)."
            }
            FailureKind::CertprovRejected => {
                "Read the service's message above; check that the web ticket's audience is the \
                 CertProv port URL, that the user is enabled, and the service's log."
            }
            FailureKind::CertprovMalformed => {
                "Save this trace and compare the answer with http.md §8.4."
            }
            FailureKind::KeyGeneration => {
                "Check the OpenSSL installation and that the system has entropy available."
            }
            FailureKind::Malformed(_) => {
                "Save this trace and compare the answer with the documented format; a proxy that \
                 rewrites or truncates answers can also cause this."
            }
            FailureKind::ConnectionRefused => {
                "Check that the service runs and listens on that port, and that DNS points at the \
                 right machine (an unpublished CertProv or web services host on the reverse proxy \
                 looks exactly like this)."
            }
            FailureKind::ConnectionReset => {
                "Compare with a run from another network; check firewalls and proxies between \
                 here and the server (an authenticating or SSL-inspecting proxy), and the load \
                 balancer's health checks."
            }
            FailureKind::TimedOut => {
                "Check that a firewall lets the port through (443 for web services, 5061 for \
                 SIP) and that the server is not overloaded; try again with a longer --timeout."
            }
            FailureKind::TlsVersionMismatch => {
                "Enable TLS 1.2 on the server (Schannel settings, and .NET strong crypto for the \
                 web services) — see the versions probed above; clients older than TLS 1.2 \
                 support need updates, not the other way round."
            }
            FailureKind::CertificateExpired => {
                "Renew the certificate named above and assign it (Set-CsCertificate on the pool, \
                 the reverse proxy's listener for external names); check every certificate's \
                 days to expiry in this report."
            }
            FailureKind::CertificateNotYetValid => {
                "Check this machine's clock and time zone against the server's Date shown above; \
                 if this machine is right, wait or reissue the certificate with a correct start \
                 time."
            }
            FailureKind::CertificateNameMismatch => {
                "Reissue the certificate with the missing name in its subject alternative names \
                 (lyncdiscover.<domain>, the web services and pool FQDNs, and the SIP domain); \
                 or fix DNS if it points this name at the wrong server."
            }
            FailureKind::CertificateUntrusted => {
                "Install the issuing CA's root on the client (or pass it with --ca-file), and make \
                 the server send its intermediate certificates; a root placed in the \
                 intermediate store (or the reverse) breaks the chain too."
            }
            FailureKind::ClockSkew => {
                "Synchronise this machine's clock (and the server's) with a reliable NTP source; \
                 check the time zone setting too."
            }
            FailureKind::WebTicketAuthNotOffered => {
                "Check the authentication methods of the Web Ticket service \
                 (WebTicketService.svc/WsFedBearer must accept the Org ID token anonymously at \
                 the HTTP level) and any reverse proxy rule that adds Windows authentication."
            }
            FailureKind::PoolUnavailable => {
                "Check the pool's health on the server side (Get-CsPoolFabricState, front-end \
                 services, the back-end database); the Retry-After above says when the server \
                 expects to be back."
            }
            FailureKind::UserNotSipEnabled => {
                "Check the account: Get-CsUser <address> | fl Enabled, SipAddress, RegistrarPool \
                 (lyncd: lyncd user list); a new user may not have replicated yet (User \
                 Replicator)."
            }
            FailureKind::RemoteAccessDenied => {
                "Check the external access policy assigned to the user (Get-CsExternalAccessPolicy \
                 / EnableOutsideAccess), or sign in from inside the network."
            }
            FailureKind::NotAuthorizedForAddress => {
                "Check that the sign-in name belongs to this SIP address (UPN versus SIP URI); \
                 clear a cached certificate that belongs to another user."
            }
            FailureKind::UcwaRefused => {
                "Check the UCWA / mobility web application (IIS application pool LyncUcwa, \
                 /WebTicket/oauthtoken) and that the password grant is allowed for mobile clients."
            }
        };
        let mut text = s.to_string();
        if let Some(action) = self
            .diagnostics
            .iter()
            .find_map(|d| d.known().map(|k| k.action))
        {
            text.push_str(" Server's code: ");
            text.push_str(action);
        }
        text
    }
}

impl serde::Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Failure", 8)?;
        st.serialize_field("step", &self.step)?;
        st.serialize_field("kind", self.kind.code())?;
        if let FailureKind::Malformed(what) = &self.kind {
            st.serialize_field("malformed", what)?;
        } else {
            st.skip_field("malformed")?;
        }
        st.serialize_field("expected", &self.expected)?;
        st.serialize_field("got", &self.got)?;
        st.serialize_field("explanation", &self.explanation())?;
        st.serialize_field("next_check", &self.next_check())?;
        st.serialize_field("diagnostics", &self.diagnostics)?;
        st.end()
    }
}
