//! User certificates for TLS-DSK (http.md §8.3, §8.4): issued by the Certificate Provisioning
//! service from a client's PKCS#10 request, plus the client side (key and CSR) and a reader for
//! what came back.
//!
//! CSRs are parsed with x509-parser because it accepts what pidgin-sipe really sends: version 2
//! (OpenSSL ≤ 1.1 backend) and sha1WithRSAEncryption. Only the public key is taken from the
//! request; the subject is ignored and the identity comes from the caller (the web ticket).

use lyncd_core::{Secret, SipAddress, UtcTime};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType, SubjectPublicKeyInfo};
use time::Duration;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SHA1_WITH_RSA,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::{CertificateAuthority, PkiError, der_to_pem, names::check_common_name};

/// Smallest RSA modulus accepted in a user's certificate request.
pub const MIN_USER_RSA_BITS: usize = 2048;

/// Largest CSR accepted (an RSA-8192 request is about 2.3 KB).
const MAX_CSR_BYTES: usize = 16 * 1024;

/// A user certificate issued from a CSR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedUserCert {
    pub der: Vec<u8>,
    pub pem: String,
    /// Lower-case hex of the serial number's octets, no separators.
    pub serial_hex: String,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
    /// Lower-case hex SHA-256 of the DER certificate (its fingerprint).
    pub sha256_hex: String,
}

/// What a client needs to know about the certificate it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCertInfo {
    /// The first `sip:` URI in the subject alternative names.
    pub sip_uri: Option<String>,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
    pub serial_hex: String,
}

impl CertificateAuthority {
    /// Issues a TLS-DSK client certificate for `user` from a PKCS#10 request.
    ///
    /// The request is decoded leniently (version 0 or 2), its self-signature must verify with
    /// its own key (proof of possession; sha1WithRSA and sha256/384/512WithRSA), and its key must
    /// be RSA with at least [`MIN_USER_RSA_BITS`]. Its subject and attributes are ignored.
    ///
    /// The certificate: subject `CN=user@domain`, SAN URI `sip:user@domain`, EKU clientAuth,
    /// KU digitalSignature + keyEncipherment, `CA:FALSE`, random serial, valid from
    /// `now` − [`crate::BACKDATE`] to `now` + `lifetime` (never past the CA's own expiry),
    /// signed sha256WithRSA by this CA.
    pub fn issue_user_cert(
        &self,
        csr_der: &[u8],
        user: &SipAddress,
        now: UtcTime,
        lifetime: Duration,
    ) -> Result<IssuedUserCert, PkiError> {
        let spki_der = check_csr(csr_der)?;
        let cn = user.to_string();
        check_common_name(&cn)?;
        let mut params = self.leaf_params(&cn, now, lifetime)?;
        params.subject_alt_names = vec![SanType::URI(user.sip_uri().try_into()?)];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_before = params.not_before;
        let not_after = params.not_after;
        let spki = SubjectPublicKeyInfo::from_der(&spki_der)?;
        let cert = params.signed_by(&spki, &self.issuer)?;
        let der = cert.der().to_vec();
        let info = user_cert_info(&der)?;
        Ok(IssuedUserCert {
            pem: der_to_pem(&der),
            serial_hex: info.serial_hex,
            not_before,
            not_after,
            sha256_hex: hex(&openssl::sha::sha256(&der)),
            der,
        })
    }
}

/// Decodes and checks a CSR; returns the DER of its SubjectPublicKeyInfo.
fn check_csr(csr_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    if csr_der.len() > MAX_CSR_BYTES {
        return Err(PkiError::CsrMalformed(format!(
            "it is {} bytes, more than the {MAX_CSR_BYTES}-byte limit",
            csr_der.len()
        )));
    }
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|e| PkiError::CsrMalformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::CsrMalformed(format!(
            "{} bytes follow the request",
            rest.len()
        )));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 && info.version.0 != 2 {
        return Err(PkiError::CsrMalformed(format!(
            "version {} (0 expected; 2 is tolerated)",
            info.version.0
        )));
    }
    let spki = &info.subject_pki;
    if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(PkiError::CsrKeyNotRsa);
    }
    let bits = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
        Ok(_) => return Err(PkiError::CsrKeyNotRsa),
        Err(e) => return Err(PkiError::CsrMalformed(format!("its RSA key: {e}"))),
    };
    if bits < MIN_USER_RSA_BITS {
        return Err(PkiError::CsrKeyTooWeak { bits });
    }
    let alg = &csr.signature_algorithm.algorithm;
    let allowed = [
        OID_PKCS1_SHA1WITHRSA,
        OID_SHA1_WITH_RSA,
        OID_PKCS1_SHA256WITHRSA,
        OID_PKCS1_SHA384WITHRSA,
        OID_PKCS1_SHA512WITHRSA,
    ];
    if !allowed.contains(alg) {
        return Err(PkiError::CsrAlgorithmNotAllowed(alg.to_id_string()));
    }
    csr.verify_signature()
        .map_err(|_| PkiError::CsrSignatureInvalid)?;
    Ok(spki.raw.to_vec())
}

