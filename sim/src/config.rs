//! The simulator's configuration: accepted keys, limits, latency and the clock.
//!
//! Every time the simulator reads ("now" for rate limiting and for the `created_at` of
//! `compliance_api_accessed` activities) comes from [`Clock`], so tests can pin or advance
//! time without sleeping. Tokio sleeps (latency, delay faults) stay on real time.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The key [`SimConfig::default`] accepts, with the `read:compliance_activities` scope.
pub const DEFAULT_API_KEY: &str = "sk-ant-api01-simulator-test-key";

/// How the simulator behaves. Build with struct update syntax over [`SimConfig::default`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds generated data, ids and the cursor secret: same seed and call sequence, same data.
    pub seed: u64,
    /// The accepted `x-api-key` values. Any other key gets 401.
    pub keys: Vec<ApiKey>,
    /// Authenticated requests allowed in any sliding 60 s window.
    pub rate_limit_per_minute: u32,
    /// The largest accepted `limit`; above it is a 400.
    pub max_page_size: u32,
    /// Added to every API response (not to `/_sim/` control calls).
    pub latency: Duration,
    /// The simulator's wall clock.
    pub clock: Clock,
    /// Send every 200 body chunked (`transfer-encoding: chunked`, no `content-length`), as a
    /// server or proxy that streams its answer does: a client can only bound such a body while it
    /// reads it.
    pub chunked: bool,
    /// Make some generated activities large (see [`LargeRecords`]); `None`: as generated.
    pub large_records: Option<LargeRecords>,
}

/// One generated activity in `every` (the first, then each `every`-th after it) carries an extra
/// top-level string field `_sim_padding` of `bytes` bytes of random letters, so that it is at
/// least that large: pages of such records test a client's memory bound. The rest of the record
/// is as generated; the padding does not compress away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeRecords {
    pub every: u64,
    pub bytes: usize,
}

impl std::str::FromStr for LargeRecords {
    type Err = String;

    /// `EVERY:BYTES`, e.g. `5:40960`; both at least 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (every, bytes) = s.split_once(':').ok_or("expected EVERY:BYTES")?;
        let every: u64 = every.parse().map_err(|_| "EVERY is not a number")?;
        let bytes: usize = bytes.parse().map_err(|_| "BYTES is not a number")?;
        if every == 0 || bytes == 0 {
            return Err("EVERY and BYTES must be at least 1".to_owned());
        }
        Ok(LargeRecords { every, bytes })
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            keys: vec![ApiKey::with_scope(DEFAULT_API_KEY)],
            rate_limit_per_minute: 600,
            max_page_size: 5000,
            latency: Duration::ZERO,
            clock: Clock::system(),
            chunked: false,
            large_records: None,
        }
    }
}

/// An accepted API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    /// Whether the key carries `read:compliance_activities`; without it the feed answers 403.
    pub has_scope: bool,
}

impl ApiKey {
    pub fn with_scope(key: impl Into<String>) -> Self {
        Self { key: key.into(), has_scope: true }
    }

    pub fn without_scope(key: impl Into<String>) -> Self {
        Self { key: key.into(), has_scope: false }
    }
}

/// A source of "now". Cheap to clone; the system clock by default.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The real wall clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    /// A clock that always says `at`.
    pub fn fixed(at: Timestamp) -> Self {
        Self(Arc::new(move || at))
    }

    /// A clock reading any function, e.g. one shared with a test's own fake clock.
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

/// A clock a test moves by hand: `ManualClock::new(t)`, give `manual.clock()` to the
/// simulator, then `manual.advance(..)`.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        let shared = Arc::clone(&self.0);
        Clock::from_fn(move || *shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// Moves the clock forward (saturating at the end of jiff's range).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by).unwrap_or(*now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_accepts_the_documented_test_key_with_scope() {
        // GIVEN the default configuration
        let config = SimConfig::default();
        // THEN it has the documented defaults
        assert_eq!(config.seed, 1);
        assert_eq!(config.keys, vec![ApiKey::with_scope(DEFAULT_API_KEY)]);
        assert_eq!(config.rate_limit_per_minute, 600);
        assert_eq!(config.max_page_size, 5000);
        assert_eq!(config.latency, Duration::ZERO);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        // GIVEN a manual clock and a Clock reading it
        let start: Timestamp = "2026-04-01T00:00:00Z".parse().unwrap();
        let manual = ManualClock::new(start);
        let clock = manual.clock();
        // WHEN it is advanced
        manual.advance(SignedDuration::from_secs(90));
        // THEN the Clock sees the new time
        assert_eq!(clock.now(), "2026-04-01T00:01:30Z".parse::<Timestamp>().unwrap());
    }
}
