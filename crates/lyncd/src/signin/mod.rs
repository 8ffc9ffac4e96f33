//! `lyncd signin`: walk the sign-in against any deployment and say what happened at each step.

pub mod cache;
pub mod dns;
pub mod exec;
pub mod probe;
pub mod record;
pub mod render;
pub mod report;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lyncd_client::{Checks, Discovery, Outcome, SignIn, SignInConfig};
use lyncd_core::{OsEntropy, SipAddress, UtcTime};

use crate::cli::SigninArgs;
use exec::{Executor, ExecutorOptions};
use record::Recorder;

pub async fn run(args: SigninArgs, verbosity: u8) -> anyhow::Result<ExitCode> {
    let address = SipAddress::parse(&args.address).map_err(|e| anyhow::anyhow!("{e}"))?;
    let discovery = match &args.server {
        Some(s) => {
            let (host, port) = split_host_port(s, 443)?;
            Discovery::Server { host, port }
        }
        None => {
            let (https, http) = args
                .discover_ports
                .split_once(',')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .context("--discover-ports takes HTTPS,HTTP port numbers")?;
            Discovery::Dns {
                https_port: https,
                http_port: http,
            }
        }
    };
    let mut overrides = HashMap::new();
    for r in &args.resolve {
        let (host, ip) = parse_resolve(r)?;
        overrides.insert(host, ip);
    }
    let dns_server = args.dns.as_deref().map(parse_dns_server).transpose()?;
    let ca_pem = match &args.ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    for path in [&args.trace, &args.report].into_iter().flatten() {
        check_writable(path)?;
    }
    // Usage is settled: now, and only now, ask for the password (once: no retry that could
    // lock the account).
    let password = crate::password::read(
        args.password_stdin,
        &format!("Password for {address}: "),
        false,
    )?;
    if args.show_secrets {
        eprintln!(
            "lyncd: --show-secrets: passwords, tickets and tokens appear unmasked in the output, \
             the trace and the report; do not share them"
        );
    }
    let keylog = std::env::var_os("SSLKEYLOGFILE").is_some_and(|v| !v.is_empty());
    if keylog {
        eprintln!(
            "lyncd: SSLKEYLOGFILE is set: TLS session keys are appended to it (anyone with that \
             file can decrypt this run's traffic)"
        );
    }
    let recorder = Arc::new(Recorder::new(verbosity, args.show_secrets));
    let executor = Executor::new(ExecutorOptions {
        ca_pem,
        overrides,
        overrides_only: false,
        timeout: Duration::from_secs(args.timeout.max(1)),
        dns_server,
        keylog,
        recorder: recorder.clone(),
    })?;
    let cache = if args.no_cert_cache {
        None
    } else {
        args.cert_cache
            .clone()
            .or_else(cache::CertCache::default_dir)
            .map(cache::CertCache::new)
    };
    let tls_dsk_ca = match &args.tls_dsk_ca {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let mut config = SignInConfig::new(address.clone(), password, discovery, endpoint_id());
    config.login = args.login.clone();
    config.sip = !args.web_only;
    config.certificates = cache.as_ref().map(|c| c.load(&address)).unwrap_or_default();
    config.sip_server_ca = tls_dsk_ca;
    config.refresh = !args.no_refresh;
    config.sign_out = args.sign_out;
    config.ucwa = args.ucwa;
    if !args.no_checks {
        config.checks = Checks::all();
    }
    let style = render::Style::detect(args.color);
    let started = UtcTime::now_utc();
    let result = walk(&executor, config, (!args.json).then_some(&style)).await;
    if let (Some(cache), Some(Outcome::SignedIn(s))) = (&cache, result.signin.outcome())
        && !s.certificate_from_cache
    {
        match cache.store(
            &address,
            &s.targetname,
            &s.certificate.cert_pem,
            &s.certificate.key_pem,
        ) {
            Ok(path) if !args.json => println!("certificate cached in {}", path.display()),
            Ok(_) => {}
            Err(e) => eprintln!("lyncd: the certificate could not be cached: {e:#}"),
        }
    }
    let doc = render::document(
        result.ok,
        &result.steps,
        result.signin.outcome(),
        result.total_ms,
    );
    let doc = render::versioned(doc, &address, started, &result.steps);
    if let Some(path) = &args.trace {
        let recorded = recorder.take();
        let har = lyncd_diag::har::build(&lyncd_diag::har::TraceInput {
            creator_version: env!("CARGO_PKG_VERSION"),
            http: &recorded.http,
            sip: &recorded.sip,
            dns: &recorded.dns,
            show_secrets: args.show_secrets,
            summary: doc.clone(),
        });
        write_private(path, serde_json::to_string_pretty(&har)?.as_bytes())?;
        if !args.json {
            println!("trace written to {}", path.display());
        }
    }
    if let Some(path) = &args.report {
        let page = report::page(&address, started, &result, !args.show_secrets);
        write_private(path, page.as_bytes())?;
        if !args.json {
            println!("report written to {}", path.display());
        }
    }
    if args.json {
        println!("{doc}");
    }
    if let (Some(secs), Some(Outcome::SignedIn(_))) = (args.stay, result.signin.outcome()) {
        if !args.json {
            println!("staying signed in for {secs} s (no sign-out at the end)");
        }
        // The result is out before the wait, for whoever reads it meanwhile.
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        if !executor.hold_sip(Duration::from_secs(secs)).await {
            eprintln!("lyncd: the registrar closed the SIP connection; no longer signed in");
        }
    }
    Ok(ExitCode::from(render::exit_code(result.signin.outcome())))
}

pub struct Walked {
    pub signin: SignIn,
    pub steps: Vec<lyncd_client::TraceEvent>,
    pub ok: bool,
    pub total_ms: u64,
}

/// Runs a sign-in; with a style, prints the table on stdout as steps complete (and the step
/// in flight on stderr when that is a terminal).
pub async fn walk(
    executor: &Executor,
    config: SignInConfig,
    table: Option<&render::Style>,
) -> Walked {
    let started = Instant::now();
    let mut signin = SignIn::new(config, UtcTime::now_utc());
    let mut steps = Vec::new();
    let progress = table.is_some() && std::io::stderr().is_terminal();
    if let Some(style) = table {
        println!("{}", render::header(style));
    }
    executor
        .drive(&mut signin, progress, |ev| {
            steps.push(ev.clone());
            if let Some(style) = table {
                println!("{}", render::step_line(style, steps.len(), ev));
            }
        })
        .await;
    let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ok = matches!(
        signin.outcome(),
        Some(Outcome::Discovered(_) | Outcome::SignedIn(_))
    );
    if let Some(style) = table {
        println!(
            "\n{}",
            render::outcome_text(style, signin.outcome(), total_ms)
        );
    }
    Walked {
        signin,
        steps,
        ok,
        total_ms,
    }
}

/// `IP` or `IP:PORT` (`[v6]:PORT`), port 53 by default.
fn parse_dns_server(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = s
        .trim_matches(['[', ']'])
        .parse()
        .with_context(|| format!("--dns takes IP[:PORT], got {s:?}"))?;
    Ok(SocketAddr::new(ip, 53))
}

/// Fails before the sign-in (and before the password is used) if an output file cannot be
/// written: the run is one credential attempt, so it must not be wasted.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::ensure!(
        dir.is_dir(),
        "cannot write {}: {} is not a directory",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// Trace and report files may hold evidence about the user: readable by the owner only.
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// A random endpoint id per run (the Context / DeviceId a client sends).
pub fn endpoint_id() -> String {
    use lyncd_core::Entropy;
    uuid::Uuid::from_bytes(OsEntropy.bytes::<16>())
        .hyphenated()
        .to_string()
}

fn split_host_port(s: &str, default: u16) -> anyhow::Result<(String, u16)> {
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            p.parse().with_context(|| format!("bad port in {s:?}"))?,
        )),
        _ => Ok((s.to_string(), default)),
    }
}

