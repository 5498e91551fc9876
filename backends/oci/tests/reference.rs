//! Reference parsing and normalisation, as a table.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cuedag_oci::Reference;

const DIGEST: &str = "sha256:21a3deaa0d32a8057914f36584b5288d2e5ecc984380bc0118285c70fa8c9300";

#[test]
fn normalises_like_docker() {
    let cases: &[(&str, &str)] = &[
        ("alpine", "docker.io/library/alpine:latest"),
        ("alpine:3.15", "docker.io/library/alpine:3.15"),
        (
            "index.docker.io/golang:1.18-alpine",
            "docker.io/library/golang:1.18-alpine",
        ),
        (
            "docker.io/library/golang:1.18-alpine",
            "docker.io/library/golang:1.18-alpine",
        ),
        (
            "registry-1.docker.io/dagger/dagger:v1",
            "docker.io/dagger/dagger:v1",
        ),
        ("index.docker.io/dagger", "docker.io/library/dagger:latest"),
        ("user/app", "docker.io/user/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        (
            "127.0.0.1:5000/library/alpine:3.15",
            "127.0.0.1:5000/library/alpine:3.15",
        ),
        (
            "ghcr.io/org/sub/image:1.0.0-rc_1",
            "ghcr.io/org/sub/image:1.0.0-rc_1",
        ),
        (
            "my-registry.example.com:443/a/b",
            "my-registry.example.com:443/a/b:latest",
        ),
        ("a__b/c.d-e--f", "docker.io/a__b/c.d-e--f:latest"),
        ("[::1]:5000/app:v2", "[::1]:5000/app:v2"),
    ];
    for (input, want) in cases {
        let parsed = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(parsed.to_string(), *want, "input {input}");
    }
}

#[test]
fn keeps_tag_and_digest() {
    let r = Reference::parse(&format!("alpine:3.15.0@{DIGEST}")).unwrap();
    assert_eq!(r.registry(), "docker.io");
    assert_eq!(r.repository(), "library/alpine");
    assert_eq!(r.tag(), Some("3.15.0"));
    assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(DIGEST));
    assert_eq!(r.manifest_key(), DIGEST);
    assert_eq!(
        r.to_string(),
        format!("docker.io/library/alpine:3.15.0@{DIGEST}")
    );

    let by_digest = Reference::parse(&format!("localhost:5000/app@{DIGEST}")).unwrap();
    assert_eq!(by_digest.tag(), None);
    assert_eq!(
        by_digest.to_string(),
        format!("localhost:5000/app@{DIGEST}")
    );
    assert!(by_digest.is_loopback());
    assert_eq!(
        by_digest.without_digest().to_string(),
        "localhost:5000/app:latest"
    );
    assert_eq!(
        by_digest.name_at(by_digest.digest().unwrap()),
        format!("localhost:5000/app@{DIGEST}")
    );
}

#[test]
fn loopback_detection() {
    for (input, loopback) in [
        ("localhost:5000/a", true),
        ("127.0.0.1:5000/a", true),
        ("127.1.2.3/a", true),
        ("[::1]:5000/a", true),
        ("ghcr.io/a", false),
        ("alpine", false),
    ] {
        assert_eq!(
            Reference::parse(input).unwrap().is_loopback(),
            loopback,
            "{input}"
        );
    }
}

#[test]
fn rejects_bad_references() {
    let cases: &[(&str, &str)] = &[
        ("", "empty reference"),
        ("Alpine", "lowercase"),
        ("alpine:", "invalid tag"),
        ("alpine:-x", "invalid tag"),
        ("alpine@sha256:abc", "invalid digest"),
        ("alpine@md5:0123", "invalid digest"),
        ("a//b", "invalid repository name"),
        ("a/b_", "invalid repository name"),
        ("-a", "invalid repository name"),
        ("registry.io:port/x", "invalid registry host"),
        ("registry.io/", "missing repository name"),
        (" alpine", "whitespace"),
    ];
    for (input, reason) in cases {
        let err = Reference::parse(input).expect_err(input).to_string();
        assert!(
            err.starts_with(&format!("failed to parse ref `{input}`")),
            "{input}: {err}"
        );
        assert!(err.contains(reason), "{input}: `{err}` lacks `{reason}`");
    }
    let err = Reference::parse("UPPER").unwrap_err();
    assert_eq!(err.code(), "oci::invalid-reference");
}
