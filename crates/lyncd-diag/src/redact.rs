//! Secrets never leave unmasked: every header, body, SIP message and free-text line that goes to
//! a trace, a report or the terminal passes through here first (unless the user asked for
//! `--show-secrets`, which the caller handles).
//!
//! A masked value reads `‹masked: 1532 bytes, sha256:1a2b3c4d›`: the length and the first four
//! bytes of its SHA-256, so two runs can be compared ("did the web ticket change?") without
//! revealing it. Passwords get the length only: a password is short and guessable, and a hash
//! prefix would let anyone holding the trace confirm a guess offline.
//!
//! Redaction edits byte ranges of the input and copies everything else through unchanged: XML
//! is not re-serialized (namespace prefixes, whitespace and attribute order stay as sent),
//! headers keep their parameters, SIP messages keep their start line and `Content-Length` as
//! received. Input that is not what it claims to be never panics; where the structure cannot be
//! followed the rest is masked rather than guessed.
//!
//! What is a secret, and what is deliberately kept:
//!
//! | where | masked | kept (public or needed to diagnose) |
//! |---|---|---|
//! | `Authorization`, `Proxy-Authorization` | Basic/Bearer/NTLM/Negotiate/Kerberos tokens; `response`; `gssapi-data` except under TLS-DSK; unknown parameters | scheme; `realm`, `targetname`, `opaque`, `qop`, `version`, `cnum`, `crand`, `srand`, `snum`, `epid`, `sts-uri`, Digest's `username`/`uri`/`nonce`; TLS-DSK `gssapi-data` (a TLS handshake of public certificates) |
//! | `WWW-Authenticate`, `Proxy-Authenticate`, `Authentication-Info` | NTLM/Negotiate/Kerberos blobs and their `gssapi-data` | everything else: `MsRtcOAuth href=…`, `Bearer trusted_issuers=…`, TLS-DSK challenges, `rspauth` (a signature, not a secret) |
//! | `X-MS-WebTicket`, `Cookie`, `Set-Cookie` | the ticket; cookie values | cookie names and attributes |
//! | XML bodies | text of `Password`, `BinarySecret` (WS-Trust entropy / proof keys), `CipherValue`; the content of `Assertion` (web tickets, SAML tokens), `EncryptedAssertion`, `EncryptedData`, `EncryptedKey`, `RequestedProofToken`; a `BinarySecurityToken` that carries a Kerberos/SPNEGO ticket | element names and start tags; `BinarySecurityToken` with certificates and CSRs (public); `Signature`; a UsernameToken `Nonce` (a replay guard sent in clear, not a secret) |
//! | form bodies | `password`, `client_secret`, `assertion`, `client_assertion`, `code`, `refresh_token`, `access_token`, `id_token` | other fields |
//! | JSON | `access_token`, `refresh_token`, `id_token`, `password`, `client_secret` | other members |
//! | anywhere | PEM `PRIVATE KEY` blocks; URL query parameters such as `access_token=`, `password=`, `code=` | the rest |

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use sha2::{Digest, Sha256};

/// The marker every masked value starts with; a value that already starts with it is not
/// masked again, so redaction is idempotent.
const MASK_PREFIX: &str = "‹masked";

/// `‹masked: 1532 bytes, sha256:1a2b3c4d›`: length and a short hash, so two runs can be
/// compared without revealing the value.
pub fn mask(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!(
        "{MASK_PREFIX}: {}, sha256:{}›",
        byte_count(secret.len()),
        crate::cert::hex(&digest[..4])
    )
}

/// `‹masked: 8 bytes›`: passwords are low-entropy, so no hash (it would confirm guesses).
/// The length stays: it shows a trailing newline read from `--password-stdin`.
pub fn mask_password(secret: &[u8]) -> String {
    format!("{MASK_PREFIX}: {}›", byte_count(secret.len()))
}

