//! Fault containment: each misbehaviour of a guest ends in a typed error kind, and the same
//! runtime then serves the next event normally.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use minihost_runtime::{ErrorKind, Event, Invocation, Limits, LoadError};

/// Runs `/name args` and expects `kind`; then checks the runtime still answers `/ok`.
///
/// Faults whose subject is not time run with the longest deadline the runtime allows, so a
/// slow, loaded CI machine (growing memory to the cap takes page faults) cannot turn them into
/// a timeout.
async fn check(name: &str, args: &str, kind: ErrorKind) -> minihost_runtime::InvocationReport {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let mut invocation = invocation();
    if kind != ErrorKind::Timeout {
        invocation = invocation.limits(Limits {
            deadline: rt.config().max_deadline,
            ..Limits::default()
        });
    }
    let report = rt
        .invoke(&app, invocation, Event::command(name, args))
        .await;
    let err = report
        .outcome
        .as_ref()
        .expect_err(&format!("/{name} should fail"));
    assert_eq!(err.kind, kind, "/{name}: {}", err.message);
    let next = command(&rt, &app, "ok", "").await;
    assert_eq!(reply_text(&next), "fine", "after /{name}");
    report
}

#[tokio::test]
async fn infinite_loop_times_out() {
    let report = check("loop", "", ErrorKind::Timeout).await;
    // Stopped inside wasm by the epoch callback (whose fault is named), not by the outer
    // timeout that drops the call.
    let message = report.outcome.unwrap_err().message;
    assert!(message.contains("deadline"), "{message}");
}

#[tokio::test]
async fn sleeping_in_a_host_call_times_out() {
    check("sleep", "", ErrorKind::Timeout).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let report = check("bomb", "", ErrorKind::MemoryLimit).await;
    let message = &report.outcome.unwrap_err().message;
    assert!(message.contains("memory"), "{message}");
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    check("recurse", "", ErrorKind::StackOverflow).await;
}

#[tokio::test]
async fn panic_is_a_trap_and_its_message_is_captured() {
    let report = check("panic", "", ErrorKind::Trap).await;
    assert!(
        report.stderr.contains("the guest panicked on purpose"),
        "stderr: {:?}",
        report.stderr
    );
}

#[tokio::test]
async fn a_reply_over_the_copy_limit_is_stopped_before_the_host_allocates_it() {
    // 4 MiB of reply against the 1 MiB per-call copy limit: wasmtime's hostcall fuel runs out
    // while lifting, so the host never holds the reply.
    let report = check("huge", "4", ErrorKind::DataLimit).await;
    let message = &report.outcome.as_ref().unwrap_err().message;
    assert!(message.contains("1048576 bytes"), "{message}");
}

#[tokio::test]
async fn a_reply_under_the_copy_limit_but_over_the_reply_limit_is_rejected() {
    // The reply limit (64 KiB) is checked on what was lifted.
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let limits = Limits {
        max_call_bytes: 2 << 20,
        max_output_bytes: 512 << 10,
        ..Limits::default()
    };
    let report = rt
        .invoke(
            &app,
            Invocation::new("faults", "u_1", "c_1").limits(limits),
            Event::command("huge", "1"),
        )
        .await;
    assert_eq!(
        report.error_kind(),
        Some(&ErrorKind::OutputTooLarge),
        "{report:?}"
    );
}

#[tokio::test]
async fn capability_call_flood_is_stopped() {
    let report = check("flood", "", ErrorKind::TooManyCalls).await;
    let limit = Limits::default().max_calls as usize;
    // Every counted call is recorded, plus the one that was refused.
    assert_eq!(report.calls.len(), limit + 1);
}

