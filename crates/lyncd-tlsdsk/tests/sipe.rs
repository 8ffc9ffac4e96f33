//! Our server against SIPE's real ClientHello (interop captures) and a byte-level emulation of
//! SIPE's C2 (sip.md §5.3): TLS 1.0 rules, RSA key transport, unprefixed MD5‖SHA-1
//! CertificateVerify, no extensions.

mod common;

use common::{ALICE, captures, fixture, hex, now, tls10_prf};
use lyncd_tlsdsk::records::{CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HANDSHAKE, split_records};
use lyncd_tlsdsk::{MacAlgorithm, TlsDskError};
use md5::Md5;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;
use sha1::{Digest, Sha1};

const CLIENT_HELLOS: [&str; 3] = [
    "01-autodiscover-full-flow/018-tls-dsk-client-hello.bin",
    "02-explicit-server/009-tls-dsk-client-hello.bin",
    "03-srv-discovery/013-tls-dsk-client-hello.bin",
];

fn client_hello(path: &str) -> Vec<u8> {
    let full = format!("{}/{path}", captures());
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Handshake messages (type, whole message bytes) of a flight, checking that no message is
/// split across records (sip.md §5.2: SIPE cannot reassemble them).
fn handshake_messages(flight: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    for record in split_records(flight).unwrap() {
        if record.content_type != CONTENT_HANDSHAKE {
            continue;
        }
        let mut rest = record.fragment;
        while !rest.is_empty() {
            assert!(rest.len() >= 4, "handshake header split across records");
            let len = usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
            assert!(
                rest.len() >= 4 + len,
                "handshake message split across records"
            );
            out.push((rest[0], rest[..4 + len].to_vec()));
            rest = &rest[4 + len..];
        }
    }
    out
}

struct ServerHello {
    version: [u8; 2],
    random: [u8; 32],
    suite: u16,
    has_extensions: bool,
}

fn parse_server_hello(msg: &[u8]) -> ServerHello {
    let body = &msg[4..];
    let sid_len = usize::from(body[34]);
    let after_sid = 35 + sid_len;
    ServerHello {
        version: [body[0], body[1]],
        random: body[2..34].try_into().unwrap(),
        suite: u16::from_be_bytes([body[after_sid], body[after_sid + 1]]),
        has_extensions: body.len() > after_sid + 3,
    }
}

fn md5_sha1(data: &[u8]) -> Vec<u8> {
    [Md5::digest(data).to_vec(), Sha1::digest(data).to_vec()].concat()
}

fn handshake_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    [&[kind, len[1], len[2], len[3]][..], body].concat()
}

