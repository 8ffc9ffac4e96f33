//! The command-line contract other tools and later milestones rely on.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn lyncd(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lyncd"))
        .args(args)
        .env_remove("LYNCD_PASSWORD")
        .env_remove("LYNCD_DATA_DIR")
        .env_remove("LYNCD_DATABASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_json_walks_the_whole_sign_in() {
    let out = lyncd(&["demo", "--json"], None);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for expected in [
        "dns",
        "lyncdiscover",
        "autodiscover-challenge",
        "web-ticket-mex",
        "idp-realm",
        "idp-token",
        "web-ticket",
        "autodiscover-user",
        "sip-register",
        "certprov-mex",
        "certprov-idp-token",
        "certprov-web-ticket",
        "certprov-key",
        "certprov",
        "tls-dsk-hello",
        "tls-dsk-finish",
        "sip-register-signed",
        "sip-refresh",
        "sip-sign-out",
    ] {
        assert!(
            steps.contains(&expected),
            "missing step {expected} in {steps:?}"
        );
    }
    // The SIP half runs in protocol order, after the web half.
    let at = |name: &str| steps.iter().position(|s| *s == name).unwrap();
    assert!(at("autodiscover-user") < at("sip-register"));
    assert!(at("sip-register") < at("certprov-mex"));
    assert!(at("certprov") < at("tls-dsk-hello"));
    assert!(at("tls-dsk-hello") < at("tls-dsk-finish"));
    assert!(at("tls-dsk-finish") < at("sip-register-signed"));
    assert!(at("sip-register-signed") < at("sip-refresh"));
    assert!(at("sip-refresh") < at("sip-sign-out"));
    let signed = &doc["steps"][at("sip-register-signed")]["detail"];
    assert!(
        signed.as_str().unwrap().contains("rspauth verified"),
        "{signed}"
    );
    assert_eq!(doc["sip"]["refreshed"], true);
    assert_eq!(doc["sip"]["signed_out"], true);
    assert!(doc["sip"]["gruu"].as_str().unwrap().ends_with(";gruu"));
    for s in doc["steps"].as_array().unwrap() {
        assert_eq!(s["ok"], true);
        assert!(s["ms"].is_number() && s["detail"].is_string());
        assert_eq!(
            s.as_object().unwrap().len(),
            4,
            "the demo's steps carry exactly step, ok, ms, detail"
        );
    }
}

