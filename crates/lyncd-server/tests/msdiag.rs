//! The registrar's refusals as a client sees them over a real TLS connection: Microsoft's
//! diagnostic codes in `ms-diagnostics` / `ms-diagnostics-public`, a `Date` on every answer,
//! remote-access policy decided by the client's address, and nothing stored changed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::BytesMut;
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_diag::msdiag::{self, HeaderKind};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Running, ServerConfig, SystemClock};
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::{Decoder, Frame, Limits, Message};
use lyncd_store::{NewUser, Store, UserFlags};
use lyncd_tlsdsk::ClientContext;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POOL: &str = "lyncfe.contoso.com";

/// A user certificate (PEM) and its key, as Certificate Provisioning would issue them.
struct Credential {
    cert_pem: String,
    key_pem: String,
}

struct Lab {
    _dir: tempfile::TempDir,
    running: Running,
    store: Store,
    ca_pem: String,
    /// alice (enabled), bob (not enabled for SIP), carol (no remote access), dave (not stored).
    creds: Vec<(&'static str, Credential)>,
}

impl Lab {
    /// `internal`: the `[sip] internal_networks` of the server (`None`: the default, everything).
    async fn start(internal: Option<&[&str]>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        let hash = lyncd_store::password::hash_password("pw", &[7u8; 16]).unwrap();
        for user in ["alice", "bob", "carol"] {
            store
                .add_user(
                    NewUser {
                        address: address(user),
                        password_hash: hash.clone(),
                        display_name: None,
                        object_id: format!("oid-{user}"),
                    },
                    now,
                )
                .await
                .unwrap();
        }
        store
            .set_user_flags(
                &address("bob"),
                UserFlags {
                    sip_enabled: Some(false),
                    ..UserFlags::default()
                },
                now,
            )
            .await
            .unwrap();
        store
            .set_user_flags(
                &address("carol"),
                UserFlags {
                    remote_access: Some(false),
                    ..UserFlags::default()
                },
                now,
            )
            .await
            .unwrap();
        let keys = ServiceKeys::load_or_create(&store, now, &mut OsEntropy)
            .await
            .unwrap();
        let creds = ["alice", "bob", "carol", "dave"]
            .into_iter()
            .map(|user| {
                let (key, csr) = lyncd_pki::new_user_key_and_csr(&address(user)).unwrap();
                let cert = keys
                    .ca
                    .issue_user_cert(&csr, &address(user), now, time::Duration::hours(8))
                    .unwrap();
                let credential = Credential {
                    cert_pem: cert.pem,
                    key_pem: key.expose().clone(),
                };
                (user, credential)
            })
            .collect();
        let ca_pem = keys.ca.cert_pem().to_string();
        let mut config = ServerConfig::default();
        config.names.web = "lyncweb.contoso.com".into();
        config.names.pool = POOL.into();
        config.names.idp = "login.contoso.com".into();
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.listen.https = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        config.listen.http = None;
        config.listen.sip_tls = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        if let Some(networks) = internal {
            config.sip.internal_networks = networks.iter().map(|n| n.parse().unwrap()).collect();
        }
        let app = Arc::new(App::new(config, store.clone(), keys, Arc::new(SystemClock)));
        let running = lyncd_server::start(app).await.unwrap();
        Lab {
            _dir: dir,
            running,
            store,
            ca_pem,
            creds,
        }
    }

    fn credential(&self, user: &str) -> &Credential {
        &self.creds.iter().find(|(u, _)| *u == user).unwrap().1
    }

    async fn connect(&self) -> Sip {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(pem_to_der(
                &self.ca_pem,
            )))
            .unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.running.sip_tls.unwrap())
            .await
            .unwrap();
        let io = connector
            .connect(ServerName::try_from(POOL).unwrap(), tcp)
            .await
            .unwrap();
        Sip {
            io,
            buf: BytesMut::new(),
            decoder: Decoder::new(Limits::default()),
            cseq: 0,
        }
    }

    /// Everything a refused sign-in could have changed.
    async fn snapshot(&self) -> String {
        let mut out = String::new();
        for u in self.store.users(None).await.unwrap() {
            let certs = self.store.certificates_for(&u.address).await.unwrap().len();
            out.push_str(&format!("{u:?} {certs}\n"));
        }
        out
    }

    async fn stop(self) {
        self.running.shutdown().await;
    }
}

