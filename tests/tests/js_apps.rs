//! JavaScript apps end to end: a scaffolded JS app is built by its npm build (ComponentizeJS from
//! the template's lockfile) and answers in the simulator and on a real server; the JS faults
//! guest's faults end as a Rust app's do; a JS app's import the manifest does not cover, and a
//! WIT that is not the platform's, are refused with errors that name them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use minihost::simulate::NodeSimulator;
use minihost_devtools::js::Flavour;
use minihost_devtools::{SimRequest, SimResult, Simulator};
use minihost_runtime::Event;
use minihost_tests::TestNode;
use minihost_tests::testing::TestDb;
use serde_json::{Value, json};

/// Where compiled components are kept between runs (a JS app compiles in seconds, not
/// microseconds): shared by the simulator and the server nodes of these tests.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-cache")
}

fn simulator() -> NodeSimulator {
    NodeSimulator {
        cache_dir: Some(cache_dir()),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the JS app in `dir` as `minihost app build` does (npm ci when node_modules is missing,
/// then npm run build); one build at a time, as two tests may share a folder.
async fn build(dir: &Path) -> Vec<u8> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = ONE_AT_A_TIME.lock().await;
    let wasm = minihost_devtools::build_component(dir, true)
        .await
        .unwrap_or_else(|e| panic!("building {}: {e:#}", dir.display()));
    std::fs::read(wasm).unwrap()
}

async fn simulate(
    manifest: &str,
    component: &[u8],
    grants: &[&str],
    event: Event,
    press: Option<&str>,
) -> Result<SimResult, String> {
    simulator()
        .simulate(SimRequest {
            manifest: manifest.to_owned(),
            component: component.to_vec(),
            grants: grants.iter().map(|s| s.to_string()).collect(),
            event,
            then_press: press.map(|b| (b.to_owned(), Vec::new())),
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scaffolded_js_app_answers_in_the_simulator_and_on_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hello-js");
    minihost_devtools::scaffold_js(&dir, "hello-js", Flavour::JavaScript).unwrap();
    let wasm = build(&dir).await;
    let manifest = std::fs::read_to_string(dir.join("miniapp.toml")).unwrap();

    // The simulator: the command's card, then a press on its button.
    let result = simulate(
        &manifest,
        &wasm,
        &[],
        Event::command("hello-js", "Ada"),
        Some("wave"),
    )
    .await
    .unwrap();
    let card = json!({"type": "card", "blocks": [
        {"kind": "text", "text": "Hello, Ada!"},
        {"kind": "button", "id": "wave", "label": "Wave back", "value": "Ada"},
    ]});
    let messages: Vec<Value> = result
        .messages
        .iter()
        .map(|m| serde_json::to_value(&m.content).unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            card.clone(),
            json!({"type": "text", "text": "Ada waves back."})
        ]
    );
    assert!(matches!(&result.reports[1].outcome, Ok(Some(_))));
    let logs: Vec<_> = result.reports[0].logs.iter().map(|l| &l.message).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].starts_with("/hello-js from "), "{logs:?}");

    // A real server: the developer tries it in a group, the command answers with the card, the
    // button press with the text.
    let node = TestNode::start_with_cache(TestDb::sqlite().unwrap(), &cache_dir()).await;
    let dev = node.developer("dev").await;
    let lab = dev.group("lab", &[]).await;
    let r = dev.sideload(&lab, &manifest, &wasm).await;
    assert_eq!(r.0, 201, "{r:?}");
    dev.say(&lab, "/hello-js Ada").await;
    let reply = wait_for_app_message(&dev, &lab, 1).await;
    assert_eq!(reply["content"], card);
    let id = reply["id"].as_str().unwrap();
    let r = dev
        .post(
            &format!("/api/v1/conversations/{lab}/messages/{id}/actions"),
            &json!({"button": "wave"}),
        )
        .await;
    assert!(r.0 == 200 || r.0 == 202 || r.0 == 204, "{r:?}");
    let reply = wait_for_app_message(&dev, &lab, 2).await;
    assert_eq!(
        reply["content"],
        json!({"type": "text", "text": "Ada waves back."})
    );
    node.finish().await;

    // Bad input at build time, named: an import of another version of the platform, and a
    // WIT that is not the platform's.
    let app_js = std::fs::read_to_string(dir.join("src/app.js")).unwrap();
    std::fs::write(
        dir.join("src/app.js"),
        app_js.replace("minihost:app/log@0.2.0", "minihost:app/log@0.1.0"),
    )
    .unwrap();
    let e = minihost_devtools::build_component(&dir, true)
        .await
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("src/app.js imports 'minihost:app/log@0.1.0'")
            && text.contains("(minihost:app@0.2.0) does not have"),
        "{text}"
    );
    std::fs::write(dir.join("src/app.js"), app_js).unwrap();
    let wit = std::fs::read_to_string(dir.join("wit/miniapp.wit")).unwrap();
    std::fs::write(
        dir.join("wit/miniapp.wit"),
        wit.replace("minihost:app@0.2.0", "minihost:app@0.1.0"),
    )
    .unwrap();
    let e = minihost_devtools::build_component(&dir, true)
        .await
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("declares package minihost:app@0.1.0")
            && text.contains("speaks minihost:app@0.2.0"),
        "{text}"
    );
}

