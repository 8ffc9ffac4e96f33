//! What the certificate chain of every TLS hop says, in the words an engineer needs.
//!
//! The TLS library only answers "trusted or not". Sign-in problems need more: which name the
//! certificate lacks (diagnostics.md rows 1 and 3), whether the server forgot its intermediate
//! (row 4), how many days are left (row 6), whether "not yet valid" is really this machine's
//! clock (row 8). [`check_hop`] reads the chain exactly as the server presented it and returns
//! [`Finding`]s with stable codes; [`inspect`] describes one certificate.
//!
//! Nothing here builds a trust path against a root store: that is the TLS layer's job and
//! needs the platform. These checks explain *why* a path would fail or be fragile.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use crate::skew::format_duration;
use lyncd_core::UtcTime;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing fails because of it.
    Info,
    /// Works today for some clients, or will stop working soon.
    Warning,
    /// Clients fail (or should).
    Error,
}

/// One observation about a hop, with a stable machine-readable `code` and a sentence that
/// names the exact certificate, name and dates involved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier (`certificate-expired`, `chain-incomplete`, …): scripts match on it.
    pub code: &'static str,
    pub message: String,
}

/// The facts of one X.509 certificate that sign-in troubleshooting needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Distinguished name in RFC 4514-like order as x509-parser prints it (`CN=…, O=…`).
    pub subject: String,
    pub issuer: String,
    /// The subject's common name, if any. Used for host matching only when there are no DNS
    /// subject alternative names (RFC 6125 §6.4.4).
    pub common_name: Option<String>,
    /// `dNSName` subject alternative names, as written in the certificate.
    pub dns_names: Vec<String>,
    /// `iPAddress` subject alternative names, in Rust's `IpAddr` display form.
    pub ip_addresses: Vec<String>,
    /// `uniformResourceIdentifier` subject alternative names (`sip:alice@contoso.com` on
    /// Lync user certificates).
    pub uris: Vec<String>,
    #[serde(serialize_with = "serialize_rfc3339")]
    pub not_before: UtcTime,
    #[serde(serialize_with = "serialize_rfc3339")]
    pub not_after: UtcTime,
    /// Lowercase hex, without leading zero bytes (as `openssl x509 -serial` shows it).
    pub serial_hex: String,
    /// SHA-256 of the DER, lowercase hex without colons: the fingerprint to compare between
    /// machines ("is the load balancer serving the same certificate?").
    pub sha256: String,
    /// Subject and issuer names are identical (and the key identifiers, when both present,
    /// agree): a root, or a server certificate nobody signed.
    pub self_signed: bool,
    /// `basicConstraints cA=TRUE`.
    pub is_ca: bool,
    /// `RSA 2048`, `EC P-256`, `Ed25519`, …
    pub key: String,
    /// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, … or the dotted OID when unknown.
    pub signature_algorithm: String,
    /// Authority Information Access "CA Issuers" URLs: where a client can fetch a missing
    /// intermediate (diagnostics.md row 4).
    pub ca_issuer_urls: Vec<String>,
    /// CRL distribution points. `ldap://` only ones fail outside the domain (row 5).
    pub crl_urls: Vec<String>,
}

/// Why a certificate could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate is empty (0 bytes)")]
    Empty,
    #[error("the certificate is PEM text; decode the base64 between the BEGIN/END lines to DER")]
    Pem,
    #[error("not a DER-encoded X.509 certificate: {0}")]
    Malformed(String),
    #[error("{0} unexpected bytes follow the certificate")]
    TrailingData(usize),
}

/// The certificate checks of one TLS hop (one host:port the client connected to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HopCheck {
    /// The name the client connected to (what the certificate must cover).
    pub host: String,
    /// The readable certificates, in the order the server sent them; `chain[0]` is the
    /// server's own certificate unless position 0 is listed in `unreadable`.
    pub chain: Vec<CertInfo>,
    /// Positions (0 = the server's certificate) in the chain *as sent* that could not be read.
    pub unreadable: Vec<usize>,
    pub findings: Vec<Finding>,
}

