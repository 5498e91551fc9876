//! The token and basic authentication flows, against a small fake registry
//! served on a loopback port by the test itself.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use cuedag_oci::{BlobStore, Credentials, DockerConfig, Reference, RegistryClient, RegistryConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

#[derive(Clone, Copy)]
enum Scheme {
    Bearer,
    Basic,
}

/// Serves `/v2/app/manifests/v1` behind auth; records every request line
/// with its `Authorization` header.
async fn fake_registry(
    scheme: Scheme,
    user: &'static str,
    pass: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log2, addr2) = (log.clone(), addr.clone());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let text = String::from_utf8_lossy(&buf).to_string();
            let line = text.lines().next().unwrap_or("").to_owned();
            let auth = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: ")
                        .or_else(|| l.strip_prefix("Authorization: "))
                })
                .unwrap_or("")
                .to_owned();
            log2.lock().unwrap().push(format!("{line} | {auth}"));
            let (status, headers, body) = if line.starts_with("GET /token?") {
                if auth == basic
                    && line.contains("service=fake")
                    && line.contains("scope=repository%3Aapp%3Apull")
                {
                    ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_owned())
                } else {
                    ("401 Unauthorized", String::new(), "{}".to_owned())
                }
            } else if line.starts_with("GET /v2/app/manifests/v1") {
                let ok = match scheme {
                    Scheme::Bearer => auth == "Bearer tok123",
                    Scheme::Basic => auth == basic,
                };
                if ok {
                    (
                        "200 OK",
                        "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n".to_owned(),
                        MANIFEST.to_owned(),
                    )
                } else {
                    let challenge = match scheme {
                        Scheme::Bearer => format!(
                            "WWW-Authenticate: Bearer realm=\"http://{addr2}/token\",service=\"fake\",scope=\"repository:app:pull\"\r\n"
                        ),
                        Scheme::Basic => "WWW-Authenticate: Basic realm=\"fake\"\r\n".to_owned(),
                    };
                    ("401 Unauthorized", challenge, "{}".to_owned())
                }
            } else {
                ("404 Not Found", String::new(), "{}".to_owned())
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            let _ = sock.shutdown().await;
        }
    });
    (addr, log)
}

fn client(dir: &std::path::Path, docker: DockerConfig) -> RegistryClient {
    RegistryClient::new(
        BlobStore::open(dir).unwrap(),
        RegistryConfig::default(),
        docker,
    )
    .unwrap()
}

#[tokio::test]
async fn bearer_token_flow_with_explicit_credentials() {
    let (addr, log) = fake_registry(Scheme::Bearer, "alice", "s3cret").await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path(), DockerConfig::default());
    let reference = Reference::parse(&format!("{addr}/app:v1")).unwrap();
    let creds = Credentials::new("alice", "s3cret");
    let (digest, media_type, _) = client
        .fetch_manifest(&reference, Some(&creds))
        .await
        .unwrap();
    assert_eq!(digest, cuedag_oci::Digest::of(MANIFEST.as_bytes()));
    assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
    // The token is cached: a second request goes straight through.
    client
        .fetch_manifest(&reference, Some(&creds))
        .await
        .unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(
        log[0].starts_with("GET /v2/app/manifests/v1 HTTP/1.1 | ") && log[0].ends_with("| "),
        "{log:#?}"
    );
    assert!(log[1].starts_with("GET /token?"), "{log:#?}");
    assert!(log[2].ends_with("| Bearer tok123"), "{log:#?}");
    assert!(log[3].ends_with("| Bearer tok123"), "{log:#?}");

    // Wrong credentials are an auth error naming the registry.
    let other = tempfile::tempdir().unwrap();
    let bad = client_with(other.path());
    let err = bad
        .fetch_manifest(&reference, Some(&Credentials::new("alice", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::auth", "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
}

fn client_with(dir: &std::path::Path) -> RegistryClient {
    client(dir, DockerConfig::default())
}

#[tokio::test]
async fn basic_auth_from_docker_config() {
    let (addr, _log) = fake_registry(Scheme::Basic, "bob", "pw").await;
    let encoded = base64::engine::general_purpose::STANDARD.encode("bob:pw");
    let docker = DockerConfig::parse(
        &format!(r#"{{"auths": {{"{addr}": {{"auth": "{encoded}"}}}}}}"#),
        "config.json",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = Reference::parse(&format!("{addr}/app:v1")).unwrap();
    let (digest, _, _) = client(dir.path(), docker)
        .fetch_manifest(&reference, None)
        .await
        .unwrap();
    assert_eq!(digest, cuedag_oci::Digest::of(MANIFEST.as_bytes()));

    // Without credentials the error says so.
    let err = client(dir.path(), DockerConfig::default())
        .fetch_manifest(&reference, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("none were found"), "{err}");
}