/// Redacts one HTTP or SIP header value. Header names compare case-insensitively; values of
/// headers that carry no credentials still go through [`text`] (URLs with tokens in
/// `Location`, for example).
pub fn header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    sensitive_header(name, value).unwrap_or_else(|| text(value))
}

/// Redacts a body according to its `Content-Type` (sniffing when absent or generic): XML by
/// element, form fields, JSON members, then URL parameters and PEM private keys in any text.
pub fn body<'a>(content_type: Option<&str>, body: &'a [u8]) -> Cow<'a, [u8]> {
    let structured: Cow<'a, [u8]> = match classify(content_type, body) {
        BodyKind::Xml => apply(body, xml_edits(body)),
        BodyKind::Form => apply(body, form_edits(body)),
        BodyKind::Json => apply(body, json_edits(body)),
        BodyKind::Text => Cow::Borrowed(body),
    };
    // URL parameters and PEM keys can hide in any of them (a redirect URL inside a JSON member,
    // a key pasted into a SOAP fault). Those passes need text.
    let extra = match std::str::from_utf8(&structured) {
        Ok(as_text) => {
            let mut edits = pem_edits(as_text.as_bytes());
            edits.extend(url_param_edits(as_text));
            edits.extend(sdp_crypto_edits(as_text));
            edits
        }
        Err(_) => pem_edits(&structured),
    };
    if extra.is_empty() {
        return structured;
    }
    match structured {
        Cow::Borrowed(original) => apply(original, extra),
        Cow::Owned(edited) => Cow::Owned(apply(&edited, extra).into_owned()),
    }
}

/// Redacts one SIP (or HTTP/1.x) message: the start line untouched, every header through
/// [`header`], the body through [`body`] with the message's own `Content-Type`.
/// `Content-Length` is kept as received, so it no longer matches a redacted body: the trace
/// shows what was on the wire, with holes.
pub fn sip_message(message: &[u8]) -> Cow<'_, [u8]> {
    let Some(start_line_end) = find_byte(message, b'\n', 0) else {
        // Not a message (no line at all): treat it as a body of unknown type.
        return body(None, message);
    };
    let mut edits = Vec::new();
    let mut content_type: Option<String> = None;
    let mut cursor = start_line_end + 1;
    let mut body_start = None;

    while cursor < message.len() {
        let line_end = find_byte(message, b'\n', cursor).unwrap_or(message.len());
        let line = trim_cr(&message[cursor..line_end]);
        if line.is_empty() {
            body_start = Some((line_end + 1).min(message.len()));
            break;
        }
        // Gather continuation lines (obsolete line folding, still legal in SIP).
        let mut value_end = cursor + line.len();
        let mut next = line_end + 1;
        while next < message.len() && matches!(message[next], b' ' | b'\t') {
            let continuation_end = find_byte(message, b'\n', next).unwrap_or(message.len());
            value_end = next + trim_cr(&message[next..continuation_end]).len();
            next = continuation_end + 1;
        }
        if let Some(colon) = find_byte(&message[..value_end], b':', cursor) {
            let name = String::from_utf8_lossy(&message[cursor..colon]);
            let name = name.trim();
            let mut value_start = colon + 1;
            while value_start < value_end && matches!(message[value_start], b' ' | b'\t') {
                value_start += 1;
            }
            let raw_value = &message[value_start..value_end];
            if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c") {
                content_type = Some(String::from_utf8_lossy(raw_value).into_owned());
            }
            match std::str::from_utf8(raw_value) {
                Ok(value) => {
                    if let Cow::Owned(redacted) = header(name, value) {
                        edits.push((value_start..value_end, redacted.into_bytes()));
                    }
                }
                Err(_) => {
                    // Not UTF-8: a credential header is masked whole, others kept as sent.
                    let lossy = String::from_utf8_lossy(raw_value);
                    if sensitive_header(name, &lossy).is_some() {
                        edits.push((value_start..value_end, mask(raw_value).into_bytes()));
                    }
                }
            }
        }
        cursor = next;
    }

    if let Some(start) = body_start
        && start < message.len()
        && let Cow::Owned(redacted) = body(content_type.as_deref(), &message[start..])
    {
        edits.push((start..message.len(), redacted));
    }
    apply(message, edits)
}

