//! The few SOAP / WS-Trust / MEX messages of the web half of a sign-in: builders that produce
//! exactly what pidgin-sipe sends (capture 01, exchanges 007 and 008) and readers that look at
//! answers the way it does (tree lookups by local name, first match; raw extraction for the
//! fragments that are forwarded verbatim).

use crate::raw::{extract_raw, raw_attribute};
use lyncd_core::{UtcTime, parse_iso};
use roxmltree::{Document, Node};

/// SOAP 1.2 envelope namespace (the IdP's RST2.srf).
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace (the Web Ticket service).
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Trust February 2005 (RST2.srf).
pub const WST_2005_NS: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust";
/// WS-Trust 1.3 (Web Ticket service).
pub const WST_13_NS: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
/// `SOAPAction` of the RST2.srf request.
pub const RST2_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue";
/// `SOAPAction` of the WsFedBearer request.
pub const WEBTICKET_ACTION: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue";
/// WS-Security utility namespace (`wsu`).
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const SAML_NS_DECL: &str = "xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\" ";
const ISSUE_2005: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue";

/// Escapes text for an XML element or a double-quoted attribute.
pub use lyncd_core::escape_xml as escape;

/// The envelope pidgin-sipe wraps around every WS-Trust request; its odd whitespace is kept so
/// our requests are byte-comparable with the captures.
#[allow(clippy::too_many_arguments)]
fn envelope(
    extra_ns: &str,
    soap_ns: &str,
    wst_ns: &str,
    to: &str,
    message_id: &str,
    action: &str,
    security: &str,
    body: &str,
) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<soap:Envelope {extra_ns}xmlns:soap=\"{soap_ns}\" \
         xmlns:wst=\"{wst_ns}\" \
         xmlns:auth=\"http://schemas.xmlsoap.org/ws/2006/12/authorization\" \
         xmlns:wsa=\"http://www.w3.org/2005/08/addressing\" \
         xmlns:wsp=\"http://schemas.xmlsoap.org/ws/2004/09/policy\" \
         xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
         xmlns:wsu=\"{WSU_NS}\" >\
         <soap:Header> <wsa:To>{to}</wsa:To> <wsa:ReplyTo>  \
         <wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address> </wsa:ReplyTo> \
         <wsa:MessageID>uuid:{message_id}</wsa:MessageID> <wsa:Action>{action}</wsa:Action> \
         <wsse:Security>{security}</wsse:Security></soap:Header> \
         <soap:Body>{body}</soap:Body></soap:Envelope>",
        to = escape(to),
    )
}

fn applies_to(address: &str) -> String {
    format!(
        "<wsp:AppliesTo>  <wsa:EndpointReference>   <wsa:Address>{}</wsa:Address>  \
         </wsa:EndpointReference> </wsp:AppliesTo>",
        escape(address)
    )
}

/// The RST2.srf request (SOAP 1.2, WS-Trust 2005, cleartext `UsernameToken`), capture 007.
/// The result contains the password: it goes into the request body and nowhere else.
pub fn rst2_request(
    rst2_url: &str,
    message_id: &str,
    login: &str,
    password: &str,
    applies_to_url: &str,
) -> String {
    let security = format!(
        "<wsse:UsernameToken> <wsse:Username>{}</wsse:Username> \
         <wsse:Password>{}</wsse:Password></wsse:UsernameToken>",
        escape(login),
        escape(password)
    );
    let body = format!(
        "<wst:RequestSecurityToken> <wst:RequestType>{ISSUE_2005}</wst:RequestType> {} \
         </wst:RequestSecurityToken>",
        applies_to(applies_to_url)
    );
    envelope(
        "",
        SOAP12_NS,
        WST_2005_NS,
        rst2_url,
        message_id,
        RST2_ACTION,
        &security,
        &body,
    )
}

/// What the WsFedBearer request carries besides fixed text.
pub struct WebTicketRequest<'a> {
    pub wsfed_url: &'a str,
    pub message_id: &'a str,
    /// `Lifetime` contents of the IdP answer, verbatim.
    pub lifetime: &'a str,
    /// The IdP's whole `EncryptedData` element, verbatim.
    pub encrypted_data: &'a str,
    /// `Context` attribute: the client's endpoint id.
    pub context: &'a str,
    /// The service the ticket is for (the Autodiscover user URL).
    pub applies_to: &'a str,
    /// `sip:user@domain`.
    pub sip_uri: &'a str,
    /// Base64 of the client entropy.
    pub entropy_b64: &'a str,
}

