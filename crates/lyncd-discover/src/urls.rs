/// Every URL of the web services one lyncd deployment publishes, derived from one base URL
/// (`https://webdir.contoso.com`, with a port when it is not 443) and the identity provider's base.
///
/// Base URLs handed to clients never end in `/`: pidgin-sipe appends `/mex` to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUrls {
    web: String,
    idp: String,
}

impl ServiceUrls {
    /// `web_base` and `idp_base` are `scheme://host[:port]` without a path.
    pub fn new(web_base: &str, idp_base: &str) -> Self {
        ServiceUrls {
            web: web_base.trim_end_matches('/').to_string(),
            idp: idp_base.trim_end_matches('/').to_string(),
        }
    }

    /// `https://host[:port]` with the port omitted when it is the scheme's default.
    pub fn base(scheme: &str, host: &str, port: u16) -> String {
        let default = matches!((scheme, port), ("https", 443) | ("http", 80));
        if default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }

    pub fn web_base(&self) -> &str {
        &self.web
    }

    pub fn autodiscover_root(&self) -> String {
        format!("{}/Autodiscover/AutodiscoverService.svc/root", self.web)
    }

    /// The web-ticket flavour of the user resource. Exactly one query parameter: pidgin-sipe
    /// copies this URL unescaped into XML, where a `&` would break the document.
    pub fn user(&self, domain: &str) -> String {
        format!("{}/user?originalDomain={domain}", self.autodiscover_root())
    }

    /// The OAuth (UCWA) flavour of the user resource.
    pub fn oauth_user(&self, domain: &str) -> String {
        format!(
            "{}/oauth/user?originalDomain={domain}",
            self.autodiscover_root()
        )
    }

    pub fn domain(&self, domain: &str) -> String {
        format!(
            "{}/domain?originalDomain={domain}",
            self.autodiscover_root()
        )
    }

    pub fn root_for(&self, domain: &str) -> String {
        format!("{}?originalDomain={domain}", self.autodiscover_root())
    }

    pub fn xframe(&self) -> String {
        format!("{}/Autodiscover/XFrame/XFrame.html", self.web)
    }

    /// Base URL of the Web Ticket service (the `X-MS-WebTicketURL` value).
    pub fn webticket(&self) -> String {
        format!("{}/WebTicket/WebTicketService.svc", self.web)
    }

    pub fn webticket_mex(&self) -> String {
        format!("{}/mex", self.webticket())
    }

    /// The WsFedBearer endpoint: where tokens from the identity provider are traded for tickets.
    pub fn wsfedbearer(&self) -> String {
        format!("{}/WsFedBearer", self.webticket())
    }

    pub fn oauth_token(&self) -> String {
        format!("{}/WebTicket/oauthtoken", self.web)
    }

    pub fn ucwa_applications(&self) -> String {
        format!("{}/ucwa/oauth/v1/applications", self.web)
    }

    /// Base URL of the Certificate Provisioning service (the `sts-uri` of the SIP challenge).
    pub fn certprov(&self) -> String {
        format!("{}/CertProv/CertProvisioningService.svc", self.web)
    }

    /// The CertProv port pidgin-sipe posts `GetAndPublishCert` to, and the AppliesTo (audience)
    /// of the web ticket it presents there.
    pub fn certprov_port(&self) -> String {
        format!("{}/WebTicket_Proof_SHA1", self.certprov())
    }

    pub fn certprov_mex(&self) -> String {
        format!("{}/mex", self.certprov())
    }

    pub fn idp_base(&self) -> &str {
        &self.idp
    }

    /// The identity provider's WS-Trust endpoint. pidgin-sipe hard-codes
    /// `https://login.microsoftonline.com:443/RST2.srf`; our client reads it from the MEX policy.
    pub fn idp_rst2(&self) -> String {
        format!("{}/RST2.srf", self.idp)
    }

    pub fn idp_realm(&self, login: &str) -> String {
        format!("{}/getuserrealm.srf?login={login}&xml=1", self.idp)
    }

    pub fn idp_issuer(&self) -> String {
        format!("{}/", self.idp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_the_shapes_clients_expect() {
        let u = ServiceUrls::new("https://webdir.contoso.com/", "https://login.contoso.com");
        assert_eq!(
            u.user("contoso.com"),
            "https://webdir.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com"
        );
        assert!(!u.user("contoso.com").contains('&'));
        assert_eq!(
            u.webticket(),
            "https://webdir.contoso.com/WebTicket/WebTicketService.svc"
        );
        assert!(!u.webticket().ends_with('/'));
        assert_eq!(u.idp_rst2(), "https://login.contoso.com/RST2.srf");
        // Byte-identical to what pidgin-sipe read from the CertProv MEX (capture 01/012) and
        // posted to (01/016).
        assert_eq!(
            ServiceUrls::new("https://lyncweb.contoso.com", "https://login.contoso.com")
                .certprov_port(),
            "https://lyncweb.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof_SHA1"
        );
        assert_eq!(
            u.certprov_mex(),
            "https://webdir.contoso.com/CertProv/CertProvisioningService.svc/mex"
        );
        assert_eq!(
            ServiceUrls::base("https", "h.example", 443),
            "https://h.example"
        );
        assert_eq!(
            ServiceUrls::base("https", "h.example", 4443),
            "https://h.example:4443"
        );
        assert_eq!(
            ServiceUrls::base("http", "h.example", 80),
            "http://h.example"
        );
    }
}
