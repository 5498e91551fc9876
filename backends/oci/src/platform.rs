//! Target platforms (`os/arch[/variant]`) and their matching rules.

use std::fmt;
use std::str::FromStr;

use crate::error::{OciError, Result};

/// An image platform: OS, architecture in Go's naming (`amd64`, `arm64`) and
/// optional variant (`v7`, `v8`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture (`amd64`, `arm64`, `arm`, ...).
    pub architecture: String,
    /// Variant (`v7`), empty when none.
    pub variant: String,
}

impl Platform {
    /// `linux/<host arch>`, the default target.
    pub fn host() -> Self {
        Platform {
            os: "linux".into(),
            architecture: normalize_arch(std::env::consts::ARCH).into(),
            variant: String::new(),
        }
    }

    /// Parses `os/arch[/variant]` (architectures like `x86_64` and `aarch64`
    /// are normalised to `amd64` and `arm64`).
    pub fn parse(input: &str) -> Result<Self> {
        let parts: Vec<&str> = input.split('/').collect();
        let bad = || OciError::Config {
            location: format!("platform `{input}`"),
            reason: "expected `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`".into(),
        };
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(&parts[1].to_ascii_lowercase()).into(),
            variant: parts
                .get(2)
                .map(|v| v.to_ascii_lowercase())
                .unwrap_or_default(),
        })
    }

    /// Whether an index entry for (`os`, `arch`, `variant`) runs on this
    /// platform. An unset wanted variant accepts any; `arm64` treats an
    /// empty variant as `v8`.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if !os.eq_ignore_ascii_case(&self.os) || normalize_arch(arch) != self.architecture {
            return false;
        }
        if self.variant.is_empty() {
            return true;
        }
        let variant = variant.unwrap_or("");
        let variant = if variant.is_empty() && self.architecture == "arm64" {
            "v8"
        } else {
            variant
        };
        variant == self.variant
    }
}

impl Default for Platform {
    fn default() -> Self {
        Platform::host()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self> {
        Platform::parse(s)
    }
}

/// Maps kernel/LLVM architecture names to Go's.
pub fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "armhf" | "armel" => "arm",
        other => other,
    }
}