/// The WsFedBearer request (SOAP 1.1, WS-Trust 1.3 with a 2005 RequestType), capture 008.
pub fn webticket_request(r: &WebTicketRequest<'_>) -> String {
    let security = format!(
        "<wsu:Timestamp xmlns:wsu=\"{WSU_NS}\" wsu:Id=\"timestamp\">{}</wsu:Timestamp>{}",
        r.lifetime, r.encrypted_data
    );
    let body = format!(
        "<wst:RequestSecurityToken Context=\"{context}\"> \
         <wst:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</wst:TokenType> \
         <wst:RequestType>{ISSUE_2005}</wst:RequestType> {applies} \
         <wst:Claims Dialect=\"urn:component:Microsoft.Rtc.WebAuthentication.2010:authclaims\">  \
         <auth:ClaimType Uri=\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri\" Optional=\"false\">   \
         <auth:Value>{sip}</auth:Value>  </auth:ClaimType> </wst:Claims> \
         <wst:Entropy>  <wst:BinarySecret>{entropy}</wst:BinarySecret> </wst:Entropy> \
         <wst:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</wst:KeyType>\
         </wst:RequestSecurityToken>",
        context = escape(r.context),
        applies = applies_to(r.applies_to),
        sip = escape(r.sip_uri),
        entropy = r.entropy_b64,
    );
    envelope(
        SAML_NS_DECL,
        SOAP11_NS,
        WST_13_NS,
        r.wsfed_url,
        r.message_id,
        WEBTICKET_ACTION,
        &security,
        &body,
    )
}

fn parse(text: &str) -> Result<Document<'_>, String> {
    Document::parse(text).map_err(|e| format!("not well-formed XML ({e})"))
}

/// First element child with this local name (case-sensitive, namespace ignored), as SIPE.
fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn path<'a, 'i>(node: Node<'a, 'i>, steps: &str) -> Option<Node<'a, 'i>> {
    steps.split('/').try_fold(node, |n, s| child(n, s))
}

/// Attribute by local name, case-insensitive, as SIPE.
fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name().eq_ignore_ascii_case(name))
        .map(|a| a.value())
}

fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// What the Web Ticket service's metadata offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mex {
    /// Names of the ports of the first `service`, in order (for explanations).
    pub ports: Vec<String>,
    /// `address/@location` of the `WsFedBearer` port.
    pub wsfed_bearer: Option<String>,
    /// `…/IssuedToken/Issuer/Address` of the WsFedBearer policy, when published.
    pub issuer: Option<String>,
}

/// Reads a WSDL served at `<web ticket URL>/mex` (http.md §4.2).
pub fn parse_mex(text: &str) -> Result<Mex, String> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "definitions" {
        return Err(format!(
            "the document element is <{}>, not a WSDL <definitions>",
            root.tag_name().name()
        ));
    }
    let mut mex = Mex {
        ports: Vec::new(),
        wsfed_bearer: None,
        issuer: None,
    };
    let Some(service) = child(root, "service") else {
        return Ok(mex);
    };
    let mut wsfed_binding = None;
    for port in service
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "port")
    {
        let name = attr(port, "name").unwrap_or("").to_string();
        if mex.wsfed_bearer.is_none() && name.eq_ignore_ascii_case("WsFedBearer") {
            mex.wsfed_bearer = port
                .children()
                .find(|n| n.is_element() && n.tag_name().name() == "address")
                .and_then(|a| attr(a, "location"))
                .map(str::to_string);
            wsfed_binding = attr(port, "binding").map(local_part);
        }
        mex.ports.push(name);
    }
    if mex.wsfed_bearer.is_some() {
        mex.issuer = wsfed_policy(root, wsfed_binding)
            .and_then(|p| {
                p.descendants()
                    .find(|n| n.tag_name().name() == "IssuedToken")
            })
            .and_then(|t| path(t, "Issuer/Address"))
            .map(text_of)
            .filter(|s| !s.is_empty());
    }
    Ok(mex)
}

