//! Bounded pages: a backlog where one activity in five is 40 KB, drained by the collector as a
//! 128 MB function (page body budget: a quarter of that, 32 MiB), once with pages that announce
//! their length and once with chunked pages that announce nothing. Measured: the drain is whole,
//! the process's peak RSS, and the `limit` of every page request with its status, read from the
//! simulator's own access log.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use testkit::fault_proxy::FaultProxy;

use crate::Error;
use crate::scenario::{Bench, Run, hours, invoke, progress, whole_second};
use crate::sim::SimOptions;

/// One activity in this many is large.
pub const LARGE_EVERY: u64 = 5;
/// The size a large activity is padded to.
pub const LARGE_BYTES: usize = 40 * 1024;
/// The function's memory in this scenario (the smallest that Lambda sells for this collector).
pub const MEMORY_MB: u32 = 128;

/// One drain of the large-record backlog.
pub struct PagesRun {
    pub chunked: bool,
    pub n: usize,
    pub run: Run,
    /// The `limit` and status of every page request, in order.
    pub limits: Vec<(u32, u16)>,
}

impl PagesRun {
    /// The requests answered 200 but refused (by length) or cut (chunked) for their size: every
    /// page request that a halving followed.
    pub fn refused(&self) -> u64 {
        self.run.num("pages_refused_too_large")
    }

    /// The limits asked for, run-length encoded: `5000, 2500 ×12`.
    pub fn limits_text(&self) -> String {
        let mut runs: Vec<(u32, usize)> = Vec::new();
        for (limit, _) in &self.limits {
            match runs.last_mut() {
                Some((l, n)) if l == limit => *n += 1,
                _ => runs.push((*limit, 1)),
            }
        }
        runs.iter()
            .map(|(l, n)| if *n == 1 { l.to_string() } else { format!("{l} ×{n}") })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Drains `n` activities (one in [`LARGE_EVERY`] of [`LARGE_BYTES`]) as a [`MEMORY_MB`] function.
pub async fn drain(
    bench: &mut Bench,
    n: usize,
    chunked: bool,
    seed: u64,
) -> Result<PagesRun, Error> {
    let how = if chunked { "chunked pages" } else { "pages with a content-length" };
    progress(&format!(
        "bounded pages: {n} activities, one in {LARGE_EVERY} of {} KiB, {how}, {MEMORY_MB} MB",
        LARGE_BYTES / 1024
    ));
    let t0 = whole_second(Timestamp::now());
    let options = SimOptions {
        seed,
        latency_ms: 0,
        rate_limit: 600,
        generate: Some((n, t0 - hours(24), t0 - SignedDuration::from_mins(10))),
        chunked,
        large_records: Some((LARGE_EVERY, LARGE_BYTES)),
    };
    let sim = bench.start_sim(&options).await?;
    let target =
        bench.target(&format!("pages-{}", if chunked { "chunked" } else { "length" })).await?;
    let aws_front = FaultProxy::start(bench.moto.endpoint()).await?;
    let mut env = bench.function_env(aws_front.endpoint(), &sim.base_url, &target, 25, 600);
    for (k, v) in &mut env {
        if k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
            *v = MEMORY_MB.to_string();
        }
    }
    bench.note_function(&format!("bounded pages ({how})"), &env, "{}");
    let mut function = bench.function(env)?;
    let run = invoke(&mut function, json!({})).await?;
    function.kill().await;
    if run.num("delivered") != n as u64 || run.text("stop_reason") != "caught_up" {
        return Err(
            format!("the large-record drain of {n} did not complete: {}", run.summary).into()
        );
    }
    let limits = sim
        .requests()
        .await?
        .into_iter()
        .filter_map(|(query, status)| {
            let limit = query.split('&').find_map(|p| p.strip_prefix("limit="))?;
            Some((limit.parse().ok()?, status))
        })
        .collect();
    let out = PagesRun { chunked, n, run, limits };
    progress(&format!(
        "bounded pages: {} delivered, peak RSS {:.1} MiB, limits {}",
        out.run.num("delivered"),
        out.run.sample.peak_rss_mib(),
        out.limits_text()
    ));
    Ok(out)
}
