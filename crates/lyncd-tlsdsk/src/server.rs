//! The registrar's side of the TLS-DSK handshake (sip.md §5.2 legs C1→S1, C2→S2; §5.4 server
//! states `HANDSHAKE` → `KEYS_READY`).

use std::fmt;

use openssl::pkey::{Id, PKey};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslStream, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::X509Name;

use crate::engine::{self, LegEnd, config};
use crate::records;
use crate::stream::MemoryStream;
use crate::{PeerCertificate, SigningKeys, TlsDskError, UtcTime};

/// Server side (registrar). Built once from the pool's RSA certificate + key and the CA(s) that
/// issue user certificates; cheap to clone (OpenSSL reference count) and shareable by threads.
#[derive(Clone)]
pub struct ServerContext {
    ctx: SslContext,
}

impl fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}

impl ServerContext {
    /// `cert_chain_pem`: the pool certificate first, then any intermediates (the whole
    /// Certificate message must fit one TLS record, sip.md §5.8, so keep it short).
    /// `key_pem`: its private key, which must be RSA — TLS-DSK clients such as SIPE only do RSA
    /// key transport (sip.md §5.3). `client_ca_pem`: the only CA(s) whose user certificates are
    /// accepted (the CertProv issuer); the system trust store is never consulted.
    pub fn new(
        cert_chain_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
    ) -> Result<Self, TlsDskError> {
        let chain = engine::certs_from_pem(cert_chain_pem, "server certificate chain")?;
        let key = PKey::private_key_from_pem(key_pem.as_bytes())
            .map_err(|e| config("server private key", &e))?;
        if key.id() != Id::RSA {
            return Err(TlsDskError::Config(
                "the TLS-DSK server key must be RSA: TLS-DSK clients use RSA key transport \
                 (sip.md §5.3)"
                    .to_string(),
            ));
        }
        let client_cas = engine::certs_from_pem(client_ca_pem, "client CA")?;

        let mut builder = SslContext::builder(SslMethod::tls_server())
            .map_err(|e| config("cannot create an OpenSSL context", &e))?;
        engine::common_settings(&mut builder)?;

        let mut chain = chain.into_iter();
        if let Some(leaf) = chain.next() {
            builder
                .set_certificate(&leaf)
                .map_err(|e| config("server certificate", &e))?;
        }
        for extra in chain {
            builder
                .add_extra_chain_cert(extra)
                .map_err(|e| config("server certificate chain", &e))?;
        }
        builder
            .set_private_key(&key)
            .map_err(|e| config("server private key", &e))?;
        builder
            .check_private_key()
            .map_err(|e| config("the private key does not match the server certificate", &e))?;

        // A client certificate is mandatory (sip.md §5.8): PEER alone would let a client that
        // sends an empty Certificate through.
        builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        builder
            .set_verify_cert_store(engine::trust_store(&client_cas)?)
            .map_err(|e| config("client CA store", &e))?;
        // The CA names in the CertificateRequest let a client with several certificates pick the
        // right one; SIPE ignores them (sip.md §5.3).
        let mut names = Stack::new().map_err(|e| config("client CA list", &e))?;
        for ca in &client_cas {
            let name: X509Name = ca
                .subject_name()
                .to_owned()
                .map_err(|e| config("client CA name", &e))?;
            names.push(name).map_err(|e| config("client CA list", &e))?;
        }
        builder.set_client_ca_list(names);

        Ok(ServerContext {
            ctx: builder.build(),
        })
    }

    /// Leg C1 → S1. `c1` is the decoded `gssapi-data` of the first TLS-DSK REGISTER: one
    /// ClientHello. Returns the state to keep under the new `opaque` and S1 — ServerHello,
    /// Certificate, CertificateRequest, ServerHelloDone — to send whole in the 401 (sip.md §5.2).
    ///
    /// `now` is when certificates are judged (the client certificate's validity is checked
    /// against it in [`AwaitingClientFinish::finish`]).
    pub fn accept(
        &self,
        c1: &[u8],
        now: UtcTime,
    ) -> Result<(AwaitingClientFinish, Vec<u8>), TlsDskError> {
        engine::check_leg(c1)?;
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| config("cannot create a TLS session", &e))?;
        ssl.set_accept_state();
        ssl.param_mut().set_time(now.unix_timestamp());
        let mut tls = SslStream::new(ssl, MemoryStream::default())
            .map_err(|e| config("cannot attach the memory stream", &e))?;
        match engine::drive(&mut tls, c1, true)? {
            LegEnd::WantsNextLeg(s1) if !s1.is_empty() => Ok((
                AwaitingClientFinish { tls },
                records::coalesce_handshake_records(&s1),
            )),
            LegEnd::WantsNextLeg(_) => Err(TlsDskError::NeedsMoreData),
            LegEnd::Complete(_) => Err(TlsDskError::Handshake(
                "the handshake cannot complete on the ClientHello leg".to_string(),
            )),
        }
    }
}

/// S1 was sent; waiting for C2 (Certificate, ClientKeyExchange, CertificateVerify, CCS,
/// Finished). Holds one OpenSSL session; `Send`, so it can live in a map shared by threads
/// under its `opaque` until C2 arrives.
pub struct AwaitingClientFinish {
    tls: SslStream<MemoryStream>,
}

impl fmt::Debug for AwaitingClientFinish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingClientFinish")
            .finish_non_exhaustive()
    }
}

impl AwaitingClientFinish {
    /// Leg C2 → S2. Verifies the client certificate against the client CA at the `now` given
    /// to [`ServerContext::accept`], the CertificateVerify and the Finished, then returns the
    /// keys, the client's certificate and S2 (ChangeCipherSpec + Finished, to send in a **401**,
    /// sip.md §5.2).
    pub fn finish(mut self, c2: &[u8]) -> Result<(ServerDone, Vec<u8>), TlsDskError> {
        engine::check_leg(c2)?;
        let s2 = match engine::drive(&mut self.tls, c2, true)? {
            LegEnd::Complete(s2) => s2,
            LegEnd::WantsNextLeg(_) => return Err(TlsDskError::NeedsMoreData),
        };
        let ssl = self.tls.ssl();
        let cert = ssl
            .peer_certificate()
            .ok_or(TlsDskError::NoClientCertificate)?;
        let peer = engine::peer_certificate(&cert)?;
        let outcome = engine::outcome(ssl)?;
        let done = ServerDone {
            keys: outcome.keys,
            peer,
            protocol: outcome.protocol,
            cipher: outcome.cipher,
            #[cfg(test)]
            secrets: engine::tls_secrets(ssl),
        };
        Ok((done, s2))
    }
}

/// The server's result (sip.md §5.4 `KEYS_READY`): the signing keys, who the client is, and
/// what was negotiated. The OpenSSL session is gone; only this is kept for the SA.
#[derive(Debug)]
pub struct ServerDone {
    pub keys: SigningKeys,
    /// The client's (user's) certificate; map `sip_uris` to the AOR in `From` (sip.md §5.8).
    pub peer: PeerCertificate,
    /// OpenSSL's protocol name: `"TLSv1"`, `"TLSv1.1"` or `"TLSv1.2"`.
    pub protocol: &'static str,
    /// OpenSSL's suite name, e.g. `"AES128-SHA"`.
    pub cipher: String,
    #[cfg(test)]
    pub(crate) secrets: engine::TlsSecrets,
}
