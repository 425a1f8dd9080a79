//! The end-of-run check of what every client received against what the server accepted:
//! each client must have seen its conversation's seqs from the lowest to the highest accepted,
//! each exactly once and in order (the readers check the order as they go).

use std::time::Duration;

use crate::hist::Histogram;
use crate::report::{Deliveries, Latency, Replies};
use crate::send::Accepted;
use crate::ws::ReaderStats;

/// How many violations and problems the report lists.
const LISTED: usize = 10;

/// One reader's result and whom it belonged to.
pub struct Finished {
    pub user: String,
    /// Conversation index and id.
    pub conv: usize,
    pub conversation: String,
    pub stats: ReaderStats,
}

/// Merges the readers' figures and checks each against the accepted seqs of its conversation.
pub fn summarize(
    finished: Vec<Finished>,
    per_conv: &[Accepted],
    conversations: usize,
    measure_from_us: u64,
    drain: Duration,
    commands_accepted: Option<u64>,
) -> Deliveries {
    let clients = finished.len();
    let mut latency = Histogram::default();
    let mut reply_latency = Histogram::default();
    let (mut replies, mut replies_measured, mut last_reply_us) = (0, 0, 0);
    let (mut app_errors, mut app_busy) = (0, 0);
    let (mut delivered, mut measured, mut last_us, mut violations) = (0, 0, 0, 0);
    let (mut expected, mut other_frames) = (0, 0);
    let mut other_sample = None;
    let mut samples = Vec::new();
    let mut problems = Vec::new();
    for f in finished {
        let s = f.stats;
        let accepted = per_conv.get(f.conv).copied().unwrap_or_default();
        expected += accepted.count;
        delivered += s.delivered;
        measured += s.measured;
        last_us = last_us.max(s.last_measured_us);
        latency.merge(&s.latency);
        reply_latency.merge(&s.reply_latency);
        replies += s.replies;
        app_errors += s.app_errors;
        app_busy += s.app_busy;
        replies_measured += s.replies_measured;
        last_reply_us = last_reply_us.max(s.last_reply_us);
        violations += s.violations;
        samples.extend(s.violation_samples);
        other_frames += s.other_frames;
        if other_sample.is_none() {
            other_sample = s.other_sample;
        }
        if let Some(why) = s.ended {
            problems.push(format!("{}: {why}", f.user));
        }
        if accepted.count == 0 {
            continue;
        }
        let (user, conv) = (&f.user, &f.conversation);
        match s.seen.iter().find(|x| x.conversation == f.conversation) {
            None => {
                violations += 1;
                samples.push(format!(
                    "{user}: saw nothing of conversation {conv} ({} accepted)",
                    accepted.count
                ));
            }
            Some(seen) if seen.first > accepted.min_seq || seen.last < accepted.max_seq => {
                violations += 1;
                samples.push(format!(
                    "{user}: conversation {conv}: saw seq {}..={}, accepted {}..={}",
                    seen.first, seen.last, accepted.min_seq, accepted.max_seq
                ));
            }
            Some(_) => {}
        }
    }
    samples.truncate(LISTED);
    problems.truncate(LISTED);
    let window_s = last_us.saturating_sub(measure_from_us) as f64 / 1e6;
    let replies = commands_accepted.map(|expected| {
        let window_s = last_reply_us.saturating_sub(measure_from_us) as f64 / 1e6;
        Replies {
            expected,
            received: replies,
            app_errors,
            busy: app_busy,
            measured: replies_measured,
            window_s,
            per_s: per_second(replies_measured, window_s),
            latency: Latency::from(&reply_latency),
        }
    });
    Deliveries {
        clients,
        conversations,
        delivered,
        expected,
        measured,
        window_s,
        delivered_per_s: per_second(measured, window_s),
        latency: Latency::from(&latency),
        drain_s: drain.as_secs_f64(),
        violations,
        violation_samples: samples,
        problems,
        other_frames,
        other_sample,
        replies,
    }
}

