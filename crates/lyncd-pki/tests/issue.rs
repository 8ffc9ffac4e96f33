//! Issued certificates checked by independent parsers: OpenSSL verifies signatures and chains,
//! x509-parser reads the fields.

use std::net::IpAddr;
use std::sync::LazyLock;

use lyncd_core::UtcTime;
use lyncd_pki::{BACKDATE, CA_VALIDITY, CertificateAuthority, IssuedCert, PkiError};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};
use time::Duration;
use time::macros::datetime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

const NOW: UtcTime = datetime!(2026-11-25 12:00:00 UTC);
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";

/// RSA key generation is the slow part; one CA serves every test that does not need its own.
static CA: LazyLock<CertificateAuthority> =
    LazyLock::new(|| CertificateAuthority::generate("lyncd test CA", NOW).unwrap());

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn cn<'a>(cert: &'a X509Certificate<'_>) -> &'a str {
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
}

/// Full chain validation by OpenSSL at time `at`: signature, issuer name, validity, CA flags.
fn openssl_chain_ok(ca_pem: &str, leaf_pem: &str, at: UtcTime) -> bool {
    let ca = X509::from_pem(ca_pem.as_bytes()).unwrap();
    let leaf = X509::from_pem(leaf_pem.as_bytes()).unwrap();
    let mut builder = X509StoreBuilder::new().unwrap();
    builder.add_cert(ca).unwrap();
    let mut param = X509VerifyParam::new().unwrap();
    param.set_time(at.unix_timestamp());
    builder.set_param(&param).unwrap();
    let store = builder.build();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &leaf, &Stack::new().unwrap(), |c| c.verify_cert())
        .unwrap()
}

fn signed_by_ca(ca: &CertificateAuthority, leaf_pem: &str) -> bool {
    let ca_key = X509::from_der(ca.cert_der()).unwrap().public_key().unwrap();
    X509::from_pem(leaf_pem.as_bytes())
        .unwrap()
        .verify(&ca_key)
        .unwrap()
}

fn key_matches_cert(issued: &IssuedCert) {
    let cert_key = X509::from_der(&issued.cert_der)
        .unwrap()
        .public_key()
        .unwrap();
    let from_der = PKey::private_key_from_pkcs8(issued.key_der.expose()).unwrap();
    let from_pem = PKey::private_key_from_pem(issued.key_pem.expose().as_bytes()).unwrap();
    assert!(cert_key.public_eq(&from_der));
    assert!(cert_key.public_eq(&from_pem));
    assert!(
        issued
            .key_pem
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn generated_ca_is_a_self_signed_rsa_ca() {
    let ca = &*CA;
    let cert = parse(ca.cert_der());
    assert_eq!(cn(&cert), "lyncd test CA");
    assert_eq!(cert.subject(), cert.issuer());
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        SHA256_WITH_RSA
    );
    match cert.public_key().parsed().unwrap() {
        PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
        other => panic!("CA key is not RSA: {other:?}"),
    }

    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature() && !ku.value.key_encipherment());

    assert_eq!(cert.validity().not_before.to_datetime(), NOW - BACKDATE);
    assert_eq!(cert.validity().not_after.to_datetime(), NOW + CA_VALIDITY);
    assert_eq!(ca.validity(), (NOW - BACKDATE, NOW + CA_VALIDITY));
    // At least 64 random bits; ours are 127.
    assert!(cert.raw_serial().len() >= 8);

    let x = X509::from_der(ca.cert_der()).unwrap();
    assert!(
        x.verify(&x.public_key().unwrap()).unwrap(),
        "self-signature"
    );
    assert_eq!(
        X509::from_pem(ca.cert_pem().as_bytes())
            .unwrap()
            .to_der()
            .unwrap(),
        ca.cert_der()
    );
    assert!(
        ca.key_pem()
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
}

#[test]
fn server_cert_has_the_requested_names_usage_and_validity() {
    let validity = Duration::days(365);
    let issued = CA
        .issue_server_cert(
            &names(&["LyncWeb.Contoso.test", "*.contoso.test", "10.0.0.5", "::1"]),
            NOW,
            validity,
        )
        .unwrap();

    assert!(signed_by_ca(&CA, &issued.cert_pem));
    assert!(openssl_chain_ok(CA.cert_pem(), &issued.cert_pem, NOW));
    key_matches_cert(&issued);

    let cert = parse(&issued.cert_der);
    assert_eq!(cn(&cert), "lyncweb.contoso.test");
    assert_eq!(cert.issuer(), parse(CA.cert_der()).subject());
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        SHA256_WITH_RSA
    );
    match cert.public_key().parsed().unwrap() {
        PublicKey::EC(ec) => assert_eq!(ec.key_size(), 256),
        other => panic!("leaf key is not ECDSA: {other:?}"),
    }

    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(bytes) => ips.push(match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()),
                16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()),
                n => panic!("IP SAN of {n} bytes"),
            }),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, ["lyncweb.contoso.test", "*.contoso.test"]);
    assert_eq!(
        ips,
        [
            "10.0.0.5".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );

    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    assert!(!eku.client_auth && !eku.any && eku.other.is_empty());
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature());
    assert!(!ku.key_cert_sign() && !ku.key_encipherment());
    assert!(!cert.is_ca());

    assert_eq!(cert.validity().not_before.to_datetime(), NOW - BACKDATE);
    assert_eq!(cert.validity().not_after.to_datetime(), NOW + validity);
    // OpenSSL agrees: valid just after issuance, not after expiry.
    assert!(openssl_chain_ok(
        CA.cert_pem(),
        &issued.cert_pem,
        NOW - Duration::minutes(4)
    ));
    assert!(!openssl_chain_ok(
        CA.cert_pem(),
        &issued.cert_pem,
        NOW + validity + Duration::seconds(1)
    ));

    // The chain is the leaf, then the CA.
    let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].to_der().unwrap(), issued.cert_der);
    assert_eq!(chain[1].to_der().unwrap(), CA.cert_der());
}

