//! Test-only fake server: answers the sign-in core's actions from the responses a recorder
//! server gave pidgin-sipe in capture `01-autodiscover-full-flow`, matched by method and URL.
#![allow(dead_code)]

use lyncd_client::{
    Action, Checks, Completion, Discovery, HttpRequest, HttpResponse, Method, SignIn, SignInConfig,
    SrvRecord, TlsReport, TraceEvent, TransportError,
};
use lyncd_core::{SeededEntropy, SipAddress, UtcTime};
use std::net::{IpAddr, Ipv4Addr};
use time::macros::datetime;

pub const CAPTURE: &str = "../../../shared/interop/captures/01-autodiscover-full-flow";
pub const USER_URL: &str = "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com";
pub const WEBTICKET_URL: &str = "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc";
pub const WSFED_URL: &str =
    "https://lyncweb.contoso.com/WebTicket/WebTicketService.svc/WsFedBearer";
pub const INTERNAL_URL: &str = "https://lyncdiscoverinternal.contoso.com/?sipuri=alice@contoso.com";
pub const INTERNAL_HTTP_URL: &str =
    "http://lyncdiscoverinternal.contoso.com/?sipuri=alice@contoso.com";
pub const EXTERNAL_URL: &str = "https://lyncdiscover.contoso.com/?sipuri=alice@contoso.com";
pub const EXTERNAL_HTTP_URL: &str = "http://lyncdiscover.contoso.com/?sipuri=alice@contoso.com";
pub const REALM_URL: &str =
    "https://login.microsoftonline.com/getuserrealm.srf?login=alice@contoso.com&xml=1";
pub const RST2_URL: &str = "https://login.microsoftonline.com:443/RST2.srf";
/// The endpoint id pidgin-sipe used in the capture (`Context` of exchange 008).
pub const ENDPOINT_ID: &str = "8ca50061-9276-524f-a9b4-14011a2c5105";
/// The password in the capture.
pub const PASSWORD: &str = "secret";
pub const START: UtcTime = datetime!(2026-11-25 02:52:39 UTC);

/// One recorded HTTP message.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Request: `GET`/`POST`; response: empty.
    pub method: String,
    /// Request: absolute URL (scheme from the file name, host from `Host`).
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("captures are text")
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

fn capture_file(number: &str, suffix: &str) -> (String, String) {
    let dir = format!("{}/{CAPTURE}", env!("CARGO_MANIFEST_DIR"));
    let name = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{number}-")) && n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no capture {number}*{suffix}"));
    let text = std::fs::read_to_string(format!("{dir}/{name}")).expect("readable capture");
    // The captures were anonymised by turning `/root` into `$HOME`: undo it.
    (name, text.replace("$HOME", "/root"))
}

fn split(text: &str) -> (Vec<&str>, &str) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    (head.split("\r\n").collect(), body)
}

fn headers(lines: &[&str]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Request `number` (e.g. "007") of capture 01.
pub fn request(number: &str) -> Recorded {
    let (name, text) = capture_file(number, ".req.txt");
    let scheme = if name.contains("-https-") {
        "https"
    } else {
        "http"
    };
    let (lines, body) = split(&text);
    let mut first = lines[0].split(' ');
    let method = first.next().unwrap().to_string();
    let target = first.next().unwrap().to_string();
    let headers = headers(&lines[1..]);
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Host"))
        .map(|(_, v)| v.clone())
        .unwrap();
    Recorded {
        method,
        url: format!("{scheme}://{host}{target}"),
        status: 0,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// Response `number` of capture 01.
pub fn response(number: &str) -> Recorded {
    let (_, text) = capture_file(number, ".resp.txt");
    let (lines, body) = split(&text);
    let status = lines[0].split(' ').nth(1).unwrap().parse().unwrap();
    Recorded {
        method: String::new(),
        url: String::new(),
        status,
        headers: headers(&lines[1..]),
        body: body.as_bytes().to_vec(),
    }
}

/// What the fake server answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Response(HttpResponse),
    Transport(TransportError),
}

/// Which requests a route answers.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: Method,
    pub url: String,
    /// `Some(true)`: only with `X-MS-WebTicket`; `Some(false)`: only without.
    pub with_ticket: Option<bool>,
    pub reply: Reply,
}

pub struct FakeServer {
    /// Names that resolve; everything else is NXDOMAIN.
    pub resolvable: Vec<String>,
    /// Checked first; overrides replace recorded answers.
    pub overrides: Vec<Route>,
    pub routes: Vec<Route>,
    /// Every action the core emitted, in order.
    pub actions: Vec<Action>,
    /// SRV answers by name; everything else is NXDOMAIN.
    pub srv: Vec<(String, Vec<SrvRecord>)>,
    /// TLS probe answers by endpoint; others cannot connect (the probe is then silent).
    pub probes: Vec<(String, u16, TlsReport)>,
}

pub fn reply(resp: &Recorded) -> Reply {
    Reply::Response(resp.response())
}

pub fn http(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Reply::Response(HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    })
}

pub const XML_TYPE: &str = "application/vnd.microsoft.rtc.autodiscover+xml; v=1";

pub fn route(method: Method, url: &str, with_ticket: Option<bool>, reply: Reply) -> Route {
    Route {
        method,
        url: url.to_string(),
        with_ticket,
        reply,
    }
}

