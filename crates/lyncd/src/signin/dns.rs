//! Name lookups for the troubleshooter: A/AAAA and SRV, through the system's resolver
//! configuration or a given name server (`--dns`), so a lab zone can be tested without
//! touching /etc/resolv.conf. The same resolver serves the HTTP client and SIP connections,
//! so every hop sees the names the DNS step reported.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use lyncd_client::SrvRecord;

/// A resolver: hickory against `--dns`, or the system's (which also reads /etc/hosts).
#[derive(Clone)]
pub struct Dns {
    hickory: Option<Arc<TokioResolver>>,
    /// With `--dns`, every lookup goes there; else A lookups use the system resolver.
    explicit: bool,
    /// The `--dns` server, once it has left a query unanswered (timed out, or no connection
    /// at all): later lookups fail at once instead of each waiting out the timeouts again (a
    /// sign-in asks a dozen names; a dead server would otherwise cost minutes).
    silent: Arc<AtomicBool>,
    server: Option<SocketAddr>,
}

impl Dns {
    /// `server`: the name server to ask instead of the system's.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Self> {
        let builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                Some(TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                ))
            }
            // Without /etc/resolv.conf there is no SRV lookup; A lookups still work.
            None => TokioResolver::builder_tokio().ok(),
        };
        let hickory = match builder {
            Some(mut b) => {
                let opts = b.options_mut();
                opts.timeout = timeout;
                opts.attempts = 2;
                // The troubleshooter reports what DNS says now, not what it said a minute ago.
                opts.cache_size = 0;
                Some(Arc::new(b.build().map_err(|e| {
                    anyhow::anyhow!("setting up the DNS resolver: {e}")
                })?))
            }
            None => None,
        };
        Ok(Dns {
            hickory,
            explicit: server.is_some(),
            silent: Arc::new(AtomicBool::new(false)),
            server,
        })
    }

    /// Fails a lookup at once when the `--dns` server already left one unanswered.
    fn check_answering(&self, name: &str) -> Result<(), String> {
        match self.server {
            Some(server) if self.silent.load(Ordering::Relaxed) => Err(format!(
                "{name}: not asked: the DNS server {server} did not answer an earlier query"
            )),
            _ => Ok(()),
        }
    }

    /// Describes a failed lookup, and remembers a server that did not answer at all.
    fn failed(&self, name: &str, e: &hickory_resolver::net::NetError) -> String {
        use hickory_resolver::net::NetError;
        if self.explicit && matches!(e, NetError::Timeout | NetError::NoConnections) {
            self.silent.store(true, Ordering::Relaxed);
        }
        describe(name, e)
    }

    /// The addresses of `host`, or the resolver's words ("NXDOMAIN", …).
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match (&self.hickory, self.explicit) {
            (Some(r), true) => match self.check_answering(host) {
                Err(e) => Err(e),
                Ok(()) => match r.lookup_ip(fqdn(host)).await {
                    Ok(l) => {
                        let ips: Vec<IpAddr> = l.iter().collect();
                        if ips.is_empty() {
                            Err(format!("{host}: no address"))
                        } else {
                            Ok(ips)
                        }
                    }
                    Err(e) => Err(self.failed(host, &e)),
                },
            },
            _ => match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => {
                    let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                    ips.dedup();
                    if ips.is_empty() {
                        Err(format!("{host}: no address"))
                    } else {
                        Ok(ips)
                    }
                }
                Err(e) => Err(format!("{host}: {e}")),
            },
        }
    }

    /// The SRV records of `name`, sorted by priority then weight (descending).
    pub async fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        let Some(r) = &self.hickory else {
            return Err(format!(
                "{name}: no DNS server configured for SRV lookups (no /etc/resolv.conf; pass \
                 --dns)"
            ));
        };
        self.check_answering(name)?;
        match r.lookup(fqdn(name), RecordType::SRV).await {
            Ok(l) => {
                let mut out: Vec<SrvRecord> = l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::SRV(s) => Some(SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_utf8().trim_end_matches('.').to_string(),
                        }),
                        _ => None,
                    })
                    .collect();
                out.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
                Ok(out)
            }
            Err(e) => Err(self.failed(name, &e)),
        }
    }
}

/// Names in lookups are absolute: no search-domain guessing.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn describe(name: &str, e: &hickory_resolver::net::NetError) -> String {
    if e.is_nx_domain() {
        format!("{name}: NXDOMAIN (no such name)")
    } else if e.is_no_records_found() {
        format!("{name}: no record of that type")
    } else {
        format!("{name}: {e}")
    }
}

/// The resolver as reqwest's: every HTTP hop resolves through the same DNS as the DNS step.
impl reqwest::dns::Resolve for Dns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = this
                .lookup_ip(&host)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
