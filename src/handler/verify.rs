//! `{"action": "verify"}`: every dependency checked in the order a run meets them, each with the
//! remedy when it fails. Changes no state and writes no activity: it writes one marker under
//! `{prefix}_collector/verify/` and reads it back, its own `verify` item in the state table and one
//! `VerifyRuns` datapoint, the least that proves each permission works. With `"dry_run": true` it
//! writes nothing: the bucket and the table are only read, and no metric is put (that check says
//! it was not tried).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::Collector;
use crate::archive::ObjectSink;
use crate::archive::s3::probe_key;
use crate::clock::{Clock, Deadline};
use crate::feed::{ActivityFeed, PageQuery};
use crate::secrets::{ApiKey, SecretSource};
use crate::state::{LIVE_STREAM, StateStore, SyncState};
use crate::telemetry::{Datum, MetricsSink};

/// The state item verify writes, apart from every stream's.
pub const VERIFY_STREAM: &str = "verify";
pub const VERIFY_RUNS: &str = "VerifyRuns";

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub status: &'static str,
    pub run_id: String,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check { check, ok: true, detail: detail.into(), remedy: None }
    }
    fn failed(check: &'static str, error: &dyn std::error::Error, remedy: &str) -> Check {
        Check::failing(check, crate::feed::http::error_chain(error), remedy)
    }
    fn failing(check: &'static str, detail: impl Into<String>, remedy: &str) -> Check {
        Check { check, ok: false, detail: detail.into(), remedy: Some(remedy.to_owned()) }
    }
}

