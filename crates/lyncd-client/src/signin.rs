//! The sign-in state machine (web half): discovery → challenge → web ticket → user settings.
//!
//! Shaped like `quinn-proto`: a plain object the shell drives with [`SignIn::poll_action`] and
//! [`SignIn::handle`]; time and randomness come in as arguments. Each phase is a type holding
//! exactly what that step needs; a completion consumes the phase and yields the next one (or
//! the outcome) plus one trace event.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lyncd_core::{Entropy, Secret, SipAddress, UtcTime, format_iso};
use lyncd_discover::{AUTODISCOVER_XML, Document, NextHop};

use crate::checks::{self, AnswerFacts};
use crate::failure::{Failure, FailureKind};
use crate::io::{Action, ActionId, Completion, HttpRequest, HttpResponse, Method};
use crate::model::{Checks, Discovered, Discovery, Outcome, SignInConfig, WebTicket};
use crate::psha1::psha1;
use crate::soap::{self, IdpAnswer, IdpToken, SoapFault};
use crate::trace::{DnsLookup, Evidence};
use crate::trace::{Step, TraceEvent};
use lyncd_diag::cert::Finding;

mod sip;

/// The `Accept` header of every Autodiscover request (what pidgin-sipe sends).
pub const AUTODISCOVER_ACCEPT: &str = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";
/// Where pidgin-sipe sends the password when the Web Ticket metadata names no IdP.
pub const DEFAULT_RST2_URL: &str = "https://login.microsoftonline.com:443/RST2.srf";
/// Redirect hops followed over a whole sign-in.
pub const MAX_REDIRECTS: usize = 5;
/// Bytes of client entropy in the web ticket request (and of the derived proof key).
const ENTROPY_LEN: usize = 32;

/// One sign-in, from the SIP address to the SIP pool and a web ticket.
#[derive(Debug)]
pub struct SignIn {
    ctx: Context,
    phase: Phase,
    outstanding: Option<Outstanding>,
    /// A step whose action ended without finishing it (a SIP message that was not the answer):
    /// its next action continues the same trace event.
    resume: Option<Outstanding>,
    next_id: u64,
    trace: VecDeque<TraceEvent>,
    outcome: Option<Outcome>,
    checks: Checks,
    /// TLS endpoints already probed (host lower-cased, port).
    probed: Vec<(String, u16)>,
    /// The endpoint of the outstanding [`Action::TlsProbe`].
    probing: Option<(String, u16)>,
    /// The clock was found off at warning level or worse: say it once, not at every step.
    skew_reported: bool,
}

impl SignIn {
    pub fn new(config: SignInConfig, _now: UtcTime) -> Self {
        let SignInConfig {
            address,
            login,
            password,
            discovery,
            endpoint_id,
            sip,
            certificates,
            sip_server_ca,
            refresh,
            sign_out,
            checks,
            ucwa,
        } = config;
        let login = login
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| address.to_string());
        let discover = Phase::Discover(Discover::new(&address, &discovery));
        let phase = if checks.sip_dns && matches!(discovery, Discovery::Dns { .. }) {
            Phase::SipDns(SipDns::new(address.domain(), discover))
        } else {
            discover
        };
        SignIn {
            ctx: Context {
                address,
                login,
                password,
                endpoint_id,
                visited: Vec::new(),
                redirects: 0,
                ucwa,
                oauth_url: None,
                findings: Vec::new(),
                evidence: None,
                sip: SipOptions {
                    enabled: sip,
                    certificates,
                    server_ca: sip_server_ca,
                    refresh,
                    sign_out,
                },
            },
            phase,
            outstanding: None,
            resume: None,
            next_id: 1,
            trace: VecDeque::new(),
            outcome: None,
            checks,
            probed: Vec::new(),
            probing: None,
            skew_reported: false,
        }
    }

    /// The next I/O the shell must perform. One action is outstanding at a time: while one is,
    /// and once the sign-in has finished, this returns `None`.
    pub fn poll_action(&mut self, now: UtcTime) -> Option<Action> {
        if self.outcome.is_some() || self.outstanding.is_some() {
            return None;
        }
        let request = self.phase.request(&self.ctx)?;
        let id = ActionId(self.next_id);
        self.next_id += 1;
        if self.checks.tls
            && let Some((host, port)) = tls_endpoint(&request.io)
            && !self.probed.contains(&(host.clone(), port))
        {
            // First contact with this TLS endpoint: probe it before the request proper.
            self.probed.push((host.clone(), port));
            self.probing = Some((host.clone(), port));
            self.outstanding = Some(Outstanding {
                id,
                step: Step::Tls,
                started: now,
                sent: format!("TLS probe {host}:{port} (1.0–1.3, certificate chain)"),
            });
            return Some(Action::TlsProbe { id, host, port });
        }
        let (started, sent) = match self.resume.take() {
            Some(r) if r.step == request.step => (r.started, r.sent),
            _ => (now, request.sent),
        };
        self.outstanding = Some(Outstanding {
            id,
            step: request.step,
            started,
            sent,
        });
        Some(match request.io {
            Io::Resolve(host) => Action::Resolve { id, host },
            Io::ResolveSrv(name) => Action::ResolveSrv { id, name },
            Io::Http(request) => Action::Http { id, request },
            Io::GenerateKey(address) => Action::GenerateKey { id, address },
            Io::Sip {
                host,
                port,
                tls,
                message,
            } => Action::Sip {
                id,
                host,
                port,
                tls,
                message,
            },
        })
    }

    /// Feeds the result of the action `id`. A completion for an action that is not outstanding
    /// (stale or duplicate) is ignored.
    pub fn handle(
        &mut self,
        now: UtcTime,
        id: ActionId,
        completion: Completion,
        entropy: &mut dyn Entropy,
    ) {
        match &self.outstanding {
            Some(o) if o.id == id => {}
            _ => return,
        }
        let Some(out) = self.outstanding.take() else {
            return;
        };
        if let Some((host, port)) = self.probing.take() {
            self.probed_tls(now, out, &host, port, completion);
            return;
        }
        let facts = answer_facts(&completion);
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let (mut next, mut report) = phase.complete(&mut self.ctx, completion, entropy, now);
        if let Some(f) = report.failure.take() {
            let f = checks::refine(f, &facts);
            if let Next::Done(Outcome::Failed(_)) = next {
                next = Next::Done(Outcome::Failed(f.clone()));
            }
            report.failure = Some(f);
        }
        if self.checks.clock
            && let Some(date) = facts.header("Date")
            && let Some((skew, finding)) = checks::clock_finding(now, date)
            && !self.skew_reported
        {
            self.skew_reported = true;
            let fatal = finding.severity == lyncd_diag::cert::Severity::Error;
            self.ctx.findings.push(finding);
            if fatal && report.failure.is_none() {
                let f = Failure::new(
                    out.step,
                    FailureKind::ClockSkew,
                    "this machine's clock within 5 minutes of the server's",
                    skew.describe(),
                );
                report.ok = false;
                report.detail = format!("{}; but {}", report.detail, skew.describe());
                report.failure = Some(f.clone());
                next = Next::Done(Outcome::Failed(f));
            }
        }
        if let Next::Wait(p) = next {
            self.phase = p;
            self.resume = Some(out);
            return;
        }
        let mut findings = std::mem::take(&mut self.ctx.findings);
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let evidence = self.ctx.evidence.take();
        let diagnostics = facts.diagnostics();
        let elapsed = now - out.started;
        self.trace.push_back(TraceEvent {
            step: out.step,
            ok: report.ok,
            started: out.started,
            elapsed: if elapsed.is_negative() {
                time::Duration::ZERO
            } else {
                elapsed
            },
            sent: out.sent,
            status: report.status,
            detail: report.detail,
            failure: report.failure,
            findings,
            diagnostics,
            evidence,
        });
        match next {
            Next::Phase(p) | Next::Wait(p) => self.phase = p,
            Next::Done(o) => self.outcome = Some(o),
        }
    }

    /// Reads the TLS probe of `host:port`: one trace event; a fatal finding ends the sign-in.
    /// A probe that could not even connect says nothing about TLS: the request proper goes
    /// ahead and reports the connection problem at its own step.
    fn probed_tls(
        &mut self,
        now: UtcTime,
        out: Outstanding,
        host: &str,
        port: u16,
        completion: Completion,
    ) {
        let report = match completion {
            Completion::TlsProbed(r) => r,
            _ => return,
        };
        if report.connect.is_err() {
            return;
        }
        let verdict = checks::evaluate_probe(&report, host, port, self.ctx.address.domain(), now);
        let elapsed = now - out.started;
        self.trace.push_back(TraceEvent {
            step: Step::Tls,
            ok: verdict.failure.is_none(),
            started: out.started,
            elapsed: if elapsed.is_negative() {
                time::Duration::ZERO
            } else {
                elapsed
            },
            sent: out.sent,
            status: None,
            detail: verdict.detail,
            failure: verdict.failure.clone(),
            findings: verdict.findings,
            diagnostics: Vec::new(),
            evidence: Some(verdict.evidence),
        });
        if let Some(f) = verdict.failure {
            self.phase = Phase::Finished;
            self.outcome = Some(Outcome::Failed(f));
        }
    }

    /// The next trace event, oldest first.
    pub fn poll_trace(&mut self) -> Option<TraceEvent> {
        self.trace.pop_front()
    }

    /// `Some` once the sign-in has finished, either way.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The step the next (or outstanding) action belongs to; `None` once finished.
    pub fn current_step(&self) -> Option<Step> {
        if let Some(o) = &self.outstanding {
            return Some(o.step);
        }
        if self.outcome.is_some() {
            return None;
        }
        self.phase.request(&self.ctx).map(|r| r.step)
    }
}

