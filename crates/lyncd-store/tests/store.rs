//! The store against real databases: every backend-independent test runs twice, on SQLite
//! files in temporary directories (`<test>::sqlite`) and on a fresh PostgreSQL database
//! (`<test>::postgres`; on the server in `LYNCD_TEST_PG`, skipped when that is unset unless
//! `CI` is set, see lyncd-testkit). SQLite-only tests say why.

use std::sync::Arc;

use lyncd_core::{SipAddress, UtcTime};
use lyncd_store::password::{hash_password, verify_password};
use lyncd_store::{DB_FILE, NewUser, Registration, Store, StoreError, UserFlags};
use lyncd_testkit::TestDb;
use time::Duration;
use time::macros::datetime;

const T0: UtcTime = datetime!(2026-11-25 12:00:00 UTC);

fn addr(s: &str) -> SipAddress {
    SipAddress::parse(s).unwrap()
}

fn new_user(address: &str, object_id: &str) -> NewUser {
    NewUser {
        address: addr(address),
        // Not a real hash: the store treats it as opaque text. Hashing is tested on its own.
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${object_id}"),
        display_name: Some(format!("User {object_id}")),
        object_id: object_id.to_string(),
    }
}

/// The database of one test, on either backend; removed when dropped.
enum Db {
    /// A data directory, opened with [`Store::open_dir`].
    Sqlite(tempfile::TempDir),
    /// A fresh database on the test server, opened with [`Store::open_url`].
    Postgres(TestDb),
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    async fn postgres() -> Option<Db> {
        TestDb::create_or_skip().await.map(Db::Postgres)
    }

    /// A new store on this database: each call is an independent pool, so a second call
    /// stands in for another process, or for the same one after a restart.
    async fn open(&self) -> Store {
        let opened = match self {
            Db::Sqlite(dir) => Store::open_dir(dir.path()).await,
            Db::Postgres(db) => Store::open_url(&db.url()).await,
        };
        opened.unwrap_or_else(|e| panic!("cannot open the {} store: {e}", self.kind()))
    }

    /// The database's URL, for [`Store::open_url`] and for sqlx itself.
    fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}?mode=rwc", dir.path().join(DB_FILE).display()),
            Db::Postgres(db) => db.url(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// `both_backends!(name);` before `async fn name(db: Db)` makes the tests `name::sqlite` and
/// `name::postgres`; `both_backends!(multi_thread name);` runs them on a 2-thread runtime.
/// (A list of names rather than a macro around the functions: rustfmt formats their bodies.)
macro_rules! both_backends {
    ($name:ident) => {
        both_backends!(@ $name, tokio::test);
    };
    (multi_thread $name:ident) => {
        both_backends!(@ $name, tokio::test(flavor = "multi_thread", worker_threads = 2));
    };
    (@ $name:ident, $($test:tt)+) => {
        mod $name {
            #[$($test)+]
            async fn sqlite() {
                super::$name(super::Db::sqlite()).await
            }

            #[$($test)+]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$name(db).await
                }
            }
        }
    };
}

/// Every migration this lyncd knows is recorded exactly once, and as successful.
async fn assert_each_migration_applied_once(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let applied: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT version, COUNT(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(i64, i64)> = Store::known_migrations()
        .into_iter()
        .map(|(version, _)| (version, 1))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(applied, expected, "(version, times applied)");
    let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    pool.close().await;
}

// SQLite only: the data directory, its permissions and the database file.
#[tokio::test]
async fn open_dir_creates_a_private_directory_and_applies_migrations_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = Store::open_dir(&data).await.unwrap();
    assert!(data.join(DB_FILE).is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // Schema is usable.
    assert!(store.tenants().await.unwrap().is_empty());
    store.close().await;

    // Reopening runs the migrator again without error and without touching data.
    let again = Store::open_dir(&data).await.unwrap();
    again.add_tenant("contoso.test", T0).await.unwrap();
    again.close().await;
    let third = Store::open_dir(&data).await.unwrap();
    assert_eq!(third.tenants().await.unwrap().len(), 1);
}

// SQLite only: file paths.
#[tokio::test]
async fn open_reports_the_path_it_could_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open_dir(&file.join("data")).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    let err = Store::open_url("nosuchdb://x").await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

// SQLite only: SQLite URLs (file and in-memory).
#[tokio::test]
async fn open_url_works_with_a_full_sqlite_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let store = Store::open_url(&url).await.unwrap();
    store.add_tenant("contoso.test", T0).await.unwrap();
    assert!(store.tenant("contoso.test").await.unwrap().is_some());

    let memory = Store::open_url("sqlite::memory:").await.unwrap();
    memory.add_tenant("a.test", T0).await.unwrap();
    assert_eq!(memory.tenants().await.unwrap().len(), 1);
}

