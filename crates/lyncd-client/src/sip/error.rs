//! Why a SIP session stopped, and whose fault it is.

/// Who has to act on a [`SessionError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The registrar (or something between us and it) misbehaved or refused us.
    Server,
    /// Our certificate, our configuration or the caller's use of the session.
    Client,
    /// Nobody answered in time.
    Network,
}

/// A SIP session error. Every variant ends the session; the `Display` text is meant for a user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The registrar refused a REGISTER. `warning` / `diagnostics` are the server's own words
    /// (`Warning` text and `ms-diagnostics`), verbatim (sip.md §8: 403/404/503 are fatal and
    /// their reason is shown to the user).
    #[error("the registrar refused the REGISTER with {status} {reason}{}", server_words(warning.as_deref(), diagnostics.as_deref()))]
    Refused {
        status: u16,
        reason: String,
        warning: Option<String>,
        diagnostics: Option<String>,
    },
    /// The 401 offers no TLS-DSK (only NTLM, Kerberos …), which this client does not speak.
    #[error("the registrar's 401 offers no TLS-DSK (it offers: {})", if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") })]
    NoTlsDsk { offered: Vec<String> },
    /// A certificate is needed but the challenge names no Certificate Provisioning service.
    #[error("no certificate is at hand and the TLS-DSK challenge has no sts-uri to get one from")]
    NoStsUri,
    /// A continuation 401 lacks `gssapi-data` or carries data that is not base64.
    #[error("the registrar's handshake answer is unusable: {0}")]
    BadHandshakeAnswer(String),
    /// The tunnelled TLS handshake failed on our side (the server's records, its certificate, or
    /// our certificate).
    #[error("the TLS-DSK handshake failed: {0}")]
    Handshake(String),
    /// Our certificate or key could not be loaded into TLS.
    #[error("the user certificate cannot be used: {0}")]
    Certificate(String),
    /// A final response after the security association was set up had no `rspauth`.
    #[error("the registrar's {status} answer is not signed, though a security association exists")]
    Unsigned { status: u16 },
    /// An `rspauth` did not verify with the server key of the security association.
    #[error("the registrar's {status} answer carries a signature (rspauth) that does not verify")]
    BadSignature { status: u16 },
    /// A 200 OK to REGISTER without a usable `Expires` (SIPE ignores such a 200, sip.md §6.2).
    #[error("the registrar's 200 OK has no usable Expires header")]
    NoExpires,
    /// The registrar keeps challenging: a handshake completed, yet the signed REGISTER got a new
    /// 401, more often than a retry can explain.
    #[error("the registrar keeps answering 401 after completed handshakes")]
    ChallengeLoop,
    /// A status this exchange does not expect.
    #[error("the registrar answered {status} {reason}, unexpected here")]
    UnexpectedStatus { status: u16, reason: String },
    /// No response within the transaction time limit.
    #[error("no answer from the registrar within {0} s")]
    Timeout(u32),
    /// The connection reported an error (set by the owner).
    #[error("the SIP connection failed: {0}")]
    Transport(String),
}

fn server_words(warning: Option<&str>, diagnostics: Option<&str>) -> String {
    match (warning, diagnostics) {
        (Some(w), _) => format!(": \"{w}\""),
        (None, Some(d)) => format!(" (ms-diagnostics: {d})"),
        (None, None) => String::new(),
    }
}

impl SessionError {
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::Refused { .. }
            | SessionError::NoTlsDsk { .. }
            | SessionError::NoStsUri
            | SessionError::BadHandshakeAnswer(_)
            | SessionError::Unsigned { .. }
            | SessionError::BadSignature { .. }
            | SessionError::NoExpires
            | SessionError::ChallengeLoop
            | SessionError::UnexpectedStatus { .. } => Fault::Server,
            SessionError::Handshake(_) => Fault::Server,
            SessionError::Certificate(_) => Fault::Client,
            SessionError::Timeout(_) | SessionError::Transport(_) => Fault::Network,
        }
    }

    /// The server's own words, for refusals.
    pub fn server_text(&self) -> Option<&str> {
        match self {
            SessionError::Refused {
                warning,
                diagnostics,
                ..
            } => warning.as_deref().or(diagnostics.as_deref()),
            _ => None,
        }
    }
}

/// The quoted text of a `Warning: 399 host "text"` header (RFC 3261 20.43), else the value.
pub(crate) fn warning_text(value: &str) -> String {
    match (value.find('"'), value.rfind('"')) {
        (Some(a), Some(b)) if b > a => value[a + 1..b].to_string(),
        _ => value.trim().to_string(),
    }
}
