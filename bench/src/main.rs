//! `make bench`: the collector's figures — memory, CPU against the gzip floor, start-up, requests,
//! wall time under latency, binary size and monthly cost — measured, printed one line each, and
//! written to BENCHMARKS.md with the machine, the commands and the date.
//!
//! Everything runs on 127.0.0.1: moto (testkit), the compliance simulator as its own process (the
//! `compliance-sim` release binary), and the collector's release binary run through the Lambda
//! Runtime API (testkit's `LambdaFunction`). The collector's process is measured from outside
//! (`/proc/<pid>`) right after each invocation, while it is still warm. `BENCH_QUICK=1` makes every
//! backlog ten times smaller; `BENCH_ONLY=drain` runs the large drain alone and prints its CPU,
//! then the detector's over its archive.

mod cost;
mod detector;
mod floor;
mod pages;
mod procfs;
mod proxy;
mod quota;
mod report;
mod scenario;
mod sim;

use std::fmt::Write as _;
use std::process::ExitCode;

use anthropic_compliance_collector::archive::encode::GZIP_LEVEL;
use anthropic_compliance_collector::feed::PAGE_LIMIT;
use anthropic_compliance_collector::sync::RunReport;
use anthropic_compliance_collector::telemetry::run_metrics;
use testkit::aws::Clients;
use testkit::moto::Moto;

use crate::cost::LevelCost;
use crate::floor::Floor;
use crate::procfs::Machine;
use crate::report::{Figure, Report, Verdict, thousands};
use crate::scenario::{Bench, Startup, Typical, Wall, progress};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The targets.
const PEAK_RSS_MIB: f64 = 48.0;
const CPU_OVER_FLOOR: f64 = 1.3;
const STARTUP_MS: f64 = 100.0;
const STEADY_REQUESTS: u64 = 2;
/// Latency the simulator adds to every response in the wall-time scenarios.
const LATENCY_MS: u64 = 300;
/// The CPU target for the 1,000,000-activity drain: half of the 12.6 s the collector used
/// with miniz_oxide.
const CPU_TARGET_SECONDS: f64 = 6.3;
/// "Flat": the larger backlog's peak within this share (or [`FLAT_SLACK_MIB`]) of the smaller's.
const FLAT_SHARE: f64 = 0.10;
const FLAT_SLACK_MIB: f64 = 2.0;
/// Sampling noise allowed when comparing the two halves of one drain's RSS trace.
const TRACE_SLACK_MIB: f64 = 1.0;
/// A wall time "bounded by the rate budget": within this factor of requests ÷ rate.
const WALL_OVER_BOUND: f64 = 1.25;

