use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What a service answers, before it becomes an HTTP response. Every reply has a body with a
/// `Content-Length` (pidgin-sipe needs one, even on 401 and 404) and is never compressed.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Vec<u8>,
}

pub const XML: &str = "text/xml; charset=utf-8";
pub const SOAP12: &str = "application/soap+xml; charset=utf-8";
pub const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(StatusCode::OK, content_type, body)
    }

    pub fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn text(status: StatusCode, text: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body).into_response();
        let h = res.headers_mut();
        if let Some(ct) = self.content_type {
            h.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(ct),
            );
        } else {
            h.remove(axum::http::header::CONTENT_TYPE);
        }
        for (name, value) in self.headers {
            match HeaderValue::from_str(&value) {
                Ok(v) => {
                    h.append(name, v);
                }
                Err(_) => {
                    tracing::error!(header = %name, "dropped a response header with bytes HTTP cannot carry")
                }
            }
        }
        res
    }
}
