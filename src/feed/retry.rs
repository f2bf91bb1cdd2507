//! The retry policy by error class, exactly as the API documents it, as a pure function.
//!
//! | status            | decision                                                     |
//! |-------------------|--------------------------------------------------------------|
//! | 400, 401, 403, 404 | never retried: the request or the key must change            |
//! | 429               | wait `retry-after` (a floor); without it back off            |
//! | 500               | back off, unless `x-should-retry: false`                     |
//! | 502, 503, 504, 529 | back off                                                     |
//! | timeout, reset    | back off (the cursor did not move, the same request is safe) |
//!
//! Back-off starts at 1 s and doubles to 60 s, with full jitter on the upper half so that many
//! collectors of one organization do not retry in step. The caller never sleeps past its deadline.

use std::time::Duration;

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        should_retry: Option<bool>,
    },
    /// Connect or read timeout, connection reset, truncated body.
    Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    GiveUp,
}

/// Back-off bounds; production uses [`Backoff::DOCUMENTED`], tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const DOCUMENTED: Backoff =
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) };

    /// The ceiling for retry number `attempt` (1-based): initial × 2^(attempt−1), capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Decides what to do after attempt number `attempt` (1-based) failed; `jitter` is in `[0, 1)`.
pub fn decide(failure: Failure, attempt: u32, backoff: Backoff, jitter: f64) -> Decision {
    let backed_off = || {
        let ceiling = backoff.ceiling(attempt);
        Decision::Retry(ceiling.div_f64(2.0) + ceiling.div_f64(2.0).mul_f64(jitter.clamp(0.0, 1.0)))
    };
    match failure {
        Failure::Transport => backed_off(),
        Failure::Status { status, retry_after, should_retry } => match status {
            429 => match retry_after {
                Some(wait) => Decision::Retry(wait.max(backoff.initial.min(wait))),
                None => backed_off(),
            },
            500 if should_retry == Some(false) => Decision::GiveUp,
            500 | 502 | 503 | 504 | 529 => backed_off(),
            // x-should-retry: true asks for a retry even of a status we would not retry.
            _ if should_retry == Some(true) && status >= 500 => backed_off(),
            _ => Decision::GiveUp,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Failure {
        Failure::Status { status, retry_after: None, should_retry: None }
    }

    #[test]
    fn client_errors_are_never_retried() {
        for s in [400, 401, 403, 404] {
            assert_eq!(decide(status(s), 1, Backoff::DOCUMENTED, 0.5), Decision::GiveUp, "{s}");
        }
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let f = Failure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
            should_retry: None,
        };
        assert_eq!(decide(f, 1, Backoff::DOCUMENTED, 0.9), Decision::Retry(Duration::from_secs(7)));
    }

    #[test]
    fn server_errors_back_off_doubling_to_sixty_seconds() {
        for s in [429, 500, 502, 503, 504, 529] {
            let waits: Vec<Duration> = (1..=8)
                .map(|a| match decide(status(s), a, Backoff::DOCUMENTED, 1.0) {
                    Decision::Retry(d) => d,
                    Decision::GiveUp => panic!("{s} must be retried"),
                })
                .collect();
            assert_eq!(
                waits.iter().map(Duration::as_secs).collect::<Vec<_>>(),
                [1, 2, 4, 8, 16, 32, 60, 60]
            );
        }
        // with jitter 0 the wait is half the ceiling: never zero, never in lock-step
        assert_eq!(
            decide(status(503), 3, Backoff::DOCUMENTED, 0.0),
            Decision::Retry(Duration::from_secs(2))
        );
    }

    #[test]
    fn x_should_retry_false_stops_a_500() {
        let f = Failure::Status { status: 500, retry_after: None, should_retry: Some(false) };
        assert_eq!(decide(f, 1, Backoff::DOCUMENTED, 0.5), Decision::GiveUp);
    }

    #[test]
    fn transport_failures_are_retried() {
        assert!(matches!(
            decide(Failure::Transport, 2, Backoff::DOCUMENTED, 0.5),
            Decision::Retry(_)
        ));
    }
}
