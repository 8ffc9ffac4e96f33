//! Outgoing messages.
//!
//! The builder writes wire bytes directly and records the same offsets the
//! parser would, so the [`Message`] it returns can be signed (its exact bytes
//! are what [`sign::buffer`](crate::sign::buffer) reads) and then sent as is.
//! It always writes what SIPE requires of a peer (sip.md §11): long header
//! names as given, a reason phrase, CRLF line ends and a `Content-Length`.

use bytes::{Bytes, BytesMut};

use crate::message::{HeaderSpan, Message, Span, StartSpans};
use crate::name_addr::NameAddr;
use crate::names;
use crate::syntax::{keep_token, strip_crlf, trim_ws};

/// Builds one request or response.
///
/// Values containing CR or LF are a programming error; they are stripped
/// rather than panicking, so that a bug cannot inject header lines.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: BytesMut,
    start: StartSpans,
    headers: Vec<HeaderSpan>,
    body: Option<(String, Bytes)>,
}

impl MessageBuilder {
    /// `METHOD uri SIP/2.0`. White space and other non-token characters are
    /// removed from the method, white space from the URI.
    pub fn request(method: &str, uri: &str) -> Self {
        let method = keep_token(method);
        let uri: String = uri.chars().filter(|c| !c.is_whitespace()).collect();
        let mut buf = BytesMut::with_capacity(512);
        buf.extend_from_slice(method.as_bytes());
        buf.extend_from_slice(b" ");
        let uri_start = buf.len();
        buf.extend_from_slice(uri.as_bytes());
        buf.extend_from_slice(b" SIP/2.0\r\n");
        MessageBuilder {
            start: StartSpans::Request {
                method: Span::new(0, method.len()),
                uri: Span::new(uri_start, uri_start + uri.len()),
            },
            buf,
            headers: Vec::with_capacity(16),
            body: None,
        }
    }

    /// `SIP/2.0 code reason`. An empty `reason` is replaced by
    /// [`reason_phrase`]`(code)`, because SIPE stalls on a status line without
    /// one (sip.md §11 item 1). `code` should be 100–699.
    pub fn response(code: u16, reason: &str) -> Self {
        let reason = strip_crlf(reason);
        let reason = match trim_ws(&reason) {
            "" => reason_phrase(code),
            r => r,
        };
        let code_text = format!("{code:03}");
        let mut buf = BytesMut::with_capacity(512);
        buf.extend_from_slice(b"SIP/2.0 ");
        let code_start = buf.len();
        buf.extend_from_slice(code_text.as_bytes());
        buf.extend_from_slice(b" ");
        let reason_start = buf.len();
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(b"\r\n");
        MessageBuilder {
            start: StartSpans::Response {
                code,
                code_text: Span::new(code_start, code_start + code_text.len()),
                reason: Span::new(reason_start, reason_start + reason.len()),
            },
            buf,
            headers: Vec::with_capacity(16),
            body: None,
        }
    }

    /// Appends `name: value`. Several headers with one name are kept as
    /// separate lines in order (SIPE matches `Supported` per line). A
    /// `Content-Length` given here is ignored: [`build`](Self::build) writes
    /// the real one.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.add_header(name, value);
        self
    }

    /// [`header`](Self::header) for use through `&mut`, e.g. in loops.
    pub fn add_header(&mut self, name: &str, value: &str) -> &mut Self {
        let name = keep_token(name);
        if name.is_empty()
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("l")
        {
            return self;
        }
        let value = strip_crlf(value);
        self.push_line(&name, trim_ws(&value));
        self
    }

    fn push_line(&mut self, name: &str, value: &str) {
        let name_start = self.buf.len();
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        let value_start = self.buf.len();
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.headers.push(HeaderSpan {
            name: Span::new(name_start, name_start + name.len()),
            value: Span::new(value_start, value_start + value.len()),
            id: names::header_id(name.as_bytes()),
        });
    }

    /// Sets the body; `Content-Type` is written just before `Content-Length`
    /// (omitted when `content_type` is empty). A second call replaces the first.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some((strip_crlf(content_type).into_owned(), body.into()));
        self
    }

    /// Finishes the message: Content-Type (with a body), `Content-Length`
    /// (always, as the last header), the blank line and the body.
    pub fn build(mut self) -> Message {
        let body = match self.body.take() {
            Some((content_type, body)) => {
                let content_type = trim_ws(&content_type);
                if !content_type.is_empty() {
                    self.push_line("Content-Type", content_type);
                }
                body
            }
            None => Bytes::new(),
        };
        self.push_line("Content-Length", &body.len().to_string());
        self.buf.extend_from_slice(b"\r\n");
        let body_start = self.buf.len();
        self.buf.extend_from_slice(&body);
        Message::from_parts(self.buf.freeze(), self.start, self.headers, body_start)
    }
}