impl HopCheck {
    /// The most severe finding, or `None` when there is nothing to report.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The server's certificate, when it could be read.
    pub fn leaf(&self) -> Option<&CertInfo> {
        if self.unreadable.contains(&0) {
            None
        } else {
            self.chain.first()
        }
    }

    /// Whole days until the server's certificate expires (negative once expired); `None` when
    /// there is no readable server certificate.
    pub fn days_left(&self, now: UtcTime) -> Option<i64> {
        self.leaf().map(|leaf| (leaf.not_after - now).whole_days())
    }
}

/// A warning is raised when fewer than this many days are left on any certificate.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// RSA keys below this size are refused by current clients and CAs.
pub const MIN_RSA_BITS: usize = 2048;

/// Reads one DER certificate.
pub fn inspect(der: &[u8]) -> Result<CertInfo, CertError> {
    parse(der).map(|parsed| parsed.info)
}

/// Whether `host` is one of the names the certificate is valid for, following RFC 6125 as
/// browsers and Schannel apply it:
///
/// * DNS names compare case-insensitively, ignoring one trailing dot;
/// * a wildcard is accepted only as the whole leftmost label (`*.contoso.com`) and stands for
///   exactly one label: it matches `lyncweb.contoso.com`, not `contoso.com` and not
///   `a.b.contoso.com`; partial-label wildcards (`f*.contoso.com`) and wildcards over a single
///   label (`*.com`) never match;
/// * an IP address host matches `iPAddress` entries only;
/// * the subject CN counts only when the certificate has no DNS names at all.
///
/// `host` may carry a port (`lyncfe.contoso.com:5061`, `[::1]:443`), which is ignored.
pub fn covers(cert: &CertInfo, host: &str) -> bool {
    let host = normalize_host(host);
    if host.is_empty() {
        return false;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return cert
            .ip_addresses
            .iter()
            .any(|presented| presented.parse::<IpAddr>().ok() == Some(ip));
    }
    dns_identifiers(cert).any(|pattern| dns_name_matches(pattern, &host))
}

/// Checks the chain one server presented on a TLS hop.
///
/// * `chain_der`: the certificates in the order the server sent them (server's first);
/// * `host`: the name the client connected to;
/// * `sip_domain`: the domain of the sign-in address (`contoso.com` for
///   `alice@contoso.com`); empty to skip the SIP-domain check (hops unrelated to the pool);
/// * `now`: the local clock.
///
/// Findings (stable codes): `chain-empty`, `certificate-unreadable`, `certificate-expired`,
/// `certificate-not-yet-valid`, `certificate-expiring`, `host-not-in-certificate`,
/// `sip-domain-not-in-certificate`, `chain-incomplete`, `chain-out-of-order`, `self-signed`,
/// `weak-signature`, `weak-key`. They are ordered most severe first.
pub fn check_hop(chain_der: &[Vec<u8>], host: &str, sip_domain: &str, now: UtcTime) -> HopCheck {
    check_hop_with_anchors(chain_der, host, sip_domain, now, &[])
}

