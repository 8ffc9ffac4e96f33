//! The TLS probe: which protocol versions an endpoint accepts and which certificate chain it
//! presents, and whether that chain is trusted. OpenSSL, because the probe must speak TLS 1.0
//! and 1.1 to tell "this server only speaks TLS 1.0" from "this server is down" — rustls never
//! will. The probe carries no application data; real requests go through rustls.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lyncd_client::{TlsReport, TlsVersion, TransportError, VersionProbe};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509StoreContext};

/// What the probe trusts: the `--ca-file` roots, else the system's.
pub struct ProbeTrust {
    ca_pem: Option<Vec<u8>>,
}

impl ProbeTrust {
    pub fn new(ca_pem: Option<Vec<u8>>) -> Self {
        ProbeTrust { ca_pem }
    }

    fn store(&self) -> Result<X509Store, String> {
        let mut b = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        match &self.ca_pem {
            Some(pem) => {
                for c in X509::stack_from_pem(pem).map_err(|e| e.to_string())? {
                    b.add_cert(c).map_err(|e| e.to_string())?;
                }
            }
            None => b.set_default_paths().map_err(|e| e.to_string())?,
        }
        Ok(b.build())
    }
}

/// Probes `host` at `addrs` (already resolved), one handshake per TLS version.
pub fn probe(host: &str, addrs: &[SocketAddr], timeout: Duration, trust: &ProbeTrust) -> TlsReport {
    let mut report = TlsReport {
        connect: Ok(()),
        versions: Vec::new(),
        chain: Vec::new(),
        trust: Err("no certificate was presented".into()),
    };
    let mut resets = 0;
    for version in TlsVersion::ALL.iter().rev() {
        let tcp = match connect(addrs, timeout) {
            Ok(t) => t,
            Err(e) => {
                // Nothing listens (or nothing answers): no TLS facts at all.
                report.connect = Err(e);
                report.versions.clear();
                return report;
            }
        };
        match handshake(host, tcp, *version) {
            Ok((cipher, chain)) => {
                if report.chain.is_empty() {
                    report.chain = chain;
                }
                report.versions.push(VersionProbe {
                    version: *version,
                    accepted: true,
                    detail: cipher,
                });
            }
            Err(Refusal { text, reset }) => {
                resets += usize::from(reset);
                report.versions.push(VersionProbe {
                    version: *version,
                    accepted: false,
                    detail: text,
                });
            }
        }
    }
    report.versions.sort_by_key(|v| v.version);
    if resets == TlsVersion::ALL.len() {
        report.connect = Err(TransportError::Reset(
            "the connection is reset before any TLS handshake completes".into(),
        ));
        report.versions.clear();
        return report;
    }
    if !report.chain.is_empty() {
        report.trust = verify(&report.chain, trust);
    }
    report
}

fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, TransportError> {
    let mut last = TransportError::Connect("no address".into());
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                return Ok(s);
            }
            Err(e) => {
                last = match e.kind() {
                    ErrorKind::ConnectionRefused => TransportError::Refused(format!("{addr}: {e}")),
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => TransportError::Timeout,
                    ErrorKind::ConnectionReset => TransportError::Reset(format!("{addr}: {e}")),
                    _ => TransportError::Connect(format!("{addr}: {e}")),
                }
            }
        }
    }
    Err(last)
}

struct Refusal {
    text: String,
    reset: bool,
}

/// One handshake restricted to `version`, certificate verification off (the chain is
/// verified separately, so an untrusted server still shows which versions it speaks).
fn handshake(
    host: &str,
    tcp: TcpStream,
    version: TlsVersion,
) -> Result<(String, Vec<Vec<u8>>), Refusal> {
    let fail = |text: String| Refusal { text, reset: false };
    let v = match version {
        TlsVersion::Tls10 => SslVersion::TLS1,
        TlsVersion::Tls11 => SslVersion::TLS1_1,
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    };
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail(e.to_string()))?;
    b.set_min_proto_version(Some(v))
        .and_then(|_| b.set_max_proto_version(Some(v)))
        .map_err(|e| fail(e.to_string()))?;
    // Old versions need the old ciphers and security level 0 to be offered at all.
    b.set_cipher_list("ALL:@SECLEVEL=0")
        .map_err(|e| fail(e.to_string()))?;
    b.set_verify(SslVerifyMode::NONE);
    let connector = b.build();
    let mut cfg = connector.configure().map_err(|e| fail(e.to_string()))?;
    cfg.set_verify_hostname(false);
    let sni = host.parse::<std::net::IpAddr>().is_err();
    cfg.set_use_server_name_indication(sni);
    match cfg.connect(host, tcp) {
        Ok(s) => {
            let ssl = s.ssl();
            let cipher = ssl
                .current_cipher()
                .map_or_else(|| "?".to_string(), |c| c.name().to_string());
            let chain = ssl
                .peer_cert_chain()
                .map(|st| st.iter().filter_map(|c| c.to_der().ok()).collect())
                .unwrap_or_default();
            Ok((cipher, chain))
        }
        Err(e) => {
            let reset = match &e {
                openssl::ssl::HandshakeError::Failure(m) => m
                    .error()
                    .io_error()
                    .is_some_and(|io| io.kind() == ErrorKind::ConnectionReset),
                _ => false,
            };
            Err(Refusal {
                text: handshake_error(&e),
                reset,
            })
        }
    }
}

/// The alert or error in words: "alert 70 protocol version", "connection reset", …
fn handshake_error(e: &openssl::ssl::HandshakeError<TcpStream>) -> String {
    match e {
        openssl::ssl::HandshakeError::Failure(m) | openssl::ssl::HandshakeError::WouldBlock(m) => {
            let err = m.error();
            if let Some(io) = err.io_error() {
                return io.to_string();
            }
            if let Some(stack) = err.ssl_error() {
                let reasons: Vec<String> = stack
                    .errors()
                    .iter()
                    .filter_map(|x| x.reason().map(str::to_string))
                    .collect();
                if !reasons.is_empty() {
                    return reasons.join("; ");
                }
            }
            "the server closed the connection during the handshake".into()
        }
        openssl::ssl::HandshakeError::SetupFailure(s) => s.to_string(),
    }
}

/// The chain against the trust store; the host name is the core's business.
fn verify(chain: &[Vec<u8>], trust: &ProbeTrust) -> Result<(), String> {
    let store = trust.store()?;
    let certs: Vec<X509> = chain
        .iter()
        .filter_map(|d| X509::from_der(d).ok())
        .collect();
    let Some((leaf, rest)) = certs.split_first() else {
        return Err("the certificate could not be read".into());
    };
    let mut stack = Stack::new().map_err(|e| e.to_string())?;
    for c in rest {
        stack.push(c.clone()).map_err(|e| e.to_string())?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    ctx.init(&store, leaf, &stack, |c| {
        let ok = c.verify_cert()?;
        Ok(if ok {
            Ok(())
        } else {
            Err(c.error().error_string().to_string())
        })
    })
    .map_err(|e| e.to_string())?
}
