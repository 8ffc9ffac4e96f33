//! The identity provider ("Org ID"): realm discovery and the WS-Trust username/password
//! endpoint `RST2.srf`, which answers with a signed SAML token encrypted to the Web Ticket service.

use lyncd_core::{OsEntropy, normalize_audience};
use lyncd_wsxml::idp::{IdpFault, IdpTokenParams};

use super::discover::login_address;
use super::query_param;
use crate::App;
use crate::reply::{Reply, SOAP12, XML};

/// `GET /getuserrealm.srf?login=…&xml=1`: a managed realm (no `STSAuthURL`), which tells
/// clients to send the password here rather than to a federation server.
pub fn realm(app: &App, query: Option<&str>) -> Reply {
    let login = query_param(query, "login").unwrap_or_default();
    let domain = login
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let _ = app;
    Reply::ok(XML, lyncd_wsxml::idp::render_realm_info(&login, &domain))
}

/// `POST /RST2.srf`. Faults are sent with HTTP 200: that is the only way pidgin-sipe shows the
/// reason to its user (http.md §5.4).
pub async fn rst2(app: &App, body: &[u8]) -> Reply {
    let fault = |f: IdpFault| Reply::ok(SOAP12, lyncd_wsxml::idp::render_rst2_fault(f));
    let req = match lyncd_wsxml::idp::parse_rst2_request(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "idp: malformed RST2 request");
            return fault(IdpFault::MalformedRequest(e.to_string()));
        }
    };
    let wsfed = normalize_audience(&app.urls.wsfedbearer()).unwrap_or_default();
    if normalize_audience(&req.applies_to).ok().as_deref() != Some(wsfed.as_str()) {
        tracing::info!(applies_to = %req.applies_to, "idp: token requested for a service we do not issue for");
        return fault(IdpFault::UnknownAudience);
    }
    let user = match login_address(&req.username) {
        Some(addr) => match app.store.user(&addr).await {
            Ok(u) => u,
            Err(e) => return super::store_text("idp", &e),
        },
        None => None,
    };
    // Unknown users cost a dummy verification and get the same fault as a wrong password.
    let ok = app
        .verify_password(
            req.password.expose(),
            user.as_ref().map(|u| u.password_hash.expose().as_str()),
        )
        .await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            tracing::info!(login = %req.username, "idp: invalid user name or password");
            return fault(IdpFault::BadCredentials);
        }
    };
    if !user.enabled {
        tracing::info!(user = %user.address, "idp: sign-in refused, the account is disabled");
        return fault(IdpFault::UserDisabled);
    }
    let params = IdpTokenParams {
        issuer: app.urls.idp_issuer(),
        audience: wsfed,
        upn: user.address.to_string(),
        object_id: user.object_id.clone(),
        lifetime: time::Duration::seconds(app.config.tokens.idp_token_secs.into()),
    };
    let keys = app.keys();
    let now = app.now();
    let signing = keys.signing(now);
    match lyncd_wsxml::idp::issue_idp_token(
        &params,
        &signing.idp_signer,
        &signing.rp_encryption,
        now,
        &mut OsEntropy,
    ) {
        Ok(token) => {
            tracing::info!(user = %user.address, "idp: token issued");
            Reply::ok(
                SOAP12,
                lyncd_wsxml::idp::render_rst2_response(&token, &req.applies_to),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "idp: could not issue a token");
            fault(IdpFault::Internal)
        }
    }
}
