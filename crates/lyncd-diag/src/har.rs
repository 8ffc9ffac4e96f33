//! The `--trace FILE` format: HAR 1.2 (HTTP Archive,
//! <https://github.com/ahmadnassri/har-spec/blob/e9e5270/versions/1.2.md>), so the HTTP legs of
//! a sign-in (lyncdiscover, Autodiscover, Web Ticket, the identity provider, Certificate
//! Provisioning) open in any browser's network panel, Fiddler or a HAR viewer.
//!
//! HAR has no place for SIP or DNS. It allows custom fields whose names start with `_`, so
//! the log carries three more arrays a HAR viewer ignores and lyncd's report reads:
//! `log._sip` (every SIP message sent and received), `log._dns` (every lookup) and
//! `log._lyncd` (the run's JSON result).
//!
//! Secrets are masked through [`crate::redact`] in URLs, headers, cookies, bodies and SIP
//! messages unless the caller passes `show_secrets`; `log.comment` says which. Bodies that are
//! not UTF-8 are stored base64 with `encoding: "base64"` as the spec provides.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::format_description::FormatItem;
use time::macros::format_description;

use crate::redact;
use lyncd_core::UtcTime;

/// One HTTP request and what came back (or why nothing did).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpExchange {
    /// The sign-in step that made the request (`lyncdiscover`, `webticket`, …).
    pub step: String,
    pub started: UtcTime,
    /// From sending the request to the end of the response body (or the failure).
    pub elapsed_ms: f64,
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<Vec<u8>>,
    /// `None` when no response arrived (connection refused, TLS failure, timeout).
    pub response: Option<HttpResponseRecord>,
    /// Why the exchange failed, when it did (also set when a response arrived but its body
    /// could not be read).
    pub error: Option<String>,
    pub server_ip: Option<String>,
}

/// The response of an [`HttpExchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponseRecord {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Which way a SIP message went, seen from this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Sent,
    Received,
}

/// One SIP message on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipRecord {
    pub step: String,
    pub time: UtcTime,
    pub direction: Direction,
    /// `lyncfe.contoso.com:5061 (tls)`.
    pub peer: String,
    /// The whole message as sent or received.
    pub message: Vec<u8>,
}

/// One DNS lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsRecord {
    pub step: String,
    pub time: UtcTime,
    pub name: String,
    /// `A`, `AAAA`, `SRV`, `CNAME`.
    pub rtype: String,
    /// Answers in presentation form (`10.0.0.5`, `0 0 5061 lyncfe.contoso.com.`).
    pub answers: Vec<String>,
    /// `NXDOMAIN`, a timeout, …
    pub error: Option<String>,
    pub elapsed_ms: f64,
}

/// Everything one run recorded, to become one HAR document.
#[derive(Clone, Debug)]
pub struct TraceInput<'a> {
    /// lyncd's version, for `log.creator.version`.
    pub creator_version: &'a str,
    pub http: &'a [HttpExchange],
    pub sip: &'a [SipRecord],
    pub dns: &'a [DnsRecord],
    /// Write secrets in clear (`--show-secrets`). Off by default: traces get posted to forums.
    pub show_secrets: bool,
    /// The run's JSON result, embedded as `log._lyncd`.
    pub summary: Value,
}

/// `log.creator.name`.
pub const CREATOR_NAME: &str = "lyncd";
/// The HAR version written.
pub const HAR_VERSION: &str = "1.2";

/// Builds the whole HAR document. HTTP entries, SIP messages and DNS lookups each come out in
/// time order (a stable sort, so records with equal times keep the order they were given).
pub fn build(input: &TraceInput) -> Value {
    let show = input.show_secrets;

    let mut http: Vec<&HttpExchange> = input.http.iter().collect();
    http.sort_by_key(|exchange| exchange.started);
    let entries: Vec<Value> = http.into_iter().map(|e| entry(e, show)).collect();

    let mut sip: Vec<&SipRecord> = input.sip.iter().collect();
    sip.sort_by_key(|record| record.time);
    let sip: Vec<Value> = sip.into_iter().map(|r| sip_record(r, show)).collect();

    let mut dns: Vec<&DnsRecord> = input.dns.iter().collect();
    dns.sort_by_key(|record| record.time);
    let dns: Vec<Value> = dns.into_iter().map(|r| dns_record(r, show)).collect();

    let comment = if show {
        "WARNING: recorded with --show-secrets. This file contains passwords, tokens, web \
         tickets and cookies in clear: do not share it."
    } else {
        "Secrets are masked: passwords as ‹masked: N bytes›, tokens, tickets, cookies and keys \
         as ‹masked: N bytes, sha256:xxxxxxxx› (length and hash prefix, to compare runs). \
         Content-Length headers and bodySize give the sizes as sent."
    };

    json!({
        "log": {
            "version": HAR_VERSION,
            "creator": { "name": CREATOR_NAME, "version": input.creator_version },
            "entries": entries,
            "comment": comment,
            "_sip": sip,
            "_dns": dns,
            "_lyncd": input.summary,
        }
    })
}

