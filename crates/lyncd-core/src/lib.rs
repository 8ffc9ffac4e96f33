//! The vocabulary every lyncd crate shares.
//!
//! Nothing here performs I/O except [`OsEntropy`], the one place that asks the operating system
//! for random bytes; protocol cores take an `&mut dyn Entropy` and a `now` so tests can pin both.
#![forbid(unsafe_code)]

mod address;
mod entropy;
mod secret;
mod timefmt;
mod urls;
mod xml;

pub use address::{AddressError, SipAddress};
pub use entropy::{Entropy, OsEntropy, SeededEntropy};
pub use secret::Secret;
pub use timefmt::{TimeError, format_iso, parse_iso};
pub use urls::{UrlError, normalize_audience};
pub use xml::{escape_xml, escape_xml_text};

/// UTC wall-clock instant. Cores never read a clock: the shell passes `now` in.
pub type UtcTime = time::OffsetDateTime;
