//! The web client in a real browser: each test starts a node (SQLite), sets up what the
//! scenario needs over the API, then runs a node script of `tests/web-e2e/` that drives Debian's
//! Chromium (`/usr/bin/chromium`) through `playwright-core` against the node's own `/`, asserting
//! what is on the page and saving screenshots under `target/web-e2e/`. The first run installs
//! what it needs: Chromium with apt (as root, when missing; never a browser download) and
//! playwright-core with `npm ci` from the committed lockfile.
//!
//! Browser scenarios run one at a time (one Chromium is heavy on a small machine) and on SQLite
//! only: the API's behaviour on PostgreSQL is covered by the other suites.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::testing::TestDb;
use minihost_tests::{Client, TestNode};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";
/// A file of Debian's `fonts-noto-cjk` (without it, Chinese text renders as boxes in screenshots).
const CJK_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

/// One browser scenario at a time.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web-e2e")
}

/// Where screenshots go: `<target>/web-e2e/<scenario>/`.
fn out_dir(scenario: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("web-e2e").join(scenario)
}

/// Installs Chromium (Debian's package) and playwright-core, once per run.
fn prepare() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        // Debian packages: the browser, and CJK fonts for the Chinese screens' screenshots.
        let missing: Vec<&str> = [(CHROMIUM, "chromium"), (CJK_FONT, "fonts-noto-cjk")]
            .into_iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(_, package)| package)
            .collect();
        assert!(
            root || !missing.contains(&"chromium"),
            "the browser tests need Debian's chromium: run `apt-get install -y chromium` as root"
        );
        if root && !missing.is_empty() {
            let install = || {
                Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends"])
                    .args(&missing)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !install() {
                let updated = Command::new("apt-get").arg("update").status();
                assert!(updated.is_ok_and(|s| s.success()), "apt-get update failed");
                assert!(install(), "apt-get install {missing:?} failed");
            }
        }
        let installed = e2e_dir().join("node_modules/playwright-core/package.json");
        let lock = std::fs::read_to_string(e2e_dir().join("package-lock.json")).unwrap();
        let current = std::fs::read_to_string(&installed).is_ok_and(|p| {
            let v: serde_json::Value = serde_json::from_str(&p).unwrap_or_default();
            v["version"]
                .as_str()
                .is_some_and(|v| lock.contains(&format!("\"version\": \"{v}\"")))
        });
        if !current {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(e2e_dir())
                .status()
                .expect("npm must be installed (Node 20)");
            assert!(status.success(), "npm ci failed in tests/web-e2e");
        }
    });
}

/// How long one browser scenario may run before it is killed (each takes 1-3 minutes here).
const SCENARIO_BOUND: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs `tests/web-e2e/<script>` against `node` with `env`; fails with its output unless it
/// passes.
async fn scenario(node: &TestNode, script: &str, env: &[(&str, String)]) {
    prepare();
    let name = script.trim_end_matches(".mjs");
    let out = out_dir(name);
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script)
        .current_dir(e2e_dir())
        .env("MINIHOST_URL", node.node.url())
        .env("MINIHOST_WEB_OUT", &out)
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A scenario waits at most its steps' timeouts, but a page that never settles could keep
    // it polling: past this bound it is killed and fails by name instead of holding up CI.
    let output = tokio::time::timeout(SCENARIO_BOUND, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCENARIO_BOUND:?}"))
        .expect("node must be installed (Node 20)");
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn start() -> TestNode {
    TestNode::start(TestDb::sqlite().unwrap()).await
}

fn manifest(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// An app submitted by developer `dev`, approved and released by reviewer `rita`.
async fn released(node: &TestNode, dev: &Client, app: &str, manifest_path: &str, wasm: &str) {
    let text = std::fs::read_to_string(manifest(manifest_path)).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let r = dev
        .submit(app, &text, &minihost_guest_artifacts::read(wasm).unwrap())
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    let rita = node.reviewer("rita").await;
    rita.approve_and_release(app, &version).await;
}

/// Two people chat live in two browsers (one phone-sized), and the same account on a second
/// browser sees the same messages; unread counts show in the list.
#[tokio::test]
async fn two_people_chat_live() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    scenario(&node, "chat.mjs", &[]).await;
    node.finish().await;
}

/// A network drop while messages are sent: after reconnecting, every message is there, once,
/// in order.
#[tokio::test]
async fn a_network_drop_loses_and_duplicates_nothing() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    scenario(&node, "reconnect.mjs", &[]).await;
    node.finish().await;
}

/// A send whose answer is lost on the way back: the client sends it again with the same
/// idempotency key, and the message is stored and shown once.
#[tokio::test]
async fn a_send_whose_answer_is_lost_is_stored_once() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    scenario(&node, "resend.mjs", &[]).await;
    node.finish().await;
}

