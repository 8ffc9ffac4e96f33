//! The Web Ticket service's WsFedBearer endpoint: SIPE's RST carrying our IdP token, the signed
//! SAML web ticket we issue, its proof key, the RSTR and faults (http.md §6, §7.2).

use hmac::{Hmac, Mac};
use lyncd_core::{Entropy, Secret, SipAddress, UtcTime, format_iso, normalize_audience, parse_iso};
use sha1::Sha1;
use time::Duration;

use crate::crypto;
use crate::error::{TokenError, WsError};
use crate::idp::{applies_to_address, check_request_type};
use crate::keys::{RsaSigningKey, TrustedCert, WrapKey};
use crate::saml;
use crate::xml::{self, escape_attr, escape_text, ns};

const CLAIM_URI: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri";
const SAML11_TOKEN_TYPE: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1";
const CK_PSHA1: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1";
const NOT_BEFORE_MARGIN: Duration = Duration::minutes(5);
/// SIPE derives exactly 32 bytes (its entropy size) and ignores KeySize (http.md §6.2).
pub const PROOF_KEY_LEN: usize = 32;

/// A parsed WsFedBearer RST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebTicketRequest {
    pub timestamp_created: Option<UtcTime>,
    pub timestamp_expires: Option<UtcTime>,
    /// Raw XML of the first `EncryptedData` child of `wsse:Security`, byte for byte.
    pub encrypted_data: String,
    pub applies_to: String,
    /// The `sip:` URI the client asks the ticket to be for.
    pub claimed_uri: Option<String>,
    pub client_entropy: Option<Vec<u8>>,
    pub context: Option<String>,
    pub message_id: Option<String>,
}

/// Parses SIPE's WsFedBearer request (captures 008/015): SOAP 1.1 (1.2 tolerated), WS-Trust 1.3
/// with a 2005/02 RequestType, a bare `&` in the AppliesTo address repaired first.
pub fn parse_webticket_request(body: &[u8]) -> Result<WebTicketRequest, WsError> {
    let text = xml::checked_text(body, xml::DEFAULT_MAX_BYTES)?;
    let repaired = xml::repair_address_ampersands(text);
    let text: &str = &repaired;
    let doc = xml::parse_text(text)?;
    let env = doc.root_element();
    if !xml::is(&env, &[ns::SOAP11, ns::SOAP12], "Envelope") {
        return Err(WsError::NotSoap(env.tag_name().name().to_string()));
    }
    let soap = env.tag_name().namespace().unwrap_or("");
    let header = xml::child(env, &[soap], "Header").ok_or(WsError::Missing("soap:Header"))?;
    let security =
        xml::child(header, &[ns::WSSE], "Security").ok_or(WsError::Missing("wsse:Security"))?;
    let ts = xml::child(security, &[ns::WSU], "Timestamp");
    let ts_time = |name: &'static str| -> Result<Option<UtcTime>, WsError> {
        ts.and_then(|t| xml::child(t, &[ns::WSU], name))
            .map(|n| {
                let v = xml::text_of(n);
                parse_iso(&v).map_err(|_| WsError::BadValue {
                    what: "wsu:Timestamp time",
                    value: v,
                    why: "it is not an ISO 8601 time",
                })
            })
            .transpose()
    };
    let timestamp_created = ts_time("Created")?;
    let timestamp_expires = ts_time("Expires")?;
    let ed = xml::child(security, &[ns::XENC], "EncryptedData")
        .ok_or(WsError::Missing("xenc:EncryptedData in wsse:Security"))?;
    let encrypted_data = text[ed.range()].to_string();
    let message_id = xml::child(header, &[ns::WSA10, ns::WSA04], "MessageID").map(xml::text_of);

    let body = xml::child(env, &[soap], "Body").ok_or(WsError::Missing("soap:Body"))?;
    let rst = xml::child(body, &[ns::WST13, ns::WST05], "RequestSecurityToken")
        .ok_or(WsError::Missing("wst:RequestSecurityToken"))?;
    check_request_type(rst)?;
    let applies_to = applies_to_address(rst)?;
    let context = rst.attribute("Context").map(str::to_string);
    let claimed_uri = xml::child(rst, &[ns::WST13, ns::WST05], "Claims")
        .into_iter()
        .flat_map(|c| c.children())
        .filter(|c| xml::is(c, &[ns::AUTH], "ClaimType") && c.attribute("Uri") == Some(CLAIM_URI))
        .filter_map(|c| xml::child(c, &[ns::AUTH], "Value"))
        .map(xml::text_of)
        .next();
    let client_entropy = match xml::child(rst, &[ns::WST13, ns::WST05], "Entropy")
        .and_then(|e| xml::child(e, &[ns::WST13, ns::WST05], "BinarySecret"))
    {
        None => None,
        Some(bs) => {
            let v = xml::text_of(bs);
            let bytes = xml::b64_decode(&v).ok_or(WsError::BadValue {
                what: "wst:Entropy/wst:BinarySecret",
                value: v.clone(),
                why: "it is not base64",
            })?;
            if bytes.len() < 16 {
                return Err(WsError::BadValue {
                    what: "wst:Entropy/wst:BinarySecret",
                    value: v,
                    why: "client entropy must be at least 16 bytes",
                });
            }
            Some(bytes)
        }
    };
    Ok(WebTicketRequest {
        timestamp_created,
        timestamp_expires,
        encrypted_data,
        applies_to,
        claimed_uri,
        client_entropy,
        context,
        message_id,
    })
}

