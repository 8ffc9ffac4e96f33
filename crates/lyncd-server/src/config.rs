//! `lyncd serve` configuration: host names, listen addresses, lifetimes. Every key is optional;
//! the defaults serve everything on loopback under the name `localhost`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the store lives: `postgres://user:password@host/db` (or `postgresql://`, shared by
    /// the nodes of a cluster) or `sqlite://…`. Unset: the SQLite file in the data directory.
    /// `lyncd serve --database URL` wins over this. A top-level key: in the TOML file it must
    /// come before the first `[section]`.
    pub database: Option<lyncd_store::DatabaseUrl>,
    pub node: Node,
    pub names: Names,
    pub listen: Listen,
    pub public: Public,
    pub tokens: Tokens,
    pub sip: Sip,
    /// SIP domains homed on another deployment: domain → that deployment's Autodiscover root URL.
    /// Discovery requests for them are answered with a `Redirect`.
    pub redirects: BTreeMap<String, String>,
    /// The embedded DNS server: off unless the section is present.
    pub dns: Option<Dns>,
    /// Fault injection, for tests: everything off by default (see [`crate::faults`]).
    pub faults: crate::faults::Faults,
    pub shutdown: Shutdown,
}

/// `[node]`: this server's identity among the nodes sharing one database.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Node {
    /// Marks the SIP registrations this node holds and names it in `/readyz`. Default: the
    /// host name, else `lyncd`. Must differ between nodes.
    pub name: Option<String>,
}

/// `[shutdown]`: what happens on SIGTERM or ctrl-c.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// Seconds between `/readyz` turning 503 and the listeners closing, while everything is
    /// still served: set it to the load balancer's health-check interval × the failures it
    /// needs to take a node out, so no new client is sent to a node that is going away.
    pub drain_secs: u32,
    /// Seconds requests in flight get to finish once the listeners are closed; what is still
    /// running then is cut off.
    pub grace_secs: u32,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain_secs: 0,
            grace_secs: 10,
        }
    }
}

/// `[dns]`: an authoritative zone per tenant domain (lyncdiscover, SIP SRV and A records) plus
/// the configured names, so a client can discover this deployment without touching real DNS.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// UDP and TCP address of the DNS server (port 53 needs the same privileges as 443).
    pub listen: SocketAddr,
    /// Where the A (or, for an IPv6 address, AAAA) records point. Default: the IP of
    /// `listen.https`, or 127.0.0.1 when that is a wildcard address.
    pub address: Option<IpAddr>,
    /// TTL of every record, and of negative answers (seconds).
    pub ttl: u32,
    /// Per-name A (or AAAA) records that override `address`, e.g. to send a client's web half
    /// to one node and its SIP half to another: `{ "lyncfe.contoso.com" = "10.0.0.6" }`. Names
    /// that are no record of the zone yet (another node's host) are added.
    pub hosts: BTreeMap<String, IpAddr>,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            listen: SocketAddr::from(([127, 0, 0, 1], 5353)),
            address: None,
            ttl: 60,
            hosts: BTreeMap::new(),
        }
    }
}

/// The host names clients are sent to. All web services answer on every name (routing is by
/// path), so one name can serve everything.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Names {
    /// Autodiscover, Web Ticket, Certificate Provisioning (Microsoft calls it the "webdir").
    pub web: String,
    /// The SIP pool FQDN advertised as SipClient*Access.
    pub pool: String,
    /// The identity provider ("Org ID"). pidgin-sipe hard-codes `login.microsoftonline.com`: use
    /// that name in a lab where it resolves to lyncd.
    pub idp: String,
    /// More names the HTTPS certificate should cover.
    pub extra: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub https: SocketAddr,
    /// Plain HTTP, for the first lyncdiscover GET only (answered with a Redirect to HTTPS).
    pub http: Option<SocketAddr>,
    pub sip_tls: Option<SocketAddr>,
    /// SIP over plain TCP (off by default: sign-in secrets are protected by TLS-DSK, but the
    /// rest of the traffic would not be encrypted).
    pub sip_tcp: Option<SocketAddr>,
    /// Plain HTTP for operators and load balancers: `/healthz`, `/readyz` and
    /// `/registrations`. Off by default; bind it to an internal address only (it lists who is
    /// signed in).
    pub admin: Option<SocketAddr>,
}