/// Redacts free text (log lines, error messages, URLs): URL query parameters that carry
/// secrets (`access_token=`, `password=`, `code=`, …), `Name: value` lines of credential
/// headers, JSON members such as `"access_token": "…"`, and PEM private keys.
pub fn text(s: &str) -> Cow<'_, str> {
    let mut edits = pem_edits(s.as_bytes());
    edits.extend(url_param_edits(s));
    edits.extend(header_line_edits(s));
    edits.extend(json_edits(s.as_bytes()));
    edits.extend(sdp_crypto_edits(s));
    match apply(s.as_bytes(), edits) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
            Ok(text) => text,
            // Edits cut only at ASCII delimiters, so this is unreachable; stay total anyway.
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }),
    }
}

// ---- edits --------------------------------------------------------------------------------

/// Replace `range` of the input with these bytes.
type Edit = (Range<usize>, Vec<u8>);

/// Applies non-overlapping edits; an edit that overlaps an earlier one is dropped (the earlier
/// one already covers the secret). Out-of-range edits are ignored.
fn apply(input: &[u8], mut edits: Vec<Edit>) -> Cow<'_, [u8]> {
    edits.retain(|(range, _)| range.start <= range.end && range.end <= input.len());
    if edits.is_empty() {
        return Cow::Borrowed(input);
    }
    edits.sort_by_key(|(range, _)| (range.start, range.end));
    let mut out = Vec::with_capacity(input.len());
    let mut copied_to = 0;
    for (range, replacement) in edits {
        if range.start < copied_to {
            continue;
        }
        out.extend_from_slice(&input[copied_to..range.start]);
        out.extend_from_slice(&replacement);
        copied_to = range.end;
    }
    out.extend_from_slice(&input[copied_to..]);
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

fn already_masked(value: &[u8]) -> bool {
    value.trim_ascii_start().starts_with(MASK_PREFIX.as_bytes())
}

/// An edit masking `range` of `input`, unless it is empty or already masked.
fn mask_range(input: &[u8], range: Range<usize>, password: bool) -> Option<Edit> {
    let value = input.get(range.clone())?;
    if value.is_empty() || already_masked(value) {
        return None;
    }
    let masked = if password {
        mask_password(value)
    } else {
        mask(value)
    };
    Some((range, masked.into_bytes()))
}

fn byte_count(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

fn find_byte(haystack: &[u8], needle: u8, from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|offset| from + offset)
}

fn find_bytes(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ---- headers ------------------------------------------------------------------------------

/// Which side of an authentication exchange a header belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthRole {
    /// `Authorization`: the client's credentials. Default-deny: unknown parameters are masked.
    Credentials,
    /// `WWW-Authenticate`, `Authentication-Info`: what the server offers or proves. Public
    /// except the NTLM/Kerberos/Negotiate blobs.
    Challenge,
}

/// The redaction of a header that can carry credentials; `None` for every other header.
fn sensitive_header<'a>(name: &str, value: &'a str) -> Option<Cow<'a, str>> {
    let name = name.trim();
    let is = |candidate: &str| name.eq_ignore_ascii_case(candidate);
    if is("authorization") || is("proxy-authorization") {
        Some(auth_header(value, AuthRole::Credentials))
    } else if is("www-authenticate")
        || is("proxy-authenticate")
        || is("authentication-info")
        || is("proxy-authentication-info")
    {
        Some(auth_header(value, AuthRole::Challenge))
    } else if is("x-ms-webticket") {
        Some(web_ticket(value))
    } else if is("cookie") {
        Some(cookies(value, false))
    } else if is("set-cookie") {
        Some(cookies(value, true))
    } else if is("x-auth-token") || is("x-api-key") || is("x-ms-client-secret") {
        Some(edit_str(
            value,
            mask_range(value.as_bytes(), 0..value.len(), false)
                .into_iter()
                .collect(),
        ))
    } else {
        None
    }
}