/// WS-Trust `P_SHA1` (TLS 1.0 P_hash with HMAC-SHA1): `A(0)=seed; A(i)=HMAC(secret, A(i-1));
/// out = HMAC(secret, A(1)‖seed) ‖ HMAC(secret, A(2)‖seed) ‖ …`, truncated to `len`.
pub fn psha1(secret: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mac = || {
        <Hmac<Sha1> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
    };
    let mut out = Vec::with_capacity(len + 20);
    let mut a = seed.to_vec();
    while out.len() < len {
        a = mac().chain_update(&a).finalize().into_bytes().to_vec();
        out.extend_from_slice(
            &mac()
                .chain_update(&a)
                .chain_update(seed)
                .finalize()
                .into_bytes(),
        );
    }
    out.truncate(len);
    out
}

/// What goes into a web ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebTicketParams {
    /// The Web Ticket service's issuer name.
    pub issuer: String,
    /// The AppliesTo the client asked for; stored normalised.
    pub audience: String,
    pub subject: SipAddress,
    pub lifetime: Duration,
}

/// An issued web ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedWebTicket {
    /// Self-contained signed `saml:Assertion`, `AssertionID` in double quotes.
    pub assertion: String,
    pub assertion_id: String,
    /// 32 bytes, present when the client sent entropy.
    pub server_entropy: Option<Vec<u8>>,
    pub proof_key: Option<Secret<Vec<u8>>>,
    pub created: UtcTime,
    pub expires: UtcTime,
}

/// Claims of a verified web ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebTicketClaims {
    pub subject: SipAddress,
    pub assertion_id: String,
    pub not_on_or_after: UtcTime,
    pub proof_key: Option<Secret<Vec<u8>>>,
}

/// Issues a signed SAML 1.1 web ticket (http.md §6.4). With client entropy, a proof key
/// `P_SHA1(client, server)[..32]` is derived and carried inside the ticket, kw-aes256-wrapped
/// under `wrap`, so any of our relying parties recovers it without shared state.
pub fn issue_web_ticket(
    p: &WebTicketParams,
    signer: &RsaSigningKey,
    wrap: &WrapKey,
    client_entropy: Option<&[u8]>,
    now: UtcTime,
    entropy: &mut dyn Entropy,
) -> Result<IssuedWebTicket, WsError> {
    if p.issuer.is_empty() {
        return Err(WsError::BadParams("the issuer must not be empty".into()));
    }
    if p.lifetime <= Duration::ZERO {
        return Err(WsError::BadParams(
            "the ticket lifetime must be positive".into(),
        ));
    }
    let audience = normalize_audience(&p.audience)
        .map_err(|e| WsError::BadParams(format!("audience: {e}")))?;
    let created = saml::whole_seconds(now);
    let expires = created + p.lifetime;
    let id = saml::new_assertion_id(entropy);

    let (server_entropy, proof_key, key_info) = match client_entropy {
        None => (None, None, String::new()),
        Some(client) => {
            if client.len() < 16 {
                return Err(WsError::BadParams(
                    "client entropy must be at least 16 bytes".into(),
                ));
            }
            let mut server = vec![0u8; 32];
            entropy.fill(&mut server);
            let k = Secret::new(psha1(client, &server, PROOF_KEY_LEN));
            let wrapped = crypto::kw_wrap(wrap.bytes(), k.expose())?;
            let ki = format!(
                "<KeyInfo xmlns=\"{dsig}\"><EncryptedKey xmlns=\"{xenc}\"><EncryptionMethod Algorithm=\"{kw}\"/>\
<KeyInfo xmlns=\"{dsig}\"><KeyName>{name}</KeyName></KeyInfo><CipherData><CipherValue>{cv}</CipherValue></CipherData></EncryptedKey></KeyInfo>",
                dsig = ns::DSIG,
                xenc = ns::XENC,
                kw = crypto::KW_AES256,
                name = escape_text(wrap.key_name()),
                cv = xml::b64_encode(&wrapped),
            );
            (Some(server), Some(k), ki)
        }
    };
    let methods = if proof_key.is_some() {
        "<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:holder-of-key</saml:ConfirmationMethod>\
<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod>"
    } else {
        "<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod>"
    };
    let uri = escape_text(&p.subject.sip_uri());
    let template = format!(
        "<saml:Assertion xmlns:saml=\"{saml}\" MajorVersion=\"1\" MinorVersion=\"1\" AssertionID=\"{id}\" Issuer=\"{issuer}\" IssueInstant=\"{instant}\">\
<saml:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\"><saml:AudienceRestrictionCondition><saml:Audience>{aud}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>\
<saml:AttributeStatement><saml:Subject><saml:NameIdentifier Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">{uri}</saml:NameIdentifier>\
<saml:SubjectConfirmation>{methods}{key_info}</saml:SubjectConfirmation></saml:Subject>\
<saml:Attribute AttributeName=\"uri\" AttributeNamespace=\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims\"><saml:AttributeValue>{uri}</saml:AttributeValue></saml:Attribute>\
</saml:AttributeStatement>{sig}</saml:Assertion>",
        saml = ns::SAML1,
        issuer = escape_attr(&p.issuer),
        instant = format_iso(created),
        nb = format_iso(created - NOT_BEFORE_MARGIN),
        noa = format_iso(expires),
        aud = escape_text(&audience),
        sig = crypto::signature_template(&id, signer),
    );
    let assertion = crypto::sign(template, signer)?;
    Ok(IssuedWebTicket {
        assertion,
        assertion_id: id,
        server_entropy,
        proof_key,
        created,
        expires,
    })
}

