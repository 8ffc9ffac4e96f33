//! Clock skew between this machine and a server, read from HTTP and SIP `Date` headers
//! (diagnostics.md row 8).
//!
//! Kerberos, SAML tokens and web tickets all carry timestamps that servers accept only within
//! five minutes of their own clock, so a client whose clock is a few minutes off fails to sign
//! in "intermittently" and with unhelpful messages ("problem acquiring a personal
//! certificate"). Every HTTP response and most SIP responses carry a `Date` header; comparing
//! it with the local clock at the moment the response arrived names the problem directly.
//!
//! `Date` has one-second resolution and the response spends some time in flight, so a
//! difference of a second or two is agreement, not skew.

use serde::Serialize;
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use crate::cert::Severity;
use lyncd_core::UtcTime;

/// Skew up to this many seconds (either way) is reported as [`Severity::Info`].
pub const WARN_ABOVE_SECS: i64 = 120;
/// Skew above this many seconds is an [`Severity::Error`]: Kerberos (default `MaxClockSkew`)
/// and the SAML / web-ticket validators of Lync and Microsoft 365 tolerate five minutes.
pub const ERROR_ABOVE_SECS: i64 = 300;
/// `Date` is whole seconds and the response took time to arrive: within this many seconds the
/// two clocks are said to agree.
pub const AGREEMENT_SECS: i64 = 2;

/// How far the server's clock is from this machine's, as seen in one `Date` header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skew {
    /// The time the server stated in its `Date` header.
    #[serde(serialize_with = "crate::cert::serialize_rfc3339")]
    pub server: UtcTime,
    /// Server minus local, in whole seconds: positive when the server is ahead.
    pub seconds: i64,
    /// Info up to 120 s, Warning up to 300 s, Error beyond (the Kerberos / SAML tolerance).
    pub severity: Severity,
}

impl Skew {
    /// One sentence a user can act on, for example "the server's clock is 10 min 3 s ahead
    /// of this machine's (server says 2026-11-25T10:10:03Z)".
    pub fn describe(&self) -> String {
        let server = lyncd_core::format_iso(self.server);
        let magnitude = self.seconds.unsigned_abs();
        if self.seconds.abs() <= AGREEMENT_SECS {
            return format!(
                "the server's clock and this machine's agree within {} s (server says {server})",
                magnitude.max(1)
            );
        }
        let direction = if self.seconds > 0 {
            "ahead of"
        } else {
            "behind"
        };
        format!(
            "the server's clock is {} {direction} this machine's (server says {server})",
            format_duration(magnitude)
        )
    }

    /// What to do about it, for Warning and Error; `None` when the clocks are close enough.
    pub fn advice(&self) -> Option<&'static str> {
        match self.severity {
            Severity::Info => None,
            Severity::Warning => Some(
                "clocks more than 2 minutes apart are close to the 5-minute tolerance of \
                 Kerberos and of SAML / web-ticket timestamps; synchronise this machine's clock \
                 (Windows: w32tm /resync; Linux: timedatectl set-ntp true) or the server's",
            ),
            Severity::Error => Some(
                "clocks more than 5 minutes apart make Kerberos, SAML tokens and web tickets \
                 fail (\"problem acquiring a personal certificate\"); synchronise this machine's \
                 clock (Windows: w32tm /resync; Linux: timedatectl set-ntp true) or the server's",
            ),
        }
    }
}

/// Compares a `Date` header value with the local clock read when the response arrived.
/// `None` when the header is not a valid HTTP date.
pub fn evaluate(local_now: UtcTime, date_header: &str) -> Option<Skew> {
    let server = parse_http_date(date_header)?;
    let seconds = (server - local_now).whole_seconds();
    let magnitude = seconds.abs();
    let severity = if magnitude <= WARN_ABOVE_SECS {
        Severity::Info
    } else if magnitude <= ERROR_ABOVE_SECS {
        Severity::Warning
    } else {
        Severity::Error
    };
    Some(Skew {
        server,
        seconds,
        severity,
    })
}

