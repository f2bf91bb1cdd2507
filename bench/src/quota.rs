//! Speed at the function's real size: a first live run of 5,000 activities with the collector's
//! process held to the CPU share Lambda gives a 128 MB and a 256 MB function (memory ÷ 1,769 MB
//! per vCPU), by a CFS quota on a cgroup of its own: cgroup v2 `cpu.max` where the machine has the
//! cpu controller there, else cgroup v1 `cpu.cfs_quota_us`. The process joins the cgroup before
//! it runs a line of the collector: the function's binary is a two-line shell script that writes
//! its own pid into `cgroup.procs` and `exec`s the release binary.
//!
//! "Before" is another build of the collector (`BENCH_BEFORE_COLLECTOR`: `make bench` builds the
//! commit before libdeflate, `BENCH_BEFORE_REV`, and passes it), measured the same way when given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use testkit::lambda::LambdaFunction;

use crate::Error;
use crate::cost::LAMBDA_MB_PER_VCPU;
use crate::scenario::{Bench, invoke, progress};
use crate::sim::SimOptions;

/// The run's size, and the memory sizes whose CPU share is applied.
pub const ACTIVITIES: usize = 5_000;
pub const MEMORY_SIZES: [u32; 2] = [128, 256];
/// CFS period; the quota is the share of it.
const PERIOD_US: u64 = 100_000;

/// One run under a quota.
#[derive(Debug, Clone)]
pub struct QuotaRun {
    pub build: String,
    pub memory_mb: u32,
    pub share: f64,
    pub wall: Duration,
    pub cpu: Duration,
    pub delivered: u64,
}

/// What the machine allows, and the runs.
#[derive(Debug, Clone)]
pub enum Quota {
    Measured { mechanism: String, runs: Vec<QuotaRun> },
    Unavailable(String),
}

/// A cgroup with a CPU quota, removed when dropped.
struct Cgroup {
    dir: PathBuf,
    mechanism: &'static str,
}

impl Cgroup {
    fn create(name: &str, share: f64) -> Result<Cgroup, String> {
        let quota_us = ((share * PERIOD_US as f64).round() as u64).max(1000);
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let v2_has_cpu =
            std::fs::read_to_string(v2).is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu"));
        let (dir, mechanism) = if v2_has_cpu {
            (PathBuf::from("/sys/fs/cgroup").join(name), "cgroup v2 cpu.max")
        } else if Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists() {
            (PathBuf::from("/sys/fs/cgroup/cpu").join(name), "cgroup v1 cpu.cfs_quota_us")
        } else {
            return Err("neither cgroup v2 with the cpu controller nor cgroup v1's cpu hierarchy is mounted".into());
        };
        if !dir.exists() {
            std::fs::create_dir(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let cgroup = Cgroup { dir, mechanism };
        let write = |file: &str, value: String| {
            std::fs::write(cgroup.dir.join(file), &value).map_err(|e| {
                format!("cannot write {value} to {}/{file}: {e}", cgroup.dir.display())
            })
        };
        if v2_has_cpu {
            write("cpu.max", format!("{quota_us} {PERIOD_US}"))?;
        } else {
            write("cpu.cfs_period_us", PERIOD_US.to_string())?;
            write("cpu.cfs_quota_us", quota_us.to_string())?;
        }
        Ok(cgroup)
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once the function's process has exited; a leftover directory is harmless.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The shell script that joins the cgroup and becomes the collector.
fn wrapper(dir: &Path, label: &str, procs: &Path, binary: &Path) -> Result<PathBuf, Error> {
    let path = dir.join(format!("quota-{label}.sh"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho $$ > '{}'\nexec '{}' \"$@\"\n", procs.display(), binary.display()),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(path)
}

/// Runs the scenario for the bench's collector and, when given, the "before" build.
pub async fn measure(bench: &mut Bench, seed: u64) -> Result<Quota, Error> {
    let mut builds = vec![("after (libdeflate)".to_owned(), bench.collector.clone())];
    if let Some(before) = std::env::var_os("BENCH_BEFORE_COLLECTOR").filter(|v| !v.is_empty()) {
        builds.push(("before (miniz_oxide)".to_owned(), PathBuf::from(before)));
    }
    let probe = match Cgroup::create("acc-bench-probe", 0.5) {
        Ok(c) => c.mechanism,
        Err(why) => return Ok(Quota::Unavailable(why)),
    };
    progress(&format!(
        "quota: {ACTIVITIES} activities at the CPU share of 128 and 256 MB ({probe})"
    ));
    let t0 = Timestamp::from_second(Timestamp::now().as_second())?;
    let options = SimOptions {
        seed,
        latency_ms: 0,
        rate_limit: 600,
        generate: Some((
            ACTIVITIES,
            t0 - SignedDuration::from_hours(2),
            t0 - SignedDuration::from_mins(10),
        )),
        chunked: false,
        large_records: None,
    };
    let sim = bench.start_sim(&options).await?;
    let scratch = std::env::temp_dir().join(testkit::unique_name("acc-bench-quota"));
    std::fs::create_dir_all(&scratch)?;
    let mut runs = Vec::new();
    for (b, (build, binary)) in builds.iter().enumerate() {
        for memory_mb in MEMORY_SIZES {
            let share = f64::from(memory_mb) / LAMBDA_MB_PER_VCPU;
            let label = format!("{b}-{memory_mb}");
            let cgroup = Cgroup::create(&format!("acc-bench-{label}"), share)?;
            let script = wrapper(&scratch, &label, &cgroup.procs(), binary)?;
            let target = bench.target(&format!("quota-{label}")).await?;
            let mut env = bench.function_env(bench.moto.endpoint(), &sim.base_url, &target, 3, 600);
            for (k, v) in &mut env {
                if k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
                    *v = memory_mb.to_string();
                }
            }
            let mut function = LambdaFunction::start(script, env)?;
            let run = invoke(&mut function, json!({})).await?;
            drop(function);
            runs.push(QuotaRun {
                build: build.clone(),
                memory_mb,
                share,
                wall: run.wall,
                cpu: run.sample.cpu,
                delivered: run.num("delivered"),
            });
            drop(cgroup);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(Quota::Measured { mechanism: probe.to_owned(), runs })
}
