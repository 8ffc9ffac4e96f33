use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lyncd",
    version,
    about = "Skype for Business / Lync sign-in servers, and a client that explains every step"
)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start every service on loopback with built-in defaults, sign a demo user in, show each step.
    Demo(DemoArgs),
    /// Run the servers (discovery, Autodiscover, Web Ticket, identity provider, SIP).
    Serve(ServeArgs),
    /// Manage users (and, implicitly, their tenants).
    #[command(subcommand)]
    User(UserCommand),
    /// lyncd's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Sign in as a user, step by step, against any Lync / Skype for Business deployment.
    Signin(SigninArgs),
}

impl Command {
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            Command::Demo(_) | Command::Signin(_) | Command::User(_) | Command::Ca(_)
        )
    }

    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Demo(a) => crate::demo::run(a).await,
            Command::Serve(a) => crate::serve::run(a).await,
            Command::User(c) => crate::admin::user(c).await,
            Command::Ca(c) => crate::admin::ca(c).await,
            Command::Signin(a) => crate::signin::run(a).await,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DataDir {
    /// Where lyncd keeps its database and keys [default: $LYNCD_DATA_DIR, else
    /// $XDG_DATA_HOME/lyncd, else ~/.local/share/lyncd]
    #[arg(long, value_name = "DIR", env = "LYNCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDir {
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("lyncd"));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(PathBuf::from(h).join(".local/share/lyncd")),
            None => anyhow::bail!("no data directory: pass --data-dir DIR or set LYNCD_DATA_DIR"),
        }
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// One JSON document instead of the table: {"ok":…,"steps":[{"step","ok","ms","detail"}…]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration (see README); without it, every service listens on 127.0.0.1 with
    /// the default ports and names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; the password comes from a prompt, --password-stdin or LYNCD_PASSWORD.
    Add {
        /// The user's SIP address, e.g. alice@contoso.com (its domain becomes a tenant)
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// A display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List users (of one domain).
    List {
        #[arg(long)]
        domain: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Disable a user: sign-in is refused from then on.
    Disable {
        address: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Enable a disabled user again.
    Enable {
        address: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Print the CA certificate (PEM), creating the CA on first use. Clients must trust it.
    Export {
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Args, Debug)]
pub struct SigninArgs {
    /// The SIP address to sign in as, e.g. alice@contoso.com
    pub address: String,
    /// Read the password from the first line of standard input (else LYNCD_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_stdin: bool,
    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Skip DNS discovery: ask this Autodiscover server (HOST[:PORT], port 443 by default).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// Connect to ADDR whenever a URL names HOST:PORT (like curl --resolve); repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Trust this CA (PEM) for every HTTPS connection, instead of the system's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Login name for the identity provider, when it differs from the SIP address.
    #[arg(long)]
    pub login: Option<String>,
    /// Seconds to wait for each request.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
    /// Ports of the lyncdiscover URLs (HTTPS,HTTP), for labs that serve them elsewhere.
    #[arg(long, value_name = "HTTPS,HTTP", default_value = "443,80", hide = true)]
    pub discover_ports: String,
}
