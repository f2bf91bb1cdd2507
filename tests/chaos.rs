//! The randomised chaos test: seeded fault schedules over the simulator and moto, each checked
//! for loss and duplicates at the object level.
//!
//! A schedule is one deployment (its own simulator, bucket, table, secret and fault proxy over
//! the shared moto) and a few steps drawn from its seed. A step is one invocation (or two at
//! once) under some mix of: API faults from the simulator's seeded schedule (transient-heavy),
//! AWS faults (the proxy's seeded random mode, or one scripted rule: S3 `SlowDown`/500/late
//! writes/dropped answers, DynamoDB throttling, conditional-check failures and dropped answers,
//! Secrets Manager and CloudWatch 500s), a `kill -9` at a random moment, a short Lambda
//! deadline, a second invocation at the same moment, a fresh sandbox. Between steps new
//! activities arrive and some are indexed late. Then every fault is cleared and healthy runs
//! must catch up fully, and the audit counts, line by line over every activity object, what
//! was lost and what was delivered twice. The state item must load after every step.
//!
//! `CHAOS_SEED` (default [`DEFAULT_SEED`]) and `CHAOS_RUNS` (default [`DEFAULT_RUNS`]) choose the
//! schedules: schedule `i` uses seed `CHAOS_SEED + i`. A failure prints its seed; `make chaos
//! SEED=<seed> RUNS=1` replays it (timing is real, so a replay meets the same faults in the same
//! order but not always at the same instants). `CHAOS_PARALLEL` (default 32) bounds how many
//! schedules run at once (they mostly wait: on back-off, on leases, on deadlines).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_sim::{Fault, GenerateSpec};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::fault_proxy::{AwsService, FaultAction, FaultRule, RandomFaults};
use testkit::lambda::LambdaFunction;

use crate::support::*;

const DEFAULT_SEED: u64 = 0x00C4_A05E;
const DEFAULT_RUNS: u64 = 200;
const DEFAULT_PARALLEL: usize = 32;
/// Re-read window of the chaos deployments: activities indexed later than this are not
/// guaranteed (they are counted, and excused from the loss count).
const OVERLAP_SECONDS: i64 = 20;

#[derive(Debug, Default, Clone)]
struct Figures {
    schedules: u64,
    served: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    altered: u64,
    invocations: u64,
    outcomes: BTreeMap<String, u64>,
    api_faults: u64,
    aws_faults: u64,
    kills: u64,
    concurrent_pairs: u64,
    short_deadlines: u64,
    late_within_overlap: u64,
    late_beyond_overlap: u64,
    late_beyond_delivered: u64,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.schedules += other.schedules;
        self.served += other.served;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.altered += other.altered;
        self.invocations += other.invocations;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.api_faults += other.api_faults;
        self.aws_faults += other.aws_faults;
        self.kills += other.kills;
        self.concurrent_pairs += other.concurrent_pairs;
        self.short_deadlines += other.short_deadlines;
        self.late_within_overlap += other.late_within_overlap;
        self.late_beyond_overlap += other.late_beyond_overlap;
        self.late_beyond_delivered += other.late_beyond_delivered;
    }

    /// Counts an invocation's outcome under the kind of step it was (`run`, `kill`, `deadline`,
    /// `pair`, `healthy`).
    fn outcome(&mut self, step: &str, invocation: &testkit::lambda::Invocation) -> String {
        self.invocations += 1;
        let kind = format!("{step} {}", outcome_kind(invocation));
        *self.outcomes.entry(kind.clone()).or_default() += 1;
        kind
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}"))
        }
        _ => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fault_schedules_lose_and_duplicate_nothing() {
    let base = env_u64("CHAOS_SEED", DEFAULT_SEED);
    let runs = env_u64("CHAOS_RUNS", DEFAULT_RUNS);
    let parallel = env_u64("CHAOS_PARALLEL", DEFAULT_PARALLEL as u64).max(1) as usize;
    eprintln!(
        "chaos: {runs} schedules from seed {base} ({parallel} at a time); replay one with `make chaos SEED=<seed> RUNS=1`"
    );
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut set = tokio::task::JoinSet::new();
    let mut seeds = BTreeMap::new();
    for i in 0..runs {
        let seed = base.wrapping_add(i);
        let permits = Arc::clone(&permits);
        let handle = set.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            schedule(seed).await
        });
        seeds.insert(handle.id(), seed);
    }
    let mut total = Figures::default();
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next_with_id().await {
        match joined {
            Ok((_, Ok(figures))) => total.add(&figures),
            Ok((id, Err(problem))) => failures.push((seeds[&id], problem)),
            Err(e) => {
                let seed = seeds[&e.id()];
                let message = match e.try_into_panic() {
                    Ok(payload) => payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "panic".into()),
                    Err(e) => e.to_string(),
                };
                failures.push((seed, message));
            }
        }
    }
    eprintln!(
        "CHAOS | schedules {} | activities served {} | delivered {} | lost {} | duplicated {} | altered {} | \
         invocations {} | API faults {} | AWS faults {} | kills {} | concurrent pairs {} | short deadlines {} | \
         indexed late within the overlap {} | later than the overlap (not guaranteed) {}, delivered anyway {} | {:.0} s",
        total.schedules,
        total.served,
        total.delivered,
        total.lost,
        total.duplicated,
        total.altered,
        total.invocations,
        total.api_faults,
        total.aws_faults,
        total.kills,
        total.concurrent_pairs,
        total.short_deadlines,
        total.late_within_overlap,
        total.late_beyond_overlap,
        total.late_beyond_delivered,
        started.elapsed().as_secs_f64()
    );
    eprintln!("CHAOS | outcomes {:?}", total.outcomes);
    failures.sort();
    for (seed, problem) in &failures {
        eprintln!("CHAOS FAILURE seed {seed} (replay: make chaos SEED={seed} RUNS=1): {problem}");
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} schedules failed; seeds {:?} (replay: make chaos SEED=<seed> RUNS=1)",
        failures.len(),
        failures.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
}

