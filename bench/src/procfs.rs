//! What the kernel knows about a process and the machine: peak and current RSS, CPU time, the
//! CPU model. Linux only (`/proc`), which is where Lambda runs too.
//!
//! The collector is measured from outside, while it is still alive after an invocation:
//! `VmHWM` is the kernel's own high-water mark of its resident set since exec, so no sampling can
//! miss a peak; `utime + stime` of `/proc/<pid>/stat` include the threads that already exited.

use std::io;
use std::time::Duration;

/// One reading of a live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// Peak resident set size since the process started (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
    /// The system part of `cpu`: the kernel's work for the process (sockets, page faults).
    pub system: Duration,
    /// Minor page faults since the process started (`minflt`): memory first touched.
    pub minor_faults: u64,
}

impl ProcSample {
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let field = |name: &str| {
        status_kib(&status, name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no {name} in /proc/{pid}/status"))
        })
    };
    let Some(ticks) = cpu_ticks(&stat) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable /proc/{pid}/stat"),
        ));
    };
    Ok(ProcSample {
        peak_rss_kib: field("VmHWM")?,
        rss_kib: field("VmRSS")?,
        cpu: ticks_to_duration(ticks.user + ticks.system, clock_ticks_per_second()),
        system: ticks_to_duration(ticks.system, clock_ticks_per_second()),
        minor_faults: ticks.minor_faults,
    })
}

/// `Name:   1234 kB` → 1234.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[derive(Debug, PartialEq, Eq)]
struct StatTicks {
    user: u64,
    system: u64,
    minor_faults: u64,
}

/// `minflt`, `utime` and `stime` (fields 10, 14 and 15) of a `/proc/<pid>/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<StatTicks> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is fields[n - 3].
    let number = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(StatTicks { minor_faults: number(10)?, user: number(14)?, system: number(15)? })
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// Resident set sizes of a child process over time: `(since start, VmRSS KiB)` every 10 ms.
pub struct RssTrace {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Duration, u64)>>,
}

impl RssTrace {
    /// Starts watching for the next child of this process whose command name starts with `comm`
    /// (the kernel keeps 15 bytes of it), then samples its `VmRSS` until [`RssTrace::finish`].
    pub fn start(comm: &str) -> RssTrace {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let comm: String = comm.chars().take(15).collect();
        let stopped = std::sync::Arc::clone(&stop);
        // Before returning: the child may be spawned before the task first runs.
        let known = children(&comm);
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut samples = Vec::new();
            let mut pid = None;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if pid.is_none() {
                    pid = children(&comm).into_iter().find(|p| !known.contains(p));
                }
                if let Some(p) = pid
                    && let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status"))
                    && let Some(rss) = status_kib(&status, "VmRSS")
                {
                    samples.push((started.elapsed(), rss));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        });
        RssTrace { stop, task }
    }

    pub async fn finish(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// The largest RSS (KiB) in each tenth of a trace's time.
pub fn rss_by_tenth(trace: &[(Duration, u64)]) -> Vec<u64> {
    let (Some(first), Some(last)) = (trace.first(), trace.last()) else { return Vec::new() };
    let span = (last.0 - first.0).as_secs_f64().max(1e-9);
    let mut tenths = vec![0u64; 10];
    for (at, rss) in trace {
        let i = (((at.saturating_sub(first.0)).as_secs_f64() / span) * 10.0) as usize;
        let slot = &mut tenths[i.min(9)];
        *slot = (*slot).max(*rss);
    }
    tenths
}

/// The pids of this process's children whose command name starts with `comm`.
fn children(comm: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let name = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')'));
                let ppid = name
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                name.is_some_and(|(n, _)| n.starts_with(comm)) && ppid == Some(me)
            })
        })
        .collect()
}

/// CPU time of the calling thread (user + system), nanosecond resolution.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// The machine, as BENCHMARKS.md states it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub rustc: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = status_kib(&meminfo, "MemTotal").unwrap_or(0) as f64 / 1024.0 / 1024.0;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            model,
            memory_gib,
            kernel,
            rustc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tbootstrap\nVmPeak:\t  100 kB\nVmHWM:\t   31234 kB\nVmRSS:\t 2048 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(31234));
        assert_eq!(status_kib(status, "VmRSS"), Some(2048));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn cpu_ticks_count_fields_after_the_command_name() {
        // GIVEN a command name with a space and a parenthesis
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 4 0 99";
        // THEN minflt (500), utime (123) and stime (45) are found after the last ')'
        assert_eq!(cpu_ticks(stat), Some(StatTicks { user: 123, system: 45, minor_faults: 500 }));
        assert_eq!(ticks_to_duration(168, 100), Duration::from_millis(1680));
    }

    #[test]
    fn a_trace_is_cut_in_tenths_by_time() {
        let trace: Vec<(Duration, u64)> =
            (0..100).map(|i| (Duration::from_millis(i * 10), 1000 + i)).collect();
        let tenths = rss_by_tenth(&trace);
        assert_eq!(tenths.len(), 10);
        assert_eq!(tenths[0], 1009);
        assert_eq!(tenths[9], 1099);
        assert!(rss_by_tenth(&[]).is_empty());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = sample(std::process::id()).unwrap();
        assert!(sample.peak_rss_kib >= sample.rss_kib && sample.rss_kib > 0);
    }
}
