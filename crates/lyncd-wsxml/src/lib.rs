//! Sans-IO WS-Trust, SOAP, MEX and SAML for lyncd's identity provider and Web Ticket service.
//!
//! - [`idp`]: RST2.srf request parsing, the encrypted SAML IdP token, its response and faults.
//! - [`webticket`]: the WsFedBearer RST, the signed SAML web ticket with its proof key, the RSTR.
//! - [`mex`]: the Web Ticket service metadata SIPE reads.
//! - [`certprov`]: the Certificate Provisioning MEX, `GetAndPublishCert` with its web-ticket
//!   proof signature, and the certificate response.
//! - [`keys`]: signing, pinned verification, encryption and key-wrap keys.
//! - [`xml`]: the single safe parsing entry point and the SIPE-style raw extraction helper.
//!
//! No I/O, no clock, no global RNG: time is a `now` argument and randomness an `&mut dyn
//! Entropy` (except the RSA-OAEP padding seed, drawn inside AWS-LC; see `crypto`).
#![forbid(unsafe_code)]

pub mod certprov;
mod crypto;
mod error;
pub mod idp;
pub mod keys;
pub mod mex;
mod saml;
pub mod webticket;
pub mod xml;

pub use certprov::{
    CertProvRequest, ProofSignature, parse_certprov_response, parse_get_and_publish_cert,
    render_certprov_mex, render_certprov_response, sign_certprov_proof, verify_certprov_proof,
};
pub use error::{KeyError, TokenError, WsError};
pub use idp::{
    IdpClaims, IdpFault, IdpToken, IdpTokenParams, Rst2Request, issue_idp_token,
    parse_rst2_request, render_realm_info, render_rst2_fault, render_rst2_response,
    verify_idp_token,
};
pub use keys::{RsaDecryptionKey, RsaEncryptionCert, RsaSigningKey, TrustedCert, WrapKey};
pub use mex::render_webticket_mex;
pub use webticket::{
    FaultCode, IssuedWebTicket, WebTicketClaims, WebTicketParams, WebTicketRequest,
    issue_web_ticket, parse_webticket_request, psha1, render_soap11_fault,
    render_webticket_response, verify_web_ticket,
};
pub use xml::XmlError;

#[cfg(test)]
mod tests;
