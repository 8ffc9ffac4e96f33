//! What the server and client states share: settings both contexts use, driving OpenSSL through
//! one leg, mapping its failures, and reading the result (keys, peer certificate).

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::ssl::{self, ErrorCode, SslContextBuilder, SslRef, SslStream, SslVersion};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509Ref};
use zeroize::Zeroize;

use crate::stream::MemoryStream;
use crate::{MacAlgorithm, PeerCertificate, SigningKeys, TlsDskError, UtcTime, records};

/// RSA key transport with AES-CBC and a SHA-1 record MAC only (sip.md §5.7, §13.3): what SIPE
/// offers besides RC4, and it keeps the signature MAC unambiguous (HMAC-SHA1) for every TLS
/// version. `@SECLEVEL=0` is required: OpenSSL 3 refuses TLS 1.0 and its MD5/SHA-1 handshake
/// signatures at any higher level, and Debian's openssl.cnf asks for level 2.
pub const CIPHER_LIST: &str = "AES256-SHA:AES128-SHA:@SECLEVEL=0";

/// The exporter label that yields the TLS-DSK key material (sip.md §5.5; the same label as
/// EAP-TLS, RFC 5216).
pub const KEY_MATERIAL_LABEL: &str = "client EAP encryption";

/// OpenSSL's `X509_V_ERR_*` codes we turn into their own variants (stable ABI numbers).
const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;
/// `SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE`.
const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

pub(crate) fn config(what: &str, e: &openssl::error::ErrorStack) -> TlsDskError {
    TlsDskError::Config(format!("{what}: {}", crate::error::reasons(e)))
}

/// Settings both ends share: TLS 1.0–1.2, the suites above, no session tickets, no session
/// cache (every TLS-DSK handshake is a full one: sip.md §5.7 "no session resumption"), no
/// renegotiation. Tickets would also add ~900 bytes to S2 (sip.md §5.2).
pub(crate) fn common_settings(builder: &mut SslContextBuilder) -> Result<(), TlsDskError> {
    builder
        .set_min_proto_version(Some(SslVersion::TLS1))
        .map_err(|e| config("cannot allow TLS 1.0", &e))?;
    builder
        .set_max_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| config("cannot cap the TLS version at 1.2", &e))?;
    builder
        .set_cipher_list(CIPHER_LIST)
        .map_err(|e| config("cipher list refused", &e))?;
    builder.set_options(ssl::SslOptions::NO_TICKET | ssl::SslOptions::NO_RENEGOTIATION);
    builder.set_session_cache_mode(ssl::SslSessionCacheMode::OFF);
    Ok(())
}

/// Parses every certificate of a PEM bundle.
pub(crate) fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<X509>, TlsDskError> {
    let certs = X509::stack_from_pem(pem.as_bytes()).map_err(|e| config(what, &e))?;
    if certs.is_empty() {
        return Err(TlsDskError::Config(format!(
            "{what}: no certificate in the PEM"
        )));
    }
    Ok(certs)
}

/// A trust store holding exactly `cas`. `PARTIAL_CHAIN` lets an intermediate (say, the CertProv
/// issuing CA) be the anchor without its root: we trust what we are given, nothing else.
pub(crate) fn trust_store(cas: &[X509]) -> Result<X509Store, TlsDskError> {
    let mut store = X509StoreBuilder::new().map_err(|e| config("trust store", &e))?;
    for ca in cas {
        store
            .add_cert(ca.clone())
            .map_err(|e| config("cannot add a CA to the trust store", &e))?;
    }
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(|e| config("trust store flags", &e))?;
    Ok(store.build())
}

/// How one leg ended.
pub(crate) enum LegEnd {
    /// OpenSSL consumed the whole leg and now waits for the peer's next flight; these are the
    /// records it wrote meanwhile (possibly none, if the leg was an incomplete flight).
    WantsNextLeg(Vec<u8>),
    /// The handshake completed; the records OpenSSL wrote last (S2 on the server, nothing on
    /// the client).
    Complete(Vec<u8>),
}

/// Feeds one leg (already checked to be whole records, or empty for the client's first step)
/// and runs OpenSSL until it finishes or wants more.
///
/// `verifying`: whether this end checks the peer's certificate, so a failed verification can
/// be reported as such rather than as a generic handshake failure.
pub(crate) fn drive(
    tls: &mut SslStream<MemoryStream>,
    leg: &[u8],
    verifying: bool,
) -> Result<LegEnd, TlsDskError> {
    tls.get_mut().push_incoming(leg);
    match tls.do_handshake() {
        Ok(()) => {
            // sip.md §5.2: a leg is exactly one flight. Bytes after the last handshake message
            // are not part of TLS-DSK; refuse them rather than ignore them.
            if tls.get_ref().unread() > 0 {
                return Err(TlsDskError::Handshake(
                    "the peer sent data after its last handshake message".to_string(),
                ));
            }
            Ok(LegEnd::Complete(tls.get_mut().take_outgoing()))
        }
        Err(e) if e.code() == ErrorCode::WANT_READ => {
            Ok(LegEnd::WantsNextLeg(tls.get_mut().take_outgoing()))
        }
        Err(e) => Err(map_failure(tls.ssl(), &e, verifying)),
    }
}

