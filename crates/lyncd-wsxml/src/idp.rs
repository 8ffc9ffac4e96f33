//! Our identity provider ("Org ID"): the RST2.srf request SIPE sends, the encrypted SAML token we
//! return, its faults, and the realm document (http.md §5, §11).

use lyncd_core::{Entropy, Secret, UtcTime, format_iso, normalize_audience};
use time::Duration;

use crate::crypto;
use crate::error::{TokenError, WsError};
use crate::keys::{RsaDecryptionKey, RsaEncryptionCert, RsaSigningKey, TrustedCert};
use crate::saml;
use crate::xml::{self, escape_attr, escape_text, ns};

/// WS-Trust Issue request types we accept (SIPE sends the 2005/02 one even in 1.3 messages).
pub(crate) const ISSUE_2005: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue";
pub(crate) const ISSUE_13: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue";
const PASSWORD_DIGEST: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";

/// How far before issuing the assertion is already valid, to absorb clock differences.
const NOT_BEFORE_MARGIN: Duration = Duration::minutes(5);

/// A parsed RST2.srf request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rst2Request {
    pub username: String,
    pub password: Secret<String>,
    /// `AppliesTo` address, verbatim (the WsFedBearer port location from our MEX).
    pub applies_to: String,
    pub message_id: Option<String>,
}

/// Parses SIPE's RST2.srf request: SOAP 1.2 (SOAP 1.1 tolerated), WS-Trust 2005/02 (1.3
/// tolerated), cleartext `UsernameToken`, no Timestamp required.
pub fn parse_rst2_request(body: &[u8]) -> Result<Rst2Request, WsError> {
    let doc = xml::parse(body, xml::DEFAULT_MAX_BYTES)?;
    let env = doc.root_element();
    if !xml::is(&env, &[ns::SOAP12, ns::SOAP11], "Envelope") {
        return Err(WsError::NotSoap(env.tag_name().name().to_string()));
    }
    let soap = env.tag_name().namespace().unwrap_or("");
    let header = xml::child(env, &[soap], "Header").ok_or(WsError::Missing("soap:Header"))?;
    let token = xml::child(header, &[ns::WSSE], "Security")
        .and_then(|s| xml::child(s, &[ns::WSSE], "UsernameToken"))
        .ok_or(WsError::Missing("wsse:Security/wsse:UsernameToken"))?;
    let username = xml::child(token, &[ns::WSSE], "Username")
        .map(xml::text_of)
        .ok_or(WsError::Missing("wsse:Username"))?;
    if username.is_empty() {
        return Err(WsError::BadValue {
            what: "wsse:Username",
            value: username,
            why: "it is empty",
        });
    }
    let pw = xml::child(token, &[ns::WSSE], "Password").ok_or(WsError::Missing("wsse:Password"))?;
    if pw.attribute("Type") == Some(PASSWORD_DIGEST) {
        return Err(WsError::BadValue {
            what: "wsse:Password/@Type",
            value: PASSWORD_DIGEST.to_string(),
            why: "only a cleartext password (PasswordText) can be checked",
        });
    }
    // Passwords are taken exactly as sent (no trimming): spaces can be part of a password.
    let password: String = pw.children().filter_map(|c| c.text()).collect();
    let message_id = xml::child(header, &[ns::WSA10, ns::WSA04], "MessageID").map(xml::text_of);

    let body = xml::child(env, &[soap], "Body").ok_or(WsError::Missing("soap:Body"))?;
    let rst = xml::child(body, &[ns::WST05, ns::WST13], "RequestSecurityToken")
        .ok_or(WsError::Missing("wst:RequestSecurityToken"))?;
    check_request_type(rst)?;
    let applies_to = applies_to_address(rst)?;
    Ok(Rst2Request {
        username,
        password: Secret::new(password),
        applies_to,
        message_id,
    })
}

pub(crate) fn check_request_type(rst: roxmltree::Node<'_, '_>) -> Result<(), WsError> {
    if let Some(rt) = xml::child(rst, &[ns::WST05, ns::WST13], "RequestType") {
        let v = xml::text_of(rt);
        if v != ISSUE_2005 && v != ISSUE_13 {
            return Err(WsError::BadValue {
                what: "wst:RequestType",
                value: v,
                why: "only Issue requests are served",
            });
        }
    }
    Ok(())
}

