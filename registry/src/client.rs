//! Push and pull Wasm components by digest: a tag is resolved once, then
//! the manifest, its layer and the config are fetched by digest, checked
//! against it, capped in size before and while pulling, and kept in the
//! [`BlobCache`] so a daemon starts from its cache when the registry is
//! down.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::secrets::RegistryAuth;
use tracing::{info, warn};
use vantage_core::units::error_chain;

use crate::RegistryError;
use crate::auth::credentials;
use crate::cache::BlobCache;
use crate::layout::{
    self, ComponentInfo, DOCKER_MANIFEST_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Manifest, sha256_digest,
};
use crate::reference::OciRef;
use crate::signature::{self, FoundSignature, SigningKey, Verified, VerifyPolicy};

/// How a [`Registry`] reaches registries and what it accepts.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached over plain HTTP; loopback ones
    /// always are.
    pub insecure: Vec<String>,
    /// The largest component layer pulled (from the manifest's claim,
    /// then while reading).
    pub max_component_size: u64,
    /// Extra trusted CA certificates (PEM) per registry (`host[:port]`),
    /// beside the system's roots.
    pub ca_bundles: BTreeMap<String, Vec<u8>>,
    /// Which keys must have signed what is pulled.
    pub verify: VerifyPolicy,
}

impl RegistryOptions {
    /// Plain HTTP for `insecure` (and loopback), components up to
    /// `max_component_size`, system roots only, no signature policy.
    pub fn new(insecure: Vec<String>, max_component_size: u64) -> RegistryOptions {
        RegistryOptions {
            insecure,
            max_component_size,
            ca_bundles: BTreeMap::new(),
            verify: VerifyPolicy::default(),
        }
    }
}

/// A pulled component: its bytes and where they came from.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, pinned to the manifest digest it resolved to.
    pub reference: OciRef,
    /// The manifest digest (`sha256:…`): what runs, caches and reports.
    pub digest: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The component.
    pub wasm: Vec<u8>,
    /// Whether the registry was not asked (all from the cache).
    pub from_cache: bool,
    /// The trusted key that signed it (none when the policy has no key
    /// for it, or it is unsigned and not required to be).
    pub verified: Option<Verified>,
}

/// What `inspect` found: the manifest, what it and the config say about
/// the check, and its signatures.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The reference, pinned to its manifest digest.
    pub reference: OciRef,
    /// The manifest digest.
    pub digest: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The check's metadata from the annotations, imports and exports from
    /// the Wasm config.
    pub info: ComponentInfo,
    /// How many signatures are stored for the digest.
    pub signatures: usize,
    /// With trusted keys for the reference: the key that signed it, or why
    /// none did.
    pub verified: Option<Result<Verified, String>>,
}

/// What `sign` did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The manifest digest signed.
    pub digest: String,
    /// The signature tag's reference (`…:sha256-<hex>.sig`).
    pub tag: OciRef,
    /// How many signatures the tag holds now.
    pub signatures: usize,
    /// Whether this key's signature of this digest was already there.
    pub already: bool,
}

/// Told how a transfer goes (`push` and `pull` draw a progress bar with
/// it); the daemon has none.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes of `what` (`the component layer`) starts.
    fn start(&self, what: &str, total: u64);
    /// `n` more bytes went through.
    fn advance(&self, n: u64);
    /// The transfer is over (done or failed).
    fn finish(&self);
}

/// A registry client with a content-addressed cache: one
/// `oci_client::Client` per registry (it keeps the first credentials it
/// is given per registry).
pub struct Registry {
    options: RegistryOptions,
    cache: Option<BlobCache>,
    clients: Mutex<HashMap<String, Arc<Connection>>>,
    progress: Option<Arc<dyn Progress>>,
}

/// One registry's client and the credentials it was given.
struct Connection {
    client: oci_client::Client,
    auth: RegistryAuth,
    /// Where credentials were looked for (for a 401's message).
    looked: String,
}

