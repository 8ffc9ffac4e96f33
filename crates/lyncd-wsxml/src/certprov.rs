//! The Certificate Provisioning service (http.md §8): its metadata, pidgin-sipe's
//! `GetAndPublishCert` request with the web-ticket proof signature, and the response carrying the
//! issued user certificate.
//!
//! The proof (http.md §8.3) is an XML-DSig HMAC-SHA1 with the web ticket's proof key over
//! `SignedInfo`, whose one `Reference` digests the security header's `wsu:Timestamp` with SHA-1.
//! pidgin-sipe digests the Timestamp exactly as it serialised it, without canonicalising; our
//! Web Ticket RSTR makes that text canonical already, and the verifier accepts the digest of the
//! raw bytes or of their exclusive canonical form. `SignedInfo` is always verified in its
//! exclusive canonical form, so re-ordered attributes or altered whitespace inside it still
//! verify exactly when the canonical text is the one that was signed.

use bergshamra::c14n::{C14nMode, canonicalize_doc};
use bergshamra::xml::{NodeSet, uppsala};
use hmac::{Hmac, Mac};
use lyncd_core::{UtcTime, parse_iso};
use roxmltree::Node;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use time::Duration;

use crate::error::{TokenError, WsError};
use crate::xml::{self, escape_attr, escape_text, ns};

/// The CertProv port pidgin-sipe asks the MEX for (its policy is `<port>_policy`).
pub const PORT_NAME: &str = "CertProvisioningServiceWebTicketProof_SHA1";
/// SOAPAction / `wsa:Action` of the request.
pub const GET_AND_PUBLISH_CERT_ACTION: &str =
    "http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCert";
const RESPONSE_ACTION: &str =
    "http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCertResponse";
const AUTH_WEB_SERVICES_NS: &str = "http://schemas.microsoft.com/OCS/AuthWebServices/";
/// The WS-Trust namespace Microsoft's CertProv uses in the body: the 1.3 URI with a trailing `/`.
const WST13_SLASH: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/";
const WSTEP: &str = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment";
const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const PKCS7: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#PKCS7";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// The proof signature of a `GetAndPublishCert` request, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSignature {
    /// `SignedInfo` exactly as sent.
    pub signed_info_raw: String,
    /// Exclusive canonical form of `SignedInfo` in its document context: what the HMAC covers.
    pub signed_info_c14n: Vec<u8>,
    pub canonicalization: String,
    pub signature_method: String,
    /// The `URI` of every `Reference` (exactly one is accepted).
    pub reference_uris: Vec<String>,
    /// Transform algorithms of the reference.
    pub transforms: Vec<String>,
    pub digest_method: String,
    pub digest_value: Vec<u8>,
    pub signature_value: Vec<u8>,
    /// `KeyInfo/SecurityTokenReference/KeyIdentifier`: the web ticket's AssertionID.
    pub key_identifier: Option<String>,
}

/// A parsed `GetAndPublishCert` request (http.md §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertProvRequest {
    pub message_id: Option<String>,
    pub to: Option<String>,
    /// The security header's `wsu:Timestamp` exactly as sent.
    pub timestamp_raw: String,
    /// Exclusive canonical form of the Timestamp in its document context.
    pub timestamp_c14n: Vec<u8>,
    /// Its `wsu:Id` (any prefix).
    pub timestamp_id: Option<String>,
    pub timestamp_created: Option<UtcTime>,
    pub timestamp_expires: UtcTime,
    /// The web ticket (`saml:Assertion`) exactly as sent, for `verify_web_ticket`.
    pub assertion_raw: String,
    pub assertion_id: Option<String>,
    pub signature: Option<ProofSignature>,
    /// `Entity`: the SIP user, usually without `sip:`.
    pub entity: String,
    pub device_id: Option<String>,
    pub request_id: Option<String>,
    /// The PKCS#10 request, DER.
    pub csr_der: Vec<u8>,
}

