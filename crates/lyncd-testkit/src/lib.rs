//! Test support for lyncd; a dev-dependency only, never shipped.
//!
//! - [`pg`]: a fresh, uniquely named PostgreSQL database per test on the server named by
//!   `LYNCD_TEST_PG` (started by `scripts/test.sh`, or by hand with
//!   `eval "$(scripts/pg.sh start)"`), dropped again when the test ends.
//! - [`proxy`]: a loopback TCP forwarder that can be switched down and up, to make "the
//!   database goes away mid-run" without stopping the shared server.
//!
//! Helpers panic with a descriptive message instead of returning errors: they run in tests.
#![forbid(unsafe_code)]

pub mod pg;
pub mod proxy;

pub use pg::{TestDb, set_read_only, url_via};
pub use proxy::TcpProxy;
