//! The CNCF TAG-Runtime Wasm OCI artifact: one `application/wasm` layer
//! (the component), a small `application/vnd.wasm.config.v0+json` config
//! and the annotations `vantage inspect` reads without pulling the layer.
//!
//! Pulling also accepts the older single-layer layout
//! (`application/vnd.wasm.content.layer.v1+wasm`, Kubewarden, wasm-to-oci)
//! and tolerates a top-level `artifactType`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::RegistryError;

/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's v2 manifest, accepted on pull.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The CNCF Wasm config media type.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF Wasm layer media type (what `push` writes).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older layer media type (Kubewarden, wasm-to-oci), accepted on pull.
pub const OLD_WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// wasm-to-oci's first layer media type, accepted on pull.
pub const OLDEST_WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// The layer media types a pull accepts.
pub const ACCEPTED_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    OLD_WASM_LAYER_MEDIA_TYPE,
    OLDEST_WASM_LAYER_MEDIA_TYPE,
];

/// Vantage's annotation keys (values are text; lists are JSON arrays).
pub mod annotation {
    /// The check's name (from `describe`).
    pub const NAME: &str = "dev.vantage.check.name";
    /// The WIT world the component targets (`vantage:check@0.2.0`).
    pub const WORLD: &str = "dev.vantage.check.world";
    /// Declared outbound patterns, a JSON array.
    pub const OUTBOUND: &str = "dev.vantage.check.capabilities.outbound";
    /// Declared secrets, a JSON array.
    pub const SECRETS: &str = "dev.vantage.check.capabilities.secrets";
    /// Declared configuration keys, a JSON array of objects.
    pub const CONFIG: &str = "dev.vantage.check.config";
    /// The modes it is meant for, a JSON array.
    pub const MODES: &str = "dev.vantage.check.modes";
    /// `org.opencontainers.image.title`.
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// `org.opencontainers.image.version`.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// `org.opencontainers.image.description`.
    pub const DESCRIPTION: &str = "org.opencontainers.image.description";
    /// `org.opencontainers.image.source`.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// `org.opencontainers.image.created`.
    pub const CREATED: &str = "org.opencontainers.image.created";
}

/// What a pushed check says about itself: the caller (which can run the
/// component) fills it in; it becomes the config and the annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// The file name (`org.opencontainers.image.title`).
    pub title: String,
    /// Check name.
    pub name: String,
    /// Check version.
    pub version: String,
    /// What it proves.
    pub description: String,
    /// The WIT world (`vantage:check@0.2.0`).
    pub world: String,
    /// Declared outbound patterns.
    pub outbound: Vec<String>,
    /// Declared secrets.
    pub secrets: Vec<String>,
    /// Declared configuration keys, as JSON objects.
    pub config: Vec<serde_json::Value>,
    /// Modes it is meant for.
    pub modes: Vec<String>,
    /// Where its source lives (`org.opencontainers.image.source`), if known.
    pub source: Option<String>,
    /// The component's imports (from its type).
    pub imports: Vec<String>,
    /// The component's exports (from its type).
    pub exports: Vec<String>,
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes, as the manifest claims it.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest (the parts a Wasm artifact uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// A top-level artifact type (tolerated, not required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers: a Wasm artifact has exactly one.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The CNCF Wasm config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for a component.
    pub os: String,
    /// The digests of the layers, in order.
    #[serde(default)]
    pub layer_digests: Vec<String>,
    /// The component's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentType>,
}

/// `component` in the Wasm config: the component's imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentType {
    /// Exported interfaces and functions.
    #[serde(default)]
    pub exports: Vec<String>,
    /// Imported interfaces and functions.
    #[serde(default)]
    pub imports: Vec<String>,
    /// The WIT world the component targets, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The config and manifest bytes `push` writes for a component, created
/// at `created` (RFC 3339).
pub fn build(wasm: &[u8], info: &ComponentInfo, created: &str) -> (Vec<u8>, Vec<u8>) {
    let layer = Descriptor {
        annotations: BTreeMap::from([(annotation::TITLE.to_string(), info.title.clone())]),
        ..Descriptor::of(WASM_LAYER_MEDIA_TYPE, wasm)
    };
    let config = WasmConfig {
        created: Some(created.to_string()),
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer.digest.clone()],
        component: Some(ComponentType {
            exports: info.exports.clone(),
            imports: info.imports.clone(),
            target: (!info.world.is_empty()).then(|| info.world.clone()),
        }),
    };
    // Serialising plain structs, strings and vectors cannot fail.
    let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    let mut annotations = BTreeMap::from([
        (annotation::TITLE, info.title.clone()),
        (annotation::VERSION, info.version.clone()),
        (annotation::DESCRIPTION, info.description.clone()),
        (annotation::CREATED, created.to_string()),
        (annotation::NAME, info.name.clone()),
        (annotation::WORLD, info.world.clone()),
        (annotation::OUTBOUND, list(&info.outbound)),
        (annotation::SECRETS, list(&info.secrets)),
        (annotation::MODES, list(&info.modes)),
        (
            annotation::CONFIG,
            serde_json::to_string(&info.config).unwrap_or_default(),
        ),
    ]);
    if let Some(source) = &info.source {
        annotations.insert(annotation::SOURCE, source.clone());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: None,
        config: Descriptor::of(WASM_CONFIG_MEDIA_TYPE, &config_bytes),
        layers: vec![layer],
        annotations: annotations
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    (config_bytes, manifest_bytes)
}

