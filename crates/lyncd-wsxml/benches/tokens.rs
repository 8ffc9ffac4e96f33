//! Cost of the four token operations on the sign-in path (RSA-2048 keys).

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use lyncd_wsxml::*;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder};
use std::hint::black_box;
use time::Duration;
use time::macros::datetime;

const NOW: UtcTime = datetime!(2026-11-25 02:52:39 UTC);
const WSFED: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc/WsFedBearer";
const USER_URL: &str = "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/user";

fn generate(cn: &str) -> (String, String) {
    let pkey = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&pkey).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&pkey, MessageDigest::sha256()).unwrap();
    (
        String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        String::from_utf8(b.build().to_pem().unwrap()).unwrap(),
    )
}

fn tokens(c: &mut Criterion) {
    let (idp_key, idp_cert) = generate("login.contoso.com");
    let (rp_key_pem, rp_cert_pem) = generate("webticket-rp");
    let (wt_key, wt_cert) = generate("lyncweb.contoso.com");
    let idp_signer = RsaSigningKey::from_pem(&idp_key, &idp_cert).unwrap();
    let idp_trusted = TrustedCert::from_pem(&idp_cert).unwrap();
    let rp_cert = RsaEncryptionCert::from_pem(&rp_cert_pem).unwrap();
    let rp_key = RsaDecryptionKey::from_pem(&rp_key_pem, &rp_cert_pem).unwrap();
    let wt_signer = RsaSigningKey::from_pem(&wt_key, &wt_cert).unwrap();
    let wt_trusted = TrustedCert::from_pem(&wt_cert).unwrap();
    let wrap = WrapKey::from_bytes([7; 32]);
    let skew = Duration::minutes(5);

    let idp_params = IdpTokenParams {
        issuer: "https://login.contoso.com/".into(),
        audience: WSFED.into(),
        upn: "alice@contoso.com".into(),
        object_id: "6f1d2e3c".into(),
        lifetime: Duration::hours(8),
    };
    let mut entropy = SeededEntropy::new(1);
    c.bench_function("idp token issue (sign + encrypt)", |b| {
        b.iter(|| issue_idp_token(&idp_params, &idp_signer, &rp_cert, NOW, &mut entropy).unwrap())
    });
    let token = issue_idp_token(&idp_params, &idp_signer, &rp_cert, NOW, &mut entropy).unwrap();
    c.bench_function("idp token verify (decrypt + verify)", |b| {
        b.iter(|| {
            verify_idp_token(
                black_box(&token.encrypted_data),
                &rp_key,
                &idp_trusted,
                &idp_params.issuer,
                WSFED,
                NOW,
                skew,
            )
            .unwrap()
        })
    });

    let wt_params = WebTicketParams {
        issuer: "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc".into(),
        audience: USER_URL.into(),
        subject: SipAddress::parse("alice@contoso.com").unwrap(),
        lifetime: Duration::hours(8),
    };
    let client = [3u8; 32];
    c.bench_function("web ticket issue (sign + proof key)", |b| {
        b.iter(|| {
            issue_web_ticket(
                &wt_params,
                &wt_signer,
                &wrap,
                Some(&client),
                NOW,
                &mut entropy,
            )
            .unwrap()
        })
    });
    let ticket = issue_web_ticket(
        &wt_params,
        &wt_signer,
        &wrap,
        Some(&client),
        NOW,
        &mut entropy,
    )
    .unwrap();
    c.bench_function("web ticket verify (verify + unwrap)", |b| {
        b.iter(|| {
            verify_web_ticket(
                black_box(ticket.assertion.as_bytes()),
                &wt_trusted,
                &wrap,
                &wt_params.issuer,
                USER_URL,
                NOW,
                skew,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
