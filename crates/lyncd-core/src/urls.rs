use url::Url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an absolute http(s) URL")]
pub struct UrlError(pub String);

/// The form in which audiences (AppliesTo) are stored and compared: scheme, lower-cased host,
/// port only when not the scheme's default, and path, without query or fragment. Two URLs that
/// a client may spell differently (`LyncWeb.Contoso.com`, `:443`, `?originalDomain=…`) name the
/// same relying party.
pub fn normalize_audience(input: &str) -> Result<String, UrlError> {
    let u = Url::parse(input.trim()).map_err(|_| UrlError(input.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(UrlError(input.to_string()));
    }
    let host = u.host_str().ok_or_else(|| UrlError(input.to_string()))?;
    let mut out = format!("{}://{}", u.scheme(), host.to_ascii_lowercase());
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(u.path());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_port_and_query() {
        let a = normalize_audience(
            "https://LyncWeb.Contoso.com:443/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com",
        )
        .unwrap();
        assert_eq!(
            a,
            "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root/user"
        );
        assert_eq!(
            normalize_audience("https://h.example:8443/x").unwrap(),
            "https://h.example:8443/x"
        );
        assert!(normalize_audience("ftp://h.example/x").is_err());
        assert!(normalize_audience("not a url").is_err());
    }
}