/// [`check_hop`], knowing which roots the client trusts (`--ca-file`, the lyncd CA): a server
/// certificate issued directly by one of these `anchors` (DER) needs no intermediate, so
/// `chain-incomplete` is not raised for it. Without anchors a chain of one certificate cannot
/// be told apart from one missing its intermediate, and the finding says so.
pub fn check_hop_with_anchors(
    chain_der: &[Vec<u8>],
    host: &str,
    sip_domain: &str,
    now: UtcTime,
    anchors: &[Vec<u8>],
) -> HopCheck {
    let anchor_subjects: Vec<Vec<u8>> = anchors
        .iter()
        .filter_map(|der| parse(der).ok())
        .map(|anchor| anchor.subject_raw)
        .collect();
    let mut findings = Vec::new();
    if chain_der.is_empty() {
        findings.push(Finding {
            severity: Severity::Error,
            code: "chain-empty",
            message: format!(
                "the server {host} presented no certificate at all; a TLS server must send at \
                 least its own certificate"
            ),
        });
        return HopCheck {
            host: host.to_string(),
            chain: Vec::new(),
            unreadable: Vec::new(),
            findings,
        };
    }

    // (position as sent, parsed certificate)
    let mut parsed: Vec<(usize, Parsed)> = Vec::new();
    let mut unreadable = Vec::new();
    for (position, der) in chain_der.iter().enumerate() {
        match parse(der) {
            Ok(cert) => parsed.push((position, cert)),
            Err(error) => {
                unreadable.push(position);
                findings.push(Finding {
                    severity: Severity::Error,
                    code: "certificate-unreadable",
                    message: format!(
                        "{} sent by {host} ({} bytes) could not be read: {error}",
                        position_label(position),
                        der.len()
                    ),
                });
            }
        }
    }

    for (position, cert) in &parsed {
        check_validity(&mut findings, *position, cert, now);
    }

    let leaf = parsed
        .first()
        .filter(|(position, _)| *position == 0)
        .map(|(_, cert)| cert);
    if let Some(leaf) = leaf {
        check_names(&mut findings, leaf, host, sip_domain);
        check_chain_shape(&mut findings, &parsed, host, &anchor_subjects);
    }

    for (position, cert) in &parsed {
        check_algorithms(&mut findings, *position, cert);
    }

    // Most severe first; within a severity, the order the checks ran (stable sort).
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    HopCheck {
        host: host.to_string(),
        chain: parsed.into_iter().map(|(_, cert)| cert.info).collect(),
        unreadable,
        findings,
    }
}

/// Serializes a time as RFC 3339 (`2026-11-25T10:00:00Z`, fractional seconds when present).
pub(crate) fn serialize_rfc3339<S: Serializer>(t: &UtcTime, s: S) -> Result<S::Ok, S::Error> {
    let utc = t.to_offset(time::UtcOffset::UTC);
    match utc.format(&time::format_description::well_known::Rfc3339) {
        Ok(text) => s.serialize_str(&text),
        // Years outside 0..=9999 have no RFC 3339 form; say so rather than fail the document.
        Err(_) => s.serialize_str(&format!("unix:{}", utc.unix_timestamp())),
    }
}

/// A certificate with the raw parts the chain checks compare, beyond [`CertInfo`].
struct Parsed {
    info: CertInfo,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    signature_oid: String,
    rsa_bits: Option<usize>,
}

fn parse(der: &[u8]) -> Result<Parsed, CertError> {
    if der.is_empty() {
        return Err(CertError::Empty);
    }
    if der.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Err(CertError::Pem);
    }
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| CertError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::TrailingData(rest.len()));
    }

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let mut uris = Vec::new();
    let mut ca_issuer_urls = Vec::new();
    let mut crl_urls = Vec::new();
    let mut subject_key_id: Option<&[u8]> = None;
    let mut authority_key_id: Option<&[u8]> = None;
    // Walk the extensions ourselves: `subject_alternative_name()` fails the whole lookup on
    // one malformed entry, and a diagnostic tool should still show the rest.
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => dns_names.push((*dns).to_string()),
                        GeneralName::IPAddress(bytes) => {
                            if let Some(ip) = ip_from_bytes(bytes) {
                                ip_addresses.push(ip.to_string());
                            }
                        }
                        GeneralName::URI(uri) => uris.push((*uri).to_string()),
                        _ => {}
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for access in aia.iter() {
                    if access.access_method.to_id_string() == OID_AD_CA_ISSUERS
                        && let GeneralName::URI(uri) = &access.access_location
                    {
                        ca_issuer_urls.push((*uri).to_string());
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        crl_urls.extend(names.iter().filter_map(|name| match name {
                            GeneralName::URI(uri) => Some((*uri).to_string()),
                            _ => None,
                        }));
                    }
                }
            }
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|id| id.0);
            }
            _ => {}
        }
    }

    let subject_raw = cert.subject().as_raw().to_vec();
    let issuer_raw = cert.issuer().as_raw().to_vec();
    // A CA that renewed its key under the same name issues a "self-issued" certificate whose
    // names match but whose key identifiers differ: that is not self-signed.
    let key_ids_agree = match (subject_key_id, authority_key_id) {
        (Some(subject), Some(authority)) => subject == authority,
        _ => true,
    };
    let self_signed = subject_raw == issuer_raw && key_ids_agree;
    let (key, rsa_bits) = describe_key(&cert);
    let signature_oid = cert.signature_algorithm.algorithm.to_id_string();

    let info = CertInfo {
        subject: name_to_string(cert.subject()),
        issuer: name_to_string(cert.issuer()),
        common_name: common_name(cert.subject()),
        dns_names,
        ip_addresses,
        uris,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        serial_hex: serial_hex(cert.raw_serial()),
        sha256: hex(&Sha256::digest(der)),
        self_signed,
        is_ca: cert.is_ca(),
        key,
        signature_algorithm: signature_algorithm_name(&signature_oid),
        ca_issuer_urls,
        crl_urls,
    };
    Ok(Parsed {
        info,
        subject_raw,
        issuer_raw,
        signature_oid,
        rsa_bits,
    })
}