/// Waits until `conversation` holds `n` messages from apps; returns the newest.
async fn wait_for_app_message(
    client: &minihost_tests::Client,
    conversation: &str,
    n: usize,
) -> Value {
    for _ in 0..600 {
        let page = client
            .get(&format!("/api/v1/conversations/{conversation}/messages"))
            .await
            .1;
        let from_apps: Vec<Value> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender"]["type"] == "app")
            .cloned()
            .collect();
        if from_apps.len() >= n {
            return from_apps[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = client.get("/api/v1/apps/hello-js/invocations").await;
    panic!("no app message {n} in {conversation}; invocations: {log:?}");
}

const FAULTS: &str = "host/runtime/test-guests/faults-js";

#[tokio::test(flavor = "multi_thread")]
async fn a_js_apps_faults_end_as_a_rust_apps_do() {
    let dir = root().join(FAULTS);
    let wasm = build(&dir).await;
    let manifest = std::fs::read_to_string(dir.join("miniapp.toml")).unwrap();
    let grants = ["messages.send", "storage"];
    // (command, the outcome: `ok` or the error kind)
    let cases = [
        ("ok", "ok"),
        ("throw", "trap"),
        ("fail", "app_error"),
        ("loop", "timeout"),
        ("bomb", "memory_limit"),
        ("recurse", "trap"),
        ("remember", "ok"),
        ("send", "ok"),
    ];
    let mut seen = Vec::new();
    for (command, _) in cases {
        let result = simulate(
            &manifest,
            &wasm,
            &grants,
            Event::command(command, "x"),
            None,
        )
        .await
        .unwrap_or_else(|refusal| panic!("/{command}: refused: {refusal}"));
        let outcome = match &result.reports[0].outcome {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.kind.as_str().to_owned(),
        };
        seen.push((command, outcome));
    }
    let expected: Vec<(&str, String)> = cases.iter().map(|(c, o)| (*c, o.to_string())).collect();
    assert_eq!(seen, expected);

    // The same component with a manifest that does not declare `storage`: the upload check
    // refuses it, naming the import, as it refuses a Rust app's.
    let undeclared = manifest.replace(
        "[[scopes]]\nname = \"storage\"\nreason = \"To remember things.\"\n",
        "",
    );
    assert_ne!(undeclared, manifest);
    let refusal = simulate(&undeclared, &wasm, &[], Event::command("ok", ""), None)
        .await
        .unwrap_err();
    assert!(refusal.contains("minihost:app/storage@0.2.0"), "{refusal}");
    let checked = simulator().check(undeclared, wasm.clone()).await.unwrap();
    assert!(
        checked.unwrap_err().contains("minihost:app/storage@0.2.0"),
        "the upload check names the import"
    );
    // And no WASI at all: ComponentizeJS's features are off, so the component imports only
    // the platform's interfaces it uses.
    let imports = minihost_runtime::inspect(&wasm).unwrap().imports;
    assert_eq!(
        imports,
        vec![
            "minihost:app/types@0.2.0",
            "minihost:app/messaging@0.2.0",
            "minihost:app/storage@0.2.0"
        ]
    );
}

/// The examples' copies of the build script and lockfile are the ones `minihost app new` writes.
#[test]
fn the_js_examples_build_as_scaffolds_do() {
    for (dir, name) in [
        ("examples/echo-js", "minihost-example-echo-js"),
        (FAULTS, "minihost-test-faults-js"),
    ] {
        let dir = root().join(dir);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(
            read("build.mjs"),
            minihost_devtools::js::BUILD_MJS,
            "{dir:?}"
        );
        assert_eq!(read("wit/miniapp.wit"), minihost_devtools::carried::WIT);
        let tmp = tempfile::tempdir().unwrap();
        minihost_devtools::scaffold_js(tmp.path(), name, Flavour::JavaScript).unwrap();
        let scaffold = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(
            read("package-lock.json"),
            scaffold("package-lock.json"),
            "{dir:?}"
        );
        assert_eq!(read("package.json"), scaffold("package.json"), "{dir:?}");
    }
}
