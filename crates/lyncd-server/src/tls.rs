//! The HTTPS certificate: issued by lyncd's CA for every name this deployment serves, including
//! `lyncdiscover.<domain>` and `lyncdiscoverinternal.<domain>` of every tenant. Re-issued when
//! tenants are added, without a restart.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use lyncd_pki::CertificateAuthority;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::ServerConfig;

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

/// Hands the current certificate to every handshake, SNI or not (some clients connect by IP).
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<(BTreeSet<String>, Arc<CertifiedKey>)>,
}

impl CertResolver {
    pub fn new(
        ca: &CertificateAuthority,
        names: BTreeSet<String>,
        now: lyncd_core::UtcTime,
    ) -> Result<Self, TlsError> {
        let key = certified_key(ca, &names, now)?;
        Ok(CertResolver {
            current: RwLock::new((names, key)),
        })
    }

    /// Re-issues the certificate if the set of names changed. Returns whether it did.
    pub fn update(
        &self,
        ca: &CertificateAuthority,
        names: BTreeSet<String>,
        now: lyncd_core::UtcTime,
    ) -> Result<bool, TlsError> {
        if self.current.read().map(|c| c.0 == names).unwrap_or(false) {
            return Ok(false);
        }
        let key = certified_key(ca, &names, now)?;
        if let Ok(mut c) = self.current.write() {
            *c = (names, key);
        }
        Ok(true)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.1.clone())
    }
}

fn certified_key(
    ca: &CertificateAuthority,
    names: &BTreeSet<String>,
    now: lyncd_core::UtcTime,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let names: Vec<String> = names.iter().cloned().collect();
    let issued = ca.issue_server_cert(&names, now, time::Duration::days(365))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.expose().clone()));
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)?;
    let chain = vec![
        CertificateDer::from(issued.cert_der),
        CertificateDer::from(ca.cert_der().to_vec()),
    ];
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// A rustls server configuration using the resolver; HTTP/1.1 only (pidgin-sipe and Microsoft
/// clients speak it; no compression, reason phrases always sent).
pub fn server_config(resolver: Arc<CertResolver>) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