fn main() -> ExitCode {
    // testkit passes RUST_BACKTRACE through to the function; Lambda does not set it, and with it
    // a panic or a captured backtrace costs what it never costs in production.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::remove_var("RUST_BACKTRACE") };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(run()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench failed: {}", testkit::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The simulator's seed for the large drain: `BENCH_ONLY=drain` runs the same backlog as the bench.
const LARGE_DRAIN_SEED: u64 = 12;

/// `BENCH_ONLY=drain`: the large drain alone, its CPU printed and BENCHMARKS.md left as it is, then
/// the detector over its archive, against that CPU. For trying a change to the collector's or the
/// detector's CPU in two minutes instead of the whole bench's fifteen.
async fn drain_only(bench: &mut Bench, n: usize, seed: u64) -> Result<(), Error> {
    let drain = scenario::drain(bench, n, seed).await?;
    let sample = &drain.first.sample;
    println!(
        "drain of {n}: CPU {:.2} s (system {:.2} s), {} minor faults, peak RSS {:.1} MiB, wall {:.1} s, {} requests",
        sample.cpu.as_secs_f64(),
        sample.system.as_secs_f64(),
        sample.minor_faults,
        sample.peak_rss_mib(),
        drain.first.wall.as_secs_f64(),
        drain.first.num("requests"),
    );
    let detector_binary = testkit::binary_path("anthropic-compliance-detector");
    let detect = detector::measure(
        &bench.clients.s3,
        &drain.target.bucket,
        scenario::PREFIX,
        &detector_binary,
    )
    .await?;
    println!(
        "detector over it: CPU {:.2} s ({:.3}x the drain's), {} alerts, peak RSS {:.1} MiB",
        detect.cpu.as_secs_f64(),
        detect.cpu.as_secs_f64() / sample.cpu.as_secs_f64().max(f64::MIN_POSITIVE),
        detect.alerts,
        detect.peak_rss_kib as f64 / 1024.0,
    );
    Ok(())
}

async fn run() -> Result<(), Error> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let scale = if quick { 10 } else { 1 };
    let (small, large) = (100_000 / scale, 1_000_000 / scale);
    let date = jiff::Timestamp::now();
    let machine = Machine::describe();

    let collector = testkit::binary_path("anthropic-compliance-collector");
    let sim_binary = testkit::binary_path("compliance-sim");
    for binary in [&collector, &sim_binary] {
        if !binary.is_file() {
            return Err(format!(
                "{} not found: run `make bench` (it builds the release binaries first)",
                binary.display()
            )
            .into());
        }
    }
    progress(&format!("collector {}", collector.display()));
    let moto = tokio::task::spawn_blocking(Moto::start).await??;
    let clients = Clients::for_moto(&moto);
    let secret = scenario::create_secret(&clients).await?;
    let mut bench = Bench {
        collector,
        sim: sim_binary,
        moto,
        clients,
        secret,
        commands: vec![
            format!("{}make bench", if quick { "BENCH_QUICK=1 " } else { "" }),
            "# which runs:".to_owned(),
            "cargo build --release --locked -p anthropic-compliance-collector --bin anthropic-compliance-collector --bin anthropic-compliance-detector".to_owned(),
            "cargo build --release --locked -p compliance-sim -p bench --bin compliance-sim --bin bench".to_owned(),
            "target/release/bench".to_owned(),
            "# and inside it (moto from .venv via testkit; timestamps as of this run):".to_owned(),
        ],
    };

    let mut figures = Vec::new();
    let mut sections = Vec::new();

    // Binary size first: it needs nothing running.
    let size = binary_sizes(&bench);
    figures.extend(size.0);
    sections.push(("Binary size".to_owned(), size.1));

    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "drain") {
        return drain_only(&mut bench, large, LARGE_DRAIN_SEED).await;
    }
    let drain_small = scenario::drain(&mut bench, small, 11).await?;
    let startups = scenario::startup(&mut bench, &drain_small).await?;
    let drain_large = scenario::drain(&mut bench, large, LARGE_DRAIN_SEED).await?;
    let rss_section = rss_table(&[&drain_small, &drain_large]);
    let rss_trace_large = drain_large.rss_tenths.clone();
    progress(
        "detector: every pack over the drains' archives (anthropic-compliance-detector evaluate)",
    );
    let detector_binary = testkit::binary_path("anthropic-compliance-detector");
    let detect_small = detector::measure(
        &bench.clients.s3,
        &drain_small.target.bucket,
        scenario::PREFIX,
        &detector_binary,
    )
    .await?;
    let detect_large = detector::measure(
        &bench.clients.s3,
        &drain_large.target.bucket,
        scenario::PREFIX,
        &detector_binary,
    )
    .await?;
    progress("floor: reading the objects back and compressing them at every level");
    let python = testkit::moto::venv_python();
    let floor = floor::measure(
        &bench.clients.s3,
        &drain_large.target.bucket,
        scenario::PREFIX,
        &python.to_string_lossy(),
    )
    .await?;
    drop(drain_large.sim);
    let sim_small = drain_small.sim;

    let (latency_sim, t0) = scenario::latency_sim(&mut bench, large, LATENCY_MS, 13).await?;
    let wall_default = scenario::wall(&mut bench, &latency_sim, t0, 60).await?;
    let wall_full = scenario::wall(&mut bench, &latency_sim, t0, 600).await?;
    let typical = scenario::typical(&mut bench, &latency_sim).await?;
    drop(latency_sim);
    let quota = quota::measure(&mut bench, 14).await?;
    drop(sim_small);
    // Not scaled: fewer activities would fit in one page under the budget and test nothing.
    let pages_n = 20_000;
    let pages_length = pages::drain(&mut bench, pages_n, false, 15).await?;
    let pages_chunked = pages::drain(&mut bench, pages_n, true, 16).await?;

    let drains = [
        (drain_small.n, drain_small.first, drain_small.steady),
        (drain_large.n, drain_large.first, drain_large.steady),
    ];
    figures.extend(memory_figures(&drains, &wall_full));
    figures.push(trace_figure(large, &rss_trace_large));
    let (cpu_figures, cpu_section) = cpu_figures(&drains[1], &floor, &startups);
    figures.extend(cpu_figures);
    let (detector_figures, detector_section) =
        detector_figures(&drains[1], &detect_small, &detect_large);
    figures.extend(detector_figures);
    sections.push(("Detector".to_owned(), detector_section));
    figures.push(startup_figure(&startups));
    figures.extend(request_figures(&drains));
    figures.extend(wall_figures(&[&wall_default, &wall_full]));
    let (level_figure, level_section) = level_costs(&floor, &drains[1]);
    figures.push(level_figure);
    let (cost_figure, cost_section) = monthly_cost(&typical, &floor);
    figures.push(cost_figure);
    let (quota_figures, quota_section) = quota_figures(&quota);
    figures.extend(quota_figures);
    let (pages_figures, pages_section) = pages_figures(&[&pages_length, &pages_chunked]);
    figures.extend(pages_figures);

    sections.insert(0, ("How each figure is measured".to_owned(), method_text(quick)));
    sections.push(("Memory over a drain".to_owned(), rss_section));
    sections.push(("CPU".to_owned(), cpu_section));
    sections.push(("gzip level: CPU against storage and transfer".to_owned(), level_section));
    sections.push(("Monthly cost at 100,000 activities a day".to_owned(), cost_section));
    sections.push(("Speed at the function's CPU share".to_owned(), quota_section));
    sections.push(("Bounded pages: large records at 128 MB".to_owned(), pages_section));
    sections.push(("Start-up runs".to_owned(), startup_table(&startups)));

    println!();
    for f in &figures {
        println!("{}", f.line());
    }
    let report = Report {
        date: date.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        quick,
        commands: bench.commands.clone(),
        figures,
        sections,
    };
    let path = testkit::workspace_root().join("BENCHMARKS.md");
    std::fs::write(&path, report.markdown())?;
    progress(&format!("wrote {}", path.display()));
    Ok(())
}

fn memory_figures(drains: &[(usize, scenario::Run, scenario::Run); 2], wall: &Wall) -> Vec<Figure> {
    let mut out = Vec::new();
    for (n, first, _) in drains {
        out.push(Figure::new(
            format!("peak RSS, first live run draining {} activities", thousands(*n as u64)),
            format!("{:.1} MiB", first.sample.peak_rss_mib()),
            format!("≤ {PEAK_RSS_MIB} MiB"),
            Verdict::of(first.sample.peak_rss_mib() <= PEAK_RSS_MIB),
        ));
    }
    let (small, large) = (drains[0].1.sample.peak_rss_mib(), drains[1].1.sample.peak_rss_mib());
    let growth = large - small;
    out.push(Figure::new(
        format!(
            "peak RSS growth from {} to {} activities",
            thousands(drains[0].0 as u64),
            thousands(drains[1].0 as u64)
        ),
        format!("{growth:+.1} MiB ({:+.0}%)", growth / small.max(0.001) * 100.0),
        format!("flat: ≤ +{:.0}% or +{FLAT_SLACK_MIB} MiB", FLAT_SHARE * 100.0),
        Verdict::of(growth <= (small * FLAT_SHARE).max(FLAT_SLACK_MIB)),
    ));
    if let Some(sample) = wall.sample() {
        out.push(Figure::new(
            format!(
                "peak RSS, backfill of {} activities ({LATENCY_MS} ms latency, {} requests/minute)",
                thousands(wall.delivered()),
                wall.rpm
            ),
            format!("{:.1} MiB", sample.peak_rss_mib()),
            format!("≤ {PEAK_RSS_MIB} MiB"),
            Verdict::of(sample.peak_rss_mib() <= PEAK_RSS_MIB),
        ));
    }
    out
}

