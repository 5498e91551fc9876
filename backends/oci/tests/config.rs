//! Registry settings (mirrors file and environment) and Docker credentials.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cuedag_oci::mirrors::{ENV_INSECURE, ENV_MIRRORS, ENV_OFFLINE, ENV_TAG_FALLBACK};
use cuedag_oci::{DockerConfig, Platform, RegistryConfig};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn urls(config: &RegistryConfig, registry: &str) -> Vec<String> {
    config
        .pull_endpoints(registry)
        .iter()
        .map(|e| {
            if e.prefix.is_empty() {
                e.base_url.clone()
            } else {
                format!("{} (prefix {})", e.base_url, e.prefix)
            }
        })
        .collect()
}

#[test]
fn env_mirrors_come_first_then_origin() {
    let mut config = RegistryConfig::default();
    config
        .apply_env(env(&[(
            ENV_MIRRORS,
            "docker.io=http://127.0.0.1:5000,index.docker.io=mirror.example.com/hub",
        )]))
        .unwrap();
    assert_eq!(
        urls(&config, "docker.io"),
        [
            "http://127.0.0.1:5000",
            "https://mirror.example.com (prefix hub)",
            "https://registry-1.docker.io"
        ]
    );
    assert_eq!(urls(&config, "ghcr.io"), ["https://ghcr.io"]);
    assert_eq!(urls(&config, "localhost:5000"), ["http://localhost:5000"]);
    let ep = &config.pull_endpoints("docker.io")[1];
    assert_eq!(ep.repository("library/alpine"), "hub/library/alpine");
}

#[test]
fn offline_never_falls_back_except_to_loopback() {
    let mut config = RegistryConfig::default();
    config
        .apply_env(env(&[
            (ENV_MIRRORS, "docker.io=http://127.0.0.1:5000"),
            (ENV_OFFLINE, "1"),
            (ENV_TAG_FALLBACK, "true"),
        ]))
        .unwrap();
    assert!(config.offline && config.tag_fallback);
    assert_eq!(urls(&config, "docker.io"), ["http://127.0.0.1:5000"]);
    assert!(urls(&config, "ghcr.io").is_empty());
    assert_eq!(urls(&config, "127.0.0.1:5000"), ["http://127.0.0.1:5000"]);
}

#[test]
fn file_format_and_precedence() {
    let text = r#"{
  "mirrors": {"docker.io": ["https://file-mirror.example.com"], "quay.io": ["http://10.0.0.1:5000"]},
  "insecure": ["registry.internal:5000"],
  "offline": false
}"#;
    let mut config = RegistryConfig::parse_file(text, "registries.json").unwrap();
    config
        .apply_env(env(&[
            (ENV_MIRRORS, "docker.io=http://127.0.0.1:5000"),
            (ENV_INSECURE, "other.internal"),
        ]))
        .unwrap();
    assert_eq!(
        urls(&config, "docker.io"),
        [
            "http://127.0.0.1:5000",
            "https://file-mirror.example.com",
            "https://registry-1.docker.io"
        ]
    );
    assert_eq!(
        urls(&config, "quay.io"),
        ["http://10.0.0.1:5000", "https://quay.io"]
    );
    assert_eq!(
        urls(&config, "registry.internal:5000"),
        ["http://registry.internal:5000"]
    );
    assert_eq!(urls(&config, "other.internal"), ["http://other.internal"]);
}

#[test]
fn config_errors_are_located() {
    let err = RegistryConfig::parse_file(
        "{\n  \"mirrors\": {\"docker.io\": \"x\"}\n}",
        "registries.json",
    )
    .unwrap_err();
    assert_eq!(err.code(), "oci::config");
    assert!(err.to_string().starts_with("registries.json:2:"), "{err}");
    let err = RegistryConfig::parse_file(r#"{"mirrorz": {}}"#, "r.json").unwrap_err();
    assert!(err.to_string().contains("unknown field `mirrorz`"), "{err}");
    let err = RegistryConfig::parse_file(r#"{"mirrors": {"docker.io": ["ftp://x"]}}"#, "r.json")
        .unwrap_err();
    assert!(
        err.to_string().contains("expected `http` or `https`"),
        "{err}"
    );
    let mut config = RegistryConfig::default();
    let err = config
        .apply_env(env(&[(ENV_MIRRORS, "docker.io")]))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("CUEDAG_REGISTRY_MIRRORS: entry `docker.io` is not `host=url`"),
        "{err}"
    );
}

#[test]
fn docker_config_credentials() {
    // "user:pa:ss" in base64.
    let text = r#"{"auths": {
        "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
        "127.0.0.1:5000": {"username": "bob", "password": "secret"},
        "ghcr.io": {}
    }}"#;
    let config = DockerConfig::parse(text, "config.json").unwrap();
    let hub = config.get("docker.io").unwrap();
    assert_eq!(hub.username, "user");
    assert_eq!(hub.secret.expose(), "pa:ss");
    assert_eq!(format!("{:?}", hub.secret), "***", "secrets never print");
    assert!(!format!("{hub:?}").contains("pa:ss"));
    assert_eq!(config.get("127.0.0.1:5000").unwrap().username, "bob");
    assert!(config.get("ghcr.io").is_none());
    let err =
        DockerConfig::parse(r#"{"auths": {"x.io": {"auth": "!!!"}}}"#, "config.json").unwrap_err();
    assert!(err.to_string().contains("auths.x.io.auth"), "{err}");
}

#[test]
fn docker_hub_env_credentials() {
    let mut config = DockerConfig::parse(
        r#"{"auths": {"docker.io": {"username": "file", "password": "f"}}}"#,
        "c.json",
    )
    .unwrap();
    config.apply_hub_env([("DOCKERHUB_AUTH_USER".to_owned(), "env".to_owned())]);
    assert_eq!(
        config.get("docker.io").unwrap().username,
        "file",
        "both variables are needed"
    );
    config.apply_hub_env([
        ("dockerhub_auth_user".to_owned(), "env".to_owned()),
        ("DockerHub_Auth_Password".to_owned(), "pw".to_owned()),
    ]);
    let hub = config.get("index.docker.io").unwrap();
    assert_eq!((hub.username.as_str(), hub.secret.expose()), ("env", "pw"));
}

#[test]
fn platforms() {
    let p = Platform::parse("linux/x86_64").unwrap();
    assert_eq!(p.to_string(), "linux/amd64");
    assert!(p.matches("linux", "amd64", None));
    assert!(!p.matches("linux", "arm64", None));
    let arm = Platform::parse("linux/arm64/v8").unwrap();
    assert!(
        arm.matches("linux", "arm64", None),
        "arm64 without variant is v8"
    );
    assert!(arm.matches("linux", "aarch64", Some("v8")));
    let v7 = Platform::parse("linux/arm/v7").unwrap();
    assert!(!v7.matches("linux", "arm", Some("v6")));
    assert!(Platform::parse("linux").is_err());
    assert!(Platform::parse("linux//").is_err());
}
