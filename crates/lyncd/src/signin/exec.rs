//! The executor: performs the I/O the sans-IO sign-in core asks for (name lookups, HTTP, key
//! generation, SIP messages on a persistent TLS connection) and feeds the results back. It
//! makes no protocol decision.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use lyncd_client::{
    Action, Completion, HttpRequest, HttpResponse, Method, SignIn, Step, TraceEvent, TransportError,
};
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
use lyncd_diag::har::{Direction, DnsRecord, HttpExchange, HttpResponseRecord, SipRecord};

use super::dns::Dns;
use super::probe::{self, ProbeTrust};
use super::record::Recorder;
use lyncd_sip::{Decoder, Frame, Limits};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How names are looked up: the system resolver (which also reads /etc/hosts), except for names
/// with an override.
pub struct Executor {
    http: reqwest::Client,
    overrides: HashMap<String, IpAddr>,
    /// When set, only overridden names resolve (the demo's private world).
    overrides_only: bool,
    /// TLS for SIP: the --ca-file CA, or the platform's verifier.
    sip_tls: TlsConnector,
    timeout: Duration,
    dns: Dns,
    probe_trust: Arc<ProbeTrust>,
    recorder: Arc<Recorder>,
    /// One persistent connection per (host, port, tls): the whole registration rides on it
    /// (TLS-DSK security associations are bound to their connection, sip.md §5.4).
    sip: Mutex<HashMap<(String, u16, bool), SipConnection>>,
}

/// An open SIP connection and its framing state.
struct SipConnection {
    stream: SipStream,
    buf: BytesMut,
    decoder: Decoder,
}

enum SipStream {
    Tls(Box<TlsStream<TcpStream>>),
    Tcp(TcpStream),
}

impl SipStream {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            SipStream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            SipStream::Tcp(s) => s.write_all(data).await,
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            SipStream::Tls(s) => s.read_buf(buf).await,
            SipStream::Tcp(s) => s.read_buf(buf).await,
        }
    }
}

pub struct ExecutorOptions {
    pub ca_pem: Option<Vec<u8>>,
    pub overrides: HashMap<String, IpAddr>,
    pub overrides_only: bool,
    pub timeout: Duration,
    /// Ask this name server instead of the system's (`--dns`).
    pub dns_server: Option<SocketAddr>,
    /// Append TLS secrets to $SSLKEYLOGFILE (for Wireshark), as curl and browsers do.
    pub keylog: bool,
    pub recorder: Arc<Recorder>,
}

