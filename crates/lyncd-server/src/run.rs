//! Starting and stopping the listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use lyncd_core::OsEntropy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::App;
use crate::dns::{DnsListener, Zones};
use crate::http::{Listener, router};
use crate::tls::{Acceptor, CertResolver, certificate_names};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr} for {what}: permission denied. Ports below 1024 need root or \
         CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep $(which lyncd)), or choose other \
         ports in the [listen] section of the configuration"
    )]
    Privileged {
        addr: SocketAddr,
        what: &'static str,
    },
    #[error("cannot listen on {addr} for {what}: {source} (is another server already using it?)")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("reading the tenant list: {0}")]
    Store(#[from] lyncd_store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Sip(#[from] crate::sip::SipStartError),
    #[error("building the DNS zone: {0}")]
    Dns(#[from] crate::dns::DnsError),
}

/// The running servers. Dropping it does not stop them: call [`Running::shutdown`].
pub struct Running {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub sip_tls: Option<SocketAddr>,
    pub sip_tcp: Option<SocketAddr>,
    /// The DNS server's address (UDP and TCP), when `[dns]` is configured.
    pub dns: Option<SocketAddr>,
    /// The admin listener (`/healthz`, `/readyz`, `/registrations`), when configured.
    pub admin: Option<SocketAddr>,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops gracefully, in the order a load balancer needs (`[shutdown]`): `/readyz` answers
    /// 503 at once; everything is still served for `drain_secs`; then the listeners close, SIP
    /// connections are closed, and HTTP requests in flight get `grace_secs` to finish before
    /// they are cut off. The store stays open: its owner closes it.
    pub async fn shutdown(mut self) {
        let timing = self.app.config.shutdown.clone();
        self.app.health.start_draining();
        if timing.drain_secs > 0 {
            tracing::info!(
                "shutdown: /readyz answers 503 now; still serving for {} s (shutdown.drain_secs) so load balancers stop sending clients",
                timing.drain_secs
            );
            tokio::time::sleep(Duration::from_secs(timing.drain_secs.into())).await;
        } else {
            tracing::info!("shutdown: /readyz answers 503 now");
        }
        tracing::info!(
            "shutdown: listeners closed, SIP connections closing; requests in flight get up to {} s (shutdown.grace_secs)",
            timing.grace_secs
        );
        let _ = self.stop.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        let grace = Duration::from_secs(timing.grace_secs.into());
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                "shutdown: some requests did not finish within {} s and were cut off",
                timing.grace_secs
            );
            self.tasks.abort_all();
        } else {
            tracing::info!("shutdown: every request in flight finished");
        }
    }
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied => StartError::Privileged { addr, what },
            _ => StartError::Bind { addr, what, source },
        })
}

async fn tenant_domains(app: &App) -> Result<Vec<String>, StartError> {
    Ok(app
        .store
        .tenants()
        .await?
        .into_iter()
        .map(|t| t.domain)
        .collect())
}

/// Binds every configured listener and serves until [`Running::shutdown`].
pub async fn start(app: Arc<App>) -> Result<Running, StartError> {
    let cfg = &app.config;
    crate::faults::warn_active(&cfg.faults);
    let https = bind(cfg.listen.https, "HTTPS").await?;
    let http = match cfg.listen.http {
        Some(a) => Some(bind(a, "HTTP (lyncdiscover)").await?),
        None => None,
    };
    let sip = match cfg.listen.sip_tls {
        Some(a) => Some(bind(a, "SIP over TLS").await?),
        None => None,
    };
    let sip_tcp = match cfg.listen.sip_tcp {
        Some(a) => Some(bind(a, "SIP over TCP").await?),
        None => None,
    };
    let dns = match &cfg.dns {
        Some(d) => Some(bind_dns(d.listen).await?),
        None => None,
    };
    let admin = match cfg.listen.admin {
        Some(a) => Some(bind(a, "the admin listener").await?),
        None => None,
    };

    let tenants = tenant_domains(&app).await?;
    let resolver = Arc::new(CertResolver::new(
        &app.keys().ca,
        certificate_names(cfg, &tenants),
        app.now(),
        cfg.faults.https_certificate,
    )?);
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let addrs = (
        https.local_addr().map_err(|source| StartError::Bind {
            addr: cfg.listen.https,
            what: "HTTPS",
            source,
        })?,
        http.as_ref().and_then(|l| l.local_addr().ok()),
        sip.as_ref().and_then(|l| l.local_addr().ok()),
        sip_tcp.as_ref().and_then(|l| l.local_addr().ok()),
        dns.as_ref().and_then(|l| l.local_addr().ok()),
        admin.as_ref().and_then(|l| l.local_addr().ok()),
    );

    let https_front = if cfg.faults.reset_https {
        Front::Reset
    } else {
        Front::Tls(Acceptor::new(resolver.clone(), cfg.faults.https_tls)?)
    };
    tasks.spawn(serve_http(
        https,
        https_front,
        router(app.clone(), Listener::Https),
        stop_rx.clone(),
    ));
    if let Some(l) = http {
        tasks.spawn(serve_http(
            l,
            Front::Plain,
            router(app.clone(), Listener::Http),
            stop_rx.clone(),
        ));
    }
    if let Some(l) = admin {
        tasks.spawn(serve_http(
            l,
            Front::Plain,
            crate::health::admin_router(app.clone()),
            stop_rx.clone(),
        ));
    }
    if sip.is_some() || sip_tcp.is_some() {
        let registrar = crate::sip::SipService::new(app.clone())?;
        if let Some(l) = sip {
            let acceptor = Acceptor::new(resolver.clone(), cfg.faults.sip_tls)?;
            tasks.spawn(registrar.clone().serve(l, Some(acceptor), stop_rx.clone()));
        }
        if let Some(l) = sip_tcp {
            tasks.spawn(registrar.clone().serve(l, None, stop_rx.clone()));
        }
        tasks.spawn(registrar.clone().purge_expired(stop_rx.clone()));
        tasks.spawn(registrar.timers(stop_rx.clone()));
    }
    if let (Some(listener), Some(config)) = (dns, &cfg.dns) {
        // Published SRV records must name the port clients reach, even when the OS picked it.
        let sip_port = cfg
            .public
            .sip_port
            .or(addrs.2.map(|a| a.port()))
            .unwrap_or_else(|| cfg.public_sip_port());
        let zones = Zones::new(cfg, config, &tenants, sip_port)?;
        tasks.spawn(crate::dns::serve(listener, zones.clone(), stop_rx.clone()));
        tasks.spawn(refresh_zones(app.clone(), zones, stop_rx.clone()));
    }
    tasks.spawn(reload_keys(app.clone(), stop_rx.clone()));
    tasks.spawn(refresh_certificate(app.clone(), resolver, stop_rx));
    tracing::info!(https = %addrs.0, http = ?addrs.1, sip_tls = ?addrs.2, sip_tcp = ?addrs.3, dns = ?addrs.4, admin = ?addrs.5, web = %cfg.names.web, node = %cfg.node_name(), database = %app.store.backend(), "lyncd serving");
    Ok(Running {
        https: addrs.0,
        http: addrs.1,
        sip_tls: addrs.2,
        sip_tcp: addrs.3,
        dns: addrs.4,
        admin: addrs.5,
        app: app.clone(),
        stop,
        tasks,
    })
}