#[test]
fn ip_only_certificate_uses_the_address_as_common_name() {
    let issued = CA
        .issue_server_cert(&names(&["127.0.0.1"]), NOW, Duration::hours(1))
        .unwrap();
    let cert = parse(&issued.cert_der);
    assert_eq!(cn(&cert), "127.0.0.1");
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        [GeneralName::IPAddress(&[127, 0, 0, 1])]
    );
}

#[test]
fn every_certificate_gets_a_different_serial_and_key() {
    let a = CA
        .issue_server_cert(&names(&["a.test"]), NOW, Duration::hours(1))
        .unwrap();
    let b = CA
        .issue_server_cert(&names(&["a.test"]), NOW, Duration::hours(1))
        .unwrap();
    assert_ne!(
        parse(&a.cert_der).raw_serial(),
        parse(&b.cert_der).raw_serial()
    );
    assert_ne!(a.key_der.expose(), b.key_der.expose());
}

#[test]
fn bad_names_are_rejected_by_name() {
    let err = CA
        .issue_server_cert(
            &names(&["ok.contoso.test", "bad name!"]),
            NOW,
            Duration::days(1),
        )
        .unwrap_err();
    assert!(
        matches!(&err, PkiError::BadName(n) if n == "bad name!"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"bad name!\""), "{err}");

    for bad in ["", "*.com", "host.example.", "a.*.test"] {
        let err = CA
            .issue_server_cert(&names(&[bad]), NOW, Duration::days(1))
            .unwrap_err();
        assert!(
            matches!(&err, PkiError::BadName(n) if n == bad),
            "{bad:?}: {err:?}"
        );
    }
    assert!(matches!(
        CA.issue_server_cert(&[], NOW, Duration::days(1)),
        Err(PkiError::NoNames)
    ));
}

#[test]
fn validity_is_checked_and_capped_by_the_ca() {
    let n = names(&["a.test"]);
    assert!(matches!(
        CA.issue_server_cert(&n, NOW, Duration::ZERO),
        Err(PkiError::BadValidity(_))
    ));
    assert!(matches!(
        CA.issue_signing_cert("x", NOW, Duration::seconds(-1)),
        Err(PkiError::BadValidity(_))
    ));

    // Longer than the CA lives: the leaf ends when the CA ends.
    let long = CA
        .issue_server_cert(&n, NOW, Duration::days(365 * 20))
        .unwrap();
    assert_eq!(
        parse(&long.cert_der).validity().not_after.to_datetime(),
        CA.validity().1
    );
    // A duration so large the end date overflows is capped the same way.
    let huge = CA.issue_server_cert(&n, NOW, Duration::MAX).unwrap();
    assert_eq!(
        parse(&huge.cert_der).validity().not_after.to_datetime(),
        CA.validity().1
    );

    // Outside the CA's own window nothing is issued.
    let late = NOW + CA_VALIDITY + Duration::seconds(1);
    let err = CA
        .issue_server_cert(&n, late, Duration::days(1))
        .unwrap_err();
    assert!(matches!(err, PkiError::CaNotValidAt { .. }), "{err:?}");
    let early = NOW - Duration::days(1);
    assert!(matches!(
        CA.issue_signing_cert("x", early, Duration::days(1)),
        Err(PkiError::CaNotValidAt { .. })
    ));
}

