//! One SIP message: the received bytes plus offsets of the start line, the
//! headers and the body.
//!
//! The parse is strict where framing is concerned (exactly one `Content-Length`,
//! digits only, body length equal to it) because a lenient framer lets a peer
//! smuggle a second message past whatever inspected the first. It is lenient
//! where Microsoft peers differ from RFC 3261 text (header order, Authorization
//! after Content-Length, missing reason phrase).

use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memmem};

use crate::name_addr::NameAddr;
use crate::names;
use crate::syntax::{is_token, is_token_byte, keep_token, split_top_level, strip_crlf, trim_ws};

/// Size limits applied while parsing, so that a peer cannot make us buffer or
/// index without bound. Exceeding one is answered with 513 (see [`ParseError::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Start line + headers + the blank line. 64 KiB is far above any real
    /// Lync message (the largest, a TLS-DSK leg with a certificate, is ~3 KiB).
    pub max_header_bytes: usize,
    /// Declared `Content-Length`. Roaming and provisioning NOTIFY bodies stay
    /// well under 256 KiB.
    pub max_body_bytes: usize,
    /// Number of header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_body_bytes: 256 * 1024,
            max_headers: 256,
        }
    }
}

/// Why bytes are not a SIP message. Every variant is the peer's fault; the
/// caller answers with [`ParseError::status`] if it still can, and on a stream
/// closes the connection, because framing can no longer be trusted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty input: no start line, only line breaks or nothing")]
    Empty,
    #[error("bad start line: {0}")]
    BadStartLine(&'static str),
    #[error("bad header line {line}: {reason}")]
    BadHeaderLine { line: usize, reason: &'static str },
    #[error("header line {line} starts with white space (obsolete line folding is not accepted)")]
    FoldedHeader { line: usize },
    #[error("header line {line} is not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error("the header block ends before the blank line that must close it")]
    IncompleteHeaders,
    #[error("header block larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error(
        "Content-Length is missing but the message has bytes after the header block, or arrived on a stream"
    )]
    MissingContentLength,
    #[error("more than one Content-Length header")]
    DuplicateContentLength,
    #[error("Content-Length {0:?} is not a decimal number")]
    BadContentLength(String),
    #[error("declared body of {declared} bytes is larger than the {limit}-byte limit")]
    BodyTooLarge { declared: u64, limit: usize },
    #[error("Content-Length says {declared} bytes but {actual} bytes follow the header block")]
    BodyLengthMismatch { declared: usize, actual: usize },
}

impl ParseError {
    /// The SIP status to answer with (RFC 3261 21.4.1 / 21.5.12 / 21.4.23).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::HeadersTooLarge { .. }
            | ParseError::TooManyHeaders { .. }
            | ParseError::BodyTooLarge { .. } => (513, "Message Too Large"),
            _ => (400, "Bad Request"),
        }
    }
}

/// A header needed for a typed accessor is absent or malformed. Carries the
/// header name so the 400 reason or log line can say which one.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FieldError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Invalid(&'static str),
}

/// The first line of a message, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a str, uri: &'a str },
    Response { code: u16, reason: &'a str },
}

/// A parsed `CSeq` value. `number_raw` is kept because the signature buffer
/// takes the digits exactly as sent (leading zeros included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub number: u32,
    pub number_raw: &'a str,
    pub method: &'a str,
}

/// Byte range `start..end` into the message buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
    /// [`names::header_id`] of the name.
    pub(crate) id: u8,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum StartSpans {
    Request {
        method: Span,
        uri: Span,
    },
    Response {
        code: u16,
        code_text: Span,
        reason: Span,
    },
}

/// The parsed header block of a message whose body may not have arrived yet
/// (the [`Decoder`](crate::Decoder) keeps one between calls).
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) start: StartSpans,
    pub(crate) headers: Vec<HeaderSpan>,
    /// Length of the header block including the closing CRLFCRLF.
    pub(crate) len: usize,
    pub(crate) content_length: Option<usize>,
}

const CRLFCRLF: &[u8] = b"\r\n\r\n";