both_backends!(tenants_can_be_added_listed_and_not_duplicated);
async fn tenants_can_be_added_listed_and_not_duplicated(db: Db) {
    let store = db.open().await;
    let t = store.add_tenant("Contoso.TEST", T0).await.unwrap();
    assert_eq!(t.domain, "contoso.test");
    assert_eq!(t.created_at, T0);
    store
        .add_tenant("adatum.test", T0 + Duration::seconds(1))
        .await
        .unwrap();

    let err = store.add_tenant("contoso.test", T0).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::TenantExists(d) if d == "contoso.test"),
        "{err:?}"
    );
    assert!(matches!(
        store.add_tenant("not a domain", T0).await,
        Err(StoreError::InvalidDomain(_))
    ));

    assert_eq!(store.tenant("CONTOSO.test").await.unwrap(), Some(t));
    assert_eq!(store.tenant("fabrikam.test").await.unwrap(), None);
    let all: Vec<String> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.domain)
        .collect();
    assert_eq!(all, ["adatum.test", "contoso.test"]);
}

both_backends!(add_user_creates_the_tenant_once_and_returns_what_it_stored);
async fn add_user_creates_the_tenant_once_and_returns_what_it_stored(db: Db) {
    let store = db.open().await;
    let added = store
        .add_user(new_user("Alice@Contoso.test", "oid-a"), T0)
        .await
        .unwrap();
    assert!(added.tenant_created);
    let alice = added.user;
    assert_eq!(alice.address.to_string(), "Alice@contoso.test");
    assert!(alice.enabled);
    assert_eq!(alice.created_at, T0);
    assert_eq!(alice.updated_at, T0);
    assert_eq!(alice.display_name.as_deref(), Some("User oid-a"));
    assert_eq!(
        store
            .tenant("contoso.test")
            .await
            .unwrap()
            .unwrap()
            .created_at,
        T0
    );

    let bob = store
        .add_user(new_user("bob@contoso.test", "oid-b"), T0)
        .await
        .unwrap();
    assert!(!bob.tenant_created);

    // Lookup is case-insensitive and returns exactly what add_user returned.
    let found = store
        .user(&addr("sip:ALICE@contoso.TEST"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, alice);
    assert_eq!(found.address.user(), "Alice", "display case is kept");
    assert_eq!(
        found.password_hash.expose(),
        "$argon2id$v=19$m=19456,t=2,p=1$fake$oid-a"
    );
    assert_eq!(store.user(&addr("carol@contoso.test")).await.unwrap(), None);
}

both_backends!(a_user_without_display_name_round_trips);
async fn a_user_without_display_name_round_trips(db: Db) {
    let store = db.open().await;
    let mut u = new_user("x@a.test", "oid-x");
    u.display_name = None;
    store.add_user(u, T0).await.unwrap();
    let x = store.user(&addr("x@a.test")).await.unwrap().unwrap();
    assert_eq!(x.display_name, None);
}

both_backends!(duplicate_user_in_another_case_is_rejected);
async fn duplicate_user_in_another_case_is_rejected(db: Db) {
    let store = db.open().await;
    store
        .add_user(new_user("alice@contoso.test", "oid-1"), T0)
        .await
        .unwrap();
    let err = store
        .add_user(new_user("ALICE@Contoso.Test", "oid-2"), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UserExists(a) if a == "ALICE@contoso.test"),
        "{err:?}"
    );
    assert!(err.to_string().contains("already exists"));
    // The first record is untouched.
    let alice = store
        .user(&addr("alice@contoso.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.object_id, "oid-1");
    assert_eq!(store.users(None).await.unwrap().len(), 1);
}

both_backends!(a_failing_add_user_leaves_no_tenant_behind);
async fn a_failing_add_user_leaves_no_tenant_behind(db: Db) {
    let store = db.open().await;
    store
        .add_user(new_user("alice@contoso.test", "same-oid"), T0)
        .await
        .unwrap();
    // New domain, but the object id collides: the whole transaction must roll back.
    let err = store
        .add_user(new_user("bob@fabrikam.test", "same-oid"), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::ObjectIdInUse(o) if o == "same-oid"),
        "{err:?}"
    );
    assert_eq!(store.tenant("fabrikam.test").await.unwrap(), None);
    assert_eq!(store.tenants().await.unwrap().len(), 1);
    assert_eq!(store.user(&addr("bob@fabrikam.test")).await.unwrap(), None);

    // And the failed attempt did not poison anything: a correct retry succeeds.
    let ok = store
        .add_user(new_user("bob@fabrikam.test", "oid-bob"), T0)
        .await
        .unwrap();
    assert!(ok.tenant_created);
}

both_backends!(users_are_listed_by_address_and_filtered_by_domain);
async fn users_are_listed_by_address_and_filtered_by_domain(db: Db) {
    let store = db.open().await;
    for (a, o) in [
        ("carol@b.test", "3"),
        ("Bob@a.test", "2"),
        ("alice@a.test", "1"),
        ("dave@b.test", "4"),
    ] {
        store.add_user(new_user(a, o), T0).await.unwrap();
    }
    let names = |users: Vec<lyncd_store::User>| {
        users
            .into_iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.users(None).await.unwrap()),
        ["alice@a.test", "Bob@a.test", "carol@b.test", "dave@b.test"]
    );
    assert_eq!(
        names(store.users(Some("B.test")).await.unwrap()),
        ["carol@b.test", "dave@b.test"]
    );
    assert!(store.users(Some("none.test")).await.unwrap().is_empty());
}

