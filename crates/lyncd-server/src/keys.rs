//! The deployment's keys: lyncd's CA and the service keys it certifies. Created by the first
//! start and kept in the store, so restarts (and, later, other nodes) verify what was issued.

use base64::Engine;
use lyncd_core::{Entropy, Secret, UtcTime};
use lyncd_pki::CertificateAuthority;
use lyncd_store::Store;
use lyncd_wsxml::keys::{RsaDecryptionKey, RsaEncryptionCert, RsaSigningKey, TrustedCert, WrapKey};
use serde::{Deserialize, Serialize};

const CA: &str = "ca";
const IDP_SIGNING: &str = "idp-signing";
const WEBTICKET_SIGNING: &str = "webticket-signing";
const WEBTICKET_ENCRYPTION: &str = "webticket-encryption";
const WEBTICKET_WRAP: &str = "webticket-wrap";

/// Key names clients see in `KeyName` elements.
pub const WEBTICKET_ENCRYPTION_KEY_NAME: &str = "lyncd-webticket-encryption";
pub const WEBTICKET_WRAP_KEY_NAME: &str = "lyncd-webticket-wrap";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("store: {0}")]
    Store(#[from] lyncd_store::StoreError),
    #[error("creating or loading lyncd's certificate authority: {0}")]
    Pki(#[from] lyncd_pki::PkiError),
    #[error("the stored key {name:?} is damaged ({why}); restore the data directory from a backup")]
    Corrupt { name: &'static str, why: String },
    #[error("loading the service key {name:?}: {source}")]
    Service {
        name: &'static str,
        source: lyncd_wsxml::KeyError,
    },
}

#[derive(Serialize, Deserialize)]
struct PemPair {
    cert_pem: String,
    key_pem: String,
}

/// Every key a running server needs, loaded once at start.
pub struct ServiceKeys {
    pub ca: CertificateAuthority,
    pub idp_signer: RsaSigningKey,
    pub idp_cert: TrustedCert,
    pub webticket_signer: RsaSigningKey,
    pub webticket_cert: TrustedCert,
    pub rp_decryption: RsaDecryptionKey,
    pub rp_encryption: RsaEncryptionCert,
    pub wrap: WrapKey,
}

/// Loads lyncd's CA, creating it on first use. Used by `lyncd ca export` and by `serve`.
pub async fn load_or_create_ca(
    store: &Store,
    now: UtcTime,
) -> Result<CertificateAuthority, KeyError> {
    if let Some(k) = store.key(CA).await? {
        return ca_from(&k.material);
    }
    let ca = CertificateAuthority::generate("lyncd CA", now)?;
    let material = serde_json::to_string(&PemPair {
        cert_pem: ca.cert_pem().to_string(),
        key_pem: ca.key_pem().expose().clone(),
    })
    .map_err(|e| KeyError::Corrupt {
        name: CA,
        why: e.to_string(),
    })?;
    // Whoever stored first wins; a concurrent first start loads the winner.
    let stored = store.insert_key_if_absent(CA, &material, now).await?;
    ca_from(&stored.material)
}

fn ca_from(material: &Secret<String>) -> Result<CertificateAuthority, KeyError> {
    let pair: PemPair = serde_json::from_str(material.expose()).map_err(|e| KeyError::Corrupt {
        name: CA,
        why: e.to_string(),
    })?;
    Ok(CertificateAuthority::from_pem(
        &pair.cert_pem,
        &pair.key_pem,
    )?)
}

impl ServiceKeys {
    pub async fn load_or_create(
        store: &Store,
        now: UtcTime,
        entropy: &mut dyn Entropy,
    ) -> Result<ServiceKeys, KeyError> {
        let ca = load_or_create_ca(store, now).await?;
        let idp = signing_pair(store, &ca, IDP_SIGNING, "lyncd identity provider", now).await?;
        let wt = signing_pair(
            store,
            &ca,
            WEBTICKET_SIGNING,
            "lyncd Web Ticket service",
            now,
        )
        .await?;
        let enc = signing_pair(
            store,
            &ca,
            WEBTICKET_ENCRYPTION,
            "lyncd Web Ticket encryption",
            now,
        )
        .await?;

        let mut fresh = [0u8; 32];
        entropy.fill(&mut fresh);
        let wrap_b64 = base64::engine::general_purpose::STANDARD.encode(fresh);
        let stored = store
            .insert_key_if_absent(WEBTICKET_WRAP, &wrap_b64, now)
            .await?;
        let wrap_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(stored.material.expose())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(KeyError::Corrupt {
                name: WEBTICKET_WRAP,
                why: "not 32 bytes of base64".into(),
            })?;

        let service = |name: &'static str| move |source| KeyError::Service { name, source };
        Ok(ServiceKeys {
            idp_signer: RsaSigningKey::from_pem(&idp.key_pem, &idp.cert_pem)
                .map_err(service(IDP_SIGNING))?,
            idp_cert: TrustedCert::from_pem(&idp.cert_pem).map_err(service(IDP_SIGNING))?,
            webticket_signer: RsaSigningKey::from_pem(&wt.key_pem, &wt.cert_pem)
                .map_err(service(WEBTICKET_SIGNING))?,
            webticket_cert: TrustedCert::from_pem(&wt.cert_pem)
                .map_err(service(WEBTICKET_SIGNING))?,
            rp_decryption: RsaDecryptionKey::from_pem(&enc.key_pem, &enc.cert_pem)
                .map_err(service(WEBTICKET_ENCRYPTION))?
                .with_name(WEBTICKET_ENCRYPTION_KEY_NAME),
            rp_encryption: RsaEncryptionCert::from_pem(&enc.cert_pem)
                .map_err(service(WEBTICKET_ENCRYPTION))?
                .with_name(WEBTICKET_ENCRYPTION_KEY_NAME),
            wrap: WrapKey::from_bytes(wrap_bytes).with_name(WEBTICKET_WRAP_KEY_NAME),
            ca,
        })
    }
}

async fn signing_pair(
    store: &Store,
    ca: &CertificateAuthority,
    name: &'static str,
    common_name: &str,
    now: UtcTime,
) -> Result<PemPair, KeyError> {
    let material = match store.key(name).await? {
        Some(k) => k.material,
        None => {
            let issued = ca.issue_signing_cert(common_name, now, time::Duration::days(3650))?;
            let fresh = serde_json::to_string(&PemPair {
                cert_pem: issued.cert_pem,
                key_pem: issued.key_pem.expose().clone(),
            })
            .map_err(|e| KeyError::Corrupt {
                name,
                why: e.to_string(),
            })?;
            store
                .insert_key_if_absent(name, &fresh, now)
                .await?
                .material
        }
    };
    serde_json::from_str(material.expose()).map_err(|e| KeyError::Corrupt {
        name,
        why: e.to_string(),
    })
}
