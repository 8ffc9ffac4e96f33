//! The store against real SQLite files in temporary directories.

use std::sync::Arc;

use lyncd_core::{SipAddress, UtcTime};
use lyncd_store::password::{hash_password, verify_password};
use lyncd_store::{DB_FILE, NewUser, Store, StoreError, UserFlags};
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

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(&dir.path().join("data")).await.unwrap();
    (dir, store)
}

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

#[tokio::test]
async fn tenants_can_be_added_listed_and_not_duplicated() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn add_user_creates_the_tenant_once_and_returns_what_it_stored() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn a_user_without_display_name_round_trips() {
    let (_dir, store) = fresh().await;
    let mut u = new_user("x@a.test", "oid-x");
    u.display_name = None;
    store.add_user(u, T0).await.unwrap();
    let x = store.user(&addr("x@a.test")).await.unwrap().unwrap();
    assert_eq!(x.display_name, None);
}

#[tokio::test]
async fn duplicate_user_in_another_case_is_rejected() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn a_failing_add_user_leaves_no_tenant_behind() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn users_are_listed_by_address_and_filtered_by_domain() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn users_can_be_disabled_and_enabled() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn set_enabled_on_an_unknown_user_is_an_error() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn keys_are_inserted_once_and_the_first_writer_wins() {
    let (_dir, store) = fresh().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_inserts_agree_on_one_winner() {
    let (dir, store) = fresh().await;
    // A second, independent pool on the same file stands in for another process.
    let other = Store::open_dir(&dir.path().join("data")).await.unwrap();
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

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
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

    let reopened = Store::open_dir(dir.path()).await.unwrap();
    assert_eq!(reopened.user(&alice.address).await.unwrap(), Some(alice));
    assert_eq!(reopened.tenants().await.unwrap().len(), 1);
    assert_eq!(
        reopened.key("k").await.unwrap().unwrap().material.expose(),
        "material"
    );
}

#[tokio::test]
async fn sub_second_times_are_stored_as_whole_seconds() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn stored_password_hashes_verify() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn issued_certificates_are_recorded_per_user_and_by_serial() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn new_users_are_enabled_for_sip_and_remote_access() {
    let (_dir, store) = fresh().await;
    let added = store
        .add_user(new_user("alice@contoso.test", "oid"), T0)
        .await
        .unwrap()
        .user;
    assert!(added.sip_enabled && added.remote_access);
    let stored = store.user(&added.address).await.unwrap().unwrap();
    assert_eq!(stored, added);
}

#[tokio::test]
async fn user_flags_change_only_what_is_named() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn bad_flag_changes_write_nothing() {
    let (_dir, store) = fresh().await;
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

#[tokio::test]
async fn user_flags_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
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
    let reopened = Store::open_dir(dir.path()).await.unwrap();
    assert_eq!(reopened.user(&a).await.unwrap(), Some(changed));
}