both_backends!(users_can_be_disabled_and_enabled);
async fn users_can_be_disabled_and_enabled(db: Db) {
    let store = db.open().await;
    let a = addr("alice@contoso.test");
    store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap();

    let t1 = T0 + Duration::minutes(1);
    let off = store
        .set_enabled(&addr("ALICE@contoso.test"), false, t1)
        .await
        .unwrap();
    assert!(!off.enabled);
    assert_eq!(off.created_at, T0);
    assert_eq!(off.updated_at, t1);
    assert_eq!(store.user(&a).await.unwrap().unwrap(), off);

    let t2 = T0 + Duration::minutes(2);
    let on = store.set_enabled(&a, true, t2).await.unwrap();
    assert!(on.enabled);
    assert_eq!(on.updated_at, t2);
    assert!(store.user(&a).await.unwrap().unwrap().enabled);
}

both_backends!(set_enabled_on_an_unknown_user_is_an_error);
async fn set_enabled_on_an_unknown_user_is_an_error(db: Db) {
    let store = db.open().await;
    let err = store
        .set_enabled(&addr("ghost@contoso.test"), false, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownUser(a) if a == "ghost@contoso.test"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "there is no user ghost@contoso.test");
}

both_backends!(keys_are_inserted_once_and_the_first_writer_wins);
async fn keys_are_inserted_once_and_the_first_writer_wins(db: Db) {
    let store = db.open().await;
    assert_eq!(store.key("webticket-signing").await.unwrap(), None);
    let first = store
        .insert_key_if_absent("webticket-signing", "KEY-A", T0)
        .await
        .unwrap();
    assert_eq!(first.material.expose(), "KEY-A");
    assert_eq!(first.created_at, T0);
    let second = store
        .insert_key_if_absent("webticket-signing", "KEY-B", T0 + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(store.key("webticket-signing").await.unwrap(), Some(first));
    // Secrets stay out of Debug output.
    assert!(!format!("{second:?}").contains("KEY-A"));
}

both_backends!(multi_thread concurrent_key_inserts_agree_on_one_winner);
async fn concurrent_key_inserts_agree_on_one_winner(db: Db) {
    let store = db.open().await;
    // A second, independent pool on the same database stands in for another process.
    let other = db.open().await;
    for round in 0..10 {
        let name = Arc::new(format!("key-{round}"));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                let name = Arc::clone(&name);
                tokio::spawn(async move {
                    s.insert_key_if_absent(&name, &format!("material-{i}"), T0)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            winners.push(t.await.unwrap().unwrap().material.expose().clone());
        }
        winners.dedup();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = store.key(&name).await.unwrap().unwrap();
        assert_eq!(stored.material.expose(), &winners[0]);
    }
}

both_backends!(data_survives_reopening);
async fn data_survives_reopening(db: Db) {
    let store = db.open().await;
    let alice = store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap()
        .user;
    let alice = store
        .set_enabled(&alice.address, false, T0 + Duration::seconds(30))
        .await
        .unwrap();
    store
        .insert_key_if_absent("k", "material", T0)
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let reopened = db.open().await;
    assert_eq!(reopened.user(&alice.address).await.unwrap(), Some(alice));
    assert_eq!(reopened.tenants().await.unwrap().len(), 1);
    assert_eq!(
        reopened.key("k").await.unwrap().unwrap().material.expose(),
        "material"
    );
}

both_backends!(sub_second_times_are_stored_as_whole_seconds);
async fn sub_second_times_are_stored_as_whole_seconds(db: Db) {
    let store = db.open().await;
    let t = T0 + Duration::milliseconds(750);
    let added = store
        .add_user(new_user("a@x.test", "o"), t)
        .await
        .unwrap()
        .user;
    assert_eq!(added.created_at, T0);
    assert_eq!(
        store
            .user(&added.address)
            .await
            .unwrap()
            .unwrap()
            .created_at,
        T0
    );
}

both_backends!(stored_password_hashes_verify);
async fn stored_password_hashes_verify(db: Db) {
    let store = db.open().await;
    let phc = hash_password("Pa55word!", b"saltsaltsaltsalt").unwrap();
    let mut u = new_user("alice@contoso.test", "oid");
    u.password_hash = phc;
    store.add_user(u, T0).await.unwrap();
    let alice = store
        .user(&addr("alice@contoso.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        verify_password("Pa55word!", alice.password_hash.expose()),
        Ok(true)
    );
    assert_eq!(
        verify_password("pa55word!", alice.password_hash.expose()),
        Ok(false)
    );
    assert!(!format!("{alice:?}").contains("argon2"));
}

fn cert(serial: &str, address: &str, issued_at: UtcTime) -> lyncd_store::NewCertificate {
    lyncd_store::NewCertificate {
        serial_hex: serial.to_string(),
        address: addr(address),
        device_id: Some("{5ccdb10d-dca1-559e-ad2b-b514060a2da2}".into()),
        sha256_hex: format!("{serial:0>64}"),
        not_before: issued_at - Duration::minutes(5),
        not_after: issued_at + Duration::hours(8),
        issued_at,
    }
}

both_backends!(issued_certificates_are_recorded_per_user_and_by_serial);
async fn issued_certificates_are_recorded_per_user_and_by_serial(db: Db) {
    let store = db.open().await;
    store
        .add_user(new_user("Alice@Contoso.test", "o-a"), T0)
        .await
        .unwrap();
    store
        .add_user(new_user("bob@contoso.test", "o-b"), T0)
        .await
        .unwrap();
    assert!(
        store
            .certificates_for(&addr("alice@contoso.test"))
            .await
            .unwrap()
            .is_empty()
    );

    let first = cert("7F01AB", "alice@contoso.test", T0 + Duration::hours(1));
    store.record_certificate(&first).await.unwrap();
    let mut second = cert("0102", "ALICE@contoso.test", T0 + Duration::hours(2));
    second.device_id = None;
    store.record_certificate(&second).await.unwrap();
    store
        .record_certificate(&cert("0a0b", "bob@contoso.test", T0))
        .await
        .unwrap();

    let alice = store
        .certificates_for(&addr("alice@CONTOSO.test"))
        .await
        .unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|c| c.serial_hex.as_str())
            .collect::<Vec<_>>(),
        ["7f01ab", "0102"],
        "oldest first, serials lower-cased"
    );
    assert_eq!(alice[0].address.to_string(), "Alice@contoso.test");
    assert_eq!(alice[0].not_before, T0 + Duration::minutes(55));
    assert_eq!(alice[0].not_after, T0 + Duration::hours(9));
    assert_eq!(alice[0].issued_at, T0 + Duration::hours(1));
    assert_eq!(alice[0].device_id, first.device_id);
    assert_eq!(alice[1].device_id, None);

    let by_serial = store.certificate("7F01AB").await.unwrap().unwrap();
    assert_eq!(by_serial, alice[0]);
    assert!(store.certificate("ffff").await.unwrap().is_none());

    // The same serial twice, and a certificate for nobody, are refused and change nothing.
    let err = store.record_certificate(&first).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CertificateExists(ref s) if s == "7f01ab"),
        "{err:?}"
    );
    let err = store
        .record_certificate(&cert("0c", "carol@contoso.test", T0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(_)), "{err:?}");
    assert!(store.certificate("0c").await.unwrap().is_none());
    assert_eq!(
        store
            .certificates_for(&addr("alice@contoso.test"))
            .await
            .unwrap()
            .len(),
        2
    );
}

