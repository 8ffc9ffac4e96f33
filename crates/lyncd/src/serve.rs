//! `lyncd serve`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lyncd_core::{OsEntropy, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, ServerConfig, SystemClock};
use lyncd_store::Store;
use tokio::time::Instant;

use crate::cli::{Database, ServeArgs};

/// The longest pause between two attempts to reach the database at start.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ServerConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => ServerConfig::default(),
    };
    let database = args.data.database(
        config
            .database
            .as_ref()
            .map(lyncd_store::DatabaseUrl::as_str),
    )?;
    let signal = wait_for_signal();
    tokio::pin!(signal);
    let wait = args.database_wait.map(Duration::from_secs);
    let store = tokio::select! {
        store = open_with_retry(&database, wait) => store?,
        _ = &mut signal => {
            tracing::info!(%database, "stopped before the database could be opened");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let keys = ServiceKeys::load_or_create(&store, UtcTime::now_utc(), &mut OsEntropy).await?;
    let app = Arc::new(App::new(config, store.clone(), keys, Arc::new(SystemClock)));
    let running = lyncd_server::start(app).await?;
    signal.await;
    tracing::info!("stopping (a second SIGTERM or ctrl-c stops at once)");
    tokio::select! {
        _ = running.shutdown() => {}
        _ = wait_for_signal() => {
            tracing::warn!("stopping at once: requests in flight are cut off");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Lets SQLite checkpoint its write-ahead log; PostgreSQL sessions end cleanly.
    store.close().await;
    tracing::info!(%database, "shutdown: database closed; stopped");
    Ok(ExitCode::SUCCESS)
}

/// Opens the store, retrying while the database is unavailable (unreachable, or refusing
/// writes so migrations cannot run): after 1 s, 2 s, 4 s … then every [`MAX_BACKOFF`], for at
/// most `wait` (forever when `None`). Any other failure (a malformed URL, a wrong password, a
/// schema newer than this lyncd) is final at once.
async fn open_with_retry(database: &Database, wait: Option<Duration>) -> anyhow::Result<Store> {
    let deadline = wait.map(|w| Instant::now() + w);
    let mut backoff = Duration::from_secs(1);
    loop {
        let e = match database.open().await {
            // Opening writes only when migrations are pending: check that a read-only
            // database (SQLite `mode=ro`, a PostgreSQL standby) is not taken for a usable one.
            Ok(store) => match store.check_writable().await {
                Ok(()) => return Ok(store),
                Err(e) => {
                    store.close().await;
                    e
                }
            },
            Err(e) => e,
        };
        let why = database.open_error(&e);
        if !e.is_transient() {
            anyhow::bail!(why);
        }
        let pause = match deadline {
            None => backoff,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    match wait.unwrap_or_default().as_secs() {
                        0 => anyhow::bail!("{why} (--database-wait 0: not retrying)"),
                        waited => anyhow::bail!(
                            "{why}; gave up after {waited} s (--database-wait {waited}; leave it \
                             out to wait until the database is back)"
                        ),
                    }
                }
                backoff.min(left)
            }
        };
        tracing::error!(
            "{why}; retrying in {} s",
            pause.as_secs() + u64::from(pause.subsec_nanos() > 0)
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
