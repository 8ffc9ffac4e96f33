//! What a discovery server answers, decided without HTTP.

use crate::{
    AccessLocation, Document, Link, Representation, ServiceUrls, SipEndpoint, UserDocument,
};

/// Where a SIP domain is served, as far as this server knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served<'a> {
    /// A tenant of this deployment.
    Here,
    /// Homed on another deployment whose Autodiscover root is this URL.
    Elsewhere(&'a str),
    /// Neither: the client should try its next discovery method.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootAnswer {
    Document(Document),
    /// 404: this server does not serve that domain and knows no redirect.
    NotServed,
    /// 400: no SIP domain could be derived from the request.
    NoDomain,
}

/// The SIP domain a discovery request is about, from (in order) `originalDomain`, the domain of
/// `sipuri` (with or without `sip:`, possibly percent-encoded), or the `Host` minus its
/// `lyncdiscover.` / `lyncdiscoverinternal.` label.
pub fn domain_for_request(
    original_domain: Option<&str>,
    sipuri: Option<&str>,
    host: Option<&str>,
) -> Option<String> {
    let valid = |d: &str| {
        let d = d.trim().to_ascii_lowercase();
        lyncd_core::SipAddress::parse(&format!("x@{d}"))
            .ok()
            .map(|a| a.domain().to_string())
    };
    if let Some(d) = original_domain.and_then(valid) {
        return Some(d);
    }
    if let Some(uri) = sipuri {
        let decoded = uri
            .replace("%40", "@")
            .replace("%3A", ":")
            .replace("%3a", ":");
        if let Ok(a) = lyncd_core::SipAddress::parse(&decoded) {
            return Some(a.domain().to_string());
        }
    }
    let host = host?.split(':').next()?.to_ascii_lowercase();
    ["lyncdiscoverinternal.", "lyncdiscover."]
        .iter()
        .find_map(|p| host.strip_prefix(p))
        .and_then(valid)
}

/// The Root resource ([MS-OCDISCWS] 3.1.5.2). A request over plain HTTP, or for a domain homed
/// elsewhere, gets a Root holding a single `Redirect`; otherwise the links to the user resources.
pub fn root_answer(
    urls: &ServiceUrls,
    domain: &str,
    served: Served<'_>,
    plain_http: bool,
    repr: Representation,
) -> RootAnswer {
    let redirect_to = match served {
        Served::Unknown => return RootAnswer::NotServed,
        Served::Elsewhere(root) => Some(root.to_string()),
        Served::Here if plain_http => Some(urls.root_for(domain)),
        Served::Here => None,
    };
    let self_link = urls.root_for(domain);
    let links = match (redirect_to, repr) {
        (Some(to), Representation::Xml) => vec![Link::new("Redirect", to)],
        (Some(to), Representation::Json) => {
            vec![Link::new("self", self_link), Link::new("redirect", to)]
        }
        (None, Representation::Xml) => vec![
            Link::new("User", urls.user(domain)),
            Link::new("Domain", urls.domain(domain)),
            Link::new("OAuth", urls.oauth_user(domain)),
            Link::new("Self", self_link),
            Link::new("External/XFrame", urls.xframe()),
        ],
        (None, Representation::Json) => vec![
            Link::new("self", self_link),
            Link::new("user", urls.oauth_user(domain)),
            Link::new("xframe", urls.xframe()),
        ],
    };
    RootAnswer::Document(Document::Root {
        access: Some(AccessLocation::External),
        links,
    })
}

/// The User resource for an authenticated user homed here ([MS-OCDISCWS] 3.1.5.3).
pub fn user_answer(
    urls: &ServiceUrls,
    pool_internal: &SipEndpoint,
    pool_external: &SipEndpoint,
    access: Option<AccessLocation>,
    repr: Representation,
) -> Document {
    let user_self = format!("{}/user", urls.autodiscover_root());
    let links = match repr {
        Representation::Xml => vec![
            Link::new("External/Autodiscover", urls.autodiscover_root()),
            Link::new("Internal/Autodiscover", urls.autodiscover_root()),
            Link::new("External/Ucwa", urls.ucwa_applications()),
            Link::new("Internal/Ucwa", urls.ucwa_applications()),
            Link::new("Ucwa", urls.ucwa_applications()),
            Link::new("External/CertProvisioningService", urls.certprov()),
            Link::new("Internal/CertProvisioningService", urls.certprov()),
            Link::new("External/WebTicket", urls.webticket()),
            Link::new("Internal/WebTicket", urls.webticket()),
            Link::new("External/XFrame", urls.xframe()),
            Link::new("Self", user_self),
        ],
        Representation::Json => vec![
            Link::new("self", user_self),
            Link::new("applications", urls.ucwa_applications()),
            Link::new("xframe", urls.xframe()),
        ],
    };
    Document::User {
        access,
        user: UserDocument {
            sip_internal: Some(pool_internal.clone()),
            sip_external: Some(pool_external.clone()),
            links,
        },
    }
}

/// The User resource for a user homed on another deployment: exactly one `Redirect` to that
/// deployment's Root (not its user URL: pidgin-sipe follows it without a ticket).
pub fn user_redirect(root_url: &str, repr: Representation) -> Document {
    let token = match repr {
        Representation::Xml => "Redirect",
        Representation::Json => "redirect",
    };
    Document::User {
        access: None,
        user: UserDocument {
            links: vec![Link::new(token, root_url)],
            ..Default::default()
        },
    }
}