impl FakeServer {
    /// The recorded deployment of capture 01.
    pub fn capture() -> Self {
        use Method::*;
        FakeServer {
            resolvable: vec!["lyncdiscoverinternal.contoso.com".into()],
            overrides: Vec::new(),
            srv: Vec::new(),
            probes: Vec::new(),
            routes: vec![
                route(Get, INTERNAL_HTTP_URL, None, reply(&response("001"))),
                route(Get, INTERNAL_URL, None, reply(&response("002"))),
                route(Get, USER_URL, Some(false), reply(&response("003"))),
                route(
                    Get,
                    &format!("{WEBTICKET_URL}/mex"),
                    None,
                    reply(&response("005")),
                ),
                route(Get, REALM_URL, None, reply(&response("006"))),
                route(Post, RST2_URL, None, reply(&response("007"))),
                route(Post, WSFED_URL, None, reply(&response("008"))),
                route(Get, USER_URL, Some(true), reply(&response("009"))),
            ],
            actions: Vec::new(),
        }
    }

    /// Replaces the recorded answer for a request.
    pub fn answer(
        mut self,
        method: Method,
        url: &str,
        with_ticket: Option<bool>,
        r: Reply,
    ) -> Self {
        self.overrides.push(route(method, url, with_ticket, r));
        self
    }

    pub fn resolves(mut self, names: &[&str]) -> Self {
        self.resolvable = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn http(&self, req: &HttpRequest) -> Completion {
        let has_ticket = req.header("X-MS-WebTicket").is_some();
        let found = self.overrides.iter().chain(&self.routes).find(|r| {
            r.method == req.method
                && r.url == req.url
                && r.with_ticket.is_none_or(|t| t == has_ticket)
        });
        match found.map(|r| &r.reply) {
            Some(Reply::Response(resp)) => Completion::Response(resp.clone()),
            Some(Reply::Transport(e)) => Completion::TransportFailed(e.clone()),
            None => Completion::TransportFailed(TransportError::Connect(format!(
                "connection refused ({} {})",
                req.method, req.url
            ))),
        }
    }

    pub fn perform(&self, action: &Action) -> Completion {
        match action {
            Action::Resolve { host, .. } => {
                if self.resolvable.iter().any(|n| n.eq_ignore_ascii_case(host)) {
                    Completion::Resolved(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))])
                } else {
                    Completion::ResolveFailed(format!("NXDOMAIN for {host}"))
                }
            }
            Action::ResolveSrv { name, .. } => match self.srv.iter().find(|(n, _)| n == name) {
                Some((_, records)) => Completion::SrvRecords(records.clone()),
                None => Completion::ResolveFailed(format!("NXDOMAIN for {name}")),
            },
            Action::TlsProbe { host, port, .. } => {
                match self.probes.iter().find(|(h, p, _)| h == host && p == port) {
                    Some((_, _, report)) => Completion::TlsProbed(report.clone()),
                    None => Completion::TlsProbed(TlsReport {
                        connect: Err(TransportError::Refused(format!("{host}:{port}"))),
                        versions: Vec::new(),
                        chain: Vec::new(),
                        trust: Err("not reached".into()),
                    }),
                }
            }
            Action::Http { request, .. } => self.http(request),
            Action::GenerateKey { .. } => Completion::KeyFailed("no key generator here".into()),
            Action::Sip { host, port, .. } => Completion::TransportFailed(TransportError::Connect(
                format!("no SIP server at {host}:{port}"),
            )),
        }
    }

    /// Drives a sign-in to its end on a virtual clock (10 ms per exchange).
    pub fn run(&mut self, config: SignInConfig, seed: u64) -> (SignIn, Vec<TraceEvent>) {
        let mut entropy = SeededEntropy::new(seed);
        let mut now = START;
        let mut signin = SignIn::new(config, now);
        let mut trace = Vec::new();
        for _ in 0..100 {
            let Some(action) = signin.poll_action(now) else {
                break;
            };
            assert!(
                signin.poll_action(now).is_none(),
                "only one action may be outstanding"
            );
            let completion = self.perform(&action);
            self.actions.push(action.clone());
            now += time::Duration::milliseconds(10);
            signin.handle(now, action.id(), completion, &mut entropy);
            while let Some(e) = signin.poll_trace() {
                trace.push(e);
            }
        }
        assert!(signin.outcome().is_some(), "the sign-in must finish");
        (signin, trace)
    }

    /// The HTTP requests among the actions.
    pub fn requests(&self) -> Vec<&HttpRequest> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Http { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }
}

pub fn config() -> SignInConfig {
    config_with(Discovery::Dns {
        https_port: 443,
        http_port: 80,
    })
}

pub fn config_with(discovery: Discovery) -> SignInConfig {
    SignInConfig {
        address: SipAddress::parse("alice@contoso.com").unwrap(),
        login: None,
        password: PASSWORD.into(),
        discovery,
        endpoint_id: ENDPOINT_ID.into(),
        // These tests cover the web half (capture 01 up to exchange 010).
        sip: false,
        certificates: Vec::new(),
        sip_server_ca: None,
        refresh: true,
        sign_out: false,
        checks: Checks::default(),
        ucwa: false,
    }
}

pub fn body_text(req: &HttpRequest) -> String {
    String::from_utf8(req.body.clone().unwrap_or_default()).unwrap()
}
