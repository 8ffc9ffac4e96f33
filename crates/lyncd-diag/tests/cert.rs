//! Certificate checks on chains minted with rcgen (and OpenSSL where rcgen refuses to make weak
//! certificates), plus the real user certificate from the SIPE capture.

use std::sync::LazyLock;

use lyncd_core::UtcTime;
use lyncd_diag::cert::{
    self, CertError, CertInfo, HopCheck, Severity, check_hop, check_hop_with_anchors, covers,
    inspect,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_RSA_SHA256, RsaKeySize,
};
use sha2::{Digest, Sha256};
use time::Duration;
use time::macros::datetime;

const NOW: UtcTime = datetime!(2026-11-25 12:00:00 UTC);
const CAPTURES: &str = "/work/shared/interop/captures/01-autodiscover-full-flow";

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = NOW - Duration::days(3650);
    params.not_after = NOW + Duration::days(3650);
    params
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(cn);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

fn intermediate(cn: &str, parent: &Ca, not_after: UtcTime) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = ca_params(cn);
    params.not_after = not_after;
    let der = params
        .signed_by(&key, &parent.issuer)
        .unwrap()
        .der()
        .to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// Contoso's PKI: a root, an issuing CA under it; built once (key generation is the slow part).
static ROOT: LazyLock<Ca> = LazyLock::new(|| root("Contoso Root CA"));
static ISSUING: LazyLock<Ca> =
    LazyLock::new(|| intermediate("Contoso Issuing CA", &ROOT, NOW + Duration::days(1000)));

fn leaf_params(
    cn: &str,
    names: &[&str],
    not_before: UtcTime,
    not_after: UtcTime,
) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

fn leaf_by(issuer: &Ca, names: &[&str], not_before: UtcTime, not_after: UtcTime) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    leaf_params(
        names.first().copied().unwrap_or("server"),
        names,
        not_before,
        not_after,
    )
    .signed_by(&key, &issuer.issuer)
    .unwrap()
    .der()
    .to_vec()
}

fn web_leaf(names: &[&str]) -> Vec<u8> {
    leaf_by(
        &ISSUING,
        names,
        NOW - Duration::days(10),
        NOW + Duration::days(365),
    )
}

fn codes(check: &HopCheck) -> Vec<&'static str> {
    check.findings.iter().map(|f| f.code).collect()
}

fn finding<'a>(check: &'a HopCheck, code: &str) -> &'a cert::Finding {
    check
        .findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", check.findings))
}

fn info_with(dns: &[&str], ips: &[&str], cn: Option<&str>) -> CertInfo {
    CertInfo {
        subject: String::new(),
        issuer: String::new(),
        common_name: cn.map(str::to_string),
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
        ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
        uris: Vec::new(),
        not_before: NOW,
        not_after: NOW,
        serial_hex: String::new(),
        sha256: String::new(),
        self_signed: false,
        is_ca: false,
        key: String::new(),
        signature_algorithm: String::new(),
        ca_issuer_urls: Vec::new(),
        crl_urls: Vec::new(),
    }
}

#[test]
fn a_complete_valid_chain_has_no_findings() {
    let leaf = web_leaf(&["lyncweb.contoso.com", "lyncdiscover.contoso.com"]);
    for chain in [
        vec![leaf.clone(), ISSUING.der.clone()],
        vec![leaf.clone(), ISSUING.der.clone(), ROOT.der.clone()],
    ] {
        let check = check_hop(&chain, "lyncweb.contoso.com", "contoso.com", NOW);
        assert!(check.findings.is_empty(), "{:#?}", check.findings);
        assert_eq!(check.worst(), None);
        assert_eq!(check.days_left(NOW), Some(365));
        assert_eq!(check.chain.len(), chain.len());
        assert_eq!(check.leaf().unwrap().dns_names[0], "lyncweb.contoso.com");
    }
}