/// `GET <certprov>/mex`: the WSDL pidgin-sipe walks (http.md §8.1). The first `Policy` is
/// `<port>_policy` whose `ExactlyOne/All/EndorsingSupportingTokens/Policy/IssuedToken/Issuer/
/// Address` is the Web Ticket **base** URL (so the client signs a proof), and the first
/// `service` has the port whose `soap:address/@location` is the POST target and AppliesTo.
pub fn render_certprov_mex(port_location: &str, webticket_base: &str) -> String {
    format!(
        r##"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="CertProvisioningService" targetNamespace="{asvc}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsu="{wsu}" xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702" xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" xmlns:wsa10="http://www.w3.org/2005/08/addressing" xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:auth="http://schemas.xmlsoap.org/ws/2006/12/authorization" xmlns:tns="{asvc}">
  <wsp:Policy wsu:Id="{port}_policy">
    <wsp:ExactlyOne>
      <wsp:All>
        <sp:TransportBinding>
          <wsp:Policy>
            <sp:TransportToken><wsp:Policy><sp:HttpsToken/></wsp:Policy></sp:TransportToken>
            <sp:AlgorithmSuite><wsp:Policy><sp:Basic256/></wsp:Policy></sp:AlgorithmSuite>
            <sp:Layout><wsp:Policy><sp:Strict/></wsp:Policy></sp:Layout>
            <sp:IncludeTimestamp/>
          </wsp:Policy>
        </sp:TransportBinding>
        <sp:EndorsingSupportingTokens>
          <wsp:Policy>
            <sp:IssuedToken sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient">
              <sp:Issuer>
                <wsa10:Address>{issuer}</wsa10:Address>
              </sp:Issuer>
              <sp:RequestSecurityTokenTemplate>
                <trust:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</trust:TokenType>
                <trust:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</trust:KeyType>
                <trust:KeySize>256</trust:KeySize>
                <trust:Claims Dialect="urn:component:Microsoft.Rtc.WebAuthentication.2010:authclaims">
                  <auth:ClaimType Uri="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri" Optional="false"/>
                </trust:Claims>
                <trust:SignWith>{hmac}</trust:SignWith>
                <trust:CanonicalizationAlgorithm>{c14n}</trust:CanonicalizationAlgorithm>
              </sp:RequestSecurityTokenTemplate>
              <wsp:Policy><sp:RequireInternalReference/></wsp:Policy>
            </sp:IssuedToken>
          </wsp:Policy>
        </sp:EndorsingSupportingTokens>
        <sp:Trust13><wsp:Policy><sp:RequireClientEntropy/><sp:RequireServerEntropy/></wsp:Policy></sp:Trust13>
        <wsaw:UsingAddressing/>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>
  <wsdl:types/>
  <wsdl:message name="ICertProvisioningService_GetAndPublishCert_InputMessage">
    <wsdl:part name="parameters" element="tns:GetAndPublishCert"/>
  </wsdl:message>
  <wsdl:message name="ICertProvisioningService_GetAndPublishCert_OutputMessage">
    <wsdl:part name="parameters" element="tns:GetAndPublishCertResponse"/>
  </wsdl:message>
  <wsdl:portType name="ICertProvisioningService">
    <wsdl:operation name="GetAndPublishCert">
      <wsdl:input wsaw:Action="{action}" message="tns:ICertProvisioningService_GetAndPublishCert_InputMessage"/>
      <wsdl:output wsaw:Action="{response}" message="tns:ICertProvisioningService_GetAndPublishCert_OutputMessage"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="{port}" type="tns:ICertProvisioningService">
    <wsp:PolicyReference URI="#{port}_policy"/>
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="GetAndPublishCert">
      <soap:operation soapAction="{action}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="CertProvisioningService">
    <wsdl:port name="{port}" binding="tns:{port}">
      <soap:address location="{loc}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"##,
        asvc = AUTH_WEB_SERVICES_NS,
        wsu = ns::WSU,
        port = PORT_NAME,
        issuer = escape_text(webticket_base),
        hmac = HMAC_SHA1,
        c14n = EXC_C14N,
        action = GET_AND_PUBLISH_CERT_ACTION,
        response = RESPONSE_ACTION,
        loc = escape_attr(port_location),
    )
}