const OID_AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_DSA: &str = "1.2.840.10040.4.1";

/// Signature algorithms whose hash is broken (collisions): md2, md5, sha1.
const WEAK_SIGNATURE_OIDS: [&str; 6] = [
    "1.2.840.113549.1.1.2", // md2WithRSAEncryption
    "1.2.840.113549.1.1.4", // md5WithRSAEncryption
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
];

fn signature_algorithm_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSASignature",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-sha1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-sha256",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => other,
    };
    name.to_string()
}

fn describe_key(cert: &X509Certificate<'_>) -> (String, Option<usize>) {
    let spki = cert.public_key();
    let algorithm = spki.algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        OID_RSA_ENCRYPTION | OID_RSASSA_PSS => {
            let bits = match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => Some(significant_bits(rsa.modulus)),
                _ => None,
            };
            let label = if algorithm == OID_RSASSA_PSS {
                "RSA-PSS"
            } else {
                "RSA"
            };
            match bits {
                Some(bits) => (format!("{label} {bits}"), Some(bits)),
                None => (format!("{label} (unreadable key)"), None),
            }
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|params| params.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let name = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "P-256".to_string(),
                Some("1.3.132.0.34") => "P-384".to_string(),
                Some("1.3.132.0.35") => "P-521".to_string(),
                Some("1.3.132.0.10") => "secp256k1".to_string(),
                Some(other) => other.to_string(),
                None => "(unknown curve)".to_string(),
            };
            (format!("EC {name}"), None)
        }
        "1.3.101.112" => ("Ed25519".to_string(), None),
        "1.3.101.113" => ("Ed448".to_string(), None),
        OID_DSA => {
            let bits = spki.parsed().map(|key| key.key_size()).unwrap_or(0);
            (format!("DSA {bits}"), None)
        }
        other => (format!("unknown ({other})"), None),
    }
}

