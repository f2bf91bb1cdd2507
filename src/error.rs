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
            RunError::Manifest(_) => "ManifestUnavailable",
            RunError::DeadlineExceeded => "DeadlineExceeded",
        }
    }

    /// The message and every cause beneath it, joined with ": ".
    pub fn chain(&self) -> String {
        crate::feed::http::error_chain(self)
    }
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
}