/// `HOST:PORT:ADDR` (curl's form) or `HOST:ADDR`. The mapping applies to HOST on every port.
fn parse_resolve(s: &str) -> anyhow::Result<(String, IpAddr)> {
    let mut parts = s.splitn(3, ':');
    let host = parts.next().unwrap_or_default();
    let (second, third) = (parts.next(), parts.next());
    let addr = match (second, third) {
        (Some(port), Some(addr)) if port.parse::<u16>().is_ok() => addr,
        (Some(addr), None) => addr,
        _ => bail!("--resolve takes HOST:PORT:ADDR, got {s:?}"),
    };
    let ip: IpAddr = addr
        .trim_matches(['[', ']'])
        .parse()
        .with_context(|| format!("--resolve {s:?}: {addr:?} is not an IP address"))?;
    anyhow::ensure!(!host.is_empty(), "--resolve {s:?}: no host name");
    Ok((host.to_ascii_lowercase(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_forms() {
        assert_eq!(
            parse_resolve("LyncWeb.contoso.com:443:127.0.0.1").unwrap(),
            ("lyncweb.contoso.com".into(), "127.0.0.1".parse().unwrap())
        );
        assert!(parse_resolve("h.example:x:y:z").is_err());
        assert_eq!(
            parse_resolve("h.example:443:[::1]").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_resolve("h.example:443:not-an-ip").is_err());
        assert_eq!(
            split_host_port("a.b:4443", 443).unwrap(),
            ("a.b".into(), 4443)
        );
        assert_eq!(split_host_port("a.b", 443).unwrap(), ("a.b".into(), 443));
    }
}
