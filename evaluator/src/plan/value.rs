//! Task values: the owned, fully concrete data handed to a backend and the
//! outputs it hands back.
//!
//! A small tree mirroring CUE data plus typed references to the runtime's
//! filesystems, secrets and sockets. It never holds a secret's plaintext.

use std::fmt;

use indexmap::IndexMap;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A reference to a filesystem held by the backend (`dagger.#FS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsRef {
    /// `dagger.#Scratch`: the empty filesystem (`_id: null`).
    Scratch,
    /// An opaque id into the backend's filesystem store.
    Id(String),
}

/// The opaque, content-derived id of a secret (`dagger.#Secret`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretId(pub String);

/// The id of a registered client socket (`dagger.#Socket`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub String);

/// The declared type of a field that is not concrete yet: an output the
/// task fills, or an input whose type selects a mode (`contents: string`
/// versus `contents: dagger.#Secret` in a client read).
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The type.
    pub kind: DeclaredKind,
    /// The default, when the field has one (`*"x" | string`).
    pub default: Option<Box<TaskValue>>,
    /// Whether the field is optional (`FOO?: string`).
    pub optional: bool,
}

/// Types a non-concrete field can be declared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredKind {
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `int`.
    Int,
    /// `float` or `number`.
    Number,
    /// `bool`.
    Bool,
    /// `dagger.#FS`.
    Fs,
    /// `dagger.#Secret`.
    Secret,
    /// `dagger.#Socket`.
    Socket,
    /// Anything else (`_`, a struct, a list, a disjunction of kinds), by name.
    Other(String),
}

impl DeclaredKind {
    /// The name as CUE prints it.
    pub fn name(&self) -> &str {
        match self {
            DeclaredKind::String => "string",
            DeclaredKind::Bytes => "bytes",
            DeclaredKind::Int => "int",
            DeclaredKind::Number => "number",
            DeclaredKind::Bool => "bool",
            DeclaredKind::Fs => "dagger.#FS",
            DeclaredKind::Secret => "dagger.#Secret",
            DeclaredKind::Socket => "dagger.#Socket",
            DeclaredKind::Other(name) => name,
        }
    }
}

impl Declared {
    /// A required field of this kind, without default.
    pub fn new(kind: DeclaredKind) -> Self {
        Declared {
            kind,
            default: None,
            optional: false,
        }
    }
}

/// Concrete CUE data plus typed references.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskValue {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<TaskValue>),
    /// A struct, fields in declaration order.
    Struct(IndexMap<String, TaskValue>),
    /// A filesystem reference.
    Fs(FsRef),
    /// A secret reference.
    Secret(SecretId),
    /// A socket reference.
    Socket(SocketId),
    /// A field not concrete yet, with its declared type.
    Declared(Declared),
}

impl TaskValue {
    /// An empty struct.
    pub fn empty_struct() -> Self {
        TaskValue::Struct(IndexMap::new())
    }

    /// A struct from `(name, value)` pairs.
    pub fn structure<I, K>(fields: I) -> Self
    where
        I: IntoIterator<Item = (K, TaskValue)>,
        K: Into<String>,
    {
        TaskValue::Struct(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn string(text: impl Into<String>) -> Self {
        TaskValue::String(text.into())
    }

    /// The field `name` of a struct.
    pub fn get(&self, name: &str) -> Option<&TaskValue> {
        match self {
            TaskValue::Struct(fields) => fields.get(name),
            _ => None,
        }
    }

    /// The value at a `.`-free list of labels.
    pub fn lookup(&self, labels: &[&str]) -> Option<&TaskValue> {
        labels
            .iter()
            .try_fold(self, |value, label| value.get(label))
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TaskValue::String(text) => Some(text),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            TaskValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            TaskValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The fields, if this is a struct.
    pub fn as_struct(&self) -> Option<&IndexMap<String, TaskValue>> {
        match self {
            TaskValue::Struct(fields) => Some(fields),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[TaskValue]> {
        match self {
            TaskValue::List(items) => Some(items),
            _ => None,
        }
    }

    /// The CUE kind name (`string`, `int`, `struct`, `dagger.#FS`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            TaskValue::Null => "null",
            TaskValue::Bool(_) => "bool",
            TaskValue::Int(_) => "int",
            TaskValue::Float(_) => "float",
            TaskValue::String(_) => "string",
            TaskValue::Bytes(_) => "bytes",
            TaskValue::List(_) => "list",
            TaskValue::Struct(_) => "struct",
            TaskValue::Fs(_) => "dagger.#FS",
            TaskValue::Secret(_) => "dagger.#Secret",
            TaskValue::Socket(_) => "dagger.#Socket",
            TaskValue::Declared(_) => "incomplete",
        }
    }

    /// The declared type, if this field is not concrete yet.
    pub fn as_declared(&self) -> Option<&Declared> {
        match self {
            TaskValue::Declared(declared) => Some(declared),
            _ => None,
        }
    }

    /// Whether the whole tree is concrete (no [`TaskValue::Declared`]).
    pub fn is_concrete(&self) -> bool {
        let mut concrete = true;
        self.walk(&mut |value| {
            if matches!(value, TaskValue::Declared(_)) {
                concrete = false;
            }
        });
        concrete
    }

    /// Every filesystem reference in the tree, in order.
    pub fn fs_refs(&self) -> Vec<&FsRef> {
        let mut refs = Vec::new();
        self.walk(&mut |value| {
            if let TaskValue::Fs(fs) = value {
                refs.push(fs);
            }
        });
        refs
    }

    fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a TaskValue)) {
        visit(self);
        match self {
            TaskValue::List(items) => items.iter().for_each(|item| item.walk(visit)),
            TaskValue::Struct(fields) => fields.values().for_each(|item| item.walk(visit)),
            _ => {}
        }
    }

    /// Canonical JSON (struct keys sorted) for hashing into cache keys.
    /// Secrets appear only by their content-derived id.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&Canonical(self)).unwrap_or_default()
    }
}

