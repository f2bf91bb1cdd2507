//! [`Ledger`] over DynamoDB, in the collector's state table: items whose `pk` starts with
//! `detector#` (the detector's role may touch no other), each with a TTL (`expires_at`).
//!
//! - `detector#alert#<alert_id>`: `status` (`publishing` or `published`), `lease_until` (Unix
//!   seconds), `message_id` once published. A claim is a conditional put: absent, or a
//!   `publishing` whose lease ran out.
//! - `detector#correlation#<rule_id>#<group>`: `version`, `group_state` (JSON: the entries and
//!   the windows fired), written with a version condition like the collector's state.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use crate::detect::correlation::GroupState;

use super::ledger::{Claim, Ledger, LedgerError, VersionedGroup, alert_key};

const PUBLISHING: &str = "publishing";
const PUBLISHED: &str = "published";

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoLedger {
        DynamoLedger { client, table: table.into() }
    }

    fn unavailable(
        &self,
        key: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> LedgerError {
        LedgerError::Unavailable {
            table: self.table.clone(),
            key: key.to_owned(),
            source: Box::new(source),
        }
    }
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

impl Ledger for DynamoLedger {
    async fn claim(
        &self,
        alert_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Claim, LedgerError> {
        let key = alert_key(alert_id);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key))
            .item("status", s(PUBLISHING))
            .item("lease_until", n(lease_until.as_second()))
            .item("expires_at", n(expires_at.as_second()))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :publishing AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":publishing", s(PUBLISHING))
            .expression_attribute_values(":now", n(now.as_second()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if condition_failed(&e) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(&key))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(&key, e))?;
                let status = item.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok());
                Ok(if status.map(String::as_str) == Some(PUBLISHED) {
                    Claim::Published
                } else {
                    Claim::Held
                })
            }
            Err(e) => Err(self.unavailable(&key, e)),
        }
    }

    async fn mark_published(
        &self,
        alert_id: &str,
        message_id: &str,
        expires_at: Timestamp,
    ) -> Result<(), LedgerError> {
        let key = alert_key(alert_id);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key))
            .item("status", s(PUBLISHED))
            .item("message_id", s(message_id))
            .item("expires_at", n(expires_at.as_second()))
            .send()
            .await
            .map_err(|e| self.unavailable(&key, e))?;
        Ok(())
    }

    async fn load_group(&self, key: &str) -> Result<Option<VersionedGroup>, LedgerError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable(key, e))?;
        let Some(item) = item.item() else { return Ok(None) };
        let corrupt = |source: Box<dyn std::error::Error + Send + Sync>| LedgerError::Corrupt {
            key: key.to_owned(),
            source,
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .ok_or_else(|| corrupt("no version".into()))?
            .parse::<u64>()
            .map_err(|e| corrupt(Box::new(e)))?;
        let text = item
            .get("group_state")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt("no group_state".into()))?;
        let state: GroupState = serde_json::from_str(text).map_err(|e| corrupt(Box::new(e)))?;
        Ok(Some(VersionedGroup { state, version }))
    }

    async fn commit_group(
        &self,
        key: &str,
        state: &GroupState,
        expected: Option<u64>,
        expires_at: Timestamp,
    ) -> Result<u64, LedgerError> {
        let version = expected.unwrap_or(0) + 1;
        let text = serde_json::to_string(state)
            .map_err(|e| LedgerError::Corrupt { key: key.to_owned(), source: Box::new(e) })?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("version", n(i64::try_from(version).unwrap_or(i64::MAX)))
            .item("group_state", s(&text))
            .item("expires_at", n(expires_at.as_second()));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(i64::try_from(v).unwrap_or(i64::MAX))),
        };
        match put.send().await {
            Ok(_) => Ok(version),
            Err(e) if condition_failed(&e) => {
                Err(LedgerError::Conflict { key: key.to_owned(), expected })
            }
            Err(e) => Err(self.unavailable(key, e)),
        }
    }
}
