//! Pulls an image and extracts its layers: `cargo run -p cuedag-oci
//! --example pull -- REF STORE_DIR LAYERS_DIR`. Uses the environment's
//! registry settings (source `.ci/state/env` for the local mirror).

use std::path::PathBuf;

use cuedag_oci::{BlobStore, PullOptions, Reference, RegistryClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reference, store, layers] = args.as_slice() else {
        return Err("usage: pull REF STORE_DIR LAYERS_DIR".into());
    };
    let store = BlobStore::open(store)?;
    let client = RegistryClient::from_env(store.clone())?;
    let image = client
        .pull(&Reference::parse(reference)?, &PullOptions::default())
        .await?;
    for (i, layer) in image.layers.iter().enumerate() {
        let dest = PathBuf::from(layers).join(i.to_string());
        if !dest.exists() {
            cuedag_oci::layer::extract_blob_async(store.clone(), layer.digest.clone(), dest)
                .await?;
        }
    }
    let summary = serde_json::json!({
        "digest": image.digest.to_string(),
        "layers": image.layers.len(),
        "config": serde_json::from_slice::<serde_json::Value>(&image.raw_config)?,
    });
    std::io::Write::write_all(&mut std::io::stdout(), format!("{summary:#}\n").as_bytes())?;
    Ok(())
}
