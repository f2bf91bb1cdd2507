//! Shared by every test of the built function: one deployment (bucket, table, secret, simulator,
//! and a fault proxy in front of moto, idle unless a test arms it), and the audit that counts loss
//! and duplicates at the object level.
//!
//! Every invocation's log lines are checked for the API key: no test can pass with a key in a
//! log line.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use anthropic_compliance_collector::state::dynamodb::DynamoStore;
use anthropic_compliance_collector::state::{LIVE_STREAM, StateStore, SyncState, Versioned};
use compliance_sim::{ApiKey, GenerateSpec, SimConfig, SimServer, Simulator};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::aws::{self, Clients};
use testkit::fault_proxy::FaultProxy;
use testkit::lambda::{Invocation, LambdaFunction, Outcome};
use testkit::moto::Moto;
use testkit::unique_name;

/// The key the secret holds; the simulator accepts it.
pub const KEY: &str = "sk-ant-api01-fault-suite-key-5f1c0ffee0ddba11";
/// A second accepted key, for rotation after a revocation.
pub const ROTATED_KEY: &str = "sk-ant-api01-fault-suite-rotated-7e57ab1e";
/// A key the simulator knows, without the `read:compliance_activities` scope.
pub const WITHOUT_SCOPE_KEY: &str = "sk-ant-api01-without-scope";
pub const PREFIX: &str = "anthropic/activity/";
/// A generous invocation timeout for runs that must finish (a run after a crash may wait out a
/// dead writer's 25 s lease).
pub const LONG: Duration = Duration::from_secs(60);

pub struct Options {
    pub secret: Option<String>,
    pub create_bucket: bool,
    /// Added to (and overriding) the defaults below.
    pub env: Vec<(&'static str, String)>,
    pub sim: SimConfig,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            secret: Some(KEY.into()),
            create_bucket: true,
            env: vec![],
            sim: SimConfig {
                keys: vec![
                    ApiKey::with_scope(KEY),
                    ApiKey::with_scope(ROTATED_KEY),
                    ApiKey { key: WITHOUT_SCOPE_KEY.into(), has_scope: false },
                ],
                ..SimConfig::default()
            },
        }
    }
}

impl Options {
    /// A simulator that serves at most 1000 activities a page: the collector falls back from
    /// 5000, so a few thousand activities make a multi-page window.
    pub fn small_pages() -> Options {
        let mut options = Options::default();
        options.sim.max_page_size = 1000;
        options
    }

    pub fn with_env(mut self, name: &'static str, value: impl Into<String>) -> Options {
        self.env.push((name, value.into()));
        self
    }
}

/// One deployment: bucket, table, secret and namespace in moto, a simulator, a fault proxy in
/// front of moto, and the function (whose `AWS_ENDPOINT_URL` is the proxy).
pub struct Stack {
    /// Straight to moto: to arrange and to audit, never faulted.
    pub clients: Clients,
    pub proxy: FaultProxy,
    pub bucket: String,
    pub table: String,
    pub namespace: String,
    pub secret_id: String,
    pub sim: Simulator,
    pub server: SimServer,
    pub env: Vec<(String, String)>,
    pub function: LambdaFunction,
}

impl Stack {
    pub async fn new(options: Options) -> Stack {
        let moto = Moto::shared();
        let clients = Clients::for_moto(moto);
        let (bucket, table, namespace, secret_id) =
            (unique_name("bucket"), unique_name("state"), unique_name("ns"), unique_name("key"));
        if options.create_bucket {
            aws::create_bucket(&clients.s3, &bucket).await.unwrap();
        }
        aws::create_state_table(&clients.dynamodb, &table).await.unwrap();
        if let Some(secret) = &options.secret {
            put_secret(&clients, &secret_id, secret).await;
        }
        let sim = Simulator::new(options.sim);
        let server = sim.spawn().await.unwrap();
        let proxy = FaultProxy::start(moto.endpoint()).await.unwrap();
        let mut env: Vec<(String, String)> = aws::env_for(proxy.endpoint());
        for (k, v) in [
            ("API_KEY_SECRET_ID", secret_id.clone()),
            ("STATE_TABLE", table.clone()),
            ("OUTPUT_BUCKET", bucket.clone()),
            ("METRIC_NAMESPACE", namespace.clone()),
            ("API_BASE_URL", server.base_url.clone()),
            ("SETTLE_SECONDS", "1".into()),
            ("MAX_REQUESTS_PER_MINUTE", "600".into()),
            ("RUST_LOG", "debug".into()),
        ] {
            env.push((k.into(), v));
        }
        for (k, v) in options.env {
            env.retain(|(name, _)| name != k);
            env.push((k.into(), v));
        }
        let function = start_function(&env);
        Stack { clients, proxy, bucket, table, namespace, secret_id, sim, server, env, function }
    }

