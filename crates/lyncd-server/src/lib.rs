//! The lyncd servers: the HTTP(S) shells around the sans-IO cores.
//!
//! Routing is by path, case-insensitively (as IIS does for Microsoft's servers), so every web
//! service answers on every name lyncd serves. Each service is a plain async function from the
//! request parts to a [`reply::Reply`]; `http` only moves bytes.

pub mod app;
pub mod config;
pub mod diagnostics;
pub mod dns;
pub mod faults;
pub mod health;
pub mod http;
pub mod keys;
pub mod reply;
pub mod run;
pub mod services;
pub mod sip;
pub mod tls;

pub use app::{App, Clock, SystemClock};
pub use config::{ConfigError, ServerConfig};
pub use run::{Running, StartError, start};
