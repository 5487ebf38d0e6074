//! Keyed, cosign-compatible signatures of components.
//!
//! A signature is cosign's *simple signing* payload — a small JSON document
//! naming the repository and the manifest digest — signed with ECDSA P-256
//! (SHA-256, ASN.1 DER signature) or Ed25519. Signatures are stored as
//! cosign stores them on registries without the referrers API (such as
//! distribution 2.8): one OCI image manifest tagged `sha256-<hex>.sig` in
//! the component's repository, one layer per signature
//! (`application/vnd.dev.cosign.simplesigning.v1+json`, the payload), the
//! base64 signature in the layer's `dev.cosignproject.cosign/signature`
//! annotation. `cosign verify --key` verifies what [`crate::Registry::sign`]
//! writes, and Vantage verifies what `cosign sign --key` writes.
//!
//! What is signed is the manifest digest; the manifest names the layer by
//! its digest, and the pulled layer is checked against it, so a verified
//! signature covers the component's bytes.
//!
//! Keys are PEM: public keys as `PUBLIC KEY` (SubjectPublicKeyInfo), private
//! keys as `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1), or cosign's
//! password-encrypted `ENCRYPTED SIGSTORE PRIVATE KEY` (`cosign
//! generate-key-pair`: scrypt, then NaCl secretbox over the PKCS#8 key).
//! The signing crypto is aws-lc-rs, the provider rustls already uses.
//!
//! Keyless signatures (a Fulcio certificate and a Rekor bundle in the
//! layer's `dev.sigstore.cosign/certificate` and `dev.sigstore.cosign/bundle`
//! annotations) are not verified: such a layer counts as not signed by any
//! configured key. See `docs/keyless.md` for the design.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::layout::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest};
use crate::reference::OciRef;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The config media type of a signature manifest.
pub const SIGNATURE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// `critical.type` of a simple-signing payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The largest payload read (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_SIZE: u64 = 64 * 1024;

/// The tag cosign stores the signatures of `digest` under:
/// `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// What a key can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::EcdsaP256 => "ECDSA P-256",
            Algorithm::Ed25519 => "Ed25519",
        })
    }
}

/// A key that verifies signatures.
#[derive(Debug, Clone)]
pub struct PublicKey {
    name: String,
    algorithm: Algorithm,
    key: std::sync::Arc<ParsedPublicKey>,
    fingerprint: String,
}

impl PublicKey {
    /// Parse a PEM `PUBLIC KEY`; `name` (usually its file) is how errors
    /// and results refer to it.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<PublicKey, String> {
        let block = ::pem::parse(pem).map_err(|e| format!("{name}: not a PEM public key: {e}"))?;
        if block.tag() != "PUBLIC KEY" {
            return Err(format!(
                "{name}: a PEM `{}` block, expected `PUBLIC KEY` (the .pub file, not the private key)",
                block.tag()
            ));
        }
        PublicKey::from_spki(name, block.contents())
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub fn from_spki(name: &str, der: &[u8]) -> Result<PublicKey, String> {
        let (algorithm, key) = if let Ok(k) =
            ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, der)
        {
            (Algorithm::EcdsaP256, k)
        } else if let Ok(k) = ParsedPublicKey::new(&sig::ED25519, der) {
            (Algorithm::Ed25519, k)
        } else {
            return Err(format!(
                "{name}: not an ECDSA P-256 or Ed25519 public key (the two kinds Vantage verifies)"
            ));
        };
        Ok(PublicKey {
            name: name.to_string(),
            algorithm,
            key: std::sync::Arc::new(key),
            fingerprint: fingerprint(der),
        })
    }

    /// Read and parse the PEM file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<PublicKey, String> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read key {name}: {e}"))?;
        PublicKey::from_pem(&name, &pem)
    }

    /// How errors and results name this key (its file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `SHA256:<hex>` of the DER key, first 16 hex digits: what `sign`
    /// prints and results show.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", &hex::encode(Sha256::digest(der))[..16])
}

/// A key that signs.
pub struct SigningKey {
    inner: SigningInner,
    public: PublicKey,
}