const ISO_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// ISO 8601 with milliseconds in UTC, as HAR's `startedDateTime` wants.
pub fn iso_millis(t: UtcTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(ISO_MILLIS)
        .unwrap_or_else(|_| lyncd_core::format_iso(utc))
}

/// HAR times are non-negative milliseconds; a clock step backwards must not make them invalid.
fn millis(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 { ms } else { 0.0 }
}

fn entry(exchange: &HttpExchange, show: bool) -> Value {
    let url = if show {
        exchange.url.clone()
    } else {
        redact::text(&exchange.url).into_owned()
    };
    let request_content_type = header_value(&exchange.request_headers, "content-type");

    let mut request = Map::new();
    request.insert("method".into(), json!(exchange.method));
    request.insert("url".into(), json!(url));
    request.insert("httpVersion".into(), json!("HTTP/1.1"));
    request.insert(
        "cookies".into(),
        Value::Array(request_cookies(&exchange.request_headers, show)),
    );
    request.insert(
        "headers".into(),
        headers_json(&exchange.request_headers, show),
    );
    request.insert("queryString".into(), Value::Array(query_string(&url)));
    if let Some(body) = &exchange.request_body {
        let mime = request_content_type.unwrap_or("application/octet-stream");
        let (text, base64) = body_text(request_content_type, body, show);
        let mut post = Map::new();
        post.insert("mimeType".into(), json!(mime));
        post.insert("text".into(), json!(text));
        if base64 {
            // postData has no `encoding` in HAR 1.2; a custom field keeps viewers happy.
            post.insert("_encoding".into(), json!("base64"));
        }
        request.insert("postData".into(), Value::Object(post));
    }
    request.insert("headersSize".into(), json!(-1));
    request.insert(
        "bodySize".into(),
        json!(exchange.request_body.as_ref().map_or(0, Vec::len)),
    );

    let error = exchange.error.as_ref().map(|error| {
        if show {
            error.clone()
        } else {
            redact::text(error).into_owned()
        }
    });
    let response = match &exchange.response {
        Some(response) => response_json(response, show, error.as_deref()),
        None => failed_response(error.as_deref().unwrap_or("no response")),
    };

    let elapsed = millis(exchange.elapsed_ms);
    let mut entry = Map::new();
    entry.insert(
        "startedDateTime".into(),
        json!(iso_millis(exchange.started)),
    );
    entry.insert("time".into(), json!(elapsed));
    entry.insert("request".into(), Value::Object(request));
    entry.insert("response".into(), response);
    entry.insert("cache".into(), json!({}));
    entry.insert(
        "timings".into(),
        // lyncd measures one interval per request; HAR requires send/wait/receive, and -1
        // marks the phases not measured separately.
        json!({
            "blocked": -1, "dns": -1, "connect": -1, "ssl": -1,
            "send": 0, "wait": elapsed, "receive": 0,
        }),
    );
    if let Some(ip) = &exchange.server_ip {
        entry.insert("serverIPAddress".into(), json!(ip));
    }
    entry.insert("_step".into(), json!(exchange.step));
    if let Some(error) = &error {
        entry.insert("comment".into(), json!(format!("failed: {error}")));
    }
    Value::Object(entry)
}

fn response_json(response: &HttpResponseRecord, show: bool, error: Option<&str>) -> Value {
    let content_type = header_value(&response.headers, "content-type");
    let mut content = Map::new();
    content.insert("size".into(), json!(response.body.len()));
    content.insert(
        "mimeType".into(),
        json!(content_type.unwrap_or("x-unknown")),
    );
    if !response.body.is_empty() {
        let (text, base64) = body_text(content_type, &response.body, show);
        content.insert("text".into(), json!(text));
        if base64 {
            content.insert("encoding".into(), json!("base64"));
        }
    }
    let redirect = header_value(&response.headers, "location")
        .map(|location| {
            if show {
                location.to_string()
            } else {
                redact::text(location).into_owned()
            }
        })
        .unwrap_or_default();

    let mut out = Map::new();
    out.insert("status".into(), json!(response.status));
    out.insert("statusText".into(), json!(response.status_text));
    out.insert("httpVersion".into(), json!("HTTP/1.1"));
    out.insert(
        "cookies".into(),
        Value::Array(response_cookies(&response.headers, show)),
    );
    out.insert("headers".into(), headers_json(&response.headers, show));
    out.insert("content".into(), Value::Object(content));
    out.insert("redirectURL".into(), json!(redirect));
    out.insert("headersSize".into(), json!(-1));
    out.insert("bodySize".into(), json!(response.body.len()));
    if let Some(error) = error {
        out.insert("_error".into(), json!(error));
    }
    Value::Object(out)
}

