//! The Web Ticket service ([MS-OCAUTHWS]): its metadata and the WsFedBearer endpoint, which
//! trades an identity-provider token for a web ticket bound to one relying party.

use lyncd_core::{OsEntropy, SipAddress, normalize_audience};
use lyncd_wsxml::webticket::{FaultCode, WebTicketParams};

use crate::App;
use crate::diagnostics::Diagnostic;
use crate::reply::{Reply, XML};

/// `GET <webticket>/mex`: the WSDL a client reads to find the WsFedBearer endpoint and the
/// identity provider.
pub fn mex(app: &App) -> Reply {
    Reply::ok(
        XML,
        lyncd_wsxml::mex::render_webticket_mex(&app.urls.wsfedbearer(), &app.urls.idp_rst2()),
    )
}

/// The services a web ticket may be issued for, normalised.
pub fn relying_parties(app: &App) -> Vec<String> {
    [
        app.urls.user("x"),
        app.urls.oauth_user("x"),
        app.urls.certprov_port(),
    ]
    .iter()
    .filter_map(|u| normalize_audience(u).ok())
    .collect()
}

/// `POST <webticket>/WsFedBearer`.
pub async fn issue(app: &App, body: &[u8]) -> Reply {
    if let Some(refusal) = crate::faults::web_ticket_refusal(app) {
        return refusal;
    }
    let req = match lyncd_wsxml::webticket::parse_webticket_request(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "webticket: malformed request");
            return super::soap_fault(
                app,
                FaultCode::Client,
                Diagnostic::MalformedRequest,
                &e.to_string(),
            );
        }
    };
    let audience = match normalize_audience(&req.applies_to) {
        Ok(a) if relying_parties(app).contains(&a) => a,
        _ => {
            tracing::info!(applies_to = %req.applies_to, "webticket: requested for a service we do not know");
            return super::soap_fault(
                app,
                FaultCode::FailedAuthentication,
                Diagnostic::WrongAudience,
                "web tickets are issued only for this deployment's services",
            );
        }
    };
    let keys = app.keys();
    let now = app.now();
    let audience_of_idp_token = normalize_audience(&app.urls.wsfedbearer()).unwrap_or_default();
    let claims = match keys.verify(now, app.max_token_lifetime(), |g| {
        lyncd_wsxml::idp::verify_idp_token(
            &req.encrypted_data,
            &g.rp_decryption,
            &g.idp_cert,
            &app.urls.idp_issuer(),
            &audience_of_idp_token,
            now,
            app.skew(),
        )
    }) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "webticket: identity provider token refused");
            return super::soap_fault(
                app,
                FaultCode::InvalidSecurityToken,
                super::discover::token_diagnostic(&e),
                &e.to_string(),
            );
        }
    };
    let Ok(subject) = SipAddress::parse(&claims.upn) else {
        return super::soap_fault(
            app,
            FaultCode::InvalidSecurityToken,
            Diagnostic::NoValidToken,
            "the token names no SIP user",
        );
    };
    if let Some(refusal) = super::refuse_unless_enabled(app, "webticket", &subject).await {
        return refusal;
    }
    if let Some(claimed) = &req.claimed_uri
        && SipAddress::parse(claimed).ok().as_ref() != Some(&subject)
    {
        tracing::info!(%claimed, user = %subject, "webticket: claim names another user");
        return super::soap_fault(
            app,
            FaultCode::FailedAuthentication,
            Diagnostic::NoValidToken,
            "the requested SIP URI is not the signed-in user's",
        );
    }
    let params = WebTicketParams {
        issuer: app.urls.webticket(),
        audience,
        subject: subject.clone(),
        lifetime: time::Duration::seconds(app.config.tokens.web_ticket_secs.into()),
    };
    let signing = keys.signing(now);
    match lyncd_wsxml::webticket::issue_web_ticket(
        &params,
        &signing.webticket_signer,
        &signing.wrap,
        req.client_entropy.as_deref(),
        now,
        &mut OsEntropy,
    ) {
        Ok(ticket) => {
            tracing::info!(user = %subject, applies_to = %req.applies_to, "webticket: issued");
            Reply::ok(
                XML,
                lyncd_wsxml::webticket::render_webticket_response(
                    &ticket,
                    req.context.as_deref(),
                    req.message_id.as_deref(),
                    &req.applies_to,
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "webticket: could not issue");
            super::soap_fault(
                app,
                FaultCode::Server,
                Diagnostic::Internal,
                "internal error",
            )
        }
    }
}