/// Turns an OpenSSL failure into the variant that names the cause.
fn map_failure(ssl: &SslRef, e: &ssl::Error, verifying: bool) -> TlsDskError {
    if verifying {
        let verdict = ssl.verify_result();
        match verdict.as_raw() {
            0 => {}
            X509_V_ERR_CERT_HAS_EXPIRED => return TlsDskError::CertificateExpired,
            X509_V_ERR_CERT_NOT_YET_VALID => return TlsDskError::CertificateNotYetValid,
            _ => return TlsDskError::UntrustedCertificate(verdict.error_string().to_string()),
        }
    }
    match e.ssl_error() {
        Some(stack)
            if stack
                .errors()
                .iter()
                .any(|err| err.reason_code() == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) =>
        {
            TlsDskError::NoClientCertificate
        }
        Some(stack) => TlsDskError::Handshake(crate::error::reasons(stack)),
        None => TlsDskError::Handshake(e.to_string()),
    }
}

/// What a finished handshake yields on either end.
pub(crate) struct Outcome {
    pub(crate) keys: SigningKeys,
    pub(crate) protocol: &'static str,
    pub(crate) cipher: String,
}

/// Exports the TLS-DSK key material (sip.md §5.5: RFC 5705 exporter, label
/// `client EAP encryption`, no context, 128 bytes — equal to SIPE's PRF for TLS 1.0 and the
/// SHA-256 PRF for TLS 1.2) and picks the MAC from the suite (sip.md §5.6).
pub(crate) fn outcome(ssl: &SslRef) -> Result<Outcome, TlsDskError> {
    let cipher = ssl
        .current_cipher()
        .ok_or_else(|| TlsDskError::Handshake("no cipher suite was negotiated".to_string()))?;
    let standard = cipher.standard_name().unwrap_or(cipher.name());
    let mac = MacAlgorithm::from_suite_name(standard)
        .ok_or_else(|| TlsDskError::UnsupportedSuite(standard.to_string()))?;
    let mut material = [0u8; 128];
    ssl.export_keying_material(&mut material, KEY_MATERIAL_LABEL, None)
        .map_err(|e| {
            TlsDskError::Handshake(format!(
                "cannot export the key material: {}",
                crate::error::reasons(&e)
            ))
        })?;
    let keys = SigningKeys::from_key_material(&material, mac);
    material.zeroize();
    Ok(Outcome {
        keys,
        protocol: ssl.version_str(),
        cipher: cipher.name().to_string(),
    })
}

/// The peer's leaf certificate, reduced to what the registrar maps to a user (sip.md §5.8).
pub(crate) fn peer_certificate(cert: &X509Ref) -> Result<PeerCertificate, TlsDskError> {
    let bad = |what: &str, e: openssl::error::ErrorStack| {
        TlsDskError::UntrustedCertificate(format!(
            "cannot read the certificate's {what}: {}",
            crate::error::reasons(&e)
        ))
    };
    let der = cert.to_der().map_err(|e| bad("encoding", e))?;
    let sip_uris = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.uri())
                .filter(|uri| uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let subject_cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| entry.data().to_string().ok());
    let serial = cert
        .serial_number()
        .to_bn()
        .map_err(|e| bad("serial number", e))?
        .to_vec();
    let serial_hex = if serial.is_empty() {
        "00".to_string()
    } else {
        serial.iter().map(|b| format!("{b:02x}")).collect()
    };
    Ok(PeerCertificate {
        der,
        sip_uris,
        subject_cn,
        serial_hex,
        not_before: asn1_to_utc(cert.not_before()).map_err(|e| bad("notBefore", e))?,
        not_after: asn1_to_utc(cert.not_after()).map_err(|e| bad("notAfter", e))?,
    })
}

fn asn1_to_utc(t: &Asn1TimeRef) -> Result<UtcTime, openssl::error::ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(t)?;
    let seconds = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    // Any ASN.1 time OpenSSL parsed (years 0–9999) is inside `time`'s range.
    Ok(UtcTime::from_unix_timestamp(seconds).unwrap_or(UtcTime::UNIX_EPOCH))
}

/// The TLS secrets behind the exporter, kept in test builds only so the unit tests can check
/// the exporter against an independent TLS 1.0 PRF (sip.md §5.5). `Debug` shows nothing.
#[cfg(test)]
pub(crate) struct TlsSecrets {
    pub(crate) master_key: Vec<u8>,
    pub(crate) client_random: [u8; 32],
    pub(crate) server_random: [u8; 32],
}

#[cfg(test)]
impl std::fmt::Debug for TlsSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSecrets(***)")
    }
}

#[cfg(test)]
pub(crate) fn tls_secrets(ssl: &SslRef) -> TlsSecrets {
    let mut client_random = [0u8; 32];
    let mut server_random = [0u8; 32];
    ssl.client_random(&mut client_random);
    ssl.server_random(&mut server_random);
    let master_key = ssl
        .session()
        .map(|s| {
            let mut buf = vec![0u8; s.master_key_len()];
            let n = s.master_key(&mut buf);
            buf.truncate(n);
            buf
        })
        .unwrap_or_default();
    TlsSecrets {
        master_key,
        client_random,
        server_random,
    }
}

/// Refuses input that is not whole TLS records before OpenSSL sees it.
pub(crate) fn check_leg(leg: &[u8]) -> Result<(), TlsDskError> {
    records::check_records(leg)
}