    /// Another function with the same environment: a second sandbox, for concurrent runs.
    pub fn another_function(&self) -> LambdaFunction {
        start_function(&self.env)
    }

    /// A function with this stack's environment changed by `change`.
    pub fn function_with(&self, change: &[(&str, Option<&str>)]) -> LambdaFunction {
        let mut env = self.env.clone();
        for (name, value) in change {
            env.retain(|(k, _)| k != name);
            if let Some(v) = value {
                env.push(((*name).to_owned(), (*v).to_owned()));
            }
        }
        start_function(&env)
    }

    pub async fn invoke(&mut self, payload: Value, timeout: Duration) -> Invocation {
        invoke(&mut self.function, payload, timeout).await
    }

    /// A scheduled run that must succeed; its summary.
    pub async fn collect(&mut self) -> Value {
        let invocation = self.invoke(json!({}), LONG).await;
        match invocation.outcome {
            Outcome::Response(summary) => summary,
            other => panic!("run failed: {other:?}\nlogs:\n{}", invocation.logs.join("\n")),
        }
    }

    /// Healthy runs until one reports `caught_up` or `nothing_new` (at most `max`); the last
    /// summary.
    pub async fn catch_up(&mut self, max: usize) -> Value {
        let mut last = Value::Null;
        for _ in 0..max {
            last = self.collect().await;
            if last["stop_reason"] == "caught_up" || last["stop_reason"] == "nothing_new" {
                return last;
            }
        }
        panic!("not caught up after {max} healthy runs: {last}");
    }

    pub fn generate(&self, count: usize, from_min_ago: i64, to_min_ago: i64) -> Vec<String> {
        self.sim.generate(&GenerateSpec {
            count,
            from: ago(from_min_ago),
            to: ago(to_min_ago),
            hidden: false,
        })
    }

    /// `count` visible activities created in `[from, to)`.
    pub fn generate_between(&self, count: usize, from: Timestamp, to: Timestamp) -> Vec<String> {
        self.sim.generate(&GenerateSpec { count, from, to, hidden: false })
    }

    /// Every line of every activity object, as `(key, line)`, after checking the object format.
    pub async fn lines(&self) -> Vec<(String, String)> {
        let mut lines = Vec::new();
        for object in aws::list_objects(&self.clients.s3, &self.bucket, "").await.unwrap() {
            if object.key.split('/').any(|s| s.starts_with(['_', '.'])) {
                continue;
            }
            assert!(
                object.key.starts_with(PREFIX) && object.key.ends_with(".json.gz"),
                "{}",
                object.key
            );
            for line in
                aws::read_gzip_lines(&self.clients.s3, &self.bucket, &object.key).await.unwrap()
            {
                lines.push((object.key.clone(), line));
            }
        }
        lines
    }