/// Starts a response to `request` (RFC 3261 8.2.6.2): every `Via` in order,
/// `From`, `To`, `Call-ID` and `CSeq` with their values exactly as received
/// (SIPE matches transactions on Call-ID and CSeq only, sip.md §11 item 4).
/// When `to_tag` is given and the request's `To` has no tag, `;tag=<to_tag>`
/// is appended. Headers are written under their long names, since SIPE does
/// not know compact forms.
pub fn response_to(
    request: &Message,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> MessageBuilder {
    let mut b = MessageBuilder::response(code, reason);
    for via in request.header_all("Via") {
        b.add_header("Via", via);
    }
    if let Some(from) = request.header("From") {
        b.add_header("From", from);
    }
    if let Some(to) = request.header("To") {
        match to_tag {
            Some(tag) if NameAddr::parse(to).is_ok_and(|a| a.tag().is_none()) => {
                b.add_header("To", &format!("{to};tag={tag}"));
            }
            _ => {
                b.add_header("To", to);
            }
        }
    }
    if let Some(call_id) = request.header("Call-ID") {
        b.add_header("Call-ID", call_id);
    }
    if let Some(cseq) = request.header("CSeq") {
        b.add_header("CSeq", cseq);
    }
    b
}

/// The RFC 3261 (and RFC 3265 / RFC 6665) reason phrase for `code`, with a
/// class-generic fallback, so that no status line goes out without one.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_round_trips_through_the_parser() {
        let m = MessageBuilder::request("SUBSCRIBE", "sip:alice@contoso.com")
            .header("Call-ID", "abc")
            .header("Content-Length", "99")
            .header("Supported", "gruu-10")
            .header("Supported", "adhoclist")
            .body("application/xml", &b"<x/>"[..])
            .build();
        let expected = "SUBSCRIBE sip:alice@contoso.com SIP/2.0\r\nCall-ID: abc\r\nSupported: gruu-10\r\n\
                        Supported: adhoclist\r\nContent-Type: application/xml\r\nContent-Length: 4\r\n\r\n<x/>";
        assert_eq!(std::str::from_utf8(m.as_bytes()).unwrap(), expected);
        assert_eq!(
            m.header_all("supported").collect::<Vec<_>>(),
            ["gruu-10", "adhoclist"]
        );
        let p = Message::parse(m.to_bytes()).unwrap();
        assert_eq!(
            p.headers().collect::<Vec<_>>(),
            m.headers().collect::<Vec<_>>()
        );
        assert_eq!(p.body(), b"<x/>");
    }

    #[test]
    fn injection_is_stripped() {
        let m = MessageBuilder::response(200, "OK\r\nX: 1")
            .header("X-A\r\nEvil", "v\r\nEvil: 1")
            .build();
        assert_eq!(
            m.as_bytes(),
            b"SIP/2.0 200 OKX: 1\r\nX-AEvil: vEvil: 1\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(Message::parse(m.to_bytes()).is_ok());
    }

    #[test]
    fn empty_reason_gets_default() {
        let m = MessageBuilder::response(401, "").build();
        assert_eq!(m.reason(), Some("Unauthorized"));
        assert_eq!(m.status(), Some(401));
        assert_eq!(m.status_text(), Some("401"));
    }
}
