//! What a load balancer and an operator rely on: `/healthz`, `/readyz` on every listener, the
//! admin listener's `/registrations`, 503 + `Retry-After` from the services while the database
//! is gone, and a shutdown that turns readiness off first and still finishes what is in flight.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_server::keys::ServiceKeys;
use lyncd_server::{App, Running, ServerConfig, SystemClock};
use lyncd_store::{NewUser, Registration, Store};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NODE: &str = "node-a";

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    app: Arc<App>,
    running: Option<Running>,
    https: SocketAddr,
    http: SocketAddr,
    admin: SocketAddr,
    ca_der: Vec<u8>,
}

impl Node {
    async fn start(drain_secs: u32) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let now = UtcTime::now_utc();
        for addr in ["alice@contoso.com", "bob@contoso.com"] {
            let hash = lyncd_store::password::hash_password("pw", &[7u8; 16]).unwrap();
            store
                .add_user(
                    NewUser {
                        address: SipAddress::parse(addr).unwrap(),
                        password_hash: hash,
                        display_name: None,
                        object_id: format!("oid-{addr}"),
                    },
                    now,
                )
                .await
                .unwrap();
        }
        let keys = ServiceKeys::load_or_create(&store, now, &mut OsEntropy)
            .await
            .unwrap();
        let ca_der = keys.ca.cert_der().to_vec();
        let mut config = ServerConfig::default();
        config.names.web = "lyncweb.contoso.com".into();
        config.names.pool = "lyncfe.contoso.com".into();
        config.names.idp = "login.contoso.com".into();
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.listen.https = any;
        config.listen.http = Some(any);
        config.listen.sip_tls = None;
        config.listen.admin = Some(any);
        config.node.name = Some(NODE.into());
        config.shutdown.drain_secs = drain_secs;
        let app = Arc::new(App::new(config, store.clone(), keys, Arc::new(SystemClock)));
        let running = lyncd_server::start(app.clone()).await.unwrap();
        Node {
            _dir: dir,
            store,
            app,
            https: running.https,
            http: running.http.unwrap(),
            admin: running.admin.unwrap(),
            running: Some(running),
            ca_der,
        }
    }

    /// A new client (so a new connection) per request: what a load balancer's probe does.
    fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_der(&self.ca_der).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .resolve(
                "lyncweb.contoso.com",
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// The same path on the HTTPS, plain-HTTP and admin listeners.
    fn urls(&self, path: &str) -> [String; 3] {
        [
            format!("https://lyncweb.contoso.com:{}{path}", self.https.port()),
            format!("http://127.0.0.1:{}{path}", self.http.port()),
            self.admin(path),
        ]
    }

    fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin.port())
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self.client().get(url).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    async fn get_json(&self, url: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let (status, headers, body) = self.get(url).await;
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
        (status, headers, json)
    }

    /// A TLS connection to the HTTPS listener, for requests written by hand.
    async fn tls(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.https).await.unwrap();
        connector
            .connect(ServerName::try_from("lyncweb.contoso.com").unwrap(), tcp)
            .await
            .unwrap()
    }
}

fn alice() -> SipAddress {
    SipAddress::parse("alice@contoso.com").unwrap()
}

