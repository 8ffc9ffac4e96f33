//! SIP registrations (bindings) shared by the nodes of a cluster (migration 0004).
//!
//! The registrar of the node a client is connected to writes the binding before it answers
//! 200 OK, so an acknowledged registration is in the database; any node reads it. Expiry is a
//! column, not an event: every query filters on `expires_at > now`, so a binding whose node
//! died still expires on time everywhere, and [`Store::purge_expired_registrations`] only
//! reclaims space.

use lyncd_core::{SipAddress, UtcTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, from_unix, unix_seconds};

/// One registered endpoint of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub address: SipAddress,
    /// The endpoint id from the `From` header's `epid` parameter.
    pub epid: String,
    pub instance: Option<String>,
    /// The Contact header value as the client sent it.
    pub contact: String,
    pub gruu: String,
    /// The node whose registrar holds the client's connection.
    pub node: String,
    pub registered_at: UtcTime,
    pub expires_at: UtcTime,
}

/// The unexpired registrations, for [`registration_from_row`]; `$1` is now.
macro_rules! live_registrations {
    () => {
        "SELECT u.address, r.epid, r.instance, r.contact, r.gruu, r.node, r.registered_at, \
         r.expires_at FROM registrations r JOIN users u ON u.address_key = r.address_key \
         WHERE r.expires_at > $1"
    };
}
const LIVE_OF_USER: &str = concat!(
    live_registrations!(),
    " AND r.address_key = $2 ORDER BY r.address_key, r.epid"
);
const LIVE_ALL: &str = concat!(live_registrations!(), " ORDER BY r.address_key, r.epid");

impl Store {
    /// Records a registration or its refresh (same user and epid, from any node: the row moves
    /// to `r.node`). The user must exist ([`StoreError::UnknownUser`] otherwise, nothing
    /// written).
    pub async fn upsert_registration(&self, r: &Registration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = sqlx::query(
            "INSERT INTO registrations (address_key, epid, instance, contact, gruu, node, \
             registered_at, expires_at) \
             SELECT address_key, $2, $3, $4, $5, $6, $7, $8 FROM users WHERE address_key = $1 \
             ON CONFLICT (address_key, epid) DO UPDATE SET instance = excluded.instance, \
             contact = excluded.contact, gruu = excluded.gruu, node = excluded.node, \
             registered_at = excluded.registered_at, expires_at = excluded.expires_at",
        )
        .bind(r.address.key())
        .bind(&r.epid)
        .bind(r.instance.clone())
        .bind(&r.contact)
        .bind(&r.gruu)
        .bind(&r.node)
        .bind(unix_seconds(r.registered_at))
        .bind(unix_seconds(r.expires_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if written == 0 {
            return Err(StoreError::UnknownUser(r.address.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the registration of `address`/`epid`: with `held_by`, only if that node holds
    /// it (a node cleaning up after its own connection or timer never removes a binding that
    /// moved to another node); without, wherever it is (the client itself de-registered).
    /// Returns whether a row went.
    pub async fn remove_registration(
        &self,
        address: &SipAddress,
        epid: &str,
        held_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query(
            "DELETE FROM registrations WHERE address_key = $1 AND epid = $2 \
             AND ($3 IS NULL OR node = $3)",
        )
        .bind(address.key())
        .bind(epid)
        .bind(held_by)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// Unexpired registrations (of one user), ordered by user, then epid.
    pub async fn registrations(
        &self,
        user: Option<&SipAddress>,
        now: UtcTime,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = match user {
            Some(u) => {
                sqlx::query(LIVE_OF_USER)
                    .bind(unix_seconds(now))
                    .bind(u.key())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(LIVE_ALL)
                    .bind(unix_seconds(now))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(registration_from_row).collect()
    }

    /// Deletes registrations that expired at or before `now`, whichever node wrote them.
    /// Returns how many went.
    pub async fn purge_expired_registrations(&self, now: UtcTime) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
            .bind(unix_seconds(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }
}

fn registration_from_row(row: &AnyRow) -> Result<Registration, StoreError> {
    let address: String = row.try_get("address")?;
    let address = SipAddress::parse(&address)
        .map_err(|e| StoreError::Corrupt(format!("registration owner: {e}")))?;
    Ok(Registration {
        address,
        epid: row.try_get("epid")?,
        instance: row.try_get("instance")?,
        contact: row.try_get("contact")?,
        gruu: row.try_get("gruu")?,
        node: row.try_get("node")?,
        registered_at: from_unix(row.try_get("registered_at")?)?,
        expires_at: from_unix(row.try_get("expires_at")?)?,
    })
}