#[test]
fn server_cert_with_an_explicit_window_may_be_expired_or_not_yet_valid() {
    let n = names(&["lyncweb.contoso.com"]);
    // Expired three days ago, and issued (on paper) before the CA existed: not clamped.
    let expired = CA
        .issue_server_cert_valid_between(&n, NOW - Duration::days(30), NOW - Duration::days(3))
        .unwrap();
    let cert = parse(&expired.cert_der);
    assert_eq!(
        cert.validity().not_before.to_datetime(),
        NOW - Duration::days(30)
    );
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        NOW - Duration::days(3)
    );
    assert!(signed_by_ca(&CA, &expired.cert_pem));
    assert!(!openssl_chain_ok(CA.cert_pem(), &expired.cert_pem, NOW));
    key_matches_cert(&expired);

    let future = CA
        .issue_server_cert_valid_between(&n, NOW + Duration::days(2), NOW + Duration::days(90))
        .unwrap();
    assert!(!openssl_chain_ok(CA.cert_pem(), &future.cert_pem, NOW));
    assert!(openssl_chain_ok(
        CA.cert_pem(),
        &future.cert_pem,
        NOW + Duration::days(3)
    ));

    assert!(matches!(
        CA.issue_server_cert_valid_between(&n, NOW, NOW),
        Err(PkiError::BadValidity(_))
    ));
    assert!(matches!(
        CA.issue_server_cert_valid_between(&[], NOW, NOW + Duration::days(1)),
        Err(PkiError::NoNames)
    ));
}

#[test]
fn self_signed_server_cert_is_not_issued_by_the_ca() {
    let n = names(&["lyncdiscover.contoso.com", "127.0.0.1"]);
    let issued = lyncd_pki::self_signed_server_cert(&n, NOW, Duration::days(365)).unwrap();
    let cert = parse(&issued.cert_der);
    assert_eq!(cn(&cert), "lyncdiscover.contoso.com");
    assert_eq!(cert.subject(), cert.issuer());
    assert!(!cert.is_ca());
    assert_eq!(cert.validity().not_before.to_datetime(), NOW - BACKDATE);
    // Signed by its own key, so no chain to lyncd's CA can be built.
    let x509 = X509::from_der(&issued.cert_der).unwrap();
    assert!(x509.verify(&x509.public_key().unwrap()).unwrap());
    assert!(!openssl_chain_ok(
        CA.cert_pem(),
        &issued.cert_pem,
        NOW + Duration::minutes(1)
    ));
    assert_eq!(issued.chain_pem, issued.cert_pem);
    key_matches_cert(&issued);
}

#[test]
fn signing_cert_is_rsa_for_xml_security() {
    let validity = Duration::days(730);
    let issued = CA
        .issue_signing_cert("lyncd web ticket signing", NOW, validity)
        .unwrap();
    assert!(signed_by_ca(&CA, &issued.cert_pem));
    assert!(openssl_chain_ok(CA.cert_pem(), &issued.cert_pem, NOW));
    key_matches_cert(&issued);

    let cert = parse(&issued.cert_der);
    assert_eq!(cn(&cert), "lyncd web ticket signing");
    match cert.public_key().parsed().unwrap() {
        PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
        other => panic!("signing key is not RSA: {other:?}"),
    }
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    assert!(!ku.key_cert_sign());
    assert!(cert.extended_key_usage().unwrap().is_none());
    assert!(cert.subject_alternative_name().unwrap().is_none());
    assert!(!cert.is_ca());
    assert_eq!(cert.validity().not_before.to_datetime(), NOW - BACKDATE);
    assert_eq!(cert.validity().not_after.to_datetime(), NOW + validity);

    // The key signs, and the certificate's public key verifies that signature.
    let key = PKey::private_key_from_pkcs8(issued.key_der.expose()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    let sig = signer.sign_oneshot_to_vec(b"<SignedInfo/>").unwrap();
    let pubkey = X509::from_der(&issued.cert_der)
        .unwrap()
        .public_key()
        .unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pubkey).unwrap();
    assert!(verifier.verify_oneshot(&sig, b"<SignedInfo/>").unwrap());

    assert!(matches!(
        CA.issue_signing_cert("", NOW, validity),
        Err(PkiError::BadCommonName(_))
    ));
}

