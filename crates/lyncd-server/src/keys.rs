//! The deployment's keys: lyncd's CA, and generations of the token keys it certifies. All live
//! in the store, so restarts and the other nodes of a cluster verify what any node issued.
//!
//! Token keys (identity provider signing, Web Ticket signing, encryption and wrap) rotate
//! without downtime ([`rotate`], `lyncd keys rotate`): a new generation is stored with an
//! activation time a little in the future; every node loads it within
//! [`RELOAD_INTERVAL`] and verifies with it at once, and signs with it only from its
//! activation. Older generations keep verifying until the tokens they signed have expired.

use std::time::Duration;

use base64::Engine;
use lyncd_core::{Entropy, Secret, UtcTime};
use lyncd_pki::CertificateAuthority;
use lyncd_store::{KeyGeneration, Store};
use lyncd_wsxml::TokenError;
use lyncd_wsxml::keys::{RsaDecryptionKey, RsaEncryptionCert, RsaSigningKey, TrustedCert, WrapKey};
use serde::{Deserialize, Serialize};

const CA: &str = "ca";
const IDP_SIGNING: &str = "idp-signing";
const WEBTICKET_SIGNING: &str = "webticket-signing";
const WEBTICKET_ENCRYPTION: &str = "webticket-encryption";
const WEBTICKET_WRAP: &str = "webticket-wrap";

/// Key names clients and tokens see in `KeyName` elements (generation 1; later generations
/// append `-g<N>`, so a token names the generation that can open it).
pub const WEBTICKET_ENCRYPTION_KEY_NAME: &str = "lyncd-webticket-encryption";
pub const WEBTICKET_WRAP_KEY_NAME: &str = "lyncd-webticket-wrap";

