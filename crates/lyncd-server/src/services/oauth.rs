//! `POST /WebTicket/oauthtoken` (grant_type=password): the UCWA flavour of sign-in. The access
//! token is `cwt=` + base64 of a web ticket for the OAuth user resource.

use axum::http::StatusCode;
use base64::Engine;
use lyncd_core::{OsEntropy, normalize_audience};
use lyncd_wsxml::webticket::WebTicketParams;

use super::discover::login_address;
use crate::App;
use crate::diagnostics::{self, Diagnostic};
use crate::reply::{JSON, Reply};

fn error(app: &App, status: StatusCode, error: &str, diag: Diagnostic) -> Reply {
    reply(app, status, serde_json::json!({ "error": error }), diag)
}

/// An error with an `error_description` (RFC 6749 §5.2) for the user.
fn error_described(
    app: &App,
    status: StatusCode,
    error: &str,
    description: &str,
    diag: Diagnostic,
) -> Reply {
    let body = serde_json::json!({ "error": error, "error_description": description });
    reply(app, status, body, diag)
}

fn reply(app: &App, status: StatusCode, body: serde_json::Value, diag: Diagnostic) -> Reply {
    Reply::new(status, JSON, body.to_string())
        .header(axum::http::header::CACHE_CONTROL, "no-store")
        .header(axum::http::header::PRAGMA, "no-cache")
        .header(
            diagnostics::HEADER.clone(),
            diag.header_value(&app.config.names.web),
        )
}

pub async fn token(app: &App, body: &[u8]) -> Reply {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("grant_type") {
        // `faults.oauth_password_grant = false`: a UCWA that does not allow the password grant.
        Some("password") if app.config.faults.oauth_password_grant => {}
        Some(_) => {
            return error(
                app,
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                Diagnostic::AuthTypeNotAllowed,
            );
        }
        None => {
            return error(
                app,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Diagnostic::MalformedRequest,
            );
        }
    }
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return error(
            app,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Diagnostic::MalformedRequest,
        );
    };
    let user = match login_address(username) {
        Some(a) => match app.store.user(&a).await {
            Ok(u) => u,
            Err(e) => {
                return super::store_failure("oauth", &e, |status, reason| {
                    error_described(app, status, "server_error", reason, Diagnostic::Internal)
                });
            }
        },
        None => None,
    };
    let ok = app
        .verify_password(
            password,
            user.as_ref().map(|u| u.password_hash.expose().as_str()),
        )
        .await;
    let user = match (ok, user) {
        (true, Some(u)) if u.enabled => u,
        (true, Some(u)) => {
            tracing::info!(user = %u.address, "oauth: refused, the account is disabled");
            return error(
                app,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Diagnostic::UserNotEnabled,
            );
        }
        _ => {
            tracing::info!(login = %username, "oauth: invalid user name or password");
            return error(
                app,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Diagnostic::BadCredentials,
            );
        }
    };
    let lifetime = app.config.tokens.web_ticket_secs;
    let params = WebTicketParams {
        issuer: app.urls.webticket(),
        audience: normalize_audience(&app.urls.oauth_user("x")).unwrap_or_default(),
        subject: user.address.clone(),
        lifetime: time::Duration::seconds(lifetime.into()),
    };
    let keys = app.keys();
    let now = app.now();
    let signing = keys.signing(now);
    match lyncd_wsxml::webticket::issue_web_ticket(
        &params,
        &signing.webticket_signer,
        &signing.wrap,
        None,
        now,
        &mut OsEntropy,
    ) {
        Ok(ticket) => {
            tracing::info!(user = %user.address, "oauth: access token issued");
            let token =
                base64::engine::general_purpose::STANDARD.encode(ticket.assertion.as_bytes());
            Reply::ok(
                JSON,
                serde_json::json!({
                    "access_token": format!("cwt={token}"),
                    "expires_in": lifetime,
                    "ms_rtc_identityscope": "local",
                    "token_type": "Bearer",
                })
                .to_string(),
            )
            .header(axum::http::header::CACHE_CONTROL, "no-store")
            .header(axum::http::header::PRAGMA, "no-cache")
        }
        Err(e) => {
            tracing::error!(error = %e, "oauth: could not issue a token");
            error(
                app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                Diagnostic::Internal,
            )
        }
    }
}