fn record(kind: u8, fragment: &[u8]) -> Vec<u8> {
    let len = u16::try_from(fragment.len()).unwrap().to_be_bytes();
    [&[kind, 3, 1, len[0], len[1]][..], fragment].concat()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn aes_cbc(mode: Mode, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    let cipher = match key.len() {
        16 => Cipher::aes_128_cbc(),
        _ => Cipher::aes_256_cbc(),
    };
    let mut c = Crypter::new(cipher, mode, key, Some(iv)).unwrap();
    c.pad(false);
    let mut out = vec![0u8; data.len() + 32];
    let n = c.update(data, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn server_answers_sipe_client_hellos_with_tls10() {
    let server = fixture().server();
    for path in CLIENT_HELLOS {
        let c1 = client_hello(path);
        assert_eq!(c1.len(), 58, "{path}");
        let (_, s1) = server.accept(&c1, now()).unwrap();
        let messages = handshake_messages(&s1);
        let kinds: Vec<u8> = messages.iter().map(|(k, _)| *k).collect();
        // ServerHello, Certificate, CertificateRequest, ServerHelloDone (sip.md §5.8).
        assert_eq!(kinds, vec![2, 11, 13, 14], "{path}");
        let records = split_records(&s1).unwrap();
        // pidgin-sipe fails on a record holding only the empty ServerHelloDone: the whole
        // flight must be one record, as Microsoft's servers send it.
        assert_eq!(records.len(), 1, "{path}: S1 must be one record");
        assert_eq!(records[0].version, 0x0301, "{path}");
        let hello = parse_server_hello(&messages[0].1);
        assert_eq!(hello.version, [3, 1], "{path}");
        assert!(hello.suite == 0x002f || hello.suite == 0x0035, "{path}");
        assert!(
            !hello.has_extensions,
            "{path}: SIPE sent none, so none may come back"
        );
        eprintln!("{path}: S1 {} bytes, suite {:#06x}", s1.len(), hello.suite);
    }
}

/// SIPE's C2, built as sip.md §5.3 describes, for the server's S1; returns (C2, the
/// handshake transcript including the client Finished, master secret, client random, server
/// random, suite key length).
struct SipeFlight {
    c2: Vec<u8>,
    transcript: Vec<u8>,
    master: Vec<u8>,
    client_random: Vec<u8>,
    server_random: Vec<u8>,
    key_block: Vec<u8>,
    key_len: usize,
}

fn sipe_c2(c1: &[u8], s1: &[u8], cert_pem: &str, key_pem: &str) -> SipeFlight {
    let client_random = c1[11..43].to_vec();
    let messages = handshake_messages(s1);
    let hello = parse_server_hello(&messages[0].1);
    let key_len = if hello.suite == 0x002f { 16 } else { 32 };
    let server_cert = {
        let body = &messages[1].1[4..];
        let len = usize::from(body[3]) << 16 | usize::from(body[4]) << 8 | usize::from(body[5]);
        X509::from_der(&body[6..6 + len]).unwrap()
    };

    let mut transcript = c1[5..].to_vec();
    for (_, m) in &messages {
        transcript.extend_from_slice(m);
    }

    // Certificate: exactly one certificate, the CertProv leaf.
    let der = X509::from_pem(cert_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let der_len = u32::try_from(der.len()).unwrap().to_be_bytes();
    let list_len = u32::try_from(der.len() + 3).unwrap().to_be_bytes();
    let certificate = handshake_msg(11, &[&list_len[1..], &der_len[1..], &der[..]].concat());
    // ClientKeyExchange: 48-byte pre-master beginning 03 01, PKCS#1 v1.5 type 2, 2-byte length.
    let mut pre_master = vec![3u8, 1];
    let mut random = [0u8; 46];
    openssl::rand::rand_bytes(&mut random).unwrap();
    pre_master.extend_from_slice(&random);
    let server_rsa = server_cert.public_key().unwrap().rsa().unwrap();
    let mut encrypted = vec![0u8; server_rsa.size() as usize];
    let n = server_rsa
        .public_encrypt(&pre_master, &mut encrypted, Padding::PKCS1)
        .unwrap();
    encrypted.truncate(n);
    let ckx = handshake_msg(
        16,
        &[&u16::try_from(n).unwrap().to_be_bytes()[..], &encrypted].concat(),
    );
    transcript.extend_from_slice(&certificate);
    transcript.extend_from_slice(&ckx);

    // CertificateVerify: raw type-1 signature over MD5‖SHA-1, no DigestInfo.
    let client_rsa = PKey::private_key_from_pem(key_pem.as_bytes())
        .unwrap()
        .rsa()
        .unwrap();
    let mut signature = vec![0u8; client_rsa.size() as usize];
    let n = client_rsa
        .private_encrypt(&md5_sha1(&transcript), &mut signature, Padding::PKCS1)
        .unwrap();
    signature.truncate(n);
    let verify = handshake_msg(
        15,
        &[&u16::try_from(n).unwrap().to_be_bytes()[..], &signature].concat(),
    );
    transcript.extend_from_slice(&verify);

    let master = tls10_prf(
        &pre_master,
        "master secret",
        &[&client_random[..], &hello.random].concat(),
        48,
    );
    let key_block = tls10_prf(
        &master,
        "key expansion",
        &[&hello.random[..], &client_random].concat(),
        2 * 20 + 2 * key_len + 2 * 16,
    );
    let (client_mac, client_key) = (&key_block[..20], &key_block[40..40 + key_len]);
    let client_iv = &key_block[40 + 2 * key_len..56 + 2 * key_len];

    let verify_data = tls10_prf(&master, "client finished", &md5_sha1(&transcript), 12);
    let finished = handshake_msg(20, &verify_data);
    transcript.extend_from_slice(&finished);
    let mac = hmac_sha1(
        client_mac,
        &[
            &0u64.to_be_bytes(),
            &[22, 3, 1],
            &16u16.to_be_bytes(),
            &finished,
        ],
    );
    let mut plain = [finished, mac].concat();
    let pad = 15 - plain.len() % 16;
    plain.extend(std::iter::repeat_n(u8::try_from(pad).unwrap(), pad + 1));
    let encrypted_finished = aes_cbc(Mode::Encrypt, client_key, client_iv, &plain);

    let c2 = [
        record(22, &[certificate, ckx, verify].concat()),
        vec![20, 3, 1, 0, 1, 1],
        record(22, &encrypted_finished),
    ]
    .concat();
    SipeFlight {
        c2,
        transcript,
        master,
        client_random,
        server_random: hello.random.to_vec(),
        key_block,
        key_len,
    }
}

#[test]
fn sipe_emulated_handshake_completes_with_a_59_byte_s2() {
    let f = fixture();
    let server = f.server();
    for path in CLIENT_HELLOS {
        let c1 = client_hello(path);
        let (awaiting, s1) = server.accept(&c1, now()).unwrap();
        let flight = sipe_c2(&c1, &s1, &f.alice_cert_pem, &f.alice_key_pem);
        let (done, s2) = awaiting.finish(&flight.c2).unwrap();

        assert_eq!(done.protocol, "TLSv1");
        assert_eq!(done.keys.mac, MacAlgorithm::HmacSha1);
        assert_eq!(done.peer.sip_uris, vec![ALICE.to_string()]);
        // sip.md §5.2: CCS + encrypted Finished, 59 bytes with AES-CBC-SHA under TLS 1.0.
        assert_eq!(s2.len(), 59, "{path}");
        let records = split_records(&s2).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].content_type, CONTENT_CHANGE_CIPHER_SPEC);
        assert_eq!(records[1].content_type, CONTENT_HANDSHAKE);

        // The server Finished decrypts and verifies under TLS 1.0 rules.
        let kl = flight.key_len;
        let server_mac = &flight.key_block[20..40];
        let server_key = &flight.key_block[40 + kl..40 + 2 * kl];
        let server_iv = &flight.key_block[56 + 2 * kl..72 + 2 * kl];
        let plain = aes_cbc(Mode::Decrypt, server_key, server_iv, records[1].fragment);
        let expected = tls10_prf(
            &flight.master,
            "server finished",
            &md5_sha1(&flight.transcript),
            12,
        );
        assert_eq!(&plain[..4], &[20, 0, 0, 12]);
        assert_eq!(hex(&plain[4..16]), hex(&expected));
        let mac = hmac_sha1(
            server_mac,
            &[
                &0u64.to_be_bytes(),
                &[22, 3, 1],
                &16u16.to_be_bytes(),
                &plain[..16],
            ],
        );
        assert_eq!(hex(&plain[16..36]), hex(&mac));

        // And the signing keys are SIPE's PRF (sip.md §5.5).
        let material = tls10_prf(
            &flight.master,
            "client EAP encryption",
            &[&flight.client_random[..], &flight.server_random].concat(),
            128,
        );
        assert_eq!(hex(&material[64..96]), hex(done.keys.client.expose()));
        assert_eq!(hex(&material[96..128]), hex(done.keys.server.expose()));
        eprintln!(
            "{path}: S1 {} bytes, C2 {} bytes, S2 {} bytes",
            s1.len(),
            flight.c2.len(),
            s2.len()
        );
    }
}

#[test]
fn sipe_flight_with_a_bad_certificate_verify_is_refused() {
    let f = fixture();
    let c1 = client_hello(CLIENT_HELLOS[0]);
    let (awaiting, s1) = f.server().accept(&c1, now()).unwrap();
    let mut flight = sipe_c2(&c1, &s1, &f.alice_cert_pem, &f.alice_key_pem);
    // Flip a byte of the CertificateVerify signature (the end of the first record).
    let first_len = 5 + split_records(&flight.c2).unwrap()[0].fragment.len();
    flight.c2[first_len - 1] ^= 1;
    let err = awaiting.finish(&flight.c2).unwrap_err();
    assert!(matches!(err, TlsDskError::Handshake(_)), "{err:?}");
}
