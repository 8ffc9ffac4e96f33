/// The media type of the XML representation. pidgin-sipe accepts an answer only when its
/// `Content-Type` starts with exactly this (case-sensitive) string.
pub const AUTODISCOVER_XML: &str = "application/vnd.microsoft.rtc.autodiscover+xml";

/// Which representation a request asked for. JSON is the default (UCWA clients often send no
/// `Accept`); XML only when asked for, as Microsoft's servers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    Xml,
    Json,
}

impl Representation {
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a)
                if a.split(',').any(|part| {
                    let media = part.split(';').next().unwrap_or("").trim();
                    media.eq_ignore_ascii_case(AUTODISCOVER_XML)
                        || media.eq_ignore_ascii_case("application/xml")
                        || media.eq_ignore_ascii_case("text/xml")
                }) =>
            {
                Representation::Xml
            }
            _ => Representation::Json,
        }
    }

    /// The `Content-Type` to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Xml => "application/vnd.microsoft.rtc.autodiscover+xml; v=1",
            Representation::Json => "application/json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipe_accept_header_gets_xml() {
        let sipe = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";
        assert_eq!(Representation::from_accept(Some(sipe)), Representation::Xml);
        assert!(
            Representation::Xml
                .content_type()
                .starts_with(AUTODISCOVER_XML)
        );
    }

    #[test]
    fn json_is_the_default() {
        assert_eq!(Representation::from_accept(None), Representation::Json);
        assert_eq!(
            Representation::from_accept(Some("application/json")),
            Representation::Json
        );
        assert_eq!(
            Representation::from_accept(Some("*/*")),
            Representation::Json
        );
    }
}