pub(crate) fn applies_to_address(rst: roxmltree::Node<'_, '_>) -> Result<String, WsError> {
    let addr = xml::child(rst, &[ns::WSP, ns::WSP15], "AppliesTo")
        .and_then(|a| xml::child(a, &[ns::WSA10, ns::WSA04], "EndpointReference"))
        .and_then(|e| xml::child(e, &[ns::WSA10, ns::WSA04], "Address"))
        .map(xml::text_of)
        .ok_or(WsError::Missing(
            "wsp:AppliesTo/wsa:EndpointReference/wsa:Address",
        ))?;
    if addr.is_empty() {
        return Err(WsError::BadValue {
            what: "AppliesTo address",
            value: addr,
            why: "it is empty",
        });
    }
    Ok(addr)
}

/// What goes into an IdP token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpTokenParams {
    /// Our IdP's issuer name, e.g. `https://login.contoso.com/`.
    pub issuer: String,
    /// The WsFedBearer URL the token is for; stored normalised.
    pub audience: String,
    /// `user@domain`.
    pub upn: String,
    pub object_id: String,
    pub lifetime: Duration,
}

/// An issued IdP token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpToken {
    /// A self-contained `xenc:EncryptedData` element: all namespaces declared on or inside it.
    pub encrypted_data: String,
    pub created: UtcTime,
    pub expires: UtcTime,
}

/// Claims of a verified IdP token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpClaims {
    pub upn: String,
    pub assertion_id: String,
    pub not_on_or_after: UtcTime,
}

/// Issues a signed SAML 1.1 assertion (http.md §11.2), encrypted with AES-256-GCM under a fresh
/// key that is RSA-OAEP-transported to `recipient`.
pub fn issue_idp_token(
    p: &IdpTokenParams,
    signer: &RsaSigningKey,
    recipient: &RsaEncryptionCert,
    now: UtcTime,
    entropy: &mut dyn Entropy,
) -> Result<IdpToken, WsError> {
    if p.issuer.is_empty() || p.upn.is_empty() {
        return Err(WsError::BadParams(
            "the issuer and the UPN must not be empty".into(),
        ));
    }
    if p.lifetime <= Duration::ZERO {
        return Err(WsError::BadParams(
            "the token lifetime must be positive".into(),
        ));
    }
    let audience = normalize_audience(&p.audience)
        .map_err(|e| WsError::BadParams(format!("audience: {e}")))?;
    let created = saml::whole_seconds(now);
    let expires = created + p.lifetime;
    let id = saml::new_assertion_id(entropy);
    let upn = escape_text(&p.upn);
    let instant = format_iso(created);
    let subject = format!(
        "<saml:Subject><saml:NameIdentifier Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">{upn}</saml:NameIdentifier>\
<saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>"
    );
    let template = format!(
        "<saml:Assertion xmlns:saml=\"{saml}\" MajorVersion=\"1\" MinorVersion=\"1\" AssertionID=\"{id}\" Issuer=\"{issuer}\" IssueInstant=\"{instant}\">\
<saml:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\"><saml:AudienceRestrictionCondition><saml:Audience>{aud}</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>\
<saml:AuthenticationStatement AuthenticationMethod=\"urn:oasis:names:tc:SAML:1.0:am:password\" AuthenticationInstant=\"{instant}\">{subject}</saml:AuthenticationStatement>\
<saml:AttributeStatement>{subject}\
<saml:Attribute AttributeName=\"UPN\" AttributeNamespace=\"http://schemas.xmlsoap.org/claims\"><saml:AttributeValue>{upn}</saml:AttributeValue></saml:Attribute>\
<saml:Attribute AttributeName=\"objectId\" AttributeNamespace=\"urn:lyncd:claims\"><saml:AttributeValue>{oid}</saml:AttributeValue></saml:Attribute>\
</saml:AttributeStatement>{sig}</saml:Assertion>",
        saml = ns::SAML1,
        issuer = escape_attr(&p.issuer),
        nb = format_iso(created - NOT_BEFORE_MARGIN),
        noa = format_iso(expires),
        aud = escape_text(&audience),
        oid = escape_text(&p.object_id),
        sig = crypto::signature_template(&id, signer),
    );
    let signed = crypto::sign(template, signer)?;
    let encrypted_data = crypto::encrypt_element(signed.as_bytes(), recipient, entropy)?;
    Ok(IdpToken {
        encrypted_data,
        created,
        expires,
    })
}