    /// A local copy of the archive as written (each activity object at its key below `PREFIX`,
    /// manifests and probes left out), for tools that read the archive as a data lake would; the
    /// directory and the copied files, in key order.
    pub async fn copy_archive(&self) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
        let dir = std::env::temp_dir().join(unique_name("archive"));
        let mut files = Vec::new();
        for object in aws::list_objects(&self.clients.s3, &self.bucket, PREFIX).await.unwrap() {
            let relative = &object.key[PREFIX.len()..];
            if relative.starts_with('_') {
                continue;
            }
            let path = dir.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let bytes = aws::get_object_bytes(&self.clients.s3, &self.bucket, &object.key);
            std::fs::write(&path, bytes.await.unwrap()).unwrap();
            files.push(path);
        }
        files.sort();
        (dir, files)
    }

    /// The ids of every delivered line, in key order.
    pub async fn delivered(&self) -> Vec<String> {
        self.lines().await.iter().map(|(_, line)| id_of(line)).collect()
    }

    /// Keys of the non-activity objects (manifests, probes).
    pub async fn marker_keys(&self) -> Vec<String> {
        aws::list_objects(&self.clients.s3, &self.bucket, "")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.split('/').any(|s| s.starts_with('_')))
            .collect()
    }

    /// The datapoints of one of this function's metrics (dimension `FunctionName` only).
    pub async fn metric_points(&self, name: &str) -> Vec<f64> {
        let dims = [("FunctionName", self.function.function_name())];
        aws::metric_datapoints(&self.clients.cloudwatch, &self.namespace, name, &dims)
            .await
            .unwrap()
    }

    /// The live state item's attributes as stored, rendered as text.
    pub async fn state_item(&self) -> Option<BTreeMap<String, String>> {
        let item = aws::get_item(&self.clients.dynamodb, &self.table, "live").await.unwrap()?;
        Some(item.into_iter().map(|(k, v)| (k, format!("{v:?}"))).collect())
    }

    /// The live state as the collector itself loads it: panics if the item is not valid.
    pub async fn state(&self) -> Option<Versioned> {
        let store = DynamoStore::new(self.clients.dynamodb.clone(), &self.table);
        match store.load(LIVE_STREAM).await {
            Ok(state) => {
                if let Some(v) = &state {
                    check_state(v);
                }
                state
            }
            Err(e) => panic!("the state item is not valid: {}", error_chain(&e)),
        }
    }

    /// Changes the live state item as an operator (or the passing of time) would, by
    /// compare-and-swap on the version the collector left.
    pub async fn edit_state(&self, change: impl FnOnce(&mut SyncState)) {
        let store = DynamoStore::new(self.clients.dynamodb.clone(), &self.table);
        let Versioned { mut state, version } = self.state().await.expect("no state to edit");
        change(&mut state);
        store.commit(LIVE_STREAM, &state, Some(version)).await.unwrap();
    }

    /// Counts loss and duplicates at the object level against what the simulator served: every
    /// visible activity created before `watermark` (minus `excused`, e.g. indexed later than the
    /// overlap) must be delivered exactly once, byte for byte.
    pub async fn audit(&self, watermark: Timestamp, excused: &HashSet<String>) -> Audit {
        let lines = self.lines().await;
        let activities = self.sim.activities();
        let raw: HashMap<&str, &str> =
            activities.iter().map(|a| (a.id.as_str(), a.raw.as_str())).collect();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        let mut altered = Vec::new();
        for (key, line) in &lines {
            let id = id_of(line);
            match raw.get(id.as_str()) {
                Some(served) if *served == line => {}
                Some(_) => altered.push(format!("{id} in {key}")),
                None => altered.push(format!("{id} in {key} (never served)")),
            }
            *counts.entry(id).or_default() += 1;
        }
        let due: Vec<&str> = activities
            .iter()
            .filter(|a| a.visible && a.created_at < watermark && !excused.contains(&a.id))
            .map(|a| a.id.as_str())
            .collect();
        let lost: Vec<String> =
            due.iter().filter(|id| !counts.contains_key(**id)).map(|id| (*id).to_owned()).collect();
        let duplicated: Vec<String> =
            counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id.clone()).collect();
        Audit {
            served: due.len(),
            delivered_lines: lines.len(),
            unique_delivered: counts.len(),
            lost,
            duplicated,
            altered,
            delivered_ids: counts.into_keys().collect(),
        }
    }

    /// [`Stack::audit`] that must find nothing lost, duplicated or altered.
    pub async fn assert_exactly_once(&self, watermark: Timestamp) -> Audit {
        let audit = self.audit(watermark, &HashSet::new()).await;
        audit.assert_clean();
        audit
    }
}

/// moto's Secrets Manager is not thread-safe: a secret created while another is looked up can
/// fail with "dictionary changed size during iteration". Tests create secrets one at a time.
static SECRETS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn put_secret(clients: &Clients, secret_id: &str, value: &str) {
    let _one_at_a_time = SECRETS.lock().await;
    aws::put_secret(&clients.secretsmanager, secret_id, value).await.unwrap();
}

