//! [`Publisher`] over SNS `Publish`: the alert's JSON as the message, its subject, and the
//! `level`, `rule_id` and `pack` message attributes that subscription filter policies match.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::publish::{AlertMessage, PublishError, Publisher};

pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsPublisher {
        SnsPublisher { client, topic_arn: topic_arn.into() }
    }

    fn error(
        &self,
        message: &AlertMessage,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> PublishError {
        PublishError {
            topic: self.topic_arn.clone(),
            alert_id: message.alert_id.clone(),
            source: Box::new(source),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, aws_sdk_sns::error::BuildError> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build()
}

impl Publisher for SnsPublisher {
    async fn publish(&self, message: &AlertMessage) -> Result<String, PublishError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&message.subject)
            .message(&message.body);
        for (name, value) in
            [("level", message.level), ("rule_id", &message.rule_id), ("pack", &message.pack)]
        {
            request = request
                .message_attributes(name, attribute(value).map_err(|e| self.error(message, e))?);
        }
        let sent = request.send().await.map_err(|e| self.error(message, e))?;
        Ok(sent.message_id().unwrap_or_default().to_owned())
    }
}