enum SigningInner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parse a PEM private key: `PRIVATE KEY` (PKCS#8, ECDSA P-256 or
    /// Ed25519), `EC PRIVATE KEY` (SEC1, P-256), or cosign's `ENCRYPTED
    /// SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY` decrypted
    /// with `password`.
    pub fn from_pem(name: &str, pem: &[u8], password: Option<&str>) -> Result<SigningKey, String> {
        let block = ::pem::parse(pem).map_err(|e| format!("{name}: not a PEM private key: {e}"))?;
        let decrypted;
        let der = match block.tag() {
            "PRIVATE KEY" | "EC PRIVATE KEY" => block.contents(),
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or_else(|| {
                    format!(
                        "{name}: the key is encrypted (cosign's format): set COSIGN_PASSWORD to its \
                         password"
                    )
                })?;
                decrypted = encrypted::open(block.contents(), password.as_bytes())
                    .map_err(|e| format!("{name}: {e}"))?;
                &decrypted[..]
            }
            tag => {
                return Err(format!(
                    "{name}: a PEM `{tag}` block, expected `PRIVATE KEY` (PKCS#8)"
                ));
            }
        };
        let inner = if let Ok(k) =
            EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der)
        {
            SigningInner::Ecdsa(k)
        } else if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            SigningInner::Ed25519(k)
        } else {
            return Err(format!(
                "{name}: not an ECDSA P-256 or Ed25519 private key (the two kinds Vantage signs with)"
            ));
        };
        let spki = match &inner {
            SigningInner::Ecdsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            SigningInner::Ed25519(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| format!("{name}: cannot derive the public key"))?;
        let public = PublicKey::from_spki(name, &spki)?;
        Ok(SigningKey { inner, public })
    }

    /// Read and parse the PEM file at `path` (see [`SigningKey::from_pem`]).
    pub fn from_file(path: &std::path::Path, password: Option<&str>) -> Result<SigningKey, String> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read key {name}: {e}"))?;
        SigningKey::from_pem(&name, &pem, password)
    }

    /// A new key pair, as PEM: the private key (PKCS#8 `PRIVATE KEY`, or
    /// with a `password` cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`, which
    /// `cosign sign --key` reads too) and the `PUBLIC KEY`.
    pub fn generate(
        algorithm: Algorithm,
        password: Option<&str>,
    ) -> Result<(String, String), String> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            Algorithm::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| "cannot generate a key".to_string())?;
        let plain = ::pem::encode(&::pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        let key = SigningKey::from_pem("generated", plain.as_bytes(), None)?;
        let spki = key.public_spki()?;
        let public = ::pem::encode(&::pem::Pem::new("PUBLIC KEY", spki));
        let private = match password {
            None => plain,
            Some(password) => ::pem::encode(&::pem::Pem::new(
                "ENCRYPTED SIGSTORE PRIVATE KEY",
                encrypted::seal(pkcs8.as_ref(), password.as_bytes())?,
            )),
        };
        Ok((private, public))
    }

    fn public_spki(&self) -> Result<Vec<u8>, String> {
        match &self.inner {
            SigningInner::Ecdsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            SigningInner::Ed25519(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| "cannot derive the public key".to_string())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Sign `message` (ECDSA: ASN.1 DER over SHA-256; Ed25519: pure).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match &self.inner {
            SigningInner::Ecdsa(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_string()),
            SigningInner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// Cosign's encrypted private keys: a JSON envelope (base64 fields) with
/// the scrypt parameters and salt, the NaCl secretbox nonce, and the
/// sealed PKCS#8 key.
mod encrypted {
    use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
    use base64::Engine as _;
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    use crypto_secretbox::{Nonce, XSalsa20Poly1305};
    use serde::{Deserialize, Serialize};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    #[derive(Serialize, Deserialize)]
    struct Envelope {
        kdf: Kdf,
        cipher: Cipher,
        ciphertext: String,
    }

    #[derive(Serialize, Deserialize)]
    struct Kdf {
        name: String,
        params: Params,
        salt: String,
    }

    #[derive(Serialize, Deserialize)]
    #[allow(non_snake_case)] // cosign's field names
    struct Params {
        N: u64,
        r: u32,
        p: u32,
    }

    #[derive(Serialize, Deserialize)]
    struct Cipher {
        name: String,
        nonce: String,
    }

    /// scrypt's cost as cosign writes it (N = 2^15, r = 8, p = 1).
    const LOG_N: u8 = 15;

    fn key(password: &[u8], salt: &[u8], p: &Params) -> Result<[u8; 32], String> {
        // Bounded (at most 64 MiB of scrypt memory): a key file must not
        // be able to exhaust the host. cosign writes N = 2^15, r = 8, p = 1.
        if !p.N.is_power_of_two() || p.N < 1 << 10 || p.N > 1 << 16 || p.r > 8 || p.p > 4 {
            return Err(format!(
                "unsupported scrypt parameters N={} r={} p={}",
                p.N, p.r, p.p
            ));
        }
        let params = scrypt::Params::new(p.N.trailing_zeros() as u8, p.r, p.p, 32)
            .map_err(|e| format!("scrypt parameters: {e}"))?;
        let mut key = [0u8; 32];
        scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| format!("scrypt: {e}"))?;
        Ok(key)
    }

    /// The PKCS#8 key sealed in `envelope` (the PEM block's contents).
    pub(super) fn open(envelope: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
        let e: Envelope = serde_json::from_slice(envelope)
            .map_err(|e| format!("not cosign's encrypted key format: {e}"))?;
        if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
            return Err(format!(
                "unsupported encryption {} + {} (cosign's is scrypt + nacl/secretbox)",
                e.kdf.name, e.cipher.name
            ));
        }
        let b64 = |field: &str, text: &str| {
            B64.decode(text)
                .map_err(|_| format!("the key's {field} is not base64"))
        };
        let salt = b64("salt", &e.kdf.salt)?;
        let nonce = b64("nonce", &e.cipher.nonce)?;
        let sealed = b64("ciphertext", &e.ciphertext)?;
        if nonce.len() != 24 {
            return Err("the key's nonce is not 24 bytes".into());
        }
        let key = key(password, &salt, &e.kdf.params)?;
        XSalsa20Poly1305::new(&key.into())
            .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
            .map_err(|_| "wrong password (COSIGN_PASSWORD), or the key is damaged".to_string())
    }

    /// `pkcs8` sealed with `password`, as the JSON envelope.
    pub(super) fn seal(pkcs8: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rng.fill(&mut salt)
            .and_then(|()| rng.fill(&mut nonce))
            .map_err(|_| "no randomness".to_string())?;
        let params = Params {
            N: 1 << LOG_N,
            r: 8,
            p: 1,
        };
        let key = key(password, &salt, &params)?;
        let sealed = XSalsa20Poly1305::new(&key.into())
            .encrypt(Nonce::from_slice(&nonce), pkcs8)
            .map_err(|_| "cannot encrypt the key".to_string())?;
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".into(),
                params,
                salt: B64.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: B64.encode(nonce),
            },
            ciphertext: B64.encode(sealed),
        };
        serde_json::to_vec(&envelope).map_err(|e| e.to_string())
    }
}