impl Registry {
    /// A client; with `cache`, pulled blobs are kept and served from it.
    pub fn new(options: RegistryOptions, cache: Option<BlobCache>) -> Registry {
        Registry {
            options,
            cache,
            clients: Mutex::new(HashMap::new()),
            progress: None,
        }
    }

    /// Report transfers of component layers to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Registry {
        self.progress = Some(progress);
        self
    }

    /// The client, credentials and where they were looked for, for `r`'s
    /// registry.
    fn client(&self, r: &OciRef) -> Result<Arc<Connection>, RegistryError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&r.registry) {
            return Ok(c.clone());
        }
        // Loopback is plain HTTP unless a CA bundle is given for it.
        let has_ca = self.options.ca_bundles.contains_key(&r.registry);
        let plain = (r.is_loopback() && !has_ca) || self.options.insecure.contains(&r.registry);
        let extra_root_certificates = self
            .options
            .ca_bundles
            .get(&r.registry)
            .map(|pem| {
                vec![oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                }]
            })
            .unwrap_or_default();
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Registry {
            registry: r.registry.clone(),
            detail: format!("cannot set up its client (CA bundle?): {}", error_chain(&e)),
        })?;
        let (auth, looked) = credentials(&r.registry);
        let connection = Arc::new(Connection {
            client,
            auth,
            looked,
        });
        clients.insert(r.registry.clone(), connection.clone());
        Ok(connection)
    }

    /// Where credentials for `r`'s registry were looked for.
    fn looked(&self, r: &OciRef) -> String {
        self.client(r).map(|c| c.looked.clone()).unwrap_or_default()
    }

    /// Turn an oci-client error into one that says what to do.
    fn error(&self, r: &OciRef, e: OciDistributionError) -> RegistryError {
        match e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => RegistryError::Unauthorized {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                looked: self.looked(r),
            },
            OciDistributionError::ImageManifestNotFoundError(detail) => RegistryError::NotFound {
                reference: r.to_string(),
                detail,
            },
            OciDistributionError::ServerError {
                code: 404, message, ..
            } => RegistryError::NotFound {
                reference: r.to_string(),
                detail: message,
            },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => RegistryError::Unauthorized {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                looked: self.looked(r),
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                use oci_client::errors::OciErrorCode as Code;
                let detail = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                let codes: Vec<&Code> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes
                    .iter()
                    .any(|c| matches!(c, Code::Unauthorized | Code::Denied))
                {
                    RegistryError::Unauthorized {
                        registry: r.registry.clone(),
                        repository: r.repository.clone(),
                        looked: self.looked(r),
                    }
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        Code::ManifestUnknown
                            | Code::NameUnknown
                            | Code::NotFound
                            | Code::BlobUnknown
                    )
                }) {
                    RegistryError::NotFound {
                        reference: r.to_string(),
                        detail,
                    }
                } else {
                    RegistryError::Registry {
                        registry: r.registry.clone(),
                        detail,
                    }
                }
            }
            OciDistributionError::RequestError(e) => match e.status().map(|s| s.as_u16()) {
                Some(401 | 403) => RegistryError::Unauthorized {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    looked: self.looked(r),
                },
                Some(404) => RegistryError::NotFound {
                    reference: r.to_string(),
                    detail: error_chain(&e),
                },
                Some(_) => RegistryError::Registry {
                    registry: r.registry.clone(),
                    detail: error_chain(&e),
                },
                None => RegistryError::Registry {
                    registry: r.registry.clone(),
                    detail: format!("cannot reach it: {}", error_chain(&e)),
                },
            },
            // Only manifests are verified by oci-client outside a stream.
            OciDistributionError::DigestError(d) => digest_error(&d, "the manifest", &r.registry),
            other => RegistryError::Registry {
                registry: r.registry.clone(),
                detail: other.to_string(),
            },
        }
    }

    /// The manifest digest `r` names: its own digest when pinned, else what
    /// its tag resolves to now. When the registry cannot be reached, the
    /// digest the tag last resolved to (from the cache), with a warning.
    pub async fn resolve(&self, r: &OciRef) -> Result<String, RegistryError> {
        if let Some(d) = &r.digest {
            return Ok(d.clone());
        }
        let client = self.client(r)?;
        match client
            .client
            .fetch_manifest_digest(&r.client_ref(), &client.auth)
            .await
        {
            Ok(digest) => {
                let digest = digest.to_ascii_lowercase();
                if let Some(cache) = &self.cache {
                    if let Some(old) = cache.resolved(r).filter(|old| *old != digest) {
                        info!(reference = %r, %old, new = %digest, "tag moved");
                    }
                    cache.remember(r, &digest)?;
                }
                Ok(digest)
            }
            Err(e) => {
                let e = self.error(r, e);
                let cached = match (&e, &self.cache) {
                    (RegistryError::Registry { .. }, Some(cache)) => cache.resolved(r),
                    _ => None,
                };
                match cached {
                    Some(digest) => {
                        warn!(reference = %r, %digest, error = %e, "registry unreachable: using the cached digest");
                        Ok(digest)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Pull `r`'s component: resolve, then the manifest by digest, its
    /// signatures as the policy asks (before any byte of the component),
    /// then the layer by digest; each checked against its digest, from the
    /// cache when there.
    pub async fn pull(&self, r: &OciRef) -> Result<Pulled, RegistryError> {
        let (pinned, digest, manifest, manifest_cached) = self.component_manifest(r).await?;
        let verified = self.check_signatures(&pinned, &digest).await?;
        let layer = &manifest.layers[0];
        let cap = layer.size.min(self.options.max_component_size);
        let (wasm, layer_cached) = self
            .blob(&pinned, &layer.digest, cap, "the component layer")
            .await?;
        // The tag now stands for what was pulled (also when a lock pinned
        // it): a restart with the registry down takes this digest.
        if let Some(cache) = &self.cache
            && r.tag.is_some()
        {
            cache.remember(r, &digest)?;
        }
        Ok(Pulled {
            reference: pinned,
            digest,
            manifest,
            wasm,
            from_cache: manifest_cached && layer_cached,
            verified,
        })
    }

    /// `r` resolved, and its manifest by digest, checked and parsed as a
    /// Wasm component artifact (its layer's claimed size capped): the
    /// pinned reference, the digest, the manifest, whether it came from the
    /// cache.
    async fn component_manifest(
        &self,
        r: &OciRef,
    ) -> Result<(OciRef, String, Manifest, bool), RegistryError> {
        let digest = self.resolve(r).await?;
        let pinned = r.pinned(&digest);
        let accept = [MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE];
        let (bytes, cached) = self.manifest_bytes(&pinned, &digest, &accept).await?;
        let manifest = layout::parse_manifest(&bytes, self.options.max_component_size)?;
        Ok((pinned, digest, manifest, cached))
    }

    /// Apply the signature policy to `digest`: the trusted key that signed
    /// it; `None` when the policy has no key for it or (not required) none
    /// verified; an error when required and none verified.
    pub async fn check_signatures(
        &self,
        pinned: &OciRef,
        digest: &str,
    ) -> Result<Option<Verified>, RegistryError> {
        let policy = &self.options.verify;
        let (keys, from) = policy.keys_for(pinned);
        if keys.is_empty() {
            if policy.require {
                return Err(RegistryError::Signature {
                    reference: pinned.to_string(),
                    detail: format!(
                        "signatures are required, and {from} names no key for {}/{}",
                        pinned.registry, pinned.repository
                    ),
                });
            }
            return Ok(None);
        }
        let found = match self.signatures(pinned, digest).await {
            Ok(found) => found,
            Err(e) if policy.require => return Err(e),
            // Not required: a signature that cannot be read is a warning.
            Err(e) => {
                warn!(reference = %pinned, error = %e, "cannot read signatures (not required): running it anyway");
                return Ok(None);
            }
        };
        match signature::verify(&found, keys, digest) {
            Ok(v) => {
                info!(reference = %pinned, key = %v.key, fingerprint = %v.fingerprint, "signature verified");
                Ok(Some(v))
            }
            Err(detail) if policy.require => Err(RegistryError::Signature {
                reference: pinned.to_string(),
                detail: format!("{detail}; trusted keys come from {from}"),
            }),
            Err(detail) => {
                warn!(reference = %pinned, %detail, "signature not verified (not required): running it anyway");
                Ok(None)
            }
        }
    }

    /// The signatures stored for `digest` in `r`'s repository (the
    /// `sha256-<hex>.sig` tag; none when there is no such tag). Each
    /// payload is checked against its layer digest; a layer that is not a
    /// simple-signing payload is skipped.
    pub async fn signatures(
        &self,
        r: &OciRef,
        digest: &str,
    ) -> Result<Vec<FoundSignature>, RegistryError> {
        let tag = r.with_tag(&signature::signature_tag(digest));
        let sig_digest = match self.resolve(&tag).await {
            Ok(d) => d,
            Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let pinned = tag.pinned(&sig_digest);
        let (bytes, _) = self
            .manifest_bytes(&pinned, &sig_digest, &[MANIFEST_MEDIA_TYPE])
            .await?;
        let manifest: layout::Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Layout(format!("the signature manifest {pinned}: {e}")))?;
        let mut found = Vec::new();
        for layer in &manifest.layers {
            if layer.media_type != signature::SIMPLE_SIGNING_MEDIA_TYPE {
                continue;
            }
            let Some(sig) = signature::layer_signature(layer) else {
                continue;
            };
            let cap = layer.size.min(signature::MAX_PAYLOAD_SIZE);
            let (payload, _) = self
                .blob(&pinned, &layer.digest, cap, "a signature payload")
                .await?;
            found.push(FoundSignature {
                payload,
                signature: sig,
            });
        }
        Ok(found)
    }

    /// Sign the manifest `r` names (its digest, else what its tag resolves
    /// to) with `key`, as cosign does: the payload is added as a layer of
    /// the `sha256-<hex>.sig` manifest (created, or extended keeping the
    /// signatures already there).
    pub async fn sign(&self, r: &OciRef, key: &SigningKey) -> Result<Signed, RegistryError> {
        let digest = self.resolve(r).await?;
        let tag = r.with_tag(&signature::signature_tag(&digest));
        // The existing signature manifest, read fresh (not from the cache).
        let client = self.client(r)?;
        let existing = match client
            .client
            .pull_manifest_raw(&tag.client_ref(), &client.auth, &[MANIFEST_MEDIA_TYPE])
            .await
        {
            Ok((bytes, _)) => Some(serde_json::from_slice::<layout::Manifest>(&bytes).map_err(
                |e| RegistryError::Layout(format!("the signature manifest {tag}: {e}")),
            )?),
            Err(e) => match self.error(&tag, e) {
                RegistryError::NotFound { .. } => None,
                e => return Err(e),
            },
        };
        let mut layers = existing.map(|m| m.layers).unwrap_or_default();
        // One signature per (key, payload): re-signing is a no-op.
        let payload = signature::payload(r, &digest);
        for layer in &layers {
            if layer.media_type != signature::SIMPLE_SIGNING_MEDIA_TYPE {
                continue;
            }
            let Some(sig) = signature::layer_signature(layer) else {
                continue;
            };
            if let Ok((stored, _)) = self
                .blob(
                    &tag,
                    &layer.digest,
                    signature::MAX_PAYLOAD_SIZE,
                    "a signature payload",
                )
                .await
                && signature::check_payload(&stored, &digest).is_none()
                && key.public_key().verify(&stored, &sig)
            {
                return Ok(Signed {
                    digest,
                    tag,
                    signatures: layers.len(),
                    already: true,
                });
            }
        }
        let sig = key
            .sign(&payload)
            .map_err(|detail| RegistryError::Signature {
                reference: r.pinned(&digest).to_string(),
                detail,
            })?;
        layers.push(signature::signature_layer(&payload, &sig));
        let (config, manifest) = signature::signature_manifest(layers.clone());
        self.push_blobs(&tag, &[&payload, &config]).await?;
        let image = tag.client_ref();
        client
            .client
            .push_manifest_raw(
                &image,
                manifest,
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(|e| self.error(&tag, e))?;
        Ok(Signed {
            digest,
            tag,
            signatures: layers.len(),
            already: false,
        })
    }

    /// The manifest named `digest`, checked against it, from the cache when
    /// there (and kept in it); `true` when it came from the cache.
    async fn manifest_bytes(
        &self,
        pinned: &OciRef,
        digest: &str,
        accept: &[&str],
    ) -> Result<(Vec<u8>, bool), RegistryError> {
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.get(digest)) {
            return Ok((bytes, true));
        }
        let client = self.client(pinned)?;
        let (bytes, _) = client
            .client
            .pull_manifest_raw(&pinned.client_ref(), &client.auth, accept)
            .await
            .map_err(|e| self.error(pinned, e))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: "the manifest".into(),
                expected: digest.to_string(),
                actual,
            });
        }
        if let Some(cache) = &self.cache {
            cache.put(digest, &bytes)?;
        }
        Ok((bytes.to_vec(), false))
    }

    /// The blob `digest` (at most `limit` bytes), from the cache when
    /// there; else streamed, refused as soon as it exceeds `limit`, checked
    /// against its digest and kept. `true` when it came from the cache.
    async fn blob(
        &self,
        pinned: &OciRef,
        digest: &str,
        limit: u64,
        what: &str,
    ) -> Result<(Vec<u8>, bool), RegistryError> {
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.get(digest)) {
            return Ok((bytes, true));
        }
        let client = self.client(pinned)?;
        client
            .client
            .store_auth_if_needed(&pinned.registry, &client.auth)
            .await;
        let mut stream = client
            .client
            .pull_blob_stream(&pinned.client_ref(), digest)
            .await
            .map_err(|e| self.error(pinned, e))?;
        let progress = self
            .progress
            .as_ref()
            .filter(|_| limit > signature::MAX_PAYLOAD_SIZE);
        if let Some(p) = progress {
            p.start(&format!("pulling {what}"), limit);
        }
        let bytes = read_capped(&mut stream.stream, limit, what, &pinned.registry, progress).await;
        if let Some(p) = progress {
            p.finish();
        }
        let bytes = bytes?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: what.into(),
                expected: digest.to_string(),
                actual,
            });
        }
        if let Some(cache) = &self.cache {
            cache.put(digest, &bytes)?;
        }
        Ok((bytes, false))
    }

    /// What `r` is, from its manifest and config alone (for `inspect`):
    /// resolved and checked like a pull, the component layer not pulled;
    /// with the signatures stored for it.
    pub async fn inspect(&self, r: &OciRef) -> Result<Inspected, RegistryError> {
        let (pinned, digest, manifest, _) = self.component_manifest(r).await?;
        let mut info = layout::info_from_annotations(&manifest);
        if manifest.config.media_type == layout::WASM_CONFIG_MEDIA_TYPE {
            let (config, _) = self
                .blob(&pinned, &manifest.config.digest, 1 << 20, "the Wasm config")
                .await?;
            if let Ok(config) = serde_json::from_slice::<layout::WasmConfig>(&config)
                && let Some(component) = config.component
            {
                info.imports = component.imports;
                info.exports = component.exports;
            }
        }
        let signatures = self.signatures(&pinned, &digest).await?;
        let (keys, _) = self.options.verify.keys_for(&pinned);
        let verified = if keys.is_empty() {
            None
        } else {
            Some(signature::verify(&signatures, keys, &digest))
        };
        Ok(Inspected {
            reference: pinned,
            digest,
            manifest,
            info,
            signatures: signatures.len(),
            verified,
        })
    }

    /// Push each blob of `blobs` to `r`'s repository unless it is there
    /// (the progress bar, if any, counts the bytes sent).
    async fn push_blobs(&self, r: &OciRef, blobs: &[&[u8]]) -> Result<(), RegistryError> {
        let client = self.client(r)?;
        let image = r.client_ref();
        client
            .client
            .auth(&image, &client.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.error(r, e))?;
        for blob in blobs {
            let digest = sha256_digest(blob);
            let exists = client
                .client
                .blob_exists(&image, &digest)
                .await
                .map_err(|e| self.error(r, e))?;
            if !exists {
                let progress = self
                    .progress
                    .as_ref()
                    .filter(|_| blob.len() as u64 > signature::MAX_PAYLOAD_SIZE);
                if let Some(p) = progress {
                    p.start("pushing the component layer", blob.len() as u64);
                }
                let pushed = client
                    .client
                    .push_blob(&image, blob.to_vec(), &digest)
                    .await;
                if let Some(p) = progress {
                    if pushed.is_ok() {
                        p.advance(blob.len() as u64);
                    }
                    p.finish();
                }
                pushed.map_err(|e| self.error(r, e))?;
            }
        }
        Ok(())
    }

    /// Push `wasm` as the CNCF Wasm artifact described by `info` to `r`
    /// (its tag); returns the manifest digest.
    pub async fn push(
        &self,
        wasm: &[u8],
        info: &ComponentInfo,
        r: &OciRef,
        created: &str,
    ) -> Result<String, RegistryError> {
        let (config, manifest) = layout::build(wasm, info, created);
        self.push_blobs(r, &[&config, wasm]).await?;
        let client = self.client(r)?;
        client
            .client
            .push_manifest_raw(
                &r.client_ref(),
                manifest.clone(),
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(|e| self.error(r, e))?;
        let digest = sha256_digest(&manifest);
        if let Some(cache) = &self.cache {
            cache.put(&digest, &manifest)?;
            cache.put(&sha256_digest(wasm), wasm)?;
            cache.remember(r, &digest)?;
        }
        Ok(digest)
    }
}

