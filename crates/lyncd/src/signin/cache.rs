//! The on-disk cache of CertProv user certificates, so a later sign-in can skip Certificate
//! Provisioning while the certificate is valid for another hour (sip.md §4: SIPE keeps them per
//! registrar `targetname`; we keep one file per user and targetname).
//!
//! Each file holds the certificate PEM followed by its private key PEM; it is created with mode
//! 0600 in a 0700 directory. The key is never printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lyncd_client::CachedCertificate;
use lyncd_core::{Secret, SipAddress};

const KEY_MARKER: &str = "-----BEGIN PRIVATE KEY-----";

pub struct CertCache {
    dir: PathBuf,
}

impl CertCache {
    pub fn new(dir: PathBuf) -> Self {
        CertCache { dir }
    }

    /// `$XDG_CACHE_HOME/lyncd/certs`, else `~/.cache/lyncd/certs`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return Some(PathBuf::from(x).join("lyncd/certs"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache/lyncd/certs"))
    }

    fn prefix(user: &SipAddress) -> String {
        format!("{}#", safe(&user.key()))
    }

    fn path(&self, user: &SipAddress, targetname: &str) -> PathBuf {
        self.dir.join(format!(
            "{}{}.pem",
            Self::prefix(user),
            safe(&targetname.to_ascii_lowercase())
        ))
    }

    /// Every cached certificate of `user` (unreadable files are skipped: the sign-in then
    /// provisions a new one).
    pub fn load(&self, user: &SipAddress) -> Vec<CachedCertificate> {
        let prefix = Self::prefix(user);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(target) = name
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".pem"))
            else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Some(at) = text.find(KEY_MARKER) else {
                continue;
            };
            out.push(CachedCertificate {
                targetname: target.to_string(),
                cert_pem: text[..at].to_string(),
                key_pem: Secret::new(text[at..].to_string()),
            });
        }
        out
    }

    /// Writes (replaces) the file for `user` and `targetname`, mode 0600.
    pub fn store(
        &self,
        user: &SipAddress,
        targetname: &str,
        cert_pem: &str,
        key_pem: &Secret<String>,
    ) -> anyhow::Result<PathBuf> {
        create_private_dir(&self.dir)?;
        let path = self.path(user, targetname);
        let tmp = path.with_extension("pem.tmp");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(cert_pem.as_bytes())?;
            if !cert_pem.ends_with('\n') {
                f.write_all(b"\n")?;
            }
            f.write_all(key_pem.expose().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("protecting {}", dir.display()))?;
    }
    Ok(())
}

/// A file-name-safe version of an address or host name.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CertCache::new(dir.path().join("certs"));
        let alice = SipAddress::parse("Alice@contoso.com").unwrap();
        let bob = SipAddress::parse("bob@contoso.com").unwrap();
        let key = Secret::new(format!("{KEY_MARKER}\nAAAA\n-----END PRIVATE KEY-----\n"));
        let path = cache
            .store(
                &alice,
                "LyncFE.contoso.com",
                "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----",
                &key,
            )
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = cache.load(&alice);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].targetname, "lyncfe.contoso.com");
        assert!(loaded[0].cert_pem.contains("BBBB"));
        assert!(!loaded[0].cert_pem.contains("PRIVATE"));
        assert_eq!(loaded[0].key_pem.expose(), key.expose());
        assert!(cache.load(&bob).is_empty());
    }
}
