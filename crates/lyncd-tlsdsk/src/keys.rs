//! The TLS-DSK signing keys, the SIP message MAC and cnum replay protection.

use std::fmt;

use hmac::{Hmac, Mac};
use lyncd_core::Secret;
use md5::Md5;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The HMAC that signs SIP messages. sip.md §5.6: it follows the record MAC of the negotiated
/// cipher suite — SHA-1 suites sign with HMAC-SHA1 (40 hex digits), MD5 suites with HMAC-MD5
/// (32 hex digits). The full MAC is sent, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    HmacSha1,
    HmacMd5,
}

impl MacAlgorithm {
    /// Length of the MAC in hex digits, as carried in `response` / `rspauth`.
    pub fn hex_len(self) -> usize {
        2 * self.output_len()
    }

    /// Length of the MAC in bytes.
    pub fn output_len(self) -> usize {
        match self {
            MacAlgorithm::HmacSha1 => 20,
            MacAlgorithm::HmacMd5 => 16,
        }
    }

    /// The MAC for a cipher suite named either the RFC way (`TLS_RSA_WITH_AES_128_CBC_SHA`) or
    /// the OpenSSL way (`AES128-SHA`). `None` for suites whose record MAC is neither SHA-1 nor
    /// MD5 (SHA-256/384 CBC suites, AEAD suites): TLS-DSK defines no signature for them.
    pub fn from_suite_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        if upper.ends_with("_SHA") || upper.ends_with("-SHA") || upper == "SHA" {
            Some(MacAlgorithm::HmacSha1)
        } else if upper.ends_with("_MD5") || upper.ends_with("-MD5") {
            Some(MacAlgorithm::HmacMd5)
        } else {
            None
        }
    }

    fn mac(self, key: &[u8; 32], buffer: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail for 32 bytes; the
        // fallback is unreachable but keeps this free of panics.
        match self {
            MacAlgorithm::HmacSha1 => match Hmac::<Sha1>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(buffer);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            MacAlgorithm::HmacMd5 => match Hmac::<Md5>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(buffer);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn sign_hex(self, key: &[u8; 32], buffer: &[u8]) -> String {
        to_hex(&self.mac(key, buffer))
    }

    /// Case-insensitive hex (SIPE writes upper case, Microsoft lower case: sip.md §5.6),
    /// compared in constant time; a wrong length or a non-hex digit is simply a mismatch.
    fn verify_hex(self, key: &[u8; 32], buffer: &[u8], hex: &str) -> bool {
        let Some(given) = from_hex(hex) else {
            return false;
        };
        let expected = self.mac(key, buffer);
        if given.len() != expected.len() || expected.is_empty() {
            return false;
        }
        bool::from(expected.ct_eq(&given))
    }
}

/// The two TLS-DSK signing keys of one security association (sip.md §5.5) and the MAC they
/// are used with. The client signs with `client`, the server with `server`.
///
/// `Debug` shows only the MAC; the keys are [`Secret`]s and wiped on drop.
#[derive(Clone)]
pub struct SigningKeys {
    pub mac: MacAlgorithm,
    pub client: Secret<[u8; 32]>,
    pub server: Secret<[u8; 32]>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Splits the 128 bytes exported with label `client EAP encryption` (sip.md §5.5): the
    /// third 32-byte block is the client key, the fourth the server key. The first 64 bytes
    /// are unused by TLS-DSK.
    pub fn from_key_material(key_material: &[u8; 128], mac: MacAlgorithm) -> Self {
        let mut client = [0u8; 32];
        let mut server = [0u8; 32];
        client.copy_from_slice(&key_material[64..96]);
        server.copy_from_slice(&key_material[96..128]);
        SigningKeys {
            mac,
            client: Secret::new(client),
            server: Secret::new(server),
        }
    }

    /// The client's signature of a signature buffer (sip.md §7.1), lower-case hex.
    pub fn sign_client(&self, buffer: &[u8]) -> String {
        self.mac.sign_hex(self.client.expose(), buffer)
    }

    /// The server's signature of a signature buffer, lower-case hex.
    pub fn sign_server(&self, buffer: &[u8]) -> String {
        self.mac.sign_hex(self.server.expose(), buffer)
    }

    /// Checks a client `response`: case-insensitive hex, constant-time, wrong length → false.
    pub fn verify_client(&self, buffer: &[u8], hex: &str) -> bool {
        self.mac.verify_hex(self.client.expose(), buffer, hex)
    }

    /// Checks a server `rspauth`: case-insensitive hex, constant-time, wrong length → false.
    pub fn verify_server(&self, buffer: &[u8], hex: &str) -> bool {
        self.mac.verify_hex(self.server.expose(), buffer, hex)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// How far below the highest `cnum` seen an older one is still accepted (once).
pub const REPLAY_WINDOW: u64 = 64;

/// Replay protection for `cnum` (sip.md §6.1: a `cnum` must be new for the SA).
///
/// SIPE counts up by one per signed message and does **not** reset the counter when it
/// re-authenticates, so a new SA may start anywhere; there is no "must start at 1". Messages can
/// cross on the wire (a response and a new request), so numbers up to [`REPLAY_WINDOW`] below
/// the highest seen are accepted once, like IPsec's anti-replay window; older ones are refused.
///
/// Use: [`check`](Self::check) before verifying the signature (cheap refusal),
/// [`record`](Self::record) only after the signature verified (so a forged message cannot
/// burn a number).
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest cnum recorded, `None` before the first.
    highest: Option<u64>,
    /// Bit `i` set: `highest - i` was recorded.
    seen: u64,
}

/// Why a `cnum` was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReplayError {
    #[error("cnum {0} was already used in this security association (replayed message)")]
    Replayed(u64),
    #[error(
        "cnum {cnum} is too old: the highest seen is {highest}, and only the last 64 are accepted"
    )]
    TooOld { cnum: u64, highest: u64 },
}