impl Executor {
    pub fn new(opts: ExecutorOptions) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            // The client follows Autodiscover redirects itself, as Lync clients do: HTTP 3xx is
            // an answer to report, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .user_agent(concat!("lyncd/", env!("CARGO_PKG_VERSION")))
            .http1_only();
        if let Some(pem) = &opts.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).context("reading the --ca-file PEM")?;
            anyhow::ensure!(!certs.is_empty(), "the CA file holds no certificate");
            builder = builder.tls_certs_only(certs);
        }
        for (host, ip) in &opts.overrides {
            builder = builder.resolve(host, SocketAddr::new(*ip, 0));
        }
        let dns = Dns::new(opts.dns_server, opts.timeout)?;
        if opts.dns_server.is_some() {
            builder = builder.dns_resolver(Arc::new(dns.clone()));
        }
        if opts.keylog {
            builder = builder.tls_sslkeylogfile(true);
        }
        Ok(Executor {
            http: builder.build().context("building the HTTP client")?,
            overrides: opts.overrides,
            overrides_only: opts.overrides_only,
            sip_tls: sip_tls(opts.ca_pem.as_deref(), opts.keylog)?,
            timeout: opts.timeout,
            sip: Mutex::new(HashMap::new()),
            dns,
            probe_trust: Arc::new(ProbeTrust::new(opts.ca_pem)),
            recorder: opts.recorder,
        })
    }

    /// Runs the sign-in to its end, handing every trace event to `on_trace` as it happens.
    /// With `progress`, the step in flight is shown on stderr (a terminal) and erased when
    /// it completes.
    pub async fn drive(
        &self,
        signin: &mut SignIn,
        progress: bool,
        mut on_trace: impl FnMut(&TraceEvent),
    ) {
        loop {
            while let Some(ev) = signin.poll_trace() {
                if progress {
                    eprint!("\r\x1b[K");
                }
                on_trace(&ev);
            }
            if signin.outcome().is_some() {
                return;
            }
            let Some(action) = signin.poll_action(UtcTime::now_utc()) else {
                return;
            };
            let step = signin.current_step().map_or("", |s: Step| s.name());
            if progress && let Some(s) = signin.current_step() {
                eprint!("\r\x1b[K… {}", s.title());
            }
            let (id, completion) = match action {
                Action::Resolve { id, host } => (id, self.resolve(step, &host).await),
                Action::ResolveSrv { id, name } => (id, self.resolve_srv(step, &name).await),
                Action::TlsProbe { id, host, port } => (id, self.probe(&host, port).await),
                Action::Http { id, request } => (id, self.http(step, request).await),
                Action::GenerateKey { id, address } => (id, generate_key(address).await),
                Action::Sip {
                    id,
                    host,
                    port,
                    tls,
                    message,
                } => (id, self.sip(step, &host, port, tls, &message).await),
            };
            signin.handle(UtcTime::now_utc(), id, completion, &mut OsEntropy);
        }
    }

    /// The addresses of `host`: an override, else the resolver.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = self.overrides.get(&host.to_ascii_lowercase()) {
            return Ok(vec![*ip]);
        }
        if self.overrides_only {
            return Err(format!("{host}: NXDOMAIN (no such name)"));
        }
        self.dns.lookup_ip(host).await
    }

    async fn resolve(&self, step: &str, host: &str) -> Completion {
        let started = UtcTime::now_utc();
        let t = std::time::Instant::now();
        let result = self.addresses(host).await;
        self.recorder.dns(DnsRecord {
            step: step.to_string(),
            time: started,
            name: host.to_string(),
            rtype: "A".into(),
            answers: result
                .as_ref()
                .map(|ips| ips.iter().map(|i| i.to_string()).collect())
                .unwrap_or_default(),
            error: result.as_ref().err().cloned(),
            elapsed_ms: t.elapsed().as_secs_f64() * 1000.0,
        });
        match result {
            Ok(ips) => Completion::Resolved(ips),
            Err(e) => Completion::ResolveFailed(e),
        }
    }

    async fn resolve_srv(&self, step: &str, name: &str) -> Completion {
        let started = UtcTime::now_utc();
        let t = std::time::Instant::now();
        let result = if self.overrides_only {
            Err(format!("{name}: NXDOMAIN (no such name)"))
        } else {
            self.dns.lookup_srv(name).await
        };
        self.recorder.dns(DnsRecord {
            step: step.to_string(),
            time: started,
            name: name.to_string(),
            rtype: "SRV".into(),
            answers: result
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|s| format!("{} {} {} {}", s.priority, s.weight, s.port, s.target))
                        .collect()
                })
                .unwrap_or_default(),
            error: result.as_ref().err().cloned(),
            elapsed_ms: t.elapsed().as_secs_f64() * 1000.0,
        });
        match result {
            Ok(r) => Completion::SrvRecords(r),
            Err(e) => Completion::ResolveFailed(e),
        }
    }

    async fn probe(&self, host: &str, port: u16) -> Completion {
        let addrs: Vec<SocketAddr> = match self.addresses(host).await {
            Ok(ips) => ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            Err(e) => return unprobed(TransportError::Connect(e)),
        };
        let host = host.to_string();
        let timeout = self.timeout;
        let trust = self.probe_trust.clone();
        match tokio::task::spawn_blocking(move || probe::probe(&host, &addrs, timeout, &trust))
            .await
        {
            Ok(r) => Completion::TlsProbed(r),
            Err(e) => unprobed(TransportError::Other(format!("the probe task failed: {e}"))),
        }
    }

    async fn http(&self, step: &str, request: HttpRequest) -> Completion {
        let started = UtcTime::now_utc();
        let t = std::time::Instant::now();
        let mut exchange = HttpExchange {
            step: step.to_string(),
            started,
            elapsed_ms: 0.0,
            method: request.method.as_str().to_string(),
            url: request.url.clone(),
            request_headers: request.headers.clone(),
            request_body: request.body.clone(),
            response: None,
            error: None,
            server_ip: None,
        };
        let completion = self.http_send(request, &mut exchange).await;
        exchange.elapsed_ms = t.elapsed().as_secs_f64() * 1000.0;
        match &completion {
            Completion::Response(r) => {
                exchange.response = Some(HttpResponseRecord {
                    status: r.status,
                    status_text: reqwest::StatusCode::from_u16(r.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                        .to_string(),
                    headers: r.headers.clone(),
                    body: r.body.clone(),
                });
            }
            Completion::TransportFailed(e) => exchange.error = Some(e.to_string()),
            _ => {}
        }
        self.recorder.http(exchange);
        completion
    }

    async fn http_send(&self, request: HttpRequest, exchange: &mut HttpExchange) -> Completion {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut rb = self.http.request(method, &request.url);
        for (k, v) in &request.headers {
            rb = rb.header(k, v);
        }
        if let Some(body) = request.body {
            rb = rb.body(body);
        }
        let response = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Completion::TransportFailed(transport_error(&e)),
        };
        exchange.server_ip = response.remote_addr().map(|a| a.ip().to_string());
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        match response.bytes().await {
            Ok(body) => Completion::Response(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            }),
            Err(e) => Completion::TransportFailed(transport_error(&e)),
        }
    }
}

