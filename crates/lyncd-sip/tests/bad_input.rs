//! Hostile and broken input: every case must give a clear error (or wait, on a
//! stream), never a panic and never a mis-framed message.

use bytes::{Bytes, BytesMut};
use lyncd_sip::{Decoder, Frame, Limits, Message, ParseError};

const OPTIONS: &str = "OPTIONS sip:lyncfe.contoso.com SIP/2.0\r\nCall-ID: k1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

fn parse(s: &str) -> Result<Message, ParseError> {
    Message::parse(Bytes::copy_from_slice(s.as_bytes()))
}

/// Feeds the whole input at once and returns the first non-keep-alive result.
fn decode(s: &[u8]) -> Result<Option<Frame>, ParseError> {
    decode_with(s, Limits::default())
}

fn decode_with(s: &[u8], limits: Limits) -> Result<Option<Frame>, ParseError> {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::from(s);
    loop {
        match dec.decode(&mut buf)? {
            Some(Frame::KeepAlive) => continue,
            other => return Ok(other),
        }
    }
}

fn with_headers(extra: &str, body: &str) -> String {
    format!("MESSAGE sip:bob@contoso.com SIP/2.0\r\nCall-ID: k2\r\n{extra}\r\n{body}")
}

#[test]
fn garbage() {
    for g in [
        "hello world\r\n\r\n",
        "\u{1}\u{2}\u{3}\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "SIP/2.0 99 Low\r\n\r\n",
        "SIP/2.0 abc OK\r\n\r\n",
        "INVITE  SIP/2.0\r\n\r\n",
        "REGISTER sip:x SIP/3.0\r\n\r\n",
    ] {
        let err = parse(g).expect_err(g);
        assert!(matches!(err, ParseError::BadStartLine(_)), "{g:?}: {err:?}");
        assert_eq!(err.status(), (400, "Bad Request"));
        assert!(
            matches!(decode(g.as_bytes()), Err(ParseError::BadStartLine(_))),
            "{g:?}"
        );
    }
    assert_eq!(parse("").map(|_| ()), Err(ParseError::Empty));
    assert_eq!(parse("\r\n\r\n").map(|_| ()), Err(ParseError::Empty));
    // Binary junk: not UTF-8.
    let junk = Bytes::from_static(b"REGISTER sip:x SIP/2.0\r\nX: \xff\xfe\r\n\r\n");
    assert_eq!(
        Message::parse(junk).map(|_| ()),
        Err(ParseError::NotUtf8 { line: 2 })
    );
}

#[test]
fn garbage_first_line_is_rejected_by_the_decoder_before_the_header_block_ends() {
    // No blank line yet: the decoder must not wait for 64 KiB of junk.
    assert!(matches!(
        decode(b"\x16\x03\x01\x00\xa5\r\nmore"),
        Err(ParseError::BadStartLine(_))
    ));
    assert!(matches!(
        decode(b"hello there\r\n"),
        Err(ParseError::BadStartLine(_))
    ));
    // A valid first line alone waits.
    assert!(matches!(decode(b"REGISTER sip:x SIP/2.0\r\n"), Ok(None)));
}

#[test]
fn truncated_header_block() {
    let cut = &OPTIONS[..OPTIONS.len() - 2];
    assert_eq!(parse(cut).map(|_| ()), Err(ParseError::IncompleteHeaders));
    assert!(matches!(decode(cut.as_bytes()), Ok(None)));
    let cut = "OPTIONS sip:x SIP/2.0\r\nCall-ID: k1";
    assert_eq!(parse(cut).map(|_| ()), Err(ParseError::IncompleteHeaders));
    assert!(matches!(decode(cut.as_bytes()), Ok(None)));
}