/// Bit length of a big-endian unsigned integer (DER adds a leading zero byte when the top bit
/// is set; x509-parser's own `key_size` miscounts moduli without it).
fn significant_bits(be: &[u8]) -> usize {
    let digits = match be.iter().position(|b| *b != 0) {
        Some(first) => &be[first..],
        None => return 0,
    };
    match digits.first() {
        Some(top) => (digits.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn name_to_string(name: &X509Name<'_>) -> String {
    name.to_string()
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .last()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

fn serial_hex(raw: &[u8]) -> String {
    let first = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex(raw.get(first..).unwrap_or(raw))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

// ---- names --------------------------------------------------------------------------------

/// Lowercase, without a port, brackets or one trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = if let Some(inner) = host.strip_prefix('[') {
        // "[::1]:443" or "[::1]"
        inner.split(']').next().unwrap_or(inner)
    } else if host.matches(':').count() == 1 {
        // "name:port"; more than one colon is a bare IPv6 address.
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// The presented DNS identifiers: the DNS SANs, or the CN when there are none.
fn dns_identifiers(cert: &CertInfo) -> impl Iterator<Item = &str> {
    let use_cn = cert.dns_names.is_empty();
    cert.dns_names
        .iter()
        .map(String::as_str)
        .chain(cert.common_name.as_deref().filter(|_| use_cn))
}

fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim();
    let pattern = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    if let Some(suffix) = pattern.strip_prefix("*.") {
        // The wildcard must sit over a name with at least two labels (no "*.com") and may
        // only replace one whole label of the host.
        if suffix.contains('*') || !suffix.contains('.') {
            return false;
        }
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        };
    }
    !pattern.contains('*') && pattern == host
}

fn in_domain(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Every name the certificate covers, for messages: "a.contoso.com, *.contoso.com, 10.0.0.5".
fn covered_names(cert: &CertInfo) -> String {
    let mut names: Vec<String> = dns_identifiers(cert).map(str::to_string).collect();
    names.extend(cert.ip_addresses.iter().cloned());
    if names.is_empty() {
        "no names at all".to_string()
    } else {
        names.join(", ")
    }
}

// ---- checks -------------------------------------------------------------------------------

fn position_label(position: usize) -> String {
    match position {
        0 => "the server certificate".to_string(),
        n => format!("certificate #{} of the chain", n + 1),
    }
}

/// `the server certificate "lyncweb.contoso.com"`, `the intermediate certificate "Contoso
/// Issuing CA" (#2 in the chain)`, …
fn cert_label(position: usize, cert: &CertInfo) -> String {
    let name = display_name(cert);
    match position {
        0 => format!("the server certificate \"{name}\""),
        n if cert.self_signed && cert.is_ca => {
            format!("the root certificate \"{name}\" (#{} in the chain)", n + 1)
        }
        n if cert.is_ca => format!(
            "the intermediate certificate \"{name}\" (#{} in the chain)",
            n + 1
        ),
        n => format!("the certificate \"{name}\" (#{} in the chain)", n + 1),
    }
}

/// The CN, else the whole subject, else the start of the fingerprint.
fn display_name(cert: &CertInfo) -> String {
    if let Some(cn) = cert.common_name.as_deref().filter(|cn| !cn.is_empty()) {
        return cn.to_string();
    }
    if !cert.subject.is_empty() {
        return cert.subject.clone();
    }
    let short = cert.sha256.get(..16).unwrap_or(&cert.sha256);
    format!("(no subject; sha256 {short}…)")
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}

fn check_validity(findings: &mut Vec<Finding>, position: usize, cert: &Parsed, now: UtcTime) {
    let info = &cert.info;
    let label = cert_label(position, info);
    if now > info.not_after {
        let ago = (now - info.not_after).whole_days();
        let when = if ago == 0 {
            "less than a day ago".to_string()
        } else {
            format!("{} ago", days(ago))
        };
        findings.push(Finding {
            severity: Severity::Error,
            code: "certificate-expired",
            message: format!(
                "{label} expired {when}, on {}; every client refuses it until the server is \
                 given a renewed certificate",
                lyncd_core::format_iso(info.not_after)
            ),
        });
    } else if now < info.not_before {
        let wait = (info.not_before - now).whole_seconds().unsigned_abs();
        findings.push(Finding {
            severity: Severity::Error,
            code: "certificate-not-yet-valid",
            message: format!(
                "{label} is not valid yet: it starts in {} (at {}) — check this machine's clock \
                 and the server's",
                format_duration(wait),
                lyncd_core::format_iso(info.not_before)
            ),
        });
    } else {
        let left = (info.not_after - now).whole_days();
        if left < EXPIRY_WARNING_DAYS {
            let when = if left == 0 {
                "in less than a day".to_string()
            } else {
                format!("in {}", days(left))
            };
            findings.push(Finding {
                severity: Severity::Warning,
                code: "certificate-expiring",
                message: format!(
                    "{label} expires {when}, on {}; renew it before sign-in fails for everyone",
                    lyncd_core::format_iso(info.not_after)
                ),
            });
        }
    }
}

/// `host-not-in-certificate`, and the SIP-domain rule behind Lync's "cannot verify that the
/// server is trusted for your sign-in address" prompt (diagnostics.md row 3), kept simple:
///
/// * no warning when the host is the SIP domain or a name under it (`lyncweb.contoso.com` for
///   `contoso.com`): the client trusts servers inside the sign-in address's domain;
/// * otherwise no warning when the certificate covers the SIP domain, or names anything in it
///   (`sip.contoso.com`, `*.contoso.com`): the certificate then vouches for the domain;
/// * otherwise `sip-domain-not-in-certificate` (Warning). The other real fix, the clients'
///   `TrustModelData` policy listing the server's domain, is invisible from here, so the
///   message names it instead of asserting the prompt will appear.
fn check_names(findings: &mut Vec<Finding>, leaf: &Parsed, host: &str, sip_domain: &str) {
    let info = &leaf.info;
    let label = cert_label(0, info);
    let host_name = normalize_host(host);
    if !host_name.is_empty() && !covers(info, &host_name) {
        findings.push(Finding {
            severity: Severity::Error,
            code: "host-not-in-certificate",
            message: format!(
                "{label} does not cover {host_name}, the name the client connected to; it \
                 covers: {}",
                covered_names(info)
            ),
        });
    }

    let domain = normalize_host(sip_domain);
    if domain.is_empty() || host_name.is_empty() || in_domain(&host_name, &domain) {
        return;
    }
    let names_something_in_domain = covers(info, &domain)
        || dns_identifiers(info).any(|pattern| {
            let pattern = pattern.trim().to_ascii_lowercase();
            let pattern = pattern.strip_suffix('.').unwrap_or(&pattern);
            in_domain(pattern.strip_prefix("*.").unwrap_or(pattern), &domain)
        });
    if !names_something_in_domain {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "sip-domain-not-in-certificate",
            message: format!(
                "{host_name} is outside the SIP domain {domain}, and {label} names nothing in \
                 {domain} (it covers: {}); Lync and Skype for Business clients then ask \"cannot \
                 verify that the server is trusted for your sign-in address. Connect anyway?\". \
                 Add {domain} or a name under it (for example sip.{domain}) to the certificate, \
                 or list {} in the clients' TrustModelData policy",
                covered_names(info),
                parent_domain(&host_name)
            ),
        });
    }
}

/// `lyncweb.fabrikam.net` → `fabrikam.net`: what TrustModelData would have to list.
fn parent_domain(host: &str) -> &str {
    match host.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest,
        _ => host,
    }
}

fn check_chain_shape(
    findings: &mut Vec<Finding>,
    parsed: &[(usize, Parsed)],
    host: &str,
    anchor_subjects: &[Vec<u8>],
) {
    let Some((_, leaf)) = parsed.first() else {
        return;
    };
    if server_certificate_not_first(findings, parsed, host) {
        // The issuer and self-signed checks below would describe the CA certificate as if it
        // were the server's: say only what is wrong.
        return;
    }
    let leaf_label = cert_label(0, &leaf.info);

    if leaf.info.self_signed {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "self-signed",
            message: format!(
                "{leaf_label} is self-signed: only clients that have this exact certificate in \
                 their trusted root store accept it; issue it from the enterprise CA or a public CA"
            ),
        });
        return;
    }

    let issuer_sent = parsed
        .iter()
        .skip(1)
        .any(|(_, cert)| cert.subject_raw == leaf.issuer_raw);
    let issuer_is_anchor = anchor_subjects.contains(&leaf.issuer_raw);
    if !issuer_sent && !issuer_is_anchor {
        let fetch = match leaf.info.ca_issuer_urls.first() {
            Some(url) => format!(" (the certificate says it can be fetched from {url})"),
            None => String::new(),
        };
        findings.push(Finding {
            severity: Severity::Warning,
            code: "chain-incomplete",
            message: format!(
                "{host} does not send the certificate of \"{0}\", the issuer of {leaf_label}{fetch}; \
                 clients that do not already have that intermediate (phones, machines outside the \
                 domain) fail with \"There was a problem verifying the certificate from the \
                 server\". Install the intermediate certificate on the server so it is sent with \
                 the chain (nothing is missing if \"{0}\" is itself a root CA the clients trust)",
                leaf.info.issuer
            ),
        });
    }

    check_order(findings, parsed, host);
}