/// No response at all: status 0 and an `_error`, as Chrome writes failed requests.
fn failed_response(error: &str) -> Value {
    json!({
        "status": 0,
        "statusText": "",
        "httpVersion": "",
        "cookies": [],
        "headers": [],
        "content": { "size": 0, "mimeType": "x-unknown" },
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": -1,
        "_error": error,
    })
}

fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn headers_json(headers: &[(String, String)], show: bool) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| {
                let value = if show {
                    value.clone()
                } else {
                    redact::header(name, value).into_owned()
                };
                json!({ "name": name, "value": value })
            })
            .collect(),
    )
}

/// A body as HAR text: redacted unless `show`, UTF-8 as is, anything else base64. Returns
/// `(text, is_base64)`.
fn body_text(content_type: Option<&str>, body: &[u8], show: bool) -> (String, bool) {
    let redacted = if show {
        std::borrow::Cow::Borrowed(body)
    } else {
        redact::body(content_type, body)
    };
    match std::str::from_utf8(&redacted) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (BASE64.encode(&redacted), true),
    }
}

fn cookie_value(value: &str, show: bool) -> String {
    if show || value.is_empty() {
        value.to_string()
    } else {
        redact::mask(value.as_bytes())
    }
}

fn request_cookies(headers: &[(String, String)], show: bool) -> Vec<Value> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some(json!({ "name": name.trim(), "value": cookie_value(value.trim(), show) }))
        })
        .collect()
}

fn response_cookies(headers: &[(String, String)], show: bool) -> Vec<Value> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| {
            let mut parts = value.split(';');
            let (name, cookie) = parts.next()?.split_once('=')?;
            let mut out = Map::new();
            out.insert("name".into(), json!(name.trim()));
            out.insert("value".into(), json!(cookie_value(cookie.trim(), show)));
            for attribute in parts {
                let (key, val) = match attribute.split_once('=') {
                    Some((key, val)) => (key.trim(), Some(val.trim())),
                    None => (attribute.trim(), None),
                };
                match (key.to_ascii_lowercase().as_str(), val) {
                    ("path", Some(val)) => {
                        out.insert("path".into(), json!(val));
                    }
                    ("domain", Some(val)) => {
                        out.insert("domain".into(), json!(val));
                    }
                    ("expires", Some(val)) => {
                        // HAR wants ISO 8601; keep the server's text when it is an HTTP date
                        // we can convert, else as sent.
                        let expires = crate::skew::parse_http_date(val)
                            .map(iso_millis)
                            .unwrap_or_else(|| val.to_string());
                        out.insert("expires".into(), json!(expires));
                    }
                    ("httponly", None) => {
                        out.insert("httpOnly".into(), json!(true));
                    }
                    ("secure", None) => {
                        out.insert("secure".into(), json!(true));
                    }
                    _ => {}
                }
            }
            Some(Value::Object(out))
        })
        .collect()
}

/// `queryString` from the URL: every `name=value` after `?` (up to `#`), percent-decoded.
fn query_string(url: &str) -> Vec<Value> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({
                "name": redact::percent_decode(name.as_bytes()),
                "value": redact::percent_decode(value.as_bytes()),
            })
        })
        .collect()
}

fn sip_record(record: &SipRecord, show: bool) -> Value {
    let message = if show {
        std::borrow::Cow::Borrowed(record.message.as_slice())
    } else {
        redact::sip_message(&record.message)
    };
    let mut out = Map::new();
    out.insert("step".into(), json!(record.step));
    out.insert("time".into(), json!(iso_millis(record.time)));
    out.insert("direction".into(), json!(record.direction));
    out.insert("peer".into(), json!(record.peer));
    match std::str::from_utf8(&message) {
        Ok(text) => {
            out.insert("message".into(), json!(text));
        }
        Err(_) => {
            out.insert("message".into(), json!(BASE64.encode(&message)));
            out.insert("encoding".into(), json!("base64"));
        }
    }
    Value::Object(out)
}

fn dns_record(record: &DnsRecord, show: bool) -> Value {
    let mut out = Map::new();
    out.insert("step".into(), json!(record.step));
    out.insert("time".into(), json!(iso_millis(record.time)));
    out.insert("name".into(), json!(record.name));
    out.insert("type".into(), json!(record.rtype));
    out.insert("answers".into(), json!(record.answers));
    if let Some(error) = &record.error {
        let error = if show {
            error.clone()
        } else {
            redact::text(error).into_owned()
        };
        out.insert("error".into(), json!(error));
    }
    out.insert("elapsed_ms".into(), json!(millis(record.elapsed_ms)));
    Value::Object(out)
}