/// Bits in a big-endian unsigned modulus, ignoring leading zero octets.
fn modulus_bits(modulus: &[u8]) -> usize {
    let trimmed = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

/// A fresh RSA-2048 key (PKCS#8 PEM) and a sha256WithRSA PKCS#10 request (DER, version 0) with
/// subject `CN=user@domain`, for our client's CertProv request.
pub fn new_user_key_and_csr(user: &SipAddress) -> Result<(Secret<String>, Vec<u8>), PkiError> {
    let cn = user.to_string();
    check_common_name(&cn)?;
    let pkey = crate::generate_rsa("user")?;
    let mut name = X509NameBuilder::new().map_err(PkiError::Encoding)?;
    name.append_entry_by_text("CN", &cn)
        .map_err(|_| PkiError::BadCommonName(cn.clone()))?;
    let name = name.build();
    let mut req = X509ReqBuilder::new().map_err(PkiError::Encoding)?;
    req.set_subject_name(&name).map_err(PkiError::Encoding)?;
    req.set_pubkey(&pkey).map_err(PkiError::Encoding)?;
    req.sign(&pkey, MessageDigest::sha256())
        .map_err(PkiError::Encoding)?;
    let csr = req.build().to_der().map_err(PkiError::Encoding)?;
    Ok((crate::pkcs8_pem(&pkey)?, csr))
}

/// Reads the fields a client cares about from a DER user certificate.
pub fn user_cert_info(der: &[u8]) -> Result<UserCertInfo, PkiError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::BadUserCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::BadUserCertificate(format!(
            "{} bytes follow the certificate",
            rest.len()
        )));
    }
    let sip_uri = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::BadUserCertificate(e.to_string()))?
        .into_iter()
        .flat_map(|san| san.value.general_names.iter())
        .find_map(|n| match n {
            GeneralName::URI(u) if u.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")) => {
                Some((*u).to_string())
            }
            _ => None,
        });
    Ok(UserCertInfo {
        sip_uri,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        serial_hex: hex(cert.raw_serial()),
    })
}

/// Checks that `cert_der` is a user certificate issued by the CA `ca_cert_der` and valid at `at`
/// (OpenSSL chain validation: signature, issuer, validity, CA flags), with the clientAuth
/// extended key usage and a `sip:` URI; returns its fields. For the registrar (TLS-DSK) and for
/// clients checking what CertProv gave them.
pub fn verify_user_cert(
    ca_cert_der: &[u8],
    cert_der: &[u8],
    at: UtcTime,
) -> Result<UserCertInfo, PkiError> {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::verify::X509VerifyParam;
    use openssl::x509::{X509, X509StoreContext};

    let info = user_cert_info(cert_der)?;
    let untrusted = |why: String| PkiError::UserCertNotTrusted(why);
    let ca = X509::from_der(ca_cert_der)
        .map_err(|e| PkiError::BadCertificate(crate::first_reason(&e)))?;
    let leaf = X509::from_der(cert_der)
        .map_err(|e| PkiError::BadUserCertificate(crate::first_reason(&e)))?;
    let mut builder = X509StoreBuilder::new().map_err(PkiError::Encoding)?;
    builder.add_cert(ca).map_err(PkiError::Encoding)?;
    let mut param = X509VerifyParam::new().map_err(PkiError::Encoding)?;
    param.set_time(at.unix_timestamp());
    builder.set_param(&param).map_err(PkiError::Encoding)?;
    let store = builder.build();
    let chain = Stack::new().map_err(PkiError::Encoding)?;
    let mut ctx = X509StoreContext::new().map_err(PkiError::Encoding)?;
    let verdict = ctx
        .init(&store, &leaf, &chain, |c| {
            Ok(c.verify_cert()?.then_some(()).ok_or(c.error()))
        })
        .map_err(PkiError::Encoding)?;
    verdict.map_err(|e| untrusted(e.error_string().to_string()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::BadUserCertificate(e.to_string()))?;
    let client_auth = parsed
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.client_auth);
    if !client_auth {
        return Err(untrusted("it is not for client authentication".into()));
    }
    if info.sip_uri.is_none() {
        return Err(untrusted("it names no sip: URI".into()));
    }
    Ok(info)
}

/// The public key (SubjectPublicKeyInfo DER) of a PKCS#8 PEM private key; lets a client check
/// that a certificate it received carries its own key.
pub fn public_key_der_of(key_pem: &str) -> Result<Vec<u8>, PkiError> {
    let pkey = PKey::private_key_from_pem(key_pem.as_bytes())
        .map_err(|e| PkiError::BadKey(crate::first_reason(&e)))?;
    pkey.public_key_to_der().map_err(PkiError::Encoding)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignores_leading_zeros() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
