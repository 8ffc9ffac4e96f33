//! The XML-DSig and XML-Enc operations behind the token types, on top of bergshamra.
//!
//! Randomness: session keys and GCM nonces come from the caller's [`Entropy`], never from a
//! global RNG. The one exception is RSA-OAEP padding, whose random seed AWS-LC draws internally
//! (no AWS-LC API accepts it from outside); it never influences anything but the padding.
//!
//! Why not `bergshamra::encrypt`: it generates the session key and the GCM nonce from the
//! provider's RNG, which would make issuing non-deterministic under test and break the rule that
//! cores take randomness as an argument. We therefore build the `EncryptedData` wrapper as text
//! (which SIPE needs byte-exact anyway, http.md §5.3) and call the same primitives bergshamra uses:
//! its RSA-OAEP key transport and AES key wrap, and AWS-LC's AES-GCM with our nonce. Decryption
//! uses bergshamra's AES-GCM cipher, whose wire format (nonce ‖ ciphertext ‖ tag) is XML-Enc 1.1's.

use bergshamra::core::algorithm;
use bergshamra::crypto::keytransport::{self, OaepParams};
use bergshamra::crypto::{cipher, keywrap};
use bergshamra::dsig::verify::verify_document_with_source;
use bergshamra::{DsigContext, Key, KeysManager, VerifyResult};
use lyncd_core::Entropy;
use zeroize::Zeroizing;

use crate::error::{TokenError, WsError};
use crate::keys::{RsaDecryptionKey, RsaEncryptionCert, RsaSigningKey, TrustedCert};
use crate::xml::{self, ns};

pub(crate) const RSA_OAEP: &str = algorithm::RSA_OAEP_ENC11;
pub(crate) const OAEP_DIGEST: &str = algorithm::SHA256;
pub(crate) const OAEP_MGF: &str = algorithm::MGF1_SHA256;
pub(crate) const AES256_GCM: &str = algorithm::AES256_GCM;
pub(crate) const KW_AES256: &str = algorithm::KW_AES256;
pub(crate) const EXC_C14N: &str = algorithm::EXC_C14N;
pub(crate) const RSA_SHA256: &str = algorithm::RSA_SHA256;
pub(crate) const SHA256: &str = algorithm::SHA256;
pub(crate) const ENVELOPED: &str = algorithm::ENVELOPED_SIGNATURE;
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";

fn oaep_params() -> OaepParams {
    OaepParams {
        digest_uri: Some(OAEP_DIGEST.to_string()),
        mgf_uri: Some(OAEP_MGF.to_string()),
        oaep_params: None,
    }
}

fn crypto_err(e: impl std::fmt::Display) -> WsError {
    WsError::Crypto(e.to_string())
}

/// An enveloped-signature template (empty digest and signature values) for the element whose
/// ID is `id`: exclusive C14N, RSA-SHA256, SHA-256, with the signer's certificate in `KeyInfo`.
/// Declares its own default namespace so the signed element stays self-contained.
pub(crate) fn signature_template(id: &str, signer: &RsaSigningKey) -> String {
    format!(
        "<Signature xmlns=\"{dsig}\"><SignedInfo><CanonicalizationMethod Algorithm=\"{c14n}\"/>\
<SignatureMethod Algorithm=\"{rsa}\"/><Reference URI=\"#{id}\"><Transforms>\
<Transform Algorithm=\"{env}\"/><Transform Algorithm=\"{c14n}\"/></Transforms>\
<DigestMethod Algorithm=\"{sha}\"/><DigestValue></DigestValue></Reference></SignedInfo>\
<SignatureValue></SignatureValue><KeyInfo><X509Data><X509Certificate>{cert}</X509Certificate>\
</X509Data></KeyInfo></Signature>",
        dsig = ns::DSIG,
        c14n = EXC_C14N,
        rsa = RSA_SHA256,
        env = ENVELOPED,
        sha = SHA256,
        id = xml::escape_attr(id),
        cert = signer.cert_b64(),
    )
}

/// Fills in a template produced with [`signature_template`].
pub(crate) fn sign(template: String, signer: &RsaSigningKey) -> Result<String, WsError> {
    let ctx = DsigContext::new(signer.manager());
    bergshamra::dsig::sign::sign_owned(&ctx, template).map_err(crypto_err)
}

