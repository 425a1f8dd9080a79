//! The log capability against a real guest: lines land in the report, excess lines are dropped
//! and counted, and the guest never sees an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use minihost_cap_log::{LogCapability, LogLimits};
use minihost_runtime::{
    CallOutcome, Event, Interface, Invocation, RuntimeBuilder, RuntimeConfig, bindings::log::Level,
};

fn runtime(limits: LogLimits) -> minihost_runtime::Runtime {
    let config = RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    RuntimeBuilder::new(config)
        .with(LogCapability::new(limits))
        .build()
        .unwrap()
}

async fn log_lines(limits: LogLimits, n: u32) -> minihost_runtime::InvocationReport {
    let rt = runtime(limits);
    let wasm = std::fs::read(minihost_guest_artifacts::FAULTS).unwrap();
    let app = rt.load(&wasm).unwrap();
    rt.invoke(
        &app,
        Invocation::new("faults", "u", "c"),
        Event::command("log", n.to_string()),
    )
    .await
}

#[tokio::test]
async fn lines_land_in_the_report() {
    let report = log_lines(LogLimits::default(), 3).await;
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    let lines: Vec<_> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines, ["line 0", "line 1", "line 2"]);
    assert!(report.logs.iter().all(|l| l.level == Level::Info));
    assert_eq!(report.logs_dropped, 0);
    let writes = report
        .calls
        .iter()
        .filter(|c| c.interface == Interface::Log && c.function == "write")
        .count();
    assert_eq!(writes, 3);
    assert!(report.calls.iter().all(|c| c.outcome == CallOutcome::Ok));
}

#[tokio::test]
async fn excess_lines_are_dropped_and_counted() {
    let limits = LogLimits {
        max_lines: 2,
        ..LogLimits::default()
    };
    let report = log_lines(limits, 5).await;
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    assert_eq!(report.logs.len(), 2);
    assert_eq!(report.logs_dropped, 3);
}

#[tokio::test]
async fn total_bytes_are_bounded() {
    let limits = LogLimits {
        max_total_bytes: 13,
        ..LogLimits::default()
    };
    // "line 0" and "line 1" are 6 bytes each: the third would pass 13.
    let report = log_lines(limits, 4).await;
    assert_eq!(report.logs.len(), 2);
    assert_eq!(report.logs_dropped, 2);
}
