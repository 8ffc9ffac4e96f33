//! One module per web service. Each function takes what the HTTP layer extracted and returns a
//! [`Reply`](crate::reply::Reply); protocol decisions are made by the cores it calls.

pub mod certprov;
pub mod discover;
pub mod idp;
pub mod oauth;
pub mod webticket;

use axum::http::{HeaderMap, StatusCode};
use lyncd_core::SipAddress;
use lyncd_store::StoreError;
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

/// `Retry-After` (seconds) of the 503 answered while the database is unavailable.
pub const STORE_RETRY_AFTER_SECS: u32 = 5;

/// The one answer to a failed store call, in the service's own error shape: `render(status,
/// reason)` builds it (a SOAP fault, a text, a JSON error). A transient failure (the database
/// is unreachable or read-only: [`StoreError::is_transient`]) is 503 with `Retry-After`, so
/// clients and load balancers try again; anything else is 500. Logs one error line with the
/// cause, under `service`.
pub fn store_failure(
    service: &str,
    e: &StoreError,
    render: impl FnOnce(StatusCode, &str) -> Reply,
) -> Reply {
    if e.is_transient() {
        tracing::error!(error = %e, "{service}: the database is unavailable; answered 503, retry in {STORE_RETRY_AFTER_SECS} s");
        render(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; try again in a few seconds",
        )
        .header(
            axum::http::header::RETRY_AFTER,
            STORE_RETRY_AFTER_SECS.to_string(),
        )
    } else {
        tracing::error!(error = %e, "{service}: database error; answered 500");
        render(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the database failed",
        )
    }
}

/// [`store_failure`] for the SOAP services (Web Ticket, Certificate Provisioning): a
/// `Server` fault with `X-Ms-diagnostics` 28001.
pub fn store_soap_fault(app: &App, service: &str, e: &StoreError) -> Reply {
    store_failure(service, e, |status, reason| {
        let mut reply = soap_fault(app, FaultCode::Server, Diagnostic::Internal, reason);
        reply.status = status;
        reply
    })
}

/// [`store_failure`] for the services that answer errors as plain text.
pub fn store_text(service: &str, e: &StoreError) -> Reply {
    store_failure(service, e, Reply::text)
}

/// `None` when `user` still exists and may sign in; otherwise the fault to answer with (logged
/// under `service`). A store failure is [`store_soap_fault`].
pub async fn refuse_unless_enabled(app: &App, service: &str, user: &SipAddress) -> Option<Reply> {
    let (diag, reason) = match app.store.user(user).await {
        Ok(Some(u)) if u.enabled => return None,
        Ok(Some(_)) => (Diagnostic::UserNotEnabled, "the account is disabled"),
        Ok(None) => (Diagnostic::NoValidToken, "the account no longer exists"),
        Err(e) => return Some(store_soap_fault(app, service, &e)),
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
