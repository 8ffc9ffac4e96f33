//! Lync Autodiscover ([MS-OCDISCWS]): the documents a discovery server serves and a client reads.
//!
//! Sans-IO: rendering and parsing of the `AutodiscoverResponse` XML and the UCWA-style JSON, the
//! content negotiation a real client depends on, and the decision of what a request is answered
//! with. The HTTP shell only extracts the request parts and writes the result.
#![forbid(unsafe_code)]

mod document;
mod negotiate;
mod serve;
mod urls;

pub use document::{
    AccessLocation, Document, DocumentError, Link, NextHop, SipEndpoint, UserDocument,
};
pub use negotiate::{AUTODISCOVER_XML, Representation};
pub use serve::{RootAnswer, Served, domain_for_request, root_answer, user_answer, user_redirect};
pub use urls::ServiceUrls;