/// Decrypts and validates an IdP token (http.md §11.3). Rejections each have their own
/// [`TokenError`] variant.
pub fn verify_idp_token(
    encrypted_data: &str,
    rp_key: &RsaDecryptionKey,
    idp: &TrustedCert,
    expected_issuer: &str,
    expected_audience: &str,
    now: UtcTime,
    skew: Duration,
) -> Result<IdpClaims, TokenError> {
    // Size and DTD checks run on the ciphertext wrapper here and on the plaintext below.
    let plain = crypto::decrypt_element(encrypted_data, rp_key)?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| TokenError::Malformed("the decrypted token is not UTF-8".into()))?;
    let doc = saml::parse(text)?;
    let checked = saml::check(
        &doc,
        text,
        idp,
        expected_issuer,
        expected_audience,
        now,
        skew,
    )?;
    let names = saml::name_identifiers(checked.root);
    let upn_attr = checked
        .root
        .children()
        .filter(|s| xml::is(s, &[ns::SAML1], "AttributeStatement"))
        .flat_map(|s| s.children())
        .filter(|a| {
            xml::is(a, &[ns::SAML1], "Attribute") && a.attribute("AttributeName") == Some("UPN")
        })
        .filter_map(|a| xml::child(a, &[ns::SAML1], "AttributeValue"))
        .map(xml::text_of)
        .next();
    let upn = upn_attr
        .or_else(|| names.first().cloned())
        .filter(|u| !u.is_empty())
        .ok_or(TokenError::MissingClaim("UPN"))?;
    // All subjects must name the same user; a token that disagrees with itself is refused.
    if names.iter().any(|n| !n.eq_ignore_ascii_case(&upn)) {
        return Err(TokenError::Malformed(
            "the token's subjects name different users".into(),
        ));
    }
    Ok(IdpClaims {
        upn,
        assertion_id: checked.assertion_id,
        not_on_or_after: checked.not_on_or_after,
    })
}

/// The RST2.srf success response (http.md §5.3): SOAP 1.2, one `wst:Lifetime` whose children use
/// the `wsu` prefix bound on the envelope, and exactly one `EncryptedData`.
pub fn render_rst2_response(token: &IdpToken, applies_to: &str) -> String {
    let created = format_iso(token.created);
    let expires = format_iso(token.expires);
    let ts_expires = format_iso(token.created + Duration::minutes(5));
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<S:Envelope xmlns:S=\"{soap}\" xmlns:wsse=\"{wsse}\" xmlns:wsu=\"{wsu}\" xmlns:wsa=\"{wsa}\" xmlns:wsp=\"{wsp}\" xmlns:wst=\"{wst}\">\
<S:Header><wsa:Action S:mustUnderstand=\"1\">http://schemas.xmlsoap.org/ws/2005/02/trust/RSTR/Issue</wsa:Action>\
<wsa:To S:mustUnderstand=\"1\">http://www.w3.org/2005/08/addressing/anonymous</wsa:To>\
<wsse:Security S:mustUnderstand=\"1\"><wsu:Timestamp wsu:Id=\"TS\"><wsu:Created>{created}</wsu:Created><wsu:Expires>{ts_expires}</wsu:Expires></wsu:Timestamp></wsse:Security></S:Header>\
<S:Body><wst:RequestSecurityTokenResponse><wst:TokenType>urn:oasis:names:tc:SAML:1.0</wst:TokenType>\
<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{applies}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\
<wst:Lifetime><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wst:Lifetime>\
<wst:RequestedSecurityToken>{token}</wst:RequestedSecurityToken>\
</wst:RequestSecurityTokenResponse></S:Body></S:Envelope>",
        soap = ns::SOAP12,
        wsse = ns::WSSE,
        wsu = ns::WSU,
        wsa = ns::WSA10,
        wsp = ns::WSP,
        wst = ns::WST05,
        applies = escape_text(applies_to),
        token = token.encrypted_data,
    )
}

