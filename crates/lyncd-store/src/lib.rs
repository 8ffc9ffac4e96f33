//! lyncd's durable state: tenants, users and their credentials, service keys and their
//! generations, the user certificates the Certificate Provisioning service issued, and the SIP
//! registrations of every node.
//!
//! One [`Store`] over sqlx's `Any` driver, with two backends: SQLite (one file in the data
//! directory, WAL; the zero-setup default) and PostgreSQL (`postgres://…`, shared by the nodes
//! of a cluster). Both run the *same* migrations and the same statements, which is why every
//! statement here uses `$n` placeholders, `ON CONFLICT`, and only TEXT/BIGINT columns
//! (design/dependencies.md §2.6). No statement is written twice.
//!
//! Every write is one transaction that begins with its write statement (so SQLite takes the
//! write lock up front and `busy_timeout` applies), and any error rolls the whole write back:
//! a write is either acknowledged and durable, or absent. Times are arguments (`now`) and are
//! stored as whole unix seconds.
#![forbid(unsafe_code)]

mod generations;
pub mod password;
mod registrations;

pub use generations::{KeyGeneration, TOKEN_KEY_NAMES};
pub use registrations::Registration;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use lyncd_core::{Secret, SipAddress, UtcTime};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Name of the SQLite file inside the data directory.
pub const DB_FILE: &str = "lyncd.db";

/// How long a request waits for a database connection before the store reports the database
/// unavailable (SQLite's `busy_timeout` below is the same 5 s).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `path` is the data directory or the database URL with any password removed.
    #[error("could not open the database at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database could not be reached when opening it (refused, reset, timed out, shutting
    /// down). Worth retrying: [`StoreError::is_transient`].
    #[error("cannot reach the database at {path}: {source}")]
    Unreachable {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the user {0} already exists")]
    UserExists(String),
    #[error("there is no user {0}")]
    UnknownUser(String),
    #[error("the tenant {0} already exists")]
    TenantExists(String),
    #[error("{0:?} is not a valid tenant domain (a DNS name such as contoso.com)")]
    InvalidDomain(String),
    #[error("a certificate with serial number {0} is already recorded")]
    CertificateExists(String),
    #[error("the object id {0} is already used by another user")]
    ObjectIdInUse(String),
    /// [`Store::set_user_flags`] was asked to change nothing.
    #[error("no user setting to change was given")]
    NothingToChange,
    /// The database cannot be reached: refused, reset or timed-out connections, a server
    /// shutting down, a busy SQLite file. Nothing was written; retry later.
    #[error("the database is unavailable ({0}); nothing was written, retry later")]
    Unavailable(#[source] sqlx::Error),
    /// The database refuses writes (a read-only file or `mode=ro`, a PostgreSQL standby or
    /// `default_transaction_read_only`). Nothing was written.
    #[error(
        "the database refuses writes ({0}); lyncd needs a writable database (a PostgreSQL \
         primary, a writable SQLite file)"
    )]
    ReadOnly(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error(
        "a stored value could not be read back ({0}); the database was changed outside lyncd or is damaged"
    )]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same request may succeed later unchanged (the database is down, busy or
    /// read-only for now): services answer 503 with `Retry-After` rather than an error.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::ReadOnly(_) | StoreError::Unreachable { .. }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(e)
            }
            E::Database(db) => match db.code().as_deref().map(classify_code) {
                Some(Some(Transient::ReadOnly)) => StoreError::ReadOnly(e),
                Some(Some(Transient::Unavailable)) => StoreError::Unavailable(e),
                _ => StoreError::Database(e),
            },
            _ => StoreError::Database(e),
        }
    }
}

enum Transient {
    Unavailable,
    ReadOnly,
}

