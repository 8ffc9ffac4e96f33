use std::sync::Arc;

use lyncd_core::UtcTime;
use lyncd_discover::ServiceUrls;
use lyncd_store::Store;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::keys::ServiceKeys;

/// Where the servers get the time. Tests inject a fixed or shifted clock to exercise expiry.
pub trait Clock: Send + Sync {
    fn now(&self) -> UtcTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UtcTime {
        UtcTime::now_utc()
    }
}

/// Everything a request handler may touch.
pub struct App {
    pub config: ServerConfig,
    pub urls: ServiceUrls,
    pub store: Store,
    /// Swapped when another generation of token keys appears in the store; read it with
    /// [`App::keys`].
    keys: std::sync::RwLock<Arc<ServiceKeys>>,
    pub clock: Arc<dyn Clock>,
    /// Argon2 verifications cost ~20 ms of CPU each: at most one per core at a time, on the
    /// blocking pool, so a password spray cannot starve the other services.
    pub hashing: Semaphore,
    /// Base URL of Certificate Provisioning as advertised (the registrar's `sts-uri`, the
    /// Autodiscover links): the real service, or with `faults.certprov_unreachable` the same
    /// path on a port where nothing listens.
    pub certprov: String,
    /// Readiness: whether the node is shutting down (`/readyz`).
    pub health: crate::health::Health,
    /// Keeps the unreachable CertProv port bound (never listening) so nothing else takes it.
    _certprov_trap: Option<tokio::net::TcpSocket>,
}

impl App {
    pub fn new(
        config: ServerConfig,
        store: Store,
        keys: ServiceKeys,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let urls = ServiceUrls::new(
            &ServiceUrls::base("https", &config.names.web, config.public_https_port()),
            &ServiceUrls::base("https", &config.names.idp, config.public_https_port()),
        );
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (certprov, certprov_trap) = if config.faults.certprov_unreachable {
            unreachable_certprov(&config)
        } else {
            (urls.certprov(), None)
        };
        App {
            config,
            urls,
            store,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            clock,
            hashing: Semaphore::new(cores),
            certprov,
            health: crate::health::Health::default(),
            _certprov_trap: certprov_trap,
        }
    }

    /// The keys as currently loaded (cheap: one `Arc` clone).
    pub fn keys(&self) -> Arc<ServiceKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the loaded keys (a new generation appeared in the store).
    pub fn set_keys(&self, keys: ServiceKeys) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }

    /// The longest any token this node issues stays valid, plus the tolerated clock skew: how
    /// long a retired key generation must keep verifying.
    pub fn max_token_lifetime(&self) -> time::Duration {
        let t = &self.config.tokens;
        time::Duration::seconds(
            i64::from(t.idp_token_secs.max(t.web_ticket_secs)) + i64::from(t.clock_skew_secs),
        )
    }

    /// The server's time: the clock, shifted by `faults.clock_skew_secs`.
    pub fn now(&self) -> UtcTime {
        self.clock.now() + self.config.faults.clock_skew()
    }

    pub fn skew(&self) -> time::Duration {
        time::Duration::seconds(self.config.tokens.clock_skew_secs.into())
    }

    /// Verifies a password against a stored hash without blocking the async workers.
    /// `None` as the hash runs a dummy verification of the same cost (unknown user), so the
    /// answer time does not reveal whether an account exists.
    pub async fn verify_password(&self, password: &str, phc: Option<&str>) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let password = password.to_string();
        let phc = phc.map(str::to_string);
        tokio::task::spawn_blocking(move || match phc {
            Some(phc) => match lyncd_store::password::verify_password(&password, &phc) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::error!(error = %e, "a stored password hash is unreadable; the user cannot sign in until the password is reset");
                    false
                }
            },
            None => {
                lyncd_store::password::dummy_verify(&password);
                false
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// The CertProv URL on the web host at a port that refuses connections, and the socket that
/// holds that port. Should no port be available, port 9 (discard, served almost nowhere) is
/// named instead.
fn unreachable_certprov(config: &ServerConfig) -> (String, Option<tokio::net::TcpSocket>) {
    let (trap, port) = match crate::faults::refusing_port(config.listen.https.ip()) {
        Ok((socket, port)) => (Some(socket), port),
        Err(e) => {
            tracing::error!(error = %e, "faults: cannot reserve a closed port for CertProv; using port 9");
            (None, 9)
        }
    };
    let base = ServiceUrls::base("https", &config.names.web, port);
    (ServiceUrls::new(&base, &base).certprov(), trap)
}