#[test]
fn users_are_added_listed_disabled_and_never_take_a_password_from_argv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = lyncd(
        &[
            "user",
            "add",
            "alice@contoso.com",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("s3cret\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("tenant contoso.com created"));

    let again = lyncd(
        &[
            "user",
            "add",
            "Alice@Contoso.com",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("x\n"),
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    // no terminal, no --password-stdin, no LYNCD_PASSWORD: refused, nothing added
    let none = lyncd(&["user", "add", "carol@contoso.com", "--data-dir", d], None);
    assert!(!none.status.success());
    assert!(text(&none).contains("no password"), "{}", text(&none));
    // there is no flag that takes a password
    let argv = lyncd(
        &[
            "user",
            "add",
            "dave@contoso.com",
            "--password",
            "pw",
            "--data-dir",
            d,
        ],
        None,
    );
    assert!(!argv.status.success());

    let bad = lyncd(
        &[
            "user",
            "add",
            "not-an-address",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("x\n"),
    );
    assert!(!bad.status.success());
    assert!(text(&bad).contains("@"), "{}", text(&bad));

    let list = lyncd(&["user", "list", "--json", "--data-dir", d], None);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(&list));
    assert_eq!(lines[0]["address"], "alice@contoso.com");
    assert_eq!(lines[0]["enabled"], true);

    assert!(
        lyncd(
            &["user", "disable", "alice@contoso.com", "--data-dir", d],
            None
        )
        .status
        .success()
    );
    let list = lyncd(&["user", "list", "--data-dir", d], None);
    assert!(text(&list).contains("disabled"), "{}", text(&list));
    let unknown = lyncd(
        &["user", "disable", "zed@contoso.com", "--data-dir", d],
        None,
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("no user zed@contoso.com"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn ca_export_prints_one_stable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let a = lyncd(&["ca", "export", "--data-dir", d], None);
    let b = lyncd(&["ca", "export", "--data-dir", d], None);
    assert!(a.status.success(), "{}", text(&a));
    let pem = String::from_utf8(a.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(!pem.contains("PRIVATE KEY"));
    assert_eq!(
        pem,
        String::from_utf8(b.stdout).unwrap(),
        "the CA is created once, then kept"
    );
}

#[test]
fn signin_reports_where_it_failed_with_a_stage_exit_code() {
    // nothing listens on this port: the discovery step fails and says so
    let out = lyncd(
        &[
            "signin",
            "alice@contoso.com",
            "--password-stdin",
            "--json",
            "--server",
            "127.0.0.1:1",
            "--timeout",
            "3",
        ],
        Some("pw\n"),
    );
    assert_eq!(out.status.code(), Some(11), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["failure"]["step"], "lyncdiscover");
    assert!(
        doc["failure"]["next_check"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        !text(&out).contains("pw\n") && !String::from_utf8_lossy(&out.stdout).contains("\"pw\"")
    );
}

/// A `--dns` server that never answers is waited for once: every later name fails at once,
/// saying why, instead of each waiting out the timeouts again.
#[test]
fn a_silent_dns_server_is_asked_only_until_it_first_fails_to_answer() {
    // Bound but never read (UDP) and never accepted (TCP): queries go unanswered.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let _tcp = std::net::TcpListener::bind(("127.0.0.1", port)).ok();
    let dns = format!("127.0.0.1:{port}");
    let out = lyncd(
        &[
            "signin",
            "alice@contoso.com",
            "--password-stdin",
            "--json",
            "--dns",
            &dns,
            "--timeout",
            "1",
            "--no-checks",
        ],
        Some("pw\n"),
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(doc["ok"], false, "{doc}");
    let json = doc.to_string();
    let not_asked = format!("not asked: the DNS server {dns} did not answer an earlier query");
    assert!(json.contains(&not_asked), "{json}");
    drop(udp);
}

#[test]
fn signin_help_documents_the_sip_stage_exit_codes() {
    let out = lyncd(&["signin", "--help"], None);
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "20  sip-register",
        "25  certprov",
        "28  sip-register-signed",
        "30  sip-sign-out",
    ] {
        assert!(help.contains(line), "missing {line:?} in:\n{help}");
    }
    for flag in [
        "--no-cert-cache",
        "--tls-dsk-ca",
        "--sign-out",
        "--web-only",
    ] {
        assert!(help.contains(flag), "missing {flag}");
    }
}

#[test]
fn user_set_switches_sip_and_remote_access_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let add = lyncd(
        &[
            "user",
            "add",
            "bob@contoso.com",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("s3cret\n"),
    );
    assert!(add.status.success(), "{}", text(&add));
    let list_json = || -> serde_json::Value {
        let out = lyncd(&["user", "list", "--json", "--data-dir", d], None);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap()
    };
    let fresh = list_json();
    assert_eq!(fresh["sip_enabled"], true);
    assert_eq!(fresh["remote_access"], true);

    let set = lyncd(
        &[
            "user",
            "set",
            "Bob@Contoso.com",
            "--remote-access",
            "off",
            "--data-dir",
            d,
        ],
        None,
    );
    assert!(set.status.success(), "{}", text(&set));
    assert!(
        text(&set).contains("sip on, remote access off"),
        "{}",
        text(&set)
    );
    let after = list_json();
    assert_eq!(after["sip_enabled"], true);
    assert_eq!(after["remote_access"], false);

    let set = lyncd(
        &[
            "user",
            "set",
            "bob@contoso.com",
            "--sip",
            "off",
            "--remote-access",
            "on",
            "--data-dir",
            d,
        ],
        None,
    );
    assert!(set.status.success(), "{}", text(&set));
    let table = lyncd(&["user", "list", "--data-dir", d], None);
    let table = text(&table);
    assert!(table.contains("SIP") && table.contains("REMOTE"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("bob@contoso.com"))
        .unwrap();
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[1..4], ["enabled", "off", "on"], "{row}");

    // Bad input: usage errors (exit 2) or an unknown user, and nothing changes.
    let before = list_json();
    for bad in [
        vec!["user", "set", "bob@contoso.com"],
        vec!["user", "set", "bob@contoso.com", "--sip", "maybe"],
        vec!["user", "set", "bob@contoso.com", "--sip"],
        vec!["user", "set", "not-an-address", "--sip", "on"],
    ] {
        let mut args = bad.clone();
        args.extend(["--data-dir", d]);
        let out = lyncd(&args, None);
        assert!(!out.status.success(), "{bad:?} must fail");
        assert!(!text(&out).trim().is_empty(), "{bad:?} says why");
    }
    let none = lyncd(&["user", "set", "bob@contoso.com", "--data-dir", d], None);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(text(&none).contains("--sip"), "{}", text(&none));
    let unknown = lyncd(
        &[
            "user",
            "set",
            "zed@contoso.com",
            "--sip",
            "off",
            "--data-dir",
            d,
        ],
        None,
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("no user zed@contoso.com"),
        "{}",
        text(&unknown)
    );
    assert_eq!(list_json(), before);
}

#[test]
fn migrate_prints_the_schema_version_and_database_picks_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = lyncd(&["migrate", "--data-dir", d], None);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let version: i64 = stdout
        .strip_prefix("schema version ")
        .and_then(|s| s.strip_suffix(" (sqlite)\n"))
        .unwrap_or_else(|| panic!("{stdout:?}"))
        .parse()
        .unwrap();
    assert!(version >= 4, "{stdout}");
    // Nothing left to apply: the same answer.
    let again = lyncd(&["migrate", "--data-dir", d], None);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);

    // --database names the same file by URL: the user added through one is seen through the
    // other, and --database wins over --data-dir.
    let added = lyncd(
        &[
            "user",
            "add",
            "alice@contoso.com",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("s3cret\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    let url = format!("sqlite://{d}/lyncd.db");
    let other = tempfile::tempdir().unwrap();
    let listed = lyncd(
        &[
            "user",
            "list",
            "--json",
            "--database",
            &url,
            "--data-dir",
            other.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        text(&listed).contains("alice@contoso.com"),
        "{}",
        text(&listed)
    );

    let regs = lyncd(&["registrations", "--database", &url], None);
    assert!(regs.status.success(), "{}", text(&regs));
    assert_eq!(
        String::from_utf8(regs.stdout).unwrap(),
        "no registrations\n"
    );
    let regs = lyncd(
        &[
            "registrations",
            "alice@contoso.com",
            "--json",
            "--database",
            &url,
        ],
        None,
    );
    assert!(regs.status.success(), "{}", text(&regs));
    assert!(regs.stdout.is_empty(), "{}", text(&regs));
    let bad = lyncd(
        &["registrations", "not an address", "--database", &url],
        None,
    );
    assert!(!bad.status.success());

    let wrong = lyncd(
        &["migrate", "--database", "mysql://root:hunter2@db/x"],
        None,
    );
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("postgres://"), "{}", text(&wrong));
    assert!(!text(&wrong).contains("hunter2"), "{}", text(&wrong));
}

/// `lyncd serve` against a PostgreSQL URL where nothing listens (port 1), with a password.
fn serve_unreachable(wait: &str) -> (Output, std::time::Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = lyncd(
        &[
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database",
            "postgres://postgres:Hunter2Secret@127.0.0.1:1/x",
            "--database-wait",
            wait,
        ],
        None,
    );
    (out, started.elapsed())
}

#[test]
fn serve_fails_at_once_without_the_database_and_never_shows_its_password() {
    let (out, took) = serve_unreachable("0");
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        took < std::time::Duration::from_secs(15),
        "took {took:?}: {all}"
    );
    assert!(
        all.contains("postgres://postgres:***@127.0.0.1:1/x"),
        "{all}"
    );
    assert!(!all.contains("Hunter2Secret"), "{all}");
    assert!(!all.contains("retrying in"), "{all}");
}

#[test]
fn serve_retries_the_database_until_database_wait_runs_out() {
    let (out, took) = serve_unreachable("3");
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    let retries = all.lines().filter(|l| l.contains("retrying in")).count();
    assert!(retries >= 2, "{retries} retries in {took:?}: {all}");
    assert!(all.contains("127.0.0.1:1"), "{all}");
    assert!(!all.contains("Hunter2Secret"), "{all}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "took {took:?}: {all}"
    );
}

#[test]
fn help_never_shows_the_database_url_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_lyncd"))
        .args(["serve", "--help"])
        .env("LYNCD_DATABASE", "postgres://lyncd:Hunter2Secret@db/lyncd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = text(&out);
    assert!(help.contains("--database <URL>"), "{help}");
    assert!(help.contains("--database-wait <SECS>"), "{help}");
    assert!(!help.contains("Hunter2Secret"), "{help}");
}
