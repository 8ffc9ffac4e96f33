//! Registrar throughput, measured on the core (no sockets): one complete sign-in (challenge,
//! both handshake legs, signed REGISTER, signed 200 OK), and one signed request answered.
//! The client's share of the work (its TLS legs, key generation) is outside the measured part
//! where criterion allows; see the notes per bench.

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_registrar::Account;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{Ua, World};

fn sign_in(c: &mut Criterion) {
    let mut w = World::new();
    let mut conn = 0u64;
    // Includes the client's TLS-DSK legs (about half of the handshake cost, see
    // `cargo bench -p lyncd-tlsdsk`), not its key generation: the certificate is issued once.
    let template = Ua::new(&w, "alice@contoso.com", 0);
    c.bench_function(
        "registrar: sign-in (401, C1/S1, C2/S2, signed 200; both ends)",
        |b| {
            b.iter(|| {
                conn += 1;
                let mut ua = Ua::new_with_cert(&template, conn);
                let ok = ua.sign_in(&mut w);
                assert_eq!(ok.status(), Some(200));
                w.registrar.connection_closed(conn);
                w.events();
            })
        },
    );
}

fn signed_request(c: &mut Criterion) {
    let mut w = World::new();
    let mut ua = Ua::new(&w, "alice@contoso.com", 1);
    assert_eq!(ua.sign_in(&mut w).status(), Some(200));
    c.bench_function(
        "registrar: signed SUBSCRIBE verified, answered, signed",
        |b| {
            b.iter_batched(
                || {
                    let sub = ua
                        .request(
                            "SUBSCRIBE",
                            "sip:alice@contoso.com",
                            &[("Event", "presence")],
                        )
                        .build();
                    ua.sign(sub)
                },
                |signed| {
                    let r = w.send(1, &signed, Account::Enabled);
                    assert_eq!(r.status(), Some(200));
                    w.events();
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, sign_in, signed_request);
criterion_main!(benches);
