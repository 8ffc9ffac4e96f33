//! lyncd's certificate authority.
//!
//! One [`CertificateAuthority`] (RSA-2048, sha256WithRSA) issues:
//!
//! * TLS server certificates for the web services and the SIP listener
//!   ([`CertificateAuthority::issue_server_cert`], ECDSA P-256 leaf keys: fast to make, and the
//!   rustls side of lyncd is happy with them);
//! * RSA service keys for XML-DSig / XML-Enc — identity-provider signing, Web Ticket signing
//!   and encryption ([`CertificateAuthority::issue_signing_cert`]);
//! * TLS-DSK user certificates from a client's CSR for the Certificate Provisioning service
//!   ([`CertificateAuthority::issue_user_cert`]), with the client's side in
//!   [`new_user_key_and_csr`] and [`user_cert_info`].
//!
//! Time is always an argument (`now`); nothing here reads a clock. Key material and serial
//! numbers come from OpenSSL's and aws-lc's CSPRNGs: certificates must be unpredictable, so there
//! is deliberately no seeded variant.
#![forbid(unsafe_code)]

mod error;
mod names;
mod user;

use std::fmt;

use lyncd_core::{Secret, UtcTime};
use openssl::pkey::{Id, PKey, Private};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SubjectPublicKeyInfo,
};
use time::{Duration, UtcOffset};

pub use error::PkiError;
use names::{ServerName, check_common_name};
pub use user::{
    IssuedUserCert, MIN_USER_RSA_BITS, UserCertInfo, new_user_key_and_csr, public_key_der_of,
    user_cert_info, verify_user_cert,
};

/// How long a freshly generated CA is valid: ten years (3 652 days covers the leap days).
pub const CA_VALIDITY: Duration = Duration::days(3652);

/// Issued certificates start this long before `now`, so a client whose clock runs behind the
/// server's (by up to this much) does not reject a certificate made a moment ago. Public CAs
/// back-date by an hour or more for the same reason.
pub const BACKDATE: Duration = Duration::hours(1);

/// RSA modulus size for the CA and for service signing keys.
const RSA_BITS: u32 = 2048;

/// Bytes of randomness in every serial number (RFC 5280 allows up to 20 octets; CA/B Forum
/// asks for at least 64 random bits).
const SERIAL_BYTES: usize = 16;

/// A certificate and its private key, as handed to TLS listeners and XML-security code.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8, `-----BEGIN PRIVATE KEY-----`.
    pub key_pem: Secret<String>,
    /// PKCS#8 DER.
    pub key_der: Secret<Vec<u8>>,
    /// The leaf followed by the CA certificate, ready for a TLS server's chain.
    pub chain_pem: String,
}

