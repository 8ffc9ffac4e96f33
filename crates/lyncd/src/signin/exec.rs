//! The executor: performs the I/O the sans-IO sign-in core asks for (name lookups, HTTP) and
//! feeds the results back. It makes no protocol decision.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use lyncd_client::{
    Action, Completion, HttpRequest, HttpResponse, Method, SignIn, TraceEvent, TransportError,
};
use lyncd_core::{OsEntropy, UtcTime};

/// How names are looked up: the system resolver (which also reads /etc/hosts), except for names
/// with an override.
pub struct Executor {
    http: reqwest::Client,
    overrides: HashMap<String, IpAddr>,
    /// When set, only overridden names resolve (the demo's private world).
    overrides_only: bool,
}

pub struct ExecutorOptions {
    pub ca_pem: Option<Vec<u8>>,
    pub overrides: HashMap<String, IpAddr>,
    pub overrides_only: bool,
    pub timeout: Duration,
}

impl Executor {
    pub fn new(opts: ExecutorOptions) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            // The client follows Autodiscover redirects itself, as Lync clients do: HTTP 3xx is
            // an answer to report, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .user_agent(concat!("lyncd/", env!("CARGO_PKG_VERSION")))
            .http1_only();
        if let Some(pem) = &opts.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).context("reading the --ca-file PEM")?;
            anyhow::ensure!(!certs.is_empty(), "the CA file holds no certificate");
            builder = builder.tls_certs_only(certs);
        }
        for (host, ip) in &opts.overrides {
            builder = builder.resolve(host, SocketAddr::new(*ip, 0));
        }
        Ok(Executor {
            http: builder.build().context("building the HTTP client")?,
            overrides: opts.overrides,
            overrides_only: opts.overrides_only,
        })
    }

    /// Runs the sign-in to its end, handing every trace event to `on_trace` as it happens.
    pub async fn drive(&self, signin: &mut SignIn, mut on_trace: impl FnMut(&TraceEvent)) {
        loop {
            while let Some(ev) = signin.poll_trace() {
                on_trace(&ev);
            }
            if signin.outcome().is_some() {
                return;
            }
            let Some(action) = signin.poll_action(UtcTime::now_utc()) else {
                return;
            };
            let (id, completion) = match action {
                Action::Resolve { id, host } => (id, self.resolve(&host).await),
                Action::Http { id, request } => (id, self.http(request).await),
            };
            signin.handle(UtcTime::now_utc(), id, completion, &mut OsEntropy);
        }
    }

    async fn resolve(&self, host: &str) -> Completion {
        if let Some(ip) = self.overrides.get(&host.to_ascii_lowercase()) {
            return Completion::Resolved(vec![*ip]);
        }
        if self.overrides_only {
            return Completion::ResolveFailed(format!("{host}: no such name"));
        }
        match tokio::net::lookup_host((host, 0)).await {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                ips.dedup();
                if ips.is_empty() {
                    Completion::ResolveFailed(format!("{host}: no address"))
                } else {
                    Completion::Resolved(ips)
                }
            }
            Err(e) => Completion::ResolveFailed(format!("{host}: {e}")),
        }
    }

    async fn http(&self, request: HttpRequest) -> Completion {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut rb = self.http.request(method, &request.url);
        for (k, v) in &request.headers {
            rb = rb.header(k, v);
        }
        if let Some(body) = request.body {
            rb = rb.body(body);
        }
        let response = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Completion::TransportFailed(transport_error(&e)),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        match response.bytes().await {
            Ok(body) => Completion::Response(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            }),
            Err(e) => Completion::TransportFailed(transport_error(&e)),
        }
    }
}

/// The most specific cause in the error chain, in words (TLS errors hide several levels down).
fn transport_error(e: &reqwest::Error) -> TransportError {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let text = chain.last().cloned().unwrap_or_default();
    let all = chain.join(": ").to_ascii_lowercase();
    if e.is_timeout() {
        TransportError::Timeout
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        TransportError::Tls(text)
    } else if e.is_connect() {
        TransportError::Connect(text)
    } else {
        TransportError::Other(text)
    }
}
