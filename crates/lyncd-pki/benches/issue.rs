//! Cost of issuing certificates from an RSA-2048 CA.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_core::SipAddress;
use lyncd_pki::{CertificateAuthority, new_user_key_and_csr};
use time::Duration;
use time::macros::datetime;

fn issue(c: &mut Criterion) {
    let now = datetime!(2026-11-25 12:00:00 UTC);
    let ca = match CertificateAuthority::generate("lyncd bench CA", now) {
        Ok(ca) => ca,
        Err(e) => panic!("cannot create the bench CA: {e}"),
    };
    let names = vec![
        "lyncweb.contoso.test".to_string(),
        "lyncdiscover.contoso.test".to_string(),
        "127.0.0.1".to_string(),
    ];
    c.bench_function("issue_server_cert (P-256 leaf, RSA-2048 CA)", |b| {
        b.iter(|| black_box(ca.issue_server_cert(black_box(&names), now, Duration::days(365))))
    });

    let user = match SipAddress::parse("alice@contoso.test") {
        Ok(u) => u,
        Err(e) => panic!("bench user: {e}"),
    };
    let csr = match new_user_key_and_csr(&user) {
        Ok((_, csr)) => csr,
        Err(e) => panic!("cannot create the bench CSR: {e}"),
    };
    c.bench_function("issue_user_cert (RSA-2048 CSR, RSA-2048 CA)", |b| {
        b.iter(|| black_box(ca.issue_user_cert(black_box(&csr), &user, now, Duration::hours(8))))
    });

    let mut slow = c.benchmark_group("slow");
    slow.sample_size(10);
    slow.bench_function("issue_signing_cert (RSA-2048 keygen)", |b| {
        b.iter(|| black_box(ca.issue_signing_cert("bench signing", now, Duration::days(365))))
    });
    slow.bench_function("CertificateAuthority::generate", |b| {
        b.iter(|| black_box(CertificateAuthority::generate("bench CA", now)))
    });
    slow.finish();
}

criterion_group!(benches, issue);
criterion_main!(benches);