/// Classifies a backend error code: PostgreSQL SQLSTATEs are five characters, SQLite's
/// (extended) result codes are numbers whose low byte is the primary code.
fn classify_code(code: &str) -> Option<Transient> {
    if let Ok(n) = code.parse::<u32>()
        && code.len() < 5
    {
        return match n & 0xff {
            8 => Some(Transient::ReadOnly), // SQLITE_READONLY*
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
            5 | 6 | 10 | 13 | 14 => Some(Transient::Unavailable),
            _ => None,
        };
    }
    match code {
        // read_only_sql_transaction (a standby, or default_transaction_read_only)
        "25006" => Some(Transient::ReadOnly),
        // connection exceptions; admin/crash shutdown, cannot connect now; too many
        // connections; serialization and deadlock failures (retryable by definition)
        c if c.starts_with("08") => Some(Transient::Unavailable),
        "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" => Some(Transient::Unavailable),
        _ => None,
    }
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A SIP domain served by this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub domain: String,
    pub created_at: UtcTime,
}

/// What [`Store::add_user`] needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub address: SipAddress,
    /// A PHC string from [`password::hash_password`].
    pub password_hash: String,
    pub display_name: Option<String>,
    /// Stable opaque id (a GUID in Lync deployments), unique across all tenants.
    pub object_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub address: SipAddress,
    pub display_name: Option<String>,
    pub object_id: String,
    /// `false`: every sign-in is refused (`lyncd user disable`).
    pub enabled: bool,
    /// `false`: the user may not register with the SIP registrar (Lync's "not enabled for
    /// SIP"); web sign-in to Certificate Provisioning is refused too.
    pub sip_enabled: bool,
    /// `false`: the user may register only from the internal networks (Lync's external access
    /// policy without remote user access).
    pub remote_access: bool,
    pub password_hash: Secret<String>,
    pub created_at: UtcTime,
    pub updated_at: UtcTime,
}

/// A change to a user's sign-in flags for [`Store::set_user_flags`]: `None` leaves a flag as it
/// is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFlags {
    pub sip_enabled: Option<bool>,
    pub remote_access: Option<bool>,
}

impl UserFlags {
    pub fn is_empty(&self) -> bool {
        self.sip_enabled.is_none() && self.remote_access.is_none()
    }
}

/// The result of [`Store::add_user`]: the user, and whether its tenant was created with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedUser {
    pub user: User,
    pub tenant_created: bool,
}

/// A named piece of key material shared by services (e.g. the Web Ticket signing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub name: String,
    pub material: Secret<String>,
    pub created_at: UtcTime,
}

/// What [`Store::record_certificate`] needs: one issued user certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// Lower-case hex of the serial number.
    pub serial_hex: String,
    pub address: SipAddress,
    pub device_id: Option<String>,
    pub sha256_hex: String,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
    pub issued_at: UtcTime,
}

/// An issued user certificate as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    pub serial_hex: String,
    pub address: SipAddress,
    pub device_id: Option<String>,
    pub sha256_hex: String,
    pub not_before: UtcTime,
    pub not_after: UtcTime,
    pub issued_at: UtcTime,
}