fn per_second(n: u64, window_s: f64) -> f64 {
    if window_s > 0.0 {
        n as f64 / window_s
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Seen;

    fn finished(user: &str, first: u64, last: u64) -> Finished {
        let seen = vec![Seen {
            conversation: "c".into(),
            first,
            last,
            count: last - first + 1,
        }];
        let stats = ReaderStats {
            delivered: last - first + 1,
            seen,
            ..Default::default()
        };
        Finished {
            user: user.into(),
            conv: 0,
            conversation: "c".into(),
            stats,
        }
    }

    fn accepted(seqs: std::ops::RangeInclusive<u64>) -> Vec<Accepted> {
        let mut a = Accepted::default();
        for s in seqs {
            a.add(s);
        }
        vec![a]
    }

    #[test]
    fn complete_clients_pass() {
        let d = summarize(
            vec![finished("a", 1, 10), finished("b", 1, 10)],
            &accepted(1..=10),
            1,
            0,
            Duration::ZERO,
            None,
        );
        assert_eq!(d.violations, 0);
        assert_eq!((d.delivered, d.expected), (20, 20));
    }

    #[test]
    fn a_missed_tail_or_head_is_a_violation() {
        let d = summarize(
            vec![finished("a", 1, 9), finished("b", 2, 10)],
            &accepted(1..=10),
            1,
            0,
            Duration::ZERO,
            None,
        );
        assert_eq!(d.violations, 2);
        assert!(d.violation_samples[0].contains("saw seq 1..=9, accepted 1..=10"));
    }

    #[test]
    fn a_client_that_saw_nothing_is_a_violation() {
        let mut f = finished("a", 1, 1);
        f.stats.seen.clear();
        let d = summarize(vec![f], &accepted(1..=3), 1, 0, Duration::ZERO, None);
        assert_eq!(d.violations, 1);
        assert!(d.violation_samples[0].contains("saw nothing"));
    }

    #[test]
    fn replies_are_summed_over_the_senders() {
        let mut a = finished("a", 1, 4);
        a.stats.replies = 2;
        a.stats.replies_measured = 2;
        a.stats.last_reply_us = 2_000_000;
        let mut b = finished("b", 1, 4);
        b.stats.replies = 1;
        b.stats.replies_measured = 0;
        let d = summarize(vec![a, b], &accepted(1..=4), 1, 0, Duration::ZERO, Some(4));
        let r = d.replies.unwrap();
        assert_eq!((r.expected, r.received, r.measured), (4, 3, 2));
        assert!((r.per_s - 1.0).abs() < 1e-9);
    }

    /// A command phase whose senders got `replies` replies and `busy` + `failed` app errors
    /// for `accepted` commands.
    fn command_phase(
        commands: u64,
        replies: u64,
        busy: u64,
        failed: u64,
    ) -> crate::report::CommandsPhase {
        let mut a = finished("a", 1, 4);
        a.stats.replies = replies;
        a.stats.app_errors = busy + failed;
        a.stats.app_busy = busy;
        let d = summarize(
            vec![a],
            &accepted(1..=4),
            1,
            0,
            Duration::ZERO,
            Some(commands),
        );
        let sends = crate::report::Sends {
            target: "t".into(),
            senders: 1,
            window_s: 1.0,
            attempted: commands,
            accepted: commands,
            measured: commands,
            accepted_per_s: commands as f64,
            round_trip: Latency::from(&Histogram::default()),
            errors: Vec::new(),
            error_sample: None,
            server_cpu_cores: None,
            bench_cpu_cores: None,
            postgres_cpu_cores: 0.0,
            machine_cpu_cores: None,
        };
        crate::report::CommandsPhase::compare(sends, d, None, None)
    }

    #[test]
    fn a_busy_refusal_answers_a_command_and_any_other_app_error_fails_the_run() {
        let busy = command_phase(10, 7, 3, 0);
        assert_eq!(busy.deliveries.replies.as_ref().map(|r| r.busy), Some(3));
        assert!(busy.ok(), "replies and busy refusals answer every command");
        assert!(
            !command_phase(10, 7, 2, 1).ok(),
            "a failed invocation is not an answer"
        );
        assert!(
            !command_phase(10, 7, 2, 0).ok(),
            "a command nobody answered"
        );
    }
}