/// A complete SIP message.
///
/// All accessors borrow from the one buffer; header values are returned as
/// sent, with only the surrounding white space trimmed.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    start: StartSpans,
    headers: Arc<[HeaderSpan]>,
    body_start: usize,
}

impl Message {
    /// Parses exactly one complete message with the default [`Limits`].
    ///
    /// Leading CRLFs (keep-alives) are skipped. The body must be exactly
    /// `Content-Length` bytes; without a `Content-Length`, nothing may follow
    /// the blank line (a datagram-style message with an empty body).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        Self::parse_with(buf, &Limits::default())
    }

    /// [`Message::parse`] with caller-chosen limits.
    pub fn parse_with(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        let skip = leading_line_breaks(&buf);
        if skip == buf.len() {
            return Err(ParseError::Empty);
        }
        let buf = buf.slice(skip..);
        let head = parse_head(&buf, limits)?.ok_or(ParseError::IncompleteHeaders)?;
        let actual = buf.len() - head.len;
        match head.content_length {
            Some(declared) if declared != actual => {
                return Err(ParseError::BodyLengthMismatch { declared, actual });
            }
            None if actual != 0 => return Err(ParseError::MissingContentLength),
            _ => {}
        }
        Ok(Message::from_head(buf, head))
    }

    /// Wraps a buffer whose header block `head` has already been parsed and
    /// whose length has been checked against `Content-Length`.
    pub(crate) fn from_head(buf: Bytes, head: Head) -> Message {
        Message {
            buf,
            start: head.start,
            headers: head.headers.into(),
            body_start: head.len,
        }
    }

    /// Used by the builder, which writes the bytes and the offsets together.
    pub(crate) fn from_parts(
        buf: Bytes,
        start: StartSpans,
        headers: Vec<HeaderSpan>,
        body_start: usize,
    ) -> Message {
        Message {
            buf,
            start,
            headers: headers.into(),
            body_start,
        }
    }

    /// Text of a span. Every span ends on an ASCII delimiter inside a header
    /// block that was checked to be UTF-8 when the message was made, so the
    /// conversion cannot fail; the fallback only avoids a panic path.
    fn text(&self, span: Span) -> &str {
        self.buf
            .get(span.start..span.end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn name_bytes(&self, span: Span) -> &[u8] {
        self.buf.get(span.start..span.end).unwrap_or(&[])
    }

    pub fn start(&self) -> StartLine<'_> {
        match self.start {
            StartSpans::Request { method, uri } => StartLine::Request {
                method: self.text(method),
                uri: self.text(uri),
            },
            StartSpans::Response { code, reason, .. } => StartLine::Response {
                code,
                reason: self.text(reason),
            },
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartSpans::Request { .. })
    }

    pub fn method(&self) -> Option<&str> {
        match self.start {
            StartSpans::Request { method, .. } => Some(self.text(method)),
            StartSpans::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            StartSpans::Request { uri, .. } => Some(self.text(uri)),
            StartSpans::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartSpans::Response { code, .. } => Some(code),
            StartSpans::Request { .. } => None,
        }
    }

    /// The three status digits exactly as sent (signature field 16).
    pub fn status_text(&self) -> Option<&str> {
        match self.start {
            StartSpans::Response { code_text, .. } => Some(self.text(code_text)),
            StartSpans::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self.start {
            StartSpans::Response { reason, .. } => Some(self.text(reason)),
            StartSpans::Request { .. } => None,
        }
    }

    /// All headers in wire order: (name as sent, value trimmed).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|h| (self.text(h.name), self.text(h.value)))
    }

    /// First header called `name` (case-insensitive; compact forms match
    /// their long names in both directions).
    pub fn header(&self, name: &str) -> Option<&str> {
        let query = NameQuery::new(name);
        self.headers
            .iter()
            .find(|h| query.matches(h, self))
            .map(|h| self.text(h.value))
    }

    /// Every header called `name`, in wire order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let query = NameQuery::new(name);
        self.headers
            .iter()
            .filter(move |h| query.matches(h, self))
            .map(|h| self.text(h.value))
    }

    /// First header with a well-known id: what the typed accessors and the
    /// signature buffer use, skipping the name classification of a query.
    pub(crate) fn header_by_id(&self, id: u8) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.id == id)
            .map(|h| self.text(h.value))
    }

    pub(crate) fn header_all_by_id(&self, id: u8) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.id == id)
            .map(|h| self.text(h.value))
    }

    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body_start..).unwrap_or(&[])
    }

    /// The whole message as it is (or will be) on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The underlying buffer, for writing to a socket without a copy.
    pub fn to_bytes(&self) -> Bytes {
        self.buf.clone()
    }

    pub fn call_id(&self) -> Result<&str, FieldError> {
        let v = self
            .header_by_id(names::CALL_ID)
            .ok_or(FieldError::Missing("Call-ID"))?;
        if v.is_empty() || v.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(FieldError::Invalid("Call-ID"));
        }
        Ok(v)
    }

    pub fn cseq(&self) -> Result<CSeq<'_>, FieldError> {
        let v = self
            .header_by_id(names::CSEQ)
            .ok_or(FieldError::Missing("CSeq"))?;
        parse_cseq(v).ok_or(FieldError::Invalid("CSeq"))
    }

    pub fn from_addr(&self) -> Result<NameAddr<'_>, FieldError> {
        let v = self
            .header_by_id(names::FROM)
            .ok_or(FieldError::Missing("From"))?;
        NameAddr::parse(v).map_err(|_| FieldError::Invalid("From"))
    }

    pub fn to_addr(&self) -> Result<NameAddr<'_>, FieldError> {
        let v = self
            .header_by_id(names::TO)
            .ok_or(FieldError::Missing("To"))?;
        NameAddr::parse(v).map_err(|_| FieldError::Invalid("To"))
    }

    /// The first contact of the first `Contact` header; `None` when there is
    /// no Contact or it does not parse.
    pub fn contact(&self) -> Option<NameAddr<'_>> {
        self.contacts().next().and_then(Result::ok)
    }

    /// Every contact of every `Contact` header (a header may list several,
    /// separated by commas outside quotes and angle brackets).
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, FieldError>> {
        self.header_all_by_id(names::CONTACT).flat_map(|v| {
            split_top_level(v, b',').map(|one| {
                NameAddr::parse(trim_ws(one)).map_err(|_| FieldError::Invalid("Contact"))
            })
        })
    }

    /// The `Expires` header as delta-seconds; `None` when absent.
    pub fn expires(&self) -> Option<Result<u32, FieldError>> {
        self.header_by_id(names::EXPIRES)
            .map(|v| parse_u32_digits(v).ok_or(FieldError::Invalid("Expires")))
    }

    /// The same message with `name: value` appended after the last header.
    ///
    /// Used to add `Authorization` / `Authentication-Info` after the signature
    /// has been computed over the rest. Body and `Content-Length` are
    /// untouched. CR and LF in the arguments are dropped (and non-token
    /// characters in the name), so a caller bug cannot inject a header line.
    pub fn with_header(&self, name: &str, value: &str) -> Message {
        let name = keep_token(name);
        let value = strip_crlf(value);
        let value = trim_ws(&value);
        // The header block ends with "\r\n\r\n"; the new line goes before its
        // final "\r\n".
        let insert_at = self.body_start.saturating_sub(2);
        let head = self.buf.get(..insert_at).unwrap_or(&[]);
        let tail = self.buf.get(insert_at..).unwrap_or(&[]);
        let line_len = name.len() + 2 + value.len() + 2;
        let mut out = BytesMut::with_capacity(self.buf.len() + line_len);
        out.extend_from_slice(head);
        let name_span = Span::new(out.len(), out.len() + name.len());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let value_span = Span::new(out.len(), out.len() + value.len());
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(tail);
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        headers.extend_from_slice(&self.headers);
        headers.push(HeaderSpan {
            name: name_span,
            value: value_span,
            id: names::header_id(name.as_bytes()),
        });
        Message {
            buf: out.freeze(),
            start: self.start,
            headers: headers.into(),
            body_start: self.body_start + line_len,
        }
    }
}

