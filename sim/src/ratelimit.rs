//! The request rate limit: a sliding 60 s window shared by every key of the simulator (the
//! real limit is per parent organization, shared by every key).
//!
//! Only admitted requests enter the window, so a client that keeps retrying too early is not
//! locked out forever. `reset` is when the window will be empty again (fully replenished,
//! as the API's header means it); `retry_after` is when the next slot frees up, in whole
//! seconds rounded up, at least 1.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

const WINDOW: SignedDuration = SignedDuration::from_secs(60);

/// What the limiter said about one request; the API turns it into headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    pub(crate) admitted: bool,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset: Timestamp,
    /// Set when refused.
    pub(crate) retry_after_secs: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    admitted: VecDeque<Timestamp>,
}

impl RateLimiter {
    pub(crate) fn new(limit_per_minute: u32) -> Self {
        Self { limit: limit_per_minute, admitted: VecDeque::new() }
    }

    /// Counts a request at `now` if the window has room.
    pub(crate) fn admit(&mut self, now: Timestamp) -> Admission {
        while self.admitted.front().is_some_and(|&t| window_end(t) <= now) {
            self.admitted.pop_front();
        }
        let in_window = u32::try_from(self.admitted.len()).unwrap_or(u32::MAX);
        if in_window < self.limit {
            self.admitted.push_back(now);
            return Admission {
                admitted: true,
                limit: self.limit,
                remaining: self.limit - in_window - 1,
                reset: self.reset(now),
                retry_after_secs: None,
            };
        }
        let next_slot = self.admitted.front().map_or(now, |&t| window_end(t));
        let wait = now.duration_until(next_slot);
        let secs = wait.as_secs() + i64::from(wait.subsec_nanos() > 0);
        Admission {
            admitted: false,
            limit: self.limit,
            remaining: 0,
            reset: self.reset(now),
            retry_after_secs: Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX)),
        }
    }

    fn reset(&self, now: Timestamp) -> Timestamp {
        self.admitted.back().map_or(now, |&t| window_end(t))
    }
}

fn window_end(t: Timestamp) -> Timestamp {
    t.saturating_add(WINDOW).unwrap_or(Timestamp::MAX)
}

/// RFC 3339 in UTC with whole seconds, rounded up (the API's `-reset` form).
pub(crate) fn format_reset(at: Timestamp) -> String {
    let whole = if at.subsec_nanosecond() > 0 {
        Timestamp::from_second(at.as_second().saturating_add(1)).unwrap_or(at)
    } else {
        at
    };
    whole.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn remaining_counts_down_within_the_window() {
        // GIVEN a limit of 3
        let mut limiter = RateLimiter::new(3);
        let now = at("2026-04-01T00:00:00Z");
        // WHEN three requests arrive at once
        let remaining: Vec<u32> = (0..3).map(|_| limiter.admit(now).remaining).collect();
        // THEN remaining goes 2, 1, 0 and reset is a minute later
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(limiter.admit(now).reset, at("2026-04-01T00:01:00Z"));
    }

    #[test]
    fn the_request_over_the_limit_is_refused_with_retry_after() {
        // GIVEN two requests 10 s apart with a limit of 2
        let mut limiter = RateLimiter::new(2);
        limiter.admit(at("2026-04-01T00:00:00Z"));
        limiter.admit(at("2026-04-01T00:00:10Z"));
        // WHEN a third arrives at 00:00:20.5
        let refused = limiter.admit(at("2026-04-01T00:00:20.5Z"));
        // THEN it is refused until the first leaves the window (39.5 s, rounded up)
        assert!(!refused.admitted);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs, Some(40));
        assert_eq!(refused.reset, at("2026-04-01T00:01:10Z"));
    }

    #[test]
    fn refused_requests_do_not_use_quota() {
        // GIVEN a full window
        let mut limiter = RateLimiter::new(1);
        limiter.admit(at("2026-04-01T00:00:00Z"));
        for _ in 0..5 {
            limiter.admit(at("2026-04-01T00:00:30Z"));
        }
        // WHEN the first request leaves the window
        let later = limiter.admit(at("2026-04-01T00:01:00Z"));
        // THEN the next is admitted
        assert!(later.admitted);
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let mut limiter = RateLimiter::new(1);
        limiter.admit(at("2026-04-01T00:00:00Z"));
        let refused = limiter.admit(at("2026-04-01T00:00:59.999Z"));
        assert_eq!(refused.retry_after_secs, Some(1));
    }

    #[test]
    fn reset_is_formatted_in_whole_seconds_rounded_up() {
        assert_eq!(format_reset(at("2026-04-01T00:01:00.2Z")), "2026-04-01T00:01:01Z");
        assert_eq!(format_reset(at("2026-04-01T00:01:00Z")), "2026-04-01T00:01:00Z");
    }
}
