//! Store operations on SQLite (WAL, synchronous=NORMAL) and, when `LYNCD_TEST_PG` names a
//! server, on a fresh PostgreSQL database there (`…/sqlite`, `…/postgres`); and the password
//! check.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_core::SipAddress;
use lyncd_store::password::{dummy_verify, hash_password, verify_password};
use lyncd_store::{NewUser, Registration, Store};
use lyncd_testkit::TestDb;
use time::macros::datetime;

/// One benchmarked database; the directory or the test database lives as long as this.
struct Backend {
    name: &'static str,
    store: Store,
    _sqlite_dir: Option<tempfile::TempDir>,
    _pg: Option<TestDb>,
}

fn backends(rt: &tokio::runtime::Runtime) -> Vec<Backend> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("no temporary directory: {e}"),
    };
    let sqlite = match rt.block_on(Store::open_dir(dir.path())) {
        Ok(s) => s,
        Err(e) => panic!("cannot open the SQLite bench store: {e}"),
    };
    let mut all = vec![Backend {
        name: "sqlite",
        store: sqlite,
        _sqlite_dir: Some(dir),
        _pg: None,
    }];
    if lyncd_testkit::pg::server_url().is_some() {
        let db = rt.block_on(TestDb::create());
        let pg = match rt.block_on(Store::open_url(&db.url())) {
            Ok(s) => s,
            Err(e) => panic!("cannot open the PostgreSQL bench store: {e}"),
        };
        all.push(Backend {
            name: "postgres",
            store: pg,
            _sqlite_dir: None,
            _pg: Some(db),
        });
    } else {
        eprintln!("store benches: LYNCD_TEST_PG not set, SQLite only");
    }
    all
}

fn store(c: &mut Criterion) {
    let now = datetime!(2026-11-25 12:00:00 UTC);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let backends = backends(&rt);
    // Hashing costs ~20 ms; the store only keeps the string, so hash once.
    let phc = match hash_password("bench password", b"bench-salt-16byt") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };

    let mut add = c.benchmark_group("store/add_user");
    for backend in &backends {
        let mut n = 0u64;
        add.bench_function(backend.name, |b| {
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
                black_box(rt.block_on(backend.store.add_user(new, now)))
            })
        });
    }
    add.finish();

    let Ok(probe) = SipAddress::parse("user1@bench.test") else {
        panic!("bad bench address")
    };
    let mut lookup = c.benchmark_group("store/user lookup");
    for backend in &backends {
        match rt.block_on(backend.store.user(&probe)) {
            Ok(Some(_)) => {}
            other => panic!("{}: the probe user is missing: {other:?}", backend.name),
        }
        lookup.bench_function(backend.name, |b| {
            b.iter(|| black_box(rt.block_on(backend.store.user(black_box(&probe)))))
        });
    }
    lookup.finish();

    // The registrar's write before every 200 OK: a refresh of one endpoint (an upsert).
    let mut register = c.benchmark_group("store/upsert_registration");
    for backend in &backends {
        let mut n = 0i64;
        register.bench_function(backend.name, |b| {
            b.iter(|| {
                n += 1;
                let r = Registration {
                    address: probe.clone(),
                    epid: format!("{:08x}", n % 64),
                    instance: None,
                    contact: "<sip:10.0.0.1:5061;transport=tls>".into(),
                    gruu: "sip:user1@bench.test;opaque=user:epid:x;gruu".into(),
                    node: "bench".into(),
                    registered_at: now,
                    expires_at: now + time::Duration::seconds(7200 + n),
                };
                black_box(rt.block_on(backend.store.upsert_registration(&r)))
            })
        });
    }
    register.finish();

    // What a node polls every 2 s (and loads on start): the key generations.
    let mut generations = c.benchmark_group("store/key_generations");
    for backend in &backends {
        let keys = [
            ("idp-signing", "x".repeat(3000)),
            ("webticket-wrap", "y".repeat(44)),
        ];
        let keys: Vec<(&str, &str)> = keys.iter().map(|(n, m)| (*n, m.as_str())).collect();
        if let Err(e) = rt.block_on(backend.store.ensure_key_generation(1, now, &keys, now)) {
            panic!("{}: {e}", backend.name);
        }
        generations.bench_function(backend.name, |b| {
            b.iter(|| black_box(rt.block_on(backend.store.key_generations())))
        });
    }
    generations.finish();

    for backend in backends {
        rt.block_on(backend.store.close());
        // The PostgreSQL test database is dropped here.
    }

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
