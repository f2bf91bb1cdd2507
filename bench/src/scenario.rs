//! The scenarios: each starts what it needs (a simulator process, a bucket and a table in the
//! shared moto), runs the collector's release binary through the Lambda Runtime API, and measures
//! the collector's process from outside.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::aws::{self, Clients};
use testkit::fault_proxy::{AwsService, FaultProxy};
use testkit::lambda::{LambdaFunction, Outcome};
use testkit::moto::Moto;

use crate::Error;
use crate::cost::{self, RunProfile};
use crate::procfs::{self, ProcSample};
use crate::proxy::TimingProxy;
use crate::sim::{self, SimOptions, SimProcess};

pub const PREFIX: &str = "anthropic/activity/";
pub const NAMESPACE: &str = "AnthropicComplianceBench";
/// `FunctionMemoryMB` in template.yaml.
pub const MEMORY_MB: u32 = 256;
/// The longest a Lambda function may run: a drain is one invocation.
pub const TIMEOUT: Duration = Duration::from_secs(900);
/// Typical scheduled runs measured for the cost figures.
pub const TYPICAL_RUNS: usize = 3;
/// 100,000 activities a day over 288 runs a day.
pub const PER_RUN: usize = 347;
/// Cold starts timed for the start-up figure.
pub const STARTUPS: usize = 10;

/// What every scenario shares: the binaries, moto, the secret, and the commands run.
pub struct Bench {
    pub collector: PathBuf,
    pub sim: PathBuf,
    pub moto: Moto,
    pub clients: Clients,
    pub secret: String,
    pub commands: Vec<String>,
}

/// The bucket and table of one scenario, and the function's name.
#[derive(Debug, Clone)]
pub struct Target {
    pub bucket: String,
    pub table: String,
    pub function_name: String,
}

/// One invocation as measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub summary: Value,
    /// From the invoke (the spawn, on a cold start) to the response.
    pub wall: Duration,
    /// The process right after the invocation, still warm.
    pub sample: ProcSample,
    pub log_bytes: usize,
}

impl Run {
    pub fn num(&self, field: &str) -> u64 {
        self.summary[field].as_u64().unwrap_or(0)
    }

    pub fn text(&self, field: &str) -> &str {
        self.summary[field].as_str().unwrap_or("")
    }
}

impl Bench {
    pub async fn target(&self, label: &str) -> Result<Target, Error> {
        let target = Target {
            bucket: testkit::unique_name(&format!("bench-{label}")),
            table: testkit::unique_name(&format!("bench-{label}")),
            function_name: format!("bench-{label}"),
        };
        aws::create_bucket(&self.clients.s3, &target.bucket).await?;
        aws::create_state_table(&self.clients.dynamodb, &target.table).await?;
        Ok(target)
    }

    /// The function's environment: what template.yaml sets, pointed at local services.
    pub fn function_env(
        &self,
        aws_endpoint: &str,
        api_url: &str,
        target: &Target,
        lookback_hours: u32,
        requests_per_minute: u32,
    ) -> Vec<(String, String)> {
        let mut env = aws::env_for(aws_endpoint);
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", target.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string()),
            // template.yaml: LoggingConfig JSON, ApplicationLogLevel INFO.
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
            ("API_KEY_SECRET_ID", self.secret.clone()),
            ("STATE_TABLE", target.table.clone()),
            ("OUTPUT_BUCKET", target.bucket.clone()),
            ("OUTPUT_PREFIX", PREFIX.into()),
            ("METRIC_NAMESPACE", NAMESPACE.into()),
            ("API_BASE_URL", api_url.into()),
            ("INITIAL_LOOKBACK_HOURS", lookback_hours.to_string()),
            ("MAX_REQUESTS_PER_MINUTE", requests_per_minute.to_string()),
        ] {
            env.push((k.to_owned(), v));
        }
        env
    }

    pub fn function(&self, env: Vec<(String, String)>) -> Result<LambdaFunction, Error> {
        Ok(LambdaFunction::start(self.collector.clone(), env)?)
    }

    pub async fn start_sim(&mut self, options: &SimOptions) -> Result<SimProcess, Error> {
        self.commands.push(format!("target/release/compliance-sim {}", options.args().join(" ")));
        let sim = SimProcess::start(&self.sim, options).await?;
        progress(&format!(
            "simulator ready in {:.1} s at {}",
            sim.ready_in.as_secs_f64(),
            sim.base_url
        ));
        Ok(sim)
    }

    pub fn note_function(&mut self, what: &str, env: &[(String, String)], payloads: &str) {
        let shown: Vec<String> = env
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "INITIAL_LOOKBACK_HOURS"
                        | "MAX_REQUESTS_PER_MINUTE"
                        | "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
                )
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.commands.push(format!(
            "# {what}: target/release/anthropic-compliance-collector through the Runtime API, {} (other variables: defaults), payloads {payloads}",
            shown.join(" ")
        ));
    }
}