async fn bind_dns(addr: SocketAddr) -> Result<DnsListener, StartError> {
    let what = "DNS (UDP and TCP)";
    DnsListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied => StartError::Privileged { addr, what },
            _ => StartError::Bind { addr, what, source },
        })
}

/// New tenants need their discovery records: poll and rebuild the zones.
async fn refresh_zones(app: Arc<App>, zones: Zones, mut stop: watch::Receiver<bool>) {
    let Some(dns) = &app.config.dns else { return };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        let Ok(tenants) = tenant_domains(&app).await else {
            continue;
        };
        if let Err(e) = zones.update(&app.config, dns, &tenants) {
            tracing::error!(error = %e, "dns: could not rebuild the zones");
        }
    }
}

/// Another node (or `lyncd keys rotate`) may add a generation of token keys: poll, and load
/// the keys again when the generations differ from those loaded.
async fn reload_keys(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::keys::RELOAD_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        let stored = match app.store.key_generations().await {
            Ok(g) => g.iter().map(|g| g.generation).collect::<Vec<_>>(),
            Err(e) => {
                tracing::debug!(error = %e, "keys: could not check for new generations");
                continue;
            }
        };
        if stored.is_empty() || stored == app.keys().generation_numbers() {
            continue;
        }
        match crate::keys::ServiceKeys::load_or_create(&app.store, app.now(), &mut OsEntropy).await
        {
            Ok(keys) => {
                tracing::info!(
                    generations = ?keys.generation_numbers(),
                    signing = keys.signing(app.now()).generation,
                    "keys: loaded new token key generations"
                );
                app.set_keys(keys);
            }
            Err(e) => tracing::error!(error = %e, "keys: could not load the new generations"),
        }
    }
}

/// New tenants need `lyncdiscover.<domain>` in the certificate: poll and re-issue.
async fn refresh_certificate(
    app: Arc<App>,
    resolver: Arc<CertResolver>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        let Ok(tenants) = tenant_domains(&app).await else {
            continue;
        };
        let names = certificate_names(&app.config, &tenants);
        match resolver.update(&app.keys().ca, names, app.now()) {
            Ok(true) => tracing::info!("https: certificate re-issued for the current tenants"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "https: could not re-issue the certificate"),
        }
    }
}

/// What stands between an accepted TCP connection and HTTP.
enum Front {
    Plain,
    Tls(Acceptor),
    /// `faults.reset_https`: reset every connection right after accepting it.
    Reset,
}

async fn serve_http(
    listener: TcpListener,
    front: Front,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let service = hyper_util::service::TowerToHyperService::new(router);
    let front = Arc::new(front);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "http: accept failed"); continue; }
            },
            _ = stop.changed() => break,
        };
        let service = service.clone();
        let front = front.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let io: Box<dyn crate::tls::Io> = match &*front {
                Front::Reset => return crate::faults::reset(tcp),
                Front::Plain => Box::new(tcp),
                Front::Tls(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "https: TLS handshake failed");
                        return;
                    }
                },
            };
            let builder =
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "http: connection ended with an error");
            }
        });
    }
    // Closed now, not when the last request is answered: new connections are refused at once,
    // so a load balancer or client goes elsewhere.
    drop(listener);
    graceful.shutdown().await;
}