fn edit_str(value: &str, edits: Vec<Edit>) -> Cow<'_, str> {
    match apply(value.as_bytes(), edits) {
        Cow::Borrowed(_) => Cow::Borrowed(value),
        Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }),
    }
}

/// `X-MS-WebTicket: opaque=<base64 ticket>`: keep the parameter name, mask the ticket.
fn web_ticket(value: &str) -> Cow<'_, str> {
    let start = match value.find('=') {
        Some(eq) => eq + 1,
        None => 0,
    };
    edit_str(
        value,
        mask_range(value.as_bytes(), start..value.len(), false)
            .into_iter()
            .collect(),
    )
}

/// `Cookie: a=1; b=2` masks every value; `Set-Cookie: a=1; Path=/; HttpOnly` only the first
/// (the rest are attributes).
fn cookies(value: &str, set_cookie: bool) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let mut edits = Vec::new();
    let mut start = 0;
    while start <= bytes.len() {
        let end = find_byte(bytes, b';', start).unwrap_or(bytes.len());
        if let Some(eq) = find_byte(&bytes[..end], b'=', start) {
            let mut value_start = eq + 1;
            while value_start < end && bytes[value_start] == b' ' {
                value_start += 1;
            }
            edits.extend(mask_range(bytes, value_start..end, false));
        }
        if set_cookie {
            break;
        }
        start = end + 1;
    }
    edit_str(value, edits)
}

/// Schemes whose blobs are Windows integrated authentication tokens (replayable or crackable).
fn is_integrated_scheme(scheme: Option<&str>) -> bool {
    matches!(scheme, Some("ntlm" | "negotiate" | "kerberos"))
}

/// Parameters of an `Authorization` header that are not secret and matter for diagnosis.
const PUBLIC_CREDENTIAL_PARAMS: [&str; 22] = [
    "realm",
    "targetname",
    "opaque",
    "qop",
    "version",
    "cnum",
    "crand",
    "srand",
    "snum",
    "epid",
    "sts-uri",
    "rspauth",
    "algorithm",
    "username",
    "uri",
    "nonce",
    "cnonce",
    "nc",
    "trusted_issuers",
    "client_id",
    "authorization_uri",
    "href",
];

fn mask_auth_param(role: AuthRole, scheme: Option<&str>, param: &str) -> bool {
    if param == "gssapi-data" {
        // TLS-DSK's gssapi-data is a TLS handshake (certificates, encrypted key exchange):
        // public, and the most useful thing in the trace.
        return scheme != Some("tls-dsk");
    }
    match role {
        AuthRole::Credentials => !PUBLIC_CREDENTIAL_PARAMS.contains(&param),
        AuthRole::Challenge => false,
    }
}

fn mask_token68(role: AuthRole, scheme: Option<&str>) -> bool {
    match role {
        AuthRole::Credentials => true,
        AuthRole::Challenge => is_integrated_scheme(scheme),
    }
}