/// Verifies the one enveloped signature of `text`, whose document element must be the element
/// the signature references. Structural checks (one Signature, one Reference, allow-listed
/// algorithms) are done by the caller on its own parse; this adds the cryptography and confirms
/// bergshamra resolved the reference to the document element itself.
pub(crate) fn verify_enveloped(text: &str, trusted: &TrustedCert) -> Result<(), TokenError> {
    let doc =
        bergshamra::xml::uppsala::parse(text).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let root = doc
        .document_element()
        .ok_or_else(|| TokenError::Malformed("empty document".into()))?;
    let ctx = DsigContext::new(trusted.manager());
    let result = verify_document_with_source(&ctx, &doc, Some(text));
    match result {
        Ok(VerifyResult::Valid { references, .. }) => {
            if references.len() == 1
                && references[0].digest_verified
                && references[0].resolved_node == Some(root)
            {
                Ok(())
            } else {
                Err(TokenError::SignatureWrapping(
                    "the signature does not cover exactly the token's root element".into(),
                ))
            }
        }
        Ok(VerifyResult::Invalid { reason }) => Err(classify_failure(&doc, text, reason)),
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("duplicate ID") {
                Err(TokenError::SignatureWrapping(msg))
            } else {
                Err(classify_failure(&doc, text, msg))
            }
        }
    }
}

/// After a failed verification, tells "signed by someone else" from "altered": the token is
/// re-verified with whatever key it carries itself. This is diagnostics only; both are refused.
fn classify_failure(
    doc: &bergshamra::xml::uppsala::Document<'_>,
    text: &str,
    reason: String,
) -> TokenError {
    let mut ctx = DsigContext::new_permissive(KeysManager::new());
    ctx.insecure = true;
    ctx.enabled_key_data_x509 = true;
    match verify_document_with_source(&ctx, doc, Some(text)) {
        Ok(VerifyResult::Valid { .. }) => TokenError::UntrustedSigner,
        _ => TokenError::BadSignature(reason),
    }
}

