//! Push and pull Wasm components by digest: a tag is resolved once, then
//! the manifest, its layer and the config are fetched by digest, checked
//! against it, capped in size before and while pulling, and kept in the
//! [`BlobCache`] so a daemon starts from its cache when the registry is
//! down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
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

/// How a [`Registry`] reaches registries and what it accepts.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached over plain HTTP; loopback ones
    /// always are.
    pub insecure: Vec<String>,
    /// The largest component layer pulled (from the manifest's claim,
    /// then while reading).
    pub max_component_size: u64,
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
}

/// A registry client with a content-addressed cache: one
/// `oci_client::Client` per registry (it keeps the first credentials it
/// is given per registry).
pub struct Registry {
    options: RegistryOptions,
    cache: Option<BlobCache>,
    clients: Mutex<HashMap<String, Arc<Connection>>>,
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
        }
    }

    /// The client, credentials and where they were looked for, for `r`'s
    /// registry.
    fn client(&self, r: &OciRef) -> Arc<Connection> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(r.registry.clone())
            .or_insert_with(|| {
                let plain = r.is_loopback() || self.options.insecure.contains(&r.registry);
                let config = ClientConfig {
                    protocol: if plain {
                        ClientProtocol::Http
                    } else {
                        ClientProtocol::Https
                    },
                    connect_timeout: Some(std::time::Duration::from_secs(10)),
                    read_timeout: Some(std::time::Duration::from_secs(60)),
                    ..ClientConfig::default()
                };
                let (auth, looked) = credentials(&r.registry);
                Arc::new(Connection {
                    client: oci_client::Client::new(config),
                    auth,
                    looked,
                })
            })
            .clone()
    }

    /// Turn an oci-client error into one that says what to do.
    fn error(&self, r: &OciRef, e: OciDistributionError) -> RegistryError {
        match e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => RegistryError::Unauthorized {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                looked: self.client(r).looked.clone(),
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
                looked: self.client(r).looked.clone(),
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
                        looked: self.client(r).looked.clone(),
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
                    looked: self.client(r).looked.clone(),
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
        let client = self.client(r);
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

    /// Pull `r`'s component: resolve, then manifest and layer by digest,
    /// each checked against its digest, from the cache when there.
    pub async fn pull(&self, r: &OciRef) -> Result<Pulled, RegistryError> {
        let digest = self.resolve(r).await?;
        let pinned = r.pinned(&digest);
        let (manifest, manifest_cached) = self.manifest(&pinned, &digest).await?;
        let layer = &manifest.layers[0];
        let (wasm, layer_cached) = match self.cache.as_ref().and_then(|c| c.get(&layer.digest)) {
            Some(bytes) => (bytes, true),
            None => (self.pull_layer(&pinned, layer).await?, false),
        };
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
        })
    }

    /// The manifest named `digest`, checked against it and parsed as a
    /// Wasm component artifact (its layer's size capped).
    async fn manifest(
        &self,
        pinned: &OciRef,
        digest: &str,
    ) -> Result<(Manifest, bool), RegistryError> {
        let cap = self.options.max_component_size;
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.get(digest)) {
            return Ok((layout::parse_manifest(&bytes, cap)?, true));
        }
        let client = self.client(pinned);
        let (bytes, _) = client
            .client
            .pull_manifest_raw(
                &pinned.client_ref(),
                &client.auth,
                &[MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
            )
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
        let manifest = layout::parse_manifest(&bytes, cap)?;
        if let Some(cache) = &self.cache {
            cache.put(digest, &bytes)?;
        }
        Ok((manifest, false))
    }

    /// The layer's bytes, streamed: refused as soon as they exceed the
    /// manifest's claim or the cap, checked against the layer digest.
    async fn pull_layer(
        &self,
        pinned: &OciRef,
        layer: &layout::Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let client = self.client(pinned);
        client
            .client
            .store_auth_if_needed(&pinned.registry, &client.auth)
            .await;
        let mut stream = client
            .client
            .pull_blob_stream(&pinned.client_ref(), layer.digest.as_str())
            .await
            .map_err(|e| self.error(pinned, e))?;
        let limit = layer.size.min(self.options.max_component_size);
        // Grown as bytes arrive: a claim is not a reason to reserve memory.
        let mut bytes = Vec::with_capacity(limit.min(1 << 20) as usize);
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Registry {
                registry: pinned.registry.clone(),
                detail: format!("reading the component layer: {e}"),
            })?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(RegistryError::TooLarge {
                    what: "the component layer".into(),
                    size: (bytes.len() + chunk.len()) as u64,
                    cap: limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = sha256_digest(&bytes);
        if actual != layer.digest {
            return Err(RegistryError::DigestMismatch {
                what: "the component layer".into(),
                expected: layer.digest.clone(),
                actual,
            });
        }
        if let Some(cache) = &self.cache {
            cache.put(&layer.digest, &bytes)?;
        }
        Ok(bytes)
    }

    /// The manifest of `r` alone (for `inspect`): resolved, checked, not
    /// the layer.
    pub async fn inspect(&self, r: &OciRef) -> Result<(String, Manifest), RegistryError> {
        let digest = self.resolve(r).await?;
        let (manifest, _) = self.manifest(&r.pinned(&digest), &digest).await?;
        Ok((digest, manifest))
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
        let client = self.client(r);
        let image = r.client_ref();
        client
            .client
            .auth(&image, &client.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.error(r, e))?;
        for blob in [&config[..], wasm] {
            let digest = sha256_digest(blob);
            let exists = client
                .client
                .blob_exists(&image, &digest)
                .await
                .map_err(|e| self.error(r, e))?;
            if !exists {
                client
                    .client
                    .push_blob(&image, blob.to_vec(), &digest)
                    .await
                    .map_err(|e| self.error(r, e))?;
            }
        }
        client
            .client
            .push_manifest_raw(
                &image,
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
