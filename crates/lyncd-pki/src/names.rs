use std::net::IpAddr;

use crate::PkiError;

/// One subject alternative name of a server certificate, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerName {
    /// Lower-cased DNS name; a wildcard appears only as the whole leftmost label.
    Dns(String),
    Ip(IpAddr),
}

impl ServerName {
    pub(crate) fn parse(input: &str) -> Result<Self, PkiError> {
        if let Ok(ip) = input.parse::<IpAddr>() {
            return Ok(ServerName::Ip(ip));
        }
        if is_server_dns_name(input) {
            Ok(ServerName::Dns(input.to_ascii_lowercase()))
        } else {
            Err(PkiError::BadName(input.to_string()))
        }
    }

    /// The text used as the subject CN when this name comes first.
    pub(crate) fn as_common_name(&self) -> String {
        match self {
            ServerName::Dns(d) => d.clone(),
            ServerName::Ip(ip) => ip.to_string(),
        }
    }

    pub(crate) fn to_san(&self) -> Result<rcgen::SanType, PkiError> {
        Ok(match self {
            ServerName::Dns(d) => rcgen::SanType::DnsName(d.clone().try_into()?),
            ServerName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        })
    }
}

/// A host name as it may appear in a server certificate: `localhost`, `pool.contoso.com` or
/// `*.contoso.com`. Single-label names are allowed (lab set-ups use them); a wildcard must be the
/// whole leftmost label and cover at least two more labels, as browsers and Lync clients require.
fn is_server_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let labels: Vec<&str> = rest.split('.').collect();
    if wildcard && labels.len() < 2 {
        return false;
    }
    // A name made only of digits and dots that did not parse as an IP address is a typo.
    if labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Checks a subject common name: non-empty, at most 64 characters (X.520 `ub-common-name`),
/// no control characters.
pub(crate) fn check_common_name(cn: &str) -> Result<(), PkiError> {
    let len = cn.chars().count();
    if cn.trim().is_empty() || len > 64 || cn.chars().any(char::is_control) {
        return Err(PkiError::BadCommonName(cn.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hosts_wildcards_and_ips() {
        for ok in [
            "localhost",
            "pool.contoso.com",
            "*.contoso.com",
            "a-b.c0.example",
        ] {
            assert!(ServerName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            ServerName::parse("Pool.Contoso.COM").ok(),
            Some(ServerName::Dns("pool.contoso.com".into()))
        );
        assert_eq!(
            ServerName::parse("::1").ok(),
            Some(ServerName::Ip("::1".parse().unwrap()))
        );
        assert!(matches!(
            ServerName::parse("10.0.0.1"),
            Ok(ServerName::Ip(_))
        ));
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "bad name!",
            "*",
            "*.com",
            "a.*.com",
            "foo*.contoso.com",
            "-a.com",
            "a-.com",
            "a..com",
            "a.com.",
            "999.1.1.1",
            "under_score.com",
            "ünicode.com",
        ] {
            assert!(
                matches!(ServerName::parse(bad), Err(PkiError::BadName(ref n)) if n == bad),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn common_name_limits() {
        assert!(check_common_name("lyncd CA").is_ok());
        assert!(check_common_name("").is_err());
        assert!(check_common_name("  ").is_err());
        assert!(check_common_name("a\nb").is_err());
        assert!(check_common_name(&"x".repeat(65)).is_err());
        assert!(check_common_name(&"x".repeat(64)).is_ok());
    }
}