#[test]
fn inspect_reads_the_fields_people_compare() {
    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params(
        "lyncfe.contoso.com",
        &["lyncfe.contoso.com", "10.0.0.5"],
        NOW - Duration::days(1),
        NOW + Duration::days(90),
    );
    params.subject_alt_names.push(rcgen::SanType::URI(
        "sip:alice@contoso.com".try_into().unwrap(),
    ));
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x0a, 0xbc]));
    let der = params
        .signed_by(&key, &ISSUING.issuer)
        .unwrap()
        .der()
        .to_vec();

    let info = inspect(&der).unwrap();
    assert_eq!(info.subject, "CN=lyncfe.contoso.com");
    assert_eq!(info.issuer, "CN=Contoso Issuing CA");
    assert_eq!(info.common_name.as_deref(), Some("lyncfe.contoso.com"));
    assert_eq!(info.dns_names, ["lyncfe.contoso.com"]);
    assert_eq!(info.ip_addresses, ["10.0.0.5"]);
    assert_eq!(info.uris, ["sip:alice@contoso.com"]);
    assert_eq!(info.not_before, NOW - Duration::days(1));
    assert_eq!(info.not_after, NOW + Duration::days(90));
    assert_eq!(info.serial_hex, "0abc");
    assert_eq!(info.sha256, hex(&Sha256::digest(&der)));
    assert!(!info.self_signed);
    assert!(!info.is_ca);
    assert_eq!(info.key, "EC P-256");
    assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");

    let root = inspect(&ROOT.der).unwrap();
    assert!(root.self_signed && root.is_ca);
    assert_eq!(root.subject, root.issuer);

    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["not_after"], "2027-02-23T12:00:00Z");
    assert_eq!(json["dns_names"][0], "lyncfe.contoso.com");
}

#[test]
fn rsa_keys_are_described_with_their_size() {
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let der = leaf_params("rsa", &["rsa.contoso.com"], NOW, NOW + Duration::days(1))
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec();
    let info = inspect(&der).unwrap();
    assert_eq!(info.key, "RSA 2048");
    assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
}

#[test]
fn the_captured_sipe_user_certificate_reads() {
    let der = std::fs::read(format!("{CAPTURES}/client-cert.der")).unwrap();
    let info = inspect(&der).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("alice@contoso.com"));
    assert!(
        info.issuer.contains("CN=SIPE Harness Test CA"),
        "{}",
        info.issuer
    );
    assert_eq!(info.key, "RSA 2048");
    assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
    assert!(!info.is_ca && !info.self_signed);
    assert!(info.not_before < info.not_after);
}

#[test]
fn an_expired_server_certificate_is_an_error_naming_it_and_the_days() {
    let leaf = leaf_by(
        &ISSUING,
        &["lyncweb.contoso.com"],
        NOW - Duration::days(400),
        NOW - Duration::days(12),
    );
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(check.worst(), Some(Severity::Error));
    let expired = finding(&check, "certificate-expired");
    assert_eq!(expired.severity, Severity::Error);
    assert!(
        expired.message.contains("12 days ago"),
        "{}",
        expired.message
    );
    assert!(
        expired
            .message
            .contains("the server certificate \"lyncweb.contoso.com\"")
    );
    assert!(
        expired.message.contains("2026-11-13"),
        "{}",
        expired.message
    );
    assert_eq!(check.days_left(NOW), Some(-12));
}

#[test]
fn an_expired_intermediate_is_named_too() {
    let old_ca = intermediate("Old Issuing CA", &ROOT, NOW - Duration::days(3));
    let leaf = leaf_by(
        &old_ca,
        &["lyncweb.contoso.com"],
        NOW - Duration::days(30),
        NOW + Duration::days(300),
    );
    let check = check_hop(&[leaf, old_ca.der.clone()], "lyncweb.contoso.com", "", NOW);
    let expired = finding(&check, "certificate-expired");
    assert!(
        expired
            .message
            .contains("the intermediate certificate \"Old Issuing CA\" (#2 in the chain)"),
        "{}",
        expired.message
    );
    assert!(expired.message.contains("3 days ago"));
    assert_eq!(check.findings.len(), 1, "{:#?}", check.findings);
}

#[test]
fn not_yet_valid_points_at_the_clocks() {
    let leaf = leaf_by(
        &ISSUING,
        &["lyncweb.contoso.com"],
        NOW + Duration::minutes(10),
        NOW + Duration::days(365),
    );
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    let early = finding(&check, "certificate-not-yet-valid");
    assert_eq!(early.severity, Severity::Error);
    assert!(
        early.message.contains("starts in 10 min"),
        "{}",
        early.message
    );
    assert!(
        early
            .message
            .contains("check this machine's clock and the server's")
    );
}

