//! Stream framing for SIP over TCP/TLS (RFC 3261 18.3).
//!
//! On a stream the only message boundary is `Content-Length`, so it is
//! mandatory, and any framing error ends the connection: after one, we can no
//! longer know where the next message starts.

use bytes::{Buf, BytesMut};
use memchr::memchr;

use crate::message::{
    Head, Limits, Message, ParseError, find_head_end, leading_line_breaks, parse_head_complete,
    parse_start_line,
};

/// What [`Decoder::decode`] took off the front of the buffer.
#[derive(Clone, Debug)]
pub enum Frame {
    /// A run of bare CR/LF between messages: the RFC 5626 / MS-CONMGMT
    /// `CRLFCRLF` keep-alive ping (the caller may answer with a CRLF pong).
    KeepAlive,
    Message(Message),
}

/// Incremental framer. Keep one per connection and always pass it the same
/// buffer, appending received bytes at the end: between calls it remembers
/// how far it has scanned and the parsed header block of a message whose body
/// is still arriving, so feeding one byte at a time stays linear.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Bytes at the front of the buffer already searched for CRLFCRLF.
    scanned: usize,
    /// The first line has been checked to be a start line.
    start_checked: bool,
    /// Header block parsed, waiting for the body.
    pending: Option<Head>,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            scanned: 0,
            start_checked: false,
            pending: None,
        }
    }

    /// Takes the next frame off the front of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed. An error is final for the stream
    /// (answer with [`ParseError::status`] if possible, then close).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.start_checked = false;
        self.pending = None;
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        if self.pending.is_none() {
            if self.scanned == 0 {
                let breaks = leading_line_breaks(buf);
                if breaks > 0 {
                    buf.advance(breaks);
                    return Ok(Some(Frame::KeepAlive));
                }
            }
            if buf.is_empty() {
                return Ok(None);
            }
            // Reject garbage as soon as its first line is complete rather
            // than buffering up to the header limit first.
            // Bytes before `scanned` hold no line feed yet (else the line
            // would have been checked), so only the new ones are searched.
            let unseen = self.scanned.min(buf.len());
            if !self.start_checked
                && let Some(nl) = memchr(b'\n', &buf[unseen..]).map(|i| unseen + i)
            {
                let line = buf[..nl]
                    .strip_suffix(b"\r")
                    .ok_or(ParseError::BadStartLine(
                        "line feed without carriage return",
                    ))?;
                let line = std::str::from_utf8(line)
                    .map_err(|_| ParseError::BadStartLine("start line is not UTF-8"))?;
                parse_start_line(line, 0)?;
                self.start_checked = true;
            }
            // A CRLFCRLF may straddle the previous scan's end.
            let from = self.scanned.saturating_sub(3);
            let Some(head_len) = find_head_end(buf, from, &self.limits)? else {
                self.scanned = buf.len();
                return Ok(None);
            };
            let head = parse_head_complete(buf, head_len, &self.limits)?;
            if head.content_length.is_none() {
                return Err(ParseError::MissingContentLength);
            }
            self.pending = Some(head);
        }
        let Some(head) = &self.pending else {
            return Ok(None);
        };
        let total = head.len + head.content_length.unwrap_or(0);
        if buf.len() < total {
            return Ok(None);
        }
        let bytes = buf.split_to(total).freeze();
        let head = self.pending.take();
        self.reset();
        Ok(head.map(|head| Frame::Message(Message::from_head(bytes, head))))
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}
