use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an ISO 8601 UTC time such as 2026-11-25T10:00:00Z")]
pub struct TimeError(pub String);

/// `2026-11-25T10:00:00Z`: whole seconds, `Z`, the form SAML, WS-Security and SIPE all accept.
pub fn format_iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .expect("formatting a UTC time with a fixed description cannot fail")
}

/// Parses RFC 3339 / ISO 8601 with an offset or `Z`; a value without a zone is taken as UTC,
/// as SIPE does.
pub fn parse_iso(s: &str) -> Result<OffsetDateTime, TimeError> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).map_err(|_| TimeError(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trips() {
        let t = datetime!(2026-11-25 02:52:39 UTC);
        assert_eq!(format_iso(t), "2026-11-25T02:52:39Z");
        assert_eq!(parse_iso("2026-11-25T02:52:39Z").unwrap(), t);
        assert_eq!(parse_iso("2026-11-25T02:52:39").unwrap(), t);
        assert_eq!(parse_iso("2026-11-25T03:52:39+01:00").unwrap(), t);
        assert_eq!(
            parse_iso("2026-11-25T02:52:39.5Z")
                .unwrap()
                .unix_timestamp(),
            t.unix_timestamp()
        );
        assert!(parse_iso("yesterday").is_err());
    }
}
