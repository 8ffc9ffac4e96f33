//! The client side of a Lync / Skype for Business sign-in, as a sans-IO state machine that
//! explains every step.
//!
//! [`SignIn`] walks the web half of a sign-in exactly as pidgin-sipe does (see
//! `protocol/http.md` §1–§7): Autodiscover discovery and redirects, the 401 challenge naming the
//! Web Ticket service, its metadata, realm discovery and the password at the identity provider,
//! the web ticket, and the user's settings with the SIP pool. It then signs in at the pool
//! (`protocol/sip.md`, http.md §8): REGISTER and its TLS-DSK challenge, Certificate
//! Provisioning when no certificate is valid for another hour, the tunnelled TLS-DSK handshake,
//! the signed REGISTER whose 200 OK must carry a valid `rspauth`, one signed refresh and, when
//! asked, sign-out; the registration itself is a [`sip::SipSession`], usable on its own. The
//! shell performs the [`Action`]s (DNS lookups, HTTP requests, key generation, SIP messages on
//! one connection) and feeds back [`Completion`]s; the core never
//! touches a socket, a clock or a global random number generator. Every lookup and request
//! produces one [`TraceEvent`]; a failed sign-in ends with a [`Failure`] that says what was
//! expected, what came back, what it means and what to check next.
//!
//! ```no_run
//! # use lyncd_client::*;
//! # use lyncd_core::{OsEntropy, SipAddress};
//! # fn perform(_: &Action) -> Completion { unimplemented!() }
//! let now = time::OffsetDateTime::now_utc();
//! let mut signin = SignIn::new(
//!     SignInConfig::new(
//!         SipAddress::parse("alice@contoso.com").unwrap(),
//!         "secret".into(),
//!         Discovery::Dns { https_port: 443, http_port: 80 },
//!         "8ca50061-9276-524f-a9b4-14011a2c5105",
//!     ),
//!     now,
//! );
//! while let Some(action) = signin.poll_action(time::OffsetDateTime::now_utc()) {
//!     let completion = perform(&action);
//!     signin.handle(time::OffsetDateTime::now_utc(), action.id(), completion, &mut OsEntropy);
//!     while let Some(event) = signin.poll_trace() {
//!         println!("{:<24} {}", event.step.title(), event.detail);
//!     }
//! }
//! match signin.outcome() {
//!     Some(Outcome::SignedIn(s)) => println!("registered, GRUU {:?}", s.gruu),
//!     Some(Outcome::Discovered(d)) => println!("SIP pool: {:?}", d.pool),
//!     Some(Outcome::Failed(f)) => println!("{}\nNext: {}", f.explanation(), f.next_check()),
//!     None => unreachable!("no action left means finished"),
//! }
//! ```
#![forbid(unsafe_code)]

mod checks;
mod failure;
mod io;
mod model;
mod psha1;
pub mod raw;
mod signin;
pub mod sip;
pub mod soap;
mod trace;

pub use failure::{Failure, FailureKind};
pub use io::{
    Action, ActionId, Completion, HttpRequest, HttpResponse, Method, SrvRecord, TlsReport,
    TlsVersion, TransportError, VersionProbe,
};
pub use model::{
    CachedCertificate, Checks, Discovered, Discovery, Outcome, SignInConfig, SignedIn, WebTicket,
};
pub use psha1::{hmac_sha1_sign, psha1};
pub use raw::extract_raw;
pub use signin::{AUTODISCOVER_ACCEPT, DEFAULT_RST2_URL, MAX_REDIRECTS, SignIn};
pub use trace::{DnsLookup, Evidence, Step, TlsEvidence, TraceEvent};

pub use lyncd_diag;

pub use lyncd_discover::SipEndpoint;