#[tokio::test]
async fn ready_while_the_database_answers_and_503_once_it_is_gone() {
    let node = Node::start(0).await;
    let schema = node.store.schema_version().await.unwrap();
    assert!(schema >= 4, "schema {schema}");

    for url in node.urls("/healthz") {
        let (status, _, body) = node.get(&url).await;
        assert_eq!((status, body.as_str()), (200, "ok\n"), "{url}");
    }
    for url in node.urls("/readyz") {
        let (status, _, json) = node.get_json(&url).await;
        assert_eq!(status, 200, "{url}: {json}");
        assert_eq!(
            json,
            serde_json::json!({"ready": true, "node": NODE, "database": "sqlite", "schema": schema}),
            "{url}"
        );
    }
    // HEAD, as some load balancers probe: the status without a body.
    let head = node
        .client()
        .head(node.admin("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.text().await.unwrap().is_empty());
    // Exact paths only.
    let (status, _, _) = node.get(&node.admin("/readyz/x")).await;
    assert_eq!(status, 404);

    // The database goes away (a closed pool refuses every query, as an unreachable server would).
    node.store.close().await;
    for url in node.urls("/readyz") {
        let (status, headers, json) = node.get_json(&url).await;
        assert_eq!(status, 503, "{url}: {json}");
        assert!(headers.contains_key("retry-after"), "{url}: {headers:?}");
        assert_eq!(json["ready"], false, "{json}");
        assert_eq!(json["node"], NODE, "{json}");
        let reason = json["reason"].as_str().unwrap();
        assert!(reason.starts_with("database unavailable: "), "{reason}");
    }
    // Still alive: restarting the process would not bring the database back.
    for url in node.urls("/healthz") {
        assert_eq!(node.get(&url).await.0, 200, "{url}");
    }

    // The services answer 503 + Retry-After: 5 in their own shape, naming the database.
    let (status, headers, body) = node
        .get(&format!(
            "http://127.0.0.1:{}/?sipuri=alice@contoso.com",
            node.http.port()
        ))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(body.contains("database is unavailable"), "{body}");

    let oauth = node
        .client()
        .post(format!(
            "https://lyncweb.contoso.com:{}/WebTicket/oauthtoken",
            node.https.port()
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=alice@contoso.com&password=pw")
        .send()
        .await
        .unwrap();
    assert_eq!(oauth.status().as_u16(), 503);
    assert_eq!(oauth.headers()["retry-after"], "5");
    let json: serde_json::Value = oauth.json().await.unwrap();
    assert_eq!(json["error"], "server_error", "{json}");
    assert!(
        json["error_description"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{json}"
    );

    // The SOAP services: a Server fault with X-Ms-diagnostics 28001, as 503.
    let reply = lyncd_server::services::refuse_unless_enabled(&node.app, "webticket", &alice())
        .await
        .expect("a refusal while the database is gone");
    assert_eq!(reply.status.as_u16(), 503);
    let header = |name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("retry-after").as_deref(), Some("5"));
    assert!(
        header("x-ms-diagnostics").unwrap().starts_with("28001;"),
        "{reply:?}"
    );
    let body = String::from_utf8(reply.body.clone()).unwrap();
    assert!(
        body.contains("Fault") && body.contains("database is unavailable"),
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_listener_lists_registrations_of_every_node() {
    let node = Node::start(0).await;
    let (status, _, json) = node.get_json(&node.admin("/registrations")).await;
    assert_eq!((status, json), (200, serde_json::json!([])));

    let now = UtcTime::now_utc();
    let registration = |epid: &str, node: &str, expires_at: UtcTime| Registration {
        address: alice(),
        epid: epid.into(),
        instance: Some("{2a0b1c1d-0000-4000-8000-000000000001}".into()),
        contact: "<sip:10.0.0.7:51234;transport=tls;ms-opaque=d3470f2e1d>".into(),
        gruu: "sip:alice@contoso.com;gruu;opaque=app:conf".into(),
        node: node.into(),
        registered_at: now,
        expires_at,
    };
    // One on another node (the list is cluster-wide), one that has expired.
    node.store
        .upsert_registration(&registration(
            "a1b2c3d4e5",
            "node-b",
            now + time::Duration::hours(2),
        ))
        .await
        .unwrap();
    node.store
        .upsert_registration(&registration(
            "ffffffff01",
            NODE,
            now - time::Duration::seconds(5),
        ))
        .await
        .unwrap();

    let (status, _, json) = node.get_json(&node.admin("/registrations")).await;
    assert_eq!(status, 200, "{json}");
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 1, "{json}");
    assert_eq!(list[0]["address"], "alice@contoso.com");
    assert_eq!(list[0]["epid"], "a1b2c3d4e5");
    assert_eq!(list[0]["node"], "node-b");
    assert_eq!(
        list[0]["expires_at"],
        lyncd_core::format_iso(now + time::Duration::hours(2))
    );

    let (_, _, json) = node
        .get_json(&node.admin("/registrations?user=alice@contoso.com"))
        .await;
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    let (_, _, json) = node
        .get_json(&node.admin("/registrations?user=bob@contoso.com"))
        .await;
    assert_eq!(json, serde_json::json!([]));
    let (status, _, body) = node
        .get(&node.admin("/registrations?user=not%20an%20address"))
        .await;
    assert_eq!(status, 400, "{body}");

    // Who is signed in is for internal addresses only: not on the public listeners.
    let [https, http, _] = node.urls("/registrations");
    for url in [https, http] {
        let (status, _, body) = node.get(&url).await;
        assert_eq!(status, 404, "{url}: {body}");
    }
    let (status, _, _) = node
        .get(&node.admin("/webticket/webticketservice.svc/mex"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn shutdown_turns_readiness_off_first_and_finishes_requests_in_flight() {
    let mut node = Node::start(2).await;
    let (status, _, _) = node.get(&node.admin("/readyz")).await;
    assert_eq!(status, 200);

    // A request in flight: the head and half of a body.
    let body = b"<soap:Envelope>not what the identity provider wants</soap:Envelope>";
    let (first, rest) = body.split_at(body.len() / 2);
    let mut tls = node.tls().await;
    let head = format!(
        "POST /RST2.srf HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let https = node.https;
    let running = node.running.take().unwrap();
    let shutdown = tokio::spawn(running.shutdown());

    // Readiness is off at once, on a new connection, while the node still serves (drain).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let (status, headers, json) = loop {
        let answer = node.get_json(&node.admin("/readyz")).await;
        if answer.0 == 503 || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{json}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(json["reason"], "shutting down", "{json}");
    assert_eq!(node.get(&node.admin("/healthz")).await.0, 200);

    // Once the drain is over the listeners close...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(https).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after the drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the request in flight"
    );

    // ...and the request in flight still gets its whole answer.
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer))
        .await
        .expect("the answer within 5 s")
        .expect("a clean end of the connection, not a reset");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect(&answer);
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect(head);
    assert!(length > 0, "{head}");
    assert_eq!(body.len(), length, "{answer}");
    assert!(body.contains("Fault"), "{body}");

    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown ends once the request in flight is answered")
        .unwrap();
}