/// Within one drain: whether the resident set keeps growing as more of the backlog is drained.
fn trace_figure(n: usize, tenths: &[u64]) -> Figure {
    let name = format!(
        "RSS during the {}-activity drain: second half against first half",
        thousands(n as u64)
    );
    if tenths.is_empty() {
        return Figure::new(name, "not measured: the process was not found", "", Verdict::Info);
    }
    let half = tenths.len() / 2;
    let max = |part: &[u64]| part.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let (first, second) = (max(&tenths[..half]), max(&tenths[half..]));
    Figure::new(
        name,
        format!("{second:.1} MiB against {first:.1} MiB (largest VmRSS sampled every 10 ms)"),
        format!("no growth: ≤ first half + {TRACE_SLACK_MIB} MiB"),
        Verdict::of(second <= first + TRACE_SLACK_MIB),
    )
}

fn rss_table(drains: &[&scenario::Drain]) -> String {
    let mut s = String::from(
        "The collector's `VmRSS`, sampled every 10 ms during each drain's first run: the largest \
         value in each tenth of the run's time, MiB. A flat row is memory that does not grow \
         with the backlog; the peak follows the heaviest pages (about 1 activity in 500 is 20 to \
         60 KB). After the run, `VmRSS` is what the warm process keeps for the next one.\n\n\
         | backlog | 1st | 2nd | 3rd | 4th | 5th | 6th | 7th | 8th | 9th | 10th | peak (VmHWM) | after the run |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for d in drains {
        let mut cells: Vec<String> =
            d.rss_tenths.iter().map(|kib| format!("{:.1}", *kib as f64 / 1024.0)).collect();
        cells.resize(10, "-".to_owned());
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} |",
            thousands(d.n as u64),
            cells.join(" | "),
            d.first.sample.peak_rss_mib(),
            d.first.sample.rss_kib as f64 / 1024.0
        );
    }
    s
}

/// The target of half the CPU miniz_oxide needed: met or not, and when not, by how much and what
/// limits it, from this run's own figures (gzip at the kept level, the rest beside it, and what
/// even libdeflate's fastest compressing level would leave).
fn half_figure(n: usize, cpu: f64, floor_cpu: f64, floor: &Floor) -> Figure {
    let name = format!(
        "CPU (user+sys) of the {}-activity run, against half of miniz_oxide's 12.6 s",
        thousands(n as u64)
    );
    let target = format!("≤ {CPU_TARGET_SECONDS} s");
    if cpu <= CPU_TARGET_SECONDS {
        return Figure::new(name, format!("{cpu:.2} s"), target, Verdict::Pass);
    }
    let rest = cpu - floor_cpu;
    let fastest = floor.level(1).map(|l| l.cpu.as_secs_f64());
    let value = format!(
        "{cpu:.2} s, {:.2} s over: gzip at level {GZIP_LEVEL} alone is {floor_cpu:.2} s of it and the rest {rest:.2} s{}",
        cpu - CPU_TARGET_SECONDS,
        match fastest {
            Some(l1) => format!(
                "; even level 1's gzip ({l1:.2} s) and the rest would come to {:.2} s",
                l1 + rest
            ),
            None => String::new(),
        }
    );
    Figure::new(name, value, target, Verdict::Miss)
}

