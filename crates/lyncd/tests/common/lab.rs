//! A lab deployment for end-to-end tests: `lyncd serve` as a separate process on loopback
//! ports with its own DNS zone, one user, and optional injected faults; `lyncd signin` run
//! against it as a user would run it.
//!
//! [`Lab::start`] is the one-node lab of most tests; [`Lab::builder`] makes the nodes of a
//! cluster: a database URL shared with other nodes (or a shared data directory), a node name,
//! a loopback address of its own (Linux routes all of 127/8 to `lo`, so 127.0.0.2 is a second
//! host with the same port numbers), and more configuration.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USER: &str = "alice@contoso.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// How long a node may take to answer `/readyz` after it was started (a loaded 2-core machine
/// builds RSA keys and runs migrations meanwhile).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The ports of one node. Nodes on different loopback addresses can use the same numbers, so
/// the URLs and SRV records one node publishes are right for the other too.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub https: u16,
    pub http: u16,
    pub sip: u16,
    pub dns: u16,
    pub admin: u16,
}

impl Ports {
    /// Ports free (TCP, and UDP for DNS) on every one of `ips`.
    pub fn free_on(ips: &[Ipv4Addr]) -> Ports {
        let mut taken = Vec::new();
        let mut pick = |udp: bool| loop {
            let port = free_port(ips[0]);
            let free = !taken.contains(&port)
                && ips.iter().all(|ip| {
                    TcpListener::bind((*ip, port)).is_ok()
                        && (!udp || UdpSocket::bind((*ip, port)).is_ok())
                });
            if free {
                taken.push(port);
                return port;
            }
        };
        Ports {
            https: pick(false),
            http: pick(false),
            sip: pick(false),
            dns: pick(true),
            admin: pick(false),
        }
    }
}

/// How a lab is made: see [`Lab::builder`].
#[derive(Clone, Debug)]
pub struct LabBuilder {
    extra: String,
    dns: String,
    database: Option<String>,
    data_dir: Option<PathBuf>,
    node: Option<String>,
    ip: Ipv4Addr,
    ports: Option<Ports>,
    user: bool,
}

impl LabBuilder {
    /// Appended to the configuration (e.g. a `[faults]` section).
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra = toml.to_string();
        self
    }

    /// More keys of the `[dns]` section (e.g. `address`, `hosts`).
    pub fn dns(mut self, keys: &str) -> Self {
        self.dns = keys.to_string();
        self
    }

    /// The database every command of this lab uses (`database` in the configuration,
    /// `--database` on the command line), e.g. a PostgreSQL database shared by the nodes.
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_string());
        self
    }

    /// The data directory (by default one of the lab's own): several nodes on one SQLite file.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// `[node] name`.
    pub fn node(mut self, name: &str) -> Self {
        self.node = Some(name.to_string());
        self
    }

    /// The loopback address every listener binds.
    pub fn ip(mut self, ip: Ipv4Addr) -> Self {
        self.ip = ip;
        self
    }

    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Whether to add [`USER`] before starting (default: yes). The second node of a cluster
    /// finds the user in the shared database.
    pub fn user(mut self, add: bool) -> Self {
        self.user = add;
        self
    }

    /// Starts the node, waits until `/readyz` answers 200 and writes the CA file.
    pub fn start(self) -> Lab {
        let mut lab = self.prepare();
        lab.spawn();
        lab.wait_ready();
        lab.export_ca();
        lab
    }

    /// The lab with its configuration written (and [`USER`] added, unless told not to), but
    /// no node running yet: [`Lab::spawn`] starts it.
    pub fn prepare(self) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = self.ports.unwrap_or_else(|| Ports::free_on(&[self.ip]));
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().to_path_buf());
        let lab = Lab {
            ca: dir.path().join("ca.pem"),
            log: dir.path().join("serve.log"),
            config: dir.path().join("lyncd.toml"),
            dir,
            child: None,
            https: ports.https,
            http: ports.http,
            sip: ports.sip,
            dns: ports.dns,
            admin: ports.admin,
            ip: self.ip,
            database: self.database.clone(),
            data_dir,
            signin_timeout: 5,
        };
        if self.user {
            lab.add_user(USER, PASSWORD);
        }
        let database = match &self.database {
            Some(url) => format!("database = \"{url}\"\n"),
            None => String::new(),
        };
        let node = match &self.node {
            Some(name) => format!("[node]\nname = \"{name}\"\n"),
            None => String::new(),
        };
        let (ip, extra, dns) = (self.ip, &self.extra, &self.dns);
        let config = format!(
            r#"{database}
{node}
[names]
web = "lyncweb.contoso.com"
pool = "lyncfe.contoso.com"
idp = "login.contoso.com"

[listen]
https = "{ip}:{https}"
http = "{ip}:{http}"
sip_tls = "{ip}:{sip}"
admin = "{ip}:{admin}"

[dns]
listen = "{ip}:{dns_port}"
{dns}

{extra}
"#,
            https = ports.https,
            http = ports.http,
            sip = ports.sip,
            admin = ports.admin,
            dns_port = ports.dns,
        );
        std::fs::write(&lab.config, config).expect("writing the config");
        lab
    }
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub https: u16,
    pub http: u16,
    pub sip: u16,
    pub dns: u16,
    pub admin: u16,
    pub ip: Ipv4Addr,
    pub ca: PathBuf,
    /// The server's stderr, across restarts.
    pub log: PathBuf,
    pub config: PathBuf,
    database: Option<String>,
    data_dir: PathBuf,
    /// `lyncd signin --timeout` (seconds per request).
    pub signin_timeout: u64,
}