/// Stores `value` as the secret's new version (one at a time, see [`SECRETS`]).
pub async fn update_secret(stack: &Stack, value: &str) {
    let _one_at_a_time = SECRETS.lock().await;
    stack
        .clients
        .secretsmanager
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

fn start_function(env: &[(String, String)]) -> LambdaFunction {
    let binary = env!("CARGO_BIN_EXE_anthropic-compliance-collector").into();
    LambdaFunction::start(binary, env.to_vec()).unwrap()
}

/// Invokes `function` and checks that no line it logged holds the key or a long piece of it.
pub async fn invoke(
    function: &mut LambdaFunction,
    payload: Value,
    timeout: Duration,
) -> Invocation {
    let invocation = function.invoke(payload, timeout).await.unwrap();
    assert_no_secret(&invocation.logs);
    if let Outcome::Error { error_message, .. } = &invocation.outcome {
        assert_no_secret(std::slice::from_ref(error_message));
    }
    if let Outcome::Response(summary) = &invocation.outcome {
        assert_no_secret(&[summary.to_string()]);
    }
    invocation
}

/// No line holds either key, or any 16-character piece of one.
pub fn assert_no_secret(lines: &[String]) {
    for key in [KEY, ROTATED_KEY] {
        let pieces: Vec<&str> = (0..=key.len() - 16).map(|i| &key[i..i + 16]).collect();
        for line in lines {
            assert!(!pieces.iter().any(|p| line.contains(p)), "a key leaked into: {line}");
        }
    }
}

/// What an audit found.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Activities due (visible, before the watermark, not excused).
    pub served: usize,
    pub delivered_lines: usize,
    pub unique_delivered: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    /// Lines that are not the served bytes of their activity.
    pub altered: Vec<String>,
    pub delivered_ids: HashSet<String>,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.altered.is_empty()
    }

    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "{self}");
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "served {}, delivered {} lines ({} ids), lost {}, duplicated {}, altered {}",
            self.served,
            self.delivered_lines,
            self.unique_delivered,
            self.lost.len(),
            self.duplicated.len(),
            self.altered.len()
        )?;
        for (what, ids) in
            [("lost", &self.lost), ("duplicated", &self.duplicated), ("altered", &self.altered)]
        {
            if !ids.is_empty() {
                write!(f, "; {what}: {:?}", &ids[..ids.len().min(5)])?;
            }
        }
        Ok(())
    }
}

/// The invariants of a loaded state beyond what loading checks.
pub fn check_state(v: &Versioned) {
    let s = &v.state;
    assert!(v.version >= 1, "version {}", v.version);
    if let Some(w) = &s.window {
        assert!(w.from < w.to, "window {w:?}");
        if let Some(p) = w.position {
            assert!(p >= w.from && p < w.to, "position outside its window: {w:?}");
        }
    }
    if let Some(p) = &s.pending {
        assert!(!p.keys.is_empty(), "an intent without keys");
        assert!(p.keys.iter().all(|k| k.starts_with(PREFIX)), "{:?}", p.keys);
    }
    if let Some(w) = s.watermark {
        assert!(w <= Timestamp::now(), "watermark in the future: {w}");
    }
}

pub fn ago(minutes: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_mins(minutes)
}

/// The `id` of a delivered line (which must be a JSON object with a string id).
pub fn id_of(line: &str) -> String {
    // Most records start with their id, unescaped: skip the full parse for those.
    if let Some(rest) = line.strip_prefix(r#"{"id":""#)
        && let Some((id, _)) = rest.split_once('"')
        && !id.contains('\\')
    {
        return id.to_owned();
    }
    let value: Value = serde_json::from_str(line).unwrap();
    value["id"].as_str().unwrap().to_owned()
}

pub fn watermark(summary: &Value) -> Timestamp {
    summary["watermark"].as_str().unwrap().parse().unwrap()
}

/// `ok:<stop_reason>`, `error:<errorType>`, `timeout` or `crashed`.
pub fn outcome_kind(invocation: &Invocation) -> String {
    match &invocation.outcome {
        Outcome::Response(summary) => {
            format!("ok:{}", summary["stop_reason"].as_str().unwrap_or("?"))
        }
        Outcome::Error { error_type, .. } => format!("error:{error_type}"),
        Outcome::Timeout => "timeout".into(),
        Outcome::Crashed { .. } => "crashed".into(),
    }
}

/// The error of a failed invocation: `(errorType, errorMessage)`.
pub fn error_of(invocation: &Invocation) -> (String, String) {
    match &invocation.outcome {
        Outcome::Error { error_type, error_message } => (error_type.clone(), error_message.clone()),
        other => {
            panic!("expected a failed invocation, got {other:?}\n{}", invocation.logs.join("\n"))
        }
    }
}

pub use anthropic_compliance_collector::error::error_chain;

/// Prints one line of figures for the README's reliability table (visible with --nocapture).
pub fn report(class: &str, outcome: &str, audit: &Audit) {
    eprintln!(
        "RELIABILITY | {class} | {outcome} | served {} | delivered {} | lost {} | duplicated {}",
        audit.served,
        audit.unique_delivered,
        audit.lost.len(),
        audit.duplicated.len()
    );
}
