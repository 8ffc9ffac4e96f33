//! The HTTPS certificate: issued by lyncd's CA for every name this deployment serves, including
//! `lyncdiscover.<domain>` and `lyncdiscoverinternal.<domain>` of every tenant. Re-issued when
//! tenants are added, without a restart.
//!
//! Connections are accepted with rustls, except for a listener limited to TLS 1.0 by fault
//! injection: rustls does not speak TLS 1.0, so that one is served by OpenSSL (the
//! [`Acceptor::OpenSsl`] path), with the same certificate.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use lyncd_core::Secret;
use lyncd_pki::{CertificateAuthority, IssuedCert};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::faults::{CertificateFault, TlsFault};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("issuing the HTTPS certificate: {0}")]
    Issue(#[from] lyncd_pki::PkiError),
    #[error("the HTTPS certificate's key is not usable by the TLS library: {0}")]
    Key(#[from] rustls::Error),
}

/// The names the HTTPS certificate must cover.
pub fn served_names(config: &ServerConfig, tenants: &[String]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [&config.names.web, &config.names.pool, &config.names.idp]
        .into_iter()
        .cloned()
        .chain(config.names.extra.iter().cloned())
        .chain(["localhost".to_string(), "127.0.0.1".to_string()])
        .collect();
    for t in tenants {
        names.insert(format!("lyncdiscover.{t}"));
        names.insert(format!("lyncdiscoverinternal.{t}"));
    }
    names
}

/// The names the certificate actually carries: [`served_names`], or with the
/// `without-sip-domain` fault only those outside every tenant domain, so that a client
/// connecting to `lyncdiscover.<domain>` gets a certificate that does not name it.
pub fn certificate_names(config: &ServerConfig, tenants: &[String]) -> BTreeSet<String> {
    let names = served_names(config, tenants);
    if config.faults.https_certificate != Some(CertificateFault::WithoutSipDomain) {
        return names;
    }
    let in_a_tenant_domain = |name: &str| {
        let name = name.trim_start_matches("*.").to_ascii_lowercase();
        tenants.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            name == t || name.ends_with(&format!(".{t}"))
        })
    };
    names
        .into_iter()
        .filter(|n| !in_a_tenant_domain(n))
        .collect()
}

/// The certificate in the forms the two TLS libraries want.
struct Identity {
    names: BTreeSet<String>,
    rustls: Arc<CertifiedKey>,
    /// Leaf first, then the CA (none for a self-signed certificate).
    chain_der: Vec<Vec<u8>>,
    key_pkcs8: Secret<Vec<u8>>,
}

/// Hands the current certificate to every handshake, SNI or not (some clients connect by IP).
pub struct CertResolver {
    current: RwLock<Arc<Identity>>,
    fault: Option<CertificateFault>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("names", &self.current().names)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    /// Issues the first certificate; `fault` (from `faults.https_certificate`) says how it is
    /// broken, now and at every re-issue.
    pub fn new(
        ca: &CertificateAuthority,
        names: BTreeSet<String>,
        now: lyncd_core::UtcTime,
        fault: Option<CertificateFault>,
    ) -> Result<Self, TlsError> {
        let identity = identity(ca, names, now, fault)?;
        Ok(CertResolver {
            current: RwLock::new(Arc::new(identity)),
            fault,
        })
    }

    /// Re-issues the certificate if the set of names changed. Returns whether it did.
    pub fn update(
        &self,
        ca: &CertificateAuthority,
        names: BTreeSet<String>,
        now: lyncd_core::UtcTime,
    ) -> Result<bool, TlsError> {
        if self.current().names == names {
            return Ok(false);
        }
        let identity = Arc::new(identity(ca, names, now, self.fault)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = identity;
        Ok(true)
    }

    fn current(&self) -> Arc<Identity> {
        // Only ever replaced whole: a panic elsewhere cannot leave it half-written.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().rustls.clone())
    }
}

fn identity(
    ca: &CertificateAuthority,
    names: BTreeSet<String>,
    now: lyncd_core::UtcTime,
    fault: Option<CertificateFault>,
) -> Result<Identity, TlsError> {
    let list: Vec<String> = names.iter().cloned().collect();
    let issued = issue(ca, &list, now, fault)?;
    let mut chain_der = vec![issued.cert_der.clone()];
    if fault != Some(CertificateFault::SelfSigned) {
        chain_der.push(ca.cert_der().to_vec());
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.expose().clone()));
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)?;
    let chain = chain_der
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect();
    Ok(Identity {
        names,
        rustls: Arc::new(CertifiedKey::new(chain, signer)),
        chain_der,
        key_pkcs8: issued.key_der,
    })
}