fn local<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn locals<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// An attribute by local name, any namespace, case-insensitively (as pidgin-sipe looks up `Id`).
fn attr_ci<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes()
        .find(|a| a.name().eq_ignore_ascii_case(name))
        .map(|a| a.value())
}

fn bad(what: &'static str, value: &str, why: &'static str) -> WsError {
    WsError::BadValue {
        what,
        value: value.chars().take(80).collect(),
        why,
    }
}

fn time_of(n: Option<Node<'_, '_>>, what: &'static str) -> Result<Option<UtcTime>, WsError> {
    n.map(|n| {
        let v = xml::text_of(n);
        parse_iso(&v).map_err(|_| bad(what, &v, "it is not an ISO 8601 time"))
    })
    .transpose()
}

/// Exclusive canonical form of the element starting at byte `start` of `text`, in its context.
fn exc_c14n_at(doc: &uppsala::Document<'_>, start: usize, local: &str) -> Result<Vec<u8>, WsError> {
    let id = doc
        .get_elements_by_tag_name(local)
        .into_iter()
        .find(|&id| doc.node_range(id).is_some_and(|r| r.start == start))
        .ok_or_else(|| WsError::Crypto(format!("could not locate {local} for canonicalisation")))?;
    let set = NodeSet::tree_without_comments(id, doc);
    canonicalize_doc(doc, C14nMode::Exclusive, Some(&set), &[] as &[&str])
        .map_err(|e| WsError::Crypto(format!("canonicalising {local}: {e}")))
}

/// Parses pidgin-sipe's `GetAndPublishCert` (capture 01/016). Elements are matched by local name
/// (both WS-Trust 1.3 namespaces, with and without the trailing `/`, are therefore accepted); the
/// Timestamp and Assertion are kept byte for byte; the CSR's base64 may contain any whitespace.
pub fn parse_get_and_publish_cert(body: &[u8]) -> Result<CertProvRequest, WsError> {
    let text = xml::checked_text(body, xml::DEFAULT_MAX_BYTES)?;
    let doc = xml::parse_text(text)?;
    let env = doc.root_element();
    if !xml::is(&env, &[ns::SOAP11, ns::SOAP12], "Envelope") {
        return Err(WsError::NotSoap(env.tag_name().name().to_string()));
    }
    let header = local(env, "Header").ok_or(WsError::Missing("soap:Header"))?;
    let security = local(header, "Security").ok_or(WsError::Missing("wsse:Security"))?;
    let mut timestamps = locals(security, "Timestamp");
    let ts = timestamps
        .next()
        .ok_or(WsError::Missing("wsu:Timestamp in wsse:Security"))?;
    if timestamps.next().is_some() {
        return Err(bad(
            "wsse:Security",
            "",
            "it carries more than one wsu:Timestamp",
        ));
    }
    let timestamp_expires = time_of(local(ts, "Expires"), "wsu:Expires")?
        .ok_or(WsError::Missing("wsu:Timestamp/wsu:Expires"))?;
    let timestamp_created = time_of(local(ts, "Created"), "wsu:Created")?;
    let mut assertions = locals(security, "Assertion");
    let assertion = assertions
        .next()
        .ok_or(WsError::Missing("saml:Assertion in wsse:Security"))?;
    if assertions.next().is_some() {
        return Err(bad(
            "wsse:Security",
            "",
            "it carries more than one saml:Assertion",
        ));
    }
    let mut signatures = locals(security, "Signature");
    let signature = signatures.next();
    if signatures.next().is_some() {
        return Err(bad(
            "wsse:Security",
            "",
            "it carries more than one Signature",
        ));
    }

    // Canonical forms come from a second, c14n-capable parse of the same checked text.
    let cdoc = uppsala::parse(text).map_err(|e| xml::XmlError::Malformed(e.to_string()))?;
    let timestamp_c14n = exc_c14n_at(&cdoc, ts.range().start, "Timestamp")?;
    let signature = signature
        .map(|s| parse_signature(s, text, &cdoc))
        .transpose()?;

    let body = local(env, "Body").ok_or(WsError::Missing("soap:Body"))?;
    let gapc = local(body, "GetAndPublishCert").ok_or(WsError::Missing("GetAndPublishCert"))?;
    let entity = gapc
        .attribute("Entity")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(WsError::Missing("GetAndPublishCert/@Entity"))?
        .to_string();
    let rst = local(gapc, "RequestSecurityToken").ok_or(WsError::Missing(
        "GetAndPublishCert/wst:RequestSecurityToken",
    ))?;
    let rst_ns = rst.tag_name().namespace().unwrap_or("");
    if ![ns::WST13, WST13_SLASH, ns::WST05].contains(&rst_ns) {
        return Err(bad(
            "wst:RequestSecurityToken namespace",
            rst_ns,
            "it is not a WS-Trust namespace",
        ));
    }
    let bst = local(rst, "BinarySecurityToken")
        .ok_or(WsError::Missing("wsse:BinarySecurityToken (the CSR)"))?;
    let b64 = xml::text_of(bst);
    let csr_der = xml::b64_decode(&b64)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("wsse:BinarySecurityToken", &b64, "it is not base64"))?;

    Ok(CertProvRequest {
        message_id: local(header, "MessageID").map(xml::text_of),
        to: local(header, "To").map(xml::text_of),
        timestamp_raw: text[ts.range()].to_string(),
        timestamp_c14n,
        timestamp_id: attr_ci(ts, "Id").map(str::to_string),
        timestamp_created,
        timestamp_expires,
        assertion_raw: text[assertion.range()].to_string(),
        assertion_id: assertion.attribute("AssertionID").map(str::to_string),
        signature,
        entity,
        device_id: gapc.attribute("DeviceId").map(str::to_string),
        request_id: local(rst, "RequestID").map(xml::text_of),
        csr_der,
    })
}

