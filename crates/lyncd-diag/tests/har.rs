//! The HAR 1.2 trace: built from captured exchanges, checked field by field against the spec's
//! required members and types, redacted by default, and round-tripped through serde.

use base64::Engine as _;
use lyncd_core::UtcTime;
use lyncd_diag::har::{
    Direction, DnsRecord, HttpExchange, HttpResponseRecord, SipRecord, TraceInput, build,
};
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

const CAPTURES: &str = "/work/shared/interop/captures/01-autodiscover-full-flow";
const T0: UtcTime = datetime!(2026-11-25 02:52:39.186 UTC);

/// The capture whose name starts with `prefix` and ends with `suffix` (`.req.txt`, `.resp.txt`).
fn read(prefix: &str, suffix: &str) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(CAPTURES)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
        .collect();
    names.sort();
    std::fs::read(format!("{CAPTURES}/{}", names.first().unwrap())).unwrap()
}

/// (start line, headers, body) of a captured HTTP message.
fn parse(raw: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap().to_string();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_string(), value.trim().to_string())
        })
        .collect();
    (start, headers, raw[end + 4..].to_vec())
}

fn exchange(step: &str, capture: &str, started: UtcTime) -> HttpExchange {
    let (request_line, request_headers, request_body) = parse(&read(capture, ".req.txt"));
    let (status_line, headers, body) = parse(&read(capture, ".resp.txt"));
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap().to_string();
    let path = parts.next().unwrap();
    let host = &request_headers
        .iter()
        .find(|(name, _)| name == "Host")
        .unwrap()
        .1;
    let (_, status) = status_line.split_once(' ').unwrap();
    let (code, text) = status.split_once(' ').unwrap();
    HttpExchange {
        step: step.to_string(),
        started,
        elapsed_ms: 12.5,
        method,
        url: format!("https://{host}{path}"),
        request_headers,
        request_body: (!request_body.is_empty()).then_some(request_body),
        response: Some(HttpResponseRecord {
            status: code.parse().unwrap(),
            status_text: text.to_string(),
            headers,
            body,
        }),
        error: None,
        server_ip: Some("10.0.0.5".to_string()),
    }
}

fn failed(started: UtcTime) -> HttpExchange {
    HttpExchange {
        step: "lyncdiscover".to_string(),
        started,
        elapsed_ms: 3.0,
        method: "GET".to_string(),
        url: "https://lyncdiscover.contoso.com/?sipuri=alice@contoso.com&access_token=eyJsecret"
            .to_string(),
        request_headers: vec![("Accept".to_string(), "application/json".to_string())],
        request_body: None,
        response: None,
        error: Some(
            "connection refused (os error 111) for https://lyncdiscover.contoso.com/?access_token=eyJsecret"
                .to_string(),
        ),
        server_ip: None,
    }
}

struct Recorded {
    http: Vec<HttpExchange>,
    sip: Vec<SipRecord>,
    dns: Vec<DnsRecord>,
}

fn recorded() -> Recorded {
    // Given out of order on purpose: the HAR must sort them.
    let http = vec![
        exchange(
            "autodiscover",
            "009-https-lyncweb.contoso.com-GET-_Autodiscover",
            T0 + Duration::milliseconds(248),
        ),
        exchange(
            "webticket",
            "007-https-login.microsoftonline.com-POST-_RST2.srf",
            T0 + Duration::milliseconds(206),
        ),
        exchange(
            "autodiscover",
            "003-https-lyncweb.contoso.com-GET-_Autodiscover",
            T0 + Duration::milliseconds(16),
        ),
        failed(T0),
    ];
    let sip = vec![
        SipRecord {
            step: "register".to_string(),
            time: T0 + Duration::seconds(2),
            direction: Direction::Received,
            peer: "lyncfe.contoso.com:5061 (tls)".to_string(),
            message: read("011-", ".resp.txt"),
        },
        SipRecord {
            step: "register".to_string(),
            time: T0 + Duration::seconds(1),
            direction: Direction::Sent,
            peer: "lyncfe.contoso.com:5061 (tls)".to_string(),
            message: b"REGISTER sip:contoso.com SIP/2.0\r\nAuthorization: NTLM qop=\"auth\", gssapi-data=\"TlRMTVNTUAADsecret\"\r\nContent-Length: 0\r\n\r\n".to_vec(),
        },
    ];
    let dns = vec![DnsRecord {
        step: "lyncdiscover".to_string(),
        time: T0 - Duration::milliseconds(40),
        name: "lyncdiscover.contoso.com".to_string(),
        rtype: "A".to_string(),
        answers: vec!["10.0.0.5".to_string()],
        error: None,
        elapsed_ms: 1.25,
    }];
    Recorded { http, sip, dns }
}

