use std::fmt::Write;

/// Which SIP access point a client should use, from the `AccessLocation` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AccessLocation {
    Internal,
    External,
}

/// A `<Link token="…" href="…"/>` (XML) or `"token":{"href":…}` (JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub token: String,
    pub href: String,
}

impl Link {
    pub fn new(token: &str, href: impl Into<String>) -> Self {
        Link {
            token: token.to_string(),
            href: href.into(),
        }
    }
}

/// Host and port of a SIP access point (`SipClientInternalAccess fqdn=… port=…`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SipEndpoint {
    pub fqdn: String,
    pub port: u16,
}

/// The `User` resource: where the user's SIP pool is, and the user-scoped service links.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDocument {
    pub sip_internal: Option<SipEndpoint>,
    pub sip_external: Option<SipEndpoint>,
    pub links: Vec<Link>,
}

/// An Autodiscover answer. `Root` lists where to go next (User, Redirect, …); `User` carries the
/// pool or a single Redirect when the user is homed elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    Root {
        access: Option<AccessLocation>,
        links: Vec<Link>,
    },
    User {
        access: Option<AccessLocation>,
        user: UserDocument,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the Autodiscover answer is not well-formed XML: {0}")]
    Xml(String),
    #[error("the Autodiscover answer is not valid JSON: {0}")]
    Json(String),
    #[error("the Autodiscover answer has neither a Root nor a User element")]
    NoRootOrUser,
    #[error("the Autodiscover answer contains a DOCTYPE, which is refused")]
    Doctype,
}

impl Document {
    pub fn links(&self) -> &[Link] {
        match self {
            Document::Root { links, .. } => links,
            Document::User { user, .. } => &user.links,
        }
    }

    /// The first link with this token (case-insensitive), as pidgin-sipe chooses.
    pub fn link(&self, token: &str) -> Option<&str> {
        self.links()
            .iter()
            .find(|l| l.token.eq_ignore_ascii_case(token))
            .map(|l| l.href.as_str())
    }