/// What stays the same over the whole sign-in.
#[derive(Debug)]
struct Context {
    address: SipAddress,
    login: String,
    password: Secret<String>,
    endpoint_id: String,
    /// Autodiscover URLs already fetched (normalised), to detect redirect loops.
    visited: Vec<String>,
    redirects: usize,
    sip: SipOptions,
    /// Try the UCWA OAuth password grant after the user's settings.
    ucwa: bool,
    /// The `MsRtcOAuth href` of the Autodiscover challenge.
    oauth_url: Option<String>,
    /// Findings of the step in progress, moved into its trace event.
    findings: Vec<Finding>,
    /// Evidence of the step in progress, moved into its trace event.
    evidence: Option<Evidence>,
}

/// What the SIP half is asked to do.
#[derive(Debug)]
struct SipOptions {
    enabled: bool,
    certificates: Vec<crate::model::CachedCertificate>,
    server_ca: Option<String>,
    refresh: bool,
    sign_out: bool,
}

impl Context {
    /// Accepts a `Redirect` target or explains why not.
    fn follow(&mut self, step: Step, target: &str) -> Result<String, Failure> {
        let url = absolute_http_url(target).map_err(|why| {
            Failure::new(
                step,
                FailureKind::Malformed(format!("the Redirect link {target:?} {why}")),
                "an absolute http(s) URL",
                target,
            )
        })?;
        let key = normalise(&url);
        if self.visited.contains(&key) {
            return Err(Failure::new(
                step,
                FailureKind::RedirectLoop,
                "a Redirect to an Autodiscover server not visited yet",
                format!(
                    "a Redirect back to {target} (visited: {})",
                    self.visited.join(" → ")
                ),
            ));
        }
        if self.redirects >= MAX_REDIRECTS {
            return Err(Failure::new(
                step,
                FailureKind::TooManyRedirects,
                format!("at most {MAX_REDIRECTS} Redirect hops"),
                format!(
                    "a further Redirect to {target} after {}",
                    self.visited.join(" → ")
                ),
            ));
        }
        self.redirects += 1;
        Ok(target.to_string())
    }

    fn visit(&mut self, url: &str) {
        if let Ok(u) = url::Url::parse(url) {
            let key = normalise(&u);
            if !self.visited.contains(&key) {
                self.visited.push(key);
            }
        }
    }
}

#[derive(Debug)]
struct Outstanding {
    id: ActionId,
    step: Step,
    started: UtcTime,
    sent: String,
}

/// What a phase asks the shell for.
struct Request {
    step: Step,
    io: Io,
    /// For the trace: never a body, never a credential header.
    sent: String,
}

enum Io {
    Resolve(String),
    ResolveSrv(String),
    Http(HttpRequest),
    GenerateKey(SipAddress),
    Sip {
        host: String,
        port: u16,
        tls: bool,
        message: Vec<u8>,
    },
}

/// The trace part of a completion.
struct Report {
    ok: bool,
    status: Option<u16>,
    detail: String,
    failure: Option<Failure>,
}

enum Next {
    Phase(Phase),
    /// The action did not finish the step (no trace event yet); the next action continues it.
    Wait(Phase),
    Done(Outcome),
}

fn proceed(phase: Phase, status: Option<u16>, detail: String) -> (Next, Report) {
    (
        Next::Phase(phase),
        Report {
            ok: true,
            status,
            detail,
            failure: None,
        },
    )
}

fn fail(failure: Failure, status: Option<u16>, detail: String) -> (Next, Report) {
    (
        Next::Done(Outcome::Failed(failure.clone())),
        Report {
            ok: false,
            status,
            detail,
            failure: Some(failure),
        },
    )
}

#[derive(Debug)]
enum Phase {
    SipDns(SipDns),
    Discover(Discover),
    Redirect(FollowRedirect),
    Challenge(Challenge),
    Mex(Mex),
    Realm(Realm),
    IdpToken(IdpTokenRequest),
    WebTicket(WebTicketRequest),
    User(UserWithTicket),
    Ucwa(Box<Ucwa>),
    Sip(Box<sip::SipFlow>),
    Finished,
}

impl Phase {
    fn request(&self, ctx: &Context) -> Option<Request> {
        Some(match self {
            Phase::SipDns(p) => return p.request(),
            Phase::Discover(p) => p.request(ctx),
            Phase::Redirect(p) => autodiscover_get(Step::Lyncdiscover, &p.url),
            Phase::Challenge(p) => autodiscover_get(Step::AutodiscoverChallenge, &p.user_url),
            Phase::Mex(p) => {
                let url = format!("{}/mex", p.webticket_url);
                Request {
                    step: Step::WebTicketMex,
                    sent: format!("GET {url}"),
                    io: Io::Http(get(url, Vec::new())),
                }
            }
            Phase::Realm(p) => {
                let url = format!("{}{}&xml=1", p.realm_url, query_value(&ctx.login));
                Request {
                    step: Step::IdpRealm,
                    sent: format!("GET {url}"),
                    io: Io::Http(get(url, Vec::new())),
                }
            }
            Phase::IdpToken(p) => p.request(ctx),
            Phase::WebTicket(p) => p.request(ctx),
            Phase::User(p) => p.request(),
            Phase::Ucwa(p) => p.request(ctx),
            Phase::Sip(p) => return p.request(ctx),
            Phase::Finished => return None,
        })
    }

    fn complete(
        self,
        ctx: &mut Context,
        c: Completion,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (Next, Report) {
        match self {
            Phase::SipDns(p) => p.complete(ctx, c),
            Phase::Discover(p) => p.complete(ctx, c),
            Phase::Redirect(p) => p.complete(ctx, c),
            Phase::Challenge(p) => p.complete(ctx, c),
            Phase::Mex(p) => p.complete(c),
            Phase::Realm(p) => p.complete(c, entropy),
            Phase::IdpToken(p) => p.complete(c, entropy),
            Phase::WebTicket(p) => p.complete(c),
            Phase::User(p) => p.complete(ctx, c, entropy, now),
            Phase::Ucwa(p) => p.complete(c),
            Phase::Sip(p) => p.complete(ctx, c, entropy, now),
            // Unreachable in practice: no action is handed out once finished.
            Phase::Finished => (
                Next::Phase(Phase::Finished),
                Report {
                    ok: false,
                    status: None,
                    detail: "the sign-in had already finished; completion ignored".into(),
                    failure: None,
                },
            ),
        }
    }
}

fn get(url: String, headers: Vec<(String, String)>) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url,
        headers,
        body: None,
    }
}

