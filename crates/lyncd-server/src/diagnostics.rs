//! `X-Ms-diagnostics`: the error codes Skype for Business servers attach to failures, which
//! engineers (and our troubleshooter) read to tell one failure from another.

use axum::http::HeaderName;

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

    pub fn reason(self) -> &'static str {
        match self {
            Diagnostic::UserNotEnabled => "User is not enabled for sign-in.",
            Diagnostic::Internal => "Internal server error.",
            Diagnostic::NoValidToken => "No valid security token.",
            Diagnostic::WrongAudience => "The security token was issued for another service.",
            Diagnostic::TokenExpired => "The security token has expired.",
            Diagnostic::ProofInvalid => "The proof of possession of the security token is invalid.",
            Diagnostic::EntityMismatch => {
                "The request is for another user than the security token."
            }
            Diagnostic::CsrRejected => "The certificate request is not acceptable.",
            Diagnostic::AuthTypeNotAllowed => "Authentication type not allowed.",
            Diagnostic::BadCredentials => "Invalid user name or password.",
            Diagnostic::MalformedRequest => "The request is malformed.",
        }
    }

    /// `28020;source="webdir.contoso.com";reason="No valid security token."`
    pub fn header_value(self, source: &str) -> String {
        format!(
            "{};source=\"{}\";reason=\"{}\"",
            self.code(),
            source,
            self.reason()
        )
    }
}