/// AES-256-GCM with a caller-chosen nonce; output is nonce ‖ ciphertext ‖ tag (XML-Enc 1.1).
fn aes_gcm_seal(key: &[u8; 32], nonce: [u8; 12], plaintext: &[u8]) -> Result<Vec<u8>, WsError> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(crypto_err)?);
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
    )
    .map_err(crypto_err)?;
    let mut out = Vec::with_capacity(12 + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn software_key(key: &Key) -> Result<bergshamra::SoftwareKey, String> {
    key.software_key()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the key cannot be used by the crypto provider".to_string())
}

/// Encrypts `plaintext` (an XML element) for `recipient` as a self-contained `EncryptedData`:
/// every namespace it uses is declared on it or inside it (SIPE transplants it, http.md §5.3).
pub(crate) fn encrypt_element(
    plaintext: &[u8],
    recipient: &RsaEncryptionCert,
    entropy: &mut dyn Entropy,
) -> Result<String, WsError> {
    let mut cek = Zeroizing::new([0u8; 32]);
    entropy.fill(cek.as_mut());
    let mut nonce = [0u8; 12];
    entropy.fill(&mut nonce);
    let content = aes_gcm_seal(&cek, nonce, plaintext)?;
    let transport =
        keytransport::from_uri_with_params(RSA_OAEP, oaep_params()).map_err(crypto_err)?;
    let public = software_key(recipient.key()).map_err(WsError::Crypto)?;
    let wrapped = transport
        .encrypt(&public, cek.as_ref())
        .map_err(crypto_err)?;
    Ok(format!(
        "<EncryptedData xmlns=\"{xenc}\" Id=\"Assertion0\" Type=\"{ty}\">\
<EncryptionMethod Algorithm=\"{gcm}\"/>\
<KeyInfo xmlns=\"{dsig}\"><EncryptedKey xmlns=\"{xenc}\">\
<EncryptionMethod Algorithm=\"{oaep}\"><DigestMethod xmlns=\"{dsig}\" Algorithm=\"{dig}\"/>\
<MGF xmlns=\"{xenc11}\" Algorithm=\"{mgf}\"/></EncryptionMethod>\
<KeyInfo xmlns=\"{dsig}\"><KeyName>{name}</KeyName></KeyInfo>\
<CipherData><CipherValue>{key}</CipherValue></CipherData></EncryptedKey></KeyInfo>\
<CipherData><CipherValue>{data}</CipherValue></CipherData></EncryptedData>",
        xenc = ns::XENC,
        xenc11 = ns::XENC11,
        dsig = ns::DSIG,
        ty = ELEMENT_TYPE,
        gcm = AES256_GCM,
        oaep = RSA_OAEP,
        dig = OAEP_DIGEST,
        mgf = OAEP_MGF,
        name = xml::escape_text(recipient.key_name()),
        key = xml::b64_encode(&wrapped),
        data = xml::b64_encode(&content),
    ))
}

fn algorithm_of(n: roxmltree::Node<'_, '_>) -> Result<String, TokenError> {
    let m = xml::child(n, &[ns::XENC], "EncryptionMethod")
        .ok_or_else(|| TokenError::Malformed("EncryptionMethod is missing".into()))?;
    Ok(m.attribute("Algorithm").unwrap_or("").to_string())
}

fn cipher_value(n: roxmltree::Node<'_, '_>) -> Result<Vec<u8>, TokenError> {
    let cv = xml::child(n, &[ns::XENC], "CipherData")
        .and_then(|cd| xml::child(cd, &[ns::XENC], "CipherValue"))
        .ok_or_else(|| TokenError::Malformed("CipherData/CipherValue is missing".into()))?;
    xml::b64_decode(&xml::text_of(cv))
        .ok_or_else(|| TokenError::Malformed("CipherValue is not base64".into()))
}

fn key_name(n: roxmltree::Node<'_, '_>) -> Result<String, TokenError> {
    xml::child(n, &[ns::DSIG], "KeyInfo")
        .and_then(|ki| xml::child(ki, &[ns::DSIG], "KeyName"))
        .map(xml::text_of)
        .ok_or_else(|| TokenError::Malformed("the EncryptedKey has no KeyInfo/KeyName".into()))
}

/// Decrypts an `EncryptedData` produced by [`encrypt_element`] (or a peer following the same
/// profile). Only AES-256-GCM content and RSA-OAEP (SHA-256, MGF1-SHA-256) key transport to a
/// key named exactly like ours are accepted.
pub(crate) fn decrypt_element(
    encrypted_data: &str,
    rp_key: &RsaDecryptionKey,
) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    let doc = xml::parse(encrypted_data.as_bytes(), xml::DEFAULT_MAX_BYTES)?;
    let ed = doc.root_element();
    if !xml::is(&ed, &[ns::XENC], "EncryptedData") {
        return Err(TokenError::Malformed(format!(
            "expected EncryptedData, found {}",
            ed.tag_name().name()
        )));
    }
    if let Some(t) = ed.attribute("Type")
        && t != ELEMENT_TYPE
    {
        return Err(TokenError::AlgorithmNotAllowed(t.to_string()));
    }
    let content_alg = algorithm_of(ed)?;
    if content_alg != AES256_GCM {
        return Err(TokenError::AlgorithmNotAllowed(content_alg));
    }
    let ek = xml::child(ed, &[ns::DSIG], "KeyInfo")
        .and_then(|ki| xml::child(ki, &[ns::XENC], "EncryptedKey"))
        .ok_or_else(|| TokenError::Malformed("no KeyInfo/EncryptedKey".into()))?;
    let name = key_name(ek)?;
    if name != rp_key.key_name() {
        return Err(TokenError::UnknownKeyName {
            found: name,
            expected: rp_key.key_name().to_string(),
        });
    }
    let ek_method = xml::child(ek, &[ns::XENC], "EncryptionMethod")
        .ok_or_else(|| TokenError::Malformed("EncryptedKey has no EncryptionMethod".into()))?;
    let transport_alg = ek_method.attribute("Algorithm").unwrap_or("");
    if transport_alg != RSA_OAEP {
        return Err(TokenError::AlgorithmNotAllowed(transport_alg.to_string()));
    }
    let digest = xml::child(ek_method, &[ns::DSIG], "DigestMethod")
        .and_then(|d| d.attribute("Algorithm"))
        .unwrap_or("");
    if digest != OAEP_DIGEST {
        return Err(TokenError::AlgorithmNotAllowed(digest.to_string()));
    }
    let mgf = xml::child(ek_method, &[ns::XENC11], "MGF")
        .and_then(|d| d.attribute("Algorithm"))
        .unwrap_or("");
    if mgf != OAEP_MGF {
        return Err(TokenError::AlgorithmNotAllowed(mgf.to_string()));
    }
    let wrapped = cipher_value(ek)?;
    let content = cipher_value(ed)?;

    let transport = keytransport::from_uri_with_params(RSA_OAEP, oaep_params())
        .map_err(|e| TokenError::AlgorithmNotAllowed(e.to_string()))?;
    let private = software_key(rp_key.key()).map_err(TokenError::Malformed)?;
    let cek = Zeroizing::new(
        transport
            .decrypt(&private, &wrapped)
            .map_err(|_| TokenError::Undecryptable)?,
    );
    if cek.len() != 32 {
        return Err(TokenError::Undecryptable);
    }
    let gcm =
        cipher::from_uri(AES256_GCM).map_err(|e| TokenError::AlgorithmNotAllowed(e.to_string()))?;
    let plain = gcm
        .decrypt(&cek, &content)
        .map_err(|_| TokenError::Undecryptable)?;
    Ok(Zeroizing::new(plain))
}

/// AES-256 key wrap (RFC 3394) of `key` under `kek`.
pub(crate) fn kw_wrap(kek: &[u8; 32], key: &[u8]) -> Result<Vec<u8>, WsError> {
    keywrap::from_uri(KW_AES256)
        .and_then(|kw| kw.wrap(kek, key))
        .map_err(crypto_err)
}

pub(crate) fn kw_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    keywrap::from_uri(KW_AES256)
        .and_then(|kw| kw.unwrap(kek, wrapped))
        .map(Zeroizing::new)
        .map_err(|_| TokenError::Undecryptable)
}
