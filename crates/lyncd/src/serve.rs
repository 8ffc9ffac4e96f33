//! `lyncd serve`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use lyncd_core::{OsEntropy, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, ServerConfig, SystemClock};
use lyncd_store::Store;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ServerConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => ServerConfig::default(),
    };
    let dir = args.data.resolve()?;
    let store = Store::open_dir(&dir)
        .await
        .with_context(|| format!("opening the data directory {}", dir.display()))?;
    let keys = ServiceKeys::load_or_create(&store, UtcTime::now_utc(), &mut OsEntropy).await?;
    let app = Arc::new(App::new(config, store, keys, Arc::new(SystemClock)));
    let running = lyncd_server::start(app).await?;
    wait_for_signal().await;
    tracing::info!("stopping: finishing requests in flight");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
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