/// Handle to the database; cheap to clone (it wraps a connection pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) `data_dir/lyncd.db`. A directory this creates is private to
    /// the owner (0700), since the database holds password hashes and keys.
    pub async fn open_dir(data_dir: &Path) -> Result<Store, StoreError> {
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: data_dir.display().to_string(),
            source,
        };
        create_private_dir(data_dir).map_err(|e| open_err(Box::new(e)))?;
        let file = data_dir.join(DB_FILE);
        let url = sqlite_file_url(&file).map_err(|e| open_err(e.into()))?;
        Self::connect(&url, data_dir.display().to_string(), Some(&file)).await
    }

    /// Opens a database by URL — `sqlite://<path>[?mode=…]`, `sqlite::memory:`,
    /// `postgres://user:password@host[:port]/database[?sslmode=…]` (or `postgresql://`) — and
    /// applies the migrations. Errors name the URL without its password.
    pub async fn open_url(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let file = sqlite_path_of(url);
        Self::connect(url, shown, file.as_deref()).await
    }

    /// `sqlite_file`: the database file, for the lock that serializes migrations between
    /// processes (PostgreSQL takes an advisory lock itself).
    async fn connect(
        url: &str,
        shown_as: String,
        sqlite_file: Option<&Path>,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let open_err = |source: sqlx::Error| StoreError::Open {
            path: shown_as.clone(),
            source: Box::new(source),
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Open {
                path: shown_as,
                source: "the database URL must start with sqlite:, postgres:// or postgresql://"
                    .into(),
            });
        };
        let options: AnyConnectOptions = url.parse().map_err(open_err)?;
        let mut pool_options =
            AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                            // WAL lets readers run beside the writer; NORMAL is durable across
                            // application crashes and costs one fsync per checkpoint, not per commit.
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA busy_timeout = 5000",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                        }
                        Ok(())
                    })
                });
        if is_sqlite_memory(url) {
            // Every connection to `sqlite::memory:` is a new, empty database: keep exactly one.
            pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let opening = |e: sqlx::Error| match StoreError::from(e) {
            StoreError::Unavailable(source) => StoreError::Unreachable {
                path: shown_as.clone(),
                source,
            },
            StoreError::Database(e) => open_err(e),
            other => other,
        };
        // One plain connection first: the pool would retry until its timeout and then report
        // only "timed out", hiding the cause (refused, no such host, bad password).
        let probe = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(opening)?;
        sqlx::Connection::close(probe).await.map_err(opening)?;
        let pool = pool_options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(opening)?;
        {
            // SQLite's migrator takes no lock of its own: two processes starting on a fresh
            // file would both try to create the tables. Serialize them on a lock file.
            let _lock = match sqlite_file {
                Some(file) => {
                    Some(
                        MigrationLock::acquire(file)
                            .await
                            .map_err(|e| StoreError::Open {
                                path: shown_as.clone(),
                                source: Box::new(e),
                            })?,
                    )
                }
                None => None,
            };
            MIGRATOR.run(&pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
                other => StoreError::Migrate(other),
            })?;
        }
        tracing::debug!(database = %shown_as, %backend, "store opened");
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database takes writes: one write that changes nothing, rolled back.
    /// [`StoreError::ReadOnly`] when it refuses them (SQLite `mode=ro` or a read-only file, a
    /// PostgreSQL standby or `default_transaction_read_only`), which opening a database whose
    /// schema is up to date does not notice: it writes nothing.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE tenants SET created_at = created_at WHERE 1 = 0")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    /// The highest migration applied (the schema version).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?.unwrap_or(0))
    }

    /// Every migration this lyncd knows, as (version, description).
    pub fn known_migrations() -> Vec<(i64, String)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    /// Closes every connection; later calls fail. Lets SQLite checkpoint its WAL on shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- tenants -----

    /// Adds a tenant. Fails with [`StoreError::TenantExists`] if it is already there.
    pub async fn add_tenant(&self, domain: &str, now: UtcTime) -> Result<Tenant, StoreError> {
        let domain = normalize_domain(domain)?;
        let created_at = unix_seconds(now);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tenants (domain, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&domain)
        .bind(created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::TenantExists(domain));
        }
        tx.commit().await?;
        Ok(Tenant {
            domain,
            created_at: from_unix(created_at)?,
        })
    }

    pub async fn tenant(&self, domain: &str) -> Result<Option<Tenant>, StoreError> {
        let domain = domain.to_ascii_lowercase();
        sqlx::query("SELECT domain, created_at FROM tenants WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| tenant_from_row(&row))
            .transpose()
    }

    /// All tenants, ordered by domain.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        sqlx::query("SELECT domain, created_at FROM tenants ORDER BY domain")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    // ----- users -----

    /// Adds an enabled user, creating the tenant of its domain in the same transaction if
    /// needed. Duplicate addresses (compared case-insensitively) are
    /// [`StoreError::UserExists`]; on any error nothing is written.
    pub async fn add_user(&self, new: NewUser, now: UtcTime) -> Result<AddedUser, StoreError> {
        let key = new.address.key();
        let domain = new.address.domain().to_string();
        let at = unix_seconds(now);
        let mut tx = self.pool.begin().await?;

        let tenant_created = sqlx::query(
            "INSERT INTO tenants (domain, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&domain)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;

        let inserted = sqlx::query(
            "INSERT INTO users (address_key, address, domain, display_name, object_id, enabled, \
             password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&key)
        .bind(new.address.to_string())
        .bind(&domain)
        .bind(new.display_name.clone())
        .bind(&new.object_id)
        .bind(&new.password_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        if inserted == 0 {
            // Either unique key can have collided; say which. Dropping `tx` rolls back the
            // tenant insert above.
            let address_taken = sqlx::query("SELECT 1 FROM users WHERE address_key = $1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if address_taken {
                StoreError::UserExists(new.address.to_string())
            } else {
                StoreError::ObjectIdInUse(new.object_id)
            });
        }
        tx.commit().await?;

        let created_at = from_unix(at)?;
        Ok(AddedUser {
            user: User {
                address: new.address,
                display_name: new.display_name,
                object_id: new.object_id,
                enabled: true,
                sip_enabled: true,
                remote_access: true,
                password_hash: Secret::new(new.password_hash),
                created_at,
                updated_at: created_at,
            },
            tenant_created,
        })
    }

    /// Looks a user up by address, case-insensitively.
    pub async fn user(&self, address: &SipAddress) -> Result<Option<User>, StoreError> {
        sqlx::query(USER_BY_KEY)
            .bind(address.key())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| user_from_row(&row))
            .transpose()
    }

    /// All users, or those of one domain, ordered by address (case-insensitively).
    pub async fn users(&self, domain: Option<&str>) -> Result<Vec<User>, StoreError> {
        let rows = match domain {
            Some(d) => {
                sqlx::query(USERS_BY_DOMAIN)
                    .bind(d.to_ascii_lowercase())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(ALL_USERS).fetch_all(&self.pool).await?,
        };
        rows.iter().map(user_from_row).collect()
    }

    /// Enables or disables a user and returns the updated record.
    pub async fn set_enabled(
        &self,
        address: &SipAddress,
        enabled: bool,
        now: UtcTime,
    ) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated =
            sqlx::query("UPDATE users SET enabled = $1, updated_at = $2 WHERE address_key = $3")
                .bind(i64::from(enabled))
                .bind(unix_seconds(now))
                .bind(address.key())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        Self::updated_user(tx, address, updated).await
    }

    /// Changes the flags `change` names and returns the updated record. An empty change is
    /// [`StoreError::NothingToChange`] and an unknown user [`StoreError::UnknownUser`]; either
    /// way nothing is written.
    pub async fn set_user_flags(
        &self,
        address: &SipAddress,
        change: UserFlags,
        now: UtcTime,
    ) -> Result<User, StoreError> {
        if change.is_empty() {
            return Err(StoreError::NothingToChange);
        }
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET sip_enabled = COALESCE($1, sip_enabled), \
             remote_access = COALESCE($2, remote_access), updated_at = $3 \
             WHERE address_key = $4",
        )
        .bind(change.sip_enabled.map(i64::from))
        .bind(change.remote_access.map(i64::from))
        .bind(unix_seconds(now))
        .bind(address.key())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Self::updated_user(tx, address, updated).await
    }

    /// The end of a one-user update: an unknown user changes nothing (the transaction is
    /// dropped, so rolled back); otherwise the record as written is read back and committed.
    async fn updated_user(
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        address: &SipAddress,
        rows_affected: u64,
    ) -> Result<User, StoreError> {
        if rows_affected == 0 {
            return Err(StoreError::UnknownUser(address.to_string()));
        }
        let row = sqlx::query(USER_BY_KEY)
            .bind(address.key())
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    // ----- shared keys -----

    pub async fn key(&self, name: &str) -> Result<Option<StoredKey>, StoreError> {
        sqlx::query("SELECT name, material, created_at FROM service_keys WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| key_from_row(&row))
            .transpose()
    }

    /// Stores `material` under `name` unless a value is already there, and returns whichever
    /// value is stored afterwards. Concurrent callers (tasks, processes, later cluster nodes)
    /// all get the same winner, so they can each generate a candidate and adopt the result.
    pub async fn insert_key_if_absent(
        &self,
        name: &str,
        material: &str,
        now: UtcTime,
    ) -> Result<StoredKey, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO service_keys (name, material, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(material)
        .bind(unix_seconds(now))
        .execute(&mut *tx)
        .await?;
        let row =
            sqlx::query("SELECT name, material, created_at FROM service_keys WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        let key = key_from_row(&row)?;
        tx.commit().await?;
        Ok(key)
    }
}

impl Store {
    // ----- issued certificates -----

    /// Records a certificate issued to an existing user. An unknown user is
    /// [`StoreError::UnknownUser`], a serial already recorded [`StoreError::CertificateExists`];
    /// either way nothing is written.
    pub async fn record_certificate(&self, cert: &NewCertificate) -> Result<(), StoreError> {
        let serial = cert.serial_hex.to_ascii_lowercase();
        let key = cert.address.key();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO issued_certificates (serial_hex, address_key, device_id, sha256_hex, \
             not_before, not_after, issued_at) \
             SELECT $1, address_key, $3, $4, $5, $6, $7 FROM users WHERE address_key = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&serial)
        .bind(&key)
        .bind(cert.device_id.clone())
        .bind(cert.sha256_hex.to_ascii_lowercase())
        .bind(unix_seconds(cert.not_before))
        .bind(unix_seconds(cert.not_after))
        .bind(unix_seconds(cert.issued_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let user_exists = sqlx::query("SELECT 1 FROM users WHERE address_key = $1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if user_exists {
                StoreError::CertificateExists(serial)
            } else {
                StoreError::UnknownUser(cert.address.to_string())
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every certificate issued to a user, oldest first.
    pub async fn certificates_for(
        &self,
        address: &SipAddress,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        sqlx::query(CERTS_BY_USER)
            .bind(address.key())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(certificate_from_row)
            .collect()
    }

    /// One certificate by serial number (hex, any case).
    pub async fn certificate(
        &self,
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        sqlx::query(CERT_BY_SERIAL)
            .bind(serial_hex.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| certificate_from_row(&row))
            .transpose()
    }
}

const CERTS_BY_USER: &str = "SELECT c.serial_hex, u.address, c.device_id, c.sha256_hex, \
                             c.not_before, c.not_after, c.issued_at FROM issued_certificates c \
                             JOIN users u ON u.address_key = c.address_key \
                             WHERE c.address_key = $1 ORDER BY c.issued_at, c.serial_hex";
const CERT_BY_SERIAL: &str = "SELECT c.serial_hex, u.address, c.device_id, c.sha256_hex, \
                              c.not_before, c.not_after, c.issued_at FROM issued_certificates c \
                              JOIN users u ON u.address_key = c.address_key \
                              WHERE c.serial_hex = $1";

/// The columns [`user_from_row`] reads.
macro_rules! user_columns {
    () => {
        "address, display_name, object_id, enabled, sip_enabled, remote_access, password_hash, \
         created_at, updated_at"
    };
}
const USER_BY_KEY: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE address_key = $1"
);
const USERS_BY_DOMAIN: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE domain = $1 ORDER BY address_key"
);
const ALL_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users ORDER BY address_key"
);

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        domain: row.try_get("domain")?,
        created_at: from_unix(row.try_get("created_at")?)?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let address: String = row.try_get("address")?;
    let address = SipAddress::parse(&address)
        .map_err(|e| StoreError::Corrupt(format!("user address: {e}")))?;
    let flag = |column: &str| -> Result<bool, StoreError> {
        match row.try_get::<i64, _>(column)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(StoreError::Corrupt(format!(
                "user {address}: {column} flag is {other}, not 0 or 1"
            ))),
        }
    };
    Ok(User {
        display_name: row.try_get("display_name")?,
        object_id: row.try_get("object_id")?,
        enabled: flag("enabled")?,
        sip_enabled: flag("sip_enabled")?,
        remote_access: flag("remote_access")?,
        password_hash: Secret::new(row.try_get("password_hash")?),
        created_at: from_unix(row.try_get("created_at")?)?,
        updated_at: from_unix(row.try_get("updated_at")?)?,
        address,
    })
}

fn certificate_from_row(row: &AnyRow) -> Result<CertificateRecord, StoreError> {
    let address: String = row.try_get("address")?;
    let address = SipAddress::parse(&address)
        .map_err(|e| StoreError::Corrupt(format!("certificate owner: {e}")))?;
    Ok(CertificateRecord {
        serial_hex: row.try_get("serial_hex")?,
        address,
        device_id: row.try_get("device_id")?,
        sha256_hex: row.try_get("sha256_hex")?,
        not_before: from_unix(row.try_get("not_before")?)?,
        not_after: from_unix(row.try_get("not_after")?)?,
        issued_at: from_unix(row.try_get("issued_at")?)?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        name: row.try_get("name")?,
        material: Secret::new(row.try_get("material")?),
        created_at: from_unix(row.try_get("created_at")?)?,
    })
}

fn unix_seconds(t: UtcTime) -> i64 {
    t.unix_timestamp()
}

fn from_unix(secs: i64) -> Result<UtcTime, StoreError> {
    UtcTime::from_unix_timestamp(secs)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {secs}: {e}")))
}

/// Lower-cases and checks a tenant domain with the same rules as SIP address domains.
fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    SipAddress::parse(&format!("tenant@{domain}"))
        .map(|a| a.domain().to_string())
        .map_err(|_| StoreError::InvalidDomain(domain.to_string()))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// `sqlite://<path>?mode=rwc`, escaping the characters that would end the path early.
fn sqlite_file_url(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("the path {} is not valid UTF-8", path.display()))?;
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            ' ' => escaped.push_str("%20"),
            c => escaped.push(c),
        }
    }
    Ok(format!("sqlite://{escaped}?mode=rwc"))
}

