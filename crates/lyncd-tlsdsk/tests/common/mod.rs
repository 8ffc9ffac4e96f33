//! Test support shared by the integration tests and (through `#[path]`) the crate's unit tests:
//! certificates, a TLS 1.0 PRF written from RFC 2246, and a bare OpenSSL peer.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use lyncd_pki::{CertificateAuthority, IssuedCert};
use lyncd_tlsdsk::{ClientContext, ServerContext, UtcTime};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslStream};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use time::Duration;
use time::macros::datetime;

pub const TARGETNAME: &str = "sippool.contoso.com";
pub const ALICE: &str = "sip:alice@contoso.com";
/// User certificates from CertProv live 8 hours (sip.md §8).
pub const USER_CERT_LIFETIME: Duration = Duration::hours(8);

pub fn now() -> UtcTime {
    datetime!(2026-11-25 12:00:00 UTC)
}

pub fn captures() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/interop/captures"
    )
}

/// One CA, one pool certificate and one user certificate, made once per test binary
/// (RSA key generation is the slow part).
pub struct Fixture {
    pub ca: CertificateAuthority,
    pub pool: IssuedCert,
    pub alice_cert_pem: String,
    pub alice_key_pem: String,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = CertificateAuthority::generate("Test CA", now()).expect("test CA");
        let pool = ca
            .issue_signing_cert(TARGETNAME, now(), Duration::days(365))
            .expect("pool certificate");
        let (alice_cert_pem, alice_key_pem) = user_cert(&ca, ALICE, now(), USER_CERT_LIFETIME);
        Fixture {
            ca,
            pool,
            alice_cert_pem,
            alice_key_pem,
        }
    })
}

impl Fixture {
    pub fn server(&self) -> ServerContext {
        ServerContext::new(
            &self.pool.chain_pem,
            self.pool.key_pem.expose(),
            self.ca.cert_pem(),
        )
        .expect("server context")
    }

    pub fn client(&self) -> ClientContext {
        ClientContext::new(
            &self.alice_cert_pem,
            &self.alice_key_pem,
            Some(self.ca.cert_pem()),
        )
        .expect("client context")
    }
}

/// A user certificate as CertProv would issue it: RSA-2048, SAN URI `uri`, clientAuth, valid
/// from `not_before` for `lifetime`. Returns (certificate PEM, PKCS#8 key PEM).
pub fn user_cert(
    ca: &CertificateAuthority,
    uri: &str,
    not_before: UtcTime,
    lifetime: Duration,
) -> (String, String) {
    let ca_cert = X509::from_pem(ca.cert_pem().as_bytes()).expect("CA cert");
    let ca_key = PKey::private_key_from_pem(ca.key_pem().expose().as_bytes()).expect("CA key");
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");

    let mut name = X509NameBuilder::new().expect("name");
    let cn = uri.strip_prefix("sip:").unwrap_or(uri);
    name.append_entry_by_text("CN", cn).expect("cn");
    let name = name.build();

    let mut serial = BigNum::new().expect("bn");
    serial
        .rand(128, MsbOption::MAYBE_ZERO, false)
        .expect("serial");
    let serial = Asn1Integer::from_bn(&serial).expect("serial");

    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca_cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    let nb = not_before.unix_timestamp();
    let na = (not_before + lifetime).unix_timestamp();
    b.set_not_before(&Asn1Time::from_unix(nb).expect("nb"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(na).expect("na"))
        .expect("na");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
        .expect("eku");
    let san = SubjectAlternativeName::new()
        .uri(uri)
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .expect("san");
    b.append_extension(san).expect("san");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let cert = b.build();
    (
        String::from_utf8(cert.to_pem().expect("pem")).expect("utf8"),
        String::from_utf8(key.private_key_to_pem_pkcs8().expect("pem")).expect("utf8"),
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 2246 §5 P_hash.
fn p_hash<M: Mac + hmac::digest::KeyInit + Clone>(
    secret: &[u8],
    seed: &[u8],
    len: usize,
) -> Vec<u8> {
    let keyed = <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("hmac key");
    let mut out = Vec::with_capacity(len);
    let mut a = {
        let mut m = keyed.clone();
        m.update(seed);
        m.finalize().into_bytes().to_vec()
    };
    while out.len() < len {
        let mut m = keyed.clone();
        m.update(&a);
        m.update(seed);
        out.extend_from_slice(&m.finalize().into_bytes());
        let mut m = keyed.clone();
        m.update(&a);
        a = m.finalize().into_bytes().to_vec();
    }
    out.truncate(len);
    out
}

/// The TLS 1.0 PRF (RFC 2246 §5): P_MD5 over the first half of the secret XOR P_SHA-1 over
/// the second half (halves overlap by one byte when the length is odd).
pub fn tls10_prf(secret: &[u8], label: &str, seed: &[u8], len: usize) -> Vec<u8> {
    let half = secret.len().div_ceil(2);
    let (s1, s2) = (&secret[..half], &secret[secret.len() - half..]);
    let mut label_seed = label.as_bytes().to_vec();
    label_seed.extend_from_slice(seed);
    let md5 = p_hash::<Hmac<md5::Md5>>(s1, &label_seed, len);
    let sha = p_hash::<Hmac<sha1::Sha1>>(s2, &label_seed, len);
    md5.iter().zip(&sha).map(|(a, b)| a ^ b).collect()
}

/// An in-memory pipe for a bare OpenSSL peer (the crate's own stream is private).
#[derive(Default)]
pub struct Pipe {
    pub incoming: Vec<u8>,
    pub outgoing: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.incoming.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.incoming.len().min(buf.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        self.incoming.drain(..n);
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A plain OpenSSL client, for peers our `ClientContext` refuses to be (no certificate, …).
pub struct RawClient {
    tls: SslStream<Pipe>,
}

impl RawClient {
    pub fn new(ctx: &SslContext) -> Self {
        let mut ssl = Ssl::new(ctx).expect("ssl");
        ssl.set_connect_state();
        RawClient {
            tls: SslStream::new(ssl, Pipe::default()).expect("stream"),
        }
    }

    /// Feeds `input`, runs the handshake, returns what the client wrote (and whether it failed).
    pub fn leg(&mut self, input: &[u8]) -> (Vec<u8>, Result<(), String>) {
        self.tls.get_mut().incoming.extend_from_slice(input);
        let result = match self.tls.do_handshake() {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        (std::mem::take(&mut self.tls.get_mut().outgoing), result)
    }
}
