//! Key material for signing, verifying, encrypting and wrapping tokens.
//!
//! Every type here wraps a bergshamra [`Key`](bergshamra::Key) and prints only a certificate
//! thumbprint in `Debug`: bergshamra's own `Key` derives `Debug` and would print private key
//! material.

use bergshamra::keys::loader;
use bergshamra::{Key, KeysManager};
use lyncd_core::Secret;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::error::KeyError;

/// Hex of the first 8 bytes of SHA-256: short, stable identifiers for certificates and keys.
fn short_id(prefix: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// DER of the first `CERTIFICATE` block of a PEM text.
fn cert_der_from_pem(cert_pem: &str) -> Result<Vec<u8>, KeyError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = cert_pem
        .find(BEGIN)
        .ok_or_else(|| KeyError::BadCertificate("no BEGIN CERTIFICATE line".into()))?
        + BEGIN.len();
    let end = cert_pem[start..]
        .find(END)
        .ok_or_else(|| KeyError::BadCertificate("no END CERTIFICATE line".into()))?
        + start;
    crate::xml::b64_decode(&cert_pem[start..end])
        .ok_or_else(|| KeyError::BadCertificate("the base64 body does not decode".into()))
}

/// Public key of a certificate, checked to be RSA of at least 2048 bits.
fn load_cert(cert_pem: &str) -> Result<(Key, Vec<u8>), KeyError> {
    let der = cert_der_from_pem(cert_pem)?;
    let key =
        loader::load_x509_cert_der(&der).map_err(|e| KeyError::BadCertificate(e.to_string()))?;
    if key.algorithm_name() != "RSA" {
        return Err(KeyError::NotRsa(key.algorithm_name().to_string()));
    }
    let spki = key
        .to_spki_der()
        .ok_or_else(|| KeyError::BadCertificate("no public key".into()))?;
    // A DER SPKI for RSA-n is about n/8 + 38 bytes; 2048-bit keys give 294.
    let approx_bits = spki.len().saturating_sub(38) * 8;
    if approx_bits < 2000 {
        return Err(KeyError::TooShort(approx_bits));
    }
    Ok((key, der))
}

fn load_private(key_pem: &str, cert_pem: &str) -> Result<(Key, Vec<u8>), KeyError> {
    let (cert_key, der) = load_cert(cert_pem)?;
    let key = loader::load_rsa_private_pem(key_pem.as_bytes())
        .map_err(|e| KeyError::BadPrivateKey(strip_key_detail(&e.to_string())))?;
    if key.to_spki_der() != cert_key.to_spki_der() {
        return Err(KeyError::KeyCertMismatch);
    }
    // The certificate goes into KeyInfo from our own template; leaving `x509_chain` empty keeps
    // bergshamra from rewriting that KeyInfo.
    Ok((key, der))
}

/// Parser errors can quote input; for private keys keep only the first clause.
fn strip_key_detail(s: &str) -> String {
    s.split(':').take(2).collect::<Vec<_>>().join(":")
}

/// The private key and certificate a service signs its tokens with (RSA-SHA256, exclusive C14N,
/// enveloped; `KeyInfo` carries the certificate so off-line tools can verify).
#[derive(Clone)]
pub struct RsaSigningKey {
    key: Key,
    cert_der: Vec<u8>,
    cert_b64: String,
}

impl RsaSigningKey {
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let (key, cert_der) = load_private(key_pem, cert_pem)?;
        let cert_b64 = crate::xml::b64_encode(&cert_der);
        Ok(RsaSigningKey {
            key,
            cert_der,
            cert_b64,
        })
    }

    /// DER of the certificate placed in `KeyInfo`.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The matching verification key, for a service that verifies its own tickets.
    pub fn trusted_cert(&self) -> TrustedCert {
        // Reload from the certificate so only the public half lives in a verifier's key store.
        let key = loader::load_x509_cert_der(&self.cert_der).unwrap_or_else(|_| self.key.clone());
        TrustedCert {
            key,
            cert_der: self.cert_der.clone(),
        }
    }

    pub(crate) fn cert_b64(&self) -> &str {
        &self.cert_b64
    }

    pub(crate) fn manager(&self) -> KeysManager {
        let mut m = KeysManager::new();
        m.add_key(self.key.clone());
        m
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaSigningKey({}, private key ***)",
            short_id("cert:", &[&self.cert_der])
        )
    }
}

/// The pinned certificate whose key alone may sign tokens we accept. A key carried inside a
/// token is never used to verify it.
#[derive(Clone)]
pub struct TrustedCert {
    key: Key,
    cert_der: Vec<u8>,
}

impl TrustedCert {
    pub fn from_pem(cert_pem: &str) -> Result<Self, KeyError> {
        let (key, cert_der) = load_cert(cert_pem)?;
        Ok(TrustedCert { key, cert_der })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub(crate) fn manager(&self) -> KeysManager {
        let mut m = KeysManager::new();
        m.add_key(self.key.clone());
        m
    }
}

impl fmt::Debug for TrustedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedCert({})", short_id("cert:", &[&self.cert_der]))
    }
}

/// A relying party's RSA key for XML-Enc key transport (RSA-OAEP), named by a `KeyName`.
/// The default name is derived from the certificate, so both sides agree without configuration.
#[derive(Clone)]
pub struct RsaDecryptionKey {
    key: Key,
    name: String,
}

impl RsaDecryptionKey {
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let (key, der) = load_private(key_pem, cert_pem)?;
        Ok(RsaDecryptionKey {
            key,
            name: short_id("rp-", &[&der]),
        })
    }

    /// Overrides the `KeyName` (it must match the one the issuer encrypts to).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn key_name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

impl fmt::Debug for RsaDecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaDecryptionKey({}, private key ***)", self.name)
    }
}

/// The certificate of the relying party a token is encrypted to.
#[derive(Clone)]
pub struct RsaEncryptionCert {
    key: Key,
    name: String,
}

impl RsaEncryptionCert {
    pub fn from_pem(cert_pem: &str) -> Result<Self, KeyError> {
        let (key, der) = load_cert(cert_pem)?;
        Ok(RsaEncryptionCert {
            key,
            name: short_id("rp-", &[&der]),
        })
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn key_name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

impl fmt::Debug for RsaEncryptionCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaEncryptionCert({})", self.name)
    }
}

/// AES-256 key-wrap secret shared by the Web Ticket service and every relying party that needs
/// the ticket's proof key (kw-aes256). Its default `KeyName` is a one-way identifier of the key,
/// so rotating the key changes the name and old tickets are recognised as "other key".
#[derive(Clone)]
pub struct WrapKey {
    key: Secret<[u8; 32]>,
    name: String,
}

impl WrapKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let name = short_id("wk-", &[b"lyncd-wsxml wrap key id\0", &bytes]);
        WrapKey {
            key: Secret::new(bytes),
            name,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn key_name(&self) -> &str {
        &self.name
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.key.expose()
    }
}

impl fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrapKey({}, ***)", self.name)
    }
}
