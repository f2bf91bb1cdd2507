//! Scripted faults: what goes wrong, and how each kind changes one feed request.
//!
//! Faults wait in a FIFO queue; each authenticated feed request that the rate limiter admits
//! takes the next one before normal processing. This module is the one place that knows the
//! kinds: a new kind is a [`Fault`] variant, a line in [`FaultSpec`] for the control endpoint,
//! and an arm in [`Fault::injection`] (adding an [`Injection`] variant if it needs the page,
//! e.g. a cursor that does not move or a record without id).

use std::time::Duration;

use serde::Deserialize;

use crate::reply::{ErrorType, Reply};

/// Something to go wrong on one upcoming feed request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "FaultSpec")]
pub enum Fault {
    /// Answer with this status and an error body; `retry_after` sets `retry-after` (seconds),
    /// `should_retry` sets `x-should-retry`.
    Status {
        status: u16,
        error_type: String,
        retry_after: Option<u32>,
        should_retry: Option<bool>,
    },
    /// Wait, then serve normally.
    Delay(Duration),
    /// 200 with a body that is not JSON (a page cut short).
    MalformedBody,
}

impl Fault {
    /// A status fault with the API's error type for that status and no extra headers.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            error_type: ErrorType::for_status(status).as_str().to_owned(),
            retry_after: None,
            should_retry: None,
        }
    }

    /// What this fault does to the request with `request_id`.
    pub(crate) fn injection(&self, request_id: &str) -> Injection {
        match self {
            Self::Status {
                status,
                error_type,
                retry_after,
                should_retry,
            } => {
                let mut reply = Reply::error(
                    *status,
                    error_type,
                    "injected fault (compliance-sim)",
                    request_id,
                );
                if let Some(secs) = retry_after {
                    reply = reply.with_header("retry-after", secs.to_string());
                }
                if let Some(retry) = should_retry {
                    reply = reply.with_header("x-should-retry", retry.to_string());
                }
                Injection::Replace(reply)
            }
            Self::Delay(wait) => Injection::DelayThenServe(*wait),
            Self::MalformedBody => Injection::Replace(Reply::ok(
                r#"{"data":[{"id":"activity_01XyDMpzjS89pFZXqSFUBDr6","created_at":"2026-04-10T08:0"#
                    .to_owned(),
            )),
        }
    }
}

/// How a fault changes the request that takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Answer with this instead of serving the page.
    Replace(Reply),
    /// Sleep this long, then serve normally.
    DelayThenServe(Duration),
}

/// The JSON form of a fault on `POST /_sim/faults`: exactly one of `status` (with optional
/// `error_type`, `retry_after`, `should_retry`), `delay_ms`, or `malformed: true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    status: Option<u16>,
    error_type: Option<String>,
    retry_after: Option<u32>,
    should_retry: Option<bool>,
    delay_ms: Option<u64>,
    malformed: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error("a fault needs exactly one of status, delay_ms, malformed")]
    NotExactlyOneKind,
    #[error("status {0} is not an HTTP error status (400..=599)")]
    Status(u16),
    #[error("error_type, retry_after and should_retry go only with status")]
    StatusFieldsWithoutStatus,
    #[error("malformed must be true when given")]
    MalformedFalse,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = FaultSpecError;

    fn try_from(spec: FaultSpec) -> Result<Self, Self::Error> {
        let kinds = usize::from(spec.status.is_some())
            + usize::from(spec.delay_ms.is_some())
            + usize::from(spec.malformed.is_some());
        if kinds != 1 {
            return Err(FaultSpecError::NotExactlyOneKind);
        }
        let status_fields =
            spec.error_type.is_some() || spec.retry_after.is_some() || spec.should_retry.is_some();
        if let Some(status) = spec.status {
            if !(400..=599).contains(&status) {
                return Err(FaultSpecError::Status(status));
            }
            return Ok(Self::Status {
                status,
                error_type: spec
                    .error_type
                    .unwrap_or_else(|| ErrorType::for_status(status).as_str().to_owned()),
                retry_after: spec.retry_after,
                should_retry: spec.should_retry,
            });
        }
        if status_fields {
            return Err(FaultSpecError::StatusFieldsWithoutStatus);
        }
        if let Some(ms) = spec.delay_ms {
            return Ok(Self::Delay(Duration::from_millis(ms)));
        }
        match spec.malformed {
            Some(true) => Ok(Self::MalformedBody),
            _ => Err(FaultSpecError::MalformedFalse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_json_forms_parse() {
        // GIVEN the control endpoint's example
        let json = r#"[{"status":503},{"status":429,"retry_after":1},{"status":500,"should_retry":false},{"delay_ms":2000},{"malformed":true}]"#;
        // WHEN parsed
        let faults: Vec<Fault> = serde_json::from_str(json).unwrap();
        // THEN each kind comes out with defaults filled in
        assert_eq!(
            faults,
            [
                Fault::status(503),
                Fault::Status {
                    status: 429,
                    error_type: "rate_limit_error".into(),
                    retry_after: Some(1),
                    should_retry: None
                },
                Fault::Status {
                    status: 500,
                    error_type: "api_error".into(),
                    retry_after: None,
                    should_retry: Some(false)
                },
                Fault::Delay(Duration::from_secs(2)),
                Fault::MalformedBody,
            ]
        );
    }

    #[test]
    fn ambiguous_or_unknown_fault_forms_are_refused() {
        for bad in [
            r#"{}"#,
            r#"{"status":503,"delay_ms":5}"#,
            r#"{"status":200}"#,
            r#"{"delay_ms":5,"retry_after":1}"#,
            r#"{"malformed":false}"#,
            r#"{"reset":true}"#,
        ] {
            assert!(serde_json::from_str::<Fault>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_status_fault_replaces_the_reply_with_its_headers() {
        // GIVEN a 429 fault with retry-after and a 500 that says do not retry
        let limited = Fault::Status {
            status: 429,
            error_type: "rate_limit_error".into(),
            retry_after: Some(3),
            should_retry: Some(false),
        };
        // WHEN injected
        let Injection::Replace(reply) = limited.injection("req_x") else {
            panic!("status faults replace the reply");
        };
        // THEN the status, headers and error body are there
        assert_eq!(reply.status, 429);
        assert!(reply.headers.contains(&("retry-after", "3".into())));
        assert!(reply.headers.contains(&("x-should-retry", "false".into())));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["request_id"], "req_x");
    }

    #[test]
    fn a_malformed_body_is_not_json() {
        let Injection::Replace(reply) = Fault::MalformedBody.injection("req_x") else {
            panic!("malformed replaces the reply");
        };
        assert_eq!(reply.status, 200);
        assert!(serde_json::from_str::<serde_json::Value>(&reply.body).is_err());
    }
}