/// `<digits> SP <method>`; the number must fit 31 bits per RFC 3261 8.1.1.5,
/// but we accept any u32.
fn parse_cseq(v: &str) -> Option<CSeq<'_>> {
    let (num, rest) = v.split_once([' ', '\t'])?;
    let method = trim_ws(rest);
    if !is_token(method) {
        return None;
    }
    Some(CSeq {
        number: parse_u32_digits(num)?,
        number_raw: num,
        method,
    })
}

/// Digits only (no sign, no white space), overflow rejected.
pub(crate) fn parse_u32_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A header-name query: a well-known name (long or compact) matches by id,
/// any other name by case-insensitive text.
struct NameQuery<'a> {
    name: &'a [u8],
    id: u8,
}

impl<'a> NameQuery<'a> {
    fn new(name: &'a str) -> Self {
        let name = name.as_bytes();
        NameQuery {
            name,
            id: names::header_id(name),
        }
    }

    fn matches(&self, h: &HeaderSpan, msg: &Message) -> bool {
        if self.id != names::OTHER {
            h.id == self.id
        } else {
            // Equal text ignoring case always has the same id, so only
            // unclassified headers can match an unclassified query.
            h.id == names::OTHER && msg.name_bytes(h.name).eq_ignore_ascii_case(self.name)
        }
    }
}

