//! The user certificate TLS-DSK authenticates with (sip.md §4, http.md §8.4).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lyncd_core::{Secret, UtcTime, format_iso};

/// How long a certificate must still be valid to be used for a new handshake: SIPE provisions
/// a new one when less than an hour is left (sip.md §4 step 1, http.md §8.0).
pub const MIN_REMAINING: time::Duration = time::Duration::hours(1);

/// A CertProv user certificate and its private key.
///
/// `Debug` never shows the key; the key is a [`Secret`] so the shell can cache it on disk (and
/// nowhere else).
#[derive(Clone)]
pub struct UserCertificate {
    /// The certificate (leaf only, as SIPE sends it), PEM.
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: Secret<String>,
    /// Lower-case hex of the serial number.
    pub serial_hex: String,
    /// The first `sip:` URI of the subject alternative names, if any.
    pub sip_uri: Option<String>,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
}

impl fmt::Debug for UserCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCertificate")
            .field("serial_hex", &self.serial_hex)
            .field("sip_uri", &self.sip_uri)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why a certificate (from CertProv or from a cache) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate PEM holds no CERTIFICATE block")]
    NoPemBlock,
    #[error("the certificate PEM is not valid base64")]
    BadPem,
    #[error("the certificate cannot be read: {0}")]
    Unreadable(String),
}

impl UserCertificate {
    /// From the DER CertProv returned and the key generated for its request.
    pub fn from_der(der: &[u8], key_pem: Secret<String>) -> Result<Self, CertificateError> {
        let info = lyncd_pki::user_cert_info(der)
            .map_err(|e| CertificateError::Unreadable(e.to_string()))?;
        Ok(UserCertificate {
            cert_pem: der_to_pem(der),
            key_pem,
            serial_hex: info.serial_hex,
            sip_uri: info.sip_uri,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    /// From a cached PEM pair (the first certificate in `cert_pem` is the user's).
    pub fn from_pem(cert_pem: &str, key_pem: Secret<String>) -> Result<Self, CertificateError> {
        let der = first_pem_der(cert_pem)?;
        Self::from_der(&der, key_pem)
    }

    /// Whether it can start a handshake at `now`: valid already and for at least another hour.
    pub fn usable_at(&self, now: UtcTime) -> bool {
        self.not_before <= now + time::Duration::minutes(5) && self.not_after - now >= MIN_REMAINING
    }

    /// `serial …, valid until …` for traces.
    pub fn describe(&self) -> String {
        format!(
            "serial {} valid until {}",
            self.serial_hex,
            format_iso(self.not_after)
        )
    }
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn first_pem_der(pem: &str) -> Result<Vec<u8>, CertificateError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN).ok_or(CertificateError::NoPemBlock)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or(CertificateError::NoPemBlock)?;
    let body: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(body).map_err(|_| CertificateError::BadPem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_shape() {
        let pem = der_to_pem(&[1, 2, 3, 4]);
        assert_eq!(first_pem_der(&pem).unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(first_pem_der("junk"), Err(CertificateError::NoPemBlock));
    }
}