fn parse_signature(
    sig: Node<'_, '_>,
    text: &str,
    cdoc: &uppsala::Document<'_>,
) -> Result<ProofSignature, WsError> {
    let si = local(sig, "SignedInfo").ok_or(WsError::Missing("Signature/SignedInfo"))?;
    let alg = |n: Option<Node<'_, '_>>| {
        n.and_then(|n| n.attribute("Algorithm"))
            .unwrap_or("")
            .to_string()
    };
    let references: Vec<Node<'_, '_>> = locals(si, "Reference").collect();
    let first = references
        .first()
        .ok_or(WsError::Missing("SignedInfo/Reference"))?;
    let digest_b64 = local(*first, "DigestValue")
        .map(xml::text_of)
        .ok_or(WsError::Missing("Reference/DigestValue"))?;
    let sig_b64 = local(sig, "SignatureValue")
        .map(xml::text_of)
        .ok_or(WsError::Missing("Signature/SignatureValue"))?;
    Ok(ProofSignature {
        signed_info_raw: text[si.range()].to_string(),
        signed_info_c14n: exc_c14n_at(cdoc, si.range().start, "SignedInfo")?,
        canonicalization: alg(local(si, "CanonicalizationMethod")),
        signature_method: alg(local(si, "SignatureMethod")),
        reference_uris: references
            .iter()
            .map(|r| r.attribute("URI").unwrap_or("").to_string())
            .collect(),
        transforms: local(*first, "Transforms")
            .into_iter()
            .flat_map(|t| locals(t, "Transform"))
            .map(|t| alg(Some(t)))
            .collect(),
        digest_method: alg(local(*first, "DigestMethod")),
        digest_value: xml::b64_decode(&digest_b64)
            .ok_or_else(|| bad("DigestValue", &digest_b64, "it is not base64"))?,
        signature_value: xml::b64_decode(&sig_b64)
            .ok_or_else(|| bad("SignatureValue", &sig_b64, "it is not base64"))?,
        key_identifier: local(sig, "KeyInfo")
            .and_then(|k| local(k, "SecurityTokenReference"))
            .and_then(|r| local(r, "KeyIdentifier"))
            .map(xml::text_of),
    })
}