/// The registrar.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    /// Registration lifetime granted (seconds); clients refresh 30 s before it ends.
    pub registration_secs: u32,
    /// Keep-alive interval advertised to clients (seconds). An idle connection is closed after
    /// twice this long.
    pub keepalive_secs: u32,
    /// The networks (CIDR, e.g. `"10.0.0.0/8"`) whose clients count as internal. Users without
    /// remote access (`lyncd user set <address> --remote-access off`) may register only from
    /// these; from elsewhere they get 403 with `ms-diagnostics-public: 4003`, as behind a Lync
    /// edge. Default: every address is internal. Clients behind a NAT or load balancer are
    /// seen with its address.
    pub internal_networks: Vec<ipnet::IpNet>,
}

impl Default for Sip {
    fn default() -> Self {
        Sip {
            registration_secs: 7200,
            keepalive_secs: 300,
            internal_networks: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::default()),
                ipnet::IpNet::V6(ipnet::Ipv6Net::default()),
            ],
        }
    }
}

impl Sip {
    /// Whether a client at `ip` is on an internal network. IPv4 clients reaching a dual-stack
    /// listener appear as `::ffff:a.b.c.d` and are matched as IPv4.
    pub fn is_internal(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.internal_networks.iter().any(|net| net.contains(&ip))
    }
}

/// Ports clients connect to, when they differ from the listen ports (a load balancer or NAT in
/// front). Default: the listen ports.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Public {
    pub https_port: Option<u16>,
    pub sip_port: Option<u16>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    /// Lifetime of the identity provider's token (seconds).
    pub idp_token_secs: u32,
    /// Lifetime of a web ticket and an OAuth access token (seconds). Microsoft documents 8 h.
    pub web_ticket_secs: u32,
    /// Tolerated clock difference when checking token validity (seconds).
    pub clock_skew_secs: u32,
    /// Validity of a user certificate issued by Certificate Provisioning (hours). pidgin-sipe
    /// re-provisions when less than an hour remains; Microsoft's default is 8.
    pub user_certificate_hours: u32,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            web: "localhost".into(),
            pool: "localhost".into(),
            idp: "localhost".into(),
            extra: Vec::new(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            https: SocketAddr::from(([127, 0, 0, 1], 443)),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 80))),
            sip_tls: Some(SocketAddr::from(([127, 0, 0, 1], 5061))),
            sip_tcp: None,
            admin: None,
        }
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            idp_token_secs: 8 * 3600,
            web_ticket_secs: 8 * 3600,
            clock_skew_secs: 300,
            user_certificate_hours: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("configuration: {field} = {value:?} is not a valid host name")]
    BadName { field: &'static str, value: String },
    #[error(
        "configuration: redirect for {domain:?} must be an absolute https URL with a path, got {url:?}"
    )]
    BadRedirect { domain: String, url: String },
    #[error("configuration: token lifetimes must be between 60 seconds and 30 days")]
    BadLifetime,
    #[error(
        "configuration: tokens.user_certificate_hours must be between 2 and 4320 (180 days); \
         clients renew certificates with less than an hour left"
    )]
    BadCertificateLifetime,
    #[error(
        "configuration: sip.registration_secs must be 60..=86400 and sip.keepalive_secs 10..=3600"
    )]
    BadSipTiming,
    #[error(
        "configuration: sip.internal_networks entry {value} has host bits set; \
         write the network, e.g. {network}"
    )]
    BadInternalNetwork { value: String, network: String },
    #[error("configuration: dns.ttl must be at most 86400 seconds")]
    BadDnsTtl,
    #[error("configuration: database must be a postgres://, postgresql:// or sqlite: URL, got {0}")]
    BadDatabase(String),
    #[error("configuration: node.name = {0:?} must be 1 to 253 letters, digits, '.', '-' or '_'")]
    BadNodeName(String),
    #[error("configuration: shutdown.drain_secs and shutdown.grace_secs must be at most 3600")]
    BadShutdown,
    #[error("configuration: faults.{key}: {why}")]
    BadFault { key: &'static str, why: String },
}

