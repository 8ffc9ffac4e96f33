//! The HTTP layer: one handler that reads the request, picks the service by method and
//! (case-insensitive) path, and writes its reply.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use lyncd_core::UtcTime;

use crate::App;
use crate::reply::Reply;
use crate::services::{certprov, discover, idp, oauth, webticket};

/// Request bodies (SOAP envelopes, forms) are a few KB; anything above this is refused unread.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Https,
    /// Plain HTTP serves only the first discovery GET, answered with a Redirect to HTTPS.
    Http,
}

pub fn router(app: Arc<App>, listener: Listener) -> Router {
    Router::new()
        .fallback(move |State(app): State<Arc<App>>, req: Request| dispatch(app, listener, req))
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            stamp_date,
        ))
        .with_state(app)
}

/// Every response carries the server's own time in `Date` (hyper keeps a `Date` that is
/// already set instead of adding the system's), so a client can measure the clock skew
/// between them — including the skew `faults.clock_skew_secs` injects.
async fn stamp_date(State(app): State<Arc<App>>, mut response: Response) -> Response {
    if let Ok(date) = HeaderValue::from_str(&http_date(app.now())) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, date);
    }
    response
}

/// `Tue, 25 Nov 2025 10:15:02 GMT` (RFC 9110 IMF-fixdate), for HTTP and SIP `Date` headers.
pub fn http_date(now: UtcTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    now.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

async fn dispatch(app: Arc<App>, listener: Listener, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut response = match crate::health::probe(&app, &parts.method, parts.uri.path()).await {
        Some(reply) => reply.into_response(),
        None => route(&app, listener, parts, body).await,
    };
    if app.health.is_draining() {
        // Shutting down: no new request on this connection, so keep-alive clients reconnect
        // (through the load balancer, to another node).
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    response
}

async fn route(
    app: &App,
    listener: Listener,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    let path = parts.uri.path().to_ascii_lowercase();
    let query = parts.uri.query();
    let https = listener == Listener::Https;
    let reply = match (&parts.method, path.as_str()) {
        (&Method::GET, "/" | "/autodiscover/autodiscoverservice.svc/root") => {
            discover::root(app, query, &parts.headers, !https).await
        }
        _ if !https => Reply::text(
            StatusCode::NOT_FOUND,
            "this service is only available over https",
        ),
        (
            &Method::GET,
            "/autodiscover/autodiscoverservice.svc/root/user"
            | "/autodiscover/autodiscoverservice.svc/root/oauth/user",
        ) => discover::user(app, &parts.headers).await,
        (&Method::GET, "/webticket/webticketservice.svc/mex") => webticket::mex(app),
        (&Method::GET, "/certprov/certprovisioningservice.svc/mex") => certprov::mex(app),
        (&Method::GET, "/certprov/certprovisioningservice.svc")
            if query.is_some_and(|q| q.eq_ignore_ascii_case("wsdl")) =>
        {
            certprov::mex(app)
        }
        (&Method::GET, "/getuserrealm.srf") => idp::realm(app, query),
        (&Method::POST, p) => match read_body(body).await {
            Err(reply) => reply,
            Ok(bytes) => match p {
                "/webticket/webticketservice.svc/wsfedbearer" => {
                    webticket::issue(app, &bytes).await
                }
                "/webticket/oauthtoken" => oauth::token(app, &bytes).await,
                "/certprov/certprovisioningservice.svc/webticket_proof_sha1" => {
                    certprov::issue(app, &bytes).await
                }
                "/rst2.srf" => idp::rst2(app, &bytes).await,
                _ => Reply::empty(StatusCode::NOT_FOUND),
            },
        },
        _ => Reply::empty(StatusCode::NOT_FOUND),
    };
    tracing::debug!(method = %parts.method, %path, status = reply.status.as_u16(), "http");
    reply.into_response()
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, Reply> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Reply::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request bodies are limited to {MAX_BODY} bytes"),
        )
    })
}