/// The RSTR collection (http.md §6.3): SOAP 1.1; one `wst:Lifetime` with canonical-safe
/// `wsu:Created`/`wsu:Expires` (prefix bound on the envelope, no whitespace, no self-closing);
/// the assertion before anything else that contains `:Assertion`; the server entropy as the only
/// `BinarySecret`, outside the assertion; `ComputedKey` PSHA1.
pub fn render_webticket_response(
    t: &IssuedWebTicket,
    context: Option<&str>,
    relates_to: Option<&str>,
    applies_to: &str,
) -> String {
    let relates = relates_to
        .map(|r| format!("<a:RelatesTo>{}</a:RelatesTo>", escape_text(r)))
        .unwrap_or_default();
    let ctx = context
        .map(|c| format!(" Context=\"{}\"", escape_attr(c)))
        .unwrap_or_default();
    let (entropy, proof) = match &t.server_entropy {
        Some(se) => (
            format!(
                "<wst:Entropy><wst:BinarySecret>{}</wst:BinarySecret></wst:Entropy><wst:KeySize>{}</wst:KeySize>",
                xml::b64_encode(se),
                PROOF_KEY_LEN * 8
            ),
            format!(
                "<wst:RequestedProofToken><wst:ComputedKey>{CK_PSHA1}</wst:ComputedKey></wst:RequestedProofToken>"
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<s:Envelope xmlns:s=\"{soap}\" xmlns:a=\"{wsa}\" xmlns:wsu=\"{wsu}\">\
<s:Header><a:Action s:mustUnderstand=\"1\">http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal</a:Action>{relates}</s:Header>\
<s:Body><wst:RequestSecurityTokenResponseCollection xmlns:wst=\"{wst}\"><wst:RequestSecurityTokenResponse{ctx}>\
<wst:TokenType>{tt}</wst:TokenType>\
<wst:Lifetime><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wst:Lifetime>\
<wst:RequestedSecurityToken>{assertion}</wst:RequestedSecurityToken>{entropy}\
<wst:RequestedAttachedReference><wsse:SecurityTokenReference xmlns:wsse=\"{wsse}\">\
<wsse:KeyIdentifier ValueType=\"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID\">{id}</wsse:KeyIdentifier>\
</wsse:SecurityTokenReference></wst:RequestedAttachedReference>{proof}\
<wsp:AppliesTo xmlns:wsp=\"{wsp}\"><a:EndpointReference><a:Address>{applies}</a:Address></a:EndpointReference></wsp:AppliesTo>\
</wst:RequestSecurityTokenResponse></wst:RequestSecurityTokenResponseCollection></s:Body></s:Envelope>",
        soap = ns::SOAP11,
        wsa = ns::WSA10,
        wsu = ns::WSU,
        wst = ns::WST13,
        wsse = ns::WSSE,
        wsp = ns::WSP,
        tt = SAML11_TOKEN_TYPE,
        created = format_iso(t.created),
        expires = format_iso(t.expires),
        assertion = t.assertion,
        id = escape_text(&t.assertion_id),
        applies = escape_text(applies_to),
    )
}

/// SOAP 1.1 fault codes used by the WsFedBearer endpoint (http.md §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The IdP token (or user) was not accepted.
    FailedAuthentication,
    /// The token could not be processed at all.
    InvalidSecurityToken,
    /// The request was malformed.
    Client,
    /// We failed.
    Server,
}

impl FaultCode {
    /// The qualified name placed in `faultcode`.
    pub fn qname(self) -> &'static str {
        match self {
            FaultCode::FailedAuthentication => "wsse:FailedAuthentication",
            FaultCode::InvalidSecurityToken => "wsse:InvalidSecurityToken",
            FaultCode::Client => "s:Client",
            FaultCode::Server => "s:Server",
        }
    }
}

