//! The embedded DNS server (`[dns]`): an authoritative zone per tenant domain with the records a
//! Skype for Business client looks up — `lyncdiscover`, `lyncdiscoverinternal`, the
//! `_sipinternaltls._tcp` and `_sip._tls` SRV records, `sipinternal`, `sip`, `sipexternal` —
//! plus A records for the configured web, pool and identity-provider names. Other names in a zone
//! answer NXDOMAIN; names outside every zone are REFUSED, as by any authoritative-only server.
//!
//! What the zone holds is computed by [`records`] from the configuration and the tenant list
//! (plain data, tested without sockets); hickory-server answers from it. New tenants are picked
//! up by [`Zones::update`] without a restart.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::{Dns, ServerConfig};
use crate::faults::DnsRecord;

/// How long the server waits for a TCP client to send its query.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("the DNS name {name:?} is not valid: {reason}")]
    BadName { name: String, reason: String },
    #[error("cannot build the DNS zone {origin}: {reason}")]
    Zone { origin: String, reason: String },
}

/// One record this deployment publishes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// A (IPv4) or AAAA (IPv6).
    Address { name: String, ip: IpAddr },
    /// SRV with priority 0 and weight 0.
    Srv {
        name: String,
        target: String,
        port: u16,
    },
}

impl Entry {
    pub fn name(&self) -> &str {
        match self {
            Entry::Address { name, .. } | Entry::Srv { name, .. } => name,
        }
    }
}

/// Where the A records point: `dns.address`, else the HTTPS listener's IP, else loopback when
/// that listener is bound to a wildcard address (which no client can connect to as such).
pub fn address(config: &ServerConfig, dns: &Dns) -> IpAddr {
    dns.address.unwrap_or_else(|| {
        let ip = config.listen.https.ip();
        if ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            ip
        }
    })
}

/// Every record of every zone, for the configuration and the current tenants; the SRV records
/// name `sip_port`. Records named in `faults.dns_missing` are left out; `faults.srv_target`
/// replaces the SRV target.
pub fn records(
    config: &ServerConfig,
    dns: &Dns,
    tenants: &[String],
    sip_port: u16,
) -> BTreeSet<Entry> {
    let ip = address(config, dns);
    let faults = &config.faults;
    let missing = |r: DnsRecord| faults.dns_missing.contains(&r);
    let target = faults
        .srv_target
        .clone()
        .unwrap_or_else(|| config.names.pool.clone());
    let mut out = BTreeSet::new();
    for domain in tenants {
        for (record, label) in [
            (DnsRecord::Lyncdiscover, "lyncdiscover"),
            (DnsRecord::Lyncdiscoverinternal, "lyncdiscoverinternal"),
            (DnsRecord::Sipinternal, "sipinternal"),
            (DnsRecord::Sip, "sip"),
            (DnsRecord::Sipexternal, "sipexternal"),
        ] {
            if !missing(record) {
                out.insert(Entry::Address {
                    name: format!("{label}.{domain}"),
                    ip,
                });
            }
        }
        for (record, label) in [
            (DnsRecord::Sipinternaltls, "_sipinternaltls._tcp"),
            (DnsRecord::SipTls, "_sip._tls"),
        ] {
            if !missing(record) {
                out.insert(Entry::Srv {
                    name: format!("{label}.{domain}"),
                    target: target.clone(),
                    port: sip_port,
                });
            }
        }
    }
    // The hosts clients are sent to must resolve; `localhost` is resolved by every client itself.
    let hosts = [&config.names.web, &config.names.pool, &config.names.idp]
        .into_iter()
        .chain(faults.srv_target.as_ref());
    for host in hosts {
        if !host.eq_ignore_ascii_case("localhost") {
            out.insert(Entry::Address {
                name: host.to_ascii_lowercase(),
                ip,
            });
        }
    }
    // `dns.hosts` wins over `address` for the names it lists, and adds those it does not find.
    for (host, host_ip) in &dns.hosts {
        let host = host.to_ascii_lowercase();
        out.retain(|e| !matches!(e, Entry::Address { name, .. } if *name == host));
        out.insert(Entry::Address {
            name: host,
            ip: *host_ip,
        });
    }
    out
}

