use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lyncd_store::{Store, StoreError};

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
    /// The token keys every node shares: list their generations, rotate them.
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
    /// Bring the database schema up to date (every command does on opening) and print its
    /// version. Run it once before upgrading the nodes of a cluster.
    Migrate {
        #[command(flatten)]
        data: DataDir,
    },
    /// List the unexpired SIP registrations of every node sharing the database.
    Registrations {
        /// Only this user's, e.g. alice@contoso.com
        user: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Sign in as a user, step by step, against any Lync / Skype for Business deployment.
    #[command(after_long_help = SIGNIN_EXIT_CODES)]
    Signin(Box<SigninArgs>),
}

impl Command {
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            Command::Demo(_)
                | Command::Signin(_)
                | Command::User(_)
                | Command::Ca(_)
                | Command::Keys(_)
                | Command::Migrate { .. }
                | Command::Registrations { .. }
        )
    }

    pub async fn run(self, verbosity: u8) -> anyhow::Result<ExitCode> {
        match self {
            Command::Demo(a) => crate::demo::run(a).await,
            Command::Serve(a) => crate::serve::run(a).await,
            Command::User(c) => crate::admin::user(c).await,
            Command::Ca(c) => crate::admin::ca(c).await,
            Command::Keys(c) => crate::keys::run(c).await,
            Command::Migrate { data } => crate::admin::migrate(&data).await,
            Command::Registrations { user, json, data } => {
                crate::admin::registrations(user.as_deref(), json, &data).await
            }
            Command::Signin(a) => crate::signin::run(*a, verbosity).await,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DataDir {
    /// Where lyncd keeps its database and keys [default: $LYNCD_DATA_DIR, else
    /// $XDG_DATA_HOME/lyncd, else ~/.local/share/lyncd]
    #[arg(long, value_name = "DIR", env = "LYNCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database: postgres://USER:PASSWORD@HOST[:PORT]/DB (shared by the nodes of a
    /// cluster) or sqlite://FILE [default: `database` in the serve configuration, else
    /// lyncd.db in the data directory]
    #[arg(
        long,
        value_name = "URL",
        env = "LYNCD_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<lyncd_store::DatabaseUrl>,
}

/// Where the store is: the choice of `--database`, the configuration and `--data-dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Url(String),
    /// The SQLite file `lyncd.db` in this data directory.
    Dir(PathBuf),
}

impl Database {
    /// Opens the store (applying pending migrations), once.
    pub async fn open(&self) -> Result<Store, StoreError> {
        match self {
            Database::Url(url) => Store::open_url(url).await,
            Database::Dir(dir) => Store::open_dir(dir).await,
        }
    }

    /// The error of a failed [`Database::open`] as one sentence that names the database
    /// (never its password).
    pub fn open_error(&self, e: &StoreError) -> String {
        match e {
            // Already name the database, redacted.
            StoreError::Open { .. } | StoreError::Unreachable { .. } => e.to_string(),
            StoreError::Unavailable(cause) => {
                format!("the database {self} is unavailable: {cause}")
            }
            _ => format!("{self}: {e}"),
        }
    }
}

/// The database as logs and errors show it: a URL without its password, or a directory.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Url(url) => f.write_str(&lyncd_store::redact_url(url)),
            Database::Dir(dir) => write!(f, "{}", dir.join(lyncd_store::DB_FILE).display()),
        }
    }
}

impl DataDir {
    /// The database: `--database` (or `LYNCD_DATABASE`), else `configured` (the serve
    /// configuration's `database`), else the SQLite file in the data directory.
    pub fn database(&self, configured: Option<&str>) -> anyhow::Result<Database> {
        match self
            .database
            .as_ref()
            .map(lyncd_store::DatabaseUrl::as_str)
            .or(configured)
        {
            Some(url) => Ok(Database::Url(url.to_string())),
            None => Ok(Database::Dir(self.resolve()?)),
        }
    }

    /// Opens the store for a one-shot command: once, failing at once with a message that
    /// names the database.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let db = self.database(None)?;
        db.open()
            .await
            .map_err(|e| anyhow::anyhow!(db.open_error(&e)))
    }

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
    /// Also write the self-contained HTML report (ladder diagram) of the sign-in to FILE.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration (see README); without it, every service listens on 127.0.0.1 with
    /// the default ports and names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// While the database is unreachable or read-only at start, retry (1 s, 2 s, 4 s … every
    /// 30 s) for at most SECS seconds, then fail; 0 fails at once [default: retry until it
    /// works or the process is stopped]
    #[arg(long, value_name = "SECS")]
    pub database_wait: Option<u64>,
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
    /// Change what an enabled user may do, e.g. `lyncd user set bob@contoso.com --sip off`.
    /// Takes effect at the user's next sign-in or registration refresh.
    #[command(group(
        clap::ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["sip", "remote_access"])
    ))]
    Set {
        address: String,
        /// Whether the user may register with the SIP registrar (off: 404, ms-diagnostics 4005;
        /// Certificate Provisioning refuses too).
        #[arg(long, value_name = "on|off")]
        sip: Option<Switch>,
        /// Whether the user may register from outside [sip] internal_networks (off: 403,
        /// ms-diagnostics-public 4003 from elsewhere).
        #[arg(long, value_name = "on|off")]
        remote_access: Option<Switch>,
        #[command(flatten)]
        data: DataDir,
    },
}

