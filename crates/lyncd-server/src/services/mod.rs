//! One module per web service. Each function takes what the HTTP layer extracted and returns a
//! [`Reply`](crate::reply::Reply); protocol decisions are made by the cores it calls.

pub mod certprov;
pub mod discover;
pub mod idp;
pub mod oauth;
pub mod webticket;

use axum::http::HeaderMap;

/// A query parameter, matched case-insensitively by name (clients differ in spelling).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
