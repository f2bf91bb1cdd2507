//! `{"action": "verify"}`: every dependency checked in the order a run meets them, each with the
//! remedy when it fails. Changes no state and writes no activity: it writes one marker under
//! `{prefix}_collector/verify/` and reads it back, its own `verify` item in the state table and one
//! `VerifyRuns` datapoint, the least that proves each permission works. With `"dry_run": true` it
//! writes nothing: the bucket and the table are only read, and no metric is put (that check says
//! it was not tried).

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::Collector;
use crate::archive::key::{probe_key, verify_marker_key};
use crate::archive::{BUCKET_CREATE, BUCKET_GRANT, ObjectSink};
use crate::clock::{Clock, Deadline};
use crate::error::error_chain;
use crate::feed::{ActivityFeed, FeedClient, PageQuery};
use crate::secrets::{ApiKey, SECRET_GRANT, SECRET_STORE, SecretSource};
use crate::state::{LIVE_STREAM, StateStore, SyncState, TABLE_CREATE, TABLE_GRANT};
use crate::telemetry::{Datum, METRICS_GRANT, MetricsSink};

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
        Check::failing(check, error_chain(error), remedy)
    }
    fn failing(check: &'static str, detail: impl Into<String>, remedy: &str) -> Check {
        Check { check, ok: false, detail: detail.into(), remedy: Some(remedy.to_owned()) }
    }
}

impl<Fc, Src, Snk, Sto, Met, C> Collector<Fc, Src, Snk, Sto, Met, C>
where
    Fc: FeedClient,
    Src: SecretSource,
    Snk: ObjectSink,
    Sto: StateStore,
    Met: MetricsSink,
    C: Clock,
{
    /// Checks every dependency in the order a run meets them, and logs each check.
    pub async fn verify(&self, deadline: Deadline, run_id: &str, dry_run: bool) -> VerifyReport {
        let now = self.clock.now();
        let (secret, key) = self.check_secret(now).await;
        let api = match &key {
            Some(key) => self.check_key_and_scope(key, now, deadline).await,
            None => Check::failing("api", "not tried: no key", "fix the secret first"),
        };
        let checks = vec![
            secret,
            api,
            self.check_bucket(run_id, now, dry_run).await,
            self.check_state_table(run_id, now, dry_run).await,
            self.check_metrics(dry_run).await,
        ];
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

    /// The secret, read afresh (not from the key cache).
    async fn check_secret(&self, now: Timestamp) -> (Check, Option<ApiKey>) {
        self.keys.invalidate();
        match self.keys.get(&self.secrets, now).await {
            Ok(key) => {
                let detail =
                    format!("{} read; it holds {}", self.config.api_key_secret_id, key_kind(&key));
                (Check::ok("secret", detail), Some(key))
            }
            Err(e) => (Check::failed("secret", &e, &both(SECRET_STORE, SECRET_GRANT)), None),
        }
    }

    /// The key and its scope: one request for one activity.
    async fn check_key_and_scope(&self, key: &ApiKey, now: Timestamp, deadline: Deadline) -> Check {
        let query = PageQuery {
            from: floor(now) - SignedDuration::from_hours(1),
            to: floor(now),
            after: None,
            organization_ids: self.config.organization_ids.clone(),
            limit: 1,
        };
        let (result, stats) = self.feed.with_key(key).fetch(&query, deadline).await;
        match result {
            Ok(_) => Check::ok(
                "api",
                format!(
                    "{} accepted the key with read:compliance_activities (request-id {}, {} requests left this minute)",
                    self.config.api_base_url,
                    stats.request_id.as_deref().unwrap_or("-"),
                    stats.rate_limit_remaining.map_or("?".into(), |r| r.to_string())
                ),
            ),
            Err(e) => Check::failed("api", &e, API_REMEDY),
        }
    }

    /// The bucket: one marker under the `_` area of the prefix, written and read back (runs read
    /// objects back to recover a batch and to reconcile hours). A dry run only reads.
    async fn check_bucket(&self, run_id: &str, now: Timestamp, dry_run: bool) -> Check {
        let bucket = &self.config.output_bucket;
        if dry_run {
            // A read of the probe key: the run's own probe writes it.
            return match self.sink.get(&probe_key(&self.config.output_prefix)).await {
                Ok(_) => Check::ok(
                    "bucket",
                    format!("s3://{bucket} exists and can be read (dry run: nothing written)"),
                ),
                Err(e) => Check::failed("bucket", &e, &both(BUCKET_CREATE, BUCKET_GRANT)),
            };
        }
        let marker = verify_marker_key(&self.config.output_prefix, run_id);
        let body =
            serde_json::json!({"run_id": run_id, "at": now.to_string()}).to_string().into_bytes();
        let written = async {
            self.sink.put_marker(&marker, body, "application/json").await?;
            self.sink.get(&marker).await
        };
        match written.await {
            Ok(Some(_)) => {
                Check::ok("bucket", format!("wrote and read back s3://{bucket}/{marker}"))
            }
            Ok(None) => Check::failing(
                "bucket",
                format!("wrote s3://{bucket}/{marker} but cannot read it back"),
                &both(BUCKET_CREATE, BUCKET_GRANT),
            ),
            Err(e) => Check::failed("bucket", &e, &both(BUCKET_CREATE, BUCKET_GRANT)),
        }
    }

    /// The state table: the live state read, the verify item written (a dry run only reads).
    async fn check_state_table(&self, run_id: &str, now: Timestamp, dry_run: bool) -> Check {
        let table = async {
            let live = self.store.load(LIVE_STREAM).await?;
            let version = self.store.load(VERIFY_STREAM).await?.map(|v| v.version);
            if dry_run {
                return Ok(live.and_then(|v| v.state.watermark));
            }
            let state = SyncState {
                updated_at: Some(now),
                updated_by: Some(run_id.to_owned()),
                ..SyncState::default()
            };
            self.store.commit(VERIFY_STREAM, &state, version).await?;
            Ok::<_, crate::state::StateError>(live.and_then(|v| v.state.watermark))
        };
        let wrote = if dry_run {
            String::from(" (dry run: nothing written)")
        } else {
            format!(" and wrote the {VERIFY_STREAM:?} item")
        };
        match table.await {
            Ok(watermark) => Check::ok(
                "state_table",
                format!(
                    "{}: read the live state (watermark {}){wrote}",
                    self.config.state_table,
                    watermark.map_or("none yet".into(), |w| w.to_string()),
                ),
            ),
            Err(e) => Check::failed("state_table", &e, &both(TABLE_CREATE, TABLE_GRANT)),
        }
    }

    /// The metrics: a put is the only way to check the permission; a dry run does not try.
    async fn check_metrics(&self, dry_run: bool) -> Check {
        let namespace = &self.config.metric_namespace;
        if dry_run {
            return Check::ok(
                "metrics",
                format!("not tried (dry run: nothing put in {namespace})"),
            );
        }
        match self.metrics.put(&[Datum::count(VERIFY_RUNS, 1.0)]).await {
            Ok(()) => Check::ok("metrics", format!("put {VERIFY_RUNS} in {namespace}")),
            Err(e) => Check::failed("metrics", &e, METRICS_GRANT),
        }
    }
}

const API_REMEDY: &str = "a 401 means the key is wrong or revoked: create a Compliance Access Key (claude.ai, primary owner) or an Admin API key (Claude Console, after enabling the Compliance API) and store it; a 403 means it lacks read:compliance_activities";

/// A remedy of two parts, each the text its error gives.
fn both(first: &str, second: &str) -> String {
    format!("{first}; {second}")
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