/// The zones to serve: one per tenant domain, and one per record name outside every tenant
/// domain (`login.microsoftonline.com` gets a zone of its own, holding just its A record).
pub fn origins(tenants: &[String], records: &BTreeSet<Entry>) -> BTreeSet<String> {
    let mut origins: BTreeSet<String> = tenants.iter().map(|t| t.to_ascii_lowercase()).collect();
    for entry in records {
        if zone_of(&origins, entry.name()).is_none() {
            origins.insert(entry.name().to_string());
        }
    }
    origins
}

/// The most specific origin `name` falls in.
fn zone_of<'a>(origins: &'a BTreeSet<String>, name: &str) -> Option<&'a String> {
    origins
        .iter()
        .filter(|o| name == o.as_str() || name.ends_with(&format!(".{o}")))
        .max_by_key(|o| o.len())
}

fn dns_name(name: &str) -> Result<Name, DnsError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| DnsError::BadName {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

fn rdata(entry: &Entry) -> Result<RData, DnsError> {
    Ok(match entry {
        Entry::Address {
            ip: IpAddr::V4(ip), ..
        } => RData::A(A(*ip)),
        Entry::Address {
            ip: IpAddr::V6(ip), ..
        } => RData::AAAA(AAAA(*ip)),
        Entry::Srv { target, port, .. } => RData::SRV(SRV::new(0, 0, *port, dns_name(target)?)),
    })
}

/// One authoritative zone: its SOA (whose minimum is the negative-answer TTL) and its records.
fn zone(
    origin: &str,
    entries: &[&Entry],
    ttl: u32,
    serial: u32,
) -> Result<InMemoryZoneHandler, DnsError> {
    let apex = dns_name(origin)?;
    let soa = SOA::new(
        dns_name(&format!("ns.{origin}"))?,
        dns_name(&format!("hostmaster.{origin}"))?,
        serial,
        3600,
        600,
        86_400,
        ttl,
    );
    let mut zone = InMemoryZoneHandler::empty(apex.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let records = std::iter::once(Ok(Record::from_rdata(apex, ttl, RData::SOA(soa)))).chain(
        entries
            .iter()
            .map(|e| Ok(Record::from_rdata(dns_name(e.name())?, ttl, rdata(e)?))),
    );
    for record in records {
        let record = record?;
        if !zone.upsert_mut(record, serial) {
            return Err(DnsError::Zone {
                origin: origin.to_string(),
                reason: "a record was refused".into(),
            });
        }
    }
    Ok(zone)
}

/// The catalog of every zone.
fn catalog(
    origins: &BTreeSet<String>,
    records: &BTreeSet<Entry>,
    ttl: u32,
) -> Result<Catalog, DnsError> {
    // Seconds since 1970 fit a u32 until 2106; a serial only has to grow between versions.
    let serial = u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(1);
    let mut catalog = Catalog::new();
    for origin in origins {
        let entries: Vec<&Entry> = records
            .iter()
            .filter(|e| zone_of(origins, e.name()) == Some(origin))
            .collect();
        let handler: Arc<dyn ZoneHandler> = Arc::new(zone(origin, &entries, ttl, serial)?);
        catalog.upsert(LowerName::new(&dns_name(origin)?), vec![handler]);
    }
    Ok(catalog)
}

/// The zones being served, replaceable while the server runs.
#[derive(Clone)]
pub struct Zones {
    current: Arc<RwLock<(BTreeSet<Entry>, Arc<Catalog>)>>,
    /// The SIP-over-TLS port clients use: `public.sip_port`, else the port actually bound.
    sip_port: u16,
}

impl Zones {
    pub fn new(
        config: &ServerConfig,
        dns: &Dns,
        tenants: &[String],
        sip_port: u16,
    ) -> Result<Self, DnsError> {
        let zones = Zones {
            current: Arc::new(RwLock::new((BTreeSet::new(), Arc::new(Catalog::new())))),
            sip_port,
        };
        zones.update(config, dns, tenants)?;
        Ok(zones)
    }

    /// Rebuilds the zones if the records changed (a tenant was added). Returns whether it did.
    pub fn update(
        &self,
        config: &ServerConfig,
        dns: &Dns,
        tenants: &[String],
    ) -> Result<bool, DnsError> {
        let records = records(config, dns, tenants, self.sip_port);
        if self.read().0 == records {
            return Ok(false);
        }
        let catalog = catalog(&origins(tenants, &records), &records, dns.ttl)?;
        tracing::info!(
            names = %records.iter().map(Entry::name).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(" "),
            "dns: serving"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (records, Arc::new(catalog));
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (BTreeSet<Entry>, Arc<Catalog>)> {
        // The lock only guards a swap of two values; a panic elsewhere cannot leave them torn.
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl RequestHandler for Zones {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let catalog = self.read().1.clone();
        catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// The bound DNS sockets: UDP and TCP on one port.
pub struct DnsListener {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsListener {
    /// Binds UDP and TCP on `addr`. With port 0, the OS picks the UDP port and TCP takes the
    /// same one (retried a few times in the rare case that it is taken for TCP).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        if addr.port() != 0 {
            let udp = UdpSocket::bind(addr).await?;
            let tcp = TcpListener::bind(addr).await?;
            return Ok(DnsListener { udp, tcp });
        }
        let mut last = None;
        for _ in 0..16 {
            let udp = UdpSocket::bind(addr).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => return Ok(DnsListener { udp, tcp }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Answers queries until `stop`.
pub async fn serve(listener: DnsListener, zones: Zones, mut stop: watch::Receiver<bool>) {
    let mut server = Server::new(zones);
    server.register_socket(listener.udp);
    server.register_listener(listener.tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    let _ = stop.changed().await;
    if let Err(e) = server.shutdown_gracefully().await {
        tracing::warn!(error = %e, "dns: the server stopped with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> ServerConfig {
        ServerConfig::from_toml(toml).unwrap()
    }

    const LAB: &str = r#"
        [names]
        web = "lyncweb.contoso.com"
        pool = "lyncfe.contoso.com"
        idp = "login.microsoftonline.com"
        [listen]
        https = "127.0.0.2:443"
        [dns]
    "#;

    fn names(records: &BTreeSet<Entry>) -> Vec<&str> {
        records.iter().map(Entry::name).collect()
    }

    #[test]
    fn dns_section_is_off_by_default_and_has_defaults() {
        assert_eq!(config("").dns, None);
        let dns = config("[dns]").dns.unwrap();
        assert_eq!(dns.listen, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(dns.ttl, 60);
        assert!(ServerConfig::from_toml("[dns]\nttl = 100000").is_err());
        assert!(ServerConfig::from_toml("[dns]\nlisten = \"nope\"").is_err());
    }

    #[test]
    fn every_tenant_gets_the_discovery_records() {
        let cfg = config(LAB);
        let dns = cfg.dns.clone().unwrap();
        let records = records(&cfg, &dns, &["contoso.com".into()], 5061);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        for name in [
            "lyncdiscover.contoso.com",
            "lyncdiscoverinternal.contoso.com",
            "sipinternal.contoso.com",
            "sip.contoso.com",
            "sipexternal.contoso.com",
            "lyncweb.contoso.com",
            "lyncfe.contoso.com",
            "login.microsoftonline.com",
        ] {
            assert!(
                records.contains(&Entry::Address {
                    name: name.into(),
                    ip
                }),
                "{name}"
            );
        }
        for name in ["_sipinternaltls._tcp.contoso.com", "_sip._tls.contoso.com"] {
            assert!(records.contains(&Entry::Srv {
                name: name.into(),
                target: "lyncfe.contoso.com".into(),
                port: 5061
            }));
        }
        assert_eq!(records.len(), 10);
        let origins = origins(&["contoso.com".into()], &records);
        assert_eq!(
            origins.into_iter().collect::<Vec<_>>(),
            ["contoso.com", "login.microsoftonline.com"]
        );
    }

    #[test]
    fn faults_remove_records_and_move_the_srv_target() {
        let cfg = config(&format!(
            "{LAB}\n[faults]\ndns_missing = [\"lyncdiscover\", \"sip-tls\", \"sipinternal\"]\n\
             srv_target = \"lyncfe.fabrikam.net\"\n"
        ));
        let dns = cfg.dns.clone().unwrap();
        let records = records(&cfg, &dns, &["contoso.com".into()], 5061);
        let names = names(&records);
        assert!(!names.contains(&"lyncdiscover.contoso.com"));
        assert!(!names.contains(&"_sip._tls.contoso.com"));
        assert!(!names.contains(&"sipinternal.contoso.com"));
        assert!(names.contains(&"lyncdiscoverinternal.contoso.com"));
        assert!(names.contains(&"lyncfe.fabrikam.net"));
        assert!(records.contains(&Entry::Srv {
            name: "_sipinternaltls._tcp.contoso.com".into(),
            target: "lyncfe.fabrikam.net".into(),
            port: 5061
        }));
    }

    #[test]
    fn wildcard_listen_points_at_loopback_unless_an_address_is_given() {
        let cfg = config("[listen]\nhttps = \"0.0.0.0:443\"\n[dns]");
        let dns = cfg.dns.clone().unwrap();
        assert_eq!(address(&cfg, &dns), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let cfg = config("[dns]\naddress = \"10.0.0.5\"");
        let dns = cfg.dns.clone().unwrap();
        assert_eq!(address(&cfg, &dns), "10.0.0.5".parse::<IpAddr>().unwrap());
        // localhost is nobody's DNS business: the default configuration publishes no host.
        assert!(records(&cfg, &dns, &[], 5061).is_empty());
    }

    #[test]
    fn hosts_override_the_address_per_name_and_add_names() {
        // A split lab: the web services on one node, the SIP pool and another node's web host
        // on the second.
        let cfg = config(&format!(
            "{LAB}\naddress = \"127.0.0.1\"\n\
             hosts = {{ \"LyncFE.contoso.com\" = \"127.0.0.2\", \"lyncweb-b.contoso.com\" = \"127.0.0.2\", \"login.fabrikam.net\" = \"::1\" }}\n"
        ));
        let dns = cfg.dns.clone().unwrap();
        let records = records(&cfg, &dns, &["contoso.com".into()], 5061);
        let a = |name: &str| -> Vec<IpAddr> {
            records
                .iter()
                .filter_map(|e| match e {
                    Entry::Address { name: n, ip } if n == name => Some(*ip),
                    _ => None,
                })
                .collect()
        };
        let (one, two): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        assert_eq!(
            a("lyncfe.contoso.com"),
            [two],
            "one record per name, the override"
        );
        assert_eq!(
            a("lyncweb-b.contoso.com"),
            [two],
            "a name of no configuration is added"
        );
        assert_eq!(a("login.fabrikam.net"), ["::1".parse::<IpAddr>().unwrap()]);
        for name in [
            "lyncweb.contoso.com",
            "lyncdiscover.contoso.com",
            "sip.contoso.com",
            "login.microsoftonline.com",
        ] {
            assert_eq!(a(name), [one], "{name}");
        }
        // The SRV records still name the pool, which now points at the second node.
        assert!(records.contains(&Entry::Srv {
            name: "_sipinternaltls._tcp.contoso.com".into(),
            target: "lyncfe.contoso.com".into(),
            port: 5061
        }));
        // Names outside every tenant get a zone of their own; the zones build.
        let origins = origins(&["contoso.com".into()], &records);
        assert!(origins.contains("login.fabrikam.net"), "{origins:?}");
        catalog(&origins, &records, 60).unwrap();
        // Host names only.
        for bad in ["\"not a name\" = \"10.0.0.1\"", "localhost = \"10.0.0.1\""] {
            let e = ServerConfig::from_toml(&format!("[dns]\nhosts = {{ {bad} }}")).unwrap_err();
            assert!(e.to_string().contains("dns.hosts"), "{e}");
        }
        assert!(
            ServerConfig::from_toml("[dns]\nhosts = { \"a.contoso.com\" = \"nope\" }").is_err()
        );
    }

    #[test]
    fn the_most_specific_zone_holds_a_name() {
        let origins: BTreeSet<String> = ["contoso.com", "eu.contoso.com"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            zone_of(&origins, "sip.eu.contoso.com").map(String::as_str),
            Some("eu.contoso.com")
        );
        assert_eq!(
            zone_of(&origins, "sip.contoso.com").map(String::as_str),
            Some("contoso.com")
        );
        assert_eq!(zone_of(&origins, "notcontoso.com"), None);
    }
}