fn cpu_figures(
    drain: &(usize, scenario::Run, scenario::Run),
    floor: &Floor,
    startups: &[Startup],
) -> (Vec<Figure>, String) {
    let (n, first, _) = drain;
    let cpu = first.sample.cpu.as_secs_f64();
    let floor_cpu = floor.level(GZIP_LEVEL).map_or(0.0, |l| l.cpu.as_secs_f64());
    let ratio = cpu / floor_cpu.max(1e-9);
    let zlib = floor.codec("C zlib");
    let zlib_cpu = zlib.map_or(0.0, |c| c.cpu.as_secs_f64());
    let compression = floor.raw_bytes as f64 / floor.stored_bytes.max(1) as f64;
    let figures = vec![
        Figure::new(
            format!(
                "CPU (user+sys) of the {}-activity run, against libdeflate level {GZIP_LEVEL} alone (the fastest codec)",
                thousands(*n as u64)
            ),
            format!("{cpu:.2} s vs floor {floor_cpu:.2} s = {ratio:.2}×"),
            format!("≤ {CPU_OVER_FLOOR}×"),
            Verdict::of(ratio <= CPU_OVER_FLOOR),
        ),
        half_figure(*n, cpu, floor_cpu, floor),
        Figure::new(
            format!(
                "CPU (user+sys) of the {}-activity run, against C zlib level {} alone over the same NDJSON",
                thousands(*n as u64),
                floor::COMPARE_LEVEL
            ),
            match zlib {
                Some(_) => {
                    format!("{cpu:.2} s vs {zlib_cpu:.2} s = {:.2}×", cpu / zlib_cpu.max(1e-9))
                }
                None => "not measured: Python's zlib did not run".to_owned(),
            },
            "≤ 1×",
            Verdict::of(zlib.is_some() && cpu <= zlib_cpu),
        ),
        Figure::new(
            "activities per CPU-second (whole process, cold start included)",
            thousands((first.num("delivered") as f64 / cpu.max(1e-9)) as u64),
            "",
            Verdict::Info,
        ),
        Figure::new(
            format!("compression ratio at libdeflate level {GZIP_LEVEL}"),
            format!(
                "{compression:.2}:1 ({:.0} → {:.0} bytes per activity)",
                floor.raw_bytes as f64 / floor.activities.max(1) as f64,
                floor.stored_bytes as f64 / floor.activities.max(1) as f64
            ),
            "",
            Verdict::Info,
        ),
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "The run: {} activities in {} objects, {:.1} MB of NDJSON written as {:.1} MB of gzip; wall \
         time {:.1} s; {} requests. The collector's process used {cpu:.2} s of CPU (user + system, \
         from `/proc/<pid>/stat` after the invocation: the cold start, the run, the manifest and \
         the metrics), of which {:.2} s in the kernel, with {} minor page faults. Its AWS calls \
         went through testkit's proxy, which keeps connections open as AWS endpoints do (moto's \
         server closes each after one answer). Gzip alone, over exactly those objects' NDJSON \
         (read back from S3 and decompressed, each object compressed whole with libdeflate at \
         level {GZIP_LEVEL}, timed on the thread CPU clock) took {floor_cpu:.2} s. Everything else \
         the collector does — HTTP, JSON paging, hashing ids, SigV4 and checksums of the uploads, \
         DynamoDB commits, logs — costs the difference, {:.2} s ({:.1} µs per activity).",
        thousands(floor.activities),
        floor.objects,
        floor.raw_bytes as f64 / 1e6,
        floor.stored_bytes as f64 / 1e6,
        first.wall.as_secs_f64(),
        first.num("requests"),
        first.sample.system.as_secs_f64(),
        thousands(first.sample.minor_faults),
        cpu - floor_cpu,
        (cpu - floor_cpu) / floor.activities.max(1) as f64 * 1e6,
    );
    let _ = writeln!(
        s,
        "\nThe codecs on offer over the same NDJSON, each object compressed whole at level {} \
         (C zlib in its own Python process, timed there on its thread CPU clock):\n",
        floor::COMPARE_LEVEL
    );
    let _ = writeln!(s, "| codec | CPU | against libdeflate {GZIP_LEVEL} | ratio |");
    let _ = writeln!(s, "|---|---|---|---|");
    let mut rows: Vec<(String, f64, u64)> = floor
        .level(floor::COMPARE_LEVEL)
        .map(|l| {
            (
                format!("libdeflate {} (the collector's)", l.level),
                l.cpu.as_secs_f64(),
                l.compressed_bytes,
            )
        })
        .into_iter()
        .collect();
    rows.extend(
        floor.codecs.iter().map(|c| (c.name.clone(), c.cpu.as_secs_f64(), c.compressed_bytes)),
    );
    for (name, c, bytes) in rows {
        let _ = writeln!(
            s,
            "| {name} | {c:.2} s | {:.2}× | {:.2}:1 |",
            c / floor_cpu.max(1e-9),
            floor.raw_bytes as f64 / bytes.max(1) as f64
        );
    }
    let _ = writeln!(
        s,
        "\nThe collector's own `archive::Encoder` over the same activities (the lines laid out in \
         one buffer kept from object to object, one libdeflate compressor, object keys and SHA-256 \
         included) took {:.2} s ({:.2}× the floor).",
        floor.collector_encoder.as_secs_f64(),
        floor.collector_encoder.as_secs_f64() / floor_cpu.max(1e-9),
    );
    if !startups.is_empty() {
        let total: f64 = startups.iter().map(|st| st.sample.cpu.as_secs_f64()).sum();
        let _ = writeln!(
            s,
            "\nFor scale: a cold start followed by a run with nothing new uses {:.0} ms of CPU on \
             average over the {} start-up processes (`/proc` counts in 10 ms ticks, so each is 0 \
             or 10 ms).",
            total / startups.len() as f64 * 1000.0,
            startups.len()
        );
    }
    (figures, s)
}

/// The detector against the targets: CPU at most a quarter of the collector's for the
/// same activities, peak RSS at most 48 MiB and flat from the 100k to the 1M archive.
fn detector_figures(
    drain: &(usize, scenario::Run, scenario::Run),
    small: &detector::DetectorRun,
    large: &detector::DetectorRun,
) -> (Vec<Figure>, String) {
    let collector_cpu = drain.1.sample.cpu.as_secs_f64();
    let cpu = large.cpu.as_secs_f64();
    let share = cpu / collector_cpu.max(1e-9);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let flat =
        mib(large.peak_rss_kib) <= mib(small.peak_rss_kib) * (1.0 + FLAT_SHARE) + FLAT_SLACK_MIB;
    let figures = vec![
        Figure::new(
            format!(
                "detector CPU (user+sys), every pack over the {}-activity archive, against the collector's",
                thousands(large.activities)
            ),
            format!("{cpu:.2} s vs collector {collector_cpu:.2} s = {share:.2}×"),
            "≤ 0.25×",
            Verdict::of(share <= 0.25),
        ),
        Figure::new(
            "detector peak RSS (100k archive → 1M archive)",
            format!("{:.1} MiB → {:.1} MiB", mib(small.peak_rss_kib), mib(large.peak_rss_kib)),
            format!("≤ {PEAK_RSS_MIB} MiB, flat"),
            Verdict::of(mib(large.peak_rss_kib) <= PEAK_RSS_MIB && flat),
        ),
    ];
    let mut section = String::from(
        "`anthropic-compliance-detector evaluate` (release) over every activity object of a drain, read back from moto to local files; CPU and peak RSS from `wait4` for that process alone. The function runs the same engine per object, plus one S3 read, one DynamoDB round trip per correlation group touched and one SNS publish per fresh alert.\n\n| archive | objects | largest object (gzip) | activities | alerts | CPU | activities per CPU-second | peak RSS |\n|---|---|---|---|---|---|---|---|\n",
    );
    for run in [small, large] {
        let _ = writeln!(
            section,
            "| {} | {} | {} KiB | {} | {} | {:.2} s | {} | {:.1} MiB |",
            thousands(run.activities),
            run.objects,
            run.largest_object_bytes / 1024,
            thousands(run.activities),
            thousands(run.alerts),
            run.cpu.as_secs_f64(),
            thousands((run.activities as f64 / run.cpu.as_secs_f64().max(1e-9)) as u64),
            mib(run.peak_rss_kib),
        );
    }
    (figures, section)
}