/// The file behind a `sqlite://<path>` URL (not for in-memory databases).
fn sqlite_path_of(url: &str) -> Option<std::path::PathBuf> {
    if is_sqlite_memory(url) {
        return None;
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let mut decoded = Vec::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = path
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            decoded.push(b);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let path = String::from_utf8(decoded).ok()?;
    (!path.is_empty()).then(|| std::path::PathBuf::from(path))
}

/// An exclusive lock on `<database file>.migrate-lock`, held while migrations run. The lock
/// is the kernel's (flock): a process that dies releases it.
struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    async fn acquire(db_file: &Path) -> std::io::Result<MigrationLock> {
        let mut name = db_file.as_os_str().to_owned();
        name.push(".migrate-lock");
        let path = std::path::PathBuf::from(name);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok(MigrationLock { _file: file })
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

fn is_sqlite_memory(url: &str) -> bool {
    url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory"))
}

/// A database URL as configured. Configurations and command-line arguments derive `Debug`, so
/// its `Debug` (and `Display`) form is [`redact_url`]'s: the password never reaches a log line
/// by accident. [`DatabaseUrl::as_str`] is the real URL, for opening the store.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(url.to_string()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The URL with any password replaced by `***` (in the user info, and a `password=` query
/// parameter), for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut shown = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
                    None => head.to_string(),
                },
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_never_shows_its_password_when_printed() {
        let url: DatabaseUrl = "postgres://lyncd:s3cret@db/lyncd".parse().unwrap();
        assert_eq!(url.as_str(), "postgres://lyncd:s3cret@db/lyncd");
        for shown in [
            format!("{url:?}"),
            url.to_string(),
            format!("{:?}", Some(&url)),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("postgres://lyncd:***@db/lyncd"), "{shown}");
        }
    }

    #[test]
    fn urls_escape_and_redact() {
        assert_eq!(
            sqlite_file_url(Path::new("/tmp/a b/x?#%/lyncd.db")).unwrap(),
            "sqlite:///tmp/a%20b/x%3F%23%25/lyncd.db?mode=rwc"
        );
        assert_eq!(
            redact_url("postgres://lyncd:s3cret@db.example:5432/lyncd?sslmode=require"),
            "postgres://lyncd:***@db.example:5432/lyncd?sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/lyncd.db"),
            "sqlite:///var/lib/lyncd.db"
        );
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(!is_sqlite_memory("sqlite:///tmp/memory.db"));
    }

    #[test]
    fn domains_are_checked_and_lowercased() {
        assert_eq!(normalize_domain("Contoso.COM").unwrap(), "contoso.com");
        assert!(matches!(
            normalize_domain("contoso"),
            Err(StoreError::InvalidDomain(_))
        ));
        assert!(matches!(
            normalize_domain("a@b.com"),
            Err(StoreError::InvalidDomain(_))
        ));
    }

    /// A data directory whose database a lyncd that knew only `migrations` wrote: the temporary
    /// directory (keep it alive), the data directory, and a pool on the database.
    async fn database_of_an_older_lyncd(
        migrations: &[&str],
    ) -> (tempfile::TempDir, std::path::PathBuf, AnyPool) {
        let dir = tempfile::tempdir().unwrap();
        let old_migrations = dir.path().join("migrations");
        std::fs::create_dir(&old_migrations).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for file in migrations {
            std::fs::copy(source.join(file), old_migrations.join(file)).unwrap();
        }
        let data = dir.path().join("data");
        create_private_dir(&data).unwrap();
        sqlx::any::install_default_drivers();
        let url = sqlite_file_url(&data.join(DB_FILE)).unwrap();
        let old = AnyPoolOptions::new().connect(&url).await.unwrap();
        Migrator::new(old_migrations.as_path())
            .await
            .unwrap()
            .run(&old)
            .await
            .unwrap();
        (dir, data, old)
    }

    /// A database written by a lyncd that knew only migrations 0001 and 0002 opens with every
    /// existing user enabled for SIP and remote access.
    #[tokio::test]
    async fn users_of_an_older_schema_keep_signing_in() {
        let (_dir, data, old) =
            database_of_an_older_lyncd(&["0001_initial.sql", "0002_certificates.sql"]).await;
        for statement in [
            "INSERT INTO tenants (domain, created_at) VALUES ('contoso.test', 0)",
            "INSERT INTO users (address_key, address, domain, object_id, enabled, password_hash, \
             created_at, updated_at) VALUES ('alice@contoso.test', 'alice@contoso.test', \
             'contoso.test', 'oid', 1, 'h', 0, 0)",
        ] {
            sqlx::query(statement).execute(&old).await.unwrap();
        }
        old.close().await;

        let store = Store::open_dir(&data).await.unwrap();
        let alice = store
            .user(&SipAddress::parse("alice@contoso.test").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(alice.enabled && alice.sip_enabled && alice.remote_access);
    }

    /// Keys written by a lyncd before migration 0004 become token key generation 1, active
    /// since they were created; the CA stays where it was.
    #[tokio::test]
    async fn keys_of_an_older_schema_become_generation_one() {
        let (_dir, data, old) = database_of_an_older_lyncd(&[
            "0001_initial.sql",
            "0002_certificates.sql",
            "0003_user_flags.sql",
        ])
        .await;
        for (name, at) in [
            ("ca", 50),
            ("idp-signing", 100),
            ("webticket-signing", 101),
            ("webticket-encryption", 102),
            ("webticket-wrap", 103),
        ] {
            sqlx::query(
                "INSERT INTO service_keys (name, material, created_at) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind(format!("material of {name}"))
            .bind(at as i64)
            .execute(&old)
            .await
            .unwrap();
        }
        old.close().await;

        let store = Store::open_dir(&data).await.unwrap();
        let generations = store.key_generations().await.unwrap();
        assert_eq!(generations.len(), 1);
        let g = &generations[0];
        assert_eq!(g.generation, 1);
        assert_eq!(g.created_at.unix_timestamp(), 100);
        assert_eq!(g.activates_at.unix_timestamp(), 100);
        assert_eq!(
            g.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            crate::TOKEN_KEY_NAMES
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert_eq!(
            g.key("webticket-wrap").unwrap().material.expose(),
            "material of webticket-wrap"
        );
        assert_eq!(
            store.key("ca").await.unwrap().unwrap().material.expose(),
            "material of ca"
        );
        assert_eq!(store.key("idp-signing").await.unwrap(), None);
    }

    /// A fresh database gets no generation from the migration: the first node creates one.
    #[tokio::test]
    async fn a_fresh_database_has_no_key_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        assert!(store.key_generations().await.unwrap().is_empty());
        assert_eq!(store.schema_version().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn sqlite_connections_use_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        let fk: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(busy, 5000);
        // The schema refuses a user whose tenant does not exist.
        let orphan = sqlx::query(
            "INSERT INTO users (address_key, address, domain, object_id, enabled, password_hash, \
             created_at, updated_at) VALUES ('a@x.test', 'a@x.test', 'x.test', 'o', 1, 'h', 0, 0)",
        )
        .execute(&mut *conn)
        .await;
        assert!(orphan.is_err());
    }
}
