//! The SIP registrar of a Skype for Business pool, as a sans-IO core.
//!
//! It answers REGISTER with the TLS-DSK challenge, runs the tunnelled TLS handshake carried in
//! `gssapi-data` (through [`lyncd_tlsdsk`]), keeps one security association (SA) per `opaque`,
//! verifies the MS-SIPAE signature of every request after the handshake, signs every response,
//! and keeps registration bindings with their expiry. It also answers the self-subscriptions and
//! SERVICE requests a client sends right after it signs in (sip.md §10).
//!
//! Like quinn-proto, it is a plain struct: the shell calls [`Registrar::handle`] with each
//! message and `now`, [`Registrar::handle_timeout`] when [`Registrar::poll_timeout`] says so,
//! [`Registrar::connection_closed`] when a connection ends, and drains
//! [`Registrar::poll_transmit`] and [`Registrar::poll_event`]. It never reads a clock, a socket
//! or the OS random generator; accounts are looked up by the shell and passed in as
//! [`Account`].
#![forbid(unsafe_code)]

pub mod bodies;
mod config;
mod events;
mod registrar;

pub use config::{REALM, RegistrarConfig};
pub use events::{Event, Refusal};
pub use registrar::{Account, Binding, ConnId, PeerNetwork, Registrar, Transmit, sender};
