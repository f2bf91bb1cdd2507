//! The detector's figures: every shipped pack evaluated over a drain's whole archive by the
//! release `anthropic-compliance-detector evaluate` (the engine the function runs), its CPU and
//! peak RSS taken from the kernel's accounting of that one child (`wait4`), against the
//! collector's own CPU for the same activities.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::aws;

use crate::Error;
use crate::floor::is_activity_key;

#[derive(Debug, Clone)]
pub struct DetectorRun {
    pub objects: usize,
    pub activities: u64,
    pub alerts: u64,
    pub cpu: Duration,
    pub peak_rss_kib: u64,
    pub largest_object_bytes: u64,
}

/// Reads the drain's activity objects back to a directory and evaluates them in one process.
pub async fn measure(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    binary: &Path,
) -> Result<DetectorRun, Error> {
    let dir = std::env::temp_dir().join(testkit::unique_name("bench-detector"));
    std::fs::create_dir_all(&dir)?;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut largest = 0u64;
    for object in aws::list_objects(s3, bucket, prefix).await? {
        if !is_activity_key(prefix, &object.key) {
            continue;
        }
        let body = aws::get_object_bytes(s3, bucket, &object.key).await?;
        largest = largest.max(body.len() as u64);
        let path = dir.join(format!("{:06}.json.gz", files.len()));
        std::fs::write(&path, &body)?;
        files.push(path);
    }
    let result = run(binary, &files, &dir);
    std::fs::remove_dir_all(&dir)?;
    let (cpu, peak_rss_kib, alerts, activities) = result?;
    Ok(DetectorRun {
        objects: files.len(),
        activities,
        alerts,
        cpu,
        peak_rss_kib,
        largest_object_bytes: largest,
    })
}

fn run(binary: &Path, files: &[PathBuf], dir: &Path) -> Result<(Duration, u64, u64, u64), Error> {
    let out_path = dir.join("alerts.ndjson");
    let child = Command::new(binary)
        .arg("evaluate")
        .args(files)
        .stdout(Stdio::from(std::fs::File::create(&out_path)?))
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for this child only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unwaited child; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("detector evaluate failed (status {status}): {stderr}").into());
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    let alerts = BufReader::new(std::fs::File::open(&out_path)?).lines().count() as u64;
    // "<n> rules, <m> activities in <k> file(s), <a> alert(s)"
    let activities = stderr
        .split(", ")
        .nth(1)
        .and_then(|part| part.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((cpu, u64::try_from(usage.ru_maxrss).unwrap_or(0), alerts, activities))
}
