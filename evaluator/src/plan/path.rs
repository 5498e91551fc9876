//! CUE paths of tasks and actions (`client.filesystem."./output".write`).

use std::fmt;

/// A CUE path: a list of field labels, printed as Dagger prints task paths.
///
/// Labels that are identifiers (`build`, `_exec`, `#Def`, `$dagger`) print
/// bare; every other label is quoted (`"./output"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CuePath(pub Vec<String>);

impl CuePath {
    /// The empty (root) path.
    pub fn root() -> Self {
        CuePath(Vec::new())
    }

    /// A path from labels.
    pub fn new<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CuePath(labels.into_iter().map(Into::into).collect())
    }

    /// This path with one more label.
    pub fn child(&self, label: impl Into<String>) -> Self {
        let mut labels = self.0.clone();
        labels.push(label.into());
        CuePath(labels)
    }

    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.0
    }

    /// Whether `self` equals `prefix` or lies under it.
    pub fn starts_with(&self, prefix: &CuePath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Whether the path is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The path with hidden suffixes folded into the visible parent:
    /// `actions.build._exec` → `actions.build` (progress groups, §5.4).
    pub fn visible(&self) -> CuePath {
        let end = self
            .0
            .iter()
            .position(|label| label.starts_with('_'))
            .unwrap_or(self.0.len());
        CuePath(self.0[..end].to_vec())
    }
}

/// Whether `label` prints without quotes.
pub fn is_identifier(label: &str) -> bool {
    let body = label
        .strip_prefix("#")
        .or_else(|| label.strip_prefix("_#"))
        .unwrap_or(label);
    let mut chars = body.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Prints a label as it appears in a path (quoted when needed).
pub fn format_label(label: &str) -> String {
    if is_identifier(label) {
        label.to_string()
    } else {
        serde_json::to_string(label).unwrap_or_else(|_| format!("\"{label}\""))
    }
}

impl fmt::Display for CuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&format_label(label))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_dagger() {
        let path = CuePath::new(["client", "filesystem", "./output", "write"]);
        assert_eq!(path.to_string(), r#"client.filesystem."./output".write"#);
        let path = CuePath::new(["actions", "build", "_exec", "$dagger", "#X", "a-b"]);
        assert_eq!(path.to_string(), r#"actions.build._exec.$dagger.#X."a-b""#);
    }

    #[test]
    fn folds_hidden_suffixes() {
        let path = CuePath::new(["actions", "build", "container", "_exec", "x"]);
        assert_eq!(path.visible().to_string(), "actions.build.container");
        assert!(path.starts_with(&CuePath::new(["actions", "build"])));
        assert!(!path.starts_with(&CuePath::new(["actions", "test"])));
    }
}
