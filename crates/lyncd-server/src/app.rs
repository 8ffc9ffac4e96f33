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
    pub keys: ServiceKeys,
    pub clock: Arc<dyn Clock>,
    /// Argon2 verifications cost ~20 ms of CPU each: at most one per core at a time, on the
    /// blocking pool, so a password spray cannot starve the other services.
    pub hashing: Semaphore,
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
        App {
            config,
            urls,
            store,
            keys,
            clock,
            hashing: Semaphore::new(cores),
        }
    }

    pub fn now(&self) -> UtcTime {
        self.clock.now()
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