/// Number of CR/LF bytes at the front: keep-alives and the CRLF some stacks
/// send between messages (RFC 3261 7.5: ignore CRLF before the start line).
pub(crate) fn leading_line_breaks(buf: &[u8]) -> usize {
    buf.iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len())
}

/// Finds the end of the header block within the limit.
///
/// `Ok(None)` = the block is not complete yet and may still fit the limit.
pub(crate) fn find_head_end(
    buf: &[u8],
    from: usize,
    limits: &Limits,
) -> Result<Option<usize>, ParseError> {
    let window = buf.len().min(limits.max_header_bytes);
    let from = from.min(window);
    // Built once: constructing a searcher per call showed up in profiles.
    static FINDER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(CRLFCRLF));
    match FINDER.find(&buf[from..window]) {
        Some(i) => Ok(Some(from + i + CRLFCRLF.len())),
        None if buf.len() >= limits.max_header_bytes => Err(ParseError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        }),
        None => Ok(None),
    }
}

/// Parses the header block at the start of `buf` (which must not begin with
/// CR/LF). `Ok(None)` when the block has not ended yet.
pub(crate) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, ParseError> {
    match find_head_end(buf, 0, limits)? {
        Some(len) => parse_head_complete(buf, len, limits).map(Some),
        None => Ok(None),
    }
}

/// Parses a header block known to be `buf[..len]`, ending with CRLFCRLF.
pub(crate) fn parse_head_complete(
    buf: &[u8],
    len: usize,
    limits: &Limits,
) -> Result<Head, ParseError> {
    // Everything up to (not including) the final CRLF of the last line.
    let block = buf
        .get(..len.saturating_sub(2))
        .ok_or(ParseError::IncompleteHeaders)?;
    let text = std::str::from_utf8(&block[..block.len().saturating_sub(2)]).map_err(|e| {
        ParseError::NotUtf8 {
            line: 1 + memchr::memchr_iter(b'\n', &block[..e.valid_up_to()]).count(),
        }
    })?;

    let mut lines = Lines { text, pos: 0 };
    let (first_start, first) = lines
        .next_line(1)
        .map_err(|e| match e {
            ParseError::BadHeaderLine { reason, .. } => ParseError::BadStartLine(reason),
            e => e,
        })?
        .ok_or(ParseError::Empty)?;
    let start = parse_start_line(first, first_start)?;

    let mut headers = Vec::with_capacity(24);
    let mut content_length = None;
    let mut line_no = 1;
    while let Some((at, line)) = lines.next_line(line_no + 1)? {
        line_no += 1;
        if headers.len() == limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let h = parse_header_line(line, at, line_no)?;
        if h.id == names::CONTENT_LENGTH {
            if content_length.is_some() {
                return Err(ParseError::DuplicateContentLength);
            }
            content_length = Some(parse_content_length(
                &text[h.value.start..h.value.end],
                limits,
            )?);
        }
        headers.push(h);
    }
    Ok(Head {
        start,
        headers,
        len,
        content_length,
    })
}