impl ServerConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: ServerConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("names.web", &self.names.web),
            ("names.pool", &self.names.pool),
            ("names.idp", &self.names.idp),
        ] {
            if !is_host_name(value) {
                return Err(ConfigError::BadName {
                    field,
                    value: value.clone(),
                });
            }
        }
        for value in &self.names.extra {
            if !is_host_name(value.trim_start_matches("*."))
                && value.parse::<std::net::IpAddr>().is_err()
            {
                return Err(ConfigError::BadName {
                    field: "names.extra",
                    value: value.clone(),
                });
            }
        }
        for (domain, url) in &self.redirects {
            let ok = url::Url::parse(url)
                .map(|u| u.scheme() == "https" && u.host_str().is_some() && u.path().len() > 1)
                .unwrap_or(false);
            if !ok {
                return Err(ConfigError::BadRedirect {
                    domain: domain.clone(),
                    url: url.clone(),
                });
            }
        }
        let range = 60..=30 * 24 * 3600;
        if !range.contains(&self.tokens.idp_token_secs)
            || !range.contains(&self.tokens.web_ticket_secs)
        {
            return Err(ConfigError::BadLifetime);
        }
        if !(2..=4320).contains(&self.tokens.user_certificate_hours) {
            return Err(ConfigError::BadCertificateLifetime);
        }
        if !(60..=86_400).contains(&self.sip.registration_secs)
            || !(10..=3600).contains(&self.sip.keepalive_secs)
        {
            return Err(ConfigError::BadSipTiming);
        }
        // "10.1.2.3/8" is most likely a typo for a host or for another prefix: say so rather
        // than guess.
        if let Some(net) = self
            .sip
            .internal_networks
            .iter()
            .find(|net| net.addr() != net.network())
        {
            return Err(ConfigError::BadInternalNetwork {
                value: net.to_string(),
                network: net.trunc().to_string(),
            });
        }
        if self.dns.as_ref().is_some_and(|d| d.ttl > 86_400) {
            return Err(ConfigError::BadDnsTtl);
        }
        if let Some(name) = self
            .dns
            .iter()
            .flat_map(|d| d.hosts.keys())
            .find(|n| !is_host_name(n) || n.eq_ignore_ascii_case("localhost"))
        {
            return Err(ConfigError::BadName {
                field: "dns.hosts",
                value: name.clone(),
            });
        }
        if let Some(url) = &self.database
            && !is_database_url(url.as_str())
        {
            return Err(ConfigError::BadDatabase(url.to_string()));
        }
        if let Some(name) = &self.node.name
            && !is_node_name(name)
        {
            return Err(ConfigError::BadNodeName(name.clone()));
        }
        if self.shutdown.drain_secs > 3600 || self.shutdown.grace_secs > 3600 {
            return Err(ConfigError::BadShutdown);
        }
        self.faults.validate().map_err(|e| ConfigError::BadFault {
            key: e.key,
            why: e.why,
        })?;
        Ok(())
    }

    /// This node's name: `[node] name`, else the host name, else `lyncd`. It marks the SIP
    /// registrations this node holds and is shown by `/readyz`.
    pub fn node_name(&self) -> String {
        match &self.node.name {
            Some(name) => name.clone(),
            None => host_name().to_string(),
        }
    }

    pub fn public_https_port(&self) -> u16 {
        self.public.https_port.unwrap_or(self.listen.https.port())
    }

    pub fn public_sip_port(&self) -> u16 {
        self.public
            .sip_port
            .or(self.listen.sip_tls.map(|a| a.port()))
            .unwrap_or(5061)
    }
}

