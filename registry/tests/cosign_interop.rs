//! Interoperability with an independent cosign implementation, the
//! `sigstore` crate, over a real registry (Debian's `docker-registry`,
//! distribution 2.8, on 127.0.0.1): it verifies the signatures Vantage
//! writes, Vantage verifies the ones it writes, and each opens the other's
//! encrypted private keys.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sigstore::cosign::constraint::PrivateKeySigner;
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{
    ClientBuilder, Constraint as _, CosignCapabilities as _, SignatureLayer, verify_constraints,
};
use sigstore::crypto::SigningScheme;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use vantage_registry::signature::{self, Algorithm};
use vantage_registry::{
    ComponentInfo, OciRef, PublicKey, Registry, RegistryOptions, SigningKey, VerifyPolicy,
};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// `docker-registry serve` on a free loopback port, killed on drop.
struct LocalRegistry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing (Debian package `docker-registry`): run `bash \
             scripts/test-all.sh`, which installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let host = format!("127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "no registry");
            std::thread::sleep(Duration::from_millis(50));
        }
        LocalRegistry {
            child,
            host,
            _dir: dir,
        }
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Vantage client, verifying with `policy`.
fn vantage(policy: VerifyPolicy) -> Registry {
    let mut options = RegistryOptions::new(Vec::new(), 1 << 20);
    options.verify = policy;
    Registry::new(options, None)
}

/// Push a small artifact as `repo:tag`; its reference and digest.
async fn push(host: &str, repo: &str, bytes: &[u8]) -> (OciRef, String) {
    let r = OciRef::parse(&format!("oci://{host}/{repo}:1")).unwrap();
    let info = ComponentInfo {
        title: "c.wasm".into(),
        ..ComponentInfo::default()
    };
    let digest = vantage(VerifyPolicy::default())
        .push(bytes, &info, &r, "2026-12-05T00:00:00Z")
        .await
        .unwrap();
    (r, digest)
}

/// sigstore's client for the plain-HTTP loopback registry.
fn cosign_client(host: &str) -> sigstore::cosign::Client {
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]),
        ..Default::default()
    };
    ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .unwrap()
}

/// Whether sigstore finds a signature of `image` by `public_pem`.
async fn cosign_verifies(host: &str, image: &str, public_pem: &str) -> bool {
    let image: OciReference = image.parse().unwrap();
    let layers = cosign_client(host)
        .trusted_signature_layers(&Auth::Anonymous, &image)
        .await
        .unwrap();
    let constraints: VerificationConstraintVec = vec![Box::new(
        PublicKeyVerifier::try_from(public_pem.as_bytes()).unwrap(),
    )];
    !layers.is_empty() && verify_constraints(&layers, constraints.iter()).is_ok()
}