/// A yes/no setting on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl From<Switch> for bool {
    fn from(s: Switch) -> bool {
        s == Switch::On
    }
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Print the CA certificate (PEM), creating the CA on first use. Clients must trust it.
    Export {
        #[command(flatten)]
        data: DataDir,
    },
}

/// The exit codes of `lyncd signin` (also in its --help).
pub const SIGNIN_EXIT_CODES: &str = "\
Exit codes (the stage that failed):
   0  signed in (or, with --web-only, the web half done)
   1  stopped without an outcome, or a usage / I/O error
  10  dns, dns-sip           11  lyncdiscover           12  autodiscover-challenge
  13  web-ticket-mex         14  idp-realm              15  idp-token
  16  web-ticket             17  autodiscover-user      18  tls (any endpoint)
  19  ucwa-oauth
  20  sip-register           21  certprov-mex           22  certprov-idp-token
  23  certprov-web-ticket    24  certprov-key           25  certprov
  26  tls-dsk-hello          27  tls-dsk-finish         28  sip-register-signed
  29  sip-refresh            30  sip-sign-out";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct SigninArgs {
    /// The SIP address to sign in as, e.g. alice@contoso.com
    pub address: String,
    /// Read the password from the first line of standard input (else LYNCD_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_stdin: bool,
    /// One JSON document (schema "lyncd.signin/v1", see the README) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write every HTTP leg (HAR 1.2) and every SIP message and DNS lookup (HAR extension
    /// fields `_sip`, `_dns`) to FILE, secrets masked, to hand the run to a colleague.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write a self-contained HTML page with the ladder diagram of the sign-in to FILE.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Show passwords, tickets, tokens and keys in -vv/-vvv output, the trace and the report.
    /// They are masked (length and a short hash) otherwise.
    #[arg(long)]
    pub show_secrets: bool,
    /// Ask this DNS server (IP[:PORT], port 53 by default) instead of the system's resolver.
    #[arg(long, value_name = "IP[:PORT]")]
    pub dns: Option<String>,
    /// Also test the mobile (UCWA) sign-in: an OAuth password grant at the MsRtcOAuth URL.
    /// Uses the password once more.
    #[arg(long)]
    pub ucwa: bool,
    /// Skip the troubleshooting checks (TLS probes, SIP DNS names, clock): only what a client
    /// does.
    #[arg(long)]
    pub no_checks: bool,
    /// Colour on a terminal (auto), always or never. NO_COLOR in the environment means never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
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
    /// Stop after the web half (steps 1–6): no REGISTER, no certificate, no TLS-DSK.
    #[arg(long)]
    pub web_only: bool,
    /// Verify the inner TLS-DSK server certificate against this CA (PEM) and the registrar's
    /// targetname. Without it, any inner certificate is accepted, as pidgin-sipe does (the
    /// outer TLS connection is verified either way).
    #[arg(long, value_name = "PEM")]
    pub tls_dsk_ca: Option<PathBuf>,
    /// Do not send the one signed re-REGISTER after the signed 200 OK.
    #[arg(long)]
    pub no_refresh: bool,
    /// Sign out at the end (signed REGISTER with Expires: 0).
    #[arg(long)]
    pub sign_out: bool,
    /// Once signed in, print the result, then stay signed in for SECS seconds (the SIP
    /// connection open, a keep-alive every 5 s) and exit without signing out. The registrar
    /// drops the registration when the connection closes.
    #[arg(long, value_name = "SECS", conflicts_with_all = ["sign_out", "web_only"])]
    pub stay: Option<u64>,
    /// Neither read nor write the certificate cache.
    #[arg(long)]
    pub no_cert_cache: bool,
    /// Where user certificates are cached [default: $XDG_CACHE_HOME/lyncd/certs, else
    /// ~/.cache/lyncd/certs]. One file per user and registrar, mode 0600.
    #[arg(long, value_name = "DIR")]
    pub cert_cache: Option<PathBuf>,
}