pub fn lyncd(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = lyncd_command(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning lyncd");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        let _ = input.write_all(s.as_bytes());
    }
    drop(input);
    child.wait_with_output().expect("waiting for lyncd")
}

/// `lyncd ARGS` with a clean environment, stdin and stderr piped (stdout is the caller's).
fn lyncd_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lyncd"));
    command
        .args(args)
        .env_remove("LYNCD_PASSWORD")
        .env_remove("LYNCD_DATA_DIR")
        .env_remove("LYNCD_DATABASE")
        .env_remove("SSLKEYLOGFILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Lab {
    /// Starts a deployment for contoso.com with user alice; `extra` is appended to the
    /// configuration (e.g. a `[faults]` section).
    pub fn start(extra: &str) -> Lab {
        Lab::builder().extra(extra).start()
    }

    pub fn builder() -> LabBuilder {
        LabBuilder {
            extra: String::new(),
            dns: String::new(),
            database: None,
            data_dir: None,
            node: None,
            ip: Ipv4Addr::LOCALHOST,
            ports: None,
            user: true,
        }
    }

    /// Starts `lyncd serve` (again, after [`kill`](Self::kill)), its stderr appended to the log.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "lyncd serve is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut args = vec![
            "serve".to_string(),
            "--config".into(),
            self.config.to_str().unwrap().into(),
        ];
        if self.database.is_none() {
            args.extend(["--data-dir".into(), self.data_dir()]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_lyncd"))
            .args(&args)
            .env_remove("LYNCD_DATA_DIR")
            .env_remove("LYNCD_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning lyncd serve");
        self.child = Some(child);
    }

    /// SIGKILL: the node dies at once, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id of the running node.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until `/readyz` on the admin listener answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("lyncd serve exited with {status}: {}", self.server_log());
            }
            if let Ok((200, _)) = self.admin_get("/readyz") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lyncd serve was not ready within {} s: {}",
                START_TIMEOUT.as_secs(),
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` on the admin listener: status and body.
    pub fn admin_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(SocketAddr::from((self.ip, self.admin)), path)
    }

    /// Writes the CA clients must trust to [`Lab::ca`].
    pub fn export_ca(&self) {
        let out = self.cli(&["ca", "export"], None);
        assert!(out.status.success(), "ca export: {}", text(&out));
        std::fs::write(&self.ca, &out.stdout).expect("writing the CA");
    }

    /// The data directory (with PostgreSQL: unused but set).
    pub fn data_dir(&self) -> String {
        self.data_dir.to_str().unwrap().to_string()
    }

    /// `--database URL` or `--data-dir DIR`: where this lab's store is, for `lyncd` commands.
    pub fn store_args(&self) -> Vec<String> {
        match &self.database {
            Some(url) => vec!["--database".into(), url.clone()],
            None => vec!["--data-dir".into(), self.data_dir()],
        }
    }

    /// The SQLite file of a lab without a database URL.
    pub fn sqlite_file(&self) -> PathBuf {
        self.data_dir.join("lyncd.db")
    }

    pub fn database_url(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// `lyncd ARGS <store args>` against this lab's store.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let store = self.store_args();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(store.iter().map(String::as_str));
        lyncd(&all, stdin)
    }

    pub fn add_user(&self, address: &str, password: &str) {
        let out = self.cli(
            &["user", "add", address, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
        assert!(out.status.success(), "user add {address}: {}", text(&out));
    }

    /// `lyncd user list --json`: one object per user.
    pub fn users(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["user", "list", "--json"], None);
        assert!(out.status.success(), "user list: {}", text(&out));
        json_lines(&out.stdout)
    }

    /// `lyncd registrations --json`: one object per unexpired registration.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["registrations", "--json"], None);
        assert!(out.status.success(), "registrations: {}", text(&out));
        json_lines(&out.stdout)
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The arguments that point `lyncd signin` at this lab (its DNS server).
    pub fn signin_args(&self) -> Vec<String> {
        self.signin_args_for(USER)
    }

    pub fn signin_args_for(&self, user: &str) -> Vec<String> {
        vec![
            "signin".into(),
            user.into(),
            "--password-stdin".into(),
            "--dns".into(),
            format!("{}:{}", self.ip, self.dns),
            "--discover-ports".into(),
            format!("{},{}", self.https, self.http),
            "--ca-file".into(),
            self.ca.to_str().unwrap().into(),
            "--no-cert-cache".into(),
            "--timeout".into(),
            self.signin_timeout.to_string(),
        ]
    }

    /// `lyncd signin --json` with extra arguments and a password; the document and the exit
    /// code.
    pub fn signin_json(&self, extra: &[&str], password: &str) -> (serde_json::Value, i32, Output) {
        self.signin_json_as(USER, extra, password)
    }

    pub fn signin_json_as(
        &self,
        user: &str,
        extra: &[&str],
        password: &str,
    ) -> (serde_json::Value, i32, Output) {
        let mut args = self.signin_args_for(user);
        args.push("--json".into());
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lyncd(&argv, Some(&format!("{password}\n")));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "signin --json did not print one JSON document ({e}): {}\n--- server log ---\n{}",
                text(&out),
                self.server_log()
            )
        });
        (doc, out.status.code().unwrap_or(-1), out)
    }

    /// `lyncd signin --json --stay SECS`: returns once the document is printed, with the
    /// client still connected (its registration held) until the [`Staying`] is dropped.
    pub fn signin_staying(
        &self,
        user: &str,
        password: &str,
        extra: &[&str],
        secs: u64,
    ) -> Result<Staying, String> {
        let mut args = self.staying_args(user, secs);
        args.extend(extra.iter().map(|s| s.to_string()));
        Staying::spawn(&args, password)
    }

    /// The arguments of [`signin_staying`](Self::signin_staying), for [`Staying::spawn`] on
    /// another thread.
    pub fn staying_args(&self, user: &str, secs: u64) -> Vec<String> {
        let mut args = self.signin_args_for(user);
        args.extend(["--json".into(), "--stay".into(), secs.to_string()]);
        args
    }

    /// `lyncd signin` with the table on stdout.
    pub fn signin_table(&self, extra: &[&str], password: &str) -> Output {
        let mut args = self.signin_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        lyncd(&argv, Some(&format!("{password}\n")))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `lyncd signin --json --stay N` whose document has been read; the process (and its SIP
/// connection) lives until this is dropped.
pub struct Staying {
    child: Arc<Mutex<Child>>,
    _pipes: (BufReader<ChildStdout>, Option<ChildStderr>),
    pub doc: serde_json::Value,
}

impl Staying {
    /// Runs `lyncd ARGV` (a `signin … --json --stay N`) with `password` on stdin, until it
    /// printed its document. `Err` when it printed none (e.g. it was killed).
    pub fn spawn(argv: &[String], password: &str) -> Result<Staying, String> {
        Self::spawn_watched(argv, password, |_| {})
    }

    /// [`spawn`](Self::spawn), handing the process to `started` before waiting for its
    /// document, e.g. to kill it from another thread meanwhile.
    pub fn spawn_watched(
        argv: &[String],
        password: &str,
        started: impl FnOnce(Arc<Mutex<Child>>),
    ) -> Result<Staying, String> {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut child = lyncd_command(&argv)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning lyncd signin: {e}"))?;
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(format!("{password}\n").as_bytes());
        drop(input);
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = child.stderr.take();
        let child = Arc::new(Mutex::new(child));
        started(child.clone());
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        match serde_json::from_str(&line) {
            Ok(doc) => Ok(Staying {
                child,
                _pipes: (stdout, stderr),
                doc,
            }),
            Err(e) => {
                let status = {
                    let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = child.kill();
                    child.wait()
                };
                let mut err = String::new();
                if let Some(mut s) = stderr {
                    let _ = s.read_to_string(&mut err);
                }
                Err(format!(
                    "no JSON document ({e}; read: {read:?}; exit: {status:?}): {line}{err}"
                ))
            }
        }
    }

    /// Ends the client (SIGKILL): its connection closes.
    pub fn end(self) {}
}

impl Drop for Staying {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A minimal HTTP/1.0 GET (the admin listener is plain HTTP): status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {raw:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// One JSON value per non-empty line.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The failing step and diagnosis of a sign-in document, with context for assertion messages.
pub fn failure(doc: &serde_json::Value) -> (String, String) {
    (
        doc["failure"]["step"].as_str().unwrap_or("").to_string(),
        doc["failure"]["kind"].as_str().unwrap_or("").to_string(),
    )
}

/// Every finding code of the run.
pub fn finding_codes(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The decoded ms-diagnostics codes of the failure.
pub fn diagnostic_codes(doc: &serde_json::Value) -> Vec<u64> {
    doc["failure"]["diagnostics"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["code"].as_u64()).collect())
        .unwrap_or_default()
}