/// Cosign's simple-signing payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// What is signed.
    pub critical: Critical,
    /// Free-form annotations (`null` when none, as cosign writes it).
    #[serde(default)]
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// `critical` of a payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Critical {
    /// The repository.
    pub identity: Identity,
    /// The manifest digest.
    pub image: Image,
    /// Always [`PAYLOAD_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// `host[:port]/repository`.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>`.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload that signs `digest` in `r`'s repository, as cosign writes
/// it.
pub fn payload(r: &OciRef, digest: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: format!("{}/{}", r.registry, r.repository),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: PAYLOAD_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// One signature found for a manifest: the payload and the signature bytes.
#[derive(Debug, Clone)]
pub struct FoundSignature {
    /// The payload, as stored (what was signed).
    pub payload: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Why a payload layer is not a signature of `digest` (`None`: it is).
pub fn check_payload(payload: &[u8], digest: &str) -> Option<String> {
    let parsed: Payload = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(e) => return Some(format!("not a simple-signing payload: {e}")),
    };
    if parsed.critical.kind != PAYLOAD_TYPE {
        return Some(format!("payload type {:?}", parsed.critical.kind));
    }
    if !parsed
        .critical
        .image
        .docker_manifest_digest
        .eq_ignore_ascii_case(digest)
    {
        return Some(format!(
            "it signs {}, not {digest}",
            parsed.critical.image.docker_manifest_digest
        ));
    }
    None
}

/// The signature layer's descriptor for `payload` signed as `signature`.
pub fn signature_layer(payload: &[u8], signature: &[u8]) -> Descriptor {
    let mut layer = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, payload);
    layer.annotations.insert(
        SIGNATURE_ANNOTATION.to_string(),
        base64::engine::general_purpose::STANDARD.encode(signature),
    );
    layer
}

