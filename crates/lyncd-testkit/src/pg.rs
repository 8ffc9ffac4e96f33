//! Throw-away PostgreSQL databases for tests.
//!
//! `LYNCD_TEST_PG` holds a superuser URL of a server only tests use, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`. Each [`TestDb`] is a new database on it
//! (`lyncd_t_<pid>_<counter>_<random>`), so tests run in parallel without seeing each other, and
//! is dropped (`WITH (FORCE)`) when the [`TestDb`] is. Set `LYNCD_TEST_PG_KEEP=1` to keep the
//! databases for a post-mortem.
//!
//! Without `LYNCD_TEST_PG`, [`TestDb::create_or_skip`] skips the test (returns `None`) on a
//! developer machine but panics when `CI` is set: there, a missing server is a broken test
//! script, not a reason to pass silently.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The environment variable naming the test server.
pub const ENV: &str = "LYNCD_TEST_PG";
/// Set (to anything) to keep the test databases instead of dropping them.
pub const KEEP_ENV: &str = "LYNCD_TEST_PG_KEEP";

const SKIP_MESSAGE: &str =
    "skipped: LYNCD_TEST_PG not set (run scripts/test.sh or eval \"$(scripts/pg.sh start)\")";

/// The server URL from `LYNCD_TEST_PG`, if it is set and not empty.
pub fn server_url() -> Option<String> {
    std::env::var(ENV).ok().filter(|s| !s.trim().is_empty())
}

fn missing_server_panic() -> ! {
    panic!(
        "{ENV} is not set: the test script must start PostgreSQL first \
         (scripts/test.sh does; by hand: eval \"$(scripts/pg.sh start)\", see scripts/pg.sh)"
    )
}

/// A fresh database on the test server; dropped (best effort) when this value is.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
    dropped: bool,
}

impl TestDb {
    /// Creates a new, empty database. Panics if `LYNCD_TEST_PG` is unset or the server
    /// cannot be used.
    pub async fn create() -> TestDb {
        match server_url() {
            Some(admin) => Self::create_on(&admin).await,
            None => missing_server_panic(),
        }
    }

    /// Like [`create`](Self::create), but without `LYNCD_TEST_PG` prints why to stderr and
    /// returns `None` so the caller can skip — unless `CI` is set, then it panics.
    pub async fn create_or_skip() -> Option<TestDb> {
        match server_url() {
            Some(admin) => Some(Self::create_on(&admin).await),
            None if std::env::var_os("CI").is_some() => missing_server_panic(),
            None => {
                eprintln!("{SKIP_MESSAGE}");
                None
            }
        }
    }

    /// Creates a new database on the server at `admin_url` (a role that may create databases).
    pub async fn create_on(admin_url: &str) -> TestDb {
        let name = unique_name();
        let url = with_database(admin_url, &name);
        let mut conn = admin_connect(admin_url).await;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&name)
        )))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        TestDb {
            name,
            admin_url: admin_url.to_string(),
            url,
            dropped: false,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL of this database: the server's URL (same credentials and parameters) with the
    /// database name replaced.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// URL of the server's administrative database (`LYNCD_TEST_PG` as given).
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// Drops the database now, terminating its connections; panics if that fails. Dropping
    /// a [`TestDb`] does the same, best effort, without panicking.
    pub async fn drop_db(mut self) {
        self.dropped = true;
        if keep() {
            return;
        }
        if let Err(e) = drop_database(&self.admin_url, &self.name).await {
            panic!("cannot drop test database {}: {e}", self.name);
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped || keep() {
            return;
        }
        self.dropped = true;
        // Drop may run inside an async test (whose runtime must not be blocked on itself) or
        // outside any runtime: a thread with its own small runtime works in both.
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let worker = std::thread::Builder::new()
            .name("testdb-drop".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(drop_database(&admin, &name))
                    .map_err(|e| e.to_string())
            });
        let outcome = match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the drop thread panicked".into())),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

fn keep() -> bool {
    std::env::var_os(KEEP_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = tokio::time::timeout(Duration::from_secs(30), PgConnection::connect(admin_url))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await
}

/// Makes a database read-only (`default_transaction_read_only`) or writable again, and
/// terminates every other connection to it so that new connections pick the setting up (a
/// setting of the database applies when a session starts). Returns once those backends are
/// gone (or after 10 s).
pub async fn set_read_only(db: &TestDb, read_only: bool) {
    let mut conn = admin_connect(&db.admin_url).await;
    let sql = format!(
        "ALTER DATABASE {} SET default_transaction_read_only = {}",
        quote_ident(&db.name),
        if read_only { "on" } else { "off" }
    );
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot change read-only of {}: {e}", db.name));
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot terminate the connections to {}: {e}", db.name));
    // pg_terminate_backend only signals; wait until the backends have exited.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db.name)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot list the connections to {}: {e}", db.name));
        if left == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = conn.close().await;
}

/// `url` with its host and port replaced by `via` (e.g. a [`TcpProxy`](crate::TcpProxy) in
/// front of the server); user, password, database and parameters are kept.
pub fn url_via(url: &str, via: SocketAddr) -> String {
    let mut parsed =
        url::Url::parse(url).unwrap_or_else(|e| panic!("not a URL: {}: {e}", redact(url)));
    let host = match via {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    parsed
        .set_host(Some(&host))
        .unwrap_or_else(|e| panic!("cannot set host {host} in {}: {e}", redact(url)));
    parsed
        .set_port(Some(via.port()))
        .unwrap_or_else(|()| panic!("cannot set a port in {}", redact(url)));
    parsed.into()
}

/// `url` with the database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let mut parsed =
        url::Url::parse(url).unwrap_or_else(|e| panic!("{ENV} is not a URL: {}: {e}", redact(url)));
    parsed.set_path(&format!("/{name}"));
    parsed.into()
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.into()
        }
        _ => url.to_string(),
    }
}

async fn admin_connect(admin_url: &str) -> PgConnection {
    match tokio::time::timeout(Duration::from_secs(30), PgConnection::connect(admin_url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "cannot connect to the test server {}: {e}",
            redact(admin_url)
        ),
        Err(_) => panic!(
            "timed out connecting to the test server {}",
            redact(admin_url)
        ),
    }
}

/// `lyncd_t_<pid>_<counter>_<random>`: unique across the parallel tests of one process (the
/// counter), across processes (the pid) and across runs against a long-lived server (the
/// random part; pids are reused).
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per process (and per instance); mixing in the time and
    // the counter is plenty for a name that only has to differ from the other test databases.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!(
        "lyncd_t_{}_{n}_{:08x}",
        std::process::id(),
        h.finish() as u32
    )
}

