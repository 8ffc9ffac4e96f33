//! Our client's side of the TLS-DSK handshake (sip.md §5.4 client states `WAIT_SERVER_HELLO` →
//! `WAIT_SERVER_FINISHED` → `ESTABLISHED`; checklist §13.5).

use std::fmt;

use openssl::pkey::PKey;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslStream, SslVerifyMode, SslVersion};

use crate::engine::{self, LegEnd, config};
use crate::stream::MemoryStream;
use crate::{SigningKeys, TlsDskError, UtcTime};

/// Highest TLS version our client offers inside TLS-DSK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.0 only — exactly what SIPE speaks and what Lync / Office 365 are known to accept
    /// (sip.md §5.7).
    Tls1_0,
    Tls1_1,
    /// TLS 1.0 to 1.2 (the default).
    Tls1_2,
}

/// Client side (our lyncd client): the CertProv user certificate and key, and optionally the
/// CA the inner server certificate must chain to.
#[derive(Clone)]
pub struct ClientContext {
    ctx: SslContext,
    verify_server: bool,
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("verify_server", &self.verify_server)
            .finish_non_exhaustive()
    }
}

impl ClientContext {
    /// Offers TLS 1.0–1.2 with the AES-CBC-SHA suites and presents `cert_pem` / `key_pem`.
    ///
    /// `server_ca_pem`: `None` accepts any inner server certificate, as SIPE does (it relies on
    /// the outer TLS, sip.md §5.3); `Some` requires the chain to verify and the certificate to
    /// match the targetname (sip.md §13.5 recommends it).
    pub fn new(
        cert_pem: &str,
        key_pem: &str,
        server_ca_pem: Option<&str>,
    ) -> Result<Self, TlsDskError> {
        Self::with_max_version(cert_pem, key_pem, server_ca_pem, TlsVersion::Tls1_2)
    }

    /// As [`Self::new`], offering at most `max` (e.g. [`TlsVersion::Tls1_0`] to behave like
    /// SIPE).
    pub fn with_max_version(
        cert_pem: &str,
        key_pem: &str,
        server_ca_pem: Option<&str>,
        max: TlsVersion,
    ) -> Result<Self, TlsDskError> {
        let cert = engine::certs_from_pem(cert_pem, "client certificate")?;
        let key = PKey::private_key_from_pem(key_pem.as_bytes())
            .map_err(|e| config("client private key", &e))?;

        let mut builder = SslContext::builder(SslMethod::tls_client())
            .map_err(|e| config("cannot create an OpenSSL context", &e))?;
        engine::common_settings(&mut builder)?;
        let max = match max {
            TlsVersion::Tls1_0 => SslVersion::TLS1,
            TlsVersion::Tls1_1 => SslVersion::TLS1_1,
            TlsVersion::Tls1_2 => SslVersion::TLS1_2,
        };
        builder
            .set_max_proto_version(Some(max))
            .map_err(|e| config("cannot cap the TLS version", &e))?;

        let mut cert = cert.into_iter();
        if let Some(leaf) = cert.next() {
            builder
                .set_certificate(&leaf)
                .map_err(|e| config("client certificate", &e))?;
        }
        for extra in cert {
            builder
                .add_extra_chain_cert(extra)
                .map_err(|e| config("client certificate chain", &e))?;
        }
        builder
            .set_private_key(&key)
            .map_err(|e| config("client private key", &e))?;
        builder
            .check_private_key()
            .map_err(|e| config("the private key does not match the client certificate", &e))?;

        let verify_server = match server_ca_pem {
            Some(pem) => {
                let cas = engine::certs_from_pem(pem, "server CA")?;
                builder.set_verify(SslVerifyMode::PEER);
                builder
                    .set_verify_cert_store(engine::trust_store(&cas)?)
                    .map_err(|e| config("server CA store", &e))?;
                true
            }
            None => {
                builder.set_verify(SslVerifyMode::NONE);
                false
            }
        };
        Ok(ClientContext {
            ctx: builder.build(),
            verify_server,
        })
    }

