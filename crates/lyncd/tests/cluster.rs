//! Several `lyncd serve` processes on one database, as the nodes of a cluster, and what must
//! hold when they share it: one sign-in served by two nodes, users and key rotations seen by
//! every node, nothing acknowledged lost when a node is killed, and migrations applied once
//! when nodes start together.
//!
//! Node A listens on 127.0.0.1 and node B on 127.0.0.2 (Linux routes all of 127/8 to `lo`),
//! with the same port numbers and the same names, as the front ends of one pool behind DNS. The
//! PostgreSQL tests need `LYNCD_TEST_PG` (scripts/test.sh sets it) and skip without it, unless
//! `CI` is set.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lab::{Lab, PASSWORD, Ports, Staying, USER, lyncd, text};
use lyncd_testkit::TestDb;
use serde_json::Value;
use sqlx::{Connection, Row};

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const BOB: &str = "bob@contoso.com";
const BOB_PASSWORD: &str = "bob's own password";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// A fresh PostgreSQL database, or `None` (skip) without `LYNCD_TEST_PG`.
fn pg() -> Option<TestDb> {
    block_on(TestDb::create_or_skip())
}

// ---- the two-node cluster -------------------------------------------------------------------

/// Nodes "a" (127.0.0.1) and "b" (127.0.0.2) on one database, configured alike but for the
/// node name and address. Each serves a DNS zone that splits a sign-in between them:
///
/// - A's zone: discovery, Autodiscover, Web Ticket and CertProv at A; the identity provider
///   and the SIP pool at B.
/// - B's zone: everything at B except the identity provider, which is at A.
///
/// So every sign-in through either zone has one node verify tokens the other signed.
fn cluster(db: &TestDb) -> (Lab, Lab) {
    let ports = Ports::free_on(&[A, B]);
    let mut a = Lab::builder()
        .database(&db.url())
        .node("a")
        .ip(A)
        .ports(ports)
        .dns(
            "address = \"127.0.0.1\"\n\
             hosts = { \"lyncfe.contoso.com\" = \"127.0.0.2\", \"login.contoso.com\" = \"127.0.0.2\" }\n",
        )
        .start();
    let mut b = Lab::builder()
        .database(&db.url())
        .node("b")
        .ip(B)
        .ports(ports)
        .user(false)
        .dns("address = \"127.0.0.2\"\nhosts = { \"login.contoso.com\" = \"127.0.0.1\" }\n")
        .start();
    // Generous: two nodes, a database and the clients share two cores.
    a.signin_timeout = 30;
    b.signin_timeout = 30;
    (a, b)
}

