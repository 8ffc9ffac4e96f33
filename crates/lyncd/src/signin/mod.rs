//! `lyncd signin`: walk the sign-in against any deployment and say what happened at each step.

pub mod cache;
pub mod exec;
pub mod render;

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lyncd_client::{Discovery, Outcome, SignIn, SignInConfig};
use lyncd_core::{OsEntropy, SipAddress, UtcTime};

use crate::cli::SigninArgs;
use exec::{Executor, ExecutorOptions};

pub async fn run(args: SigninArgs) -> anyhow::Result<ExitCode> {
    let address = SipAddress::parse(&args.address).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = crate::password::read(
        args.password_stdin,
        &format!("Password for {address}: "),
        false,
    )?;
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
    let ca_pem = match &args.ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let executor = Executor::new(ExecutorOptions {
        ca_pem,
        overrides,
        overrides_only: false,
        timeout: Duration::from_secs(args.timeout.max(1)),
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
    let result = walk(&executor, config, !args.json).await;
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
    if args.json {
        println!(
            "{}",
            render::document(
                result.ok,
                &result.steps,
                result.signin.outcome(),
                result.total_ms
            )
        );
    }
    Ok(ExitCode::from(render::exit_code(result.signin.outcome())))
}

pub struct Walked {
    pub signin: SignIn,
    pub steps: Vec<lyncd_client::TraceEvent>,
    pub ok: bool,
    pub total_ms: u64,
}

/// Runs a sign-in, printing each step as it completes when `table` is set.
pub async fn walk(executor: &Executor, config: SignInConfig, table: bool) -> Walked {
    let style = render::Style::detect();
    let started = Instant::now();
    let mut signin = SignIn::new(config, UtcTime::now_utc());
    let mut steps = Vec::new();
    executor
        .drive(&mut signin, |ev| {
            steps.push(ev.clone());
            if table {
                println!("{}", render::step_line(&style, steps.len(), ev));
            }
        })
        .await;
    let total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ok = matches!(
        signin.outcome(),
        Some(Outcome::Discovered(_) | Outcome::SignedIn(_))
    );
    if table {
        println!(
            "\n{}",
            render::outcome_text(&style, signin.outcome(), total_ms)
        );
    }
    Walked {
        signin,
        steps,
        ok,
        total_ms,
    }
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
