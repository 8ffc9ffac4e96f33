//! Store operations on SQLite (WAL, synchronous=NORMAL) and the password check.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_core::SipAddress;
use lyncd_store::password::{dummy_verify, hash_password, verify_password};
use lyncd_store::{NewUser, Store};
use time::macros::datetime;

fn store(c: &mut Criterion) {
    let now = datetime!(2026-11-25 12:00:00 UTC);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("no temporary directory: {e}"),
    };
    let store = match rt.block_on(Store::open_dir(dir.path())) {
        Ok(s) => s,
        Err(e) => panic!("cannot open the bench store: {e}"),
    };
    // Hashing costs ~20 ms; the store only keeps the string, so hash once.
    let phc = match hash_password("bench password", b"bench-salt-16byt") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };

    let mut n = 0u64;
    c.bench_function("store/add_user", |b| {
        b.iter(|| {
            n += 1;
            let address = SipAddress::parse(&format!("user{n}@bench.test"));
            let Ok(address) = address else {
                panic!("bad bench address")
            };
            let new = NewUser {
                address,
                password_hash: phc.clone(),
                display_name: Some(format!("User {n}")),
                object_id: format!("oid-{n}"),
            };
            black_box(rt.block_on(store.add_user(new, now)))
        })
    });

    let Ok(probe) = SipAddress::parse("user1@bench.test") else {
        panic!("bad bench address")
    };
    c.bench_function("store/user lookup", |b| {
        b.iter(|| black_box(rt.block_on(store.user(black_box(&probe)))))
    });

    let mut pw = c.benchmark_group("password");
    pw.sample_size(20);
    pw.bench_function("verify (argon2id m=19MiB t=2 p=1)", |b| {
        b.iter(|| black_box(verify_password(black_box("bench password"), &phc)))
    });
    pw.bench_function("dummy_verify", |b| {
        b.iter(|| dummy_verify(black_box("bench password")))
    });
    pw.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