fn local_part(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// The `Policy` referenced by the WsFedBearer binding (or, failing that, the policy whose id is
/// `WsFedBearer_policy`).
fn wsfed_policy<'a, 'i>(root: Node<'a, 'i>, binding: Option<&str>) -> Option<Node<'a, 'i>> {
    let policy_with_id = |id: &str| {
        root.descendants().find(|n| {
            n.is_element()
                && n.tag_name().name() == "Policy"
                && attr(*n, "Id").is_some_and(|v| v == id)
        })
    };
    let referenced = binding.and_then(|b| {
        let binding = root.children().find(|n| {
            n.is_element()
                && n.tag_name().name() == "binding"
                && attr(*n, "name").is_some_and(|v| v == b)
        })?;
        let uri = attr(child(binding, "PolicyReference")?, "URI")?;
        policy_with_id(uri.trim_start_matches('#'))
    });
    referenced.or_else(|| {
        root.descendants().find(|n| {
            n.is_element()
                && n.tag_name().name() == "Policy"
                && attr(*n, "Id").is_some_and(|v| v.eq_ignore_ascii_case("WsFedBearer_policy"))
        })
    })
}

/// The parts of a `getuserrealm.srf` answer the sign-in looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmInfo {
    /// Present for a federated domain (ADFS or another IdP checks the password).
    pub sts_auth_url: Option<String>,
    /// `Managed` / `Federated`, when given.
    pub namespace_type: Option<String>,
}

pub fn parse_realm(text: &str) -> Result<RealmInfo, String> {
    let doc = parse(text)?;
    let root = doc.root_element();
    let field = |name: &str| child(root, name).map(text_of).filter(|s| !s.is_empty());
    Ok(RealmInfo {
        sts_auth_url: field("STSAuthURL"),
        namespace_type: field("NameSpaceType"),
    })
}

/// A SOAP 1.1 or 1.2 fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoapFault {
    /// `Code/Value`, nested `Subcode/Value`s (1.2) or `faultcode` (1.1), outermost first.
    pub codes: Vec<String>,
    /// The most specific human text: `Detail/error/internalerror/text`, else `Reason/Text`,
    /// else `faultstring`.
    pub text: Option<String>,
}

impl SoapFault {
    /// Whether the fault says the user name or password was refused.
    pub fn is_bad_credentials(&self) -> bool {
        let code_says = self.codes.iter().any(|c| {
            let c = c.to_ascii_lowercase();
            c.contains("failedauthentication") || c.contains("invalidcredentials")
        });
        let text_says = self.text.as_deref().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("password") || t.contains("credential")
        });
        code_says || text_says
    }

    /// One line: the text and the most specific code.
    pub fn describe(&self) -> String {
        match (self.text.as_deref(), self.codes.last()) {
            (Some(t), Some(c)) => format!("\"{t}\" (fault code {c})"),
            (Some(t), None) => format!("\"{t}\""),
            (None, Some(c)) => format!("fault code {c} without a text"),
            (None, None) => "a SOAP fault without code or text".to_string(),
        }
    }
}

/// The fault in a SOAP answer (`Envelope/Body/Fault`), if the answer is XML and has one.
pub fn find_fault(text: &str) -> Option<SoapFault> {
    let doc = Document::parse(text).ok()?;
    let fault = path(doc.root_element(), "Body/Fault")?;
    let mut codes = Vec::new();
    if let Some(code) = child(fault, "Code") {
        let mut level = Some(code);
        while let Some(l) = level {
            if let Some(v) = child(l, "Value") {
                codes.push(text_of(v));
            }
            level = child(l, "Subcode");
        }
    }
    if let Some(c) = child(fault, "faultcode") {
        codes.push(text_of(c));
    }
    codes.retain(|c| !c.is_empty());
    let detail = child(fault, "Detail").or_else(|| child(fault, "detail"));
    let text = detail
        .and_then(|d| path(d, "error/internalerror/text"))
        .or_else(|| path(fault, "Reason/Text"))
        .or_else(|| child(fault, "faultstring"))
        .map(text_of)
        .filter(|s| !s.is_empty());
    Some(SoapFault { codes, text })
}

/// The Org ID token as cut out of an RST2.srf answer.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpToken {
    /// `Lifetime` contents, verbatim (becomes the Timestamp of the next request).
    pub lifetime: String,
    /// The whole `EncryptedData` element, verbatim. A bearer token: never log it.
    pub encrypted_data: String,
    pub created: Option<UtcTime>,
    pub expires: Option<UtcTime>,
}

