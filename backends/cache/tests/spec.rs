//! The cache-spec table: every valid form and every error kind, with the
//! messages snapshotted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use cuedag_cache::spec::{CacheBackend, CacheSpec, CacheSpecs, Direction, Origin};

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/ci".into()),
        "ACTIONS_CACHE_URL" => Some("https://cache.example/".into()),
        "ACTIONS_RUNTIME_TOKEN" => Some("ENV-TOKEN-123".into()),
        _ => None,
    }
}

fn describe(direction: Direction, text: &str) -> String {
    match CacheSpec::parse(direction, Origin::Flag, text, &env) {
        Ok(spec) => {
            let mut out = format!("ok: {:?}", spec.backend);
            if spec.ignore_error {
                out.push_str(" ignore-error");
            }
            if spec.cache_mounts {
                out.push_str(" cache-mounts");
            }
            if let Err(err) = spec.require_supported() {
                write!(out, "\n    unsupported[{}]: {err}", err.code()).unwrap();
            }
            out
        }
        Err(err) => format!("error[{}]: {err}\n    hint: {}", err.code(), err.hint()),
    }
}

const CASES: &[(Direction, &str)] = &[
    // Valid.
    (Direction::To, "type=local,mode=max,dest=storage"),
    (Direction::From, "type=local,src=storage"),
    (Direction::To, "type=local,dest=~/cache,tag=build"),
    (Direction::From, "type=local,src=~"),
    (Direction::From, "type=local,src=s,tag=v1.2,digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    (Direction::To, "type=local,dest=d,ignore-error=true,cache-mounts=1,compression=zstd,compression-level=3,force-compression=true"),
    (Direction::To, "type=registry,mode=max,ref=localhost:5000/cache"),
    (Direction::From, "type=registry,ref=localhost:5000/cache"),
    (Direction::To, "type=registry,ref=ghcr.io/acme/app:buildcache,oci-mediatypes=false"),
    (Direction::To, "type=registry,ref=r.example/x,image-manifest=false"),
    (Direction::From, "user/app:cache"),
    (Direction::To, "registry.example:443/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    (Direction::To, "\"type=local\",\"dest=a,b\""),
    (Direction::To, "type=local,dest=\"a,b\",mode=min"),
    (Direction::To, "type=local,dest=\"say \"\"hi\"\"\""),
    (Direction::To, "type=local, dest=spaced"),
    (Direction::To, "type=gha,mode=max,scope=dagger-cache-example"),
    (Direction::From, "type=gha,scope=s,url=http://x/,token=SECRET-TOKEN"),
    // Errors.
    (Direction::To, ""),
    (Direction::To, "type=local,mdoe=max,dest=d"),
    (Direction::To, "type=local,mode=maxi,dest=d"),
    (Direction::To, "type=local,mode=max"),
    (Direction::From, "type=local"),
    (Direction::To, "type=s3,bucket=x"),
    (Direction::To, "type="),
    (Direction::To, "mode=max,dest=x"),
    (Direction::To, "type=local,dest=a,dest=b"),
    (Direction::To, "type=local,src=x"),
    (Direction::From, "type=local,dest=x"),
    (Direction::From, "type=local,src=s,mode=max"),
    (Direction::To, "type=local,dest=\"abc"),
    (Direction::To, "type=local,dest"),
    (Direction::To, "type=local,,dest=d"),
    (Direction::To, "type=local,=x,dest=d"),
    (Direction::To, "type=local,dest="),
    (Direction::To, "type=registry"),
    (Direction::To, "type=registry,ref=UPPER/Case"),
    (Direction::To, "type=registry,ref=host:port/x"),
    (Direction::To, "type=registry,ref=a/b:bad tag"),
    (Direction::From, "Not A Ref"),
    (Direction::To, "type=registry,ref=x/y,image-manifest=true,oci-mediatypes=false"),
    (Direction::From, "type=local,src=s,digest=sha256:zz"),
    (Direction::To, "type=local,dest=d,tag=bad/tag"),
    (Direction::To, "type=local,dest=d,ignore-error=yes"),
    (Direction::From, "type=registry,ref=localhost:5000/cache,cache-mounts=maybe"),
    (Direction::From, "type=local,src=s,cache-mounts=true"),
    (Direction::To, "type=local,dest=d,compression=brotli"),
    (Direction::To, "type=local,dest=d,compression-level=99"),
    (Direction::From, "type=registry,ref=x/y,mode=max"),
    (Direction::To, "type=gha,url=ftp://x,token=SECRET-TOKEN"),
    (Direction::To, "type=gha,scope="),
];

#[test]
fn spec_table() {
    let mut out = String::new();
    for (direction, text) in CASES {
        let flag = match direction {
            Direction::To => "--cache-to",
            Direction::From => "--cache-from",
        };
        let described = describe(*direction, text);
        assert!(
            !described.contains("SECRET-TOKEN") && !described.contains("ENV-TOKEN"),
            "a secret leaked: {described}"
        );
        // The input is shown with its secret masked.
        let shown = text.replace("SECRET-TOKEN", "<secret>");
        writeln!(out, "{flag} {shown}\n    {described}").unwrap();
    }
    insta::assert_snapshot!(out);
}

#[test]
fn gha_token_falls_back_to_env_and_is_redacted() {
    let spec = CacheSpec::parse(
        Direction::To,
        Origin::Flag,
        "type=gha,token=SECRET-TOKEN",
        &env,
    )
    .unwrap();
    let debug = format!("{spec:?}");
    assert!(!debug.contains("SECRET-TOKEN"), "{debug}");
    let CacheBackend::Gha(gha) = &spec.backend else {
        panic!("not gha: {debug}")
    };
    assert_eq!(gha.token.as_ref().unwrap().expose(), "SECRET-TOKEN");
    assert_eq!(spec.attrs.get("token"), Some("SECRET-TOKEN"));
    assert_eq!(gha.url.as_deref(), Some("https://cache.example/"));

    let from_env = CacheSpec::parse(Direction::To, Origin::Env, "type=gha", &env).unwrap();
    let CacheBackend::Gha(gha) = &from_env.backend else {
        panic!("not gha")
    };
    assert_eq!(gha.token.as_ref().unwrap().expose(), "ENV-TOKEN-123");
    assert_eq!(gha.scope, "buildkit");
    let err = from_env.require_supported().unwrap_err().to_string();
    assert_eq!(
        err,
        "DAGGER_CACHE_TO type=gha, column 6: type=gha is not yet supported"
    );
}

#[test]
fn attrs_keep_the_original_values() {
    let spec = CacheSpec::parse(
        Direction::To,
        Origin::Flag,
        "type=local,dest=\"a,b\",mode=max",
        &env,
    )
    .unwrap();
    let attrs: Vec<(&str, &str)> = spec.attrs.iter().collect();
    assert_eq!(attrs, [("type", "local"), ("dest", "a,b"), ("mode", "max")]);
    let shorthand =
        CacheSpec::parse(Direction::From, Origin::Flag, "user/app:cache", &env).unwrap();
    let attrs: Vec<(&str, &str)> = shorthand.attrs.iter().collect();
    assert_eq!(attrs, [("type", "registry"), ("ref", "user/app:cache")]);
}

#[test]
fn flags_and_env_add_up() {
    let to = vec!["type=local,dest=a".to_owned()];
    let from = vec!["type=local,src=a".to_owned(), "type=local,src=a".to_owned()];
    let env = |name: &str| match name {
        "DAGGER_CACHE_TO" => Some("type=registry,ref=r:5000/c\ntype=local,dest=a".to_owned()),
        "DAGGER_CACHE_FROM" => Some("type=registry,ref=r:5000/c".to_owned()),
        _ => None,
    };
    let specs = CacheSpecs::from_args(&to, &from, &env).unwrap();
    let origins: Vec<(Origin, &str)> = specs
        .to
        .iter()
        .map(|s| (s.origin, s.attrs.get("type").unwrap()))
        .collect();
    // The duplicate `type=local,dest=a` from the environment is dropped.
    assert_eq!(
        origins,
        [(Origin::Flag, "local"), (Origin::Env, "registry")]
    );
    assert_eq!(specs.from.len(), 2);
}

#[test]
fn every_error_is_reported() {
    let to = vec!["type=local".to_owned(), "type=gha".to_owned()];
    let env = |name: &str| (name == "DAGGER_CACHE_FROM").then(|| "type=s3".to_owned());
    let errors = CacheSpecs::from_args(&to, &[], &env).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "--cache-to type=local, column 11: missing required key \"dest\"",
            "--cache-to type=gha, column 6: type=gha is not yet supported",
            "DAGGER_CACHE_FROM, column 6: unknown cache type \"s3\" (expected local, registry or gha)",
        ]
    );
}

