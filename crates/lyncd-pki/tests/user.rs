//! User certificates from CSRs (CertProv): pidgin-sipe's real request, its version-2 SHA-1
//! variant, and the requests that must be refused. OpenSSL checks the results independently.

use std::sync::LazyLock;

use lyncd_core::{SipAddress, UtcTime};
use lyncd_pki::{
    BACKDATE, CertificateAuthority, PkiError, new_user_key_and_csr, public_key_der_of,
    user_cert_info, verify_user_cert,
};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509NameBuilder, X509Req, X509ReqBuilder, X509StoreContext};
use time::Duration;
use time::macros::datetime;
use x509_parser::extensions::GeneralName;

const NOW: UtcTime = datetime!(2026-11-25 12:00:00 UTC);
const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/interop/captures"
);

static CA: LazyLock<CertificateAuthority> =
    LazyLock::new(|| CertificateAuthority::generate("lyncd user CA", NOW).unwrap());
static KEY: LazyLock<PKey<Private>> =
    LazyLock::new(|| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap());

fn alice() -> SipAddress {
    SipAddress::parse("alice@contoso.com").unwrap()
}

fn csr(subject_key: &PKey<Private>, signing_key: &PKey<Private>, md: MessageDigest) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "whatever the client wrote")
        .unwrap();
    let name = name.build();
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name).unwrap();
    req.set_pubkey(subject_key).unwrap();
    req.sign(signing_key, md).unwrap();
    req.build().to_der().unwrap()
}

/// A version-2 CSR as pidgin-sipe's OpenSSL backend writes it on OpenSSL ≤ 1.1 (OpenSSL 3 will
/// not set that version): patch the version INTEGER of a version-0 request, then re-sign.
fn version2_csr(key: &PKey<Private>, md: MessageDigest) -> Vec<u8> {
    let mut der = csr(key, key, md);
    // 30 82 LL LL | 30 82 LL LL (info) | 02 01 00 (version) …
    assert_eq!(&der[..2], &[0x30, 0x82]);
    assert_eq!(&der[4..6], &[0x30, 0x82]);
    assert_eq!(&der[8..11], &[0x02, 0x01, 0x00]);
    der[10] = 2;
    let info_len = usize::from(der[6]) << 8 | usize::from(der[7]);
    let info = der[4..8 + info_len].to_vec();
    let mut signer = Signer::new(md, key).unwrap();
    signer.update(&info).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    let at = der.len() - sig.len();
    der[at..].copy_from_slice(&sig);
    der
}

fn verifies_against_ca(ca: &CertificateAuthority, leaf_der: &[u8], at: UtcTime) -> bool {
    let mut builder = X509StoreBuilder::new().unwrap();
    builder
        .add_cert(X509::from_der(ca.cert_der()).unwrap())
        .unwrap();
    let mut param = X509VerifyParam::new().unwrap();
    param.set_time(at.unix_timestamp());
    builder.set_param(&param).unwrap();
    let store = builder.build();
    let leaf = X509::from_der(leaf_der).unwrap();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &leaf, &Stack::new().unwrap(), |c| c.verify_cert())
        .unwrap()
}

fn check_issued(der: &[u8], csr_der: &[u8], lifetime: Duration) {
    assert!(verifies_against_ca(&CA, der, NOW));
    assert!(!verifies_against_ca(
        &CA,
        der,
        NOW + lifetime + Duration::minutes(1)
    ));
    // The certificate carries the CSR's key.
    let req_key = X509Req::from_der(csr_der).unwrap().public_key().unwrap();
    let cert = X509::from_der(der).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&req_key));

    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    let cn: Vec<_> = c
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cn,
        ["alice@contoso.com"],
        "subject comes from the caller, not the CSR"
    );
    assert_eq!(
        c.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.11"
    );
    let san = c.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("sip:alice@contoso.com")]
    );
    let eku = c.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.client_auth && !eku.value.server_auth);
    let ku = c.key_usage().unwrap().unwrap();
    assert!(ku.value.digital_signature() && ku.value.key_encipherment());
    assert!(!ku.value.key_cert_sign());
    assert!(!c.is_ca());
    assert_eq!(c.validity().not_before.to_datetime(), NOW - BACKDATE);
    assert_eq!(c.validity().not_after.to_datetime(), NOW + lifetime);
    assert!(c.raw_serial().len() >= 8);
}