/// Why RST2.srf refused a request. Unknown user and wrong password are both `BadCredentials`,
/// so the answer never tells whether an account exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpFault {
    BadCredentials,
    UserDisabled,
    UnknownAudience,
    MalformedRequest(String),
    Internal,
}

impl IdpFault {
    /// The sentence shown to the user (SIPE displays `Detail/error/internalerror/text`).
    pub fn text(&self) -> String {
        match self {
            IdpFault::BadCredentials => "Invalid user name or password.".into(),
            IdpFault::UserDisabled => {
                "This account is disabled. Contact your administrator.".into()
            }
            IdpFault::UnknownAudience => {
                "The service this token was requested for is not known to this identity provider."
                    .into()
            }
            IdpFault::MalformedRequest(why) => format!("The sign-in request is malformed: {why}"),
            IdpFault::Internal => {
                "The identity provider could not process the request; try again later.".into()
            }
        }
    }

    /// (SOAP 1.2 code, WS-Trust subcode, Passport error value, internal code).
    fn codes(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            IdpFault::BadCredentials => (
                "S:Sender",
                "wst:FailedAuthentication",
                "0x80048821",
                "0x80041012",
            ),
            IdpFault::UserDisabled => (
                "S:Sender",
                "wst:FailedAuthentication",
                "0x80048823",
                "0x80041013",
            ),
            IdpFault::UnknownAudience => {
                ("S:Sender", "wst:InvalidRequest", "0x80045c08", "0x80045c08")
            }
            IdpFault::MalformedRequest(_) => {
                ("S:Sender", "wst:InvalidRequest", "0x80048820", "0x80048820")
            }
            IdpFault::Internal => (
                "S:Receiver",
                "wst:RequestFailed",
                "0x80048800",
                "0x80048800",
            ),
        }
    }
}

/// A SOAP 1.2 fault for HTTP 200 with `S:Detail/psf:error/psf:internalerror/psf:text`
/// (http.md §5.4), so SIPE can show the text.
pub fn render_rst2_fault(f: IdpFault) -> String {
    let (code, subcode, value, internal) = f.codes();
    let reason = match f {
        IdpFault::Internal => "Internal Error",
        IdpFault::MalformedRequest(_) | IdpFault::UnknownAudience => "Invalid Request",
        _ => "Authentication Failure",
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<S:Envelope xmlns:S=\"{soap}\" xmlns:psf=\"{psf}\" xmlns:wst=\"{wst}\"><S:Body><S:Fault>\
<S:Code><S:Value>{code}</S:Value><S:Subcode><S:Value>{subcode}</S:Value></S:Subcode></S:Code>\
<S:Reason><S:Text xml:lang=\"en-US\">{reason}</S:Text></S:Reason>\
<S:Detail><psf:error><psf:value>{value}</psf:value><psf:internalerror><psf:code>{internal}</psf:code>\
<psf:text>{text}</psf:text></psf:internalerror></psf:error></S:Detail></S:Fault></S:Body></S:Envelope>",
        soap = ns::SOAP12,
        psf = ns::PSF,
        wst = ns::WST05,
        text = escape_text(&f.text()),
    )
}

/// `getuserrealm.srf?xml=1` for a managed domain: no `STSAuthURL`, so SIPE goes to RST2.srf.
pub fn render_realm_info(login: &str, domain: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<RealmInfo Success=\"true\"><State>4</State><UserState>1</UserState><Login>{login}</Login>\
<NameSpaceType>Managed</NameSpaceType><DomainName>{domain}</DomainName><IsFederatedNS>false</IsFederatedNS>\
<FederationBrandName>{domain}</FederationBrandName><CloudInstanceName>microsoftonline.com</CloudInstanceName></RealmInfo>",
        login = escape_text(login),
        domain = escape_text(domain),
    )
}