/// Verifies the web-ticket proof of a parsed request (http.md §8.3 steps 4–7) with the proof key
/// recovered from the verified ticket: algorithms on the allow-list; the one Reference points at
/// the Timestamp; SHA-1 digest of the Timestamp (raw or exclusive-canonical); HMAC-SHA1 over the
/// exclusive-canonical SignedInfo, compared in constant time; KeyIdentifier == the AssertionID;
/// Timestamp `Expires` > `now` − `skew` (no freshness check on `Created`: it is the ticket's).
pub fn verify_certprov_proof(
    req: &CertProvRequest,
    proof_key: &[u8],
    now: UtcTime,
    skew: Duration,
) -> Result<(), TokenError> {
    let sig = req.signature.as_ref().ok_or(TokenError::MissingSignature)?;
    for (alg, allowed) in [
        (&sig.canonicalization, EXC_C14N),
        (&sig.signature_method, HMAC_SHA1),
        (&sig.digest_method, DIGEST_SHA1),
    ] {
        if alg != allowed {
            return Err(TokenError::AlgorithmNotAllowed(alg.clone()));
        }
    }
    if let Some(t) = sig.transforms.iter().find(|t| *t != EXC_C14N) {
        return Err(TokenError::AlgorithmNotAllowed(t.clone()));
    }
    let [uri] = sig.reference_uris.as_slice() else {
        return Err(TokenError::SignatureWrapping(
            "the proof must have exactly one Reference".into(),
        ));
    };
    match (&req.timestamp_id, uri.strip_prefix('#')) {
        (Some(id), Some(target)) if id == target && !id.is_empty() => {}
        _ => {
            return Err(TokenError::SignatureWrapping(
                "the proof's Reference does not point at the security header's Timestamp".into(),
            ));
        }
    }
    let raw_digest = Sha1::digest(req.timestamp_raw.as_bytes());
    let c14n_digest = Sha1::digest(&req.timestamp_c14n);
    let digest_ok = bool::from(raw_digest.as_slice().ct_eq(&sig.digest_value))
        | bool::from(c14n_digest.as_slice().ct_eq(&sig.digest_value));
    if !digest_ok {
        return Err(TokenError::BadSignature(
            "the Timestamp digest does not match (the Timestamp was altered)".into(),
        ));
    }
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(proof_key)
        .map_err(|_| TokenError::BadSignature("the proof key is unusable".into()))?;
    mac.update(&sig.signed_info_c14n);
    if mac.verify_slice(&sig.signature_value).is_err() {
        return Err(TokenError::BadSignature(
            "the proof HMAC does not match (wrong proof key, or SignedInfo was altered)".into(),
        ));
    }
    match (&sig.key_identifier, &req.assertion_id) {
        (Some(k), Some(a)) if k == a => {}
        _ => {
            return Err(TokenError::Malformed(
                "the proof's KeyIdentifier is not the web ticket's AssertionID".into(),
            ));
        }
    }
    if req.timestamp_expires <= now - skew {
        return Err(TokenError::Expired {
            not_on_or_after: lyncd_core::format_iso(req.timestamp_expires),
        });
    }
    Ok(())
}