#[test]
fn expiring_within_30_days_warns_and_days_left_is_exact() {
    let leaf = leaf_by(
        &ISSUING,
        &["lyncweb.contoso.com"],
        NOW - Duration::days(355),
        NOW + Duration::days(10),
    );
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&check), ["certificate-expiring"]);
    let expiring = &check.findings[0];
    assert_eq!(expiring.severity, Severity::Warning);
    assert!(
        expiring.message.contains("in 10 days"),
        "{}",
        expiring.message
    );
    assert_eq!(check.days_left(NOW), Some(10));

    let roomy = leaf_by(
        &ISSUING,
        &["lyncweb.contoso.com"],
        NOW - Duration::days(10),
        NOW + Duration::days(45),
    );
    let check = check_hop(
        &[roomy, ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert!(check.findings.is_empty(), "{:#?}", check.findings);
    assert_eq!(check.days_left(NOW), Some(45));
}

#[test]
fn wildcards_cover_exactly_one_leftmost_label() {
    let wildcard = info_with(&["*.contoso.com"], &[], Some("ignored.example"));
    assert!(covers(&wildcard, "lyncweb.contoso.com"));
    assert!(covers(&wildcard, "LyncWeb.Contoso.COM."));
    assert!(covers(&wildcard, "lyncweb.contoso.com:443"));
    assert!(!covers(&wildcard, "a.b.contoso.com"));
    assert!(!covers(&wildcard, "contoso.com"));
    assert!(!covers(&wildcard, "lyncweb.contoso.com.evil.net"));
    assert!(
        !covers(&wildcard, "ignored.example"),
        "CN ignored when DNS SANs exist"
    );

    assert!(!covers(&info_with(&["*.com"], &[], None), "contoso.com"));
    assert!(!covers(
        &info_with(&["lync*.contoso.com"], &[], None),
        "lyncweb.contoso.com"
    ));
    assert!(!covers(
        &info_with(&["*.*.contoso.com"], &[], None),
        "a.b.contoso.com"
    ));
    assert!(covers(
        &info_with(&[], &[], Some("LyncWeb.contoso.com")),
        "lyncweb.contoso.com"
    ));
    assert!(!covers(&info_with(&[], &[], None), "lyncweb.contoso.com"));
    assert!(!covers(&wildcard, ""));
}

#[test]
fn ip_hosts_match_ip_sans_only() {
    let der = web_leaf(&["lyncweb.contoso.com", "10.0.0.5", "::1"]);
    let info = inspect(&der).unwrap();
    assert!(covers(&info, "10.0.0.5"));
    assert!(covers(&info, "::1"));
    assert!(covers(&info, "[::1]:443"));
    assert!(covers(&info, "10.0.0.5:5061"));
    assert!(!covers(&info, "10.0.0.6"));
    assert!(
        !covers(&info_with(&["10.0.0.5"], &[], None), "10.0.0.5"),
        "a DNS SAN is not an IP"
    );

    let check = check_hop(&[der, ISSUING.der.clone()], "10.0.0.5", "", NOW);
    assert!(check.findings.is_empty(), "{:#?}", check.findings);
}

#[test]
fn a_name_outside_the_certificate_is_an_error_listing_what_it_covers() {
    let leaf = web_leaf(&["lyncweb.contoso.com", "*.lync.contoso.com", "10.0.0.5"]);
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "webext.contoso.com",
        "contoso.com",
        NOW,
    );
    let miss = finding(&check, "host-not-in-certificate");
    assert_eq!(miss.severity, Severity::Error);
    assert!(miss.message.contains("webext.contoso.com"));
    assert!(
        miss.message
            .contains("lyncweb.contoso.com, *.lync.contoso.com, 10.0.0.5"),
        "{}",
        miss.message
    );
}