/// The signature manifest holding `layers`, and its config blob (what
/// cosign writes: an image config whose `rootfs.diff_ids` are the layers).
pub fn signature_manifest(layers: Vec<Descriptor>) -> (Vec<u8>, Vec<u8>) {
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        "config": {},
    });
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: None,
        config: Descriptor::of(SIGNATURE_CONFIG_MEDIA_TYPE, &config),
        layers,
        annotations: BTreeMap::new(),
    };
    (config, serde_json::to_vec(&manifest).unwrap_or_default())
}

/// The signature a layer's annotation carries, decoded.
pub fn layer_signature(layer: &Descriptor) -> Option<Vec<u8>> {
    let text = layer.annotations.get(SIGNATURE_ANNOTATION)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// Which keys must have signed which components, and whether an unsigned
/// one is refused.
#[derive(Debug, Clone, Default)]
pub struct VerifyPolicy {
    /// Refuse a component no trusted key signed (otherwise: warn and run).
    pub require: bool,
    /// The keys for every reference no rule matches.
    pub keys: Vec<PublicKey>,
    /// Per-prefix keys (`registry.example.com/vantage/`): the longest
    /// matching prefix wins.
    pub rules: Vec<(String, Vec<PublicKey>)>,
}

impl VerifyPolicy {
    /// Whether the policy checks anything at all.
    pub fn is_empty(&self) -> bool {
        !self.require && self.keys.is_empty() && self.rules.iter().all(|(_, k)| k.is_empty())
    }

    /// The keys trusted for `r` (any one of them signing suffices) and
    /// where that list comes from.
    pub fn keys_for(&self, r: &OciRef) -> (&[PublicKey], String) {
        let name = format!("{}/{}", r.registry, r.repository);
        let best = self
            .rules
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.trim_start_matches("oci://")))
            .max_by_key(|(prefix, _)| prefix.len());
        match best {
            Some((prefix, keys)) => (keys, format!("the rule for {prefix:?}")),
            None => (&self.keys, "[registry.verify] keys".to_string()),
        }
    }
}

/// Who signed a component, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key's name (its file).
    pub key: String,
    /// The key's fingerprint.
    pub fingerprint: String,
}

