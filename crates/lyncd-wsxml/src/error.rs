//! Error types. Each variant names what was wrong in words an operator (or a peer) can act on.

use crate::xml::XmlError;

/// Loading a key or certificate failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the private key is not a readable RSA PKCS#8 (or PKCS#1) PEM: {0}")]
    BadPrivateKey(String),
    #[error("the certificate is not a readable X.509 PEM: {0}")]
    BadCertificate(String),
    #[error("the certificate does not carry an RSA public key (found {0})")]
    NotRsa(String),
    #[error("the private key does not belong to the certificate (their public keys differ)")]
    KeyCertMismatch,
    #[error("the RSA key is too short (about {0} bits); at least 2048 are required")]
    TooShort(usize),
}

/// Parsing a request or producing a response failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WsError {
    #[error("the message is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("the message is not a SOAP envelope (document element is {0:?})")]
    NotSoap(String),
    #[error("the message has no {0} element")]
    Missing(&'static str),
    #[error("the {what} value {value:?} is not acceptable: {why}")]
    BadValue {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the issuing parameters are not usable: {0}")]
    BadParams(String),
    #[error("signing or encrypting the token failed: {0}")]
    Crypto(String),
}

/// A security token (IdP token or web ticket) was rejected. Every variant is a distinct reason so
/// callers can log it and map it to the right fault; none of them is safe to accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the token contains a DOCTYPE or ENTITY declaration, which is never allowed")]
    Dtd,
    #[error("the token is not well-formed XML or not the expected shape: {0}")]
    Malformed(String),
    #[error("the token is encrypted for key {found:?}, but this service holds key {expected:?}")]
    UnknownKeyName { found: String, expected: String },
    #[error("the token uses algorithm {0:?}, which is not on the allow-list")]
    AlgorithmNotAllowed(String),
    #[error("the token could not be decrypted (wrong key, truncated or altered ciphertext)")]
    Undecryptable,
    #[error("the token carries no signature")]
    MissingSignature,
    #[error("the token's signature does not verify (the token was altered or is corrupt): {0}")]
    BadSignature(String),
    #[error("the token is signed by a key that is not the pinned issuer certificate")]
    UntrustedSigner,
    #[error("the token's structure allows signature wrapping and is refused: {0}")]
    SignatureWrapping(String),
    #[error("the token was issued by {found:?}, expected {expected:?}")]
    WrongIssuer { found: String, expected: String },
    #[error("the token is for audience {found:?}, expected {expected:?}")]
    WrongAudience { found: String, expected: String },
    #[error("the token is not valid before {not_before}")]
    NotYetValid { not_before: String },
    #[error("the token expired at {not_on_or_after}")]
    Expired { not_on_or_after: String },
    #[error("the token has no usable {0}")]
    MissingClaim(&'static str),
}

impl From<XmlError> for TokenError {
    fn from(e: XmlError) -> Self {
        match e {
            XmlError::TooLarge { size, limit } => TokenError::TooLarge { size, limit },
            XmlError::Dtd => TokenError::Dtd,
            other => TokenError::Malformed(other.to_string()),
        }
    }
}