both_backends!(new_users_are_enabled_for_sip_and_remote_access);
async fn new_users_are_enabled_for_sip_and_remote_access(db: Db) {
    let store = db.open().await;
    let added = store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap()
        .user;
    assert!(added.sip_enabled && added.remote_access);
    let stored = store.user(&added.address).await.unwrap().unwrap();
    assert_eq!(stored, added);
}

both_backends!(user_flags_change_only_what_is_named);
async fn user_flags_change_only_what_is_named(db: Db) {
    let store = db.open().await;
    let a = addr("alice@contoso.test");
    store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap();
    store
        .add_user(new_user("bob@contoso.test", "oid-b"), T0)
        .await
        .unwrap();

    let t1 = T0 + Duration::minutes(1);
    let internal_only = store
        .set_user_flags(
            &addr("ALICE@Contoso.test"),
            UserFlags {
                remote_access: Some(false),
                ..UserFlags::default()
            },
            t1,
        )
        .await
        .unwrap();
    assert!(internal_only.sip_enabled, "untouched");
    assert!(!internal_only.remote_access);
    assert!(internal_only.enabled);
    assert_eq!(internal_only.updated_at, t1);
    assert_eq!(store.user(&a).await.unwrap().unwrap(), internal_only);

    let t2 = T0 + Duration::minutes(2);
    let both = store
        .set_user_flags(
            &a,
            UserFlags {
                sip_enabled: Some(false),
                remote_access: Some(true),
            },
            t2,
        )
        .await
        .unwrap();
    assert!(!both.sip_enabled && both.remote_access);
    assert_eq!(store.user(&a).await.unwrap().unwrap(), both);

    // Disabling is a separate switch and keeps the flags.
    let off = store.set_enabled(&a, false, t2).await.unwrap();
    assert!(!off.enabled && !off.sip_enabled && off.remote_access);

    // Other users are untouched.
    let bob = store
        .user(&addr("bob@contoso.test"))
        .await
        .unwrap()
        .unwrap();
    assert!(bob.sip_enabled && bob.remote_access && bob.updated_at == T0);
}