/// The large-record drains: whole, within the 128 MB function, with the limits the budget chose.
fn pages_figures(runs: &[&pages::PagesRun]) -> (Vec<Figure>, String) {
    let mib = f64::from(pages::MEMORY_MB);
    let budget = anthropic_compliance_collector::feed::budget::BodyBudget::from_memory_size(
        u64::from(pages::MEMORY_MB),
    );
    let mut figures = Vec::new();
    let mut s = format!(
        "A backlog of activities of which one in {} carries {} KiB of padding (the simulator's \
         `--large-records {}:{}`), drained in one invocation by the release collector with \
         `AWS_LAMBDA_FUNCTION_MEMORY_SIZE={}`: its page body budget is {} MiB (a quarter of the \
         memory). A page of {} such activities is about {:.0} MB, over the budget, so the first \
         is refused (by its `content-length`) or cut (chunked: once its bytes pass the budget) and \
         asked for again with half the limit. The limits are every page request's `limit`, from \
         the simulator's access log (`GET /_sim/requests`); peak RSS is the process's `VmHWM`.\n\n\
         | pages | activities | gzip written | requests | refused or cut | limits asked | wall | CPU | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        pages::LARGE_EVERY,
        pages::LARGE_BYTES / 1024,
        pages::LARGE_EVERY,
        pages::LARGE_BYTES,
        pages::MEMORY_MB,
        budget.bytes() >> 20,
        PAGE_LIMIT,
        f64::from(PAGE_LIMIT) / pages::LARGE_EVERY as f64 * pages::LARGE_BYTES as f64 / 1e6,
    );
    for r in runs {
        let how = if r.chunked { "chunked" } else { "content-length" };
        let peak = r.run.sample.peak_rss_mib();
        let delivered = r.run.num("delivered");
        figures.push(Figure::new(
            format!(
                "peak RSS, drain of {} activities (1 in {} of {} KiB) at {} MB, {how} pages",
                thousands(r.n as u64),
                pages::LARGE_EVERY,
                pages::LARGE_BYTES / 1024,
                pages::MEMORY_MB
            ),
            format!(
                "{peak:.1} MiB, {} delivered; {} refused or cut; limits {}",
                thousands(delivered),
                r.refused(),
                r.limits_text()
            ),
            format!("all delivered, < {mib:.0} MiB"),
            Verdict::of(delivered == r.n as u64 && peak < mib),
        ));
        let _ = writeln!(
            s,
            "| {how} | {} | {:.1} MB | {} | {} | {} | {:.1} s | {:.2} s | {peak:.1} MiB |",
            thousands(delivered),
            r.run.num("bytes_written") as f64 / 1e6,
            r.run.num("requests"),
            r.refused(),
            r.limits_text(),
            r.run.wall.as_secs_f64(),
            r.run.sample.cpu.as_secs_f64(),
        );
    }
    (figures, s)
}

fn startup_figure(startups: &[Startup]) -> Figure {
    let mut ms: Vec<f64> = startups.iter().map(|s| s.first_api.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN);
    let max = ms.last().copied().unwrap_or(f64::NAN);
    Figure::new(
        "start-up: process spawn to first API request",
        format!("median {median:.0} ms, max {max:.0} ms over {} cold starts", ms.len()),
        format!("< {STARTUP_MS:.0} ms"),
        Verdict::of(median < STARTUP_MS),
    )
}