fn soap_post(url: &str, action: &str, body: String) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![
            ("SOAPAction".into(), format!("\"{action}\"")),
            ("Content-Type".into(), "text/xml".into()),
        ],
        body: Some(body.into_bytes()),
    }
}

fn autodiscover_get(step: Step, url: &str) -> Request {
    Request {
        step,
        sent: format!("GET {url}"),
        io: Io::Http(get(
            url.to_string(),
            vec![("Accept".into(), AUTODISCOVER_ACCEPT.into())],
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The SIP names in DNS (troubleshooter)

/// Looks up every SRV and A name a client without Autodiscover would try, then hands over to
/// discovery. Never fatal.
#[derive(Debug)]
struct SipDns {
    domain: String,
    queue: VecDeque<(String, bool)>,
    done: Vec<DnsLookup>,
    then: Box<Phase>,
}

impl SipDns {
    fn new(domain: &str, then: Phase) -> Self {
        SipDns {
            domain: domain.to_string(),
            queue: checks::sip_dns_names(domain).into(),
            done: Vec::new(),
            then: Box::new(then),
        }
    }

    fn request(&self) -> Option<Request> {
        let (name, srv) = self.queue.front()?;
        let sent = format!(
            "SRV _sipinternaltls._tcp, _sipinternal._tcp, _sip._tls, _sip._tcp; A sipinternal, \
             sipexternal, sip (.{})",
            self.domain
        );
        Some(Request {
            step: Step::DnsSip,
            sent,
            io: if *srv {
                Io::ResolveSrv(name.clone())
            } else {
                Io::Resolve(name.clone())
            },
        })
    }

    fn complete(mut self, ctx: &mut Context, c: Completion) -> (Next, Report) {
        let Some((name, srv)) = self.queue.pop_front() else {
            return proceed(*self.then, None, "nothing to look up".into());
        };
        let mut lookup = DnsLookup {
            name,
            rtype: if srv { "SRV" } else { "A" },
            addresses: Vec::new(),
            srv: Vec::new(),
            error: None,
        };
        match c {
            Completion::SrvRecords(r) if srv => lookup.srv = r,
            Completion::Resolved(ips) if !srv => {
                lookup.addresses = ips.iter().map(|i| i.to_string()).collect();
            }
            Completion::ResolveFailed(e) => lookup.error = Some(e),
            _ => lookup.error = Some("the shell answered with another kind of result".into()),
        }
        self.done.push(lookup);
        if !self.queue.is_empty() {
            return (Next::Wait(Phase::SipDns(self)), quiet());
        }
        let (detail, findings) = checks::summarize_sip_dns(&self.domain, &self.done);
        ctx.findings.extend(findings);
        ctx.evidence = Some(Evidence::Dns { lookups: self.done });
        proceed(*self.then, None, detail)
    }
}

/// The report of an action that did not finish its step.
fn quiet() -> Report {
    Report {
        ok: true,
        status: None,
        detail: String::new(),
        failure: None,
    }
}

/// The TLS endpoint a request is about to contact, if any.
fn tls_endpoint(io: &Io) -> Option<(String, u16)> {
    match io {
        Io::Http(r) => {
            let u = url::Url::parse(&r.url).ok()?;
            if u.scheme() != "https" {
                return None;
            }
            let host = u.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
            Some((host, u.port_or_known_default()?))
        }
        Io::Sip {
            host,
            port,
            tls: true,
            ..
        } => Some((host.to_ascii_lowercase(), *port)),
        _ => None,
    }
}

/// The parts of an answer that refine a failure and feed the clock check.
fn answer_facts(c: &Completion) -> AnswerFacts {
    match c {
        Completion::Response(r) => AnswerFacts {
            status: Some(r.status),
            offers: auth_schemes(r),
            headers: r.headers.clone(),
            transport: None,
        },
        Completion::SipResponse(bytes) => {
            match lyncd_sip::Message::parse(bytes::Bytes::from(bytes.clone())) {
                Ok(m) => AnswerFacts {
                    status: m.status(),
                    headers: m
                        .headers()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    ..AnswerFacts::default()
                },
                Err(_) => AnswerFacts::default(),
            }
        }
        Completion::TransportFailed(e) => AnswerFacts {
            transport: Some(e.clone()),
            ..AnswerFacts::default()
        },
        _ => AnswerFacts::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[derive(Debug)]
struct Candidate {
    host: String,
    /// Resolve the name first (DNS discovery); an explicit server is not looked up by the core.
    resolve: bool,
    https_port: u16,
    /// `None`: no plain-http attempt (explicit server).
    http_port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Resolve,
    Https,
    Http,
}

/// Trying the discovery candidates in order.
#[derive(Debug)]
struct Discover {
    candidates: Vec<Candidate>,
    index: usize,
    stage: Stage,
    /// One line per attempt, for the final failure.
    tried: Vec<String>,
    /// The most telling HTTP answer so far (rank, kind).
    best: Option<(u8, FailureKind)>,
    sipuri: String,
}

impl Discover {
    fn new(address: &SipAddress, discovery: &Discovery) -> Self {
        let domain = address.domain();
        let candidates = match discovery {
            Discovery::Dns {
                https_port,
                http_port,
            } => ["lyncdiscoverinternal", "lyncdiscover"]
                .iter()
                .map(|label| Candidate {
                    host: format!("{label}.{domain}"),
                    resolve: true,
                    https_port: *https_port,
                    http_port: Some(*http_port),
                })
                .collect(),
            Discovery::Server { host, port } => vec![Candidate {
                host: host.clone(),
                resolve: false,
                https_port: *port,
                http_port: None,
            }],
        };
        let stage = if candidates.first().is_some_and(|c| c.resolve) {
            Stage::Resolve
        } else {
            Stage::Https
        };
        Discover {
            candidates,
            index: 0,
            stage,
            tried: Vec::new(),
            best: None,
            sipuri: query_value(&address.to_string()),
        }
    }

    fn candidate(&self) -> Option<&Candidate> {
        self.candidates.get(self.index)
    }

    fn url(&self, stage: Stage) -> String {
        let Some(c) = self.candidate() else {
            return String::new();
        };
        let (scheme, port, default) = match stage {
            Stage::Http => ("http", c.http_port.unwrap_or(80), 80),
            _ => ("https", c.https_port, 443),
        };
        let host = if c.host.contains(':') && !c.host.starts_with('[') {
            format!("[{}]", c.host)
        } else {
            c.host.clone()
        };
        if port == default {
            format!("{scheme}://{host}/?sipuri={}", self.sipuri)
        } else {
            format!("{scheme}://{host}:{port}/?sipuri={}", self.sipuri)
        }
    }

    fn request(&self, _ctx: &Context) -> Request {
        match (self.stage, self.candidate()) {
            (Stage::Resolve, Some(c)) => Request {
                step: Step::Dns,
                sent: format!("A {}", c.host),
                io: Io::Resolve(c.host.clone()),
            },
            (stage, _) => autodiscover_get(Step::Lyncdiscover, &self.url(stage)),
        }
    }

    fn all_urls(&self) -> String {
        let mut urls = Vec::new();
        for c in &self.candidates {
            let host = &c.host;
            let https = if c.https_port == 443 {
                format!("https://{host}/")
            } else {
                format!("https://{host}:{}/", c.https_port)
            };
            urls.push(https);
            if let Some(p) = c.http_port {
                urls.push(if p == 80 {
                    format!("http://{host}/")
                } else {
                    format!("http://{host}:{p}/")
                });
            }
        }
        urls.join(", ")
    }

    fn complete(mut self, ctx: &mut Context, c: Completion) -> (Next, Report) {
        let Some(host) = self.candidate().map(|c| c.host.clone()) else {
            return self.exhausted(Step::Lyncdiscover, None, "no candidate left".into());
        };
        match self.stage {
            Stage::Resolve => match c {
                Completion::Resolved(ips) if !ips.is_empty() => {
                    let list: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
                    self.stage = Stage::Https;
                    let detail = format!(
                        "{host} resolves to {}; next: ask it for the Autodiscover root over https",
                        list.join(", ")
                    );
                    proceed(Phase::Discover(self), None, detail)
                }
                other => {
                    let why = match other {
                        Completion::ResolveFailed(e) => e,
                        Completion::Resolved(_) => "no addresses".into(),
                        _ => "the shell answered a lookup with an HTTP result".into(),
                    };
                    self.tried.push(format!("{host} does not resolve ({why})"));
                    self.next_candidate(Step::Dns, None, format!("{host} does not resolve ({why})"))
                }
            },
            Stage::Https | Stage::Http => {
                let url = self.url(self.stage);
                let scheme = if self.stage == Stage::Https {
                    "https"
                } else {
                    "http"
                };
                let status = match &c {
                    Completion::Response(r) => Some(r.status),
                    _ => None,
                };
                match read_discovery(&c) {
                    Ok((hop, doc)) => {
                        ctx.visit(&url);
                        let what = describe_root(&doc);
                        hop_to_phase(ctx, Step::Lyncdiscover, hop, status, &what)
                    }
                    Err(problem) => {
                        let line = format!("{scheme}://{host} {}", problem.got);
                        self.tried.push(line.clone());
                        if self.best.as_ref().is_none_or(|b| problem.rank > b.0) {
                            self.best = Some((problem.rank, problem.kind.clone()));
                        }
                        let candidate_failure = Failure::new(
                            Step::Lyncdiscover,
                            problem.kind,
                            discovery_expectation(),
                            &problem.got,
                        );
                        if self.stage == Stage::Https
                            && self.candidate().is_some_and(|c| c.http_port.is_some())
                        {
                            self.stage = Stage::Http;
                            let next = self.url(Stage::Http);
                            let detail =
                                format!("{line}; skipped, not fatal: next try plain http ({next})");
                            (
                                Next::Phase(Phase::Discover(self)),
                                Report {
                                    ok: false,
                                    status,
                                    detail,
                                    failure: Some(candidate_failure),
                                },
                            )
                        } else {
                            self.next_candidate_with(
                                Step::Lyncdiscover,
                                status,
                                line,
                                Some(candidate_failure),
                            )
                        }
                    }
                }
            }
        }
    }

    fn next_candidate(self, step: Step, status: Option<u16>, line: String) -> (Next, Report) {
        self.next_candidate_with(step, status, line, None)
    }

    /// The current candidate is done without a usable answer: move on, or give up.
    fn next_candidate_with(
        mut self,
        step: Step,
        status: Option<u16>,
        line: String,
        candidate_failure: Option<Failure>,
    ) -> (Next, Report) {
        self.index += 1;
        match self.candidate() {
            Some(c) => {
                let next = if c.resolve {
                    format!("look up {}", c.host)
                } else {
                    format!("ask {}", c.host)
                };
                self.stage = if c.resolve {
                    Stage::Resolve
                } else {
                    Stage::Https
                };
                let detail = format!("{line}; skipped, not fatal: next {next}");
                (
                    Next::Phase(Phase::Discover(self)),
                    Report {
                        ok: false,
                        status,
                        detail,
                        failure: candidate_failure,
                    },
                )
            }
            None => self.exhausted(step, status, line),
        }
    }

    /// Every candidate failed.
    fn exhausted(self, step: Step, status: Option<u16>, line: String) -> (Next, Report) {
        let got = if self.tried.is_empty() {
            line.clone()
        } else {
            self.tried.join("; ")
        };
        let failure = match self.best {
            Some((_, kind)) => Failure::new(Step::Lyncdiscover, kind, discovery_expectation(), got),
            None => Failure::new(
                step,
                FailureKind::NoDiscoveryAnswer,
                format!("an Autodiscover answer from one of {}", self.all_urls()),
                got,
            ),
        };
        let detail = format!("{line}; that was the last candidate: discovery failed");
        fail(failure, status, detail)
    }
}

fn discovery_expectation() -> String {
    format!("HTTP 200 with Content-Type {AUTODISCOVER_XML} and a Root with a User or Redirect link")
}

/// A reason an Autodiscover answer is not usable, ranked by how far the server got.
struct Problem {
    kind: FailureKind,
    got: String,
    /// 0 no HTTP answer, 1 wrong status, 2 wrong content, 3 right content but unusable.
    rank: u8,
}

enum Hop {
    Redirect(String),
    User(String),
}

/// A usable Autodiscover answer: 200, the XML media type, a document that parses.
fn read_autodiscover(resp: &HttpResponse) -> Result<Document, Problem> {
    if resp.status != 200 {
        return Err(Problem {
            kind: FailureKind::UnexpectedStatus,
            got: format!("answered {}", describe_response(resp)),
            rank: 1,
        });
    }
    let ctype = resp.header("Content-Type").unwrap_or("");
    // Case-sensitive prefix, as pidgin-sipe checks.
    if !ctype.starts_with(AUTODISCOVER_XML) {
        return Err(Problem {
            kind: FailureKind::NotAutodiscoverContent,
            got: format!("answered {}", describe_response(resp)),
            rank: 2,
        });
    }
    let text = std::str::from_utf8(&resp.body).map_err(|_| Problem {
        kind: FailureKind::Malformed("the Autodiscover document is not UTF-8".into()),
        got: "answered a document that is not UTF-8".into(),
        rank: 3,
    })?;
    Document::from_xml(text).map_err(|e| Problem {
        kind: FailureKind::Malformed(e.to_string()),
        got: format!("answered a document that cannot be read ({e})"),
        rank: 3,
    })
}

fn next_hop(doc: &Document) -> Result<Hop, Problem> {
    match doc.next_hop() {
        Some(NextHop::Redirect(h)) => Ok(Hop::Redirect(h.to_string())),
        Some(NextHop::User(h)) => match absolute_http_url(h) {
            Ok(_) => Ok(Hop::User(h.to_string())),
            Err(why) => Err(Problem {
                kind: FailureKind::Malformed(format!("the User link {h:?} {why}")),
                got: format!("answered a User link {h:?} that {why}"),
                rank: 3,
            }),
        },
        None => Err(Problem {
            kind: FailureKind::NoUserLink,
            got: format!("answered {}", describe_root(doc)),
            rank: 3,
        }),
    }
}

fn read_discovery(c: &Completion) -> Result<(Hop, Document), Problem> {
    match c {
        Completion::Response(resp) => {
            let doc = read_autodiscover(resp)?;
            let hop = next_hop(&doc)?;
            Ok((hop, doc))
        }
        Completion::TransportFailed(e) => Err(Problem {
            kind: checks::transport_kind(e),
            got: format!("gave no answer: {e}"),
            rank: 0,
        }),
        _ => Err(Problem {
            kind: FailureKind::Unreachable,
            got: "gave no answer (the shell reported a DNS result for an HTTP request)".into(),
            rank: 0,
        }),
    }
}

/// After an Autodiscover document named the next hop.
fn hop_to_phase(
    ctx: &mut Context,
    step: Step,
    hop: Hop,
    status: Option<u16>,
    what: &str,
) -> (Next, Report) {
    match hop {
        Hop::User(user_url) => {
            let detail = format!(
                "answered {what}; next: ask the user resource {user_url} (a 401 naming the Web \
                 Ticket service is expected)"
            );
            proceed(Phase::Challenge(Challenge { user_url }), status, detail)
        }
        Hop::Redirect(target) => match ctx.follow(step, &target) {
            Ok(url) => {
                let detail = format!("answered {what}; next: follow the Redirect to {url}");
                proceed(Phase::Redirect(FollowRedirect { url }), status, detail)
            }
            Err(f) => {
                let detail = format!("answered {what}; not following it: {}", f.got);
                fail(f, status, detail)
            }
        },
    }
}

/// Following a `Redirect` link to another Autodiscover root.
#[derive(Debug)]
struct FollowRedirect {
    url: String,
}

impl FollowRedirect {
    fn complete(self, ctx: &mut Context, c: Completion) -> (Next, Report) {
        let status = status_of(&c);
        match read_discovery(&c) {
            Ok((hop, doc)) => {
                ctx.visit(&self.url);
                hop_to_phase(ctx, Step::Lyncdiscover, hop, status, &describe_root(&doc))
            }
            Err(p) => {
                let failure = Failure::new(
                    Step::Lyncdiscover,
                    p.kind,
                    discovery_expectation(),
                    format!("{} {}", self.url, p.got),
                );
                fail(failure, status, format!("the Redirect target {}", p.got))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiscover challenge

#[derive(Debug)]
struct Challenge {
    user_url: String,
}

impl Challenge {
    fn complete(self, ctx: &mut Context, c: Completion) -> (Next, Report) {
        let step = Step::AutodiscoverChallenge;
        let expected = "HTTP 401 with an X-MS-WebTicketURL header";
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &self.user_url, &other),
        };
        let status = Some(resp.status);
        if resp.status == 401 {
            ctx.oauth_url = oauth_href(&resp);
        }
        match resp.status {
            401 => match resp.header("X-MS-WebTicketURL").map(str::trim) {
                Some(v) if !v.is_empty() => {
                    let webticket_url = v.trim_end_matches('/').to_string();
                    if let Err(why) = absolute_http_url(&webticket_url) {
                        let f = Failure::new(
                            step,
                            FailureKind::Malformed(format!("X-MS-WebTicketURL {v:?} {why}")),
                            expected,
                            format!("X-MS-WebTicketURL: {v}"),
                        );
                        return fail(
                            f,
                            status,
                            format!("answered 401 but X-MS-WebTicketURL {why}"),
                        );
                    }
                    let detail = format!(
                        "answered 401 with the Web Ticket service {webticket_url}; next: read its \
                         metadata"
                    );
                    proceed(
                        Phase::Mex(Mex {
                            user_url: self.user_url,
                            webticket_url,
                        }),
                        status,
                        detail,
                    )
                }
                _ => {
                    let offers = auth_schemes(&resp);
                    let got = if offers.is_empty() {
                        "401 without X-MS-WebTicketURL and without WWW-Authenticate".to_string()
                    } else {
                        format!(
                            "401 without X-MS-WebTicketURL; WWW-Authenticate offers {}",
                            offers.join(", ")
                        )
                    };
                    let f = Failure::new(step, FailureKind::NoWebTicketUrl, expected, &got);
                    fail(
                        f,
                        status,
                        format!("answered {got}: no way to get a web ticket"),
                    )
                }
            },
            404 => {
                let f = Failure::new(
                    step,
                    FailureKind::UserNotFound,
                    expected,
                    format!("{} for {}", describe_response(&resp), self.user_url),
                );
                fail(
                    f,
                    status,
                    "answered 404: the server does not know this user".into(),
                )
            }
            200 => {
                // A user homed elsewhere may be redirected before any ticket is asked for.
                let redirect = read_autodiscover(&resp)
                    .ok()
                    .and_then(|d| match d.next_hop() {
                        Some(NextHop::Redirect(h)) => Some(h.to_string()),
                        _ => None,
                    });
                match redirect {
                    Some(target) => {
                        ctx.visit(&self.user_url);
                        hop_to_phase(
                            ctx,
                            step,
                            Hop::Redirect(target),
                            status,
                            "a User document with a Redirect",
                        )
                    }
                    None => {
                        let f = Failure::new(
                            step,
                            FailureKind::UnexpectedStatus,
                            expected,
                            format!("{} without asking for a ticket", describe_response(&resp)),
                        );
                        fail(
                            f,
                            status,
                            "answered 200 without asking for a web ticket, and without a Redirect"
                                .into(),
                        )
                    }
                }
            }
            _ => {
                let f = Failure::new(
                    step,
                    FailureKind::UnexpectedStatus,
                    expected,
                    describe_response(&resp),
                );
                fail(f, status, format!("answered {}", describe_response(&resp)))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Web Ticket metadata

#[derive(Debug)]
struct Mex {
    user_url: String,
    webticket_url: String,
}

impl Mex {
    fn complete(self, c: Completion) -> (Next, Report) {
        let step = Step::WebTicketMex;
        let url = format!("{}/mex", self.webticket_url);
        let expected = "HTTP 200 with a WSDL whose first service has a WsFedBearer port";
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &url, &other),
        };
        let status = Some(resp.status);
        if resp.status != 200 {
            let f = Failure::new(
                step,
                FailureKind::UnexpectedStatus,
                expected,
                describe_response(&resp),
            );
            return fail(f, status, format!("answered {}", describe_response(&resp)));
        }
        let mex = match body_text(&resp).and_then(soap::parse_mex) {
            Ok(m) => m,
            Err(why) => {
                let f = Failure::new(
                    step,
                    FailureKind::Malformed(format!("the Web Ticket metadata: {why}")),
                    expected,
                    why.clone(),
                );
                return fail(f, status, format!("answered 200, but {why}"));
            }
        };
        let Some(wsfed) = mex.wsfed_bearer.clone() else {
            let ports = if mex.ports.is_empty() {
                "no ports".to_string()
            } else {
                format!("ports {}", mex.ports.join(", "))
            };
            let f = Failure::new(
                step,
                FailureKind::MexWithoutWsFedBearer,
                expected,
                format!("a WSDL with {ports}"),
            );
            return fail(
                f,
                status,
                format!("answered a WSDL with {ports}; no WsFedBearer port"),
            );
        };
        if let Err(why) = absolute_http_url(&wsfed) {
            let f = Failure::new(
                step,
                FailureKind::Malformed(format!("the WsFedBearer location {wsfed:?} {why}")),
                expected,
                format!("WsFedBearer at {wsfed:?}"),
            );
            return fail(f, status, format!("the WsFedBearer location {why}"));
        }
        let (idp_url, idp_note) = match &mex.issuer {
            Some(issuer) => match absolute_http_url(issuer) {
                Ok(_) => (
                    issuer.clone(),
                    format!("its policy names the identity provider {issuer}"),
                ),
                Err(why) => {
                    let f = Failure::new(
                        step,
                        FailureKind::MexWithoutIdp,
                        "an IssuedToken/Issuer/Address that is an absolute http(s) URL",
                        format!("Issuer Address {issuer:?}"),
                    );
                    return fail(f, status, format!("the identity provider address {why}"));
                }
            },
            None => (
                DEFAULT_RST2_URL.to_string(),
                format!(
                    "its policy names no identity provider, so use {DEFAULT_RST2_URL} as \
                     pidgin-sipe does"
                ),
            ),
        };
        let realm_url = match url::Url::parse(&idp_url) {
            Ok(u) => format!(
                "{}/getuserrealm.srf?login=",
                u.origin().ascii_serialization()
            ),
            Err(_) => format!("{idp_url}/getuserrealm.srf?login="),
        };
        let detail =
            format!("answered the WSDL: WsFedBearer at {wsfed}; {idp_note}; next: realm discovery");
        proceed(
            Phase::Realm(Realm {
                auth: WebAuth {
                    user_url: self.user_url,
                    webticket_url: self.webticket_url,
                    wsfed_url: wsfed,
                    idp_url,
                },
                realm_url,
            }),
            status,
            detail,
        )
    }
}

/// The web services a ticket is obtained from and for.
#[derive(Clone, Debug)]
struct WebAuth {
    /// Autodiscover user URL, byte-exact.
    user_url: String,
    webticket_url: String,
    /// `address/@location` of the WsFedBearer port.
    wsfed_url: String,
    /// The IdP's RST2 endpoint.
    idp_url: String,
}

// ---------------------------------------------------------------------------------------------
// Identity provider

#[derive(Debug)]
struct Realm {
    auth: WebAuth,
    /// `<idp origin>/getuserrealm.srf?login=`; the login and `&xml=1` are appended on request.
    realm_url: String,
}

impl Realm {
    fn complete(self, c: Completion, entropy: &mut dyn Entropy) -> (Next, Report) {
        let step = Step::IdpRealm;
        let status = status_of(&c);
        let note = match &c {
            Completion::Response(r) if r.status == 200 => {
                match body_text(r).and_then(soap::parse_realm) {
                    Ok(info) => {
                        if let Some(sts) = info.sts_auth_url {
                            let f = Failure::new(
                                step,
                                FailureKind::FederatedRealm,
                                "a managed realm (RealmInfo without STSAuthURL)",
                                format!(
                                    "a federated realm{} with STSAuthURL {sts}",
                                    info.namespace_type
                                        .map(|t| format!(" (NameSpaceType {t})"))
                                        .unwrap_or_default()
                                ),
                            );
                            let detail = format!(
                                "the domain is federated: passwords are checked at {sts}, which \
                                 this client does not support"
                            );
                            return fail(f, status, detail);
                        }
                        Ok(match info.namespace_type {
                            Some(t) => format!("answered a {t} realm (no STSAuthURL)"),
                            None => "answered a realm without STSAuthURL".to_string(),
                        })
                    }
                    Err(why) => Err(format!("answered 200, but {why}")),
                }
            }
            Completion::Response(r) => Err(format!("answered {}", describe_response(r))),
            Completion::TransportFailed(e) => Err(format!("gave no answer: {e}")),
            _ => Err("gave no answer".to_string()),
        };
        let next = Phase::IdpToken(IdpTokenRequest {
            auth: self.auth,
            message_id: uuid_v4(entropy),
        });
        let (ok, detail) = match note {
            Ok(n) => (
                true,
                format!("{n}; next: send the password to the identity provider"),
            ),
            Err(n) => (
                false,
                format!(
                    "{n}; not fatal (a client treats this as a managed domain): next send the \
                     password to the identity provider"
                ),
            ),
        };
        (
            Next::Phase(next),
            Report {
                ok,
                status,
                detail,
                failure: None,
            },
        )
    }
}

#[derive(Debug)]
struct IdpTokenRequest {
    auth: WebAuth,
    message_id: String,
}

impl IdpTokenRequest {
    fn request(&self, ctx: &Context) -> Request {
        let body = soap::rst2_request(
            &self.auth.idp_url,
            &self.message_id,
            &ctx.login,
            ctx.password.expose(),
            &self.auth.wsfed_url,
        );
        Request {
            step: Step::IdpToken,
            sent: format!(
                "POST {} (WS-Trust RST for {} with user name {} and the password; body not shown)",
                self.auth.idp_url, self.auth.wsfed_url, ctx.login
            ),
            io: Io::Http(soap_post(&self.auth.idp_url, soap::RST2_ACTION, body)),
        }
    }

    fn complete(self, c: Completion, entropy: &mut dyn Entropy) -> (Next, Report) {
        let (token, status) = match read_idp_answer(Step::IdpToken, &self.auth.idp_url, c) {
            Ok(t) => t,
            Err(done) => return done,
        };
        let validity = match (token.created, token.expires) {
            (_, Some(e)) => format!("valid until {}", format_iso(e)),
            _ => "with an unreadable expiry (used once)".to_string(),
        };
        let mut client_entropy = vec![0u8; ENTROPY_LEN];
        entropy.fill(&mut client_entropy);
        let detail = format!(
            "answered 200 with an identity token {validity}; next: exchange it at {}",
            self.auth.wsfed_url
        );
        proceed(
            Phase::WebTicket(WebTicketRequest {
                auth: self.auth,
                token,
                client_entropy: Secret::new(client_entropy),
                message_id: uuid_v4(entropy),
            }),
            status,
            detail,
        )
    }
}

/// Reads the identity provider's answer to RST2.srf (http.md §5): a token, or the failure that
/// ends `step` (a SOAP fault — wrong password included — a bad status, or an unreadable body).
#[allow(clippy::result_large_err)]
fn read_idp_answer(
    step: Step,
    url: &str,
    c: Completion,
) -> Result<(IdpToken, Option<u16>), (Next, Report)> {
    let expected = "HTTP 200 with a token (Lifetime and EncryptedData)";
    let resp = match c {
        Completion::Response(r) => r,
        other => return Err(unreachable_failure(step, url, &other)),
    };
    let status = Some(resp.status);
    let text = match body_text(&resp) {
        Ok(t) => t,
        Err(why) => {
            let f = Failure::new(step, FailureKind::IdpAnswerMalformed, expected, why.clone());
            return Err(fail(f, status, format!("answered {}: {why}", resp.status)));
        }
    };
    if resp.status != 200 {
        if let Some(fault) = soap::find_fault(text) {
            return Err(idp_fault(step, expected, status, &fault));
        }
        let f = Failure::new(
            step,
            FailureKind::UnexpectedStatus,
            expected,
            describe_response(&resp),
        );
        return Err(fail(
            f,
            status,
            format!("answered {}", describe_response(&resp)),
        ));
    }
    match soap::read_idp_token(text) {
        Ok(token) => Ok((token, status)),
        Err(IdpAnswer::Fault(fault)) => Err(idp_fault(step, expected, status, &fault)),
        Err(IdpAnswer::Malformed(why)) => {
            let f = Failure::new(step, FailureKind::IdpAnswerMalformed, expected, why.clone());
            Err(fail(f, status, format!("answered 200, but {why}")))
        }
    }
}

/// What a refusing web service answered: the status, and its SOAP fault or `X-Ms-diagnostics`.
fn describe_refusal(resp: &HttpResponse, text: Result<&str, &String>) -> String {
    let got = describe_response(resp);
    if let Some(fault) = text.ok().and_then(soap::find_fault) {
        format!("{got} with {}", fault.describe())
    } else if let Some(diag) = resp.header("X-Ms-diagnostics") {
        format!("{got} with X-Ms-diagnostics: {diag}")
    } else {
        got
    }
}

fn idp_fault(step: Step, expected: &str, status: Option<u16>, fault: &SoapFault) -> (Next, Report) {
    let kind = if fault.is_bad_credentials() {
        FailureKind::BadCredentials
    } else {
        FailureKind::IdpFault
    };
    let got = format!("a SOAP fault: {}", fault.describe());
    let detail = match kind {
        FailureKind::BadCredentials => {
            format!("refused the user name or password: {}", fault.describe())
        }
        _ => format!("refused to issue a token: {}", fault.describe()),
    };
    fail(Failure::new(step, kind, expected, got), status, detail)
}

// ---------------------------------------------------------------------------------------------
// Web ticket

#[derive(Debug)]
struct WebTicketRequest {
    auth: WebAuth,
    token: IdpToken,
    client_entropy: Secret<Vec<u8>>,
    message_id: String,
}

impl WebTicketRequest {
    fn request(&self, ctx: &Context) -> Request {
        let entropy_b64 = STANDARD.encode(self.client_entropy.expose());
        let body = soap::webticket_request(&soap::WebTicketRequest {
            wsfed_url: &self.auth.wsfed_url,
            message_id: &self.message_id,
            lifetime: &self.token.lifetime,
            encrypted_data: &self.token.encrypted_data,
            context: &ctx.endpoint_id,
            applies_to: &self.auth.user_url,
            sip_uri: &ctx.address.sip_uri(),
            entropy_b64: &entropy_b64,
        });
        Request {
            step: Step::WebTicket,
            sent: format!(
                "POST {} (WS-Trust RST carrying the identity token, for {}; body not shown)",
                self.auth.wsfed_url, self.auth.user_url
            ),
            io: Io::Http(soap_post(
                &self.auth.wsfed_url,
                soap::WEBTICKET_ACTION,
                body,
            )),
        }
    }

    fn complete(self, c: Completion) -> (Next, Report) {
        let (ticket, key_note, status) = match read_ticket_answer(
            Step::WebTicket,
            &self.auth.wsfed_url,
            c,
            self.client_entropy.expose(),
        ) {
            Ok(t) => t,
            Err(done) => return done,
        };
        let detail = format!(
            "answered 200 with web ticket {} valid until {} ({key_note}); next: present it to {}",
            ticket.assertion_id,
            format_iso(ticket.expires),
            self.auth.user_url
        );
        proceed(
            Phase::User(UserWithTicket {
                auth: self.auth,
                ticket,
            }),
            status,
            detail,
        )
    }
}

/// Reads a WsFedBearer answer into a ticket with its proof key (shared by the Autodiscover
/// ticket and the CertProv ticket). `Err` is the finished step (built once per sign-in, so its
/// size does not matter).
#[allow(clippy::result_large_err)]
fn read_ticket_answer(
    step: Step,
    url: &str,
    c: Completion,
    client_entropy: &[u8],
) -> Result<(WebTicket, &'static str, Option<u16>), (Next, Report)> {
    let expected = "HTTP 200 with a SAML Assertion, a Lifetime and the server's entropy";
    let resp = match c {
        Completion::Response(r) => r,
        other => return Err(unreachable_failure(step, url, &other)),
    };
    let status = Some(resp.status);
    let text = body_text(&resp);
    if resp.status != 200 {
        let got = describe_refusal(&resp, text.as_deref());
        let f = Failure::new(step, FailureKind::WebTicketRejected, expected, &got);
        return Err(fail(
            f,
            status,
            format!("refused the identity token: {got}"),
        ));
    }
    let text = match text {
        Ok(t) => t,
        Err(why) => {
            let f = Failure::new(step, FailureKind::WebTicketMalformed, expected, why.clone());
            return Err(fail(f, status, format!("answered 200, but {why}")));
        }
    };
    let raw = match soap::read_web_ticket(text) {
        Ok(r) => r,
        Err(IdpAnswer::Fault(fault)) => {
            let got = format!("a SOAP fault: {}", fault.describe());
            let f = Failure::new(step, FailureKind::WebTicketRejected, expected, &got);
            return Err(fail(
                f,
                status,
                format!("refused the identity token: {got}"),
            ));
        }
        Err(IdpAnswer::Malformed(why)) => {
            let f = Failure::new(step, FailureKind::WebTicketMalformed, expected, why.clone());
            return Err(fail(f, status, format!("answered 200, but {why}")));
        }
    };
    let (proof_key, key_note) = match raw.server_entropy.as_deref() {
        Some(b64) => {
            let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match STANDARD.decode(cleaned) {
                Ok(server) => (
                    psha1(client_entropy, &server, ENTROPY_LEN),
                    "proof key derived from both entropies",
                ),
                Err(_) => {
                    let f = Failure::new(
                        step,
                        FailureKind::WebTicketMalformed,
                        expected,
                        "a BinarySecret (server entropy) that is not base64",
                    );
                    return Err(fail(
                        f,
                        status,
                        "answered 200, but the server entropy is not base64".into(),
                    ));
                }
            }
        }
        None => (
            client_entropy.to_vec(),
            "no server entropy, so the client entropy is the proof key",
        ),
    };
    let ticket = WebTicket {
        assertion: Secret::new(raw.assertion.clone()),
        assertion_id: raw.assertion_id.clone(),
        expires: raw.expires,
        proof_key: Secret::new(proof_key),
        lifetime: raw.lifetime.clone(),
    };
    Ok((ticket, key_note, status))
}

// ---------------------------------------------------------------------------------------------
// Autodiscover with the ticket

#[derive(Debug)]
struct UserWithTicket {
    auth: WebAuth,
    ticket: WebTicket,
}

impl UserWithTicket {
    fn request(&self) -> Request {
        let opaque = STANDARD.encode(self.ticket.assertion.expose().as_bytes());
        Request {
            step: Step::AutodiscoverUser,
            sent: format!(
                "GET {} (with the web ticket in X-MS-WebTicket)",
                self.auth.user_url
            ),
            io: Io::Http(get(
                self.auth.user_url.clone(),
                vec![
                    ("Accept".into(), AUTODISCOVER_ACCEPT.into()),
                    ("X-MS-WebTicket".into(), format!("opaque={opaque}")),
                ],
            )),
        }
    }

    fn complete(
        self,
        ctx: &mut Context,
        c: Completion,
        entropy: &mut dyn Entropy,
        now: UtcTime,
    ) -> (Next, Report) {
        let step = Step::AutodiscoverUser;
        let expected = "HTTP 200 with an Autodiscover User document naming the SIP pool";
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &self.auth.user_url, &other),
        };
        let status = Some(resp.status);
        match resp.status {
            200 => {}
            401 => {
                let f = Failure::new(
                    step,
                    FailureKind::TicketRefused,
                    expected,
                    format!("{} to the web ticket", describe_response(&resp)),
                );
                return fail(
                    f,
                    status,
                    "answered 401 again: the web ticket was refused".into(),
                );
            }
            404 => {
                let f = Failure::new(
                    step,
                    FailureKind::UserNotFound,
                    expected,
                    format!("{} for {}", describe_response(&resp), ctx.address),
                );
                return fail(
                    f,
                    status,
                    "answered 404: the server does not know this user".into(),
                );
            }
            _ => {
                let f = Failure::new(
                    step,
                    FailureKind::UnexpectedStatus,
                    expected,
                    describe_response(&resp),
                );
                return fail(f, status, format!("answered {}", describe_response(&resp)));
            }
        }
        let doc = match read_autodiscover(&resp) {
            Ok(d) => d,
            Err(p) => {
                let f = Failure::new(step, p.kind, expected, p.got.clone());
                return fail(f, status, p.got);
            }
        };
        if let Some(NextHop::Redirect(target)) = doc.next_hop() {
            // Homed elsewhere: start over at that server's root (then challenge, ticket, …).
            let target = target.to_string();
            ctx.visit(&self.auth.user_url);
            return hop_to_phase(
                ctx,
                step,
                Hop::Redirect(target),
                status,
                "a User document with a Redirect (the user is homed on another server)",
            );
        }
        let pool = doc.sip_endpoints();
        if pool.is_empty() {
            let f = Failure::new(
                step,
                FailureKind::NoSipPool,
                "a User document with SipClientInternalAccess / SipClientExternalAccess (fqdn, \
                 non-zero port) for its AccessLocation",
                describe_user(&doc),
            );
            return fail(
                f,
                status,
                format!("answered {}: no SIP pool", describe_user(&doc)),
            );
        }
        let list: Vec<String> = pool
            .iter()
            .map(|e| format!("{}:{}", e.fqdn, e.port))
            .collect();
        let discovered = Discovered {
            pool,
            user_url: self.auth.user_url.clone(),
            webticket_url: self.auth.webticket_url.clone(),
            idp_url: self.auth.idp_url.clone(),
            web_ticket: self.ticket,
        };
        if ctx.ucwa {
            let Some(url) = ctx.oauth_url.clone() else {
                let f = Failure::new(
                    Step::UcwaOauth,
                    FailureKind::UcwaRefused,
                    "a 'WWW-Authenticate: MsRtcOAuth href=…' offer in the Autodiscover challenge",
                    "the challenge offered no MsRtcOAuth token URL: mobile (UCWA) clients cannot \
                     sign in here",
                );
                return fail(
                    f,
                    status,
                    "no MsRtcOAuth offer to test the mobile sign-in".into(),
                );
            };
            let detail = format!(
                "answered the user's settings: SIP pool {}; next: the mobile (UCWA) OAuth sign-in \
                 at {url}",
                list.join(", ")
            );
            let then = if ctx.sip.enabled {
                let (flow, _) = sip::SipFlow::start(ctx, self.auth, discovered, entropy, now);
                AfterUcwa::Sip(Box::new(flow))
            } else {
                AfterUcwa::Done(discovered)
            };
            return proceed(Phase::Ucwa(Box::new(Ucwa { url, then })), status, detail);
        }
        if ctx.sip.enabled {
            let (flow, note) = sip::SipFlow::start(ctx, self.auth, discovered, entropy, now);
            let detail = format!(
                "answered the user's settings: SIP pool {}; the web half of the sign-in is done; \
                 {note}",
                list.join(", ")
            );
            return proceed(Phase::Sip(Box::new(flow)), status, detail);
        }
        let detail = format!(
            "answered the user's settings: SIP pool {} (try in this order); the web half of the \
             sign-in is done",
            list.join(", ")
        );
        (
            Next::Done(Outcome::Discovered(discovered)),
            Report {
                ok: true,
                status,
                detail,
                failure: None,
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The mobile (UCWA) sign-in

/// `POST grant_type=password` at the `MsRtcOAuth` URL: what a mobile client does where a
/// desktop client asks for a web ticket (diagnostics row 17).
#[derive(Debug)]
struct Ucwa {
    url: String,
    then: AfterUcwa,
}

#[derive(Debug)]
enum AfterUcwa {
    Sip(Box<sip::SipFlow>),
    Done(Discovered),
}

impl Ucwa {
    fn request(&self, ctx: &Context) -> Request {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("username", &ctx.login)
            .append_pair("password", ctx.password.expose())
            .finish();
        Request {
            step: Step::UcwaOauth,
            sent: format!("POST {} (grant_type=password)", self.url),
            io: Io::Http(HttpRequest {
                method: Method::Post,
                url: self.url.clone(),
                headers: vec![(
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded;charset=UTF-8".into(),
                )],
                body: Some(body.into_bytes()),
            }),
        }
    }

    fn complete(self, c: Completion) -> (Next, Report) {
        let step = Step::UcwaOauth;
        let expected = "HTTP 200 with a JSON access_token";
        let resp = match c {
            Completion::Response(r) => r,
            other => return unreachable_failure(step, &self.url, &other),
        };
        let status = Some(resp.status);
        let json: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if resp.status == 200 && field("access_token").is_some() {
            let detail = format!(
                "answered 200 with an access token ({} type, expires in {} s): mobile clients \
                 can sign in",
                field("token_type").unwrap_or_else(|| "unknown".into()),
                json.as_ref()
                    .and_then(|j| j.get("expires_in"))
                    .map_or_else(|| "?".to_string(), |v| v.to_string())
            );
            return match self.then {
                AfterUcwa::Sip(flow) => proceed(Phase::Sip(flow), status, detail),
                AfterUcwa::Done(d) => (
                    Next::Done(Outcome::Discovered(d)),
                    Report {
                        ok: true,
                        status,
                        detail,
                        failure: None,
                    },
                ),
            };
        }
        let got = match field("error") {
            Some(e) => format!(
                "{} with error \"{e}\"{}",
                describe_response(&resp),
                field("error_description")
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            None => describe_response(&resp),
        };
        let f = Failure::new(step, FailureKind::UcwaRefused, expected, &got);
        fail(f, status, format!("answered {got}"))
    }
}

/// The `href` of a `WWW-Authenticate: MsRtcOAuth href="…",grant_type="…"` offer.
fn oauth_href(resp: &HttpResponse) -> Option<String> {
    resp.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .filter_map(|(_, v)| v.trim().strip_prefix("MsRtcOAuth"))
        .find_map(|rest| {
            let at = rest.find("href=\"")? + 6;
            let end = rest[at..].find('"')?;
            Some(rest[at..at + end].to_string())
        })
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn status_of(c: &Completion) -> Option<u16> {
    match c {
        Completion::Response(r) => Some(r.status),
        _ => None,
    }
}

fn unreachable_failure(step: Step, url: &str, c: &Completion) -> (Next, Report) {
    let why = match c {
        Completion::TransportFailed(e) => e.to_string(),
        Completion::ResolveFailed(e) => format!("the name does not resolve ({e})"),
        _ => "the shell reported a DNS result for an HTTP request".to_string(),
    };
    let f = Failure::new(
        step,
        FailureKind::Unreachable,
        format!("an HTTP answer from {url}"),
        why.clone(),
    );
    fail(f, None, format!("no answer: {why}"))
}

fn body_text(resp: &HttpResponse) -> Result<&str, String> {
    std::str::from_utf8(&resp.body).map_err(|_| "the body is not UTF-8 text".to_string())
}

fn describe_response(resp: &HttpResponse) -> String {
    let ctype = resp.header("Content-Type").map_or_else(
        || "no Content-Type".to_string(),
        |c| format!("Content-Type {c}"),
    );
    format!("HTTP {} ({ctype}, {} bytes)", resp.status, resp.body.len())
}

fn describe_root(doc: &Document) -> String {
    let kind = match doc {
        Document::Root { .. } => "a Root",
        Document::User { .. } => "a User document",
    };
    let tokens: Vec<&str> = doc.links().iter().map(|l| l.token.as_str()).collect();
    if tokens.is_empty() {
        format!("{kind} without links")
    } else {
        format!("{kind} with links {}", tokens.join(", "))
    }
}

fn describe_user(doc: &Document) -> String {
    match doc {
        Document::Root { .. } => describe_root(doc),
        Document::User { access, user } => {
            let ep = |e: &Option<lyncd_discover::SipEndpoint>| {
                e.as_ref()
                    .map_or_else(|| "none".to_string(), |e| format!("{}:{}", e.fqdn, e.port))
            };
            format!(
                "a User document with AccessLocation {}, SipClientInternalAccess {}, \
                 SipClientExternalAccess {}",
                access.map_or_else(|| "unset".to_string(), |a| format!("{a:?}")),
                ep(&user.sip_internal),
                ep(&user.sip_external)
            )
        }
    }
}

fn auth_schemes(resp: &HttpResponse) -> Vec<String> {
    resp.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .filter_map(|(_, v)| v.split_whitespace().next())
        .map(|s| s.trim_end_matches(',').to_string())
        .collect()
}

fn absolute_http_url(s: &str) -> Result<url::Url, &'static str> {
    let u = url::Url::parse(s).map_err(|_| "is not an absolute URL")?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("is not an http(s) URL");
    }
    Ok(u)
}

/// For loop detection: scheme and host case-folded by the URL parser, path and query as given.
fn normalise(u: &url::Url) -> String {
    u.as_str().to_string()
}

/// A query value as pidgin-sipe writes it (`@` literal), with only characters that would break
/// the URL percent-encoded.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@!$'()*,;:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A random UUID in version-4 form, from the injected entropy.
fn uuid_v4(entropy: &mut dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lyncd_core::SeededEntropy;

    #[test]
    fn uuid_has_v4_shape() {
        let u = uuid_v4(&mut SeededEntropy::new(7));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid_v4(&mut SeededEntropy::new(8)));
    }

    #[test]
    fn query_values_keep_the_at_sign() {
        assert_eq!(query_value("alice@contoso.com"), "alice@contoso.com");
        assert_eq!(query_value("a&b c\\d@x"), "a%26b%20c%5Cd@x");
    }
}