#[test]
fn pidgin_sipes_captured_csr_is_issued() {
    let csr_der = std::fs::read(format!(
        "{CAPTURES}/01-autodiscover-full-flow/client-csr.der"
    ))
    .unwrap();
    let lifetime = Duration::hours(8);
    let issued = CA
        .issue_user_cert(&csr_der, &alice(), NOW, lifetime)
        .unwrap();
    check_issued(&issued.der, &csr_der, lifetime);
    assert_eq!(issued.not_before, NOW - BACKDATE);
    assert_eq!(issued.not_after, NOW + lifetime);
    assert_eq!(
        issued.pem,
        String::from_utf8(X509::from_der(&issued.der).unwrap().to_pem().unwrap()).unwrap()
    );
    assert_eq!(
        issued.sha256_hex,
        openssl::sha::sha256(&issued.der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let info = user_cert_info(&issued.der).unwrap();
    assert_eq!(
        verify_user_cert(CA.cert_der(), &issued.der, NOW).unwrap(),
        info
    );
    assert!(matches!(
        verify_user_cert(
            CA.cert_der(),
            &issued.der,
            NOW + lifetime + Duration::minutes(1)
        ),
        Err(PkiError::UserCertNotTrusted(_))
    ));
    let other_ca = CertificateAuthority::generate("another CA", NOW).unwrap();
    assert!(matches!(
        verify_user_cert(other_ca.cert_der(), &issued.der, NOW),
        Err(PkiError::UserCertNotTrusted(_))
    ));
    // a server certificate from the right CA is not a user certificate
    let server = CA
        .issue_server_cert(&["lyncweb.contoso.com".to_string()], NOW, lifetime)
        .unwrap();
    assert!(verify_user_cert(CA.cert_der(), &server.cert_der, NOW).is_err());
    assert_eq!(info.serial_hex, issued.serial_hex);
    assert_eq!(info.sip_uri.as_deref(), Some("sip:alice@contoso.com"));
    assert_eq!(
        (info.not_before, info.not_after),
        (issued.not_before, issued.not_after)
    );
}

#[test]
fn version_2_sha1_csr_as_old_sipe_sends_it_is_issued() {
    let der = version2_csr(&KEY, MessageDigest::sha1());
    let (_, parsed) =
        <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<'_, _>>::from_der(&der)
            .unwrap();
    assert_eq!(parsed.certification_request_info.version.0, 2);
    assert_eq!(
        parsed.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.5"
    );
    let lifetime = Duration::hours(8);
    let issued = CA.issue_user_cert(&der, &alice(), NOW, lifetime).unwrap();
    check_issued(&issued.der, &der, lifetime);

    // and the plain SHA-256 version-0 request
    let der = csr(&KEY, &KEY, MessageDigest::sha256());
    let issued = CA.issue_user_cert(&der, &alice(), NOW, lifetime).unwrap();
    check_issued(&issued.der, &der, lifetime);
}

#[test]
fn csr_whose_key_did_not_sign_it_is_refused() {
    let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let der = csr(&KEY, &other, MessageDigest::sha256());
    assert!(matches!(
        CA.issue_user_cert(&der, &alice(), NOW, Duration::hours(8)),
        Err(PkiError::CsrSignatureInvalid)
    ));
    // a flipped bit in the signed part
    let mut der = version2_csr(&KEY, MessageDigest::sha1());
    let i = der.len() / 3;
    der[i] ^= 1;
    assert!(
        CA.issue_user_cert(&der, &alice(), NOW, Duration::hours(8))
            .is_err()
    );
}

#[test]
fn weak_foreign_and_garbage_requests_are_refused() {
    let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let der = csr(&weak, &weak, MessageDigest::sha1());
    assert!(matches!(
        CA.issue_user_cert(&der, &alice(), NOW, Duration::hours(8)),
        Err(PkiError::CsrKeyTooWeak { bits: 1024 })
    ));

    let ec = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let der = csr(&ec, &ec, MessageDigest::sha256());
    assert!(matches!(
        CA.issue_user_cert(&der, &alice(), NOW, Duration::hours(8)),
        Err(PkiError::CsrKeyNotRsa)
    ));

    let md5 = csr(&KEY, &KEY, MessageDigest::md5());
    assert!(matches!(
        CA.issue_user_cert(&md5, &alice(), NOW, Duration::hours(8)),
        Err(PkiError::CsrAlgorithmNotAllowed(_))
    ));

    for garbage in [&b""[..], b"\x30\x03\x02\x01\x00", b"not DER at all"] {
        assert!(matches!(
            CA.issue_user_cert(garbage, &alice(), NOW, Duration::hours(8)),
            Err(PkiError::CsrMalformed(_))
        ));
    }
    let mut trailing = csr(&KEY, &KEY, MessageDigest::sha256());
    trailing.push(0);
    assert!(matches!(
        CA.issue_user_cert(&trailing, &alice(), NOW, Duration::hours(8)),
        Err(PkiError::CsrMalformed(_))
    ));
    let good = csr(&KEY, &KEY, MessageDigest::sha256());
    assert!(matches!(
        CA.issue_user_cert(&good, &alice(), NOW, Duration::ZERO),
        Err(PkiError::BadValidity(_))
    ));
}

#[test]
fn our_clients_key_and_csr_round_trip() {
    let (key_pem, csr_der) = new_user_key_and_csr(&alice()).unwrap();
    assert!(
        key_pem
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    let req = X509Req::from_der(&csr_der).unwrap();
    assert!(req.verify(&req.public_key().unwrap()).unwrap());
    let subject: Vec<_> = req
        .subject_name()
        .entries()
        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
        .collect();
    assert_eq!(subject, ["alice@contoso.com"]);
    assert_eq!(req.public_key().unwrap().bits(), 2048);

    let issued = CA
        .issue_user_cert(&csr_der, &alice(), NOW, Duration::hours(8))
        .unwrap();
    let cert_spki = X509::from_der(&issued.der)
        .unwrap()
        .public_key()
        .unwrap()
        .public_key_to_der()
        .unwrap();
    assert_eq!(cert_spki, public_key_der_of(key_pem.expose()).unwrap());
    assert!(user_cert_info(b"junk").is_err());
}