fn startup_table(startups: &[Startup]) -> String {
    let mut s = String::from(
        "Each is a new process (a cold start) whose run finds nothing new. Spawn is the bench's \
         clock just before the invoke that spawns the process; the first AWS request (Secrets \
         Manager) and the first API request are when their first bytes reach a TCP relay the bench \
         runs in front of moto and of the simulator. Between the two: reading the secret and the \
         state item from moto. CPU and peak RSS are the whole process's after its run.\n\n\
         | # | first AWS request | first API request | CPU | peak RSS |\n|---|---|---|---|---|\n",
    );
    for (i, st) in startups.iter().enumerate() {
        let aws =
            st.first_aws.map_or("-".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        let _ = writeln!(
            s,
            "| {} | {aws} | {:.1} ms | {:.0} ms | {:.1} MiB |",
            i + 1,
            st.first_api.as_secs_f64() * 1e3,
            st.sample.cpu.as_secs_f64() * 1e3,
            st.sample.peak_rss_mib()
        );
    }
    s
}

fn request_figures(drains: &[(usize, scenario::Run, scenario::Run); 2]) -> Vec<Figure> {
    let mut out = Vec::new();
    for (n, first, _) in drains {
        let ideal = (*n as u64).div_ceil(u64::from(PAGE_LIMIT));
        let requests = first.num("requests");
        out.push(Figure::new(
            format!("requests to drain {} activities", thousands(*n as u64)),
            format!("{requests} ({} pages; N/{PAGE_LIMIT} = {ideal})", first.num("pages")),
            format!("≈ N/{PAGE_LIMIT}: ≤ {}", close_to(ideal)),
            Verdict::of(requests <= close_to(ideal)),
        ));
    }
    let steady = drains.iter().map(|(_, _, s)| s.num("requests")).max().unwrap_or(0);
    out.push(Figure::new(
        "requests of a steady-state run with nothing new",
        format!("{steady}"),
        format!("≤ {STEADY_REQUESTS}"),
        Verdict::of(steady <= STEADY_REQUESTS),
    ));
    out
}

/// "Close to" the ideal page count: 5% more, plus two.
fn close_to(ideal: u64) -> u64 {
    ideal + ideal.div_ceil(20) + 2
}

fn wall_figures(walls: &[&Wall]) -> Vec<Figure> {
    walls
        .iter()
        .map(|w| {
            let wall = w.wall().as_secs_f64();
            let bound = w.bound().as_secs_f64();
            let one_by_one = w.requests() as f64 * LATENCY_MS as f64 / 1000.0;
            Figure::new(
                format!(
                    "wall time, backfill of {} activities, {LATENCY_MS} ms latency, MAX_REQUESTS_PER_MINUTE={}",
                    thousands(w.delivered()),
                    w.rpm
                ),
                format!(
                    "{wall:.1} s for {} requests; rate bound {bound:.1} s, latency alone one after another {one_by_one:.1} s",
                    w.requests()
                ),
                format!("≤ {WALL_OVER_BOUND}× the rate bound"),
                Verdict::of(wall <= bound * WALL_OVER_BOUND),
            )
        })
        .collect()
}

fn level_costs(floor: &Floor, drain: &(usize, scenario::Run, scenario::Run)) -> (Figure, String) {
    let per_million = 1e6 / floor.activities.max(1) as f64;
    let costs: Vec<LevelCost> = floor
        .levels
        .iter()
        .map(|l| {
            LevelCost::new(
                l.level,
                l.cpu.as_secs_f64() * per_million,
                l.compressed_bytes as f64 * per_million,
            )
        })
        .collect();
    let best = costs.iter().min_by(|a, b| a.total().total_cmp(&b.total())).copied();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured over the {} activities of the large drain ({:.0} bytes of NDJSON each), \
         libdeflate at each of its levels, each object compressed whole; levels {} to 12 (its \
         near-optimal parser) over one object in {} and scaled by the bytes (marked *). Priced per million activities: \
         Lambda CPU at ${:.3e} per CPU-second (a CPU-second is 1,769 MB-s at any memory size \
         below one vCPU, at ${} per GB-s), S3 Standard for {} months at ${}/GB-month, and one \
         transfer to a SIEM that pulls the objects out of AWS at ${}/GB.\n",
        thousands(floor.activities),
        floor.raw_bytes as f64 / floor.activities.max(1) as f64,
        floor::FIRST_SAMPLED_LEVEL,
        floor::SAMPLE_EVERY,
        cost::lambda_cpu_second(),
        cost::LAMBDA_GB_SECOND,
        cost::RETENTION_MONTHS,
        cost::S3_GB_MONTH,
        cost::SIEM_TRANSFER_GB,
    );
    let _ = writeln!(
        s,
        "| level | CPU s per million (µs per activity) | bytes per activity | ratio | Lambda $/M | storage $/M ({}mo) | transfer $/M | total $/M |",
        cost::RETENTION_MONTHS
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &costs {
        let _ = writeln!(
            s,
            "| {}{}{} | {:.2} | {:.1} | {:.2}:1 | {:.5} | {:.5} | {:.5} | **{:.5}** |",
            c.level,
            if floor.level(c.level).is_some_and(|l| l.sampled) { "*" } else { "" },
            if c.level == GZIP_LEVEL { " (used)" } else { "" },
            c.cpu_seconds,
            c.compressed_bytes / 1e6,
            floor.raw_bytes as f64 * per_million / c.compressed_bytes.max(1.0),
            c.lambda,
            c.storage,
            c.transfer,
            c.total()
        );
    }
    let current = costs.iter().find(|c| c.level == GZIP_LEVEL).copied();
    let figure = match (best, current) {
        (Some(best), Some(current)) => {
            let vcpu = f64::from(scenario::MEMORY_MB) / cost::LAMBDA_MB_PER_VCPU;
            let gzip = |level: u32| floor.level(level).map_or(0.0, |l| l.cpu.as_secs_f64());
            // What the large drain would cost at the cheapest level: this run's CPU beside gzip,
            // plus that level's gzip over the same objects.
            let rest = drain.1.sample.cpu.as_secs_f64() - gzip(GZIP_LEVEL);
            let drain_at_best = rest + gzip(best.level);
            let zlib = floor.codec("C zlib").map(|c| c.cpu.as_secs_f64());
            let monthly = (current.total() - best.total()) * cost::ACTIVITIES_PER_MONTH / 1e6;
            let over = (current.total() / best.total() - 1.0) * 100.0;
            let _ = writeln!(
                s,
                "\nStorage and transfer dominate: over most of the range the CPU a level adds costs \
                 less than the bytes it saves, but by very little. The cheapest by money is level {}, \
                 ${:.5} per million activities; level {GZIP_LEVEL}, the one the collector uses, costs \
                 ${:.5} ({over:+.1}%, ${monthly:.4} a month at 3 million activities). Money is not \
                 the only price of CPU here: at {} MB a function has {vcpu:.3} vCPU, so each \
                 CPU-second of gzip is {:.1} s of run time, and a 5,000-activity page costs {:.2} s \
                 of it at level {} against {:.2} s at level {GZIP_LEVEL}. The {}-activity drain, \
                 which used {:.2} s of CPU with {:.2} s of it beside gzip, would come to about \
                 {drain_at_best:.2} s at level {}{}. Which level the collector keeps, and why, is \
                 `GZIP_LEVEL` in src/archive/encode.rs and the README's performance section.",
                best.level,
                best.total(),
                current.total(),
                scenario::MEMORY_MB,
                1.0 / vcpu,
                best.cpu_seconds * 5000.0 / 1e6 / vcpu,
                best.level,
                current.cpu_seconds * 5000.0 / 1e6 / vcpu,
                thousands(drain.0 as u64),
                drain.1.sample.cpu.as_secs_f64(),
                rest,
                best.level,
                match zlib {
                    Some(z) => format!(
                        ", against {z:.2} s for C zlib level {} alone ({:.2}×)",
                        floor::COMPARE_LEVEL,
                        drain_at_best / z.max(1e-9)
                    ),
                    None => String::new(),
                },
            );
            Figure::new(
                "gzip level: the cheapest by total cost (Lambda CPU, 12 months of S3, SIEM transfer), against the level used",
                format!(
                    "cheapest level {} ${:.4} per million activities; level {GZIP_LEVEL} (used) ${:.4}, \
                     {over:+.1}% (${monthly:.4} a month at 3 million); the drain at level {} about \
                     {drain_at_best:.2} s of CPU against {drain_now:.2} s",
                    best.level,
                    best.total(),
                    current.total(),
                    best.level,
                    drain_now = drain.1.sample.cpu.as_secs_f64(),
                ),
                "",
                Verdict::Info,
            )
        }
        _ => Figure::new("gzip level", "not measured", "", Verdict::Info),
    };
    (figure, s)
}

fn monthly_cost(typical: &Typical, floor: &Floor) -> (Figure, String) {
    let bytes_per_activity = floor.stored_bytes as f64 / floor.activities.max(1) as f64;
    // The series each measured run puts (the code's own rule, over its summary's figures), and
    // the share of runs that put each.
    let mut put: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for run in &typical.runs {
        for d in run_metrics(&report_of(run), Some(0.0)) {
            let dims: Vec<&str> = d.dimensions.iter().map(|(_, v)| *v).collect();
            let name = if dims.is_empty() {
                d.name.to_owned()
            } else {
                format!("{} {}", d.name, dims.join(" "))
            };
            *put.entry(name).or_default() += 1.0 / typical.runs.len().max(1) as f64;
        }
    }
    let hours = cost::metric_hours(put.values().copied());
    let bill = cost::monthly(&typical.profile, bytes_per_activity, hours);
    let total: f64 = bill.iter().map(|l| l.dollars).sum();
    let lambda: f64 = bill.iter().filter(|l| l.item.starts_with("Lambda")).map(|l| l.dollars).sum();
    let p = &typical.profile;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured on {} warm scheduled runs, each finding {} new activities (100,000 a day at 288 \
         runs a day) beside the overlap's re-reads, against the simulator with {LATENCY_MS} ms of \
         latency and moto on loopback; 256 MB as in template.yaml. A run took {:.3} s (median, \
         invoke to response; the cold first run took {:.3} s) and peaked at {:.1} MiB. The AWS \
         requests per run, counted by a proxy in front of moto:\n",
        typical.runs.len(),
        scenario::PER_RUN,
        p.seconds,
        typical.cold.wall.as_secs_f64(),
        typical.runs.iter().map(|r| r.sample.peak_rss_mib()).fold(0.0, f64::max),
    );
    for (op, n) in &typical.operations {
        let _ = writeln!(s, "- {op}: {n:.2}");
    }
    let _ = writeln!(
        s,
        "\nThe state item was {} bytes after the last run ({} WRU a write). Durations here are on \
         loopback AWS: in a Region, each AWS call adds a few milliseconds more.\n",
        typical.item_bytes,
        cost::write_units(typical.item_bytes)
    );
    let _ = writeln!(
        s,
        "The custom metric series the runs put, and the share of runs that put each: {}. Every run \
         puts `EventsProcessed` and every live run `LagSeconds`; the other counts only when not \
         zero, and each costs $0.30/730 for every hour in which any run puts it.\n",
        put.iter().map(|(n, p)| format!("`{n}` {:.0}%", p * 100.0)).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(s, "| item | basis | $/month |\n|---|---|---|");
    for line in &bill {
        let _ = writeln!(s, "| {} | {} | {:.4} |", line.item, line.basis, line.dollars);
    }
    let _ = writeln!(s, "| **total** | | **{total:.2}** |");
    let _ = writeln!(
        s,
        "\nStorage grows by the line above every month the objects are kept. The largest items are \
         fixed: the secret and the custom metric series; the function itself costs \
         ${lambda:.2} a month."
    );
    let figure = Figure::new(
        "cost per month, 5-minute schedule, 100,000 activities a day",
        format!(
            "Lambda ${lambda:.3} ({:.3} s × 256 MB × 8,640 runs); all services ${total:.2}",
            p.seconds
        ),
        "",
        Verdict::Info,
    );
    (figure, s)
}

/// The 5,000-activity runs under the CPU quota of 128 MB and 256 MB functions.
fn quota_figures(quota: &quota::Quota) -> (Vec<Figure>, String) {
    let runs = match quota {
        quota::Quota::Unavailable(why) => {
            let figure = Figure::new(
                "wall time of a 5,000-activity run at the CPU share of 128 MB and 256 MB",
                format!("not measured: {why}"),
                "",
                Verdict::Info,
            );
            return (vec![figure], format!("Not measured on this machine: {why}.\n"));
        }
        quota::Quota::Measured { mechanism, runs } => (mechanism, runs),
    };
    let (mechanism, runs) = runs;
    let mut figures = Vec::new();
    for mb in quota::MEMORY_SIZES {
        let at: Vec<&quota::QuotaRun> = runs.iter().filter(|r| r.memory_mb == mb).collect();
        let Some(first) = at.first() else { continue };
        figures.push(Figure::new(
            format!(
                "wall time of a first run of {} activities at the CPU share of {mb} MB ({:.3} vCPU)",
                thousands(quota::ACTIVITIES as u64),
                first.share
            ),
            at.iter()
                .map(|r| format!("{} {:.2} s ({:.2} s CPU)", r.build, r.wall.as_secs_f64(), r.cpu.as_secs_f64()))
                .collect::<Vec<_>>()
                .join("; "),
            "",
            Verdict::Info,
        ));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A first live run delivering {} new activities (cold start included, invoke to response), \
         the collector's process held by {mechanism} to the CPU Lambda gives the memory size \
         (memory ÷ {} MB per vCPU, over a {} ms period), with `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set \
         to match; the simulator and moto run outside the quota with no added latency, so the \
         wall time is the collector's CPU stretched by the share. \"before\" is the build given \
         in `BENCH_BEFORE_COLLECTOR` (the commit before libdeflate), when given.\n",
        thousands(quota::ACTIVITIES as u64),
        cost::LAMBDA_MB_PER_VCPU,
        100,
    );
    let _ = writeln!(
        s,
        "| build | memory | vCPU | activities | wall time | CPU |\n|---|---|---|---|---|---|"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {} MB | {:.3} | {} | {:.2} s | {:.2} s |",
            r.build,
            r.memory_mb,
            r.share,
            thousands(r.delivered),
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64()
        );
    }
    (figures, s)
}

