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
    Action, Completion, HttpRequest, HttpResponse, Method, SignIn, TraceEvent, TransportError,
};
use lyncd_core::{OsEntropy, SipAddress, UtcTime};
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
        Ok(Executor {
            http: builder.build().context("building the HTTP client")?,
            overrides: opts.overrides,
            overrides_only: opts.overrides_only,
            sip_tls: sip_tls(opts.ca_pem.as_deref())?,
            timeout: opts.timeout,
            sip: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the sign-in to its end, handing every trace event to `on_trace` as it happens.
    pub async fn drive(&self, signin: &mut SignIn, mut on_trace: impl FnMut(&TraceEvent)) {
        loop {
            while let Some(ev) = signin.poll_trace() {
                on_trace(&ev);
            }
            if signin.outcome().is_some() {
                return;
            }
            let Some(action) = signin.poll_action(UtcTime::now_utc()) else {
                return;
            };
            let (id, completion) = match action {
                Action::Resolve { id, host } => (id, self.resolve(&host).await),
                Action::Http { id, request } => (id, self.http(request).await),
                Action::GenerateKey { id, address } => (id, generate_key(address).await),
                Action::Sip {
                    id,
                    host,
                    port,
                    tls,
                    message,
                } => (id, self.sip(&host, port, tls, &message).await),
            };
            signin.handle(UtcTime::now_utc(), id, completion, &mut OsEntropy);
        }
    }

    async fn resolve(&self, host: &str) -> Completion {
        if let Some(ip) = self.overrides.get(&host.to_ascii_lowercase()) {
            return Completion::Resolved(vec![*ip]);
        }
        if self.overrides_only {
            return Completion::ResolveFailed(format!("{host}: no such name"));
        }
        match tokio::net::lookup_host((host, 0)).await {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                ips.dedup();
                if ips.is_empty() {
                    Completion::ResolveFailed(format!("{host}: no address"))
                } else {
                    Completion::Resolved(ips)
                }
            }
            Err(e) => Completion::ResolveFailed(format!("{host}: {e}")),
        }
    }

    async fn http(&self, request: HttpRequest) -> Completion {
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
fn sip_tls(ca_pem: Option<&[u8]>) -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions for SIP")?;
    let config = match ca_pem {
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
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Executor {
    /// Sends `message` on the connection to host:port (opening it first if needed) and returns
    /// the next complete SIP message; keep-alive CRLFs are skipped. Any failure closes the
    /// connection.
    async fn sip(&self, host: &str, port: u16, tls: bool, message: &[u8]) -> Completion {
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
                    .map_err(|e| TransportError::Other(format!("sending: {e}")))?;
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
                    .map_err(|e| TransportError::Other(format!("receiving: {e}")))?;
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
        let addrs: Vec<SocketAddr> = match self.overrides.get(&host.to_ascii_lowercase()) {
            Some(ip) => vec![SocketAddr::new(*ip, port)],
            None if self.overrides_only => {
                return Err(TransportError::Connect(format!("{host}: no such name")));
            }
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| TransportError::Connect(format!("{host}: {e}")))?
                .collect(),
        };
        let connect = async {
            let mut last = None;
            for addr in &addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(format!("{addr}: {e}")),
                }
            }
            Err(TransportError::Connect(
                last.unwrap_or_else(|| format!("{host}: no address")),
            ))
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
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        TransportError::Tls(text)
    } else if e.is_connect() {
        TransportError::Connect(text)
    } else {
        TransportError::Other(text)
    }
}
