//! `lyncd keys`: the token key generations every node shares, and their rotation.

use std::process::ExitCode;

use clap::Subcommand;
use lyncd_core::{OsEntropy, UtcTime};
use lyncd_server::keys::{ACTIVATION_DELAY, rotate};

use crate::cli::DataDir;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List the generations of token keys (identity provider signing, Web Ticket signing,
    /// encryption and wrap key), newest first, and which one signs.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Create a new generation of token keys. Every running node loads it within seconds and
    /// verifies with it at once; all sign with it from its activation. Older generations keep
    /// verifying the tokens they signed until those expire; generations replaced more than
    /// --keep-hours ago are deleted.
    Rotate {
        /// Seconds until the new generation starts signing: long enough for every node to
        /// load it (they look every 2 s).
        #[arg(long, value_name = "SECS", default_value_t = ACTIVATION_DELAY.whole_seconds() as u32)]
        activate_in: u32,
        /// Keep a replaced generation this many hours after its successor took over. It must
        /// outlast the longest token lifetime of every node ([tokens], 8 h by default).
        #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
        keep_hours: u32,
        #[command(flatten)]
        data: DataDir,
    },
}

pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::List { json, data } => {
            let store = data.open().await?;
            let now = UtcTime::now_utc();
            let generations = store.key_generations().await?;
            let signing = generations
                .iter()
                .find(|g| g.activates_at <= now)
                .map(|g| g.generation);
            if generations.is_empty() {
                eprintln!("no token keys yet: the first `lyncd serve` creates them");
            }
            for g in &generations {
                let state = match () {
                    _ if Some(g.generation) == signing => "signs",
                    _ if g.activates_at > now => "pending",
                    _ => "verifies",
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "generation": g.generation,
                            "state": state,
                            "created_at": rfc3339(g.created_at),
                            "activates_at": rfc3339(g.activates_at),
                        })
                    );
                } else {
                    println!(
                        "generation {:<4} {:<9} created {}  signs from {}",
                        g.generation,
                        state,
                        rfc3339(g.created_at),
                        rfc3339(g.activates_at)
                    );
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate {
            activate_in,
            keep_hours,
            data,
        } => {
            let store = data.open().await?;
            let rotation = rotate(
                &store,
                UtcTime::now_utc(),
                time::Duration::seconds(activate_in.into()),
                time::Duration::hours(keep_hours.into()),
                &mut OsEntropy,
            )
            .await?;
            store.close().await;
            if !rotation.created {
                eprintln!(
                    "another rotation created generation {} at the same time; this one adopted it",
                    rotation.generation
                );
            }
            println!(
                "generation {} signs from {}",
                rotation.generation,
                rfc3339(rotation.activates_at)
            );
            if rotation.deleted > 0 {
                println!(
                    "deleted {} generation(s) replaced more than {keep_hours} h ago",
                    rotation.deleted
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rfc3339(t: UtcTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
