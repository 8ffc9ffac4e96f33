//! The HTTP layer: one handler that reads the request, picks the service by method and
//! (case-insensitive) path, and writes its reply.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

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
        .with_state(app)
}

async fn dispatch(app: Arc<App>, listener: Listener, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_ascii_lowercase();
    let query = parts.uri.query();
    let https = listener == Listener::Https;
    let reply = match (&parts.method, path.as_str()) {
        (&Method::GET, "/" | "/autodiscover/autodiscoverservice.svc/root") => {
            discover::root(&app, query, &parts.headers, !https).await
        }
        _ if !https => Reply::text(
            StatusCode::NOT_FOUND,
            "this service is only available over https",
        ),
        (
            &Method::GET,
            "/autodiscover/autodiscoverservice.svc/root/user"
            | "/autodiscover/autodiscoverservice.svc/root/oauth/user",
        ) => discover::user(&app, &parts.headers).await,
        (&Method::GET, "/webticket/webticketservice.svc/mex") => webticket::mex(&app),
        (&Method::GET, "/certprov/certprovisioningservice.svc/mex") => certprov::mex(&app),
        (&Method::GET, "/certprov/certprovisioningservice.svc")
            if query.is_some_and(|q| q.eq_ignore_ascii_case("wsdl")) =>
        {
            certprov::mex(&app)
        }
        (&Method::GET, "/getuserrealm.srf") => idp::realm(&app, query),
        (&Method::POST, p) => match read_body(body).await {
            Err(reply) => reply,
            Ok(bytes) => match p {
                "/webticket/webticketservice.svc/wsfedbearer" => {
                    webticket::issue(&app, &bytes).await
                }
                "/webticket/oauthtoken" => oauth::token(&app, &bytes).await,
                "/certprov/certprovisioningservice.svc/webticket_proof_sha1" => {
                    certprov::issue(&app, &bytes).await
                }
                "/rst2.srf" => idp::rst2(&app, &bytes).await,
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