#[test]
fn from_pem_round_trips() {
    let loaded = CertificateAuthority::from_pem(CA.cert_pem(), CA.key_pem().expose()).unwrap();
    assert_eq!(loaded.cert_der(), CA.cert_der());
    assert_eq!(loaded.cert_pem(), CA.cert_pem());
    assert_eq!(loaded.key_pem(), CA.key_pem());
    assert_eq!(loaded.validity(), CA.validity());

    // What the loaded CA issues chains to the original CA certificate.
    let issued = loaded
        .issue_server_cert(&names(&["pool.contoso.test"]), NOW, Duration::days(1))
        .unwrap();
    assert!(signed_by_ca(&CA, &issued.cert_pem));
    assert!(openssl_chain_ok(CA.cert_pem(), &issued.cert_pem, NOW));
    // Authority key identifier = the CA's subject key identifier.
    let ca_cert = parse(CA.cert_der());
    let leaf = parse(&issued.cert_der);
    let ski = ca_cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
        .unwrap();
    let aki = leaf
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(ski, aki);
}

#[test]
fn from_pem_accepts_a_traditional_rsa_key_and_stores_pkcs8() {
    let key = PKey::private_key_from_pem(CA.key_pem().expose().as_bytes()).unwrap();
    let pkcs1 = String::from_utf8(key.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let loaded = CertificateAuthority::from_pem(CA.cert_pem(), &pkcs1).unwrap();
    assert_eq!(loaded.key_pem(), CA.key_pem());
}

#[test]
fn from_pem_rejects_a_key_that_does_not_match() {
    let other = CertificateAuthority::generate("another CA", NOW).unwrap();
    let err = CertificateAuthority::from_pem(CA.cert_pem(), other.key_pem().expose()).unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch), "{err:?}");
    assert!(err.to_string().contains("does not belong"));
}

#[test]
fn from_pem_rejects_garbage_and_non_ca_certificates() {
    let key = CA.key_pem().expose();
    assert!(matches!(
        CertificateAuthority::from_pem("not a certificate", key),
        Err(PkiError::BadCertificate(_))
    ));
    assert!(matches!(
        CertificateAuthority::from_pem(
            CA.cert_pem(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        ),
        Err(PkiError::BadKey(_))
    ));

    // A server certificate with its own (matching) key is still not a CA.
    let leaf = CA
        .issue_server_cert(&names(&["a.test"]), NOW, Duration::days(1))
        .unwrap();
    let err = CertificateAuthority::from_pem(&leaf.cert_pem, leaf.key_pem.expose()).unwrap_err();
    assert!(matches!(err, PkiError::NotACa), "{err:?}");
}

#[test]
fn from_pem_accepts_an_ecdsa_ca_and_rejects_weak_rsa() {
    // An ECDSA P-256 CA made with OpenSSL, as an operator might bring one.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let ec_ca = self_signed_ca(&ec);
    let ca = CertificateAuthority::from_pem(
        &ec_ca,
        std::str::from_utf8(&ec.private_key_to_pem_pkcs8().unwrap()).unwrap(),
    )
    .unwrap();
    let issued = ca
        .issue_server_cert(&names(&["a.test"]), NOW, Duration::days(1))
        .unwrap();
    assert!(openssl_chain_ok(&ec_ca, &issued.cert_pem, NOW));
    assert_eq!(
        parse(&issued.cert_der)
            .signature_algorithm
            .algorithm
            .to_id_string(),
        ECDSA_WITH_SHA256
    );

    let weak = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    let weak_ca = self_signed_ca(&weak);
    let err = CertificateAuthority::from_pem(
        &weak_ca,
        std::str::from_utf8(&weak.private_key_to_pem_pkcs8().unwrap()).unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PkiError::UnsupportedKey(k) if k == "RSA-1024"),
        "{err:?}"
    );
}

fn self_signed_ca(key: &PKey<openssl::pkey::Private>) -> String {
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "operator CA").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_u32(42)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    let start =
        openssl::asn1::Asn1Time::from_unix((NOW - Duration::days(1)).unix_timestamp()).unwrap();
    let end =
        openssl::asn1::Asn1Time::from_unix((NOW + Duration::days(365)).unix_timestamp()).unwrap();
    b.set_not_before(&start).unwrap();
    b.set_not_after(&end).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

#[test]
fn nothing_secret_reaches_debug_output() {
    let issued = CA
        .issue_server_cert(&names(&["a.test"]), NOW, Duration::days(1))
        .unwrap();
    let shown = format!("{:?} {:?}", *CA, issued);
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("Secret(***)"));
}

#[test]
fn the_authority_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<CertificateAuthority>();
    shareable::<IssuedCert>();
}
