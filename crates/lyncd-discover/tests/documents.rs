//! Discovery documents: what we render is what pidgin-sipe reads (http.md §13 items 6–9, 23), and
//! what the recorder served to the real client parses.

use lyncd_discover::*;

const CAPTURES: &str = "../../../shared/interop/captures";

/// Body of a captured HTTP message. The captures were anonymised by turning `/root` into
/// `$HOME`; undo that.
fn capture_body(run: &str, prefix: &str, kind: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CAPTURES)
        .join(run);
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(prefix) && n.ends_with(&format!(".{kind}.txt"))
        })
        .unwrap_or_else(|| panic!("no capture {prefix} {kind} in {}", dir.display()));
    let raw = std::fs::read_to_string(entry)
        .unwrap()
        .replace("$HOME", "/root");
    let (_, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap();
    body.to_string()
}

fn urls() -> ServiceUrls {
    ServiceUrls::new(
        "https://lyncweb.contoso.com",
        "https://login.microsoftonline.com",
    )
}

#[test]
fn recorded_root_and_user_documents_parse() {
    let root =
        Document::from_xml(&capture_body("01-autodiscover-full-flow", "002-", "resp")).unwrap();
    assert_eq!(
        root.next_hop(),
        Some(NextHop::User(
            "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com"
        ))
    );
    let user =
        Document::from_xml(&capture_body("01-autodiscover-full-flow", "009-", "resp")).unwrap();
    assert_eq!(
        user.sip_endpoints(),
        vec![SipEndpoint {
            fqdn: "lyncfe.contoso.com".into(),
            port: 5061
        }]
    );
}

#[test]
fn https_root_has_user_link_first_that_sipe_follows() {
    let RootAnswer::Document(doc) = root_answer(
        &urls(),
        "contoso.com",
        Served::Here,
        false,
        Representation::Xml,
    ) else {
        panic!("expected a document");
    };
    let xml = doc.to_xml();
    // §13 item 6: document element with a Root child whose first followed link is User, with an
    // absolute href that has a path and one query parameter at most (item 9).
    let parsed = Document::from_xml(&xml).unwrap();
    let Some(NextHop::User(href)) = parsed.next_hop() else {
        panic!("no User link in {xml}")
    };
    assert!(href.starts_with("https://lyncweb.contoso.com/"));
    assert!(!href.contains('&'));
    assert_eq!(parsed, doc);
}

#[test]
fn plain_http_and_foreign_domains_redirect_to_a_root() {
    let RootAnswer::Document(doc) = root_answer(
        &urls(),
        "contoso.com",
        Served::Here,
        true,
        Representation::Xml,
    ) else {
        panic!()
    };
    assert_eq!(
        doc.next_hop(),
        Some(NextHop::Redirect(
            "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com"
        ))
    );
    let other = "https://webdir.fabrikam.com/Autodiscover/AutodiscoverService.svc/root";
    let RootAnswer::Document(doc) = root_answer(
        &urls(),
        "fabrikam.com",
        Served::Elsewhere(other),
        false,
        Representation::Json,
    ) else {
        panic!()
    };
    let json = Document::from_json(&doc.to_json()).unwrap();
    assert_eq!(json.link("redirect"), Some(other));
    assert_eq!(
        root_answer(
            &urls(),
            "nowhere.com",
            Served::Unknown,
            false,
            Representation::Xml
        ),
        RootAnswer::NotServed
    );
}

#[test]
fn json_root_points_at_the_oauth_user() {
    let RootAnswer::Document(doc) = root_answer(
        &urls(),
        "contoso.com",
        Served::Here,
        false,
        Representation::Json,
    ) else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
    assert_eq!(
        v["_links"]["user"]["href"],
        "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/oauth/user?originalDomain=contoso.com"
    );
    assert!(v["_links"]["self"]["href"].is_string());
}

#[test]
fn user_document_has_what_sipe_reads() {
    let pool = SipEndpoint {
        fqdn: "sippool.contoso.com".into(),
        port: 5061,
    };
    let doc = user_answer(
        &urls(),
        &pool,
        &pool,
        Some(AccessLocation::External),
        Representation::Xml,
    );
    let xml = doc.to_xml();
    // §13 item 23: AccessLocation on the document element, SipClientExternalAccess fqdn + port.
    assert!(xml.contains("AccessLocation=\"External\""));
    assert!(xml.contains("<SipClientExternalAccess fqdn=\"sippool.contoso.com\" port=\"5061\"/>"));
    assert!(xml.contains("application") || xml.contains("Ucwa"));
    assert!(
        Representation::Xml
            .content_type()
            .starts_with(AUTODISCOVER_XML)
    );
    let parsed = Document::from_xml(&xml).unwrap();
    assert_eq!(parsed.sip_endpoints(), vec![pool.clone()]);
    assert_eq!(
        parsed.next_hop(),
        None,
        "a User document must not send the client on"
    );

    let json = user_answer(&urls(), &pool, &pool, None, Representation::Json).to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["_links"]["applications"]["href"],
        "https://lyncweb.contoso.com/ucwa/oauth/v1/applications"
    );
    assert_eq!(v["SipClientExternalAccess"]["fqdn"], "sippool.contoso.com");
    assert_eq!(
        Document::from_json(&json).unwrap().sip_endpoints(),
        vec![pool.clone(), pool]
    );
}

#[test]
fn user_level_redirect_is_a_single_link() {
    let doc = user_redirect(
        "https://webdir.fabrikam.com/Autodiscover/AutodiscoverService.svc/root",
        Representation::Xml,
    );
    let parsed = Document::from_xml(&doc.to_xml()).unwrap();
    assert_eq!(parsed.links().len(), 1);
    assert!(matches!(parsed.next_hop(), Some(NextHop::Redirect(_))));
}

#[test]
fn domain_derivation_order() {
    assert_eq!(
        domain_for_request(Some("Contoso.com"), Some("bob@other.com"), None).as_deref(),
        Some("contoso.com")
    );
    assert_eq!(
        domain_for_request(None, Some("sip:alice%40contoso.com"), None).as_deref(),
        Some("contoso.com")
    );
    assert_eq!(
        domain_for_request(None, None, Some("LyncDiscover.Contoso.com:443")).as_deref(),
        Some("contoso.com")
    );
    assert_eq!(
        domain_for_request(None, None, Some("lyncdiscoverinternal.contoso.com")).as_deref(),
        Some("contoso.com")
    );
    assert_eq!(
        domain_for_request(Some("not a domain"), None, Some("webdir.contoso.com")),
        None
    );
}

#[test]
fn hostile_documents_are_refused() {
    assert_eq!(
        Document::from_xml("<!DOCTYPE x [<!ENTITY a 'b'>]><AutodiscoverResponse/>"),
        Err(DocumentError::Doctype)
    );
    assert!(matches!(
        Document::from_xml("<AutodiscoverResponse><Root>"),
        Err(DocumentError::Xml(_))
    ));
    assert_eq!(
        Document::from_xml("<AutodiscoverResponse/>"),
        Err(DocumentError::NoRootOrUser)
    );
    // an endpoint with whitespace in the fqdn or port 0 does not count (as in pidgin-sipe)
    let doc = Document::from_xml(
        "<AutodiscoverResponse><User><SipClientExternalAccess fqdn=\" pool.x.com\" port=\"5061\"/>\
         <SipClientInternalAccess fqdn=\"pool.x.com\" port=\"0\"/></User></AutodiscoverResponse>",
    )
    .unwrap();
    assert!(doc.sip_endpoints().is_empty());
}