#[test]
fn spec_helpers_give_tags_selectors_and_references() {
    use cuedag_cache::spec::split_reference;
    use cuedag_cache::ImportSelector;
    let parse = |direction, text| {
        CacheSpec::parse(direction, Origin::Flag, text, &env)
            .unwrap()
            .backend
    };
    let CacheBackend::Local(to) = parse(Direction::To, "type=local,dest=d") else {
        panic!()
    };
    assert_eq!(to.export_tag(&["build"]), "build");
    let CacheBackend::Local(to) = parse(Direction::To, "type=local,dest=d,tag=ci") else {
        panic!()
    };
    assert_eq!(to.export_tag(&["build"]), "ci");
    let CacheBackend::Local(from) = parse(Direction::From, "type=local,src=d") else {
        panic!()
    };
    assert_eq!(from.import_selector(), ImportSelector::All);
    let CacheBackend::Local(from) = parse(Direction::From, "type=local,src=d,tag=ci") else {
        panic!()
    };
    assert_eq!(from.import_selector(), ImportSelector::Tag("ci".into()));

    let CacheBackend::Registry(reg) = parse(
        Direction::To,
        "type=registry,ref=localhost:5000/a/cache:main",
    ) else {
        panic!()
    };
    assert_eq!(reg.repository(), "localhost:5000/a/cache");
    assert_eq!(reg.export_tag(), "main");
    assert_eq!(reg.import_reference(), "main");
    let CacheBackend::Registry(reg) = parse(Direction::From, "localhost:5000/cache") else {
        panic!()
    };
    assert_eq!(reg.repository(), "localhost:5000/cache");
    assert_eq!(reg.export_tag(), "latest");
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        split_reference(&format!("h:1/x:t@{digest}")),
        ("h:1/x", Some("t"), Some(digest))
    );
}