/// One schedule: its steps, the healthy catch-up, the audit. `Err` says what went wrong. The
/// random draws happen in a fixed order (setup, then per step: faults, action, arrivals), so a
/// seed replays the same schedule.
async fn schedule(seed: u64) -> Result<Figures, String> {
    let mut chaos = Schedule::set_up(seed).await;
    let steps = chaos.rng.usize(2..5);
    for step in 0..steps {
        chaos.inject_faults().await;
        chaos.act().await;
        chaos.end_step(step).await?;
        chaos.arrivals();
    }
    chaos.heal();
    let last = chaos.catch_up().await?;
    chaos.audit(&last).await?;
    Ok(chaos.figures)
}

/// A schedule in progress: its stack, its random source, what it did and what it hid.
struct Schedule {
    seed: u64,
    rng: fastrand::Rng,
    stack: Stack,
    /// A second function for concurrent pairs, made on first use.
    other: Option<LambdaFunction>,
    figures: Figures,
    trail: Vec<String>,
    began: Instant,
    /// Activities not indexed yet, and those indexed later than the overlap (not guaranteed).
    hidden: Vec<String>,
    excused: HashSet<String>,
}

impl Schedule {
    /// A stack with a backlog of one page, or (two schedules in five) of two or three pages.
    async fn set_up(seed: u64) -> Schedule {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut options = Options::small_pages()
            .with_env("OVERLAP_SECONDS", OVERLAP_SECONDS.to_string())
            .with_env("INITIAL_LOOKBACK_HOURS", "1")
            .with_env("RUST_LOG", "info");
        options.sim.seed = seed;
        options.sim.latency = Duration::from_millis(rng.u64(0..60));
        let began = Instant::now();
        let stack = Stack::new(options).await;
        let trail = vec![format!("setup {:.1}s", began.elapsed().as_secs_f64())];
        let backlog = if rng.u8(..5) < 2 { rng.usize(1100..2600) } else { rng.usize(100..700) };
        stack.sim.generate(&GenerateSpec {
            count: backlog,
            from: Timestamp::now() - SignedDuration::from_mins(55),
            to: Timestamp::now() - SignedDuration::from_secs(5),
            hidden: false,
        });
        Schedule {
            seed,
            rng,
            stack,
            other: None,
            figures: Figures { schedules: 1, ..Figures::default() },
            trail,
            began,
            hidden: Vec::new(),
            excused: HashSet::new(),
        }
    }