fn address(user: &str) -> SipAddress {
    SipAddress::parse(&format!("{user}@contoso.com")).unwrap()
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap()
}

/// One SIP-over-TLS connection speaking like pidgin-sipe.
struct Sip {
    io: tokio_rustls::client::TlsStream<TcpStream>,
    buf: BytesMut,
    decoder: Decoder,
    cseq: u32,
}

impl Sip {
    async fn register(&mut self, from: &str, authorization: Option<&str>) -> Message {
        self.cseq += 1;
        let cseq = self.cseq;
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "REGISTER sip:contoso.com SIP/2.0\r\n\
             Via: SIP/2.0/tls 127.0.0.1:5555;branch=z9hG4bK{cseq:020}\r\n\
             From: <sip:{from}@contoso.com>;tag={cseq}1;epid=c97532c1946f\r\n\
             To: <sip:{from}@contoso.com>\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Call-ID: 705Ag16DCa41EFi6F0Bm07E8tAC50b71DFxB74Fx\r\n\
             Contact: <sip:127.0.0.1:5555;transport=tls>\r\n\
             {auth}Content-Length: 0\r\n\r\n"
        );
        self.io.write_all(request.as_bytes()).await.unwrap();
        self.read().await
    }

    async fn read(&mut self) -> Message {
        loop {
            if let Some(Frame::Message(m)) = self.decoder.decode(&mut self.buf).unwrap() {
                return m;
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut chunk))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            assert!(n > 0, "the registrar closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// REGISTER as `from` with `credential`: the challenge, then both TLS-DSK legs. Returns the
    /// answer to the second leg, where the registrar decides whether the user may sign in (a
    /// 401 carrying S2 when it may).
    async fn sign_in(&mut self, from: &str, credential: &Credential) -> Message {
        let challenge = self.register(from, None).await;
        assert_eq!(challenge.status(), Some(401), "{challenge:?}");
        assert_dated(&challenge);
        let client = ClientContext::new(&credential.cert_pem, &credential.key_pem, None).unwrap();
        let (hello, c1) = client.connect(POOL, UtcTime::now_utc()).unwrap();
        let s1 = self.register(from, Some(&leg(None, &c1))).await;
        assert_eq!(s1.status(), Some(401), "{s1:?}");
        assert_dated(&s1);
        let s1_auth = AuthHeader::parse(s1.header("WWW-Authenticate").unwrap()).unwrap();
        let opaque = s1_auth.get("opaque").unwrap().to_string();
        let s1_data = B64.decode(s1_auth.get("gssapi-data").unwrap()).unwrap();
        let (_finish, c2) = hello.step(&s1_data).unwrap();
        let answer = self.register(from, Some(&leg(Some(&opaque), &c2))).await;
        assert_dated(&answer);
        answer
    }
}

/// The `Authorization` of a handshake leg.
fn leg(opaque: Option<&str>, data: &[u8]) -> String {
    let mut p = AuthParams::new("TLS-DSK").quoted("qop", "auth");
    if let Some(o) = opaque {
        p = p.quoted("opaque", o);
    }
    p.quoted("realm", "SIP Communications Service")
        .quoted("targetname", POOL)
        .quoted("gssapi-data", &B64.encode(data))
        .token("version", "4")
        .render()
}

/// Lync's servers date every answer; the troubleshooter reads clock skew from it.
fn assert_dated(m: &Message) {
    let date = m.header("Date").unwrap_or_else(|| panic!("no Date: {m:?}"));
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
}

/// The one diagnostic of a refusal, with the table's reason and this pool as its source.
fn diagnostic(m: &Message) -> msdiag::Diagnostic {
    let found = msdiag::from_headers(
        ["ms-diagnostics", "ms-diagnostics-public"]
            .into_iter()
            .flat_map(|name| m.header_all(name).map(move |v| (name, v))),
    );
    assert_eq!(found.len(), 1, "{m:?}");
    let d = found.into_iter().next().unwrap();
    assert_eq!(d.source.as_deref(), Some(POOL));
    assert_eq!(
        d.reason.as_deref(),
        Some(d.known().expect("a known code").reason)
    );
    d
}

#[tokio::test]
async fn a_user_not_enabled_for_sip_gets_404_with_4005() {
    let lab = Lab::start(None).await;
    let before = lab.snapshot().await;
    let mut sip = lab.connect().await;
    let r = sip.sign_in("bob", lab.credential("bob")).await;
    assert_eq!(r.status(), Some(404), "{r:?}");
    assert_eq!(r.reason(), Some("Not Found"));
    assert_eq!(
        r.header("ms-diagnostics"),
        Some(
            "4005;reason=\"Destination URI either not enabled for SIP or does not exist\";source=\"lyncfe.contoso.com\""
        )
    );
    assert!(r.header("ms-diagnostics-public").is_none());
    assert!(r.header("Warning").unwrap().contains("not enabled for SIP"));

    // A user the store does not know: 1003, after the certificate proved who is asking.
    let r = sip.sign_in("dave", lab.credential("dave")).await;
    assert_eq!(r.status(), Some(404), "{r:?}");
    assert_eq!(diagnostic(&r).code, 1003);

    // The connection still works for others, and nothing stored changed.
    let r = sip.sign_in("alice", lab.credential("alice")).await;
    assert_eq!(r.status(), Some(401), "S2 for alice: {r:?}");
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .contains("gssapi-data")
    );
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}

