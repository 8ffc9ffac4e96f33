//! What the registrar tells its shell: one event per decision worth a log line, and the reason
//! for every refusal in words an administrator can act on.

use lyncd_sip::FieldError;
use lyncd_tlsdsk::{ReplayError, TlsDskError};

use crate::ConnId;

/// Why a request was refused. Each variant maps to one SIP status, one `ms-diagnostics` code and
/// one sentence that goes into the `Warning` header, which pidgin-sipe shows to its user.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the request is missing or has an invalid {0}")]
    Malformed(#[from] FieldError),
    #[error("this server signs users in with TLS-DSK only; the client answered with {scheme}")]
    SchemeNotOffered { scheme: String },
    #[error("gssapi-data is not valid base64")]
    BadGssapiData,
    #[error("the TLS-DSK handshake failed: {0}")]
    Handshake(#[from] TlsDskError),
    #[error("no TLS-DSK handshake is waiting under opaque {opaque:?} on this connection")]
    UnknownHandshake { opaque: String },
    #[error("the client certificate is issued to {certificate}, not to {from}")]
    CertificateForAnotherUser { certificate: String, from: String },
    #[error("{0} is not enabled for sign-in")]
    AccountNotEnabled(String),
    #[error("the Request-URI domain {request_domain} is not the domain of {from}")]
    DomainMismatch {
        request_domain: String,
        from: String,
    },
    #[error("+sip.instance {instance} is not derived from epid {epid}")]
    InstanceMismatch { instance: String, epid: String },
    #[error("realm or targetname in the Authorization header is not this registrar's")]
    WrongTarget,
    #[error("the signed Authorization header lacks {0}")]
    MissingSignatureParameter(&'static str),
    #[error("cnum {0:?} is not a decimal number")]
    BadCnum(String),
    #[error("{0}")]
    Replay(#[from] ReplayError),
    #[error("the message signature does not verify")]
    BadSignature,
    #[error("the security association belongs to {sa_user}, the request comes from {from}")]
    SaForAnotherUser { sa_user: String, from: String },
    #[error("the security association was set up on another connection")]
    WrongConnection,
    #[error("the request is not signed: sign in (REGISTER with TLS-DSK) first")]
    NotSignedIn,
}

impl Refusal {
    /// SIP status and reason phrase. Authentication failures are 403, not 401: a bare 401 would
    /// send SIPE into scheme fallback or endless handshakes (sip.md §8, §11 item 22).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::Malformed(_) => (400, "Bad Request"),
            _ => (403, "Forbidden"),
        }
    }

    /// `ms-diagnostics` code (lyncd's registrar range; see docs/diagnostics.md).
    pub fn diagnostic_code(&self) -> u32 {
        match self {
            Refusal::Malformed(_) => 1100,
            Refusal::SchemeNotOffered { .. } => 1101,
            Refusal::BadGssapiData => 1102,
            Refusal::Handshake(TlsDskError::CertificateExpired) => 1104,
            Refusal::Handshake(TlsDskError::UntrustedCertificate(_)) => 1105,
            Refusal::Handshake(TlsDskError::NoClientCertificate) => 1106,
            Refusal::Handshake(_) => 1103,
            Refusal::UnknownHandshake { .. } => 1107,
            Refusal::CertificateForAnotherUser { .. } => 1108,
            Refusal::AccountNotEnabled(_) => 1109,
            Refusal::DomainMismatch { .. } => 1110,
            Refusal::InstanceMismatch { .. } => 1111,
            Refusal::WrongTarget => 1112,
            Refusal::MissingSignatureParameter(_) | Refusal::BadCnum(_) => 1113,
            Refusal::Replay(_) => 1114,
            Refusal::BadSignature => 1115,
            Refusal::SaForAnotherUser { .. } => 1116,
            Refusal::WrongConnection => 1117,
            Refusal::NotSignedIn => 1118,
        }
    }
}

/// Decisions the shell logs (and tests assert on).
#[derive(Debug)]
pub enum Event {
    /// A REGISTER without credentials got the TLS-DSK challenge.
    Challenged { conn: ConnId, aor: String },
    /// The first handshake leg was answered.
    HandshakeStarted {
        conn: ConnId,
        aor: String,
        opaque: String,
    },
    /// The client certificate verified and keys were derived.
    HandshakeCompleted {
        conn: ConnId,
        aor: String,
        opaque: String,
        certificate_serial: String,
        protocol: &'static str,
        cipher: String,
    },
    /// A binding was created (`refreshed == false`) or renewed.
    Registered {
        conn: ConnId,
        aor: String,
        epid: String,
        expires: u32,
        refreshed: bool,
    },
    /// `Expires: 0`.
    Unregistered {
        conn: ConnId,
        aor: String,
        epid: String,
    },
    /// A binding reached its expiry without a refresh.
    BindingExpired { aor: String, epid: String },
    /// A security association reached the end of its life; the client must re-authenticate.
    SaExpired { aor: String, opaque: String },
    /// A signed request other than REGISTER was answered.
    Answered {
        conn: ConnId,
        aor: String,
        method: String,
        event: Option<String>,
        status: u16,
    },
    /// A request was refused.
    Refused {
        conn: ConnId,
        aor: Option<String>,
        method: String,
        reason: Refusal,
    },
}