#[test]
fn a_server_that_does_not_send_its_intermediate_is_flagged() {
    let leaf = web_leaf(&["lyncweb.contoso.com"]);
    let check = check_hop(
        std::slice::from_ref(&leaf),
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&check), ["chain-incomplete"]);
    let incomplete = &check.findings[0];
    assert_eq!(incomplete.severity, Severity::Warning);
    assert!(
        incomplete.message.contains("CN=Contoso Issuing CA"),
        "{}",
        incomplete.message
    );
    assert!(
        incomplete
            .message
            .contains("problem verifying the certificate")
    );

    // Sending an unrelated certificate does not help.
    let other = root("Fabrikam Root");
    let check = check_hop(
        &[leaf.clone(), other.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert!(
        codes(&check).contains(&"chain-incomplete"),
        "{:?}",
        codes(&check)
    );
    assert!(
        codes(&check).contains(&"chain-out-of-order"),
        "extra certificate noted"
    );

    // Knowing the issuer is a trusted root (not an intermediate) clears it.
    let direct = leaf_by(
        &ROOT,
        &["lyncweb.contoso.com"],
        NOW - Duration::days(1),
        NOW + Duration::days(300),
    );
    let anchors = [ROOT.der.clone()];
    let check = check_hop_with_anchors(
        &[direct],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
        &anchors,
    );
    assert!(check.findings.is_empty(), "{:#?}", check.findings);
    let check =
        check_hop_with_anchors(&[leaf], "lyncweb.contoso.com", "contoso.com", NOW, &anchors);
    assert_eq!(
        codes(&check),
        ["chain-incomplete"],
        "the issuing CA is still missing"
    );
}

#[test]
fn the_sip_domain_warning_follows_the_lync_trust_rule() {
    // Pool in another DNS domain, certificate names nothing in contoso.com: the Lync prompt.
    let leaf = web_leaf(&["lyncfe.fabrikam.net"]);
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lyncfe.fabrikam.net",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&check), ["sip-domain-not-in-certificate"]);
    let warning = &check.findings[0];
    assert_eq!(warning.severity, Severity::Warning);
    for needle in [
        "contoso.com",
        "lyncfe.fabrikam.net",
        "TrustModelData",
        "fabrikam.net",
    ] {
        assert!(
            warning.message.contains(needle),
            "{needle}: {}",
            warning.message
        );
    }

    // The certificate also names something in the SIP domain: no prompt.
    for extra in ["sip.contoso.com", "contoso.com", "*.contoso.com"] {
        let leaf = web_leaf(&["lyncfe.fabrikam.net", extra]);
        let check = check_hop(
            &[leaf, ISSUING.der.clone()],
            "lyncfe.fabrikam.net",
            "contoso.com",
            NOW,
        );
        assert!(check.findings.is_empty(), "{extra}: {:#?}", check.findings);
    }

    // The host itself is in the SIP domain: no prompt either.
    let leaf = web_leaf(&["lyncweb.corp.contoso.com"]);
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lyncweb.corp.contoso.com",
        "Contoso.com",
        NOW,
    );
    assert!(check.findings.is_empty(), "{:#?}", check.findings);

    // "notcontoso.com" is not under "contoso.com".
    let leaf = web_leaf(&["lync.notcontoso.com"]);
    let check = check_hop(
        &[leaf, ISSUING.der.clone()],
        "lync.notcontoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&check), ["sip-domain-not-in-certificate"]);

    // No SIP domain given: not checked.
    let leaf = web_leaf(&["lyncfe.fabrikam.net"]);
    let check = check_hop(&[leaf, ISSUING.der.clone()], "lyncfe.fabrikam.net", "", NOW);
    assert!(check.findings.is_empty());
}

#[test]
fn a_self_signed_server_certificate_warns_and_needs_no_intermediate() {
    let key = KeyPair::generate().unwrap();
    let der = leaf_params(
        "lyncweb.contoso.com",
        &["lyncweb.contoso.com"],
        NOW,
        NOW + Duration::days(300),
    )
    .self_signed(&key)
    .unwrap()
    .der()
    .to_vec();
    let check = check_hop(&[der], "lyncweb.contoso.com", "contoso.com", NOW);
    assert_eq!(codes(&check), ["self-signed"]);
    assert_eq!(check.findings[0].severity, Severity::Warning);
}

#[test]
fn chain_order_problems_are_reported() {
    let leaf = web_leaf(&["lyncweb.contoso.com"]);
    let shuffled = check_hop(
        &[leaf.clone(), ROOT.der.clone(), ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&shuffled), ["chain-out-of-order"]);
    assert_eq!(shuffled.findings[0].severity, Severity::Info);
    assert!(
        shuffled.findings[0].message.contains("#1 → #3 → #2"),
        "{}",
        shuffled.findings[0].message
    );

    let ca_first = check_hop(
        &[ISSUING.der.clone(), leaf],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    let order = finding(&ca_first, "chain-out-of-order");
    assert_eq!(order.severity, Severity::Warning);
    assert!(order.message.contains("#2"), "{}", order.message);
    // The CA certificate is taken for the server's: its name does not match either.
    assert!(codes(&ca_first).contains(&"host-not-in-certificate"));
}

#[test]
fn unreadable_and_empty_chains_are_errors() {
    let empty = check_hop(&[], "lyncweb.contoso.com", "contoso.com", NOW);
    assert_eq!(codes(&empty), ["chain-empty"]);
    assert_eq!(empty.worst(), Some(Severity::Error));
    assert_eq!(empty.days_left(NOW), None);

    let garbage = check_hop(
        &[b"not a certificate".to_vec(), ISSUING.der.clone()],
        "lyncweb.contoso.com",
        "contoso.com",
        NOW,
    );
    assert_eq!(codes(&garbage), ["certificate-unreadable"]);
    assert_eq!(garbage.unreadable, [0]);
    assert_eq!(garbage.leaf(), None);
    assert_eq!(garbage.days_left(NOW), None);
    assert_eq!(
        garbage.chain.len(),
        1,
        "the readable intermediate is still shown"
    );

    assert_eq!(inspect(&[]), Err(CertError::Empty));
    assert_eq!(
        inspect(b"-----BEGIN CERTIFICATE-----\nMII="),
        Err(CertError::Pem)
    );
    assert!(matches!(
        inspect(&[0x30, 0x03, 0x02, 0x01]),
        Err(CertError::Malformed(_))
    ));
    let mut trailing = ISSUING.der.clone();
    trailing.extend_from_slice(b"xx");
    assert_eq!(inspect(&trailing), Err(CertError::TrailingData(2)));
    for len in 0..ISSUING.der.len() {
        assert!(inspect(&ISSUING.der[..len]).is_err());
    }
}

/// rcgen will not sign with SHA-1 nor make 1024-bit RSA keys; OpenSSL still does.
fn openssl_weak_chain() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};

    let name = |cn: &str| {
        let mut builder = X509NameBuilder::new().unwrap();
        builder.append_entry_by_text("CN", cn).unwrap();
        builder.build()
    };
    let validity = |builder: &mut X509Builder| {
        builder
            .set_not_before(
                &Asn1Time::from_unix((NOW - Duration::days(1)).unix_timestamp()).unwrap(),
            )
            .unwrap();
        builder
            .set_not_after(
                &Asn1Time::from_unix((NOW + Duration::days(300)).unix_timestamp()).unwrap(),
            )
            .unwrap();
    };

    let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut ca = X509Builder::new().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    ca.set_subject_name(&name("Legacy Root")).unwrap();
    ca.set_issuer_name(&name("Legacy Root")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    validity(&mut ca);
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    // A SHA-1 self-signature on a root is harmless: nobody checks it.
    ca.sign(&ca_key, MessageDigest::sha1()).unwrap();
    let ca = ca.build();

    let leaf_key = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let mut leaf = X509Builder::new().unwrap();
    leaf.set_version(2).unwrap();
    leaf.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    leaf.set_subject_name(&name("legacy.contoso.com")).unwrap();
    leaf.set_issuer_name(&name("Legacy Root")).unwrap();
    leaf.set_pubkey(&leaf_key).unwrap();
    validity(&mut leaf);
    let san = SubjectAlternativeName::new()
        .dns("legacy.contoso.com")
        .build(&leaf.x509v3_context(Some(&ca), None))
        .unwrap();
    leaf.append_extension(san).unwrap();
    leaf.sign(&ca_key, MessageDigest::sha1()).unwrap();
    (leaf.build().to_der().unwrap(), ca.to_der().unwrap())
}

#[test]
fn sha1_signatures_and_short_rsa_keys_warn() {
    let (leaf, ca) = openssl_weak_chain();
    let info = inspect(&leaf).unwrap();
    assert_eq!(info.key, "RSA 1024");
    assert_eq!(info.signature_algorithm, "sha1WithRSAEncryption");

    let check = check_hop(&[leaf, ca], "legacy.contoso.com", "contoso.com", NOW);
    let mut found = codes(&check);
    found.sort_unstable();
    assert_eq!(
        found,
        ["weak-key", "weak-signature"],
        "{:#?}",
        check.findings
    );
    assert!(finding(&check, "weak-key").message.contains("1024-bit"));
    let weak = finding(&check, "weak-signature");
    assert!(weak.message.contains("sha1WithRSAEncryption"));
    assert!(
        weak.message.contains("legacy.contoso.com"),
        "the leaf, not the root: {}",
        weak.message
    );
}

#[test]
fn findings_are_ordered_most_severe_first_and_serialize_lowercase() {
    let leaf = leaf_by(
        &ISSUING,
        &["lyncfe.fabrikam.net"],
        NOW - Duration::days(355),
        NOW + Duration::days(5),
    );
    let check = check_hop(&[leaf], "wrong.fabrikam.net", "contoso.com", NOW);
    let severities: Vec<Severity> = check.findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted);
    assert_eq!(check.findings[0].code, "host-not-in-certificate");

    let json = serde_json::to_value(&check).unwrap();
    assert_eq!(json["findings"][0]["severity"], "error");
    assert_eq!(json["host"], "wrong.fabrikam.net");
    assert!(
        json["chain"][0]["not_before"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