/// A pulled manifest, checked to be a single-layer Wasm artifact whose
/// layer fits `max_layer_size` (from the size the manifest claims, before
/// any layer byte is fetched).
pub fn parse_manifest(bytes: &[u8], max_layer_size: u64) -> Result<Manifest, RegistryError> {
    let layout = |reason: String| RegistryError::Layout(reason);
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| layout(format!("the manifest is not an OCI image manifest: {e}")))?;
    if let Some(t) = &manifest.media_type
        && t != MANIFEST_MEDIA_TYPE
        && t != DOCKER_MANIFEST_MEDIA_TYPE
    {
        return Err(layout(format!(
            "manifest media type {t} is not an image manifest ({MANIFEST_MEDIA_TYPE})"
        )));
    }
    let layer = match manifest.layers.as_slice() {
        [layer] => layer,
        [] => return Err(layout("the manifest has no layer".into())),
        more => {
            return Err(layout(format!(
                "the manifest has {} layers: a Wasm component artifact has exactly one",
                more.len()
            )));
        }
    };
    if !ACCEPTED_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
        return Err(layout(format!(
            "layer media type {} is not a Wasm component (expected {})",
            layer.media_type,
            ACCEPTED_LAYER_MEDIA_TYPES.join(" or ")
        )));
    }
    check_digest_syntax(&layer.digest)?;
    check_digest_syntax(&manifest.config.digest)?;
    if layer.size > max_layer_size {
        return Err(RegistryError::TooLarge {
            what: "the component layer".into(),
            size: layer.size,
            cap: max_layer_size,
        });
    }
    Ok(manifest)
}

/// A manifest's digest must be `sha256:<64 hex>`.
fn check_digest_syntax(digest: &str) -> Result<(), RegistryError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(RegistryError::Layout(format!(
            "unsupported digest {digest:?}: expected sha256:<64 hex digits>"
        ))),
    }
}

/// What the manifest's annotations say about the check (empty fields for
/// what they do not say, e.g. an artifact not pushed by Vantage).
pub fn info_from_annotations(manifest: &Manifest) -> ComponentInfo {
    let a = &manifest.annotations;
    let text = |k: &str| a.get(k).cloned().unwrap_or_default();
    let list = |k: &str| {
        a.get(k)
            .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
            .unwrap_or_default()
    };
    ComponentInfo {
        title: text(annotation::TITLE),
        name: text(annotation::NAME),
        version: text(annotation::VERSION),
        description: text(annotation::DESCRIPTION),
        world: text(annotation::WORLD),
        outbound: list(annotation::OUTBOUND),
        secrets: list(annotation::SECRETS),
        config: a
            .get(annotation::CONFIG)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default(),
        modes: list(annotation::MODES),
        source: a.get(annotation::SOURCE).cloned(),
        imports: Vec::new(),
        exports: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ComponentInfo {
        ComponentInfo {
            title: "http.wasm".into(),
            name: "http".into(),
            version: "1.2.0".into(),
            world: "vantage:check@0.2.0".into(),
            outbound: vec!["{target}".into()],
            exports: vec!["vantage:check/check@0.2.0".into()],
            ..ComponentInfo::default()
        }
    }

    #[test]
    fn oci_layout_round_trips_through_the_manifest() {
        let wasm = b"\0asm\x0d\0\x01\0";
        let (config, manifest) = build(wasm, &info(), "2026-12-05T00:00:00Z");
        let m = parse_manifest(&manifest, 1 << 20).unwrap();
        assert_eq!(m.layers[0].digest, sha256_digest(wasm));
        assert_eq!(m.layers[0].media_type, WASM_LAYER_MEDIA_TYPE);
        assert_eq!(m.config.media_type, WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(m.config.digest, sha256_digest(&config));
        let c: WasmConfig = serde_json::from_slice(&config).unwrap();
        assert_eq!((c.architecture.as_str(), c.os.as_str()), ("wasm", "wasip2"));
        assert_eq!(c.layer_digests, vec![sha256_digest(wasm)]);
        assert_eq!(c.component.unwrap().exports, info().exports);
        let back = info_from_annotations(&m);
        assert_eq!(
            (back.name, back.world),
            ("http".into(), "vantage:check@0.2.0".into())
        );
        assert_eq!(back.outbound, vec!["{target}".to_string()]);
    }

    #[test]
    fn oci_manifest_claiming_a_huge_layer_is_refused_before_pulling() {
        let wasm = b"\0asm\x0d\0\x01\0";
        let (_, manifest) = build(wasm, &info(), "2026-12-05T00:00:00Z");
        let mut m: Manifest = serde_json::from_slice(&manifest).unwrap();
        m.layers[0].size = 2 << 30;
        let e = parse_manifest(&serde_json::to_vec(&m).unwrap(), 64 << 20).unwrap_err();
        assert!(e.to_string().contains("2147483648 bytes"), "{e}");
    }
}