/// Serialises references as single-key objects (`{"$fs": id}`,
/// `{"$secret": id}`, `{"$socket": id}`) and keeps field order.
impl Serialize for TaskValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_value(self, serializer, false)
    }
}

struct Canonical<'a>(&'a TaskValue);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_value(self.0, serializer, true)
    }
}

struct Sorted<'a>(&'a TaskValue, bool);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_value(self.0, serializer, self.1)
    }
}

fn serialize_value<S: Serializer>(
    value: &TaskValue,
    serializer: S,
    sorted: bool,
) -> Result<S::Ok, S::Error> {
    match value {
        TaskValue::Null => serializer.serialize_unit(),
        TaskValue::Bool(b) => serializer.serialize_bool(*b),
        TaskValue::Int(i) => serializer.serialize_i64(*i),
        TaskValue::Float(f) => serializer.serialize_f64(*f),
        TaskValue::String(s) => serializer.serialize_str(s),
        TaskValue::Bytes(bytes) => serializer.serialize_str(&hex::encode(bytes)),
        TaskValue::List(items) => {
            let mut seq = serializer.serialize_seq(Some(items.len()))?;
            for item in items {
                seq.serialize_element(&Sorted(item, sorted))?;
            }
            seq.end()
        }
        TaskValue::Struct(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            if sorted {
                keys.sort();
            }
            let mut map = serializer.serialize_map(Some(keys.len()))?;
            for key in keys {
                if let Some(field) = fields.get(key) {
                    map.serialize_entry(key, &Sorted(field, sorted))?;
                }
            }
            map.end()
        }
        TaskValue::Fs(fs) => {
            let mut map = serializer.serialize_map(Some(1))?;
            match fs {
                FsRef::Scratch => map.serialize_entry("$fs", &())?,
                FsRef::Id(id) => map.serialize_entry("$fs", id)?,
            }
            map.end()
        }
        TaskValue::Secret(SecretId(id)) => {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("$secret", id)?;
            map.end()
        }
        TaskValue::Socket(SocketId(id)) => {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("$socket", id)?;
            map.end()
        }
        TaskValue::Declared(declared) => {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("$type", declared.kind.name())?;
            map.end()
        }
    }
}

/// CUE-like rendering (`{args: ["sh", "-c"], input: dagger.#FS}`), with
/// references shown by type only: what `--dry-run` and output tables print.
impl fmt::Display for TaskValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskValue::Null => f.write_str("null"),
            TaskValue::Bool(b) => write!(f, "{b}"),
            TaskValue::Int(i) => write!(f, "{i}"),
            TaskValue::Float(x) => write!(f, "{x:?}"),
            TaskValue::String(s) => {
                f.write_str(&serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}")))
            }
            TaskValue::Bytes(bytes) => write!(f, "'<{} bytes>'", bytes.len()),
            TaskValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            TaskValue::Struct(fields) => {
                f.write_str("{")?;
                for (i, (key, item)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {item}", super::path::format_label(key))?;
                }
                f.write_str("}")
            }
            TaskValue::Fs(FsRef::Scratch) => f.write_str("dagger.#Scratch"),
            TaskValue::Fs(FsRef::Id(_)) => f.write_str("dagger.#FS"),
            TaskValue::Secret(_) => f.write_str("dagger.#Secret"),
            TaskValue::Socket(_) => f.write_str("dagger.#Socket"),
            TaskValue::Declared(declared) => match &declared.default {
                Some(default) => write!(f, "*{default} | {}", declared.kind.name()),
                None => f.write_str(declared.kind.name()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_keeps_only_secret_ids() {
        let value = TaskValue::structure([
            ("b", TaskValue::Int(1)),
            ("a", TaskValue::Secret(SecretId("abc".into()))),
            ("c", TaskValue::Fs(FsRef::Scratch)),
        ]);
        assert_eq!(
            value.canonical_json(),
            r#"{"a":{"$secret":"abc"},"b":1,"c":{"$fs":null}}"#
        );
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"b":1,"a":{"$secret":"abc"},"c":{"$fs":null}}"#
        );
    }

    #[test]
    fn displays_like_cue_with_references_redacted() {
        let value = TaskValue::structure([
            ("args", TaskValue::List(vec![TaskValue::string("sh")])),
            (
                "env",
                TaskValue::structure([("TOKEN", TaskValue::Secret(SecretId("x".into())))]),
            ),
            ("input", TaskValue::Fs(FsRef::Id("1".into()))),
            ("./out", TaskValue::Bool(true)),
        ]);
        assert_eq!(
            value.to_string(),
            r#"{args: ["sh"], env: {TOKEN: dagger.#Secret}, input: dagger.#FS, "./out": true}"#
        );
        assert_eq!(
            value.lookup(&["env", "TOKEN"]).map(TaskValue::kind),
            Some("dagger.#Secret")
        );
        assert_eq!(value.fs_refs(), vec![&FsRef::Id("1".into())]);
    }
}
