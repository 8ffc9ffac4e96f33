//! Everything the executor put on the wire and got back, for `--trace` (HAR) and `-v`/`-vv`/
//! `-vvv` on stderr. Secrets are masked in what is printed unless `--show-secrets`; the HAR
//! builder masks them the same way.

use std::io::Write;
use std::sync::Mutex;

use lyncd_diag::har::{Direction, DnsRecord, HttpExchange, SipRecord};
use lyncd_diag::redact;

#[derive(Default)]
pub struct Recorded {
    pub http: Vec<HttpExchange>,
    pub sip: Vec<SipRecord>,
    pub dns: Vec<DnsRecord>,
}

pub struct Recorder {
    /// 0 quiet, 1 request lines and statuses, 2 headers, 3 bodies.
    verbosity: u8,
    show_secrets: bool,
    inner: Mutex<Recorded>,
}

impl Recorder {
    pub fn new(verbosity: u8, show_secrets: bool) -> Self {
        Recorder {
            verbosity,
            show_secrets,
            inner: Mutex::new(Recorded::default()),
        }
    }

    pub fn take(&self) -> Recorded {
        self.inner
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    fn masked_header<'a>(&self, name: &'a str, value: &'a str) -> std::borrow::Cow<'a, str> {
        if self.show_secrets {
            value.into()
        } else {
            redact::header(name, value)
        }
    }

    pub fn http(&self, ex: HttpExchange) {
        if self.verbosity > 0 {
            let mut out = String::new();
            let url = if self.show_secrets {
                ex.url.clone()
            } else {
                redact::text(&ex.url).into_owned()
            };
            out.push_str(&format!("> [{}] {} {url}\n", ex.step, ex.method));
            if self.verbosity > 1 {
                for (n, v) in &ex.request_headers {
                    out.push_str(&format!("> {n}: {}\n", self.masked_header(n, v)));
                }
            }
            if self.verbosity > 2
                && let Some(b) = &ex.request_body
            {
                let ctype = header(&ex.request_headers, "content-type");
                out.push_str(&self.body(ctype, b, "> "));
            }
            match (&ex.response, &ex.error) {
                (Some(r), _) => {
                    out.push_str(&format!(
                        "< {} {} ({:.0} ms)\n",
                        r.status, r.status_text, ex.elapsed_ms
                    ));
                    if self.verbosity > 1 {
                        for (n, v) in &r.headers {
                            out.push_str(&format!("< {n}: {}\n", self.masked_header(n, v)));
                        }
                    }
                    if self.verbosity > 2 {
                        out.push_str(&self.body(header(&r.headers, "content-type"), &r.body, "< "));
                    }
                }
                (None, Some(e)) => out.push_str(&format!("< no answer: {e}\n")),
                (None, None) => {}
            }
            emit(&out);
        }
        if let Ok(mut r) = self.inner.lock() {
            r.http.push(ex);
        }
    }

    pub fn sip(&self, rec: SipRecord) {
        if self.verbosity > 0 {
            let arrow = match rec.direction {
                Direction::Sent => ">",
                Direction::Received => "<",
            };
            let text = if self.show_secrets {
                String::from_utf8_lossy(&rec.message).into_owned()
            } else {
                String::from_utf8_lossy(&redact::sip_message(&rec.message)).into_owned()
            };
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("");
            let mut out = format!("{arrow} [{}] SIP {} {first}\n", rec.step, rec.peer);
            if self.verbosity > 1 {
                for l in lines {
                    if l.is_empty() && self.verbosity < 3 {
                        break;
                    }
                    out.push_str(&format!("{arrow} {l}\n"));
                }
            }
            emit(&out);
        }
        if let Ok(mut r) = self.inner.lock() {
            r.sip.push(rec);
        }
    }

    pub fn dns(&self, rec: DnsRecord) {
        if self.verbosity > 0 {
            let answer = match &rec.error {
                Some(e) => e.clone(),
                None => rec.answers.join(", "),
            };
            emit(&format!(
                "> [{}] DNS {} {} → {answer}\n",
                rec.step, rec.rtype, rec.name
            ));
        }
        if let Ok(mut r) = self.inner.lock() {
            r.dns.push(rec);
        }
    }

    fn body(&self, ctype: Option<&str>, body: &[u8], prefix: &str) -> String {
        let shown = if self.show_secrets {
            body.into()
        } else {
            redact::body(ctype, body)
        };
        match std::str::from_utf8(&shown) {
            Ok(t) => t.lines().map(|l| format!("{prefix}{l}\n")).collect(),
            Err(_) => format!("{prefix}<{} bytes of binary data>\n", body.len()),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Wire output goes to stderr, never stdout (which holds the table or the JSON document).
fn emit(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}