fn logs(labs: &[&Lab]) -> String {
    labs.iter()
        .map(|l| format!("--- log of the node at {} ---\n{}", l.ip, l.server_log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a server log that contain every one of `parts`.
fn log_lines(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

fn read_json(path: &Path) -> Value {
    let raw =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// (step, server IP) of every HTTP exchange of a HAR trace.
fn http_legs(har: &Value) -> Vec<(String, String)> {
    har["log"]["entries"]
        .as_array()
        .expect("HAR entries")
        .iter()
        .map(|e| {
            (
                e["_step"].as_str().unwrap_or("").to_string(),
                e["serverIPAddress"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The identity provider's steps; the rest of the web half is the web services'.
fn idp_step(step: &str) -> bool {
    step.starts_with("idp-") || step == "certprov-idp-token"
}

/// Every HTTP exchange went to the node `expected(step)` says, and each of `required` steps
/// happened.
fn assert_legs(har: &Value, expected: impl Fn(&str) -> Ipv4Addr, required: &[&str]) {
    let legs = http_legs(har);
    for (step, ip) in &legs {
        assert_eq!(
            ip,
            &expected(step).to_string(),
            "step {step} went to the wrong node: {legs:?}"
        );
    }
    for step in required {
        assert!(
            legs.iter().any(|(s, _)| s == step),
            "no HTTP exchange for step {step}: {legs:?}"
        );
    }
}

/// The response bodies of a step's HTTP exchanges (a trace written with --show-secrets).
fn response_text(har: &Value, step: &str) -> String {
    har["log"]["entries"]
        .as_array()
        .expect("HAR entries")
        .iter()
        .filter(|e| e["_step"] == step)
        .map(|e| e["response"]["content"]["text"].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_signed_in(doc: &Value, labs: &[&Lab]) {
    assert_eq!(
        doc["ok"],
        true,
        "the sign-in failed: {}\n{}",
        serde_json::to_string_pretty(&doc["failure"]).unwrap(),
        logs(labs)
    );
    assert!(doc["sip"]["gruu"].is_string(), "{doc}");
    assert_eq!(
        doc["sip"]["certificate"]["from_cache"], false,
        "each sign-in provisions a certificate"
    );
}

/// Polls `ready` every 100 ms for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn registrations_of(list: &[Value], user: &str) -> Vec<Value> {
    list.iter()
        .filter(|r| r["address"] == user)
        .cloned()
        .collect()
}

/// `GET /registrations?user=…` on a node's admin listener.
fn admin_registrations(lab: &Lab, user: &str) -> Vec<Value> {
    let (status, body) = lab
        .admin_get(&format!("/registrations?user={user}"))
        .expect("the admin listener answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("/registrations is not a JSON array: {body}"))
}

#[test]
fn one_sign_in_is_served_by_two_nodes_and_users_are_shared() {
    let Some(db) = pg() else { return };
    let (a, b) = cluster(&db);

    // Through A's zone: web services at A, identity provider and SIP pool at B. The client
    // stays signed in so its registration can be looked at.
    let trace = a.dir.path().join("split.har");
    let client = a
        .signin_staying(USER, PASSWORD, &["--trace", trace.to_str().unwrap()], 600)
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&[&a, &b])));
    let doc = client.doc.clone();
    assert_signed_in(&doc, &[&a, &b]);
    let har = read_json(&trace);
    assert_legs(
        &har,
        |step| if idp_step(step) { B } else { A },
        &[
            "lyncdiscover",
            "autodiscover-challenge",
            "web-ticket-mex",
            "idp-token",
            "web-ticket",
            "autodiscover-user",
            "certprov-mex",
            "certprov-idp-token",
            "certprov-web-ticket",
            "certprov",
        ],
    );
    // What each node did, by its own log: B signed the identity token A's Web Ticket service
    // accepted; A issued the certificate B's registrar accepted in the TLS-DSK handshake.
    let (log_a, log_b) = (a.server_log(), b.server_log());
    let serial = doc["sip"]["certificate"]["serial"].as_str().unwrap();
    assert_eq!(
        log_lines(&log_b, &["idp: token issued", USER]),
        2,
        "{log_b}"
    );
    assert_eq!(log_lines(&log_a, &["idp: token issued"]), 0, "{log_a}");
    assert_eq!(
        log_lines(&log_a, &["webticket: issued", USER]),
        2,
        "{log_a}"
    );
    assert_eq!(log_lines(&log_b, &["webticket: issued"]), 0, "{log_b}");
    assert_eq!(
        log_lines(&log_a, &["certprov: certificate issued", serial]),
        1,
        "{log_a}"
    );
    assert!(
        log_lines(&log_b, &["sip: TLS-DSK handshake completed", USER]) >= 1,
        "{log_b}"
    );
    assert!(
        log_lines(&log_b, &["sip: registered", USER]) >= 1,
        "{log_b}"
    );
    for line in ["sip: REGISTER challenged", "sip: registered"] {
        assert_eq!(log_lines(&log_a, &[line]), 0, "A saw no SIP: {log_a}");
    }

    // The registration is B's, and every node and the CLI see it in the shared database.
    let gruu = doc["sip"]["gruu"].as_str().unwrap();
    let stored = registrations_of(&a.registrations(), USER);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["node"], "b", "{stored:?}");
    assert_eq!(stored[0]["gruu"], gruu, "{stored:?}");
    for node in [&a, &b] {
        let listed = admin_registrations(node, USER);
        assert_eq!(listed, stored, "/registrations of the node at {}", node.ip);
    }
    assert_eq!(admin_registrations(&a, BOB), Vec::<Value>::new());

    // The client goes away: B drops the registration, and A sees that.
    client.end();
    wait_until(
        Duration::from_secs(30),
        "the registration is gone once the client is",
        || admin_registrations(&a, USER).is_empty(),
    );

    // A user added through B's database signs in at A alone: the web half and SIP.
    b.add_user(BOB, BOB_PASSWORD);
    let trace = a.dir.path().join("bob.har");
    let (doc, code, out) = a.signin_json_as(
        BOB,
        &[
            "--resolve",
            "lyncfe.contoso.com:127.0.0.1",
            "--resolve",
            "login.contoso.com:127.0.0.1",
            "--trace",
            trace.to_str().unwrap(),
        ],
        BOB_PASSWORD,
    );
    assert_signed_in(&doc, &[&a, &b]);
    assert_eq!(code, 0, "{}", text(&out));
    assert_legs(
        &read_json(&trace),
        |_| A,
        &["lyncdiscover", "idp-token", "web-ticket", "certprov"],
    );
    let (log_a, log_b) = (a.server_log(), b.server_log());
    assert!(log_lines(&log_a, &["sip: registered", BOB]) >= 1, "{log_a}");
    assert_eq!(
        log_lines(&log_b, &[BOB]),
        0,
        "B served nothing of Bob's: {log_b}"
    );
}

/// `lyncd keys list --json` as (generation, state), newest first.
fn key_generations(lab: &Lab) -> Vec<(i64, String)> {
    let out = lab.cli(&["keys", "list", "--json"], None);
    assert!(out.status.success(), "keys list: {}", text(&out));
    common::lab::json_lines(&out.stdout)
        .iter()
        .map(|g| {
            (
                g["generation"].as_i64().unwrap(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The response bodies of a step of a trace written with `--show-secrets`, which hold the
/// tokens. They name the keys of the generation that made them: the identity provider
/// encrypts its token to the Web Ticket encryption key of its signing generation, and the Web
/// Ticket service wraps the ticket's proof key with its own; generation N > 1 names its keys
/// `…-gN`.
fn token_key_names(har: &Value, step: &str) -> String {
    let body = response_text(har, step);
    assert!(!body.is_empty(), "no response body for {step}");
    body
}

#[test]
fn a_key_rotation_through_one_node_is_honoured_by_the_other() {
    let Some(db) = pg() else { return };
    let (a, b) = cluster(&db);
    let all = [&a, &b];
    assert_eq!(key_generations(&a), [(1, "signs".to_string())]);

    // Before: a web sign-in through B's zone (identity provider at A, the rest at B) carries
    // generation 1's key names.
    let trace = b.dir.path().join("before.har");
    let (doc, _, _) = b.signin_json(
        &[
            "--web-only",
            "--show-secrets",
            "--trace",
            trace.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert_eq!(doc["ok"], true, "{doc}\n{}", logs(&all));
    let before = read_json(&trace);
    assert_legs(&before, |s| if idp_step(s) { A } else { B }, &["idp-token"]);
    let idp = token_key_names(&before, "idp-token");
    assert!(idp.contains("lyncd-webticket-encryption<"), "{idp}");
    assert!(!idp.contains("-g2"), "{idp}");

    // Rotate through A's database (the CLI never talks to a node): generation 2 signs 3 s
    // from now.
    let out = a.cli(&["keys", "rotate", "--activate-in", "3"], None);
    assert!(out.status.success(), "keys rotate: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("generation 2 signs from"),
        "{}",
        text(&out)
    );
    // Both nodes load it within their 2 s reload interval (generous on a loaded machine).
    wait_until(
        Duration::from_secs(60),
        "both nodes load generation 2",
        || {
            all.iter().all(|l| {
                log_lines(
                    &l.server_log(),
                    &["keys: loaded new token key generations", "2, 1"],
                ) >= 1
            })
        },
    );
    wait_until(Duration::from_secs(60), "generation 2 signs", || {
        key_generations(&a) == [(2, "signs".to_string()), (1, "verifies".to_string())]
    });

    // Through B's zone: A's identity provider now signs with generation 2 and encrypts to
    // generation 2's key, which only a node that loaded generation 2 can open: B's Web Ticket
    // service does (twice, for Autodiscover and for CertProv), and signs with generation 2
    // itself.
    let trace = b.dir.path().join("after-b.har");
    let (doc, _, _) = b.signin_json(
        &["--show-secrets", "--trace", trace.to_str().unwrap()],
        PASSWORD,
    );
    assert_signed_in(&doc, &all);
    let har = read_json(&trace);
    assert_legs(
        &har,
        |s| if idp_step(s) { A } else { B },
        &["idp-token", "web-ticket", "certprov-idp-token", "certprov"],
    );
    for step in ["idp-token", "certprov-idp-token"] {
        let body = token_key_names(&har, step);
        assert!(
            body.contains("lyncd-webticket-encryption-g2<"),
            "{step}: {body}"
        );
    }
    for step in ["web-ticket", "certprov-web-ticket"] {
        let body = token_key_names(&har, step);
        assert!(body.contains("lyncd-webticket-wrap-g2<"), "{step}: {body}");
    }

    // And the other way round through A's zone: B's identity provider signs with generation
    // 2; A's Web Ticket service and CertProv accept what it and A made with generation 2.
    let trace = a.dir.path().join("after-a.har");
    let (doc, _, _) = a.signin_json(
        &["--show-secrets", "--trace", trace.to_str().unwrap()],
        PASSWORD,
    );
    assert_signed_in(&doc, &all);
    let har = read_json(&trace);
    assert_legs(
        &har,
        |s| if idp_step(s) { B } else { A },
        &["idp-token", "web-ticket", "certprov"],
    );
    let body = token_key_names(&har, "idp-token");
    assert!(body.contains("lyncd-webticket-encryption-g2<"), "{body}");
    let body = token_key_names(&har, "certprov-web-ticket");
    assert!(body.contains("lyncd-webticket-wrap-g2<"), "{body}");
}

// ---- the database, directly -----------------------------------------------------------------

/// Runs a query on the database at `url` (`postgres://…` or `sqlite://FILE`) and maps its rows.
fn sql<T>(url: &str, query: &'static str, map: impl Fn(&sqlx::any::AnyRow) -> T) -> Vec<T> {
    sqlx::any::install_default_drivers();
    block_on(async {
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the database: {e}"));
        let rows = sqlx::query(query)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let _ = conn.close().await;
        rows.iter().map(map).collect()
    })
}

fn count(url: &str, query: &'static str) -> i64 {
    sql(url, query, |r| r.get::<i64, _>(0))[0]
}

/// The database URL of a lab: its PostgreSQL database or its SQLite file.
fn db_url(lab: &Lab) -> String {
    match lab.database_url() {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}", lab.sqlite_file().display()),
    }
}

/// The schema version this lyncd knows: its newest migration.
fn latest_migration() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lyncd-store/migrations");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .max()
        .expect("at least one migration")
}

/// Every migration applied exactly once and successfully; every row's references resolve;
/// every key generation complete. SQLite also checks its file.
fn assert_consistent(url: &str) {
    let latest = latest_migration();
    let versions = sql(
        url,
        "SELECT version FROM _sqlx_migrations ORDER BY version",
        |r| r.get::<i64, _>(0),
    );
    assert_eq!(
        versions,
        (1..=latest).collect::<Vec<_>>(),
        "_sqlx_migrations"
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success"
        ),
        0
    );
    for (what, query) in [
        (
            "users without their tenant",
            "SELECT COUNT(*) FROM users u LEFT JOIN tenants t ON t.domain = u.domain \
             WHERE t.domain IS NULL",
        ),
        (
            "certificates without their user",
            "SELECT COUNT(*) FROM issued_certificates c \
             LEFT JOIN users u ON u.address_key = c.address_key WHERE u.address_key IS NULL",
        ),
        (
            "registrations without their user",
            "SELECT COUNT(*) FROM registrations r \
             LEFT JOIN users u ON u.address_key = r.address_key WHERE u.address_key IS NULL",
        ),
        (
            "keys without their generation",
            "SELECT COUNT(*) FROM generation_keys k \
             LEFT JOIN key_generations g ON g.generation = k.generation WHERE g.generation IS NULL",
        ),
        (
            "key generations without four keys",
            "SELECT COUNT(*) FROM key_generations g \
             WHERE (SELECT COUNT(*) FROM generation_keys k WHERE k.generation = g.generation) <> 4",
        ),
        (
            "CAs other than one",
            "SELECT ABS(COUNT(*) - 1) FROM service_keys WHERE name = 'ca'",
        ),
    ] {
        assert_eq!(count(url, query), 0, "{what}");
    }
    if url.starts_with("sqlite:") {
        let check = sql(url, "PRAGMA integrity_check", |r| r.get::<String, _>(0));
        assert_eq!(check, ["ok"], "PRAGMA integrity_check");
        let violations = sql(url, "PRAGMA foreign_key_check", |r| r.get::<String, _>(0));
        assert!(
            violations.is_empty(),
            "PRAGMA foreign_key_check: {violations:?}"
        );
    }
}

// ---- a node killed in the middle of sign-ins and user changes ---------------------------------

/// A user change made with the CLI while the node runs and dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Add,
    SipOff,
    RemoteAccessOff,
    Disable,
}

impl Change {
    const ALL: [Change; 4] = [
        Change::Add,
        Change::SipOff,
        Change::RemoteAccessOff,
        Change::Disable,
    ];

    fn run(self, user: &str, store: &[String]) -> std::process::Output {
        let mut args: Vec<&str> = match self {
            Change::Add => vec!["user", "add", user, "--password-stdin"],
            Change::SipOff => vec!["user", "set", user, "--sip", "off"],
            Change::RemoteAccessOff => vec!["user", "set", user, "--remote-access", "off"],
            Change::Disable => vec!["user", "disable", user],
        };
        args.extend(store.iter().map(String::as_str));
        lyncd(&args, Some("a password of its own\n"))
    }

    /// Whether the listed user (`lyncd user list --json`) shows this change.
    fn shows_in(self, user: &Value) -> bool {
        match self {
            Change::Add => true,
            Change::SipOff => user["sip_enabled"] == false,
            Change::RemoteAccessOff => user["remote_access"] == false,
            Change::Disable => user["enabled"] == false,
        }
    }
}

/// Sign-ins (each staying signed in, so its registration stays) and user changes run
/// concurrently against `lab`; the node is killed (SIGKILL) once a few of each were
/// acknowledged and more are in flight; it restarts on the same database, which must hold
/// everything acknowledged and be consistent, and serve a fresh sign-in.
fn crash_and_restart(mut lab: Lab, node: &str) {
    lab.signin_timeout = 30;
    const SIGNERS: usize = 3;
    let signers: Vec<String> = (0..SIGNERS)
        .map(|i| format!("signer{i}@contoso.com"))
        .collect();
    for user in &signers {
        lab.add_user(user, PASSWORD);
    }
    let store = lab.store_args();
    // No troubleshooting checks: the sign-ins themselves, as many as the machine manages.
    let argv: Vec<Vec<String>> = signers
        .iter()
        .map(|u| {
            let mut argv = lab.staying_args(u, 900);
            argv.push("--no-checks".into());
            argv
        })
        .collect();

    let stop = AtomicBool::new(false);
    // The sign-ins not done yet, by a number of their own: killed with the node, as they
    // would otherwise wait out their timeouts against a dead DNS server and node.
    let in_flight: Mutex<Vec<(usize, Arc<Mutex<Child>>)>> = Mutex::new(Vec::new());
    let next_run = AtomicUsize::new(0);
    // (user, sign-in document) of every sign-in that completed with ok = true.
    let signed_in: Mutex<Vec<(String, Value)>> = Mutex::new(Vec::new());
    let not_signed_in: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let clients: Mutex<Vec<Staying>> = Mutex::new(Vec::new());
    // (user, change, exit code 0, output).
    let changes: Mutex<Vec<(String, Change, bool, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let mut killed_after = Duration::ZERO;
    let mut in_flight_at_kill = 0;

    std::thread::scope(|s| {
        for (user, argv) in signers.iter().zip(&argv) {
            let (stop, in_flight, next_run) = (&stop, &in_flight, &next_run);
            let (signed_in, not_signed_in, clients) = (&signed_in, &not_signed_in, &clients);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = next_run.fetch_add(1, Ordering::SeqCst);
                    let run = Staying::spawn_watched(argv, PASSWORD, |child| {
                        let mut running = in_flight.lock().unwrap();
                        if stop.load(Ordering::SeqCst) {
                            // Started as the node died: not part of the run.
                            let _ = child.lock().unwrap().kill();
                        } else {
                            running.push((n, child));
                        }
                    });
                    in_flight.lock().unwrap().retain(|(m, _)| *m != n);
                    match run {
                        Ok(client) if client.doc["ok"] == true => {
                            signed_in
                                .lock()
                                .unwrap()
                                .push((user.clone(), client.doc.clone()));
                            clients.lock().unwrap().push(client);
                        }
                        Ok(client) => not_signed_in
                            .lock()
                            .unwrap()
                            .push(client.doc["failure"].to_string()),
                        Err(e) => not_signed_in.lock().unwrap().push(e),
                    }
                }
            });
        }
        let (stop, changes, store) = (&stop, &changes, &store);
        s.spawn(move || {
            for n in 0.. {
                let user = format!("change{n}@contoso.com");
                for change in Change::ALL {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let out = change.run(&user, store);
                    let ok = out.status.success();
                    changes
                        .lock()
                        .unwrap()
                        .push((user.clone(), change, ok, text(&out)));
                    if !ok {
                        break;
                    }
                }
            }
        });

        let deadline = started + Duration::from_secs(300);
        loop {
            let acknowledged = signed_in.lock().unwrap().len();
            let changed = changes.lock().unwrap().iter().filter(|c| c.2).count();
            // Checked and killed under the lock, so the sign-ins it lists are in flight.
            let running = in_flight.lock().unwrap();
            if acknowledged >= 6 && changed >= 6 && !running.is_empty() {
                lab.kill();
                killed_after = started.elapsed();
                stop.store(true, Ordering::SeqCst);
                in_flight_at_kill = running.len();
                for (_, child) in running.iter() {
                    let _ = child.lock().unwrap().kill();
                }
                break;
            }
            drop(running);
            if Instant::now() > deadline {
                stop.store(true, Ordering::SeqCst);
                panic!(
                    "no crash point after {acknowledged} sign-ins and {changed} changes: {:?}\n{}",
                    not_signed_in.lock().unwrap(),
                    lab.server_log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    // The clients of the dead node are gone too (their connections died with it).
    clients.lock().unwrap().clear();
    let signed_in = signed_in.into_inner().unwrap();
    let not_signed_in = not_signed_in.into_inner().unwrap();
    let changes = changes.into_inner().unwrap();
    eprintln!(
        "{node}: killed after {:.1} s with {in_flight_at_kill} sign-in(s) in flight: {} sign-ins \
         acknowledged, {} not; {} user changes acknowledged, {} not",
        killed_after.as_secs_f64(),
        signed_in.len(),
        not_signed_in.len(),
        changes.iter().filter(|c| c.2).count(),
        changes.iter().filter(|c| !c.2).count(),
    );
    // Nothing before the kill may have failed: the CLI does not depend on the node, and a
    // sign-in only fails once the node is gone (at most one per signer).
    assert!(
        not_signed_in.len() <= SIGNERS,
        "sign-ins failed before the kill: {not_signed_in:#?}"
    );
    let failed: Vec<_> = changes.iter().filter(|c| !c.2).collect();
    assert!(failed.is_empty(), "user changes failed: {failed:#?}");

    let restart = Instant::now();
    lab.spawn();
    lab.wait_ready();
    eprintln!(
        "{node}: ready again {:.1} s after the restart",
        restart.elapsed().as_secs_f64()
    );

    // Every acknowledged user change is there.
    let users: BTreeMap<String, Value> = lab
        .users()
        .into_iter()
        .map(|u| (u["address"].as_str().unwrap().to_string(), u))
        .collect();
    for (user, change, _, _) in &changes {
        let listed = users
            .get(user)
            .unwrap_or_else(|| panic!("{user} was added (exit 0) but is not listed"));
        assert!(
            change.shows_in(listed),
            "{change:?} of {user} exited 0 but is not stored: {listed}"
        );
    }
    // Every acknowledged sign-in's registration and certificate are there.
    let url = db_url(&lab);
    let registrations = lab.registrations();
    let certificates: BTreeMap<String, String> = sql(
        &url,
        "SELECT serial_hex, address_key FROM issued_certificates",
        |r| (r.get::<String, _>(0), r.get::<String, _>(1)),
    )
    .into_iter()
    .collect();
    for (user, doc) in &signed_in {
        let gruu = &doc["sip"]["gruu"];
        assert!(
            registrations
                .iter()
                .any(|r| r["address"] == *user && r["gruu"] == *gruu && r["node"] == node),
            "the acknowledged registration {gruu} of {user} is missing: {registrations:#?}"
        );
        let serial = doc["sip"]["certificate"]["serial"].as_str().unwrap();
        assert_eq!(
            certificates.get(serial).map(String::as_str),
            Some(user.as_str()),
            "the certificate {serial} issued to {user} is not on record"
        );
    }
    assert_consistent(&url);

    eprintln!(
        "{node}: checked {:.1} s after the restart",
        restart.elapsed().as_secs_f64()
    );
    // The restarted node serves a fresh sign-in, and records its certificate.
    let (doc, code, out) = lab.signin_json(&[], PASSWORD);
    assert_signed_in(&doc, &[&lab]);
    assert_eq!(code, 0, "{}", text(&out));
    let serial = doc["sip"]["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let recorded = sql(&url, "SELECT serial_hex FROM issued_certificates", |r| {
        r.get::<String, _>(0)
    });
    assert!(recorded.contains(&serial), "{serial} not in {recorded:?}");
}

#[test]
fn killing_a_postgres_node_loses_nothing_acknowledged() {
    let Some(db) = pg() else { return };
    let lab = Lab::builder().database(&db.url()).node("crash-pg").start();
    crash_and_restart(lab, "crash-pg");
}

#[test]
fn killing_a_sqlite_node_loses_nothing_acknowledged() {
    let lab = Lab::builder().node("crash-sqlite").start();
    crash_and_restart(lab, "crash-sqlite");
}

// ---- two nodes migrating one fresh database at once -----------------------------------------

/// Two nodes started at the same instant on one fresh database both become ready; the schema
/// is at the newest version with each migration applied once; they created one CA and one
/// generation of keys between them, and both serve sign-ins with it.
fn start_together(mut first: Lab, mut second: Lab, backend: &str) {
    first.spawn();
    second.spawn();
    first.wait_ready();
    second.wait_ready();
    let latest = latest_migration();
    for lab in [&first, &second] {
        let (status, body) = lab.admin_get("/readyz").unwrap();
        assert_eq!(status, 200, "{body}");
        let ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["schema"], latest, "{body}");
        assert_eq!(ready["database"], backend, "{body}");
    }
    let out = first.cli(&["migrate"], None);
    assert!(out.status.success(), "migrate: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("schema version {latest} ({backend})\n")
    );
    let url = db_url(&first);
    assert_consistent(&url);
    assert_eq!(
        sql(&url, "SELECT generation FROM key_generations", |r| r
            .get::<i64, _>(0)),
        [1],
        "one generation of keys between them"
    );
    // The first user makes contoso.com a tenant: each node publishes its discovery names
    // and re-issues its certificate for them within seconds.
    first.add_user(USER, PASSWORD);
    for lab in [&first, &second] {
        wait_until(Duration::from_secs(60), "the new tenant is served", || {
            let log = lab.server_log();
            log_lines(&log, &["https: certificate re-issued"]) >= 1
                && log_lines(&log, &["dns: serving", "lyncdiscover.contoso.com"]) >= 1
        });
    }
    for lab in [&mut first, &mut second] {
        lab.export_ca();
        lab.signin_timeout = 30;
        let (doc, code, out) = lab.signin_json(&["--web-only"], PASSWORD);
        assert_eq!(
            (doc["ok"].clone(), code),
            (Value::Bool(true), 0),
            "{}\n{}",
            text(&out),
            lab.server_log()
        );
    }
}

#[test]
fn two_nodes_migrate_a_fresh_postgres_database_at_once() {
    let Some(db) = pg() else { return };
    let first = Lab::builder()
        .database(&db.url())
        .node("m1")
        .ip(A)
        .user(false)
        .prepare();
    let second = Lab::builder()
        .database(&db.url())
        .node("m2")
        .ip(B)
        .user(false)
        .prepare();
    start_together(first, second, "postgres");
}

#[test]
fn two_nodes_migrate_a_fresh_sqlite_file_at_once() {
    let shared = tempfile::tempdir().unwrap();
    let first = Lab::builder()
        .data_dir(shared.path())
        .node("m1")
        .ip(A)
        .user(false)
        .prepare();
    let second = Lab::builder()
        .data_dir(shared.path())
        .node("m2")
        .ip(B)
        .user(false)
        .prepare();
    start_together(first, second, "sqlite");
}
