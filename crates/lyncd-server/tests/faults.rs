//! The embedded DNS zone and every `[faults]` key, observed on the wire the way a client meets
//! them: DNS answers, certificates (read with x509-parser), TLS versions (an OpenSSL client
//! limited to one version), `Date` headers, refused and reset connections, SIP and HTTP answers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Running, ServerConfig, SystemClock};
use lyncd_store::{NewUser, Store};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "Corr3ct&Horse";

struct Lab {
    _dir: tempfile::TempDir,
    running: Running,
    store: Store,
    ca_pem: String,
}

impl Lab {
    /// A contoso.com deployment on loopback (HTTPS, SIP over TLS and TCP, DNS) with `faults`
    /// as the `[faults]` section.
    async fn start(faults: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        let hash = lyncd_store::password::hash_password(PASSWORD, &[7u8; 16]).unwrap();
        store
            .add_user(
                NewUser {
                    address: SipAddress::parse("alice@contoso.com").unwrap(),
                    password_hash: hash,
                    display_name: None,
                    object_id: "oid-alice".into(),
                },
                now,
            )
            .await
            .unwrap();
        let keys = ServiceKeys::load_or_create(&store, now, &mut OsEntropy)
            .await
            .unwrap();
        let ca_pem = keys.ca.cert_pem().to_string();
        // The published URLs carry the HTTPS port: bind once to learn a free one.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = ServerConfig::from_toml(&format!(
            r#"
            [names]
            web = "lyncweb.contoso.com"
            pool = "lyncfe.contoso.com"
            idp = "login.contoso.com"
            [listen]
            https = "127.0.0.1:{port}"
            sip_tls = "127.0.0.1:0"
            sip_tcp = "127.0.0.1:0"
            [dns]
            listen = "127.0.0.1:0"
            ttl = 30
            [faults]
            {faults}
            "#
        ))
        .unwrap();
        config.listen.http = None;
        let app = Arc::new(App::new(config, store.clone(), keys, Arc::new(SystemClock)));
        let running = lyncd_server::start(app).await.unwrap();
        Lab {
            _dir: dir,
            running,
            store,
            ca_pem,
        }
    }

    fn https(&self) -> SocketAddr {
        self.running.https
    }

    /// A client that trusts lyncd's CA and finds every name on loopback.
    fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap();
        let mut b = reqwest::Client::builder().tls_certs_only([ca]);
        for n in [
            "lyncdiscover.contoso.com",
            "lyncweb.contoso.com",
            "login.contoso.com",
        ] {
            b = b.resolve(n, self.https());
        }
        b.build().unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https().port())
    }

    fn resolver(&self) -> TokioResolver {
        let addr = self.running.dns.unwrap();
        let mut server = NameServerConfig::udp(addr.ip());
        server.connections[0].port = addr.port();
        let config = ResolverConfig::from_parts(None, vec![], vec![server]);
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        // Every lookup must reach the server: the zone changes under the test.
        builder.options_mut().cache_size = 0;
        builder.build().unwrap()
    }

    /// The answer to one SIP REGISTER over plain TCP.
    async fn register(&self) -> String {
        let mut tcp = TcpStream::connect(self.running.sip_tcp.unwrap())
            .await
            .unwrap();
        tcp.write_all(REGISTER.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the registrar closed without answering");
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

const REGISTER: &str = "REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5555;branch=z9hG4bK0001\r\nFrom: <sip:alice@contoso.com>;tag=11;epid=c97532c1946f\r\nTo: <sip:alice@contoso.com>\r\nCSeq: 1 REGISTER\r\nCall-ID: 705Ag16DCa41EFi6F0Bm07E8tAC50b71\r\nContact: <sip:127.0.0.1:5555;transport=tcp>\r\nContent-Length: 0\r\n\r\n";

/// A header's value in a SIP message (first occurrence, case-insensitive name).
fn sip_header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// How a DNS lookup ended: the answers' data, or the response code.
async fn lookup(
    resolver: &TokioResolver,
    name: &str,
    kind: RecordType,
) -> Result<Vec<String>, String> {
    match resolver.lookup(name, kind).await {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::SRV(s) => format!("{} {} {} {}", s.priority, s.weight, s.port, s.target),
                other => format!("{other:?}"),
            })
            .collect()),
        Err(e) => Err(response_code(&e)),
    }
}

