//! The SIP listeners over real sockets: framing errors are refused with a SIP status and close the
//! connection, nothing stored changes, and the server keeps serving other connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Running, ServerConfig, SystemClock};
use lyncd_store::{NewUser, Store};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

struct Lab {
    _dir: tempfile::TempDir,
    running: Running,
    store: Store,
    ca_pem: String,
}

impl Lab {
    async fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        let hash = lyncd_store::password::hash_password("pw", &[7u8; 16]).unwrap();
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
        let mut config = ServerConfig::default();
        config.names.web = "lyncweb.contoso.com".into();
        config.names.pool = "lyncfe.contoso.com".into();
        config.names.idp = "login.contoso.com".into();
        // The published URLs (sts-uri) carry the HTTPS port: bind once to learn a free one.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.listen.https = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        config.listen.http = None;
        config.listen.sip_tls = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        config.listen.sip_tcp = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let app = Arc::new(App::new(config, store.clone(), keys, Arc::new(SystemClock)));
        let running = lyncd_server::start(app).await.unwrap();
        Lab {
            _dir: dir,
            running,
            store,
            ca_pem,
        }
    }

    async fn tcp(&self) -> TcpStream {
        TcpStream::connect(self.running.sip_tcp.unwrap())
            .await
            .unwrap()
    }

    async fn tls(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls_pki_types::CertificateDer::from(pem_to_der(&self.ca_pem));
        roots.add(der).unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.running.sip_tls.unwrap())
            .await
            .unwrap();
        connector
            .connect(ServerName::try_from("lyncfe.contoso.com").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// Everything a refused request could have changed.
    async fn snapshot(&self) -> String {
        let alice = SipAddress::parse("alice@contoso.com").unwrap();
        format!(
            "{:?}|{:?}",
            self.store
                .users(None)
                .await
                .unwrap()
                .iter()
                .map(|u| (u.address.to_string(), u.enabled, u.updated_at))
                .collect::<Vec<_>>(),
            self.store
                .certificates_for(&alice)
                .await
                .unwrap()
                .iter()
                .map(|c| c.serial_hex.clone())
                .collect::<Vec<_>>()
        )
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn register(cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/tls 127.0.0.1:5555;branch=z9hG4bK{cseq:020}\r\nFrom: <sip:alice@contoso.com>;tag={cseq}1;epid=c97532c1946f\r\nTo: <sip:alice@contoso.com>\r\nCSeq: {cseq} REGISTER\r\nCall-ID: 705Ag16DCa41EFi6F0Bm07E8tAC50b71DFxB74Fx\r\nContact: <sip:127.0.0.1:5555;transport=tls>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// Reads until the peer closes or `deadline` passes; returns what arrived and whether it closed.
async fn read_all<S: AsyncRead + Unpin>(io: &mut S, deadline: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(deadline, io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) -> (String, bool) {
    io.write_all(bytes).await.unwrap();
    read_all(io, Duration::from_millis(700)).await
}

/// A new connection still gets the TLS-DSK challenge.
async fn still_serving(lab: &Lab) {
    let mut io = lab.tls().await;
    io.write_all(register(1, "").as_bytes()).await.unwrap();
    let (answer, _) = read_all(&mut io, Duration::from_millis(700)).await;
    assert!(
        answer.starts_with("SIP/2.0 401 Unauthorized\r\n"),
        "{answer}"
    );
    let port = lab.running.https.port();
    let offer = format!(
        "WWW-Authenticate: TLS-DSK realm=\"SIP Communications Service\", targetname=\"lyncfe.contoso.com\", version=4, sts-uri=\"https://lyncweb.contoso.com:{port}/CertProv/CertProvisioningService.svc\"\r\n"
    );
    assert!(answer.contains(&offer), "{answer}");
}

#[tokio::test]
async fn challenge_over_tls_and_tcp_with_keepalives() {
    let lab = Lab::start().await;
    still_serving(&lab).await;
    let mut io = lab.tcp().await;
    let mut bytes = b"\r\n\r\n".to_vec();
    bytes.extend_from_slice(register(1, "").as_bytes());
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(register(2, "").as_bytes());
    let (answer, closed) = exchange(&mut io, &bytes).await;
    assert!(!closed, "keep-alives do not close the connection");
    assert_eq!(
        answer.matches("SIP/2.0 401 Unauthorized").count(),
        2,
        "{answer}"
    );
    assert!(answer.contains("CSeq: 2 REGISTER"));
}

#[tokio::test]
async fn framing_errors_are_refused_and_close_the_connection() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let big_header = format!("X-Filler: {}\r\n", "a".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"\x16\x03\x01 this is not SIP\r\n\r\n".to_vec(),
            "SIP/2.0 400 Bad Request",
        ),
        (
            "duplicate Content-Length",
            register(1, "Content-Length: 0\r\n").into_bytes(),
            "SIP/2.0 400 Bad Request",
        ),
        (
            "non-numeric Content-Length",
            register(1, "")
                .replace("Content-Length: 0", "Content-Length: zero")
                .into_bytes(),
            "SIP/2.0 400 Bad Request",
        ),
        (
            // Says 0, but a body follows: the body is read as the next message, which is garbage.
            "lying (short) Content-Length",
            format!("{}<xml>body</xml>\r\n\r\n", register(1, "")).into_bytes(),
            "SIP/2.0 400 Bad Request",
        ),
        (
            "headers over 64 KiB",
            register(1, &big_header).into_bytes(),
            "SIP/2.0 513 Message Too Large",
        ),
    ];
    for (what, bytes, status) in cases {
        let mut io = lab.tcp().await;
        let (answer, closed) = exchange(&mut io, &bytes).await;
        assert!(answer.contains(status), "{what}: {answer}");
        assert!(
            answer.contains("Warning: 399 lyncfe.contoso.com \""),
            "{what}: {answer}"
        );
        assert!(
            closed,
            "{what}: framing is lost, so the connection is closed"
        );
        assert_eq!(
            lab.snapshot().await,
            before,
            "{what}: nothing stored changed"
        );
    }
    // Truncated: the client gives up half-way; the server just drops the connection.
    let mut io = lab.tcp().await;
    io.write_all(&register(1, "").as_bytes()[..40])
        .await
        .unwrap();
    drop(io);
    // Over TLS as well.
    let mut io = lab.tls().await;
    let (answer, closed) = exchange(&mut io, b"GARBAGE\r\n\r\n").await;
    assert!(answer.starts_with("SIP/2.0 400 Bad Request"), "{answer}");
    assert!(closed);
    assert_eq!(lab.snapshot().await, before);
    still_serving(&lab).await;
}

#[tokio::test]
async fn bad_handshake_data_is_refused_with_403() {
    let lab = Lab::start().await;
    let before = lab.snapshot().await;
    let mut io = lab.tls().await;
    let auth = "Authorization: TLS-DSK qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"lyncfe.contoso.com\", gssapi-data=\"!!not base64!!\", version=4\r\n";
    let (answer, closed) = exchange(&mut io, register(1, auth).as_bytes()).await;
    assert!(answer.starts_with("SIP/2.0 403 Forbidden\r\n"), "{answer}");
    assert!(
        answer.contains("gssapi-data is not valid base64"),
        "{answer}"
    );
    // The handshake did not complete: Microsoft's 1000 "Final handshake failed".
    assert!(
        answer.contains("ms-diagnostics: 1000;reason=\"Final handshake failed\";"),
        "{answer}"
    );
    assert!(!closed, "a refused request does not cost the connection");
    // A TLS record that is not a ClientHello's worth of TLS.
    let auth = "Authorization: TLS-DSK qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"lyncfe.contoso.com\", gssapi-data=\"FgMBAAUBanVuaw==\", version=4\r\n";
    let (answer, _) = exchange(&mut io, register(2, auth).as_bytes()).await;
    assert!(answer.starts_with("SIP/2.0 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("TLS-DSK handshake failed"), "{answer}");
    assert_eq!(lab.snapshot().await, before);
    still_serving(&lab).await;
}