both_backends!(bad_flag_changes_write_nothing);
async fn bad_flag_changes_write_nothing(db: Db) {
    let store = db.open().await;
    let a = addr("alice@contoso.test");
    store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap();
    let before = store.users(None).await.unwrap();

    let later = T0 + Duration::minutes(5);
    let err = store
        .set_user_flags(&a, UserFlags::default(), later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NothingToChange), "{err:?}");

    let err = store
        .set_user_flags(
            &addr("ghost@contoso.test"),
            UserFlags {
                sip_enabled: Some(false),
                ..UserFlags::default()
            },
            later,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownUser(u) if u == "ghost@contoso.test"),
        "{err:?}"
    );
    assert_eq!(store.users(None).await.unwrap(), before, "nothing changed");
    assert_eq!(store.tenants().await.unwrap().len(), 1);
}

both_backends!(user_flags_survive_reopening);
async fn user_flags_survive_reopening(db: Db) {
    let store = db.open().await;
    let a = addr("alice@contoso.test");
    store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap();
    let changed = store
        .set_user_flags(
            &a,
            UserFlags {
                sip_enabled: Some(false),
                remote_access: Some(false),
            },
            T0,
        )
        .await
        .unwrap();
    store.close().await;
    drop(store);
    let reopened = db.open().await;
    assert_eq!(reopened.user(&a).await.unwrap(), Some(changed));
}

