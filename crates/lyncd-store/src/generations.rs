//! Generations of the token keys, for rotation without downtime (migration 0004).
//!
//! A generation is a set of named keys created together. Nodes load every generation: the
//! newest *active* one (`activates_at <= now`) signs, and the others verify the tokens signed
//! before it took over. Creating a generation is first-writer-wins, like
//! [`Store::insert_key_if_absent`]: nodes racing to create the first generation, or two
//! operators rotating at once, all end up with the one generation that was stored.

use lyncd_core::{Secret, UtcTime};
use sqlx::Row;

use crate::{Store, StoreError, StoredKey, from_unix, unix_seconds};

/// The names of the keys in every generation.
pub const TOKEN_KEY_NAMES: [&str; 4] = [
    "idp-signing",
    "webticket-signing",
    "webticket-encryption",
    "webticket-wrap",
];

/// One generation of token keys as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGeneration {
    pub generation: i64,
    pub created_at: UtcTime,
    /// From when nodes sign with it (until a newer generation activates).
    pub activates_at: UtcTime,
    /// Ordered by name.
    pub keys: Vec<StoredKey>,
}

impl KeyGeneration {
    pub fn key(&self, name: &str) -> Option<&StoredKey> {
        self.keys.iter().find(|k| k.name == name)
    }
}

impl Store {
    /// Every generation, newest first, each with its keys.
    pub async fn key_generations(&self) -> Result<Vec<KeyGeneration>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT generation, created_at, activates_at FROM key_generations \
             ORDER BY generation DESC",
        )
        .fetch_all(&mut *tx)
        .await?;
        let keys = sqlx::query(
            "SELECT generation, name, material FROM generation_keys ORDER BY generation, name",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut generations = rows
            .iter()
            .map(|row| {
                Ok(KeyGeneration {
                    generation: row.try_get("generation")?,
                    created_at: from_unix(row.try_get("created_at")?)?,
                    activates_at: from_unix(row.try_get("activates_at")?)?,
                    keys: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for row in &keys {
            let generation: i64 = row.try_get("generation")?;
            let Some(g) = generations.iter_mut().find(|g| g.generation == generation) else {
                continue;
            };
            g.keys.push(StoredKey {
                name: row.try_get("name")?,
                material: Secret::new(row.try_get("material")?),
                created_at: g.created_at,
            });
        }
        Ok(generations)
    }

    /// Stores generation `generation` with `keys` (name, material) unless it exists, adds any of
    /// `keys` it lacks, and returns the generation as stored afterwards. Concurrent callers get
    /// the same result; material already stored is never replaced. `generation` must be
    /// positive.
    pub async fn ensure_key_generation(
        &self,
        generation: i64,
        activates_at: UtcTime,
        keys: &[(&str, &str)],
        now: UtcTime,
    ) -> Result<KeyGeneration, StoreError> {
        if generation < 1 {
            return Err(StoreError::Corrupt(format!(
                "key generation {generation} is not positive"
            )));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO key_generations (generation, created_at, activates_at) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(generation)
        .bind(unix_seconds(now))
        .bind(unix_seconds(activates_at))
        .execute(&mut *tx)
        .await?;
        for (name, material) in keys {
            sqlx::query(
                "INSERT INTO generation_keys (generation, name, material) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(generation)
            .bind(*name)
            .bind(*material)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "SELECT created_at, activates_at FROM key_generations WHERE generation = $1",
        )
        .bind(generation)
        .fetch_one(&mut *tx)
        .await?;
        let created_at = from_unix(row.try_get("created_at")?)?;
        let keys = sqlx::query(
            "SELECT name, material FROM generation_keys WHERE generation = $1 ORDER BY name",
        )
        .bind(generation)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredKey {
                name: row.try_get("name")?,
                material: Secret::new(row.try_get("material")?),
                created_at,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(KeyGeneration {
            generation,
            created_at,
            activates_at: from_unix(row.try_get("activates_at")?)?,
            keys,
        })
    }

    /// Deletes every generation older than `generation` (their tokens have all expired), with
    /// their keys. Returns how many generations went.
    pub async fn delete_key_generations_before(&self, generation: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Keys first: SQLite enforces the cascade only with foreign_keys on, PostgreSQL always.
        sqlx::query("DELETE FROM generation_keys WHERE generation < $1")
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM key_generations WHERE generation < $1")
            .bind(generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }
}
