//! What a sign-in starts from and what it ends with.

use crate::failure::Failure;
use crate::sip::UserCertificate;
use lyncd_core::{Secret, SipAddress, UtcTime};
use lyncd_discover::SipEndpoint;

/// Everything a sign-in needs from the user and the client installation.
#[derive(Clone, Debug)]
pub struct SignInConfig {
    /// The sign-in (SIP) address, `alice@contoso.com`.
    pub address: SipAddress,
    /// The name the identity provider knows (often the UPN); defaults to the address.
    pub login: Option<String>,
    pub password: Secret<String>,
    pub discovery: Discovery,
    /// Stable per client installation (the `Context` of the web ticket request and, later, the
    /// certificate request's `DeviceId`), UUID-shaped; the caller provides and keeps it. The
    /// SIP `epid` (and so `+sip.instance`) is derived from it.
    pub endpoint_id: String,
    /// Go on after the web half: REGISTER, Certificate Provisioning, TLS-DSK, signed REGISTER.
    /// `false` stops at [`Outcome::Discovered`].
    pub sip: bool,
    /// Certificates from earlier sign-ins (cached by the shell). The one for the pool's name
    /// (the registrar's `targetname`, as SIPE keys its cache) is used if it is still valid for
    /// another hour when the registrar challenges (sip.md §4).
    pub certificates: Vec<CachedCertificate>,
    /// The CA (PEM) the inner TLS-DSK server certificate must chain to, and match the
    /// targetname. `None` accepts any, as SIPE does (it relies on the outer TLS).
    pub sip_server_ca: Option<String>,
    /// After the signed 200 OK, send one signed re-REGISTER (proves the refresh path).
    pub refresh: bool,
    /// At the end, sign out with `Expires: 0`.
    pub sign_out: bool,
    /// The troubleshooter's extra checks (off by default: a plain client does not need them).
    pub checks: Checks,
    /// After the user's settings, also try the mobile (UCWA) OAuth password grant at the
    /// `MsRtcOAuth` URL of the Autodiscover challenge. Uses the password once more.
    pub ucwa: bool,
}

/// Checks a troubleshooting run adds to the sign-in itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// Probe every TLS endpoint before first use (versions, chain, names, expiry).
    pub tls: bool,
    /// Look up the SIP SRV records and A-record fallbacks (DNS discovery only).
    pub sip_dns: bool,
    /// Compare this machine's clock with every `Date` header.
    pub clock: bool,
}

impl Checks {
    pub fn all() -> Self {
        Checks {
            tls: true,
            sip_dns: true,
            clock: true,
        }
    }
}

impl SignInConfig {
    /// The usual configuration: the whole sign-in, one refresh, no sign-out, no cached
    /// certificate, any inner server certificate.
    pub fn new(
        address: SipAddress,
        password: Secret<String>,
        discovery: Discovery,
        endpoint_id: impl Into<String>,
    ) -> Self {
        SignInConfig {
            address,
            login: None,
            password,
            discovery,
            endpoint_id: endpoint_id.into(),
            sip: true,
            certificates: Vec::new(),
            sip_server_ca: None,
            refresh: true,
            sign_out: false,
            checks: Checks::default(),
            ucwa: false,
        }
    }
}

/// A user certificate and its key as the shell cached them.
#[derive(Clone, Debug)]
pub struct CachedCertificate {
    /// The registrar `targetname` it was used with.
    pub targetname: String,
    pub cert_pem: String,
    pub key_pem: Secret<String>,
}

/// How to find the Autodiscover service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// `lyncdiscoverinternal.<domain>` then `lyncdiscover.<domain>`, each https then http, on
    /// these ports.
    Dns { https_port: u16, http_port: u16 },
    /// Skip DNS: `GET https://host:port/?sipuri=…` directly (the Autodiscover root of that
    /// server).
    Server { host: String, port: u16 },
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::Dns {
            https_port: 443,
            http_port: 80,
        }
    }
}

/// How a sign-in ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The web half is done: the SIP pool is known and a web ticket is in hand (only when
    /// [`SignInConfig::sip`] is off).
    Discovered(Discovered),
    /// Registered at the SIP pool: the registrar's signed 200 OK verified.
    SignedIn(Box<SignedIn>),
    Failed(Failure),
}

impl Outcome {
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(f) => Some(f),
            _ => None,
        }
    }

    pub fn discovered(&self) -> Option<&Discovered> {
        match self {
            Outcome::Discovered(d) => Some(d),
            Outcome::SignedIn(s) => Some(&s.discovered),
            Outcome::Failed(_) => None,
        }
    }

    pub fn signed_in(&self) -> Option<&SignedIn> {
        match self {
            Outcome::SignedIn(s) => Some(s),
            _ => None,
        }
    }
}

/// A complete sign-in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub discovered: Discovered,
    /// The SIP access point registered at.
    pub registrar: SipEndpoint,
    /// The certificate TLS-DSK used (with its key, for the shell's cache).
    pub certificate: UserCertificate,
    /// The certificate came from the cache (no CertProv this time).
    pub certificate_from_cache: bool,
    /// Seconds granted by the last 200 OK (0 after sign-out).
    pub expires: u32,
    pub gruu: Option<String>,
    /// Inner TLS-DSK protocol and cipher suite.
    pub protocol: String,
    pub cipher: String,
    pub targetname: String,
    pub refreshed: bool,
    pub signed_out: bool,
}

/// The result of the web half of a sign-in.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// SIP access points, in the order a client should try them.
    pub pool: Vec<SipEndpoint>,
    /// The Autodiscover user URL, byte-exact as the server wrote it.
    pub user_url: String,
    /// The Web Ticket service base URL (no trailing `/`).
    pub webticket_url: String,
    /// The identity provider's RST2 endpoint that issued the token.
    pub idp_url: String,
    /// The web ticket for the user URL.
    pub web_ticket: WebTicket,
}

/// A web ticket (SAML 1.1 assertion issued by the Web Ticket service) and its proof key.
#[derive(Clone, Debug)]
pub struct WebTicket {
    /// The `Assertion` element exactly as cut out of the answer (presented base64-encoded).
    pub assertion: Secret<String>,
    pub assertion_id: String,
    pub expires: UtcTime,
    /// `P_SHA1(client entropy, server entropy)`, 32 bytes: signs proof-of-possession requests.
    pub proof_key: Secret<Vec<u8>>,
    /// The `Lifetime` contents of the answer, verbatim: the `wsu:Timestamp` a proof signs
    /// (http.md §8.3).
    pub lifetime: String,
}
