//! Why the detector failed an object or an invocation; each error keeps its cause chain and has
//! a stable type name (what Lambda reports as `errorType`).

use crate::archive::SinkError;
use crate::config::ConfigError;
use crate::detect::evaluate::EvaluateError;
use crate::detect::findings::FindingsError;

use super::event::{BodyError, EventError};
use super::ledger::LedgerError;
use super::publish::PublishError;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("invalid detector configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the archive failed")]
    Archive(#[from] SinkError),
    #[error("cannot evaluate the object")]
    Evaluate(#[from] EvaluateError),
    #[error("cannot write the findings")]
    Findings(#[from] FindingsError),
    #[error("the state table failed")]
    Ledger(#[from] LedgerError),
    #[error("the alert topic failed")]
    Publish(#[from] PublishError),
    #[error("alert {alert_id} is being published by another delivery; retried later")]
    AlertHeld { alert_id: String },
    #[error("correlation {key} kept changing under this delivery ({attempts} attempts)")]
    Contended { key: String, attempts: u32 },
    #[error("serialising alert {alert_id}")]
    Serialize {
        alert_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the invocation's deadline is too close to start {what}")]
    DeadlineExceeded { what: String },
}

impl DetectorError {
    /// The stable name of the error's kind.
    pub fn error_type(&self) -> &'static str {
        match self {
            DetectorError::Config(_) => "ConfigurationInvalid",
            DetectorError::Event(_) => "InvocationInvalid",
            DetectorError::Body(_) => "MessageInvalid",
            DetectorError::Archive(_) => "ArchiveUnavailable",
            DetectorError::Evaluate(_) => "ObjectInvalid",
            DetectorError::Findings(_) => "FindingsInvalid",
            DetectorError::Ledger(_) => "StateUnavailable",
            DetectorError::Publish(_) => "AlertTopicUnavailable",
            DetectorError::AlertHeld { .. } | DetectorError::Contended { .. } => "Contended",
            DetectorError::Serialize { .. } => "AlertInvalid",
            DetectorError::DeadlineExceeded { .. } => "DeadlineExceeded",
        }
    }
}