both_backends!(multi_thread concurrent_opens_of_a_fresh_database_apply_each_migration_once);
/// Several nodes starting at once on a fresh database: every open succeeds, each migration is
/// applied exactly once, and all of them see one schema and the same data.
async fn concurrent_opens_of_a_fresh_database_apply_each_migration_once(db: Db) {
    let url = db.url();
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open_url(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for (i, open) in opens.into_iter().enumerate() {
        match open.await.unwrap() {
            Ok(store) => stores.push(store),
            Err(e) => panic!("concurrent open {i} on {} failed: {e}", db.kind()),
        }
    }
    assert_each_migration_applied_once(&url).await;
    stores[0].add_tenant("contoso.test", T0).await.unwrap();
    for store in &stores {
        assert_eq!(store.tenants().await.unwrap().len(), 1);
    }
}

// SQLite only: `open_dir` on a data directory that does not exist yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_open_dirs_of_a_fresh_directory_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let data = data.clone();
            tokio::spawn(async move { Store::open_dir(&data).await })
        })
        .collect();
    let mut stores = Vec::new();
    for (i, open) in opens.into_iter().enumerate() {
        match open.await.unwrap() {
            Ok(store) => stores.push(store),
            Err(e) => panic!("concurrent open_dir {i} failed: {e}"),
        }
    }
    assert_each_migration_applied_once(&format!(
        "sqlite://{}?mode=rwc",
        data.join(DB_FILE).display()
    ))
    .await;
    stores[3].add_tenant("contoso.test", T0).await.unwrap();
    for store in &stores {
        assert_eq!(store.tenants().await.unwrap().len(), 1);
    }
}

// ----- registrations (shared by the nodes of a cluster) -----

fn registration(address: &str, epid: &str, node: &str, expires_at: UtcTime) -> Registration {
    Registration {
        address: addr(address),
        epid: epid.to_string(),
        instance: Some(format!("00000000-0000-0000-0000-{epid:0>12}")),
        contact: format!("<sip:10.0.0.1:5061;transport=tls;ms-opaque={epid}>"),
        gruu: format!("sip:{address};opaque=user:epid:{epid};gruu"),
        node: node.to_string(),
        registered_at: T0,
        expires_at,
    }
}

both_backends!(registrations_are_shared_refreshed_and_moved_between_nodes);
async fn registrations_are_shared_refreshed_and_moved_between_nodes(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    a.add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap();
    a.add_user(new_user("bob@contoso.test", "o2"), T0)
        .await
        .unwrap();
    let alice_a = registration(
        "alice@contoso.test",
        "e1",
        "node-a",
        T0 + Duration::hours(2),
    );
    a.upsert_registration(&alice_a).await.unwrap();
    let bob = registration("bob@contoso.test", "e9", "node-a", T0 + Duration::hours(2));
    a.upsert_registration(&bob).await.unwrap();

    // Node B sees what node A wrote.
    assert_eq!(
        b.registrations(Some(&addr("ALICE@contoso.test")), T0)
            .await
            .unwrap(),
        vec![alice_a.clone()]
    );
    assert_eq!(
        b.registrations(None, T0).await.unwrap(),
        vec![alice_a.clone(), bob.clone()]
    );

    // The client registers the same endpoint again through node B: one row, now B's.
    let mut alice_b = registration(
        "alice@contoso.test",
        "e1",
        "node-b",
        T0 + Duration::hours(3),
    );
    alice_b.registered_at = T0 + Duration::hours(1);
    b.upsert_registration(&alice_b).await.unwrap();
    assert_eq!(
        a.registrations(Some(&addr("alice@contoso.test")), T0)
            .await
            .unwrap(),
        vec![alice_b.clone()]
    );

    // Node A cleaning up its old connection does not remove what moved to B...
    assert!(
        !a.remove_registration(&addr("alice@contoso.test"), "e1", Some("node-a"))
            .await
            .unwrap()
    );
    assert_eq!(
        a.registrations(Some(&addr("alice@contoso.test")), T0)
            .await
            .unwrap()
            .len(),
        1
    );
    // ...but the client's own de-registration, through either node, does.
    assert!(
        a.remove_registration(&addr("alice@contoso.test"), "e1", None)
            .await
            .unwrap()
    );
    assert!(
        b.registrations(Some(&addr("alice@contoso.test")), T0)
            .await
            .unwrap()
            .is_empty()
    );
    // The node holding a row may remove it.
    assert!(
        b.remove_registration(&addr("bob@contoso.test"), "e9", Some("node-a"))
            .await
            .unwrap()
    );
    assert!(b.registrations(None, T0).await.unwrap().is_empty());
}