/// The figures of a run's summary that decide which metrics it puts.
fn report_of(run: &scenario::Run) -> RunReport {
    let n32 = |f: &str| u32::try_from(run.num(f)).unwrap_or(u32::MAX);
    RunReport {
        delivered: run.num("delivered"),
        throttled: n32("throttled"),
        api_server_errors: n32("api_server_errors"),
        api_client_errors: n32("api_client_errors"),
        api_transport_errors: n32("api_transport_errors"),
        late_arrivals: run.num("late_arrivals"),
        late_beyond_overlap: run.num("late_beyond_overlap"),
        compliance_logging_disabled: n32("compliance_logging_disabled"),
        canary_checked: run.summary["canary_checked"].as_bool().unwrap_or(false),
        canary_missing: n32("canary_missing"),
        ..RunReport::default()
    }
}

/// Sizes of the release binaries: the host's, and arm64's when its target is installed.
fn binary_sizes(bench: &Bench) -> (Vec<Figure>, String) {
    let mut figures = Vec::new();
    let mut s = String::new();
    let host = std::fs::metadata(&bench.collector).map(|m| m.len()).unwrap_or(0);
    figures.push(Figure::new(
        "release binary, x86_64-unknown-linux-gnu (lto, codegen-units=1, strip, panic=abort)",
        format!("{} bytes ({:.2} MiB)", thousands(host), host as f64 / 1024.0 / 1024.0),
        "",
        Verdict::Info,
    ));
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let arm: Vec<&str> = installed.lines().filter(|t| t.starts_with("aarch64-")).collect();
    let _ = writeln!(
        s,
        "`{}` is the stripped release binary (the release profile sets `lto = true`, \
         `codegen-units = 1`, `strip = true`, `opt-level = 3`, `panic = \"abort\"`), built \
         alone (`-p anthropic-compliance-collector`) as cargo-lambda builds it for deployment.\n",
        bench.collector.display()
    );
    if arm.is_empty() {
        let _ = writeln!(
            s,
            "arm64 (the template's default architecture): not measured. `rustup target list \
             --installed` lists only `{}` on this machine, and the aarch64 standard library \
             cannot be downloaded here (rustup's distribution server is not a package registry). \
             No estimate is given; `make build ARCH=arm64` (cargo-lambda) produces it where the \
             target can be installed.",
            installed.trim()
        );
        figures.push(Figure::new(
            "release binary, arm64",
            "not measured: no aarch64 target installed, none downloadable here",
            "",
            Verdict::Info,
        ));
    } else {
        let _ = writeln!(
            s,
            "arm64 targets installed ({}): build one with `make build ARCH=arm64` and measure \
             `.aws-sam/build/CollectorFunction/bootstrap`; the bench does not cross-link.",
            arm.join(", ")
        );
        figures.push(Figure::new(
            "release binary, arm64",
            "not built by the bench",
            "",
            Verdict::Info,
        ));
    }
    (figures, s)
}