#[test]
fn truncated_body() {
    let m = with_headers("Content-Length: 10\r\n", "hello");
    assert_eq!(
        parse(&m).map(|_| ()),
        Err(ParseError::BodyLengthMismatch {
            declared: 10,
            actual: 5
        })
    );
    // The decoder waits for the remaining five bytes, then delivers.
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(m.as_bytes());
    assert!(matches!(dec.decode(&mut buf), Ok(None)));
    buf.extend_from_slice(b"world");
    match dec.decode(&mut buf) {
        Ok(Some(Frame::Message(msg))) => assert_eq!(msg.body(), b"helloworld"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn content_length_shorter_than_body() {
    let m = with_headers("Content-Length: 3\r\n", "hello");
    assert_eq!(
        parse(&m).map(|_| ()),
        Err(ParseError::BodyLengthMismatch {
            declared: 3,
            actual: 5
        })
    );
    // On a stream the extra bytes are the start of the next message: here garbage.
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(m.as_bytes());
    match dec.decode(&mut buf) {
        Ok(Some(Frame::Message(msg))) => assert_eq!(msg.body(), b"hel"),
        other => panic!("{other:?}"),
    }
    assert_eq!(&buf[..], b"lo");
    assert!(matches!(dec.decode(&mut buf), Ok(None)));
    buf.extend_from_slice(b"\r\n");
    assert!(matches!(
        dec.decode(&mut buf),
        Err(ParseError::BadStartLine(_))
    ));
}

#[test]
fn missing_content_length() {
    // Datagram-style: allowed when nothing follows.
    let ok = with_headers("", "");
    assert_eq!(parse(&ok).expect("empty body").body(), b"");
    // Something follows: we cannot know where the body ends.
    assert_eq!(
        parse(&with_headers("", "x")).map(|_| ()),
        Err(ParseError::MissingContentLength)
    );
    // Streams require it (RFC 3261 18.3).
    assert!(matches!(
        decode(ok.as_bytes()),
        Err(ParseError::MissingContentLength)
    ));
}

#[test]
fn duplicate_content_length_same_value() {
    let m = with_headers("Content-Length: 2\r\nContent-Length: 2\r\n", "hi");
    assert_eq!(
        parse(&m).map(|_| ()),
        Err(ParseError::DuplicateContentLength)
    );
    assert!(matches!(
        decode(m.as_bytes()),
        Err(ParseError::DuplicateContentLength)
    ));
}

#[test]
fn duplicate_content_length_different_values_and_compact_form() {
    let m = with_headers("Content-Length: 2\r\nl: 5\r\n", "hi");
    assert_eq!(
        parse(&m).map(|_| ()),
        Err(ParseError::DuplicateContentLength)
    );
    assert!(matches!(
        decode(m.as_bytes()),
        Err(ParseError::DuplicateContentLength)
    ));
}

#[test]
fn bad_content_length_values() {
    for v in ["abc", "-1", "+2", "2 2", "0x10", "", "1.0", "２"] {
        let m = with_headers(&format!("Content-Length: {v}\r\n"), "");
        let err = parse(&m).map(|_| ()).expect_err(v);
        assert_eq!(err, ParseError::BadContentLength(v.to_string()), "{v:?}");
        assert_eq!(err.status().0, 400);
        assert!(matches!(
            decode(m.as_bytes()),
            Err(ParseError::BadContentLength(_))
        ));
    }
}

#[test]
fn huge_content_length() {
    for (v, declared) in [
        ("262145", 262_145u64),
        ("99999999999", 99_999_999_999),
        ("999999999999999999999999999999", u64::MAX),
    ] {
        let m = with_headers(&format!("Content-Length: {v}\r\n"), "");
        let err = parse(&m).map(|_| ()).expect_err(v);
        assert_eq!(
            err,
            ParseError::BodyTooLarge {
                declared,
                limit: 262_144
            }
        );
        assert_eq!(err.status(), (513, "Message Too Large"));
        // The decoder refuses at once instead of waiting for the body.
        assert!(matches!(
            decode(m.as_bytes()),
            Err(ParseError::BodyTooLarge { .. })
        ));
    }
    // Exactly at the limit is fine.
    let body = "x".repeat(262_144);
    let m = with_headers("Content-Length: 262144\r\n", &body);
    assert_eq!(parse(&m).expect("at limit").body().len(), 262_144);
}

#[test]
fn header_block_over_64k_fails_before_the_blank_line() {
    let mut s = String::from("REGISTER sip:contoso.com SIP/2.0\r\n");
    while s.len() < 70_000 {
        s.push_str(
            "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    // No CRLFCRLF anywhere: the decoder must still give up.
    let expected = ParseError::HeadersTooLarge { limit: 65_536 };
    assert_eq!(decode(s.as_bytes()).map(|_| ()), Err(expected.clone()));
    assert_eq!(expected.status(), (513, "Message Too Large"));
    // Fed in chunks it fails as soon as the limit is passed, not later.
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let mut failed_at = None;
    for (i, chunk) in s.as_bytes().chunks(1000).enumerate() {
        buf.extend_from_slice(chunk);
        if let Err(e) = dec.decode(&mut buf) {
            assert_eq!(e, expected);
            failed_at = Some(i);
            break;
        }
    }
    assert_eq!(failed_at, Some(65));
    // parse() gives the same answer with or without the blank line.
    assert_eq!(parse(&s).map(|_| ()), Err(expected.clone()));
    s.push_str("Content-Length: 0\r\n\r\n");
    assert_eq!(parse(&s).map(|_| ()), Err(expected));
}

#[test]
fn too_many_headers() {
    let many: String = (0..257).map(|i| format!("X-H{i}: v\r\n")).collect();
    let m = with_headers(&many, "");
    let err = parse(&m).map(|_| ()).expect_err("too many");
    assert_eq!(err, ParseError::TooManyHeaders { limit: 256 });
    assert_eq!(err.status().0, 513);
    // 256 including Call-ID is fine.
    let ok: String = (0..255).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert!(parse(&with_headers(&ok, "")).is_ok());
    let small = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    assert!(matches!(
        decode_with(OPTIONS.as_bytes(), small),
        Err(ParseError::TooManyHeaders { limit: 2 })
    ));
}

#[test]
fn header_line_without_colon() {
    let m = with_headers("Content-Length 0\r\n", "");
    assert_eq!(
        parse(&m).map(|_| ()),
        Err(ParseError::BadHeaderLine {
            line: 3,
            reason: "no colon"
        })
    );
    assert!(matches!(
        decode(m.as_bytes()),
        Err(ParseError::BadHeaderLine { line: 3, .. })
    ));
}

#[test]
fn bad_header_lines() {
    for (extra, reason) in [
        (": novalue\r\n", "header name is empty or not a token"),
        ("Bad Name: v\r\n", "header name is empty or not a token"),
        ("X-A: a\rb\r\n", "control character in line"),
        ("X-A: a\0b\r\n", "control character in line"),
        ("X-A: a\nX-B: b\r\n", "line feed without carriage return"),
    ] {
        let m = with_headers(extra, "");
        assert_eq!(
            parse(&m).map(|_| ()),
            Err(ParseError::BadHeaderLine { line: 3, reason }),
            "{extra:?}"
        );
    }
    let folded = with_headers("Subject: a\r\n  continued\r\n", "");
    assert_eq!(
        parse(&folded).map(|_| ()),
        Err(ParseError::FoldedHeader { line: 4 })
    );
}

#[test]
fn status_line_without_reason_is_accepted() {
    let m = parse("SIP/2.0 200\r\nContent-Length: 0\r\n\r\n").expect("no reason");
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.reason(), Some(""));
    assert!(matches!(
        decode(b"SIP/2.0 200\r\nContent-Length: 0\r\n\r\n"),
        Ok(Some(Frame::Message(_)))
    ));
}

#[test]
fn crlf_keepalives_between_messages() {
    let stream = format!("\r\n\r\n{OPTIONS}\r\n\r\n\r\n\r\n{OPTIONS}\r\n");
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(stream.as_bytes());
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut buf).expect("decode") {
        frames.push(match f {
            Frame::KeepAlive => "k",
            Frame::Message(_) => "m",
        });
    }
    assert_eq!(frames, ["k", "m", "k", "m", "k"]);
    assert!(buf.is_empty());
    // parse() skips leading CRLFs and excludes them from as_bytes().
    let m = parse(&format!("\r\n\r\n{OPTIONS}")).expect("leading CRLF");
    assert_eq!(m.as_bytes(), OPTIONS.as_bytes());
}

#[test]
fn two_pipelined_messages_in_one_buffer() {
    let first = with_headers("Content-Length: 5\r\n", "hello");
    let second = "SIP/2.0 200 OK\r\nCall-ID: k3\r\nContent-Length: 3\r\n\r\nabc";
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(format!("{first}{second}").as_bytes());
    let Ok(Some(Frame::Message(a))) = dec.decode(&mut buf) else {
        panic!("first")
    };
    let Ok(Some(Frame::Message(b))) = dec.decode(&mut buf) else {
        panic!("second")
    };
    assert_eq!(a.as_bytes(), first.as_bytes());
    assert_eq!(b.as_bytes(), second.as_bytes());
    assert_eq!((a.body(), b.body()), (&b"hello"[..], &b"abc"[..]));
    assert_eq!(b.call_id(), Ok("k3"));
    assert!(matches!(dec.decode(&mut buf), Ok(None)));
    // parse() wants exactly one message.
    assert!(matches!(
        parse(&format!("{first}{second}")),
        Err(ParseError::BodyLengthMismatch { declared: 5, .. })
    ));
}

#[test]
fn no_panic_on_any_prefix_or_mutation() {
    // Every prefix, and every single-byte mutation of a real message, gives
    // Ok or Err, never a panic, through both entry points.
    let base = with_headers(
        "From: <sip:a@b>;tag=1\r\nTo: b\r\nContent-Length: 2\r\n",
        "hi",
    );
    let bytes = base.as_bytes();
    for cut in 0..=bytes.len() {
        let _ = Message::parse(Bytes::copy_from_slice(&bytes[..cut]));
        let _ = decode(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        for b in [0u8, b'\r', b'\n', b':', b' ', b'"', b'<', b';', 0xff] {
            let mut v = bytes.to_vec();
            v[i] = b;
            if let Ok(m) = Message::parse(Bytes::from(v.clone())) {
                let _ = (
                    m.call_id(),
                    m.cseq(),
                    m.from_addr(),
                    m.to_addr(),
                    m.contact(),
                    m.expires(),
                );
                let _ = lyncd_sip::sign::buffer(
                    &m,
                    &lyncd_sip::sign::SigParams {
                        scheme: "NTLM",
                        rand: "",
                        num: "",
                        realm: "",
                        targetname: "",
                        version: 4,
                    },
                );
            }
            let _ = decode(&v);
        }
        // A valid multi-byte character at every position exercises every
        // slice boundary in the start-line, header and value parsers.
        for ch in ["é", "€", "𝄞"] {
            let mut v = bytes[..i].to_vec();
            v.extend_from_slice(ch.as_bytes());
            v.extend_from_slice(&bytes[i..]);
            if let Ok(m) = Message::parse(Bytes::from(v.clone())) {
                let _ = (
                    m.call_id(),
                    m.cseq(),
                    m.from_addr(),
                    m.to_addr(),
                    m.contact(),
                );
            }
            let _ = decode(&v);
        }
    }
    for line in [
        "SIP/2\u{e9} 200 OK",
        "SIP/2.0 2\u{e9}0 OK",
        "SIP/2.0 200\u{e9}",
        "\u{e9}NVITE sip:x SIP/2.0",
    ] {
        let _ = Message::parse(Bytes::from(format!("{line}\r\n\r\n")));
        let _ = decode(format!("{line}\r\n").as_bytes());
    }
}
