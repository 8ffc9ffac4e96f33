//! Token key generations: created once and shared, rotated without downtime, retired after the
//! tokens they signed have expired.

use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::{ServiceKeys, TokenKeys, rotate};
use lyncd_store::Store;
use lyncd_wsxml::TokenError;
use lyncd_wsxml::webticket::{WebTicketParams, issue_web_ticket};
use time::Duration;

const ISSUER: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc";
const AUDIENCE: &str = "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc";
const TICKET_LIFETIME: Duration = Duration::hours(8);
const SKEW: Duration = Duration::minutes(5);

fn ticket(keys: &TokenKeys, now: UtcTime) -> Vec<u8> {
    let params = WebTicketParams {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        subject: SipAddress::parse("alice@contoso.com").unwrap(),
        lifetime: TICKET_LIFETIME,
    };
    issue_web_ticket(
        &params,
        &keys.webticket_signer,
        &keys.wrap,
        Some(&[7u8; 32]),
        now,
        &mut OsEntropy,
    )
    .unwrap()
    .assertion
    .into_bytes()
}

/// What a relying party (Autodiscover, CertProv) does with a presented ticket.
fn check(
    keys: &ServiceKeys,
    assertion: &[u8],
    now: UtcTime,
    max_token_lifetime: Duration,
) -> Result<i64, TokenError> {
    let mut by = 0;
    keys.verify(now, max_token_lifetime, |g| {
        let claims = lyncd_wsxml::verify_web_ticket(
            assertion,
            &g.webticket_cert,
            &g.wrap,
            ISSUER,
            AUDIENCE,
            now,
            SKEW,
        )?;
        by = g.generation;
        Ok(claims)
    })
    .map(|_| by)
}

/// The store keeps whole seconds.
fn now() -> UtcTime {
    UtcTime::now_utc().replace_nanosecond(0).unwrap()
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn the_first_start_creates_generation_one_and_every_later_start_loads_it() {
    let (_dir, store) = store().await;
    let t0 = now();
    let first = ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    assert_eq!(first.generation_numbers(), vec![1]);
    // Another node (here: another pool on the same database) loads the same keys: what one
    // issued, the other verifies.
    let other_store = Store::open_url(&format!(
        "sqlite://{}?mode=rw",
        _dir.path().join(lyncd_store::DB_FILE).display()
    ))
    .await
    .unwrap();
    let other = ServiceKeys::load_or_create(&other_store, t0, &mut OsEntropy)
        .await
        .unwrap();
    assert_eq!(other.generation_numbers(), vec![1]);
    assert_eq!(
        other.ca.cert_pem(),
        first.ca.cert_pem(),
        "one CA for the deployment"
    );
    let t = ticket(first.signing(t0), t0);
    assert_eq!(check(&other, &t, t0, TICKET_LIFETIME).unwrap(), 1);
}

#[tokio::test]
async fn a_rotation_verifies_at_once_signs_from_activation_and_retires_the_old_keys_later() {
    let (_dir, store) = store().await;
    let t0 = now();
    ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    let before = ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    let old_ticket = ticket(before.signing(t0), t0);

    let rotation = rotate(
        &store,
        t0,
        Duration::seconds(10),
        Duration::hours(24),
        &mut OsEntropy,
    )
    .await
    .unwrap();
    assert_eq!(rotation.generation, 2);
    assert!(rotation.created);
    assert_eq!(rotation.activates_at, t0 + Duration::seconds(10));
    assert_eq!(rotation.deleted, 0);

    let keys = ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    assert_eq!(keys.generation_numbers(), vec![2, 1]);
    // Until it activates, generation 1 still signs; a node that already signs with 2 (its
    // clock a little ahead) is verified here anyway.
    assert_eq!(keys.signing(t0).generation, 1);
    let early = ticket(keys.signing(t0 + Duration::seconds(10)), t0);
    assert_eq!(check(&keys, &early, t0, TICKET_LIFETIME).unwrap(), 2);

    // After activation, 2 signs and tickets of 1 keep verifying while they may be valid.
    let t1 = t0 + Duration::seconds(10);
    assert_eq!(keys.signing(t1).generation, 2);
    assert_eq!(keys.signing(t1).wrap.key_name(), "lyncd-webticket-wrap-g2");
    assert_eq!(check(&keys, &old_ticket, t1, TICKET_LIFETIME).unwrap(), 1);
    let later = t1 + Duration::hours(1);
    assert_eq!(
        check(&keys, &old_ticket, later, TICKET_LIFETIME).unwrap(),
        1
    );

    // Once the longest token lifetime has passed since 2 took over, 1 verifies nothing:
    // with a (short) one-hour lifetime the still-unexpired 8 h ticket is now refused.
    let retired = t1 + Duration::hours(1) + Duration::seconds(1);
    let refused = check(&keys, &old_ticket, retired, Duration::hours(1)).unwrap_err();
    assert!(
        matches!(
            refused,
            TokenError::UnknownKeyName { .. }
                | TokenError::UntrustedSigner
                | TokenError::Undecryptable
                | TokenError::BadSignature(_)
        ),
        "{refused:?}"
    );
    assert_eq!(keys.verifying(retired, Duration::hours(1)).count(), 1);
}

#[tokio::test]
async fn a_token_of_an_older_generation_reports_its_own_defect_not_a_wrong_key() {
    let (_dir, store) = store().await;
    let t0 = now();
    let before = ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    let old_ticket = ticket(before.signing(t0), t0);
    rotate(
        &store,
        t0,
        Duration::ZERO,
        Duration::hours(24),
        &mut OsEntropy,
    )
    .await
    .unwrap();
    let keys = ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    // Past its own end (but generation 1 still verifies): the answer is "expired", which a
    // user can act on, not generation 2's "unknown key".
    let late = t0 + TICKET_LIFETIME + SKEW + Duration::seconds(1);
    let e = check(&keys, &old_ticket, late, Duration::hours(24)).unwrap_err();
    assert!(matches!(e, TokenError::Expired { .. }), "{e:?}");
}

#[tokio::test]
async fn rotation_deletes_generations_replaced_longer_ago_than_kept() {
    let (_dir, store) = store().await;
    let t0 = now() - Duration::days(3);
    ServiceKeys::load_or_create(&store, t0, &mut OsEntropy)
        .await
        .unwrap();
    let day = Duration::days(1);
    let r2 = rotate(&store, t0, Duration::ZERO, day, &mut OsEntropy)
        .await
        .unwrap();
    assert_eq!((r2.generation, r2.deleted), (2, 0));
    // Two days on: generation 2 took over two days ago, so 1 is no longer needed; 2 is.
    let r3 = rotate(&store, t0 + 2 * day, Duration::ZERO, day, &mut OsEntropy)
        .await
        .unwrap();
    assert_eq!((r3.generation, r3.deleted), (3, 1));
    let left: Vec<i64> = store
        .key_generations()
        .await
        .unwrap()
        .iter()
        .map(|g| g.generation)
        .collect();
    assert_eq!(left, vec![3, 2]);
}