/// Read `stream` to its end, refused as soon as it exceeds `limit` bytes
/// (the buffer grows as bytes arrive: a claimed size is not a reason to
/// reserve memory).
async fn read_capped<S, B>(
    stream: &mut S,
    limit: u64,
    what: &str,
    registry: &str,
    progress: Option<&Arc<dyn Progress>>,
) -> Result<Vec<u8>, RegistryError>
where
    S: futures_util::Stream<Item = Result<B, std::io::Error>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut bytes = Vec::with_capacity(limit.min(1 << 20) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| stream_error(&e, what, registry))?;
        let chunk = chunk.as_ref();
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.into(),
                size: (bytes.len() + chunk.len()) as u64,
                cap: limit,
            });
        }
        bytes.extend_from_slice(chunk);
        if let Some(p) = progress {
            p.advance(chunk.len() as u64);
        }
    }
    Ok(bytes)
}

/// A read error of a blob stream: oci-client checks the digest itself at
/// the end of the stream, and a mismatch is a
/// [`RegistryError::DigestMismatch`], like ours.
fn stream_error(e: &std::io::Error, what: &str, registry: &str) -> RegistryError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
    {
        Some(d) => digest_error(d, what, registry),
        None => RegistryError::Registry {
            registry: registry.to_string(),
            detail: format!("reading {what}: {e}"),
        },
    }
}

/// oci-client's digest verification failure, as ours.
fn digest_error(e: &DigestError, what: &str, registry: &str) -> RegistryError {
    match e {
        DigestError::VerificationError { expected, actual } => RegistryError::DigestMismatch {
            what: what.into(),
            expected: expected.clone(),
            actual: actual.clone(),
        },
        other => RegistryError::Registry {
            registry: registry.to_string(),
            detail: format!("{what}: {other}"),
        },
    }
}