fn har(show_secrets: bool) -> Value {
    let recorded = recorded();
    build(&TraceInput {
        creator_version: "0.1.0",
        http: &recorded.http,
        sip: &recorded.sip,
        dns: &recorded.dns,
        show_secrets,
        summary: json!({"schema": "lyncd/signin/v1", "ok": false}),
    })
}

fn is_str(value: &Value) -> bool {
    value.is_string()
}

fn is_int(value: &Value) -> bool {
    value.is_i64() || value.is_u64()
}

fn assert_name_values(list: &Value, what: &str) {
    for item in list
        .as_array()
        .unwrap_or_else(|| panic!("{what} is an array"))
    {
        assert!(
            is_str(&item["name"]) && is_str(&item["value"]),
            "{what}: {item}"
        );
    }
}

/// The members HAR 1.2 requires, with their types.
fn assert_har_1_2(document: &Value) {
    let log = &document["log"];
    assert_eq!(log["version"], "1.2");
    assert!(is_str(&log["creator"]["name"]) && is_str(&log["creator"]["version"]));
    for entry in log["entries"].as_array().unwrap() {
        let started = entry["startedDateTime"].as_str().unwrap();
        time::OffsetDateTime::parse(started, &Rfc3339).unwrap();
        assert_eq!(started.len(), "2026-11-25T02:52:39.186Z".len(), "{started}");
        let total = entry["time"].as_f64().unwrap();
        assert!(total >= 0.0);

        let request = &entry["request"];
        for member in ["method", "url", "httpVersion"] {
            assert!(is_str(&request[member]), "request.{member}");
        }
        assert!(request["cookies"].is_array());
        assert_name_values(&request["headers"], "request.headers");
        assert_name_values(&request["queryString"], "request.queryString");
        assert!(is_int(&request["headersSize"]) && is_int(&request["bodySize"]));
        if let Some(post) = request.get("postData") {
            assert!(is_str(&post["mimeType"]) && is_str(&post["text"]));
        }

        let response = &entry["response"];
        assert!(is_int(&response["status"]));
        for member in ["statusText", "httpVersion", "redirectURL"] {
            assert!(is_str(&response[member]), "response.{member}");
        }
        assert!(response["cookies"].is_array());
        assert_name_values(&response["headers"], "response.headers");
        assert!(is_int(&response["content"]["size"]));
        assert!(is_str(&response["content"]["mimeType"]));
        assert!(is_int(&response["headersSize"]) && is_int(&response["bodySize"]));

        assert!(entry["cache"].is_object());
        let timings = &entry["timings"];
        let mut sum = 0.0;
        for phase in ["send", "wait", "receive"] {
            let value = timings[phase].as_f64().unwrap();
            assert!(value >= 0.0, "timings.{phase} is required and non-negative");
            sum += value;
        }
        for phase in ["blocked", "dns", "connect", "ssl"] {
            if let Some(value) = timings.get(phase) {
                let value = value.as_f64().unwrap();
                assert!(value == -1.0 || value >= 0.0);
            }
        }
        assert!((sum - total).abs() < 1e-9, "time is the sum of the timings");
        assert!(entry.get("pageref").is_none());
        if let Some(ip) = entry.get("serverIPAddress") {
            assert!(is_str(ip));
        }
        for (key, _) in entry.as_object().unwrap() {
            let standard = [
                "pageref",
                "startedDateTime",
                "time",
                "request",
                "response",
                "cache",
                "timings",
                "serverIPAddress",
                "connection",
                "comment",
            ];
            assert!(
                standard.contains(&key.as_str()) || key.starts_with('_'),
                "custom fields start with _: {key}"
            );
        }
    }
}

#[test]
fn the_document_is_har_1_2_and_round_trips() {
    let document = har(false);
    assert_har_1_2(&document);
    let text = serde_json::to_string_pretty(&document).unwrap();
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, document);
    assert_eq!(
        document["log"]["creator"],
        json!({"name": "lyncd", "version": "0.1.0"})
    );
    assert_eq!(document["log"]["entries"].as_array().unwrap().len(), 4);
}