/// A probe that never reached a TLS handshake.
fn unprobed(why: TransportError) -> Completion {
    Completion::TlsProbed(lyncd_client::TlsReport {
        connect: Err(why),
        versions: Vec::new(),
        chain: Vec::new(),
        trust: Err("not reached".into()),
    })
}

/// Key generation is CPU-bound randomness: off the async threads.
async fn generate_key(address: SipAddress) -> Completion {
    match tokio::task::spawn_blocking(move || lyncd_pki::new_user_key_and_csr(&address)).await {
        Ok(Ok((key_pem, csr_der))) => Completion::KeyPair { key_pem, csr_der },
        Ok(Err(e)) => Completion::KeyFailed(e.to_string()),
        Err(e) => Completion::KeyFailed(format!("the key generation task failed: {e}")),
    }
}

/// The TLS client for SIP connections: only the --ca-file CA when given (as for HTTPS), else
/// the platform's verifier and roots.
fn sip_tls(ca_pem: Option<&[u8]>, keylog: bool) -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions for SIP")?;
    let mut config = match ca_pem {
        Some(pem) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.context("reading the --ca-file PEM")?)
                    .context("adding the --ca-file CA")?;
            }
            anyhow::ensure!(!roots.is_empty(), "the CA file holds no certificate");
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .context("the platform's certificate verifier")?
                .with_no_client_auth()
        }
    };
    if keylog {
        config.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

/// How often [`Executor::hold_sip`] sends a keep-alive.
const SIP_KEEPALIVE: Duration = Duration::from_secs(5);

impl Executor {
    /// Keeps the open SIP connections (and so the registrations riding on them) for
    /// `duration`, sending a keep-alive (CRLFCRLF) on each every [`SIP_KEEPALIVE`]. Returns
    /// `false` as soon as no connection is left (the server closed them).
    pub async fn hold_sip(&self, duration: Duration) -> bool {
        let until = tokio::time::Instant::now() + duration;
        loop {
            {
                let mut conns = self.sip.lock().await;
                let mut lost = Vec::new();
                for (key, conn) in conns.iter_mut() {
                    let sent =
                        tokio::time::timeout(self.timeout, conn.stream.write_all(b"\r\n\r\n"))
                            .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        lost.push(key.clone());
                    }
                }
                for key in lost {
                    conns.remove(&key);
                }
                if conns.is_empty() {
                    return false;
                }
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            tokio::time::sleep(left.min(SIP_KEEPALIVE)).await;
        }
    }

    /// Sends `message` on the connection to host:port (opening it first if needed) and returns
    /// the next complete SIP message; keep-alive CRLFs are skipped. Any failure closes the
    /// connection.
    async fn sip(
        &self,
        step: &str,
        host: &str,
        port: u16,
        tls: bool,
        message: &[u8],
    ) -> Completion {
        let peer = format!("{host}:{port} ({})", if tls { "tls" } else { "tcp" });
        if !message.is_empty() {
            self.recorder.sip(SipRecord {
                step: step.to_string(),
                time: UtcTime::now_utc(),
                direction: Direction::Sent,
                peer: peer.clone(),
                message: message.to_vec(),
            });
        }
        let completion = self.sip_exchange(host, port, tls, message).await;
        if let Completion::SipResponse(bytes) = &completion {
            self.recorder.sip(SipRecord {
                step: step.to_string(),
                time: UtcTime::now_utc(),
                direction: Direction::Received,
                peer,
                message: bytes.clone(),
            });
        }
        completion
    }

    async fn sip_exchange(&self, host: &str, port: u16, tls: bool, message: &[u8]) -> Completion {
        let mut conns = self.sip.lock().await;
        let key = (host.to_ascii_lowercase(), port, tls);
        let mut conn = match conns.remove(&key) {
            Some(c) => c,
            None => match self.sip_connect(host, port, tls).await {
                Ok(c) => c,
                Err(e) => return Completion::TransportFailed(e),
            },
        };
        let result = tokio::time::timeout(self.timeout, async {
            if !message.is_empty() {
                conn.stream
                    .write_all(message)
                    .await
                    .map_err(|e| io_error("sending", &e))?;
            }
            loop {
                match conn.decoder.decode(&mut conn.buf) {
                    Ok(Some(Frame::Message(m))) => return Ok(m.as_bytes().to_vec()),
                    Ok(Some(Frame::KeepAlive)) => continue,
                    Ok(None) => {}
                    Err(e) => {
                        return Err(TransportError::Other(format!(
                            "the server sent bytes that are not SIP ({e})"
                        )));
                    }
                }
                let n = conn
                    .stream
                    .read_buf(&mut conn.buf)
                    .await
                    .map_err(|e| io_error("receiving", &e))?;
                if n == 0 {
                    return Err(TransportError::Other(
                        "the server closed the connection".into(),
                    ));
                }
            }
        })
        .await;
        match result {
            Ok(Ok(bytes)) => {
                conns.insert(key, conn);
                Completion::SipResponse(bytes)
            }
            Ok(Err(e)) => Completion::TransportFailed(e),
            Err(_) => Completion::TransportFailed(TransportError::Timeout),
        }
    }

    async fn sip_connect(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<SipConnection, TransportError> {
        let addrs: Vec<SocketAddr> = self
            .addresses(host)
            .await
            .map_err(TransportError::Connect)?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        let connect = async {
            let mut last = TransportError::Connect(format!("{host}: no address"));
            for addr in &addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        last = TransportError::Refused(format!("{addr}: {e}"));
                    }
                    Err(e) => last = TransportError::Connect(format!("{addr}: {e}")),
                }
            }
            Err(last)
        };
        let tcp = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| TransportError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let stream = if tls {
            let name = ServerName::try_from(host.to_string()).map_err(|e| {
                TransportError::Tls(format!("{host} is not a TLS server name ({e})"))
            })?;
            let s = tokio::time::timeout(self.timeout, self.sip_tls.connect(name, tcp))
                .await
                .map_err(|_| TransportError::Timeout)?
                .map_err(|e| TransportError::Tls(tls_reason(&e)))?;
            SipStream::Tls(Box::new(s))
        } else {
            SipStream::Tcp(tcp)
        };
        Ok(SipConnection {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            decoder: Decoder::new(Limits::default()),
        })
    }
}

/// A read or write error on an open connection; a reset is worth telling apart.
fn io_error(what: &str, e: &std::io::Error) -> TransportError {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            TransportError::Reset(format!("{what}: {e}"))
        }
        _ => TransportError::Other(format!("{what}: {e}")),
    }
}

/// The innermost cause of a TLS error, in words.
fn tls_reason(e: &std::io::Error) -> String {
    let mut text = e.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// The most specific cause in the error chain, in words (TLS errors hide several levels down).
fn transport_error(e: &reqwest::Error) -> TransportError {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let text = chain.last().cloned().unwrap_or_default();
    let all = chain.join(": ").to_ascii_lowercase();
    if e.is_timeout() {
        TransportError::Timeout
    } else if all.contains("connection refused") {
        TransportError::Refused(text)
    } else if all.contains("connection reset") || all.contains("reset by peer") {
        TransportError::Reset(text)
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        TransportError::Tls(text)
    } else if e.is_connect() {
        TransportError::Connect(text)
    } else {
        TransportError::Other(text)
    }
}