fn method_text(quick: bool) -> String {
    let scale = if quick { " (quick mode: 10,000 and 100,000)" } else { "" };
    format!(
        "- **Data**: the simulator generates the backlogs at start (`--generate N --from --to`, \
         realistic activities, about 1 in 500 of 20–60 KB) over 7 days; 100,000 and 1,000,000 \
         activities{scale}. It runs as its own process, so none of its memory is the collector's.\n\
         - **Peak RSS**: `VmHWM` of `/proc/<pid>/status` of the collector's process, read right \
         after the invocation while the process is still alive: the kernel's high-water mark since \
         exec, so no peak can fall between samples. The drain is the first live run \
         (`INITIAL_LOOKBACK_HOURS=169`, `MAX_REQUESTS_PER_MINUTE=600`), one invocation of up to \
         900 s.\n\
         - **CPU**: `utime + stime` of `/proc/<pid>/stat` after the drain's invocation: the whole \
         process, cold start included. The floor compresses the same NDJSON (read back from the \
         run's objects) at the same level with the same flate2, object by object, timed with \
         `CLOCK_THREAD_CPUTIME_ID`.\n\
         - **Start-up**: from the spawn of a new process to the first bytes of its first API \
         request at a TCP relay in front of the simulator, ten cold starts.\n\
         - **Requests**: the run summary's `requests` (every HTTP request to the API, retries \
         included). Steady state: the next run after the drain.\n\
         - **Wall time**: a live run, then one backfill invocation over the week (split into \
         parts collected at once), against a simulator adding {LATENCY_MS} ms to every response; \
         the rate bound is requests ÷ (MAX_REQUESTS_PER_MINUTE ÷ 60) seconds.\n\
         - **Cost**: typical scheduled runs with 347 new activities each, measured durations, AWS \
         requests counted by testkit's proxy in front of moto, list prices (bench/src/cost.rs).\n\
         - Other processes may share this machine's two cores while it runs; CPU time and peak \
         RSS are per process and barely affected, wall times can be.\n"
    )
}
