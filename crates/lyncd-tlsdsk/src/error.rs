//! What can go wrong in a TLS-DSK handshake, phrased so the registrar can answer the peer (or the
//! client can tell its user) what to fix.

/// A failed TLS-DSK handshake leg.
///
/// Every variant is final for the security association: the state that produced it was consumed,
/// and the caller starts over with a fresh challenge (sip.md §5.4, `EXPIRED` → `NONE`).
#[derive(Debug, thiserror::Error)]
pub enum TlsDskError {
    /// The `gssapi-data` did not decode to a sequence of whole TLS records (sip.md §5.2: each leg
    /// carries complete records, never a fragment). Checked before OpenSSL sees a byte.
    #[error("the gssapi-data is not a sequence of whole TLS records")]
    NotTlsRecords,

    /// The leg ended in the middle of a handshake flight. TLS-DSK never splits a flight over
    /// several SIP messages (sip.md §5.2), so the peer sent an incomplete one; waiting would only
    /// hold state for a message that will not come.
    #[error("the peer's TLS flight is incomplete: one leg must carry the whole flight")]
    NeedsMoreData,

    /// The client sent no certificate. TLS-DSK authenticates the user by the CertProv
    /// certificate (sip.md §4, §5.8), so the client must provision one first.
    #[error("the client sent no certificate; a CertProv user certificate is required")]
    NoClientCertificate,

    /// The peer's certificate does not chain to a trusted CA (or, on the client, does not match
    /// the targetname).
    #[error("the peer's certificate is not trusted: {0}")]
    UntrustedCertificate(String),

    /// The peer's certificate expired before the `now` given to the handshake.
    #[error("the peer's certificate has expired")]
    CertificateExpired,

    /// The peer's certificate becomes valid only after the `now` given to the handshake (clock
    /// skew, or a certificate issued for the future).
    #[error("the peer's certificate is not valid yet")]
    CertificateNotYetValid,

    /// The TLS handshake failed: an alert from the peer or a protocol error found by OpenSSL.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),

    /// The negotiated cipher suite has no TLS-DSK signature MAC (sip.md §5.6 knows only the
    /// suites whose record MAC is SHA-1 or MD5).
    #[error("cipher suite {0} has no TLS-DSK signature MAC (need a *_SHA or *_MD5 suite)")]
    UnsupportedSuite(String),

    /// Our own configuration is unusable: bad PEM, key not matching the certificate, OpenSSL
    /// refusing a setting.
    #[error("TLS-DSK configuration: {0}")]
    Config(String),
}

/// The reasons in an OpenSSL error stack, joined; OpenSSL's own Display adds file/line noise.
pub(crate) fn reasons(stack: &openssl::error::ErrorStack) -> String {
    let parts: Vec<String> = stack
        .errors()
        .iter()
        .map(|e| e.reason().map_or_else(|| e.to_string(), |r| r.to_string()))
        .collect();
    if parts.is_empty() {
        "unknown OpenSSL error".to_string()
    } else {
        parts.join("; ")
    }
}