/// Check `found` against `keys`: the first key that verifies one of the
/// signatures, or why none does.
pub fn verify(
    found: &[FoundSignature],
    keys: &[PublicKey],
    digest: &str,
) -> Result<Verified, String> {
    if found.is_empty() {
        return Err(format!(
            "{digest} is not signed (no {} tag)",
            signature_tag(digest)
        ));
    }
    for key in keys {
        for s in found {
            if check_payload(&s.payload, digest).is_none() && key.verify(&s.payload, &s.signature) {
                return Ok(Verified {
                    key: key.name().to_string(),
                    fingerprint: key.fingerprint().to_string(),
                });
            }
        }
    }
    let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
    Err(format!(
        "{digest} has {} signature(s), none by a trusted key ({})",
        found.len(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> OciRef {
        OciRef::parse("oci://127.0.0.1:5000/vantage/http:1.0").unwrap()
    }

    #[test]
    fn both_kinds_of_key_sign_and_verify_and_a_wrong_key_does_not() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let (private, public) = SigningKey::generate(alg, None).unwrap();
            let key = SigningKey::from_pem("k", private.as_bytes(), None).unwrap();
            let public = PublicKey::from_pem("k.pub", public.as_bytes()).unwrap();
            assert_eq!(public.algorithm(), alg);
            assert_eq!(public.fingerprint(), key.public_key().fingerprint());
            let payload = payload(&reference(), &digest);
            let signature = key.sign(&payload).unwrap();
            let found = vec![FoundSignature {
                payload: payload.clone(),
                signature,
            }];
            let ok = verify(&found, std::slice::from_ref(&public), &digest).unwrap();
            assert_eq!(ok.key, "k.pub");
            // Another key of the same kind does not verify it.
            let (_, other) = SigningKey::generate(alg, None).unwrap();
            let other = PublicKey::from_pem("other.pub", other.as_bytes()).unwrap();
            let e = verify(&found, &[other], &digest).unwrap_err();
            assert!(e.contains("none by a trusted key (other.pub)"), "{e}");
            // A signature of another digest does not count for this one.
            let e = verify(&found, &[public], &format!("sha256:{}", "cd".repeat(32))).unwrap_err();
            assert!(e.contains("none by a trusted key"), "{e}");
        }
    }

    #[test]
    fn the_payload_is_cosigns() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let text = String::from_utf8(payload(&reference(), &digest)).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/vantage/http\"}},\
                 \"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\
                 \"optional\":null}}"
            )
        );
        assert_eq!(
            signature_tag(&digest),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        assert!(check_payload(text.as_bytes(), &digest).is_none());
        assert!(check_payload(b"{}", &digest).is_some());
    }

    #[test]
    fn keys_are_refused_with_a_reason() {
        let (private, public) = SigningKey::generate(Algorithm::EcdsaP256, None).unwrap();
        let e = PublicKey::from_pem("k.key", private.as_bytes()).unwrap_err();
        assert!(e.contains("expected `PUBLIC KEY`"), "{e}");
        let e = SigningKey::from_pem("k.pub", public.as_bytes(), None).unwrap_err();
        assert!(e.contains("expected `PRIVATE KEY`"), "{e}");
        let e = PublicKey::from_pem("x", b"hello").unwrap_err();
        assert!(e.contains("not a PEM public key"), "{e}");
        let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\naGVsbG8=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        let e = SigningKey::from_pem("cosign.key", encrypted.as_bytes(), None).unwrap_err();
        assert!(e.contains("set COSIGN_PASSWORD"), "{e}");
        let e = SigningKey::from_pem("cosign.key", encrypted.as_bytes(), Some("x")).unwrap_err();
        assert!(e.contains("not cosign's encrypted key format"), "{e}");
    }

    #[test]
    fn an_encrypted_key_opens_with_its_password_only() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let (private, public) = SigningKey::generate(alg, Some("hunter2")).unwrap();
            assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
            // cosign's envelope: scrypt N=32768 r=8 p=1, nacl/secretbox.
            let block = ::pem::parse(&private).unwrap();
            let envelope: serde_json::Value = serde_json::from_slice(block.contents()).unwrap();
            assert_eq!(envelope["kdf"]["params"]["N"], 32768);
            assert_eq!(envelope["cipher"]["name"], "nacl/secretbox");
            let key =
                SigningKey::from_pem("cosign.key", private.as_bytes(), Some("hunter2")).unwrap();
            let public = PublicKey::from_pem("cosign.pub", public.as_bytes()).unwrap();
            assert_eq!(key.public_key().fingerprint(), public.fingerprint());
            let e =
                SigningKey::from_pem("cosign.key", private.as_bytes(), Some("wrong")).unwrap_err();
            assert!(e.contains("wrong password"), "{e}");
        }
    }

    #[test]
    fn the_longest_matching_rule_wins() {
        let (_, a) = SigningKey::generate(Algorithm::Ed25519, None).unwrap();
        let a = PublicKey::from_pem("a.pub", a.as_bytes()).unwrap();
        let (_, b) = SigningKey::generate(Algorithm::Ed25519, None).unwrap();
        let b = PublicKey::from_pem("b.pub", b.as_bytes()).unwrap();
        let policy = VerifyPolicy {
            require: true,
            keys: vec![a.clone()],
            rules: vec![
                ("127.0.0.1:5000/".into(), vec![a]),
                ("127.0.0.1:5000/vantage/".into(), vec![b]),
            ],
        };
        let (keys, from) = policy.keys_for(&reference());
        assert_eq!(keys[0].name(), "b.pub");
        assert!(from.contains("127.0.0.1:5000/vantage/"), "{from}");
        let other = OciRef::parse("oci://ghcr.io/x/y:1").unwrap();
        assert_eq!(policy.keys_for(&other).0[0].name(), "a.pub");
    }
}