fn response_code(e: &NetError) -> String {
    use hickory_resolver::net::DnsError;
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) if n.response_code == ResponseCode::NXDomain => {
            "NXDOMAIN".into()
        }
        NetError::Dns(DnsError::NoRecordsFound(n)) if n.response_code == ResponseCode::NoError => {
            "NODATA".into()
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => "REFUSED".into(),
        other => format!("{other}"),
    }
}

/// An OpenSSL client limited to `version`, which does not check the certificate (the tests read
/// it themselves): the server's certificate, or the handshake error.
async fn handshake(addr: SocketAddr, version: SslVersion) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_min_proto_version(Some(version)).unwrap();
        b.set_max_proto_version(Some(version)).unwrap();
        b.set_cipher_list("DEFAULT@SECLEVEL=0").unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let stream = b
            .build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("lyncdiscover.contoso.com", tcp)
            .map_err(|e| format!("{e:?}"))?;
        Ok(stream.ssl().peer_certificate().unwrap().to_der().unwrap())
    })
    .await
    .unwrap()
}

/// notBefore, notAfter, DNS names and whether lyncd's CA issued it.
struct CertFacts {
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    issued_by_ca: bool,
}

fn cert_facts(der: &[u8], ca_pem: &str) -> CertFacts {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => d.to_string(),
                    GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let ca_der = openssl::x509::X509::from_pem(ca_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    CertFacts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
        issued_by_ca: cert.issuer() == ca.subject()
            && cert.verify_signature(Some(ca.public_key())).is_ok(),
    }
}

fn now() -> i64 {
    UtcTime::now_utc().unix_timestamp()
}

const DAY: i64 = 86_400;

/// Seconds between a `Date` header and the local clock.
fn date_offset(value: &str) -> i64 {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(value, &format)
        .unwrap_or_else(|e| panic!("Date {value:?}: {e}"))
        .assume_utc();
    date.unix_timestamp() - now()
}

// ---- DNS ------------------------------------------------------------------------------------

#[tokio::test]
async fn the_zone_answers_every_discovery_record() {
    let lab = Lab::start("").await;
    let dns = lab.resolver();
    for name in [
        "lyncdiscover.contoso.com",
        "lyncdiscoverinternal.contoso.com",
        "sipinternal.contoso.com",
        "sip.contoso.com",
        "sipexternal.contoso.com",
        "lyncweb.contoso.com",
        "lyncfe.contoso.com",
        "login.contoso.com",
    ] {
        assert_eq!(
            lookup(&dns, name, RecordType::A).await,
            Ok(vec!["127.0.0.1".to_string()]),
            "{name}"
        );
    }
    let sip_port = lab.running.sip_tls.unwrap().port();
    for name in ["_sipinternaltls._tcp.contoso.com", "_sip._tls.contoso.com"] {
        assert_eq!(
            lookup(&dns, name, RecordType::SRV).await,
            Ok(vec![format!("0 0 {sip_port} lyncfe.contoso.com.")]),
            "{name}"
        );
    }
    assert_eq!(
        lookup(&dns, "lyncdiscover.contoso.com", RecordType::AAAA).await,
        Err("NODATA".into())
    );
    assert_eq!(
        lookup(&dns, "nothing.contoso.com", RecordType::A).await,
        Err("NXDOMAIN".into())
    );
    assert_eq!(
        lookup(&dns, "www.example.org", RecordType::A).await,
        Err("REFUSED".into())
    );
    // Over TCP as well.
    let addr = lab.running.dns.unwrap();
    let mut server = NameServerConfig::tcp(addr.ip());
    server.connections[0].port = addr.port();
    let tcp = Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], vec![server]),
        TokioRuntimeProvider::default(),
    )
    .build()
    .unwrap();
    assert_eq!(
        lookup(&tcp, "lyncdiscover.contoso.com", RecordType::A).await,
        Ok(vec!["127.0.0.1".to_string()])
    );
}