/// Parses an HTTP date (RFC 9110 §5.6.7) in any of its three forms:
///
/// * IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` (what servers send; SIP's `Date`, RFC 3261
///   §20.17, is the same rfc1123-date),
/// * obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`,
/// * ANSI C asctime `Sun Nov  6 08:49:37 1994`.
///
/// Lenient where real servers are sloppy: names are case-insensitive, the weekday is optional
/// and not checked against the date, the day may have one digit, and the zone may be `GMT`,
/// `UTC`, `UT`, `Z` or a numeric offset such as `+0100` (RFC 5322 style, which some SIP stacks
/// send). RFC 850's two-digit years are read as 1970–2069: the RFC's "more than 50 years in
/// the future" rule needs a clock, and this crate takes none.
pub fn parse_http_date(s: &str) -> Option<UtcTime> {
    let tokens: Vec<&str> = s
        .split([' ', '\t', ',', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    // A '-' also separates a negative offset ("-0500"): put the sign back.
    let has_negative_offset = s.trim_end().rsplit_once(' ').is_some_and(|(_, last)| {
        last.len() == 5 && last.starts_with('-') && last[1..].bytes().all(|b| b.is_ascii_digit())
    });

    let mut day: Option<u8> = None;
    let mut month: Option<Month> = None;
    let mut year: Option<i32> = None;
    let mut clock: Option<Time> = None;
    let mut offset: Option<UtcOffset> = None;
    let last = tokens.len().saturating_sub(1);

    for (index, token) in tokens.iter().enumerate() {
        if token.contains(':') {
            if clock.is_some() {
                return None;
            }
            clock = Some(parse_clock(token)?);
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let is_offset = index == last && token.len() == 4 && clock.is_some() && year.is_some();
            if is_offset {
                offset = Some(parse_offset(token, has_negative_offset)?);
            } else if day.is_none() && token.len() <= 2 {
                day = Some(token.parse().ok()?);
            } else if year.is_none() && (token.len() == 4 || token.len() == 2) {
                let value: i32 = token.parse().ok()?;
                year = Some(match token.len() {
                    2 if value >= 70 => 1900 + value,
                    2 => 2000 + value,
                    _ => value,
                });
            } else {
                return None;
            }
        } else if let Some(sign_offset) = token.strip_prefix('+') {
            offset = Some(parse_offset(sign_offset, false)?);
        } else if let Some(m) = parse_month(token) {
            if month.is_some() {
                return None;
            }
            month = Some(m);
        } else if index == 0 && is_weekday(token) {
            // Informational only: RFC 9110 lets recipients ignore a wrong weekday.
        } else if ["gmt", "utc", "ut", "z"].contains(&token.to_ascii_lowercase().as_str()) {
            offset = Some(UtcOffset::UTC);
        } else {
            return None;
        }
    }
    let date = Date::from_calendar_date(year?, month?, day?).ok()?;
    let local = PrimitiveDateTime::new(date, clock?);
    // asctime carries no zone and is defined as UTC; the others say GMT.
    let offset = offset.unwrap_or(UtcOffset::UTC);
    Some(local.assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// `5 s`, `10 min 3 s`, `2 h 5 min`, `3 days 4 h`: the two largest units, for people.
pub fn format_duration(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let with_rest = |major: String, minor: u64, unit: &str| {
        if minor == 0 {
            major
        } else {
            format!("{major} {minor} {unit}")
        }
    };
    if seconds < MINUTE {
        format!("{seconds} s")
    } else if seconds < HOUR {
        with_rest(format!("{} min", seconds / MINUTE), seconds % MINUTE, "s")
    } else if seconds < DAY {
        with_rest(
            format!("{} h", seconds / HOUR),
            (seconds % HOUR) / MINUTE,
            "min",
        )
    } else {
        let days = seconds / DAY;
        let unit = if days == 1 { "day" } else { "days" };
        with_rest(format!("{days} {unit}"), (seconds % DAY) / HOUR, "h")
    }
}

fn parse_clock(token: &str) -> Option<Time> {
    let mut parts = token.split(':');
    let mut field = |max: u8| -> Option<u8> {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok().filter(|v| *v <= max)
    };
    // 60 is a leap second; `time` has no representation for it, so it becomes :59.
    let (hour, minute, second) = (field(23)?, field(59)?, field(60)?.min(59));
    if parts.next().is_some() {
        return None;
    }
    Time::from_hms(hour, minute, second).ok()
}

fn parse_offset(digits: &str, negative: bool) -> Option<UtcOffset> {
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits[..2].parse().ok()?;
    let minutes: i8 = digits[2..].parse().ok()?;
    let sign = if negative { -1 } else { 1 };
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

fn parse_month(token: &str) -> Option<Month> {
    const MONTHS: [(&str, Month); 12] = [
        ("jan", Month::January),
        ("feb", Month::February),
        ("mar", Month::March),
        ("apr", Month::April),
        ("may", Month::May),
        ("jun", Month::June),
        ("jul", Month::July),
        ("aug", Month::August),
        ("sep", Month::September),
        ("oct", Month::October),
        ("nov", Month::November),
        ("dec", Month::December),
    ];
    let lower = token.to_ascii_lowercase();
    MONTHS
        .iter()
        .find(|(name, _)| lower == *name)
        .map(|(_, month)| *month)
}

fn is_weekday(token: &str) -> bool {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = token.to_ascii_lowercase();
    DAYS.iter()
        .any(|day| lower == *day || (lower.len() == 3 && day.starts_with(lower.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0), "0 s");
        assert_eq!(format_duration(59), "59 s");
        assert_eq!(format_duration(600), "10 min");
        assert_eq!(format_duration(603), "10 min 3 s");
        assert_eq!(format_duration(7500), "2 h 5 min");
        assert_eq!(format_duration(86_400), "1 day");
        assert_eq!(format_duration(3 * 86_400 + 4 * 3600 + 59), "3 days 4 h");
    }
}
