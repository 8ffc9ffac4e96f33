//! `lyncd demo`: every service on loopback with built-in defaults, a tenant and a user in a
//! throw-away data directory, and a full sign-in shown step by step: the web half, Certificate
//! Provisioning, the TLS-DSK handshake, the signed REGISTER, one signed refresh and sign-out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lyncd_client::{Checks, Discovery, SignInConfig};
use lyncd_core::{Entropy, OsEntropy, Secret, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, ServerConfig, SystemClock};
use lyncd_store::NewUser;

use crate::cli::{ColorChoice, DemoArgs};
use crate::signin::exec::{Executor, ExecutorOptions};
use crate::signin::record::Recorder;
use crate::signin::{render, report, walk};

const DOMAIN: &str = "contoso.com";
const USER: &str = "alice@contoso.com";

/// The demo's private world: these names resolve to loopback, nothing else resolves.
const NAMES: [&str; 5] = [
    "lyncdiscoverinternal.contoso.com",
    "lyncdiscover.contoso.com",
    "lyncweb.contoso.com",
    "lyncfe.contoso.com",
    "login.contoso.com",
];

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("lyncd-demo-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let say = |s: &str| {
        if !args.json {
            println!("{s}");
        }
    };
    say(&format!(
        "lyncd demo: data in {} (removed at exit)",
        dir.path().display()
    ));

    // Loopback ports chosen by the OS; the URLs lyncd publishes carry them.
    let https = free_port()?;
    let http = free_port()?;
    let sip = free_port()?;
    let mut config = ServerConfig::default();
    config.names.web = "lyncweb.contoso.com".into();
    config.names.pool = "lyncfe.contoso.com".into();
    config.names.idp = "login.contoso.com".into();
    config.listen.https = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), https);
    config.listen.http = Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), http));
    config.listen.sip_tls = Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), sip));

    let database = crate::cli::Database::Dir(dir.path().to_path_buf());
    let store = database
        .open()
        .await
        .map_err(|e| anyhow::anyhow!(database.open_error(&e)))?;
    let password = random_password();
    let address = SipAddress::parse(USER).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut salt = [0u8; 16];
    OsEntropy.fill(&mut salt);
    let hash = {
        let pw = password.expose().clone();
        tokio::task::spawn_blocking(move || lyncd_store::password::hash_password(&pw, &salt))
            .await??
    };
    store
        .add_user(
            NewUser {
                address: address.clone(),
                password_hash: hash,
                display_name: Some("Alice (demo)".into()),
                object_id: crate::signin::endpoint_id(),
            },
            UtcTime::now_utc(),
        )
        .await?;
    say(&format!(
        "tenant {DOMAIN} and user {USER} created (random password)"
    ));

    let keys = ServiceKeys::load_or_create(&store, UtcTime::now_utc(), &mut OsEntropy).await?;
    let ca_pem = keys.ca.cert_pem().as_bytes().to_vec();
    let app = Arc::new(App::new(config, store, keys, Arc::new(SystemClock)));
    let running = lyncd_server::start(app).await?;
    say(&format!(
        "servers on 127.0.0.1: https {}, http {}, sip-tls {}\n",
        running.https.port(),
        running.http.map(|a| a.port()).unwrap_or(0),
        running.sip_tls.map(|a| a.port()).unwrap_or(0)
    ));

    let overrides: HashMap<String, IpAddr> = NAMES
        .iter()
        .map(|n| (n.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .collect();
    let executor = Executor::new(ExecutorOptions {
        ca_pem: Some(ca_pem.clone()),
        overrides,
        overrides_only: true,
        timeout: Duration::from_secs(20),
        dns_server: None,
        keylog: false,
        recorder: Arc::new(Recorder::new(0, false)),
    })?;
    let mut config = SignInConfig::new(
        address,
        password,
        Discovery::Dns {
            https_port: https,
            http_port: http,
        },
        crate::signin::endpoint_id(),
    );
    // The registrar's inner TLS-DSK certificate comes from the same CA: verify it too.
    config.sip_server_ca = Some(String::from_utf8_lossy(&ca_pem).into_owned());
    config.refresh = true;
    config.sign_out = true;
    // The troubleshooter's TLS and clock checks run too (the demo's world has no SIP SRV
    // records, so that check would only warn about the demo itself).
    config.checks = Checks {
        tls: true,
        sip_dns: false,
        clock: true,
    };
    let started = UtcTime::now_utc();
    let style = render::Style::detect(ColorChoice::Auto);
    let walked = walk(&executor, config, (!args.json).then_some(&style)).await;
    drop(executor);
    running.shutdown().await;

    // Signed in means: the registrar's signed 200 OK verified, the refresh verified, and (as
    // asked) the signed sign-out.
    let signed_in = walked
        .signin
        .outcome()
        .and_then(|o| o.signed_in())
        .is_some_and(|s| s.refreshed && s.signed_out);
    let ok = walked.ok && signed_in && walked.steps.iter().all(|s| s.ok);
    if let Some(path) = &args.report {
        let address = SipAddress::parse(USER).map_err(|e| anyhow::anyhow!("{e}"))?;
        let page = report::page(&address, started, &walked, true);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        say(&format!("report written to {}", path.display()));
    }
    if args.json {
        let mut doc = render::document(ok, &walked.steps, walked.signin.outcome(), walked.total_ms);
        // The demo's contract is the short form: step, ok, ms, detail.
        if let Some(steps) = doc["steps"].as_array_mut() {
            for s in steps {
                if let Some(o) = s.as_object_mut() {
                    o.retain(|k, _| matches!(k.as_str(), "step" | "ok" | "ms" | "detail"));
                }
            }
        }
        println!("{doc}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(render::exit_code(walked.signin.outcome()).max(1))
    })
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

fn random_password() -> Secret<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%&";
    let bytes: [u8; 20] = OsEntropy.bytes();
    Secret::new(
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect(),
    )
}
