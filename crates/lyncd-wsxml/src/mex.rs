//! The Web Ticket service metadata SIPE fetches with a plain GET on `<base>/mex` (http.md §4).

use crate::xml::{escape_attr, escape_text};

const RST_ISSUE: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue";
const RSTRC_ISSUE_FINAL: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal";

/// Bare WSDL 1.1 (document element `wsdl:definitions`). The first and only `wsdl:service` has the
/// `WsFedBearer` port whose `soap:address/@location` SIPE reads; the WsFedBearer policy names the
/// IdP's RST2 address in `sp:Issuer/wsa10:Address` so a client can find the IdP. No
/// `WebTicketServiceWinNegotiate` port: SIPE would try it first and waste a 401 round trip.
pub fn render_webticket_mex(wsfedbearer_location: &str, idp_rst2_address: &str) -> String {
    format!(
        r##"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="WebTicketService" targetNamespace="http://tempuri.org/" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:sp="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702" xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" xmlns:wsa10="http://www.w3.org/2005/08/addressing" xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:af="urn:component:Microsoft.Rtc.WebAuthentication.2010" xmlns:tns="http://tempuri.org/">
  <wsp:Policy wsu:Id="WsFedBearer_policy">
    <wsp:ExactlyOne>
      <wsp:All>
        <sp:TransportBinding>
          <wsp:Policy>
            <sp:TransportToken><wsp:Policy><sp:HttpsToken/></wsp:Policy></sp:TransportToken>
            <sp:AlgorithmSuite><wsp:Policy><sp:Basic256/></wsp:Policy></sp:AlgorithmSuite>
            <sp:Layout><wsp:Policy><sp:Lax/></wsp:Policy></sp:Layout>
            <sp:IncludeTimestamp/>
          </wsp:Policy>
        </sp:TransportBinding>
        <sp:SignedSupportingTokens>
          <wsp:Policy>
            <sp:IssuedToken sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient">
              <sp:Issuer>
                <wsa10:Address>{idp}</wsa10:Address>
              </sp:Issuer>
              <sp:RequestSecurityTokenTemplate>
                <trust:TokenType>urn:oasis:names:tc:SAML:1.0</trust:TokenType>
              </sp:RequestSecurityTokenTemplate>
            </sp:IssuedToken>
          </wsp:Policy>
        </sp:SignedSupportingTokens>
        <af:MSWebAuthentication>
          <wsp:Policy>
            <af:LiveIdEnvironment>PRODUCTION</af:LiveIdEnvironment>
          </wsp:Policy>
        </af:MSWebAuthentication>
        <wsaw:UsingAddressing/>
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>
  <wsdl:message name="IWebTicketService_IssueToken_InputMessage">
    <wsdl:part name="request" element="trust:RequestSecurityToken"/>
  </wsdl:message>
  <wsdl:message name="IWebTicketService_IssueToken_OutputMessage">
    <wsdl:part name="response" element="trust:RequestSecurityTokenResponseCollection"/>
  </wsdl:message>
  <wsdl:portType name="IWebTicketService">
    <wsdl:operation name="IssueToken">
      <wsdl:input wsaw:Action="{rst}" message="tns:IWebTicketService_IssueToken_InputMessage"/>
      <wsdl:output wsaw:Action="{rstrc}" message="tns:IWebTicketService_IssueToken_OutputMessage"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="WsFedBearer" type="tns:IWebTicketService">
    <wsp:PolicyReference URI="#WsFedBearer_policy"/>
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="IssueToken">
      <soap:operation soapAction="{rst}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="WebTicketService">
    <wsdl:port name="WsFedBearer" binding="tns:WsFedBearer">
      <soap:address location="{loc}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"##,
        idp = escape_text(idp_rst2_address),
        loc = escape_attr(wsfedbearer_location),
        rst = RST_ISSUE,
        rstrc = RSTRC_ISSUE_FINAL,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{self, ns};

    const LOC: &str =
        "https://webdir.contoso.com/WebTicket/WebTicketAdvancedService.svc/WsFed_bearer";
    const IDP: &str = "https://login.contoso.com/RST2.srf";

    /// Reads the document the way SIPE does: local names only, first match at each step.
    #[test]
    fn sipe_finds_the_wsfedbearer_port_first() {
        let mex = render_webticket_mex(LOC, IDP);
        let doc = xml::parse(mex.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "definitions");
        let service = root
            .children()
            .find(|c| c.tag_name().name() == "service")
            .unwrap();
        let ports: Vec<_> = service
            .children()
            .filter(|c| c.tag_name().name() == "port")
            .collect();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].attribute("name"), Some("WsFedBearer"));
        let addr = ports[0]
            .children()
            .find(|c| c.tag_name().name() == "address")
            .unwrap();
        assert_eq!(addr.attribute("location"), Some(LOC));
        assert!(!mex.contains("WinNegotiate"));
    }

    #[test]
    fn policy_names_the_idp_and_the_spec_actions() {
        let mex = render_webticket_mex(LOC, "https://login.contoso.com/RST2.srf?a=1&b=2");
        let doc = xml::parse(mex.as_bytes(), xml::DEFAULT_MAX_BYTES).unwrap();
        let issuer_addr = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Issuer")
            .and_then(|i| i.children().find(|c| xml::is(c, &[ns::WSA10], "Address")))
            .unwrap();
        assert_eq!(
            issuer_addr.text(),
            Some("https://login.contoso.com/RST2.srf?a=1&b=2")
        );
        assert!(mex.contains(RST_ISSUE) && mex.contains(RSTRC_ISSUE_FINAL));
        assert!(doc.descendants().any(|n| n.tag_name().name() == "portType"
            && n.attribute("name") == Some("IWebTicketService")));
        assert!(doc.descendants().any(
            |n| n.tag_name().name() == "binding" && n.attribute("name") == Some("WsFedBearer")
        ));
    }
}
