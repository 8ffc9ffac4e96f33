//! lyncdiscover and the Autodiscover service ([MS-OCDISCWS]).

use axum::http::{HeaderMap, HeaderName, StatusCode};
use base64::Engine;
use lyncd_core::{SipAddress, normalize_audience};
use lyncd_discover::{
    AccessLocation, Representation, RootAnswer, Served, SipEndpoint, domain_for_request,
    root_answer, user_answer, user_redirect,
};
use lyncd_wsxml::TokenError;

use super::{header, query_param};
use crate::App;
use crate::diagnostics::{self, Diagnostic};
use crate::reply::Reply;

static WEBTICKET_URL: HeaderName = HeaderName::from_static("x-ms-webticketurl");

/// `GET /?sipuri=…` on lyncdiscover(internal).<domain>, and the Autodiscover root.
pub async fn root(app: &App, query: Option<&str>, headers: &HeaderMap, plain_http: bool) -> Reply {
    if let Some(portal) = crate::faults::autodiscover_refusal(app) {
        return portal;
    }
    let repr = Representation::from_accept(header(headers, "accept"));
    let Some(domain) = domain_for_request(
        query_param(query, "originalDomain").as_deref(),
        query_param(query, "sipuri").as_deref(),
        header(headers, "host"),
    ) else {
        return Reply::text(
            StatusCode::BAD_REQUEST,
            "no SIP domain in the request: add ?sipuri=user@domain or ?originalDomain=domain",
        );
    };
    let served = match app.store.tenant(&domain).await {
        Ok(Some(_)) => Served::Here,
        Ok(None) => match app.config.redirects.get(&domain) {
            Some(root) => Served::Elsewhere(root),
            None => Served::Unknown,
        },
        Err(e) => return super::store_text("discovery", &e),
    };
    match root_answer(&app.urls, &domain, served, plain_http, repr) {
        RootAnswer::Document(doc) => {
            tracing::info!(%domain, plain_http, "discovery: root answered");
            document(repr, &doc)
        }
        RootAnswer::NotServed => {
            tracing::info!(%domain, "discovery: domain not served here");
            Reply::empty(StatusCode::NOT_FOUND)
        }
        RootAnswer::NoDomain => Reply::empty(StatusCode::BAD_REQUEST),
    }
}

fn document(repr: Representation, doc: &lyncd_discover::Document) -> Reply {
    let body = match repr {
        Representation::Xml => doc.to_xml(),
        Representation::Json => doc.to_json(),
    };
    Reply::ok(repr.content_type(), body).header(axum::http::header::CACHE_CONTROL, "no-cache")
}

/// `GET …/root/user` (web ticket) and `…/root/oauth/user` (OAuth bearer): the user's SIP pool.
pub async fn user(app: &App, headers: &HeaderMap) -> Reply {
    let repr = Representation::from_accept(header(headers, "accept"));
    let token = match credential(headers) {
        Some(Ok(bytes)) => bytes,
        Some(Err(why)) => {
            tracing::info!(why, "autodiscover: unreadable credential");
            return challenge(app, Some(Diagnostic::NoValidToken));
        }
        None => return challenge(app, None),
    };
    let claims = match verify_user_token(app, &token) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "autodiscover: ticket refused");
            return challenge(app, Some(token_diagnostic(&e)));
        }
    };
    let user = match app.store.user(&claims.subject).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            tracing::info!(user = %claims.subject, "autodiscover: ticket for a user that no longer exists");
            return Reply::empty(StatusCode::NOT_FOUND);
        }
        Err(e) => return super::store_text("autodiscover", &e),
    };
    if !user.enabled {
        return Reply::empty(StatusCode::FORBIDDEN).header(
            diagnostics::HEADER.clone(),
            Diagnostic::UserNotEnabled.header_value(&app.config.names.web),
        );
    }
    if let Some(root) = app.config.redirects.get(user.address.domain()) {
        return document(repr, &user_redirect(root, repr));
    }
    let pool = SipEndpoint {
        fqdn: app.config.names.pool.clone(),
        port: app.config.public_sip_port(),
    };
    tracing::info!(user = %user.address, pool = %pool.fqdn, "autodiscover: pool handed out");
    let mut answer = user_answer(
        &app.urls,
        &pool,
        &pool,
        Some(AccessLocation::External),
        repr,
    );
    advertise_certprov(&mut answer, &app.certprov);
    document(repr, &answer)
}