/// A double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid_identifiers() {
        let a = unique_name();
        let b = unique_name();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("lyncd_t_{}_", std::process::id())));
        assert!(
            a.len() < 63,
            "PostgreSQL truncates identifiers at 63 bytes: {a}"
        );
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
    }

    #[test]
    fn urls_keep_credentials_and_parameters() {
        assert_eq!(
            with_database(
                "postgres://u:p@db.example:5433/postgres?sslmode=disable",
                "x_1"
            ),
            "postgres://u:p@db.example:5433/x_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_via(
                "postgres://u:p@127.0.0.1:5432/db?sslmode=disable",
                "127.0.0.1:40001".parse().unwrap()
            ),
            "postgres://u:p@127.0.0.1:40001/db?sslmode=disable"
        );
        assert_eq!(
            url_via("postgresql://u@db.example/db", "[::1]:7".parse().unwrap()),
            "postgresql://u@[::1]:7/db"
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    #[tokio::test]
    async fn a_test_database_can_be_created_used_and_dropped() {
        let Some(db) = TestDb::create_or_skip().await else {
            return;
        };
        let name = db.name().to_string();
        assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());
        let mut conn = PgConnection::connect(&db.url()).await.unwrap();
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(current, name);
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&mut conn)
            .await
            .unwrap();
        // An open connection does not keep the database alive (WITH (FORCE)).
        let admin = db.admin_url();
        drop(db);
        assert!(!exists(&admin, &name).await, "{name} was not dropped");
        assert!(conn.ping().await.is_err(), "the connection was terminated");

        let db = TestDb::create().await;
        let name = db.name().to_string();
        assert!(exists(&admin, &name).await);
        db.drop_db().await;
        assert!(!exists(&admin, &name).await);
    }

    #[test]
    fn dropping_works_outside_any_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let Some(db) = rt.block_on(TestDb::create_or_skip()) else {
            return;
        };
        let (admin, name) = (db.admin_url(), db.name().to_string());
        drop(db);
        assert!(!rt.block_on(exists(&admin, &name)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_database_refuses_writes_on_new_sessions() {
        let Some(db) = TestDb::create_or_skip().await else {
            return;
        };
        let mut before = PgConnection::connect(&db.url()).await.unwrap();
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&mut before)
            .await
            .unwrap();

        set_read_only(&db, true).await;
        assert!(before.ping().await.is_err(), "old sessions are terminated");
        let mut conn = PgConnection::connect(&db.url()).await.unwrap();
        let err = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "reads still work");

        set_read_only(&db, false).await;
        let mut conn = PgConnection::connect(&db.url()).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    async fn exists(admin: &str, name: &str) -> bool {
        let mut conn = PgConnection::connect(admin).await.unwrap();
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }
}