/// CRLF-terminated lines of a header block whose final CRLF has been cut off.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    /// Next line and its offset, after checking it has no stray CR, LF or
    /// other control characters (a bare CR or LF is how some parsers are
    /// tricked into seeing a different header set than others).
    fn next_line(&mut self, line_no: usize) -> Result<Option<(usize, &'a str)>, ParseError> {
        if self.pos > self.text.len() {
            return Ok(None);
        }
        let rest = &self.text[self.pos..];
        let at = self.pos;
        let line = match memchr(b'\n', rest.as_bytes()) {
            Some(nl) => {
                let Some(line) = rest[..nl].strip_suffix('\r') else {
                    return Err(ParseError::BadHeaderLine {
                        line: line_no,
                        reason: "line feed without carriage return",
                    });
                };
                self.pos += nl + 1;
                line
            }
            None => {
                self.pos = self.text.len() + 1;
                rest
            }
        };
        if has_ctl(line.as_bytes()) {
            return Err(ParseError::BadHeaderLine {
                line: line_no,
                reason: "control character in line",
            });
        }
        Ok(Some((at, line)))
    }
}

/// Any CTL other than horizontal tab. Written as a fold so it compiles to a
/// branch-free loop; lines are short and almost always clean.
fn has_ctl(line: &[u8]) -> bool {
    line.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20 && b != b'\t') || b == 0x7f)
    })
}

fn parse_header_line(line: &str, at: usize, line_no: usize) -> Result<HeaderSpan, ParseError> {
    if line.starts_with([' ', '\t']) {
        return Err(ParseError::FoldedHeader { line: line_no });
    }
    let colon = memchr(b':', line.as_bytes()).ok_or(ParseError::BadHeaderLine {
        line: line_no,
        reason: "no colon",
    })?;
    // RFC 3261 HCOLON allows white space before the colon.
    let name = line[..colon].trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ParseError::BadHeaderLine {
            line: line_no,
            reason: "header name is empty or not a token",
        });
    }
    let raw_value = &line[colon + 1..];
    let value = trim_ws(raw_value);
    let lead = raw_value.len() - raw_value.trim_start_matches([' ', '\t']).len();
    let value_start = at + colon + 1 + lead;
    Ok(HeaderSpan {
        name: Span::new(at, at + name.len()),
        value: Span::new(value_start, value_start + value.len()),
        id: names::header_id(name.as_bytes()),
    })
}

fn parse_content_length(v: &str, limits: &Limits) -> Result<usize, ParseError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        let shown: String = v.chars().take(32).collect();
        return Err(ParseError::BadContentLength(shown));
    }
    // Saturate instead of failing on overflow: a 30-digit length is still a
    // well-formed number, just too large, and deserves 513 rather than 400.
    let declared = v.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    match usize::try_from(declared) {
        Ok(n) if n <= limits.max_body_bytes => Ok(n),
        _ => Err(ParseError::BodyTooLarge {
            declared,
            limit: limits.max_body_bytes,
        }),
    }
}