    /// This step's faults: API faults (left queued if not all taken), random or ruled AWS
    /// faults, and now and then a cold start.
    async fn inject_faults(&mut self) {
        let rng = &mut self.rng;
        if rng.f32() < 0.6 {
            let slots = Fault::random_schedule(rng.u64(..), rng.usize(1..7));
            self.figures.api_faults += slots.iter().flatten().count() as u64;
            self.trail.push(format!("api {slots:?}"));
            self.stack.sim.push_schedule(slots);
        }
        if rng.f32() < 0.3 {
            let rate = 0.05 + rng.f64() * 0.25;
            self.trail.push(format!("aws random {rate:.2}"));
            self.stack.proxy.set_random(Some(RandomFaults { seed: rng.u64(..), rate }));
        }
        if rng.f32() < 0.3 {
            let rule = aws_rule(rng);
            self.trail.push(format!("aws {rule:?}"));
            self.stack.proxy.push(rule);
        }
        if rng.f32() < 0.1 {
            self.stack.function.kill().await;
            self.trail.push("cold".into());
        }
    }

    /// This step's action: a run, a run killed, a run with a short deadline, or two at once.
    async fn act(&mut self) {
        let kind = self.rng.u8(..100);
        if kind < 35 {
            self.run().await;
        } else if kind < 60 {
            self.killed_run().await;
        } else if kind < 80 {
            self.short_deadline_run().await;
        } else {
            self.two_at_once().await;
        }
    }

    async fn run(&mut self) {
        let timeout = step_timeout(&mut self.rng);
        self.trail.push(format!("run {timeout:?}"));
        let run = invoke(&mut self.stack.function, json!({}), timeout).await;
        self.trail.push(self.figures.outcome("run", &run));
    }

    async fn killed_run(&mut self) {
        let delay = Duration::from_millis(self.rng.u64(20..1500));
        self.trail.push(format!("kill after {delay:?}"));
        let function = &mut self.stack.function;
        if !function.is_warm() {
            invoke(function, json!({"action": "none"}), LONG).await;
        }
        let pid = function.pid();
        let run = invoke(function, json!({}), LONG);
        let kill = async {
            tokio::time::sleep(delay).await;
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        };
        let (run, ()) = tokio::join!(run, kill);
        self.figures.kills += 1;
        self.trail.push(self.figures.outcome("kill", &run));
    }

    async fn short_deadline_run(&mut self) {
        let timeout = Duration::from_millis(self.rng.u64(3000..8000));
        self.trail.push(format!("deadline {timeout:?}"));
        let run = invoke(&mut self.stack.function, json!({}), timeout).await;
        self.figures.short_deadlines += 1;
        self.trail.push(self.figures.outcome("deadline", &run));
        if matches!(run.outcome, testkit::lambda::Outcome::Timeout)
            && std::env::var("CHAOS_VERBOSE").is_ok_and(|v| v == "1")
        {
            eprintln!(
                "chaos: seed {}: deadline {timeout:?} timed out; trail {:?}\n{}",
                self.seed,
                self.trail,
                tail(&run.logs)
            );
        }
    }

    async fn two_at_once(&mut self) {
        let (ta, tb) = (step_timeout(&mut self.rng), step_timeout(&mut self.rng));
        self.trail.push(format!("two at once {ta:?} {tb:?}"));
        let stack = &mut self.stack;
        let second = self.other.get_or_insert_with(|| stack.another_function());
        let (a, b) =
            tokio::join!(invoke(&mut stack.function, json!({}), ta), invoke(second, json!({}), tb));
        self.figures.concurrent_pairs += 1;
        self.trail.push(self.figures.outcome("pair", &a));
        self.trail.push(self.figures.outcome("pair", &b));
    }

