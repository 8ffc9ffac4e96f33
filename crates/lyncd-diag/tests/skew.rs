//! Clock skew from `Date` headers: the three HTTP date forms, thresholds and wording.

use lyncd_diag::cert::Severity;
use lyncd_diag::skew::{Skew, evaluate, parse_http_date};
use time::Duration;
use time::macros::datetime;

#[test]
fn the_three_http_date_forms_parse_to_the_same_instant() {
    let expected = datetime!(1994-11-06 08:49:37 UTC);
    for form in [
        "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
        "Sun Nov  6 08:49:37 1994",       // asctime
    ] {
        assert_eq!(parse_http_date(form), Some(expected), "{form}");
    }
}

#[test]
fn the_captured_server_date_parses() {
    let response = std::fs::read_to_string(
        "/work/shared/interop/captures/01-autodiscover-full-flow/007-https-login.microsoftonline.com-POST-_RST2.srf.resp.txt",
    )
    .unwrap();
    let date = response
        .lines()
        .find_map(|line| line.strip_prefix("Date: "))
        .unwrap();
    assert_eq!(
        parse_http_date(date),
        Some(datetime!(2026-11-25 02:52:39 UTC))
    );
}

#[test]
fn lenient_where_real_servers_are_sloppy() {
    let expected = datetime!(2026-11-25 10:10:03 UTC);
    for form in [
        "Wed, 25 Nov 2026 10:10:03 GMT",
        "  wed, 25 nov 2026 10:10:03 gmt  ",
        "25 Nov 2026 10:10:03 GMT",
        "Wed, 25 Nov 2026 10:10:03 UTC",
        "Wed, 25 Nov 2026 11:10:03 +0100",
        "Wed, 25 Nov 2026 05:10:03 -0500",
        "Wednesday, 25-Nov-26 10:10:03 GMT",
        "Wed Nov 25 10:10:03 2026",
    ] {
        assert_eq!(parse_http_date(form), Some(expected), "{form:?}");
    }
    assert_eq!(
        parse_http_date("Wed, 5 Nov 2026 10:10:03 GMT"),
        Some(datetime!(2026-11-05 10:10:03 UTC))
    );
    assert_eq!(
        parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"),
        Some(datetime!(1970-01-01 00:00:00 UTC))
    );
    assert_eq!(
        parse_http_date("Friday, 01-Jan-69 00:00:00 GMT"),
        Some(datetime!(2069-01-01 00:00:00 UTC))
    );
}

#[test]
fn garbage_is_rejected_not_guessed() {
    for bad in [
        "",
        "yesterday",
        "Wed, 31 Feb 2026 10:10:03 GMT",
        "Wed, 25 Foo 2026 10:10:03 GMT",
        "Wed, 25 Nov 2026 24:00:00 GMT",
        "Wed, 25 Nov 2026 10:61:00 GMT",
        "Wed, 25 Nov 2026 GMT",
        "Wed, 25 Nov 10:10:03 GMT",
        "Wed, 25 Nov 2026 10:10:03 10:10:03 GMT",
        "Wed, 25 Nov 2026 10:10:03 CEST",
        "Wed, 25 Nov Dec 2026 10:10:03 GMT",
        "2026-11-25T10:10:03Z",
        "1:2:3:4",
        "\u{0}\u{ffff}",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn severity_follows_the_kerberos_and_saml_tolerance() {
    let local = datetime!(2026-11-25 10:00:00 UTC);
    let at = |seconds: i64| {
        let server = local + Duration::seconds(seconds);
        let header = server
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap();
        evaluate(local, &header).unwrap()
    };
    assert_eq!(at(0).severity, Severity::Info);
    assert_eq!(at(120).severity, Severity::Info);
    assert_eq!(at(-120).severity, Severity::Info);
    assert_eq!(at(121).severity, Severity::Warning);
    assert_eq!(at(-300).severity, Severity::Warning);
    assert_eq!(at(301).severity, Severity::Error);
    assert_eq!(at(-3600).severity, Severity::Error);
    assert_eq!(at(603).seconds, 603);
    assert_eq!(at(-603).seconds, -603);
    assert!(at(301).advice().unwrap().contains("5 minutes"));
    assert_eq!(at(5).advice(), None);
    assert_eq!(evaluate(local, "not a date"), None);
}

#[test]
fn describe_says_who_is_ahead_and_by_how_much() {
    let local = datetime!(2026-11-25 10:00:00 UTC);
    let ahead = evaluate(local, "Wed, 25 Nov 2026 10:10:03 GMT").unwrap();
    assert_eq!(
        ahead.describe(),
        "the server's clock is 10 min 3 s ahead of this machine's (server says 2026-11-25T10:10:03Z)"
    );
    let behind = evaluate(local, "Wed, 25 Nov 2026 07:55:00 GMT").unwrap();
    assert_eq!(
        behind.describe(),
        "the server's clock is 2 h 5 min behind this machine's (server says 2026-11-25T07:55:00Z)"
    );
    let close = evaluate(local, "Wed, 25 Nov 2026 10:00:01 GMT").unwrap();
    assert!(
        close.describe().contains("agree within 1 s"),
        "{}",
        close.describe()
    );
    let two = evaluate(local, "Wed, 25 Nov 2026 09:59:58 GMT").unwrap();
    assert!(
        two.describe().contains("agree within 2 s"),
        "{}",
        two.describe()
    );
}

#[test]
fn sub_second_local_time_does_not_invent_skew() {
    // Date is whole seconds: a local clock 0.7 s past the server's second is agreement.
    let local = datetime!(2026-11-25 10:00:00.700 UTC);
    let skew = evaluate(local, "Wed, 25 Nov 2026 10:00:00 GMT").unwrap();
    assert_eq!(skew.seconds, 0);
    assert_eq!(skew.severity, Severity::Info);
}

#[test]
fn skew_serializes_with_an_rfc3339_time() {
    let skew = Skew {
        server: datetime!(2026-11-25 10:10:03 UTC),
        seconds: 603,
        severity: Severity::Error,
    };
    let json = serde_json::to_value(&skew).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"server": "2026-11-25T10:10:03Z", "seconds": 603, "severity": "error"})
    );
}