/// Points the CertProv links at the advertised CertProv, which differs from the real one only
/// under `faults.certprov_unreachable`.
fn advertise_certprov(doc: &mut lyncd_discover::Document, certprov: &str) {
    if let lyncd_discover::Document::User { user, .. } = doc {
        for link in &mut user.links {
            if link.token.ends_with("CertProvisioningService") {
                link.href = certprov.to_string();
            }
        }
    }
}

/// The raw assertion from `X-MS-WebTicket: opaque=<base64>` or `Authorization: Bearer cwt=<base64>`.
fn credential(headers: &HeaderMap) -> Option<Result<Vec<u8>, &'static str>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(v) = header(headers, "x-ms-webticket") {
        let v = v.trim();
        let data = v.strip_prefix("opaque=").unwrap_or(v);
        return Some(
            b64.decode(data.trim())
                .map_err(|_| "X-MS-WebTicket is not base64"),
        );
    }
    let auth = header(headers, "authorization")?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Some(Err("Authorization scheme is not Bearer"));
    }
    let data = rest.trim().strip_prefix("cwt=").unwrap_or(rest.trim());
    Some(
        b64.decode(data)
            .map_err(|_| "the bearer token is not base64"),
    )
}

/// Web tickets are accepted for either flavour of the user resource.
fn verify_user_token(
    app: &App,
    assertion: &[u8],
) -> Result<lyncd_wsxml::WebTicketClaims, TokenError> {
    let user = normalize_audience(&app.urls.user("x")).unwrap_or_default();
    let oauth = normalize_audience(&app.urls.oauth_user("x")).unwrap_or_default();
    let keys = app.keys();
    let now = app.now();
    let verify = |audience: &str| {
        keys.verify(now, app.max_token_lifetime(), |g| {
            lyncd_wsxml::verify_web_ticket(
                assertion,
                &g.webticket_cert,
                &g.wrap,
                &app.urls.webticket(),
                audience,
                now,
                app.skew(),
            )
        })
    };
    match verify(&user) {
        Err(TokenError::WrongAudience { .. }) => verify(&oauth),
        other => other,
    }
}

pub(crate) fn token_diagnostic(e: &TokenError) -> Diagnostic {
    match e {
        TokenError::Expired { .. } => Diagnostic::TokenExpired,
        TokenError::WrongAudience { .. } => Diagnostic::WrongAudience,
        _ => Diagnostic::NoValidToken,
    }
}

/// The 401 that sends a client to the Web Ticket service ([MS-OCAUTHWS] 1.5), plus the OAuth
/// challenge UCWA clients read. Never Basic/NTLM/Negotiate: pidgin-sipe would answer those.
pub fn challenge(app: &App, why: Option<Diagnostic>) -> Reply {
    let mut reply = Reply::new(
        StatusCode::UNAUTHORIZED,
        "text/html; charset=utf-8",
        "<html><body>401 - Unauthorized</body></html>",
    )
    .header(WEBTICKET_URL.clone(), app.urls.webticket())
    .header(
        axum::http::header::WWW_AUTHENTICATE,
        format!(
            "MsRtcOAuth href=\"{}\",grant_type=\"password\"",
            app.urls.oauth_token()
        ),
    )
    .header(
        axum::http::header::WWW_AUTHENTICATE,
        "Bearer trusted_issuers=\"\", client_id=\"00000004-0000-0ff1-ce00-000000000000\"",
    )
    .header(axum::http::header::CACHE_CONTROL, "private");
    if let Some(d) = why {
        reply = reply.header(
            diagnostics::HEADER.clone(),
            d.header_value(&app.config.names.web),
        );
    }
    reply
}

/// The SIP address a login names: `alice@contoso.com`, `sip:alice@contoso.com`.
pub fn login_address(login: &str) -> Option<SipAddress> {
    SipAddress::parse(login).ok()
}
