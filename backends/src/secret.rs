//! The session's secret store and socket registry.
//!
//! A [`Secret`] holds a plaintext and never prints it. Secret ids are
//! content-derived (SHA-256 of the plaintext, hex), so identical plaintexts
//! share an id and ids are safe in cache keys; plaintexts never leave the
//! store except to be handed to a command.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use cuedag_evaluator::plan::{SecretId, SocketId};
use sha2::{Digest, Sha256};

/// A secret plaintext. `Debug` prints `***`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plaintext.
    pub fn new(plaintext: impl Into<String>) -> Self {
        Secret(plaintext.into())
    }

    /// The plaintext; only for handing to a process or a file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The content-derived id of a plaintext.
pub fn secret_id(plaintext: &str) -> SecretId {
    SecretId(hex::encode(Sha256::digest(plaintext.as_bytes())))
}

/// Secrets of one run, by id. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SecretStore {
    secrets: Arc<Mutex<BTreeMap<SecretId, Secret>>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n_secrets = self
            .secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        write!(f, "SecretStore({n_secrets} secrets)")
    }
}

impl SecretStore {
    /// An empty store.
    pub fn new() -> Self {
        SecretStore::default()
    }

    /// Registers a plaintext and returns its id.
    pub fn register(&self, plaintext: impl Into<String>) -> SecretId {
        let plaintext = plaintext.into();
        let id = secret_id(&plaintext);
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Secret(plaintext));
        id
    }

    /// The secret with this id.
    pub fn get(&self, id: &SecretId) -> Option<Secret> {
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// `text` with every known plaintext (of 3 bytes or more) replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = text.to_string();
        for secret in secrets.values() {
            let plaintext = secret.expose();
            if plaintext.len() >= 3 && out.contains(plaintext) {
                out = out.replace(plaintext, "***");
            }
        }
        out
    }
}

/// Client sockets (`client.network`) of one run, by id.
#[derive(Clone, Debug, Default)]
pub struct SocketStore {
    sockets: Arc<Mutex<BTreeMap<SocketId, String>>>,
}

impl SocketStore {
    /// Registers an address (`unix:///run/x.sock`) and returns its id.
    pub fn register(&self, address: &str) -> SocketId {
        let id = SocketId(hex::encode(Sha256::digest(address.as_bytes())));
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), address.to_string());
        id
    }

    /// The address of a socket id.
    pub fn get(&self, id: &SocketId) -> Option<String> {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_ids_are_content_derived() {
        let store = SecretStore::new();
        let a = store.register("hunter2");
        let b = store.register(String::from("hunter2"));
        assert_eq!(a, b);
        assert_ne!(a, store.register("other"));
        let secret = store.get(&a).unwrap();
        assert_eq!(format!("{secret:?}"), "***");
        assert!(!a.0.contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(store.redact("pw=hunter2!"), "pw=***!");
    }
}
