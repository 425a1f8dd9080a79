//! Isolation and capabilities: fresh memory per event, typed denials, `unavailable` for
//! unwired interfaces, captured stdio, and the compiled-component disk cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use minihost_runtime::{
    CallOutcome, Content, Event, Interface, LoadOrigin, RuntimeBuilder, RuntimeConfig, Scopes,
};

#[tokio::test]
async fn echo_replies() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::ECHO);
    let report = command(&rt, &app, "echo", "hi").await;
    assert_eq!(report.outcome, Ok(Some(Content::Text("hi".into()))));
    assert_eq!(report.event, "command");
    assert!(report.calls.is_empty());
}

#[tokio::test]
async fn consecutive_events_see_fresh_memory() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let first = command(&rt, &app, "remember", "secret").await;
    assert_eq!(reply_text(&first), "before=None count=1");
    let second = command(&rt, &app, "remember", "other").await;
    assert_eq!(reply_text(&second), "before=None count=1");
}

#[tokio::test]
async fn ungranted_call_gets_a_typed_denial() {
    let messaging = FakeMessaging::default();
    let rt = RuntimeBuilder::new(config())
        .with(messaging.clone())
        .build()
        .unwrap();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);

    let denied = command(&rt, &app, "send", "").await;
    assert_eq!(reply_text(&denied), "permission-denied:messages.send");
    assert_eq!(denied.calls.len(), 1);
    assert_eq!(denied.calls[0].interface, Interface::Messaging);
    assert_eq!(denied.calls[0].function, "send");
    assert_eq!(
        denied.calls[0].outcome,
        CallOutcome::Denied("messages.send".into())
    );
    assert!(messaging.sent.lock().unwrap().is_empty());

    let granted = rt
        .invoke(
            &app,
            invocation().grant(Scopes::new(["messages.send"])),
            Event::command("send", ""),
        )
        .await;
    assert_eq!(reply_text(&granted), "ok:m1");
    assert_eq!(granted.calls[0].outcome, CallOutcome::Ok);
    let sent = messaging.sent.lock().unwrap();
    assert_eq!(
        sent.as_slice(),
        [("c_1".to_string(), Content::Text("hello".into()))]
    );
}

#[tokio::test]
async fn unwired_interface_answers_unavailable() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    for (name, interface) in [
        ("send", Interface::Messaging),
        ("profile", Interface::Profile),
    ] {
        let report = command(&rt, &app, name, "").await;
        let text = reply_text(&report);
        assert!(
            text.starts_with("unavailable:") && text.contains(interface.qualified_name()),
            "/{name}: {text}"
        );
        assert!(matches!(
            &report.calls[0].outcome,
            CallOutcome::Failed(minihost_runtime::Error::Unavailable(_))
        ));
    }
}

#[tokio::test]
async fn stdio_is_captured_not_inherited() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let report = command(&rt, &app, "print", "").await;
    assert_eq!(reply_text(&report), "printed");
    assert_eq!(report.stdout, "to stdout\n");
    assert_eq!(report.stderr, "to stderr\n");
    assert!(!report.stdio_truncated);
}

#[tokio::test]
async fn imports_are_listed_for_static_checks() {
    let rt = runtime();
    let faults = load(&rt, minihost_guest_artifacts::FAULTS);
    let interfaces = faults.interfaces();
    for i in [Interface::Messaging, Interface::Profile, Interface::Log] {
        assert!(interfaces.contains(&i), "{:?}", faults.imports());
    }
    assert!(
        !interfaces.contains(&Interface::Payments),
        "{:?}",
        faults.imports()
    );
    let echo = load(&rt, minihost_guest_artifacts::ECHO);
    assert!(echo.interfaces().is_empty(), "{:?}", echo.imports());
}

#[tokio::test]
async fn disk_cache_is_hit_and_a_corrupt_file_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cached = || {
        RuntimeBuilder::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..config()
        })
        .build()
        .unwrap()
    };
    let bytes = wasm(minihost_guest_artifacts::ECHO);

    let first = cached();
    assert!(first.cache_path(&bytes).unwrap().starts_with(dir.path()));
    let app = first.load(&bytes).unwrap();
    assert_eq!(app.origin(), LoadOrigin::Compiled);
    assert_eq!(first.load(&bytes).unwrap().origin(), LoadOrigin::Memory);
    let path = first.cache_path(&bytes).unwrap();
    assert!(path.is_file());

    let second = cached();
    let app = second.load(&bytes).unwrap();
    assert_eq!(app.origin(), LoadOrigin::DiskCache);
    let report = command(&second, &app, "echo", "from cache").await;
    assert_eq!(reply_text(&report), "from cache");

    // Flip one byte in the middle of the artefact.
    let mut file = std::fs::read(&path).unwrap();
    let middle = file.len() / 2;
    file[middle] ^= 0xff;
    std::fs::write(&path, &file).unwrap();
    let third = cached();
    let app = third.load(&bytes).unwrap();
    assert_eq!(app.origin(), LoadOrigin::Compiled);
    assert_eq!(reply_text(&command(&third, &app, "echo", "ok").await), "ok");

    // The recompiled artefact replaced the corrupt one.
    assert_eq!(
        cached().load(&bytes).unwrap().origin(),
        LoadOrigin::DiskCache
    );

    // A truncated file is a miss too.
    std::fs::write(&path, b"short").unwrap();
    assert_eq!(
        cached().load(&bytes).unwrap().origin(),
        LoadOrigin::Compiled
    );
}

#[tokio::test]
async fn events_of_every_kind_reach_the_handler() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::CARD);
    let opened = rt.invoke(&app, invocation(), Event::Opened).await;
    assert!(matches!(opened.outcome, Ok(Some(Content::Card(_)))));
    let press = Event::Action(minihost_runtime::bindings::Action {
        message: "m1".into(),
        id: "yes".into(),
        value: "yes".into(),
        inputs: vec![minihost_runtime::bindings::InputValue {
            id: "comment".into(),
            value: "great".into(),
        }],
    });
    let pressed = rt.invoke(&app, invocation(), press).await;
    assert_eq!(pressed.event, "action");
    assert_eq!(
        reply_text(&pressed),
        "You pressed yes. Glad you like it! You added: \"great\""
    );
}
