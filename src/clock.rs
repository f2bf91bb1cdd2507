//! Time as a value passed in: the handler reads the system clock, everything below it gets a
//! [`Clock`], so tests control "now" and every deadline.

use jiff::{SignedDuration, Timestamp};
use std::future::Future;
use std::time::Duration;

/// The source of "now", and of waiting, for everything below the handler.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Waits `d` (a fake clock just moves its time on).
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// The real clock; only the composition root constructs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// The moment a run must have flushed and committed by: the invocation's deadline less a safety
/// margin that scales with the time the run has (a fifth of it, between 2 and 30 seconds), so a
/// function given 20 seconds still fetches for 16 and one given 15 minutes keeps 30 seconds spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Stop starting new work at this instant.
    pub stop_at: Timestamp,
    /// The invocation's own deadline (the Lambda context's).
    pub hard: Timestamp,
}

impl Deadline {
    pub const MIN_MARGIN: Duration = Duration::from_secs(2);
    pub const MAX_MARGIN: Duration = Duration::from_secs(30);

    pub fn new(start: Timestamp, hard: Timestamp) -> Deadline {
        let budget = hard.duration_since(start).max(SignedDuration::ZERO);
        let min = SignedDuration::try_from(Self::MIN_MARGIN).unwrap_or_default();
        let max = SignedDuration::try_from(Self::MAX_MARGIN).unwrap_or_default();
        let margin = (budget / 5).clamp(min, max);
        let stop_at = hard.checked_sub(margin).unwrap_or(start).max(start);
        Deadline { stop_at, hard }
    }

    /// Time left before `stop_at`, zero when past it.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        Duration::try_from(self.stop_at.duration_since(now)).unwrap_or(Duration::ZERO)
    }

    pub fn reached(&self, now: Timestamp) -> bool {
        now >= self.stop_at
    }
}

#[cfg(test)]
pub mod fake {
    //! A clock tests move by hand.
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug)]
    pub struct FakeClock(Mutex<Timestamp>);

    impl FakeClock {
        pub fn at(t: &str) -> FakeClock {
            FakeClock(Mutex::new(t.parse().unwrap()))
        }
        pub fn advance(&self, d: Duration) {
            let mut t = self.0.lock().unwrap();
            *t = t.checked_add(SignedDuration::try_from(d).unwrap()).unwrap();
        }
        pub fn set(&self, t: Timestamp) {
            *self.0.lock().unwrap() = t;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }

        async fn sleep(&self, d: Duration) {
            self.advance(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn margin_scales_with_the_budget() {
        let start = ts("2026-01-01T00:00:00Z");
        // 20 s budget: a fifth is 4 s
        let d = Deadline::new(start, ts("2026-01-01T00:00:20Z"));
        assert_eq!(d.stop_at, ts("2026-01-01T00:00:16Z"));
        // 15 min budget: capped at 30 s
        let d = Deadline::new(start, ts("2026-01-01T00:15:00Z"));
        assert_eq!(d.stop_at, ts("2026-01-01T00:14:30Z"));
        // 5 s budget: at least 2 s
        let d = Deadline::new(start, ts("2026-01-01T00:00:05Z"));
        assert_eq!(d.stop_at, ts("2026-01-01T00:00:03Z"));
        // already past: stop at once
        let d = Deadline::new(start, ts("2025-12-31T23:59:59Z"));
        assert!(d.reached(start));
    }
}
