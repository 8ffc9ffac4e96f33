//! What an operator decides about the registrar.

use time::Duration;

/// `realm` of every MS-SIPAE exchange: Microsoft's servers and examples always use this text and
/// clients echo it into the signature buffer (sip.md §3.1).
pub const REALM: &str = "SIP Communications Service";

#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The pool FQDN: `targetname` of the TLS-DSK challenge. It must stay byte-identical across
    /// challenges, because SIPE caches its user certificate under it (sip.md §4).
    pub targetname: String,
    pub realm: String,
    /// Base URL of Certificate Provisioning, sent as `sts-uri` (the client appends `/mex`).
    pub sts_uri: String,
    /// Registration lifetime granted when the client asks for none (SIPE never does).
    pub registration_expires: u32,
    /// Upper bound for a lifetime a client asks for.
    pub max_registration_expires: u32,
    /// Advertised in `ms-keep-alive: … timeout=`; clients send CRLFCRLF after this much silence.
    pub keepalive_timeout: u32,
    /// Lifetime of a self-subscription (roaming contacts, roaming self).
    pub subscription_expires: u32,
    /// How long a half-done TLS-DSK handshake is kept waiting for its second leg.
    pub handshake_timeout: Duration,
    /// Cap on a security association's life: [MS-SIPAE] 3.2.2 says 8 hours at most.
    pub max_sa_lifetime: Duration,
    /// `Server:` header. SIPE reads `RTC/<major>` (≥ 6 means Skype for Business).
    pub server_header: String,
}

impl RegistrarConfig {
    pub fn new(targetname: impl Into<String>, sts_uri: impl Into<String>) -> Self {
        RegistrarConfig {
            targetname: targetname.into(),
            realm: REALM.to_string(),
            sts_uri: sts_uri.into(),
            registration_expires: 7200,
            max_registration_expires: 7200,
            keepalive_timeout: 300,
            subscription_expires: 3600,
            handshake_timeout: Duration::seconds(60),
            max_sa_lifetime: Duration::hours(8),
            server_header: format!("RTC/6.0 lyncd/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}