    /// Starts a handshake with the registrar named `targetname` (the challenge's `targetname`)
    /// and returns C1 (one ClientHello) for the first TLS-DSK REGISTER. With a server CA, the
    /// server certificate must also match `targetname`; certificates are judged at `now`.
    pub fn connect(
        &self,
        targetname: &str,
        now: UtcTime,
    ) -> Result<(AwaitingServerHello, Vec<u8>), TlsDskError> {
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| config("cannot create a TLS session", &e))?;
        ssl.set_connect_state();
        let param = ssl.param_mut();
        param.set_time(now.unix_timestamp());
        if self.verify_server {
            param
                .set_host(targetname)
                .map_err(|e| config("targetname is not a usable host name", &e))?;
        }
        let mut tls = SslStream::new(ssl, MemoryStream::default())
            .map_err(|e| config("cannot attach the memory stream", &e))?;
        match engine::drive(&mut tls, &[], self.verify_server)? {
            LegEnd::WantsNextLeg(c1) if !c1.is_empty() => Ok((
                AwaitingServerHello {
                    tls,
                    verify_server: self.verify_server,
                },
                c1,
            )),
            _ => Err(TlsDskError::Handshake(
                "OpenSSL produced no ClientHello".to_string(),
            )),
        }
    }
}

/// C1 was sent; waiting for S1.
pub struct AwaitingServerHello {
    tls: SslStream<MemoryStream>,
    verify_server: bool,
}

impl fmt::Debug for AwaitingServerHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingServerHello")
            .finish_non_exhaustive()
    }
}

impl AwaitingServerHello {
    /// Leg S1 → C2: takes ServerHello … ServerHelloDone and returns Certificate,
    /// ClientKeyExchange, CertificateVerify, ChangeCipherSpec and Finished for the next REGISTER.
    pub fn step(mut self, s1: &[u8]) -> Result<(AwaitingServerFinish, Vec<u8>), TlsDskError> {
        engine::check_leg(s1)?;
        match engine::drive(&mut self.tls, s1, self.verify_server)? {
            LegEnd::WantsNextLeg(c2) if !c2.is_empty() => Ok((
                AwaitingServerFinish {
                    tls: self.tls,
                    verify_server: self.verify_server,
                },
                c2,
            )),
            LegEnd::WantsNextLeg(_) => Err(TlsDskError::NeedsMoreData),
            LegEnd::Complete(_) => Err(TlsDskError::Handshake(
                "the server tried to end the handshake without our certificate".to_string(),
            )),
        }
    }
}

/// C2 was sent; waiting for S2 (ChangeCipherSpec + Finished).
pub struct AwaitingServerFinish {
    tls: SslStream<MemoryStream>,
    verify_server: bool,
}

impl fmt::Debug for AwaitingServerFinish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingServerFinish")
            .finish_non_exhaustive()
    }
}

impl AwaitingServerFinish {
    /// Leg S2: unlike SIPE, verifies the server Finished (OpenSSL does), then derives the keys.
    pub fn finish(mut self, s2: &[u8]) -> Result<ClientDone, TlsDskError> {
        engine::check_leg(s2)?;
        match engine::drive(&mut self.tls, s2, self.verify_server)? {
            LegEnd::Complete(_) => {}
            LegEnd::WantsNextLeg(_) => return Err(TlsDskError::NeedsMoreData),
        }
        let ssl = self.tls.ssl();
        let outcome = engine::outcome(ssl)?;
        Ok(ClientDone {
            keys: outcome.keys,
            protocol: outcome.protocol,
            cipher: outcome.cipher,
            #[cfg(test)]
            secrets: engine::tls_secrets(ssl),
        })
    }
}

/// The client's result (sip.md §5.4 `ESTABLISHED`): sign C3 and everything after with
/// `keys.sign_client`, verify `rspauth` with `keys.verify_server`.
#[derive(Debug)]
pub struct ClientDone {
    pub keys: SigningKeys,
    /// OpenSSL's protocol name: `"TLSv1"`, `"TLSv1.1"` or `"TLSv1.2"`.
    pub protocol: &'static str,
    /// OpenSSL's suite name, e.g. `"AES128-SHA"`.
    pub cipher: String,
    #[cfg(test)]
    pub(crate) secrets: engine::TlsSecrets,
}