/// A CA certificate first, with the certificate it issued later: the server's certificate is
/// not first, and every client checks the wrong certificate against the host name. Reports it
/// and returns `true`.
fn server_certificate_not_first(
    findings: &mut Vec<Finding>,
    parsed: &[(usize, Parsed)],
    host: &str,
) -> bool {
    let Some((_, first)) = parsed.first() else {
        return false;
    };
    if !first.info.is_ca {
        return false;
    }
    let Some((position, issued)) = parsed
        .iter()
        .skip(1)
        .find(|(_, cert)| !cert.info.is_ca && cert.issuer_raw == first.subject_raw)
    else {
        return false;
    };
    findings.push(Finding {
        severity: Severity::Warning,
        code: "chain-out-of-order",
        message: format!(
            "{host} sends a CA certificate (\"{}\") first; its own certificate \"{}\" comes \
             at #{} — TLS requires the server's certificate first, so clients check the wrong \
             certificate",
            display_name(&first.info),
            display_name(&issued.info),
            position + 1
        ),
    });
    true
}

/// TLS 1.2 requires each certificate to certify the one before it; TLS 1.3 relaxed this to a
/// SHOULD, and Schannel and OpenSSL re-sort, but some older stacks (Java, early mobile
/// clients) build the path only in the order sent.
fn check_order(findings: &mut Vec<Finding>, parsed: &[(usize, Parsed)], host: &str) {
    // Follow issuers from the server's certificate through what was sent.
    let mut path = vec![0usize];
    let mut current = 0usize;
    while !parsed[current].1.info.self_signed {
        let next = parsed.iter().enumerate().position(|(index, (_, cert))| {
            !path.contains(&index) && cert.subject_raw == parsed[current].1.issuer_raw
        });
        match next {
            Some(index) => {
                path.push(index);
                current = index;
            }
            None => break,
        }
    }

    let in_order = path.iter().enumerate().all(|(step, index)| step == *index);
    let extra: Vec<String> = parsed
        .iter()
        .enumerate()
        .filter(|(index, _)| !path.contains(index))
        .map(|(_, (position, cert))| format!("#{} \"{}\"", position + 1, cert.info.subject))
        .collect();
    if !in_order {
        let order: Vec<String> = path
            .iter()
            .map(|index| format!("#{}", parsed[*index].0 + 1))
            .collect();
        findings.push(Finding {
            severity: Severity::Info,
            code: "chain-out-of-order",
            message: format!(
                "{host} sends its chain out of order (the issuer path is {}); most clients \
                 re-sort it, some older ones fail",
                order.join(" → ")
            ),
        });
    } else if !extra.is_empty() {
        findings.push(Finding {
            severity: Severity::Info,
            code: "chain-out-of-order",
            message: format!(
                "{host} also sends certificates that are not part of its chain: {}",
                extra.join(", ")
            ),
        });
    }
}

fn check_algorithms(findings: &mut Vec<Finding>, position: usize, cert: &Parsed) {
    let info = &cert.info;
    // The signature on a trust anchor is never checked, so a SHA-1 self-signed root is fine.
    if !info.self_signed && WEAK_SIGNATURE_OIDS.contains(&cert.signature_oid.as_str()) {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "weak-signature",
            message: format!(
                "{} is signed with {}; SHA-1 and MD5 signatures are refused by current Windows, \
                 macOS, iOS and Android clients — reissue it with SHA-256",
                cert_label(position, info),
                info.signature_algorithm
            ),
        });
    }
    if let Some(bits) = cert.rsa_bits
        && bits < MIN_RSA_BITS
    {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "weak-key",
            message: format!(
                "{} has a {bits}-bit RSA key; keys under {MIN_RSA_BITS} bits are refused by \
                 current clients — reissue it with a 2048-bit (or larger) key",
                cert_label(position, info)
            ),
        });
    }
}
