//! Where alerts go, through the [`Publisher`] port: one SNS message per alert (design.md,
//! "Detections (contract)"): the alert's JSON as the body, `[<level>] <title>` as the subject, and
//! the message attributes `level`, `rule_id` and `pack` that subscriptions filter on.

use std::future::Future;

use crate::detect::alert::Alert;

/// SNS refuses a subject over 100 characters.
const SUBJECT_LIMIT: usize = 100;

/// One alert as a message: what every publisher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMessage {
    pub alert_id: String,
    pub subject: String,
    pub body: String,
    pub level: &'static str,
    pub rule_id: String,
    pub pack: String,
}

impl AlertMessage {
    pub fn of(alert: &Alert) -> Result<AlertMessage, serde_json::Error> {
        Ok(AlertMessage {
            alert_id: alert.alert_id.clone(),
            subject: subject(alert.rule.level, &alert.rule.title),
            body: alert.to_json()?,
            level: alert.rule.level,
            rule_id: alert.rule.id.clone(),
            pack: alert.rule.pack.clone(),
        })
    }
}

/// `[<level>] <title>`, cut to SNS's limit on a character boundary, printable ASCII only (SNS
/// refuses line breaks and control characters in a subject).
pub fn subject(level: &str, title: &str) -> String {
    let full = format!("[{level}] {title}");
    let clean: String =
        full.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    match clean.char_indices().nth(SUBJECT_LIMIT) {
        Some((cut, _)) => clean[..cut].to_owned(),
        None => clean,
    }
}

/// The port alerts are published through; returns the message id.
pub trait Publisher: Send + Sync {
    fn publish(
        &self,
        message: &AlertMessage,
    ) -> impl Future<Output = Result<String, PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("cannot publish alert {alert_id} to {topic}")]
pub struct PublishError {
    pub topic: String,
    pub alert_id: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`Publisher`] that keeps every message, for the core's tests.
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct MemoryPublisher {
        pub messages: Mutex<Vec<AlertMessage>>,
        /// Refuse this many publishes first.
        pub refuse: Mutex<u32>,
    }

    impl MemoryPublisher {
        pub fn alert_ids(&self) -> Vec<String> {
            self.messages.lock().unwrap().iter().map(|m| m.alert_id.clone()).collect()
        }
    }

    impl Publisher for MemoryPublisher {
        async fn publish(&self, message: &AlertMessage) -> Result<String, PublishError> {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(PublishError {
                    topic: "memory".into(),
                    alert_id: message.alert_id.clone(),
                    source: "injected".into(),
                });
            }
            let mut messages = self.messages.lock().unwrap();
            messages.push(message.clone());
            Ok(format!("msg-{}", messages.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_level_and_title_within_snss_limit() {
        // GIVEN a short title, a long one and one with a line break
        assert_eq!(subject("high", "Admin key created"), "[high] Admin key created");
        let long = subject("low", &"x".repeat(300));
        assert_eq!(long.len(), 100);
        assert_eq!(subject("low", "a\nb é"), "[low] a?b ?");
    }
}
