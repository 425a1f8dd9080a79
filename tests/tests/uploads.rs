//! What an upload costs the server, over the real API on every backend: a component refused by
//! the static checks (undeclared scope, unknown import, another platform version, forbidden
//! WASI) is refused before it is compiled, so it leaves nothing in the component cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::TestNode;

const ECHO_MANIFEST: &str = include_str!("../../examples/echo/miniapp.toml");
const FAULTS_MANIFEST: &str = r#"
id = "faults"
name = "Faults"
version = "0.1.0"
description = "Misbehaves on purpose."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "profile.read"
reason = "To greet you."

[[scopes]]
name = "auth.login"
reason = "To sign you in to our website."
"#;

fn wasm(path: &str) -> Vec<u8> {
    minihost_guest_artifacts::read(path).unwrap()
}

/// `wasm` with every occurrence of `from` replaced by `to` (same length): a component that
/// differs from a real one in one name, which is all a static check reads.
fn patched(wasm: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = wasm.to_vec();
    let mut found = false;
    for i in 0..=out.len() - from.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found = true;
        }
    }
    assert!(found, "{} not found", String::from_utf8_lossy(from));
    out
}

/// The files in the cache directory.
fn cache_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn refused_uploads_are_not_compiled_and_leave_nothing_in_the_cache() {
    for db in minihost_tests::testing::TestDb::all().await.unwrap() {
        let cache = tempfile::tempdir().unwrap();
        let node = TestNode::start_with_cache(db, cache.path()).await;
        let alice = node.developer("alice").await;
        let lab = alice.group("lab", &[]).await;

        // An accepted upload is compiled once and cached.
        let r = alice
            .sideload(&lab, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
            .await;
        assert_eq!(r.0, 201, "{}: {r:?}", node.backend());
        let before = cache_files(cache.path());
        assert_eq!(before.len(), 1, "{before:?}");
        let compiled = node.node.runtime.compile_count();
        assert_eq!(compiled, 1);

        let faults = wasm(minihost_guest_artifacts::FAULTS);
        let refused: [(&str, String, Vec<u8>); 4] = [
            (
                "profile.read",
                FAULTS_MANIFEST.replace("name = \"profile.read\"", "name = \"storage\""),
                faults.clone(),
            ),
            (
                "test:unknown/secret",
                ECHO_MANIFEST.to_owned(),
                wasm(minihost_guest_artifacts::UNKNOWN_IMPORT),
            ),
            (
                "minihost:app/types@0.9.0",
                ECHO_MANIFEST.to_owned(),
                patched(
                    &wasm(minihost_guest_artifacts::ECHO),
                    b"minihost:app/types@0.2.0",
                    b"minihost:app/types@0.9.0",
                ),
            ),
            (
                "wasi:sockets/",
                FAULTS_MANIFEST.to_owned(),
                patched(&faults, b"wasi:clocks/m", b"wasi:sockets/"),
            ),
        ];
        for (finding, manifest, component) in &refused {
            let (status, body) = alice.sideload(&lab, manifest, component).await;
            assert_eq!(status, 422, "{}: {body}", node.backend());
            assert_eq!(body["error"]["field"], "component", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(finding), "{finding:?} not in {body}");
        }

        assert_eq!(
            node.node.runtime.compile_count(),
            compiled,
            "a refused component was compiled"
        );
        assert_eq!(cache_files(cache.path()), before, "{}", node.backend());
        // Nothing of them was stored either.
        assert!(
            node.node
                .store
                .version_meta("faults", "0.1.0")
                .await
                .unwrap()
                .is_none()
        );
        node.finish().await;
    }
}