/// The proof a client computes (http.md §8.3), for our client and for tests: the canonical
/// `SignedInfo` text pidgin-sipe writes for `timestamp` (which must be canonical already), and
/// the base64 HMAC-SHA1 over it with `proof_key`. Returns `(signed_info, signature_value_b64)`.
pub fn sign_certprov_proof(
    timestamp: &str,
    timestamp_id: &str,
    proof_key: &[u8],
) -> (String, String) {
    let digest = xml::b64_encode(&Sha1::digest(timestamp.as_bytes()));
    let signed_info = format!(
        "<SignedInfo xmlns=\"{dsig}\"><CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></CanonicalizationMethod>\
<SignatureMethod Algorithm=\"{HMAC_SHA1}\"></SignatureMethod><Reference URI=\"#{id}\"><Transforms>\
<Transform Algorithm=\"{EXC_C14N}\"></Transform></Transforms><DigestMethod Algorithm=\"{DIGEST_SHA1}\"></DigestMethod>\
<DigestValue>{digest}</DigestValue></Reference></SignedInfo>",
        dsig = ns::DSIG,
        id = escape_attr(timestamp_id),
    );
    let mac = <Hmac<Sha1> as Mac>::new_from_slice(proof_key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
        .chain_update(signed_info.as_bytes())
        .finalize()
        .into_bytes();
    (signed_info, xml::b64_encode(&mac))
}

/// The `GetAndPublishCertResponse` (http.md §8.4): SOAP 1.1; `RequestSecurityTokenResponse` a
/// direct child of `GetAndPublishCertResponse`; the leaf DER (base64, one X.509 certificate) in
/// `RequestedSecurityToken/BinarySecurityToken`; the optional PKCS#7 chain in a sibling
/// `BinarySecurityToken` outside it; the client's `RequestID` echoed.
pub fn render_certprov_response(
    cert_der: &[u8],
    chain_pkcs7_der: Option<&[u8]>,
    request_id: &str,
    relates_to: Option<&str>,
) -> String {
    let relates = relates_to
        .map(|r| format!("<a:RelatesTo>{}</a:RelatesTo>", escape_text(r)))
        .unwrap_or_default();
    let chain = chain_pkcs7_der
        .map(|c| {
            format!(
                "<wsse:BinarySecurityToken ValueType=\"{PKCS7}\" EncodingType=\"{BASE64_BINARY}\">{}</wsse:BinarySecurityToken>",
                xml::b64_encode(c)
            )
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<s:Envelope xmlns:s=\"{soap}\" xmlns:a=\"{wsa}\">\
<s:Header><a:Action s:mustUnderstand=\"1\">{RESPONSE_ACTION}</a:Action>{relates}</s:Header>\
<s:Body><GetAndPublishCertResponse xmlns=\"{AUTH_WEB_SERVICES_NS}\">\
<wst:RequestSecurityTokenResponse xmlns:wst=\"{WST13_SLASH}\" xmlns:wsse=\"{wsse}\" xmlns:wstep=\"{WSTEP}\">\
<wst:TokenType>{X509V3}</wst:TokenType>\
<wstep:DispositionMessage xml:lang=\"en-US\">Issued</wstep:DispositionMessage>{chain}\
<wst:RequestedSecurityToken><wsse:BinarySecurityToken ValueType=\"{X509V3}\" EncodingType=\"{BASE64_BINARY}\">{leaf}</wsse:BinarySecurityToken></wst:RequestedSecurityToken>\
<wstep:RequestID>{rid}</wstep:RequestID>\
</wst:RequestSecurityTokenResponse></GetAndPublishCertResponse></s:Body></s:Envelope>",
        soap = ns::SOAP11,
        wsa = ns::WSA10,
        wsse = ns::WSSE,
        leaf = xml::b64_encode(cert_der),
        rid = escape_text(request_id),
    )
}

/// The leaf certificate (DER) of a `GetAndPublishCertResponse`, found the way pidgin-sipe finds
/// it: `Body/GetAndPublishCertResponse/RequestSecurityTokenResponse/RequestedSecurityToken/
/// BinarySecurityToken`, first match at each step, local names only.
pub fn parse_certprov_response(body: &[u8]) -> Result<Vec<u8>, WsError> {
    let doc = xml::parse(body, xml::DEFAULT_MAX_BYTES)?;
    let mut n = doc.root_element();
    for step in [
        "Body",
        "GetAndPublishCertResponse",
        "RequestSecurityTokenResponse",
        "RequestedSecurityToken",
        "BinarySecurityToken",
    ] {
        n = local(n, step).ok_or(WsError::Missing(step))?;
    }
    let b64 = xml::text_of(n);
    xml::b64_decode(&b64)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("BinarySecurityToken", &b64, "it is not base64"))
}
