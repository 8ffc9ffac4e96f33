//! One module per web service. Each function takes what the HTTP layer extracted and returns a
//! [`Reply`](crate::reply::Reply); protocol decisions are made by the cores it calls.

pub mod certprov;
pub mod discover;
pub mod idp;
pub mod oauth;
pub mod webticket;

use axum::http::{HeaderMap, StatusCode};
use lyncd_core::SipAddress;
use lyncd_wsxml::webticket::FaultCode;

use crate::App;
use crate::diagnostics::{self, Diagnostic};
use crate::reply::{Reply, XML};

/// How the Web Ticket and Certificate Provisioning services refuse: a SOAP 1.1 fault with HTTP
/// 500 and an `X-Ms-diagnostics` code naming the cause.
pub fn soap_fault(app: &App, code: FaultCode, diag: Diagnostic, reason: &str) -> Reply {
    Reply::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        XML,
        lyncd_wsxml::webticket::render_soap11_fault(code, reason),
    )
    .header(
        diagnostics::HEADER.clone(),
        diag.header_value(&app.config.names.web),
    )
}

/// `None` when `user` still exists and may sign in; otherwise the fault to answer with (logged
/// under `service`). A store failure is a 503 the client may retry.
pub async fn refuse_unless_enabled(app: &App, service: &str, user: &SipAddress) -> Option<Reply> {
    let (diag, reason) = match app.store.user(user).await {
        Ok(Some(u)) if u.enabled => return None,
        Ok(Some(_)) => (Diagnostic::UserNotEnabled, "the account is disabled"),
        Ok(None) => (Diagnostic::NoValidToken, "the account no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "{service}: the store is unavailable");
            let mut reply = soap_fault(
                app,
                FaultCode::Server,
                Diagnostic::Internal,
                "the user directory is unavailable",
            );
            reply.status = StatusCode::SERVICE_UNAVAILABLE;
            return Some(reply);
        }
    };
    tracing::info!(%user, "{service}: {reason}");
    Some(soap_fault(
        app,
        FaultCode::FailedAuthentication,
        diag,
        reason,
    ))
}

/// A query parameter, matched case-insensitively by name (clients differ in spelling).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