#[tokio::test]
async fn a_new_tenant_gets_its_zone_without_a_restart() {
    let lab = Lab::start("").await;
    let dns = lab.resolver();
    assert_eq!(
        lookup(&dns, "lyncdiscover.fabrikam.com", RecordType::A).await,
        Err("REFUSED".into())
    );
    lab.store
        .add_tenant("fabrikam.com", UtcTime::now_utc())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = lookup(&dns, "lyncdiscover.fabrikam.com", RecordType::A).await;
        if answer == Ok(vec!["127.0.0.1".to_string()]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn missing_records_answer_nxdomain_and_srv_can_point_outside_the_domain() {
    let lab = Lab::start(
        r#"dns_missing = ["lyncdiscover", "lyncdiscoverinternal", "sipinternaltls", "sip-tls",
                          "sipinternal", "sip", "sipexternal"]"#,
    )
    .await;
    let dns = lab.resolver();
    for (name, kind) in [
        ("lyncdiscover.contoso.com", RecordType::A),
        ("lyncdiscoverinternal.contoso.com", RecordType::A),
        ("_sipinternaltls._tcp.contoso.com", RecordType::SRV),
        ("_sip._tls.contoso.com", RecordType::SRV),
        ("sipinternal.contoso.com", RecordType::A),
        ("sip.contoso.com", RecordType::A),
        ("sipexternal.contoso.com", RecordType::A),
    ] {
        assert_eq!(
            lookup(&dns, name, kind).await,
            Err("NXDOMAIN".into()),
            "{name}"
        );
    }
    // The configured hosts still resolve.
    assert!(
        lookup(&dns, "lyncweb.contoso.com", RecordType::A)
            .await
            .is_ok()
    );
    drop(lab);

    let lab = Lab::start(r#"srv_target = "lyncfe.fabrikam.net""#).await;
    let dns = lab.resolver();
    let sip_port = lab.running.sip_tls.unwrap().port();
    assert_eq!(
        lookup(&dns, "_sipinternaltls._tcp.contoso.com", RecordType::SRV).await,
        Ok(vec![format!("0 0 {sip_port} lyncfe.fabrikam.net.")])
    );
    assert_eq!(
        lookup(&dns, "lyncfe.fabrikam.net", RecordType::A).await,
        Ok(vec!["127.0.0.1".to_string()])
    );
}

// ---- certificates -----------------------------------------------------------------------------

async fn served_certificate(fault: &str) -> (CertFacts, Lab) {
    let lab = Lab::start(&format!("https_certificate = \"{fault}\"")).await;
    let der = handshake(lab.https(), SslVersion::TLS1_2).await.unwrap();
    (cert_facts(&der, &lab.ca_pem), lab)
}

#[tokio::test]
async fn certificate_faults_are_served() {
    let (expired, _lab) = served_certificate("expired").await;
    assert!(expired.issued_by_ca);
    assert!((expired.not_after - (now() - 3 * DAY)).abs() < 60);

    let (expiring, _lab) = served_certificate("expiring").await;
    assert!((expiring.not_after - (now() + 10 * DAY)).abs() < 60);
    assert!(expiring.not_before < now());

    let (future, _lab) = served_certificate("not-yet-valid").await;
    assert!((future.not_before - (now() + 2 * DAY)).abs() < 60);

    let (self_signed, lab) = served_certificate("self-signed").await;
    assert!(!self_signed.issued_by_ca);
    assert!(
        self_signed
            .names
            .contains(&"lyncdiscover.contoso.com".to_string())
    );
    // A client that trusts lyncd's CA refuses it.
    let refused = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/"))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn a_certificate_without_the_sip_domain_names_nothing_in_it() {
    let (facts, lab) = served_certificate("without-sip-domain").await;
    assert!(facts.issued_by_ca);
    assert!(
        facts.names.iter().all(|n| !n.ends_with("contoso.com")),
        "{:?}",
        facts.names
    );
    assert!(facts.names.contains(&"localhost".to_string()));
    let refused = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn without_faults_the_certificate_is_valid_and_names_the_tenant() {
    let lab = Lab::start("").await;
    let der = handshake(lab.https(), SslVersion::TLS1_3).await.unwrap();
    let facts = cert_facts(&der, &lab.ca_pem);
    assert!(facts.issued_by_ca);
    assert!(facts.not_before <= now() - 3000, "back-dated by an hour");
    assert!(facts.not_after > now() + 300 * DAY);
    assert!(
        facts
            .names
            .contains(&"lyncdiscoverinternal.contoso.com".to_string())
    );
    let res = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let date = res.headers()["date"].to_str().unwrap();
    assert!(date_offset(date).abs() <= 2, "{date}");
}

// ---- TLS versions -----------------------------------------------------------------------------

/// The handshake failed over the version, as against a real server that lacks it: either the
/// server alerted (`protocol_version` 70; rustls answers a hello without a version it speaks
/// with `handshake_failure` 40 when no cipher suite matches), or an old server answered with a
/// lower version than the client allows, and the client gave up ("unsupported protocol", after
/// which it sends the `protocol_version` alert itself).
#[track_caller]
fn refused_for_version(result: Result<Vec<u8>, String>) {
    let error = result.expect_err("the handshake should fail");
    assert!(
        [
            "SSL alert number 70\"",
            "SSL alert number 40\"",
            "unsupported protocol"
        ]
        .iter()
        .any(|why| error.contains(why)),
        "not a version failure: {error}"
    );
}

#[tokio::test]
async fn tls_1_0_only_endpoints_refuse_modern_clients() {
    let lab = Lab::start("https_tls = \"1.0-only\"\nsip_tls = \"1.0-only\"").await;
    for addr in [lab.https(), lab.running.sip_tls.unwrap()] {
        let der = handshake(addr, SslVersion::TLS1).await.unwrap();
        assert!(cert_facts(&der, &lab.ca_pem).issued_by_ca);
        refused_for_version(handshake(addr, SslVersion::TLS1_2).await);
        refused_for_version(handshake(addr, SslVersion::TLS1_3).await);
    }
    // A rustls client (what `lyncd signin` uses) fails the same way.
    let error = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn tls_1_2_only_and_1_3_only_endpoints() {
    let lab = Lab::start("https_tls = \"1.2-only\"\nsip_tls = \"1.3-only\"").await;
    let https = lab.https();
    assert!(handshake(https, SslVersion::TLS1_2).await.is_ok());
    refused_for_version(handshake(https, SslVersion::TLS1_3).await);
    refused_for_version(handshake(https, SslVersion::TLS1).await);
    let sip = lab.running.sip_tls.unwrap();
    assert!(handshake(sip, SslVersion::TLS1_3).await.is_ok());
    refused_for_version(handshake(sip, SslVersion::TLS1_2).await);
    // HTTP still works over the one version left.
    let res = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

// ---- clock --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_skewed_clock_shows_in_every_date_and_the_certificate_still_works() {
    let lab = Lab::start("clock_skew_secs = 600").await;
    let res = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .expect("the certificate is still valid for a client with the right time");
    assert_eq!(res.status(), 200);
    let date = res.headers().get_all("date").iter().collect::<Vec<_>>();
    assert_eq!(date.len(), 1, "one Date, the server's own: {date:?}");
    let offset = date_offset(date[0].to_str().unwrap());
    assert!((offset - 600).abs() <= 2, "HTTP Date is off by {offset} s");

    let answer = lab.register().await;
    assert!(answer.starts_with("SIP/2.0 401 "), "{answer}");
    let offset = date_offset(sip_header(&answer, "Date").unwrap());
    assert!((offset - 600).abs() <= 2, "SIP Date is off by {offset} s");

    let lab = Lab::start("clock_skew_secs = -600").await;
    let res = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .send()
        .await
        .unwrap();
    let offset = date_offset(res.headers()["date"].to_str().unwrap());
    assert!((offset + 600).abs() <= 2, "HTTP Date is off by {offset} s");
}

// ---- SIP ----------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_certprov_refuses_connections() {
    let lab = Lab::start("certprov_unreachable = true").await;
    let answer = lab.register().await;
    let offer = sip_header(&answer, "WWW-Authenticate").unwrap();
    let sts = offer
        .split("sts-uri=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let url = url::Url::parse(sts).unwrap();
    assert_eq!(url.host_str(), Some("lyncweb.contoso.com"));
    assert_eq!(url.path(), "/CertProv/CertProvisioningService.svc");
    let port = url.port().unwrap();
    assert_ne!(port, lab.https().port());
    let error = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn an_unavailable_pool_answers_503_with_retry_after() {
    let lab = Lab::start("pool_unavailable = true\nretry_after_secs = 120").await;
    let answer = lab.register().await;
    assert!(
        answer.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert_eq!(sip_header(&answer, "Retry-After"), Some("120"));
    assert_eq!(
        sip_header(&answer, "ms-diagnostics"),
        Some("1;reason=\"Service unavailable\";source=\"lyncfe.contoso.com\"")
    );
    assert_eq!(sip_header(&answer, "CSeq"), Some("1 REGISTER"));
    assert!(sip_header(&answer, "Date").is_some());
}

// ---- web services -------------------------------------------------------------------------------

#[tokio::test]
async fn web_ticket_faults() {
    let lab = Lab::start("web_ticket = \"ntlm-only\"").await;
    let wsfed = lab.url(
        "lyncweb.contoso.com",
        "/WebTicket/WebTicketService.svc/WsFedBearer",
    );
    let res = lab
        .http()
        .post(&wsfed)
        .body("<s:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let offers: Vec<&str> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(offers, ["NTLM", "Negotiate"]);

    let lab = Lab::start("web_ticket = \"error\"").await;
    let res = lab
        .http()
        .post(lab.url(
            "lyncweb.contoso.com",
            "/WebTicket/WebTicketService.svc/WsFedBearer",
        ))
        .body("<s:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let diag = res.headers()["x-ms-diagnostics"].to_str().unwrap();
    assert!(diag.starts_with("28001;"), "{diag}");
    assert!(res.text().await.unwrap().contains("Fault"));
}

#[tokio::test]
async fn the_password_grant_can_be_refused() {
    let lab = Lab::start("oauth_password_grant = false").await;
    let res = lab
        .http()
        .post(lab.url("lyncweb.contoso.com", "/WebTicket/oauthtoken"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=alice@contoso.com&password={PASSWORD}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let diag = res.headers()["x-ms-diagnostics"].to_str().unwrap();
    assert!(diag.starts_with("28029;"), "{diag}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn autodiscover_can_answer_a_portal_page() {
    let lab = Lab::start("autodiscover = \"html\"").await;
    let res = lab
        .http()
        .get(lab.url("lyncdiscover.contoso.com", "/?sipuri=alice@contoso.com"))
        .header(
            "accept",
            "application/vnd.microsoft.rtc.autodiscover+xml;v=1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("<html>"));
}

#[tokio::test]
async fn https_connections_can_be_reset() {
    let lab = Lab::start("reset_https = true").await;
    let mut tcp = TcpStream::connect(lab.https()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    // SIP is not affected.
    assert!(lab.register().await.starts_with("SIP/2.0 401 "));
}