    /// Where a client goes next: a `Redirect` (either level) or the `User` link.
    pub fn next_hop(&self) -> Option<NextHop<'_>> {
        self.links().iter().find_map(|l| {
            if l.token.eq_ignore_ascii_case("Redirect") {
                Some(NextHop::Redirect(&l.href))
            } else if l.token.eq_ignore_ascii_case("User") && matches!(self, Document::Root { .. })
            {
                Some(NextHop::User(&l.href))
            } else {
                None
            }
        })
    }

    /// The SIP endpoints to try, in the order pidgin-sipe tries them: with no `AccessLocation`
    /// internal first then external; otherwise only the named one.
    pub fn sip_endpoints(&self) -> Vec<SipEndpoint> {
        let Document::User { access, user } = self else {
            return Vec::new();
        };
        let internal = user.sip_internal.iter();
        let external = user.sip_external.iter();
        match access {
            Some(AccessLocation::Internal) => internal.cloned().collect(),
            Some(AccessLocation::External) => external.cloned().collect(),
            None => internal.chain(external).cloned().collect(),
        }
    }

    /// The XML representation, in the shape Microsoft documents (no default namespace,
    /// `xsd`/`xsi` declared), which pidgin-sipe and Microsoft clients read.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        out.push_str(
            "<AutodiscoverResponse xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
        );
        let (access, element) = match self {
            Document::Root { access, .. } => (access, "Root"),
            Document::User { access, .. } => (access, "User"),
        };
        if let Some(a) = access {
            let _ = write!(out, " AccessLocation=\"{a:?}\"");
        }
        let _ = write!(out, ">\n  <{element}>\n");
        if let Document::User { user, .. } = self {
            for (name, ep) in [
                ("SipServerInternalAccess", &user.sip_internal),
                ("SipClientInternalAccess", &user.sip_internal),
                ("SipServerExternalAccess", &user.sip_external),
                ("SipClientExternalAccess", &user.sip_external),
            ] {
                if let Some(ep) = ep {
                    let _ = writeln!(
                        out,
                        "    <{name} fqdn=\"{}\" port=\"{}\"/>",
                        escape(&ep.fqdn),
                        ep.port
                    );
                }
            }
        }
        for l in self.links() {
            let _ = writeln!(
                out,
                "    <Link token=\"{}\" href=\"{}\"/>",
                escape(&l.token),
                escape(&l.href)
            );
        }
        let _ = write!(out, "  </{element}>\n</AutodiscoverResponse>\n");
        out
    }

    /// The JSON representation (UCWA style): `{"_links":{"self":{"href":…},…}}` with the link
    /// tokens as given (JSON documents use `self`, `user`, `xframe`, `redirect`, `applications`);
    /// SIP access points are added for desktop clients that ask in JSON.
    pub fn to_json(&self) -> String {
        let mut links = serde_json::Map::new();
        for l in self.links() {
            links.insert(l.token.clone(), serde_json::json!({ "href": l.href }));
        }
        let mut root = serde_json::Map::new();
        root.insert("_links".into(), serde_json::Value::Object(links));
        if let Document::User { access, user } = self {
            if let Some(a) = access {
                root.insert("AccessLocation".into(), serde_json::json!(format!("{a:?}")));
            }
            if let Some(ep) = &user.sip_internal {
                root.insert("SipClientInternalAccess".into(), serde_json::json!(ep));
            }
            if let Some(ep) = &user.sip_external {
                root.insert("SipClientExternalAccess".into(), serde_json::json!(ep));
            }
        }
        serde_json::Value::Object(root).to_string()
    }

    /// Parses the XML representation the way pidgin-sipe does: element names by local name,
    /// first `Root` or `User` child of the document element, attributes by name.
    pub fn from_xml(text: &str) -> Result<Self, DocumentError> {
        if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
            return Err(DocumentError::Doctype);
        }
        let doc =
            roxmltree::Document::parse(text).map_err(|e| DocumentError::Xml(e.to_string()))?;
        let top = doc.root_element();
        let access = top
            .attributes()
            .find(|a| a.name().eq_ignore_ascii_case("AccessLocation"))
            .and_then(|a| match a.value().to_ascii_lowercase().as_str() {
                "internal" => Some(AccessLocation::Internal),
                "external" => Some(AccessLocation::External),
                _ => None,
            });
        let child = top
            .children()
            .find(|n| n.is_element() && matches!(n.tag_name().name(), "Root" | "User"))
            .ok_or(DocumentError::NoRootOrUser)?;
        let links = child
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "Link")
            .filter_map(|n| {
                Some(Link {
                    token: attr(n, "token")?.to_string(),
                    href: attr(n, "href")?.to_string(),
                })
            })
            .collect();
        if child.tag_name().name() == "Root" {
            return Ok(Document::Root { access, links });
        }
        let endpoint = |name: &str| {
            child
                .children()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .and_then(|n| {
                    let fqdn = attr(n, "fqdn")?;
                    let port: u16 = attr(n, "port")?.trim().parse().ok()?;
                    (!fqdn.is_empty() && port != 0 && !fqdn.contains(char::is_whitespace)).then(
                        || SipEndpoint {
                            fqdn: fqdn.to_string(),
                            port,
                        },
                    )
                })
        };
        Ok(Document::User {
            access,
            user: UserDocument {
                sip_internal: endpoint("SipClientInternalAccess"),
                sip_external: endpoint("SipClientExternalAccess"),
                links,
            },
        })
    }

    /// Parses the JSON representation: `_links` (redirect/user/self/…) and, when present, the
    /// SIP access points.
    pub fn from_json(text: &str) -> Result<Self, DocumentError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DocumentError::Json(e.to_string()))?;
        let links: Vec<Link> = v
            .get("_links")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some(Link {
                            token: k.clone(),
                            href: v.get("href")?.as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ep = |name: &str| -> Option<SipEndpoint> {
            let o = v.get(name)?;
            Some(SipEndpoint {
                fqdn: o.get("fqdn")?.as_str()?.to_string(),
                port: u16::try_from(o.get("port")?.as_u64()?).ok()?,
            })
        };
        let (internal, external) = (ep("SipClientInternalAccess"), ep("SipClientExternalAccess"));
        let is_user = links.iter().any(|l| l.token == "applications")
            || internal.is_some()
            || external.is_some();
        if is_user {
            Ok(Document::User {
                access: None,
                user: UserDocument {
                    sip_internal: internal,
                    sip_external: external,
                    links,
                },
            })
        } else {
            Ok(Document::Root {
                access: None,
                links,
            })
        }
    }
}

/// Where a discovery answer sends the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop<'a> {
    Redirect(&'a str),
    User(&'a str),
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes()
        .find(|a| a.name().eq_ignore_ascii_case(name))
        .map(|a| a.value())
}

pub(crate) use lyncd_core::escape_xml as escape;