/// lyncd's internal certificate authority: its certificate, its private key and a ready signer.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: Secret<String>,
    not_before: UtcTime,
    not_after: UtcTime,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The issuer's own Debug elides its key; the key PEM is a Secret.
        f.debug_struct("CertificateAuthority")
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new self-signed CA: RSA-2048, sha256WithRSA, `CA:TRUE` (critical),
    /// keyCertSign + cRLSign, valid from `now` − [`BACKDATE`] for [`CA_VALIDITY`].
    pub fn generate(common_name: &str, now: UtcTime) -> Result<Self, PkiError> {
        check_common_name(common_name)?;
        let now = utc_seconds(now);
        let pkey = generate_rsa("CA")?;
        let key_der = Secret::new(pkey.private_key_to_pkcs8().map_err(PkiError::Encoding)?);
        let key_pair = KeyPair::try_from(key_der.expose().as_slice())?;

        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key_pair)?;

        Self::assemble(cert.der().to_vec(), pkcs8_pem(&pkey)?, key_pair)
    }

    /// Loads a CA from its certificate PEM and its private key PEM (PKCS#8 or traditional).
    ///
    /// Rejects a certificate that is not a CA and a key that does not match the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let x509 = openssl::x509::X509::from_pem(cert_pem.as_bytes())
            .map_err(|e| PkiError::BadCertificate(first_reason(&e)))?;
        let pkey = PKey::private_key_from_pem(key_pem.as_bytes())
            .map_err(|e| PkiError::BadKey(first_reason(&e)))?;
        check_ca_key_type(&pkey)?;
        let cert_pubkey = x509
            .public_key()
            .map_err(|e| PkiError::BadCertificate(first_reason(&e)))?;
        if !cert_pubkey.public_eq(&pkey) {
            return Err(PkiError::KeyMismatch);
        }
        let cert_der = x509.to_der().map_err(PkiError::Encoding)?;
        let key_der = Secret::new(pkey.private_key_to_pkcs8().map_err(PkiError::Encoding)?);
        let key_pair = KeyPair::try_from(key_der.expose().as_slice())
            .map_err(|e| PkiError::UnsupportedKey(e.to_string()))?;
        Self::assemble(cert_der, pkcs8_pem(&pkey)?, key_pair)
    }

    /// Checks the certificate and builds the signer; shared by `generate` and `from_pem` so a
    /// generated CA goes through exactly the checks a loaded one does.
    fn assemble(
        cert_der: Vec<u8>,
        key_pem: Secret<String>,
        key_pair: KeyPair,
    ) -> Result<Self, PkiError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        if !parsed.is_ca() {
            return Err(PkiError::NotACa);
        }
        let not_before = parsed.validity().not_before.to_datetime();
        let not_after = parsed.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key_pair)?;
        Ok(CertificateAuthority {
            cert_pem: der_to_pem(&cert_der),
            cert_der,
            key_pem,
            not_before,
            not_after,
            issuer,
        })
    }

    /// The CA certificate, PEM. Clients and peers trust this.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM, for persisting the CA.
    pub fn key_pem(&self) -> &Secret<String> {
        &self.key_pem
    }

    /// The CA certificate's validity window.
    pub fn validity(&self) -> (UtcTime, UtcTime) {
        (self.not_before, self.not_after)
    }

    /// Issues a TLS server certificate for `names` (DNS names, `*.` wildcards, IP literals),
    /// with a fresh ECDSA P-256 key. The first name is also the subject CN.
    ///
    /// Valid from `now` − [`BACKDATE`] to `now` + `validity`, but never past the CA's own expiry.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        now: UtcTime,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let parsed = parse_server_names(names)?;
        let (not_before, not_after) = self.window(now, validity)?;
        self.server_cert(&parsed, not_before, not_after)
    }

    /// Issues a TLS server certificate like [`Self::issue_server_cert`], valid exactly from
    /// `not_before` to `not_after` (whole seconds). The window may lie entirely in the past or
    /// the future and is not checked against the CA's own: `lyncd serve`'s fault injection
    /// serves expired and not-yet-valid certificates with it, as neglected deployments do.
    pub fn issue_server_cert_valid_between(
        &self,
        names: &[String],
        not_before: UtcTime,
        not_after: UtcTime,
    ) -> Result<IssuedCert, PkiError> {
        let parsed = parse_server_names(names)?;
        let (not_before, not_after) = (utc_seconds(not_before), utc_seconds(not_after));
        if not_after <= not_before {
            return Err(PkiError::BadValidity(not_after - not_before));
        }
        self.server_cert(&parsed, not_before, not_after)
    }

    fn server_cert(
        &self,
        names: &[ServerName],
        not_before: UtcTime,
        not_after: UtcTime,
    ) -> Result<IssuedCert, PkiError> {
        let params = server_params(names, not_before, not_after)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(self.issued(
            cert.der().to_vec(),
            Secret::new(key.serialize_pem()),
            Secret::new(key.serialize_der()),
        ))
    }

    /// Issues an RSA-2048 certificate for an XML-DSig / XML-Enc service key (identity-provider
    /// signing, Web Ticket signing, Web Ticket encryption): digitalSignature + keyEncipherment,
    /// no extended key usage. Validity as for [`Self::issue_server_cert`].
    pub fn issue_signing_cert(
        &self,
        common_name: &str,
        now: UtcTime,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        check_common_name(common_name)?;
        let mut params = self.leaf_params(common_name, now, validity)?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];

        let pkey = generate_rsa("service signing")?;
        let spki_der = pkey.public_key_to_der().map_err(PkiError::Encoding)?;
        let spki = SubjectPublicKeyInfo::from_der(&spki_der)?;
        let cert = params.signed_by(&spki, &self.issuer)?;
        let key_der = Secret::new(pkey.private_key_to_pkcs8().map_err(PkiError::Encoding)?);
        Ok(self.issued(cert.der().to_vec(), pkcs8_pem(&pkey)?, key_der))
    }

    /// Parameters every end-entity certificate shares: subject CN, random serial, validity
    /// window, `CA:FALSE`, authority key identifier.
    fn leaf_params(
        &self,
        common_name: &str,
        now: UtcTime,
        validity: Duration,
    ) -> Result<CertificateParams, PkiError> {
        let (not_before, not_after) = self.window(now, validity)?;
        let mut params = end_entity_params(common_name, not_before, not_after)?;
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// From `now` − [`BACKDATE`] to `now` + `validity`, capped at the CA's own expiry; refused
    /// when the CA itself is not valid at `now`.
    fn window(&self, now: UtcTime, validity: Duration) -> Result<(UtcTime, UtcTime), PkiError> {
        if validity <= Duration::ZERO {
            return Err(PkiError::BadValidity(validity));
        }
        let now = utc_seconds(now);
        if now < self.not_before || now > self.not_after {
            return Err(PkiError::CaNotValidAt {
                now,
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        let not_after = now
            .checked_add(validity)
            .map_or(self.not_after, |t| t.min(self.not_after));
        Ok((now - BACKDATE, not_after))
    }

    fn issued(
        &self,
        cert_der: Vec<u8>,
        key_pem: Secret<String>,
        key_der: Secret<Vec<u8>>,
    ) -> IssuedCert {
        let cert_pem = der_to_pem(&cert_der);
        let chain_pem = format!("{cert_pem}{}", self.cert_pem);
        IssuedCert {
            cert_pem,
            cert_der,
            key_pem,
            key_der,
            chain_pem,
        }
    }
}

/// A self-signed TLS server certificate for `names` (fresh ECDSA P-256 key, `CA:FALSE`), valid
/// from `now` − [`BACKDATE`] to `now` + `validity`. No client trusts it: `lyncd serve`'s fault
/// injection serves it to show what a server set up with a stray self-signed certificate looks
/// like. Its `chain_pem` is the certificate alone.
pub fn self_signed_server_cert(
    names: &[String],
    now: UtcTime,
    validity: Duration,
) -> Result<IssuedCert, PkiError> {
    if validity <= Duration::ZERO {
        return Err(PkiError::BadValidity(validity));
    }
    let parsed = parse_server_names(names)?;
    let now = utc_seconds(now);
    let not_after = now
        .checked_add(validity)
        .ok_or(PkiError::BadValidity(validity))?;
    let params = server_params(&parsed, now - BACKDATE, not_after)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    let cert_der = cert.der().to_vec();
    let cert_pem = der_to_pem(&cert_der);
    Ok(IssuedCert {
        chain_pem: cert_pem.clone(),
        cert_pem,
        cert_der,
        key_pem: Secret::new(key.serialize_pem()),
        key_der: Secret::new(key.serialize_der()),
    })
}

fn parse_server_names(names: &[String]) -> Result<Vec<ServerName>, PkiError> {
    let parsed = names
        .iter()
        .map(|n| ServerName::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(PkiError::NoNames);
    }
    Ok(parsed)
}

/// A TLS server certificate's parameters: CN = the first name, every name as a SAN,
/// digitalSignature, serverAuth.
fn server_params(
    names: &[ServerName],
    not_before: UtcTime,
    not_after: UtcTime,
) -> Result<CertificateParams, PkiError> {
    let first = names.first().ok_or(PkiError::NoNames)?;
    let mut params = end_entity_params(&first.as_common_name(), not_before, not_after)?;
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = names
        .iter()
        .map(ServerName::to_san)
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Subject CN, random serial, the validity window and `CA:FALSE`.
fn end_entity_params(
    common_name: &str,
    not_before: UtcTime,
    not_after: UtcTime,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    Ok(params)
}

fn generate_rsa(what: &'static str) -> Result<PKey<Private>, PkiError> {
    openssl::rsa::Rsa::generate(RSA_BITS)
        .and_then(PKey::from_rsa)
        .map_err(|source| PkiError::KeyGeneration { what, source })
}

fn pkcs8_pem(pkey: &PKey<Private>) -> Result<Secret<String>, PkiError> {
    let bytes = Secret::new(
        pkey.private_key_to_pem_pkcs8()
            .map_err(PkiError::Encoding)?,
    );
    // PEM is base64 between ASCII armour lines, so this conversion cannot fail in practice;
    // if it ever did, report it instead of panicking.
    let text = std::str::from_utf8(bytes.expose())
        .map_err(|e| PkiError::BadKey(format!("OpenSSL produced a non-ASCII PEM ({e})")))?;
    Ok(Secret::new(text.to_string()))
}

/// The CA key must be one rcgen can sign with, and an RSA key must be at least 2048 bits.
fn check_ca_key_type(pkey: &PKey<Private>) -> Result<(), PkiError> {
    match pkey.id() {
        Id::RSA if pkey.bits() >= RSA_BITS => Ok(()),
        Id::RSA => Err(PkiError::UnsupportedKey(format!("RSA-{}", pkey.bits()))),
        Id::EC => {
            let curve = pkey
                .ec_key()
                .ok()
                .and_then(|k| k.group().curve_name())
                .map(|nid| nid.short_name().unwrap_or("unnamed curve").to_string());
            match curve.as_deref() {
                Some("prime256v1" | "secp384r1") => Ok(()),
                Some(other) => Err(PkiError::UnsupportedKey(format!("ECDSA on {other}"))),
                None => Err(PkiError::UnsupportedKey("ECDSA on an unnamed curve".into())),
            }
        }
        other => Err(PkiError::UnsupportedKey(format!("{other:?}"))),
    }
}

fn common_name_dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A positive serial number with 127 random bits and a non-zero first octet.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; SERIAL_BYTES];
    openssl::rand::rand_bytes(&mut bytes).map_err(PkiError::Randomness)?;
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(SerialNumber::from_slice(&bytes))
}

/// X.509 times have whole seconds; normalise so the values we compare are the values we encode.
fn utc_seconds(t: UtcTime) -> UtcTime {
    let t = t.to_offset(UtcOffset::UTC);
    t - Duration::nanoseconds(i64::from(t.nanosecond()))
}

fn der_to_pem(der: &[u8]) -> String {
    let body = base64_lines(der);
    format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
}

/// Standard base64 in 64-column lines, each ending in `\n` (RFC 7468).
fn base64_lines(data: &[u8]) -> String {
    let encoded = openssl::base64::encode_block(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        // base64 output is ASCII, so every index is a character boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out
}

/// OpenSSL error stacks are long; the first reason is the useful part for a user.
fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|err| err.reason().map(str::to_string))
        .unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_columns() {
        assert_eq!(base64_lines(&[]), "");
        let text = base64_lines(&[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            vec![64, 64, 8]
        );
    }

    #[test]
    fn serials_are_positive_and_random() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_eq!(a.len(), SERIAL_BYTES);
        assert!(a[0] != 0 && a[0] < 0x80);
        assert_ne!(a, b);
    }

    #[test]
    fn times_are_whole_utc_seconds() {
        let t = time::macros::datetime!(2026-11-25 10:00:00.75 +02:00);
        assert_eq!(
            utc_seconds(t),
            time::macros::datetime!(2026-11-25 08:00:00 UTC)
        );
    }
}