/// Invokes and measures the process while it is still warm.
pub async fn invoke(function: &mut LambdaFunction, payload: Value) -> Result<Run, Error> {
    let invocation = function.invoke(payload.clone(), TIMEOUT).await?;
    let pid = function.pid().ok_or("the function's process is gone after the invocation")?;
    let sample = procfs::sample(pid)?;
    match invocation.outcome {
        Outcome::Response(summary) => Ok(Run {
            summary,
            wall: invocation.duration,
            sample,
            log_bytes: invocation.logs.iter().map(|l| l.len() + 1).sum(),
        }),
        other => {
            let tail = invocation.logs.len().saturating_sub(20);
            Err(format!(
                "invocation {payload} failed: {other:?}\n{}",
                invocation.logs[tail..].join("\n")
            )
            .into())
        }
    }
}

pub fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

pub fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

pub fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

// ---- drain: the first live run over a week of backlog, then a run with nothing new ----

pub struct Drain {
    pub n: usize,
    pub sim: SimProcess,
    pub target: Target,
    pub first: Run,
    pub steady: Run,
    /// The largest RSS (KiB) in each tenth of the first run.
    pub rss_tenths: Vec<u64>,
}

pub async fn drain(bench: &mut Bench, n: usize, seed: u64) -> Result<Drain, Error> {
    progress(&format!("drain: generating {n} activities over 7 days"));
    let t0 = whole_second(Timestamp::now());
    let options = SimOptions {
        seed,
        latency_ms: 0,
        rate_limit: 600,
        generate: Some((n, t0 - hours(168), t0 - SignedDuration::from_mins(10))),
        chunked: false,
        large_records: None,
    };
    let sim = bench.start_sim(&options).await?;
    let target = bench.target(&format!("drain-{n}")).await?;
    // AWS endpoints keep connections open; moto's werkzeug server closes each one after a single
    // answer, and a TCP connection per call would be CPU the collector never spends in a Region.
    // testkit's proxy (idle, in the bench's own process) keeps the collector's connections open.
    let aws_front = FaultProxy::start(bench.moto.endpoint()).await?;
    let env = bench.function_env(aws_front.endpoint(), &sim.base_url, &target, 169, 600);
    bench.note_function(&format!("drain {n}"), &env, "{} then {}");
    let mut function = bench.function(env)?;
    progress("drain: first run (cold start)");
    let trace = procfs::RssTrace::start("anthropic-compliance-collector");
    let first = invoke(&mut function, json!({})).await;
    let rss_tenths = procfs::rss_by_tenth(&trace.finish().await);
    let first = first?;
    if first.num("delivered") != n as u64 || first.text("stop_reason") != "caught_up" {
        return Err(format!("the drain of {n} did not complete: {}", first.summary).into());
    }
    progress(&format!(
        "drain: {} delivered in {:.1} s, {} requests; steady-state run",
        first.num("delivered"),
        first.wall.as_secs_f64(),
        first.num("requests")
    ));
    // Windows are whole seconds: a run within the same second would have nothing to ask for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady = invoke(&mut function, json!({})).await?;
    function.kill().await;
    Ok(Drain { n, sim, target, first, steady, rss_tenths })
}

// ---- start-up: spawn to the first API request, through timing relays ----

/// One cold start: from the spawn to the first AWS request and to the first API request.
#[derive(Debug, Clone, Copy)]
pub struct Startup {
    pub first_aws: Option<Duration>,
    pub first_api: Duration,
    /// The whole process after its one run: cold start plus a run with nothing new.
    pub sample: ProcSample,
}