    /// Faults off after a step; every outcome so far documented; the state item valid whatever
    /// happened.
    async fn end_step(&mut self, step: usize) -> Result<(), String> {
        self.stack.proxy.set_random(None);
        self.stack.proxy.clear();
        self.trail.push(format!("@{:.1}s", self.began.elapsed().as_secs_f64()));
        for kind in self.figures.outcomes.keys() {
            if let Some((_, t)) = kind.split_once(" error:")
                && !is_stable_error_type(t)
            {
                let trail = &self.trail;
                return Err(format!("step {step}: undocumented errorType {t}; trail {trail:?}"));
            }
        }
        check_state_loads(&self.stack)
            .await
            .map_err(|e| format!("step {step}: {e}; trail {:?}", self.trail))
    }

    /// The previous step's late ones get indexed; new ones arrive, some not indexed yet.
    fn arrivals(&mut self) {
        reveal(&self.stack, &mut self.hidden, &mut self.excused, &mut self.figures);
        let now = Timestamp::now();
        self.stack.sim.generate(&GenerateSpec {
            count: self.rng.usize(0..150),
            from: now - SignedDuration::from_secs(10),
            to: now - SignedDuration::from_secs(1),
            hidden: false,
        });
        if self.rng.f32() < 0.4 {
            self.hidden.extend(self.stack.sim.generate(&GenerateSpec {
                count: self.rng.usize(1..40),
                from: now - SignedDuration::from_secs(15),
                to: now - SignedDuration::from_secs(1),
                hidden: true,
            }));
        }
    }

    /// Every fault off, and the last late ones indexed.
    fn heal(&mut self) {
        let left = self.stack.sim.clear_faults();
        self.figures.api_faults -= left.iter().flatten().count() as u64;
        self.figures.aws_faults += self.stack.proxy.injected().len() as u64;
        self.stack.proxy.clear();
        reveal(&self.stack, &mut self.hidden, &mut self.excused, &mut self.figures);
        self.trail.push(format!("healthy from @{:.1}s", self.began.elapsed().as_secs_f64()));
    }

    /// Healthy runs until one catches up with no intent left; its summary.
    async fn catch_up(&mut self) -> Result<Value, String> {
        for _ in 0..6 {
            let run = invoke(&mut self.stack.function, json!({}), LONG).await;
            let kind = outcome_kind(&run);
            self.trail.push(self.figures.outcome("healthy", &run));
            let Some(summary) = run.outcome.response().cloned() else {
                return Err(format!(
                    "a healthy run failed: {kind}; trail {:?}\n{}",
                    self.trail,
                    tail(&run.logs)
                ));
            };
            let done = matches!(summary["stop_reason"].as_str(), Some("caught_up" | "nothing_new"));
            if done && self.stack.state().await.is_some_and(|s| s.state.pending.is_none()) {
                return Ok(summary);
            }
        }
        Err(format!("healthy runs did not catch up; trail {:?}", self.trail))
    }

    /// Nothing lost, duplicated or altered, up to the last healthy run's watermark.
    async fn audit(&mut self, last: &Value) -> Result<(), String> {
        self.trail.push(format!("audit from @{:.1}s", self.began.elapsed().as_secs_f64()));
        let audit = self.stack.audit(watermark(last), &self.excused).await;
        let delivered: HashSet<String> = self.stack.delivered().await.into_iter().collect();
        let figures = &mut self.figures;
        figures.late_beyond_delivered +=
            self.excused.iter().filter(|id| delivered.contains(*id)).count() as u64;
        figures.served += audit.served as u64;
        figures.delivered += audit.unique_delivered as u64;
        figures.lost += audit.lost.len() as u64;
        figures.duplicated += audit.duplicated.len() as u64;
        figures.altered += audit.altered.len() as u64;
        if !audit.is_clean() {
            return Err(format!("{audit}; trail {:?}", self.trail));
        }
        if std::env::var("CHAOS_VERBOSE").is_ok_and(|v| v == "1") {
            eprintln!(
                "chaos: seed {}: {:.1} s, {audit}; trail {:?}; outcomes {:?}",
                self.seed,
                self.began.elapsed().as_secs_f64(),
                self.trail,
                figures.outcomes
            );
        }
        Ok(())
    }
}

/// The time a step's run gets: half the time enough to wait out a dead writer's 25 s lease,
/// half the time not (it then stops at once with `lease_held`), so steps after a crash go on.
fn step_timeout(rng: &mut fastrand::Rng) -> Duration {
    if rng.bool() { LONG } else { Duration::from_secs(rng.u64(12..27)) }
}

