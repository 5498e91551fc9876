//! Building image configs and manifests for pushes and exports.

use serde_json::{json, Map, Value};

use crate::client::LayerInfo;
use crate::digest::Digest;
use crate::media;
use crate::platform::Platform;

/// The image config JSON for `platform`, with the runtime `config` object
/// (`Env`, `Cmd`, `WorkingDir`, ... in OCI/Docker capitalisation) and the
/// layers' diff IDs (bottom first). The output is deterministic: no creation
/// time unless given.
pub fn config_json(
    platform: &Platform,
    config: &Map<String, Value>,
    diff_ids: &[Digest],
    created: Option<&str>,
) -> Vec<u8> {
    let mut out = Map::new();
    if let Some(created) = created {
        out.insert("created".into(), json!(created));
    }
    out.insert("architecture".into(), json!(platform.architecture));
    out.insert("os".into(), json!(platform.os));
    if !platform.variant.is_empty() {
        out.insert("variant".into(), json!(platform.variant));
    }
    out.insert("config".into(), Value::Object(config.clone()));
    out.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
    );
    // Serialising a `Value` cannot fail.
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// The manifest JSON for a config blob and layers, with OCI media types or
/// Docker schema2 ones.
pub fn manifest_json(
    config: &Digest,
    config_size: u64,
    layers: &[LayerInfo],
    docker: bool,
) -> Vec<u8> {
    let (manifest_type, config_type) = if docker {
        (media::DOCKER_MANIFEST, media::DOCKER_CONFIG)
    } else {
        (media::OCI_MANIFEST, media::OCI_CONFIG)
    };
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            let media_type = if docker && (l.media_type == media::OCI_LAYER_GZIP) {
                media::DOCKER_LAYER_GZIP
            } else if !docker && l.media_type == media::DOCKER_LAYER_GZIP {
                media::OCI_LAYER_GZIP
            } else {
                l.media_type.as_str()
            };
            json!({"mediaType": media_type, "digest": l.digest.to_string(), "size": l.size})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config.to_string(), "size": config_size},
        "layers": layers,
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// An index JSON listing platform manifests: (digest, size, platform).
pub fn index_json(manifests: &[(Digest, u64, Platform)], docker: bool) -> Vec<u8> {
    let (index_type, manifest_type) = if docker {
        (media::DOCKER_LIST, media::DOCKER_MANIFEST)
    } else {
        (media::OCI_INDEX, media::OCI_MANIFEST)
    };
    let entries: Vec<Value> = manifests
        .iter()
        .map(|(digest, size, platform)| {
            let mut p = json!({"architecture": platform.architecture, "os": platform.os});
            if !platform.variant.is_empty() {
                p["variant"] = json!(platform.variant);
            }
            json!({"mediaType": manifest_type, "digest": digest.to_string(), "size": size, "platform": p})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}))
        .unwrap_or_default()
}