pub async fn startup(bench: &mut Bench, drain: &Drain) -> Result<Vec<Startup>, Error> {
    progress(&format!("start-up: {STARTUPS} cold starts"));
    let api = TimingProxy::start(&drain.sim.base_url).await?;
    let aws_relay = TimingProxy::start(bench.moto.endpoint()).await?;
    let env = bench.function_env(&aws_relay.url, &api.url, &drain.target, 169, 600);
    bench.note_function("start-up (after the 100k drain)", &env, "{}");
    let mut out = Vec::new();
    for _ in 0..STARTUPS {
        // A new second past the settle line, so that each run has a window to ask for.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut function = bench.function(env.clone())?;
        let spawned = Instant::now();
        let run = invoke(&mut function, json!({})).await?;
        function.kill().await;
        let first_api = api.first_after(spawned).ok_or("no API request reached the relay")?;
        out.push(Startup {
            first_aws: aws_relay.first_after(spawned).map(|t| t - spawned),
            first_api: first_api - spawned,
            sample: run.sample,
        });
        if run.num("requests") == 0 {
            return Err("a start-up run made no API request".into());
        }
    }
    Ok(out)
}

// ---- wall time: a backfill with 300 ms of latency on every response ----

pub struct Wall {
    pub rpm: u32,
    pub backfills: Vec<Run>,
}

impl Wall {
    pub fn requests(&self) -> u64 {
        self.backfills.iter().map(|r| r.num("requests")).sum()
    }

    pub fn delivered(&self) -> u64 {
        self.backfills.iter().map(|r| r.num("delivered")).sum()
    }

    pub fn wall(&self) -> Duration {
        self.backfills.iter().map(|r| r.wall).sum()
    }

    /// The least time the rate budget allows for these requests.
    pub fn bound(&self) -> Duration {
        Duration::from_secs_f64(self.requests() as f64 * 60.0 / f64::from(self.rpm))
    }

    /// The peak RSS over the backfill invocations (one process).
    pub fn sample(&self) -> Option<ProcSample> {
        self.backfills.last().map(|r| r.sample)
    }
}

/// The simulator of the wall-time scenarios: `n` activities over the week before `t0 - 1h`.
pub async fn latency_sim(
    bench: &mut Bench,
    n: usize,
    latency_ms: u64,
    seed: u64,
) -> Result<(SimProcess, Timestamp), Error> {
    progress(&format!("wall time: generating {n} activities, {latency_ms} ms latency"));
    let t0 = whole_second(Timestamp::now());
    let options = SimOptions {
        seed,
        latency_ms,
        rate_limit: 600,
        generate: Some((n, t0 - hours(169), t0 - hours(1))),
        chunked: false,
        large_records: None,
    };
    Ok((bench.start_sim(&options).await?, t0))
}

pub async fn wall(
    bench: &mut Bench,
    sim: &SimProcess,
    t0: Timestamp,
    rpm: u32,
) -> Result<Wall, Error> {
    let target = bench.target(&format!("wall-{rpm}")).await?;
    let env = bench.function_env(bench.moto.endpoint(), &sim.base_url, &target, 1, rpm);
    let payload = json!({
        "action": "backfill",
        "from": (t0 - hours(170)).to_string(),
        "to": t0.to_string(),
    });
    bench.note_function(
        &format!("wall time, {rpm} requests/minute"),
        &env,
        &format!("{{}} then {payload}"),
    );
    let mut function = bench.function(env)?;
    // A backfill needs the live collection to have begun (it ends at the live origin).
    invoke(&mut function, json!({})).await?;
    progress(&format!("wall time: backfill at MAX_REQUESTS_PER_MINUTE={rpm}"));
    let mut backfills = Vec::new();
    for _ in 0..5 {
        let run = invoke(&mut function, payload.clone()).await?;
        let again = matches!(run.text("stop_reason"), "deadline" | "rate_limited" | "lease_held");
        backfills.push(run);
        if !again {
            break;
        }
    }
    function.kill().await;
    let result = Wall { rpm, backfills };
    progress(&format!(
        "wall time: {} delivered, {} requests in {:.1} s (bound {:.1} s)",
        result.delivered(),
        result.requests(),
        result.wall().as_secs_f64(),
        result.bound().as_secs_f64()
    ));
    Ok(result)
}