both_backends!(expired_registrations_are_invisible_everywhere_and_purged);
async fn expired_registrations_are_invisible_everywhere_and_purged(db: Db) {
    let store = db.open().await;
    store
        .add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap();
    let short = registration(
        "alice@contoso.test",
        "e1",
        "dead-node",
        T0 + Duration::minutes(5),
    );
    let long = registration(
        "alice@contoso.test",
        "e2",
        "node-b",
        T0 + Duration::hours(2),
    );
    store.upsert_registration(&short).await.unwrap();
    store.upsert_registration(&long).await.unwrap();
    assert_eq!(store.registrations(None, T0).await.unwrap().len(), 2);
    // At its expiry instant the binding is gone for every reader, whether or not its node
    // is alive to remove it.
    let later = T0 + Duration::minutes(5);
    assert_eq!(
        store.registrations(None, later).await.unwrap(),
        vec![long.clone()]
    );
    assert_eq!(store.purge_expired_registrations(later).await.unwrap(), 1);
    assert_eq!(store.purge_expired_registrations(later).await.unwrap(), 0);
    assert_eq!(store.registrations(None, T0).await.unwrap(), vec![long]);
}

both_backends!(a_registration_of_an_unknown_user_writes_nothing);
async fn a_registration_of_an_unknown_user_writes_nothing(db: Db) {
    let store = db.open().await;
    let ghost = registration(
        "ghost@contoso.test",
        "e1",
        "node-a",
        T0 + Duration::hours(1),
    );
    assert!(matches!(
        store.upsert_registration(&ghost).await,
        Err(StoreError::UnknownUser(u)) if u == "ghost@contoso.test"
    ));
    assert!(store.registrations(None, T0).await.unwrap().is_empty());
}

// ----- key generations -----

both_backends!(key_generations_are_first_writer_wins_and_listed_newest_first);
async fn key_generations_are_first_writer_wins_and_listed_newest_first(db: Db) {
    let store = db.open().await;
    assert!(store.key_generations().await.unwrap().is_empty());
    let g1 = store
        .ensure_key_generation(
            1,
            T0,
            &[("idp-signing", "A1"), ("webticket-wrap", "W1")],
            T0,
        )
        .await
        .unwrap();
    assert_eq!((g1.generation, g1.activates_at), (1, T0));
    // A second writer of generation 1 gets the first one's material, and may only add keys
    // the generation lacks.
    let again = store
        .ensure_key_generation(
            1,
            T0 + Duration::hours(1),
            &[("idp-signing", "B1"), ("webticket-signing", "S1")],
            T0 + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(again.activates_at, T0);
    assert_eq!(again.key("idp-signing").unwrap().material.expose(), "A1");
    assert_eq!(
        again.key("webticket-signing").unwrap().material.expose(),
        "S1"
    );
    assert_eq!(again.keys.len(), 3);

    let later = T0 + Duration::hours(2);
    store
        .ensure_key_generation(
            2,
            later + Duration::seconds(10),
            &[("idp-signing", "A2")],
            later,
        )
        .await
        .unwrap();
    let all = store.key_generations().await.unwrap();
    assert_eq!(
        all.iter().map(|g| g.generation).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(all[0].created_at, later);
    assert_eq!(all[0].activates_at, later + Duration::seconds(10));
    assert_eq!(all[1].keys.len(), 3);

    assert_eq!(store.delete_key_generations_before(2).await.unwrap(), 1);
    let left = store.key_generations().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].generation, 2);
    assert!(matches!(
        store.ensure_key_generation(0, T0, &[], T0).await,
        Err(StoreError::Corrupt(_))
    ));
}