impl std::fmt::Debug for IdpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpToken")
            .field("lifetime", &self.lifetime)
            .field("encrypted_data", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Why an IdP answer did not yield a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdpAnswer {
    Fault(SoapFault),
    Malformed(String),
}

/// Reads an RST2.srf answer: well-formed XML, no fault, raw `Lifetime` and `EncryptedData`.
pub fn read_idp_token(text: &str) -> Result<IdpToken, IdpAnswer> {
    parse(text).map_err(IdpAnswer::Malformed)?;
    if let Some(fault) = find_fault(text) {
        return Err(IdpAnswer::Fault(fault));
    }
    let lifetime = extract_raw(text, "Lifetime", false)
        .ok_or_else(|| IdpAnswer::Malformed("no Lifetime element".into()))?;
    let encrypted = extract_raw(text, "EncryptedData", true)
        .ok_or_else(|| IdpAnswer::Malformed("no EncryptedData element (the token)".into()))?;
    Ok(IdpToken {
        lifetime: lifetime.to_string(),
        encrypted_data: encrypted.to_string(),
        created: extract_raw(lifetime, "Created", false).and_then(|s| parse_iso(s).ok()),
        expires: extract_raw(lifetime, "Expires", false).and_then(|s| parse_iso(s).ok()),
    })
}

/// The web ticket parts cut out of a WsFedBearer answer (raw, as SIPE).
#[derive(Clone, PartialEq, Eq)]
pub struct RawWebTicket {
    /// The `Assertion` element, verbatim. The bearer ticket: never log it.
    pub assertion: String,
    pub assertion_id: String,
    pub expires: UtcTime,
    /// Text of the first `BinarySecret` (base64 server entropy), if any.
    pub server_entropy: Option<String>,
    /// `Lifetime` contents, verbatim (the Timestamp a CertProv proof signs).
    pub lifetime: String,
}

impl std::fmt::Debug for RawWebTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWebTicket")
            .field("assertion", &"***")
            .field("assertion_id", &self.assertion_id)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Reads a WsFedBearer answer (HTTP 200 assumed).
pub fn read_web_ticket(text: &str) -> Result<RawWebTicket, IdpAnswer> {
    parse(text).map_err(IdpAnswer::Malformed)?;
    if let Some(fault) = find_fault(text) {
        return Err(IdpAnswer::Fault(fault));
    }
    let assertion = extract_raw(text, "Assertion", true)
        .ok_or_else(|| IdpAnswer::Malformed("no Assertion element (the ticket)".into()))?;
    let assertion_id = raw_attribute(assertion, "AssertionID")
        .ok_or_else(|| IdpAnswer::Malformed("the Assertion has no AssertionID=\"…\"".into()))?;
    let lifetime = extract_raw(text, "Lifetime", false)
        .ok_or_else(|| IdpAnswer::Malformed("no Lifetime element".into()))?;
    let expires_text = extract_raw(lifetime, "Expires", false)
        .ok_or_else(|| IdpAnswer::Malformed("the Lifetime has no Expires".into()))?;
    let expires = parse_iso(expires_text).map_err(|e| IdpAnswer::Malformed(e.to_string()))?;
    Ok(RawWebTicket {
        assertion: assertion.to_string(),
        assertion_id: assertion_id.to_string(),
        expires,
        server_entropy: extract_raw(text, "BinarySecret", false).map(str::to_string),
        lifetime: lifetime.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Certificate Provisioning (http.md §8)

/// The port pidgin-sipe asks the CertProv metadata for; its policy is `<port>_policy`.
pub const CERTPROV_PORT: &str = "CertProvisioningServiceWebTicketProof_SHA1";
/// `SOAPAction` of `GetAndPublishCert`.
pub const CERTPROV_ACTION: &str =
    "http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCert";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// What the CertProv metadata says (http.md §8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertProvMex {
    /// Names of the ports of the first `service`.
    pub ports: Vec<String>,
    /// `address/@location` of the web-ticket port: POST target and ticket audience.
    pub location: Option<String>,
    /// The Web Ticket service base URL named by the policy.
    pub issuer: Option<String>,
    /// `EndorsingSupportingTokens`: the request must carry the HMAC proof; otherwise
    /// (`SignedSupportingTokens`) the ticket is presented as a bearer token.
    pub proof: bool,
}

/// Reads the CertProv WSDL the way SIPE walks it: the `Policy` child of the document element
/// whose `Id` is `<port>_policy` (case-insensitive), `ExactlyOne/All/EndorsingSupportingTokens/
/// Policy/IssuedToken/Issuer/Address` (else the `SignedSupportingTokens` path), and the port of
/// the first `service`.
pub fn parse_certprov_mex(text: &str) -> Result<CertProvMex, String> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "definitions" {
        return Err(format!(
            "the document element is <{}>, not a WSDL <definitions>",
            root.tag_name().name()
        ));
    }
    let policy_id = format!("{CERTPROV_PORT}_policy");
    let policy = root.children().find(|n| {
        n.is_element()
            && n.tag_name().name() == "Policy"
            && attr(*n, "Id").is_some_and(|v| v.eq_ignore_ascii_case(&policy_id))
    });
    let issuer_at = |tokens: &str| {
        policy
            .and_then(|p| {
                path(
                    p,
                    &format!("ExactlyOne/All/{tokens}/Policy/IssuedToken/Issuer/Address"),
                )
            })
            .map(text_of)
            .filter(|s| !s.is_empty())
    };
    let (issuer, proof) = match issuer_at("EndorsingSupportingTokens") {
        Some(i) => (Some(i), true),
        None => (issuer_at("SignedSupportingTokens"), false),
    };
    let mut mex = CertProvMex {
        ports: Vec::new(),
        location: None,
        issuer,
        proof,
    };
    if let Some(service) = child(root, "service") {
        for port in service
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "port")
        {
            let name = attr(port, "name").unwrap_or("").to_string();
            if mex.location.is_none() && name == CERTPROV_PORT {
                mex.location = child(port, "address")
                    .and_then(|a| attr(a, "location"))
                    .map(str::to_string);
            }
            mex.ports.push(name);
        }
    }
    Ok(mex)
}

/// What `GetAndPublishCert` carries besides fixed text.
pub struct CertProvRequest<'a> {
    /// The CertProv port location (POST target, `wsa:To`).
    pub url: &'a str,
    pub message_id: &'a str,
    /// The web ticket's `Lifetime` contents, verbatim: they become the signed Timestamp.
    pub lifetime: &'a str,
    /// The web ticket's `Assertion`, verbatim.
    pub assertion: &'a str,
    pub assertion_id: &'a str,
    /// The ticket's proof key; `None` for a bearer policy (no Signature).
    pub proof_key: Option<&'a [u8]>,
    /// GUID without braces (SIPE: the endpoint's `+sip.instance`).
    pub device_id: &'a str,
    /// `user@domain` (no `sip:`).
    pub entity: &'a str,
    pub csr_der: &'a [u8],
    pub request_id: &'a str,
}

