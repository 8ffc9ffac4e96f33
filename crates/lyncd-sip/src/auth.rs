//! Authentication header values: `WWW-Authenticate`, `Authorization`,
//! `Authentication-Info` (and their `Proxy-` forms).
//!
//! Microsoft's schemes (TLS-DSK, NTLM, Kerberos) use RFC 2617 `auth-param`
//! syntax: a scheme token, one space, then `name=value` / `name="value"` pairs
//! separated by commas (sip.md §3.2, §5.1). The parser is a little more
//! tolerant than SIPE (white space around `=` and `,`); the renderer writes
//! exactly what SIPE can read.

use crate::syntax::{is_token, is_token_byte};

/// Why an authentication header value could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthParseError {
    #[error("authentication header has no scheme token")]
    MissingScheme,
    #[error("authentication scheme is not followed by a space")]
    BadScheme,
    #[error("expected a parameter name at byte {at}")]
    BadParamName { at: usize },
    #[error("parameter {name:?} has no '='")]
    MissingEquals { name: String },
    #[error("quoted value of parameter {name:?} is not terminated")]
    UnterminatedQuote { name: String },
    #[error("expected ',' after parameter {name:?}")]
    ExpectedComma { name: String },
}

/// One parsed authentication header value; borrows from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    pub scheme: &'a str,
    /// (name, value) in order; values of quoted parameters without their
    /// quotes, backslash escapes left as sent (MS values never contain any).
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> AuthHeader<'a> {
    pub fn parse(value: &'a str) -> Result<AuthHeader<'a>, AuthParseError> {
        let s = value.trim_matches([' ', '\t']);
        let bytes = s.as_bytes();
        let scheme_end = bytes
            .iter()
            .position(|&b| !is_token_byte(b))
            .unwrap_or(bytes.len());
        let scheme = &s[..scheme_end];
        if scheme.is_empty() {
            return Err(AuthParseError::MissingScheme);
        }
        if scheme_end < bytes.len() && !matches!(bytes[scheme_end], b' ' | b'\t') {
            return Err(AuthParseError::BadScheme);
        }

        let mut params = Vec::with_capacity(8);
        let mut i = scheme_end;
        let skip_ws = |mut i: usize| {
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                i += 1;
            }
            i
        };
        loop {
            // Separators: white space and commas (empty list elements are
            // allowed by RFC 7230's #rule).
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
                i += 1;
            }
            if i == bytes.len() {
                break;
            }
            let name_start = i;
            while i < bytes.len() && is_token_byte(bytes[i]) {
                i += 1;
            }
            let name = &s[name_start..i];
            if name.is_empty() {
                return Err(AuthParseError::BadParamName { at: name_start });
            }
            i = skip_ws(i);
            if bytes.get(i) != Some(&b'=') {
                return Err(AuthParseError::MissingEquals { name: name.into() });
            }
            i = skip_ws(i + 1);
            let value;
            if bytes.get(i) == Some(&b'"') {
                let start = i + 1;
                let mut j = start;
                loop {
                    match bytes.get(j) {
                        None => {
                            return Err(AuthParseError::UnterminatedQuote { name: name.into() });
                        }
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                value = &s[start..j];
                i = j + 1;
            } else {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b',' | b' ' | b'\t' | b'"') {
                    i += 1;
                }
                value = &s[start..i];
            }
            params.push((name, value));
            i = skip_ws(i);
            match bytes.get(i) {
                None | Some(b',') => {}
                Some(_) => return Err(AuthParseError::ExpectedComma { name: name.into() }),
            }
        }
        Ok(AuthHeader { scheme, params })
    }

    /// First parameter called `name` (case-insensitive), unquoted.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.params.iter().copied()
    }

    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// Renders an authentication header value: `TLS-DSK qop="auth", opaque="…",
/// version=4` — one space after the scheme, `", "` between parameters, in
/// insertion order, no spaces around `=`, which is what SIPE's parser needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthParams {
    out: String,
    empty: bool,
}

impl AuthParams {
    /// A non-token scheme is a programming error; its bad characters are dropped.
    pub fn new(scheme: &str) -> Self {
        let scheme: String = if is_token(scheme) {
            scheme.to_owned()
        } else {
            scheme
                .chars()
                .filter(|&c| c.is_ascii() && is_token_byte(c as u8))
                .collect()
        };
        let mut out = String::with_capacity(256);
        out.push_str(&scheme);
        AuthParams { out, empty: true }
    }

    fn push_name(&mut self, name: &str) {
        self.out.push_str(if self.empty { " " } else { ", " });
        self.empty = false;
        self.out.extend(
            name.chars()
                .filter(|&c| c.is_ascii() && is_token_byte(c as u8)),
        );
        self.out.push('=');
    }

    /// `name="value"`. Quotes, backslashes, CR and LF are dropped from the
    /// value: SIPE's parser cannot read escapes (sip.md §3.2) and none of the
    /// MS parameters can legitimately contain them.
    pub fn quoted(mut self, name: &str, value: &str) -> Self {
        self.push_name(name);
        self.out.push('"');
        self.out.extend(
            value
                .chars()
                .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n')),
        );
        self.out.push('"');
        self
    }

    /// `name=value` for bare tokens such as `version=4`; characters that
    /// would end the token are dropped.
    pub fn token(mut self, name: &str, value: &str) -> Self {
        self.push_name(name);
        self.out.extend(
            value
                .chars()
                .filter(|c| !matches!(c, '"' | ',' | ' ' | '\t' | '\r' | '\n')),
        );
        self
    }

    pub fn render(&self) -> String {
        self.out.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_spacing() {
        let h = AuthParams::new("X");
        assert_eq!(h.render(), "X");
        let a = AuthHeader::parse("Digest  realm = \"r\" ,, nonce=abc ,qop=\"auth\"").unwrap();
        assert!(a.is_scheme("digest"));
        assert_eq!(
            a.params().collect::<Vec<_>>(),
            [("realm", "r"), ("nonce", "abc"), ("qop", "auth")]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(AuthHeader::parse(""), Err(AuthParseError::MissingScheme));
        assert_eq!(
            AuthHeader::parse("TLS-DSK,a=1"),
            Err(AuthParseError::BadScheme)
        );
        assert_eq!(
            AuthHeader::parse("NTLM realm"),
            Err(AuthParseError::MissingEquals {
                name: "realm".into()
            })
        );
        assert_eq!(
            AuthHeader::parse("NTLM realm=\"x"),
            Err(AuthParseError::UnterminatedQuote {
                name: "realm".into()
            })
        );
        assert_eq!(
            AuthHeader::parse("NTLM a=\"x\" b=1"),
            Err(AuthParseError::ExpectedComma { name: "a".into() })
        );
        assert_eq!(
            AuthHeader::parse("NTLM =1"),
            Err(AuthParseError::BadParamName { at: 5 })
        );
    }

    #[test]
    fn render_sanitises() {
        let r = AuthParams::new("TLS-DSK")
            .quoted("opaque", "a\"b\r\n")
            .token("version", "4, x")
            .render();
        assert_eq!(r, "TLS-DSK opaque=\"ab\", version=4x");
    }
}