both_backends!(multi_thread concurrent_rotations_agree_on_one_generation);
async fn concurrent_rotations_agree_on_one_generation(db: Db) {
    let store = db.open().await;
    let other = db.open().await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                let material = format!("material-{i}");
                s.ensure_key_generation(
                    1,
                    T0,
                    &[("idp-signing", &material), ("webticket-wrap", &material)],
                    T0,
                )
                .await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        let g = t.await.unwrap().unwrap();
        // Both keys of the winner come from the same writer.
        assert_eq!(
            g.key("idp-signing").unwrap().material.expose(),
            g.key("webticket-wrap").unwrap().material.expose()
        );
        seen.push(g.key("idp-signing").unwrap().material.expose().clone());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "{seen:?}");
}

// ----- a database that is down or read-only -----

/// PostgreSQL only: read-only is a server setting (`default_transaction_read_only`, as on a
/// standby). A refused write is `ReadOnly`, transient, and leaves nothing behind.
#[tokio::test]
async fn a_read_only_postgres_refuses_writes_cleanly_and_recovers() {
    let Some(db) = TestDb::create_or_skip().await else {
        return;
    };
    let store = Store::open_url(&db.url()).await.unwrap();
    store.check_writable().await.unwrap();
    lyncd_testkit::set_read_only(&db, true).await;
    let refused = store.check_writable().await.unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly(_)), "{refused:?}");
    let refused = store
        .add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly(_)), "{refused:?}");
    assert!(refused.is_transient());
    assert!(refused.to_string().contains("refuses writes"), "{refused}");
    // Reads still work, and the failed write left neither the user nor its tenant.
    assert!(store.users(None).await.unwrap().is_empty());
    assert!(store.tenants().await.unwrap().is_empty());

    lyncd_testkit::set_read_only(&db, false).await;
    store
        .add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap();
    assert_eq!(store.users(None).await.unwrap().len(), 1);
}

/// PostgreSQL only: the database goes away under a running store (through a proxy the test
/// cuts), then comes back. Writes in between fail as `Unavailable` and write nothing; the
/// same store works again afterwards without being reopened.
#[tokio::test]
async fn a_postgres_that_goes_down_mid_run_gives_transient_errors_then_recovers() {
    let Some(db) = TestDb::create_or_skip().await else {
        return;
    };
    let target = {
        let url = url::Url::parse(&db.url()).unwrap();
        let host = url.host_str().unwrap().to_string();
        let port = url.port().unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = lyncd_testkit::TcpProxy::start(target);
    let store = Store::open_url(&lyncd_testkit::url_via(&db.url(), proxy.addr()))
        .await
        .unwrap();
    store
        .add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap();

    proxy.set_down(true);
    let failed = store
        .add_user(new_user("bob@contoso.test", "o2"), T0)
        .await
        .unwrap_err();
    assert!(failed.is_transient(), "{failed:?}");
    assert!(store.ping().await.unwrap_err().is_transient());

    proxy.set_down(false);
    let users = store.users(None).await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>(),
        vec!["alice@contoso.test"],
        "the write that failed must not have happened"
    );
    store
        .add_user(new_user("bob@contoso.test", "o2"), T0)
        .await
        .unwrap();

    // Opening while it is down names the database, hides the password, and is transient.
    proxy.set_down(true);
    let url =
        lyncd_testkit::url_via(&db.url(), proxy.addr()).replace("postgres@", "postgres:s3cret@");
    let down = Store::open_url(&url).await.unwrap_err();
    assert!(matches!(down, StoreError::Unreachable { .. }), "{down:?}");
    assert!(down.is_transient());
    let text = down.to_string();
    assert!(text.contains(&proxy.addr().port().to_string()), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// SQLite only: read-only here is the URL's `mode=ro` (file permissions do not bind root).
#[tokio::test]
async fn a_read_only_sqlite_file_refuses_writes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    store
        .add_user(new_user("alice@contoso.test", "o1"), T0)
        .await
        .unwrap();
    store.check_writable().await.unwrap();
    store.close().await;
    let ro = Store::open_url(&format!(
        "sqlite://{}?mode=ro",
        dir.path().join(DB_FILE).display()
    ))
    .await
    .unwrap();
    // Opening a current schema writes nothing, so it succeeds; the check says why not to use it.
    let refused = ro.check_writable().await.unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly(_)), "{refused:?}");
    let refused = ro
        .add_user(new_user("bob@contoso.test", "o2"), T0)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly(_)), "{refused:?}");
    assert!(refused.is_transient());
    assert_eq!(ro.users(None).await.unwrap().len(), 1);
}
