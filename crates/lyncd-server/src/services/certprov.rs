//! The Certificate Provisioning service (http.md §8, [MS-OCAUTHWS]): its metadata, and
//! `GetAndPublishCert`, which trades a web ticket plus a proof of its key and a CSR for a TLS-DSK
//! user certificate.
//!
//! Every refusal is a SOAP 1.1 fault with HTTP 500 and an `X-Ms-diagnostics` code, logged at
//! info with its cause (never the ticket or any key), and writes nothing.

use lyncd_core::{SipAddress, normalize_audience};
use lyncd_pki::PkiError;
use lyncd_store::NewCertificate;
use lyncd_wsxml::TokenError;
use lyncd_wsxml::webticket::FaultCode;

use crate::App;
use crate::diagnostics::Diagnostic;
use crate::reply::{Reply, XML};

/// A user certificate is good only for signing in to the registrar (TLS-DSK), so a user who may
/// not register gets none: the fault a disabled account gets, 28000 "User is not SIP enabled."
/// ([MS-OCAUTHWS]). Runs after [`super::refuse_unless_enabled`], which answers for unknown
/// users; a store failure here answers as there ([`super::store_soap_fault`]), never with a
/// certificate.
async fn refuse_unless_sip_enabled(app: &App, user: &SipAddress) -> Option<Reply> {
    match app.store.user(user).await {
        Ok(Some(u)) if !u.sip_enabled => {
            tracing::info!(%user, "certprov: the user is not enabled for SIP");
            Some(super::soap_fault(
                app,
                FaultCode::FailedAuthentication,
                Diagnostic::UserNotEnabled,
                "the user is not enabled for SIP",
            ))
        }
        Ok(_) => None,
        Err(e) => Some(super::store_soap_fault(app, "certprov", &e)),
    }
}

/// `GET <certprov>/mex` (and `?wsdl`): the WSDL pidgin-sipe reads to find the port, the Web
/// Ticket service, and that a proof signature is required.
pub fn mex(app: &App) -> Reply {
    Reply::ok(
        XML,
        lyncd_wsxml::render_certprov_mex(&app.urls.certprov_port(), &app.urls.webticket()),
    )
}

/// `POST <certprov>/WebTicket_Proof_SHA1`.
pub async fn issue(app: &App, body: &[u8]) -> Reply {
    let req = match lyncd_wsxml::parse_get_and_publish_cert(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "certprov: malformed request");
            return super::soap_fault(
                app,
                FaultCode::Client,
                Diagnostic::MalformedRequest,
                &e.to_string(),
            );
        }
    };
    let now = app.now();
    let audience = normalize_audience(&app.urls.certprov_port()).unwrap_or_default();
    let keys = app.keys();
    let claims = match keys.verify(now, app.max_token_lifetime(), |g| {
        lyncd_wsxml::verify_web_ticket(
            req.assertion_raw.as_bytes(),
            &g.webticket_cert,
            &g.wrap,
            &app.urls.webticket(),
            &audience,
            now,
            app.skew(),
        )
    }) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "certprov: web ticket refused");
            return super::soap_fault(
                app,
                FaultCode::InvalidSecurityToken,
                super::discover::token_diagnostic(&e),
                &e.to_string(),
            );
        }
    };
    // The MEX demands a proof (EndorsingSupportingTokens): a bearer-only ticket is not enough.
    let Some(proof_key) = claims.proof_key.as_ref() else {
        tracing::info!(user = %claims.subject, "certprov: web ticket has no proof key");
        return super::soap_fault(
            app,
            FaultCode::FailedAuthentication,
            Diagnostic::ProofInvalid,
            "the web ticket carries no proof key; request it with client entropy",
        );
    };
    if req.assertion_id.as_deref() != Some(claims.assertion_id.as_str()) {
        tracing::info!(user = %claims.subject, "certprov: AssertionID differs from the verified ticket's");
        return super::soap_fault(
            app,
            FaultCode::InvalidSecurityToken,
            Diagnostic::NoValidToken,
            "the web ticket's AssertionID is ambiguous",
        );
    }
    if let Err(e) = lyncd_wsxml::verify_certprov_proof(&req, proof_key.expose(), now, app.skew()) {
        tracing::info!(user = %claims.subject, error = %e, "certprov: proof of possession refused");
        let diag = match e {
            TokenError::Expired { .. } => Diagnostic::TokenExpired,
            _ => Diagnostic::ProofInvalid,
        };
        return super::soap_fault(app, FaultCode::FailedAuthentication, diag, &e.to_string());
    }
    let user = claims.subject;
    if SipAddress::parse(&req.entity).ok().as_ref() != Some(&user) {
        tracing::info!(%user, entity = %req.entity, "certprov: Entity names another user than the web ticket");
        return super::soap_fault(
            app,
            FaultCode::FailedAuthentication,
            Diagnostic::EntityMismatch,
            "the Entity is not the user the web ticket was issued to",
        );
    }
    if let Some(refusal) = super::refuse_unless_enabled(app, "certprov", &user).await {
        return refusal;
    }
    if let Some(refusal) = refuse_unless_sip_enabled(app, &user).await {
        return refusal;
    }
    let lifetime = time::Duration::hours(app.config.tokens.user_certificate_hours.into());
    let cert = match keys.ca.issue_user_cert(&req.csr_der, &user, now, lifetime) {
        Ok(c) => c,
        Err(
            e @ (PkiError::CsrMalformed(_)
            | PkiError::CsrSignatureInvalid
            | PkiError::CsrAlgorithmNotAllowed(_)
            | PkiError::CsrKeyTooWeak { .. }
            | PkiError::CsrKeyNotRsa),
        ) => {
            tracing::info!(%user, error = %e, "certprov: certificate request refused");
            return super::soap_fault(
                app,
                FaultCode::Client,
                Diagnostic::CsrRejected,
                &e.to_string(),
            );
        }
        Err(e) => {
            tracing::error!(%user, error = %e, "certprov: could not issue a certificate");
            return super::soap_fault(
                app,
                FaultCode::Server,
                Diagnostic::Internal,
                "internal error",
            );
        }
    };
    let record = NewCertificate {
        serial_hex: cert.serial_hex.clone(),
        address: user.clone(),
        device_id: req.device_id.clone(),
        sha256_hex: cert.sha256_hex.clone(),
        not_before: cert.not_before,
        not_after: cert.not_after,
        issued_at: now,
    };
    if let Err(e) = app.store.record_certificate(&record).await {
        // Never hand out a certificate that is not on record.
        return super::store_soap_fault(app, &format!("certprov: {user}"), &e);
    }
    tracing::info!(%user, serial = %cert.serial_hex, not_after = %cert.not_after, "certprov: certificate issued");
    Reply::ok(
        XML,
        lyncd_wsxml::render_certprov_response(
            &cert.der,
            None,
            req.request_id.as_deref().unwrap_or_default(),
            req.message_id.as_deref(),
        ),
    )
}