#[test]
fn entries_and_side_logs_are_in_time_order() {
    let document = har(false);
    let started: Vec<&str> = document["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["startedDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        started,
        [
            "2026-11-25T02:52:39.186Z",
            "2026-11-25T02:52:39.202Z",
            "2026-11-25T02:52:39.392Z",
            "2026-11-25T02:52:39.434Z",
        ]
    );
    let sip = document["log"]["_sip"].as_array().unwrap();
    assert_eq!(sip[0]["direction"], "sent");
    assert_eq!(sip[1]["direction"], "received");
    assert_eq!(sip[0]["time"], "2026-11-25T02:52:40.186Z");
    assert_eq!(sip[1]["peer"], "lyncfe.contoso.com:5061 (tls)");
    assert!(
        sip[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("SIP/2.0 401 Unauthorized\r\n")
    );
    assert!(
        sip[1]["message"]
            .as_str()
            .unwrap()
            .contains("TLS-DSK realm=\"SIP Communications Service\"")
    );

    let dns = &document["log"]["_dns"][0];
    assert_eq!(dns["name"], "lyncdiscover.contoso.com");
    assert_eq!(dns["type"], "A");
    assert_eq!(dns["answers"], json!(["10.0.0.5"]));
    assert_eq!(dns["elapsed_ms"], 1.25);
    assert_eq!(document["log"]["_lyncd"]["schema"], "lyncd/signin/v1");
}

#[test]
fn the_rst2_exchange_is_recorded_with_its_body_redacted() {
    let document = har(false);
    let entry = &document["log"]["entries"][2];
    assert_eq!(entry["_step"], "webticket");
    assert_eq!(entry["serverIPAddress"], "10.0.0.5");
    let request = &entry["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], "https://login.microsoftonline.com/RST2.srf");
    assert_eq!(request["bodySize"], 1379);
    assert_eq!(request["postData"]["mimeType"], "text/xml");
    let post = request["postData"]["text"].as_str().unwrap();
    assert!(
        post.contains("<wsse:Password>‹masked: 6 bytes›</wsse:Password>"),
        "{post}"
    );
    assert!(post.contains("<wsse:Username>alice@contoso.com</wsse:Username>"));

    let response = &entry["response"];
    assert_eq!(response["status"], 200);
    assert_eq!(response["statusText"], "OK");
    assert_eq!(response["content"]["size"], 1335);
    assert_eq!(response["content"]["mimeType"], "text/xml; charset=utf-8");
    let content = response["content"]["text"].as_str().unwrap();
    assert!(
        !content.contains("b3BhcXVlLW9yZ2lkLXRva2Vu"),
        "encrypted token masked"
    );
    assert!(content.contains("<wst:TokenType>urn:oasis:names:tc:SAML:1.0</wst:TokenType>"));
}

#[test]
fn secrets_are_masked_by_default_and_shown_on_request() {
    let masked = serde_json::to_string(&har(false)).unwrap();
    let shown = serde_json::to_string(&har(true)).unwrap();
    let ticket = "PHNhbWw6QXNzZXJ0aW9uIE1ham9yVmVyc2lvbj0i";
    for secret in [
        ">secret<",
        ticket,
        "eyJsecret",
        "TlRMTVNTUAADsecret",
        "b3BhcXVlLW9yZ2lk",
    ] {
        assert!(!masked.contains(secret), "{secret} leaked");
        assert!(shown.contains(secret), "{secret} shown with --show-secrets");
    }
    let masked: Value = serde_json::from_str(&masked).unwrap();
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert!(
        masked["log"]["comment"]
            .as_str()
            .unwrap()
            .starts_with("Secrets are masked")
    );
    assert!(
        shown["log"]["comment"]
            .as_str()
            .unwrap()
            .starts_with("WARNING")
    );

    let autodiscover = &masked["log"]["entries"][3];
    let ticket_header = autodiscover["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|header| header["name"] == "X-MS-WebTicket")
        .unwrap();
    assert!(
        ticket_header["value"]
            .as_str()
            .unwrap()
            .starts_with("opaque=‹masked: ")
    );
    assert_eq!(
        autodiscover["request"]["queryString"],
        json!([{"name": "originalDomain", "value": "contoso.com"}])
    );

    // The challenge's public parameters stay readable.
    let challenge = &masked["log"]["entries"][1]["response"]["headers"];
    assert!(challenge.as_array().unwrap().iter().any(|header| {
        header["name"] == "WWW-Authenticate"
            && header["value"]
                == r#"Bearer trusted_issuers="", client_id="00000004-0000-0ff1-ce00-000000000000""#
    }));
}

#[test]
fn a_request_without_response_is_still_an_entry() {
    let document = har(false);
    let entry = &document["log"]["entries"][0];
    assert_eq!(entry["startedDateTime"], "2026-11-25T02:52:39.186Z");
    assert_eq!(entry["time"], 3.0);
    let response = &entry["response"];
    assert_eq!(response["status"], 0);
    assert_eq!(response["statusText"], "");
    assert_eq!(response["headers"], json!([]));
    assert_eq!(response["content"]["size"], 0);
    let error = response["_error"].as_str().unwrap();
    assert!(
        error.starts_with("connection refused (os error 111)"),
        "{error}"
    );
    assert!(
        !error.contains("eyJsecret"),
        "the error text is redacted too"
    );
    assert!(
        entry["comment"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    assert!(entry.get("serverIPAddress").is_none());
    assert!(entry["request"].get("postData").is_none());
    assert_eq!(entry["request"]["bodySize"], 0);
    let query = entry["request"]["queryString"].as_array().unwrap();
    assert_eq!(
        query[0],
        json!({"name": "sipuri", "value": "alice@contoso.com"})
    );
    assert_eq!(query[1]["name"], "access_token");
    assert!(query[1]["value"].as_str().unwrap().starts_with("‹masked: "));
}

#[test]
fn binary_bodies_are_base64_and_cookies_are_listed() {
    let body = vec![0x30, 0x82, 0xff, 0x00, 0xc3];
    let exchange = HttpExchange {
        step: "certprov".to_string(),
        started: T0,
        elapsed_ms: f64::NAN,
        method: "POST".to_string(),
        url: "https://lyncweb.contoso.com/upload?a=1&b=%20x&flag".to_string(),
        request_headers: vec![
            ("Content-Type".to_string(), "application/octet-stream".to_string()),
            ("Cookie".to_string(), "MSISAuth=AAEAAB; lang=en".to_string()),
        ],
        request_body: Some(body.clone()),
        response: Some(HttpResponseRecord {
            status: 302,
            status_text: "Found".to_string(),
            headers: vec![
                ("Location".to_string(), "https://lyncweb.contoso.com/next".to_string()),
                (
                    "Set-Cookie".to_string(),
                    "LyncSession=deadbeef; Path=/; Domain=contoso.com; Expires=Wed, 25 Nov 2026 10:00:00 GMT; Secure; HttpOnly".to_string(),
                ),
            ],
            body: body.clone(),
        }),
        error: Some("body truncated".to_string()),
        server_ip: None,
    };
    for show_secrets in [false, true] {
        let document = build(&TraceInput {
            creator_version: "0.1.0",
            http: std::slice::from_ref(&exchange),
            sip: &[],
            dns: &[],
            show_secrets,
            summary: Value::Null,
        });
        assert_har_1_2(&document);
        let entry = &document["log"]["entries"][0];
        assert_eq!(entry["time"], 0.0, "NaN elapsed becomes 0");
        let content = &entry["response"]["content"];
        assert_eq!(content["encoding"], "base64");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(content["text"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, body);
        assert_eq!(entry["request"]["postData"]["_encoding"], "base64");
        assert_eq!(
            entry["response"]["redirectURL"],
            "https://lyncweb.contoso.com/next"
        );
        assert_eq!(entry["response"]["_error"], "body truncated");
        assert_eq!(
            entry["request"]["queryString"],
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": " x"}, {"name": "flag", "value": ""}])
        );

        let request_cookies = entry["request"]["cookies"].as_array().unwrap();
        assert_eq!(request_cookies.len(), 2);
        assert_eq!(request_cookies[1]["name"], "lang");
        let response_cookie = &entry["response"]["cookies"][0];
        assert_eq!(response_cookie["name"], "LyncSession");
        assert_eq!(response_cookie["path"], "/");
        assert_eq!(response_cookie["domain"], "contoso.com");
        assert_eq!(response_cookie["expires"], "2026-11-25T10:00:00.000Z");
        assert_eq!(response_cookie["httpOnly"], true);
        assert_eq!(response_cookie["secure"], true);
        if show_secrets {
            assert_eq!(request_cookies[0]["value"], "AAEAAB");
            assert_eq!(response_cookie["value"], "deadbeef");
        } else {
            assert!(
                request_cookies[0]["value"]
                    .as_str()
                    .unwrap()
                    .starts_with("‹masked: 6 bytes")
            );
            assert!(
                response_cookie["value"]
                    .as_str()
                    .unwrap()
                    .starts_with("‹masked: 8 bytes")
            );
        }
    }
}

#[test]
fn an_empty_run_is_still_a_valid_document() {
    let document = build(&TraceInput {
        creator_version: "0.1.0",
        http: &[],
        sip: &[],
        dns: &[],
        show_secrets: false,
        summary: json!({}),
    });
    assert_har_1_2(&document);
    assert_eq!(document["log"]["entries"], json!([]));
    assert_eq!(document["log"]["_sip"], json!([]));
    assert_eq!(document["log"]["_dns"], json!([]));
}
