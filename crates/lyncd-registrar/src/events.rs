//! What the registrar tells its shell: one event per decision worth a log line, and the reason
//! for every refusal in words an administrator can act on.

use lyncd_diag::msdiag;
use lyncd_sip::FieldError;
use lyncd_tlsdsk::{ReplayError, TlsDskError};

use crate::ConnId;

/// `Retry-After` when the registrar's database is unavailable.
pub const RETRY_AFTER_SECS: u32 = 10;

/// Why a request was refused. Each variant maps to one SIP status, one diagnostic code (sent in
/// `ms-diagnostics`, or `ms-diagnostics-public` for the codes Microsoft sends publicly) and one
/// sentence that goes into the `Warning` header, which pidgin-sipe shows to its user.
///
/// Codes are Microsoft's wherever one means the same thing ([MS-OCER]: 1000, 1003, 1013, 4003,
/// 4004, 4005, 4011, 4012), so tools that know Lync read lyncd's refusals correctly; the rest
/// are lyncd's own, in the private block 64000–64099 of [`lyncd_diag::msdiag`].
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
    /// The store has no such user (after the handshake proved the certificate: no enumeration).
    #[error("{0} is not a user of this deployment")]
    UnknownUser(String),
    /// The account is disabled (`lyncd user disable`).
    #[error("{0} is not enabled for sign-in")]
    AccountNotEnabled(String),
    /// The account exists and is enabled, but not for SIP.
    #[error("{0} is not enabled for SIP")]
    NotSipEnabled(String),
    /// The account may sign in only from the internal networks, and this connection is not.
    #[error("{0} is not enabled for remote access: sign in from the internal network")]
    RemoteAccessDenied(String),
    #[error("the From header has no epid: every endpoint must name itself")]
    EpidMissing,
    #[error("epid {0:?} is longer than 16 characters")]
    EpidTooLong(String),
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
    /// The registrar's database is unreachable or read-only: the account could not be looked
    /// up, or the registration could not be stored, so nothing is acknowledged. (The cause,
    /// which may name internal hosts, goes to the shell's log, not to the client.)
    #[error(
        "the registrar cannot use its database right now; nothing was registered, try again shortly"
    )]
    DatabaseUnavailable,
}

impl Refusal {
    /// SIP status and reason phrase. Authentication failures are 403, not 401: a bare 401 would
    /// send SIPE into scheme fallback or endless handshakes (sip.md §8, §11 item 22). An
    /// address that is no SIP user here is 404, as Lync answers (Test-CsRegistration shows
    /// "404, Not Found" with 4005).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::Malformed(_) | Refusal::EpidMissing | Refusal::EpidTooLong(_) => {
                (400, "Bad Request")
            }
            Refusal::UnknownUser(_) | Refusal::AccountNotEnabled(_) | Refusal::NotSipEnabled(_) => {
                (404, "Not Found")
            }
            Refusal::Handshake(TlsDskError::Config(_)) => (500, "Server Internal Error"),
            Refusal::DatabaseUnavailable => (503, "Service Unavailable"),
            _ => (403, "Forbidden"),
        }
    }

    /// The diagnostic code ([`lyncd_diag::msdiag`] has its reason text and meaning).
    pub fn diagnostic_code(&self) -> u32 {
        match self {
            // The tunnelled TLS handshake did not complete.
            Refusal::BadGssapiData
            | Refusal::UnknownHandshake { .. }
            | Refusal::Handshake(
                TlsDskError::NotTlsRecords
                | TlsDskError::NeedsMoreData
                | TlsDskError::NoClientCertificate
                | TlsDskError::UntrustedCertificate(_)
                | TlsDskError::Handshake(_)
                | TlsDskError::UnsupportedSuite(_),
            ) => 1000,
            // lyncd's own TLS-DSK setup is broken: not the client's fault.
            Refusal::Handshake(TlsDskError::Config(_)) => 0,
            // The certificate's validity does not contain the registrar's clock: one clock is
            // off, or the client kept the certificate past its end.
            Refusal::Handshake(
                TlsDskError::CertificateExpired | TlsDskError::CertificateNotYetValid,
            ) => 1013,
            Refusal::UnknownUser(_) => 1003,
            Refusal::AccountNotEnabled(_) | Refusal::NotSipEnabled(_) => 4005,
            Refusal::RemoteAccessDenied(_) => 4003,
            Refusal::CertificateForAnotherUser { .. } | Refusal::SaForAnotherUser { .. } => 4004,
            Refusal::EpidMissing => 4011,
            Refusal::EpidTooLong(_) => 4012,
            Refusal::Malformed(_) => 64000,
            Refusal::SchemeNotOffered { .. } => 64001,
            Refusal::WrongTarget => 64002,
            Refusal::DomainMismatch { .. } => 64003,
            Refusal::InstanceMismatch { .. } => 64004,
            Refusal::MissingSignatureParameter(_) | Refusal::BadCnum(_) => 64005,
            Refusal::Replay(_) => 64006,
            Refusal::BadSignature => 64007,
            Refusal::WrongConnection => 64008,
            Refusal::NotSignedIn => 64009,
            Refusal::DatabaseUnavailable => 64010,
        }
    }

    /// Seconds the client should wait before retrying (`Retry-After`), for refusals that are
    /// the server's passing trouble.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Refusal::DatabaseUnavailable => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// `ms-diagnostics-public` for the codes Microsoft sends publicly (4003, 4004: the client
    /// outside the edge must still learn why), else `ms-diagnostics`.
    pub fn diagnostic_header(&self) -> &'static str {
        msdiag::header_for(self.diagnostic_code()).name()
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
