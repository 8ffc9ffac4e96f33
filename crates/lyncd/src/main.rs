//! `lyncd`: the Skype for Business / Lync sign-in servers, and a client that walks the sign-in
//! and explains each step.

mod admin;
mod cli;
mod demo;
mod keys;
mod password;
mod serve;
mod signin;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // For `signin`, -v/-vv/-vvv show the wire (requests, headers, bodies), not debug logs.
    let wire = matches!(cli.command, cli::Command::Signin(_));
    init_logging(if wire { 0 } else { cli.verbose }, cli.command.is_quiet());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lyncd: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(cli.command.run(cli.verbose)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lyncd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level. Client commands log only warnings by
/// default so their own step-by-step output stays readable.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (verbose, quiet) {
        (0, true) => "warn",
        (0, false) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},hyper=warn,sqlx=warn,rustls=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
