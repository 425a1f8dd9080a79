//! The `log` capability (`minihost:app/log`): the guest's log lines go into the invocation
//! report, bounded in count, per-line size and total size; extra lines are dropped and counted,
//! never an error. It needs no scope. This crate is the model for capability crates: one WIT
//! interface, its host implementation on a view over [`CapabilityCx`], its limits, its tests.

use minihost_runtime::bindings::log::{self, Level};
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{Capability, CapabilityCx, Interface, InvocationData, StoreState};

/// Bounds on what one invocation may log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most lines kept.
    pub max_lines: usize,
    /// Longest line kept, in bytes; longer lines are cut (at a character boundary) and marked
    /// with `…`.
    pub max_line_bytes: usize,
    /// Most bytes kept over all lines.
    pub max_total_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_lines: 100,
            max_line_bytes: 1024,
            max_total_bytes: 16 << 10,
        }
    }
}

/// The log capability. Wire it with `RuntimeBuilder::new(config).with(LogCapability::default())`.
#[derive(Debug, Clone, Default)]
pub struct LogCapability {
    limits: LogLimits,
}

impl LogCapability {
    /// A log capability with these bounds.
    pub fn new(limits: LogLimits) -> LogCapability {
        LogCapability { limits }
    }

    /// Appends one line to the invocation's report, or counts it as dropped.
    fn append(&self, data: &mut InvocationData, level: Level, message: String) {
        let message = truncate(message, self.limits.max_line_bytes);
        let total: usize = data.logs().iter().map(|l| l.message.len()).sum();
        if data.logs().len() >= self.limits.max_lines
            || total + message.len() > self.limits.max_total_bytes
        {
            data.count_dropped_log();
            return;
        }
        data.push_log(level, message);
    }
}

/// Cuts `message` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn truncate(mut message: String, max: usize) -> String {
    const MARK: &str = "…";
    if message.len() <= max {
        return message;
    }
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(MARK);
    message
}

/// The host side of `minihost:app/log` for one call.
pub struct LogHost<'a>(CapabilityCx<'a, LogCapability>);

struct LogData;

impl HasData for LogData {
    type Data<'a> = LogHost<'a>;
}

impl Capability for LogCapability {
    const INTERFACE: Interface = Interface::Log;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        log::add_to_linker::<_, LogData>(linker, |state| LogHost(state.capability::<Self>()))
    }
}

impl log::Host for LogHost<'_> {
    async fn write(
        &mut self,
        level: Level,
        message: String,
    ) -> minihost_runtime::wasmtime::Result<()> {
        let bytes = message.len();
        let result = self
            .0
            .call("write", None, bytes, async |cap, data| {
                cap.append(data, level, message);
                Ok(())
            })
            .await?;
        if result.is_err() {
            // Over the per-call byte limit: the line is dropped like any other excess line.
            self.0.data().count_dropped_log();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_at_char_boundaries() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(truncate("abcdefghij".into(), 6), "abc…");
        // "é" is two bytes: a cut inside it moves back to the boundary.
        assert_eq!(truncate("éééé".into(), 6), "é…");
        assert!(truncate("x".repeat(5000), 1024).len() <= 1024);
    }
}
