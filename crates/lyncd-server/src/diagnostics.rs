//! `X-Ms-diagnostics`: the error codes Skype for Business servers attach to failures, which
//! engineers (and our troubleshooter) read to tell one failure from another.
//!
//! The codes the web services use, by name. Their reason texts and meanings live in one table,
//! [`lyncd_diag::msdiag`], which the troubleshooter reads too.

use axum::http::HeaderName;
use lyncd_diag::msdiag;

pub static HEADER: HeaderName = HeaderName::from_static("x-ms-diagnostics");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostic {
    /// 28000: the account exists but may not sign in (disabled).
    UserNotEnabled,
    /// 28001: the server failed.
    Internal,
    /// 28020: no valid security token came with the request.
    NoValidToken,
    /// 28021: the token was for another service.
    WrongAudience,
    /// 28022: the token has expired.
    TokenExpired,
    /// 28023: the request's proof of possession of the web ticket's key is missing or wrong.
    ProofInvalid,
    /// 28024: the request names another user than the web ticket's subject.
    EntityMismatch,
    /// 28025: the certificate request (CSR) is not acceptable.
    CsrRejected,
    /// 28029: the grant type or authentication method is not offered.
    AuthTypeNotAllowed,
    /// 28032: the user name or password is wrong.
    BadCredentials,
    /// 28035: the request could not be read.
    MalformedRequest,
}

impl Diagnostic {
    pub fn code(self) -> u32 {
        match self {
            Diagnostic::UserNotEnabled => 28000,
            Diagnostic::Internal => 28001,
            Diagnostic::NoValidToken => 28020,
            Diagnostic::WrongAudience => 28021,
            Diagnostic::TokenExpired => 28022,
            Diagnostic::ProofInvalid => 28023,
            Diagnostic::EntityMismatch => 28024,
            Diagnostic::CsrRejected => 28025,
            Diagnostic::AuthTypeNotAllowed => 28029,
            Diagnostic::BadCredentials => 28032,
            Diagnostic::MalformedRequest => 28035,
        }
    }

    /// Microsoft's reason text for the code, from [`msdiag`]'s table.
    pub fn reason(self) -> &'static str {
        msdiag::lookup(self.code()).map_or("Unknown", |k| k.reason)
    }

    /// `28020;source="webdir.contoso.com";reason="No valid security token."`
    pub fn header_value(self, source: &str) -> String {
        msdiag::header_value(self.code(), source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Diagnostic; 11] = [
        Diagnostic::UserNotEnabled,
        Diagnostic::Internal,
        Diagnostic::NoValidToken,
        Diagnostic::WrongAudience,
        Diagnostic::TokenExpired,
        Diagnostic::ProofInvalid,
        Diagnostic::EntityMismatch,
        Diagnostic::CsrRejected,
        Diagnostic::AuthTypeNotAllowed,
        Diagnostic::BadCredentials,
        Diagnostic::MalformedRequest,
    ];

    #[test]
    fn every_code_is_in_the_one_table() {
        for d in ALL {
            let known = msdiag::lookup(d.code()).unwrap_or_else(|| panic!("{d:?}"));
            assert_eq!(d.reason(), known.reason);
            assert_eq!(msdiag::range(d.code()), "web services (MS-OCAUTHWS)");
            let parsed = msdiag::parse("X-Ms-diagnostics", &d.header_value("fe01")).unwrap();
            assert_eq!(parsed.code, d.code());
            assert_eq!(parsed.source.as_deref(), Some("fe01"));
        }
        assert_eq!(
            Diagnostic::NoValidToken.header_value("fe01.contoso.com"),
            "28020;source=\"fe01.contoso.com\";reason=\"No valid security token.\""
        );
    }
}
