//! What the sign-in core asks the shell to do, and what the shell reports back.

use std::fmt;
use std::net::IpAddr;

use lyncd_core::{Secret, SipAddress};

/// Names one action handed out by [`crate::SignIn::poll_action`]; the completion must carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ActionId(pub u64);

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One piece of I/O for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Look up the A/AAAA records of `host`.
    Resolve { id: ActionId, host: String },
    /// Look up the SRV records of `name` (e.g. `_sipinternaltls._tcp.contoso.com`). Answer
    /// with [`Completion::SrvRecords`] (empty when the name exists without SRV data) or
    /// [`Completion::ResolveFailed`].
    ResolveSrv { id: ActionId, name: String },
    /// Probe the TLS endpoint `host:port` (SNI = `host`) before the sign-in first talks to it:
    /// which protocol versions it accepts, the certificate chain it presents and whether that
    /// chain is trusted by the trust store the shell uses for real requests. Answer with
    /// [`Completion::TlsProbed`]. The probe sends no application data.
    TlsProbe {
        id: ActionId,
        host: String,
        port: u16,
    },
    /// Perform one HTTP/1.1 request. The shell adds `Host`, `Content-Length` and its own
    /// `User-Agent`; it must not follow 3xx redirects (Lync clients do not in this flow) and must
    /// not ask for compression.
    Http { id: ActionId, request: HttpRequest },
    /// Generate an RSA key pair and a PKCS#10 request for `address` (the shell calls
    /// `lyncd_pki::new_user_key_and_csr`): key generation is randomness, so it is an input.
    /// Answer with [`Completion::KeyPair`] or [`Completion::KeyFailed`].
    GenerateKey { id: ActionId, address: SipAddress },
    /// Send `message` on the persistent SIP connection to `host:port` (TLS with SNI = `host`
    /// when `tls`, else plain TCP), opening it if needed, and return the next complete SIP
    /// message received on it as [`Completion::SipResponse`] (keep-alive CRLFs skipped), or
    /// [`Completion::TransportFailed`]. An empty `message` means: send nothing, just read the
    /// next message (the one received was not the answer the core waits for).
    Sip {
        id: ActionId,
        host: String,
        port: u16,
        tls: bool,
        message: Vec<u8>,
    },
}

impl Action {
    pub fn id(&self) -> ActionId {
        match self {
            Action::Resolve { id, .. }
            | Action::ResolveSrv { id, .. }
            | Action::TlsProbe { id, .. }
            | Action::Http { id, .. }
            | Action::GenerateKey { id, .. }
            | Action::Sip { id, .. } => *id,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names whose values are credentials; [`HttpRequest`]'s `Debug` masks them.
const SECRET_HEADERS: &[&str] = &["x-ms-webticket", "authorization", "cookie"];

/// An HTTP request. Its body may hold a password (RST2) or a bearer token (web ticket
/// request), and a header may hold the web ticket: `Debug` prints neither.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let masked = SECRET_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s));
                (n.as_str(), if masked { "***" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("<{} bytes>", b.len())),
            )
            .finish()
    }
}

/// An HTTP response as received (no redirects followed, body decoded from chunked framing).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why an HTTP request produced no response. The variants separate what an engineer checks
/// next: nothing listening (refused), something cutting the connection (reset: firewall,
/// proxy), silence (timeout), or TLS.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum TransportError {
    #[error("connection refused ({0})")]
    Refused(String),
    #[error("connection reset by the peer ({0})")]
    Reset(String),
    #[error("could not connect ({0})")]
    Connect(String),
    #[error("the TLS handshake failed ({0})")]
    Tls(String),
    #[error("no answer before the time limit")]
    Timeout,
    #[error("{0}")]
    Other(String),
}

/// The result of an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Resolved(Vec<IpAddr>),
    /// The resolver's words, e.g. "NXDOMAIN".
    ResolveFailed(String),
    Response(HttpResponse),
    TransportFailed(TransportError),
    /// The key pair of [`Action::GenerateKey`]: PKCS#8 PEM private key and DER CSR.
    KeyPair {
        key_pem: Secret<String>,
        csr_der: Vec<u8>,
    },
    /// Key generation failed (the library's words).
    KeyFailed(String),
    /// One complete SIP message, as received (for [`Action::Sip`]).
    SipResponse(Vec<u8>),
    /// The answer to [`Action::ResolveSrv`].
    SrvRecords(Vec<SrvRecord>),
    /// The answer to [`Action::TlsProbe`].
    TlsProbed(TlsReport),
}

/// One SRV record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot.
    pub target: String,
}

/// A TLS protocol version the probe tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum TlsVersion {
    #[serde(rename = "TLS 1.0")]
    Tls10,
    #[serde(rename = "TLS 1.1")]
    Tls11,
    #[serde(rename = "TLS 1.2")]
    Tls12,
    #[serde(rename = "TLS 1.3")]
    Tls13,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }
}

/// Whether the endpoint completed a handshake restricted to one version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VersionProbe {
    pub version: TlsVersion,
    pub accepted: bool,
    /// The cipher suite when accepted; else the alert or error, e.g. "alert 70 protocol version".
    pub detail: String,
}

/// What [`Action::TlsProbe`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsReport {
    /// `Err` when no TCP connection could be made at all (then nothing else is known).
    pub connect: Result<(), TransportError>,
    pub versions: Vec<VersionProbe>,
    /// The chain as the server presented it (leaf first, DER), from the newest version
    /// accepted.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
    /// Verification of the chain (without the host name, which the core checks itself)
    /// against the trust store the shell uses for real requests: `Err` carries the verifier's
    /// words, e.g. "unable to get local issuer certificate".
    pub trust: Result<(), String>,
}