/// The Timestamp exactly as SIPE writes it; its text must already be canonical because SIPE
/// digests it without canonicalising (http.md §8.3).
pub fn certprov_timestamp(lifetime: &str) -> String {
    format!("<wsu:Timestamp xmlns:wsu=\"{WSU_NS}\" wsu:Id=\"timestamp\">{lifetime}</wsu:Timestamp>")
}

/// The proof's `SignedInfo` in the exclusive-canonical form SIPE puts on the wire (default
/// namespace on `SignedInfo`, empty elements as start and end tags), and the base64 HMAC-SHA1 of
/// exactly those bytes with the proof key (http.md §8.3).
pub fn certprov_proof(timestamp: &str, proof_key: &[u8]) -> (String, String) {
    use base64::Engine;
    use sha1::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let digest = b64.encode(sha1::Sha1::digest(timestamp.as_bytes()));
    let signed_info = format!(
        "<SignedInfo xmlns=\"{DSIG_NS}\"><CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></CanonicalizationMethod>\
         <SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#hmac-sha1\"></SignatureMethod>\
         <Reference URI=\"#timestamp\"><Transforms><Transform Algorithm=\"{EXC_C14N}\"></Transform></Transforms>\
         <DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"></DigestMethod>\
         <DigestValue>{digest}</DigestValue></Reference></SignedInfo>"
    );
    let mac = crate::psha1::hmac_sha1_sign(proof_key, signed_info.as_bytes());
    (signed_info, b64.encode(mac))
}