fn is_auth_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Walks an RFC 9110 §11 credentials / challenge list — `scheme token68` or
/// `scheme name=value, name="quoted"`, several challenges separated by commas — and masks
/// values according to `role`. SIP's Microsoft schemes (NTLM, Kerberos, TLS-DSK) use the
/// parameter form with `gssapi-data`; HTTP's use token68.
fn auth_header(value: &str, role: AuthRole) -> Cow<'_, str> {
    #[derive(PartialEq, Eq)]
    enum State {
        /// At the start, or after a comma in a parameter list: a bare word is a scheme.
        ExpectScheme,
        /// Right after a scheme and a space: a bare word is its token68.
        AfterScheme,
        /// Inside a parameter list.
        Params,
    }

    let b = value.as_bytes();
    let n = b.len();
    let mut edits: Vec<Edit> = Vec::new();
    let mut scheme: Option<String> = None;
    let mut state = State::ExpectScheme;
    let mut i = 0;
    loop {
        let mut saw_comma = false;
        while i < n && (is_auth_space(b[i]) || b[i] == b',') {
            saw_comma |= b[i] == b',';
            i += 1;
        }
        if i >= n {
            break;
        }
        if saw_comma && state != State::ExpectScheme {
            state = State::Params;
        }
        let word_start = i;
        while i < n && !is_auth_space(b[i]) && !matches!(b[i], b',' | b'=' | b'"') {
            i += 1;
        }
        let word_end = i;
        if word_start == word_end {
            // A quote or '=' where a word belongs: the syntax is not followed. Credentials are
            // masked from here on; a challenge is left as sent.
            if role == AuthRole::Credentials {
                edits.extend(mask_range(b, word_start..n, false));
            }
            break;
        }
        let word = &value[word_start..word_end];

        let mut after = i;
        while after < n && is_auth_space(b[after]) {
            after += 1;
        }
        if after < n && b[after] == b'=' {
            let mut eq_end = after;
            while eq_end < n && b[eq_end] == b'=' {
                eq_end += 1;
            }
            let mut value_start = eq_end;
            while value_start < n && is_auth_space(b[value_start]) {
                value_start += 1;
            }
            let is_param = eq_end - after == 1 && value_start < n && b[value_start] != b',';
            if is_param {
                let (range, next) = param_value(b, value_start);
                let param = word.to_ascii_lowercase();
                if mask_auth_param(role, scheme.as_deref(), &param) {
                    edits.extend(mask_range(b, range, false));
                }
                i = next;
                state = State::Params;
                continue;
            }
            // token68 ending in '=' padding ("Negotiate YIIG...==")
            if mask_token68(role, scheme.as_deref()) {
                let password = scheme.as_deref() == Some("basic");
                edits.extend(mask_range(b, word_start..eq_end, password));
            }
            i = eq_end;
            state = State::Params;
            continue;
        }

        let is_token68 = state == State::AfterScheme || (state == State::Params && !saw_comma);
        if is_token68 {
            if mask_token68(role, scheme.as_deref()) {
                let password = scheme.as_deref() == Some("basic");
                edits.extend(mask_range(b, word_start..word_end, password));
            }
            state = State::Params;
        } else {
            scheme = Some(word.to_ascii_lowercase());
            state = State::AfterScheme;
        }
    }
    edit_str(value, edits)
}

/// The value of an auth-param starting at `start`: a quoted string (range inside the quotes,
/// honouring backslash escapes; an unterminated one runs to the end) or a token. Returns the
/// value's range and where parsing continues.
fn param_value(b: &[u8], start: usize) -> (Range<usize>, usize) {
    let n = b.len();
    if b[start] == b'"' {
        let mut j = start + 1;
        while j < n && b[j] != b'"' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(n);
        (start + 1..end, (end + 1).min(n))
    } else {
        let mut j = start;
        while j < n && !is_auth_space(b[j]) && b[j] != b',' {
            j += 1;
        }
        (start..j, j)
    }
}

/// `Name: value` lines in free text whose header carries credentials.
fn header_line_edits(s: &str) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut line_start = 0;
    for line in s.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if let Some(colon) = content.find(':') {
            let name = content[..colon].trim();
            let is_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if is_name {
                let value_offset = colon + 1 + (content.len() - colon - 1)
                    - content[colon + 1..].trim_start().len();
                let value = &content[value_offset..];
                if let Some(Cow::Owned(redacted)) = sensitive_header(name, value) {
                    let start = line_start + value_offset;
                    edits.push((start..start + value.len(), redacted.into_bytes()));
                }
            }
        }
        line_start += line.len();
    }
    edits
}

// ---- bodies -------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum BodyKind {
    Xml,
    Form,
    Json,
    Text,
}