/// How often a running node re-reads the key generations.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// How long after its creation a rotated generation starts signing by default: several
/// reload intervals, so every live node verifies with it before any node signs with it.
pub const ACTIVATION_DELAY: time::Duration = time::Duration::seconds(10);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("store: {0}")]
    Store(#[from] lyncd_store::StoreError),
    #[error("creating or loading lyncd's certificate authority: {0}")]
    Pki(#[from] lyncd_pki::PkiError),
    #[error("the stored key {name:?} is damaged ({why}); restore the database from a backup")]
    Corrupt { name: String, why: String },
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

/// One generation of token keys, ready to use.
pub struct TokenKeys {
    pub generation: i64,
    pub created_at: UtcTime,
    pub activates_at: UtcTime,
    pub idp_signer: RsaSigningKey,
    pub idp_cert: TrustedCert,
    pub webticket_signer: RsaSigningKey,
    pub webticket_cert: TrustedCert,
    pub rp_decryption: RsaDecryptionKey,
    pub rp_encryption: RsaEncryptionCert,
    pub wrap: WrapKey,
}

/// Every key a running server needs: the CA and the token key generations, newest first.
pub struct ServiceKeys {
    pub ca: CertificateAuthority,
    generations: Vec<TokenKeys>,
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
    let material = to_json(
        CA,
        &PemPair {
            cert_pem: ca.cert_pem().to_string(),
            key_pem: ca.key_pem().expose().clone(),
        },
    )?;
    // Whoever stored first wins; a concurrent first start loads the winner.
    let stored = store.insert_key_if_absent(CA, &material, now).await?;
    ca_from(&stored.material)
}

fn ca_from(material: &Secret<String>) -> Result<CertificateAuthority, KeyError> {
    let pair: PemPair = from_json(CA, material.expose())?;
    Ok(CertificateAuthority::from_pem(
        &pair.cert_pem,
        &pair.key_pem,
    )?)
}

impl ServiceKeys {
    /// Loads the CA and every key generation, creating the CA and generation 1 on first use
    /// (first writer wins, so nodes starting together agree).
    pub async fn load_or_create(
        store: &Store,
        now: UtcTime,
        entropy: &mut (dyn Entropy + Send),
    ) -> Result<ServiceKeys, KeyError> {
        let ca = load_or_create_ca(store, now).await?;
        let mut stored = store.key_generations().await?;
        if stored.is_empty() {
            let fresh = fresh_material(&ca, now, entropy)?;
            let keys: Vec<(&str, &str)> = fresh.iter().map(|(n, m)| (*n, m.as_str())).collect();
            stored = vec![store.ensure_key_generation(1, now, &keys, now).await?];
        }
        let generations = stored
            .iter()
            .map(TokenKeys::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServiceKeys { ca, generations })
    }

    /// The generation numbers loaded, newest first (to notice new ones cheaply).
    pub fn generation_numbers(&self) -> Vec<i64> {
        self.generations.iter().map(|g| g.generation).collect()
    }

    /// The generation that signs at `now`: the newest one already active, else (every
    /// generation still in the future, which only a hand-edited database produces) the oldest.
    pub fn signing(&self, now: UtcTime) -> &TokenKeys {
        self.generations
            .iter()
            .find(|g| g.activates_at <= now)
            .or_else(|| self.generations.last())
            .expect("load_or_create always loads at least one generation")
    }

    /// The generations that verify at `now`, the signing one first: every generation whose
    /// successor activated less than `max_token_lifetime` ago (its tokens may still be valid),
    /// and the not-yet-active ones (another node may already sign with them).
    pub fn verifying(
        &self,
        now: UtcTime,
        max_token_lifetime: time::Duration,
    ) -> impl Iterator<Item = &TokenKeys> {
        let signing = self.signing(now);
        let mut successor_active: Option<UtcTime> = None;
        let mut live = Vec::with_capacity(self.generations.len());
        for g in &self.generations {
            let retired = successor_active.is_some_and(|t| t + max_token_lifetime < now);
            if !retired && g.generation != signing.generation {
                live.push(g);
            }
            successor_active = Some(g.activates_at);
        }
        std::iter::once(signing).chain(live)
    }

    /// Verifies a token with each verifying generation in turn. The first success wins; if
    /// none verifies, the error of the generation that recognised the token (anything but a
    /// wrong key) is returned, else the signing generation's.
    pub fn verify<T>(
        &self,
        now: UtcTime,
        max_token_lifetime: time::Duration,
        mut check: impl FnMut(&TokenKeys) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let mut first_error = None;
        for g in self.verifying(now, max_token_lifetime) {
            match check(g) {
                Ok(claims) => return Ok(claims),
                Err(e) if is_wrong_key(&e) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.expect("verifying() yields the signing generation at least"))
    }
}

/// The token was made with another generation's key (not a defect of the token itself).
fn is_wrong_key(e: &TokenError) -> bool {
    matches!(
        e,
        TokenError::UnknownKeyName { .. }
            | TokenError::Undecryptable
            | TokenError::UntrustedSigner
            | TokenError::BadSignature(_)
    )
}

impl TokenKeys {
    fn from_stored(g: &KeyGeneration) -> Result<TokenKeys, KeyError> {
        let missing = |name: &str| KeyError::Corrupt {
            name: format!("{name} (generation {})", g.generation),
            why: "missing from its generation".into(),
        };
        let pair = |name: &'static str| -> Result<PemPair, KeyError> {
            let k = g.key(name).ok_or_else(|| missing(name))?;
            from_json(name, k.material.expose())
        };
        let (idp, wt, enc) = (
            pair(IDP_SIGNING)?,
            pair(WEBTICKET_SIGNING)?,
            pair(WEBTICKET_ENCRYPTION)?,
        );
        let wrap = g
            .key(WEBTICKET_WRAP)
            .ok_or_else(|| missing(WEBTICKET_WRAP))?;
        let wrap_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(wrap.material.expose())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| KeyError::Corrupt {
                name: WEBTICKET_WRAP.into(),
                why: "not 32 bytes of base64".into(),
            })?;
        let suffix = match g.generation {
            1 => String::new(),
            n => format!("-g{n}"),
        };
        let service = |name: &'static str| move |source| KeyError::Service { name, source };
        Ok(TokenKeys {
            generation: g.generation,
            created_at: g.created_at,
            activates_at: g.activates_at,
            idp_signer: RsaSigningKey::from_pem(&idp.key_pem, &idp.cert_pem)
                .map_err(service(IDP_SIGNING))?,
            idp_cert: TrustedCert::from_pem(&idp.cert_pem).map_err(service(IDP_SIGNING))?,
            webticket_signer: RsaSigningKey::from_pem(&wt.key_pem, &wt.cert_pem)
                .map_err(service(WEBTICKET_SIGNING))?,
            webticket_cert: TrustedCert::from_pem(&wt.cert_pem)
                .map_err(service(WEBTICKET_SIGNING))?,
            rp_decryption: RsaDecryptionKey::from_pem(&enc.key_pem, &enc.cert_pem)
                .map_err(service(WEBTICKET_ENCRYPTION))?
                .with_name(format!("{WEBTICKET_ENCRYPTION_KEY_NAME}{suffix}")),
            rp_encryption: RsaEncryptionCert::from_pem(&enc.cert_pem)
                .map_err(service(WEBTICKET_ENCRYPTION))?
                .with_name(format!("{WEBTICKET_ENCRYPTION_KEY_NAME}{suffix}")),
            wrap: WrapKey::from_bytes(wrap_bytes)
                .with_name(format!("{WEBTICKET_WRAP_KEY_NAME}{suffix}")),
        })
    }
}

/// New material for every token key: three RSA pairs certified by the CA and a wrap key.
fn fresh_material(
    ca: &CertificateAuthority,
    now: UtcTime,
    entropy: &mut (dyn Entropy + Send),
) -> Result<Vec<(&'static str, String)>, KeyError> {
    let mut out = Vec::with_capacity(4);
    for (name, common_name) in [
        (IDP_SIGNING, "lyncd identity provider"),
        (WEBTICKET_SIGNING, "lyncd Web Ticket service"),
        (WEBTICKET_ENCRYPTION, "lyncd Web Ticket encryption"),
    ] {
        let issued = ca.issue_signing_cert(common_name, now, time::Duration::days(3650))?;
        let pair = PemPair {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem.expose().clone(),
        };
        out.push((name, to_json(name, &pair)?));
    }
    let mut wrap = [0u8; 32];
    entropy.fill(&mut wrap);
    out.push((
        WEBTICKET_WRAP,
        base64::engine::general_purpose::STANDARD.encode(wrap),
    ));
    Ok(out)
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    pub generation: i64,
    pub activates_at: UtcTime,
    /// Generations deleted because their successor took over more than `keep` ago.
    pub deleted: u64,
    /// `false`: another rotation stored this generation first; this one adopted it.
    pub created: bool,
}

/// Stores a new generation of token keys that starts signing `activation_delay` from `now`,
/// and deletes the generations whose successor activated more than `keep` ago (`keep` must
/// outlast every token lifetime of every node).
pub async fn rotate(
    store: &Store,
    now: UtcTime,
    activation_delay: time::Duration,
    keep: time::Duration,
    entropy: &mut (dyn Entropy + Send),
) -> Result<Rotation, KeyError> {
    let ca = load_or_create_ca(store, now).await?;
    let existing = store.key_generations().await?;
    let next = existing.first().map_or(1, |g| g.generation + 1);
    let fresh = fresh_material(&ca, now, entropy)?;
    let keys: Vec<(&str, &str)> = fresh.iter().map(|(n, m)| (*n, m.as_str())).collect();
    let activates_at = now + activation_delay;
    let stored = store
        .ensure_key_generation(next, activates_at, &keys, now)
        .await?;
    let created = stored
        .key(WEBTICKET_WRAP)
        .is_some_and(|k| k.material.expose() == &fresh[3].1);
    // The oldest generation still needed: the one before the first successor that took over
    // less than `keep` ago.
    let all = store.key_generations().await?;
    let mut oldest_needed = stored.generation;
    for pair in all.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        if newer.activates_at + keep > now {
            oldest_needed = older.generation;
        }
    }
    let deleted = store.delete_key_generations_before(oldest_needed).await?;
    Ok(Rotation {
        generation: stored.generation,
        activates_at: stored.activates_at,
        deleted,
        created,
    })
}

fn to_json(name: &str, pair: &PemPair) -> Result<String, KeyError> {
    serde_json::to_string(pair).map_err(|e| KeyError::Corrupt {
        name: name.into(),
        why: e.to_string(),
    })
}

fn from_json(name: &str, text: &str) -> Result<PemPair, KeyError> {
    serde_json::from_str(text).map_err(|e| KeyError::Corrupt {
        name: name.into(),
        why: e.to_string(),
    })
}