/// Base64 of the CSR preceded by CRLF, in 76-character lines separated by CRLF (SIPE, http.md
/// §8.3).
fn csr_lines(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!("\r\n{}", lines.join("\r\n"))
}

/// `GetAndPublishCert` as pidgin-sipe sends it (capture 01 exchange 016): SOAP 1.1, the web
/// ticket and its HMAC proof over the Timestamp in the security header, the CSR in the body,
/// and the WS-Trust namespace with the trailing slash Microsoft's CertProv requires there.
pub fn certprov_request(r: &CertProvRequest<'_>) -> String {
    let timestamp = certprov_timestamp(r.lifetime);
    let signature = match r.proof_key {
        Some(key) => {
            let (signed_info, value) = certprov_proof(&timestamp, key);
            format!(
                "<Signature xmlns=\"{DSIG_NS}\"> {signed_info} <SignatureValue>{value}</SignatureValue> \
                 <KeyInfo>  <wsse:SecurityTokenReference wsse:TokenType=\"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1\">   \
                 <wsse:KeyIdentifier ValueType=\"http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID\">{id}</wsse:KeyIdentifier>  \
                 </wsse:SecurityTokenReference> </KeyInfo></Signature>",
                id = escape(r.assertion_id)
            )
        }
        None => String::new(),
    };
    let security = format!("{timestamp}{}{signature}", r.assertion);
    let body = format!(
        "<GetAndPublishCert xmlns=\"http://schemas.microsoft.com/OCS/AuthWebServices/\" \
         xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512/\" \
         xmlns:wstep=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment\" \
         DeviceId=\"{{{device}}}\" Entity=\"{entity}\"> <wst:RequestSecurityToken>  \
         <wst:TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</wst:TokenType>  \
         <wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>  \
         <wsse:BinarySecurityToken   ValueType=\"http://schemas.microsoft.com/OCS/AuthWebServices.xsd#PKCS10\"   \
         EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary\"  >\
         {csr}</wsse:BinarySecurityToken>  <wstep:RequestID>{rid}</wstep:RequestID> \
         </wst:RequestSecurityToken></GetAndPublishCert>",
        device = escape(r.device_id),
        entity = escape(r.entity),
        csr = csr_lines(r.csr_der),
        rid = escape(r.request_id),
    );
    envelope(
        SAML_NS_DECL,
        SOAP11_NS,
        WST_13_NS,
        r.url,
        r.message_id,
        CERTPROV_ACTION,
        &security,
        &body,
    )
}