fn classify(content_type: Option<&str>, body: &[u8]) -> BodyKind {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media.contains("xml") {
        return BodyKind::Xml;
    }
    if media == "application/x-www-form-urlencoded" {
        return BodyKind::Form;
    }
    if media.contains("json") {
        return BodyKind::Json;
    }
    // Absent, generic or mislabelled: look at the first byte.
    match body.trim_ascii_start().first() {
        Some(b'<') => BodyKind::Xml,
        Some(b'{' | b'[') => BodyKind::Json,
        _ => BodyKind::Text,
    }
}

/// Elements whose content is secret, by local name (case-insensitive: hand-written SOAP varies).
#[derive(Clone, Copy, PartialEq, Eq)]
enum XmlSecret {
    /// The content of a password element: length only.
    Password,
    /// Any other secret content: length and hash.
    Other,
}

fn xml_secret(start: &BytesStart<'_>) -> Option<XmlSecret> {
    let name = start.local_name();
    let local = name.as_ref();
    let is = |candidate: &str| local.eq_ignore_ascii_case(candidate);
    if is("Password") {
        return Some(XmlSecret::Password);
    }
    const SECRET_ELEMENTS: [&str; 7] = [
        "BinarySecret",
        "CipherValue",
        "Assertion",
        "EncryptedAssertion",
        "EncryptedData",
        "EncryptedKey",
        "RequestedProofToken",
    ];
    if SECRET_ELEMENTS.iter().any(|candidate| is(candidate)) {
        return Some(XmlSecret::Other);
    }
    if is("BinarySecurityToken") && carries_ticket(start) {
        return Some(XmlSecret::Other);
    }
    None
}

/// A `BinarySecurityToken` is usually a certificate or a CSR (public, and needed to diagnose
/// Certificate Provisioning); one whose `ValueType` names Kerberos or SPNEGO is a ticket.
fn carries_ticket(start: &BytesStart<'_>) -> bool {
    let mut attributes = start.attributes();
    attributes.with_checks(false);
    attributes.flatten().any(|attribute| {
        attribute
            .key
            .local_name()
            .as_ref()
            .eq_ignore_ascii_case("ValueType")
            && {
                let value = attribute.value.to_ascii_lowercase();
                ["kerberos", "spnego", "gss", "negotiate"]
                    .iter()
                    .any(|marker| value.contains(marker))
            }
    })
}

/// Masks the content (everything between start and end tag) of secret elements, leaving the
/// tags, so the document's structure still shows. If the XML breaks, everything from the
/// break (or from the open secret element) to the end is masked.
fn xml_edits(body: &[u8]) -> Vec<Edit> {
    let mut reader = Reader::from_reader(body);
    {
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.allow_dangling_amp = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let position = |reader: &Reader<&[u8]>| {
        usize::try_from(reader.buffer_position())
            .unwrap_or(body.len())
            .min(body.len())
    };

    let mut edits = Vec::new();
    // (content start, nesting depth, kind) of the secret element being skipped.
    let mut open: Option<(usize, usize, XmlSecret)> = None;
    loop {
        let before = position(&reader);
        match reader.read_event() {
            Ok(Event::Start(start)) => match open.as_mut() {
                Some((_, depth, _)) => *depth += 1,
                None => {
                    if let Some(kind) = xml_secret(&start) {
                        open = Some((position(&reader), 1, kind));
                    }
                }
            },
            Ok(Event::End(_)) => {
                if let Some((content_start, depth, kind)) = open.as_mut() {
                    *depth -= 1;
                    if *depth == 0 {
                        edits.extend(mask_range(
                            body,
                            *content_start..before,
                            *kind == XmlSecret::Password,
                        ));
                        open = None;
                    }
                }
            }
            Ok(Event::Eof) => {
                if let Some((content_start, _, kind)) = open {
                    edits.extend(mask_range(
                        body,
                        content_start..body.len(),
                        kind == XmlSecret::Password,
                    ));
                }
                break;
            }
            Ok(_) => {}
            Err(_) => {
                let from = open.map_or(before, |(content_start, _, _)| content_start);
                edits.extend(mask_range(body, from..body.len(), false));
                break;
            }
        }
    }
    edits
}

/// Form fields whose values are secret; `true` for passwords (masked without hash).
fn form_secret(name: &str) -> Option<bool> {
    match name {
        "password" | "passwd" => Some(true),
        "client_secret" | "assertion" | "client_assertion" | "code" | "refresh_token"
        | "access_token" | "id_token" => Some(false),
        _ => None,
    }
}

fn form_edits(body: &[u8]) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let end = find_byte(body, b'&', start).unwrap_or(body.len());
        if let Some(eq) = find_byte(&body[..end], b'=', start) {
            let name = percent_decode(&body[start..eq]).to_ascii_lowercase();
            if let Some(password) = form_secret(name.trim()) {
                edits.extend(mask_range(body, eq + 1..end, password));
            }
        }
        start = end + 1;
    }
    edits
}