/// Whether `error_type` is one of the stable `errorType` values of `src/error.rs` (read from
/// its source: the `=> "Name"` arms of `RunError::error_type`), so a new one needs no edit here.
fn is_stable_error_type(error_type: &str) -> bool {
    const SOURCE: &str = include_str!("../src/error.rs");
    SOURCE
        .lines()
        .filter_map(|l| l.split_once("=> \""))
        .any(|(_, rest)| rest.split_once('"').is_some_and(|(name, _)| name == error_type))
}

async fn check_state_loads(stack: &Stack) -> Result<(), String> {
    let loaded = tokio::spawn({
        let clients = stack.clients.clone();
        let table = stack.table.clone();
        async move {
            use anthropic_compliance_collector::state::StateStore;
            let store = anthropic_compliance_collector::state::dynamodb::DynamoStore::new(
                clients.dynamodb,
                &table,
            );
            store
                .load(anthropic_compliance_collector::state::LIVE_STREAM)
                .await
                .map_err(|e| error_chain(&e))
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    match loaded? {
        Some(v) => std::panic::catch_unwind(|| check_state(&v))
            .map_err(|_| format!("the state item breaks an invariant: {v:?}")),
        None => Ok(()),
    }
}

/// Indexes the hidden activities; those now later than the overlap are excused (the contract
/// does not cover them) and counted.
fn reveal(
    stack: &Stack,
    hidden: &mut Vec<String>,
    excused: &mut HashSet<String>,
    figures: &mut Figures,
) {
    if hidden.is_empty() {
        return;
    }
    let now = Timestamp::now();
    let guaranteed_after = now - SignedDuration::from_secs(OVERLAP_SECONDS - 2);
    let ids: HashSet<&str> = hidden.iter().map(String::as_str).collect();
    for a in stack.sim.activities().iter().filter(|a| ids.contains(a.id.as_str())) {
        if a.created_at < guaranteed_after {
            excused.insert(a.id.clone());
            figures.late_beyond_overlap += 1;
        } else {
            figures.late_within_overlap += 1;
        }
    }
    stack.sim.reveal_ids(hidden);
    hidden.clear();
}

/// One scripted AWS fault.
fn aws_rule(rng: &mut fastrand::Rng) -> FaultRule {
    use AwsService::*;
    let times = rng.u32(1..5);
    let after = rng.u32(0..3);
    match rng.u8(..12) {
        0 => FaultRule::new(S3, "PutObject", FaultAction::s3_slow_down()).times(times),
        1 => FaultRule::new(S3, "PutObject", FaultAction::s3_internal_error())
            .times(times)
            .after(after),
        2 => FaultRule::new(S3, "PutObject", FaultAction::Drop).after(after),
        // slower than the collector's 10 s put timeout: the write lands after it gave up
        3 => FaultRule::new(
            S3,
            "PutObject",
            FaultAction::Delay(Duration::from_millis(rng.u64(10_500..12_500))),
        ),
        4 => FaultRule::new(S3, "GetObject", FaultAction::s3_internal_error()).times(times),
        5 => FaultRule::new(DynamoDb, "PutItem", FaultAction::dynamodb_throttled())
            .times(times)
            .after(after),
        6 => FaultRule::new(DynamoDb, "PutItem", FaultAction::dynamodb_conditional_check_failed())
            .after(after),
        7 => FaultRule::new(DynamoDb, "PutItem", FaultAction::Drop).after(after),
        8 => FaultRule::new(DynamoDb, "GetItem", FaultAction::dynamodb_throttled()).times(times),
        9 => {
            FaultRule::new(SecretsManager, "GetSecretValue", FaultAction::internal_service_error())
                .times(times)
        }
        10 => FaultRule::new(CloudWatch, "PutMetricData", FaultAction::internal_service_error())
            .times(times),
        _ => FaultRule::new(
            S3,
            "PutObject",
            FaultAction::DelayAnswer(Duration::from_millis(rng.u64(200..2000))),
        ),
    }
}

fn tail(logs: &[String]) -> String {
    logs[logs.len().saturating_sub(15)..].join("\n")
}