/// `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Code SP Reason`.
///
/// A response without a reason phrase (`SIP/2.0 200`) is accepted: RFC 3261
/// allows an empty phrase, only SIPE insists on one when *it* reads, and
/// [`MessageBuilder`](crate::MessageBuilder) always writes one.
pub(crate) fn parse_start_line(line: &str, at: usize) -> Result<StartSpans, ParseError> {
    const VERSION: &str = "SIP/2.0";
    let is_version = |s: &str| s.eq_ignore_ascii_case(VERSION);
    let status_rest = line
        .get(..VERSION.len() + 1)
        // Compare bytes: byte 7 of a valid 8-byte prefix need not be a char boundary.
        .filter(|p| {
            p.as_bytes()[..VERSION.len()].eq_ignore_ascii_case(VERSION.as_bytes())
                && p.ends_with(' ')
        })
        .and_then(|_| line.get(VERSION.len() + 1..));
    if let Some(rest) = status_rest {
        let (code_text, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code_text.len() != 3 || !code_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStartLine("status code is not three digits"));
        }
        let code: u16 = code_text
            .parse()
            .map_err(|_| ParseError::BadStartLine("status code is not three digits"))?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine("status code outside 100-699"));
        }
        let code_start = at + VERSION.len() + 1;
        // Skip the space after the code when there is one.
        let reason_start = code_start + 3 + usize::from(rest.len() > 3);
        return Ok(StartSpans::Response {
            code,
            code_text: Span::new(code_start, code_start + 3),
            reason: Span::new(reason_start, reason_start + reason.len()),
        });
    }
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("");
    let uri = parts.next().ok_or(ParseError::BadStartLine(
        "neither a request line nor a status line",
    ))?;
    let version = parts
        .next()
        .ok_or(ParseError::BadStartLine("request line has no SIP version"))?;
    if !is_token(method) {
        return Err(ParseError::BadStartLine("method is not a token"));
    }
    if uri.is_empty() || uri.contains('\t') {
        return Err(ParseError::BadStartLine("empty or malformed Request-URI"));
    }
    if !is_version(version) {
        return Err(ParseError::BadStartLine("version is not SIP/2.0"));
    }
    let uri_start = at + method.len() + 1;
    Ok(StartSpans::Request {
        method: Span::new(at, at + method.len()),
        uri: Span::new(uri_start, uri_start + uri.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Result<Message, ParseError> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn request_accessors() {
        let m =
            msg("OPTIONS sip:a@b SIP/2.0\r\ni: abc\r\nCSeq: 007 OPTIONS\r\nl: 0\r\n\r\n").unwrap();
        assert_eq!(m.method(), Some("OPTIONS"));
        assert_eq!(m.request_uri(), Some("sip:a@b"));
        assert_eq!(m.call_id(), Ok("abc"));
        assert_eq!(m.header("Content-Length"), Some("0"));
        let c = m.cseq().unwrap();
        assert_eq!((c.number, c.number_raw, c.method), (7, "007", "OPTIONS"));
        assert_eq!(m.status(), None);
        assert!(m.is_request());
    }

    #[test]
    fn response_reason_spans() {
        let m = msg("SIP/2.0 200 OK fine\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(
            m.start(),
            StartLine::Response {
                code: 200,
                reason: "OK fine"
            }
        );
        assert_eq!(m.status_text(), Some("200"));
        let m = msg("SIP/2.0 200\r\n\r\n").unwrap();
        assert_eq!(m.reason(), Some(""));
        let m = msg("SIP/2.0 200 \r\n\r\n").unwrap();
        assert_eq!(m.reason(), Some(""));
    }

    #[test]
    fn white_space_before_colon_and_empty_value() {
        let m = msg("SIP/2.0 100 Trying\r\nX-A  :  v  \r\nX-B:\r\n\r\n").unwrap();
        let hs: Vec<_> = m.headers().collect();
        assert_eq!(hs, [("X-A", "v"), ("X-B", "")]);
    }

    #[test]
    fn with_header_appends_last() {
        let m = msg("SIP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        let m2 = m.with_header("Authentication-Info", "TLS-DSK x=\"1\"\r\nEvil: 1");
        assert_eq!(
            m2.as_bytes(),
            b"SIP/2.0 200 OK\r\nContent-Length: 2\r\nAuthentication-Info: TLS-DSK x=\"1\"Evil: 1\r\n\r\nhi"
        );
        assert_eq!(m2.body(), b"hi");
        assert_eq!(
            m2.header("authentication-info"),
            Some("TLS-DSK x=\"1\"Evil: 1")
        );
        let again = Message::parse(m2.to_bytes()).unwrap();
        assert_eq!(again.headers().count(), 2);
    }

    #[test]
    fn cseq_and_expires_errors() {
        let m = msg("SIP/2.0 200 OK\r\nCSeq: x REGISTER\r\nExpires: -1\r\n\r\n").unwrap();
        assert_eq!(m.cseq(), Err(FieldError::Invalid("CSeq")));
        assert_eq!(m.expires(), Some(Err(FieldError::Invalid("Expires"))));
        assert_eq!(m.call_id(), Err(FieldError::Missing("Call-ID")));
        let m = msg("SIP/2.0 200 OK\r\nExpires: 7200\r\n\r\n").unwrap();
        assert_eq!(m.expires(), Some(Ok(7200)));
    }
}
