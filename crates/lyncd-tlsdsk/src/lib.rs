//! TLS-DSK ([MS-SIPAE]): the TLS handshake that Lync / Skype for Business tunnel through SIP
//! `gssapi-data`, the signing keys it yields, and the MACs that sign SIP messages afterwards.
//!
//! The handshake is ordinary TLS 1.0–1.2 with RSA key transport and a client certificate,
//! driven one SIP leg at a time (sip.md §5.2):
//!
//! ```text
//! client                                  server
//! ClientContext::connect  -- C1 -->       ServerContext::accept
//! AwaitingServerHello::step <-- S1 --
//!                          -- C2 -->      AwaitingClientFinish::finish
//! AwaitingServerFinish::finish <-- S2 --
//! ClientDone { keys }                     ServerDone { keys, peer }
//! ```
//!
//! Each state consumes itself, so legs cannot be replayed or taken out of order. The engine is
//! OpenSSL over an in-memory stream (sip.md §13.2–13.3, dependencies.md §2.1): no sockets, no
//! clock — `now` is an argument and is what certificate validity is judged against. Keys are the
//! RFC 5705 exporter output for label `client EAP encryption` (sip.md §5.5).
#![forbid(unsafe_code)]

// Lets the shared test support (tests/common) name this crate the same way from unit tests.
#[cfg(test)]
extern crate self as lyncd_tlsdsk;

mod client;
mod engine;
mod error;
mod keys;
#[cfg(test)]
mod prf;
pub mod records;
mod server;
mod stream;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_support;

pub use client::{
    AwaitingServerFinish, AwaitingServerHello, ClientContext, ClientDone, TlsVersion,
};
pub use engine::{CIPHER_LIST, KEY_MATERIAL_LABEL};
pub use error::TlsDskError;
pub use keys::{MacAlgorithm, REPLAY_WINDOW, ReplayError, ReplayWindow, SigningKeys};
pub use lyncd_core::{Secret, UtcTime};
pub use server::{AwaitingClientFinish, ServerContext, ServerDone};

/// The certificate the peer presented in the handshake (on the server: the user's CertProv
/// certificate), reduced to what the registrar needs to bind the SA to an AOR (sip.md §5.8).
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// The whole certificate, DER.
    pub der: Vec<u8>,
    /// Subject-alternative-name URIs beginning `sip:` (any case), exactly as written.
    pub sip_uris: Vec<String>,
    /// The subject common name, if it has one that is valid UTF-8.
    pub subject_cn: Option<String>,
    /// The serial number, lower-case hex, big-endian, no sign.
    pub serial_hex: String,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
}
