//! The MS-SIPAE message signature buffer (sip.md §7.1).
//!
//! Both directions use the same buffer: `<field>` after `<field>`, no
//! separators, no line end. The fields are the exact wire text of the
//! message's headers, which is why [`Message`] never
//! re-serialises anything. The MAC over the buffer is the security
//! association's business (lyncd-tlsdsk), not this crate's.

use crate::auth::AuthHeader;
use crate::message::{FieldError, Message};
use crate::name_addr::NameAddr;
use crate::names;
use crate::syntax::{split_top_level, trim_ws};

/// The authentication-header side of the buffer (fields 1–5) and the
/// protocol version that selects the field list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigParams<'a> {
    /// `TLS-DSK`, `NTLM` or `Kerberos`, as in the header.
    pub scheme: &'a str,
    /// `crand` (client → server) or `srand` (server → client).
    pub rand: &'a str,
    /// `cnum` or `snum`.
    pub num: &'a str,
    pub realm: &'a str,
    /// Including `sip/` for Kerberos.
    pub targetname: &'a str,
    /// Security association version; 3 and above use the long field list.
    pub version: u32,
}

impl<'a> SigParams<'a> {
    /// Reads fields 1–5 from a signed message's `Authorization` (crand/cnum)
    /// or `Authentication-Info` (srand/snum) header. `version` comes from the
    /// security association, because SIPE drops `version` from the
    /// `Authorization` of an established SA (sip.md §7.2). `None` when a field
    /// is missing: such a message cannot be verified.
    pub fn from_auth(auth: &AuthHeader<'a>, version: u32) -> Option<SigParams<'a>> {
        Some(SigParams {
            scheme: auth.scheme,
            rand: auth.get("crand").or_else(|| auth.get("srand"))?,
            num: auth.get("cnum").or_else(|| auth.get("snum"))?,
            realm: auth.get("realm")?,
            targetname: auth.get("targetname")?,
            version,
        })
    }
}

/// Builds the signature buffer of `msg`.
///
/// Version ≥ 3: scheme, rand, num, realm, targetname, Call-ID, CSeq number,
/// method, From URI, From tag, To URI, To tag, P-Asserted-Identity SIP URI,
/// its tel URI, Expires, and for responses the status code (15 fields for a
/// request, 16 for a response). Version < 3 (OCS 2005, MS-SIP 3.1.4.2) leaves
/// out To URI and both P-Asserted-Identity fields.
///
/// Call-ID, CSeq, From and To are required (`FieldError::Missing`); a From or
/// To that does not parse is `FieldError::Invalid`.
pub fn buffer(msg: &Message, p: &SigParams<'_>) -> Result<String, FieldError> {
    let call_id = msg
        .header_by_id(names::CALL_ID)
        .ok_or(FieldError::Missing("Call-ID"))?;
    let cseq = msg.cseq()?;
    let from = msg.from_addr()?;
    let to = msg.to_addr()?;
    let method = msg.method().unwrap_or(cseq.method);
    let (pai_sip, pai_tel) = asserted_identity(msg);
    let expires = msg.header_by_id(names::EXPIRES).unwrap_or("");
    let code = msg.status_text();

    let from_tag = from.tag().unwrap_or("");
    let to_tag = to.tag().unwrap_or("");
    let auth = [p.scheme, p.rand, p.num, p.realm, p.targetname];
    let common = [call_id, cseq.number_raw, method, from.uri, from_tag];
    let tail: &[&str] = if p.version >= 3 {
        &[to.uri, to_tag, pai_sip, pai_tel, expires]
    } else {
        &[to_tag, expires]
    };
    let fields = auth
        .iter()
        .chain(&common)
        .chain(tail)
        .chain(code.as_slice());

    let len: usize = fields.clone().map(|f| f.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for f in fields {
        out.push('<');
        out.push_str(f);
        out.push('>');
    }
    Ok(out)
}

/// (SIP URI, tel URI) of P-Asserted-Identity, or of P-Preferred-Identity when
/// there is no P-Asserted-Identity. Either may be empty. The URIs keep the
/// scheme case as sent (`SIP:bob@…` stays upper case).
fn asserted_identity(msg: &Message) -> (&str, &str) {
    let id = if msg.header_by_id(names::P_ASSERTED_IDENTITY).is_some() {
        names::P_ASSERTED_IDENTITY
    } else {
        names::P_PREFERRED_IDENTITY
    };
    let mut sip = "";
    let mut tel = "";
    for value in msg.header_all_by_id(id) {
        for one in split_top_level(value, b',') {
            let Ok(addr) = NameAddr::parse(trim_ws(one)) else {
                continue;
            };
            let scheme = addr.uri.split_once(':').map_or("", |(s, _)| s);
            if sip.is_empty()
                && (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
            {
                sip = addr.uri;
            } else if tel.is_empty() && scheme.eq_ignore_ascii_case("tel") {
                tel = addr.uri;
            }
        }
    }
    (sip, tel)
}
