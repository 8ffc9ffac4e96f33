//! Health and readiness for load balancers, and the admin listener (`[listen] admin`).
//!
//! - `GET /healthz`: 200 `ok` while the process serves (liveness: restart it when this fails).
//! - `GET /readyz`: 200 and `{"ready":true,"node":…,"database":…,"schema":N}` when the database
//!   answers within [`READY_TIMEOUT`] and the node is not shutting down; otherwise 503 with
//!   `Retry-After` and `{"ready":false,"node":…,"reason":…}` (send no new clients here).
//!
//! Both answer on every listener (exact paths, GET or HEAD). The admin listener adds
//! `GET /registrations[?user=alice@contoso.com]`: the unexpired SIP registrations of every
//! node, as JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lyncd_core::SipAddress;
use lyncd_store::{Registration, StoreError};

use crate::App;
use crate::reply::{JSON, Reply};
use crate::services::{STORE_RETRY_AFTER_SECS, query_param};

/// How long `/readyz` waits for the database before calling it unavailable.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What readiness knows besides the database: whether the node is shutting down, and what it
/// answered last (so a change is logged once, not on every probe).
#[derive(Debug)]
pub struct Health {
    draining: AtomicBool,
    was_ready: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            draining: AtomicBool::new(false),
            was_ready: AtomicBool::new(true),
        }
    }
}

impl Health {
    /// From now on `/readyz` answers 503 "shutting down" (the node keeps serving).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Logs a change of readiness once.
    fn observe(&self, ready: Result<(), &str>) {
        let was = self.was_ready.swap(ready.is_ok(), Ordering::SeqCst);
        match ready {
            Ok(()) if !was => tracing::info!("readiness: ready again"),
            Err(reason) if was => tracing::warn!(%reason, "readiness: not ready"),
            _ => {}
        }
    }
}

/// `/healthz` and `/readyz` (exact paths, GET or HEAD): the answer, or `None` for any other
/// request.
pub async fn probe(app: &App, method: &Method, path: &str) -> Option<Reply> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        "/healthz" => Some(healthz()),
        "/readyz" => Some(readyz(app).await),
        _ => None,
    }
}

/// Liveness: the process answers.
pub fn healthz() -> Reply {
    Reply::text(StatusCode::OK, "ok").header(header::CACHE_CONTROL, "no-store")
}

/// Readiness: the database answers within [`READY_TIMEOUT`] and the node is not draining.
pub async fn readyz(app: &App) -> Reply {
    let node = app.config.node_name();
    let answer = if app.health.is_draining() {
        Err("shutting down".to_string())
    } else {
        let check = async {
            app.store.ping().await?;
            app.store.schema_version().await
        };
        match tokio::time::timeout(READY_TIMEOUT, check).await {
            Ok(Ok(schema)) => Ok(schema),
            Ok(Err(e)) => Err(format!("database unavailable: {}", cause(&e))),
            Err(_) => Err(format!(
                "database unavailable: no answer within {} s",
                READY_TIMEOUT.as_secs()
            )),
        }
    };
    if !app.health.is_draining() {
        // Shutting down is logged by the shutdown itself.
        app.health
            .observe(answer.as_ref().map(|_| ()).map_err(String::as_str));
    }
    let reply = match answer {
        Ok(schema) => Reply::ok(
            JSON,
            serde_json::json!({
                "ready": true,
                "node": node,
                "database": app.store.backend().to_string(),
                "schema": schema,
            })
            .to_string(),
        ),
        Err(reason) => Reply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            serde_json::json!({ "ready": false, "node": node, "reason": reason }).to_string(),
        )
        .header(header::RETRY_AFTER, STORE_RETRY_AFTER_SECS.to_string()),
    };
    reply.header(header::CACHE_CONTROL, "no-store")
}

/// The sentence for a failed check: the driver's error, without the store's advice to retry
/// (the status says that).
fn cause(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(source)
        | StoreError::ReadOnly(source)
        | StoreError::Unreachable { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// `GET /registrations[?user=…]` (admin listener): the unexpired registrations of every node.
pub async fn registrations(app: &App, query: Option<&str>) -> Reply {
    let user = match query_param(query, "user") {
        Some(u) => match SipAddress::parse(&u) {
            Ok(a) => Some(a),
            Err(e) => {
                return Reply::text(
                    StatusCode::BAD_REQUEST,
                    &format!("?user= must be a SIP address such as alice@contoso.com: {e}"),
                );
            }
        },
        None => None,
    };
    match app.store.registrations(user.as_ref(), app.now()).await {
        Ok(list) => Reply::ok(
            JSON,
            serde_json::Value::Array(list.iter().map(registration_json).collect()).to_string(),
        )
        .header(header::CACHE_CONTROL, "no-store"),
        Err(e) => crate::services::store_text("admin: registrations", &e),
    }
}

/// One registration as `/registrations` and `lyncd registrations --json` show it.
pub fn registration_json(r: &Registration) -> serde_json::Value {
    serde_json::json!({
        "address": r.address.to_string(),
        "epid": r.epid,
        "instance": r.instance,
        "contact": r.contact,
        "gruu": r.gruu,
        "node": r.node,
        "registered_at": lyncd_core::format_iso(r.registered_at),
        "expires_at": lyncd_core::format_iso(r.expires_at),
    })
}

/// The admin listener: plain HTTP, for internal addresses only.
pub fn admin_router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(|State(app): State<Arc<App>>, req: Request| admin(app, req))
        .with_state(app)
}

async fn admin(app: Arc<App>, req: Request) -> Response {
    let (method, uri) = (req.method(), req.uri());
    let reply = match probe(&app, method, uri.path()).await {
        Some(reply) => reply,
        None if method == Method::GET && uri.path() == "/registrations" => {
            registrations(&app, uri.query()).await
        }
        None => Reply::text(
            StatusCode::NOT_FOUND,
            "the admin listener serves /healthz, /readyz and /registrations",
        ),
    };
    tracing::debug!(%method, path = %uri.path(), status = reply.status.as_u16(), "admin");
    reply.into_response()
}