/// The leaf certificate (DER) of a `GetAndPublishCertResponse`, found as SIPE finds it:
/// `Body/GetAndPublishCertResponse/RequestSecurityTokenResponse/RequestedSecurityToken/
/// BinarySecurityToken`, first match at each level (http.md §8.4).
pub fn read_certprov_response(text: &str) -> Result<Vec<u8>, IdpAnswer> {
    use base64::Engine;
    let doc = parse(text).map_err(IdpAnswer::Malformed)?;
    if let Some(fault) = find_fault(text) {
        return Err(IdpAnswer::Fault(fault));
    }
    let token = path(
        doc.root_element(),
        "Body/GetAndPublishCertResponse/RequestSecurityTokenResponse/RequestedSecurityToken/BinarySecurityToken",
    )
    .ok_or_else(|| {
        IdpAnswer::Malformed(
            "no Body/GetAndPublishCertResponse/RequestSecurityTokenResponse/\
             RequestedSecurityToken/BinarySecurityToken"
                .into(),
        )
    })?;
    let b64: String = text_of(token)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(der) if !der.is_empty() => Ok(der),
        _ => Err(IdpAnswer::Malformed(
            "the BinarySecurityToken is not a base64 certificate".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&apos;");
    }

    #[test]
    fn mex_issuer_from_policy() {
        let mex = r##"<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsu="u" xmlns:sp="sp" xmlns:a="a" xmlns:tns="t">
  <wsp:Policy wsu:Id="Other_policy"><sp:IssuedToken><sp:Issuer><a:Address>https://wrong/</a:Address></sp:Issuer></sp:IssuedToken></wsp:Policy>
  <wsp:Policy wsu:Id="WsFedBearer_policy"><wsp:ExactlyOne><wsp:All><sp:SignedSupportingTokens><wsp:Policy>
    <sp:IssuedToken><sp:Issuer><a:Address> https://login.contoso.com/RST2.srf </a:Address></sp:Issuer></sp:IssuedToken>
  </wsp:Policy></sp:SignedSupportingTokens></wsp:All></wsp:ExactlyOne></wsp:Policy>
  <wsdl:binding name="WsFedBearer"><wsp:PolicyReference URI="#WsFedBearer_policy"/></wsdl:binding>
  <wsdl:service name="S">
    <wsdl:port name="WebTicketServiceWinNegotiate"><soap:address location="https://x/neg"/></wsdl:port>
    <wsdl:port name="wsfedbearer" binding="tns:WsFedBearer"><soap:address location="https://x/bearer?a=1&amp;b=2"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>"##;
        let m = parse_mex(mex).unwrap();
        assert_eq!(m.ports, ["WebTicketServiceWinNegotiate", "wsfedbearer"]);
        assert_eq!(m.wsfed_bearer.as_deref(), Some("https://x/bearer?a=1&b=2"));
        assert_eq!(
            m.issuer.as_deref(),
            Some("https://login.contoso.com/RST2.srf")
        );
    }

    #[test]
    fn mex_must_be_a_wsdl() {
        assert!(parse_mex("<Envelope/>").is_err());
        assert!(parse_mex("<definitions>").is_err());
        let m = parse_mex("<definitions><service/></definitions>").unwrap();
        assert_eq!(m.wsfed_bearer, None);
    }

    #[test]
    fn soap12_fault_with_passport_detail() {
        let f = find_fault(
            r#"<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:psf="p"><S:Body><S:Fault>
<S:Code><S:Value>S:Sender</S:Value><S:Subcode><S:Value>wst:FailedAuthentication</S:Value></S:Subcode></S:Code>
<S:Reason><S:Text xml:lang="en-US">Authentication Failure</S:Text></S:Reason>
<S:Detail><psf:error><psf:internalerror><psf:text>Invalid user name or password.</psf:text></psf:internalerror></psf:error></S:Detail>
</S:Fault></S:Body></S:Envelope>"#,
        )
        .unwrap();
        assert_eq!(f.codes, ["S:Sender", "wst:FailedAuthentication"]);
        assert_eq!(f.text.as_deref(), Some("Invalid user name or password."));
        assert!(f.is_bad_credentials());
    }

    #[test]
    fn soap11_fault() {
        let f = find_fault(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>wsse:InvalidSecurityToken</faultcode><faultstring>Token expired</faultstring></s:Fault></s:Body></s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(f.text.as_deref(), Some("Token expired"));
        assert!(!f.is_bad_credentials());
        assert_eq!(find_fault("<a><Body/></a>"), None);
        assert_eq!(find_fault("not xml"), None);
    }

    #[test]
    fn realm_federated_or_managed() {
        let r = parse_realm("<RealmInfo><NameSpaceType>Federated</NameSpaceType><STSAuthURL>https://sts.contoso.com/adfs/services/trust/2005/usernamemixed</STSAuthURL></RealmInfo>").unwrap();
        assert!(r.sts_auth_url.is_some());
        let r = parse_realm("<RealmInfo><STSAuthURL/></RealmInfo>").unwrap();
        assert_eq!(r.sts_auth_url, None);
    }

    #[test]
    fn idp_token_missing_parts() {
        let ok = "<E><B><wst:Lifetime xmlns:wst=\"w\"><wsu:Created xmlns:wsu=\"u\">2026-11-25T02:52:39Z</wsu:Created></wst:Lifetime><EncryptedData>x</EncryptedData></B></E>";
        let t = read_idp_token(ok).unwrap();
        assert_eq!(t.encrypted_data, "<EncryptedData>x</EncryptedData>");
        assert!(t.created.is_some() && t.expires.is_none());
        assert!(!format!("{t:?}").contains("EncryptedData>x"));
        assert!(matches!(
            read_idp_token("<E><Lifetime/></E>"),
            Err(IdpAnswer::Malformed(_))
        ));
        assert!(matches!(
            read_idp_token("<E>"),
            Err(IdpAnswer::Malformed(_))
        ));
    }
}
