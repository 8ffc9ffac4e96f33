//! A lab deployment for end-to-end tests: `lyncd serve` as a separate process on loopback
//! ports with its own DNS zone, one user, and optional injected faults; `lyncd signin` run
//! against it as a user would run it.
#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "alice@contoso.com";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Lab {
    pub dir: tempfile::TempDir,
    child: Child,
    pub https: u16,
    pub http: u16,
    pub sip: u16,
    pub dns: u16,
    pub ca: PathBuf,
    pub log: PathBuf,
}

pub fn lyncd(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lyncd"))
        .args(args)
        .env_remove("LYNCD_PASSWORD")
        .env_remove("LYNCD_DATA_DIR")
        .env_remove("SSLKEYLOGFILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning lyncd");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        let _ = input.write_all(s.as_bytes());
    }
    drop(input);
    child.wait_with_output().expect("waiting for lyncd")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Lab {
    /// Starts a deployment for contoso.com with user alice; `extra` is appended to the
    /// configuration (e.g. a `[faults]` section).
    pub fn start(extra: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf-8 path").to_string();
        let out = lyncd(
            &["user", "add", USER, "--password-stdin", "--data-dir", &d],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "user add: {}", text(&out));
        let (https, http, sip, dns) = (free_port(), free_port(), free_port(), free_port());
        let config = format!(
            r#"
[names]
web = "lyncweb.contoso.com"
pool = "lyncfe.contoso.com"
idp = "login.contoso.com"

[listen]
https = "127.0.0.1:{https}"
http = "127.0.0.1:{http}"
sip_tls = "127.0.0.1:{sip}"

[dns]
listen = "127.0.0.1:{dns}"

{extra}
"#
        );
        let cfg = dir.path().join("lyncd.toml");
        std::fs::write(&cfg, config).expect("writing the config");
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_lyncd"))
            .args(["serve", "--config", cfg.to_str().unwrap(), "--data-dir", &d])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawning lyncd serve");
        let mut lab = Lab {
            ca: dir.path().join("ca.pem"),
            dir,
            child,
            https,
            http,
            sip,
            dns,
            log,
        };
        lab.wait_until_serving();
        let out = lyncd(&["ca", "export", "--data-dir", &d], None);
        assert!(out.status.success(), "ca export: {}", text(&out));
        std::fs::write(&lab.ca, &out.stdout).expect("writing the CA");
        lab
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("lyncd serve exited with {status}: {}", self.server_log());
            }
            let up = |p: u16| TcpStream::connect((Ipv4Addr::LOCALHOST, p)).is_ok();
            if up(self.http) && up(self.sip) && up(self.https) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lyncd serve did not start: {}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn data_dir(&self) -> String {
        self.dir.path().to_str().unwrap().to_string()
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The arguments that point `lyncd signin` at this lab.
    pub fn signin_args(&self) -> Vec<String> {
        vec![
            "signin".into(),
            USER.into(),
            "--password-stdin".into(),
            "--dns".into(),
            format!("127.0.0.1:{}", self.dns),
            "--discover-ports".into(),
            format!("{},{}", self.https, self.http),
            "--ca-file".into(),
            self.ca.to_str().unwrap().into(),
            "--no-cert-cache".into(),
            "--timeout".into(),
            "5".into(),
        ]
    }

    /// `lyncd signin --json` with extra arguments and a password; the document and the exit
    /// code.
    pub fn signin_json(&self, extra: &[&str], password: &str) -> (serde_json::Value, i32, Output) {
        let mut args = self.signin_args();
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