#[tokio::test]
async fn remote_access_is_decided_by_the_clients_network() {
    // Loopback is not in 10.0.0.0/8: the test client is outside.
    let lab = Lab::start(Some(&["10.0.0.0/8", "fd00::/8"])).await;
    let before = lab.snapshot().await;
    let mut sip = lab.connect().await;
    let r = sip.sign_in("carol", lab.credential("carol")).await;
    assert_eq!(r.status(), Some(403), "{r:?}");
    let d = diagnostic(&r);
    assert_eq!(d.code, 4003);
    assert_eq!(d.header, HeaderKind::MsDiagnosticsPublic);
    assert!(r.header("ms-diagnostics").is_none(), "{r:?}");
    // alice has remote access.
    let r = sip.sign_in("alice", lab.credential("alice")).await;
    assert_eq!(r.status(), Some(401), "{r:?}");
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;

    // With the default configuration every client is internal: carol signs in.
    let lab = Lab::start(None).await;
    let mut sip = lab.connect().await;
    let r = sip.sign_in("carol", lab.credential("carol")).await;
    assert_eq!(r.status(), Some(401), "S2 for carol: {r:?}");
    lab.stop().await;

    // Loopback listed as internal: the same.
    let lab = Lab::start(Some(&["127.0.0.0/8"])).await;
    let mut sip = lab.connect().await;
    let r = sip.sign_in("carol", lab.credential("carol")).await;
    assert_eq!(r.status(), Some(401), "S2 for carol: {r:?}");
    lab.stop().await;
}

#[tokio::test]
async fn another_users_certificate_gets_403_with_public_4004() {
    let lab = Lab::start(None).await;
    let before = lab.snapshot().await;
    let mut sip = lab.connect().await;
    let r = sip.sign_in("alice", lab.credential("carol")).await;
    assert_eq!(r.status(), Some(403), "{r:?}");
    let d = diagnostic(&r);
    assert_eq!(d.code, 4004);
    assert_eq!(d.header, HeaderKind::MsDiagnosticsPublic);
    assert_eq!(
        d.reason.as_deref(),
        Some("Credentials provided are not authorized to act as specified from URI")
    );
    assert!(r.header("Warning").unwrap().contains("carol@contoso.com"));
    assert_eq!(lab.snapshot().await, before);
    lab.stop().await;
}
