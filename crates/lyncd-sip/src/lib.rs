//! SIP messages as Microsoft's SIP dialect (MS-SIPAE, MS-SIPREGE) needs them.
//!
//! The parser keeps the received bytes untouched and records offsets into them
//! (the hyper HTTP/1 approach): MS-SIPAE signs header values *exactly as sent*,
//! so a message is never re-serialised before it is signed or verified. A
//! [`Message`] is one [`bytes::Bytes`] plus those offsets, so cloning it is cheap.
//!
//! The crate is sans-IO: no sockets, no clock, no randomness. Callers feed bytes
//! to a [`Decoder`] (stream framing for TCP/TLS) or to [`Message::parse`]
//! (one complete message), and build outgoing messages with [`MessageBuilder`].
//!
//! * [`auth`] reads and writes the `WWW-Authenticate` / `Authorization` /
//!   `Authentication-Info` parameter lists (sip.md §3.2, §5.1).
//! * [`sign`] builds the MS-SIPAE signature buffer (sip.md §7.1) that the
//!   TLS-DSK / NTLM security association then MACs.
//! * [`epid_to_instance`] derives the `+sip.instance` GUID from an `epid`
//!   (MS-SIPRE, sip.md §2.1), used for endpoint binding (sip.md §5.9).

pub mod auth;
mod builder;
mod decoder;
mod instance;
mod message;
mod name_addr;
mod names;
pub mod sign;
mod syntax;

pub use builder::{MessageBuilder, reason_phrase, response_to};
pub use decoder::{Decoder, Frame};
pub use instance::epid_to_instance;
pub use message::{CSeq, FieldError, Limits, Message, ParseError, StartLine};
pub use name_addr::NameAddr;
