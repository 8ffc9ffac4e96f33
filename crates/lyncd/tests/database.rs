//! Bad input: a database that is down or read-only, at start and mid-run, against real
//! `lyncd serve` processes. Each gives a clear error and a retry, and never a half-written
//! record: the node logs which database (password redacted) and that it retries, `/readyz`
//! says why it is not ready, a sign-in fails at a named step with 503 and the database reason
//! (not as bad credentials), nothing of the failed attempt is stored, and the node recovers
//! without a restart once the database is back.
//!
//! PostgreSQL "down" is a [`TcpProxy`] in front of the shared test server, switched off and
//! on; "read-only" is [`set_read_only`] (`default_transaction_read_only`). SQLite "read-only"
//! is a `mode=ro` URL. The PostgreSQL tests need `LYNCD_TEST_PG` (scripts/test.sh sets it) and
//! skip without it, unless `CI` is set.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{Lab, PASSWORD, START_TIMEOUT, USER, diagnostic_codes, failure, lyncd, text};
use lyncd_testkit::{TcpProxy, TestDb, set_read_only, url_via};
use serde_json::Value;
use sqlx::Connection;

/// The password put into database URLs: it must never show in a log, an error or `/readyz`.
const DB_PASSWORD: &str = "pg-s3cret-never-logged";

/// How long a sign-in may take while the database is down: every web request that needs it
/// waits for a connection (5 s) before its 503, and Autodiscover has four URLs to try.
const SIGNIN_TIMEOUT_SECS: u64 = 40;

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

/// The host and port of a `postgres://` URL (where a proxy forwards to).
fn server_addr(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("a database URL");
    let host = parsed.host_str().expect("a host").to_string();
    let port = parsed.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("the test server's address")
        .next()
        .expect("an address")
}

/// `url` with [`DB_PASSWORD`] as its password (the test server trusts loopback, so any
/// password works; the point is to see it redacted).
fn with_password(url: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a database URL");
    parsed.set_password(Some(DB_PASSWORD)).expect("a password");
    parsed.into()
}

/// `url` as lyncd shows it: the password replaced by `***`.
fn redacted(url: &str) -> String {
    url.replace(DB_PASSWORD, "***")
}

/// One number from the database, read straight through sqlx (not through lyncd; works while
/// the database is read-only).
fn count(url: &str, query: &'static str) -> i64 {
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
        let n: i64 = sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let _ = conn.close().await;
        n
    })
}

/// Rows of `issued_certificates`: one per certificate Certificate Provisioning handed out.
fn certificates(url: &str) -> i64 {
    count(url, "SELECT COUNT(*) FROM issued_certificates")
}