/// `application/x-www-form-urlencoded` decoding of a name (`+` is a space); invalid escapes are
/// kept literally.
pub(crate) fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = raw.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let low = raw.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                if let (Some(high), Some(low)) = (high, low) {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JSON members whose values are secret; `true` for passwords.
fn json_secret(key: &[u8]) -> Option<bool> {
    let key = String::from_utf8_lossy(key).to_ascii_lowercase();
    match key.as_str() {
        "password" | "passwd" => Some(true),
        "access_token" | "refresh_token" | "id_token" | "client_secret" => Some(false),
        _ => None,
    }
}

/// A lexical pass rather than a parse: any string followed by `:` is a member name, and the
/// string after the colon its value. This needs no valid document, so it also works on JSON
/// quoted inside error messages and on truncated bodies.
fn json_edits(body: &[u8]) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut key: Option<Range<usize>> = None;
    let mut value_is_secret: Option<bool> = None;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let (range, next) = json_string(body, i);
                match value_is_secret.take() {
                    Some(password) => {
                        edits.extend(mask_range(body, range, password));
                        key = None;
                    }
                    None => key = Some(range),
                }
                i = next;
            }
            b':' => {
                value_is_secret = key
                    .take()
                    .and_then(|range| body.get(range))
                    .and_then(json_secret);
                i += 1;
            }
            _ => {
                key = None;
                value_is_secret = None;
                i += 1;
            }
        }
    }
    edits
}

/// The contents of the JSON string whose opening quote is at `start`, and the index after its
/// closing quote (the end of input when unterminated).
fn json_string(body: &[u8], start: usize) -> (Range<usize>, usize) {
    let mut j = start + 1;
    while j < body.len() && body[j] != b'"' {
        j += if body[j] == b'\\' { 2 } else { 1 };
    }
    let end = j.min(body.len());
    (start + 1..end, (end + 1).min(body.len()))
}

/// The body of every `-----BEGIN … PRIVATE KEY-----` block (RSA, EC, ENCRYPTED, OPENSSH, …),
/// keeping the BEGIN/END lines. A block without its END line is masked to the end.
fn pem_edits(input: &[u8]) -> Vec<Edit> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    let mut edits = Vec::new();
    let mut from = 0;
    while let Some(begin) = find_bytes(input, BEGIN, from) {
        let label_start = begin + BEGIN.len();
        let Some(label_end) = find_bytes(input, DASHES, label_start) else {
            break;
        };
        let label = &input[label_start..label_end];
        from = label_end + DASHES.len();
        if label.contains(&b'\n') || !label.ends_with(b"PRIVATE KEY") {
            continue;
        }
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(DASHES);
        let content_end = find_bytes(input, &end_marker, from).unwrap_or(input.len());
        if let Some((range, masked)) = mask_range(input, from..content_end, false) {
            let content = &input[range.clone()];
            let newline = if content.contains(&b'\n') { "\n" } else { "" };
            let mut replacement = newline.as_bytes().to_vec();
            replacement.extend_from_slice(&masked);
            replacement.extend_from_slice(newline.as_bytes());
            edits.push((range, replacement));
        }
        from = content_end;
    }
    edits
}