#[tokio::test]
async fn fuel_budget_is_enforced() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let limits = Limits {
        fuel: 1_000_000,
        ..Limits::default()
    };
    let report = rt
        .invoke(
            &app,
            invocation().limits(limits),
            Event::command("loop", ""),
        )
        .await;
    assert_eq!(report.error_kind(), Some(&ErrorKind::FuelExhausted));
    assert_eq!(report.fuel_consumed, 1_000_000);
    let next = command(&rt, &app, "ok", "").await;
    assert_eq!(reply_text(&next), "fine");
    assert!(next.fuel_consumed > 0);
}

#[tokio::test]
async fn app_error_is_reported_as_such() {
    let report = check(
        "fail",
        "",
        ErrorKind::App(minihost_runtime::Error::Invalid(
            "failing on purpose".into(),
        )),
    )
    .await;
    assert!(
        report
            .outcome
            .unwrap_err()
            .message
            .contains("failing on purpose")
    );
}

#[tokio::test]
async fn unknown_import_fails_to_load_naming_it() {
    let rt = runtime();
    let err = rt
        .load(&wasm(minihost_guest_artifacts::UNKNOWN_IMPORT))
        .unwrap_err();
    match &err {
        LoadError::Link { import, message } => {
            assert!(message.contains("test:unknown/secret"), "{message}");
            assert_eq!(import.as_deref(), Some("test:unknown/secret"), "{message}");
        }
        other => panic!("expected a link error, got {other:?}"),
    }
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    assert_eq!(reply_text(&command(&rt, &app, "ok", "").await), "fine");
}

#[tokio::test]
async fn garbage_bytes_are_invalid() {
    let rt = runtime();
    let err = rt.load(b"\0asm not really").unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn too_large_component_is_refused_before_compiling() {
    let config = minihost_runtime::RuntimeConfig {
        max_component_bytes: 1000,
        ..config()
    };
    let rt = minihost_runtime::RuntimeBuilder::new(config)
        .build()
        .unwrap();
    let err = rt.load(&wasm(minihost_guest_artifacts::ECHO)).unwrap_err();
    assert!(
        matches!(err, LoadError::TooLarge { max: 1000, .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_looping_guest_does_not_block_others_on_the_same_thread() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let looping = rt.invoke(&app, invocation(), Event::command("loop", ""));
    let quick = rt.invoke(
        &app,
        Invocation::new("test-app", "u_2", "c_2"),
        Event::command("ok", ""),
    );
    let (looping, quick) = tokio::join!(looping, quick);
    assert_eq!(looping.error_kind(), Some(&ErrorKind::Timeout));
    assert_eq!(reply_text(&quick), "fine");
}

#[tokio::test]
async fn memory_cap_below_the_initial_memory_fails_instantiation() {
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::ECHO);
    let limits = Limits {
        memory_bytes: 0,
        ..Limits::default()
    };
    let report = rt
        .invoke(
            &app,
            invocation().limits(limits),
            Event::command("echo", "hi"),
        )
        .await;
    assert_eq!(report.error_kind(), Some(&ErrorKind::MemoryLimit));
    assert_eq!(reply_text(&command(&rt, &app, "echo", "hi").await), "hi");
}

#[tokio::test]
async fn copy_amplification_is_stopped_while_copying_for_every_way_out() {
    // A card whose 112 blocks all point at one 1 MiB guest string is 112 MiB once lifted: the
    // per-call copy limit (hostcall fuel) stops it before the host allocates it, whether it is
    // the reply, a send, a card update or a storage write.
    for args in [
        "reply 112 1024",
        "send 112 1024",
        "update 112 1024",
        "storage 1 2048",
    ] {
        let report = check("amplify", args, ErrorKind::DataLimit).await;
        assert!(
            report.calls.is_empty(),
            "{args}: no call reached the host: {report:?}"
        );
    }
    // Under the limit, the same shape is an ordinary call (here answered `unavailable`: the
    // test runtime wires no messaging capability).
    let rt = runtime();
    let app = load(&rt, minihost_guest_artifacts::FAULTS);
    let report = command(&rt, &app, "amplify", "send 4 16").await;
    assert!(
        reply_text(&report).starts_with("unavailable:"),
        "{report:?}"
    );
}
