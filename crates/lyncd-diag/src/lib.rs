//! Sign-in diagnostics shared by the troubleshooter (`lyncd signin`) and the servers: the
//! `ms-diagnostics` code table, certificate and clock checks, redaction of secrets, the HAR
//! trace and the self-contained HTML report with its ladder diagram. Pure functions: no I/O,
//! no clock (time is an argument).
#![forbid(unsafe_code)]

pub mod cert;
pub mod har;
pub mod msdiag;
pub mod redact;
pub mod report;
pub mod skew;
