//! The app's invocation log as it grows, for the terminal: [`LogTail`] reads the newest page of
//! `GET /api/v1/apps/{app}/invocations` on each poll and keeps the ids it has shown (the
//! cursor), so each entry is printed once, oldest first, with its outcome, duration, fuel,
//! capability calls and log lines ([`render`]). Entries already in the log when the session
//! began are not shown.

use std::collections::{HashSet, VecDeque};

use serde_json::Value;

/// Entries read per poll: more than a developer's chat makes between two polls.
pub(super) const PAGE: u32 = 100;

/// Ids remembered (several pages, so an entry committed late is still known).
const REMEMBERED: usize = 10 * PAGE as usize;

/// What of the log has been shown.
#[derive(Default)]
pub(super) struct LogTail {
    primed: bool,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl LogTail {
    /// Takes one poll's page (newest first; `None` while the app does not exist) and returns
    /// the entries not seen before, oldest first. The first page only marks what exists.
    pub fn take(&mut self, page: Option<Vec<Value>>) -> Vec<Value> {
        let page = page.unwrap_or_default();
        let mut fresh: Vec<Value> = page
            .into_iter()
            .filter(|e| e["id"].as_str().is_some_and(|id| self.remember(id)))
            .collect();
        if !self.primed {
            self.primed = true;
            return Vec::new();
        }
        fresh.sort_by_key(|e| e["created_at_ms"].as_i64().unwrap_or(0));
        fresh
    }

    /// Remembers `id`; whether it was new.
    fn remember(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// Milliseconds from microseconds, with two decimals.
fn ms(us: i64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock(unix_ms: i64) -> String {
    let s = unix_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One log entry as terminal lines: a head line (time, version, event, outcome, duration,
/// fuel), then one indented line per capability call and per log line.
pub(super) fn render(entry: &Value) -> String {
    let text = |k: &str| entry[k].as_str().unwrap_or("?");
    let int = |k: &str| entry[k].as_i64().unwrap_or(0);
    let outcome = match (text("outcome"), entry["error_kind"].as_str()) {
        ("ok", _) => "ok".to_owned(),
        (_, Some(kind)) => format!("error {kind}"),
        (other, None) => other.to_owned(),
    };
    let mut out = format!(
        "[{}] {}@{} {}: {outcome} in {} (queued {}), fuel {}",
        clock(int("created_at_ms")),
        text("app_id"),
        text("version"),
        text("event_kind"),
        ms(int("duration_us")),
        ms(int("queued_us")),
        int("fuel"),
    );
    if let Some(message) = entry["error_message"].as_str() {
        out.push_str(&format!("\n    error: {}", indent(message)));
    }
    for call in entry["calls"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n    call {}.{}: {} in {}",
            call["interface"].as_str().unwrap_or("?"),
            call["function"].as_str().unwrap_or("?"),
            call["outcome"].as_str().unwrap_or("?"),
            ms(call["duration_us"].as_i64().unwrap_or(0)),
        ));
    }
    for line in entry["logs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n    {} {}",
            line["level"].as_str().unwrap_or("log"),
            indent(line["message"].as_str().unwrap_or("").trim_end()),
        ));
    }
    out
}

/// Continuation lines of a message indented under it.
fn indent(text: &str) -> String {
    text.replace('\n', "\n      ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, at: i64) -> Value {
        json!({"id": id, "created_at_ms": at})
    }

    #[test]
    fn each_entry_is_shown_once_oldest_first_and_the_old_ones_never() {
        let mut tail = LogTail::default();
        assert!(tail.take(Some(vec![entry("old", 1)])).is_empty());
        let fresh = tail.take(Some(vec![entry("b", 3), entry("a", 2), entry("old", 1)]));
        let ids: Vec<_> = fresh.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids, vec![json!("a"), json!("b")]);
        assert!(
            tail.take(Some(vec![entry("b", 3), entry("a", 2)]))
                .is_empty()
        );
        // Committed late, with an earlier time: still shown.
        let late = tail.take(Some(vec![entry("b", 3), entry("late", 2)]));
        assert_eq!(late.len(), 1);
        // A log that did not exist at first: everything after is new.
        let mut tail = LogTail::default();
        assert!(tail.take(None).is_empty());
        assert_eq!(tail.take(Some(vec![entry("first", 1)])).len(), 1);
    }

    #[test]
    fn an_entry_shows_its_outcome_duration_fuel_calls_and_logs() {
        let ok = json!({
            "id": "inv_1", "app_id": "demo", "version": "0.1.0-dev.2", "event_kind": "command",
            "outcome": "ok", "error_kind": null, "error_message": null, "duration_us": 1840,
            "queued_us": 50, "fuel": 120345, "created_at_ms": 1_764_554_767_000_i64,
            "calls": [{"interface": "messaging", "function": "send", "outcome": "ok", "duration_us": 210}],
            "logs": [{"level": "info", "message": "/demo from u_1\nsecond line"}],
        });
        assert_eq!(
            render(&ok),
            "[02:06:07] demo@0.1.0-dev.2 command: ok in 1.84 ms (queued 0.05 ms), fuel 120345\n    \
             call messaging.send: ok in 0.21 ms\n    info /demo from u_1\n      second line"
        );
        let failed = json!({
            "app_id": "demo", "version": "0.1.0-dev.3", "event_kind": "action",
            "outcome": "error", "error_kind": "trap", "error_message": "unreachable",
            "duration_us": 10, "queued_us": 0, "fuel": 7, "created_at_ms": 0,
            "calls": [], "logs": [],
        });
        assert_eq!(
            render(&failed),
            "[00:00:00] demo@0.1.0-dev.3 action: error trap in 0.01 ms (queued 0.00 ms), fuel 7\n    \
             error: unreachable"
        );
    }
}