/// A SOAP 1.1 fault (sent with HTTP 500 plus `X-Ms-diagnostics` by the shell).
pub fn render_soap11_fault(code: FaultCode, reason: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<s:Envelope xmlns:s=\"{soap}\" xmlns:wsse=\"{wsse}\"><s:Body><s:Fault>\
<faultcode>{code}</faultcode><faultstring xml:lang=\"en-US\">{reason}</faultstring>\
</s:Fault></s:Body></s:Envelope>",
        soap = ns::SOAP11,
        wsse = ns::WSSE,
        code = code.qname(),
        reason = escape_text(reason),
    )
}

/// Verifies a web ticket exactly as presented (`X-MS-WebTicket: opaque=` base64-decoded): the
/// raw assertion SIPE cut out of our RSTR. Recovers the proof key when the ticket carries one.
pub fn verify_web_ticket(
    assertion: &[u8],
    issuer_cert: &TrustedCert,
    wrap: &WrapKey,
    expected_issuer: &str,
    expected_audience: &str,
    now: UtcTime,
    skew: Duration,
) -> Result<WebTicketClaims, TokenError> {
    let text = xml::checked_text(assertion, xml::DEFAULT_MAX_BYTES)?;
    let doc = saml::parse(text)?;
    let checked = saml::check(
        &doc,
        text,
        issuer_cert,
        expected_issuer,
        expected_audience,
        now,
        skew,
    )?;
    let names = saml::name_identifiers(checked.root);
    let first = names
        .first()
        .ok_or(TokenError::MissingClaim("NameIdentifier"))?;
    let subject =
        SipAddress::parse(first).map_err(|_| TokenError::MissingClaim("SIP address subject"))?;
    if names
        .iter()
        .any(|n| SipAddress::parse(n).ok().as_ref() != Some(&subject))
    {
        return Err(TokenError::Malformed(
            "the ticket's subjects name different users".into(),
        ));
    }
    let proof_key = recover_proof_key(checked.root, wrap)?;
    Ok(WebTicketClaims {
        subject,
        assertion_id: checked.assertion_id,
        not_on_or_after: checked.not_on_or_after,
        proof_key,
    })
}

fn recover_proof_key(
    root: roxmltree::Node<'_, '_>,
    wrap: &WrapKey,
) -> Result<Option<Secret<Vec<u8>>>, TokenError> {
    let eks: Vec<roxmltree::Node<'_, '_>> = root
        .children()
        .filter(|s| s.is_element())
        .filter_map(|s| xml::child(s, &[ns::SAML1], "Subject"))
        .filter_map(|s| xml::child(s, &[ns::SAML1], "SubjectConfirmation"))
        .filter_map(|sc| xml::child(sc, &[ns::DSIG], "KeyInfo"))
        .filter_map(|ki| xml::child(ki, &[ns::XENC], "EncryptedKey"))
        .collect();
    let Some(ek) = eks.first() else {
        return Ok(None);
    };
    if eks.len() > 1 {
        return Err(TokenError::Malformed("more than one proof key".into()));
    }
    let alg = xml::child(*ek, &[ns::XENC], "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or("");
    if alg != crypto::KW_AES256 {
        return Err(TokenError::AlgorithmNotAllowed(alg.to_string()));
    }
    let name = xml::child(*ek, &[ns::DSIG], "KeyInfo")
        .and_then(|ki| xml::child(ki, &[ns::DSIG], "KeyName"))
        .map(xml::text_of)
        .unwrap_or_default();
    if name != wrap.key_name() {
        return Err(TokenError::UnknownKeyName {
            found: name,
            expected: wrap.key_name().to_string(),
        });
    }
    let cv = xml::child(*ek, &[ns::XENC], "CipherData")
        .and_then(|cd| xml::child(cd, &[ns::XENC], "CipherValue"))
        .map(xml::text_of)
        .and_then(|v| xml::b64_decode(&v))
        .ok_or_else(|| TokenError::Malformed("the proof key's CipherValue is missing".into()))?;
    let k = crypto::kw_unwrap(wrap.bytes(), &cv)?;
    if k.len() != PROOF_KEY_LEN {
        return Err(TokenError::Undecryptable);
    }
    Ok(Some(Secret::new(k.to_vec())))
}
