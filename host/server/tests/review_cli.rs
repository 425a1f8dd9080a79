//! The developer's and reviewer's command line against the real binary and a real server:
//! `minihost login` keeps a session, `minihost app publish` publishes a built component with
//! notes and prints its findings, `minihost review queue|show|claim|approve|release|rollback|
//! suspend|unsuspend` work the queue; a refusal exits non-zero with the server's reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::spawn;
use minihost_core::{DisplayName, Role, Username};
use minihost_store::NewUser;
use minihost_store::testing::TestDb;
use std::path::Path;
use std::process::Command;

/// Runs `minihost ARGS` with `session` as the session file; (success, stdout, stderr).
fn minihost(session: &Path, server: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minihost"))
        .args(args)
        .env("MINIHOST_SESSION_FILE", session)
        .env("MINIHOST_SERVER", server)
        .env("MINIHOST_PASSWORD", "a long enough password")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_developer_publishes_and_a_reviewer_releases_from_the_command_line() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        for (name, role) in [("devi", Role::Developer), ("rita", Role::Reviewer)] {
            store
                .create_user(NewUser {
                    username: Username::parse(name).unwrap(),
                    display_name: DisplayName::parse(name).unwrap(),
                    password_hash: minihost_core::secret::hash_password("a long enough password")
                        .unwrap(),
                    role,
                })
                .await
                .unwrap();
        }
        store.close().await;
        let mut server = spawn(&db.config);
        let dir = tempfile::tempdir().unwrap();
        let (dev, rev) = (dir.path().join("dev.json"), dir.path().join("rev.json"));
        let url = server.url.clone();

        let (ok, out, err) = minihost(&dev, &url, &["login", "--username", "devi"]);
        assert!(ok, "{out}{err}");
        assert!(out.contains("signed in"), "{out}");
        let (ok, _, err) = minihost(&rev, &url, &["review", "queue"]);
        assert!(!ok && err.contains("no session"), "{err}");
        assert!(minihost(&rev, &url, &["login", "--username", "rita"]).0);

        let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/echo");
        let wasm = minihost_guest_artifacts::ECHO;
        let args = [
            "app",
            "publish",
            "--dir",
            echo.to_str().unwrap(),
            "--wasm",
            wasm,
            "--notes",
            "First.",
        ];
        let (ok, out, err) = minihost(&dev, &url, &args);
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("published echo@0.1.0 (submitted)") && out.contains("smoke"),
            "{out}"
        );
        // The same version again is refused, with the server's reason.
        let (ok, _, err) = minihost(&dev, &url, &args);
        assert!(!ok && err.contains("immutable"), "{err}");
        // A developer is no reviewer.
        let (ok, _, err) = minihost(&dev, &url, &["review", "queue"]);
        assert!(!ok && err.contains("reviewers only"), "{err}");

        let (ok, out, _) = minihost(&rev, &url, &["review", "queue"]);
        assert!(
            ok && out.contains("echo@0.1.0\tsubmitted\t-\tFirst."),
            "{out}"
        );
        let (ok, out, _) = minihost(&rev, &url, &["review", "show", "echo", "0.1.0"]);
        assert!(ok && out.contains("\"findings\""), "{out}");
        let (ok, _, err) = minihost(&rev, &url, &["review", "approve", "echo", "0.1.0"]);
        assert!(!ok && err.contains("claim it first"), "{err}");
        for step in [
            vec!["review", "claim", "echo", "0.1.0"],
            vec!["review", "approve", "echo", "0.1.0"],
            vec!["review", "release", "echo", "0.1.0", "--percent", "100"],
        ] {
            let (ok, out, err) = minihost(&rev, &url, &step);
            assert!(ok, "{step:?}: {out}{err}");
        }
        let (ok, _, err) = minihost(&rev, &url, &["review", "rollback", "echo"]);
        assert!(!ok && err.contains("no earlier release"), "{err}");
        let (ok, out, err) = minihost(
            &rev,
            &url,
            &["review", "suspend", "echo", "--reason", "Checking"],
        );
        assert!(ok && out.contains("suspended echo"), "{out}{err}");
        let (ok, out, err) = minihost(&rev, &url, &["review", "unsuspend", "echo"]);
        assert!(ok && out.contains("lifted"), "{out}{err}");

        let store = db.open(None).await.unwrap();
        let release = store.release("echo").await.unwrap();
        assert_eq!(release.stable.as_deref(), Some("0.1.0"));
        assert_eq!(store.suspension("echo").await.unwrap(), None);
        let audit = store.audit_about("echo", 50).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "suspend" && e.actor == "reviewer:rita")
        );
        store.close().await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        db.cleanup().await.unwrap();
    }
}