/// URL query (or fragment) parameters that carry secrets; `true` for passwords.
fn url_param_secret(name: &str) -> Option<bool> {
    match name {
        "password" | "passwd" | "pwd" => Some(true),
        "access_token" | "refresh_token" | "id_token" | "client_secret" | "client_assertion"
        | "assertion" | "code" | "token" | "sig" | "api_key" | "apikey" => Some(false),
        _ => None,
    }
}

/// `name=value` pairs in URLs: `name` must start the query, follow `&`/`;`/`#`, or stand
/// alone after whitespace or a quote, so `errorcode=` is not `code=`.
fn url_param_edits(s: &str) -> Vec<Edit> {
    let b = s.as_bytes();
    let mut edits = Vec::new();
    let mut i = 0;
    while let Some(eq) = find_byte(b, b'=', i) {
        i = eq + 1;
        let mut name_start = eq;
        while name_start > 0
            && (b[name_start - 1].is_ascii_alphanumeric() || b[name_start - 1] == b'_')
        {
            name_start -= 1;
        }
        let boundary = name_start == 0
            || matches!(
                b[name_start - 1],
                b'?' | b'&' | b';' | b'#' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'('
            );
        if name_start == eq || !boundary {
            continue;
        }
        let name = s[name_start..eq].to_ascii_lowercase();
        let Some(password) = url_param_secret(&name) else {
            continue;
        };
        let mut end = eq + 1;
        while end < b.len()
            && !matches!(
                b[end],
                b'&' | b'#' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'<' | b'>' | b')'
            )
        {
            end += 1;
        }
        edits.extend(mask_range(b, eq + 1..end, password));
        i = end;
    }
    edits
}

/// SDES keys in SDP (`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<key>|2^31`): whoever has
/// them decrypts the call's media.
fn sdp_crypto_edits(s: &str) -> Vec<Edit> {
    const INLINE: &str = "inline:";
    let mut edits = Vec::new();
    let mut line_start = 0;
    for line in s.split_inclusive('\n') {
        if line.trim_start().starts_with("a=crypto:") {
            let mut from = 0;
            while let Some(found) = line[from..].find(INLINE) {
                let key_start = from + found + INLINE.len();
                let key_len = line[key_start..]
                    .find(['|', ' ', '\t', '\r', '\n', ';'])
                    .unwrap_or(line.len() - key_start);
                let range = line_start + key_start..line_start + key_start + key_len;
                edits.extend(mask_range(s.as_bytes(), range, false));
                from = key_start + key_len;
            }
        }
        line_start += line.len();
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> String {
        header(name, value).into_owned()
    }

    #[test]
    fn mask_shows_length_and_short_hash() {
        let masked = mask(b"secret");
        assert!(masked.starts_with("‹masked: 6 bytes, sha256:"), "{masked}");
        assert_eq!(masked, mask(b"secret"));
        assert_ne!(masked, mask(b"secreT"));
        assert_eq!(mask_password(b"x"), "‹masked: 1 byte›");
    }

    #[test]
    fn auth_tokenizer_handles_schemes_token68_and_params() {
        assert_eq!(
            h(
                "Authorization",
                "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="
            ),
            format!(
                "NTLM {}",
                mask(b"TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==")
            )
        );
        assert_eq!(
            h("WWW-Authenticate", "Negotiate, NTLM"),
            "Negotiate, NTLM",
            "a list of bare schemes has nothing to mask"
        );
        assert_eq!(
            h("Authorization", "Basic dXNlcjpwYXNz"),
            "Basic ‹masked: 12 bytes›"
        );
        let digest = h(
            "Authorization",
            r#"Digest username="alice", realm="r", nonce="n", uri="/", response="6629fae49393a05397450978507c4ef1""#,
        );
        assert!(digest.contains(r#"username="alice""#), "{digest}");
        assert!(!digest.contains("6629fae4"), "{digest}");
    }
}