/// A year's certificate, or the broken one `fault` asks for.
fn issue(
    ca: &CertificateAuthority,
    names: &[String],
    now: lyncd_core::UtcTime,
    fault: Option<CertificateFault>,
) -> Result<IssuedCert, lyncd_pki::PkiError> {
    use time::Duration;
    let year = Duration::days(365);
    match fault {
        None | Some(CertificateFault::WithoutSipDomain) => ca.issue_server_cert(names, now, year),
        Some(CertificateFault::Expiring) => ca.issue_server_cert(names, now, Duration::days(10)),
        Some(CertificateFault::Expired) => ca.issue_server_cert_valid_between(
            names,
            now - Duration::days(30),
            now - Duration::days(3),
        ),
        Some(CertificateFault::NotYetValid) => {
            ca.issue_server_cert_valid_between(names, now + Duration::days(2), now + year)
        }
        Some(CertificateFault::SelfSigned) => lyncd_pki::self_signed_server_cert(names, now, year),
    }
}

/// A rustls server configuration using the resolver; HTTP/1.1 only (pidgin-sipe and Microsoft
/// clients speak it; no compression, reason phrases always sent). `only` limits the TLS versions
/// (fault injection); TLS 1.0 is not a rustls version and is handled by [`Acceptor`].
pub fn server_config(
    resolver: Arc<CertResolver>,
    only: Option<TlsFault>,
) -> Result<rustls::ServerConfig, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match only {
        Some(TlsFault::Tls12Only) => &[&rustls::version::TLS12],
        Some(TlsFault::Tls13Only) => &[&rustls::version::TLS13],
        Some(TlsFault::Tls10Only) | None => rustls::DEFAULT_VERSIONS,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A connection after the TLS handshake, whichever library did it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Accepts TLS on one listener.
#[derive(Clone)]
pub enum Acceptor {
    Rustls(TlsAcceptor),
    /// TLS 1.0 only, as an old server (fault injection): OpenSSL, since rustls cannot.
    OpenSsl(Arc<CertResolver>),
}

impl Acceptor {
    /// The acceptor for a listener, limited to the versions `only` names.
    pub fn new(resolver: Arc<CertResolver>, only: Option<TlsFault>) -> Result<Self, TlsError> {
        Ok(match only {
            Some(TlsFault::Tls10Only) => Acceptor::OpenSsl(resolver),
            _ => Acceptor::Rustls(TlsAcceptor::from(Arc::new(server_config(resolver, only)?))),
        })
    }

    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<Box<dyn Io>> {
        match self {
            Acceptor::Rustls(acceptor) => Ok(Box::new(acceptor.accept(tcp).await?)),
            Acceptor::OpenSsl(resolver) => {
                let context = tls10_context(&resolver.current()).map_err(std::io::Error::other)?;
                let ssl = openssl::ssl::Ssl::new(&context).map_err(std::io::Error::other)?;
                let mut stream =
                    tokio_openssl::SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
                Pin::new(&mut stream)
                    .accept()
                    .await
                    .map_err(std::io::Error::other)?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// TLS 1.0 and nothing else, with the SHA-1 CBC suites of that era (ECDSA for lyncd's P-256
/// certificates, RSA for completeness) at OpenSSL security level 0, which TLS 1.0 needs: a
/// modern client fails the handshake with a `protocol_version` alert, as against an old server.
fn tls10_context(
    identity: &Identity,
) -> Result<openssl::ssl::SslContext, openssl::error::ErrorStack> {
    use openssl::ssl::{SslContextBuilder, SslMethod, SslVersion};
    use openssl::x509::X509;
    let mut builder = SslContextBuilder::new(SslMethod::tls_server())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1))?;
    builder.set_max_proto_version(Some(SslVersion::TLS1))?;
    builder.set_cipher_list(
        "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:AES128-SHA:AES256-SHA@SECLEVEL=0",
    )?;
    let key = openssl::pkey::PKey::private_key_from_pkcs8(identity.key_pkcs8.expose())?;
    builder.set_private_key(&key)?;
    let mut chain = identity.chain_der.iter();
    if let Some(leaf) = chain.next() {
        let leaf = X509::from_der(leaf)?;
        builder.set_certificate(&leaf)?;
    }
    for extra in chain {
        builder.add_extra_chain_cert(X509::from_der(extra)?)?;
    }
    builder.check_private_key()?;
    Ok(builder.build())
}