/// A mini-app command in a group: command suggestions, the consent sheet, a card whose button
/// updates it in place.
#[tokio::test]
async fn a_mini_app_asks_consent_and_its_card_updates_in_place() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    let dev = node.developer("pollster").await;
    released(
        &node,
        &dev,
        "polls",
        "plugins/polls/miniapp.toml",
        minihost_guest_artifacts::POLLS,
    )
    .await;
    let alice = node.user("alice").await;
    node.user("bob").await;
    let group = alice.group("Lunch club", &["bob"]).await;
    let r = alice
        .put(
            &format!("/api/v1/conversations/{group}/apps/polls"),
            &json!({}),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    scenario(&node, "miniapp.mjs", &[]).await;
    node.finish().await;
}

/// Payments through the PIN sheet, in English and then with the UI switched to Chinese.
#[tokio::test]
async fn a_payment_is_confirmed_with_the_pin_in_english_and_in_chinese() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    let tea = node.developer("tea").await;
    released(
        &node,
        &tea,
        "shop",
        "examples/shop/miniapp.toml",
        minihost_guest_artifacts::SHOP,
    )
    .await;
    let alice = node.user("alice").await;
    let group = tea.group("Tea lovers", &["alice"]).await;
    let r = tea
        .put(
            &format!("/api/v1/conversations/{group}/apps/shop"),
            &json!({}),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    let id = alice.get("/api/v1/me").await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    node.node
        .store
        .top_up(
            &minihost_core::UserId::from_string(id),
            10_000,
            "EUR",
            "test",
        )
        .await
        .unwrap();
    let r = alice
        .put(
            "/api/v1/me/payment-pin",
            &json!({"pin": "246810", "password": "password-alice"}),
        )
        .await;
    assert_eq!(r.0, 204, "{r:?}");
    scenario(&node, "payment.mjs", &[]).await;
    node.finish().await;
}

/// A developer registers an app and uploads versions in the console; a reviewer claims,
/// approves and releases one, then sees the next one's new scope in the manifest diff.
#[tokio::test]
async fn a_developer_uploads_and_a_reviewer_approves_and_releases() {
    let _one = BROWSER.lock().await;
    let node = start().await;
    node.developer("pollster").await;
    let rita = node.reviewer("rita").await;
    scenario(
        &node,
        "consoles.mjs",
        &[
            ("POLLS_MANIFEST", manifest("plugins/polls/miniapp.toml")),
            ("POLLS_WASM", minihost_guest_artifacts::POLLS.to_owned()),
        ],
    )
    .await;
    // What the reviewer released is what users get.
    let r = rita.get("/api/v1/directory/polls").await;
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(r.1["version"], "1.0.0", "{r:?}");
    node.finish().await;
}

/// The client is served from the binary with its security headers, and the WebSocket ticket
/// opens one socket once.
#[tokio::test]
async fn the_client_is_served_with_a_strict_policy_and_tickets_open_one_socket() {
    let node = start().await;
    let anon = node.client();
    let r = anon
        .http
        .get(format!("{}/", anon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(r.text().await.unwrap().contains("/assets/js/main.js"));
    let again = anon
        .http
        .get(format!("{}/", anon.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let js = anon
        .http
        .get(format!("{}/assets/js/main.js", anon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = anon.get("/assets/js/nope.js").await;
    assert_eq!(missing.0, 404, "{missing:?}");
    assert_eq!(missing.1["error"]["code"], "not_found");

    let alice = node.user("alice").await;
    // The language chosen in the client is kept for mini-apps (context and profiles).
    let r = alice
        .put("/api/v1/me/locale", &json!({"locale": "zh-CN"}))
        .await;
    assert_eq!(r.0, 200, "{r:?}");
    let id =
        minihost_core::UserId::from_string(alice.get("/api/v1/me").await.1["id"].as_str().unwrap());
    let stored = node.node.store.user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(stored.locale.as_deref(), Some("zh-CN"));
    let r = alice
        .put("/api/v1/me/locale", &json!({"locale": "zh_CN; drop"}))
        .await;
    assert_eq!(r.0, 422, "{r:?}");
    assert_eq!(r.1["error"]["field"], "locale", "{r:?}");

    let r = anon.post("/api/v1/ws/tickets", &json!({})).await;
    assert_eq!(r.0, 401, "{r:?}");
    let r = alice.post("/api/v1/ws/tickets", &json!({})).await;
    assert_eq!(r.0, 201, "{r:?}");
    let ticket = r.1["ticket"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/ws?ticket={ticket}",
        alice.base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    use futures_util::StreamExt;
    let ready = ws.next().await.unwrap().unwrap();
    assert!(ready.to_text().unwrap().contains("\"ready\""), "{ready:?}");
    // Used once: a second socket with the same ticket is refused.
    let again = tokio_tungstenite::connect_async(&url).await;
    match again {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a used ticket opened a socket: {other:?}"),
    }
    node.finish().await;
}
