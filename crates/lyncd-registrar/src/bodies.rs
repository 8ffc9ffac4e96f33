//! Minimal documents for the self-subscriptions a client makes right after it registers
//! (sip.md §10.3). They are piggy-backed on the 200 OK (`ms-piggyback-cseq`), which a client
//! processes as if it were the first NOTIFY. Everything optional is left out on purpose: no
//! conferencing, address book or media-relay URLs, so the client starts no side trips to
//! services lyncd does not run.

use lyncd_core::escape_xml as xml_escape;

pub const ROAMING_CONTACTS_TYPE: &str = "application/vnd-microsoft-roaming-contacts+xml";
pub const PROVISIONING_V2_TYPE: &str = "application/vnd-microsoft-roaming-provisioning-v2+xml";
pub const ROAMING_SELF_TYPE: &str = "application/vnd-microsoft-roaming-self+xml";

/// An empty contact list with the one default group every Lync user has.
pub fn roaming_contacts() -> String {
    concat!(
        r#"<contactList deltaNum="1" xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-contacts">"#,
        r#"<group id="1" name="~" externalURI=""/>"#,
        "</contactList>"
    )
    .to_string()
}

/// The ServerConfiguration group, empty: nothing to provision beyond sign-in.
pub fn provisioning_v2() -> String {
    concat!(
        r#"<provisionGroupList xmlns="http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification">"#,
        r#"<provisionGroup name="ServerConfiguration"><ServerConfiguration/></provisionGroup>"#,
        "</provisionGroupList>"
    )
    .to_string()
}

/// Empty categories, containers and subscribers for `aor_uri`. Receiving it is what makes a
/// client publish its initial presence (SERVICE).
pub fn roaming_self(aor_uri: &str) -> String {
    format!(
        concat!(
            r#"<roamingData xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self">"#,
            r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="{uri}"/>"#,
            r#"<containers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"/>"#,
            r#"<subscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers"/>"#,
            "</roamingData>"
        ),
        uri = xml_escape(aor_uri)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_well_formed_and_carry_what_sipe_reads() {
        let contacts = roaming_contacts();
        assert!(contacts.starts_with("<contactList") && contacts.contains(r#"name="~""#));
        assert!(!contacts.contains("ucsmode"), "no UCS without EWS");
        let prov = provisioning_v2();
        assert!(prov.contains(r#"provisionGroup name="ServerConfiguration""#));
        for absent in [
            "focusFactoryUri",
            "dlxInternalUrl",
            "absInternalServerUrl",
            "mrasUri",
        ] {
            assert!(!prov.contains(absent));
        }
        let me = roaming_self("sip:a&b@contoso.com");
        assert!(me.contains(r#"uri="sip:a&amp;b@contoso.com""#));
        assert!(me.starts_with("<roamingData") && me.ends_with("</roamingData>"));
    }
}