// ---- typical scheduled runs: 347 new activities each, for the monthly cost ----

pub struct Typical {
    pub cold: Run,
    pub runs: Vec<Run>,
    pub profile: RunProfile,
    pub item_bytes: usize,
    /// AWS requests per run by service and operation (averaged).
    pub operations: BTreeMap<String, f64>,
}

pub async fn typical(bench: &mut Bench, sim: &SimProcess) -> Result<Typical, Error> {
    progress(&format!("typical runs: {TYPICAL_RUNS} scheduled runs of {PER_RUN} new activities"));
    let counter = FaultProxy::start(bench.moto.endpoint()).await?;
    let target = bench.target("typical").await?;
    let env = bench.function_env(counter.endpoint(), &sim.base_url, &target, 1, 60);
    bench.note_function("typical scheduled runs", &env, "{}");
    // The last hour at 100,000 a day, so the overlap holds what it would in production.
    let now = Timestamp::now();
    sim.generate(100_000 / 24, now - hours(1), now - SignedDuration::from_secs(121)).await?;
    let mut function = bench.function(env)?;
    let cold = invoke(&mut function, json!({})).await?;
    let mut watermark: Timestamp = cold.text("watermark").parse()?;
    let mut runs = Vec::new();
    let mut totals: BTreeMap<(AwsService, String), f64> = BTreeMap::new();
    let mut item_bytes = 0;
    let mut wru = 0.0;
    let mut rru = 0.0;
    for _ in 0..TYPICAL_RUNS {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let now = Timestamp::now();
        sim.generate(PER_RUN, watermark, now - SignedDuration::from_secs(121)).await?;
        let before = counter.counts();
        let run = invoke(&mut function, json!({})).await?;
        let after = counter.counts();
        let item = aws::get_item(&bench.clients.dynamodb, &target.table, "live")
            .await?
            .ok_or("no live state item after a run")?;
        item_bytes = cost::dynamodb_item_bytes(&item);
        for (key, n) in &after {
            let delta = f64::from(n - before.get(key).copied().unwrap_or(0));
            *totals.entry(key.clone()).or_default() += delta;
            if key.0 == AwsService::DynamoDb {
                match key.1.as_str() {
                    "PutItem" | "UpdateItem" | "DeleteItem" => {
                        wru += delta * cost::write_units(item_bytes)
                    }
                    // Two units per item in a transaction; chunk items only beyond ~30,000 ids.
                    "TransactWriteItems" => wru += delta * 2.0 * cost::write_units(item_bytes),
                    "GetItem" => rru += delta * cost::read_units(item_bytes),
                    _ => {}
                }
            }
        }
        watermark = run.text("watermark").parse()?;
        runs.push(run);
    }
    function.kill().await;
    let k = runs.len().max(1) as f64;
    let per_run = |service: AwsService, op: &str| {
        totals.get(&(service, op.to_owned())).copied().unwrap_or(0.0) / k
    };
    let mut seconds: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
    seconds.sort_by(f64::total_cmp);
    let profile = RunProfile {
        seconds: seconds.get(seconds.len() / 2).copied().unwrap_or(0.0),
        memory_mb: f64::from(MEMORY_MB),
        s3_puts: per_run(AwsService::S3, "PutObject"),
        s3_gets: per_run(AwsService::S3, "GetObject") + per_run(AwsService::S3, "HeadObject"),
        dynamodb_wru: wru / k,
        dynamodb_rru: rru / k,
        put_metric_data: per_run(AwsService::CloudWatch, "PutMetricData"),
        // The key is cached for 5 minutes, the schedule's period: count one read per run.
        secret_calls: per_run(AwsService::SecretsManager, "GetSecretValue").max(1.0),
        log_bytes: runs.iter().map(|r| r.log_bytes as f64).sum::<f64>() / k,
    };
    let operations = totals.into_iter().map(|((s, op), n)| (format!("{s} {op}"), n / k)).collect();
    Ok(Typical { cold, runs, profile, item_bytes, operations })
}

/// The secret every scenario's function reads.
pub async fn create_secret(clients: &Clients) -> Result<String, Error> {
    let name = testkit::unique_name("bench-api-key");
    aws::put_secret(&clients.secretsmanager, &name, &json!({"api_key": sim::API_KEY}).to_string())
        .await?;
    Ok(name)
}