impl ReplayWindow {
    /// Whether `n` may be accepted. Does not change the window.
    pub fn check(&self, n: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if n > highest {
            return Ok(());
        }
        let behind = highest - n;
        if behind >= REPLAY_WINDOW {
            return Err(ReplayError::TooOld { cnum: n, highest });
        }
        if self.seen & (1u64 << behind) != 0 {
            return Err(ReplayError::Replayed(n));
        }
        Ok(())
    }

    /// Marks `n` as used. Call after the message's signature verified.
    pub fn record(&mut self, n: u64) {
        match self.highest {
            None => {
                self.highest = Some(n);
                self.seen = 1;
            }
            Some(highest) if n > highest => {
                let ahead = n - highest;
                self.seen = if ahead >= REPLAY_WINDOW {
                    0
                } else {
                    self.seen << ahead
                };
                self.seen |= 1;
                self.highest = Some(n);
            }
            Some(highest) => {
                let behind = highest - n;
                if behind < REPLAY_WINDOW {
                    self.seen |= 1u64 << behind;
                }
            }
        }
    }

    /// The highest `cnum` recorded so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn suite_names_map_to_macs() {
        use MacAlgorithm::*;
        for (name, mac) in [
            ("TLS_RSA_WITH_AES_128_CBC_SHA", Some(HmacSha1)),
            ("AES256-SHA", Some(HmacSha1)),
            ("TLS_RSA_WITH_RC4_128_MD5", Some(HmacMd5)),
            ("RC4-MD5", Some(HmacMd5)),
            ("TLS_RSA_WITH_AES_128_CBC_SHA256", None),
            ("AES128-GCM-SHA256", None),
        ] {
            assert_eq!(MacAlgorithm::from_suite_name(name), mac, "{name}");
        }
        assert_eq!(HmacSha1.hex_len(), 40);
        assert_eq!(HmacMd5.hex_len(), 32);
    }

    #[test]
    fn debug_hides_keys() {
        let keys = SigningKeys::from_key_material(&[0x42; 128], MacAlgorithm::HmacSha1);
        let shown = format!("{keys:?}");
        assert!(!shown.contains("42") && !shown.contains("66"), "{shown}");
        assert!(shown.contains("HmacSha1"));
    }

    #[test]
    fn md5_signatures_are_32_hex() {
        let material: [u8; 128] = std::array::from_fn(|i| i as u8);
        let keys = SigningKeys::from_key_material(&material, MacAlgorithm::HmacMd5);
        let sig = keys.sign_client(b"buffer");
        assert_eq!(sig.len(), 32);
        assert!(keys.verify_client(b"buffer", &sig.to_uppercase()));
        assert!(!keys.verify_server(b"buffer", &sig));
    }

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(100), Ok(()));
        w.record(100);
        assert_eq!(w.check(100), Err(ReplayError::Replayed(100)));
        assert_eq!(w.check(101), Ok(()));
        w.record(103);
        // In-window, out of order: accepted once.
        assert_eq!(w.check(101), Ok(()));
        w.record(101);
        assert_eq!(w.check(101), Err(ReplayError::Replayed(101)));
        assert_eq!(w.check(102), Ok(()));
        assert_eq!(w.check(100), Err(ReplayError::Replayed(100)));
        // Exactly 64 below the highest is out of the window.
        w.record(164);
        assert_eq!(
            w.check(100),
            Err(ReplayError::TooOld {
                cnum: 100,
                highest: 164
            })
        );
        // 101..=164 is the window: 101 and 103 are remembered, 102 was never used.
        assert_eq!(w.check(101), Err(ReplayError::Replayed(101)));
        assert_eq!(w.check(102), Ok(()));
        assert_eq!(w.check(103), Err(ReplayError::Replayed(103)));
        // A big jump clears the window.
        w.record(10_000);
        assert_eq!(w.check(9_999), Ok(()));
        assert_eq!(w.check(10_000), Err(ReplayError::Replayed(10_000)));
        assert_eq!(w.highest(), Some(10_000));
    }
}
