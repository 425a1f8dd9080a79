//! Runs the senders of one load phase and merges what they measured into a [`Sends`] report,
//! with the CPU each side used during the measured window.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::hist::Histogram;
use crate::report::{Latency, Sends};
use crate::send::{self, Accepted, Shared, Slot};
use crate::sys::{Cores, CpuSample};

/// The outcome of a load phase: the report and the accepted seqs per conversation.
pub struct Outcome {
    pub sends: Sends,
    pub per_conv: Vec<Accepted>,
}

/// Runs one sender per element of `slots` (each a list of users to post as).
pub async fn drive(
    target: String,
    shared: Arc<Shared>,
    slots: Vec<Vec<Slot>>,
    conversations: usize,
    server_pids: Vec<u32>,
) -> Result<Outcome> {
    let senders = slots.len();
    // Sample CPU at the start of the measured window, from a separate task.
    let clock = shared.clock;
    let from_us = shared.measure_from_us;
    let pids = server_pids.clone();
    let first_sample = tokio::spawn(async move {
        tokio::time::sleep_until(clock.at(from_us).into()).await;
        CpuSample::take_all(&pids)
    });
    let tasks: Vec<_> = slots
        .into_iter()
        .enumerate()
        .map(|(i, mine)| tokio::spawn(send::run(i, mine, shared.clone(), conversations)))
        .collect();
    let mut all = Vec::with_capacity(tasks.len());
    for t in tasks {
        all.push(t.await.context("a sender panicked")?);
    }
    let last_sample = CpuSample::take_all(&server_pids);
    let cpu = match tokio::time::timeout(Duration::from_secs(1), first_sample).await {
        Ok(Ok(first)) => first.cores_until(&last_sample),
        _ => Cores::default(),
    };

    let mut round_trip = Histogram::default();
    let mut per_conv = vec![Accepted::default(); conversations];
    let mut errors: Vec<(String, u64)> = Vec::new();
    let (mut attempted, mut accepted, mut measured, mut last_us) = (0, 0, 0, 0);
    let mut error_sample = None;
    for s in &all {
        attempted += s.attempted;
        accepted += s.accepted;
        measured += s.measured;
        last_us = last_us.max(s.last_measured_us);
        round_trip.merge(&s.round_trip);
        for (a, b) in per_conv.iter_mut().zip(&s.per_conv) {
            a.merge(b);
        }
        for (what, n) in &s.errors {
            match errors.iter_mut().find(|(k, _)| k == what) {
                Some((_, m)) => *m += n,
                None => errors.push((what.clone(), *n)),
            }
        }
        if error_sample.is_none() {
            error_sample.clone_from(&s.error_sample);
        }
    }
    let window_s = last_us.saturating_sub(shared.measure_from_us) as f64 / 1e6;
    let sends = Sends {
        target,
        senders,
        window_s,
        attempted,
        accepted,
        measured,
        accepted_per_s: if window_s > 0.0 {
            measured as f64 / window_s
        } else {
            0.0
        },
        round_trip: Latency::from(&round_trip),
        errors,
        error_sample,
        server_cpu_cores: cpu.server,
        bench_cpu_cores: cpu.bench,
        postgres_cpu_cores: cpu.postgres,
        machine_cpu_cores: cpu.machine,
    };
    Ok(Outcome { sends, per_conv })
}