impl<Src, Snk, Sto, Met, C> Collector<Src, Snk, Sto, Met, C>
where
    Src: SecretSource,
    Snk: ObjectSink,
    Sto: StateStore,
    Met: MetricsSink,
    C: Clock,
{
    pub async fn verify(&self, deadline: Deadline, run_id: &str, dry_run: bool) -> VerifyReport {
        let mut checks = Vec::new();
        let now = self.clock.now();

        // 1. The secret, read afresh.
        self.keys.invalidate();
        let key = match self.keys.get(&self.secrets, now).await {
            Ok(key) => {
                checks.push(Check::ok(
                    "secret",
                    format!("{} read; it holds {}", self.config.api_key_secret_id, key_kind(&key)),
                ));
                Some(key)
            }
            Err(e) => {
                checks.push(Check::failed("secret", &e, "store the key: aws secretsmanager put-secret-value --secret-id <API_KEY_SECRET_ID> --secret-string <key>; check the function's secretsmanager:GetSecretValue permission"));
                None
            }
        };

        // 2. The key and its scope: one request for one activity.
        match &key {
            Some(key) => {
                let query = PageQuery {
                    from: floor(now) - SignedDuration::from_hours(1),
                    to: floor(now),
                    after: None,
                    organization_ids: self.config.organization_ids.clone(),
                    limit: 1,
                };
                let (result, stats) = self.http.with_key(key).fetch(&query, deadline).await;
                match result {
                    Ok(_) => checks.push(Check::ok(
                        "api",
                        format!(
                            "{} accepted the key with read:compliance_activities (request-id {}, {} requests left this minute)",
                            self.config.api_base_url,
                            stats.request_id.as_deref().unwrap_or("-"),
                            stats.rate_limit_remaining.map_or("?".into(), |r| r.to_string())
                        ),
                    )),
                    Err(e) => checks.push(Check::failed("api", &e, "a 401 means the key is wrong or revoked: create a Compliance Access Key (claude.ai, primary owner) or an Admin API key (Claude Console, after enabling the Compliance API) and store it; a 403 means it lacks read:compliance_activities")),
                }
            }
            None => checks.push(Check::failing("api", "not tried: no key", "fix the secret first")),
        }

        // 3. The bucket: one marker under the `_` area of the prefix, written and read back (runs
        // read objects back to recover a batch and to reconcile hours).
        let bucket_remedy = "create the bucket or fix OUTPUT_BUCKET; grant s3:PutObject and s3:GetObject on <bucket>/<OUTPUT_PREFIX>* and s3:ListBucket on the prefix (and kms:GenerateDataKey and kms:Decrypt on a KMS key)";
        let marker =
            format!("{}_collector/verify/{}.json", self.config.output_prefix, safe(run_id));
        let bucket = &self.config.output_bucket;
        if dry_run {
            // A read of the probe key: the run's own probe writes it.
            match self.sink.get(&probe_key(&self.config.output_prefix)).await {
                Ok(_) => checks.push(Check::ok(
                    "bucket",
                    format!("s3://{bucket} exists and can be read (dry run: nothing written)"),
                )),
                Err(e) => checks.push(Check::failed("bucket", &e, bucket_remedy)),
            }
        } else {
            let body = serde_json::json!({"run_id": run_id, "at": now.to_string()})
                .to_string()
                .into_bytes();
            let written = async {
                self.sink.put_marker(&marker, body, "application/json").await?;
                self.sink.get(&marker).await
            };
            match written.await {
                Ok(Some(_)) => checks.push(Check::ok(
                    "bucket",
                    format!("wrote and read back s3://{bucket}/{marker}"),
                )),
                Ok(None) => checks.push(Check::failing(
                    "bucket",
                    format!("wrote s3://{bucket}/{marker} but cannot read it back"),
                    bucket_remedy,
                )),
                Err(e) => checks.push(Check::failed("bucket", &e, bucket_remedy)),
            }
        }

        // 4. The state table: read the live state, write the verify item.
        let table = async {
            let live = self.store.load(LIVE_STREAM).await?;
            let version = self.store.load(VERIFY_STREAM).await?.map(|v| v.version);
            if dry_run {
                return Ok(live.and_then(|v| v.state.watermark));
            }
            let mut state = SyncState {
                updated_at: Some(now),
                updated_by: Some(run_id.to_owned()),
                ..SyncState::default()
            };
            state.delivered_total = 0;
            self.store.commit(VERIFY_STREAM, &state, version).await?;
            Ok::<_, crate::state::StateError>(live.and_then(|v| v.state.watermark))
        };
        let wrote = if dry_run {
            String::from(" (dry run: nothing written)")
        } else {
            format!(" and wrote the {VERIFY_STREAM:?} item")
        };
        match table.await {
            Ok(watermark) => checks.push(Check::ok("state_table", format!(
                "{}: read the live state (watermark {}){wrote}",
                self.config.state_table,
                watermark.map_or("none yet".into(), |w| w.to_string()),
            ))),
            Err(e) => checks.push(Check::failed("state_table", &e, "create the table (partition key pk, String) or fix STATE_TABLE; grant dynamodb:GetItem, PutItem, DeleteItem on it")),
        }

        // 5. The metrics: a put is the only way to check the permission.
        if dry_run {
            let detail =
                format!("not tried (dry run: nothing put in {})", self.config.metric_namespace);
            checks.push(Check::ok("metrics", detail));
        } else {
            let namespace = &self.config.metric_namespace;
            let remedy = "grant cloudwatch:PutMetricData with the condition cloudwatch:namespace = METRIC_NAMESPACE";
            match self.metrics.put(&[Datum::count(VERIFY_RUNS, 1.0)]).await {
                Ok(()) => {
                    checks.push(Check::ok("metrics", format!("put {VERIFY_RUNS} in {namespace}")))
                }
                Err(e) => checks.push(Check::failed("metrics", &e, remedy)),
            }
        }

        let ok = checks.iter().all(|c| c.ok);
        for c in &checks {
            if c.ok {
                tracing::info!(check = c.check, detail = %c.detail, "verify");
            } else {
                tracing::error!(check = c.check, detail = %c.detail, remedy = c.remedy.as_deref().unwrap_or(""), "verify failed");
            }
        }
        VerifyReport { status: if ok { "ok" } else { "failed" }, run_id: run_id.to_owned(), checks }
    }
}

fn key_kind(key: &ApiKey) -> &'static str {
    let k = key.as_str();
    if k.starts_with("sk-ant-admin01-") {
        "an Admin API key"
    } else if k.starts_with("sk-ant-api01-") {
        "a Compliance Access Key"
    } else if k.starts_with("sk-ant-api03-") {
        "an ordinary Claude API key, which the Compliance API refuses"
    } else {
        "a key of an unrecognised kind"
    }
}

fn floor(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn safe(run_id: &str) -> String {
    run_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}
