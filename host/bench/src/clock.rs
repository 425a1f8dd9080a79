//! The one time base of a run: microseconds since the run started, shared by senders (who
//! write it into message text) and readers (who subtract it on delivery).

use std::time::Instant;

#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn now_us(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the start.
    pub fn at(&self, us: u64) -> Instant {
        self.0 + std::time::Duration::from_micros(us)
    }
}
