//! The REGISTER our client sends, laid out as pidgin-sipe lays it out (sip.md §2.1), and the
//! identifiers in it. Randomness comes from the caller's [`Entropy`].

use lyncd_core::{Entropy, SipAddress};
use lyncd_sip::{Message, MessageBuilder};
use sha1::{Digest, Sha1};

/// SIPE's `methods="…"` Contact parameter (sip.md §2.1).
const METHODS: &str =
    "INVITE, MESSAGE, INFO, SUBSCRIBE, OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, BENOTIFY";
/// SIPE's constant `ms-opaque` Contact URI parameter.
const MS_OPAQUE: &str = "d3470f2e1d";
/// One `Supported` line, as SIPE writes it.
pub const SUPPORTED: &str =
    "gruu-10, adhoclist, msrtc-event-categories, com.microsoft.msrtc.presence";
/// A Microsoft-style User-Agent: Office 365 once refused non-Microsoft agents (sip.md §2.1,
/// §13.5); the lyncd part keeps it honest.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "UCCAPI/16.0.0.0 OC/16.0.0.0 (Skype for Business) lyncd/",
    env!("CARGO_PKG_VERSION")
);

/// `epid`: 12 lower-case hex, the last 6 bytes of a SHA-1 (sip.md §2.1). SIPE hashes its
/// host name and address; we hash the caller's stable endpoint id, so the epid (and with it
/// `+sip.instance`) stays the same for one installation.
pub fn epid_for(endpoint_id: &str) -> String {
    let digest = Sha1::digest(endpoint_id.as_bytes());
    hex_lower(&digest[14..20])
}

/// `XXXXgXXXXaXXXXiXXXXmXXXXtXXXXbXXXXxXXXXx` (X = upper-case hex), SIPE's Call-ID shape.
pub fn call_id(entropy: &mut dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    let mut out = String::with_capacity(40);
    for (pair, letter) in b.chunks(2).zip(['g', 'a', 'i', 'm', 't', 'b', 'x', 'x']) {
        out.push_str(&hex_upper(pair));
        out.push(letter);
    }
    out
}

/// `z9hG4bK` + 20 upper-case hex: a new branch per request.
pub fn branch(entropy: &mut dyn Entropy) -> String {
    let mut b = [0u8; 10];
    entropy.fill(&mut b);
    format!("z9hG4bK{}", hex_upper(&b))
}

/// A From tag of 10 decimal digits, new for every REGISTER (SIPE: 8–10 digits).
pub fn from_tag(entropy: &mut dyn Entropy) -> String {
    let mut b = [0u8; 8];
    entropy.fill(&mut b);
    let n = u64::from_le_bytes(b) % 9_000_000_000 + 1_000_000_000;
    n.to_string()
}

/// `crand`: exactly 8 lower-case hex from the entropy input (sip.md §5.1).
pub fn crand(entropy: &mut dyn Entropy) -> String {
    let mut b = [0u8; 4];
    entropy.fill(&mut b);
    hex_lower(&b)
}

pub fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// What stays the same in every REGISTER of one session.
#[derive(Clone, Debug)]
pub struct RegisterTemplate {
    pub address: SipAddress,
    pub epid: String,
    /// `+sip.instance` GUID derived from the epid.
    pub instance: String,
    pub call_id: String,
    /// `host:port` written into Via and Contact.
    pub local: String,
    /// `tls` or `tcp`, lower case as SIPE writes it.
    pub transport: &'static str,
    pub user_agent: String,
}

impl RegisterTemplate {
    /// One REGISTER without `Authorization` (that is appended after `Content-Length`, as SIPE
    /// does, once the signature over the rest is known). `expires_zero` adds `Expires: 0`
    /// (sign-out); otherwise no Expires, as SIPE: the server chooses the lifetime.
    pub fn build(&self, cseq: u32, entropy: &mut dyn Entropy, expires_zero: bool) -> Message {
        let aor = self.address.sip_uri();
        let local = &self.local;
        let transport = self.transport;
        let mut b = MessageBuilder::request("REGISTER", &format!("sip:{}", self.address.domain()))
            .header(
                "Via",
                &format!("SIP/2.0/{transport} {local};branch={}", branch(entropy)),
            )
            .header(
                "From",
                &format!("<{aor}>;tag={};epid={}", from_tag(entropy), self.epid),
            )
            .header("To", &format!("<{aor}>"))
            .header("Max-Forwards", "70")
            .header("CSeq", &format!("{cseq} REGISTER"))
            .header("User-Agent", &self.user_agent)
            .header("Call-ID", &self.call_id)
            .header(
                "Contact",
                &format!(
                    "<sip:{local};transport={transport};ms-opaque={MS_OPAQUE}>;methods=\"{METHODS}\";proxy=replace;+sip.instance=\"<urn:uuid:{}>\"",
                    self.instance
                ),
            )
            .header("Supported", SUPPORTED)
            .header("Event", "registration")
            .header("Allow-Events", "presence")
            .header("ms-keep-alive", "UAC;hop-hop=yes");
        if expires_zero {
            b = b.header("Expires", "0");
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lyncd_core::SeededEntropy;

    #[test]
    fn identifier_shapes() {
        let mut e = SeededEntropy::new(1);
        let c = call_id(&mut e);
        assert_eq!(c.len(), 40);
        let letters: String = c.chars().skip(4).step_by(5).collect();
        assert_eq!(letters, "gaimtbxx");
        let b = branch(&mut e);
        assert_eq!(b.len(), 27);
        assert!(
            b[7..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        let t = from_tag(&mut e);
        assert_eq!(t.len(), 10);
        let r = crand(&mut e);
        assert_eq!(r.len(), 8);
        assert!(
            r.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        let epid = epid_for("8ca50061-9276-524f-a9b4-14011a2c5105");
        assert_eq!(epid.len(), 12);
        assert_eq!(epid, epid_for("8ca50061-9276-524f-a9b4-14011a2c5105"));
    }
}