fn schemes() -> [(Algorithm, SigningScheme); 2] {
    [
        (Algorithm::EcdsaP256, SigningScheme::ECDSA_P256_SHA256_ASN1),
        (Algorithm::Ed25519, SigningScheme::ED25519),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn sigstore_verifies_what_vantage_signs() {
    let registry = LocalRegistry::start();
    for (i, (algorithm, _)) in schemes().into_iter().enumerate() {
        let (r, digest) = push(&registry.host, &format!("v/signed{i}"), b"\0asm one").await;
        let (private, public) = SigningKey::generate(algorithm, None).unwrap();
        let key = SigningKey::from_pem("team.key", private.as_bytes(), None).unwrap();
        let (_, other) = SigningKey::generate(algorithm, None).unwrap();
        let image = format!("{}/v/signed{i}@{digest}", registry.host);
        assert!(!cosign_verifies(&registry.host, &image, &public).await);

        vantage(VerifyPolicy::default())
            .sign(&r, &key)
            .await
            .unwrap();
        assert!(
            cosign_verifies(&registry.host, &image, &public).await,
            "{algorithm}: sigstore does not verify Vantage's signature"
        );
        assert!(!cosign_verifies(&registry.host, &image, &other).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vantage_verifies_what_sigstore_signs() {
    let registry = LocalRegistry::start();
    for (i, (_, scheme)) in schemes().into_iter().enumerate() {
        let repo = format!("c/signed{i}");
        let (r, digest) = push(&registry.host, &repo, b"\0asm two").await;
        let pair: SigStoreKeyPair = scheme
            .create_signer()
            .unwrap()
            .to_sigstore_keypair()
            .unwrap();
        let public_pem = pair.public_key_to_pem().unwrap();
        let private_pem = pair.private_key_to_pem().unwrap();

        // sigstore signs, as `cosign sign --key` would.
        let image: OciReference = format!("{}/{repo}@{digest}", registry.host)
            .parse()
            .unwrap();
        let mut client = cosign_client(&registry.host);
        let (sig_ref, manifest_digest) =
            client.triangulate(&image, &Auth::Anonymous).await.unwrap();
        let mut layer = SignatureLayer::new_unsigned(&image, &manifest_digest).unwrap();
        let signer = PrivateKeySigner::new_with_raw(
            zeroize::Zeroizing::new(private_pem.as_bytes().to_vec()),
            zeroize::Zeroizing::new(Vec::new()),
            &scheme,
        )
        .unwrap();
        assert!(signer.add_constraint(&mut layer).unwrap());
        client
            .push_signature(None, &Auth::Anonymous, &sig_ref, vec![layer])
            .await
            .unwrap();

        // Vantage finds it, verifies it with the public key, and pulls under
        // `require`; another key is refused.
        let public = PublicKey::from_pem("cosign.pub", public_pem.as_bytes()).unwrap();
        let policy = VerifyPolicy {
            require: true,
            keys: vec![public.clone()],
            rules: Vec::new(),
        };
        let found = vantage(VerifyPolicy::default())
            .signatures(&r, &digest)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        let verified = signature::verify(&found, &[public], &digest).unwrap();
        assert_eq!(verified.key, "cosign.pub");
        let pulled = vantage(policy).pull(&r).await.unwrap();
        assert_eq!(pulled.wasm, b"\0asm two");
        assert_eq!(pulled.verified.unwrap().key, "cosign.pub");
        let (_, other) = SigningKey::generate(Algorithm::EcdsaP256, None).unwrap();
        let other = PublicKey::from_pem("other.pub", other.as_bytes()).unwrap();
        let refused = vantage(VerifyPolicy {
            require: true,
            keys: vec![other],
            rules: Vec::new(),
        })
        .pull(&r)
        .await
        .unwrap_err();
        assert!(
            refused.to_string().contains("none by a trusted key"),
            "{refused}"
        );
    }
}

#[test]
fn encrypted_private_keys_open_both_ways() {
    for (algorithm, scheme) in schemes() {
        // sigstore's `ENCRYPTED SIGSTORE PRIVATE KEY` opens in Vantage.
        let pair: SigStoreKeyPair = scheme
            .create_signer()
            .unwrap()
            .to_sigstore_keypair()
            .unwrap();
        let encrypted = pair.private_key_to_encrypted_pem(b"hunter2").unwrap();
        let key =
            SigningKey::from_pem("cosign.key", encrypted.as_bytes(), Some("hunter2")).unwrap();
        let public =
            PublicKey::from_pem("cosign.pub", pair.public_key_to_pem().unwrap().as_bytes())
                .unwrap();
        assert_eq!(key.public_key().fingerprint(), public.fingerprint());
        assert_eq!(key.public_key().algorithm(), algorithm);
        assert!(SigningKey::from_pem("cosign.key", encrypted.as_bytes(), Some("nope")).is_err());

        // Vantage's encrypted key opens in sigstore, to the same public key.
        let (private, public_pem) = SigningKey::generate(algorithm, Some("s3cret")).unwrap();
        let opened = SigStoreKeyPair::from_encrypted_pem(private.as_bytes(), b"s3cret").unwrap();
        assert_eq!(opened.public_key_to_pem().unwrap(), public_pem);
    }
}
