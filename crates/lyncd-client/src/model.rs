//! What a sign-in starts from and what it ends with.

use crate::failure::Failure;
use lyncd_core::{Secret, SipAddress, UtcTime};
use lyncd_discover::SipEndpoint;

/// Everything a sign-in needs from the user and the client installation.
#[derive(Clone, Debug)]
pub struct SignInConfig {
    /// The sign-in (SIP) address, `alice@contoso.com`.
    pub address: SipAddress,
    /// The name the identity provider knows (often the UPN); defaults to the address.
    pub login: Option<String>,
    pub password: Secret<String>,
    pub discovery: Discovery,
    /// Stable per client installation (the `Context` of the web ticket request and, later, the
    /// certificate request's `DeviceId`), UUID-shaped; the caller provides and keeps it.
    pub endpoint_id: String,
}

/// How to find the Autodiscover service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// `lyncdiscoverinternal.<domain>` then `lyncdiscover.<domain>`, each https then http, on
    /// these ports.
    Dns { https_port: u16, http_port: u16 },
    /// Skip DNS: `GET https://host:port/?sipuri=…` directly (the Autodiscover root of that
    /// server).
    Server { host: String, port: u16 },
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::Dns {
            https_port: 443,
            http_port: 80,
        }
    }
}

/// How a sign-in ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The web half is done: the SIP pool is known and a web ticket is in hand.
    Discovered(Discovered),
    Failed(Failure),
}

impl Outcome {
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(f) => Some(f),
            Outcome::Discovered(_) => None,
        }
    }

    pub fn discovered(&self) -> Option<&Discovered> {
        match self {
            Outcome::Discovered(d) => Some(d),
            Outcome::Failed(_) => None,
        }
    }
}

/// The result of the web half of a sign-in.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// SIP access points, in the order a client should try them.
    pub pool: Vec<SipEndpoint>,
    /// The Autodiscover user URL, byte-exact as the server wrote it.
    pub user_url: String,
    /// The Web Ticket service base URL (no trailing `/`).
    pub webticket_url: String,
    /// The identity provider's RST2 endpoint that issued the token.
    pub idp_url: String,
    /// The web ticket for the user URL.
    pub web_ticket: WebTicket,
}

/// A web ticket (SAML 1.1 assertion issued by the Web Ticket service) and its proof key.
#[derive(Clone, Debug)]
pub struct WebTicket {
    /// The `Assertion` element exactly as cut out of the answer (presented base64-encoded).
    pub assertion: Secret<String>,
    pub assertion_id: String,
    pub expires: UtcTime,
    /// `P_SHA1(client entropy, server entropy)`, 32 bytes: signs proof-of-possession requests.
    pub proof_key: Secret<Vec<u8>>,
}
