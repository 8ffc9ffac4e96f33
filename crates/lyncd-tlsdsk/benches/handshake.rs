//! Cost of one TLS-DSK handshake on the registrar, and of signing / verifying a SIP message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_tlsdsk::{MacAlgorithm, SigningKeys};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{TARGETNAME, fixture, now};

fn handshake(c: &mut Criterion) {
    let f = fixture();
    let server = f.server();
    let client = f.client();

    // Server work only: accept (C1 → S1) + finish (C2 → S2). The client's legs run between
    // them, outside the timed part.
    c.bench_function("server handshake (accept+finish, TLS 1.2, RSA-2048)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let (hello, c1) = client.connect(TARGETNAME, now()).expect("C1");
                let start = Instant::now();
                let (awaiting, s1) = server.accept(&c1, now()).expect("S1");
                spent += start.elapsed();
                let (finishing, c2) = hello.step(&s1).expect("C2");
                let start = Instant::now();
                let (done, s2) = awaiting.finish(&c2).expect("S2");
                spent += start.elapsed();
                black_box((done, finishing.finish(&s2).expect("client done")));
            }
            spent
        })
    });

    c.bench_function("full handshake, both ends (TLS 1.2)", |b| {
        b.iter(|| {
            let (hello, c1) = client.connect(TARGETNAME, now()).expect("C1");
            let (awaiting, s1) = server.accept(&c1, now()).expect("S1");
            let (finishing, c2) = hello.step(&s1).expect("C2");
            let (done, s2) = awaiting.finish(&c2).expect("S2");
            black_box((done, finishing.finish(&s2).expect("client done")))
        })
    });
}

fn signatures(c: &mut Criterion) {
    let material: [u8; 128] = std::array::from_fn(|i| i as u8);
    let keys = SigningKeys::from_key_material(&material, MacAlgorithm::HmacSha1);
    let buffer = [b'x'; 200];
    let sig = keys.sign_client(&buffer);
    c.bench_function("sign_client (HMAC-SHA1, 200 bytes)", |b| {
        b.iter(|| black_box(keys.sign_client(black_box(&buffer))))
    });
    c.bench_function("verify_client (HMAC-SHA1, 200 bytes)", |b| {
        b.iter(|| black_box(keys.verify_client(black_box(&buffer), black_box(&sig))))
    });
}

criterion_group!(benches, handshake, signatures);
criterion_main!(benches);
