use lyncd_core::UtcTime;

/// Everything that can go wrong while creating, loading or using the certificate authority.
///
/// Each message names the input that was wrong and, where it helps, what would be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("could not generate a new {what} key: {source}")]
    KeyGeneration {
        what: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
    #[error(
        "the common name {0:?} cannot be used: it must be 1 to 64 characters without control characters"
    )]
    BadCommonName(String),
    #[error("a server certificate needs at least one DNS name or IP address")]
    NoNames,
    #[error(
        "{0:?} is neither a DNS name (letters, digits and '-' in dot-separated labels, optionally \
         starting with '*.') nor an IP address"
    )]
    BadName(String),
    #[error("the certificate validity must be positive, not {0}")]
    BadValidity(time::Duration),
    #[error(
        "the CA certificate is not valid at {now}: it is valid from {not_before} to {not_after}; \
         create or load a CA that covers this time"
    )]
    CaNotValidAt {
        now: UtcTime,
        not_before: UtcTime,
        not_after: UtcTime,
    },
    #[error("the CA certificate PEM could not be read: {0}")]
    BadCertificate(String),
    #[error("the CA private key PEM could not be read: {0}")]
    BadKey(String),
    #[error(
        "the CA certificate is not a certificate authority (it lacks basicConstraints CA:TRUE)"
    )]
    NotACa,
    #[error("the private key does not belong to the CA certificate (their public keys differ)")]
    KeyMismatch,
    #[error("the CA key type {0} is not supported; use an RSA, ECDSA P-256 or ECDSA P-384 key")]
    UnsupportedKey(String),
    #[error("could not build or sign the certificate: {0}")]
    Signing(#[from] rcgen::Error),
    #[error("the random number generator failed: {0}")]
    Randomness(#[source] openssl::error::ErrorStack),
    #[error("could not encode a key or certificate: {0}")]
    Encoding(#[source] openssl::error::ErrorStack),
    #[error(
        "the certificate request is not a readable PKCS#10 DER: {0}; send the CSR base64-encoded \
         DER (version 0, or version 2 as pidgin-sipe writes it)"
    )]
    CsrMalformed(String),
    #[error(
        "the certificate request's signature does not verify with its own public key (the request \
         was altered, or signed with a different key than the one it carries)"
    )]
    CsrSignatureInvalid,
    #[error(
        "the certificate request is signed with {0}; only sha1WithRSAEncryption and \
         sha256/384/512WithRSAEncryption are accepted"
    )]
    CsrAlgorithmNotAllowed(String),
    #[error("the certificate request's RSA key has {bits} bits; at least 2048 are required")]
    CsrKeyTooWeak { bits: usize },
    #[error(
        "the certificate request's key is not an RSA key; user certificates need RSA-2048 or larger"
    )]
    CsrKeyNotRsa,
    #[error("the certificate could not be read: {0}")]
    BadUserCertificate(String),
    #[error("the user certificate is not acceptable: {0}")]
    UserCertNotTrusted(String),
}