/// The system's host name (read once), or `lyncd` when it is unknown or not a valid node name.
fn host_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .chain(std::env::var("HOSTNAME").ok())
            .map(|n| n.trim().to_string())
            .find(|n| is_node_name(n))
            .unwrap_or_else(|| "lyncd".to_string())
    })
}

fn is_node_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn is_database_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")
}

/// `localhost` or a DNS name with at least two labels.
fn is_host_name(name: &str) -> bool {
    name == "localhost" || lyncd_core::SipAddress::parse(&format!("x@{name}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_loopback_default() {
        let cfg = ServerConfig::from_toml("").unwrap();
        assert_eq!(cfg, ServerConfig::default());
        assert_eq!(cfg.public_https_port(), 443);
        assert_eq!(cfg.public_sip_port(), 5061);
    }

    #[test]
    fn a_lab_config_parses() {
        let cfg = ServerConfig::from_toml(
            r#"
            [names]
            web = "lyncweb.contoso.com"
            pool = "lyncfe.contoso.com"
            idp = "login.microsoftonline.com"
            [listen]
            https = "127.0.0.1:4443"
            [public]
            https_port = 443
            [redirects]
            "fabrikam.com" = "https://webdir.fabrikam.com/Autodiscover/AutodiscoverService.svc/root"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.names.idp, "login.microsoftonline.com");
        assert_eq!(cfg.listen.https.port(), 4443);
        assert_eq!(cfg.public_https_port(), 443);
        assert_eq!(cfg.redirects.len(), 1);
    }

    #[test]
    fn internal_networks_default_to_everything_and_parse_as_cidr() {
        let everyone = ServerConfig::default();
        for ip in [
            "203.0.113.7",
            "10.1.2.3",
            "2001:db8::1",
            "::ffff:198.51.100.1",
        ] {
            assert!(everyone.sip.is_internal(ip.parse().unwrap()), "{ip}");
        }

        let cfg = ServerConfig::from_toml(
            "[sip]\ninternal_networks = [\"10.0.0.0/8\", \"192.168.1.0/24\", \"fd00::/8\"]",
        )
        .unwrap();
        for (ip, internal) in [
            ("10.200.3.4", true),
            ("192.168.1.254", true),
            ("192.168.2.1", false),
            ("203.0.113.7", false),
            // An IPv4 client on a dual-stack socket.
            ("::ffff:10.0.0.9", true),
            ("::ffff:203.0.113.7", false),
            ("fd12:3456::1", true),
            ("2001:db8::1", false),
        ] {
            assert_eq!(cfg.sip.is_internal(ip.parse().unwrap()), internal, "{ip}");
        }
        // The other [sip] keys keep their defaults.
        assert_eq!(cfg.sip.registration_secs, 7200);

        // Nothing internal: users without remote access cannot register at all.
        let none = ServerConfig::from_toml("[sip]\ninternal_networks = []").unwrap();
        assert!(!none.sip.is_internal("127.0.0.1".parse().unwrap()));

        let e =
            ServerConfig::from_toml("[sip]\ninternal_networks = [\"10.0.0.0/33\"]").unwrap_err();
        assert!(e.to_string().contains("internal_networks"), "{e}");
        let e = ServerConfig::from_toml("[sip]\ninternal_networks = [\"intranet\"]").unwrap_err();
        assert!(e.to_string().contains("internal_networks"), "{e}");
        let e = ServerConfig::from_toml("[sip]\ninternal_networks = [\"10.1.2.3/8\"]").unwrap_err();
        assert!(
            matches!(&e, ConfigError::BadInternalNetwork { network, .. } if network == "10.0.0.0/8"),
            "{e}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = ServerConfig::from_toml("[names]\nweb = \"no spaces allowed\"").unwrap_err();
        assert!(e.to_string().contains("names.web"), "{e}");
        let e = ServerConfig::from_toml("[names]\nwbe = \"x.y\"").unwrap_err();
        assert!(e.to_string().contains("wbe"), "{e}");
        let e = ServerConfig::from_toml("[redirects]\n\"f.com\" = \"http://x\"").unwrap_err();
        assert!(matches!(e, ConfigError::BadRedirect { .. }));
        let e = ServerConfig::from_toml("[tokens]\nweb_ticket_secs = 5").unwrap_err();
        assert!(matches!(e, ConfigError::BadLifetime));
        let e = ServerConfig::from_toml("[tokens]\nuser_certificate_hours = 1").unwrap_err();
        assert!(matches!(e, ConfigError::BadCertificateLifetime), "{e}");
        let cfg = ServerConfig::from_toml("[tokens]\nuser_certificate_hours = 24").unwrap();
        assert_eq!(cfg.tokens.user_certificate_hours, 24);
        assert_eq!(ServerConfig::default().tokens.user_certificate_hours, 8);
    }

    #[test]
    fn cluster_keys_parse_and_are_checked() {
        let cfg = ServerConfig::from_toml(
            r#"
            database = "postgres://lyncd:s3cret@db.contoso.com/lyncd"
            [node]
            name = "fe-1.contoso.com"
            [listen]
            admin = "127.0.0.1:8081"
            [shutdown]
            drain_secs = 15
            "#,
        )
        .unwrap();
        assert_eq!(
            cfg.database.as_ref().map(lyncd_store::DatabaseUrl::as_str),
            Some("postgres://lyncd:s3cret@db.contoso.com/lyncd")
        );
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "a debug-printed config hides it"
        );
        assert_eq!(cfg.node_name(), "fe-1.contoso.com");
        assert_eq!(
            cfg.listen.admin,
            Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
        assert_eq!(cfg.shutdown.drain_secs, 15);
        assert_eq!(cfg.shutdown.grace_secs, 10);

        let defaults = ServerConfig::default();
        assert_eq!(defaults.database, None);
        assert_eq!(defaults.listen.admin, None);
        assert_eq!(
            defaults.shutdown,
            Shutdown {
                drain_secs: 0,
                grace_secs: 10
            }
        );
        assert!(
            is_node_name(&defaults.node_name()),
            "{}",
            defaults.node_name()
        );

        let e = ServerConfig::from_toml("database = \"mysql://u:hunter2@h/db\"").unwrap_err();
        assert!(matches!(e, ConfigError::BadDatabase(_)), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = ServerConfig::from_toml("[node]\nname = \"fe 1\"").unwrap_err();
        assert!(matches!(e, ConfigError::BadNodeName(_)), "{e}");
        let e = ServerConfig::from_toml("[shutdown]\ngrace_secs = 7200").unwrap_err();
        assert!(matches!(e, ConfigError::BadShutdown), "{e}");
    }

    #[test]
    fn database_passwords_are_redacted() {
        for (url, shown) in [
            (
                "postgres://lyncd:s3cret@db:5432/lyncd?sslmode=require",
                "postgres://lyncd:***@db:5432/lyncd?sslmode=require",
            ),
            (
                "postgresql://db/lyncd?user=lyncd&password=s3cret",
                "postgresql://db/lyncd?user=lyncd&password=***",
            ),
            ("postgres://lyncd@db/lyncd", "postgres://lyncd@db/lyncd"),
            (
                "sqlite:///var/lib/lyncd/lyncd.db?mode=rwc",
                "sqlite:///var/lib/lyncd/lyncd.db?mode=rwc",
            ),
        ] {
            assert_eq!(lyncd_store::redact_url(url), shown);
        }
    }
}
