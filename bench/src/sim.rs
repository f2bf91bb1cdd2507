//! The compliance simulator as its own process (the `compliance-sim` release binary), so that its
//! memory and CPU are never counted as the collector's, driven through its `/_sim/` endpoints.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Error;

/// The key the simulator accepts and the secret holds.
pub const API_KEY: &str = "sk-ant-api01-bench-key-never-logged";

/// How the simulator is started.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub latency_ms: u64,
    pub rate_limit: u32,
    /// Activities generated before it serves: `(count, from, to)`.
    pub generate: Option<(usize, Timestamp, Timestamp)>,
    /// `--chunked`: pages without a `content-length`.
    pub chunked: bool,
    /// `--large-records EVERY:BYTES`.
    pub large_records: Option<(u64, usize)>,
}

impl SimOptions {
    /// The command-line arguments, as BENCHMARKS.md shows them.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--seed".to_owned(),
            self.seed.to_string(),
            "--api-key".to_owned(),
            API_KEY.to_owned(),
            "--rate-limit".to_owned(),
            self.rate_limit.to_string(),
            "--latency-ms".to_owned(),
            self.latency_ms.to_string(),
        ];
        if self.chunked {
            args.push("--chunked".to_owned());
        }
        if let Some((every, bytes)) = self.large_records {
            args.extend(["--large-records".to_owned(), format!("{every}:{bytes}")]);
        }
        if let Some((count, from, to)) = &self.generate {
            args.extend([
                "--generate".to_owned(),
                count.to_string(),
                "--from".to_owned(),
                from.to_string(),
                "--to".to_owned(),
                to.to_string(),
            ]);
        }
        args
    }
}

/// A running simulator; killed when dropped.
pub struct SimProcess {
    /// Held for its `kill_on_drop`.
    _child: Child,
    pub base_url: String,
    http: reqwest::Client,
    /// How long it took to generate its data and listen.
    pub ready_in: Duration,
}

impl SimProcess {
    pub async fn start(binary: &Path, options: &SimOptions) -> Result<SimProcess, Error> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(options.args())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("the simulator's stdout was not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        // Generating a million activities takes a while before it listens.
        let line = tokio::time::timeout(Duration::from_secs(900), lines.next_line())
            .await
            .map_err(|_| "the simulator did not listen within 900 s")??
            .ok_or("the simulator exited before listening")?;
        let base_url = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the simulator: {line}"))?
            .to_owned();
        // Keep draining stdout so the simulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(SimProcess { _child: child, base_url, http, ready_in: started.elapsed() })
    }

    /// `POST /_sim/generate`: adds `count` visible activities in `[from, to)`.
    pub async fn generate(
        &self,
        count: usize,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<usize, Error> {
        let body = json!({"count": count, "from": from, "to": to, "hidden": false});
        let response = self
            .http
            .post(format!("{}/_sim/generate", self.base_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?
            .error_for_status()?;
        let answer: Value = serde_json::from_slice(&response.bytes().await?)?;
        Ok(answer["ids"].as_array().map_or(0, Vec::len))
    }

    /// `GET /_sim/requests`: the query string and status of every API request answered, in order.
    pub async fn requests(&self) -> Result<Vec<(String, u16)>, Error> {
        let response = self
            .http
            .get(format!("{}/_sim/requests", self.base_url))
            .send()
            .await?
            .error_for_status()?;
        let answer: Value = serde_json::from_slice(&response.bytes().await?)?;
        let records = answer.as_array().ok_or("/_sim/requests is not a list")?;
        Ok(records
            .iter()
            .map(|r| {
                let query = r["query"].as_str().unwrap_or_default().to_owned();
                let status = r["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
                (query, status)
            })
            .collect())
    }
}
