use std::fmt;

/// A user's SIP address, `user@domain`, stored without the `sip:` scheme.
///
/// The domain is lower-cased (DNS names are case-insensitive); the user part keeps its case for
/// display but compares case-insensitively, as Skype for Business does.
#[derive(Clone, Debug, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipAddress {
    user: String,
    domain: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("a SIP address looks like alice@contoso.com; {0:?} has no '@'")]
    MissingAt(String),
    #[error("the user part of {0:?} is empty or contains spaces, quotes or angle brackets")]
    BadUser(String),
    #[error("the domain of {0:?} is not a valid DNS name")]
    BadDomain(String),
}

impl SipAddress {
    /// Parses `alice@contoso.com` or `sip:alice@contoso.com` (scheme case-insensitive).
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim();
        let bare = match trimmed.get(..4) {
            Some(s) if s.eq_ignore_ascii_case("sip:") => &trimmed[4..],
            _ => trimmed,
        };
        let (user, domain) = bare
            .rsplit_once('@')
            .ok_or_else(|| AddressError::MissingAt(input.to_string()))?;
        if user.is_empty()
            || user.len() > 256
            || user
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>\"@;,:".contains(c))
        {
            return Err(AddressError::BadUser(input.to_string()));
        }
        if !is_dns_name(domain) {
            return Err(AddressError::BadDomain(input.to_string()));
        }
        Ok(SipAddress {
            user: user.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `sip:alice@contoso.com`
    pub fn sip_uri(&self) -> String {
        format!("sip:{self}")
    }

    /// The canonical key used for storage and comparison: lower-cased `user@domain`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.user.to_lowercase(), self.domain)
    }
}

impl PartialEq for SipAddress {
    fn eq(&self, other: &Self) -> bool {
        self.domain == other.domain && self.user.to_lowercase() == other.user.to_lowercase()
    }
}

impl std::hash::Hash for SipAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Display for SipAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

impl std::str::FromStr for SipAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SipAddress::parse(s)
    }
}

impl TryFrom<String> for SipAddress {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SipAddress::parse(&s)
    }
}

impl From<SipAddress> for String {
    fn from(a: SipAddress) -> String {
        a.to_string()
    }
}

/// True for a syntactically valid DNS host name with at least two labels.
pub fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_scheme() {
        let a = SipAddress::parse("sip:Alice@Contoso.COM").unwrap();
        assert_eq!(a.user(), "Alice");
        assert_eq!(a.domain(), "contoso.com");
        assert_eq!(a.sip_uri(), "sip:Alice@contoso.com");
        assert_eq!(a.key(), "alice@contoso.com");
        assert_eq!(a, SipAddress::parse("alice@contoso.com").unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            SipAddress::parse("alice"),
            Err(AddressError::MissingAt(_))
        ));
        assert!(matches!(
            SipAddress::parse("a b@contoso.com"),
            Err(AddressError::BadUser(_))
        ));
        assert!(matches!(
            SipAddress::parse("@contoso.com"),
            Err(AddressError::BadUser(_))
        ));
        assert!(matches!(
            SipAddress::parse("alice@contoso"),
            Err(AddressError::BadDomain(_))
        ));
        assert!(matches!(
            SipAddress::parse("alice@-x.com"),
            Err(AddressError::BadDomain(_))
        ));
        assert!(matches!(
            SipAddress::parse("alice@ex_ample.com"),
            Err(AddressError::BadDomain(_))
        ));
    }
}
