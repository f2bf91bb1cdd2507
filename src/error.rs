//! The invocation's error: one enum, a stable `errorType` per cause, the whole cause chain in the
//! message. Alarms, runbooks and the README key on these names; never rename one.

use lambda_runtime::Diagnostic;

use crate::archive::SinkError;
use crate::config::ConfigError;
use crate::feed::FeedError;
use crate::invocation::InvocationError;
use crate::secrets::SecretError;
use crate::state::StateError;
use crate::sync::SyncError;
use crate::telemetry::MetricsError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    #[error("invalid invocation payload")]
    Invocation(#[from] InvocationError),
    #[error("cannot get the API key")]
    Secret(#[from] SecretError),
    #[error("the run failed")]
    Sync(#[from] SyncError),
    #[error("the run succeeded but its metrics were not recorded")]
    Metrics(#[from] MetricsError),
    #[error("the run's manifest could not be written")]
    Manifest(#[source] SinkError),
    #[error("the run's manifest could not be encoded")]
    ManifestEncode(#[source] serde_json::Error),
    #[error(
        "a call to AWS or the API was still running at the invocation's deadline; the run was cut and the next one resumes from the last commit"
    )]
    DeadlineExceeded,
}

impl RunError {
    /// The stable `errorType` of the failed invocation.
    pub fn error_type(&self) -> &'static str {
        match self {
            RunError::Config(_) => "ConfigurationInvalid",
            RunError::Invocation(_) => "InvocationInvalid",
            RunError::Secret(e) => match e {
                SecretError::NotFound { .. } => "SecretNotFound",
                SecretError::AccessDenied { .. } => "SecretAccessDenied",
                SecretError::Unavailable { .. } => "SecretUnavailable",
                SecretError::Placeholder => "SecretPlaceholder",
                SecretError::NoString
                | SecretError::Empty
                | SecretError::JsonWithoutKey { .. }
                | SecretError::Malformed { .. } => "SecretInvalid",
            },
            RunError::Sync(e) => match e {
                SyncError::Feed(f) => match f {
                    FeedError::Unauthorized { .. } => "ApiKeyRejected",
                    FeedError::Forbidden { .. } => "ApiScopeMissing",
                    FeedError::Rejected { .. } => "ApiRequestRejected",
                    FeedError::RateLimited { .. } => "ApiRateLimited",
                    FeedError::Unavailable { .. } | FeedError::DeadlineReached => "ApiUnavailable",
                    FeedError::InvalidPage { .. } => "ApiResponseInvalid",
                    FeedError::RecordTooLarge { .. } => "ActivityTooLarge",
                },
                SyncError::Archive(a) => match a {
                    SinkError::BucketNotFound { .. } => "BucketNotFound",
                    SinkError::AccessDenied { .. } => "BucketAccessDenied",
                    SinkError::Unavailable { .. } => "ArchiveUnavailable",
                },
                SyncError::State(s) => match s {
                    StateError::Conflict { .. } => "ConcurrentRun",
                    StateError::TableNotFound { .. } => "StateTableNotFound",
                    StateError::AccessDenied { .. } => "StateAccessDenied",
                    StateError::Unavailable { .. } => "StateUnavailable",
                    StateError::Corrupt { .. } | StateError::TooLarge { .. } => "StateInvalid",
                },
                SyncError::Encode(_)
                | SyncError::Unrecoverable { .. }
                | SyncError::LeaseExpired { .. } => "ArchiveUnavailable",
            },
            RunError::Metrics(_) => "MetricsUnavailable",
            RunError::Manifest(_) | RunError::ManifestEncode(_) => "ManifestUnavailable",
            RunError::DeadlineExceeded => "DeadlineExceeded",
        }
    }

    /// Whether a human must act before a run can succeed (the key, its scope, the bucket). Such a
    /// run wrote nothing and leaves no object behind, not even a manifest; its metrics (zero)
    /// are still put, so the alarms fire.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            RunError::Sync(
                SyncError::Feed(FeedError::Unauthorized { .. } | FeedError::Forbidden { .. })
                    | SyncError::Archive(
                        SinkError::BucketNotFound { .. } | SinkError::AccessDenied { .. }
                    )
            )
        )
    }

    /// The message and every cause beneath it, joined with ": ".
    pub fn chain(&self) -> String {
        error_chain(self)
    }
}

/// The error and its sources, joined with ": ": a top-level message alone (reqwest's, the SDK's)
/// hides the cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<RunError> for Diagnostic {
    fn from(e: RunError) -> Diagnostic {
        Diagnostic { error_type: e.error_type().to_owned(), error_message: e.chain() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_the_whole_chain() {
        let e = RunError::from(SyncError::from(StateError::TableNotFound { table: "t".into() }));
        assert_eq!(e.error_type(), "StateTableNotFound");
        assert_eq!(
            Diagnostic::from(e).error_message,
            "the run failed: the state table \"t\" does not exist; create it (partition key pk, String) or fix STATE_TABLE"
        );
    }

    #[test]
    fn only_the_key_its_scope_and_the_bucket_need_an_operator() {
        // GIVEN one error of each kind a run can fail with
        let feed = |e: FeedError| RunError::from(SyncError::from(e));
        let sink = |e: SinkError| RunError::from(SyncError::from(e));
        let boxed = || -> Box<dyn std::error::Error + Send + Sync> { "cause".into() };
        let human = [
            feed(FeedError::Unauthorized {
                error_type: "e".into(),
                message: "m".into(),
                request_id: None,
            }),
            feed(FeedError::Forbidden {
                error_type: "e".into(),
                message: "m".into(),
                request_id: None,
            }),
            sink(SinkError::BucketNotFound { bucket: "b".into() }),
            sink(SinkError::AccessDenied { bucket: "b".into(), key: "k".into(), source: boxed() }),
        ];
        let not_human = [
            feed(FeedError::DeadlineReached),
            sink(SinkError::Unavailable { bucket: "b".into(), key: "k".into(), source: boxed() }),
            RunError::from(SyncError::from(StateError::TableNotFound { table: "t".into() })),
            RunError::DeadlineExceeded,
        ];
        // THEN exactly the first need an operator, and they are those whose error types say so
        for e in &human {
            assert!(e.needs_operator(), "{}", e.error_type());
            assert!(
                matches!(
                    e.error_type(),
                    "ApiKeyRejected" | "ApiScopeMissing" | "BucketNotFound" | "BucketAccessDenied"
                ),
                "{}",
                e.error_type()
            );
        }
        for e in &not_human {
            assert!(!e.needs_operator(), "{}", e.error_type());
        }
    }

    #[test]
    fn the_chain_joins_every_cause() {
        let e =
            SinkError::Unavailable { bucket: "b".into(), key: "k".into(), source: "gone".into() };
        assert_eq!(error_chain(&e), "S3 failed on s3://b/k: gone");
    }
}