/// Rows of `registrations`, expired or not.
fn registration_rows(url: &str) -> i64 {
    count(url, "SELECT COUNT(*) FROM registrations")
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

/// A client's registration is removed when its connection closes, asynchronously: wait for
/// that before taking the database away, or the removal fails and the row stays until it
/// expires (which the node logs), muddling "nothing of the failed attempt was stored".
fn wait_no_registrations(lab: &Lab, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while registration_rows(url) != 0 {
        assert!(
            Instant::now() < deadline,
            "the registration of a finished sign-in was not removed within 30 s\n--- server log ---\n{}",
            lab.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `/readyz` answers `status`; its body.
fn wait_readyz(lab: &Lab, status: u16, limit: Duration) -> String {
    let mut last;
    let deadline = Instant::now() + limit;
    loop {
        match lab.admin_get("/readyz") {
            Ok((s, body)) if s == status => return body,
            Ok((s, body)) => last = format!("{s} {body}"),
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {status} within {} s (last: {last})\n--- server log ---\n{}",
            limit.as_secs(),
            lab.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The server log without ANSI colours (the node's stderr is not a terminal, but tracing
/// colours it anyway unless NO_COLOR is set, and the lab does not set it).
fn plain_log(lab: &Lab) -> String {
    strip_ansi(&lab.server_log())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines of `log` that contain every one of `parts`.
fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

/// `lyncd signin --json` with the certificate cache in `cache` (or none) and `extra`
/// arguments: the document, the exit code and the output.
fn signin(lab: &Lab, cache: Option<&Path>, extra: &[&str]) -> (Value, i32, std::process::Output) {
    let mut args: Vec<String> = lab
        .signin_args()
        .into_iter()
        .filter(|a| a != "--no-cert-cache")
        .collect();
    match cache {
        Some(dir) => args.extend(["--cert-cache".into(), dir.to_str().unwrap().into()]),
        None => args.push("--no-cert-cache".into()),
    }
    args.push("--json".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lyncd(&argv, Some(&format!("{PASSWORD}\n")));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "signin --json did not print one JSON document ({e}): {}\n--- server log ---\n{}",
            text(&out),
            lab.server_log()
        )
    });
    (doc, out.status.code().unwrap_or(-1), out)
}

fn assert_signs_in(lab: &Lab, cache: Option<&Path>) -> Value {
    let (doc, code, out) = signin(lab, cache, &[]);
    assert_eq!(
        doc["ok"],
        true,
        "the sign-in failed: {}\n--- server log ---\n{}",
        text(&out),
        lab.server_log()
    );
    assert_eq!(code, 0);
    doc
}

/// The names of the steps a sign-in went through.
fn step_names(doc: &Value) -> Vec<String> {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Whether the certificate of a successful sign-in came from the cache.
fn from_cache(doc: &Value) -> bool {
    doc["sip"]["certificate"]["from_cache"]
        .as_bool()
        .unwrap_or_else(|| panic!("no sip.certificate.from_cache: {doc}"))
}

/// Asserts a failed sign-in: the failing `step`, `kind` and exit code, the failure's last step
/// marked failed with `status`; returns the failure object.
fn assert_failed(
    lab: &Lab,
    (doc, code, out): &(Value, i32, std::process::Output),
    step: &str,
    kind: &str,
    exit: i32,
    status: u64,
) -> Value {
    let context = || {
        format!(
            "failure: {}\nsteps: {:?}\nstderr: {}\n--- server log ---\n{}",
            serde_json::to_string_pretty(&doc["failure"]).unwrap(),
            step_names(doc),
            String::from_utf8_lossy(&out.stderr),
            lab.server_log()
        )
    };
    assert_eq!(doc["ok"], false, "{}", context());
    assert_eq!(
        failure(doc),
        (step.to_string(), kind.to_string()),
        "{}",
        context()
    );
    assert_eq!(*code, exit, "exit code; {}", context());
    assert_eq!(doc["failure"]["exit_code"], exit, "{}", context());
    let last = doc["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(last["step"], step, "{}", context());
    assert_eq!(last["result"], "failed", "{}", context());
    assert_eq!(last["status"], status, "{}", context());
    doc["failure"].clone()
}

/// The node's process is still the one started at first, and running (not a zombie): it
/// recovered by itself, without a restart.
fn assert_still_running(lab: &Lab, pid: Option<u32>) {
    assert_eq!(lab.pid(), pid, "the node was not restarted");
    let pid = pid.expect("a running node");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    assert!(
        matches!(state, Some(Some(c)) if c != 'Z' && c != 'X'),
        "lyncd serve (pid {pid}) exited: {stat}\n--- server log ---\n{}",
        lab.server_log()
    );
}

// ---- PostgreSQL down or read-only at start --------------------------------------------------

/// The database is unreachable when the node starts: it logs one clear line per attempt (the
/// database named, its password not), backs off, serves nothing yet, and once the database is
/// back it becomes ready and signs users in.
#[test]
fn postgres_down_at_start_is_retried_until_it_is_back() {
    let Some(db) = pg() else { return };
    // The user exists (and the schema is current) before the outage: a database restart.
    let out = lyncd(
        &[
            "user",
            "add",
            USER,
            "--password-stdin",
            "--database",
            &db.url(),
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "user add: {}", text(&out));
    let proxy = TcpProxy::start(server_addr(&db.url()));
    proxy.set_down(true);
    let url = url_via(&with_password(&db.url()), proxy.addr());
    let mut lab = Lab::builder().database(&url).user(false).prepare();
    lab.signin_timeout = SIGNIN_TIMEOUT_SECS;
    lab.spawn();

    // Attempts after 1 s and then 2 s: the backoff grows.
    wait_until(START_TIMEOUT, "two retries logged", || {
        plain_log(&lab).contains("retrying in 2 s")
    });
    let log = plain_log(&lab);
    let shown = format!("cannot reach the database at {}", redacted(&url));
    let attempts = lines_with(&log, &["ERROR", &shown, "retrying in"]);
    assert!(
        attempts.len() >= 2,
        "one line per attempt, naming the database ({shown}):\n{log}"
    );
    assert!(
        attempts[0].contains("retrying in 1 s") && attempts[1].contains("retrying in 2 s"),
        "{attempts:#?}"
    );
    assert!(
        attempts.iter().all(|l| l.contains("onnection refused")),
        "the cause is in the line: {attempts:#?}"
    );
    assert!(
        !log.contains(DB_PASSWORD),
        "the password is redacted:\n{log}"
    );
    // Nothing is served while the database is missing: not even the admin listener.
    assert!(lab.admin_get("/readyz").is_err(), "{log}");
    // Still retrying, not exited.
    assert_still_running(&lab, lab.pid());

    proxy.set_down(false);
    lab.wait_ready();
    lab.export_ca();
    let body = wait_readyz(&lab, 200, Duration::from_secs(5));
    assert!(body.contains("\"database\":\"postgres\""), "{body}");
    let doc = assert_signs_in(&lab, None);
    assert!(!from_cache(&doc));
    assert_eq!(certificates(&db.url()), 1);
    assert!(
        !plain_log(&lab).contains(DB_PASSWORD),
        "the password is redacted"
    );
}

/// The database refuses writes when the node starts: retried like an unreachable one, with
/// the reason, until it takes writes again.
#[test]
fn postgres_read_only_at_start_is_retried_until_it_is_writable() {
    let Some(db) = pg() else { return };
    let out = lyncd(
        &[
            "user",
            "add",
            USER,
            "--password-stdin",
            "--database",
            &db.url(),
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "user add: {}", text(&out));
    block_on(set_read_only(&db, true));
    let url = with_password(&db.url());
    let mut lab = Lab::builder().database(&url).user(false).prepare();
    lab.signin_timeout = SIGNIN_TIMEOUT_SECS;
    lab.spawn();

    wait_until(START_TIMEOUT, "a retry logged", || {
        plain_log(&lab).contains("retrying in")
    });
    let log = plain_log(&lab);
    let lines = lines_with(
        &log,
        &[
            "ERROR",
            &redacted(&url),
            "refuses writes",
            "retrying in 1 s",
        ],
    );
    assert_eq!(lines.len(), 1, "one clear line naming the database:\n{log}");
    assert!(lines[0].contains("read-only transaction"), "{}", lines[0]);
    assert!(
        !log.contains(DB_PASSWORD),
        "the password is redacted:\n{log}"
    );
    assert!(lab.admin_get("/readyz").is_err(), "{log}");
    assert_still_running(&lab, lab.pid());

    block_on(set_read_only(&db, false));
    lab.wait_ready();
    lab.export_ca();
    assert_signs_in(&lab, None);
    assert_eq!(certificates(&db.url()), 1);
}

// ---- PostgreSQL down mid-run ----------------------------------------------------------------

/// The database goes away under a running node: `/readyz` turns 503 with the reason, a
/// sign-in fails at Autodiscover with 503 + Retry-After (the server's words: the database),
/// nothing of it is stored, and when the database is back the same node is ready and signs
/// users in again.
#[test]
fn postgres_down_mid_run_is_a_503_and_the_node_recovers_without_restart() {
    let Some(db) = pg() else { return };
    let proxy = TcpProxy::start(server_addr(&db.url()));
    let url = url_via(&with_password(&db.url()), proxy.addr());
    let mut lab = Lab::builder().database(&url).start();
    lab.signin_timeout = SIGNIN_TIMEOUT_SECS;
    let pid = lab.pid();

    assert_signs_in(&lab, None);
    wait_no_registrations(&lab, &db.url());
    let certs = certificates(&db.url());
    assert_eq!(certs, 1);

    proxy.set_down(true);
    let body = wait_readyz(&lab, 503, Duration::from_secs(30));
    let ready: Value = serde_json::from_str(&body).expect("/readyz answers JSON");
    assert_eq!(ready["ready"], false, "{body}");
    assert!(
        ready["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("database unavailable")),
        "{body}"
    );
    assert!(!body.contains(DB_PASSWORD), "{body}");
    // Liveness is not readiness: the process still answers.
    assert_eq!(lab.admin_get("/healthz").unwrap().0, 200);

    let trace = lab.dir.path().join("down.har");
    let run = signin(&lab, None, &["--trace", trace.to_str().unwrap()]);
    let fail = assert_failed(&lab, &run, "lyncdiscover", "pool-unavailable", 11, 503);
    let got = fail["got"].as_str().unwrap();
    assert!(got.contains("HTTP 503"), "{got}");
    assert!(got.contains("Retry-After: 5 s"), "{got}");
    assert!(
        fail["explanation"]
            .as_str()
            .unwrap()
            .contains("server-side problem"),
        "{fail}"
    );
    // The answers themselves say why: the trace holds the 503 bodies.
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let answers: Vec<String> = har["log"]["entries"]
        .as_array()
        .expect("HAR entries")
        .iter()
        .filter(|e| e["_step"] == "lyncdiscover")
        .map(|e| {
            format!(
                "{} {}",
                e["response"]["status"],
                e["response"]["content"]["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(!answers.is_empty(), "{har}");
    assert!(
        answers
            .iter()
            .all(|a| a.starts_with("503 ") && a.contains("the database is unavailable")),
        "{answers:#?}"
    );
    let log = plain_log(&lab);
    assert!(
        !lines_with(
            &log,
            &["ERROR", "the database is unavailable; answered 503"]
        )
        .is_empty(),
        "{log}"
    );
    assert!(
        !log.contains(DB_PASSWORD),
        "the password is redacted:\n{log}"
    );

    proxy.set_down(false);
    wait_readyz(&lab, 200, Duration::from_secs(60));
    assert_still_running(&lab, pid);
    // Nothing of the failed attempt was stored.
    assert_eq!(certificates(&db.url()), certs);
    assert_eq!(registration_rows(&db.url()), 0);
    assert!(lab.registrations().is_empty());

    let doc = assert_signs_in(&lab, None);
    assert!(!from_cache(&doc));
    assert_eq!(certificates(&db.url()), certs + 1);
    assert!(
        log_has_ready_again(&lab),
        "the node logs that it is ready again:\n{}",
        plain_log(&lab)
    );
}

fn log_has_ready_again(lab: &Lab) -> bool {
    let log = plain_log(lab);
    !lines_with(&log, &["readiness: not ready", "database unavailable"]).is_empty()
        && log.contains("readiness: ready again")
}

// ---- PostgreSQL read-only mid-run -----------------------------------------------------------

/// The database turns read-only under a running node. A sign-in with a cached certificate
/// (no Certificate Provisioning, the only web step that writes) fails at the REGISTER whose
/// registration cannot be stored: 503 with ms-diagnostics 64010, decoded; no row is left. A
/// fresh sign-in fails at Certificate Provisioning with 503 and records no certificate. Once
/// writable again, the same node signs the cached client in.
#[test]
fn postgres_read_only_mid_run_refuses_registrations_and_certificates_cleanly() {
    let Some(db) = pg() else { return };
    let mut lab = Lab::builder().database(&with_password(&db.url())).start();
    lab.signin_timeout = SIGNIN_TIMEOUT_SECS;
    let pid = lab.pid();
    let cache = lab.dir.path().join("certs");

    let doc = assert_signs_in(&lab, Some(&cache));
    assert!(
        !from_cache(&doc),
        "the first sign-in provisions a certificate"
    );
    wait_no_registrations(&lab, &db.url());
    assert_eq!(certificates(&db.url()), 1);

    block_on(set_read_only(&db, true));

    // With the cached certificate: straight to SIP, where the registration cannot be written.
    let run = signin(&lab, Some(&cache), &[]);
    let steps = step_names(&run.0);
    assert!(
        !steps.iter().any(|s| s.starts_with("certprov")),
        "the cached certificate skips Certificate Provisioning: {steps:?}"
    );
    let fail = assert_failed(
        &lab,
        &run,
        "sip-register-signed",
        "pool-unavailable",
        28,
        503,
    );
    assert!(
        diagnostic_codes(&run.0).contains(&64010),
        "ms-diagnostics 64010 decoded: {fail}"
    );
    let decoded = fail["diagnostics"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["code"] == 64010))
        .unwrap_or_else(|| panic!("{fail}"));
    assert_eq!(
        decoded["reason"], "Registration could not be stored",
        "{fail}"
    );
    assert!(
        fail["explanation"]
            .as_str()
            .unwrap()
            .contains("Server diagnosis: 64010"),
        "{fail}"
    );
    let got = fail["got"].as_str().unwrap();
    assert!(got.contains("503"), "{got}");
    assert!(got.contains("Retry-After: 10"), "{got}");
    assert!(
        got.contains("cannot use its database"),
        "the registrar's reason: {got}"
    );
    let log = plain_log(&lab);
    assert!(
        !lines_with(
            &log,
            &[
                "registration not stored; answering 503 instead of 200",
                "refuses writes"
            ]
        )
        .is_empty(),
        "{log}"
    );
    assert_eq!(
        registration_rows(&db.url()),
        0,
        "no registration row for the refused REGISTER"
    );

    // Without a cache: Certificate Provisioning cannot record the certificate.
    let run = signin(&lab, None, &[]);
    let fail = assert_failed(&lab, &run, "certprov", "pool-unavailable", 25, 503);
    let got = fail["got"].as_str().unwrap();
    assert!(got.contains("HTTP 503"), "{got}");
    assert!(got.contains("Retry-After: 5 s"), "{got}");
    assert!(
        got.contains("the database is unavailable"),
        "the service's reason: {got}"
    );
    assert_eq!(
        certificates(&db.url()),
        1,
        "no certificate recorded while read-only"
    );
    assert_eq!(registration_rows(&db.url()), 0);

    block_on(set_read_only(&db, false));
    // `lyncd registrations` (which opens the database itself) shows nothing of the failures.
    assert!(lab.registrations().is_empty());
    wait_readyz(&lab, 200, Duration::from_secs(60));
    let doc = assert_signs_in(&lab, Some(&cache));
    assert!(from_cache(&doc), "the cached certificate is used again");
    assert_eq!(certificates(&db.url()), 1);
    assert_still_running(&lab, pid);
}

// ---- SQLite read-only at start --------------------------------------------------------------

/// Runs `lyncd ARGS` (a `serve` that should give up) until it exits, for at most `limit`;
/// polls `admin` meanwhile and fails if it ever answers `/readyz` with 200. The exit code and
/// stderr.
fn run_until_exit(args: &[&str], admin: SocketAddr, limit: Duration) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lyncd"))
        .args(args)
        .env_remove("LYNCD_DATA_DIR")
        .env_remove("LYNCD_DATABASE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawning lyncd");
    let read = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for lyncd") {
            return (status.code().unwrap_or(-1), read());
        }
        if let Ok((200, body)) = common::lab::http_get(admin, "/readyz") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lyncd serve is ready on a read-only database: {body}\n{}",
                read()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lyncd {args:?} did not exit within {} s:\n{}",
                limit.as_secs(),
                read()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lyncd serve --database <url> --database-wait 2` on `lab`'s configuration: gives up with
/// a clear error after retrying.
fn assert_gives_up(lab: &Lab, url: &str, reason: &str) -> String {
    let config = lab.config.to_str().unwrap();
    let started = Instant::now();
    let (code, stderr) = run_until_exit(
        &[
            "serve",
            "--config",
            config,
            "--database",
            url,
            "--database-wait",
            "2",
        ],
        SocketAddr::from((lab.ip, lab.admin)),
        Duration::from_secs(60),
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "gave up before --database-wait 2 was over: {stderr}"
    );
    let retries = lines_with(&stderr, &["ERROR", url, reason, "retrying in 1 s"]);
    assert!(
        retries.len() >= 2,
        "one line per attempt, naming {url} and {reason:?}:\n{stderr}"
    );
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("lyncd: ")
            && last.contains(url)
            && last.contains(reason)
            && last.contains("gave up after 2 s (--database-wait 2"),
        "the last line says why and that it gave up: {last}\n{stderr}"
    );
    stderr
}

/// `sqlite://…?mode=ro` where no database exists yet: nothing can create it, so the node
/// retries, gives up, and says which file it could not open.
#[test]
fn sqlite_read_only_url_without_a_database_gives_up_with_a_clear_error() {
    let lab = Lab::builder().user(false).prepare();
    let data = lab.dir.path().join("empty");
    std::fs::create_dir(&data).unwrap();
    let file = data.join("lyncd.db");
    let url = format!("sqlite://{}?mode=ro", file.display());
    assert_gives_up(&lab, &url, "unable to open database file");
    assert!(!file.exists(), "a read-only URL creates nothing");
}

/// `sqlite://…?mode=ro` on the database of a node that ran before (schema current, keys
/// there): opening it needs no write, but serving does. The node must not start on it and
/// answer ready, to fail every sign-in later: it retries, then gives up, naming the reason.
#[test]
fn sqlite_read_only_url_on_an_existing_database_gives_up_with_a_clear_error() {
    let mut ran = Lab::start("");
    ran.kill();
    let file = ran.sqlite_file();
    let before = std::fs::read(&file).unwrap();
    let url = format!("sqlite://{}?mode=ro", file.display());
    let stderr = assert_gives_up(&ran, &url, "refuses writes");
    assert!(
        stderr.contains("attempt to write a readonly database"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the database is untouched"
    );

    // Schema only, no keys yet (`lyncd migrate` ran, no node did): the same.
    let fresh = Lab::builder().user(false).prepare();
    let file = fresh.dir.path().join("migrated.db");
    let out = lyncd(
        &[
            "migrate",
            "--database",
            &format!("sqlite://{}?mode=rwc", file.display()),
        ],
        None,
    );
    assert!(out.status.success(), "migrate: {}", text(&out));
    let url = format!("sqlite://{}?mode=ro", file.display());
    assert_gives_up(&fresh, &url, "refuses writes");
}
